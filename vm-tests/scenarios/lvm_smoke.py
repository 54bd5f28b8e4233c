"""lvm-smoke: blank NVMe and SATA disks appear under their by-id names; a guest script makes
a PV/VG/LV, an ext4 filesystem, mounts it and writes a file; a second boot on the same images,
with the disks attached in another order, finds the VG auto-activated by udev and the file
intact. Proves the harness's disk persistence across boots and LVM in the guest (no provision
stage involved: the disks stage does nothing yet)."""

from harness import Boot, Scenario

N0 = "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_NVME0"
N1 = "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_NVME1"
S0 = "/dev/disk/by-id/ata-QEMU_HARDDISK_SATA0"

NAMES = rf'''
for d in {N0} {N1} {S0}; do check "by-id $d" wait_for 20 test -b $d; done
data_text kernel-names sh -c 'for d in {N0} {N1} {S0}; do echo "$d -> $(readlink -f $d)"; done'
check_eq "SATA disk is rotational" "$(cat /sys/block/$(basename $(readlink -f {S0}))/queue/rotational)" 1
check_eq "NVMe disk is not rotational" "$(cat /sys/block/$(basename $(readlink -f {N0}))/queue/rotational)" 0
'''

BOOT1 = NAMES + rf'''
check "disks blank" sh -c 'for d in {N0} {N1} {S0}; do [ -z "$(blkid -p -o value -s TYPE $d)" ] || exit 1; done'
check pvcreate pvcreate -y {N0} {N1} {S0}
check vgcreate vgcreate smoke {N0} {N1} {S0}
check lvcreate lvcreate -y -n data -L 256M smoke
check mkfs.ext4 mkfs.ext4 -q -L smokedata /dev/smoke/data
check mount sh -c 'mkdir -p /mnt/data && mount /dev/smoke/data /mnt/data'
check "write file" sh -c 'echo "written on boot 1 of $PT_SCENARIO" > /mnt/data/proof && sync'
check umount umount /mnt/data
'''

BOOT2 = NAMES + rf'''
check "VG auto-activated by udev" wait_for 30 test -b /dev/smoke/data
check_eq "LV active" "$(lvs --noheadings -o lv_active smoke/data | tr -d ' ')" active
data_text lvm-activate sh -c 'systemctl list-units --all --plain --no-legend "lvm-activate-*"'
check_eq "VG has 3 PVs" "$(vgs --noheadings -o pv_count smoke | tr -d ' ')" 3
check fsck e2fsck -fn /dev/smoke/data
check mount sh -c 'mkdir -p /mnt/data && mount /dev/smoke/data /mnt/data'
check_eq "file intact" "$(cat /mnt/data/proof)" "written on boot 1 of $PT_SCENARIO"
'''

SCENARIO = Scenario(
    name="lvm-smoke",
    doc="by-id names; PV/VG/LV + ext4 on boot 1; boot 2 (disks reordered) sees it auto-activated",
    disks=["nvme:1G", "nvme:1G", "sata:1G"],
    boots=[
        Boot(check=BOOT1, expect_results=["write file"]),
        Boot(check=BOOT2, disks=[2, 1, 0], observe=True,
             expect_results=["VG auto-activated by udev", "file intact"]),
    ],
)
