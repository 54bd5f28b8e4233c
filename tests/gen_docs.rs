//! `provision(8)` and the completions (`tools/gen-docs`), generated into a tempdir and checked
//! against the real clap `Command` (walked recursively), the exit codes of `src/exit.rs` and the
//! kernel cmdline keys of `src/cmdline.rs`; the page rendered by groff and man-db, the completions
//! loaded and asked by bash, zsh and fish. tools/install-deps installs groff, man-db, zsh and fish;
//! a test whose program is missing says so and skips. The README's two tables are held to the code.

#[path = "../tools/gen-docs/docs.rs"]
mod docs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use clap::{Arg, Command, CommandFactory, Parser};
use provision::cmdline::KEYS;
use provision::exit::Code;

struct Generated {
    _dir: tempfile::TempDir,
    out: PathBuf,
    roff: String,
}

fn generate() -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("docs");
    let written = docs::write_all(&out, &docs::units_dir()).unwrap();
    let mut names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_provision",
            "provision.8",
            "provision.bash",
            "provision.fish"
        ]
    );
    let roff = std::fs::read_to_string(out.join(docs::MAN_FILE)).unwrap();
    Generated {
        _dir: dir,
        out,
        roff,
    }
}

/// The roff source as text: escapes undone, fonts dropped, one line per text line.
fn deroff(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\[u") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(']').unwrap() + i;
        let c = u32::from_str_radix(&rest[i + 3..end], 16).unwrap();
        out.push(char::from_u32(c).unwrap());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\*(Aq", "'")
        .replace("\\&", "")
}

/// Sections of the page by `.SH` name, each as its text lines joined by spaces (control lines
/// other than `.SH` dropped).
fn sections(roff: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in deroff(roff).lines() {
        if let Some(name) = line.strip_prefix(".SH ") {
            out.push((name.trim_matches('"').to_string(), String::new()));
        } else if !line.starts_with('.') {
            if let Some((_, text)) = out.last_mut() {
                text.push_str(line);
                text.push(' ');
            }
        }
    }
    out
}

fn section(roff: &str, name: &str) -> String {
    sections(roff)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .1
}

/// The Markdown inline of the docs without its markers, as the page shows it.
fn md_plain(s: &str) -> String {
    s.replace("**", "").replace('`', "")
}

/// `flag` occurs in `text` as a whole word (`--config` is not found in `--config-file`).
fn has_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + flag.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The real command, built (help and version flags and the help subcommand added, globals
/// propagated), and every (sub)command in it with its path, not descending into clap's `help`,
/// whose subcommands are checked to be copies of real ones.
fn walk() -> (Command, Vec<(String, Command)>) {
    let mut root = docs::command();
    root.build();
    let mut all = Vec::new();
    fn rec(cmd: &Command, path: &str, all: &mut Vec<(String, Command)>) {
        let names: Vec<&str> = cmd.get_subcommands().map(Command::get_name).collect();
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            all.push((p.clone(), sub.clone()));
            if sub.get_name() == "help" && !cmd.is_disable_help_subcommand_set() {
                for h in sub.get_subcommands() {
                    assert!(names.contains(&h.get_name()), "help {}", h.get_name());
                    assert_eq!(h.get_arguments().count(), 0, "help {}", h.get_name());
                }
            } else {
                rec(sub, &p, all);
            }
        }
    }
    rec(&root, "provision", &mut all);
    assert!(
        all.len() >= 7,
        "{:?}",
        all.iter().map(|a| &a.0).collect::<Vec<_>>()
    );
    (root, all)
}

fn flags(a: &Arg) -> Vec<String> {
    let mut v: Vec<String> = a.get_short().map(|s| format!("-{s}")).into_iter().collect();
    v.extend(a.get_long().map(|l| format!("--{l}")));
    v
}

/// A subcommand's own arguments: not the globals (listed under OPTIONS) nor help/version.
fn own_args(cmd: &Command) -> Vec<&Arg> {
    cmd.get_arguments()
        .filter(|a| {
            !a.is_hide_set()
                && !a.is_global_set()
                && !matches!(a.get_id().as_str(), "help" | "version")
        })
        .collect()
}

#[test]
fn page_has_its_sections_in_order() {
    let g = generate();
    let names: Vec<String> = sections(&g.roff).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "EXIT STATUS",
            "KERNEL COMMAND LINE",
            "FILES",
            "SEE ALSO"
        ]
    );
    assert!(g.roff.contains(".TH PROVISION 8 "), "{}", &g.roff[..200]);
    assert!(g.roff.is_ascii(), "non-ASCII left in the page");
    assert_eq!(
        g.roff.matches(".ds Aq").count(),
        2,
        "one apostrophe preamble"
    );
}

