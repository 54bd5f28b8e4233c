//! fstab-style option strings turned, when planning, into what mount(2) and swapon(2) take: a bad
//! option is a plan error, never an execution error.

use nix::mount::MsFlags;

/// A mount's options: as the layout gives them (joined by `,`: rendered and hashed) and split
/// into mount(2) flags and the filesystem's data string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub text: String,
    pub flags: MsFlags,
    pub data: String,
}

impl MountOptions {
    /// Split `mountOptions` (fstab words, mount(8)'s names) into flags and data. Words that only
    /// mean something to fstab or mount(8) (`defaults`, `nofail`, `x-*`, `comment=`) are dropped;
    /// every other word goes to the filesystem as data, which refuses what it does not know.
    pub fn parse(words: &[String]) -> MountOptions {
        use MsFlags as F;
        let text = words.join(",");
        let mut flags = F::empty();
        let mut data = Vec::new();
        for o in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match o {
                "defaults" | "rw" | "auto" | "noauto" | "nofail" | "user" | "nouser"
                | "_netdev" => {}
                "ro" => flags |= F::MS_RDONLY,
                "nosuid" => flags |= F::MS_NOSUID,
                "nodev" => flags |= F::MS_NODEV,
                "noexec" => flags |= F::MS_NOEXEC,
                "sync" => flags |= F::MS_SYNCHRONOUS,
                "dirsync" => flags |= F::MS_DIRSYNC,
                "noatime" => flags |= F::MS_NOATIME,
                "nodiratime" => flags |= F::MS_NODIRATIME,
                "relatime" => flags |= F::MS_RELATIME,
                "strictatime" => flags |= F::MS_STRICTATIME,
                "lazytime" => flags |= F::MS_LAZYTIME,
                "suid" | "dev" | "exec" | "async" | "atime" | "diratime" | "norelatime" => {}
                o if o.starts_with("x-") || o.starts_with("comment=") => {}
                other => data.push(other.to_string()),
            }
        }
        MountOptions {
            text,
            flags,
            data: data.join(","),
        }
    }
}

/// A swap area's options: fstab's words (rendered and hashed) and the swapon(2) flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapOptions {
    pub text: String,
    pub flags: i32,
}

// linux/swap.h
const SWAP_FLAG_PREFER: i32 = 0x8000;
const SWAP_FLAG_PRIO_MASK: i32 = 0x7fff;
const SWAP_FLAG_DISCARD: i32 = 0x10000;
const SWAP_FLAG_DISCARD_ONCE: i32 = 0x20000;
const SWAP_FLAG_DISCARD_PAGES: i32 = 0x40000;

impl SwapOptions {
    /// swapon(2) flags for fstab-style swap options: `pri=N` (-1: the kernel's default),
    /// `discard` (both), `discard=once`, `discard=pages` — as swapon(8) sets them. Errors name
    /// the option.
    pub fn parse(text: &str) -> Result<SwapOptions, String> {
        let mut flags = 0;
        for o in text.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("pri", v)) => {
                    let p: i32 = v
                        .parse()
                        .ok()
                        .filter(|p| (-1..=SWAP_FLAG_PRIO_MASK).contains(p))
                        .ok_or_else(|| format!("swap option {o:?}: expected pri=-1..32767"))?;
                    if p >= 0 {
                        flags |= SWAP_FLAG_PREFER | (p & SWAP_FLAG_PRIO_MASK);
                    }
                }
                None if o == "discard" => flags |= SWAP_FLAG_DISCARD,
                Some(("discard", "once")) => flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_ONCE,
                Some(("discard", "pages")) => flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_PAGES,
                _ => {
                    return Err(format!(
                        "swap option {o:?}: expected pri=N, discard, discard=once or discard=pages"
                    ))
                }
            }
        }
        Ok(SwapOptions {
            text: text.to_string(),
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        use MsFlags as F;
        let words: Vec<String> = ["defaults", "noatime,nodev", "umask=0077", "size=200M"]
            .map(String::from)
            .to_vec();
        let o = MountOptions::parse(&words);
        assert_eq!(o.flags, F::MS_NOATIME | F::MS_NODEV);
        assert_eq!(o.data, "umask=0077,size=200M");
        assert_eq!(o.text, "defaults,noatime,nodev,umask=0077,size=200M");
        let o = MountOptions::parse(&[]);
        assert!(o.flags.is_empty() && o.data.is_empty() && o.text.is_empty());
    }

    #[test]
    fn swap_options_map_to_swapon_flags_as_swapon8_sets_them() {
        let f = |t: &str| SwapOptions::parse(t).map(|o| o.flags);
        assert_eq!(f("").unwrap(), 0);
        assert_eq!(f("pri=-1").unwrap(), 0);
        assert_eq!(f("pri=0").unwrap(), 0x8000);
        assert_eq!(f("pri=5,discard").unwrap(), 0x8000 | 5 | 0x10000);
        assert_eq!(f("discard=once").unwrap(), 0x30000);
        assert_eq!(f("pri=32767,discard=pages").unwrap(), 0xffff | 0x50000);
        for bad in ["pri=32768", "pri=-2", "pri=x", "discard=all", "nofail"] {
            let e = f(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
