"""A layout (disko schema, as provision reads it) put on a guest's disks and checked there.

Three parts, used by the disko-example scenarios (scenarios/disko_examples.py) and by
`vm-tests/run probe --check-layout`:

- map_to_guest(doc): the layout with its device paths moved to guest disks of a suitable kind
  (by-id paths become the guest disks' by-id names, kernel names the guest's kernel names, NVMe
  names and by-path paths by-id names, selectors a serial) and the disks it needs, each big
  enough for the layout's fixed sizes. Derived from the layout; nothing per example.
- guest_script(doc, root): POSIX sh for the guest that reports what is there (partition tables,
  lsblk + blkid of every block device, lvm reports, mounts, swaps, directories) as DATA markers.
- compare(doc, root, data): what the layout says must be there, against that report: partition
  numbers, GPT names, type GUIDs, attributes and sizes; table (parted) partitions; PVs, VGs, LVs
  with their segment types, thin pools and sizes; filesystems and labels; mounts with their
  options; swap; ensure_dirs. Each expectation is read from the layout with disko's rules
  (lib/types/*.nix), not from provision's plan, so the two are checked against each other.

Standard library only. The host's sgdisk (tools/install-deps) names the GUID of a type code.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
EXTENT = 4 * MiB  # lvm's default extent size (vgcreate -s)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50,
          "E": 1 << 60}


# --- reading layouts ------------------------------------------------------------------------------

def validate(binary: Path, doc=None, path: Path = None) -> dict:
    """`provision --output json validate --layout FILE`: {"ok", "problems", "layout"} — the
    layout document as provision read it (YAML turned into JSON) and every problem found."""
    tmp = None
    if path is None:
        fd, tmp = tempfile.mkstemp(suffix=".json", prefix="layout-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        path = Path(tmp)
    try:
        r = subprocess.run([str(binary), "--output", "json", "--layout", str(path), "validate"],
                           capture_output=True, text=True, env=_env_no_journal())
    finally:
        if tmp:
            os.unlink(tmp)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise RuntimeError(f"provision validate {path}: exit {r.returncode}, no JSON: "
                           f"{(r.stdout + r.stderr)[-500:]}") from None


def _env_no_journal() -> dict:
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)  # log to stderr, not journald
    return env


def read_layout(path: Path, binary: Path) -> dict:
    """A layout file (YAML or JSON) as a document. Problems found by provision are an error."""
    v = validate(binary, path=path)
    if not v.get("ok"):
        raise ValueError(f"{path}: provision rejects this layout:\n  " +
                         "\n  ".join(v.get("problems") or []))
    return v["layout"]


def problem_paths(problems: list) -> list:
    """The layout path of each problem of validate (`FILE: PATH: message`)."""
    out = []
    for p in problems:
        parts = p.split(": ")
        if len(parts) >= 3:
            out.append(parts[1])
    return out


def without(doc: dict, paths: list):
    """doc less the parts a rejection names: the item whose content is rejected (a partition,
    LV or disk) or the named top-level item (mdadm.boot, zpool.x). None if a path names nothing
    that can be taken out."""
    doc = copy.deepcopy(doc)
    for path in paths:
        keys = _split_path(path)
        if keys and keys[-1] == "content":
            keys = keys[:-1]
        if len(keys) < 2:
            return None
        parent = doc
        for k in keys[:-1]:
            parent = _child(parent, k)
            if parent is None:
                break
        if parent is None or _child(parent, keys[-1]) is None:
            continue  # already gone with an enclosing item
        if isinstance(parent, list):
            parent[keys[-1]] = None  # keep the indices of later paths; dropped below
        else:
            del parent[keys[-1]]
    _drop_nones(doc)
    for k in [k for k, v in doc.items() if v in ({}, None, [])]:
        del doc[k]
    return doc


def _split_path(path: str) -> list:
    out = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return out


def _child(node, k):
    if isinstance(node, dict):
        return node.get(k)
    if isinstance(node, list) and isinstance(k, int) and 0 <= k < len(node):
        return node[k]
    return None


def _drop_nones(node):
    if isinstance(node, dict):
        for v in node.values():
            _drop_nones(v)
    elif isinstance(node, list):
        node[:] = [x for x in node if x is not None]
        for v in node:
            _drop_nones(v)


# --- walking a layout ---------------------------------------------------------------------------

def disks(doc: dict) -> list:
    """[(name, node)] in name order, as provision and disko take them."""
    return sorted((doc.get("disk") or {}).items())


def vgs(doc: dict) -> list:
    return sorted((doc.get("lvm_vg") or {}).items())


def gpt_partitions(disk_name: str, table: dict) -> list:
    """A gpt table's partitions in disko's order (gpt.nix: sorted by priority, stably over the
    names), each with what disko derives: number, name, label, type, start, end."""
    items = []
    for key, p in sorted((table.get("partitions") or {}).items()):
        p = p or {}
        size = str(p.get("size", "0"))
        ptype = str(p.get("type") or ("8200" if _ctype(p.get("content")) == "swap" else "8300"))
        prio = p.get("priority")
        if prio is None:
            prio = 9001 if size == "100%" else 100 if ptype.upper() == "EF02" else 1000
        name = p.get("name") or key
        label = p.get("label")
        if label is None:
            label = f"disk-{disk_name}-{name}"
            if len(label) > 36:
                label = hashlib.sha256(label.encode()).hexdigest()[:36]
        end = p.get("end")
        if end is None:
            end = "-0" if size == "100%" else f"+{size}"
        items.append({"key": key, "name": name, "label": label, "type": ptype,
                      "priority": int(prio), "size": size, "start": str(p.get("start", "0")),
                      "end": str(end), "attributes": sorted(set(p.get("attributes") or [])),
                      "uuid": p.get("uuid"), "hybrid": p.get("hybrid"),
                      "content": p.get("content")})
    items.sort(key=lambda x: x["priority"])  # stable: name order among equals
    for i, it in enumerate(items, 1):
        it["number"] = i
    return items


def table_partitions(table: dict) -> list:
    out = []
    for i, p in enumerate(table.get("partitions") or [], 1):
        p = p or {}
        out.append({"number": i, "name": p.get("name"), "part_type": p.get("part-type", "primary"),
                    "start": str(p.get("start", "0%")), "end": str(p.get("end", "100%")),
                    "bootable": bool(p.get("bootable")), "fs_type": p.get("fs-type"),
                    "flags": p.get("flags") or [], "content": p.get("content")})
    return out


def _ctype(c) -> str:
    return (c or {}).get("type") or ""


def contents(doc: dict) -> list:
    """Every content node with where it sits:
    [(where, content)], where = ("disk", disk) | ("part", disk, number) | ("lv", vg, lv)."""
    out = []
    for dname, d in disks(doc):
        c = d.get("content")
        t = _ctype(c)
        if t == "gpt":
            for p in gpt_partitions(d.get("name") or dname.replace("/", "_"), c):
                if p["content"]:
                    out.append((("part", dname, p["number"]), p["content"]))
        elif t == "table":
            for p in table_partitions(c):
                if p["content"]:
                    out.append((("part", dname, p["number"]), p["content"]))
        elif c:
            out.append((("disk", dname), c))
    for vname, vg in vgs(doc):
        for lname, lv in sorted((vg.get("lvs") or {}).items()):
            if (lv or {}).get("content"):
                out.append((("lv", vname, (lv or {}).get("name") or lname), lv["content"]))
    return out


def features(doc: dict) -> set:
    """What a layout uses, in words: content types, filesystem formats, lvm_types, nodev types,
    hybrid MBRs. The disko-example tier runs a part of a rejected example when it has a feature
    no planning example has."""
    f = set()
    for _, d in disks(doc):
        c = d.get("content") or {}
        t = _ctype(c)
        if t == "table":
            f.add(f"table:{c.get('format', 'gpt')}")
        elif t == "gpt" and any((p or {}).get("hybrid") for p in (c.get("partitions") or {}).values()):
            f.add("gpt:hybrid-mbr")
        elif t:
            f.add(t)
    for _, c in contents(doc):
        t = _ctype(c)
        f.add(f"filesystem:{c.get('format')}" if t == "filesystem" else t)
    for _, vg in vgs(doc):
        f.add("lvm_vg")
        for lv in (vg.get("lvs") or {}).values():
            f.add(f"lv:{(lv or {}).get('lvm_type') or 'linear'}")
    for _, n in sorted((doc.get("nodev") or {}).items()):
        f.add(f"nodev:{(n or {}).get('fsType', 'tmpfs')}")
    if doc.get("ensure_dirs"):
        f.add("ensure_dirs")
    return f


# --- sizes ------------------------------------------------------------------------------------

def parse_bytes(s, default_unit: str = "") -> int:
    """'500M', '1.5G', '10MiB', '4096', '2048s' (512-byte sectors) → bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]?)(i?B?)\s*", str(s), re.I)
    if m:
        unit = (m.group(2) or default_unit).upper()
        return int(math.ceil(float(m.group(1)) * _UNITS[unit]))
    m = re.fullmatch(r"\s*([0-9]+)s\s*", str(s))
    if m:
        return int(m.group(1)) * 512
    raise ValueError(f"size {s!r}")


