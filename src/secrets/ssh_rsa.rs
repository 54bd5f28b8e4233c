//! The `ssh-rsa` recipient type unwrapped with AWS-LC (aws-lc-rs) rather than the age crate's
//! pure-Rust `rsa`: the RSA private operation is nearly the whole cost of an ssh-rsa secret. The
//! age crate still does everything else (header, MAC, payload, the other recipient types).
//!
//! The stanza, as the age crate reads it (age-0.12 `src/ssh/identity.rs`, age spec "ssh-rsa"):
//! `-> ssh-rsa TAG`, TAG being the first 4 bytes of the SHA-256 of the SSH wire-format public key
//! (RFC 4253 §6.6: string `ssh-rsa`, mpint e, mpint n) in base64 without padding; the body is
//! RSA-OAEP (SHA-256, MGF1 SHA-256, label `age-encryption.org/v1/ssh-rsa`) of the 16-byte file
//! key. A stanza whose tag is not ours (or is not 4 bytes of canonical base64) is not for us; one
//! whose tag is ours but that does not decrypt to 16 bytes is an error, as in age (the tag is
//! trusted not to collide).

use age::DecryptError;
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
use base64::prelude::{Engine as _, BASE64_STANDARD_NO_PAD};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

/// The stanza type (age spec).
pub const STANZA_TYPE: &str = "ssh-rsa";
/// The OAEP label (age spec).
const OAEP_LABEL: &[u8] = b"age-encryption.org/v1/ssh-rsa";
const TAG_BYTES: usize = 4;

/// An ssh-rsa private key ready to unwrap `ssh-rsa` stanzas with AWS-LC.
pub struct SshRsa {
    public: ssh_key::PublicKey,
    tag: [u8; TAG_BYTES],
    key: OaepPrivateDecryptingKey,
}

impl std::fmt::Debug for SshRsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRsa")
            .field("bits", &self.key.key_size_bits())
            .finish_non_exhaustive()
    }
}

impl SshRsa {
    /// From an OpenSSH-format RSA key pair (`-----BEGIN OPENSSH PRIVATE KEY-----`, already
    /// decoded by ssh-key). Errors: the components do not form an RSA key, or AWS-LC refuses it
    /// (it takes 2048 to 8192 bits; aws-lc-rs `PrivateDecryptingKey::from_pkcs8`).
    pub fn from_openssh(k: &ssh_key::private::RsaKeypair) -> Result<SshRsa, String> {
        let n = |m: &ssh_key::Mpint| {
            rsa::BigUint::try_from(m).map_err(|e| format!("not an RSA key: {e}"))
        };
        let key = rsa::RsaPrivateKey::from_components(
            n(&k.public.n)?,
            n(&k.public.e)?,
            n(&k.private.d)?,
            vec![n(&k.private.p)?, n(&k.private.q)?],
        )
        .map_err(|e| format!("not a valid RSA key: {e}"))?;
        SshRsa::new(&key)
    }

    /// From a PKCS#1 PEM key (`-----BEGIN RSA PRIVATE KEY-----`, `ssh-keygen -m PEM`). Errors
    /// as [`SshRsa::from_openssh`], or the PEM does not parse.
    pub fn from_pkcs1_pem(pem: &str) -> Result<SshRsa, String> {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem.trim())
            .map_err(|e| format!("not a PKCS#1 RSA key: {e}"))?;
        SshRsa::new(&key)
    }

    fn new(key: &rsa::RsaPrivateKey) -> Result<SshRsa, String> {
        let public = ssh_key::public::RsaPublicKey {
            e: mpint(key.e())?,
            n: mpint(key.n())?,
        };
        let public = ssh_key::PublicKey::from(public);
        let wire = public
            .to_bytes()
            .map_err(|e| format!("encoding the public key: {e}"))?;
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&Sha256::digest(&wire)[..TAG_BYTES]);
        // PKCS#8 is the one private-key form aws-lc-rs's RSA decryption reads.
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("encoding the key as PKCS#8: {e}"))?;
        let key = PrivateDecryptingKey::from_pkcs8(der.as_bytes())
            .and_then(|k| OaepPrivateDecryptingKey::new(k).map_err(Into::into))
            .map_err(|e| format!("AWS-LC refuses the key ({} bits): {e}", key.size() * 8))?;
        Ok(SshRsa { public, tag, key })
    }

    /// The public key's fingerprint, `SHA256:…` (as `ssh-keygen -l`).
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint(Default::default()).to_string()
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// Unwrap a stanza whose tag is ours. Errors: [`DecryptError::DecryptionFailed`] when the
    /// body is not one RSA block or does not decrypt to a 16-byte file key.
    fn unwrap_body(&self, body: &[u8]) -> Result<FileKey, DecryptError> {
        if body.len() != self.key.key_size_bytes() {
            return Err(DecryptError::DecryptionFailed);
        }
        let mut out = vec![0u8; self.key.min_output_size()];
        let res = match self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, body, &mut out, Some(OAEP_LABEL))
        {
            Ok(pt) if pt.len() == FILE_KEY_BYTES => {
                Ok(FileKey::init_with_mut(|k| k.copy_from_slice(pt)))
            }
            _ => Err(DecryptError::DecryptionFailed),
        };
        super::identities::wipe(&mut out);
        res
    }
}

