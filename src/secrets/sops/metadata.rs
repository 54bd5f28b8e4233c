//! The `sops` metadata of a file (sops stores/stores.go `metadata`, stores/metadata.go
//! `ExtractMetadata`, stores/flatten.go): where it sits per format, the key groups, the MAC and
//! its `lastmodified`, and the rule that says which values are encrypted.

use std::collections::BTreeMap;

use super::tree::{Item, Value};

/// How the metadata is stored (sops `MetadataFlatten`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flatten {
    /// A nested `sops` mapping in the first document (YAML, JSON, binary).
    None,
    /// A top-level `sops` section with flattened keys, `\n` escaped (INI).
    BelowTop,
    /// Top-level `sops_…` keys, flattened (dotenv).
    Full,
}

/// One age recipient entry (`sops.age[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeKey {
    /// `age1…`, or a native SSH public key line (`ssh-ed25519 AAAA…`, sops ≥ 3.10).
    pub recipient: String,
    /// The armored age file that holds the data key (or its Shamir share).
    pub enc: String,
}

/// The master keys that each wrap the same data key (or Shamir share).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyGroup {
    pub age: Vec<AgeKey>,
    /// OpenPGP fingerprints (`sops.pgp[].fp`).
    pub pgp: Vec<String>,
    /// Cloud and Vault keys, as `kms arn:…`, `gcp_kms …`, … (never usable on a node).
    pub other: Vec<String>,
}

/// Which values are encrypted: exactly one rule (sops `ToInternal`; none given means
/// `unencrypted_suffix: _unencrypted`).
#[derive(Debug, Clone)]
pub enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex_lite::Regex),
    EncryptedRegex(regex_lite::Regex),
    UnencryptedCommentRegex(regex_lite::Regex),
    EncryptedCommentRegex(regex_lite::Regex),
}