def _fs_min(content) -> int:
    """Room a content needs at least, where the layout gives it the rest of something."""
    t = _ctype(content)
    if t == "filesystem":
        return {"xfs": 320 * MiB, "btrfs": 128 * MiB, "vfat": 64 * MiB, "f2fs": 64 * MiB}.get(
            content.get("format"), 16 * MiB)
    if t == "swap":
        return 16 * MiB
    return 0


def _pos_bytes(pos: str) -> int:
    """The byte amount in a gpt/parted position ('500M', '+1G', '-10M', '1MiB'); 0 for '0',
    percentages and defaults."""
    pos = pos.strip().lstrip("+-")
    if not pos or pos.endswith("%") or pos in ("0",):
        return 0
    try:
        return parse_bytes(pos)
    except ValueError:
        return 0


def vg_need(doc: dict, vg_name: str) -> int:
    """Bytes one PV of the VG must hold so that every LV fits even all on it (a mirror or
    raid1 puts a whole copy on each PV): the fixed sizes, a floor for percentages that carry a
    filesystem, thin pools with their metadata, extents lost to rounding."""
    vg = (doc.get("lvm_vg") or {}).get(vg_name) or {}
    need = 8 * MiB
    for lv in (vg.get("lvs") or {}).values():
        lv = lv or {}
        size = str(lv.get("size", ""))
        if lv.get("lvm_type") == "thinlv":
            continue  # virtual: takes pool space only as it is written
        if "%" in size:
            need += max(_fs_min(lv.get("content")), EXTENT)
        else:
            try:
                b = parse_bytes(size, "M")
            except ValueError:
                b = 0
            if lv.get("lvm_type") == "thin-pool":
                b += b // 50 + 8 * MiB  # metadata LV and its spare
            need += b
        need += 2 * EXTENT
    return need


def disk_need(doc: dict, disk_node: dict) -> int:
    """Bytes a guest disk needs for the layout's fixed sizes and minimal rest."""
    c = disk_node.get("content") or {}
    t = _ctype(c)
    need = 4 * MiB
    if t == "gpt":
        for p in (c.get("partitions") or {}).values():
            p = p or {}
            size = str(p.get("size", "0"))
            fixed = 0
            if size not in ("0", "100%"):
                fixed = parse_bytes(size)
            else:
                fixed = max(_pos_bytes(str(p.get("start", "0"))), _pos_bytes(str(p.get("end", ""))))
            need += fixed + _content_need(doc, p.get("content"), fixed) + MiB
    elif t == "table":
        for p in c.get("partitions") or []:
            p = p or {}
            need = max(need, _pos_bytes(str(p.get("end", ""))))
            need += _content_need(doc, p.get("content"), 0) + MiB
    else:
        need += _content_need(doc, c, 0)
    return need


def _content_need(doc, content, fixed: int) -> int:
    """Beyond a partition's fixed size, what its content needs."""
    if _ctype(content) == "lvm_pv":
        return max(0, vg_need(doc, content.get("vg")) - fixed)
    return max(0, _fs_min(content) - fixed)


