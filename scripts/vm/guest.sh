#!/usr/bin/env bash
# The user's path through the appliance, run as root inside the throwaway VM by e2e.sh (which
# copies this script, the release tarball and its .sha256 into /root first). Each step checks
# what an operator would check and stops at the first failure with a message naming it, after
# printing the units' status and journal. Checks whose failure leaves the next steps
# meaningful (nothing serving FTP at all, a refused certificate set installed anyway) are
# reported and the run goes on, so that one run tests everything it can.
#
# Lines "e2e: metric NAME VALUE" carry the measurements e2e.sh reports. Exit status: 0 all
# passed, 1 a check failed, 3 only the FTP checks failed, because nothing serves FTP.
#
# The argument is the phase; e2e.sh does what happens between them:
#   main          install, the README's path, syslog and FTP, reloads, a restart, the sandbox,
#                 then delivery to the API stand-in (e2e.sh forwards it to 10.0.2.100:8443)
#   api-down      (e2e.sh stopped the stand-in) lc status --check goes to 2, /health to 503
#   api-up        (started again) back to 0; an expired certificate for a source on 6514
#   after-reboot  (e2e.sh rebooted the VM) lc@514 and lc@21 run, lc@6514 is failed; uninstall
# Functions below are called through poll, and each phase ends in finish (an exit), which
# the linter takes for unreachable code.
# shellcheck disable=SC2317
set -euo pipefail
cd /root
PHASE=${1:-main}
case $PHASE in
    main | api-down | api-up | after-reboot) ;;
    *)
        echo "e2e: unknown phase $PHASE" >&2
        exit 1
        ;;
esac

PASSWORD=e2e-Secret-1
FTP_USER=discovery
OUTBOX=/var/lib/lc/outbox
RUN_DIR=/run/lc
UNINSTALL=/usr/local/lib/lc/uninstall.sh
# The API stand-in as this guest reaches it (e2e.sh copied its CA and token into /root), and
# the metrics server of the test's lc.ini.
API_HOST=10.0.2.100:8443
METRICS=127.0.0.1:9514
# Generous for a guest under software emulation on a loaded 2-core host; never slept out,
# only the limit of a poll.
WAIT_SECS=90
# A word that appears nowhere but in what this run sends.
TAG=e2e$(date +%s%N | sha256sum | cut -c1-12)
FTP_PENDING=''
PROBLEMS=()

say() {
    echo "e2e: $*"
}

# Steps passed and failed so far; a step is failed by fail, problem or the FTP checks.
PASSED=0
FAILED=0
IN_STEP=false
STEP_OK=true

end_step() {
    if $IN_STEP; then
        if $STEP_OK; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
    fi
    IN_STEP=false
}

step() {
    end_step
    IN_STEP=true
    STEP_OK=true
    echo
    echo "e2e: === $* ==="
}

# The last line, read by e2e.sh.
result() {
    end_step
    echo "e2e: result $PASSED $FAILED"
}

metric() {
    echo "e2e: metric $1 $2"
}

diagnose() {
    echo "e2e: --- diagnostics ---"
    systemctl --no-pager status -n 0 'lc@*' 2>&1 || true
    journalctl --no-pager -n 60 -u 'lc@*' 2>&1 || true
    find /var/lib/lc -maxdepth 3 -printf '%M %u:%g %8s %p\n' 2>&1 | tail -n 40 || true
}

fail() {
    echo "e2e: FAILED: $*"
    diagnose
    STEP_OK=false
    result
    exit 1
}

# A failed check after which the run goes on.
problem() {
    PROBLEMS+=("$*")
    STEP_OK=false
    echo "e2e: FAILED (going on): $*"
}

# poll SECS DESCRIPTION COMMAND...: runs COMMAND until it succeeds or SECS have passed.
poll() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@"; do
        ((SECONDS < deadline)) || fail "$what: not so after ${secs} s"
        sleep 0.5
    done
}

ms_now() {
    echo $(($(date +%s%N) / 1000000))
}

# One field of a unit's `systemctl show`.
unit_prop() {
    systemctl show -P "$2" "$1"
}

