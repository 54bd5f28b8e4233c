//! disko's `disk` (disk.nix): a top-level entry naming one machine disk by `device` or the
//! `select` extension (parser: `layout/parse/disk.rs`; resolution: `disks/resolve.rs`). Its own
//! steps: the wipe of the disk and its old partitions before the table.

use serde_json::Value;

use super::DeviceType;
use crate::disks::step::Op;
use crate::layout::parse::{NodeType, Place, Walker};
use crate::layout::Layout;

pub struct Disk;
pub static DISK: Disk = Disk;

/// `wipefs -a` of a target's partitions, the disk, and the new partitions.
pub const WIPE: Op = Op::new("wipe");

impl NodeType for Disk {
    fn name(&self) -> &'static str {
        "disk"
    }
    fn place(&self) -> Place {
        Place::TopLevel
    }
    fn parse_top(
        &self,
        w: &mut Walker<'_>,
        path: &str,
        name: &str,
        v: &Value,
        layout: &mut Layout,
    ) {
        layout.disks.extend(w.disk(path, name, v));
    }
}

impl DeviceType for Disk {
    fn tools(&self, layout: &Layout) -> Vec<String> {
        if layout.disks.is_empty() {
            Vec::new()
        } else {
            vec!["wipefs".into()]
        }
    }
    fn ops(&self) -> &'static [Op] {
        &[WIPE]
    }
}
