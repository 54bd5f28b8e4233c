//! Size grammars of layouts, one per field as disko means it: LV sizes as lvm reads them
//! (`1.5G`, `100%FREE`, binary units), gpt `size`/`start`/`end` as sgdisk reads them (whole
//! numbers, binary units, `s` sectors, `+`/`-` relative) and `table` positions as parted reads
//! them (`M` = 10^6, `MiB` = 2^20, `%` of the disk). Resolving them against a disk is
//! `disks::geometry`.

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

/// An amount in a partition boundary: bytes, or logical sectors (`NNNs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Bytes(u64),
    Sectors(u64),
}

impl Amount {
    /// In logical sectors of `ss` bytes; `None` when a byte amount is not a whole number of
    /// sectors (sgdisk would silently truncate it).
    pub fn sectors(self, ss: u64) -> Option<u64> {
        match self {
            Amount::Sectors(n) => Some(n),
            Amount::Bytes(b) if b % ss == 0 => Some(b / ss),
            Amount::Bytes(_) => None,
        }
    }
}

/// What a GPT boundary means, in sgdisk's grammar (sgdisk(8) `--new`, gptfdisk `IeeeToInt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GptPosKind {
    /// `0`, `+0`, `-0`: the default (start: the first sector of the largest free block; end: the
    /// last sector of that block).
    Default,
    /// `1M`, `2048s`: an absolute sector (for an end: the last sector, inclusive).
    Absolute(Amount),
    /// `+500M`: after the default start (for a start) or after this partition's start (for an
    /// end: `start + n - 1`).
    Plus(Amount),
    /// `-10M`: back from the last sector of the free block.
    Minus(Amount),
}

/// A GPT partition boundary (`start`/`end`) as disko hands it to sgdisk, parsed once; the
/// layout's own text is kept for messages and the layout hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPos {
    pub text: String,
    pub kind: GptPosKind,
}

impl serde::Serialize for GptPos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// sgdisk's binary units (`K` = 1024 … `E`), case-insensitive as sgdisk reads them.
fn sgdisk_unit(c: char) -> Option<u64> {
    let i = "KMGTPE".find(c.to_ascii_uppercase())?;
    Some(1u64 << (10 * (i as u32 + 1)))
}

/// `NNN` + one of `K M G T P E s`; a bare number other than 0 is refused (sgdisk reads it as
/// sectors, so its bytes would change with the disk's sector size), and so is a fraction
/// (sgdisk reads `1.5G` as `1` and ignores the rest: one sector).
fn sgdisk_amount(s: &str, body: &str) -> Result<Amount, String> {
    let split = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (num, unit) = body.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?}: expected a number with a unit (K, M, G, T, P or s for sectors)"
        ));
    }
    if let Some(rest) = unit.strip_prefix(['.', ',']) {
        let fu = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        if !(fu.len() == 1 && fu.chars().next().and_then(sgdisk_unit).is_some()) {
            return Err(format!(
                "{s:?}: not an sgdisk position (a whole number with a unit K, M, G, T, P, or s for sectors)"
            ));
        }
    }
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "{s:?}: sgdisk takes whole numbers only (it would read this as {num} sector{}); write it in a smaller unit, e.g. 1536M for 1.5G",
            if num == "1" { "" } else { "s" }
        ));
    }
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: too large"))?;
    let mut chars = unit.chars();
    match (chars.next(), chars.next()) {
        (None, _) if n == 0 => Ok(Amount::Bytes(0)),
        (None, _) => Err(format!(
            "{s:?}: a bare number is a count of sectors to sgdisk, so its size depends on the disk; write {n}s for sectors or give a unit (K, M, G, T, P)"
        )),
        (Some('s'), None) => Ok(Amount::Sectors(n)),
        (Some(c), None) => match sgdisk_unit(c) {
            Some(m) => n
                .checked_mul(m)
                .map(Amount::Bytes)
                .ok_or_else(|| format!("{s:?}: too large")),
            None => Err(format!("{s:?}: unknown unit {unit:?} (use K, M, G, T, P or s)")),
        },
        // sgdisk reads the first letter only: `1MiB` is `1M`.
        (Some(c), Some(_))
            if c.is_ascii_alphabetic()
                && unit.len() == 3
                && unit[1..].eq_ignore_ascii_case("ib") =>
        {
            match sgdisk_unit(c) {
                Some(m) => n
                    .checked_mul(m)
                    .map(Amount::Bytes)
                    .ok_or_else(|| format!("{s:?}: too large")),
                None => Err(format!("{s:?}: unknown unit {unit:?}")),
            }
        }
        _ => Err(format!(
            "{s:?}: unknown unit {unit:?} (use K, M, G, T, P or s)"
        )),
    }
}

