#!/usr/bin/env bash
# Syslog receive benchmark: lc against rsyslog and syslog-ng, measured in the same run.
#
# For each receiver and each of TCP, UDP and TLS, a fresh receiver in its own temp dir listens on
# free loopback ports, syslog-ng's loggen sends fixed-size messages, and this script watches the
# receiver's output file until every message is on disk (or the count stops growing). It reports
# messages/s from loggen's start to the last line on disk, the receiver's CPU seconds per million
# messages on disk, its peak RSS (VmHWM), and lost messages; then lc/rsyslog ratios against the
# project's targets. A benchmark, not a test: it exits 0 whether or not the targets are met.
#
# loggen's --rate is not smooth: each connection starts with a burst of 0.9 s worth of messages
# sent as fast as it can, then paces. The UDP rows therefore open with ~135k datagrams at several
# hundred thousand per second, the same for every receiver; longer rows dilute the burst.
#
# The TLS rows use loggen --use-ssl, which presents no client certificate and does not check the
# server's, so every receiver runs TLS without client-certificate verification: lc with
# server-cert.pem and server-key.pem but no ca.pem in its certs_dir, rsyslog's imtcp with the
# gtls driver in AuthMode "anon", syslog-ng with peer-verify(optional-untrusted). All three serve
# the same certificate (ECDSA P-256, from lc certs init; openssl if lc is not available).
# On one connection loggen's TLS client, not lc, sets lc's rate (lc uses well under a core);
# BENCH_TLS_CONNS=2 shows more of lc, but on 2 cores rsyslog gets slower with more connections.
# loggen never reads from a TLS connection after the handshake: if the receiver sends TLS 1.3
# session tickets (rustls does by default; rsyslog's GnuTLS and syslog-ng here do not), they
# are unread when loggen closes, so the kernel resets the connection instead of finishing it,
# and whatever loggen still had queued to send is lost; the lost column shows it.
#
# Needs what scripts/deps.sh installs (rsyslogd with rsyslog-gnutls, /opt/lc-peers/bin/{loggen,
# syslog-ng}, python3, openssl).
# Knobs (environment):
#   LC_BIN             lc binary (default target/release/lc, built with cargo if missing)
#   BENCH_RECEIVERS    subset and order of "lc rsyslog syslog-ng"
#   BENCH_PROTOS       subset and order of "tcp udp tls"
#   BENCH_TCP_COUNT    messages per TCP row (default 4000000)
#   BENCH_TCP_CONNS    loggen --active-connections for TCP (default 1)
#   BENCH_TLS_COUNT    messages per TLS row (default 2000000)
#   BENCH_TLS_CONNS    loggen --active-connections for TLS (default 1)
#   BENCH_UDP_COUNT    messages per UDP row (default 4500000, 30 s at the default rate)
#   BENCH_UDP_RATE     offered UDP messages/s (default 150000)
#   BENCH_UDP_RCVBUF   if set, SO_RCVBUF in bytes for rsyslog's and syslog-ng's UDP sockets
#                      (default: theirs, i.e. the kernel's net.core.rmem_default)
#   BENCH_MSG_SIZE     loggen --size (default 300)
#   BENCH_STALL_SECS   give up on a row once loggen is done and the output stopped growing this
#                      long (default 3)
#   BENCH_RENDER       vendor (default) or raw. vendor: every receiver parses the syslog header
#                      and writes the traditional file format (lc's render = vendor, rsyslog's
#                      RSYSLOG_TraditionalFileFormat, syslog-ng's parsed "$DATE $HOST $MSGHDR$MSG");
#                      raw: every receiver writes the message as received
#   BENCH_FORMAT       lc's `format =` for the bench sources (default GENERIC_CEF). loggen's lines
#                      match no format, so with GENERIC_CEF every line takes the live format
#                      check's slow path (the CEF recognizer, then a guess over every format);
#                      a type without a recognizer (e.g. CISCO_FWSM) turns the check off, which
#                      is how BENCHMARKS.md measures what the check costs
#   BENCH_KEEP=1       keep the temp dirs (receiver configs, logs, output) for inspection
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LC_BIN_DEFAULT=$REPO_ROOT/target/release/lc
LC_BIN=${LC_BIN:-$LC_BIN_DEFAULT}
LOGGEN=${LOGGEN:-/opt/lc-peers/bin/loggen}
SYSLOG_NG=${SYSLOG_NG:-/opt/lc-peers/bin/syslog-ng}
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || echo /usr/sbin/rsyslogd)}

