//! Hostile configs and roots for both sides of the secrets stage (agenix and sops-nix),
//! through the real binary with `--root` a tempdir: what is refused (and with which exit code
//! and message), and that nothing outside the secrets' own places is written or removed.
//! Skipped, saying why, when not root (ramfs) or without the age CLI.

#[path = "common/secrets_util.rs"]
mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Fx {
    root: tempfile::TempDir,
    conf: tempfile::TempDir,
    _unmount: util::Unmount,
}

impl Fx {
    /// A root with passwd/group, a config dir with an age identity + `a.age` (agenix) and the
    /// sops-nix test files `secrets.yaml` + `age-keys.txt`.
    fn new() -> Option<Fx> {
        if let Err(why) = util::mount_possible() {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nsvc:x:1000:1000::/var/empty:/bin/false\n",
        )
        .unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\nsvc:x:1000:\nkeys:x:96:\n").unwrap();
        let conf = tempfile::tempdir().unwrap();
        let id = conf.path().join("id.txt");
        let made = Command::new("age-keygen").arg("-o").arg(&id).output();
        let Some(made) = made.ok().filter(|o| o.status.success()) else {
            eprintln!("SKIPPED: no age-keygen");
            return None;
        };
        let public = String::from_utf8_lossy(&made.stderr)
            .split_whitespace()
            .last()
            .unwrap()
            .to_string();
        let mut c = Command::new("age")
            .args(["-e", "-r", &public, "-o"])
            .arg(conf.path().join("a.age"))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"agenix secret").unwrap();
        }
        assert!(c.wait().unwrap().success());
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sops-nix");
        for f in ["secrets.yaml", "age-keys.txt"] {
            fs::copy(data.join(f), conf.path().join(f)).unwrap();
        }
        let mut mounts = Vec::new();
        for d in [
            "run/agenix.d",
            "run/secrets.d",
            "run/a.d",
            "run/s.d",
            "var/lib",
            "etc",
        ] {
            mounts.push(r.join(d));
        }
        Some(Fx {
            _unmount: util::Unmount(mounts),
            root,
            conf,
        })
    }

    fn r(&self) -> &Path {
        self.root.path()
    }

    /// Run `provision [extra…] <cmd>` with `config` as the config file.
    fn run(&self, config: &str, extra: &[&str], cmd: &str) -> Output {
        let cfg = self.conf.path().join("config.yaml");
        fs::write(&cfg, config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_provision"))
            .arg("--root")
            .arg(self.r())
            .arg("--config")
            .arg(&cfg)
            .args(["--cmdline", ""])
            .args(extra)
            .arg(cmd)
            .output()
            .unwrap()
    }
}

/// An agenix section with secret `a`, `more` appended to the section.
fn agenix(more: &str) -> String {
    format!(
        "secrets:\n  identity_paths: [id.txt]\n  secrets:\n    - {{name: a, file: a.age}}\n{more}"
    )
}

/// A sops section with secret `s` (the sops-nix test file's `test_key`), `more` appended.
fn sops(more: &str) -> String {
    format!(
        "sops:\n  defaultSopsFile: secrets.yaml\n  age:\n    keyFile: age-keys.txt\n    \
         sshKeyPaths: []\n  secrets:\n    s: {{key: test_key}}\n{more}"
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn all_files(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            v.push(p.clone());
            if e.file_type().unwrap().is_dir() {
                v.extend(all_files(&p));
            }
        }
    }
    v.sort();
    v
}

