//! A small mutational fuzzer that runs inside `cargo test`: a seeded PRNG, byte and JSON-tree
//! mutators, a loop that runs one target for a number of iterations (CI) or seconds (by hand),
//! catches panics, shrinks the failing input and saves it, and prints what it did.
//!
//! Knobs (environment):
//! - `PROVISION_FUZZ_SEED`  — the run's seed (decimal or 0x-hex); default [`DEFAULT_SEED`].
//! - `PROVISION_FUZZ_SECS`  — run each target for this many seconds instead of a fixed count.
//! - `PROVISION_FUZZ_ITERS` — run each target for exactly this many iterations.
//! - `PROVISION_FUZZ_ITER`  — run only this one iteration (reproduce a reported failure).
//! - `PROVISION_FUZZ_DUMP`  — also write each generated input to `DIR/<target>/`.
//!
//! Every iteration `i` of target `t` draws from its own PRNG seeded by (seed, t, i), so a
//! failure reproduces from the printed seed and iteration alone; the failing input is also
//! written to `$CARGO_TARGET_TMPDIR/fuzz-crashes/`.

use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The seed CI uses unless `PROVISION_FUZZ_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 0x5eed_0009_2026;

/// splitmix64: tiny, fast, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `num/den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// One of some words.
    pub fn word<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    /// Small numbers more often than large ones.
    pub fn small(&mut self, max: usize) -> usize {
        let bits = self.below(usize::BITS as usize - max.leading_zeros() as usize + 1);
        (self.next_u64() as usize & ((1usize << bits) - 1)).min(max)
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

/// Where fixtures and crash inputs are kept: cargo's tmpdir for integration tests.
pub fn tmpdir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("provision-fuzz"))
}

pub fn seed() -> u64 {
    env_u64("PROVISION_FUZZ_SEED").unwrap_or(DEFAULT_SEED)
}

thread_local! {
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
    static FUZZING: Cell<bool> = const { Cell::new(false) };
}

/// Panics inside a fuzz loop are recorded (message, location) instead of printed.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(Cell::get) {
                return default(info);
            }
            let loc = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let p = info.payload();
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic)".into());
            LAST_PANIC.with(|l| *l.borrow_mut() = Some((msg, loc)));
        }));
    });
}

/// Run `check` on `input`; `Err((message, location))` if it panicked.
fn run_one(
    check: &dyn Fn(&[u8]) -> &'static str,
    input: &[u8],
) -> Result<&'static str, (String, String)> {
    FUZZING.with(|f| f.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(|| check(input)));
    FUZZING.with(|f| f.set(false));
    r.map_err(|_| {
        LAST_PANIC
            .with(|l| l.borrow_mut().take())
            .unwrap_or_else(|| ("(panic not recorded)".into(), String::new()))
    })
}

