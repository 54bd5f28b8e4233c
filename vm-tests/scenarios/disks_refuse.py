"""disks-refuse (disks issue, scenario 4): safety refusals on real disks.

Boot 1 (no flag) plays the operator: it puts a foreign VG with an ext4 LV on the SATA disk that
layouts/ganeti-node.yaml names by its kernel name /dev/sda (so the disks stage fails, mount-only,
naming what is missing: exit 9). By hand it also runs the agent with the flag while a target
filesystem is mounted, and with a selector that matches both NVMe disks: both refused (exit 4).
Boot 2 boots with homelab.provision_disks=true: refused (exit 4) before touching any disk — every
disk image is byte-identical afterwards (checked on the host). Boot 3 boots with
homelab.provision_disks=maybe: refused as an unparseable value (exit 3), disks byte-identical."""

from _common import METRICS_SH, metrics_verify, stage_metrics
from harness import Boot, Scenario, Unchanged, repo_file

LAYOUT = repo_file("layouts/ganeti-node.yaml")
CONFIG = "disks:\n  layout: ganeti-node.yaml\n"

SELECTOR = """disk:
  data:
    type: disk
    select: { transport: nvme }
    content: { type: lvm_pv, vg: sel }
lvm_vg:
  sel: { type: lvm_vg }
"""

BOOT1 = METRICS_SH + r'''
check "make a foreign VG on /dev/sda" sh -c 'pvcreate -qy /dev/sda && vgcreate -q other /dev/sda && lvcreate -qy -n data -L 64M other && mkfs.ext4 -q -L precious /dev/other/data'
check "mount it" sh -c 'mkdir -p /mnt/precious && mount /dev/other/data /mnt/precious && echo keep >/mnt/precious/file'
provision --cmdline "homelab.provision_disks=true homelab.wipe_foreign" disks >/tmp/mounted.out 2>&1; rc=$?
check_eq "mounted target: refused (exit 4)" "$rc" 4
check "mounted target: the refusal says why" grep -q "mounted at /mnt/precious" /tmp/mounted.out
provision --layout /etc/provision/selector.yaml --cmdline "homelab.provision_disks=true" disks >/tmp/sel.out 2>&1; rc=$?
check_eq "ambiguous selector: refused (exit 4)" "$rc" 4
check "ambiguous selector: names both disks" sh -c 'grep -q "matches 2 disks" /tmp/sel.out && grep -q nvme0n1 /tmp/sel.out && grep -q nvme1n1 /tmp/sel.out'
check "the foreign VG is intact" sh -c 'vgs other && test "$(cat /mnt/precious/file)" = keep'
check "unmount and deactivate" sh -c 'umount /mnt/precious && vgchange -qan other'
'''

BOOT2 = METRICS_SH + r'''
check "journal names the foreign VG" sh -c 'journalctl -b -u provision-disks.service | grep -q "VG other"'
check "journal says nothing was touched" sh -c 'journalctl -b -u provision-disks.service | grep -q "refusing to touch any disk"'
'''

BOOT3 = METRICS_SH + r'''
check "journal names the bad value" sh -c 'journalctl -b -u provision-disks.service | grep -q "provision_disks=\"maybe\""'
'''


def metrics(exit_code: int, mode: str):
    """The unit's disks file (boot 1: read before the check script runs the agent by hand):
    failed with this exit code and plan mode, nothing done, no success this boot."""
    return metrics_verify(
        *stage_metrics("disks", exit_code, False),
        *[("disks", "provision_disks_mode", {"mode": m}, 1.0 if m == mode else 0.0)
          for m in ("mount-only", "provision", "refused")],
        *[("disks", f"provision_disks_steps_{s}", {}, 0.0)
          for s in ("done", "already_done", "destructive")],
    )


u2, u3 = Unchanged(), Unchanged()
SCENARIO = Scenario(
    name="disks-refuse",
    doc="foreign VG on a kernel-named disk, mounted target, ambiguous selector, provision_disks=maybe: all refused, disks byte-identical",
    disks=["nvme:2G", "nvme:2G", "sata:4G"],
    config=CONFIG,
    layout=None,
    files={"/etc/provision/ganeti-node.yaml": LAYOUT, "/etc/provision/selector.yaml": SELECTOR},
    boots=[
        Boot(check=BOOT1, expect_units={"provision-disks.service": 9},
             expect_results=["unmount and deactivate"], verify=metrics(9, "mount-only")),
        Boot(cmdline="homelab.provision_disks=true", check=BOOT2,
             expect_units={"provision-disks.service": 4},
             host_before=u2.record, host_after=u2.verify, verify=metrics(4, "refused")),
        Boot(cmdline="homelab.provision_disks=maybe", check=BOOT3,
             expect_units={"provision-disks.service": 3},
             host_before=u3.record, host_after=u3.verify, verify=metrics(3, "refused")),
    ],
)
