//! The pure planner (DESIGN §6): layout + observed state + kernel cmdline → an ordered plan.
//!
//! Everything that decides whether disks may be touched is decided here, for all disks at once,
//! before anything runs: the mode (mount-only unless the cmdline asks), disk resolution, the
//! blank/ours/foreign classification and every safety refusal. `--dry-run` prints exactly this
//! plan; the executor only carries it out.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::geometry::{self, DiskGeometry, Extent, GeometryError, TableFormat};
use super::state::{BlockDevice, SystemState};
use crate::cmdline::{ProvisionRequest, Settings};
use crate::layout::size::human;
use crate::layout::{Content, Disk, DiskRef, Filesystem, Layout, LvType, Selector, Swap};

/// LVM tag prefix recording the layout hash when provisioning completed.
pub const TAG_LAYOUT: &str = "provision.layout=";
/// LVM tag prefix recording a consumed wipe-once token.
pub const TAG_TOKEN: &str = "provision.token=";
/// Where the LVM settings are written on the node by default.
pub const DEFAULT_LVM_CONF: &str = "/etc/lvm/lvmlocal.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    MountOnly,
    Provision,
    Refused,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::MountOnly => "mount-only",
            Mode::Provision => "provision",
            Mode::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Layout disk name (or `cmdline`).
    pub disk: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskClass {
    Blank,
    Ours,
    Foreign,
}

/// How a layout disk was matched on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskMatch {
    pub name: String,
    pub reference: String,
    pub stable: bool,
    /// Kernel path (`/dev/nvme0n1`), None when it could not be resolved.
    pub device: Option<String>,
    pub size: Option<u64>,
    pub class: Option<DiskClass>,
    /// What is on it now, in words.
    pub content: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    WriteFile,
    Deactivate,
    Wipe,
    Partition,
    /// Read the partition table back from the disk and compare it with the plan.
    VerifyTable,
    WaitDevice,
    PvCreate,
    VgCreate,
    LvCreate,
    Mkfs,
    Mkswap,
    Tag,
    Activate,
    Fsck,
    Mount,
    Swapon,
    EnsureDir,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub op: Op,
    pub destructive: bool,
    /// The exact external command, when the step is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Fed to the command's stdin (sfdisk scripts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The partition table a `VerifyTable` step expects on `device`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<PlannedTable>,
    /// Human description (`formatting pool_host/var (ext4)`).
    pub description: String,
}

impl Action {
    fn new(op: Op, destructive: bool, description: impl Into<String>) -> Action {
        Action {
            op,
            destructive,
            argv: None,
            stdin: None,
            device: None,
            target: None,
            fs_type: None,
            options: None,
            owner: None,
            group: None,
            mode: None,
            content: None,
            table: None,
            description: description.into(),
        }
    }
    fn cmd(mut self, argv: Vec<String>) -> Action {
        self.argv = Some(argv);
        self
    }
    fn dev(mut self, d: &str) -> Action {
        self.device = Some(d.to_string());
        self
    }
}

/// A partition table as planned, in bytes, for the read-back after partitioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedTable {
    /// `gpt` or `dos` (libblkid's names).
    pub kind: String,
    pub partitions: Vec<PlannedPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    pub number: u32,
    /// Bytes from the disk's start.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    /// GPT partition name; None on msdos.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub mode: Mode,
    /// Why this mode (`homelab.provision_disks=tok1: token not yet consumed`).
    pub reason: String,
    pub layout_hash: String,
    pub disks: Vec<DiskMatch>,
    pub refusals: Vec<Refusal>,
    /// In words, what a provision run destroys.
    pub destroys: Vec<String>,
    /// Mount-only: things the layout needs that are not there (the run fails naming them).
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
    pub actions: Vec<Action>,
    pub plan_hash: String,
}

/// Planner knobs that come from the config rather than the layout.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Where to write the LVM settings (default [`DEFAULT_LVM_CONF`]).
    pub lvm_conf: Option<String>,
    /// The target root the layout's mountpoints are under (`--root`; default `/`): a layout
    /// filesystem already mounted at its place is not checked again by a real run, so neither
    /// is it here.
    pub root: Option<std::path::PathBuf>,
}

fn s(x: &str) -> String {
    x.to_string()
}

/// The LVM `devices` settings this agent runs every lvm command with (as `--config`) and
/// writes into the node's lvm config: DRBD devices rejected by global_filter — the filter pvscan
/// and event activation honour —, LVs never scanned for PV
/// labels (`scan_lvs = 0`, lvm's default since 2.03: the LV under a DRBD device starts with the
/// guest's PV label), and no devices file where lvm has one (a netbooted node has no persistent
/// system.devices; the filter is the mechanism).
pub fn lvm_devices_settings(layout: &Layout, lvm_version: Option<&str>) -> Vec<String> {
    // Rejects only, no trailing "a|.*|": lvm accepts a device if ANY of its names matches an
    // accept pattern first, and a DRBD device has names no reject can foresee (/dev/block/147:0,
    // udev's /dev/disk/by-id/lvm-pv-uuid-… for the PV inside). Names that match no pattern do
    // not count, a device none of whose names match is accepted: so every other disk is seen,
    // and DRBD devices, whose kernel name matches a reject, are not. (Proven in the disks-drbd
    // VM scenario, which failed with the "a|.*|" form.)
    let mut filter = vec![s("\"r|^/dev/drbd[0-9]+$|\""), s("\"r|^/dev/drbd/|\"")];
    filter.extend(layout.lvm_reject.iter().map(|r| format!("\"{r}\"")));
    let mut out = vec![
        format!("global_filter = [ {} ]", filter.join(", ")),
        s("scan_lvs = 0"),
    ];
    if lvm_supports_devicesfile(lvm_version) {
        out.push(s("use_devicesfile = 0"));
    }
    out
}

/// The settings as one `--config` argument: `devices { … }`.
pub fn lvm_devices_config(layout: &Layout, lvm_version: Option<&str>) -> String {
    format!(
        "devices {{ {} }}",
        lvm_devices_settings(layout, lvm_version).join(" ")
    )
}

/// `use_devicesfile` exists from lvm 2.03.12 on (unknown version: assume a current lvm).
fn lvm_supports_devicesfile(v: Option<&str>) -> bool {
    let Some(v) = v else { return true };
    let nums: Vec<u32> = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    nums.as_slice() >= [2, 3, 12].as_slice()
}

/// lvm command line with our `--config`.
fn lvm(cfg: &str, sub: &str, args: &[String]) -> Vec<String> {
    let mut v = vec![s("lvm"), s(sub), s("--config"), cfg.to_string()];
    v.extend(args.iter().cloned());
    v
}

/// The device path of partition `n` of a disk (`/dev/sda` → `/dev/sda2`, `/dev/nvme0n1` →
/// `/dev/nvme0n1p2`).
pub fn partition_path(disk_path: &str, n: usize) -> String {
    if disk_path.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk_path}p{n}")
    } else {
        format!("{disk_path}{n}")
    }
}

/// dm name of an LV (`-` doubled inside names).
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

fn glob_match(pat: &str, text: &str) -> bool {
    match pat.split_once('*') {
        None => pat == text,
        Some((pre, rest)) => {
            if !text.starts_with(pre) {
                return false;
            }
            let t = &text[pre.len()..];
            if rest.is_empty() {
                return true;
            }
            (0..=t.len()).any(|i| t.is_char_boundary(i) && glob_match(rest, &t[i..]))
        }
    }
}

fn norm_wwn(w: &str) -> String {
    let w = w.trim().to_ascii_lowercase();
    for p in ["0x", "naa.", "eui.", "t10."] {
        if let Some(r) = w.strip_prefix(p) {
            return r.to_string();
        }
    }
    w
}

fn selector_matches(sel: &Selector, d: &BlockDevice) -> bool {
    if d.read_only {
        return false;
    }
    if d.transport == "loop" && sel.transport.as_deref() != Some("loop") {
        return false;
    }
    let eq = |want: &Option<String>, have: &Option<String>| match want {
        None => true,
        Some(w) => have.as_deref().map(str::trim) == Some(w.trim()),
    };
    if !eq(&sel.serial, &d.serial) {
        return false;
    }
    if let Some(w) = &sel.wwn {
        if d.wwn.as_deref().map(norm_wwn) != Some(norm_wwn(w)) {
            return false;
        }
    }
    if let Some(m) = &sel.model {
        if !d
            .model
            .as_deref()
            .is_some_and(|dm| glob_match(m, dm.trim()))
        {
            return false;
        }
    }
    if let Some(t) = &sel.transport {
        let t = if t == "ata" { "sata" } else { t.as_str() };
        if d.transport != t {
            return false;
        }
    }
    if sel.rotational.is_some_and(|r| r != d.rotational) {
        return false;
    }
    if sel.min_size.is_some_and(|m| d.size < m) || sel.max_size.is_some_and(|m| d.size > m) {
        return false;
    }
    true
}

