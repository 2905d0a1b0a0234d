//! cgroup limits on CPU and memory, v1 and v2. Containers (CI runners, docker on a Jetson)
//! see the whole machine in /proc and /sys but are killed at their cgroup's limit, so the
//! limit, not MemTotal, decides how many compile jobs fit.
//!
//! The cgroup directory is found through `/proc/self/cgroup`: a v1 line naming the controller
//! wins over the unified `0::` line (hybrid hosts have both). A container usually mounts its
//! own cgroup at the controller root, where the path from `/proc/self/cgroup` does not exist,
//! so the root directory is the fallback.

use std::path::{Path, PathBuf};

use super::{read_text, CgroupMemory};

/// v1 reports "no limit" as a page-rounded i64::MAX; anything this large means unlimited.
const V1_UNLIMITED: u64 = 1 << 60;

/// A process's cgroup for one controller.
#[derive(Debug, PartialEq)]
struct Located {
    version: u8,
    /// As /proc/self/cgroup gives it.
    path: String,
    /// Directory (relative to the host root) holding the controller's files.
    dir: PathBuf,
}

/// CPUs the cgroup allows (quota ÷ period), None when unlimited or unknown.
pub(super) fn cpu_quota(root: &Path) -> Option<f64> {
    let cg = locate(root, "cpu")?;
    let (quota, period) = match cg.version {
        1 => {
            let quota: i64 = read_number(root, &cg.dir, "cpu.cfs_quota_us")?;
            let period: i64 = read_number(root, &cg.dir, "cpu.cfs_period_us")?;
            (quota as f64, period as f64)
        }
        _ => parse_cpu_max(&read_text(root, cg.dir.join("cpu.max"))?)?,
    };
    let cpus = quota / period;
    (quota > 0.0 && period > 0.0 && cpus.is_finite()).then_some(cpus)
}

/// v2 `cpu.max`: "max 100000" (no quota) or "200000 100000".
fn parse_cpu_max(text: &str) -> Option<(f64, f64)> {
    let mut words = text.split_whitespace();
    let quota = words.next()?.parse::<u64>().ok()?;
    let period = words
        .next()
        .map_or(Some(100_000), |p| p.parse::<u64>().ok())?;
    Some((quota as f64, period as f64))
}

/// The memory cgroup, None when there is none or it exposes neither a limit nor a usage.
/// `mem_total` (bytes) turns limits above physical memory into "unlimited".
pub(super) fn memory(root: &Path, mem_total: u64) -> Option<CgroupMemory> {
    let cg = locate(root, "memory")?;
    let (limit_file, usage_file, inactive_key) = match cg.version {
        1 => (
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "total_inactive_file",
        ),
        _ => ("memory.max", "memory.current", "inactive_file"),
    };
    let limit_text = read_text(root, cg.dir.join(limit_file));
    let usage: Option<u64> = read_number(root, &cg.dir, usage_file);
    if limit_text.is_none() && usage.is_none() {
        return None;
    }
    let stat = read_text(root, cg.dir.join("memory.stat"));
    Some(CgroupMemory {
        version: cg.version,
        path: cg.path,
        limit: limit_text.and_then(|t| parse_limit(&t, mem_total)),
        usage,
        inactive_file: stat.and_then(|s| stat_field(&s, inactive_key)),
    })
}

/// A memory limit in bytes; None for "max", v1's sentinel, garbage, or anything above the
/// machine's memory (which cannot bind).
fn parse_limit(text: &str, mem_total: u64) -> Option<u64> {
    let limit: u64 = text.trim().parse().ok()?;
    let above_ram = mem_total > 0 && limit > mem_total;
    (limit < V1_UNLIMITED && !above_ram).then_some(limit)
}

/// `key value` from memory.stat.
fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

fn read_number<T: std::str::FromStr>(root: &Path, dir: &Path, file: &str) -> Option<T> {
    read_text(root, dir.join(file))?.trim().parse().ok()
}

fn locate(root: &Path, controller: &str) -> Option<Located> {
    let text = read_text(root, "proc/self/cgroup")?;
    let lines: Vec<(&str, &str, &str)> = text.lines().filter_map(split_line).collect();
    let v1 = || {
        let (_, controllers, path) = lines
            .iter()
            .find(|(_, controllers, _)| controllers.split(',').any(|c| c == controller))?;
        // The mount is named after the co-mounted controllers ("cpu,cpuacct"), with a
        // plain-name link beside it that a fake tree may lack.
        located(root, 1, path, &[controllers, controller])
    };
    // Also the fallback when a v1 line names the controller but its hierarchy is not mounted.
    let v2 = || {
        let (_, _, path) = lines
            .iter()
            .find(|(id, controllers, _)| *id == "0" && controllers.is_empty())?;
        located(root, 2, path, &[""])
    };
    v1().or_else(v2)
}

