//! Keys stage against real servers on 127.0.0.1: a scripted HTTP server started by each test
//! (port 0) and python3's http.server over TLS with a CA made by `openssl`. Retry knobs are
//! small so the whole file runs in seconds.

#[path = "common/keys_helpers.rs"]
mod helpers;

use helpers::*;
use provision::exit::{code_of, Code};
use provision::keys::{self, KeysConfig};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use tar::EntryType as T;

const CMDLINE: &str = "quiet homelab.hostname=node-1 BOOTIF=01-52-54-00-aa-bb-cc";

/// A config with fast retry knobs; `extra` is more YAML.
fn cfg(url: &str, extra: &str) -> KeysConfig {
    let base = format!(
        "url: \"{url}\"\nconnect_timeout_s: 1\nrequest_timeout_s: 1\ndeadline_s: 5\n\
         initial_backoff_ms: 50\nmax_backoff_ms: 300\n"
    );
    let mut m: serde_norway::Mapping = serde_norway::from_str(&base).unwrap();
    if !extra.trim().is_empty() {
        let e: serde_norway::Mapping =
            serde_norway::from_str(extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
        for (k, v) in e {
            m.insert(k, v);
        }
    }
    serde_norway::from_value(serde_norway::Value::Mapping(m))
        .unwrap_or_else(|e| panic!("{base}{extra}: {e}"))
}

struct Keys {
    _dir: tempfile::TempDir,
    root: Vec<u8>,
    root_pub: String,
    host: Vec<u8>,
    host_pub: String,
}

fn keys(host_kind: &str) -> Keys {
    let d = tempfile::tempdir().unwrap();
    let (root, root_pub) = keygen(d.path(), "root", "ed25519");
    let (host, host_pub) = keygen(d.path(), "host", host_kind);
    Keys {
        _dir: d,
        root,
        root_pub,
        host,
        host_pub,
    }
}

fn good_bundle(k: &Keys) -> Vec<u8> {
    targz(&[
        ("root_privkey", T::Regular, &k.root),
        ("host_privkey", T::Regular, &k.host),
    ])
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Existing keys that a failed run must leave exactly as they are.
fn seed_existing(root: &Path) -> Vec<(String, Vec<u8>)> {
    let files = [
        ("root/.ssh/id_ed25519", b"old root key".to_vec()),
        ("etc/ssh/ssh_host_rsa_key", b"old host key".to_vec()),
    ];
    for (p, d) in &files {
        let p = root.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, d).unwrap();
    }
    files
        .iter()
        .map(|(p, d)| (p.to_string(), d.clone()))
        .collect()
}

fn assert_untouched(root: &Path, before: &[(String, Vec<u8>)]) {
    for (p, d) in before {
        assert_eq!(&fs::read(root.join(p)).unwrap(), d, "{p} changed");
    }
    let want: Vec<String> = {
        let mut v: Vec<String> = before.iter().map(|(p, _)| p.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(files_under(root), want, "files appeared under the root");
}

#[test]
fn success_installs_keys_pub_files_and_reports_fingerprints() {
    let k = keys("rsa");
    let bundle = good_bundle(&k);
    let b = bundle.clone();
    let srv = Server::start(move |_, _| Reply::Body(b.clone()));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/keys/{hostname}.tar.gz"),
        &format!("sha256: {}\n", sha256_hex(&bundle)),
    );
    let ctx = context(root.path(), CMDLINE, false);

    let st = keys::status(&ctx, &c);
    let listed = st["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{st}");
    assert!(listed.iter().all(|e| e["fingerprint"] == "missing"), "{st}");

    let out = keys::run(&ctx, &c).unwrap();
    assert_eq!(srv.requests(), vec!["/keys/node-1.tar.gz"]);

    let rk = root.path().join("root/.ssh/id_ed25519");
    let hk = root.path().join("etc/ssh/ssh_host_rsa_key");
    assert_eq!(fs::read(&rk).unwrap(), k.root);
    assert_eq!(fs::read(&hk).unwrap(), k.host);
    assert_eq!(mode(&rk), 0o600);
    assert_eq!(mode(&hk), 0o600);
    assert_eq!(mode(&root.path().join("root/.ssh")), 0o700);
    let rpub = root.path().join("root/.ssh/id_ed25519.pub");
    let hpub = root.path().join("etc/ssh/ssh_host_rsa_key.pub");
    assert_eq!(mode(&rpub), 0o644);
    // the derived .pub is what ssh-keygen wrote (type, base64, comment)
    assert_eq!(fs::read_to_string(&rpub).unwrap().trim(), k.root_pub);
    assert_eq!(fs::read_to_string(&hpub).unwrap().trim(), k.host_pub);
    if rustix::process::geteuid().is_root() {
        assert_eq!(fs::metadata(&rk).unwrap().uid(), 0);
        assert_eq!(fs::metadata(&hk).unwrap().gid(), 0);
    }

    let d = &out.details;
    assert_eq!(d["url"], srv.url("/keys/node-1.tar.gz"));
    assert!(d["verification"]["summary"]
        .as_str()
        .unwrap()
        .contains("sha256"));
    let files = d["files"].as_array().unwrap();
    let by_path = |p: &str| files.iter().find(|f| f["path"] == p).unwrap().clone();
    let r = by_path("/root/.ssh/id_ed25519");
    assert_eq!(r["fingerprint"], fingerprint(&rk));
    assert_eq!(r["type"], "ssh-ed25519");
    assert_eq!(r["outcome"], "written");
    let h = by_path("/etc/ssh/ssh_host_rsa_key");
    assert_eq!(h["fingerprint"], fingerprint(&hk));
    assert_eq!(h["type"], "ssh-rsa");
    // fingerprints, never key bytes, in the report and the text
    let all = serde_json::to_string(&out).unwrap();
    assert!(!all.contains("PRIVATE KEY"), "{all}");
    assert!(d["text"].as_str().unwrap().contains(&fingerprint(&hk)));

    let st = keys::status(&ctx, &c);
    let e = st["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/root/.ssh/id_ed25519")
        .unwrap()
        .clone();
    assert_eq!(e["fingerprint"], fingerprint(&rk));
    assert_eq!(e["pub"], "ok");

    // A second run changes nothing and says so.
    let again = keys::run(&ctx, &c).unwrap();
    let files = again.details["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{}", again.details);
    assert!(
        files.iter().all(|f| f["outcome"] == "unchanged"),
        "{}",
        again.details
    );
}

#[test]
fn mac_template_cmdline_url_and_sha_override() {
    let k = keys("ecdsa");
    let bundle = good_bundle(&k);
    let b = bundle.clone();
    let srv = Server::start(move |_, _| Reply::Body(b.clone()));
    let root = tempfile::tempdir().unwrap();
    // config: a wrong hash and a URL that is not served; the cmdline overrides both
    let c = cfg(&srv.url("/wrong"), &format!("sha256: {}\n", "0".repeat(64)));
    let line = format!(
        "{CMDLINE} homelab.keys_url={} homelab.keys_sha256={}",
        srv.url("/by-mac/{mac}.tgz"),
        sha256_hex(&bundle).to_uppercase()
    );
    let out = keys::run(&context(root.path(), &line, false), &c).unwrap();
    assert_eq!(srv.requests(), vec!["/by-mac/52:54:00:aa:bb:cc.tgz"]);
    assert!(out.details["verification"]["sha256_from"]
        .as_str()
        .unwrap()
        .contains("homelab.keys_sha256"));
    let hk = root.path().join("etc/ssh/ssh_host_rsa_key");
    assert_eq!(
        out.details["files"][0]["fingerprint"].as_str().unwrap(),
        fingerprint(&hk)
    );
}

#[test]
fn wrong_sha256_is_rejected_and_nothing_written() {
    let k = keys("ed25519");
    let b = good_bundle(&k);
    let srv = Server::start(move |_, _| Reply::Body(b.clone()));
    let root = tempfile::tempdir().unwrap();
    let before = seed_existing(root.path());
    let c = cfg(
        &srv.url("/k.tgz"),
        &format!("sha256: {}\n", "ab".repeat(32)),
    );
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Verify, "{msg}");
    assert!(
        msg.contains("sha256 mismatch") && msg.contains("/k.tgz"),
        "{msg}"
    );
    assert_eq!(srv.requests().len(), 1, "a hash mismatch is not retried");
    assert_untouched(root.path(), &before);
}

#[test]
fn not_found_fails_without_retrying() {
    let srv = Server::start(|_, _| Reply::Status(404));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(&srv.url("/keys/{hostname}.tar.gz"), "insecure: true\n");
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Network, "{msg}");
    assert!(
        msg.contains("404") && msg.contains("node-1.tar.gz"),
        "{msg}"
    );
    assert_eq!(srv.requests().len(), 1);
    assert!(files_under(root.path()).is_empty());
}

