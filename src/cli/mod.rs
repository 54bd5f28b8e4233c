//! Command line (DESIGN §3) and the top-level `run`.

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum, ValueHint};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use crate::config::{self, Config};
use crate::context::{Context, StageOutput};
use crate::exit::{code_of, coded, Code};
use crate::report::{self, StageReport};
use crate::system::RealRunner;

mod status;
mod validate;

#[derive(Debug, Parser)]
#[command(
    name = "provision",
    version,
    about = "Early-boot provisioning agent: disks, SSH keys and age secrets for netbooted nodes",
    long_about = "Early-boot provisioning agent: disks, SSH keys and age secrets for netbooted \
                  nodes.\n\n\
                  Run by systemd oneshot units on every boot of a node whose OS comes from the \
                  network and whose local disks persist. disks: only when the kernel command line \
                  asks, wipe and lay out the disks from a disko-schema layout; on every boot, \
                  activate the layout's LVM volume groups, check and mount its filesystems and \
                  enable its swap. keys: fetch the node's SSH key bundle, verify it and install \
                  the keys before sshd starts. secrets: decrypt agenix and sops-nix secrets into \
                  /run/agenix and /run/secrets.\n\n\
                  With --dry-run it prints what a run would do and what it would destroy, and \
                  changes nothing.",
    after_help = Code::help_summary()
)]
pub struct Cli {
    /// Config file.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, global = true)]
    pub config: Option<PathBuf>,
    /// Layout file (disko schema, YAML or JSON); stands in for the config's `disks.layout`.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, global = true)]
    pub layout: Option<PathBuf>,
    /// Read the kernel command line from FILE instead of /proc/cmdline.
    #[arg(
        long,
        value_name = "FILE",
        value_hint = ValueHint::FilePath,
        global = true,
        conflicts_with = "cmdline"
    )]
    pub cmdline_file: Option<PathBuf>,
    /// Use STRING as the kernel command line instead of /proc/cmdline.
    #[arg(long, value_name = "STRING", global = true)]
    pub cmdline: Option<String>,
    /// Root of the target system (e.g. /sysroot from an initrd).
    #[arg(
        long,
        value_name = "DIR",
        value_hint = ValueHint::DirPath,
        default_value = "/",
        global = true
    )]
    pub root: PathBuf,
    /// Plan against a saved snapshot (JSON from `provision status --output json`) instead of
    /// probing this machine. Implies --dry-run.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, global = true)]
    pub state: Option<PathBuf>,
    /// Print the plan; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Output format of plans and status.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,
    /// Refuse to act unless the plan's hash is exactly H (from a reviewed --dry-run).
    #[arg(long, value_name = "H", global = true)]
    pub plan_hash: Option<String>,
    /// More log output.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For tools: the same content as JSON.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Lay out (only when the cmdline asks) and mount the disks.
    Disks,
    /// Fetch, verify and install the SSH keys.
    Keys,
    /// Decrypt age secrets into /run/agenix and sops-nix secrets into /run/secrets.
    Secrets,
    /// disks, keys and secrets, in that order.
    All,
    /// Show what is there now against the layout.
    Status,
    /// Check config and layout offline; list every problem.
    Validate,
}

/// Everything a run needs that comes from files and flags.
pub struct Inputs {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub cmdline_text: String,
}

