//! disko's `gpt` (gpt.nix): partitions by priority then name, disko's default labels and
//! priorities, sgdisk positions, attributes, GUIDs and the hybrid MBR.

use crate::layout::Content;
use serde_json::Value;

use super::walker::{kind, Obj, Walker};
use super::Slot;
use crate::layout::size::{gpt_size, GptPos, GptPosKind};
use crate::layout::{Gpt, GptPartition, Hybrid};

impl Walker<'_> {
    pub(crate) fn gpt(&mut self, o: &mut Obj<'_>) -> Option<Gpt> {
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

    pub(super) fn gpt_partition(
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
        let content = o
            .map
            .remove("content")
            .and_then(|c| self.content(&format!("{path}.content"), c, Slot::Partition));
        self.finish(o);
        // disko gpt.nix `type` default: 8200 (Linux swap) for a swap partition, else 8300.
        let type_code = type_code.unwrap_or_else(|| {
            match &content {
                Some(Content::Swap(_)) => "8200",
                _ => "8300",
            }
            .into()
        });

        let type_ok =
            |t: &str| (t.len() == 4 && t.chars().all(|c| c.is_ascii_hexdigit())) || is_guid(t);
        if !type_ok(&type_code) {
            self.err(path, format!("type {type_code:?}: expected an sgdisk type code like 8300, EF00, 8E00 or a GUID (8-4-4-4-12 hex digits)"));
        } else if type_code.chars().all(|c| c == '0' || c == '-') {
            // sgdisk refuses the empty-entry type (after the wipe, were it passed on).
            self.err(path, format!("type {type_code:?}: that is the type of an unused GPT entry; give a partition type such as 8300"));
        }
        if let Some(u) = &uuid {
            if !is_guid(u) {
                self.err(
                    path,
                    format!("uuid {u:?}: expected a GUID (8-4-4-4-12 hex digits)"),
                );
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
    pub(super) fn hybrid(&mut self, path: &str, v: &Value) -> Option<Hybrid> {
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

    pub(super) fn sgdisk_pos(&mut self, path: &str, field: &str, v: &str) -> Option<GptPos> {
        match GptPos::parse(v) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(path, format!("{field}: {e}"));
                None
            }
        }
    }
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

/// A GUID in its text form: 8-4-4-4-12 hex digits (UEFI 2.10 Appendix A).
pub(crate) fn is_guid(t: &str) -> bool {
    let groups: Vec<&str> = t.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::super::one;
    use super::*;
    use crate::disks::types::parse_str;
    use crate::layout::{Content, Layout};

    fn gpt(l: &Layout, disk: usize) -> &Gpt {
        match &l.disks[disk].content {
            Some(Content::Gpt(g)) => g,
            c => panic!("{c:?}"),
        }
    }

    /// Found by a review: these passed validate and the dry run, then sgdisk failed after the
    /// wipe (type 0000) or wrote something else (a malformed GUID).
    #[test]
    fn empty_entry_types_and_malformed_guids_are_refused() {
        let yaml = |field: &str| {
            format!("disk:\n  d:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        a: {{size: 10M, {field}}}\n")
        };
        for (field, want) in [
            ("type: \"0000\"", "unused GPT entry"),
            (
                "type: \"00000000-0000-0000-0000-000000000000\"",
                "unused GPT entry",
            ),
            (
                "type: \"------------------------------------\"",
                "8-4-4-4-12",
            ),
            (
                "uuid: \"0123456789abcdef0123456789abcdef----\"",
                "8-4-4-4-12",
            ),
        ] {
            let e = parse_str("t.yaml", &yaml(field)).unwrap_err().to_string();
            assert!(e.contains(want), "{field}: {e}");
        }
        assert!(parse_str(
            "t.yaml",
            &yaml("uuid: \"809b3a2b-828a-4730-95e1-75b6343e415a\"")
        )
        .is_ok());
        let long = "disk:\n  d:\n    device: /dev/vda\n    content:\n      type: table\n      format: gpt\n      partitions:\n        - {name: a-really-long-partition-name-that-exceeds-36, start: 1MiB, end: 20MiB}\n        - {name: b, start: 20MiB, end: 30MiB}\n        - {name: b, start: 30MiB, end: 40MiB}\n";
        let e = parse_str("t.yaml", long).unwrap_err().to_string();
        assert!(
            e.contains("at most 36 characters") && e.contains("two partitions have the name \"b\""),
            "{e}"
        );
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
}
