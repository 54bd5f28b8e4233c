"""disks-refuse-signatures (reliability issue): two more refusals on the shipped ganeti-node
layout, which names its disks by kernel name (/dev/nvme0n1, /dev/sda), each leaving every disk
image byte-identical (checked on the host):
  boot 2: DRBD metadata (drbdmeta create-md, internal, at the end of the NVMe) on a target →
          refused as foreign content on a kernel-named disk, in words ("DRBD metadata");
  boot 3: the operator allows foreign content on both disks (homelab.wipe_foreign=hdd,nvme) but
          /dev/sda is active swap (swapon before the disks unit) → refused ("in use as swap").
Boot 4 is the control: the same cmdline without the swap active provisions, so it is the swap,
and only the swap, that boot 3 refused on."""

from harness import Boot, Scenario, Unchanged

from _common import GANETI_CONFIG, GANETI_DISKS, GANETI_FILES, SH

BOOT1 = r'''
check "drbdmeta create-md on /dev/nvme0n1" sh -c 'yes yes | drbdmeta --force 0 v09 /dev/nvme0n1 internal create-md 1'
check_eq "libblkid sees the DRBD metadata" "$(blkid -p -o value -s TYPE /dev/nvme0n1)" drbd
check "swap signature on /dev/sda" mkswap /dev/sda
'''

BOOT2 = r'''
check "the refusal names the DRBD metadata" sh -c 'journalctl -b -u provision-disks.service | grep -q "nvme: holds data that is not this layout.s (/dev/nvme0n1: DRBD metadata)"'
check "journal says nothing was touched" sh -c 'journalctl -b -u provision-disks.service | grep -q "refusing to touch any disk"'
'''

SWAPON = {"/etc/systemd/system/provision-disks.service.d/zz-swapon.conf": """[Service]
# swap on the target disk before the agent looks (never swap out: the image must stay the same)
ExecStartPre=/bin/sh -c 'echo 0 >/proc/sys/vm/swappiness; i=0; until swapon /dev/sda; do i=$((i+1)); [ $i -lt 150 ] || exit 1; sleep 0.2; done'
"""}

BOOT3 = r'''
check_eq "/dev/sda is active swap" "$(swapon --show=NAME --noheadings | tr -d ' ')" /dev/sda
check "the refusal names the swap" sh -c 'journalctl -b -u provision-disks.service | grep -q "hdd: /dev/sda is in use as swap"'
check "and only the swap" sh -c '! journalctl -b -u provision-disks.service | grep -q "holds data that is not"'
'''

BOOT4 = SH + r'''
check "control: without the swap, the allowed wipe provisions" verify_layout
'''

CL = "homelab.provision_disks=true"
u2, u3 = Unchanged(), Unchanged()
SCENARIO = Scenario(
    name="disks-refuse-signatures",
    doc="DRBD metadata on a kernel-named target, active swap on a target: refused, disks byte-identical",
    disks=GANETI_DISKS, config=GANETI_CONFIG, layout=None, files=GANETI_FILES, memory_mb=1536,
    boots=[
        Boot(check=BOOT1, expect_units={"provision-disks.service": 9},
             expect_results=["libblkid sees the DRBD metadata", "swap signature on /dev/sda"]),
        Boot(cmdline=CL, check=BOOT2, expect_units={"provision-disks.service": 4},
             expect_results=["the refusal names the DRBD metadata"],
             host_before=u2.record, host_after=u2.verify),
        Boot(cmdline=CL + " homelab.wipe_foreign=hdd,nvme", files=SWAPON, check=BOOT3,
             expect_units={"provision-disks.service": 4},
             expect_results=["the refusal names the swap", "and only the swap"],
             host_before=u3.record, host_after=u3.verify),
        Boot(cmdline=CL + " homelab.wipe_foreign=hdd,nvme", check=BOOT4, timeout=420,
             expect_results=["control: without the swap, the allowed wipe provisions"]),
    ],
)
