"""disks-crash (reliability issue): crash consistency of a full provision of the shipped
layouts/ganeti-node.yaml, cut at many points.

In-guest points (disks-crash and, by hand, disks-crash-all-1..3 via vm-tests/crash-all): one guest
runs, for each point, `provision` with the token tokN and PROVISION_FAILPOINT at that step of its
own plan (the process aborts there: no cleanup, no unwinding), then does what a reboot does
(unmount, swapoff, deactivate the VGs) and checks
  1. without the flag: nothing is created, formatted or wiped (every such tool is shadowed by a
     guard that logs and fails: bind mounts over the real files; a control run with the flag
     shows the guard stopping it), and the run either mounts the complete layout (exit 0) or
     fails naming what is missing (exit 9);
  2. with the same token again: the disks converge to exactly the layout, token recorded.
The first point cuts a first provisioning of blank disks; every later one cuts a reprovisioning
(new token) of the layout the previous point converged to, so wipes of a live layout are cut too.

Power cuts (disks-powercut, and more in disks-powercut-all): real boots where
provision-disks.service is cut either at a failpoint followed by an immediate power-off (sysrq o:
no sync, no unmount), or by the host killing QEMU N seconds into the disks unit (wherever it is:
mid-mkfs, mid-lvcreate). The next boots check the same two properties through the real units."""

from harness import Boot, Scenario

from _common import GANETI_CONFIG, GANETI_DISKS, GANETI_FILES, GUARD, SH

# (when, step description prefix) — every distinct point tried, spread over wipe, partition,
# pvcreate, vgcreate, lvcreate, mkfs, tag-writing, activation and mount.
# The first of each third must be in a blank disk's plan too (each guest starts blank).
POINTS = [
    ("after", "partitioning /dev/sda"),
    ("after", "deactivating VG pool_gnt"),
    ("after", "wiping signatures on /dev/sda2"),
    ("after", "wiping signatures and partition tables on /dev/sda"),
    ("after", "telling the kernel about the new partitions of /dev/sda"),
    ("after", "wiping old signatures inside new partitions /dev/sda1, /dev/sda2"),
    ("after", "wiping signatures and partition tables on /dev/nvme0n1"),
    ("after", "creating PVs"),
    ("after", "creating VG pool_gnt"),
    ("after", "creating VG pool_host"),
    ("after", "creating LV pool_host/home"),
    ("after", "creating LV pool_host/swap"),
    ("after", "creating LV pool_host/var"),
    ("before", "wiping old signatures inside new partitions /dev/sda1, /dev/sda2"),
    ("after", "formatting hdd/ESP"),
    ("before", "formatting pool_host/home"),
    ("after", "formatting pool_host/home"),
    ("after", "making swap on pool_host/swap"),
    ("before", "formatting pool_host/var"),
    ("after", "formatting pool_host/var"),
    ("after", "recording completion on VGs"),
    ("after", "waiting for /dev/mapper/pool_host-var"),
    ("after", "mounting /dev/sda1 on /boot"),
    ("after", "mounting /dev/mapper/pool_host-var on /var"),
    ("after", "enabling swap on pool_host/swap"),
    ("after", "ensuring directory /var/lib/ganeti"),
]
# The CI sample: one point in each phase.
SAMPLE = [
    ("after", "wiping signatures and partition tables on /dev/sda"),
    ("after", "creating PVs"),  # orphan PVs: found by disks-powercut
    ("after", "creating LV pool_host/swap"),
    ("after", "formatting pool_host/home"),
    ("after", "recording completion on VGs"),
    ("after", "mounting /dev/mapper/pool_host-var on /var"),
]