# A field of an instance's status snapshot (run_dir/INSTANCE.json), as jq prints it.
snapshot() {
    jq -r "$2" "$RUN_DIR/$1.json" 2>/dev/null
}

# Succeeds when the decompressed outbox files contain WORD.
outbox_has() {
    local f
    for f in "$OUTBOX"/*.gz; do
        [[ -e $f ]] || continue
        zcat -- "$f" 2>/dev/null | grep -qF -- "$1" && return 0
    done
    return 1
}

listening_tcp() {
    [[ -n $(ss -Hltn "sport = :$1") ]]
}

# Start-to-ready of a unit's last start, in ms: from leaving "inactive" (lc run's own config
# check included) and from the main process's exec to READY=1 (the unit active).
report_start() {
    local unit=$1 name=$2 left exec active
    left=$(unit_prop "$unit" InactiveExitTimestampMonotonic)
    exec=$(unit_prop "$unit" ExecMainStartTimestampMonotonic)
    active=$(unit_prop "$unit" ActiveEnterTimestampMonotonic)
    ((left > 0 && exec > 0 && active > 0)) || fail "$unit: no start timestamps in systemctl show"
    metric "${name}_start_to_ready_ms" $(((active - left) / 1000))
    metric "${name}_exec_to_ready_ms" $(((active - exec) / 1000))
}

report_rss() {
    local unit=$1 name=$2 pid
    pid=$(unit_prop "$unit" MainPID)
    ((pid > 0)) || fail "$unit: no main process"
    metric "${name}_rss_kib" "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
}

ftp_pending() {
    FTP_PENDING="$FTP_PENDING${FTP_PENDING:+; }$*"
    STEP_OK=false
    echo "e2e: FTP NOT SERVED YET: $*"
}

curl_ftp() {
    timeout 60 curl -sS --fail --connect-timeout 10 "$@"
}

# Succeeds when `lc status --check` exits with $1; its line is in /root/check.out.
check_is() {
    local rc=0
    lc status --check >/root/check.out 2>&1 || rc=$?
    ((rc == $1))
}

# The HTTP status of the metrics server's path $1.
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$METRICS$1" || true
}

# Files delivered by an instance's sources, from its snapshot.
delivered_files() {
    jq '[.sources[].delivered_files] | add' "$RUN_DIR/$1.json" 2>/dev/null || echo 0
}

# Whether lc@514's snapshot shows a reloaded_at after $before.
reloaded() {
    local now
    now=$(snapshot 514 .reloaded_at)
    [[ $now =~ ^[0-9]+$ ]] && ((now > before))
}

# The test's lc.ini: syslog UDP+TCP on 514, an FTP source, delivery as $DELIVERY says.
DELIVERY="url = dir:$OUTBOX"
write_config() {
    cat >/etc/lc/lc.ini <<EOF
; written by scripts/vm/guest.sh
[collector]
name = e2e
metrics_listen = $METRICS

[spool]
; seal quickly, so the outbox fills while the test waits
rotate_secs = 2

[delivery]
$DELIVERY

[ftp]
port = 21
tls = optional

[source asa-udp]
format = CISCO_ASA_SYSLOG
receiver = syslog-udp
port = 514

[source asa-tcp]
format = CISCO_ASA_SYSLOG
receiver = syslog-tcp
port = 514

[source squid]
format = SQUID
receiver = ftp
EOF
}

# The closing lines of a phase.
finish() {
    end_step
    echo
    if [[ ${#PROBLEMS[@]} -gt 0 ]]; then
        say "FAILED checks:"
        printf 'e2e:   - %s\n' "${PROBLEMS[@]}"
        [[ -z $FTP_PENDING ]] || say "and FTP is not served yet: $FTP_PENDING"
        result
        exit 1
    fi
    if [[ -n $FTP_PENDING ]]; then
        say "every step of phase $PHASE passed except FTP, which this lc does not serve yet: $FTP_PENDING"
        result
        exit 3
    fi
    say "every step of phase $PHASE passed"
    result
    exit 0
}

if [[ $PHASE == main ]]; then

# -----------------------------------------------------------------------------------------
step "1. verify, unpack and install the release"
tarballs=(lc-*.tar.gz)
[[ ${#tarballs[@]} -eq 1 && -f ${tarballs[0]} ]] || fail "expected one lc-*.tar.gz in /root, found: ${tarballs[*]}"
sha256sum -c lc-*.sha256 || fail "sha256sum -c: the tarball does not match its .sha256"
tar xzf "${tarballs[0]}" || fail "tar xzf ${tarballs[0]}"
installers=(lc-*/install.sh)
[[ -x ${installers[0]} ]] || fail "no lc-*/install.sh in the tarball"
t0=$(ms_now)
"${installers[0]}" || fail "${installers[0]} exited with $?"
metric install_ms $(($(ms_now) - t0))
command -v lc >/dev/null || fail "lc is not on PATH after install.sh"
say "$(lc version)"
getent passwd lc >/dev/null || fail "install.sh made no lc user"
[[ -f /etc/systemd/system/lc@.service ]] || fail "install.sh installed no lc@.service"
[[ -x $UNINSTALL ]] || fail "no uninstaller at $UNINSTALL"

