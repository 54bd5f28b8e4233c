//! Decrypt a document tree in place and compute its MAC, as sops' `Tree.Decrypt` (sops.go):
//! a walk in document order with the key path (list items keep their parent's path) and a stack
//! of the comments seen, the encryption rule deciding per leaf whether it is encrypted, each
//! encrypted leaf opened with the path joined by `:` plus `:` as associated data, and every
//! non-comment leaf (all of them, or only the encrypted ones with `mac_only_encrypted`) hashed
//! with SHA-512 in its `ToBytes` form. Comments are never hashed; an encrypted comment that does
//! not open is kept as it is (sops does the same, for files from before comments were
//! encrypted). Null values are neither opened nor hashed.

use sha2::{Digest, Sha512};

use super::cipher;
use super::metadata::{Metadata, Rule};
use super::tree::{show_path, Item, Key, Value};

/// sops `MACOnlyEncryptedInitialization`: SHA-256 of "sops", hashed first when
/// `mac_only_encrypted` so that the two kinds of MAC never coincide.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A failure at one key path.
#[derive(Debug)]
pub struct WalkError {
    /// Where (`nested/test/file`, `a_list[1]`).
    pub at: String,
    pub why: String,
}

struct Walker<'a> {
    key: &'a [u8; 32],
    rule: &'a Rule,
    mac_only_encrypted: bool,
    hash: Sha512,
    /// The key path for the associated data (no list indices).
    path: Vec<String>,
    /// The same with list indices, for messages.
    shown: Vec<String>,
    /// sops' `commentsStack`: one list of the comments seen per open mapping/list.
    comments: Vec<Vec<String>>,
}

