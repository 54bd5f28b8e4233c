//! The Prometheus text exposition format (version 0.0.4), the one node_exporter's textfile
//! collector reads: `# HELP`/`# TYPE` lines, then `name{label="value"} number` samples. Every
//! family is declared once in [`FAMILIES`], so its HELP and TYPE lines are the same in every
//! stage's file (node_exporter refuses a name whose HELP or TYPE differs between files).

use std::fmt::Write as _;

/// One metric family: its name, type and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    /// `gauge` for all of ours: each file holds the last run's values, not running totals.
    pub kind: &'static str,
    pub help: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "gauge",
        help,
    }
}

pub const BUILD_INFO: Family = gauge(
    "provision_build_info",
    "The provision build that wrote this file (always 1); layout_hash is the disks layout's hash, on the disks stage's file.",
);
pub const SUCCESS: Family = gauge(
    "provision_stage_success",
    "1 if the stage's last run succeeded, 0 if it failed.",
);
pub const EXIT_CODE: Family = gauge(
    "provision_stage_exit_code",
    "Exit code of the stage's last run (0 on success; the codes are listed by provision --help).",
);
pub const DURATION: Family = gauge(
    "provision_stage_duration_seconds",
    "Wall-clock duration of the stage's last run, in seconds.",
);
pub const LAST_SUCCESS: Family = gauge(
    "provision_stage_last_success_timestamp_seconds",
    "Unix time (seconds) the stage last succeeded; kept from the previous file when the last run failed.",
);
pub const DISKS_MODE: Family = gauge(
    "provision_disks_mode",
    "1 for the mode of the disks stage's last plan (mount-only, provision, refused), 0 for the others.",
);
pub const STEPS_DONE: Family = gauge(
    "provision_disks_steps_done",
    "Steps of the disks plan the last run carried out that changed the machine.",
);
pub const STEPS_ALREADY_DONE: Family = gauge(
    "provision_disks_steps_already_done",
    "Steps of the disks plan the last run found already done (nothing to change).",
);
pub const STEPS_DESTRUCTIVE: Family = gauge(
    "provision_disks_steps_destructive",
    "Destructive steps (wiping, partitioning, formatting) the last disks run carried out.",
);
pub const KEY_FETCH_ATTEMPTS: Family = gauge(
    "provision_keys_fetch_attempts",
    "Requests the keys stage's last run made for the key bundle (1 when the first one succeeded).",
);
pub const SECRETS_DECRYPTED: Family = gauge(
    "provision_secrets_decrypted",
    "Secrets the stage's last run decrypted.",
);
pub const SECRETS_FAILED: Family = gauge(
    "provision_secrets_failed",
    "Secrets that failed in the stage's last run, optional ones included (agenix: decrypting or writing; sops: decrypting or reading their key).",
);

/// Every family, in the order a file lists them.
pub const FAMILIES: &[Family] = &[
    BUILD_INFO,
    SUCCESS,
    EXIT_CODE,
    DURATION,
    LAST_SUCCESS,
    DISKS_MODE,
    STEPS_DONE,
    STEPS_ALREADY_DONE,
    STEPS_DESTRUCTIVE,
    KEY_FETCH_ATTEMPTS,
    SECRETS_DECRYPTED,
    SECRETS_FAILED,
];

/// A label value as the format quotes it: backslash, double quote and line feed escaped.
pub fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text as the format wants it: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others in Rust's shortest round-trip decimal
/// form (never an exponent, which Prometheus would read too, but people grep these files).
fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// Builds one file: families in the order added, each with its HELP and TYPE lines once.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Add `family` with its samples (labels, value). A family with no samples keeps its HELP
    /// and TYPE lines, so every file of a stage declares the same families.
    pub fn family(&mut self, f: Family, samples: &[(Vec<(&str, &str)>, f64)]) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(self.out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value) in samples {
            self.out.push_str(f.name);
            if !labels.is_empty() {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                    .collect();
                let _ = write!(self.out, "{{{}}}", pairs.join(","));
            }
            let _ = writeln!(self.out, " {}", number(*value));
        }
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The value of `family`'s first sample in a file this module wrote (`None` when there is
/// none or it does not parse): how a failed run carries the last success time over.
pub fn read_value(text: &str, family: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
        let mut e = Exposition::default();
        e.family(SUCCESS, &[(vec![("stage", "d\"1\\\n")], 1.0)]);
        assert_eq!(
            e.finish().lines().last().unwrap(),
            r#"provision_stage_success{stage="d\"1\\\n"} 1"#
        );
    }

    #[test]
    fn numbers_and_empty_families() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(4.0), "4");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1764560983.5), "1764560983.5");
        assert_eq!(number(f64::INFINITY), "+Inf");
        let mut e = Exposition::default();
        e.family(LAST_SUCCESS, &[])
            .family(KEY_FETCH_ATTEMPTS, &[(vec![], 2.0)]);
        let text = e.finish();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# ")).count(),
            4,
            "{text}"
        );
        assert!(
            text.ends_with("\nprovision_keys_fetch_attempts 2\n"),
            "{text}"
        );
    }

    #[test]
    fn read_value_finds_the_family_not_a_longer_name() {
        let text = "# HELP provision_stage_success x\nprovision_stage_success_other 7\n\
                    provision_stage_success{stage=\"keys\"} 0\n";
        assert_eq!(read_value(text, "provision_stage_success"), Some(0.0));
        assert_eq!(
            read_value("provision_x 1\n", "provision_stage_success"),
            None
        );
        assert_eq!(read_value("provision_x{a=\"b\"} zz\n", "provision_x"), None);
    }

    #[test]
    fn names_follow_the_naming_guide() {
        for f in FAMILIES {
            assert!(f.name.starts_with("provision_"), "{}", f.name);
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{}",
                f.name
            );
            // No counters here: a `_total` suffix would claim one.
            assert!(!f.name.ends_with("_total"), "{}", f.name);
            assert_eq!(FAMILIES.iter().filter(|g| g.name == f.name).count(), 1);
        }
    }
}
