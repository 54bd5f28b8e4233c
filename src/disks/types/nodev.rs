//! disko's `nodev` (nodev.nix): a top-level mount without a device, tmpfs and the like (parser:
//! `layout/parse/nodev.rs`; its mount here, `top_uses`, ordered with the device mounts by depth).

use serde_json::Value;

use super::{DeviceType, Use};
use crate::disks::step::{Effect, MountOptions, Op, Step};
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

impl DeviceType for Nodev {
    fn top_uses(&self, layout: &Layout) -> Vec<Use> {
        layout
            .nodev
            .iter()
            .map(|n| Use::Mount {
                mountpoint: n.mountpoint.clone(),
                step: Step::new(
                    Op::MOUNT,
                    false,
                    format!("mounting {} on {}", n.fs_type, n.mountpoint),
                    Effect::Mount {
                        source: n.device.clone(),
                        target: n.mountpoint.clone(),
                        fs_type: n.fs_type.clone(),
                        options: MountOptions::parse(&n.mount_options),
                    },
                ),
            })
            .collect()
    }
}