#[test]
fn server_errors_are_retried_until_success() {
    let k = keys("ed25519");
    let b = good_bundle(&k);
    let srv = Server::start(move |i, _| match i {
        0 => Reply::Status(503),
        1 => Reply::Status(429),
        2 => Reply::Status(500),
        _ => Reply::Body(b.clone()),
    });
    let root = tempfile::tempdir().unwrap();
    let c = cfg(&srv.url("/k.tgz"), "insecure: true\n");
    keys::run(&context(root.path(), CMDLINE, false), &c).unwrap();
    assert_eq!(srv.requests().len(), 4);
    assert!(root.path().join("root/.ssh/id_ed25519").exists());
}

#[test]
fn max_retries_bounds_the_attempts() {
    let srv = Server::start(|_, _| Reply::Status(502));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(&srv.url("/k.tgz"), "insecure: true\nmax_retries: 2\n");
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    assert_eq!(code_of(&e), Code::Network);
    assert!(
        format!("{e:#}").contains("giving up after 3 attempt(s)"),
        "{e:#}"
    );
    assert_eq!(srv.requests().len(), 3);
}

#[test]
fn server_down_at_first_then_up_succeeds_within_deadline() {
    let k = keys("ed25519");
    let bundle = good_bundle(&k);
    let b = bundle.clone();
    let srv = Server::start_after(Duration::from_millis(1200), move |_, _| {
        Reply::Body(b.clone())
    });
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/k.tgz"),
        &format!("sha256: {}\n", sha256_hex(&bundle)),
    );
    keys::run(&context(root.path(), CMDLINE, false), &c).unwrap();
    assert_eq!(
        srv.requests().len(),
        1,
        "only the attempt after start-up reached it"
    );
    assert_eq!(
        fs::read(root.path().join("root/.ssh/id_ed25519")).unwrap(),
        k.root
    );
}

