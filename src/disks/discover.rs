//! Discovery: the observed state of this machine's disks, read from sysfs, the udev database,
//! libblkid, /proc/self/mountinfo, /proc/swaps and lvm's JSON reports. Read-only.

use anyhow::{Context as _, Result};
use std::fs;
use std::path::{Path, PathBuf};

use super::state::*;
use crate::system::Runner;

/// Where to read from (tests point these at fixture trees).
#[derive(Debug, Clone)]
pub struct Sources {
    pub sys_block: PathBuf,
    pub dev: PathBuf,
    pub udev_data: PathBuf,
    pub mountinfo: PathBuf,
    pub swaps: PathBuf,
    /// Probe devices with libblkid (off for fixture trees, and on the every-boot path, which
    /// takes types and labels from the udev database and partition names from sysfs).
    pub blkid: bool,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            sys_block: "/sys/block".into(),
            dev: "/dev".into(),
            udev_data: "/run/udev/data".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            swaps: "/proc/swaps".into(),
            blkid: true,
        }
    }
}

/// A number from the disk's sysfs `queue/` directory (sizes in bytes).
fn queue_u32(sysdir: &Path, name: &str) -> Option<u32> {
    read_trim(&sysdir.join("queue").join(name))?.parse().ok()
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn list_dir(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// udev database entry of a block device: (properties, symlinks).
fn udev_props(src: &Sources, maj_min: &str) -> (Vec<(String, String)>, Vec<String>) {
    let text = fs::read_to_string(src.udev_data.join(format!("b{maj_min}"))).unwrap_or_default();
    let mut props = Vec::new();
    let mut links = Vec::new();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("E:") {
            if let Some((k, v)) = kv.split_once('=') {
                props.push((k.to_string(), v.to_string()));
            }
        } else if let Some(l) = line.strip_prefix("S:") {
            links.push(format!("/dev/{l}"));
        }
    }
    (props, links)
}

fn prop<'a>(props: &'a [(String, String)], k: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|(pk, _)| pk == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Symlinks under /dev/disk/{by-id,by-path} that resolve to /dev/<name>.
fn dev_links(src: &Sources, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["disk/by-id", "disk/by-path"] {
        let dir = src.dev.join(sub);
        for l in list_dir(&dir) {
            if let Ok(t) = fs::read_link(dir.join(&l)) {
                if t.file_name().is_some_and(|f| f == name) {
                    out.push(format!("/dev/{sub}/{l}"));
                }
            }
        }
    }
    out
}

fn is_whole_disk_candidate(name: &str, sysdir: &Path) -> bool {
    const SKIP: &[&str] = &["ram", "zram", "dm-", "md", "drbd", "sr", "fd", "nbd", "zd"];
    if SKIP.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    if name.starts_with("loop") {
        // only attached loop devices
        return sysdir.join("loop/backing_file").exists();
    }
    true
}

/// libblkid probe of one device: superblock TYPE, LABEL, UUID, the partition table type, and
/// (for a whole disk) the partition names read from the table itself (partitions added with
/// BLKPG carry no PARTNAME in sysfs).
#[derive(Debug, Default)]
struct Probe {
    fs_type: Option<String>,
    label: Option<String>,
    uuid: Option<String>,
    pt_type: Option<String>,
    part_names: Vec<(u32, String)>,
}

/// The superblock type libblkid finds on a device (`ext4`, `swap`, `LVM2_member` …), if any.
pub fn probe_type(path: &Path) -> Option<String> {
    blkid_probe(path).fs_type
}

/// The filesystem type on `path`, asked first of `want`'s libblkid prober alone (one superblock
/// read, where the full probe runs every prober and reads partition tables too: a fifth of the
/// every-boot path's own time under TCG), then, when that one finds nothing, of all of them —
/// so that a mismatch is named ("a swap signature where the layout expects ext4").
pub fn probe_type_expecting(path: &Path, want: &str) -> Option<String> {
    use libblkid_rs::{BlkidFltr, BlkidSublks};
    let quick = || -> Option<String> {
        let mut p = superblock_probe(path, vec![BlkidSublks::Type])?;
        p.filter_superblock_type(BlkidFltr::Onlyin, &[want]).ok()?;
        p.enable_partitions(false).ok()?;
        p.do_safeprobe().ok()?;
        p.lookup_value("TYPE").ok().filter(|v| !v.is_empty())
    };
    quick().or_else(|| probe_type(path))
}

/// One entry of a partition table as written on the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// Partition number (1-based).
    pub number: u32,
    /// Bytes from the disk's start.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    /// GPT partition name (msdos: none).
    pub name: Option<String>,
}

