//! Plan steps (DESIGN §6): what one step of a plan is, shared by the planner, which builds them,
//! and the executor, which carries them out. Today one [`Action`] struct with optional fields per
//! kind of step ([`Op`]); the typed `Step`/`Effect` of ARCHITECTURE.md §2.5 replaces it.

use serde::Serialize;

/// `x.to_string()`, shorter in argv lists.
pub(crate) fn s(x: &str) -> String {
    x.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    WriteFile,
    Deactivate,
    Wipe,
    Partition,
    /// Read the partition table back from the disk and compare it with the plan.
    VerifyTable,
    WaitDevice,
    PvCreate,
    VgCreate,
    LvCreate,
    Mkfs,
    Mkswap,
    Tag,
    Activate,
    Fsck,
    Mount,
    Swapon,
    EnsureDir,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub op: Op,
    pub destructive: bool,
    /// The exact external command, when the step is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Fed to the command's stdin (sfdisk scripts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The partition table a `VerifyTable` step expects on `device`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<PlannedTable>,
    /// Human description (`formatting pool_host/var (ext4)`).
    pub description: String,
}

impl Action {
    pub(crate) fn new(op: Op, destructive: bool, description: impl Into<String>) -> Action {
        Action {
            op,
            destructive,
            argv: None,
            stdin: None,
            device: None,
            target: None,
            fs_type: None,
            options: None,
            owner: None,
            group: None,
            mode: None,
            content: None,
            table: None,
            description: description.into(),
        }
    }
    pub(crate) fn cmd(mut self, argv: Vec<String>) -> Action {
        self.argv = Some(argv);
        self
    }
    pub(crate) fn dev(mut self, d: &str) -> Action {
        self.device = Some(d.to_string());
        self
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

/// Steps that run concurrently: maximal runs of consecutive "wait for a device, then format it"
/// pairs (provisioning's mkfs/mkswap of different partitions and LVs, which share nothing), at
/// least two of them. Each entry is one run; each inner list one device's chain of step indexes
/// (0-based, in plan order). Everything else runs one step after another. The plan itself, its
/// order and its hash do not change: the dry run prints the same steps and says which overlap.
pub fn concurrent_groups(actions: &[Action]) -> Vec<Vec<Vec<usize>>> {
    let mut out = Vec::new();
    let mut cur: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < actions.len() {
        let pair = i + 1 < actions.len()
            && actions[i].op == Op::WaitDevice
            && matches!(actions[i + 1].op, Op::Mkfs | Op::Mkswap)
            && actions[i].device.is_some()
            && actions[i].device == actions[i + 1].device;
        if pair {
            cur.push(vec![i, i + 1]);
            i += 2;
        } else {
            if cur.len() >= 2 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            i += 1;
        }
    }
    if cur.len() >= 2 {
        out.push(cur);
    }
    out
}

/// Wait for a device node to appear (udev, or the kernel for a partition).
pub(crate) fn wait(dev: &str) -> Action {
    Action::new(Op::WaitDevice, false, format!("waiting for {dev}")).dev(dev)
}
