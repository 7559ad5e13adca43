#!/usr/bin/env bash
# FTP upload benchmark: lc's built-in FTP/FTPS server against pure-ftpd (Debian's package, what
# the vendor's collector runs), measured in the same run.
#
# One input file of Squid access-log lines (BENCH_BYTES, 1 GiB by default; a pool of varied
# lines written over and over, cut at a line end) is generated once and kept in the page cache
# (read again before every upload). curl uploads it with `curl -T FILE ftp://bench:PW@127.0.0.1:
# PORT/bench/NAME`, in the clear and with `--ssl-reqd` (AUTH TLS, PROT P; the certificate is
# checked against lc's CA), to lc and to pure-ftpd in turn, BENCH_ROUNDS rounds of each mode; the
# server that goes first alternates from round to round. Both servers run for the whole
# benchmark on loopback ports of their own, serving the same certificate (lc's pure-ftpd.pem
# from `lc certs init`, key and certificate in one file).
#
# What is timed, by one clock (a helper that starts curl and watches the server):
#   login s   from starting curl until the server creates the upload's file: TCP connect,
#             banner, AUTH TLS handshake, USER/PASS (both hash passwords with argon2id, with
#             different costs), TYPE, PASV/EPSV, STOR;
#   upload s  from there until curl exits after the 226 (and QUIT), i.e. the transfer plus what
#             the server does before it answers 226. MB/s (10^6 bytes) is over upload s;
#   data s    the part of it until the file holds every byte (its size polled every 5 ms),
#   tail s    and the rest: what the server does after the last byte before its 226, plus QUIT.
# What each server does before its 226 differs: lc fsyncs the file and renames it into the
# source's spool (and fsyncs the folder), so a 226 from lc means the upload survives a power
# cut; pure-ftpd closes the file and answers, the data still dirty in the page cache. lc has no
# setting to skip the fsync, so the "pure-ftpd+sync" rows give pure-ftpd's durable equivalent:
# `sync FILE DIR` (fsync of the file and its folder) right after curl returns, its time and
# CPU added to pure-ftpd's. After the 226 lc's seal thread splits and gzips the upload and
# delivers the parts to an outbox folder (`[delivery] url = dir:...`, same disk); that work is
# not in the rows (the next upload waits until it is done, and its time is printed).
#
# Server CPU is utime+stime from /proc/PID/stat, for each process of the server's tree (the
# process and its descendants, found by ppid), plus cutime+cstime, which the kernel adds to a
# parent when it reaps a child (a child's own cutime included). pure-ftpd forks a session
# process per connection (running as the virtual user) and that one a privileged helper; the
# master reaps the session when it ends, so after the session is gone the master's
# utime+stime+cutime+cstime holds everything the session and its helper used, however short
# lived. cpu_s is the server's CPU from the file's creation to the end: for lc read the moment
# curl returns (so up to its 226; the seal thread starts then, a few ms of it may be counted);
# for pure-ftpd read once its session processes have exited and been reaped (which adds the
# QUIT and exit, a few ms). sess_cpu starts before curl does, so it adds the login. curl_cpu
# is the client's.
# Kernel work done in a flusher thread (pure-ftpd's dirty pages, written back later) is no
# process's; the writeback lc's fsync and `sync FILE` start is largely their own.
#
# pure-ftpd runs in the foreground as root from this script, without touching the system's
# configuration: a virtual user made with pure-pw in files in the temp dir (uid and gid of
# `nobody`, chrooted to a folder there, `-l puredb:FILE`), TLS allowed (`-Y 1`, `-2 CERTFILE`),
# passive ports PURE_PASV_PORTS, no syslog (`-f none`). If it is not installed this script runs
# `apt-get install -y --no-upgrade pure-ftpd` (refusing if that would remove a package, e.g.
# another FTP server) and stops and disables the system service the package may have started.
# lc runs `lc run` with a config in the temp dir: one source `bench` (format SQUID_NATIVE, receiver
# ftp), [ftp] port 0 and passive_ports 0 (any free port; the port comes from the status
# snapshot), certs from `lc certs init`, the user from `lc passwd --stdin`.
#
# A benchmark, not a test: it exits 0 whether or not the target (lc >= 1.0x pure-ftpd's MB/s,
# plain and TLS, medians of the rounds) is met. Needs root (pure-ftpd's chroot and setuid),
# curl, python3, and about 3x BENCH_BYTES of free disk in TMPDIR.
# Knobs (environment):
#   LC_BIN             lc binary (default target/release/lc, built with cargo if missing;
#                      a warning if it is older than the sources)
#   PURE_FTPD          pure-ftpd binary (default: the one on PATH, else /usr/sbin/pure-ftpd)
#   BENCH_BYTES        input size in bytes (default 1073741824)
#   BENCH_ROUNDS       rounds per server and mode (default 3)
#   BENCH_MODES        subset and order of "plain tls"
#   BENCH_SERVERS      subset and order of "lc pure-ftpd" (the first one starts odd rounds)
#   BENCH_SETTLE_SECS  pause after the global `sync` that precedes every upload (default 2)
#   BENCH_TIMEOUT_SECS give up on one upload, or on lc's sealing of it, after this (default 600)
#   BENCH_KEEP=1       keep the temp dir (input, configs, logs) for inspection
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LC_BIN_DEFAULT=$REPO_ROOT/target/release/lc
LC_BIN=${LC_BIN:-$LC_BIN_DEFAULT}
PURE_FTPD=${PURE_FTPD:-$(command -v pure-ftpd || echo /usr/sbin/pure-ftpd)}