# -----------------------------------------------------------------------------------------
step "1b. README's path as written: the shipped lc.ini, lc@514, install.sh again"
lc config check || fail "lc config check rejects the lc.ini install.sh wrote"
timeout 120 systemctl enable --now lc@514 || fail "systemctl enable --now lc@514 with the shipped lc.ini"
systemctl is-active --quiet lc@514 || fail "lc@514 is not active with the shipped lc.ini"
pid=$(unit_prop lc@514 MainPID)
again=$("${installers[0]}" 2>&1) || fail "install.sh run again exited with $?: $again"
grep -q 'nothing changed' <<<"$again" || fail "install.sh run again did not say nothing changed: $again"
[[ $(unit_prop lc@514 MainPID) == "$pid" ]] || fail "install.sh run again restarted lc@514"
timeout 120 systemctl disable --now lc@514 || fail "systemctl disable --now lc@514"

# -----------------------------------------------------------------------------------------
step "2. configure: syslog UDP+TCP on 514, an FTP source, outbox delivery"
write_config
lc config check || fail "lc config check rejects the test's config"

# -----------------------------------------------------------------------------------------
step "3. an FTP user"
echo "$PASSWORD" | lc passwd --stdin "$FTP_USER" || fail "lc passwd --stdin $FTP_USER"
lc passwd --list | grep -qw -- "$FTP_USER" || fail "lc passwd --list does not list $FTP_USER"

# -----------------------------------------------------------------------------------------
step "4. start lc@514 and lc@21"
# As README says: enabled too, so uninstall has enabled units to remove.
timeout 120 systemctl enable --now lc@514 lc@21 || fail "systemctl enable --now lc@514 lc@21"
for unit in lc@514 lc@21; do
    systemctl is-active --quiet "$unit" || fail "$unit is not active after systemctl enable --now"
    systemctl is-enabled --quiet "$unit" || fail "$unit is not enabled after systemctl enable --now"
done
report_start lc@514 first
listening_tcp 514 || fail "lc@514 is active but nothing listens on TCP 514"

# -----------------------------------------------------------------------------------------
step "5. data: syslog UDP and TCP with logger, a file over FTP (and FTPS)"
logger -n 127.0.0.1 -P 514 -d -t e2e "udp line $TAG-udp" || fail "logger over UDP"
logger -n 127.0.0.1 -P 514 -T -t e2e "tcp line $TAG-tcp" || fail "logger over TCP"
printf '%s\n' "1700000000.000 1 10.0.0.1 TCP_MISS/200 100 GET http://example.com/ - DIRECT/1.2.3.4 text/html $TAG-plainftp" >squid-ftp.log
printf '%s\n' "1700000000.000 1 10.0.0.1 TCP_MISS/200 100 GET http://example.com/ - DIRECT/1.2.3.4 text/html $TAG-tlsftp" >squid-ftps.log
ftp_served=false
if listening_tcp 21; then
    ftp_served=true
    curl_ftp -T squid-ftp.log "ftp://$FTP_USER:$PASSWORD@127.0.0.1/squid/" ||
        fail "curl -T over FTP to /squid/ failed"
    curl_ftp --ssl-reqd --cacert /etc/lc/certs/ca.pem -T squid-ftps.log \
        "ftp://$FTP_USER:$PASSWORD@127.0.0.1/squid/" || fail "curl --ssl-reqd -T over FTPS to /squid/ failed"
