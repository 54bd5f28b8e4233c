//! What is already on disk under the root, checked before the secrets stage writes anything:
//! the live-generation link, the ramfs mount point and every per-secret path. Paths are
//! resolved inside `--root` as the booted system will resolve them (an absolute symlink
//! `R/var/run -> /run` leads to `R/run`, never to the host's `/run`; `..` stops at the root),
//! the component walk `openat2(RESOLVE_IN_ROOT)` does in the kernel.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::generation;

/// Symlinks followed at most while resolving one path (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// The host path of the target-system path `p` (absolute) under `root`: every directory on
/// the way resolved inside `root`; the last component followed too when `follow_last`.
/// Components that do not exist yet are kept as written. Errors: a symlink loop, or a
/// component on the way that exists but is not a directory.
pub fn resolve_in_root(root: &Path, p: &Path, follow_last: bool) -> Result<PathBuf, String> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, p);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let last = todo.is_empty();
        let host = host_of(root, &done).join(&c);
        if missing || (last && !follow_last) {
            done.push(c);
            continue;
        }
        match fs::symlink_metadata(&host) {
            Err(_) => {
                missing = true;
                done.push(c);
            }
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!(
                        "{}: too many levels of symbolic links under {}",
                        p.display(),
                        root.display()
                    ));
                }
                let t = fs::read_link(&host).map_err(|e| format!("{}: {e}", host.display()))?;
                if t.is_absolute() {
                    done.clear();
                }
                push_components(&mut todo, &t);
            }
            Ok(m) if !last && !m.is_dir() => {
                return Err(format!(
                    "{}: {} is not a directory",
                    p.display(),
                    host.display()
                ))
            }
            Ok(_) => done.push(c),
        }
    }
    Ok(host_of(root, &done))
}

/// `p`'s components pushed so that the first is popped first (`.` dropped, `..` kept).
fn push_components(todo: &mut Vec<OsString>, p: &Path) {
    let comps: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    todo.extend(comps.into_iter().rev());
}

fn host_of(root: &Path, comps: &[OsString]) -> PathBuf {
    let mut h = root.to_path_buf();
    h.extend(comps);
    h
}

/// What a path is, for messages.
fn kind(t: fs::FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symlink"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a character device"
    }
}

/// The first entry of a directory, if any (so the message can name one).
fn first_entry(dir: &Path) -> Result<Option<OsString>, String> {
    let mut rd = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    Ok(rd.next().and_then(|e| e.ok()).map(|e| e.file_name()))
}

/// The live-generation link `dir` (config key `field`) may be replaced: it is absent, a
/// symlink to a generation `<mount_point>/<N>`, or an empty directory (sops-nix refuses a
/// non-empty one too). Anything else would be swapped out and removed with what it holds.
pub fn check_live_link(
    root: &Path,
    field: &str,
    dir: &Path,
    mount_point: &Path,
) -> Result<(), String> {
    let host = resolve_in_root(root, dir, false).map_err(|e| format!("{field} {e}"))?;
    let refuse = |what: String| {
        Err(format!(
            "{field} {} is {what}; refusing to replace it with the link to the live generation \
             (it must be absent, our symlink into {}, or an empty directory)",
            dir.display(),
            mount_point.display()
        ))
    };
    let m = match fs::symlink_metadata(&host) {
        Err(_) => return Ok(()),
        Ok(m) => m,
    };
    if m.file_type().is_symlink() {
        return match generation::current_generation(&host, mount_point) {
            Some(_) => Ok(()),
            None => {
                let t = fs::read_link(&host).unwrap_or_default();
                refuse(format!("a symlink to {}, not to a generation", t.display()))
            }
        };
    }
    if m.is_dir() {
        return match first_entry(&host)? {
            None => Ok(()),
            Some(e) => refuse(format!("a non-empty directory (holding {e:?})")),
        };
    }
    refuse(kind(m.file_type()).to_string())
}

/// The ramfs mount point `mount_point` (config key `field`) may be used: absent, an empty
/// directory, or a directory with ramfs (or tmpfs) already mounted on it. A populated
/// directory would be hidden under the new ramfs.
pub fn check_mount_point(root: &Path, field: &str, mount_point: &Path) -> Result<(), String> {
    let host = resolve_in_root(root, mount_point, true).map_err(|e| format!("{field} {e}"))?;
    let m = match fs::symlink_metadata(&host) {
        Err(_) => return Ok(()),
        Ok(m) => m,
    };
    let at = format!("{field} {}", mount_point.display());
    if !m.is_dir() {
        return Err(format!("{at} is {}, not a directory", kind(m.file_type())));
    }
    match generation::mounted_type(&host).map_err(|e| format!("{e:#}"))? {
        Some(t) if t == "ramfs" || t == "tmpfs" => Ok(()),
        Some(t) => Err(format!(
            "{at} is a mount point of type {t}; refusing to put secrets there (expected ramfs)"
        )),
        None => match first_entry(&host)? {
            None => Ok(()),
            Some(e) => Err(format!(
                "{at} is a non-empty directory (holding {e:?}) that is not a ramfs; refusing to \
                 mount a ramfs over it (that would hide it): empty it or choose another {field}"
            )),
        },
    }
}

