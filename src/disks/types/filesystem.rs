//! disko's `filesystem` (filesystem.nix): any `mkfs.<format>` on a disk, partition or LV
//! (parser: `layout/parse/filesystem.rs`; steps: `plan/provision.rs` mkfs, `plan/mount.rs` the
//! superblock-first fsck and the mount). It owns no signature of its own: any libblkid `TYPE` no
//! other type owns is judged as "`<TYPE>` filesystem".

use super::{contents, DeviceType};
use crate::disks::step::Op;
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Layout};

pub struct Filesystem;
pub static FILESYSTEM: Filesystem = Filesystem;

/// `mkfs.<format>` of a new device.
pub const MKFS: Op = Op::new("mkfs");
/// The superblock read and, when not clean, `e2fsck -p` (mount-only).
pub const FSCK: Op = Op::new("fsck");

impl NodeType for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }
    fn place(&self) -> Place {
        Place::Content(&[Slot::Disk, Slot::Partition, Slot::Lv])
    }
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        w.filesystem(o).map(Content::Filesystem)
    }
}

impl DeviceType for Filesystem {
    fn tools(&self, layout: &Layout) -> Vec<String> {
        contents(layout)
            .into_iter()
            .filter_map(|c| match c {
                Content::Filesystem(f) => Some(format!("mkfs.{}", f.format)),
                _ => None,
            })
            .collect()
    }
    fn ops(&self) -> &'static [Op] {
        &[MKFS, FSCK]
    }
}
