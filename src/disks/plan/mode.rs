//! The mode decision: mount-only unless the kernel cmdline asks; `true` provisions every boot; a
//! token provisions until every layout VG carries it; an unparseable value refuses.

use super::model::{Mode, Refusal, RefusalKind};
use crate::cmdline::{ProvisionRequest, Settings};
use crate::disks::lvm::TAG_TOKEN;
use crate::disks::state::SystemState;
use crate::layout::Layout;

/// The mode, why, and the refusals and warnings of the cmdline's request.
pub(super) struct Decision {
    pub mode: Mode,
    /// In words (`homelab.provision_disks=tok1: token not yet consumed`).
    pub reason: String,
    pub refusals: Vec<Refusal>,
    pub warnings: Vec<String>,
}

/// Decide the mode from the cmdline's request and the completion tags the observed VGs carry.
pub(super) fn decide(layout: &Layout, state: &SystemState, cmdline: &Settings) -> Decision {
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let bad: Vec<String> = cmdline.bad_destructive().map(|b| b.to_string()).collect();
    let key = format!("{}.provision_disks", cmdline.prefix);
    let (mode, reason) = if !bad.is_empty() {
        for b in &bad {
            refusals.push(Refusal {
                disk: "cmdline".into(),
                reason: format!("{b}: nothing will be wiped"),
                kind: RefusalKind::BadCmdlineValue,
            });
        }
        (
            Mode::Refused,
            "the kernel cmdline has an unparseable value for a disk-wiping key".to_string(),
        )
    } else {
        match &cmdline.provision {
            ProvisionRequest::No => (Mode::MountOnly, format!("{key} not set")),
            ProvisionRequest::Always => {
                warnings.push(format!("{key}=true: the disks are wiped on EVERY boot that carries this flag; a wipe-once token ({key}=<token>) is safer"));
                (Mode::Provision, format!("{key}=true"))
            }
            ProvisionRequest::Token(t) => {
                if layout.vgs.is_empty() {
                    refusals.push(Refusal {
                        disk: "cmdline".into(),
                        reason: format!("{key}={t}: token mode records the token as an LVM VG tag, and this layout has no VG"),
                        kind: RefusalKind::TokenWithoutVg,
                    });
                    (Mode::Refused, "token mode needs an LVM VG".into())
                } else {
                    let tag = format!("{TAG_TOKEN}{t}");
                    let consumed = layout
                        .vgs
                        .iter()
                        .all(|vg| state.vg(&vg.name).is_some_and(|o| o.vg_tags.contains(&tag)));
                    if consumed {
                        (
                            Mode::MountOnly,
                            format!("{key}={t}: token already consumed on these disks"),
                        )
                    } else {
                        (
                            Mode::Provision,
                            format!("{key}={t}: token not yet consumed"),
                        )
                    }
                }
            }
        }
    };
    Decision {
        mode,
        reason,
        refusals,
        warnings,
    }
}
