//! Provisioning steps, in stage order: take down the VGs on the targets, wipe each disk, write
//! its table (see `table`), wait for the new partitions, create PVs, VGs and LVs, format, and
//! record completion (VG tags) last. Each leaf's format step is its type's
//! (`DeviceType::format`).

use super::model::PlanCx;
use super::table::{self, gpt_step, hybrid_mbr_steps, reread, table_step, verify_table};
use crate::cmdline::ProvisionRequest;
use crate::disks::geometry::Extent;
use crate::disks::lvm::{self, TAG_LAYOUT, TAG_TOKEN};
use crate::disks::resolve::{partition_path, partitions};
use crate::disks::step::{s, wait, Step};
use crate::disks::types;
use crate::layout::{Content, LvType};

/// The provisioning steps (after the lvmlocal.conf write, before the mount steps). `deactivate`:
/// the VGs observed on the targets. Errors: the layout does not fit the disks (exit 3).
pub(super) fn actions(
    cx: &PlanCx,
    deactivate: &[String],
    actions: &mut Vec<Step>,
) -> anyhow::Result<()> {
    let PlanCx {
        layout,
        resolved,
        cmdline,
        lvm_cfg: cfg,
        layout_hash,
        ..
    } = *cx;
    // Each table's extents once: the fit checks read them, the partitioning writes them.
    let mut extents: Vec<Option<anyhow::Result<Vec<Extent>>>> = layout
        .disks
        .iter()
        .zip(resolved)
        .map(|(d, dev)| dev.and_then(|dev| table::extents(d, dev)))
        .collect();
    let fitting: Vec<Option<&[Extent]>> = extents
        .iter()
        .map(|e| e.as_ref().and_then(|r| r.as_deref().ok()))
        .collect();
    let problems = crate::disks::fits::check(layout, resolved, &fitting);
    if !problems.is_empty() {
        return Err(crate::exit::coded(
            crate::exit::Code::BadInput,
            format!(
                "the layout does not fit these disks (nothing was changed): {}",
                problems.join("; ")
            ),
        ));
    }
    // Take down what is on the disks now.
    for vg in deactivate {
        actions.push(Step::run(
            types::lvm::DEACTIVATE,
            false,
            format!("deactivating VG {vg}"),
            lvm::argv(cfg, "vgchange", &[s("-an"), vg.clone()]),
        ));
    }
    let mut pvs: Vec<(String, String)> = Vec::new(); // (vg, device)
    let mut formats: Vec<(Content, String, String)> = Vec::new(); // content, device, what
    for (i, d) in layout.disks.iter().enumerate() {
        let Some(dev) = resolved[i] else { continue };
        for p in &dev.partitions {
            actions.push(
                Step::run(
                    types::disk::WIPE,
                    true,
                    format!("wiping signatures on {}", p.path),
                    vec![s("wipefs"), s("-a"), p.path.clone()],
                )
                .on(&p.path),
            );
        }
        // wipefs erases the primary GPT, its backup at the end of the disk and the (protective)
        // MBR: no separate zap step needed.
        actions.push(
            Step::run(
                types::disk::WIPE,
                true,
                format!("wiping signatures and partition tables on {}", dev.path),
                vec![s("wipefs"), s("-a"), dev.path.clone()],
            )
            .on(&dev.path),
        );
        // A table that does not fit is bad input (exit 3), found here before any step runs.
        let ext = extents[i].take().transpose()?.unwrap_or_default();
        match &d.content {
            Some(Content::Gpt(g)) => {
                let (a, table) = gpt_step(dev, g, &ext);
                actions.push(a);
                actions.extend(hybrid_mbr_steps(dev, g));
                actions.extend([reread(&dev.path), verify_table(&dev.path, table)]);
            }
            Some(Content::Table(t)) => {
                let (a, table) = table_step(dev, t, &ext);
                actions.extend([a, reread(&dev.path), verify_table(&dev.path, table)])
            }
            Some(Content::LvmPv { vg }) => pvs.push((vg.clone(), dev.path.clone())),
            Some(c) => formats.push((c.clone(), dev.path.clone(), d.name.clone())),
            None => {}
        }
        // Every new partition's node first, then one wipefs for all of them (each process
        // costs a start-up and a libblkid probe of every known signature).
        let mut new_parts: Vec<String> = Vec::new();
        for p in partitions(d) {
            let pp = partition_path(&dev.path, p.number);
            actions.push(wait(&pp));
            new_parts.push(pp.clone());
            match p.content {
                Some(Content::LvmPv { vg }) => pvs.push((vg.clone(), pp)),
                Some(c) => formats.push((c.clone(), pp, format!("{}/{}", d.name, p.name))),
                None => {}
            }
        }
        if !new_parts.is_empty() {
            let mut argv = vec![s("wipefs"), s("-a")];
            argv.extend(new_parts.iter().cloned());
            actions.push(
                Step::run(
                    types::disk::WIPE,
                    true,
                    format!(
                        "wiping old signatures inside new partition{} {}",
                        if new_parts.len() == 1 { "" } else { "s" },
                        new_parts.join(", ")
                    ),
                    argv,
                )
                .on(&dev.path),
            );
        }
    }
    if !pvs.is_empty() {
        // One pvcreate for all PVs (each lvm process costs a device scan).
        let mut args = vec![s("-y"), s("-ff")];
        args.extend(pvs.iter().map(|(_, p)| p.clone()));
        let words: Vec<String> = pvs
            .iter()
            .map(|(vg, pv)| format!("{pv} for VG {vg}"))
            .collect();
        let mut a = Step::run(
            types::lvm::PV_CREATE,
            true,
            format!(
                "creating PV{} {}",
                if pvs.len() == 1 { "" } else { "s" },
                words.join(", ")
            ),
            lvm::argv(cfg, "pvcreate", &args),
        );
        if let [(_, pv)] = pvs.as_slice() {
            a = a.on(pv);
        }
        actions.push(a);
    }
    for vg in &layout.vgs {
        let members: Vec<String> = pvs
            .iter()
            .filter(|(v, _)| v == &vg.name)
            .map(|(_, p)| p.clone())
            .collect();
        let mut args = vec![s("-y"), vg.name.clone()];
        args.extend(members);
        actions.push(Step::run(
            types::lvm::VG_CREATE,
            true,
            format!("creating VG {}", vg.name),
            lvm::argv(cfg, "vgcreate", &args),
        ));
        for lv in &vg.lvs {
            let mut args = vec![s("-y")];
            // lvcreate refuses -W with a thin pool ("Option --wipesignatures is unsupported
            // with thin pools", lvm2 tools/lvcreate.c `_lvcreate_params`): a new pool's
            // metadata is written fresh and its data is handed out zeroed block by block.
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
            args.push(vg.name.clone());
            actions.push(Step::run(
                types::lvm::LV_CREATE,
                true,
                format!("creating LV {}/{}", vg.name, lv.name),
                lvm::argv(cfg, "lvcreate", &args),
            ));
            if let Some(c) = &lv.content {
                let p = format!("/dev/{}/{}", vg.name, lv.name);
                formats.push((c.clone(), p, format!("{}/{}", vg.name, lv.name)));
            }
        }
    }
    // Each device's wait and format are one chain; the executor runs consecutive chains
    // concurrently (they share nothing: different partitions and LVs).
    for (k, (c, dev, what)) in formats.iter().enumerate() {
        let mut w = wait(dev);
        match types::of(c).and_then(|t| t.format(c, dev, what)) {
            Some(mut f) => {
                w.chain = Some(k as u32);
                f.chain = w.chain;
                actions.extend([w, f]);
            }
            None => actions.push(w),
        }
    }
    // Completion is recorded last: an interrupted run leaves no tag and re-provisions. One
    // vgchange tags every VG; lvm commits each VG on its own, so a cut in the middle can leave
    // some VGs tagged and others not — which still reads as "not complete" (a token counts as
    // consumed only when every layout VG carries it) and re-provisions.
    if !layout.vgs.is_empty() {
        let mut args = vec![s("--addtag"), format!("{TAG_LAYOUT}{layout_hash}")];
        if let ProvisionRequest::Token(t) = &cmdline.provision {
            args.push(s("--addtag"));
            args.push(format!("{TAG_TOKEN}{t}"));
        }
        let names: Vec<String> = layout.vgs.iter().map(|v| v.name.clone()).collect();
        args.extend(names.iter().cloned());
        actions.push(Step::run(
            types::lvm::TAG,
            false,
            format!(
                "recording completion on VG{} {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            lvm::argv(cfg, "vgchange", &args),
        ));
    }
    Ok(())
}
