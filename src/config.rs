//! The config file (DESIGN §5): which layout, the disks-stage options, the keys source and the
//! secrets. Unknown fields are errors naming the file, line and field.

use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::exit::{coded, Code};

/// Default location of the config file.
pub const DEFAULT_CONFIG: &str = "/etc/provision/config.yaml";
/// Default kernel cmdline prefix (`homelab.provision_disks=…`).
pub const DEFAULT_PREFIX: &str = "homelab";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Kernel cmdline prefix for our keys (default `homelab`).
    #[serde(default)]
    pub cmdline_prefix: Option<String>,
    /// Disks stage; absent = the stage has nothing to do.
    #[serde(default)]
    pub disks: Option<DisksConfig>,
    /// Keys stage; absent = the stage has nothing to do.
    #[serde(default)]
    pub keys: Option<crate::keys::KeysConfig>,
    /// Secrets stage; absent = the stage has nothing to do.
    #[serde(default)]
    pub secrets: Option<crate::secrets::SecretsConfig>,
    /// sops-nix secrets (part of the secrets stage); absent = none.
    #[serde(default)]
    pub sops: Option<crate::secrets::sops::stage::SopsConfig>,
    /// Where the per-boot report goes (default `/run/provision/report.json`).
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// Directory of the Prometheus textfile-collector files, one per stage (default
    /// `/run/provision/metrics`; under `--root`).
    #[serde(default)]
    pub metrics_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DisksConfig {
    /// Layout file (disko schema, YAML or JSON). Relative to the config file's directory.
    pub layout: PathBuf,
    /// Where the LVM settings (DRBD global_filter) are written on the node, so later lvm runs
    /// agree with ours. Default `/etc/lvm/lvmlocal.conf`.
    #[serde(default)]
    pub lvm_conf: Option<PathBuf>,
}

impl Config {
    pub fn prefix(&self) -> &str {
        self.cmdline_prefix.as_deref().unwrap_or(DEFAULT_PREFIX)
    }
}

/// Turn a serde_norway error into one line naming the file (and line/column, which the error
/// message carries when it knows them).
pub fn yaml_error(file: &Path, e: serde_norway::Error) -> anyhow::Error {
    let loc = e
        .location()
        .map(|l| format!(":{}:{}", l.line(), l.column()))
        .unwrap_or_default();
    // serde_norway appends " at line L column C" to the message; we already print it up front.
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) if !loc.is_empty() => msg[..i].to_string(),
        _ => msg,
    };
    coded(Code::BadInput, format!("{}{loc}: {msg}", file.display()))
}

/// Parse a config from text (`file` names it in errors).
pub fn parse(file: &Path, text: &str) -> Result<Config> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let cfg: Config = serde_norway::from_str(text).map_err(|e| yaml_error(file, e))?;
    if let Some(p) = &cfg.cmdline_prefix {
        if p.is_empty() || p.contains(char::is_whitespace) || p.contains('=') || p.ends_with('.') {
            return Err(coded(
                Code::BadInput,
                format!(
                    "{}: cmdline_prefix {p:?}: expected a word like \"homelab\" (no dot, space or =)",
                    file.display()
                ),
            ));
        }
    }
    let problems = crate::secrets::paths::check(cfg.secrets.as_ref(), cfg.sops.as_ref());
    if !problems.is_empty() {
        return Err(coded(
            Code::BadInput,
            format!("{}: {}", file.display(), problems.join("; ")),
        ));
    }
    Ok(cfg)
}

/// Read and parse a config file.
pub fn load(file: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        coded(
            Code::BadInput,
            format!("{}: cannot read config: {e}", file.display()),
        )
    })?;
    parse(file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let e = parse(
            Path::new("/etc/provision/config.yaml"),
            "disks:\n  layout: x.yaml\n  layuot: y\n",
        )
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("/etc/provision/config.yaml:3:"), "{msg}");
        assert!(msg.contains("unknown field `layuot`"), "{msg}");
        assert_eq!(crate::exit::code_of(&e), Code::BadInput);
    }

    #[test]
    fn parses_minimal_and_empty() {
        let c = parse(Path::new("c.yaml"), "disks:\n  layout: ganeti-node.yaml\n").unwrap();
        assert_eq!(c.disks.unwrap().layout, PathBuf::from("ganeti-node.yaml"));
        assert_eq!(parse(Path::new("c"), "").unwrap().prefix(), "homelab");
        assert!(parse(Path::new("c"), "cmdline_prefix: \"a b\"\n").is_err());
    }
}
