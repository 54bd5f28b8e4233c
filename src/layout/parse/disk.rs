//! disko's `disk` (disk.nix): `device` or the `select` extension (disk selectors), and its
//! `content`.

use serde_json::Value;

use super::walker::Walker;
use super::Slot;
use crate::layout::size::parse_bytes;
use crate::layout::{Disk, DiskRef, Selector};

impl Walker<'_> {
    pub(crate) fn disk(&mut self, path: &str, name: &str, v: &Value) -> Option<Disk> {
        let mut o = self.obj(path, v)?;
        if let Some(t) = self.string(&mut o, "type") {
            if t != "disk" {
                self.err(
                    path,
                    format!("type {t:?}: entries under \"disk\" must have type \"disk\""),
                );
            }
        }
        self.disk_name = self
            .string(&mut o, "name")
            .unwrap_or_else(|| name.replace('/', "_"));
        o.map.remove("imageSize");
        o.map.remove("imageName");
        let device = self.string(&mut o, "device");
        let select = o
            .map
            .remove("select")
            .and_then(|s| self.selector(&format!("{path}.select"), s));
        let content = o
            .map
            .remove("content")
            .and_then(|c| self.content(&format!("{path}.content"), c, Slot::Disk));
        self.finish(o);
        let reference = match (device, select) {
            (Some(_), Some(_)) => {
                self.err(path, "give either device or select, not both");
                return None;
            }
            (Some(d), None) => {
                if !d.starts_with("/dev/") || d.contains("..") {
                    self.err(path, format!("device {d:?}: expected a path under /dev"));
                    return None;
                }
                DiskRef::Path { path: d }
            }
            (None, Some(s)) => DiskRef::Select(s),
            (None, None) => {
                self.err(
                    path,
                    "missing field \"device\" (or the \"select\" extension)",
                );
                return None;
            }
        };
        Some(Disk {
            name: name.to_string(),
            reference,
            content,
        })
    }

    pub(super) fn selector(&mut self, path: &str, v: &Value) -> Option<Selector> {
        let mut o = self.obj(path, v)?;
        let mut s = Selector {
            serial: self.string(&mut o, "serial"),
            wwn: self.string(&mut o, "wwn"),
            model: self.string(&mut o, "model"),
            transport: self.string(&mut o, "transport"),
            rotational: self.boolean(&mut o, "rotational"),
            ..Default::default()
        };
        if let Some(r) = self.string(&mut o, "size") {
            match parse_range(&r) {
                Ok((lo, hi)) => {
                    s.min_size = lo;
                    s.max_size = hi;
                }
                Err(e) => self.err(path, format!("size {r:?}: {e}")),
            }
        }
        self.finish(o);
        if let Some(t) = &s.transport {
            if ![
                "nvme", "sata", "ata", "scsi", "sas", "virtio", "usb", "loop",
            ]
            .contains(&t.as_str())
            {
                self.err(
                    path,
                    format!("transport {t:?}: expected nvme, sata, scsi, sas, virtio, usb or loop"),
                );
            }
        }
        if s == Selector::default() {
            self.err(path, "an empty selector would match every disk");
            return None;
        }
        Some(s)
    }
}

/// `1T..4T`, `..500G`, `100G..`, or an exact `500G`.
fn parse_range(s: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let p = |x: &str| -> Result<Option<u64>, String> {
        if x.is_empty() {
            Ok(None)
        } else {
            parse_bytes(x).map(Some)
        }
    };
    let (lo, hi) = (p(lo)?, p(hi)?);
    if let (Some(a), Some(b)) = (lo, hi) {
        if a > b {
            return Err("the lower bound is above the upper bound".into());
        }
    }
    if lo.is_none() && hi.is_none() {
        return Err("expected a range like 1T..4T".into());
    }
    Ok((lo, hi))
}
