//! Partition-table steps: one sgdisk call for a `gpt` (plus disko's hybrid MBR), sgdisk or an
//! sfdisk script for a legacy `table`, at the exact sectors the geometry room computes; then
//! `partx -u` and the read-back of the table.

use crate::disks::geometry::{self, DiskGeometry, Extent, GeometryError, TableFormat};
use crate::disks::state::BlockDevice;
use crate::disks::step::{s, Effect, Op, PlannedPartition, PlannedTable, Step};
use crate::layout::size::human;
use crate::layout::{Content, Disk};

/// Tell the kernel about the new partitions (BLKPG per partition: works where a whole-table
/// re-read does not, and needs no udev).
pub(super) fn reread(dev: &str) -> Step {
    Step::run(
        Op::PARTITION,
        false,
        format!("telling the kernel about the new partitions of {dev}"),
        vec![s("partx"), s("-u"), dev.to_string()],
    )
    .on(dev)
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

/// The extents (logical sectors) of the partitions of a disk's `gpt` or `table`, in layout order,
/// as sgdisk's or parted's rules place them on `dev` (see `geometry`); None when the disk has no
/// table. Errors: a partition does not fit (exit 3, naming its layout path).
pub(super) fn extents(d: &Disk, dev: &BlockDevice) -> Option<anyhow::Result<Vec<Extent>>> {
    let geo = DiskGeometry::of(dev);
    Some(match d.content.as_ref()? {
        Content::Gpt(g) => {
            let bounds: Vec<_> = g.partitions.iter().map(|p| (&p.start, &p.end)).collect();
            geometry::gpt_extents(&geo, &bounds)
                .map_err(|e| geometry_error(&d.name, &g.partitions[e.index].name, dev, e))
        }
        Content::Table(t) => {
            let bounds: Vec<_> = t.partitions.iter().map(|p| (&p.start, &p.end)).collect();
            geometry::table_extents(&geo, table_format(t), &bounds)
                .map_err(|e| geometry_error(&d.name, &t.partitions[e.index].name, dev, e))
        }
        _ => return None,
    })
}

fn table_format(t: &crate::layout::Table) -> TableFormat {
    if t.format == "gpt" {
        TableFormat::Gpt
    } else {
        TableFormat::Msdos
    }
}

/// One sgdisk call that writes a fresh GPT with every partition of the layout at the sectors
/// computed here (`--set-alignment=1`: sgdisk moves nothing), and the table it must give.
pub(super) fn gpt_step(
    dev: &BlockDevice,
    g: &crate::layout::Gpt,
    ext: &[Extent],
) -> (Step, PlannedTable) {
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
pub(super) fn hybrid_mbr_steps(dev: &BlockDevice, g: &crate::layout::Gpt) -> Vec<Step> {
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

/// A disko `table`: positions resolved as parted would (see `geometry`), then written with
/// exact sectors: gpt through sgdisk, msdos through an sfdisk script.
pub(super) fn table_step(
    dev: &BlockDevice,
    t: &crate::layout::Table,
    ext: &[Extent],
) -> (Step, PlannedTable) {
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

/// After partitioning: read the table back from the disk and compare it with the plan, before
/// anything is formatted.
pub(super) fn verify_table(dev: &str, table: PlannedTable) -> Step {
    Step::new(
        Op::VERIFY_TABLE,
        false,
        format!("reading back the partition table of {dev}"),
        Effect::VerifyTable {
            disk: dev.to_string(),
            expect: table,
        },
    )
}
