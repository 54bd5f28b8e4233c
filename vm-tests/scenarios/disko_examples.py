"""example-<name>: one scenario per disko example (../shared/testdata/disko-examples, disko's own
examples as `disko.devices` JSON) that provision accepts — disko's test pattern (format, mount,
reboot, mount again) on provision.

Per example, all derived from the example file itself (harness/layoutcheck.py):
- its device paths are moved to guest disks of a suitable kind and size (map_to_guest), and that
  mapped copy is the scenario's layout;
- boot 1 provisions it (a wipe-once token when the layout has a VG to record it on, else `true`,
  as token mode refuses a layout without a VG), boot 2 has no flag: both check the state against
  the layout (partitions, GPT names/types/sizes, PVs/VGs/LVs with segment types, filesystems,
  labels, mounts with options, swap, directories) and a file written on every mounted filesystem
  in boot 1 is read back in boot 2.
The examples are installer layouts (`/` among their mountpoints; disko mounts them under /mnt),
so the disks unit runs with `--root /mnt` here (a drop-in), as an installer would.

A rejected example whose supported part has a feature (a content type, filesystem format,
lvm_type, nodev type) that no accepted example has gets a scenario too, example-<name>-subset:
the example less what `provision validate` names (e.g. lvm-raid less its mdadm /boot keeps the
raid0 and mirror LVs; swap less its encrypted swap keeps the plain swap partition).

Group `examples` (`vm-tests/run -j 2 examples`) runs them all. The suite (`vm-tests/run` without
names, CI) runs a sample chosen here to cover every feature of the tier at least once (greedy,
most features first); `vm-tests/run --list` marks the others "by hand".
"""

import json
import os
import sys
from pathlib import Path

from harness import Boot, Scenario, image
from harness import layoutcheck as lc

EXAMPLES = Path(os.environ.get("PROVISION_DISKO_EXAMPLES",
                               image.REPO.parent / "shared" / "testdata" / "disko-examples"))
ROOT = "/mnt"
CONFIG = "disks:\n  layout: layout.yaml\n"
FILES = {"/etc/systemd/system/provision-disks.service.d/zz-root.conf":
         f"[Service]\nExecStart=\nExecStart=/usr/bin/provision --root {ROOT} disks\n"}
REPORT = f"{ROOT}/run/provision/report.json"

# mkfs.<format> of each filesystem package; a format whose package is not in the guest image
# (image/packages) cannot run there.
FORMAT_PACKAGES = {"ext2": "e2fsprogs", "ext3": "e2fsprogs", "ext4": "e2fsprogs",
                   "xfs": "xfsprogs", "vfat": "dosfstools", "fat": "dosfstools",
                   "msdos": "dosfstools", "btrfs": "btrfs-progs", "f2fs": "f2fs-tools",
                   "bcachefs": "bcachefs-tools", "ntfs": "ntfs-3g"}


def _skip_reason(doc):
    have = set(image.packages())
    for _, c in lc.contents(doc):
        if lc._ctype(c) == "filesystem":
            fmt = c.get("format")
            pkg = FORMAT_PACKAGES.get(fmt)
            if pkg not in have:
                return (f"the guest image has no mkfs.{fmt} ({pkg or 'no package known'} is not "
                        f"in vm-tests/image/packages)"
                        + ("; the Debian cloud kernel has no f2fs either" if fmt == "f2fs" else ""))
    return None


def scenario(name: str, doc: dict, note: str = "") -> Scenario:
    mapped, specs, mapping = lc.map_to_guest(doc)
    token = "vmtest-1" if mapped.get("lvm_vg") else "true"
    check = lc.guest_script(mapped, ROOT)

    def verify(data, mapped=mapped):
        return lc.compare(mapped, ROOT, data)

    moved = ", ".join(f"{old} -> {new}" for old, new in mapping.values())
    doc_text = (f"disko example {name}{note}: provision (={token}), reboot without the flag; "
                f"checked against the layout ({moved})")
    return Scenario(
        name=f"example-{name}",
        doc=doc_text,
        disks=specs,
        config=CONFIG,
        layout=json.dumps(mapped, indent=1, sort_keys=True) + "\n",
        files=dict(FILES),
        skip=_skip_reason(mapped),
        boots=[
            Boot(cmdline=f"homelab.provision_disks={token}", observe=True, timeout=480,
                 verify=verify, expect_results=["report: provisioned"],
                 check=check + lc.canary_script(mapped, ROOT, write=True) +
                 f"check 'report: provisioned' grep -q '\"mode\": \"provision\"' {REPORT}\n"),
            Boot(observe=True, verify=verify, expect_results=["report: mount-only"],
                 check=check + lc.canary_script(mapped, ROOT, write=False) +
                 f"check 'report: mount-only' grep -q '\"mode\": \"mount-only\"' {REPORT}\n"),
        ],
    )


def build() -> list:
    binary = image.existing_binary()
    if binary is None or not EXAMPLES.is_dir():
        why = "no release binary yet" if binary is None else f"{EXAMPLES} is missing"
        print(f"[vm-tests] disko examples: none ({why})", file=sys.stderr)
        return []
    accepted, rejected = [], []
    for path in sorted(EXAMPLES.glob("*.json")):
        v = lc.validate(binary, path=path)
        (accepted if v.get("ok") else rejected).append((path.stem, v))
    out = [scenario(n, v["layout"]) for n, v in accepted]
    known = set().union(*(lc.features(v["layout"]) for n, v in accepted
                          if not _skip_reason(v["layout"]))) if accepted else set()
    for n, v in rejected:
        paths = lc.problem_paths(v.get("problems") or [])
        doc = v.get("layout")
        for _ in range(4):  # what goes may leave a VG without PVs: take that out too
            doc = lc.without(doc, paths) if doc and paths else None
            if not doc:
                break
            w = lc.validate(binary, doc=doc)
            if w.get("ok"):
                break
            paths = lc.problem_paths(w.get("problems") or [])
        else:
            doc = None
        if not doc or not (doc.get("disk") or doc.get("nodev")):
            continue
        new = lc.features(doc) - known
        if new and not _skip_reason(doc):
            out.append(scenario(f"{n}-subset", doc,
                                note=f" less what validate rejects (for {', '.join(sorted(new))})"))
    for s in out:
        s.group = "examples"
    _choose_sample(out)
    return out


def _choose_sample(scenarios: list) -> None:
    """in_suite for a few that together have every feature the tier has (greedy: most new
    features first, then the name); the rest run by hand."""
    feats = {s.name: lc.features(json.loads(s.layout)) for s in scenarios if not s.skip}
    want = set().union(*feats.values()) if feats else set()
    chosen, have = set(), set()
    while have != want:
        best = max(sorted(feats), key=lambda n: len(feats[n] - have))
        chosen.add(best)
        have |= feats[best]
    for s in scenarios:
        s.in_suite = s.name in chosen


SCENARIOS = build()