fn describe_dev(d: &BlockDevice) -> String {
    let mut parts = vec![d.path.clone(), human(d.size)];
    if let Some(m) = &d.model {
        parts.push(m.trim().to_string());
    }
    if let Some(sn) = &d.serial {
        parts.push(format!("serial {}", sn.trim()));
    }
    parts.join(", ")
}

/// The disks of this machine that a layout disk names (by path or selector).
pub fn matching_disks<'a>(disk: &Disk, state: &'a SystemState) -> Vec<&'a BlockDevice> {
    match &disk.reference {
        DiskRef::Path { path } => state
            .disks
            .iter()
            .filter(|d| &d.path == path || d.links.iter().any(|l| l == path))
            .collect(),
        DiskRef::Select(sel) => state
            .disks
            .iter()
            .filter(|d| selector_matches(sel, d))
            .collect(),
    }
}

/// Find the one disk a layout disk names.
pub fn resolve<'a>(disk: &Disk, state: &'a SystemState) -> Result<&'a BlockDevice, String> {
    let m = matching_disks(disk, state);
    match (&disk.reference, m.len()) {
        (_, 1) => Ok(m[0]),
        (DiskRef::Path { path }, _) => {
            let is_part = state
                .disks
                .iter()
                .any(|d| d.partitions.iter().any(|p| &p.path == path));
            Err(if is_part {
                format!("{path} is a partition, not a whole disk")
            } else {
                format!("no disk {path} on this machine")
            })
        }
        (DiskRef::Select(sel), 0) => Err(format!(
            "selector {} matches no disk (disks here: {})",
            serde_json::to_string(sel).unwrap_or_default(),
            if state.disks.is_empty() {
                "none".to_string()
            } else {
                state
                    .disks
                    .iter()
                    .map(describe_dev)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        )),
        (DiskRef::Select(sel), n) => Err(format!(
            "selector {} matches {n} disks ({}): refusing to guess — add serial or wwn",
            serde_json::to_string(sel).unwrap_or_default(),
            m.iter()
                .map(|d| describe_dev(d))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// One partition of a layout disk, whichever schema (`gpt` or disko's legacy `table`) gave it:
/// numbered from 1 in creation order.
struct PartView<'a> {
    number: usize,
    /// Key in the layout.
    name: &'a str,
    /// The GPT partition name it gets (none on an msdos table).
    label: Option<&'a str>,
    content: Option<&'a Content>,
}

/// The partitions a layout disk is cut into (none for a whole-disk PV or filesystem).
fn partitions(disk: &Disk) -> Vec<PartView<'_>> {
    let parts: Vec<(&str, Option<&str>, Option<&Content>)> = match &disk.content {
        Some(Content::Gpt(g)) => g
            .partitions
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    Some(p.label.as_str()),
                    p.content.as_deref(),
                )
            })
            .collect(),
        Some(Content::Table(t)) => t
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.label.as_deref(), p.content.as_deref()))
            .collect(),
        _ => Vec::new(),
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(n, (name, label, content))| PartView {
            number: n + 1,
            name,
            label,
            content,
        })
        .collect()
}

/// Expected GPT partition labels of a layout disk.
fn expected_labels(disk: &Disk) -> Vec<String> {
    partitions(disk)
        .iter()
        .filter_map(|p| p.label.map(String::from))
        .collect()
}

/// What is on a disk, in words, and whether any of it is foreign to the layout. The class is None
/// when it cannot be told because LVM was not read (a mount-only run, where it does not matter).
fn classify(
    disk: &Disk,
    dev: &BlockDevice,
    layout: &Layout,
    state: &SystemState,
) -> (Option<DiskClass>, Vec<String>, Vec<String>) {
    let layout_vgs: Vec<&str> = layout.vgs.iter().map(|v| v.name.as_str()).collect();
    let labels = expected_labels(disk);
    let mut content = Vec::new();
    let mut foreign = Vec::new();
    let mut ours = false;
    let mut unknown = false;
    let mut judge = |path: &str,
                     fs: &Option<String>,
                     label: &Option<String>,
                     partlabel: Option<&String>| {
        let what = match fs.as_deref() {
            Some("LVM2_member") if state.lvm_unread => {
                // A mount-only boot did not read LVM: which VG this PV holds is unknown.
                unknown = true;
                "LVM PV (VGs not read on a mount-only run)".to_string()
            }
            Some("LVM2_member") => {
                match state.pvs.iter().find(|p| p.pv_name == path) {
                    Some(pv) if !pv.vg_name.is_empty() => {
                        let vg = &pv.vg_name;
                        let desc = vg_words(vg, state);
                        if layout_vgs.contains(&vg.as_str()) {
                            ours = true;
                        } else {
                            foreign.push(format!("{path}: {desc}"));
                        }
                        desc
                    }
                    pv => {
                        // A PV with a metadata area of its own but no VG holds no VG, so no
                        // data: what a provisioning run cut off between pvcreate and vgcreate
                        // leaves. Without one (pvmetadatacopies=0, or unknown) it may be part
                        // of a VG whose metadata is on a disk that is not here: foreign.
                        let empty = pv.is_some_and(|p| p.pv_mda_count.is_some_and(|n| n > 0));
                        if partlabel.is_some_and(|l| labels.contains(l)) {
                            ours = true;
                            "LVM PV without a VG".to_string()
                        } else if empty {
                            "LVM PV without a VG (holds no data)".to_string()
                        } else {
                            let d = "LVM PV without a VG or a metadata area of its own (its VG's metadata may be on a disk that is not here)".to_string();
                            foreign.push(format!("{path}: {d}"));
                            d
                        }
                    }
                }
            }
            Some(t) => {
                let kind = signature_words(t);
                let d = match label {
                    Some(l) if !l.is_empty() => format!("{kind} {l:?}"),
                    _ => kind,
                };
                if partlabel.is_some_and(|l| labels.contains(l)) {
                    ours = true;
                } else {
                    foreign.push(format!("{path}: {d}"));
                }
                d
            }
            None => {
                if let Some(pl) = partlabel {
                    if labels.contains(pl) {
                        ours = true;
                    } else {
                        foreign.push(format!("{path}: partition {pl:?}"));
                    }
                    format!("partition {pl:?}, no filesystem")
                } else {
                    if path != dev.path {
                        foreign.push(format!("{path}: unnamed partition"));
                    }
                    "no filesystem".into()
                }
            }
        };
        content.push(format!("{path}: {what}"));
    };
    if dev.fs_type.is_some() {
        judge(&dev.path, &dev.fs_type, &dev.label, None);
    }
    for p in &dev.partitions {
        judge(&p.path, &p.fs_type, &p.label, p.part_label.as_ref());
    }
    if let Some(pt) = &dev.pt_type {
        content.insert(
            0,
            format!(
                "{pt} partition table, {} partition(s)",
                dev.partitions.len()
            ),
        );
    }
    let class = if unknown && foreign.is_empty() {
        None
    } else if dev.fs_type.is_none() && dev.partitions.is_empty() {
        Some(DiskClass::Blank)
    } else if foreign.is_empty() && ours {
        Some(DiskClass::Ours)
    } else if foreign.is_empty() {
        Some(DiskClass::Blank)
    } else {
        Some(DiskClass::Foreign)
    };
    (class, content, foreign)
}

/// A libblkid signature type in an operator's words: "ext4 filesystem", "DRBD metadata".
fn signature_words(t: &str) -> String {
    match t {
        "drbd" => "DRBD metadata".into(),
        "linux_raid_member" => "md RAID member".into(),
        "crypto_LUKS" => "LUKS encrypted volume".into(),
        "swap" => "swap space".into(),
        "zfs_member" => "ZFS pool member".into(),
        "bcache" => "bcache backing device".into(),
        t => format!("{t} filesystem"),
    }
}

