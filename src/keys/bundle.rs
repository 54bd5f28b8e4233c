//! Checks on the key bundle's bytes, before anything is written (DESIGN §7).
//!
//! Pure: bytes in, validated members out. The bundle must be a gzip'd tar within the size caps;
//! every entry's path must be relative without `..`; links, devices and FIFOs are refused; only
//! mapped members are taken (others are reported so the caller can warn); each mapped member
//! must be an unencrypted OpenSSH private key (ed25519, rsa or ecdsa). Errors name the member
//! and never carry key bytes; they map to [`Code::Verify`].

use anyhow::Result;
use std::collections::BTreeMap;
use std::io::Read;

use ssh_key::{Algorithm, HashAlg, PrivateKey};

use crate::exit::{coded, Code};

/// Size caps applied to the bundle.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on the compressed bundle and, separately, on the unpacked tar stream.
    pub max_bytes: u64,
    /// Cap on the number of tar entries (directories and ignored files count too).
    pub max_members: usize,
}

/// What the caller wants from the bundle: a member name and whether it may be absent.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub member: String,
    pub optional: bool,
}

/// Facts about a private key that can be shown (no secret material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// SSH algorithm name, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`.
    pub algorithm: String,
    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The public key line: `type base64 [comment]` (the private key's comment, if any).
    pub public_openssh: String,
}

/// A validated member: its bytes (exactly as in the bundle) and what they are.
pub struct KeyFile {
    pub member: String,
    pub data: Vec<u8>,
    pub info: KeyInfo,
}

impl std::fmt::Debug for KeyFile {
    // Never print the key bytes, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("member", &self.member)
            .field("len", &self.data.len())
            .field("info", &self.info)
            .finish()
    }
}

/// The result of checking a bundle.
#[derive(Debug)]
pub struct Bundle {
    /// The wanted members that were present, in the order of `wanted`.
    pub keys: Vec<KeyFile>,
    /// Regular files in the bundle that no mapping names (to be warned about, then ignored).
    pub ignored: Vec<String>,
}

fn reject(msg: impl Into<String>) -> anyhow::Error {
    coded(Code::Verify, format!("key bundle rejected: {}", msg.into()))
}