#[test]
fn server_down_past_the_deadline_is_a_network_error() {
    // a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/k.tgz");
    let c = cfg(&url, "insecure: true\ndeadline_s: 1\n");
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Network, "{msg}");
    assert!(
        msg.contains("deadline of 1.0 s reached") && msg.contains(&url),
        "{msg}"
    );
    assert!(files_under(root.path()).is_empty());
}

#[test]
fn stalled_server_times_out_and_is_retried() {
    let k = keys("ed25519");
    let b = good_bundle(&k);
    let srv = Server::start(move |i, _| {
        if i == 0 {
            Reply::Stall(Duration::from_secs(6))
        } else {
            Reply::Body(b.clone())
        }
    });
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/k.tgz"),
        "insecure: true\nrequest_timeout_s: 1.5\n",
    );
    keys::run(&context(root.path(), CMDLINE, false), &c).unwrap();
    // At least 2: on a loaded host a healthy request can outlast the short timeout too.
    assert!(srv.requests().len() >= 2, "{:?}", srv.requests());
    assert!(root.path().join("etc/ssh/ssh_host_rsa_key").exists());
}

#[test]
fn trickling_body_times_out_and_is_retried() {
    let k = keys("ed25519");
    let b = good_bundle(&k);
    let srv = Server::start(move |i, _| {
        if i == 0 {
            Reply::Trickle(b.clone(), Duration::from_millis(50))
        } else {
            Reply::Body(b.clone())
        }
    });
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/k.tgz"),
        "insecure: true\nrequest_timeout_s: 1.5\n",
    );
    keys::run(&context(root.path(), CMDLINE, false), &c).unwrap();
    assert!(srv.requests().len() >= 2, "{:?}", srv.requests());
    assert_eq!(
        fs::read(root.path().join("root/.ssh/id_ed25519")).unwrap(),
        k.root
    );
}

