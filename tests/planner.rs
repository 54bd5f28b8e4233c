//! Planner tests (DESIGN §6, §10 tier 1): layout + observed state + cmdline → plan, for the
//! reference layouts and every safety refusal. The whole text of the reference plan is a golden
//! file (`UPDATE_GOLDEN=1 cargo test` rewrites it after a reviewed change).

use provision::cmdline::settings;
use provision::disks::plan::{plan, Mode, Plan, PlanOptions, RefusalKind};
use provision::disks::state::*;
use provision::disks::step::Op;
use provision::layout::Layout;
use std::path::PathBuf;

const GIB: u64 = 1 << 30;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn ganeti() -> Layout {
    provision::disks::types::load(&repo("layouts/ganeti-node.yaml")).unwrap()
}

fn disk(name: &str, mm: &str, size: u64) -> BlockDevice {
    BlockDevice {
        name: name.into(),
        path: format!("/dev/{name}"),
        maj_min: mm.into(),
        size,
        transport: if name.starts_with("nvme") {
            "nvme".into()
        } else {
            "sata".into()
        },
        rotational: !name.starts_with("nvme"),
        ..Default::default()
    }
}

/// A node with blank NVMe (512G) and HDD (1T).
fn blank_node() -> SystemState {
    let mut nvme = disk("nvme0n1", "259:0", 512 * GIB);
    nvme.serial = Some("NV1".into());
    nvme.links = vec!["/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_NV1".into()];
    let mut sda = disk("sda", "8:0", 1024 * GIB);
    sda.serial = Some("HD1".into());
    sda.links = vec!["/dev/disk/by-id/ata-QEMU_HARDDISK_HD1".into()];
    SystemState {
        version: 1,
        disks: vec![nvme, sda],
        lvm_version: Some("2.03.16(2)".into()),
        ..Default::default()
    }
}

/// The same node after a completed provisioning (token `tok1`), VGs active, nothing mounted yet.
fn provisioned_node(tags: &[&str]) -> SystemState {
    let mut s = blank_node();
    s.disks[0].fs_type = Some("LVM2_member".into());
    let sda = &mut s.disks[1];
    sda.pt_type = Some("gpt".into());
    sda.partitions = vec![
        Partition {
            name: "sda1".into(),
            path: "/dev/sda1".into(),
            maj_min: "8:1".into(),
            number: 1,
            size: 100 << 20,
            part_label: Some("disk-hdd-ESP".into()),
            fs_type: Some("vfat".into()),
            ..Default::default()
        },
        Partition {
            name: "sda2".into(),
            path: "/dev/sda2".into(),
            maj_min: "8:2".into(),
            number: 2,
            size: 1023 * GIB,
            part_label: Some("disk-hdd-pv".into()),
            fs_type: Some("LVM2_member".into()),
            holders: vec!["dm-0".into(), "dm-1".into(), "dm-2".into()],
            ..Default::default()
        },
    ];
    s.pvs = vec![
        Pv {
            pv_name: "/dev/nvme0n1".into(),
            vg_name: "pool_gnt".into(),
            pv_size: 512 * GIB,
            ..Default::default()
        },
        Pv {
            pv_name: "/dev/sda2".into(),
            vg_name: "pool_host".into(),
            pv_size: 1023 * GIB,
            ..Default::default()
        },
    ];
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    s.vgs = vec![
        Vg {
            vg_name: "pool_gnt".into(),
            vg_tags: tags.clone(),
            vg_size: 512 * GIB,
            vg_free: 512 * GIB,
            lv_count: 0,
            pv_count: 1,
        },
        Vg {
            vg_name: "pool_host".into(),
            vg_tags: tags,
            vg_size: 1023 * GIB,
            vg_free: 0,
            lv_count: 3,
            pv_count: 1,
        },
    ];
    for (i, lv) in ["swap", "home", "var"].iter().enumerate() {
        s.lvs.push(Lv {
            vg_name: "pool_host".into(),
            lv_name: lv.to_string(),
            lv_size: GIB,
            lv_attr: "-wi-a-----".into(),
            segtype: "linear".into(),
            maj_min: Some(format!("254:{i}")),
            ..Default::default()
        });
        s.virtual_devices.push(VirtualDevice {
            name: format!("dm-{i}"),
            maj_min: format!("254:{i}"),
            dm_name: Some(format!("pool_host-{lv}")),
            slaves: vec!["sda2".into()],
            ..Default::default()
        });
    }
    s
}

fn run(layout: &Layout, state: &SystemState, cmdline: &str) -> Plan {
    plan(
        layout,
        state,
        &settings(cmdline, "homelab"),
        &PlanOptions::default(),
    )
    .unwrap()
}

fn ops(p: &Plan) -> Vec<Op> {
    p.actions.iter().map(|a| a.op).collect()
}

/// The argv of every activation step.
fn activations(p: &Plan) -> Vec<&[String]> {
    p.actions
        .iter()
        .filter(|a| a.op == provision::disks::types::lvm::ACTIVATE)
        .map(|a| a.argv().unwrap())
        .collect()
}

fn golden(name: &str, text: &str) {
    let path = repo(&format!("tests/golden/{name}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 to create)", path.display()));
    assert_eq!(
        text, want,
        "golden file {name} differs (UPDATE_GOLDEN=1 to accept a reviewed change)"
    );
}

