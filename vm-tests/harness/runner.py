"""Command line of vm-tests/run (documented there and in vm-tests/README.md)."""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import re
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


MAX_DERIVED_DISK = 64 << 30  # bytes; a derived guest disk beyond this needs --disks


class ProbeError(Exception):
    """A bad flag or input of `run probe`: one line for the operator, exit 2."""


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}
_PROVISION_FLAG = re.compile(r"(?:^|\s)[A-Za-z0-9_]+\.provision[-_]disks(?:=(\S*))?(?=\s|$)")


def provision_request(cmdline: str):
    """What a kernel command line asks of the disks stage (src/cmdline.rs
    apply_provision_disks; the last `<prefix>.provision_disks` wins): None (mount-only),
    True (provision on every boot that carries it) or the wipe-once token (str)."""
    found = list(_PROVISION_FLAG.finditer(" " + cmdline))
    if not found:
        return None
    v = found[-1].group(1)
    if v is None:
        return True  # the bare flag
    b = _BOOL.get(v.lower())
    if b is not None:
        return True if b else None
    return v or None  # an empty value is refused by provision: mount-only


def provisions_again(cmdline: str, cmdline_next: str) -> str:
    """Why boots 2..N provision again ('' when they are mount-only boots): a true flag does on
    every boot, a token other than boot 1's is a new wipe; boot 1's token is consumed."""
    req, first = provision_request(cmdline_next), provision_request(cmdline)
    if req is True:
        return f"--cmdline-next {cmdline_next!r} provisions on every boot"
    if isinstance(req, str) and req != first:
        return f"--cmdline-next {cmdline_next!r} carries a new wipe-once token {req!r}"
    return ""


def stage_errors(state: dict) -> list:
    """'stage: error' of each failed stage in the guest's provision report (DATA `report`)."""
    rep = state.get("report")
    if isinstance(rep, str):
        try:
            rep = json.loads(rep)
        except ValueError:
            return []
    out = []
    for st in (rep or {}).get("stages") or []:
        if st.get("error"):
            out.append(f"stage {st.get('stage')} ({st.get('outcome')}, exit "
                       f"{st.get('exit_code')}): {st['error']}")
    return out


def boot_failures(j: dict) -> list:
    """Every failure of one probe boot (its report entry): false RESULTs of the --check script
    and of the checker's guest script (a check script that exits non-zero is one), failed
    layout checks, failed provision units."""
    out = []
    for r in j.get("results") or []:
        if isinstance(r, dict) and not r.get("ok"):
            out.append(f"check {r.get('name')}: {str(r.get('detail', ''))[:500]}")
    for c in j.get("layout_checks") or []:
        if not c["ok"]:
            out.append(f"{c['name']}: {c['detail']}")
    for u, st in sorted((j.get("units") or {}).items()):
        if qemu._unit_outcome(st) == "failed":
            out.append(f"unit {u}: failed ({st.get('Result')}, exit {st.get('ExecMainStatus')})")
    return out


def _parse_disks(spec: str) -> list:
    out = []
    for x in [x for x in spec.split(",") if x.strip()]:
        try:
            d = Disk.parse(x)
        except ValueError as e:
            raise ProbeError(f"--disks {spec!r}: {e}") from None
        if d.size_bytes == 0:
            raise ProbeError(f"--disks {spec!r}: disk {x!r} has size 0")
        out.append(d)
    if not out:
        raise ProbeError(f"--disks {spec!r}: no disk")
    return out


def _file_arg(flag: str, path: Path) -> str:
    if not path.exists():
        raise ProbeError(f"{flag} {path}: no such file")
    if not path.is_file():
        raise ProbeError(f"{flag} {path}: not a file")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ProbeError(f"{flag} {path}: cannot read it: {e}") from None


def _free_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def _spec(d: Disk) -> str:
    s = f"{d.kind}:{d.size}"
    if d.serial:
        s += f":serial={d.serial}"
    if d.rotational is not None:
        s += f":rotational={int(d.rotational)}"
    if d.format != "raw":
        s += f":format={d.format}"
    return s


def _mounts_root(doc) -> bool:
    return bool(doc) and any(layoutcheck._target("/", t) == "/"
                             for t, _, _ in layoutcheck.mounts(doc, "/"))


