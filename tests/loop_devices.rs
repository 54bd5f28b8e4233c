//! Tier 2: the real binary provisioning and mounting a real block device (a loop device with
//! partition scanning) under a temporary `--root`. No LVM here (the host may lack device-mapper:
//! the VM tests cover LVM); GPT, mkfs, mount(2), swapon, ensure_dirs, idempotence, and the
//! foreign-disk refusal leaving the device byte-identical.
//!
//! Needs root, losetup, sgdisk, mkfs.ext4, mkswap; skips cleanly (saying why) where the machine
//! cannot do it.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/prom.rs"]
mod prom;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_provision"))
}

fn sh(cmd: &str) -> (i32, String) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in ["losetup", "sgdisk", "mkfs.ext4", "mkswap", "wipefs"] {
        if provision::system::resolve_tool(tool).is_none() {
            return Some(format!("{tool} not installed"));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control".into());
    }
    None
}

/// A loop device over a sparse image, detached (and everything on it unmounted) on drop.
struct Loop {
    dev: String,
    image: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Loop {
    fn new(size_mb: u64) -> Option<Loop> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(size_mb << 20)
            .unwrap();
        let (rc, out) = sh(&format!("losetup -P --show -f {}", image.display()));
        if rc != 0 {
            eprintln!("SKIP: losetup failed: {out}");
            return None;
        }
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nsvc:x:4242:4343::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nsvc:x:4343:\n").unwrap();
        Some(Loop {
            dev: out.trim().to_string(),
            image,
            root,
            _dir: dir,
        })
    }

    fn run(&self, layout: &Path, cmdline: &str, extra: &[&str]) -> (i32, String) {
        let (rc, out, err) = self.run3(layout, cmdline, extra);
        (rc, out + &err)
    }

    /// (exit code, stdout, stderr)
    fn run3(&self, layout: &Path, cmdline: &str, extra: &[&str]) -> (i32, String, String) {
        let mut c = Command::new(bin());
        c.arg("--layout")
            .arg(layout)
            .arg("--root")
            .arg(&self.root)
            .arg("--cmdline")
            .arg(cmdline);
        c.args(extra).arg("disks");
        let o = c.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    }

    fn cleanup_mounts(&self) {
        let root = self.root.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut targets: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|t| t.starts_with(&root))
            .map(String::from)
            .collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
        for t in targets {
            sh(&format!("umount {t}"));
        }
        sh(&format!("swapoff {}p2 2>/dev/null", self.dev));
    }

    fn sha(&self) -> String {
        sh(&format!("sha256sum {}", self.image.display())).1
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.cleanup_mounts();
        sh(&format!("losetup -d {}", self.dev));
    }
}

fn layout(l: &Loop) -> PathBuf {
    let p = l.root.parent().unwrap().join("layout.yaml");
    std::fs::write(
        &p,
        format!(
            "disk:\n  data:\n    type: disk\n    device: {}\n    content:\n      type: gpt\n      partitions:\n        \
             main:\n          size: 24M\n          content: {{ type: filesystem, format: ext4, mountpoint: /data, mountOptions: [noatime, nodev] }}\n        \
             swap:\n          size: 8M\n          content: {{ type: swap }}\n        \
             rest:\n          size: 100%\n          content: {{ type: filesystem, format: ext4, mountpoint: /data/rest }}\n\
             nodev:\n  /scratch:\n    fsType: tmpfs\n    mountOptions: [size=4M, mode=0700]\n\
             ensure_dirs:\n  - {{ path: /data/svc, owner: svc, group: svc, mode: \"0750\" }}\n",
            l.dev
        ),
    )
    .unwrap();
    p
}

/// The disks stage's metrics file, read by Prometheus's parser, checked against the run's exit
/// code, the layout's hash and the plan's mode; (steps done, already done, destructive, last
/// success time). None when the parser is not installed.
fn disks_metrics(
    l: &Loop,
    exit_code: i32,
    hash: &str,
    mode: &str,
) -> Option<(f64, f64, f64, Option<f64>)> {
    let py = prom::parser().ok()?;
    let fams = prom::parse(
        &py,
        &l.root.join("run/provision/metrics/provision_disks.prom"),
    );
    let last = prom::check_stage(&fams, "disks", exit_code, Some(hash));
    for m in ["mount-only", "provision", "refused"] {
        let want = if m == mode { 1.0 } else { 0.0 };
        assert_eq!(
            prom::value(&fams, "provision_disks_mode", &[("mode", m)]),
            Some(want),
            "{m}"
        );
    }
    let n = |f: &str| prom::value(&fams, f, &[]).unwrap();
    Some((
        n("provision_disks_steps_done"),
        n("provision_disks_steps_already_done"),
        n("provision_disks_steps_destructive"),
        last,
    ))
}

