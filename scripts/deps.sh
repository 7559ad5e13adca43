#!/usr/bin/env bash
# Installs what lc's test suite and benchmarks need on a Debian 12 machine, as root.
#
# - Debian packages: rsyslog, logger, curl, musl-tools, procps, and the shared libraries that
#   syslog-ng-core links against; rsyslog's TLS network stream drivers (rsyslog-gnutls for
#   StreamDriver="gtls", rsyslog-openssl for "ossl") for the syslog-tls tests (tests/it/tls.rs).
# - syslog-ng itself is unpacked (not installed) under /opt/lc-peers/syslog-ng, because the
#   syslog-ng-core package conflicts with rsyslog. Wrappers in /opt/lc-peers/bin make `loggen`
#   and `syslog-ng` runnable from there; see write_wrappers for what they set.
# - the x86_64-unknown-linux-musl Rust target for release builds.
# - the cloud delivery tests' peers (tests/it/cloud.rs): openssl for test certificates, tinyproxy
#   (its system service stopped and disabled: the tests run their own instances), Azurite (the
#   Azure Blob Storage emulator, from npm, under /opt/lc-peers/node) and a Python venv under
#   /opt/lc-peers/venv with mitmproxy and azure-storage-blob (the latter for the Cloud Discovery
#   stand-in, tests/standin/cloud_discovery.py). Wrappers: /opt/lc-peers/bin/azurite-blob and
#   /opt/lc-peers/bin/mitmdump.
# - the metrics tests' peers (tests/it/metrics.rs): promtool (Debian's prometheus package, ~96 MB
#   installed) checks the text format, prometheus-node-exporter's textfile collector reads
#   metrics_dir; their system services stopped and disabled.
# - HAProxy for the load-balancer tests (tests/it/balancer.rs), its system service stopped and
#   disabled like tinyproxy's.
#
# Idempotent: when everything is already there it makes no network request and finishes in
# about a second (most of it the syslog-ng smoke test). Safe to run with no stdin (CI=true).
# LC_PEERS_DIR overrides /opt/lc-peers.
set -euo pipefail

PEERS_DIR=${LC_PEERS_DIR:-/opt/lc-peers}
NG_ROOT=$PEERS_DIR/syslog-ng
BIN_DIR=$PEERS_DIR/bin
MUSL_TARGET=x86_64-unknown-linux-musl
NODE_DIR=$PEERS_DIR/node
VENV_DIR=$PEERS_DIR/venv
# Azurite 3.36 and later declare node >= 21 (3.37: >= 22); 3.35.0 declares >= 10 and runs on
# this kind of machine's node 20 (Debian 12's own is 18, untried). mitmproxy 11.0.2 is the last
# release for Python 3.11, Debian 12's.
AZURITE_VERSION=3.35.0
MITMPROXY_VERSION=11.0.2
AZURE_STORAGE_BLOB_VERSION=12.31.1

# The libraries are syslog-ng-core's Depends in bookworm (apt-cache show syslog-ng-core);
# libc6 and sysvinit-utils are always present.
APT_PACKAGES=(
    rsyslog rsyslog-gnutls rsyslog-openssl util-linux curl musl-tools procps openssl tinyproxy
    haproxy lftp shellcheck prometheus prometheus-node-exporter
    python3 python3-venv default-jre-headless default-jdk-headless
    libivykis0 libnet1 libjson-c5 libglib2.0-0 libpcre3 libwrap0 libcap2 libssl3 libsystemd0
)

export DEBIAN_FRONTEND=noninteractive

die() {
    echo "deps.sh: error: $*" >&2
    exit 1
}

note() {
    echo "deps.sh: $*" >&2
}

[[ $(id -u) -eq 0 ]] || die "must run as root (installs Debian packages and writes $PEERS_DIR)"
command -v apt-get >/dev/null || die "apt-get not found; this script supports Debian 12 only"

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
    [[ $status == ii* ]]
}

APT_UPDATED=0
apt_update_once() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        note "apt-get update"
        apt-get update -q >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

install_apt_packages() {
    local missing=() pkg
    # Azurite needs node and npm; any on PATH will do (this kind of machine brings its own),
    # else Debian's.
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    for pkg in "${APT_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0

    apt_update_once
    note "installing ${missing[*]}"
    apt-get install -y -q --no-upgrade "${missing[@]}" </dev/null >/dev/null ||
        die "apt-get install failed for: ${missing[*]}"
    for pkg in "${missing[@]}"; do
        is_installed "$pkg" || die "$pkg: still not installed after apt-get install"
    done
}

