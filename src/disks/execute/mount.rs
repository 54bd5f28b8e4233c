//! mount(2) of a planned mount: options split into flags and data, idempotent, the device's
//! type checked first.

use anyhow::{Context as _, Result};

use super::{expect_type, maj_min, Probes};
use crate::context::Context;
use crate::disks::discover::parse_mountinfo;
use crate::disks::step::Action;
use crate::exit::{coded, Code};

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

pub(super) fn mount(ctx: &Context, a: &Action, probes: &Probes) -> Result<Option<String>> {
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
}
