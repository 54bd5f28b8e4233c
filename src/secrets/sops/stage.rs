//! The sops-nix side of the secrets stage (DESIGN §8): the config's `sops:` section
//! ([`super::config`]) installed as sops-install-secrets does (Mic92/sops-nix
//! `pkgs/sops-install-secrets/main.go`), through the installer both sides share
//! ([`crate::secrets::install`]).
//!
//! - one file per secret at `/run/secrets/<name>`: the value at its `key` (`a/b` walks nested
//!   mappings; `""` is the whole file), or the whole file for `binary`, `dotenv` and `ini`;
//! - templates rendered to `/run/secrets/rendered/<name>`, every
//!   `<SOPS:<sha256 of the secret's name>:PLACEHOLDER>` replaced by that secret's value;
//! - a custom `path` becomes a symlink to `/run/secrets/<name>` (or `…/rendered/<name>`);
//! - generations `/run/secrets.d/<N>/` on ramfs, `/run/secrets` switched to the new one by
//!   renaming a symlink over it, as the agenix side ([`crate::secrets::generation`]).
//!
//! Fail closed, and earlier than sops-nix: every file is decrypted and MAC-checked, every value
//! found and every template rendered in memory before anything is written; one failure and
//! nothing is written, `/run/secrets` keeps pointing where it did, and the error lists every
//! failed secret and why (exit 8).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::keys::SopsKeys;
use super::{emit, Document, Format};
use crate::context::{Context, StageOutput};
use crate::exit::{coded, Code};
use crate::secrets::guard;
use crate::secrets::identities::wipe;
use crate::secrets::install::{self, check_name, Generations, Link, Own};
use crate::system::users::Users;

pub use super::config::{
    AgeConfig, SopsConfig, SopsSecret, SopsTemplate, DEFAULT_MOUNT_POINT, DEFAULT_SECRETS_DIR,
    DEFAULT_SSH_KEY_PATHS, RENDERED,
};

/// sops-nix's placeholder for a secret: `<SOPS:` + hex SHA-256 of its name + `:PLACEHOLDER>`.
pub fn placeholder(name: &str) -> String {
    format!("<SOPS:{}:PLACEHOLDER>", hex::encode(Sha256::digest(name)))
}

#[derive(Debug, Clone)]
struct PlannedSecret {
    name: String,
    /// The attribute name (placeholders hash it).
    attr: String,
    file_cfg: PathBuf,
    file: PathBuf,
    format: Format,
    /// `""` = the whole file.
    key: String,
    path: PathBuf,
    /// `path` on the host, resolved inside the root.
    path_host: PathBuf,
    /// A regular file is at `path` now (replaced by the link).
    replaces: bool,
    link: bool,
    own: Own,
}

#[derive(Debug, Clone)]
struct PlannedTemplate {
    name: String,
    /// The template text (`content`, or `file` read at plan), or why `file` could not be
    /// read (a failure of the run, exit 8, as a missing sops file).
    text: Result<String, String>,
    file: Option<PathBuf>,
    path: PathBuf,
    path_host: PathBuf,
    replaces: bool,
    link: bool,
    own: Own,
}

