#!/usr/bin/env bash
# Delivery benchmark, in rows (BENCH_ROWS):
#
#   spool      from 1 GiB of syslog lines in lc's spool to all of it acknowledged by the Cloud
#              Discovery stand-in, beside gzip -6 and curl -T of the same data, in the same run
#   sustained  syslog at the vendor's 50 GB/hour per collector, from loggen into one lc with
#              default rotation and api_calls_per_min = 20, for BENCH_SUSTAINED_SECS
#   shared     the same rate split over 5 lc instances on this host sharing a budget of 30
#
# The spool row. The input is generated firewall syslog (Cisco ASA and Palo Alto TRAFFIC/THREAT
# lines: hosts, users, destinations and ports drawn with skew, so it compresses about like real
# logs, ~8x with gzip -6). It is put into lc's spool as an unsealed raw segment, as a crash
# would leave it, and fsynced first, as lc's own spool would be. lc then seals it at start
# (gzip, in parts under one upload's limit, cut at lines) and delivers each part with
# upload_url, PUT to the SAS URL and done_upload, to the stand-in
# (tests/standin/cloud_discovery.py) in front of Azurite, both on HTTPS on loopback with a test
# CA made here with openssl.
#
# lc's time runs from its start to the last done_upload of a part as the stand-in recorded it
# (--record, same host clock); the run ends when that record covers every part and lc's status
# snapshot (run_dir/all.json) shows an empty backlog, and that time is shown too, but lc writes
# the snapshot only every 2 s, so it adds up to 2 s of lc's own bookkeeping. Sealing is timed to
# the moment the raw segment is gone (every part in place), polled every 100 ms; uploading from
# there to the last done_upload. CPU is lc's utime+stime just before it is stopped, RSS its
# VmHWM. Then gzip -6 compresses the same file (from the page cache, like lc), and curl PUTs
# that .gz to a fresh SAS URL. A benchmark, not a test: it exits 0 whether or not the target
# is met.
#
# Each upload costs two API calls (upload_url, done_upload). On Azure lc uploads every part of
# a segment as blocks of one blob, so a segment costs two calls however large it is; with one
# upload per part (AWS), the budget would cap sustained delivery (the last line says at what).
#
# The sustained rows. The issue's proof of batching: a backlog costs two API calls, so the API
# budget must not bound delivery. Each row starts a fresh stand-in (the tenant's 30 calls in any
# sliding minute, 429 with Retry-After past it) in front of the shared Azurite, then N `lc run
# PORT` instances of one config (one syslog-tcp source each; default rotation: 32M or 300 s;
# the instances share run_dir and so the host's API bucket, src/deliver/pacer.rs), each fed by
# its own loggen (syslog-ng's, from scripts/deps.sh; TCP, BENCH_MSG_SIZE-byte messages, --rate
# is per connection) at 1/N of BENCH_GB_PER_HOUR for BENCH_SUSTAINED_SECS. A sampler reads the
# instances' status snapshots every second. When the feed ends, the row waits (at most
# BENCH_DRAIN_SECS) until every sealed segment is delivered and only the open segments remain
# (they seal at rotate_secs, 300 s), then stops lc, reads back every delivered blob (lines and
# bytes, decompressed) and the stand-in's record of every API call (when it was answered, and
# how). It reports MB/s offered by loggen, received by lc and delivered during the feed, API
# calls (the most in any 60 s, 429s), the backlog at the end of the feed, how many uploads
# each instance began after it (upload_url after the feed's end; one = the backlog was one
# batch; the upload in flight at the end may still hold an older, smaller batch), every line
# accounted for
# (delivered or still in the spool), CPU of lc and loggen, and `uptime` before and after.
# 50 GB/hour is 13.9 MB/s, about 46,000 300-byte messages a second; if the machine cannot hold
# it, shorten the row (BENCH_SUSTAINED_SECS), not the rate: the CPU column says whether lc or
# loggen was short of it.
#
# Needs what scripts/deps.sh installs (/opt/lc-peers/bin/azurite-blob, /opt/lc-peers/bin/loggen,
# the venv's python with azure-storage-blob), openssl, curl, gzip, python3, and about 3x
# BENCH_BYTES of free disk in TMPDIR (a sustained row keeps little: loggen's messages compress
# far better than real logs).
# Knobs (environment):
#   LC_BIN              lc binary (default target/release/lc, built with cargo if missing;
#                       a warning if it is older than the sources)
#   BENCH_ROWS          which rows, in order (default "spool sustained shared")
#   BENCH_BYTES         spool row: input size in bytes (default 1073741824)
#   BENCH_LOG_LEVEL     lc's log_level (default info; debug logs each delivered part)
#   BENCH_TIMEOUT_SECS  give up on lc after this long (default 900)
#   BENCH_STALL_SECS    give up on lc once it has neither used CPU nor delivered a part for
#                       this long (default 120; a 429's Retry-After is at most 60 s)
#   BENCH_VERIFY        1 (default): read every delivered blob back and check that the parts,
#                       decompressed in order, are the input (sha256); 0 skips it
#   BENCH_SUSTAINED_SECS  sustained rows: how long loggen feeds (default 600)
#   BENCH_GB_PER_HOUR   sustained rows: the rate asked of loggen, all instances together
#                       (default 50, in 10^9 bytes of messages an hour). loggen sends somewhat
#                       less than its --rate (95-99 % here), so to offer at least the vendor's
#                       50 ask a little more; the row is judged against 50 either way
#   BENCH_MSG_SIZE      sustained rows: loggen --size (default 300)
#   BENCH_FEED_CONNS    sustained rows: loggen connections per instance (default 1)
#   BENCH_SHARED_INSTANCES  shared row: lc instances (default 5)
#   BENCH_SOLO_CALLS    sustained row: api_calls_per_min (default 20)
#   BENCH_HOST_CALLS    shared row: api_calls_per_min, the host's budget (default 30)
#   BENCH_DRAIN_SECS    sustained rows: how long to wait after the feed for the sealed backlog
#                       to be delivered (default 120)
#   BENCH_KEEP=1        keep the temp dir (input, configs, logs, record) for inspection
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LC_BIN_DEFAULT=$REPO_ROOT/target/release/lc
LC_BIN=${LC_BIN:-$LC_BIN_DEFAULT}
AZURITE=${AZURITE:-/opt/lc-peers/bin/azurite-blob}
LOGGEN=${LOGGEN:-/opt/lc-peers/bin/loggen}
VENV_PYTHON=/opt/lc-peers/venv/bin/python
STANDIN=$REPO_ROOT/tests/standin/cloud_discovery.py

BYTES=${BENCH_BYTES:-1073741824}
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
TIMEOUT_SECS=${BENCH_TIMEOUT_SECS:-900}
STALL_SECS=${BENCH_STALL_SECS:-120}
VERIFY=${BENCH_VERIFY:-1}
KEEP=${BENCH_KEEP:-0}
ROWS=${BENCH_ROWS:-spool sustained shared}
SUSTAINED_SECS=${BENCH_SUSTAINED_SECS:-600}
GB_PER_HOUR=${BENCH_GB_PER_HOUR:-50}
MSG_SIZE=${BENCH_MSG_SIZE:-300}
FEED_CONNS=${BENCH_FEED_CONNS:-1}
SHARED_INSTANCES=${BENCH_SHARED_INSTANCES:-5}
SOLO_CALLS=${BENCH_SOLO_CALLS:-20}
HOST_CALLS=${BENCH_HOST_CALLS:-30}
DRAIN_SECS=${BENCH_DRAIN_SECS:-120}
# The tenant's budget, as the stand-in enforces it and lc paces itself to.
CALLS_PER_MIN=30
STREAM=bench
# 10x Microsoft's documented 50 GB/hour per log collector, in MB (10^6 bytes) per second.
TARGET_MBPS=140
# The vendor's sizing of one collector, GB (10^9 bytes) an hour: what a sustained row must hold.
VENDOR_GB_PER_HOUR=50
# lc's compressed part size (MAX_PART_BYTES in src/spool/worker.rs): a slice this size is PUT
# instead of the whole .gz if Azurite refuses one that large, and the API budget's ceiling on
# sustained delivery is reckoned with it.
PART_BYTES=$((56 << 20))
READY_TIMEOUT_SECS=30
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in openssl curl gzip python3 sha256sum; do
    command -v "$tool" >/dev/null || die "$tool: not found; run scripts/deps.sh first"
