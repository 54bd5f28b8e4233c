//! The sops-nix side's plan: the `sops:` section checked and resolved (names, keys, formats,
//! owners, paths inside the root, templates read), what `validate` reports, and the
//! identities loaded — everything before a file is decrypted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::config::{SopsConfig, SopsSecret, SopsTemplate, DEFAULT_SSH_KEY_PATHS, RENDERED};
use super::keys::SopsKeys;
use super::template::find_placeholders;
use super::Format;
use crate::context::Context;
use crate::exit::{coded, Code};
use crate::secrets::guard;
use crate::secrets::install::{self, check_name, Own};
use crate::system::users::Users;

/// sops-nix's placeholder for a secret: `<SOPS:` + hex SHA-256 of its name + `:PLACEHOLDER>`.
pub fn placeholder(name: &str) -> String {
    format!("<SOPS:{}:PLACEHOLDER>", hex::encode(Sha256::digest(name)))
}

#[derive(Debug, Clone)]
pub(super) struct PlannedSecret {
    pub(super) name: String,
    /// The attribute name (placeholders hash it).
    pub(super) attr: String,
    pub(super) file_cfg: PathBuf,
    pub(super) file: PathBuf,
    pub(super) format: Format,
    /// `""` = the whole file.
    pub(super) key: String,
    pub(super) path: PathBuf,
    /// `path` on the host, resolved inside the root.
    pub(super) path_host: PathBuf,
    /// A regular file is at `path` now (replaced by the link).
    pub(super) replaces: bool,
    pub(super) link: bool,
    pub(super) own: Own,
}

#[derive(Debug, Clone)]
pub(super) struct PlannedTemplate {
    pub(super) name: String,
    /// The template text (`content`, or `file` read at plan), or why `file` could not be
    /// read (a failure of the run, exit 8, as a missing sops file).
    pub(super) text: Result<String, String>,
    pub(super) file: Option<PathBuf>,
    pub(super) path: PathBuf,
    pub(super) path_host: PathBuf,
    pub(super) replaces: bool,
    pub(super) link: bool,
    pub(super) own: Own,
}

/// Check the section and resolve everything; every problem is listed (exit 3).
pub(super) fn plan(
    ctx: &Context,
    cfg: &SopsConfig,
) -> Result<(Vec<PlannedSecret>, Vec<PlannedTemplate>)> {
    let mut problems = install::check_dirs(
        ["secretsDir", "secretsMountPoint"],
        &cfg.secrets_dir,
        &cfg.secrets_mount_point,
        || "secretsDir and secretsMountPoint must not contain each other".into(),
    );
    if problems.is_empty() {
        problems.extend(
            guard::check_live_link(
                &ctx.root,
                "secretsDir",
                &cfg.secrets_dir,
                &cfg.secrets_mount_point,
            )
            .err(),
        );
        problems.extend(
            guard::check_mount_point(&ctx.root, "secretsMountPoint", &cfg.secrets_mount_point)
                .err(),
        );
    }
    let users = Users::load(&ctx.root);
    let mut secrets: Vec<PlannedSecret> = Vec::new();
    let mut formats: BTreeMap<PathBuf, (Format, String)> = BTreeMap::new();
    for (attr, s) in &cfg.secrets {
        match plan_secret(ctx, cfg, &users, &secrets, &mut formats, attr, s) {
            Ok(p) => secrets.push(p),
            Err(e) => problems.push(format!("sops.secrets.{attr:?}: {e}")),
        }
    }
    let mut templates: Vec<PlannedTemplate> = Vec::new();
    for (attr, t) in &cfg.templates {
        match plan_template(ctx, cfg, &users, &templates, attr, t) {
            Ok(p) => templates.push(p),
            Err(e) => problems.push(format!("sops.templates.{attr:?}: {e}")),
        }
    }
    let mut all_paths: Vec<&Path> = secrets.iter().map(|s| s.path.as_path()).collect();
    all_paths.extend(templates.iter().map(|t| t.path.as_path()));
    for (i, p) in all_paths.iter().enumerate() {
        if all_paths[..i].contains(p) {
            problems.push(format!("path {} is used twice", p.display()));
        }
    }
    let names: Vec<&str> = secrets.iter().map(|p| p.name.as_str()).collect();
    problems.extend(install::nested_names(&names, "sops secret"));
    if problems.is_empty() {
        Ok((secrets, templates))
    } else {
        Err(coded(
            Code::BadInput,
            format!("sops config: {}", problems.join("; ")),
        ))
    }
}