RECEIVERS=${BENCH_RECEIVERS:-lc rsyslog syslog-ng}
PROTOS=${BENCH_PROTOS:-tcp udp tls}
TCP_COUNT=${BENCH_TCP_COUNT:-4000000}
TCP_CONNS=${BENCH_TCP_CONNS:-1}
TLS_COUNT=${BENCH_TLS_COUNT:-2000000}
TLS_CONNS=${BENCH_TLS_CONNS:-1}
UDP_COUNT=${BENCH_UDP_COUNT:-4500000}
RENDER=${BENCH_RENDER:-vendor}
case $RENDER in
vendor | raw) ;;
*)
    echo "syslog.sh: BENCH_RENDER must be vendor or raw, not $RENDER" >&2
    exit 2
    ;;
esac
UDP_RATE=${BENCH_UDP_RATE:-150000}
UDP_RCVBUF=${BENCH_UDP_RCVBUF:-}
MSG_SIZE=${BENCH_MSG_SIZE:-300}
STALL_SECS=${BENCH_STALL_SECS:-3}
FORMAT=${BENCH_FORMAT:-GENERIC_CEF}
KEEP=${BENCH_KEEP:-0}
# While loggen is still sending, a receiver that writes nothing for this long is taken as hung.
HUNG_SECS=30
READY_TIMEOUT_SECS=15
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in "$LOGGEN" "$RSYSLOGD" "$SYSLOG_NG"; do
    [[ -x $tool ]] || die "$tool: not found; run scripts/deps.sh first"
done
command -v python3 >/dev/null || die "python3: not found; run scripts/deps.sh first"
((TCP_COUNT % TCP_CONNS == 0)) || die "BENCH_TCP_COUNT=$TCP_COUNT is not a multiple of BENCH_TCP_CONNS=$TCP_CONNS"
((TLS_COUNT % TLS_CONNS == 0)) || die "BENCH_TLS_COUNT=$TLS_COUNT is not a multiple of BENCH_TLS_CONNS=$TLS_CONNS"
for proto in $PROTOS; do
    case $proto in
        tcp | udp | tls) ;;
        *) die "BENCH_PROTOS: unknown protocol $proto; expected tcp, udp or tls" ;;
    esac
done

bench_init lc-bench

now() {
    date +%s.%N
}

