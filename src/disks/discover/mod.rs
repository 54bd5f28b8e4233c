//! Discovery: the observed state of this machine's disks, read from sysfs, the udev database,
//! libblkid, /proc/self/mountinfo, /proc/swaps and lvm's JSON reports. Read-only.
//!
//! This file reads sysfs and the udev database (disks, partitions, dm/md/drbd devices) and puts
//! the state together; `blkid.rs` probes devices, `proc.rs` parses mountinfo and swaps, `lvm.rs`
//! reads LVM.

use anyhow::{Context as _, Result};
use std::fs;
use std::path::{Path, PathBuf};

use super::state::*;
use blkid::{blkid_probe, Probe};

mod blkid;
mod lvm;
mod proc;

pub use blkid::{probe_type, probe_type_expecting, read_table, TableEntry};
pub use lvm::{
    fullreport_argv, lvm_conf_knows_devicesfile, parse_fullreport, probe_lvs, read_fullreport,
    read_lvm, report_rows, LvmRead,
};
pub use proc::{parse_mountinfo, parse_swaps};

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
