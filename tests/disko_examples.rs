//! Every disko example (../shared/testdata/disko-examples, outside corpus) either parses into a
//! layout or is rejected with an error naming the unsupported type and where it sits. None panics.

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/disko-examples")
}

/// Examples this agent must accept (only supported types in them); each also runs in a VM guest
/// (vm-tests `example-<name>`).
const MUST_PLAN: &[&str] = &[
    "simple-efi.json",
    "lvm-sizes-sort.json",
    "lvm-thin.json",
    "legacy-table.json",
    "tmpfs.json",
    "negative-size.json",
    "gpt-bios-compat.json",
    "multi-device-no-deps.json",
    "hybrid-tmpfs-on-root.json",
    "xfs-with-quota.json",
    "f2fs.json",
    "hybrid-mbr.json",
    "long-device-name.json",
    "gpt-name-with-whitespace.json",
    "gpt-unformatted.json",
    "hybrid.json",
    "legacy-table-with-whitespace.json",
];

#[test]
fn every_disko_example_plans_or_is_rejected_clearly() {
    let dir = corpus();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the shared test corpus must be present)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 30,
        "expected the whole corpus, found {}",
        entries.len()
    );
    let (mut ok, mut rejected) = (0, 0);
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        match provision::disks::types::parse_str(&name, &text) {
            Ok(layout) => {
                ok += 1;
                assert!(
                    !layout.disks.is_empty() || !layout.nodev.is_empty(),
                    "{name}: empty layout"
                );
                // A dry-run plan on blank disks of a plausible size must come out for it.
                let state = provision::disks::state::SystemState::blank_for(&layout, 64 << 30);
                let settings =
                    provision::cmdline::settings("homelab.provision_disks=true", "homelab");
                let plan =
                    provision::disks::plan::plan(&layout, &state, &settings, &Default::default())
                        .unwrap_or_else(|e| panic!("{name}: planning failed: {e:#}"));
                assert_eq!(
                    plan.mode,
                    provision::disks::plan::Mode::Provision,
                    "{name}: {:?}",
                    plan.refusals
                );
            }
            Err(e) => {
                rejected += 1;
                assert!(
                    !MUST_PLAN.contains(&name.as_str()),
                    "{name} must plan, got:\n{e}"
                );
                for p in &e.problems {
                    // Every problem names where it sits, and unsupported types are named.
                    assert!(p.contains(": "), "{name}: problem without a path: {p}");
                }
                let all = e.to_string();
                assert!(
                    all.contains("is not supported") || all.contains("not supported"),
                    "{name}: rejection does not name an unsupported feature:\n{all}"
                );
            }
        }
    }
    eprintln!("disko examples: {ok} planned, {rejected} rejected");
    assert!(ok >= MUST_PLAN.len());
}

/// The provisioning plan of an example on blank 64 GiB disks, in words.
fn plan_text(name: &str) -> String {
    let text = std::fs::read_to_string(corpus().join(name)).unwrap();
    let layout = provision::disks::types::parse_str(name, &text).unwrap();
    let state = provision::disks::state::SystemState::blank_for(&layout, 64 << 30);
    let settings = provision::cmdline::settings("homelab.provision_disks=true", "homelab");
    let plan =
        provision::disks::plan::plan(&layout, &state, &settings, &Default::default()).unwrap();
    provision::disks::plan::render_text(&plan)
}