impl Rule {
    pub fn uses_comments(&self) -> bool {
        matches!(
            self,
            Rule::UnencryptedCommentRegex(_) | Rule::EncryptedCommentRegex(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct Metadata {
    pub groups: Vec<KeyGroup>,
    /// Key groups needed (Shamir); 0 when absent.
    pub shamir_threshold: usize,
    /// `lastmodified` as sops re-formats it for the MAC's associated data (Go RFC 3339).
    pub lastmodified: String,
    /// The encrypted MAC (`ENC[…]`).
    pub mac: String,
    pub rule: Rule,
    pub mac_only_encrypted: bool,
    pub version: String,
}

/// Take the metadata out of the branches (every `sops` entry is removed; the first document's
/// is used) and read it.
pub fn extract(branches: &mut [Vec<Item>], flatten: Flatten) -> Result<Metadata, String> {
    let mut meta: Option<Value> = None;
    match flatten {
        Flatten::None | Flatten::BelowTop => {
            for (bi, branch) in branches.iter_mut().enumerate() {
                let mut i = 0;
                while i < branch.len() {
                    if branch[i].name() == Some("sops") {
                        let item = branch.remove(i);
                        if bi == 0 {
                            if meta.is_some() {
                                return Err("more than one `sops` entry".into());
                            }
                            if !matches!(item.value, Value::Map(_)) {
                                return Err("the `sops` entry is not a mapping".into());
                            }
                            meta = Some(item.value);
                        }
                    } else {
                        i += 1;
                    }
                }
            }
        }
        Flatten::Full => {
            if let Some(branch) = branches.first_mut() {
                let mut found = Vec::new();
                branch.retain(
                    |item| match item.name().and_then(|n| n.strip_prefix("sops_")) {
                        Some(rest) => {
                            found.push(Item::new(rest, item.value.clone()));
                            false
                        }
                        None => true,
                    },
                );
                if !found.is_empty() {
                    meta = Some(Value::Map(found));
                }
            }
        }
    }
    let meta = meta.ok_or("no sops metadata (not a sops-encrypted file, or another format)")?;
    let meta = match flatten {
        Flatten::None => meta,
        Flatten::BelowTop | Flatten::Full => {
            let Value::Map(items) = meta else {
                unreachable!("checked above")
            };
            unflatten(items, flatten == Flatten::BelowTop)?
        }
    };
    read(&meta)
}

#[derive(Default)]
struct Node {
    value: Option<Value>,
    keys: BTreeMap<String, Node>,
    indices: BTreeMap<usize, Node>,
}

const MAP_SEP: &str = "__map_";
const LIST_SEP: &str = "__list_";

/// sops `unflattenTreeBranch`: `age__list_0__map_enc` → `age[0].enc`.
fn unflatten(items: Vec<Item>, unescape_newlines: bool) -> Result<Value, String> {
    let mut root = Node::default();
    for item in items {
        let Some(key) = item.name().map(str::to_string) else {
            continue;
        };
        let mut node = &mut root;
        let mut rest = key.as_str();
        let mut first = true;
        loop {
            let (token, next) = if first {
                first = false;
                split_token(rest)
            } else if let Some(r) = rest.strip_prefix(MAP_SEP) {
                split_token(r)
            } else if let Some(r) = rest.strip_prefix(LIST_SEP) {
                let (digits, next) = split_token(r);
                let i: usize = digits
                    .parse()
                    .map_err(|_| format!("metadata key {key:?}: bad list index {digits:?}"))?;
                node = node.indices.entry(i).or_default();
                rest = next;
                if rest.is_empty() {
                    break;
                }
                continue;
            } else {
                unreachable!("split_token stops at a separator")
            };
            node = node.keys.entry(token.to_string()).or_default();
            rest = next;
            if rest.is_empty() {
                break;
            }
        }
        if node.value.is_some() {
            return Err(format!("metadata key {key:?} given twice"));
        }
        let mut value = item.value;
        if unescape_newlines {
            if let Value::Str(s) = &value {
                value = Value::Str(s.replace("\\n", "\n"));
            }
        }
        node.value = Some(value);
    }
    convert(root, "sops")
}

fn split_token(s: &str) -> (&str, &str) {
    let end = [s.find(MAP_SEP), s.find(LIST_SEP)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(s.len());
    s.split_at(end)
}

fn convert(node: Node, at: &str) -> Result<Value, String> {
    let kinds =
        node.value.is_some() as u8 + !node.keys.is_empty() as u8 + !node.indices.is_empty() as u8;
    if kinds > 1 {
        return Err(format!("metadata {at}: both a value and nested keys"));
    }
    if let Some(v) = node.value {
        return Ok(v);
    }
    if !node.indices.is_empty() {
        let n = node.indices.len();
        if node.indices.keys().next_back() != Some(&(n - 1)) {
            return Err(format!("metadata {at}: list with missing items"));
        }
        return node
            .indices
            .into_iter()
            .map(|(i, v)| convert(v, &format!("{at}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    node.keys
        .into_iter()
        .map(|(k, v)| {
            let at = format!("{at}.{k}");
            convert(v, &at).map(|v| Item::new(k, v))
        })
        .collect::<Result<_, _>>()
        .map(Value::Map)
}

fn get<'a>(m: &'a [Item], key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|i| i.name() == Some(key))
        .map(|i| &i.value)
        .filter(|v| !matches!(v, Value::Null))
}

/// A string field (mapstructure's weak typing: numbers and booleans as text).
fn text(m: &[Item], key: &str, at: &str) -> Result<Option<String>, String> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(Value::Int(i)) => Ok(Some(i.to_string())),
        Some(Value::Bool(b)) => Ok(Some(if *b { "1" } else { "0" }.into())),
        Some(v) => Err(format!(
            "metadata {at}.{key}: {}, expected text",
            v.a_type_name()
        )),
    }
}

fn list<'a>(m: &'a [Item], key: &str, at: &str) -> Result<Vec<&'a [Item]>, String> {
    match get(m, key) {
        None => Ok(Vec::new()),
        Some(Value::List(v)) => v
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::Map(m) => Ok(m.as_slice()),
                other => Err(format!(
                    "metadata {at}.{key}[{i}]: {}, expected a mapping",
                    other.a_type_name()
                )),
            })
            .collect(),
        Some(v) => Err(format!(
            "metadata {at}.{key}: {}, expected a list",
            v.a_type_name()
        )),
    }
}

fn group(m: &[Item], at: &str) -> Result<KeyGroup, String> {
    let mut g = KeyGroup::default();
    for (i, k) in list(m, "age", at)?.into_iter().enumerate() {
        let at = format!("{at}.age[{i}]");
        let recipient = text(k, "recipient", &at)?.unwrap_or_default();
        let enc = text(k, "enc", &at)?.ok_or(format!("metadata {at}: no enc"))?;
        g.age.push(AgeKey { recipient, enc });
    }
    for (i, k) in list(m, "pgp", at)?.into_iter().enumerate() {
        g.pgp
            .push(text(k, "fp", &format!("{at}.pgp[{i}]"))?.unwrap_or_default());
    }
    for (field, id) in [
        ("kms", "arn"),
        ("gcp_kms", "resource_id"),
        ("azure_kv", "vault_url"),
        ("hc_vault", "vault_address"),
        ("hckms", "key_id"),
    ] {
        for (i, k) in list(m, field, at)?.into_iter().enumerate() {
            let name = text(k, id, &format!("{at}.{field}[{i}]"))?.unwrap_or_default();
            g.other.push(format!("{field} {name}"));
        }
    }
    Ok(g)
}

fn is_empty(g: &KeyGroup) -> bool {
    g.age.is_empty() && g.pgp.is_empty() && g.other.is_empty()
}

/// Read the (nested) metadata mapping.
fn read(meta: &Value) -> Result<Metadata, String> {
    let Value::Map(m) = meta else {
        return Err("the `sops` entry is not a mapping".into());
    };
    let top = group(m, "sops")?;
    let groups = if !is_empty(&top) {
        vec![top]
    } else {
        let gs = list(m, "key_groups", "sops")?
            .into_iter()
            .enumerate()
            .map(|(i, g)| group(g, &format!("sops.key_groups[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if gs.is_empty() {
            return Err("metadata: no keys found in the file".into());
        }
        gs
    };
    let shamir_threshold = match get(m, "shamir_threshold") {
        None => 0,
        Some(Value::Int(i)) if *i >= 0 => *i as usize,
        Some(Value::Str(s)) => s
            .parse()
            .map_err(|_| format!("metadata sops.shamir_threshold: {s:?} is not a count"))?,
        Some(v) => {
            return Err(format!(
                "metadata sops.shamir_threshold: {} is not a count",
                v.a_type_name()
            ))
        }
    };
    let mac_only_encrypted = match get(m, "mac_only_encrypted") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Str(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => false,
            _ => {
                return Err(format!(
                    "metadata sops.mac_only_encrypted: {s:?} is not a boolean"
                ))
            }
        },
        Some(v) => {
            return Err(format!(
                "metadata sops.mac_only_encrypted: {} is not a boolean",
                v.a_type_name()
            ))
        }
    };
    let lastmodified = text(m, "lastmodified", "sops")?.ok_or("metadata: no sops.lastmodified")?;
    let lastmodified = go_rfc3339(&lastmodified).ok_or_else(|| {
        format!("metadata sops.lastmodified {lastmodified:?}: not an RFC 3339 time")
    })?;
    let mac = text(m, "mac", "sops")?.unwrap_or_default();
    let mut rules = Vec::new();
    for field in [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ] {
        if let Some(v) = text(m, field, "sops")?.filter(|v| !v.is_empty()) {
            rules.push((field, v));
        }
    }
    if rules.len() > 1 {
        return Err(format!(
            "metadata: more than one of {} (sops allows one)",
            rules.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
        ));
    }
    let re = |field: &str, v: &str| {
        regex_lite::Regex::new(v)
            .map_err(|e| format!("metadata sops.{field} {v:?}: not a regular expression: {e}"))
    };
    let rule = match rules.pop() {
        None => Rule::UnencryptedSuffix("_unencrypted".into()),
        Some(("unencrypted_suffix", v)) => Rule::UnencryptedSuffix(v),
        Some(("encrypted_suffix", v)) => Rule::EncryptedSuffix(v),
        Some((f @ "unencrypted_regex", v)) => Rule::UnencryptedRegex(re(f, &v)?),
        Some((f @ "encrypted_regex", v)) => Rule::EncryptedRegex(re(f, &v)?),
        Some((f @ "unencrypted_comment_regex", v)) => Rule::UnencryptedCommentRegex(re(f, &v)?),
        Some((f, v)) => Rule::EncryptedCommentRegex(re(f, &v)?),
    };
    Ok(Metadata {
        groups,
        shamir_threshold,
        lastmodified,
        mac,
        rule,
        mac_only_encrypted,
        version: text(m, "version", "sops")?.unwrap_or_default(),
    })
}

/// `lastmodified` as Go's `time.Parse(time.RFC3339, s)` then `Format(time.RFC3339)` gives it
/// (the MAC's associated data): fractional seconds dropped, a zero offset written `Z`.
pub fn go_rfc3339(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let zone = match rest {
        "Z" | "+00:00" | "-00:00" => "Z".to_string(),
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':'
            && z[1..3]
                .bytes()
                .chain(z[4..6].bytes())
                .all(|c| c.is_ascii_digit()) =>
        {
            z.to_string()
        }
        _ => return None,
    };
    Some(format!("{}{zone}", &s[..19]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_go_formats_it() {
        assert_eq!(
            go_rfc3339("2021-09-30T19:49:41Z").unwrap(),
            "2021-09-30T19:49:41Z"
        );
        assert_eq!(
            go_rfc3339("2021-09-30T19:49:41.123Z").unwrap(),
            "2021-09-30T19:49:41Z"
        );
        assert_eq!(
            go_rfc3339("2021-09-30T19:49:41+02:00").unwrap(),
            "2021-09-30T19:49:41+02:00"
        );
        assert_eq!(
            go_rfc3339("2021-09-30T19:49:41+00:00").unwrap(),
            "2021-09-30T19:49:41Z"
        );
        for bad in [
            "2021-09-30 19:49:41Z",
            "2021-09-30T19:49:41",
            "yesterday",
            "2021-09-30T19:49:41.Z",
        ] {
            assert!(go_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn flattened_metadata_unflattens() {
        let items = vec![
            Item::new("lastmodified", Value::Str("2023-01-17T13:07:01Z".into())),
            Item::new("mac", Value::Str("ENC[x]".into())),
            Item::new(
                "key_groups__list_1__map_age__list_0__map_enc",
                Value::Str("E1\\nx".into()),
            ),
            Item::new(
                "key_groups__list_1__map_age__list_0__map_recipient",
                Value::Str("age1b".into()),
            ),
            Item::new(
                "key_groups__list_0__map_pgp__list_0__map_fp",
                Value::Str("FP".into()),
            ),
            Item::new("shamir_threshold", Value::Str("2".into())),
            Item::new("mac_only_encrypted", Value::Str("true".into())),
        ];
        let mut branches = vec![vec![
            Item::new("sops", Value::Map(items)),
            Item::new("data", Value::Str("x".into())),
        ]];
        let m = extract(&mut branches, Flatten::BelowTop).unwrap();
        assert_eq!(branches[0].len(), 1);
        assert_eq!(m.groups.len(), 2);
        assert_eq!(m.groups[0].pgp, ["FP"]);
        assert_eq!(
            m.groups[1].age,
            [AgeKey {
                recipient: "age1b".into(),
                enc: "E1\nx".into()
            }]
        );
        assert_eq!(m.shamir_threshold, 2);
        assert!(m.mac_only_encrypted);
        assert!(matches!(m.rule, Rule::UnencryptedSuffix(ref s) if s == "_unencrypted"));
    }

    #[test]
    fn bad_metadata_is_named() {
        let meta = |extra: Vec<Item>| {
            let mut items = vec![
                Item::new("lastmodified", Value::Str("2023-01-17T13:07:01Z".into())),
                Item::new("mac", Value::Str("ENC[x]".into())),
            ];
            items.extend(extra);
            let mut b = vec![vec![Item::new("sops", Value::Map(items))]];
            extract(&mut b, Flatten::None)
        };
        assert!(meta(vec![]).unwrap_err().contains("no keys"));
        let age = Item::new(
            "age",
            Value::List(vec![Value::Map(vec![Item::new(
                "enc",
                Value::Str("e".into()),
            )])]),
        );
        let e = meta(vec![
            age.clone(),
            Item::new("encrypted_regex", Value::Str("^a".into())),
            Item::new("unencrypted_suffix", Value::Str("_u".into())),
        ])
        .unwrap_err();
        assert!(e.contains("more than one"), "{e}");
        let e = meta(vec![
            age.clone(),
            Item::new("encrypted_regex", Value::Str("(".into())),
        ])
        .unwrap_err();
        assert!(e.contains("encrypted_regex"), "{e}");
        let mut none = vec![vec![Item::new("a", Value::Null)]];
        assert!(extract(&mut none, Flatten::None)
            .unwrap_err()
            .contains("no sops metadata"));
    }
}
