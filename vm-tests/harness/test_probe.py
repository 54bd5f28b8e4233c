"""Self-tests of the host side of `vm-tests/run probe` and the layout checker, without a VM:
`python3 -m unittest discover -s vm-tests -p 'test_*.py'` (standard library only).

The guest data here is in the shape the guest script reports it (DATA markers of
layoutcheck.guest_script), cut down from real probe reports."""

import json
import shutil
import subprocess
import unittest

from harness import layoutcheck as lc
from harness import runner


def _findmnt(target, fstype, options, source="none", majmin="0:40"):
    return json.dumps({"filesystems": [{"target": target, "source": source, "fstype": fstype,
                                        "options": options, "maj:min": majmin}]})


def _failed(results):
    return [(r["name"], r["detail"]) for r in results if not r["ok"]]


class GuestScript(unittest.TestCase):
    @unittest.skipUnless(shutil.which("sh"), "no sh")
    def test_layouts_without_disks_give_valid_sh(self):
        for doc in ({"nodev": {"/tmp": {"fsType": "tmpfs"}}}, {"disk": {}, "nodev": {}}):
            script = lc.guest_script(doc)
            r = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
            self.assertEqual(r.returncode, 0, f"{r.stderr}\n{script}")


class Lvm(unittest.TestCase):
    DOC = {"lvm_vg": {"data": {"type": "lvm_vg", "lvs": {
        "small": {"size": "200M"}, "big": {"size": "100%FREE"}}}}}

    def data(self, big_segments):
        seg = {"vg_name": "data", "lv_name": "big", "lv_size": str(1840 << 20), "pool_lv": "",
               "lv_dm_path": "/dev/mapper/data-big", "stripes": "1", "data_stripes": "1"}
        lvs = [dict(seg, segtype=t) for t in big_segments]
        lvs.append({"vg_name": "data", "lv_name": "small", "lv_size": str(200 << 20),
                    "segtype": "linear", "pool_lv": "", "lv_dm_path": "/dev/mapper/data-small",
                    "stripes": "1", "data_stripes": "1"})
        return {"lc:vgs": json.dumps({"report": [{"vg": [{
                    "vg_name": "data", "vg_size": str(2040 << 20), "vg_free": "0",
                    "vg_extent_size": str(4 << 20), "pv_count": "2"}]}]}),
                "lc:lvs": json.dumps({"report": [{"lv": lvs}]}),
                "lc:pvs": json.dumps({"report": [{"pv": []}]})}

    def test_an_lv_over_two_pvs_is_one_lv(self):
        self.assertEqual(_failed(lc.compare(self.DOC, "/", self.data(["linear", "linear"]))), [])

    def test_every_segment_has_the_layouts_type(self):
        bad = _failed(lc.compare(self.DOC, "/", self.data(["linear", "striped"])))
        self.assertEqual([n for n, _ in bad], ["LV data/big: segment type linear"])

    def test_an_extra_lv_still_fails(self):
        d = self.data(["linear"])
        lvs = json.loads(d["lc:lvs"])
        lvs["report"][0]["lv"].append(dict(lvs["report"][0]["lv"][0], lv_name="intruder"))
        d["lc:lvs"] = json.dumps(lvs)
        self.assertIn("VG data: LVs", [n for n, _ in _failed(lc.compare(self.DOC, "/", d))])


class MountOptions(unittest.TestCase):
    def check(self, fstype, opts, shown):
        doc = {"nodev": {"/scratch": {"fsType": fstype, "mountOptions": opts}}}
        return _failed(lc.compare(doc, "/", {"lc:findmnt": _findmnt("/scratch", fstype, shown)}))

    def test_tmpfs_defaults_are_not_shown(self):
        self.assertEqual(self.check("tmpfs", ["size=64M", "mode=1777", "uid=0"],
                                    "rw,relatime,size=65536k,inode64"), [])
        self.assertEqual(self.check("tmpfs", ["size=50%", "mode=01777"], "rw,relatime,inode64"),
                         [])

    def test_tmpfs_mode_other_than_the_default(self):
        self.assertEqual(self.check("tmpfs", ["mode=0755"], "rw,relatime,mode=755,inode64"), [])
        self.assertEqual(self.check("tmpfs", ["mode=0070"], "rw,relatime,mode=070,inode64"), [])
        self.assertTrue(self.check("tmpfs", ["mode=1777"], "rw,relatime,mode=755,inode64"))
        self.assertTrue(self.check("tmpfs", ["mode=755"], "rw,relatime,inode64"))

    def test_rw_unless_the_layout_says_ro(self):
        self.assertTrue(self.check("tmpfs", [], "ro,relatime,inode64"))
        self.assertTrue(self.check("tmpfs", ["defaults"], "ro,relatime,inode64"))
        self.assertEqual(self.check("tmpfs", ["ro"], "ro,relatime,inode64"), [])
        self.assertTrue(self.check("tmpfs", ["ro"], "rw,relatime,inode64"))

    def test_ext4_defaults(self):
        want = lc.expected_options("ext4", ["defaults", "noatime", "user_xattr", "acl",
                                            "errors=remount-ro"])
        shown = "rw,noatime,errors=remount-ro"
        self.assertTrue(all(lc._has_option(shown, w) for w in want), want)
        self.assertFalse(all(lc._has_option("rw,noatime,noacl,errors=remount-ro", w)
                             for w in want))
        self.assertFalse(all(lc._has_option("rw,errors=remount-ro", w) for w in want))

    def test_vfs_defaults_fail_by_their_opposite(self):
        want = lc.expected_options("xfs", ["exec", "suid"])
        self.assertTrue(all(lc._has_option("rw,relatime", w) for w in want))
        self.assertFalse(all(lc._has_option("rw,noexec,relatime", w) for w in want))


