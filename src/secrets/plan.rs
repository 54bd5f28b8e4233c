//! The agenix side's plan: the `secrets:` section checked and resolved (names, paths inside
//! the root, owners, modes), what `validate` reports for it, and the identities loaded —
//! everything before a file is decrypted.

use std::path::PathBuf;

use anyhow::Result;

use super::config::{SecretsConfig, DEFAULT_IDENTITY_PATHS};
use super::guard;
use super::identities::Identities;
use super::install::{self, check_name, Own};
use crate::context::Context;
use crate::exit::{coded, Code};
use crate::system::users::Users;

/// A secret, checked and resolved.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) name: String,
    /// The `.age` file as configured, and where we read it (host path).
    pub(super) file_cfg: PathBuf,
    pub(super) file: PathBuf,
    /// Where the secret appears on the target system.
    pub(super) path: PathBuf,
    /// `path` on the host, resolved inside the root.
    pub(super) path_host: PathBuf,
    /// A regular file is at `path` now (replaced).
    pub(super) replaces: bool,
    /// `path` is a symlink to `<secrets_dir>/<name>` (set only when it differs from it).
    pub(super) link: bool,
    /// The file itself is written at `path` (symlink: false, custom path).
    pub(super) direct: bool,
    pub(super) own: Own,
    pub(super) optional: bool,
}

pub(super) fn bad_input(problems: &[String]) -> anyhow::Error {
    coded(
        Code::BadInput,
        format!("secrets config: {}", problems.join("; ")),
    )
}

/// Check the config and resolve owners, groups, modes and paths. Every problem is listed.
pub(super) fn plan(ctx: &Context, cfg: &SecretsConfig) -> Result<Vec<Planned>> {
    let (dir, mount_point) = (&cfg.secrets_dir, &cfg.secrets_mount_point);
    let mut problems = install::check_dirs(
        ["secrets_dir", "secrets_mount_point"],
        dir,
        mount_point,
        || {
            format!(
                "secrets_dir {} and secrets_mount_point {} must not contain each other",
                dir.display(),
                mount_point.display()
            )
        },
    );
    if problems.is_empty() {
        problems.extend(guard::check_live_link(&ctx.root, "secrets_dir", dir, mount_point).err());
        problems
            .extend(guard::check_mount_point(&ctx.root, "secrets_mount_point", mount_point).err());
    }
    if let Some(v) = &cfg.identity_paths {
        if v.is_empty() {
            problems.push("identity_paths is empty: list at least one identity file".into());
        }
    }
    let users = Users::load(&ctx.root);
    let mut out: Vec<Planned> = Vec::new();
    for s in &cfg.secrets {
        let who = format!("secret {:?}", s.name);
        if let Err(e) = check_name(&s.name) {
            problems.push(format!("{who}: {e}"));
            continue;
        }
        if out.iter().any(|p| p.name == s.name) {
            problems.push(format!("{who}: duplicate name"));
            continue;
        }
        let default_path = dir.join(&s.name);
        let path = s.path.clone().unwrap_or_else(|| default_path.clone());
        if let Err(e) = install::check_path(&path, &default_path, dir, mount_point) {
            problems.push(format!("{who}: {e}"));
            continue;
        }
        if out.iter().any(|p| p.path == path) {
            problems.push(format!(
                "{who}: path {} is used by another secret",
                path.display()
            ));
            continue;
        }
        let (path_host, replaces) = match install::path_host(ctx, &path, &default_path) {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("{who}: {e}"));
                continue;
            }
        };
        let own = match Own::resolve(&users, &s.owner, &s.group, &s.mode) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("{who}: {e}"));
                continue;
            }
        };
        let custom = path != default_path;
        out.push(Planned {
            name: s.name.clone(),
            file_cfg: s.file.clone(),
            file: ctx.config_path(&s.file),
            path,
            path_host,
            replaces,
            link: custom && s.symlink,
            direct: custom && !s.symlink,
            own,
            optional: s.optional,
        });
    }
    let names: Vec<&str> = out.iter().map(|p| p.name.as_str()).collect();
    problems.extend(install::nested_names(&names, "secret"));
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(bad_input(&problems))
    }
}

/// What `provision validate` reports for the `secrets:` section: every problem a real run
/// would stop at from the config and the files alone (no decryption), with the exit code
/// that run would give — 3 for the config (names, modes, owners in the target root's
/// passwd, paths, what is at them), 8 for a missing `.age` file of a required secret or a
/// missing identity.
pub fn check(ctx: &Context, cfg: &SecretsConfig) -> Vec<(Code, String)> {
    let planned = match plan(ctx, cfg) {
        Ok(p) => p,
        Err(e) => return vec![(crate::exit::code_of(&e), format!("{e:#}"))],
    };
    let mut problems = Vec::new();
    for p in planned.iter().filter(|p| !p.optional) {
        if !p.file.is_file() {
            problems.push((
                Code::Decrypt,
                format!(
                    "secrets: secret {:?}: {} is not a file",
                    p.name,
                    p.file.display()
                ),
            ));
        }
    }
    let (paths, defaults) = identity_paths(ctx, cfg);
    let present: Vec<&PathBuf> = paths.iter().filter(|p| p.is_file()).collect();
    if !defaults {
        for p in paths.iter().filter(|p| !p.is_file()) {
            problems.push((
                Code::Decrypt,
                format!("secrets: identity_paths: {} is not a file", p.display()),
            ));
        }
    } else if present.is_empty() && !planned.is_empty() {
        problems.push((
            Code::Decrypt,
            format!(
                "secrets: no identity: none of {} exists",
                DEFAULT_IDENTITY_PATHS.join(", ")
            ),
        ));
    }
    problems
}

/// The identity files to use (host paths) and whether they are the defaults (an unusable
/// default is skipped, see `Identities::load`).
pub(super) fn identity_paths(ctx: &Context, cfg: &SecretsConfig) -> (Vec<PathBuf>, bool) {
    match &cfg.identity_paths {
        Some(v) => (v.iter().map(|p| ctx.config_path(p)).collect(), false),
        None => (
            DEFAULT_IDENTITY_PATHS.iter().map(|p| ctx.path(p)).collect(),
            true,
        ),
    }
}

pub(super) fn load_identities(
    ctx: &Context,
    cfg: &SecretsConfig,
    planned: &[Planned],
) -> Result<Identities> {
    let (paths, defaults) = identity_paths(ctx, cfg);
    Identities::load(&paths, defaults).map_err(|errs| {
        let list = errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
        let names = planned.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
        coded(
            Code::Decrypt,
            format!(
                "no usable identity ({list}); nothing decrypted, {} not switched; secrets affected: {names}",
                cfg.secrets_dir.display()
            ),
        )
    })
}
