//! parted's placement of `table` partitions, as disko calls it: `parted -s DEV -- mkpart …
//! START END`, one call per partition (parted.c `do_mkpart`, libparted `ped_unit_parse_custom`,
//! `snap_to_boundaries`, `ped_constraint_solve_nearest`): `s`, `B`, SI units and `%` carry a
//! range of half a unit either side, IEC units none; an IEC end moves back a sector; start and
//! end snap to the edges of the partition, metadata or free space they fall in when those are
//! within range; then the placement nearest that with both ends aligned within the ranges, else
//! the nearest at all, which must lie within them.

use super::{fail, overlap, DiskGeometry, Extent, GeometryError, TableFormat};
use crate::layout::size::{human, PartedPos, PartedUnit};

/// The largest sector number and count an msdos entry holds (32 bits).
const MSDOS_MAX: u64 = u32::MAX as u64;

/// A range of sectors, inclusive, in parted's signed arithmetic.
type Range = (i64, i64);

fn intersect(a: Range, b: Range) -> Option<Range> {
    let r = (a.0.max(b.0), a.1.min(b.1));
    (r.0 <= r.1).then_some(r)
}

fn inside(r: Range, x: i64) -> bool {
    r.0 <= x && x <= r.1
}

/// One parted position resolved (libparted `ped_unit_parse_custom`): the sector asked for,
/// clipped to the disk, and the range parted may move it within: half a unit either side for
/// `s`, `B`, SI units and `%` (of the disk), none for IEC units. parted computes the sector in
/// floating point and truncates it; a negative position counts back from the disk's end.
fn parted_locate(geo: &DiskGeometry, p: &PartedPos) -> Result<(i64, Range), String> {
    let ss = geo.logical as i64;
    let len = geo.sectors() as i64;
    let unit: i64 = match p.unit {
        PartedUnit::Sector => ss,
        PartedUnit::Byte => 1,
        PartedUnit::Si(u) | PartedUnit::Iec(u) => u as i64,
        PartedUnit::Percent => (geo.sectors() * geo.logical / 100) as i64,
    };
    let radius = match p.unit {
        PartedUnit::Iec(_) => 0,
        _ => ((unit + ss - 1) / ss / 2 - 1).max(0),
    };
    let num = p.mantissa as f64 / 10f64.powi(p.scale as i32);
    let num = if p.negative { -num } else { num };
    let mut sector = (num * unit as f64 / ss as f64) as i64;
    if p.negative {
        sector = sector.saturating_add(len);
    }
    let clip = |s: i64| s.clamp(0, (len - 1).max(0));
    let range = (
        clip(sector.saturating_sub(radius)),
        clip(sector.saturating_add(radius)),
    );
    if sector.saturating_sub(range.1) > radius || range.0.saturating_sub(sector) > radius {
        return Err(format!(
            "{:?} (sector {sector}) is outside the disk ({len} sectors of {ss} bytes)",
            p.text
        ));
    }
    Ok((clip(sector), range))
}

/// parted moves an end given in IEC units one sector back, so that the next partition can
/// start there (parted.c `_adjust_end_if_iec`) — as parted recognises them: `[kMGTPEZY]iB`,
/// the `iB` in any case (so not `KiB` or `mib`).
fn parted_iec_end(text: &str) -> bool {
    let t = text.trim_end();
    t.len() >= 4
        && t.get(t.len() - 3..)
            .is_some_and(|u| "kMGTPEZY".contains(&u[..1]) && u[1..].eq_ignore_ascii_case("iB"))
}

