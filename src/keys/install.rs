//! Installing validated keys: all or nothing, as far as the file system lets us.
//!
//! Before the first write, every target's current state is saved (content, mode, owner, or
//! "missing", or a symlink) and the parent directories are made (`.ssh` with mode 0700, others
//! 0755). Each file is then written atomically (temp file in the target directory, mode, owner,
//! fsync, rename, fsync dir). If a write fails, the files already replaced are put back and the
//! new ones removed, and the error says what was restored and what could not be.

use anyhow::{anyhow, Context as _, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::system::fsutil;

/// One file to put in place.
pub struct FileWrite {
    /// Where it goes on this machine (already under `--root`).
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Same content, mode (and owner) were already there: not touched.
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written => "written",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// A target's state before we touched it.
enum Prior {
    Missing,
    File {
        data: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink(PathBuf),
}

/// The signature of the write step (the real one is [`fsutil::atomic_write`]; tests inject
/// failures through it).
pub type Writer<'a> = dyn FnMut(&Path, &[u8], u32, Option<(u32, u32)>) -> Result<()> + 'a;

/// Create `dir` and its missing parents: components named `.ssh` get 0700, others 0755.
pub fn make_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        make_dirs(parent)?;
    }
    let mode = if dir.file_name().is_some_and(|n| n == ".ssh") {
        0o700
    } else {
        0o755
    };
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away; set exactly what we mean.
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .with_context(|| format!("chmod {mode:o} {}", dir.display()))?;
            tracing::info!(
                stage = "keys",
                "created directory {} ({mode:04o})",
                dir.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating directory {}", dir.display())),
    }
}

fn snapshot(path: &Path) -> Result<Prior> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Prior::Missing),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if md.file_type().is_symlink() {
        let to = fs::read_link(path).with_context(|| format!("reading link {}", path.display()))?;
        return Ok(Prior::Symlink(to));
    }
    if !md.is_file() {
        return Err(anyhow!(
            "{}: exists and is not a regular file; not replacing it",
            path.display()
        ));
    }
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Prior::File {
        data,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
    })
}

fn restore(path: &Path, prior: &Prior, writer: &mut Writer<'_>) -> Result<()> {
    match prior {
        Prior::Missing => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        },
        Prior::File {
            data,
            mode,
            uid,
            gid,
        } => writer(path, data, *mode, Some((*uid, *gid))),
        Prior::Symlink(to) => {
            let tmp = path.with_file_name(format!(
                ".{}.provision-restore",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(to, &tmp)
                .with_context(|| format!("creating symlink {}", tmp.display()))?;
            fs::rename(&tmp, path).with_context(|| format!("restoring {}", path.display()))
        }
    }
}

/// Install `files` with [`fsutil::atomic_write`], owned by `owner` when given.
pub fn install(files: &[FileWrite], owner: Option<(u32, u32)>) -> Result<Vec<Outcome>> {
    install_with(files, owner, &mut fsutil::atomic_write)
}

/// [`install`] with the write step injected.
pub fn install_with(
    files: &[FileWrite],
    owner: Option<(u32, u32)>,
    writer: &mut Writer<'_>,
) -> Result<Vec<Outcome>> {
    // Everything that can be checked before the first write is checked first.
    for f in files {
        if let Some(dir) = f.path.parent() {
            make_dirs(dir)?;
        }
    }
    let priors: Vec<Prior> = files
        .iter()
        .map(|f| snapshot(&f.path))
        .collect::<Result<_>>()?;
    let plan: Vec<Outcome> = files
        .iter()
        .zip(&priors)
        .map(|(f, p)| match p {
            Prior::File {
                data,
                mode,
                uid,
                gid,
            } if *data == f.data
                && *mode == f.mode
                && owner.map_or(true, |(u, g)| u == *uid && g == *gid) =>
            {
                Outcome::Unchanged
            }
            _ => Outcome::Written,
        })
        .collect();

    for (i, f) in files.iter().enumerate() {
        if plan[i] == Outcome::Unchanged {
            continue;
        }
        if let Err(e) = writer(&f.path, &f.data, f.mode, owner) {
            // Put back what we replaced, including this one (its rename may have happened
            // before a later step such as the directory fsync failed).
            let mut restored = Vec::new();
            let mut failed = Vec::new();
            for j in (0..=i).rev() {
                if plan[j] == Outcome::Unchanged {
                    continue;
                }
                let p = &files[j].path;
                match restore(p, &priors[j], writer) {
                    Ok(()) if j < i => restored.push(p.display().to_string()),
                    Ok(()) => {}
                    Err(re) => failed.push(format!("{}: {re:#}", p.display())),
                }
            }
            let mut msg = format!("installing {} failed", f.path.display());
            if !restored.is_empty() {
                msg += &format!("; restored {}", restored.join(", "));
            }
            if !failed.is_empty() {
                msg += &format!("; COULD NOT RESTORE {}", failed.join("; "));
            }
            return Err(e.context(msg));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(path: PathBuf, data: &[u8], mode: u32) -> FileWrite {
        FileWrite {
            path,
            data: data.to_vec(),
            mode,
        }
    }

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_creates_ssh_dir_and_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("root/.ssh/id_ed25519");
        let files = vec![
            fw(key.clone(), b"k1", 0o600),
            fw(d.path().join("root/.ssh/id_ed25519.pub"), b"p1", 0o644),
        ];
        assert_eq!(
            install(&files, None).unwrap(),
            vec![Outcome::Written, Outcome::Written]
        );
        assert_eq!(fs::read(&key).unwrap(), b"k1");
        assert_eq!(mode_of(&key), 0o600);
        assert_eq!(mode_of(&d.path().join("root/.ssh")), 0o700);
        assert_eq!(mode_of(&d.path().join("root")), 0o755);
        assert_eq!(
            install(&files, None).unwrap(),
            vec![Outcome::Unchanged, Outcome::Unchanged]
        );
    }

    #[test]
    fn failure_restores_replaced_and_removes_new() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        let c = d.path().join("c");
        fs::write(&a, b"old-a").unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("elsewhere", &c).unwrap();
        let files = vec![
            fw(a.clone(), b"new-a", 0o600),
            fw(b.clone(), b"new-b", 0o600),
            fw(c.clone(), b"new-c", 0o600),
            fw(d.path().join("d"), b"new-d", 0o600),
        ];
        // The 4th write fails (after a, b and c were replaced/created).
        let mut calls = 0;
        let mut writer = |p: &Path, data: &[u8], mode: u32, o: Option<(u32, u32)>| {
            calls += 1;
            if calls == 4 {
                anyhow::bail!("injected failure")
            }
            fsutil::atomic_write(p, data, mode, o)
        };
        let e = install_with(&files, None, &mut writer).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("injected failure"), "{msg}");
        assert!(msg.contains("restored"), "{msg}");
        assert_eq!(fs::read(&a).unwrap(), b"old-a");
        assert_eq!(mode_of(&a), 0o640);
        assert!(!b.exists());
        assert_eq!(fs::read_link(&c).unwrap(), PathBuf::from("elsewhere"));
        assert!(!d.path().join("d").exists());
        // a and c only: no temp files left
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn refuses_directory_target_before_writing() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("dir")).unwrap();
        let files = vec![
            fw(d.path().join("a"), b"x", 0o600),
            fw(d.path().join("dir"), b"y", 0o600),
        ];
        let e = install(&files, None).unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"));
        assert!(!d.path().join("a").exists());
    }
}
