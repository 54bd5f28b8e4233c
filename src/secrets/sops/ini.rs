//! The INI store (sops stores/ini, on go-ini v1 with its default options): sections in file
//! order, each a mapping of its keys; the implicit `DEFAULT` section first. Every value is a
//! string. Metadata is the `[sops]` section with flattened keys.
//!
//! go-ini's reading rules kept here: `=` or `:` ends a key name (keys may be quoted with `"`,
//! `"""` or backticks); a value is trimmed, may be quoted with `"""` or backticks (and then may
//! span lines), loses a trailing inline comment (from the first `#` or `;`), then one pair of
//! surrounding `'` or `"`; a trailing `\` continues it on the next line. Comment lines (`#`,
//! `;`) belong to the key or section after them, an inline comment to its own key; sops lists a
//! key's comment after the key. A repeated key in a section replaces the earlier value in
//! place.

use super::tree::{Item, Key, Value};

struct Section {
    name: String,
    comment: String,
    keys: Vec<(String, String, String)>,
}

/// Parse an INI file into one branch: one item per section.
pub fn parse(data: &[u8]) -> Result<Vec<Vec<Item>>, String> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let mut lines = text.split_inclusive('\n').enumerate().peekable();
    let mut sections = vec![Section {
        name: "DEFAULT".into(),
        comment: String::new(),
        keys: Vec::new(),
    }];
    let mut comment = String::new();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() {
            continue;
        }
        let at = |what: String| format!("line {}: {what}", n + 1);
        if line.starts_with(['#', ';']) {
            comment.push_str(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let close = rest
                .rfind(']')
                .ok_or_else(|| at("unclosed section header".into()))?;
            let name = &rest[..close];
            if name.is_empty() {
                return Err(at("empty section name".into()));
            }
            if let Some(i) = rest[close + 1..].find(['#', ';']) {
                comment.push_str(&rest[close + 1 + i..]);
            }
            sections.push(Section {
                name: name.to_string(),
                comment: comment.trim().to_string(),
                keys: Vec::new(),
            });
            comment.clear();
            continue;
        }
        let (name, rest) = key_name(line).map_err(at)?;
        let value = read_value(rest, &mut lines, &mut comment).map_err(at)?;
        let section = sections.last_mut().expect("DEFAULT is always there");
        let key_comment = comment.trim().to_string();
        comment.clear();
        match section.keys.iter_mut().find(|k| k.0 == name) {
            Some(k) => {
                k.1 = value;
                k.2 = key_comment;
            }
            None => section.keys.push((name, value, key_comment)),
        }
    }
    let mut branch = Vec::new();
    for s in sections {
        let mut items = Vec::new();
        if !s.comment.is_empty() {
            items.push(Item::comment(strip_comment_char(&s.comment)));
        }
        for (k, v, c) in s.keys {
            items.push(Item::new(k, Value::Str(v)));
            if !c.is_empty() {
                items.push(Item::comment(strip_comment_char(&c)));
            }
        }
        branch.push(Item::new(s.name, Value::Map(items)));
    }
    Ok(vec![branch])
}

/// sops' `stripCommentChar`: drop the leading run of `; ` (or `# `) characters.
fn strip_comment_char(c: &str) -> String {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_string()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_string()
    } else {
        c.to_string()
    }
}

