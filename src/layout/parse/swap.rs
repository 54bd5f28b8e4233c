//! disko's `swap` (swap.nix): `priority`, `discardPolicy`, `extraArgs` (shell words); encrypted
//! swap is rejected, NixOS boot settings are accepted and ignored.

use super::walker::{ArgList, Obj, Walker};
use crate::layout::Swap;

impl Walker<'_> {
    pub(crate) fn swap(&mut self, o: &mut Obj<'_>) -> Option<Swap> {
        let priority = self.int(o, "priority");
        let discard = self.string(o, "discardPolicy");
        let extra_args = self.args(o, "extraArgs", ArgList::ShellWords);
        if self.boolean(o, "randomEncryption") == Some(true) {
            let p = o.path.clone();
            self.err(&p, "randomEncryption: encrypted swap is not supported");
        }
        // NixOS boot settings, not disk content: accepted and ignored.
        o.map.remove("resumeDevice");
        o.map.remove("mountOptions");
        if let Some(d) = &discard {
            if !["both", "once", "pages"].contains(&d.as_str()) {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!("discardPolicy {d:?}: expected both, once or pages"),
                );
            }
        }
        let priority = match priority.map(i32::try_from) {
            Some(Ok(p)) if (-1..=32767).contains(&p) => Some(p),
            None => None,
            Some(_) => {
                let p = o.path.clone();
                self.err(&p, "priority: expected -1..32767");
                None
            }
        };
        Some(Swap {
            priority,
            discard,
            extra_args,
        })
    }
}
