//! disko's `lvm_pv` (lvm_pv.nix) and `lvm_vg` (lvm_vg.nix) with its LVs, one module (parsers:
//! `layout/parse/lvm.rs`; the LVM settings, argv and dm names: `disks/lvm.rs`). Its provisioning
//! steps are here: `vgchange -an` of what is on the targets (`teardown`), one `pvcreate`, per VG
//! `vgcreate` and its `lvcreate`s (`create`), the completion tags (`complete`); its mount-only
//! side (`vgchange -ay`, what is missing) is still `plan/mount.rs`'s. A PV's signature is judged
//! by the VG it holds.

use serde_json::Value;

use super::{DeviceType, Placed, Recognise, Seen, Verdict};
use crate::cmdline::ProvisionRequest;
use crate::disks::cx::PlanCx;
use crate::disks::lvm::{self, TAG_LAYOUT, TAG_TOKEN};
use crate::disks::state::{BlockDevice, SystemState};
use crate::disks::step::{s, Op, Step};
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::size::human;
use crate::layout::{Content, Layout, LvType};

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
    /// One pvcreate for all PVs (each lvm process costs a device scan).
    fn create(&self, placed: &[Placed], cx: &PlanCx) -> (Vec<Step>, Vec<Placed>) {
        let pvs = pvs(placed);
        if pvs.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let mut args = vec![s("-y"), s("-ff")];
        args.extend(pvs.iter().map(|(_, p)| p.to_string()));
        let words: Vec<String> = pvs
            .iter()
            .map(|(vg, pv)| format!("{pv} for VG {vg}"))
            .collect();
        let mut a = Step::run(
            PV_CREATE,
            true,
            format!(
                "creating PV{} {}",
                if pvs.len() == 1 { "" } else { "s" },
                words.join(", ")
            ),
            lvm::argv(cx.lvm_cfg, "pvcreate", &args),
        );
        if let [(_, pv)] = pvs.as_slice() {
            a = a.on(pv);
        }
        (vec![a], Vec::new())
    }
}

/// The PVs among the placed contents: (VG, device), in walk order.
fn pvs(placed: &[Placed]) -> Vec<(&str, &str)> {
    placed
        .iter()
        .filter_map(|p| match &p.content {
            Content::LvmPv { vg } => Some((vg.as_str(), p.dev.as_str())),
            _ => None,
        })
        .collect()
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
    /// `vgchange -an` of every VG observed on the targets, in disk order.
    fn teardown(&self, cx: &PlanCx) -> Vec<Step> {
        let mut vgs: Vec<String> = Vec::new();
        for dev in cx.resolved.iter().flatten() {
            for vg in observed_vgs_on(dev, cx.state) {
                if !vgs.contains(&vg) {
                    vgs.push(vg);
                }
            }
        }
        vgs.into_iter()
            .map(|vg| {
                Step::run(
                    DEACTIVATE,
                    false,
                    format!("deactivating VG {vg}"),
                    lvm::argv(cx.lvm_cfg, "vgchange", &[s("-an"), vg]),
                )
            })
            .collect()
    }
    /// Per VG, its vgcreate over its placed PVs, then its LVs in layout order.
    fn create(&self, placed: &[Placed], cx: &PlanCx) -> (Vec<Step>, Vec<Placed>) {
        let pvs = pvs(placed);
        let mut steps = Vec::new();
        let mut made = Vec::new();
        for vg in &cx.layout.vgs {
            let mut args = vec![s("-y"), vg.name.clone()];
            args.extend(
                pvs.iter()
                    .filter(|(v, _)| *v == vg.name)
                    .map(|(_, p)| p.to_string()),
            );
            steps.push(Step::run(
                VG_CREATE,
                true,
                format!("creating VG {}", vg.name),
                lvm::argv(cx.lvm_cfg, "vgcreate", &args),
            ));
            for lv in &vg.lvs {
                steps.push(Step::run(
                    LV_CREATE,
                    true,
                    format!("creating LV {}/{}", vg.name, lv.name),
                    lvm::argv(cx.lvm_cfg, "lvcreate", &lvcreate_args(&vg.name, lv)),
                ));
                if let Some(c) = &lv.content {
                    made.push(Placed {
                        content: c.clone(),
                        dev: format!("/dev/{}/{}", vg.name, lv.name),
                        what: format!("{}/{}", vg.name, lv.name),
                    });
                }
            }
        }
        (steps, made)
    }
    /// One vgchange tags every VG; lvm commits each VG on its own, so a cut in the middle can
    /// leave some VGs tagged and others not — which still reads as "not complete" (a token
    /// counts as consumed only when every layout VG carries it) and re-provisions.
    fn complete(&self, cx: &PlanCx) -> Vec<Step> {
        let vgs = &cx.layout.vgs;
        if vgs.is_empty() {
            return Vec::new();
        }
        let mut args = vec![s("--addtag"), format!("{TAG_LAYOUT}{}", cx.layout_hash)];
        if let ProvisionRequest::Token(t) = &cx.cmdline.provision {
            args.push(s("--addtag"));
            args.push(format!("{TAG_TOKEN}{t}"));
        }
        let names: Vec<String> = vgs.iter().map(|v| v.name.clone()).collect();
        args.extend(names.iter().cloned());
        vec![Step::run(
            TAG,
            false,
            format!(
                "recording completion on VG{} {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            lvm::argv(cx.lvm_cfg, "vgchange", &args),
        )]
    }
}

/// lvcreate's arguments for one LV of `vg` (before the `--config` lvm::argv adds).
fn lvcreate_args(vg: &str, lv: &crate::layout::LogicalVolume) -> Vec<String> {
    let mut args = vec![s("-y")];
    // lvcreate refuses -W with a thin pool ("Option --wipesignatures is unsupported with thin
    // pools", lvm2 tools/lvcreate.c `_lvcreate_params`): a new pool's metadata is written
    // fresh and its data is handed out zeroed block by block.
    if lv.lv_type != LvType::ThinPool {
        args.extend([s("--wipesignatures"), s("y")]);
    }
    args.extend([s("-n"), lv.name.clone()]);
    match &lv.lv_type {
        LvType::Linear => args.extend(lv.size.lvcreate_args()),
        LvType::ThinPool => {
            args.extend([s("--type"), s("thin-pool")]);
            args.extend(lv.size.lvcreate_args());
        }
        LvType::Thin { pool } => {
            let bytes = match &lv.size {
                crate::layout::size::LvSize::Bytes { bytes } => *bytes,
                _ => 0,
            };
            args.extend([
                s("--type"),
                s("thin"),
                s("-V"),
                format!("{bytes}b"),
                s("--thinpool"),
                pool.clone(),
            ]);
        }
        LvType::Other(t) => {
            args.extend([s("--type"), t.clone()]);
            args.extend(lv.size.lvcreate_args());
        }
    }
    args.extend(lv.extra_args.iter().cloned());
    args.push(vg.to_string());
    args
}

/// VG names with a PV on this disk (or its partitions), per the observed state, sorted.
pub(crate) fn observed_vgs_on(dev: &BlockDevice, state: &SystemState) -> Vec<String> {
    let mut paths = vec![dev.path.as_str()];
    paths.extend(dev.partitions.iter().map(|p| p.path.as_str()));
    let mut vgs: Vec<String> = state
        .pvs
        .iter()
        .filter(|pv| paths.contains(&pv.pv_name.as_str()) && !pv.vg_name.is_empty())
        .map(|pv| pv.vg_name.clone())
        .collect();
    vgs.sort();
    vgs.dedup();
    vgs
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
