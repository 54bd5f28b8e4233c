//! Kernel command line parser (DESIGN §4), written to the kernel's own rules
//! (`lib/cmdline.c: next_arg`, `kernel/params.c: parameq`):
//!
//! - parameters are split on whitespace outside double quotes;
//! - `key="a b"` and `"key=a b"` both give the value `a b` (a leading quote of the value and a
//!   closing quote at the end of the parameter are removed, nothing else);
//! - `-` and `_` are the same in key names (keys are normalised to `_`);
//! - a bare key has no value (a boolean key then means true);
//! - the last occurrence of a key wins;
//! - everything after a bare `--` belongs to init and is not ours;
//! - the trailing newline of `/proc/cmdline` is not part of the last value.

use std::fmt;

/// One `key[=value]` parameter, key normalised (`-` → `_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    pub value: Option<String>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Split a command line into parameters with the kernel's rules.
pub fn parse_params(line: &str) -> Vec<Param> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        // One argument: [start, end) in `chars`.
        let mut start = i;
        let mut quoted = false;
        if chars[start] == '"' {
            start += 1;
            quoted = true;
        }
        let mut in_quote = quoted;
        let mut equals: Option<usize> = None;
        let mut j = start;
        while j < chars.len() {
            let c = chars[j];
            if is_space(c) && !in_quote {
                break;
            }
            if equals.is_none() && c == '=' {
                equals = Some(j);
            }
            if c == '"' {
                in_quote = !in_quote;
            }
            j += 1;
        }
        let end = j;
        i = end;
        let arg: &[char] = &chars[start..end];
        let (key, value) = match equals {
            None => {
                let mut k: &[char] = arg;
                if quoted && k.last() == Some(&'"') {
                    k = &k[..k.len() - 1];
                }
                (k, None)
            }
            Some(eq) => {
                let k = &chars[start..eq];
                let mut v: &[char] = &chars[eq + 1..end];
                let mut strip_end = quoted;
                if v.first() == Some(&'"') {
                    v = &v[1..];
                    strip_end = true;
                }
                if strip_end && v.last() == Some(&'"') {
                    v = &v[..v.len() - 1];
                }
                (k, Some(v))
            }
        };
        // Only a literal `--` ends our part (the kernel compares before normalising, so `__` is
        // an ordinary parameter).
        if key == ['-', '-'] && value.is_none() {
            break; // the rest is init's
        }
        let key: String = key
            .iter()
            .map(|&c| if c == '-' { '_' } else { c })
            .collect();
        out.push(Param {
            key,
            value: value.map(|v| v.iter().collect()),
        });
    }
    out
}

/// The words a boolean value may be for true (DESIGN §4), in any case; the man page lists these.
pub const TRUE_WORDS: &[&str] = &["1", "yes", "true", "on"];
/// The words for false.
pub const FALSE_WORDS: &[&str] = &["0", "no", "false", "off"];

/// Parse a boolean: one of [`TRUE_WORDS`] or [`FALSE_WORDS`], in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(s));
    if is(TRUE_WORDS) {
        Some(true)
    } else if is(FALSE_WORDS) {
        Some(false)
    } else {
        None
    }
}

/// What `<prefix>.provision_disks` asks for (DESIGN §6.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "token", rename_all = "kebab-case")]
pub enum ProvisionRequest {
    /// Absent, or a false boolean: mount-only.
    No,
    /// A true boolean: provision on every boot that carries it (the compatible flag).
    Always,
    /// A wipe-once token: provision only if not yet consumed on these disks.
    Token(String),
}

/// What `<prefix>.wipe_foreign` allows (DESIGN §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(tag = "kind", content = "disks", rename_all = "kebab-case")]
pub enum WipeForeign {
    #[default]
    No,
    /// Every target disk may hold foreign content that will be wiped.
    All,
    /// Only these disks (layout disk names or device paths).
    Disks(Vec<String>),
}

impl WipeForeign {
    pub fn allows(&self, disk_name: &str, device: &str) -> bool {
        match self {
            WipeForeign::No => false,
            WipeForeign::All => true,
            WipeForeign::Disks(d) => d.iter().any(|x| x == disk_name || x == device),
        }
    }
}

