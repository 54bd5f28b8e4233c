//! sgdisk's placement of `gpt` partitions, as disko calls it: `sgdisk --align-end
//! [--set-alignment=1] --new=N:START:END`, one call per partition, the alignment 1 when START or
//! END ends in `s` (gptfdisk `IeeeToInt`, `FindFirstInLargest`, `Align`, `FindLastInFree`, and
//! `ComputeAlignment` as each call loads the table, so that after a partition at an odd sector
//! the later ones align to less). One deliberate difference: an end `+SIZE` counts from the
//! start *after* it was aligned, so a partition is exactly SIZE (sgdisk counts from the start as
//! asked, then moves the start, and the partition grows or shrinks by the move).

use super::{fail, overlap, DiskGeometry, Extent, GeometryError};
use crate::layout::size::{human, Amount, GptPos, GptPosKind};

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

/// One boundary of `--new=N:START:END` in sectors (gptfdisk `IeeeToInt`): `0` is `default`, an
/// amount is that sector, `-N` lies N sectors before `high`; `+N` is `plus(N)`, as a start and
/// an end count it differently. `what` names the boundary in errors.
fn boundary(
    i: usize,
    pos: &GptPos,
    what: &str,
    ss: u64,
    (default, high): (u64, u64),
    plus: impl FnOnce(u64) -> Result<u64, GeometryError>,
) -> Result<u64, GeometryError> {
    match pos.kind {
        GptPosKind::Default => Ok(default),
        GptPosKind::Absolute(x) => amount(i, x, ss, what, &pos.text),
        GptPosKind::Plus(x) => plus(amount(i, x, ss, what, &pos.text)?),
        GptPosKind::Minus(x) => {
            let n = amount(i, x, ss, what, &pos.text)?;
            if n > high {
                return fail(
                    i,
                    format!("{what} {:?} lies before the disk's start", pos.text),
                );
            }
            Ok(high - n)
        }
    }
}

/// sgdisk's alignment for a partition that a later call adds (gptfdisk `ComputeAlignment`, run
/// as sgdisk loads the table, as disko's one call per partition has it do): the grain, halved
/// until it divides the first sector of every partition already there; at least 8 sectors on a
/// disk of 585937500 sectors or more (gptfdisk `MIN_AF_ALIGNMENT`, `SMALLEST_ADVANCED_FORMAT`).
fn sgdisk_alignment(geo: &DiskGeometry, used: &[Extent]) -> u64 {
    let mut a = geo.grain();
    for e in used {
        while a > 1 && e.first % a != 0 {
            a /= 2;
        }
    }
    if a < 8 && geo.sectors() >= 585_937_500 {
        a = 8;
    }
    a
}

/// gptfdisk's `FindLastInFree`: the sector before the first partition that starts after `s`
/// (or the last usable one); with `--align-end`, rounded down so that the sector after it is
/// aligned, when that stays after `s`.
fn last_in_free(s: u64, a: u64, lo: u64, hi: u64, used: &[Extent]) -> u64 {
    let mut nearest = hi;
    for e in used {
        if nearest > e.first && e.first > s {
            nearest = e.first - 1;
        }
    }
    let plus = nearest + 1;
    let aligned = align(plus, a, lo, hi, used);
    if aligned != plus && is_free(aligned - 1, lo, hi, used) && aligned > s {
        aligned - 1
    } else {
        nearest
    }
}