# utime+stime of a process and all its descendants, in clock ticks.
cpu_ticks() {
    local pid total=0 rest fields
    for pid in $(tree_pids "$1"); do
        rest=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # Field 2 (comm) may contain spaces; utime and stime are fields 14 and 15.
        rest=${rest##*) }
        read -ra fields <<<"$rest"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# Sum of VmHWM (KiB) over a process and its descendants.
peak_rss_kib() {
    local pid total=0 kib
    for pid in $(tree_pids "$1"); do
        kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

tree_pids() {
    local pid
    echo "$1"
    for pid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        tree_pids "$pid"
    done
}

# Counts newlines in the files matching a glob as they grow, reading only new bytes, until
# TARGET lines are there, or loggen is done (DONE_FILE exists) and nothing was added for
# STALL seconds, or nothing was added for HUNG seconds at all. Prints "LINES LAST_GROWTH_TIME".
cat >"$BENCH_ROOT/count_lines.py" <<'EOF'
import glob, os, sys, time

pattern, target, stall, hung, done_file, t0 = sys.argv[1:7]
target, stall, hung, t0 = int(target), float(stall), float(hung), float(t0)
offsets, lines, last_growth = {}, 0, t0
while True:
    grew = False
    for path in glob.glob(pattern):
        try:
            with open(path, "rb") as f:
                f.seek(offsets.get(path, 0))
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    lines += chunk.count(b"\n")
                    grew = True
                offsets[path] = f.tell()
        except FileNotFoundError:
            pass
    now = time.time()
    if grew:
        last_growth = now
    if lines >= target:
        break
    quiet = now - last_growth
    if quiet >= hung or (os.path.exists(done_file) and quiet >= stall):
        break
    time.sleep(0.02)
print(lines, f"{last_growth:.6f}")
EOF

# --- certificates ----------------------------------------------------------------------------

# The server certificate and key every TLS row serves, made once per run in $BENCH_ROOT/certs:
# by lc certs init, whose ca.pem is then removed (with ca.pem in certs_dir, lc requires client
# certificates, which loggen cannot present), or by openssl when there is no lc binary.
CERTS_DIR=''
prepare_certs() {
    [[ -n $CERTS_DIR ]] && return 0
    local dir=$BENCH_ROOT/certs
    if prepare_lc; then
        printf '[collector]\ncerts_dir = %s\n' "$dir" >"$BENCH_ROOT/certs.ini"
        "$LC_BIN" certs init "$dir" --config "$BENCH_ROOT/certs.ini" --name 127.0.0.1 --name localhost \
            >"$BENCH_ROOT/certs.log" 2>&1 || {
            cat "$BENCH_ROOT/certs.log" >&2
            die "$LC_BIN certs init failed"
        }
        rm -f "$dir/ca.pem"
    else
        mkdir -p "$dir"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj /CN=127.0.0.1 -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
            -keyout "$dir/server-key.pem" -out "$dir/server-cert.pem" >"$BENCH_ROOT/certs.log" 2>&1 || {
            cat "$BENCH_ROOT/certs.log" >&2
            die "openssl req failed"
        }
    fi
    CERTS_DIR=$dir
}

# --- receivers -------------------------------------------------------------------------------
# Each start_* function takes (dir, tcp_port, udp_port, tls_port), starts the receiver in the
# background with its stderr in dir/receiver.log, and sets RECV_PID and OUT_GLOB (for the TCP
# row; the UDP and TLS rows' globs are in OUT_GLOB_UDP and OUT_GLOB_TLS). The TLS listener is
# there only when tls_port is not empty, i.e. in the TLS rows.

start_lc() {
    local dir=$1 tcp_port=$2 udp_port=$3 tls_port=$4 tls_conf=''
    mkdir -p "$dir/lc/state" "$dir/lc/run" "$dir/lc/outbox"
    if [[ -n $tls_port ]]; then
        # Only the server certificate and key: no ca.pem, so no client certificates required.
        mkdir -p "$dir/certs"
        cp "$CERTS_DIR/server-cert.pem" "$CERTS_DIR/server-key.pem" "$dir/certs/"
        tls_conf="certs_dir = $dir/certs"
    fi
    cat >"$dir/lc.ini" <<EOF
[collector]
name = bench
state_dir = $dir/lc/state
run_dir = $dir/lc/run
listen = 127.0.0.1
log_level = warn
$tls_conf

[spool]
rotate_bytes = 4G
rotate_secs = 86400
max_spool_bytes = 20G
min_free_bytes = 100M

[delivery]
url = dir:$dir/lc/outbox

[source bench_tcp]
format = $FORMAT
receiver = syslog-tcp
port = $tcp_port
render = $RENDER

[source bench_udp]
format = $FORMAT
receiver = syslog-udp
port = $udp_port
render = $RENDER
EOF
    if [[ -n $tls_port ]]; then
        cat >>"$dir/lc.ini" <<EOF

[source bench_tls]
format = $FORMAT
receiver = syslog-tls
port = $tls_port
render = $RENDER
EOF
    fi
    "$LC_BIN" run --config "$dir/lc.ini" >"$dir/receiver.log" 2>&1 &
    RECV_PID=$!
    # With rotation far away, every message stays in the open, uncompressed segment.
    OUT_GLOB="$dir/lc/state/spool/bench_tcp/*.log"
    OUT_GLOB_UDP="$dir/lc/state/spool/bench_udp/*.log"
    OUT_GLOB_TLS="$dir/lc/state/spool/bench_tls/*.log"
}

start_rsyslog() {
    local dir=$1 tcp_port=$2 udp_port=$3 tls_port=$4 rcvbuf='' tls_global='' tls_module='' tls_input=''
    [[ -n $UDP_RCVBUF ]] && rcvbuf="rcvbufSize=\"$UDP_RCVBUF\""
    local rs_template=raw
    [[ $RENDER == vendor ]] && rs_template=RSYSLOG_TraditionalFileFormat
    mkdir -p "$dir/work"
    # imptcp has no TLS; imtcp with the gtls stream driver (rsyslog-gnutls) does. Mode 1 is TLS
    # only; AuthMode anon asks for no client certificate.
    if [[ -n $tls_port ]]; then
        tls_global="DefaultNetstreamDriverCertFile=\"$CERTS_DIR/server-cert.pem\" DefaultNetstreamDriverKeyFile=\"$CERTS_DIR/server-key.pem\""
        tls_module="module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")"
        tls_input="input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$tls_port\" ruleset=\"bench\")"
    fi
    # No imuxsock or imklog, so this instance never touches /dev/log or the kernel log, and
    # its own pid file keeps it apart from a system rsyslogd. omfile is built in. The inputs are
    # bound to their own ruleset, so rsyslogd's internal messages (default ruleset) stay out of
    # the output file.
    cat >"$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir/work" $tls_global)
module(load="imptcp")
module(load="imudp")
$tls_module
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="bench") {
    action(type="omfile" file="$dir/out.log" template="$rs_template")
}
input(type="imptcp" address="127.0.0.1" port="$tcp_port" ruleset="bench")
input(type="imudp" address="127.0.0.1" port="$udp_port" ruleset="bench" $rcvbuf)
$tls_input
EOF
    "$RSYSLOGD" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/receiver.log" 2>&1 &
    RECV_PID=$!
    OUT_GLOB=$dir/out.log
    OUT_GLOB_UDP=$dir/out.log
    OUT_GLOB_TLS=$dir/out.log
}

