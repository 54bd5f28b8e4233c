//! The executor: carries out a plan's steps in order, nothing else, and says of each what it did
//! ([`Outcome`]). Every external command goes through the context's
//! [`Runner`](crate::system::Runner); mounts use mount(2).
//!
//! This file runs the steps (order, the planner's concurrent chains, failpoints, device waits,
//! type checks); `tools.rs` checks the tools before the first wipe, `explain.rs` turns a failed
//! step into what is missing, `mount.rs` does mount(2), `swap.rs` swapon(2), `fsck.rs` reads the
//! ext superblock that decides whether `e2fsck -p` runs.

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::time::{Duration, Instant};

use super::discover::parse_mountinfo;
use super::plan::{type_matches, Plan};
use super::step::{concurrent_groups, fsck_argv, Effect, Outcome, Step};
use crate::context::Context;
use crate::exit::{coded, Code};
use crate::report::notify_status;
use crate::system::fsutil;
use mount::mount;
use swap::{swap_active, swapon};
use tools::tools_present;

mod explain;
mod fsck;
mod mount;
mod swap;
mod tools;

pub use fsck::{ext_is_clean, ext_superblock_clean};

/// How long to wait for a device node to appear.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(30);

/// Failpoint for crash-consistency tests: `PROVISION_FAILPOINT=<N>` makes the process abort
/// (no cleanup, like a power cut from the program's point of view) just before step N of the
/// plan, `<N>+` just after it. Unset in production: nothing happens.
fn failpoint(step: usize, after: bool) {
    let Some(v) = std::env::var_os("PROVISION_FAILPOINT") else {
        return;
    };
    let v = v.to_string_lossy();
    let (num, want_after) = match v.strip_suffix('+') {
        Some(n) => (n, true),
        None => (v.as_ref(), false),
    };
    if num.parse::<usize>().ok() == Some(step) && want_after == after {
        eprintln!(
            "provision: PROVISION_FAILPOINT={v}: aborting {} step {step}",
            if after { "after" } else { "before" }
        );
        // sync nothing, unwind nothing
        std::process::abort();
    }
}

/// One step carried out: its index in the plan (0-based) and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub step: usize,
    pub outcome: Outcome,
}

/// Carry out every step; returns what each did, in plan order. The groups of
/// [`concurrent_groups`] (chains the planner marked) run at the same time, one thread per chain
/// (at most [`MAX_CONCURRENT`], and no more than there are CPUs); failpoints keep their step
/// numbers (a failpoint inside a group fires when that step starts or ends, with its neighbours
/// possibly under way, as a power cut would find them). After a failure in a group the other
/// chains finish; the first error in plan order is returned.
pub fn execute(ctx: &Context, plan: &Plan) -> Result<Vec<Executed>> {
    tools_present(ctx, plan)?;
    let n = plan.actions.len();
    let groups = concurrent_groups(&plan.actions);
    let probes = Probes::default();
    let mut done: Vec<Option<Outcome>> = vec![None; n];
    let mut i = 0;
    while i < n {
        if let Some(g) = groups.iter().find(|g| g[0][0] == i) {
            let results = run_group(ctx, plan, g, &probes);
            let mut first_err = None;
            for (idx, r) in results {
                match r {
                    Ok(o) => done[idx] = Some(counted(ctx, &plan.actions[idx], o)),
                    Err(e) if first_err.is_none() => first_err = Some(e),
                    Err(_) => {}
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
            i = g.iter().flatten().max().map_or(i + 1, |m| m + 1);
            continue;
        }
        done[i] = Some(counted(
            ctx,
            &plan.actions[i],
            run_step(ctx, plan, i, &probes)?,
        ));
        i += 1;
    }
    Ok(done
        .into_iter()
        .enumerate()
        .filter_map(|(step, o)| o.map(|outcome| Executed { step, outcome }))
        .collect())
}

/// Count a step carried out in the stage's metrics (as it happens: a later failure keeps it).
fn counted(ctx: &Context, step: &Step, o: Outcome) -> Outcome {
    ctx.facts.update(|f| match o {
        Outcome::Changed(_) => {
            f.steps_done += 1;
            f.steps_destructive += u64::from(step.destructive);
        }
        Outcome::AlreadyDone(_) => f.steps_already_done += 1,
    });
    o
}

/// Formatting runs at most this many devices at once, and never more than there are CPUs: mkfs
/// is mostly CPU work on a fresh device, and on one CPU four at once took longer than one after
/// another (measured in the single-vCPU VM guest: 2.2 s against 1.5 s for the ganeti layout).
pub const MAX_CONCURRENT: usize = 4;

fn concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_CONCURRENT)
}