done
for tool in "$AZURITE" "$VENV_PYTHON"; do
    [[ -x $tool ]] || die "$tool: not found; run scripts/deps.sh first"
done
if ! [[ $BYTES =~ ^[0-9]+$ ]] || ((BYTES < 1024)); then
    die "BENCH_BYTES=$BYTES: expected a number of bytes >= 1024"
fi
for row in $ROWS; do
    case $row in
        spool | sustained | shared) ;;
        *) die "BENCH_ROWS: unknown row $row; expected spool, sustained or shared" ;;
    esac
done
for knob in SUSTAINED_SECS MSG_SIZE FEED_CONNS SHARED_INSTANCES SOLO_CALLS HOST_CALLS DRAIN_SECS; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$knob=${!knob}: expected a positive whole number"
done
[[ $GB_PER_HOUR =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_GB_PER_HOUR=$GB_PER_HOUR: expected a number"
[[ $ROWS != *sustained* && $ROWS != *shared* ]] || [[ -x $LOGGEN ]] ||
    die "$LOGGEN: not found; run scripts/deps.sh first"

bench_init lc-bench-delivery

now() {
    date +%s.%N
}

# Seconds between two `now` values, to the millisecond.
elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# Decimal megabytes per second, or empty without a positive time.
mbps() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s / 1e6 }'
}

ratio() {
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}

# Waits until file $1 contains $2, while process $3 lives; dies with the file otherwise.
wait_for_text() {
    local file=$1 text=$2 pid=$3 what=$4
    local deadline=$((SECONDS + READY_TIMEOUT_SECS))
    until grep -qF -- "$text" "$file" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
            note "$what did not start; its log:"
            sed 's/^/    /' "$file" >&2 || true
            die "$what did not start"
        fi
        sleep 0.05
    done
}

# --- input -----------------------------------------------------------------------------------

# Writes argv[1] bytes of firewall syslog lines to argv[2], cut at a line end. Events are drawn
# once into a pool with Zipf-like skew (a few busy hosts and popular destinations, each host
# mostly one user, each destination mostly one port and app, ephemeral ports counting up per
# host, connection ids counting up), then written in order with the clock advancing one second
# per 1500-2500 lines, cycling through the pool. The pool (~45 MB) is far larger than gzip's
# 32 KiB window, so the cycling does not make the data more compressible to gzip.
cat >"$BENCH_ROOT/gen_syslog.py" <<'EOF'
import random
import sys

target, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(20261127)
rnd, pick, pick_w, randint = rng.random, rng.choice, rng.choices, rng.randint


def skewed(n, s=1.1):
    """Cumulative weights 1/rank^s, for random.choices(cum_weights=)."""
    acc, out = 0.0, []
    for i in range(n):
        acc += 1.0 / (i + 1) ** s
        out.append(acc)
    return out


def pick_idx(cum):
    return pick_w(range(len(cum)), cum_weights=cum)[0]


def ip():
    return f"{randint(13, 223)}.{randint(0, 255)}.{randint(0, 255)}.{randint(1, 254)}"


FIRST = ("james mary robert patricia john jennifer michael linda david elizabeth william barbara "
         "richard susan joseph jessica thomas sarah charles karen daniel nancy mark ashley").split()
LAST = ("smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
        "gonzalez wilson anderson taylor moore jackson martin lee perez thompson white harris "
        "sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen "
        "hill flores green adams nelson baker hall rivera campbell mitchell carter roberts").split()
POPULAR = ("www.google.com outlook.office365.com login.microsoftonline.com teams.microsoft.com "
           "www.youtube.com graph.microsoft.com api.github.com github.com s3.amazonaws.com "
           "www.linkedin.com slack.com app.slack.com zoom.us www.dropbox.com drive.google.com "
           "docs.google.com mail.google.com login.salesforce.com update.googleapis.com "
           "www.facebook.com static.xx.fbcdn.net www.bing.com ctldl.windowsupdate.com "
           "accounts.google.com en.wikipedia.org cdn.jsdelivr.net fonts.gstatic.com "
           "www.amazon.com app.box.com jira.atlassian.com").split()
WORDS = ("cloud data app portal secure files share mail news shop store media cdn static api login "
         "auth stream video photo sync backup drive docs office meet chat track stats analytics "
         "ads pixel update download mirror repo status help support forum blog").split()
TLDS = "com com com net org io co.uk de fr cn ru info biz".split()
PORTS = [443] * 60 + [80] * 15 + [53] * 10 + [123, 22, 25, 587, 993, 8080, 8443, 3389, 445, 5228]
APPS = [("ssl", "computer-and-internet-info"), ("web-browsing", "business-and-economy"),
        ("ms-office365-base", "computer-and-internet-info"), ("google-base", "search-engines"),
        ("dns", "any"), ("slack-base", "online-storage-and-backup"),
        ("youtube-base", "streaming-media"), ("zoom-base", "computer-and-internet-info"),
        ("dropbox-base", "online-storage-and-backup"), ("github-base", "computer-and-internet-info"),
        ("ntp", "any"), ("incomplete", "any")]
TEARDOWN = ["TCP FINs"] * 8 + ["TCP Reset-O", "TCP Reset-I", "SYN Timeout", "Connection timeout"]
PATHS = ["/", "/index.html", "/api/v1/events", "/owa/", "/favicon.ico", "/search", "/login",
         "/v2/track", "/static/js/app.js", "/images/logo.png", "/download/setup.exe", "/watch"]
END_REASONS = ("tcp-fin", "tcp-fin", "aged-out", "tcp-rst-from-client")

users = sorted({f"{pick(FIRST)[0]}{pick(LAST)}" for _ in range(600)})
rng.shuffle(users)
user_w = skewed(len(users))
hosts = [f"10.{pick((1, 1, 2, 3, 20, 64))}.{randint(0, 40)}.{randint(2, 254)}" for _ in range(2500)]
host_w = skewed(len(hosts))
owner = [users[pick_idx(user_w)] for _ in hosts]
ephemeral = [randint(49152, 65535) for _ in hosts]
dests = [(d, ip()) for d in POPULAR]
while len(dests) < 2000:
    sub = pick(("www.", "", "api.", "cdn.", "m."))
    num = randint(1, 99) if rnd() < 0.3 else ""
    dests.append((f"{sub}{pick(WORDS)}{pick(WORDS)}{num}.{pick(TLDS)}", ip()))
dest_w = skewed(len(dests))
app_w = skewed(len(APPS))
dest_app = [APPS[pick_idx(app_w)] for _ in dests]
dest_port = [pick(PORTS) for _ in dests]


def traffic_bytes():
    return int(rng.lognormvariate(8, 2.2)) + 60