# Finds one path under $1 matching find(1) expression $2..; dies if there is none.
find_one() {
    local root=$1 found
    shift
    found=$(find "$root" "$@" -print -quit)
    [[ -n $found ]] || die "$root: nothing matches: find $*"
    printf '%s\n' "$found"
}

unpack_syslog_ng() {
    [[ -x $NG_ROOT/usr/sbin/syslog-ng && -f $NG_ROOT/.deb-version ]] && return 0

    local work
    work=$(mktemp -d)
    # apt-get download runs as _apt when it can; a world-writable directory keeps it from warning.
    chmod 0777 "$work"
    if ! (cd "$work" && apt-get download -q syslog-ng-core >/dev/null 2>&1); then
        apt_update_once
        (cd "$work" && apt-get download -q syslog-ng-core >/dev/null) ||
            die "apt-get download syslog-ng-core failed"
    fi
    local deb
    deb=$(find_one "$work" -maxdepth 1 -name 'syslog-ng-core_*.deb')
    note "unpacking $(basename "$deb") into $NG_ROOT"

    # Unpack beside the final place and rename, so an interrupted run never leaves a half tree
    # that a later run would take for a finished one.
    mkdir -p "$PEERS_DIR"
    rm -rf "$NG_ROOT.tmp"
    dpkg -x "$deb" "$NG_ROOT.tmp" || die "dpkg -x $deb failed"
    dpkg-deb -f "$deb" Version >"$NG_ROOT.tmp/.deb-version"
    rm -rf "$NG_ROOT"
    mv "$NG_ROOT.tmp" "$NG_ROOT"
    rm -rf "$work"
}