fn mounted(target: &Path) -> Option<String> {
    let t = target.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(t.as_str()))
        .map(String::from)
}

#[test]
fn provision_then_mount_only_on_a_loop_device() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP provision_then_mount_only_on_a_loop_device: {why}");
        return;
    }
    let Some(l) = Loop::new(64) else { return };
    let lay = layout(&l);
    if let Err(why) = prom::parser() {
        eprintln!("SKIP (the metrics checks only): {why}");
    }
    // The layout's hash, from a dry run (which writes no metrics).
    let (_, plan, _) = l.run3(&lay, "quiet", &["--dry-run", "--output", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let hash = plan["layout_hash"].as_str().unwrap().to_string();
    assert!(!l.root.join("run/provision/metrics").exists());

    // Without the flag on a blank disk: mount-only, which fails naming what is missing.
    let (rc, out) = l.run(&lay, "quiet", &[]);
    assert_eq!(rc, 9, "{out}");
    assert!(out.contains("partition 1 (main) does not exist"), "{out}");
    if let Some(m) = disks_metrics(&l, 9, &hash, "mount-only") {
        assert_eq!(m, (0.0, 0.0, 0.0, None), "never succeeded: no last success");
    }

    // Provision.
    let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &[]);
    assert_eq!(rc, 0, "{out}");
    if let Some((done, already, destructive, last)) = disks_metrics(&l, 0, &hash, "provision") {
        assert!(
            destructive >= 4.0 && done > destructive,
            "{done} {destructive}"
        );
        assert_eq!(already, 0.0);
        assert!(last.is_some());
    }
    let (_, parts) = sh(&format!("sgdisk -p {}", l.dev));
    assert!(
        parts.contains("disk-data-main")
            && parts.contains("disk-data-swap")
            && parts.contains("disk-data-rest"),
        "{parts}"
    );
    let (_, fs) = sh(&format!(
        "blkid -o value -s TYPE {}p1 {}p2 {}p3",
        l.dev, l.dev, l.dev
    ));
    assert_eq!(
        fs.split_whitespace().collect::<Vec<_>>(),
        ["ext4", "swap", "ext4"],
        "{fs}"
    );
    let m = mounted(&l.root.join("data")).expect("data mounted");
    assert!(
        m.contains("noatime") && m.contains("nodev") && m.contains(" - ext4 "),
        "{m}"
    );
    assert!(mounted(&l.root.join("data/rest")).is_some());
    assert!(mounted(&l.root.join("scratch"))
        .unwrap()
        .contains(" - tmpfs "));
    assert!(std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .contains(&format!("{}p2", l.dev)));
    let md = std::fs::metadata(l.root.join("data/svc")).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (md.uid(), md.gid(), md.permissions().mode() & 0o7777),
        (4242, 4343, 0o750)
    );
    assert!(
        std::fs::read_to_string(l.root.join("etc/lvm/lvmlocal.conf"))
            .unwrap()
            .contains("global_filter")
    );
    let rep = std::fs::read_to_string(l.root.join("run/provision/report.json")).unwrap();
    assert!(
        rep.contains("\"stage\": \"disks\"") && rep.contains("\"outcome\": \"ok\""),
        "{rep}"
    );
    std::fs::write(l.root.join("data/keep.txt"), "precious").unwrap();

    // Same boot again without the flag: idempotent, nothing touched.
    let (rc, out) = l.run(&lay, "", &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("already mounted") && out.contains("already on"),
        "{out}"
    );
    if let Some((done, already, destructive, _)) = disks_metrics(&l, 0, &hash, "mount-only") {
        assert!(
            already > 0.0 && destructive == 0.0,
            "{already} {destructive}"
        );
        assert!(done > 0.0, "device waits count as carried out: {done}");
    }
    // The report says so step by step: the second run changed nothing it did not have to
    // (waits count as carried out).
    let rep: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(l.root.join("run/provision/report.json")).unwrap(),
    )
    .unwrap();
    let disks = rep["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "disks")
        .unwrap();
    let outcomes = disks["details"]["outcomes"].as_array().unwrap();
    let steps = disks["details"]["actions"].as_array().unwrap();
    assert_eq!(outcomes.len(), steps.len(), "{disks}");
    for o in outcomes {
        let op = &steps[o["step"].as_u64().unwrap() as usize - 1]["op"];
        let want = if op == "wait-device" {
            "changed"
        } else {
            "already-done"
        };
        assert_eq!(o["outcome"], want, "{op}: {o}");
    }

    // "Reboot": unmount everything, run mount-only: the data is still there.
    l.cleanup_mounts();
    assert!(mounted(&l.root.join("data")).is_none());
    let (rc, out) = l.run(&lay, "", &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(l.root.join("data/keep.txt")).unwrap(),
        "precious"
    );
    let last_success = disks_metrics(&l, 0, &hash, "mount-only").and_then(|m| m.3);

    // A token needs an LVM VG to be recorded on: refused, nothing touched.
    l.cleanup_mounts();
    let before = l.sha();
    let (rc, out) = l.run(&lay, "homelab.provision_disks=tok1", &[]);
    assert_eq!(rc, 4, "{out}");
    assert_eq!(
        l.sha(),
        before,
        "a refusal must leave the disk byte-identical"
    );
    if let Some(m) = disks_metrics(&l, 4, &hash, "refused") {
        assert_eq!(m, (0.0, 0.0, 0.0, last_success), "the last success is kept");
    }
}

