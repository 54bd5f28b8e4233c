//! disko's `gpt` (gpt.nix): a GPT with disko's labels and priorities and its hybrid MBR, as a
//! disk's content (parser: `layout/parse/gpt.rs`; steps: `plan/table.rs`, one `sgdisk` call,
//! `sfdisk` for the hybrid MBR's types and flags, `partx -u`, the read-back).

use super::DeviceType;
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Layout};

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
