//! swapon(2) with the flags computed when planning ([`SwapOptions`]), and whether a device is
//! swap already.

use anyhow::{Context as _, Result};
use std::path::Path;

use super::maj_min;
use crate::disks::step::SwapOptions;
use crate::exit::{coded, Code};

pub(super) fn swap_active(dev: &str) -> bool {
    let real = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.into());
    let want = maj_min(&real);
    std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .any(|p| Path::new(p) == real || (want.is_some() && maj_min(Path::new(p)) == want))
}

/// swapon(2) — what swapon(8) does for a block device whose swap signature was just checked.
/// The crate's one `unsafe`: neither nix nor rustix wraps swapon(2), and swapon(8) would cost a
/// process (~0.1 s under TCG, a tenth of the every-boot path) for this one call.
#[allow(unsafe_code)]
pub(super) fn swapon(dev: &str, options: &SwapOptions) -> Result<()> {
    let (flags, opts) = (options.flags, options.text.as_str());
    let path = std::ffi::CString::new(dev).with_context(|| format!("device path {dev:?}"))?;
    // SAFETY: a NUL-terminated path that lives across the call; swapon(2) only reads it.
    if unsafe { nix::libc::swapon(path.as_ptr(), flags) } != 0 {
        let e = std::io::Error::last_os_error();
        // What swapon(8) would have said in words: the signature was checked, so EINVAL is the
        // kernel refusing the area itself.
        let hint = if e.raw_os_error() == Some(nix::libc::EINVAL) {
            " — the kernel refused this swap area (made for another page size, or holding a \
             hibernation image?); a provisioning run makes it anew"
        } else {
            ""
        };
        return Err(coded(
            Code::Command,
            format!(
                "swapon {dev}{}: {e}{hint}",
                if opts.is_empty() {
                    String::new()
                } else {
                    format!(" ({opts})")
                }
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapon_names_the_device_and_says_why_the_kernel_refused_an_area() {
        // A swap area made for 64 KiB pages: libblkid calls it swap, a 4 KiB-page kernel does
        // not (EINVAL), as swapon(8) would report in words.
        // (x86_64, the one target: 4 KiB pages.)
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (swapon(2))");
            return;
        }
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let img = dir.path().join("swap64k");
        std::fs::write(&img, vec![0u8; 4 << 20]).unwrap();
        let made = std::process::Command::new("mkswap")
            .args(["-q", "-p", "65536"])
            .arg(&img)
            .status();
        if !matches!(made, Ok(s) if s.success()) {
            eprintln!("skipped: mkswap not found");
            return;
        }
        let dev = img.to_str().unwrap();
        assert_eq!(
            crate::disks::discover::probe_type_expecting(&img, "swap").as_deref(),
            Some("swap")
        );
        let e = swapon(dev, &SwapOptions::parse("pri=1").unwrap()).unwrap_err();
        let msg = format!("{e}");
        assert!(msg.contains(dev) && msg.contains("(pri=1)"), "{msg}");
        assert!(msg.contains("refused this swap area"), "{msg}");
    }
}
