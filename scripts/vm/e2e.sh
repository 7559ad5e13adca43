#!/usr/bin/env bash
# The end-to-end test of the appliance: boots a throwaway Debian 12 VM with systemd as PID 1
# (scripts/vm/image.sh builds and caches it), copies the release tarball and its .sha256 in
# with scp, and runs scripts/vm/guest.sh there as root: install.sh, lc passwd, lc@514 and
# lc@21 started, syslog with logger and a file with curl over FTP and FTPS, the outbox, the
# journal's priorities, systemctl reload, lc certs reload, a restart, uninstall --purge.
#
# QEMU runs under TCG (`-accel tcg -cpu max`: this machine's /dev/kvm is a kvm_pvm module that
# stock kernels cannot use), from the image's kernel and initrd, with the disk opened
# snapshot=on so every boot starts from the same clean image and nothing is written back.
# The user network is restricted (the guest reaches nothing outside QEMU) and forwards a port
# on 127.0.0.1, picked at run time, to the guest's sshd. The serial console goes to a file,
# shown when something fails. QEMU is killed and the temp folder removed on exit, Ctrl-C
# included.
#
# The tarball: $LC_VM_TARBALL if set, else dist/'s for the current commit (release.sh puts
# +gHASH in the name), else scripts/release.sh builds it (always when tracked files have
# uncommitted changes: a .dirty tarball may be stale).
#
# Needs root (image.sh installs tools and builds the image). Exit status 0 when every step
# passed. Knobs: LC_VM_BOOT_SECS (deadline for ssh to answer, default 300), LC_VM_TEST_SECS
# (deadline for the steps in the guest, default 900), LC_VM_KEEP=1 keeps the temp folder
# (console log, guest output).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=scripts/vm/lib.sh
source scripts/vm/lib.sh

BOOT_SECS=${LC_VM_BOOT_SECS:-300}
TEST_SECS=${LC_VM_TEST_SECS:-900}
VM_MEM_MIB=1024
VM_CPUS=2
# Tries at binding the forwarded port: another process may take the one picked between the
# check and QEMU's bind.
PORT_TRIES=5

QEMU_PID=''
WORK=''

cleanup() {
    stop_qemu
    if [[ -n $WORK ]]; then
        if [[ ${LC_VM_KEEP:-0} == 1 ]]; then
            note "kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}

# SIGTERM, up to 10 s, then SIGKILL; the disk is a snapshot, so nothing needs a clean shutdown.
stop_qemu() {
    local i
    [[ -n $QEMU_PID ]] || return 0
    kill -TERM "$QEMU_PID" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=''
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_console() {
    [[ -s $WORK/console.log ]] || return 0
    echo "vm: --- last lines of the serial console ($WORK/console.log) ---" >&2
    tail -n "${1:-40}" "$WORK/console.log" | tr -d '\r' >&2
}

# --- the release tarball ----------------------------------------------------------------------
find_tarball() {
    local hash matches
    if [[ -n ${LC_VM_TARBALL:-} ]]; then
        [[ -f $LC_VM_TARBALL && -f $LC_VM_TARBALL.sha256 ]] ||
            die "LC_VM_TARBALL=$LC_VM_TARBALL: the file or its .sha256 is missing"
        echo "$LC_VM_TARBALL"
        return
    fi
    if [[ -z $(git status --porcelain --untracked-files=no) ]]; then
        hash=$(git rev-parse --short=9 HEAD)
        matches=(dist/lc-*+g"$hash"-x86_64-linux-musl.tar.gz)
        if [[ -f ${matches[0]} && -f ${matches[0]}.sha256 ]]; then
            echo "$REPO_ROOT/${matches[0]}"
            return
        fi
    fi
    [[ -f scripts/release.sh ]] || die "scripts/release.sh does not exist yet, and dist/ has no tarball for this commit"
    note "building the release tarball (scripts/release.sh)"
    bash scripts/release.sh >"$WORK/release.out" || die "scripts/release.sh failed"
    head -n1 "$WORK/release.out"
}

# --- boot -------------------------------------------------------------------------------------
pick_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((10000 + RANDOM % 20000))
        if [[ -z $(ss -Hltn "sport = :$port") ]]; then
            echo "$port"
            return
        fi
    done
    die "found no free TCP port on 127.0.0.1"
}

start_qemu() {
    local fw=() dir
    for dir in "${VM_QEMU_FIRMWARE[@]}"; do
        fw+=(-L "$dir")
    done
    : >"$WORK/console.log"
    QEMU_MODULE_DIR=$VM_QEMU_MODULES "$VM_QEMU" "${fw[@]}" \
        -nodefaults -machine q35 -accel tcg -cpu max -smp "$VM_CPUS" -m "$VM_MEM_MIB" \
        -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" -append "$(cat "$IMAGE/cmdline")" \
        -drive "file=$IMAGE/rootfs.ext4,format=raw,if=virtio,snapshot=on" \
        -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22" \
        -device virtio-net-pci,netdev=net0,romfile= \
        -vga none -nographic -monitor none -serial "file:$WORK/console.log" \
        </dev/null >"$WORK/qemu.log" 2>&1 &
    QEMU_PID=$!
}

SSH_OPTS=()
set_ssh_opts() {
    SSH_OPTS=(
        -i "$IMAGE/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10
        -o ServerAliveInterval=15 -o ServerAliveCountMax=8
    )
}

# Polls sshd until it runs a command; fails at once if QEMU exits.
wait_for_ssh() {
    local deadline=$((SECONDS + BOOT_SECS))
    while ((SECONDS < deadline)); do
        kill -0 "$QEMU_PID" 2>/dev/null || return 2
        if timeout 30 ssh "${SSH_OPTS[@]}" -o ConnectTimeout=5 -p "$SSH_PORT" root@127.0.0.1 true </dev/null 2>/dev/null; then
            return 0
        fi
        sleep 1
    done
    return 1
}

boot() {
    local try rc
    for ((try = 1; try <= PORT_TRIES; try++)); do
        SSH_PORT=$(pick_port)
        start_qemu
        rc=0
        wait_for_ssh || rc=$?
        case $rc in
            0) return 0 ;;
            1)
                show_console
                die "the VM did not answer ssh on 127.0.0.1:$SSH_PORT within $BOOT_SECS s (LC_VM_BOOT_SECS)"
                ;;
        esac
        wait "$QEMU_PID" 2>/dev/null || true
        QEMU_PID=''
        if grep -q 'host forwarding' "$WORK/qemu.log"; then
            note "port $SSH_PORT was taken before QEMU bound it; another"
            continue
        fi
        cat "$WORK/qemu.log" >&2
        show_console
        die "QEMU exited while booting (its output above)"
    done
    die "QEMU could not bind a forwarded port in $PORT_TRIES tries"
}