LOOP = SH + r'''
# crash_point K WHEN TEXT TOKEN: cut a provision with TOKEN at WHEN:TEXT, then check both properties
crash_point() {
    k=$1 when=$2 text=$3 tok=$4
    cl="homelab.provision_disks=$tok"
    p="point $k ($when: $text)"
    reset_state  # the layout the previous point converged to is live: a reboot first
    if ! n=$(step_of "$text" --cmdline "$cl"); then
        result "$p: cut" false "no step starting with '$text' in the plan: $(provision --dry-run --cmdline "$cl" disks 2>&1 | grep -E '^ *[0-9]+\. |REFUSED|^  [a-z]' | head -n 50)"
        return
    fi
    fp=$n; [ "$when" = after ] && fp=$n+
    PROVISION_FAILPOINT=$fp provision --cmdline "$cl" disks >/tmp/cut.out 2>&1; rc=$?
    if [ "$rc" = 134 ] && grep -q "PROVISION_FAILPOINT=$fp: aborting" /tmp/cut.out; then
        result "$p: cut" true "aborted at step $fp (PROVISION_FAILPOINT=$fp)"
    else
        result "$p: cut" false "exit $rc: $(tail -n 20 /tmp/cut.out)"
    fi
    reset_state

    rm -f /run/provision-test-guard.log
    @GUARD@ on
    provision --cmdline "" disks >/tmp/noflag.out 2>&1; rc=$?
    @GUARD@ off
    g=$(guard_log)
    if [ -n "$g" ]; then
        result "$p: without the flag nothing is formatted" false "the guard stopped: $g"
    elif [ "$rc" = 0 ] && v=$(verify_layout); then
        result "$p: without the flag nothing is formatted" true "exit 0: the complete layout mounted"
    elif [ "$rc" = 9 ] && grep -Eq "mount-only: |where the layout expects" /tmp/noflag.out; then
        result "$p: without the flag nothing is formatted" true "exit 9: $(grep -E 'error:' /tmp/noflag.out | tail -n 1)"
    else
        result "$p: without the flag nothing is formatted" false "exit $rc: $(tail -n 20 /tmp/noflag.out)"
    fi
    reset_state

    provision --cmdline "$cl" disks >/tmp/conv.out 2>&1; rc=$?
    if [ "$rc" != 0 ]; then
        result "$p: the same token converges" false "exit $rc: $(tail -n 20 /tmp/conv.out)"
    elif v=$(verify_layout "$tok"); then
        result "$p: the same token converges" true "$(grep -o 'mode="[a-z-]*"' /tmp/conv.out | head -n 1)"
    else
        result "$p: the same token converges" false "$v"
    fi
}

# The guard's control: with it on, a provisioning run of the blank disks is stopped at its first
# wipe and the log says so (an empty log after a no-flag run then means something).
rm -f /run/provision-test-guard.log
@GUARD@ on
provision --cmdline "homelab.provision_disks=true" disks >/tmp/guarded.out 2>&1
@GUARD@ off
guard_stopped_it() { grep -q "^wipefs -a" /run/provision-test-guard.log && guard_was_on; }
check "guard control: it stops a provisioning run" guard_stopped_it
'''.replace("@GUARD@", GUARD)


def loop_check(points, first: int = 1) -> str:
    lines = [LOOP]
    for k, (when, text) in enumerate(points, first):
        lines.append(f"crash_point {k} {when} '{text}' tok{k}\n")
    return "".join(lines)


def crash_scenario(name: str, points, doc: str, in_suite: bool) -> Scenario:
    # Boot 1 carries no flag: blank disks, so its disks unit fails (exit 9: no VG). The first
    # point cuts the first provisioning of the blank disks, the others reprovisionings.
    return Scenario(
        name=name, doc=doc, in_suite=in_suite,
        disks=GANETI_DISKS, config=GANETI_CONFIG, layout=None,
        files=GANETI_FILES,
        # A watchdog, not a speed test: a point took up to ~90 s on a host running other builds.
        boots=[Boot(check=loop_check(points), timeout=60 + 120 * len(points),
                    expect_units={"provision-disks.service": 9},
                    expect_results=["guard control: it stops a provisioning run",
                                    f"point {len(points)} ({points[-1][0]}: {points[-1][1]}): "
                                    "the same token converges"])],
    )


def thirds(xs):
    n = (len(xs) + 2) // 3
    return [xs[i:i + n] for i in range(0, len(xs), n)]


SCENARIOS = [crash_scenario(
    "disks-crash", SAMPLE, in_suite=True,
    doc=f"provision cut at {len(SAMPLE)} steps (CI sample): no flag never formats; same token converges")]
SCENARIOS += [crash_scenario(
    f"disks-crash-all-{i}", part, in_suite=False,
    doc=f"crash points {part[0][1]!r}…{part[-1][1]!r} ({len(part)} of {len(POINTS)}; vm-tests/crash-all)")
    for i, part in enumerate(thirds(POINTS), 1)]
