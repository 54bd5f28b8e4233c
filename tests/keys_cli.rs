//! `provision --config C --root DIR keys` end to end (the real binary, a real HTTP server on
//! 127.0.0.1): exit codes, text and JSON output, the per-boot report, attempt logging.

#[path = "common/keys_helpers.rs"]
mod helpers;
#[path = "common/prom.rs"]
mod prom;

use helpers::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use tar::EntryType as T;

fn provision(config: &Path, root: &Path, cmdline: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--config")
        .arg(config)
        .arg("--root")
        .arg(root)
        .arg("--cmdline")
        .arg(cmdline)
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap()
}

fn write_config(dir: &Path, url: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("config.yaml");
    fs::write(
        &p,
        format!(
            "keys:\n  url: \"{url}\"\n  connect_timeout_s: 1\n  request_timeout_s: 1\n  \
             deadline_s: 3\n  initial_backoff_ms: 50\n  max_backoff_ms: 200\n{extra}"
        ),
    )
    .unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn keys_command_installs_under_root_and_reports() {
    let kd = tempfile::tempdir().unwrap();
    let (root_key, _) = keygen(kd.path(), "root", "ed25519");
    let (host_key, _) = keygen(kd.path(), "host", "rsa");
    let bundle = targz(&[
        ("root_privkey", T::Regular, &root_key),
        ("host_privkey", T::Regular, &host_key),
    ]);
    let b = bundle.clone();
    // the first attempt gets a 503: the log shows the retry
    let srv = Server::start(move |i, _| {
        if i == 0 {
            Reply::Status(503)
        } else {
            Reply::Body(b.clone())
        }
    });
    let cfgdir = tempfile::tempdir().unwrap();
    let config = write_config(
        cfgdir.path(),
        &srv.url("/keys/{hostname}.tar.gz"),
        &format!("  sha256: {}\n", sha256_hex(&bundle)),
    );
    let root = tempfile::tempdir().unwrap();
    let line = "homelab.hostname=node-7";
    let before = prom::now();

    // dry run first: no request, nothing written, the plan printed
    let out = provision(&config, root.path(), line, &["--dry-run", "keys"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("would fetch: ") && stdout.contains("node-7.tar.gz"),
        "{stdout}"
    );
    assert!(srv.requests().is_empty());
    assert!(files_under(root.path()).is_empty());

    let out = provision(&config, root.path(), line, &["keys"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("attempt 1 failed") && stderr.contains("next in"),
        "{stderr}"
    );
    let hk = root.path().join("etc/ssh/ssh_host_rsa_key");
    let fp = fingerprint(&hk);
    assert!(text(&out.stdout).contains(&fp), "{}", text(&out.stdout));
    assert!(stderr.contains(&fp), "fingerprints are logged: {stderr}");
    assert!(!stderr.contains("PRIVATE KEY") && !text(&out.stdout).contains("PRIVATE KEY"));

    let report = fs::read_to_string(root.path().join("run/provision/report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let stage = &report["stages"][0];
    assert_eq!(stage["stage"], "keys");
    assert_eq!(stage["outcome"], "ok");
    assert!(stage["details"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["fingerprint"] == fp));

    // The metrics file, read by Prometheus's parser: two requests (the 503, then the bundle).
    let prom_file = root
        .path()
        .join("run/provision/metrics/provision_keys.prom");
    let python = prom::parser();
    let last_success = match &python {
        Err(why) => {
            println!("SKIP (the metrics checks only): {why}");
            None
        }
        Ok(py) => {
            let fams = prom::parse(py, &prom_file);
            assert_eq!(
                prom::value(&fams, "provision_keys_fetch_attempts", &[]),
                Some(2.0)
            );
            let t = prom::check_stage(&fams, "keys", 0, None).unwrap();
            assert!(before <= t && t <= prom::now(), "{before} {t}");
            Some(t)
        }
    };

    // JSON output of a second run: unchanged
    let out = provision(&config, root.path(), line, &["--output", "json", "keys"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stage"], "keys");
    assert_eq!(v["files"][0]["outcome"], "unchanged");

    // A bundle that fails verification (exit 7): the file says so and keeps the time of the
    // last success, so an alert on its age still works.
    let bad = write_config(
        cfgdir.path(),
        &srv.url("/keys/{hostname}.tar.gz"),
        &format!("  sha256: {}\n", "0".repeat(64)),
    );
    let out = provision(&bad, root.path(), line, &["keys"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    if let Ok(py) = &python {
        let fams = prom::parse(py, &prom_file);
        assert_eq!(
            prom::value(&fams, "provision_keys_fetch_attempts", &[]),
            Some(1.0)
        );
        let kept = prom::check_stage(&fams, "keys", 7, None);
        assert!(
            kept.is_some() && kept > last_success,
            "{kept:?} {last_success:?}"
        );
    }
}

#[test]
fn exit_codes() {
    let srv = Server::start(|_, p| {
        if p.ends_with("missing.tgz") {
            Reply::Status(404)
        } else {
            Reply::Body(b"not a bundle".to_vec())
        }
    });
    let cfgdir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cases = [
        // 404: network (6)
        (srv.url("/missing.tgz"), "  insecure: true\n".to_string(), 6),
        // wrong hash: verification (7)
        (
            srv.url("/k.tgz"),
            format!("  sha256: {}\n", "0".repeat(64)),
            7,
        ),
        // right hash, bad content: verification (7)
        (
            srv.url("/k.tgz"),
            format!("  sha256: {}\n", sha256_hex(b"not a bundle")),
            7,
        ),
        // plain http, no hash, not insecure: bad config (3)
        (srv.url("/k.tgz"), String::new(), 3),
        // unknown field: bad config (3)
        (srv.url("/k.tgz"), "  insecur: true\n".to_string(), 3),
    ];
    for (url, extra, want) in cases {
        let config = write_config(cfgdir.path(), &url, &extra);
        let out = provision(&config, root.path(), "homelab.hostname=n", &["keys"]);
        assert_eq!(
            out.status.code(),
            Some(want),
            "{url} {extra}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("error"), "{}", text(&out.stderr));
    }
    assert!(!root.path().join("root").exists() && !root.path().join("etc").exists());
}
