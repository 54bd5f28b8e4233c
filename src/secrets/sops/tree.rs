//! The document tree of a sops file, in document order (sops `TreeBranch`: an ordered list of
//! key/value items, lists, scalars and comments), and the byte form of a leaf that the MAC
//! hashes (sops `ToBytes`, sops.go).

use std::fmt;

/// One value of the tree.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// A mapping, in document order (duplicate keys kept as the format's parser gave them).
    Map(Vec<Item>),
    /// A sequence; may hold [`Value::Comment`] items (YAML comments between list items).
    List(Vec<Value>),
    Str(String),
    /// Plaintext of `type:bytes`, or of `type:str` that is not UTF-8 (Go strings are bytes).
    Bytes(Vec<u8>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// YAML/JSON null: neither decrypted nor hashed (sops leaves nil alone).
    Null,
    /// A comment line (without its `#`/`;`), encrypted (`type:comment`) or not.
    Comment(String),
}

/// A key of a mapping: a name, or a comment line standing between items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Name(String),
    Comment(String),
}

/// One item of a mapping. A comment item's value is [`Value::Null`].
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub value: Value,
}

impl Item {
    pub fn new(key: impl Into<String>, value: Value) -> Item {
        Item {
            key: Key::Name(key.into()),
            value,
        }
    }

    pub fn comment(text: impl Into<String>) -> Item {
        Item {
            key: Key::Comment(text.into()),
            value: Value::Null,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match &self.key {
            Key::Name(n) => Some(n),
            Key::Comment(_) => None,
        }
    }
}

/// Plaintext never reaches a log through `{:?}`: leaves print as their type only.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Map(items) => f.debug_list().entries(items).finish(),
            Value::List(v) => f.debug_list().entries(v).finish(),
            Value::Str(_) => f.write_str("<str>"),
            Value::Bytes(_) => f.write_str("<bytes>"),
            Value::Int(_) => f.write_str("<int>"),
            Value::Float(_) => f.write_str("<float>"),
            Value::Bool(_) => f.write_str("<bool>"),
            Value::Null => f.write_str("null"),
            Value::Comment(_) => f.write_str("<comment>"),
        }
    }
}

impl Value {
    /// The bytes the MAC hashes for a leaf, as sops `ToBytes` (sops.go): strings and bytes as
    /// they are, integers in decimal, floats as Go's `strconv.FormatFloat(v, 'f', -1, 64)`,
    /// booleans `True`/`False`. `None` for maps, lists and null.
    pub fn leaf_bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            Value::Str(s) | Value::Comment(s) => s.as_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
            Value::Int(i) => i.to_string().into_bytes(),
            Value::Float(x) => go_format_float(*x).into_bytes(),
            Value::Bool(true) => b"True".to_vec(),
            Value::Bool(false) => b"False".to_vec(),
            Value::Map(_) | Value::List(_) | Value::Null => return None,
        })
    }

    /// The type name, for errors.
    /// [`Value::type_name`] with its article, for messages: "an integer", "a list".
    pub fn a_type_name(&self) -> String {
        let t = self.type_name();
        let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {t}")
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Map(_) => "mapping",
            Value::List(_) => "list",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
            Value::Comment(_) => "comment",
        }
    }
}

/// Go's `strconv.FormatFloat(x, 'f', -1, 64)`: the shortest decimal that reads back as `x`,
/// never in exponent form; `NaN`, `+Inf`, `-Inf`. Rust's `Display` for `f64` prints the same
/// shortest round-trip digits without an exponent.
pub fn go_format_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x}")
    }
}

/// A key path for messages: `nested/test/file`, list items as `a_list[1]`.
pub fn show_path(path: &[String]) -> String {
    if path.is_empty() {
        return "(top level)".into();
    }
    let mut s = String::new();
    for p in path {
        if p.starts_with('[') || s.is_empty() {
            s.push_str(p);
        } else {
            s.push('/');
            s.push_str(p);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_with_their_article() {
        assert_eq!(Value::Int(1).a_type_name(), "an integer");
        assert_eq!(Value::List(vec![]).a_type_name(), "a list");
        assert_eq!(Value::Map(vec![]).a_type_name(), "a mapping");
    }

    #[test]
    fn floats_print_as_go_does() {
        for (x, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (123456789.125, "123456789.125"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
        ] {
            assert_eq!(go_format_float(x), want, "{x}");
        }
    }

    #[test]
    fn leaf_bytes() {
        assert_eq!(Value::Bool(true).leaf_bytes().unwrap(), b"True");
        assert_eq!(Value::Bool(false).leaf_bytes().unwrap(), b"False");
        assert_eq!(Value::Int(-42).leaf_bytes().unwrap(), b"-42");
        assert!(Value::Null.leaf_bytes().is_none());
        assert_eq!(format!("{:?}", Value::Str("secret".into())), "<str>");
    }

    #[test]
    fn paths() {
        let p = |v: &[&str]| show_path(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["nested", "test", "file"]), "nested/test/file");
        assert_eq!(p(&["a_list", "[1]"]), "a_list[1]");
        assert_eq!(p(&[]), "(top level)");
    }
}
