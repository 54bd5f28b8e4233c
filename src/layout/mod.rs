//! Layouts in disko's schema (DESIGN §5), YAML or JSON, plus a few clearly named extensions:
//! `disk.<name>.select` (disk selectors), top-level `ensure_dirs` and `lvm` (extra global_filter
//! rejects). Anything disko has that this agent does not do (zfs, luks, mdadm, btrfs subvolumes,
//! bcachefs, shell hooks) is rejected with its path in the layout — never silently skipped.
//! Argument lists keep disko's per-field semantics ([`parse::ArgList`]).

pub mod parse;
pub mod size;

use serde::Serialize;

pub use parse::{load, parse_str, LayoutErrors};
use size::{GptPos, LvSize, PartedPos};

/// A whole layout.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Layout {
    /// Disks, sorted by name.
    pub disks: Vec<Disk>,
    /// Volume groups, sorted by name.
    pub vgs: Vec<VolumeGroup>,
    /// Mounts without a device (tmpfs …).
    pub nodev: Vec<Nodev>,
    /// Directories to create after mounting (extension).
    pub ensure_dirs: Vec<EnsureDir>,
    /// Extra LVM global_filter reject patterns (extension), e.g. `r|^/dev/zd.*|`.
    pub lvm_reject: Vec<String>,
}

/// How a layout names a disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum DiskRef {
    /// `device: /dev/sda` or `/dev/disk/by-id/…`.
    Path { path: String },
    /// `select: {…}` (extension).
    Select(Selector),
}

/// Disk selector (extension): every given property must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Selector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    /// Exact model, or a pattern with `*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// nvme, sata, scsi, virtio, usb, loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

impl Selector {
    /// A selector names one physical disk only by serial or WWN.
    pub fn is_stable(&self) -> bool {
        self.serial.is_some() || self.wwn.is_some()
    }
}

impl DiskRef {
    /// Does this name a disk by an identity that cannot move to another disk between boots
    /// (by-id path, serial or WWN)?
    pub fn is_stable(&self) -> bool {
        match self {
            DiskRef::Path { path } => path.starts_with("/dev/disk/by-id/"),
            DiskRef::Select(s) => s.is_stable(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DiskRef::Path { path } => path.clone(),
            DiskRef::Select(s) => {
                format!("select {}", serde_json::to_string(s).unwrap_or_default())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disk {
    pub name: String,
    pub reference: DiskRef,
    pub content: Option<Content>,
}

/// What sits on a disk, partition or LV.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Gpt(Gpt),
    Table(Table),
    Filesystem(Filesystem),
    Swap(Swap),
    LvmPv { vg: String },
}

impl Content {
    /// disko's `type:` of this content (the device type that owns it).
    pub fn type_name(&self) -> &'static str {
        match self {
            Content::Gpt(_) => "gpt",
            Content::Table(_) => "table",
            Content::Filesystem(_) => "filesystem",
            Content::Swap(_) => "swap",
            Content::LvmPv { .. } => "lvm_pv",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpt {
    /// Sorted by (priority, name): the order they are created and numbered (disko sorts by
    /// priority, stably, over partitions in name order).
    pub partitions: Vec<GptPartition>,
    /// `efiGptPartitionFirst` (default true): in a hybrid MBR, the protective 0xEE entry comes
    /// first, before the hybrid partitions (false: after them). Only matters with `hybrid`.
    #[serde(skip_serializing_if = "is_true")]
    pub efi_gpt_partition_first: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A gpt partition's entry in a hybrid MBR (disko gpt.nix `hybrid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Hybrid {
    /// `mbrPartitionType`: the MBR type byte to set (None: the one sgdisk -h derives from the
    /// GPT type code).
    pub mbr_type: Option<u8>,
    /// `mbrBootableFlag`: set the MBR active flag on this entry.
    pub bootable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GptPartition {
    /// Key in the layout.
    pub name: String,
    /// GPT partition name (PARTLABEL).
    pub label: String,
    /// sgdisk type code (`8300`, `EF00`, `8E00` …) or a GUID.
    pub type_code: String,
    pub priority: i64,
    /// sgdisk grammar; resolved to sectors by `disks::geometry::gpt_extents`.
    pub start: GptPos,
    pub end: GptPos,
    pub attributes: Vec<u32>,
    pub uuid: Option<String>,
    /// This partition's entry in a hybrid MBR, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<Hybrid>,
    pub content: Option<Box<Content>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// `msdos` or `gpt`.
    pub format: String,
    pub partitions: Vec<TablePartition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TablePartition {
    pub name: String,
    /// The GPT partition name (PARTLABEL) disko gives it: `name` hex-escaped as parted gets it
    /// ([`parse::table_gpt_name`]); None on an msdos table.
    pub label: Option<String>,
    /// primary, extended, logical.
    pub part_type: String,
    pub bootable: bool,
    /// parted grammar; resolved to sectors by `disks::geometry::table_extents`.
    pub start: PartedPos,
    pub end: PartedPos,
    pub content: Option<Box<Content>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filesystem {
    pub format: String,
    pub mountpoint: Option<String>,
    pub mount_options: Vec<String>,
    /// mkfs arguments: one per `extraArgs` entry ([`parse::ArgList::Single`]).
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swap {
    pub priority: Option<i32>,
    pub discard: Option<String>,
    /// mkswap arguments: `extraArgs` split as shell words ([`parse::ArgList::ShellWords`]).
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeGroup {
    pub name: String,
    /// In creation order: fixed sizes first, then percentages, thin volumes last.
    pub lvs: Vec<LogicalVolume>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LvType {
    Linear,
    ThinPool,
    Thin {
        pool: String,
    },
    /// Another lvcreate `--type` (raid1, mirror, striped …), passed through.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogicalVolume {
    pub name: String,
    pub size: LvSize,
    pub lv_type: LvType,
    /// lvcreate arguments: `extraArgs` split as shell words ([`parse::ArgList::ShellWords`]).
    pub extra_args: Vec<String>,
    pub content: Option<Content>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nodev {
    pub name: String,
    pub fs_type: String,
    pub device: String,
    pub mountpoint: String,
    pub mount_options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnsureDir {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

impl Layout {
    pub fn vg(&self, name: &str) -> Option<&VolumeGroup> {
        self.vgs.iter().find(|v| v.name == name)
    }

    /// A stable hash of the layout (recorded as an LVM tag when provisioning completes).
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(&Sha256::digest(&json)[..8])
    }
}
