//! Prometheus metrics: after each stage, one node_exporter textfile-collector file,
//! `<metrics_dir>/provision_<stage>.prom`, with the stage's outcome, duration and last success
//! time and what the stage counted ([`Facts`]). Written to a temp name in the same directory and
//! renamed last, so the collector never reads half a file (it only reads `*.prom`).

pub mod text;

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::system::fsutil;
use text::Exposition;

/// Default directory: under `/run`, not `/var`, because the disks stage may mount a filesystem
/// over `/var` (a file written before would be hidden, one written after lost at the next boot's
/// provisioning).
pub const DEFAULT_DIR: &str = "/run/provision/metrics";

/// The modes of a disks plan, each a `provision_disks_mode{mode}` series.
pub const DISKS_MODES: [&str; 3] = ["mount-only", "provision", "refused"];

/// What a stage counted while it ran. Set as the stage goes (through [`Recorder`]) so that a run
/// that fails still reports what it got to: the plan's mode of a refused disks run, the attempts
/// of a fetch that gave up, the steps done before a failed one.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Facts {
    /// The disks plan's mode (`mount-only`, `provision`, `refused`), once planned.
    pub disks_mode: Option<&'static str>,
    /// The disks layout's hash, once the layout is read.
    pub layout_hash: Option<String>,
    /// Disks steps carried out that changed the machine.
    pub steps_done: u64,
    /// Disks steps found already done.
    pub steps_already_done: u64,
    /// Destructive disks steps carried out (they are counted in `steps_done` too).
    pub steps_destructive: u64,
    /// Requests made for the key bundle.
    pub key_fetch_attempts: u64,
    /// Secrets decrypted (agenix or sops side, by the stage that ran).
    pub secrets_decrypted: u64,
    /// Secrets that failed to decrypt.
    pub secrets_failed: u64,
}

/// Where a stage records its [`Facts`]; shared by the threads of a stage (the disks executor
/// runs chains concurrently).
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Facts>);

impl Recorder {
    /// Change the facts.
    pub fn update(&self, f: impl FnOnce(&mut Facts)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The facts so far, leaving none (each stage starts from zero).
    pub fn take(&self) -> Facts {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One finished (not dry) run of a stage.
#[derive(Debug, Clone)]
pub struct StageRun<'a> {
    /// `disks`, `keys`, `secrets` or `sops`.
    pub stage: &'a str,
    /// The process exit code the run maps to (0: success).
    pub exit_code: i32,
    /// Wall-clock duration in seconds.
    pub duration_s: f64,
    /// When it ended, in seconds since the Unix epoch.
    pub end: f64,
    pub facts: Facts,
}

/// The file of `stage` in `dir`.
pub fn file_path(dir: &Path, stage: &str) -> PathBuf {
    dir.join(format!("provision_{stage}.prom"))
}

/// The text of a stage's file. `previous_success` is the last success time the stage's
/// previous file held, used when this run failed (when neither is known the family has no
/// sample: a stage that never succeeded has no last success).
pub fn render(run: &StageRun, previous_success: Option<f64>) -> String {
    let stage = run.stage;
    let by_stage = |v: f64| vec![(vec![("stage", stage)], v)];
    let ok = run.exit_code == 0;
    let last_success = if ok { Some(run.end) } else { previous_success };
    let mut info = vec![("stage", stage), ("version", env!("CARGO_PKG_VERSION"))];
    if let Some(h) = &run.facts.layout_hash {
        info.push(("layout_hash", h));
    }
    let mut e = Exposition::default();
    // `stage` in the info metric too: the same labels in two files would be one series twice,
    // which node_exporter refuses.
    e.family(text::BUILD_INFO, &[(info, 1.0)])
        .family(text::SUCCESS, &by_stage(if ok { 1.0 } else { 0.0 }))
        .family(text::EXIT_CODE, &by_stage(f64::from(run.exit_code)))
        .family(text::DURATION, &by_stage(run.duration_s))
        .family(
            text::LAST_SUCCESS,
            &last_success.map(by_stage).unwrap_or_default(),
        );
    let f = &run.facts;
    match stage {
        "disks" => {
            let modes: Vec<_> = DISKS_MODES
                .iter()
                .map(|m| {
                    let on = f.disks_mode == Some(*m);
                    (vec![("mode", *m)], if on { 1.0 } else { 0.0 })
                })
                .collect();
            e.family(text::DISKS_MODE, &modes)
                .family(text::STEPS_DONE, &[(vec![], f.steps_done as f64)])
                .family(
                    text::STEPS_ALREADY_DONE,
                    &[(vec![], f.steps_already_done as f64)],
                )
                .family(
                    text::STEPS_DESTRUCTIVE,
                    &[(vec![], f.steps_destructive as f64)],
                );
        }
        "keys" => {
            e.family(
                text::KEY_FETCH_ATTEMPTS,
                &[(vec![], f.key_fetch_attempts as f64)],
            );
        }
        "secrets" | "sops" => {
            e.family(
                text::SECRETS_DECRYPTED,
                &by_stage(f.secrets_decrypted as f64),
            )
            .family(text::SECRETS_FAILED, &by_stage(f.secrets_failed as f64));
        }
        _ => {}
    }
    e.finish()
}

/// Write the stage's file into `dir` (made if missing), replacing the previous one atomically;
/// returns its path. Errors name the file.
pub fn write(dir: &Path, run: &StageRun) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = file_path(dir, run.stage);
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| text::read_value(&t, text::LAST_SUCCESS.name));
    fsutil::atomic_write(&path, render(run, previous).as_bytes(), 0o644, None)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stage: &str, exit_code: i32, end: f64) -> StageRun<'_> {
        StageRun {
            stage,
            exit_code,
            duration_s: 1.5,
            end,
            facts: Facts::default(),
        }
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_and_the_temp_name_is_not_prom() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("metrics");
        let p = write(&dir, &run("keys", 0, 1000.25)).unwrap();
        assert_eq!(p, dir.join("provision_keys.prom"));
        let first = std::fs::read_to_string(&p).unwrap();
        assert!(
            first.contains(
                "provision_stage_last_success_timestamp_seconds{stage=\"keys\"} 1000.25\n"
            ),
            "{first}"
        );
        write(&dir, &run("keys", 6, 2000.0)).unwrap();
        let second = std::fs::read_to_string(&p).unwrap();
        assert!(
            second.contains("provision_stage_success{stage=\"keys\"} 0\n"),
            "{second}"
        );
        assert!(
            second.contains("provision_stage_exit_code{stage=\"keys\"} 6\n"),
            "{second}"
        );
        assert_eq!(
            text::read_value(&second, text::LAST_SUCCESS.name),
            Some(1000.25)
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["provision_keys.prom"]);
        // A stage that never succeeded declares the family without a sample.
        let never = render(&run("sops", 8, 5.0), None);
        assert!(never.contains("# TYPE provision_stage_last_success_timestamp_seconds gauge\n"));
        assert!(!never.contains("provision_stage_last_success_timestamp_seconds{"));
    }

    #[test]
    fn the_common_families_are_declared_the_same_in_every_stage() {
        let decl = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("# ") && l.contains("provision_stage_"))
                .map(String::from)
                .collect()
        };
        let disks = render(&run("disks", 0, 1.0), None);
        for stage in ["keys", "secrets", "sops"] {
            assert_eq!(decl(&render(&run(stage, 4, 1.0), Some(0.5))), decl(&disks));
        }
        assert!(disks.contains("provision_disks_mode{mode=\"refused\"} 0\n"));
    }
}
