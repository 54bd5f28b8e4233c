//! The fuzz targets: for each parser of outside input, a generator (`gen_*`: an input from a
//! PRNG, starting from real inputs) and a check (`check_*`: run the parser and assert its
//! properties). Shared by the in-test fuzzer (`tests/fuzz.rs`) and the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`), which call the same checks.
#![allow(dead_code)]

use super::engine::{self, havoc, havoc_text, mutate_value, render, Rng};
use provision::cmdline::{self, ProvisionRequest, WipeForeign};
use provision::disks::plan::{self, Mode, PlanOptions};
use provision::disks::state::SystemState;
use provision::exit::{code_of, Code};
use provision::layout::{size, Layout};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The project root (this file is also compiled by the cargo-fuzz crate in `fuzz/`).
pub fn root() -> PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR"));
    if m.ends_with("fuzz") {
        m.parent().unwrap().to_path_buf()
    } else {
        m.to_path_buf()
    }
}

pub fn shared() -> PathBuf {
    root().join("../shared/testdata")
}

pub fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (shared test data must be beside the project)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

pub fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

// =============================================================================================
// Kernel command line.

pub const CMDLINE_SEEDS: &[&str] = &[
    "",
    "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=0b6e2f3c ro quiet homelab.provision_disks=rebuild-2026-11-22\n",
    "homelab.provision_disks homelab.wipe_foreign=nvme,hdd homelab.hostname=node-1\n",
    "homelab.keys_url=\"https://boot.homelab.tel/keys/{hostname}.tar.gz\" homelab.keys_sha256=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 BOOTIF=01-52-54-00-aa-bb-cc",
    "\"homelab.provision-disks=tok 1\" homelab.provision_disks=maybe -- homelab.provision_disks=1",
    "initrd=x homelab.provision_disks=yes homelab.provision_disks=0 homelab.wipe-foreign homelab.provison_disks=1",
    "site.provision_disks=on console=ttyS0,115200n8 homelab.hostname=-bad homelab.keys_url=ftp://x BOOTIF=zz",
];

pub const CMDLINE_DICT: &[&str] = &[
    "homelab.",
    "homelab.provision_disks",
    "homelab.provision-disks",
    "homelab.wipe_foreign",
    "homelab.wipe-foreign",
    "homelab.hostname",
    "homelab.keys_url",
    "homelab.keys_sha256",
    "BOOTIF",
    "BOOTIF=01-aa-bb-cc-dd-ee-ff",
    "=",
    "==",
    "\"",
    " ",
    "\t",
    "\n",
    "--",
    " -- ",
    "__",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "1",
    "0",
    "TRUE",
    "tok-1",
    "rebuild-2026-11-22",
    "maybe",
    "ture",
    "a,b",
    ",",
    "http://",
    "https://",
    "{hostname}",
    "\u{a0}",
    "\u{85}",
];

pub const PREFIXES: &[&str] = &["homelab", "site", "home-lab", "x_y", ""];

pub fn gen_cmdline(rng: &mut Rng) -> Vec<u8> {
    let others: Vec<Vec<u8>> = CMDLINE_SEEDS
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    // First byte picks the prefix (so a failure reproduces from the input alone).
    let mut out = vec![b'0' + rng.below(PREFIXES.len()) as u8];
    if rng.chance(1, 2) {
        let s = rng.pick(CMDLINE_SEEDS);
        out.extend(havoc_text(rng, s, CMDLINE_DICT, &others));
    } else {
        // Build from parameters: [quote]key[=[quote]value[quote]]
        let keys = [
            "provision_disks",
            "provision-disks",
            "wipe_foreign",
            "hostname",
            "keys_url",
            "keys_sha256",
            "provison_disks",
        ];
        let values = [
            "true",
            "1",
            "YES",
            "on",
            "0",
            "off",
            "tok1",
            "rebuild-2026-11-22",
            "maybe",
            "",
            "a b 1",
            "x\"y",
            "nvme,hdd",
            ",",
            "1.2.3",
            "ab:cd+ef_9",
            "-",
            "\u{a0}1",
        ];
        for _ in 0..1 + rng.small(8) {
            if !out.is_empty() {
                out.extend_from_slice(rng.pick(&[" ", "\t", "  ", "\n", " \u{a0}"]).as_bytes());
            }
            let q1 = rng.chance(1, 6);
            if q1 {
                out.push(b'"');
            }
            let prefix = if rng.chance(1, 8) {
                "other"
            } else {
                PREFIXES[(out[0] - b'0') as usize]
            };
            let key = if rng.chance(1, 10) {
                rng.pick(&["BOOTIF", "--", "__", "quiet"]).to_string()
            } else {
                format!("{prefix}.{}", rng.pick(&keys))
            };
            out.extend_from_slice(key.as_bytes());
            if rng.chance(4, 5) {
                out.push(b'=');
                let q2 = rng.chance(1, 5);
                if q2 {
                    out.push(b'"');
                }
                let v = if rng.chance(1, 4) {
                    {
                        let v0 = rng.pick(&values).to_string();
                        String::from_utf8_lossy(&havoc_text(rng, &v0, CMDLINE_DICT, &[]))
                            .into_owned()
                    }
                } else if rng.chance(1, 8) {
                    "t1".repeat(rng.small(80))
                } else {
                    rng.pick(&values).to_string()
                };
                out.extend_from_slice(v.as_bytes());
                if (q1 || q2) && rng.chance(3, 4) {
                    out.push(b'"');
                }
            } else if q1 && rng.chance(1, 2) {
                out.push(b'"');
            }
        }
        if rng.chance(1, 2) {
            out.push(b'\n');
        }
    }
    out
}

/// What DESIGN §4/§6.3 allow as a wipe-once token, written independently of the parser.
pub fn clean_token(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:_+-".contains(&b))
        && v.bytes().any(|b| b.is_ascii_digit())
}

pub fn clean_bool(v: &str) -> Option<bool> {
    let l = v.to_ascii_lowercase();
    if ["1", "yes", "true", "on"].contains(&l.as_str()) {
        Some(true)
    } else if ["0", "no", "false", "off"].contains(&l.as_str()) {
        Some(false)
    } else {
        None
    }
}

pub fn is_kernel_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

