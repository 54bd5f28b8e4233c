//! The one way to run external commands, and small file-system helpers.
//!
//! [`Runner`] is the seam between planning and doing: [`RealRunner`] runs tools through duct
//! (resolved from fixed directories — early boot may have no useful `PATH`), and
//! [`RecordingRunner`] records every argv and replays canned outputs for tests.

pub mod fsutil;
pub mod users;

use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::exit::{coded, Code};

/// Directories searched for external tools, in order.
pub const TOOL_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
];

/// Captured result of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Output {
        Output {
            status: 0,
            stdout: stdout.into(),
            stderr: Vec::new(),
        }
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Something that runs argv vectors (`argv[0]` is the tool name, e.g. `lvm`).
pub trait Runner: Send + Sync {
    /// Run and capture; a non-zero exit is *not* an error here (see [`Runner::check`]).
    /// `stdin` is fed to the command (e.g. an sfdisk script); None = /dev/null.
    fn run_raw(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output>;

    /// Run; a non-zero exit is an error carrying the whole argv, the status and stderr.
    fn check(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output> {
        let out = self.run_raw(argv, stdin)?;
        if out.status != 0 {
            return Err(coded(
                Code::Command,
                format!(
                    "command failed (exit {}): {}: {}",
                    out.status,
                    shell_join(argv),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(out)
    }

    /// Whether `tool` can be run on this node (resolved as `run_raw` resolves it). A recording
    /// runner says yes to everything.
    fn has_tool(&self, tool: &str) -> bool {
        resolve_tool(tool).is_some()
    }
}

/// Quote an argv for display the way a shell would accept it.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Find a tool in [`TOOL_DIRS`].
pub fn resolve_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    TOOL_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Runs commands for real through duct.
#[derive(Debug, Default)]
pub struct RealRunner;

impl Runner for RealRunner {
    fn run_raw(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output> {
        let (prog, args) = argv.split_first().context("empty command")?;
        let path = resolve_tool(prog).ok_or_else(|| {
            coded(
                Code::Command,
                format!("{prog}: not found in {}", TOOL_DIRS.join(":")),
            )
        })?;
        let mut expr = duct::cmd(&path, args)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .env("LC_ALL", "C")
            .env("LVM_SUPPRESS_FD_WARNINGS", "1");
        expr = match stdin {
            Some(data) => expr.stdin_bytes(data.to_vec()),
            None => expr.stdin_null(),
        };
        let out = expr
            .run()
            .with_context(|| format!("running {}", shell_join(argv)))?;
        Ok(Output {
            status: out.status.code().unwrap_or(128),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

/// A canned reply: the first rule whose prefix matches an argv answers it.
#[derive(Debug, Clone)]
struct Rule {
    prefix: Vec<String>,
    replies: VecDeque<Output>,
    repeat_last: bool,
}

/// Records argv vectors and replays canned outputs (tests and simulations).
#[derive(Debug, Default)]
pub struct RecordingRunner {
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Vec<String>>>,
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every argv starting with `prefix` gets `out` (repeatedly).
    pub fn on(&self, prefix: &[&str], out: Output) -> &Self {
        self.rules.lock().unwrap().push(Rule {
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            replies: VecDeque::from([out]),
            repeat_last: true,
        });
        self
    }

    /// The argv vectors run so far, in order.
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.log.lock().unwrap().clone()
    }

    /// The calls as shell lines (for golden files).
    pub fn transcript(&self) -> String {
        self.calls().iter().map(|a| shell_join(a) + "\n").collect()
    }
}

impl Runner for RecordingRunner {
    fn run_raw(&self, argv: &[String], _stdin: Option<&[u8]>) -> Result<Output> {
        self.log.lock().unwrap().push(argv.to_vec());
        let mut rules = self.rules.lock().unwrap();
        for r in rules.iter_mut() {
            if argv.len() >= r.prefix.len() && argv[..r.prefix.len()] == r.prefix[..] {
                let out = if r.replies.len() > 1 || !r.repeat_last {
                    r.replies.pop_front().unwrap_or_default()
                } else {
                    r.replies.front().cloned().unwrap_or_default()
                };
                return Ok(out);
            }
        }
        Ok(Output::default())
    }

    fn has_tool(&self, _tool: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn recording_runner_replays_and_records() {
        let r = RecordingRunner::new();
        r.on(&["lvm", "vgs"], Output::ok("{}"));
        r.on(
            &["false"],
            Output {
                status: 1,
                stdout: vec![],
                stderr: b"boom".to_vec(),
            },
        );
        assert_eq!(
            r.check(&argv(&["lvm", "vgs", "-o", "x"]), None)
                .unwrap()
                .stdout,
            b"{}"
        );
        let e = r.check(&argv(&["false", "x y"]), None).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), Code::Command);
        assert!(format!("{e}").contains("false 'x y': boom"), "{e}");
        assert_eq!(r.transcript(), "lvm vgs -o x\nfalse 'x y'\n");
    }

    #[test]
    fn real_runner_reports_failures_with_argv() {
        let r = RealRunner;
        let out = r.check(&argv(&["sh", "-c", "echo hi"]), None).unwrap();
        assert_eq!(out.stdout_str(), "hi\n");
        let e = r
            .check(&argv(&["sh", "-c", "echo bad >&2; exit 3"]), None)
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("exit 3") && msg.contains("bad"), "{msg}");
        let e = r.check(&argv(&["no-such-tool-xyz"]), None).unwrap_err();
        assert!(format!("{e:#}").contains("not found"));
    }
}
