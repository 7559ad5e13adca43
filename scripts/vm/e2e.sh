#!/usr/bin/env bash
# The end-to-end test of the appliance: boots a throwaway Debian 12 VM with systemd as PID 1
# (scripts/vm/image.sh builds and caches it), copies the release tarball and its .sha256 in
# with scp, and runs scripts/vm/guest.sh there as root: install.sh, lc passwd, lc@514 and
# lc@21 started, syslog with logger and a file with curl over FTP and FTPS, the outbox, the
# journal's priorities, systemctl reload, lc certs reload, a restart, the sandbox, delivery to
# the Cloud Discovery API stand-in (tests/standin/cloud_discovery.py, S3 flavour, run here on
# the host and forwarded into the guest as https://10.0.2.100:8443) and `lc status --check`
# going 0 -> 2 -> 0 as this script stops and starts it, a reboot with an expired certificate
# for another port's source (lc@514 and lc@21 start, lc@6514 ends failed), uninstall --purge.
# guest.sh runs in phases (main, api-down, api-up, after-reboot); this script does what
# happens between them.
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
API_PID=''
# The API stand-in as the guest sees it (QEMU's guestfwd relays it to API_PORT here).
API_GUEST_ADDR=10.0.2.100
API_GUEST_PORT=8443

cleanup() {
    stop_api
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

# --- the API stand-in, its certificates, and the expired certificate -----------------------
# A CA and a certificate for the address the guest reaches the stand-in at.
make_api_certs() {
    local d=$WORK/api
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=lc-e2e-api-ca -keyout "$d/ca-key.pem" -out "$d/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$API_GUEST_ADDR" \
        -keyout "$d/key.pem" -out "$d/req.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
        "$API_GUEST_ADDR" >"$d/ext"
    openssl x509 -req -in "$d/req.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
        -days 2 -extfile "$d/ext" -out "$d/cert.pem" 2>/dev/null
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$d/token"
}

# A server certificate and key that expired in 2020 (OpenSSL 3.0's req and x509 take no past
# dates; `openssl ca` does, with a database of its own).
make_expired_cert() {
    local d=$WORK/expired
    mkdir -p "$d/db"
    : >"$d/db/index.txt"
    printf '[ca]\ndefault_ca = e2e\n[e2e]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nrand_serial = yes\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n' \
        "$d/db" "$d/db" >"$d/db/ca.cnf"
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/db/ext"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/server-key.pem" 2>/dev/null
    openssl req -new -key "$d/server-key.pem" -subj /CN=localhost -out "$d/db/req.csr" 2>/dev/null
    openssl ca -batch -notext -config "$d/db/ca.cnf" -in "$d/db/req.csr" -out "$d/server-cert.pem" \
        -startdate 20200101000000Z -enddate 20200201000000Z -extfile "$d/db/ext" \
        -selfsign -keyfile "$d/server-key.pem" 2>/dev/null
}

# QEMU's guestfwd runs this per connection the guest opens to the stand-in's address: stdin
# and stdout are that connection, relayed to the stand-in's port here.
write_relay() {
    cat >"$WORK/relay.py" <<'PY'
import os, select, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
fds = [0, s]
while fds:
    for r in select.select(fds, [], [])[0]:
        if r == 0:
            data = os.read(0, 65536)
            if data:
                s.sendall(data)
            else:
                s.shutdown(socket.SHUT_WR)
                fds.remove(0)
        else:
            data = s.recv(65536)
            if not data:
                sys.exit(0)
            os.write(1, data)
PY
}

API_PY=/opt/lc-peers/venv/bin/python
[[ -x $API_PY ]] || API_PY=python3

start_api() {
    local d=$WORK/api deadline
    : >"$d/stdout"
    "$API_PY" tests/standin/cloud_discovery.py --provider aws --host 127.0.0.1 --port "$API_PORT" \
        --public-host "$API_GUEST_ADDR:$API_GUEST_PORT" --cert "$d/cert.pem" --key "$d/key.pem" \
        --token "$(cat "$d/token")" --streams asa-udp,asa-tcp,squid --record "$d/uploads.jsonl" \
        </dev/null >"$d/stdout" 2>>"$d/standin.log" &
    API_PID=$!
    deadline=$((SECONDS + 30))
    until grep -q '^listening ' "$d/stdout"; do
        kill -0 "$API_PID" 2>/dev/null || { cat "$d/standin.log" >&2; die "the API stand-in exited"; }
        ((SECONDS < deadline)) || die "the API stand-in did not start in 30 s"
        sleep 0.2
    done
}

stop_api() {
    [[ -n $API_PID ]] || return 0
    kill -TERM "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=''
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
        -netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,guestfwd=tcp:$API_GUEST_ADDR:$API_GUEST_PORT-cmd:$API_PY $WORK/relay.py 127.0.0.1 $API_PORT" \
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

make_api_certs
make_expired_cert
write_relay
API_PORT=$(pick_port)
start_api

t0=$SECONDS
boot
boot_secs=$((SECONDS - t0))
note "the VM answers ssh on 127.0.0.1:$SSH_PORT after $boot_secs s"

mkdir -p "$WORK/guest-files"
cp "$WORK/api/ca.pem" "$WORK/guest-files/api-ca.pem"
cp "$WORK/api/token" "$WORK/guest-files/api-token"
cp "$WORK/expired/server-cert.pem" "$WORK/guest-files/expired-cert.pem"
cp "$WORK/expired/server-key.pem" "$WORK/guest-files/expired-key.pem"
scp -q "${SSH_OPTS[@]}" -P "$SSH_PORT" "$TARBALL" "$TARBALL.sha256" scripts/vm/guest.sh \
    "$WORK"/guest-files/* root@127.0.0.1:/root/ ||
    die "scp of the tarball, guest.sh and the test's files into the VM failed"

# One phase of guest.sh; its output goes to the log, its steps are added up.
passed=0
failed=0
rc=0
ftp_only=false
test_deadline=$((SECONDS + TEST_SECS))
guest_phase() {
    local left=$((test_deadline - SECONDS)) p f
    ((left > 0)) || left=1
    note "guest.sh $1"
    rc=0
    timeout "$left" ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" root@127.0.0.1 bash /root/guest.sh "$1" </dev/null 2>&1 |
        tee -a "$WORK/guest.log" || rc=${PIPESTATUS[0]}
    read -r p f < <(sed -n 's/^e2e: result \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$WORK/guest.log" | tail -n1) ||
        { p=0; f=1; }
    passed=$((passed + p))
    failed=$((failed + f))
    ((rc != 3)) || ftp_only=true
    # rc 3: only FTP is not served; the next phases still mean something.
    ((rc == 0 || rc == 3))
}

t0=$SECONDS
: >"$WORK/guest.log"
if guest_phase main; then
    note "stopping the API stand-in"
    stop_api
    if guest_phase api-down; then
        note "starting the API stand-in again"
        start_api
        if guest_phase api-up; then
            note "rebooting the VM"
            ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" root@127.0.0.1 systemctl reboot </dev/null >/dev/null 2>&1 || true
            # Until sshd is gone, the old system still answers.
            deadline=$((SECONDS + 120))
            while ((SECONDS < deadline)) &&
                timeout 10 ssh "${SSH_OPTS[@]}" -o ConnectTimeout=3 -p "$SSH_PORT" root@127.0.0.1 true </dev/null 2>/dev/null; do
                sleep 1
            done
            if wait_for_ssh; then
                guest_phase after-reboot || true
            else
                show_console
                note "the VM did not answer ssh again after the reboot"
                rc=1
                failed=$((failed + 1))
            fi
        fi
    fi
fi
if ((rc == 0)) && $ftp_only; then
    rc=3
fi
if ((rc != 0 && rc != 3 && failed == 0)); then
    failed=1
fi
test_secs=$((SECONDS - t0))

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
