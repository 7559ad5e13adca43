#!/usr/bin/env bash
# Instructions lc executes (valgrind callgrind's Ir, every thread) to receive COUNT 300-byte
# messages over TCP and COUNT/2 over TLS from loggen, store them, seal (gzip) them and deliver
# them to an outbox folder (one segment per source: a reload to rotate_secs = 1 seals them once
# every line is stored, and lc stops when the spool is empty). Unlike CPU seconds, the count
# does not depend on what else the machine runs, so it compares builds of the same source
# (opt-levels, profiles) on a busy or shared machine; only the live format check's sampling
# (a budget per housekeeping tick) follows the wall time. It is not a throughput figure:
# valgrind runs lc about 50x slower.
#
#     scripts/bench/instructions.sh LC_BINARY... [--count N]   (default N = 200000)
#
# Needs valgrind and what scripts/deps.sh installs (/opt/lc-peers/bin/loggen, python3, ss).
set -euo pipefail

LOGGEN=${LOGGEN:-/opt/lc-peers/bin/loggen}
COUNT=200000
BINARIES=()
while (($#)); do
    case $1 in
        --count) COUNT=$2; shift 2 ;;
        *) BINARIES+=("$1"); shift ;;
    esac
done
((${#BINARIES[@]})) || { echo "usage: $0 LC_BINARY... [--count N]" >&2; exit 2; }
for tool in valgrind "$LOGGEN" python3 ss; do
    command -v "$tool" >/dev/null || { echo "instructions: $tool: not found" >&2; exit 1; }
done

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/lc-instr.XXXXXX")
LC_PID=
cleanup() {
    [[ -z $LC_PID ]] || kill -KILL "$LC_PID" 2>/dev/null || true
    rm -rf "$ROOT"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 600 s for the spool of source $1 to hold $2 lines.
wait_lines() {
    local i
    for ((i = 0; i < 1200; i++)); do
        (($(cat "$dir"/state/spool/"$1"/*.log 2>/dev/null | wc -l) >= $2)) && return 0
        sleep 0.5
    done
    echo "instructions: $1: fewer than $2 lines after 600 s" >&2
    exit 1
}

# Waits up to 600 s for every segment to have left the spools (sealed and delivered).
wait_delivered() {
    local i
    for ((i = 0; i < 1200; i++)); do
        compgen -G "$dir/state/spool/*/[0-9]*" >/dev/null || return 0
        sleep 0.5
    done
    echo "instructions: segments still in the spool after 600 s" >&2
    exit 1
}

# Sets COUNTED to the instruction count of one run of the binary $1. It runs in this shell,
# not in a $(...) subshell, so that the exit trap stops lc when a measurement fails.
measure() {
    local lc=$1 tcp tls
    dir=$ROOT/run-$RANDOM
    mkdir -p "$dir"
    tcp=$(free_port)
    tls=$(free_port)
    cat >"$dir/lc.ini" <<EOF
[collector]
state_dir = $dir/state
run_dir = $dir/run
certs_dir = $dir/certs
listen = 127.0.0.1
[spool]
min_free_bytes = 0
rotate_bytes = 4G
rotate_secs = 86400
[delivery]
url = dir:$dir/outbox
[source t]
format = SQUID
receiver = syslog-tcp
port = $tcp
[source s]
format = SQUID
receiver = syslog-tls
port = $tls
EOF
    # loggen presents no client certificate: no ca.pem, no mutual TLS.
    "$lc" certs init "$dir/certs" --config "$dir/lc.ini" >/dev/null
    rm "$dir/certs/ca.pem"
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$lc" run --config "$dir/lc.ini" 2>"$dir/valgrind.log" &
    LC_PID=$!
    until ss -ltn | grep -q ":$tls "; do sleep 0.2; done
    "$LOGGEN" --inet --stream --size 300 --rate 1000000000 --number "$COUNT" \
        --interval 86400 --quiet 127.0.0.1 "$tcp" >/dev/null 2>&1
    wait_lines t "$COUNT"
    "$LOGGEN" --use-ssl --size 300 --rate 1000000000 --number $((COUNT / 2)) \
        --interval 86400 --quiet 127.0.0.1 "$tls" >/dev/null 2>&1
    wait_lines s $((COUNT / 2))
    # Sealed before the stop, not by it: under valgrind a seal at the stop can outlast lc's
    # STOP_DEADLINE (10 s) and leave part of the gzip work to the next start, uncounted.
    sed -i 's/^rotate_secs = 86400$/rotate_secs = 1/' "$dir/lc.ini"
    kill -HUP "$LC_PID"
    wait_delivered
    kill -TERM "$LC_PID"
    wait "$LC_PID" || true
    LC_PID=
    COUNTED=$(awk '/^(summary|totals):/ { print $2; exit }' "$dir/callgrind.out")
}

printf '%-70s %16s\n' binary instructions
for b in "${BINARIES[@]}"; do
    measure "$b"
    printf '%-70s %16s\n' "$b" "$COUNTED"
done