#[test]
fn foreign_disk_by_kernel_name_is_refused_byte_identical() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP foreign_disk_by_kernel_name_is_refused_byte_identical: {why}");
        return;
    }
    let Some(l) = Loop::new(64) else { return };
    let lay = layout(&l);
    let (rc, out) = sh(&format!("mkfs.ext4 -q -F -L precious {}", l.dev));
    assert_eq!(rc, 0, "{out}");
    sh("sync");
    let before = l.sha();
    for cmdline in [
        "homelab.provision_disks=true",
        "homelab.provision_disks=maybe",
        "homelab.provision_disks=true homelab.wipe_foreign=other",
    ] {
        let (rc, out) = l.run(&lay, cmdline, &[]);
        assert!(rc == 4 || rc == 3, "{cmdline}: {out}");
        assert_eq!(l.sha(), before, "{cmdline}: the disk changed");
    }
    let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &["--dry-run"]);
    assert_eq!(rc, 4, "{out}");
    assert!(
        out.contains("ext4 filesystem \"precious\"") && out.contains("REFUSED"),
        "{out}"
    );
    // --plan-hash guards a reviewed plan: a wrong hash refuses, the reviewed one proceeds.
    let (rc, out, err) = l.run3(
        &lay,
        "homelab.provision_disks=true homelab.wipe_foreign=data",
        &["--dry-run", "--output", "json"],
    );
    assert_eq!(rc, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hash = v["plan_hash"].as_str().unwrap_or_default().to_string();
    assert_eq!(hash.len(), 16, "{out}");
    assert!(
        v["destroys"][0]
            .as_str()
            .unwrap_or_default()
            .contains("WILL BE DESTROYED"),
        "{out}"
    );
    let (rc, out) = l.run(
        &lay,
        "homelab.provision_disks=true homelab.wipe_foreign=data",
        &["--plan-hash", "0000000000000000"],
    );
    assert_eq!(rc, 4, "{out}");
    assert_eq!(l.sha(), before);
    let (rc, out) = l.run(
        &lay,
        "homelab.provision_disks=true homelab.wipe_foreign=data",
        &["--plan-hash", &hash],
    );
    assert_eq!(rc, 0, "{out}");
    let (_, fs) = sh(&format!("blkid -o value -s TYPE {}p1", l.dev));
    assert_eq!(fs.trim(), "ext4");
}