start_syslog_ng() {
    local dir=$1 tcp_port=$2 udp_port=$3 tls_port=$4 rcvbuf='' tls_source='' tls_log=''
    [[ -n $UDP_RCVBUF ]] && rcvbuf="so-rcvbuf($UDP_RCVBUF)"
    if [[ -n $tls_port ]]; then
        # optional-untrusted: a client certificate is neither required nor checked.
        tls_source="source s_tls { network(ip(\"127.0.0.1\") port($tls_port) transport(\"tls\") flags(no-parse)
    tls(cert-file(\"$CERTS_DIR/server-cert.pem\") key-file(\"$CERTS_DIR/server-key.pem\") peer-verify(optional-untrusted))); };"
        tls_log=" source(s_tls);"
    fi
    # flags(no-parse) keeps the whole line as $MSG. flags(flow-control) makes syslog-ng stop
    # reading TCP when its file queue is full instead of dropping messages, like rsyslog and lc.
    local parse='flags(no-parse)' template='\$MSG\n'
    if [[ $RENDER == vendor ]]; then
        parse=''
        template='\$DATE \$HOST \$MSGHDR\$MSG\n'
        tls_source=${tls_source/ flags(no-parse)/}
    fi
    cat >"$dir/syslog-ng.conf" <<EOF
@version: 3.38
source s_tcp { network(ip("127.0.0.1") port($tcp_port) transport("tcp") $parse); };
source s_udp { network(ip("127.0.0.1") port($udp_port) transport("udp") $parse $rcvbuf); };
$tls_source
destination d_file { file("$dir/out.log" template("$template")); };
log { source(s_tcp); source(s_udp);$tls_log destination(d_file); flags(flow-control); };
EOF
    # The wrapper puts the persist file, pid file and control socket next to the config.
    "$SYSLOG_NG" -F -f "$dir/syslog-ng.conf" >"$dir/receiver.log" 2>&1 &
    RECV_PID=$!
    OUT_GLOB=$dir/out.log
    OUT_GLOB_UDP=$dir/out.log
    OUT_GLOB_TLS=$dir/out.log
}

# --- one row ---------------------------------------------------------------------------------

declare -A RESULT

# Runs one receiver against one protocol and stores sent, lines, rate, cpu, rss in RESULT.
run_row() {
    local recv=$1 proto=$2
    local key=$recv/$proto dir tcp_port udp_port tls_port='' port count conns rate
    dir=$BENCH_ROOT/$recv-$proto
    mkdir -p "$dir"
    tcp_port=$(free_port tcp)
    udp_port=$(free_port udp)
    if [[ $proto == tls ]]; then
        prepare_certs
        # Another free port, not the TCP one just found (nothing listens there yet).
        tls_port=$(free_port tcp)
        while [[ $tls_port == "$tcp_port" ]]; do tls_port=$(free_port tcp); done
    fi

    case $recv in
        lc) start_lc "$dir" "$tcp_port" "$udp_port" "$tls_port" ;;
        rsyslog) start_rsyslog "$dir" "$tcp_port" "$udp_port" "$tls_port" ;;
        syslog-ng) start_syslog_ng "$dir" "$tcp_port" "$udp_port" "$tls_port" ;;
    esac
    STARTED_PIDS+=("$RECV_PID")
    local pid=$RECV_PID glob=$OUT_GLOB
    [[ $proto == udp ]] && glob=$OUT_GLOB_UDP
    [[ $proto == tls ]] && glob=$OUT_GLOB_TLS

    local deadline=$((SECONDS + READY_TIMEOUT_SECS))
    until port_bound tcp "$tcp_port" && port_bound udp "$udp_port" &&
        { [[ -z $tls_port ]] || port_bound tcp "$tls_port"; }; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
            note "$recv: not listening on 127.0.0.1:$tcp_port/tcp and :$udp_port/udp${tls_port:+ and :$tls_port/tcp (TLS)}; its log:"
            sed 's/^/    /' "$dir/receiver.log" >&2
            stop_pid "$pid"
            forget_pid "$pid"
            RESULT[$key]=failed
            return 0
        fi
        sleep 0.05
    done

    # loggen's -n and -r are per connection. Its rate limiter starts with a burst of 0.9 s
    # worth of messages at full speed, then paces; -I is the run time limit, 10 s by default,
    # so it is set far beyond what a fixed count needs.
    # loggen's transport plugins are exclusive: --use-ssl (the ssl plugin, always TCP) goes
    # without the socket plugin's --inet/--stream.
    local transport
    case $proto in
        tcp)
            port=$tcp_port conns=$TCP_CONNS count=$((TCP_COUNT / TCP_CONNS)) rate=1000000000
            transport=(--inet --stream)
            ;;
        udp)
            port=$udp_port conns=1 count=$UDP_COUNT rate=$UDP_RATE
            transport=(--inet --dgram)
            ;;
        tls)
            port=$tls_port conns=$TLS_CONNS count=$((TLS_COUNT / TLS_CONNS)) rate=1000000000
            transport=(--use-ssl)
            ;;
    esac

    local cpu0 t0 loggen_pid counter_pid
    cpu0=$(cpu_ticks "$pid")
    t0=$(now)
    "$LOGGEN" "${transport[@]}" --size "$MSG_SIZE" --rate "$rate" --number "$count" \
        --active-connections "$conns" --interval 86400 --quiet \
        127.0.0.1 "$port" >"$dir/loggen.log" 2>&1 &
    loggen_pid=$!
    STARTED_PIDS+=("$loggen_pid")
    python3 "$BENCH_ROOT/count_lines.py" "$glob" $((count * conns)) "$STALL_SECS" "$HUNG_SECS" \
        "$dir/loggen.done" "$t0" >"$dir/count.out" &
    counter_pid=$!
    STARTED_PIDS+=("$counter_pid")

    wait "$loggen_pid" || note "$recv/$proto: loggen exited with status $? (see below)"
    forget_pid "$loggen_pid"
    touch "$dir/loggen.done"
    wait "$counter_pid" || die "$recv/$proto: line counter failed"
    forget_pid "$counter_pid"

    local cpu1 rss lines t_end sent
    cpu1=$(cpu_ticks "$pid")
    rss=$(peak_rss_kib "$pid")
    read -r lines t_end <"$dir/count.out"
    # loggen's closing line: "average rate = R msg/sec, count=N, time=..."
    sent=$(sed -n 's/.*count=\([0-9]*\),.*/\1/p' "$dir/loggen.log" | tail -n1)
    if [[ -z $sent ]]; then
        note "$recv/$proto: no count in loggen's output:"
        sed 's/^/    /' "$dir/loggen.log" >&2
        sent=$((count * conns))
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        note "$recv/$proto: receiver exited during the run; its log:"
        sed 's/^/    /' "$dir/receiver.log" >&2
    fi
    stop_pid "$pid"
    forget_pid "$pid"

    RESULT[$key]=$(awk -v sent="$sent" -v lines="$lines" -v t0="$t0" -v t1="$t_end" \
        -v ticks=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v rss="$rss" 'BEGIN {
            rate = (lines > 0 && t1 > t0) ? lines / (t1 - t0) : 0
            cpu = lines > 0 ? ticks / hz / lines * 1e6 : -1
            printf "%d %d %.0f %.3f %.1f", sent, lines, rate, cpu, rss / 1024
        }')
    [[ $KEEP == 1 ]] || rm -rf "$dir"
}