# Generates the wrappers from what the unpacked tree contains, so a layout change (a new
# version directory, a multiarch lib path) is found rather than assumed.
#
# Both programs resolve their compiled-in paths (/usr/lib/syslog-ng/3.38 for modules and
# loggen's plugins, /usr/share/syslog-ng/include) relative to SYSLOGNG_PREFIX when it is set;
# their RUNPATH (/usr/lib/syslog-ng) still points at the system, hence LD_LIBRARY_PATH.
write_wrappers() {
    local syslog_ng loggen libsyslog lib_dir module_dir plugin_dir prefix
    syslog_ng=$(find_one "$NG_ROOT" -path '*/sbin/syslog-ng' -type f)
    loggen=$(find_one "$NG_ROOT" -path '*/bin/loggen' -type f)
    libsyslog=$(find_one "$NG_ROOT" -name 'libsyslog-ng-*.so.0')
    lib_dir=$(dirname "$libsyslog")
    module_dir=$(dirname "$(find_one "$NG_ROOT" -name libafsocket.so)")
    plugin_dir=$(dirname "$(find_one "$NG_ROOT" -name 'libloggen_socket_plugin.so')")
    # module_dir is PREFIX/lib/syslog-ng/VERSION, and loggen looks in PREFIX/lib/syslog-ng/VERSION/loggen.
    prefix=$(dirname "$(dirname "$(dirname "$module_dir")")")
    [[ $plugin_dir == "$module_dir/loggen" ]] ||
        die "loggen plugins in $plugin_dir, expected $module_dir/loggen; SYSLOGNG_PREFIX cannot point at both"

    mkdir -p "$BIN_DIR"
    local env_block
    env_block="export LD_LIBRARY_PATH='$lib_dir'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export SYSLOGNG_PREFIX='$prefix'"

    cat >"$BIN_DIR/loggen.tmp" <<EOF
#!/bin/sh
# Generated by lc's scripts/deps.sh: runs the loggen unpacked in $NG_ROOT.
$env_block
exec '$loggen' "\$@"
EOF

    cat >"$BIN_DIR/syslog-ng.tmp" <<EOF
#!/usr/bin/env bash
# Generated by lc's scripts/deps.sh: runs the syslog-ng unpacked in $NG_ROOT.
#
# Unless given on the command line, the persist file, pid file and control socket go next to the
# config file (or into \$SYSLOG_NG_STATE_DIR), so that several instances can run side by side
# from temp dirs; the defaults live in /var/lib/syslog-ng. Relative paths are made absolute,
# because syslog-ng resolves a relative --pidfile against /var/lib/syslog-ng, not the cwd.
# Linux capabilities are left alone (--no-caps) unless --caps is given.
set -euo pipefail
$env_block

abs() {
    case \$1 in
        /*) printf '%s\n' "\$1" ;;
        *) printf '%s\n' "\$PWD/\$1" ;;
    esac
}

args=() cfg='' have_persist=0 have_pid=0 have_ctl=0 have_modules=0 have_caps=0
while [[ \$# -gt 0 ]]; do
    arg=\$1
    shift
    case \$arg in
        -f | --cfgfile | -R | --persist-file | -p | --pidfile | -c | --control)
            [[ \$# -gt 0 ]] || { echo "syslog-ng wrapper: \$arg needs a value" >&2; exit 2; }
            value=\$(abs "\$1")
            shift
            ;;
        --cfgfile=* | --persist-file=* | --pidfile=* | --control=*)
            value=\$(abs "\${arg#*=}")
            arg=\${arg%%=*}
            ;;
        *)
            case \$arg in
                --module-path | --module-path=*) have_modules=1 ;;
                --caps | --caps=* | --no-caps) have_caps=1 ;;
            esac
            args+=("\$arg")
            continue
            ;;
    esac
    case \$arg in
        -f | --cfgfile) cfg=\$value ;;
        -R | --persist-file) have_persist=1 ;;
        -p | --pidfile) have_pid=1 ;;
        -c | --control) have_ctl=1 ;;
    esac
    args+=("\$arg" "\$value")
done

if [[ -n \$cfg ]]; then
    state_dir=\${SYSLOG_NG_STATE_DIR:-\$(dirname "\$cfg")}
else
    state_dir=\${SYSLOG_NG_STATE_DIR:-\$PWD}
fi
[[ \$have_persist -eq 1 ]] || args+=(--persist-file "\$state_dir/syslog-ng.persist")
[[ \$have_pid -eq 1 ]] || args+=(--pidfile "\$state_dir/syslog-ng.pid")
[[ \$have_ctl -eq 1 ]] || args+=(--control "\$state_dir/syslog-ng.ctl")
[[ \$have_modules -eq 1 ]] || args+=(--module-path '$module_dir')
[[ \$have_caps -eq 1 ]] || args+=(--no-caps)

exec '$syslog_ng' "\${args[@]}"
EOF

    chmod 0755 "$BIN_DIR/loggen.tmp" "$BIN_DIR/syslog-ng.tmp"
    mv "$BIN_DIR/loggen.tmp" "$BIN_DIR/loggen"
    mv "$BIN_DIR/syslog-ng.tmp" "$BIN_DIR/syslog-ng"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Proves the wrappers work: loggen finds its socket plugin, and syslog-ng receives a message
# from logger over TCP on loopback and writes it to a file.
verify_syslog_ng() {
    local help
    help=$("$BIN_DIR/loggen" --help-all 2>&1) || die "$BIN_DIR/loggen --help-all failed: $help"
    [[ $help == *--stream* ]] || die "$BIN_DIR/loggen: socket plugin not found: $help"

    local dir port pid marker i
    dir=$(mktemp -d)
    port=$(free_port)
    marker="lc-deps-check-$$-$RANDOM"
    cat >"$dir/syslog-ng.conf" <<EOF
@version: 3.38
source s_net { network(ip("127.0.0.1") port($port) transport("tcp") flags(no-parse)); };
destination d_file { file("$dir/out.log" template("\$MSG\n")); };
log { source(s_net); destination(d_file); };
EOF
    "$BIN_DIR/syslog-ng" -F -f "$dir/syslog-ng.conf" >"$dir/stderr" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        if logger -n 127.0.0.1 -P "$port" -T "$marker" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    for ((i = 0; i < 100; i++)); do
        grep -qs "$marker" "$dir/out.log" && break
        sleep 0.05
    done
    local ok=0
    grep -qs "$marker" "$dir/out.log" && ok=1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ $ok -eq 0 ]]; then
        cat "$dir/stderr" >&2
        rm -rf "$dir"
        die "$BIN_DIR/syslog-ng did not write a message received on 127.0.0.1:$port (config and log above)"
    fi
    rm -rf "$dir"
}

install_musl_target() {
    command -v rustup >/dev/null || die "rustup not found on PATH; install the Rust toolchain first"
    if ! rustup target list --installed | grep -qx "$MUSL_TARGET"; then
        note "rustup target add $MUSL_TARGET"
        rustup target add "$MUSL_TARGET" </dev/null || die "rustup target add $MUSL_TARGET failed"
    fi
}

# Debian's tinyproxy, haproxy, prometheus and prometheus-node-exporter packages enable, and
# where services may start start, system daemons (ports 8888, 9090, 9100; haproxy with its
# /etc/haproxy/haproxy.cfg). The tests run their own
# instances with their own config files, so the system ones are stopped and disabled: with
# systemctl under systemd, else with the SysV script. Only queries when that is already done.
disable_system_service() {
    local name=$1
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        if systemctl is-enabled --quiet "$name.service" 2>/dev/null ||
            systemctl is-active --quiet "$name.service" 2>/dev/null; then
            note "stopping and disabling the system $name service"
            systemctl disable --now "$name.service" >/dev/null 2>&1 ||
                die "systemctl disable --now $name.service failed"
        fi
        return 0
    fi
    [[ -x /etc/init.d/$name ]] || return 0
    if "/etc/init.d/$name" status >/dev/null 2>&1; then
        note "stopping the system $name service"
        "/etc/init.d/$name" stop >/dev/null 2>&1 || die "/etc/init.d/$name stop failed"
    fi
    # update-rc.d disable turns the start links into stop links; run it while a start link is left.
    if compgen -G "/etc/rc[2-5].d/S*$name" >/dev/null; then
        note "disabling the system $name service at boot"
        update-rc.d "$name" disable >/dev/null 2>&1 || die "update-rc.d $name disable failed"
    fi
}

# Azurite from npm into $NODE_DIR, installed beside the final place and renamed, so that an
# interrupted install is never taken for a finished one (npm's .bin links are relative, so the
# tree survives the rename).
install_azurite() {
    local pkg=$NODE_DIR/node_modules/azurite/package.json have=''
    [[ -f $pkg ]] && have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg" | head -n 1)
    [[ $have == "$AZURITE_VERSION" ]] && return 0

    note "npm install azurite@$AZURITE_VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR.tmp"
    rm -rf "${NODE_DIR:?}.tmp"/*
    npm install --prefix "$NODE_DIR.tmp" --no-audit --no-fund --no-update-notifier --loglevel=error \
        "azurite@$AZURITE_VERSION" </dev/null >/dev/null ||
        die "npm install azurite@$AZURITE_VERSION failed"
    [[ -f $NODE_DIR.tmp/node_modules/azurite/dist/src/blob/main.js ]] ||
        die "npm installed azurite@$AZURITE_VERSION without dist/src/blob/main.js"
    rm -rf "$NODE_DIR"
    mv "$NODE_DIR.tmp" "$NODE_DIR"
}

# A venv cannot be moved (its scripts name their own path), so it is built in place and a stamp
# naming the pinned versions is written last; a venv without the right stamp is rebuilt.
# Debian's python3 makes it, not whichever python3 comes first on PATH, so that the venv does
# not depend on a toolchain manager's interpreter.
install_python_peers() {
    local want="mitmproxy==$MITMPROXY_VERSION azure-storage-blob==$AZURE_STORAGE_BLOB_VERSION"
    [[ -x $VENV_DIR/bin/mitmdump && $(cat "$VENV_DIR/.lc-peers" 2>/dev/null) == "$want" ]] && return 0

    note "creating $VENV_DIR with $want"
    rm -rf "$VENV_DIR"
    /usr/bin/python3 -m venv "$VENV_DIR" || die "/usr/bin/python3 -m venv $VENV_DIR failed"
    # pip's output is shown only on failure: it warns about legacy setup.py installs otherwise.
    local log
    log=$(mktemp)
    # shellcheck disable=SC2086 # $want is two requirements
    if ! "$VENV_DIR/bin/pip" install -q --disable-pip-version-check --no-input $want </dev/null >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "pip install $want into $VENV_DIR failed"
    fi
    rm -f "$log"
    "$VENV_DIR/bin/python" -c 'import azure.storage.blob, mitmproxy.tools.main' ||
        die "$VENV_DIR: azure.storage.blob or mitmproxy does not import"
    printf '%s\n' "$want" >"$VENV_DIR/.lc-peers"
}

# Wrappers with absolute paths, so that tests need neither PATH nor an activated venv. The node
# found now is named in full, where Azurite's own launcher would look it up on PATH each time.
write_cloud_wrappers() {
    local node
    node=$(command -v node) || die "node not found on PATH"
    mkdir -p "$BIN_DIR"
    cat >"$BIN_DIR/azurite-blob.tmp" <<EOF
#!/bin/sh
# Generated by lc's scripts/deps.sh: runs the Azurite blob service installed in $NODE_DIR.
exec '$node' '$NODE_DIR/node_modules/azurite/dist/src/blob/main.js' "\$@"
EOF
    cat >"$BIN_DIR/mitmdump.tmp" <<EOF
#!/bin/sh
# Generated by lc's scripts/deps.sh: runs the mitmdump installed in $VENV_DIR.
exec '$VENV_DIR/bin/mitmdump' "\$@"
EOF
    chmod 0755 "$BIN_DIR/azurite-blob.tmp" "$BIN_DIR/mitmdump.tmp"
    mv "$BIN_DIR/azurite-blob.tmp" "$BIN_DIR/azurite-blob"
    mv "$BIN_DIR/mitmdump.tmp" "$BIN_DIR/mitmdump"
}

# rsyslog loads a stream driver as lmnsd_NAME.so from its module directory; tests/it/tls.rs
# uses both gtls (rsyslog-gnutls) and ossl (rsyslog-openssl).
RSYSLOG_MODULES=''
verify_rsyslog_tls_drivers() {
    local files ptcp drv
    files=$(dpkg -L rsyslog) || die "dpkg -L rsyslog failed"
    ptcp=$(grep -m 1 '/lmnsd_ptcp\.so$' <<<"$files") || die "rsyslog: no lmnsd_ptcp.so in dpkg -L rsyslog"
    RSYSLOG_MODULES=$(dirname "$ptcp")
    for drv in gtls ossl; do
        [[ -f $RSYSLOG_MODULES/lmnsd_$drv.so ]] ||
            die "$RSYSLOG_MODULES/lmnsd_$drv.so missing; apt-get install rsyslog-gnutls rsyslog-openssl"
    done
}

report() {
    printf '%-11s %s\n' \
        rsyslogd "$(command -v rsyslogd) $(rsyslogd -v | sed -n '1s/ *compiled with:.*//p')" \
        rsyslog-tls "stream drivers gtls, ossl in $RSYSLOG_MODULES" \
        logger "$(command -v logger) $(logger --version | sed -n 1p)" \
        curl "$(command -v curl) $(curl --version | sed -n 1p | cut -d' ' -f1-2)" \
        musl-gcc "$(command -v musl-gcc) musl-tools $(dpkg-query -W -f='${Version}' musl-tools)" \
        ps "$(command -v ps) $(ps --version | sed -n 1p)" \
        python3 "$(command -v python3) $(python3 --version 2>&1)" \
        syslog-ng "$BIN_DIR/syslog-ng $(cat "$NG_ROOT/.deb-version")" \
        loggen "$BIN_DIR/loggen $(cat "$NG_ROOT/.deb-version")" \
        rustup "$(command -v rustup) target $MUSL_TARGET installed" \
        openssl "$(command -v openssl) $(openssl version)" \
        tinyproxy "$(command -v tinyproxy) $(dpkg-query -W -f='${Version}' tinyproxy), system service disabled" \
        promtool "$(command -v promtool) $(dpkg-query -W -f='${Version}' prometheus), system service disabled" \
        node_exporter "$(command -v prometheus-node-exporter) $(dpkg-query -W -f='${Version}' prometheus-node-exporter), system service disabled" \
        node "$(command -v node) $(node --version)" \
        azurite "$BIN_DIR/azurite-blob $AZURITE_VERSION" \
        mitmdump "$BIN_DIR/mitmdump $MITMPROXY_VERSION" \
        venv "$VENV_DIR $(cat "$VENV_DIR/.lc-peers")"
}

install_apt_packages
verify_rsyslog_tls_drivers
unpack_syslog_ng
write_wrappers
verify_syslog_ng
install_musl_target
for service in tinyproxy haproxy prometheus prometheus-node-exporter; do
    disable_system_service "$service"
done
install_azurite
install_python_peers
write_cloud_wrappers
report
