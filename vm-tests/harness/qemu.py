"""One boot: build the overlay, start QEMU, follow the markers, enforce the timeout.

Channels: the guest's driver writes markers to the virtio-serial port org.provision.results
(file results.log in the boot's directory); the serial console (console.log) carries the kernel
and systemd messages and the watchdog/emergency markers. Both files are parsed.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import overlay as ovl
from .scenario import Boot, Scenario

MARKER = re.compile(r"@@PROVISION-([A-Z][A-Z-]*)(?: (.*))?$")
GUEST_TIMEOUT_MARGIN = 30  # the guest watchdog fires this long before the host kills QEMU


_ports_lock = threading.Lock()
_ports_given: set = set()


def free_port() -> int:
    """A free loopback port for hostfwd, never the same one twice in this process (-j N)."""
    with _ports_lock:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port


# --- the host's HTTP server (key tarballs, host-step handshakes) -----------------------------

class HostServer:
    """Serves Scenario.http_files at http://10.0.2.2:<port>/<path> (the host's loopback as the
    guest sees it) and the host-step answers at /_harness/step/<name>. A file value may be bytes,
    text, or fn(n) -> (status, bytes) with n the 1-based count of requests for that path (to
    script outages). Every request is logged in .requests as (method, path, status)."""

    def __init__(self, files: dict):
        self.files = dict(files)
        self.counts: dict = {}
        self.requests: list = []
        self.steps: dict = {}  # name -> result json bytes once the host step finished
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path = self.path.split("?", 1)[0].lstrip("/")
                status, body = srv.answer(path)
                srv.requests.append(("GET", path, status))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = f"http://10.0.2.2:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path: str):
        if path.startswith("_harness/step/"):
            r = self.steps.get(path.rsplit("/", 1)[1])
            return (200, r) if r is not None else (404, b"pending")
        self.counts[path] = n = self.counts.get(path, 0) + 1
        v = self.files.get(path)
        if v is None:
            return 404, b"not found"
        if callable(v):
            return v(n)
        return 200, v.encode() if isinstance(v, str) else v

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- results ----------------------------------------------------------------------------------

@dataclass
class BootResult:
    index: int
    ok: bool = False
    reason: str = ""
    seconds: float = 0.0
    guest_uptime_at_check: float = 0.0
    markers: list = field(default_factory=list)  # (kind, payload)
    units: dict = field(default_factory=dict)
    results: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    logs: list = field(default_factory=list)  # (title, [lines])
    done: dict = None
    emergency: bool = False
    guest_timeout: bool = False
    qemu_rc: int = None
    host_cut: float = None  # kill_after: seconds after the disks unit started when QEMU was killed
    cut_during: str = None  # kill_after: the agent's last journal line before the kill
    console_tail: str = ""
    dir: Path = None

    def to_json(self) -> dict:
        return {"boot": self.index, "ok": self.ok, "reason": self.reason,
                "seconds": round(self.seconds, 1), "units": self.units, "results": self.results,
                "state": self.data, "done": self.done, "emergency": self.emergency,
                "guest_timeout": self.guest_timeout, "qemu_exit": self.qemu_rc,
                "host_cut": self.host_cut, "cut_during": self.cut_during,
                "cut": next((o for k, o in self.markers if k == "CUT"), None),
                "logs": [{"title": t, "lines": ls} for t, ls in self.logs]}


def parse_markers(text: str, res: BootResult) -> None:
    log_title, log_lines = None, []
    for raw in text.splitlines():
        m = MARKER.search(raw)
        if log_title is not None and not (m and m.group(1) == "LOG-END"):
            log_lines.append(raw)
            continue
        if not m:
            continue
        kind, payload = m.group(1), m.group(2)
        try:
            obj = json.loads(payload) if payload else None
        except ValueError:
            obj = {"unparsed": payload}
        res.markers.append((kind, obj))
        if kind == "UNIT" and isinstance(obj, dict):
            res.units[obj.get("unit")] = obj
        elif kind == "RESULT":
            res.results.append(obj)
        elif kind == "DATA" and isinstance(obj, dict):
            res.data[obj.get("key")] = obj.get("value")
        elif kind == "BOOT" and isinstance(obj, dict):
            res.guest_uptime_at_check = float(obj.get("uptime", 0))
        elif kind == "DONE":
            res.done = obj or {}
        elif kind == "EMERGENCY":
            res.emergency = True
        elif kind == "GUEST-TIMEOUT":
            res.guest_timeout = True
        elif kind == "LOG-BEGIN":
            log_title, log_lines = (obj or {}).get("title", "log"), []
        elif kind == "LOG-END":
            res.logs.append((log_title, log_lines))
            log_title = None
    if log_title is not None:
        res.logs.append((log_title + " (cut off)", log_lines))


class BootContext:
    """What a host step gets: .ssh_port (host port forwarded to the guest's :22), .server
    (HostServer: .requests, .files, .url), .dir (this boot's directory), .scenario, .boot,
    .index (1-based) and ssh(cmd…) → CompletedProcess using .ssh_key if a scenario set one."""

    def __init__(self, scenario, boot, index, ssh_port, server, bootdir):
        self.scenario, self.boot, self.index = scenario, boot, index
        self.ssh_port, self.server, self.dir = ssh_port, server, bootdir
        self.ssh_key = None

    def ssh(self, *cmd, timeout=60):
        args = ["ssh", "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]
        if self.ssh_key:
            args += ["-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes"]
        return subprocess.run(args + ["root@127.0.0.1", *cmd], capture_output=True, text=True,
                              timeout=timeout)


# --- one boot -----------------------------------------------------------------------------------

def qemu_disk_args(scenario: Scenario, order: list, images: list) -> list:
    args, ide_slot, have_scsi = [], 0, False
    serials = scenario.serials()
    for slot, i in enumerate(order):
        d, img, serial = scenario.disks[i], images[i], serials[i]
        drv = f"disk{i}"
        args += ["-drive", f"if=none,id={drv},file={img},format={d.format},cache=unsafe,"
                           f"discard=unmap,aio=threads"]
        rot = d.rotational if d.rotational is not None else d.kind in ("sata", "scsi")
        if d.kind == "nvme":
            args += ["-device", f"nvme,drive={drv},serial={serial}"]
        elif d.kind == "sata":
            if ide_slot >= 4:
                raise ValueError("at most 4 sata (IDE) disks; use scsi for more")
            args += ["-device", f"ide-hd,drive={drv},bus=ide.{ide_slot // 2},unit={ide_slot % 2},"
                                f"serial={serial},rotation_rate={7200 if rot else 1}"]
            ide_slot += 1
        elif d.kind == "virtio":
            args += ["-device", f"virtio-blk-pci,drive={drv},serial={serial}"]
        elif d.kind == "scsi":
            if not have_scsi:
                args += ["-device", "virtio-scsi-pci,id=scsi0"]
                have_scsi = True
            args += ["-device", f"scsi-hd,drive={drv},bus=scsi0.0,serial={serial},"
                                f"rotation_rate={7200 if rot else 1}"]
    return args


def create_images(scenario: Scenario, workdir: Path) -> list:
    images = []
    for i, d in enumerate(scenario.disks):
        img = workdir / f"disk{i}-{d.kind}.{d.format}"
        if d.format == "qcow2":
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), str(d.size_bytes)],
                           check=True)
        else:
            with open(img, "wb") as f:
                f.truncate(d.size_bytes)
        images.append(img)
    return images


def build_overlay(scenario: Scenario, boot: Boot, index: int, binary: Path, env: dict) -> ovl.Overlay:
    ov = ovl.Overlay()
    ov.file("usr/bin/provision", binary.read_bytes(), 0o755)
    if scenario.install_units:
        for name, text in ovl.unit_files().items():
            ov.enable(name, text)
    config = scenario.boot_value(boot, "config")
    layout = scenario.boot_value(boot, "layout")
    if config is not None:
        ov.file("etc/provision/config.yaml", config)
    if layout is not None:
        ov.file("etc/provision/layout.yaml", layout)
    ov.file("etc/machine-id", env["PT_MACHINE_ID"] + "\n", 0o444)
    for files in (scenario.files, boot.files):
        for path, v in files.items():
            content, mode = ovl.guest_file_content(v)
            if isinstance(content, str):
                content = _subst(content, env)
            ov.file(path, content, mode)
    ovl.add_guest_harness(ov, env, _subst(boot.check, env), boot.observe)
    dropin = "etc/systemd/system/provision-disks.service.d/zz-provision-test-cut.conf"
    if boot.crash:
        q = boot.crash.replace("\\", "\\\\").replace('"', '\\"')
        ov.file(dropin, "[Service]\nExecStart=\n"
                        f'ExecStart=/usr/lib/provision-test/crash-run "{q}"\n'
                        "ExecStopPost=/usr/lib/provision-test/power-cut\n")
    elif boot.kill_after is not None:
        # The journal goes to the console too, so the host knows where its cut landed.
        ov.file("etc/systemd/journald.conf.d/zz-provision-test-cut.conf",
                "[Journal]\nForwardToConsole=yes\nTTYPath=/dev/ttyS0\nMaxLevelConsole=info\n")
        ov.file(dropin, "[Service]\nExecStartPre=/bin/sh -c 'echo @@PROVISION-ARM >/dev/ttyS0'\n")
    return ov


def armed_by(boot: Boot) -> str:
    """What a kill_after boot counts its seconds from, in words."""
    if boot.kill_from is None:
        return "the disks unit started (ARM marker)"
    return f"the agent's journal line with {boot.kill_from!r}"


def _subst(text: str, env: dict) -> str:
    """{http} → http://10.0.2.2:PORT, {http_port}, {boot}: the only placeholders (no
    str.format, so YAML/shell braces stay as they are)."""
    return (text.replace("{http}", env["PT_HTTP"]).replace("{http_port}", env["PT_HTTP_PORT"])
            .replace("{boot}", str(env["PT_BOOT"])))


def run_boot(scenario: Scenario, boot: Boot, index: int, *, base, binary: Path, accel: list,
             images: list, workdir: Path, server: HostServer, machine_id: str,
             verbose: bool = False) -> BootResult:
    bootdir = workdir / f"boot{index}"
    bootdir.mkdir(parents=True, exist_ok=True)
    res = BootResult(index=index, dir=bootdir)
    timeout = boot.timeout
    env = {"PT_BOOT": index, "PT_SCENARIO": scenario.name, "PT_HTTP": server.url,
           "PT_HTTP_PORT": str(server.port), "PT_TIMEOUT": int(max(30, timeout - GUEST_TIMEOUT_MARGIN)),
           "PT_MACHINE_ID": machine_id}
    ov = build_overlay(scenario, boot, index, binary, env)
    initrd = bootdir / "initrd.img"
    ovl.write_initrd(base.initrd, ov, initrd)

    ssh_port = free_port()
    console, results = bootdir / "console.log", bootdir / "results.log"
    for f in (console, results):
        f.write_bytes(b"")
    cmdline = " ".join(x for x in [
        "console=ttyS0 quiet rdinit=/lib/systemd/systemd panic=-1 mitigations=off",
        "systemd.show_status=auto random.trust_cpu=on", f"provision_test.boot={index}",
        _subst(boot.cmdline, env)] if x)
    (bootdir / "cmdline").write_text(cmdline + "\n")
    order = boot.disks if boot.disks is not None else list(range(len(scenario.disks)))
    args = ["qemu-system-x86_64", *accel, "-machine", "pc", "-smp", "1",
            "-m", str(scenario.memory_mb), "-nodefaults", "-no-reboot", "-display", "none",
            "-kernel", str(base.kernel), "-initrd", str(initrd), "-append", cmdline,
            "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
            "-device", "virtio-serial-pci,id=vser",
            "-chardev", f"file,id=res,path={results}",
            "-device", "virtserialport,bus=vser.0,chardev=res,name=org.provision.results",
            "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
            "-device", "virtio-rng-pci",
            *qemu_disk_args(scenario, order, images)]
    (bootdir / "qemu-args.json").write_text(json.dumps(args, indent=1))
    ctx = BootContext(scenario, boot, index, ssh_port, server, bootdir)

    t0 = time.monotonic()
    qerr = open(bootdir / "qemu.stderr", "wb")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=qerr, stderr=qerr)
    steps_started: set = set()
    killed = False
    armed_at = None  # kill_after: when the host saw the unit start (or the kill_from line)
    arm = re.compile(rb"@@PROVISION-ARM" if boot.kill_from is None
                     else rb"provision\[\d+\]: [^\n]*" + re.escape(boot.kill_from.encode()))
    try:
        while True:
            try:
                proc.wait(timeout=0.2 if boot.kill_after is not None else 0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            if boot.kill_after is not None:
                if armed_at is None and arm.search(console.read_bytes()):
                    armed_at = time.monotonic()
                if armed_at is not None and time.monotonic() - armed_at >= boot.kill_after:
                    proc.kill()  # the power cut: SIGKILL, QEMU flushes nothing more
                    proc.wait()
                    res.host_cut = round(time.monotonic() - armed_at, 2)
                    break
            if boot.host_steps:
                for name in _pending_steps(results, steps_started):
                    steps_started.add(name)
                    threading.Thread(target=_run_step, args=(boot, name, ctx, server),
                                     daemon=True).start()
            if time.monotonic() - t0 > timeout:
                killed = True
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        qerr.close()
    res.seconds = time.monotonic() - t0
    res.qemu_rc = proc.returncode
    initrd.unlink(missing_ok=True)

    ctext = console.read_text(errors="replace")
    rtext = results.read_text(errors="replace")
    parse_markers(rtext, res)
    parse_markers(ctext, res)
    for name in steps_started:  # host-step verdicts are results too
        r = server.steps.get(name)
        if r is not None:
            res.results.append(json.loads(r))
    if boot.verify is not None and res.done is not None:  # so are the host's checks of DATA
        try:
            res.results += boot.verify(res.data)
        except Exception as e:  # a broken checker fails the boot, it does not crash the run
            res.results.append({"name": "host: verify", "ok": False,
                                "detail": f"{type(e).__name__}: {e}"})
    res.console_tail = "\n".join(ctext.splitlines()[-40:])
    if res.host_cut is not None:  # the agent's last journal line before the cut
        lines = [ln for ln in ctext.splitlines() if "provision[" in ln]
        res.cut_during = lines[-1].split("]: ", 1)[-1].strip() if lines else ""
    qstderr = (bootdir / "qemu.stderr").read_text(errors="replace").strip()

    if res.host_cut is not None:
        if res.done is not None or any(k == "BOOT" for k, _ in res.markers):
            res.reason = (f"boot {index}: the guest finished booting before the host's power cut "
                          f"({boot.kill_after} s after {armed_by(boot)}): make kill_after shorter")
    elif boot.kill_after is not None and not killed and res.qemu_rc is not None:
        res.reason = (f"boot {index}: the host never saw {armed_by(boot)}, "
                      f"so it never cut the power")
    elif killed:
        res.reason = (f"boot {index}: timed out after {timeout:.0f} s"
                      + (" (the guest watchdog fired: see the logs)" if res.guest_timeout else ""))
    elif res.qemu_rc != 0:
        res.reason = f"boot {index}: qemu exited {res.qemu_rc}: {qstderr[-300:]}"
    else:
        res.reason = judge(boot, res, index)
    res.ok = not res.reason
    return res


def _pending_steps(results: Path, started: set) -> list:
    out = []
    for line in results.read_text(errors="replace").splitlines():
        m = MARKER.search(line)
        if m and m.group(1) == "HOST-STEP":
            try:
                name = json.loads(m.group(2))["name"]
            except (ValueError, KeyError, TypeError):
                continue
            if name not in started and name not in out:
                out.append(name)
    return out


def _run_step(boot: Boot, name: str, ctx: BootContext, server: HostServer) -> None:
    fn = boot.host_steps.get(name)
    try:
        if fn is None:
            ok, detail = False, f"no host step named {name!r} in this boot"
        else:
            ok, detail = fn(ctx)
    except Exception as e:  # a failing step is a failed result, not a harness crash
        ok, detail = False, f"{type(e).__name__}: {e}"
    server.steps[name] = json.dumps({"name": f"host: {name}", "ok": bool(ok),
                                     "detail": str(detail)[-2000:]}).encode()


def judge(boot: Boot, res: BootResult, index: int) -> str:
    """'' when the boot met its expectations, else the first reason it did not."""
    p = f"boot {index}"
    if boot.crash:
        cuts = [o for k, o in res.markers if k == "CUT" and isinstance(o, dict)]
        if not cuts:
            return f"{p}: expected a power cut at {boot.crash!r}, the guest never cut (no CUT marker)"
        c = cuts[0]
        if c.get("exit_status") != "ABRT":
            return (f"{p}: the power was cut but the agent was not aborted at {boot.crash!r} "
                    f"(exit {c.get('exit_code')}/{c.get('exit_status')}): the failpoint did not fire")
        if res.done is not None:
            return f"{p}: the guest reported DONE after its power cut"
        return ""
    if res.emergency and not boot.expect_emergency:
        return f"{p}: the guest went into emergency mode"
    if boot.expect_emergency:
        return "" if res.emergency else f"{p}: expected emergency mode, the guest did not enter it"
    if res.guest_timeout:
        return (f"{p}: the boot did not finish within {boot.timeout - GUEST_TIMEOUT_MARGIN:.0f} s "
                f"(guest watchdog; its journal dump follows)")
    if not any(k == "BOOT" for k, _ in res.markers):
        return f"{p}: the guest never started its checks (no BOOT marker)"
    bad = [r for r in res.results if isinstance(r, dict) and not r.get("ok")]
    if bad:
        return f"{p}: " + "; ".join(f"{r.get('name')}: {r.get('detail', '')}"[:300] for r in bad)
    names = {r.get("name") for r in res.results if isinstance(r, dict) and r.get("ok")}
    missing = [n for n in boot.expect_results if n not in names]
    if missing:
        return f"{p}: expected results not reported: {', '.join(missing)}"
    if res.done is None:
        if not boot.expect_done:
            return ""  # crashed on purpose after its checks; units are not judged
        return f"{p}: the guest powered off without reporting DONE"
    if not boot.expect_done:
        return f"{p}: expected the guest to go down before DONE (crash_now), it reported DONE"
    for unit, st in res.units.items():
        want = boot.expect_units.get(unit, "success")
        got = _unit_outcome(st)
        if isinstance(want, (list, tuple)):  # any of these outcomes or exit codes
            if got not in want and st.get("ExecMainStatus") not in want:
                return f"{p}: {unit} is {got} (exit {st.get('ExecMainStatus')}), expected one of {list(want)}"
        elif isinstance(want, int):
            if st.get("ExecMainStatus") != want:
                return f"{p}: {unit} exited {st.get('ExecMainStatus')}, expected {want}"
        elif got != want:
            return f"{p}: {unit} is {got} ({st.get('ActiveState')}/{st.get('Result')}, " \
                   f"exit {st.get('ExecMainStatus')}), expected {want}"
    for unit in boot.expect_units:
        if unit not in res.units:
            return f"{p}: {unit} was not reported by the guest (not installed?)"
    return ""


def _unit_outcome(st: dict) -> str:
    if st.get("LoadState") != "loaded":
        return st.get("LoadState", "unknown")
    if st.get("ActiveState") == "failed" or st.get("Result") not in (None, "success"):
        return "failed"
    if st.get("ActiveState") == "active":
        return "success"
    return "inactive"


def new_machine_id() -> str:
    return uuid.uuid4().hex
