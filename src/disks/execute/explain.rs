//! A failed step explained from what the step expected (ARCHITECTURE.md §2.5): one read, through
//! the context's runner, of the things the step needed, turned into an error naming those that do
//! not exist. Nothing is planned again and nothing runs after it.

use crate::context::Context;
use crate::disks::discover::read_fullreport;
use crate::disks::lvm;
use crate::disks::state::SystemState;
use crate::disks::step::{Explain, Step};
use crate::exit::{coded, Code};

/// `err` (the step's failure, with its step context) as the step's [`Explain`] explains it:
/// mount-only's "missing" (exit 9) naming what does not exist, and after it what failed. `err`
/// itself when the step has no explanation, when everything it expected exists (then something
/// else failed), or when the read fails (logged).
pub(super) fn explain(ctx: &Context, step: &Step, err: anyhow::Error) -> anyhow::Error {
    let Some(Explain::LvmExists {
        config,
        vgs,
        prefix,
    }) = &step.explain
    else {
        return err;
    };
    let mut st = SystemState::default();
    if let Err(e) = read_fullreport(ctx.runner.as_ref(), config, &mut st) {
        tracing::warn!(stage = "disks", "reading LVM to explain a failure: {e:#}");
        return err;
    }
    let missing: Vec<String> = vgs
        .iter()
        .flat_map(|(vg, lvs)| lvm::missing(vg, lvs, &st, prefix))
        .collect();
    if missing.is_empty() {
        return err;
    }
    coded(
        Code::Missing,
        format!("mount-only: {} (found after: {err:#})", missing.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use crate::context::Context;
    use crate::disks::execute::execute;
    use crate::exit::{code_of, Code};
    use crate::system::{Output, RecordingRunner};
    use std::sync::Arc;

    /// A mount-only run planned without reading LVM (the every-boot path), on a machine whose
    /// `lvm fullreport` shows `report` and whose `vgchange -ay` exits `activation`.
    fn run(report: &str, activation: i32) -> (anyhow::Error, Vec<Vec<String>>) {
        let layout = crate::disks::types::parse_str(
            "t.yaml",
            "disk:\n  d:\n    device: /dev/vda\n    content: {type: lvm_pv, vg: vg0}\nlvm_vg:\n  \
             vg0:\n    lvs:\n      root: {size: 1G, content: {type: filesystem, format: ext4, \
             mountpoint: /x}}\n      spare: {size: 1G}\n",
        )
        .unwrap();
        let mut state = crate::disks::state::SystemState::blank_for(&layout, 1 << 30);
        state.lvm_unread = true;
        let plan = crate::disks::plan::plan(
            &layout,
            &state,
            &crate::cmdline::settings("ro", "homelab"),
            &Default::default(),
        )
        .unwrap();
        assert!(plan.missing.is_empty(), "{:?}", plan.missing);
        let runner = Arc::new(RecordingRunner::new());
        runner.on(
            &["lvm", "vgchange"],
            Output {
                status: activation,
                stdout: Vec::new(),
                stderr: b"Volume group \"vg0\" not found".to_vec(),
            },
        );
        runner.on(&["lvm", "fullreport"], Output::ok(report));
        let root = tempfile::tempdir().unwrap();
        let mut ctx = Context::for_root(root.path(), root.path(), "", false);
        ctx.runner = runner.clone();
        let e = execute(&ctx, &plan).unwrap_err();
        (e, runner.calls())
    }

    const VG0_WITH_SPARE: &str = r#"{"report":[{"vg":[{"vg_name":"vg0"}],"pv":[],
        "lv":[{"vg_name":"vg0","lv_name":"spare","lv_attr":"-wi-a-----"}],"seg":[]}]}"#;

    #[test]
    fn a_failed_activation_names_the_vgs_that_do_not_exist() {
        let (e, calls) = run(r#"{"report":[]}"#, 5);
        assert_eq!(code_of(&e), Code::Missing, "{e:#}");
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("mount-only: VG vg0 not found (are the disks provisioned? boot once with homelab.provision_disks=<token>) (found after: step 2/"),
            "{msg}"
        );
        assert!(msg.contains("activating VG vg0"), "{msg}");
        // one read, with the activation's own --config, and nothing after it
        let n = calls.len();
        assert_eq!(calls[n - 1][..2], ["lvm", "fullreport"], "{calls:?}");
        assert_eq!(calls[n - 1][3], calls[n - 2][3], "{calls:?}");
        assert_eq!(calls[n - 2][..2], ["lvm", "vgchange"], "{calls:?}");
    }

    #[test]
    fn a_missing_lv_is_named_when_its_device_does_not_come_up() {
        let (e, _) = run(VG0_WITH_SPARE, 0);
        assert_eq!(code_of(&e), Code::Missing, "{e:#}");
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("mount-only: LV vg0/root not found (found after: step 3/"),
            "{msg}"
        );
        assert!(msg.contains("not an active device-mapper device"), "{msg}");
    }

    #[test]
    fn a_failure_with_everything_there_stays_what_it_was() {
        let all = VG0_WITH_SPARE.replace(
            r#""lv":["#,
            r#""lv":[{"vg_name":"vg0","lv_name":"root","lv_attr":"-wi-a-----"},"#,
        );
        let (e, _) = run(&all, 5);
        assert_eq!(code_of(&e), Code::Command, "{e:#}");
        assert!(format!("{e:#}").starts_with("step 2/"), "{e:#}");
        // an unreadable report explains nothing either
        let (e, _) = run("not json", 5);
        assert_eq!(code_of(&e), Code::Command, "{e:#}");
    }
}
