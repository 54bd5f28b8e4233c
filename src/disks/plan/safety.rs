//! Safety: what is on each target disk in words (blank, ours or foreign: each signature judged
//! by the device type that owns it, `types::recognise`), and the refusals that
//! stop a provisioning run before any step — a VG reaching beyond the targets, anything busy,
//! foreign data on a disk named by an unstable name, a layout VG name taken elsewhere.

use super::model::{DiskClass, Refusal, RefusalKind};
use crate::cmdline::Settings;
use crate::disks::lvm::{dm_name, dm_name_in_vg};
use crate::disks::resolve::expected_labels;
use crate::disks::state::{BlockDevice, SystemState};
use crate::disks::types::lvm::{observed_vgs_on, vg_words};
use crate::disks::types::{self, Recognise, Seen, Verdict};
use crate::layout::{Disk, Layout};

/// What is on one resolved layout disk (see [`classify`]).
pub(super) struct Found {
    /// None when it cannot be told (LVM not read on a mount-only run).
    pub class: Option<DiskClass>,
    /// Everything on it, in words.
    pub content: Vec<String>,
    /// What of it is not this layout's, in words.
    pub foreign: Vec<String>,
}

/// What is on each layout disk, in layout order (None where the disk did not resolve).
pub(super) fn classify_all(
    layout: &Layout,
    state: &SystemState,
    resolved: &[Option<&BlockDevice>],
) -> Vec<Option<Found>> {
    layout
        .disks
        .iter()
        .zip(resolved)
        .map(|(d, dev)| {
            dev.map(|dev| {
                let (class, content, foreign) = classify(d, dev, layout, state);
                Found {
                    class,
                    content,
                    foreign,
                }
            })
        })
        .collect()
}

/// The outcome of the safety checks of a provisioning run.
#[derive(Default)]
pub(super) struct Checked {
    /// Each disk's refusals in layout order, then those of the layout's VG names.
    pub refusals: Vec<Refusal>,
    /// In words, what the run destroys (disks that are not blank).
    pub destroys: Vec<String>,
}

/// The safety checks of a provisioning run, for every disk before any step (DESIGN §6.2): VGs
/// that reach beyond the targets, anything busy, foreign data on a disk named by an unstable
/// name without `wipe_foreign`, and layout VG names taken by a VG elsewhere.
pub(super) fn check(
    layout: &Layout,
    state: &SystemState,
    cmdline: &Settings,
    resolved: &[Option<&BlockDevice>],
    found: &[Option<Found>],
) -> Checked {
    let mut out = Checked::default();
    let target_paths: Vec<String> = resolved.iter().flatten().map(|d| d.path.clone()).collect();
    for (i, d) in layout.disks.iter().enumerate() {
        let (Some(dev), Some(f)) = (resolved[i], &found[i]) else {
            continue;
        };
        // Provisioning always plans on a full LVM read (disks::lvm_read_for).
        let class = f.class.unwrap_or(DiskClass::Foreign);
        let vgs_here = observed_vgs_on(dev, state);
        let mut reasons = Vec::new();
        // VGs that reach beyond the target disks would be broken by the wipe.
        for vg in &vgs_here {
            for pv in state.pvs.iter().filter(|p| &p.vg_name == vg) {
                let on_target = target_paths.iter().any(|t| {
                    state.disks.iter().find(|x| &x.path == t).is_some_and(|x| {
                        x.path == pv.pv_name || x.partitions.iter().any(|p| p.path == pv.pv_name)
                    })
                });
                if !on_target {
                    reasons.push((RefusalKind::Span, format!("VG {vg} also has PV {} on a disk the layout does not name: wiping {} would break it", pv.pv_name, dev.path)));
                }
            }
        }
        let mut busy = Vec::new();
        busy_reasons(
            &dev.name,
            &dev.path,
            &dev.maj_min,
            &vgs_here,
            state,
            &mut busy,
            0,
        );
        for p in &dev.partitions {
            busy_reasons(&p.name, &p.path, &p.maj_min, &vgs_here, state, &mut busy, 0);
        }
        reasons.extend(busy.into_iter().map(|r| (RefusalKind::Busy, r)));
        if class == DiskClass::Foreign
            && !d.reference.is_stable()
            && !cmdline.wipe_foreign.allows(&d.name, &dev.path)
        {
            reasons.push((RefusalKind::ForeignUnstable, format!(
                "holds data that is not this layout's ({}) and is named by {}, which does not identify one physical disk: name it by /dev/disk/by-id/… or a serial/wwn selector, or allow it with {}.wipe_foreign={}",
                f.foreign.join("; "),
                d.reference.describe(),
                cmdline.prefix,
                d.name
            )));
        }
        let mut seen = std::collections::HashSet::new();
        reasons.retain(|(_, r)| seen.insert(r.clone()));
        for (kind, reason) in reasons {
            out.refusals.push(Refusal {
                disk: d.name.clone(),
                reason,
                kind,
            });
        }
        if class != DiskClass::Blank {
            let what: Vec<String> = if vgs_here.is_empty() {
                f.content.clone()
            } else {
                let mut w: Vec<String> = vgs_here.iter().map(|vg| vg_words(vg, state)).collect();
                w.extend(f.content.iter().filter(|c| !c.contains("LVM")).cloned());
                w
            };
            out.destroys.push(format!(
                "{} (disk {}): {} — WILL BE DESTROYED",
                dev.path,
                d.name,
                what.join("; ")
            ));
        }
    }
    out.refusals
        .extend(vg_names_taken_elsewhere(layout, state, &target_paths));
    out
}