#[test]
fn kernel_hostname_when_the_cmdline_has_none() {
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        "http://127.0.0.1:9/keys/{hostname}.tar.gz",
        "insecure: true\n",
    );
    let kernel = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let kernel = kernel.trim();
    let res = keys::run(&context(root.path(), "quiet", true), &c);
    if provision::cmdline::valid_hostname(kernel) {
        let out = res.unwrap();
        assert_eq!(
            out.details["url"],
            format!("http://127.0.0.1:9/keys/{kernel}.tar.gz")
        );
    } else {
        let e = res.unwrap_err();
        assert_eq!(code_of(&e), Code::BadInput);
        assert!(format!("{e:#}").contains("homelab.hostname="), "{e:#}");
    }
}

#[test]
fn always_stalling_server_fails_at_the_deadline() {
    let srv = Server::start(|_, _| Reply::Stall(Duration::from_secs(3)));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/k.tgz"),
        "insecure: true\nrequest_timeout_s: 0.4\ndeadline_s: 1.5\n",
    );
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Network, "{msg}");
    assert!(msg.contains("deadline"), "{msg}");
    assert!(srv.requests().len() >= 2, "{:?}", srv.requests());
    assert!(files_under(root.path()).is_empty());
}

#[test]
fn malicious_bundles_are_rejected_and_nothing_written() {
    let k = keys("ed25519");
    let big = vec![b'z'; 300_000];
    let good = good_bundle(&k);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "traversal",
            targz(&[
                ("root_privkey", T::Regular, &k.root),
                ("../../etc/ssh/host_privkey", T::Regular, &k.host),
            ]),
            "`..`",
        ),
        (
            "absolute path",
            targz(&[(
                "/root/.ssh/authorized_keys",
                T::Regular,
                b"ssh-ed25519 AAAA x",
            )]),
            "absolute path",
        ),
        (
            "symlink",
            targz(&[
                ("root_privkey", T::Symlink, b""),
                ("host_privkey", T::Regular, &k.host),
            ]),
            "symlink",
        ),
        (
            "hard link",
            targz(&[("host_privkey", T::Link, b"")]),
            "hard link",
        ),
        (
            "device node",
            targz(&[
                ("root_privkey", T::Regular, &k.root),
                ("host_privkey", T::Block, b""),
            ]),
            "device node",
        ),
        (
            "oversize",
            targz(&[
                ("root_privkey", T::Regular, &k.root),
                ("host_privkey", T::Regular, &k.host),
                ("filler", T::Regular, &big),
            ]),
            "max_bundle_bytes",
        ),
        ("truncated gzip", truncated, "truncated"),
        (
            "non-key content",
            targz(&[
                ("root_privkey", T::Regular, &k.root),
                ("host_privkey", T::Regular, b"#!/bin/sh\nrm -rf /\n"),
            ]),
            "member \"host_privkey\": not a parseable OpenSSH private key",
        ),
        (
            "public key instead of private",
            targz(&[
                ("root_privkey", T::Regular, k.root_pub.as_bytes()),
                ("host_privkey", T::Regular, &k.host),
            ]),
            "member \"root_privkey\"",
        ),
        ("not gzip", b"<html>oops</html>".to_vec(), "not a gzip file"),
        (
            "oversize download",
            // incompressible: the download itself is over the cap
            (0..100_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            "more than max_bundle_bytes (65536)",
        ),
    ];
    for (what, bundle, want) in cases {
        let b = bundle.clone();
        let srv = Server::start(move |_, _| Reply::Body(b.clone()));
        let root = tempfile::tempdir().unwrap();
        let before = seed_existing(root.path());
        // the hash matches: the content checks are what must reject it
        let c = cfg(
            &srv.url("/k.tgz"),
            &format!("sha256: {}\nmax_bundle_bytes: 65536\n", sha256_hex(&bundle)),
        );
        let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
        let msg = format!("{e:#}");
        assert_eq!(code_of(&e), Code::Verify, "{what}: {msg}");
        assert!(msg.contains(want), "{what}: {msg}");
        assert!(
            msg.contains("/k.tgz"),
            "{what}: the error names the URL: {msg}"
        );
        assert!(!msg.contains("PRIVATE KEY"), "{what}: key bytes in {msg}");
        assert_eq!(
            srv.requests().len(),
            1,
            "{what}: rejections are not retried"
        );
        assert_untouched(root.path(), &before);
    }
}