/// A recognised key whose value could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadValue {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel cmdline: {}={:?}: {}",
            self.key, self.value, self.reason
        )
    }
}

/// The settings this agent takes from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// The prefix in use, e.g. `homelab`.
    pub prefix: String,
    pub provision: ProvisionRequest,
    pub wipe_foreign: WipeForeign,
    pub hostname: Option<String>,
    pub keys_url: Option<String>,
    /// Lower-case hex sha256 of the key bundle.
    pub keys_sha256: Option<String>,
    /// MAC address from `BOOTIF=01-aa-bb-…`, as `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Recognised keys with values that could not be parsed. Any entry here for
    /// `provision_disks` or `wipe_foreign` stops the destructive path.
    pub bad: Vec<BadValue>,
    /// Unknown keys under our prefix (probably typos), to be warned about.
    pub unknown: Vec<String>,
}

impl Settings {
    /// Bad values of keys that govern the destructive path.
    pub fn bad_destructive(&self) -> impl Iterator<Item = &BadValue> {
        let p = format!("{}.", self.prefix);
        self.bad.iter().filter(move |b| {
            b.key == format!("{p}provision_disks") || b.key == format!("{p}wipe_foreign")
        })
    }

    /// The bad value (if any) of one of our keys (name without prefix).
    pub fn bad_value(&self, name: &str) -> Option<&BadValue> {
        let full = format!("{}.{}", self.prefix, name);
        self.bad.iter().find(|b| b.key == full)
    }
}

/// A token must look like one: 1–128 chars of `[A-Za-z0-9._:+-]` with at least one digit, so that
/// a misspelt boolean (`ture`, `maybe`, `yes!`) is never mistaken for a token.
fn parse_token(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("empty value: use true/false or a wipe-once token".into());
    }
    if v.len() > 128 {
        return Err("token longer than 128 characters".into());
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '+' | '-')))
    {
        return Err(format!(
            "neither a boolean nor a wipe-once token (character {c:?} not allowed in a token)"
        ));
    }
    if !v.chars().any(|c| c.is_ascii_digit()) {
        return Err(
            "neither a boolean (1/0, yes/no, true/false, on/off) nor a wipe-once token \
                    (a token must contain a digit, e.g. rebuild-2026-11-22)"
                .into(),
        );
    }
    Ok(v.to_string())
}

fn parse_mac_bootif(v: &str) -> Result<String, String> {
    // pxelinux/iPXE: "01-aa-bb-cc-dd-ee-ff" (ARP hardware type 1 = Ethernet, then the MAC).
    let parts: Vec<&str> = v.split(['-', ':']).collect();
    let mac = match parts.len() {
        7 => &parts[1..],
        6 => &parts[..],
        _ => return Err("expected 01-aa-bb-cc-dd-ee-ff".into()),
    };
    if mac
        .iter()
        .any(|p| p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err("expected 01-aa-bb-cc-dd-ee-ff".into());
    }
    Ok(mac.join(":").to_ascii_lowercase())
}

/// Check a hostname the way RFC 1123 allows (labels of letters, digits and `-`).
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// One kernel command line key this agent reads. [`KEYS`] is the one list of them: [`settings`]
/// recognises exactly these names and parses each value with its `apply`; `provision(8)` (KERNEL
/// COMMAND LINE) and the README's table are made from the same entries.
pub struct KeySpec {
    /// The name after `<prefix>.` (`provision_disks`, with `_` as the parser normalises it), or
    /// the whole key when not `prefixed` (`BOOTIF`).
    pub name: &'static str,
    /// Under the configured prefix (`homelab.` by default) or a key of its own (`BOOTIF`).
    pub prefixed: bool,
    /// The values it takes and what they do, as the man page and README print it (Markdown
    /// inline: `code`, **bold**).
    pub doc: &'static str,
    /// Sets the key's field of [`Settings`] from one occurrence's value (`None`: a bare key).
    /// On error the field is left at its default and the reason is recorded as a [`BadValue`].
    apply: fn(&mut Settings, Option<&str>) -> Result<(), String>,
}

impl KeySpec {
    /// The key as written on a command line with this prefix: `homelab.provision_disks`, `BOOTIF`.
    pub fn key(&self, prefix: &str) -> String {
        if self.prefixed {
            format!("{prefix}.{}", self.name)
        } else {
            self.name.to_string()
        }
    }
}

