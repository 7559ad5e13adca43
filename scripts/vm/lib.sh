# shellcheck shell=bash disable=SC2034  # the settings are read by the scripts that source this file
# Shared by scripts/vm/image.sh and scripts/vm/e2e.sh: where the VM tools and images live,
# messages, and installing the host tools (mmdebstrap, a QEMU unpacked under /opt, ssh) on a
# Debian 12 host. Source it; it sets no traps and starts nothing.

# Built images, one folder per cache key (see image.sh).
VM_CACHE=${LC_VM_CACHE:-/var/cache/lc-vm}
# Debian 12's qemu-system-x86 cannot be installed beside the backported qemu-utils that this
# kind of machine carries (its qemu-system-common Breaks the newer qemu-utils, and apt would
# remove it), so the packages are unpacked here with dpkg-deb -x instead of installed.
VM_QEMU_ROOT=${LC_VM_QEMU_ROOT:-/opt/lc-vm/qemu}
VM_QEMU=$VM_QEMU_ROOT/usr/bin/qemu-system-x86_64
# The unpacked packages' firmware folders, in the order Debian's QEMU is configured to search
# them (its --firmwarepath). qemu-system-data's own links into /usr/share/seabios point at the
# host, where nothing is installed, so each folder is given to -L.
VM_QEMU_FIRMWARE=(
    "$VM_QEMU_ROOT/usr/share/qemu"
    "$VM_QEMU_ROOT/usr/share/seabios"
    "$VM_QEMU_ROOT/usr/lib/ipxe/qemu"
)
# QEMU loads its TCG accelerator as a module; qemu-system-common has it. QEMU_MODULE_DIR
# points QEMU at the unpacked copy.
VM_QEMU_MODULES=$VM_QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu
VM_QEMU_PACKAGES=(qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu)

export DEBIAN_FRONTEND=noninteractive

die() {
    echo "vm: error: $*" >&2
    exit 1
}

note() {
    echo "vm: $*" >&2
}

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
    [[ $status == ii* ]]
}

VM_APT_UPDATED=0
apt_update_once() {
    if [[ $VM_APT_UPDATED -eq 0 ]]; then
        note "apt-get update"
        apt-get update -q >/dev/null || die "apt-get update failed"
        VM_APT_UPDATED=1
    fi
}

# Installs the named Debian packages that are missing. --no-upgrade: never replace what the
# machine already has (a newer backport, say) just because a dependency names it.
apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    apt_update_once
    note "apt-get install ${missing[*]}"
    apt-get install -y -q --no-upgrade --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
}

# The host tools: mmdebstrap and mkfs.ext4 for the image, ssh/scp and ss for the test, and QEMU.
ensure_host_tools() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, builds a root file system)"
    command -v apt-get >/dev/null || die "apt-get not found; this script supports Debian 12 hosts only"
    apt_install_missing mmdebstrap e2fsprogs openssh-client iproute2
    ensure_qemu
}

qemu_libraries() {
    apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
        --no-enhances qemu-system-x86 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^lib/ {print $2}'
}

# Unpacks Debian's QEMU under $VM_QEMU_ROOT and installs the shared libraries it links
# against (plain library packages, which conflict with nothing).
ensure_qemu() {
    local libs=() dl
    # The list of unpacked packages is kept beside them, so a changed list unpacks again.
    if [[ ! -x $VM_QEMU || $(cat "$VM_QEMU_ROOT/.packages" 2>/dev/null) != "${VM_QEMU_PACKAGES[*]}" ]]; then
        apt_update_once
        dl=$(mktemp -d "${TMPDIR:-/tmp}/lc-vm-qemu.XXXXXX")
        note "apt-get download ${VM_QEMU_PACKAGES[*]} (unpacked into $VM_QEMU_ROOT)"
        # _apt cannot write into a root-only mktemp folder; let it.
        chmod 755 "$dl"
        if ! (cd "$dl" && apt-get download -q "${VM_QEMU_PACKAGES[@]}" >/dev/null 2>"$dl/download.log"); then
            cat "$dl/download.log" >&2
            rm -rf "$dl"
            die "apt-get download ${VM_QEMU_PACKAGES[*]} failed"
        fi
        rm -rf "$VM_QEMU_ROOT.new"
        mkdir -p "$VM_QEMU_ROOT.new"
        local deb
        for deb in "$dl"/*.deb; do
            dpkg-deb -x "$deb" "$VM_QEMU_ROOT.new" || { rm -rf "$dl"; die "dpkg-deb -x $deb failed"; }
        done
        echo "${VM_QEMU_PACKAGES[*]}" >"$VM_QEMU_ROOT.new/.packages"
        rm -rf "$dl" "$VM_QEMU_ROOT"
        mv "$VM_QEMU_ROOT.new" "$VM_QEMU_ROOT"
    fi
    # The libraries are qemu-system-x86's Depends; most are already there. Before the first
    # apt-get update, apt-cache may know nothing about the package.
    mapfile -t libs < <(qemu_libraries)
    if [[ ${#libs[@]} -eq 0 ]]; then
        apt_update_once
        mapfile -t libs < <(qemu_libraries)
    fi
    [[ ${#libs[@]} -gt 0 ]] || die "apt-cache depends qemu-system-x86 named no libraries"
    apt_install_missing "${libs[@]}"
    local f
    for f in "$VM_QEMU" "$VM_QEMU_MODULES/accel-tcg-x86_64.so"; do
        if ldd "$f" | grep -q 'not found'; then
            die "$f: missing shared libraries: $(ldd "$f" | awk '/not found/ {print $1}' | tr '\n' ' ')"
        fi
    done
}
