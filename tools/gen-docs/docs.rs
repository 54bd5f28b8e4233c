//! `provision(8)` and the bash, zsh and fish completions, made from the clap definitions
//! (clap_mangen, clap_complete) plus what clap does not know, each taken from the code that
//! defines it: the exit codes from `provision::exit::Code::ALL`, the kernel command line keys
//! from `provision::cmdline::KEYS`, the default paths from the crate's `DEFAULT_*` constants and
//! the units from `units/` (their `Description=`). Used by the `provision-gen-docs` example and
//! by `tests/gen_docs.rs`; nothing here is in the shipped binary.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Arg, Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

use provision::cmdline::{self, KEYS};
use provision::exit::Code;

/// The man page's file name; installed as `/usr/share/man/man8/provision.8`.
pub const MAN_FILE: &str = "provision.8";

/// Each shell, the file written for it and where a package installs that file.
pub const COMPLETIONS: &[(Shell, &str, &str)] = &[
    (
        Shell::Bash,
        "provision.bash",
        "/usr/share/bash-completion/completions/provision",
    ),
    (
        Shell::Zsh,
        "_provision",
        "/usr/share/zsh/vendor-completions/_provision",
    ),
    (
        Shell::Fish,
        "provision.fish",
        "/usr/share/fish/vendor_completions.d/provision.fish",
    ),
];

/// Where the package installs the units (README "Installing": by hand, /etc/systemd/system).
const UNIT_DIR: &str = "/usr/lib/systemd/system";

const SEE_ALSO: &[(&str, &str)] = &[
    ("systemctl", "1"),
    ("journalctl", "1"),
    ("systemd.service", "5"),
    ("kernel-command-line", "7"),
    ("bootparam", "7"),
    ("lvm", "8"),
    ("lvm.conf", "5"),
    ("sgdisk", "8"),
    ("parted", "8"),
    ("wipefs", "8"),
    ("mkfs", "8"),
    ("e2fsck", "8"),
    ("mount", "8"),
    ("swapon", "8"),
    ("age", "1"),
    ("ssh-keygen", "1"),
];

/// The real command line definition of the shipped binary.
pub fn command() -> Command {
    provision::cli::Cli::command()
}

/// The repository's unit directory (the generator runs from a checkout).
pub fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("units")
}

/// A systemd unit shipped with provision.
#[derive(Debug, Clone)]
pub struct Unit {
    /// File name, e.g. `provision-disks.service`.
    pub name: String,
    /// Its `Description=`, without the `provision: ` every one starts with.
    pub description: String,
}

