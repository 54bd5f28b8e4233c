//! Tier 2: exact partition geometry on loop devices (issue 14), 512-byte and 4096-byte logical
//! sectors (`losetup -b 4096`).
//!
//! - Oracles: layouts generated from a seeded PRNG are resolved by `disks::geometry` on the loop
//!   device's real geometry, then made by the tool disko runs, the way disko runs it (gpt: one
//!   `sgdisk --align-end [--set-alignment=1] --new=N:START:END` per partition; `table`: one
//!   `parted -s DEV -- mkpart … START END` per partition). The table read back must be the
//!   model's, sector for sector; a layout the model refuses must be refused by the tool too,
//!   unless the model refuses it on purpose (listed in the output).
//! - Property: generated layouts (partitions without content) through the real binary: a run
//!   that passes leaves exactly the planned partitions (plan, libblkid read-back and the kernel's
//!   sysfs agree); a refused one exits 3 or 4 and leaves the disk byte-identical.
//! - The faults 1 and 2, and a partition larger than the disk, with their right values.
//!
//! Needs root, losetup, sgdisk, parted, sfdisk, partx, wipefs, mkfs.ext4; skips (saying why)
//! where the machine cannot. A failure prints the seed and the case; `PROVISION_GEOMETRY_SEED=N`
//! runs other cases, `PROVISION_GEOMETRY_CASES=P` P% as many (the default counts keep the file
//! under a minute on two cores; `=500` and a few seeds is a deeper search).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use provision::disks::discover::read_table;
use provision::disks::geometry::{
    gpt_extents, table_extents, DiskGeometry, Extent, GeometryError, TableFormat,
};
use provision::layout::size::{gpt_size, Amount, GptPos, GptPosKind, PartedPos, GIB, MIB};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_provision"))
}

/// Run a command: (exit code, stdout + stderr).
fn run(argv: &[&str]) -> (i32, String) {
    match Command::new(argv[0]).args(&argv[1..]).output() {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        ),
        Err(e) => (-1, format!("{}: {e}", argv[0])),
    }
}

/// Why this machine cannot run the tests, if it cannot.
fn unsupported(tools: &[&str]) -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in ["losetup", "sfdisk", "partx", "wipefs"].iter().chain(tools) {
        if provision::system::resolve_tool(tool).is_none() {
            return Some(format!("{tool} not installed"));
        }
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control".into());
    }
    None
}

/// A seeded xorshift64* generator: the same seed gives the same cases on every machine.
struct Rng(u64);

impl Rng {
    /// A generator for case `i` of a run seeded `seed` (splitmix64 of both, so every case can be
    /// regenerated alone and more cases leave the earlier ones unchanged).
    fn for_case(seed: u64, i: usize) -> Rng {
        let mut z = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi.max(lo) - lo + 1)
    }
    /// True `pct` times in 100.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

fn seed() -> u64 {
    std::env::var("PROVISION_GEOMETRY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14)
}

/// `n` scaled by `PROVISION_GEOMETRY_CASES` (a percentage, default 100).
fn cases(n: usize) -> usize {
    let pct: usize = std::env::var("PROVISION_GEOMETRY_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    (n * pct / 100).max(1)
}

/// Run `f` over `items` on `workers` threads (the tools mostly wait: sgdisk sleeps a second
/// after every write), results in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

/// A loop device with partition scanning over a sparse image, detached on drop.
struct Loop {
    dev: String,
    image: PathBuf,
    dir: tempfile::TempDir,
}

impl Loop {
    /// `bytes` of image (a multiple of `logical`), `logical`-byte sectors, a pattern in the
    /// first and the last MiB.
    fn new(bytes: u64, logical: u64) -> Result<Loop, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = dir.path().join("disk.img");
        // A recognisable pattern in the first and last MiB, where tables and signatures are.
        {
            use std::io::{Seek, SeekFrom, Write};
            let pattern: Vec<u8> = b"provision geometry test; "
                .iter()
                .copied()
                .cycle()
                .take(MIB as usize)
                .collect();
            let mut f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
            f.set_len(bytes).map_err(|e| e.to_string())?;
            for at in [0, bytes - MIB] {
                f.seek(SeekFrom::Start(at)).unwrap();
                f.write_all(&pattern).map_err(|e| e.to_string())?;
            }
        }
        let img = image.to_str().unwrap().to_string();
        let b = logical.to_string();
        let mut argv = vec!["losetup", "-P", "--show", "-f"];
        if logical != 512 {
            argv.extend(["-b", &b]);
        }
        argv.push(&img);
        // Concurrent attaches can race for the same free device: try again.
        let mut last = String::new();
        for _ in 0..5 {
            let (rc, out) = run(&argv);
            if rc == 0 {
                return Ok(Loop {
                    dev: out.trim().to_string(),
                    image,
                    dir,
                });
            }
            last = out;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(format!("losetup failed: {last}"))
    }

    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }

    fn sys(&self, what: &str) -> u64 {
        let p = format!("/sys/class/block/{}/{what}", self.name());
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// The geometry the planner reads: sysfs `size` and `queue/`.
    fn geometry(&self) -> DiskGeometry {
        DiskGeometry {
            size: self.sys("size") * 512,
            logical: self.sys("queue/logical_block_size"),
            physical: self.sys("queue/physical_block_size"),
            optimal_io: self.sys("queue/optimal_io_size"),
        }
    }

    /// The partitions in the table on the disk (libblkid): (number, start, size) in bytes;
    /// empty when there is no table.
    fn table(&self) -> (String, Parts) {
        match read_table(Path::new(&self.dev)) {
            Ok((kind, entries)) => {
                let mut v: Vec<_> = entries
                    .iter()
                    .map(|e| (e.number, e.start, e.size))
                    .collect();
                v.sort();
                (kind, v)
            }
            Err(_) => (String::new(), Vec::new()),
        }
    }

    /// The kernel's partitions of the disk (sysfs `start`/`size`): (number, start, size), bytes.
    fn kernel_partitions(&self) -> Parts {
        let dir = format!("/sys/class/block/{}", self.name());
        let mut v = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if !n.starts_with(&format!("{}p", self.name())) {
                continue;
            }
            let num = |f: &str| -> u64 {
                std::fs::read_to_string(e.path().join(f))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            v.push((
                num("partition") as u32,
                num("start") * 512,
                num("size") * 512,
            ));
        }
        v.sort();
        v
    }

    /// The image's content, sparse-aware: every 4 KiB block that is not all zeros, with its
    /// offset, and the image's length. Two equal contents are byte-identical images (holes read
    /// as zeros; a block of zeros written into a hole counts as unchanged, as it reads the
    /// same). The device's cache is flushed first, so a write not yet in the image cannot hide.
    fn content(&self) -> Content {
        use std::io::{Read, Seek, SeekFrom};
        std::fs::File::open(&self.dev)
            .and_then(|f| f.sync_all())
            .unwrap();
        let mut f = std::fs::File::open(&self.image).unwrap();
        let len = f.metadata().unwrap().len();
        let mut blocks = Vec::new();
        let mut pos = 0u64;
        while pos < len {
            let Ok(data) = rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(pos)) else {
                break; // only a hole is left
            };
            let hole = rustix::fs::seek(&f, rustix::fs::SeekFrom::Hole(data)).unwrap();
            let first = data / 4096 * 4096;
            let mut buf = vec![0u8; (hole - first) as usize];
            f.seek(SeekFrom::Start(first)).unwrap();
            f.read_exact(&mut buf).unwrap();
            for (i, b) in buf.chunks(4096).enumerate() {
                if b.iter().any(|x| *x != 0) {
                    blocks.push((first + i as u64 * 4096, b.to_vec()));
                }
            }
            pos = hole;
        }
        Content { len, blocks }
    }

    /// Write a foreign GPT (one 4 MiB partition, by sfdisk) over the pattern [`Loop::new`]
    /// left at both ends, so that a run refused must change nothing and a run that passes must
    /// wipe it.
    fn seed_foreign(&self) -> Result<(), String> {
        use std::io::Write;
        let script = "label: gpt\nsize=4MiB, name=foreign\n";
        let mut c = Command::new("sfdisk")
            .args(["-q", "--no-reread", "--wipe", "never", &self.dev])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        c.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let o = c.wait_with_output().map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!(
                "sfdisk: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        run(&["partx", "-u", &self.dev]);
        Ok(())
    }
}

/// What [`Loop::content`] reads.
#[derive(PartialEq)]
struct Content {
    len: u64,
    blocks: Vec<(u64, Vec<u8>)>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, non-zero 4 KiB blocks at {:?}",
            self.len,
            self.blocks.iter().map(|b| b.0).collect::<Vec<_>>()
        )
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        run(&["losetup", "-d", &self.dev]);
    }
}

