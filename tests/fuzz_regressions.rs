//! Minimal inputs the fuzzer (`tests/fuzz.rs`) found, kept as plain regression tests.

use provision::cmdline::{self, ProvisionRequest};
use provision::disks::discover;
use provision::disks::plan::{self, PlanOptions};
use provision::disks::state::SystemState;

/// mountinfo / /proc/swaps: `\700` is not an octal byte escape; unescaping it overflowed a u8
/// (a panic in debug builds). Found by the `mountinfo` target, shrunk to `"\n\\700"`.
#[test]
fn octal_escape_above_377_is_kept_literally() {
    let swaps = discover::parse_swaps("Filename Type\n/swap\\700file partition 1 0 -2\n");
    assert_eq!(swaps, vec!["/swap\\700file".to_string()]);
    let swaps = discover::parse_swaps("\n\\700");
    assert_eq!(swaps, vec!["\\700".to_string()]);
    let m = discover::parse_mountinfo("36 1 8:1 / /mnt/a\\400b rw - ext4 /dev/sd\\777 rw\n");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].target, "/mnt/a\\400b");
    assert_eq!(m[0].source, "/dev/sd\\777");
    // Real escapes still work.
    let m = discover::parse_mountinfo("36 1 8:1 / /mnt/a\\040b rw - ext4 /dev/sda1 rw\n");
    assert_eq!(m[0].target, "/mnt/a b");
}

/// Kernel cmdline: only a literal bare `--` hands the rest to init (the kernel compares before
/// treating `-` and `_` alike); a bare `__` is an ordinary parameter. Found by the `cmdline`
/// target's comparison with a plain split.
#[test]
fn bare_double_underscore_does_not_end_the_cmdline() {
    let p = cmdline::parse_params("quiet __ homelab.provision_disks=tok-1\n");
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["quiet", "__", "homelab.provision_disks"]);
    let s = cmdline::settings("quiet __ homelab.provision_disks=tok-1", "homelab");
    assert_eq!(s.provision, ProvisionRequest::Token("tok-1".into()));
    // `--` (bare, or quoted as the kernel allows) still ends it.
    for line in [
        "quiet -- homelab.provision_disks=1",
        "quiet \"--\" homelab.provision_disks=1",
    ] {
        let s = cmdline::settings(line, "homelab");
        assert_eq!(s.provision, ProvisionRequest::No, "{line}");
    }
}

/// A `table` with `format: gpt` whose partition ends in the first MiB (`end: 512K` rounds to
/// 0): the sgdisk end position was computed as `end/1024 - 1` and underflowed (a panic in debug
/// builds, a huge bogus number in release). It is now refused like the msdos case (positions
/// are parted's: `512K` is 512 kB, before a start of `1M`).
#[test]
fn gpt_table_partition_ending_in_the_first_mib_is_refused() {
    // (Not `0%`: parted gives a percentage a fuzz of half a percent, 5 MiB here, so it ends at
    // the first aligned MiB.)
    for end in ["512K", "0", "1K"] {
        let text = format!(
            "disk:\n  d:\n    device: /dev/vda\n    content:\n      type: table\n      format: gpt\n      partitions:\n        - {{name: p, start: 1M, end: \"{end}\", content: {{type: filesystem, format: ext4, mountpoint: /}}}}\n"
        );
        let l = provision::disks::types::parse_str("t.yaml", &text)
            .unwrap_or_else(|e| panic!("{end}: {e}"));
        let st = SystemState::blank_for(&l, 1 << 30);
        let s = cmdline::settings("homelab.provision_disks", "homelab");
        let e = plan::plan(&l, &st, &s, &PlanOptions::default()).unwrap_err();
        assert!(
            format!("{e:#}").contains("is not after its start"),
            "{end}: {e:#}"
        );
    }
}