BYTES=${BENCH_BYTES:-1073741824}
ROUNDS=${BENCH_ROUNDS:-3}
MODES=${BENCH_MODES:-plain tls}
SERVERS=${BENCH_SERVERS:-lc pure-ftpd}
SETTLE_SECS=${BENCH_SETTLE_SECS:-2}
TIMEOUT_SECS=${BENCH_TIMEOUT_SECS:-600}
KEEP=${BENCH_KEEP:-0}
# pure-ftpd's passive data ports: below Linux's ephemeral range, so curl's own ports never
# take them; pure-ftpd picks another one of the range if one is busy.
PURE_PASV_PORTS=21000:21999
FTP_USER=bench
FOLDER=bench
READY_TIMEOUT_SECS=15
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl python3 sync fincore; do
    command -v "$tool" >/dev/null || die "$tool: not found"
done
[[ $EUID == 0 ]] || die "run as root: pure-ftpd chroots and switches to its virtual user's uid"
if ! [[ $BYTES =~ ^[0-9]+$ ]] || ((BYTES < 1024)); then
    die "BENCH_BYTES=$BYTES: expected a number of bytes >= 1024"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS=$ROUNDS: expected a positive number"
for mode in $MODES; do
    case $mode in
        plain | tls) ;;
        *) die "BENCH_MODES: unknown mode $mode; expected plain or tls" ;;
    esac
done
for server in $SERVERS; do
    case $server in
        lc | pure-ftpd) ;;
        *) die "BENCH_SERVERS: unknown server $server; expected lc or pure-ftpd" ;;
    esac
done

bench_init lc-bench-ftp
# pure-ftpd's session runs as nobody inside its chroot, which is under BENCH_ROOT.
chmod 711 "$BENCH_ROOT"

now() {
    date +%s.%N
}

# Decimal megabytes per second, or empty without a positive time.
mbps() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s / 1e6 }'
}

ratio() {
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}

ticks_to_secs() {
    awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'
}

