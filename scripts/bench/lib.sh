# shellcheck shell=bash disable=SC2034  # LC_NOTE is read by the scripts that source this file
# Shared by the benchmark scripts in this folder: messages, a temp root removed on exit, and
# process bookkeeping so that every process a benchmark starts is stopped when it ends, also
# on Ctrl-C. Source it, then call `bench_init NAME`. Uses $KEEP (1 = keep the temp root).

die() {
    echo "bench: error: $*" >&2
    exit 1
}

note() {
    echo "bench: $*" >&2
}

STARTED_PIDS=()

# Creates $BENCH_ROOT (a temp dir named after NAME) and installs the exit and signal traps.
bench_init() {
    BENCH_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        note "kept $BENCH_ROOT"
    else
        rm -rf "$BENCH_ROOT"
    fi
}

# Sends SIGTERM, waits up to 10 s, then SIGKILL; reaps the process if it is our child.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # A zombie child still answers kill -0 until waited for.
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Prints a port that was free on 127.0.0.1 for the given protocol (tcp or udp) a moment ago.
free_port() {
    python3 - "$1" <<'EOF'
import socket, sys
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
with socket.socket(socket.AF_INET, kind) as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

# True once something listens on the port: a TCP socket in LISTEN (0A) or any bound UDP socket.
port_bound() {
    local proto=$1 port=$2 hex
    hex=$(printf '%04X' "$port")
    awk -v suffix=":$hex" -v proto="$proto" '
        NR > 1 && substr($2, length($2) - 4) == suffix && (proto == "udp" || $4 == "0A") { found = 1 }
        END { exit !found }' "/proc/net/$proto"
}

forget_pid() {
    local pid=$1 kept=() p
    for p in "${STARTED_PIDS[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    STARTED_PIDS=("${kept[@]}")
}

# Runs a command in the background and waits for it, so that a signal to the script runs the
# cleanup at once instead of after a long foreground command; returns its status.
run_waited() {
    local pid rc=0
    "$@" &
    pid=$!
    STARTED_PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}

# Makes sure $LC_BIN exists, building the default one with cargo if needed; on failure says why
# in $LC_NOTE and returns 1. Needs LC_BIN, LC_BIN_DEFAULT and REPO_ROOT.
LC_NOTE=''
prepare_lc() {
    if [[ -x $LC_BIN ]]; then
        # An lc built before the delivery code changed benchmarks something else (one from
        # before console delivery existed seals and then waits forever).
        if [[ $LC_BIN == "$LC_BIN_DEFAULT" ]] &&
            [[ -n $(find "$REPO_ROOT/src" "$REPO_ROOT/Cargo.toml" "$REPO_ROOT/Cargo.lock" -newer "$LC_BIN" -print -quit 2>/dev/null) ]]; then
            note "warning: $LC_BIN is older than the sources; run cargo build --release for a current one"
            LC_NOTE="$LC_BIN was older than the sources"
        fi
        return 0
    fi
    if [[ $LC_BIN == "$LC_BIN_DEFAULT" ]] && command -v cargo >/dev/null; then
        note "building lc (cargo build --release)"
        if (cd "$REPO_ROOT" && cargo build --release --quiet) >"$BENCH_ROOT/cargo.log" 2>&1 && [[ -x $LC_BIN ]]; then
            return 0
        fi
        LC_NOTE="lc: cargo build --release failed: $(grep -m1 -E '^error' "$BENCH_ROOT/cargo.log" || tail -n1 "$BENCH_ROOT/cargo.log")"
        return 1
    fi
    LC_NOTE="lc: $LC_BIN does not exist"
    return 1
}
