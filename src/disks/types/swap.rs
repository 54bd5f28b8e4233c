//! disko's `swap` (swap.nix) on a disk, partition or LV (parser: `layout/parse/swap.rs`; its steps
//! here: mkswap (`format`), swapon(2) with the flags computed when planning (`uses`)).

use super::{contents, DeviceType, Use};
use crate::disks::cx::PlanCx;
use crate::disks::step::{s, Effect, Op, Step, SwapOptions};
use crate::layout::parse::{NodeType, Obj, Place, Slot, Walker};
use crate::layout::{Content, Layout};

pub struct Swap;
pub static SWAP: Swap = Swap;

/// `mkswap` of a new device.
pub const MKSWAP: Op = Op::new("mkswap");
/// swapon(2).
pub const SWAPON: Op = Op::new("swapon");

impl NodeType for Swap {
    fn name(&self) -> &'static str {
        "swap"
    }
    fn place(&self) -> Place {
        Place::Content(&[Slot::Disk, Slot::Partition, Slot::Lv])
    }
    fn parse_content(&self, w: &mut Walker<'_>, o: &mut Obj<'_>) -> Option<Content> {
        w.swap(o).map(Content::Swap)
    }
}

impl DeviceType for Swap {
    fn signatures(&self) -> &'static [&'static str] {
        &["swap"]
    }
    fn words(&self, _signature: &str) -> String {
        "swap space".into()
    }
    fn tools(&self, layout: &Layout) -> Vec<String> {
        if contents(layout)
            .iter()
            .any(|c| matches!(c, Content::Swap(_)))
        {
            vec!["mkswap".into()]
        } else {
            Vec::new()
        }
    }
    fn ops(&self) -> &'static [Op] {
        &[MKSWAP, SWAPON]
    }
    fn format(&self, c: &Content, dev: &str, what: &str) -> Option<Step> {
        let Content::Swap(sw) = c else {
            return None;
        };
        let mut argv = vec![s("mkswap"), s("-f")];
        argv.extend(sw.extra_args.iter().cloned());
        argv.push(dev.to_string());
        Some(Step::run(MKSWAP, true, format!("making swap on {what}"), argv).on(dev))
    }
    /// swapon(2) itself, options as fstab writes them (`pri=N`, `discard=once|pages`, `discard`
    /// for both): swapon(8) would cost a process for one system call. Errors: options swapon(2)
    /// cannot take (exit 3; the layout parser refuses them first).
    fn uses(&self, c: &Content, dev: &str, what: &str, _cx: &PlanCx) -> anyhow::Result<Vec<Use>> {
        let Content::Swap(sw) = c else {
            return Ok(Vec::new());
        };
        let mut opts: Vec<String> = Vec::new();
        if let Some(p) = sw.priority {
            opts.push(format!("pri={p}"));
        }
        match sw.discard.as_deref() {
            Some("both") => opts.push(s("discard")),
            Some(d) => opts.push(format!("discard={d}")),
            None => {}
        }
        let options = SwapOptions::parse(&opts.join(",")).map_err(|e| {
            crate::exit::coded(crate::exit::Code::BadInput, format!("swap on {what}: {e}"))
        })?;
        Ok(vec![Use::Swap(Step::new(
            SWAPON,
            false,
            format!("enabling swap on {what}"),
            Effect::Swapon {
                device: dev.to_string(),
                options,
            },
        ))])
    }
}