#[test]
fn unmapped_members_are_ignored_and_mapping_is_configurable() {
    let k = keys("ed25519");
    let b = targz(&[
        ("./", T::Directory, b""),
        ("./admin_key", T::Regular, &k.root),
        ("./notes.txt", T::Regular, b"hello"),
    ]);
    let srv = Server::start(move |_, _| Reply::Body(b.clone()));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/k.tgz"),
        "insecure: true\nmembers:\n  admin_key: {path: /home/admin/.ssh/id_ed25519, mode: \"0640\"}\n  \
         extra: {path: /etc/ssh/extra_key, optional: true}\n",
    );
    let out = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap();
    assert_eq!(
        out.details["ignored_members"],
        serde_json::json!(["notes.txt"])
    );
    let p = root.path().join("home/admin/.ssh/id_ed25519");
    assert_eq!(fs::read(&p).unwrap(), k.root);
    assert_eq!(mode(&p), 0o640);
    assert_eq!(
        files_under(root.path()),
        vec![
            "home/admin/.ssh/id_ed25519",
            "home/admin/.ssh/id_ed25519.pub"
        ]
    );
}

#[test]
fn a_target_that_cannot_be_replaced_leaves_everything_untouched() {
    let k = keys("ed25519");
    let b = good_bundle(&k);
    let srv = Server::start(move |_, _| Reply::Body(b.clone()));
    let root = tempfile::tempdir().unwrap();
    // the host key path is a directory: refused before the root key is written
    fs::create_dir_all(root.path().join("etc/ssh/ssh_host_rsa_key")).unwrap();
    let c = cfg(&srv.url("/k.tgz"), "insecure: true\n");
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("ssh_host_rsa_key") && msg.contains("not a regular file"),
        "{msg}"
    );
    assert!(
        files_under(root.path()).is_empty(),
        "{:?}",
        files_under(root.path())
    );
}

#[test]
fn plain_http_without_hash_is_refused_unless_insecure() {
    let srv = Server::start(|_, _| Reply::Status(500));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(&srv.url("/k.tgz"), "");
    let e = keys::run(&context(root.path(), CMDLINE, false), &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::BadInput, "{msg}");
    assert!(msg.contains("plain http without a sha256"), "{msg}");
    assert!(srv.requests().is_empty(), "nothing fetched");
    // dry run says the same
    let e = keys::run(&context(root.path(), CMDLINE, true), &c).unwrap_err();
    assert_eq!(code_of(&e), Code::BadInput);
}