#[test]
fn hybrid_mbr_example_plans_diskos_hybrid_mbr() {
    let t = plan_text("hybrid-mbr.json");
    // Partitions in disko's order (TOW-BOOT-FI priority 1, ESP 1000, root 9001), then the
    // hybrid MBR with TOW-BOOT-FI as entry 1 and the protective entry last
    // (efiGptPartitionFirst: false), its MBR type 0x0c, no bootable flag.
    let want = [
        "--change-name=1:disk-main-TOW-BOOT-FI",
        "--change-name=2:disk-main-ESP",
        "--change-name=3:disk-main-root",
        "making a hybrid MBR on /dev/vda (GPT partition 1, protective entry last)",
        "$ sgdisk --hybrid=1:EE /dev/vda",
        "$ sfdisk --no-reread --no-tell-kernel --label-nested dos --part-type /dev/vda 1 0c",
        "telling the kernel about the new partitions of /dev/vda",
    ];
    let mut at = 0;
    for w in want {
        let i = t[at..]
            .find(w)
            .unwrap_or_else(|| panic!("{w:?} missing or out of order in:\n{t}"));
        at += i + w.len();
    }
    assert!(!t.contains("--activate"), "{t}");
}

#[test]
fn long_device_name_example_gets_diskos_hashed_labels() {
    let t = plan_text("long-device-name.json");
    assert!(
        t.contains("--change-name=1:36601cdc461d3589a280204a4b674b3cad5d")
            && t.contains("--change-name=2:bf3cfbd77a309f330b322e19e5a8377852b1"),
        "{t}"
    );
}

#[test]
fn rejection_names_type_and_path() {
    let text = std::fs::read_to_string(corpus().join("zfs.json")).unwrap();
    let e = provision::disks::types::parse_str("zfs.json", &text).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("type \"zfs\" is not supported"), "{s}");
    assert!(s.contains("disk.") && s.contains(".content"), "{s}");
}

#[test]
#[ignore = "prints every example's outcome; run with --ignored --nocapture to review"]
fn print_outcomes() {
    let mut entries: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        match provision::disks::types::parse_str(&name, &std::fs::read_to_string(&p).unwrap()) {
            Ok(l) => println!("OK {name}: {} disks, {} vgs", l.disks.len(), l.vgs.len()),
            Err(e) => println!("REJECT {e}"),
        }
    }
}

/// `validate --output json`: the verdict, the problems as the text output prints them, and the
/// layout document as read — YAML turned into JSON, nothing interpreted (vm-tests reads YAML
/// layouts through it).
#[test]
fn validate_json_gives_problems_and_the_document() {
    let run = |layout: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
            .args(["--output", "json", "--layout"])
            .arg(layout)
            .arg("validate")
            .env_remove("JOURNAL_STREAM")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), v)
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("l.yaml");
    std::fs::write(
        &yaml,
        "disk:\n  a:\n    device: /dev/vda\n    content:\n      type: gpt\n      partitions:\n        \
         p: {size: 100%, type: \"8E00\", content: {type: lvm_pv, vg: v}}\nlvm_vg:\n  v:\n    \
         lvs: {x: {size: 1G}}\n",
    )
    .unwrap();
    let (code, v) = run(&yaml);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(
        v["layout"]["disk"]["a"]["content"]["partitions"]["p"]["type"],
        "8E00"
    );
    assert_eq!(v["layout"]["lvm_vg"]["v"]["lvs"]["x"]["size"], "1G");

    let (code, v) = run(&corpus().join("lvm-raid.json"));
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["ok"], false);
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("lvm-raid.json: mdadm.boot: type \"mdadm\" is not supported")),
        "{problems:?}"
    );
    assert_eq!(
        v["layout"]["lvm_vg"]["pool"]["lvs"]["root"]["lvm_type"],
        "mirror"
    );
}

/// lvm refuses `--wipesignatures` on a thin pool (lvcreate: "Option --wipesignatures is
/// unsupported with thin pools"), and this example's pool was the step that failed in a guest;
/// every other LV keeps it.
#[test]
fn lvm_thin_example_creates_its_pool_as_lvm_accepts() {
    let t = plan_text("lvm-thin.json");
    let lvcreates: Vec<&str> = t.lines().filter(|l| l.contains("lvcreate")).collect();
    assert_eq!(lvcreates.len(), 4, "{t}");
    for l in &lvcreates {
        let pool = l.contains("--type thin-pool");
        assert_eq!(!pool, l.contains("--wipesignatures y"), "{l}");
    }
    assert!(
        lvcreates.iter().any(|l| l.contains("--type thin-pool")),
        "{t}"
    );
}

