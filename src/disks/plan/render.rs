//! The plan in words: what `--dry-run`, `status` and the logs show.

use super::model::{DiskClass, Plan};
use crate::disks::step::{concurrent_groups, Effect};
use crate::layout::size::human;

/// The plan in words, for `--dry-run` and logs.
pub fn render_text(p: &Plan) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "disks: mode {} ({})", p.mode.as_str(), p.reason);
    for d in &p.disks {
        let _ = writeln!(
            o,
            "  disk {}: {} → {}{}{}",
            d.name,
            d.reference,
            d.device.as_deref().unwrap_or("NOT FOUND"),
            d.size
                .map(|s| format!(", {}", human(s)))
                .unwrap_or_default(),
            d.class
                .map(|c| format!(
                    ", {}",
                    match c {
                        DiskClass::Blank => "blank",
                        DiskClass::Ours => "ours",
                        DiskClass::Foreign => "FOREIGN",
                    }
                ))
                .unwrap_or_default(),
        );
        for c in &d.content {
            let _ = writeln!(o, "      {c}");
        }
    }
    for w in &p.warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    if !p.refusals.is_empty() {
        let _ = writeln!(o, "REFUSED — nothing will be touched on any disk:");
        for r in &p.refusals {
            let _ = writeln!(o, "  {}: {}", r.disk, r.reason);
        }
    }
    for d in &p.destroys {
        let _ = writeln!(o, "DESTROYS {d}");
    }
    for m in &p.missing {
        let _ = writeln!(o, "MISSING {m}");
    }
    if !p.actions.is_empty() {
        let _ = writeln!(o, "actions:");
        let groups = concurrent_groups(&p.actions);
        for (i, a) in p.actions.iter().enumerate() {
            if let Some(g) = groups.iter().find(|g| g[0][0] == i) {
                let last = g.last().and_then(|c| c.last()).copied().unwrap_or(i);
                let _ = writeln!(
                    o,
                    "       (steps {}–{} may run concurrently, {} devices, up to one per CPU: each device's wait and format in order)",
                    i + 1,
                    last + 1,
                    g.len()
                );
            }
            let mark = if a.destructive { "DESTRUCTIVE" } else { "safe" };
            let _ = writeln!(o, "  {:>3}. [{mark}] {}", i + 1, a.description);
            if let Some(argv) = a.command() {
                let _ = writeln!(o, "       $ {}", crate::system::shell_join(&argv));
            }
            match &a.effect {
                Effect::Run {
                    stdin: Some(stdin), ..
                } => {
                    for l in stdin.lines() {
                        let _ = writeln!(o, "       < {l}");
                    }
                }
                Effect::Swapon { device, options } => {
                    let _ = writeln!(o, "       swapon({device}, \"{}\")", options.text);
                }
                Effect::Mount {
                    source,
                    target,
                    fs_type,
                    options,
                } => {
                    let _ = writeln!(
                        o,
                        "       mount({source}, {target}, {fs_type}, \"{}\")",
                        options.text
                    );
                }
                _ => {}
            }
        }
    }
    let _ = writeln!(o, "plan hash: {}", p.plan_hash);
    o
}
