//! sops files from an independent encoder (tests/sops_encoder.py, Python `cryptography` plus the
//! `age` CLI): first it must reproduce the real sops-written files' ciphertexts and MAC byte for
//! byte, then it writes YAML, JSON, binary, dotenv and INI files (lists in lists, unicode keys,
//! ints/floats/booleans, comments, unencrypted values, every encryption rule, Shamir key groups,
//! each identity kind) and hostile variants into a tempdir; each must decrypt to exactly the
//! plaintext the encoder recorded, or fail with the recorded kind, key path and reason.
//!
//! Skipped, with the reason printed, when python3 with `cryptography`, `age` or `ssh-keygen` is
//! missing (tools/install-deps installs them).

#[path = "common/secrets_util.rs"]
mod util;

use std::path::PathBuf;

const CAP: u64 = provision::secrets::guard::DEFAULT_MAX_FILE_SIZE;

use provision::secrets::sops::keys::SopsKeys;
use provision::secrets::sops::tree::{go_format_float, Item, Key, Value};
use provision::secrets::sops::{self, ErrorKind, Format};
use serde_json::{json, Value as Json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tree_json(items: &[Item]) -> Json {
    Json::Array(
        items
            .iter()
            .map(|i| match &i.key {
                Key::Comment(c) => json!(["#", c]),
                Key::Name(n) => json!([n, value_json(&i.value)]),
            })
            .collect(),
    )
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Map(items) => json!({ "map": tree_json(items) }),
        Value::List(l) => json!({
            "list": l.iter().filter(|x| !matches!(x, Value::Comment(_))).map(value_json).collect::<Vec<_>>()
        }),
        Value::Str(s) => json!({ "str": s }),
        Value::Bytes(b) => json!({ "bytes": hex::encode(b) }),
        Value::Int(i) => json!({ "int": i }),
        Value::Float(f) => json!({ "float": go_format_float(*f) }),
        Value::Bool(b) => json!({ "bool": b }),
        Value::Null => Json::Null,
        Value::Comment(c) => json!({ "#": c }),
    }
}

fn format_of(s: &str) -> Format {
    match s {
        "yaml" => Format::Yaml,
        "json" => Format::Json,
        "binary" => Format::Binary,
        "dotenv" => Format::Dotenv,
        "ini" => Format::Ini,
        other => panic!("format {other}"),
    }
}

fn kind_of(s: &str) -> ErrorKind {
    match s {
        "key" => ErrorKind::Key,
        "value" => ErrorKind::Value,
        "mac" => ErrorKind::Mac,
        "format" => ErrorKind::Format,
        other => panic!("kind {other}"),
    }
}

#[test]
fn encoder_files_decrypt_exactly_and_hostile_ones_fail_closed() {
    let py = match util::sops_encoder_tools() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED sops encoder tests: {why} (tools/install-deps installs it)");
            return;
        }
    };
    let real = root().join("../shared/testdata/sops-nix");
    assert!(real.is_dir(), "test data missing: {}", real.display());
    // The encoder must first agree with sops itself.
    let said = util::sops_encoder(&py, &["check-real", real.to_str().unwrap()]);
    assert!(
        said.contains("secrets.yaml: 4 values and the MAC reproduced"),
        "{said}"
    );

    let dir = tempfile::tempdir().unwrap();
    util::sops_encoder(&py, &["generate", dir.path().to_str().unwrap()]);
    let cases: Json =
        serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();

    // ssh-to-age as computed in Python (cryptography's X25519) and here.
    let k = SopsKeys::load(&[dir.path().join("host_ed25519")]).unwrap();
    assert_eq!(
        k.ssh_to_age_recipients(),
        [cases["ssh_to_age"]["host_ed25519"].as_str().unwrap()]
    );

    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases["cases"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let path = dir.path().join(file);
        let ids: Vec<PathBuf> = case["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| dir.path().join(i.as_str().unwrap()))
            .collect();
        let keys = SopsKeys::load(&ids).unwrap();
        let got = sops::decrypt_file(
            &path,
            format_of(case["format"].as_str().unwrap()),
            &keys,
            CAP,
        );
        if let Some(err) = case.get("error") {
            match got {
                Ok(_) => failures.push(format!("{file}: decrypted, expected {err}")),
                Err(e) => {
                    let msg = e.to_string();
                    let ok = e.kind == kind_of(err["kind"].as_str().unwrap())
                        && msg.contains(err["contains"].as_str().unwrap())
                        && msg.contains(&path.display().to_string())
                        && err
                            .get("at")
                            .map_or(true, |at| e.at.as_deref() == at.as_str());
                    if !ok {
                        failures.push(format!("{file}: expected {err}, got {:?} {msg}", e.kind));
                    }
                }
            }
        } else {
            match got {
                Err(e) => failures.push(format!("{file}: {e}")),
                Ok(doc) => {
                    if let Some(hex_data) = case.get("binary") {
                        let want = hex::decode(hex_data.as_str().unwrap()).unwrap();
                        if doc.binary_data() != Some(want.as_slice()) {
                            failures.push(format!("{file}: binary data differs"));
                        }
                    } else {
                        let got = Json::Array(doc.branches.iter().map(|b| tree_json(b)).collect());
                        if got != case["expect"] {
                            failures.push(format!(
                                "{file}: plaintext differs\n got  {got}\n want {}",
                                case["expect"]
                            ));
                        }
                    }
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