#[test]
fn page_names_every_flag_and_subcommand() {
    let g = generate();
    let (root, all) = walk();
    let options = section(&g.roff, "OPTIONS");
    let synopsis = section(&g.roff, "SYNOPSIS");
    let commands = section(&g.roff, "COMMANDS");
    let mut n = 0;
    for a in root.get_arguments().filter(|a| !a.is_hide_set()) {
        for f in flags(a) {
            assert!(has_flag(&options, &f), "OPTIONS lacks {f}");
            assert!(has_flag(&synopsis, &f), "SYNOPSIS lacks {f}");
            n += 1;
        }
        if let Some(h) = a.get_long_help().or_else(|| a.get_help()) {
            assert!(options.contains(&h.to_string()), "OPTIONS lacks {h}");
        }
        for v in a.get_possible_values() {
            assert!(
                options.contains(v.get_name()),
                "OPTIONS lacks value {}",
                v.get_name()
            );
        }
    }
    assert!(n >= 13, "{n} flags");
    for (path, sub) in &all {
        assert!(
            commands.contains(&format!("{path} ")),
            "COMMANDS lacks {path}"
        );
        let name = sub.get_name();
        assert!(synopsis.contains(&format!(" {name}")) || path.matches(' ').count() > 1);
        if let Some(about) = sub.get_about() {
            assert!(
                commands.contains(&about.to_string()),
                "COMMANDS lacks {about}"
            );
        }
        for a in own_args(sub) {
            for f in flags(a) {
                assert!(has_flag(&commands, &f), "COMMANDS lacks {path} {f}");
            }
        }
    }
}

/// The generator lists a subcommand's own flags under it: today no subcommand has one, so
/// this checks that part on a command that does.
#[test]
fn subcommand_flags_are_listed_under_their_command() {
    let cmd = Command::new("provision")
        .arg(Arg::new("root").long("root").global(true).help("Root."))
        .subcommand(
            Command::new("disks").about("The disks.").arg(
                Arg::new("phase")
                    .long("phase")
                    .short('p')
                    .value_name("PHASE")
                    .help("early or late"),
            ),
        );
    let units = docs::read_units(&docs::units_dir()).unwrap();
    let page = docs::man_page(cmd, &units);
    let commands = section(&page, "COMMANDS");
    assert!(
        commands.contains("provision disks The disks. -p, --phase PHASE early or late"),
        "{commands}"
    );
    assert!(
        !commands.contains("--root"),
        "a global is listed under OPTIONS only"
    );
}

