//! CPU count: CPUs online from sysfs, narrowed by a cgroup CPU quota. A container on a
//! 64-core runner limited to 4 CPUs must build with 4, or every job just waits its turn
//! while holding its memory.

use std::path::Path;

use super::{cgroup, is_live, read_text, Cpus};

pub(super) fn read(root: &Path) -> Cpus {
    let online = read_text(root, "sys/devices/system/cpu/online")
        .and_then(|s| parse_cpu_list(&s))
        .or_else(|| is_live(root).then(num_cpus::get))
        .unwrap_or(1)
        .max(1);
    let quota = cgroup::cpu_quota(root);
    Cpus {
        online,
        quota,
        usable: usable(online, quota),
    }
}

/// Counts the CPUs in a kernel CPU list such as `0-5,8`; None for anything malformed.
pub fn parse_cpu_list(text: &str) -> Option<usize> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    text.split(',')
        .try_fold(0usize, |n, part| Some(n + range_len(part.trim())?))
}

fn range_len(part: &str) -> Option<usize> {
    match part.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (lo.parse::<usize>().ok()?, hi.parse::<usize>().ok()?);
            (hi >= lo).then(|| hi - lo + 1)
        }
        None => part.parse::<usize>().ok().map(|_| 1),
    }
}

/// min(online, ceil(quota)), at least 1: a quota of 1.5 CPUs still lets two jobs make progress.
fn usable(online: usize, quota: Option<f64>) -> usize {
    let from_quota = quota.map_or(online, |q| q.ceil() as usize);
    online.min(from_quota).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-5\n"), Some(6));
        assert_eq!(parse_cpu_list("0-5,8"), Some(7));
        assert_eq!(parse_cpu_list("0,2,4-7"), Some(6));
        assert_eq!(parse_cpu_list("3"), Some(1));
    }

    #[test]
    fn garbage_cpu_lists_are_unknown() {
        for text in ["", "\n", "5-3", "a-b", "0-", "-1", "0,,1", "zero"] {
            assert_eq!(parse_cpu_list(text), None, "{text:?}");
        }
    }

    #[test]
    fn quota_rounds_up_and_never_exceeds_online() {
        assert_eq!(usable(16, Some(4.0)), 4);
        assert_eq!(usable(16, Some(1.5)), 2);
        assert_eq!(usable(4, Some(8.0)), 4);
        assert_eq!(usable(4, Some(0.01)), 1);
        assert_eq!(usable(6, None), 6);
    }

    #[test]
    fn fake_root_without_sysfs_has_one_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let cpus = read(dir.path());
        assert_eq!((cpus.online, cpus.quota, cpus.usable), (1, None, 1));
    }
}
