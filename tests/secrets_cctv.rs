//! The age CCTV conformance vectors (`../shared/testdata/age-cctv/`, see its README), run twice:
//! through the decryption layer (every vector, no privileges needed) and through the whole
//! secrets stage on a real ramfs in a tempdir root (skipped, with the reason printed, only when
//! mounting is impossible). A missing vector directory fails the tests.

#[path = "common/secrets_util.rs"]
mod util;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use provision::exit::{code_of, Code};
use provision::secrets::decrypt::{self, FailureKind};
use provision::secrets::identities::Identities;
use provision::secrets::{self, SecretsConfig};

struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    /// Native X25519 identities (`AGE-SECRET-KEY-1…`).
    x25519: Vec<String>,
    /// Identities of types we do not support (ML-KEM hybrid `AGE-SECRET-KEY-PQ-1…`).
    other_identities: Vec<String>,
    passphrase: bool,
    armored: bool,
    /// The age file, decompressed if the header said `compressed: zlib`.
    body: Vec<u8>,
}

impl Vector {
    /// Whether we can be expected to decrypt it: it has an X25519 identity. Vectors keyed only
    /// by a passphrase or an ML-KEM hybrid identity use recipient types we do not support.
    fn supported(&self) -> bool {
        !self.x25519.is_empty()
    }

    /// The failure kinds acceptable for this vector (empty = must succeed).
    fn acceptable(&self) -> Vec<FailureKind> {
        use FailureKind::*;
        if !self.supported() {
            // scrypt / ML-KEM: reported as unsupported (or, when the header itself is broken,
            // as a header failure, or no match when a supported stanza sits beside them).
            return vec![Unsupported, Header, NoMatch];
        }
        match self.expect.as_str() {
            "success" => vec![],
            "no match" => vec![NoMatch],
            "HMAC failure" => vec![Mac],
            // A header that does not parse; inside armor the armor decoder may notice first.
            "header failure" if self.armored => vec![Header, Armor],
            "header failure" => vec![Header],
            "payload failure" if self.armored => vec![Payload, Armor],
            "payload failure" => vec![Payload],
            // Armor that is not recognised as armor at all is read as a (broken) binary header.
            "armor failure" => vec![Armor, Header],
            other => panic!("{}: unknown expect {other:?}", self.name),
        }
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/age-cctv")
}

fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the CCTV vectors must be at {} (shared test data, never copied into the repo): {e}",
            dir.display()
        )
    });
    let mut out = Vec::new();
    for e in entries {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") || !path.is_file() {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let split = raw
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("{name}: no blank line after the header"));
        let header = std::str::from_utf8(&raw[..split]).unwrap();
        let mut body = raw[split + 2..].to_vec();
        let mut v = Vector {
            name: name.clone(),
            expect: String::new(),
            payload: None,
            x25519: vec![],
            other_identities: vec![],
            passphrase: false,
            armored: false,
            body: vec![],
        };
        let mut compressed = false;
        for line in header.lines() {
            let (k, val) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}: bad header line {line:?}"));
            match k {
                "expect" => v.expect = val.to_string(),
                "payload" => v.payload = Some(val.to_string()),
                "identity" if val.starts_with("AGE-SECRET-KEY-1") => v.x25519.push(val.into()),
                "identity" => v.other_identities.push(val.into()),
                "passphrase" => v.passphrase = true,
                "armored" => v.armored = val == "yes",
                "compressed" => {
                    assert_eq!(val, "zlib", "{name}: unknown compression");
                    compressed = true;
                }
                "file key" | "comment" => {}
                other => panic!("{name}: unknown header key {other:?} (new vector format?)"),
            }
        }
        if compressed {
            let mut d = Vec::new();
            flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut d)
                .unwrap_or_else(|e| panic!("{name}: zlib: {e}"));
            body = d;
        }
        v.body = body;
        out.push(v);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 100,
        "only {} vectors in {}",
        out.len(),
        dir.display()
    );
    out
}

