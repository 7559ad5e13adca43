#!/usr/bin/env bash
# Builds the release tarball: a static x86_64 musl binary (no dynamic loader, no libc to
# match, runs on any x86_64 Linux), the systemd units, install.sh and uninstall.sh, the example
# config, README, OPERATIONS.md, the man page lc.8 (docs/lc.8, written by hand) and LICENSE:
#
#     dist/lc-VERSION-x86_64-linux-musl.tar.gz          one folder, lc-VERSION/
#     dist/lc-VERSION-x86_64-linux-musl.tar.gz.sha256   `sha256sum -c` it from dist/
#
# VERSION is Cargo.toml's version, plus +gHASH (the commit) unless HEAD is tagged vVERSION,
# plus .dirty when tracked files have uncommitted changes. The build is reproducible: the same
# commit, toolchain and Cargo.lock give the same bytes. Paths are remapped out of the binary,
# SOURCE_DATE_EPOCH is the commit's time, and the tarball's entries are sorted, dated at that
# time and owned by 0:0; gzip stores no name or time.
#
# The binary is built with the `dist` profile (Cargo.toml: opt-level 3 as `release`, fat LTO,
# one codegen unit, stripped) and checked to be static. The musl target and musl-tools (for
# ring's C and assembly) are installed when missing; that needs root, or run scripts/deps.sh.
# Knobs (environment): CARGO_TARGET_DIR (default target/ in the repository), DIST_DIR
# (default dist/ in the repository).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
TARGET=x86_64-unknown-linux-musl
PROFILE=dist
# README's promise for the binary (it was 4 MiB until the features of late 2026 outgrew it
# with every hot crate at opt-level 3: BENCHMARKS.md, Appliance).
MAX_BINARY_BYTES=$((4608 * 1024))
export PATH="$HOME/.cargo/bin:$PATH"
umask 022

die() {
    echo "release: error: $*" >&2
    exit 1
}

note() {
    echo "release: $*" >&2
}

# --- tools ----------------------------------------------------------------------------------
for tool in cargo rustup git; do
    command -v "$tool" >/dev/null || die "$tool: not found; the build needs git and a rustup toolchain"
done
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    note "adding the Rust target $TARGET"
    rustup target add "$TARGET"
fi
if ! command -v musl-gcc >/dev/null; then
    [[ $(id -u) == 0 ]] || die "musl-gcc: not found; install musl-tools (sudo apt-get install musl-tools)"
    note "installing musl-tools"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-upgrade musl-tools >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-upgrade musl-tools >/dev/null; } ||
        die "cannot install musl-tools"
fi
command -v readelf >/dev/null || die "readelf: not found (binutils, which musl-tools' gcc needs)"

# --- version and time -----------------------------------------------------------------------
CARGO_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $CARGO_VERSION ]] || die "Cargo.toml: no version"
if ! git rev-parse --git-dir >/dev/null 2>&1; then
    die "$REPO_ROOT is not a git checkout: the version and SOURCE_DATE_EPOCH come from git"
fi
VERSION=$CARGO_VERSION
if [[ $(git describe --tags --exact-match HEAD 2>/dev/null || true) != "v$CARGO_VERSION" ]]; then
    VERSION+="+g$(git rev-parse --short=9 HEAD)"
fi
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    VERSION+=".dirty"
    note "tracked files have uncommitted changes: version $VERSION"
fi
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
export SOURCE_DATE_EPOCH
NAME=lc-$VERSION
ARCHIVE=$NAME-x86_64-linux-musl.tar.gz

