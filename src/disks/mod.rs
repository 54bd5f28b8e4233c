//! Disks stage (DESIGN §6): discover → plan (pure) → execute.

pub mod cx;
pub mod discover;
pub mod execute;
pub mod fits;
pub mod geometry;
pub mod lvm;
pub mod plan;
pub mod resolve;
pub mod state;
pub mod step;
pub mod types;

use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::context::{Context, StageOutput};
use crate::exit::{coded, Code};
use crate::layout::Layout;
use plan::{Mode, Plan, PlanOptions};
use state::SystemState;

/// Inputs of the disks stage beyond the context.
#[derive(Debug, Clone, Default)]
pub struct DisksInputs {
    /// The layout file (already resolved against the config's directory).
    pub layout: PathBuf,
    /// A saved snapshot to plan against instead of probing (`--state`).
    pub state_file: Option<PathBuf>,
    /// `--plan-hash`: act only if the plan hashes to this.
    pub plan_hash: Option<String>,
    pub options: PlanOptions,
}

/// Read a snapshot: either a bare state object or `provision status --output json` (whose
/// `state` member is the snapshot).
pub fn load_state(path: &Path) -> Result<SystemState> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        coded(
            Code::BadInput,
            format!("{}: cannot read state snapshot: {e}", path.display()),
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        coded(
            Code::BadInput,
            format!(
                "{}: line {} column {}: {e}",
                path.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    let v = match v.get("state") {
        Some(s) if v.get("disks").is_none() => s.clone(),
        _ => v,
    };
    serde_json::from_value(v).map_err(|e| {
        coded(
            Code::BadInput,
            format!("{}: not a provision state snapshot: {e}", path.display()),
        )
    })
}

/// Observe this machine (or read the snapshot), LVM included.
pub fn observe(ctx: &Context, layout: &Layout, state_file: Option<&Path>) -> Result<SystemState> {
    observe_lvm(
        ctx,
        layout,
        state_file,
        discover::LvmRead::Full,
        disks_wait(ctx),
    )
}

/// How long to wait for the layout's disks: a real run waits, a dry run looks once.
fn disks_wait(ctx: &Context) -> Duration {
    if ctx.dry_run {
        Duration::ZERO
    } else {
        DEVICE_TIMEOUT
    }
}

/// What a run needs to read of LVM. A real mount-only boot without a flag (the every-boot path,
/// DESIGN §11) plans without reading PVs/VGs/LVs: its actions do not depend on them, and the
/// one lvm report would cost as much as the activation itself. What it would have told —
/// a missing VG or LV — shows when activation fails or an LV's device does not come up: the
/// executor then reads LVM once and fails naming what is missing (the steps' `Explain`), as a
/// full read would have; a plan that finds something missing already gets the missing VGs and
/// LVs added the same way ([`run`]). Nothing is planned twice. A dry run, `status`,
/// `--plan-hash`, a token and provisioning always read it all.
pub fn lvm_read_for(ctx: &Context, inputs: &DisksInputs) -> discover::LvmRead {
    if !quick_path(ctx, inputs) {
        return discover::LvmRead::Full;
    }
    let lvm_dir = std::env::var_os("LVM_SYSTEM_DIR").unwrap_or_else(|| "/etc/lvm".into());
    if discover::lvm_conf_knows_devicesfile(Path::new(&lvm_dir)) {
        discover::LvmRead::Nothing // one process less on the every-boot path (~0.1 s under TCG)
    } else {
        discover::LvmRead::VersionOnly
    }
}

/// A real run with no flag and no token: the plan is made without reading LVM ([`lvm_read_for`]).
fn quick_path(ctx: &Context, inputs: &DisksInputs) -> bool {
    !ctx.dry_run
        && inputs.state_file.is_none()
        && inputs.plan_hash.is_none()
        && ctx.cmdline.provision == crate::cmdline::ProvisionRequest::No
        && ctx.cmdline.bad_destructive().next().is_none()
}

fn observe_lvm(
    ctx: &Context,
    layout: &Layout,
    state_file: Option<&Path>,
    what: discover::LvmRead,
    wait: Duration,
) -> Result<SystemState> {
    if let Some(p) = state_file {
        return load_state(p);
    }
    let cfg = |version: Option<&str>| lvm::lvm_devices_config(layout, version);
    if what != discover::LvmRead::Full {
        // `lvm version`, if it is asked at all, does not depend on the disks: ask it while they
        // are read.
        let (lvm, block) = std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                let mut st = SystemState::default();
                discover::read_lvm(ctx.runner.as_ref(), &cfg, &mut st, what).map(|_| st)
            });
            // Nor does the plan depend on libblkid's view of each disk and partition (what is on
            // them is only described); the udev database says it, partition names come from
            // sysfs. The fs type of every device is still probed before it is mounted.
            let block = wait_for_disks(layout, wait, false);
            let lvm = h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("lvm version: thread panicked")));
            (lvm, block)
        });
        let mut state = block?;
        complete_partition_names(layout, &mut state);
        let lvm = lvm.context("reading LVM state")?;
        tracing::debug!(stage = "disks", "lvm version: {:?}", lvm.lvm_version);
        state.lvm_version = lvm.lvm_version;
        state.lvm_unread = lvm.lvm_unread;
        return Ok(state);
    }
    let mut state = wait_for_disks(layout, wait, true)?;
    discover::read_lvm(ctx.runner.as_ref(), &cfg, &mut state, what).context("reading LVM state")?;
    // What is on the layout's LVs, for the plan's filesystem checks (partitions were probed
    // with the disks).
    let lvs: Vec<(&str, &str)> = layout
        .vgs
        .iter()
        .flat_map(|vg| {
            vg.lvs
                .iter()
                .filter(|lv| lv.content.is_some())
                .map(|lv| (vg.name.as_str(), lv.name.as_str()))
        })
        .collect();
    discover::probe_lvs(&mut state, &lvs);
    Ok(state)
}

