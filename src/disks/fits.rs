//! What the exact geometry lets us know before the first wipe besides where partitions go:
//! whether each filesystem and swap area fits the space it gets (the tools' minimum sizes, FAT32's
//! cluster count on the disk's sector size) and whether the fixed-size LVs fit their VG. Every
//! problem of every disk is listed at once; any is bad input (exit 3).

use super::geometry::{DiskGeometry, Extent};
use super::state::BlockDevice;
use crate::layout::size::{human, LvSize, KIB, MIB};
use crate::layout::{Content, Filesystem, Layout, LvType};

/// LVM's default extent size (vgcreate(8) `--physicalextentsize`, 4 MiB) and the default start
/// of a PV's data area (pvcreate(8) `--dataalignment`: 1 MiB).
const EXTENT: u64 = 4 * MIB;
const PE_START: u64 = MIB;

/// The smallest size each `mkfs`/`mkswap` accepts, measured with Debian 12's tools
/// (e2fsprogs 1.47.0: 101 KiB fails, 104 KiB works; util-linux 2.38 mkswap: 10 pages of
/// 4 KiB; xfsprogs 6.1: "Filesystem must be larger than 300MB"; btrfs-progs 6.2: 109 MiB for
/// the default single/DUP profiles).
fn minimum(format: &str, logical: u64) -> Option<u64> {
    Some(match format {
        // On 4096-byte sectors mke2fs needs 256 KiB (192 KiB fails): 64 of the disk's sectors.
        "ext2" | "ext3" | "ext4" => (104 * KIB).max(64 * logical),
        "swap" => 40 * KIB,
        // mkfs.fat 4.2: 32 KiB fails, 64 KiB works with 512-byte sectors; scaled by the sector.
        "vfat" => 64 * KIB * (logical / 512).max(1),
        "xfs" => 300 * MIB,
        "btrfs" => 109 * MIB,
        _ => return None,
    })
}

/// FAT32 needs at least 65525 clusters (Microsoft's FAT specification, "FAT type
/// determination"); mkfs.fat makes a smaller one with only a warning, which firmware may not
/// read.
const FAT32_MIN_CLUSTERS: u64 = 65525;

