//! `provision status`: what is there now against the layout, keys, secrets and the last report.

use anyhow::Result;
use std::path::Path;

use super::{layout_path, Cli, OutputFormat};
use crate::config::Config;
use crate::context::Context;
use crate::report;

/// `status`: what is there now against the layout, keys, secrets and the last report.
pub(super) fn status(cli: &Cli, ctx: &Context, cfg: &Config, report_path: &Path) -> Result<()> {
    let mut out = serde_json::Map::new();
    let mut text = String::new();
    let layout = layout_path(cli, &ctx.config_dir, cfg);
    let layout_parsed = match &layout {
        Some(p) => Some(crate::disks::types::load(p)?),
        None => None,
    };
    let empty = crate::layout::Layout::default();
    let state = crate::disks::observe(
        ctx,
        layout_parsed.as_ref().unwrap_or(&empty),
        cli.state.as_deref(),
    )?;
    if let (Some(path), Some(l)) = (&layout, &layout_parsed) {
        // Plan as a boot without the flag would: disks matched, what is missing.
        let mut quiet = ctx.cmdline.clone();
        quiet.provision = crate::cmdline::ProvisionRequest::No;
        let opts = crate::disks::plan::PlanOptions {
            root: Some(ctx.root.clone()),
            ..Default::default()
        };
        let p = crate::disks::plan::plan(l, &state, &quiet, &opts)?;
        text.push_str(&format!(
            "layout {} (hash {})\n",
            path.display(),
            p.layout_hash
        ));
        for d in &p.disks {
            text.push_str(&format!(
                "  disk {}: {} → {}\n",
                d.name,
                d.reference,
                d.device.as_deref().unwrap_or("NOT FOUND")
            ));
        }
        for vg in &l.vgs {
            match state.vg(&vg.name) {
                Some(o) => text.push_str(&format!(
                    "  VG {}: {} LVs, {} free, tags [{}]\n",
                    vg.name,
                    o.lv_count,
                    crate::layout::size::human(o.vg_free),
                    o.vg_tags.join(", ")
                )),
                None => text.push_str(&format!("  VG {}: not found\n", vg.name)),
            }
        }
        for m in &p.missing {
            text.push_str(&format!("  MISSING {m}\n"));
        }
        out.insert(
            "layout".into(),
            serde_json::json!({
                "path": path, "hash": p.layout_hash, "disks": p.disks, "missing": p.missing,
            }),
        );
    }
    for m in &state.mounts {
        if m.source.starts_with("/dev/") {
            text.push_str(&format!(
                "  mount {} on {} ({})\n",
                m.source, m.target, m.fs_type
            ));
        }
    }
    for s in &state.swaps {
        text.push_str(&format!("  swap {}\n", s.path));
    }
    out.insert("state".into(), serde_json::to_value(&state)?);
    if let Some(k) = &cfg.keys {
        let v = crate::keys::status(ctx, k);
        text.push_str(&format!("keys: {}\n", serde_json::to_string(&v)?));
        out.insert("keys".into(), v);
    }
    if let Some(sc) = &cfg.secrets {
        let v = crate::secrets::status(ctx, sc);
        text.push_str(&format!("secrets: {}\n", serde_json::to_string(&v)?));
        out.insert("secrets".into(), v);
    }
    if let Some(sc) = &cfg.sops {
        let v = crate::secrets::sops::stage::status(ctx, sc);
        text.push_str(&format!("sops: {}\n", serde_json::to_string(&v)?));
        out.insert("sops".into(), v);
    }
    let rep = report::load_current(report_path);
    if let Some(r) = &rep {
        for st in &r.stages {
            text.push_str(&format!(
                "last run: {} {} ({} ms){}\n",
                st.stage,
                st.outcome,
                st.duration_ms,
                st.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    out.insert("report".into(), serde_json::to_value(&rep)?);
    match cli.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(out))?
        ),
        OutputFormat::Text => print!("{text}"),
    }
    Ok(())
}