pub fn check_cmdline(input: &[u8]) -> &'static str {
    let (p, rest) = input.split_first().unwrap_or((&b'0', &[]));
    let prefix = PREFIXES[((*p).wrapping_sub(b'0') as usize) % PREFIXES.len()];
    let line = text(rest);
    let params = cmdline::parse_params(&line);
    for prm in &params {
        assert!(!prm.key.contains('-'), "key {:?} not normalised", prm.key);
    }
    // Without quotes, the kernel's rules are a plain split: check against that.
    if !line.contains('"') {
        let body = line.strip_suffix('\n').unwrap_or(&line);
        let mut want = Vec::new();
        for w in body.split(is_kernel_space).filter(|w| !w.is_empty()) {
            if w == "--" {
                break;
            }
            let (k, v) = match w.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (w, None),
            };
            want.push((k.replace('-', "_"), v));
        }
        let got: Vec<(String, Option<String>)> = params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        assert_eq!(
            got, want,
            "unquoted cmdline {line:?} split differently from the kernel's rules"
        );
    }
    let s = cmdline::settings(&line, prefix);
    let norm = prefix.replace('-', "_");
    let key = format!("{norm}.provision_disks");
    let last = params.iter().rev().find(|p| p.key == key);
    let bad_pd = s.bad.iter().any(|b| b.key == key);
    match &s.provision {
        ProvisionRequest::Always => {
            let v = last.expect("Always without the key").value.as_deref();
            assert!(
                v.is_none() || clean_bool(v.unwrap_or("")) == Some(true),
                "provision_disks={v:?} gave Always"
            );
        }
        ProvisionRequest::Token(t) => {
            let v = last.expect("Token without the key").value.as_deref();
            assert_eq!(v, Some(t.as_str()));
            assert!(
                clean_token(t) && clean_bool(t).is_none(),
                "token {t:?} is not a clean token"
            );
        }
        ProvisionRequest::No => {}
    }
    if let Some(p) = last {
        let clean = match p.value.as_deref() {
            None => true,
            Some(v) => clean_bool(v).is_some() || clean_token(v),
        };
        assert_eq!(
            !clean, bad_pd,
            "provision_disks={:?}: unclean values must be (only they are) reported bad",
            p.value
        );
        if !clean {
            assert_eq!(s.provision, ProvisionRequest::No);
            assert!(s.bad_destructive().count() > 0);
        }
    } else {
        assert_eq!(s.provision, ProvisionRequest::No);
        assert!(!bad_pd);
    }
    let wkey = format!("{norm}.wipe_foreign");
    if s.wipe_foreign == WipeForeign::All {
        let v = params
            .iter()
            .rev()
            .find(|p| p.key == wkey)
            .map(|p| p.value.as_deref());
        assert!(
            matches!(v, Some(None)) || matches!(v, Some(Some(x)) if clean_bool(x) == Some(true)),
            "wipe_foreign={v:?} gave All"
        );
    }
    if let Some(m) = &s.mac {
        assert!(
            m.len() == 17
                && m.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
                    b == b':'
                } else {
                    b.is_ascii_hexdigit() && !b.is_ascii_uppercase()
                }),
            "mac {m:?}"
        );
    }
    if let Some(h) = &s.keys_sha256 {
        assert!(
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    if let Some(h) = &s.hostname {
        assert!(cmdline::valid_hostname(h));
    }
    if let Some(u) = &s.keys_url {
        assert!(u.starts_with("http://") || u.starts_with("https://"));
        assert!(!u.chars().any(char::is_whitespace));
    }
    for b in &s.bad {
        let _ = b.to_string();
    }
    let _ = serde_json::to_string(&s).expect("settings serialise");
    match (&s.provision, s.bad_destructive().count()) {
        (ProvisionRequest::No, _) => "no",
        (_, 0) => "yes",
        _ => "bad",
    }
}

// =============================================================================================
// Sizes.

pub fn gen_size(rng: &mut Rng) -> Vec<u8> {
    let parts = [
        "",
        "0",
        "1",
        "5",
        "10",
        "100",
        "1024",
        "4096",
        "18446744073709551615",
        "99999999999999999999",
        "00",
        "0001",
    ];
    let fracs = [
        "",
        ".",
        ".5",
        ".0",
        ".123456789",
        ".9999999999999999",
        ".1234567890123",
        "..",
    ];
    let units = [
        "", "B", "K", "k", "KB", "KiB", "M", "MiB", "G", "g", "GB", "T", "TiB", "P", "PB", "E",
        "X", "%", "%FREE", "%VG", "%PVS", "%free", "%ORIGIN",
    ];
    let mut s = String::new();
    if rng.chance(1, 5) {
        s.push_str(rng.word(&["+", "-", " ", "\u{a0}", "\t"]));
    }
    s.push_str(rng.word(&parts));
    s.push_str(rng.word(&fracs));
    s.push_str(rng.word(&units));
    if rng.chance(1, 6) {
        s.push_str(rng.word(&[" ", "\n", "\u{3000}", "x", "."]));
    }
    if rng.chance(1, 3) {
        havoc_text(rng, &s, &["%", ".", "G", "0", "9", "-", "+", "FREE"], &[])
    } else {
        s.into_bytes()
    }
}

/// parse_bytes, recomputed in u128 from the canonical shape `digits[.digits]unit`.
pub fn bytes_oracle(s: &str) -> Option<Option<u64>> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u128 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        "P" | "PB" | "PIB" => 1 << 50,
        _ => return None,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if num.is_empty() || num == "." || frac.contains('.') {
        return None;
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().unwrap_or(u128::MAX)
    };
    if int > u64::MAX as u128 {
        return Some(None);
    }
    let f = &frac[..frac.len().min(9)];
    let fv: u128 = if f.is_empty() { 0 } else { f.parse().ok()? };
    let v = int * mult + fv * mult / 10u128.pow(f.len() as u32);
    Some(u64::try_from(v).ok())
}

pub fn check_size(input: &[u8]) -> &'static str {
    let s = text(input);
    let r = size::parse_bytes(&s);
    if let Some(want) = bytes_oracle(&s) {
        match want {
            Some(v) => assert_eq!(r, Ok(v), "parse_bytes({s:?})"),
            None => assert!(
                r.is_err(),
                "parse_bytes({s:?}) = {r:?}, but it overflows u64"
            ),
        }
    }
    if let Ok(lv) = size::LvSize::parse(&s) {
        let args = lv.lvcreate_args();
        assert_eq!(args.len(), 2);
        if let size::LvSize::Percent { percent, .. } = lv {
            assert!((1..=100).contains(&percent));
        }
    }
    let n = input.iter().fold(0u64, |a, &b| a.rotate_left(8) ^ b as u64);
    // Partition boundaries resolve against any disk without a panic; what is planned fits.
    use provision::disks::geometry::{self, DiskGeometry, TableFormat};
    let geo = DiskGeometry {
        size: n % (1 << 45),
        logical: if n & 1 == 0 { 512 } else { 4096 },
        physical: 4096,
        optimal_io: (n >> 8) % (1 << 26),
    };
    if let Ok(p) = size::GptPos::parse(&s) {
        let end = size::gpt_size("100M").unwrap();
        for parts in [vec![(&p, &end)], vec![(&end, &p), (&p, &p)]] {
            if let Ok(ext) = geometry::gpt_extents(&geo, &parts) {
                let (lo, hi) = geo.gpt_usable();
                assert!(ext
                    .iter()
                    .all(|e| e.first >= lo && e.last <= hi && e.first <= e.last));
            }
        }
    }
    let _ = size::gpt_size(&s);
    if let Ok(p) = size::PartedPos::parse(&s) {
        let end = size::PartedPos::parse("100%").unwrap();
        for f in [TableFormat::Msdos, TableFormat::Gpt] {
            if let Ok(ext) = geometry::table_extents(&geo, f, &[(&p, &end), (&p, &p)]) {
                assert!(ext
                    .iter()
                    .all(|e| e.first <= e.last && e.last < geo.sectors()));
            }
        }
    }
    assert!(!size::human(n).is_empty());
    if r.is_ok() {
        "ok"
    } else {
        "err"
    }
}

