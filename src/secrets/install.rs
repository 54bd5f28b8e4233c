//! What the agenix side ([`super::run`]) and the sops-nix side ([`super::sops::stage`]) of the
//! secrets stage install alike: owners, groups and modes from the config; files created with
//! them set before any byte of a secret is written; a generation directory written whole or
//! removed; the switch of the live symlink to it, the per-secret path symlinks and the pruning
//! of old generations; the dry run's text. The primitives under it (ramfs, the atomic symlink
//! swap) are [`super::generation`].
//!
//! Paths: `dir` and `mount_point` are target-system paths, as configured; `*_host` paths are
//! under `--root`.

use anyhow::{Context as _, Result};
use serde::Deserialize;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{generation, guard};
use crate::context::{Context, StageOutput};
use crate::exit::{coded, Code};
use crate::system::users::Users;

/// Default file mode of a decrypted secret.
pub const DEFAULT_MODE: u32 = 0o400;

/// A user/group given by name or numeric id.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum IdSpec {
    Id(u32),
    Name(String),
}

impl IdSpec {
    fn spec(&self) -> String {
        match self {
            IdSpec::Id(n) => n.to_string(),
            IdSpec::Name(s) => s.clone(),
        }
    }
}

/// A file mode as written in the config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ModeSpec {
    Text(String),
    Number(i64),
}

/// Parse a mode: a quoted octal string of 1 to 4 digits (`"0"`, `"400"`, `"0440"`, as chmod
/// and sops-nix's `strconv.ParseUint(mode, 8, …)` read it), at most 0777.
pub fn parse_mode(m: &ModeSpec) -> Result<u32, String> {
    let s = match m {
        ModeSpec::Text(s) => s.trim(),
        ModeSpec::Number(n) => {
            return Err(format!(
                "mode {n}: write the mode as an octal string with a leading zero, such as \"0400\" \
                 (quoted is safest: YAML may read it as a decimal number)"
            ))
        }
    };
    if !(1..=4).contains(&s.len()) || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "mode {s:?}: expected an octal mode such as \"0400\""
        ));
    }
    let v = u32::from_str_radix(s, 8).map_err(|e| format!("mode {s:?}: {e}"))?;
    if v > 0o777 {
        return Err(format!(
            "mode {s:?}: setuid, setgid and sticky bits are not allowed on secrets"
        ));
    }
    Ok(v)
}

/// Check a secret name: a relative path of normal components.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.contains('\0') {
        return Err(format!("name {name:?} contains a NUL byte"));
    }
    // A newline or escape in a name would split or forge lines of the log and the text report.
    if name.chars().any(char::is_control) {
        return Err(format!("name {name:?} contains a control character"));
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(format!(
            "name {name:?}: must be a relative file name (subdirectories with single '/')"
        ));
    }
    if Path::new(name)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
        || name.split('/').any(|c| c == "." || c == "..")
    {
        return Err(format!("name {name:?}: '.' and '..' are not allowed"));
    }
    if name.contains(".provision-tmp-") {
        return Err(format!("name {name:?}: reserved name"));
    }
    Ok(())
}

/// `0440` for a mode.
pub fn mode_str(m: u32) -> String {
    format!("{m:04o}")
}

/// Owner, group and mode of one installed file, resolved.
#[derive(Debug, Clone)]
pub struct Own {
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Own {
    /// Resolve a secret's `owner`, `group` and `mode` against the target's `/etc/passwd` and
    /// `/etc/group`, with agenix's and sops-nix's defaults: `root`, the owner's primary group
    /// (gid 0 for a uid without a passwd entry), [`DEFAULT_MODE`]. Errors: a bad mode, an
    /// unknown user or group.
    pub fn resolve(
        users: &Users,
        owner: &Option<IdSpec>,
        group: &Option<IdSpec>,
        mode: &Option<ModeSpec>,
    ) -> Result<Own, String> {
        let mode = mode.as_ref().map(parse_mode).unwrap_or(Ok(DEFAULT_MODE))?;
        let owner = owner
            .as_ref()
            .map(IdSpec::spec)
            .unwrap_or_else(|| "root".into());
        let uid = users.uid(&owner).map_err(|e| format!("{e:#}"))?;
        if uid == u32::MAX {
            return Err(format!(
                "owner {owner}: uid 4294967295 is (uid_t)-1, which chown(2) reads as \"leave \
                 unchanged\""
            ));
        }
        let (group, gid) = match group {
            Some(g) => {
                let g = g.spec();
                let id = users.gid(&g).map_err(|e| format!("{e:#}"))?;
                (g, id)
            }
            None => {
                let id = users.primary_gid(&owner).map_err(|e| format!("{e:#}"))?;
                (id.to_string(), id)
            }
        };
        if gid == u32::MAX {
            return Err(format!(
                "group {group}: gid 4294967295 is (gid_t)-1, which chown(2) reads as \"leave \
                 unchanged\""
            ));
        }
        Ok(Own {
            owner,
            group,
            uid,
            gid,
            mode,
        })
    }
}

/// Check a secret's `path` (absolute) against its default `<dir>/<name>`: another path must
/// not lie inside `dir` or `mount_point`. The problem, without the secret's name.
pub fn check_path(
    path: &Path,
    default: &Path,
    dir: &Path,
    mount_point: &Path,
) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("path {} must be absolute", path.display()));
    }
    if path != default && (path.starts_with(dir) || path.starts_with(mount_point)) {
        return Err(format!(
            "path {} lies inside {} or {}",
            path.display(),
            dir.display(),
            mount_point.display()
        ));
    }
    Ok(())
}

