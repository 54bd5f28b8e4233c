//! The `ensure_dirs` extension: directories to create after mounting, with owner, group and
//! mode.

use serde_json::Value;

use super::walker::{kind, Walker};
use crate::layout::EnsureDir;

impl Walker<'_> {
    pub(super) fn ensure_dirs(&mut self, v: &Value) -> Vec<EnsureDir> {
        let Value::Array(a) = v else {
            self.err("ensure_dirs", format!("expected a list, found {}", kind(v)));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, d) in a.iter().enumerate() {
            let p = format!("ensure_dirs[{i}]");
            let Some(mut o) = self.obj(&p, d) else {
                continue;
            };
            let path = self.required_string(&mut o, "path");
            let owner = self
                .string(&mut o, "owner")
                .unwrap_or_else(|| "root".into());
            let group = self
                .string(&mut o, "group")
                .unwrap_or_else(|| "root".into());
            let mode = match o.map.remove("mode") {
                None | Some(Value::Null) => Some(0o755),
                Some(Value::String(m)) => {
                    match u32::from_str_radix(m.trim_start_matches("0o"), 8) {
                        Ok(v) if v <= 0o7777 => Some(v),
                        _ => {
                            self.err(
                                &p,
                                format!("mode {m:?}: expected an octal mode like \"0750\""),
                            );
                            None
                        }
                    }
                }
                Some(other) => {
                    self.err(&p, format!("mode: write the mode as a quoted octal string like \"0750\" (found {})", kind(other)));
                    None
                }
            };
            self.finish(o);
            if let Some(pa) = &path {
                self.check_mountpoint(&p, pa);
            }
            if let (Some(path), Some(mode)) = (path, mode) {
                out.push(EnsureDir {
                    path,
                    owner,
                    group,
                    mode,
                });
            }
        }
        out
    }
}