#[test]
fn page_has_every_exit_code_of_src_exit_rs() {
    let g = generate();
    let text = section(&g.roff, "EXIT STATUS");
    for c in Code::ALL {
        let entry = format!("{} {} ", c.as_i32(), md_plain(&c.meaning()));
        assert!(text.contains(&entry), "EXIT STATUS lacks {entry:?}: {text}");
    }
    let tp = g.roff.split(".SH \"EXIT STATUS\"").nth(1).unwrap();
    let tp = tp.split(".SH ").next().unwrap().matches(".TP").count();
    assert_eq!(tp, Code::ALL.len(), "one entry per code");

    // Code::ALL comes out of the same macro lines as the enum; read the source independently.
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/exit.rs")).unwrap();
    let block = src.split("exit_codes! {").nth(1).unwrap();
    let block = &block[..block.find("\n}").unwrap()];
    let mut declared: Vec<i32> = block
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.trim().split_once(" = ")?;
            rest.split(',').next()?.parse().ok()
        })
        .collect();
    declared.sort();
    let all: Vec<i32> = Code::ALL.iter().map(|c| c.as_i32()).collect();
    assert_eq!(declared, all, "src/exit.rs declares these codes");
}

#[test]
fn page_has_every_cmdline_key_of_src_cmdline_rs() {
    let g = generate();
    let text = section(&g.roff, "KERNEL COMMAND LINE");
    for k in KEYS {
        let entry = format!(
            "{} {} ",
            k.key(provision::config::DEFAULT_PREFIX),
            md_plain(k.doc)
        );
        assert!(text.contains(&entry), "KERNEL COMMAND LINE lacks {entry:?}");
    }
    for w in provision::cmdline::TRUE_WORDS
        .iter()
        .chain(provision::cmdline::FALSE_WORDS)
    {
        assert!(text.contains(&format!(" {w}")), "boolean word {w}");
    }
    // Every key listed is one the parser knows (no stale entry).
    let known: Vec<String> = KEYS.iter().map(|k| k.key("homelab")).collect();
    for line in deroff(g.roff.split(".SH \"KERNEL COMMAND LINE\"").nth(1).unwrap())
        .split(".SH ")
        .next()
        .unwrap()
        .split(".TP\n")
        .skip(1)
    {
        let key = line.lines().next().unwrap();
        assert!(known.iter().any(|k| k == key), "listed but unknown: {key}");
        let s = provision::cmdline::settings(key, "homelab");
        assert!(s.unknown.is_empty(), "{key}");
    }
    // Only marked-up text reaches the page: no Markdown marker left in the generated sections.
    for name in ["EXIT STATUS", "KERNEL COMMAND LINE", "FILES", "SEE ALSO"] {
        let t = section(&g.roff, name);
        assert!(!t.contains('`') && !t.contains("**"), "{name}: {t}");
    }
}

#[test]
fn page_lists_the_files() {
    let g = generate();
    let text = section(&g.roff, "FILES");
    let mut paths = vec![
        provision::config::DEFAULT_CONFIG.to_string(),
        provision::report::DEFAULT_REPORT.to_string(),
        provision::metrics::DEFAULT_DIR.to_string(),
        provision::disks::lvm::DEFAULT_LVM_CONF.to_string(),
        provision::secrets::DEFAULT_SECRETS_DIR.to_string(),
        provision::secrets::DEFAULT_MOUNT_POINT.to_string(),
        provision::secrets::sops::stage::DEFAULT_SECRETS_DIR.to_string(),
        provision::secrets::sops::stage::DEFAULT_MOUNT_POINT.to_string(),
        "/proc/cmdline".to_string(),
    ];
    for m in provision::keys::default_members().values() {
        paths.push(m.path.display().to_string());
    }
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("units");
    for e in std::fs::read_dir(&units).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("provision-") {
            paths.push(format!("/usr/lib/systemd/system/{name}"));
        }
    }
    assert!(paths.len() >= 14, "{paths:?}");
    for p in &paths {
        assert!(text.contains(&format!("{p} ")), "FILES lacks {p}");
    }
    assert!(text.contains("Lay out (when asked) and mount the local disks."));
}

fn have(prog: &str) -> bool {
    let found = Proc::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: {prog} is not installed (tools/install-deps installs it)");
    }
    found
}

fn run(cmd: &mut Proc) -> (String, String) {
    let o = cmd.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{cmd:?}: {}\n{out}\n{err}", o.status);
    (out, err)
}