else
    ftp_pending "lc@21 is active but nothing listens on TCP 21; the FTP upload was not tried"
fi
poll "$WAIT_SECS" "the UDP line in a gzip file in $OUTBOX" outbox_has "$TAG-udp"
poll "$WAIT_SECS" "the TCP line in a gzip file in $OUTBOX" outbox_has "$TAG-tcp"
if $ftp_served; then
    poll "$WAIT_SECS" "the FTP file's content in a gzip file in $OUTBOX" outbox_has "$TAG-plainftp"
    poll "$WAIT_SECS" "the FTPS file's content in a gzip file in $OUTBOX" outbox_has "$TAG-tlsftp"
fi
say "outbox: $(find "$OUTBOX" -name '*.gz' | wc -l) gzip files"

# -----------------------------------------------------------------------------------------
step "6. journald keeps lc's log levels"
lc_journal() {
    journalctl --no-pager -u lc@514 -o json |
        jq -r 'select(.SYSLOG_IDENTIFIER == "lc") | "\(.PRIORITY) \(.MESSAGE)"'
}
has_listening_info() {
    lc_journal | grep -qE '^6 .*listening on'
}
poll 30 "journalctl -u lc@514 shows lc's 'listening on' lines at priority 6 (info)" has_listening_info
if lc_journal | grep -qE '^[0-9] <[0-7]>'; then
    fail "journal lines still carry their <N> prefix: $(lc_journal | grep -m1 -E '^[0-9] <')"
fi
if journalctl --no-pager -u lc@514 -p warning -o cat | grep -q 'listening on'; then
    fail "journalctl -p warning shows info lines: the priority is not kept"
fi
say "lines per priority: $(lc_journal | awk '{n[$1]++} END {for (p in n) printf "%s:%d ", p, n[p]}')"

# -----------------------------------------------------------------------------------------
step "7. systemctl reload lc@514"
before=$(snapshot 514 .reloaded_at)
[[ -n $before && $before != null ]] || fail "$RUN_DIR/514.json has no reloaded_at"
timeout 60 systemctl reload lc@514 || fail "systemctl reload lc@514"
systemctl is-active --quiet lc@514 || fail "lc@514 is not active after reload"
poll 30 "lc@514's status snapshot shows a new reloaded_at" reloaded
err=$(snapshot 514 .reload_error)
[[ -z $err || $err == null ]] || fail "lc@514 reload_error: $err"
lc status --json | jq -e 'map(select(.instance == "514")) | .[0].reloaded_at > 0' >/dev/null ||
    fail "lc status --json does not show instance 514 with its reloaded_at"

# -----------------------------------------------------------------------------------------
step "8. lc certs reload"
update=/var/lib/lc/ftp/ssl_update
old_pem=$(sha256sum </etc/lc/certs/pure-ftpd.pem)
lc certs init /root/badcerts --force >/dev/null || fail "lc certs init /root/badcerts"
lc certs init /root/newcerts --force >/dev/null || fail "lc certs init /root/newcerts"
# The FTP server offers AUTH TLS with pure-ftpd.pem (key and certificate in one file); one
# whose key belongs to another set must be refused as a whole, and nothing may change.
{
    sed -n '/-BEGIN .*PRIVATE KEY-/,/-END .*PRIVATE KEY-/p' /root/badcerts/pure-ftpd.pem
    sed -n '/-BEGIN CERTIFICATE-/,/-END CERTIFICATE-/p' /root/newcerts/pure-ftpd.pem
} >"$update/pure-ftpd.pem"
if lc certs reload >certs-bad.out 2>&1; then
    fail "lc certs reload accepted a pure-ftpd.pem whose key is another certificate's: $(tr '\n' ' ' <certs-bad.out)"
