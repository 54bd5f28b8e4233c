//! The canonical rendering of steps, version 1 (ARCHITECTURE.md §2.5): the bytes the plan hash is
//! taken over, written by hand so that reshaping [`Step`] moves no reviewed hash.
//!
//! Version 1 is compact JSON `{"actions":[…],"mode":"…","refusals":[{"disk":…,"reason":…}]}`
//! with every object's keys sorted, each step as the flat record the planner's one `Action`
//! struct had before the steps were typed: `argv`, `content`, `description`, `destructive`,
//! `device`, `fs_type`, `group`, `mode` (octal text, `"0644"`), `op`, `options`, `owner`,
//! `stdin`, `table` (`kind`, `partitions` of `name`, `number`, `size`, `start`), `target`;
//! absent ones omitted. Strings are escaped as serde_json does. `chain` is not rendered. The
//! `--output json` form of a step ([`Serialize`]) is the same record.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write;

use super::{fsck_argv, Effect, PlannedTable, Step};

/// One field's value in the record.
enum Value<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    List(Cow<'a, [String]>),
    Table(&'a PlannedTable),
}

fn text(s: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(s))
}

impl Step {
    /// The step as version 1's record, keys sorted.
    fn record(&self) -> Vec<(&'static str, Value<'_>)> {
        use Value::*;
        let mut v: Vec<(&'static str, Value)> = vec![
            ("description", Str(Cow::Borrowed(&self.description))),
            ("destructive", Bool(self.destructive)),
            ("op", Str(Cow::Borrowed(self.op.as_str()))),
        ];
        match &self.effect {
            Effect::Run {
                argv,
                stdin,
                device,
            } => {
                v.push(("argv", List(Cow::Borrowed(argv))));
                if let Some(s) = stdin {
                    v.push(("stdin", text(s)));
                }
                if let Some(d) = device {
                    v.push(("device", text(d)));
                }
            }
            Effect::WriteFile {
                path,
                content,
                mode,
            } => v.extend([
                ("target", text(path)),
                ("content", text(content)),
                ("mode", Str(Cow::Owned(format!("{mode:04o}")))),
            ]),
            Effect::WaitDevice { path } => v.push(("device", text(path))),
            Effect::Fsck { device, fs_type } => v.extend([
                ("argv", List(Cow::Owned(fsck_argv(device)))),
                ("device", text(device)),
                ("fs_type", text(fs_type)),
            ]),
            Effect::Mount {
                source,
                target,
                fs_type,
                options,
            } => v.extend([
                ("device", text(source)),
                ("target", text(target)),
                ("fs_type", text(fs_type)),
                ("options", text(&options.text)),
            ]),
            Effect::Swapon { device, options } => {
                v.extend([("device", text(device)), ("options", text(&options.text))])
            }
            Effect::EnsureDir {
                path,
                owner,
                group,
                mode,
            } => v.extend([
                ("target", text(path)),
                ("owner", text(owner)),
                ("group", text(group)),
                ("mode", Str(Cow::Owned(format!("{mode:04o}")))),
            ]),
            Effect::VerifyTable { disk, expect } => {
                v.extend([("device", text(disk)), ("table", Table(expect))])
            }
        }
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

/// One step in canonical rendering version 1.
pub fn step_v1(step: &Step) -> String {
    let mut o = String::new();
    write_step(&mut o, step);
    o
}

/// A whole plan in canonical rendering version 1: `mode` as the plan says it (`mount-only`),
/// `refusals` as (subject, reason).
pub fn plan_v1(mode: &str, steps: &[Step], refusals: &[(&str, &str)]) -> String {
    let mut o = String::from("{\"actions\":[");
    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        write_step(&mut o, s);
    }
    o.push_str("],\"mode\":");
    write_str(&mut o, mode);
    o.push_str(",\"refusals\":[");
    for (i, (disk, reason)) in refusals.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str("{\"disk\":");
        write_str(&mut o, disk);
        o.push_str(",\"reason\":");
        write_str(&mut o, reason);
        o.push('}');
    }
    o.push_str("]}");
    o
}

fn write_step(o: &mut String, step: &Step) {
    o.push('{');
    for (i, (k, v)) in step.record().iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        write_str(o, k);
        o.push(':');
        match v {
            Value::Str(s) => write_str(o, s),
            Value::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
            Value::List(l) => write_list(o, l),
            Value::Table(t) => write_table(o, t),
        }
    }
    o.push('}');
}

fn write_list(o: &mut String, l: &[String]) {
    o.push('[');
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        write_str(o, x);
    }
    o.push(']');
}

fn write_table(o: &mut String, t: &PlannedTable) {
    o.push_str("{\"kind\":");
    write_str(o, &t.kind);
    o.push_str(",\"partitions\":[");
    for (i, p) in t.partitions.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        if let Some(n) = &p.name {
            o.push_str("\"name\":");
            write_str(o, n);
            o.push(',');
        }
        let _ = write!(
            o,
            "\"number\":{},\"size\":{},\"start\":{}}}",
            p.number, p.size, p.start
        );
    }
    o.push_str("]}");
}

