//! Mount-only steps (also the tail of a provisioning run): activate the VGs, wait for every
//! device, then each type's uses (`DeviceType::uses`: fsck, mounts parents first, swap on),
//! ensure directories; and, in mount-only mode, what the layout needs that is not there.

use super::model::{Mode, PlanCx};
use crate::disks::lvm::{self, dm_name};
use crate::disks::resolve::{partition_path, partitions};
use crate::disks::state::{BlockDevice, SystemState};
use crate::disks::step::{s, wait, Effect, Explain, Op, Step};
use crate::disks::types::{self, Use};
use crate::layout::{Content, Layout};

/// The steps that bring the layout's filesystems and swap into use, after provisioning or on
/// their own (mount-only); in mount-only mode also what the layout needs that is not there.
/// Errors: swap options swapon(2) cannot take (exit 3; the layout parser refuses them first).
pub(super) fn actions(
    cx: &PlanCx,
    actions: &mut Vec<Step>,
    missing: &mut Vec<String>,
) -> anyhow::Result<()> {
    let PlanCx {
        layout,
        state,
        resolved,
        mode,
        lvm_cfg: cfg,
        ..
    } = *cx;
    let prefix = &cx.cmdline.prefix;
    let provisioning = mode == Mode::Provision;
    // (device, content, what) of everything to check/mount/swapon.
    let mut items: Vec<(String, Content, String)> = Vec::new();
    for (i, d) in layout.disks.iter().enumerate() {
        let dev = resolved[i];
        match &d.content {
            Some(Content::Gpt(_) | Content::Table(_) | Content::LvmPv { .. }) | None => {}
            Some(c) => match dev {
                Some(dev) => items.push((dev.path.clone(), c.clone(), d.name.clone())),
                None => missing.push(format!(
                    "disk {} ({}): not found, so its {} cannot be used",
                    d.name,
                    d.reference.describe(),
                    content_words(c)
                )),
            },
        }
        for p in partitions(d) {
            let (n, pname) = (p.number, p.name);
            let Some(c) = p.content else { continue };
            if matches!(c, Content::LvmPv { .. }) {
                continue;
            }
            let Some(dev) = dev else {
                missing.push(format!(
                    "disk {} ({}): not found, so partition {pname} cannot be used",
                    d.name,
                    d.reference.describe()
                ));
                continue;
            };
            let pp = partition_path(&dev.path, n);
            if !provisioning {
                match dev.partitions.iter().find(|p| p.number as usize == n) {
                    None => missing.push(format!(
                        "disk {}: partition {n} ({pname}) does not exist on {}",
                        d.name, dev.path
                    )),
                    Some(op) => {
                        if let Some(l) = p.label {
                            if op.part_label.as_deref() != Some(l) {
                                missing.push(format!("disk {}: partition {} is named {:?}, the layout expects {l:?} — is this the right disk?", d.name, op.path, op.part_label.as_deref().unwrap_or("")));
                            }
                        }
                    }
                }
            }
            items.push((pp, c.clone(), format!("{}/{pname}", d.name)));
        }
    }
    let mut activate: Vec<(String, Vec<String>)> = Vec::new(); // VG, its LVs
    let mut lv_devs: Vec<(String, String, String)> = Vec::new(); // /dev/mapper path, VG, LV
    for vg in &layout.vgs {
        let lvs: Vec<String> = vg.lvs.iter().map(|lv| lv.name.clone()).collect();
        if !provisioning && !state.lvm_unread {
            missing.extend(lvm::missing(&vg.name, &lvs, state, prefix));
            if state.vg(&vg.name).is_none() {
                continue;
            }
        }
        activate.push((vg.name.clone(), lvs));
        for lv in &vg.lvs {
            if let Some(c) = &lv.content {
                // /dev/mapper/<vg>-<lv>: the name mount(8) and findmnt show for an LV.
                let path = format!("/dev/mapper/{}", dm_name(&vg.name, &lv.name));
                items.push((path.clone(), c.clone(), format!("{}/{}", vg.name, lv.name)));
                lv_devs.push((path, vg.name.clone(), lv.name.clone()));
            }
        }
    }
    // Mount-only, maybe planned without reading LVM (the every-boot path): a failed activation
    // or LV wait is explained by one LVM read naming what does not exist.
    let explain = |vgs: Vec<(String, Vec<String>)>| {
        (!provisioning).then(|| Explain::LvmExists {
            config: cfg.to_string(),
            vgs,
            prefix: prefix.clone(),
        })
    };
    // A provisioning run's lvcreate leaves each LV active (lvcreate activates what it creates
    // unless told otherwise: only the layout's extraArgs can say so), so a vgchange -ay after
    // it would be one more lvm process — a full device scan — that changes nothing. The waits
    // below still check that every LV's device node is there.
    let created_active = provisioning
        && layout
            .vgs
            .iter()
            .all(|vg| vg.lvs.iter().all(|lv| lv.extra_args.is_empty()));
    if !activate.is_empty() && !created_active {
        // One vgchange for all of them: every lvm process scans the devices again.
        let names: Vec<String> = activate.iter().map(|(vg, _)| vg.clone()).collect();
        let mut args = vec![s("-ay")];
        args.extend(names.iter().cloned());
        let mut a = Step::run(
            types::lvm::ACTIVATE,
            false,
            format!(
                "activating VG{} {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            lvm::argv(cfg, "vgchange", &args),
        );
        a.explain = explain(activate);
        actions.push(a);
    }
    for (dev, _, _) in &items {
        let mut w = wait(dev);
        if let Some((_, vg, lv)) = lv_devs.iter().find(|(p, _, _)| p == dev) {
            w.explain = explain(vec![(vg.clone(), vec![lv.clone()])]);
        }
        actions.push(w);
    }
    // Each type's uses of each item, then the top-level ones (nodev): every check, then the
    // mounts parents-first (by depth, then mountpoint; a stable sort keeps the layout's order
    // of equal ones), then swap.
    let mut uses: Vec<Use> = Vec::new();
    for (dev, c, what) in &items {
        if let Some(t) = types::of(c) {
            uses.extend(t.uses(c, dev, what, cx)?);
        }
    }
    for t in types::REGISTRY {
        uses.extend(t.top_uses(layout));
    }
    let mut mounts: Vec<(String, Step)> = Vec::new();
    let mut swaps: Vec<Step> = Vec::new();
    for u in uses {
        match u {
            Use::Check(step) => actions.push(step),
            Use::Mount { mountpoint, step } => mounts.push((mountpoint, step)),
            Use::Swap(step) => swaps.push(step),
        }
    }
    mounts.sort_by(|a, b| {
        let depth = |p: &str| p.trim_end_matches('/').matches('/').count();
        depth(&a.0).cmp(&depth(&b.0)).then(a.0.cmp(&b.0))
    });
    actions.extend(mounts.into_iter().map(|(_, step)| step));
    actions.extend(swaps);
    for d in &layout.ensure_dirs {
        actions.push(Step::new(
            Op::ENSURE_DIR,
            false,
            format!(
                "ensuring directory {} ({}:{} {:04o})",
                d.path, d.owner, d.group, d.mode
            ),
            Effect::EnsureDir {
                path: d.path.clone(),
                owner: d.owner.clone(),
                group: d.group.clone(),
                mode: d.mode,
            },
        ));
    }
    Ok(())
}

/// What a real run's libblkid check says of a device whose type is not the layout's
/// (execute::expect_type), in the same words: the dry run names it as the real run does.
pub fn fs_mismatch(dev: &str, found: Option<&str>, want: &str) -> String {
    format!(
        "{dev} has {} where the layout expects {want}",
        found
            .map(|f| format!("a {f} signature"))
            .unwrap_or_else(|| "no filesystem".into())
    )
}

/// Is `found` (libblkid's TYPE) the filesystem the layout names? vfat may show as msdos.
pub fn type_matches(want: &str, found: Option<&str>) -> bool {
    match (want, found) {
        (w, Some(f)) if w == f => true,
        ("vfat", Some("vfat" | "msdos")) => true,
        _ => false,
    }
}

/// Mount-only: the layout filesystems and swap areas the real run would find missing or of
/// another type, from the observed state — so that `--dry-run`, `--state` and `status` name
/// them and exit as the real run does (exit 9). The real run checks a device's type (libblkid)
/// before its fsck (ext*, unless the device is mounted anywhere), its mount (unless something
/// is mounted at the target already) and its swapon (unless it is swap already), and fails at
/// the first one that does not match; this asks the same of each device the state knows the
/// type of: partitions and whole disks on a probed read (not the every-boot path's udev
/// database: there the executor's own check decides), active LVs that were probed. Partitions
/// already named missing or misnamed are not repeated.
pub(super) fn wrong_filesystems(
    layout: &Layout,
    state: &SystemState,
    resolved: &[Option<&BlockDevice>],
    root: &std::path::Path,
) -> Vec<String> {
    if state.types_from_udev {
        return Vec::new();
    }
    // (device path, its maj:min, what is on it, the layout content, layout words)
    let mut devs: Vec<(String, &str, Option<&str>, &Content, String)> = Vec::new();
    for (i, d) in layout.disks.iter().enumerate() {
        let Some(dev) = resolved[i] else { continue };
        if let Some(c @ (Content::Filesystem(_) | Content::Swap(_))) = &d.content {
            devs.push((
                dev.path.clone(),
                &dev.maj_min,
                dev.fs_type.as_deref(),
                c,
                format!("disk {}", d.name),
            ));
        }
        for p in partitions(d) {
            let Some(c @ (Content::Filesystem(_) | Content::Swap(_))) = p.content else {
                continue;
            };
            let Some(op) = dev
                .partitions
                .iter()
                .find(|o| o.number as usize == p.number)
            else {
                continue; // named missing already
            };
            if p.label.is_some_and(|l| op.part_label.as_deref() != Some(l)) {
                continue; // named as another disk's partition already
            }
            devs.push((
                op.path.clone(),
                &op.maj_min,
                op.fs_type.as_deref(),
                c,
                format!("disk {}: partition {} ({})", d.name, p.number, p.name),
            ));
        }
    }
    for vg in &layout.vgs {
        for lv in &vg.lvs {
            let Some(c) = &lv.content else { continue };
            let Some(o) = state
                .lvs
                .iter()
                .find(|o| o.vg_name == vg.name && o.lv_name == lv.name && o.fs_probed)
            else {
                continue; // missing (named already), inactive or not probed: unknown
            };
            let Some(mm) = o.maj_min.as_deref() else {
                continue;
            };
            devs.push((
                format!("/dev/mapper/{}", dm_name(&vg.name, &lv.name)),
                mm,
                o.fs_type.as_deref(),
                c,
                format!("LV {}/{}", vg.name, lv.name),
            ));
        }
    }
    let mut out = Vec::new();
    for (path, mm, found, c, what) in devs {
        let (want, checked) = match c {
            Content::Filesystem(f) => {
                let fsck = f.format.starts_with("ext") && state.mount_of(mm).is_none();
                let mount = f.mountpoint.as_deref().is_some_and(|mp| {
                    let target = crate::system::fsutil::under_root(root, std::path::Path::new(mp));
                    let target = target.to_string_lossy();
                    !state.mounts.iter().any(|m| m.target == target)
                });
                (f.format.as_str(), fsck || mount)
            }
            Content::Swap(_) => ("swap", !state.is_swap(mm, &path)),
            _ => continue,
        };
        if checked && !type_matches(want, found) {
            out.push(format!(
                "{what}: {} — nothing was formatted (a provisioning run cut off before its mkfs, or another disk?)",
                fs_mismatch(&path, found, want)
            ));
        }
    }
    out
}

fn content_words(c: &Content) -> String {
    match c {
        Content::Filesystem(f) => format!("{} filesystem", f.format),
        Content::Swap(_) => "swap".into(),
        Content::LvmPv { vg } => format!("PV of VG {vg}"),
        Content::Gpt(_) => "gpt".into(),
        Content::Table(_) => "partition table".into(),
    }
}
