//! Device types (ARCHITECTURE.md §2.3): everything one disko type knows, one module each, behind
//! one trait and one registry. [`REGISTRY`] is the only list of types: the layout parser gets it
//! as a parameter ([`node_types`]), safety asks it who owns a signature and for that signature's
//! verdict in words ([`recognise`]), and each type names the tools its steps call and owns its
//! step labels. What is still outside the modules (each type's step builders in `plan/`, its
//! parser's body in `layout/parse/<type>.rs`, the closed `layout::Content`) is listed in
//! ARCHITECTURE.md §1.

pub mod disk;
pub mod filesystem;
pub mod gpt;
pub mod lvm;
pub mod nodev;
pub mod swap;
pub mod table;

use crate::disks::cx::PlanCx;
use crate::disks::geometry::Extent;
use crate::disks::state::{BlockDevice, SystemState};
use crate::disks::step::{Op, PlannedTable, Step};
use crate::layout::parse::NodeType;
use crate::layout::{Content, Disk, Layout, LayoutErrors};

/// Every device type, in registry order: the layout parser's order of top-level keys and of the
/// types it lists, and (with the graph) the batching order within a round (§2.4).
pub static REGISTRY: &[&dyn DeviceType] = &[
    &disk::DISK,
    &gpt::GPT,
    &table::TABLE,
    &filesystem::FILESYSTEM,
    &swap::SWAP,
    &lvm::LVM_PV,
    &lvm::LVM_VG,
    &nodev::NODEV,
];

/// One disko type. Its name, place and parser are the layout's side ([`NodeType`]); the rest is
/// what the disks stage asks of it. Every method has a default: a type implements what it has.
pub trait DeviceType: NodeType {
    /// The libblkid `TYPE`s this type owns (`LVM2_member`, `swap`): safety gives a signature to
    /// its owner for a verdict ([`recognise`]).
    fn signatures(&self) -> &'static [&'static str] {
        &[]
    }
    /// A signature this type owns, in an operator's words (`swap space`).
    fn words(&self, signature: &str) -> String {
        format!("{signature} filesystem")
    }
    /// What a signature this type owns means on a target disk of this layout. Default: a
    /// signature is ours where it sits on a partition whose GPT name the layout gives it.
    fn recognise(&self, seen: &Seen<'_>, cx: &Recognise<'_>) -> Verdict {
        by_partition_label(self.words(seen.signature), seen, cx)
    }
    /// The tools a provisioning run of `layout` calls for this type's steps (argv[0]).
    fn tools(&self, layout: &Layout) -> Vec<String> {
        let _ = layout;
        Vec::new()
    }
    /// The step labels this type owns (each constant of its module).
    fn ops(&self) -> &'static [Op] {
        &[]
    }
    /// Stage 4 (§2.4): the step that formats the new device `dev` holding `c`, content of this
    /// type (`mkfs`, `mkswap`); `what` names it in words (`disk/part`, `vg/lv`).
    fn format(&self, c: &Content, dev: &str, what: &str) -> Option<Step> {
        let _ = (c, dev, what);
        None
    }
    /// Stages 8–10 (§2.4): what bringing `c` on `dev` into use takes (checks, mounts, swap).
    /// Errors: options the kernel cannot take (exit 3).
    fn uses(&self, c: &Content, dev: &str, what: &str, cx: &PlanCx) -> anyhow::Result<Vec<Use>> {
        let _ = (c, dev, what, cx);
        Ok(Vec::new())
    }
    /// Stage 1 (§2.4, provisioning only): take down what of this type is observed on the target
    /// disks before the wipe (only idle things: what is busy was refused by safety).
    fn teardown(&self, cx: &PlanCx) -> Vec<Step> {
        let _ = cx;
        Vec::new()
    }
    /// Stage 2 (§2.4): where the partitions of this partition table (the content of `disk`) go
    /// on `dev`, in logical sectors, in layout order (`geometry`); None for other content.
    /// Errors: a partition does not fit (exit 3, naming its layout path).
    fn extents(&self, disk: &Disk, dev: &BlockDevice) -> Option<anyhow::Result<Vec<Extent>>> {
        let _ = (disk, dev);
        None
    }
    /// Stage 2 (§2.4): the steps that write this partition table on `dev` at `ext` (before
    /// `partx -u`), and the table the read-back expects; None for other content.
    fn partition(
        &self,
        disk: &Disk,
        dev: &BlockDevice,
        ext: &[Extent],
    ) -> Option<(Vec<Step>, PlannedTable)> {
        let _ = (disk, dev, ext);
        None
    }
    /// Stage 3 (§2.4): create this type's nodes over the devices placed so far (`placed`: every
    /// content on a new partition, disk or LV, in walk order), batched (one `pvcreate` for all
    /// PVs). Returns the steps and the contents of the devices they make (an LV's).
    fn create(&self, placed: &[Placed], cx: &PlanCx) -> (Vec<Step>, Vec<Placed>) {
        let _ = (placed, cx);
        (Vec::new(), Vec::new())
    }
    /// Stage 5 (§2.4): record completion, the last provisioning step (a VG tag).
    fn complete(&self, cx: &PlanCx) -> Vec<Step> {
        let _ = cx;
        Vec::new()
    }
    /// The uses of this type's top-level entries (a `nodev`'s mount).
    fn top_uses(&self, layout: &Layout) -> Vec<Use> {
        let _ = layout;
        Vec::new()
    }
}