def probe_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vm-tests/run probe",
        description="Boot a guest on the given layout and report what it observed after each "
                    "boot (lsblk, pvs/vgs/lvs, findmnt, swaps, unit results, provision's exit "
                    "codes and report, the provision units' journal). Exit 0 when every boot "
                    "reported and nothing failed; 1 when a boot failed (a false RESULT of a "
                    "check script or of --check-layout, a check script that exited non-zero, a "
                    "failed provision unit, a boot that never reported); 2 on a bad flag or "
                    "input; 3 when provision rejects the layout (--map/--check-layout); 130 on "
                    "Ctrl-C. The report is written in every case.")
    p.add_argument("--layout", required=True, type=Path, help="layout file (disko schema)")
    p.add_argument("--config", type=Path,
                   help="config file for /etc/provision/config.yaml (default: one naming the "
                        "layout: `disks: {layout: layout.yaml}`)")
    p.add_argument("--cmdline", default="",
                   help="kernel cmdline additions for boot 1 (e.g. homelab.provision_disks=true)")
    p.add_argument("--cmdline-next", default="",
                   help="kernel cmdline additions for boots 2..N (default: none, i.e. "
                        "mount-only boots, which get the data-kept checks; a true "
                        "provision_disks or a new token provisions again, without them)")
    p.add_argument("--disks",
                   help="comma-separated disk specs "
                        "KIND:SIZE[:serial=S][:rotational=0|1][:format=qcow2] (KIND nvme, "
                        "sata, virtio, scsi; SIZE e.g. 512M, 8G; default nvme:8G,sata:16G). "
                        "With --map: one per layout disk, in the layout's "
                        "disk order, giving each its kind and size instead of the derived ones "
                        "(no serial=)")
    p.add_argument("--map", action="store_true",
                   help="move the layout's device paths to guest disks of a suitable kind and "
                        "size (by-id → the guest disk's by-id, …; see harness/layoutcheck.py) "
                        "and boot on that copy; derived sizes over 64 GiB or over the free "
                        "space of the output directory are refused (give --disks)")
    p.add_argument("--check-layout", action="store_true",
                   help="after every boot, check the guest's state against the layout "
                        "(partitions, GPT names/types/sizes, VGs/LVs and segment types, "
                        "filesystems, labels, mounts and options, swap, ensure_dirs); a failed "
                        "check fails the probe")
    p.add_argument("--root", default="/",
                   help="run the disks unit with --root DIR (e.g. /mnt for an installer "
                        "layout that mounts /; default /)")
    p.add_argument("--boots", type=int, default=1,
                   help="number of boots on the same disks (default 1); boot 1 gets --cmdline, "
                        "the others --cmdline-next")
    p.add_argument("--check", type=Path,
                   help="extra guest check script (POSIX sh, vm-tests/guest/lib.sh sourced: "
                        "check/check_eq/result…) run on every boot; a false check or a "
                        "non-zero exit fails the probe")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds per boot, the whole QEMU run (default 300)")
    p.add_argument("--report", required=True, type=Path, help="write the JSON report here")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo build --release (use the existing binary)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def cmd_probe(argv: list) -> int:
    a = probe_parser().parse_args(argv)
    try:
        return _probe(a)
    except ProbeError as e:
        print(f"vm-tests/run probe: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the boots (building, the base image): nothing to report
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _probe(a) -> int:
    # Everything the operator gave is read and checked before building or booting.
    layout_text = _file_arg("--layout", a.layout)
    config = _file_arg("--config", a.config) if a.config else "disks:\n  layout: layout.yaml\n"
    user_check = _file_arg("--check", a.check) if a.check else ""
    if a.boots < 1:
        raise ProbeError(f"--boots {a.boots}: at least 1")
    if a.timeout <= 0:
        raise ProbeError(f"--timeout {a.timeout}: must be positive")
    if not a.root.startswith("/"):
        raise ProbeError(f"--root {a.root}: an absolute path")
    rdir = a.report.parent if str(a.report.parent) else Path(".")
    if a.report.is_dir():
        raise ProbeError(f"--report {a.report}: is a directory")
    if not rdir.is_dir():
        raise ProbeError(f"--report {a.report}: no directory {rdir}")
    if not os.access(rdir, os.W_OK):
        raise ProbeError(f"--report {a.report}: directory {rdir} is not writable")
    given = _parse_disks(a.disks) if a.disks else None

    ensure_setup()
    binary = image.ensure_binary(build=not a.no_build)
    doc, problems = None, []
    try:
        v = layoutcheck.validate(binary, path=a.layout)
    except RuntimeError as e:
        raise ProbeError(f"--layout {a.layout}: {e}") from None
    if v.get("ok"):
        doc = v["layout"]
    else:
        problems = v.get("problems") or []
        if a.map or a.check_layout:
            print(f"{a.layout}: provision rejects this layout:\n  " + "\n  ".join(problems),
                  file=sys.stderr)
            return 3
        print(f"note: provision rejects this layout (booting it anyway; no data-kept "
              f"check):\n  " + "\n  ".join(problems))
    disks = given or _parse_disks("nvme:8G,sata:16G")
    mapping = {}
    if a.map:
        n = len(layoutcheck.disks(doc))
        if given is not None and len(given) != n:
            names = ", ".join(k for k, _ in layoutcheck.disks(doc)) or "none"
            raise ProbeError(f"--disks {a.disks!r}: with --map, one disk per layout disk "
                             f"({n}: {names}, in this order)")
        if given is not None and any(d.serial for d in given):
            raise ProbeError(f"--disks {a.disks!r}: with --map the guest disks keep their "
                             f"default serials (the mapped layout names them); drop serial=")
        try:
            doc, derived, mapping = layoutcheck.map_to_guest(
                doc, [d.kind for d in given] if given else None)
        except ValueError as e:
            raise ProbeError(f"--map: {e}") from None
        derived = [Disk.parse(x) for x in derived]
        if given is None:
            free = _free_bytes(out_dir())
            for (name, _), d in zip(layoutcheck.disks(doc), derived):
                if d.size_bytes > MAX_DERIVED_DISK:
                    raise ProbeError(f"--map: disk {name} needs a "
                                     f"{d.size_bytes / (1 << 30):.0f} GiB guest disk, over "
                                     f"{MAX_DERIVED_DISK >> 30} GiB: give the sizes with --disks")
                if d.size_bytes > free:
                    raise ProbeError(f"--map: disk {name} needs a "
                                     f"{d.size_bytes / (1 << 30):.1f} GiB guest disk, more "
                                     f"than the {free >> 20} MiB free in {out_dir()}: give "
                                     f"the sizes with --disks, or free space")
            disks = derived
        else:  # the mapped kind (a 5th sata disk becomes scsi) with the operator's size
            disks = [Disk(m.kind, g.size, rotational=g.rotational, format=g.format)
                     for m, g in zip(derived, given)]
        for (name, _), d in zip(layoutcheck.disks(doc), disks):
            old, new = mapping[name]
            print(f"disk {name}: {old} -> {new} ({d.kind}, {d.size}"
                  f"{', from --disks' if given else ', derived from the layout'})")
        layout_text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if a.root == "/" and _mounts_root(doc):
        print("note: the layout mounts / and / is already mounted in the guest (and on a "
              "running node): an installer layout needs --root /mnt")

    files = {}
    if a.root != "/":
        files["/etc/systemd/system/provision-disks.service.d/zz-root.conf"] = (
            f"[Service]\nExecStart=\nExecStart=/usr/bin/provision --root {a.root} disks\n")
    report_path = layoutcheck._target(a.root, "/run/provision/report.json")
    check = user_check
    if a.check_layout:
        check += "\n" + layoutcheck.guest_script(doc, a.root)
    if a.root != "/":  # the report is under the agent's root; observe reads /run/provision
        check += (f"\nif [ -r {report_path} ]; then data_cmd report cat {report_path}; fi\n")
    again = provisions_again(a.cmdline, a.cmdline_next) if a.boots > 1 else ""
    kept = a.boots > 1 and doc is not None and not again
    if a.boots > 1 and again:
        print(f"boots 2..{a.boots}: {again}: no data-kept check (canaries, mount-only)")
    checks = []
    for i in range(a.boots):
        c = check
        if kept and i == 0:
            c += "\n" + layoutcheck.canary_script(doc, a.root, write=True)
        elif kept:
            c += ("\n" + layoutcheck.canary_script(doc, a.root, write=False) +
                  f"check 'report: mount-only' grep -q '\"mode\": \"mount-only\"' "
                  f"{report_path}\n")
        checks.append(c)
    boots = [Boot(cmdline=a.cmdline if i == 0 else a.cmdline_next, check=checks[i],
                  observe=True, timeout=a.timeout, expect_units={}) for i in range(a.boots)]
    s = Scenario(name="probe", boots=boots, disks=disks, config=config, layout=layout_text,
                 files=files)
    report = {"layout": str(a.layout), "disks": ",".join(_spec(d) for d in disks),
              "serials": s.serials(), "data_kept_checks": kept, "boots": []}
    if problems:
        report["layout_problems"] = problems
    if a.map:
        report["mapped_layout"] = doc
    rc = 0
    server = None
    try:
        base = image.ensure_base()
        accel = image.accel_args(base)
        workdir = out_dir() / "probe"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        server = qemu.HostServer({})
        images = qemu.create_images(s, workdir)
        mid = qemu.new_machine_id()
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
            bad = boot_failures(j)
            j["failures"] = bad
            report["boots"].append(j)
            print(f"boot {i}: {'reported' if r.done is not None else 'NO REPORT'} in "
                  f"{r.seconds:.1f} s; " + ", ".join(
                      f"{u}={qemu._unit_outcome(st)}" for u, st in sorted(r.units.items())))
            if a.check_layout and r.done is not None:
                nbad = sum(1 for c in j["layout_checks"] if not c["ok"])
                print(f"boot {i}: layout check: {len(j['layout_checks']) - nbad} passed, "
                      f"{nbad} failed")
            nres = sum(1 for x in r.results if isinstance(x, dict))
            print(f"boot {i}: {nres} check result(s), {len(bad)} failure(s) in all")
            for line in bad:
                print(f"  FAILED {line}")
            if any(x.startswith("unit ") for x in bad):
                errs = stage_errors(r.data)
                for e in errs or ["(no failed stage in the provision report: see the "
                                  "journal in the report)"]:
                    print(f"boot {i}: provision: {e}", file=sys.stderr)
            if bad:
                rc = 1
            if r.done is None:
                print(failure_details("probe", [r]), file=sys.stderr)
                rc = 1
                break
    except Exception as e:  # a harness bug: the report still says what ran
        report["harness_error"] = f"{type(e).__name__}: {e}"
        rc = 1
        raise
    except KeyboardInterrupt:
        report["interrupted"] = True
        print("interrupted (Ctrl-C): the report has the boots that finished", file=sys.stderr)
        rc = 130
    finally:
        if server is not None:
            server.close()
        report["exit_code"] = rc
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