/// What a per-secret `path` holds now (its host path resolved inside the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// Nothing there.
    Absent,
    /// A symlink (replaced).
    Symlink,
    /// A regular file (replaced by the symlink, as sops-nix does).
    File,
}

/// A per-secret `path` can be made: its directories resolve inside the root and it is
/// absent, a symlink or a regular file — not a directory or anything else. Returns the host
/// path and what is there.
pub fn check_link_target(root: &Path, path: &Path) -> Result<(PathBuf, LinkTarget), String> {
    let host = resolve_in_root(root, path, false).map_err(|e| format!("path {e}"))?;
    let found = match fs::symlink_metadata(&host) {
        Err(_) => LinkTarget::Absent,
        Ok(m) if m.file_type().is_symlink() => LinkTarget::Symlink,
        Ok(m) if m.is_file() => LinkTarget::File,
        Ok(m) => {
            return Err(format!(
                "path {} is {}; refusing to replace it with a symlink",
                path.display(),
                kind(m.file_type())
            ))
        }
    };
    Ok((host, found))
}

/// The default of `max_file_size` / `maxFileSize`: the largest `.age`, sops or template file
/// read, in bytes (16 MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 20;

/// serde's default for `max_file_size` / `maxFileSize` on both sides: [`DEFAULT_MAX_FILE_SIZE`].
pub fn default_max_file_size() -> u64 {
    DEFAULT_MAX_FILE_SIZE
}

/// Read `path` (`what` names it) whole: it must be a regular file (after following
/// symlinks) of at most `cap` bytes. Opened with `O_NONBLOCK`, so a FIFO is refused, not
/// waited on.
pub fn read_regular(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>, String> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_nonblock())
        .open(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let m = f
        .metadata()
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!(
            "{what} {} is {}, not a regular file",
            path.display(),
            kind(m.file_type())
        ));
    }
    if m.len() > cap {
        return Err(format!(
            "{what} {} is {} bytes, over the limit of {cap} bytes (max_file_size / maxFileSize)",
            path.display(),
            m.len()
        ));
    }
    let mut data = Vec::with_capacity(m.len() as usize);
    f.take(cap + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if data.len() as u64 > cap {
        return Err(format!(
            "{what} {} grew over the limit of {cap} bytes while being read",
            path.display()
        ));
    }
    Ok(data)
}

fn libc_nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let r = tempfile::tempdir().unwrap();
        let root = r.path();
        fs::create_dir_all(root.join("run")).unwrap();
        fs::create_dir_all(root.join("var")).unwrap();
        symlink("/run", root.join("var/run")).unwrap();
        symlink("/tmp/provision-escape-test", root.join("srv2")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        let p = |s: &str, f| resolve_in_root(root, Path::new(s), f).unwrap();
        assert_eq!(p("/var/run/x", false), root.join("run/x"));
        assert_eq!(
            p("/srv2/x", false),
            root.join("tmp/provision-escape-test/x")
        );
        assert_eq!(p("/up/etc/x", false), root.join("etc/x"));
        // The last component is followed only when asked.
        assert_eq!(p("/var/run", false), root.join("var/run"));
        assert_eq!(p("/var/run", true), root.join("run"));
        symlink("/loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, Path::new("/loop/x"), false)
            .unwrap_err()
            .contains("too many levels"));
        fs::write(root.join("file"), b"").unwrap();
        assert!(resolve_in_root(root, Path::new("/file/x"), false)
            .unwrap_err()
            .contains("not a directory"));
    }

    #[test]
    fn read_regular_refuses_fifos_and_big_files() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_regular(&fifo, "sops file", 100).unwrap_err();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        let f = d.path().join("f");
        fs::write(&f, [0u8; 101]).unwrap();
        assert!(read_regular(&f, "x", 100)
            .unwrap_err()
            .contains("over the limit"));
        assert_eq!(read_regular(&f, "x", 101).unwrap().len(), 101);
    }
}