# The median of the arguments (numbers), or empty without any.
median() {
    (($# > 0)) || return 0
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Prints a port that was free on 127.0.0.1 a moment ago.
free_port() {
    python3 -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

# True once a TCP socket listens on the port (state 0A in /proc/net/tcp).
port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v suffix=":$hex" 'NR > 1 && substr($2, length($2) - 4) == suffix && $4 == "0A" { found = 1 }
        END { exit !found }' /proc/net/tcp
}

# --- pure-ftpd: install, keep the system's service off -----------------------------------------

# Debian's package starts pure-ftpd on port 21 from its init script (unless policy-rc.d forbids
# it, as in containers). This script runs its own instance, so the system's is stopped and
# disabled again, by whatever runs services here: systemd if it is PID 1's init, else sysvinit's
# service and update-rc.d.
stop_system_pure_ftpd() {
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl disable --now pure-ftpd >/dev/null 2>&1 || true
    else
        if command -v service >/dev/null; then
            service pure-ftpd stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null; then
            update-rc.d pure-ftpd disable >/dev/null 2>&1 || true
        fi
    fi
}

install_pure_ftpd() {
    [[ -x $PURE_FTPD ]] && command -v pure-pw >/dev/null && return 0
    command -v apt-get >/dev/null || die "$PURE_FTPD: not found, and no apt-get to install pure-ftpd"
    local sim
    sim=$(apt-get -s install -y --no-upgrade pure-ftpd 2>&1) || {
        note "apt-get cannot resolve pure-ftpd; running apt-get update"
        apt-get update -q >"$BENCH_ROOT/apt.log" 2>&1 || die "apt-get update failed (see $BENCH_ROOT/apt.log)"
        sim=$(apt-get -s install -y --no-upgrade pure-ftpd 2>&1) || die "apt-get cannot install pure-ftpd: $(tail -n1 <<<"$sim")"
    }
    # pure-ftpd conflicts with the other FTP servers; installing it must not remove one.
    if grep -q '^Remv ' <<<"$sim"; then
        die "installing pure-ftpd would remove: $(awk '/^Remv / {printf "%s ", $2}' <<<"$sim")- install it by hand if that is intended"
    fi
    note "installing pure-ftpd (apt-get install -y --no-upgrade pure-ftpd)"
    apt-get install -y --no-upgrade pure-ftpd >"$BENCH_ROOT/apt.log" 2>&1 || die "apt-get install pure-ftpd failed (see $BENCH_ROOT/apt.log)"
    stop_system_pure_ftpd
    PURE_FTPD=$(command -v pure-ftpd || echo /usr/sbin/pure-ftpd)
    [[ -x $PURE_FTPD ]] || die "$PURE_FTPD: not found after installing pure-ftpd"
}

# --- helpers written to BENCH_ROOT ---------------------------------------------------------------

# Writes argv[1] bytes of Squid access-log lines (native format) to argv[2], cut at a line end:
# a pool of ~64 MB of lines (clients, users, sites, methods, statuses, sizes drawn with skew,
# the clock advancing), written again and again. The pool is far larger than any compressor's
# window and the servers never look inside the lines anyway.
cat >"$BENCH_ROOT/gen_squid.py" <<'EOF'
import random
import sys

target, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(20261127)
randint, pick = rng.randint, rng.choice


def skewed(items, s=1.1):
    cum, acc = [], 0.0
    for i in range(len(items)):
        acc += 1.0 / (i + 1) ** s
        cum.append(acc)
    return lambda: rng.choices(items, cum_weights=cum)[0]


WORDS = ("cloud data app portal secure files share mail news shop store media cdn static api "
         "login auth stream video photo sync backup drive docs office meet chat track").split()
TLDS = "com com com net org io co.uk de fr".split()
sites = ["www.google.com", "outlook.office365.com", "login.microsoftonline.com",
         "teams.microsoft.com", "www.youtube.com", "github.com", "slack.com", "zoom.us"]
while len(sites) < 3000:
    sites.append(f"{pick(('www.', '', 'api.', 'cdn.'))}{pick(WORDS)}{pick(WORDS)}.{pick(TLDS)}")
site = skewed(sites)
client = skewed([f"10.{randint(0, 3)}.{randint(0, 40)}.{randint(2, 254)}" for _ in range(2000)])
user = skewed(["-"] * 50 + [f"{pick(WORDS)}{randint(1, 999)}" for _ in range(800)])
result = skewed(["TCP_TUNNEL/200", "TCP_MISS/200", "TCP_HIT/200", "TCP_MISS/304", "TCP_DENIED/403",
                 "TCP_MISS/404", "TCP_REFRESH_MODIFIED/200", "TCP_MISS/302", "TCP_MISS_ABORTED/000"])
ctype = skewed(["-", "text/html", "application/json", "image/png", "application/javascript",
                "text/css", "image/jpeg", "application/octet-stream", "video/mp4"])
paths = ["/", "/index.html", "/api/v1/events", "/owa/", "/favicon.ico", "/search?q=report",
         "/login", "/v2/track?id=", "/static/js/app.js", "/images/logo.png", "/download/setup.exe"]

lines, size, t = [], 0, 1764201600.0
while size < 64 << 20:
    t += rng.expovariate(2000.0)
    host, res = site(), result()
    if res == "TCP_TUNNEL/200":
        method, url = "CONNECT", f"{host}:443"
    else:
        method = "GET" if rng.random() < 0.85 else "POST"
        url = f"http://{host}{pick(paths)}"
        if url.endswith("="):
            url += str(randint(1, 10**9))
    nbytes = int(rng.lognormvariate(8, 2)) + 200
    peer = "HIER_NONE/-" if res.startswith("TCP_HIT") or "DENIED" in res else \
        f"HIER_DIRECT/{randint(13, 223)}.{randint(0, 255)}.{randint(0, 255)}.{randint(1, 254)}"
    line = (f"{t:.3f} {randint(1, 60000):6d} {client()} {res} {nbytes} {method} {url} {user()} "
            f"{peer} {ctype()}\n").encode()
    lines.append(line)
    size += len(line)
pool = b"".join(lines)
with open(path, "wb") as f:
    left = target
    while left >= len(pool):
        f.write(pool)
        left -= len(pool)
    if left:
        f.write(pool[: pool.rindex(b"\n", 0, left) + 1] if b"\n" in pool[:left] else b"")
EOF

# One upload: starts curl (argv after --), waits for the upload's file to appear in WATCH_DIR,
# then for it to reach SIZE bytes (polled every 5 ms: all data written), then for curl, reading
# the server tree's CPU when the file appears and when curl has returned; with --reap, waits
# for the server's children (pure-ftpd's session) to be gone and reads again; with --sync
# PATH..., runs `sync PATH...` and times it. Prints "key value" lines. SIGTERM or SIGINT stops
# curl first.
cat >"$BENCH_ROOT/upload.py" <<'EOF'
import os, signal, subprocess, sys, time

args = sys.argv[1:]
root, watch, size, timeout, stderr_path = int(args[0]), args[1], int(args[2]), float(args[3]), args[4]
args = args[5:]
reap, sync = False, []
while args[0] != "--":
    if args[0] == "--reap":
        reap = True
        args = args[1:]
    elif args[0] == "--sync":
        sync.append(args[1])
        args = args[2:]
    else:
        sys.exit(f"upload.py: unknown option {args[0]}")
curl_cmd = args[1:]


def tree(pid):
    """pid and its descendants, by ppid in /proc/*/stat."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def ticks(pids):
    """utime + stime + cutime + cstime over pids, in clock ticks."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the comm field: state is index 0, utime 11, stime 12, cutime 13, cstime 14.
        total += sum(int(x) for x in fields[11:15])
    return total


curl = None
status = rusage = None


def curl_done():
    """True once curl has exited (reaped here, with its resource usage)."""
    global status, rusage
    if status is None:
        pid, st, ru = os.wait4(curl.pid, os.WNOHANG)
        if pid:
            status, rusage = os.waitstatus_to_exitcode(st), ru
    return status is not None


def stop(signum, frame):
    if curl is not None and status is None:
        curl.kill()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
before = set(os.listdir(watch))
cpu0 = ticks(tree(root))
t0 = time.time()
with open(stderr_path, "wb") as err:
    curl = subprocess.Popen(curl_cmd, stdout=subprocess.PIPE, stderr=err)
t_file = cpu_file = t_data = None
while not curl_done() and time.time() - t0 < timeout:
    new = set(os.listdir(watch)) - before
    if new:
        t_file = time.time()
        cpu_file = ticks(tree(root))
        break
    time.sleep(0.0005)
# pure-ftpd writes to a dot-file and renames it at the end, so the folder's new files are
# looked at, not one name.
while t_file is not None and time.time() - t0 < timeout:
    sizes = [0]
    for e in os.scandir(watch):
        if e.name not in before:
            try:
                sizes.append(e.stat().st_size)
            except FileNotFoundError:
                pass
    if max(sizes) >= size:
        t_data = time.time()
        break
    if curl_done():
        break
    time.sleep(0.005)
while not curl_done():
    if time.time() - t0 > timeout:
        curl.kill()
    time.sleep(0.001)
t_end = time.time()
cpu_end = ticks(tree(root))
out = curl.stdout.read().decode(errors="replace").split()
cpu_final, reaped = cpu_end, ""
if reap:
    deadline = time.time() + 10
    while len(tree(root)) > 1 and time.time() < deadline:
        time.sleep(0.005)
    reaped = "yes" if len(tree(root)) == 1 else "no"
    cpu_final = ticks(tree(root))
sync_s = sync_cpu = ""
if sync and status == 0:
    ts = time.time()
    p = subprocess.Popen(["sync", *sync])
    _, st, ru = os.wait4(p.pid, 0)
    sync_s = f"{time.time() - ts:.3f}"
    sync_cpu = f"{ru.ru_utime + ru.ru_stime:.2f}"
print("status", status)
print("size_upload", out[0] if out else "")
print("login_s", "" if t_file is None else f"{t_file - t0:.3f}")
print("upload_s", "" if t_file is None else f"{t_end - t_file:.3f}")
print("data_s", "" if t_data is None else f"{t_data - t_file:.3f}")
print("tail_s", "" if t_data is None else f"{t_end - t_data:.3f}")
print("cpu0", cpu0)
print("cpu_file", "" if cpu_file is None else cpu_file)
print("cpu_end", cpu_end)
print("cpu_final", cpu_final)
print("reaped", reaped)
print("curl_cpu", f"{rusage.ru_utime + rusage.ru_stime:.2f}")
print("sync_s", sync_s)
print("sync_cpu", sync_cpu)
EOF

# --- servers -------------------------------------------------------------------------------------

LC_DIR=$BENCH_ROOT/lc
LC_PID=''
LC_PORT=''
LC_CONFIG=$LC_DIR/lc.ini
PURE_DIR=$BENCH_ROOT/pure-ftpd
PURE_PID=''
PURE_PORT=''
PURE_CMD=()
PASSWORD=''

# Waits until lc's status snapshot names the FTP listener; sets LC_PORT.
lc_port_from_snapshot() {
    local deadline=$((SECONDS + READY_TIMEOUT_SECS)) addr
    while :; do
        addr=$(python3 -c '
import json, sys
try:
    print(json.load(open(sys.argv[1]))["ftp"]["listening"][0])
except (OSError, ValueError, KeyError, IndexError, TypeError):
    pass' "$LC_DIR/run/all.json" 2>/dev/null || true)
        if [[ -n $addr ]]; then
            LC_PORT=${addr##*:}
            return 0
        fi
        if ! kill -0 "$LC_PID" 2>/dev/null || ((SECONDS > deadline)); then
            note "lc did not start its FTP server; its log:"
            sed 's/^/    /' "$LC_DIR/lc.log" >&2 || true
            die "lc did not start"
        fi
        sleep 0.05
    done
}

start_lc() {
    mkdir -p "$LC_DIR/state" "$LC_DIR/run" "$LC_DIR/outbox" "$LC_DIR/certs"
    cat >"$LC_CONFIG" <<EOF
[collector]
name = bench
state_dir = $LC_DIR/state
run_dir = $LC_DIR/run
certs_dir = $LC_DIR/certs
listen = 127.0.0.1
log_level = info

[spool]
rotate_bytes = 4G
rotate_secs = 86400
max_spool_bytes = 20G
min_free_bytes = 100M
backup_keep = 0

[delivery]
url = dir:$LC_DIR/outbox

[ftp]
port = 0
passive_ports = 0
passwd_file = $LC_DIR/ftp.passwd

[source $FOLDER]
format = SQUID_NATIVE
receiver = ftp
EOF
    "$LC_BIN" certs init -c "$LC_CONFIG" --name 127.0.0.1 --name localhost >"$LC_DIR/certs.log" 2>&1 || {
        cat "$LC_DIR/certs.log" >&2
        die "$LC_BIN certs init failed"
    }
    printf '%s\n' "$PASSWORD" | "$LC_BIN" passwd --stdin -c "$LC_CONFIG" "$FTP_USER" >"$LC_DIR/passwd.log" 2>&1 || {
        cat "$LC_DIR/passwd.log" >&2
        die "$LC_BIN passwd failed"
    }
    "$LC_BIN" run -c "$LC_CONFIG" >"$LC_DIR/lc.log" 2>&1 &
    LC_PID=$!
    STARTED_PIDS+=("$LC_PID")
    lc_port_from_snapshot
}

start_pure_ftpd() {
    local home=$PURE_DIR/home uid gid
    uid=$(id -u nobody 2>/dev/null || echo 65534)
    gid=$(id -g nobody 2>/dev/null || echo 65534)
    mkdir -p "$home/$FOLDER"
    chmod 755 "$PURE_DIR" "$home"
    chown -R "$uid:$gid" "$home"
    # The same certificate as lc's, key and certificate in one file, as pure-ftpd reads it.
    install -m 600 "$LC_DIR/certs/pure-ftpd.pem" "$PURE_DIR/pure-ftpd.pem"
    # pure-pw asks for the password twice on standard input. -d: chrooted to the home.
    printf '%s\n%s\n' "$PASSWORD" "$PASSWORD" |
        pure-pw useradd "$FTP_USER" -u "$uid" -g "$gid" -d "$home" -f "$PURE_DIR/pureftpd.passwd" \
            >"$PURE_DIR/pure-pw.log" 2>&1 || {
        cat "$PURE_DIR/pure-pw.log" >&2
        die "pure-pw useradd failed"
    }
    pure-pw mkdb "$PURE_DIR/pureftpd.pdb" -f "$PURE_DIR/pureftpd.passwd" >>"$PURE_DIR/pure-pw.log" 2>&1 || {
        cat "$PURE_DIR/pure-pw.log" >&2
        die "pure-pw mkdb failed"
    }
    PURE_PORT=$(free_port)
    while [[ $PURE_PORT == "$LC_PORT" ]]; do PURE_PORT=$(free_port); done
    # -E: no anonymous logins; -H: no reverse DNS; -f none: no syslog; -4: IPv4 only;
    # -Y 1: TLS allowed (AUTH TLS), -2: the certificate file.
    PURE_CMD=("$PURE_FTPD" -S "127.0.0.1,$PURE_PORT" -4 -p "$PURE_PASV_PORTS"
        -l "puredb:$PURE_DIR/pureftpd.pdb" -E -H -f none -Y 1 -2 "$PURE_DIR/pure-ftpd.pem")
    "${PURE_CMD[@]}" >"$PURE_DIR/pure-ftpd.log" 2>&1 &
    PURE_PID=$!
    STARTED_PIDS+=("$PURE_PID")
    local deadline=$((SECONDS + READY_TIMEOUT_SECS))
    until port_listening "$PURE_PORT"; do
        if ! kill -0 "$PURE_PID" 2>/dev/null || ((SECONDS > deadline)); then
            note "pure-ftpd is not listening on 127.0.0.1:$PURE_PORT; its log:"
            sed 's/^/    /' "$PURE_DIR/pure-ftpd.log" >&2 || true
            die "pure-ftpd did not start"
        fi
        sleep 0.05
    done
}

# Stops what pure-ftpd's sessions left (a session interrupted with the script), then the rest.
# shellcheck disable=SC2317  # called from the EXIT trap
stop_sessions() {
    local pid
    [[ -n $PURE_PID ]] || return 0
    for pid in $(ps -o pid= --ppid "$PURE_PID" 2>/dev/null); do
        kill -TERM "$pid" 2>/dev/null || true
    done
}
trap 'stop_sessions; cleanup' EXIT

# Waits until lc has sealed and delivered everything it received: its incoming and spool
# folders hold no segments (the spool's own dot files, `.lock` and `.seq`, stay). Appends the
# seconds it took to LC_IDLE_SECS.
wait_lc_idle() {
    local t0 deadline=$((SECONDS + TIMEOUT_SECS))
    t0=$(now)
    while [[ -n $(find "$LC_DIR/state/ftp/incoming" "$LC_DIR/state/spool/$FOLDER" -type f ! -name '.*' -print -quit 2>/dev/null) ]]; do
        if ! kill -0 "$LC_PID" 2>/dev/null; then
            note "lc exited; its log:"
            tail -n 20 "$LC_DIR/lc.log" | sed 's/^/    /' >&2
            die "lc exited during the benchmark"
        fi
        ((SECONDS < deadline)) || die "lc did not seal and deliver an upload within $TIMEOUT_SECS s"
        sleep 0.1
    done
    LC_IDLE_SECS+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')")
}

# --- one upload ----------------------------------------------------------------------------------

declare -A RESULT
LC_IDLE_SECS=()
CIPHERS=()

# Uploads the input once to SERVER in MODE; stores "login upload data tail cpu session_cpu
# curl_cpu sync_s sync_cpu" (seconds; "-" where unknown), or "failed", in RESULT[server/mode/round].
run_upload() {
    local server=$1 mode=$2 round=$3 key=$1/$2/$3
    local name=upload-$round-$mode.log port pid watch tls=() extra=()
    case $server in
        lc)
            port=$LC_PORT pid=$LC_PID watch=$LC_DIR/state/ftp/incoming
            ;;
        pure-ftpd)
            port=$PURE_PORT pid=$PURE_PID watch=$PURE_DIR/home/$FOLDER
            extra=(--reap --sync "$watch/$name" --sync "$watch")
            ;;
    esac
    [[ $mode == tls ]] && tls=(--ssl-reqd --cacert "$LC_DIR/certs/ca.pem")

    # The input in the page cache; the disk quiet.
    cat "$INPUT" >/dev/null
    sync
    sleep "$SETTLE_SECS"

    local dir=$BENCH_ROOT/rounds
    mkdir -p "$dir"
    note "round $round: $server $mode"
    run_waited python3 "$BENCH_ROOT/upload.py" "$pid" "$watch" "$INPUT_BYTES" "$TIMEOUT_SECS" "$dir/$server-$mode-$round.curl.log" \
        "${extra[@]}" -- curl -sS -v "${tls[@]}" -T "$INPUT" -w '%{size_upload}' \
        "ftp://$FTP_USER:$PASSWORD@127.0.0.1:$port/$FOLDER/$name" >"$dir/$server-$mode-$round.out" ||
        die "the upload helper failed"
    declare -A r
    local k v
    while read -r k v; do
        r[$k]=$v
    done <"$dir/$server-$mode-$round.out"

    if [[ ${r[status]:-} != 0 || ${r[size_upload]:-} != "$INPUT_BYTES" || -z ${r[upload_s]:-} ]]; then
        note "$server/$mode round $round: curl exit status ${r[status]:-?}, uploaded ${r[size_upload]:-?} of $INPUT_BYTES bytes; its log:"
        grep -v '^[*>} ]\|^{' "$dir/$server-$mode-$round.curl.log" | tail -n 5 | sed 's/^/    /' >&2 || true
        RESULT[$key]=failed
    else
        local cpu session_cpu
        cpu=$(ticks_to_secs $((r[cpu_final] - r[cpu_file])))
        session_cpu=$(ticks_to_secs $((r[cpu_final] - r[cpu0])))
        [[ ${r[reaped]} == no ]] && note "$server/$mode round $round: pure-ftpd's session had not ended 10 s after curl; its CPU is counted so far"
        RESULT[$key]="${r[login_s]} ${r[upload_s]} ${r[data_s]:--} ${r[tail_s]:--} $cpu $session_cpu ${r[curl_cpu]} ${r[sync_s]:--} ${r[sync_cpu]:--}"
        if [[ $mode == tls ]]; then
            CIPHERS+=("$server: $(grep -m1 -o 'SSL connection using .*' "$dir/$server-$mode-$round.curl.log" | sed 's/SSL connection using //')")
        fi
    fi

    # Make room for the next upload: lc's sealed parts and backups, pure-ftpd's file.
    case $server in
        lc)
            wait_lc_idle
            find "$LC_DIR/outbox" "$LC_DIR/state/backup" -type f -delete
            ;;
        pure-ftpd)
            find "$watch" -mindepth 1 -delete
            ;;
    esac
}

# --- main ----------------------------------------------------------------------------------------

install_pure_ftpd
prepare_lc || die "$LC_NOTE"
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(12))')

