//! Provisioning steps in stage order (ARCHITECTURE.md §2.4), composed from the device types:
//! each type's teardown of what is on the targets; per disk the wipe, its table (see `table`),
//! the waits for the new partitions; each type's layers over the devices placed so far
//! (`DeviceType::create`: PVs, then VGs and LVs); each leaf's wait and format as a chain
//! (`DeviceType::format`); each type's completion record (VG tags) last.

use super::model::PlanCx;
use super::table::{self, reread, verify_table};
use crate::disks::geometry::Extent;
use crate::disks::resolve::{partition_path, partitions};
use crate::disks::step::{s, wait, Step};
use crate::disks::types::{self, Placed};

/// The provisioning steps (after the lvmlocal.conf write, before the mount steps). Errors: the
/// layout does not fit the disks (exit 3).
pub(super) fn actions(cx: &PlanCx, actions: &mut Vec<Step>) -> anyhow::Result<()> {
    let PlanCx {
        layout, resolved, ..
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
    for t in types::REGISTRY {
        actions.extend(t.teardown(cx));
    }
    // Every content on a new device, in walk order: what the layers and formats work on.
    let mut placed: Vec<Placed> = Vec::new();
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
        if let Some(c) = &d.content {
            match types::of(c).and_then(|t| t.partition(d, dev, &ext)) {
                Some((steps, table)) => {
                    actions.extend(steps);
                    actions.extend([reread(&dev.path), verify_table(&dev.path, table)]);
                }
                None => placed.push(Placed {
                    content: c.clone(),
                    dev: dev.path.clone(),
                    what: d.name.clone(),
                }),
            }
        }
        // Every new partition's node first, then one wipefs for all of them (each process
        // costs a start-up and a libblkid probe of every known signature).
        let mut new_parts: Vec<String> = Vec::new();
        for p in partitions(d) {
            let pp = partition_path(&dev.path, p.number);
            actions.push(wait(&pp));
            new_parts.push(pp.clone());
            if let Some(c) = p.content {
                placed.push(Placed {
                    content: c.clone(),
                    dev: pp,
                    what: format!("{}/{}", d.name, p.name),
                });
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
    // The layers, each type in registry order over what is placed so far (PVs, then VGs and
    // their LVs).
    for t in types::REGISTRY {
        let (steps, made) = t.create(&placed, cx);
        actions.extend(steps);
        placed.extend(made);
    }
    // Each leaf's wait and format are one chain; the executor runs consecutive chains
    // concurrently (they share nothing: different partitions and LVs).
    let leaves = placed.iter().filter_map(|p| {
        let f = types::of(&p.content)?.format(&p.content, &p.dev, &p.what)?;
        Some((wait(&p.dev), f))
    });
    for (k, (mut w, mut f)) in leaves.enumerate() {
        w.chain = Some(k as u32);
        f.chain = w.chain;
        actions.extend([w, f]);
    }
    // Completion is recorded last: an interrupted run leaves no record and re-provisions.
    for t in types::REGISTRY {
        actions.extend(t.complete(cx));
    }
    Ok(())
}
