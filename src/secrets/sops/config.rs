//! The config's `sops:` section, with sops-nix's option names and defaults (Mic92/sops-nix
//! `modules/sops`).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::Format;
use crate::secrets::install::{IdSpec, ModeSpec};

/// Where the live generation is linked (sops-nix's `/run/secrets`).
pub const DEFAULT_SECRETS_DIR: &str = "/run/secrets";
/// Where generations live on ramfs (sops-nix's `/run/secrets.d`).
pub const DEFAULT_MOUNT_POINT: &str = "/run/secrets.d";
/// Host keys used when `age.sshKeyPaths` is not given: whichever exist. sops-nix defaults to
/// the ed25519 host keys (for ssh-to-age); the RSA key is added for native `ssh-rsa` recipients.
pub const DEFAULT_SSH_KEY_PATHS: &[&str] =
    &["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"];
/// Templates' subdirectory of a generation (sops-nix `RenderedSubdir`).
pub const RENDERED: &str = "rendered";

/// The `sops:` section (sops-nix's `sops.*` options).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SopsConfig {
    /// The sops file of every secret that names none. Relative = next to the config.
    #[serde(default)]
    pub default_sops_file: Option<PathBuf>,
    /// Default `format` (default `yaml`).
    #[serde(default = "yaml")]
    pub default_sops_format: Format,
    /// Default `key` (default: the secret's name).
    #[serde(default)]
    pub default_sops_key: Option<String>,
    #[serde(default)]
    pub age: AgeConfig,
    /// `secrets.<name>`. A name given twice is an error (a plain `BTreeMap` would keep the
    /// last silently).
    #[serde(default, deserialize_with = "unique_names")]
    pub secrets: BTreeMap<String, SopsSecret>,
    /// `templates.<name>`; a name given twice is an error.
    #[serde(default, deserialize_with = "unique_names")]
    pub templates: BTreeMap<String, SopsTemplate>,
    /// Generations kept, the live one included, as sops-nix counts (`keepGenerations`,
    /// default 1: only the live one;
    /// 0 keeps all).
    #[serde(default = "one")]
    pub keep_generations: u64,
    /// The symlink to the live generation (an extension; sops-nix's is fixed). Default
    /// `/run/secrets`. As the agenix side's `secrets_dir`: absent, our symlink, or an empty
    /// directory, else refused (exit 3).
    #[serde(default = "default_secrets_dir")]
    pub secrets_dir: PathBuf,
    /// Where generations live (an extension). Default `/run/secrets.d`. Absent, empty or
    /// already ramfs/tmpfs, else refused (exit 3).
    #[serde(default = "default_mount_point")]
    pub secrets_mount_point: PathBuf,
    /// The largest sops or template file read, in bytes (an extension). Default 16 MiB.
    #[serde(default = "crate::secrets::guard::default_max_file_size")]
    pub max_file_size: u64,
}

/// A mapping of names to `V`, refusing a name given twice ("duplicate name \"db\"", with the
/// line from the YAML parser).
fn unique_names<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Names<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Names<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of names")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(k) = m.next_key::<String>()? {
                if out.contains_key(&k) {
                    return Err(de::Error::custom(format!(
                        "duplicate name {k:?} (each name once)"
                    )));
                }
                let v = m.next_value()?;
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Names(PhantomData))
}

fn yaml() -> Format {
    Format::Yaml
}
fn one() -> u64 {
    1
}
fn default_secrets_dir() -> PathBuf {
    PathBuf::from(DEFAULT_SECRETS_DIR)
}
fn default_mount_point() -> PathBuf {
    PathBuf::from(DEFAULT_MOUNT_POINT)
}

/// `sops.age`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgeConfig {
    /// An age key file (`AGE-SECRET-KEY-1…` lines). Must exist when given.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// SSH private keys: ed25519 keys are used as ssh-to-age X25519 identities and for native
    /// `ssh-ed25519` recipients, RSA keys for native `ssh-rsa` recipients. Given: each must
    /// exist and load. Default: [`DEFAULT_SSH_KEY_PATHS`], whichever exist.
    #[serde(default)]
    pub ssh_key_paths: Option<Vec<PathBuf>>,
}

/// `sops.secrets.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SopsSecret {
    /// File name under `/run/secrets` (default: the attribute name; may contain `/`).
    #[serde(default)]
    pub name: Option<String>,
    /// Key in the file, `a/b` for nested mappings; `""` = the whole file. Ignored for
    /// binary, dotenv and ini, which are installed whole. Default: `defaultSopsKey`, else the
    /// name.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub format: Option<Format>,
    /// Where the secret appears (absolute); another path than `/run/secrets/<name>` is a
    /// symlink to it.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// User name or uid (default root).
    #[serde(default)]
    pub owner: Option<IdSpec>,
    /// Group name or gid (default: the owner's primary group).
    #[serde(default)]
    pub group: Option<IdSpec>,
    /// Octal string, default `"0400"`.
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// The sops file (default `defaultSopsFile`). Relative = next to the config.
    #[serde(default)]
    pub sops_file: Option<PathBuf>,
}

/// `sops.templates.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SopsTemplate {
    /// File name under `/run/secrets/rendered` (default: the attribute name).
    #[serde(default)]
    pub name: Option<String>,
    /// The text, with `<SOPS:…:PLACEHOLDER>` placeholders (sops-nix `config.sops.placeholder`).
    #[serde(default)]
    pub content: Option<String>,
    /// Or a file holding it (relative = next to the config).
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub owner: Option<IdSpec>,
    #[serde(default)]
    pub group: Option<IdSpec>,
    #[serde(default)]
    pub mode: Option<ModeSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SopsConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn sops_nix_option_names() {
        let c = parse(
            "defaultSopsFile: s.yaml\nage:\n  keyFile: /k.txt\n  sshKeyPaths: [/etc/ssh/h]\n\
             secrets:\n  db/pw: {key: db/password, owner: 1000, mode: \"0440\"}\n  \
             bin: {format: binary, sopsFile: b.bin, path: /etc/b}\n\
             templates:\n  app.env: {content: \"X=<SOPS:x:PLACEHOLDER>\"}\n",
        )
        .unwrap();
        assert_eq!(c.default_sops_format, Format::Yaml);
        assert_eq!(c.keep_generations, 1);
        assert_eq!(c.secrets_dir, PathBuf::from("/run/secrets"));
        assert_eq!(c.age.key_file, Some(PathBuf::from("/k.txt")));
        assert_eq!(c.secrets["bin"].format, Some(Format::Binary));
        assert_eq!(c.secrets["db/pw"].key.as_deref(), Some("db/password"));
        assert!(parse("secrets:\n  a: {neededForUsers: true}\n")
            .unwrap_err()
            .contains("neededForUsers"));
        for (dup, name) in [
            ("secrets:\n  db: {}\n  other: {}\n  db: {key: x}\n", "db"),
            ("templates:\n  t: {content: a}\n  t: {content: b}\n", "t"),
        ] {
            // The parser places it at the mapping.
            let e = parse(dup).unwrap_err();
            assert!(e.contains(&format!("duplicate name {name:?}")), "{e}");
            assert!(e.contains("line 2"), "{e}");
        }
        assert!(parse("secrets:\n").unwrap().secrets.is_empty());
        assert!(parse("defaultSopsFormat: toml\n")
            .unwrap_err()
            .contains("toml"));
    }
}