# --- lc binary -------------------------------------------------------------------------------


# --- main ------------------------------------------------------------------------------------

echo "syslog receive benchmark: $MSG_SIZE-byte messages; TCP $TCP_COUNT over $TCP_CONNS connection(s), unpaced;" \
    "UDP $UDP_COUNT offered at $UDP_RATE msg/s; UDP rcvbuf ${UDP_RCVBUF:-default};" \
    "TLS $TLS_COUNT over $TLS_CONNS connection(s), unpaced, no client certificate; render $RENDER; $(nproc) cores"

for recv in $RECEIVERS; do
    case $recv in
        lc | rsyslog | syslog-ng) ;;
        *) die "BENCH_RECEIVERS: unknown receiver $recv; expected lc, rsyslog or syslog-ng" ;;
    esac
    if [[ $recv == lc ]] && ! prepare_lc; then
        note "$LC_NOTE"
        for proto in $PROTOS; do
            RESULT[lc/$proto]=n/a
        done
        continue
    fi
    for proto in $PROTOS; do
        note "running $recv/$proto"
        run_row "$recv" "$proto"
    done
done

echo
printf '%-10s %-5s %10s %10s %9s %7s %11s %13s %13s\n' \
    receiver proto sent on_disk lost lost% msg/s cpu_s/1M_msg peak_rss_MiB