def guest_size(need: int) -> str:
    """A sparse image size for a disk that must hold `need` bytes: a quarter more, at least
    1 GiB, in whole 256 MiB."""
    b = max(GiB, int(need * 1.25) + 256 * MiB)
    return f"{-(-b // (256 * MiB)) * 256}M"


# --- mapping onto guest disks ------------------------------------------------------------------

def _kind_of(dev: str) -> str:
    """The guest disk kind that suits a device path of the layout."""
    base = dev.rsplit("/", 1)[-1]
    if dev.startswith("/dev/disk/by-id/"):
        for prefix, kind in (("nvme-", "nvme"), ("ata-", "sata"), ("scsi-", "scsi"),
                             ("virtio-", "virtio"), ("wwn-", "scsi")):
            if base.startswith(prefix):
                return kind
        return "nvme"
    if dev.startswith("/dev/disk/by-path/"):
        for part, kind in (("-nvme-", "nvme"), ("-ata-", "sata"), ("-scsi-", "scsi"),
                           ("virtio", "virtio")):
            if part in base:
                return kind
        return "nvme"
    if re.match(r"(sd|hd)[a-z]+$", base):
        return "sata"
    if re.match(r"(vd|xvd)[a-z]+$", base):
        return "virtio"
    return "nvme"


BY_ID = {"nvme": "nvme-QEMU_NVMe_Ctrl_{}", "sata": "ata-QEMU_HARDDISK_{}",
         "virtio": "virtio-{}", "scsi": "scsi-0QEMU_QEMU_HARDDISK_{}"}


def map_to_guest(doc: dict, kinds: list = None) -> tuple:
    """(mapped layout, disk specs, {layout disk: (old reference, new reference)}).

    Each layout disk becomes one guest disk, in the layout's disk order, of the kind its path
    suggests (by-id ata-… → sata, nvme names → nvme, /dev/vdX → virtio, /dev/sdX → sata, else
    nvme; `kinds` overrides them in order). Its new name keeps the kind of name: a by-id path
    becomes the guest disk's by-id name; a kernel name (sdX, vdX) becomes the kernel name the
    guest gives that disk (the n-th sata disk is sdX, the n-th virtio disk vdX, as they are
    attached in that order, and only if no scsi disk shares the sd names); an NVMe kernel name
    (numbered asynchronously) and a by-path path become the by-id name; a selector becomes
    {serial: …} with its transport/rotational/size kept. The sizes are guest_size(disk_need)."""
    doc = copy.deepcopy(doc)
    items = disks(doc)
    kinds = list(kinds or [])
    specs, mapping, counts = [], {}, {}
    picked = []
    for i, (name, d) in enumerate(items):
        if i < len(kinds):
            kind = kinds[i]
        elif d.get("device"):
            kind = _kind_of(d["device"])
        else:
            sel = d.get("select") or {}
            kind = {"sata": "sata", "ata": "sata", "nvme": "nvme", "virtio": "virtio",
                    "scsi": "scsi", "sas": "scsi"}.get(sel.get("transport"), "nvme")
        if kind not in BY_ID:
            raise ValueError(f"disk {name}: kind {kind!r}: want one of {', '.join(BY_ID)}")
        if kind == "sata" and counts.get("sata", 0) >= 4:
            kind = "scsi"  # the PIIX IDE controller has 4 slots
        n = counts.get(kind, 0)
        counts[kind] = n + 1
        picked.append((name, d, kind, n))
    sd_shared = counts.get("scsi", 0) > 0 and counts.get("sata", 0) > 0
    for name, d, kind, n in picked:
        serial = f"{kind.upper()}{n}"
        need = disk_need(doc, d)
        size = guest_size(need)
        sel = d.get("select")
        if sel is not None:
            new_sel = {"serial": serial}
            for k in ("transport", "rotational", "min_size", "max_size"):
                if k in sel:
                    new_sel[k] = sel[k]
            if "min_size" in sel:
                size = guest_size(max(need, parse_bytes(sel["min_size"])))
            d["select"] = new_sel
            mapping[name] = (f"select {json.dumps(sel, sort_keys=True)}", f"select {json.dumps(new_sel)}")
        else:
            old = d["device"]
            base = old.rsplit("/", 1)[-1]
            kernel = (old.startswith("/dev/") and old.count("/") == 2
                      and re.match(r"(sd|hd|vd|xvd)[a-z]+$", base))
            if kernel and kind == "virtio":
                new = "/dev/vd" + _letters(n)
            elif kernel and kind == "sata" and not sd_shared:
                new = "/dev/sd" + _letters(n)
            else:
                new = "/dev/disk/by-id/" + BY_ID[kind].format(serial)
            d["device"] = new
            mapping[name] = (old, new)
        specs.append(f"{kind}:{size}")
    return doc, specs, mapping


def _letters(n: int) -> str:
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(ord("a") + r) + s
    return s


# --- in the guest ------------------------------------------------------------------------------

def _target(root: str, mp: str) -> str:
    """Where a layout mountpoint or path is in the guest with the agent's --root."""
    root, mp = root.rstrip("/"), "/" + mp.strip("/")
    return (root or "/") if mp == "/" else root + mp


def mounts(doc: dict, root: str = "/") -> list:
    """[(target, where, content)] for every filesystem with a mountpoint and every nodev."""
    out = []
    for where, c in contents(doc):
        if _ctype(c) == "filesystem" and c.get("mountpoint"):
            out.append((_target(root, c["mountpoint"]), where, c))
    for key, n in sorted((doc.get("nodev") or {}).items()):
        n = n or {}
        out.append((_target(root, n.get("mountpoint") or key), ("nodev", key), n))
    return out


