//! The sops-nix side of the secrets stage end to end on a real ramfs in a tempdir root: the real
//! sops-written files of `../shared/testdata/sops-nix` (read where they are) and files from the
//! independent test encoder, installed as sops-nix does — one file per key, whole binary/dotenv/
//! INI files, templates, custom paths as symlinks, generations — and a failing secret leaves
//! the live generation alone and writes nothing. Skipped, saying why, when not root (ramfs);
//! the encoder part also when python3-cryptography, age or ssh-keygen is missing.

#[path = "common/secrets_util.rs"]
mod util;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use provision::exit::{code_of, Code};
use provision::secrets::sops::stage::{run, SopsConfig};

fn real() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sops-nix");
    assert!(d.is_dir(), "test data missing: {}", d.display());
    d
}

struct Root {
    dir: tempfile::TempDir,
    _unmount: util::Unmount,
}

impl Root {
    fn new() -> Option<Root> {
        if let Err(why) = util::mount_possible() {
            eprintln!("SKIPPED sops stage tests: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nsvc:x:1000:1000::/var/empty:/bin/false\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nsvc:x:1000:\nkeys:x:96:\n",
        )
        .unwrap();
        let mp = dir.path().join("run/secrets.d");
        Some(Root {
            _unmount: util::Unmount(vec![mp]),
            dir,
        })
    }

    fn run(
        &self,
        config_dir: &Path,
        yaml: &str,
    ) -> anyhow::Result<provision::context::StageOutput> {
        let cfg: SopsConfig = serde_norway::from_str(yaml).unwrap();
        run(&util::ctx(self.dir.path(), config_dir, false), &cfg)
    }

    fn read(&self, p: &str) -> Vec<u8> {
        fs::read(util::resolve(self.dir.path(), Path::new(p))).unwrap()
    }

    fn live(&self) -> PathBuf {
        fs::read_link(self.dir.path().join("run/secrets")).unwrap()
    }

    fn generations(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path().join("run/secrets.d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

#[test]
fn real_files_keys_templates_paths_generations_and_fail_closed() {
    let Some(root) = Root::new() else { return };
    let cfg = format!(
        r#"defaultSopsFile: secrets.yaml
age:
  keyFile: age-keys.txt
  sshKeyPaths: [ssh-ed25519-key]
secrets:
  test_key: {{}}
  nested-file: {{key: nested/test/file, path: /etc/app/file, owner: svc, mode: "0440"}}
  native: {{sopsFile: secrets-native-ssh.yaml, key: test_key, group: keys}}
templates:
  app.conf: {{content: "k={}\nf={}\n", owner: svc}}
"#,
        // sops-nix's placeholders (`<SOPS:${hashString "sha256" name}:PLACEHOLDER>`), written
        // out: `printf test_key | sha256sum`, `printf nested-file | sha256sum`.
        "<SOPS:92488e1e3eeecdf99f3ed2ce59233efb4b4fb612d5655c0ce9ea52b5a502e655:PLACEHOLDER>",
        "<SOPS:2c34c37094a3f1d7241057c3ce0e1c666ccc5977fd7aacd419a66fa9f82e1501:PLACEHOLDER>"
    );
    let out = root.run(&real(), &cfg).unwrap();
    assert_eq!(root.live(), PathBuf::from("/run/secrets.d/1"));
    assert_eq!(root.read("/run/secrets/test_key"), b"test_value");
    assert_eq!(root.read("/run/secrets/native"), b"test_value");
    assert_eq!(root.read("/etc/app/file"), b"another value");
    assert_eq!(
        fs::read_link(root.dir.path().join("etc/app/file")).unwrap(),
        PathBuf::from("/run/secrets/nested-file")
    );
    assert_eq!(
        root.read("/run/secrets/rendered/app.conf"),
        b"k=test_value\nf=another value\n"
    );
    let gen = root.dir.path().join("run/secrets.d/1");
    let meta = fs::metadata(gen.join("nested-file")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (1000, 1000, 0o440)
    );
    let meta = fs::metadata(gen.join("native")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (0, 96, 0o400)
    );
    let meta = fs::metadata(&gen).unwrap();
    assert_eq!(
        (meta.gid(), meta.permissions().mode() & 0o7777),
        (96, 0o751)
    );
    assert!(out.details["text"]
        .as_str()
        .unwrap()
        .contains("generation 1 live"));

    // A key that is not there, and a list where a string belongs: nothing written, both named.
    let bad = "defaultSopsFile: secrets.yaml
age:
  keyFile: age-keys.txt
secrets:
  test_key: {}
  missing: {key: no/such}
  list: {key: a_list}
";
    let e = root.run(&real(), bad).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Decrypt, "{msg}");
    assert!(
        msg.contains("secret missing") && msg.contains("the key 'no' cannot be found"),
        "{msg}"
    );
    assert!(
        msg.contains("secret list") && msg.contains("a list, not a string"),
        "{msg}"
    );
    assert!(msg.contains("still points at generation 1"), "{msg}");
    assert_eq!(root.generations(), ["1"]);
    assert_eq!(root.read("/run/secrets/test_key"), b"test_value");

    // Good runs: keepGenerations counts the live one, as sops-nix (default 1: only it).
    root.run(&real(), &cfg).unwrap();
    assert_eq!(root.generations(), ["2"]);
    let keep2 = format!("keepGenerations: 2\n{cfg}");
    root.run(&real(), &keep2).unwrap();
    assert_eq!(root.generations(), ["2", "3"]);
    root.run(&real(), &keep2).unwrap();
    assert_eq!(root.generations(), ["3", "4"]);
    root.run(&real(), &cfg).unwrap();
    assert_eq!(root.generations(), ["5"]);
    assert_eq!(root.live(), PathBuf::from("/run/secrets.d/5"));
    assert_eq!(
        root.read("/run/secrets/rendered/app.conf"),
        b"k=test_value\nf=another value\n"
    );

    // PGP-only files: refused naming OpenPGP, nothing switched.
    let e = root
        .run(&real(), "age:\n  keyFile: age-keys.txt\nsecrets:\n  env: {format: dotenv, sopsFile: secrets.env}\n")
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("secret env") && msg.contains("OpenPGP"),
        "{msg}"
    );
    assert_eq!(root.live(), PathBuf::from("/run/secrets.d/5"));
}

#[test]
fn whole_binary_dotenv_ini_files_and_a_flipped_byte() {
    let Some(root) = Root::new() else { return };
    let py = match util::sops_encoder_tools() {
        Ok(py) => py,
        Err(why) => {
            eprintln!("SKIPPED: {why} (tools/install-deps installs it)");
            return;
        }
    };
    // With its tools present the encoder must run: a failure of it is a failure here.
    let gen = tempfile::tempdir().unwrap();
    util::sops_encoder(&py, &["generate", gen.path().to_str().unwrap()]);
    let cfg = "age:
  keyFile: node.agekey
  sshKeyPaths: [host_ed25519, host_rsa]
secrets:
  bin: {format: binary, sopsFile: data.bin}
  env: {format: dotenv, sopsFile: flat.env}
  ini: {format: ini, sopsFile: sections.ini}
  whole: {sopsFile: multi-doc.yaml, key: \"\"}
  str: {sopsFile: rich.json, format: json}
";
    root.run(gen.path(), cfg).unwrap();
    let mut want_bin: Vec<u8> = (0..=255u8).collect();
    want_bin.extend_from_slice(b"\xff\xfe not utf-8");
    assert_eq!(root.read("/run/secrets/bin"), want_bin);
    assert_eq!(
        String::from_utf8(root.read("/run/secrets/env")).unwrap(),
        "# top comment\nhello=world\nmulti=a\\nb\nspaces=  padded  \nunicode=ключ\nk_unencrypted=clear\nempty=\n"
    );
    let ini = String::from_utf8(root.read("/run/secrets/ini")).unwrap();
    // go-ini's layout: DEFAULT's keys first without a header, `=` aligned per section.
    assert!(
        ini.starts_with("top = t\n\n;  about first\n[first]\na             = 1\n"),
        "{ini}"
    );
    assert!(ini.contains("multi = \"\"\"l1\nl2\"\"\"\n"), "{ini}");
    assert_eq!(
        String::from_utf8(root.read("/run/secrets/whole")).unwrap(),
        "\"a\": \"1\"\n---\n\"b\":\n    - 1\n    - 2\n"
    );
    assert_eq!(root.read("/run/secrets/str"), b"hello");

    // The default host keys: an unusable one is skipped, the other used (native ssh-ed25519).
    let ssh = root.dir.path().join("etc/ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::copy(
        gen.path().join("host_ed25519"),
        ssh.join("ssh_host_ed25519_key"),
    )
    .unwrap();
    fs::write(ssh.join("ssh_host_rsa_key"), "not a key\n").unwrap();
    root.run(
        gen.path(),
        "secrets:\n  str: {sopsFile: rich.json, format: json}\n",
    )
    .unwrap();
    assert_eq!(root.read("/run/secrets/str"), b"hello");
    assert_eq!(root.generations(), ["2"]);
    // …but a configured one must load.
    let e = root
        .run(
            gen.path(),
            "age:\n  sshKeyPaths: [/etc/ssh/ssh_host_rsa_key]\nsecrets:\n  str: {sopsFile: rich.json, format: json}\n",
        )
        .unwrap_err();
    assert!(format!("{e:#}").contains("ssh_host_rsa_key"), "{e:#}");

    // One flipped byte in one file: that secret is named, nothing is written or switched.
    let bad = format!("{cfg}  int: {{sopsFile: flipped.yaml}}\n");
    let e = root.run(gen.path(), &bad).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("secret int")
            && msg.contains("key int")
            && msg.contains("authentication failed"),
        "{msg}"
    );
    assert_eq!(root.generations(), ["2"]);
}

/// Through the binary: `provision secrets` runs the sops side beside the agenix side (an
/// agenix secret from the age CLI in the same config), exit 8 naming the failed secret, dry run
/// and `status`.
#[test]
fn through_the_binary_beside_agenix() {
    let Some(root) = Root::new() else { return };
    let _agenix = util::Unmount(vec![root.dir.path().join("run/agenix.d")]);
    let conf = tempfile::tempdir().unwrap();
    let id = conf.path().join("id.txt");
    let made = Command::new("age-keygen").arg("-o").arg(&id).output();
    let Some(made) = made.ok().filter(|o| o.status.success()) else {
        eprintln!("SKIPPED: no age-keygen");
        return;
    };
    let public = String::from_utf8_lossy(&made.stderr)
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let enc = Command::new("age")
        .args(["-e", "-r", &public, "-o"])
        .arg(conf.path().join("a.age"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"agenix secret")?;
            c.wait()
        })
        .unwrap();
    assert!(enc.success());
    let real = real();
    let cfg = conf.path().join("config.yaml");
    // Absolute paths in the config are on the target (under --root): point at the data
    // through relative paths instead.
    let rel = |p: &Path| {
        let depth = conf.path().components().count() - 1;
        let mut r = PathBuf::new();
        for _ in 0..depth {
            r.push("..");
        }
        r.join(p.strip_prefix("/").unwrap())
    };
    let real_rel = rel(&real);
    let write_cfg = |key: &str| {
        fs::write(
            &cfg,
            format!(
                "secrets:\n  identity_paths: [id.txt]\n  secrets:\n    - {{name: a, file: a.age}}\n\
                 sops:\n  defaultSopsFile: {r}/secrets.yaml\n  age:\n    keyFile: {r}/age-keys.txt\n    \
                 sshKeyPaths: []\n  secrets:\n    s: {{key: {key}}}\n",
                r = real_rel.display()
            ),
        )
        .unwrap()
    };
    let run = |extra: &[&str], cmd: &str| {
        Command::new(env!("CARGO_BIN_EXE_provision"))
            .arg("--root")
            .arg(root.dir.path())
            .arg("--config")
            .arg(&cfg)
            .args(["--cmdline", ""])
            .args(extra)
            .arg(cmd)
            .output()
            .unwrap()
    };
    write_cfg("nested/test/file");
    let out = run(&["--dry-run"], "secrets");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("would decrypt") && stdout.contains("key nested/test/file"),
        "{stdout}"
    );
    assert!(!root.dir.path().join("run/secrets").exists());
    let out = run(&[], "secrets");
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{both}");
    assert_eq!(root.read("/run/secrets/s"), b"another value");
    assert_eq!(root.read("/run/agenix/a"), b"agenix secret");
    let out = run(&["--output", "json"], "status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sops"]["generation"], 1, "{v}");
    assert_eq!(v["sops"]["secrets"][0]["present"], true, "{v}");

    write_cfg("nested/nope");
    let out = run(&[], "secrets");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("secret s") && stderr.contains("nested/nope"),
        "{stderr}"
    );
    assert!(!stderr.contains("another value"), "{stderr}");
    assert_eq!(root.live(), PathBuf::from("/run/secrets.d/1"));
    // The agenix side still ran: a new generation of its own went live.
    assert_eq!(
        fs::read_link(root.dir.path().join("run/agenix")).unwrap(),
        PathBuf::from("/run/agenix.d/2")
    );
    assert_eq!(root.read("/run/agenix/a"), b"agenix secret");
}