/// Finding 1: a `secretsDir` / `secrets_dir` that is a populated real directory (the reviewer's
/// `/var/lib`, and `/run/provision`, where the report lives) is refused, exit 3, naming the
/// field and the path — in a dry run too — and nothing in it is touched. An empty directory is
/// replaced, as sops-nix does.
#[test]
fn populated_secrets_dir_is_refused_not_removed() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    fs::create_dir_all(r.join("var/lib/db")).unwrap();
    fs::write(r.join("var/lib/db/table"), b"rows").unwrap();
    let cases = [
        (agenix("  secrets_dir: /var/lib\n"), "secrets_dir /var/lib"),
        (sops("  secretsDir: /var/lib\n"), "secretsDir /var/lib"),
        (
            agenix("  secrets_dir: /run/provision\n"),
            "secrets_dir /run/provision",
        ),
        (
            sops("  secretsDir: /run/provision\n"),
            "secretsDir /run/provision",
        ),
    ];
    fs::create_dir_all(r.join("run/provision")).unwrap();
    fs::write(r.join("run/provision/keep"), b"x").unwrap();
    for (cfg, want) in &cases {
        for extra in [&["--dry-run"][..], &[][..]] {
            let out = fx.run(cfg, extra, "secrets");
            let t = text(&out);
            assert_eq!(out.status.code(), Some(3), "{extra:?} {cfg}\n{t}");
            assert!(t.contains(want) && t.contains("non-empty directory"), "{t}");
            assert_eq!(fs::read(r.join("var/lib/db/table")).unwrap(), b"rows");
            assert!(r.join("run/provision/keep").exists());
        }
    }
    // An empty directory is fine: replaced by the link.
    fs::create_dir_all(r.join("run/agenix")).unwrap();
    fs::create_dir_all(r.join("run/secrets")).unwrap();
    let out = fx.run(&format!("{}{}", agenix(""), sops("")), &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_link(r.join("run/agenix")).unwrap(),
        PathBuf::from("/run/agenix.d/1")
    );
    assert_eq!(
        fs::read(r.join("run/secrets.d/1/s")).unwrap(),
        b"test_value"
    );
    // A symlink that is not one of our generations is refused too.
    let out = fx.run(&agenix("  secrets_dir: /srv\n"), &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    fs::remove_file(r.join("srv")).unwrap();
    std::os::unix::fs::symlink("/var/lib", r.join("srv")).unwrap();
    let out = fx.run(&agenix("  secrets_dir: /srv\n"), &[], "secrets");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("secrets_dir /srv is a symlink to /var/lib"),
        "{t}"
    );
    assert!(all_files(&r.join("var/lib")).contains(&r.join("var/lib/db/table")));
}

/// Finding 2: a `secretsMountPoint` / `secrets_mount_point` on a populated directory that is
/// not a ramfs (the reviewer's `/etc`) is refused, exit 3, in a dry run too; nothing is
/// mounted over it.
#[test]
fn populated_mount_point_is_refused_not_mounted_over() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    for (cfg, want) in [
        (
            agenix("  secrets_mount_point: /etc\n"),
            "secrets_mount_point /etc",
        ),
        (
            sops("  secretsMountPoint: /etc\n"),
            "secretsMountPoint /etc",
        ),
    ] {
        for extra in [&["--dry-run"][..], &[][..]] {
            let out = fx.run(&cfg, extra, "secrets");
            let t = text(&out);
            assert_eq!(out.status.code(), Some(3), "{extra:?} {cfg}\n{t}");
            assert!(t.contains(want) && t.contains("non-empty directory"), "{t}");
            assert!(
                fs::read_to_string(r.join("etc/passwd"))
                    .unwrap()
                    .contains("svc:x:1000"),
                "/etc hidden"
            );
            assert_eq!(
                provision::secrets::generation::mounted_type(&r.join("etc")).unwrap(),
                None
            );
        }
    }
    // Our own ramfs there already (a second run) is fine.
    for _ in 0..2 {
        let out = fx.run(&format!("{}{}", agenix(""), sops("")), &[], "secrets");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
}

