//! Users and groups from the target system's `/etc/passwd` and `/etc/group`.
//!
//! The binary is static: no NSS, no `getpwnam`. We read the two files ourselves (under `--root`)
//! and resolve a name or a numeric id. A numeric id is taken as is (like `chown 1234`), even when
//! no entry carries it. `root` is uid/gid 0 even when the files are absent (the kernel's
//! superuser); every other name needs an entry, and an unknown name is an error naming the file.

use anyhow::Result;
use std::path::{Path, PathBuf};

use crate::exit::{coded, Code};
use crate::system::fsutil::under_root;

/// One `/etc/passwd` entry (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// One `/etc/group` entry (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

/// The user and group databases of a target system.
#[derive(Debug, Clone)]
pub struct Users {
    passwd_path: PathBuf,
    group_path: PathBuf,
    /// `Err(reason)` when the file could not be read (resolving a name then says why).
    users: Result<Vec<User>, String>,
    groups: Result<Vec<Group>, String>,
}

impl Users {
    /// Read `<root>/etc/passwd` and `<root>/etc/group`. A missing or unreadable file is not an
    /// error here: resolving a name through it is (numeric ids and `root` still work).
    pub fn load(root: &Path) -> Users {
        let passwd_path = under_root(root, Path::new("/etc/passwd"));
        let group_path = under_root(root, Path::new("/etc/group"));
        let users = std::fs::read_to_string(&passwd_path)
            .map(|t| parse_passwd(&t))
            .map_err(|e| e.to_string());
        let groups = std::fs::read_to_string(&group_path)
            .map(|t| parse_group(&t))
            .map_err(|e| e.to_string());
        Users {
            passwd_path,
            group_path,
            users,
            groups,
        }
    }

    /// Build from file contents (tests, or callers that already hold the text).
    pub fn from_text(passwd: &str, group: &str) -> Users {
        Users {
            passwd_path: PathBuf::from("/etc/passwd"),
            group_path: PathBuf::from("/etc/group"),
            users: Ok(parse_passwd(passwd)),
            groups: Ok(parse_group(group)),
        }
    }

    /// The passwd entry for a user name, if any.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.as_ref().ok()?.iter().find(|u| u.name == name)
    }

    /// The passwd entry carrying a uid, if any.
    pub fn user_by_uid(&self, uid: u32) -> Option<&User> {
        self.users.as_ref().ok()?.iter().find(|u| u.uid == uid)
    }

    /// Resolve a user name or numeric uid.
    pub fn uid(&self, spec: &str) -> Result<u32> {
        if let Some(id) = numeric(spec) {
            return Ok(id);
        }
        match &self.users {
            Ok(list) => list.iter().find(|u| u.name == spec).map(|u| u.uid),
            Err(_) if spec == "root" => Some(0),
            Err(e) => {
                return Err(coded(
                    Code::BadInput,
                    format!(
                        "cannot resolve user {spec:?}: {}: {e}",
                        self.passwd_path.display()
                    ),
                ))
            }
        }
        .ok_or_else(|| {
            coded(
                Code::BadInput,
                format!(
                    "unknown user {spec:?}: not in {}",
                    self.passwd_path.display()
                ),
            )
        })
    }

    /// Resolve a group name or numeric gid.
    pub fn gid(&self, spec: &str) -> Result<u32> {
        if let Some(id) = numeric(spec) {
            return Ok(id);
        }
        match &self.groups {
            Ok(list) => list.iter().find(|g| g.name == spec).map(|g| g.gid),
            Err(_) if spec == "root" => Some(0),
            Err(e) => {
                return Err(coded(
                    Code::BadInput,
                    format!(
                        "cannot resolve group {spec:?}: {}: {e}",
                        self.group_path.display()
                    ),
                ))
            }
        }
        .ok_or_else(|| {
            coded(
                Code::BadInput,
                format!(
                    "unknown group {spec:?}: not in {}",
                    self.group_path.display()
                ),
            )
        })
    }

    /// The primary gid of a user (name or uid): its passwd entry's gid, else 0 (what agenix
    /// does when a secret names an owner but no group).
    pub fn primary_gid(&self, owner: &str) -> Result<u32> {
        let entry = match numeric(owner) {
            Some(uid) => self.user_by_uid(uid),
            None => {
                self.uid(owner)?;
                self.user(owner)
            }
        };
        Ok(entry.map(|u| u.gid).unwrap_or(0))
    }
}

