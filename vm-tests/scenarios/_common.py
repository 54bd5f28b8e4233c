"""Shared pieces of the crash, soak and refusal scenarios on the shipped ganeti-node layout
(imported by scenario files; not a scenario itself: files starting with _ are not loaded)."""

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from harness import repo_file

GANETI = repo_file("layouts/ganeti-node.yaml")
GANETI_FILES = {"/etc/provision/ganeti-node.yaml": GANETI}
GANETI_CONFIG = "disks:\n  layout: ganeti-node.yaml\n"
# Sparse images big enough for the layout's real 32G swap and 100G home.
GANETI_DISKS = ["nvme:64G", "sata:160G"]



def key_bundle(host: str, keys: dict) -> tuple:
    """The keys stage's bundle for `host`, made with ssh-keygen for each run.
    keys: {member: ssh-keygen -t argument, e.g. "ed25519" or "rsa-3072"}.
    Returns (the .tar.gz bytes, {member: its public key file}, {member: its fingerprint})."""
    d = Path(tempfile.mkdtemp(prefix=f"provision-{host}-"))
    buf = io.BytesIO()
    pubs, fps = {}, {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, kind in keys.items():
            t, _, bits = kind.partition("-")
            subprocess.run(["ssh-keygen", "-q", "-t", t, *(["-b", bits] if bits else []), "-N", "",
                            "-C", f"{member}@{host}", "-f", str(d / member)], check=True)
            data = (d / member).read_bytes()
            ti = tarfile.TarInfo(member)
            ti.size, ti.mode = len(data), 0o600
            tar.addfile(ti, io.BytesIO(data))
            pubs[member] = d / f"{member}.pub"
            fps[member] = subprocess.run(["ssh-keygen", "-lf", str(pubs[member])], check=True,
                                         capture_output=True, text=True).stdout.split()[1]
    return buf.getvalue(), pubs, fps


# The guard (vm-tests/guest/guard): every tool that could create, format or wipe anything is
# shadowed by bind mounts over the real files (the agent runs tools by absolute path, not from
# PATH); a call is logged to /run/provision-test-guard.log and fails. GUARD_UNIT puts it around
# provision-disks.service (a boot without the flag must never call any of those tools).
GUARD = "/usr/lib/provision-test/guard"
GUARD_UNIT = {"/etc/systemd/system/provision-disks.service.d/zz-guard.conf":
              f"[Service]\nExecStartPre={GUARD} on\nExecStartPost={GUARD} off\n"
              f"ExecStopPost={GUARD} off\n"}

# Guest shell functions (check scripts source lib.sh first; these come after).
SH = r'''
# what a reboot does to the agent's work: nothing mounted, no swap, no VG active
reset_state() {
    # a power cut also ends what the agent had started (concurrent mkfs chains, lvm)
    while pkill -9 -x 'mkfs\..*|mkswap|lvm|wipefs|sgdisk|partx|e2fsck' 2>/dev/null; do sleep 0.2; done
    swapoff -a 2>/dev/null
    for m in /var/lib/ganeti/export /home /var /boot; do
        while mountpoint -q "$m"; do umount "$m" || break; done
    done
    vgs=$(vgs --noheadings -o vg_name 2>/dev/null | tr -d ' ')
    [ -z "$vgs" ] || vgchange -qan $vgs >/dev/null 2>&1
    return 0
}

# guard_log: what the guard stopped (empty: nothing tried to create, format or wipe)
guard_log() { cat /run/provision-test-guard.log 2>/dev/null; }
# guard_was_on: the last guard shadowed lvm, wipefs, sgdisk and mkfs.ext4 (so an empty log means
# something)
guard_was_on() {
    for t in lvm wipefs sgdisk mkfs.ext4 mkswap; do
        grep -qxF "$(readlink -f "/usr/sbin/$t")" /run/provision-test-guard.was || { echo "$t was not shadowed"; return 1; }
    done
}

# verify_layout [TOKEN]: the live state is exactly layouts/ganeti-node.yaml on these disks (and
# the token, if given, is recorded on both VGs); prints every mismatch, fails if any
verify_layout() {
    _bad=""
    _e() { [ "$2" = "$3" ] || _bad="$_bad
$1: got '$2', want '$3'"; }
    _lvsize() { lvs --noheadings --units b --nosuffix -o lv_size "$1" 2>&1 | tr -d ' '; }
    _e VGs "$(vgs --noheadings -o vg_name --sort vg_name 2>&1 | tr -d ' ' | tr '\n' ' ')" "pool_gnt pool_host "
    _e "pool_host LVs" "$(lvs --noheadings -o lv_name --sort lv_name pool_host 2>&1 | tr -d ' ' | tr '\n' ' ')" "home swap var "
    _e "pool_gnt LVs" "$(lvs --noheadings -o lv_name pool_gnt 2>&1 | tr -d ' ')" ""
    _e "pool_gnt PV" "$(pvs --noheadings -o pv_name -S vg_name=pool_gnt 2>&1 | tr -d ' ')" /dev/nvme0n1
    _e "pool_host PV" "$(pvs --noheadings -o pv_name -S vg_name=pool_host 2>&1 | tr -d ' ')" /dev/sda2
    _e "home size" "$(_lvsize pool_host/home)" 107374182400
    _e "swap size" "$(_lvsize pool_host/swap)" 34359738368
    _e "pool_host free" "$(vgs --noheadings --units b --nosuffix -o vg_free pool_host 2>&1 | tr -d ' ')" 0
    _e "ESP name" "$(blkid -o value -s PARTLABEL /dev/sda1)" disk-hdd-ESP
    _e "/boot" "$(findmnt -n -o SOURCE,FSTYPE /boot | tr -s ' ')" "/dev/sda1 vfat"
    _e "/home" "$(findmnt -n -o SOURCE,FSTYPE /home | tr -s ' ')" "/dev/mapper/pool_host-home ext4"
    _e "/var" "$(findmnt -n -o SOURCE,FSTYPE /var | tr -s ' ')" "/dev/mapper/pool_host-var ext4"
    _e "swap" "$(swapon --show=NAME --noheadings | tr -d ' ')" "$(readlink -f /dev/pool_host/swap)"
    _e "/var/lib/ganeti/export" "$(stat -c %a /var/lib/ganeti/export 2>&1)" 750
    if [ -n "${1:-}" ]; then
        for vg in pool_gnt pool_host; do
            vgs --noheadings -o vg_tags "$vg" | tr ',' '\n' | tr -d ' ' | grep -qx "provision.token=$1" ||
                _bad="$_bad
$vg: token $1 not recorded"
        done
    fi
    [ -z "$_bad" ] && return 0
    printf '%s\n' "$_bad"
    return 1
}
'''


# The agent's Prometheus textfile-collector files (README "Metrics"). METRICS_SH, in a check
# script, reports each stage's file as DATA `metrics:<stage>`; metrics_verify(...) is a
# Boot.verify that reads them with Prometheus's own text-format parser (Debian's
# python3-prometheus-client, from tools/install-deps) and checks samples.
METRICS_SH = r'''
for _s in disks keys secrets sops; do
    [ -e "/run/provision/metrics/provision_$_s.prom" ] && data_text "metrics:$_s" cat "/run/provision/metrics/provision_$_s.prom"
done
'''

_PROM_PARSE = r'''
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    if f.name in out:
        sys.exit("family %s twice" % f.name)
    out[f.name] = {"type": f.type, "help": f.documentation,
                   "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
'''


def parse_prom(text: str) -> dict:
    """{family: {"type", "help", "samples": [[name, labels, value]]}}, as prometheus_client's
    parser reads `text`; raises with the parser's complaint when it refuses it."""
    import json
    for py in ("/usr/bin/python3", "python3"):
        try:
            r = subprocess.run([py, "-c", _PROM_PARSE], input=text, capture_output=True,
                               text=True, timeout=60)
        except FileNotFoundError:
            continue
        if "No module named 'prometheus_client'" in r.stderr:
            continue
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise ValueError(f"the exposition-format parser refused it: {why}")
        return json.loads(r.stdout)
    raise RuntimeError("no python3 with prometheus_client (python3-prometheus-client; "
                       "tools/install-deps installs it)")


def metrics_verify(*checks):
    """A Boot.verify: each check is (stage, family, labels, want): labels the sample's exact
    label set (a value None: any value); want a number (the sample's value), None (no such
    sample) or (description, predicate). Also checks that each family's HELP and TYPE are the
    same in every file of the boot."""

    def verify(data):
        files, results = {}, []
        for key, text in data.items():
            if key.startswith("metrics:"):
                try:
                    files[key[8:]] = parse_prom(text)
                except Exception as e:  # one result per file the parser refuses
                    files[key[8:]] = e
                    results.append({"name": f"metrics: {key[8:]} file parses", "ok": False,
                                    "detail": str(e)})
        for stage, family, labels, want in checks:
            label_text = ",".join(f'{k}="{v}"' if v is not None else f'{k}=*'
                                   for k, v in labels.items())
            name = f"metrics: {stage}: {family}{{{label_text}}}"
            fams = files.get(stage)
            if not isinstance(fams, dict):
                results.append({"name": name, "ok": False,
                                "detail": "no metrics file" if fams is None else "unparsable"})
                continue
            got = next((v for n, l, v in fams.get(family, {}).get("samples", [])
                        if n == family and l.keys() == labels.keys()
                        and all(w is None or l[k] == w for k, w in labels.items())), None)
            if isinstance(want, tuple):
                desc, pred = want
                ok = got is not None and pred(got)
            else:
                desc, ok = want, got == want
            results.append({"name": name, "ok": ok, "detail": f"got {got}, want {desc}"})
        decl, clash = {}, []
        for stage, fams in files.items():
            for fam, f in fams.items() if isinstance(fams, dict) else ():
                d = decl.setdefault(fam, (f["type"], f["help"], stage))
                if d[:2] != (f["type"], f["help"]):
                    clash.append(f"{fam}: {d[2]} and {stage} differ")
        if len(files) > 1:
            results.append({"name": "metrics: HELP and TYPE identical across the files",
                            "ok": not clash, "detail": "; ".join(clash) or
                            f"{len(decl)} families in {sorted(files)}"})
        return results

    return verify


def stage_metrics(stage: str, exit_code: int, last_success: bool) -> list:
    """The checks every stage's file passes: success and exit code as given, a duration, the
    build info, and a last success time exactly when one is expected."""
    s = {"stage": stage}
    return [
        (stage, "provision_build_info",
         {"stage": stage, "version": None, **({"layout_hash": None} if stage == "disks" else {})},
         1.0),
        (stage, "provision_stage_success", s, 1.0 if exit_code == 0 else 0.0),
        (stage, "provision_stage_exit_code", s, float(exit_code)),
        (stage, "provision_stage_duration_seconds", s, (">= 0", lambda v: v >= 0)),
        (stage, "provision_stage_last_success_timestamp_seconds", s,
         ("a Unix time", lambda v: v > 1.5e9) if last_success else None),
    ]