/// Finding 3: the agenix and sops-nix sides may not share or nest each other's link, mount
/// point or paths, and no configured path may have a `.` or `..` component (the reviewer's
/// `/run/secrets.d/../agenix.d` got past the containment check). Refused when the config is
/// loaded: exit 3, naming the config file and both fields; nothing made.
#[test]
fn the_two_sides_stay_apart_and_paths_are_plain() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    let cases = [
        (
            sops("  secretsDir: /run/agenix\n  secretsMountPoint: /run/agenix.d\n"),
            vec!["secrets.secrets_dir /run/agenix and sops.secretsDir /run/agenix overlap"],
        ),
        (
            sops("  secretsMountPoint: /run/secrets.d/../agenix.d\n"),
            vec!["sops.secretsMountPoint /run/secrets.d/../agenix.d: '.' and '..'"],
        ),
        (
            sops("  secretsDir: /run/./agenix\n"),
            vec!["sops.secretsDir /run/./agenix: '.' and '..'"],
        ),
        (
            sops("  secretsDir: /run/agenix.d/s\n"),
            vec!["secrets.secrets_mount_point /run/agenix.d and sops.secretsDir /run/agenix.d/s"],
        ),
        (
            format!(
                "{}    - {{name: b, file: a.age, path: /run/secrets/b}}\n",
                agenix("")
            ),
            vec!["secrets.secrets[\"b\"].path /run/secrets/b and sops.secretsDir /run/secrets"],
        ),
        (
            format!(
                "{}    - {{name: b, file: a.age, path: /etc/../../tmp/escape}}\n",
                agenix("")
            ),
            vec!["secrets.secrets[\"b\"].path /etc/../../tmp/escape: '.' and '..'"],
        ),
        (
            format!(
                "{}    t: {{key: test_key, path: /etc/x/../../y}}\n",
                sops("")
            ),
            vec!["sops.secrets.\"t\".path /etc/x/../../y: '.' and '..'"],
        ),
    ];
    for (sops_part, wants) in &cases {
        let cfg = if sops_part.starts_with("secrets:") {
            format!("{sops_part}{}", sops(""))
        } else {
            format!("{}{sops_part}", agenix(""))
        };
        for (extra, cmd) in [
            (&["--dry-run"][..], "secrets"),
            (&[][..], "secrets"),
            (&[][..], "validate"),
        ] {
            let out = fx.run(&cfg, extra, cmd);
            let t = text(&out);
            assert_eq!(out.status.code(), Some(3), "{cmd} {extra:?} {cfg}\n{t}");
            assert!(t.contains("config.yaml: "), "{t}");
            for w in wants {
                assert!(t.contains(w), "want {w:?} in {t}");
            }
        }
        assert!(!r.join("run/agenix").exists() && !r.join("run/secrets").exists());
        assert!(!Path::new("/tmp/escape").exists());
    }
}

/// Finding 4: a secret's `path` is resolved inside the root, as the booted system resolves
/// it: an absolute symlink in the root (`R/srv2 -> /tmp/x`, Debian's `R/var/run -> /run`)
/// leads into the root, never onto the host. Both sides, secrets and templates.
#[test]
fn paths_resolve_inside_the_root() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    let host = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(host.path(), r.join("srv2")).unwrap();
    fs::create_dir_all(r.join("var")).unwrap();
    fs::create_dir_all(r.join("run")).unwrap();
    std::os::unix::fs::symlink("/run", r.join("var/run")).unwrap();
    let cfg = format!(
        "{}    - {{name: b, file: a.age, path: /srv2/agenix-b}}\n    - {{name: c, file: a.age, path: /var/run/app/c}}\n{}    t: {{key: test_key, path: /srv2/sops-t}}\n  templates:\n    tpl: {{content: x, path: /var/run/app/tpl}}\n",
        agenix(""),
        sops("")
    );
    let out = fx.run(&cfg, &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "written on the host: {:?}",
        all_files(host.path())
    );
    let inside = r.join(host.path().strip_prefix("/").unwrap());
    for (link, target) in [
        (inside.join("agenix-b"), "/run/agenix/b"),
        (inside.join("sops-t"), "/run/secrets/t"),
        (r.join("run/app/c"), "/run/agenix/c"),
        (r.join("run/app/tpl"), "/run/secrets/rendered/tpl"),
    ] {
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from(target),
            "{link:?}"
        );
    }
    assert_eq!(
        fs::read(util::resolve(r, Path::new("/var/run/app/c"))).unwrap(),
        b"agenix secret"
    );
}