#[test]
fn blank_disks_with_flag_provision_the_whole_layout() {
    let p = run(&ganeti(), &blank_node(), "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Provision, "{:?}", p.refusals);
    assert!(p.refusals.is_empty() && p.destroys.is_empty());
    assert!(
        p.warnings.iter().any(|w| w.contains("EVERY boot")),
        "true is logged loudly"
    );
    // Every lvm command carries the DRBD global_filter.
    for a in &p.actions {
        if let Some(argv) = a.argv() {
            if argv[0] == "lvm" {
                assert_eq!(argv[2], "--config");
                assert!(
                    argv[3].contains("global_filter = [ \"r|^/dev/drbd[0-9]+$|\""),
                    "{argv:?}"
                );
                // An accept-all would let a DRBD device in under another of its names
                // (/dev/block/147:0): see the disks-drbd VM scenario.
                assert!(!argv[3].contains("\"a|"), "{argv:?}");
                assert!(argv[3].contains("scan_lvs = 0"), "{argv:?}");
            }
        }
    }
    let o = ops(&p);
    let pos = |op: Op| o.iter().position(|x| *x == op).unwrap();
    assert!(pos(Op::PARTITION) < pos(provision::disks::types::lvm::PV_CREATE));
    assert!(
        pos(provision::disks::types::lvm::PV_CREATE) < pos(provision::disks::types::lvm::VG_CREATE)
            && pos(provision::disks::types::lvm::VG_CREATE)
                < pos(provision::disks::types::lvm::LV_CREATE)
    );
    assert!(
        pos(provision::disks::types::lvm::LV_CREATE)
            < pos(provision::disks::types::filesystem::MKFS)
            && pos(provision::disks::types::filesystem::MKFS)
                < pos(provision::disks::types::lvm::TAG)
    );
    assert!(pos(provision::disks::types::lvm::TAG) < pos(Op::MOUNT));
    // lvcreate left every LV active: no vgchange -ay (one more device scan) after it
    assert!(
        !o.contains(&provision::disks::types::lvm::ACTIVATE),
        "{o:?}"
    );
    // no fsck right after mkfs
    assert!(!o.contains(&provision::disks::types::filesystem::FSCK));
    golden(
        "ganeti-node-blank-provision.txt",
        &provision::disks::plan::render_text(&p),
    );
}

#[test]
fn provisioning_activates_only_when_an_lv_may_have_been_created_inactive() {
    // extraArgs can say `--activate n` (or anything else lvcreate takes): then lvcreate's
    // activation cannot be relied on and the run ends with a vgchange -ay.
    let mut layout = ganeti();
    let host = layout
        .vgs
        .iter_mut()
        .find(|v| v.name == "pool_host")
        .unwrap();
    host.lvs[0].extra_args = vec!["--activate".into(), "n".into()];
    let p = run(&layout, &blank_node(), "homelab.provision_disks=true");
    let act = activations(&p);
    assert_eq!(act.len(), 1, "{}", provision::disks::plan::render_text(&p));
    assert_eq!(act[0][4..], ["-ay", "pool_gnt", "pool_host"]);
    let o = ops(&p);
    let pos = |op: Op| o.iter().position(|x| *x == op).unwrap();
    assert!(
        pos(provision::disks::types::lvm::TAG) < pos(provision::disks::types::lvm::ACTIVATE)
            && pos(provision::disks::types::lvm::ACTIVATE) < pos(Op::MOUNT)
    );
}

#[test]
fn provisioned_disks_without_flag_mount_only() {
    let p = run(
        &ganeti(),
        &provisioned_node(&["provision.token=tok1"]),
        "ro quiet",
    );
    assert_eq!(p.mode, Mode::MountOnly);
    assert!(p.missing.is_empty(), "{:?}", p.missing);
    assert!(
        p.actions.iter().all(|a| !a.destructive),
        "mount-only never destroys"
    );
    let o = ops(&p);
    for forbidden in [
        provision::disks::types::disk::WIPE,
        Op::PARTITION,
        provision::disks::types::lvm::PV_CREATE,
        provision::disks::types::lvm::VG_CREATE,
        provision::disks::types::lvm::LV_CREATE,
        provision::disks::types::filesystem::MKFS,
        provision::disks::types::swap::MKSWAP,
    ] {
        assert!(!o.contains(&forbidden), "{forbidden:?} in mount-only");
    }
    // VGs activated by name, never all of them, in one vgchange (each lvm process rescans)
    let act = activations(&p);
    assert_eq!(act.len(), 1);
    assert_eq!(act[0][..2], ["lvm", "vgchange"]);
    assert_eq!(act[0][4..], ["-ay", "pool_gnt", "pool_host"]);
    // ext4 checked, mounts parent first
    assert_eq!(
        o.iter()
            .filter(|x| **x == provision::disks::types::filesystem::FSCK)
            .count(),
        2
    );
    let mounts: Vec<&str> = p
        .actions
        .iter()
        .filter(|a| a.op == Op::MOUNT)
        .map(|a| a.target().unwrap())
        .collect();
    assert_eq!(mounts, ["/boot", "/home", "/var"]);
    assert_eq!(o.iter().filter(|x| **x == Op::ENSURE_DIR).count(), 3);
    golden(
        "ganeti-node-mount-only.txt",
        &provision::disks::plan::render_text(&p),
    );
}

#[test]
fn consumed_token_mounts_and_new_token_provisions() {
    let st = provisioned_node(&["provision.token=tok1", "provision.layout=x"]);
    let p = run(&ganeti(), &st, "homelab.provision_disks=tok1");
    assert_eq!(p.mode, Mode::MountOnly, "{}", p.reason);
    assert!(p.reason.contains("already consumed"));
    let p = run(&ganeti(), &st, "homelab.provision_disks=tok2");
    assert_eq!(p.mode, Mode::Provision, "{:?}", p.refusals);
    assert!(
        p.destroys.iter().any(|d| d.contains("/dev/sda")
            && d.contains("VG pool_host, 3 LVs")
            && d.contains("WILL BE DESTROYED")),
        "{:?}",
        p.destroys
    );
    // old VGs deactivated before the wipe; the new token is recorded last
    assert_eq!(p.actions[0].op, Op::WRITE_FILE);
    assert_eq!(p.actions[1].op, provision::disks::types::lvm::DEACTIVATE);
    let tag = p
        .actions
        .iter()
        .rposition(|a| a.op == provision::disks::types::lvm::TAG)
        .unwrap();
    assert!(p.actions[tag]
        .argv()
        .unwrap()
        .contains(&"provision.token=tok2".to_string()));
    assert!(p.actions[..tag].iter().all(|a| a.op != Op::MOUNT));
    // a half-recorded token (one VG tagged, crash before the other) provisions again
    let mut half = provisioned_node(&[]);
    half.vgs[0].vg_tags = vec!["provision.token=tok1".into()];
    assert_eq!(
        run(&ganeti(), &half, "homelab.provision_disks=tok1").mode,
        Mode::Provision
    );
}

#[test]
fn foreign_disk_by_kernel_name_is_refused_and_nothing_planned() {
    let mut st = blank_node();
    st.disks[1].fs_type = Some("LVM2_member".into());
    st.pvs.push(Pv {
        pv_name: "/dev/sda".into(),
        vg_name: "other_vg".into(),
        pv_size: GIB,
        ..Default::default()
    });
    st.vgs.push(Vg {
        vg_name: "other_vg".into(),
        vg_size: 10 * GIB,
        vg_free: 2 * GIB,
        lv_count: 4,
        pv_count: 1,
        ..Default::default()
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(p.actions.is_empty(), "a refusal plans nothing for any disk");
    assert!(p.destroys.is_empty());
    assert!(
        p.refusals
            .iter()
            .all(|r| r.kind == RefusalKind::ForeignUnstable),
        "{:?}",
        p.refusals
    );
    let r: Vec<&str> = p.refusals.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        r.iter()
            .any(|x| x.contains("VG other_vg, 4 LVs, 8 GiB used")
                && x.contains("/dev/sda")
                && x.contains("by-id")),
        "{r:?}"
    );
    // explicitly allowed on the cmdline → provisions, and says what it destroys
    let p = run(
        &ganeti(),
        &st,
        "homelab.provision_disks=true homelab.wipe_foreign=hdd",
    );
    assert_eq!(p.mode, Mode::Provision, "{:?}", p.refusals);
    assert!(p.destroys.iter().any(|d| d.contains("other_vg")));
    // named by by-id → foreign content may be wiped
    let text = std::fs::read_to_string(repo("layouts/ganeti-node.yaml"))
        .unwrap()
        .replace("/dev/sda", "/dev/disk/by-id/ata-QEMU_HARDDISK_HD1");
    let l = provision::disks::types::parse_str("x", &text).unwrap();
    assert_eq!(
        run(&l, &st, "homelab.provision_disks=true").mode,
        Mode::Provision
    );
}

#[test]
fn drbd_metadata_or_swap_signature_on_a_kernel_named_target_is_refused_in_words() {
    // drbdmeta create-md leaves a "drbd" signature (libblkid: TYPE=drbd USAGE=raid) at the end
    // of the disk; a swap signature, md member or LUKS header is just as foreign.
    for (t, words) in [
        ("drbd", "DRBD metadata"),
        ("swap", "swap space"),
        ("linux_raid_member", "md RAID member"),
        ("crypto_LUKS", "LUKS encrypted volume"),
        ("xfs", "xfs filesystem"),
    ] {
        let mut st = blank_node();
        st.disks[0].fs_type = Some(t.into()); // the NVMe, named /dev/nvme0n1 by the layout
        let p = run(&ganeti(), &st, "homelab.provision_disks=true");
        assert_eq!(p.mode, Mode::Refused, "{t}");
        assert!(p.actions.is_empty(), "{t}: a refusal plans nothing");
        assert!(
            p.refusals
                .iter()
                .any(|r| r.disk == "nvme" && r.reason.contains(&format!("/dev/nvme0n1: {words}"))),
            "{t}: {:?}",
            p.refusals
        );
        // the operator may allow it explicitly: then it is listed as destroyed, in words
        let p = run(
            &ganeti(),
            &st,
            "homelab.provision_disks=true homelab.wipe_foreign=nvme",
        );
        assert_eq!(p.mode, Mode::Provision, "{t}: {:?}", p.refusals);
        assert!(
            p.destroys.iter().any(|d| d.contains(words)),
            "{t}: {:?}",
            p.destroys
        );
    }
}

#[test]
fn orphan_pv_left_by_a_cut_run_is_no_data_but_one_without_metadata_is_foreign() {
    // Found by the disks-powercut VM scenario: QEMU killed between `pvcreate /dev/nvme0n1` and
    // `vgcreate pool_gnt` left a PV without a VG on the kernel-named NVMe, and the same token was
    // refused as foreign content, so the node could not converge.
    for (mda, refused) in [
        (Some(1), false),
        (Some(2), false),
        (Some(0), true),
        (None, true),
    ] {
        let mut st = blank_node();
        st.disks[0].fs_type = Some("LVM2_member".into());
        st.pvs.push(Pv {
            pv_name: "/dev/nvme0n1".into(),
            pv_size: 512 * GIB,
            pv_mda_count: mda,
            ..Default::default()
        });
        let p = run(&ganeti(), &st, "homelab.provision_disks=tok2");
        if refused {
            assert_eq!(p.mode, Mode::Refused, "mda {mda:?}");
            assert!(
                p.refusals.iter().any(|r| r
                    .reason
                    .contains("metadata may be on a disk that is not here")),
                "mda {mda:?}: {:?}",
                p.refusals
            );
        } else {
            assert_eq!(p.mode, Mode::Provision, "mda {mda:?}: {:?}", p.refusals);
            assert!(ops(&p).contains(&provision::disks::types::lvm::VG_CREATE));
        }
    }
}

#[test]
fn mounted_or_swapping_target_is_refused() {
    let mut st = provisioned_node(&[]);
    st.mounts.push(Mount {
        maj_min: "254:2".into(),
        source: "/dev/mapper/pool_host-var".into(),
        target: "/var".into(),
        fs_type: "ext4".into(),
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(p.actions.is_empty());
    assert!(
        p.refusals
            .iter()
            .any(|r| r.disk == "hdd" && r.reason.contains("mounted at /var")),
        "{:?}",
        p.refusals
    );
    let mut st = provisioned_node(&[]);
    st.swaps.push(SwapEntry {
        path: "/dev/dm-0".into(),
        maj_min: Some("254:0".into()),
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert!(
        p.refusals.iter().any(|r| r.reason.contains("swap")),
        "{:?}",
        p.refusals
    );
    let mut st = blank_node();
    st.disks[1].pt_type = Some("dos".into());
    st.disks[1].partitions.push(Partition {
        name: "sda1".into(),
        path: "/dev/sda1".into(),
        maj_min: "8:1".into(),
        number: 1,
        fs_type: Some("ext4".into()),
        ..Default::default()
    });
    st.mounts.push(Mount {
        maj_min: "8:1".into(),
        source: "/dev/sda1".into(),
        target: "/mnt".into(),
        fs_type: "ext4".into(),
    });
    let p = run(
        &ganeti(),
        &st,
        "homelab.provision_disks=true homelab.wipe_foreign",
    );
    assert!(
        p.refusals
            .iter()
            .any(|r| r.kind == RefusalKind::Busy
                && r.reason.contains("/dev/sda1 is mounted at /mnt")),
        "{:?}",
        p.refusals
    );
}

#[test]
fn drbd_on_an_lv_of_a_target_pv_is_refused() {
    let mut st = provisioned_node(&[]);
    st.lvs.push(Lv {
        vg_name: "pool_gnt".into(),
        lv_name: "disk0".into(),
        lv_attr: "-wi-ao----".into(),
        maj_min: Some("254:9".into()),
        ..Default::default()
    });
    st.disks[0].holders = vec!["dm-9".into()];
    st.virtual_devices.push(VirtualDevice {
        name: "dm-9".into(),
        maj_min: "254:9".into(),
        dm_name: Some("pool_gnt-disk0".into()),
        holders: vec!["drbd0".into()],
        ..Default::default()
    });
    st.virtual_devices.push(VirtualDevice {
        name: "drbd0".into(),
        maj_min: "147:0".into(),
        slaves: vec!["dm-9".into()],
        ..Default::default()
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=tok9");
    assert_eq!(p.mode, Mode::Refused);
    assert!(p.actions.is_empty());
    assert!(
        p.refusals.iter().any(|r| r.disk == "nvme"
            && r.reason
                .contains("/dev/pool_gnt/disk0 backs active DRBD device drbd0")),
        "{:?}",
        p.refusals
    );
    // An LV open by a process (a running instance) is refused too.
    let mut st = provisioned_node(&[]);
    st.lvs.push(Lv {
        vg_name: "pool_gnt".into(),
        lv_name: "disk1".into(),
        lv_attr: "-wi-ao----".into(),
        maj_min: Some("254:8".into()),
        ..Default::default()
    });
    st.disks[0].holders = vec!["dm-8".into()];
    st.virtual_devices.push(VirtualDevice {
        name: "dm-8".into(),
        maj_min: "254:8".into(),
        dm_name: Some("pool_gnt-disk1".into()),
        ..Default::default()
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert!(
        p.refusals
            .iter()
            .any(|r| r.reason.contains("pool_gnt/disk1 is open")),
        "{:?}",
        p.refusals
    );
}

#[test]
fn ambiguous_or_missing_selector_is_refused() {
    let l = provision::disks::types::parse_str(
        "sel.yaml",
        "disk:\n  data:\n    type: disk\n    select: { transport: sata, rotational: true }\n    content: { type: lvm_pv, vg: v }\nlvm_vg:\n  v: { type: lvm_vg, lvs: {} }\n",
    )
    .unwrap();
    let mut st = blank_node();
    let mut sdb = disk("sdb", "8:16", 1024 * GIB);
    sdb.serial = Some("HD2".into());
    st.disks.push(sdb);
    let p = run(&l, &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(p.actions.is_empty());
    assert!(
        p.refusals[0].reason.contains("matches 2 disks")
            && p.refusals[0].reason.contains("/dev/sda")
            && p.refusals[0].reason.contains("/dev/sdb"),
        "{:?}",
        p.refusals
    );
    let l2 = provision::disks::types::parse_str("sel.yaml", "disk:\n  data:\n    type: disk\n    select: { serial: HD2 }\n    content: { type: lvm_pv, vg: v }\nlvm_vg:\n  v: { type: lvm_vg }\n").unwrap();
    let p = run(&l2, &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Provision);
    assert_eq!(p.disks[0].device.as_deref(), Some("/dev/sdb"));
    let l3 = provision::disks::types::parse_str("sel.yaml", "disk:\n  data:\n    type: disk\n    select: { serial: NOPE, size: 1T..2T }\n    content: { type: lvm_pv, vg: v }\nlvm_vg:\n  v: { type: lvm_vg }\n").unwrap();
    let p = run(&l3, &st, "homelab.provision_disks=true");
    assert!(p.refusals[0].reason.contains("matches no disk"));
}

#[test]
fn unparseable_flag_never_wipes() {
    for cmdline in [
        "homelab.provision_disks=maybe",
        "homelab.provision_disks=",
        "homelab.provision_disks=true homelab.wipe_foreign=,",
    ] {
        let p = run(&ganeti(), &blank_node(), cmdline);
        assert_eq!(p.mode, Mode::Refused, "{cmdline}");
        assert!(p.actions.is_empty(), "{cmdline}");
        assert!(p.refusals.iter().any(|r| r.disk == "cmdline"), "{cmdline}");
    }
}

/// The exit code of a refusal comes from its kind, never from its words (issue 16): a bad
/// cmdline value alone is bad input (3); token mode without a VG, or a bad value beside a disk
/// that is not found, is a refusal (4). A layout disk named `cmdline` is a disk like any other.
#[test]
fn refusal_exit_codes_come_from_the_refusal_kind() {
    use provision::exit::Code;
    let code = |p: &Plan| provision::disks::plan_error(p).map(|e| provision::exit::code_of(&e));
    let p = run(&ganeti(), &blank_node(), "homelab.provision_disks=maybe");
    assert!(
        p.refusals
            .iter()
            .all(|r| r.kind == RefusalKind::BadCmdlineValue),
        "{:?}",
        p.refusals
    );
    assert_eq!(code(&p), Some(Code::BadInput));

    // No VG, and the one disk, named "cmdline", is not on this machine.
    let l = provision::disks::types::parse_str(
        "t.yaml",
        "disk:\n  cmdline:\n    type: disk\n    device: /dev/sdz\n    content: { type: filesystem, format: ext4, mountpoint: /srv }\n",
    )
    .unwrap();
    let p = run(&l, &blank_node(), "homelab.provision_disks=tok1");
    let kinds: Vec<RefusalKind> = p.refusals.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [RefusalKind::Resolution, RefusalKind::TokenWithoutVg],
        "{:?}",
        p.refusals
    );
    assert_eq!(code(&p), Some(Code::Refused));
    let p = run(&l, &blank_node(), "homelab.provision_disks=maybe");
    assert_eq!(p.mode, Mode::Refused);
    assert_eq!(code(&p), Some(Code::Refused), "{:?}", p.refusals);
    // Mount-only: the missing disk is named missing (exit 9), not kept as a refusal.
    let p = run(&l, &blank_node(), "");
    assert_eq!(p.mode, Mode::MountOnly);
    assert!(p.refusals.is_empty(), "{:?}", p.refusals);
    assert!(
        p.missing
            .iter()
            .any(|m| m.starts_with("disk cmdline (/dev/sdz): not found")),
        "{:?}",
        p.missing
    );
    assert_eq!(code(&p), Some(Code::Missing));
}

#[test]
fn mount_only_names_what_is_missing_and_checks_partition_labels() {
    let p = run(&ganeti(), &blank_node(), "");
    assert_eq!(p.mode, Mode::MountOnly);
    assert!(
        p.missing
            .iter()
            .any(|m| m.contains("VG pool_host not found")),
        "{:?}",
        p.missing
    );
    assert!(
        p.missing
            .iter()
            .any(|m| m.contains("partition 1 (ESP) does not exist")),
        "{:?}",
        p.missing
    );
    // disks shuffled: /dev/sda now carries someone else's partition 1
    let mut st = provisioned_node(&[]);
    st.disks[1].partitions[0].part_label = Some("other".into());
    let p = run(&ganeti(), &st, "");
    assert!(
        p.missing
            .iter()
            .any(|m| m.contains("is named \"other\"") && m.contains("right disk")),
        "{:?}",
        p.missing
    );
}

#[test]
fn plan_hash_is_stable_and_changes_with_the_plan() {
    let a = run(&ganeti(), &blank_node(), "homelab.provision_disks=true");
    let b = run(&ganeti(), &blank_node(), "homelab.provision_disks=true");
    assert_eq!(a.plan_hash, b.plan_hash);
    assert_eq!(a.plan_hash.len(), 16);
    let mut st = blank_node();
    st.disks.swap(0, 1);
    st.disks[0].name = "sdb".into();
    st.disks[0].path = "/dev/sdb".into();
    st.disks[0].links.clear();
    let c = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert_ne!(a.plan_hash, c.plan_hash);
}

#[test]
fn vm_layout_and_thin_pools_plan() {
    let l = provision::disks::types::load(&repo("layouts/vm.yaml")).unwrap();
    let st = SystemState::blank_for(&l, 20 * GIB);
    let p = run(&l, &st, "homelab.provision_disks=run-1");
    assert_eq!(p.mode, Mode::Provision);
    let lvc: Vec<String> = p
        .actions
        .iter()
        .filter(|a| a.op == provision::disks::types::lvm::LV_CREATE)
        .map(|a| provision::system::shell_join(a.argv().unwrap()))
        .collect();
    assert_eq!(lvc.len(), 3);
    assert!(
        lvc[2].contains("-n state -l 100%FREE"),
        "100%FREE comes last: {lvc:?}"
    );
    let thin =
        std::fs::read_to_string(repo("../shared/testdata/disko-examples/lvm-thin.json")).unwrap();
    let l = provision::disks::types::parse_str("lvm-thin.json", &thin).unwrap();
    let p = run(
        &l,
        &SystemState::blank_for(&l, 20 * GIB),
        "homelab.provision_disks=true",
    );
    let lvc: Vec<String> = p
        .actions
        .iter()
        .filter(|a| a.op == provision::disks::types::lvm::LV_CREATE)
        .map(|a| provision::system::shell_join(a.argv().unwrap()))
        .collect();
    let pool = lvc
        .iter()
        .position(|c| c.contains("--type thin-pool"))
        .unwrap();
    let thin_lv = lvc
        .iter()
        .position(|c| c.contains("--thinpool thinpool"))
        .unwrap();
    assert!(pool < thin_lv, "{lvc:?}");
}

#[test]
fn state_snapshot_round_trips() {
    let st = provisioned_node(&["provision.token=tok1"]);
    let json = serde_json::to_string(&serde_json::json!({ "state": st })).unwrap();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.json");
    std::fs::write(&f, json).unwrap();
    assert_eq!(provision::disks::load_state(&f).unwrap(), st);
    std::fs::write(&f, r#"{"disks": [], "bogus": 1}"#).unwrap();
    let e = provision::disks::load_state(&f).unwrap_err();
    assert!(format!("{e:#}").contains("bogus"));
}

#[test]
fn vg_reaching_beyond_the_layout_is_refused() {
    // pool_host also has a PV on /dev/sdc, which the layout does not name.
    let mut st = provisioned_node(&[]);
    st.disks.push(disk("sdc", "8:32", 100 * GIB));
    st.disks[2].fs_type = Some("LVM2_member".into());
    st.pvs.push(Pv {
        pv_name: "/dev/sdc".into(),
        vg_name: "pool_host".into(),
        pv_size: 100 * GIB,
        ..Default::default()
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(p.actions.is_empty());
    assert!(
        p.refusals.iter().any(|r| r.disk == "hdd"
            && r.kind == RefusalKind::Span
            && r.reason.contains("VG pool_host also has PV /dev/sdc")),
        "{:?}",
        p.refusals
    );
}

/// Issue 14: blank target disks, but a VG named like one of the layout's already lives whole on
/// a disk the layout does not name (disks swapped, or another node's disk here): refused before
/// anything is planned.
#[test]
fn a_layout_vg_name_taken_by_a_disk_outside_the_layout_is_refused() {
    let mut st = blank_node();
    st.disks.push(disk("sdc", "8:32", 100 * GIB));
    st.disks[2].fs_type = Some("LVM2_member".into());
    st.pvs.push(Pv {
        pv_name: "/dev/sdc".into(),
        vg_name: "pool_gnt".into(),
        pv_size: 100 * GIB,
        ..Default::default()
    });
    st.vgs.push(Vg {
        vg_name: "pool_gnt".into(),
        pv_count: 1,
        ..Default::default()
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(p.actions.is_empty());
    assert!(
        p.refusals.iter().any(|r| r.disk == "lvm_vg.pool_gnt"
            && r.kind == RefusalKind::VgNameTaken
            && r.reason
                .contains("a VG named pool_gnt already exists on /dev/sdc")),
        "{:?}",
        p.refusals
    );
    // The same VG on a target disk is ours to replace: no such refusal.
    let p = run(
        &ganeti(),
        &provisioned_node(&[]),
        "homelab.provision_disks=true",
    );
    assert_eq!(p.mode, Mode::Provision, "{:?}", p.refusals);
}

#[test]
fn md_holder_and_duplicate_disks_are_refused() {
    let mut st = provisioned_node(&[]);
    st.disks[1].partitions[0].holders = vec!["md127".into()];
    st.virtual_devices.push(VirtualDevice {
        name: "md127".into(),
        maj_min: "9:127".into(),
        ..Default::default()
    });
    let p = run(&ganeti(), &st, "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(
        p.refusals
            .iter()
            .any(|r| r.reason.contains("/dev/sda1 is held by md127")),
        "{:?}",
        p.refusals
    );

    // Two layout disks naming one device (by kernel name and by-id).
    let text = std::fs::read_to_string(repo("layouts/ganeti-node.yaml"))
        .unwrap()
        .replace("/dev/nvme0n1", "/dev/disk/by-id/ata-QEMU_HARDDISK_HD1");
    let l = provision::disks::types::parse_str("dup.yaml", &text).unwrap();
    let p = run(&l, &blank_node(), "homelab.provision_disks=true");
    assert_eq!(p.mode, Mode::Refused);
    assert!(
        p.refusals
            .iter()
            .any(|r| r.kind == RefusalKind::Resolution && r.reason.contains("which is also disk")),
        "{:?}",
        p.refusals
    );
}

/// The every-boot path plans without reading LVM (disks::lvm_read_for): its actions, and so its
/// hash, must be exactly those of a plan made on the full LVM state, which is what `--dry-run`
/// prints; it names no VG as missing (it cannot know) and tells no disk class it cannot tell.
#[test]
fn mount_only_without_reading_lvm_plans_the_same_actions() {
    let full = provisioned_node(&["provision.token=tok1"]);
    let mut quick = full.clone();
    quick.pvs.clear();
    quick.vgs.clear();
    quick.lvs.clear();
    quick.lvm_unread = true;
    let a = run(&ganeti(), &full, "ro quiet");
    let b = run(&ganeti(), &quick, "ro quiet");
    assert_eq!(b.mode, Mode::MountOnly);
    assert_eq!(a.actions, b.actions);
    assert_eq!(a.plan_hash, b.plan_hash);
    assert!(b.missing.is_empty(), "{:?}", b.missing);
    assert!(b.disks.iter().all(|d| d.class.is_none()), "{:?}", b.disks);
    assert!(b.disks[0]
        .content
        .iter()
        .any(|c| c.contains("VGs not read")));
    // On blank disks the same plan is made too: what is missing shows at activation.
    let blank = run(&ganeti(), &blank_node(), "ro quiet");
    assert!(!blank.missing.is_empty());
    let mut blank_quick = blank_node();
    blank_quick.lvm_unread = true;
    let c = run(&ganeti(), &blank_quick, "ro quiet");
    assert!(
        c.missing.iter().all(|m| !m.contains("VG")),
        "{:?}",
        c.missing
    );
}

/// Provisioning formats its devices concurrently: the plan's order is unchanged, the executor
/// runs each device's "wait, then mkfs" chain beside the others'. Nothing else overlaps.
#[test]
fn formatting_runs_concurrently_and_nothing_else_does() {
    use provision::disks::step::concurrent_groups;
    let p = run(&ganeti(), &blank_node(), "homelab.provision_disks=true");
    let g = concurrent_groups(&p.actions);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0].len(), 4, "ESP, home, swap, var: {g:?}");
    for chain in &g[0] {
        let ops: Vec<Op> = chain.iter().map(|&i| p.actions[i].op).collect();
        assert_eq!(ops[0], Op::WAIT_DEVICE);
        assert!(matches!(
            ops[1],
            provision::disks::types::filesystem::MKFS | provision::disks::types::swap::MKSWAP
        ));
        assert_eq!(p.actions[chain[0]].device(), p.actions[chain[1]].device());
    }
    // contiguous: the group covers exactly its steps, the tag comes after all of them
    let steps: Vec<usize> = g[0].iter().flatten().copied().collect();
    assert_eq!(steps, (steps[0]..steps[0] + 8).collect::<Vec<_>>());
    assert_eq!(
        p.actions[steps[7] + 1].op,
        provision::disks::types::lvm::TAG
    );
    let text = provision::disks::plan::render_text(&p);
    assert!(text.contains("may run concurrently, 4 devices"), "{text}");
    let m = run(
        &ganeti(),
        &provisioned_node(&["provision.token=tok1"]),
        "ro quiet",
    );
    assert!(concurrent_groups(&m.actions).is_empty());
}

fn missing_code(p: &Plan) -> Option<provision::exit::Code> {
    provision::disks::plan_error(p).map(|e| provision::exit::code_of(&e))
}

/// Fault 4 of issue 14: a partition whose filesystem is missing or of another type makes the
/// real mount-only run exit 9 naming it (execute::expect_type); the plan — what `--dry-run`,
/// `--state` and `status` show — finds the same from the observed state and exits the same.
#[test]
fn mount_only_names_a_missing_or_wrong_filesystem_as_the_real_run_would() {
    use provision::exit::Code;
    let ok = provisioned_node(&[]);
    let p = run(&ganeti(), &ok, "");
    assert!(p.missing.is_empty(), "{:?}", p.missing);
    assert_eq!(missing_code(&p), None);

    // No filesystem on the ESP (a provisioning run cut off before its mkfs).
    let mut st = provisioned_node(&[]);
    st.disks[1].partitions[0].fs_type = None;
    let p = run(&ganeti(), &st, "");
    assert_eq!(
        p.missing,
        ["disk hdd: partition 1 (ESP): /dev/sda1 has no filesystem where the layout expects vfat — nothing was formatted (a provisioning run cut off before its mkfs, or another disk?)"]
    );
    assert_eq!(missing_code(&p), Some(Code::Missing));
    assert!(provision::disks::plan::render_text(&p)
        .contains("MISSING disk hdd: partition 1 (ESP): /dev/sda1 has no filesystem"));

    // Another type. vfat that libblkid calls msdos is the same thing, as for the real run.
    st.disks[1].partitions[0].fs_type = Some("ext4".into());
    let p = run(&ganeti(), &st, "");
    assert_eq!(p.missing.len(), 1, "{:?}", p.missing);
    assert!(
        p.missing[0].contains("/dev/sda1 has a ext4 signature where the layout expects vfat"),
        "{:?}",
        p.missing
    );
    assert_eq!(missing_code(&p), Some(Code::Missing));
    st.disks[1].partitions[0].fs_type = Some("msdos".into());
    assert!(run(&ganeti(), &st, "").missing.is_empty());

    // Already mounted at its place (under --root): the real run does not look again.
    st.disks[1].partitions[0].fs_type = Some("ext4".into());
    st.mounts.push(Mount {
        maj_min: "8:1".into(),
        source: "/dev/sda1".into(),
        target: "/sysroot/boot".into(),
        fs_type: "ext4".into(),
    });
    let opts = |root: &str| PlanOptions {
        root: Some(root.into()),
        ..Default::default()
    };
    let with = |st: &SystemState, root: &str| {
        plan(&ganeti(), st, &settings("", "homelab"), &opts(root)).unwrap()
    };
    assert!(with(&st, "/sysroot").missing.is_empty());
    // …but mounted elsewhere, it is checked before its own mount.
    assert_eq!(with(&st, "/").missing.len(), 1);

    // LVs: a probed one with another filesystem is named; swap already on is not checked; an
    // LV that was not probed (inactive, or an old snapshot) is unknown, not missing.
    let mut st = provisioned_node(&[]);
    for lv in st.lvs.iter_mut() {
        lv.fs_probed = true;
        lv.fs_type = Some(if lv.lv_name == "swap" { "swap" } else { "ext4" }.into());
    }
    assert!(run(&ganeti(), &st, "").missing.is_empty());
    st.lvs[1].fs_type = Some("xfs".into()); // home
    st.lvs[0].fs_type = None; // swap
    st.lvs[2].fs_probed = false; // var
    st.lvs[2].fs_type = None;
    let p = run(&ganeti(), &st, "");
    assert_eq!(
        p.missing,
        [
            "LV pool_host/home: /dev/mapper/pool_host-home has a xfs signature where the layout expects ext4 — nothing was formatted (a provisioning run cut off before its mkfs, or another disk?)",
            "LV pool_host/swap: /dev/mapper/pool_host-swap has no filesystem where the layout expects swap — nothing was formatted (a provisioning run cut off before its mkfs, or another disk?)",
        ]
    );
    st.swaps.push(SwapEntry {
        path: "/dev/dm-0".into(),
        maj_min: Some("254:0".into()),
    });
    assert_eq!(run(&ganeti(), &st, "").missing.len(), 1);

    // Types from the udev database (the every-boot path): the executor's own probe decides.
    let mut st = provisioned_node(&[]);
    st.disks[1].partitions[0].fs_type = None;
    st.types_from_udev = true;
    assert!(run(&ganeti(), &st, "").missing.is_empty());
    // Provisioning makes the filesystems: nothing to name.
    let mut st = blank_node();
    st.disks[1].partitions.clear();
    assert!(run(&ganeti(), &st, "homelab.provision_disks=true")
        .missing
        .is_empty());
}

/// The same through the binary over a `--state` snapshot (as `provision status --output json`
/// writes it): `--dry-run` exits 9 and names the partition; a good snapshot exits 0.
#[test]
fn dry_run_over_a_state_snapshot_exits_as_the_real_run_would() {
    let d = tempfile::tempdir().unwrap();
    let dry = |st: &SystemState| {
        let f = d.path().join("status.json");
        std::fs::write(
            &f,
            serde_json::to_string(&serde_json::json!({ "state": st })).unwrap(),
        )
        .unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
            .arg("--layout")
            .arg(repo("layouts/ganeti-node.yaml"))
            .arg("--root")
            .arg(d.path())
            .args(["--cmdline", "", "--state"])
            .arg(&f)
            .args(["--dry-run", "disks"])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (rc, out) = dry(&provisioned_node(&[]));
    assert_eq!(rc, Some(0), "{out}");
    for (fs, words) in [
        (
            None,
            "/dev/sda1 has no filesystem where the layout expects vfat",
        ),
        (
            Some("swap"),
            "/dev/sda1 has a swap signature where the layout expects vfat",
        ),
    ] {
        let mut st = provisioned_node(&[]);
        st.disks[1].partitions[0].fs_type = fs.map(String::from);
        let (rc, out) = dry(&st);
        assert_eq!(rc, Some(9), "{out}");
        assert!(
            out.contains(&format!("MISSING disk hdd: partition 1 (ESP): {words}")),
            "{out}"
        );
    }
}