# --- build ----------------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
mkdir -p "$TARGET_DIR"
TARGET_DIR=$(cd "$TARGET_DIR" && pwd)
CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_HOME_DIR=${RUSTUP_HOME:-$HOME/.rustup}
# No build machine paths in the binary (panic locations of dependencies name their files).
# The last matching prefix wins, so the target folder (maybe inside the repository) comes last.
REMAP="--remap-path-prefix=$CARGO_HOME_DIR=/cargo --remap-path-prefix=$RUSTUP_HOME_DIR=/rustup"
REMAP+=" --remap-path-prefix=$REPO_ROOT=/lc --remap-path-prefix=$TARGET_DIR=/target"
export RUSTFLAGS="$REMAP"
export CC_x86_64_unknown_linux_musl=musl-gcc
export CFLAGS_x86_64_unknown_linux_musl="-ffile-prefix-map=$CARGO_HOME_DIR=/cargo -ffile-prefix-map=$TARGET_DIR=/target"
# `lc version` and the status snapshots say the release's version (src/main.rs).
export LC_VERSION=$VERSION
note "building $NAME ($TARGET, profile $PROFILE)"
CARGO_TARGET_DIR=$TARGET_DIR cargo build --locked --quiet --profile "$PROFILE" --target "$TARGET" --bin lc
BINARY=$TARGET_DIR/$TARGET/$PROFILE/lc

# --- is it static? --------------------------------------------------------------------------
if readelf -lW "$BINARY" | grep -q 'INTERP'; then
    die "$BINARY has a PT_INTERP (dynamic loader): not static"
fi
if readelf -dW "$BINARY" | grep -q '(NEEDED)'; then
    die "$BINARY needs shared libraries: $(readelf -dW "$BINARY" | grep '(NEEDED)')"
fi
LDD=$(ldd "$BINARY" 2>&1 || true)
case $LDD in
    *"not a dynamic executable"* | *"statically linked"*) ;;
    *) die "ldd $BINARY: $LDD" ;;
esac
"$BINARY" version >/dev/null || die "$BINARY does not run"
FILE_TYPE=
if command -v file >/dev/null; then
    FILE_TYPE=$(file -b "$BINARY" | sed 's/, BuildID\[[^]]*\]=[0-9a-f]*//')
fi
BINARY_BYTES=$(stat -c %s "$BINARY")
if ((BINARY_BYTES > MAX_BINARY_BYTES)); then
    note "WARNING: the binary is $BINARY_BYTES bytes, over the $MAX_BINARY_BYTES-byte target"
fi

# --- tarball --------------------------------------------------------------------------------
STAGE=$TARGET_DIR/release-stage
rm -rf "$STAGE"
mkdir -p "$STAGE/$NAME/bin" "$STAGE/$NAME/systemd"
install -m 0755 "$BINARY" "$STAGE/$NAME/bin/lc"
install -m 0644 systemd/lc@.service systemd/lc.target systemd/lc-upload.service systemd/lc-upload.timer \
    "$STAGE/$NAME/systemd/"
install -m 0755 packaging/install.sh packaging/uninstall.sh "$STAGE/$NAME/"
install -m 0644 packaging/lc.ini.example README.md docs/OPERATIONS.md docs/lc.8 LICENSE "$STAGE/$NAME/"
chmod 0755 "$STAGE/$NAME" "$STAGE/$NAME/bin" "$STAGE/$NAME/systemd"

DIST=${DIST_DIR:-$REPO_ROOT/dist}
mkdir -p "$DIST"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --format=gnu -C "$STAGE" -cf - "$NAME" | gzip -9n >"$DIST/$ARCHIVE.tmp"
mv -f "$DIST/$ARCHIVE.tmp" "$DIST/$ARCHIVE"
(cd "$DIST" && sha256sum "$ARCHIVE" >"$ARCHIVE.sha256.tmp" && mv -f "$ARCHIVE.sha256.tmp" "$ARCHIVE.sha256")
rm -rf "$STAGE"

# --- summary --------------------------------------------------------------------------------
echo "$DIST/$ARCHIVE"
echo "$DIST/$ARCHIVE.sha256"
note "binary: $BINARY_BYTES bytes${FILE_TYPE:+; $FILE_TYPE}"
note "ldd: $(echo "$LDD" | tr -s '\t ' ' ' | sed 's/^ //')"
note "tarball: $(stat -c %s "$DIST/$ARCHIVE") bytes, sha256 $(cut -d' ' -f1 "$DIST/$ARCHIVE.sha256")"
