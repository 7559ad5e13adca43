#!/bin/sh
# Removes lc: stops and disables every lc@ instance and lc.target, removes the binary, the
# units, the docs and this script. The configuration (/etc/lc), the data (/var/lib/lc: spool,
# backup, outbox, FTP folders) and the lc user stay, so a later install picks up where this
# one stopped; --purge removes them too, and /run/lc.
#
# install.sh puts this script in PREFIX/lib/lc/ and it finds PREFIX from there; from an
# unpacked release, pass --prefix if install.sh was given one. --root DIR works on a tree
# staged by `install.sh --root DIR` and never touches the live system.
set -eu

usage() {
    cat <<'EOF'
usage: uninstall.sh [--purge [--force]] [--prefix DIR] [--root DIR]

  --purge        also remove /etc/lc, /var/lib/lc, /run/lc and the lc user and group;
                 refused while /var/lib/lc holds data not delivered yet (spool, outbox)
  --force        with --purge: remove undelivered data too
  --prefix DIR   where lc was installed (default: found from this script's place, else /usr/local)
  --root DIR     work on a tree staged with install.sh --root DIR
EOF
}

say() {
    printf 'uninstall.sh: %s\n' "$*"
}

die() {
    printf 'uninstall.sh: error: %s\n' "$*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
purge=false
force=false
root=
prefix=
while [ $# -gt 0 ]; do
    case $1 in
        --purge) purge=true; shift ;;
        --force) force=true; shift ;;
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if [ -n "$root" ]; then
    [ -d "$root" ] || die "--root $root: no such folder"
    root=$(cd "$root" && pwd)
    [ "$root" != / ] || die "--root /: to uninstall from this system, leave --root out"
fi
if [ -z "$prefix" ]; then
    # PREFIX/lib/lc/uninstall.sh, possibly under --root.
    case $here in
        */lib/lc) prefix=${here%/lib/lc}; prefix=${prefix#"$root"} ;;
        *) prefix=/usr/local ;;
    esac
fi
case $prefix in
    /* | "") prefix=${prefix%/} ;;
    *) die "--prefix $prefix: must be an absolute path" ;;
esac

if [ "$(id -u)" -ne 0 ] && [ -z "$root" ]; then
    die "must run as root to uninstall from this system: sudo $0 $*
(or work on a staged tree with --root DIR)"
fi

units=/etc/systemd/system

# --- undelivered data -----------------------------------------------------------------------
# --purge would delete what the collector received and has not delivered: segments waiting in
# spool/ and, with `url = dir:`, files not yet taken from outbox/. Refuse before anything
# changes, say how much and where, unless --force. (A state_dir elsewhere is never purged.)
if $purge && ! $force; then
    waiting=
    for d in /var/lib/lc/spool /var/lib/lc/outbox; do
        [ -d "$root$d" ] || continue
        n=$(find "$root$d" -type f -size +0 ! -name '*.name' ! -name '.*' | wc -l)
        [ "$n" -gt 0 ] || continue
        size=$(du -sh "$root$d" | cut -f1)
        waiting="$waiting
  $d: $n files, $size"
    done
    if [ -n "$waiting" ]; then
        die "--purge would delete data not delivered yet:$waiting
let the instances deliver it (sudo lc status shows the backlog), move it away, or add --force; nothing was changed"
    fi
fi

# --- stop and disable -----------------------------------------------------------------------
# The enabled instances are the lc@PORT links in the .wants folders (enabled but stopped ones
# included, which a glob over loaded units would miss).
enabled=
for link in "$root$units"/*.wants/lc@*.service "$root$units"/*.wants/lc.target \
    "$root$units"/*.wants/lc-upload.timer; do
    [ -L "$link" ] || continue
    name=${link##*/}
    case " $enabled " in
        *" $name "*) ;;
        *) enabled="$enabled $name" ;;
    esac
done
enabled=${enabled# }

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    if [ -n "$enabled" ]; then
        # shellcheck disable=SC2086 # one unit name per word
        systemctl disable --quiet $enabled || true
        say "disabled $enabled"
    fi
    running=$(systemctl list-units --plain --no-legend 'lc@*.service' 'lc.target' \
        'lc-upload.timer' 'lc-upload.service' |
        cut -d' ' -f1 | tr '\n' ' ')
    running=${running% }
    if [ -n "$running" ]; then
        # shellcheck disable=SC2086
        systemctl stop $running || true
        # shellcheck disable=SC2086
        systemctl reset-failed $running 2>/dev/null || true
        say "stopped $running"
    fi
else
    # No systemd to ask: remove the links by hand.
    for link in "$root$units"/*.wants/lc@*.service "$root$units"/*.wants/lc.target \
        "$root$units"/*.wants/lc-upload.timer; do
        [ -L "$link" ] || continue
        rm -f "$link"
        rmdir "${link%/*}" 2>/dev/null || true
    done
    [ -z "$enabled" ] || say "removed the links of $enabled"
    if [ -z "$root" ]; then
        for pid in /run/lc/*.pid; do
            [ -e "$pid" ] && say "systemd is not running: stop any 'lc run' still running ($pid)"
            break
        done
    fi
fi

# lc.target.wants/ holds nothing but lc@ links.
rmdir "$root$units/lc.target.wants" 2>/dev/null || true

# --- files ----------------------------------------------------------------------------------
for f in "$prefix/bin/lc" "$prefix/share/man/man8/lc.8" "$units/lc@.service" "$units/lc.target" \
    "$units/lc-upload.service" "$units/lc-upload.timer"; do
    if [ -e "$root$f" ]; then
        rm -f "$root$f"
        say "removed $f"
    fi
done
# The drop-ins an operator made with `systemctl edit lc@` are theirs; only --purge removes them.
for d in "$prefix/share/doc/lc" "$prefix/lib/lc"; do
    if [ -e "$root$d" ]; then
        rm -rf "$root$d"
        say "removed $d"
    fi
done
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi

if ! $purge; then
    say "kept /etc/lc, /var/lib/lc and the lc user (--purge removes them)"
    exit 0
fi

# --- purge ----------------------------------------------------------------------------------
for d in /etc/lc /var/lib/lc /run/lc "$units/lc@.service.d" "$units/lc.target.d" \
    "$units/lc-upload.service.d" "$units/lc-upload.timer.d"; do
    if [ -e "$root$d" ]; then
        rm -rf "$root$d"
        say "removed $d"
    fi
done
if [ -z "$root" ]; then
    if getent passwd lc >/dev/null; then
        userdel lc
        say "removed the user lc"
    fi
    if getent group lc >/dev/null; then
        groupdel lc
        say "removed the group lc"
    fi
else
    for f in passwd group shadow gshadow; do
        if [ -f "$root/etc/$f" ] && grep -q '^lc:' "$root/etc/$f"; then
            grep -v '^lc:' "$root/etc/$f" >"$root/etc/$f.lc-new" || true
            chmod --reference="$root/etc/$f" "$root/etc/$f.lc-new"
            chown --reference="$root/etc/$f" "$root/etc/$f.lc-new" 2>/dev/null || true
            mv -f "$root/etc/$f.lc-new" "$root/etc/$f"
            say "removed lc from $root/etc/$f"
        fi
    done
fi