// =============================================================================================
// Layouts (YAML/JSON) → parse → plan against blank disks.

pub const LAYOUT_KEYS: &[&str] = &[
    "disk",
    "lvm_vg",
    "nodev",
    "ensure_dirs",
    "lvm",
    "mdadm",
    "zpool",
    "type",
    "device",
    "content",
    "partitions",
    "size",
    "start",
    "end",
    "priority",
    "label",
    "name",
    "format",
    "mountpoint",
    "mountOptions",
    "extraArgs",
    "vg",
    "lvs",
    "lvm_type",
    "pool",
    "select",
    "serial",
    "wwn",
    "model",
    "transport",
    "rotational",
    "fsType",
    "attributes",
    "uuid",
    "bootable",
    "part-type",
    "global_filter_reject",
    "mode",
    "owner",
    "group",
    "path",
    "discardPolicy",
    "randomEncryption",
    "efiGptPartitionFirst",
    "hybrid",
    "postCreateHook",
    "resumeDevice",
    "imageSize",
    "alignment",
    "fs-type",
    "flags",
];

pub const LAYOUT_STRINGS: &[&str] = &[
    "disk",
    "gpt",
    "table",
    "filesystem",
    "swap",
    "lvm_pv",
    "lvm_vg",
    "nodev",
    "zfs",
    "luks",
    "btrfs",
    "mdraid",
    "msdos",
    "100%",
    "100%FREE",
    "50%VG",
    "10%PVS",
    "0%",
    "101%",
    "0",
    "-0",
    "+1M",
    "1M",
    "500M",
    "512K",
    "1K",
    "50%",
    "1%",
    "1.5G",
    "32G",
    "1P",
    "16E",
    ".5",
    "5.",
    "-1G",
    " 1G ",
    "1G\0",
    "99999999999999999999T",
    "18446744073709551615",
    "ext4",
    "xfs",
    "vfat",
    "ext4;rm",
    "",
    "/",
    "/boot",
    "/home",
    "/var",
    "/a/../b",
    "relative",
    "/x\0y",
    "//",
    "/.",
    "/dev/sda",
    "/dev/vda",
    "/dev/nvme0n1",
    "/dev/disk/by-id/nvme-X",
    "/dev/../etc",
    "sda",
    "8300",
    "EF00",
    "EF02",
    "8E00",
    "8200",
    "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "zzzz",
    "thin-pool",
    "thinlv",
    "raid1",
    "linear",
    "mirror",
    "pool_host",
    "pool",
    "root",
    "-x",
    ".",
    "..",
    "snapshot1",
    "a b",
    "nvme",
    "sata",
    "virtio",
    "loop",
    "usb",
    "1T..4T",
    "..500G",
    "100G..",
    "4T..1T",
    "ABC*",
    "*",
    "0755",
    "0o777",
    "7777",
    "99",
    "r|^/dev/zd.*|",
    "r",
    "a|x|",
    "primary",
    "logical",
    "extended",
    "both",
    "once",
    "pages",
    "defaults",
    "noatime",
    "tmpfs",
    "none",
];

/// Corpus members that parse: mutated more often, so the planner sees many valid layouts.
pub fn layout_ok_values() -> &'static Vec<Value> {
    static V: OnceLock<Vec<Value>> = OnceLock::new();
    V.get_or_init(|| {
        let v: Vec<Value> = layout_corpus()
            .1
            .iter()
            .filter(|v| {
                provision::layout::parse::from_value(
                    "seed",
                    v,
                    &provision::disks::types::node_types(),
                )
                .is_ok()
            })
            .cloned()
            .collect();
        assert!(v.len() >= 10, "only {} seed layouts parse", v.len());
        v
    })
}

pub fn layout_corpus() -> &'static (Vec<String>, Vec<Value>) {
    static C: OnceLock<(Vec<String>, Vec<Value>)> = OnceLock::new();
    C.get_or_init(|| {
        let mut texts = Vec::new();
        for p in read_dir_sorted(&shared().join("disko-examples")) {
            if p.extension().is_some_and(|e| e == "json") {
                texts.push(std::fs::read_to_string(&p).unwrap());
            }
        }
        assert!(texts.len() >= 30, "disko examples missing");
        for p in read_dir_sorted(&root().join("layouts")) {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            if n.ends_with(".yaml") && !n.ends_with(".config.yaml") {
                texts.push(std::fs::read_to_string(&p).unwrap());
            }
        }
        texts.push(
            "disk:\n  a:\n    select: {serial: S1, transport: nvme, size: 1T..4T}\n    content:\n      type: table\n      format: gpt\n      partitions:\n        - {name: boot, start: 1M, end: 512M, bootable: true, content: {type: filesystem, format: vfat, mountpoint: /boot}}\n        - {name: pv, start: 512M, end: 100%, content: {type: lvm_pv, vg: vg0}}\n  b:\n    device: /dev/sdb\n    content:\n      type: table\n      partitions:\n        - {start: 1M, end: 50%, content: {type: swap, priority: 5, discardPolicy: once}}\n        - {start: 50%, end: 100%, content: {type: filesystem, format: ext4, mountpoint: /srv}}\nlvm_vg:\n  vg0:\n    type: lvm_vg\n    lvs:\n      tp: {size: 50%FREE, lvm_type: thin-pool}\n      t1: {size: 10G, lvm_type: thinlv, pool: tp, content: {type: filesystem, format: xfs, mountpoint: /data}}\n      r: {size: 100%FREE, content: {type: filesystem, format: ext4, mountpoint: /}}\nnodev:\n  /tmp: {fsType: tmpfs, mountOptions: [size=1G]}\nensure_dirs:\n  - {path: /srv/x, owner: root, group: root, mode: \"0750\"}\nlvm:\n  global_filter_reject: [\"r|^/dev/zd.*|\"]\n".into(),
        );
        let values = texts
            .iter()
            .filter_map(|t| serde_norway::from_str::<Value>(t).ok())
            .collect();
        (texts, values)
    })
}

pub fn gen_layout(rng: &mut Rng) -> Vec<u8> {
    let (texts, values) = layout_corpus();
    match rng.below(10) {
        // byte-level on the original text
        0 | 1 => {
            let others: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
            {
                let t = rng.pick(texts).clone();
                havoc_text(
                    rng,
                    &t,
                    &[
                        ":",
                        "\n  ",
                        "- ",
                        "{",
                        "}",
                        "[",
                        "]",
                        "\"",
                        "'",
                        "&a",
                        "*a",
                        "!!binary",
                        "<<: *a",
                        "? ",
                        "%YAML 1.2\n",
                        "---\n",
                        "\t",
                        "type: ",
                        "size: ",
                    ],
                    &others,
                )
            }
        }
        // tree-level, then rendered as JSON or YAML (sometimes byte-mutated after)
        _ => {
            let mut v = if rng.chance(2, 3) {
                rng.pick(layout_ok_values())
            } else {
                rng.pick(values)
            }
            .clone();
            mutate_value(rng, &mut v, LAYOUT_KEYS, LAYOUT_STRINGS, values);
            let mut out = render(rng, &v);
            if rng.chance(1, 6) {
                havoc(rng, &mut out, &[":", "\n", "\"", "{", "["], &[]);
            }
            out
        }
    }
}

