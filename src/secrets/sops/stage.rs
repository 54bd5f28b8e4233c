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
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::keys::SopsKeys;
use super::{emit, Document};
use crate::context::{Context, StageOutput};
use crate::exit::{coded, Code};
use crate::secrets::guard;
use crate::secrets::identities::wipe;
use crate::secrets::install::{self, Generations, Link};
use crate::system::users::Users;

pub use super::config::{
    AgeConfig, SopsConfig, SopsSecret, SopsTemplate, DEFAULT_MOUNT_POINT, DEFAULT_SECRETS_DIR,
    DEFAULT_SSH_KEY_PATHS, RENDERED,
};

pub use super::plan::{check, placeholder};
use super::plan::{identity_files, load_keys, no_identity, plan, PlannedSecret, PlannedTemplate};
use super::template::make_templates;

/// What one secret or template became: its bytes, or why not.
pub(super) type Made = Result<Vec<u8>, String>;

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
    ctx.facts.update(|f| {
        f.secrets_failed = count as u64;
        f.secrets_decrypted = (secrets.len() - count) as u64;
    });
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
