//! `provision validate`: the config and layout checked offline, as a run would check them.

use anyhow::Result;

use super::{layout_path, Cli, Inputs, OutputFormat};
use crate::context::Context;
use crate::exit::{coded, Code};

/// `validate`: config and layout, offline; every problem listed, exit 1 if any — or, when
/// the secrets or sops section has problems, the code a real run would exit with for the
/// first of them (3 config, 8 a missing file or identity).
pub(super) fn validate(cli: &Cli, ctx: &Context, inputs: &Inputs) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    let mut secrets_code: Option<Code> = None;
    let settings = crate::cmdline::settings(&inputs.cmdline_text, inputs.config.prefix());
    if cli.cmdline.is_some() || cli.cmdline_file.is_some() {
        problems.extend(settings.bad.iter().map(|b| b.to_string()));
        problems.extend(
            settings
                .unknown
                .iter()
                .map(|u| format!("kernel cmdline: unknown key {u} under our prefix")),
        );
    }
    let layout = layout_path(cli, &inputs.config_dir(), &inputs.config);
    let mut document = serde_json::Value::Null;
    if let Some(l) = &layout {
        let file = l.display().to_string();
        match std::fs::read_to_string(l) {
            Err(e) => problems.push(format!("{file}: cannot read layout: {e}")),
            Ok(text) => {
                let parsed = crate::layout::parse::document(&file, &text).and_then(|d| {
                    let r = crate::layout::parse::from_value(
                        &file,
                        &d,
                        &crate::disks::types::node_types(),
                    );
                    document = d;
                    r
                });
                if let Err(e) = parsed {
                    problems.extend(e.problems.iter().map(|p| format!("{}: {p}", e.file)));
                }
            }
        }
    }
    if let Some(k) = &inputs.config.keys {
        problems.extend(
            crate::keys::check_config(k)
                .into_iter()
                .map(|p| format!("keys: {p}")),
        );
    }
    let secrets_problems = [
        inputs
            .config
            .secrets
            .as_ref()
            .map(|c| crate::secrets::check(ctx, c)),
        inputs
            .config
            .sops
            .as_ref()
            .map(|c| crate::secrets::sops::stage::check(ctx, c)),
    ];
    let name = inputs
        .config_path
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no config)".into());
    for (code, p) in secrets_problems.into_iter().flatten().flatten() {
        secrets_code = Some(secrets_code.map_or(code, |c| c.min_by_value(code)));
        problems.push(format!("{name}: {p}"));
    }
    if cli.output == OutputFormat::Json {
        // For tools (and vm-tests' layout checker, which reads YAML layouts through it): the
        // verdict, every problem as the text output prints it, and the layout document as read
        // (YAML turned into JSON, nothing interpreted; null when it could not be read).
        let out = serde_json::json!({
            "ok": problems.is_empty(),
            "config": inputs.config_path.as_deref().map(|p| p.display().to_string()),
            "layout_file": layout.as_deref().map(|p| p.display().to_string()),
            "layout": document,
            "problems": problems,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    if problems.is_empty() {
        if cli.output == OutputFormat::Json {
            return Ok(());
        }
        println!(
            "{name}: OK{}",
            layout
                .map(|l| format!(", layout {}: OK", l.display()))
                .unwrap_or_default()
        );
        return Ok(());
    }
    if cli.output == OutputFormat::Text {
        for p in &problems {
            println!("{p}");
        }
    }
    Err(coded(
        secrets_code.unwrap_or(Code::Failure),
        format!(
            "{} problem{} found",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    ))
}