pub const LAYOUT_FILE: &str = "/etc/provision/fuzz-layout.yaml";
pub const ROOTS: &[&str] = &[
    "disk",
    "lvm_vg",
    "nodev",
    "ensure_dirs",
    "lvm",
    "mdadm",
    "zpool",
    "bcachefs_filesystems",
    "bcachefs",
];

/// Does a layout problem say where it is: a path in the layout, or a line?
pub fn names_place(p: &str) -> bool {
    p.starts_with("line ")
        || p.starts_with("unknown top-level field")
        || p.starts_with("expected a mapping with disk/lvm_vg/nodev")
        || ROOTS.iter().any(|r| {
            p.strip_prefix(r)
                .is_some_and(|rest| rest.starts_with(['.', '[', ':']))
        })
}

pub fn settings_variants() -> &'static [cmdline::Settings] {
    static S: OnceLock<Vec<cmdline::Settings>> = OnceLock::new();
    S.get_or_init(|| {
        [
            "",
            "homelab.provision_disks",
            "homelab.provision_disks=tok-1 homelab.wipe_foreign",
            "homelab.provision_disks=maybe",
        ]
        .iter()
        .map(|c| cmdline::settings(c, "homelab"))
        .collect()
    })
}

/// Plan `layout` against `state` for each cmdline variant and check the plan's invariants.
pub fn plan_all(layout: &Layout, state: &SystemState) -> &'static str {
    let mut word = "planned";
    for s in settings_variants() {
        let opts = PlanOptions::default();
        match plan::plan(layout, state, s, &opts) {
            Ok(p) => {
                if p.mode != Mode::Provision {
                    assert!(
                        !p.actions.iter().any(|a| a.destructive),
                        "mode {:?} with destructive actions",
                        p.mode
                    );
                }
                if p.mode == Mode::Refused {
                    assert!(p.actions.is_empty(), "refused plan with actions");
                    assert!(!p.refusals.is_empty(), "refused plan without a refusal");
                }
                if !s.bad.is_empty() {
                    assert_eq!(
                        p.mode,
                        Mode::Refused,
                        "a bad provision_disks value must refuse"
                    );
                }
                assert_eq!(p.plan_hash.len(), 16);
                assert!(!plan::render_text(&p).is_empty());
                serde_json::to_string(&p).expect("plan serialises");
                if let Some(e) = provision::disks::plan_error(&p) {
                    assert!(matches!(
                        code_of(&e),
                        Code::Refused | Code::BadInput | Code::Missing
                    ));
                }
                if p.mode == Mode::Provision {
                    word = "planned-provision";
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                if code_of(&e) != Code::BadInput {
                    engine::note("plan error without the BadInput exit code", || msg.clone());
                }
                word = "plan-err";
            }
        }
    }
    word
}

pub fn check_layout(input: &[u8]) -> &'static str {
    let t = text(input);
    match provision::disks::types::parse_str(LAYOUT_FILE, &t) {
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error with no problem");
            for p in &e.problems {
                if names_place(p) {
                    continue;
                }
                // serde_norway gives some errors (several documents, …) without a location:
                // noted, not failed — the walker's own problems must always name their place.
                let yaml_level = !t.trim_start().starts_with('{')
                    && serde_norway::from_str::<Value>(&t).is_err()
                    && e.problems.len() == 1;
                assert!(yaml_level, "layout problem names no path or line: {p:?}");
                engine::note("YAML error without a line number", || p.clone());
            }
            let shown = e.to_string();
            assert!(shown.starts_with(LAYOUT_FILE), "{shown}");
            "err"
        }
        Ok(l) => {
            let _ = l.hash();
            let _ = provision::disks::lvm::lvm_devices_config(&l, Some("2.03.11"));
            let mut word = "ok";
            for size in [0, 1 << 30, u64::MAX] {
                let st = SystemState::blank_for(&l, size);
                word = plan_all(&l, &st);
            }
            word
        }
    }
}

// =============================================================================================
// Config file.

pub const CONFIG_SEED: &str = r#"cmdline_prefix: homelab
report: /run/provision/report.json
disks:
  layout: ganeti-node.yaml
  lvm_conf: /etc/lvm/lvmlocal.conf
keys:
  url: "https://boot.homelab.tel/keys/{hostname}-{mac}.tar.gz"
  sha256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
  ca_file: /etc/provision/ca.pem
  insecure: false
  connect_timeout_s: 5
  request_timeout_s: 30.5
  deadline_s: 300
  initial_backoff_ms: 500
  max_backoff_ms: 30000
  max_retries: 10
  max_bundle_bytes: 1048576
  max_members: 16
  members:
    root_privkey: {path: /root/.ssh/id_ed25519, mode: "0600"}
    host_privkey: {path: /etc/ssh/ssh_host_rsa_key, optional: true}
    ./extra/k: {path: /etc/ssh/extra, mode: "0o400"}
secrets:
  identity_paths: [/etc/ssh/ssh_host_ed25519_key, keys/age.txt]
  secrets_dir: /run/agenix
  secrets_mount_point: /run/agenix.d
  secrets:
    - name: db/password
      file: /etc/secrets/db.age
      path: /var/lib/db/pw
      owner: postgres
      group: 0
      mode: "0440"
      symlink: false
      optional: true
    - {name: wifi, file: wifi.age}
"#;

pub const CONFIG_KEYS: &[&str] = &[
    "cmdline_prefix",
    "report",
    "disks",
    "layout",
    "lvm_conf",
    "keys",
    "url",
    "sha256",
    "ca_file",
    "insecure",
    "connect_timeout_s",
    "request_timeout_s",
    "deadline_s",
    "initial_backoff_ms",
    "max_backoff_ms",
    "max_retries",
    "max_bundle_bytes",
    "max_members",
    "members",
    "path",
    "mode",
    "optional",
    "secrets",
    "identity_paths",
    "secrets_dir",
    "secrets_mount_point",
    "name",
    "file",
    "owner",
    "group",
    "symlink",
    "layuot",
];

pub const CONFIG_STRINGS: &[&str] = &[
    "homelab",
    "home lab",
    "a=b",
    "x.",
    "",
    "/root/.ssh/id_ed25519",
    "../x",
    "/a/../b",
    "0600",
    "0o600",
    "600",
    "07777",
    "0777",
    "644",
    "8",
    "http://{hostname}/k",
    "https://x/{mac}",
    "https://x/{nope}",
    "https://x/}",
    "https://x/{",
    "ftp://x",
    "http://",
    "root",
    "0",
    "-1",
    "x.age",
    "/",
    "a//b",
    "./a",
    ".provision-tmp-1",
    "NaN",
    "1e999",
];

