//! Secrets stage (DESIGN §8): a drop-in for agenix.
//!
//! The same `.age` files (encrypted with `agenix -e` / `age -R` to ssh-ed25519 or ssh-rsa host
//! keys, or to age X25519 recipients) are decrypted in-process, in parallel, into a new
//! generation `/run/agenix.d/<N>/` on ramfs; `/run/agenix` is then switched to it by renaming a
//! new symlink over the old one, per-secret `path` symlinks are made, the previous generation is
//! kept and older ones are pruned.
//!
//! Fail closed: when a required secret fails, the new generation is removed, `/run/agenix` keeps
//! pointing at the previous one, and the error lists every failed secret and why. No secret byte
//! is logged, put in an error, in the report, or written outside the ramfs (a `symlink: false`
//! secret is written at its `path` only if that is on ramfs or tmpfs).

pub mod sops;

pub mod config;
pub mod decrypt;
pub mod generation;
pub mod guard;
pub mod identities;
pub mod install;
pub mod paths;
mod plan;
pub mod ssh_rsa;

use anyhow::{Context as _, Result};
use serde_json::json;
use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::context::{Context, StageOutput};
use crate::exit::{coded, Code};

pub use config::{
    Secret, SecretsConfig, DEFAULT_IDENTITY_PATHS, DEFAULT_MOUNT_POINT, DEFAULT_SECRETS_DIR,
};
use identities::Identities;
pub use install::{check_name, parse_mode, IdSpec, ModeSpec, DEFAULT_MODE};
use install::{mode_str, Generations, Link};

/// Where the secrets stage's lock lives (under `--root`).
pub const LOCK_FILE: &str = "/run/provision/secrets.lock";

/// Take the secrets stage's lock (`flock(LOCK_EX)` on [`LOCK_FILE`] under the root), waiting
/// for a run that holds it, so two runs never scan, write and switch generations at once.
/// Held until the returned file is dropped.
pub fn lock(ctx: &Context) -> Result<fs::File> {
    use rustix::fs::{flock, FlockOperation};
    let path = guard::resolve_in_root(&ctx.root, Path::new(LOCK_FILE), false)
        .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if flock(&f, FlockOperation::NonBlockingLockExclusive).is_err() {
        tracing::info!(
            stage = "secrets",
            "{} is held by another run: waiting for it",
            path.display()
        );
        flock(&f, FlockOperation::LockExclusive)
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(f)
}

pub use plan::check;
use plan::{identity_paths, load_identities, plan, Planned};

/// How one secret went.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Failed(String),
}

fn secret_json(p: &Planned, outcome: &str, error: Option<&str>) -> serde_json::Value {
    json!({
        "name": p.name,
        "file": p.file_cfg,
        "path": p.path,
        "owner": p.own.owner,
        "group": p.own.group,
        "uid": p.own.uid,
        "gid": p.own.gid,
        "mode": mode_str(p.own.mode),
        "symlink": !p.direct,
        "optional": p.optional,
        "outcome": outcome,
        "error": error,
    })
}