INPUT=$BENCH_ROOT/input.log
note "generating $BYTES bytes of Squid access-log lines"
run_waited python3 "$BENCH_ROOT/gen_squid.py" "$BYTES" "$INPUT" || die "the generator failed"
INPUT_BYTES=$(stat -c %s "$INPUT")
INPUT_LINES=$(wc -l <"$INPUT")
sync

start_lc
start_pure_ftpd
note "lc on 127.0.0.1:$LC_PORT (pid $LC_PID), pure-ftpd on 127.0.0.1:$PURE_PORT (pid $PURE_PID)"

LOAD_BEFORE=$(uptime)
for ((round = 1; round <= ROUNDS; round++)); do
    order=$SERVERS
    # Even rounds start with the other server.
    ((round % 2 == 0)) && order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
    for mode in $MODES; do
        for server in $order; do
            run_upload "$server" "$mode" "$round"
        done
    done
done
LOAD_AFTER=$(uptime)
CACHED=$(fincore --noheadings --output RES --bytes "$INPUT" 2>/dev/null || echo '?')
LC_ERRORS=$(grep -cE ' (ERROR|WARN) ' "$LC_DIR/lc.log" || true)

# --- report --------------------------------------------------------------------------------------

# One table row: server mode round login upload data tail MB/s data_MB/s cpu session_cpu curl_cpu.
row() {
    printf '%-15s %-5s %5s %7s %8s %7s %7s %7s %8s %6s %8s %8s\n' "$@"
}

