//! disko's legacy `table` (table.nix): msdos or gpt, primary partitions at parted positions.

use serde_json::Value;

use super::walker::{kind, Obj, Walker};
use super::Slot;
use crate::layout::size::PartedPos;
use crate::layout::{Table, TablePartition};

impl Walker<'_> {
    pub(super) fn table_pos(&mut self, path: &str, field: &str, v: &str) -> Option<PartedPos> {
        match PartedPos::parse(v) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(path, format!("{field}: {e}"));
                None
            }
        }
    }

    pub(crate) fn table(&mut self, o: &mut Obj<'_>) -> Option<Table> {
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
                    let content = po
                        .map
                        .remove("content")
                        .and_then(|c| self.content(&format!("{p}.content"), c, Slot::Partition));
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
        if format == "gpt" {
            // The name becomes the GPT partition name (PARTLABEL): 36 UTF-16 units, and unique
            // (mount-only finds partitions by it).
            for p in &out {
                if p.label.as_deref().unwrap_or(&p.name).encode_utf16().count() > 36 {
                    self.err(
                        &parts_path,
                        format!(
                            "name {:?}: GPT partition names hold at most 36 characters",
                            p.name
                        ),
                    );
                }
            }
            let mut names: Vec<&str> = out.iter().map(|p| p.name.as_str()).collect();
            names.sort();
            for w in names.windows(2) {
                if w[0] == w[1] {
                    self.err(
                        &parts_path,
                        format!("two partitions have the name {:?}", w[0]),
                    );
                }
            }
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