/// One `sops.secrets.<attr>`, checked and resolved; `formats`: each sops file's format and the
/// first secret that read it, so far.
pub(super) fn plan_secret(
    ctx: &Context,
    cfg: &SopsConfig,
    users: &Users,
    planned: &[PlannedSecret],
    formats: &mut BTreeMap<PathBuf, (Format, String)>,
    attr: &str,
    s: &SopsSecret,
) -> Result<PlannedSecret, String> {
    let name = s.name.clone().unwrap_or_else(|| attr.to_string());
    check_name(&name)?;
    if name == RENDERED || name.starts_with(&format!("{RENDERED}/")) {
        return Err(format!("name {name:?}: {RENDERED}/ holds the templates"));
    }
    if planned.iter().any(|p| p.name == name) {
        return Err(format!("name {name:?} is used by another secret"));
    }
    let format = s.format.unwrap_or(cfg.default_sops_format);
    let file_cfg = s
        .sops_file
        .clone()
        .or_else(|| cfg.default_sops_file.clone())
        .ok_or("no sopsFile and no defaultSopsFile")?;
    let file = ctx.config_path(&file_cfg);
    match formats.get(&file) {
        Some((f, first)) if *f != format => {
            return Err(format!(
                "{} is read as {} here but as {} by secret {first:?}",
                file_cfg.display(),
                format.as_str(),
                f.as_str()
            ))
        }
        Some(_) => {}
        None => {
            formats.insert(file.clone(), (format, name.clone()));
        }
    }
    let key = match format {
        Format::Binary | Format::Dotenv | Format::Ini => {
            // A whole-file format has no keys: a `key` given here would be silently ignored.
            if let Some(k) = &s.key {
                return Err(format!(
                    "key {k:?}: format {} is installed whole and has no keys; remove key",
                    format.as_str()
                ));
            }
            String::new()
        }
        Format::Yaml | Format::Json => s
            .key
            .clone()
            .or_else(|| cfg.default_sops_key.clone())
            .unwrap_or_else(|| attr.to_string()),
    };
    let default_path = cfg.secrets_dir.join(&name);
    let path = s.path.clone().unwrap_or_else(|| default_path.clone());
    install::check_path(
        &path,
        &default_path,
        &cfg.secrets_dir,
        &cfg.secrets_mount_point,
    )?;
    let (path_host, replaces) = install::path_host(ctx, &path, &default_path)?;
    Ok(PlannedSecret {
        path_host,
        replaces,
        own: Own::resolve(users, &s.owner, &s.group, &s.mode)?,
        name,
        attr: attr.to_string(),
        file_cfg,
        file,
        format,
        key,
        link: path != default_path,
        path,
    })
}

/// One `sops.templates.<attr>`, checked and resolved.
pub(super) fn plan_template(
    ctx: &Context,
    cfg: &SopsConfig,
    users: &Users,
    planned: &[PlannedTemplate],
    attr: &str,
    t: &SopsTemplate,
) -> Result<PlannedTemplate, String> {
    let name = t.name.clone().unwrap_or_else(|| attr.to_string());
    check_name(&name)?;
    if planned.iter().any(|p| p.name == name) {
        return Err(format!("name {name:?} is used by another template"));
    }
    if t.content.is_some() == t.file.is_some() {
        return Err("give exactly one of content and file".into());
    }
    let default_path = cfg.secrets_dir.join(RENDERED).join(&name);
    let path = t.path.clone().unwrap_or_else(|| default_path.clone());
    let inside = path.starts_with(&cfg.secrets_dir) || path.starts_with(&cfg.secrets_mount_point);
    if !path.is_absolute() || (path != default_path && inside) {
        return Err(format!(
            "path {} must be absolute and outside {} and {}",
            path.display(),
            cfg.secrets_dir.display(),
            cfg.secrets_mount_point.display()
        ));
    }
    let file = t.file.as_ref().map(|f| ctx.config_path(f));
    let text = match (&t.content, &file) {
        (Some(c), _) => Ok(c.clone()),
        (None, Some(f)) => {
            guard::read_regular(f, "template file", cfg.max_file_size).and_then(|b| {
                String::from_utf8(b)
                    .map_err(|_| format!("template file {} is not UTF-8", f.display()))
            })
        }
        (None, None) => return Err("give exactly one of content and file".into()),
    };
    // sops-nix leaves an unknown placeholder in the output; a template that asks for a
    // secret nobody declared is a config mistake.
    if let Ok(text) = &text {
        let known: Vec<String> = cfg.secrets.keys().map(|a| placeholder(a)).collect();
        let unknown: Vec<String> = find_placeholders(text.as_bytes())
            .into_iter()
            .map(|(a, b)| text[a..b].to_string())
            .filter(|ph| !known.contains(ph))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "placeholder {} matches no secret in sops.secrets (the placeholder of secret \
                 <name> is <SOPS:<hex sha256 of name>:PLACEHOLDER>)",
                unknown.join(", ")
            ));
        }
    }
    let (path_host, replaces) = install::path_host(ctx, &path, &default_path)?;
    Ok(PlannedTemplate {
        path_host,
        replaces,
        own: Own::resolve(users, &t.owner, &t.group, &t.mode)?,
        name,
        text,
        file,
        link: path != default_path,
        path,
    })
}