/// A content node on a device a provisioning run makes: the content, the device's path and the
/// node in words (`disk/part`, `vg/lv`).
#[derive(Debug, Clone)]
pub struct Placed {
    pub content: Content,
    pub dev: String,
    pub what: String,
}

/// One request to bring a device into use; the planner orders them: every check first, then the
/// mounts by mountpoint depth and name, then swap (§2.4 stages 8–10).
#[derive(Debug)]
pub enum Use {
    Check(Step),
    /// A mount at `mountpoint` (as the layout writes it).
    Mount {
        mountpoint: String,
        step: Step,
    },
    Swap(Step),
}

/// The registered type of a content node.
pub fn of(c: &Content) -> Option<&'static dyn DeviceType> {
    REGISTRY.iter().copied().find(|t| t.name() == c.type_name())
}

/// The registry as the layout parser takes it.
pub fn node_types() -> Vec<&'static dyn NodeType> {
    REGISTRY.iter().map(|t| *t as &dyn NodeType).collect()
}

/// Parse layout text (YAML or JSON) with the registered types ([`crate::layout::parse_str`]).
pub fn parse_str(file: &str, text: &str) -> Result<Layout, LayoutErrors> {
    crate::layout::parse_str(file, text, &node_types())
}

/// Read and parse a layout file with the registered types ([`crate::layout::load`]); errors
/// carry [`crate::exit::Code::BadInput`].
pub fn load(path: &std::path::Path) -> anyhow::Result<Layout> {
    crate::layout::load(path, &node_types())
}

/// A signature found on a target disk or one of its partitions.
pub struct Seen<'a> {
    /// The device it is on (`/dev/sda2`).
    pub path: &'a str,
    /// libblkid's `TYPE`.
    pub signature: &'a str,
    /// libblkid's `LABEL`.
    pub label: Option<&'a str>,
    /// The partition's GPT name; None for the whole disk.
    pub part_label: Option<&'a str>,
}

/// What a verdict is judged against: the layout, what was observed, and the GPT names the
/// layout gives the partitions of this disk.
pub struct Recognise<'a> {
    pub layout: &'a Layout,
    pub state: &'a SystemState,
    pub labels: &'a [String],
}

