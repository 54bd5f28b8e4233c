//! The YAML and JSON stores (sops stores/yaml, stores/json), read into the document tree in
//! document order.
//!
//! Scalars are typed by the parser: YAML by the YAML 1.2 core schema (serde_norway), which is
//! what go-yaml v3 does for the forms sops writes; it differs for 1.1-style octals (`0777`) and
//! digit separators (`1_000`), which go-yaml reads as numbers, and for `!!binary`, which
//! go-yaml decodes — such an *unencrypted* value then fails the MAC (closed, never silently
//! wrong); sops writes encrypted values as plain `ENC[…]` strings, which read the same.
//! Other tags are refused. JSON numbers are integers when they fit
//! in 64 bits and floats otherwise, as sops' `normalizeJSONNumber`. YAML comments are not read
//! (the parser drops them): they are not part of the MAC and sops-nix installs none; a file
//! whose rules depend on comments (`*_comment_regex`) is refused by the caller.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

use super::tree::{Item, Value};

/// A parsed value before the checks that need its path.
enum Raw {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
    /// A YAML value with a non-core tag (`!!binary`, `!custom`).
    Tagged(String),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Bytes(v.to_vec()))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Raw::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some((k, x)) = map.next_entry()? {
            v.push((k, x));
        }
        Ok(Raw::Map(v))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Raw, A::Error> {
        use de::VariantAccess;
        let (tag, variant): (String, _) = data.variant()?;
        let _ignored: Raw = variant.newtype_variant()?;
        Ok(Raw::Tagged(tag))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Yaml,
    Json,
}

fn convert(raw: Raw, path: &mut Vec<String>, flavor: Flavor) -> Result<Value, String> {
    let here = |path: &Vec<String>| super::tree::show_path(path);
    Ok(match raw {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::I64(i) => Value::Int(i),
        Raw::U64(u) => match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            // sops' JSON store reads such a number as a float.
            Err(_) if flavor == Flavor::Json => Value::Float(u as f64),
            Err(_) => {
                return Err(format!(
                    "{}: integer {u} does not fit in 64 signed bits (sops cannot hash it)",
                    here(path)
                ))
            }
        },
        Raw::F64(x) => Value::Float(x),
        Raw::Str(s) => Value::Str(s),
        Raw::Bytes(b) => Value::Bytes(b),
        Raw::Tagged(tag) => {
            return Err(format!(
                "{}: YAML tag {tag} is not supported in sops files",
                here(path)
            ))
        }
        Raw::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.into_iter().enumerate() {
                path.push(format!("[{i}]"));
                out.push(convert(x, path, flavor)?);
                path.pop();
            }
            Value::List(out)
        }
        Raw::Map(entries) => {
            let mut out: Vec<Item> = Vec::with_capacity(entries.len());
            for (k, x) in entries {
                let name = match k {
                    Raw::Str(s) => s,
                    other => {
                        return Err(format!(
                            "{}: a mapping key is {}; sops supports only string keys",
                            here(path),
                            raw_type(&other)
                        ))
                    }
                };
                if flavor == Flavor::Yaml && out.iter().any(|i| i.name() == Some(name.as_str())) {
                    path.push(name);
                    return Err(format!("{}: duplicate key", here(path)));
                }
                path.push(name.clone());
                let v = convert(x, path, flavor)?;
                path.pop();
                out.push(Item::new(name, v));
            }
            Value::Map(out)
        }
    })
}

fn raw_type(r: &Raw) -> &'static str {
    match r {
        Raw::Null => "null",
        Raw::Bool(_) => "a boolean",
        Raw::I64(_) | Raw::U64(_) => "an integer",
        Raw::F64(_) => "a float",
        Raw::Str(_) => "a string",
        Raw::Bytes(_) => "bytes",
        Raw::Seq(_) => "a list",
        Raw::Map(_) => "a mapping",
        Raw::Tagged(_) => "a tagged value",
    }
}

/// Parse a YAML sops file: one branch per document (`---`); each document must be a mapping
/// (an empty document is an empty branch), as sops' YAML store.
/// The deepest nesting of `[` and `{` accepted, counted on the raw text before parsing (a
/// bracket inside a string counts too): the YAML loader would otherwise spend seconds and
/// hundreds of MiB on a file of nothing but `[` before serde's own depth limit (128) is met.
pub const MAX_FLOW_DEPTH: usize = 256;

