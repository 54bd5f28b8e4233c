//! Plan steps (DESIGN §6, ARCHITECTURE.md §2.5): what one step of a plan is, shared by the
//! planner, which builds them, and the executor, which carries them out.
//!
//! A [`Step`] is a label ([`Op`]), whether it destroys data, its description, the concurrent chain
//! it belongs to, and an [`Effect`] that carries exactly what the executor needs — mount options
//! split and swap flags computed when planning, modes as numbers. The plan hash is taken over the
//! hand-written canonical rendering of `canonical` (version 1), never over serde of these types,
//! so reshaping them moves no reviewed hash. `options` turns fstab-style option strings into
//! mount(2) and swapon(2) arguments.

mod canonical;
mod options;

pub use canonical::{plan_v1, step_v1};
pub use options::{MountOptions, SwapOptions};

use serde::Serialize;

/// `x.to_string()`, shorter in argv lists.
pub(crate) fn s(x: &str) -> String {
    x.to_string()
}

/// What a step is, as a label: logs, tests and the rendering (`op`, kebab-case) use it; the
/// executor goes by the [`Effect`]. The labels of one device type's steps are that type's own
/// constants (`disks::types::lvm::VG_CREATE`, rendered `vg-create`), so a new type adds labels
/// in its module, not here; the stages every plan has (`write-file`, `partition`, `verify-table`,
/// `wait-device`, `mount`, `ensure-dir`) are below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op(&'static str);

impl Op {
    /// A label: kebab-case, as rendered.
    pub const fn new(label: &'static str) -> Op {
        Op(label)
    }
    /// The label as rendered (`vg-create`).
    pub fn as_str(self) -> &'static str {
        self.0
    }
    /// A configuration file written (lvmlocal.conf).
    pub const WRITE_FILE: Op = Op("write-file");
    /// A partition table written or told to the kernel (gpt, table).
    pub const PARTITION: Op = Op("partition");
    /// Read the partition table back from the disk and compare it with the plan.
    pub const VERIFY_TABLE: Op = Op("verify-table");
    pub const WAIT_DEVICE: Op = Op("wait-device");
    /// mount(2) of a device or a nodev filesystem.
    pub const MOUNT: Op = Op("mount");
    pub const ENSURE_DIR: Op = Op("ensure-dir");
    /// The labels above, for the test that no two owners share one.
    pub const STAGES: &'static [Op] = &[
        Op::WRITE_FILE,
        Op::PARTITION,
        Op::VERIFY_TABLE,
        Op::WAIT_DEVICE,
        Op::MOUNT,
        Op::ENSURE_DIR,
    ];
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub op: Op,
    pub destructive: bool,
    /// Human description (`formatting pool_host/var (ext4)`); the VM harness names crash points
    /// by it.
    pub description: String,
    /// Steps with the same chain number are one device's chain (wait for it, then format it);
    /// consecutive chains run concurrently ([`concurrent_groups`]). Set by the planner, not
    /// rendered: concurrency changes no plan hash.
    pub chain: Option<u32>,
    pub effect: Effect,
    /// How the executor explains this step's failure, if it can. Not rendered: it changes what a
    /// failure says, never what a run does.
    pub explain: Option<Explain>,
}

/// What a step expected, for the executor to check with one read when the step fails and turn
/// into an error naming what is missing (ARCHITECTURE.md §2.5, "Failures explained by apply").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explain {
    /// The step needs these VGs and LVs of the layout (a mount-only activation: every VG it
    /// activates with all its LVs; the wait for an LV's device: that LV). One `lvm fullreport`
    /// with `config` names those that do not exist (exit 9, [`crate::disks::lvm::missing`]'s
    /// words); `prefix` is the kernel cmdline prefix, for the hint how to provision.
    LvmExists {
        config: String,
        vgs: Vec<(String, Vec<String>)>,
        prefix: String,
    },
}

/// What a step does: the executor's whole vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// An external command through the context's [`Runner`](crate::system::Runner). `device` is
    /// the device it writes or acts on (logs, rendering), when it is one.
    Run {
        argv: Vec<String>,
        /// Fed to the command's stdin (sfdisk scripts).
        stdin: Option<String>,
        device: Option<String>,
    },
    /// Write `content` to `path` (under the target root) atomically with `mode`, unless it
    /// already holds exactly that.
    WriteFile {
        path: String,
        content: String,
        mode: u32,
    },
    /// Wait for a block device node to appear (udev, or the kernel for a partition).
    WaitDevice { path: String },
    /// Read the ext superblock; run [`fsck_argv`] only when it is not clean. Skipped when the
    /// device is mounted; the device's type is checked first.
    Fsck { device: String, fs_type: String },
    /// mount(2) of `source` on `target` (under the target root), unless that is mounted there
    /// already; a block device's type is checked first.
    Mount {
        source: String,
        target: String,
        fs_type: String,
        options: MountOptions,
    },
    /// swapon(2), unless the device is swap already; its swap signature is checked first.
    Swapon {
        device: String,
        options: SwapOptions,
    },
    /// Create `path` (under the target root) if needed; set its owner, group and mode.
    EnsureDir {
        path: String,
        owner: String,
        group: String,
        mode: u32,
    },
    /// Read the partition table of `disk` back and compare it with `expect` (geometry, issue 14).
    VerifyTable { disk: String, expect: PlannedTable },
}

/// What carrying out one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step changed the machine (or waited for it), with a note when there is more to say
    /// (`errors corrected`).
    Changed(Option<String>),
    /// Nothing to do: the machine was already as the step would leave it (`already mounted`).
    AlreadyDone(String),
}

