//! Exact partition geometry: every boundary of a layout's partition table resolved to logical
//! sectors of one disk while planning, so the tools are handed only numbers computed here, every
//! partition is known to fit before anything is wiped, and the table written can be read back
//! and compared.
//!
//! Two grammars, as disko uses them:
//! - `gpt` partitions (disko runs `sgdisk --align-end --new=N:START:END`): sgdisk's rules
//!   (gptfdisk `IeeeToInt`, `FindFirstInLargest`, `Align`, `FindLastInFree`). One deliberate
//!   difference: an end `+SIZE` counts from the start *after* it was aligned, so a partition is
//!   exactly SIZE (sgdisk counts from the unaligned start and the partition shrinks).
//! - `table` partitions (disko runs `parted mkpart START END`): parted's rules (libparted
//!   `ped_unit_parse_custom`: SI units with a fuzz of half a unit, exact IEC units, an IEC end
//!   is exclusive; `mkpart` with optimal alignment picks the aligned sector nearest the asked one
//!   within the fuzz).
//!
//! Sectors here are logical sectors of the disk (`queue/logical_block_size`); ranges are
//! inclusive, as in partition tables.

use serde::Serialize;

use super::state::BlockDevice;
use crate::layout::size::{human, Amount, GptPos, GptPosKind, PartedPos, PartedUnit, MIB};

/// The geometry of one disk, from sysfs `queue/` (or a `--state` snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskGeometry {
    /// Bytes.
    pub size: u64,
    /// Logical sector size in bytes (512 or 4096).
    pub logical: u64,
    /// Physical block size in bytes.
    pub physical: u64,
    /// Optimal I/O size in bytes; 0 when the device reports none.
    pub optimal_io: u64,
}

/// Largest optimal I/O size trusted for alignment; devices report odd values (a RAID
/// controller's full stripe, 32 MiB–4 GiB from some USB bridges).
const MAX_OPTIMAL_IO: u64 = 16 * MIB;

impl DiskGeometry {
    pub fn of(dev: &BlockDevice) -> DiskGeometry {
        let logical = u64::from(dev.logical_sector_size).max(512);
        DiskGeometry {
            size: dev.size,
            logical,
            physical: u64::from(dev.physical_sector_size).max(logical),
            optimal_io: u64::from(dev.optimal_io_size),
        }
    }

    /// Whole logical sectors on the disk.
    pub fn sectors(&self) -> u64 {
        self.size / self.logical
    }

    /// The alignment grain in logical sectors: 1 MiB (sgdisk's and parted's default), or the
    /// optimal I/O size when it is a power-of-two multiple of the physical block size above
    /// 1 MiB and at most 16 MiB (anything else is distrusted).
    pub fn grain(&self) -> u64 {
        let mut g = MIB;
        let o = self.optimal_io;
        if o > MIB && o <= MAX_OPTIMAL_IO && o.is_power_of_two() && o % self.physical == 0 {
            g = o;
        }
        (g / self.logical).max(1)
    }

    /// First and last sector a GPT partition may use: after the protective MBR, the header and
    /// 16 KiB of entries; before the backup entries and header (UEFI 2.10 §5.3).
    pub fn gpt_usable(&self) -> (u64, u64) {
        let entries = 16384u64.div_ceil(self.logical);
        (2 + entries, self.sectors().saturating_sub(2 + entries))
    }
}

/// Where one partition lies, in logical sectors (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    pub first: u64,
    pub last: u64,
}

impl Extent {
    pub fn sectors(&self) -> u64 {
        self.last - self.first + 1
    }

    /// "at 1 MiB, 512 MiB (sectors 2048–1050623)".
    pub fn describe(&self, ss: u64) -> String {
        format!(
            "at {}, {} (sectors {}–{})",
            human(self.first * ss),
            human(self.sectors() * ss),
            self.first,
            self.last
        )
    }
}

/// Why a table does not fit: which partition (index in creation order) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometryError {
    pub index: usize,
    pub reason: String,
}

fn fail<T>(index: usize, reason: impl Into<String>) -> Result<T, GeometryError> {
    Err(GeometryError {
        index,
        reason: reason.into(),
    })
}

