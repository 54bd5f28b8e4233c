//! Decrypt one age file (binary or ASCII-armored) in-process, streaming the plaintext to a sink,
//! and classify failures the way an operator needs them: no identity matched, corrupt header,
//! bad header MAC, corrupt or truncated payload, bad armor, unsupported recipient type.
//!
//! Error texts never contain plaintext: they come from our own words and age's error kinds.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use super::identities::Identities;

/// Why a file could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The header is fine but none of our identities unwraps any recipient stanza.
    NoMatch,
    /// Only recipient types we do not support (scrypt passphrase, ML-KEM hybrid, plugins).
    Unsupported,
    /// The header does not parse (or is structurally invalid, or an unknown age version).
    Header,
    /// A file key was unwrapped but the header MAC does not match.
    Mac,
    /// The payload is corrupt or truncated (STREAM authentication failed before EOF).
    Payload,
    /// The ASCII armor is malformed.
    Armor,
    /// Reading the input or writing the output failed.
    Io,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NoMatch => "no identity matched",
            FailureKind::Unsupported => "unsupported recipient type",
            FailureKind::Header => "corrupt header",
            FailureKind::Mac => "bad header MAC",
            FailureKind::Payload => "corrupt or truncated payload",
            FailureKind::Armor => "bad ASCII armor",
            FailureKind::Io => "I/O error",
        }
    }
}

/// A classified decryption failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// More detail (age's reason, recipient types); never plaintext.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{}: {}", self.kind.as_str(), self.detail)
        }
    }
}

impl std::error::Error for Failure {}

fn fail(kind: FailureKind, detail: impl Into<String>) -> Failure {
    Failure {
        kind,
        detail: detail.into(),
    }
}

/// Recipient stanza types we can unwrap.
pub const SUPPORTED_TYPES: &[&str] = &["X25519", "ssh-ed25519", "ssh-rsa"];

/// A header that parsed and was unwrapped: [`Opened::copy_to`] streams the plaintext.
pub struct Opened<'a> {
    reader: age::stream::StreamReader<age::armor::ArmoredReader<io::BufReader<&'a [u8]>>>,
}

/// Parse the header and unwrap the file key with `ids`. Nothing is decrypted yet, so a caller
/// can create the output file (with its owner and mode) only once this succeeded.
pub fn open<'a>(ciphertext: &'a [u8], ids: &Identities) -> Result<Opened<'a>, Failure> {
    let ciphertext = strip_armor_whitespace(ciphertext);
    check_stanza_framing(ciphertext)?;
    let input = age::armor::ArmoredReader::new(ciphertext);
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| classify_header(&e))?;
    if decryptor.is_scrypt() {
        return Err(fail(
            FailureKind::Unsupported,
            "the file is passphrase-encrypted (scrypt); supported: X25519, ssh-ed25519, ssh-rsa",
        ));
    }
    match decryptor.decrypt(ids.age_identities()) {
        Ok(reader) => Ok(Opened { reader }),
        Err(age::DecryptError::NoMatchingKeys) => Err(no_match(ciphertext, ids)),
        Err(e) => Err(classify_header(&e)),
    }
}

impl Opened<'_> {
    /// Stream the plaintext into `out`. Only authenticated chunks reach `out`; on error, what
    /// was written before is a verified prefix and the caller must discard it.
    pub fn copy_to(mut self, out: &mut dyn Write) -> Result<u64, Failure> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let res = loop {
            let n = match self.reader.read(&mut buf) {
                Ok(0) => break Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(classify_payload(&e)),
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(fail(FailureKind::Io, format!("writing the plaintext: {e}")));
            }
            total += n as u64;
        };
        super::identities::wipe(&mut buf);
        res
    }
}

/// [`open`] then [`Opened::copy_to`].
pub fn decrypt_to(
    ciphertext: &[u8],
    ids: &Identities,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    open(ciphertext, ids)?.copy_to(out)
}

fn armor_error(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<age::armor::ArmoredReadError>())
        .map(|a| a.to_string())
}