/// Every key this agent understands, in the order the documentation lists them.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "provision_disks",
        prefixed: true,
        doc: "`true` (bare, `1`, `yes`, `on`): provision on **every** boot that carries it (the \
              old meaning; logged loudly). A **wipe-once token** — 1–128 characters of \
              `A-Z a-z 0-9 . _ : + -` containing at least one digit, e.g. `rebuild-2026-11-22` — \
              provisions only if that token is not yet recorded on the layout's VGs (tag \
              `provision.token=<token>`, written after the whole layout is complete, so an \
              interrupted run re-provisions with the same token and a finished one never wipes \
              again). `false`/absent: mount-only. Anything else (`maybe`, `ture`, empty) is an \
              error and **nothing is wiped** (exit 3). A token must contain a digit so that a \
              misspelt boolean can never be taken for a token.",
        apply: apply_provision_disks,
    },
    KeySpec {
        name: "wipe_foreign",
        prefixed: true,
        doc: "`true` (bare): every target disk may hold foreign data that will be wiped. A comma \
              list of layout disk names or device paths (`hdd,/dev/sdb`): only those. Default: \
              foreign data is wiped only on disks named by `/dev/disk/by-id/…` or a serial/WWN \
              selector.",
        apply: apply_wipe_foreign,
    },
    KeySpec {
        name: "hostname",
        prefixed: true,
        doc: "hostname for the keys URL's `{hostname}` (default: the kernel hostname)",
        apply: apply_hostname,
    },
    KeySpec {
        name: "keys_url",
        prefixed: true,
        doc: "overrides the config's `keys.url` (same placeholders)",
        apply: apply_keys_url,
    },
    KeySpec {
        name: "keys_sha256",
        prefixed: true,
        doc: "expected sha256 of the key bundle (64 hex digits)",
        apply: apply_keys_sha256,
    },
    KeySpec {
        name: "BOOTIF",
        prefixed: false,
        doc: "`01-aa-bb-cc-dd-ee-ff`: the pxelinux/iPXE boot interface; gives the keys URL's \
              `{mac}` = `aa:bb:cc:dd:ee:ff`",
        apply: apply_bootif,
    },
];

fn apply_provision_disks(s: &mut Settings, v: Option<&str>) -> Result<(), String> {
    s.provision = ProvisionRequest::No; // what a bad value leaves
    s.provision = match v {
        None => ProvisionRequest::Always,
        Some(v) => match parse_bool(v) {
            Some(true) => ProvisionRequest::Always,
            Some(false) => ProvisionRequest::No,
            None => ProvisionRequest::Token(parse_token(v)?),
        },
    };
    Ok(())
}

fn apply_wipe_foreign(s: &mut Settings, v: Option<&str>) -> Result<(), String> {
    s.wipe_foreign = WipeForeign::No; // what a bad value leaves
    s.wipe_foreign = match v {
        None => WipeForeign::All,
        Some(v) => match parse_bool(v) {
            Some(true) => WipeForeign::All,
            Some(false) => WipeForeign::No,
            None => {
                let disks: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect();
                if disks.is_empty() {
                    return Err("expected a boolean or a comma-separated list of disks".into());
                }
                WipeForeign::Disks(disks)
            }
        },
    };
    Ok(())
}

fn apply_hostname(s: &mut Settings, v: Option<&str>) -> Result<(), String> {
    s.hostname = None;
    match v {
        Some(v) if valid_hostname(v) => s.hostname = Some(v.to_string()),
        Some(_) => return Err("not a valid hostname (RFC 1123)".into()),
        None => return Err("needs a value".into()),
    }
    Ok(())
}

fn apply_keys_url(s: &mut Settings, v: Option<&str>) -> Result<(), String> {
    s.keys_url = None;
    match v {
        Some(v)
            if (v.starts_with("http://") || v.starts_with("https://"))
                && !v.chars().any(char::is_whitespace) =>
        {
            s.keys_url = Some(v.to_string());
            Ok(())
        }
        _ => Err("expected an http:// or https:// URL".into()),
    }
}