pub fn config_values() -> &'static Vec<Value> {
    static V: OnceLock<Vec<Value>> = OnceLock::new();
    V.get_or_init(|| {
        let mut v: Vec<Value> = vec![serde_norway::from_str(CONFIG_SEED).unwrap()];
        for p in read_dir_sorted(&root().join("layouts")) {
            if p.to_string_lossy().ends_with(".config.yaml") {
                v.push(serde_norway::from_str(&std::fs::read_to_string(p).unwrap()).unwrap());
            }
        }
        v
    })
}

pub fn gen_config(rng: &mut Rng) -> Vec<u8> {
    let values = config_values();
    if rng.chance(1, 4) {
        let seeds = [CONFIG_SEED.as_bytes().to_vec()];
        return havoc_text(
            rng,
            CONFIG_SEED,
            &[
                ":", "\n  ", "- ", "{", "}", "\"", "&a", "*a", "!!str", "<<: *a", "~",
            ],
            &seeds,
        );
    }
    let mut v = rng.pick(values).clone();
    mutate_value(rng, &mut v, CONFIG_KEYS, CONFIG_STRINGS, values);
    render(rng, &v)
}

pub const CONFIG_FILE: &str = "/etc/provision/config.yaml";

pub fn check_config(input: &[u8]) -> &'static str {
    let t = text(input);
    match provision::config::parse(Path::new(CONFIG_FILE), &t) {
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.starts_with(CONFIG_FILE),
                "config error does not name the file: {msg}"
            );
            assert_eq!(code_of(&e), Code::BadInput, "{msg}");
            let after = &msg[CONFIG_FILE.len()..];
            let has_line =
                after.starts_with(':') && after[1..].starts_with(|c: char| c.is_ascii_digit());
            if !has_line && !after.starts_with(": cmdline_prefix") {
                engine::note("config error without a line number", || msg.clone());
            }
            "err"
        }
        Ok(cfg) => {
            let _ = cfg.prefix();
            if let Some(k) = &cfg.keys {
                for p in provision::keys::check_config(k) {
                    assert!(p.contains("keys"), "keys problem without the field: {p}");
                }
            }
            if let Some(s) = &cfg.secrets {
                for sec in &s.secrets {
                    let _ = provision::secrets::check_name(&sec.name);
                    if let Some(m) = &sec.mode {
                        if let Ok(m) = provision::secrets::parse_mode(m) {
                            assert!(m <= 0o777);
                        }
                    }
                }
            }
            "ok"
        }
    }
}

// =============================================================================================
// State snapshots (`--state FILE`), planned against the shipped layouts.

pub fn seed_layouts() -> &'static Vec<Layout> {
    static L: OnceLock<Vec<Layout>> = OnceLock::new();
    L.get_or_init(|| {
        let (texts, _) = layout_corpus();
        texts
            .iter()
            .filter_map(|t| provision::disks::types::parse_str("seed", t).ok())
            .collect()
    })
}

pub const RICH_STATE: &str = r#"{
  "version": 1,
  "disks": [
    {"name": "nvme0n1", "path": "/dev/nvme0n1", "maj_min": "259:0", "size": 2000398934016,
     "model": "Samsung SSD 980 PRO 2TB ", "serial": "S1", "wwn": "eui.0025", "transport": "nvme",
     "links": ["/dev/disk/by-id/nvme-X"], "fs_type": "LVM2_member", "holders": ["dm-0", "dm-1"]},
    {"name": "sda", "path": "/dev/sda", "maj_min": "8:0", "size": 4000787030016, "rotational": true,
     "transport": "sata", "pt_type": "gpt", "holders": [],
     "partitions": [
       {"name": "sda1", "path": "/dev/sda1", "maj_min": "8:1", "number": 1, "size": 104857600, "start": 1048576,
        "part_label": "disk-hdd-ESP", "fs_type": "vfat", "uuid": "AB-CD"},
       {"name": "sda2", "path": "/dev/sda2", "maj_min": "8:2", "number": 2, "size": 3999000000000, "start": 105906176,
        "part_label": "disk-hdd-pv", "fs_type": "LVM2_member", "holders": ["dm-2", "dm-3"]}]}
  ],
  "virtual_devices": [
    {"name": "dm-0", "maj_min": "253:0", "dm_name": "pool_gnt-disk0", "holders": ["drbd0"], "slaves": ["nvme0n1"]},
    {"name": "dm-1", "maj_min": "253:1", "dm_name": "pool_gnt-tp_tdata", "holders": ["dm-4"], "slaves": ["nvme0n1"]},
    {"name": "dm-2", "maj_min": "253:2", "dm_name": "pool_host-var", "holders": [], "slaves": ["sda2"]},
    {"name": "dm-3", "maj_min": "253:3", "dm_name": "pool_host-swap", "holders": [], "slaves": ["sda2"]},
    {"name": "dm-4", "maj_min": "253:4", "dm_name": "pool_gnt-tp", "holders": [], "slaves": ["dm-1"]},
    {"name": "drbd0", "maj_min": "147:0", "holders": [], "slaves": ["dm-0"]}
  ],
  "pvs": [{"pv_name": "/dev/nvme0n1", "vg_name": "pool_gnt", "pv_size": 2000398934016},
          {"pv_name": "/dev/sda2", "vg_name": "pool_host", "pv_size": 3999000000000},
          {"pv_name": "/dev/sdz", "vg_name": "pool_host"}],
  "vgs": [{"vg_name": "pool_gnt", "vg_tags": ["provision.layout=0011223344556677", "provision.token=tok-1"], "vg_size": 2000398934016, "vg_free": 1000, "lv_count": 2, "pv_count": 1},
          {"vg_name": "pool_host", "vg_tags": [], "vg_size": 3999000000000, "vg_free": 0, "lv_count": 3, "pv_count": 2}],
  "lvs": [{"vg_name": "pool_gnt", "lv_name": "disk0", "lv_size": 10737418240, "lv_attr": "-wi-ao----", "segtype": "linear", "maj_min": "253:0"},
          {"vg_name": "pool_host", "lv_name": "var", "lv_size": 1, "lv_attr": "-wi-ao----", "maj_min": "253:2"},
          {"vg_name": "pool_host", "lv_name": "swap", "lv_attr": "-wi-a-----", "maj_min": "253:3"}],
  "mounts": [{"maj_min": "253:2", "source": "/dev/mapper/pool_host-var", "target": "/var", "fs_type": "ext4"},
             {"maj_min": "8:1", "source": "/dev/sda1", "target": "/boot/efi", "fs_type": "vfat"}],
  "swaps": [{"path": "/dev/dm-3", "maj_min": "253:3"}],
  "lvm_version": "2.03.16"
}"#;

pub fn state_values() -> &'static Vec<Value> {
    static V: OnceLock<Vec<Value>> = OnceLock::new();
    V.get_or_init(|| {
        let mut v = vec![serde_json::from_str(RICH_STATE).unwrap()];
        for l in seed_layouts().iter().take(8) {
            v.push(serde_json::to_value(SystemState::blank_for(l, 1 << 40)).unwrap());
        }
        v.push(serde_json::json!({ "stage": "status", "state": v[0].clone() }));
        v
    })
}

