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