/// Read the partition table on `path` itself (libblkid's partition list, not the kernel's view)
/// with its table type (`gpt`, `dos`). Errors: the device cannot be opened or probed, or holds
/// no partition table.
pub fn read_table(path: &Path) -> anyhow::Result<(String, Vec<TableEntry>)> {
    use anyhow::Context as _;
    let mut p = libblkid_rs::BlkidProbe::new_from_filename(path)
        .with_context(|| format!("opening {} to read its partition table", path.display()))?;
    p.enable_superblocks(false)
        .and_then(|_| p.enable_partitions(true))
        .and_then(|_| p.do_fullprobe())
        .with_context(|| format!("probing the partition table of {}", path.display()))?;
    let mut list = p
        .get_partitions()
        .with_context(|| format!("{}: no partition table found", path.display()))?;
    let kind = list
        .get_table()
        .and_then(|t| t.get_type())
        .unwrap_or_default();
    let n = list.number_of_partitions().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..n {
        let part = list
            .get_partition(i)
            .with_context(|| format!("{}: partition entry {i}", path.display()))?;
        // libblkid counts in 512-byte sectors whatever the disk's sector size.
        out.push(TableEntry {
            number: part.get_partno().unwrap_or(0),
            start: (*part.get_start().as_ref()).max(0) as u64 * 512,
            size: (*part.get_size().as_ref()).max(0) as u64 * 512,
            name: part.get_name().ok().flatten(),
        });
    }
    Ok((kind, out))
}

/// A libblkid probe of `path` for superblocks, reporting `tags` of what it finds.
fn superblock_probe(
    path: &Path,
    tags: Vec<libblkid_rs::BlkidSublks>,
) -> Option<libblkid_rs::BlkidProbe> {
    let mut p = libblkid_rs::BlkidProbe::new_from_filename(path).ok()?;
    let _ = p.enable_superblocks(true);
    let _ = p.set_superblock_flags(libblkid_rs::BlkidSublksFlags::new(tags));
    Some(p)
}

fn blkid_probe(path: &Path) -> Probe {
    use libblkid_rs::BlkidSublks;
    let Some(mut p) = superblock_probe(
        path,
        vec![BlkidSublks::Type, BlkidSublks::Label, BlkidSublks::Uuid],
    ) else {
        return Probe::default();
    };
    let _ = p.enable_partitions(true);
    if p.do_safeprobe().is_err() {
        return Probe::default();
    }
    let get = |k: &str| p.lookup_value(k).ok().filter(|v| !v.is_empty());
    let mut out = Probe {
        fs_type: get("TYPE"),
        label: get("LABEL"),
        uuid: get("UUID"),
        pt_type: get("PTTYPE"),
        part_names: Vec::new(),
    };
    if out.pt_type.is_some() {
        if let Ok(mut list) = p.get_partitions() {
            let n = list.number_of_partitions().unwrap_or(0);
            for i in 0..n {
                if let Ok(part) = list.get_partition(i) {
                    if let (Ok(no), Ok(Some(name))) = (part.get_partno(), part.get_name()) {
                        out.part_names.push((no, name));
                    }
                }
            }
        }
    }
    out
}

fn transport(name: &str, sysdir: &Path, props: &[(String, String)]) -> String {
    if name.starts_with("nvme") {
        return "nvme".into();
    }
    if name.starts_with("loop") {
        return "loop".into();
    }
    if name.starts_with("vd") {
        return "virtio".into();
    }
    match prop(props, "ID_BUS") {
        Some("ata") => return "sata".into(),
        Some("usb") => return "usb".into(),
        Some("scsi") => return "scsi".into(),
        _ => {}
    }
    let dev = fs::canonicalize(sysdir.join("device"))
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    if dev.contains("/usb") {
        "usb".into()
    } else if dev.contains("/ata") {
        "sata".into()
    } else if dev.contains("virtio") {
        if name.starts_with("sd") {
            "scsi".into()
        } else {
            "virtio".into()
        }
    } else if name.starts_with("sd") {
        "scsi".into()
    } else {
        "unknown".into()
    }
}

