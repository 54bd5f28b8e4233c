//! Before the first wipe: every tool the plan calls is on this node, and sgdisk knows every type
//! code the plan hands it (exit 4, nothing changed).

use anyhow::Result;

use crate::context::Context;
use crate::disks::plan::Plan;
use crate::disks::step::Step;
use crate::exit::{coded, Code};

/// A plan that would destroy anything runs only when every tool it calls is on this node: a
/// missing `mkfs.xfs` is found before the first wipe, not after it (exit 4, nothing changed).
pub(super) fn tools_present(ctx: &Context, plan: &Plan) -> Result<()> {
    if !plan.actions.iter().any(|a| a.destructive) {
        return Ok(());
    }
    let mut missing: Vec<String> = Vec::new();
    for (i, a) in plan.actions.iter().enumerate() {
        let Some(tool) = a.command().and_then(|v| v.into_iter().next()) else {
            continue;
        };
        if !ctx.runner.has_tool(&tool)
            && !missing.iter().any(|m| m.starts_with(&format!("{tool} (")))
        {
            missing.push(format!("{tool} (step {}: {})", i + 1, a.description));
        }
    }
    if !missing.is_empty() {
        return Err(coded(
            Code::Refused,
            format!(
                "not installed on this node, needed by the plan: {}; nothing was changed",
                missing.join(", ")
            ),
        ));
    }
    sgdisk_knows_the_type_codes(ctx, plan)
}

/// sgdisk turns a 4-digit type code it does not know into 8300 with only a warning: every code
/// the plan hands it must be one `sgdisk -L` lists (exit 4, nothing changed). GUIDs are taken as
/// they are.
fn sgdisk_knows_the_type_codes(ctx: &Context, plan: &Plan) -> Result<()> {
    let codes: Vec<String> = plan
        .actions
        .iter()
        .filter_map(Step::argv)
        .filter(|v| v.first().is_some_and(|t| t == "sgdisk"))
        .flatten()
        .filter_map(|arg| arg.strip_prefix("--typecode=")?.split_once(':'))
        .map(|(_, code)| code.to_ascii_lowercase())
        .filter(|c| c.len() == 4)
        .collect();
    if codes.is_empty() {
        return Ok(());
    }
    let out = ctx.runner.run_raw(&["sgdisk".into(), "-L".into()], None)?;
    let listed = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let known: std::collections::HashSet<&str> = listed
        .split_whitespace()
        .filter(|w| w.len() == 4 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    if known.is_empty() {
        return Ok(()); // a recording runner, or an sgdisk that lists nothing: nothing to compare
    }
    let mut unknown: Vec<&str> = codes
        .iter()
        .map(String::as_str)
        .filter(|c| !known.contains(c))
        .collect();
    unknown.dedup();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(coded(
            Code::Refused,
            format!(
                "sgdisk on this node does not know the partition type code{} {} (it would write 8300 instead; see sgdisk -L, or give the type's GUID); nothing was changed",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", ").to_ascii_uppercase()
            ),
        ))
    }
}