#[test]
fn page_renders_without_warnings() {
    if !have("groff") || !have("man") {
        return;
    }
    let g = generate();
    let page = g.out.join(docs::MAN_FILE);
    // Every groff warning, at the width of a terminal.
    let (_, err) = run(Proc::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z", "-rLL=78n"])
        .arg(&page));
    assert_eq!(err, "", "groff warnings");
    // man-db as a reader runs it (preconv, tbl, its own warning set).
    let (out, err) = run(Proc::new("man")
        .args(["--warnings=all", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env_remove("MAN_KEEP_FORMATTING"));
    assert_eq!(err, "", "man warnings");
    assert!(out.contains("EXIT STATUS") && out.contains("KERNEL COMMAND LINE"));

    // Rendered on lines long enough to hold each paragraph, so the text can be compared.
    let (out, _) = run(Proc::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou", "-rLL=2000n"])
        .arg(&page));
    let text = squeeze(&out.replace(['\u{2212}', '\u{2010}'], "-"));
    let (root, all) = walk();
    for a in root.get_arguments() {
        for f in flags(a) {
            assert!(has_flag(&text, &f), "rendered page lacks {f}");
        }
    }
    for (path, _) in &all {
        assert!(text.contains(path.as_str()), "rendered page lacks {path}");
    }
    for c in Code::ALL {
        let entry = format!("{} {}", c.as_i32(), md_plain(&c.meaning()));
        assert!(text.contains(&entry), "rendered page lacks {entry}");
    }
    for k in KEYS {
        let entry = format!("{} {}", k.key("homelab"), md_plain(k.doc));
        assert!(text.contains(&entry), "rendered page lacks {entry}");
    }
}

/// Asks bash's completion function what it offers after `words` (the last one being completed).
fn bash_complete(file: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; \
         COMP_POINT=${{#COMP_LINE}}; _provision provision \"${{COMP_WORDS[COMP_CWORD]}}\" \
         \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let (out, _) = run(Proc::new("bash").args(["--norc", "-c", &script]));
    out.lines().map(String::from).collect()
}

#[test]
fn bash_completion_loads_and_completes() {
    let g = generate();
    let file = g.out.join("provision.bash");
    let (out, err) = run(Proc::new("bash").args([
        "--norc",
        "-c",
        &format!("source '{}'; complete -p provision", file.display()),
    ]));
    assert_eq!(err, "");
    assert!(
        out.contains("-F _provision") && out.trim_end().ends_with(" provision"),
        "{out}"
    );

    let (root, all) = walk();
    let offered = bash_complete(&file, &["provision", ""]);
    for (path, _) in all.iter().filter(|(p, _)| p.matches(' ').count() == 1) {
        let name = path.rsplit(' ').next().unwrap();
        assert!(
            offered.iter().any(|o| o == name),
            "{name} not offered: {offered:?}"
        );
    }
    let offered = bash_complete(&file, &["provision", "--"]);
    for a in root.get_arguments() {
        if let Some(l) = a.get_long() {
            let f = format!("--{l}");
            assert!(offered.contains(&f), "{f} not offered: {offered:?}");
        }
    }
    assert_eq!(bash_complete(&file, &["provision", "--out"]), ["--output"]);
    assert_eq!(
        bash_complete(&file, &["provision", "--output", ""]),
        ["text", "json"]
    );
    assert_eq!(
        bash_complete(&file, &["provision", "disks", "--dry"]),
        ["--dry-run"]
    );
}

#[test]
fn zsh_completion_parses_and_registers() {
    if !have("zsh") {
        return;
    }
    let g = generate();
    let file = g.out.join("_provision");
    run(Proc::new("zsh").args(["-n"]).arg(&file));
    // Sourced outside compinit it registers itself with compdef (stubbed here) and defines
    // _provision. Asking it for completions needs an interactive shell (zpty): not done here.
    let (out, err) = run(Proc::new("zsh").args([
        "-f",
        "-c",
        &format!(
            "compdef() {{ print -r -- \"compdef $*\" }}; source '{}'; whence -w _provision",
            file.display()
        ),
    ]));
    assert_eq!(err, "");
    assert_eq!(out, "compdef _provision provision\n_provision: function\n");
    let text = std::fs::read_to_string(&file).unwrap();
    let (root, all) = walk();
    for a in root.get_arguments() {
        if let Some(l) = a.get_long() {
            let spec = |sep: &str| text.contains(&format!("--{l}{sep}["));
            assert!(spec("") || spec("="), "--{l}");
        }
    }
    for (path, _) in &all {
        let name = path.rsplit(' ').next().unwrap();
        assert!(text.contains(&format!("'{name}:")), "{name}");
    }
}

#[test]
fn fish_completion_parses_and_completes() {
    if !have("fish") {
        return;
    }
    let g = generate();
    let file = g.out.join("provision.fish");
    run(Proc::new("fish").arg("--no-execute").arg(&file));
    let ask = |line: &str| -> BTreeMap<String, String> {
        let (out, _) = run(Proc::new("fish").args([
            "--no-config",
            "-c",
            &format!("source '{}'; complete -C '{line}'", file.display()),
        ]));
        out.lines()
            .map(|l| {
                let (c, d) = l.split_once('\t').unwrap_or((l, ""));
                (c.to_string(), d.to_string())
            })
            .collect()
    };
    let (root, all) = walk();
    let offered = ask("provision ");
    for (path, sub) in all.iter().filter(|(p, _)| p.matches(' ').count() == 1) {
        let name = path.rsplit(' ').next().unwrap();
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert_eq!(offered.get(name), Some(&about), "{name}: {offered:?}");
    }
    let offered = ask("provision --");
    for a in root.get_arguments() {
        if let Some(l) = a.get_long() {
            assert!(
                offered.contains_key(&format!("--{l}")),
                "--{l}: {offered:?}"
            );
        }
    }
    // A value after `--output=`; after `--output ` clap_complete's fish script offers files
    // (its command guard cannot parse a line that ends in an option waiting for its value).
    let values: Vec<String> = ask("provision --output=").into_keys().collect();
    assert_eq!(values, ["--output=json", "--output=text"]);
    let values: Vec<String> = ask("provision disks --output=").into_keys().collect();
    assert_eq!(values, ["--output=json", "--output=text"]);
}

/// README's exit-code and kernel cmdline tables say what the code says (the page's sources).
#[test]
fn readme_tables_match_the_code() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = |heading: &str| -> Vec<String> {
        let after = readme
            .split(&format!("\n{heading}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("README has no {heading}"));
        after
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(String::from)
            .collect()
    };
    let want: Vec<String> = Code::ALL
        .iter()
        .map(|c| format!("| {} | {} |", c.as_i32(), c.meaning()))
        .collect();
    assert_eq!(
        table("### Exit codes"),
        want,
        "README's exit codes; from src/exit.rs:\n{}",
        want.join("\n")
    );
    let want: Vec<String> = KEYS
        .iter()
        .map(|k| format!("| `{}` | {} |", k.key("homelab"), k.doc))
        .collect();
    assert_eq!(
        table("## Kernel command line"),
        want,
        "README's cmdline keys; from src/cmdline.rs:\n{}",
        want.join("\n")
    );
}

/// Exit status 2 is clap's, for a usage error; `--help` ends with every code.
#[test]
fn usage_code_and_help_summary() {
    let e =
        provision::cli::Cli::try_parse_from(["provision", "--no-such-flag", "disks"]).unwrap_err();
    assert_eq!(e.exit_code(), Code::Usage.as_i32());
    let help = squeeze(
        &provision::cli::Cli::command()
            .render_long_help()
            .to_string(),
    );
    assert!(help.ends_with(&Code::help_summary()), "{help}");
}