/// `hierarchy-id:controllers:path`; the path itself may contain ':'.
fn split_line(line: &str) -> Option<(&str, &str, &str)> {
    let mut parts = line.splitn(3, ':');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The first of `mounts` under sys/fs/cgroup that exists, at `path` or else at its root.
fn located(root: &Path, version: u8, path: &str, mounts: &[&str]) -> Option<Located> {
    let base = Path::new("sys/fs/cgroup");
    let mount = mounts
        .iter()
        .map(|m| base.join(m))
        .find(|m| root.join(m).is_dir())?;
    let nested = mount.join(path.trim_start_matches('/'));
    let dir = if root.join(&nested).is_dir() {
        nested
    } else {
        mount
    };
    Some(Located {
        version,
        path: path.to_string(),
        dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::tree;

    #[test]
    fn cpu_max_forms() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000 100000\n"), Some((200000.0, 100000.0)));
        assert_eq!(parse_cpu_max("150000"), Some((150000.0, 100000.0)));
        assert_eq!(parse_cpu_max("lots of cpu"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    #[test]
    fn v1_unlimited_sentinel_is_none() {
        let total = 64 << 30;
        assert_eq!(parse_limit("9223372036854771712\n", total), None);
        assert_eq!(parse_limit("9223372036854775807", 0), None);
        assert_eq!(parse_limit("max\n", total), None);
        assert_eq!(parse_limit("-1", total), None);
        assert_eq!(parse_limit(&format!("{}", 128u64 << 30), total), None);
        assert_eq!(parse_limit("6442450944\n", total), Some(6 << 30));
    }

    #[test]
    fn v1_quota_of_minus_one_is_no_quota() {
        let t = tree(&[
            ("proc/self/cgroup", "3:cpu,cpuacct:/\n"),
            ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
            ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(cpu_quota(t.path()), None);
    }

    #[test]
    fn v1_plain_cpu_mount_and_nested_path() {
        let t = tree(&[
            ("proc/self/cgroup", "5:cpu:/build/job1\n"),
            ("sys/fs/cgroup/cpu/build/job1/cpu.cfs_quota_us", "150000\n"),
            ("sys/fs/cgroup/cpu/build/job1/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(cpu_quota(t.path()), Some(1.5));
    }

    #[test]
    fn v2_nested_path_wins_over_root() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/ci/job\n"),
            ("sys/fs/cgroup/memory.stat", "inactive_file 1\n"),
            ("sys/fs/cgroup/ci/job/memory.max", "1073741824\n"),
            ("sys/fs/cgroup/ci/job/memory.current", "1024\n"),
            (
                "sys/fs/cgroup/ci/job/memory.stat",
                "anon 5\ninactive_file 512\n",
            ),
        ]);
        let m = memory(t.path(), 8 << 30).unwrap();
        assert_eq!((m.version, m.path.as_str()), (2, "/ci/job"));
        assert_eq!(
            (m.limit, m.usage, m.inactive_file),
            (Some(1 << 30), Some(1024), Some(512))
        );
    }

    #[test]
    fn v1_line_wins_on_hybrid_hosts() {
        let t = tree(&[
            ("proc/self/cgroup", "0::/x\n4:memory:/docker/abc\n"),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n"),
            ("sys/fs/cgroup/memory.max", "1024\n"),
        ]);
        let m = memory(t.path(), 8 << 30).unwrap();
        assert_eq!((m.version, m.limit, m.usage), (1, Some(2 << 30), None));
    }

    #[test]
    fn unmounted_v1_hierarchy_falls_back_to_v2() {
        let t = tree(&[
            ("proc/self/cgroup", "4:memory:/x\n0::/\n"),
            ("sys/fs/cgroup/memory.max", "1073741824\n"),
        ]);
        let m = memory(t.path(), 8 << 30).unwrap();
        assert_eq!(
            (m.version, m.path.as_str(), m.limit),
            (2, "/", Some(1 << 30))
        );
    }

    #[test]
    fn missing_or_garbled_cgroup_files() {
        assert_eq!(memory(tree(&[]).path(), 0), None);
        assert_eq!(
            cpu_quota(tree(&[("proc/self/cgroup", "garbage")]).path()),
            None
        );
        let no_files = tree(&[
            ("proc/self/cgroup", "0::/\n"),
            ("sys/fs/cgroup/cgroup.procs", "1\n"),
        ]);
        assert_eq!(memory(no_files.path(), 0), None);
        let garbled = tree(&[
            ("proc/self/cgroup", "0::/\n"),
            ("sys/fs/cgroup/memory.max", "\u{0}\u{1}"),
            ("sys/fs/cgroup/memory.current", "12\n"),
            ("sys/fs/cgroup/memory.stat", "inactive_file many\n"),
            ("sys/fs/cgroup/cpu.max", "0 0\n"),
        ]);
        let m = memory(garbled.path(), 0).unwrap();
        assert_eq!((m.limit, m.usage, m.inactive_file), (None, Some(12), None));
        assert_eq!(cpu_quota(garbled.path()), None);
    }
}