# --- main -------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lc-vm-e2e.XXXXXX")
t0=$SECONDS
IMAGE=$(bash scripts/vm/image.sh)
image_secs=$((SECONDS - t0))
t0=$SECONDS
TARBALL=$(find_tarball)
tarball_secs=$((SECONDS - t0))
note "tarball: $TARBALL"
set_ssh_opts

t0=$SECONDS
boot
boot_secs=$((SECONDS - t0))
note "the VM answers ssh on 127.0.0.1:$SSH_PORT after $boot_secs s"

scp -q "${SSH_OPTS[@]}" -P "$SSH_PORT" "$TARBALL" "$TARBALL.sha256" scripts/vm/guest.sh root@127.0.0.1:/root/ ||
    die "scp of the tarball and guest.sh into the VM failed"

t0=$SECONDS
rc=0
timeout "$TEST_SECS" ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" root@127.0.0.1 bash /root/guest.sh </dev/null 2>&1 |
    tee "$WORK/guest.log" || rc=${PIPESTATUS[0]}
test_secs=$((SECONDS - t0))

# The guest's count of steps passed and failed, as the closing line CI reads.
read -r passed failed < <(sed -n 's/^e2e: result \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$WORK/guest.log" | tail -n1) ||
    { passed=0; failed=1; }
if ((rc != 0 && failed == 0)); then
    failed=1
fi

echo
note "timings: image ${image_secs} s, tarball ${tarball_secs} s, boot to ssh ${boot_secs} s, steps in the VM ${test_secs} s"
grep '^e2e: metric ' "$WORK/guest.log" | sed 's/^e2e: metric /vm: measured: /' >&2 || true
report_result() {
    echo "e2e: $passed passed, $failed failed"
}
case $rc in
    0)
        note "PASSED: the appliance's whole path works in a Debian 12 VM"
        report_result
        ;;
    3)
        note "FAILED only because this lc does not serve FTP yet; every other step passed"
        report_result
        exit 1
        ;;
    124)
        show_console
        note "FAILED: the steps in the VM did not finish within $TEST_SECS s (LC_VM_TEST_SECS)"
        report_result
        exit 1
        ;;
    *)
        # The console tells why a step could not run at all, not why a check found a bug.
        if grep -q '^e2e: FAILED: ' "$WORK/guest.log"; then
            show_console 20
        fi
        note "FAILED: a check in the VM failed (exit status $rc; its message is above)"
        report_result
        exit 1
        ;;
esac