def guest_script(doc: dict, root: str = "/") -> str:
    """sh for the guest: reports the state the layout must have produced as DATA markers
    (keys `lc:…`). Needs lib.sh (data, data_cmd, data_text)."""
    q = shlex.quote
    lines = ["# layoutcheck: report what is there (vm-tests/harness/layoutcheck.py)",
             "udevadm settle -t 20 2>/dev/null"]
    refs = []
    for name, d in disks(doc):
        if d.get("device"):
            refs.append(f"{name}={d['device']}")
    sel = any((d.get("select") is not None) for _, d in disks(doc))
    lines.append("lc_disks() {")
    lines.append("  :")  # a body for a layout without disks (nodev only): `f() { }` is a syntax error
    for r in refs:
        name, path = r.split("=", 1)
        lines.append(f"  printf '%s\\t%s\\n' {q(name)} \"$(readlink -f {q(path)})\"")
    if sel:  # selectors mean what provision says they match
        lines.append("  provision --output json status 2>/dev/null | tr -d '\\n' | "
                     "grep -o '\"name\": *\"[^\"]*\", *\"reference\": *\"[^\"]*\"[^}]*\"device\": *\"[^\"]*\"' | "
                     "sed 's/\"name\": *\"\\([^\"]*\\)\".*\"device\": *\"\\([^\"]*\\)\"/\\1\\t\\2/'")
    lines.append("}")
    lines += [
        "data_text lc:disks lc_disks",
        "for d in $(lc_disks | cut -f2); do",
        "  [ -b \"$d\" ] || continue",
        "  data_cmd \"lc:sfdisk:$d\" sfdisk -J \"$d\"",
        "  data_cmd \"lc:sfdisk-dos:$d\" sfdisk -J --label-nested dos \"$d\"",
        "  data_text \"lc:size:$d\" blockdev --getsize64 \"$d\"",
        "done",
        "data_cmd lc:lsblk lsblk -J -b -o PATH,KNAME,PKNAME,MAJ:MIN,TYPE,SIZE",
        "lc_blkid() { for p in $(lsblk -rno PATH); do printf '%s\\t' \"$p\"; "
        "blkid -p -o export \"$p\" 2>/dev/null | grep -E '^(TYPE|LABEL|PTTYPE)=' | tr '\\n' '\\t'; echo; done; }",
        "data_text lc:blkid lc_blkid",
        "data_cmd lc:pvs pvs --reportformat json --units b --nosuffix -o pv_name,vg_name",
        "data_cmd lc:vgs vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size,pv_count",
        "data_cmd lc:lvs lvs -a --reportformat json --units b --nosuffix "
        "-o lv_name,vg_name,lv_size,segtype,pool_lv,lv_dm_path,lv_attr,stripes,data_stripes",
        "data_cmd lc:findmnt findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS,MAJ:MIN",
        "lc_swaps() { tail -n +2 /proc/swaps | while read -r n _ _ _ p; do "
        "printf '%s\\t%s\\t%s\\n' \"$n\" \"$p\" \"$(stat -L -c '%t:%T' \"$n\")\"; done; }",
        "data_text lc:swaps lc_swaps",
    ]
    dirs = [_target(root, x["path"]) for x in (doc.get("ensure_dirs") or []) if x.get("path")]
    if dirs:
        lines.append("data_text lc:dirs stat -c '%n\t%a\t%U\t%G\t%F' " + " ".join(q(x) for x in dirs))
    return "\n".join(lines) + "\n"


def canary_script(doc: dict, root: str, write: bool) -> str:
    """sh: write (boot 1) or check (later boots) a file on every mounted block filesystem, so a
    boot that formats again, or mounts something else there, is seen."""
    q = shlex.quote
    out = []
    for target, where, c in mounts(doc, root):
        if where[0] == "nodev":
            continue
        f = target.rstrip("/") + "/.vm-tests-canary"
        if write:
            write_it = f"printf '%s\\n' {q(target)} >{q(f)} && sync"
            out.append(f"check {q('canary written on ' + target)} sh -c {q(write_it)}")
        else:
            out.append(f"check_eq {q('canary kept on ' + target)} \"$(cat {q(f)} 2>&1)\" {q(target)}")
    return "\n".join(out) + ("\n" if out else "")