fn read_disk(src: &Sources, name: &str) -> Option<BlockDevice> {
    let sysdir = src.sys_block.join(name);
    let maj_min = read_trim(&sysdir.join("dev"))?;
    let sectors: u64 = read_trim(&sysdir.join("size"))?.parse().ok()?;
    let (props, mut udev_links) = udev_props(src, &maj_min);
    let mut links = dev_links(src, name);
    udev_links.retain(|l| l.starts_with("/dev/disk/by-id/") || l.starts_with("/dev/disk/by-path/"));
    for l in udev_links {
        if !links.contains(&l) {
            links.push(l);
        }
    }
    links.sort();
    let path = src.dev.join(name);
    let disk_probe = if src.blkid {
        blkid_probe(&path)
    } else {
        Probe::default()
    };
    let model = prop(&props, "ID_MODEL")
        .map(|m| m.replace('_', " "))
        .or_else(|| read_trim(&sysdir.join("device/model")));
    let serial = prop(&props, "ID_SERIAL_SHORT")
        .map(String::from)
        .or_else(|| read_trim(&sysdir.join("device/serial")));
    let wwn = prop(&props, "ID_WWN")
        .map(String::from)
        .or_else(|| read_trim(&sysdir.join("device/wwid")));
    let mut partitions = Vec::new();
    for entry in list_dir(&sysdir) {
        let pdir = sysdir.join(&entry);
        let Some(number) = read_trim(&pdir.join("partition")).and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(pmm) = read_trim(&pdir.join("dev")) else {
            continue;
        };
        let psize: u64 = read_trim(&pdir.join("size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let start: u64 = read_trim(&pdir.join("start"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let uevent = fs::read_to_string(pdir.join("uevent")).unwrap_or_default();
        let (pprops, _) = udev_props(src, &pmm);
        // The table itself (libblkid) first: partitions the kernel learnt about through BLKPG
        // (partx) have no PARTNAME in sysfs.
        let part_label = disk_probe
            .part_names
            .iter()
            .find(|(no, _)| *no == number)
            .map(|(_, n)| n.clone())
            .or_else(|| {
                uevent
                    .lines()
                    .find_map(|l| l.strip_prefix("PARTNAME="))
                    .map(String::from)
            })
            .or_else(|| prop(&pprops, "ID_PART_ENTRY_NAME").map(String::from));
        let ppath = src.dev.join(&entry);
        let (pfs, plabel, puuid) = if src.blkid {
            let pp = blkid_probe(&ppath);
            (pp.fs_type, pp.label, pp.uuid)
        } else {
            (
                prop(&pprops, "ID_FS_TYPE").map(String::from),
                prop(&pprops, "ID_FS_LABEL").map(String::from),
                prop(&pprops, "ID_FS_UUID").map(String::from),
            )
        };
        partitions.push(Partition {
            name: entry.clone(),
            path: format!("/dev/{entry}"),
            maj_min: pmm,
            number,
            size: psize * 512,
            start: start * 512,
            part_label,
            fs_type: pfs,
            label: plabel,
            uuid: puuid,
            holders: list_dir(&pdir.join("holders")),
        });
    }
    partitions.sort_by_key(|p| p.number);
    let (fs_type, label, uuid, pt_type) = if src.blkid {
        (
            disk_probe.fs_type,
            disk_probe.label,
            disk_probe.uuid,
            disk_probe.pt_type,
        )
    } else {
        (
            prop(&props, "ID_FS_TYPE").map(String::from),
            prop(&props, "ID_FS_LABEL").map(String::from),
            prop(&props, "ID_FS_UUID").map(String::from),
            prop(&props, "ID_PART_TABLE_TYPE").map(String::from),
        )
    };
    Some(BlockDevice {
        name: name.to_string(),
        path: format!("/dev/{name}"),
        maj_min,
        size: sectors * 512,
        logical_sector_size: queue_u32(&sysdir, "logical_block_size").unwrap_or(512),
        physical_sector_size: queue_u32(&sysdir, "physical_block_size").unwrap_or(512),
        optimal_io_size: queue_u32(&sysdir, "optimal_io_size").unwrap_or(0),
        rotational: read_trim(&sysdir.join("queue/rotational")).as_deref() == Some("1"),
        removable: read_trim(&sysdir.join("removable")).as_deref() == Some("1"),
        read_only: read_trim(&sysdir.join("ro")).as_deref() == Some("1"),
        transport: transport(name, &sysdir, &props),
        model,
        serial,
        wwn,
        links,
        // a whole-disk PTTYPE wins over a stray TYPE guess
        fs_type: if pt_type.is_some() { None } else { fs_type },
        label,
        uuid,
        pt_type,
        holders: list_dir(&sysdir.join("holders")),
        partitions,
    })
}

fn read_virtual(src: &Sources, name: &str) -> Option<VirtualDevice> {
    let sysdir = src.sys_block.join(name);
    Some(VirtualDevice {
        name: name.to_string(),
        maj_min: read_trim(&sysdir.join("dev"))?,
        dm_name: read_trim(&sysdir.join("dm/name")),
        holders: list_dir(&sysdir.join("holders")),
        slaves: list_dir(&sysdir.join("slaves")),
    })
}

/// Unescape mountinfo's octal escapes (`\040` = space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // A byte is at most \377: a first digit above 3 is not an escape (and would overflow).
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse /proc/self/mountinfo.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || g.len() < 2 {
            continue;
        }
        out.push(Mount {
            maj_min: f[2].to_string(),
            target: unescape(f[4]),
            fs_type: g[0].to_string(),
            source: unescape(g[1]),
        });
    }
    out
}

