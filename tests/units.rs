//! `cargo test` entry for tests/units.sh: `systemd-analyze verify` of the units in units/
//! (in a throw-away root with a stub /usr/bin/provision), plus a negative control.
//! Skips, saying so, on a machine without systemd-analyze.

use std::process::Command;

#[test]
fn units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze not found (install systemd to run this test)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/units.sh");
    let out = Command::new("sh")
        .arg(script)
        .output()
        .expect("run tests/units.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "tests/units.sh failed:\n{text}");
}