/// Run one concurrent group; (step index, outcome) in plan order.
fn run_group(
    ctx: &Context,
    plan: &Plan,
    chains: &[Vec<usize>],
    probes: &Probes,
) -> Vec<(usize, Result<Outcome>)> {
    use std::sync::Mutex;
    let next = Mutex::new(0usize);
    let out: Mutex<Vec<(usize, Result<Outcome>)>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..concurrency().min(chains.len()) {
            sc.spawn(|| loop {
                let c = {
                    let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                    let c = *n;
                    *n += 1;
                    c
                };
                let Some(chain) = chains.get(c) else { break };
                for &idx in chain {
                    let r = run_step(ctx, plan, idx, probes);
                    let failed = r.is_err();
                    out.lock().unwrap_or_else(|e| e.into_inner()).push((idx, r));
                    if failed {
                        break; // the rest of this device's chain depends on it
                    }
                }
            });
        }
    });
    let mut v = out.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|(i, _)| *i);
    v
}

/// One step: status, failpoints, the effect, its log line.
fn run_step(ctx: &Context, plan: &Plan, i: usize, probes: &Probes) -> Result<Outcome> {
    let n = plan.actions.len();
    let a = &plan.actions[i];
    notify_status(&format!("{} ({}/{n})", a.description, i + 1));
    failpoint(i + 1, false);
    let t0 = Instant::now();
    let outcome = match run_effect(ctx, a, probes) {
        Ok(o) => o,
        Err(e) => {
            let e = e.context(format!("step {}/{n}: {}", i + 1, a.description));
            return Err(explain::explain(ctx, a, e));
        }
    };
    failpoint(i + 1, true);
    let duration_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        stage = "disks",
        action = a.op.as_str(),
        device = a.device().unwrap_or(""),
        outcome = outcome.kind(),
        duration_ms,
        "{}{}",
        a.description,
        outcome
            .note()
            .map(|x| format!(" ({x})"))
            .unwrap_or_default()
    );
    Ok(outcome)
}

/// What libblkid found on each device this run, so that the fs-type check before a mount does
/// not probe again what the check before its fsck just probed. Any step that writes to a device
/// (wipe, partition, LVM, mkfs) forgets everything.
#[derive(Default)]
pub struct Probes(std::sync::Mutex<std::collections::HashMap<String, Option<String>>>);

