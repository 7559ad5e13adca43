#!/bin/sh
# Installs (or upgrades) lc from an unpacked release tarball:
#
#     tar xzf lc-VERSION-x86_64-linux-musl.tar.gz && sudo ./lc-VERSION/install.sh
#
# What goes where (PREFIX defaults to /usr/local):
#     PREFIX/bin/lc                       the binary, root 0755
#     PREFIX/lib/lc/uninstall.sh          the uninstaller
#     PREFIX/share/doc/lc/                README.md, LICENSE, lc.ini.example
#     /etc/systemd/system/lc@.service     the units, with PREFIX filled in; /etc is in systemd's
#     /etc/systemd/system/lc.target       search path whatever the prefix (customise with
#                                         drop-ins: `systemctl edit lc@`, kept on upgrade)
#     /etc/lc/                root:lc 0750  lc.ini (root:lc 0640, written once, never replaced)
#     /etc/lc/certs/          root:lc 0750  `lc certs init` fills it when it holds no certificate
#     /var/lib/lc/            lc:lc 0750    spool, backup, outbox; ftp/ and ftp/ssl_update/
# The `lc` system user and group own the service's data; the service reads /etc/lc through
# the group and cannot change it.
#
# Running it again is safe: files whose content is unchanged are not touched, lc.ini is kept.
# An upgrade (a different binary or unit) restarts the lc@ instances that are running.
#
# --root DIR stages the installation into DIR instead (for tests and image builders): paths
# are the same under DIR, the live system is never touched (no useradd, no systemctl). The
# `lc` user and group are added to DIR/etc/passwd and DIR/etc/group when those files exist;
# ownership is set only when running as root. No certificates are made in a staged tree, so
# that hosts made from one image do not share keys: run `lc certs init` on each host.
set -eu

usage() {
    cat <<'EOF'
usage: install.sh [--prefix DIR] [--root DIR] [--binary FILE]

  --prefix DIR    where the binary, uninstaller and docs go (default /usr/local)
  --root DIR      stage into DIR instead of installing onto this system
  --binary FILE   install FILE as the binary instead of this release's bin/lc
EOF
}