/// Resolve a gpt's partitions, `(start, end)` in creation (priority) order, to extents on
/// `geo`, as disko's calls `sgdisk --align-end [--set-alignment=1] --new=N:START:END`, one per
/// partition, would place them (gptfdisk `gptcl.cc` `-n`: `FindFirstInLargest`, `Align`,
/// `FindLastInFree`, `IeeeToInt`, `CreatePartition`; see the module doc for the one
/// difference). Errors name the partition by its index and say why it does not fit.
pub fn gpt_extents(
    geo: &DiskGeometry,
    parts: &[(&GptPos, &GptPos)],
) -> Result<Vec<Extent>, GeometryError> {
    let ss = geo.logical;
    let (lo, hi) = geo.gpt_usable();
    let mut used: Vec<Extent> = Vec::new();
    for (i, (start, end)) in parts.iter().enumerate() {
        // disko sets sgdisk's alignment to 1 sector when a boundary is given in sectors;
        // otherwise sgdisk computes it from the partitions already on the disk.
        let a = if start.in_sectors() || end.in_sectors() {
            1
        } else {
            sgdisk_alignment(geo, &used)
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
        // The defaults of both boundaries: the largest free block, its start aligned, its end
        // as --align-end leaves it. sgdisk resolves `-N` ends against this block too.
        let low = align(largest.first, a, lo, hi, &used);
        let high = last_in_free(low, a, lo, hi, &used);
        let st = boundary(i, start, "start", ss, (low, high), |n| {
            // IeeeToInt: in a free block smaller than the alignment, `+N` counts N-1.
            let n = if high.saturating_sub(low) < a {
                n - 1
            } else {
                n
            };
            match low.checked_add(n) {
                Some(s) => Ok(s),
                None => fail(
                    i,
                    format!("start {:?} lies past the disk's end", start.text),
                ),
            }
        })?;
        let st = align(st, a, lo, hi, &used);
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
        // `size: 512K` keeps its text without the `+` an `end: +512K` has.
        let what = if matches!(end.kind, GptPosKind::Plus(_)) && !end.text.starts_with('+') {
            "size"
        } else {
            "end"
        };
        // `+N` deliberately from the aligned start (sgdisk: from the start as asked).
        let en = boundary(i, end, what, ss, (high, high), |n| {
            Ok(st.checked_add(n).map_or(u64::MAX, |e| e - 1))
        })?;
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

/// gptfdisk's `Align`: the earlier aligned sector if every sector from it up to `s` is free,
/// else the later one if every sector after `s` up to it is free, else `s` as it is.
fn align(s: u64, a: u64, lo: u64, hi: u64, used: &[Extent]) -> u64 {
    if a <= 1 || s % a == 0 {
        return s;
    }
    let earlier = s / a * a;
    if earlier >= lo && (earlier..s).all(|x| is_free(x, lo, hi, used)) {
        return earlier;
    }
    let later = earlier + a;
    if later <= hi && (s + 1..=later).all(|x| is_free(x, lo, hi, used)) {
        return later;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::tests::{geo, place, sectors};
    use super::*;
    use crate::layout::size::{GIB, MIB};

    fn gpt(g: &DiskGeometry, parts: &[(&str, &str)]) -> Result<Vec<(u64, u64)>, GeometryError> {
        place(g, parts, GptPos::parse, |refs| gpt_extents(g, refs))
    }

    /// Found by a review: `low + n` wrapped in release builds and placed the partition at a
    /// small sector the dry run showed as fine.
    #[test]
    fn a_huge_relative_start_is_refused_not_wrapped() {
        let g = DiskGeometry {
            size: 128 << 20,
            logical: 512,
            physical: 512,
            optimal_io: 0,
        };
        let a = (GptPos::parse("32M").unwrap(), GptPos::parse("+1M").unwrap());
        let b = (
            GptPos::parse("+18446744073709491616s").unwrap(),
            GptPos::parse("+1M").unwrap(),
        );
        let e = gpt_extents(&g, &[(&a.0, &a.1), (&b.0, &b.1)]).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(
            e.reason.contains("past the disk's end") || e.reason.contains("outside"),
            "{}",
            e.reason
        );
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
        assert_eq!(
            sectors(&e, 512),
            [(2048, 262144), (264192, 264391), (266240, 2074623)]
        );
        // -n 3:-100M:0 then -n 4:0:0 after two small ones: the start backs off from the
        // aligned end and is aligned down; the last fills the largest block between.
        let e = gpt(
            &g,
            &[("0", "+1M"), ("+3M", "+1M"), ("-100M", "0"), ("0", "0")],
        )
        .unwrap();
        assert_eq!(
            sectors(&e, 512),
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
        assert_eq!(
            sectors(&e, 4096),
            [(256, 511), (512, 32768), (33024, 261887)]
        );
    }

    fn gpt_sectors(g: &DiskGeometry, parts: &[(&str, &str)]) -> Vec<(u64, u64)> {
        sectors(&gpt(g, parts).unwrap(), g.logical)
    }

    #[test]
    fn gpt_matches_sgdisk_called_once_per_partition() {
        // tests/geometry_loop.rs found these, sgdisk 1.0.9 as disko calls it (one call per
        // partition, --set-alignment=1 when start or end ends in `s`). Each call aligns to the
        // largest power of two dividing the starts already there (ComputeAlignment): after a
        // partition at sector 3828, to 4 sectors.
        let g = geo(1174 * MIB, 512);
        assert_eq!(
            gpt_sectors(&g, &[("3828s", "392M"), ("0", "+147M")]),
            [(3828, 802816), (802820, 1103875)]
        );
        let g = geo(1288 * MIB, 4096);
        assert_eq!(
            gpt_sectors(
                &g,
                &[
                    ("1232s", "+431M"),
                    ("-611M", "747M"),
                    ("0", "312220s"),
                    ("-142M", "-140M")
                ]
            ),
            [
                (1232, 111567),
                (173280, 191232),
                (191233, 312220),
                (136927, 137439)
            ]
        );
        // `0s` is the default start, but disko sets the alignment to 1: sgdisk starts at 34.
        let g = geo(312 * MIB, 512);
        assert_eq!(
            gpt_sectors(&g, &[("0s", "+88M"), ("0", "+122M")]),
            [(34, 180257), (180258, 430113)]
        );
        // On a disk of 585937500 sectors or more, never below 8 (a sparse 300 GiB image).
        let g = geo(300 * GIB, 512);
        assert_eq!(
            gpt_sectors(&g, &[("2047s", "+1M"), ("0", "+1M")]),
            [(2047, 4094), (4096, 6143)]
        );
        // sgdisk refused partition 4 ("Could not create partition 4 from 327673 to 364800")
        // after placing the first three so.
        let g = geo(1363 * MIB, 4096);
        assert_eq!(
            gpt_sectors(&g, &[("0", "+88108s"), ("0", "171259s"), ("0", "+487M")]),
            [(6, 88113), (88114, 171259), (171260, 295931)]
        );
        let err = gpt(
            &g,
            &[
                ("0", "+88108s"),
                ("0", "171259s"),
                ("0", "+487M"),
                ("-83M", "1425M"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.index, 3, "{}", err.reason);
    }

    #[test]
    fn gpt_sector_units_are_not_aligned() {
        let g = geo(GIB, 512);
        let e = gpt(&g, &[("34s", "+1000s"), ("0", "+1M")]).unwrap();
        assert_eq!(e[0], (34 * 512, 1000 * 512));
        // The next call aligns to 2 sectors, the largest power of two dividing 34 (sgdisk
        // 1.0.9: 1034–3081), not to 1 MiB.
        assert_eq!(e[1], (1034 * 512, MIB));
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

    /// No disk to speak of (the fuzzer's blank state): refused, not a panic.
    #[test]
    fn no_disk_is_refused() {
        for size in [0, 512] {
            assert!(gpt(&geo(size, 512), &[("0", "0")]).is_err(), "{size}");
        }
    }
}