/// Run the secrets stage.
pub fn run(ctx: &Context, cfg: &SecretsConfig) -> Result<StageOutput> {
    let planned = plan(ctx, cfg)?;
    let gens = Generations::scan(ctx, "secrets", &cfg.secrets_dir, &cfg.secrets_mount_point);
    let (previous, next, next_target) = (gens.current, gens.next, gens.next_target());

    if ctx.dry_run {
        return Ok(dry_run(ctx, cfg, &planned, &gens));
    }
    if planned.is_empty() {
        return Ok(install::nothing_to_do(
            previous,
            "secrets: none configured; nothing to do\n",
        ));
    }

    let ids = load_identities(ctx, cfg, &planned)?;
    for i in &ids.list {
        tracing::info!(stage = "secrets", identity = %i.path.display(), kind = i.kind.as_str(), public = %i.public, engine = i.engine, "identity loaded");
    }
    let mut actions = Vec::new();
    actions.extend(gens.mount()?);
    let outcomes = gens.write(None, |gen_host| {
        fill_generation(&planned, gen_host, &ids, cfg.max_file_size)
    })?;

    let failed_required: Vec<String> = planned
        .iter()
        .zip(&outcomes)
        .filter_map(|(p, o)| match o {
            Outcome::Failed(r) if !p.optional => {
                Some(format!("{} ({}): {r}", p.name, p.file_cfg.display()))
            }
            _ => None,
        })
        .collect();
    ctx.facts.update(|f| {
        f.secrets_decrypted = outcomes.iter().filter(|o| matches!(o, Outcome::Ok)).count() as u64;
        f.secrets_failed = (outcomes.len() as u64) - f.secrets_decrypted;
    });
    for (p, o) in planned.iter().zip(&outcomes) {
        match o {
            Outcome::Ok => tracing::debug!(stage = "secrets", secret = %p.name, "decrypted"),
            Outcome::Failed(r) => {
                tracing::error!(stage = "secrets", secret = %p.name, optional = p.optional, "failed: {r}")
            }
        }
    }
    if !failed_required.is_empty() {
        gens.discard();
        return Err(coded(
            Code::Decrypt,
            format!(
                "{} of {} required secret(s) failed, generation {next} discarded, {}: {}",
                failed_required.len(),
                planned.iter().filter(|p| !p.optional).count(),
                gens.unchanged(),
                failed_required.join("; ")
            ),
        ));
    }

    gens.switch(&mut actions)?;
    // Path symlinks after the switch (they point through secrets_dir); a failed optional
    // secret's (now dangling) link of ours is removed, nothing else.
    let mut links = Vec::new();
    for (p, o) in planned.iter().zip(&outcomes) {
        if !p.link {
            continue;
        }
        let target = cfg.secrets_dir.join(&p.name);
        match o {
            Outcome::Ok => links.push(Link {
                name: &p.name,
                path: &p.path,
                host: &p.path_host,
                target,
                replaces: p.replaces,
            }),
            Outcome::Failed(_) => {
                if fs::read_link(&p.path_host)
                    .map(|t| t == target)
                    .unwrap_or(false)
                {
                    let _ = fs::remove_file(&p.path_host);
                }
            }
        }
    }
    let pruned = gens.finish(&links, Some(previous.as_slice()), "", &mut actions)?;

    let ok = outcomes.iter().filter(|o| matches!(o, Outcome::Ok)).count();
    let mut text = format!(
        "secrets: generation {next} live ({} -> {}), {ok}/{} decrypted",
        cfg.secrets_dir.display(),
        next_target.display(),
        planned.len()
    );
    if let Some(g) = previous {
        text.push_str(&format!(", previous generation {g} kept"));
    }
    if !pruned.is_empty() {
        text.push_str(&format!(", pruned {pruned:?}"));
    }
    text.push('\n');
    let mut secrets_json = Vec::new();
    for (p, o) in planned.iter().zip(&outcomes) {
        let (outcome, err) = match o {
            Outcome::Ok => ("ok", None),
            Outcome::Failed(r) => ("failed", Some(r.as_str())),
        };
        text.push_str(&install::report_line(
            if err.is_some() { "FAILED" } else { "ok" },
            &p.name,
            &p.path,
            &p.own,
            &err.map(|e| format!("  (optional) {e}")).unwrap_or_default(),
        ));
        secrets_json.push(secret_json(p, outcome, err));
    }
    Ok(StageOutput {
        actions,
        details: json!({
            "generation": next,
            "previous": previous,
            "pruned": pruned,
            "secrets_dir": cfg.secrets_dir,
            "secrets_mount_point": cfg.secrets_mount_point,
            "identities": ids.list.iter().map(|i| json!({"path": i.path, "kind": i.kind.as_str(), "public": i.public})).collect::<Vec<_>>(),
            "secrets": secrets_json,
            "text": text,
        }),
    })
}

/// Decrypt every secret into the new generation (in parallel), then write the `symlink: false`
/// copies. Returns one outcome per planned secret.
fn fill_generation(
    planned: &[Planned],
    gen_host: &Path,
    ids: &Identities,
    cap: u64,
) -> Result<Vec<Outcome>> {
    // Subdirectories for names with '/', made up front (single-threaded).
    for p in planned {
        install::make_parents(gen_host, &p.name, None)?;
    }
    let mut outcomes = decrypt_all(planned, gen_host, ids, cap);
    for (p, o) in planned.iter().zip(outcomes.iter_mut()) {
        if p.direct && matches!(o, Outcome::Ok) {
            if let Err(e) = write_direct(p, gen_host) {
                *o = Outcome::Failed(format!("{e:#}"));
            }
        }
    }
    Ok(outcomes)
}

fn decrypt_all(planned: &[Planned], gen_host: &Path, ids: &Identities, cap: u64) -> Vec<Outcome> {
    let n = planned.len();
    let workers = std::thread::available_parallelism()
        .map(|w| w.get())
        .unwrap_or(1)
        .clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Outcome>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let o = match install_one(&planned[i], gen_host, ids, cap) {
                    Ok(()) => Outcome::Ok,
                    Err(r) => Outcome::Failed(r),
                };
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Outcome::Failed("not attempted".into()))
        })
        .collect()
}

/// Decrypt one secret into `<gen>/<name>`: the header is checked and the file key unwrapped
/// first; only then is the file created, with owner, group and mode set before any byte of
/// plaintext is written. On failure nothing is left at the path.
fn install_one(p: &Planned, gen_host: &Path, ids: &Identities, cap: u64) -> Result<(), String> {
    let ct = guard::read_regular(&p.file, ".age file", cap)?;
    let opened = decrypt::open(&ct, ids).map_err(|e| e.to_string())?;
    install::write_owned(&gen_host.join(&p.name), &p.own, |f| {
        opened
            .copy_to(f)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!(e.to_string()))
    })
    .map_err(|e| format!("{e:#}"))
}