impl GptPos {
    /// Parse a `start`/`end` in sgdisk's grammar: `0`, `[+-]NNN[KMGTPE]`, `[+-]NNNs`.
    pub fn parse(s: &str) -> Result<GptPos, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty position".into());
        }
        let (sign, body) = match t.strip_prefix('+') {
            Some(b) => ('+', b),
            None => match t.strip_prefix('-') {
                Some(b) => ('-', b),
                None => (' ', t),
            },
        };
        let a = sgdisk_amount(s, body)?;
        let kind = if a == Amount::Bytes(0) || a == Amount::Sectors(0) {
            // sgdisk: a value of 0 means the default, whatever its sign.
            GptPosKind::Default
        } else {
            match sign {
                '+' => GptPosKind::Plus(a),
                '-' => GptPosKind::Minus(a),
                _ => GptPosKind::Absolute(a),
            }
        };
        Ok(GptPos {
            text: t.to_string(),
            kind,
        })
    }

    /// Written in sectors, as disko tells: the text ends in `s` (gpt.nix `alignment`), so disko
    /// sets sgdisk's alignment to 1 sector for the partition. `0s` counts too, though sgdisk
    /// reads it as the default.
    pub fn in_sectors(&self) -> bool {
        self.text.ends_with('s')
    }
}

/// A gpt partition `size` in disko's grammar (lib/types/gpt.nix: `[0-9]+[KMGTP]?` or `100%`):
/// the end `+SIZE`. Returns the end position; `100%` is the default end (`-0`).
pub fn gpt_size(s: &str) -> Result<GptPos, String> {
    let t = s.trim();
    if t == "100%" {
        return GptPos::parse("-0");
    }
    if t.ends_with('%') {
        return Err(format!(
            "{s:?}: a gpt size is a number with a unit (K, M, G, T, P) or 100%"
        ));
    }
    if !t.is_empty() && t != "0" && t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{s:?}: a bare number is a count of sectors to sgdisk, so its size would depend on the disk; give a unit (K, M, G, T, P), or give start/end with an s suffix for sectors"
        ));
    }
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if t.ends_with(['s', 'S', 'e', 'E']) || t.starts_with(['+', '-']) || t.len() > digits.len() + 1
    {
        return Err(format!(
            "{s:?}: disko's gpt size is [0-9]+[KMGTP] or 100% (give start/end for sectors)"
        ));
    }
    let plus = format!("+{t}");
    GptPos::parse(&plus)
        .map(|p| GptPos {
            text: p.text[1..].to_string(),
            ..p
        })
        // Name the value as the layout wrote it, not as handed to sgdisk.
        .map_err(|e| e.replacen(&format!("{plus:?}"), &format!("{s:?}"), 1))
}

impl fmt::Display for GptPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// parted's units (parted(8), libparted `ped_unit_parse_custom`): `s`, `B`, SI `kB MB GB TB`
/// (also `K M G T`), IEC `KiB MiB GiB TiB`, `%` of the disk; no unit is MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartedUnit {
    Sector,
    Byte,
    /// Bytes per unit: 10^3, 10^6, 10^9, 10^12.
    Si(u64),
    /// Bytes per unit: 2^10 … 2^40.
    Iec(u64),
    Percent,
}

/// A `table` partition boundary in parted's grammar: a decimal number (`1.5`, not below 1
/// unless 0), a unit, and a leading `-` to count back from the end of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartedPos {
    pub text: String,
    pub negative: bool,
    /// The number as `mantissa / 10^scale`.
    pub mantissa: u128,
    pub scale: u32,
    pub unit: PartedUnit,
}

