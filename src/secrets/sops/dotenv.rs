//! The dotenv store (sops stores/dotenv): one `KEY=value` per line, `#` lines are comments,
//! empty lines skipped, `\n` in a value stands for a newline; nothing is trimmed or unquoted.
//! Every value is a string. Metadata sits in the same list as `sops_…` keys (flattened).

use super::tree::{Item, Value};

/// Parse a dotenv file into one branch.
pub fn parse(data: &[u8]) -> Result<Vec<Vec<Item>>, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let mut items = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            items.push(Item::comment(c));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not KEY=value (and not a # comment)", n + 1))?;
        items.push(Item::new(key, Value::Str(value.replace("\\n", "\n"))));
    }
    Ok(vec![items])
}

/// The plaintext dotenv file of decrypted items, as sops emits it (sops-nix installs a whole
/// dotenv file this way): `KEY=value` with newlines written as `\n`, comments as `#…`.
pub fn emit(items: &[Item]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for item in items {
        match (&item.key, &item.value) {
            (super::tree::Key::Comment(c), _) => {
                out.push(b'#');
                out.extend_from_slice(c.as_bytes());
            }
            (super::tree::Key::Name(k), v) => {
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                match v {
                    Value::Str(s) => out.extend_from_slice(s.replace('\n', "\\n").as_bytes()),
                    Value::Map(_) | Value::List(_) => {
                        return Err(format!("{k}: a dotenv value cannot be {}", v.a_type_name()))
                    }
                    other => out.extend(other.leaf_bytes().unwrap_or_default()),
                }
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let b = parse(b"#c1\nA=1\n\nB=x=y\\nz\nC=\n").unwrap();
        let items = &b[0];
        assert_eq!(items[0], Item::comment("c1"));
        assert_eq!(items[1], Item::new("A", Value::Str("1".into())));
        assert_eq!(items[2], Item::new("B", Value::Str("x=y\nz".into())));
        assert_eq!(items[3], Item::new("C", Value::Str(String::new())));
        assert_eq!(emit(items).unwrap(), b"#c1\nA=1\nB=x=y\\nz\nC=\n");
        assert!(parse(b"A=1\nnope\n").unwrap_err().contains("line 2"));
    }
}