/// The free blocks of `[lo, hi]` around `used`, in order.
fn free_blocks(lo: u64, hi: u64, used: &[Extent]) -> Vec<Extent> {
    let mut u: Vec<Extent> = used.to_vec();
    u.sort_by_key(|e| e.first);
    let mut out = Vec::new();
    let mut next = lo;
    for e in u {
        if e.first > next && next <= hi {
            out.push(Extent {
                first: next,
                last: (e.first - 1).min(hi),
            });
        }
        next = next.max(e.last.saturating_add(1));
    }
    if next <= hi {
        out.push(Extent {
            first: next,
            last: hi,
        });
    }
    out
}

fn is_free(s: u64, lo: u64, hi: u64, used: &[Extent]) -> bool {
    s >= lo && s <= hi && !used.iter().any(|e| s >= e.first && s <= e.last)
}

fn overlap(ext: Extent, used: &[Extent]) -> Option<usize> {
    used.iter()
        .position(|e| ext.first <= e.last && e.first <= ext.last)
}

fn amount(index: usize, a: Amount, ss: u64, what: &str, text: &str) -> Result<u64, GeometryError> {
    a.sectors(ss).map_or_else(
        || {
            fail(
                index,
                format!("{what} {text:?} is not a whole number of {ss}-byte sectors on this disk"),
            )
        },
        Ok,
    )
}

/// Resolve a gpt's partitions, `(start, end)` in creation (priority) order, to extents on
/// `geo`, as `sgdisk --align-end` would place them (see the module doc for the one difference).
/// Errors name the partition by its index and say why it does not fit.
pub fn gpt_extents(
    geo: &DiskGeometry,
    parts: &[(&GptPos, &GptPos)],
) -> Result<Vec<Extent>, GeometryError> {
    let ss = geo.logical;
    let (lo, hi) = geo.gpt_usable();
    let mut used: Vec<Extent> = Vec::new();
    for (i, (start, end)) in parts.iter().enumerate() {
        // disko sets sgdisk's alignment to 1 sector when a boundary is given in sectors.
        let a = if start.in_sectors() || end.in_sectors() {
            1
        } else {
            geo.grain()
        };
        let blocks = free_blocks(lo, hi, &used);
        let Some(largest) =
            blocks
                .iter()
                .copied()
                .reduce(|x, y| if y.sectors() > x.sectors() { y } else { x })
        else {
            return fail(i, "no free space is left on the disk for it");
        };
        let low = align(largest.first, a, lo, hi, &used);
        let last_in = |s: u64| -> u64 {
            let b = blocks
                .iter()
                .find(|b| s >= b.first && s <= b.last)
                .map_or(s, |b| b.last);
            // --align-end: the block's end rounded down so the next sector is aligned.
            let aligned = ((b + 1) / a) * a;
            if aligned > s {
                aligned - 1
            } else {
                b
            }
        };
        let high = last_in(low);
        let st = match start.kind {
            GptPosKind::Default => low,
            GptPosKind::Absolute(x) => amount(i, x, ss, "start", &start.text)?,
            GptPosKind::Plus(x) => low + amount(i, x, ss, "start", &start.text)?,
            GptPosKind::Minus(x) => {
                let n = amount(i, x, ss, "start", &start.text)?;
                if n > high {
                    return fail(
                        i,
                        format!("start {:?} lies before the disk's start", start.text),
                    );
                }
                high - n
            }
        };
        if !is_free(st, lo, hi, &used) {
            return fail(
                i,
                match used.iter().position(|e| st >= e.first && st <= e.last) {
                    Some(j) => format!(
                        "start {:?} (sector {st}) lies inside partition {}",
                        start.text,
                        j + 1
                    ),
                    None => format!(
                        "start {:?} (sector {st}) is outside the usable area (sectors {lo}–{hi} of a {} disk with {ss}-byte sectors)",
                        start.text,
                        human(geo.size)
                    ),
                },
            );
        }
        let st = align(st, a, lo, hi, &used);
        let high = last_in(st);
        let en = match end.kind {
            GptPosKind::Default => high,
            GptPosKind::Absolute(x) => amount(i, x, ss, "end", &end.text)?,
            GptPosKind::Plus(x) => {
                let n = amount(i, x, ss, "size", &end.text)?;
                st.checked_add(n).map_or(u64::MAX, |e| e - 1)
            }
            GptPosKind::Minus(x) => {
                let n = amount(i, x, ss, "end", &end.text)?;
                high.saturating_sub(n)
            }
        };
        if en < st {
            return fail(
                i,
                format!(
                    "end {:?} (sector {en}) is before its start (sector {st})",
                    end.text
                ),
            );
        }
        let ext = Extent {
            first: st,
            last: en,
        };
        if en > hi {
            return fail(
                i,
                format!(
                    "it does not fit: it would need sectors {st}–{en}, and the last usable sector of a {} disk with {ss}-byte sectors is {hi} (the backup GPT takes the sectors after it)",
                    human(geo.size),
                ),
            );
        }
        if let Some(j) = overlap(ext, &used) {
            return fail(
                i,
                format!(
                    "it would overlap partition {} ({})",
                    j + 1,
                    used[j].describe(ss)
                ),
            );
        }
        used.push(ext);
    }
    Ok(used)
}

