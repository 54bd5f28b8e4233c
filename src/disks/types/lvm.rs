//! disko's `lvm_pv` (lvm_pv.nix) and `lvm_vg` (lvm_vg.nix) with its LVs, one module (parsers:
//! `layout/parse/lvm.rs`; steps: `plan/provision.rs` `vgchange -an` of what is on the targets,
//! one `pvcreate`, `vgcreate`/`lvcreate`, the completion tags; `plan/mount.rs` `vgchange -ay`;
//! the LVM settings, argv and dm names: `disks/lvm.rs`). A PV's signature is judged by the VG
//! it holds.

use serde_json::Value;

use super::{DeviceType, Recognise, Seen, Verdict};
use crate::disks::state::SystemState;
use crate::disks::step::Op;
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::size::human;
use crate::layout::{Content, Layout};

pub struct LvmPv;
pub static LVM_PV: LvmPv = LvmPv;
pub struct LvmVg;
pub static LVM_VG: LvmVg = LvmVg;

/// `vgchange -an` of a VG observed on a target, before the wipe.
pub const DEACTIVATE: Op = Op::new("deactivate");
/// One `pvcreate` for every PV.
pub const PV_CREATE: Op = Op::new("pv-create");
pub const VG_CREATE: Op = Op::new("vg-create");
pub const LV_CREATE: Op = Op::new("lv-create");
/// The completion tags (`vgchange --addtag`), the last provisioning step.
pub const TAG: Op = Op::new("tag");
/// `vgchange -ay` of the layout's VGs.
pub const ACTIVATE: Op = Op::new("activate");

impl NodeType for LvmPv {
    fn name(&self) -> &'static str {
        "lvm_pv"
    }
    fn place(&self) -> Place {
        Place::Content(&[Slot::Disk, Slot::Partition])
    }
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        w.lvm_pv(o)
    }
}

impl DeviceType for LvmPv {
    fn signatures(&self) -> &'static [&'static str] {
        &["LVM2_member"]
    }
    /// Ours when it holds a layout VG, or holds none on a partition the layout names; a PV with a
    /// metadata area of its own and no VG holds no data (what a run cut off between pvcreate and
    /// vgcreate leaves); one without may belong to a VG whose metadata is on an absent disk.
    fn recognise(&self, seen: &Seen<'_>, cx: &Recognise<'_>) -> Verdict {
        let state = cx.state;
        if state.lvm_unread {
            // A mount-only boot did not read LVM: which VG this PV holds is unknown.
            return Verdict::Unknown("LVM PV (VGs not read on a mount-only run)".into());
        }
        match state.pvs.iter().find(|p| p.pv_name == seen.path) {
            Some(pv) if !pv.vg_name.is_empty() => {
                let desc = vg_words(&pv.vg_name, state);
                if cx.layout.vg(&pv.vg_name).is_some() {
                    Verdict::Ours(desc)
                } else {
                    Verdict::Foreign(desc)
                }
            }
            pv => {
                let empty = pv.is_some_and(|p| p.pv_mda_count.is_some_and(|n| n > 0));
                if seen
                    .part_label
                    .is_some_and(|l| cx.labels.iter().any(|x| x == l))
                {
                    Verdict::Ours("LVM PV without a VG".into())
                } else if empty {
                    Verdict::Blank("LVM PV without a VG (holds no data)".into())
                } else {
                    Verdict::Foreign("LVM PV without a VG or a metadata area of its own (its VG's metadata may be on a disk that is not here)".into())
                }
            }
        }
    }
    fn ops(&self) -> &'static [Op] {
        &[PV_CREATE]
    }
}

impl NodeType for LvmVg {
    fn name(&self) -> &'static str {
        "lvm_vg"
    }
    fn place(&self) -> Place {
        Place::TopLevel
    }
    fn parse_top(
        &self,
        w: &mut Walker<'_>,
        path: &str,
        name: &str,
        v: &Value,
        layout: &mut Layout,
    ) {
        layout.vgs.extend(w.lvm_vg(path, name, v));
    }
}

impl DeviceType for LvmVg {
    fn tools(&self, layout: &Layout) -> Vec<String> {
        if layout.vgs.is_empty() {
            Vec::new()
        } else {
            vec!["lvm".into()]
        }
    }
    fn ops(&self) -> &'static [Op] {
        &[DEACTIVATE, VG_CREATE, LV_CREATE, TAG, ACTIVATE]
    }
}

/// An observed VG in words: `VG pool, 3 LVs, 12.0 GiB used`; `PV of VG x` when the VG itself
/// was not read.
pub(crate) fn vg_words(vg: &str, state: &SystemState) -> String {
    match state.vg(vg) {
        Some(v) => format!(
            "VG {vg}, {} LV{}, {} used",
            v.lv_count,
            if v.lv_count == 1 { "" } else { "s" },
            human(v.vg_size.saturating_sub(v.vg_free))
        ),
        None => format!("PV of VG {vg}"),
    }
}