impl Probes {
    fn get(&self, dev: &str, want: &str) -> Option<String> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(dev.to_string())
            .or_insert_with(|| super::discover::probe_type_expecting(Path::new(dev), want))
            .clone()
    }
    fn forget(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn run_effect(ctx: &Context, a: &Step, probes: &Probes) -> Result<Outcome> {
    // What was probed stays true only across steps that write to no device: every command may.
    if a.destructive || matches!(a.effect, Effect::Run { .. } | Effect::VerifyTable { .. }) {
        probes.forget();
    }
    match &a.effect {
        Effect::Run { argv, stdin, .. } => {
            ctx.runner
                .check(argv, stdin.as_deref().map(str::as_bytes))?;
            Ok(Outcome::Changed(None))
        }
        Effect::WriteFile {
            path,
            content,
            mode,
        } => write_file(&ctx.path(path), content, *mode),
        Effect::WaitDevice { path } => {
            wait_for_device(Path::new(path), DEVICE_TIMEOUT)?;
            Ok(Outcome::Changed(None))
        }
        Effect::Fsck { device, fs_type } => fsck(ctx, probes, device, fs_type),
        Effect::Mount {
            source,
            target,
            fs_type,
            options,
        } => mount(ctx, probes, source, target, fs_type, options),
        Effect::Swapon { device, options } => {
            if swap_active(device) {
                return Ok(Outcome::AlreadyDone("already on".into()));
            }
            expect_type(probes, device, "swap")?;
            swapon(device, options)?;
            Ok(Outcome::Changed(None))
        }
        Effect::EnsureDir {
            path,
            owner,
            group,
            mode,
        } => ensure_dir(ctx, path, owner, group, *mode),
        Effect::VerifyTable { disk, expect } => {
            let got = super::discover::read_table(Path::new(disk))?;
            compare_table(disk, expect, &got)?;
            Ok(Outcome::Changed(None))
        }
    }
}

/// Write `content` unless the file holds exactly it with `mode` already.
fn write_file(target: &Path, content: &str, mode: u32) -> Result<Outcome> {
    use std::os::unix::fs::PermissionsExt;
    let same_mode =
        std::fs::metadata(target).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same_mode && std::fs::read_to_string(target).ok().as_deref() == Some(content) {
        return Ok(Outcome::AlreadyDone("already up to date".into()));
    }
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fsutil::atomic_write(target, content.as_bytes(), mode, None)?;
    Ok(Outcome::Changed(None))
}

/// `e2fsck -p` on an ext filesystem, unless it is mounted or its superblock says it is clean.
fn fsck(ctx: &Context, probes: &Probes, dev: &str, fs_type: &str) -> Result<Outcome> {
    if is_mounted(dev) {
        return Ok(Outcome::AlreadyDone("mounted already: not checked".into()));
    }
    expect_type(probes, dev, fs_type)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some(why) = ext_is_clean(Path::new(dev), now) {
        return Ok(Outcome::AlreadyDone(format!(
            "superblock clean ({why}): e2fsck not needed"
        )));
    }
    let out = ctx.runner.run_raw(&fsck_argv(dev), None)?;
    match out.status {
        0 => Ok(Outcome::Changed(None)),
        1 => Ok(Outcome::Changed(Some("errors corrected".into()))),
        2 => Ok(Outcome::Changed(Some(
            "errors corrected; e2fsck suggests a reboot".into(),
        ))),
        s => Err(coded(
            Code::Command,
            format!(
                "e2fsck -p found problems it cannot fix alone (exit {s}) on {dev}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )),
    }
}

/// The table read back from `dev` must be the planned one exactly: its type, and every
/// partition's number, start, size (bytes) and GPT name. A difference stops the run before
/// anything is formatted (exit 5), naming each difference.
pub fn compare_table(
    dev: &str,
    want: &super::step::PlannedTable,
    got: &(String, Vec<super::discover::TableEntry>),
) -> Result<()> {
    let (kind, entries) = got;
    let mut diffs = Vec::new();
    if kind != &want.kind {
        diffs.push(format!("table type {kind:?}, planned {:?}", want.kind));
    }
    for w in &want.partitions {
        match entries.iter().find(|e| e.number == w.number) {
            None => diffs.push(format!("partition {} is missing", w.number)),
            Some(e) => {
                if (e.start, e.size) != (w.start, w.size) {
                    diffs.push(format!(
                        "partition {} is {} bytes at byte {}, planned {} bytes at byte {}",
                        w.number, e.size, e.start, w.size, w.start
                    ));
                }
                if w.name.is_some() && e.name != w.name {
                    diffs.push(format!(
                        "partition {} is named {:?}, planned {:?}",
                        w.number,
                        e.name.as_deref().unwrap_or(""),
                        w.name.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }
    for e in entries {
        if !want.partitions.iter().any(|w| w.number == e.number) {
            diffs.push(format!("partition {} was not planned", e.number));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(coded(
            Code::Command,
            format!(
                "the partition table written on {dev} is not the planned one: {}",
                diffs.join("; ")
            ),
        ))
    }
}
/// Poll for a block device node (the kernel creates partition nodes itself; LV links come from
/// udev, which lvcreate waits for).
pub fn wait_for_device(dev: &Path, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        if let Ok(m) = std::fs::metadata(dev) {
            use std::os::unix::fs::FileTypeExt;
            if m.file_type().is_block_device() {
                return Ok(());
            }
        }
        // An LV's dm device exists as soon as vgchange returned (udev only adds the /dev
        // node): none after a second means the LV was not activated, e.g. it does not exist.
        if t0.elapsed() >= Duration::from_secs(1) {
            if let Some(dm) = dev
                .to_str()
                .and_then(|d| d.strip_prefix("/dev/mapper/"))
                .filter(|dm| !dm.contains('/'))
            {
                if !dm_device_exists(dm) {
                    bail!("{} is not an active device-mapper device", dev.display());
                }
            }
        }
        if t0.elapsed() >= timeout {
            bail!(
                "{} did not appear within {} s",
                dev.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// Is there a device-mapper device named `name` (sysfs `dm/name`)?
fn dm_device_exists(name: &str) -> bool {
    std::fs::read_dir("/sys/block")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("dm-"))
                .any(|e| {
                    std::fs::read_to_string(e.path().join("dm/name"))
                        .is_ok_and(|n| n.trim() == name)
                })
        })
        .unwrap_or(false)
}

pub(super) fn maj_min(path: &Path) -> Option<String> {
    let st = rustix::fs::stat(path).ok()?;
    Some(format!(
        "{}:{}",
        rustix::fs::major(st.st_rdev),
        rustix::fs::minor(st.st_rdev)
    ))
}

/// Mount-only never formats: a device without the filesystem the layout names is an error that
/// says so (a provisioning run cut off before its mkfs, or the wrong disk).
pub(super) fn expect_type(probes: &Probes, dev: &str, want: &str) -> Result<()> {
    let found = probes.get(dev, want);
    if type_matches(want, found.as_deref()) {
        return Ok(());
    }
    Err(coded(
        Code::Missing,
        format!(
            "{}: nothing was formatted — if a provisioning run was interrupted, boot again with the same provision_disks flag or token",
            super::plan::fs_mismatch(dev, found.as_deref(), want)
        ),
    ))
}

/// Is this block device (or what its symlink points to) mounted anywhere?
fn is_mounted(dev: &str) -> bool {
    let Some(want) = std::fs::canonicalize(dev).ok().and_then(|p| maj_min(&p)) else {
        return false;
    };
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        .iter()
        .any(|m| m.maj_min == want)
}

/// Create the directory if needed and give it the owner, group and mode (names looked up in the
/// target root's /etc/passwd and /etc/group).
fn ensure_dir(ctx: &Context, path: &str, owner: &str, group: &str, mode: u32) -> Result<Outcome> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let path = ctx.path(path);
    let users = crate::system::users::Users::load(&ctx.root);
    let uid = users.uid(owner)?;
    let gid = users.gid(group)?;
    let before = std::fs::metadata(&path).ok().filter(|m| m.is_dir());
    if before
        .as_ref()
        .is_some_and(|m| (m.uid(), m.gid(), m.mode() & 0o7777) == (uid, gid, mode))
    {
        return Ok(Outcome::AlreadyDone(
            "exists with this owner and mode".into(),
        ));
    }
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    std::os::unix::fs::chown(&path, Some(uid), Some(gid))
        .with_context(|| format!("chown {uid}:{gid} {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
    Ok(Outcome::Changed(
        before.map(|_| "existed; owner and mode set".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sgdisk writes 8300 for a code it does not know, with only a warning: refused first.
    #[test]
    fn a_type_code_sgdisk_does_not_know_changes_nothing() {
        if crate::system::resolve_tool("sgdisk").is_none() {
            eprintln!("SKIP: sgdisk not installed");
            return;
        }
        let layout = crate::disks::types::parse_str(
            "t.yaml",
            "disk:\n  d:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        a: {size: 10M, type: \"1234\"}\n",
        )
        .unwrap();
        let st = crate::disks::state::SystemState::blank_for(&layout, 1 << 30);
        let plan = crate::disks::plan::plan(
            &layout,
            &st,
            &crate::cmdline::settings("homelab.provision_disks=true", "homelab"),
            &crate::disks::plan::PlanOptions::default(),
        )
        .unwrap();
        let root = tempfile::tempdir().unwrap();
        let mut ctx = Context::for_root(root.path(), root.path(), "", false);
        ctx.runner = std::sync::Arc::new(crate::system::RealRunner);
        let e = execute(&ctx, &plan).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), Code::Refused);
        assert!(
            format!("{e:#}").contains("does not know the partition type code 1234"),
            "{e:#}"
        );
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_plan_that_calls_a_missing_tool_changes_nothing() {
        let layout = crate::disks::types::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/ganeti-node.yaml"),
        )
        .unwrap();
        let st = crate::disks::state::SystemState::blank_for(&layout, 1 << 40);
        let mut plan = crate::disks::plan::plan(
            &layout,
            &st,
            &crate::cmdline::settings("homelab.provision_disks=true", "homelab"),
            &crate::disks::plan::PlanOptions::default(),
        )
        .unwrap();
        let mkfs = plan
            .actions
            .iter_mut()
            .find(|a| a.op == crate::disks::types::filesystem::MKFS)
            .unwrap();
        let Effect::Run { argv, .. } = &mut mkfs.effect else {
            panic!("mkfs runs a command")
        };
        argv[0] = "mkfs.provision-test-absent".into();
        let root = tempfile::tempdir().unwrap();
        let mut ctx = Context::for_root(root.path(), root.path(), "", false);
        ctx.runner = std::sync::Arc::new(crate::system::RealRunner);
        let e = execute(&ctx, &plan).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), Code::Refused);
        let msg = format!("{e:#}");
        assert!(msg.contains("mkfs.provision-test-absent (step "), "{msg}");
        // Not even the first, harmless step (the LVM filter file) ran.
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }

    /// A step that finds its work done says so instead of doing it again.
    #[test]
    fn write_file_and_ensure_dir_say_when_they_had_nothing_to_do() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let ctx = Context::for_root(root.path(), root.path(), "", false);
        let f = root.path().join("etc/x.conf");
        assert_eq!(
            write_file(&f, "a\n", 0o644).unwrap(),
            Outcome::Changed(None)
        );
        assert_eq!(
            write_file(&f, "a\n", 0o644).unwrap(),
            Outcome::AlreadyDone("already up to date".into())
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            write_file(&f, "a\n", 0o644).unwrap(),
            Outcome::Changed(None)
        );
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        let (uid, gid) = (
            rustix::process::getuid().as_raw().to_string(),
            rustix::process::getgid().as_raw().to_string(),
        );
        let dir = |mode| ensure_dir(&ctx, "/srv/d", &uid, &gid, mode).unwrap();
        assert_eq!(dir(0o750), Outcome::Changed(None));
        assert_eq!(
            dir(0o750),
            Outcome::AlreadyDone("exists with this owner and mode".into())
        );
        assert_eq!(
            dir(0o700),
            Outcome::Changed(Some("existed; owner and mode set".into()))
        );
    }

    #[test]
    fn wait_for_device_times_out_naming_it() {
        let e = wait_for_device(
            Path::new("/dev/does-not-exist-xyz"),
            Duration::from_millis(30),
        )
        .unwrap_err();
        assert!(format!("{e}").contains("/dev/does-not-exist-xyz did not appear"));
    }

    #[test]
    fn an_lv_that_was_not_activated_fails_fast_naming_it() {
        let t0 = std::time::Instant::now();
        let e = wait_for_device(
            Path::new("/dev/mapper/provision-test-absent"),
            Duration::from_secs(30),
        )
        .unwrap_err();
        assert!(
            format!("{e}").contains("not an active device-mapper device"),
            "{e}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "it did not wait out the timeout"
        );
        // a path below /dev/mapper/ that is not a dm name waits the normal way
        let e =
            wait_for_device(Path::new("/dev/mapper/a/b"), Duration::from_millis(1200)).unwrap_err();
        assert!(format!("{e}").contains("did not appear"), "{e}");
    }

    #[test]
    fn fs_type_check_before_fsck_mount_or_swapon() {
        assert!(type_matches("ext4", Some("ext4")));
        assert!(type_matches("vfat", Some("msdos")));
        assert!(type_matches("swap", Some("swap")));
        assert!(
            !type_matches("ext4", None),
            "no filesystem: never mounted, never formatted"
        );
        assert!(!type_matches("ext4", Some("xfs")));
        assert!(!type_matches("msdos", Some("vfat")));
        assert!(!type_matches("swap", Some("ext4")));
    }
}
