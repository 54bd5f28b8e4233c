//! Generations on ramfs, agenix-style: `/run/agenix.d/<N>/` holds one generation of decrypted
//! secrets; `/run/agenix` is a symlink to the live one, switched by renaming a new symlink over
//! it (atomic: a reader sees the old generation or the new one, never a mix or nothing).
//!
//! Paths given to these functions are host paths (already under `--root`); symlink *targets*
//! are target-system paths (what the booted system will resolve).

use anyhow::{bail, Context as _, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the mount point and of each generation directory (as agenix).
pub const DIR_MODE: u32 = 0o751;
/// ramfs `f_type` (linux/magic.h).
pub const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// tmpfs `f_type`.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The file-system type mounted exactly at `dir` (the topmost mount there), if any.
pub fn mounted_type(dir: &Path) -> Result<Option<String>> {
    let text =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(crate::disks::discover::parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|m| Path::new(&m.target) == real)
        .map(|m| m.fs_type))
}

/// What [`ensure_ramfs`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountAction {
    Mounted,
    AlreadyMounted(String),
}

/// Make sure `dir` (host path) is a ramfs mount: mount one (`nodev,nosuid,mode=0751`) unless
/// ramfs is already there. tmpfs is accepted with a warning (RAM, but may be swapped out); any
/// other file system there is refused: secrets must not land on a disk.
pub fn ensure_ramfs(dir: &Path) -> Result<MountAction> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    match mounted_type(dir)? {
        Some(t) if t == "ramfs" => return Ok(MountAction::AlreadyMounted(t)),
        Some(t) if t == "tmpfs" => {
            tracing::warn!(
                stage = "secrets",
                "{} is tmpfs, not ramfs: secrets may be swapped out",
                dir.display()
            );
            return Ok(MountAction::AlreadyMounted(t));
        }
        Some(t) => bail!(
            "{} is already a mount point of type {t}; refusing to put secrets there (expected ramfs)",
            dir.display()
        ),
        None => {}
    }
    use nix::mount::{mount, MsFlags};
    mount(
        Some("ramfs"),
        dir,
        Some("ramfs"),
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        Some("mode=0751"),
    )
    .with_context(|| {
        format!(
            "mounting ramfs on {} (nodev,nosuid,mode=0751)",
            dir.display()
        )
    })?;
    Ok(MountAction::Mounted)
}

/// The file system `dir` lives on is ramfs or tmpfs.
pub fn on_ram(dir: &Path) -> Result<bool> {
    let st = rustix::fs::statfs(dir).with_context(|| format!("statfs {}", dir.display()))?;
    let t = st.f_type as u64;
    Ok(t == RAMFS_MAGIC || t == TMPFS_MAGIC)
}

/// The generation `link` (host path) points at, if it is a symlink to `<mount_point>/<N>`
/// (`mount_point` as a target-system path).
pub fn current_generation(link: &Path, mount_point: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    if target.parent()? != mount_point {
        return None;
    }
    generation_number(target.file_name()?.to_str()?)
}

fn generation_number(s: &str) -> Option<u64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// The generation directories (all-digit names) under `mount_host`, sorted.
pub fn generations(mount_host: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(mount_host)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| generation_number(e.file_name().to_str()?))
        .collect();
    v.sort_unstable();
    v
}

/// Create a directory with exactly `mode` (not subject to the umask), root-owned.
pub fn make_dir(dir: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", dir.display()))
}

fn tmp_sibling(p: &Path) -> Result<PathBuf> {
    let name = p
        .file_name()
        .with_context(|| format!("{}: not a file path", p.display()))?
        .to_string_lossy();
    Ok(p.with_file_name(format!(".{name}.provision-tmp-{}", std::process::id())))
}

