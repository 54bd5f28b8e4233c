//! The agenix side's `secrets:` section of the config, with agenix's option names and
//! defaults (ryantm/agenix `modules/age.nix`).

use serde::Deserialize;
use std::path::PathBuf;

use super::install::{IdSpec, ModeSpec};

/// agenix's default identities: the SSH host keys that exist.
pub const DEFAULT_IDENTITY_PATHS: &[&str] =
    &["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"];
/// Where the live generation is linked (agenix `age.secretsDir`).
pub const DEFAULT_SECRETS_DIR: &str = "/run/agenix";
/// Where generations live on ramfs (agenix `age.secretsMountPoint`).
pub const DEFAULT_MOUNT_POINT: &str = "/run/agenix.d";

/// The `secrets:` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// The secrets to decrypt (agenix `age.secrets`), each decrypted to
    /// `<secrets_dir>/<name>`. Default: none.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// Identity files that may decrypt the secrets: OpenSSH `ssh-ed25519` / `ssh-rsa` private
    /// keys (unencrypted) or age identity files (`AGE-SECRET-KEY-1…` lines). Absolute paths are
    /// on the target system (under `--root`), relative ones relative to the config file.
    /// Default (agenix's): `/etc/ssh/ssh_host_ed25519_key` and `/etc/ssh/ssh_host_rsa_key`,
    /// whichever exist — at least one must. Every path listed here explicitly must exist and
    /// parse; a missing, unreadable or unparseable identity is an error (agenix warns "no
    /// readable identities found" and carries on; we fail).
    #[serde(default)]
    pub identity_paths: Option<Vec<PathBuf>>,
    /// The symlink to the live generation (agenix `age.secretsDir`). Default `/run/agenix`.
    /// It must be absent, our symlink to a generation, or an empty directory (replaced by the
    /// symlink); anything else is refused (exit 3), see [`super::guard::check_live_link`].
    #[serde(default = "default_secrets_dir")]
    pub secrets_dir: PathBuf,
    /// Where generations `<N>/` live (agenix `age.secretsMountPoint`). A ramfs is mounted there
    /// (`nodev,nosuid,mode=0751`) unless one already is; a populated directory that is not a
    /// ramfs is refused (exit 3). Default `/run/agenix.d`.
    #[serde(default = "default_mount_point")]
    pub secrets_mount_point: PathBuf,
    /// The largest `.age` file read, in bytes (an extension). Default 16 MiB.
    #[serde(default = "crate::secrets::guard::default_max_file_size")]
    pub max_file_size: u64,
}

fn default_secrets_dir() -> PathBuf {
    PathBuf::from(DEFAULT_SECRETS_DIR)
}

fn default_mount_point() -> PathBuf {
    PathBuf::from(DEFAULT_MOUNT_POINT)
}

fn yes() -> bool {
    true
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            secrets: Vec::new(),
            identity_paths: None,
            secrets_dir: default_secrets_dir(),
            secrets_mount_point: default_mount_point(),
            max_file_size: super::guard::DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// One secret (agenix `age.secrets.<name>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// Name of the decrypted file under `secrets_dir` (may contain `/` for subdirectories; no
    /// `.`/`..` components). Unique.
    pub name: String,
    /// The encrypted `.age` file (binary or ASCII-armored). Relative paths are relative to the
    /// config file's directory.
    pub file: PathBuf,
    /// Where the secret should appear (absolute). Default `<secrets_dir>/<name>`. With
    /// `symlink: true` this is a symlink to `<secrets_dir>/<name>`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Owner: a user name from `/etc/passwd` or a numeric uid. Default `root`.
    #[serde(default)]
    pub owner: Option<IdSpec>,
    /// Group: a group name from `/etc/group` or a numeric gid. Default: the owner's primary
    /// group (`root` for the default owner; gid 0 for a uid without a passwd entry), as agenix.
    #[serde(default)]
    pub group: Option<IdSpec>,
    /// File mode, a quoted octal string (`"0400"`, `"0440"`); at most `0777`. Default `"0400"`.
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// `true` (default): `path` is a symlink into the live generation. `false`: the file itself
    /// is written at `path` (atomically, owner and mode set first), which must be on ramfs or
    /// tmpfs — secrets are never written to disk.
    #[serde(default = "yes")]
    pub symlink: bool,
    /// `true`: a failure to decrypt this secret is reported but does not stop the others or
    /// the switch to the new generation. Default `false` (fail closed).
    #[serde(default)]
    pub optional: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SecretsConfig, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn config_defaults() {
        let c = parse("secrets:\n  - name: db\n    file: db.age\n").unwrap();
        assert_eq!(c.secrets_dir, PathBuf::from("/run/agenix"));
        assert_eq!(c.secrets_mount_point, PathBuf::from("/run/agenix.d"));
        assert!(c.identity_paths.is_none());
        let s = &c.secrets[0];
        assert!(s.symlink && !s.optional && s.path.is_none() && s.mode.is_none());
        assert!(parse("secrets: []\nbogus: 1\n")
            .unwrap_err()
            .contains("bogus"));
        assert!(parse("secrets:\n  - name: a\n    file: a\n    onwer: x\n")
            .unwrap_err()
            .contains("onwer"));
        let c =
            parse("secrets:\n  - {name: a, file: a, owner: 1000, group: wheel, mode: \"0440\"}\n")
                .unwrap();
        assert_eq!(c.secrets[0].owner, Some(IdSpec::Id(1000)));
        assert_eq!(c.secrets[0].group, Some(IdSpec::Name("wheel".into())));
        let c = parse(
            "secrets:\n  - {name: a, file: a, mode: 0400}\n  - {name: b, file: b, mode: 400}\n",
        )
        .unwrap();
        // serde_norway reads an unquoted 0400 as the string "0400" (fine); 400 is a number.
        assert_eq!(c.secrets[0].mode, Some(ModeSpec::Text("0400".into())));
        assert_eq!(c.secrets[1].mode, Some(ModeSpec::Number(400)));
    }
}
