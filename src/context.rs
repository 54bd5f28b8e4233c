//! What every stage gets: where the target system lives, the parsed kernel cmdline, whether this
//! is a dry run, and the command runner.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cmdline::Settings;
use crate::system::{fsutil, Runner};

pub struct Context {
    /// Root of the target system (`/`, or e.g. `/sysroot` from an initrd).
    pub root: PathBuf,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Print plans and status as JSON (`--output json`).
    pub json: bool,
    /// Our settings from the kernel command line.
    pub cmdline: Settings,
    /// Directory of the config file (relative paths in the config are resolved against it).
    pub config_dir: PathBuf,
    /// Runs external commands (real, or recording in tests).
    pub runner: Arc<dyn Runner>,
    /// What the running stage counted, for its metrics file.
    pub facts: crate::metrics::Recorder,
}

impl Context {
    /// A context for `root` with this kernel cmdline (prefix `homelab`), config files relative
    /// to `config_dir`, and a recording runner (nothing external is run): for tests and tools.
    pub fn for_root(root: &Path, config_dir: &Path, cmdline: &str, dry_run: bool) -> Context {
        Context {
            root: root.to_path_buf(),
            dry_run,
            json: false,
            cmdline: crate::cmdline::settings(cmdline, crate::config::DEFAULT_PREFIX),
            config_dir: config_dir.to_path_buf(),
            runner: Arc::new(crate::system::RecordingRunner::new()),
            facts: Default::default(),
        }
    }

    /// An absolute target-system path, placed under `--root`.
    pub fn path(&self, p: impl AsRef<Path>) -> PathBuf {
        fsutil::under_root(&self.root, p.as_ref())
    }

    /// A path from the config file: absolute paths are target-system paths (under `--root`),
    /// relative ones are relative to the config file's directory.
    pub fn config_path(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        if p.is_absolute() {
            self.path(p)
        } else {
            self.config_dir.join(p)
        }
    }
}

/// What a stage returns (for the report, the text output and `--output json`).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct StageOutput {
    /// One line per action done (or, in a dry run, that would be done).
    pub actions: Vec<String>,
    /// Stage-specific machine-readable details (fingerprints, generation, plan …).
    pub details: serde_json::Value,
}

impl StageOutput {
    /// The `--output json` form: the stage's details with `"stage"` added (the human `text`
    /// left out).
    pub fn to_json(&self, stage: &str) -> serde_json::Value {
        let mut v = match &self.details {
            serde_json::Value::Object(m) => m.clone(),
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("details".into(), other.clone());
                m
            }
        };
        v.remove("text");
        v.insert("stage".into(), stage.into());
        if !v.contains_key("actions") {
            v.insert(
                "actions".into(),
                serde_json::to_value(&self.actions).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(v)
    }
}
