//! `provision status` for keys: what is installed now.

use serde_json::{json, Value};

use super::bundle;
use super::config::{pub_path, KeysConfig};
use crate::context::Context;

/// The installed keys now: each target path with its SHA256 fingerprint, or `"missing"`
/// (`"invalid"` with an `error` when the file is there but is not a usable key), and whether
/// the `.pub` file matches.
pub fn status(ctx: &Context, cfg: &KeysConfig) -> Value {
    let mut keys = Vec::new();
    for (name, t) in &cfg.members {
        let full = ctx.path(&t.path);
        let mut entry = json!({
            "member": name,
            "path": t.path.display().to_string(),
        });
        match std::fs::read(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                entry["fingerprint"] = json!("missing");
            }
            Err(e) => {
                entry["fingerprint"] = json!("invalid");
                entry["error"] = json!(format!("{}: {e}", full.display()));
            }
            Ok(data) => match bundle::parse_private_key(&data) {
                Ok(info) => {
                    entry["fingerprint"] = json!(info.fingerprint);
                    entry["type"] = json!(info.algorithm);
                    let want_pub = info
                        .public_openssh
                        .split_whitespace()
                        .take(2)
                        .collect::<Vec<_>>();
                    entry["pub"] =
                        json!(match std::fs::read_to_string(ctx.path(pub_path(&t.path))) {
                            Err(_) => "missing",
                            Ok(p)
                                if p.split_whitespace().take(2).collect::<Vec<_>>() == want_pub =>
                                "ok",
                            Ok(_) => "mismatch",
                        });
                }
                Err(why) => {
                    entry["fingerprint"] = json!("invalid");
                    entry["error"] = json!(format!("{}: {why}", t.path.display()));
                }
            },
        }
        keys.push(entry);
    }
    json!({ "keys": keys })
}