/// Finding 5: a `path` that cannot become a link (a directory there) is found before anything
/// is written — exit 3 naming the secret and the path, no generation made or switched, in a
/// dry run too — not after the switch with the links half made. Both sides, templates too.
#[test]
fn a_directory_at_a_path_is_refused_before_the_switch() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    fs::create_dir_all(r.join("etc/app/dir/sub")).unwrap();
    let cases = [
        (
            format!(
                "{}    - {{name: b, file: a.age, path: /etc/app/dir}}\n",
                agenix("")
            ),
            "secret \"b\": path /etc/app/dir is a directory",
        ),
        (
            format!(
                "{}    - {{name: b, file: a.age, path: /etc/app/dir, symlink: false}}\n",
                agenix("")
            ),
            "secret \"b\": path /etc/app/dir is a directory",
        ),
        (
            format!("{}    t: {{key: test_key, path: /etc/app/dir}}\n", sops("")),
            "sops.secrets.\"t\": path /etc/app/dir is a directory",
        ),
        (
            format!(
                "{}  templates:\n    tpl: {{content: x, path: /etc/app/dir}}\n",
                sops("")
            ),
            "sops.templates.\"tpl\": path /etc/app/dir is a directory",
        ),
    ];
    for (cfg, want) in &cases {
        for extra in [&["--dry-run"][..], &[][..]] {
            let out = fx.run(cfg, extra, "secrets");
            let t = text(&out);
            assert_eq!(out.status.code(), Some(3), "{extra:?} {cfg}\n{t}");
            assert!(t.contains(want), "want {want:?} in {t}");
            // The config file is named.
            assert!(t.contains("config.yaml: "), "{t}");
            for gen in ["run/agenix.d/1", "run/secrets.d/1"] {
                assert!(!r.join(gen).exists(), "{gen} made: {t}");
            }
            assert!(!r.join("run/agenix").exists() && !r.join("run/secrets").exists());
            assert!(r.join("etc/app/dir/sub").is_dir());
        }
    }
}

/// Finding 7: a name given twice in `sops.secrets` or `sops.templates` is refused (exit 3,
/// naming the config file, line and name), not last-wins.
#[test]
fn duplicate_sops_names_are_refused() {
    let Some(fx) = Fx::new() else { return };
    for (cfg, want) in [
        (
            format!("{}    s: {{key: nested/test/file}}\n", sops("")),
            "duplicate name \"s\"",
        ),
        (
            format!(
                "{}  templates:\n    t: {{content: a}}\n    t: {{content: b}}\n",
                sops("")
            ),
            "duplicate name \"t\"",
        ),
    ] {
        for (extra, cmd) in [(&[][..], "secrets"), (&[][..], "validate")] {
            let out = fx.run(&cfg, extra, cmd);
            let t = text(&out);
            assert_eq!(out.status.code(), Some(3), "{cmd} {cfg}\n{t}");
            assert!(t.contains("config.yaml:") && t.contains(want), "{t}");
        }
        assert!(!fx.r().join("run/secrets").exists());
    }
}

/// Finding 8: `provision validate` checks the secrets and sops sections as a real run would
/// from the config alone — names, modes, owners in the target root's passwd, paths, what is
/// at them, missing `.age`/sops/template files and identities — and exits as that run would
/// (3 for the config, 8 for a missing file); a good config is OK. Nothing is written.
#[test]
fn validate_checks_the_secrets_and_sops_sections() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    let ok = format!("{}{}", agenix(""), sops(""));
    let out = fx.run(&ok, &[], "validate");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    fs::create_dir_all(r.join("etc/app/dir")).unwrap();
    let cases: Vec<(String, i32, Vec<&str>)> = vec![
        (
            format!(
                "{}    - {{name: b, file: a.age, owner: nobody}}\n",
                agenix("")
            ),
            3,
            vec!["secret \"b\"", "nobody"],
        ),
        (
            format!(
                "{}    - {{name: b, file: a.age, mode: \"0999\"}}\n",
                agenix("")
            ),
            3,
            vec!["secret \"b\"", "0999"],
        ),
        (
            format!("{}    t: {{key: test_key, owner: nobody}}\n", sops("")),
            3,
            vec!["sops.secrets.\"t\"", "nobody"],
        ),
        (
            format!("{}    t: {{key: test_key, path: /etc/app/dir}}\n", sops("")),
            3,
            vec!["sops.secrets.\"t\": path /etc/app/dir is a directory"],
        ),
        (
            format!("{}    - {{name: b, file: missing.age}}\n", agenix("")),
            8,
            vec!["secret \"b\"", "missing.age"],
        ),
        (
            format!("{}    t: {{sopsFile: missing.yaml, key: x}}\n", sops("")),
            8,
            vec!["sops file missing.yaml"],
        ),
        (
            format!(
                "{}  templates:\n    tpl: {{file: missing.tmpl}}\n",
                sops("")
            ),
            8,
            vec!["template \"tpl\"", "missing.tmpl"],
        ),
        (
            agenix("").replace("[id.txt]", "[nope.txt]"),
            8,
            vec!["identity_paths", "nope.txt"],
        ),
    ];
    for (cfg, code, wants) in &cases {
        let out = fx.run(cfg, &[], "validate");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(*code), "{cfg}\n{t}");
        assert!(t.contains("config.yaml: "), "{t}");
        for w in wants {
            assert!(t.contains(w), "want {w:?} in {t}");
        }
    }
    assert!(!r.join("run").exists(), "validate wrote under the root");
}

