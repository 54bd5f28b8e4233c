//! The plaintext of a whole decrypted file, as sops-nix installs a secret whose `key` is `""`
//! (sops `EmitPlainFile`): binary as its bytes, dotenv and INI in their stores' written forms,
//! YAML and JSON re-emitted from the tree in document order. YAML and JSON text is equivalent to
//! sops' output (same data, same order) but not byte-identical: strings that need it are
//! double-quoted, indentation is 4 (YAML) or a tab (JSON).

use super::tree::{go_format_float, Item, Key, Value};
use super::{dotenv, ini, Document, Format};

/// The whole plaintext file.
pub fn whole_file(doc: &Document) -> Result<Vec<u8>, String> {
    let first = doc.branches.first().map(Vec::as_slice).unwrap_or(&[]);
    match doc.format {
        Format::Binary => doc
            .binary_data()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "binary file without string data".to_string()),
        Format::Dotenv => dotenv::emit(first),
        Format::Ini => ini::emit(first),
        Format::Json => {
            let mut out = String::new();
            json_value(&Value::Map(first.to_vec()), 0, &mut out)?;
            out.push('\n');
            Ok(out.into_bytes())
        }
        Format::Yaml => {
            let mut out = String::new();
            for (i, b) in doc.branches.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                yaml_map(b, 0, &mut out)?;
            }
            Ok(out.into_bytes())
        }
    }
}

fn scalar_text(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::Str(s) => serde_json::to_string(s).expect("a string serializes"),
        Value::Bytes(_) => return Err("bytes that are not UTF-8 cannot be written as text".into()),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => ".nan".into(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Value::Float(f) => {
            let s = go_format_float(*f);
            // Keep a float a float when read back.
            if s.contains('.') {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Map(_) | Value::List(_) | Value::Comment(_) => unreachable!("not a scalar"),
    })
}

fn yaml_map(items: &[Item], indent: usize, out: &mut String) -> Result<(), String> {
    let pad = " ".repeat(indent);
    for item in items {
        match &item.key {
            Key::Comment(c) => out.push_str(&format!("{pad}#{c}\n")),
            Key::Name(k) => {
                let key = serde_json::to_string(k).expect("a string serializes");
                match &item.value {
                    Value::Map(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_map(m, indent + 4, out)?;
                    }
                    Value::List(l) if l.iter().any(|x| !matches!(x, Value::Comment(_))) => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        yaml_list(l, indent + 4, out)?;
                    }
                    Value::Map(_) => out.push_str(&format!("{pad}{key}: {{}}\n")),
                    Value::List(_) => out.push_str(&format!("{pad}{key}: []\n")),
                    v => out.push_str(&format!("{pad}{key}: {}\n", scalar_text(v)?)),
                }
            }
        }
    }
    Ok(())
}

fn yaml_list(items: &[Value], indent: usize, out: &mut String) -> Result<(), String> {
    let pad = " ".repeat(indent);
    for v in items {
        match v {
            Value::Comment(c) => out.push_str(&format!("{pad}#{c}\n")),
            Value::Map(m) if !m.is_empty() => {
                let mut sub = String::new();
                yaml_map(m, indent + 2, &mut sub)?;
                out.push_str(&format!("{pad}- {}", &sub[indent + 2..]));
            }
            Value::List(l) if l.iter().any(|x| !matches!(x, Value::Comment(_))) => {
                let mut sub = String::new();
                yaml_list(l, indent + 2, &mut sub)?;
                out.push_str(&format!("{pad}- {}", &sub[indent + 2..]));
            }
            Value::Map(_) => out.push_str(&format!("{pad}- {{}}\n")),
            Value::List(_) => out.push_str(&format!("{pad}- []\n")),
            v => out.push_str(&format!("{pad}- {}\n", scalar_text(v)?)),
        }
    }
    Ok(())
}

fn json_value(v: &Value, indent: usize, out: &mut String) -> Result<(), String> {
    let pad = "\t".repeat(indent + 1);
    let end = "\t".repeat(indent);
    match v {
        Value::Map(items) => {
            let named: Vec<&Item> = items.iter().filter(|i| i.name().is_some()).collect();
            if named.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push_str("{\n");
            for (n, i) in named.iter().enumerate() {
                let k = serde_json::to_string(i.name().unwrap_or_default()).expect("serializes");
                out.push_str(&format!("{pad}{k}: "));
                json_value(&i.value, indent + 1, out)?;
                out.push_str(if n + 1 < named.len() { ",\n" } else { "\n" });
            }
            out.push_str(&end);
            out.push('}');
        }
        Value::List(items) => {
            let vals: Vec<&Value> = items
                .iter()
                .filter(|x| !matches!(x, Value::Comment(_)))
                .collect();
            if vals.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push_str("[\n");
            for (n, x) in vals.iter().enumerate() {
                out.push_str(&pad);
                json_value(x, indent + 1, out)?;
                out.push_str(if n + 1 < vals.len() { ",\n" } else { "\n" });
            }
            out.push_str(&end);
            out.push(']');
        }
        Value::Float(f) if !f.is_finite() => {
            return Err("NaN or infinity cannot be written as JSON".into())
        }
        v => out.push_str(&scalar_text(v)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::yaml_json::{parse_json, parse_yaml};
    use super::*;

    fn doc(format: Format, branches: Vec<Vec<Item>>) -> Document {
        Document {
            format,
            branches,
            version: String::new(),
        }
    }

    #[test]
    fn yaml_and_json_read_back_the_same() {
        let text = "a: \"x: y\"\nl:\n  - 1\n  - [2, {k: v}]\n  - {}\nm:\n  f: 1.0\n  b: true\n  n: null\n  e: []\n";
        let b = parse_yaml(text.as_bytes()).unwrap();
        let y = whole_file(&doc(Format::Yaml, b.clone())).unwrap();
        assert_eq!(
            parse_yaml(&y).unwrap(),
            b,
            "{}",
            String::from_utf8_lossy(&y)
        );
        let j = whole_file(&doc(Format::Json, b.clone())).unwrap();
        assert_eq!(
            parse_json(&j).unwrap(),
            b,
            "{}",
            String::from_utf8_lossy(&j)
        );
    }
}