/// The plan hash of every example that plans and of the repository's layouts, for a provisioning
/// run (`true`, and a token), a mount-only run, and on 4096-byte sectors: a reviewed hash
/// (`--plan-hash`) must not move when the code that builds or renders steps is reshaped, only
/// when a plan really changes (ARCHITECTURE.md §2.5, canonical rendering v1). The file is created
/// when absent; a deliberate change of a plan edits it in the commit that says why.
#[test]
fn every_plan_hash_is_pinned() {
    let mut inputs: Vec<(String, String)> = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        inputs.push((name, std::fs::read_to_string(&p).unwrap()));
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for l in ["layouts/ganeti-node.yaml", "layouts/vm.yaml"] {
        inputs.push((
            l.to_string(),
            std::fs::read_to_string(repo.join(l)).unwrap(),
        ));
    }
    let mut out = String::new();
    for (name, text) in &inputs {
        let Ok(layout) = provision::disks::types::parse_str(name, text) else {
            continue;
        };
        for (sector, cmdline) in [
            (512, "homelab.provision_disks=true"),
            (512, "homelab.provision_disks=tok-1"),
            (512, "ro quiet"),
            (4096, "homelab.provision_disks=true"),
        ] {
            let mut state = provision::disks::state::SystemState::blank_for(&layout, 1 << 40);
            for d in &mut state.disks {
                d.logical_sector_size = sector;
                d.physical_sector_size = sector;
            }
            let settings = provision::cmdline::settings(cmdline, "homelab");
            let line =
                match provision::disks::plan::plan(&layout, &state, &settings, &Default::default())
                {
                    Ok(p) => format!("{} {} steps", p.plan_hash, p.actions.len()),
                    Err(e) => format!("error: {}", format!("{e:#}").lines().next().unwrap_or("")),
                };
            out.push_str(&format!("{name} {sector} {cmdline}: {line}\n"));
        }
    }
    let path = repo.join("tests/golden/plan-hashes.txt");
    match std::fs::read_to_string(&path) {
        Ok(want) => assert_eq!(out, want, "plan hashes moved ({})", path.display()),
        Err(_) => {
            std::fs::write(&path, &out).unwrap();
            panic!("{} created: review and commit it", path.display());
        }
    }
}

/// The tools each registered device type says a provisioning run calls (`types::tools`) are
/// exactly the commands of the provisioning plan, for every disko example that plans and the
/// shipped layouts, on blank disks.
#[test]
fn each_types_tools_are_the_commands_its_provisioning_steps_call() {
    let mut inputs: Vec<(String, String)> = Vec::new();
    for e in std::fs::read_dir(corpus()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            inputs.push((name, std::fs::read_to_string(&p).unwrap()));
        }
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for l in ["layouts/ganeti-node.yaml", "layouts/vm.yaml"] {
        inputs.push((l.into(), std::fs::read_to_string(repo.join(l)).unwrap()));
    }
    let settings = provision::cmdline::settings("homelab.provision_disks=true", "homelab");
    let mut planned = 0;
    for (name, text) in &inputs {
        let Ok(layout) = provision::disks::types::parse_str(name, text) else {
            continue;
        };
        let state = provision::disks::state::SystemState::blank_for(&layout, 1 << 40);
        let Ok(plan) =
            provision::disks::plan::plan(&layout, &state, &settings, &Default::default())
        else {
            continue;
        };
        let mut called: Vec<String> = plan
            .actions
            .iter()
            .filter_map(|a| a.command().and_then(|v| v.into_iter().next()))
            .collect();
        called.sort();
        called.dedup();
        assert_eq!(provision::disks::types::tools(&layout), called, "{name}");
        planned += 1;
    }
    assert!(planned >= 19, "only {planned} layouts planned");
}