impl age::Identity for SshRsa {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.tag != STANZA_TYPE || parse_tag(stanza.args.first()?)? != self.tag {
            return None;
        }
        Some(self.unwrap_body(&stanza.body))
    }
}

/// The SSH mpint of a positive integer (RFC 4251 §5: big-endian, a leading zero byte when the
/// top bit is set), as ssh-key encodes it.
fn mpint(v: &rsa::BigUint) -> Result<ssh_key::Mpint, String> {
    ssh_key::Mpint::from_positive_bytes(&v.to_bytes_be())
        .map_err(|e| format!("encoding the public key: {e}"))
}

/// The stanza's tag argument: exactly 4 bytes of base64 without padding, canonical (the age
/// crate's `base64_arg::<_, 4, 6>`), else `None`.
fn parse_tag(arg: &str) -> Option<[u8; TAG_BYTES]> {
    let mut buf = [0u8; 6];
    match BASE64_STANDARD_NO_PAD.decode_slice(arg, &mut buf) {
        Ok(TAG_BYTES) => buf[..TAG_BYTES].try_into().ok(),
        _ => None,
    }
}

#[cfg(test)]
#[path = "../../tests/common/age_cli.rs"]
mod age_cli;

#[cfg(test)]
mod tests {
    use super::age_cli::{self, tool};
    use super::*;
    use crate::secrets::decrypt::{decrypt_to, FailureKind};
    use crate::secrets::identities::{load_file, Identities};
    use age::secrecy::ExposeSecret;
    use std::path::{Path, PathBuf};

    /// An RSA key made by ssh-keygen (`extra`: e.g. `-m PEM`); returns the private key path.
    fn keygen(dir: &Path, name: &str, bits: &str, extra: &[&str]) -> PathBuf {
        let key = dir.join(name);
        age_cli::ssh_keygen(&key, "rsa", Some(bits), "", extra);
        key
    }

    /// `data` encrypted by the age CLI to the key's `.pub`.
    fn age_encrypt(key: &Path, data: &[u8], armor: bool) -> Vec<u8> {
        let out = key.parent().unwrap().join("out.age");
        let recip = PathBuf::from(format!("{}.pub", key.display()));
        age_cli::age_encrypt(&recip, data, &out, armor);
        std::fs::read(out).unwrap()
    }

    /// The recipient stanzas of a binary age file's header.
    fn stanzas(ct: &[u8]) -> Vec<Stanza> {
        let text = String::from_utf8_lossy(ct);
        let mut lines = text.lines().skip(1);
        let mut out = Vec::new();
        while let Some(l) = lines.next() {
            let Some(rest) = l.strip_prefix("-> ") else {
                break;
            };
            let mut words = rest.split(' ').map(String::from);
            let tag = words.next().unwrap();
            let mut b64 = String::new();
            for body in lines.by_ref() {
                b64.push_str(body);
                if body.len() < 64 {
                    break;
                }
            }
            out.push(Stanza {
                tag,
                args: words.collect(),
                body: BASE64_STANDARD_NO_PAD.decode(b64).unwrap(),
            });
        }
        out
    }

