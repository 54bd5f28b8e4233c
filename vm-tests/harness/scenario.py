"""Declarative scenario definitions.

A scenario is a set of disks and a list of boots. Each boot is a fresh QEMU run on the same
disk images with its own kernel command line, config/layout, guest check script and
expectations. See vm-tests/README.md for the full description and an example.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

# The config written to /etc/provision/config.yaml when a scenario gives none: no stage has
# anything to do, so every unit must succeed.
EMPTY_CONFIG = "# vm-tests: no stage configured\n{}\n"

INHERIT = object()  # Boot fields that default to the scenario's value

_SIZE = re.compile(r"^(\d+)([KMGT]?)$", re.I)
KINDS = ("nvme", "sata", "virtio", "scsi")


@dataclass
class Disk:
    """A disk attached to every boot of a scenario.

    kind: nvme (by-id nvme-QEMU_NVMe_Ctrl_<serial>), sata (IDE on ata_piix: /dev/sdX,
    by-id ata-QEMU_HARDDISK_<serial>), virtio (virtio-blk: /dev/vdX, by-id virtio-<serial>) or
    scsi (virtio-scsi: /dev/sdX, by-id scsi-0QEMU_QEMU_HARDDISK_<serial>).
    serial: default <KIND><n>, n counting disks of that kind from 0 (NVME0, SATA0, …).
    rotational: sata/scsi default True (rotation_rate=7200), nvme/virtio are never rotational.
    """

    kind: str
    size: str = "4G"
    serial: Optional[str] = None
    rotational: Optional[bool] = None
    format: str = "raw"  # or qcow2

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"disk kind {self.kind!r}: want one of {', '.join(KINDS)}")
        if not _SIZE.match(self.size):
            raise ValueError(f"disk size {self.size!r}: want e.g. 512M, 8G")

    @property
    def size_bytes(self) -> int:
        m = _SIZE.match(self.size)
        n, unit = int(m.group(1)), m.group(2).upper()
        return n * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]

    @staticmethod
    def parse(spec: str) -> "Disk":
        """'nvme:8G', 'sata:16G:serial=HDD1', 'scsi:4G:rotational=0', 'virtio:2G:format=qcow2'."""
        parts = spec.strip().split(":")
        kw = {}
        for p in parts[2:]:
            k, _, v = p.partition("=")
            if k == "rotational":
                kw[k] = v not in ("0", "no", "false")
            elif k in ("serial", "format"):
                kw[k] = v
            else:
                raise ValueError(f"disk spec {spec!r}: unknown option {k!r}")
        return Disk(parts[0], parts[1] if len(parts) > 1 else "4G", **kw)


# A host step: called with the running boot's context when the guest says `host_step NAME`;
# returns (ok, detail) or raises. See harness.qemu.BootContext for what ctx offers.
Step = Callable[["object"], "tuple[bool, str]"]


@dataclass
class Boot:
    """One boot (one QEMU run) of a scenario.

    cmdline:  appended to the kernel command line (e.g. "homelab.provision_disks=true").
    check:    the guest-side shell script run after multi-user.target (lib.sh is sourced;
              use check/check_eq/data… from vm-tests/guest/lib.sh).
    config, layout: override the scenario's for this boot (None: no file).
    files:    extra guest files for this boot {path: text|bytes|(content, mode)}.
    disks:    indices into Scenario.disks, in attachment order (default: all, in order); swap
              to change the kernel names, leave one out to pull a disk.
    expect_units: {unit: "success" | "failed" | "inactive" | exit code | [any of these]}. Units
              not named must end "success" (or not be installed).
    expect_results: RESULT names that must be reported ok (all reported ones must be ok anyway).
    expect_emergency: the boot is expected to end in emergency mode.
    expect_done: False for a boot whose check script crashes the guest on purpose.
    host_steps: {name: fn(ctx) -> (ok, detail)} run by the host when the guest asks.
    observe:  also report lsblk/pvs/vgs/lvs/findmnt/swaps/report (as `run probe` does).
    timeout:  seconds for the whole QEMU run (the guest dumps its journal 30 s before).
    host_before: fn(images) run on the host before QEMU starts (images: the disk image Paths,
              in Scenario.disks order) — e.g. record digests.
    host_after: fn(images) -> (ok, detail) run on the host after QEMU exited; not ok fails the
              boot with detail — e.g. "every disk byte-identical".
    crash:    "before:TEXT" | "after:TEXT" — a power-cut boot: provision-disks.service runs its
              command with PROVISION_FAILPOINT at the step of its own plan whose description
              starts with TEXT (vm-tests/guest/crash-run); when the agent aborts there the guest
              powers off at once (sysrq o: no sync, no unmount). The boot passes when the cut
              happened at that failpoint; no check script runs.
    kill_after: a power-cut boot cut by the host: QEMU is killed (SIGKILL) this many seconds
              after provision-disks.service started — or, with kill_from, after the agent's
              journal shows a line containing kill_from (it logs each step when it is done) —
              wherever the agent is at that moment (mid-mkfs, mid-lvcreate…). The boot passes
              when the kill happened before the guest finished booting. Anchoring on a step
              keeps the cut in the same phase whatever the host's load (a few seconds from the
              unit's start land anywhere from the first wipe to after the last mount).
    kill_from: see kill_after.
    verify:   fn(data) -> [{"name", "ok", "detail"}] run on the host after the guest reported
              DONE, with the boot's DATA markers ({key: value}); its results count as the
              guest's own RESULTs (e.g. harness.layoutcheck.compare: the state against a layout).
    """

    cmdline: str = ""
    check: str = ""
    config: object = INHERIT
    layout: object = INHERIT
    files: dict = field(default_factory=dict)
    disks: Optional[list] = None
    expect_units: dict = field(default_factory=dict)
    expect_results: list = field(default_factory=list)
    expect_emergency: bool = False
    expect_done: bool = True
    host_steps: dict = field(default_factory=dict)
    observe: bool = False
    timeout: float = 300.0
    host_before: Optional[Callable] = None
    host_after: Optional[Callable] = None
    crash: Optional[str] = None
    kill_after: Optional[float] = None
    kill_from: Optional[str] = None
    verify: Optional[Callable] = None

    def __post_init__(self):
        if self.crash is not None and not re.match(r"^(before|after):\S", self.crash):
            raise ValueError(f"Boot.crash {self.crash!r}: want 'before:TEXT' or 'after:TEXT'")
        if self.crash is not None and self.kill_after is not None:
            raise ValueError("Boot.crash and Boot.kill_after: one cut per boot")
        if self.kill_from is not None and self.kill_after is None:
            raise ValueError("Boot.kill_from needs kill_after (seconds after that line)")

    @property
    def cut(self) -> bool:
        return self.crash is not None or self.kill_after is not None


@dataclass
class Scenario:
    """A named list of boots over a set of disks. Put one in vm-tests/scenarios/<name>.py as
    SCENARIO = Scenario(…) (or several as SCENARIOS = [...])."""

    name: str
    boots: list
    doc: str = ""
    disks: list = field(default_factory=list)  # Disk or "nvme:8G" specs
    config: Optional[str] = EMPTY_CONFIG  # /etc/provision/config.yaml; None: none written
    layout: Optional[str] = None  # /etc/provision/layout.yaml
    files: dict = field(default_factory=dict)  # extra guest files for every boot
    http_files: dict = field(default_factory=dict)  # served at {http}/<path>: bytes|str|fn(n)
    memory_mb: int = 1024
    install_units: bool = True  # units/ into /etc/systemd/system, enabled
    skip: Optional[str] = None  # reason; the scenario is listed and reported SKIP, not run
    show: list = field(default_factory=list)  # DATA keys printed to stdout after a run (demo)
    in_suite: bool = True  # False: run only when named (vm-tests/run NAME), e.g. the demo
    group: Optional[str] = None  # `vm-tests/run GROUP` runs every scenario of the group

    def __post_init__(self):
        self.disks = [d if isinstance(d, Disk) else Disk.parse(d) for d in self.disks]
        if not self.boots:
            raise ValueError(f"scenario {self.name}: no boots")
        for i, b in enumerate(self.boots):
            if b.disks is not None:
                bad = [x for x in b.disks if not 0 <= x < len(self.disks)]
                if bad:
                    raise ValueError(f"scenario {self.name} boot {i + 1}: no disk {bad}")

    def serials(self) -> list:
        """The serial of each disk (defaults filled in)."""
        counts: dict = {}
        out = []
        for d in self.disks:
            n = counts.get(d.kind, 0)
            counts[d.kind] = n + 1
            out.append(d.serial or f"{d.kind.upper()}{n}")
        return out

    def boot_value(self, boot: Boot, name: str):
        v = getattr(boot, name)
        return getattr(self, name) if v is INHERIT else v


def replace(obj, **kw):
    return dataclasses.replace(obj, **kw)


def repo_file(rel: str) -> str:
    """Text of a file of this checkout, e.g. repo_file("layouts/ganeti-node.yaml")."""
    return (Path(__file__).resolve().parents[2] / rel).read_text()


def image_digest(path) -> str:
    """sha256 over the logical content of a (sparse) disk image: every non-zero 4 KiB block with
    its offset. Two images with the same bytes give the same digest whether a zero block is a
    hole or written zeros; reading only the data extents keeps it fast on big sparse images."""
    h = hashlib.sha256()
    zero = bytes(4096)
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        h.update(str(size).encode())
        off = 0
        while off < size:
            try:
                data = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after off
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            f.seek(data)
            pos = data
            while pos < hole:
                chunk = f.read(min(1 << 20, hole - pos))
                if not chunk:
                    break
                for i in range(0, len(chunk), 4096):
                    blk = chunk[i:i + 4096]
                    if blk != zero[:len(blk)]:
                        h.update((pos + i).to_bytes(8, "little"))
                        h.update(blk)
                pos += len(chunk)
            off = hole
    return h.hexdigest()


class Unchanged:
    """host_before/host_after pair: the boot must leave every disk byte-identical.

        u = Unchanged()
        Boot(..., host_before=u.record, host_after=u.verify)
    """

    def __init__(self):
        self.before = {}

    def record(self, images):
        self.before = {str(p): image_digest(p) for p in images}

    def verify(self, images):
        changed = [os.path.basename(str(p)) for p in images if image_digest(p) != self.before.get(str(p))]
        if changed:
            return False, "disk images changed: " + ", ".join(changed)
        return True, f"{len(images)} disk images byte-identical"

