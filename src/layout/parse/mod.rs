//! Layout parser: YAML/JSON → [`Layout`], walking the tree by hand so that every problem is
//! reported with its path in the layout (`disk.main.content.partitions.ESP: …`), and all problems
//! are collected (for `provision validate`), not just the first.
//!
//! One file per disko type's parser (`gpt.rs`, `table.rs`, `filesystem.rs`, `swap.rs`, `lvm.rs`,
//! `disk.rs`, `nodev.rs`), one per extension (`ensure_dirs.rs`; `select` is the disk's, `lvm` is
//! in `lvm.rs`), on a shared core (`walker.rs`: field readers, paths in errors, argument lists);
//! `cross_check.rs` checks the whole layout; this file dispatches `content` by type and holds the
//! entry points.

mod cross_check;
mod disk;
mod ensure_dirs;
mod filesystem;
mod gpt;
mod lvm;
mod nodev;
mod swap;
mod table;
pub use table::table_gpt_name;
mod walker;

use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

use super::{Content, Layout};
use crate::exit::{coded, Code};
use walker::{kind, Walker};

pub use gpt::default_label;
pub use lvm::valid_lvm_name;
pub use walker::{shell_words, ArgList};

/// Every problem found in a layout, each naming the file and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutErrors {
    pub file: String,
    pub problems: Vec<String>,
}

impl fmt::Display for LayoutErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for LayoutErrors {}

/// Types disko has that this agent does not implement.
const UNSUPPORTED_TYPES: &[&str] = &[
    "zfs",
    "zpool",
    "zfs_fs",
    "zfs_volume",
    "luks",
    "mdadm",
    "mdraid",
    "btrfs",
    "bcachefs",
    "bcachefs_filesystem",
    "topology",
];

impl Walker {
    /// `content` of a disk, partition or LV. `allowed` lists the types valid at this place.
    fn content(&mut self, path: &str, v: &Value, allowed: &[&str]) -> Option<Content> {
        if v.is_null() {
            return None;
        }
        let mut o = self.obj(path, v)?;
        let ty = self.node_type(&mut o)?;
        if UNSUPPORTED_TYPES.contains(&ty.as_str()) {
            self.err(path, format!("type \"{ty}\" is not supported (provision supports {}; zfs, luks, mdadm, btrfs subvolumes and bcachefs are not)", allowed.join(", ")));
            return None;
        }
        if !allowed.contains(&ty.as_str()) {
            self.err(
                path,
                format!(
                    "type \"{ty}\" is not allowed here (expected one of: {})",
                    allowed.join(", ")
                ),
            );
            return None;
        }
        let c = match ty.as_str() {
            "gpt" => self.gpt(&mut o).map(Content::Gpt),
            "table" => self.table(&mut o).map(Content::Table),
            "filesystem" => self.filesystem(&mut o).map(Content::Filesystem),
            "swap" => self.swap(&mut o).map(Content::Swap),
            "lvm_pv" => self.lvm_pv(&mut o),
            _ => None,
        };
        self.finish(o);
        c
    }
}

fn walk_map<'a>(
    w: &mut Walker,
    root: &'a Map<String, Value>,
    key: &str,
) -> Vec<(&'a String, &'a Value)> {
    match root.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.iter().collect(),
        Some(other) => {
            w.err(key, format!("expected a mapping, found {}", kind(other)));
            Vec::new()
        }
    }
}

/// Parse a layout from a JSON value (what YAML or JSON text deserialises to).
pub fn from_value(file: &str, v: &Value) -> Result<Layout, LayoutErrors> {
    let mut w = Walker {
        problems: Vec::new(),
        disk_name: String::new(),
    };
    let mut layout = Layout::default();
    let Value::Object(root) = v else {
        return Err(LayoutErrors {
            file: file.into(),
            problems: vec![format!(
                "expected a mapping with disk/lvm_vg/nodev, found {}",
                kind(v)
            )],
        });
    };
    for (k, v) in root {
        match k.as_str() {
            "disk" | "lvm_vg" | "nodev" | "ensure_dirs" | "lvm" => {}
            "mdadm" | "zpool" | "bcachefs_filesystems" | "bcachefs" => {
                if let Value::Object(m) = v {
                    for (name, node) in m {
                        let ty = node.get("type").and_then(Value::as_str).unwrap_or(k.as_str());
                        w.err(&format!("{k}.{name}"), format!("type \"{ty}\" is not supported (zfs, luks, mdadm, btrfs subvolumes and bcachefs are not)"));
                    }
                } else if !v.is_null() {
                    w.err(k, format!("\"{k}\" is not supported"));
                }
            }
            other => w.err("", format!("unknown top-level field \"{other}\" (expected disk, lvm_vg, nodev, ensure_dirs, lvm)")),
        }
    }
    for (name, v) in walk_map(&mut w, root, "disk") {
        if let Some(d) = w.disk(&format!("disk.{name}"), name, v) {
            layout.disks.push(d);
        }
    }
    for (name, v) in walk_map(&mut w, root, "lvm_vg") {
        if let Some(vg) = w.lvm_vg(&format!("lvm_vg.{name}"), name, v) {
            layout.vgs.push(vg);
        }
    }
    for (name, v) in walk_map(&mut w, root, "nodev") {
        if let Some(n) = w.nodev(&format!("nodev.{name}"), name, v) {
            layout.nodev.push(n);
        }
    }
    if let Some(v) = root.get("ensure_dirs").filter(|v| !v.is_null()) {
        layout.ensure_dirs = w.ensure_dirs(v);
    }
    if let Some(v) = root.get("lvm").filter(|v| !v.is_null()) {
        layout.lvm_reject = w.lvm_ext(v);
    }
    if w.problems.is_empty() {
        w.cross_check(&layout);
    }
    if w.problems.is_empty() {
        Ok(layout)
    } else {
        Err(LayoutErrors {
            file: file.into(),
            problems: w.problems,
        })
    }
}

/// Parse layout text (YAML, of which JSON is a subset).
pub fn parse_str(file: &str, text: &str) -> Result<Layout, LayoutErrors> {
    from_value(file, &document(file, text)?)
}

/// Layout text (YAML or JSON) as a document, before any of its fields is interpreted: what
/// `validate --output json` shows as `layout`. Errors: the YAML/JSON syntax error with its line.
pub fn document(file: &str, text: &str) -> Result<Value, LayoutErrors> {
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| LayoutErrors {
            file: file.into(),
            problems: vec![format!("line {} column {}: {e}", e.line(), e.column())],
        })?
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!("line {} column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            LayoutErrors {
                file: file.into(),
                problems: vec![format!("{loc}{e}")],
            }
        })?
    };
    Ok(value)
}

/// Read and parse a layout file; errors carry [`Code::BadInput`].
pub fn load(path: &Path) -> anyhow::Result<Layout> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        coded(
            Code::BadInput,
            format!("{}: cannot read layout: {e}", path.display()),
        )
    })?;
    parse_str(&path.display().to_string(), &text).map_err(|e| coded(Code::BadInput, e.to_string()))
}

/// A layout from YAML text, for the unit tests of each type's parser.
#[cfg(test)]
fn one(text: &str) -> Result<Layout, LayoutErrors> {
    parse_str("t.yaml", text)
}