/// go-ini `readKeyName` with delimiters `=` and `:`.
fn key_name(line: &str) -> Result<(String, &str), String> {
    let quote = if line.len() > 6 && line.starts_with("\"\"\"") {
        "\"\"\""
    } else if line.starts_with('"') {
        "\""
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if !quote.is_empty() {
        let body = &line[quote.len()..];
        let end = body
            .find(quote)
            .ok_or_else(|| "missing closing key quote".to_string())?;
        let after = &body[end + quote.len()..];
        let d = after
            .find(['=', ':'])
            .ok_or_else(|| "no '=' after the key".to_string())?;
        return Ok((body[..end].trim().to_string(), &after[d + 1..]));
    }
    let d = line
        .find(['=', ':'])
        .ok_or_else(|| "not key = value, a [section] or a comment".to_string())?;
    if d == 0 {
        return Err("empty key name".into());
    }
    Ok((line[..d].trim().to_string(), &line[d + 1..]))
}

fn has_surrounded_quote(s: &str, q: char) -> bool {
    s.len() >= 2 && s.starts_with(q) && s.ends_with(q) && s[1..].find(q) == Some(s.len() - 2)
}

/// go-ini `readValue` (default options).
fn read_value<'a>(
    rest: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    comment: &mut String,
) -> Result<String, String> {
    let line = rest.trim_start();
    if line.is_empty() {
        return Ok(String::new());
    }
    let quote = if line.len() > 3 && line.starts_with("\"\"\"") {
        "\"\"\""
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if !quote.is_empty() {
        let body = &line[quote.len()..];
        if let Some(p) = body.rfind(quote) {
            return Ok(body[..p].to_string());
        }
        // A quoted value that goes on over the next lines, up to the closing quote.
        let mut val = body.to_string();
        for (_, next) in lines.by_ref() {
            if let Some(p) = next.rfind(quote) {
                val.push_str(&next[..p]);
                if let Some(i) = next[p..].find(['#', ';']) {
                    comment.push_str(next[p + i..].trim());
                }
                return Ok(val);
            }
            val.push_str(next);
        }
        return Err(format!("missing closing {quote} quote of a value"));
    }
    let mut line = line.trim().to_string();
    if line.ends_with('\\') {
        // Continuation lines: joined trimmed, up to an empty line or one not ending in `\`.
        line.pop();
        for (_, next) in lines.by_ref() {
            let next = next.trim();
            if next.is_empty() {
                break;
            }
            line.push_str(next);
            if !line.ends_with('\\') {
                break;
            }
            line.pop();
        }
        return Ok(line);
    }
    if let Some(i) = line.find(['#', ';']) {
        comment.push_str(&line[i..]);
        line = line[..i].trim().to_string();
    }
    if has_surrounded_quote(&line, '\'') || has_surrounded_quote(&line, '"') {
        line = line[1..line.len() - 1].to_string();
    }
    Ok(line)
}

/// The plaintext INI file of decrypted sections, in go-ini's written form as sops emits it
/// (sops-nix installs a whole INI file this way): comments as `; …`, values quoted where
/// go-ini quotes them (newline or backtick: `"""`; `#`/`;`: backticks; outer spaces: `"`).
pub fn emit(branch: &[Item]) -> Result<Vec<u8>, String> {
    let mut out = String::new();
    for section in branch {
        let Key::Name(name) = &section.key else {
            continue;
        };
        let Value::Map(items) = &section.value else {
            return Err(format!("[{name}]: a section must be a mapping"));
        };
        let keys: Vec<&Item> = items.iter().filter(|i| i.name().is_some()).collect();
        let mut first = 0;
        if let Some(Item {
            key: Key::Comment(c),
            ..
        }) = items.first()
        {
            out.push_str(&format!("; {c}\n"));
            first = 1;
        }
        // go-ini writes no header for a leading DEFAULT section (its keys come first).
        let leading_default = name == "DEFAULT" && out.is_empty();
        if leading_default && keys.is_empty() {
            continue;
        }
        if !leading_default {
            out.push_str(&format!("[{name}]\n"));
        }
        let width = keys.iter().map(|i| key_text(i).len()).max().unwrap_or(0);
        let mut pending: Option<&str> = None;
        for item in &items[first..] {
            match &item.key {
                Key::Comment(c) => pending = Some(c),
                Key::Name(_) => {
                    if let Some(c) = pending.take() {
                        out.push_str(&format!("; {c}\n"));
                    }
                    let k = key_text(item);
                    let v = match &item.value {
                        Value::Str(s) => s.clone(),
                        Value::Map(_) | Value::List(_) => {
                            return Err(format!(
                                "[{name}] {k}: an INI value cannot be {}",
                                item.value.a_type_name()
                            ))
                        }
                        other => String::from_utf8_lossy(&other.leaf_bytes().unwrap_or_default())
                            .into_owned(),
                    };
                    let v = if v.contains(['\n', '`']) {
                        format!("\"\"\"{v}\"\"\"")
                    } else if v.contains(['#', ';']) {
                        format!("`{v}`")
                    } else if v.trim() != v {
                        format!("\"{v}\"")
                    } else {
                        v
                    };
                    out.push_str(&format!("{k:<width$} = {v}\n"));
                }
            }
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out.into_bytes())
}

fn key_text(item: &Item) -> String {
    let k = item.name().unwrap_or_default();
    if k.contains(['"', '=', ':']) {
        format!("`{k}`")
    } else if k.contains('`') {
        format!("\"\"\"{k}\"\"\"")
    } else {
        k.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section<'a>(b: &'a [Item], name: &str) -> &'a [Item] {
        match &b.iter().find(|i| i.name() == Some(name)).unwrap().value {
            Value::Map(m) => m,
            _ => panic!(),
        }
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn go_ini_reading_rules() {
        let text = "top = 1\n; about s\n[s]\na = x ; note\nb: 'q'\n`c=d` = \"\"\"l1\nl2\"\"\"\n\
                    e = \"  spaced\"\nf = a\\\n  b\nb = r\n[empty]\n";
        let b = &parse(text.as_bytes()).unwrap()[0];
        assert_eq!(
            b.iter().map(|i| i.name().unwrap()).collect::<Vec<_>>(),
            ["DEFAULT", "s", "empty"]
        );
        assert_eq!(section(b, "DEFAULT"), &[Item::new("top", s("1"))]);
        let sec = section(b, "s");
        assert_eq!(sec[0], Item::comment("about s"));
        assert_eq!(sec[1], Item::new("a", s("x")));
        // go-ini gives an inline comment to its own key; sops lists it after the key.
        assert_eq!(sec[2], Item::comment("note"));
        // A repeated key replaces the value in place.
        assert_eq!(sec[3], Item::new("b", s("r")));
        assert_eq!(sec[4], Item::new("c=d", s("l1\nl2")));
        assert_eq!(sec[5], Item::new("e", s("  spaced")));
        assert_eq!(sec[6], Item::new("f", s("ab")));
        assert!(section(b, "empty").is_empty());
        assert!(parse(b"[s\n").unwrap_err().contains("line 1"));
        assert!(parse(b"[s]\njunk\n").unwrap_err().contains("line 2"));
    }

    #[test]
    fn emit_reads_back() {
        let text = "[s]\na = x\nmulti = \"\"\"l1\nl2\"\"\"\nhash = `a#b`\nsp = \" x \"\n";
        let b = &parse(text.as_bytes()).unwrap()[0];
        let out = emit(b).unwrap();
        assert_eq!(&parse(&out).unwrap()[0], b);
    }
}
