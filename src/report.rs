//! Per-boot report (`/run/provision/report.json`), sd_notify progress, and log set-up.

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::system::fsutil;

/// Default report location.
pub const DEFAULT_REPORT: &str = "/run/provision/report.json";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StageReport {
    pub stage: String,
    /// Seconds since the epoch (fractional).
    pub start: f64,
    pub end: f64,
    pub duration_ms: u64,
    /// "ok" | "failed" | "dry-run"
    pub outcome: String,
    pub exit_code: i32,
    pub actions: Vec<String>,
    #[serde(default)]
    pub details: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Report {
    /// Boot id (`/proc/sys/kernel/random/boot_id`) the stages ran in.
    pub boot_id: String,
    pub version: String,
    pub stages: Vec<StageReport>,
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Read the report if it belongs to this boot.
pub fn load_current(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    let r: Report = serde_json::from_str(&text).ok()?;
    (r.boot_id == boot_id()).then_some(r)
}

/// Merge one stage's report into the boot's report file (replacing an earlier run of the same
/// stage in this boot) and write it atomically.
pub fn record(path: &Path, stage: StageReport) -> Result<()> {
    let mut r = load_current(path).unwrap_or_else(|| Report {
        boot_id: boot_id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        stages: Vec::new(),
    });
    r.stages.retain(|s| s.stage != stage.stage);
    r.stages.push(stage);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(&r)?;
    fsutil::atomic_write(path, &json, 0o644, None)
}

/// Tell systemd (if it is listening) a status line: `systemctl status` shows it.
pub fn notify_status(status: &str) {
    notify(&format!("STATUS={status}"));
}

/// Send a raw sd_notify message; silently nothing when not under systemd.
pub fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name) {
            let _ = sock.send_to_addr(msg.as_bytes(), &addr);
        }
    } else {
        let _ = sock.send_to(msg.as_bytes(), &path);
    }
}

/// Is stderr the journal stream systemd connected? `JOURNAL_STREAM=dev:ino` names it; a child
/// whose stderr was redirected elsewhere inherits the variable but not the stream (systemd's
/// documented check: compare with fstat of stderr).
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let v = v.to_string_lossy();
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match rustix::fs::fstat(std::io::stderr()) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}

/// Log to journald when stderr is systemd's journal stream, else to stderr.
/// Returns true when logging goes to the journal.
pub fn init_logging(verbose: bool) -> bool {
    use tracing_subscriber::prelude::*;
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
    let under_journal = stderr_is_journal();
    if under_journal {
        if let Ok(j) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(j.with_syslog_identifier("provision".into()))
                .with(filter)
                .try_init();
            return true;
        }
    }
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .without_time(),
        )
        .with(filter)
        .try_init();
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merges_stages() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/report.json");
        for (stage, outcome) in [("disks", "ok"), ("keys", "failed"), ("disks", "ok")] {
            record(
                &p,
                StageReport {
                    stage: stage.into(),
                    outcome: outcome.into(),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let r = load_current(&p).unwrap();
        let names: Vec<&str> = r.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["keys", "disks"]);
    }
}
