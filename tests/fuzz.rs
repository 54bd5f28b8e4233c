//! Fuzzing of every parser of outside input (DESIGN §10 tier 4, issue 9): the kernel cmdline,
//! the config, layouts (YAML/JSON, then planned against blank disks), state snapshots, the key
//! bundle, age files, sizes, mountinfo/swaps and lvm JSON reports.
//!
//! A seeded mutational fuzzer (`tests/fuzz/engine.rs`) starts from real inputs — disko's
//! examples and the CCTV age vectors in `../shared/testdata/` (read there, never copied), the
//! shipped layouts, cmdlines and bundles made here — and mutates them at the byte level and,
//! for YAML/JSON, at the tree level. Besides "does not panic", each target checks properties
//! of the parser's answer (see each `check_*`).
//!
//! CI runs a fixed number of iterations per target with a fixed seed (deterministic).
//! By hand, longer: `PROVISION_FUZZ_SECS=600 cargo test --release --test fuzz -- --nocapture`
//! (each target runs that long; `--test-threads=1` to run them one after another), and
//! `PROVISION_FUZZ_SEED=…` for another seed. A failure prints the seed and iteration to rerun it
//! with `PROVISION_FUZZ_ITER=…`, the shrunk input, and saves it under
//! `$CARGO_TARGET_TMPDIR/fuzz-crashes/`.

#[path = "fuzz/engine.rs"]
mod engine;
#[path = "fuzz/targets.rs"]
mod targets;

use engine::Target;
use targets::*;

#[test]
fn fuzz_cmdline() {
    Target {
        name: "cmdline",
        ci_iters: 100_000,
        text: true,
        gen: &gen_cmdline,
        check: &check_cmdline,
    }
    .run();
}

#[test]
fn fuzz_sizes() {
    Target {
        name: "sizes",
        ci_iters: 100_000,
        text: true,
        gen: &gen_size,
        check: &check_size,
    }
    .run();
}

#[test]
fn fuzz_layout() {
    Target {
        name: "layout",
        ci_iters: 6_000,
        text: true,
        gen: &gen_layout,
        check: &check_layout,
    }
    .run();
}

#[test]
fn fuzz_config() {
    Target {
        name: "config",
        ci_iters: 8_000,
        text: true,
        gen: &gen_config,
        check: &check_config,
    }
    .run();
}

#[test]
fn fuzz_state() {
    Target {
        name: "state",
        ci_iters: 3_000,
        text: true,
        gen: &gen_state,
        check: &check_state,
    }
    .run();
}

#[test]
fn fuzz_bundle() {
    Target {
        name: "bundle",
        ci_iters: 10_000,
        text: false,
        gen: &gen_bundle,
        check: &check_bundle,
    }
    .run();
}

/// The tar tricks the bundle generator uses, spelled out once so a regression in any of them
/// is a plain failure here rather than a fuzz find.
#[test]
fn bundle_rejects_pax_and_longname_escapes() {
    let key = bundle_keys()[0].clone();
    let wanted = [provision::keys::bundle::Wanted {
        member: "root_privkey".into(),
        optional: false,
    }];
    let limits = provision::keys::bundle::Limits {
        max_bytes: 1 << 20,
        max_members: 16,
    };
    for bad in ["/root_privkey", "../root_privkey", "a/../root_privkey"] {
        let mut t = Vec::new();
        let body = format!(" path={bad}\n");
        let rec = format!(
            "{}{body}",
            body.len() + 2 + usize::from(body.len() + 2 >= 100)
        );
        tar_push(&mut t, b"PaxHeaders/x", b'x', rec.as_bytes(), b"");
        tar_push(&mut t, b"root_privkey", b'0', &key, b"");
        tar_push(&mut t, b"root_privkey", b'0', &key, b"");
        t.extend_from_slice(&[0; 1024]);
        assert!(
            tar_has_bad_member(&t),
            "{bad}: the PAX record was not applied"
        );
        assert!(
            provision::keys::bundle::check(&gzip(&t), &wanted, limits).is_err(),
            "pax {bad}"
        );
        let mut t = Vec::new();
        let mut long = bad.as_bytes().to_vec();
        long.push(0);
        tar_push(&mut t, b"././@LongLink", b'L', &long, b"");
        tar_push(&mut t, b"root_privkey", b'0', &key, b"");
        t.extend_from_slice(&[0; 1024]);
        assert!(
            tar_has_bad_member(&t),
            "{bad}: the long name was not applied"
        );
        assert!(
            provision::keys::bundle::check(&gzip(&t), &wanted, limits).is_err(),
            "longname {bad}"
        );
    }
    let mut t = Vec::new();
    tar_push(&mut t, b"root_privkey", b'0', &key, b"");
    t.extend_from_slice(&[0; 1024]);
    assert!(provision::keys::bundle::check(&gzip(&t), &wanted, limits).is_ok());
}

#[test]
fn fuzz_age() {
    Target {
        name: "age",
        ci_iters: 2_400,
        text: false,
        gen: &gen_age,
        check: &check_age,
    }
    .run();
}

#[test]
fn fuzz_mountinfo_swaps() {
    Target {
        name: "mountinfo",
        ci_iters: 60_000,
        text: true,
        gen: &gen_proc,
        check: &check_proc,
    }
    .run();
}

#[test]
fn fuzz_lvm_reports() {
    Target {
        name: "lvm",
        ci_iters: 15_000,
        text: false,
        gen: &gen_lvm,
        check: &check_lvm,
    }
    .run();
}