/// What is on a disk, in words, and whether any of it is foreign to the layout. The class is None
/// when it cannot be told because LVM was not read (a mount-only run, where it does not matter).
fn classify(
    disk: &Disk,
    dev: &BlockDevice,
    layout: &Layout,
    state: &SystemState,
) -> (Option<DiskClass>, Vec<String>, Vec<String>) {
    let labels = expected_labels(disk);
    let mut content = Vec::new();
    let mut foreign = Vec::new();
    let mut ours = false;
    let mut unknown = false;
    let cx = Recognise {
        layout,
        state,
        labels: &labels,
    };
    let mut judge =
        |path: &str, fs: &Option<String>, label: &Option<String>, partlabel: Option<&String>| {
            let what = match fs.as_deref() {
                Some(t) => {
                    let seen = Seen {
                        path,
                        signature: t,
                        label: label.as_deref(),
                        part_label: partlabel.map(String::as_str),
                    };
                    match types::recognise(&seen, &cx) {
                        Verdict::Ours(d) => {
                            ours = true;
                            d
                        }
                        Verdict::Blank(d) => d,
                        Verdict::Foreign(d) => {
                            foreign.push(format!("{path}: {d}"));
                            d
                        }
                        Verdict::Unknown(d) => {
                            unknown = true;
                            d
                        }
                    }
                }
                None => {
                    if let Some(pl) = partlabel {
                        if labels.contains(pl) {
                            ours = true;
                        } else {
                            foreign.push(format!("{path}: partition {pl:?}"));
                        }
                        format!("partition {pl:?}, no filesystem")
                    } else {
                        if path != dev.path {
                            foreign.push(format!("{path}: unnamed partition"));
                        }
                        "no filesystem".into()
                    }
                }
            };
            content.push(format!("{path}: {what}"));
        };
    if dev.fs_type.is_some() {
        judge(&dev.path, &dev.fs_type, &dev.label, None);
    }
    for p in &dev.partitions {
        judge(&p.path, &p.fs_type, &p.label, p.part_label.as_ref());
    }
    if let Some(pt) = &dev.pt_type {
        content.insert(
            0,
            format!(
                "{pt} partition table, {} partition(s)",
                dev.partitions.len()
            ),
        );
    }
    let class = if unknown && foreign.is_empty() {
        None
    } else if dev.fs_type.is_none() && dev.partitions.is_empty() {
        Some(DiskClass::Blank)
    } else if foreign.is_empty() && ours {
        Some(DiskClass::Ours)
    } else if foreign.is_empty() {
        Some(DiskClass::Blank)
    } else {
        Some(DiskClass::Foreign)
    };
    (class, content, foreign)
}

