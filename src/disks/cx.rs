//! What the step builders share, the planner's and the device types' (`disks/types/`): the mode
//! and the read-only plan context. It sits beside the planner, not in it, so that the types
//! build steps without importing the planner (ARCHITECTURE.md §2.2).

use serde::Serialize;

use crate::cmdline::Settings;
use crate::disks::state::{BlockDevice, SystemState};
use crate::layout::Layout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    MountOnly,
    Provision,
    Refused,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::MountOnly => "mount-only",
            Mode::Provision => "provision",
            Mode::Refused => "refused",
        }
    }
}

/// What the step builders read: the inputs and what was decided before any step, read-only.
pub struct PlanCx<'a> {
    pub layout: &'a Layout,
    pub state: &'a SystemState,
    pub cmdline: &'a Settings,
    /// The machine disk of each layout disk, in layout order (None: not found).
    pub resolved: &'a [Option<&'a BlockDevice>],
    pub mode: Mode,
    /// The `--config` argument every lvm command gets (see [`crate::disks::lvm::config_arg`]).
    pub lvm_cfg: &'a str,
    pub layout_hash: &'a str,
}