/// A JSON string as serde_json writes one: `"` and `\` escaped, the control characters as
/// `\b \f \n \r \t` or `\u00xx`, everything else (non-ASCII, DEL) as it is.
fn write_str(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

/// `--output json` shows a step as its version-1 record.
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let rec = self.record();
        let mut m = ser.serialize_map(Some(rec.len()))?;
        for (k, v) in &rec {
            match v {
                Value::Str(s) => m.serialize_entry(k, s)?,
                Value::Bool(b) => m.serialize_entry(k, b)?,
                Value::List(l) => m.serialize_entry(k, l)?,
                Value::Table(t) => m.serialize_entry(k, t)?,
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disks::step::{wait, MountOptions, Op, PlannedPartition, SwapOptions};

    fn every_kind() -> Vec<Step> {
        let mut mkfs = Step::run(
            Op::new("mkfs"),
            true,
            "formatting \"x\"\\y\ttab",
            vec!["mkfs.ext4".into(), "-L".into(), "é\u{1}\u{7f}".into()],
        )
        .on("/dev/vda1");
        mkfs.chain = Some(3);
        vec![
            Step::new(
                Op::WRITE_FILE,
                false,
                "w",
                Effect::WriteFile {
                    path: "/etc/lvm/lvmlocal.conf".into(),
                    content: "devices {\n}\n".into(),
                    mode: 0o644,
                },
            ),
            Step::run(Op::PARTITION, true, "p", vec!["sfdisk".into()])
                .on("/dev/vda")
                .with_stdin("label: dos\n".into()),
            Step::run(Op::new("vg-create"), true, "v", vec!["lvm".into()]),
            mkfs,
            wait("/dev/vda1"),
            Step::new(
                Op::new("fsck"),
                false,
                "f",
                Effect::Fsck {
                    device: "/dev/vda1".into(),
                    fs_type: "ext4".into(),
                },
            ),
            Step::new(
                Op::MOUNT,
                false,
                "m",
                Effect::Mount {
                    source: "/dev/vda1".into(),
                    target: "/data".into(),
                    fs_type: "ext4".into(),
                    options: MountOptions::parse(&["noatime".into(), "umask=077".into()]),
                },
            ),
            Step::new(
                Op::new("swapon"),
                false,
                "s",
                Effect::Swapon {
                    device: "/dev/vda2".into(),
                    options: SwapOptions::parse("pri=5").unwrap(),
                },
            ),
            Step::new(
                Op::ENSURE_DIR,
                false,
                "e",
                Effect::EnsureDir {
                    path: "/data/x".into(),
                    owner: "root".into(),
                    group: "adm".into(),
                    mode: 0o2750,
                },
            ),
            Step::new(
                Op::VERIFY_TABLE,
                false,
                "t",
                Effect::VerifyTable {
                    disk: "/dev/vda".into(),
                    expect: PlannedTable {
                        kind: "gpt".into(),
                        partitions: vec![
                            PlannedPartition {
                                number: 1,
                                start: 1 << 20,
                                size: 1 << 30,
                                name: Some("disk-a-ESP".into()),
                            },
                            PlannedPartition {
                                number: 2,
                                start: 2 << 30,
                                size: 512,
                                name: None,
                            },
                        ],
                    },
                },
            ),
        ]
    }

    /// Version 1 is these bytes: a change here moves every reviewed plan hash.
    #[test]
    fn version_1_bytes() {
        let v: Vec<String> = every_kind().iter().map(step_v1).collect();
        let want = [
            r#"{"content":"devices {\n}\n","description":"w","destructive":false,"mode":"0644","op":"write-file","target":"/etc/lvm/lvmlocal.conf"}"#,
            r#"{"argv":["sfdisk"],"description":"p","destructive":true,"device":"/dev/vda","op":"partition","stdin":"label: dos\n"}"#,
            r#"{"argv":["lvm"],"description":"v","destructive":true,"op":"vg-create"}"#,
            "{\"argv\":[\"mkfs.ext4\",\"-L\",\"é\\u0001\u{7f}\"],\"description\":\"formatting \\\"x\\\"\\\\y\\ttab\",\"destructive\":true,\"device\":\"/dev/vda1\",\"op\":\"mkfs\"}",
            r#"{"description":"waiting for /dev/vda1","destructive":false,"device":"/dev/vda1","op":"wait-device"}"#,
            r#"{"argv":["e2fsck","-p","/dev/vda1"],"description":"f","destructive":false,"device":"/dev/vda1","fs_type":"ext4","op":"fsck"}"#,
            r#"{"description":"m","destructive":false,"device":"/dev/vda1","fs_type":"ext4","op":"mount","options":"noatime,umask=077","target":"/data"}"#,
            r#"{"description":"s","destructive":false,"device":"/dev/vda2","op":"swapon","options":"pri=5"}"#,
            r#"{"description":"e","destructive":false,"group":"adm","mode":"2750","op":"ensure-dir","owner":"root","target":"/data/x"}"#,
            r#"{"description":"t","destructive":false,"device":"/dev/vda","op":"verify-table","table":{"kind":"gpt","partitions":[{"name":"disk-a-ESP","number":1,"size":1073741824,"start":1048576},{"number":2,"size":512,"start":2147483648}]}}"#,
        ];
        assert_eq!(v, want);
        let refused = plan_v1("refused", &[], &[("cmdline", "bad \"value\"")]);
        assert_eq!(
            refused,
            r#"{"actions":[],"mode":"refused","refusals":[{"disk":"cmdline","reason":"bad \"value\""}]}"#
        );
    }

    /// `--output json` shows each step as the same record (serde_json sorts the keys).
    #[test]
    fn json_output_is_the_version_1_record() {
        for s in every_kind() {
            let v = serde_json::to_value(&s).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), step_v1(&s));
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let mut all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        all.push_str("é€𝄞\u{2028}\u{feff}");
        let mut o = String::new();
        write_str(&mut o, &all);
        assert_eq!(o, serde_json::to_string(&all).unwrap());
    }
}