pub const STATE_KEYS: &[&str] = &[
    "version",
    "disks",
    "virtual_devices",
    "pvs",
    "vgs",
    "lvs",
    "mounts",
    "swaps",
    "lvm_version",
    "name",
    "path",
    "maj_min",
    "size",
    "rotational",
    "removable",
    "read_only",
    "model",
    "serial",
    "wwn",
    "transport",
    "links",
    "pt_type",
    "fs_type",
    "label",
    "uuid",
    "holders",
    "partitions",
    "number",
    "start",
    "part_label",
    "dm_name",
    "slaves",
    "pv_name",
    "vg_name",
    "pv_size",
    "vg_tags",
    "vg_size",
    "vg_free",
    "lv_count",
    "pv_count",
    "lv_name",
    "lv_size",
    "lv_attr",
    "segtype",
    "pool_lv",
    "source",
    "target",
    "state",
];

pub const STATE_STRINGS: &[&str] = &[
    "/dev/sda",
    "/dev/vda",
    "/dev/nvme0n1",
    "/dev/sda2",
    "sda",
    "vda",
    "dm-0",
    "dm-1",
    "drbd0",
    "md0",
    "253:0",
    "8:0",
    "254:0",
    "LVM2_member",
    "ext4",
    "drbd",
    "gpt",
    "dos",
    "pool_host",
    "pool_gnt",
    "pool_state",
    "-wi-ao----",
    "-wi-a-----",
    "",
    "o",
    "provision.token=tok-1",
    "pool_host-var",
    "pool--x-y",
    "2.03.11",
    "2.03.16",
    "nvme",
    "loop",
    "disk-hdd-ESP",
];

pub fn gen_state(rng: &mut Rng) -> Vec<u8> {
    let values = state_values();
    let mut v = rng.pick(values).clone();
    mutate_value(rng, &mut v, STATE_KEYS, STATE_STRINGS, values);
    let mut out = if rng.chance(1, 2) {
        serde_json::to_vec(&v).unwrap()
    } else {
        serde_json::to_vec_pretty(&v).unwrap()
    };
    if rng.chance(1, 8) {
        havoc(rng, &mut out, &["\"", ":", ",", "{", "}", "[", "]"], &[]);
    }
    out
}

pub fn check_state(input: &[u8]) -> &'static str {
    let path = std::env::temp_dir().join(format!(
        "provision-fuzz-state-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, input).unwrap();
    let r = provision::disks::load_state(&path);
    let _ = std::fs::remove_file(&path);
    match r {
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.starts_with(&path.display().to_string()),
                "state error does not name the file: {msg}"
            );
            assert_eq!(code_of(&e), Code::BadInput, "{msg}");
            "err"
        }
        Ok(st) => {
            let mut word = "ok";
            for l in seed_layouts().iter().step_by(4) {
                word = plan_all(l, &st);
            }
            word
        }
    }
}

// =============================================================================================
// Key bundles.

/// Fixtures made once (ssh-keygen keys, age files encrypted to them) and kept in the test
/// tmpdir, so every run fuzzes the same bytes.
pub fn fixture(name: &str, make: impl FnOnce() -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    let dir = engine::tmpdir().join("fuzz-fixtures");
    let p = dir.join(name);
    if let Ok(b) = std::fs::read(&p) {
        return Some(b);
    }
    let b = make()?;
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &b).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    Some(b)
}

pub fn ssh_keygen(kind: &str) -> Option<Vec<u8>> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("k");
    let mut c = std::process::Command::new("ssh-keygen");
    c.args(["-q", "-N", "", "-C", "fuzz@test", "-t", kind]);
    if kind == "rsa" {
        c.args(["-b", "1024"]);
    }
    match c.arg("-f").arg(&p).status() {
        Ok(s) if s.success() => std::fs::read(&p).ok(),
        _ => {
            eprintln!("fuzz: ssh-keygen -t {kind} unavailable; fuzzing without such a key");
            None
        }
    }
}

/// A deterministic ed25519 key (from a fixed seed), in OpenSSH format.
pub fn ed25519_key() -> ssh_key::PrivateKey {
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
    ssh_key::PrivateKey::new(ssh_key::private::KeypairData::Ed25519(kp), "fuzz@test").unwrap()
}

pub fn bundle_keys() -> &'static Vec<Vec<u8>> {
    static K: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    K.get_or_init(|| {
        let mut v = vec![ed25519_key()
            .to_openssh(ssh_key::LineEnding::LF)
            .unwrap()
            .as_bytes()
            .to_vec()];
        for kind in ["rsa", "ecdsa"] {
            if let Some(k) = fixture(&format!("key-{kind}"), || ssh_keygen(kind)) {
                v.push(k);
            }
        }
        v
    })
}

/// A raw tar header: any name (≤100 bytes), any type byte, GNU format.
pub fn tar_header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_mode(0o600);
    h.set_size(size);
    h.as_old_mut().linkflag[0] = kind;
    h.set_cksum();
    *h.as_bytes()
}