/// Shrink a failing input while it still panics at the same place: delete chunks (halving
/// their size), then simplify bytes. Bounded, so a slow target cannot stall the report.
fn shrink(check: &dyn Fn(&[u8]) -> &'static str, input: &[u8], loc: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let fails = |x: &[u8]| matches!(run_one(check, x), Err((_, l)) if l == loc);
    let mut cur = input.to_vec();
    let mut chunk = (cur.len() / 2).max(1);
    while chunk >= 1 && Instant::now() < deadline {
        let mut i = 0;
        let mut progressed = false;
        while i < cur.len() && Instant::now() < deadline {
            let end = (i + chunk).min(cur.len());
            let mut cand = cur[..i].to_vec();
            cand.extend_from_slice(&cur[end..]);
            if fails(&cand) {
                cur = cand;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if !progressed {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    // Replace bytes by 'a' / '0' where that keeps the failure (readability).
    for i in 0..cur.len() {
        if Instant::now() >= deadline {
            break;
        }
        for b in [b'0', b'a'] {
            if cur[i] != b && cur[i].is_ascii_alphanumeric() {
                let old = cur[i];
                cur[i] = b;
                if fails(&cur) {
                    break;
                }
                cur[i] = old;
            }
        }
    }
    cur
}

/// How long / how many iterations a target runs.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Iters(u64),
    Time(Duration),
    One(u64),
}

pub fn budget(default_iters: u64) -> Budget {
    if let Some(i) = env_u64("PROVISION_FUZZ_ITER") {
        return Budget::One(i);
    }
    if let Some(n) = env_u64("PROVISION_FUZZ_ITERS") {
        return Budget::Iters(n);
    }
    if let Some(s) = env_u64("PROVISION_FUZZ_SECS") {
        return Budget::Time(Duration::from_secs(s));
    }
    Budget::Iters(default_iters)
}

/// Observations that are not failures (e.g. an error without a line number), kept per target
/// with a count and the first example, printed at the end of the target's run.
static NOTES: Mutex<BTreeMap<(String, String), (u64, String)>> = Mutex::new(BTreeMap::new());
thread_local! { static TARGET: RefCell<String> = const { RefCell::new(String::new()) }; }

pub fn note(kind: &str, example: impl FnOnce() -> String) {
    let target = TARGET.with(|t| t.borrow().clone());
    let mut n = NOTES.lock().unwrap_or_else(|e| e.into_inner());
    let e = n
        .entry((target, kind.to_string()))
        .or_insert_with(|| (0, example()));
    e.0 += 1;
}

fn show(input: &[u8], text: bool) -> String {
    let s = if text {
        format!("{:?}", String::from_utf8_lossy(input))
    } else {
        format!("b\"{}\"", input.escape_ascii())
    };
    if s.len() > 4000 {
        let mut cut = 4000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}… ({} bytes; see the saved file)", &s[..cut], input.len())
    } else {
        s
    }
}

/// One fuzz target: `gen` makes an input from a PRNG, `check` runs the parser on it and asserts
/// its properties (panicking on a violation), returning a word for the statistics (`ok`, `err` …).
pub struct Target<'a> {
    pub name: &'static str,
    /// Iterations in CI (no env knobs set): sized so the whole file takes ~20 s in debug.
    pub ci_iters: u64,
    /// Inputs are text (printed as a Rust string) rather than bytes.
    pub text: bool,
    pub gen: &'a dyn Fn(&mut Rng) -> Vec<u8>,
    pub check: &'a dyn Fn(&[u8]) -> &'static str,
}

impl Target<'_> {
    pub fn run(&self) {
        install_hook();
        TARGET.with(|t| *t.borrow_mut() = self.name.to_string());
        let seed = seed();
        let budget = budget(self.ci_iters);
        eprintln!("fuzz {}: seed {seed:#x}, budget {budget:?}", self.name);
        let base = seed ^ fnv(self.name);
        let start = Instant::now();
        let mut stats: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut failures: BTreeMap<String, (String, u64, Vec<u8>)> = BTreeMap::new();
        let mut slowest = (Duration::ZERO, 0u64, 0usize);
        let mut total_bytes = 0u64;
        let (first, last) = match budget {
            Budget::One(i) => (i, i + 1),
            _ => (0, u64::MAX),
        };
        // PROVISION_FUZZ_DUMP=DIR: also write every generated input to DIR/<target>/ (seeds
        // for the cargo-fuzz targets, see fuzz/run).
        let dump = std::env::var_os("PROVISION_FUZZ_DUMP").map(|d| {
            let d = PathBuf::from(d).join(self.name);
            std::fs::create_dir_all(&d).expect("PROVISION_FUZZ_DUMP directory");
            d
        });
        let mut i = first;
        while i < last {
            match budget {
                Budget::Iters(n) if i >= n => break,
                Budget::Time(d) if i % 16 == 0 && start.elapsed() >= d => break,
                _ => {}
            }
            let mut rng = Rng::new(base.wrapping_add(i.wrapping_mul(0xA24B_AED4_963E_E407)));
            let input = (self.gen)(&mut rng);
            total_bytes += input.len() as u64;
            if let Some(d) = &dump {
                let _ = std::fs::write(d.join(format!("gen-{seed:x}-{i}")), &input);
            }
            let t0 = Instant::now();
            let r = run_one(self.check, &input);
            let dt = t0.elapsed();
            if dt > slowest.0 {
                slowest = (dt, i, input.len());
            }
            match r {
                Ok(word) => *stats.entry(word).or_default() += 1,
                Err((msg, loc)) => {
                    *stats.entry("PANIC").or_default() += 1;
                    failures.entry(loc).or_insert((msg, i, input));
                    if failures.len() >= 8 {
                        break;
                    }
                }
            }
            i += 1;
        }
        let execs = i - first;
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "fuzz {}: {execs} execs in {secs:.1}s ({:.0}/s), avg input {} bytes, outcomes {stats:?}; slowest input: iteration {} ({} bytes) took {:?}",
            self.name,
            execs as f64 / secs.max(1e-9),
            total_bytes / execs.max(1),
            slowest.1,
            slowest.2,
            slowest.0,
        );
        {
            let n = NOTES.lock().unwrap_or_else(|e| e.into_inner());
            for ((t, kind), (count, ex)) in n.iter() {
                if t == self.name {
                    eprintln!("fuzz {}: note ({count}×) {kind}: e.g. {ex}", self.name);
                }
            }
        }
        if failures.is_empty() {
            return;
        }
        let dir = tmpdir().join("fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let mut report = String::new();
        for (loc, (msg, iter, input)) in &failures {
            let small = shrink(self.check, input, loc);
            let file = dir.join(format!("{}-{seed:x}-{iter}", self.name));
            let _ = std::fs::write(&file, input);
            let _ = std::fs::write(file.with_extension("min"), &small);
            report.push_str(&format!(
                "\n--- {}: panic at {loc}: {msg}\n    reproduce: PROVISION_FUZZ_SEED={seed:#x} PROVISION_FUZZ_ITER={iter} cargo test --test fuzz {}\n    input saved as {} (shrunk: .min)\n    shrunk input ({} bytes): {}\n",
                self.name,
                self.name,
                file.display(),
                small.len(),
                show(&small, self.text)
            ));
        }
        panic!(
            "fuzz {}: {} distinct failure(s):{report}",
            self.name,
            failures.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Mutators.

/// Bytes worth trying anywhere.
const SPECIAL_BYTES: &[u8] = b"\0\x01\x7f\x80\xff\"'\\\n\r\t {}[]:,-%.=#&*!|>?@`/";
/// Unicode that has bitten parsers: NBSP, NEL, line separator, RTL override, BOM, astral, ligature.
pub const UNICODE: &[&str] = &[
    "é", "\u{a0}", "\u{85}", "\u{2028}", "\u{202e}", "\u{feff}", "𝔘", "ﬀ", "İ", "\u{3000}", "\u{0}",
];
/// Numbers at the edges of integer and float types, and YAML's odd spellings.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "7",
    "63",
    "64",
    "100",
    "101",
    "127",
    "128",
    "255",
    "256",
    "65535",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e308",
    "1e309",
    "-1e309",
    "0.1",
    "1.5",
    ".5",
    "5.",
    "NaN",
    ".inf",
    "0x10",
    "0o17",
    "1_000",
    "00",
];

/// Stack a few random byte-level mutations on `data`. `dict` holds tokens of the input's
/// language; `others` are other corpus members to splice from.
pub fn havoc(rng: &mut Rng, data: &mut Vec<u8>, dict: &[&str], others: &[Vec<u8>]) {
    let n = 1 + if rng.chance(1, 4) {
        rng.below(16)
    } else {
        rng.below(3)
    };
    for _ in 0..n {
        let len = data.len();
        let pos = if len == 0 { 0 } else { rng.below(len + 1) };
        match rng.below(14) {
            0 if len > 0 => {
                let p = rng.below(len);
                data[p] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let p = rng.below(len);
                data[p] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let p = rng.below(len);
                data[p] = *rng.pick(SPECIAL_BYTES);
            }
            3 => {
                let k = rng.small(16);
                let bytes: Vec<u8> = (0..k).map(|_| rng.next_u64() as u8).collect();
                data.splice(pos..pos, bytes);
            }
            4 | 5 if !dict.is_empty() => {
                let t = rng.pick(dict).as_bytes().to_vec();
                data.splice(pos..pos, t);
            }
            6 => {
                let t = rng.pick(UNICODE).as_bytes().to_vec();
                data.splice(pos..pos, t);
            }
            7 | 8 if len > 0 => {
                let k = rng.small(len - pos.min(len)).max(1);
                let end = (pos + k).min(len);
                data.drain(pos.min(len)..end);
            }
            9 if len > 0 => {
                // duplicate a range (sometimes many times)
                let a = rng.below(len);
                let b = (a + 1 + rng.small(len - a - 1)).min(len);
                let chunk = data[a..b].to_vec();
                let times = if rng.chance(1, 8) {
                    1 + rng.below(64)
                } else {
                    1
                };
                for _ in 0..times {
                    if data.len() > 1 << 20 {
                        break;
                    }
                    data.splice(pos..pos, chunk.iter().copied());
                }
            }
            10 if !others.is_empty() => {
                // splice a chunk of another corpus member
                let o = rng.pick(others);
                if !o.is_empty() {
                    let a = rng.below(o.len());
                    let b = (a + 1 + rng.small(o.len() - a - 1)).min(o.len());
                    if rng.chance(1, 2) || len == 0 {
                        data.splice(pos..pos, o[a..b].iter().copied());
                    } else {
                        let end = (pos + (b - a)).min(len);
                        data.splice(pos.min(len)..end, o[a..b].iter().copied());
                    }
                }
            }
            11 => {
                // replace a run of digits with an edge number
                let digits: Vec<usize> = (0..len).filter(|&i| data[i].is_ascii_digit()).collect();
                if digits.is_empty() {
                    data.splice(pos..pos, rng.pick(NUMBERS).bytes());
                } else {
                    let s = *rng.pick(&digits);
                    let mut e = s;
                    while e < len && data[e].is_ascii_digit() {
                        e += 1;
                    }
                    data.splice(s..e, rng.pick(NUMBERS).bytes());
                }
            }
            12 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                // swap two ranges' contents by moving one byte run elsewhere
                if len > 2 {
                    let a = rng.below(len);
                    let k = rng.small((len - a).min(64)).max(1);
                    let chunk: Vec<u8> = data.drain(a..(a + k).min(len)).collect();
                    let p = rng.below(data.len() + 1);
                    data.splice(p..p, chunk);
                }
            }
        }
    }
    data.truncate(4 << 20);
}

/// Text-level havoc for inputs the parser takes as `&str`.
pub fn havoc_text(rng: &mut Rng, s: &str, dict: &[&str], others: &[Vec<u8>]) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    havoc(rng, &mut b, dict, others);
    b
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// A random node of `v`, to be mutated in place.
fn random_node<'a>(rng: &mut Rng, v: &'a mut Value) -> &'a mut Value {
    let total = count_nodes(v);
    let mut n = rng.below(total);
    // Walk again with a safe path: collect the index path first.
    fn path_to(v: &Value, n: &mut usize, out: &mut Vec<usize>) -> bool {
        if *n == 0 {
            return true;
        }
        *n -= 1;
        let children: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(m) => m.values().collect(),
            _ => return false,
        };
        for (i, c) in children.into_iter().enumerate() {
            out.push(i);
            if path_to(c, n, out) {
                return true;
            }
            out.pop();
        }
        false
    }
    let mut path = Vec::new();
    path_to(v, &mut n, &mut path);
    let mut cur = v;
    for i in path {
        cur = match cur {
            Value::Array(a) => &mut a[i],
            Value::Object(m) => m.values_mut().nth(i).expect("index path"),
            _ => unreachable!(),
        };
    }
    cur
}