# "\0" marks where each line's HH:MM:SS goes; the date is fixed.
pool = []
conn = 81234567
for _ in range(200_000):
    conn += randint(1, 9)
    h = pick_idx(host_w)
    src = hosts[h]
    user = owner[h] if rnd() < 0.9 else users[pick_idx(user_w)]
    d = pick_idx(dest_w)
    dom, dst = dests[d]
    dport = dest_port[d] if rnd() < 0.9 else pick(PORTS)
    udp = dport in (53, 123)
    ephemeral[h] = 49152 + (ephemeral[h] - 49152 + randint(1, 40)) % 16384
    sport = ephemeral[h]
    nat = f"198.51.100.{10 + h % 8}"
    natport = 1024 + (conn // 3) % 64000
    app, cat = dest_app[d]
    k = rnd()
    if k < 0.18:
        line = (f"<166>Nov 27 2026 \0: %ASA-6-30201{5 if udp else 3}: Built outbound "
                f"{'UDP' if udp else 'TCP'} connection {conn} for outside:{dst}/{dport} "
                f"({dst}/{dport}) to inside:{src}/{sport} ({nat}/{natport}) (CORP\\{user})")
    elif k < 0.38:
        dur = int(rng.expovariate(1 / 40))
        reason = "" if udp else f" {pick(TEARDOWN)}"
        line = (f"<166>Nov 27 2026 \0: %ASA-6-30201{6 if udp else 4}: Teardown "
                f"{'UDP' if udp else 'TCP'} connection {conn} for outside:{dst}/{dport} to "
                f"inside:{src}/{sport} duration {dur // 3600}:{dur // 60 % 60:02d}:{dur % 60:02d} "
                f"bytes {traffic_bytes()}{reason} (CORP\\{user})")
    elif k < 0.43:
        line = (f"<164>Nov 27 2026 \0: %ASA-4-106023: Deny tcp src outside:{ip()}/{randint(1024, 65535)} "
                f"dst inside:{nat}/{pick((22, 23, 445, 3389, 1433, 8080))} by access-group "
                f"\"outside_access_in\" [0x5063b82f, 0x0]")
    elif k < 0.48:
        line = (f"<166>Nov 27 2026 \0: %ASA-6-305011: Built dynamic TCP translation from "
                f"inside:{src}/{sport} to outside:{nat}/{natport}")
    elif k < 0.53:
        line = f"<165>Nov 27 2026 \0: %ASA-5-304001: {src} Accessed URL {dst}:http://{dom}{pick(PATHS)}"
    elif k < 0.88:
        total = traffic_bytes()
        sent = total // randint(2, 9)
        pkts = max(2, total // 700)
        line = (f"<14>Nov 27 \0 pa-fw01 1,2026/11/27 \0,013101001234,TRAFFIC,end,2561,2026/11/27 \0,"
                f"{src},{dst},{nat},{dst},allow-{cat.split('-')[0]},corp\\{user},,{app},vsys1,trust,"
                f"untrust,ethernet1/2,ethernet1/1,log-fwd,2026/11/27 \0,{conn % 1000000},1,{sport},"
                f"{dport},{natport},{dport},0x400053,{'udp' if udp else 'tcp'},allow,{total},{sent},"
                f"{total - sent},{pkts},2026/11/27 \0,{int(rng.expovariate(1 / 30))},{cat},0,"
                f"{7000000000000000000 + conn},0x0,10.0.0.0-10.255.255.255,United States,0,"
                f"{pkts // 2},{pkts - pkts // 2},{pick(END_REASONS)},0,0,0,0,,pa-fw01,from-policy,,,"
                f"0,,0,,N/A,0,0,0,0")
    else:
        query = f"?q={randint(1, 99999)}" if rnd() < 0.3 else ""
        line = (f"<14>Nov 27 \0 pa-fw01 1,2026/11/27 \0,013101001234,THREAT,url,2561,2026/11/27 \0,"
                f"{src},{dst},{nat},{dst},allow-web,corp\\{user},,{app},vsys1,trust,untrust,"
                f"ethernet1/2,ethernet1/1,log-fwd,2026/11/27 \0,{conn % 1000000},1,{sport},{dport},"
                f"{natport},{dport},0x40b000,tcp,alert,\"{dom}{pick(PATHS)}{query}\",(9999),{cat},"
                f"informational,client-to-server,{7000000000000000000 + conn},0x0,"
                f"10.0.0.0-10.255.255.255,United States,0,text/html")
    pool.append((line + "\n").encode().split(b"\0"))

written, sec, at = 0, 0, 0
with open(path, "wb", buffering=1 << 20) as out:
    while written < target:
        stamp = b"%02d:%02d:%02d" % (sec // 3600 % 24, sec // 60 % 60, sec % 60)
        sec += 1
        n = randint(1500, 2500)
        if at + n > len(pool):
            at = 0
        chunk = b"".join([stamp.join(p) for p in pool[at:at + n]])
        at += n
        if written + len(chunk) > target:
            chunk = chunk[:chunk.rfind(b"\n", 0, target - written) + 1]
            if not chunk:
                break
        out.write(chunk)
        written += len(chunk)
EOF

# --- peers -----------------------------------------------------------------------------------

# A CA and a server certificate it signed for 127.0.0.1 and localhost (P-256, two days), in
# $1/ca.pem, $1/server.pem, $1/server.key: for Azurite and the stand-in, trusted by lc and curl.
make_test_ca() {
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj '/CN=lc bench CA' \
        -addext 'basicConstraints=critical,CA:TRUE' \
        -addext 'keyUsage=critical,keyCertSign,cRLSign' \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj '/CN=127.0.0.1' -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    # rustls (webpki) wants a v3 end-entity certificate with SANs for serverAuth.
    printf '%s\n' 'subjectAltName = IP:127.0.0.1, DNS:localhost' \
        'basicConstraints = critical, CA:FALSE' \
        'keyUsage = critical, digitalSignature' \
        'extendedKeyUsage = serverAuth' >"$d/server.ext"
    openssl x509 -req -days 2 -set_serial 2 -in "$d/server.csr" -CA "$d/ca.pem" \
        -CAkey "$d/ca.key" -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
}

# Starts Azurite's blob service on HTTPS on a port of its choosing; sets AZURITE_PORT.
start_azurite() {
    local d=$1 log=$1/azurite.log pid
    # --skipApiVersionCheck: the SDK and SAS tokens name a newer version than Azurite knows.
    # --loose: ignore headers it does not implement. --silent: no access log.
    "$AZURITE" --blobHost 127.0.0.1 --blobPort 0 --location "$d/data" \
        --silent --loose --skipApiVersionCheck --disableTelemetry \
        --cert "$CA_DIR/server.pem" --key "$CA_DIR/server.key" \
        </dev/null >"$log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    wait_for_text "$log" 'successfully listens on ' "$pid" azurite
    AZURITE_PORT=$(grep -F 'successfully listens on ' "$log" | tail -n1 | sed 's/.*:\([0-9]*\)[^0-9]*$/\1/')
    [[ $AZURITE_PORT =~ ^[0-9]+$ ]] || die "azurite: no port in its log: $(cat "$log")"
}

# Starts the stand-in on HTTPS on a port of its choosing, recording in folder $1, for the data
# sources $2 (comma-separated); sets STANDIN_PORT and STANDIN_PID.
start_standin() {
    local d=$1 pid
    "$VENV_PYTHON" "$STANDIN" --port 0 --token "$TOKEN" --streams "$2" \
        --cert "$CA_DIR/server.pem" --key "$CA_DIR/server.key" \
        --azurite "https://127.0.0.1:$AZURITE_PORT" --azurite-ca "$CA_DIR/ca.pem" \
        --record "$d/uploads.jsonl" --calls-per-min "$CALLS_PER_MIN" \
        </dev/null >"$d/standin.out" 2>"$d/standin.log" &
    pid=$!
    STARTED_PIDS+=("$pid")
    local deadline=$((SECONDS + READY_TIMEOUT_SECS))
    until grep -q '^listening ' "$d/standin.out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
            note "the stand-in did not start; its log:"
            sed 's/^/    /' "$d/standin.log" >&2 || true
            die "the stand-in did not start"
        fi
        sleep 0.05
    done
    STANDIN_PORT=$(awk '/^listening / {print $2; exit}' "$d/standin.out")
    STANDIN_PID=$pid
}

stop_standin() {
    stop_pid "$STANDIN_PID"
    forget_pid "$STANDIN_PID"
}

# curl trusting the test CA, with the API token.
api_curl() {
    curl -sS --cacert "$CA_DIR/ca.pem" -H "Authorization: Token $TOKEN" "$@"
}

# --- lc --------------------------------------------------------------------------------------


# Watches one lc run every 100 ms and prints "key value" lines when every part is delivered,
# lc exits, or the deadline passes: sealed_at (raw segment gone, i.e. every part renamed into
# place), acked_at (the last done_upload of a part, the stand-in's clock), done_at (record
# covers every part and the snapshot's backlog is empty), cpu ticks at both points, VmHWM, the
# parts and what the record says of them. CPU and RSS are read while lc still runs.
cat >"$BENCH_ROOT/watch_lc.py" <<'EOF'
import glob, json, os, sys, time

pid, raw, spool, backup, record, snapshot, t0, timeout, stall = sys.argv[1:10]
pid, t0, timeout, stall = int(pid), float(t0), float(timeout), float(stall)


def cpu_ticks():
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def hwm_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def part_index(name):
    # SEQ-STAMP.log.gz is part 0, SEQ-STAMP-pN.log.gz part N.
    stem = name[: -len(".log.gz")]
    tail = stem.rsplit("-", 1)[-1]
    return int(tail[1:]) if tail.startswith("p") and tail[1:].isdigit() else 0


stem = os.path.basename(raw)[: -len(".log")]
parts, sealed_at, cpu_sealed, ticks, hwm, backlog = set(), None, None, 0, 0, None
status, why, acks = "timeout", f"not delivered within {timeout:g} s", {}
progress, progress_at = None, t0
while True:
    now = time.time()
    if not alive():
        status, why = "exited", "lc exited on its own"
        break
    try:
        ticks, hwm = cpu_ticks(), hwm_kib()
    except (FileNotFoundError, ProcessLookupError):
        status, why = "exited", "lc exited on its own"
        break
    for d in (spool, backup):
        parts.update(os.path.basename(p) for p in glob.glob(os.path.join(d, stem + "*.log.gz")))
    if sealed_at is None and not os.path.exists(raw) and parts:
        sealed_at, cpu_sealed = now, ticks
    acks = {}
    try:
        with open(record) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    for p in parts:
                        if r["filename"].endswith("_" + p) and not r["duplicate"]:
                            acks[p] = r
    except (FileNotFoundError, ValueError):
        pass
    try:
        with open(snapshot) as f:
            backlog = json.load(f)["sources"][0]["backlog"]["files"]
    except (FileNotFoundError, ValueError, KeyError, IndexError):
        pass
    # An upload may carry several parts (Azure blocks): coverage is counted in bytes.
    sizes = {}
    for p in parts:
        for d in (spool, backup):
            try:
                sizes[p] = os.path.getsize(os.path.join(d, p))
                break
            except OSError:
                pass
    covered = sum(r["size"] for r in acks.values()) >= sum(sizes.values()) > 0
    if sealed_at is not None and covered and backlog == 0:
        status = "done"
        break
    if now - t0 > timeout:
        break
    seen = (ticks, sealed_at, len(parts), len(acks))
    if seen != progress:
        progress, progress_at = seen, now
    elif now - progress_at > stall:
        status, why = "stalled", f"no CPU used and no part delivered for {stall:g} s"
        break
    time.sleep(0.1)

ordered = sorted(parts, key=part_index)
print("status", status)
print("why", "" if status == "done" else why)
print("done_at", f"{now:.6f}")
print("sealed_at", f"{sealed_at:.6f}" if sealed_at else "")
print("acked_at", f"{max(r['at'] for r in acks.values()):.6f}" if acks and status == "done" else "")
print("cpu_sealed", "" if cpu_sealed is None else cpu_sealed)
print("cpu", ticks)
print("hwm_kib", hwm)
print("backlog", "" if backlog is None else backlog)
print("parts", len(parts))
print("acked", len(parts) if status == "done" else len(acks))
print("uploads", len(acks))
print("compressed", sum(r["size"] for r in acks.values()))
print("max_part", max((r["size"] for r in acks.values()), default=0))
print("blobs", " ".join(acks[p]["blob"] for p in ordered if p in acks))
EOF

# Writes $1/lc.ini's [collector] and [delivery] sections for the stand-in at STANDIN_PORT, with
# api_calls_per_min = $2 (state and run_dir under $1, the token in $1/token, the test CA).
write_lc_ini() {
    local d=$1
    printf '%s\n' "$TOKEN" >"$d/token"
    cp "$CA_DIR/ca.pem" "$d/ca.pem"
    cat >"$d/lc.ini" <<EOF
[collector]
name = bench
state_dir = $d/state
run_dir = $d/run
listen = 127.0.0.1
log_level = $LOG_LEVEL

[delivery]
url = https://127.0.0.1:$STANDIN_PORT
token_file = $d/token
ca_file = $d/ca.pem
api_calls_per_min = $2
EOF
}

declare -A LC

# Runs lc on the raw segment until everything is delivered; fills LC.
run_lc() {
    local d=$BENCH_ROOT/lc
    local spool=$d/state/spool/$STREAM raw
    raw=$spool/0000000001-20261127T000000Z.log
    mkdir -p "$spool" "$d/run"
    write_lc_ini "$d" "$CALLS_PER_MIN"
    cat >>"$d/lc.ini" <<EOF

[spool]
rotate_bytes = 4G
rotate_secs = 86400
max_spool_bytes = 20G
min_free_bytes = 100M

[source $STREAM]
format = GENERIC_CEF
receiver = syslog-tcp
port = 0
EOF
    # A copy of the input: lc removes the raw segment once sealed, gzip reads the input later,
    # and a hard link would not do (lc quarantines a segment with a second name, as one it did
    # not write). On disk before lc starts, as lc's own spool would be (it fsyncs every
    # sync_secs), so lc's fsync of the raw segment before sealing does not pay for the copy.
    cp "$INPUT" "$raw"
    sync --data "$raw"

    local t0 pid
    t0=$(now)
    "$LC_BIN" run --config "$d/lc.ini" >"$d/lc.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    run_waited python3 "$BENCH_ROOT/watch_lc.py" "$pid" "$raw" "$spool" "$d/state/backup/$STREAM" \
        "$BENCH_ROOT/cloud/uploads.jsonl" "$d/run/all.json" "$t0" "$TIMEOUT_SECS" "$STALL_SECS" \
        >"$d/watch.out" || die "the watcher of lc failed"
    local key value
    while read -r key value; do
        LC[$key]=$value
    done <"$d/watch.out"
    LC[t0]=$t0

    local stopped_at rc=0
    stopped_at=$(now)
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        note "lc did not exit within 10 s of SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    forget_pid "$pid"
    LC[exit]=$rc
    LC[stop_secs]=$(elapsed "$stopped_at" "$(now)")
}

# --- the spool row ---------------------------------------------------------------------------

# BENCH_BYTES of generated syslog in lc's spool, sealed and delivered; gzip -6 and curl -T of the
# same data beside it.
spool_row() {
    echo "spool row: $BYTES bytes of firewall syslog; lc vs gzip -6 and curl -T; Azurite and" \
        "the Cloud Discovery stand-in on loopback (HTTPS); $CALLS_PER_MIN API calls/min; $(nproc) cores"

    INPUT=$BENCH_ROOT/input.log
    note "generating $BYTES bytes of syslog"
    gen_t0=$(now)
    run_waited python3 "$BENCH_ROOT/gen_syslog.py" "$BYTES" "$INPUT" || die "the syslog generator failed"
    INPUT_BYTES=$(stat -c %s "$INPUT")
    INPUT_LINES=$(wc -l <"$INPUT")
    INPUT_SHA=''
    [[ $VERIFY == 1 ]] && INPUT_SHA=$(sha256sum "$INPUT" | awk '{print $1}')
    note "generated $INPUT_BYTES bytes, $INPUT_LINES lines in $(elapsed "$gen_t0" "$(now)") s"

    mkdir -p "$BENCH_ROOT/cloud"
    note "starting the stand-in"
    start_standin "$BENCH_ROOT/cloud" "$STREAM"

    note "running lc"
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    run_lc
    CALLS_JSON=$(curl -sS --cacert "$CA_DIR/ca.pem" "https://127.0.0.1:$STANDIN_PORT/_admin/calls" || echo '{}')
    read -r N_UPLOAD_URL N_DONE N_STREAMS N_429 <<<"$(python3 -c '
import json, sys
c = json.loads(sys.argv[1]) or {}
eps = ("upload_url", "done_upload", "streams")
n = [c.get(e, {}).get("calls", 0) for e in eps]
n429 = sum(s == 429 for e in eps for s in c.get(e, {}).get("statuses", []))
print(*n, n429)' "$CALLS_JSON")"

    LC_ERRORS=$(grep -cE ' (ERROR|WARN) ' "$BENCH_ROOT/lc/lc.log" || true)

    VERIFIED=skipped
    if [[ $VERIFY == 1 && ${LC[status]} == "done" ]]; then
        note "verifying the delivered blobs against the input"
        got_sha=$(
            for blob in ${LC[blobs]}; do
                curl -sS -f --cacert "$CA_DIR/ca.pem" \
                    "https://127.0.0.1:$STANDIN_PORT/_admin/blob?name=$blob" | gzip -dc
            done | sha256sum | awk '{print $1}'
        )
        if [[ $got_sha == "$INPUT_SHA" ]]; then
            VERIFIED="ok: the ${LC[parts]} parts, decompressed in order, are the input (sha256)"
        else
            VERIFIED="MISMATCH: the parts decompress to sha256 $got_sha, the input is $INPUT_SHA"
        fi
    fi

    note "running gzip -6"
    GZ=$BENCH_ROOT/input.log.gz
    gz_t0=$(now)
    run_waited gzip -6 -c "$INPUT" >"$GZ" || die "gzip -6 failed"
    GZ_SECS=$(elapsed "$gz_t0" "$(now)")
    GZ_BYTES=$(stat -c %s "$GZ")

    note "running curl -T"
    # A SAS URL for one blob, as lc gets them; then one PUT of the whole .gz.
    curl_put() {
        local file=$1 url
        url=$(api_curl "https://127.0.0.1:$STANDIN_PORT/api/v1/discovery/upload_url/?filename=bench-curl.gz&source=GENERIC_CEF" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["url"])') || return 1
        curl -sS --cacert "$CA_DIR/ca.pem" -H 'x-ms-blob-type: BlockBlob' -T "$file" \
            -o "$BENCH_ROOT/curl.answer" -w '%{http_code} %{time_total} %{size_upload}' "$url"
    }
    PUT_NOTE=''
    read -r PUT_STATUS PUT_SECS PUT_BYTES <<<"$(curl_put "$GZ" || echo "000 0 0")"
    if [[ $PUT_STATUS != 201 ]]; then
        PUT_NOTE="one PUT of the whole $GZ_BYTES-byte .gz was answered $PUT_STATUS ($(head -c 200 "$BENCH_ROOT/curl.answer" 2>/dev/null | tr -d '\n')); timed a $PART_BYTES-byte slice instead"
        head -c "$PART_BYTES" "$GZ" >"$BENCH_ROOT/slice.gz"
        read -r PUT_STATUS PUT_SECS PUT_BYTES <<<"$(curl_put "$BENCH_ROOT/slice.gz" || echo "000 0 0")"
        [[ $PUT_STATUS == 201 ]] || PUT_NOTE="$PUT_NOTE, answered $PUT_STATUS too"
    fi

    # --- report ----------------------------------------------------------------------------------

    t0=${LC[t0]}
    LC_SECS=''
    ACK_SECS=''
    SEAL_SECS=''
    if [[ ${LC[status]} == "done" ]]; then
        LC_SECS=$(elapsed "$t0" "${LC[done_at]}")
        ACK_SECS=$(elapsed "$t0" "${LC[acked_at]}")
    fi
    [[ -n ${LC[sealed_at]} ]] && SEAL_SECS=$(elapsed "$t0" "${LC[sealed_at]}")
    LC_CPU=$(awk -v t="${LC[cpu]}" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    SEAL_CPU=''
    [[ -n ${LC[cpu_sealed]} ]] && SEAL_CPU=$(awk -v t="${LC[cpu_sealed]}" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    LC_RSS=$(awk -v k="${LC[hwm_kib]}" 'BEGIN { printf "%.1f", k / 1024 }')

    echo
    echo "input: $INPUT_BYTES bytes, $INPUT_LINES lines (avg $((INPUT_BYTES / (INPUT_LINES > 0 ? INPUT_LINES : 1))) bytes)"
    echo
    printf '%-30s %9s %9s %13s %7s %6s %9s %8s %13s\n' \
        what wall_s raw_MB/s out_bytes ratio parts api_calls cpu_s peak_rss_MiB
    row() {
        printf '%-30s %9s %9s %13s %7s %6s %9s %8s %13s\n' "$@"
    }
    if [[ ${LC[status]} == "done" ]]; then
        row "lc: start to last done_upload" "$ACK_SECS" "$(mbps "$INPUT_BYTES" "$ACK_SECS")" "${LC[compressed]}" \
            "$(ratio "$INPUT_BYTES" "${LC[compressed]}")" "${LC[parts]}" \
            "$((N_UPLOAD_URL + N_DONE + N_STREAMS))" "$LC_CPU" "$LC_RSS"
        row "  of which sealing" "$SEAL_SECS" "$(mbps "$INPUT_BYTES" "$SEAL_SECS")" '' '' '' '' "$SEAL_CPU" ''
        row "  of which uploading" "$(elapsed "${LC[sealed_at]}" "${LC[acked_at]}")" '' '' '' '' '' \
            "$(awk -v a="$LC_CPU" -v b="$SEAL_CPU" 'BEGIN { printf "%.2f", a - b }')" ''
        row "lc: until its status agrees" "$LC_SECS" "$(mbps "$INPUT_BYTES" "$LC_SECS")" '' '' '' '' '' ''
    else
        row "lc: ${LC[status]} after" "$(elapsed "$t0" "${LC[done_at]}")" '' "${LC[compressed]}" '' \
            "${LC[acked]}/${LC[parts]}" "$((N_UPLOAD_URL + N_DONE + N_STREAMS))" "$LC_CPU" "$LC_RSS"
        [[ -n $SEAL_SECS ]] && row "  of which sealing" "$SEAL_SECS" "$(mbps "$INPUT_BYTES" "$SEAL_SECS")" '' '' '' '' "$SEAL_CPU" ''
    fi
    row "gzip -6 -c" "$GZ_SECS" "$(mbps "$INPUT_BYTES" "$GZ_SECS")" "$GZ_BYTES" "$(ratio "$INPUT_BYTES" "$GZ_BYTES")" '' '' '' ''
    if [[ $PUT_STATUS == 201 ]]; then
        put_what="curl -T of the .gz (one PUT)"
        [[ -z $PUT_NOTE ]] || put_what="curl -T of a slice (one PUT)"
        row "$put_what" "$(awk -v s="$PUT_SECS" 'BEGIN { printf "%.3f", s }')" '' "$PUT_BYTES" '' '' '' '' ''
    else
        row "curl -T" "failed ($PUT_STATUS)" '' '' '' '' '' '' ''
    fi
    if [[ $PUT_STATUS == 201 ]]; then
        # gzip -6 then one PUT, one after the other: the naive pipeline, in raw MB/s. A slice's
        # PUT time is scaled to the whole .gz.
        PIPE_SECS=$(awk -v g="$GZ_SECS" -v p="$PUT_SECS" -v pb="$PUT_BYTES" -v gb="$GZ_BYTES" \
            'BEGIN { printf "%.3f", g + (pb > 0 ? p * gb / pb : 0) }')
        pipe_what="gzip -6, then curl -T"
        [[ -z $PUT_NOTE ]] || pipe_what="gzip -6, then curl -T (scaled)"
        row "$pipe_what" "$PIPE_SECS" "$(mbps "$INPUT_BYTES" "$PIPE_SECS")" "$GZ_BYTES" \
            "$(ratio "$INPUT_BYTES" "$GZ_BYTES")" '' '' '' ''
    fi
    [[ $PUT_STATUS == 201 ]] && echo "curl -T moved $(mbps "$PUT_BYTES" "$PUT_SECS") MB/s of compressed data to Azurite"
    echo
    echo "API calls seen by the stand-in during lc's run: upload_url $N_UPLOAD_URL, done_upload $N_DONE," \
        "streams $N_STREAMS, of which 429: $N_429"
    echo "lc: exit status ${LC[exit]} after SIGTERM (stopped in ${LC[stop_secs]} s); $LC_ERRORS warning/error lines in its log;" \
        "delivery check: $VERIFIED"
    [[ -z $PUT_NOTE ]] || echo "note: $PUT_NOTE"
    echo "load average before lc started: $LOAD_BEFORE (other work on the $(nproc) cores skews these numbers)"
    if [[ ${LC[status]} != "done" ]]; then
        echo "lc did not deliver everything (${LC[why]}): ${LC[acked]} of ${LC[parts]} parts acknowledged," \
            "backlog ${LC[backlog]:-unknown} files; the end of its log:"
        tail -n 20 "$BENCH_ROOT/lc/lc.log" | sed 's/^/    /'
    elif ((LC_ERRORS > 0)); then
        echo "lc's warnings and errors:"
        grep -E ' (ERROR|WARN) ' "$BENCH_ROOT/lc/lc.log" | head -n 20 | sed 's/^/    /'
    fi

    echo
    echo "targets:"
    ack_mbps=$(mbps "$INPUT_BYTES" "$ACK_SECS")
    lc_mbps=$(mbps "$INPUT_BYTES" "$LC_SECS")
    gz_mbps=$(mbps "$INPUT_BYTES" "$GZ_SECS")
    ack_vs_gz=$(ratio "$ack_mbps" "$gz_mbps")
    lc_vs_gz=$(ratio "$lc_mbps" "$gz_mbps")
    size_vs_gz=''
    ((${LC[compressed]:-0} > 0)) && size_vs_gz=$(ratio "${LC[compressed]}" "$GZ_BYTES")
    at_least() {
        [[ -n $1 ]] || { echo n/a; return; }
        awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "ok" : "MISSED" }'
    }
    printf '  %-66s %8s   %s\n' \
        "lc raw MB/s, start to last done_upload (>= $TARGET_MBPS)" "${ack_mbps:-n/a}" "$(at_least "$ack_mbps" "$TARGET_MBPS")" \
        "lc raw MB/s, start until its 2-s status snapshot agrees (>= $TARGET_MBPS)" "${lc_mbps:-n/a}" "$(at_least "$lc_mbps" "$TARGET_MBPS")" \
        "lc speed / gzip -6 speed, to last done_upload" "${ack_vs_gz:-n/a}" "" \
        "lc speed / gzip -6 speed, until its status agrees" "${lc_vs_gz:-n/a}" "" \
        "lc compressed size / gzip -6 size" "${size_vs_gz:-n/a}" ""
    echo "  ($TARGET_MBPS MB/s is 10x the 50 GB/hour Microsoft documents per log collector)"
    if [[ ${LC[status]} == "done" ]]; then
        # Were each part an upload of its own (two API calls each, as with AWS pre-signed URLs),
        # the tenant's budget would bound sustained delivery; Azure block uploads avoid that.
        lc_ratio=$(ratio "$INPUT_BYTES" "${LC[compressed]}")
        ceiling=$(awk -v c="$CALLS_PER_MIN" -v p="$PART_BYTES" -v r="$lc_ratio" \
            'BEGIN { printf "%.1f", c / 2 * p * r / 60 / 1e6 }')
        echo "  for reference: with one upload per part (AWS), $CALLS_PER_MIN API calls/min at 2 calls per part of" \
            "~$PART_BYTES compressed bytes, at lc's ratio $lc_ratio, would cap sustained delivery at $ceiling raw MB/s"
    fi
    stop_standin
}

# --- the sustained rows ----------------------------------------------------------------------

# Samples every instance's status snapshot (run_dir/PORT.json, rewritten every 2 s) once a
# second until file argv[2] exists: one JSON line per sample, {"t", "sources": {NAME:
# {"messages", "bytes", "backlog_files", "backlog_bytes"}}}. backlog_files counts the open
# segment too.
cat >"$BENCH_ROOT/sample_lc.py" <<'EOF'
import json, os, sys, time

run_dir, stop, out, ports = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with open(out, "a") as f:
    while not os.path.exists(stop):
        sources = {}
        for port in ports:
            try:
                with open(os.path.join(run_dir, f"{port}.json")) as s:
                    snap = json.load(s)
            except (OSError, ValueError):
                continue
            for src in snap.get("sources", []):
                sources[src["name"]] = {
                    "messages": src["messages"],
                    "bytes": src["bytes"],
                    "backlog_files": src["backlog"]["files"],
                    "backlog_bytes": src["backlog"]["bytes"],
                }
        f.write(json.dumps({"t": time.time(), "sources": sources}) + "\n")
        f.flush()
        time.sleep(1)
EOF

# Runs argv[2:] and writes its CPU seconds (user + system) to argv[1]; SIGTERM is passed on.
cat >"$BENCH_ROOT/rusage.py" <<'EOF'
import resource, signal, subprocess, sys

child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
rc = child.wait()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"{ru.ru_utime + ru.ru_stime:.2f}\n")
sys.exit(rc)
EOF

# The report of one sustained row, as "key value" lines: from the stand-in's /_admin/calls
# (argv[1], a file; read after lc stopped), the sampler's timeline (argv[2]), the feed's start
# and end and the drain's end (argv[3..5], Unix seconds), the stand-in's port and CA (argv[6,7])
# to read back every delivered blob, and the spool folder (argv[8]) for what lc still holds.
cat >"$BENCH_ROOT/sustained_report.py" <<'EOF'
import glob, gzip, json, os, ssl, sys, urllib.parse, urllib.request, zlib

calls_file, timeline_file, t0, t_end, t_drained, port, ca, spool = sys.argv[1:9]
t0, t_end, t_drained = float(t0), float(t_end), float(t_drained)
calls = json.load(open(calls_file))
out = {}

# API calls: every answered call (429s too), and the busiest 60 s window of them.
api = [(at, st) for e in ("upload_url", "done_upload", "streams")
       for at, st in zip(calls[e]["at"], calls[e]["statuses"])]
times = sorted(at for at, _ in api)
admitted = sorted(at for at, st in api if st != 429)


def busiest(ts):
    j, best = 0, 0
    for i, t in enumerate(ts):
        while ts[j] <= t - 60:
            j += 1
        best = max(best, i - j + 1)
    return best


out["api_calls"] = len(times)
out["api_max_per_min"] = busiest(times)
out["api_max_admitted_per_min"] = busiest(admitted)
out["api_429"] = sum(st == 429 for _, st in api)
out["api_other_errors"] = sum(st != 429 and not (isinstance(st, int) and st < 300) for _, st in api)
span = (t_drained - t0) / 60
out["api_mean_per_min"] = f"{len(times) / span:.1f}" if span > 0 else ""

# Every delivered blob read back: lines and bytes of text, by the end of the feed and in all.
ctx = ssl.create_default_context(cafile=ca)
uploads = [u for u in calls["uploads"] if not u["duplicate"]]
out["duplicates"] = sum(u["duplicate"] for u in calls["uploads"])
lines = {"end": 0, "all": 0}
text = {"end": 0, "all": 0}
compressed = {"end": 0, "all": 0}
after_end, begun_after = {}, {}
for u in uploads:
    url = f"https://127.0.0.1:{port}/_admin/blob?name={urllib.parse.quote(u['blob'])}"
    n = b = 0
    with urllib.request.urlopen(url, context=ctx) as r:
        d = zlib.decompressobj(wbits=31)
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            while chunk:
                data = d.decompress(chunk)
                n += data.count(b"\n")
                b += len(data)
                if d.eof:  # the next gzip member
                    chunk = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                else:
                    chunk = b""
    keys = ("all", "end") if u["at"] <= t_end else ("all",)
    for k in keys:
        lines[k] += n
        text[k] += b
        compressed[k] += u["size"]
    if u["at"] > t_end:
        after_end[u["inputStreamName"]] = after_end.get(u["inputStreamName"], 0) + 1
    if u["url_at"] > t_end:
        begun_after[u["inputStreamName"]] = begun_after.get(u["inputStreamName"], 0) + 1
out["uploads"] = len(uploads)
out["lines_end"], out["lines_all"] = lines["end"], lines["all"]
out["text_bytes_end"], out["text_bytes_all"] = text["end"], text["all"]
out["compressed_end"], out["compressed_all"] = compressed["end"], compressed["all"]
out["uploads_after_end_max"] = max(after_end.values(), default=0)
out["uploads_begun_after_end_max"] = max(begun_after.values(), default=0)

# What lc still holds: lines of its open and sealed segments (quarantine aside).
held = 0
for path in glob.glob(os.path.join(spool, "*", "*.log")) + glob.glob(os.path.join(spool, "*", "*.log.gz")):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        held += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
out["lines_held"] = held

# The timeline: what lc received, and its backlog at the end of the feed and at its largest.
samples = [json.loads(line) for line in open(timeline_file) if line.strip()]
last = samples[-1]["sources"] if samples else {}
out["received_messages"] = sum(s["messages"] for s in last.values())
out["received_bytes"] = sum(s["bytes"] for s in last.values())
at_end = next((s["sources"] for s in samples if s["t"] >= t_end), last)
out["backlog_end_files"] = sum(s["backlog_files"] for s in at_end.values())
out["backlog_end_bytes"] = sum(s["backlog_bytes"] for s in at_end.values())
during = [s for s in samples if t0 <= s["t"] <= t_end]
out["backlog_max_files"] = max((max((v["backlog_files"] for v in s["sources"].values()), default=0)
                                for s in during), default=0)
for k, v in out.items():
    print(k, v)
EOF

# $1 things over $2 seconds, per second, whole.
per_sec() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s }'
}

# $1 as a percentage of $2, to a tenth.
percent() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b }'
}

