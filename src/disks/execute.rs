//! The executor: carries out a plan's actions in order, nothing else. Every external command goes
//! through the context's [`Runner`](crate::system::Runner); mounts use mount(2).

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::time::{Duration, Instant};

use super::discover::parse_mountinfo;
use super::plan::{Action, Op, Plan};
use crate::context::Context;
use crate::exit::{coded, Code};
use crate::layout::Layout;
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

/// Carry out every action; returns the descriptions of what was done (or found done).
pub fn execute(ctx: &Context, _layout: &Layout, plan: &Plan) -> Result<Vec<String>> {
    let n = plan.actions.len();
    let mut done = Vec::with_capacity(n);
    for (i, a) in plan.actions.iter().enumerate() {
        notify_status(&format!("{} ({}/{n})", a.description, i + 1));
        failpoint(i + 1, false);
        let t0 = Instant::now();
        let note =
            run_action(ctx, a).with_context(|| format!("step {}/{n}: {}", i + 1, a.description))?;
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
        done.push(match note {
            Some(x) => format!("{} ({x})", a.description),
            None => a.description.clone(),
        });
    }
    Ok(done)
}

fn run_action(ctx: &Context, a: &Action) -> Result<Option<String>> {
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
            expect_type(dev, a.fs_type.as_deref().unwrap_or("ext4"))?;
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
        Op::Mount => mount(ctx, a),
        Op::Swapon => {
            let dev = a.device.as_deref().unwrap_or_default();
            if swap_active(dev) {
                return Ok(Some("already on".into()));
            }
            expect_type(dev, "swap")?;
            ctx.runner
                .check(a.argv.as_deref().unwrap_or_default(), None)?;
            Ok(None)
        }
        Op::EnsureDir => ensure_dir(ctx, a),
        _ => {
            let argv = a.argv.as_deref().context("action without a command")?;
            ctx.runner
                .check(argv, a.stdin.as_deref().map(str::as_bytes))?;
            Ok(None)
        }
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
fn expect_type(dev: &str, want: &str) -> Result<()> {
    let found = super::discover::probe_type(Path::new(dev));
    let same = match (want, found.as_deref()) {
        (w, Some(f)) if w == f => true,
        ("vfat", Some("vfat" | "msdos")) => true,
        _ => false,
    };
    if same {
        return Ok(());
    }
    Err(coded(
        Code::Missing,
        format!(
            "{dev} has {} where the layout expects {want}: nothing was formatted — if a provisioning run was interrupted, boot again with the same provision_disks flag or token",
            found.map(|f| format!("a {f} signature")).unwrap_or_else(|| "no filesystem".into())
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

fn mount(ctx: &Context, a: &Action) -> Result<Option<String>> {
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
        expect_type(dev, fstype)?;
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
    fn options_split_into_flags_and_data() {
        use nix::mount::MsFlags as F;
        let (f, d) = split_options("defaults,noatime,nodev,umask=0077,size=200M");
        assert_eq!(f, F::MS_NOATIME | F::MS_NODEV);
        assert_eq!(d, "umask=0077,size=200M");
        let (f, d) = split_options("");
        assert!(f.is_empty() && d.is_empty());
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
}
