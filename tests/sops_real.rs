//! The real files the sops CLI wrote, from sops-nix's test assets (`../shared/testdata/sops-nix/`,
//! see its README), read where they are: they must decrypt to their known values with each kind
//! of identity they were encrypted to, and the PGP-only ones must be refused naming the
//! recipient type and the way out. A missing directory fails the tests.

use std::path::{Path, PathBuf};

const CAP: u64 = provision::secrets::guard::DEFAULT_MAX_FILE_SIZE;

use provision::secrets::sops::keys::SopsKeys;
use provision::secrets::sops::tree::Value;
use provision::secrets::sops::{self, ErrorKind, Format};

fn assets() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sops-nix");
    assert!(d.is_dir(), "test data missing: {}", d.display());
    d
}

fn keys(files: &[&str]) -> SopsKeys {
    let d = assets();
    SopsKeys::load(&files.iter().map(|f| d.join(f)).collect::<Vec<_>>()).unwrap()
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn check_secrets_yaml(k: &SopsKeys) {
    let doc = sops::decrypt_file(&assets().join("secrets.yaml"), Format::Yaml, k, CAP).unwrap();
    assert_eq!(doc.version, "3.7.1");
    assert_eq!(doc.get("test_key").unwrap(), &s("test_value"));
    assert_eq!(
        doc.get("a_list").unwrap(),
        &Value::List(vec![s("e1"), s("e3")])
    );
    assert_eq!(doc.get("nested/test/file").unwrap(), &s("another value"));
    let names: Vec<_> = doc.branches[0].iter().filter_map(|i| i.name()).collect();
    assert_eq!(
        names,
        ["test_key", "a_list", "nested"],
        "document order, no sops entry"
    );
}

#[test]
fn secrets_yaml_with_the_age_key_file() {
    check_secrets_yaml(&keys(&["age-keys.txt"]));
}

#[test]
fn secrets_yaml_with_the_ssh_key_through_ssh_to_age() {
    let k = keys(&["ssh-ed25519-key"]);
    assert_eq!(
        k.ssh_to_age_recipients(),
        ["age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"]
    );
    check_secrets_yaml(&k);
}

#[test]
fn native_ssh_ed25519_recipient() {
    let k = keys(&["ssh-ed25519-key"]);
    let doc = sops::decrypt_file(
        &assets().join("secrets-native-ssh.yaml"),
        Format::Yaml,
        &k,
        CAP,
    )
    .unwrap();
    assert_eq!(doc.version, "3.13.3");
    assert_eq!(doc.get("test_key").unwrap(), &s("test_value"));
    // The age key file is not a recipient of this one.
    let e = sops::decrypt_file(
        &assets().join("secrets-native-ssh.yaml"),
        Format::Yaml,
        &keys(&["age-keys.txt"]),
        CAP,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Key);
    let msg = e.to_string();
    assert!(msg.contains("ssh-ed25519"), "{msg}");
    assert!(msg.contains("OpenPGP"), "{msg}");
}

#[test]
fn pgp_only_files_are_refused_naming_the_way_out() {
    let k = keys(&["age-keys.txt", "ssh-ed25519-key", "ssh-key"]);
    for (file, format) in [
        ("secrets.json", Format::Json),
        ("secrets.bin", Format::Binary),
        ("secrets.env", Format::Dotenv),
        ("secrets.ini", Format::Ini),
    ] {
        let e = sops::decrypt_file(&assets().join(file), format, &k, CAP).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.kind, ErrorKind::Key, "{file}: {msg}");
        assert!(msg.contains(file), "{msg}");
        assert!(msg.contains("OpenPGP key"), "{msg}");
        assert!(
            msg.contains("7FB89715AADA920D65D25E63F9BA9DEBD03F57C0"),
            "{msg}"
        );
        assert!(msg.contains("add an age recipient"), "{msg}");
        assert!(msg.contains("ssh-ed25519/ssh-rsa"), "{msg}");
    }
}