fn vg_words(vg: &str, state: &SystemState) -> String {
    match state.vg(vg) {
        Some(v) => format!(
            "VG {vg}, {} LV{}, {} used",
            v.lv_count,
            if v.lv_count == 1 { "" } else { "s" },
            human(v.vg_size.saturating_sub(v.vg_free))
        ),
        None => format!("PV of VG {vg}"),
    }
}

/// VG names with a PV on this disk (or its partitions), per the observed state.
fn observed_vgs_on(dev: &BlockDevice, state: &SystemState) -> Vec<String> {
    let mut paths = vec![dev.path.as_str()];
    paths.extend(dev.partitions.iter().map(|p| p.path.as_str()));
    let mut vgs: Vec<String> = state
        .pvs
        .iter()
        .filter(|pv| paths.contains(&pv.pv_name.as_str()) && !pv.vg_name.is_empty())
        .map(|pv| pv.vg_name.clone())
        .collect();
    vgs.sort();
    vgs.dedup();
    vgs
}

/// Why a device (or what sits on it) is busy. `our_vgs` are the VGs this plan deactivates (their
/// LVs are looked through: mounted, swap, open, or held by DRBD/md/other dm is busy). A device
/// reached twice gives its reasons twice: the caller removes repeats.
fn busy_reasons(
    name: &str,
    path: &str,
    maj_min: &str,
    our_vgs: &[String],
    state: &SystemState,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    if let Some(m) = state.mount_of(maj_min) {
        out.push(format!("{path} is mounted at {}", m.target));
    }
    if state.is_swap(maj_min, path) {
        out.push(format!("{path} is in use as swap"));
    }
    for h in state.holders_of(name) {
        let v = state.virtual_device(&h);
        let lv = v.and_then(|v| v.dm_name.as_deref()).and_then(|dm| {
            state
                .lvs
                .iter()
                .find(|l| our_vgs.contains(&l.vg_name) && dm_name(&l.vg_name, &l.lv_name) == dm)
        });
        let dm_of_our_vg = v.and_then(|v| v.dm_name.as_deref()).is_some_and(|dm| {
            our_vgs
                .iter()
                .any(|vg| dm.starts_with(&format!("{}-", vg.replace('-', "--"))))
        });
        match (v, lv) {
            (Some(v), Some(lv)) => {
                let lvpath = format!("/dev/{}/{}", lv.vg_name, lv.lv_name);
                if lv.lv_attr.chars().nth(5) == Some('o')
                    && state.mount_of(&v.maj_min).is_none()
                    && !state.is_swap(&v.maj_min, &lvpath)
                    && v.holders.is_empty()
                {
                    out.push(format!(
                        "LV {}/{} is open (in use by a process)",
                        lv.vg_name, lv.lv_name
                    ));
                }
                busy_reasons(&v.name, &lvpath, &v.maj_min, our_vgs, state, out, depth + 1);
            }
            (Some(v), None) if dm_of_our_vg => {
                // internal dm devices of our VGs (thin pool data/meta …): look through them
                busy_reasons(
                    &v.name,
                    &format!("/dev/{}", v.name),
                    &v.maj_min,
                    our_vgs,
                    state,
                    out,
                    depth + 1,
                );
            }
            _ if h.starts_with("drbd") => out.push(format!("{path} backs active DRBD device {h}")),
            (Some(v), None) => out.push(format!(
                "{path} is held by {}",
                v.dm_name
                    .as_deref()
                    .map(|d| format!("{d} ({})", v.name))
                    .unwrap_or_else(|| v.name.clone()),
            )),
            (None, _) => out.push(format!("{path} is held by {h}")),
        }
    }
}

/// Compute the plan.
pub fn plan(
    layout: &Layout,
    state: &SystemState,
    cmdline: &Settings,
    opts: &PlanOptions,
) -> anyhow::Result<Plan> {
    let layout_hash = layout.hash();
    let lvm_settings = lvm_devices_settings(layout, state.lvm_version.as_deref());
    let lvm_cfg = format!("devices {{ {} }}", lvm_settings.join(" "));
    let mut warnings: Vec<String> = cmdline
        .unknown
        .iter()
        .map(|k| format!("kernel cmdline: unknown key {k} under our prefix (typo?) — ignored"))
        .collect();
    let mut refusals = Vec::new();
    let mut missing = Vec::new();

    // 1. Resolve every disk.
    let mut matches = Vec::new();
    let mut resolved: Vec<Option<&BlockDevice>> = Vec::new();
    for d in &layout.disks {
        let r = resolve(d, state);
        let mut m = DiskMatch {
            name: d.name.clone(),
            reference: d.reference.describe(),
            stable: d.reference.is_stable(),
            device: None,
            size: None,
            class: None,
            content: Vec::new(),
        };
        match r {
            Ok(dev) => {
                m.device = Some(dev.path.clone());
                m.size = Some(dev.size);
                resolved.push(Some(dev));
            }
            Err(e) => {
                refusals.push(Refusal {
                    disk: d.name.clone(),
                    reason: e,
                });
                resolved.push(None);
            }
        }
        matches.push(m);
    }
    for i in 0..resolved.len() {
        for j in 0..i {
            if let (Some(a), Some(b)) = (resolved[i], resolved[j]) {
                if a.path == b.path {
                    refusals.push(Refusal {
                        disk: layout.disks[i].name.clone(),
                        reason: format!(
                            "resolves to {}, which is also disk {}",
                            a.path, layout.disks[j].name
                        ),
                    });
                }
            }
        }
    }

    // 2. Mode.
    let bad: Vec<String> = cmdline.bad_destructive().map(|b| b.to_string()).collect();
    let key = format!("{}.provision_disks", cmdline.prefix);
    let (mut mode, reason) = if !bad.is_empty() {
        for b in &bad {
            refusals.push(Refusal {
                disk: "cmdline".into(),
                reason: format!("{b}: nothing will be wiped"),
            });
        }
        (
            Mode::Refused,
            "the kernel cmdline has an unparseable value for a disk-wiping key".to_string(),
        )
    } else {
        match &cmdline.provision {
            ProvisionRequest::No => (Mode::MountOnly, format!("{key} not set")),
            ProvisionRequest::Always => {
                warnings.push(format!("{key}=true: the disks are wiped on EVERY boot that carries this flag; a wipe-once token ({key}=<token>) is safer"));
                (Mode::Provision, format!("{key}=true"))
            }
            ProvisionRequest::Token(t) => {
                if layout.vgs.is_empty() {
                    refusals.push(Refusal { disk: "cmdline".into(), reason: format!("{key}={t}: token mode records the token as an LVM VG tag, and this layout has no VG") });
                    (Mode::Refused, "token mode needs an LVM VG".into())
                } else {
                    let tag = format!("{TAG_TOKEN}{t}");
                    let consumed = layout
                        .vgs
                        .iter()
                        .all(|vg| state.vg(&vg.name).is_some_and(|o| o.vg_tags.contains(&tag)));
                    if consumed {
                        (
                            Mode::MountOnly,
                            format!("{key}={t}: token already consumed on these disks"),
                        )
                    } else {
                        (
                            Mode::Provision,
                            format!("{key}={t}: token not yet consumed"),
                        )
                    }
                }
            }
        }
    };

    // 3. Safety (provision only) — for every disk before anything is planned.
    let target_paths: Vec<String> = resolved.iter().flatten().map(|d| d.path.clone()).collect();
    let mut destroys = Vec::new();
    let mut deactivate: Vec<String> = Vec::new();
    for (i, d) in layout.disks.iter().enumerate() {
        let Some(dev) = resolved[i] else { continue };
        let (class, content, foreign) = classify(d, dev, layout, state);
        matches[i].class = class;
        matches[i].content = content.clone();
        if mode != Mode::Provision {
            continue;
        }
        // Provisioning always plans on a full LVM read (disks::lvm_read_for).
        let class = class.unwrap_or(DiskClass::Foreign);
        let vgs_here = observed_vgs_on(dev, state);
        let mut reasons = Vec::new();
        // VGs that reach beyond the target disks would be broken by the wipe.
        for vg in &vgs_here {
            for pv in state.pvs.iter().filter(|p| &p.vg_name == vg) {
                let on_target = target_paths.iter().any(|t| {
                    state.disks.iter().find(|x| &x.path == t).is_some_and(|x| {
                        x.path == pv.pv_name || x.partitions.iter().any(|p| p.path == pv.pv_name)
                    })
                });
                if !on_target {
                    reasons.push(format!("VG {vg} also has PV {} on a disk the layout does not name: wiping {} would break it", pv.pv_name, dev.path));
                }
            }
            if !deactivate.contains(vg) {
                deactivate.push(vg.clone());
            }
        }
        busy_reasons(
            &dev.name,
            &dev.path,
            &dev.maj_min,
            &vgs_here,
            state,
            &mut reasons,
            0,
        );
        for p in &dev.partitions {
            busy_reasons(
                &p.name,
                &p.path,
                &p.maj_min,
                &vgs_here,
                state,
                &mut reasons,
                0,
            );
        }
        if class == DiskClass::Foreign
            && !d.reference.is_stable()
            && !cmdline.wipe_foreign.allows(&d.name, &dev.path)
        {
            reasons.push(format!(
                "holds data that is not this layout's ({}) and is named by {}, which does not identify one physical disk: name it by /dev/disk/by-id/… or a serial/wwn selector, or allow it with {}.wipe_foreign={}",
                foreign.join("; "),
                d.reference.describe(),
                cmdline.prefix,
                d.name
            ));
        }
        let mut seen = std::collections::HashSet::new();
        reasons.retain(|r| seen.insert(r.clone()));
        for r in reasons {
            refusals.push(Refusal {
                disk: d.name.clone(),
                reason: r,
            });
        }
        if class != DiskClass::Blank {
            let what: Vec<String> = if vgs_here.is_empty() {
                content.clone()
            } else {
                let mut w: Vec<String> = vgs_here.iter().map(|vg| vg_words(vg, state)).collect();
                w.extend(content.iter().filter(|c| !c.contains("LVM")).cloned());
                w
            };
            destroys.push(format!(
                "{} (disk {}): {} — WILL BE DESTROYED",
                dev.path,
                d.name,
                what.join("; ")
            ));
        }
    }
    if mode == Mode::Provision {
        refusals.extend(vg_names_taken_elsewhere(layout, state, &target_paths));
    }
    if !refusals.is_empty() && mode == Mode::Provision {
        mode = Mode::Refused;
    }
    if mode == Mode::Refused {
        destroys.clear();
    }

    // 4. Actions.
    let mut actions = Vec::new();
    if mode != Mode::Refused {
        actions.push(lvm_conf_action(&lvm_settings, opts));
        if mode == Mode::Provision {
            provision_actions(
                layout,
                &resolved,
                &deactivate,
                &lvm_cfg,
                &layout_hash,
                cmdline,
                &mut actions,
            )?;
        }
        mount_actions(
            layout,
            state,
            &resolved,
            mode,
            &lvm_cfg,
            &cmdline.prefix,
            &mut actions,
            &mut missing,
        );
        if mode == Mode::MountOnly {
            let root = opts.root.as_deref().unwrap_or(std::path::Path::new("/"));
            missing.extend(wrong_filesystems(layout, state, &resolved, root));
        }
    }
    if mode == Mode::MountOnly {
        // refusals from resolution matter only where mount-only needs the disk
        refusals.retain(|r| r.disk == "cmdline");
    }
    let mut plan = Plan {
        mode,
        reason,
        layout_hash,
        disks: matches,
        refusals,
        destroys,
        missing,
        warnings,
        actions,
        plan_hash: String::new(),
    };
    plan.plan_hash = plan_hash(&plan);
    Ok(plan)
}

