//! disko's legacy `table` (table.nix), as a disk's content (parser: `layout/parse/table.rs`;
//! steps: `plan/table.rs`, `sgdisk` for a gpt table and an `sfdisk` script for msdos at parted's
//! positions, `partx -u`, the read-back).

use super::DeviceType;
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Layout};

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