/// `SystemState::blank_for` named disk `i` `vd{'a' + i}`, which overflowed at the 160th disk
/// (and gave odd names from the 27th). It now names them as the kernel does: vda…vdz, vdaa….
#[test]
fn blank_for_many_disks() {
    let mut text = String::from("disk:\n");
    for i in 0..300 {
        text.push_str(&format!(
            "  d{i}:\n    select: {{serial: S{i}}}\n    content: {{type: filesystem, format: ext4}}\n"
        ));
    }
    let l = provision::disks::types::parse_str("t.yaml", &text).unwrap();
    let st = SystemState::blank_for(&l, 1 << 30);
    let names: Vec<&str> = st.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names[0], "vda");
    assert_eq!(names[25], "vdz");
    assert_eq!(names[26], "vdaa");
    assert_eq!(names[27], "vdab");
    assert_eq!(names[299], "vdkn");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 300, "names must be distinct");
    let s = cmdline::settings("homelab.provision_disks", "homelab");
    plan::plan(&l, &st, &s, &PlanOptions::default()).unwrap();
}

/// A damaged tar header made of key bytes: tar's error quotes the header's fields and path,
/// which carried key material into the "key bundle rejected" message (found by the `bundle`
/// target's "no key bytes in errors" property). The message keeps tar's wording only.
#[test]
fn corrupt_tar_error_quotes_no_bundle_bytes() {
    use std::io::Write;
    let secret = b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQy";
    let mut tar = vec![0u8; 1024];
    // A "header" block of base64 key text: bad checksum field, a path full of key bytes.
    for (i, b) in tar[..512].iter_mut().enumerate() {
        *b = secret[i % secret.len()];
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let wanted = [provision::keys::bundle::Wanted {
        member: "root_privkey".into(),
        optional: false,
    }];
    let limits = provision::keys::bundle::Limits {
        max_bytes: 1 << 20,
        max_members: 16,
    };
    let e = provision::keys::bundle::check(&gz, &wanted, limits).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.starts_with("key bundle rejected: corrupt tar archive"),
        "{msg}"
    );
    assert!(!msg.contains("b3Bl") && !msg.contains("AAAA"), "{msg}");
}

/// A state snapshot where an LV's dm device lists the same DRBD holder several times: the
/// recursive busy check dedups the whole reason list and left it shorter than the index the
/// caller then sliced from (`range start index … out of range`). Found by the `state` target.
#[test]
fn busy_check_with_repeated_drbd_holders() {
    let layout_text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/ganeti-node.yaml"),
    )
    .unwrap();
    let l = provision::disks::types::parse_str("ganeti-node.yaml", &layout_text).unwrap();
    let state: SystemState = serde_json::from_value(serde_json::json!({
        "disks": [
            {"name": "nvme0n1", "path": "/dev/nvme0n1", "maj_min": "259:0", "size": 1u64 << 40,
             "fs_type": "LVM2_member", "holders": ["dm-0"]},
            {"name": "sda", "path": "/dev/sda", "maj_min": "8:0", "size": 1u64 << 40}
        ],
        "virtual_devices": [
            {"name": "dm-0", "maj_min": "253:0", "dm_name": "pool_gnt-disk0",
             "holders": ["drbd0", "drbd0", "drbd0", "drbd0"]}
        ],
        "pvs": [{"pv_name": "/dev/nvme0n1", "vg_name": "pool_gnt"}],
        "vgs": [{"vg_name": "pool_gnt"}],
        "lvs": [{"vg_name": "pool_gnt", "lv_name": "disk0", "lv_attr": "-wi-ao----"}]
    }))
    .unwrap();
    let s = cmdline::settings("homelab.provision_disks=tok-1", "homelab");
    let p = plan::plan(&l, &state, &s, &PlanOptions::default()).unwrap();
    assert_eq!(p.mode, plan::Mode::Refused);
    assert!(
        p.refusals.iter().any(|r| r.reason.contains("DRBD")),
        "{:?}",
        p.refusals
    );
}
