//! Whether an ext filesystem needs `e2fsck -p` at all: its superblock says so.

use std::path::Path;

/// Reads an ext2/3/4 superblock and says whether `e2fsck -p` would find nothing to do: it then
/// only reports the filesystem clean (e2fsck's check_if_skip). Anything else — errors recorded,
/// not cleanly unmounted, a journal to replay, orphan inodes to release, a mount count or check
/// interval due, a timestamp in the future (a wrong clock early in boot), an external journal, or
/// a superblock that cannot be read — says None, and e2fsck -p runs as before.
pub fn ext_is_clean(dev: &Path, now: u64) -> Option<&'static str> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(dev).ok()?;
    f.seek(SeekFrom::Start(1024)).ok()?;
    let mut sb = [0u8; 1024];
    f.read_exact(&mut sb).ok()?;
    ext_superblock_clean(&sb, now)
}

/// [`ext_is_clean`] on the 1024 superblock bytes (offsets from the kernel's ext4.h).
pub fn ext_superblock_clean(sb: &[u8; 1024], now: u64) -> Option<&'static str> {
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    const VALID_FS: u16 = 1;
    const INCOMPAT_RECOVER: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    if u16_at(0x38) != 0xEF53 {
        return None; // s_magic
    }
    let state = u16_at(0x3A);
    if state != VALID_FS {
        return None; // s_state: not cleanly unmounted, errors, orphans being processed
    }
    let incompat = u32_at(0x60);
    if incompat & (INCOMPAT_RECOVER | INCOMPAT_JOURNAL_DEV) != 0 {
        return None; // a journal to replay, or an external journal device
    }
    if u32_at(0xE8) != 0 {
        return None; // s_last_orphan: orphan inodes to release
    }
    let mnt_count = u16_at(0x34);
    let max_mnt_count = u16_at(0x36) as i16;
    if max_mnt_count > 0 && mnt_count >= max_mnt_count as u16 {
        return None; // mount count reached
    }
    let lastcheck = u64::from(u32_at(0x40));
    let interval = u64::from(u32_at(0x44));
    if interval > 0 && now >= lastcheck + interval {
        return None; // check interval passed
    }
    let (mtime, wtime) = (u64::from(u32_at(0x2C)), u64::from(u32_at(0x30)));
    // e2fsck fixes timestamps in the future (with a day's grace); let it.
    if [lastcheck, mtime, wtime].iter().any(|&t| t > now + 86400) {
        return None;
    }
    Some("cleanly unmounted, no errors, no journal to replay")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ext4 superblock (mkfs.ext4 on a file), then the flags that must send it to e2fsck.
    #[test]
    fn ext_superblock_clean_only_when_e2fsck_would_skip() {
        let Ok(mkfs) = which_mkfs() else {
            eprintln!("SKIP ext_superblock_clean_only_when_e2fsck_would_skip: no mkfs.ext4");
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let ok = std::process::Command::new(mkfs)
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(ext_is_clean(&img, now).is_some(), "a fresh ext4 is clean");
        let data = std::fs::read(&img).unwrap();
        let sb: [u8; 1024] = data[1024..2048].try_into().unwrap();
        assert!(ext_superblock_clean(&sb, now).is_some());
        let with = |f: &dyn Fn(&mut [u8; 1024])| {
            let mut b = sb;
            f(&mut b);
            ext_superblock_clean(&b, now)
        };
        // not cleanly unmounted; errors recorded
        assert!(with(&|b| b[0x3A] = 0).is_none());
        assert!(with(&|b| b[0x3A] = 3).is_none());
        // a journal to replay (needs_recovery)
        assert!(with(&|b| b[0x60] |= 0x4).is_none());
        // an external journal device
        assert!(with(&|b| b[0x60] |= 0x8).is_none());
        // orphans being processed (s_state bit 4), no other bit
        assert!(with(&|b| b[0x3A] = 1 | 4).is_none());
        // orphan inodes
        assert!(with(&|b| b[0xE8] = 12).is_none());
        // mount count reached
        assert!(with(&|b| {
            b[0x34..0x36].copy_from_slice(&20u16.to_le_bytes());
            b[0x36..0x38].copy_from_slice(&20u16.to_le_bytes());
        })
        .is_none());
        // check interval passed (lastcheck 0, interval 1 s)
        assert!(with(&|b| {
            b[0x40..0x44].copy_from_slice(&0u32.to_le_bytes());
            b[0x44..0x48].copy_from_slice(&1u32.to_le_bytes());
        })
        .is_none());
        // last write far in the future (a clock e2fsck would correct)
        assert!(with(&|b| b[0x30..0x34].copy_from_slice(&u32::MAX.to_le_bytes())).is_none());
        // not ext at all
        assert!(with(&|b| b[0x38] = 0).is_none());
        assert!(ext_is_clean(Path::new("/nonexistent-dev"), now).is_none());
    }

    fn which_mkfs() -> Result<&'static str, ()> {
        ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or(())
    }
}
