//! sops' value cipher (aes/cipher.go): `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<t>]`,
//! AES-256-GCM with a 32-byte IV (sops' `nonceSize`), the associated data given by the caller
//! (the key path joined with `:` plus a trailing `:`; `lastmodified` for the MAC). Base64 is
//! standard with padding (Go `base64.StdEncoding`). The empty string stands for itself: sops
//! stores empty values unencrypted.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::Engine as _;

use super::tree::Value;

/// AES-256-GCM with sops' 32-byte nonce.
type SopsGcm = AesGcm<Aes256, U32>;

const PREFIX: &str = "ENC[AES256_GCM,";
const IV_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The parts of one `ENC[…]` value.
#[derive(Debug, PartialEq, Eq)]
pub struct Enc {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub kind: String,
}

/// Whether a string is meant to be an `ENC[…]` value.
pub fn looks_encrypted(s: &str) -> bool {
    s.starts_with(PREFIX)
}

/// Parse `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`. Stricter than sops' regular expression
/// (which also takes trailing text after `]`): exactly these four fields in this order.
pub fn parse(s: &str) -> Result<Enc, String> {
    let inner = s
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| "not a sops encrypted value ENC[AES256_GCM,…]".to_string())?;
    let mut fields = inner.split(',');
    let mut field = |name: &str| -> Result<&str, String> {
        fields
            .next()
            .and_then(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .ok_or_else(|| format!("encrypted value: field {name:?} missing or out of order"))
    };
    let b64 = |name: &str, v: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_err(|e| format!("encrypted value: {name} is not base64: {e}"))
    };
    let data = b64("data", field("data")?)?;
    let iv = b64("iv", field("iv")?)?;
    let tag = b64("tag", field("tag")?)?;
    let kind = field("type")?.to_string();
    if fields.next().is_some() {
        return Err("encrypted value: unexpected field after type".into());
    }
    Ok(Enc {
        data,
        iv,
        tag,
        kind,
    })
}

/// Decrypt and authenticate one value to raw bytes and its `type`.
pub fn open(s: &str, key: &[u8; 32], aad: &str) -> Result<(Vec<u8>, String), String> {
    let enc = parse(s)?;
    if enc.iv.len() != IV_LEN {
        return Err(format!(
            "encrypted value: IV of {} bytes, sops writes {IV_LEN}",
            enc.iv.len()
        ));
    }
    if enc.tag.len() != TAG_LEN {
        return Err(format!(
            "encrypted value: tag of {} bytes, expected {TAG_LEN}",
            enc.tag.len()
        ));
    }
    let cipher = SopsGcm::new(key.into());
    let mut ct = enc.data;
    ct.extend_from_slice(&enc.tag);
    let plain = cipher
        .decrypt(
            enc.iv.as_slice().into(),
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            "authentication failed: wrong data key, or the value was changed or moved to \
             another key"
                .to_string()
        })?;
    Ok((plain, enc.kind))
}

/// Decrypt one value to a typed tree value (aes/cipher.go `Decrypt`): `str` (bytes when not
/// UTF-8), `int`, `float`, `bool` (Go `strconv.ParseBool`), `bytes`, `comment`. `time` values
/// (YAML timestamps, which no format here produces) are refused. The empty string is returned
/// as is.
pub fn decrypt(s: &str, key: &[u8; 32], aad: &str) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::Str(String::new()));
    }
    let (plain, kind) = open(s, key, aad)?;
    let text =
        || String::from_utf8(plain.clone()).map_err(|_| format!("type {kind}: not UTF-8 text"));
    Ok(match kind.as_str() {
        "str" => match String::from_utf8(plain) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
        "bytes" => Value::Bytes(plain),
        "int" => Value::Int(parse_go_int(&text()?).ok_or("type int: not an integer")?),
        "float" => Value::Float(parse_go_float(&text()?).ok_or("type float: not a number")?),
        "bool" => Value::Bool(parse_go_bool(&text()?).ok_or("type bool: not a boolean")?),
        "comment" => Value::Comment(text()?),
        other => return Err(format!("unknown value type {other:?}")),
    })
}

/// Go `strconv.Atoi`: optional sign, decimal digits.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go `strconv.ParseFloat(s, 64)` for what sops writes: decimal with optional exponent,
/// `NaN`, `±Inf`/`±Infinity` (any case).
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    if matches!(body.as_str(), "inf" | "infinity" | "nan") {
        return s.to_ascii_lowercase().parse().ok();
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

/// Go `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Encrypt, for tests of this module's callers (the test encoder in tests/ is independent).
#[cfg(test)]
pub fn seal(plain: &[u8], kind: &str, key: &[u8; 32], aad: &str, iv: &[u8; 32]) -> String {
    let b = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let out = SopsGcm::new(key.into())
        .encrypt(
            iv.into(),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    let (data, tag) = out.split_at(out.len() - TAG_LEN);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        b(data),
        b(iv),
        b(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trip_and_types() {
        let iv = [9u8; 32];
        let v = seal(b"42", "int", &KEY, "a:b:", &iv);
        assert_eq!(decrypt(&v, &KEY, "a:b:").unwrap(), Value::Int(42));
        let v = seal(b"True", "bool", &KEY, "x:", &iv);
        assert_eq!(decrypt(&v, &KEY, "x:").unwrap(), Value::Bool(true));
        let v = seal(b"1.5", "float", &KEY, "x:", &iv);
        assert_eq!(decrypt(&v, &KEY, "x:").unwrap(), Value::Float(1.5));
        let v = seal(&[0xff, 0], "str", &KEY, "x:", &iv);
        assert_eq!(
            decrypt(&v, &KEY, "x:").unwrap(),
            Value::Bytes(vec![0xff, 0])
        );
        assert_eq!(decrypt("", &KEY, "x:").unwrap(), Value::Str(String::new()));
        let v = seal(b"x", "time", &KEY, "x:", &iv);
        assert!(decrypt(&v, &KEY, "x:").unwrap_err().contains("time"));
        let v = seal(b"12x", "int", &KEY, "x:", &iv);
        assert!(decrypt(&v, &KEY, "x:").is_err());
    }

    #[test]
    fn wrong_aad_key_or_bytes_fail() {
        let iv = [1u8; 32];
        let v = seal(b"secret", "str", &KEY, "a:", &iv);
        assert!(decrypt(&v, &KEY, "b:")
            .unwrap_err()
            .contains("authentication"));
        assert!(decrypt(&v, &[8; 32], "a:").is_err());
        let mut e = parse(&v).unwrap();
        e.data[0] ^= 1;
        assert!(open(&v.replace("type:str", "type:str,x:1"), &KEY, "a:").is_err());
        for bad in [
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==]",
            "ENC[AES256_GCM,iv:AA==,data:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]",
            "plain",
        ] {
            assert!(decrypt(bad, &KEY, "a:").is_err(), "{bad}");
        }
        // A 12-byte IV is refused by name.
        let short = v.replace(
            &base64::engine::general_purpose::STANDARD.encode(iv),
            &base64::engine::general_purpose::STANDARD.encode([1u8; 12]),
        );
        assert!(decrypt(&short, &KEY, "a:")
            .unwrap_err()
            .contains("IV of 12"));
    }

    #[test]
    fn go_scalars() {
        assert_eq!(parse_go_int("+7"), Some(7));
        assert_eq!(parse_go_int("007"), Some(7));
        assert_eq!(parse_go_int("1_0"), None);
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert!(parse_go_float("NaN").unwrap().is_nan());
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float("0x10"), None);
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }
}
