//! What a run will do, decided before any network access: the URL (template expanded from
//! the cmdline or the kernel hostname), how the bundle will be verified, the files to write,
//! and the retry policy.

use anyhow::Result;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::config::{check_config, expand_template, parse_url, KeysConfig, KEY_MODE};
use super::{bundle, fetch};
use crate::cmdline::valid_hostname;
use crate::context::Context;
use crate::exit::{coded, Code};

/// Where the kernel keeps its hostname.
pub const KERNEL_HOSTNAME: &str = "/proc/sys/kernel/hostname";

/// How the bundle will be checked.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Expected sha256 and where it came from.
    pub sha256: Option<(String, String)>,
    /// HTTPS: the CA file that must have signed the server certificate, or `None` for the
    /// system roots. `None` here and `https == false` means plain http.
    pub ca_file: Option<PathBuf>,
    pub https: bool,
    /// Plain http without a hash, allowed by `insecure: true`.
    pub insecure: bool,
}

impl Verification {
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some((h, from)) = &self.sha256 {
            parts.push(format!("sha256 {h} (from {from})"));
        }
        if self.https {
            parts.push(match &self.ca_file {
                Some(ca) => format!("HTTPS with CA {}", ca.display()),
                None => "HTTPS with the system roots".into(),
            });
        }
        if self.insecure {
            parts.push("NONE: plain http without sha256 (insecure: true)".into());
        }
        parts.join(" and ")
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "summary": self.summary(),
            "sha256": self.sha256.as_ref().map(|(h, _)| h),
            "sha256_from": self.sha256.as_ref().map(|(_, f)| f),
            "https": self.https,
            "ca_file": self.ca_file.as_ref().map(|p| p.display().to_string()),
            "insecure": self.insecure,
        })
    }
}

/// One private key to install.
#[derive(Debug, Clone)]
pub struct Target {
    pub member: String,
    /// Target-system path (as configured).
    pub path: PathBuf,
    pub mode: u32,
    pub optional: bool,
}

/// What a run will do, decided before any network access.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: Url,
    pub verification: Verification,
    pub targets: Vec<Target>,
}

fn kernel_hostname() -> Result<String> {
    let h = std::fs::read_to_string(KERNEL_HOSTNAME)
        .map_err(|e| coded(Code::BadInput, format!("{KERNEL_HOSTNAME}: {e}")))?;
    Ok(h.trim().to_string())
}

fn bad_cmdline(ctx: &Context, name: &str) -> Result<()> {
    match ctx.cmdline.bad_value(name) {
        Some(b) => Err(coded(Code::BadInput, format!("{b}"))),
        None => Ok(()),
    }
}

/// Decide URL, verification and targets from the config and the kernel cmdline.
pub fn plan(ctx: &Context, cfg: &KeysConfig) -> Result<Plan> {
    let problems = check_config(cfg);
    if !problems.is_empty() {
        return Err(coded(
            Code::BadInput,
            format!("keys config: {}", problems.join("; ")),
        ));
    }
    bad_cmdline(ctx, "keys_url")?;
    bad_cmdline(ctx, "keys_sha256")?;
    let prefix = &ctx.cmdline.prefix;
    let (tpl, origin) = match (&ctx.cmdline.keys_url, &cfg.url) {
        (Some(u), _) => (u.clone(), format!("kernel cmdline {prefix}.keys_url")),
        (None, Some(u)) => (u.clone(), "keys.url".to_string()),
        (None, None) => {
            return Err(coded(
                Code::BadInput,
                format!("keys: no URL (set keys.url in the config or {prefix}.keys_url on the kernel cmdline)"),
            ))
        }
    };
    let expanded = expand_template(&tpl, |name| match name {
        "hostname" => {
            bad_cmdline(ctx, "hostname")?;
            if let Some(h) = &ctx.cmdline.hostname {
                return Ok(h.clone());
            }
            let h = kernel_hostname()?;
            if !valid_hostname(&h) {
                return Err(coded(
                    Code::BadInput,
                    format!(
                        "{origin} uses {{hostname}}, but the kernel hostname {h:?} is not usable; \
                         set {prefix}.hostname= on the kernel cmdline"
                    ),
                ));
            }
            Ok(h)
        }
        _ => {
            if let Some(b) = ctx.cmdline.bad.iter().find(|b| b.key == "BOOTIF") {
                return Err(coded(Code::BadInput, format!("{b}")));
            }
            ctx.cmdline.mac.clone().ok_or_else(|| {
                coded(
                    Code::BadInput,
                    format!(
                        "{origin} uses {{mac}}, but the kernel cmdline has no BOOTIF=01-aa-bb-…"
                    ),
                )
            })
        }
    })?;
    let url = parse_url(&expanded, &origin)?;

    let sha256 = match (&ctx.cmdline.keys_sha256, &cfg.sha256) {
        (Some(h), _) => Some((h.clone(), format!("kernel cmdline {prefix}.keys_sha256"))),
        (None, Some(h)) => Some((h.to_ascii_lowercase(), "keys.sha256".to_string())),
        (None, None) => None,
    };
    let https = url.scheme() == "https";
    let ca_file = cfg.ca_file.as_ref().map(|p| ctx.config_path(p));
    if ca_file.is_some() && !https {
        return Err(coded(
            Code::BadInput,
            format!(
                "keys.ca_file is set but the URL {} is plain http; use https:// (or drop ca_file)",
                fetch::display_url(&url)
            ),
        ));
    }
    if !https && sha256.is_none() && !cfg.insecure {
        return Err(coded(
            Code::BadInput,
            format!(
                "refusing to fetch keys over plain http without a sha256: {} (give keys.sha256 or \
                 {prefix}.keys_sha256, use https with keys.ca_file, or set `insecure: true`)",
                fetch::display_url(&url)
            ),
        ));
    }
    let verification = Verification {
        insecure: !https && sha256.is_none(),
        sha256,
        ca_file,
        https,
    };
    let targets = cfg
        .members
        .iter()
        .map(|(name, t)| Target {
            member: bundle::normalize_member(name)
                .ok()
                .flatten()
                .unwrap_or_else(|| name.clone()),
            path: t.path.clone(),
            mode: t.mode.unwrap_or(KEY_MODE),
            optional: t.optional,
        })
        .collect();
    Ok(Plan {
        url,
        verification,
        targets,
    })
}

/// Seconds from the config as a Duration (values [`check_config`] would refuse become 1 s
/// rather than a panic).
pub(super) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(1))
}

/// The retry policy from the config.
pub fn retry_policy(cfg: &KeysConfig) -> fetch::Retry {
    let mut r = fetch::Retry::new()
        .initial_backoff(Duration::from_millis(cfg.initial_backoff_ms))
        .max_backoff(Duration::from_millis(cfg.max_backoff_ms))
        .deadline(secs(cfg.deadline_s));
    if let Some(n) = cfg.max_retries {
        r = r.max_retries(n);
    }
    r
}
