"""The per-boot overlay: a small uncompressed newc cpio appended to the cached base initramfs.

The kernel unpacks both archives into the same rootfs, later entries replacing earlier ones.
Only named paths go in (never ".", which would make / mode 0700, see VM-NOTES), directories
with the modes the base has.
"""

from __future__ import annotations

import configparser
import shutil
import stat
from pathlib import Path

from .image import HERE, REPO

GUEST = HERE / "guest"
UNITS = REPO / "units"

# Directories whose mode is not 0755 in the base, should an overlay file go below them.
_DIR_MODES = {"root": 0o700, "tmp": 0o1777, "var/tmp": 0o1777, "etc/ssh/sshd_config.d": 0o755}


class Overlay:
    def __init__(self):
        self.entries: dict = {}  # path -> (mode, data|None, symlink target|None)

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = (stat.S_IFDIR | _DIR_MODES.get(d, 0o755), None, None)

    def file(self, path: str, data, mode: int = 0o644) -> None:
        path = path.strip("/")
        if isinstance(data, str):
            data = data.encode()
        self._parents(path)
        self.entries[path] = (stat.S_IFREG | mode, data, None)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (stat.S_IFLNK | 0o777, None, target)

    def enable(self, unit_name: str, text: str) -> None:
        """Install /etc/systemd/system/<unit> and the links its [Install] section asks for."""
        self.file(f"etc/systemd/system/{unit_name}", text)
        cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
        cp.optionxform = str
        cp.read_string(text)
        if not cp.has_section("Install"):
            return
        for key, suffix in (("WantedBy", "wants"), ("RequiredBy", "requires")):
            for target in cp.get("Install", key, fallback="").split():
                self.symlink(f"etc/systemd/system/{target}.{suffix}/{unit_name}",
                             f"/etc/systemd/system/{unit_name}")

    def cpio(self) -> bytes:
        out = bytearray()
        ino = 1000
        for path in sorted(self.entries):
            mode, data, target = self.entries[path]
            if target is not None:
                data = target.encode()
            data = data or b""
            ino += 1
            name = path.encode() + b"\0"
            nlink = 2 if stat.S_ISDIR(mode) else 1
            hdr = "070701" + "".join(f"{v:08X}" for v in (
                ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name), 0))
            out += hdr.encode() + name
            out += b"\0" * (-len(out) % 4)
            out += data
            out += b"\0" * (-len(out) % 4)
        name = b"TRAILER!!!\0"
        out += ("070701" + "".join(f"{v:08X}" for v in (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                                         len(name), 0))).encode() + name
        out += b"\0" * (-len(out) % 4)
        return bytes(out)


def unit_files() -> dict:
    """units/*.service|*.target of this checkout."""
    return {p.name: p.read_text() for p in sorted(UNITS.glob("provision-*"))
            if p.suffix in (".service", ".target", ".socket", ".timer", ".path")}


def add_guest_harness(ov: Overlay, env: dict, check: str, observe: bool) -> None:
    for name in ("lib.sh", "run", "observe", "watchdog", "emergency", "crash-run", "power-cut", "guard"):
        ov.file(f"usr/lib/provision-test/{name}", (GUEST / name).read_bytes(), 0o755)
    if check.strip():
        ov.file("usr/lib/provision-test/check",
                "#!/bin/sh\n. /usr/lib/provision-test/lib.sh\n" + check, 0o755)
    if observe:
        ov.file("usr/lib/provision-test/observe-enabled", "")
    ov.file("etc/provision-test/env",
            "".join(f"{k}={_sh_quote(str(v))}\n" for k, v in env.items()))
    ov.file("etc/systemd/system/provision-test.service",
            (GUEST / "provision-test.service").read_text())
    ov.symlink("etc/systemd/system/multi-user.target.wants/provision-test.service",
               "/etc/systemd/system/provision-test.service")
    ov.file("etc/systemd/system/provision-test-watchdog.service",
            (GUEST / "provision-test-watchdog.service").read_text())
    ov.symlink("etc/systemd/system/sysinit.target.wants/provision-test-watchdog.service",
               "/etc/systemd/system/provision-test-watchdog.service")
    for u in ("emergency", "rescue"):
        ov.file(f"etc/systemd/system/{u}.service.d/provision-test.conf",
                f"[Service]\nExecStart=\nExecStart=/usr/lib/provision-test/emergency {u}\n")


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def guest_file_content(v):
    """files values: text, bytes, or (content, mode)."""
    if isinstance(v, tuple):
        return v[0], v[1]
    return v, 0o644


def write_initrd(base_initrd: Path, ov: Overlay, out: Path) -> None:
    """base (already padded to 512 bytes) + overlay cpio, as one file for -initrd."""
    size = base_initrd.stat().st_size
    assert size % 4 == 0, "base initramfs not padded to 4 bytes"
    shutil.copyfile(base_initrd, out)
    with open(out, "ab") as f:
        f.write(ov.cpio())
