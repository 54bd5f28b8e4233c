//! The partition-table stage's own steps (ARCHITECTURE.md §2.4 stage 2): each disk's table
//! extents once (from its type, `DeviceType::extents`), `partx -u` after the table is written
//! (the table's steps are its type's, `DeviceType::partition`), and the read-back.

use crate::disks::geometry::Extent;
use crate::disks::state::BlockDevice;
use crate::disks::step::{s, Effect, Op, PlannedTable, Step};
use crate::disks::types;
use crate::layout::Disk;

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

/// The extents (logical sectors) of the partitions of a disk's partition table, in layout order,
/// as its type's tool places them on `dev` (see `geometry`); None when the disk has no table.
/// Errors: a partition does not fit (exit 3, naming its layout path).
pub(super) fn extents(d: &Disk, dev: &BlockDevice) -> Option<anyhow::Result<Vec<Extent>>> {
    let c = d.content.as_ref()?;
    types::of(c)?.extents(d, dev)
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