fi
if [[ $(sha256sum </etc/lc/certs/pure-ftpd.pem) == "$old_pem" ]]; then
    say "mismatched pure-ftpd.pem refused: $(tr '\n' ' ' <certs-bad.out)"
else
    # The good set below replaces the file again, so the next steps still mean something.
    problem "lc certs reload installed a pure-ftpd.pem whose key does not match (the FTP server uses it: [ftp] tls = optional) and only then failed: $(tr '\n' ' ' <certs-bad.out)"
fi
rm -f "$update"/*
# The new set, dropped into ssl_update as the vendor's runbooks say: over FTP when it is served.
reload_before=$(snapshot 21 .reloaded_at)
for f in server-cert.pem server-key.pem ca.pem pure-ftpd.pem; do
    if $ftp_served; then
        curl_ftp --ssl-reqd --cacert /etc/lc/certs/ca.pem -T "/root/newcerts/$f" \
            "ftp://$FTP_USER:$PASSWORD@127.0.0.1/ssl_update/" || fail "FTPS upload of $f into ssl_update/"
    else
        install -m 0600 "/root/newcerts/$f" "$update/$f"
    fi
done
lc certs reload || fail "lc certs reload of a fresh lc certs init set"
cmp -s /root/newcerts/server-cert.pem /etc/lc/certs/server-cert.pem ||
    fail "/etc/lc/certs/server-cert.pem is not the new one after lc certs reload"
[[ -z $(ls -A "$update") ]] || fail "$update is not empty after lc certs reload"
for unit in lc@514 lc@21; do
    systemctl is-active --quiet "$unit" || fail "$unit is not active after lc certs reload"
done
ftp_reloaded() {
    local now
    now=$(snapshot 21 .reloaded_at)
    [[ $now =~ ^[0-9]+$ ]] && ((now > reload_before))
}
poll 30 "lc@21 reloaded its certificates" ftp_reloaded
if $ftp_served; then
    # New FTPS sessions present the new certificate: only the new CA verifies it.
    curl_ftp --ssl-reqd --cacert /root/newcerts/ca.pem -T squid-ftp.log \
        "ftp://$FTP_USER:$PASSWORD@127.0.0.1/squid/after-reload.log" ||
        fail "FTPS with the new CA after lc certs reload"
    if curl_ftp --ssl-reqd --cacert /etc/lc/certs.prev/ca.pem "ftp://$FTP_USER:$PASSWORD@127.0.0.1/" \
        >/dev/null 2>&1; then
        fail "FTPS still verifies with the previous CA after lc certs reload: the old certificate is served"
    fi
fi

# -----------------------------------------------------------------------------------------
step "9. systemctl restart lc@514: data still flows; start time and idle memory"
timeout 120 systemctl restart lc@514 || fail "systemctl restart lc@514"
systemctl is-active --quiet lc@514 || fail "lc@514 is not active after restart"
report_start lc@514 restart
logger -n 127.0.0.1 -P 514 -d -t e2e "udp line $TAG-again" || fail "logger over UDP after restart"
poll "$WAIT_SECS" "a UDP line sent after the restart in $OUTBOX" outbox_has "$TAG-again"
# Idle: everything sent has been delivered.
report_rss lc@514 lc514
report_rss lc@21 lc21

# -----------------------------------------------------------------------------------------
step "10. the sandbox: the service writes only /var/lib/lc and /run/lc (and a private /tmp)"
pid=$(unit_prop lc@514 MainPID)
((pid > 0)) || fail "lc@514 has no main process"
# In the service's mount namespace, as its user and group and no other group.
as_service() {
    nsenter -t "$pid" -m -- setpriv --reuid=lc --regid=lc --clear-groups -- "$@"
}
writes() {
    # shellcheck disable=SC2016 # $1 is the inner shell's
    as_service sh -c 'echo probe >"$1/.lc-e2e-probe" && rm -f "$1/.lc-e2e-probe"' sh "$1" 2>/dev/null
}
writes /var/lib/lc || fail "the probe cannot write /var/lib/lc as the service: it proves nothing"
writes /run/lc || fail "the probe cannot write /run/lc as the service: it proves nothing"
for dir in /dev/shm /run/lock /dev/mqueue /etc/lc /etc/lc/certs /var/log /var/cache /usr/local/bin /root /run /var/lib; do
    [[ -d $dir ]] || continue
    if writes "$dir"; then
        problem "the service (lc@514, user lc) can write $dir"
    fi
done
for dir in /tmp /var/tmp; do
    if writes "$dir"; then
        # PrivateTmp=yes: its own, empty, removed when the unit stops; the host's is untouched.
        # shellcheck disable=SC2016
        as_service sh -c 'echo probe >"$1/.lc-e2e-private"' sh "$dir"
        [[ -e $dir/.lc-e2e-private ]] && problem "the service writes the host's $dir, not a private one"
        as_service rm -f "$dir/.lc-e2e-private"
    fi
done
$STEP_OK && say "the service cannot write /dev/shm, /run/lock, /etc/lc, /var/log or /usr; /tmp and /var/tmp are its private ones"

# -----------------------------------------------------------------------------------------
step "11. delivery to the Cloud Discovery API (the stand-in): lc connect, lc status --check 0, /health 200"
install -o root -g lc -m 0644 /root/api-ca.pem /etc/lc/certs/api-ca.pem
DELIVERY="url = dir:$OUTBOX
ca_file = /etc/lc/certs/api-ca.pem
; the first failure is critical, so the test need not wait 15 minutes
critical_after_secs = 0"
write_config
lc config check || fail "lc config check rejects the config with ca_file and critical_after_secs"
timeout 60 systemctl reload lc@514 lc@21 || fail "systemctl reload lc@514 lc@21"
before=$(snapshot 514 .reloaded_at)
lc connect --token-file /root/api-token "$API_HOST" e2e || fail "lc connect --token-file /root/api-token $API_HOST e2e"
grep -q "^url = https://$API_HOST" /etc/lc/lc.ini || fail "lc connect did not set url in lc.ini: $(grep '^url' /etc/lc/lc.ini)"
poll 60 "lc@514 reloaded after lc connect" reloaded
files_before=$(delivered_files 514)
logger -n 127.0.0.1 -P 514 -d -t e2e "udp line $TAG-api" || fail "logger over UDP"
api_delivered() {
    (($(delivered_files 514) > files_before)) &&
        (($(snapshot 514 '.api.calls.done_upload.ok') > 0))
}
poll "$WAIT_SECS" "a delivery through upload_url, PUT and done_upload of the stand-in" api_delivered
outbox_has "$TAG-api" && fail "the line sent after lc connect went to the outbox, not the API"
poll 30 "lc status --check exits 0" check_is 0
say "$(cat /root/check.out)"
[[ $(http_code /health) == 200 ]] || fail "GET http://$METRICS/health is not 200: $(curl -s "http://$METRICS/health")"
metrics=$(curl -sf "http://$METRICS/metrics") || fail "GET http://$METRICS/metrics failed"
grep -q '^lc_up{lc_instance="21"} 1$' <<<"$metrics" ||
    fail "http://$METRICS/metrics does not show lc@21 up: $(grep '^lc_up' <<<"$metrics")"
finish
fi

if [[ $PHASE == api-down ]]; then
# -----------------------------------------------------------------------------------------
step "12. the API stops: lc status --check goes to 2, /health to 503"
logger -n 127.0.0.1 -P 514 -d -t e2e "udp line $TAG-down" || fail "logger over UDP"
poll 180 "lc status --check exits 2 (critical) while the API is down" check_is 2
say "$(cat /root/check.out)"
grep -q 'delivery failing' /root/check.out || fail "lc status --check does not say why: $(cat /root/check.out)"
[[ $(http_code /health) == 503 ]] || fail "GET http://$METRICS/health is not 503 while delivery fails"
finish
fi

if [[ $PHASE == api-up ]]; then
# -----------------------------------------------------------------------------------------
step "13. the API is back: lc status --check goes back to 0"
poll 240 "lc status --check exits 0 again" check_is 0
say "$(cat /root/check.out)"
[[ $(http_code /health) == 200 ]] || fail "GET http://$METRICS/health is not 200 after the API came back"

# -----------------------------------------------------------------------------------------
step "14. before a reboot: an expired certificate for a syslog-tls source on 6514, lc@6514 enabled"
install -o root -g lc -m 0644 /root/expired-cert.pem /etc/lc/certs/server-cert.pem
install -o root -g lc -m 0640 /root/expired-key.pem /etc/lc/certs/server-key.pem
cat >>/etc/lc/lc.ini <<EOF

[source pa-tls]
format = PALO_ALTO_SYSLOG
receiver = syslog-tls
port = 6514
EOF
lc config check --port 514 || fail "lc config check --port 514 fails on 6514's certificate"
lc config check --port 21 || fail "lc config check --port 21 fails on 6514's certificate"
if lc config check --port 6514 2>/root/check6514.out; then
    fail "lc config check --port 6514 accepts an expired certificate"
fi
say "lc config check --port 6514: $(tr '\n' ' ' </root/check6514.out)"
systemctl enable lc@6514 || fail "systemctl enable lc@6514"
finish
fi

if [[ $PHASE == after-reboot ]]; then
# -----------------------------------------------------------------------------------------
step "15. after the reboot: lc@514 and lc@21 run, lc@6514 failed and in systemctl --failed"
poll 180 "lc@514 active after the reboot" systemctl is-active --quiet lc@514
poll 180 "lc@21 active after the reboot" systemctl is-active --quiet lc@21
poll 180 "lc@6514 failed after the reboot" systemctl is-failed --quiet lc@6514
systemctl --failed --plain --no-legend | grep -q '^lc@6514.service' ||
    fail "systemctl --failed does not list lc@6514: $(systemctl --failed --plain --no-legend)"
say "systemctl --failed: $(systemctl --failed --plain --no-legend | tr '\n' ' ')"
journalctl --no-pager -b -u lc@6514 -p err -o cat | grep -q 'expired' ||
    fail "the journal of lc@6514 says nothing about the expired certificate at error priority"
say "lc@6514: $(journalctl --no-pager -b -u lc@6514 -p err -o cat | grep -m1 expired)"
files_before=$(delivered_files 514)
logger -n 127.0.0.1 -P 514 -T -t e2e "tcp line $TAG-reboot" || fail "logger over TCP after the reboot"
delivered_again() {
    (($(delivered_files 514) > files_before))
}
poll "$WAIT_SECS" "a delivery after the reboot" delivered_again
poll 60 "lc status --check exits 0 after the reboot" check_is 0
say "$(cat /root/check.out)"

# -----------------------------------------------------------------------------------------
step "16. uninstall --purge"
# --force: the spool may still hold what the test sent, which --purge alone refuses to delete
# (that refusal is tests/it/install.rs's).
"$UNINSTALL" --purge --force || fail "$UNINSTALL --purge --force exited with $?"
left=()
for p in /usr/local/bin/lc /usr/local/lib/lc /usr/local/share/doc/lc /etc/lc /var/lib/lc "$RUN_DIR" \
    /etc/systemd/system/lc@.service /etc/systemd/system/lc.target; do
    [[ -e $p || -L $p ]] && left+=("$p")
done
mapfile -t -O "${#left[@]}" left < <(find /etc/systemd/system -name 'lc@*' -o -name 'lc.target*' 2>/dev/null)
[[ ${#left[@]} -eq 0 ]] || fail "left after uninstall --purge: ${left[*]}"
getent passwd lc >/dev/null && fail "the lc user is left after uninstall --purge"
getent group lc >/dev/null && fail "the lc group is left after uninstall --purge"
units=$(systemctl list-units --all --plain --no-legend 'lc@*' 'lc.target' | awk '$2 != "not-found" || $3 != "inactive"')
[[ -z $units ]] || fail "units still loaded after uninstall --purge: $units"
pgrep -x lc >/dev/null && fail "lc processes still run after uninstall --purge: $(pgrep -ax lc)"
listening_tcp 514 && fail "something still listens on TCP 514 after uninstall"

finish
fi