pub fn tar_push(out: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8], link: &[u8]) {
    out.extend_from_slice(&tar_header(name, kind, data.len() as u64, link));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

pub const MEMBER_NAMES: &[&str] = &[
    "root_privkey",
    "host_privkey",
    "./root_privkey",
    "./host_privkey",
    "extra",
    "dir/",
    "/root_privkey",
    "../root_privkey",
    "a/../root_privkey",
    "root_privkey/..",
    ".",
    "./",
    "",
    "//root_privkey",
    "./.",
    "..",
    "root_privkey/",
    "dir/root_privkey",
    "/etc/shadow",
    "root_privkey\u{feff}",
    ".\\root_privkey",
];

/// A structured bundle: entries with names from the dictionary (sometimes via a PAX `path`
/// record or a GNU long name), types from every tar type, key or junk data. First byte 0 =
/// the rest is a tar stream to gzip; 1 = the rest is the gzip file itself.
pub fn gen_bundle(rng: &mut Rng) -> Vec<u8> {
    let keys = bundle_keys();
    let mut tar = Vec::new();
    let n = 1 + rng.small(6);
    for _ in 0..n {
        let mut name = rng.pick(MEMBER_NAMES).to_string();
        if rng.chance(1, 10) {
            name = format!("{}{}", "d/".repeat(1 + rng.small(80)), name);
        }
        let kind = if rng.chance(2, 3) {
            b'0'
        } else {
            *rng.pick(b"\x0001234567gSVDMN5I\xff")
        };
        let mut data = match rng.below(6) {
            0 => Vec::new(),
            1 => b"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n".to_vec(),
            2 => {
                let mut k = rng.pick(keys).clone();
                havoc(
                    rng,
                    &mut k,
                    &["-----", "openssh-key-v1", "\n", "A", "="],
                    keys,
                );
                k
            }
            _ => rng.pick(keys).clone(),
        };
        if kind == b'5' && rng.chance(1, 2) {
            data.clear();
        }
        match rng.below(8) {
            0 => {
                // PAX path record overrides the header name
                let rec = {
                    let body = format!(" path={name}\n");
                    let mut len = body.len() + 1;
                    if (len + 1).to_string().len() > len.to_string().len() {
                        len += 1;
                    }
                    let len = body.len() + len.to_string().len();
                    format!("{len}{body}")
                };
                tar_push(&mut tar, b"PaxHeaders/x", b'x', rec.as_bytes(), b"");
                tar_push(&mut tar, b"innocent", kind, &data, b"/etc/shadow");
            }
            1 => {
                // GNU long name
                let mut long = name.clone().into_bytes();
                long.push(0);
                tar_push(&mut tar, b"././@LongLink", b'L', &long, b"");
                tar_push(&mut tar, b"innocent", kind, &data, b"/etc/shadow");
            }
            _ => tar_push(&mut tar, name.as_bytes(), kind, &data, b"/etc/shadow"),
        }
    }
    tar.extend_from_slice(&[0u8; 1024]);
    match rng.below(4) {
        0 => {
            let mut gz = gzip(&tar);
            havoc(rng, &mut gz, &["\x1f", "\x08"], &[]);
            let mut v = vec![1];
            v.extend(gz);
            v
        }
        1 => {
            havoc(
                rng,
                &mut tar,
                &[
                    "ustar",
                    "ustar  \0",
                    "0000644\0",
                    "root_privkey",
                    "../",
                    "/",
                ],
                &[],
            );
            let mut v = vec![0];
            v.extend(tar);
            v
        }
        _ => {
            let mut v = vec![0];
            v.extend(tar);
            v
        }
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What tar-rs itself sees in the archive (independently of `check`): whether any member it
/// yields before the first error has an absolute or `..` path, or is a link or device.
pub fn tar_has_bad_member(tar_bytes: &[u8]) -> bool {
    let mut a = tar::Archive::new(tar_bytes);
    let Ok(entries) = a.entries() else {
        return false;
    };
    for e in entries {
        let Ok(e) = e else { return false };
        let p = e.path_bytes();
        let bad_path = p.first() == Some(&b'/') || p.split(|b| *b == b'/').any(|c| c == b"..");
        use tar::EntryType as T;
        let bad_kind = matches!(
            e.header().entry_type(),
            T::Symlink | T::Link | T::Char | T::Block | T::Fifo
        );
        if bad_path || bad_kind {
            return true;
        }
    }
    false
}

pub fn check_bundle(input: &[u8]) -> &'static str {
    let (mode, body) = input.split_first().unwrap_or((&1, &[]));
    let gz = if *mode == 0 {
        gzip(body)
    } else {
        body.to_vec()
    };
    let wanted = [
        provision::keys::bundle::Wanted {
            member: "root_privkey".into(),
            optional: false,
        },
        provision::keys::bundle::Wanted {
            member: "host_privkey".into(),
            optional: true,
        },
    ];
    let limits = provision::keys::bundle::Limits {
        max_bytes: 1 << 20,
        max_members: 16,
    };
    let r = provision::keys::bundle::check(&gz, &wanted, limits);
    let mut tar_bytes = Vec::new();
    let gz_ok = flate2::read::GzDecoder::new(&gz[..])
        .take(limits.max_bytes + 1)
        .read_to_end(&mut tar_bytes)
        .is_ok();
    match r {
        Ok(b) => {
            assert!(gz_ok, "Ok for a corrupt gzip stream");
            assert!(
                !tar_has_bad_member(&tar_bytes),
                "Ok for a bundle with an absolute, `..` or link member"
            );
            assert!(
                b.keys.iter().any(|k| k.member == "root_privkey"),
                "required member missing but Ok"
            );
            for k in &b.keys {
                assert!(wanted.iter().any(|w| w.member == k.member));
                let info = provision::keys::bundle::parse_private_key(&k.data)
                    .expect("returned key parses");
                assert_eq!(info, k.info);
                assert!(
                    !format!("{k:?}").contains("PRIVATE KEY"),
                    "key bytes in Debug output"
                );
            }
            "ok"
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert_eq!(code_of(&e), Code::Verify, "{msg}");
            assert!(msg.starts_with("key bundle rejected: "), "{msg}");
            assert!(
                !msg.contains("BEGIN OPENSSH PRIVATE KEY") && !msg.contains("b3BlbnNzaC1rZXktdjEA"),
                "key bytes in an error: {msg}"
            );
            "err"
        }
    }
}

// =============================================================================================
// age files.

pub struct AgeCorpus {
    files: Vec<Vec<u8>>,
    ids: provision::secrets::identities::Identities,
    _dir: tempfile::TempDir,
}

pub fn age_corpus() -> &'static AgeCorpus {
    static C: OnceLock<AgeCorpus> = OnceLock::new();
    C.get_or_init(|| {
        let mut files = Vec::new();
        let mut x25519: Vec<String> = Vec::new();
        for p in read_dir_sorted(&shared().join("age-cctv")) {
            if p.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            let Some(split) = raw.windows(2).position(|w| w == b"\n\n") else {
                continue;
            };
            let header = String::from_utf8_lossy(&raw[..split]).into_owned();
            let mut body = raw[split + 2..].to_vec();
            for line in header.lines() {
                if let Some(id) = line.strip_prefix("identity: ") {
                    if id.starts_with("AGE-SECRET-KEY-1") && !x25519.contains(&id.to_string()) {
                        x25519.push(id.to_string());
                    }
                }
                if line == "compressed: zlib" {
                    let mut d = Vec::new();
                    flate2::read::ZlibDecoder::new(&body[..])
                        .read_to_end(&mut d)
                        .unwrap();
                    body = d;
                }
            }
            // The multi-megabyte stream vectors take seconds each in a debug build; the CCTV
            // test runs them, the fuzzer mutates the small ones.
            if body.len() <= 256 << 10 {
                files.push(body);
            }
        }
        assert!(files.len() >= 100, "CCTV vectors missing");
        let dir = tempfile::tempdir().unwrap();
        let idf = dir.path().join("age.txt");
        std::fs::write(&idf, x25519.join("\n") + "\n").unwrap();
        let sshf = dir.path().join("ssh_host_ed25519_key");
        let key = ed25519_key();
        std::fs::write(
            &sshf,
            key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        // Files encrypted to the ssh key and armored, made once and kept.
        let pubkey = key.public_key().to_openssh().unwrap();
        if let Some(f) = fixture("age-ssh-ed25519", || {
            let r: age::ssh::Recipient = pubkey.parse().ok()?;
            age::encrypt(&r, b"fuzz secret\n").ok()
        }) {
            files.push(f);
        }
        if let Some(f) = fixture("age-ssh-armored", || {
            let r: age::ssh::Recipient = pubkey.parse().ok()?;
            age::encrypt_and_armor(&r, &[0x5a; 70_000])
                .ok()
                .map(String::into_bytes)
        }) {
            files.push(f);
        }
        let ids = provision::secrets::identities::Identities::load(&[idf, sshf], false)
            .unwrap_or_else(|e| panic!("identities: {e:?}"));
        AgeCorpus {
            files,
            ids,
            _dir: dir,
        }
    })
}

pub const AGE_DICT: &[&str] = &[
    "age-encryption.org/v1\n",
    "-> X25519 ",
    "-> scrypt ",
    "-> ssh-ed25519 ",
    "-> ssh-rsa ",
    "-> mlkem768x25519 ",
    "---",
    "--- ",
    "\n",
    "\r\n",
    "-----BEGIN AGE ENCRYPTED FILE-----\n",
    "\n-----END AGE ENCRYPTED FILE-----\n",
    "AAAA",
    "==",
    "+/",
    " 18",
    " 64",
    "-> ",
];

pub fn gen_age(rng: &mut Rng) -> Vec<u8> {
    let c = age_corpus();
    let mut f = rng.pick(&c.files).clone();
    if rng.chance(1, 3) {
        // line-level: delete, duplicate or swap header lines
        let mut lines: Vec<Vec<u8>> = f
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        let hdr = lines
            .iter()
            .position(|l| l.starts_with(b"---"))
            .map(|i| i + 1)
            .unwrap_or(lines.len())
            .max(1);
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(hdr.min(lines.len()).max(1));
            if i >= lines.len() {
                break;
            }
            match rng.below(3) {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let l = lines[i].clone();
                    for _ in 0..1 + rng.small(200) {
                        lines.insert(i, l.clone());
                    }
                }
                _ => {
                    let j = rng.below(lines.len());
                    lines.swap(i, j);
                }
            }
        }
        f = lines.concat();
    }
    if rng.chance(3, 4) {
        havoc(rng, &mut f, AGE_DICT, &c.files);
    }
    f
}