/// Config problems with a stage's `dir` and `mount_point`, named by their config keys `names`:
/// each must be absolute below `/`, and neither may contain the other (`overlap` says so).
pub fn check_dirs(
    names: [&str; 2],
    dir: &Path,
    mount_point: &Path,
    overlap: impl FnOnce() -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, p) in names.into_iter().zip([dir, mount_point]) {
        if !p.is_absolute() || p.parent().is_none() {
            problems.push(format!(
                "{what} {}: must be an absolute path below /",
                p.display()
            ));
        }
    }
    if dir.starts_with(mount_point) || mount_point.starts_with(dir) {
        problems.push(overlap());
    }
    problems
}

/// A name that is a directory of another (`a` and `a/b`) cannot both be files: one problem
/// for each such pair, `what` naming the first one's kind.
pub fn nested_names(names: &[&str], what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for p in names {
        for q in names {
            if q.starts_with(&format!("{p}/")) {
                problems.push(format!(
                    "{what} {p:?}: its name is a directory of secret {q:?}"
                ));
            }
        }
    }
    problems
}

/// Create `dest`, which must not exist, with mode 0; set `own`'s owner, group and mode; only
/// then let `fill` write the content. On any failure `dest` is removed.
pub fn write_owned(
    dest: &Path,
    own: &Own,
    fill: impl FnOnce(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(dest)
        .with_context(|| format!("creating {}", dest.display()))?;
    let res = std::os::unix::fs::fchown(&f, Some(own.uid), Some(own.gid))
        .with_context(|| format!("chown {}:{} {}", own.uid, own.gid, dest.display()))
        .and_then(|()| {
            f.set_permissions(fs::Permissions::from_mode(own.mode))
                .with_context(|| format!("chmod {} {}", mode_str(own.mode), dest.display()))
        })
        .and_then(|()| fill(&mut f));
    drop(f);
    if res.is_err() {
        let _ = fs::remove_file(dest);
    }
    res
}

/// The directories above `name` (`a/b/c`: `a`, `a/b`) under `base` that do not exist yet,
/// made with the generation's mode; with `group`, owned by root and that group.
pub fn make_parents(base: &Path, name: &str, group: Option<u32>) -> Result<()> {
    let mut dir = base.to_path_buf();
    let parts: Vec<&str> = name.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        if !dir.exists() {
            generation::make_dir(&dir, generation::DIR_MODE)?;
            if let Some(g) = group {
                std::os::unix::fs::chown(&dir, Some(0), Some(g))
                    .with_context(|| format!("chown 0:{g} {}", dir.display()))?;
            }
        }
    }
    Ok(())
}

/// A per-secret path symlink: `path` points at `target`, in the live generation.
pub struct Link<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    /// `path` on the host, resolved inside the root ([`guard::resolve_in_root`]).
    pub host: &'a Path,
    pub target: PathBuf,
    /// A regular file is at `path` now (the link replaces it, as sops-nix does).
    pub replaces: bool,
}

/// ` (replacing a regular file)` for the dry run and the report, when `replaces`.
pub fn replacing(replaces: bool) -> &'static str {
    if replaces {
        " (replacing a regular file)"
    } else {
        ""
    }
}