fn random_subtree(rng: &mut Rng, v: &Value) -> Value {
    let mut c = v.clone();
    random_node(rng, &mut c).clone()
}

/// A random scalar: edge numbers, dictionary strings, unicode, NULs, quotes.
pub fn random_scalar(rng: &mut Rng, strings: &[&str]) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(1, 2)),
        2 => {
            let n: i64 = *rng.pick(&[0, 1, -1, 7, 100, 128, i32::MAX as i64, i64::MAX, i64::MIN]);
            Value::from(n)
        }
        3 => Value::from(*rng.pick(&[u64::MAX, 1 << 53, (1 << 53) + 1, 4294967296])),
        4 => Number::from_f64(*rng.pick(&[0.5, -0.0, 1e300, -1e-300, 1.5, 100.0]))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        5 => Value::String(rng.pick(UNICODE).repeat(1 + rng.small(40))),
        6 => Value::String(match rng.below(4) {
            0 => String::new(),
            1 => "\"'\\\0\n".into(),
            2 => "x".repeat(1 + rng.small(5000)),
            _ => rng.pick(NUMBERS).to_string(),
        }),
        _ if !strings.is_empty() => Value::String(rng.pick(strings).to_string()),
        _ => Value::String("x".into()),
    }
}

/// Mutate a JSON tree in place: change types, delete/insert/rename keys, splice subtrees from
/// other corpus members, replicate entries, nest deeply, and mutate strings at the byte level.
pub fn mutate_value(
    rng: &mut Rng,
    root: &mut Value,
    keys: &[&str],
    strings: &[&str],
    others: &[Value],
) {
    let n = 1 + if rng.chance(1, 3) {
        rng.below(8)
    } else {
        rng.below(2)
    };
    for _ in 0..n {
        let donor = if !others.is_empty() && rng.chance(1, 3) {
            {
                let o = rng.pick(others);
                Some(random_subtree(rng, o))
            }
        } else {
            None
        };
        // Keep inputs from snowballing (replicating an already replicated tree …).
        let big = count_nodes(root) > 20_000;
        let node = random_node(rng, root);
        match rng.below(12) {
            3 | 8 if big => *node = Value::Null,
            0 | 1 => *node = random_scalar(rng, strings),
            2 => {
                if let Some(d) = donor {
                    *node = d;
                }
            }
            3 => {
                // nest deeply
                let depth = 1 + rng.small(300);
                let mut v = node.take();
                let arr = rng.chance(1, 2);
                for _ in 0..depth {
                    v = if arr {
                        Value::Array(vec![v])
                    } else {
                        let mut m = Map::new();
                        m.insert(rng.pick(keys).to_string(), v);
                        Value::Object(m)
                    };
                }
                *node = v;
            }
            4 => *node = Value::Array(vec![node.take(), random_scalar(rng, strings)]),
            5 | 6 => match node {
                Value::Object(m) if !m.is_empty() && rng.chance(1, 2) => {
                    let k = m
                        .keys()
                        .nth(rng.below(m.len()))
                        .cloned()
                        .unwrap_or_default();
                    m.remove(&k);
                }
                Value::Object(m) => {
                    let v = donor.unwrap_or_else(|| random_scalar(rng, strings));
                    m.insert(rng.pick(keys).to_string(), v);
                }
                Value::Array(a) if !a.is_empty() && rng.chance(1, 2) => {
                    let i = rng.below(a.len());
                    a.remove(i);
                }
                Value::Array(a) => a.push(donor.unwrap_or_else(|| random_scalar(rng, strings))),
                other => {
                    let mut m = Map::new();
                    m.insert(rng.pick(keys).to_string(), other.take());
                    *other = Value::Object(m);
                }
            },
            7 => {
                // rename a key
                if let Value::Object(m) = node {
                    if !m.is_empty() {
                        let k = m
                            .keys()
                            .nth(rng.below(m.len()))
                            .cloned()
                            .unwrap_or_default();
                        let v = m.remove(&k).unwrap_or(Value::Null);
                        let new = match rng.below(4) {
                            0 => rng.pick(keys).to_string(),
                            1 => format!("{k}{}", rng.pick(UNICODE)),
                            2 => String::new(),
                            _ => format!("{k}.x"),
                        };
                        m.insert(new, v);
                    }
                }
            }
            8 => {
                // replicate an entry (many disks, partitions, LVs …)
                match node {
                    Value::Object(m) if !m.is_empty() => {
                        let k = m
                            .keys()
                            .nth(rng.below(m.len()))
                            .cloned()
                            .unwrap_or_default();
                        let v = m[&k].clone();
                        for j in 0..1 + rng.small(300) {
                            m.insert(format!("{k}{j}"), v.clone());
                        }
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let v = a[rng.below(a.len())].clone();
                        for _ in 0..1 + rng.small(300) {
                            a.push(v.clone());
                        }
                    }
                    _ => {}
                }
            }
            9 | 10 => {
                if let Value::String(s) = node {
                    let b = havoc_text(rng, s, strings, &[]);
                    *s = String::from_utf8_lossy(&b).into_owned();
                } else if let Value::Number(_) = node {
                    *node = serde_json::from_str(rng.word(NUMBERS)).unwrap_or(Value::Null);
                } else {
                    *node = random_scalar(rng, strings);
                }
            }
            _ => {
                // a string where a number was, and vice versa
                *node = match node.take() {
                    Value::Number(n) => Value::String(n.to_string()),
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    Value::Bool(b) => Value::String(if b { "yes".into() } else { "off".into() }),
                    v => Value::String(v.to_string()),
                };
            }
        }
    }
}

/// Render a tree as JSON (compact or pretty) or YAML.
pub fn render(rng: &mut Rng, v: &Value) -> Vec<u8> {
    match rng.below(3) {
        0 => serde_json::to_vec(v).unwrap_or_default(),
        1 => serde_json::to_vec_pretty(v).unwrap_or_default(),
        _ => serde_norway::to_string(v).unwrap_or_default().into_bytes(),
    }
}
