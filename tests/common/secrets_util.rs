//! Helpers shared by the secrets tests (included with `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use provision::context::Context;
use sha2::Digest;

/// A context rooted at `root` (a tempdir), config files relative to `config_dir`.
pub fn ctx(root: &Path, config_dir: &Path, dry_run: bool) -> Context {
    Context::for_root(root, config_dir, "", dry_run)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A python3 that has `cryptography` (Debian's, or the one on PATH), with the `age`,
/// `age-keygen` and `ssh-keygen` that tests/sops_encoder.py calls: `Err(reason)` when one is
/// missing (the caller skips, saying so; tools/install-deps installs them).
pub fn sops_encoder_tools() -> Result<String, String> {
    let py = ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import cryptography.hazmat.primitives.ciphers.aead"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or("no python3 with the cryptography package (python3-cryptography)")?;
    for t in ["age", "age-keygen", "ssh-keygen"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(format!("no {t} on PATH"));
        }
    }
    Ok(py.to_string())
}

/// Run tests/sops_encoder.py with `args` through `py`: its stdout and stderr. Panics, with
/// them, when it fails.
pub fn sops_encoder(py: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sops_encoder.py"))
        .args(args)
        .output()
        .expect("running the encoder");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sops_encoder.py {args:?}: {text}");
    text
}

/// Whether this process may mount a ramfs: `Err(reason)` when not (the caller skips, saying so).
pub fn mount_possible() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root: cannot mount ramfs".into());
    }
    let d = tempfile::tempdir().map_err(|e| e.to_string())?;
    nix::mount::mount(
        Some("ramfs"),
        d.path(),
        Some("ramfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mounting a test ramfs failed: {e}"))?;
    let _ = nix::mount::umount2(d.path(), nix::mount::MntFlags::MNT_DETACH);
    Ok(())
}

/// Unmounts `<root>/run/agenix.d` (and any other listed dirs) when dropped.
pub struct Unmount(pub Vec<PathBuf>);

impl Drop for Unmount {
    fn drop(&mut self) {
        for d in &self.0 {
            while nix::mount::umount2(d, nix::mount::MntFlags::MNT_DETACH).is_ok() {}
        }
    }
}

/// Follow target-system symlinks (absolute targets) inside `root`, like the booted system would.
pub fn resolve(root: &Path, target_path: &Path) -> PathBuf {
    let mut p = target_path.to_path_buf();
    for _ in 0..16 {
        let host = root.join(p.strip_prefix("/").unwrap_or(&p));
        match std::fs::read_link(&host) {
            Ok(t) if t.is_absolute() => p = t,
            Ok(t) => p = p.parent().unwrap_or(Path::new("/")).join(t),
            Err(_) => {
                // Resolve links in parent directories too (e.g. /run/agenix/<name>).
                let mut acc = PathBuf::from("/");
                let comps: Vec<_> = p.components().skip(1).collect();
                let mut changed = false;
                for (i, c) in comps.iter().enumerate() {
                    acc.push(c);
                    let h = root.join(acc.strip_prefix("/").unwrap());
                    if i + 1 < comps.len() {
                        if let Ok(t) = std::fs::read_link(&h) {
                            let mut np = if t.is_absolute() {
                                t
                            } else {
                                acc.parent().unwrap().join(t)
                            };
                            for rest in &comps[i + 1..] {
                                np.push(rest);
                            }
                            p = np;
                            changed = true;
                            break;
                        }
                    }
                }
                if !changed {
                    return host;
                }
            }
        }
    }
    root.join(p.strip_prefix("/").unwrap_or(&p))
}

/// A minimal passwd/group for a test root.
pub fn write_users(root: &Path) {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nsvc:x:1234:2345:service:/var/lib/svc:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\nsvcgrp:x:2345:\nkeys:x:96:svc\n",
    )
    .unwrap();
}