/// What `provision validate` reports for the `sops:` section: every problem a real run would
/// stop at from the config and the files alone (no decryption), with the exit code that run
/// would give — 3 for the config, 8 for a missing sops file, template file or identity.
pub fn check(ctx: &Context, cfg: &SopsConfig) -> Vec<(Code, String)> {
    let (secrets, templates) = match plan(ctx, cfg) {
        Ok(p) => p,
        Err(e) => return vec![(crate::exit::code_of(&e), format!("{e:#}"))],
    };
    let mut problems = Vec::new();
    let mut files: Vec<(&PathBuf, &PathBuf)> =
        secrets.iter().map(|p| (&p.file, &p.file_cfg)).collect();
    files.sort();
    files.dedup();
    for (f, cfg_name) in files {
        if !f.is_file() {
            problems.push((
                Code::Decrypt,
                format!("sops: sops file {} is not a file", cfg_name.display()),
            ));
        }
    }
    for t in &templates {
        if let Some(f) = t.file.as_ref().filter(|f| !f.is_file()) {
            problems.push((
                Code::Decrypt,
                format!(
                    "sops: template {:?}: file {} is not a file",
                    t.name,
                    f.display()
                ),
            ));
        }
    }
    let (strict, defaults) = identity_files(ctx, cfg);
    for p in strict.iter().filter(|p| !p.is_file()) {
        problems.push((
            Code::Decrypt,
            format!("sops: identity {} is not a file", p.display()),
        ));
    }
    if strict.is_empty() && defaults.is_empty() && !secrets.is_empty() {
        problems.push((Code::Decrypt, format!("sops: {}", no_identity(cfg))));
    }
    problems
}

/// Why there is no identity at all: an explicit `sshKeyPaths: []` means no SSH key (the
/// defaults are not looked for), so only `keyFile` could have given one.
pub(super) fn no_identity(cfg: &SopsConfig) -> String {
    match &cfg.age.ssh_key_paths {
        Some(v) if v.is_empty() => {
            "no identity: age.sshKeyPaths is [] (no SSH key) and age.keyFile is not set".into()
        }
        _ => format!(
            "no identity: set age.keyFile or age.sshKeyPaths (none of {} exists)",
            DEFAULT_SSH_KEY_PATHS.join(", ")
        ),
    }
}

/// The identity files: `age.keyFile` and configured `age.sshKeyPaths` (each must load), and
/// the default host keys that exist (each may be skipped, see [`load_keys`]).
pub(super) fn identity_files(ctx: &Context, cfg: &SopsConfig) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut strict: Vec<PathBuf> = cfg
        .age
        .key_file
        .iter()
        .map(|p| ctx.config_path(p))
        .collect();
    let mut defaults = Vec::new();
    match &cfg.age.ssh_key_paths {
        Some(list) => strict.extend(list.iter().map(|p| ctx.config_path(p))),
        None => defaults.extend(
            DEFAULT_SSH_KEY_PATHS
                .iter()
                .map(|p| ctx.path(p))
                .filter(|p| p.exists()),
        ),
    }
    (strict, defaults)
}

/// Load the identities. A default host key that cannot be used (passphrase, unknown type) is
/// skipped with a warning naming it, as the agenix side and sops-nix (which prints "Cannot
/// read ssh key" and goes on) do; a configured file that fails is an error.
pub(super) fn load_keys(ctx: &Context, cfg: &SopsConfig) -> Result<SopsKeys> {
    let (strict, defaults) = identity_files(ctx, cfg);
    let mut keys = SopsKeys::load(&strict).map_err(|errs| {
        coded(
            Code::Decrypt,
            format!(
                "sops: {}; nothing decrypted, {} not switched",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
                cfg.secrets_dir.display()
            ),
        )
    })?;
    for p in defaults {
        match SopsKeys::load(std::slice::from_ref(&p)) {
            Ok(k) => keys.extend(k),
            Err(errs) => {
                for e in errs {
                    tracing::warn!(stage = "sops", "{e} (default host key, skipped)");
                }
            }
        }
    }
    Ok(keys)
}