/// Normalise a member path: `./a/b` → `a/b`. Absolute paths and `..` are errors; `None` means
/// the path names the archive root (`./`).
pub fn normalize_member(raw: &str) -> std::result::Result<Option<String>, String> {
    if raw.starts_with('/') {
        return Err("absolute path".into());
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path contains `..`".into()),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.join("/")))
}

/// tar's error text without what it quotes from the archive: its messages can carry a damaged
/// header's field bytes and path (`numeric field was not a number: … when getting cksum for
/// <path>`), which in a damaged bundle may be key material. Keep the fixed wording only.
fn tar_error_words(e: &std::io::Error) -> String {
    let msg = e.to_string();
    let head = msg.split(':').next().unwrap_or_default().trim().to_string();
    match msg
        .split(" when getting ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
    {
        Some(field @ ("size" | "mode" | "uid" | "gid" | "mtime" | "cksum")) => {
            format!("{head} (header field {field})")
        }
        _ => head,
    }
}

/// Check a whole bundle. Nothing here touches the file system.
pub fn check(bytes: &[u8], wanted: &[Wanted], limits: Limits) -> Result<Bundle> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(reject(format!(
            "{} bytes, more than max_bundle_bytes ({})",
            bytes.len(),
            limits.max_bytes
        )));
    }
    if bytes.len() < 2 || bytes[..2] != [0x1f, 0x8b] {
        return Err(reject("not a gzip file (expected a .tar.gz)"));
    }
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limits.max_bytes + 1)
        .read_to_end(&mut tar_bytes)
        .map_err(|e| reject(format!("gzip stream is corrupt or truncated: {e}")))?;
    if tar_bytes.len() as u64 > limits.max_bytes {
        return Err(reject(format!(
            "unpacks to more than max_bundle_bytes ({})",
            limits.max_bytes
        )));
    }

    let mut found: BTreeMap<String, KeyFile> = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut count = 0usize;
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let entries = archive
        .entries()
        .map_err(|e| reject(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            reject(format!(
                "corrupt tar archive: entry {}: {}",
                count + 1,
                tar_error_words(&e)
            ))
        })?;
        count += 1;
        if count > limits.max_members {
            return Err(reject(format!(
                "more than max_members ({}) entries",
                limits.max_members
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let raw = String::from_utf8(raw)
            .map_err(|e| reject(format!("entry path {:?} is not UTF-8", e.as_bytes())))?;
        let name = normalize_member(&raw).map_err(|why| reject(format!("entry {raw:?}: {why}")))?;
        let kind = entry.header().entry_type();
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous => {}
            T::Directory | T::XGlobalHeader => continue,
            T::Symlink | T::Link => {
                return Err(reject(format!(
                    "entry {raw:?} is a {}; links are not allowed",
                    if kind == T::Symlink {
                        "symlink"
                    } else {
                        "hard link"
                    }
                )))
            }
            T::Char | T::Block | T::Fifo => {
                return Err(reject(format!(
                    "entry {raw:?} is a device node or FIFO; only regular files are allowed"
                )))
            }
            other => {
                return Err(reject(format!(
                    "entry {raw:?} has unsupported type {:?}; only regular files are allowed",
                    other.as_byte() as char
                )))
            }
        }
        let Some(name) = name else {
            return Err(reject(format!("entry {raw:?} is a file without a name")));
        };
        let Some(w) = wanted.iter().find(|w| w.member == name) else {
            ignored.push(name);
            continue;
        };
        if found.contains_key(&name) {
            return Err(reject(format!("member {name:?} appears more than once")));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| reject(format!("member {name:?}: {e}")))?;
        if data.len() as u64 != size {
            return Err(reject(format!(
                "member {name:?} is truncated ({} of {size} bytes)",
                data.len()
            )));
        }
        let info =
            parse_private_key(&data).map_err(|why| reject(format!("member {name:?}: {why}")))?;
        found.insert(
            w.member.clone(),
            KeyFile {
                member: w.member.clone(),
                data,
                info,
            },
        );
    }

    let mut keys = Vec::new();
    let mut missing = Vec::new();
    for w in wanted {
        match found.remove(&w.member) {
            Some(k) => keys.push(k),
            None if w.optional => {}
            None => missing.push(format!("{:?}", w.member)),
        }
    }
    if !missing.is_empty() {
        return Err(reject(format!(
            "required member(s) missing: {}",
            missing.join(", ")
        )));
    }
    Ok(Bundle { keys, ignored })
}

/// Parse an OpenSSH private key and describe it. The error says why without quoting the data.
pub fn parse_private_key(data: &[u8]) -> std::result::Result<KeyInfo, String> {
    let text = std::str::from_utf8(data)
        .map_err(|_| "not text, so not an OpenSSH private key".to_string())?;
    if text.contains("-----BEGIN RSA PRIVATE KEY-----")
        || text.contains("-----BEGIN EC PRIVATE KEY-----")
        || text.contains("-----BEGIN PRIVATE KEY-----")
    {
        return Err(
            "a PEM (PKCS#1/PKCS#8) key, not the OpenSSH format; convert it with \
                    `ssh-keygen -p -N '' -f FILE`"
                .into(),
        );
    }
    let key = PrivateKey::from_openssh(text.trim())
        .or_else(|e| {
            // ssh-key 0.6 refuses an ECDSA scalar that OpenSSH wrote without its leading zero
            // byte (an mpint is minimal: one key in 256); give it the fixed width and retry.
            ecdsa_scalar_padded(text.trim())
                .and_then(|t| PrivateKey::from_openssh(t).ok())
                .ok_or(e)
        })
        .map_err(|e| format!("not a parseable OpenSSH private key ({e})"))?;
    if key.is_encrypted() {
        return Err("the key is passphrase-protected; sshd cannot use it".into());
    }
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Rsa { .. } | Algorithm::Ecdsa { .. } => {}
        other => {
            return Err(format!(
                "unsupported key type {} (want ed25519, rsa or ecdsa)",
                other.as_str()
            ))
        }
    }
    Ok(describe(&key))
}