/// Parse /proc/swaps (paths only; maj:min filled in by the caller).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

fn maj_min_of(path: &str) -> Option<String> {
    let st = rustix::fs::stat(path).ok()?;
    use rustix::fs::FileType;
    if FileType::from_raw_mode(st.st_mode) != FileType::BlockDevice {
        return None;
    }
    let rdev = st.st_rdev;
    Some(format!(
        "{}:{}",
        rustix::fs::major(rdev),
        rustix::fs::minor(rdev)
    ))
}

fn num(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s
            .trim()
            .trim_end_matches('B')
            .parse::<f64>()
            .map(|f| f as u64)
            .unwrap_or(0),
        _ => 0,
    }
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or("").trim().to_string()
}

/// Parse `lvm {pvs,vgs,lvs} --reportformat json` output: the rows of `report[*].<key>`.
pub fn report_rows(json: &[u8], key: &str) -> Result<Vec<serde_json::Value>> {
    let v: serde_json::Value =
        serde_json::from_slice(json).with_context(|| format!("parsing lvm {key} JSON report"))?;
    let mut rows = Vec::new();
    for r in v
        .get("report")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(a) = r.get(key).and_then(|x| x.as_array()) {
            rows.extend(a.iter().cloned());
        }
    }
    Ok(rows)
}

/// What [`read_lvm`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvmRead {
    /// `lvm version` and one `lvm fullreport` (PVs, VGs, LVs, segments).
    Full,
    /// `lvm version` only (the settings depend on it); the state says `lvm_unread`.
    VersionOnly,
    /// Nothing: the node's lvm.conf already says its lvm knows `use_devicesfile`, the one
    /// thing the version decides ([`lvm_conf_knows_devicesfile`]); the state says `lvm_unread`.
    Nothing,
}

