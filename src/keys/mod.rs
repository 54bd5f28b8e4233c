//! Keys stage (DESIGN §7): fetch `{hostname}.tar.gz` from the boot server, verify it, and
//! install the SSH root key and host key before sshd starts.
//!
//! Flow: config + kernel cmdline → [`Plan`] (URL, verification, target files; pure apart from
//! reading the kernel hostname) → fetch with retries ([`fetch`]) → sha256 → bundle checks
//! ([`bundle`], nothing written yet) → all-or-nothing install ([`install`]) → fingerprints in
//! the log and the report. `--dry-run` stops after the plan: no network access at all.

pub mod bundle;
mod config;
mod dry_run;
pub mod fetch;
pub mod install;
mod plan;
mod status;

use anyhow::Result;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::context::{Context, StageOutput};
use crate::exit::{coded, Code};

pub use config::{
    check_config, default_members, expand_template, parse_mode, pub_path, KeysConfig, MemberTarget,
    KEY_MODE, PUB_MODE,
};
use plan::secs;
pub use plan::{plan, retry_policy, Plan, Target, Verification, KERNEL_HOSTNAME};
pub use status::status;

/// Run the keys stage: plan, then (unless `ctx.dry_run`) fetch, verify, check and install.
pub fn run(ctx: &Context, cfg: &KeysConfig) -> Result<StageOutput> {
    let plan = plan(ctx, cfg)?;
    let url = fetch::display_url(&plan.url);
    if plan.verification.insecure {
        tracing::warn!(
            stage = "keys",
            "INSECURE: fetching keys over plain http without a sha256 ({url}); anyone on the \
             network path can hand this node its SSH keys (insecure: true in the config)"
        );
    }
    if ctx.dry_run {
        return Ok(dry_run::dry_run_output(ctx, cfg, &plan));
    }

    let client = fetch::client(&fetch::ClientOptions {
        connect_timeout: secs(cfg.connect_timeout_s),
        ca_file: plan.verification.ca_file.as_deref(),
        https_only: plan.verification.https,
    })?;
    let bytes = fetch::fetch(
        &client,
        &plan.url,
        &retry_policy(cfg),
        secs(cfg.request_timeout_s),
        cfg.max_bundle_bytes,
        &|n| ctx.facts.update(|f| f.key_fetch_attempts = u64::from(n)),
    )?;
    let got = hex::encode(Sha256::digest(&bytes));
    if let Some((want, from)) = &plan.verification.sha256 {
        if got != *want {
            return Err(coded(
                Code::Verify,
                format!(
                    "{url}: sha256 mismatch: expected {want} (from {from}), got {got}; nothing written"
                ),
            ));
        }
    }
    tracing::info!(stage = "keys", bytes = bytes.len(), sha256 = %got, "fetched {url}");

    let wanted: Vec<bundle::Wanted> = plan
        .targets
        .iter()
        .map(|t| bundle::Wanted {
            member: t.member.clone(),
            optional: t.optional,
        })
        .collect();
    let limits = bundle::Limits {
        max_bytes: cfg.max_bundle_bytes,
        max_members: cfg.max_members,
    };
    let checked = bundle::check(&bytes, &wanted, limits)
        .map_err(|e| e.context(format!("{url}: nothing written")))?;
    for name in &checked.ignored {
        tracing::warn!(
            stage = "keys",
            "{url}: bundle member {name:?} is not in keys.members; ignored"
        );
    }

    let mut writes = Vec::new();
    let mut installed = Vec::new();
    for k in &checked.keys {
        let Some(t) = plan.targets.iter().find(|t| t.member == k.member) else {
            continue;
        };
        let mut pub_line = k.info.public_openssh.clone();
        pub_line.push('\n');
        writes.push(install::FileWrite {
            path: ctx.path(&t.path),
            data: k.data.clone(),
            mode: t.mode,
        });
        writes.push(install::FileWrite {
            path: ctx.path(pub_path(&t.path)),
            data: pub_line.into_bytes(),
            mode: PUB_MODE,
        });
        installed.push((t, &k.info));
    }
    let owner = rustix::process::geteuid().is_root().then_some((0, 0));
    let outcomes = install::install(&writes, owner)
        .map_err(|e| e.context("keys: installing failed; earlier keys kept where possible"))?;

    let mut actions = vec![format!(
        "fetched {url} ({} bytes, sha256 {got}); verified: {}",
        bytes.len(),
        plan.verification.summary()
    )];
    let mut text = format!(
        "keys: fetched {url}\n  verified: {}\n",
        plan.verification.summary()
    );
    let mut files = Vec::new();
    for (i, (t, info)) in installed.iter().enumerate() {
        let outcome = outcomes[2 * i];
        let pub_outcome = outcomes[2 * i + 1];
        tracing::info!(
            stage = "keys",
            path = %t.path.display(),
            fingerprint = %info.fingerprint,
            "{} {} ({} {})",
            outcome.as_str(),
            t.path.display(),
            info.algorithm,
            info.fingerprint
        );
        actions.push(format!(
            "{} {} ({} {}) and {} ({})",
            outcome.as_str(),
            t.path.display(),
            info.algorithm,
            info.fingerprint,
            pub_path(&t.path).display(),
            pub_outcome.as_str()
        ));
        text += &format!(
            "  {}: {} {} ({})\n",
            t.path.display(),
            info.algorithm,
            info.fingerprint,
            outcome.as_str()
        );
        files.push(json!({
            "member": t.member,
            "path": t.path.display().to_string(),
            "pub_path": pub_path(&t.path).display().to_string(),
            "type": info.algorithm,
            "fingerprint": info.fingerprint,
            "outcome": outcome.as_str(),
        }));
    }
    for t in plan
        .targets
        .iter()
        .filter(|t| !checked.keys.iter().any(|k| k.member == t.member))
    {
        text += &format!(
            "  {}: optional member {} not in the bundle; left as it is\n",
            t.path.display(),
            t.member
        );
    }
    Ok(StageOutput {
        actions,
        details: json!({
            "url": url,
            "sha256": got,
            "verification": plan.verification.to_json(),
            "files": files,
            "ignored_members": checked.ignored,
            "text": text,
        }),
    })
}
