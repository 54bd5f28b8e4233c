//! The pure planner (DESIGN §6): layout + observed state + kernel cmdline → an ordered plan.
//!
//! Everything that decides whether disks may be touched is decided here, for all disks at once,
//! before anything runs: the mode (mount-only unless the cmdline asks), disk resolution, the
//! blank/ours/foreign classification and every safety refusal. `--dry-run` prints exactly this
//! plan; the executor only carries it out.
//!
//! [`plan`] composes the rooms in stage order: resolve every disk ([`crate::disks::resolve`]),
//! decide the [`mode`], classify each disk and check [`safety`], then build the steps — the LVM
//! settings write ([`crate::disks::lvm`]), [`provision`] (with the partition [`table`]s) and
//! [`mount`]. [`render`] puts a plan in words. The steps themselves are [`crate::disks::step`]'s.

mod mode;
mod mount;
mod provision;
mod render;
mod safety;
mod table;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::lvm::{self, lvm_devices_settings, DEFAULT_LVM_CONF};
use super::resolve::resolve;
use super::state::{BlockDevice, SystemState};
use super::step::Action;
use crate::cmdline::Settings;
use crate::exit::Code;
use crate::layout::Layout;

pub use mode::Mode;
pub use mount::{fs_mismatch, type_matches};
pub use render::render_text;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// What is refused: a layout disk's name, `lvm_vg.<name>`, or `cmdline`.
    pub disk: String,
    pub reason: String,
    /// Why, as a kind: it chooses the exit code. Not serialised, so neither the report's JSON nor
    /// the plan hash changes with it.
    #[serde(skip)]
    pub kind: RefusalKind,
}

/// The kinds of refusal. Only [`RefusalKind::BadCmdlineValue`] is bad input (exit 3); every
/// other kind is a safety refusal (exit 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// An unparseable value for a disk-wiping kernel cmdline key (`provision_disks`,
    /// `wipe_foreign`).
    BadCmdlineValue,
    /// Token mode asked for a layout with no VG to record the token on.
    TokenWithoutVg,
    /// A layout disk matches no disk or several, is a partition, or is the same disk as another
    /// layout disk.
    Resolution,
    /// A VG on a target disk has a PV on a disk the layout does not name.
    Span,
    /// A target (or what sits on it) is mounted, swap, an open LV, or held by another device.
    Busy,
    /// Foreign data on a disk named by a reference that does not identify one physical disk,
    /// without `wipe_foreign`.
    ForeignUnstable,
    /// A layout VG's name is taken by a VG entirely on disks the layout does not name.
    VgNameTaken,
}

impl RefusalKind {
    /// The exit code of a plan refused for this reason.
    pub fn code(self) -> Code {
        match self {
            RefusalKind::BadCmdlineValue => Code::BadInput,
            _ => Code::Refused,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskClass {
    Blank,
    Ours,
    Foreign,
}

/// How a layout disk was matched on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskMatch {
    pub name: String,
    pub reference: String,
    pub stable: bool,
    /// Kernel path (`/dev/nvme0n1`), None when it could not be resolved.
    pub device: Option<String>,
    pub size: Option<u64>,
    pub class: Option<DiskClass>,
    /// What is on it now, in words.
    pub content: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub mode: Mode,
    /// Why this mode (`homelab.provision_disks=tok1: token not yet consumed`).
    pub reason: String,
    pub layout_hash: String,
    pub disks: Vec<DiskMatch>,
    pub refusals: Vec<Refusal>,
    /// In words, what a provision run destroys.
    pub destroys: Vec<String>,
    /// Mount-only: things the layout needs that are not there (the run fails naming them).
    pub missing: Vec<String>,
    pub warnings: Vec<String>,
    pub actions: Vec<Action>,
    pub plan_hash: String,
}

/// Planner knobs that come from the config rather than the layout.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Where to write the LVM settings (default [`DEFAULT_LVM_CONF`]).
    pub lvm_conf: Option<String>,
    /// The target root the layout's mountpoints are under (`--root`; default `/`): a layout
    /// filesystem already mounted at its place is not checked again by a real run, so neither
    /// is it here.
    pub root: Option<std::path::PathBuf>,
}

/// What the step builders read: the inputs and what was decided before any step, read-only.
pub(crate) struct PlanCx<'a> {
    pub layout: &'a Layout,
    pub state: &'a SystemState,
    pub cmdline: &'a Settings,
    /// The machine disk of each layout disk, in layout order (None: not found).
    pub resolved: &'a [Option<&'a BlockDevice>],
    pub mode: Mode,
    /// The `--config` argument every lvm command gets (see [`lvm::lvm_devices_config`]).
    pub lvm_cfg: &'a str,
    pub layout_hash: &'a str,
}

/// Compute the plan.
pub fn plan(
    layout: &Layout,
    state: &SystemState,
    cmdline: &Settings,
    opts: &PlanOptions,
) -> anyhow::Result<Plan> {
    let layout_hash = layout.hash();
    let lvm_settings = lvm_devices_settings(layout, state.lvm_version.as_deref());
    let lvm_cfg = format!("devices {{ {} }}", lvm_settings.join(" "));
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
    let mut deactivate = Vec::new();
    if mode == Mode::Provision {
        let checked = safety::check(layout, state, cmdline, &resolved, &found);
        refusals.extend(checked.refusals);
        if refusals.is_empty() {
            destroys = checked.destroys;
            deactivate = checked.deactivate;
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
        actions.push(lvm::conf_action(&lvm_settings, conf));
        if mode == Mode::Provision {
            provision::actions(&cx, &deactivate, &mut actions)?;
        }
        mount::actions(&cx, &mut actions, &mut missing);
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
#[allow(clippy::type_complexity)]
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

/// Hash of what a run would do: mode + actions (16 hex digits).
pub fn plan_hash(p: &Plan) -> String {
    let v = serde_json::json!({ "mode": p.mode, "actions": p.actions, "refusals": p.refusals });
    let h = Sha256::digest(serde_json::to_vec(&v).unwrap_or_default());
    hex::encode(&h[..8])
}
