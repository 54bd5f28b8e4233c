//! LVM settings shared by observation and planning: the `devices` settings every lvm command runs
//! with (the DRBD filter), the lvm argv builder, dm names of LVs, the completion tags, and the
//! lvmlocal.conf step that writes the settings onto the node.

use super::state::SystemState;
use super::step::{s, Effect, Op, Step};
use crate::layout::Layout;

/// LVM tag prefix recording the layout hash when provisioning completed.
pub const TAG_LAYOUT: &str = "provision.layout=";
/// LVM tag prefix recording a consumed wipe-once token.
pub const TAG_TOKEN: &str = "provision.token=";
/// Where the LVM settings are written on the node by default.
pub const DEFAULT_LVM_CONF: &str = "/etc/lvm/lvmlocal.conf";

/// The LVM `devices` settings this agent runs every lvm command with (as `--config`) and
/// writes into the node's lvm config: DRBD devices rejected by global_filter — the filter pvscan
/// and event activation honour —, LVs never scanned for PV
/// labels (`scan_lvs = 0`, lvm's default since 2.03: the LV under a DRBD device starts with the
/// guest's PV label), and no devices file where lvm has one (a netbooted node has no persistent
/// system.devices; the filter is the mechanism).
pub fn lvm_devices_settings(layout: &Layout, lvm_version: Option<&str>) -> Vec<String> {
    // Rejects only, no trailing "a|.*|": lvm accepts a device if ANY of its names matches an
    // accept pattern first, and a DRBD device has names no reject can foresee (/dev/block/147:0,
    // udev's /dev/disk/by-id/lvm-pv-uuid-… for the PV inside). Names that match no pattern do
    // not count, a device none of whose names match is accepted: so every other disk is seen,
    // and DRBD devices, whose kernel name matches a reject, are not. (Proven in the disks-drbd
    // VM scenario, which failed with the "a|.*|" form.)
    let mut filter = vec![s("\"r|^/dev/drbd[0-9]+$|\""), s("\"r|^/dev/drbd/|\"")];
    filter.extend(layout.lvm_reject.iter().map(|r| format!("\"{r}\"")));
    let mut out = vec![
        format!("global_filter = [ {} ]", filter.join(", ")),
        s("scan_lvs = 0"),
    ];
    if lvm_supports_devicesfile(lvm_version) {
        out.push(s("use_devicesfile = 0"));
    }
    out
}

/// The settings as one `--config` argument: `devices { … }`.
pub fn lvm_devices_config(layout: &Layout, lvm_version: Option<&str>) -> String {
    config_arg(&lvm_devices_settings(layout, lvm_version))
}

/// Settings lines ([`lvm_devices_settings`]) as the one `--config` argument every lvm command
/// gets: `devices { … }`.
pub fn config_arg(settings: &[String]) -> String {
    format!("devices {{ {} }}", settings.join(" "))
}

/// `use_devicesfile` exists from lvm 2.03.12 on (unknown version: assume a current lvm).
fn lvm_supports_devicesfile(v: Option<&str>) -> bool {
    let Some(v) = v else { return true };
    let nums: Vec<u32> = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    nums.as_slice() >= [2, 3, 12].as_slice()
}

/// lvm command line with our `--config`.
pub(crate) fn argv(cfg: &str, sub: &str, args: &[String]) -> Vec<String> {
    let mut v = vec![s("lvm"), s(sub), s("--config"), cfg.to_string()];
    v.extend(args.iter().cloned());
    v
}

/// dm name of an LV: `<vg>-<lv>` with every `-` inside either name doubled (lvm2
/// `dm_build_dm_name`).
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", dm_escape(vg), dm_escape(lv))
}

/// Is `dm` the dm name of a device of VG `vg`, one of its LVs or one lvm made inside it
/// (`<vg>-<pool>_tdata`)? By name: `vg` escaped, one `-`, then a name that does not start with
/// `-` (lvm names never do), so that VG `a` does not claim VG `a-b`'s `a--b-lv`.
pub fn dm_name_in_vg(dm: &str, vg: &str) -> bool {
    dm.strip_prefix(&dm_escape(vg))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|lv| !lv.is_empty() && !lv.starts_with('-'))
}

fn dm_escape(name: &str) -> String {
    name.replace('-', "--")
}

/// What of VG `vg` and its LVs `lvs` (the layout's) a full LVM read (`state`) does not show, in
/// words: the VG (with how to provision it: `prefix` is the kernel cmdline's) or each missing LV.
/// Empty when all are there. The planner's mount-only check, the executor's explanation of a
/// failed activation or LV wait, and the stage's message after a plan made without reading LVM
/// all say it this way.
pub fn missing(vg: &str, lvs: &[String], state: &SystemState, prefix: &str) -> Vec<String> {
    if state.vg(vg).is_none() {
        return vec![format!(
            "VG {vg} not found (are the disks provisioned? boot once with {prefix}.provision_disks=<token>)"
        )];
    }
    lvs.iter()
        .filter(|lv| {
            !state
                .lvs
                .iter()
                .any(|l| l.vg_name == vg && &&l.lv_name == lv)
        })
        .map(|lv| format!("LV {vg}/{lv} not found"))
        .collect()
}

/// Write the LVM settings into the node's lvm config, so later lvm runs (udev event activation,
/// pvscan, the operator's own commands) filter DRBD exactly as ours do.
pub(crate) fn conf_step(settings: &[String], conf_path: String) -> Step {
    let mut text = String::from(
        "# Written by provision on every boot: lvm on this node filters devices exactly as\n\
         # provision does (global_filter is the one pvscan and event activation honour).\n\
         devices {\n",
    );
    for line in settings {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("}\n");
    Step::new(
        Op::WRITE_FILE,
        false,
        format!("writing the LVM device filter to {conf_path}"),
        Effect::WriteFile {
            path: conf_path,
            content: text,
            mode: 0o644,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_names_escape_dashes_and_belong_to_exactly_their_vg() {
        assert_eq!(dm_name("pool_host", "var"), "pool_host-var");
        assert_eq!(dm_name("a-b", "c-d"), "a--b-c--d");
        assert!(dm_name_in_vg("a--b-c--d", "a-b"));
        assert!(dm_name_in_vg("pool-pool_tdata", "pool"));
        // VG a-b's device is not VG a's, nor is a bare prefix
        assert!(!dm_name_in_vg("a--b-c--d", "a"));
        assert!(!dm_name_in_vg("a-", "a"));
        assert!(!dm_name_in_vg("ab-c", "a"));
    }
}
