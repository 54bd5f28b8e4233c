//! disko's `gpt` (gpt.nix): a GPT with disko's labels and priorities and its hybrid MBR, as a
//! disk's content (parser: `layout/parse/gpt.rs`). Its steps here: its extents (sgdisk's
//! placement, `geometry`), one `sgdisk` call at those sectors, and `sgdisk -h` plus `sfdisk` for
//! the hybrid MBR's types and flags; `partx -u` and the read-back are the stage's
//! (`plan/table.rs`).

use super::DeviceType;
use crate::disks::geometry::{
    self, describe_extents, geometry_error, planned, DiskGeometry, Extent,
};
use crate::disks::state::BlockDevice;
use crate::disks::step::{s, Op, PlannedTable, Step};
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Disk, Layout};

pub struct Gpt;
pub static GPT: Gpt = Gpt;

impl NodeType for Gpt {
    fn name(&self) -> &'static str {
        "gpt"
    }
    fn place(&self) -> Place {
        Place::Content(&[Slot::Disk])
    }
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        w.gpt(o).map(Content::Gpt)
    }
}

impl DeviceType for Gpt {
    /// sgdisk's placement, per call (`geometry::gpt_extents`).
    fn extents(&self, d: &Disk, dev: &BlockDevice) -> Option<anyhow::Result<Vec<Extent>>> {
        let Some(Content::Gpt(g)) = &d.content else {
            return None;
        };
        let geo = DiskGeometry::of(dev);
        Some({
            let bounds: Vec<_> = g.partitions.iter().map(|p| (&p.start, &p.end)).collect();
            geometry::gpt_extents(&geo, &bounds)
                .map_err(|e| geometry_error(&d.name, &g.partitions[e.index].name, dev, e))
        })
    }
    /// One sgdisk call, then the hybrid MBR's.
    fn partition(
        &self,
        d: &Disk,
        dev: &BlockDevice,
        ext: &[Extent],
    ) -> Option<(Vec<Step>, PlannedTable)> {
        let Some(Content::Gpt(g)) = &d.content else {
            return None;
        };
        let (a, table) = gpt_step(dev, g, ext);
        let mut steps = vec![a];
        steps.extend(hybrid_mbr_steps(dev, g));
        Some((steps, table))
    }
    fn tools(&self, layout: &Layout) -> Vec<String> {
        let gpts: Vec<&crate::layout::Gpt> = layout
            .disks
            .iter()
            .filter_map(|d| match &d.content {
                Some(Content::Gpt(g)) => Some(g),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        if !gpts.is_empty() {
            out.extend(["sgdisk".into(), "partx".into()]);
        }
        let hybrid = gpts
            .iter()
            .flat_map(|g| &g.partitions)
            .any(|p| p.hybrid.is_some_and(|h| h.mbr_type.is_some() || h.bootable));
        if hybrid {
            out.push("sfdisk".into());
        }
        out
    }
}

/// One sgdisk call that writes a fresh GPT with every partition of the layout at the sectors
/// computed here (`--set-alignment=1`: sgdisk moves nothing), and the table it must give.
fn gpt_step(dev: &BlockDevice, g: &crate::layout::Gpt, ext: &[Extent]) -> (Step, PlannedTable) {
    let geo = DiskGeometry::of(dev);
    let mut argv = vec![s("sgdisk"), s("--clear"), s("--set-alignment=1")];
    for (i, (p, e)) in g.partitions.iter().zip(ext).enumerate() {
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
    let table = planned(ext, geo.logical, names, "gpt");
    let a = Step::run(
        Op::PARTITION,
        true,
        format!(
            "partitioning {} (gpt, {} partitions: {})",
            dev.path,
            g.partitions.len(),
            describe_extents(
                g.partitions.iter().map(|p| p.name.as_str()),
                ext,
                geo.logical
            )
        ),
        argv,
    )
    .on(&dev.path);
    (a, table)
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
fn hybrid_mbr_steps(dev: &BlockDevice, g: &crate::layout::Gpt) -> Vec<Step> {
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
    let mut out = vec![Step::run(
        Op::PARTITION,
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
        vec![
            s("sgdisk"),
            format!("--hybrid={}", list.join(":")),
            dev.path.clone(),
        ],
    )
    .on(&dev.path)];
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
                Step::run(
                    Op::PARTITION,
                    true,
                    format!(
                        "setting MBR type {t:02x} on hybrid MBR entry {} (partition {n}) of {}",
                        entry(k),
                        dev.path
                    ),
                    sfdisk(&[
                        s("--part-type"),
                        dev.path.clone(),
                        entry(k).to_string(),
                        format!("{t:02x}"),
                    ]),
                )
                .on(&dev.path),
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
            Step::run(
                Op::PARTITION,
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
                sfdisk(&what),
            )
            .on(&dev.path),
        );
    }
    out
}