/// gptfdisk's `Align`: the earlier aligned sector if every sector up to `s` is free, else the
/// later one if free, else `s` as it is.
fn align(s: u64, a: u64, lo: u64, hi: u64, used: &[Extent]) -> u64 {
    if a <= 1 || s % a == 0 {
        return s;
    }
    let earlier = s / a * a;
    if earlier >= lo && (earlier..s).all(|x| is_free(x, lo, hi, used)) {
        return earlier;
    }
    let later = earlier + a;
    if later + a <= hi && (s..=later).all(|x| is_free(x, lo, hi, used)) {
        return later;
    }
    s
}

/// A partition table format for `table` layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Msdos,
    Gpt,
}

/// The largest sector number and count an msdos entry holds (32 bits).
const MSDOS_MAX: u64 = u32::MAX as u64;

/// One parted position resolved: the sector asked for and the fuzz around it (parted's
/// "range").
fn parted_sector(geo: &DiskGeometry, p: &PartedPos) -> Result<(u64, u64, u64), String> {
    let ss = geo.logical as u128;
    let len = geo.sectors();
    let unit: u128 = match p.unit {
        PartedUnit::Sector => ss,
        PartedUnit::Byte => 1,
        PartedUnit::Si(u) | PartedUnit::Iec(u) => u as u128,
        PartedUnit::Percent => len as u128 * ss / 100,
    };
    let radius = if unit.is_power_of_two() {
        0
    } else {
        (unit.div_ceil(ss) / 2).saturating_sub(1) as u64
    };
    let outside = || format!("{:?} is outside the disk", p.text);
    let x = p.mantissa.checked_mul(unit).ok_or_else(outside)? / (10u128.pow(p.scale) * ss);
    let x = u64::try_from(x).map_err(|_| outside())?;
    let sector = if p.negative {
        len.checked_sub(x)
            .ok_or_else(|| format!("{:?} counts back past the disk's start", p.text))?
    } else {
        x
    };
    let last = len.saturating_sub(1);
    if sector > last + radius {
        return Err(format!(
            "{:?} (sector {sector}) is outside the disk ({} sectors of {ss} bytes)",
            p.text, len
        ));
    }
    let lo = sector.saturating_sub(radius);
    let hi = (sector + radius).min(last);
    Ok((sector.min(last), lo, hi))
}

/// The sector nearest `want` in `[lo, hi]` that is aligned to `grain` (for an end: the sector
/// before an aligned one, `(x + 1) % grain == 0`).
fn nearest_aligned(want: u64, lo: u64, hi: u64, grain: u64, end: bool) -> Option<u64> {
    if lo > hi {
        return None;
    }
    let shift = u64::from(end);
    let w = want.clamp(lo, hi) + shift;
    let down = w / grain * grain;
    [down.checked_sub(shift), (down + grain).checked_sub(shift)]
        .into_iter()
        .flatten()
        .filter(|c| *c >= lo && *c <= hi)
        .min_by_key(|c| c.abs_diff(want))
}

/// parted's choice for one partition: within the fuzz of the start and of the end and inside
/// one free block, the placement nearest what was asked with both ends aligned; failing that,
/// the nearest placement at all (parted then warns "not properly aligned").
fn parted_solve(
    free: &[Extent],
    (s, s_lo, s_hi): (u64, u64, u64),
    (e, e_lo, e_hi): (u64, u64, u64),
    grain: u64,
) -> Option<Extent> {
    for g in [grain, 1] {
        let mut best: Option<(u64, Extent)> = None;
        for b in free {
            let Some(first) = nearest_aligned(s, s_lo.max(b.first), s_hi.min(b.last), g, false)
            else {
                continue;
            };
            let Some(last) = nearest_aligned(e, e_lo.max(first), e_hi.min(b.last), g, true) else {
                continue;
            };
            let cost = first.abs_diff(s) + last.abs_diff(e);
            if best.map_or(true, |(c, _)| cost < c) {
                best = Some((cost, Extent { first, last }));
            }
        }
        if let Some((_, x)) = best {
            return Some(x);
        }
    }
    None
}