impl Inputs {
    /// The config file's directory (relative paths in the config are resolved against it);
    /// `.` when there is no config file.
    pub fn config_dir(&self) -> PathBuf {
        self.config_path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

fn read_cmdline(cli: &Cli) -> Result<String> {
    if let Some(s) = &cli.cmdline {
        return Ok(s.clone());
    }
    if cli.command == Command::Validate && cli.cmdline_file.is_none() {
        return Ok(String::new()); // offline: the cmdline is checked only when given
    }
    let path = cli
        .cmdline_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/cmdline"));
    std::fs::read_to_string(&path).map_err(|e| {
        coded(
            Code::BadInput,
            format!("{}: cannot read kernel cmdline: {e}", path.display()),
        )
    })
}

fn load_inputs(cli: &Cli) -> Result<Inputs> {
    let (config, config_path) = match &cli.config {
        Some(p) => (config::load(p)?, Some(p.clone())),
        None => {
            let p = PathBuf::from(config::DEFAULT_CONFIG);
            if p.exists() {
                (config::load(&p)?, Some(p))
            } else if cli.layout.is_some() {
                (Config::default(), None)
            } else {
                return Err(coded(
                    Code::BadInput,
                    format!(
                        "{}: no config file (give --config FILE, or --layout FILE for the disks stage)",
                        p.display()
                    ),
                ));
            }
        }
    };
    Ok(Inputs {
        config,
        config_path,
        cmdline_text: read_cmdline(cli)?,
    })
}

fn make_context(cli: &Cli, inputs: &Inputs) -> Context {
    let settings = crate::cmdline::settings(&inputs.cmdline_text, inputs.config.prefix());
    for u in &settings.unknown {
        tracing::warn!(key = %u, "kernel cmdline: unknown key under our prefix (typo?) — ignored");
    }
    for b in &settings.bad {
        tracing::warn!(key = %b.key, "{b}");
    }
    let config_dir = inputs.config_dir();
    Context {
        root: cli.root.clone(),
        dry_run: cli.dry_run || cli.state.is_some(),
        json: cli.output == OutputFormat::Json,
        cmdline: settings,
        config_dir,
        runner: Arc::new(RealRunner),
        facts: Default::default(),
    }
}

/// Where a real run records its stages: the per-boot report and the metrics directory, both
/// under `--root`.
struct Records {
    report: PathBuf,
    metrics: PathBuf,
}

/// Run one stage, time it, print its output and record it in the report and its metrics file.
fn run_stage(
    cli: &Cli,
    ctx: &Context,
    rec: &Records,
    stage: &str,
    f: impl FnOnce() -> Result<StageOutput>,
) -> Result<()> {
    let start = report::now();
    let t0 = std::time::Instant::now();
    report::notify_status(&format!("{stage}: running"));
    ctx.facts.take(); // counted afresh for each stage
    let res = f();
    let elapsed = t0.elapsed();
    let duration_ms = elapsed.as_millis() as u64;
    let (outcome, exit_code, actions, details, error) = match &res {
        Ok(o) => (
            if ctx.dry_run { "dry-run" } else { "ok" },
            0,
            o.actions.clone(),
            o.details.clone(),
            None,
        ),
        Err(e) => (
            "failed",
            code_of(e).as_i32(),
            Vec::new(),
            serde_json::Value::Null,
            Some(format!("{e:#}")),
        ),
    };
    if let Ok(o) = &res {
        // Under systemd a real run's actions are already in the journal, one line each with
        // their fields: stdout would only repeat them.
        let repeat = JOURNAL.load(Relaxed) && !ctx.dry_run && cli.output == OutputFormat::Text;
        if !repeat {
            print_output(cli, stage, o);
        }
    }
    match &res {
        Ok(_) => tracing::info!(stage, duration_ms, outcome, "stage finished"),
        // In the journal the failure is logged here, in order and with the stage's fields;
        // on a terminal main() prints it as the last line.
        Err(e) if JOURNAL.load(Relaxed) => {
            tracing::error!(stage, duration_ms, exit_code, "stage failed: {e:#}");
            STAGE_ERROR_LOGGED.store(true, Relaxed);
        }
        Err(_) => tracing::info!(stage, duration_ms, outcome, "stage finished"),
    }
    if !ctx.dry_run {
        let end = report::now();
        let rep = StageReport {
            stage: stage.to_string(),
            start,
            end,
            duration_ms,
            outcome: outcome.to_string(),
            exit_code,
            actions,
            details,
            error,
        };
        if let Err(e) = report::record(&rec.report, rep) {
            tracing::warn!("could not write the report {}: {e:#}", rec.report.display());
        }
        let run = crate::metrics::StageRun {
            stage,
            exit_code,
            duration_s: elapsed.as_secs_f64(),
            end,
            facts: ctx.facts.take(),
        };
        if let Err(e) = crate::metrics::write(&rec.metrics, &run) {
            tracing::warn!(stage, "could not write the metrics file: {e:#}");
        }
    }
    report::notify_status(&format!("{stage}: {outcome}"));
    // A dry run that found what the real run would stop at exits as that run would.
    if let Some(why) = res
        .as_ref()
        .ok()
        .filter(|_| ctx.dry_run)
        .and_then(|o| o.details.get("would_fail"))
        .and_then(|w| w.as_str())
    {
        return Err(coded(
            Code::Decrypt,
            format!("{stage} (dry run): the real run would fail (exit 8): {why}"),
        ));
    }
    res.map(|_| ())
}

fn print_output(cli: &Cli, stage: &str, o: &StageOutput) {
    match cli.output {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&o.to_json(stage)).unwrap_or_default()
            );
        }
        OutputFormat::Text => {
            if let Some(t) = o.details.get("text").and_then(|t| t.as_str()) {
                print!("{t}");
                if !t.ends_with('\n') {
                    println!();
                }
            } else {
                for a in &o.actions {
                    println!("{stage}: {a}");
                }
            }
        }
    }
}

/// Logging goes to the journal (set once at start).
static JOURNAL: AtomicBool = AtomicBool::new(false);
/// Set when a stage has logged its own failure to the journal (so it is not logged twice).
static STAGE_ERROR_LOGGED: AtomicBool = AtomicBool::new(false);