/// Why a device (or what sits on it) is busy. `our_vgs` are the VGs this plan deactivates (their
/// LVs are looked through: mounted, swap, open, or held by DRBD/md/other dm is busy). A device
/// reached twice gives its reasons twice: the caller removes repeats.
fn busy_reasons(
    name: &str,
    path: &str,
    maj_min: &str,
    our_vgs: &[String],
    state: &SystemState,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    if let Some(m) = state.mount_of(maj_min) {
        out.push(format!("{path} is mounted at {}", m.target));
    }
    if state.is_swap(maj_min, path) {
        out.push(format!("{path} is in use as swap"));
    }
    for h in state.holders_of(name) {
        let v = state.virtual_device(&h);
        let lv = v.and_then(|v| v.dm_name.as_deref()).and_then(|dm| {
            state
                .lvs
                .iter()
                .find(|l| our_vgs.contains(&l.vg_name) && dm_name(&l.vg_name, &l.lv_name) == dm)
        });
        let dm_of_our_vg = v
            .and_then(|v| v.dm_name.as_deref())
            .is_some_and(|dm| our_vgs.iter().any(|vg| dm_name_in_vg(dm, vg)));
        match (v, lv) {
            (Some(v), Some(lv)) => {
                let lvpath = format!("/dev/{}/{}", lv.vg_name, lv.lv_name);
                if lv.lv_attr.chars().nth(5) == Some('o')
                    && state.mount_of(&v.maj_min).is_none()
                    && !state.is_swap(&v.maj_min, &lvpath)
                    && v.holders.is_empty()
                {
                    out.push(format!(
                        "LV {}/{} is open (in use by a process)",
                        lv.vg_name, lv.lv_name
                    ));
                }
                busy_reasons(&v.name, &lvpath, &v.maj_min, our_vgs, state, out, depth + 1);
            }
            (Some(v), None) if dm_of_our_vg => {
                // internal dm devices of our VGs (thin pool data/meta …): look through them
                busy_reasons(
                    &v.name,
                    &format!("/dev/{}", v.name),
                    &v.maj_min,
                    our_vgs,
                    state,
                    out,
                    depth + 1,
                );
            }
            _ if h.starts_with("drbd") => out.push(format!("{path} backs active DRBD device {h}")),
            (Some(v), None) => out.push(format!(
                "{path} is held by {}",
                v.dm_name
                    .as_deref()
                    .map(|d| format!("{d} ({})", v.name))
                    .unwrap_or_else(|| v.name.clone()),
            )),
            (None, _) => out.push(format!("{path} is held by {h}")),
        }
    }
}

/// A VG the layout would create whose name an existing VG already has entirely on disks the
/// layout does not name: the disks were swapped, or another node's disk is here. A second VG of
/// that name would leave both unusable by name, so refuse (vgcreate(8) itself only refuses when
/// it sees the other VG, which a device filter may hide).
fn vg_names_taken_elsewhere(
    layout: &Layout,
    state: &SystemState,
    targets: &[String],
) -> Vec<Refusal> {
    let on_target = |pv: &str| {
        targets.iter().any(|t| {
            state
                .disks
                .iter()
                .find(|x| &x.path == t)
                .is_some_and(|x| x.path == pv || x.partitions.iter().any(|p| p.path == pv))
        })
    };
    let mut out = Vec::new();
    for vg in &layout.vgs {
        let pvs: Vec<&str> = state
            .pvs
            .iter()
            .filter(|p| p.vg_name == vg.name)
            .map(|p| p.pv_name.as_str())
            .collect();
        if !pvs.is_empty() && !pvs.iter().any(|p| on_target(p)) {
            out.push(Refusal {
                disk: format!("lvm_vg.{}", vg.name),
                reason: format!(
                    "a VG named {} already exists on {}, which the layout does not name: disks may have been swapped or another node's disk is here; creating a second VG of that name would make both unusable by name",
                    vg.name,
                    pvs.join(", ")
                ),
                kind: RefusalKind::VgNameTaken,
            });
        }
    }
    out
}