/// Check the section and resolve everything; every problem is listed (exit 3).
fn plan(ctx: &Context, cfg: &SopsConfig) -> Result<(Vec<PlannedSecret>, Vec<PlannedTemplate>)> {
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
fn plan_secret(
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
fn plan_template(
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
fn no_identity(cfg: &SopsConfig) -> String {
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
fn identity_files(ctx: &Context, cfg: &SopsConfig) -> (Vec<PathBuf>, Vec<PathBuf>) {
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
fn load_keys(ctx: &Context, cfg: &SopsConfig) -> Result<SopsKeys> {
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

/// What one secret or template became: its bytes, or why not.
type Made = Result<Vec<u8>, String>;

/// Decrypt every file once and take each secret's value out of it.
fn make_secrets(planned: &[PlannedSecret], keys: &SopsKeys, cap: u64) -> Vec<Made> {
    let mut docs: BTreeMap<PathBuf, Result<Document, String>> = BTreeMap::new();
    for p in planned {
        docs.entry(p.file.clone()).or_insert_with(|| {
            super::decrypt_file(&p.file, p.format, keys, cap).map_err(|e| e.to_string())
        });
    }
    planned
        .iter()
        .map(|p| {
            let doc = docs[&p.file].as_ref().map_err(Clone::clone)?;
            if p.key.is_empty() {
                return emit::whole_file(doc).map_err(|e| {
                    format!(
                        "sops file {}: cannot write it whole: {e}",
                        p.file_cfg.display()
                    )
                });
            }
            match doc.get(&p.key) {
                Ok(super::tree::Value::Str(s)) => Ok(s.as_bytes().to_vec()),
                Ok(super::tree::Value::Bytes(b)) => Ok(b.clone()),
                Ok(other) => Err(format!(
                    "sops file {}: the value of key '{}' is {}, not a string",
                    p.file_cfg.display(),
                    p.key,
                    other.a_type_name()
                )),
                Err(e) => Err(format!("sops file {}: {e}", p.file_cfg.display())),
            }
        })
        .collect()
}

/// Render every template: each secret's placeholder replaced by its value.
fn make_templates(
    templates: &[PlannedTemplate],
    secrets: &[PlannedSecret],
    values: &[Made],
) -> Vec<Made> {
    templates
        .iter()
        .map(|t| {
            let text = t.text.clone()?;
            let by_placeholder: BTreeMap<String, &[u8]> = secrets
                .iter()
                .zip(values)
                .filter_map(|(s, v)| Some((placeholder(&s.attr), v.as_ref().ok()?.as_slice())))
                .collect();
            Ok(render(text.as_bytes(), &by_placeholder))
        })
        .collect()
}

/// Every `<SOPS:…:PLACEHOLDER>` in `text`: (start, end) byte offsets.
fn find_placeholders(text: &[u8]) -> Vec<(usize, usize)> {
    const OPEN: &[u8] = b"<SOPS:";
    const CLOSE: &[u8] = b":PLACEHOLDER>";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].windows(OPEN.len()).position(|w| w == OPEN) {
        let start = i + at;
        let inner = start + OPEN.len();
        let len = text[inner..]
            .iter()
            .position(|b| b"<>:\n".contains(b))
            .unwrap_or(text.len() - inner);
        if len > 0 && text[inner + len..].starts_with(CLOSE) {
            let end = inner + len + CLOSE.len();
            found.push((start, end));
            i = end;
        } else {
            i = start + 1;
        }
    }
    found
}

/// `text` with each placeholder replaced by its secret's value, in one pass over the
/// template: a value is never searched again, so a placeholder inside a secret's value stays
/// as it is (it must not pull another secret into a template that did not ask for it).
fn render(text: &[u8], values: &BTreeMap<String, &[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in find_placeholders(text) {
        out.extend_from_slice(&text[last..start]);
        let ph = String::from_utf8_lossy(&text[start..end]);
        match values.get(ph.as_ref()) {
            Some(v) => out.extend_from_slice(v),
            None => out.extend_from_slice(&text[start..end]),
        }
        last = end;
    }
    out.extend_from_slice(&text[last..]);
    out
}

fn secret_json(p: &PlannedSecret, outcome: &str, error: Option<&str>) -> serde_json::Value {
    json!({
        "name": p.name, "sops_file": p.file_cfg, "format": p.format, "key": p.key,
        "path": p.path, "owner": p.own.owner, "group": p.own.group,
        "mode": format!("{:04o}", p.own.mode), "outcome": outcome, "error": error,
    })
}

/// Run the sops side of the secrets stage.
pub fn run(ctx: &Context, cfg: &SopsConfig) -> Result<StageOutput> {
    let (secrets, templates) = plan(ctx, cfg)?;
    let gens = Generations::scan(ctx, "sops", &cfg.secrets_dir, &cfg.secrets_mount_point);
    let (previous, next) = (gens.current, gens.next);
    if ctx.dry_run {
        return Ok(dry_run(ctx, cfg, &secrets, &templates, next));
    }
    if secrets.is_empty() && templates.is_empty() {
        return Ok(install::nothing_to_do(
            previous,
            "sops: no secrets configured; nothing to do\n",
        ));
    }
    let keys = load_keys(ctx, cfg)?;
    if keys.is_empty() && !secrets.is_empty() {
        return Err(coded(
            Code::Decrypt,
            format!(
                "sops: {}; nothing decrypted, {} not switched",
                no_identity(cfg),
                cfg.secrets_dir.display()
            ),
        ));
    }
    for d in keys.describe() {
        tracing::info!(stage = "sops", identity = %d, "identity loaded");
    }

    // Everything in memory first: decrypt, check, look up, render.
    let mut values = make_secrets(&secrets, &keys, cfg.max_file_size);
    let mut rendered = make_templates(&templates, &secrets, &values);
    // A file that fails fails every secret read from it with the same error: said once,
    // with the secrets it affects.
    let mut by_error: Vec<(&str, Vec<&str>)> = Vec::new();
    for (p, v) in secrets.iter().zip(&values) {
        if let Err(e) = v {
            match by_error.iter_mut().find(|(x, _)| *x == e.as_str()) {
                Some((_, names)) => names.push(&p.name),
                None => by_error.push((e, vec![&p.name])),
            }
        }
    }
    let mut count = by_error.iter().map(|(_, n)| n.len()).sum::<usize>();
    let mut failed: Vec<String> = by_error
        .iter()
        .map(|(e, names)| match names.as_slice() {
            [one] => format!("secret {one}: {e}"),
            many => format!("secrets {}: {e}", many.join(", ")),
        })
        .collect();
    for (t, v) in templates.iter().zip(&rendered) {
        if let Err(e) = v {
            failed.push(format!("template {}: {e}", t.name));
            count += 1;
        }
    }
    let wipe_all = |values: &mut Vec<Made>, rendered: &mut Vec<Made>| {
        for v in values.iter_mut().chain(rendered.iter_mut()).flatten() {
            wipe(v);
        }
    };
    if !failed.is_empty() {
        wipe_all(&mut values, &mut rendered);
        return Err(coded(
            Code::Decrypt,
            format!(
                "sops: {} of {} secret(s)/template(s) failed, nothing written, {}: {}",
                count,
                secrets.len() + templates.len(),
                gens.unchanged(),
                failed.join("; ")
            ),
        ));
    }

    let mut actions = Vec::new();
    actions.extend(gens.mount()?);
    let keys_gid = Users::load(&ctx.root).gid("keys").ok();
    let written = gens.write(keys_gid, |gen_host| {
        let made = secrets.iter().map(|p| (p.name.clone(), &p.own)).chain(
            templates
                .iter()
                .map(|t| (format!("{RENDERED}/{}", t.name), &t.own)),
        );
        for ((name, own), v) in made.zip(values.iter().chain(&rendered)) {
            install::make_parents(gen_host, &name, keys_gid)?;
            let data = v.as_ref().expect("checked");
            install::write_owned(&gen_host.join(&name), own, |f| {
                f.write_all(data)
                    .with_context(|| format!("writing {}", gen_host.join(&name).display()))
            })?;
        }
        Ok(())
    });
    wipe_all(&mut values, &mut rendered);
    if let Err(e) = written {
        return Err(e.context(format!(
            "sops: writing generation {next} (discarded; {} not switched)",
            cfg.secrets_dir.display()
        )));
    }
    gens.switch(&mut actions)?;
    let links: Vec<Link> = secrets
        .iter()
        .filter(|p| p.link)
        .map(|p| Link {
            name: &p.name,
            path: &p.path,
            host: &p.path_host,
            target: cfg.secrets_dir.join(&p.name),
            replaces: p.replaces,
        })
        .chain(templates.iter().filter(|t| t.link).map(|t| Link {
            name: &t.name,
            path: &t.path,
            host: &t.path_host,
            target: cfg.secrets_dir.join(RENDERED).join(&t.name),
            replaces: t.replaces,
        }))
        .collect();
    // sops-nix's count: `keepGenerations` includes the live one, so the newest N - 1 older
    // ones stay (0: all).
    let mut older: Vec<u64> = gens
        .existing
        .iter()
        .copied()
        .chain(previous)
        .filter(|g| *g < next)
        .collect();
    older.sort_unstable();
    older.dedup();
    let keep = (cfg.keep_generations != 0).then(|| {
        &older[older
            .len()
            .saturating_sub(cfg.keep_generations as usize - 1)..]
    });
    let pruned = gens.finish(&links, keep, "sops: ", &mut actions)?;
    let mut text = format!(
        "sops: generation {next} live ({} -> {}), {} secret(s), {} template(s)\n",
        cfg.secrets_dir.display(),
        gens.next_target().display(),
        secrets.len(),
        templates.len()
    );
    for p in &secrets {
        text.push_str(&install::report_line("ok", &p.name, &p.path, &p.own, ""));
    }
    for t in &templates {
        text.push_str(&format!(
            "  ok      template {}  {}\n",
            t.name,
            t.path.display()
        ));
    }
    Ok(StageOutput {
        actions,
        details: json!({
            "generation": next,
            "previous": previous,
            "pruned": pruned,
            "secrets_dir": cfg.secrets_dir,
            "secrets_mount_point": cfg.secrets_mount_point,
            "identities": keys.describe(),
            "secrets": secrets.iter().map(|p| secret_json(p, "ok", None)).collect::<Vec<_>>(),
            "templates": templates.iter().map(|t| json!({"name": t.name, "path": t.path})).collect::<Vec<_>>(),
            "text": text,
        }),
    })
}

fn dry_run(
    ctx: &Context,
    cfg: &SopsConfig,
    secrets: &[PlannedSecret],
    templates: &[PlannedTemplate],
    next: u64,
) -> StageOutput {
    let mut actions = Vec::new();
    let mut problems = Vec::new();
    let (strict, defaults) = identity_files(ctx, cfg);
    for p in &strict {
        if !p.is_file() {
            problems.push(format!("identity {}: missing", p.display()));
        }
    }
    if strict.is_empty() && defaults.is_empty() && !secrets.is_empty() {
        problems.push("no identity file present".into());
    }
    for t in templates {
        if let Err(e) = &t.text {
            problems.push(format!("template {}: {e}", t.name));
        }
    }
    let gen = cfg.secrets_mount_point.join(next.to_string());
    if !secrets.is_empty() || !templates.is_empty() {
        let mount_host = guard::resolve_in_root(&ctx.root, &cfg.secrets_mount_point, true)
            .unwrap_or_else(|_| ctx.path(&cfg.secrets_mount_point));
        if crate::secrets::generation::mounted_type(&mount_host)
            .ok()
            .flatten()
            .is_none()
        {
            actions.push(format!(
                "mount ramfs on {} (nodev,nosuid,mode=0751)",
                cfg.secrets_mount_point.display()
            ));
        }
    }
    let mut files: Vec<&PathBuf> = secrets.iter().map(|p| &p.file).collect();
    files.sort();
    files.dedup();
    for f in files {
        if !f.is_file() {
            problems.push(format!("sops file {} does not exist", f.display()));
        }
    }
    for p in secrets {
        actions.push(format!(
            "decrypt {} ({}{}) -> {} ({}:{} {:04o})",
            p.file_cfg.display(),
            p.format.as_str(),
            if p.key.is_empty() {
                String::new()
            } else {
                format!(", key {}", p.key)
            },
            gen.join(&p.name).display(),
            p.own.owner,
            p.own.group,
            p.own.mode
        ));
    }
    for t in templates {
        actions.push(format!(
            "render template {} -> {}",
            t.name,
            gen.join(RENDERED).join(&t.name).display()
        ));
    }
    if !secrets.is_empty() || !templates.is_empty() {
        actions.push(format!(
            "switch {} -> {}",
            cfg.secrets_dir.display(),
            gen.display()
        ));
    }
    let links = secrets
        .iter()
        .filter(|p| p.link)
        .map(|p| (&p.path, cfg.secrets_dir.join(&p.name), p.replaces))
        .chain(templates.iter().filter(|t| t.link).map(|t| {
            (
                &t.path,
                cfg.secrets_dir.join(RENDERED).join(&t.name),
                t.replaces,
            )
        }));
    for (path, target, replaces) in links {
        actions.push(format!(
            "link {} -> {}{}",
            path.display(),
            target.display(),
            install::replacing(replaces)
        ));
    }
    install::dry_run_output(
        "sops",
        actions,
        problems.clone(),
        !problems.is_empty(),
        json!({
            "next_generation": next,
            "secrets": secrets.iter().map(|p| secret_json(p, "planned", None)).collect::<Vec<_>>(),
        }),
    )
}

/// What is there now: the live generation and whether each secret and template is present.
pub fn status(ctx: &Context, cfg: &SopsConfig) -> serde_json::Value {
    let gens = Generations::scan(ctx, "sops", &cfg.secrets_dir, &cfg.secrets_mount_point);
    json!({
        "secrets_dir": cfg.secrets_dir,
        "generation": gens.current,
        "generations": gens.existing,
        "secrets": cfg.secrets.iter().map(|(attr, s)| {
            let name = s.name.clone().unwrap_or_else(|| attr.clone());
            json!({"name": name, "present": gens.present(&name)})
        }).collect::<Vec<_>>(),
        "templates": cfg.templates.iter().map(|(attr, t)| {
            let name = t.name.clone().unwrap_or_else(|| attr.clone());
            json!({"name": name, "present": gens.present(&format!("{RENDERED}/{name}"))})
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sops-nix `modules/sops/templates/default.nix`: `<SOPS:${builtins.hashString "sha256"
    /// name}:PLACEHOLDER>`; the hash written out (`printf db-password | sha256sum`).
    #[test]
    fn placeholders_as_sops_nix() {
        assert_eq!(
            placeholder("db-password"),
            "<SOPS:47facce23a4e378e2db6678d49886c2c01fb69ec0fba65258571f9c19c06eb7f:PLACEHOLDER>"
        );
        let (a, b) = (placeholder("a"), placeholder("b"));
        let values: BTreeMap<String, &[u8]> =
            [(a.clone(), b.as_bytes()), (b.clone(), &b"B"[..])].into();
        // a's value is b's placeholder: it is not expanded again.
        let t = format!("x{a}y{b}z<SOPS:{a}<SOPS:");
        assert_eq!(
            String::from_utf8(render(t.as_bytes(), &values)).unwrap(),
            format!("x{b}yBz<SOPS:{b}<SOPS:")
        );
    }
}
