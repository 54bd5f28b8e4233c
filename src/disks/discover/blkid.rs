//! libblkid probes: a device's superblock type, label and UUID, its partition table (type and
//! partition names), and a table read back entry by entry.

use std::path::Path;

/// libblkid probe of one device: superblock TYPE, LABEL, UUID, the partition table type, and
/// (for a whole disk) the partition names read from the table itself (partitions added with
/// BLKPG carry no PARTNAME in sysfs).
#[derive(Debug, Default)]
pub(super) struct Probe {
    pub(super) fs_type: Option<String>,
    pub(super) label: Option<String>,
    pub(super) uuid: Option<String>,
    pub(super) pt_type: Option<String>,
    pub(super) part_names: Vec<(u32, String)>,
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

pub(super) fn blkid_probe(path: &Path) -> Probe {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
