//! The keys stage's dry run in words: what would be fetched and verified, and each file that
//! would be written with the key there now. No network access.

use serde_json::json;
use std::path::Path;

use super::config::{pub_path, KeysConfig, PUB_MODE};
use super::plan::Plan;
use super::{bundle, fetch};
use crate::context::{Context, StageOutput};

fn fingerprint_of_file(path: &Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    bundle::parse_private_key(&data).ok().map(|i| i.fingerprint)
}

pub(super) fn dry_run_output(ctx: &Context, cfg: &KeysConfig, plan: &Plan) -> StageOutput {
    let url = fetch::display_url(&plan.url);
    let mut actions = vec![format!(
        "would fetch {url} (no network access in a dry run); verify: {}",
        plan.verification.summary()
    )];
    let mut text = format!(
        "keys (dry run, no network access):\n  would fetch: {url}\n  verification: {}\n  \
         limits: {} bytes, {} entries; deadline {} s\n",
        plan.verification.summary(),
        cfg.max_bundle_bytes,
        cfg.max_members,
        cfg.deadline_s
    );
    let mut files = Vec::new();
    for t in &plan.targets {
        let current = fingerprint_of_file(&ctx.path(&t.path));
        let pubp = pub_path(&t.path);
        actions.push(format!(
            "would write {} ({:04o}) from member {}{}",
            t.path.display(),
            t.mode,
            t.member,
            if t.optional { " (if present)" } else { "" }
        ));
        actions.push(format!("would write {} ({PUB_MODE:04o})", pubp.display()));
        text += &format!(
            "  would write: {} ({:04o}, member {}{}) and {} ({PUB_MODE:04o}); now: {}\n",
            t.path.display(),
            t.mode,
            t.member,
            if t.optional { ", optional" } else { "" },
            pubp.display(),
            current.as_deref().unwrap_or("missing or not a key"),
        );
        files.push(json!({
            "member": t.member,
            "path": t.path.display().to_string(),
            "mode": format!("{:04o}", t.mode),
            "pub_path": pubp.display().to_string(),
            "optional": t.optional,
            "current_fingerprint": current,
        }));
    }
    StageOutput {
        actions,
        details: json!({
            "dry_run": true,
            "url": url,
            "verification": plan.verification.to_json(),
            "files": files,
            "text": text,
        }),
    }
}
