//! Atomic file writes (temp file in the target directory, mode, fsync, rename, fsync dir).

use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Join an absolute path under `root` (`/` → as is). `root=/sysroot`, `/etc/x` → `/sysroot/etc/x`.
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    root.join(rel)
}

/// fsync a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync directory {}", dir.display()))
}

/// Write `data` to `path` atomically with `mode`; optional `owner` (uid, gid) set before the data
/// is written. The temp file lives in the same directory and is removed on failure.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.provision-tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {:o} {}", mode, tmp.display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                .with_context(|| format!("chown {uid}:{gid} {}", tmp.display()))?;
        }
        f.write_all(data)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_with_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        fs::write(&p, b"old").unwrap();
        atomic_write(&p, b"new", 0o600, None).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        let e = atomic_write(&d.path().join("missing/k"), b"x", 0o600, None).unwrap_err();
        assert!(format!("{e:#}").contains("missing"));
    }

    #[test]
    fn under_root_joins() {
        assert_eq!(
            under_root(Path::new("/"), Path::new("/etc/x")),
            PathBuf::from("/etc/x")
        );
        assert_eq!(
            under_root(Path::new("/sysroot"), Path::new("/etc/x")),
            PathBuf::from("/sysroot/etc/x")
        );
    }
}