/// mkfs.vfat's `-F` FAT size (12, 16, 32; None = its own choice) and `-s` sectors per cluster
/// (None = its own choice), in the joined (`-F32`) or separate form.
fn fat_args(args: &[String]) -> (Option<u32>, Option<u64>) {
    let mut fat = None;
    let mut spc = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let (flag, inline) = if a.is_char_boundary(2) {
            a.split_at(2)
        } else {
            (a.as_str(), "")
        };
        let mut value = || {
            if inline.is_empty() {
                it.peek().map(|v| v.as_str())
            } else {
                Some(inline)
            }
        };
        match flag {
            "-F" => fat = value().and_then(|v| v.parse().ok()),
            "-s" => spc = value().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    (fat, spc.filter(|s| *s > 0))
}

/// The label a mkfs argument list sets (`-L x`, or `-n x` for vfat) and the longest each tool
/// takes: mkfs.vfat 11 bytes, mke2fs and mkswap 16, mkfs.xfs 12, mkfs.btrfs 255.
fn label_too_long(format: &str, args: &[String]) -> Option<String> {
    let (flag, max) = match format {
        "vfat" => ("-n", 11),
        "ext2" | "ext3" | "ext4" | "swap" => ("-L", 16),
        "xfs" => ("-L", 12),
        "btrfs" => ("-L", 255),
        _ => return None,
    };
    let i = args.iter().position(|a| a == flag)?;
    let label = args.get(i + 1)?;
    (label.len() > max).then(|| {
        format!(
            "the label {label:?} ({flag}) is {} bytes, and {format} labels hold at most {max}",
            label.len()
        )
    })
}

/// Does a filesystem or swap area fit `size` bytes on a disk with `logical`-byte sectors?
fn content_fits(c: &Content, size: u64, logical: u64) -> Result<(), String> {
    let (format, args): (&str, &[String]) = match c {
        Content::Filesystem(Filesystem {
            format, extra_args, ..
        }) => (format, extra_args),
        Content::Swap(s) => ("swap", &s.extra_args),
        _ => return Ok(()),
    };
    if let Some(min) = minimum(format, logical) {
        if size < min {
            return Err(format!(
                "{format} needs at least {} and gets {}",
                human(min),
                human(size)
            ));
        }
    }
    if let Some(e) = label_too_long(format, args) {
        return Err(e);
    }
    if format == "vfat" {
        let (fat, spc_given) = fat_args(args);
        // FAT12/16 hold at most 4084/65524 clusters (Microsoft's FAT specification); mkfs.fat
        // picks clusters of up to 128 sectors (64 KiB with 512-byte sectors) by itself.
        let limit = match fat {
            Some(12) => Some(4084u64),
            Some(16) => Some(65524),
            _ => None,
        };
        if let Some(max) = limit {
            let spc = spc_given.unwrap_or(128);
            let clusters = size / (logical * spc);
            if clusters > max {
                return Err(format!(
                    "FAT{} (-F {}) holds at most {max} clusters, and {} in clusters of {} needs {clusters}: drop -F or make it smaller",
                    fat.unwrap_or(0),
                    fat.unwrap_or(0),
                    human(size),
                    human(logical * spc)
                ));
            }
        }
        let fat32 = fat == Some(32);
        let spc = spc_given.unwrap_or(1);
        let clusters = size / (logical * spc);
        if fat32 && clusters < FAT32_MIN_CLUSTERS {
            return Err(format!(
                "FAT32 (-F 32) needs at least {FAT32_MIN_CLUSTERS} clusters, and {} in clusters of {} ({logical}-byte sectors) holds at most {clusters}: make it at least {} or drop -F 32",
                human(size),
                human(logical * spc),
                human(FAT32_MIN_CLUSTERS * logical * spc)
            ));
        }
    }
    Ok(())
}

/// Every check above for a layout on the disks it resolved to (`resolved[i]` for
/// `layout.disks[i]`), with the partition extents the partitioning will write (`extents[i]`, in
/// the disk's logical sectors, one per partition in layout order; None for a disk without a
/// table and for a table that does not fit, which the partitioning reports itself). Errors: one
/// line per problem, named by layout path.
pub fn check(
    layout: &Layout,
    resolved: &[Option<&BlockDevice>],
    extents: &[Option<&[Extent]>],
) -> Vec<String> {
    let mut problems = Vec::new();
    // PV sizes per VG (bytes), for the LV check.
    let mut pv_sizes: Vec<(&str, u64, u64)> = Vec::new(); // (vg, bytes, logical sector)
    for (i, (d, dev)) in layout.disks.iter().zip(resolved).enumerate() {
        let Some(dev) = dev else { continue };
        let ss = DiskGeometry::of(dev).logical;
        let ext = extents.get(i).copied().flatten().unwrap_or_default();
        // (name, content) of each partition; their sizes come from `ext`.
        let mut parts: Vec<(&str, Option<&Content>)> = Vec::new();
        match &d.content {
            Some(Content::Gpt(g)) => parts.extend(
                g.partitions
                    .iter()
                    .map(|p| (p.name.as_str(), p.content.as_deref())),
            ),
            Some(Content::Table(t)) => parts.extend(
                t.partitions
                    .iter()
                    .map(|p| (p.name.as_str(), p.content.as_deref())),
            ),
            Some(c) => {
                if let Content::LvmPv { vg } = c {
                    pv_sizes.push((vg, dev.size, ss));
                } else if let Err(e) = content_fits(c, dev.size, ss) {
                    problems.push(format!("disk.{}.content: {e} (on {})", d.name, dev.path));
                }
            }
            None => {}
        }
        for ((name, content), e) in parts.into_iter().zip(ext) {
            let size = e.sectors() * ss;
            match content {
                Some(Content::LvmPv { vg }) => pv_sizes.push((vg, size, ss)),
                Some(c) => {
                    if let Err(e) = content_fits(c, size, ss) {
                        problems.push(format!(
                            "disk.{}.content.partitions.{name}.content: {e} (on {})",
                            d.name, dev.path
                        ));
                    }
                }
                None => {}
            }
        }
    }
    for vg in &layout.vgs {
        let members: Vec<u64> = pv_sizes
            .iter()
            .filter(|(v, _, _)| *v == vg.name)
            .map(|(_, s, _)| *s)
            .collect();
        // An LV's logical sector is its PVs' (the largest, when they differ).
        let lv_logical = pv_sizes
            .iter()
            .filter(|(v, _, _)| *v == vg.name)
            .map(|(_, _, l)| *l)
            .max()
            .unwrap_or(512);
        if members.is_empty() {
            continue;
        }
        let extents: u64 = members
            .iter()
            .map(|s| s.saturating_sub(PE_START) / EXTENT)
            .sum();
        // Mirrors and RAID LVs take several copies plus metadata: only linear LVs and thin pools
        // are summed (thin volumes are virtual).
        let mut fixed = 0u64;
        let mut summable = true;
        for lv in &vg.lvs {
            match (&lv.lv_type, &lv.size) {
                (LvType::Linear | LvType::ThinPool, LvSize::Bytes { bytes }) => {
                    fixed += bytes.div_ceil(EXTENT);
                    if let Some(c) = &lv.content {
                        if let Err(e) = content_fits(c, *bytes, lv_logical) {
                            problems
                                .push(format!("lvm_vg.{}.lvs.{}.content: {e}", vg.name, lv.name));
                        }
                    }
                }
                (LvType::Thin { .. }, _) => {}
                (LvType::Linear | LvType::ThinPool, LvSize::Percent { .. }) => {}
                (LvType::Other(_), _) => summable = false,
            }
        }
        if summable && fixed > extents {
            problems.push(format!(
                "lvm_vg.{}: its fixed-size LVs need {} ({} extents of 4 MiB) but its PVs hold {} ({extents} extents)",
                vg.name,
                human(fixed * EXTENT),
                fixed,
                human(extents * EXTENT)
            ));
        } else if summable
            && fixed == extents
            && vg.lvs.iter().any(|lv| {
                matches!(lv.lv_type, LvType::Linear | LvType::ThinPool) && lv.size.is_percent()
            })
        {
            problems.push(format!(
                "lvm_vg.{}: its fixed-size LVs take every extent ({}), nothing is left for the LVs sized in %",
                vg.name,
                human(extents * EXTENT)
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::state::BlockDevice;

    fn disk(size: u64, ss: u32) -> BlockDevice {
        BlockDevice {
            name: "vda".into(),
            path: "/dev/vda".into(),
            size,
            logical_sector_size: ss,
            physical_sector_size: ss,
            ..Default::default()
        }
    }

    fn problems(yaml: &str, dev: &BlockDevice) -> Vec<String> {
        let l = crate::disks::types::parse_str("t.yaml", yaml).unwrap();
        let Some(Content::Gpt(g)) = &l.disks[0].content else {
            panic!("a gpt layout")
        };
        let bounds: Vec<_> = g.partitions.iter().map(|p| (&p.start, &p.end)).collect();
        let ext = crate::disks::geometry::gpt_extents(&DiskGeometry::of(dev), &bounds).ok();
        check(&l, &[Some(dev)], &[ext.as_deref()])
    }

    const ESP: &str = "disk:\n  d:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        ESP:\n          type: EF00\n          size: 100M\n          content: {type: filesystem, format: vfat, extraArgs: [\"-F\", \"32\"]}\n";

    #[test]
    fn fat32_clusters_depend_on_the_sector_size() {
        assert!(problems(ESP, &disk(1 << 30, 512)).is_empty());
        let p = problems(ESP, &disk(1 << 30, 4096));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("disk.d.content.partitions.ESP.content: FAT32"),
            "{p:?}"
        );
        assert!(p[0].contains("25600"), "{p:?}");
        // Without -F 32 mkfs.vfat picks FAT16 by itself: fine on both.
        let auto = ESP.replace(", extraArgs: [\"-F\", \"32\"]", "");
        assert!(problems(&auto, &disk(1 << 30, 4096)).is_empty());
    }

    /// Found by a review: each passed validate and the dry run, then mkfs failed after the wipe.
    #[test]
    fn sector_size_fat_type_and_label_limits() {
        let one = |content: &str| {
            format!("disk:\n  d:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        a: {{{content}}}\n")
        };
        let cases: &[(&str, u32, &str)] = &[
            ("size: 104K, content: {type: filesystem, format: ext4}", 4096, "ext4 needs at least 256 KiB"),
            ("size: 300M, type: EF00, content: {type: filesystem, format: vfat, extraArgs: [\"-F\", \"12\"]}", 512, "FAT12"),
            ("size: 8K, type: EF00, content: {type: filesystem, format: vfat}", 512, "vfat needs at least 64 KiB"),
            ("size: 10M, content: {type: filesystem, format: vfat, extraArgs: [\"-n\", \"WAYTOOLONGLABEL\"]}", 512, "at most 11"),
            ("size: 10M, content: {type: filesystem, format: ext4, extraArgs: [\"-L\", \"a-label-of-17-byt\"]}", 512, "at most 16"),
            ("size: 100M, type: EF00, content: {type: filesystem, format: vfat, extraArgs: [\"-F32\", \"-s1\"]}", 4096, "FAT32"),
        ];
        for (c, ss, want) in cases {
            let p = problems(&one(c), &disk(1 << 30, *ss));
            assert!(p.len() == 1 && p[0].contains(want), "{c} on {ss}: {p:?}");
        }
        for ok in [
            "size: 256K, content: {type: filesystem, format: ext4}",
            "size: 200M, type: EF00, content: {type: filesystem, format: vfat, extraArgs: [\"-F\", \"12\"]}",
            "size: 10M, content: {type: filesystem, format: vfat, extraArgs: [\"-n\", \"ESP\"]}",
        ] {
            assert!(problems(&one(ok), &disk(1 << 30, 4096)).is_empty(), "{ok}");
        }
    }

    #[test]
    fn minimum_sizes_and_lvs_against_the_vg() {
        let tiny = "disk:\n  d:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        a: {size: 64K, content: {type: filesystem, format: ext4}}\n        b: {size: 32K, content: {type: swap}}\n        c: {size: 200M, content: {type: filesystem, format: xfs}}\n";
        let p = problems(tiny, &disk(1 << 30, 512));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("partitions.a") && p[0].contains("ext4 needs at least 104 KiB"));
        let vg = "disk:\n  d:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        pv: {size: 100%, content: {type: lvm_pv, vg: vg0}}\nlvm_vg:\n  vg0:\n    type: lvm_vg\n    lvs:\n      a: {size: 600M}\n      b: {size: 500M}\n";
        let p = problems(vg, &disk(1 << 30, 512));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("lvm_vg.vg0: its fixed-size LVs need 1.1 GiB"),
            "{p:?}"
        );
        assert!(problems(vg, &disk(2 << 30, 512)).is_empty());
    }
}
