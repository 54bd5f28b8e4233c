//! sops files, read in-process (no `sops` binary on the node): the format core behind the
//! sops-nix side of the secrets stage.
//!
//! A file is parsed in document order (YAML, JSON, binary = JSON `{"data": …}`, dotenv, INI),
//! its `sops` metadata taken out, the 32-byte data key unwrapped from `sops.age[].enc` with the
//! node's identities ([`keys`]; Shamir key groups combined), every `ENC[AES256_GCM,…]` value
//! opened ([`cipher`], [`walk`]) and the MAC checked — all before anything is returned. Any
//! mismatch fails closed with an error naming the file and, where it applies, the key path.
//!
//! Sources of the rules: getsops/sops `sops.go`, `aes/cipher.go`, `shamir/shamir.go`,
//! `stores/*`, `decrypt/decrypt.go`; Mic92/sops-nix `pkgs/sops-install-secrets`;
//! Mic92/ssh-to-age `convert.go`.

pub mod cipher;
pub mod config;
pub mod dotenv;
pub mod emit;
pub mod ini;
pub mod keys;
pub mod metadata;
mod plan;
pub mod shamir;
pub mod stage;
mod template;
pub mod tree;
pub mod walk;
pub mod yaml_json;

use std::fmt;
use std::path::{Path, PathBuf};

use keys::SopsKeys;
use metadata::Flatten;
use tree::{Item, Value};

/// A sops file format (sops-nix `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Json,
    Binary,
    Dotenv,
    Ini,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Binary => "binary",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
        }
    }

    fn flatten(self) -> Flatten {
        match self {
            Format::Yaml | Format::Json | Format::Binary => Flatten::None,
            Format::Ini => Flatten::BelowTop,
            Format::Dotenv => Flatten::Full,
        }
    }
}

/// What went wrong, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file does not parse, or its metadata is wrong.
    Format,
    /// No data key: no identity matches, or only unsupported recipient types.
    Key,
    /// A value does not open (changed, moved, or encrypted with another key).
    Value,
    /// The MAC does not match (or does not open).
    Mac,
}

/// A failed sops file: which file, where in it, why. Never holds plaintext.
#[derive(Debug, Clone)]
pub struct SopsError {
    pub file: PathBuf,
    /// The key path (`nested/test/file`, `a_list[1]`) when the failure is at one value.
    pub at: Option<String>,
    pub kind: ErrorKind,
    pub why: String,
}

impl fmt::Display for SopsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sops file {}", self.file.display())?;
        if let Some(at) = &self.at {
            write!(f, ", key {at}")?;
        }
        write!(f, ": {}", self.why)
    }
}

impl std::error::Error for SopsError {}

/// A decrypted, MAC-checked sops file.
#[derive(Debug, Clone)]
pub struct Document {
    pub format: Format,
    /// The plaintext tree, one branch per YAML document (one for the other formats), without
    /// the `sops` metadata.
    pub branches: Vec<Vec<Item>>,
    /// The sops version that wrote it.
    pub version: String,
}

/// Decrypt `data` (the contents of `file`, named in errors) as a sops file of `format`.
pub fn decrypt(
    file: &Path,
    data: &[u8],
    format: Format,
    keys: &SopsKeys,
) -> Result<Document, SopsError> {
    let err = |kind, at: Option<String>, why: String| SopsError {
        file: file.to_path_buf(),
        at,
        kind,
        why,
    };
    let parsed = match format {
        Format::Yaml => yaml_json::parse_yaml(data),
        Format::Json | Format::Binary => yaml_json::parse_json(data),
        Format::Dotenv => dotenv::parse(data),
        Format::Ini => ini::parse(data),
    };
    let mut branches =
        parsed.map_err(|e| err(ErrorKind::Format, None, format!("{}: {e}", format.as_str())))?;
    let meta = metadata::extract(&mut branches, format.flatten())
        .map_err(|e| err(ErrorKind::Format, None, e))?;
    if format == Format::Yaml && meta.rule.uses_comments() {
        return Err(err(
            ErrorKind::Format,
            None,
            "the file's encryption rule depends on comments (*_comment_regex), and YAML \
             comments are not read here"
                .into(),
        ));
    }
    let key = keys::data_key(&meta, keys).map_err(|e| {
        err(
            ErrorKind::Key,
            None,
            format!("cannot unwrap the data key: {e}"),
        )
    })?;
    let computed = walk::decrypt(&mut branches, &key, &meta)
        .map_err(|e| err(ErrorKind::Value, Some(e.at), e.why));
    let stored = cipher::decrypt(&meta.mac, &key, &meta.lastmodified);
    let mut key = key;
    crate::secrets::identities::wipe(&mut key);
    let computed = computed?;
    match stored {
        Ok(Value::Str(mac)) if mac == computed => {}
        Ok(Value::Str(_)) => {
            return Err(err(
                ErrorKind::Mac,
                None,
                "MAC mismatch: the values are not the ones sops encrypted (changed, added, \
                 removed or reordered after sops wrote the file)"
                    .into(),
            ))
        }
        Ok(other) => {
            return Err(err(
                ErrorKind::Mac,
                None,
                format!("the MAC is {}, not text", other.a_type_name()),
            ))
        }
        Err(e) => {
            return Err(err(
                ErrorKind::Mac,
                None,
                format!("cannot open the MAC (sops.mac with sops.lastmodified): {e}"),
            ))
        }
    }
    if format == Format::Binary
        && !branches
            .first()
            .is_some_and(|b| b.iter().any(|i| i.name() == Some("data")))
    {
        return Err(err(
            ErrorKind::Format,
            None,
            "binary format without a `data` key".into(),
        ));
    }
    Ok(Document {
        format,
        branches,
        version: meta.version,
    })
}

/// Read `file` (a regular file of at most `cap` bytes, see
/// [`crate::secrets::guard::read_regular`]) and [`decrypt`] it.
pub fn decrypt_file(
    file: &Path,
    format: Format,
    keys: &SopsKeys,
    cap: u64,
) -> Result<Document, SopsError> {
    let data =
        crate::secrets::guard::read_regular(file, "sops file", cap).map_err(|why| SopsError {
            file: file.to_path_buf(),
            at: None,
            kind: ErrorKind::Format,
            why,
        })?;
    decrypt(file, &data, format, keys)
}

impl Document {
    /// The value at a sops-nix `key` (`a/b/c`: nested mappings of the first document).
    pub fn get(&self, key: &str) -> Result<&Value, String> {
        let mut items: &[Item] = self.branches.first().map(Vec::as_slice).unwrap_or(&[]);
        let parts: Vec<&str> = key.split('/').collect();
        for (n, part) in parts.iter().enumerate() {
            let so_far = parts[..=n].join("/");
            let v = items
                .iter()
                .rev()
                .find(|i| i.name() == Some(part))
                .map(|i| &i.value)
                .ok_or_else(|| format!("the key '{so_far}' cannot be found"))?;
            if n + 1 == parts.len() {
                return Ok(v);
            }
            match v {
                Value::Map(m) => items = m,
                _ => return Err(format!("key '{so_far}' does not refer to a dictionary")),
            }
        }
        unreachable!("split gives at least one part")
    }

    /// The binary format's plaintext (`data`).
    pub fn binary_data(&self) -> Option<&[u8]> {
        match self
            .branches
            .first()?
            .iter()
            .find(|i| i.name() == Some("data"))?
            .value
        {
            Value::Str(ref s) => Some(s.as_bytes()),
            Value::Bytes(ref b) => Some(b),
            _ => None,
        }
    }
}
