//! mount(2) of a planned mount: idempotent, the device's type checked first; the options were
//! split into flags and data when planning ([`MountOptions`]).

use anyhow::{Context as _, Result};

use super::{expect_type, maj_min, Probes};
use crate::context::Context;
use crate::disks::discover::parse_mountinfo;
use crate::disks::step::{MountOptions, Outcome};
use crate::exit::{coded, Code};

/// Mount `dev` on `target` (under the target root) unless it is mounted there already; another
/// device mounted there is an error naming both.
pub(super) fn mount(
    ctx: &Context,
    probes: &Probes,
    dev: &str,
    target: &str,
    fstype: &str,
    options: &MountOptions,
) -> Result<Outcome> {
    let target = ctx.path(target);
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
            return Ok(Outcome::AlreadyDone("already mounted".into()));
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
    let data = &options.data;
    nix::mount::mount(
        Some(dev),
        &target,
        Some(fstype),
        options.flags,
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
                options.text
            ),
        )
    })?;
    Ok(Outcome::Changed(None))
}