fn apply_keys_sha256(s: &mut Settings, v: Option<&str>) -> Result<(), String> {
    s.keys_sha256 = None;
    match v {
        Some(v) if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) => {
            s.keys_sha256 = Some(v.to_ascii_lowercase());
            Ok(())
        }
        _ => Err("expected 64 hex digits (a sha256)".into()),
    }
}

fn apply_bootif(s: &mut Settings, v: Option<&str>) -> Result<(), String> {
    s.mac = None;
    if let Some(v) = v {
        s.mac = Some(parse_mac_bootif(v)?);
    }
    Ok(())
}

/// Parse a whole command line into our settings. `prefix` is e.g. `homelab` (no dot).
pub fn settings(line: &str, prefix: &str) -> Settings {
    let params = parse_params(line);
    let norm_prefix: String = prefix
        .chars()
        .map(|c| if c == '-' { '_' } else { c })
        .collect();
    let mut s = Settings {
        prefix: norm_prefix.clone(),
        provision: ProvisionRequest::No,
        wipe_foreign: WipeForeign::No,
        hostname: None,
        keys_url: None,
        keys_sha256: None,
        mac: None,
        bad: Vec::new(),
        unknown: Vec::new(),
    };
    // Last occurrence wins: fold over params in order, each occurrence replacing the earlier one
    // (and clearing an earlier bad value of the same key).
    for p in &params {
        let spec = match KEYS.iter().find(|k| !k.prefixed && k.name == p.key) {
            Some(k) => k,
            None => {
                let Some(name) = p
                    .key
                    .strip_prefix(norm_prefix.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                else {
                    continue;
                };
                match KEYS.iter().find(|k| k.prefixed && k.name == name) {
                    Some(k) => k,
                    None => {
                        if !s.unknown.contains(&p.key) {
                            s.unknown.push(p.key.clone());
                        }
                        continue;
                    }
                }
            }
        };
        s.bad.retain(|b| b.key != p.key);
        if let Err(reason) = (spec.apply)(&mut s, p.value.as_deref()) {
            s.bad.push(BadValue {
                key: p.key.clone(),
                value: p.value.clone().unwrap_or_default(),
                reason,
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(line: &str) -> Vec<(String, Option<String>)> {
        parse_params(line)
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    type Case<'a> = (&'a str, Vec<(&'a str, Option<String>)>);

    #[test]
    fn kernel_splitting_rules() {
        let s = |x: &str| Some(x.to_string());
        let cases: &[Case] = &[
            ("", vec![]),
            ("   \n", vec![]),
            ("a", vec![("a", None)]),
            ("a=1 b=2\n", vec![("a", s("1")), ("b", s("2"))]),
            ("k=\"a b\"", vec![("k", s("a b"))]),
            ("\"k=a b\"", vec![("k", s("a b"))]),
            ("\"k=a b\" x", vec![("k", s("a b")), ("x", None)]),
            ("k=\"a b\"\n", vec![("k", s("a b"))]),
            ("k=a\"b c\"", vec![("k", s("a\"b c\""))]),
            ("k=", vec![("k", s(""))]),
            ("k==v", vec![("k", s("=v"))]),
            ("a-b_c=1", vec![("a_b_c", s("1"))]),
            ("\ta=1\t\tb", vec![("a", s("1")), ("b", None)]),
            ("k=\"unterminated x", vec![("k", s("unterminated x"))]),
            ("a=1 -- b=2", vec![("a", s("1"))]),
            ("\"quoted\"", vec![("quoted", None)]),
            ("k=v\r\n", vec![("k", s("v"))]),
        ];
        for (line, want) in cases {
            let want: Vec<(String, Option<String>)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(kv(line), want, "cmdline {line:?}");
        }
    }

    #[test]
    fn provision_disks_values() {
        use ProvisionRequest::*;
        let cases: &[(&str, ProvisionRequest, bool)] = &[
            ("", No, false),
            ("homelab.provision_disks", Always, false),
            ("homelab.provision_disks=true", Always, false),
            ("homelab.provision-disks=1", Always, false),
            ("homelab.provision_disks=YES", Always, false),
            ("homelab.provision_disks=on", Always, false),
            ("homelab.provision_disks=false", No, false),
            ("homelab.provision_disks=0", No, false),
            ("homelab.provision_disks=off", No, false),
            ("homelab.provision_disks=no", No, false),
            ("homelab.provision_disks=tok1", Token("tok1".into()), false),
            (
                "homelab.provision_disks=rebuild-2026-11-22",
                Token("rebuild-2026-11-22".into()),
                false,
            ),
            ("homelab.provision_disks=maybe", No, true),
            ("homelab.provision_disks=ture", No, true),
            ("homelab.provision_disks=", No, true),
            ("homelab.provision_disks=\"a b 1\"", No, true),
            // last occurrence wins, and clears an earlier bad value
            (
                "homelab.provision_disks=maybe homelab.provision_disks=false",
                No,
                false,
            ),
            (
                "homelab.provision_disks=true homelab.provision_disks=maybe",
                No,
                true,
            ),
            (
                "homelab.provision_disks=1 homelab.provision_disks=0",
                No,
                false,
            ),
            // other prefixes are not ours; after -- is init's
            ("other.provision_disks=true", No, false),
            ("-- homelab.provision_disks=true", No, false),
        ];
        for (line, want, bad) in cases {
            let s = settings(line, "homelab");
            assert_eq!(&s.provision, want, "cmdline {line:?}");
            assert_eq!(s.bad_destructive().count() > 0, *bad, "cmdline {line:?}");
        }
    }

    #[test]
    fn keys_list_is_what_the_parser_knows() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(!k.name.contains('-') && !k.doc.is_empty(), "{}", k.name);
            assert!(
                KEYS[..i].iter().all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
            let line = k.key("site");
            let s = settings(&line, "site");
            assert!(s.unknown.is_empty(), "{line}: {:?}", s.unknown);
            // Every key of ours refuses an empty value, and names itself for it.
            let s = settings(&format!("{line}="), "site");
            assert_eq!(s.bad.len(), 1, "{line}");
            assert_eq!(s.bad[0].key, line);
        }
        assert_eq!(KEYS[0].key("homelab"), "homelab.provision_disks");
        let s = settings(
            "site.keys_url=https://x site.nope=1 BOOTIF=01-52-54-00-aa-bb-cc",
            "site",
        );
        assert_eq!(s.unknown, vec!["site.nope".to_string()]);
        assert!(s.bad.is_empty() && s.keys_url.is_some() && s.mac.is_some());
    }

    #[test]
    fn other_keys() {
        let s = settings(
            "BOOT_IMAGE=/vmlinuz homelab.hostname=node-1 homelab.keys_url=\"https://boot/k/{hostname}.tar.gz\" \
             homelab.keys_sha256=ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789 \
             BOOTIF=01-AA-bb-cc-dd-ee-ff homelab.provison_disks=true homelab.wipe_foreign=nvme,hdd\n",
            "homelab",
        );
        assert_eq!(s.hostname.as_deref(), Some("node-1"));
        assert_eq!(
            s.keys_url.as_deref(),
            Some("https://boot/k/{hostname}.tar.gz")
        );
        assert_eq!(
            s.keys_sha256.as_deref(),
            Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
        );
        assert_eq!(s.mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(s.unknown, vec!["homelab.provison_disks".to_string()]);
        assert_eq!(
            s.wipe_foreign,
            WipeForeign::Disks(vec!["nvme".into(), "hdd".into()])
        );
        assert_eq!(s.provision, ProvisionRequest::No);
        assert!(s.bad.is_empty(), "{:?}", s.bad);

        let s = settings(
            "homelab.hostname=-bad homelab.keys_sha256=xyz homelab.keys_url=ftp://x BOOTIF=zz",
            "homelab",
        );
        let keys: Vec<&str> = s.bad.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "homelab.hostname",
                "homelab.keys_sha256",
                "homelab.keys_url",
                "BOOTIF"
            ]
        );
        assert!(s.hostname.is_none() && s.keys_sha256.is_none() && s.keys_url.is_none());
        assert_eq!(s.bad_destructive().count(), 0);
        let s = settings(
            "homelab.wipe_foreign=maybe, homelab.wipe-foreign",
            "homelab",
        );
        assert_eq!(s.wipe_foreign, WipeForeign::All);
        let s = settings("site.provision_disks=yes", "site");
        assert_eq!(s.provision, ProvisionRequest::Always);
    }
}
