//! disko's `swap` (swap.nix) on a disk, partition or LV (parser: `layout/parse/swap.rs`; steps:
//! `plan/provision.rs` mkswap, `plan/mount.rs` swapon(2) with the flags computed when planning).

use super::{contents, DeviceType};
use crate::disks::step::Op;
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Layout};

pub struct Swap;
pub static SWAP: Swap = Swap;

/// `mkswap` of a new device.
pub const MKSWAP: Op = Op::new("mkswap");
/// swapon(2).
pub const SWAPON: Op = Op::new("swapon");

impl NodeType for Swap {
    fn name(&self) -> &'static str {
        "swap"
    }
    fn place(&self) -> Place {
        Place::Content(&[Slot::Disk, Slot::Partition, Slot::Lv])
    }
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        w.swap(o).map(Content::Swap)
    }
}

impl DeviceType for Swap {
    fn signatures(&self) -> &'static [&'static str] {
        &["swap"]
    }
    fn words(&self, _signature: &str) -> String {
        "swap space".into()
    }
    fn tools(&self, layout: &Layout) -> Vec<String> {
        if contents(layout)
            .iter()
            .any(|c| matches!(c, Content::Swap(_)))
        {
            vec!["mkswap".into()]
        } else {
            Vec::new()
        }
    }
    fn ops(&self) -> &'static [Op] {
        &[MKSWAP, SWAPON]
    }
}