    fn ssh_rsa(key: &Path) -> SshRsa {
        let text = std::fs::read_to_string(key).unwrap();
        let k = ssh_key::PrivateKey::from_openssh(&text).unwrap();
        SshRsa::from_openssh(k.key_data().rsa().unwrap()).unwrap()
    }

    #[test]
    fn age_cli_files_to_ssh_keygen_rsa_3072_keys_decrypt() {
        let d = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        for (name, extra) in [("openssh", &[][..]), ("pem", &["-m", "PEM"][..])] {
            let key = keygen(d.path(), name, "3072", extra);
            let ids = Identities::load(std::slice::from_ref(&key), false).unwrap();
            let id = &ids.list[0];
            assert_eq!(
                (id.kind.as_str(), id.engine),
                ("ssh-rsa", "aws-lc"),
                "{name}"
            );
            // The fingerprint ssh-keygen prints for the .pub (for PEM keys too).
            let pubfile = format!("{}.pub", key.display());
            let listed = tool("ssh-keygen", &["-l", "-f", &pubfile]);
            assert!(
                listed.starts_with(&format!("3072 {} ", id.public)),
                "{listed}"
            );
            for armor in [false, true] {
                let ct = age_encrypt(&key, &data, armor);
                let mut out = Vec::new();
                let n = decrypt_to(&ct, &ids, &mut out).unwrap();
                assert_eq!(
                    (n, &out),
                    (data.len() as u64, &data),
                    "{name} armor={armor}"
                );
            }
        }
    }