#[test]
fn interrupted_provision_converges_and_never_formats_without_the_flag() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP interrupted_provision_converges_and_never_formats_without_the_flag: {why}");
        return;
    }
    let Some(l) = Loop::new(64) else { return };
    let lay = layout(&l);
    // Cut the run off at every step of the plan in turn (abort, as a power cut looks to the
    // program), then: a boot without the flag formats nothing; the same flag converges.
    let (_, out, _) = l.run3(
        &lay,
        "homelab.provision_disks=true",
        &["--dry-run", "--output", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = v["actions"].as_array().unwrap().len();
    assert!(steps > 10, "{out}");
    for step in [2, 4, 6, steps / 2, steps - 3] {
        let mut c = Command::new(bin());
        c.env("PROVISION_FAILPOINT", format!("{step}+"));
        c.arg("--layout")
            .arg(&lay)
            .arg("--root")
            .arg(&l.root)
            .arg("--cmdline")
            .arg("homelab.provision_disks=true")
            .arg("disks");
        let o = c.output().unwrap();
        assert!(
            !o.status.success(),
            "step {step}: the failpoint did not fire"
        );
        l.cleanup_mounts();
        let before = l.sha();
        let uuids = |l: &Loop| {
            sh(&format!(
                "blkid -o value -s UUID {}p1 {}p2 {}p3",
                l.dev, l.dev, l.dev
            ))
            .1
        };
        let uuids_before = uuids(&l);
        let (rc, out) = l.run(&lay, "", &[]);
        l.cleanup_mounts();
        if rc != 0 {
            assert_eq!(rc, 9, "step {step}: {out}");
            assert_eq!(
                l.sha(),
                before,
                "step {step}: a boot without the flag changed the disk"
            );
        } else {
            // it mounted (which writes to the disk): nothing may have been made again
            assert_eq!(
                uuids(&l),
                uuids_before,
                "step {step}: a boot without the flag made a filesystem or swap anew"
            );
        }
        let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &[]);
        assert_eq!(rc, 0, "step {step}: {out}");
        let (_, fs) = sh(&format!(
            "blkid -o value -s TYPE {}p1 {}p2 {}p3",
            l.dev, l.dev, l.dev
        ));
        assert_eq!(
            fs.split_whitespace().collect::<Vec<_>>(),
            ["ext4", "swap", "ext4"],
            "step {step}"
        );
        l.cleanup_mounts();
    }
}

/// Can this kernel mount vfat (a container's may lack the module)?
fn vfat_mountable() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().last() == Some("vfat"))
}

/// Write `text` as the layout beside the loop device's root.
fn layout_text(l: &Loop, name: &str, text: &str) -> PathBuf {
    let p = l.root.parent().unwrap().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The nested MBR of a GPT disk as sfdisk dumps it: one (start, type, bootable) per entry.
fn hybrid_mbr(dev: &str) -> Vec<(u64, String, bool)> {
    let (rc, out) = sh(&format!("sfdisk --label-nested dos -d {dev}"));
    assert_eq!(rc, 0, "{out}");
    out.lines()
        .filter(|l| l.starts_with(dev))
        .map(|l| {
            let field = |k: &str| {
                l.split(',')
                    .find_map(|f| f.split_once('=').filter(|(n, _)| n.trim().ends_with(k)))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default()
            };
            (
                field("start").parse().unwrap(),
                field("type"),
                l.contains("bootable"),
            )
        })
        .collect()
}

#[test]
fn diskos_hybrid_mbr_example_is_made_and_read_back() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP diskos_hybrid_mbr_example_is_made_and_read_back: {why}");
        return;
    }
    for tool in ["sfdisk", "mkfs.vfat"] {
        if provision::system::resolve_tool(tool).is_none() {
            eprintln!("SKIP diskos_hybrid_mbr_example_is_made_and_read_back: {tool} not installed");
            return;
        }
    }
    // disko's example as it is (protective entry last), on a loop device.
    let Some(l) = Loop::new(640) else { return };
    let mut example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/testdata/disko-examples/hybrid-mbr.json"),
        )
        .unwrap(),
    )
    .unwrap();
    example["disk"]["main"]["device"] = l.dev.clone().into();
    let vfat = vfat_mountable();
    if !vfat {
        eprintln!("this kernel cannot mount vfat: the example's /boot is formatted, not mounted");
        example["disk"]["main"]["content"]["partitions"]["ESP"]["content"]["mountpoint"] =
            serde_json::Value::Null;
    }
    let lay = layout_text(&l, "hybrid-mbr.json", &example.to_string());
    let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &[]);
    assert_eq!(rc, 0, "{out}");
    let (_, gpt) = sh(&format!("sgdisk -p {}", l.dev));
    assert!(
        gpt.contains("disk-main-TOW-BOOT-FI")
            && gpt.contains("disk-main-ESP")
            && gpt.contains("disk-main-root"),
        "{gpt}"
    );
    let p1_start: u64 = sh(&format!("cat /sys/class/block/{}p1/start", &l.dev[5..]))
        .1
        .trim()
        .parse()
        .unwrap();
    // Entry 1: TOW-BOOT-FI with disko's type 0x0c, not bootable; entry 2: the protective one.
    assert_eq!(
        hybrid_mbr(&l.dev),
        [(p1_start, "c".into(), false), (1, "ee".into(), false)]
    );
    // The kernel and libblkid still read the GPT: a boot without the flag mounts.
    l.cleanup_mounts();
    let (rc, out) = l.run(&lay, "", &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(mounted(&l.root).is_some(), "{out}");
    assert_eq!(mounted(&l.root.join("boot")).is_some(), vfat, "{out}");
    l.cleanup_mounts();

    // The protective entry first (disko's default, whose own command line cannot do it): two
    // hybrid partitions are entries 2 and 3; type 83 and the bootable flag on the second, the
    // first keeps the type sgdisk derives from EF00.
    let lay = layout_text(
        &l,
        "hybrid-first.yaml",
        &format!(
            "disk:\n  main:\n    type: disk\n    device: {}\n    content:\n      type: gpt\n      partitions:\n        \
             a: {{ size: 8M, type: EF00, priority: 1, hybrid: {{}}, content: {{ type: filesystem, format: vfat }} }}\n        \
             b: {{ size: 8M, priority: 2, hybrid: {{ mbrPartitionType: \"0x83\", mbrBootableFlag: true }}, content: {{ type: filesystem, format: ext4 }} }}\n        \
             c: {{ size: 100%, content: {{ type: filesystem, format: ext4, mountpoint: /c }} }}\n",
            l.dev
        ),
    );
    let (rc, out) = l.run(
        &lay,
        "homelab.provision_disks=true homelab.wipe_foreign=main",
        &[],
    );
    assert_eq!(rc, 0, "{out}");
    let start = |n: u32| -> u64 {
        sh(&format!("cat /sys/class/block/{}p{n}/start", &l.dev[5..]))
            .1
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        hybrid_mbr(&l.dev),
        [
            (1, "ee".into(), false),
            (start(1), "ef".into(), false),
            (start(2), "83".into(), true)
        ]
    );
}

