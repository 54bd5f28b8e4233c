//! The pure planner (DESIGN §6): layout + observed state + kernel cmdline → an ordered plan.
//!
//! Everything that decides whether disks may be touched is decided here, for all disks at once,
//! before anything runs: the mode (mount-only unless the cmdline asks), disk resolution, the
//! blank/ours/foreign classification and every safety refusal. `--dry-run` prints exactly this
//! plan; the executor only carries it out.
//!
//! [`plan`] composes the rooms in stage order: resolve every disk ([`crate::disks::resolve`]),
//! decide the `mode`, classify each disk and check `safety`, then build the steps — the LVM
//! settings write ([`crate::disks::lvm`]), `provision` (with the partition `table`s) and `mount`.
//! `model` says what a plan is, `render` puts one in words; the steps themselves are
//! [`crate::disks::step`]'s. Every room imports the model, none imports this file.

mod mode;
mod model;
mod mount;
mod provision;
mod render;
mod safety;
mod table;

use super::lvm::{self, lvm_devices_settings, DEFAULT_LVM_CONF};
use super::resolve::resolve;
use super::state::{BlockDevice, SystemState};
use crate::cmdline::Settings;
use crate::layout::Layout;

pub(crate) use model::PlanCx;
pub use model::{plan_hash, DiskClass, DiskMatch, Mode, Plan, PlanOptions, Refusal, RefusalKind};
pub use mount::{fs_mismatch, type_matches};
pub use render::render_text;

/// Compute the plan.
pub fn plan(
    layout: &Layout,
    state: &SystemState,
    cmdline: &Settings,
    opts: &PlanOptions,
) -> anyhow::Result<Plan> {
    let layout_hash = layout.hash();
    let lvm_settings = lvm_devices_settings(layout, state.lvm_version.as_deref());
    let lvm_cfg = lvm::config_arg(&lvm_settings);
    let mut warnings: Vec<String> = cmdline
        .unknown
        .iter()
        .map(|k| format!("kernel cmdline: unknown key {k} under our prefix (typo?) — ignored"))
        .collect();

    // 1. Resolve every disk.
    let (mut disks, resolved, mut refusals) = resolve_disks(layout, state);

    // 2. Mode.
    let decided = mode::decide(layout, state, cmdline);
    let mut mode = decided.mode;
    warnings.extend(decided.warnings);
    refusals.extend(decided.refusals);

    // 3. What is on each disk; safety (provision only) — for every disk before any step.
    let found = safety::classify_all(layout, state, &resolved);
    for (m, f) in disks.iter_mut().zip(&found) {
        if let Some(f) = f {
            m.class = f.class;
            m.content = f.content.clone();
        }
    }
    let mut destroys = Vec::new();
    if mode == Mode::Provision {
        let checked = safety::check(layout, state, cmdline, &resolved, &found);
        refusals.extend(checked.refusals);
        if refusals.is_empty() {
            destroys = checked.destroys;
        } else {
            mode = Mode::Refused;
        }
    }

    // 4. Steps.
    let mut actions = Vec::new();
    let mut missing = Vec::new();
    if mode != Mode::Refused {
        let cx = PlanCx {
            layout,
            state,
            cmdline,
            resolved: &resolved,
            mode,
            lvm_cfg: &lvm_cfg,
            layout_hash: &layout_hash,
        };
        let conf = opts
            .lvm_conf
            .clone()
            .unwrap_or_else(|| DEFAULT_LVM_CONF.to_string());
        actions.push(lvm::conf_step(&lvm_settings, conf));
        if mode == Mode::Provision {
            provision::actions(&cx, &mut actions)?;
        }
        mount::actions(&cx, &mut actions, &mut missing)?;
        if mode == Mode::MountOnly {
            let root = opts.root.as_deref().unwrap_or(std::path::Path::new("/"));
            missing.extend(mount::wrong_filesystems(layout, state, &resolved, root));
        }
    }
    if mode == Mode::MountOnly {
        // refusals from resolution matter only where mount-only needs the disk
        refusals.retain(|r| r.kind != RefusalKind::Resolution);
    }
    let mut plan = Plan {
        mode,
        reason: decided.reason,
        layout_hash,
        disks,
        refusals,
        destroys,
        missing,
        warnings,
        actions,
        plan_hash: String::new(),
    };
    plan.plan_hash = plan_hash(&plan);
    Ok(plan)
}

/// Each layout disk's match on this machine, in layout order, and the refusals of those that do
/// not resolve to exactly one disk or resolve to the same disk as another.
fn resolve_disks<'s>(
    layout: &Layout,
    state: &'s SystemState,
) -> (Vec<DiskMatch>, Vec<Option<&'s BlockDevice>>, Vec<Refusal>) {
    let mut refusals = Vec::new();
    let mut matches = Vec::new();
    let mut resolved: Vec<Option<&BlockDevice>> = Vec::new();
    for d in &layout.disks {
        let r = resolve(d, state);
        let mut m = DiskMatch {
            name: d.name.clone(),
            reference: d.reference.describe(),
            stable: d.reference.is_stable(),
            device: None,
            size: None,
            class: None,
            content: Vec::new(),
        };
        match r {
            Ok(dev) => {
                m.device = Some(dev.path.clone());
                m.size = Some(dev.size);
                resolved.push(Some(dev));
            }
            Err(e) => {
                refusals.push(Refusal {
                    disk: d.name.clone(),
                    reason: e,
                    kind: RefusalKind::Resolution,
                });
                resolved.push(None);
            }
        }
        matches.push(m);
    }
    for i in 0..resolved.len() {
        for j in 0..i {
            if let (Some(a), Some(b)) = (resolved[i], resolved[j]) {
                if a.path == b.path {
                    refusals.push(Refusal {
                        disk: layout.disks[i].name.clone(),
                        reason: format!(
                            "resolves to {}, which is also disk {}",
                            a.path, layout.disks[j].name
                        ),
                        kind: RefusalKind::Resolution,
                    });
                }
            }
        }
    }
    (matches, resolved, refusals)
}