/// The partition list parted sees (libparted `disk.c`, `_disk_alloc_freespace`): the
/// partitions, the label's metadata and the free space between them, covering the disk. gpt's
/// metadata are its tables at both ends (`gpt_alloc_metadata`); msdos's the sectors before the
/// first partition, at most `1 + sector size / 512` of them (`add_startend_metadata`, with the
/// BIOS track parted assumes on Linux).
fn parted_regions(geo: &DiskGeometry, format: TableFormat, used: &[Extent]) -> Vec<Range> {
    let len = geo.sectors() as i64;
    let mut taken: Vec<Range> = used
        .iter()
        .map(|e| (e.first as i64, e.last as i64))
        .collect();
    match format {
        TableFormat::Gpt => {
            let (lo, hi) = geo.gpt_usable();
            taken.push((0, lo as i64 - 1));
            taken.push((hi as i64 + 1, len - 1));
        }
        TableFormat::Msdos => {
            let track = 1 + geo.logical as i64 / 512;
            let end = match used.iter().map(|e| e.first as i64).min() {
                Some(f) => (track - 1).min(f - 1),
                None => track - 1,
            };
            if end > 0 && end <= len {
                taken.push((0, end));
            }
        }
    }
    taken.sort();
    let mut out = Vec::new();
    let mut next = 0;
    for t in taken {
        if t.0 > next {
            out.push((next, t.0 - 1));
        }
        out.push(t);
        next = next.max(t.1 + 1);
    }
    if next < len {
        out.push((next, len - 1));
    }
    out
}

/// parted's `snap_to_boundaries`: the start moves to the first sector of the region it falls
/// in or of the next one, the end to the last sector of its region or of the one before,
/// whichever is nearer, when that is within its range (a start and an end in one region do not
/// cross it; a start and an end in adjacent regions do not both cross into the other's).
fn parted_snap(regions: &[Range], s: i64, e: i64, rs: Range, re: Range) -> (i64, i64) {
    const UP: u8 = 2;
    const DOWN: u8 = 4;
    let find = |x: i64| {
        regions
            .iter()
            .copied()
            .find(|r| inside(*r, x))
            .unwrap_or((x, x))
    };
    let (sp, ep) = (find(s), find(e));
    let adjacent = sp.1 + 1 == ep.0;
    let (mut s_allow, mut e_allow) = (UP | DOWN, UP | DOWN);
    if sp == ep {
        s_allow &= !UP;
        e_allow &= !DOWN;
    }
    // `what` is 0 for a start, -1 for an end (parted's SECT_START, SECT_END).
    let prefer = |x: i64, what: i64, range: Range, allow: &mut u8, part: Range| -> (u8, i64) {
        if *allow & (UP | DOWN) == 0 {
            return (0, 0);
        }
        let (mut up, mut down) = (-1, -1);
        if *allow & UP != 0 {
            let n = part.1 + 1 + what;
            if inside(range, n) {
                up = n - x;
            } else {
                *allow &= !UP;
            }
        }
        if *allow & DOWN != 0 {
            let n = part.0 + what;
            if inside(range, n) {
                down = x - n;
            } else {
                *allow &= !DOWN;
            }
        }
        let mv = match (*allow & UP != 0, *allow & DOWN != 0) {
            (true, true) if down < up || (down == up && what == 0) => DOWN,
            (true, _) => UP,
            (false, true) => DOWN,
            (false, false) => 0,
        };
        (
            mv,
            match mv {
                UP => up,
                DOWN => down,
                _ => 0,
            },
        )
    };
    let (mut s_want, s_dist) = prefer(s, 0, rs, &mut s_allow, sp);
    let (mut e_want, e_dist) = prefer(e, -1, re, &mut e_allow, ep);
    if adjacent && s_want == UP && e_want == DOWN {
        if e_dist < s_dist {
            s_allow &= !UP;
            s_want = prefer(s, 0, rs, &mut s_allow, sp).0;
        } else {
            e_allow &= !DOWN;
            e_want = prefer(e, -1, re, &mut e_allow, ep).0;
        }
    }
    (
        match s_want {
            DOWN => sp.0,
            UP => sp.1 + 1,
            _ => s,
        },
        match e_want {
            DOWN => ep.0 - 1,
            UP => ep.1,
            _ => e,
        },
    )
}

/// The free gap a new partition must stay in (libparted `_partition_get_overlap_constraint`):
/// after the last partition starting before `s`, up to the next one; None when it is narrower
/// than two sectors.
fn parted_gap(used: &[Extent], s: i64) -> Option<Range> {
    let mut parts: Vec<Range> = used
        .iter()
        .map(|e| (e.first as i64, e.last as i64))
        .collect();
    parts.sort();
    let mut min_start = 0;
    let mut rest = parts.iter().peekable();
    while let Some(w) = rest.next_if(|w| w.0 < s || min_start >= w.0) {
        min_start = w.1 + 1;
    }
    let max_end = rest.peek().map_or(i64::MAX - 1, |w| w.0 - 1);
    (min_start < max_end).then_some((min_start, max_end))
}

