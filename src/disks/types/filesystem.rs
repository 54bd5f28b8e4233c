//! disko's `filesystem` (filesystem.nix): any `mkfs.<format>` on a disk, partition or LV
//! (parser: `layout/parse/filesystem.rs`; its steps here: mkfs (`format`), the superblock-first
//! fsck and the mount (`uses`), composed by `plan/`). It owns no signature of its own: any
//! libblkid `TYPE` no other type owns is judged as "`<TYPE>` filesystem".

use super::{contents, DeviceType, Use};
use crate::disks::cx::{Mode, PlanCx};
use crate::disks::step::{Effect, MountOptions, Op, Step};
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
    fn format(&self, c: &Content, dev: &str, what: &str) -> Option<Step> {
        let Content::Filesystem(f) = c else {
            return None;
        };
        Some(
            Step::run(
                MKFS,
                true,
                format!("formatting {what} ({})", f.format),
                mkfs_argv(f, dev),
            )
            .on(dev),
        )
    }
    /// Mount-only: an ext* filesystem is checked first; then mounted where the layout says.
    fn uses(&self, c: &Content, dev: &str, what: &str, cx: &PlanCx) -> anyhow::Result<Vec<Use>> {
        let Content::Filesystem(f) = c else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if f.format.starts_with("ext") && cx.mode != Mode::Provision {
            // The executor reads the superblock first and runs e2fsck -p only when it would do
            // more than say "clean" (see execute::ext_is_clean).
            out.push(Use::Check(Step::new(
                FSCK,
                false,
                format!(
                    "checking {what} ({}): e2fsck -p unless its superblock is clean",
                    f.format
                ),
                Effect::Fsck {
                    device: dev.to_string(),
                    fs_type: f.format.clone(),
                },
            )));
        }
        if let Some(mp) = &f.mountpoint {
            out.push(Use::Mount {
                mountpoint: mp.clone(),
                step: Step::new(
                    Op::MOUNT,
                    false,
                    format!("mounting {dev} on {mp}"),
                    Effect::Mount {
                        source: dev.to_string(),
                        target: mp.clone(),
                        fs_type: f.format.clone(),
                        options: MountOptions::parse(&f.mount_options),
                    },
                ),
            });
        }
        Ok(out)
    }
}

/// `mkfs.<format>`, forced where the tool would ask, with the layout's `extraArgs`.
fn mkfs_argv(f: &crate::layout::Filesystem, dev: &str) -> Vec<String> {
    let force: &[&str] = match f.format.as_str() {
        "ext2" | "ext3" | "ext4" => &["-F", "-q"],
        "xfs" | "btrfs" | "f2fs" => &["-f"],
        _ => &[],
    };
    let mut v = vec![format!("mkfs.{}", f.format)];
    v.extend(force.iter().map(|x| x.to_string()));
    v.extend(f.extra_args.iter().cloned());
    v.push(dev.to_string());
    v
}