fn numeric(spec: &str) -> Option<u32> {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        spec.parse().ok()
    } else {
        None
    }
}

/// Lines that are entries: not empty, not comments, not NIS `+`/`-` compat lines.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with('+') && !l.starts_with('-'))
        .map(|l| l.split(':').collect())
}

/// Parse `/etc/passwd` (`name:pw:uid:gid:gecos:home:shell`). Malformed lines are skipped (a
/// name on them then resolves as unknown); the first entry for a name wins, as in glibc.
pub fn parse_passwd(text: &str) -> Vec<User> {
    entries(text)
        .filter_map(|f| {
            if f.len() < 4 || f[0].is_empty() {
                return None;
            }
            Some(User {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

/// Parse `/etc/group` (`name:pw:gid:members`), same rules as [`parse_passwd`].
pub fn parse_group(text: &str) -> Vec<Group> {
    entries(text)
        .filter_map(|f| {
            if f.len() < 3 || f[0].is_empty() {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        \n\
        broken line\n\
        +nisuser::::::\n\
        nginx:x:101:102:nginx:/var/lib/nginx:/usr/sbin/nologin\n\
        nginx:x:999:999:dup:/:/bin/false\n\
        badid:x:abc:1::/:\n\
        postgres:x:70:70::/var/lib/postgresql:/bin/sh\r\n";
    const GROUP: &str = "root:x:0:\nkeys:x:96:nginx,postgres\nnginx:x:102:\n";

    #[test]
    fn resolves_names_and_ids() {
        let u = Users::from_text(PASSWD, GROUP);
        let cases: &[(&str, Option<u32>)] = &[
            ("root", Some(0)),
            ("nginx", Some(101)),
            ("postgres", Some(70)),
            ("1234", Some(1234)),
            ("0", Some(0)),
            ("badid", None),
            ("nobody", None),
            ("", None),
            ("+nisuser", None),
            ("99999999999", None),
        ];
        for (spec, want) in cases {
            assert_eq!(u.uid(spec).ok(), *want, "uid {spec:?}");
        }
        assert_eq!(u.gid("keys").unwrap(), 96);
        assert_eq!(u.gid("5000").unwrap(), 5000);
        assert_eq!(u.primary_gid("nginx").unwrap(), 102);
        assert_eq!(u.primary_gid("70").unwrap(), 70);
        assert_eq!(u.primary_gid("4242").unwrap(), 0);
        assert!(u.primary_gid("nobody").is_err());
    }

    #[test]
    fn unknown_names_say_which_file() {
        let u = Users::from_text(PASSWD, GROUP);
        let e = format!("{:#}", u.uid("nobody").unwrap_err());
        assert!(e.contains("\"nobody\"") && e.contains("/etc/passwd"), "{e}");
        let e = u.gid("wheel").unwrap_err();
        assert_eq!(crate::exit::code_of(&e), Code::BadInput);
        assert!(format!("{e:#}").contains("/etc/group"));
    }

    #[test]
    fn missing_files_under_root() {
        let d = tempfile::tempdir().unwrap();
        let u = Users::load(d.path());
        assert_eq!(u.uid("root").unwrap(), 0);
        assert_eq!(u.gid("root").unwrap(), 0);
        assert_eq!(u.uid("42").unwrap(), 42);
        let e = format!("{:#}", u.uid("nginx").unwrap_err());
        assert!(
            e.contains(&d.path().join("etc/passwd").display().to_string()),
            "{e}"
        );

        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(d.path().join("etc/group"), GROUP).unwrap();
        let u = Users::load(d.path());
        assert_eq!(u.uid("nginx").unwrap(), 101);
        assert_eq!(u.gid("nginx").unwrap(), 102);
    }
}
