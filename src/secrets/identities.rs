//! Identities that unwrap age files: OpenSSH `ssh-ed25519` / `ssh-rsa` private keys (the host
//! keys, as agenix) and native age X25519 identity files (`AGE-SECRET-KEY-1…` lines).
//!
//! Each file is read and parsed once; the parsed identities are shared by every decrypting
//! thread. Key material never appears in an error: errors name the file and the reason only.

use anyhow::Result;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::ssh_rsa::SshRsa;

/// Largest identity file we read (an OpenSSH RSA-16384 key is ~13 KiB).
const MAX_IDENTITY_SIZE: u64 = 1 << 20;

/// What kind of key an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SshEd25519,
    SshRsa,
    X25519,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SshEd25519 => "ssh-ed25519",
            Kind::SshRsa => "ssh-rsa",
            Kind::X25519 => "X25519",
        }
    }
}

/// Why an identity file could not be used.
#[derive(Debug)]
pub struct IdentityError {
    pub path: PathBuf,
    pub reason: String,
    /// The file does not exist (a missing *default* identity is tolerated).
    pub missing: bool,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "identity {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for IdentityError {}

/// One usable identity.
pub struct Identity {
    /// The file it came from.
    pub path: PathBuf,
    pub kind: Kind,
    /// Public fingerprint (`SHA256:…` for SSH keys, the `age1…` recipient for X25519).
    pub public: String,
    /// What unwraps its stanzas: `aws-lc` (ssh-rsa, see [`SshRsa`]) or `age` (the age crate).
    pub engine: &'static str,
    inner: Box<dyn age::Identity + Send + Sync>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("public", &self.public)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The identities of one run, in the order given.
#[derive(Debug, Default)]
pub struct Identities {
    pub list: Vec<Identity>,
}

impl Identities {
    /// The age identities, for `Decryptor::decrypt`.
    pub fn age_identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.list
            .iter()
            .map(|i| i.inner.as_ref() as &dyn age::Identity)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Load identity files. `defaults`: these are the agenix default paths (whichever host
    /// keys exist), so a file that does not exist is skipped quietly and one that cannot be
    /// loaded (unreadable, unparseable, passphrase-protected, empty, unsupported type) is
    /// skipped with a warning naming it and why, as agenix and `age -i` skip such a key; at
    /// least one identity must load. Configured paths (`defaults` false): every problem,
    /// missing included, is an error naming the file.
    ///
    /// Errors: every file's problem when nothing could be used (or any problem with configured
    /// paths); the stage maps them to exit 8.
    pub fn load(paths: &[PathBuf], defaults: bool) -> Result<Identities, Vec<IdentityError>> {
        let mut ids = Identities::default();
        let mut errors = Vec::new();
        let mut skipped = Vec::new();
        for p in paths {
            match load_file(p) {
                Ok(mut v) => ids.list.append(&mut v),
                Err(e) if defaults => skipped.push(e),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() && ids.list.is_empty() {
            errors = skipped;
            if errors.is_empty() {
                errors.push(IdentityError {
                    path: PathBuf::from("(none)"),
                    reason: "no identity paths configured".into(),
                    missing: true,
                });
            }
        } else {
            for s in &skipped {
                if s.missing {
                    tracing::info!(stage = "secrets", "{s} (default identity, skipped)");
                } else {
                    tracing::warn!(
                        stage = "secrets",
                        "{s} (default identity, skipped; the other host keys are used)"
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok(ids)
        } else {
            Err(errors)
        }
    }
}

fn err(path: &Path, reason: impl Into<String>) -> IdentityError {
    IdentityError {
        path: path.to_path_buf(),
        reason: reason.into(),
        missing: false,
    }
}

/// Read and parse one identity file (one SSH key, or one or more age identities).
pub fn load_file(path: &Path) -> Result<Vec<Identity>, IdentityError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| IdentityError {
        path: path.to_path_buf(),
        missing: e.kind() == std::io::ErrorKind::NotFound,
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "missing (no such file)".to_string()
        } else {
            format!("unreadable: {e}")
        },
    })?;
    let mut buf = Vec::new();
    file.take(MAX_IDENTITY_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(path, format!("unreadable: {e}")))?;
    let res = if buf.len() as u64 > MAX_IDENTITY_SIZE {
        Err(err(path, "larger than 1 MiB: not an identity file"))
    } else {
        parse(path, &buf)
    };
    wipe(&mut buf);
    res
}

/// Overwrite a buffer that held key material.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(&buf);
}

fn parse(path: &Path, data: &[u8]) -> Result<Vec<Identity>, IdentityError> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Err(err(
            path,
            "not an OpenSSH private key or an age identity file (not UTF-8 text)",
        ));
    };
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if first.starts_with("-----BEGIN ") {
        parse_ssh(path, text).map(|i| vec![i])
    } else if first.starts_with("AGE-") {
        parse_age(path, text)
    } else if first.is_empty() {
        Err(err(path, "empty: no identity in it"))
    } else {
        Err(err(
            path,
            "not an OpenSSH private key or an age identity file",
        ))
    }
}

fn parse_ssh(path: &Path, text: &str) -> Result<Identity, IdentityError> {
    let parsed = age::ssh::Identity::from_buffer(text.as_bytes(), Some(path.display().to_string()))
        .map_err(|e| err(path, format!("not a usable SSH private key: {e}")))?;
    match &parsed {
        age::ssh::Identity::Unencrypted(_) => {}
        age::ssh::Identity::Encrypted(_) => {
            return Err(err(
                path,
                "the SSH key is passphrase-protected; a host key used for secrets must not be",
            ))
        }
        age::ssh::Identity::Unsupported(k) => {
            let what = match k {
                age::ssh::UnsupportedKey::Type(t) => format!("unsupported SSH key type {t}"),
                age::ssh::UnsupportedKey::Hardware(t) => {
                    format!("hardware-backed SSH key {t} is not supported")
                }
                age::ssh::UnsupportedKey::EncryptedPem
                | age::ssh::UnsupportedKey::EncryptedSsh(_) => {
                    "the SSH key is passphrase-protected; a host key used for secrets must not be"
                        .to_string()
                }
            };
            return Err(err(path, what));
        }
    }
    // The algorithm and fingerprint, for the report (age does not expose them), and for RSA the
    // AWS-LC key. PEM-encoded RSA keys (`BEGIN RSA PRIVATE KEY`) are not OpenSSH format: age
    // reads them, ssh-key does not.
    let (kind, public, rsa) = match ssh_key::PrivateKey::from_openssh(text) {
        Ok(k) => {
            let kind = match k.algorithm() {
                ssh_key::Algorithm::Ed25519 => Kind::SshEd25519,
                ssh_key::Algorithm::Rsa { .. } => Kind::SshRsa,
                other => {
                    return Err(err(path, format!("unsupported SSH key type {other}")));
                }
            };
            let public = k.public_key().fingerprint(Default::default()).to_string();
            (kind, public, k.key_data().rsa().map(SshRsa::from_openssh))
        }
        Err(_) if text.contains("BEGIN RSA PRIVATE KEY") => {
            let rsa = SshRsa::from_pkcs1_pem(text);
            let public = match &rsa {
                Ok(k) => k.fingerprint(),
                Err(_) => "(PEM RSA key)".to_string(),
            };
            (Kind::SshRsa, public, Some(rsa))
        }
        Err(e) => return Err(err(path, format!("not a usable SSH private key: {e}"))),
    };
    let (engine, inner): (_, Box<dyn age::Identity + Send + Sync>) = match rsa {
        Some(Ok(k)) => ("aws-lc", Box::new(k)),
        Some(Err(why)) => {
            // age parsed the key, so it can still unwrap with its own (slower) RSA.
            tracing::info!(
                stage = "secrets",
                "identity {}: {why}; its ssh-rsa stanzas are unwrapped by the age crate instead",
                path.display()
            );
            ("age", Box::new(parsed))
        }
        None => ("age", Box::new(parsed)),
    };
    Ok(Identity {
        path: path.to_path_buf(),
        kind,
        public,
        engine,
        inner,
    })
}

fn parse_age(path: &Path, text: &str) -> Result<Vec<Identity>, IdentityError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = n + 1;
        // Never echo the line: it is a private key.
        if line.starts_with("AGE-SECRET-KEY-PQ-") {
            return Err(err(
                path,
                format!("line {n}: ML-KEM hybrid (post-quantum) identities are not supported"),
            ));
        }
        if line.starts_with("AGE-PLUGIN-") {
            return Err(err(
                path,
                format!("line {n}: age plugin identities are not supported"),
            ));
        }
        match age::x25519::Identity::from_str(line) {
            Ok(id) => {
                let public = id.to_public().to_string();
                out.push(Identity {
                    path: path.to_path_buf(),
                    kind: Kind::X25519,
                    public,
                    engine: "age",
                    inner: Box::new(id),
                });
            }
            Err(_) => {
                return Err(err(
                    path,
                    format!("line {n}: not an age X25519 identity (AGE-SECRET-KEY-1…)"),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(err(path, "no identity in it"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn age_identity_files() {
        let d = tempfile::tempdir().unwrap();
        let k1 = age::x25519::Identity::generate();
        let k2 = age::x25519::Identity::generate();
        let p = d.path().join("keys.txt");
        std::fs::write(
            &p,
            format!(
                "# created: now\n# public key: {}\n{}\n\n  {}  \n",
                k1.to_public(),
                k1.to_string().expose_secret(),
                k2.to_string().expose_secret()
            ),
        )
        .unwrap();
        let ids = load_file(&p).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].kind, Kind::X25519);
        assert_eq!(ids[0].public, k1.to_public().to_string());
        assert_eq!(ids[1].public, k2.to_public().to_string());
    }

    #[test]
    fn bad_identity_files_are_named_and_never_echoed() {
        let d = tempfile::tempdir().unwrap();
        let secret = age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string();
        let cases: &[(&str, String, &str)] = &[
            ("empty", String::new(), "empty"),
            ("garbage", "hello world\n".into(), "not an OpenSSH"),
            (
                "truncated",
                format!("{}\n", &secret[..secret.len() - 3]),
                "line 1: not an age X25519",
            ),
            (
                "pq",
                format!("AGE-SECRET-KEY-PQ-1{}\n", &secret[16..]),
                "ML-KEM",
            ),
            ("plugin", "AGE-PLUGIN-YUBIKEY-1XYZ\n".into(), "plugin"),
            (
                "badssh",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
                    .into(),
                "SSH private key",
            ),
            ("binary", "\u{0}\u{1}\u{2}\u{ff}".into(), "OpenSSH"),
        ];
        for (name, content, want) in cases {
            let p = d.path().join(name);
            std::fs::write(&p, content).unwrap();
            let e = load_file(&p).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want), "{name}: {msg}");
            assert!(msg.contains(&p.display().to_string()), "{name}: {msg}");
            assert!(
                !msg.contains(&secret[16..40]),
                "{name}: key material in {msg}"
            );
            assert!(!e.missing);
        }
        let e = load_file(&d.path().join("nope")).unwrap_err();
        assert!(e.missing && e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn missing_defaults_tolerated_only_if_one_loads() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good");
        std::fs::write(
            &good,
            format!(
                "{}\n",
                age::x25519::Identity::generate()
                    .to_string()
                    .expose_secret()
            ),
        )
        .unwrap();
        let missing = d.path().join("missing");
        let ids = Identities::load(&[missing.clone(), good.clone()], true).unwrap();
        assert_eq!(ids.list.len(), 1);
        let errs = Identities::load(&[missing.clone(), good.clone()], false).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("missing"));
        let errs = Identities::load(std::slice::from_ref(&missing), true).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].missing);
    }
}
