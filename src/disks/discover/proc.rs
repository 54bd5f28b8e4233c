//! /proc/self/mountinfo and /proc/swaps.

use crate::disks::state::Mount;

/// Unescape mountinfo's octal escapes (`\040` = space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // A byte is at most \377: a first digit above 3 is not an escape (and would overflow).
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse /proc/self/mountinfo.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || g.len() < 2 {
            continue;
        }
        out.push(Mount {
            maj_min: f[2].to_string(),
            target: unescape(f[4]),
            fs_type: g[0].to_string(),
            source: unescape(g[1]),
        });
    }
    out
}

/// Parse /proc/swaps (paths only; maj:min filled in by the caller).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_and_swaps() {
        let mi = "22 1 259:2 / /var rw,relatime shared:1 - ext4 /dev/mapper/pool_host-var rw\n\
                  23 1 0:21 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";
        let m = parse_mountinfo(mi);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].maj_min, "259:2");
        assert_eq!(m[0].source, "/dev/mapper/pool_host-var");
        assert_eq!(m[1].target, "/mnt/a b");
        let sw =
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1 partition 1048572 0 -2\n";
        assert_eq!(parse_swaps(sw), vec!["/dev/dm-1"]);
    }
}
