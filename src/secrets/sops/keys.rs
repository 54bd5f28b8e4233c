//! The identities that unwrap a sops data key, as sops-nix has them, and the unwrapping itself.
//!
//! - age X25519 identity files (`age.keyFile`);
//! - SSH host keys (`age.sshKeyPaths`): an ed25519 key both as the X25519 identity that
//!   `ssh-to-age` derives from it (the first 32 bytes of SHA-512 of the ed25519 seed, as
//!   Mic92/ssh-to-age convert.go; X25519 clamps them) and as itself for the native
//!   `ssh-ed25519` recipients sops ≥ 3.10 writes; an RSA key for native `ssh-rsa` recipients.
//!
//! The data key is in `sops.age[].enc`, an armored age file; with several key groups each group
//! holds a Shamir share and `shamir_threshold` of them give the key. OpenPGP and cloud KMS
//! recipients cannot be used here: a file only they can open is refused, naming them and the
//! way out.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha512};

use super::metadata::{KeyGroup, Metadata};
use super::shamir;
use crate::secrets::identities::{self, wipe, Identities, IdentityError, Kind};

/// An X25519 identity derived from an ed25519 SSH key as `ssh-to-age` does.
struct Derived {
    path: PathBuf,
    /// The `age1…` recipient it answers to.
    public: String,
    id: age::x25519::Identity,
}

/// Everything that may unwrap a data key on this node.
#[derive(Default)]
pub struct SopsKeys {
    ids: Identities,
    derived: Vec<Derived>,
}

impl std::fmt::Debug for SopsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.describe()).finish()
    }
}

