//! The `keys:` section of the config: its fields and defaults, the URL template
//! (`{hostname}`, `{mac}`), private-key modes, and every problem that can be found offline
//! ([`check_config`], for `validate` and before a run).

use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use reqwest::Url;

use super::bundle;
use crate::exit::{coded, Code};

/// Mode of the derived `.pub` files.
pub const PUB_MODE: u32 = 0o644;

/// Default mode of installed private keys.
pub const KEY_MODE: u32 = 0o600;

/// The `keys:` section of the config. Every field is optional; the defaults are those of the
/// seed setup (members `root_privkey` and `host_privkey`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// URL template of the key bundle, e.g. `http://boot.homelab.tel/keys/{hostname}.tar.gz`.
    /// `{hostname}` is the cmdline's `<prefix>.hostname`, else the kernel hostname; `{mac}` is
    /// the boot interface's MAC from `BOOTIF=01-aa-bb-…`, as `aa:bb:cc:dd:ee:ff`. The cmdline's
    /// `<prefix>.keys_url` (same placeholders) overrides it. One of the two must be given.
    pub url: Option<String>,
    /// Expected sha256 of the bundle (64 hex digits). The cmdline's `<prefix>.keys_sha256`
    /// overrides it. Default: none.
    pub sha256: Option<String>,
    /// PEM file with the CA certificate(s) that signed the boot server's HTTPS certificate;
    /// when set, only these are trusted (not the system roots). Absolute paths are on the
    /// target system (under `--root`), relative ones relative to the config file. Only valid
    /// with an `https://` URL. Default: none (an https URL is checked against the system roots).
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` without a sha256 (no verification at all; warned about at every
    /// boot). Default: false, and such a setup is refused.
    pub insecure: bool,
    /// Seconds allowed to open a connection (TCP + TLS). Default 5.
    pub connect_timeout_s: f64,
    /// Seconds allowed for one whole request, body included. Default 30.
    pub request_timeout_s: f64,
    /// Overall deadline in seconds for all attempts; after it the stage fails (exit 6).
    /// Default 300 (a whole rack boots at once).
    pub deadline_s: f64,
    /// Wait before the first retry, in milliseconds; doubles after each failure. Each wait is
    /// drawn at random from [backoff/2, backoff] (jitter). Default 500.
    pub initial_backoff_ms: u64,
    /// Cap on a single wait between attempts, in milliseconds. Default 30000.
    pub max_backoff_ms: u64,
    /// Cap on the number of retries after the first attempt. Default: none (retry until the
    /// deadline).
    pub max_retries: Option<u32>,
    /// Cap, in bytes, on the downloaded bundle and (separately) on its unpacked tar stream.
    /// Default 1048576 (1 MiB).
    pub max_bundle_bytes: u64,
    /// Cap on the number of entries in the bundle (directories and ignored files count).
    /// Default 16.
    pub max_members: usize,
    /// Bundle member name → where it is installed. Members the bundle has but this map does not
    /// name are warned about and ignored. Giving `members` replaces the whole default map,
    /// which is `root_privkey: {path: /root/.ssh/id_ed25519}` and
    /// `host_privkey: {path: /etc/ssh/ssh_host_rsa_key}`.
    pub members: BTreeMap<String, MemberTarget>,
}

/// Where one bundle member is installed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberTarget {
    /// Absolute target path of the private key (under `--root`). `PATH.pub` is written next to
    /// it (mode 0644) with the derived public key. A missing `.ssh` parent is created 0700.
    pub path: PathBuf,
    /// File mode in octal, e.g. `"0600"` (the default). Quote it to be safe: a bare `0600` is
    /// read as the same string, but a bare `600` or `0o600` is a YAML number and is refused.
    /// Group bits are allowed (e.g. `"0640"`), bits for others are not.
    #[serde(default, deserialize_with = "de_mode")]
    pub mode: Option<u32>,
    /// The member may be missing from the bundle. Default false: a missing member is an error.
    #[serde(default)]
    pub optional: bool,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            url: None,
            sha256: None,
            ca_file: None,
            insecure: false,
            connect_timeout_s: 5.0,
            request_timeout_s: 30.0,
            deadline_s: 300.0,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            max_retries: None,
            max_bundle_bytes: 1024 * 1024,
            max_members: 16,
            members: default_members(),
        }
    }
}

/// The seed setup's mapping.
pub fn default_members() -> BTreeMap<String, MemberTarget> {
    let m = |p: &str| MemberTarget {
        path: PathBuf::from(p),
        mode: None,
        optional: false,
    };
    BTreeMap::from([
        ("root_privkey".to_string(), m("/root/.ssh/id_ed25519")),
        ("host_privkey".to_string(), m("/etc/ssh/ssh_host_rsa_key")),
    ])
}

/// Parse a mode given as an octal string: `"0600"`, `"600"` or `"0o600"`.
pub fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if !digits.is_empty() && m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "mode {s:?}: expected an octal mode such as \"0600\""
        )),
    }
}

fn de_mode<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        S(String),
        N(i64),
    }
    match Repr::deserialize(d)? {
        Repr::S(s) => parse_mode(&s).map(Some).map_err(serde::de::Error::custom),
        Repr::N(n) => Err(serde::de::Error::custom(format!(
            "mode {n}: write the mode as a quoted octal string, e.g. \"0600\" (a bare number is \
             ambiguous in YAML)"
        ))),
    }
}

fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Expand `{hostname}` and `{mac}` in a URL template; `lookup` is asked only for the
/// placeholders the template uses. Unknown placeholders and stray braces are errors.
pub fn expand_template(
    tpl: &str,
    mut lookup: impl FnMut(&str) -> Result<String>,
) -> Result<String> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        if rest[i..].starts_with('}') {
            return Err(coded(
                Code::BadInput,
                format!("keys URL {tpl:?}: stray '}}'"),
            ));
        }
        let Some(j) = rest[i..].find('}') else {
            return Err(coded(
                Code::BadInput,
                format!("keys URL {tpl:?}: unclosed '{{'"),
            ));
        };
        let name = &rest[i + 1..i + j];
        match name {
            "hostname" | "mac" => out.push_str(&lookup(name)?),
            _ => {
                return Err(coded(
                    Code::BadInput,
                    format!(
                        "keys URL {tpl:?}: unknown placeholder {{{name}}} (known: {{hostname}}, {{mac}})"
                    ),
                ))
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn parse_url(s: &str, origin: &str) -> Result<Url> {
    let url = Url::parse(s)
        .map_err(|e| coded(Code::BadInput, format!("{origin}: {s:?}: not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(coded(
            Code::BadInput,
            format!("{origin}: {s:?}: expected an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

/// Every problem with the `keys:` section that can be found offline (for `validate`).
pub fn check_config(cfg: &KeysConfig) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(u) = &cfg.url {
        match expand_template(u, |name| {
            Ok(match name {
                "hostname" => "host".into(),
                _ => "00:00:00:00:00:00".into(),
            })
        }) {
            Err(e) => p.push(format!("{e:#}")),
            Ok(x) => {
                if let Err(e) = parse_url(&x, "keys.url") {
                    p.push(format!("{e:#}"));
                }
            }
        }
    }
    if let Some(s) = &cfg.sha256 {
        if !valid_sha256(s) {
            p.push(format!("keys.sha256 {s:?}: expected 64 hex digits"));
        }
    }
    for (name, v) in [
        ("connect_timeout_s", cfg.connect_timeout_s),
        ("request_timeout_s", cfg.request_timeout_s),
        ("deadline_s", cfg.deadline_s),
    ] {
        if !(v.is_finite() && v > 0.0 && v < 1e9) {
            p.push(format!(
                "keys.{name}: {v}: expected a positive number of seconds"
            ));
        }
    }
    if cfg.initial_backoff_ms == 0 || cfg.max_backoff_ms < cfg.initial_backoff_ms {
        p.push(format!(
            "keys.initial_backoff_ms ({}) must be at least 1 and at most max_backoff_ms ({})",
            cfg.initial_backoff_ms, cfg.max_backoff_ms
        ));
    }
    if cfg.max_bundle_bytes == 0 {
        p.push("keys.max_bundle_bytes must be at least 1".into());
    }
    if cfg.max_members == 0 {
        p.push("keys.max_members must be at least 1".into());
    }
    if cfg.members.is_empty() {
        p.push("keys.members: empty; nothing would be installed".into());
    }
    let mut seen: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    for (name, t) in &cfg.members {
        let what = format!("keys.members.{name}");
        match bundle::normalize_member(name) {
            Ok(Some(n)) => {
                if let Some(other) = names.insert(n.clone(), name) {
                    p.push(format!("{what}: same member as {other:?}"));
                }
            }
            Ok(None) => p.push(format!("{what}: not a file name")),
            Err(why) => p.push(format!("{what}: {why}")),
        }
        let path = &t.path;
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            p.push(format!(
                "{what}.path {}: expected an absolute path without `..`",
                path.display()
            ));
        }
        let mode = t.mode.unwrap_or(KEY_MODE);
        if mode & 0o007 != 0 || mode & 0o400 == 0 || mode > 0o777 {
            p.push(format!(
                "{what}.mode {mode:04o}: a private key must be readable by its owner, not by \
                 others, with no special bits"
            ));
        }
        for target in [path.clone(), pub_path(path)] {
            if let Some(other) = seen.insert(target.clone(), name.clone()) {
                p.push(format!(
                    "{what}: {} is also written for member {other:?}",
                    target.display()
                ));
            }
        }
    }
    p
}

/// `PATH.pub` for a key path.
pub fn pub_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_os_string();
    s.push(".pub");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Result<KeysConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_seed_mapping() {
        let c = cfg("url: http://boot/keys/{hostname}.tar.gz\n").unwrap();
        assert_eq!(c.members, default_members());
        assert_eq!(
            c.members["root_privkey"].path,
            PathBuf::from("/root/.ssh/id_ed25519")
        );
        assert_eq!(
            c.members["host_privkey"].path,
            PathBuf::from("/etc/ssh/ssh_host_rsa_key")
        );
        assert!(!c.insecure);
        assert_eq!(c.max_bundle_bytes, 1 << 20);
        assert!(check_config(&c).is_empty());
    }

    #[test]
    fn config_errors() {
        assert!(cfg("urll: x\n")
            .unwrap_err()
            .contains("unknown field `urll`"));
        // YAML reads a bare 0600 as a string, so it is octal; a bare 600 is a number: refused.
        let e = cfg("members:\n  k:\n    path: /a\n    mode: 600\n").unwrap_err();
        assert!(e.contains("quoted octal string"), "{e}");
        let c = cfg("members:\n  k:\n    path: /a\n    mode: 0600\n").unwrap();
        assert_eq!(c.members["k"].mode, Some(0o600));
        let c = cfg("members:\n  k:\n    path: /a\n    mode: \"0640\"\n").unwrap();
        assert_eq!(c.members["k"].mode, Some(0o640));
        let cases = [
            ("url: ftp://x/{hostname}\n", "expected an http"),
            ("url: http://x/{host}\n", "unknown placeholder {host}"),
            ("url: http://x/{hostname\n", "unclosed"),
            ("sha256: abc\n", "64 hex digits"),
            ("deadline_s: 0\n", "deadline_s"),
            (
                "initial_backoff_ms: 5000\nmax_backoff_ms: 10\n",
                "initial_backoff_ms",
            ),
            ("members: {}\n", "empty"),
            ("members:\n  k: {path: rel/x}\n", "absolute path"),
            ("members:\n  k: {path: /a/../b}\n", "absolute path"),
            ("members:\n  ../k: {path: /a}\n", "`..`"),
            (
                "members:\n  k: {path: /a, mode: \"0644\"}\n",
                "not by others",
            ),
            (
                "members:\n  k: {path: /a}\n  j: {path: /a}\n",
                "also written for member",
            ),
            (
                "members:\n  k: {path: /a}\n  j: {path: /a.pub}\n",
                "also written for member",
            ),
        ];
        for (y, want) in cases {
            let c = cfg(y).unwrap();
            let p = check_config(&c).join("\n");
            assert!(p.contains(want), "{y:?}: {p}");
        }
    }

    #[test]
    fn templates() {
        let look = |n: &str| -> Result<String> {
            Ok(match n {
                "hostname" => "node-1".into(),
                _ => "aa:bb:cc:dd:ee:ff".into(),
            })
        };
        assert_eq!(
            expand_template("http://b/k/{hostname}.tar.gz", look).unwrap(),
            "http://b/k/node-1.tar.gz"
        );
        assert_eq!(
            expand_template("http://b/{mac}/{hostname}", look).unwrap(),
            "http://b/aa:bb:cc:dd:ee:ff/node-1"
        );
        assert_eq!(expand_template("http://b/k", look).unwrap(), "http://b/k");
        assert!(expand_template("http://b/}", look).is_err());
        // lookup is only asked for what the template uses
        assert!(expand_template("http://b/x", |_| anyhow::bail!("no")).is_ok());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o640"), Ok(0o640));
        assert!(parse_mode("0800").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("77777").is_err());
    }
}