/// The `provision-*` units in `dir`, sorted by name; a unit without `Description=` is an error.
pub fn read_units(dir: &Path) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("{}: reading units", dir.display()))?;
    for e in entries {
        let path = e
            .with_context(|| format!("{}: reading units", dir.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("provision-")
            || !(name.ends_with(".service") || name.ends_with(".target"))
        {
            continue;
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("{}: reading", path.display()))?;
        let description = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Description="))
            .with_context(|| format!("{}: no Description=", path.display()))?;
        let description = description
            .strip_prefix("provision: ")
            .unwrap_or(description);
        units.push(Unit {
            name: name.to_string(),
            description: description.trim().to_string(),
        });
    }
    anyhow::ensure!(!units.is_empty(), "{}: no provision-* units", dir.display());
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

/// Write the man page and the three completions into `out` (created if missing); returns the
/// paths written.
pub fn write_all(out: &Path, units_dir: &Path) -> Result<Vec<PathBuf>> {
    let units = read_units(units_dir)?;
    fs::create_dir_all(out).with_context(|| format!("{}: creating", out.display()))?;
    let mut files = vec![(out.join(MAN_FILE), man_page(command(), &units).into_bytes())];
    for (shell, file, _) in COMPLETIONS {
        files.push((out.join(file), completion(command(), *shell)));
    }
    for (path, bytes) in &files {
        fs::write(path, bytes).with_context(|| format!("{}: writing", path.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// One shell's completion script for `cmd` (named `provision`).
pub fn completion(mut cmd: Command, shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "provision", &mut buf);
    buf
}

/// `provision(8)` in roff (man macros), ASCII only.
pub fn man_page(mut cmd: Command, units: &[Unit]) -> String {
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .title(cmd.get_name().to_uppercase())
        .section("8");
    let mut out: Vec<u8> = Vec::new();
    let vec_write = "writing to a Vec";
    man.render_title(&mut out).expect(vec_write);
    // No hyphenation: it would split flags (`--cmd-line`) and keys at line ends; left-aligned,
    // so a long path or key does not stretch the spaces of its line.
    Roff::new()
        .control("nh", [])
        .control("ad", ["l"])
        .to_writer(&mut out)
        .expect(vec_write);
    man.render_name_section(&mut out).expect(vec_write);
    synopsis(&cmd).to_writer(&mut out).expect(vec_write);
    man.render_description_section(&mut out).expect(vec_write);
    man.render_options_section(&mut out).expect(vec_write);
    let mut r = Roff::new();
    commands(&mut r, &cmd);
    exit_status(&mut r);
    kernel_cmdline(&mut r);
    files(&mut r, units);
    see_also(&mut r);
    out.extend(r.render().into_bytes());
    ascii_only(&dedup_preamble(
        &String::from_utf8(out).expect("roff renders UTF-8"),
    ))
}

/// `provision [--config FILE] … COMMAND`: every visible flag with its value name, then the
/// commands (clap_mangen's own synopsis leaves the value names out).
fn synopsis(cmd: &Command) -> Roff {
    let mut line = vec![bold(cmd.get_name()), roman(" ")];
    for a in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
    {
        line.push(roman("["));
        line.extend(flag_names(a, "|"));
        line.extend(value_names(a));
        line.push(roman("] "));
    }
    let subs: Vec<&str> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(Command::get_name)
        .collect();
    if !subs.is_empty() {
        line.push(italic("COMMAND"));
    }
    let mut r = Roff::new();
    r.control("SH", ["SYNOPSIS"]).text(line);
    if !subs.is_empty() {
        r.control("PP", []);
        let mut l = vec![italic("COMMAND"), roman(" is one of ")];
        for (i, s) in subs.iter().enumerate() {
            if i > 0 {
                l.push(roman(", "));
            }
            l.push(bold(*s));
        }
        l.push(roman("."));
        r.text(l);
    }
    r
}

/// `-v|--verbose`, `--config`: the flag's names in bold, joined by `sep`.
fn flag_names(a: &Arg, sep: &str) -> Vec<Inline> {
    let mut v = Vec::new();
    if let Some(s) = a.get_short() {
        v.push(bold(format!("-{s}")));
    }
    if let Some(l) = a.get_long() {
        if !v.is_empty() {
            v.push(roman(sep));
        }
        v.push(bold(format!("--{l}")));
    }
    v
}

/// ` FILE` for a flag that takes a value, nothing for a switch.
fn value_names(a: &Arg) -> Vec<Inline> {
    if !a.get_num_args().is_some_and(|r| r.takes_values()) {
        return Vec::new();
    }
    let possible: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if !possible.is_empty() {
        return vec![roman(" "), bold(possible.join("|"))];
    }
    match a.get_value_names() {
        Some(names) => names.iter().map(|n| italic(format!(" {n}"))).collect(),
        None => vec![italic(format!(" {}", a.get_id().as_str().to_uppercase()))],
    }
}

/// COMMANDS: every subcommand, recursively, with its help and the flags of its own (global flags
/// are under OPTIONS). clap's `help` subcommand is listed once, with its argument: its own
/// subcommands only mirror the others for completion.
fn commands(r: &mut Roff, cmd: &Command) {
    r.control("SH", ["COMMANDS"]);
    subcommands(r, cmd, cmd.get_name());
}

fn subcommands(r: &mut Roff, cmd: &Command, path: &str) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let path = format!("{path} {}", sub.get_name());
        let mut head = vec![bold(path.clone())];
        if is_clap_help(cmd, sub) {
            head.extend([roman(" ["), italic("COMMAND"), roman("]")]);
        }
        for p in sub.get_positionals().filter(|a| !a.is_hide_set()) {
            let name = p
                .get_value_names()
                .map(|n| n.join(" "))
                .unwrap_or_else(|| p.get_id().as_str().to_uppercase());
            head.push(roman(" ["));
            head.push(italic(name));
            head.push(roman("]"));
            if p.get_num_args().is_some_and(|n| n.max_values() > 1) {
                head.push(roman("..."));
            }
        }
        r.control("TP", []).text(head);
        let about = sub.get_long_about().or_else(|| sub.get_about());
        for line in about.map(|a| a.to_string()).unwrap_or_default().lines() {
            if !line.trim().is_empty() {
                r.text([roman(line.trim())]);
            }
        }
        let own: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| {
                !a.is_hide_set()
                    && !a.is_positional()
                    && !a.is_global_set()
                    && !matches!(a.get_id().as_str(), "help" | "version")
            })
            .collect();
        if !own.is_empty() {
            r.control("RS", []);
            for a in own {
                let mut head = flag_names(a, ", ");
                head.extend(value_names(a));
                r.control("TP", []).text(head);
                let help = a.get_long_help().or_else(|| a.get_help());
                r.text([roman(help.map(|h| h.to_string()).unwrap_or_default())]);
            }
            r.control("RE", []);
        }
        if !is_clap_help(cmd, sub) {
            subcommands(r, sub, &path);
        }
    }
}

/// clap's generated `help` subcommand of `parent` (`provision help [COMMAND]`), whose own
/// subcommands are copies of its siblings.
pub fn is_clap_help(parent: &Command, sub: &Command) -> bool {
    sub.get_name() == "help" && !parent.is_disable_help_subcommand_set()
}

/// EXIT STATUS from `Code::ALL`: every code with its documented meaning.
fn exit_status(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    for c in Code::ALL {
        r.control("TP", []).text([bold(c.as_i32().to_string())]);
        r.text(markdown(&c.meaning()));
    }
}

/// KERNEL COMMAND LINE from `cmdline::KEYS`: the parsing rules, then every key.
fn kernel_cmdline(r: &mut Roff) {
    let p = provision::config::DEFAULT_PREFIX;
    let words = |ws: &[&str]| ws.join(", ");
    r.control("SH", ["KERNEL COMMAND LINE"]);
    r.text(markdown(&format!(
        "Read from `/proc/cmdline` (or `--cmdline`, `--cmdline-file`) with the kernel's own \
         rules: whitespace splits parameters outside double quotes; `key=\"a b\"` and \
         `\"key=a b\"` both give `a b`; `-` and `_` are the same in key names; a bare key is a \
         true boolean; the last occurrence wins; everything after a bare `--` belongs to init. \
         Booleans are {} for true and {} for false, in any case. The prefix is `{p}` unless the \
         config sets `cmdline_prefix`. A recognised key whose value cannot be parsed is an error \
         for the stage that uses it; for `provision_disks` and `wipe_foreign` it stops the \
         destructive path. An unknown key under the prefix is warned about.",
        words(cmdline::TRUE_WORDS),
        words(cmdline::FALSE_WORDS),
    )));
    for k in KEYS {
        r.control("TP", []).text([bold(k.key(p))]);
        r.text(markdown(k.doc));
    }
}

/// FILES from the crate's defaults and the units. Paths are under `--root`.
fn files(r: &mut Roff, units: &[Unit]) {
    use provision::secrets;
    let mut entries: Vec<(String, String)> = vec![
        (
            provision::config::DEFAULT_CONFIG.into(),
            "The config file (`--config` names another). It names the layout (`disks.layout`, a \
             disko-schema YAML or JSON file, or `--layout`), the key bundle's URL and the secrets; \
             relative paths in it are relative to its directory."
                .into(),
        ),
        (
            "/proc/cmdline".into(),
            "The kernel command line, unless `--cmdline` or `--cmdline-file` is given.".into(),
        ),
        (
            provision::disks::lvm::DEFAULT_LVM_CONF.into(),
            "LVM's device filter (DRBD devices rejected), written by the disks stage on every \
             boot (`disks.lvm_conf`)."
                .into(),
        ),
    ];
    for (member, target) in provision::keys::default_members() {
        entries.push((
            target.path.display().to_string(),
            format!(
                "Written by the keys stage from the bundle's member `{member}` (the default \
                 `keys.members`), with its public key beside it as `.pub`."
            ),
        ));
    }
    let host_keys = secrets::DEFAULT_IDENTITY_PATHS
        .iter()
        .chain(secrets::sops::stage::DEFAULT_SSH_KEY_PATHS);
    for path in host_keys {
        entries.push((
            path.to_string(),
            "A host key the secrets stage decrypts with, when it exists (the default \
             `secrets.identity_paths` and `sops.age.sshKeyPaths`)."
                .into(),
        ));
    }
    entries.extend([
        (
            secrets::DEFAULT_SECRETS_DIR.to_string(),
            format!(
                "agenix secrets: a symlink to the live generation under `{}` \
                 (`secrets.secrets_dir`).",
                secrets::DEFAULT_MOUNT_POINT
            ),
        ),
        (
            secrets::DEFAULT_MOUNT_POINT.to_string(),
            "Generations of agenix secrets, on ramfs (`secrets.secrets_mount_point`).".into(),
        ),
        (
            secrets::sops::stage::DEFAULT_SECRETS_DIR.to_string(),
            format!(
                "sops-nix secrets: a symlink to the live generation under `{}`; templates in \
                 `{}/` (`sops.secretsDir`).",
                secrets::sops::stage::DEFAULT_MOUNT_POINT,
                secrets::sops::stage::RENDERED
            ),
        ),
        (
            secrets::sops::stage::DEFAULT_MOUNT_POINT.to_string(),
            "Generations of sops-nix secrets, on ramfs (`sops.secretsMountPoint`).".into(),
        ),
        (
            provision::report::DEFAULT_REPORT.to_string(),
            "Each stage's outcome this boot (start, end, duration, actions, outcome, error), \
             which `provision status` shows (`report`)."
                .into(),
        ),
        (
            provision::metrics::DEFAULT_DIR.to_string(),
            "Prometheus textfile-collector files, one per stage (`provision_disks.prom`, …), \
             for node_exporter (`metrics_dir`)."
                .into(),
        ),
    ]);
    for u in units {
        entries.push((
            format!("{UNIT_DIR}/{}", u.name),
            format!("{}.", capitalise(&u.description)),
        ));
    }
    // One entry per path: the host keys are both the keys stage's output and the secrets stage's
    // identities.
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (path, what) in entries {
        match merged.iter_mut().find(|(p, _)| *p == path) {
            Some((_, w)) if !w.contains(&what) => w.push(what),
            Some(_) => {}
            None => merged.push((path, vec![what])),
        }
    }
    r.control("SH", ["FILES"]);
    r.text(markdown(
        "Default paths; every path on the target system is under `--root`. The units are \
         installed by the package; by hand they go to `/etc/systemd/system`.",
    ));
    for (path, what) in merged {
        r.control("TP", []).text([bold(path)]);
        r.text(markdown(&what.join(" ")));
    }
}

fn see_also(r: &mut Roff) {
    r.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, (name, sec)) in SEE_ALSO.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(*name));
        line.push(roman(format!("({sec})")));
    }
    r.text(line);
    r.control("PP", []);
    r.text(markdown(
        "The README of provision; disko's layout schema: https://github.com/nix-community/disko; \
         agenix: https://github.com/ryantm/agenix; sops-nix: https://github.com/Mic92/sops-nix.",
    ));
}

