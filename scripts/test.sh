#!/usr/bin/env bash
# Installs the test peers (scripts/deps.sh) and runs every test: unit and integration, plus
# formatting and lints. This is the command README.md gives and CI runs; on a fresh Debian 12
# machine it installs what it needs. Needs root for the peers' packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${LC_SKIP_DEPS:-} ]]; then
    bash scripts/deps.sh
fi

export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# Integration tests start lc processes and real peers; two at a time suits 2 cores.
cargo test --quiet -- --test-threads="${LC_TEST_THREADS:-2}"
# The appliance end to end: the release tarball, install.sh and the units in a throwaway
# Debian 12 VM with systemd as PID 1 (scripts/vm/e2e.sh builds the tarball with
# scripts/release.sh unless dist/ has it for this commit, and caches the VM image).
if [[ -z ${LC_SKIP_VM:-} ]]; then
    bash scripts/vm/e2e.sh
fi
