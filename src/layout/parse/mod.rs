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
use walker::kind;
pub use walker::{Obj, Walker};

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

/// Every `type:` disko knows (its `lib/types/`, and zpool's `topology`): a type among these that
/// is not registered is "not supported", any other word is a plain error.
pub const DISKO_TYPES: &[&str] = &[
    "disk",
    "gpt",
    "table",
    "filesystem",
    "swap",
    "lvm_pv",
    "lvm_vg",
    "nodev",
    "btrfs",
    "luks",
    "mdadm",
    "mdraid",
    "zfs",
    "zpool",
    "zfs_fs",
    "zfs_volume",
    "bcachefs",
    "bcachefs_filesystem",
    "topology",
];

/// disko's top-level keys besides `disk`, `lvm_vg` and `nodev` (each the type of its entries,
/// `bcachefs_filesystems` aside): not supported while no type of that name is registered.
const DISKO_TOP_LEVEL: &[&str] = &["mdadm", "zpool", "bcachefs_filesystems", "bcachefs"];

/// The extensions' top-level keys (`ensure_dirs.rs`, `lvm.rs`).
const EXTENSIONS: &[&str] = &["ensure_dirs", "lvm"];

/// Where a type's nodes sit in a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Entries under the top-level key of the type's name (`disk.<name>`, `lvm_vg.<name>`).
    TopLevel,
    /// The `content` of these slots.
    Content(&'static [Slot]),
}

/// A `content` field: of a disk, of a partition (`gpt`, `table`) or of an LV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Disk,
    Partition,
    Lv,
}

/// A device type as the layout parser sees it: disko's name, its place, its parser. The device
/// types (`disks::types`) implement it, and the parser gets them as a parameter, in their order
/// (`from_value(file, value, types)`), so that `layout` knows no type and imports no `disks`.
pub trait NodeType: Sync {
    /// disko's `type:` (`gpt`, `lvm_vg`).
    fn name(&self) -> &'static str;
    fn place(&self) -> Place;
    /// A content node of this type, its `type` field already read (for [`Place::Content`]).
    /// Problems go to `w` with their paths; None when the node is unusable.
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        let path = o.path.clone();
        w.err(
            &path,
            format!("type {:?} has no content parser", self.name()),
        );
        None
    }
    /// The entry `name` under the type's top-level key, at `path` (for [`Place::TopLevel`]),
    /// added to `layout`.
    fn parse_top(
        &self,
        w: &mut Walker<'_>,
        path: &str,
        name: &str,
        v: &Value,
        layout: &mut Layout,
    ) {
        let _ = (v, layout, name);
        w.err(
            path,
            format!("type {:?} has no top-level parser", self.name()),
        );
    }
}

/// The disko types that are not among `types`, for the "not supported" errors.
fn unregistered(types: &[&dyn NodeType]) -> String {
    let names: Vec<&str> = DISKO_TYPES
        .iter()
        .copied()
        .filter(|n| !types.iter().any(|t| t.name() == *n))
        .collect();
    names.join(", ")
}

impl Walker<'_> {
    /// The `content` of a disk, partition or LV (`slot`): the registered types that may sit there.
    pub(crate) fn content(&mut self, path: &str, v: &Value, slot: Slot) -> Option<Content> {
        if v.is_null() {
            return None;
        }
        let types = self.types;
        let allowed: Vec<&dyn NodeType> = types
            .iter()
            .copied()
            .filter(|t| matches!(t.place(), Place::Content(s) if s.contains(&slot)))
            .collect();
        let names: Vec<&str> = allowed.iter().map(|t| t.name()).collect();
        let mut o = self.obj(path, v)?;
        let ty = self.node_type(&mut o)?;
        let registered = types.iter().any(|t| t.name() == ty);
        if DISKO_TYPES.contains(&ty.as_str()) && !registered {
            self.err(
                path,
                format!(
                    "type \"{ty}\" is not supported (provision supports {}; disko's {} are not)",
                    names.join(", "),
                    unregistered(types)
                ),
            );
            return None;
        }
        let Some(t) = allowed.iter().find(|t| t.name() == ty) else {
            self.err(
                path,
                format!(
                    "type \"{ty}\" is not allowed here (expected one of: {})",
                    names.join(", ")
                ),
            );
            return None;
        };
        let c = t.parse_content(self, &mut o);
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
/// `types`: the device types, in registry order (`disks::types::REGISTRY` through
/// `disks::types::node_types`); a disko type not among them is "not supported".
pub fn from_value(file: &str, v: &Value, types: &[&dyn NodeType]) -> Result<Layout, LayoutErrors> {
    let mut w = Walker {
        problems: Vec::new(),
        disk_name: String::new(),
        types,
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
    let top: Vec<&dyn NodeType> = types
        .iter()
        .copied()
        .filter(|t| t.place() == Place::TopLevel)
        .collect();
    for (k, v) in root {
        let k = k.as_str();
        if top.iter().any(|t| t.name() == k) || EXTENSIONS.contains(&k) {
            continue;
        }
        if DISKO_TOP_LEVEL.contains(&k) {
            if let Value::Object(m) = v {
                for (name, node) in m {
                    let ty = node.get("type").and_then(Value::as_str).unwrap_or(k);
                    w.err(
                        &format!("{k}.{name}"),
                        format!(
                            "type \"{ty}\" is not supported (disko's {} are not)",
                            unregistered(types)
                        ),
                    );
                }
            } else if !v.is_null() {
                w.err(k, format!("\"{k}\" is not supported"));
            }
        } else {
            let mut expected: Vec<&str> = top.iter().map(|t| t.name()).collect();
            expected.extend(EXTENSIONS);
            w.err(
                "",
                format!(
                    "unknown top-level field \"{k}\" (expected {})",
                    expected.join(", ")
                ),
            );
        }
    }
    for t in &top {
        for (name, v) in walk_map(&mut w, root, t.name()) {
            t.parse_top(
                &mut w,
                &format!("{}.{name}", t.name()),
                name,
                v,
                &mut layout,
            );
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
pub fn parse_str(file: &str, text: &str, types: &[&dyn NodeType]) -> Result<Layout, LayoutErrors> {
    from_value(file, &document(file, text)?, types)
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
pub fn load(path: &Path, types: &[&dyn NodeType]) -> anyhow::Result<Layout> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        coded(
            Code::BadInput,
            format!("{}: cannot read layout: {e}", path.display()),
        )
    })?;
    parse_str(&path.display().to_string(), &text, types)
        .map_err(|e| coded(Code::BadInput, e.to_string()))
}

/// A layout from YAML text with the registered types, for the unit tests of each type's parser
/// (tests only: the library's `layout` imports no `disks`).
#[cfg(test)]
fn one(text: &str) -> Result<Layout, LayoutErrors> {
    crate::disks::types::parse_str("t.yaml", text)
}