fn check_flow_depth(data: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    for (i, b) in data.iter().enumerate() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(format!(
                        "nested deeper than {MAX_FLOW_DEPTH} levels of [ and {{ (at byte {i})"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

pub fn parse_yaml(data: &[u8]) -> Result<Vec<Vec<Item>>, String> {
    check_flow_depth(data).map_err(|e| format!("not valid YAML: {e}"))?;
    let mut branches = Vec::new();
    for (n, doc) in serde_norway::Deserializer::from_slice(data).enumerate() {
        let raw = Raw::deserialize(doc).map_err(|e| format!("not valid YAML: {e}"))?;
        match convert(raw, &mut Vec::new(), Flavor::Yaml)? {
            Value::Map(items) => branches.push(items),
            Value::Null => branches.push(Vec::new()),
            other => {
                return Err(format!(
                    "YAML document {} is {}, sops files are mappings",
                    n + 1,
                    other.a_type_name()
                ))
            }
        }
    }
    Ok(branches)
}

/// Parse a JSON sops file (also the binary store's envelope): one object.
pub fn parse_json(data: &[u8]) -> Result<Vec<Vec<Item>>, String> {
    check_flow_depth(data).map_err(|e| format!("not valid JSON: {e}"))?;
    let raw: Raw = serde_json::from_slice(data).map_err(|e| format!("not valid JSON: {e}"))?;
    match convert(raw, &mut Vec::new(), Flavor::Json)? {
        Value::Map(items) => Ok(vec![items]),
        other => Err(format!(
            "the JSON document is {}, sops files are objects",
            other.a_type_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[Item]) -> Vec<&str> {
        items.iter().filter_map(|i| i.name()).collect()
    }

    #[test]
    fn yaml_keeps_order_types_and_documents() {
        let b =
            parse_yaml(b"z: 1\na: [x, 2, 2.5, true, null, '3']\nm: {q: 0x10}\n---\nb: c\n---\n")
                .unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(names(&b[0]), ["z", "a", "m"]);
        assert_eq!(b[0][0].value, Value::Int(1));
        let Value::List(l) = &b[0][1].value else {
            panic!()
        };
        assert_eq!(
            l,
            &[
                Value::Str("x".into()),
                Value::Int(2),
                Value::Float(2.5),
                Value::Bool(true),
                Value::Null,
                Value::Str("3".into())
            ]
        );
        let Value::Map(m) = &b[0][2].value else {
            panic!()
        };
        assert_eq!(m[0].value, Value::Int(16));
        assert!(b[2].is_empty());
    }

    #[test]
    fn yaml_rejections_name_the_path() {
        let e = parse_yaml(b"a:\n  b: 1\n  b: 2\n").unwrap_err();
        assert!(e.contains("a/b: duplicate key"), "{e}");
        let e = parse_yaml(b"a:\n  - {1: x}\n").unwrap_err();
        assert!(e.contains("a[0]") && e.contains("string keys"), "{e}");
        let e = parse_yaml(b"a: !custom x\n").unwrap_err();
        assert!(e.contains("a: YAML tag"), "{e}");
        assert!(parse_yaml(b"- a\n").unwrap_err().contains("list"));
        // 2 MB of `[` is refused at once (the loader took 6 s and 260 MB on it).
        let deep = vec![b'['; 2 << 20];
        let t = std::time::Instant::now();
        for e in [
            parse_yaml(&deep).unwrap_err(),
            parse_json(&deep).unwrap_err(),
        ] {
            assert!(e.contains("nested deeper than 256"), "{e}");
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        let ok = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert!(parse_yaml(ok.as_bytes()).is_ok());
        assert!(parse_yaml(b"a: [\n")
            .unwrap_err()
            .contains("not valid YAML"));
    }

    #[test]
    fn json_numbers_and_duplicates_as_sops() {
        let b = parse_json(br#"{"b": 1, "a": 18446744073709551615, "b": -2, "f": 1.0}"#).unwrap();
        assert_eq!(names(&b[0]), ["b", "a", "b", "f"]);
        assert_eq!(b[0][1].value, Value::Float(18446744073709551615.0));
        assert_eq!(b[0][2].value, Value::Int(-2));
        assert_eq!(b[0][3].value, Value::Float(1.0));
        assert!(parse_json(b"[1]").unwrap_err().contains("objects"));
    }
}