impl Outcome {
    /// The note shown after a step's description, if any.
    pub fn note(&self) -> Option<&str> {
        match self {
            Outcome::Changed(n) => n.as_deref(),
            Outcome::AlreadyDone(why) => Some(why),
        }
    }
    /// `changed` or `already-done`, for the JSON report.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Changed(_) => "changed",
            Outcome::AlreadyDone(_) => "already-done",
        }
    }
}

/// The command an [`Effect::Fsck`] runs when the superblock is not clean.
pub fn fsck_argv(device: &str) -> Vec<String> {
    vec![s("e2fsck"), s("-p"), device.to_string()]
}

impl Step {
    /// A step with any effect.
    pub(crate) fn new(
        op: Op,
        destructive: bool,
        description: impl Into<String>,
        effect: Effect,
    ) -> Step {
        Step {
            op,
            destructive,
            description: description.into(),
            chain: None,
            effect,
            explain: None,
        }
    }
    /// A step that runs `argv`.
    pub(crate) fn run(
        op: Op,
        destructive: bool,
        description: impl Into<String>,
        argv: Vec<String>,
    ) -> Step {
        let effect = Effect::Run {
            argv,
            stdin: None,
            device: None,
        };
        Step::new(op, destructive, description, effect)
    }
    /// The device a command step acts on (no-op on other effects, whose device is their own).
    pub(crate) fn on(mut self, dev: &str) -> Step {
        if let Effect::Run { device, .. } = &mut self.effect {
            *device = Some(dev.to_string());
        }
        self
    }
    /// What a command step gets on stdin.
    pub(crate) fn with_stdin(mut self, text: String) -> Step {
        if let Effect::Run { stdin, .. } = &mut self.effect {
            *stdin = Some(text);
        }
        self
    }

    /// The argv of a command step ([`Effect::Run`]).
    pub fn argv(&self) -> Option<&[String]> {
        match &self.effect {
            Effect::Run { argv, .. } => Some(argv),
            _ => None,
        }
    }
    /// Every external command the step may run (a run's argv, an fsck's e2fsck).
    pub fn command(&self) -> Option<Vec<String>> {
        match &self.effect {
            Effect::Run { argv, .. } => Some(argv.clone()),
            Effect::Fsck { device, .. } => Some(fsck_argv(device)),
            _ => None,
        }
    }
    /// The device the step is about, if any (mount's source, the waited-for node, the disk whose
    /// table is read back).
    pub fn device(&self) -> Option<&str> {
        match &self.effect {
            Effect::Run { device, .. } => device.as_deref(),
            Effect::WaitDevice { path } => Some(path),
            Effect::Fsck { device, .. } | Effect::Swapon { device, .. } => Some(device),
            Effect::Mount { source, .. } => Some(source),
            Effect::VerifyTable { disk, .. } => Some(disk),
            Effect::WriteFile { .. } | Effect::EnsureDir { .. } => None,
        }
    }
    /// The path the step writes or mounts on (a mountpoint, a file, a directory).
    pub fn target(&self) -> Option<&str> {
        match &self.effect {
            Effect::Mount { target, .. } => Some(target),
            Effect::WriteFile { path, .. } | Effect::EnsureDir { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// A partition table as planned, in bytes, for the read-back after partitioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedTable {
    /// `gpt` or `dos` (libblkid's names).
    pub kind: String,
    pub partitions: Vec<PlannedPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    pub number: u32,
    /// Bytes from the disk's start.
    pub start: u64,
    /// Bytes.
    pub size: u64,
    /// GPT partition name; None on msdos.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Steps that run concurrently: maximal runs of consecutive steps the planner put in chains
/// ([`Step::chain`]), at least two chains of them. Each entry is one run; each inner list one
/// chain's step indexes (0-based, in plan order), in the order the chains start. Everything else
/// runs one step after another. The plan itself, its order and its hash do not change: the dry
/// run prints the same steps and says which overlap.
pub fn concurrent_groups(steps: &[Step]) -> Vec<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        if steps[i].chain.is_none() {
            i += 1;
            continue;
        }
        let mut run: Vec<(u32, Vec<usize>)> = Vec::new();
        while let Some(c) = steps.get(i).and_then(|s| s.chain) {
            match run.iter_mut().find(|(id, _)| *id == c) {
                Some((_, chain)) => chain.push(i),
                None => run.push((c, vec![i])),
            }
            i += 1;
        }
        if run.len() >= 2 {
            out.push(run.into_iter().map(|(_, chain)| chain).collect());
        }
    }
    out
}

/// Wait for a device node to appear (udev, or the kernel for a partition).
pub(crate) fn wait(dev: &str) -> Step {
    Step::new(
        Op::WAIT_DEVICE,
        false,
        format!("waiting for {dev}"),
        Effect::WaitDevice {
            path: dev.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chained(chain: Option<u32>) -> Step {
        let mut s = wait("/dev/x");
        s.chain = chain;
        s
    }

    #[test]
    fn concurrent_groups_are_runs_of_two_chains_or_more() {
        let plan: Vec<Step> = [
            None,
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            None,
            Some(3),
            Some(3),
        ]
        .into_iter()
        .map(chained)
        .collect();
        // one chain alone (3) runs in order; 1 and 2 overlap
        assert_eq!(concurrent_groups(&plan), vec![vec![vec![1, 2], vec![3, 4]]]);
        let plan: Vec<Step> = [Some(1), Some(2), Some(1), Some(2)]
            .into_iter()
            .map(chained)
            .collect();
        assert_eq!(concurrent_groups(&plan), vec![vec![vec![0, 2], vec![1, 3]]]);
        assert!(concurrent_groups(&[chained(None)]).is_empty());
    }
}
