//! The `age` and `ssh-keygen` command-line tools (Debian packages `age` and `openssh-client`)
//! for the secrets tests: tests/secrets_stage.rs and the unit tests of src/secrets/ssh_rsa.rs
//! include this file with `#[path]`. The files these tools make are the independent side of
//! those tests: ours only ever decrypts them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Run `name` with `args` and return its stdout. Panics with the tool's stderr when it fails,
/// and names the packages to install when it cannot be run.
pub fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name}: {e} — install the Debian packages `age` and `openssh-client`")
    });
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new key pair at `key` and `key.pub`: `ssh-keygen -q -t KIND [-b BITS] -N PASSPHRASE
/// -C test -f KEY [EXTRA…]` (`extra`: e.g. `-m PEM`).
pub fn ssh_keygen(key: &Path, kind: &str, bits: Option<&str>, passphrase: &str, extra: &[&str]) {
    let k = key.to_str().unwrap();
    let mut args = vec!["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f", k];
    if let Some(b) = bits {
        args.extend(["-b", b]);
    }
    args.extend(extra);
    tool("ssh-keygen", &args);
}

/// `data` encrypted by the age CLI to the recipients file `recipients` (`age -R`, e.g. an SSH
/// `.pub`), written to `out`; `armor`: ASCII-armored (`-a`).
pub fn age_encrypt(recipients: &Path, data: &[u8], out: &Path, armor: bool) {
    let plain = out.with_extension("plain");
    std::fs::write(&plain, data).unwrap();
    let mut args = vec![
        "-R",
        recipients.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    if armor {
        args.push("-a");
    }
    args.push(plain.to_str().unwrap());
    tool("age", &args);
    std::fs::remove_file(&plain).unwrap();
}