echo
echo "ftp upload benchmark: $INPUT_BYTES bytes ($INPUT_LINES Squid lines) per upload, curl -T over loopback;" \
    "lc against pure-ftpd, $ROUNDS rounds, alternating; $(nproc) cores"
echo "(upload s = data s, until the file has every byte, + tail s, until curl returns after the 226)"
echo
row server mode round login_s upload_s data_s tail_s MB/s data_MB/s cpu_s sess_cpu curl_cpu
declare -A MB DATA_MB CPU
for mode in $MODES; do
    for server in $SERVERS; do
        for ((round = 1; round <= ROUNDS; round++)); do
            result=${RESULT[$server/$mode/$round]:-n/a}
            if [[ $result == n/a || $result == failed ]]; then
                row "$server" "$mode" "$round" "$result" '' '' '' '' '' '' '' ''
                continue
            fi
            read -r login upload data tail cpu session_cpu curl_cpu sync_s sync_cpu <<<"$result"
            rate=$(mbps "$INPUT_BYTES" "$upload")
            data_rate=$(mbps "$INPUT_BYTES" "$data")
            row "$server" "$mode" "$round" "$login" "$upload" "$data" "$tail" "$rate" "$data_rate" \
                "$cpu" "$session_cpu" "$curl_cpu"
            MB[$server/$mode]+="$rate "
            DATA_MB[$server/$mode]+="$data_rate "
            CPU[$server/$mode]+="$cpu "
            if [[ $server == pure-ftpd && $sync_s != - ]]; then
                durable_s=$(awk -v a="$upload" -v b="$sync_s" 'BEGIN { printf "%.3f", a + b }')
                durable_tail=$(awk -v a="$tail" -v b="$sync_s" 'BEGIN { if (a != "-") printf "%.3f", a + b; else print "-" }')
                durable_cpu=$(awk -v a="$cpu" -v b="$sync_cpu" 'BEGIN { printf "%.2f", a + b }')
                durable_rate=$(mbps "$INPUT_BYTES" "$durable_s")
                row "pure-ftpd+sync" "$mode" "$round" '' "$durable_s" "$data" "$durable_tail" "$durable_rate" \
                    "$data_rate" "$durable_cpu" '' ''
                MB[pure-ftpd+sync/$mode]+="$durable_rate "
                DATA_MB[pure-ftpd+sync/$mode]+="$data_rate "
                CPU[pure-ftpd+sync/$mode]+="$durable_cpu "
            fi
        done
    done
