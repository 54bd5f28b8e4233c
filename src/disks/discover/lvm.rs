//! The LVM read: `lvm version` and one `lvm fullreport` through the [`Runner`], parsed into the
//! state's PVs, VGs and LVs; and the libblkid probe of active LVs.

use anyhow::{Context as _, Result};
use std::fs;
use std::path::{Path, PathBuf};

use super::blkid::probe_type;
use crate::disks::state::*;
use crate::system::Runner;

fn num(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s
            .trim()
            .trim_end_matches('B')
            .parse::<f64>()
            .map(|f| f as u64)
            .unwrap_or(0),
        _ => 0,
    }
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or("").trim().to_string()
}

/// Parse `lvm {pvs,vgs,lvs} --reportformat json` output: the rows of `report[*].<key>`.
pub fn report_rows(json: &[u8], key: &str) -> Result<Vec<serde_json::Value>> {
    let v: serde_json::Value =
        serde_json::from_slice(json).with_context(|| format!("parsing lvm {key} JSON report"))?;
    let mut rows = Vec::new();
    for r in v
        .get("report")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(a) = r.get(key).and_then(|x| x.as_array()) {
            rows.extend(a.iter().cloned());
        }
    }
    Ok(rows)
}

/// What [`read_lvm`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvmRead {
    /// `lvm version` and one `lvm fullreport` (PVs, VGs, LVs, segments).
    Full,
    /// `lvm version` only (the settings depend on it); the state says `lvm_unread`.
    VersionOnly,
    /// Nothing: the node's lvm.conf already says its lvm knows `use_devicesfile`, the one
    /// thing the version decides ([`lvm_conf_knows_devicesfile`]); the state says `lvm_unread`.
    Nothing,
}