/// A libparted alignment: the sectors `offset + k * grain`.
#[derive(Clone, Copy)]
struct Alignment {
    offset: i64,
    grain: i64,
}

/// libparted natmath.c's rounding, as it is for negative numbers too.
fn abs_mod(a: i64, b: i64) -> i64 {
    if a < 0 {
        a % b + b
    } else {
        a % b
    }
}

fn round_down_to(x: i64, g: i64) -> i64 {
    x - abs_mod(x, g)
}

fn round_up_to(x: i64, g: i64) -> i64 {
    if x % g != 0 {
        round_down_to(x, g) + g
    } else {
        x
    }
}

impl Alignment {
    const ANY: Alignment = Alignment {
        offset: 0,
        grain: 1,
    };

    fn new(offset: i64, grain: i64) -> Alignment {
        Alignment {
            offset: abs_mod(offset, grain),
            grain,
        }
    }

    fn inside(&self, g: Range, mut r: i64) -> Option<i64> {
        if r < g.0 {
            r += round_up_to(g.0 - r, self.grain);
        }
        if r > g.1 {
            r -= round_up_to(r - g.1, self.grain);
        }
        inside(g, r).then_some(r)
    }

    fn up(&self, g: Range, x: i64) -> Option<i64> {
        self.inside(g, round_up_to(x - self.offset, self.grain) + self.offset)
    }

    fn down(&self, g: Range, x: i64) -> Option<i64> {
        self.inside(g, round_down_to(x - self.offset, self.grain) + self.offset)
    }

    /// The aligned sector in `g` nearest `x`; the lower one of two as near.
    fn nearest(&self, g: Range, x: i64) -> Option<i64> {
        match (self.up(g, x), self.down(g, x)) {
            (Some(u), Some(d)) => Some(if (x - u).abs() < (x - d).abs() { u } else { d }),
            (u, d) => u.or(d),
        }
    }
}

/// A libparted constraint on a partition: aligned start and end within ranges, and a size.
struct Constraint {
    start_align: Alignment,
    end_align: Alignment,
    start_range: Range,
    end_range: Range,
    min: i64,
    max: i64,
}

impl Constraint {
    /// What `mkpart` asks for: the start in `start_range`, the end in `end_range`, 1 to `max`
    /// sectors; with a `grain`, the start on a multiple of it and the end one sector before one
    /// (`--align optimal`), without one any sector.
    fn mkpart(grain: Option<i64>, start_range: Range, end_range: Range, max: i64) -> Constraint {
        let (start_align, end_align) = match grain {
            Some(g) => (Alignment::new(0, g), Alignment::new(-1, g)),
            None => (Alignment::ANY, Alignment::ANY),
        };
        Constraint {
            start_align,
            end_align,
            start_range,
            end_range,
            min: 1,
            max,
        }
    }
}

/// libparted's `ped_constraint_solve_nearest`: the start nearest `s` that leaves some end, then
/// the end nearest `e` for that start.
fn solve_nearest(c: &Constraint, len: i64, s: i64, e: i64) -> Option<Extent> {
    if c.min > c.max {
        return None;
    }
    let first_end = c.end_align.down(c.end_range, c.end_range.0)?;
    let last_end = c.end_align.up(c.end_range, c.end_range.1)?;
    if first_end > last_end || last_end < c.min {
        return None;
    }
    let min_start = (first_end - c.max + 1).max(0);
    let max_start = last_end - c.min + 1;
    let starts = intersect((min_start, max_start), c.start_range)?;
    let start = c.start_align.nearest(starts, s)?;
    if start + c.min - 1 > len - 1 {
        return None;
    }
    let ends = (
        start + c.min - 1,
        start.saturating_add(c.max - 1).min(len - 1),
    );
    let end = c.end_align.nearest(intersect(ends, c.end_range)?, e)?;
    Some(Extent {
        first: start as u64,
        last: end as u64,
    })
}