for recv in $RECEIVERS; do
    for proto in $PROTOS; do
        row=${RESULT[$recv/$proto]:-n/a}
        if [[ $row == n/a || $row == failed ]]; then
            printf '%-10s %-5s %10s\n' "$recv" "$proto" "$row"
            continue
        fi
        read -r sent lines rate cpu rss <<<"$row"
        awk -v r="$recv" -v p="$proto" -v sent="$sent" -v lines="$lines" -v rate="$rate" \
            -v cpu="$cpu" -v rss="$rss" 'BEGIN {
                lost = sent - lines
                pct = 0
                if (sent > 0) pct = 100 * lost / sent
                cpu_text = "n/a"
                if (cpu >= 0) cpu_text = sprintf("%.2f", cpu)
                printf "%-10s %-5s %10d %10d %9d %6.2f%% %11d %13s %13.1f\n", r, p, sent, lines,
                    lost, pct, rate, cpu_text, rss
            }'
    done
done

# Field N (1-based: sent lines rate cpu rss) of a row, or empty when the row has no numbers.
field() {
    local row=${RESULT[$1]:-n/a}
    [[ $row == n/a || $row == failed ]] && return 0
    awk -v n="$2" '{print $n}' <<<"$row"
}

loss_pct() {
    local sent lines
    sent=$(field "$1" 1)
    lines=$(field "$1" 2)
    [[ -n $sent && $sent -gt 0 ]] || return 0
    awk -v s="$sent" -v l="$lines" 'BEGIN { printf "%.2f", 100 * (s - l) / s }'
}