/// The Markdown inline of the docs (`code`, **bold**) as roff: both in bold, the rest roman.
/// An unpaired marker is a bug in a doc string: the test checks none reaches the page.
pub fn markdown(s: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let tick = rest.find('`');
        let star = rest.find("**");
        let (at, marker) = match (tick, star) {
            (Some(t), Some(s)) if s < t => (s, "**"),
            (Some(t), _) => (t, "`"),
            (None, Some(s)) => (s, "**"),
            (None, None) => break,
        };
        let Some(len) = rest[at + marker.len()..].find(marker) else {
            break;
        };
        if at > 0 {
            out.push(roman(&rest[..at]));
        }
        out.push(bold(&rest[at + marker.len()..at + marker.len() + len]));
        rest = &rest[at + 2 * marker.len() + len..];
    }
    if !rest.is_empty() {
        out.push(roman(rest));
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The roff crate writes its apostrophe preamble at the start of every rendering: keep the first.
fn dedup_preamble(s: &str) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    match s.find(PREAMBLE) {
        Some(i) => {
            let (head, tail) = s.split_at(i + PREAMBLE.len());
            format!("{head}{}", tail.replace(PREAMBLE, ""))
        }
        None => s.to_string(),
    }
}

/// Non-ASCII characters (—, …, →) as groff's `\[uXXXX]` escapes, so the page renders the same
/// with or without preconv(1) and in any locale.
fn ascii_only(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out
}