/// Parse arguments, run, and return the process exit code.
pub fn main_with_args(cli: Cli) -> i32 {
    let journal = report::init_logging(cli.verbose);
    JOURNAL.store(journal, Relaxed);
    match run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            let code = code_of(&e);
            // Logged once: in the journal by the stage that failed (else here), on a terminal
            // as the last line.
            if !journal {
                eprintln!("provision: error: {e:#}");
            } else if !STAGE_ERROR_LOGGED.load(Relaxed) {
                tracing::error!(exit_code = code.as_i32(), "{e:#}");
            }
            code.as_i32()
        }
    }
}

pub fn run(cli: &Cli) -> Result<()> {
    let inputs = load_inputs(cli)?;
    let ctx = make_context(cli, &inputs);
    let rec = Records {
        report: ctx.path(
            inputs
                .config
                .report
                .clone()
                .unwrap_or_else(|| PathBuf::from(report::DEFAULT_REPORT)),
        ),
        metrics: ctx.path(
            inputs
                .config
                .metrics_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::metrics::DEFAULT_DIR)),
        ),
    };
    let cfg = &inputs.config;
    match cli.command {
        Command::Keys => run_keys(cli, &ctx, cfg, &rec),
        Command::Secrets => run_secrets(cli, &ctx, &inputs, &rec),
        Command::All => {
            run_disks(cli, &ctx, cfg, &rec)?;
            run_keys(cli, &ctx, cfg, &rec)?;
            run_secrets(cli, &ctx, &inputs, &rec)
        }
        Command::Disks => run_disks(cli, &ctx, cfg, &rec),
        Command::Status => status::status(cli, &ctx, cfg, &rec.report),
        Command::Validate => validate::validate(cli, &ctx, &inputs),
    }
}

/// The layout file: `--layout`, else the config's `disks.layout` (relative to the config).
fn layout_path(cli: &Cli, config_dir: &Path, cfg: &Config) -> Option<PathBuf> {
    if let Some(l) = &cli.layout {
        return Some(l.clone());
    }
    cfg.disks.as_ref().map(|d| {
        if d.layout.is_absolute() {
            d.layout.clone()
        } else {
            config_dir.join(&d.layout)
        }
    })
}

fn disks_inputs(cli: &Cli, layout: PathBuf, cfg: &Config) -> crate::disks::DisksInputs {
    crate::disks::DisksInputs {
        layout,
        state_file: cli.state.clone(),
        plan_hash: cli.plan_hash.clone(),
        options: crate::disks::plan::PlanOptions {
            lvm_conf: cfg
                .disks
                .as_ref()
                .and_then(|d| d.lvm_conf.as_ref())
                .map(|p| p.to_string_lossy().into_owned()),
            root: Some(cli.root.clone()),
        },
    }
}

fn run_disks(cli: &Cli, ctx: &Context, cfg: &Config, rec: &Records) -> Result<()> {
    let Some(layout) = layout_path(cli, &ctx.config_dir, cfg) else {
        tracing::info!(
            stage = "disks",
            "no disks section in the config and no --layout: nothing to do"
        );
        return Ok(());
    };
    let inputs = disks_inputs(cli, layout, cfg);
    run_stage(cli, ctx, rec, "disks", || crate::disks::run(ctx, &inputs))
}

fn run_keys(cli: &Cli, ctx: &Context, cfg: &Config, rec: &Records) -> Result<()> {
    let Some(k) = &cfg.keys else {
        tracing::info!(
            stage = "keys",
            "no keys section in the config: nothing to do"
        );
        return Ok(());
    };
    run_stage(cli, ctx, rec, "keys", || crate::keys::run(ctx, k))
}

fn run_secrets(cli: &Cli, ctx: &Context, inputs: &Inputs, rec: &Records) -> Result<()> {
    let cfg = &inputs.config;
    // A config problem found by a side's plan names the config file it is in.
    let in_config = |r: Result<StageOutput>| {
        r.map_err(|e| match (code_of(&e), &inputs.config_path) {
            (Code::BadInput, Some(file)) => e.context(file.display().to_string()),
            _ => e,
        })
    };
    if cfg.secrets.is_none() && cfg.sops.is_none() {
        tracing::info!(
            stage = "secrets",
            "no secrets or sops section in the config: nothing to do"
        );
        return Ok(());
    }
    // One run at a time (a dry run changes nothing and takes no lock).
    let _lock = if ctx.dry_run {
        None
    } else {
        Some(crate::secrets::lock(ctx)?)
    };
    // The agenix and the sops-nix side each run (and fail) on their own; the first error wins.
    let agenix = cfg.secrets.as_ref().map_or(Ok(()), |s| {
        run_stage(cli, ctx, rec, "secrets", || {
            in_config(crate::secrets::run(ctx, s))
        })
    });
    let sops = cfg.sops.as_ref().map_or(Ok(()), |s| {
        run_stage(cli, ctx, rec, "sops", || {
            in_config(crate::secrets::sops::stage::run(ctx, s))
        })
    });
    agenix.and(sops)
}