class Labels(unittest.TestCase):
    def test_label_args(self):
        cases = [
            ({"type": "filesystem", "format": "ext4", "extraArgs": ["-L", "x"]}, (True, "x")),
            ({"type": "filesystem", "format": "xfs", "extraArgs": ["-n", "ftype=1"]},
             (True, None)),
            ({"type": "filesystem", "format": "vfat", "extraArgs": ["-n", "ESP"]},
             (True, "ESP")),
            ({"type": "filesystem", "format": "btrfs", "extraArgs": ["--label=b"]}, (True, "b")),
            ({"type": "swap", "extraArgs": ["-L sw"]}, (True, "sw")),
            ({"type": "filesystem", "format": "bcachefs", "extraArgs": ["--fs_label=z"]},
             (False, None)),
            ({"type": "filesystem", "format": "ext4"}, (True, None)),
        ]
        for c, want in cases:
            self.assertEqual(lc._label_arg(c), want, c)


class Map(unittest.TestCase):
    def test_unknown_kind(self):
        doc = {"disk": {"a": {"type": "disk", "device": "/dev/sda"}}}
        with self.assertRaises(ValueError):
            lc.map_to_guest(doc, ["floppy"])


class Probe(unittest.TestCase):
    def test_provision_request(self):
        for line, want in [("", None), ("homelab.provision_disks", True),
                           ("quiet homelab.provision-disks=1", True),
                           ("homelab.provision_disks=off", None),
                           ("homelab.provision_disks=tok1 x", "tok1"),
                           ("homelab.provision_disks=tok1 homelab.provision_disks=no", None)]:
            self.assertEqual(runner.provision_request(line), want, line)

    def test_provisions_again(self):
        t = "homelab.provision_disks=t1"
        self.assertEqual(runner.provisions_again(t, ""), "")
        self.assertEqual(runner.provisions_again(t, t), "")
        self.assertTrue(runner.provisions_again(t, "homelab.provision_disks=t2"))
        self.assertTrue(runner.provisions_again(t, "homelab.provision_disks=true"))

    def test_boot_failures(self):
        j = {"results": [{"name": "a", "ok": True}, {"name": "deliberately false", "ok": False,
                                                       "detail": "exit 1"},
                         {"name": "check script", "ok": False, "detail": "exited 2"}],
             "layout_checks": [{"name": "mount /", "ok": False, "detail": "not mounted"}],
             "units": {"provision-disks.service": {"LoadState": "loaded",
                                                   "ActiveState": "failed",
                                                   "Result": "exit-code", "ExecMainStatus": 5},
                       "provision-keys.service": {"LoadState": "loaded",
                                                  "ActiveState": "active", "Result": "success"}}}
        bad = runner.boot_failures(j)
        self.assertEqual(len(bad), 4, bad)
        self.assertTrue(bad[-1].startswith("unit provision-disks.service"))

    def test_stage_errors(self):
        rep = {"stages": [{"stage": "disks", "outcome": "failed", "exit_code": 5,
                           "error": "step 27/31: mounting x on /"},
                          {"stage": "keys", "outcome": "ok", "exit_code": 0, "error": None}]}
        self.assertEqual(runner.stage_errors({"report": json.dumps(rep)}),
                         ["stage disks (failed, exit 5): step 27/31: mounting x on /"])


if __name__ == "__main__":
    unittest.main()