#[test]
fn bad_cmdline_values_fail_clearly() {
    let root = tempfile::tempdir().unwrap();
    let c = cfg("http://127.0.0.1:9/{hostname}", "insecure: true\n");
    for (line, want) in [
        ("homelab.keys_sha256=xyz", "homelab.keys_sha256"),
        ("homelab.keys_url=ftp://x", "homelab.keys_url"),
        ("homelab.hostname=-bad", "homelab.hostname"),
    ] {
        let e = keys::run(&context(root.path(), line, true), &c).unwrap_err();
        let msg = format!("{e:#}");
        assert_eq!(code_of(&e), Code::BadInput, "{line}: {msg}");
        assert!(msg.contains(want), "{line}: {msg}");
    }
    let c = cfg("http://127.0.0.1:9/{mac}", "insecure: true\n");
    let e = keys::run(&context(root.path(), "homelab.hostname=a", true), &c).unwrap_err();
    assert!(format!("{e:#}").contains("no BOOTIF"), "{e:#}");
    let e = keys::run(&context(root.path(), "BOOTIF=zz", true), &c).unwrap_err();
    assert!(format!("{e:#}").contains("BOOTIF"), "{e:#}");
}

#[test]
fn dry_run_shows_url_verification_and_files_without_network() {
    let srv = Server::start(|_, _| Reply::Status(500));
    let root = tempfile::tempdir().unwrap();
    let c = cfg(
        &srv.url("/keys/{hostname}.tar.gz"),
        &format!("sha256: {}\n", "cd".repeat(32)),
    );
    let out = keys::run(&context(root.path(), CMDLINE, true), &c).unwrap();
    assert!(srv.requests().is_empty(), "a dry run makes no request");
    assert!(files_under(root.path()).is_empty());
    let d = &out.details;
    assert_eq!(d["url"], srv.url("/keys/node-1.tar.gz"));
    assert_eq!(d["verification"]["sha256"], "cd".repeat(32));
    let paths: Vec<&str> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec!["/etc/ssh/ssh_host_rsa_key", "/root/.ssh/id_ed25519"]
    );
    let text = d["text"].as_str().unwrap();
    assert!(
        text.contains("no network access") && text.contains("node-1.tar.gz"),
        "{text}"
    );
    assert!(text.contains("/root/.ssh/id_ed25519.pub"), "{text}");
}

#[test]
fn https_with_test_ca() {
    let k = keys("ed25519");
    let tmp = tempfile::tempdir().unwrap();
    let ca = make_ca(tmp.path(), "good");
    let other = make_ca(tmp.path(), "other");
    let docroot = tmp.path().join("www/keys");
    fs::create_dir_all(&docroot).unwrap();
    fs::write(docroot.join("node-1.tar.gz"), good_bundle(&k)).unwrap();
    let srv = HttpsServer::start(&tmp.path().join("www"), &ca);
    let url = format!("https://127.0.0.1:{}/keys/{{hostname}}.tar.gz", srv.port);

    // the right CA: no hash needed
    let root = tempfile::tempdir().unwrap();
    let c = cfg(&url, &format!("ca_file: {}\n", ca.ca_pem.display()));
    let ctx = context(root.path(), CMDLINE, false);
    // ca_file is absolute: it is a target-system path, so it lives under --root
    let ca_in_root = root.path().join(ca.ca_pem.strip_prefix("/").unwrap());
    fs::create_dir_all(ca_in_root.parent().unwrap()).unwrap();
    fs::copy(&ca.ca_pem, &ca_in_root).unwrap();
    let out = keys::run(&ctx, &c).unwrap();
    assert!(out.details["verification"]["summary"]
        .as_str()
        .unwrap()
        .contains("HTTPS with CA"));
    assert_eq!(
        fs::read(root.path().join("root/.ssh/id_ed25519")).unwrap(),
        k.root
    );

    // another CA: a verification failure at once, nothing written
    let root = tempfile::tempdir().unwrap();
    let cfgdir = tempfile::tempdir().unwrap();
    fs::copy(&other.ca_pem, cfgdir.path().join("ca.pem")).unwrap();
    let c = cfg(&url, "ca_file: ca.pem\n"); // relative: next to the config file
    let mut ctx = context(root.path(), CMDLINE, false);
    ctx.config_dir = cfgdir.path().to_path_buf();
    let e = keys::run(&ctx, &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Verify, "{msg}");
    assert!(
        msg.contains("certificate") && msg.contains("127.0.0.1"),
        "{msg}"
    );
    assert!(files_under(root.path()).is_empty());

    // a CA file that is not PEM is bad config
    fs::write(cfgdir.path().join("ca.pem"), "junk").unwrap();
    let e = keys::run(&ctx, &c).unwrap_err();
    assert_eq!(code_of(&e), Code::BadInput, "{e:#}");

    // ca_file with a plain http URL is bad config
    let c = cfg("http://127.0.0.1:9/k", "ca_file: ca.pem\ninsecure: true\n");
    let e = keys::run(&ctx, &c).unwrap_err();
    assert_eq!(code_of(&e), Code::BadInput);
    assert!(format!("{e:#}").contains("plain http"));
}

