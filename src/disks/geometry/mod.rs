//! Exact partition geometry: every boundary of a layout's partition table resolved to logical
//! sectors of one disk while planning, so the tools are handed only numbers computed here, every
//! partition is known to fit before anything is wiped, and the table written can be read back
//! and compared.
//!
//! Two grammars, each placed as disko's tool calls place it, one call per partition:
//! - `gpt` partitions (disko runs `sgdisk --align-end [--set-alignment=1] --new=N:START:END`):
//!   sgdisk's rules, in [`sgdisk`];
//! - `table` partitions (disko runs `parted -s DEV -- mkpart … START END`): parted's rules, in
//!   [`parted`].
//!
//! This file holds what both share: the disk's geometry, the extent of a partition and the
//! error naming the partition that does not fit.
//!
//! Also deliberate, for both: the alignment grain is 1 MiB, or a trusted optimal I/O size (see
//! [`DiskGeometry::grain`]); sgdisk always takes 1 MiB, parted takes any optimal I/O size that
//! does not divide 1 MiB and honours the alignment offset, which is not read here. Loop devices
//! report neither, so tests/geometry_loop.rs checks the rest against the real tools.
//!
//! Sectors here are logical sectors of the disk (`queue/logical_block_size`); ranges are
//! inclusive, as in partition tables.

mod parted;
mod sgdisk;

pub use parted::table_extents;
pub use sgdisk::gpt_extents;

use serde::Serialize;

use super::state::BlockDevice;
use super::step::{PlannedPartition, PlannedTable};
use crate::layout::size::{human, MIB};

/// The geometry of one disk, from sysfs `queue/` (or a `--state` snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskGeometry {
    /// Bytes.
    pub size: u64,
    /// Logical sector size in bytes (512 or 4096).
    pub logical: u64,
    /// Physical block size in bytes.
    pub physical: u64,
    /// Optimal I/O size in bytes; 0 when the device reports none.
    pub optimal_io: u64,
}

/// Largest optimal I/O size trusted for alignment; devices report odd values (a RAID
/// controller's full stripe, 32 MiB–4 GiB from some USB bridges).
const MAX_OPTIMAL_IO: u64 = 16 * MIB;

impl DiskGeometry {
    pub fn of(dev: &BlockDevice) -> DiskGeometry {
        let logical = u64::from(dev.logical_sector_size).max(512);
        DiskGeometry {
            size: dev.size,
            logical,
            physical: u64::from(dev.physical_sector_size).max(logical),
            optimal_io: u64::from(dev.optimal_io_size),
        }
    }

    /// Whole logical sectors on the disk.
    pub fn sectors(&self) -> u64 {
        self.size / self.logical
    }

    /// The alignment grain in logical sectors: 1 MiB (sgdisk's and parted's default), or the
    /// optimal I/O size when it is a power-of-two multiple of the physical block size above
    /// 1 MiB and at most 16 MiB (anything else is distrusted).
    pub fn grain(&self) -> u64 {
        let mut g = MIB;
        let o = self.optimal_io;
        if o > MIB && o <= MAX_OPTIMAL_IO && o.is_power_of_two() && o % self.physical == 0 {
            g = o;
        }
        (g / self.logical).max(1)
    }

    /// First and last sector a GPT partition may use: after the protective MBR, the header and
    /// 16 KiB of entries; before the backup entries and header (UEFI 2.10 §5.3).
    pub fn gpt_usable(&self) -> (u64, u64) {
        let entries = 16384u64.div_ceil(self.logical);
        (2 + entries, self.sectors().saturating_sub(2 + entries))
    }
}

/// Where one partition lies, in logical sectors (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub first: u64,
    pub last: u64,
}

impl Extent {
    pub fn sectors(&self) -> u64 {
        self.last - self.first + 1
    }

    /// "at 1 MiB, 512 MiB (sectors 2048–1050623)".
    pub fn describe(&self, ss: u64) -> String {
        format!(
            "at {}, {} (sectors {}–{})",
            human(self.first * ss),
            human(self.sectors() * ss),
            self.first,
            self.last
        )
    }
}

/// Why a table does not fit: which partition (index in creation order) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometryError {
    pub index: usize,
    pub reason: String,
}

pub(super) fn fail<T>(index: usize, reason: impl Into<String>) -> Result<T, GeometryError> {
    Err(GeometryError {
        index,
        reason: reason.into(),
    })
}

pub(super) fn overlap(ext: Extent, used: &[Extent]) -> Option<usize> {
    used.iter()
        .position(|e| ext.first <= e.last && e.first <= ext.last)
}

/// A partition table format for `table` layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Msdos,
    Gpt,
}

/// A partition table that does not fit this disk: bad input (exit 3) naming the layout path,
/// found while planning, before anything is written.
pub(crate) fn geometry_error(
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

/// The table the read-back expects: each extent in bytes, numbered from 1, with its GPT name.
pub(crate) fn planned(
    ext: &[Extent],
    ss: u64,
    names: Vec<Option<String>>,
    kind: &str,
) -> PlannedTable {
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

/// The partitions in words, for a partitioning step's description (`root 1.0 GiB at 1 MiB`).
pub(crate) fn describe_extents<'a>(
    names: impl Iterator<Item = &'a str>,
    ext: &[Extent],
    ss: u64,
) -> String {
    names
        .zip(ext)
        .map(|(n, e)| format!("{n} {}", e.describe(ss)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::size::GIB;

    /// A disk of `size` bytes, `ss`-byte sectors, no optimal I/O size.
    pub(super) fn geo(size: u64, ss: u64) -> DiskGeometry {
        DiskGeometry {
            size,
            logical: ss,
            physical: ss,
            optimal_io: 0,
        }
    }

    /// `parts` as (start, end) texts, parsed by `parse` and placed by `place`: each partition's
    /// (start, size) in bytes.
    pub(super) fn place<P>(
        g: &DiskGeometry,
        parts: &[(&str, &str)],
        parse: fn(&str) -> Result<P, String>,
        place: impl FnOnce(&[(&P, &P)]) -> Result<Vec<Extent>, GeometryError>,
    ) -> Result<Vec<(u64, u64)>, GeometryError> {
        let parsed: Vec<(P, P)> = parts
            .iter()
            .map(|(s, e)| (parse(s).unwrap(), parse(e).unwrap()))
            .collect();
        let refs: Vec<(&P, &P)> = parsed.iter().map(|(a, b)| (a, b)).collect();
        place(&refs).map(|v| {
            v.iter()
                .map(|e| (e.first * g.logical, e.sectors() * g.logical))
                .collect()
        })
    }

    /// (start, size) in bytes as (first, last) sectors of `ss` bytes.
    pub(super) fn sectors(v: &[(u64, u64)], ss: u64) -> Vec<(u64, u64)> {
        v.iter().map(|(s, n)| (s / ss, (s + n) / ss - 1)).collect()
    }

    #[test]
    fn odd_optimal_io_sizes_are_distrusted() {
        let mut g = geo(GIB, 512);
        assert_eq!(g.grain(), 2048);
        g.optimal_io = 4 * MIB;
        assert_eq!(g.grain(), 8192);
        for odd in [33_553_920, 3 * MIB, 64 * MIB, 4096] {
            g.optimal_io = odd;
            assert_eq!(g.grain(), 2048, "{odd}");
        }
    }
}
