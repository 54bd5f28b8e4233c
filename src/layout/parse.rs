//! Layout parser: YAML/JSON → [`Layout`], walking the tree by hand so that every problem is
//! reported with its path in the layout (`disk.main.content.partitions.ESP: …`), and all problems
//! are collected (for `provision validate`), not just the first.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::size::{gpt_size, parse_bytes, GptPos, GptPosKind, LvSize, PartedPos};
use super::*;
use crate::exit::{coded, Code};

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

const HOOKS: &[&str] = &[
    "preCreateHook",
    "postCreateHook",
    "preMountHook",
    "postMountHook",
];

struct Walker {
    problems: Vec<String>,
    /// disko's `name` of the disk being read (default: its key with `/` as `_`, disk.nix): the
    /// middle of its partitions' default GPT labels.
    disk_name: String,
}

/// One object being read: fields are taken one by one, what is left over is unknown.
struct Obj<'a> {
    path: String,
    map: BTreeMap<&'a str, &'a Value>,
}

impl Walker {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        let msg = msg.into();
        if path.is_empty() {
            self.problems.push(msg);
        } else {
            self.problems.push(format!("{path}: {msg}"));
        }
    }

    fn obj<'a>(&mut self, path: &str, v: &'a Value) -> Option<Obj<'a>> {
        match v {
            Value::Object(m) => Some(Obj {
                path: path.to_string(),
                map: m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            }),
            other => {
                self.err(path, format!("expected a mapping, found {}", kind(other)));
                None
            }
        }
    }

    /// Report fields left over in `o` as unknown (hooks get their own message).
    fn finish(&mut self, o: Obj<'_>) {
        for (k, _) in o.map {
            if HOOKS.contains(&k) {
                self.err(
                    &o.path,
                    format!("field \"{k}\": shell hooks are not supported (provision runs no layout-supplied shell code)"),
                );
            } else {
                self.err(&o.path, format!("unknown field \"{k}\""));
            }
        }
    }

    fn string(&mut self, o: &mut Obj<'_>, key: &str) -> Option<String> {
        match o.map.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!("field \"{key}\": expected a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn required_string(&mut self, o: &mut Obj<'_>, key: &str) -> Option<String> {
        let v = self.string(o, key);
        if v.is_none()
            && !self
                .problems
                .iter()
                .any(|p| p.starts_with(&format!("{}: field \"{key}\"", o.path)))
        {
            let p = o.path.clone();
            self.err(&p, format!("missing field \"{key}\""));
        }
        v
    }

    fn boolean(&mut self, o: &mut Obj<'_>, key: &str) -> Option<bool> {
        match o.map.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!(
                        "field \"{key}\": expected true or false, found {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    }

    fn int(&mut self, o: &mut Obj<'_>, key: &str) -> Option<i64> {
        match o.map.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(other) => {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!(
                        "field \"{key}\": expected an integer, found {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    }

    /// A list of strings. disko declares its list fields (`extraArgs`, `mountOptions`, …) as
    /// `listOf str`, which rejects a lone string; so does this (it was once split on whitespace
    /// here, which is neither of disko's argument semantics, see [`ArgList`]). Numbers in the list
    /// are taken as their decimal text (YAML reads an unquoted `4096` as a number).
    fn strings(&mut self, o: &mut Obj<'_>, key: &str) -> Vec<String> {
        match o.map.remove(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        Value::Number(n) => out.push(n.to_string()),
                        other => {
                            let p = o.path.clone();
                            self.err(
                                &p,
                                format!(
                                    "field \"{key}[{i}]\": expected a string, found {}",
                                    kind(other)
                                ),
                            );
                        }
                    }
                }
                out
            }
            Some(Value::String(s)) => {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!(
                        "field \"{key}\": expected a list of strings (disko's type is listOf str), found the string {s:?} — write it as a list, e.g. [{}]",
                        s.split_whitespace()
                            .map(|w| format!("{w:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                Vec::new()
            }
            Some(other) => {
                let p = o.path.clone();
                self.err(
                    &p,
                    format!(
                        "field \"{key}\": expected a list of strings, found {}",
                        kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// An argument list field, read as disko hands it to its tool (see [`ArgList`]): the argv
    /// words that go on the tool's command line.
    fn args(&mut self, o: &mut Obj<'_>, key: &str, how: ArgList) -> Vec<String> {
        let entries = self.strings(o, key);
        match how {
            ArgList::Single => entries,
            ArgList::ShellWords => match shell_words(&entries) {
                Ok(words) => words,
                Err(e) => {
                    let p = o.path.clone();
                    self.err(&p, format!("field \"{key}\": {e}"));
                    Vec::new()
                }
            },
        }
    }

    fn node_type(&mut self, o: &mut Obj<'_>) -> Option<String> {
        self.required_string(o, "type")
    }

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
            "lvm_pv" => {
                let vg = self.required_string(&mut o, "vg");
                vg.map(|vg| Content::LvmPv { vg })
            }
            _ => None,
        };
        self.finish(o);
        c
    }

    fn filesystem(&mut self, o: &mut Obj<'_>) -> Option<Filesystem> {
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

    fn check_mountpoint(&mut self, path: &str, m: &str) {
        if !m.starts_with('/') || m.split('/').any(|c| c == ".." || c == ".") || m.contains('\0') {
            self.err(
                path,
                format!("mountpoint {m:?}: expected an absolute path without . or .."),
            );
        }
    }

    fn swap(&mut self, o: &mut Obj<'_>) -> Option<Swap> {
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

    fn gpt(&mut self, o: &mut Obj<'_>) -> Option<Gpt> {
        let efi_gpt_partition_first = self.boolean(o, "efiGptPartitionFirst").unwrap_or(true);
        let disk_name = self.disk_name.clone();
        let parts_path = format!("{}.partitions", o.path);
        let parts = o.map.remove("partitions");
        let mut out = Vec::new();
        match parts {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (name, v) in m {
                    let p = format!("{parts_path}.{name}");
                    if let Some(part) = self.gpt_partition(&p, &disk_name, name, v) {
                        out.push(part);
                    }
                }
            }
            Some(other) => {
                self.err(
                    &parts_path,
                    format!("expected a mapping of partitions, found {}", kind(other)),
                );
            }
        }
        out.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.name.cmp(&b.name)));
        if out.len() > 128 {
            self.err(&parts_path, "more than 128 partitions");
        }
        let mut labels: Vec<&str> = out.iter().map(|p| p.label.as_str()).collect();
        labels.sort();
        for w in labels.windows(2) {
            if w[0] == w[1] {
                self.err(
                    &parts_path,
                    format!("two partitions have the label {:?}", w[0]),
                );
            }
        }
        // Only the last partition may take "the rest".
        let n = out.len();
        for (i, part) in out.iter().enumerate() {
            if i + 1 < n && part.end.kind == GptPosKind::Default {
                self.err(
                    &format!("{parts_path}.{}", part.name),
                    format!("takes the rest of the disk, so it must be the last partition, but priority {} puts {} after it — give it the highest priority (disko's default puts only size: 100% last, at 9001)", part.priority, out[i + 1].name),
                );
            }
        }
        let hybrid = out.iter().filter(|p| p.hybrid.is_some()).count();
        if hybrid > 3 {
            self.err(
                &parts_path,
                format!("{hybrid} partitions have \"hybrid\": a hybrid MBR holds at most 3 besides its protective entry (sgdisk -h)"),
            );
        }
        Some(Gpt {
            partitions: out,
            efi_gpt_partition_first,
        })
    }

    fn gpt_partition(
        &mut self,
        path: &str,
        disk: &str,
        name: &str,
        v: &Value,
    ) -> Option<GptPartition> {
        let mut o = self.obj(path, v)?;
        let type_code = match o.map.remove("type") {
            Some(Value::Number(n)) if !n.is_i64() => {
                self.err(path, format!("type {n}: YAML read this sgdisk type code as a number — quote it, e.g. type: \"8E00\""));
                return None;
            }
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(t)) => Some(t.clone()),
            None | Some(Value::Null) => None,
            Some(other) => {
                self.err(
                    path,
                    format!("type: expected an sgdisk type code, found {}", kind(other)),
                );
                return None;
            }
        };
        let size = self.string(&mut o, "size");
        let start_field = self.string(&mut o, "start");
        let end = self.string(&mut o, "end");
        let priority = self.int(&mut o, "priority");
        let label = self.string(&mut o, "label");
        let gpt_name = self.string(&mut o, "name");
        let uuid = self.string(&mut o, "uuid");
        let attributes = match o.map.remove("attributes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| match x.as_u64() {
                    Some(b) if b < 64 => Some(b as u32),
                    _ => {
                        self.err(
                            path,
                            format!("attributes: {x} is not a GPT attribute bit (0–63)"),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.err(
                    path,
                    format!(
                        "attributes: expected a list of bit numbers, found {}",
                        kind(other)
                    ),
                );
                Vec::new()
            }
        };
        let hybrid = match o.map.remove("hybrid") {
            None | Some(Value::Null) => None,
            Some(h) => self.hybrid(&format!("{path}.hybrid"), h),
        };
        // disko's own bookkeeping fields that carry no layout meaning.
        o.map.remove("device");
        o.map.remove("alignment");
        let content = o.map.remove("content").and_then(|c| {
            self.content(
                &format!("{path}.content"),
                c,
                &["filesystem", "swap", "lvm_pv"],
            )
        });
        self.finish(o);
        // disko gpt.nix `type` default: 8200 (Linux swap) for a swap partition, else 8300.
        let type_code = type_code.unwrap_or_else(|| {
            match &content {
                Some(Content::Swap(_)) => "8200",
                _ => "8300",
            }
            .into()
        });

        let type_ok = |t: &str| {
            (t.len() == 4 && t.chars().all(|c| c.is_ascii_hexdigit()))
                || (t.len() == 36 && t.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        };
        if !type_ok(&type_code) {
            self.err(path, format!("type {type_code:?}: expected an sgdisk type code like 8300, EF00, 8E00 or a GUID"));
        }
        if let Some(u) = &uuid {
            if u.len() != 36 || !u.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                self.err(path, format!("uuid {u:?}: expected a GUID"));
            }
        }
        let label =
            label.unwrap_or_else(|| default_label(disk, gpt_name.as_deref().unwrap_or(name)));
        if label.encode_utf16().count() > 36 {
            self.err(
                path,
                format!("label {label:?}: GPT partition names hold at most 36 characters"),
            );
        }
        let end = match (size.as_deref(), end.as_deref()) {
            (Some(_), Some(_)) => {
                self.err(path, "give either size or end, not both");
                return None;
            }
            (Some(s), None) => match gpt_size(s) {
                Ok(p) => p,
                Err(e) => {
                    self.err(path, format!("size: {e}"));
                    return None;
                }
            },
            (None, Some("100%")) | (None, None) => GptPos::parse("-0").ok()?,
            (None, Some(e)) => self.sgdisk_pos(path, "end", e)?,
        };
        let start = self.sgdisk_pos(path, "start", start_field.as_deref().unwrap_or("0"))?;
        // disko gpt.nix `priority` default: only a literal `size: 100%` goes last.
        let priority = priority.unwrap_or(if size.as_deref() == Some("100%") {
            9001
        } else if type_code.eq_ignore_ascii_case("EF02") {
            100
        } else {
            1000
        });
        Some(GptPartition {
            name: name.to_string(),
            label,
            type_code: type_code.to_ascii_uppercase(),
            priority,
            start,
            end,
            attributes,
            uuid,
            hybrid,
            content: content.map(Box::new),
        })
    }

    /// A gpt partition's `hybrid` (disko gpt.nix): `mbrPartitionType` (an MBR type byte in hex,
    /// `0x0c` or `0c`) and `mbrBootableFlag`.
    fn hybrid(&mut self, path: &str, v: &Value) -> Option<Hybrid> {
        let mut o = self.obj(path, v)?;
        let ty = self.string(&mut o, "mbrPartitionType");
        let bootable = self.boolean(&mut o, "mbrBootableFlag").unwrap_or(false);
        self.finish(o);
        let mbr_type = match ty.as_deref() {
            None => None,
            Some(t) => {
                let hex = t
                    .strip_prefix("0x")
                    .or_else(|| t.strip_prefix("0X"))
                    .unwrap_or(t);
                match u8::from_str_radix(hex, 16) {
                    Ok(b) if b != 0 && b != 0xEE && !hex.is_empty() && hex.len() <= 2 => Some(b),
                    _ => {
                        self.err(path, format!("mbrPartitionType {t:?}: expected an MBR partition type byte in hex like 0x0c or 83 (not 00, the empty entry, nor ee, the protective one)"));
                        return None;
                    }
                }
            }
        };
        Some(Hybrid { mbr_type, bootable })
    }

    fn sgdisk_pos(&mut self, path: &str, field: &str, v: &str) -> Option<GptPos> {
        match GptPos::parse(v) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(path, format!("{field}: {e}"));
                None
            }
        }
    }

    fn table_pos(&mut self, path: &str, field: &str, v: &str) -> Option<PartedPos> {
        match PartedPos::parse(v) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(path, format!("{field}: {e}"));
                None
            }
        }
    }

    fn table(&mut self, o: &mut Obj<'_>) -> Option<Table> {
        // disko's default (table.nix `format`): a table without a format is gpt.
        let format = self.string(o, "format").unwrap_or_else(|| "gpt".into());
        if format != "msdos" && format != "gpt" {
            let p = o.path.clone();
            self.err(&p, format!("format {format:?}: expected msdos or gpt"));
        }
        let parts_path = format!("{}.partitions", o.path);
        let mut out = Vec::new();
        match o.map.remove("partitions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    let p = format!("{parts_path}[{i}]");
                    let Some(mut po) = self.obj(&p, v) else {
                        continue;
                    };
                    let name = self
                        .string(&mut po, "name")
                        .unwrap_or_else(|| format!("part{}", i + 1));
                    let part_type = self
                        .string(&mut po, "part-type")
                        .unwrap_or_else(|| "primary".into());
                    if !["primary", "extended", "logical"].contains(&part_type.as_str()) {
                        self.err(
                            &p,
                            format!(
                                "part-type {part_type:?}: expected primary, extended or logical"
                            ),
                        );
                    }
                    let bootable = self.boolean(&mut po, "bootable").unwrap_or(false);
                    po.map.remove("fs-type");
                    po.map.remove("flags");
                    let start = self.string(&mut po, "start").unwrap_or_else(|| "0%".into());
                    let end = self.string(&mut po, "end").unwrap_or_else(|| "100%".into());
                    let content = po.map.remove("content").and_then(|c| {
                        self.content(
                            &format!("{p}.content"),
                            c,
                            &["filesystem", "swap", "lvm_pv"],
                        )
                    });
                    self.finish(po);
                    let (Some(start), Some(end)) = (
                        self.table_pos(&p, "start", &start),
                        self.table_pos(&p, "end", &end),
                    ) else {
                        continue;
                    };
                    out.push(TablePartition {
                        label: (format == "gpt").then(|| table_gpt_name(&name)),
                        name,
                        part_type,
                        bootable,
                        start,
                        end,
                        content: content.map(Box::new),
                    });
                }
            }
            Some(other) => self.err(
                &parts_path,
                format!("expected a list of partitions, found {}", kind(other)),
            ),
        }
        if out.iter().any(|p| p.part_type != "primary") {
            self.err(
                &parts_path,
                "extended and logical partitions are not supported; use primary partitions or gpt",
            );
        }
        if format == "msdos" && out.len() > 4 {
            self.err(
                &parts_path,
                "an msdos table holds at most 4 primary partitions",
            );
        }
        Some(Table {
            format,
            partitions: out,
        })
    }

    fn disk(&mut self, path: &str, name: &str, v: &Value) -> Option<Disk> {
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
        let content = o.map.remove("content").and_then(|c| {
            self.content(
                &format!("{path}.content"),
                c,
                &["gpt", "table", "filesystem", "swap", "lvm_pv"],
            )
        });
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

    fn selector(&mut self, path: &str, v: &Value) -> Option<Selector> {
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

    fn lvm_vg(&mut self, path: &str, name: &str, v: &Value) -> Option<VolumeGroup> {
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

    fn lv(&mut self, path: &str, key: &str, v: &Value) -> Option<LogicalVolume> {
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
            .and_then(|c| self.content(&format!("{path}.content"), c, &["filesystem", "swap"]));
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

    fn nodev(&mut self, path: &str, name: &str, v: &Value) -> Option<Nodev> {
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

    fn ensure_dirs(&mut self, v: &Value) -> Vec<EnsureDir> {
        let Value::Array(a) = v else {
            self.err("ensure_dirs", format!("expected a list, found {}", kind(v)));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, d) in a.iter().enumerate() {
            let p = format!("ensure_dirs[{i}]");
            let Some(mut o) = self.obj(&p, d) else {
                continue;
            };
            let path = self.required_string(&mut o, "path");
            let owner = self
                .string(&mut o, "owner")
                .unwrap_or_else(|| "root".into());
            let group = self
                .string(&mut o, "group")
                .unwrap_or_else(|| "root".into());
            let mode = match o.map.remove("mode") {
                None | Some(Value::Null) => Some(0o755),
                Some(Value::String(m)) => {
                    match u32::from_str_radix(m.trim_start_matches("0o"), 8) {
                        Ok(v) if v <= 0o7777 => Some(v),
                        _ => {
                            self.err(
                                &p,
                                format!("mode {m:?}: expected an octal mode like \"0750\""),
                            );
                            None
                        }
                    }
                }
                Some(other) => {
                    self.err(&p, format!("mode: write the mode as a quoted octal string like \"0750\" (found {})", kind(other)));
                    None
                }
            };
            self.finish(o);
            if let Some(pa) = &path {
                self.check_mountpoint(&p, pa);
            }
            if let (Some(path), Some(mode)) = (path, mode) {
                out.push(EnsureDir {
                    path,
                    owner,
                    group,
                    mode,
                });
            }
        }
        out
    }

    fn lvm_ext(&mut self, v: &Value) -> Vec<String> {
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

    /// Checks across the whole layout.
    fn cross_check(&mut self, l: &Layout) {
        let mut pv_vgs: Vec<(String, String)> = Vec::new(); // (vg, where)
        let mut mounts: Vec<(String, String)> = Vec::new();
        let visit = |c: &Content,
                     at: String,
                     pv: &mut Vec<(String, String)>,
                     m: &mut Vec<(String, String)>| match c {
            Content::LvmPv { vg } => pv.push((vg.clone(), at)),
            Content::Filesystem(f) => {
                if let Some(mp) = &f.mountpoint {
                    m.push((mp.clone(), at));
                }
            }
            _ => {}
        };
        for d in &l.disks {
            let base = format!("disk.{}.content", d.name);
            match &d.content {
                Some(Content::Gpt(g)) => {
                    for p in &g.partitions {
                        if let Some(c) = &p.content {
                            visit(
                                c,
                                format!("{base}.partitions.{}.content", p.name),
                                &mut pv_vgs,
                                &mut mounts,
                            );
                        }
                    }
                }
                Some(Content::Table(t)) => {
                    for (i, p) in t.partitions.iter().enumerate() {
                        if let Some(c) = &p.content {
                            visit(
                                c,
                                format!("{base}.partitions[{i}].content"),
                                &mut pv_vgs,
                                &mut mounts,
                            );
                        }
                    }
                }
                Some(c) => visit(c, base, &mut pv_vgs, &mut mounts),
                None => {}
            }
        }
        for vg in &l.vgs {
            for lv in &vg.lvs {
                if let Some(c) = &lv.content {
                    visit(
                        c,
                        format!("lvm_vg.{}.lvs.{}.content", vg.name, lv.name),
                        &mut pv_vgs,
                        &mut mounts,
                    );
                }
            }
        }
        for n in &l.nodev {
            mounts.push((n.mountpoint.clone(), format!("nodev.{}", n.name)));
        }
        for (vg, at) in &pv_vgs {
            if l.vg(vg).is_none() {
                self.err(
                    at,
                    format!("lvm_pv names VG {vg:?}, which is not defined under lvm_vg"),
                );
            }
        }
        for vg in &l.vgs {
            if !pv_vgs.iter().any(|(v, _)| v == &vg.name) {
                self.err(
                    &format!("lvm_vg.{}", vg.name),
                    "no lvm_pv puts this VG on any disk",
                );
            }
        }
        mounts.sort();
        for w in mounts.windows(2) {
            if w[0].0 == w[1].0 {
                self.err(
                    &w[1].1,
                    format!("mountpoint {:?} is also used by {}", w[0].0, w[0].1),
                );
            }
        }
        let mut devs: Vec<(&str, &str)> = l
            .disks
            .iter()
            .filter_map(|d| match &d.reference {
                DiskRef::Path { path } => Some((path.as_str(), d.name.as_str())),
                _ => None,
            })
            .collect();
        devs.sort();
        for w in devs.windows(2) {
            if w[0].0 == w[1].0 {
                self.err(
                    &format!("disk.{}", w[1].1),
                    format!("device {:?} is also disk.{}", w[0].0, w[0].1),
                );
            }
        }
    }
}

/// How disko hands a layout's argument list to its tool. Both kinds are `listOf str` in disko;
/// what differs is how its generated shell script puts them on the command line (disko
/// lib/types/*.nix, `_create`):
///
/// | field | disko writes | semantics | provision |
/// |---|---|---|---|
/// | `filesystem.extraArgs` (mkfs) | `lib.escapeShellArgs` | [`ArgList::Single`] | yes |
/// | `mdadm.extraArgs` (mdadm --create) | `map lib.escapeShellArg` | [`ArgList::Single`] | type rejected |
/// | `zfs_volume.extraArgs` (zfs create) | `map lib.escapeShellArg` | [`ArgList::Single`] | type rejected |
/// | `swap.extraArgs` (mkswap) | `toString` | [`ArgList::ShellWords`] | yes |
/// | `lvm_vg.lvs.<lv>.extraArgs` (lvcreate) | `toString` | [`ArgList::ShellWords`] | yes |
/// | `btrfs.extraArgs`, subvolumes' `extraArgs` | `toString` | [`ArgList::ShellWords`] | type rejected |
/// | `luks.extraFormatArgs`, `luks.extraOpenArgs` | `toString` | [`ArgList::ShellWords`] | type rejected |
///
/// So `extraArgs: ["-L", "my data"]` on a filesystem gives mkfs the two arguments `-L` and
/// `my data`, while on an LV `extraArgs: ["--stripes 2"]` gives lvcreate `--stripes` and `2`
/// (disko's own examples rely on both: `"-d raid1"`, `"--pbkdf argon2id"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgList {
    /// Each list entry is one argument, exactly as written.
    Single,
    /// The entries are joined with single spaces and split into words as a POSIX shell does
    /// (quotes and backslashes, via the `shlex` crate). provision runs no shell, so what a shell
    /// would expand or treat as syntax — `$`, `` ` ``, `;`, `&`, `|`, `<`, `>`, `(`, `)`, globs
    /// `*` `?` `[` `{`, a leading `~` or `#`, a newline — is an error unless quoted.
    ShellWords,
}

/// Split argument-list entries as disko's shell would ([`ArgList::ShellWords`]): joined with
/// spaces, then shell words. Errors say what is wrong in words (unterminated quote, a character
/// a shell would expand).
pub fn shell_words(entries: &[String]) -> Result<Vec<String>, String> {
    let joined = entries.join(" ");
    if let Some(c) = shell_special(&joined) {
        return Err(format!(
            "{joined:?}: {c:?} would be expanded or interpreted by disko's shell, and provision runs no shell — quote it ('…') to pass it literally"
        ));
    }
    shlex::split(&joined).ok_or_else(|| {
        format!("{joined:?}: unterminated quote or trailing backslash (these entries are split as shell words)")
    })
}

/// The first character of `s` that a POSIX shell would not take literally where it stands
/// (outside quotes: expansions, control operators, globs, a word-leading `~` or `#`; inside
/// double quotes: `$` and `` ` ``). Quote state follows sh(1): `'…'` is literal, `\` escapes
/// the next character outside single quotes.
fn shell_special(s: &str) -> Option<char> {
    let mut chars = s.chars().peekable();
    let (mut single, mut double) = (false, false);
    let mut word_start = true;
    while let Some(c) = chars.next() {
        if single {
            single = c != '\'';
            continue;
        }
        if c == '\\' {
            chars.next();
            word_start = false;
            continue;
        }
        if double {
            match c {
                '"' => double = false,
                '$' | '`' => return Some(c),
                _ => {}
            }
            continue;
        }
        match c {
            '\'' => single = true,
            '"' => double = true,
            ' ' | '\t' => {
                word_start = true;
                continue;
            }
            '$' | '`' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '{' | '\n' => {
                return Some(c)
            }
            '~' | '#' if word_start => return Some(c),
            _ => {}
        }
        word_start = false;
    }
    None
}

/// disko's default GPT partition name (gpt.nix `label`): `disk-<disk name>-<partition name>`,
/// or, when that is longer than 36 bytes (Nix `stringLength` counts bytes), the first 36 hex
/// digits of its sha256.
pub fn default_label(disk: &str, part: &str) -> String {
    let base = format!("disk-{disk}-{part}");
    if base.len() <= 36 {
        return base;
    }
    use sha2::{Digest, Sha256};
    let mut h = hex::encode(Sha256::digest(base.as_bytes()));
    h.truncate(36);
    h
}

/// The GPT partition name disko's `table` type gives a partition: table.nix runs
/// `parted mkpart "${hexEscapeUdevSymlink name}" …` and parted keeps the string as it gets it,
/// so every byte but `0-9 A-Z a-z # + , - . / : = @ _` (lib/default.nix `allowedChars`, where
/// `+-.` is a range) becomes `\x` and its hex digits as Nix `lib.toHexString` writes them
/// (upper case, no leading zero): `name with spaces` → `name\x20with\x20spaces`.
pub fn table_gpt_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"#+,-./:=@_".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:X}"));
        }
    }
    out
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

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
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
    Ok(if text.trim_start().starts_with('{') {
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
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Layout, LayoutErrors> {
        parse_str("t.yaml", text)
    }

    /// A disk `d` (/dev/sda) with one gpt partition `p` holding `content`, plus an LV `v/l`
    /// with `lv` (its own fields) — enough to reach every argument field provision reads.
    fn with(content: &str, lv: &str) -> Result<Layout, LayoutErrors> {
        one(&format!(
            "disk:\n  d:\n    type: disk\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        p:\n          size: 10M\n          content: {content}\n        pv:\n          size: 100%\n          content: {{ type: lvm_pv, vg: v }}\nlvm_vg:\n  v:\n    type: lvm_vg\n    lvs:\n      l: {lv}\n"
        ))
    }

    fn fs_args(l: &Layout) -> Vec<String> {
        let Some(Content::Gpt(g)) = &l.disks[0].content else {
            panic!()
        };
        match g.partitions[0].content.as_deref() {
            Some(Content::Filesystem(f)) => f.extra_args.clone(),
            Some(Content::Swap(s)) => s.extra_args.clone(),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn filesystem_extra_args_are_one_argument_per_entry() {
        let l = with(
            r#"{ type: filesystem, format: ext4, extraArgs: ["-L", "my data", "-E", "a b"] }"#,
            "{ size: 1G }",
        )
        .unwrap();
        assert_eq!(fs_args(&l), ["-L", "my data", "-E", "a b"]);
        // No shell between the layout and mkfs: quotes and $ are the argument's own characters.
        let l = with(
            r#"{ type: filesystem, format: ext4, extraArgs: ["-L", "it's $HOME"] }"#,
            "{ size: 1G }",
        )
        .unwrap();
        assert_eq!(fs_args(&l), ["-L", "it's $HOME"]);
    }

    #[test]
    fn swap_and_lv_extra_args_are_joined_and_split_as_shell_words() {
        let l = with(
            r#"{ type: swap, extraArgs: ["-L 'my swap'", "--pagesize", "4096"] }"#,
            r#"{ size: 1G, extraArgs: ["--stripes 2", "--addtag \"a b\""] }"#,
        )
        .unwrap();
        assert_eq!(fs_args(&l), ["-L", "my swap", "--pagesize", "4096"]);
        assert_eq!(
            l.vgs[0].lvs[0].extra_args,
            ["--stripes", "2", "--addtag", "a b"]
        );
        // Joined first, as disko's `toString` does: a quote may span entries.
        let l = with(
            r#"{ type: swap, extraArgs: ["-L 'my", "swap'"] }"#,
            "{ size: 1G }",
        )
        .unwrap();
        assert_eq!(fs_args(&l), ["-L", "my swap"]);
    }

    #[test]
    fn unterminated_quotes_and_shell_syntax_are_layout_errors_naming_the_field() {
        let cases = [
            (
                r#"{ type: swap, extraArgs: ["-L 'my swap"] }"#,
                "{ size: 1G }",
                "disk.d.content.partitions.p.content: field \"extraArgs\"",
                "unterminated quote",
            ),
            (
                r#"{ type: swap }"#,
                r#"{ size: 1G, extraArgs: ["--addtag \"x"] }"#,
                "lvm_vg.v.lvs.l: field \"extraArgs\"",
                "unterminated quote",
            ),
            (
                r#"{ type: swap }"#,
                r#"{ size: 1G, extraArgs: ["--addtag", "x\\"] }"#,
                "lvm_vg.v.lvs.l: field \"extraArgs\"",
                "trailing backslash",
            ),
            (
                r#"{ type: swap, extraArgs: ["-L $HOSTNAME"] }"#,
                "{ size: 1G }",
                "field \"extraArgs\"",
                "'$' would be expanded",
            ),
            (
                r#"{ type: swap, extraArgs: ["-L \"$(hostname)\""] }"#,
                "{ size: 1G }",
                "field \"extraArgs\"",
                "'$' would be expanded",
            ),
            (
                r#"{ type: swap }"#,
                r#"{ size: 1G, extraArgs: ["--addtag a;b"] }"#,
                "field \"extraArgs\"",
                "';' would be",
            ),
            (
                r#"{ type: swap }"#,
                r#"{ size: 1G, extraArgs: ["--addtag", "~x"] }"#,
                "field \"extraArgs\"",
                "'~' would be",
            ),
            (
                r#"{ type: swap }"#,
                r#"{ size: 1G, extraArgs: ["--addtag", "x*"] }"#,
                "field \"extraArgs\"",
                "'*' would be",
            ),
        ];
        for (fs, lv, at, what) in cases {
            let e = with(fs, lv).unwrap_err().to_string();
            assert!(e.contains(at) && e.contains(what), "{fs} {lv}:\n{e}");
        }
        // Quoted, the same characters pass literally.
        let l = with(
            r#"{ type: swap, extraArgs: ["-L '$x;*~'"] }"#,
            r#"{ size: 1G, extraArgs: ["--addtag", "a\\;b", "--addtag", "c~d#e"] }"#,
        )
        .unwrap();
        assert_eq!(fs_args(&l), ["-L", "$x;*~"]);
        assert_eq!(
            l.vgs[0].lvs[0].extra_args,
            ["--addtag", "a;b", "--addtag", "c~d#e"]
        );
    }

    #[test]
    fn a_lone_string_where_disko_declares_a_list_is_an_error() {
        let e = with(
            r#"{ type: filesystem, format: ext4, extraArgs: "-L data" }"#,
            "{ size: 1G }",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("disk.d.content.partitions.p.content: field \"extraArgs\": expected a list of strings (disko's type is listOf str)")
                && e.contains(r#"["-L", "data"]"#),
            "{e}"
        );
        let e = with(
            r#"{ type: filesystem, format: ext4, mountOptions: "noatime" }"#,
            "{ size: 1G }",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("field \"mountOptions\": expected a list"), "{e}");
    }

    #[test]
    fn shell_words_splits_like_sh() {
        let w = |x: &[&str]| shell_words(&x.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            w(&["-d raid1", "/dev/mapper/p1"]).unwrap(),
            ["-d", "raid1", "/dev/mapper/p1"]
        );
        assert_eq!(w(&["--pbkdf argon2id"]).unwrap(), ["--pbkdf", "argon2id"]);
        assert_eq!(w(&[r#"a\ b "c d" 'e f'"#]).unwrap(), ["a b", "c d", "e f"]);
        assert_eq!(w(&["x=\"\\$y\""]).unwrap(), ["x=$y"]);
        assert_eq!(w(&[]).unwrap(), Vec::<String>::new());
        assert!(w(&["\"a"]).is_err());
        assert!(w(&["a`b`"]).is_err());
        assert!(w(&["\"a`b`\""]).is_err());
        assert!(w(&["a\nb"]).is_err());
        assert!(w(&["#c"]).is_err());
        assert_eq!(w(&["a#c"]).unwrap(), ["a#c"]);
    }

    fn gpt(l: &Layout, disk: usize) -> &Gpt {
        match &l.disks[disk].content {
            Some(Content::Gpt(g)) => g,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn default_labels_are_diskos_sha256_form_past_36_bytes() {
        assert_eq!(default_label("main", "ESP"), "disk-main-ESP");
        // 36 bytes exactly: kept.
        let b36 = "disk-data-a-partition-name-thats-lo";
        assert_eq!(b36.len(), 35);
        assert_eq!(
            default_label("data", "a-partition-name-thats-lon"),
            format!("{b36}n")
        );
        // 37 bytes: the first 36 hex digits of sha256("disk-data-a-partition-name-thats-long")
        // (as `printf %s … | sha256sum | cut -c1-36`).
        assert_eq!(
            default_label("data", "a-partition-name-thats-long"),
            "a24ec733a09cb6f405da9c6c5a4a69d51443"
        );
        // disko's own example: the disk's `name` field, not its key, is hashed.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/disko-examples/long-device-name.json"
        ))
        .unwrap();
        let l = parse_str("long-device-name.json", &text).unwrap();
        let labels: Vec<&str> = gpt(&l, 0)
            .partitions
            .iter()
            .map(|p| p.label.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "36601cdc461d3589a280204a4b674b3cad5d",
                "bf3cfbd77a309f330b322e19e5a8377852b1"
            ]
        );
        // A key with '/' becomes '_' in disko's default disk name.
        let l = one("disk:\n  a/b:\n    type: disk\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        p: { size: 100% }\n").unwrap();
        assert_eq!(gpt(&l, 0).partitions[0].label, "disk-a_b-p");
    }

    #[test]
    fn default_priorities_are_diskos() {
        let l = one("disk:\n  d:\n    type: disk\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        a_rest: { size: 100% }\n        b_esp: { size: 512M, type: EF00 }\n        c_bios: { size: 1M, type: EF02 }\n        d_data: { size: 1G }\n").unwrap();
        let order: Vec<(&str, i64)> = gpt(&l, 0)
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.priority))
            .collect();
        // EF00 is no longer pulled first (it was 500): 1000 like any other, then by name.
        assert_eq!(
            order,
            [
                ("c_bios", 100),
                ("b_esp", 1000),
                ("d_data", 1000),
                ("a_rest", 9001)
            ]
        );
        // Only `size: 100%` goes last by default; a partition that takes the rest some other
        // way sits at 1000 as in disko, and is refused when something would follow it.
        let e = one("disk:\n  d:\n    type: disk\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        a: { end: \"-0\" }\n        b: { size: 1G }\n").unwrap_err().to_string();
        assert!(
            e.contains("disk.d.content.partitions.a: takes the rest of the disk")
                && e.contains("puts b after it"),
            "{e}"
        );
    }

    #[test]
    fn hybrid_mbr_fields_are_read_and_checked() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/disko-examples/hybrid-mbr.json"
        ))
        .unwrap();
        let l = parse_str("hybrid-mbr.json", &text).unwrap();
        let g = gpt(&l, 0);
        assert!(!g.efi_gpt_partition_first);
        let parts: Vec<(&str, Option<Hybrid>)> = g
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.hybrid))
            .collect();
        assert_eq!(
            parts,
            [
                (
                    "TOW-BOOT-FI",
                    Some(Hybrid {
                        mbr_type: Some(0x0c),
                        bootable: false
                    })
                ),
                ("ESP", None),
                ("root", None)
            ]
        );
        let bad = |h: &str| {
            one(&format!("disk:\n  d:\n    type: disk\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        a: {{ size: 1M, hybrid: {h} }}\n        b: {{ size: 1M, hybrid: {{}} }}\n        c: {{ size: 1M, hybrid: {{}} }}\n"))
                .unwrap_err()
                .to_string()
        };
        for t in ["\"0x00\"", "ee", "\"0x100\"", "zz", "\"\""] {
            let e = bad(&format!("{{ mbrPartitionType: {t} }}"));
            assert!(
                e.contains("disk.d.content.partitions.a.hybrid: mbrPartitionType"),
                "{t}: {e}"
            );
        }
        let e = bad("{ mbrBootable: true }");
        assert!(e.contains("unknown field \"mbrBootable\""), "{e}");
        let e = one("disk:\n  d:\n    type: disk\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        a: { size: 1M, hybrid: {} }\n        b: { size: 1M, hybrid: {} }\n        c: { size: 1M, hybrid: {} }\n        e: { size: 1M, hybrid: {} }\n").unwrap_err().to_string();
        assert!(e.contains("4 partitions have \"hybrid\""), "{e}");
    }

    /// disko's `table` (table.nix): gpt unless `format` says msdos, and on gpt the partition
    /// name parted gets from disko — hex-escaped by `hexEscapeUdevSymlink` — is the GPT name.
    #[test]
    fn table_defaults_to_gpt_with_diskos_escaped_names() {
        let t = |extra: &str| {
            let l = one(&format!("disk:\n  d:\n    device: /dev/sda\n    content:\n      type: table\n{extra}      partitions:\n        - {{ name: \"name with spaces\", start: 1MiB, end: 100MiB }}\n        - {{ name: \"a#+,-./:=@_Z9\", start: 100MiB, end: 100% }}\n")).unwrap();
            match l.disks[0].content.clone() {
                Some(Content::Table(t)) => t,
                other => panic!("{other:?}"),
            }
        };
        let gpt = t("");
        assert_eq!(gpt.format, "gpt");
        let labels: Vec<_> = gpt.partitions.iter().map(|p| p.label.clone()).collect();
        assert_eq!(
            labels,
            [
                Some("name\\x20with\\x20spaces".to_string()),
                Some("a#+,-./:=@_Z9".to_string())
            ]
        );
        let dos = t("      format: msdos\n");
        assert_eq!(dos.format, "msdos");
        assert!(dos.partitions.iter().all(|p| p.label.is_none()));
        assert_eq!(table_gpt_name("tab\there"), "tab\\x9here");
        assert_eq!(table_gpt_name("a^b\\c"), "a\\x5Eb\\x5Cc");
    }

    /// disko gpt.nix: a partition without `type` is 8200 (Linux swap) when it holds swap, else
    /// 8300; a given type stays.
    #[test]
    fn gpt_type_defaults_like_disko() {
        let l = one("disk:\n  d:\n    device: /dev/sda\n    content:\n      type: gpt\n      partitions:\n        a: { size: 1G, content: { type: swap } }\n        b: { size: 1G, type: \"8300\", content: { type: swap } }\n        c: { size: 1G, content: { type: filesystem, format: ext4 } }\n        e: { size: 1G }\n").unwrap();
        let Some(Content::Gpt(g)) = &l.disks[0].content else {
            panic!("{l:?}")
        };
        let types: Vec<(&str, &str)> = g
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.type_code.as_str()))
            .collect();
        assert_eq!(
            types,
            [("a", "8200"), ("b", "8300"), ("c", "8300"), ("e", "8300")]
        );
    }
}