/// `symlink: false` with a custom path: copy the decrypted file to `path` atomically (temp file
/// in the same directory, owner and mode first, rename), refusing a path not on ramfs/tmpfs.
fn write_direct(p: &Planned, gen_host: &Path) -> Result<()> {
    let dest = &p.path_host;
    let dir = dest.parent().context("path has no parent")?;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    if !generation::on_ram(dir)? {
        anyhow::bail!(
            "symlink: false: {} is not on ramfs or tmpfs; refusing to write a secret to disk",
            dir.display()
        );
    }
    let src = gen_host.join(&p.name);
    let name = dest
        .file_name()
        .context("path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.provision-tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    install::write_owned(&tmp, &p.own, |out| {
        let mut input =
            fs::File::open(&src).with_context(|| format!("opening {}", src.display()))?;
        std::io::copy(&mut input, out).with_context(|| format!("writing {}", tmp.display()))?;
        Ok(out.flush()?)
    })?;
    fs::rename(&tmp, dest)
        .with_context(|| format!("renaming onto {}", dest.display()))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

fn dry_run(
    ctx: &Context,
    cfg: &SecretsConfig,
    planned: &[Planned],
    gens: &Generations,
) -> StageOutput {
    let mut actions = Vec::new();
    let mut problems = Vec::new();
    let mounted = generation::mounted_type(&gens.mount_host).ok().flatten();
    match mounted.as_deref() {
        Some("ramfs") | Some("tmpfs") => {}
        Some(t) => problems.push(format!(
            "{} is mounted as {t}, not ramfs: the run would refuse",
            cfg.secrets_mount_point.display()
        )),
        None => actions.push(format!(
            "mount ramfs on {} (nodev,nosuid,mode=0751)",
            cfg.secrets_mount_point.display()
        )),
    }
    let (paths, defaults) = identity_paths(ctx, cfg);
    let mut id_json = Vec::new();
    let mut any_id = false;
    // A problem the real run would stop at (exit 8); a missing optional secret is not one.
    let mut fatal = false;
    for p in &paths {
        let present = fs::metadata(p).map(|m| m.is_file()).unwrap_or(false);
        any_id |= present;
        if !present && !defaults {
            problems.push(format!("identity {}: missing", p.display()));
            fatal = true;
        }
        id_json.push(json!({"path": p, "present": present}));
    }
    if !any_id && !planned.is_empty() {
        problems.push("no identity file present".into());
        fatal = true;
    }
    let gen_target = gens.next_target();
    let mut secrets_json = Vec::new();
    for p in planned {
        let exists = p.file.is_file();
        if !exists {
            fatal |= !p.optional;
            problems.push(format!(
                "secret {}: {} does not exist{}",
                p.name,
                p.file.display(),
                if p.optional { " (optional)" } else { "" }
            ));
        }
        actions.push(format!(
            "decrypt {} -> {} ({}:{} {})",
            p.file.display(),
            gen_target.join(&p.name).display(),
            p.own.owner,
            p.own.group,
            mode_str(p.own.mode)
        ));
        secrets_json.push(secret_json(
            p,
            "planned",
            (!exists).then_some("encrypted file missing"),
        ));
    }
    if !planned.is_empty() {
        actions.push(format!(
            "switch {} -> {}",
            cfg.secrets_dir.display(),
            gen_target.display()
        ));
        for p in planned {
            if p.link {
                actions.push(format!(
                    "link {} -> {}{}",
                    p.path.display(),
                    cfg.secrets_dir.join(&p.name).display(),
                    install::replacing(p.replaces)
                ));
            } else if p.direct {
                actions.push(format!(
                    "write {} (symlink: false){}",
                    p.path.display(),
                    install::replacing(p.replaces)
                ));
            }
        }
        for g in &gens.existing {
            if Some(*g) != gens.current {
                actions.push(format!("remove old generation {g}"));
            }
        }
    }
    install::dry_run_output(
        "secrets",
        actions,
        problems,
        fatal,
        json!({
            "generation": gens.current,
            "next_generation": gens.next,
            "identities": id_json,
            "secrets": secrets_json,
        }),
    )
}

/// What is there now: the mount, the live generation, and per secret whether it is present.
pub fn status(ctx: &Context, cfg: &SecretsConfig) -> serde_json::Value {
    let gens = Generations::scan(ctx, "secrets", &cfg.secrets_dir, &cfg.secrets_mount_point);
    let mounted = generation::mounted_type(&gens.mount_host).ok().flatten();
    let secrets: Vec<serde_json::Value> = cfg
        .secrets
        .iter()
        .map(|s| {
            let file_present = gens.present(&s.name);
            let default_path = cfg.secrets_dir.join(&s.name);
            let path = s.path.clone().unwrap_or_else(|| default_path.clone());
            let path_present = if path == default_path {
                file_present
            } else if s.symlink {
                file_present
                    && fs::read_link(ctx.path(&path))
                        .map(|t| t == default_path)
                        .unwrap_or(false)
            } else {
                ctx.path(&path).is_file()
            };
            json!({
                "name": s.name,
                "path": path,
                "optional": s.optional,
                "present": path_present,
            })
        })
        .collect();
    json!({
        "secrets_dir": cfg.secrets_dir,
        "secrets_mount_point": cfg.secrets_mount_point,
        "mounted": mounted,
        "generation": gens.current,
        "generations": gens.existing,
        "secrets": secrets,
    })
}