# verdict VALUE OP LIMIT (OP one of >= <= <): "ok" or "MISSED" (or "n/a" without a value).
verdict() {
    [[ -n $1 && -n $3 ]] || { echo n/a; return; }
    awk -v v="$1" -v lim="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? v >= lim : (op == "<") ? v < lim : v <= lim
        print ok ? "ok" : "MISSED"
    }'
}

ratio() {
    [[ -n $1 && -n $2 ]] || { echo ''; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}

echo
echo "lc against rsyslog (targets):"
tput_ratio=$(ratio "$(field lc/tcp 3)" "$(field rsyslog/tcp 3)")
cpu_ratio=$(ratio "$(field lc/tcp 4)" "$(field rsyslog/tcp 4)")
lc_udp_loss=$(loss_pct lc/udp)
rs_udp_loss=$(loss_pct rsyslog/udp)
lc_rss=$(awk -v a="$(field lc/tcp 5)" -v b="$(field lc/udp 5)" -v c="$(field lc/tls 5)" 'BEGIN {
    m = a + 0
    if (b + 0 > m) m = b + 0
    if (c + 0 > m) m = c + 0
    if (a != "" || b != "" || c != "") printf "%.1f", m
}')
printf '  %-40s %8s   %s\n' \
    "TCP throughput lc/rsyslog (>= 1.0x)" "${tput_ratio:-n/a}" "$(verdict "$tput_ratio" '>=' 1.0)" \
    "TCP CPU per message lc/rsyslog (<= 0.5x)" "${cpu_ratio:-n/a}" "$(verdict "$cpu_ratio" '<=' 0.5)" \
    "UDP loss lc % (<= 1%)" "${lc_udp_loss:-n/a}" "$(verdict "$lc_udp_loss" '<=' 1)" \
    "UDP loss lc % (<= rsyslog's ${rs_udp_loss:-n/a} %)" "${lc_udp_loss:-n/a}" "$(verdict "$lc_udp_loss" '<=' "$rs_udp_loss")" \
    "lc peak RSS MiB (<= 16)" "${lc_rss:-n/a}" "$(verdict "$lc_rss" '<=' 16)"
tls_tput_ratio=$(ratio "$(field lc/tls 3)" "$(field rsyslog/tls 3)")
tls_cpu_ratio=$(ratio "$(field lc/tls 4)" "$(field rsyslog/tls 4)")
printf '  %-40s %8s   %s\n' \
    "TLS throughput lc/rsyslog (>= 2.0x)" "${tls_tput_ratio:-n/a}" "$(verdict "$tls_tput_ratio" '>=' 2.0)" \
    "TLS CPU per message lc/rsyslog (< 1.0x)" "${tls_cpu_ratio:-n/a}" "$(verdict "$tls_cpu_ratio" '<' 1.0)"
echo
ng_tput_ratio=$(ratio "$(field lc/tcp 3)" "$(field syslog-ng/tcp 3)")
ng_cpu_ratio=$(ratio "$(field lc/tcp 4)" "$(field syslog-ng/tcp 4)")
ng_udp_loss=$(loss_pct syslog-ng/udp)
ng_tls_tput_ratio=$(ratio "$(field lc/tls 3)" "$(field syslog-ng/tls 3)")
ng_tls_cpu_ratio=$(ratio "$(field lc/tls 4)" "$(field syslog-ng/tls 4)")
echo "for reference, lc/syslog-ng: TCP throughput ${ng_tput_ratio:-n/a}, TCP CPU per message ${ng_cpu_ratio:-n/a}," \
    "UDP loss lc ${lc_udp_loss:-n/a} % vs syslog-ng ${ng_udp_loss:-n/a} %," \
    "TLS throughput ${ng_tls_tput_ratio:-n/a}, TLS CPU per message ${ng_tls_cpu_ratio:-n/a}"
[[ -z $LC_NOTE ]] || echo "note: $LC_NOTE"
