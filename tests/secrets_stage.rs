//! The secrets stage end to end on a real ramfs in a tempdir root: files encrypted by the `age`
//! CLI (Debian package `age`) to ssh-ed25519 and ssh-rsa keys made by `ssh-keygen` (package
//! `openssh-client`), owners and modes, generations across runs, the fail-closed path, dry run,
//! identity errors. Skipped (with the reason printed) only when mounting is impossible.

#[path = "common/age_cli.rs"]
mod age_cli;
#[path = "common/prom.rs"]
mod prom;
#[path = "common/secrets_util.rs"]
mod util;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use age_cli::{age_encrypt, ssh_keygen};

use provision::exit::{code_of, Code};
use provision::secrets::{self, SecretsConfig};

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    conf: PathBuf,
    _unmount: util::Unmount,
}

/// A target root with SSH host keys made by ssh-keygen, passwd/group, and a config directory.
fn setup() -> Option<Setup> {
    if let Err(why) = util::mount_possible() {
        println!("SKIP: {why}");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let conf = tmp.path().join("conf");
    std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    util::write_users(&root);
    for (t, bits) in [("ed25519", None), ("rsa", Some("3072"))] {
        let key = root.join(format!("etc/ssh/ssh_host_{t}_key"));
        ssh_keygen(&key, t, bits, "", &[]);
    }
    let unmount = util::Unmount(vec![root.join("run/agenix.d")]);
    Some(Setup {
        _tmp: tmp,
        root,
        conf,
        _unmount: unmount,
    })
}

impl Setup {
    /// Encrypt `data` with the age CLI to the host key `kind` (`ed25519` / `rsa`).
    fn encrypt(&self, name: &str, data: &[u8], kind: &str, armor: bool) {
        let recip = self.root.join(format!("etc/ssh/ssh_host_{kind}_key.pub"));
        age_encrypt(&recip, data, &self.conf.join(format!("{name}.age")), armor);
    }

    fn run(&self, yaml: &str) -> anyhow::Result<provision::context::StageOutput> {
        let cfg: SecretsConfig = serde_norway::from_str(yaml).unwrap();
        secrets::run(&util::ctx(&self.root, &self.conf, false), &cfg)
    }

    fn host(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn live(&self) -> Option<PathBuf> {
        std::fs::read_link(self.host("/run/agenix")).ok()
    }

    fn read(&self, target_path: &str) -> Vec<u8> {
        std::fs::read(util::resolve(&self.root, Path::new(target_path)))
            .unwrap_or_else(|e| panic!("{target_path}: {e}"))
    }

    fn generations(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.host("/run/agenix.d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

const CONFIG: &str = "
secrets:
  - name: ed-binary
    file: ed-binary.age
  - name: ed-armored
    file: ed-armored.age
    owner: svc
    mode: \"0440\"
  - name: rsa-binary
    file: rsa-binary.age
    owner: svc
    group: keys
    mode: \"0400\"
    path: /srv/app/rsa-secret
  - name: nested/rsa-armored
    file: rsa-armored.age
    owner: \"1234\"
    group: 96
    mode: \"0644\"
";

#[test]
fn age_cli_files_generations_and_fail_closed() {
    let Some(s) = setup() else { return };
    let payloads = |gen: u8| -> Vec<(&'static str, &'static str, bool, Vec<u8>)> {
        vec![
            (
                "ed-binary",
                "ed25519",
                false,
                format!("ed25519 binary secret gen{gen}\n").into_bytes(),
            ),
            ("ed-armored", "ed25519", true, vec![gen; 70_000]),
            (
                "rsa-binary",
                "rsa",
                false,
                format!("rsa secret {gen}").into_bytes(),
            ),
            ("rsa-armored", "rsa", true, b"".to_vec()),
        ]
    };
    let check = |gen: u8| {
        for (name, _, _, data) in payloads(gen) {
            let path = match name {
                "rsa-binary" => "/srv/app/rsa-secret".to_string(),
                "rsa-armored" => "/run/agenix/nested/rsa-armored".to_string(),
                n => format!("/run/agenix/{n}"),
            };
            assert_eq!(s.read(&path), data, "{name}");
        }
        let meta = |p: &str| std::fs::metadata(util::resolve(&s.root, Path::new(p))).unwrap();
        let cases = [
            ("/run/agenix/ed-binary", 0, 0, 0o400),
            ("/run/agenix/ed-armored", 1234, 2345, 0o440),
            ("/run/agenix/rsa-binary", 1234, 96, 0o400),
            ("/run/agenix/nested/rsa-armored", 1234, 96, 0o644),
        ];
        for (p, uid, gid, mode) in cases {
            let m = meta(p);
            assert_eq!(
                (m.uid(), m.gid(), m.mode() & 0o7777),
                (uid, gid, mode),
                "{p}"
            );
        }
        assert_eq!(
            std::fs::read_link(s.host("/srv/app/rsa-secret")).unwrap(),
            PathBuf::from("/run/agenix/rsa-binary")
        );
    };

    // Run 1: generation 1. A real directory at /run/agenix holding something is refused
    // (it would be removed with what it holds); an empty one is replaced.
    std::fs::create_dir_all(s.host("/run/agenix")).unwrap();
    std::fs::write(s.host("/run/agenix/stale"), "old").unwrap();
    for (name, kind, armor, data) in payloads(1) {
        s.encrypt(name, &data, kind, armor);
    }
    let e = s.run(CONFIG).unwrap_err();
    assert_eq!(code_of(&e), Code::BadInput, "{e:#}");
    assert!(format!("{e:#}").contains("non-empty directory"), "{e:#}");
    assert_eq!(std::fs::read(s.host("/run/agenix/stale")).unwrap(), b"old");
    std::fs::remove_file(s.host("/run/agenix/stale")).unwrap();
    let out = s.run(CONFIG).unwrap();
    assert_eq!(out.details["generation"], 1);
    assert_eq!(s.live(), Some(PathBuf::from("/run/agenix.d/1")));
    check(1);
    assert!(!s.host("/run/agenix.d/1/stale").exists());
    let dir_mode = std::fs::metadata(s.host("/run/agenix.d")).unwrap().mode() & 0o7777;
    assert_eq!(dir_mode, 0o751);
    assert_eq!(
        std::fs::metadata(s.host("/run/agenix.d/1")).unwrap().mode() & 0o7777,
        0o751
    );
    let mt = provision::secrets::generation::mounted_type(&s.host("/run/agenix.d")).unwrap();
    assert_eq!(mt.as_deref(), Some("ramfs"));
    // Details carry no content.
    let json = out.details.to_string();
    assert!(!json.contains("ed25519 binary secret"), "{json}");
    assert_eq!(out.details["secrets"][1]["mode"], "0440");
    assert_eq!(out.details["secrets"][1]["owner"], "svc");
    assert_eq!(out.details["secrets"][1]["group"], "2345");

    // Run 2: new content → generation 2, generation 1 kept.
    for (name, kind, armor, data) in payloads(2) {
        s.encrypt(name, &data, kind, armor);
    }
    s.run(CONFIG).unwrap();
    assert_eq!(s.live(), Some(PathBuf::from("/run/agenix.d/2")));
    check(2);
    assert_eq!(s.generations(), vec!["1", "2"]);

    // Run 3: one required secret is corrupt → fails closed, generation 2 stays live.
    let good = std::fs::read(s.conf.join("rsa-binary.age")).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x40;
    std::fs::write(s.conf.join("rsa-binary.age"), &bad).unwrap();
    for (name, kind, armor, data) in payloads(3).into_iter().filter(|p| p.0 != "rsa-binary") {
        s.encrypt(name, &data, kind, armor);
    }
    let e = s.run(CONFIG).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Decrypt, "{msg}");
    assert!(
        msg.contains("rsa-binary") && msg.contains("corrupt or truncated payload"),
        "{msg}"
    );
    assert!(msg.contains("still points at generation 2"), "{msg}");
    assert!(!msg.contains("rsa secret"), "plaintext in the error: {msg}");
    assert_eq!(s.live(), Some(PathBuf::from("/run/agenix.d/2")));
    check(2);
    assert_eq!(s.generations(), vec!["1", "2"], "failed generation removed");

    // Run 4: fixed → generation 3; generation 2 kept, 1 pruned.
    s.encrypt("rsa-binary", &payloads(3)[2].3, "rsa", false);
    let out = s.run(CONFIG).unwrap();
    assert_eq!(out.details["generation"], 3);
    assert_eq!(out.details["previous"], 2);
    check(3);
    assert_eq!(s.generations(), vec!["2", "3"]);

    // Status reflects it.
    let cfg: SecretsConfig = serde_norway::from_str(CONFIG).unwrap();
    let st = secrets::status(&util::ctx(&s.root, &s.conf, false), &cfg);
    assert_eq!(st["generation"], 3);
    assert_eq!(st["mounted"], "ramfs");
    let listed = st["secrets"].as_array().unwrap();
    assert_eq!(listed.len(), cfg.secrets.len(), "{st}");
    assert!(listed.iter().all(|x| x["present"] == true), "{st}");
}

#[test]
fn every_failure_is_listed_and_optional_ones_do_not_block() {
    let Some(s) = setup() else { return };
    s.encrypt("good", b"fine", "ed25519", false);
    // Encrypted to a key we do not hold.
    let other = s.conf.join("other");
    ssh_keygen(&other, "ed25519", None, "", &[]);
    let other_pub = PathBuf::from(format!("{}.pub", other.display()));
    age_encrypt(&other_pub, b"x", &s.conf.join("nomatch.age"), false);
    std::fs::write(s.conf.join("garbage.age"), "not an age file at all\n").unwrap();
    let yaml = "
secrets:
  - {name: good, file: good.age}
  - {name: nomatch, file: nomatch.age}
  - {name: garbage, file: garbage.age}
  - {name: absent, file: absent.age}
  - {name: opt, file: nomatch.age, optional: true, path: /srv/opt}
";
    let e = s.run(yaml).unwrap_err();
    let msg = format!("{e:#}");
    for want in [
        "3 of 4 required secret(s) failed",
        "nomatch (nomatch.age): no identity matched",
        "garbage (garbage.age): corrupt header",
        "absent (absent.age): cannot read",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert!(
        !msg.contains("opt ("),
        "optional failures are not in the fatal list: {msg}"
    );
    assert_eq!(s.live(), None);
    assert!(s.generations().is_empty());

    // Only the optional one failing: the run succeeds, the secret is absent.
    let yaml = "
secrets:
  - {name: good, file: good.age}
  - {name: opt, file: nomatch.age, optional: true, path: /srv/opt}
";
    let out = s.run(yaml).unwrap();
    assert_eq!(out.details["secrets"][1]["outcome"], "failed");
    assert!(out.details["text"].as_str().unwrap().contains("FAILED"));
    assert_eq!(s.read("/run/agenix/good"), b"fine");
    assert!(!s.host("/run/agenix.d/1/opt").exists());
    assert!(s.host("/srv/opt").symlink_metadata().is_err());
}

#[test]
fn identity_problems_are_named() {
    let Some(s) = setup() else { return };
    s.encrypt("a", b"a", "ed25519", false);
    let base = "secrets:\n  - {name: a, file: a.age}\n";
    // A configured identity that is missing is an error even if another one works.
    let yaml = format!("identity_paths: [/etc/ssh/ssh_host_ed25519_key, /etc/ssh/nope]\n{base}");
    let msg = format!("{:#}", s.run(&yaml).unwrap_err());
    assert!(
        msg.contains("/etc/ssh/nope") && msg.contains("missing"),
        "{msg}"
    );
    // Defaults: a missing one is fine when the other is readable.
    std::fs::remove_file(s.host("/etc/ssh/ssh_host_rsa_key")).unwrap();
    s.run(base).unwrap();
    // Neither default present: an error naming both.
    std::fs::remove_file(s.host("/etc/ssh/ssh_host_ed25519_key")).unwrap();
    let e = s.run(base).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Decrypt);
    assert!(
        msg.contains("ssh_host_ed25519_key") && msg.contains("ssh_host_rsa_key"),
        "{msg}"
    );
    // A passphrase-protected key is refused by name.
    let k = s.host("/etc/ssh/ssh_host_ed25519_key");
    ssh_keygen(&k, "ed25519", None, "hunter22", &[]);
    let msg = format!("{:#}", s.run(base).unwrap_err());
    assert!(msg.contains("passphrase-protected"), "{msg}");
    assert_eq!(s.live().unwrap(), PathBuf::from("/run/agenix.d/1"));
}

#[test]
fn dry_run_changes_nothing() {
    // Needs no mount: nothing is mounted or written.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    util::write_users(&root);
    let conf = tmp.path();
    std::fs::write(conf.join("a.age"), "whatever").unwrap();
    let cfg: SecretsConfig = serde_norway::from_str(
        "secrets:\n  - {name: a, file: a.age, owner: svc, mode: \"0440\", path: /srv/a}\n  - {name: b, file: b.age}\n",
    )
    .unwrap();
    let before = walk(tmp.path());
    let out = secrets::run(&util::ctx(&root, conf, true), &cfg).unwrap();
    assert_eq!(walk(tmp.path()), before, "dry run wrote something");
    let text = out.details["text"].as_str().unwrap();
    for want in [
        "would mount ramfs on /run/agenix.d",
        "would decrypt",
        "/run/agenix.d/1/a (svc:2345 0440)",
        "would switch /run/agenix -> /run/agenix.d/1",
        "would link /srv/a -> /run/agenix/a",
        "b.age does not exist",
        "no identity file present",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        }
        v.push(p);
    }
    v.sort();
    v
}

#[test]
fn bad_config_is_bad_input_with_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    util::write_users(tmp.path());
    let cfg: SecretsConfig = serde_norway::from_str(
        "secrets:
  - {name: ../x, file: a.age}
  - {name: a, file: a.age, owner: nobody}
  - {name: b, file: b.age, group: wheel}
  - {name: c, file: c.age, mode: 400}
  - {name: d, file: d.age, path: relative}
  - {name: e, file: e.age}
  - {name: e, file: e.age}
",
    )
    .unwrap();
    let e = secrets::run(&util::ctx(tmp.path(), tmp.path(), false), &cfg).unwrap_err();
    assert_eq!(code_of(&e), Code::BadInput);
    let msg = format!("{e:#}");
    for want in [
        "\"../x\"",
        "unknown user \"nobody\"",
        "unknown group \"wheel\"",
        "octal string",
        "must be absolute",
        "duplicate",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
}

/// Also the metrics file (in the config's `metrics_dir`, under `--root`), read by Prometheus's
/// parser after each run: a failed run keeps the last success time.
#[test]
fn through_the_binary_exit_codes_and_output() {
    let Some(s) = setup() else { return };
    s.encrypt("a", b"binary-path secret", "ed25519", true);
    let cfg = s.conf.join("config.yaml");
    std::fs::write(
        &cfg,
        "metrics_dir: /srv/metrics\n\
         secrets:\n  secrets:\n    - {name: a, file: a.age, mode: \"0440\"}\n",
    )
    .unwrap();
    let prom_file = s.host("/srv/metrics/provision_secrets.prom");
    let python = prom::parser();
    if let Err(why) = &python {
        println!("SKIP (the metrics checks only): {why}");
    }
    let metrics = |exit_code: i32, decrypted: f64, failed: f64| {
        let py = python.as_ref().ok()?;
        let fams = prom::parse(py, &prom_file);
        let st = [("stage", "secrets")];
        assert_eq!(
            prom::value(&fams, "provision_secrets_decrypted", &st),
            Some(decrypted)
        );
        assert_eq!(
            prom::value(&fams, "provision_secrets_failed", &st),
            Some(failed)
        );
        prom::check_stage(&fams, "secrets", exit_code, None)
    };
    let before = prom::now();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--root".to_string(),
            s.root.display().to_string(),
            "--config".into(),
            cfg.display().to_string(),
            "--cmdline".into(),
            String::new(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push("secrets".into());
        Command::new(env!("CARGO_BIN_EXE_provision"))
            .args(&args)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("generation 1 live"), "{stdout}");
    assert_eq!(s.read("/run/agenix/a"), b"binary-path secret");
    if let Some(t) = metrics(0, 1.0, 0.0) {
        assert!(before <= t && t <= prom::now(), "{before} {t}");
    }
    let out = run(&["--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["generation"], 2);
    assert_eq!(v["secrets"][0]["mode"], "0440");
    let last_success = metrics(0, 1.0, 0.0);
    // A dry run writes no metrics.
    let kept = std::fs::read(&prom_file).unwrap();
    assert_eq!(run(&["--dry-run"]).status.code(), Some(0));
    assert_eq!(std::fs::read(&prom_file).unwrap(), kept);
    std::fs::write(
        s.conf.join("a.age"),
        b"-----BEGIN AGE ENCRYPTED FILE-----\nnope\n",
    )
    .unwrap();
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("a (a.age)") && stderr.contains("still points at generation 2"),
        "{stderr}"
    );
    assert!(!stderr.contains("binary-path secret"));
    assert_eq!(s.read("/run/agenix/a"), b"binary-path secret");
    assert_eq!(metrics(8, 0.0, 1.0), last_success);
}

/// Issue 21: one default identity that cannot be loaded (passphrase-protected, or an empty file)
/// beside a good one is skipped with one warning naming it; every secret still decrypts, as with
/// agenix and `age -i`. Through the binary, so the warning is the one an operator sees.
#[test]
fn an_unusable_default_identity_beside_a_good_one_is_skipped_with_one_warning() {
    let Some(s) = setup() else { return };
    s.encrypt("a", b"first", "ed25519", false);
    s.encrypt("b", b"second", "ed25519", true);
    let cfg = s.conf.join("config.yaml");
    std::fs::write(
        &cfg,
        "secrets:\n  secrets:\n    - {name: a, file: a.age}\n    - {name: b, file: b.age}\n",
    )
    .unwrap();
    let rsa = s.host("/etc/ssh/ssh_host_rsa_key");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_provision"))
            .args(["--root", s.root.to_str().unwrap()])
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "--cmdline",
                "",
                "secrets",
            ])
            .output()
            .unwrap()
    };
    let passphrase = || {
        std::fs::remove_file(&rsa).ok();
        ssh_keygen(&rsa, "rsa", Some("2048"), "hunter22", &[]);
    };
    let empty = || std::fs::write(&rsa, b"").unwrap();
    for (why, make) in [
        ("passphrase-protected", &passphrase as &dyn Fn()),
        ("empty", &empty),
    ] {
        make();
        let out = run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{why}: {stderr}");
        assert_eq!(s.read("/run/agenix/a"), b"first", "{why}");
        assert_eq!(s.read("/run/agenix/b"), b"second", "{why}");
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("ssh_host_rsa_key"))
            .collect();
        assert_eq!(warnings.len(), 1, "{why}: {stderr}");
        assert!(warnings[0].contains("skipped"), "{why}: {stderr}");
    }
    // A configured identity that cannot be loaded stays an error, even beside a good one.
    std::fs::write(
        &cfg,
        "secrets:\n  identity_paths: [/etc/ssh/ssh_host_ed25519_key, /etc/ssh/ssh_host_rsa_key]\n  secrets:\n    - {name: a, file: a.age}\n",
    )
    .unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("ssh_host_rsa_key"), "{stderr}");
}
