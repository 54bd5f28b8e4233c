//! The plan model: what a plan is (mode, disks, refusals and their kinds, what it destroys, what
//! is missing, steps) and the plan hash. The mode and the read-only context the step builders
//! share ([`PlanCx`]) are `disks/cx.rs`'s, so that the device types build steps without the
//! planner.

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::disks::cx::Mode;
pub(crate) use crate::disks::cx::PlanCx;
use crate::disks::step::{plan_v1, Step};
use crate::exit::Code;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// What is refused: a layout disk's name, `lvm_vg.<name>`, or `cmdline`.
    pub disk: String,
    pub reason: String,
    /// Why, as a kind: it chooses the exit code. Neither serialised nor rendered, so neither the
    /// report's JSON nor the plan hash changes with it.
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
    /// The steps, in order (the JSON key stays `actions`).
    pub actions: Vec<Step>,
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

/// Hash of what a run would do: the first 8 bytes of the SHA-256 of the mode, steps and refusals
/// in canonical rendering version 1 ([`plan_v1`]), as 16 hex digits.
pub fn plan_hash(p: &Plan) -> String {
    let refusals: Vec<(&str, &str)> = p
        .refusals
        .iter()
        .map(|r| (r.disk.as_str(), r.reason.as_str()))
        .collect();
    let h = Sha256::digest(plan_v1(p.mode.as_str(), &p.actions, &refusals));
    hex::encode(&h[..8])
}