pub fn check_age(input: &[u8]) -> &'static str {
    use provision::secrets::decrypt;
    let c = age_corpus();
    let _ = decrypt::stanza_types(input);
    let mut out = Vec::new();
    match decrypt::decrypt_to(input, &c.ids, &mut out) {
        Ok(n) => {
            assert_eq!(n as usize, out.len());
            "ok"
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with(e.kind.as_str()));
            match e.kind {
                decrypt::FailureKind::NoMatch => "no-match",
                decrypt::FailureKind::Unsupported => "unsupported",
                decrypt::FailureKind::Header => "header",
                decrypt::FailureKind::Mac => "mac",
                decrypt::FailureKind::Payload => "payload",
                decrypt::FailureKind::Armor => "armor",
                decrypt::FailureKind::Io => "io",
            }
        }
    }
}

// =============================================================================================
// mountinfo, /proc/swaps and lvm JSON reports.

pub const MOUNTINFO: &str =
    "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro\n\
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
40 22 253:2 / /var/lib/with\\040space rw,relatime shared:30 - ext4 /dev/mapper/pool_host-var rw\n\
41 22 0:50 / /run/agenix.d rw,nosuid,nodev,relatime shared:31 - ramfs none rw,mode=751\n\
42 22 0:51 / /mnt/tab\\011and\\134backslash rw - tmpfs tmpfs rw\n";

pub const SWAPS: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
/dev/dm-3                               partition\t33554428\t0\t\t-2\n\
/swap\\040file                             file\t\t1048572\t\t0\t\t-3\n";

pub fn gen_proc(rng: &mut Rng) -> Vec<u8> {
    let seeds = [MOUNTINFO.as_bytes().to_vec(), SWAPS.as_bytes().to_vec()];
    let s = if rng.chance(1, 2) { MOUNTINFO } else { SWAPS };
    havoc_text(
        rng,
        s,
        &[
            "\\040", "\\011", "\\134", "\\777", "\\400", "\\", " - ", " ", "\n", "\\0", "\\12",
        ],
        &seeds,
    )
}

pub fn check_proc(input: &[u8]) -> &'static str {
    use provision::disks::discover;
    let t = text(input);
    let lines = t.lines().count();
    let m = discover::parse_mountinfo(&t);
    assert!(m.len() <= lines);
    let s = discover::parse_swaps(&t);
    assert!(s.len() <= lines);
    if m.is_empty() {
        "none"
    } else {
        "some"
    }
}

pub const LVM_REPORTS: &[&str] = &[
    r#"{"report": [{"pv": [{"pv_name": "/dev/sda2", "vg_name": "pool_host", "pv_size": "3999000000000B"}, {"pv_name": "/dev/nvme0n1", "vg_name": "", "pv_size": "2000398934016"}]}]}"#,
    r#"{"report": [{"vg": [{"vg_name": "pool_host", "vg_tags": "provision.layout=0011,provision.token=tok-1", "vg_size": "3999000000000", "vg_free": "0", "lv_count": "3", "pv_count": "1"}]}]}"#,
    r#"{"report": [{"lv": [{"vg_name": "pool_host", "lv_name": "var", "lv_size": "1073741824", "lv_attr": "-wi-ao----", "segtype": "linear", "pool_lv": "", "lv_kernel_major": "253", "lv_kernel_minor": "2"}, {"vg_name": "pool_gnt", "lv_name": "tp", "lv_size": "1e3", "lv_attr": "twi---tz--", "segtype": "thin-pool", "pool_lv": "", "lv_kernel_major": "-1", "lv_kernel_minor": "-1"}]}], "log": []}"#,
];

pub fn gen_lvm(rng: &mut Rng) -> Vec<u8> {
    let values: Vec<Value> = LVM_REPORTS
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let which = rng.below(3);
    let mut v = values[which].clone();
    mutate_value(
        rng,
        &mut v,
        &[
            "report",
            "pv",
            "vg",
            "lv",
            "pv_name",
            "vg_name",
            "pv_size",
            "vg_tags",
            "lv_size",
            "lv_kernel_major",
            "lv_kernel_minor",
            "lv_attr",
        ],
        &[
            "1e400",
            "-1",
            "18446744073709551616B",
            "NaN",
            "inf",
            "253",
            "",
            ",,,",
            "2.03.16",
        ],
        &values,
    );
    let mut out = vec![b'0' + which as u8];
    out.extend(serde_json::to_vec(&v).unwrap());
    if rng.chance(1, 8) {
        havoc(rng, &mut out, &["\"", "{", "}"], &[]);
    }
    out
}

pub fn check_lvm(input: &[u8]) -> &'static str {
    use provision::system::{Output, RecordingRunner};
    let (w, json) = input.split_first().unwrap_or((&b'0', &[]));
    let key = ["pv", "vg", "lv"][(w.wrapping_sub(b'0') as usize) % 3];
    let rows = provision::disks::discover::report_rows(json, key);
    let runner = RecordingRunner::new();
    runner.on(
        &["lvm", "version"],
        Output::ok(format!(
            "  LVM version:     {}\n",
            text(&json[..json.len().min(12)])
        )),
    );
    runner.on(&["lvm", "fullreport"], Output::ok(json.to_vec()));
    let mut st = SystemState::default();
    let r = provision::disks::discover::read_lvm(
        &runner,
        &|_| "devices { }".into(),
        &mut st,
        provision::disks::discover::LvmRead::Full,
    );
    if let Ok(rows) = &rows {
        assert!(
            r.is_ok(),
            "report_rows parsed it but read_lvm failed: {r:?}"
        );
        let _ = rows.len();
    } else {
        assert!(r.is_err());
    }
    let _ =
        provision::disks::lvm::lvm_devices_config(&Layout::default(), st.lvm_version.as_deref());
    if rows.is_ok() {
        "ok"
    } else {
        "err"
    }
}