/// Steps that run concurrently: maximal runs of consecutive "wait for a device, then format it"
/// pairs (provisioning's mkfs/mkswap of different partitions and LVs, which share nothing), at
/// least two of them. Each entry is one run; each inner list one device's chain of step indexes
/// (0-based, in plan order). Everything else runs one step after another. The plan itself, its
/// order and its hash do not change: the dry run prints the same steps and says which overlap.
pub fn concurrent_groups(actions: &[Action]) -> Vec<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    let mut cur: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < actions.len() {
        let pair = i + 1 < actions.len()
            && actions[i].op == Op::WaitDevice
            && matches!(actions[i + 1].op, Op::Mkfs | Op::Mkswap)
            && actions[i].device.is_some()
            && actions[i].device == actions[i + 1].device;
        if pair {
            cur.push(vec![i, i + 1]);
            i += 2;
        } else {
            if cur.len() >= 2 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            i += 1;
        }
    }
    if cur.len() >= 2 {
        out.push(cur);
    }
    out
}

/// Hash of what a run would do: mode + actions (16 hex digits).
pub fn plan_hash(p: &Plan) -> String {
    let v = serde_json::json!({ "mode": p.mode, "actions": p.actions, "refusals": p.refusals });
    let h = Sha256::digest(serde_json::to_vec(&v).unwrap_or_default());
    hex::encode(&h[..8])
}

fn mkfs_argv(f: &Filesystem, dev: &str) -> Vec<String> {
    let force: &[&str] = match f.format.as_str() {
        "ext2" | "ext3" | "ext4" => &["-F", "-q"],
        "xfs" | "btrfs" | "f2fs" => &["-f"],
        _ => &[],
    };
    let mut v = vec![format!("mkfs.{}", f.format)];
    v.extend(force.iter().map(|x| x.to_string()));
    v.extend(f.extra_args.iter().cloned());
    v.push(dev.to_string());
    v
}

fn mkswap_argv(sw: &Swap, dev: &str) -> Vec<String> {
    let mut v = vec![s("mkswap"), s("-f")];
    v.extend(sw.extra_args.iter().cloned());
    v.push(dev.to_string());
    v
}

fn format_action(c: &Content, dev: &str, what: &str, actions: &mut Vec<Action>) {
    match c {
        Content::Filesystem(f) => actions.push(
            Action::new(Op::Mkfs, true, format!("formatting {what} ({})", f.format))
                .cmd(mkfs_argv(f, dev))
                .dev(dev),
        ),
        Content::Swap(sw) => actions.push(
            Action::new(Op::Mkswap, true, format!("making swap on {what}"))
                .cmd(mkswap_argv(sw, dev))
                .dev(dev),
        ),
        _ => {}
    }
}

/// A VG the layout would create whose name an existing VG already has entirely on disks the
/// layout does not name: the disks were swapped, or another node's disk is here. A second VG of
/// that name would leave both unusable by name, so refuse (vgcreate(8) itself only refuses when
/// it sees the other VG, which a device filter may hide).
fn vg_names_taken_elsewhere(
    layout: &Layout,
    state: &SystemState,
    targets: &[String],
) -> Vec<Refusal> {
    let on_target = |pv: &str| {
        targets.iter().any(|t| {
            state
                .disks
                .iter()
                .find(|x| &x.path == t)
                .is_some_and(|x| x.path == pv || x.partitions.iter().any(|p| p.path == pv))
        })
    };
    let mut out = Vec::new();
    for vg in &layout.vgs {
        let pvs: Vec<&str> = state
            .pvs
            .iter()
            .filter(|p| p.vg_name == vg.name)
            .map(|p| p.pv_name.as_str())
            .collect();
        if !pvs.is_empty() && !pvs.iter().any(|p| on_target(p)) {
            out.push(Refusal {
                disk: format!("lvm_vg.{}", vg.name),
                reason: format!(
                    "a VG named {} already exists on {}, which the layout does not name: disks may have been swapped or another node's disk is here; creating a second VG of that name would make both unusable by name",
                    vg.name,
                    pvs.join(", ")
                ),
            });
        }
    }
    out
}

/// Tell the kernel about the new partitions (BLKPG per partition: works where a whole-table
/// re-read does not, and needs no udev).
fn reread(dev: &str) -> Action {
    Action::new(
        Op::Partition,
        false,
        format!("telling the kernel about the new partitions of {dev}"),
    )
    .cmd(vec![s("partx"), s("-u"), dev.to_string()])
    .dev(dev)
}

/// A partition table that does not fit this disk: bad input (exit 3) naming the layout path,
/// found while planning, before anything is written.
fn geometry_error(
    disk_name: &str,
    part: &str,
    dev: &BlockDevice,
    e: GeometryError,
) -> anyhow::Error {
    let g = DiskGeometry::of(dev);
    crate::exit::coded(
        crate::exit::Code::BadInput,
        format!(
            "disk.{disk_name}.content.partitions.{part}: {} (on {}: {}, {}-byte sectors)",
            e.reason,
            dev.path,
            human(dev.size),
            g.logical
        ),
    )
}