/// One `parted -s DEV -- mkpart … START END` on a disk holding `used` (parted.c `do_mkpart`):
/// the positions parsed with their ranges, an IEC end moved back a sector, both snapped to
/// nearby boundaries, then the placement nearest that with the start and the end aligned
/// (`--align optimal`, parted's default) within the ranges; failing that, the placement nearest
/// it at all, which must lie within the ranges.
fn parted_mkpart(
    geo: &DiskGeometry,
    format: TableFormat,
    used: &[Extent],
    start: &PartedPos,
    end: &PartedPos,
) -> Result<Extent, String> {
    let len = geo.sectors() as i64;
    let ss = geo.logical;
    if len < 2 {
        return Err(format!("a {}-byte disk holds no partition table", geo.size));
    }
    let (s, rs) = parted_locate(geo, start).map_err(|e| format!("start {e}"))?;
    let (mut e, mut re) = parted_locate(geo, end).map_err(|e| format!("end {e}"))?;
    if parted_iec_end(&end.text) && s != e {
        e -= 1;
        re = (re.0 - 1, re.1 - 1);
    }
    if e < s {
        return Err(format!(
            "end {:?} (sector {e}) is not after its start {:?} (sector {s}) on a {} disk",
            end.text,
            start.text,
            human(geo.size)
        ));
    }
    let area: Range = match format {
        TableFormat::Gpt => {
            let (lo, hi) = geo.gpt_usable();
            (lo as i64, hi as i64)
        }
        TableFormat::Msdos => (1, len - 1),
    };
    let refusal = |why: &str| {
        let asked = Extent {
            first: s as u64,
            last: e as u64,
        };
        match overlap(asked, used) {
            Some(j) => format!(
                "from {:?} to {:?} (sectors {s}–{e}) it would overlap partition {} ({})",
                start.text,
                end.text,
                j + 1,
                used[j].describe(ss)
            ),
            None => format!(
                "from {:?} to {:?} (sectors {s}–{e}) does not fit the usable area (sectors {}–{} of a {} disk with {ss}-byte sectors){why}",
                start.text,
                end.text,
                area.0,
                area.1,
                human(geo.size)
            ),
        }
    };
    let (s2, e2) = parted_snap(&parted_regions(geo, format, used), s, e, rs, re);
    if s2 > e2 {
        return Err(refusal(""));
    }
    let gap = parted_gap(used, s2).ok_or_else(|| refusal(""))?;
    let max = len.min(gap.1 - gap.0 + 1).min(area.1 - area.0 + 1);
    let within = |r: Range| {
        intersect(r, (0, len - 1))
            .and_then(|r| intersect(r, gap))
            .and_then(|r| intersect(r, area))
    };
    let place = |grain: Option<i64>, starts: Range, ends: Range| {
        solve_nearest(&Constraint::mkpart(grain, starts, ends, max), len, s2, e2)
    };
    let grain = geo.grain() as i64;
    if let Some(x) = within(rs)
        .zip(within(re))
        .and_then(|(starts, ends)| place(Some(grain), starts, ends))
    {
        return Ok(x);
    }
    let all = within((0, len - 1)).ok_or_else(|| refusal(""))?;
    let x = place(None, all, all).ok_or_else(|| refusal(""))?;
    if !inside(rs, x.first as i64) || !inside(re, x.last as i64) {
        return Err(refusal(&format!(
            ": the nearest place parted finds, sectors {}–{}, is not within what was asked",
            x.first, x.last
        )));
    }
    Ok(x)
}