# CPU seconds $1 over $2 s of wall time, in % of one core.
core_pct() {
    awk -v c="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", 100 * c / s }'
}

# Waits until every source's backlog is at most its open segment and lc's counters have
# settled (the timeline's last sample says so, and its message count equals that of the sample
# three seconds before, so a snapshot written after the last read is in), or BENCH_DRAIN_SECS
# pass; returns 1 on the deadline.
wait_drained() {
    local timeline=$1 deadline=$((SECONDS + DRAIN_SECS))
    until tail -n4 "$timeline" | python3 -c '
import json, sys
samples = [json.loads(line)["sources"] for line in sys.stdin if line.strip()]
count = lambda s: sum(v["messages"] for v in s.values())
ok = len(samples) == 4 and samples[-1] and count(samples[0]) == count(samples[-1])
sys.exit(0 if ok and all(v["backlog_files"] <= 1 for v in samples[-1].values()) else 1)'; do
        ((SECONDS > deadline)) && return 1
        sleep 1
    done
}

# One sustained row: N instances (`lc run PORT` of one config, one syslog-tcp source each,
# default rotation, sharing run_dir and so the host's API bucket) with api_calls_per_min = CALLS,
# each fed by its own loggen at 1/N of BENCH_GB_PER_HOUR for BENCH_SUSTAINED_SECS, against a
# fresh stand-in (the tenant's 30 calls a minute, 429 past it) with the shared Azurite behind.
sustained_row() {
    local n=$1 calls=$2 d=$BENCH_ROOT/sustained-$1 k port streams='' ports=() pids=() feeders=()
    mkdir -p "$d/cloud" "$d/run"
    for ((k = 1; k <= n; k++)); do
        streams+="${streams:+,}bench$k"
    done
    start_standin "$d/cloud" "$streams"
    write_lc_ini "$d" "$calls"
    for ((k = 1; k <= n; k++)); do
        port=$(free_port tcp)
        while [[ " ${ports[*]} " == *" $port "* ]]; do port=$(free_port tcp); done
        ports+=("$port")
        printf '\n[source bench%d]\nformat = GENERIC_CEF\nreceiver = syslog-tcp\nport = %d\n' \
            "$k" "$port" >>"$d/lc.ini"
    done
    local pid deadline
    for port in "${ports[@]}"; do
        "$LC_BIN" run --config "$d/lc.ini" "$port" >"$d/lc-$port.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        STARTED_PIDS+=("$pid")
    done
    for k in "${!ports[@]}"; do
        deadline=$((SECONDS + READY_TIMEOUT_SECS))
        until port_bound tcp "${ports[$k]}"; do
            if ! kill -0 "${pids[$k]}" 2>/dev/null || ((SECONDS > deadline)); then
                sed 's/^/    /' "$d/lc-${ports[$k]}.log" >&2
                die "lc on port ${ports[$k]} did not start"
            fi
            sleep 0.05
        done
    done

    # loggen's --rate is per connection.
    local rate per_conn
    rate=$(awk -v g="$GB_PER_HOUR" -v s="$MSG_SIZE" -v n="$n" 'BEGIN { printf "%d", g * 1e9 / 3600 / s / n + 0.999 }')
    per_conn=$(((rate + FEED_CONNS - 1) / FEED_CONNS))
    note "$n instance(s), api_calls_per_min = $calls: $SUSTAINED_SECS s of loggen at $rate msg/s of $MSG_SIZE bytes each"

    python3 "$BENCH_ROOT/sample_lc.py" "$d/run" "$d/sampler.stop" "$d/timeline.jsonl" "${ports[@]}" &
    local sampler=$!
    STARTED_PIDS+=("$sampler")
    local load_before t0 t_end t_drained cpu0=() cpu1=()
    load_before=$(uptime)
    for pid in "${pids[@]}"; do cpu0+=("$(awk '{print $14 + $15}' "/proc/$pid/stat")"); done
    t0=$(now)
    for port in "${ports[@]}"; do
        python3 "$BENCH_ROOT/rusage.py" "$d/loggen-$port.cpu" "$LOGGEN" --inet --stream \
            --size "$MSG_SIZE" --rate "$per_conn" --active-connections "$FEED_CONNS" \
            --interval "$SUSTAINED_SECS" --quiet 127.0.0.1 "$port" >"$d/loggen-$port.log" 2>&1 &
        feeders+=("$!")
        STARTED_PIDS+=("$!")
    done
    for pid in "${feeders[@]}"; do
        wait "$pid" || note "loggen exited with status $? (see $d)"
        forget_pid "$pid"
    done
    t_end=$(now)
    for pid in "${pids[@]}"; do cpu1+=("$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"); done
    local load_after drained=yes
    load_after=$(uptime)
    note "feed done; waiting up to $DRAIN_SECS s for the sealed backlog to be delivered"
    wait_drained "$d/timeline.jsonl" || drained=no
    t_drained=$(now)
    touch "$d/sampler.stop"
    wait "$sampler" || true
    forget_pid "$sampler"
    for pid in "${pids[@]}"; do
        stop_pid "$pid"
        forget_pid "$pid"
    done
    curl -sS -f --cacert "$CA_DIR/ca.pem" "https://127.0.0.1:$STANDIN_PORT/_admin/calls" >"$d/calls.json" ||
        die "the stand-in did not answer /_admin/calls"
    note "reading back every delivered blob"
    declare -A R
    local key value
    while read -r key value; do
        R[$key]=$value
    done < <(python3 "$BENCH_ROOT/sustained_report.py" "$d/calls.json" "$d/timeline.jsonl" \
        "$t0" "$t_end" "$t_drained" "$STANDIN_PORT" "$CA_DIR/ca.pem" "$d/state/spool")
    stop_standin

    local secs sent=0 c loggen_cpu=0 lc_cpu=0 errors=0
    secs=$(elapsed "$t0" "$t_end")
    for port in "${ports[@]}"; do
        c=$(sed -n 's/.*count=\([0-9]*\).*/\1/p; s/.*count = \([0-9]*\).*/\1/p' "$d/loggen-$port.log" | tail -n1)
        sent=$((sent + ${c:-0}))
        loggen_cpu=$(awk -v a="$loggen_cpu" -v b="$(cat "$d/loggen-$port.cpu" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
        errors=$((errors + $(grep -cE ' (ERROR|WARN) ' "$d/lc-$port.log" || true)))
    done
    for k in "${!pids[@]}"; do
        lc_cpu=$(awk -v a="$lc_cpu" -v t="$((${cpu1[$k]} - ${cpu0[$k]}))" -v hz="$CLK_TCK" 'BEGIN { print a + t / hz }')
    done
    local batch_ok=MISSED
    ((R[uploads_begun_after_end_max] <= 1)) && [[ $drained == yes ]] && batch_ok=ok
    local budget_ok=MISSED
    ((R[api_max_per_min] <= CALLS_PER_MIN && R[api_429] == 0)) && budget_ok=ok
    local rate_ok=MISSED
    [[ $(awk -v b="${R[received_bytes]}" -v s="$secs" -v g="$VENDOR_GB_PER_HOUR" 'BEGIN { print (b / s >= g * 1e9 / 3600) }') == 1 ]] && rate_ok=ok
    local accounted=$((R[lines_all] + R[lines_held]))

    echo
    echo "sustained row: $n instance(s) of lc, api_calls_per_min = $calls (host), stand-in enforcing" \
        "$CALLS_PER_MIN/min; loggen $SUSTAINED_SECS s at $rate msg/s x $MSG_SIZE bytes per instance" \
        "($FEED_CONNS connection(s) each)"
    printf '  %-52s %s\n' \
        "offered by loggen (sent / feed s)" "$(mbps $((sent * MSG_SIZE)) "$secs") MB/s, $sent messages in $secs s" \
        "received by lc (its counters / feed s)" "$(per_sec "${R[received_messages]}" "$secs") msg/s, $(mbps "${R[received_bytes]}" "$secs") MB/s ($rate_ok: >= $VENDOR_GB_PER_HOUR GB/hour)" \
        "delivered during the feed (read back / feed s)" "$(per_sec "${R[lines_end]}" "$secs") msg/s, $(percent "${R[lines_end]}" "${R[received_messages]}") % of received; $(mbps "${R[text_bytes_end]}" "$secs") MB/s as stored text, $(mbps "${R[compressed_end]}" "$secs") MB/s compressed" \
        "delivered in all, by the end of the drain" "${R[lines_all]} lines in ${R[uploads]} uploads, ${R[duplicates]} duplicate" \
        "API calls (upload_url, done_upload, streams)" "${R[api_calls]}, ${R[api_mean_per_min]}/min on average" \
        "  most in any 60 s, all / answered 2xx" "${R[api_max_per_min]} / ${R[api_max_admitted_per_min]} ($budget_ok: <= $CALLS_PER_MIN, no 429)" \
        "  answered 429 / other errors" "${R[api_429]} / ${R[api_other_errors]}" \
        "backlog at the end of the feed (all instances)" "${R[backlog_end_files]} files (open segments included), ${R[backlog_end_bytes]} bytes" \
        "  largest backlog of one instance during the feed" "${R[backlog_max_files]} files" \
        "  uploads done after the feed, most of one instance" "${R[uploads_after_end_max]}, of which ${R[uploads_begun_after_end_max]} begun after it ($batch_ok: one batch)" \
        "  drained to the open segments" "$drained, $(elapsed "$t_end" "$t_drained") s after the feed" \
        "lines: delivered + still in lc's spool" "$accounted of ${R[received_messages]} received, $sent sent" \
        "CPU: lc (all instances) / loggen, % of one core" "$(core_pct "$lc_cpu" "$secs")% / $(core_pct "$loggen_cpu" "$secs")% ($(nproc) cores)" \
        "lc warning/error lines" "$errors"
    echo "  uptime before the feed: $load_before"
    echo "  uptime after the feed:  $load_after"
}

# --- main ------------------------------------------------------------------------------------

echo "delivery benchmark: rows $ROWS; $(nproc) cores; $(uptime)"

prepare_lc || die "$LC_NOTE"

CA_DIR=$BENCH_ROOT/ca
mkdir -p "$CA_DIR" "$BENCH_ROOT/azurite"
make_test_ca "$CA_DIR"
TOKEN=$(openssl rand -hex 32)
note "starting azurite"
start_azurite "$BENCH_ROOT/azurite"

for row in $ROWS; do
    case $row in
        spool) spool_row ;;
        sustained) sustained_row 1 "$SOLO_CALLS" ;;
        shared) sustained_row "$SHARED_INSTANCES" "$HOST_CALLS" ;;
    esac
    echo
done
[[ -z $LC_NOTE ]] || echo "note: $LC_NOTE"
exit 0