/// Run with a deadline: `None` when it had to be killed (it blocked).
fn run_deadline(fx: &Fx, config: &str, secs: u64) -> Option<Output> {
    let cfg = fx.conf.path().join("config.yaml");
    fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--root")
        .arg(fx.r())
        .arg("--config")
        .arg(&cfg)
        .args(["--cmdline", "", "secrets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(secs) {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Finding 11: `.age`, sops and template files must be regular files (a FIFO is refused, not
/// waited on) of at most `max_file_size` / `maxFileSize` bytes, and a sops file nested deeper
/// than 256 levels of `[`/`{` is refused at once (2 MB of `[` took the loader 6 s). Exit 8
/// naming the file; nothing switched.
#[test]
fn fifos_big_files_and_deep_nesting_are_refused_quickly() {
    let Some(fx) = Fx::new() else { return };
    let c = fx.conf.path();
    let fifo = nix::sys::stat::Mode::from_bits_truncate(0o600);
    nix::unistd::mkfifo(&c.join("fifo.yaml"), fifo).unwrap();
    nix::unistd::mkfifo(&c.join("fifo.age"), fifo).unwrap();
    nix::unistd::mkfifo(&c.join("fifo.tmpl"), fifo).unwrap();
    fs::write(c.join("deep.yaml"), vec![b'['; 2 << 20]).unwrap();
    let cases = [
        (
            format!("{}    t: {{sopsFile: fifo.yaml, key: x}}\n", sops("")),
            "fifo.yaml is a FIFO, not a regular file",
        ),
        (
            format!("{}    - {{name: b, file: fifo.age}}\n", agenix("")),
            "fifo.age is a FIFO, not a regular file",
        ),
        (
            format!("{}  templates:\n    tpl: {{file: fifo.tmpl}}\n", sops("")),
            "fifo.tmpl is a FIFO, not a regular file",
        ),
        (sops("  maxFileSize: 100\n"), "over the limit of 100 bytes"),
        (
            agenix("  max_file_size: 10\n"),
            "over the limit of 10 bytes",
        ),
        (
            format!("{}    t: {{sopsFile: deep.yaml, key: x}}\n", sops("")),
            "nested deeper than 256 levels",
        ),
    ];
    for (cfg, want) in &cases {
        let start = std::time::Instant::now();
        let out = run_deadline(&fx, cfg, 20).unwrap_or_else(|| panic!("blocked: {cfg}"));
        let t = text(&out);
        assert_eq!(out.status.code(), Some(8), "{cfg}\n{t}");
        assert!(t.contains(want), "want {want:?} in {t}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "{cfg}: slow"
        );
        assert!(!fx.r().join("run/secrets").exists() && !fx.r().join("run/agenix").exists());
    }
}

/// A sops YAML file holding `values` (key, string), encrypted by tests/sops_encoder.py to the
/// recipient of `age-keys.txt`, written as `name` in the config dir; `None` (skip) without the
/// encoder's tools.
fn encode_sops(fx: &Fx, name: &str, values: &[(&str, &str)]) -> Option<()> {
    let py = match util::sops_encoder_tools() {
        Ok(py) => py,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return None;
        }
    };
    let c = fx.conf.path();
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(c.join("age-keys.txt"))
        .output()
        .unwrap();
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let items: Vec<String> = values
        .iter()
        .map(|(k, v)| format!("({k:?}, {v:?})"))
        .collect();
    let script = format!(
        "import sys; sys.path.insert(0, {t:?}); import sops_encoder as e\n\
         data, _ = e.encrypt_file('yaml', e.M([{items}]), [[{recipient:?}]])\n\
         open({out:?}, 'wb').write(data)\n",
        t = tests.display().to_string(),
        items = items.join(", "),
        out = c.join(name).display().to_string(),
    );
    let o = Command::new(py).args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    Some(())
}

/// Finding 10: placeholders are substituted in one pass over the template, so a secret whose
/// value holds another secret's placeholder does not pull that secret into a template that
/// never referenced it.
#[test]
fn a_placeholder_inside_a_value_is_not_expanded() {
    let Some(fx) = Fx::new() else { return };
    let ph = |n: &str| format!("<SOPS:{}:PLACEHOLDER>", util::sha256_hex(n.as_bytes()));
    let a_value = format!("a-then-{}", ph("b"));
    if encode_sops(&fx, "leak.yaml", &[("a", &a_value), ("b", "B-SECRET")]).is_none() {
        return;
    }
    let cfg = format!(
        "sops:\n  defaultSopsFile: leak.yaml\n  age:\n    keyFile: age-keys.txt\n    sshKeyPaths: []\n  \
         secrets:\n    a: {{}}\n    b: {{}}\n  templates:\n    t: {{content: \"A={}\\n\"}}\n",
        ph("a")
    );
    let out = fx.run(&cfg, &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let got = fs::read_to_string(fx.r().join("run/secrets.d/1/rendered/t")).unwrap();
    assert_eq!(got, format!("A={a_value}\n"));
    assert!(!got.contains("B-SECRET"));
}

/// Finding 9: a template placeholder that matches no declared secret is refused (exit 3,
/// naming the template and the placeholder; dry run and validate too), not left verbatim.
#[test]
fn an_unknown_placeholder_is_refused() {
    let Some(fx) = Fx::new() else { return };
    let ph = format!("<SOPS:{}:PLACEHOLDER>", util::sha256_hex(b"nope"));
    fs::write(fx.conf.path().join("t.tmpl"), format!("x={ph}\n")).unwrap();
    for tpl in [
        format!("{{content: \"x={ph}\"}}"),
        "{file: t.tmpl}".to_string(),
    ] {
        let cfg = format!("{}  templates:\n    t: {tpl}\n", sops(""));
        for (extra, cmd) in [
            (&["--dry-run"][..], "secrets"),
            (&[][..], "secrets"),
            (&[][..], "validate"),
        ] {
            let out = fx.run(&cfg, extra, cmd);
            let t = text(&out);
            assert_eq!(out.status.code(), Some(3), "{cmd} {extra:?} {cfg}\n{t}");
            assert!(
                t.contains(&format!(
                    "sops.templates.\"t\": placeholder {ph} matches no secret"
                )),
                "{t}"
            );
        }
        assert!(!fx.r().join("run/secrets").exists());
    }
}

/// Finding 22: an explicit `key` on a whole-file format (binary, dotenv, ini) is refused
/// (exit 3, naming the secret and the key) rather than silently ignored.
#[test]
fn a_key_on_a_whole_file_format_is_refused() {
    let Some(fx) = Fx::new() else { return };
    for f in ["binary", "dotenv", "ini"] {
        let cfg = format!(
            "{}    w: {{format: {f}, sopsFile: w.{f}, key: x}}\n",
            sops("")
        );
        let out = fx.run(&cfg, &[], "secrets");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(3), "{cfg}\n{t}");
        assert!(
            t.contains(&format!(
                "sops.secrets.\"w\": key \"x\": format {f} is installed whole"
            )),
            "{t}"
        );
    }
}

/// Finding 6: a `path` holding a regular file is replaced by the symlink (as sops-nix does);
/// the dry run and the run say "replacing". Both sides.
#[test]
fn a_file_at_a_path_is_replaced_and_said_so() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    fs::create_dir_all(r.join("etc/app")).unwrap();
    let cfg = format!(
        "{}    - {{name: b, file: a.age, path: /etc/app/b}}\n{}    t: {{key: test_key, path: /etc/app/t}}\n",
        agenix(""),
        sops("")
    );
    for f in ["b", "t"] {
        fs::write(r.join("etc/app").join(f), b"old").unwrap();
    }
    let out = fx.run(&cfg, &["--dry-run"], "secrets");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for want in [
        "would link /etc/app/b -> /run/agenix/b (replacing a regular file)",
        "would link /etc/app/t -> /run/secrets/t (replacing a regular file)",
    ] {
        assert!(t.contains(want), "want {want:?} in {t}");
    }
    assert_eq!(fs::read(r.join("etc/app/b")).unwrap(), b"old");
    let out = fx.run(&cfg, &["--output", "json"], "secrets");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("linked /etc/app/t -> /run/secrets/t (replacing a regular file)"),
        "{t}"
    );
    assert_eq!(
        fs::read_link(r.join("etc/app/b")).unwrap(),
        PathBuf::from("/run/agenix/b")
    );
}