fn planned(ext: &[Extent], ss: u64, names: Vec<Option<String>>, kind: &str) -> PlannedTable {
    PlannedTable {
        kind: kind.into(),
        partitions: ext
            .iter()
            .zip(names)
            .enumerate()
            .map(|(i, (e, name))| PlannedPartition {
                number: i as u32 + 1,
                start: e.first * ss,
                size: e.sectors() * ss,
                name,
            })
            .collect(),
    }
}

/// One sgdisk call that writes a fresh GPT with every partition of the layout at the sectors
/// computed here (`--set-alignment=1`: sgdisk moves nothing), and the table it must give.
fn gpt_action(
    disk_name: &str,
    dev: &BlockDevice,
    g: &crate::layout::Gpt,
) -> anyhow::Result<(Action, PlannedTable)> {
    let geo = DiskGeometry::of(dev);
    let bounds: Vec<_> = g.partitions.iter().map(|p| (&p.start, &p.end)).collect();
    let ext = geometry::gpt_extents(&geo, &bounds)
        .map_err(|e| geometry_error(disk_name, &g.partitions[e.index].name, dev, e))?;
    let mut argv = vec![s("sgdisk"), s("--clear"), s("--set-alignment=1")];
    for (i, (p, e)) in g.partitions.iter().zip(&ext).enumerate() {
        let n = i + 1;
        argv.push(format!("--new={n}:{}:{}", e.first, e.last));
        argv.push(format!("--typecode={n}:{}", p.type_code));
        argv.push(format!("--change-name={n}:{}", p.label));
        for a in &p.attributes {
            argv.push(format!("--attributes={n}:set:{a}"));
        }
        if let Some(u) = &p.uuid {
            argv.push(format!("--partition-guid={n}:{u}"));
        }
    }
    argv.push(dev.path.clone());
    let names = g.partitions.iter().map(|p| Some(p.label.clone())).collect();
    let table = planned(&ext, geo.logical, names, "gpt");
    let a = Action::new(
        Op::Partition,
        true,
        format!(
            "partitioning {} (gpt, {} partitions: {})",
            dev.path,
            g.partitions.len(),
            describe_extents(
                g.partitions.iter().map(|p| p.name.as_str()),
                &ext,
                geo.logical
            )
        ),
    )
    .cmd(argv)
    .dev(&dev.path);
    Ok((a, table))
}