# --- comparing --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def type_guid(code: str) -> str:
    """The partition type GUID of an sgdisk type code, as gdisk's own table has it (sgdisk on a
    scratch image; a GUID is its own answer)."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", code):
        return code.upper()
    with tempfile.TemporaryDirectory() as d:
        img = Path(d) / "t.img"
        with open(img, "wb") as f:
            f.truncate(4 * MiB)
        r = subprocess.run(["sgdisk", "-o", "-n", "1:0:0", "-t", f"1:{code}", str(img)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"(sgdisk does not know type code {code})"
        out = subprocess.run(["sgdisk", "-i", "1", str(img)], capture_output=True, text=True).stdout
    m = re.search(r"Partition GUID code: (\S+)", out)
    return m.group(1).upper() if m else f"(sgdisk -i gave no GUID for {code})"


# parted's partition type for a gpt table entry (libparted gpt.c gpt_partition_set_system) and
# the type of an msdos entry (dos.c msdos_partition_set_system), from mkpart's fs-type.
LINUX_DATA = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_ATTRS = {0: "RequiredPartition", 1: "NoBlockIOProtocol", 2: "LegacyBIOSBootable"}


class Report:
    def __init__(self):
        self.results = []

    def eq(self, name, got, want):
        self.results.append({"name": name, "ok": got == want,
                             "detail": f"{got}" if got == want else f"got {got!r}, want {want!r}"})

    def ok(self, name, good, detail=""):
        self.results.append({"name": name, "ok": bool(good), "detail": str(detail)})


def _json(v):
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return None
    return v


def _tsv(text) -> list:
    return [ln.split("\t") for ln in (text or "").splitlines() if ln.strip()]


def compare(doc: dict, root: str, data: dict) -> list:
    """Results [{"name", "ok", "detail"}] of the guest's report (`data`, the DATA markers of
    guest_script) against the layout."""
    r = Report()
    resolved = {row[0]: row[1] for row in _tsv(data.get("lc:disks")) if len(row) > 1}
    lsblk = (_json(data.get("lc:lsblk")) or {}).get("blockdevices") or []
    by_path = {b.get("path"): b for b in lsblk}
    blkid = {}
    for row in _tsv(data.get("lc:blkid")):
        blkid[row[0]] = dict(x.split("=", 1) for x in row[1:] if "=" in x)
    lvs = [x for x in ((_json(data.get("lc:lvs")) or {}).get("report") or [{}])[0].get("lv", [])]
    vgs_r = {x["vg_name"]: x for x in ((_json(data.get("lc:vgs")) or {}).get("report") or [{}])[0].get("vg", [])}
    pvs_r = ((_json(data.get("lc:pvs")) or {}).get("report") or [{}])[0].get("pv", [])
    mnts = _flatten_mounts((_json(data.get("lc:findmnt")) or {}).get("filesystems") or [])
    swaps = _tsv(data.get("lc:swaps"))
    devs = {}  # where → kernel path of the block device

    def majmin(path):
        b = by_path.get(path) or {}
        return b.get("maj:min")

    # Disks and their tables.
    for dname, d in disks(doc):
        dev = resolved.get(dname) or ""
        r.ok(f"disk {dname} found", dev.startswith("/dev/") and dev in by_path,
             f"{d.get('device') or d.get('select')} -> {dev or 'nothing'}")
        if not dev:
            continue
        devs[("disk", dname)] = dev
        c = d.get("content") or {}
        t = _ctype(c)
        sf = (_json(data.get(f"lc:sfdisk:{dev}")) or {}).get("partitiontable")
        if t in ("gpt", "table"):
            if not sf:
                r.ok(f"{dname}: partition table", False, f"sfdisk -J {dev} read none")
                continue
            parts = {_partno(p["node"]): p for p in sf.get("partitions", [])}
            for n, p in parts.items():
                devs[("part", dname, n)] = p["node"]
            if t == "gpt":
                _check_gpt(r, dname, d, c, sf, parts, data.get(f"lc:sfdisk-dos:{dev}"))
            else:
                _check_table(r, dname, c, sf, parts, int(data.get(f"lc:size:{dev}") or 0))
        elif sf:
            r.ok(f"{dname}: no partition table on the whole-disk {t}", False,
                 f"{dev} has a {sf.get('label')} table")

    # LVM.
    # `lvs -a -o segtype,stripes` reports one row per segment: an LV over two PVs (or extended)
    # has several rows. lv_by keeps the LV's first row (its LV fields), segs every segment's.
    lv_by, segs = {}, {}
    for x in lvs:
        k = (x["vg_name"], x["lv_name"])
        lv_by.setdefault(k, x)
        segs.setdefault(k, []).append(x)
    pv_of = {}
    for where, c in contents(doc):
        if _ctype(c) == "lvm_pv":
            pv_of.setdefault(c.get("vg"), []).append(devs.get(where))
    for vname, vg in vgs(doc):
        o = vgs_r.get(vname)
        r.ok(f"VG {vname}", o is not None, "exists" if o else "not found by vgs")
        if o is None:
            continue
        want = sorted(x for x in pv_of.get(vname, []) if x)
        got = sorted(p["pv_name"] for p in pvs_r if p.get("vg_name") == vname)
        r.eq(f"VG {vname}: PVs", got, want)
        ext = int(o.get("vg_extent_size") or EXTENT)
        vg_size = int(o.get("vg_size") or 0)
        lvdefs = sorted((vg.get("lvs") or {}).items())
        got_names = sorted(n for v, n in lv_by if v == vname and not n.startswith("["))
        want_names = sorted(((lv or {}).get("name") or k) for k, lv in lvdefs)
        r.eq(f"VG {vname}: LVs", got_names, want_names)
        for key, lv in lvdefs:
            lv = lv or {}
            lname = lv.get("name") or key
            x = lv_by.get((vname, lname))
            if x is None:
                continue
            devs[("lv", vname, lname)] = x.get("lv_dm_path")
            ltype = lv.get("lvm_type") or "linear"
            want_seg = {"thinlv": "thin", "linear": "linear"}.get(ltype, ltype)
            # every segment must be of the layout's type (lvextend could add another kind)
            bad = [f"{y.get('segtype', '')} ({y.get('stripes')} stripes)"
                   for y in segs[(vname, lname)] if not _seg_ok(ltype, want_seg, y)]
            n = len(segs[(vname, lname)])
            r.ok(f"LV {vname}/{lname}: segment type {want_seg}", not bad,
                 f"segtype {x.get('segtype', '')}" + (f" ({n} segments)" if n > 1 else "")
                 if not bad else f"{len(bad)} of {n} segments: " + ", ".join(bad))
            if ltype == "thinlv":
                r.eq(f"LV {vname}/{lname}: in thin pool", x.get("pool_lv"), lv.get("pool"))
            _check_lv_size(r, f"LV {vname}/{lname}", str(lv.get("size", "")), int(x["lv_size"]),
                           ext, vg_size, x)
        if any(str((lv or {}).get("size", "")).upper() == "100%FREE" for _, lv in lvdefs):
            r.eq(f"VG {vname}: 100%FREE took the rest", int(o.get("vg_free") or 0), 0)

    # Filesystems, swap, mounts.
    for where, c in contents(doc):
        dev = devs.get(where)
        what = _where(where)
        t = _ctype(c)
        if t not in ("filesystem", "swap"):
            continue
        if not dev:
            r.ok(f"{what}: device", False, "not found (see the checks above)")
            continue
        probe = blkid.get(dev, {})
        if t == "filesystem":
            want = {"fat": "vfat", "fat32": "vfat", "msdos": "vfat"}.get(c.get("format"), c.get("format"))
            r.eq(f"{what}: filesystem", probe.get("TYPE"), want)
        else:
            r.eq(f"{what}: swap signature", probe.get("TYPE"), "swap")
        known, label = _label_arg(c)
        if label is not None:
            r.eq(f"{what}: label", probe.get("LABEL"), label)
        elif known:  # the layout names none and disko sets none
            r.ok(f"{what}: no label", not probe.get("LABEL"),
                 f"label {probe.get('LABEL')!r} (the layout's arguments set none)"
                 if probe.get("LABEL") else "none")
        if t == "swap":
            mm = majmin(dev)
            row = next((s for s in swaps if _hexmm(s[2]) == mm), None) if mm else None
            r.ok(f"{what}: swap on", row is not None, row[0] if row else f"{dev} not in /proc/swaps")
            if row and c.get("priority") is not None:
                r.eq(f"{what}: swap priority", int(row[1]), int(c["priority"]))
    for target, where, c in mounts(doc, root):
        m = mnts.get(target)
        what = f"mount {target}"
        r.ok(what, m is not None, m["source"] if m else "not mounted")
        if m is None:
            continue
        if where[0] == "nodev":
            want_t = c.get("fsType") or "tmpfs"
            r.eq(f"{what}: type", m["fstype"], want_t)
            fstype = want_t
            if c.get("device") and c.get("device") != "none":
                r.eq(f"{what}: source", m["source"], c["device"])
        else:
            dev = devs.get(where)
            r.eq(f"{what}: device", m["maj:min"], majmin(dev) if dev else None)
            fstype = m["fstype"]
        missing = [o for o in expected_options(fstype, c.get("mountOptions") or [])
                   if not _has_option(m["options"], o)]
        r.ok(f"{what}: options {','.join(c.get('mountOptions') or []) or '(none)'}", not missing,
             m["options"] if not missing else
             f"{m['options']} lacks {', '.join(map(str, missing))}")

    # ensure_dirs.
    stats = {row[0]: row for row in _tsv(data.get("lc:dirs"))}
    for x in doc.get("ensure_dirs") or []:
        p = _target(root, x["path"])
        row = stats.get(p)
        if row is None:
            r.ok(f"dir {p}", False, "missing")
            continue
        mode = int(str(x.get("mode", "0755")).replace("0o", ""), 8)
        r.eq(f"dir {p}", (row[4], f"{int(row[1], 8):04o}", row[2], row[3]),
             ("directory", f"{mode:04o}", x.get("owner", "root"), x.get("group", "root")))
    return r.results


def _seg_ok(ltype: str, want_seg: str, seg_row: dict) -> bool:
    """One `lvs` segment row against the layout's lvm_type: the same segment type (raid1 for
    raid1, raid0_meta… for raid0), or a one-stripe striped LV that lvm reports as linear."""
    seg = seg_row.get("segtype", "")
    return seg == want_seg or seg.startswith(want_seg + "_") or (
        ltype == "striped" and seg == "linear" and seg_row.get("stripes") in ("1", 1))


def _where(where) -> str:
    if where[0] == "part":
        return f"{where[1]} partition {where[2]}"
    if where[0] == "lv":
        return f"LV {where[1]}/{where[2]}"
    return f"disk {where[1]}"


def _partno(node: str) -> int:
    return int(re.search(r"(\d+)$", node).group(1))


def _hexmm(s: str) -> str:
    """stat's %t:%T (hex) → lsblk's maj:min (decimal)."""
    try:
        a, b = s.split(":")
        return f"{int(a, 16)}:{int(b, 16)}"
    except ValueError:
        return ""


def _flatten_mounts(fs: list) -> dict:
    """findmnt -J tree → {target: entry}; the last (topmost) mount wins."""
    out = {}

    def walk(items):
        for m in items:
            out[m["target"]] = m
            walk(m.get("children") or [])
    walk(fs)
    return out


# mkfs/mkswap's label flag per format (mkfs.fat -n, mkfs.f2fs -l, the others -L), as disko passes
# extraArgs through; the long spellings mkswap, mkfs.btrfs and mkfs.ntfs also take.
_LABEL_FLAG = {"vfat": "-n", "fat": "-n", "fat32": "-n", "msdos": "-n", "f2fs": "-l"}
_LABEL_LONG = ("--label",)


def _label_arg(c) -> tuple:
    """(known, label): the label the layout's mkfs/mkswap arguments give (-L; -n for vfat), or
    None when they give none. known is False when an argument may set a label in a way this
    does not read (an unparsable swap argument string, an unknown option naming a label): then
    an unnamed label is not held against the layout. disko itself sets no filesystem or swap
    label (lib/types/filesystem.nix, swap.nix: `mkfs.<format> <extraArgs>`, `mkswap <extraArgs>`)."""
    args = [str(a) for a in (c.get("extraArgs") or [])]
    if _ctype(c) == "swap":  # shell words (disko: toString)
        try:
            args = shlex.split(" ".join(args))
        except ValueError:
            return False, None
    flag = "-L" if _ctype(c) == "swap" else _LABEL_FLAG.get(c.get("format"), "-L")
    for i, a in enumerate(args):
        if a == flag or a in _LABEL_LONG:
            return True, (args[i + 1] if i + 1 < len(args) else None)
        if a.startswith(flag) and len(a) > 2:
            return True, a[2:]
        if a.startswith(tuple(x + "=" for x in _LABEL_LONG)):
            return True, a.split("=", 1)[1]
    known = not any("label" in a.lower() for a in args if a.startswith("-"))
    return known, None


class Default:
    """A mount option that is the kernel's default: its show_options leaves it out while it is
    in effect and prints one of `shown_if_not` (a name, or a `key=` prefix) when it is not."""

    def __init__(self, name: str, *shown_if_not: str):
        self.name, self.shown_if_not = name, shown_if_not

    def __repr__(self):
        return f"{self.name} (the default: none of {', '.join(self.shown_if_not)} shown)"


# Mount options that userspace (mount(8), systemd) consumes: the kernel never sees them.
_USERSPACE = {"defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users",
              "owner", "group", "sw", "x-systemd"}

# VFS defaults that /proc/self/mountinfo (fs/proc_namespace.c show_mnt_opts/show_sb_opts)
# shows only by their opposite. rw is not here: mountinfo always starts with rw or ro.
_VFS_DEFAULTS = {"async": ("sync",), "exec": ("noexec",), "suid": ("nosuid",),
                 "dev": ("nodev",)}

# Per filesystem, options on by default that its show_options leaves out while in effect,
# with what it prints when they are off.
# ext2/3/4 (fs/ext4/super.c _ext4_show_options): an option is printed only when it differs
#   from s_def_mount_opt, which has user_xattr and acl (on by default since 2.6.39), barrier,
#   delalloc, auto_da_alloc, dioread_nolock.
# tmpfs (mm/shmem.c shmem_show_options): mode only if not 1777, uid/gid only if not 0, size
#   only if not the default half of RAM, huge only if not never, mpol only if not default.
# vfat (fs/fat/inode.c fat_show_options): uid/gid only if not 0.
_EXT = {"acl": ("noacl",), "user_xattr": ("nouser_xattr",),
        "barrier": ("nobarrier", "barrier=0"), "barrier=1": ("nobarrier", "barrier=0"),
        "delalloc": ("nodelalloc",), "auto_da_alloc": ("noauto_da_alloc",),
        "dioread_nolock": ("dioread_lock",)}
_FS_DEFAULTS = {
    "ext2": _EXT, "ext3": _EXT, "ext4": _EXT,
    "tmpfs": {"mode=1777": ("mode=",), "mode=01777": ("mode=",), "uid=0": ("uid=",),
              "gid=0": ("gid=",), "size=50%": ("size=",), "huge=never": ("huge=",),
              "mpol=default": ("mpol=",)},
    "vfat": {"uid=0": ("uid=",), "gid=0": ("gid=",)},
}


def expected_options(fstype: str, opts: list) -> list:
    """What /proc/self/mountinfo (findmnt OPTIONS) must show for the layout's mountOptions, in
    the kernel's spelling: rw unless the layout says ro, vfat's umask=N as fmask/dmask, xfs
    quota names, tmpfs size= in k and mode= as %03o. Each item is an option, a tuple of
    acceptable spellings, or a Default (the kernel's default, not shown while in effect)."""
    out = []
    opts = [str(o) for o in opts]
    defaults = dict(_VFS_DEFAULTS, **_FS_DEFAULTS.get(fstype, {}))
    for o in opts:
        k, _, v = o.partition("=")
        if o in _USERSPACE or o in ("rw", "ro") or o.startswith(("x-", "comment=")):
            continue
        if o in defaults:
            out.append(Default(o, *defaults[o]))
        elif fstype == "vfat" and k == "umask":
            n = f"{int(v, 8):04o}"
            out += [f"fmask={n}", f"dmask={n}"]
        elif fstype == "xfs" and o in ("pquota", "prjquota", "pqnoenforce"):
            out.append("prjquota")
        elif fstype == "xfs" and o in ("uquota", "usrquota", "quota", "uqnoenforce"):
            out.append("usrquota")
        elif fstype == "xfs" and o in ("gquota", "grpquota", "gqnoenforce"):
            out.append("grpquota")
        elif fstype == "tmpfs" and k in ("size", "nr_inodes") and not v.endswith("%"):
            b = parse_bytes(v)
            out.append((f"{k}={b // 1024}k", f"{k}={b}") if k == "size" else o)
        elif fstype == "tmpfs" and k == "mode":
            m = int(v, 8)
            out.append(Default(o, "mode=") if m == 0o1777 else f"mode={m:03o}")
        elif k in ("size",) and v.endswith("%"):
            out.append(("size=",))  # a share of RAM: present, in the kernel's own unit
        else:
            out.append(o)
    # the last of rw/ro wins (mount(8)); "defaults" means rw
    last = [o for o in opts if o in ("rw", "ro")]
    out.insert(0, last[-1] if last else "rw")
    return out


def _has_option(options: str, want) -> bool:
    have = options.split(",")

    def shown(a):
        return any(h.startswith(a) for h in have) if a.endswith("=") else a in have
    if isinstance(want, Default):
        return not any(shown(a) for a in want.shown_if_not)
    alts = want if isinstance(want, tuple) else (want,)
    return any(shown(a) for a in alts)


def _check_gpt(r: Report, dname, d, c, sf, parts, dos_json):
    disk_label = d.get("name") or dname.replace("/", "_")
    want = gpt_partitions(disk_label, c)
    r.eq(f"{dname}: table", sf.get("label"), "gpt")
    r.eq(f"{dname}: partition numbers", sorted(parts), [p["number"] for p in want])
    ss = int(sf.get("sectorsize") or 512)
    last = int(sf.get("lastlba") or 0)
    for p in want:
        got = parts.get(p["number"])
        what = f"{dname} partition {p['number']} ({p['key']})"
        if got is None:
            continue
        r.eq(f"{what}: GPT name", got.get("name", ""), p["label"])
        r.eq(f"{what}: type", got.get("type", "").upper(), type_guid(p["type"]))
        attrs = set((got.get("attrs") or "").split())
        want_attrs = {GPT_ATTRS.get(b, f"GUID:{b}") for b in p["attributes"]}
        r.eq(f"{what}: attributes", sorted(attrs), sorted(want_attrs))
        if p["uuid"]:
            r.eq(f"{what}: uuid", got.get("uuid", "").upper(), p["uuid"].upper())
        start, size = int(got["start"]) * ss, int(got["size"]) * ss
        end = start + size  # exclusive
        detail = f"start {start} size {size} (bytes)"
        sector_units = p["start"].endswith("s") or p["end"].endswith("s")
        if not sector_units:
            r.ok(f"{what}: starts on a MiB boundary", start % MiB == 0, detail)
        if p["size"] not in ("0", "100%"):
            want_b = parse_bytes(p["size"])
            # sgdisk counts +SIZE from the asked start (≤ SIZE after aligning), provision from
            # the aligned one (exactly SIZE): both are right
            r.ok(f"{what}: size {p['size']}", want_b - MiB < size <= want_b, detail)
        e = p["end"]
        if p["size"] == "100%" or e in ("-0", "0"):
            r.ok(f"{what}: reaches the end of the disk", 0 <= (last + 1) * ss - end < MiB,
                 f"{detail}; last usable byte {(last + 1) * ss}")
        elif e.startswith("-"):
            gap = (last + 1) * ss - end
            want_gap = _pos_bytes(e)
            r.ok(f"{what}: ends {e[1:]} before the end", want_gap <= gap < want_gap + MiB,
                 f"{detail}; {gap} bytes after it")
        elif not e.startswith("+"):
            want_end = _pos_bytes(e)
            r.ok(f"{what}: ends at {e}", want_end - MiB < end <= want_end + ss, detail)
        s = p["start"]
        if s not in ("0",) and not s.startswith(("+", "-")):
            want_s = _pos_bytes(s)
            r.ok(f"{what}: starts at {s}", want_s <= start < want_s + MiB, detail)
    hybrid = [p for p in want if p["hybrid"] is not None]
    if hybrid:
        dos = (_json(dos_json) or {}).get("partitiontable") or {}
        entries = dos.get("partitions") or []
        types = [e.get("type", "").lower().lstrip("0") or "0" for e in entries]
        want_types = []
        for p in hybrid:
            mt = (p["hybrid"] or {}).get("mbrPartitionType")
            want_types.append(mt.lower().replace("0x", "").lstrip("0") if mt else None)
        first = c.get("efiGptPartitionFirst", True)
        r.eq(f"{dname}: hybrid MBR entries", len(entries), len(hybrid) + 1)
        pos = [i for i, t in enumerate(types) if t == "ee"]
        r.eq(f"{dname}: hybrid MBR protective 0xEE entry", pos, [0 if first else len(hybrid)])
        rest = [e for e, t in zip(entries, types) if t != "ee"]
        for p, e, wt in zip(hybrid, rest, want_types):
            got = parts.get(p["number"]) or {}
            what = f"{dname}: hybrid MBR entry for partition {p['number']}"
            r.eq(f"{what}: place", (int(e["start"]), int(e["size"])),
                 (int(got.get("start", -1)), int(got.get("size", -1))))
            if wt is not None:
                r.eq(f"{what}: type", e.get("type", "").lower().lstrip("0"), wt)
            r.eq(f"{what}: bootable", bool(e.get("bootable")),
                 bool((p["hybrid"] or {}).get("mbrBootableFlag")))


def hex_escape_udev(name: str) -> str:
    """disko's lib `hexEscapeUdevSymlink`: bytes outside [0-9A-Za-z#+-.:=@_/] (`+-.` a range)
    as \\x and Nix toHexString's digits (upper case, no leading zero)."""
    ok = set(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#+,-./:=@_")
    return "".join(chr(b) if b in ok else f"\\x{b:X}" for b in name.encode())


def _parted_pos(pos: str, disk: int) -> tuple:
    """A parted position → (bytes from the disk's start, fuzz in bytes) (parted(8) units: SI
    MB etc. with ±half a unit, IEC exact, % of the disk, a leading - from the end)."""
    pos = pos.strip()
    neg = pos.startswith("-")
    pos = pos.lstrip("-")
    m = re.fullmatch(r"([0-9.]+)\s*([a-zA-Z%]*)", pos)
    if not m:
        raise ValueError(pos)
    n, unit = float(m.group(1)), m.group(2)
    si = {"": 10**6, "b": 1, "kb": 10**3, "k": 10**3, "mb": 10**6, "m": 10**6, "gb": 10**9,
          "g": 10**9, "tb": 10**12, "t": 10**12}
    iec = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
    u = unit.lower()
    if u == "%":
        b, fuzz = n * disk / 100, disk // 200
    elif u == "s":
        b, fuzz = n * 512, 0
    elif u in iec:
        b, fuzz = n * iec[u], 0
    else:
        b, fuzz = n * si[u], si[u] // 2
    return (disk - int(b) if neg else int(b)), fuzz


def _check_table(r: Report, dname, c, sf, parts, disk_bytes):
    fmt = c.get("format", "gpt")
    want = table_partitions(c)
    r.eq(f"{dname}: table", sf.get("label"), "dos" if fmt == "msdos" else "gpt")
    r.eq(f"{dname}: partition numbers", sorted(parts), [p["number"] for p in want])
    ss = int(sf.get("sectorsize") or 512)
    for p in want:
        got = parts.get(p["number"])
        what = f"{dname} partition {p['number']}" + (f" ({p['name']})" if p["name"] else "")
        if got is None:
            continue
        start, size = int(got["start"]) * ss, int(got["size"]) * ss
        end = start + size
        detail = f"start {start} size {size} (bytes)"
        try:
            ws, fs = _parted_pos(p["start"], disk_bytes)
            we, fe = _parted_pos(p["end"], disk_bytes)
        except (ValueError, KeyError):
            r.ok(f"{what}: place", False, f"cannot read start {p['start']!r} / end {p['end']!r}")
            continue
        # parted aligns to the grain (1 MiB) within the fuzz, else places as asked
        r.ok(f"{what}: starts at {p['start']}", ws - fs - MiB <= start <= ws + fs + MiB, detail)
        r.ok(f"{what}: ends at {p['end']}", we - fe - MiB <= end <= we + fe + MiB, detail)
        if fmt == "gpt":
            if p["name"] is not None:  # what parted stores of `mkpart "<escaped name>"`
                r.eq(f"{what}: GPT name", got.get("name", ""), hex_escape_udev(p["name"]))
            # parted on gpt: the boot flag makes it an ESP, else Linux data (libparted gpt.c);
            # an LVM PV or swap may carry its own type as on a disko gpt partition
            want_t = [ESP] if p["bootable"] else [LINUX_DATA]
            if not p["bootable"] and _ctype(p["content"]) in ("lvm_pv", "swap"):
                want_t.append(type_guid("8E00" if _ctype(p["content"]) == "lvm_pv" else "8200"))
            t = got.get("type", "").upper()
            r.ok(f"{what}: type", t in want_t, f"{t}, want {' or '.join(want_t)}")
        else:
            r.eq(f"{what}: bootable", bool(got.get("bootable")), p["bootable"])


def _check_lv_size(r: Report, what, size: str, got: int, ext: int, vg_size: int, x: dict):
    s = size.strip().upper()
    if not s:
        return
    m = re.fullmatch(r"([0-9.]+)%(VG|FREE|PVS|ORIGIN)?", s)
    if m:
        pct, of = float(m.group(1)), m.group(2) or "VG"
        if of == "VG":
            want = pct * vg_size / 100
            r.ok(f"{what}: size {size}", abs(got - want) <= 2 * ext + vg_size / 100,
                 f"{got} bytes of a {vg_size}-byte VG")
        else:
            r.ok(f"{what}: size {size}", got > 0, f"{got} bytes")
        return
    want = parse_bytes(size, "M")
    stripes = max(1, int(x.get("data_stripes") or x.get("stripes") or 1))
    grain = ext * stripes
    want_r = -(-want // grain) * grain
    r.ok(f"{what}: size {size}", want <= got <= want_r,
         f"{got} bytes, want {want} rounded up to extents ({want_r})")
