#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/, the targets themselves are src/fuzzing.rs) for a
# set time each, one at a time, with libFuzzer through cargo fuzz on the stable toolchain
# (`-s none`: no sanitizer, which would need nightly; lc has no unsafe code on these paths,
# and debug assertions with overflow checks are on). Installs what it needs on a fresh
# Debian 12 machine: a C++ compiler (libFuzzer is built from source by libfuzzer-sys) and
# cargo-fuzz from crates.io.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 300 s, every target
#
# Each target grows its corpus in fuzz/work/TARGET/ (not committed), starting from the seeds
# in fuzz/corpus/TARGET/; a crash is saved to fuzz/artifacts/TARGET/ and ends that target's
# run (the others still run). The last line of each run (executions, corpus) goes to
# fuzz/work/summary.txt; the script exits 1 if any target crashed.
# Not part of scripts/test.sh: `cargo test` runs every seed through the same targets instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

secs=${1:-300}
shift || true
all=(frame render ftp_command ftp_session config passwd status api segment_name proxy_header http_request)
targets=("${@:-${all[@]}}")

if ! command -v c++ >/dev/null; then
    apt-get update -qq && apt-get install -y -qq g++
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# One build for every target: lc is compiled once. -a: debug assertions and overflow checks.
(cd fuzz && cargo fuzz build -s none -O -a)

mkdir -p fuzz/work
summary=fuzz/work/summary.txt
: >"$summary"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
    log="fuzz/work/$t.log"
    echo "== $t: ${secs}s"
    # -rss_limit_mb: a target that allocates without bound is a finding too.
    if (cd fuzz && cargo fuzz run -s none -O -a "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1) >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed+=("$t")
        grep -E "panicked|ERROR|Test unit written" "$log" | head -5 || true
    fi
    runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
    cov=$(grep -E "^#[0-9]+" "$log" | tail -1 | grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+" || true)
    echo "$t $status executions=$runs $cov" | tee -a "$summary"
done
if ((${#failed[@]})); then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
