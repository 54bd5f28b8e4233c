//! disko's `filesystem` (filesystem.nix): `format`, `mountpoint`, `mountOptions`, `extraArgs`
//! (one mkfs argument per entry).

use super::walker::{ArgList, Obj, Walker};
use crate::layout::Filesystem;

impl Walker<'_> {
    pub(crate) fn filesystem(&mut self, o: &mut Obj<'_>) -> Option<Filesystem> {
        let format = self.required_string(o, "format");
        let mountpoint = self.string(o, "mountpoint");
        let mount_options = self.strings(o, "mountOptions");
        let extra_args = self.args(o, "extraArgs", ArgList::Single);
        if let Some(m) = &mountpoint {
            self.check_mountpoint(&o.path, m);
        }
        if let Some(f) = &format {
            if f.is_empty()
                || !f
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!("format {f:?}: expected a filesystem type such as ext4, xfs or vfat"),
                );
                return None;
            }
        }
        Some(Filesystem {
            format: format?,
            mountpoint,
            mount_options,
            extra_args,
        })
    }
}
