//! The walker every type's parser uses: reads one object's fields by name, collects every
//! problem with its path in the layout, reports what is left over as unknown; and disko's two
//! argument-list semantics ([`ArgList`]).

use serde_json::Value;
use std::collections::BTreeMap;

const HOOKS: &[&str] = &[
    "preCreateHook",
    "postCreateHook",
    "preMountHook",
    "postMountHook",
];

/// Walks a layout, collecting problems (each with its path) instead of stopping at the first.
pub struct Walker<'t> {
    pub(super) problems: Vec<String>,
    /// disko's `name` of the disk being read (default: its key with `/` as `_`, disk.nix): the
    /// middle of its partitions' default GPT labels.
    pub(super) disk_name: String,
    /// The device types, in registry order: what a `content` may be.
    pub(super) types: &'t [&'t dyn super::NodeType],
}

/// One object being read: fields are taken one by one, what is left over is unknown.
pub struct Obj<'a> {
    pub(crate) path: String,
    pub(crate) map: BTreeMap<&'a str, &'a Value>,
}

impl Walker<'_> {
    pub(crate) fn err(&mut self, path: &str, msg: impl Into<String>) {
        let msg = msg.into();
        if path.is_empty() {
            self.problems.push(msg);
        } else {
            self.problems.push(format!("{path}: {msg}"));
        }
    }

    pub(crate) fn obj<'a>(&mut self, path: &str, v: &'a Value) -> Option<Obj<'a>> {
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
    pub(crate) fn finish(&mut self, o: Obj<'_>) {
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

    pub(crate) fn string(&mut self, o: &mut Obj<'_>, key: &str) -> Option<String> {
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

    pub(crate) fn required_string(&mut self, o: &mut Obj<'_>, key: &str) -> Option<String> {
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

    pub(crate) fn boolean(&mut self, o: &mut Obj<'_>, key: &str) -> Option<bool> {
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

    pub(crate) fn int(&mut self, o: &mut Obj<'_>, key: &str) -> Option<i64> {
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
    pub(crate) fn strings(&mut self, o: &mut Obj<'_>, key: &str) -> Vec<String> {
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
    pub(crate) fn args(&mut self, o: &mut Obj<'_>, key: &str, how: ArgList) -> Vec<String> {
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

    pub(crate) fn node_type(&mut self, o: &mut Obj<'_>) -> Option<String> {
        self.required_string(o, "type")
    }

    pub(crate) fn check_mountpoint(&mut self, path: &str, m: &str) {
        if !m.starts_with('/') || m.split('/').any(|c| c == ".." || c == ".") || m.contains('\0') {
            self.err(
                path,
                format!("mountpoint {m:?}: expected an absolute path without . or .."),
            );
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

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::super::one;
    use super::*;
    use crate::layout::{Content, Layout, LayoutErrors};

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
}
