#!/bin/bash
# vm-tests/image/build-base.sh — build the guest's base image: a Debian cloud kernel and the whole
# OS as one legacy-lz4 cpio initramfs (the production nodes netboot the same way).
#
#   build-base.sh OUTDIR KERNEL_PACKAGE SUITE PACKAGE...
#
# Writes OUTDIR/vmlinuz, OUTDIR/base.cpio.lz4 (padded to a 512-byte boundary so that an
# uncompressed cpio can be appended, see VM-NOTES) and OUTDIR/info.json. Called by the runner
# (vm-tests/harness/image.py), which caches OUTDIR by a hash of this file, the package list and
# the apt candidate versions. Needs root, mmdebstrap, apt-get, dpkg-deb, depmod/modprobe, cpio, lz4.
set -euo pipefail

out=$1 kpkg=$2 suite=$3
shift 3
pkgs=("$@")
mirror=${PROVISION_VM_MIRROR:-http://deb.debian.org/debian}
security=${PROVISION_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

SECONDS=0
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/provision-vm-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

step() { printf '[base %4ds] %s\n' "$SECONDS" "$*" >&2; }

# --- 1. the root tree -------------------------------------------------------------------------
step "mmdebstrap $suite (${#pkgs[@]} packages)"
mmdebstrap --quiet --variant=minbase --mode=root --format=directory \
    --include="$(IFS=,; echo "${pkgs[*]}")" \
    --aptopt='Acquire::Languages "none"' \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    "$suite" "$root" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb $security $suite-security main"

# --- 2. the kernel and a trimmed module tree ---------------------------------------------------
step "kernel $kpkg"
mkdir -p "$work/k"
(cd "$work" && apt-get download -q "$kpkg" 2>&1 | grep -v 'unsandboxed' >&2 || true)
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
kver=$(ls "$work/k/lib/modules")
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
depmod -b "$work/k" "$kver"

# NVMe, ext4, virtio core bits and af_packet are built into the cloud kernel; everything else
# the tests need is a module. Missing ones (e.g. drbd in another flavour) are reported, not fatal.
wanted=(
    dm-mod dm-thin-pool dm-snapshot dm-mirror dm-zero dm-crypt
    drbd lru_cache libcrc32c crc32c-intel crc32c_generic
    virtio_pci virtio_net virtio_blk virtio_scsi virtio_console virtio-rng
    ata_piix ata_generic sd_mod
    vfat fat nls_cp437 nls_iso8859-1 nls_utf8 nls_ascii
    xfs loop qemu_fw_cfg dm-raid raid0 raid1 raid10 raid456
)
kept=() absent=()
mods=$root/usr/lib/modules/$kver
mkdir -p "$mods"
for m in "${wanted[@]}"; do
    if deps=$(modprobe -d "$work/k" -S "$kver" --show-depends "$m" 2>/dev/null); then
        while read -r kind path _; do
            [ "$kind" = insmod ] || continue
            rel=${path#"$work/k/lib/modules/$kver/"}
            mkdir -p "$mods/$(dirname "$rel")"
            cp -n "$path" "$mods/$rel"
        done <<<"$deps"
        kept+=("$m")
    else
        absent+=("$m")
    fi
done
cp "$work/k/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} "$mods/"
depmod -b "$root" "$kver"
[ ${#absent[@]} -eq 0 ] || step "modules not in this kernel (skipped): ${absent[*]}"

# --- 3. configure the guest --------------------------------------------------------------------
step "configure"
echo provision-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 provision-vm\n' >"$root/etc/hosts"
echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"   # QEMU user networking's DNS
: >"$root/etc/machine-id"                             # the per-test overlay writes one
: >"$root/etc/fstab"

mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/20-wired.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
systemctl --root="$root" --quiet enable systemd-networkd.service systemd-networkd-wait-online.service

# Serial getty hangs up other writers of ttyS0 (markers get lost); getty-static waits 2 s for
# dbus; firstboot would prompt on the console; timers only cost time in a short-lived guest.
systemctl --root="$root" --quiet mask \
    serial-getty@ttyS0.service getty@tty1.service getty-static.service console-getty.service \
    systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer \
    2>/dev/null || true

mkdir -p "$root/etc/systemd/journald.conf.d"
cat >"$root/etc/systemd/journald.conf.d/provision-vm.conf" <<'J'
[Journal]
Storage=volatile
RateLimitIntervalSec=0
J

# Pre-built hwdb; stamp /etc and /var so ConditionNeedsUpdate= units (hwdb, ldconfig) skip.
chroot "$root" systemd-hwdb update 2>/dev/null || true
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
    "$root"/usr/share/bash-completion "$root"/usr/share/zsh "$root"/usr/share/lintian
# Trim what a test guest never runs (the image is unpacked on every boot, under TCG): python3 and
# libicu come with xfsprogs (only xfs_scrub uses them), perl's modules with usrmerge, the hwdb
# sources are compiled above, gconv serves iconv only.
rm -rf "$root"/usr/lib/python3* "$root"/usr/bin/python3* "$root"/usr/share/python3 \
    "$root"/usr/lib/x86_64-linux-gnu/perl "$root"/usr/share/perl \
    "$root"/usr/lib/x86_64-linux-gnu/libicu* "$root"/usr/lib/udev/hwdb.d \
    "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/usr/share/i18n
for b in mkfs.xfs lvm sgdisk mkfs.ext4 drbdadm curl sshd; do   # nothing needed went with it
    p=$(chroot "$root" sh -c "command -v $b") || { echo "missing $b" >&2; exit 1; }
    if chroot "$root" ldd "$p" | grep -q 'not found'; then
        echo "trim broke $b:" >&2; chroot "$root" ldd "$p" >&2; exit 1
    fi
done
touch "$root/etc/.updated" "$root/var/.updated"

# --- 4. pack -----------------------------------------------------------------------------------
step "pack"
(cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) | lz4 -l -q >"$out/base.cpio.lz4.tmp"
truncate -s %512 "$out/base.cpio.lz4.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/base.cpio.lz4.tmp" "$out/base.cpio.lz4"

tree_mb=$(du -sm "$root" | cut -f1)
secs=$SECONDS
cat >"$out/info.json" <<INFO
{
  "kernel_package": "$kpkg",
  "kernel_release": "$kver",
  "suite": "$suite",
  "packages": "$(echo "${pkgs[*]}")",
  "modules_kept": "$(echo "${kept[*]}")",
  "modules_absent": "$(echo "${absent[*]}")",
  "tree_mb": $tree_mb,
  "initrd_bytes": $(stat -c %s "$out/base.cpio.lz4"),
  "build_seconds": $secs
}
INFO
step "done: $out ($(du -h "$out/base.cpio.lz4" | cut -f1), tree ${tree_mb} MB)"
