#!/usr/bin/env bash
# Builds the throwaway Debian 12 VM that scripts/vm/e2e.sh boots, and prints the folder that
# holds it: rootfs.ext4 (the disk, booted with snapshot=on so it never changes), vmlinuz and
# initrd.img (passed to QEMU's -kernel/-initrd), id_ed25519 (root's ssh key, made per image)
# and cmdline (the kernel command line).
#
# The root file system is `mmdebstrap --variant=minbase` with systemd as PID 1, sshd and the
# tools the test uses (logger, curl, ss, jq), from the mirrors apt is configured with; it is
# made into an ext4 image with `mkfs.ext4 -d`. Networking is a static address on QEMU's user
# network (10.0.2.15, restricted: the guest reaches nothing outside), so boot waits for no
# DHCP. Timers that would reach out (apt-daily) are masked.
#
# Images are cached under $LC_VM_CACHE (default /var/cache/lc-vm), one folder per hash of
# this script (the package list and every setting of the image are in it); other folders
# there are removed when a new image is made. Installs its own tools on a Debian 12 host
# (see lib.sh). Needs root. Cold: a few minutes (mostly downloads and the kernel's initrd);
# warm: well under a second.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/vm/lib.sh
source ./lib.sh

SUITE=bookworm
PACKAGES=(
    systemd systemd-sysv udev dbus openssh-server iproute2 util-linux curl procps jq
    linux-image-amd64
)
# Left out of the image: documentation, and kernel modules for hardware a QEMU guest does not
# have. dpkg's patterns match whole paths, '*' included '/'.
DPKG_EXCLUDES=(
    '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*'
    '/lib/modules/*/kernel/sound/*' '/lib/modules/*/kernel/drivers/gpu/*'
    '/lib/modules/*/kernel/drivers/media/*' '/lib/modules/*/kernel/drivers/net/wireless/*'
    '/lib/modules/*/kernel/drivers/infiniband/*' '/lib/modules/*/kernel/drivers/staging/*'
    '/lib/modules/*/kernel/drivers/bluetooth/*' '/lib/modules/*/kernel/net/wireless/*'
    '/lib/modules/*/kernel/net/mac80211/*' '/lib/modules/*/kernel/drivers/iio/*'
)
# Free space in the image: lc pauses its receivers while its state folder has less than
# min_free_bytes (1G by default) free, and the test runs lc with the defaults. The image file
# is sparse and a boot's writes go to QEMU's temporary snapshot, so the room costs nothing.
FREE_MIB=2048
CMDLINE="root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=1"

ensure_host_tools

key=$(sha256sum <image.sh | cut -c1-16)
image_dir=$VM_CACHE/$key
mkdir -p "$VM_CACHE"
# One build at a time; a second caller waits and then finds the image made.
exec 9>"$VM_CACHE/.lock"
flock 9

if [[ -f $image_dir/ready ]]; then
    echo "$image_dir"
    exit 0
fi

build=$(mktemp -d "$VM_CACHE/.build.XXXXXX")
trap 'rm -rf "$build"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tree=$build/tree
started=$SECONDS

# The host's own apt sources, so the image comes from the same (reachable) mirrors.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -s $f ]] && sources+=("$f")
done
[[ ${#sources[@]} -gt 0 ]] || die "no apt sources configured on this host (/etc/apt/sources.list*)"

dpkgopts=()
for pattern in "${DPKG_EXCLUDES[@]}"; do
    dpkgopts+=("--dpkgopt=path-exclude=$pattern")
done

note "building the VM image $key with mmdebstrap (a few minutes)"
include=$(
    IFS=,
    echo "${PACKAGES[*]}"
)
# The initrd holds only what finds the root file system on a virtio disk: under TCG every
# module udev loads at boot costs time, and the default (MODULES=most) loads hundreds.
# shellcheck disable=SC2016  # "$1" is the hook's argument, expanded by the shell mmdebstrap runs
initrd_hooks=(
    --customize-hook='echo MODULES=list >"$1/etc/initramfs-tools/conf.d/lc-vm"'
    --customize-hook='printf "virtio_pci\nvirtio_blk\nvirtio_net\next4\ncrc32c_generic\n" >>"$1/etc/initramfs-tools/modules"'
    --customize-hook='chroot "$1" update-initramfs -u -k all'
)
if ! mmdebstrap --quiet --variant=minbase --include="$include" "${dpkgopts[@]}" "${initrd_hooks[@]}" \
    "$SUITE" "$tree" "${sources[@]}" </dev/null >"$build/mmdebstrap.log" 2>&1; then
    tail -n 30 "$build/mmdebstrap.log" >&2
    cp "$build/mmdebstrap.log" "${TMPDIR:-/tmp}/lc-vm-mmdebstrap.log"
    die "mmdebstrap failed (last lines above; whole log: ${TMPDIR:-/tmp}/lc-vm-mmdebstrap.log)"
fi

echo lc-vm >"$tree/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlc-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$tree/etc/hosts"
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n' >"$tree/etc/fstab"

# QEMU's user network: the guest is 10.0.2.15, the gateway 10.0.2.2 (both QEMU's defaults).
cat >"$tree/etc/systemd/network/10-qemu.network" <<'EOF'
[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
systemctl --root="$tree" enable systemd-networkd.service >/dev/null 2>&1
systemctl --root="$tree" mask systemd-networkd-wait-online.service apt-daily.timer \
    apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer >/dev/null 2>&1

# Root logs in with a key made for this image only (the VM lives for one test run).
ssh-keygen -q -t ed25519 -N '' -C lc-vm -f "$build/id_ed25519"
install -d -m 0700 "$tree/root/.ssh"
install -m 0600 "$build/id_ed25519.pub" "$tree/root/.ssh/authorized_keys"

# The kernel and initrd are read by QEMU from the host.
vmlinuz=$(find "$tree/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)
initrd=$(find "$tree/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n1)
[[ -n $vmlinuz && -n $initrd ]] || die "no kernel or initrd in $tree/boot"
cp "$vmlinuz" "$build/vmlinuz"
cp "$initrd" "$build/initrd.img"
echo "$CMDLINE" >"$build/cmdline"

used_mib=$(du -sm "$tree" | cut -f1)
size_mib=$((used_mib * 12 / 10 + FREE_MIB))
note "mkfs.ext4 -d: ${used_mib} MiB used, image ${size_mib} MiB"
if ! mkfs.ext4 -q -F -L lc-vm -d "$tree" "$build/rootfs.ext4" "${size_mib}M" >"$build/mkfs.log" 2>&1; then
    cat "$build/mkfs.log" >&2
    die "mkfs.ext4 -d failed"
fi
rm -rf "$tree"

rm -rf "$image_dir"
mv "$build" "$image_dir"
trap - EXIT
touch "$image_dir/ready"
# Earlier images (another key) are not used again.
find "$VM_CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
note "VM image ready in $((SECONDS - started)) s: $image_dir"
echo "$image_dir"