/// The one `lvm fullreport` that reads PVs, VGs, LVs and segment types (each lvm process scans
/// every device again, so one report instead of pvs + vgs + lvs).
pub fn fullreport_argv(lvm_config: &str) -> Vec<String> {
    [
        "lvm",
        "fullreport",
        "--config",
        lvm_config,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "--configreport",
        "vg",
        "-o",
        "vg_name,vg_tags,vg_size,vg_free,lv_count,pv_count",
        "--configreport",
        "pv",
        "-o",
        "pv_name,vg_name,pv_size,pv_mda_count",
        "--configreport",
        "lv",
        "-o",
        "vg_name,lv_name,lv_size,lv_attr,pool_lv,lv_kernel_major,lv_kernel_minor",
        "--configreport",
        "seg",
        "-o",
        "vg_name,lv_name,segtype",
        "--configreport",
        "pvseg",
        "-o",
        "pv_name",
        "-S",
        "pv_name=\"\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Does the lvm.conf in `lvm_dir` (the node's: `$LVM_SYSTEM_DIR`, else /etc/lvm) name
/// `use_devicesfile`? lvm ships its lvm.conf with every setting it knows, commented out where it
/// keeps the default, so one that names it came with an lvm of 2.03.12 or later. No file, or
/// no mention: unknown (ask `lvm version`).
pub fn lvm_conf_knows_devicesfile(lvm_dir: &Path) -> bool {
    fs::read_to_string(lvm_dir.join("lvm.conf")).is_ok_and(|c| c.contains("use_devicesfile"))
}

/// Read PVs, VGs and LVs through lvm's JSON report. `lvm_config` gives our `devices {…}`
/// string for the lvm version found (the same settings the plan's commands will carry).
pub fn read_lvm(
    runner: &dyn Runner,
    lvm_config: &dyn Fn(Option<&str>) -> String,
    state: &mut SystemState,
    what: LvmRead,
) -> Result<()> {
    if what == LvmRead::Nothing {
        state.lvm_unread = true;
        return Ok(());
    }
    let out = match runner.run_raw(&["lvm".to_string(), "version".to_string()], None) {
        Ok(o) if o.status == 0 => o,
        _ => return Ok(()), // no lvm here: nothing to report
    };
    state.lvm_version = out.stdout_str().lines().find_map(|l| {
        l.trim()
            .strip_prefix("LVM version:")
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
    });
    if what == LvmRead::VersionOnly {
        state.lvm_unread = true;
        return Ok(());
    }
    state.lvm_unread = false;
    let lvm_config = lvm_config(state.lvm_version.as_deref());
    let rep = runner.check(&fullreport_argv(&lvm_config), None)?;
    parse_fullreport(&rep.stdout, state)
}

/// Probe the filesystem type of each active LV named in `wanted` (vg, lv) through its
/// `/dev/mapper` node, so that a plan can tell a missing or wrong filesystem on an LV as it
/// does on a partition. An LV that is inactive or has no node stays unprobed (unknown).
pub fn probe_lvs(state: &mut SystemState, wanted: &[(&str, &str)]) {
    use std::os::unix::fs::FileTypeExt;
    for lv in state.lvs.iter_mut() {
        if lv.maj_min.is_none()
            || !wanted
                .iter()
                .any(|(vg, name)| *vg == lv.vg_name && *name == lv.lv_name)
        {
            continue;
        }
        let path = PathBuf::from(format!(
            "/dev/mapper/{}",
            super::lvm::dm_name(&lv.vg_name, &lv.lv_name)
        ));
        if fs::metadata(&path).is_ok_and(|m| m.file_type().is_block_device()) {
            lv.fs_type = probe_type(&path);
            lv.fs_probed = true;
        }
    }
}

/// The rows of a `fullreport`: PVs, VGs and LVs, each LV with its first segment's type.
pub fn parse_fullreport(json: &[u8], state: &mut SystemState) -> Result<()> {
    for r in report_rows(json, "pv")? {
        state.pvs.push(Pv {
            pv_name: text(&r["pv_name"]),
            vg_name: text(&r["vg_name"]),
            pv_size: num(&r["pv_size"]),
            pv_mda_count: text(&r["pv_mda_count"]).trim().parse().ok(),
        });
    }
    for r in report_rows(json, "vg")? {
        state.vgs.push(Vg {
            vg_name: text(&r["vg_name"]),
            vg_tags: text(&r["vg_tags"])
                .split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            vg_size: num(&r["vg_size"]),
            vg_free: num(&r["vg_free"]),
            lv_count: num(&r["lv_count"]) as u32,
            pv_count: num(&r["pv_count"]) as u32,
        });
    }
    let segs = report_rows(json, "seg")?;
    for r in report_rows(json, "lv")? {
        let maj = text(&r["lv_kernel_major"]);
        let min = text(&r["lv_kernel_minor"]);
        let maj_min = match (maj.parse::<i64>(), min.parse::<i64>()) {
            (Ok(a), Ok(b)) if a >= 0 && b >= 0 => Some(format!("{a}:{b}")),
            _ => None,
        };
        let (vg_name, lv_name) = (text(&r["vg_name"]), text(&r["lv_name"]));
        let segtype = segs
            .iter()
            .find(|s| text(&s["vg_name"]) == vg_name && text(&s["lv_name"]) == lv_name)
            .map(|s| text(&s["segtype"]))
            .unwrap_or_default();
        state.lvs.push(Lv {
            vg_name,
            lv_name,
            lv_size: num(&r["lv_size"]),
            lv_attr: text(&r["lv_attr"]),
            segtype,
            pool_lv: text(&r["pool_lv"]),
            maj_min,
            ..Default::default()
        });
    }
    Ok(())
}

/// Everything but LVM: sysfs, udev db, libblkid, mountinfo, swaps.
pub fn read_block(src: &Sources) -> Result<SystemState> {
    let mut st = SystemState {
        version: STATE_VERSION,
        types_from_udev: !src.blkid,
        ..Default::default()
    };
    for name in list_dir(&src.sys_block) {
        let sysdir = src.sys_block.join(&name);
        if is_whole_disk_candidate(&name, &sysdir) {
            if let Some(d) = read_disk(src, &name) {
                if d.size > 0 {
                    st.disks.push(d);
                }
            }
        } else if ["dm-", "md", "drbd"].iter().any(|p| name.starts_with(p)) {
            if let Some(v) = read_virtual(src, &name) {
                st.virtual_devices.push(v);
            }
        }
    }
    let mi = fs::read_to_string(&src.mountinfo)
        .with_context(|| format!("reading {}", src.mountinfo.display()))?;
    st.mounts = parse_mountinfo(&mi);
    let sw = fs::read_to_string(&src.swaps).unwrap_or_default();
    st.swaps = parse_swaps(&sw)
        .into_iter()
        .map(|p| SwapEntry {
            maj_min: maj_min_of(&p),
            path: p,
        })
        .collect();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Output, RecordingRunner};

    #[test]
    fn type_probe_asks_the_expected_prober_then_names_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let img = |name: &str, tool: &[&str]| {
            let p = dir.path().join(name);
            std::fs::File::create(&p).unwrap().set_len(8 << 20).unwrap();
            if !tool.is_empty() {
                let ok = std::process::Command::new(tool[0])
                    .args(&tool[1..])
                    .arg(&p)
                    .output()
                    .map(|o| o.status.success());
                if !matches!(ok, Ok(true)) {
                    return None; // the tool is not on this machine
                }
            }
            Some(p)
        };
        let (Some(swap), Some(ext4), Some(blank)) = (
            img("swap", &["mkswap", "-q"]),
            img("ext4", &["mkfs.ext4", "-q", "-F"]),
            img("blank", &[]),
        ) else {
            eprintln!("skipped: mkswap or mkfs.ext4 not found");
            return;
        };
        assert_eq!(probe_type_expecting(&swap, "swap").as_deref(), Some("swap"));
        assert_eq!(probe_type_expecting(&ext4, "ext4").as_deref(), Some("ext4"));
        // Not what is expected: the full probe names it.
        assert_eq!(probe_type_expecting(&swap, "ext4").as_deref(), Some("swap"));
        assert_eq!(probe_type_expecting(&ext4, "swap").as_deref(), Some("ext4"));
        assert_eq!(probe_type_expecting(&ext4, "ext3").as_deref(), Some("ext4"));
        assert_eq!(probe_type_expecting(&blank, "ext4"), None);
    }

    #[test]
    fn an_lvm_conf_naming_use_devicesfile_spares_the_version_question() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!lvm_conf_knows_devicesfile(dir.path()), "no lvm.conf");
        let conf = dir.path().join("lvm.conf");
        std::fs::write(&conf, "devices {\n\tfilter = [ \"a|.*|\" ]\n}\n").unwrap();
        assert!(!lvm_conf_knows_devicesfile(dir.path()));
        // As lvm 2.03.16's shipped lvm.conf has it (a commented-out default).
        std::fs::write(
            &conf,
            "devices {\n\t# Configuration option devices/use_devicesfile.\n\t# use_devicesfile = 0\n}\n",
        )
        .unwrap();
        assert!(lvm_conf_knows_devicesfile(dir.path()));
        // Then nothing is asked of lvm at all.
        let r = RecordingRunner::new();
        let mut st = SystemState::default();
        read_lvm(&r, &|_| String::new(), &mut st, LvmRead::Nothing).unwrap();
        assert!(st.lvm_unread && st.lvm_version.is_none());
        assert!(r.calls().is_empty(), "{:?}", r.calls());
    }

    #[test]
    fn mountinfo_and_swaps() {
        let mi = "22 1 259:2 / /var rw,relatime shared:1 - ext4 /dev/mapper/pool_host-var rw\n\
                  23 1 0:21 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";
        let m = parse_mountinfo(mi);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].maj_min, "259:2");
        assert_eq!(m[0].source, "/dev/mapper/pool_host-var");
        assert_eq!(m[1].target, "/mnt/a b");
        let sw =
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1 partition 1048572 0 -2\n";
        assert_eq!(parse_swaps(sw), vec!["/dev/dm-1"]);
    }

    #[test]
    fn lvm_reports_are_read() {
        let r = RecordingRunner::new();
        r.on(
            &["lvm", "version"],
            Output::ok("  LVM version:     2.03.16(2) (2022-05-18)\n  Library version: 1.02.185\n"),
        );
        // Shape of lvm 2.03.16's fullreport with our -o lists (one report per VG, orphan PVs
        // in a report of their own).
        r.on(&["lvm", "fullreport"], Output::ok(r#"{"report":[
          {"vg":[{"vg_name":"pool_host","vg_tags":"provision.token=tok1,x","vg_size":"1000","vg_free":"100","lv_count":"3","pv_count":"1"}],
           "pv":[{"pv_name":"/dev/sda2","vg_name":"pool_host","pv_size":"1000"}],
           "lv":[{"vg_name":"pool_host","lv_name":"var","lv_size":"800","lv_attr":"-wi-ao----","pool_lv":"","lv_kernel_major":"254","lv_kernel_minor":"2"},
                 {"vg_name":"pool_host","lv_name":"home","lv_size":"100","lv_attr":"-wi-------","pool_lv":"","lv_kernel_major":"-1","lv_kernel_minor":"-1"}],
           "pvseg":[],
           "seg":[{"vg_name":"pool_host","lv_name":"home","segtype":"linear"},{"vg_name":"pool_host","lv_name":"var","segtype":"striped"},{"vg_name":"pool_host","lv_name":"var","segtype":"linear"}]},
          {"pv":[{"pv_name":"/dev/sdb","vg_name":"","pv_size":"1073741824"}],"pvseg":[]}]}"#));
        let mut st = SystemState::default();
        // the config is made for the version lvm reported (use_devicesfile needs ≥ 2.03.12)
        let cfg = |v: Option<&str>| format!("devices {{ for {} }}", v.unwrap_or("none"));
        read_lvm(&r, &cfg, &mut st, LvmRead::Full).unwrap();
        assert_eq!(st.lvm_version.as_deref(), Some("2.03.16(2)"));
        assert!(!st.lvm_unread);
        assert_eq!(st.vgs.len(), 1);
        assert_eq!(st.vgs[0].vg_tags, ["provision.token=tok1", "x"]);
        assert_eq!(st.pvs.len(), 2);
        assert_eq!(st.pvs[1].vg_name, "");
        assert_eq!(st.lvs[0].maj_min.as_deref(), Some("254:2"));
        assert_eq!(st.lvs[0].segtype, "striped", "the first segment's type");
        assert_eq!(st.lvs[1].segtype, "linear");
        assert!(st.lvs[0].active());
        assert_eq!(st.lvs[1].maj_min, None);
        let calls = r.calls();
        assert_eq!(calls.len(), 2, "lvm version + one fullreport: {calls:?}");
        assert!(
            calls[1].contains(&"--config".to_string())
                && calls[1].contains(&"devices { for 2.03.16(2) }".to_string())
        );
    }

    #[test]
    fn version_only_marks_the_lvm_state_unread() {
        let r = RecordingRunner::new();
        r.on(
            &["lvm", "version"],
            Output::ok("  LVM version:     2.03.16(2) (2022-05-18)\n"),
        );
        let mut st = SystemState::default();
        read_lvm(&r, &|_| String::new(), &mut st, LvmRead::VersionOnly).unwrap();
        assert_eq!(st.lvm_version.as_deref(), Some("2.03.16(2)"));
        assert!(st.lvm_unread && st.vgs.is_empty());
        assert_eq!(r.calls().len(), 1);
    }

    #[test]
    fn no_lvm_means_no_lvm_state() {
        let r = RecordingRunner::new();
        r.on(
            &["lvm"],
            Output {
                status: 127,
                ..Default::default()
            },
        );
        let mut st = SystemState::default();
        read_lvm(&r, &|_| String::new(), &mut st, LvmRead::Full).unwrap();
        assert!(st.lvm_version.is_none() && st.vgs.is_empty());
    }

    /// A fixture sysfs/udev/dev tree, as on a node with an NVMe disk and a SATA disk with two
    /// partitions, one of them a PV whose LV is held by DRBD.
    #[test]
    fn reads_a_fixture_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let w = |p: &str, c: &str| {
            let p = root.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, c).unwrap();
        };
        let mk = |p: &str| fs::create_dir_all(root.join(p)).unwrap();
        w("sys/block/nvme0n1/dev", "259:0\n");
        w("sys/block/nvme0n1/size", "2000\n");
        w("sys/block/nvme0n1/queue/rotational", "0\n");
        mk("sys/block/nvme0n1/holders");
        w("sys/block/sda/dev", "8:0\n");
        w("sys/block/sda/size", "4000\n");
        w("sys/block/sda/queue/rotational", "1\n");
        w("sys/block/sda/queue/logical_block_size", "4096\n");
        w("sys/block/sda/queue/physical_block_size", "4096\n");
        w("sys/block/sda/queue/optimal_io_size", "1048576\n");
        w("sys/block/sda/sda1/partition", "1\n");
        w("sys/block/sda/sda1/dev", "8:1\n");
        w("sys/block/sda/sda1/size", "200\n");
        w("sys/block/sda/sda1/start", "2048\n");
        w(
            "sys/block/sda/sda1/uevent",
            "MAJOR=8\nPARTN=1\nPARTNAME=disk-hdd-ESP\n",
        );
        w("sys/block/sda/sda2/partition", "2\n");
        w("sys/block/sda/sda2/dev", "8:2\n");
        w("sys/block/sda/sda2/size", "3000\n");
        w("sys/block/sda/sda2/uevent", "PARTNAME=disk-hdd-pv\n");
        mk("sys/block/sda/sda2/holders/dm-0");
        w("sys/block/dm-0/dev", "254:0\n");
        w("sys/block/dm-0/dm/name", "pool_host-var\n");
        mk("sys/block/dm-0/holders/drbd0");
        w("sys/block/drbd0/dev", "147:0\n");
        w("sys/block/loop0/dev", "7:0\n");
        w("sys/block/loop0/size", "0\n");
        w("run/udev/data/b8:0", "S:disk/by-id/ata-QEMU_HARDDISK_HDD1\nE:ID_BUS=ata\nE:ID_SERIAL_SHORT=HDD1\nE:ID_MODEL=QEMU_HARDDISK\nE:ID_PART_TABLE_TYPE=gpt\n");
        w("run/udev/data/b8:2", "E:ID_FS_TYPE=LVM2_member\n");
        w("run/udev/data/b259:0", "E:ID_SERIAL_SHORT=NVME1\n");
        mk("dev/disk/by-id");
        std::os::unix::fs::symlink(
            "../../nvme0n1",
            root.join("dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_NVME1"),
        )
        .unwrap();
        w("mountinfo", "1 0 8:1 / /boot rw - vfat /dev/sda1 rw\n");
        w("swaps", "Filename Type Size Used Priority\n");
        let src = Sources {
            sys_block: root.join("sys/block"),
            dev: root.join("dev"),
            udev_data: root.join("run/udev/data"),
            mountinfo: root.join("mountinfo"),
            swaps: root.join("swaps"),
            blkid: false,
        };
        let st = read_block(&src).unwrap();
        let names: Vec<&str> = st.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda"]);
        let nvme = &st.disks[0];
        assert_eq!(nvme.transport, "nvme");
        assert_eq!(nvme.serial.as_deref(), Some("NVME1"));
        assert_eq!(nvme.size, 2000 * 512);
        assert!(!nvme.rotational);
        assert!(
            nvme.links
                .iter()
                .any(|l| l.ends_with("by-id/nvme-QEMU_NVMe_Ctrl_NVME1")),
            "{:?}",
            nvme.links
        );
        let sda = &st.disks[1];
        assert_eq!(sda.transport, "sata");
        assert!(sda.rotational);
        assert_eq!(
            (
                sda.logical_sector_size,
                sda.physical_sector_size,
                sda.optimal_io_size
            ),
            (4096, 4096, 1 << 20)
        );
        assert_eq!((nvme.logical_sector_size, nvme.optimal_io_size), (512, 0));
        assert_eq!(sda.pt_type.as_deref(), Some("gpt"));
        assert_eq!(sda.model.as_deref(), Some("QEMU HARDDISK"));
        assert_eq!(sda.partitions.len(), 2);
        assert_eq!(
            sda.partitions[0].part_label.as_deref(),
            Some("disk-hdd-ESP")
        );
        assert_eq!(sda.partitions[0].start, 2048 * 512);
        assert_eq!(sda.partitions[1].fs_type.as_deref(), Some("LVM2_member"));
        assert_eq!(sda.partitions[1].holders, ["dm-0"]);
        assert_eq!(st.virtual_devices.len(), 2);
        assert_eq!(st.virtual_device("dm-0").unwrap().holders, ["drbd0"]);
        assert_eq!(st.mount_of("8:1").unwrap().target, "/boot");
    }
}
