//! Checks on the configured paths of both sides of the secrets stage, from the config alone
//! (made when the config is loaded, so every command sees them): each path absolute with no
//! `.` or `..` component, and the agenix and sops-nix sides apart — neither's link, mount
//! point or secret paths inside the other's, or each would prune and replace the other's
//! generations.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::sops::config::SopsConfig;
use super::SecretsConfig;

/// `p` as written is absolute with no `.` or `..` component (checked on the bytes:
/// `Path::components` hides an inner `.`).
pub fn check_plain(field: &str, p: &Path) -> Result<(), String> {
    let b = p.as_os_str().as_bytes();
    if b.first() != Some(&b'/') {
        return Err(format!("{field} {}: must be an absolute path", p.display()));
    }
    if b.split(|c| *c == b'/').any(|c| c == b"." || c == b"..") {
        return Err(format!(
            "{field} {}: '.' and '..' components are not allowed",
            p.display()
        ));
    }
    Ok(())
}

/// Every problem with the configured paths of `agenix` (`secrets:`) and `sops` (`sops:`).
pub fn check(agenix: Option<&SecretsConfig>, sops: Option<&SopsConfig>) -> Vec<String> {
    let mut dirs_a: Vec<(String, &Path)> = Vec::new();
    let mut paths_a: Vec<(String, &Path)> = Vec::new();
    if let Some(a) = agenix {
        dirs_a.push(("secrets.secrets_dir".into(), &a.secrets_dir));
        dirs_a.push(("secrets.secrets_mount_point".into(), &a.secrets_mount_point));
        for s in &a.secrets {
            if let Some(p) = &s.path {
                paths_a.push((format!("secrets.secrets[{:?}].path", s.name), p));
            }
        }
    }
    let mut dirs_s: Vec<(String, &Path)> = Vec::new();
    let mut paths_s: Vec<(String, &Path)> = Vec::new();
    if let Some(s) = sops {
        dirs_s.push(("sops.secretsDir".into(), &s.secrets_dir));
        dirs_s.push(("sops.secretsMountPoint".into(), &s.secrets_mount_point));
        for (attr, x) in &s.secrets {
            if let Some(p) = &x.path {
                paths_s.push((format!("sops.secrets.{attr:?}.path"), p));
            }
        }
        for (attr, t) in &s.templates {
            if let Some(p) = &t.path {
                paths_s.push((format!("sops.templates.{attr:?}.path"), p));
            }
        }
    }
    let mut problems: Vec<String> = dirs_a
        .iter()
        .chain(&paths_a)
        .chain(&dirs_s)
        .chain(&paths_s)
        .filter_map(|(f, p)| check_plain(f, p).err())
        .collect();
    if !problems.is_empty() {
        return problems;
    }
    let clash = |(f1, p1): &(String, &Path), (f2, p2): &(String, &Path)| {
        format!(
            "{f1} {} and {f2} {} overlap: the agenix and sops-nix sides must each have their \
             own link, mount point and paths",
            p1.display(),
            p2.display()
        )
    };
    for a in &dirs_a {
        for s in &dirs_s {
            if a.1.starts_with(s.1) || s.1.starts_with(a.1) {
                problems.push(clash(a, s));
            }
        }
        for s in &paths_s {
            if s.1.starts_with(a.1) {
                problems.push(clash(s, a));
            }
        }
    }
    for s in &dirs_s {
        for a in &paths_a {
            if a.1.starts_with(s.1) {
                problems.push(clash(a, s));
            }
        }
    }
    for a in &paths_a {
        for s in &paths_s {
            if a.1 == s.1 {
                problems.push(clash(a, s));
            }
        }
    }
    problems
}