/// The host path of a secret's `path` (target-system, absolute), its directories resolved
/// inside the root as the booted system will resolve them, and whether it replaces a
/// regular file there. Checked before anything is written: a directory (or device, FIFO,
/// socket) there cannot be replaced by the link, so it is refused. The `default` path
/// (`<dir>/<name>`) is in the new generation, reached through the live link: not checked
/// (the live generation may hold a directory of that name from an older config). The
/// problem, without the secret's name.
pub fn path_host(ctx: &Context, path: &Path, default: &Path) -> Result<(PathBuf, bool), String> {
    if path == default {
        return Ok((ctx.path(path), false));
    }
    let (host, found) = guard::check_link_target(&ctx.root, path)?;
    Ok((host, found == guard::LinkTarget::File))
}

/// A stage's generations: the live symlink `dir` → `<mount_point>/<N>`.
#[derive(Debug, Clone)]
pub struct Generations {
    /// `secrets` or `sops`: in logs and errors.
    stage: &'static str,
    pub dir: PathBuf,
    pub mount_point: PathBuf,
    link_host: PathBuf,
    pub mount_host: PathBuf,
    /// The generation `dir` points at now.
    pub current: Option<u64>,
    /// The generation directories there now, sorted.
    pub existing: Vec<u64>,
    /// The number the next generation gets.
    pub next: u64,
}

impl Generations {
    /// What is there now under `ctx`'s root.
    pub fn scan(ctx: &Context, stage: &'static str, dir: &Path, mount_point: &Path) -> Self {
        // Resolved inside the root (plan has checked that they resolve).
        let mount_host =
            guard::resolve_in_root(&ctx.root, mount_point, true).unwrap_or(ctx.path(mount_point));
        let link_host = guard::resolve_in_root(&ctx.root, dir, false).unwrap_or(ctx.path(dir));
        let current = generation::current_generation(&link_host, mount_point);
        let existing = generation::generations(&mount_host);
        let next = existing.iter().copied().chain(current).max().unwrap_or(0) + 1;
        Generations {
            stage,
            dir: dir.to_path_buf(),
            mount_point: mount_point.to_path_buf(),
            link_host,
            mount_host,
            current,
            existing,
            next,
        }
    }

    /// The next generation as the target system sees it.
    pub fn next_target(&self) -> PathBuf {
        self.mount_point.join(self.next.to_string())
    }

    fn next_host(&self) -> PathBuf {
        self.mount_host.join(self.next.to_string())
    }

    /// `rel` is a file in the live generation.
    pub fn present(&self, rel: &str) -> bool {
        self.current.is_some_and(|g| {
            self.mount_host
                .join(g.to_string())
                .join(rel)
                .symlink_metadata()
                .is_ok_and(|m| m.is_file())
        })
    }

    /// For a failure: "/run/agenix still points at generation 2", or "… not created".
    pub fn unchanged(&self) -> String {
        match self.current {
            Some(g) => format!("{} still points at generation {g}", self.dir.display()),
            None => format!("{} not created", self.dir.display()),
        }
    }

    /// Mount the ramfs at `mount_point` unless one is there: the action to report, if any.
    pub fn mount(&self) -> Result<Option<String>> {
        let stage = self.stage;
        match generation::ensure_ramfs(&self.mount_host)
            .with_context(|| format!("{stage}: preparing the ramfs"))?
        {
            generation::MountAction::Mounted => Ok(Some(format!(
                "mounted ramfs on {} (nodev,nosuid,mode=0751)",
                self.mount_point.display()
            ))),
            generation::MountAction::AlreadyMounted(t) => {
                tracing::info!(
                    stage,
                    "{} already mounted ({t})",
                    self.mount_point.display()
                );
                Ok(None)
            }
        }
    }

    /// Make the next generation's directory (root, 0751; with `group`, that group, as
    /// sops-nix's `keys`) and let `fill` write it (given its host path). When `fill` fails the
    /// directory is removed.
    pub fn write<T>(&self, group: Option<u32>, fill: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let gen_host = self.next_host();
        generation::make_dir(&gen_host, generation::DIR_MODE)?;
        let res = (|| {
            if let Some(g) = group {
                std::os::unix::fs::chown(&gen_host, Some(0), Some(g))
                    .with_context(|| format!("chown 0:{g} {}", gen_host.display()))?;
            }
            fill(&gen_host)
        })();
        if res.is_err() {
            self.discard();
        }
        res
    }

    /// Remove the next generation's directory: it is not to go live.
    pub fn discard(&self) {
        let _ = fs::remove_dir_all(self.next_host());
    }

    /// Point `dir` at the next generation (one rename: readers see the old or the new one).
    pub fn switch(&self, actions: &mut Vec<String>) -> Result<()> {
        generation::swap_symlink(&self.link_host, &self.next_target(), true).with_context(
            || {
                format!(
                    "switching {} to generation {}",
                    self.dir.display(),
                    self.next
                )
            },
        )?;
        actions.push(format!(
            "switched {} -> {}",
            self.dir.display(),
            self.next_target().display()
        ));
        Ok(())
    }

