//! disko's `lvm_pv` (lvm_pv.nix) and `lvm_vg` (lvm_vg.nix) with its LVs, and the `lvm` extension
//! (extra global_filter rejects).

use serde_json::Value;

use super::walker::{kind, ArgList, Obj, Walker};
use super::Slot;
use crate::layout::size::LvSize;
use crate::layout::{Content, LogicalVolume, LvType, VolumeGroup};

impl Walker<'_> {
    /// `lvm_pv`: the VG it belongs to.
    pub(crate) fn lvm_pv(&mut self, o: &mut Obj<'_>) -> Option<Content> {
        let vg = self.required_string(o, "vg");
        vg.map(|vg| Content::LvmPv { vg })
    }
}

impl Walker<'_> {
    pub(crate) fn lvm_vg(&mut self, path: &str, name: &str, v: &Value) -> Option<VolumeGroup> {
        let mut o = self.obj(path, v)?;
        if let Some(t) = self.string(&mut o, "type") {
            if t != "lvm_vg" {
                self.err(
                    path,
                    format!("type {t:?}: entries under \"lvm_vg\" must have type \"lvm_vg\""),
                );
            }
        }
        o.map.remove("name");
        if !valid_lvm_name(name) {
            self.err(path, format!("{name:?} is not a valid VG name (letters, digits, + _ . -; not starting with -)"));
        }
        let mut lvs = Vec::new();
        match o.map.remove("lvs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (lv_name, lv) in m {
                    if let Some(l) = self.lv(&format!("{path}.lvs.{lv_name}"), lv_name, lv) {
                        lvs.push(l);
                    }
                }
            }
            Some(other) => self.err(
                &format!("{path}.lvs"),
                format!("expected a mapping, found {}", kind(other)),
            ),
        }
        self.finish(o);
        // Creation order: fixed sizes, then percentages, then thin volumes (which need their
        // pool and take no VG space of their own). Ties keep the name order.
        lvs.sort_by_key(|l: &LogicalVolume| {
            (
                matches!(l.lv_type, LvType::Thin { .. }),
                l.size.is_percent(),
            )
        });
        let pools: Vec<&str> = lvs
            .iter()
            .filter(|l| l.lv_type == LvType::ThinPool)
            .map(|l| l.name.as_str())
            .collect();
        for l in &lvs {
            if let LvType::Thin { pool } = &l.lv_type {
                if !pools.contains(&pool.as_str()) {
                    self.err(
                        &format!("{path}.lvs.{}", l.name),
                        format!("pool {pool:?} is not a thin-pool LV of this VG"),
                    );
                }
            }
        }
        Some(VolumeGroup {
            name: name.to_string(),
            lvs,
        })
    }

    pub(super) fn lv(&mut self, path: &str, key: &str, v: &Value) -> Option<LogicalVolume> {
        let mut o = self.obj(path, v)?;
        let name = self
            .string(&mut o, "name")
            .unwrap_or_else(|| key.to_string());
        let size = self.required_string(&mut o, "size");
        let lvm_type = self.string(&mut o, "lvm_type");
        let pool = self.string(&mut o, "pool");
        let extra_args = self.args(&mut o, "extraArgs", ArgList::ShellWords);
        o.map.remove("priority");
        let content = o
            .map
            .remove("content")
            .and_then(|c| self.content(&format!("{path}.content"), c, Slot::Lv));
        self.finish(o);
        if !valid_lvm_name(&name) || name.starts_with("snapshot") || name.starts_with("pvmove") {
            self.err(path, format!("{name:?} is not a valid LV name"));
        }
        let size = match size.as_deref().map(LvSize::parse) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.err(path, format!("size: {e}"));
                return None;
            }
            None => return None,
        };
        let lv_type = match (lvm_type.as_deref(), pool) {
            (None | Some("linear"), None) => LvType::Linear,
            (Some("thin-pool"), None) => LvType::ThinPool,
            (Some("thinlv"), Some(p)) => LvType::Thin { pool: p },
            (Some("thinlv"), None) => {
                self.err(path, "lvm_type thinlv needs \"pool\"");
                return None;
            }
            (
                Some(
                    t @ ("raid0" | "raid1" | "raid4" | "raid5" | "raid6" | "raid10" | "mirror"
                    | "striped"),
                ),
                None,
            ) => LvType::Other(t.to_string()),
            (Some(t), None) => {
                self.err(path, format!("lvm_type {t:?} is not supported (linear, thin-pool, thinlv, raid0/1/4/5/6/10, mirror, striped)"));
                return None;
            }
            (_, Some(_)) => {
                self.err(path, "\"pool\" is only valid with lvm_type thinlv");
                return None;
            }
        };
        if matches!(lv_type, LvType::Thin { .. }) && size.is_percent() {
            self.err(
                path,
                "a thin LV needs a virtual size in bytes (like 10G), not a percentage",
            );
        }
        Some(LogicalVolume {
            name,
            size,
            lv_type,
            extra_args,
            content,
        })
    }

    pub(super) fn lvm_ext(&mut self, v: &Value) -> Vec<String> {
        let Some(mut o) = self.obj("lvm", v) else {
            return Vec::new();
        };
        let rejects = self.strings(&mut o, "global_filter_reject");
        self.finish(o);
        for r in &rejects {
            let ok = r.len() >= 3 && r.starts_with('r') && {
                let d = r.chars().nth(1).unwrap_or(' ');
                r.ends_with(d) && !d.is_alphanumeric()
            };
            if !ok || r.contains('"') {
                self.err(
                    "lvm.global_filter_reject",
                    format!("{r:?}: expected an LVM reject pattern like \"r|^/dev/zd.*|\""),
                );
            }
        }
        rejects
    }
}

/// LVM names: letters, digits and `+_.-`, not starting with `-`, not `.` or `..`.
pub fn valid_lvm_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 127
        && !n.starts_with('-')
        && n != "."
        && n != ".."
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+_.-".contains(c))
}