/// Issue 14, fault 3: a filesystem's `extraArgs` entries are single arguments (disko's
/// escapeShellArgs), swap's are shell words (disko's toString): the labels read back whole.
#[test]
fn extra_args_reach_mkfs_and_mkswap_as_disko_passes_them() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP extra_args_reach_mkfs_and_mkswap_as_disko_passes_them: {why}");
        return;
    }
    let Some(l) = Loop::new(64) else { return };
    let lay = layout_text(
        &l,
        "args.yaml",
        &format!(
            "disk:\n  data:\n    type: disk\n    device: {}\n    content:\n      type: gpt\n      partitions:\n        \
             main:\n          size: 24M\n          content: {{ type: filesystem, format: ext4, mountpoint: /data, extraArgs: [\"-L\", \"my data\"] }}\n        \
             swap:\n          size: 8M\n          content: {{ type: swap, extraArgs: [\"-L 'my swap'\"] }}\n        \
             rest:\n          size: 100%\n          content: {{ type: filesystem, format: ext4, extraArgs: [\"-L\", \"it's $HOME\", \"-m\", \"0\"] }}\n",
            l.dev
        ),
    );
    let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &[]);
    assert_eq!(rc, 0, "{out}");
    for (n, label) in [(1, "my data"), (2, "my swap"), (3, "it's $HOME")] {
        let (rc, got) = sh(&format!("blkid -o value -s LABEL {}p{n}", l.dev));
        assert_eq!(
            (rc, got.trim_end_matches('\n')),
            (0, label),
            "partition {n}"
        );
    }
    assert!(mounted(&l.root.join("data")).is_some());
}

