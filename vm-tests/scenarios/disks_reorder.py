"""disks-reorder (disks issue, scenario 6; reliability issue: shuffled disks): two disks
named in the layout by /dev/disk/by-id, each with a GPT partition mounted at its own place.
Boot 1 provisions and writes a canary naming the disk into each filesystem. Boot 2 attaches the
disks in the other order (the kernel names /dev/vda and /dev/vdb swap): mount-only still mounts
each filesystem at its own mountpoint. Boot 3 uses the same layout written with kernel names,
disks still swapped, and no flag: the partitions' GPT names do not match what the layout says
for /dev/vda, so the agent refuses to mount (exit 9) rather than mount the wrong disk — and the
disk images are byte-identical afterwards.

virtio disks, not SATA: the swap of kernel names is this scenario's precondition, and only
virtio-blk makes it certain (its names follow the PCI slots, probed in order; the sd driver probes
asynchronously, and a SATA slave was once named sda before its master under load)."""

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
BY_ID = LAYOUT.format(a="/dev/disk/by-id/virtio-VIRTIO0", b="/dev/disk/by-id/virtio-VIRTIO1")
KERNEL = LAYOUT.format(a="/dev/vda", b="/dev/vdb")
CONFIG = "disks:\n  layout: layout.yaml\n"

u = Unchanged()
SCENARIO = Scenario(
    name="disks-reorder",
    doc="by-id layout survives swapped disks; the kernel-name layout refuses to mount the wrong disk",
    disks=["virtio:1G", "virtio:1G"],
    config=CONFIG,
    layout=BY_ID,
    boots=[
        Boot(cmdline="homelab.provision_disks=true", check=r'''
check_eq "alpha on VIRTIO0" "$(readlink -f /dev/disk/by-id/virtio-VIRTIO0)1" "$(findmnt -n -o SOURCE /srv/alpha)"
check "canaries" sh -c 'echo alpha >/srv/alpha/who && echo beta >/srv/beta/who && sync'
''', expect_results=["canaries"]),
        Boot(disks=[1, 0], check=r'''
check_eq "disks swapped: VIRTIO0 is now vdb" "$(readlink -f /dev/disk/by-id/virtio-VIRTIO0)" /dev/vdb
check_eq "alpha's filesystem at /srv/alpha" "$(cat /srv/alpha/who)" alpha
check_eq "beta's filesystem at /srv/beta" "$(cat /srv/beta/who)" beta
''', expect_results=["alpha's filesystem at /srv/alpha"]),
        Boot(disks=[1, 0], layout=KERNEL, check=r'''
check "nothing mounted at /srv/alpha" sh -c '! findmnt /srv/alpha'
check "the journal says which partition is not the right one" sh -c 'journalctl -b -u provision-disks.service | grep -q "right disk"'
''', expect_units={"provision-disks.service": 9}, host_before=u.record, host_after=u.verify),
    ],
)
