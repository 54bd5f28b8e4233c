//! disko's `nodev` (nodev.nix): mounts without a device (tmpfs …).

use serde_json::Value;

use super::walker::Walker;
use crate::layout::Nodev;

impl Walker<'_> {
    pub(crate) fn nodev(&mut self, path: &str, name: &str, v: &Value) -> Option<Nodev> {
        let mut o = self.obj(path, v)?;
        if let Some(t) = self.string(&mut o, "type") {
            if t != "nodev" {
                self.err(
                    path,
                    format!("type {t:?}: entries under \"nodev\" must have type \"nodev\""),
                );
            }
        }
        let fs_type = self
            .string(&mut o, "fsType")
            .unwrap_or_else(|| "tmpfs".into());
        let device = self
            .string(&mut o, "device")
            .unwrap_or_else(|| "none".into());
        let mountpoint = self
            .string(&mut o, "mountpoint")
            .unwrap_or_else(|| name.to_string());
        let mount_options = self.strings(&mut o, "mountOptions");
        self.finish(o);
        self.check_mountpoint(path, &mountpoint);
        Some(Nodev {
            name: name.to_string(),
            fs_type,
            device,
            mountpoint,
            mount_options,
        })
    }
}