/// Issue 14, fault 4: a partition without the filesystem the layout names (or with another)
/// makes the real mount-only run exit 9 naming it; `--dry-run`, and `--dry-run` over a
/// `status` snapshot, exit the same and name the same partition.
#[test]
fn dry_run_and_real_run_agree_on_a_missing_or_wrong_filesystem() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP dry_run_and_real_run_agree_on_a_missing_or_wrong_filesystem: {why}");
        return;
    }
    let Some(l) = Loop::new(64) else { return };
    let lay = layout(&l);
    let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &[]);
    assert_eq!(rc, 0, "{out}");
    l.cleanup_mounts();
    let (rc, out) = l.run(&lay, "", &["--dry-run"]);
    assert_eq!(rc, 0, "{out}");
    let snapshot = l.root.parent().unwrap().join("status.json");
    for (spoil, what) in [
        // a provisioning run cut off before this mkfs
        (
            format!("wipefs -q -a {}p1", l.dev),
            format!(
                "{}p1 has no filesystem where the layout expects ext4",
                l.dev
            ),
        ),
        // another filesystem where swap should be
        (
            format!("mkfs.ext4 -q -F {}p2", l.dev),
            format!(
                "{}p2 has a ext4 signature where the layout expects swap",
                l.dev
            ),
        ),
    ] {
        let (rc, out) = l.run(&lay, "homelab.provision_disks=true", &[]);
        assert_eq!(rc, 0, "{out}");
        l.cleanup_mounts();
        let (rc, out) = sh(&spoil);
        assert_eq!(rc, 0, "{out}");
        let (dry_rc, dry) = l.run(&lay, "", &["--dry-run"]);
        let o = Command::new(bin())
            .arg("--layout")
            .arg(&lay)
            .arg("--root")
            .arg(&l.root)
            .args(["--cmdline", "", "--output", "json", "status"])
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&o.stdout).to_string();
        std::fs::write(&snapshot, &status).unwrap();
        let snap = snapshot.to_str().unwrap();
        let (state_rc, state) = l.run(&lay, "", &["--dry-run", "--state", snap]);
        let (real_rc, real) = l.run(&lay, "", &[]);
        l.cleanup_mounts();
        assert_eq!(real_rc, 9, "real run: {real}");
        assert!(real.contains(&what), "real run: {real}");
        assert_eq!(dry_rc, real_rc, "--dry-run: {dry}");
        assert!(
            dry.contains("MISSING disk data: partition") && dry.contains(&what),
            "--dry-run: {dry}"
        );
        assert_eq!(state_rc, real_rc, "--state: {state}");
        assert!(state.contains(&what), "--state: {state}");
        assert!(status.contains(&what), "status: {status}");
    }
}

/// A node laid out by disko — its commands, in its order: one sgdisk per partition sorted by
/// disko's default priorities, its sha256 partition names for a long disk name — mounts on a
/// mount-only run. (provision's earlier defaults put EF00 before DATA and cut long names
/// otherwise: exit 9.)
#[test]
fn a_disk_laid_out_by_disko_mounts() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP a_disk_laid_out_by_disko_mounts: {why}");
        return;
    }
    let Some(l) = Loop::new(96) else { return };
    let name = "this-is-some-super-long-name-to-test-what-happens";
    let vfat = vfat_mountable() && provision::system::resolve_tool("mkfs.vfat").is_some();
    let lay = layout_text(
        &l,
        "disko.yaml",
        &format!(
            "disk:\n  main:\n    type: disk\n    name: {name}\n    device: {}\n    content:\n      type: gpt\n      partitions:\n        \
             boot: {{ size: 1M, type: EF02 }}\n        \
             ESP: {{ size: 16M, type: EF00, content: {{ type: filesystem, format: {}, mountpoint: /boot }} }}\n        \
             DATA: {{ size: 16M, content: {{ type: filesystem, format: ext4, mountpoint: /data }} }}\n        \
             root: {{ size: 100%, content: {{ type: filesystem, format: ext4, mountpoint: /srv }} }}\n",
            l.dev,
            if vfat { "vfat" } else { "ext4" }
        ),
    );
    // disko's order: EF02 (100), then the 1000s by name (DATA before ESP), size 100% (9001).
    for (n, part, size, ty) in [
        (1, "boot", "+1M", "EF02"),
        (2, "DATA", "+16M", "8300"),
        (3, "ESP", "+16M", "EF00"),
        (4, "root", "-0", "8300"),
    ] {
        let (rc, out) = sh(&format!(
            "label=$(printf %s 'disk-{name}-{part}' | sha256sum | cut -c1-36) && \
             sgdisk --align-end --new={n}:0:{size} --partition-guid={n}:R --change-name={n}:$label \
             --typecode={n}:{ty} --attributes={n}:=:0 {}",
            l.dev
        ));
        assert_eq!(rc, 0, "{out}");
    }
    let esp_mkfs = if vfat { "mkfs.vfat" } else { "mkfs.ext4 -q -F" };
    let (rc, out) = sh(&format!(
        "partx -u {d} && mkfs.ext4 -q -F {d}p2 && {esp_mkfs} {d}p3 && mkfs.ext4 -q -F {d}p4",
        d = l.dev
    ));
    assert_eq!(rc, 0, "{out}");
    let (rc, out) = l.run(&lay, "", &["--dry-run"]);
    assert_eq!(rc, 0, "{out}");
    let (rc, out) = l.run(&lay, "", &[]);
    assert_eq!(rc, 0, "{out}");
    for m in ["boot", "data", "srv"] {
        assert!(mounted(&l.root.join(m)).is_some(), "{m}: {out}");
    }
}