done

echo
echo "medians of the rounds:"
printf '  %-15s %-5s %8s %9s %6s\n' server mode MB/s data_MB/s cpu_s
declare -A MED_MB MED_CPU
for mode in $MODES; do
    for server in lc pure-ftpd pure-ftpd+sync; do
        # shellcheck disable=SC2086  # the lists are space-separated numbers
        MED_MB[$server/$mode]=$(median ${MB[$server/$mode]:-})
        # shellcheck disable=SC2086
        MED_CPU[$server/$mode]=$(median ${CPU[$server/$mode]:-})
        # shellcheck disable=SC2086
        med_data=$(median ${DATA_MB[$server/$mode]:-})
        [[ -n ${MED_MB[$server/$mode]} ]] || continue
        printf '  %-15s %-5s %8s %9s %6s\n' "$server" "$mode" "${MED_MB[$server/$mode]}" "$med_data" \
            "${MED_CPU[$server/$mode]}"
    done
done

echo
echo "targets (lc against pure-ftpd, medians):"
verdict() {
    [[ -n $1 ]] || { echo n/a; return; }
    awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "ok" : "MISSED" }'
}
for mode in $MODES; do
    r=$(ratio "${MED_MB[lc/$mode]:-}" "${MED_MB[pure-ftpd/$mode]:-}")
    printf '  %-58s %8s   %s\n' "$mode: throughput lc/pure-ftpd (>= 1.0x)" "${r:-n/a}" "$(verdict "$r" 1.0)"