/// Write the vector's identity file: its X25519 identities, or a fresh unrelated X25519 key
/// when it has none we support (the file must still fail, cleanly).
fn identity_file(v: &Vector, dir: &Path) -> PathBuf {
    let p = dir.join(format!("{}.key", v.name));
    let text = if v.supported() {
        v.x25519.join("\n") + "\n"
    } else {
        format!(
            "{}\n",
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
        )
    };
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn cctv_vectors_through_the_decryptor() {
    let vectors = load_vectors();
    let tmp = tempfile::tempdir().unwrap();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for v in &vectors {
        let ids = Identities::load(&[identity_file(v, tmp.path())], false).unwrap();
        let mut out = Vec::new();
        let res = decrypt::decrypt_to(&v.body, &ids, &mut out);
        let acceptable = v.acceptable();
        let got = match &res {
            Ok(_) => "success".to_string(),
            Err(f) => format!("{:?}", f.kind),
        };
        *tally
            .entry(format!(
                "{:<16} {} -> {got}",
                v.expect,
                if v.supported() {
                    ""
                } else {
                    "(unsupported type)"
                }
            ))
            .or_default() += 1;
        match (&res, acceptable.is_empty()) {
            (Ok(_), true) => {
                if Some(util::sha256_hex(&out)) != v.payload {
                    wrong.push(format!("{}: payload hash differs", v.name));
                }
            }
            (Err(f), false) if acceptable.contains(&f.kind) => {
                // Whatever plaintext was released before a payload failure must be the
                // expected prefix (the stage discards it, but it must be right).
                if v.expect == "payload failure" && v.supported() {
                    if Some(util::sha256_hex(&out)) != v.payload {
                        wrong.push(format!(
                            "{}: released prefix before the payload failure has the wrong hash",
                            v.name
                        ));
                    }
                } else if !out.is_empty() {
                    wrong.push(format!("{}: released plaintext before failing", v.name));
                }
                assert!(!f.to_string().is_empty());
            }
            _ => wrong.push(format!(
                "{} (expect {}): got {got} ({}), acceptable {acceptable:?}",
                v.name,
                v.expect,
                res.as_ref()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            )),
        }
    }
    for (k, n) in &tally {
        println!("{n:4}  {k}");
    }
    assert!(
        wrong.is_empty(),
        "{} vectors wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn ml_kem_identities_are_named_as_unsupported() {
    let vectors = load_vectors();
    let v = vectors
        .iter()
        .find(|v| !v.other_identities.is_empty())
        .expect("a vector with an ML-KEM identity");
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("pq.key");
    std::fs::write(&p, format!("{}\n", v.other_identities[0])).unwrap();
    let errs = Identities::load(std::slice::from_ref(&p), false).unwrap_err();
    let msg = errs[0].to_string();
    assert!(msg.contains("ML-KEM") && msg.contains("pq.key"), "{msg}");
    assert!(
        !msg.contains(&v.other_identities[0][20..]),
        "key material in {msg}"
    );
}

#[test]
fn cctv_vectors_through_the_secrets_stage() {
    let vectors = load_vectors();
    if let Err(why) = util::mount_possible() {
        println!("SKIP cctv_vectors_through_the_secrets_stage: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let conf = tmp.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    util::write_users(&root);
    let _unmount = util::Unmount(vec![root.join("run/agenix.d")]);
    let ctx = util::ctx(&root, &conf, false);
    let mut live: Option<u64> = None;
    let mut wrong = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for v in &vectors {
        std::fs::write(conf.join(format!("{}.age", v.name)), &v.body).unwrap();
        let key = identity_file(v, &conf);
        let yaml = format!(
            // The largest vectors (257 chunks of 64 KiB) are over the 16 MiB default cap.
            "max_file_size: 33554432\nidentity_paths: [{}]\nsecrets:\n  - name: {n}\n    file: {n}.age\n    path: /srv/secrets/{n}\n    owner: svc\n    mode: \"0440\"\n",
            key.file_name().unwrap().to_string_lossy(),
            n = v.name
        );
        let cfg: SecretsConfig = serde_norway::from_str(&yaml).unwrap();
        let res = secrets::run(&ctx, &cfg);
        let link = root.join("run/agenix");
        let current = std::fs::read_link(&link).ok();
        let at_path = root.join("srv/secrets").join(&v.name);
        let acceptable = v.acceptable();
        match res {
            Ok(out) => {
                ok += 1;
                let g = out.details["generation"].as_u64().unwrap();
                if !acceptable.is_empty() {
                    wrong.push(format!("{}: succeeded, expected {}", v.name, v.expect));
                    continue;
                }
                let data = std::fs::read(util::resolve(
                    &root,
                    Path::new(&format!("/srv/secrets/{}", v.name)),
                ))
                .unwrap_or_default();
                if Some(util::sha256_hex(&data)) != v.payload {
                    wrong.push(format!("{}: wrong payload at its path", v.name));
                }
                assert_eq!(
                    current,
                    Some(PathBuf::from(format!("/run/agenix.d/{g}"))),
                    "{}",
                    v.name
                );
                if let Some(prev) = live {
                    assert!(
                        root.join(format!("run/agenix.d/{prev}")).is_dir(),
                        "previous generation kept"
                    );
                }
                live = Some(g);
            }
            Err(e) => {
                failed += 1;
                let msg = format!("{e:#}");
                if acceptable.is_empty() {
                    wrong.push(format!("{}: failed: {msg}", v.name));
                    continue;
                }
                assert_eq!(code_of(&e), Code::Decrypt, "{}: {msg}", v.name);
                if !msg.contains(&v.name) || !acceptable.iter().any(|k| msg.contains(k.as_str())) {
                    wrong.push(format!(
                        "{}: error does not name the secret and reason: {msg}",
                        v.name
                    ));
                }
                if at_path.symlink_metadata().is_ok() {
                    wrong.push(format!("{}: something left at its path", v.name));
                }
                // Not switched: the previous generation is still live, and no other exists.
                assert_eq!(
                    current,
                    live.map(|g| PathBuf::from(format!("/run/agenix.d/{g}"))),
                    "{}",
                    v.name
                );
                let gens: Vec<_> = std::fs::read_dir(root.join("run/agenix.d"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                let found = gens
                    .iter()
                    .any(|d| root.join("run/agenix.d").join(d).join(&v.name).exists());
                assert!(
                    !found,
                    "{}: decrypted file left in a generation: {gens:?}",
                    v.name
                );
            }
        }
    }
    println!(
        "stage: {ok} vectors decrypted, {failed} failed as expected or not ({} wrong)",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{} vectors wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
