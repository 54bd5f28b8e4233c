//! disko's legacy `table` (table.nix), as a disk's content (parser: `layout/parse/table.rs`).
//! Its steps here: its extents (parted's placement, `geometry`), then `sgdisk` for a gpt table or
//! an `sfdisk` script for msdos at those sectors; `partx -u` and the read-back are the stage's
//! (`plan/table.rs`).

use super::DeviceType;
use crate::disks::geometry::{
    self, describe_extents, geometry_error, planned, DiskGeometry, Extent, TableFormat,
};
use crate::disks::state::BlockDevice;
use crate::disks::step::{s, Op, PlannedTable, Step};
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Disk, Layout};

pub struct Table;
pub static TABLE: Table = Table;

impl NodeType for Table {
    fn name(&self) -> &'static str {
        "table"
    }
    fn place(&self) -> Place {
        Place::Content(&[Slot::Disk])
    }
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        w.table(o).map(Content::Table)
    }
}

impl DeviceType for Table {
    /// parted's placement (`geometry::table_extents`).
    fn extents(&self, d: &Disk, dev: &BlockDevice) -> Option<anyhow::Result<Vec<Extent>>> {
        let Some(Content::Table(t)) = &d.content else {
            return None;
        };
        let geo = DiskGeometry::of(dev);
        Some({
            let bounds: Vec<_> = t.partitions.iter().map(|p| (&p.start, &p.end)).collect();
            geometry::table_extents(&geo, table_format(t), &bounds)
                .map_err(|e| geometry_error(&d.name, &t.partitions[e.index].name, dev, e))
        })
    }
    fn partition(
        &self,
        d: &Disk,
        dev: &BlockDevice,
        ext: &[Extent],
    ) -> Option<(Vec<Step>, PlannedTable)> {
        let Some(Content::Table(t)) = &d.content else {
            return None;
        };
        let (a, table) = table_step(dev, t, ext);
        Some((vec![a], table))
    }
    fn tools(&self, layout: &Layout) -> Vec<String> {
        let mut out = Vec::new();
        for d in &layout.disks {
            if let Some(Content::Table(t)) = &d.content {
                out.push("partx".into());
                out.push(
                    if t.format == "gpt" {
                        "sgdisk"
                    } else {
                        "sfdisk"
                    }
                    .into(),
                );
            }
        }
        out
    }
}

fn table_format(t: &crate::layout::Table) -> TableFormat {
    if t.format == "gpt" {
        TableFormat::Gpt
    } else {
        TableFormat::Msdos
    }
}

/// A disko `table`: positions resolved as parted would (see `geometry`), then written with
/// exact sectors: gpt through sgdisk, msdos through an sfdisk script.
fn table_step(dev: &BlockDevice, t: &crate::layout::Table, ext: &[Extent]) -> (Step, PlannedTable) {
    let geo = DiskGeometry::of(dev);
    let format = table_format(t);
    let what = describe_extents(
        t.partitions.iter().map(|p| p.name.as_str()),
        ext,
        geo.logical,
    );
    if format == TableFormat::Gpt {
        let mut argv = vec![s("sgdisk"), s("--clear"), s("--set-alignment=1")];
        for (i, (p, e)) in t.partitions.iter().zip(ext).enumerate() {
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
        let a = Step::run(
            Op::PARTITION,
            true,
            format!(
                "partitioning {} (gpt, {} partitions: {what})",
                dev.path,
                t.partitions.len()
            ),
            argv,
        )
        .on(&dev.path);
        return (a, planned(ext, geo.logical, names, "gpt"));
    }
    let mut script = String::from("label: dos\nunit: sectors\n");
    for (p, e) in t.partitions.iter().zip(ext) {
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
    let a = Step::run(
        Op::PARTITION,
        true,
        format!(
            "partitioning {} (msdos, {} partitions: {what})",
            dev.path,
            t.partitions.len()
        ),
        vec![
            s("sfdisk"),
            s("--no-reread"),
            s("--wipe"),
            s("always"),
            dev.path.clone(),
        ],
    )
    .on(&dev.path)
    .with_stdin(script);
    let names = t.partitions.iter().map(|_| None).collect();
    (a, planned(ext, geo.logical, names, "dos"))
}