/// Resolve a `table`'s partitions, `(start, end)` in order, to extents on `geo` as disko's
/// calls `parted -s DEV -- mkpart … START END`, one per partition, would place them (see
/// [`parted_mkpart`]). Errors name the partition's index.
pub fn table_extents(
    geo: &DiskGeometry,
    format: TableFormat,
    parts: &[(&PartedPos, &PartedPos)],
) -> Result<Vec<Extent>, GeometryError> {
    let ss = geo.logical;
    let mut used: Vec<Extent> = Vec::new();
    for (i, (start, end)) in parts.iter().enumerate() {
        let ext = parted_mkpart(geo, format, &used, start, end).or_else(|e| fail(i, e))?;
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
    use super::super::tests::{geo, place, sectors};
    use super::*;
    use crate::layout::size::{GIB, MIB};

    fn table(
        g: &DiskGeometry,
        f: TableFormat,
        parts: &[(&str, &str)],
    ) -> Result<Vec<(u64, u64)>, GeometryError> {
        place(g, parts, PartedPos::parse, |refs| table_extents(g, f, refs))
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

    fn table_sectors(
        g: &DiskGeometry,
        f: TableFormat,
        parts: &[(&str, &str)],
    ) -> Result<Vec<(u64, u64)>, GeometryError> {
        table(g, f, parts).map(|v| sectors(&v, g.logical))
    }

    #[test]
    fn table_matches_parted_calls_found_by_the_oracle() {
        // tests/geometry_loop.rs found these, parted 3.5 as disko calls it (one mkpart each).
        use TableFormat::*;
        // A start snaps to the end of the partition before it when that is within its range
        // (snap_to_boundaries), and the aligned placement is sought nearest the snapped one:
        // `58%` (sector 244695, ± 2108) starts at 244224, right after partition 1.
        let g = geo(1648 * MIB, 4096);
        assert_eq!(
            table_sectors(&g, Msdos, &[("5M", "1.0GB"), ("58%", "1275MB")]).unwrap(),
            [(1280, 244223), (244224, 311295)]
        );
        // An end snaps to the end of the free space it is in: `1.7GB` (± half a GB) ends at the
        // disk's last aligned sector.
        let g = geo(2024 * MIB + 419840, 512);
        assert_eq!(
            table_sectors(&g, Msdos, &[("0%", "1.7GB")]).unwrap(),
            [(2048, 4145151)]
        );
        // No aligned end within an exact (sector) end: parted places the partition unaligned,
        // nearest the snapped start.
        let g = geo(1161 * MIB, 512);
        assert_eq!(
            table_sectors(
                &g,
                Gpt,
                &[
                    ("1M", "128521s"),
                    ("29%", "991M"),
                    ("1941566s", "1110MiB"),
                    ("1164M", "2344442s")
                ]
            )
            .unwrap(),
            [
                (1953, 128521),
                (690176, 1935359),
                (1941566, 2273279),
                (2273280, 2344442)
            ]
        );
        let g = geo(1762 * MIB + 36864, 512);
        let four = [
            ("1MiB", "-1665MiB"),
            ("-1665MiB", "737MB"),
            ("40%", "-599MiB"),
            ("1219M", "-1s"),
        ];
        assert_eq!(
            table_sectors(&g, Msdos, &four[..3]).unwrap(),
            [(2048, 198727), (198728, 1439453), (1439454, 2381895)]
        );
        // parted: "The closest location we can manage is 1220MB to 1848MB".
        assert_eq!(table_sectors(&g, Msdos, &four).unwrap_err().index, 3);
        // parted compares the positions asked before any range: `29%` (sector 72161) before
        // `282MiB` (72192) is "the end before the start" however near.
        let g = geo(972 * MIB, 4096);
        let err = table_sectors(&g, Msdos, &[("-967MiB", "294M"), ("282MiB", "29%")]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.reason.contains("not after its start"), "{}", err.reason);
        // Only `[kMGTPEZY]iB` ends are moved back a sector: `20mib` ends at sector 40960, and
        // `20KiB` (sector 40) is before the start.
        let g = geo(256 * MIB, 512);
        assert_eq!(
            table_sectors(&g, Msdos, &[("1MiB", "20mib")]).unwrap(),
            [(2048, 40960)]
        );
        assert!(table_sectors(&g, Msdos, &[("1MiB", "20KiB")]).is_err());
        // A percent is fuzzy even when 1% of the disk is a power of two (100 MiB: 1 MiB).
        let g = geo(100 * MIB, 512);
        assert_eq!(
            table_sectors(&g, Msdos, &[("1MiB", "50%")]).unwrap(),
            [(2048, 102399)]
        );
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
        // No disk to speak of (the fuzzer's blank state): refused, not a panic.
        for size in [0, 512] {
            for f in [TableFormat::Msdos, TableFormat::Gpt] {
                assert!(table(&geo(size, 512), f, &[("0", "0")]).is_err(), "{size}");
            }
        }
    }
}