/// An unencrypted openssh-key-v1 ECDSA key (OpenSSH PROTOCOL.key) re-encoded with its private
/// scalar left-padded to the curve's width (32, 48 or 66 bytes) when OpenSSH wrote it shorter.
/// None when the text is anything else or needs no change.
fn ecdsa_scalar_padded(text: &str) -> Option<String> {
    use base64ct::{Base64, Encoding};
    let body: String = text
        .strip_prefix("-----BEGIN OPENSSH PRIVATE KEY-----")?
        .trim_end()
        .strip_suffix("-----END OPENSSH PRIVATE KEY-----")?
        .split_whitespace()
        .collect();
    let blob = Base64::decode_vec(&body).ok()?;
    let mut r = blob.strip_prefix(b"openssh-key-v1\0")?;
    fn take<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = u32::from_be_bytes(r.get(..4)?.try_into().ok()?) as usize;
        let v = r.get(4..4 + n)?;
        *r = &r[4 + n..];
        Some(v)
    }
    if take(&mut r)? != b"none" {
        return None; // encrypted: the scalar cannot be reached (and is refused anyway)
    }
    take(&mut r)?; // kdfname
    take(&mut r)?; // kdfoptions
    if r.get(..4)? != [0, 0, 0, 1] {
        return None;
    }
    r = &r[4..];
    take(&mut r)?; // public key
    let head = &blob[..blob.len() - r.len()];
    let mut p = take(&mut r)?;
    let checks = p.get(..8)?;
    p = &p[8..];
    let kt = take(&mut p)?;
    let width = match kt {
        b"ecdsa-sha2-nistp256" => 32,
        b"ecdsa-sha2-nistp384" => 48,
        b"ecdsa-sha2-nistp521" => 66,
        _ => return None,
    };
    let curve = take(&mut p)?;
    let q = take(&mut p)?;
    let d = take(&mut p)?;
    let rest = p; // comment and padding
    if d.len() >= width || d.first().is_some_and(|b| *b >= 0x80) {
        return None;
    }
    let put = |out: &mut Vec<u8>, v: &[u8]| {
        out.extend((v.len() as u32).to_be_bytes());
        out.extend(v);
    };
    let mut scalar = vec![0u8; width - d.len()];
    scalar.extend(d);
    if scalar[0] >= 0x80 {
        scalar.insert(0, 0);
    }
    let mut priv_ = checks.to_vec();
    put(&mut priv_, kt);
    put(&mut priv_, curve);
    put(&mut priv_, q);
    put(&mut priv_, &scalar);
    // Comment, then the 1, 2, 3… padding to the 8-byte block, recomputed for the new length.
    let comment_len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    priv_.extend(rest.get(..4 + comment_len)?);
    let mut i = 1u8;
    while priv_.len() % 8 != 0 {
        priv_.push(i);
        i += 1;
    }
    let mut out = head.to_vec();
    put(&mut out, &priv_);
    let b64 = Base64::encode_string(&out);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).ok()?);
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Some(pem)
}