/// Findings 12 and 14: uid/gid 4294967295 ((uid_t)-1, "leave unchanged" to chown) is refused,
/// exit 3, both sides; mode "0" is read as "0000" (as chmod and sops-nix read it).
#[test]
fn uid_minus_one_is_refused_and_mode_zero_is_a_mode() {
    let Some(fx) = Fx::new() else { return };
    for (cfg, want) in [
        (
            format!(
                "{}    - {{name: b, file: a.age, owner: 4294967295}}\n",
                agenix("")
            ),
            "uid 4294967295",
        ),
        (
            format!("{}    t: {{key: test_key, group: 4294967295}}\n", sops("")),
            "gid 4294967295",
        ),
    ] {
        let out = fx.run(&cfg, &[], "secrets");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(3), "{cfg}\n{t}");
        assert!(t.contains(want), "{t}");
    }
    let cfg = format!(
        "{}    - {{name: b, file: a.age, mode: \"0\"}}\n{}    t: {{key: test_key, mode: \"0\"}}\n",
        agenix(""),
        sops("")
    );
    let out = fx.run(&cfg, &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    for f in ["run/agenix.d/1/b", "run/secrets.d/1/t"] {
        let m = fs::metadata(fx.r().join(f)).unwrap().permissions().mode();
        assert_eq!(m & 0o7777, 0, "{f}");
    }
}

