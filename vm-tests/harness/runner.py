"""Command line of vm-tests/run (documented there and in vm-tests/README.md)."""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import image, layoutcheck, qemu
from .scenario import Boot, Disk, Scenario

SCENARIOS_DIR = image.HERE / "scenarios"
_print_lock = threading.Lock()


def out_dir() -> Path:
    return Path(os.environ.get("PROVISION_VM_OUT", image.HERE / "out"))


def load_scenarios() -> list:
    if str(SCENARIOS_DIR) not in sys.path:  # scenario files share helpers (_common.py)
        sys.path.insert(0, str(SCENARIOS_DIR))
    found = []
    for path in sorted(SCENARIOS_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"vm_scenario_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        items = getattr(mod, "SCENARIOS", None) or (
            [mod.SCENARIO] if hasattr(mod, "SCENARIO") else [])
        for s in items:
            s.source = path.name
            found.append(s)
    names = [s.name for s in found]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"duplicate scenario names: {', '.join(sorted(dup))}")
    return found


def say(line: str, stream=sys.stdout) -> None:
    with _print_lock:
        print(line, file=stream, flush=True)


def run_scenario(s: Scenario, *, base, binary, accel, keep: bool, verbose: bool):
    """Run every boot of s; returns (ok, reason, seconds, [BootResult])."""
    workdir = out_dir() / s.name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    t0 = time.monotonic()
    server = qemu.HostServer(s.http_files)
    boots = []
    ok, reason = True, ""
    try:
        images = qemu.create_images(s, workdir)
        machine_id = qemu.new_machine_id()
        for i, b in enumerate(s.boots, 1):
            if b.host_before:
                b.host_before(images)
            r = qemu.run_boot(s, b, i, base=base, binary=binary, accel=accel, images=images,
                              workdir=workdir, server=server, machine_id=machine_id,
                              verbose=verbose)
            if r.ok and b.host_after:
                good, detail = b.host_after(images)
                if not good:
                    r.ok, r.reason = False, f"boot {i}: {detail}"
            boots.append(r)
            if verbose:
                say(f"  {s.name} boot {i}: {'ok' if r.ok else 'FAILED'} in {r.seconds:.1f} s "
                    f"(guest ready at {r.guest_uptime_at_check:.1f} s uptime)", sys.stderr)
            if b.kill_after is not None and r.host_cut is not None:
                say(f"  {s.name} boot {i}: QEMU killed {r.host_cut} s after {qemu.armed_by(b)}, "
                    f"the agent's last line: {r.cut_during or '(none yet)'}", sys.stderr)
            if b.crash and r.ok:
                cut = next((o for k, o in r.markers if k == "CUT"), {}) or {}
                if verbose:
                    say(f"  {s.name} boot {i}: power cut at {cut.get('failpoint')}", sys.stderr)
            if not r.ok:
                ok, reason = False, r.reason
                break
    except Exception as e:  # a broken scenario definition fails that scenario only
        ok, reason = False, f"harness error: {type(e).__name__}: {e}"
        (workdir / "harness-error.txt").write_text(traceback.format_exc())
    finally:
        server.close()
    secs = time.monotonic() - t0
    (workdir / "result.json").write_text(json.dumps(
        {"scenario": s.name, "ok": ok, "reason": reason, "seconds": round(secs, 1),
         "boots": [b.to_json() for b in boots]}, indent=1))
    if ok and not keep:
        for img in workdir.glob("disk*"):
            img.unlink()
    return ok, reason, secs, boots


def failure_details(name: str, boots: list) -> str:
    """The guest's own account of a failed boot: logs it dumped, else the console tail."""
    if not boots:
        return ""
    b = boots[-1]
    lines = [f"--- {name} boot {b.index}: details (all files in {b.dir}) ---"]
    for t, ls in b.logs:
        lines.append(f"--- {t} ---")
        lines += ls[-150:]
    if not b.logs and isinstance(b.data.get("journal"), str):  # observed, failed on the host
        lines.append("--- journalctl -b -u provision-* (observed) ---")
        lines += b.data["journal"].splitlines()[-150:]
    elif not b.logs:
        lines.append("--- serial console (last 40 lines) ---")
        lines.append(b.console_tail)
    bad = [r for r in b.results if isinstance(r, dict) and not r.get("ok")]
    for r in bad:
        lines.append(f"--- failed check: {r.get('name')} ---")
        lines.append(str(r.get("detail", "")))
    return "\n".join(lines)