fn classify_header(e: &age::DecryptError) -> Failure {
    match e {
        age::DecryptError::InvalidMac => fail(FailureKind::Mac, ""),
        age::DecryptError::InvalidHeader => fail(FailureKind::Header, "invalid age header"),
        age::DecryptError::UnknownFormat => fail(
            FailureKind::Header,
            "not an age v1 file (unknown format or version)",
        ),
        age::DecryptError::DecryptionFailed => fail(
            FailureKind::Header,
            "a recipient stanza matched our identity but could not be unwrapped",
        ),
        age::DecryptError::Io(io) => match armor_error(io) {
            Some(a) => fail(FailureKind::Armor, a),
            None if io.kind() == io::ErrorKind::UnexpectedEof => {
                fail(FailureKind::Header, "truncated header")
            }
            None => fail(FailureKind::Header, io.to_string()),
        },
        age::DecryptError::ExcessiveWork { .. } => fail(
            FailureKind::Unsupported,
            "passphrase-encrypted (scrypt) file",
        ),
        age::DecryptError::KeyDecryptionFailed => {
            fail(FailureKind::Header, "an identity could not be decrypted")
        }
        other => fail(FailureKind::Header, other.to_string()),
    }
}

fn classify_payload(e: &io::Error) -> Failure {
    if let Some(a) = armor_error(e) {
        return fail(FailureKind::Armor, a);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => fail(FailureKind::Payload, "truncated"),
        io::ErrorKind::InvalidData => fail(
            FailureKind::Payload,
            "authentication failed (corrupt, truncated or trailing data)",
        ),
        _ => fail(FailureKind::Payload, e.to_string()),
    }
}

