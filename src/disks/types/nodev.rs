//! disko's `nodev` (nodev.nix): a top-level mount without a device, tmpfs and the like (parser:
//! `layout/parse/nodev.rs`; its mount step: `plan/mount.rs`, with the device mounts by depth).

use serde_json::Value;

use super::DeviceType;
use crate::layout::parse::{NodeType, Place, Walker};
use crate::layout::Layout;

pub struct Nodev;
pub static NODEV: Nodev = Nodev;

impl NodeType for Nodev {
    fn name(&self) -> &'static str {
        "nodev"
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
        layout.nodev.extend(w.nodev(path, name, v));
    }
}

impl DeviceType for Nodev {}