/// The shareable facts about a parsed private key.
pub fn describe(key: &PrivateKey) -> KeyInfo {
    let public = key.public_key();
    KeyInfo {
        algorithm: key.algorithm().as_str().to_string(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        public_openssh: public.to_openssh().unwrap_or_default(),
    }
}

/// Re-encode (for tests that build keys in-process).
#[cfg(test)]
fn encode_private_key(key: &PrivateKey) -> Vec<u8> {
    key.to_openssh(ssh_key::LineEnding::LF)
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ECDSA key as OpenSSH writes it when the scalar's first byte is 0 (one key in 256):
    /// the mpint is 31 bytes. ssh-keygen itself reads the file (so it is what OpenSSH makes), and
    /// the bundle check accepts it with the right fingerprint.
    #[test]
    fn ecdsa_key_with_a_short_scalar_is_accepted() {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate().skip(1) {
            *b = i as u8 * 7 + 1;
        }
        let sk = p256::SecretKey::from_slice(&d).unwrap();
        let q = sk.public_key().to_sec1_bytes();
        let put = |out: &mut Vec<u8>, v: &[u8]| {
            out.extend((v.len() as u32).to_be_bytes());
            out.extend(v);
        };
        let mut public = Vec::new();
        put(&mut public, b"ecdsa-sha2-nistp256");
        put(&mut public, b"nistp256");
        put(&mut public, &q);
        let mut private = vec![1, 2, 3, 4, 1, 2, 3, 4];
        put(&mut private, b"ecdsa-sha2-nistp256");
        put(&mut private, b"nistp256");
        put(&mut private, &q);
        put(&mut private, &d[1..]); // minimal mpint: 31 bytes
        put(&mut private, b"short@test");
        let mut i = 1u8;
        while private.len() % 8 != 0 {
            private.push(i);
            i += 1;
        }
        let mut blob = b"openssh-key-v1\0".to_vec();
        put(&mut blob, b"none");
        put(&mut blob, b"none");
        put(&mut blob, b"");
        blob.extend(1u32.to_be_bytes());
        put(&mut blob, &public);
        put(&mut blob, &private);
        use base64ct::{Base64, Encoding};
        let pem = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            Base64::encode_string(&blob)
        );
        assert!(
            PrivateKey::from_openssh(&pem).is_err(),
            "ssh-key fixed upstream?"
        );
        let info = parse_private_key(pem.as_bytes()).unwrap();
        assert_eq!(info.algorithm, "ecdsa-sha2-nistp256");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, &pem).unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        assert!(
            line.contains(&info.fingerprint),
            "{line} vs {}",
            info.fingerprint
        );
        let out = std::process::Command::new("ssh-keygen")
            .args(["-y", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen reads it: {out:?}");
    }

    fn key(comment: &str) -> Vec<u8> {
        let mut k = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]));
        k.set_comment(comment);
        encode_private_key(&k)
    }

    fn header(path: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        {
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path);
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o600);
        h.set_cksum();
        h
    }

    /// A tarball with raw (unchecked) entry names, so malicious ones can be built.
    fn tarball(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let h = header(path.as_bytes(), *kind, data.len() as u64);
            b.append(&h, *data).unwrap();
        }
        gz(&b.into_inner().unwrap())
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn wanted() -> Vec<Wanted> {
        ["root_privkey", "host_privkey"]
            .iter()
            .map(|m| Wanted {
                member: m.to_string(),
                optional: false,
            })
            .collect()
    }

    const LIM: Limits = Limits {
        max_bytes: 64 * 1024,
        max_members: 8,
    };

    #[test]
    fn accepts_good_bundle_and_ignores_unknown() {
        use tar::EntryType as T;
        let k = key("root@x");
        let b = tarball(&[
            ("./", T::Directory, b""),
            ("./root_privkey", T::Regular, &k),
            ("host_privkey", T::Regular, &k),
            ("README", T::Regular, b"hello"),
        ]);
        let out = check(&b, &wanted(), LIM).unwrap();
        assert_eq!(out.keys.len(), 2);
        assert_eq!(out.keys[0].member, "root_privkey");
        assert_eq!(out.keys[0].data, k);
        assert_eq!(out.keys[0].info.algorithm, "ssh-ed25519");
        assert!(out.keys[0].info.fingerprint.starts_with("SHA256:"));
        assert!(out.keys[0]
            .info
            .public_openssh
            .starts_with("ssh-ed25519 AAAA"));
        assert!(out.keys[0].info.public_openssh.ends_with(" root@x"));
        assert_eq!(out.ignored, vec!["README".to_string()]);
        assert!(!format!("{:?}", out.keys[0]).contains("OPENSSH"));
    }

    #[test]
    fn rejects_malicious_and_broken_bundles() {
        use tar::EntryType as T;
        let k = key("");
        let good = tarball(&[
            ("root_privkey", T::Regular, &k),
            ("host_privkey", T::Regular, &k),
        ]);
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 12);
        let many: Vec<(String, T, &[u8])> = (0..9)
            .map(|i| (format!("f{i}"), T::Regular, &b"x"[..]))
            .collect();
        let many: Vec<(&str, T, &[u8])> = many.iter().map(|(a, b, c)| (&a[..], *b, *c)).collect();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "traversal",
                tarball(&[
                    ("../root_privkey", T::Regular, &k),
                    ("host_privkey", T::Regular, &k),
                ]),
                "`..`",
            ),
            (
                "nested traversal",
                tarball(&[("a/../../x", T::Regular, &k)]),
                "`..`",
            ),
            (
                "absolute",
                tarball(&[("/etc/shadow", T::Regular, b"x")]),
                "absolute path",
            ),
            (
                "symlink",
                tarball(&[("root_privkey", T::Symlink, b"")]),
                "symlink",
            ),
            (
                "hardlink",
                tarball(&[("root_privkey", T::Link, b"")]),
                "hard link",
            ),
            (
                "char device",
                tarball(&[("host_privkey", T::Char, b"")]),
                "device node",
            ),
            ("fifo", tarball(&[("x", T::Fifo, b"")]), "device node"),
            ("too many", tarball(&many), "max_members"),
            (
                "non-key",
                tarball(&[
                    ("root_privkey", T::Regular, b"hello world\n"),
                    ("host_privkey", T::Regular, &k),
                ]),
                "member \"root_privkey\": not a parseable OpenSSH private key",
            ),
            (
                "binary",
                tarball(&[("root_privkey", T::Regular, &[0xff, 0x00, 0x80])]),
                "not text",
            ),
            (
                "pem",
                tarball(&[(
                    "root_privkey",
                    T::Regular,
                    b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                )]),
                "PEM",
            ),
            (
                "missing member",
                tarball(&[("root_privkey", T::Regular, &k)]),
                "required member(s) missing: \"host_privkey\"",
            ),
            (
                "duplicate",
                tarball(&[
                    ("root_privkey", T::Regular, &k),
                    ("./root_privkey", T::Regular, &k),
                ]),
                "more than once",
            ),
            ("truncated gzip", truncated, "truncated"),
            ("plain tar", good[10..].to_vec(), "not a gzip file"),
            ("empty", Vec::new(), "not a gzip file"),
            ("gzip of junk", gz(&[0x41; 2048]), "tar"),
        ];
        for (what, bytes, want) in cases {
            let e = check(&bytes, &wanted(), LIM).expect_err(what);
            let msg = format!("{e:#}");
            assert!(msg.contains(want), "{what}: {msg}");
            assert_eq!(crate::exit::code_of(&e), Code::Verify, "{what}");
            assert!(
                !msg.contains("OPENSSH PRIVATE"),
                "{what}: key bytes in {msg}"
            );
        }
    }

    #[test]
    fn size_caps() {
        use tar::EntryType as T;
        let k = key("");
        let big = vec![b'a'; 200 * 1024];
        let b = tarball(&[
            ("root_privkey", T::Regular, &k),
            ("host_privkey", T::Regular, &k),
            ("padding", T::Regular, &big),
        ]);
        // compresses well: under the cap packed, over it unpacked (a gzip bomb in miniature)
        assert!((b.len() as u64) < LIM.max_bytes);
        let msg = format!("{:#}", check(&b, &wanted(), LIM).unwrap_err());
        assert!(msg.contains("unpacks to more than"), "{msg}");
        let small = Limits {
            max_bytes: 100,
            max_members: 8,
        };
        let msg = format!("{:#}", check(&b, &wanted(), small).unwrap_err());
        assert!(msg.contains("more than max_bundle_bytes (100)"), "{msg}");
    }

    #[test]
    fn optional_members_may_be_absent() {
        use tar::EntryType as T;
        let k = key("");
        let mut w = wanted();
        w[1].optional = true;
        let out = check(&tarball(&[("root_privkey", T::Regular, &k)]), &w, LIM).unwrap();
        assert_eq!(out.keys.len(), 1);
    }

    #[test]
    fn normalize() {
        assert_eq!(normalize_member("./a//b").unwrap().as_deref(), Some("a/b"));
        assert_eq!(normalize_member("./").unwrap(), None);
        assert!(normalize_member("/a").is_err());
        assert!(normalize_member("a/..").is_err());
    }
}