/// Point `link` (host path) at `target` by renaming a fresh symlink over it. When `link` is an
/// empty real directory and `replace_dir` is set, the two are exchanged atomically
/// (`renameat2(RENAME_EXCHANGE)`) and the old directory is then removed (`rmdir`: a
/// non-empty one is an error and kept); without `replace_dir` a directory there is an error
/// (never `ln -sf` into it).
pub fn swap_symlink(link: &Path, target: &Path, replace_dir: bool) -> Result<()> {
    if let Some(parent) = link.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let tmp = tmp_sibling(link)?;
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("creating symlink {} -> {}", tmp.display(), target.display()))?;
    let is_dir = fs::symlink_metadata(link)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let res = if is_dir {
        if !replace_dir {
            let _ = fs::remove_file(&tmp);
            bail!(
                "{} is a directory; refusing to replace it with a symlink",
                link.display()
            );
        }
        exchange_dir(&tmp, link)
    } else {
        fs::rename(&tmp, link)
            .with_context(|| format!("renaming {} over {}", tmp.display(), link.display()))
    };
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

fn exchange_dir(tmp_link: &Path, dir: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, tmp_link, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => {
            // `tmp_link` is now the old directory, which the stage checked is empty:
            // remove_dir, so one filled since is left aside, never deleted with its content.
            fs::remove_dir(tmp_link).with_context(|| {
                format!(
                    "removing the old directory {} (moved from {})",
                    tmp_link.display(),
                    dir.display()
                )
            })
        }
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            // No RENAME_EXCHANGE on this file system: remove, then rename (a short gap).
            fs::remove_dir(dir).with_context(|| format!("removing directory {}", dir.display()))?;
            fs::rename(tmp_link, dir)
                .with_context(|| format!("renaming {} over {}", tmp_link.display(), dir.display()))
        }
        Err(e) => Err(e)
            .with_context(|| format!("exchanging {} with {}", tmp_link.display(), dir.display())),
    }
}

/// Remove every generation directory under `mount_host` not in `keep`. Returns those removed.
pub fn prune(mount_host: &Path, keep: &[u64]) -> Result<Vec<u64>> {
    let mut removed = Vec::new();
    for g in generations(mount_host) {
        if keep.contains(&g) {
            continue;
        }
        let d = mount_host.join(g.to_string());
        fs::remove_dir_all(&d)
            .with_context(|| format!("removing old generation {}", d.display()))?;
        removed.push(g);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_and_links() {
        let d = tempfile::tempdir().unwrap();
        let mp = d.path().join("agenix.d");
        fs::create_dir(&mp).unwrap();
        for n in ["1", "2", "10", "x", "2a"] {
            fs::create_dir(mp.join(n)).unwrap();
        }
        assert_eq!(generations(&mp), vec![1, 2, 10]);
        let link = d.path().join("agenix");
        assert_eq!(current_generation(&link, Path::new("/run/agenix.d")), None);
        swap_symlink(&link, Path::new("/run/agenix.d/2"), false).unwrap();
        assert_eq!(
            current_generation(&link, Path::new("/run/agenix.d")),
            Some(2)
        );
        assert_eq!(current_generation(&link, Path::new("/elsewhere")), None);
        swap_symlink(&link, Path::new("/run/agenix.d/10"), false).unwrap();
        assert_eq!(
            current_generation(&link, Path::new("/run/agenix.d")),
            Some(10)
        );
        assert_eq!(prune(&mp, &[2, 10]).unwrap(), vec![1]);
        assert!(mp.join("x").exists() && mp.join("2a").exists());
        assert_eq!(generations(&mp), vec![2, 10]);
        // Only the link remains in the parent (no temp files).
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn real_directory_is_replaced_only_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("agenix");
        fs::create_dir(&link).unwrap();
        fs::write(link.join("stale"), b"old").unwrap();
        let e = swap_symlink(&link, Path::new("/run/agenix.d/1"), false).unwrap_err();
        assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
        assert!(link.join("stale").exists());
        // A directory with something in it is never removed with what it holds.
        assert!(swap_symlink(&link, Path::new("/run/agenix.d/1"), true).is_err());
        let kept: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().path().join("stale"))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(kept.len(), 1, "stale file lost");
        for e in fs::read_dir(d.path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_symlink() {
                fs::remove_file(&p).unwrap();
            } else {
                fs::remove_dir_all(&p).unwrap();
            }
        }
        fs::create_dir(&link).unwrap();
        swap_symlink(&link, Path::new("/run/agenix.d/1"), true).unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from("/run/agenix.d/1")
        );
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "old directory removed"
        );
    }
}
