//! Disk resolution: which disk of this machine a layout disk names (a path, a by-id link or a
//! selector; ambiguity refused), and the device paths its partitions get. Used by the planner and
//! by the stage's wait for disks, so it reads only the observed state.

use super::state::{BlockDevice, SystemState};
use crate::layout::size::human;
use crate::layout::{Content, Disk, DiskRef, Selector};

/// The device path of partition `n` of a disk (`/dev/sda` → `/dev/sda2`, `/dev/nvme0n1` →
/// `/dev/nvme0n1p2`).
pub fn partition_path(disk_path: &str, n: usize) -> String {
    if disk_path.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk_path}p{n}")
    } else {
        format!("{disk_path}{n}")
    }
}

fn glob_match(pat: &str, text: &str) -> bool {
    match pat.split_once('*') {
        None => pat == text,
        Some((pre, rest)) => {
            if !text.starts_with(pre) {
                return false;
            }
            let t = &text[pre.len()..];
            if rest.is_empty() {
                return true;
            }
            (0..=t.len()).any(|i| t.is_char_boundary(i) && glob_match(rest, &t[i..]))
        }
    }
}

fn norm_wwn(w: &str) -> String {
    let w = w.trim().to_ascii_lowercase();
    for p in ["0x", "naa.", "eui.", "t10."] {
        if let Some(r) = w.strip_prefix(p) {
            return r.to_string();
        }
    }
    w
}

fn selector_matches(sel: &Selector, d: &BlockDevice) -> bool {
    if d.read_only {
        return false;
    }
    if d.transport == "loop" && sel.transport.as_deref() != Some("loop") {
        return false;
    }
    let eq = |want: &Option<String>, have: &Option<String>| match want {
        None => true,
        Some(w) => have.as_deref().map(str::trim) == Some(w.trim()),
    };
    if !eq(&sel.serial, &d.serial) {
        return false;
    }
    if let Some(w) = &sel.wwn {
        if d.wwn.as_deref().map(norm_wwn) != Some(norm_wwn(w)) {
            return false;
        }
    }
    if let Some(m) = &sel.model {
        if !d
            .model
            .as_deref()
            .is_some_and(|dm| glob_match(m, dm.trim()))
        {
            return false;
        }
    }
    if let Some(t) = &sel.transport {
        let t = if t == "ata" { "sata" } else { t.as_str() };
        if d.transport != t {
            return false;
        }
    }
    if sel.rotational.is_some_and(|r| r != d.rotational) {
        return false;
    }
    if sel.min_size.is_some_and(|m| d.size < m) || sel.max_size.is_some_and(|m| d.size > m) {
        return false;
    }
    true
}

fn describe_dev(d: &BlockDevice) -> String {
    let mut parts = vec![d.path.clone(), human(d.size)];
    if let Some(m) = &d.model {
        parts.push(m.trim().to_string());
    }
    if let Some(sn) = &d.serial {
        parts.push(format!("serial {}", sn.trim()));
    }
    parts.join(", ")
}

/// The disks of this machine that a layout disk names (by path or selector).
pub fn matching_disks<'a>(disk: &Disk, state: &'a SystemState) -> Vec<&'a BlockDevice> {
    match &disk.reference {
        DiskRef::Path { path } => state
            .disks
            .iter()
            .filter(|d| &d.path == path || d.links.iter().any(|l| l == path))
            .collect(),
        DiskRef::Select(sel) => state
            .disks
            .iter()
            .filter(|d| selector_matches(sel, d))
            .collect(),
    }
}

/// Find the one disk a layout disk names.
pub fn resolve<'a>(disk: &Disk, state: &'a SystemState) -> Result<&'a BlockDevice, String> {
    let m = matching_disks(disk, state);
    match (&disk.reference, m.len()) {
        (_, 1) => Ok(m[0]),
        (DiskRef::Path { path }, _) => {
            let is_part = state
                .disks
                .iter()
                .any(|d| d.partitions.iter().any(|p| &p.path == path));
            Err(if is_part {
                format!("{path} is a partition, not a whole disk")
            } else {
                format!("no disk {path} on this machine")
            })
        }
        (DiskRef::Select(sel), 0) => Err(format!(
            "selector {} matches no disk (disks here: {})",
            serde_json::to_string(sel).unwrap_or_default(),
            if state.disks.is_empty() {
                "none".to_string()
            } else {
                state
                    .disks
                    .iter()
                    .map(describe_dev)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        )),
        (DiskRef::Select(sel), n) => Err(format!(
            "selector {} matches {n} disks ({}): refusing to guess — add serial or wwn",
            serde_json::to_string(sel).unwrap_or_default(),
            m.iter()
                .map(|d| describe_dev(d))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// One partition of a layout disk, whichever schema (`gpt` or disko's legacy `table`) gave it:
/// numbered from 1 in creation order.
pub(crate) struct PartView<'a> {
    pub number: usize,
    /// Key in the layout.
    pub name: &'a str,
    /// The GPT partition name it gets (none on an msdos table).
    pub label: Option<&'a str>,
    pub content: Option<&'a Content>,
}

/// The partitions a layout disk is cut into (none for a whole-disk PV or filesystem).
pub(crate) fn partitions(disk: &Disk) -> Vec<PartView<'_>> {
    let parts: Vec<(&str, Option<&str>, Option<&Content>)> = match &disk.content {
        Some(Content::Gpt(g)) => g
            .partitions
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    Some(p.label.as_str()),
                    p.content.as_deref(),
                )
            })
            .collect(),
        Some(Content::Table(t)) => t
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.label.as_deref(), p.content.as_deref()))
            .collect(),
        _ => Vec::new(),
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(n, (name, label, content))| PartView {
            number: n + 1,
            name,
            label,
            content,
        })
        .collect()
}

/// Expected GPT partition labels of a layout disk.
pub(crate) fn expected_labels(disk: &Disk) -> Vec<String> {
    partitions(disk)
        .iter()
        .filter_map(|p| p.label.map(String::from))
        .collect()
}
