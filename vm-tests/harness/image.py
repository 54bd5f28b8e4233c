"""The cached base image (kernel + whole-OS lz4 initramfs) and the release binary.

The base lives outside the repository so that it survives fresh clones:
$PROVISION_VM_CACHE (default /var/cache/provision-vm)/base-<key>/{vmlinuz,base.cpio.lz4,info.json}
where <key> hashes the recipe (image/build-base.sh), the package list (image/packages), the
suite, the kernel package and the apt candidate versions of all of them: a Debian point release
or a security update of any listed package rebuilds the image; nothing else does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # vm-tests/
REPO = HERE.parent
RECIPE = HERE / "image" / "build-base.sh"
PACKAGES = HERE / "image" / "packages"
SUITE = os.environ.get("PROVISION_VM_SUITE", "bookworm")


def cache_dir() -> Path:
    d = Path(os.environ.get("PROVISION_VM_CACHE", "/var/cache/provision-vm"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def log(msg: str) -> None:
    print(f"[vm-tests] {msg}", file=sys.stderr, flush=True)


def packages() -> list:
    out = []
    for line in PACKAGES.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def kernel_package() -> str:
    if os.environ.get("PROVISION_VM_KERNEL_PKG"):
        return os.environ["PROVISION_VM_KERNEL_PKG"]
    out = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-") and "cloud-amd64" in line:
            return line.split()[1]
    raise RuntimeError("cannot resolve the cloud kernel package from linux-image-cloud-amd64 "
                       "(apt lists missing? run tools/install-deps)")


def candidate_versions(pkgs: list) -> dict:
    out = subprocess.run(["apt-cache", "policy", *pkgs], capture_output=True, text=True,
                         check=True).stdout
    vers, cur = {}, None
    for line in out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            cur = line[:-1]
        elif cur and line.strip().startswith("Candidate:"):
            vers[cur] = line.split(":", 1)[1].strip()
    return vers


def base_key() -> tuple:
    pkgs = packages()
    kpkg = kernel_package()
    h = hashlib.sha256()
    h.update(RECIPE.read_bytes())
    h.update(PACKAGES.read_bytes())
    h.update(SUITE.encode())
    h.update(json.dumps(candidate_versions(pkgs + [kpkg]), sort_keys=True).encode())
    return h.hexdigest()[:16], kpkg, pkgs


class Base:
    def __init__(self, path: Path):
        self.path = path
        self.kernel = path / "vmlinuz"
        self.initrd = path / "base.cpio.lz4"
        self.info = json.loads((path / "info.json").read_text())


def ensure_base(rebuild: bool = False) -> Base:
    """Return the cached base image, building it (under a lock) when missing."""
    key, kpkg, pkgs = base_key()
    cache = cache_dir()
    target = cache / f"base-{key}"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild and target.exists():
            shutil.rmtree(target)
        if not (target / "info.json").exists():
            tmp = cache / f".build-{key}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            log(f"building the base image {target.name} (kernel {kpkg}, {len(pkgs)} packages); "
                f"cached for later runs")
            t0 = time.monotonic()
            r = subprocess.run(["bash", str(RECIPE), str(tmp), kpkg, SUITE, *pkgs])
            if r.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise RuntimeError(f"building the base image failed (exit {r.returncode})")
            tmp.rename(target)
            log(f"base image built in {time.monotonic() - t0:.0f} s")
            for old in cache.glob("base-*"):  # keep the cache to one image
                if old != target:
                    shutil.rmtree(old, ignore_errors=True)
    return Base(target)


def _newest_source_mtime() -> float:
    newest = 0.0
    for p in [REPO / "Cargo.toml", REPO / "Cargo.lock", REPO / "build.rs"]:
        if p.exists():
            newest = max(newest, p.stat().st_mtime)
    for p in (REPO / "src").rglob("*"):
        newest = max(newest, p.stat().st_mtime)
    return newest


def binary_path() -> Path:
    """Where the release binary is ($PROVISION_BIN, else cargo's target directory)."""
    if os.environ.get("PROVISION_BIN"):
        return Path(os.environ["PROVISION_BIN"])
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target_dir / "x86_64-unknown-linux-gnu" / "release" / "provision"


def existing_binary():
    """The release binary if there is one, without building (scenario generators that ask
    provision about layouts: the runner builds before it loads the scenarios)."""
    b = binary_path()
    return b if b.is_file() else None


def ensure_binary(build: bool = True) -> Path:
    """The static release binary to put into the guest.

    $PROVISION_BIN wins. Otherwise `cargo build --release` runs in the repository (honouring
    CARGO_TARGET_DIR): cargo itself decides whether anything changed, which is also right when a
    shared target directory was last built from another checkout (an mtime comparison would
    not see that). With --no-build, or without cargo, the existing binary is used if it is newer
    than the sources.
    """
    if os.environ.get("PROVISION_BIN"):
        return Path(os.environ["PROVISION_BIN"])
    binary = binary_path()
    if build and shutil.which("cargo"):
        t0 = time.monotonic()
        r = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "provision"],
                           cwd=REPO)
        if r.returncode != 0:
            raise RuntimeError("cargo build --release failed")
        dt = time.monotonic() - t0
        if dt > 5:
            log(f"cargo build --release: {dt:.0f} s")
    if not binary.exists():
        raise RuntimeError(f"{binary}: no release binary (cargo build --release)")
    if binary.stat().st_mtime < _newest_source_mtime():
        log(f"warning: {binary} is older than the sources")
    return binary


# --- acceleration ----------------------------------------------------------------------------

def accel_args(base: Base) -> list:
    """['-accel', 'kvm', '-cpu', 'host'] when a tiny guest boots under KVM within seconds, else
    TCG. VM-NOTES: on these machines /dev/kvm exists but is unusable, so the probe fails and
    is remembered for a day ($PROVISION_VM_ACCEL=tcg|kvm skips it)."""
    tcg = ["-accel", "tcg", "-cpu", "max"]
    kvm = ["-accel", "kvm", "-cpu", "host"]
    forced = os.environ.get("PROVISION_VM_ACCEL")
    if forced:
        return kvm if forced == "kvm" else tcg
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return tcg
    stamp = cache_dir() / "accel-probe.json"
    ident = f"{os.uname().release} {base.info.get('kernel_release')}"
    try:
        saved = json.loads(stamp.read_text())
        if saved["ident"] == ident and time.time() - saved["time"] < 86400:
            return kvm if saved["kvm"] else tcg
    except (OSError, ValueError, KeyError):
        pass
    ok = _probe_kvm(base)
    stamp.write_text(json.dumps({"ident": ident, "time": time.time(), "kvm": ok}))
    log(f"KVM probe: {'usable' if ok else 'not usable, using TCG'}")
    return kvm if ok else tcg


def _probe_kvm(base: Base, seconds: float = 6.0) -> bool:
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        con = Path(d) / "console"
        con.touch()
        p = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults",
             "-no-reboot", "-display", "none", "-kernel", str(base.kernel),
             "-append", "console=ttyS0 panic=-1", "-serial", f"file:{con}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + seconds
        ok = False
        while time.monotonic() < end:
            if b"Linux version" in con.read_bytes():
                ok = True
                break
            if p.poll() is not None:
                break
            time.sleep(0.2)
        if p.poll() is None:
            p.kill()
        p.wait()
        return ok