impl SopsKeys {
    /// Load identity files: age key files (`AGE-SECRET-KEY-1…` lines, sops-nix `age.keyFile`)
    /// and SSH private keys (`age.sshKeyPaths`), told apart by their contents. Every file must
    /// load (a missing default host key is the caller's to leave out); the errors name each
    /// file and why.
    pub fn load(files: &[PathBuf]) -> Result<SopsKeys, Vec<IdentityError>> {
        let mut keys = SopsKeys::default();
        let mut errors = Vec::new();
        for p in files {
            match identities::load_file(p) {
                Ok(list) => {
                    for id in list {
                        if id.kind == Kind::SshEd25519 {
                            match ssh_to_age(p) {
                                Ok(d) => keys.derived.push(d),
                                Err(e) => errors.push(e),
                            }
                        }
                        keys.ids.list.push(id);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(keys)
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Add the identities of `other`.
    pub fn extend(&mut self, other: SopsKeys) {
        self.ids.list.extend(other.ids.list);
        self.derived.extend(other.derived);
    }

    /// One line per identity (public parts only): `X25519 age1… (path)`,
    /// `ssh-ed25519 SHA256:… (path)`, `X25519 age1… (ssh-to-age of path)`.
    pub fn describe(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ids
            .list
            .iter()
            .map(|i| format!("{} {} ({})", i.kind.as_str(), i.public, i.path.display()))
            .collect();
        v.extend(
            self.derived
                .iter()
                .map(|d| format!("X25519 {} (ssh-to-age of {})", d.public, d.path.display())),
        );
        v
    }

    /// The `age1…` recipients of the ssh-to-age identities.
    pub fn ssh_to_age_recipients(&self) -> Vec<String> {
        self.derived.iter().map(|d| d.public.clone()).collect()
    }

    fn age_identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.ids
            .age_identities()
            .chain(self.derived.iter().map(|d| &d.id as &dyn age::Identity))
    }
}

/// `ssh-to-age` for the ed25519 private key in `path`.
fn ssh_to_age(path: &Path) -> Result<Derived, IdentityError> {
    let err = |reason: String| IdentityError {
        path: path.to_path_buf(),
        reason,
        missing: false,
    };
    let mut text = std::fs::read(path).map_err(|e| err(format!("unreadable: {e}")))?;
    let parsed = std::str::from_utf8(&text)
        .map_err(|_| err("not UTF-8".into()))
        .and_then(|t| {
            ssh_key::PrivateKey::from_openssh(t)
                .map_err(|e| err(format!("not an OpenSSH private key: {e}")))
        });
    wipe(&mut text);
    let key = parsed?;
    let pair = key
        .key_data()
        .ed25519()
        .ok_or_else(|| err("not an ed25519 key".into()))?;
    let mut seed = pair.private.to_bytes();
    let mut digest = Sha512::digest(seed);
    wipe(&mut seed);
    let hrp = bech32::Hrp::parse("AGE-SECRET-KEY-").expect("a valid bech32 prefix");
    let encoded = bech32::encode::<bech32::Bech32>(hrp, &digest[..32]);
    wipe(&mut digest);
    let mut encoded = encoded
        .map_err(|e| err(format!("bech32: {e}")))?
        .to_uppercase();
    let id = age::x25519::Identity::from_str(&encoded)
        .map_err(|e| err(format!("ssh-to-age conversion: {e}")));
    // The bech32 text is the private key.
    wipe_string(&mut encoded);
    let id = id?;
    Ok(Derived {
        path: path.to_path_buf(),
        public: id.to_public().to_string(),
        id,
    })
}

fn wipe_string(s: &mut String) {
    let n = s.len();
    s.clear();
    s.extend(std::iter::repeat('0').take(n));
}

/// Unwrap the 32-byte data key: from any age entry of the one key group, or from
/// `shamir_threshold` groups' shares combined. Errors say, per group, which recipients the
/// file has and why none could be used.
pub fn data_key(meta: &Metadata, keys: &SopsKeys) -> Result<[u8; 32], String> {
    let groups = &meta.groups;
    let needed = if groups.len() > 1 {
        if meta.shamir_threshold == 0 {
            groups.len()
        } else {
            meta.shamir_threshold
        }
    } else {
        1
    };
    let mut parts = Vec::new();
    let mut problems = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        match unwrap_group(g, keys) {
            Ok(part) => {
                parts.push(part);
                if parts.len() >= needed {
                    break;
                }
            }
            Err(why) if groups.len() > 1 => problems.push(format!("key group {}: {why}", gi + 1)),
            Err(why) => problems.push(why),
        }
    }
    let mut key = if groups.len() == 1 {
        match parts.pop() {
            Some(k) => k,
            None => return Err(problems.join("; ")),
        }
    } else {
        if parts.len() < needed {
            return Err(format!(
                "{} of the {needed} key groups needed (Shamir threshold, {} groups) could be \
                 unwrapped: {}",
                parts.len(),
                groups.len(),
                problems.join("; ")
            ));
        }
        let k = shamir::combine(&parts);
        parts.iter_mut().for_each(|p| wipe(p));
        k?
    };
    let out: Result<[u8; 32], _> = key.as_slice().try_into();
    wipe(&mut key);
    out.map_err(|_| {
        format!(
            "the unwrapped data key is {} bytes, AES-256 needs 32",
            key.len()
        )
    })
}

fn unwrap_group(g: &KeyGroup, keys: &SopsKeys) -> Result<Vec<u8>, String> {
    let mut tried = Vec::new();
    for a in &g.age {
        match open_age(&a.enc, keys) {
            Ok(part) => return Ok(part),
            Err(e) => tried.push(format!("age recipient {}: {e}", short(&a.recipient))),
        }
    }
    let mut why = Vec::new();
    if !tried.is_empty() {
        why.push(format!(
            "{} (our identities: {})",
            tried.join("; "),
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.describe().join(", ")
            }
        ));
    }
    if !g.pgp.is_empty() {
        why.push(format!(
            "wrapped for OpenPGP key{} {}, which is not supported (sops-nix's gnupg.sshKeyPaths, \
             ssh-to-pgp): add an age recipient (ssh-to-age of the host's ed25519 key) or a \
             native ssh-ed25519/ssh-rsa recipient for this host to the file's creation rule and \
             run `sops updatekeys`",
            if g.pgp.len() > 1 { "s" } else { "" },
            g.pgp.join(", ")
        ));
    }
    if !g.other.is_empty() {
        why.push(format!(
            "wrapped for {}, which a node cannot use here",
            g.other.join(", ")
        ));
    }
    Err(why.join("; "))
}

/// A recipient for messages: `age1…` in full, SSH keys by type and fingerprint.
fn short(r: &str) -> String {
    if r.is_empty() {
        return "(unnamed)".into();
    }
    match ssh_key::PublicKey::from_openssh(r) {
        Ok(k) => format!(
            "{} {}",
            k.algorithm().as_str(),
            k.fingerprint(Default::default())
        ),
        Err(_) => r.chars().take(80).collect(),
    }
}

/// Decrypt the armored age file holding a data key (or share): at most 64 bytes.
fn open_age(enc: &str, keys: &SopsKeys) -> Result<Vec<u8>, String> {
    let ct = enc.trim_start().as_bytes();
    let reader = age::armor::ArmoredReader::new(ct);
    let d = age::Decryptor::new(reader).map_err(|e| format!("not an age file: {e}"))?;
    if d.is_scrypt() {
        return Err("passphrase-encrypted (scrypt)".into());
    }
    let mut r = match d.decrypt(keys.age_identities()) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => {
            let types = crate::secrets::decrypt::stanza_types(ct);
            return Err(format!(
                "its stanzas ({}) match none of our identities",
                types.join(", ")
            ));
        }
        Err(e) => return Err(format!("age: {e}")),
    };
    let mut out = Vec::new();
    r.by_ref()
        .take(64)
        .read_to_end(&mut out)
        .map_err(|e| format!("age payload: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh-to-age` of the throw-away key of sops-nix's test assets gives the recipient its
    /// secrets.yaml was encrypted to (see ../shared/testdata/sops-nix/README).
    #[test]
    fn ssh_to_age_matches_the_reference_recipient() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/sops-nix/ssh-ed25519-key");
        let d = ssh_to_age(&p).unwrap();
        assert_eq!(
            d.public,
            "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
        );
    }
}