say() {
    printf 'install.sh: %s\n' "$*"
}

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
root=
binary=$here/bin/lc

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        --binary) [ $# -ge 2 ] || die "--binary needs a file"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#--binary=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

case $prefix in
    /*) prefix=${prefix%/} ;; # "/" becomes "", so "$prefix/bin" is /bin
    *) die "--prefix $prefix: must be an absolute path" ;;
esac
if [ -n "$root" ]; then
    mkdir -p "$root" || die "--root $root: cannot create it"
    root=$(cd "$root" && pwd)
    [ "$root" != / ] || die "--root /: to install onto this system, leave --root out"
fi

if [ "$(id -u)" -ne 0 ] && [ -z "$root" ]; then
    die "must run as root to install onto this system: sudo $0 $*
(or stage into a folder with --root DIR)"
fi
is_root=false
[ "$(id -u)" -ne 0 ] || is_root=true

[ -f "$binary" ] || die "$binary: no such file (is this an unpacked release?)"
for f in systemd/lc@.service systemd/lc.target systemd/lc-upload.service systemd/lc-upload.timer uninstall.sh lc.ini.example README.md LICENSE; do
    [ -f "$here/$f" ] || die "$here/$f: missing from the release"
done

# Every path below is the live one; $root is put in front when touching files.
bin=$prefix/bin/lc
units=/etc/systemd/system
etc=/etc/lc
state=/var/lib/lc
changed=false
# Whether any file was written (binary, units, docs): if not, this release is installed.
anything=false
upgrade=false
[ ! -e "$root$bin" ] || upgrade=true
old_version=
if $upgrade; then
    old_version=$("$root$bin" version 2>/dev/null || true)
fi

# --- the lc user and group ----------------------------------------------------------------
owner_note=
if [ -z "$root" ]; then
    if ! getent group lc >/dev/null; then
        groupadd --system lc
        say "added the system group lc"
    fi
    if ! getent passwd lc >/dev/null; then
        nologin=$(command -v nologin || echo /usr/sbin/nologin)
        useradd --system --gid lc --home-dir "$state" --no-create-home \
            --shell "$nologin" --comment "lc log collector" lc
        say "added the system user lc"
    fi
elif [ -f "$root/etc/passwd" ] && [ -f "$root/etc/group" ]; then
    # A system id free in both files, from 999 down as useradd --system picks them.
    if ! grep -q '^lc:' "$root/etc/group" || ! grep -q '^lc:' "$root/etc/passwd"; then
        id=999
        while [ "$id" -ge 100 ]; do
            if ! cut -d: -f3 "$root/etc/passwd" "$root/etc/group" | grep -qx "$id"; then
                break
            fi
            id=$((id - 1))
        done
        [ "$id" -ge 100 ] || die "$root/etc: no free system id for lc"
        if ! grep -q '^lc:' "$root/etc/group"; then
            echo "lc:x:$id:" >>"$root/etc/group"
            [ ! -f "$root/etc/gshadow" ] || echo "lc:!::" >>"$root/etc/gshadow"
        fi
        gid=$(grep '^lc:' "$root/etc/group" | cut -d: -f3)
        if ! grep -q '^lc:' "$root/etc/passwd"; then
            echo "lc:x:$id:$gid:lc log collector:$state:/usr/sbin/nologin" >>"$root/etc/passwd"
            [ ! -f "$root/etc/shadow" ] || echo "lc:!*:::::::" >>"$root/etc/shadow"
        fi
        say "added the user and group lc to $root/etc/passwd and $root/etc/group"
    fi
else
    owner_note="$root/etc/passwd is missing: no lc user was added, files are owned by uid/gid 0"
fi

# The numeric ids to give files: the live system's, or the staged tree's.
if [ -z "$root" ]; then
    lc_uid=$(id -u lc)
    lc_gid=$(getent group lc | cut -d: -f3)
elif [ -z "$owner_note" ]; then
    lc_uid=$(grep '^lc:' "$root/etc/passwd" | cut -d: -f3)
    lc_gid=$(grep '^lc:' "$root/etc/group" | cut -d: -f3)
else
    lc_uid=0
    lc_gid=0
fi
if ! $is_root; then
    owner_note="not running as root: ownership is left to $(id -un) (would be root and lc)"
fi

# chown that only root does (a staged tree built by another user keeps that user's files);
# -h: a link is never followed.
own() {
    if $is_root; then
        chown -h "$1" "$2"
    fi
}

# dir PATH OWNER MODE: creates a folder, or fixes the owner and mode of an existing one.
# Folders under $state are the service's to write: what is there may have been planted for
# root to trip on (ftp/ssl_update -> /etc/sudoers.d would have root chown the target to lc).
# So a link, or anything but a folder, where a folder is expected is refused, and the owner
# and mode are set from inside the folder (`.`) after checking it is where it should be, so a
# swap after the check cannot redirect them.
dir() {
    path=$root$1
    if [ -L "$path" ]; then
        die "$path: a symbolic link where a folder is expected; not followed (remove it and run install.sh again)"
    fi
    if [ -e "$path" ] && [ ! -d "$path" ]; then
        die "$path: not a folder; a folder is expected here (remove it and run install.sh again)"
    fi
    mkdir -p "$path"
    case $1 in
        "$state"/*) want=$state_phys${1#"$state"} ;;
        *) want=$(cd -P "$path" && pwd -P) ;;
    esac
    rc=0
    (
        cd -P "$path" || exit 1
        [ "$(pwd -P)" = "$want" ] || exit 3
        own "$2" . && chmod "$3" .
    ) || rc=$?
    [ "$rc" -ne 3 ] || die "$path: no longer the folder $want (replaced by a link?); not followed"
    [ "$rc" -eq 0 ] || die "$path: cannot set its owner $2 and mode $3"
}

# put SOURCE PATH OWNER MODE: places a file atomically when its content differs and sets
# `placed` to say whether it did. The owner and mode are set either way.
put() {
    target=$root$2
    placed=false
    if [ -f "$target" ] && cmp -s "$1" "$target"; then
        own "$3" "$target"
        chmod "$4" "$target"
        return 0
    fi
    cp "$1" "$target.lc-new"
    own "$3" "$target.lc-new"
    chmod "$4" "$target.lc-new"
    mv -f "$target.lc-new" "$target"
    placed=true
    anything=true
    say "installed $2"
}

# unit SOURCE NAME: a unit with PREFIX in place of /usr/local.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unit() {
    sed "s|/usr/local/|$prefix/|g" "$1" >"$work/$2"
    put "$work/$2" "$units/$2" 0:0 0644
    if $placed; then changed=true; fi
}

# --- files ----------------------------------------------------------------------------------
dir "$prefix/bin" 0:0 0755
dir "$prefix/lib/lc" 0:0 0755
dir "$prefix/share/doc/lc" 0:0 0755
dir "$units" 0:0 0755
dir "$etc" "0:$lc_gid" 0750
dir "$etc/certs" "0:$lc_gid" 0750
dir "$state" "$lc_uid:$lc_gid" 0750
# Where the service's folder really is; everything below it must stay there.
state_phys=$(cd -P "$root$state" && pwd -P)
dir "$state/ftp" "$lc_uid:$lc_gid" 0750
dir "$state/ftp/ssl_update" "$lc_uid:$lc_gid" 0750

put "$binary" "$bin" 0:0 0755
if $placed; then changed=true; fi
put "$here/uninstall.sh" "$prefix/lib/lc/uninstall.sh" 0:0 0755
for f in README.md OPERATIONS.md LICENSE lc.ini.example; do
    put "$here/$f" "$prefix/share/doc/lc/$f" 0:0 0644
done
dir "$prefix/share/man" 0:0 0755
dir "$prefix/share/man/man8" 0:0 0755
put "$here/lc.8" "$prefix/share/man/man8/lc.8" 0:0 0644
unit "$here/systemd/lc@.service" lc@.service
unit "$here/systemd/lc.target" lc.target
# The air gap's connected side (`lc upload --from`), disabled: OPERATIONS.md, "Air gap".
unit "$here/systemd/lc-upload.service" lc-upload.service
unit "$here/systemd/lc-upload.timer" lc-upload.timer

if [ -e "$root$etc/lc.ini" ]; then
    say "kept $etc/lc.ini (the new example is $prefix/share/doc/lc/lc.ini.example)"
else
    put "$here/lc.ini.example" "$etc/lc.ini" "0:$lc_gid" 0640
fi

# --- certificates ---------------------------------------------------------------------------
has_certs=false
for f in "$root$etc/certs"/*.pem; do
    if [ -e "$f" ]; then has_certs=true; fi
done
if $has_certs; then
    :
elif [ -n "$root" ]; then
    say "no certificates made in a staged tree: run 'lc certs init' on each host"
else
    if "$bin" certs init "$etc/certs" --config "$etc/lc.ini" >/dev/null; then
        say "made a local CA and server certificates in $etc/certs (lc certs init)"
    else
        say "could not make certificates; run 'sudo lc certs init' once lc.ini passes 'lc config check'"
    fi
fi

# --- systemd --------------------------------------------------------------------------------
systemd=false
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemd=true
    systemctl daemon-reload
    if $upgrade && $changed; then
        running=$(systemctl list-units --plain --no-legend --state=active 'lc@*.service' |
            cut -d' ' -f1 | tr '\n' ' ')
        running=${running% }
        if [ -n "$running" ]; then
            # Each instance is checked for itself, as it checks itself at start: a problem
            # of one port's sources does not keep the others on the old binary.
            for unit_name in $running; do
                port=${unit_name#lc@}
                port=${port%.service}
                if "$bin" config check --port "$port" --config "$etc/lc.ini" >/dev/null 2>&1; then
                    systemctl restart "$unit_name"
                    say "restarted $unit_name"
                else
                    say "not restarting $unit_name: $etc/lc.ini does not pass 'lc config check --port $port'"
                fi
            done
        fi
    fi
fi

# --- what now -------------------------------------------------------------------------------
[ -z "$owner_note" ] || say "$owner_note"
new_version=$("$root$bin" version 2>/dev/null || echo "lc (cannot run here)")
if $upgrade && ! $anything; then
    say "$new_version is already installed${root:+ in $root}, nothing changed"
    exit 0
fi
if [ -n "$root" ]; then
    say "staged $new_version into $root"
    exit 0
fi
if $upgrade; then
    say "upgraded ${old_version:-lc} to $new_version"
else
    say "installed $new_version"
fi
cat <<EOF

Next steps:
  sudo lc passwd USER                        # an FTP user for appliances that upload files
  sudoedit /etc/lc/lc.ini                    # sources, proxy; then: sudo lc config check
  sudo lc connect --token-file token.txt TENANT.REGION.portal.cloudappsecurity.com
EOF
if $systemd; then
    cat <<EOF
  sudo systemctl enable --now lc@514         # one per port in lc.ini (lc@21: FTP sources)
  sudo lc status
EOF
else
    cat <<EOF
  systemd is not running here, so lc@.service cannot start instances. Run one per port as
  the lc user with the one capability the unit grants:
  sudo setpriv --reuid=lc --regid=lc --init-groups --inh-caps=+net_bind_service \
      --ambient-caps=+net_bind_service $bin run PORT
EOF
fi
echo "Uninstall: sudo $prefix/lib/lc/uninstall.sh [--purge]"
