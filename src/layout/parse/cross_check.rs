//! Checks across the whole layout: every PV's VG is defined and every VG has a PV, mountpoints
//! and device paths are unique.

use super::walker::Walker;
use crate::layout::{Content, DiskRef, Layout};

impl Walker<'_> {
    /// Checks across the whole layout.
    pub(super) fn cross_check(&mut self, l: &Layout) {
        let mut pv_vgs: Vec<(String, String)> = Vec::new(); // (vg, where)
        let mut mounts: Vec<(String, String)> = Vec::new();
        let visit = |c: &Content,
                     at: String,
                     pv: &mut Vec<(String, String)>,
                     m: &mut Vec<(String, String)>| match c {
            Content::LvmPv { vg } => pv.push((vg.clone(), at)),
            Content::Filesystem(f) => {
                if let Some(mp) = &f.mountpoint {
                    m.push((mp.clone(), at));
                }
            }
            _ => {}
        };
        for d in &l.disks {
            let base = format!("disk.{}.content", d.name);
            match &d.content {
                Some(Content::Gpt(g)) => {
                    for p in &g.partitions {
                        if let Some(c) = &p.content {
                            visit(
                                c,
                                format!("{base}.partitions.{}.content", p.name),
                                &mut pv_vgs,
                                &mut mounts,
                            );
                        }
                    }
                }
                Some(Content::Table(t)) => {
                    for (i, p) in t.partitions.iter().enumerate() {
                        if let Some(c) = &p.content {
                            visit(
                                c,
                                format!("{base}.partitions[{i}].content"),
                                &mut pv_vgs,
                                &mut mounts,
                            );
                        }
                    }
                }
                Some(c) => visit(c, base, &mut pv_vgs, &mut mounts),
                None => {}
            }
        }
        for vg in &l.vgs {
            for lv in &vg.lvs {
                if let Some(c) = &lv.content {
                    visit(
                        c,
                        format!("lvm_vg.{}.lvs.{}.content", vg.name, lv.name),
                        &mut pv_vgs,
                        &mut mounts,
                    );
                }
            }
        }
        for n in &l.nodev {
            mounts.push((n.mountpoint.clone(), format!("nodev.{}", n.name)));
        }
        for (vg, at) in &pv_vgs {
            if l.vg(vg).is_none() {
                self.err(
                    at,
                    format!("lvm_pv names VG {vg:?}, which is not defined under lvm_vg"),
                );
            }
        }
        for vg in &l.vgs {
            if !pv_vgs.iter().any(|(v, _)| v == &vg.name) {
                self.err(
                    &format!("lvm_vg.{}", vg.name),
                    "no lvm_pv puts this VG on any disk",
                );
            }
        }
        mounts.sort();
        for w in mounts.windows(2) {
            if w[0].0 == w[1].0 {
                self.err(
                    &w[1].1,
                    format!("mountpoint {:?} is also used by {}", w[0].0, w[0].1),
                );
            }
        }
        let mut devs: Vec<(&str, &str)> = l
            .disks
            .iter()
            .filter_map(|d| match &d.reference {
                DiskRef::Path { path } => Some((path.as_str(), d.name.as_str())),
                _ => None,
            })
            .collect();
        devs.sort();
        for w in devs.windows(2) {
            if w[0].0 == w[1].0 {
                self.err(
                    &format!("disk.{}", w[1].1),
                    format!("device {:?} is also disk.{}", w[0].0, w[0].1),
                );
            }
        }
    }
}