/// Without libblkid (the every-boot path) partition names come from sysfs and the udev
/// database. A partition the kernel learnt about through BLKPG (`partx -u`, after provisioning in
/// this same boot) has no name in sysfs and may have none in the udev database: where the layout
/// expects a name there, the disk's table is read with libblkid before planning, so that the plan
/// does not call a partition misnamed that is not. Nothing is read when every name is known (a
/// boot: the kernel read the tables itself), nor for a disk whose table cannot be read.
fn complete_partition_names(layout: &Layout, state: &mut SystemState) {
    let mut unnamed: Vec<String> = Vec::new();
    for d in &layout.disks {
        let Ok(dev) = resolve::resolve(d, state) else {
            continue;
        };
        let lacks = resolve::partitions(d).iter().any(|p| {
            p.label.is_some()
                && dev
                    .partitions
                    .iter()
                    .any(|o| o.number as usize == p.number && o.part_label.is_none())
        });
        if lacks && !unnamed.contains(&dev.path) {
            unnamed.push(dev.path.clone());
        }
    }
    for path in unnamed {
        let Ok((_, table)) = discover::read_table(Path::new(&path)) else {
            continue;
        };
        let Some(dev) = state.disks.iter_mut().find(|b| b.path == path) else {
            continue;
        };
        for p in dev.partitions.iter_mut().filter(|p| p.part_label.is_none()) {
            p.part_label = table
                .iter()
                .find(|e| e.number == p.number)
                .and_then(|e| e.name.clone());
        }
    }
}

/// How long a real run waits for the layout's disks to appear (early in boot the kernel may
/// still be probing them: ATA under emulation takes seconds after udev's trigger).
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(60);