    /// After [`Generations::switch`]: make the path symlinks, then remove the generations not
    /// in `keep` (the new one always stays; `None`: prune nothing). Returns those removed; a
    /// failed prune is only warned about. Errors (`prefix` first): links that could not be
    /// made, named, after the rest was done.
    pub fn finish(
        &self,
        links: &[Link],
        keep: Option<&[u64]>,
        prefix: &str,
        actions: &mut Vec<String>,
    ) -> Result<Vec<u64>> {
        let mut link_errors = Vec::new();
        for l in links {
            match generation::swap_symlink(l.host, &l.target, false) {
                Ok(()) => actions.push(format!(
                    "linked {} -> {}{}",
                    l.path.display(),
                    l.target.display(),
                    replacing(l.replaces)
                )),
                Err(e) => link_errors.push(format!("{}: {e:#}", l.name)),
            }
        }
        let pruned = match keep {
            None => Vec::new(),
            Some(keep) => {
                let keep: Vec<u64> = std::iter::once(self.next)
                    .chain(keep.iter().copied())
                    .collect();
                generation::prune(&self.mount_host, &keep).unwrap_or_else(|e| {
                    tracing::warn!(stage = self.stage, "pruning old generations: {e:#}");
                    Vec::new()
                })
            }
        };
        for g in &pruned {
            actions.push(format!("removed old generation {g}"));
        }
        if !link_errors.is_empty() {
            return Err(coded(
                Code::Failure,
                format!(
                    "{prefix}generation {} is live but some path symlinks could not be made: {}",
                    self.next,
                    link_errors.join("; ")
                ),
            ));
        }
        Ok(pruned)
    }
}

/// The stage's output when nothing is configured.
pub fn nothing_to_do(current: Option<u64>, text: &str) -> StageOutput {
    StageOutput {
        actions: vec![],
        details: json!({"generation": current, "secrets": [], "text": text}),
    }
}

/// One secret in the report's text: `  ok      db  /run/agenix/db  root:root 0400`.
pub fn report_line(status: &str, name: &str, path: &Path, own: &Own, note: &str) -> String {
    format!(
        "  {status:<7} {name}  {}  {}:{} {}{note}\n",
        path.display(),
        own.owner,
        own.group,
        mode_str(own.mode)
    )
}

/// A dry run's output: every action as "would …", the problems found, under `title`; `details`
/// (a JSON object) gains `dry_run`, `problems` and `text`, and with `fatal` (a problem the
/// real run would stop at, exit 8) `would_fail`, which the CLI turns into that exit code.
pub fn dry_run_output(
    title: &str,
    actions: Vec<String>,
    problems: Vec<String>,
    fatal: bool,
    mut details: serde_json::Value,
) -> StageOutput {
    if fatal {
        details["would_fail"] = json!(problems.join("; "));
    }
    let mut text = format!("{title} (dry run, nothing changed):\n");
    for a in &actions {
        text.push_str(&format!("  would {a}\n"));
    }
    for p in &problems {
        text.push_str(&format!("  PROBLEM: {p}\n"));
    }
    details["dry_run"] = json!(true);
    details["problems"] = json!(problems);
    details["text"] = json!(text);
    StageOutput {
        actions: actions.iter().map(|a| format!("would {a}")).collect(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let t = |s: &str| parse_mode(&ModeSpec::Text(s.into()));
        assert_eq!(t("0400"), Ok(0o400));
        assert_eq!(t("440"), Ok(0o440));
        assert_eq!(t("0777"), Ok(0o777));
        assert_eq!(t("0"), Ok(0));
        assert_eq!(t("0000"), Ok(0));
        assert_eq!(t("04"), Ok(0o4));
        for bad in ["", "04000", "4755", "0800", "rw", "u=r", "00000"] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let e = parse_mode(&ModeSpec::Number(400)).unwrap_err();
        assert!(e.contains("quoted"), "{e}");
    }

    #[test]
    fn names() {
        for ok in [
            "db",
            "db-password.env",
            "nginx/cert.pem",
            "a/b/c",
            ".hidden",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a/",
            "a//b",
            "..",
            "a/../b",
            ".",
            "./a",
            "a/.",
            "a\0b",
            "new\nline",
            "esc\u{1b}[1m",
            "tab\there",
            ".x.provision-tmp-1",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
