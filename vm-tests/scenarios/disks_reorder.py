"""disks-reorder (disks issue, scenario 6; reliability issue: shuffled disks): two SATA disks
named in the layout by /dev/disk/by-id, each with a GPT partition mounted at its own place.
Boot 1 provisions and writes a canary naming the disk into each filesystem. Boot 2 attaches the
disks in the other order (the kernel names /dev/sda and /dev/sdb swap): mount-only still mounts
each filesystem at its own mountpoint. Boot 3 uses the same layout written with kernel names,
disks still swapped, and no flag: the partitions' GPT names do not match what the layout says
for /dev/sda, so the agent refuses to mount (exit 9) rather than mount the wrong disk — and the
disk images are byte-identical afterwards."""

from harness import Boot, Scenario, Unchanged

LAYOUT = """disk:
  alpha:
    type: disk
    device: {a}
    content:
      type: gpt
      partitions:
        data:
          size: 100%
          content: {{ type: filesystem, format: ext4, mountpoint: /srv/alpha }}
  beta:
    type: disk
    device: {b}
    content:
      type: gpt
      partitions:
        data:
          size: 100%
          content: {{ type: filesystem, format: ext4, mountpoint: /srv/beta }}
"""
BY_ID = LAYOUT.format(a="/dev/disk/by-id/ata-QEMU_HARDDISK_SATA0",
                      b="/dev/disk/by-id/ata-QEMU_HARDDISK_SATA1")
KERNEL = LAYOUT.format(a="/dev/sda", b="/dev/sdb")
CONFIG = "disks:\n  layout: layout.yaml\n"

u = Unchanged()
SCENARIO = Scenario(
    name="disks-reorder",
    doc="by-id layout survives swapped disks; the kernel-name layout refuses to mount the wrong disk",
    disks=["sata:1G", "sata:1G"],
    config=CONFIG,
    layout=BY_ID,
    boots=[
        Boot(cmdline="homelab.provision_disks=true", check=r'''
check_eq "alpha on SATA0" "$(readlink -f /dev/disk/by-id/ata-QEMU_HARDDISK_SATA0)1" "$(findmnt -n -o SOURCE /srv/alpha)"
check "canaries" sh -c 'echo alpha >/srv/alpha/who && echo beta >/srv/beta/who && sync'
''', expect_results=["canaries"]),
        Boot(disks=[1, 0], check=r'''
check_eq "disks swapped: SATA0 is now sdb" "$(readlink -f /dev/disk/by-id/ata-QEMU_HARDDISK_SATA0)" /dev/sdb
check_eq "alpha's filesystem at /srv/alpha" "$(cat /srv/alpha/who)" alpha
check_eq "beta's filesystem at /srv/beta" "$(cat /srv/beta/who)" beta
''', expect_results=["alpha's filesystem at /srv/alpha"]),
        Boot(disks=[1, 0], layout=KERNEL, check=r'''
check "nothing mounted at /srv/alpha" sh -c '! findmnt /srv/alpha'
check "the journal says which partition is not the right one" sh -c 'journalctl -b -u provision-disks.service | grep -q "right disk"'
''', expect_units={"provision-disks.service": 9}, host_before=u.record, host_after=u.verify),
    ],
)