/// Read the block devices until every layout disk is present (a path exists, a selector matches
/// at least one disk) or `timeout` has passed. An ambiguous selector is not waited for.
fn wait_for_disks(layout: &Layout, timeout: Duration, blkid: bool) -> Result<SystemState> {
    let src = discover::Sources {
        blkid,
        ..Default::default()
    };
    let t0 = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut said = false;
    loop {
        let st = discover::read_block(&src).context("discovering disks")?;
        let missing = disks_not_ready(layout, &st, &src.udev_data);
        if missing.is_empty() || t0.elapsed() >= timeout {
            if said {
                tracing::info!(
                    stage = "disks",
                    waited_ms = t0.elapsed().as_millis() as u64,
                    "done waiting for disks; missing: {}",
                    if missing.is_empty() {
                        "none".to_string()
                    } else {
                        missing.join(", ")
                    }
                );
            }
            return Ok(st);
        }
        if !said {
            tracing::info!(
                stage = "disks",
                "waiting up to {} s for disks to appear: {}",
                timeout.as_secs(),
                missing.join(", ")
            );
            crate::report::notify_status(&format!("waiting for disks: {}", missing.join(", ")));
            said = true;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// The layout disks not found yet, or found but not yet processed by udev. The kernel shows a
/// disk in sysfs and /dev before it has read its partition table (its "add" event, which udev
/// processes, comes after that scan): a disk read in between has no partitions — seen in the
/// VM as "partition 1 (ESP) does not exist on /dev/sda" on a provisioned node. Where udev runs
/// (its database directory exists), a disk counts once udev has its entry.
fn disks_not_ready(layout: &Layout, st: &SystemState, udev_data: &Path) -> Vec<String> {
    let udev = udev_data.is_dir();
    layout
        .disks
        .iter()
        .filter_map(|d| {
            let found = resolve::matching_disks(d, st);
            let what = format!("{} ({})", d.name, d.reference.describe());
            if found.is_empty() {
                Some(what)
            } else if udev
                && found
                    .iter()
                    .any(|b| !udev_data.join(format!("b{}", b.maj_min)).exists())
            {
                Some(format!("{what}: not yet processed by udev"))
            } else {
                None
            }
        })
        .collect()
}

/// Load the layout, observe, and plan.
pub fn make_plan(ctx: &Context, inputs: &DisksInputs) -> Result<(Layout, SystemState, Plan)> {
    let t0 = Instant::now();
    let layout = crate::disks::types::load(&inputs.layout)?;
    let t_layout = t0.elapsed();
    let what = lvm_read_for(ctx, inputs);
    let state = observe_lvm(
        ctx,
        &layout,
        inputs.state_file.as_deref(),
        what,
        disks_wait(ctx),
    )?;
    let t_observe = t0.elapsed();
    let p = plan::plan(&layout, &state, &ctx.cmdline, &inputs.options)?;
    tracing::debug!(
        stage = "disks",
        "layout read in {} ms, disks{} observed in {} ms, planned in {} ms",
        t_layout.as_millis(),
        if state.lvm_unread { "" } else { " and LVM" },
        (t_observe - t_layout).as_millis(),
        (t0.elapsed() - t_observe).as_millis()
    );
    Ok((layout, state, p))
}

/// The error a plan that cannot be carried out maps to (refusal or something missing).
pub fn plan_error(p: &Plan) -> Option<anyhow::Error> {
    if p.mode == Mode::Refused {
        let reasons: Vec<String> = p
            .refusals
            .iter()
            .map(|r| format!("{}: {}", r.disk, r.reason))
            .collect();
        // Bad input (3) only when every refusal is: a bad cmdline value beside a disk that is
        // not found is still a refusal (4).
        let code = if !p.refusals.is_empty()
            && p.refusals.iter().all(|r| r.kind.code() == Code::BadInput)
        {
            Code::BadInput
        } else {
            Code::Refused
        };
        return Some(coded(
            code,
            format!("refusing to touch any disk: {}", reasons.join("; ")),
        ));
    }
    if !p.missing.is_empty() {
        return Some(coded(
            Code::Missing,
            format!("mount-only: {}", p.missing.join("; ")),
        ));
    }
    None
}

/// The stage's output: the plan as details; the text is the whole plan for a dry run, and what
/// was done for a real one. A real run's details also hold each step's outcome (`outcomes`:
/// `step` counted from 1, `outcome` `changed` or `already-done`, `note`).
fn output(p: &Plan, executed: Option<&[execute::Executed]>) -> StageOutput {
    let mut details = serde_json::to_value(p).unwrap_or_default();
    let dry_run = executed.is_none();
    let done: Vec<String> = match executed {
        None => p.actions.iter().map(|a| a.description.clone()).collect(),
        Some(ex) => ex
            .iter()
            .map(|e| {
                let d = &p.actions[e.step].description;
                match e.outcome.note() {
                    Some(n) => format!("{d} ({n})"),
                    None => d.clone(),
                }
            })
            .collect(),
    };
    if let (Some(ex), Some(o)) = (executed, details.as_object_mut()) {
        let outcomes: Vec<serde_json::Value> = ex
            .iter()
            .map(|e| {
                serde_json::json!({
                    "step": e.step + 1,
                    "outcome": e.outcome.kind(),
                    "note": e.outcome.note(),
                })
            })
            .collect();
        o.insert("outcomes".into(), outcomes.into());
    }
    let text = if dry_run {
        plan::render_text(p)
    } else {
        let mut t = format!(
            "disks: {} ({}), plan {}\n",
            p.mode.as_str(),
            p.reason,
            p.plan_hash
        );
        for d in &done {
            t.push_str(&format!("  done: {d}\n"));
        }
        t
    };
    if let Some(o) = details.as_object_mut() {
        o.insert("text".into(), serde_json::Value::String(text));
    }
    StageOutput {
        actions: done,
        details,
    }
}

/// Run the disks stage: plan, check, then (unless dry-run) execute.
pub fn run(ctx: &Context, inputs: &DisksInputs) -> Result<StageOutput> {
    let (layout, state, p) = make_plan(ctx, inputs)?;
    ctx.facts.update(|f| {
        f.disks_mode = Some(p.mode.as_str());
        f.layout_hash = Some(p.layout_hash.clone());
    });
    for w in &p.warnings {
        tracing::warn!(stage = "disks", "{w}");
    }
    tracing::info!(stage = "disks", mode = p.mode.as_str(), plan_hash = %p.plan_hash, "{}", p.reason);
    if ctx.dry_run {
        // A dry run prints the plan and reports the outcome a real run would have.
        let out = output(&p, None);
        if let Some(e) = plan_error(&p) {
            // print the plan anyway: it says why
            if ctx.json {
                let j = out.to_json("disks");
                println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
            } else {
                print!("{}", plan::render_text(&p));
            }
            return Err(e);
        }
        return Ok(out);
    }
    if let Some(want) = &inputs.plan_hash {
        if want != &p.plan_hash {
            return Err(coded(
                Code::Refused,
                format!("--plan-hash {want}: the plan now hashes to {} — it changed since it was reviewed; run --dry-run again", p.plan_hash),
            ));
        }
    }
    if let Some(e) = plan_error(&p) {
        return Err(with_missing_lvm(ctx, &layout, &state, &p, e));
    }
    // A failure the plan could not foresee (planned without reading LVM: a missing VG or LV)
    // is explained by the executor itself, from the failed step.
    let done = execute::execute(ctx, &p)?;
    Ok(output(&p, Some(&done)))
}

/// A mount-only plan made without reading LVM (the every-boot path) that already finds
/// something missing fails with it; one `lvm fullreport` adds the layout's VGs and LVs that do
/// not exist, so that the message names everything a dry run would (exit 9). A read for the
/// message only: nothing is planned again, nothing runs after it. `err` unchanged otherwise, or
/// when the read fails.
fn with_missing_lvm(
    ctx: &Context,
    layout: &Layout,
    state: &SystemState,
    p: &Plan,
    err: anyhow::Error,
) -> anyhow::Error {
    if !state.lvm_unread
        || p.mode != Mode::MountOnly
        || p.missing.is_empty()
        || layout.vgs.is_empty()
    {
        return err;
    }
    let config = lvm::lvm_devices_config(layout, state.lvm_version.as_deref());
    let mut lvm_state = SystemState::default();
    if let Err(e) = discover::read_fullreport(ctx.runner.as_ref(), &config, &mut lvm_state) {
        tracing::warn!(stage = "disks", "reading LVM for the error message: {e:#}");
        return err;
    }
    let mut missing = p.missing.clone();
    for vg in &layout.vgs {
        let lvs: Vec<String> = vg.lvs.iter().map(|lv| lv.name.clone()).collect();
        missing.extend(lvm::missing(
            &vg.name,
            &lvs,
            &lvm_state,
            &ctx.cmdline.prefix,
        ));
    }
    coded(Code::Missing, format!("mount-only: {}", missing.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::BlockDevice;

    /// The every-boot path's plan finds a partition missing: the error adds, from one LVM read,
    /// the VGs and LVs that do not exist, and plans nothing again.
    #[test]
    fn a_quick_plan_that_finds_something_missing_names_the_missing_vgs_too() {
        use crate::system::{Output, RecordingRunner};
        let layout = crate::disks::types::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/ganeti-node.yaml"),
        )
        .unwrap();
        let mut state = SystemState::blank_for(&layout, 1 << 40);
        state.lvm_unread = true;
        let settings = crate::cmdline::settings("ro", "homelab");
        let p = plan::plan(&layout, &state, &settings, &PlanOptions::default()).unwrap();
        assert!(!p.missing.is_empty() && p.missing.iter().all(|m| !m.contains("VG")));
        let runner = std::sync::Arc::new(RecordingRunner::new());
        runner.on(
            &["lvm", "fullreport"],
            Output::ok(
                r#"{"report":[{"vg":[{"vg_name":"pool_host"}],"pv":[],
                "lv":[{"vg_name":"pool_host","lv_name":"home"}],"seg":[]}]}"#,
            ),
        );
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Context::for_root(dir.path(), dir.path(), "", false);
        ctx.runner = runner.clone();
        let e = with_missing_lvm(&ctx, &layout, &state, &p, plan_error(&p).unwrap());
        assert_eq!(crate::exit::code_of(&e), Code::Missing);
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with(&format!("mount-only: {}", p.missing[0])),
            "{msg}"
        );
        for want in [
            "VG pool_gnt not found (are the disks provisioned?",
            "LV pool_host/swap not found",
            "LV pool_host/var not found",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
        assert!(!msg.contains("pool_host/home"), "{msg}");
        let calls = runner.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0][..2], ["lvm", "fullreport"]);
        // A plan made on a full read already named them: no read.
        let runner = std::sync::Arc::new(RecordingRunner::new());
        ctx.runner = runner.clone();
        state.lvm_unread = false;
        let full = plan::plan(&layout, &state, &settings, &PlanOptions::default()).unwrap();
        let e = with_missing_lvm(&ctx, &layout, &state, &full, plan_error(&full).unwrap());
        assert!(format!("{e:#}").contains("VG pool_gnt not found"), "{e:#}");
        assert!(runner.calls().is_empty());
    }

    /// After provisioning in the same boot (partitions added by `partx -u`) sysfs names no
    /// partition: the every-boot path reads that disk's table rather than call them misnamed.
    #[test]
    fn partition_names_sysfs_does_not_give_are_read_from_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let made = std::process::Command::new("sgdisk")
            .args([
                "--new=1:2048:4095",
                "--change-name=1:disk-d-a",
                "--new=2:4096:6143",
            ])
            .arg(&img)
            .output();
        if !matches!(made, Ok(o) if o.status.success()) {
            eprintln!("SKIP: sgdisk not installed");
            return;
        }
        let path = img.to_string_lossy().to_string();
        let layout = crate::disks::types::parse_str(
            "t.yaml",
            "disk:\n  d:\n    device: /dev/disk/by-id/test\n    content:\n      type: gpt\n      \
             partitions:\n        a: {size: 1M}\n        b: {size: 1M}\n",
        )
        .unwrap();
        let part = |n: u32, label: Option<&str>| state::Partition {
            name: format!("p{n}"),
            path: format!("{path}{n}"),
            number: n,
            part_label: label.map(String::from),
            ..Default::default()
        };
        let mut st = SystemState {
            disks: vec![BlockDevice {
                name: "disk.img".into(),
                path: path.clone(),
                links: vec!["/dev/disk/by-id/test".into()],
                size: 16 << 20,
                partitions: vec![part(1, None), part(2, Some("known"))],
                ..Default::default()
            }],
            ..Default::default()
        };
        complete_partition_names(&layout, &mut st);
        let names: Vec<Option<&str>> = st.disks[0]
            .partitions
            .iter()
            .map(|p| p.part_label.as_deref())
            .collect();
        assert_eq!(names, [Some("disk-d-a"), Some("known")]);
    }

    #[test]
    fn a_disk_counts_once_udev_has_processed_it_where_udev_runs() {
        let layout = crate::disks::types::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/ganeti-node.yaml"),
        )
        .unwrap();
        let dev = |name: &str, mm: &str| BlockDevice {
            name: name.into(),
            path: format!("/dev/{name}"),
            maj_min: mm.into(),
            size: 1 << 40,
            ..Default::default()
        };
        let st = SystemState {
            disks: vec![dev("nvme0n1", "259:0"), dev("sda", "8:0")],
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let udev = dir.path().join("data");
        // No udev database at all (no udevd): sysfs is all there is.
        assert!(disks_not_ready(&layout, &st, &udev).is_empty());
        // udev runs and has seen the NVMe only: the SATA disk is not ready yet.
        std::fs::create_dir(&udev).unwrap();
        std::fs::write(udev.join("b259:0"), "E:ID_SERIAL_SHORT=NV1\n").unwrap();
        assert_eq!(
            disks_not_ready(&layout, &st, &udev),
            ["hdd (/dev/sda): not yet processed by udev"]
        );
        std::fs::write(udev.join("b8:0"), "E:ID_BUS=ata\n").unwrap();
        assert!(disks_not_ready(&layout, &st, &udev).is_empty());
        // Not found at all.
        let only_nvme = SystemState {
            disks: vec![dev("nvme0n1", "259:0")],
            ..Default::default()
        };
        assert_eq!(
            disks_not_ready(&layout, &only_nvme, &udev),
            ["hdd (/dev/sda)"]
        );
    }
}