/// Whose a signature is, with what it is in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This layout's.
    Ours(String),
    /// Holds no data: the disk counts as blank for it.
    Blank(String),
    /// Not this layout's.
    Foreign(String),
    /// Cannot be told from what was read (LVM not read on a mount-only run).
    Unknown(String),
}

/// Signatures no registered type owns, in words: the things provision never makes, and those
/// whose type is not registered yet (a type that registers owns its signature instead).
const OTHER_SIGNATURES: &[(&str, &str)] = &[
    ("drbd", "DRBD metadata"),
    ("linux_raid_member", "md RAID member"),
    ("crypto_LUKS", "LUKS encrypted volume"),
    ("zfs_member", "ZFS pool member"),
    ("bcache", "bcache backing device"),
];

/// The verdict on a signature: its owner's if a registered type owns it, else ours on a
/// partition the layout names and foreign elsewhere, in the words of [`OTHER_SIGNATURES`] or
/// as "`<TYPE>` filesystem" (what the `filesystem` type makes: any `mkfs.<format>`).
pub fn recognise(seen: &Seen<'_>, cx: &Recognise<'_>) -> Verdict {
    if let Some(t) = REGISTRY
        .iter()
        .find(|t| t.signatures().contains(&seen.signature))
    {
        return t.recognise(seen, cx);
    }
    let words = OTHER_SIGNATURES
        .iter()
        .find(|(s, _)| *s == seen.signature)
        .map(|(_, w)| w.to_string())
        .unwrap_or_else(|| filesystem::FILESYSTEM.words(seen.signature));
    by_partition_label(words, seen, cx)
}

/// Ours where the signature sits on a partition whose GPT name the layout gives it, foreign
/// anywhere else; in words, with its label when it has one (`ext4 filesystem "root"`).
pub fn by_partition_label(kind: String, seen: &Seen<'_>, cx: &Recognise<'_>) -> Verdict {
    let d = match seen.label {
        Some(l) if !l.is_empty() => format!("{kind} {l:?}"),
        _ => kind,
    };
    if seen
        .part_label
        .is_some_and(|l| cx.labels.iter().any(|x| x == l))
    {
        Verdict::Ours(d)
    } else {
        Verdict::Foreign(d)
    }
}

/// Every content node of a layout: of its disks, their partitions and its LVs, in walk order.
pub(crate) fn contents(layout: &Layout) -> Vec<&Content> {
    let mut out = Vec::new();
    for d in &layout.disks {
        out.extend(d.content.as_ref());
        out.extend(
            crate::disks::resolve::partitions(d)
                .into_iter()
                .filter_map(|p| p.content),
        );
    }
    for vg in &layout.vgs {
        out.extend(vg.lvs.iter().filter_map(|lv| lv.content.as_ref()));
    }
    out
}

