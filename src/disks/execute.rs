//! The executor: carries out a plan's actions in order, nothing else. Every external command goes
//! through the context's [`Runner`](crate::system::Runner); mounts use mount(2).

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::time::{Duration, Instant};

use super::discover::parse_mountinfo;
use super::plan::{type_matches, Plan};
use super::step::{concurrent_groups, Action, Op};
use crate::context::Context;
use crate::exit::{coded, Code};
use crate::report::notify_status;
use crate::system::fsutil;

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

/// Carry out every action; returns the descriptions of what was done (or found done), in plan
/// order. The groups of [`concurrent_groups`] run at the same time, one thread per device's chain
/// (at most [`MAX_CONCURRENT`], and no more than there are CPUs); failpoints keep their step numbers (a failpoint inside a group
/// fires when that step starts or ends, with its neighbours possibly under way, as a power cut
/// would find them). After a failure in a group the other chains finish; the first error in plan
/// order is returned.
pub fn execute(ctx: &Context, plan: &Plan) -> Result<Vec<String>> {
    tools_present(ctx, plan)?;
    let n = plan.actions.len();
    let groups = concurrent_groups(&plan.actions);
    let probes = Probes::default();
    let mut done: Vec<Option<String>> = vec![None; n];
    let mut i = 0;
    while i < n {
        if let Some(g) = groups.iter().find(|g| g[0][0] == i) {
            let results = run_group(ctx, plan, g, &probes);
            let mut first_err = None;
            for (idx, r) in results {
                match r {
                    Ok(d) => done[idx] = Some(d),
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
        done[i] = Some(run_step(ctx, plan, i, &probes)?);
        i += 1;
    }
    Ok(done.into_iter().flatten().collect())
}

/// A plan that would destroy anything runs only when every tool it calls is on this node: a
/// missing `mkfs.xfs` is found before the first wipe, not after it (exit 4, nothing changed).
fn tools_present(ctx: &Context, plan: &Plan) -> Result<()> {
    if !plan.actions.iter().any(|a| a.destructive) {
        return Ok(());
    }
    let mut missing: Vec<String> = Vec::new();
    for (i, a) in plan.actions.iter().enumerate() {
        let Some(tool) = a.argv.as_ref().and_then(|v| v.first()) else {
            continue;
        };
        if !ctx.runner.has_tool(tool)
            && !missing.iter().any(|m| m.starts_with(&format!("{tool} (")))
        {
            missing.push(format!("{tool} (step {}: {})", i + 1, a.description));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(coded(
            Code::Refused,
            format!(
                "not installed on this node, needed by the plan: {}; nothing was changed",
                missing.join(", ")
            ),
        ))
    }
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
) -> Vec<(usize, Result<String>)> {
    use std::sync::Mutex;
    let next = Mutex::new(0usize);
    let out: Mutex<Vec<(usize, Result<String>)>> = Mutex::new(Vec::new());
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

/// One step: status, failpoints, the action, its log line.
fn run_step(ctx: &Context, plan: &Plan, i: usize, probes: &Probes) -> Result<String> {
    let n = plan.actions.len();
    let a = &plan.actions[i];
    notify_status(&format!("{} ({}/{n})", a.description, i + 1));
    failpoint(i + 1, false);
    let t0 = Instant::now();
    let note = run_action(ctx, a, probes)
        .with_context(|| format!("step {}/{n}: {}", i + 1, a.description))?;
    failpoint(i + 1, true);
    let duration_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        stage = "disks",
        action = ?a.op,
        device = a.device.as_deref().unwrap_or(""),
        duration_ms,
        "{}{}",
        a.description,
        note.as_deref().map(|x| format!(" ({x})")).unwrap_or_default()
    );
    Ok(match note {
        Some(x) => format!("{} ({x})", a.description),
        None => a.description.clone(),
    })
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

fn run_action(ctx: &Context, a: &Action, probes: &Probes) -> Result<Option<String>> {
    // What was probed stays true only across steps that write to no device.
    let read_only = !a.destructive
        && matches!(
            a.op,
            Op::WriteFile | Op::WaitDevice | Op::Fsck | Op::Mount | Op::Swapon | Op::EnsureDir
        );
    if !read_only {
        probes.forget();
    }
    match a.op {
        Op::WriteFile => {
            let target = ctx.path(a.target.as_deref().unwrap_or_default());
            let content = a.content.as_deref().unwrap_or_default();
            if std::fs::read_to_string(&target).ok().as_deref() == Some(content) {
                return Ok(Some("already up to date".into()));
            }
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            fsutil::atomic_write(&target, content.as_bytes(), 0o644, None)?;
            Ok(None)
        }
        Op::WaitDevice => {
            let dev = a.device.as_deref().unwrap_or_default();
            wait_for_device(Path::new(dev), DEVICE_TIMEOUT)?;
            Ok(None)
        }
        Op::Fsck => {
            let dev = a.device.as_deref().unwrap_or_default();
            if is_mounted(dev) {
                return Ok(Some("mounted already: not checked".into()));
            }
            expect_type(probes, dev, a.fs_type.as_deref().unwrap_or("ext4"))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if let Some(why) = ext_is_clean(Path::new(dev), now) {
                return Ok(Some(format!("superblock clean ({why}): e2fsck not needed")));
            }
            let argv = a.argv.as_deref().unwrap_or_default();
            let out = ctx.runner.run_raw(argv, None)?;
            match out.status {
                0 => Ok(None),
                1 => Ok(Some("errors corrected".into())),
                2 => Ok(Some("errors corrected; e2fsck suggests a reboot".into())),
                s => Err(coded(
                    Code::Command,
                    format!(
                        "e2fsck -p found problems it cannot fix alone (exit {s}) on {}: {}",
                        a.device.as_deref().unwrap_or(""),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                )),
            }
        }
        Op::Mount => mount(ctx, a, probes),
        Op::Swapon => {
            let dev = a.device.as_deref().unwrap_or_default();
            if swap_active(dev) {
                return Ok(Some("already on".into()));
            }
            expect_type(probes, dev, "swap")?;
            swapon(dev, a.options.as_deref().unwrap_or(""))?;
            Ok(None)
        }
        Op::EnsureDir => ensure_dir(ctx, a),
        Op::VerifyTable => {
            let dev = a.device.as_deref().unwrap_or_default();
            let want = a.table.as_ref().context("VerifyTable without a table")?;
            let got = super::discover::read_table(Path::new(dev))?;
            compare_table(dev, want, &got)?;
            Ok(None)
        }
        _ => {
            let argv = a.argv.as_deref().context("action without a command")?;
            ctx.runner
                .check(argv, a.stdin.as_deref().map(str::as_bytes))?;
            Ok(None)
        }
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

/// Reads an ext2/3/4 superblock and says whether `e2fsck -p` would find nothing to do: it then
/// only reports the filesystem clean (e2fsck's check_if_skip). Anything else — errors recorded,
/// not cleanly unmounted, a journal to replay, orphan inodes to release, a mount count or check
/// interval due, a timestamp in the future (a wrong clock early in boot), an external journal, or
/// a superblock that cannot be read — says None, and e2fsck -p runs as before.
pub fn ext_is_clean(dev: &Path, now: u64) -> Option<&'static str> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(dev).ok()?;
    f.seek(SeekFrom::Start(1024)).ok()?;
    let mut sb = [0u8; 1024];
    f.read_exact(&mut sb).ok()?;
    ext_superblock_clean(&sb, now)
}

/// [`ext_is_clean`] on the 1024 superblock bytes (offsets from the kernel's ext4.h).
pub fn ext_superblock_clean(sb: &[u8; 1024], now: u64) -> Option<&'static str> {
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    const VALID_FS: u16 = 1;
    const INCOMPAT_RECOVER: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    if u16_at(0x38) != 0xEF53 {
        return None; // s_magic
    }
    let state = u16_at(0x3A);
    if state != VALID_FS {
        return None; // s_state: not cleanly unmounted, errors, orphans being processed
    }
    let incompat = u32_at(0x60);
    if incompat & (INCOMPAT_RECOVER | INCOMPAT_JOURNAL_DEV) != 0 {
        return None; // a journal to replay, or an external journal device
    }
    if u32_at(0xE8) != 0 {
        return None; // s_last_orphan: orphan inodes to release
    }
    let mnt_count = u16_at(0x34);
    let max_mnt_count = u16_at(0x36) as i16;
    if max_mnt_count > 0 && mnt_count >= max_mnt_count as u16 {
        return None; // mount count reached
    }
    let lastcheck = u64::from(u32_at(0x40));
    let interval = u64::from(u32_at(0x44));
    if interval > 0 && now >= lastcheck + interval {
        return None; // check interval passed
    }
    let (mtime, wtime) = (u64::from(u32_at(0x2C)), u64::from(u32_at(0x30)));
    // e2fsck fixes timestamps in the future (with a day's grace); let it.
    if [lastcheck, mtime, wtime].iter().any(|&t| t > now + 86400) {
        return None;
    }
    Some("cleanly unmounted, no errors, no journal to replay")
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

fn maj_min(path: &Path) -> Option<String> {
    let st = rustix::fs::stat(path).ok()?;
    Some(format!(
        "{}:{}",
        rustix::fs::major(st.st_rdev),
        rustix::fs::minor(st.st_rdev)
    ))
}

/// Mount-only never formats: a device without the filesystem the layout names is an error that
/// says so (a provisioning run cut off before its mkfs, or the wrong disk).
fn expect_type(probes: &Probes, dev: &str, want: &str) -> Result<()> {
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

fn swap_active(dev: &str) -> bool {
    let real = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.into());
    let want = maj_min(&real);
    std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .any(|p| Path::new(p) == real || (want.is_some() && maj_min(Path::new(p)) == want))
}

// linux/swap.h
const SWAP_FLAG_PREFER: i32 = 0x8000;
const SWAP_FLAG_PRIO_MASK: i32 = 0x7fff;
const SWAP_FLAG_DISCARD: i32 = 0x10000;
const SWAP_FLAG_DISCARD_ONCE: i32 = 0x20000;
const SWAP_FLAG_DISCARD_PAGES: i32 = 0x40000;

/// swapon(2) flags for fstab-style swap options: `pri=N` (-1: the kernel's default),
/// `discard` (both), `discard=once`, `discard=pages` — as swapon(8) sets them.
fn swap_flags(opts: &str) -> Result<i32> {
    let mut flags = 0;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("pri", v)) => {
                let p: i32 = v
                    .parse()
                    .ok()
                    .filter(|p| (-1..=SWAP_FLAG_PRIO_MASK).contains(p))
                    .with_context(|| format!("swap option {o:?}: expected pri=-1..32767"))?;
                if p >= 0 {
                    flags |= SWAP_FLAG_PREFER | (p & SWAP_FLAG_PRIO_MASK);
                }
            }
            None if o == "discard" => flags |= SWAP_FLAG_DISCARD,
            Some(("discard", "once")) => flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_ONCE,
            Some(("discard", "pages")) => flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_PAGES,
            _ => bail!("swap option {o:?}: expected pri=N, discard, discard=once or discard=pages"),
        }
    }
    Ok(flags)
}

/// swapon(2) — what swapon(8) does for a block device whose swap signature was just checked.
/// The crate's one `unsafe`: neither nix nor rustix wraps swapon(2), and swapon(8) would cost a
/// process (~0.1 s under TCG, a tenth of the every-boot path) for this one call.
#[allow(unsafe_code)]
fn swapon(dev: &str, opts: &str) -> Result<()> {
    let flags = swap_flags(opts)?;
    let path = std::ffi::CString::new(dev).with_context(|| format!("device path {dev:?}"))?;
    // SAFETY: a NUL-terminated path that lives across the call; swapon(2) only reads it.
    if unsafe { nix::libc::swapon(path.as_ptr(), flags) } != 0 {
        let e = std::io::Error::last_os_error();
        // What swapon(8) would have said in words: the signature was checked, so EINVAL is the
        // kernel refusing the area itself.
        let hint = if e.raw_os_error() == Some(nix::libc::EINVAL) {
            " — the kernel refused this swap area (made for another page size, or holding a \
             hibernation image?); a provisioning run makes it anew"
        } else {
            ""
        };
        return Err(coded(
            Code::Command,
            format!(
                "swapon {dev}{}: {e}{hint}",
                if opts.is_empty() {
                    String::new()
                } else {
                    format!(" ({opts})")
                }
            ),
        ));
    }
    Ok(())
}

/// Split `mountOptions` into mount(2) flags and the filesystem's data string.
pub fn split_options(opts: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags as F;
    let mut flags = F::empty();
    let mut data = Vec::new();
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o {
            "defaults" | "rw" | "auto" | "noauto" | "nofail" | "user" | "nouser" | "_netdev" => {}
            "ro" => flags |= F::MS_RDONLY,
            "nosuid" => flags |= F::MS_NOSUID,
            "nodev" => flags |= F::MS_NODEV,
            "noexec" => flags |= F::MS_NOEXEC,
            "sync" => flags |= F::MS_SYNCHRONOUS,
            "dirsync" => flags |= F::MS_DIRSYNC,
            "noatime" => flags |= F::MS_NOATIME,
            "nodiratime" => flags |= F::MS_NODIRATIME,
            "relatime" => flags |= F::MS_RELATIME,
            "strictatime" => flags |= F::MS_STRICTATIME,
            "lazytime" => flags |= F::MS_LAZYTIME,
            "suid" | "dev" | "exec" | "async" | "atime" | "diratime" | "norelatime" => {}
            o if o.starts_with("x-") || o.starts_with("comment=") => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, data.join(","))
}

fn mount(ctx: &Context, a: &Action, probes: &Probes) -> Result<Option<String>> {
    let target_rel = a.target.as_deref().unwrap_or_default();
    let target = ctx.path(target_rel);
    let dev = a.device.as_deref().unwrap_or("none");
    let fstype = a.fs_type.as_deref().unwrap_or("auto");
    let mounts =
        parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let target_s = target.to_string_lossy();
    let dev_mm = if dev.starts_with('/') {
        std::fs::canonicalize(dev).ok().and_then(|p| maj_min(&p))
    } else {
        None
    };
    if let Some(m) = mounts.iter().rev().find(|m| m.target == target_s) {
        if dev_mm.as_deref() == Some(m.maj_min.as_str())
            || (dev_mm.is_none() && m.fs_type == fstype)
        {
            return Ok(Some("already mounted".into()));
        }
        if dev_mm.is_some() {
            return Err(coded(
                Code::Command,
                format!(
                    "{} is already mounted from {} ({}), not {dev}",
                    target.display(),
                    m.source,
                    m.fs_type
                ),
            ));
        }
    }
    if dev.starts_with("/dev/") {
        expect_type(probes, dev, fstype)?;
    }
    std::fs::create_dir_all(&target)
        .with_context(|| format!("creating mountpoint {}", target.display()))?;
    let (flags, data) = split_options(a.options.as_deref().unwrap_or(""));
    nix::mount::mount(
        Some(dev),
        &target,
        Some(fstype),
        flags,
        if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        },
    )
    .map_err(|e| {
        coded(
            Code::Command,
            format!(
                "mount {dev} on {} ({fstype}, \"{}\"): {e}",
                target.display(),
                a.options.as_deref().unwrap_or("")
            ),
        )
    })?;
    Ok(None)
}

fn ensure_dir(ctx: &Context, a: &Action) -> Result<Option<String>> {
    let path = ctx.path(a.target.as_deref().unwrap_or_default());
    let mode = u32::from_str_radix(a.mode.as_deref().unwrap_or("0755"), 8).unwrap_or(0o755);
    let users = crate::system::users::Users::load(&ctx.root);
    let uid = users.uid(a.owner.as_deref().unwrap_or("root"))?;
    let gid = users.gid(a.group.as_deref().unwrap_or("root"))?;
    let existed = path.is_dir();
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    std::os::unix::fs::chown(&path, Some(uid), Some(gid))
        .with_context(|| format!("chown {uid}:{gid} {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
    Ok(existed.then(|| "existed; owner and mode set".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_that_calls_a_missing_tool_changes_nothing() {
        let layout = crate::layout::load(
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
        let mkfs = plan.actions.iter_mut().find(|a| a.op == Op::Mkfs).unwrap();
        mkfs.argv.as_mut().unwrap()[0] = "mkfs.provision-test-absent".into();
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

    #[test]
    fn swapon_names_the_device_and_says_why_the_kernel_refused_an_area() {
        // A swap area made for 64 KiB pages: libblkid calls it swap, a 4 KiB-page kernel does
        // not (EINVAL), as swapon(8) would report in words.
        // (x86_64, the one target: 4 KiB pages.)
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (swapon(2))");
            return;
        }
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let img = dir.path().join("swap64k");
        std::fs::write(&img, vec![0u8; 4 << 20]).unwrap();
        let made = std::process::Command::new("mkswap")
            .args(["-q", "-p", "65536"])
            .arg(&img)
            .status();
        if !matches!(made, Ok(s) if s.success()) {
            eprintln!("skipped: mkswap not found");
            return;
        }
        let dev = img.to_str().unwrap();
        assert_eq!(
            super::super::discover::probe_type_expecting(&img, "swap").as_deref(),
            Some("swap")
        );
        let e = swapon(dev, "pri=1").unwrap_err();
        let msg = format!("{e}");
        assert!(msg.contains(dev) && msg.contains("(pri=1)"), "{msg}");
        assert!(msg.contains("refused this swap area"), "{msg}");
    }

    #[test]
    fn swap_options_map_to_swapon_flags_as_swapon8_sets_them() {
        assert_eq!(swap_flags("").unwrap(), 0);
        assert_eq!(swap_flags("pri=-1").unwrap(), 0);
        assert_eq!(swap_flags("pri=0").unwrap(), 0x8000);
        assert_eq!(swap_flags("pri=5,discard").unwrap(), 0x8000 | 5 | 0x10000);
        assert_eq!(swap_flags("discard=once").unwrap(), 0x30000);
        assert_eq!(
            swap_flags("pri=32767,discard=pages").unwrap(),
            0xffff | 0x50000
        );
        for bad in ["pri=32768", "pri=-2", "pri=x", "discard=all", "nofail"] {
            let e = swap_flags(bad).unwrap_err();
            assert!(format!("{e}").contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn options_split_into_flags_and_data() {
        use nix::mount::MsFlags as F;
        let (f, d) = split_options("defaults,noatime,nodev,umask=0077,size=200M");
        assert_eq!(f, F::MS_NOATIME | F::MS_NODEV);
        assert_eq!(d, "umask=0077,size=200M");
        let (f, d) = split_options("");
        assert!(f.is_empty() && d.is_empty());
    }

    /// A real ext4 superblock (mkfs.ext4 on a file), then the flags that must send it to e2fsck.
    #[test]
    fn ext_superblock_clean_only_when_e2fsck_would_skip() {
        let Ok(mkfs) = which_mkfs() else {
            eprintln!("SKIP ext_superblock_clean_only_when_e2fsck_would_skip: no mkfs.ext4");
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let ok = std::process::Command::new(mkfs)
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(ext_is_clean(&img, now).is_some(), "a fresh ext4 is clean");
        let data = std::fs::read(&img).unwrap();
        let sb: [u8; 1024] = data[1024..2048].try_into().unwrap();
        assert!(ext_superblock_clean(&sb, now).is_some());
        let with = |f: &dyn Fn(&mut [u8; 1024])| {
            let mut b = sb;
            f(&mut b);
            ext_superblock_clean(&b, now)
        };
        // not cleanly unmounted; errors recorded
        assert!(with(&|b| b[0x3A] = 0).is_none());
        assert!(with(&|b| b[0x3A] = 3).is_none());
        // a journal to replay (needs_recovery)
        assert!(with(&|b| b[0x60] |= 0x4).is_none());
        // an external journal device
        assert!(with(&|b| b[0x60] |= 0x8).is_none());
        // orphans being processed (s_state bit 4), no other bit
        assert!(with(&|b| b[0x3A] = 1 | 4).is_none());
        // orphan inodes
        assert!(with(&|b| b[0xE8] = 12).is_none());
        // mount count reached
        assert!(with(&|b| {
            b[0x34..0x36].copy_from_slice(&20u16.to_le_bytes());
            b[0x36..0x38].copy_from_slice(&20u16.to_le_bytes());
        })
        .is_none());
        // check interval passed (lastcheck 0, interval 1 s)
        assert!(with(&|b| {
            b[0x40..0x44].copy_from_slice(&0u32.to_le_bytes());
            b[0x44..0x48].copy_from_slice(&1u32.to_le_bytes());
        })
        .is_none());
        // last write far in the future (a clock e2fsck would correct)
        assert!(with(&|b| b[0x30..0x34].copy_from_slice(&u32::MAX.to_le_bytes())).is_none());
        // not ext at all
        assert!(with(&|b| b[0x38] = 0).is_none());
        assert!(ext_is_clean(Path::new("/nonexistent-dev"), now).is_none());
    }

    fn which_mkfs() -> Result<&'static str, ()> {
        ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or(())
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
