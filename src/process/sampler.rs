//! Measures a running step: a thread samples the RSS and swap of every process in the step's
//! process group from `/proc`, and, where jetforge may create one, the step runs in a child
//! memory cgroup of jetforge's own, whose kernel-kept peak catches what sampling misses. CPU
//! time is the change of `RUSAGE_CHILDREN` around the step (steps run one at a time).
//!
//! Cheap by construction: the thread sleeps between samples, starting at [`FIRST_INTERVAL`]
//! and stretching to [`MAX_INTERVAL`] as the step goes on (a long compile needs no 4 Hz
//! picture), and reads only `/proc/*/stat` plus `status` of the group's members.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The first samples come quickly, so short steps get a few.
pub const FIRST_INTERVAL: Duration = Duration::from_millis(250);
/// The slowest sampling rate, reached after [`STRETCH_AFTER`].
pub const MAX_INTERVAL: Duration = Duration::from_millis(1000);
const STRETCH_AFTER: Duration = Duration::from_secs(10);
/// Points kept for the memory chart; beyond this, every second point is dropped.
const MAX_POINTS: usize = 2000;

/// What was measured while a step ran.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Highest RSS of the process group seen by the sampler, bytes.
    pub peak_rss: u64,
    /// Highest swap use (VmSwap) of the group seen, bytes.
    pub peak_swap: u64,
    /// The step cgroup's own peak (`memory.peak` v2, `memory.max_usage_in_bytes` v1), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_peak: Option<u64>,
    /// Processes of the step the kernel's OOM killer ended, as its cgroup counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// User + system CPU seconds of the step and everything it waited for.
    pub cpu_secs: f64,
    pub samples: u32,
    /// (seconds since the step started, RSS bytes of the group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<(f64, u64)>,
}

impl Usage {
    /// The best figure for the step's peak memory: the cgroup's when known (it sees every
    /// page, however briefly), else the sampled one.
    pub fn peak(&self) -> u64 {
        self.cgroup_peak.unwrap_or(0).max(self.peak_rss)
    }
}

/// A child memory cgroup of jetforge's own for one step, removed when dropped.
pub struct StepCgroup {
    dir: PathBuf,
    version: u8,
}

impl StepCgroup {
    /// Creates `jetforge-step-<pid>` below jetforge's memory cgroup; `None` when that is not
    /// allowed (not root, read-only cgroupfs, no memory controller): sampling alone then.
    pub fn create() -> Option<StepCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!("jetforge-step-{}", std::process::id());
        // v1: the line of the memory controller; v2: the unified `0::` line.
        let (base, rel, version) = own
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
                if ctrl.split(',').any(|c| c == "memory") {
                    Some((PathBuf::from("/sys/fs/cgroup/memory"), path.to_string(), 1))
                } else {
                    None
                }
            })
            .or_else(|| {
                let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
                let base = PathBuf::from("/sys/fs/cgroup");
                base.join("cgroup.controllers")
                    .is_file()
                    .then(|| (base, path.to_string(), 2))
            })?;
        let dir = base.join(rel.trim_start_matches('/')).join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).ok()?;
        let cg = StepCgroup { dir, version };
        cg.procs().is_file().then_some(cg)
    }

    /// The file a process writes `0` to in order to join.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The kernel's peak for the cgroup so far.
    pub fn peak(&self) -> Option<u64> {
        let file = if self.version == 1 {
            "memory.max_usage_in_bytes"
        } else {
            "memory.peak"
        };
        read_u64(&self.dir.join(file))
    }

    /// The kernel's count of OOM kills in the cgroup (`oom_kill` of v1 `memory.oom_control`,
    /// v2 `memory.events`). A kill caused by a parent's limit is counted here, in the victim's
    /// cgroup, not in the parent's.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = if self.version == 1 {
            "memory.oom_control"
        } else {
            "memory.events"
        };
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for StepCgroup {
    fn drop(&mut self) {
        // Empty once the killed group's last members are reaped (by init, for those the leader
        // left behind), which may take a moment; a straggler that outlives that keeps it.
        for _ in 0..25 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// A running sampler; [`Sampler::finish`] stops it and returns what it measured.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Usage>>,
    thread: Option<JoinHandle<()>>,
    cpu_before: f64,
}

impl Sampler {
    /// Starts sampling process group `pgid`.
    pub fn start(pgid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Usage::default()));
        let cpu_before = children_cpu_secs();
        let thread = {
            let (stop, state) = (stop.clone(), state.clone());
            std::thread::Builder::new()
                .name("jetforge-sampler".into())
                .spawn(move || sample_loop(pgid, &stop, &state))
                .ok()
        };
        Sampler {
            stop,
            state,
            thread,
            cpu_before,
        }
    }

    /// Stops the thread (after the step's leader was reaped) and adds the CPU time.
    pub fn finish(mut self, cgroup: Option<&StepCgroup>) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        let mut u = std::mem::take(&mut *self.state.lock().unwrap_or_else(|e| e.into_inner()));
        u.cpu_secs = (children_cpu_secs() - self.cpu_before).max(0.0);
        u.cgroup_peak = cgroup.and_then(StepCgroup::peak);
        u.oom_kills = cgroup.and_then(StepCgroup::oom_kills);
        u
    }
}

fn sample_loop(pgid: u32, stop: &AtomicBool, state: &Mutex<Usage>) {
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let (rss, swap) = group_memory(pgid);
        {
            let mut u = state.lock().unwrap_or_else(|e| e.into_inner());
            u.peak_rss = u.peak_rss.max(rss);
            u.peak_swap = u.peak_swap.max(swap);
            u.samples += 1;
            if u.series.len() >= MAX_POINTS {
                let mut keep = false;
                u.series.retain(|_| {
                    keep = !keep;
                    keep
                });
            }
            u.series.push((start.elapsed().as_secs_f64(), rss));
        }
        let interval = if start.elapsed() < STRETCH_AFTER {
            FIRST_INTERVAL
        } else {
            MAX_INTERVAL
        };
        std::thread::park_timeout(interval);
    }
}

/// (RSS, swap) in bytes summed over the processes of group `pgid`.
pub fn group_memory(pgid: u32) -> (u64, u64) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let (mut rss, mut swap) = (0, 0);
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_pgrp(&stat) != Some(pgid) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        rss += status_kib(&status, "VmRSS:") * 1024;
        swap += status_kib(&status, "VmSwap:") * 1024;
    }
    (rss, swap)
}

/// Field 5 of `/proc/PID/stat` (after the parenthesised command name).
fn stat_pgrp(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage(2) fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_fields_are_parsed() {
        let stat = "4242 (cc1plus (x) y) S 4000 4100 4100 0 -1 4194304";
        assert_eq!(stat_pgrp(stat), Some(4100));
        let status = "Name:\tcc1plus\nVmRSS:\t  204800 kB\nVmSwap:\t      12 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), 204800);
        assert_eq!(status_kib(status, "VmSwap:"), 12);
        assert_eq!(status_kib("Name: x\n", "VmSwap:"), 0);
    }

    #[test]
    fn the_group_of_a_running_process_is_measured() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        std::thread::sleep(Duration::from_millis(200));
        let sampler = Sampler::start(pgid);
        std::thread::sleep(Duration::from_millis(600));
        // SAFETY: kills the group this test started.
        unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
        child.wait().unwrap();
        let u = sampler.finish(None);
        assert!(u.samples >= 2, "{u:?}");
        assert!(u.peak_rss > 100 * 1024, "{u:?}");
        assert_eq!(u.series.len() as u32, u.samples);
    }
}
