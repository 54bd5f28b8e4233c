//! Size arithmetic for layouts: `500M`, `1.5G`, `100%`, `100%FREE`, `50%VG` (binary units, as
//! sgdisk, parted and lvm read them).

use std::fmt;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const TIB: u64 = 1024 * GIB;

/// Parse `500M`, `1.5G`, `4096`, `10K`, `2T`, `1P` (also `MiB`, `MB`: binary, as lvm and sgdisk
/// treat them). Plain numbers are bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty size".into());
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?}: expected a number with an optional K/M/G/T/P unit"
        ));
    }
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => KIB,
        "M" | "MB" | "MIB" => MIB,
        "G" | "GB" | "GIB" => GIB,
        "T" | "TB" | "TIB" => TIB,
        "P" | "PB" | "PIB" => 1024 * TIB,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use K, M, G, T or P)"
            ))
        }
    };
    let value = if let Some((int, frac)) = num.split_once('.') {
        if int.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(format!("{s:?}: not a number"));
        }
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| format!("{s:?}: not a number"))?
        };
        let frac_digits = frac.len().min(9) as u32;
        let frac_v: u64 = if frac.is_empty() {
            0
        } else {
            frac[..frac_digits as usize]
                .parse()
                .map_err(|_| format!("{s:?}: not a number"))?
        };
        let scale = 10u64.pow(frac_digits);
        int.checked_mul(mult)
            .and_then(|a| a.checked_add((frac_v as u128 * mult as u128 / scale as u128) as u64))
    } else {
        num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult))
    };
    value.ok_or_else(|| format!("{s:?}: too large"))
}

/// What a percentage is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PercentOf {
    /// `N%` or `N%VG`: of the whole VG.
    Vg,
    /// `N%FREE`: of what is free when this LV is created.
    Free,
    /// `N%PVS`: of the PVs' space.
    Pvs,
}

/// An LV size: bytes (`-L`) or a percentage (`-l`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LvSize {
    Bytes { bytes: u64 },
    Percent { percent: u32, of: PercentOf },
}

impl LvSize {
    pub fn parse(s: &str) -> Result<LvSize, String> {
        let t = s.trim();
        if let Some(i) = t.find('%') {
            let (n, rest) = t.split_at(i);
            let of = match rest[1..].to_ascii_uppercase().as_str() {
                "" | "VG" => PercentOf::Vg,
                "FREE" => PercentOf::Free,
                "PVS" => PercentOf::Pvs,
                other => {
                    return Err(format!(
                        "{s:?}: unknown percentage suffix {other:?} (use %, %VG, %FREE or %PVS)"
                    ))
                }
            };
            let percent: u32 = n
                .parse()
                .map_err(|_| format!("{s:?}: expected a whole percentage like 100%FREE"))?;
            if percent == 0 || percent > 100 {
                return Err(format!("{s:?}: percentage must be 1–100"));
            }
            Ok(LvSize::Percent { percent, of })
        } else {
            let bytes = parse_bytes(t)?;
            if bytes == 0 {
                return Err(format!("{s:?}: size must be positive"));
            }
            Ok(LvSize::Bytes { bytes })
        }
    }

    pub fn is_percent(&self) -> bool {
        matches!(self, LvSize::Percent { .. })
    }

    /// lvcreate arguments: `-L <bytes>b` or `-l N%X`.
    pub fn lvcreate_args(&self) -> Vec<String> {
        match self {
            LvSize::Bytes { bytes } => vec!["-L".into(), format!("{bytes}b")],
            LvSize::Percent { percent, of } => {
                let of = match of {
                    PercentOf::Vg => "VG",
                    PercentOf::Free => "FREE",
                    PercentOf::Pvs => "PVS",
                };
                vec!["-l".into(), format!("{percent}%{of}")]
            }
        }
    }
}

/// Human size with binary units: `410 GiB`, `1.5 GiB`, `512 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("PiB", 1024 * TIB),
        ("TiB", TIB),
        ("GiB", GIB),
        ("MiB", MIB),
        ("KiB", KIB),
    ];
    for (name, u) in UNITS {
        if bytes >= u {
            let v = bytes as f64 / u as f64;
            return if (v - v.round()).abs() < 0.05 {
                format!("{:.0} {name}", v.round())
            } else {
                format!("{v:.1} {name}")
            };
        }
    }
    format!("{bytes} B")
}

/// A GPT partition boundary as sgdisk reads it (`0` = default, `1M`, `+500M`, `-10M`, `-0`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SgdiskPos(pub String);

impl SgdiskPos {
    pub fn parse(s: &str) -> Result<SgdiskPos, String> {
        let t = s.trim();
        let body = t.strip_prefix(['+', '-']).unwrap_or(t);
        if body == "0" {
            return Ok(SgdiskPos(t.to_string()));
        }
        parse_bytes(body)?;
        Ok(SgdiskPos(t.to_string()))
    }
}

impl fmt::Display for SgdiskPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_table() {
        let ok: &[(&str, u64)] = &[
            ("500M", 500 * MIB),
            ("1G", GIB),
            ("1.5G", GIB + GIB / 2),
            ("4096", 4096),
            ("10K", 10 * KIB),
            ("2T", 2 * TIB),
            ("100MiB", 100 * MIB),
            ("32g", 32 * GIB),
            (".5G", GIB / 2),
        ];
        for (s, want) in ok {
            assert_eq!(parse_bytes(s), Ok(*want), "{s}");
        }
        for bad in [
            "",
            "M",
            "1X",
            "1..2G",
            "-1G",
            "99999999999999999999T",
            "1.2.3M",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn lv_sizes() {
        assert_eq!(
            LvSize::parse("100%FREE").unwrap().lvcreate_args(),
            ["-l", "100%FREE"]
        );
        assert_eq!(
            LvSize::parse("50%").unwrap().lvcreate_args(),
            ["-l", "50%VG"]
        );
        assert_eq!(
            LvSize::parse("1G").unwrap().lvcreate_args(),
            ["-L", "1073741824b"]
        );
        for bad in ["0%", "101%", "x%FREE", "10%ORIGINX", "0", "abc"] {
            assert!(LvSize::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(410 * GIB), "410 GiB");
        assert_eq!(human(GIB + GIB / 2), "1.5 GiB");
        assert_eq!(human(100), "100 B");
    }

    #[test]
    fn sgdisk_positions() {
        for ok in ["0", "-0", "1M", "+500M", "-10M", "100G"] {
            assert!(SgdiskPos::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "abc", "+", "1X"] {
            assert!(SgdiskPos::parse(bad).is_err(), "{bad}");
        }
    }
}