/// Resolve a `table`'s partitions, `(start, end)` in order, to extents on `geo` as
/// `parted -s DEV -- mkpart … START END` would place them (optimal alignment). An end in IEC
/// units (`129MiB`) is exclusive, as parted treats it. Errors name the partition's index.
pub fn table_extents(
    geo: &DiskGeometry,
    format: TableFormat,
    parts: &[(&PartedPos, &PartedPos)],
) -> Result<Vec<Extent>, GeometryError> {
    let ss = geo.logical;
    let (lo, hi) = match format {
        TableFormat::Gpt => geo.gpt_usable(),
        TableFormat::Msdos => (1, geo.sectors().saturating_sub(1)),
    };
    let grain = geo.grain();
    let mut used: Vec<Extent> = Vec::new();
    for (i, (start, end)) in parts.iter().enumerate() {
        let st = parted_sector(geo, start).or_else(|e| fail(i, format!("start {e}")))?;
        let mut en = parted_sector(geo, end).or_else(|e| fail(i, format!("end {e}")))?;
        if matches!(end.unit, PartedUnit::Iec(_)) && en.0 > 0 {
            let e = en.0 - 1;
            en = (e, e, e);
        }
        let free = free_blocks(lo, hi, &used);
        let Some(ext) = parted_solve(&free, st, en, grain) else {
            let asked = Extent {
                first: st.1,
                last: en.2.max(st.1),
            };
            return fail(
                i,
                match overlap(asked, &used) {
                    Some(j) if en.0 >= st.0 => format!(
                        "from {:?} to {:?} (sectors {}–{}) it would overlap partition {} ({})",
                        start.text,
                        end.text,
                        st.0,
                        en.0,
                        j + 1,
                        used[j].describe(ss)
                    ),
                    _ if en.0 < st.0 => format!(
                        "end {:?} (sector {}) is not after its start {:?} (sector {}) on a {} disk",
                        end.text,
                        en.0,
                        start.text,
                        st.0,
                        human(geo.size)
                    ),
                    _ => format!(
                        "from {:?} to {:?} (sectors {}–{}) does not fit the usable area (sectors {lo}–{hi} of a {} disk with {ss}-byte sectors)",
                        start.text,
                        end.text,
                        st.0,
                        en.0,
                        human(geo.size)
                    ),
                },
            );
        };
        if format == TableFormat::Msdos && (ext.first > MSDOS_MAX || ext.sectors() > MSDOS_MAX) {
            return fail(
                i,
                format!(
                    "an msdos table addresses at most 2^32 sectors ({} with {ss}-byte sectors); use gpt",
                    human(MSDOS_MAX * ss)
                ),
            );
        }
        used.push(ext);
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::size::GIB;

    fn geo(size: u64, ss: u64) -> DiskGeometry {
        DiskGeometry {
            size,
            logical: ss,
            physical: ss,
            optimal_io: 0,
        }
    }

    fn gpt(g: &DiskGeometry, parts: &[(&str, &str)]) -> Result<Vec<(u64, u64)>, GeometryError> {
        let parsed: Vec<(GptPos, GptPos)> = parts
            .iter()
            .map(|(s, e)| (GptPos::parse(s).unwrap(), GptPos::parse(e).unwrap()))
            .collect();
        let refs: Vec<(&GptPos, &GptPos)> = parsed.iter().map(|(a, b)| (a, b)).collect();
        gpt_extents(g, &refs).map(|v| {
            v.iter()
                .map(|e| (e.first * g.logical, e.sectors() * g.logical))
                .collect()
        })
    }

    fn table(
        g: &DiskGeometry,
        f: TableFormat,
        parts: &[(&str, &str)],
    ) -> Result<Vec<(u64, u64)>, GeometryError> {
        let parsed: Vec<(PartedPos, PartedPos)> = parts
            .iter()
            .map(|(s, e)| (PartedPos::parse(s).unwrap(), PartedPos::parse(e).unwrap()))
            .collect();
        let refs: Vec<(&PartedPos, &PartedPos)> = parsed.iter().map(|(a, b)| (a, b)).collect();
        table_extents(g, f, &refs).map(|v| {
            v.iter()
                .map(|e| (e.first * g.logical, e.sectors() * g.logical))
                .collect()
        })
    }

    #[test]
    fn gpt_sizes_in_bytes_on_512_and_4096_byte_sectors() {
        for ss in [512, 4096] {
            let g = geo(GIB, ss);
            let got = gpt(&g, &[("0", "+512M"), ("0", "+100M"), ("0", "-0")]).unwrap();
            assert_eq!(got[0], (MIB, 512 * MIB), "ss {ss}");
            assert_eq!(got[1], (513 * MIB, 100 * MIB), "ss {ss}");
            // The rest, its end aligned down (--align-end): 1 GiB disk, backup GPT at the end.
            assert_eq!(got[2], (613 * MIB, GIB - 613 * MIB - MIB), "ss {ss}");
        }
    }

    #[test]
    fn gpt_matches_sgdisk_on_the_cases_measured() {
        // sgdisk 1.0.9 --align-end on a 1 GiB image, 512-byte sectors:
        // -n 1:1M:128M -n 2:0:+100K -n 3:0:-10M → 2048–262144, 264192–264391, 266240–2074623.
        let g = geo(GIB, 512);
        let e = gpt(&g, &[("1M", "128M"), ("0", "+100K"), ("0", "-10M")]).unwrap();
        let sectors: Vec<(u64, u64)> = e
            .iter()
            .map(|(s, n)| (s / 512, (s + n) / 512 - 1))
            .collect();
        assert_eq!(
            sectors,
            [(2048, 262144), (264192, 264391), (266240, 2074623)]
        );
        // -n 3:-100M:0 then -n 4:0:0 after two small ones: the start backs off from the
        // aligned end and is aligned down; the last fills the largest block between.
        let e = gpt(
            &g,
            &[("0", "+1M"), ("+3M", "+1M"), ("-100M", "0"), ("0", "0")],
        )
        .unwrap();
        let sectors: Vec<(u64, u64)> = e
            .iter()
            .map(|(s, n)| (s / 512, (s + n) / 512 - 1))
            .collect();
        assert_eq!(
            sectors,
            [
                (2048, 4095),
                (10240, 12287),
                (1888256, 2095103),
                (12288, 1888255)
            ]
        );
        // 4096-byte sectors (losetup -b 4096): -n 1:0:+1M -n 2:0:128M -n 3:0:-0 → 256–511,
        // 512–32768, 33024–261887.
        let g = geo(GIB, 4096);
        let e = gpt(&g, &[("0", "+1M"), ("0", "128M"), ("0", "-0")]).unwrap();
        let sectors: Vec<(u64, u64)> = e
            .iter()
            .map(|(s, n)| (s / 4096, (s + n) / 4096 - 1))
            .collect();
        assert_eq!(sectors, [(256, 511), (512, 32768), (33024, 261887)]);
    }

    #[test]
    fn gpt_sector_units_are_not_aligned() {
        let g = geo(GIB, 512);
        let e = gpt(&g, &[("34s", "+1000s"), ("0", "+1M")]).unwrap();
        assert_eq!(e[0], (34 * 512, 1000 * 512));
        assert_eq!(e[1], (MIB, MIB));
    }

    #[test]
    fn gpt_refusals_say_why() {
        let g = geo(GIB, 512);
        let err = gpt(&g, &[("0", "+2G")]).unwrap_err();
        assert!(err.reason.contains("does not fit"), "{}", err.reason);
        let err = gpt(&g, &[("0", "+512M"), ("1M", "+1M")]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.reason.contains("inside partition 1"), "{}", err.reason);
        // The rest of the disk taken: only slivers before and after it are left.
        let err = gpt(&g, &[("0", "-0"), ("0", "+1M")]).unwrap_err();
        assert!(err.reason.contains("does not fit"), "{}", err.reason);
        let g4 = geo(GIB, 4096);
        let err = gpt(&g4, &[("0", "+1K")]).unwrap_err();
        assert!(err.reason.contains("4096-byte sectors"), "{}", err.reason);
        let err = gpt(&g, &[("0", "+1M"), ("10M", "5M")]).unwrap_err();
        assert!(err.reason.contains("before its start"), "{}", err.reason);
    }

    #[test]
    fn table_matches_parted_on_512_and_4096_byte_sectors() {
        // parted 3.5, msdos, 1 GiB: mkpart primary 1M 129M; mkpart primary 129M 100%
        // → 512-byte: 2048–251903, 251904–2097151; 4096-byte: 256–31487, 31488–262143.
        for ss in [512u64, 4096] {
            let g = geo(GIB, ss);
            let e = table(&g, TableFormat::Msdos, &[("1M", "129M"), ("129M", "100%")]).unwrap();
            assert_eq!(e[0], (MIB, 122 * MIB), "ss {ss}");
            assert_eq!(
                e[1],
                (123 * MIB, GIB - 123 * MIB),
                "ss {ss}: 100% is the disk's end"
            );
            // IEC units are exact; an IEC end is exclusive; -1MiB counts from the end.
            let e = table(
                &g,
                TableFormat::Msdos,
                &[("1MiB", "129MiB"), ("129MiB", "-1MiB")],
            )
            .unwrap();
            assert_eq!(e[0], (MIB, 128 * MIB));
            assert_eq!(e[1], (129 * MIB, GIB - 130 * MIB));
        }
    }

    #[test]
    fn table_starts_at_zero_become_the_first_aligned_sector() {
        for ss in [512u64, 4096] {
            let g = geo(GIB, ss);
            // parted 3.5 on a 1 GiB image: `0%` reaches the first aligned sector within its fuzz;
            // `0` and `0M` (±half a MB) do not, so parted places the partition unaligned from
            // sector 1 to the exact end; `0s` and `0MiB` are exact and refused.
            let e = table(&g, TableFormat::Msdos, &[("0%", "100M")]).unwrap();
            assert_eq!(e[0].0, MIB, "ss {ss}");
            for z in ["0", "0M"] {
                let e = table(&g, TableFormat::Msdos, &[(z, "100M")]).unwrap();
                assert_eq!(e[0], (ss, 100_000_000 / ss * ss), "{z} ss {ss}");
            }
            for z in ["0s", "0MiB"] {
                assert!(
                    table(&g, TableFormat::Msdos, &[(z, "100M")]).is_err(),
                    "{z}"
                );
            }
            let e = table(&g, TableFormat::Gpt, &[("0%", "100%")]).unwrap();
            assert_eq!(
                e[0],
                (MIB, GIB - 2 * MIB),
                "gpt 100%: aligned before the backup GPT"
            );
            let e = table(&g, TableFormat::Gpt, &[("0", "100%")]).unwrap();
            let (_, last) = g.gpt_usable();
            assert_eq!(
                e[0].0 + e[0].1,
                (last + 1) * ss,
                "unaligned: up to the last usable"
            );
        }
    }

    #[test]
    fn table_refusals() {
        let g = geo(GIB, 512);
        let err = table(
            &g,
            TableFormat::Msdos,
            &[("1MiB", "200MiB"), ("100MiB", "300MiB")],
        )
        .unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.reason.contains("overlap partition 1"), "{}", err.reason);
        let err = table(&g, TableFormat::Msdos, &[("1MiB", "2GiB")]).unwrap_err();
        assert!(err.reason.contains("outside"), "{}", err.reason);
        let err = table(&g, TableFormat::Msdos, &[("500MiB", "100MiB")]).unwrap_err();
        assert!(err.reason.contains("not after its start"), "{}", err.reason);
        let big = geo(3 * 1024 * GIB, 512);
        let err = table(&big, TableFormat::Msdos, &[("1MiB", "100%")]).unwrap_err();
        assert!(err.reason.contains("2^32"), "{}", err.reason);
        let big4k = geo(3 * 1024 * GIB, 4096);
        assert!(table(&big4k, TableFormat::Msdos, &[("1MiB", "100%")]).is_ok());
    }

    #[test]
    fn odd_optimal_io_sizes_are_distrusted() {
        let mut g = geo(GIB, 512);
        assert_eq!(g.grain(), 2048);
        g.optimal_io = 4 * MIB;
        assert_eq!(g.grain(), 8192);
        for odd in [33_553_920, 3 * MIB, 64 * MIB, 4096] {
            g.optimal_io = odd;
            assert_eq!(g.grain(), 2048, "{odd}");
        }
    }
}
