"""disks-powercut (reliability issue): real power cuts during provision-disks.service on the
shipped ganeti-node layout, then real boots. Each cut is followed by
  - a boot without the flag, with every tool that could create, format or wipe shadowed around
    the unit by a guard that logs and fails (vm-tests/guest/guard): the guard was on, its log
    stays empty, and the unit either
    mounts the complete layout or fails (exit 9) naming what is missing;
  - a boot with the same token: converges to exactly the layout, token recorded.
A cut is either a failpoint followed by an immediate power-off in the unit's ExecStopPost (sysrq
o: the guest's page cache is lost, nothing is unmounted) or the host killing QEMU N seconds after
the unit started or after a given step, wherever the agent is (mid-mkfs, mid-lvcreate, mid-wipe).
disks-powercut (CI) cuts a first provisioning after the home mkfs, then a reprovisioning by a QEMU
kill; disks-powercut-all (by hand, vm-tests/crash-all) does more of both."""

from harness import Boot, Scenario

from _common import GANETI_CONFIG, GANETI_DISKS, GANETI_FILES, GUARD_UNIT, SH

NOFLAG = SH + r'''
check "the guard was on during the disks unit" guard_was_on
check_eq "guard: nothing created, formatted or wiped" "$(guard_log)" ""
rc=$(systemctl show -p ExecMainStatus --value provision-disks.service)
if [ "$rc" = 0 ]; then
    check "complete layout mounted" verify_layout
else
    check_eq "the unit failed as mount-only does (exit 9)" "$rc" 9
    check "the journal names what is missing" sh -c 'journalctl -b -u provision-disks.service | grep -Eq "mount-only: |where the layout expects"'
fi
data_text "disks unit" sh -c 'journalctl -b -u provision-disks.service -o cat | tail -n 3'
'''


def converge(tok: str) -> str:
    return SH + f'''
check "token {tok}: converged to the layout" verify_layout {tok}
check "write canaries" sh -c 'echo {tok} >/var/canary && echo {tok} >/home/canary && sync'
'''


def triple(cut, tok: str) -> list:
    kind, arg = cut
    b = (Boot(cmdline=f"homelab.provision_disks={tok}", crash=arg, timeout=300) if kind == "crash"
         else Boot(cmdline=f"homelab.provision_disks={tok}", kill_from=arg[0], kill_after=arg[1],
                   timeout=300))
    return [b,
            Boot(check=NOFLAG, files=GUARD_UNIT, expect_units={"provision-disks.service": ["success", 9]},
                 expect_results=["the guard was on during the disks unit",
                                           "guard: nothing created, formatted or wiped"]),
            Boot(cmdline=f"homelab.provision_disks={tok}", check=converge(tok), timeout=420,
                 expect_results=[f"token {tok}: converged to the layout"])]


def scenario(name, cuts, doc, in_suite):
    boots = []
    for i, c in enumerate(cuts, 1):
        boots += triple(c, f"tok{i}")
    return Scenario(name=name, doc=doc, in_suite=in_suite, disks=GANETI_DISKS,
                    config=GANETI_CONFIG, layout=None, files=GANETI_FILES,
                    boots=boots)


# Host kills are counted from the agent's journal line for a finished step, so that they land in
# the same phase on an idle and on a busy host (see vm-tests/README.md, kill_from). Where they
# landed on 2026-11-30 (idle host), by the agent's last line: as the comments say.
SAMPLE = [("crash", "after:formatting pool_host/home"),
          ("kill", ("creating LV pool_host/var", 1.0))]  # mid-mkfs of a reprovisioning
ALL = [
    ("crash", "after:creating LV pool_host/swap"),
    ("kill", ("partitioning /dev/sda", 0.1)),  # re-read, new-partition or NVMe wipe
    ("crash", "after:wiping signatures and partition tables on /dev/nvme0n1"),
    ("kill", ("creating PVs", 0.3)),  # a vgcreate
    ("crash", "before:recording completion on VGs"),
    ("kill", ("creating LV pool_host/home", 0.5)),  # the next lvcreate
    ("crash", "after:mounting /dev/mapper/pool_host-home on /home"),
    ("kill", ("formatting pool_host/home", 0.6)),  # mkswap, mkfs of var or the tag
]

SCENARIOS = [
    scenario("disks-powercut", SAMPLE, in_suite=True,
             doc="power cut after the home mkfs, then a QEMU kill mid-reprovision: no flag never formats; same token converges"),
    scenario("disks-powercut-all", ALL, in_suite=False,
             doc=f"{len(ALL)} more power cuts (failpoint + sysrq, QEMU kills in four phases; vm-tests/crash-all)"),
]