/// Decrypt every branch in place; returns the MAC (upper-case hex SHA-512) of the plaintext.
pub fn decrypt(
    branches: &mut [Vec<Item>],
    key: &[u8; 32],
    meta: &Metadata,
) -> Result<String, WalkError> {
    let mut w = Walker {
        key,
        rule: &meta.rule,
        mac_only_encrypted: meta.mac_only_encrypted,
        hash: Sha512::new(),
        path: Vec::new(),
        shown: Vec::new(),
        comments: Vec::new(),
    };
    if meta.mac_only_encrypted {
        w.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for branch in branches.iter_mut() {
        w.branch(branch)?;
    }
    Ok(hex::encode_upper(w.hash.finalize()))
}

impl Walker<'_> {
    fn fail(&self, why: impl Into<String>) -> WalkError {
        WalkError {
            at: show_path(&self.shown),
            why: why.into(),
        }
    }

    fn branch(&mut self, items: &mut [Item]) -> Result<(), WalkError> {
        self.comments.push(Vec::new());
        for item in items.iter_mut() {
            if let Key::Comment(c) = &item.key {
                self.top().push(c.clone());
                let opened = self.leaf(&Value::Comment(c.clone()))?;
                item.key = match opened {
                    Value::Comment(t) | Value::Str(t) => Key::Comment(t),
                    other => {
                        return Err(self.fail(format!(
                            "an encrypted comment holds {}",
                            other.a_type_name()
                        )))
                    }
                };
                continue;
            }
            let is_comment = matches!(item.value, Value::Comment(_));
            if let Value::Comment(c) = &item.value {
                let c = c.clone();
                self.top().push(c);
            }
            let Key::Name(name) = &item.key else {
                unreachable!("comment keys handled above")
            };
            self.path.push(name.clone());
            self.shown.push(name.clone());
            let r = self.value(&mut item.value);
            self.path.pop();
            self.shown.pop();
            r?;
            if !is_comment {
                self.top().clear();
            }
        }
        self.comments.pop();
        Ok(())
    }

    fn list(&mut self, items: &mut [Value]) -> Result<(), WalkError> {
        self.comments.push(Vec::new());
        for (i, v) in items.iter_mut().enumerate() {
            let is_comment = matches!(v, Value::Comment(_));
            if let Value::Comment(c) = v {
                let c = c.clone();
                self.top().push(c);
            }
            self.shown.push(format!("[{i}]"));
            let r = self.value(v);
            self.shown.pop();
            r?;
            if !is_comment {
                self.top().clear();
            }
        }
        self.comments.pop();
        Ok(())
    }

    fn top(&mut self) -> &mut Vec<String> {
        self.comments.last_mut().expect("pushed by branch/list")
    }

    fn value(&mut self, v: &mut Value) -> Result<(), WalkError> {
        match v {
            Value::Map(items) => self.branch(items),
            Value::List(items) => self.list(items),
            Value::Null => Ok(()),
            _ => {
                *v = self.leaf(v)?;
                Ok(())
            }
        }
    }

    /// One leaf: open it if the rule says it is encrypted, hash it unless it is a comment.
    fn leaf(&mut self, v: &Value) -> Result<Value, WalkError> {
        let is_comment = matches!(v, Value::Comment(_));
        let encrypted = self.should_be_encrypted(is_comment);
        let out = if encrypted {
            let aad = format!("{}:", self.path.join(":"));
            match v {
                Value::Comment(c) => match cipher::decrypt(c, self.key, &aad) {
                    Ok(Value::Str(s)) => Value::Comment(s),
                    Ok(opened) => opened,
                    Err(_) => v.clone(),
                },
                Value::Str(s) => cipher::decrypt(s, self.key, &aad).map_err(|e| self.fail(e))?,
                other => {
                    return Err(self.fail(format!(
                        "expected an encrypted value, found a plaintext {} (the file was changed \
                         after sops wrote it)",
                        other.type_name()
                    )))
                }
            }
        } else {
            v.clone()
        };
        if !is_comment && (!self.mac_only_encrypted || encrypted) {
            match out.leaf_bytes() {
                Some(b) => self.hash.update(b),
                None => return Err(self.fail("not a scalar")),
            }
        }
        Ok(out)
    }

    /// sops `shouldBeEncrypted`: the one rule of the file, over the key path (every component)
    /// or the comments above the value.
    fn should_be_encrypted(&self, is_comment: bool) -> bool {
        let any = |f: &dyn Fn(&str) -> bool| self.path.iter().any(|p| f(p));
        match self.rule {
            Rule::UnencryptedSuffix(s) => !any(&|p| p.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => any(&|p| p.ends_with(s.as_str())),
            Rule::UnencryptedRegex(re) => !any(&|p| re.is_match(p)),
            Rule::EncryptedRegex(re) => any(&|p| re.is_match(p)),
            Rule::UnencryptedCommentRegex(re) => {
                !self.comments.iter().flatten().any(|c| re.is_match(c))
            }
            Rule::EncryptedCommentRegex(re) => {
                // The comment line that matches is itself left in clear: skip the last comment
                // of the innermost level when deciding for a comment.
                let last_level = self.comments.len().saturating_sub(1);
                self.comments.iter().enumerate().any(|(i, level)| {
                    level.iter().enumerate().any(|(j, c)| {
                        let own = is_comment && i == last_level && j + 1 == level.len();
                        !own && re.is_match(c)
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cipher::seal;
    use super::super::metadata::{KeyGroup, Metadata, Rule};
    use super::*;

    const KEY: [u8; 32] = [3; 32];

    fn meta(rule: Rule, mac_only_encrypted: bool) -> Metadata {
        Metadata {
            groups: vec![KeyGroup::default()],
            shamir_threshold: 0,
            lastmodified: "2024-01-01T00:00:00Z".into(),
            mac: String::new(),
            rule,
            mac_only_encrypted,
            version: "3.9.0".into(),
        }
    }

    fn enc(plain: &str, kind: &str, aad: &str) -> Value {
        Value::Str(seal(plain.as_bytes(), kind, &KEY, aad, &[5; 32]))
    }

    fn sha(parts: &[&[u8]], init: bool) -> String {
        let mut h = Sha512::new();
        if init {
            h.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        for p in parts {
            h.update(p);
        }
        hex::encode_upper(h.finalize())
    }

    #[test]
    fn paths_lists_types_and_mac() {
        let mut b = vec![vec![
            Item::comment(seal(b" note", "comment", &KEY, ":", &[1; 32])),
            Item::new("a", enc("x", "str", "a:")),
            Item::new(
                "l",
                Value::List(vec![
                    enc("1", "int", "l:"),
                    enc("True", "bool", "l:"),
                    Value::Str(String::new()),
                ]),
            ),
            Item::new(
                "n",
                Value::Map(vec![
                    Item::new("f", enc("2.5", "float", "n:f:")),
                    Item::new("z", Value::Null),
                ]),
            ),
            Item::new("k_unencrypted", Value::Int(7)),
        ]];
        let mac = decrypt(
            &mut b,
            &KEY,
            &meta(Rule::UnencryptedSuffix("_unencrypted".into()), false),
        )
        .unwrap();
        assert_eq!(mac, sha(&[b"x", b"1", b"True", b"", b"2.5", b"7"], false));
        assert_eq!(b[0][0].key, Key::Comment(" note".into()));
        assert_eq!(b[0][1].value, Value::Str("x".into()));
        assert_eq!(
            b[0][2].value,
            Value::List(vec![
                Value::Int(1),
                Value::Bool(true),
                Value::Str(String::new())
            ])
        );
    }

    #[test]
    fn mac_only_encrypted_skips_plain_values() {
        let mut b = vec![vec![
            Item::new("a", enc("x", "str", "a:")),
            Item::new("b_unencrypted", Value::Str("p".into())),
        ]];
        let mac = decrypt(
            &mut b,
            &KEY,
            &meta(Rule::UnencryptedSuffix("_unencrypted".into()), true),
        )
        .unwrap();
        assert_eq!(mac, sha(&[b"x"], true));
    }

    #[test]
    fn failures_name_the_path() {
        // Moved to another key: the associated data no longer matches.
        let mut b = vec![vec![Item::new(
            "n",
            Value::Map(vec![Item::new("b", enc("x", "str", "n:a:"))]),
        )]];
        let e = decrypt(
            &mut b,
            &KEY,
            &meta(Rule::UnencryptedSuffix("_unencrypted".into()), false),
        )
        .unwrap_err();
        assert_eq!(e.at, "n/b");
        assert!(e.why.contains("authentication"), "{}", e.why);
        // A plaintext where a ciphertext belongs.
        let mut b = vec![vec![Item::new("l", Value::List(vec![Value::Int(3)]))]];
        let e = decrypt(
            &mut b,
            &KEY,
            &meta(Rule::UnencryptedSuffix("_unencrypted".into()), false),
        )
        .unwrap_err();
        assert_eq!(e.at, "l[0]");
        assert!(e.why.contains("plaintext integer"), "{}", e.why);
    }

    #[test]
    fn rules() {
        let re = |s: &str| regex_lite::Regex::new(s).unwrap();
        let mut b = vec![vec![
            Item::new(
                "data",
                Value::Map(vec![Item::new("x", enc("1", "str", "data:x:"))]),
            ),
            Item::new("kind", Value::Str("Secret".into())),
        ]];
        let mac = decrypt(
            &mut b,
            &KEY,
            &meta(Rule::EncryptedRegex(re("^data$")), false),
        )
        .unwrap();
        assert_eq!(mac, sha(&[b"1", b"Secret"], false));
        let mut b = vec![vec![
            Item::new("pw_enc", enc("s", "str", "pw_enc:")),
            Item::new("user", Value::Str("u".into())),
        ]];
        decrypt(
            &mut b,
            &KEY,
            &meta(Rule::EncryptedSuffix("_enc".into()), false),
        )
        .unwrap();
        assert_eq!(b[0][0].value, Value::Str("s".into()));
        // A comment rule: only the value after a `sops:enc` comment is encrypted; the
        // matching comment itself stays in clear.
        let mut b = vec![vec![
            Item::comment("sops:enc"),
            Item::new("a", enc("s", "str", "a:")),
            Item::new("b", Value::Str("plain".into())),
        ]];
        let mac = decrypt(
            &mut b,
            &KEY,
            &meta(Rule::EncryptedCommentRegex(re("sops:enc")), false),
        )
        .unwrap();
        assert_eq!(mac, sha(&[b"s", b"plain"], false));
    }
}
