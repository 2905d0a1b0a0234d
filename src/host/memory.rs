//! /proc/meminfo: total, available and swap. The kernel's MemAvailable already counts the
//! page cache it can drop, which is what a compiler can really get; MemFree alone would make
//! a machine that has been building for an hour look full.

use std::path::Path;

use super::{read_text, Memory};

pub(super) fn read(root: &Path) -> Memory {
    read_text(root, "proc/meminfo").map_or_else(Memory::default, |t| parse_meminfo(&t))
}

/// Parses meminfo text; unknown or garbled fields stay 0.
pub(super) fn parse_meminfo(text: &str) -> Memory {
    let field = |name: &str| text.lines().find_map(|line| field_bytes(line, name));
    // Kernels before 3.14 have no MemAvailable; free plus cache is the usual estimate.
    let available = field("MemAvailable")
        .or_else(|| Some(field("MemFree")? + field("Cached").unwrap_or(0)))
        .unwrap_or(0);
    Memory {
        total: field("MemTotal").unwrap_or(0),
        available,
        swap_total: field("SwapTotal").unwrap_or(0),
        swap_free: field("SwapFree").unwrap_or(0),
    }
}

/// `MemTotal:  7620172 kB` → bytes, if the line is the field `name`.
fn field_bytes(line: &str, name: &str) -> Option<u64> {
    let (key, rest) = line.split_once(':')?;
    if key.trim() != name {
        return None;
    }
    let mut words = rest.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:        7620172 kB\nMemFree:          512000 kB\n\
             MemAvailable:    6606029 kB\nSwapTotal:       0 kB\nSwapFree:  0 kB\n",
        );
        assert_eq!(m.total, 7620172 * 1024);
        assert_eq!(m.available, 6606029 * 1024);
        assert_eq!((m.swap_total, m.swap_free), (0, 0));
    }

    #[test]
    fn old_kernels_estimate_available() {
        let m = parse_meminfo("MemTotal: 4000 kB\nMemFree: 1000 kB\nCached: 500 kB\n");
        assert_eq!(m.available, 1500 * 1024);
    }

    #[test]
    fn cached_must_not_match_swapcached() {
        let m = parse_meminfo("MemFree: 1000 kB\nSwapCached: 9 kB\n");
        assert_eq!(m.available, 1000 * 1024);
    }

    #[test]
    fn garbage_is_zero() {
        assert_eq!(
            parse_meminfo("MemTotal: lots kB\n\0\u{1}"),
            Memory::default()
        );
        assert_eq!(parse_meminfo("MemTotal: 5 MB\n").total, 0);
        let m = read(Path::new("/nonexistent-jetforge-root"));
        assert_eq!(m, Memory::default());
    }
}