/// No identity matched: say what the file is encrypted to (stanza types only — public).
fn no_match(ciphertext: &[u8], ids: &Identities) -> Failure {
    let types = stanza_types(ciphertext);
    let ours: Vec<String> = ids
        .list
        .iter()
        .map(|i| format!("{} {}", i.kind.as_str(), i.public))
        .collect();
    let shown = if types.is_empty() {
        "none".to_string()
    } else {
        types.join(", ")
    };
    if !types.is_empty() && types.iter().all(|t| known_unsupported(t)) {
        let what = types
            .iter()
            .map(|t| match t.as_str() {
                "scrypt" => "scrypt (passphrase)".to_string(),
                t if t.starts_with("mlkem") => format!("{t} (ML-KEM hybrid)"),
                t => t.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        return fail(
            FailureKind::Unsupported,
            format!("the file is encrypted to {what}; supported: X25519, ssh-ed25519, ssh-rsa"),
        );
    }
    fail(
        FailureKind::NoMatch,
        format!(
            "the file's recipient stanzas ({shown}) match none of our identities ({})",
            ours.join("; ")
        ),
    )
}

/// Recipient types that exist in the age ecosystem but that we do not implement.
fn known_unsupported(t: &str) -> bool {
    t == "scrypt" || t.starts_with("mlkem") || t.ends_with("tag") || t.starts_with("piv-")
}

const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Whitespace is allowed before an armored file (the age spec); age's reader expects the
/// marker first, so skip it.
fn strip_armor_whitespace(ct: &[u8]) -> &[u8] {
    let start = ct
        .iter()
        .position(|b| !b" \t\r\n".contains(b))
        .unwrap_or(ct.len());
    if start > 0 && ct[start..].starts_with(ARMOR_BEGIN) {
        &ct[start..]
    } else {
        ct
    }
}

/// The age header grammar says every stanza body ends with a line shorter than 64 columns
/// (possibly empty). The age crate accepts a stanza without body, or one whose last body line
/// is a full 64 columns; the spec (and the CCTV vectors) require a header failure there.
fn check_stanza_framing(ct: &[u8]) -> Result<(), Failure> {
    let mut r = io::BufReader::new(age::armor::ArmoredReader::new(ct));
    let mut line = Vec::new();
    let mut first = true;
    // In a stanza, and whether its body is still open (no short line seen yet).
    let mut stanza: Option<usize> = None;
    let mut count = 0;
    for _ in 0..100_000 {
        line.clear();
        match r.by_ref().take(4096).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return Ok(()), // age's parser reports these
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            return Ok(());
        }
        line.pop();
        if first {
            if line != b"age-encryption.org/v1" {
                return Ok(());
            }
            first = false;
            continue;
        }
        let is_stanza = line.starts_with(b"-> ");
        let is_mac = line.starts_with(b"---");
        if let Some(n) = stanza {
            if is_stanza || is_mac {
                return Err(fail(
                    FailureKind::Header,
                    format!("recipient stanza {n} does not end with a short body line"),
                ));
            }
            if line.len() < 64 {
                stanza = None;
            }
            continue;
        }
        if is_mac {
            return Ok(());
        }
        if is_stanza {
            count += 1;
            stanza = Some(count);
        } else {
            return Ok(());
        }
    }
    Ok(())
}

/// The recipient stanza types in the header (`-> TYPE args…` lines, up to the `---` MAC line).
pub fn stanza_types(ciphertext: &[u8]) -> Vec<String> {
    let mut r = io::BufReader::new(age::armor::ArmoredReader::new(ciphertext));
    let mut types: Vec<String> = Vec::new();
    let mut line = Vec::new();
    for _ in 0..10_000 {
        line.clear();
        match r.by_ref().take(4096).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.starts_with(b"---") {
            break;
        }
        if let Some(rest) = line.strip_prefix(b"-> ") {
            let t = rest
                .split(|b| *b == b' ' || *b == b'\n')
                .next()
                .unwrap_or(b"");
            let t: String = String::from_utf8_lossy(t)
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            if !types.contains(&t) {
                types.push(t);
            }
        }
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;
    use std::path::Path;

    fn ids_for(k: &age::x25519::Identity, dir: &Path) -> Identities {
        let p = dir.join("id");
        std::fs::write(&p, format!("{}\n", k.to_string().expose_secret())).unwrap();
        Identities::load(&[p], false).unwrap()
    }

    fn encrypt(to: &age::x25519::Identity, data: &[u8], armor: bool) -> Vec<u8> {
        let r = to.to_public();
        if armor {
            age::encrypt_and_armor(&r, data).unwrap().into_bytes()
        } else {
            age::encrypt(&r, data).unwrap()
        }
    }

    #[test]
    fn round_trip_binary_and_armored() {
        let d = tempfile::tempdir().unwrap();
        let k = age::x25519::Identity::generate();
        let ids = ids_for(&k, d.path());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for armor in [false, true] {
            let ct = encrypt(&k, &data, armor);
            let mut out = Vec::new();
            assert_eq!(decrypt_to(&ct, &ids, &mut out).unwrap(), data.len() as u64);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn failures_are_classified() {
        let d = tempfile::tempdir().unwrap();
        let k = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let ids = ids_for(&k, d.path());
        let data = vec![7u8; 100_000];
        let ct = encrypt(&k, &data, false);
        let kind = |ct: &[u8]| decrypt_to(ct, &ids, &mut io::sink()).unwrap_err().kind;

        let e = decrypt_to(&encrypt(&other, b"x", false), &ids, &mut io::sink()).unwrap_err();
        assert_eq!(e.kind, FailureKind::NoMatch);
        assert!(e.detail.contains("X25519"), "{e}");
        assert_eq!(kind(b"hello, not age"), FailureKind::Header);
        assert_eq!(kind(b""), FailureKind::Header);
        assert_eq!(kind(&ct[..ct.len() - 10]), FailureKind::Payload);
        assert_eq!(kind(&ct[..40]), FailureKind::Header);
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(kind(&bad), FailureKind::Payload);
        // Flip a byte of the header MAC line.
        let mut bad = ct.clone();
        let mac = bad.windows(4).position(|w| w == b"--- ").unwrap() + 6;
        bad[mac] = if bad[mac] == b'A' { b'B' } else { b'A' };
        assert_eq!(kind(&bad), FailureKind::Mac);
        // Passphrase-encrypted files are unsupported.
        let scrypt = age::Encryptor::with_user_passphrase("pw".to_string().into());
        let mut ct = Vec::new();
        let mut w = scrypt.wrap_output(&mut ct).unwrap();
        w.write_all(b"secret").unwrap();
        w.finish().unwrap();
        assert_eq!(stanza_types(&ct), vec!["scrypt".to_string()]);
        assert_eq!(kind(&ct), FailureKind::Unsupported);
    }
}
