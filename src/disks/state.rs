//! Observed state of the machine's disks: what discovery reads (sysfs, libblkid, mountinfo,
//! /proc/swaps, lvm JSON reports) and what `provision status --output json` prints. `--state FILE`
//! reads the same JSON back, so a layout change can be planned offline against a node's snapshot.
//! The schema is documented in the README.

use serde::{Deserialize, Serialize};

/// Snapshot schema version.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SystemState {
    #[serde(default = "default_version")]
    pub version: u32,
    /// Whole disks (no partitions, dm, md, drbd, loop without backing file, ram, zram, sr).
    #[serde(default)]
    pub disks: Vec<BlockDevice>,
    /// Device-mapper, md and drbd devices with their holders (for busy checks).
    #[serde(default)]
    pub virtual_devices: Vec<VirtualDevice>,
    #[serde(default)]
    pub pvs: Vec<Pv>,
    #[serde(default)]
    pub vgs: Vec<Vg>,
    #[serde(default)]
    pub lvs: Vec<Lv>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Active swap devices/files (paths as in /proc/swaps), with their maj:min when a device.
    #[serde(default)]
    pub swaps: Vec<SwapEntry>,
    /// `lvm version` (e.g. "2.03.16"), None when lvm is not installed.
    #[serde(default)]
    pub lvm_version: Option<String>,
    /// True when PVs, VGs and LVs were not read (a mount-only boot without a flag reads them only
    /// when activation finds something missing, see `disks::run`): `pvs`/`vgs`/`lvs` are then
    /// unknown, not empty. Snapshots (`status`, `--dry-run`) always read them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lvm_unread: bool,
    /// True when filesystem types and labels come from the udev database, not a libblkid probe
    /// (the every-boot path, see `disks::lvm_read_for`): the planner then leaves each device's
    /// type check to the executor, which probes right before the fsck, mount or swapon.
    /// Snapshots (`status`, `--dry-run`) always probe.
    #[serde(default, skip_serializing_if = "is_false")]
    pub types_from_udev: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_sector() -> u32 {
    512
}

