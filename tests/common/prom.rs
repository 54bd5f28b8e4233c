//! The metrics files read back by Prometheus's own parser of the text exposition format:
//! Python's `prometheus_client.parser.text_string_to_metric_families` (Debian package
//! `python3-prometheus-client`, installed by tools/install-deps). Included with `#[path]` by
//! the tests that run a stage through the binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(open(sys.argv[1], encoding="utf-8").read()):
    if f.name in out:
        sys.exit("family %s twice" % f.name)
    out[f.name] = {"type": f.type, "help": f.documentation,
                   "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

/// A python3 with `prometheus_client`, or why there is none (the caller skips, saying so).
pub fn parser() -> Result<String, String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import prometheus_client.parser"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(String::from)
        .ok_or_else(|| {
            "no python3 with prometheus_client (Debian package python3-prometheus-client; \
             tools/install-deps installs it)"
                .into()
        })
}

/// One metric family as the parser read it.
#[derive(Debug, Clone)]
pub struct Family {
    pub kind: String,
    pub help: String,
    /// (sample name, labels, value)
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// The families of a metrics file, by name. Panics (failing the test) when the parser rejects
/// the file, or when a family's HELP or TYPE is not the one the binary declares for it.
pub fn parse(python: &str, file: &Path) -> BTreeMap<String, Family> {
    let out = Command::new(python)
        .args(["-c", PARSE])
        .arg(file)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}: the exposition-format parser refused it: {}\n{text}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut fams = BTreeMap::new();
    for (name, f) in v.as_object().unwrap() {
        let decl = provision::metrics::text::FAMILIES
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{}: undeclared family {name}", file.display()));
        assert_eq!(f["type"], decl.kind, "{name}");
        assert_eq!(f["help"], decl.help, "{name}");
        let samples = f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s[1]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                (
                    s[0].as_str().unwrap().to_string(),
                    labels,
                    s[2].as_f64().unwrap(),
                )
            })
            .collect();
        fams.insert(
            name.clone(),
            Family {
                kind: f["type"].as_str().unwrap().into(),
                help: f["help"].as_str().unwrap().into(),
                samples,
            },
        );
    }
    fams
}

/// The value of the sample of `family` with exactly `labels` (None: no such sample).
pub fn value(
    fams: &BTreeMap<String, Family>,
    family: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fams.get(family)?
        .samples
        .iter()
        .find(|(n, l, _)| n == family && *l == want)
        .map(|(_, _, v)| *v)
}

/// What every stage's file holds, checked: the build info (version, and the layout hash when
/// given), success and exit code as given, a duration. Returns the last success time, if any.
pub fn check_stage(
    fams: &BTreeMap<String, Family>,
    stage: &str,
    exit_code: i32,
    layout_hash: Option<&str>,
) -> Option<f64> {
    let s = [("stage", stage)];
    let mut info = vec![("stage", stage), ("version", env!("CARGO_PKG_VERSION"))];
    if let Some(h) = layout_hash {
        info.push(("layout_hash", h));
    }
    assert_eq!(
        value(fams, "provision_build_info", &info),
        Some(1.0),
        "{fams:?}"
    );
    let ok = if exit_code == 0 { 1.0 } else { 0.0 };
    assert_eq!(value(fams, "provision_stage_success", &s), Some(ok));
    assert_eq!(
        value(fams, "provision_stage_exit_code", &s),
        Some(f64::from(exit_code))
    );
    let d = value(fams, "provision_stage_duration_seconds", &s).unwrap();
    assert!(d >= 0.0, "{d}");
    let last = value(fams, "provision_stage_last_success_timestamp_seconds", &s);
    assert!(
        exit_code != 0 || last.is_some(),
        "a success has a time: {fams:?}"
    );
    last
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