/// Partitions as (number, start, size), in bytes.
type Parts = Vec<(u32, u64, u64)>;

/// Extents in bytes, numbered from 1.
fn bytes_of(ext: &[Extent], ss: u64) -> Parts {
    ext.iter()
        .enumerate()
        .map(|(i, e)| (i as u32 + 1, e.first * ss, e.sectors() * ss))
        .collect()
}

/// Byte triples as sectors, for messages: `1:2048–22527`.
fn sectors_of(v: &[(u32, u64, u64)], ss: u64) -> String {
    v.iter()
        .map(|(n, s, l)| format!("{n}:{}–{}", s / ss, (s + l) / ss - 1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a tool's result compared with the model's.
enum Verdict {
    /// Both placed every partition, at the same sectors.
    Same,
    /// Both refused, at the same partition, having placed the ones before it alike.
    BothRefused,
    /// The model refuses on purpose (a reason of ours); the tool accepted.
    OurRefusal(String),
    Differs(String),
}

/// The model's reasons to refuse what the tools accept, on purpose: a byte amount that is not a
/// whole number of sectors (sgdisk would truncate it silently).
fn deliberate(reason: &str) -> bool {
    reason.contains("is not a whole number of")
}

/// Compare one case: the model's result for every partition, the model's for the first `j`
/// (when the tool refused partition `j`), and what the tool left on the disk.
fn judge(
    model: &Result<Parts, GeometryError>,
    prefix: impl Fn(usize) -> Result<Parts, GeometryError>,
    tool_refused: Option<(usize, String)>,
    got: &[(u32, u64, u64)],
    ss: u64,
) -> Verdict {
    match (model, tool_refused) {
        (Ok(want), None) if want.as_slice() == got => Verdict::Same,
        (Ok(want), None) => Verdict::Differs(format!(
            "placed differently: model {}, tool {}",
            sectors_of(want, ss),
            sectors_of(got, ss)
        )),
        (Ok(want), Some((j, msg))) => Verdict::Differs(format!(
            "the model places every partition ({}), the tool refused partition {}: {}",
            sectors_of(want, ss),
            j + 1,
            msg.trim()
        )),
        (Err(e), None) if deliberate(&e.reason) => Verdict::OurRefusal(format!(
            "model refuses partition {}: {}; the tool made {}",
            e.index + 1,
            e.reason,
            sectors_of(got, ss)
        )),
        (Err(e), None) => Verdict::Differs(format!(
            "the model refuses partition {}: {}; the tool made {}",
            e.index + 1,
            e.reason,
            sectors_of(got, ss)
        )),
        // The model refuses an earlier partition on purpose: what follows cannot compare.
        (Err(e), Some((j, _))) if e.index < j && deliberate(&e.reason) => {
            Verdict::OurRefusal(format!(
                "model refuses partition {}: {}; the tool made {} and refused partition {}",
                e.index + 1,
                e.reason,
                sectors_of(got, ss),
                j + 1
            ))
        }
        (Err(e), Some((j, msg))) => {
            let before = prefix(j);
            match before {
                Ok(b) if e.index == j && b.as_slice() == got => Verdict::BothRefused,
                Ok(b) => Verdict::Differs(format!(
                    "the model refuses partition {} ({}), the tool partition {} ({}); before it the model places {}, the tool made {}",
                    e.index + 1,
                    e.reason,
                    j + 1,
                    msg.trim(),
                    sectors_of(&b, ss),
                    sectors_of(got, ss)
                )),
                Err(e2) => Verdict::Differs(format!(
                    "the model refuses partition {} ({}), the tool partition {} ({}) having made {}",
                    e2.index + 1,
                    e2.reason,
                    j + 1,
                    msg.trim(),
                    sectors_of(got, ss)
                )),
            }
        }
    }
}

/// Tally of an oracle run, printed as its summary; failures fail the test.
#[derive(Default)]
struct Tally {
    same: usize,
    both_refused: usize,
    ours: Vec<String>,
    differs: Vec<String>,
    skipped: Vec<String>,
}

impl Tally {
    fn add(&mut self, case: &str, v: Verdict) {
        match v {
            Verdict::Same => self.same += 1,
            Verdict::BothRefused => self.both_refused += 1,
            Verdict::OurRefusal(m) => self.ours.push(format!("{case}\n      {m}")),
            Verdict::Differs(m) => self.differs.push(format!("{case}\n      {m}")),
        }
    }

    fn report(&self, what: &str, tool: &str) {
        let mut s = format!(
            "{what} (seed {}): {} cases: {} placed alike, {} refused by both, {} refused by us on purpose where {tool} accepted the partition, {} differences, {} not run\n",
            seed(),
            self.same + self.both_refused + self.ours.len() + self.differs.len() + self.skipped.len(),
            self.same,
            self.both_refused,
            self.ours.len(),
            self.differs.len(),
            self.skipped.len()
        );
        for o in &self.ours {
            let _ = writeln!(s, "  ours on purpose: {o}");
        }
        for k in &self.skipped {
            let _ = writeln!(s, "  not run: {k}");
        }
        for d in &self.differs {
            let _ = writeln!(s, "  DIFFERENCE: {d}");
        }
        eprintln!("{s}");
        assert!(
            self.differs.is_empty(),
            "{what}: the model and {tool} differ (seed {}); see above",
            seed()
        );
        assert!(
            self.same > 0,
            "{what}: no case was placed by both; the generator is broken"
        );
    }
}

/// The model's extents for partitions given as (start, end) texts: each parsed by `parse` (a
/// text that does not parse is the model's refusal of that partition), then placed by `place`;
/// in bytes.
fn model_of<'a, P>(
    ss: u64,
    parts: impl Iterator<Item = (&'a str, &'a str)>,
    parse: fn(&str) -> Result<P, String>,
    place: impl FnOnce(&[(&P, &P)]) -> Result<Vec<Extent>, GeometryError>,
) -> Result<Parts, GeometryError> {
    let mut parsed = Vec::new();
    for (i, (s, e)) in parts.enumerate() {
        let parse = |t: &str| {
            parse(t).map_err(|e| GeometryError {
                index: i,
                reason: format!("parse: {e}"),
            })
        };
        parsed.push((parse(s)?, parse(e)?));
    }
    let refs: Vec<(&P, &P)> = parsed.iter().map(|(a, b)| (a, b)).collect();
    place(&refs).map(|e| bytes_of(&e, ss))
}

/// A generated case the model and a tool must place alike: a disk and its partitions.
trait OracleCase: Sync {
    /// The tool disko runs (`sgdisk`, `parted`).
    const TOOL: &'static str;
    /// The tool writes the empty table before the first partition (parted's `mklabel`), so a
    /// table must be there even when it refused partition 1; sgdisk writes none then.
    const LABEL_FIRST: bool;
    /// Image size in bytes, logical sector size.
    fn disk(&self) -> (u64, u64);
    fn describe(&self) -> String;
    /// The table type libblkid reads back (`gpt`, `dos`).
    fn kind(&self) -> &'static str;
    /// How many partitions.
    fn len(&self) -> usize;
    /// The model's extents for the first `n` partitions on `geo`.
    fn model(&self, geo: &DiskGeometry, n: usize) -> Result<Parts, GeometryError>;
    /// The tool's calls as disko makes them on `dev`: the partition refused, if one, with the
    /// tool's output.
    fn make(&self, dev: &str) -> Option<(usize, String)>;
}

/// One case on a fresh loop device: the model's extents against the tool's table.
fn oracle_case<C: OracleCase>(c: &C) -> Result<Verdict, String> {
    let (bytes, logical) = c.disk();
    let l = Loop::new(bytes, logical)?;
    let geo = l.geometry();
    if geo.logical != logical {
        return Err(format!("the loop device has {}-byte sectors", geo.logical));
    }
    let model = c.model(&geo, c.len());
    let refused = c.make(&l.dev);
    let (kind, got) = l.table();
    if (C::LABEL_FIRST || !got.is_empty()) && kind != c.kind() {
        return Ok(Verdict::Differs(format!(
            "{} left a {kind:?} table",
            C::TOOL
        )));
    }
    Ok(judge(
        &model,
        |j| c.model(&geo, j),
        refused,
        &got,
        geo.logical,
    ))
}

/// Run `n` generated cases (scaled by `PROVISION_GEOMETRY_CASES`) on `workers` threads, print
/// the tally as `what`, and fail on any difference; skip, saying why, where the machine
/// cannot.
fn run_oracle<C: OracleCase>(what: &str, n: usize, workers: usize, gen: fn(usize) -> C) {
    if let Some(why) = unsupported(&[C::TOOL]) {
        eprintln!("SKIP {what}: {why}");
        return;
    }
    let all: Vec<C> = (0..cases(n)).map(gen).collect();
    let verdicts = parallel(&all, workers, oracle_case);
    let mut t = Tally::default();
    for (c, v) in all.iter().zip(verdicts) {
        match v {
            Ok(v) => t.add(&c.describe(), v),
            Err(e) => t.skipped.push(format!("{}: {e}", c.describe())),
        }
    }
    t.report(what, C::TOOL);
}

// ---------------------------------------------------------------------------------------------
// gpt: the model against sgdisk

/// One gpt partition as a layout gives it, and as disko hands it to sgdisk.
#[derive(Clone, Debug)]
struct GptPart {
    /// The layout's fields, e.g. `size=500M` or `start=-100M end=-0`.
    shown: String,
    /// The same as YAML: `{ size: "500M" }`.
    yaml: String,
    /// disko's `start` and `end` (a `size` becomes `+SIZE`, `100%` becomes `-0`).
    start: String,
    end: String,
}

struct GptCase {
    id: usize,
    bytes: u64,
    logical: u64,
    parts: Vec<GptPart>,
}

fn show_disk(bytes: u64, logical: u64) -> String {
    let rest = bytes % MIB;
    format!(
        "{} MiB{} disk, {logical}-byte sectors",
        bytes / MIB,
        if rest > 0 {
            format!(" + {} bytes", rest)
        } else {
            String::new()
        }
    )
}

fn disk_bytes(r: &mut Rng, logical: u64, lo_mib: u64, hi_mib: u64) -> u64 {
    let mut bytes = r.range(lo_mib, hi_mib) * MIB;
    if r.chance(40) {
        bytes += r.range(1, MIB / 4096 - 1) * 4096;
        if logical == 512 && r.chance(50) {
            bytes += 512 * r.range(1, 7);
        }
    }
    bytes
}

/// A gpt `start` in disko's (sgdisk's) grammar; `at` is roughly where the previous partitions
/// end, in MiB.
fn gpt_start(r: &mut Rng, at: u64, disk_mib: u64, ss: u64) -> String {
    match r.range(0, 99) {
        0..=29 => "0".into(),
        30..=49 => format!("{}M", at + r.range(0, 3)),
        50..=59 => format!("+{}M", r.range(1, 16)),
        60..=74 => format!("-{}M", r.range(1, disk_mib / 2)),
        75..=96 => format!("{}s", (at * MIB / ss + r.range(0, 4 * MIB / ss)).max(1)),
        _ => "0s".into(),
    }
}

/// A gpt `end`; `sz` is the partition's intended size in MiB, `at` roughly its start in MiB.
fn gpt_end(r: &mut Rng, at: u64, sz: u64, disk_mib: u64, ss: u64) -> String {
    match r.range(0, 99) {
        0..=24 => format!("+{sz}M"),
        25..=39 => format!("{}M", at + sz),
        40..=52 => format!("-{}M", r.range(0, disk_mib / 3)),
        53..=56 => "-0".into(),
        57..=71 => format!("{}s", (at + sz) * MIB / ss + r.range(0, MIB / ss) - 1),
        72..=83 => format!("+{}s", r.range(1, sz * MIB / ss + 1000)),
        84..=88 => format!("-{}s", r.range(1, 64 * MIB / ss)),
        89..=95 => format!("+{}K", r.range(1, sz * 1024)),
        _ => format!("+{}G", r.range(1, 2)),
    }
}

/// A disko gpt `size`: `NNN[KMGT]`.
fn gpt_size_text(r: &mut Rng, sz: u64) -> String {
    match r.range(0, 99) {
        0..=74 => format!("{sz}M"),
        75..=84 => format!("{}K", sz * 1024 + r.range(0, 3) * r.range(0, 1000)),
        85..=94 => format!("{}G", r.range(1, 2)),
        _ => "1T".into(),
    }
}

/// The combination whose difference from sgdisk is documented (geometry/sgdisk.rs module doc):
/// an end `+SIZE` after a start sgdisk moves to align it (`-NNNM`, back from an aligned end, is
/// never aligned).
fn documented_difference(start: &str, end: &str) -> bool {
    let (Ok(s), Ok(e)) = (GptPos::parse(start), GptPos::parse(end)) else {
        return false;
    };
    let in_s = start.ends_with('s') || end.ends_with('s');
    !in_s
        && matches!(s.kind, GptPosKind::Minus(Amount::Bytes(_)))
        && matches!(e.kind, GptPosKind::Plus(Amount::Bytes(_)))
}

/// `n` gpt partitions for a `bytes` disk; `oracle`: without the documented difference.
fn gen_gpt_parts(r: &mut Rng, bytes: u64, logical: u64, n: usize, oracle: bool) -> Vec<GptPart> {
    let disk_mib = bytes / MIB;
    let mut at = 1;
    let mut parts = Vec::new();
    for i in 0..n {
        let last = i + 1 == n;
        let sz = r.range(1, (disk_mib * 2 / (n as u64 + 1)).max(2));
        let part = loop {
            let p = if r.chance(40) {
                let start = if r.chance(20) {
                    gpt_start(r, at, disk_mib, logical)
                } else {
                    "0".into()
                };
                let size = if last && r.chance(50) {
                    "100%".into()
                } else {
                    gpt_size_text(r, sz)
                };
                let end = gpt_size(&size).unwrap().text;
                let end = if size == "100%" {
                    "-0".to_string()
                } else {
                    format!("+{end}")
                };
                let (shown, yaml) = if start == "0" {
                    (format!("size={size}"), format!("{{ size: \"{size}\" }}"))
                } else {
                    (
                        format!("start={start} size={size}"),
                        format!("{{ start: \"{start}\", size: \"{size}\" }}"),
                    )
                };
                GptPart {
                    shown,
                    yaml,
                    start,
                    end,
                }
            } else {
                let start = gpt_start(r, at, disk_mib, logical);
                let end = gpt_end(r, at, sz, disk_mib, logical);
                GptPart {
                    shown: format!("start={start} end={end}"),
                    yaml: format!("{{ start: \"{start}\", end: \"{end}\" }}"),
                    start,
                    end,
                }
            };
            if !oracle || !documented_difference(&p.start, &p.end) {
                break p;
            }
        };
        parts.push(part);
        at += sz + r.range(0, 2);
    }
    parts
}

fn gen_gpt_case(id: usize) -> GptCase {
    let mut r = Rng::for_case(seed(), id);
    let logical = if id % 2 == 0 { 512 } else { 4096 };
    let bytes = disk_bytes(&mut r, logical, 64, 2048);
    let n = r.range(1, 4) as usize;
    let parts = gen_gpt_parts(&mut r, bytes, logical, n, true);
    GptCase {
        id,
        bytes,
        logical,
        parts,
    }
}

/// The model's extents for `parts` on `geo`, in bytes.
fn gpt_model(geo: &DiskGeometry, parts: &[GptPart]) -> Result<Parts, GeometryError> {
    let texts = parts.iter().map(|p| (p.start.as_str(), p.end.as_str()));
    model_of(geo.logical, texts, GptPos::parse, |refs| {
        gpt_extents(geo, refs)
    })
}

/// disko's sgdisk calls for `parts` (gpt.nix `_create`; a blank disk, so `--clear` first): the
/// partition sgdisk refused, if one, with its output.
fn sgdisk_as_disko(dev: &str, parts: &[GptPart]) -> Option<(usize, String)> {
    for (i, p) in parts.iter().enumerate() {
        let new = format!("--new={}:{}:{}", i + 1, p.start, p.end);
        let mut argv = vec!["sgdisk"];
        if i == 0 {
            argv.push("--clear");
        }
        argv.push("--align-end");
        // disko's `alignment` default: 1 when start or end ends in `s`.
        if p.start.ends_with('s') || p.end.ends_with('s') {
            argv.push("--set-alignment=1");
        }
        argv.extend([new.as_str(), dev]);
        let (rc, out) = run(&argv);
        if rc != 0 {
            return Some((i, out));
        }
    }
    None
}

impl OracleCase for GptCase {
    const TOOL: &'static str = "sgdisk";
    const LABEL_FIRST: bool = false;
    fn disk(&self) -> (u64, u64) {
        (self.bytes, self.logical)
    }
    fn describe(&self) -> String {
        format!(
            "gpt case {} (seed {}): {}: {}",
            self.id,
            seed(),
            show_disk(self.bytes, self.logical),
            self.parts
                .iter()
                .map(|p| format!("[{}]", p.shown))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
    fn kind(&self) -> &'static str {
        "gpt"
    }
    fn len(&self) -> usize {
        self.parts.len()
    }
    fn model(&self, geo: &DiskGeometry, n: usize) -> Result<Parts, GeometryError> {
        gpt_model(geo, &self.parts[..n])
    }
    fn make(&self, dev: &str) -> Option<(usize, String)> {
        sgdisk_as_disko(dev, &self.parts)
    }
}

#[test]
fn gpt_geometry_matches_sgdisk_as_disko_runs_it() {
    run_oracle("gpt against sgdisk", 64, 16, gen_gpt_case);
}

/// The one documented difference (geometry/sgdisk.rs module doc): an end `+SIZE` after a start
/// sgdisk has to align. sgdisk counts the size from the start as asked and then moves the start,
/// so the partition is not SIZE; the model counts from the aligned start: exactly SIZE.
#[test]
fn gpt_plus_size_after_an_unaligned_start_is_exact_where_sgdisk_is_not() {
    if let Some(why) = unsupported(&["sgdisk"]) {
        eprintln!(
            "SKIP gpt_plus_size_after_an_unaligned_start_is_exact_where_sgdisk_is_not: {why}"
        );
        return;
    }
    for logical in [512u64, 4096] {
        let l = Loop::new(GIB, logical).unwrap();
        let geo = l.geometry();
        let parts = [
            GptPart {
                shown: "size=100M".into(),
                yaml: String::new(),
                start: "0".into(),
                end: "+100M".into(),
            },
            GptPart {
                shown: "start=-200M size=100M".into(),
                yaml: String::new(),
                start: "-200M".into(),
                end: "+100M".into(),
            },
        ];
        let ours = gpt_model(&geo, &parts).unwrap();
        assert_eq!(sgdisk_as_disko(&l.dev, &parts).map(|r| r.1), None);
        let (_, theirs) = l.table();
        let ss = logical;
        // The asked start: 200 MiB back from the last sector before the (aligned) disk end.
        let (_, last_usable) = geo.gpt_usable();
        let grain = MIB / ss;
        let high = (last_usable + 1) / grain * grain - 1;
        let asked = high - 200 * MIB / ss;
        eprintln!(
            "{logical}-byte sectors: asked start sector {asked}; model {}, sgdisk {}",
            sectors_of(&ours, ss),
            sectors_of(&theirs, ss)
        );
        assert_eq!(ours[0], theirs[0]);
        assert_eq!(ours[1].1, theirs[1].1, "both align the start alike");
        assert_eq!(
            ours[1].2,
            100 * MIB,
            "the model's partition is exactly 100 MiB"
        );
        assert_eq!(
            (theirs[1].1 + theirs[1].2) / ss - 1,
            asked + 100 * MIB / ss - 1,
            "sgdisk ends 100 MiB after the unaligned start"
        );
        assert_ne!(theirs[1].2, 100 * MIB, "sgdisk's partition is not 100 MiB");
    }
}

// ---------------------------------------------------------------------------------------------
// table: the model against parted

struct TableCase {
    id: usize,
    bytes: u64,
    logical: u64,
    format: TableFormat,
    /// (start, end) in parted's grammar.
    parts: Vec<(String, String)>,
}

/// A parted position for byte `pos` of a `disk`-byte disk, in a random unit; `end` for an end
/// (inclusive: a sector count ends one before).
fn parted_text(r: &mut Rng, pos: u64, disk: u64, ss: u64, end: bool) -> String {
    if pos == 0 {
        return ["0", "0%", "0M", "1MiB", "0%"][r.range(0, 4) as usize].into();
    }
    if pos >= disk {
        // parted refuses `-0MiB` (outside the disk): now and then, to see that the model does.
        return ["100%", "-1s", "100%", "-1s", "100%", "-0MiB"][r.range(0, 5) as usize].into();
    }
    match r.range(0, 99) {
        0..=19 => format!("{}MiB", pos / MIB),
        20..=39 => format!("{}M", (pos + 500_000) / 1_000_000),
        40..=51 => format!("{}%", (pos * 100 + disk / 2) / disk),
        52..=66 => format!("{}s", (pos / ss).saturating_sub(u64::from(end)).max(1)),
        67..=76 if pos >= 1_000_000_000 => {
            format!("{}.{}GB", pos / 1_000_000_000, pos / 100_000_000 % 10)
        }
        67..=76 => format!("{}kB", pos / 1000),
        77..=91 if disk - pos >= MIB => format!("-{}MiB", (disk - pos) / MIB),
        _ => format!("{}MB", pos / 1_000_000),
    }
}

/// `n` partitions' (start, end) in parted's grammar for a `bytes` disk.
fn gen_table_parts(r: &mut Rng, bytes: u64, logical: u64, n: usize) -> Vec<(String, String)> {
    // Boundaries in order, the first near the start, the last often the disk's end.
    let mut pts = vec![if r.chance(60) { 0 } else { r.range(1, 8) * MIB }];
    let mut cuts: Vec<u64> = (0..n).map(|_| r.range(pts[0] + MIB, bytes)).collect();
    cuts.sort();
    if r.chance(50) {
        *cuts.last_mut().unwrap() = bytes;
    }
    pts.extend(cuts);
    let mut parts = Vec::new();
    for i in 0..n {
        let s = if i > 0 && r.chance(25) {
            pts[i] + r.range(0, 4) * MIB
        } else {
            pts[i]
        };
        let s = if r.chance(8) { r.range(0, bytes) } else { s };
        let e = if r.chance(8) {
            r.range(0, bytes)
        } else {
            pts[i + 1]
        };
        let start = parted_text(r, s, bytes, logical, false);
        let end = parted_text(r, e, bytes, logical, true);
        parts.push((start, end));
    }
    parts
}

fn gen_table_case(id: usize) -> TableCase {
    let mut r = Rng::for_case(seed() ^ 0x7ab1e, id);
    let logical = if id % 2 == 0 { 512 } else { 4096 };
    let format = if id / 2 % 2 == 0 {
        TableFormat::Msdos
    } else {
        TableFormat::Gpt
    };
    let bytes = disk_bytes(&mut r, logical, 64, 2048);
    let n = r.range(1, 4) as usize;
    let parts = gen_table_parts(&mut r, bytes, logical, n);
    TableCase {
        id,
        bytes,
        logical,
        format,
        parts,
    }
}

fn table_model(
    geo: &DiskGeometry,
    format: TableFormat,
    parts: &[(String, String)],
) -> Result<Parts, GeometryError> {
    let texts = parts.iter().map(|(s, e)| (s.as_str(), e.as_str()));
    model_of(geo.logical, texts, PartedPos::parse, |refs| {
        table_extents(geo, format, refs)
    })
}

/// disko's parted calls (table.nix `_create`): the partition parted refused, if one.
fn parted_as_disko(
    dev: &str,
    format: TableFormat,
    parts: &[(String, String)],
) -> Option<(usize, String)> {
    let label = match format {
        TableFormat::Msdos => "msdos",
        TableFormat::Gpt => "gpt",
    };
    let (rc, out) = run(&["parted", "-s", dev, "--", "mklabel", label]);
    assert_eq!(rc, 0, "parted mklabel: {out}");
    for (i, (s, e)) in parts.iter().enumerate() {
        let name = format!("p{}", i + 1);
        let kind = match format {
            TableFormat::Msdos => "primary",
            TableFormat::Gpt => name.as_str(),
        };
        let (rc, out) = run(&["parted", "-s", dev, "--", "mkpart", kind, s, e]);
        if rc != 0 {
            let msg: Vec<&str> = out.lines().filter(|l| !l.contains("udevadm")).collect();
            return Some((i, msg.join(" / ")));
        }
    }
    None
}

impl OracleCase for TableCase {
    const TOOL: &'static str = "parted";
    const LABEL_FIRST: bool = true;
    fn disk(&self) -> (u64, u64) {
        (self.bytes, self.logical)
    }
    fn describe(&self) -> String {
        format!(
            "table case {} (seed {}): {} {}: {}",
            self.id,
            seed(),
            match self.format {
                TableFormat::Msdos => "msdos",
                TableFormat::Gpt => "gpt",
            },
            show_disk(self.bytes, self.logical),
            self.parts
                .iter()
                .map(|(s, e)| format!("[{s} {e}]"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
    fn kind(&self) -> &'static str {
        match self.format {
            TableFormat::Msdos => "dos",
            TableFormat::Gpt => "gpt",
        }
    }
    fn len(&self) -> usize {
        self.parts.len()
    }
    fn model(&self, geo: &DiskGeometry, n: usize) -> Result<Parts, GeometryError> {
        table_model(geo, self.format, &self.parts[..n])
    }
    fn make(&self, dev: &str) -> Option<(usize, String)> {
        parted_as_disko(dev, self.format, &self.parts)
    }
}

#[test]
fn table_geometry_matches_parted_as_disko_runs_it() {
    run_oracle("table against parted", 120, 6, gen_table_case);
}

// ---------------------------------------------------------------------------------------------
// The real binary over generated layouts

/// A `provision` run: (exit code, stdout, stderr).
fn provision(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// A layout of one disk `d` on `dev` with `content` (YAML, indented for `content:`).
fn disk_layout(dev: &str, content: &str) -> String {
    format!("disk:\n  d:\n    type: disk\n    device: {dev}\n    content:\n{content}")
}

struct PropCase {
    id: usize,
    bytes: u64,
    logical: u64,
    /// What the generator meant, for messages.
    shown: String,
    /// The disk's `content:` as YAML, with `DEV` for the device.
    content: String,
    /// The model's result for the layout as generated (None when the layout itself is bad:
    /// the planner must refuse it before the model is asked).
    model: Option<ModelFn>,
}

type ModelFn = Box<dyn Fn(&DiskGeometry) -> Result<Parts, GeometryError> + Sync>;

/// A generated gpt or `table` layout of partitions without content, sometimes with one field
/// that is not in the grammar (`1.5G`, a bare number, …), for the planner to refuse.
fn gen_prop_case(id: usize) -> PropCase {
    let mut r = Rng::for_case(seed() ^ 0x9909, id);
    let logical = if id % 2 == 0 { 512 } else { 4096 };
    let bytes = disk_bytes(&mut r, logical, 64, 2048);
    let n = r.range(1, 4) as usize;
    let bad = r.chance(20);
    match id / 2 % 3 {
        0 => {
            let mut parts = gen_gpt_parts(&mut r, bytes, logical, n, false);
            let mut lines: Vec<String> = parts.iter().map(|p| p.yaml.clone()).collect();
            if bad {
                let k = r.range(0, n as u64 - 1) as usize;
                let (yaml, shown) = match r.range(0, 4) {
                    0 => ("{ size: \"1.5G\" }", "size=1.5G"),
                    1 => ("{ size: \"2048\" }", "size=2048"),
                    2 => ("{ start: \"1.5M\", end: \"+1M\" }", "start=1.5M"),
                    3 => ("{ start: \"0\", end: \"4096\" }", "end=4096"),
                    _ => ("{ size: \"1M\", end: \"-0\" }", "size=1M end=-0"),
                };
                lines[k] = yaml.into();
                parts[k].shown = format!("BAD {shown}");
            }
            let content = format!(
                "      type: gpt\n      partitions:\n{}",
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("        p{}: {l}\n", i + 1))
                    .collect::<String>()
            );
            let shown = parts
                .iter()
                .map(|p| format!("[{}]", p.shown))
                .collect::<Vec<_>>()
                .join(" ");
            PropCase {
                id,
                bytes,
                logical,
                shown: format!("gpt: {shown}"),
                content,
                model: (!bad)
                    .then(|| Box::new(move |g: &DiskGeometry| gpt_model(g, &parts)) as ModelFn),
            }
        }
        k => {
            let format = if k == 1 {
                TableFormat::Msdos
            } else {
                TableFormat::Gpt
            };
            let mut parts = gen_table_parts(&mut r, bytes, logical, n);
            if bad {
                match r.range(0, 2) {
                    0 => parts[0].0 = "0.5GB".into(),
                    1 => parts[0].1 = "12.5%".into(),
                    _ => {
                        while parts.len() < 5 {
                            parts.push(("-2MiB".into(), "-1MiB".into()));
                        }
                    }
                }
            }
            let name = match format {
                TableFormat::Msdos => "msdos",
                TableFormat::Gpt => "gpt",
            };
            let content = format!(
                "      type: table\n      format: {name}\n      partitions:\n{}",
                parts
                    .iter()
                    .enumerate()
                    .map(|(i, (s, e))| format!(
                        "        - {{ name: p{}, start: \"{s}\", end: \"{e}\" }}\n",
                        i + 1
                    ))
                    .collect::<String>()
            );
            let shown = parts
                .iter()
                .map(|(s, e)| format!("[{s} {e}]"))
                .collect::<Vec<_>>()
                .join(" ");
            let valid = !bad || parts.len() > 4 && format == TableFormat::Gpt;
            PropCase {
                id,
                bytes,
                logical,
                shown: format!("table {name}: {shown}{}", if bad { " (BAD)" } else { "" }),
                content,
                model: valid.then(|| {
                    Box::new(move |g: &DiskGeometry| table_model(g, format, &parts)) as ModelFn
                }),
            }
        }
    }
}

/// The planned table of a `--dry-run --output json` plan: kind and (number, start, size).
fn planned_table(json: &str) -> Option<(String, Parts)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let t = v["actions"]
        .as_array()?
        .iter()
        .find(|a| a["op"] == "verify-table")?["table"]
        .clone();
    let parts = t["partitions"]
        .as_array()?
        .iter()
        .map(|p| {
            (
                p["number"].as_u64().unwrap() as u32,
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
            )
        })
        .collect();
    Some((t["kind"].as_str()?.to_string(), parts))
}

/// How one generated layout went through the binary.
enum PropOutcome {
    /// Exit 0: the partitions planned, read back and seen by the kernel.
    Made(usize),
    /// Refused with this exit code and message, the disk byte-identical.
    Refused(i32, String),
    Failed(String),
}

fn prop_case(c: &PropCase) -> Result<PropOutcome, String> {
    let l = Loop::new(c.bytes, c.logical)?;
    l.seed_foreign()?;
    let root = l.dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let lay = l.dir.path().join("layout.yaml");
    std::fs::write(&lay, disk_layout(&l.dev, &c.content)).unwrap();
    let base = [
        "--layout",
        lay.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--cmdline",
        "homelab.provision_disks=true homelab.wipe_foreign=d",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .chain(["disks".to_string()])
            .collect()
    };
    let argv = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let dry = with(&["--dry-run", "--output", "json"]);
    let dry_refs: Vec<&str> = dry.iter().map(String::as_str).collect();
    let (dry_rc, plan, dry_err) = provision(&dry_refs);
    let before = l.content();
    let real = with(&[]);
    let real_refs: Vec<&str> = real.iter().map(String::as_str).collect();
    let (rc, out, err) = provision(&real_refs);
    let geo = l.geometry();
    let model = c.model.as_ref().map(|m| m(&geo));
    let failed = |why: String| Ok(PropOutcome::Failed(why));
    match dry_rc {
        0 => {
            if rc != 0 {
                return failed(format!(
                    "the dry run passed, the real run exited {rc}: {out}{err}"
                ));
            }
            let Some((kind, planned)) = planned_table(&plan) else {
                return failed(format!("no verify-table step in the plan: {plan}"));
            };
            let (got_kind, got) = l.table();
            let kernel = l.kernel_partitions();
            let ss = geo.logical;
            if got_kind != kind || got != planned {
                return failed(format!(
                    "planned {kind} {}, read back {got_kind} {}",
                    sectors_of(&planned, ss),
                    sectors_of(&got, ss)
                ));
            }
            if kernel != planned {
                return failed(format!(
                    "planned {}, the kernel has {}",
                    sectors_of(&planned, ss),
                    sectors_of(&kernel, ss)
                ));
            }
            match model {
                Some(Ok(m)) if m == planned => Ok(PropOutcome::Made(planned.len())),
                other => failed(format!(
                    "the binary planned {}; the model in this test says {}",
                    sectors_of(&planned, ss),
                    match other {
                        Some(Ok(m)) => sectors_of(&m, ss),
                        Some(Err(e)) => format!("refused: {}", e.reason),
                        None => "the layout is not valid".into(),
                    }
                )),
            }
        }
        3 | 4 => {
            let after = l.content();
            // The reason: the line naming the layout's field, else the error line.
            let msg = err
                .lines()
                .find(|l| l.contains("disk.d."))
                .or_else(|| err.lines().find(|l| l.contains("error")))
                .unwrap_or_default()
                .trim()
                .to_string();
            if rc != dry_rc {
                return failed(format!(
                    "the dry run exited {dry_rc} ({}), the real run {rc}: {out}{err}",
                    dry_err.trim()
                ));
            }
            if after != before {
                return failed(format!(
                    "refused with exit {rc} ({msg}), but the disk changed"
                ));
            }
            if let Some(Ok(m)) = model {
                return failed(format!(
                    "refused with exit {rc} ({msg}), but the model places {}",
                    sectors_of(&m, geo.logical)
                ));
            }
            Ok(PropOutcome::Refused(rc, msg))
        }
        _ => failed(format!("{}: exit {dry_rc}: {}", argv(&dry), dry_err.trim())),
    }
}

#[test]
fn generated_layouts_through_the_binary_are_exact_or_refused_untouched() {
    if let Some(why) = unsupported(&["sgdisk"]) {
        eprintln!(
            "SKIP generated_layouts_through_the_binary_are_exact_or_refused_untouched: {why}"
        );
        return;
    }
    let all: Vec<PropCase> = (0..cases(64)).map(gen_prop_case).collect();
    let outcomes = parallel(&all, 8, prop_case);
    let (mut made, mut parts, mut refused, mut failed, mut skipped) =
        (0, 0, Vec::new(), Vec::new(), Vec::new());
    for (c, o) in all.iter().zip(outcomes) {
        let what = format!(
            "case {} (seed {}): {}: {}",
            c.id,
            seed(),
            show_disk(c.bytes, c.logical),
            c.shown
        );
        match o {
            Ok(PropOutcome::Made(n)) => {
                made += 1;
                parts += n;
            }
            Ok(PropOutcome::Refused(rc, msg)) => {
                refused.push(format!("exit {rc}: {what}\n      {msg}"))
            }
            Ok(PropOutcome::Failed(why)) => failed.push(format!(
                "{what}\n      {why}\n      layout content:\n{}",
                c.content
            )),
            Err(e) => skipped.push(format!("{what}: {e}")),
        }
    }
    let mut s = format!(
        "generated layouts through provision (seed {}): {} runs: {made} made exactly as planned ({parts} partitions), {} refused with the disk byte-identical, {} failures, {} not run\n",
        seed(),
        all.len(),
        refused.len(),
        failed.len(),
        skipped.len()
    );
    for x in &refused {
        let _ = writeln!(s, "  refused {x}");
    }
    for x in &skipped {
        let _ = writeln!(s, "  not run: {x}");
    }
    for x in &failed {
        let _ = writeln!(s, "  FAILURE: {x}");
    }
    eprintln!("{s}");
    assert!(failed.is_empty(), "see above (seed {})", seed());
    assert!(
        made > 0 && !refused.is_empty(),
        "the generator made no case of one kind"
    );
}

// ---------------------------------------------------------------------------------------------
// The faults, with their right values

/// Issue 14, fault 1: a gpt `size: 1.5G` is not disko's grammar: `validate` names the field,
/// and a real run exits 3 before anything is written.
#[test]
fn fractional_gpt_size_is_refused_before_anything_is_written() {
    if let Some(why) = unsupported(&["sgdisk"]) {
        eprintln!("SKIP fractional_gpt_size_is_refused_before_anything_is_written: {why}");
        return;
    }
    let l = Loop::new(256 * MIB, 512).unwrap();
    l.seed_foreign().unwrap();
    let lay = l.dir.path().join("layout.yaml");
    std::fs::write(
        &lay,
        disk_layout(
            &l.dev,
            "      type: gpt\n      partitions:\n        data: { size: 1.5G, content: { type: filesystem, format: ext4 } }\n        rest: { size: 100%, content: { type: filesystem, format: ext4 } }\n",
        ),
    )
    .unwrap();
    let lay = lay.to_str().unwrap();
    let (rc, out, err) = provision(&["validate", "--layout", lay]);
    assert_eq!(rc, 1, "validate: {out}{err}");
    let text = out + &err;
    assert!(
        text.contains(
            "disk.d.content.partitions.data: size: \"1.5G\": sgdisk takes whole numbers only"
        ) && text.contains("1536M"),
        "{text}"
    );
    let root = l.dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let before = l.content();
    let (rc, out, err) = provision(&[
        "--layout",
        lay,
        "--root",
        root.to_str().unwrap(),
        "--cmdline",
        "homelab.provision_disks=true homelab.wipe_foreign=d",
        "disks",
    ]);
    assert_eq!(rc, 3, "{out}{err}");
    assert!(err.contains("size: \"1.5G\""), "{err}");
    assert_eq!(l.content(), before, "the disk changed");
}

/// Issue 14, fault 2: a `table`/msdos layout `1M`–`129M`, `129M`–`100%` gives the same byte
/// offsets and sizes on a 512-byte and a 4096-byte disk (parted's: 1 MiB + 122 MiB, then from
/// 123 MiB to the disk's very end), formatted.
#[test]
fn msdos_table_is_the_same_on_512_and_4096_byte_sectors() {
    if let Some(why) = unsupported(&["mkfs.ext4"]) {
        eprintln!("SKIP msdos_table_is_the_same_on_512_and_4096_byte_sectors: {why}");
        return;
    }
    let size = 256 * MIB;
    let mut seen = Vec::new();
    for logical in [512u64, 4096] {
        let l = Loop::new(size, logical).unwrap();
        assert_eq!(l.geometry().logical, logical);
        let root = l.dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let lay = l.dir.path().join("layout.yaml");
        std::fs::write(
            &lay,
            disk_layout(
                &l.dev,
                "      type: table\n      format: msdos\n      partitions:\n        \
                 - { name: boot, start: 1M, end: 129M, content: { type: filesystem, format: ext4 } }\n        \
                 - { name: root, start: 129M, end: 100%, content: { type: filesystem, format: ext4 } }\n",
            ),
        )
        .unwrap();
        let (rc, out, err) = provision(&[
            "--layout",
            lay.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--cmdline",
            "homelab.provision_disks=true",
            "disks",
        ]);
        assert_eq!(rc, 0, "{logical}-byte sectors: {out}{err}");
        let want = vec![(1, MIB, 122 * MIB), (2, 123 * MIB, size - 123 * MIB)];
        let (kind, table) = l.table();
        assert_eq!(kind, "dos");
        assert_eq!(table, want, "{logical}-byte sectors: the table");
        assert_eq!(
            l.kernel_partitions(),
            want,
            "{logical}-byte sectors: the kernel"
        );
        for n in [1, 2] {
            let (_, ty) = run(&[
                "blkid",
                "-o",
                "value",
                "-s",
                "TYPE",
                &format!("{}p{n}", l.dev),
            ]);
            assert_eq!(ty.trim(), "ext4", "{logical}-byte sectors: partition {n}");
        }
        seen.push(table);
    }
    assert_eq!(seen[0], seen[1]);
}

/// Issue 14: a gpt partition larger than the disk is refused while planning (exit 3, naming
/// it), and the disk is byte-identical.
#[test]
fn gpt_partition_larger_than_the_disk_is_refused_untouched() {
    if let Some(why) = unsupported(&["sgdisk"]) {
        eprintln!("SKIP gpt_partition_larger_than_the_disk_is_refused_untouched: {why}");
        return;
    }
    for logical in [512u64, 4096] {
        let l = Loop::new(128 * MIB, logical).unwrap();
        l.seed_foreign().unwrap();
        let root = l.dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let lay = l.dir.path().join("layout.yaml");
        std::fs::write(
            &lay,
            disk_layout(
                &l.dev,
                "      type: gpt\n      partitions:\n        esp: { size: 64M, type: EF00 }\n        big: { size: 1G, content: { type: filesystem, format: ext4 } }\n",
            ),
        )
        .unwrap();
        let before = l.content();
        for dry in [true, false] {
            let mut args = vec![
                "--layout",
                lay.to_str().unwrap(),
                "--root",
                root.to_str().unwrap(),
                "--cmdline",
                "homelab.provision_disks=true homelab.wipe_foreign=d",
            ];
            if dry {
                args.push("--dry-run");
            }
            args.push("disks");
            let (rc, out, err) = provision(&args);
            assert_eq!(rc, 3, "{logical}-byte sectors, dry run {dry}: {out}{err}");
            assert!(
                err.contains("disk.d.content.partitions.big: it does not fit"),
                "{err}"
            );
            assert_eq!(
                l.content(),
                before,
                "{logical}-byte sectors: the disk changed"
            );
        }
    }
}