impl serde::Serialize for PartedPos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl fmt::Display for PartedPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartedPos {
    pub fn parse(s: &str) -> Result<PartedPos, String> {
        let t = s.trim();
        // libparted `is_chs`: a position with exactly two punctuation marks is read as
        // cylinder,head,sector, so `12.5%` and `-1.5GB` fail under parted.
        if t.chars().filter(|c| c.is_ascii_punctuation()).count() == 2 {
            return Err(format!(
                "{s:?}: parted reads a position with two punctuation marks as cylinder,head,sector and refuses it; write it without the fraction or in a smaller unit"
            ));
        }
        let (negative, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t),
        };
        let split = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, unit) = body.split_at(split);
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(format!(
                "{s:?}: expected a number with a unit like 1MiB, 500M, 2048s or 100%"
            ));
        }
        let frac = &frac[..frac.len().min(9)];
        let digits = format!("{int}{frac}");
        let mantissa: u128 = digits.parse().map_err(|_| format!("{s:?}: not a number"))?;
        if mantissa > u64::MAX as u128 * 1_000_000_000 {
            return Err(format!("{s:?}: too large"));
        }
        let scale = frac.len() as u32;
        let unit = match unit.to_ascii_lowercase().as_str() {
            "" | "m" | "mb" => PartedUnit::Si(1_000_000),
            "s" => PartedUnit::Sector,
            "b" => PartedUnit::Byte,
            "k" | "kb" => PartedUnit::Si(1_000),
            "g" | "gb" => PartedUnit::Si(1_000_000_000),
            "t" | "tb" => PartedUnit::Si(1_000_000_000_000),
            "kib" => PartedUnit::Iec(KIB),
            "mib" => PartedUnit::Iec(MIB),
            "gib" => PartedUnit::Iec(GIB),
            "tib" => PartedUnit::Iec(TIB),
            "%" => PartedUnit::Percent,
            _ => {
                return Err(format!(
                    "{s:?}: unknown unit {unit:?} (parted's: s, B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %)"
                ))
            }
        };
        let ten = 10u128.pow(scale);
        if !negative && mantissa != 0 && mantissa < ten {
            return Err(format!(
                "{s:?}: parted refuses a value below 1; use a smaller unit"
            ));
        }
        if unit == PartedUnit::Percent && mantissa > 100 * ten {
            return Err(format!("{s:?}: a percentage is at most 100%"));
        }
        if matches!(unit, PartedUnit::Sector | PartedUnit::Byte) && scale > 0 {
            return Err(format!("{s:?}: sectors and bytes are whole numbers"));
        }
        Ok(PartedPos {
            text: t.to_string(),
            negative,
            mantissa,
            scale,
            unit,
        })
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
        use Amount::*;
        use GptPosKind::*;
        let ok: &[(&str, GptPosKind)] = &[
            ("0", Default),
            ("-0", Default),
            ("+0", Default),
            ("0M", Default),
            ("1M", Absolute(Bytes(MIB))),
            ("+500M", Plus(Bytes(500 * MIB))),
            ("-10M", Minus(Bytes(10 * MIB))),
            ("100g", Absolute(Bytes(100 * GIB))),
            ("2048s", Absolute(Sectors(2048))),
            ("+34s", Plus(Sectors(34))),
            ("1E", Absolute(Bytes(1 << 60))),
            ("1MiB", Absolute(Bytes(MIB))),
        ];
        for (s, want) in ok {
            assert_eq!(GptPos::parse(s).map(|p| p.kind), Ok(*want), "{s}");
        }
        for bad in [
            "", "abc", "+", "1X", "1.5G", "+1.5G", "2048", "-100", "1MB", "1%", "1sib",
        ] {
            assert!(GptPos::parse(bad).is_err(), "{bad}");
        }
        assert!(GptPos::parse("1.5G").unwrap_err().contains("1536M"));
        assert!(GptPos::parse("4096").unwrap_err().contains("4096s"));
    }

    #[test]
    fn gpt_sizes_are_disko_grammar() {
        assert_eq!(
            gpt_size("500M").unwrap().kind,
            GptPosKind::Plus(Amount::Bytes(500 * MIB))
        );
        assert_eq!(gpt_size("100%").unwrap().kind, GptPosKind::Default);
        assert_eq!(gpt_size("0").unwrap().kind, GptPosKind::Default);
        for bad in ["1.5G", "50%", "2048s", "+1M", "-1M", "512", "1MB"] {
            assert!(gpt_size(bad).is_err(), "{bad}");
        }
        let e = gpt_size("1.5G").unwrap_err();
        assert!(e.starts_with("\"1.5G\": ") && e.contains("1536M"), "{e}");
    }

    #[test]
    fn parted_positions() {
        let p = PartedPos::parse("1.5GiB").unwrap();
        assert_eq!((p.mantissa, p.scale, p.unit), (15, 1, PartedUnit::Iec(GIB)));
        let p = PartedPos::parse("500").unwrap();
        assert_eq!(p.unit, PartedUnit::Si(1_000_000));
        let p = PartedPos::parse("-1MiB").unwrap();
        assert!(p.negative);
        assert_eq!(PartedPos::parse("100%").unwrap().unit, PartedUnit::Percent);
        assert_eq!(PartedPos::parse("2048s").unwrap().unit, PartedUnit::Sector);
        for bad in ["", "abc", "0.5M", "101%", "1.5s", "1X", "1c", "1..2M"] {
            assert!(PartedPos::parse(bad).is_err(), "{bad}");
        }
        // parted 3.5 refuses these as cylinder,head,sector; with three marks it reads them.
        for chs in ["12.5%", "-10%", "-1.5GB", "-0.5GB"] {
            let e = PartedPos::parse(chs).unwrap_err();
            assert!(e.contains("cylinder,head,sector"), "{chs}: {e}");
        }
        assert!(PartedPos::parse("-12.5%").unwrap().negative);
        assert_eq!(PartedPos::parse("1.5GB").unwrap().scale, 1);
    }
}