fn describe_extents<'a>(names: impl Iterator<Item = &'a str>, ext: &[Extent], ss: u64) -> String {
    names
        .zip(ext)
        .map(|(n, e)| format!("{n} {}", e.describe(ss)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A hybrid MBR as disko makes one (gpt.nix `hybrid`, `efiGptPartitionFirst`): `sgdisk -h` with
/// the numbers of the partitions that have `hybrid` (and `:EE` when the protective entry goes
/// last), then, on the MBR nested in the GPT disk, sfdisk sets each entry's `mbrPartitionType`
/// and, in one call, `mbrBootableFlag`. sgdisk puts the protective 0xEE entry first unless told `EE` last
/// (sgdisk(8) `--hybrid`), so the k-th hybrid partition is MBR entry k+1, or k with EE last.
/// disko passes the GPT partition number to sfdisk instead, which is the same entry only when
/// the hybrid partitions are 1..k and EE is last (its own example); with EE first its
/// `sgdisk -h` line lacks the space before the device and fails, so no disko-made node differs.
/// Empty when no partition has `hybrid`.
fn hybrid_mbr_actions(dev: &BlockDevice, g: &crate::layout::Gpt) -> Vec<Action> {
    let hybrid: Vec<(usize, &crate::layout::Hybrid)> = g
        .partitions
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.hybrid.as_ref().map(|h| (i + 1, h)))
        .collect();
    if hybrid.is_empty() {
        return Vec::new();
    }
    let mut list: Vec<String> = hybrid.iter().map(|(n, _)| n.to_string()).collect();
    if !g.efi_gpt_partition_first {
        list.push(s("EE"));
    }
    let mut out = vec![Action::new(
        Op::Partition,
        true,
        format!(
            "making a hybrid MBR on {} (GPT partition{} {}, protective entry {})",
            dev.path,
            if hybrid.len() == 1 { "" } else { "s" },
            hybrid
                .iter()
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if g.efi_gpt_partition_first {
                "first"
            } else {
                "last"
            }
        ),
    )
    .cmd(vec![
        s("sgdisk"),
        format!("--hybrid={}", list.join(":")),
        dev.path.clone(),
    ])
    .dev(&dev.path)];
    let sfdisk = |what: &[String]| {
        let mut v = vec![
            s("sfdisk"),
            s("--no-reread"),
            s("--no-tell-kernel"),
            s("--label-nested"),
            s("dos"),
        ];
        v.extend(what.iter().cloned());
        v
    };
    let entry = |k: usize| {
        if g.efi_gpt_partition_first {
            k + 2
        } else {
            k + 1
        }
    };
    for (k, (n, h)) in hybrid.iter().enumerate() {
        if let Some(t) = h.mbr_type {
            out.push(
                Action::new(
                    Op::Partition,
                    true,
                    format!(
                        "setting MBR type {t:02x} on hybrid MBR entry {} (partition {n}) of {}",
                        entry(k),
                        dev.path
                    ),
                )
                .cmd(sfdisk(&[
                    s("--part-type"),
                    dev.path.clone(),
                    entry(k).to_string(),
                    format!("{t:02x}"),
                ]))
                .dev(&dev.path),
            );
        }
    }
    // One call for all: `sfdisk --activate` clears the flag on every entry it is not given
    // (sfdisk(8)), so disko's one call per partition leaves only the last one bootable.
    let active: Vec<(usize, usize)> = hybrid
        .iter()
        .enumerate()
        .filter(|(_, (_, h))| h.bootable)
        .map(|(k, (n, _))| (entry(k), *n))
        .collect();
    if !active.is_empty() {
        let mut what = vec![s("--activate"), dev.path.clone()];
        what.extend(active.iter().map(|(e, _)| e.to_string()));
        out.push(
            Action::new(
                Op::Partition,
                true,
                format!(
                    "marking hybrid MBR {} of {} bootable",
                    active
                        .iter()
                        .map(|(e, n)| format!("entry {e} (partition {n})"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    dev.path
                ),
            )
            .cmd(sfdisk(&what))
            .dev(&dev.path),
        );
    }
    out
}

/// A disko `table`: positions resolved as parted would (see `geometry`), then written with
/// exact sectors: gpt through sgdisk, msdos through an sfdisk script.
fn table_action(
    disk_name: &str,
    dev: &BlockDevice,
    t: &crate::layout::Table,
) -> anyhow::Result<(Action, PlannedTable)> {
    let geo = DiskGeometry::of(dev);
    let format = if t.format == "gpt" {
        TableFormat::Gpt
    } else {
        TableFormat::Msdos
    };
    let bounds: Vec<_> = t.partitions.iter().map(|p| (&p.start, &p.end)).collect();
    let ext = geometry::table_extents(&geo, format, &bounds)
        .map_err(|e| geometry_error(disk_name, &t.partitions[e.index].name, dev, e))?;
    let what = describe_extents(
        t.partitions.iter().map(|p| p.name.as_str()),
        &ext,
        geo.logical,
    );
    if format == TableFormat::Gpt {
        let mut argv = vec![s("sgdisk"), s("--clear"), s("--set-alignment=1")];
        for (i, (p, e)) in t.partitions.iter().zip(&ext).enumerate() {
            let n = i + 1;
            argv.push(format!("--new={n}:{}:{}", e.first, e.last));
            argv.push(format!(
                "--change-name={n}:{}",
                p.label.as_deref().unwrap_or(&p.name)
            ));
            let code = match p.content.as_deref() {
                Some(Content::LvmPv { .. }) => "8E00",
                Some(Content::Swap(_)) => "8200",
                _ if p.bootable => "EF00",
                _ => "8300",
            };
            argv.push(format!("--typecode={n}:{code}"));
        }
        argv.push(dev.path.clone());
        let names = t.partitions.iter().map(|p| p.label.clone()).collect();
        let a = Action::new(
            Op::Partition,
            true,
            format!(
                "partitioning {} (gpt, {} partitions: {what})",
                dev.path,
                t.partitions.len()
            ),
        )
        .cmd(argv)
        .dev(&dev.path);
        return Ok((a, planned(&ext, geo.logical, names, "gpt")));
    }
    let mut script = String::from("label: dos\nunit: sectors\n");
    for (p, e) in t.partitions.iter().zip(&ext) {
        let ty = match p.content.as_deref() {
            Some(Content::LvmPv { .. }) => "8e",
            Some(Content::Swap(_)) => "82",
            Some(Content::Filesystem(f)) if f.format == "vfat" => "c",
            _ => "83",
        };
        script.push_str(&format!(
            "start={}, size={}, type={ty}{}\n",
            e.first,
            e.sectors(),
            if p.bootable { ", bootable" } else { "" }
        ));
    }
    let mut a = Action::new(
        Op::Partition,
        true,
        format!(
            "partitioning {} (msdos, {} partitions: {what})",
            dev.path,
            t.partitions.len()
        ),
    )
    .cmd(vec![
        s("sfdisk"),
        s("--no-reread"),
        s("--wipe"),
        s("always"),
        dev.path.clone(),
    ])
    .dev(&dev.path);
    a.stdin = Some(script);
    let names = t.partitions.iter().map(|_| None).collect();
    Ok((a, planned(&ext, geo.logical, names, "dos")))
}

/// After partitioning: read the table back from the disk and compare it with the plan, before
/// anything is formatted.
fn verify_table(dev: &str, table: PlannedTable) -> Action {
    let mut a = Action::new(
        Op::VerifyTable,
        false,
        format!("reading back the partition table of {dev}"),
    )
    .dev(dev);
    a.table = Some(table);
    a
}

fn wait(dev: &str) -> Action {
    Action::new(Op::WaitDevice, false, format!("waiting for {dev}")).dev(dev)
}

fn provision_actions(
    layout: &Layout,
    resolved: &[Option<&BlockDevice>],
    deactivate: &[String],
    cfg: &str,
    layout_hash: &str,
    cmdline: &Settings,
    actions: &mut Vec<Action>,
) -> anyhow::Result<()> {
    let problems = super::fits::check(layout, resolved);
    if !problems.is_empty() {
        return Err(crate::exit::coded(
            crate::exit::Code::BadInput,
            format!(
                "the layout does not fit these disks (nothing was changed): {}",
                problems.join("; ")
            ),
        ));
    }
    // Take down what is on the disks now.
    for vg in deactivate {
        actions.push(
            Action::new(Op::Deactivate, false, format!("deactivating VG {vg}")).cmd(lvm(
                cfg,
                "vgchange",
                &[s("-an"), vg.clone()],
            )),
        );
    }
    let mut pvs: Vec<(String, String)> = Vec::new(); // (vg, device)
    let mut formats: Vec<(Content, String, String)> = Vec::new(); // content, device, what
    for (i, d) in layout.disks.iter().enumerate() {
        let Some(dev) = resolved[i] else { continue };
        for p in &dev.partitions {
            actions.push(
                Action::new(Op::Wipe, true, format!("wiping signatures on {}", p.path))
                    .cmd(vec![s("wipefs"), s("-a"), p.path.clone()])
                    .dev(&p.path),
            );
        }
        // wipefs erases the primary GPT, its backup at the end of the disk and the (protective)
        // MBR: no separate zap step needed.
        actions.push(
            Action::new(
                Op::Wipe,
                true,
                format!("wiping signatures and partition tables on {}", dev.path),
            )
            .cmd(vec![s("wipefs"), s("-a"), dev.path.clone()])
            .dev(&dev.path),
        );
        match &d.content {
            Some(Content::Gpt(g)) => {
                let (a, table) = gpt_action(&d.name, dev, g)?;
                actions.push(a);
                actions.extend(hybrid_mbr_actions(dev, g));
                actions.extend([reread(&dev.path), verify_table(&dev.path, table)]);
            }
            Some(Content::Table(t)) => {
                let (a, table) = table_action(&d.name, dev, t)?;
                actions.extend([a, reread(&dev.path), verify_table(&dev.path, table)])
            }
            Some(Content::LvmPv { vg }) => pvs.push((vg.clone(), dev.path.clone())),
            Some(c) => formats.push((c.clone(), dev.path.clone(), d.name.clone())),
            None => {}
        }
        // Every new partition's node first, then one wipefs for all of them (each process
        // costs a start-up and a libblkid probe of every known signature).
        let mut new_parts: Vec<String> = Vec::new();
        for p in partitions(d) {
            let pp = partition_path(&dev.path, p.number);
            actions.push(wait(&pp));
            new_parts.push(pp.clone());
            match p.content {
                Some(Content::LvmPv { vg }) => pvs.push((vg.clone(), pp)),
                Some(c) => formats.push((c.clone(), pp, format!("{}/{}", d.name, p.name))),
                None => {}
            }
        }
        if !new_parts.is_empty() {
            let mut argv = vec![s("wipefs"), s("-a")];
            argv.extend(new_parts.iter().cloned());
            actions.push(
                Action::new(
                    Op::Wipe,
                    true,
                    format!(
                        "wiping old signatures inside new partition{} {}",
                        if new_parts.len() == 1 { "" } else { "s" },
                        new_parts.join(", ")
                    ),
                )
                .cmd(argv)
                .dev(&dev.path),
            );
        }
    }
    if !pvs.is_empty() {
        // One pvcreate for all PVs (each lvm process costs a device scan).
        let mut args = vec![s("-y"), s("-ff")];
        args.extend(pvs.iter().map(|(_, p)| p.clone()));
        let words: Vec<String> = pvs
            .iter()
            .map(|(vg, pv)| format!("{pv} for VG {vg}"))
            .collect();
        let mut a = Action::new(
            Op::PvCreate,
            true,
            format!(
                "creating PV{} {}",
                if pvs.len() == 1 { "" } else { "s" },
                words.join(", ")
            ),
        )
        .cmd(lvm(cfg, "pvcreate", &args));
        if pvs.len() == 1 {
            a.device = Some(pvs[0].1.clone());
        }
        actions.push(a);
    }
    for vg in &layout.vgs {
        let members: Vec<String> = pvs
            .iter()
            .filter(|(v, _)| v == &vg.name)
            .map(|(_, p)| p.clone())
            .collect();
        let mut args = vec![s("-y"), vg.name.clone()];
        args.extend(members);
        actions.push(
            Action::new(Op::VgCreate, true, format!("creating VG {}", vg.name))
                .cmd(lvm(cfg, "vgcreate", &args)),
        );
        for lv in &vg.lvs {
            let mut args = vec![s("-y")];
            // lvcreate refuses -W with a thin pool ("Option --wipesignatures is unsupported
            // with thin pools", lvm2 tools/lvcreate.c `_lvcreate_params`): a new pool's
            // metadata is written fresh and its data is handed out zeroed block by block.
            if lv.lv_type != LvType::ThinPool {
                args.extend([s("--wipesignatures"), s("y")]);
            }
            args.extend([s("-n"), lv.name.clone()]);
            match &lv.lv_type {
                LvType::Linear => args.extend(lv.size.lvcreate_args()),
                LvType::ThinPool => {
                    args.extend([s("--type"), s("thin-pool")]);
                    args.extend(lv.size.lvcreate_args());
                }
                LvType::Thin { pool } => {
                    let bytes = match &lv.size {
                        crate::layout::size::LvSize::Bytes { bytes } => *bytes,
                        _ => 0,
                    };
                    args.extend([
                        s("--type"),
                        s("thin"),
                        s("-V"),
                        format!("{bytes}b"),
                        s("--thinpool"),
                        pool.clone(),
                    ]);
                }
                LvType::Other(t) => {
                    args.extend([s("--type"), t.clone()]);
                    args.extend(lv.size.lvcreate_args());
                }
            }
            args.extend(lv.extra_args.iter().cloned());
            args.push(vg.name.clone());
            actions.push(
                Action::new(
                    Op::LvCreate,
                    true,
                    format!("creating LV {}/{}", vg.name, lv.name),
                )
                .cmd(lvm(cfg, "lvcreate", &args)),
            );
            if let Some(c) = &lv.content {
                let p = format!("/dev/{}/{}", vg.name, lv.name);
                formats.push((c.clone(), p, format!("{}/{}", vg.name, lv.name)));
            }
        }
    }
    for (c, dev, what) in &formats {
        actions.push(wait(dev));
        format_action(c, dev, what, actions);
    }
    // Completion is recorded last: an interrupted run leaves no tag and re-provisions. One
    // vgchange tags every VG; lvm commits each VG on its own, so a cut in the middle can leave
    // some VGs tagged and others not — which still reads as "not complete" (a token counts as
    // consumed only when every layout VG carries it) and re-provisions.
    if !layout.vgs.is_empty() {
        let mut args = vec![s("--addtag"), format!("{TAG_LAYOUT}{layout_hash}")];
        if let ProvisionRequest::Token(t) = &cmdline.provision {
            args.push(s("--addtag"));
            args.push(format!("{TAG_TOKEN}{t}"));
        }
        let names: Vec<String> = layout.vgs.iter().map(|v| v.name.clone()).collect();
        args.extend(names.iter().cloned());
        actions.push(
            Action::new(
                Op::Tag,
                false,
                format!(
                    "recording completion on VG{} {}",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ),
            )
            .cmd(lvm(cfg, "vgchange", &args)),
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn mount_actions(
    layout: &Layout,
    state: &SystemState,
    resolved: &[Option<&BlockDevice>],
    mode: Mode,
    cfg: &str,
    prefix: &str,
    actions: &mut Vec<Action>,
    missing: &mut Vec<String>,
) {
    let provisioning = mode == Mode::Provision;
    // (device, content, what) of everything to check/mount/swapon.
    let mut items: Vec<(String, Content, String)> = Vec::new();
    for (i, d) in layout.disks.iter().enumerate() {
        let dev = resolved[i];
        match &d.content {
            Some(Content::Gpt(_) | Content::Table(_) | Content::LvmPv { .. }) | None => {}
            Some(c) => match dev {
                Some(dev) => items.push((dev.path.clone(), c.clone(), d.name.clone())),
                None => missing.push(format!(
                    "disk {} ({}): not found, so its {} cannot be used",
                    d.name,
                    d.reference.describe(),
                    content_words(c)
                )),
            },
        }
        for p in partitions(d) {
            let (n, pname) = (p.number, p.name);
            let Some(c) = p.content else { continue };
            if matches!(c, Content::LvmPv { .. }) {
                continue;
            }
            let Some(dev) = dev else {
                missing.push(format!(
                    "disk {} ({}): not found, so partition {pname} cannot be used",
                    d.name,
                    d.reference.describe()
                ));
                continue;
            };
            let pp = partition_path(&dev.path, n);
            if !provisioning {
                match dev.partitions.iter().find(|p| p.number as usize == n) {
                    None => missing.push(format!(
                        "disk {}: partition {n} ({pname}) does not exist on {}",
                        d.name, dev.path
                    )),
                    Some(op) => {
                        if let Some(l) = p.label {
                            if op.part_label.as_deref() != Some(l) {
                                missing.push(format!("disk {}: partition {} is named {:?}, the layout expects {l:?} — is this the right disk?", d.name, op.path, op.part_label.as_deref().unwrap_or("")));
                            }
                        }
                    }
                }
            }
            items.push((pp, c.clone(), format!("{}/{pname}", d.name)));
        }
    }
    let mut activate: Vec<String> = Vec::new();
    for vg in &layout.vgs {
        if !provisioning && !state.lvm_unread {
            match state.vg(&vg.name) {
                None => {
                    missing.push(format!(
                        "VG {} not found (are the disks provisioned? boot once with {prefix}.provision_disks=<token>)",
                        vg.name
                    ));
                    continue;
                }
                Some(_) => {
                    for lv in &vg.lvs {
                        if !state
                            .lvs
                            .iter()
                            .any(|l| l.vg_name == vg.name && l.lv_name == lv.name)
                        {
                            missing.push(format!("LV {}/{} not found", vg.name, lv.name));
                        }
                    }
                }
            }
        }
        activate.push(vg.name.clone());
        for lv in &vg.lvs {
            if let Some(c) = &lv.content {
                // /dev/mapper/<vg>-<lv>: the name mount(8) and findmnt show for an LV.
                items.push((
                    format!("/dev/mapper/{}", dm_name(&vg.name, &lv.name)),
                    c.clone(),
                    format!("{}/{}", vg.name, lv.name),
                ));
            }
        }
    }
    // A provisioning run's lvcreate leaves each LV active (lvcreate activates what it creates
    // unless told otherwise: only the layout's extraArgs can say so), so a vgchange -ay after
    // it would be one more lvm process — a full device scan — that changes nothing. The waits
    // below still check that every LV's device node is there.
    let created_active = provisioning
        && layout
            .vgs
            .iter()
            .all(|vg| vg.lvs.iter().all(|lv| lv.extra_args.is_empty()));
    if !activate.is_empty() && !created_active {
        // One vgchange for all of them: every lvm process scans the devices again.
        let mut args = vec![s("-ay")];
        args.extend(activate.iter().cloned());
        actions.push(
            Action::new(
                Op::Activate,
                false,
                format!(
                    "activating VG{} {}",
                    if activate.len() == 1 { "" } else { "s" },
                    activate.join(", ")
                ),
            )
            .cmd(lvm(cfg, "vgchange", &args)),
        );
    }
    for (dev, _, _) in &items {
        actions.push(wait(dev));
    }
    // fsck (ext*), then mounts parents-first, then swap.
    let mut mounts: Vec<(String, Filesystem)> = Vec::new();
    for (dev, c, what) in &items {
        if let Content::Filesystem(f) = c {
            if f.format.starts_with("ext") && !provisioning {
                // The executor reads the superblock first and runs e2fsck -p only when it would
                // do more than say "clean" (see execute::ext_is_clean).
                let mut a = Action::new(
                    Op::Fsck,
                    false,
                    format!(
                        "checking {what} ({}): e2fsck -p unless its superblock is clean",
                        f.format
                    ),
                )
                .cmd(vec![s("e2fsck"), s("-p"), dev.clone()])
                .dev(dev);
                a.fs_type = Some(f.format.clone());
                actions.push(a);
            }
            if f.mountpoint.is_some() {
                mounts.push((dev.clone(), f.clone()));
            }
        }
    }
    enum M<'a> {
        Dev(&'a str, &'a Filesystem),
        Nodev(&'a crate::layout::Nodev),
    }
    let mut all: Vec<(String, M)> = mounts
        .iter()
        .map(|(d, f)| (f.mountpoint.clone().unwrap_or_default(), M::Dev(d, f)))
        .collect();
    all.extend(
        layout
            .nodev
            .iter()
            .map(|n| (n.mountpoint.clone(), M::Nodev(n))),
    );
    all.sort_by(|a, b| {
        let depth = |p: &str| p.trim_end_matches('/').matches('/').count();
        depth(&a.0).cmp(&depth(&b.0)).then(a.0.cmp(&b.0))
    });
    for (mp, m) in &all {
        let mut a = match m {
            M::Dev(dev, f) => {
                let mut a =
                    Action::new(Op::Mount, false, format!("mounting {dev} on {mp}")).dev(dev);
                a.fs_type = Some(f.format.clone());
                a.options = Some(f.mount_options.join(","));
                a
            }
            M::Nodev(n) => {
                let mut a =
                    Action::new(Op::Mount, false, format!("mounting {} on {mp}", n.fs_type))
                        .dev(&n.device);
                a.fs_type = Some(n.fs_type.clone());
                a.options = Some(n.mount_options.join(","));
                a
            }
        };
        a.target = Some(mp.clone());
        actions.push(a);
    }
    for (dev, c, what) in &items {
        if let Content::Swap(sw) = c {
            // swapon(2) itself, options as fstab writes them (`pri=N`, `discard=once|pages`,
            // `discard` for both): swapon(8) would cost a process for one system call.
            let mut opts: Vec<String> = Vec::new();
            if let Some(p) = sw.priority {
                opts.push(format!("pri={p}"));
            }
            match sw.discard.as_deref() {
                Some("both") => opts.push(s("discard")),
                Some(d) => opts.push(format!("discard={d}")),
                None => {}
            }
            let mut a = Action::new(Op::Swapon, false, format!("enabling swap on {what}")).dev(dev);
            a.options = Some(opts.join(","));
            actions.push(a);
        }
    }
    for d in &layout.ensure_dirs {
        let mut a = Action::new(
            Op::EnsureDir,
            false,
            format!(
                "ensuring directory {} ({}:{} {:04o})",
                d.path, d.owner, d.group, d.mode
            ),
        );
        a.target = Some(d.path.clone());
        a.owner = Some(d.owner.clone());
        a.group = Some(d.group.clone());
        a.mode = Some(format!("{:04o}", d.mode));
        actions.push(a);
    }
}

/// What a real run's libblkid check says of a device whose type is not the layout's
/// (execute::expect_type), in the same words: the dry run names it as the real run does.
pub fn fs_mismatch(dev: &str, found: Option<&str>, want: &str) -> String {
    format!(
        "{dev} has {} where the layout expects {want}",
        found
            .map(|f| format!("a {f} signature"))
            .unwrap_or_else(|| "no filesystem".into())
    )
}

/// Is `found` (libblkid's TYPE) the filesystem the layout names? vfat may show as msdos.
pub fn type_matches(want: &str, found: Option<&str>) -> bool {
    match (want, found) {
        (w, Some(f)) if w == f => true,
        ("vfat", Some("vfat" | "msdos")) => true,
        _ => false,
    }
}

/// Mount-only: the layout filesystems and swap areas the real run would find missing or of
/// another type, from the observed state — so that `--dry-run`, `--state` and `status` name
/// them and exit as the real run does (exit 9). The real run checks a device's type (libblkid)
/// before its fsck (ext*, unless the device is mounted anywhere), its mount (unless something
/// is mounted at the target already) and its swapon (unless it is swap already), and fails at
/// the first one that does not match; this asks the same of each device the state knows the
/// type of: partitions and whole disks on a probed read (not the every-boot path's udev
/// database: there the executor's own check decides), active LVs that were probed. Partitions
/// already named missing or misnamed are not repeated.
fn wrong_filesystems(
    layout: &Layout,
    state: &SystemState,
    resolved: &[Option<&BlockDevice>],
    root: &std::path::Path,
) -> Vec<String> {
    if state.types_from_udev {
        return Vec::new();
    }
    // (device path, its maj:min, what is on it, the layout content, layout words)
    let mut devs: Vec<(String, &str, Option<&str>, &Content, String)> = Vec::new();
    for (i, d) in layout.disks.iter().enumerate() {
        let Some(dev) = resolved[i] else { continue };
        if let Some(c @ (Content::Filesystem(_) | Content::Swap(_))) = &d.content {
            devs.push((
                dev.path.clone(),
                &dev.maj_min,
                dev.fs_type.as_deref(),
                c,
                format!("disk {}", d.name),
            ));
        }
        for p in partitions(d) {
            let Some(c @ (Content::Filesystem(_) | Content::Swap(_))) = p.content else {
                continue;
            };
            let Some(op) = dev
                .partitions
                .iter()
                .find(|o| o.number as usize == p.number)
            else {
                continue; // named missing already
            };
            if p.label.is_some_and(|l| op.part_label.as_deref() != Some(l)) {
                continue; // named as another disk's partition already
            }
            devs.push((
                op.path.clone(),
                &op.maj_min,
                op.fs_type.as_deref(),
                c,
                format!("disk {}: partition {} ({})", d.name, p.number, p.name),
            ));
        }
    }
    for vg in &layout.vgs {
        for lv in &vg.lvs {
            let Some(c) = &lv.content else { continue };
            let Some(o) = state
                .lvs
                .iter()
                .find(|o| o.vg_name == vg.name && o.lv_name == lv.name && o.fs_probed)
            else {
                continue; // missing (named already), inactive or not probed: unknown
            };
            let Some(mm) = o.maj_min.as_deref() else {
                continue;
            };
            devs.push((
                format!("/dev/mapper/{}", dm_name(&vg.name, &lv.name)),
                mm,
                o.fs_type.as_deref(),
                c,
                format!("LV {}/{}", vg.name, lv.name),
            ));
        }
    }
    let mut out = Vec::new();
    for (path, mm, found, c, what) in devs {
        let (want, checked) = match c {
            Content::Filesystem(f) => {
                let fsck = f.format.starts_with("ext") && state.mount_of(mm).is_none();
                let mount = f.mountpoint.as_deref().is_some_and(|mp| {
                    let target = crate::system::fsutil::under_root(root, std::path::Path::new(mp));
                    let target = target.to_string_lossy();
                    !state.mounts.iter().any(|m| m.target == target)
                });
                (f.format.as_str(), fsck || mount)
            }
            Content::Swap(_) => ("swap", !state.is_swap(mm, &path)),
            _ => continue,
        };
        if checked && !type_matches(want, found) {
            out.push(format!(
                "{what}: {} — nothing was formatted (a provisioning run cut off before its mkfs, or another disk?)",
                fs_mismatch(&path, found, want)
            ));
        }
    }
    out
}

/// Write the LVM settings into the node's lvm config, so later lvm runs (udev event activation,
/// pvscan, the operator's own commands) filter DRBD exactly as ours do.
fn lvm_conf_action(settings: &[String], opts: &PlanOptions) -> Action {
    let conf_path = opts
        .lvm_conf
        .clone()
        .unwrap_or_else(|| DEFAULT_LVM_CONF.to_string());
    let mut wf = Action::new(
        Op::WriteFile,
        false,
        format!("writing the LVM device filter to {conf_path}"),
    );
    wf.target = Some(conf_path);
    let mut text = String::from(
        "# Written by provision on every boot: lvm on this node filters devices exactly as\n\
         # provision does (global_filter is the one pvscan and event activation honour).\n\
         devices {\n",
    );
    for line in settings {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("}\n");
    wf.content = Some(text);
    wf.mode = Some("0644".into());
    wf
}

fn content_words(c: &Content) -> String {
    match c {
        Content::Filesystem(f) => format!("{} filesystem", f.format),
        Content::Swap(_) => "swap".into(),
        Content::LvmPv { vg } => format!("PV of VG {vg}"),
        Content::Gpt(_) => "gpt".into(),
        Content::Table(_) => "partition table".into(),
    }
}

/// The plan in words, for `--dry-run` and logs.
pub fn render_text(p: &Plan) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "disks: mode {} ({})", p.mode.as_str(), p.reason);
    for d in &p.disks {
        let _ = writeln!(
            o,
            "  disk {}: {} → {}{}{}",
            d.name,
            d.reference,
            d.device.as_deref().unwrap_or("NOT FOUND"),
            d.size
                .map(|s| format!(", {}", human(s)))
                .unwrap_or_default(),
            d.class
                .map(|c| format!(
                    ", {}",
                    match c {
                        DiskClass::Blank => "blank",
                        DiskClass::Ours => "ours",
                        DiskClass::Foreign => "FOREIGN",
                    }
                ))
                .unwrap_or_default(),
        );
        for c in &d.content {
            let _ = writeln!(o, "      {c}");
        }
    }
    for w in &p.warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    if !p.refusals.is_empty() {
        let _ = writeln!(o, "REFUSED — nothing will be touched on any disk:");
        for r in &p.refusals {
            let _ = writeln!(o, "  {}: {}", r.disk, r.reason);
        }
    }
    for d in &p.destroys {
        let _ = writeln!(o, "DESTROYS {d}");
    }
    for m in &p.missing {
        let _ = writeln!(o, "MISSING {m}");
    }
    if !p.actions.is_empty() {
        let _ = writeln!(o, "actions:");
        let groups = concurrent_groups(&p.actions);
        for (i, a) in p.actions.iter().enumerate() {
            if let Some(g) = groups.iter().find(|g| g[0][0] == i) {
                let last = g.last().and_then(|c| c.last()).copied().unwrap_or(i);
                let _ = writeln!(
                    o,
                    "       (steps {}–{} may run concurrently, {} devices, up to one per CPU: each device's wait and format in order)",
                    i + 1,
                    last + 1,
                    g.len()
                );
            }
            let mark = if a.destructive { "DESTRUCTIVE" } else { "safe" };
            let _ = writeln!(o, "  {:>3}. [{mark}] {}", i + 1, a.description);
            if let Some(argv) = &a.argv {
                let _ = writeln!(o, "       $ {}", crate::system::shell_join(argv));
            }
            if let Some(stdin) = &a.stdin {
                for l in stdin.lines() {
                    let _ = writeln!(o, "       < {l}");
                }
            }
            if a.op == Op::Swapon {
                let _ = writeln!(
                    o,
                    "       swapon({}, \"{}\")",
                    a.device.as_deref().unwrap_or(""),
                    a.options.as_deref().unwrap_or("")
                );
            }
            if a.op == Op::Mount {
                let _ = writeln!(
                    o,
                    "       mount({}, {}, {}, \"{}\")",
                    a.device.as_deref().unwrap_or(""),
                    a.target.as_deref().unwrap_or(""),
                    a.fs_type.as_deref().unwrap_or(""),
                    a.options.as_deref().unwrap_or("")
                );
            }
        }
    }
    let _ = writeln!(o, "plan hash: {}", p.plan_hash);
    o
}