/// Finding 17: two runs do not race: a run waits while another holds the lock
/// (`flock` on /run/provision/secrets.lock under the root), then does its work.
#[test]
fn a_second_run_waits_for_the_lock() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    fs::create_dir_all(r.join("run/provision")).unwrap();
    let held = fs::File::create(r.join("run/provision/secrets.lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let cfg = fx.conf.path().join("config.yaml");
    fs::write(&cfg, format!("{}{}", agenix(""), sops(""))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--root")
        .arg(r)
        .arg("--config")
        .arg(&cfg)
        .args(["--cmdline", "", "secrets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "did not wait for the lock"
    );
    assert!(!r.join("run/agenix").exists() && !r.join("run/secrets").exists());
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(r.join("run/agenix.d/1/a").exists() && r.join("run/secrets.d/1/s").exists());
}

/// Finding 16: a dry run exits as the real run would when a required file or identity is
/// missing (8), after printing its plan — which names the ramfs mount on both sides; a
/// missing optional secret does not fail it.
#[test]
fn dry_run_exits_as_the_run_would() {
    let Some(fx) = Fx::new() else { return };
    for (cfg, want) in [
        (
            format!("{}    - {{name: b, file: missing.age}}\n", agenix("")),
            "missing.age does not exist",
        ),
        (
            format!("{}    t: {{sopsFile: missing.yaml, key: x}}\n", sops("")),
            "missing.yaml does not exist",
        ),
        (
            agenix("").replace("[id.txt]", "[nope.txt]"),
            "nope.txt: missing",
        ),
    ] {
        let out = fx.run(&cfg, &["--dry-run"], "secrets");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(8), "{cfg}\n{t}");
        assert!(
            t.contains(want) && t.contains("would mount ramfs on /run/"),
            "{t}"
        );
    }
    let cfg = format!(
        "{}    - {{name: b, file: missing.age, optional: true}}\n{}",
        agenix(""),
        sops("")
    );
    let out = fx.run(&cfg, &["--dry-run"], "secrets");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for want in [
        "would mount ramfs on /run/agenix.d",
        "would mount ramfs on /run/secrets.d",
    ] {
        assert!(t.contains(want), "{want:?} in {t}");
    }
    assert!(!fx.r().join("run/agenix.d").exists());
}

/// Finding 20: a sops file that fails is reported once, with every secret it affects, not
/// once per secret.
#[test]
fn a_failing_file_is_reported_once() {
    let Some(fx) = Fx::new() else { return };
    let c = fx.conf.path();
    let mut data = fs::read_to_string(c.join("secrets.yaml")).unwrap();
    // Another MAC: the file no longer checks out.
    let at = data.find("mac: ENC[AES256_GCM,data:").unwrap() + 25;
    let flipped = if &data[at..at + 1] == "A" { "B" } else { "A" };
    data.replace_range(at..at + 1, flipped);
    fs::write(c.join("bad.yaml"), data).unwrap();
    let cfg = format!(
        "{}    x: {{sopsFile: bad.yaml, key: test_key}}\n    y: {{sopsFile: bad.yaml, key: test_key}}\n",
        sops("")
    );
    let out = fx.run(&cfg, &[], "secrets");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(8), "{t}");
    assert!(t.contains("2 of 3 secret(s)/template(s) failed"), "{t}");
    assert!(t.contains("secrets x, y: sops file"), "{t}");
    assert_eq!(t.matches("bad.yaml:").count(), 1, "{t}");
}

/// Finding 23: an explicit `sshKeyPaths: []` means no SSH key — the default host keys are
/// not used even when present — and the error says so.
#[test]
fn explicit_empty_ssh_key_paths_means_none() {
    let Some(fx) = Fx::new() else { return };
    let r = fx.r();
    fs::create_dir_all(r.join("etc/ssh")).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sops-nix");
    fs::copy(
        data.join("ssh-ed25519-key"),
        r.join("etc/ssh/ssh_host_ed25519_key"),
    )
    .unwrap();
    let native = "sops:\n  age:\n    sshKeyPaths: []\n  secrets:\n    n: {sopsFile: native.yaml, key: test_key}\n";
    fs::copy(
        data.join("secrets-native-ssh.yaml"),
        fx.conf.path().join("native.yaml"),
    )
    .unwrap();
    let out = fx.run(native, &[], "secrets");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(8), "{t}");
    assert!(t.contains("age.sshKeyPaths is [] (no SSH key)"), "{t}");
    // Without it, the default host key opens the file.
    let out = fx.run(
        &native.replace("  age:\n    sshKeyPaths: []\n", ""),
        &[],
        "secrets",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// The check of finding 5 looks only at custom paths: a secret at its default path whose name
/// is a directory in the live generation (from an older config's nested names) is fine — the
/// new generation is fresh.
#[test]
fn a_default_path_is_not_checked_against_the_live_generation() {
    let Some(fx) = Fx::new() else { return };
    let nested = format!(
        "secrets:\n  identity_paths: [id.txt]\n  secrets:\n    - {{name: db/pw, file: a.age}}\n{}    db/x: {{key: test_key}}\n",
        sops("")
    );
    let out = fx.run(&nested, &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let flat = format!(
        "secrets:\n  identity_paths: [id.txt]\n  secrets:\n    - {{name: db, file: a.age}}\n{}    db: {{key: test_key}}\n",
        sops("")
    );
    let out = fx.run(&flat, &["--dry-run"], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = fx.run(&flat, &[], "secrets");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read(fx.r().join("run/agenix.d/2/db")).unwrap(),
        b"agenix secret"
    );
    assert_eq!(
        fs::read(fx.r().join("run/secrets.d/2/db")).unwrap(),
        b"test_value"
    );
}