/// The tools a provisioning run of `layout` calls, over every registered type, sorted.
pub fn tools(layout: &Layout) -> Vec<String> {
    let mut all: Vec<String> = REGISTRY.iter().flat_map(|t| t.tools(layout)).collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::parse::{Place, DISKO_TYPES};

    #[test]
    fn every_type_has_a_disko_name_one_registration_and_labels_no_one_else_has() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|t| t.name()).collect();
        assert!(names.iter().all(|n| DISKO_TYPES.contains(n)), "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        let mut ops: Vec<&str> = Op::STAGES.iter().map(|o| o.as_str()).collect();
        ops.extend(REGISTRY.iter().flat_map(|t| t.ops()).map(|o| o.as_str()));
        let n = ops.len();
        ops.sort();
        ops.dedup();
        assert_eq!(ops.len(), n, "a step label has two owners");
        let mut sigs: Vec<&str> = REGISTRY
            .iter()
            .flat_map(|t| t.signatures())
            .copied()
            .collect();
        let n = sigs.len();
        sigs.sort();
        sigs.dedup();
        assert_eq!(sigs.len(), n, "a signature has two owners");
    }

    #[test]
    fn every_content_has_its_registered_type() {
        let l = parse_str(
            "t.yaml",
            "disk:\n  a:\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        s: { size: 1G, content: { type: swap } }\n        p: { size: 1G, content: { type: lvm_pv, vg: v } }\n  b:\n    device: /dev/sdb\n    content: { type: table, partitions: [ { name: r, content: { type: filesystem, format: ext4 } } ] }\nlvm_vg:\n  v: { type: lvm_vg }\n",
        )
        .unwrap();
        let names: Vec<&str> = contents(&l)
            .into_iter()
            .map(|c| of(c).map(|t| t.name()).unwrap_or("none"))
            .collect();
        // partitions by priority, then name
        assert_eq!(names, ["gpt", "lvm_pv", "swap", "table", "filesystem"]);
    }

    #[test]
    fn the_top_level_types_are_disk_lvm_vg_and_nodev_in_that_order() {
        let top: Vec<&str> = REGISTRY
            .iter()
            .filter(|t| t.place() == Place::TopLevel)
            .map(|t| t.name())
            .collect();
        assert_eq!(top, ["disk", "lvm_vg", "nodev"]);
    }

    #[test]
    fn a_disko_type_that_is_not_registered_is_named_unsupported_with_the_others() {
        let e = parse_str(
            "t.yaml",
            "disk:\n  a:\n    device: /dev/sda\n    content: { type: luks, name: x }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("disk.a.content: type \"luks\" is not supported (provision supports gpt, table, filesystem, swap, lvm_pv; disko's btrfs, luks, mdadm, mdraid, zfs, zpool, zfs_fs, zfs_volume, bcachefs, bcachefs_filesystem, topology are not)"),
            "{e}"
        );
        let e = parse_str(
            "t.yaml",
            "disk:\n  a:\n    device: /dev/sda\n    content: { type: ntfs }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("type \"ntfs\" is not allowed here (expected one of: gpt, table, filesystem, swap, lvm_pv)"), "{e}");
        let e = parse_str("t.yaml", "zpool:\n  z: { type: zpool }\nfoo: 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zpool.z: type \"zpool\" is not supported (disko's btrfs"),
            "{e}"
        );
        assert!(
            e.contains(
                "unknown top-level field \"foo\" (expected disk, lvm_vg, nodev, ensure_dirs, lvm)"
            ),
            "{e}"
        );
    }

    fn seen<'a>(sig: &'a str, part_label: Option<&'a str>) -> Seen<'a> {
        Seen {
            path: "/dev/sda1",
            signature: sig,
            label: Some("root"),
            part_label,
        }
    }

    #[test]
    fn a_signature_goes_to_its_owner_or_is_judged_by_the_partition_name() {
        let layout = Layout::default();
        let state = SystemState::default();
        let labels = vec!["disk-main-root".to_string()];
        let cx = Recognise {
            layout: &layout,
            state: &state,
            labels: &labels,
        };
        assert_eq!(
            recognise(&seen("ext4", Some("disk-main-root")), &cx),
            Verdict::Ours("ext4 filesystem \"root\"".into())
        );
        assert_eq!(
            recognise(&seen("swap", Some("other")), &cx),
            Verdict::Foreign("swap space \"root\"".into())
        );
        assert_eq!(
            recognise(&seen("crypto_LUKS", None), &cx),
            Verdict::Foreign("LUKS encrypted volume \"root\"".into())
        );
        // a PV whose VG is not the layout's
        let mut state = SystemState::default();
        state.pvs.push(crate::disks::state::Pv {
            pv_name: "/dev/sda1".into(),
            vg_name: "other".into(),
            ..Default::default()
        });
        let cx = Recognise {
            state: &state,
            ..cx
        };
        assert_eq!(
            recognise(&seen("LVM2_member", Some("disk-main-root")), &cx),
            Verdict::Foreign("PV of VG other".into())
        );
    }
}