def ensure_setup() -> None:
    """Install what the harness and the release build need if anything is missing
    (tools/install-deps, the one install script of both README commands; a quick no-op when all
    is there), so `vm-tests/run` works on a fresh machine by itself, before it builds."""
    setup = Path(__file__).resolve().parents[2] / "tools" / "install-deps"
    if os.geteuid() != 0:
        return
    r = subprocess.run([str(setup)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"tools/install-deps failed:\n{r.stdout}{r.stderr}")


def show(s: Scenario, boots: list) -> None:
    """Print the DATA items a scenario asks to show (the demo's account of what it did)."""
    for b in boots:
        for key in s.show:
            v = b.data.get(key)
            if v is None:
                continue
            say(f"===== {s.name} boot {b.index}: {key} =====")
            say(v if isinstance(v, str) else json.dumps(v, indent=1))


def select(scenarios: list, names: list) -> tuple:
    """(scenarios, unknown names) for the names given: a scenario's name, a group's name
    (`examples`) or a shell pattern (`example-lvm-*`); in the order given, each once."""
    chosen, unknown = [], []
    for n in names:
        hit = [s for s in scenarios if s.name == n] or [s for s in scenarios if s.group == n] \
            or [s for s in scenarios if fnmatch.fnmatchcase(s.name, n)]
        if not hit:
            unknown.append(n)
        chosen += [s for s in hit if s not in chosen]
    return chosen, unknown


def cmd_run(args) -> int:
    # Before the scenarios are loaded: some make their fixtures at import with host tools
    # (ssh-keygen, age) that the install brings.
    if not args.list:
        ensure_setup()
    # Before the scenarios too: the disko-example generator asks the binary about layouts.
    binary = image.ensure_binary(build=not args.no_build)
    scenarios = load_scenarios()
    if args.list:
        for s in scenarios:
            doc = (s.doc.strip().splitlines() or [""])[0]
            skip = f"  [skip: {s.skip}]" if s.skip else ""
            hand = "" if s.in_suite else "  [by hand]"
            print(f"{s.name:24} {len(s.boots)} boot(s), {len(s.disks)} disk(s)  {doc}{skip}{hand}")
        return 0
    if args.names:
        chosen, unknown = select(scenarios, args.names)
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
            return 2
    else:
        chosen = [s for s in scenarios if s.in_suite]
    base = image.ensure_base(rebuild=args.rebuild_image)
    accel = image.accel_args(base)
    passed = failed = 0

    def one(s):
        nonlocal passed, failed
        if s.skip and s.name not in args.names:  # a skipped one runs only by its own name
            say(f"SKIP {s.name}: {s.skip}")
            return
        ok, reason, secs, boots = run_scenario(s, base=base, binary=binary, accel=accel,
                                               keep=args.keep, verbose=args.verbose)
        if s.show and args.names:  # the demo, run by name: say what it did
            show(s, boots)
        if ok:
            say(f"PASS {s.name} ({secs:.1f} s)")
            passed += 1
        else:
            say(f"FAIL {s.name}: {reason}")
            say(failure_details(s.name, boots), sys.stderr)
            failed += 1

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        list(ex.map(one, chosen))
    say(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def cmd_probe(argv: list) -> int:
    p = argparse.ArgumentParser(
        prog="vm-tests/run probe",
        description="Boot a guest on the given layout and report what it observed after each "
                    "boot (lsblk, pvs/vgs/lvs, findmnt, swaps, unit results, provision's exit "
                    "codes and report, the provision units' journal).")
    p.add_argument("--layout", required=True, type=Path, help="layout file (disko schema)")
    p.add_argument("--config", type=Path,
                   help="config file (default: one naming the layout: disks: {layout: layout.yaml})")
    p.add_argument("--cmdline", default="",
                   help="kernel cmdline additions for boot 1 (e.g. homelab.provision_disks=true)")
    p.add_argument("--cmdline-next", default="",
                   help="kernel cmdline additions for boots 2..N (default: none, i.e. mount-only)")
    p.add_argument("--disks",
                   help="comma-separated disk specs KIND:SIZE[:serial=S][:rotational=0|1] "
                        "(default nvme:8G,sata:16G; with --map: derived from the layout)")
    p.add_argument("--map", action="store_true",
                   help="move the layout's device paths to guest disks of a suitable kind and "
                        "size (by-id → the guest disk's by-id, …; see harness/layoutcheck.py) "
                        "and boot on that copy; with --disks, their kinds are used in order")
    p.add_argument("--check-layout", action="store_true",
                   help="after every boot, check the guest's state against the layout "
                        "(partitions, GPT names/types/sizes, VGs/LVs and segment types, "
                        "filesystems, labels, mounts and options, swap, ensure_dirs); a failed "
                        "check fails the probe")
    p.add_argument("--root", default="/",
                   help="run the disks unit with --root DIR (e.g. /mnt for an installer "
                        "layout that mounts /)")
    p.add_argument("--boots", type=int, default=1)
    p.add_argument("--check", type=Path, help="extra guest check script run on every boot")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per boot")
    p.add_argument("--report", required=True, type=Path, help="write the JSON report here")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    ensure_setup()
    binary = image.ensure_binary(build=not a.no_build)
    config = a.config.read_text() if a.config else "disks:\n  layout: layout.yaml\n"
    check = a.check.read_text() if a.check else ""
    layout_text = a.layout.read_text()
    specs = [x for x in (a.disks or "nvme:8G,sata:16G").split(",") if x]
    doc = None
    if a.map or a.check_layout:
        try:
            doc = layoutcheck.read_layout(a.layout, binary)
        except ValueError as e:
            print(e, file=sys.stderr)
            return 3
    if a.map:
        kinds = [Disk.parse(x).kind for x in specs] if a.disks else None
        doc, mapped_specs, mapping = layoutcheck.map_to_guest(doc, kinds)
        if not a.disks:
            specs = mapped_specs
        for name, (old, new) in mapping.items():
            print(f"disk {name}: {old} -> {new}")
        layout_text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    files = {}
    if a.root != "/":
        files["/etc/systemd/system/provision-disks.service.d/zz-root.conf"] = (
            f"[Service]\nExecStart=\nExecStart=/usr/bin/provision --root {a.root} disks\n")
    if a.check_layout:
        check += "\n" + layoutcheck.guest_script(doc, a.root)
    boots = [Boot(cmdline=a.cmdline if i == 0 else a.cmdline_next, check=check, observe=True,
                  timeout=a.timeout, expect_units={}) for i in range(a.boots)]
    s = Scenario(name="probe", boots=boots, disks=[Disk.parse(x) for x in specs],
                 config=config, layout=layout_text, files=files)
    base = image.ensure_base()
    accel = image.accel_args(base)
    # A probe records whatever happens: failing units are data, not a failed run. Only a boot
    # that never reported counts as a failure.
    workdir = out_dir() / "probe"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    server = qemu.HostServer({})
    images = qemu.create_images(s, workdir)
    mid = qemu.new_machine_id()
    report = {"layout": str(a.layout), "disks": ",".join(specs), "serials": s.serials(),
              "boots": []}
    if a.map:
        report["mapped_layout"] = doc
    rc = 0
    try:
        for i, b in enumerate(boots, 1):
            r = qemu.run_boot(s, b, i, base=base, binary=binary, accel=accel, images=images,
                              workdir=workdir, server=server, machine_id=mid)
            j = r.to_json()
            j["cmdline"] = (r.dir / "cmdline").read_text().strip()
            j["provision_exit_codes"] = {u: st.get("ExecMainStatus") for u, st in r.units.items()
                                         if u.endswith(".service")}
            if r.done is None:
                j["console_tail"] = r.console_tail
            if a.check_layout and r.done is not None:
                j["layout_checks"] = layoutcheck.compare(doc, a.root, r.data)
            report["boots"].append(j)
            print(f"boot {i}: {'reported' if r.done is not None else 'NO REPORT'} in "
                  f"{r.seconds:.1f} s; " + ", ".join(
                      f"{u}={qemu._unit_outcome(st)}" for u, st in sorted(r.units.items())))
            bad = [c for c in j.get("layout_checks", []) if not c["ok"]]
            if a.check_layout and r.done is not None:
                print(f"boot {i}: layout check: {len(j['layout_checks']) - len(bad)} passed, "
                      f"{len(bad)} failed")
                for c in bad:
                    print(f"  FAILED {c['name']}: {c['detail']}")
                if bad:
                    rc = 1
            if r.done is None:
                print(failure_details("probe", [r]), file=sys.stderr)
                rc = 1
                break
    finally:
        server.close()
    a.report.write_text(json.dumps(report, indent=1))
    print(f"report: {a.report}")
    return rc


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["probe"]:
        return cmd_probe(argv[1:])
    p = argparse.ArgumentParser(prog="vm-tests/run", description=__doc__)
    p.add_argument("names", nargs="*", metavar="SCENARIO")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("-j", "--jobs", type=int, default=1,
                   help="guests in parallel (2 on a 2-core machine gives ~25%% more throughput)")
    p.add_argument("-k", "--keep", action="store_true", help="keep disk images of passed scenarios")
    p.add_argument("-v", "--verbose", action="store_true", help="per-boot timings on stderr")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    p.add_argument("--rebuild-image", action="store_true", help="rebuild the cached base image")
    return cmd_run(p.parse_args(argv))