done
for mode in $MODES; do
    r=$(ratio "${MED_MB[lc/$mode]:-}" "${MED_MB[pure-ftpd+sync/$mode]:-}")
    c=$(ratio "${MED_CPU[lc/$mode]:-}" "${MED_CPU[pure-ftpd/$mode]:-}")
    cs=$(ratio "${MED_CPU[lc/$mode]:-}" "${MED_CPU[pure-ftpd+sync/$mode]:-}")
    echo "  $mode, for reference: throughput lc/(pure-ftpd+sync) ${r:-n/a}; CPU lc/pure-ftpd ${c:-n/a}," \
        "lc/(pure-ftpd+sync) ${cs:-n/a}"
done

echo
echo "commands:"
echo "  curl -sS [--ssl-reqd --cacert $LC_DIR/certs/ca.pem] -T $INPUT ftp://$FTP_USER:***@127.0.0.1:PORT/$FOLDER/NAME"
echo "  $LC_BIN run -c $LC_CONFIG   ([ftp] port 0 -> $LC_PORT, passive_ports 0; delivery to dir:$LC_DIR/outbox)"
echo "  ${PURE_CMD[*]}"
echo "  pure-ftpd+sync: after curl returns, sync FILE DIR (fsync of the upload and its folder)"
[[ ${#CIPHERS[@]} -eq 0 ]] || echo "  TLS, as curl reports it: $(printf '%s\n' "${CIPHERS[@]}" | sort -u | paste -sd ';' | sed 's/;/; /g')"
echo "lc sealed and delivered each upload to the outbox within (s after curl returned, polled): ${LC_IDLE_SECS[*]:-n/a}"
echo "lc: $LC_ERRORS warning/error lines in its log; input in the page cache at the end: $CACHED of $INPUT_BYTES bytes"
echo "load before: $LOAD_BEFORE"
echo "load after:  $LOAD_AFTER"
echo "($(nproc) cores; other work on the machine skews these numbers)"
[[ -z $LC_NOTE ]] || echo "note: $LC_NOTE"
if ((LC_ERRORS > 0)); then
    echo "lc's warnings and errors:"
    grep -E ' (ERROR|WARN) ' "$LC_DIR/lc.log" | head -n 20 | sed 's/^/    /'
fi
exit 0