/// The one `lvm fullreport` that reads PVs, VGs, LVs and segment types (each lvm process scans
/// every device again, so one report instead of pvs + vgs + lvs).
pub fn fullreport_argv(lvm_config: &str) -> Vec<String> {
    [
        "lvm",
        "fullreport",
        "--config",
        lvm_config,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "--configreport",
        "vg",
        "-o",
        "vg_name,vg_tags,vg_size,vg_free,lv_count,pv_count",
        "--configreport",
        "pv",
        "-o",
        "pv_name,vg_name,pv_size,pv_mda_count",
        "--configreport",
        "lv",
        "-o",
        "vg_name,lv_name,lv_size,lv_attr,pool_lv,lv_kernel_major,lv_kernel_minor",
        "--configreport",
        "seg",
        "-o",
        "vg_name,lv_name,segtype",
        "--configreport",
        "pvseg",
        "-o",
        "pv_name",
        "-S",
        "pv_name=\"\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Does the lvm.conf in `lvm_dir` (the node's: `$LVM_SYSTEM_DIR`, else /etc/lvm) name
/// `use_devicesfile`? lvm ships its lvm.conf with every setting it knows, commented out where it
/// keeps the default, so one that names it came with an lvm of 2.03.12 or later. No file, or
/// no mention: unknown (ask `lvm version`).
pub fn lvm_conf_knows_devicesfile(lvm_dir: &Path) -> bool {
    fs::read_to_string(lvm_dir.join("lvm.conf")).is_ok_and(|c| c.contains("use_devicesfile"))
}

/// Read PVs, VGs and LVs through lvm's JSON report. `lvm_config` gives our `devices {…}`
/// string for the lvm version found (the same settings the plan's commands will carry).
pub fn read_lvm(
    runner: &dyn Runner,
    lvm_config: &dyn Fn(Option<&str>) -> String,
    state: &mut SystemState,
    what: LvmRead,
) -> Result<()> {
    if what == LvmRead::Nothing {
        state.lvm_unread = true;
        return Ok(());
    }
    let out = match runner.run_raw(&["lvm".to_string(), "version".to_string()], None) {
        Ok(o) if o.status == 0 => o,
        _ => return Ok(()), // no lvm here: nothing to report
    };
    state.lvm_version = out.stdout_str().lines().find_map(|l| {
        l.trim()
            .strip_prefix("LVM version:")
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
    });
    if what == LvmRead::VersionOnly {
        state.lvm_unread = true;
        return Ok(());
    }
    state.lvm_unread = false;
    read_fullreport(runner, &lvm_config(state.lvm_version.as_deref()), state)
}

/// One `lvm fullreport` with `lvm_config` into `state`'s PVs, VGs and LVs: the one read that
/// also explains a failure after a plan made without it.
pub fn read_fullreport(
    runner: &dyn Runner,
    lvm_config: &str,
    state: &mut SystemState,
) -> Result<()> {
    let rep = runner.check(&fullreport_argv(lvm_config), None)?;
    parse_fullreport(&rep.stdout, state)
}

/// Probe the filesystem type of each active LV named in `wanted` (vg, lv) through its
/// `/dev/mapper` node, so that a plan can tell a missing or wrong filesystem on an LV as it
/// does on a partition. An LV that is inactive or has no node stays unprobed (unknown).
pub fn probe_lvs(state: &mut SystemState, wanted: &[(&str, &str)]) {
    use std::os::unix::fs::FileTypeExt;
    for lv in state.lvs.iter_mut() {
        if lv.maj_min.is_none()
            || !wanted
                .iter()
                .any(|(vg, name)| *vg == lv.vg_name && *name == lv.lv_name)
        {
            continue;
        }
        let path = PathBuf::from(format!(
            "/dev/mapper/{}",
            crate::disks::lvm::dm_name(&lv.vg_name, &lv.lv_name)
        ));
        if fs::metadata(&path).is_ok_and(|m| m.file_type().is_block_device()) {
            lv.fs_type = probe_type(&path);
            lv.fs_probed = true;
        }
    }
}

/// The rows of a `fullreport`: PVs, VGs and LVs, each LV with its first segment's type.
pub fn parse_fullreport(json: &[u8], state: &mut SystemState) -> Result<()> {
    for r in report_rows(json, "pv")? {
        state.pvs.push(Pv {
            pv_name: text(&r["pv_name"]),
            vg_name: text(&r["vg_name"]),
            pv_size: num(&r["pv_size"]),
            pv_mda_count: text(&r["pv_mda_count"]).trim().parse().ok(),
        });
    }
    for r in report_rows(json, "vg")? {
        state.vgs.push(Vg {
            vg_name: text(&r["vg_name"]),
            vg_tags: text(&r["vg_tags"])
                .split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            vg_size: num(&r["vg_size"]),
            vg_free: num(&r["vg_free"]),
            lv_count: num(&r["lv_count"]) as u32,
            pv_count: num(&r["pv_count"]) as u32,
        });
    }
    let segs = report_rows(json, "seg")?;
    for r in report_rows(json, "lv")? {
        let maj = text(&r["lv_kernel_major"]);
        let min = text(&r["lv_kernel_minor"]);
        let maj_min = match (maj.parse::<i64>(), min.parse::<i64>()) {
            (Ok(a), Ok(b)) if a >= 0 && b >= 0 => Some(format!("{a}:{b}")),
            _ => None,
        };
        let (vg_name, lv_name) = (text(&r["vg_name"]), text(&r["lv_name"]));
        let segtype = segs
            .iter()
            .find(|s| text(&s["vg_name"]) == vg_name && text(&s["lv_name"]) == lv_name)
            .map(|s| text(&s["segtype"]))
            .unwrap_or_default();
        state.lvs.push(Lv {
            vg_name,
            lv_name,
            lv_size: num(&r["lv_size"]),
            lv_attr: text(&r["lv_attr"]),
            segtype,
            pool_lv: text(&r["pool_lv"]),
            maj_min,
            ..Default::default()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{Output, RecordingRunner};

    #[test]
    fn an_lvm_conf_naming_use_devicesfile_spares_the_version_question() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!lvm_conf_knows_devicesfile(dir.path()), "no lvm.conf");
        let conf = dir.path().join("lvm.conf");
        std::fs::write(&conf, "devices {\n\tfilter = [ \"a|.*|\" ]\n}\n").unwrap();
        assert!(!lvm_conf_knows_devicesfile(dir.path()));
        // As lvm 2.03.16's shipped lvm.conf has it (a commented-out default).
        std::fs::write(
            &conf,
            "devices {\n\t# Configuration option devices/use_devicesfile.\n\t# use_devicesfile = 0\n}\n",
        )
        .unwrap();
        assert!(lvm_conf_knows_devicesfile(dir.path()));
        // Then nothing is asked of lvm at all.
        let r = RecordingRunner::new();
        let mut st = SystemState::default();
        read_lvm(&r, &|_| String::new(), &mut st, LvmRead::Nothing).unwrap();
        assert!(st.lvm_unread && st.lvm_version.is_none());
        assert!(r.calls().is_empty(), "{:?}", r.calls());
    }

    #[test]
    fn lvm_reports_are_read() {
        let r = RecordingRunner::new();
        r.on(
            &["lvm", "version"],
            Output::ok("  LVM version:     2.03.16(2) (2022-05-18)\n  Library version: 1.02.185\n"),
        );
        // Shape of lvm 2.03.16's fullreport with our -o lists (one report per VG, orphan PVs
        // in a report of their own).
        r.on(&["lvm", "fullreport"], Output::ok(r#"{"report":[
          {"vg":[{"vg_name":"pool_host","vg_tags":"provision.token=tok1,x","vg_size":"1000","vg_free":"100","lv_count":"3","pv_count":"1"}],
           "pv":[{"pv_name":"/dev/sda2","vg_name":"pool_host","pv_size":"1000"}],
           "lv":[{"vg_name":"pool_host","lv_name":"var","lv_size":"800","lv_attr":"-wi-ao----","pool_lv":"","lv_kernel_major":"254","lv_kernel_minor":"2"},
                 {"vg_name":"pool_host","lv_name":"home","lv_size":"100","lv_attr":"-wi-------","pool_lv":"","lv_kernel_major":"-1","lv_kernel_minor":"-1"}],
           "pvseg":[],
           "seg":[{"vg_name":"pool_host","lv_name":"home","segtype":"linear"},{"vg_name":"pool_host","lv_name":"var","segtype":"striped"},{"vg_name":"pool_host","lv_name":"var","segtype":"linear"}]},
          {"pv":[{"pv_name":"/dev/sdb","vg_name":"","pv_size":"1073741824"}],"pvseg":[]}]}"#));
        let mut st = SystemState::default();
        // the config is made for the version lvm reported (use_devicesfile needs ≥ 2.03.12)
        let cfg = |v: Option<&str>| format!("devices {{ for {} }}", v.unwrap_or("none"));
        read_lvm(&r, &cfg, &mut st, LvmRead::Full).unwrap();
        assert_eq!(st.lvm_version.as_deref(), Some("2.03.16(2)"));
        assert!(!st.lvm_unread);
        assert_eq!(st.vgs.len(), 1);
        assert_eq!(st.vgs[0].vg_tags, ["provision.token=tok1", "x"]);
        assert_eq!(st.pvs.len(), 2);
        assert_eq!(st.pvs[1].vg_name, "");
        assert_eq!(st.lvs[0].maj_min.as_deref(), Some("254:2"));
        assert_eq!(st.lvs[0].segtype, "striped", "the first segment's type");
        assert_eq!(st.lvs[1].segtype, "linear");
        assert!(st.lvs[0].active());
        assert_eq!(st.lvs[1].maj_min, None);
        let calls = r.calls();
        assert_eq!(calls.len(), 2, "lvm version + one fullreport: {calls:?}");
        assert!(
            calls[1].contains(&"--config".to_string())
                && calls[1].contains(&"devices { for 2.03.16(2) }".to_string())
        );
    }

    #[test]
    fn version_only_marks_the_lvm_state_unread() {
        let r = RecordingRunner::new();
        r.on(
            &["lvm", "version"],
            Output::ok("  LVM version:     2.03.16(2) (2022-05-18)\n"),
        );
        let mut st = SystemState::default();
        read_lvm(&r, &|_| String::new(), &mut st, LvmRead::VersionOnly).unwrap();
        assert_eq!(st.lvm_version.as_deref(), Some("2.03.16(2)"));
        assert!(st.lvm_unread && st.vgs.is_empty());
        assert_eq!(r.calls().len(), 1);
    }

    #[test]
    fn no_lvm_means_no_lvm_state() {
        let r = RecordingRunner::new();
        r.on(
            &["lvm"],
            Output {
                status: 127,
                ..Default::default()
            },
        );
        let mut st = SystemState::default();
        read_lvm(&r, &|_| String::new(), &mut st, LvmRead::Full).unwrap();
        assert!(st.lvm_version.is_none() && st.vgs.is_empty());
    }
}