#[test]
fn status_reports_invalid_and_mismatched_pub() {
    let k = keys("ed25519");
    let root = tempfile::tempdir().unwrap();
    let ctx = context(root.path(), CMDLINE, false);
    let c = cfg("http://x/k", "insecure: true\n");
    let rk = root.path().join("root/.ssh/id_ed25519");
    fs::create_dir_all(rk.parent().unwrap()).unwrap();
    fs::write(&rk, &k.root).unwrap();
    let want = fingerprint(&rk);
    fs::write(rk.with_extension("pub"), &k.host_pub).unwrap();
    let hk = root.path().join("etc/ssh/ssh_host_rsa_key");
    fs::create_dir_all(hk.parent().unwrap()).unwrap();
    fs::write(&hk, "garbage").unwrap();
    let st = keys::status(&ctx, &c);
    let get = |p: &str| {
        st["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == p)
            .unwrap()
            .clone()
    };
    let r = get("/root/.ssh/id_ed25519");
    assert_eq!(r["fingerprint"], want);
    assert_eq!(r["pub"], "mismatch");
    let h = get("/etc/ssh/ssh_host_rsa_key");
    assert_eq!(h["fingerprint"], "invalid");
    assert!(!st.to_string().contains("garbage"));
}

#[test]
fn https_redirect_to_plain_http_is_refused() {
    let k = keys("ed25519");
    let bundle = good_bundle(&k);
    let b = bundle.clone();
    let plain = Server::start(move |_, _| Reply::Body(b.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let ca = make_ca(tmp.path(), "good");
    fs::create_dir_all(tmp.path().join("www")).unwrap();
    let srv = HttpsServer::start(&tmp.path().join("www"), &ca);
    let root = tempfile::tempdir().unwrap();
    let mut ctx = context(root.path(), CMDLINE, false);
    ctx.config_dir = ca.ca_pem.parent().unwrap().to_path_buf();
    // even with a matching hash, an https source never silently becomes plain http
    let c = cfg(
        &format!(
            "https://127.0.0.1:{}/to-http/127.0.0.1:{}/k.tgz",
            srv.port, plain.port
        ),
        &format!("ca_file: ca.pem\nsha256: {}\n", sha256_hex(&bundle)),
    );
    let e = keys::run(&ctx, &c).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(code_of(&e), Code::Network, "{msg}");
    assert!(msg.contains("redirect"), "{msg}");
    assert!(plain.requests().is_empty(), "followed the downgrade: {e:#}");
    assert!(files_under(root.path()).is_empty(), "{e:#}");
}