    #[test]
    fn the_same_file_key_as_the_age_crate() {
        let d = tempfile::tempdir().unwrap();
        let key = keygen(d.path(), "k", "3072", &[]);
        let ct = age_encrypt(&key, b"x", false);
        let s = &stanzas(&ct)[0];
        assert_eq!(s.tag, "ssh-rsa");
        let ours = ssh_rsa(&key);
        assert_eq!(ours.bits(), 3072);
        let theirs =
            age::ssh::Identity::from_buffer(std::fs::read(&key).unwrap().as_slice(), None).unwrap();
        let a = age::Identity::unwrap_stanza(&ours, s).unwrap().unwrap();
        let b = age::Identity::unwrap_stanza(&theirs, s).unwrap().unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn a_file_for_another_rsa_key_matches_no_identity() {
        let d = tempfile::tempdir().unwrap();
        let to = keygen(d.path(), "to", "3072", &[]);
        let other = keygen(d.path(), "other", "3072", &[]);
        let ids = Identities::load(&[other], false).unwrap();
        let ct = age_encrypt(&to, b"secret", false);
        let e = decrypt_to(&ct, &ids, &mut std::io::sink()).unwrap_err();
        assert_eq!(e.kind, FailureKind::NoMatch, "{e}");
        assert!(e.detail.contains("(ssh-rsa)"), "{e}");
        assert!(!e.to_string().contains("secret"));
    }

    /// Malformed stanzas: a tag that is not ours or not 4 bytes of canonical base64 is not for
    /// us; a body that is not one RSA block, or does not decrypt, is an error. The age crate's
    /// own ssh-rsa identity answers each the same way.
    #[test]
    fn malformed_stanzas_fail_cleanly_as_in_the_age_crate() {
        let d = tempfile::tempdir().unwrap();
        let key = keygen(d.path(), "k", "3072", &[]);
        let ct = age_encrypt(&key, b"x", false);
        let good = stanzas(&ct).remove(0);
        let ours = ssh_rsa(&key);
        let theirs =
            age::ssh::Identity::from_buffer(std::fs::read(&key).unwrap().as_slice(), None).unwrap();
        let tag = good.args[0].clone();
        // The same 4 bytes with a non-zero trailing bit: not canonical.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let last = alphabet
            .iter()
            .position(|c| *c == tag.as_bytes()[5])
            .unwrap();
        let loose = format!("{}{}", &tag[..5], alphabet[last | 1] as char);
        let with = |f: &dyn Fn(&mut Stanza)| {
            let mut s = Stanza {
                tag: good.tag.clone(),
                args: good.args.clone(),
                body: good.body.clone(),
            };
            f(&mut s);
            s
        };
        let mut flipped = good.body.clone();
        flipped[100] ^= 1;
        let not_ours: Vec<(&str, Stanza)> = vec![
            ("other type", with(&|s| s.tag = "ssh-ed25519".into())),
            ("no argument", with(&|s| s.args.clear())),
            ("other tag", with(&|s| s.args[0] = "AAAAAA".into())),
            ("tag of 5 bytes", with(&|s| s.args[0] = "AAAAAAA".into())),
            ("tag of 3 bytes", with(&|s| s.args[0] = tag[..4].into())),
            ("padded tag", with(&|s| s.args[0] = format!("{tag}=="))),
            ("not base64", with(&|s| s.args[0] = "!!!!!!".into())),
            ("trailing bits", with(&|s| s.args[0] = loose.clone())),
        ];
        for (what, s) in &not_ours {
            assert!(age::Identity::unwrap_stanza(&ours, s).is_none(), "{what}");
            assert!(age::Identity::unwrap_stanza(&theirs, s).is_none(), "{what}");
        }
        let bad: Vec<(&str, Stanza)> = vec![
            ("empty body", with(&|s| s.body.clear())),
            ("16-byte body", with(&|s| s.body.truncate(16))),
            ("body one byte short", with(&|s| s.body.truncate(383))),
            ("body one byte long", with(&|s| s.body.push(0))),
            ("flipped bit", with(&|s| s.body = flipped.clone())),
            ("all zero", with(&|s| s.body = vec![0; 384])),
            ("all ones", with(&|s| s.body = vec![0xff; 384])),
        ];
        for (what, s) in &bad {
            for id in [&ours as &dyn age::Identity, &theirs] {
                match id.unwrap_stanza(s) {
                    Some(Err(DecryptError::DecryptionFailed)) => {}
                    Some(Ok(_)) => panic!("{what}: unwrapped"),
                    other => panic!("{what}: {:?}", other.map(|r| r.err())),
                }
            }
        }
        assert!(age::Identity::unwrap_stanza(&ours, &good).unwrap().is_ok());
    }

    /// A header whose ssh-rsa body was cut short: a clean header failure through the stage's
    /// decryption, not a panic.
    #[test]
    fn a_short_ssh_rsa_body_in_a_file_is_a_header_failure() {
        let d = tempfile::tempdir().unwrap();
        let key = keygen(d.path(), "k", "3072", &[]);
        let ids = Identities::load(std::slice::from_ref(&key), false).unwrap();
        let ct = age_encrypt(&key, b"secret", false);
        let text = String::from_utf8_lossy(&ct).into_owned();
        let start = text.find("-> ssh-rsa ").unwrap();
        let body = start + text[start..].find('\n').unwrap() + 1;
        // Drop the first body line (64 columns = 48 bytes).
        let cut = [&ct[..body], &ct[body + 65..]].concat();
        let e = decrypt_to(&cut, &ids, &mut std::io::sink()).unwrap_err();
        assert_eq!(e.kind, FailureKind::Header, "{e}");
    }

    /// AWS-LC takes 2048 to 8192 bits, ssh-keygen makes up to 16384: a larger key is still
    /// used, through the age crate. The fixture (an 8200-bit key, 40 s to make, and a file the
    /// age CLI encrypted to it) is committed.
    #[test]
    fn keys_aws_lc_refuses_stay_with_the_age_crate() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let key = data.join("ssh_rsa_8200_key");
        let text = std::fs::read_to_string(&key).unwrap();
        let k = ssh_key::PrivateKey::from_openssh(&text).unwrap();
        let e = SshRsa::from_openssh(k.key_data().rsa().unwrap()).unwrap_err();
        assert!(e.contains("AWS-LC refuses the key (8200 bits)"), "{e}");
        let ids = Identities {
            list: load_file(&key).unwrap(),
        };
        assert_eq!(
            (ids.list[0].kind.as_str(), ids.list[0].engine),
            ("ssh-rsa", "age")
        );
        let ct = std::fs::read(data.join("ssh_rsa_8200.age")).unwrap();
        let mut out = Vec::new();
        decrypt_to(&ct, &ids, &mut out).unwrap();
        assert_eq!(out, b"made by the age CLI for ssh_rsa_8200_key\n");
    }
}