fn default_version() -> u32 {
    STATE_VERSION
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BlockDevice {
    /// Kernel name, e.g. `nvme0n1`.
    pub name: String,
    /// `/dev/nvme0n1`.
    pub path: String,
    /// `major:minor`.
    pub maj_min: String,
    /// Bytes.
    pub size: u64,
    /// Logical sector size in bytes (sysfs `queue/logical_block_size`); snapshots without it
    /// are read as 512.
    #[serde(default = "default_sector")]
    pub logical_sector_size: u32,
    /// Physical block size in bytes (`queue/physical_block_size`).
    #[serde(default = "default_sector")]
    pub physical_sector_size: u32,
    /// Optimal I/O size in bytes (`queue/optimal_io_size`), 0 when not reported.
    #[serde(default)]
    pub optimal_io_size: u32,
    #[serde(default)]
    pub rotational: bool,
    #[serde(default)]
    pub removable: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub wwn: Option<String>,
    /// nvme, sata, scsi, virtio, usb, loop, or unknown.
    #[serde(default)]
    pub transport: String,
    /// Symlinks under /dev/disk/by-id and /dev/disk/by-path pointing here (full paths).
    #[serde(default)]
    pub links: Vec<String>,
    /// Partition table type from libblkid (`gpt`, `dos`), if any.
    #[serde(default)]
    pub pt_type: Option<String>,
    /// Superblock on the whole disk (e.g. `LVM2_member`, `ext4`, `drbd`).
    #[serde(default)]
    pub fs_type: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Kernel names of holders (e.g. `dm-0`).
    #[serde(default)]
    pub holders: Vec<String>,
    #[serde(default)]
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub name: String,
    pub path: String,
    pub maj_min: String,
    pub number: u32,
    pub size: u64,
    /// Start in bytes.
    #[serde(default)]
    pub start: u64,
    /// GPT partition name (PARTLABEL).
    #[serde(default)]
    pub part_label: Option<String>,
    #[serde(default)]
    pub fs_type: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub holders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VirtualDevice {
    /// `dm-3`, `drbd0`, `md0`.
    pub name: String,
    pub maj_min: String,
    /// dm name (`pool_gnt-disk0`) for device-mapper devices.
    #[serde(default)]
    pub dm_name: Option<String>,
    #[serde(default)]
    pub holders: Vec<String>,
    /// Kernel names this device sits on (its `slaves`).
    #[serde(default)]
    pub slaves: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pv {
    pub pv_name: String,
    #[serde(default)]
    pub vg_name: String,
    #[serde(default)]
    pub pv_size: u64,
    /// Metadata areas on this PV (`pv_mda_count`). A PV with one of its own and no VG holds no
    /// VG, so no data; one with none may belong to a VG whose metadata is on an absent disk.
    /// None: unknown (a snapshot without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pv_mda_count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Vg {
    pub vg_name: String,
    #[serde(default)]
    pub vg_tags: Vec<String>,
    #[serde(default)]
    pub vg_size: u64,
    #[serde(default)]
    pub vg_free: u64,
    #[serde(default)]
    pub lv_count: u32,
    #[serde(default)]
    pub pv_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Lv {
    pub vg_name: String,
    pub lv_name: String,
    #[serde(default)]
    pub lv_size: u64,
    /// lvm's lv_attr string (`-wi-ao----`): 5th char `a` = active, 6th `o` = open.
    #[serde(default)]
    pub lv_attr: String,
    #[serde(default)]
    pub segtype: String,
    #[serde(default)]
    pub pool_lv: String,
    /// `major:minor` of the active LV's dm device, if active.
    #[serde(default)]
    pub maj_min: Option<String>,
    /// True when the LV's device was probed with libblkid (an active LV that the layout gives
    /// content, on a full read); `fs_type` is then what was found. False: unknown.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fs_probed: bool,
    /// Superblock type on the LV (`ext4`, `swap` …), when probed and found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
}

impl Lv {
    pub fn active(&self) -> bool {
        self.lv_attr.chars().nth(4) == Some('a')
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub maj_min: String,
    pub source: String,
    pub target: String,
    pub fs_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SwapEntry {
    pub path: String,
    #[serde(default)]
    pub maj_min: Option<String>,
}

/// The kernel's disk name suffix for index `i`: a…z, aa…zz, aaa… (as `sd_format_disk_name`).
fn disk_letters(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

impl SystemState {
    /// A machine with blank disks matching a layout's path-named disks (tests and examples).
    /// Selector-named disks get a disk whose properties satisfy the selector.
    pub fn blank_for(layout: &crate::layout::Layout, size: u64) -> SystemState {
        use crate::layout::DiskRef;
        let mut s = SystemState {
            version: STATE_VERSION,
            lvm_version: Some("2.03.16".into()),
            ..Default::default()
        };
        for (i, d) in layout.disks.iter().enumerate() {
            let name = format!("vd{}", disk_letters(i));
            let mut b = BlockDevice {
                path: format!("/dev/{name}"),
                maj_min: format!("254:{}", i * 16),
                size,
                transport: "virtio".into(),
                name,
                ..Default::default()
            };
            match &d.reference {
                DiskRef::Path { path } => {
                    if path != &b.path {
                        b.links.push(path.clone());
                    }
                }
                DiskRef::Select(sel) => {
                    b.serial = sel.serial.clone();
                    b.wwn = sel.wwn.clone();
                    b.model = sel.model.as_ref().map(|m| m.replace('*', "x"));
                    if let Some(t) = &sel.transport {
                        b.transport = t.clone();
                    }
                    b.rotational = sel.rotational.unwrap_or(false);
                    b.size = sel.min_size.or(sel.max_size).unwrap_or(size);
                }
            }
            s.disks.push(b);
        }
        s
    }

    /// The holders of a kernel device (disk, partition or virtual).
    pub fn holders_of(&self, name: &str) -> Vec<String> {
        for d in &self.disks {
            if d.name == name {
                return d.holders.clone();
            }
            for p in &d.partitions {
                if p.name == name {
                    return p.holders.clone();
                }
            }
        }
        self.virtual_devices
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.holders.clone())
            .unwrap_or_default()
    }

    pub fn virtual_device(&self, name: &str) -> Option<&VirtualDevice> {
        self.virtual_devices.iter().find(|v| v.name == name)
    }

    pub fn mount_of(&self, maj_min: &str) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.maj_min == maj_min)
    }

    pub fn is_swap(&self, maj_min: &str, path: &str) -> bool {
        self.swaps
            .iter()
            .any(|s| s.maj_min.as_deref() == Some(maj_min) || s.path == path)
    }

    pub fn vg(&self, name: &str) -> Option<&Vg> {
        self.vgs.iter().find(|v| v.vg_name == name)
    }
}
