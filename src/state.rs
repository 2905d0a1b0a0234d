//! Resume state, one small JSON file per recipe in the work dir: which fingerprint the
//! prepared tree and finished steps belong to, how many steps are done, the jobs that
//! worked after an OOM retry on this machine, the measurements of the last build's steps and
//! the memory per job learned per host (see `jobs::learn`). Written atomically after every step, so an
//! interrupted build (Ctrl-C, SIGKILL, power loss) resumes at the step it was in. Written by the
//! build stage, read by `plan` (the remembered jobs) too, so it sits below both. Private to the
//! user (0600 in a 0700 directory).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecipeState {
    /// The fingerprint the steps below were run for.
    pub fingerprint: Option<String>,
    /// Steps completed successfully, in order.
    pub steps_done: usize,
    /// MAX_JOBS that finally worked after an OOM retry; used next time.
    pub jobs_ok: Option<u32>,
    /// The fingerprint of the last successful build, so `-v` can say why a rebuild happens.
    #[serde(default)]
    pub last_built: Option<Fingerprint>,
    /// The step running now, so a second build in the same work dir sees it (cleared when it
    /// ends; left behind only when jetforge itself died, and then the step died with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningStep>,
    /// Every step run of the last build, OOM-killed attempts included (see `process::sampler`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<StepTiming>,
    /// Memory per job learned from successful builds, per host (see `jobs::learn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<crate::jobs::learn::Learned>,
}

/// One run of a build step, as measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: String,
    /// Seconds since the Unix epoch when it started.
    pub started: f64,
    pub wall_secs: f64,
    pub cpu_secs: f64,
    /// Parallel compile jobs, and the MAX_JOBS exported for them.
    pub jobs: u32,
    pub max_jobs: u32,
    pub nvcc_threads: Option<u32>,
    /// The step's peak memory (the cgroup's when measured, else the sampled RSS), bytes.
    pub peak_bytes: u64,
    pub peak_swap_bytes: u64,
    /// Whether a cgroup measured the peak (else sampling did).
    pub cgroup_measured: bool,
    /// OOM retries of this step before this run.
    pub oom_retries: u32,
    /// `exit status 0`, `killed by signal 9 (SIGKILL)`, …
    pub exit: String,
    pub oom: bool,
    /// Processes the kernel's OOM killer ended, when the step's cgroup counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// The compiler cache engine's hits and misses during this run (None without an engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler_cache: Option<crate::compiler_cache::Stats>,
    /// (seconds after `started`, RSS bytes) as sampled, for the memory chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<(f64, u64)>,
}

/// A step's leader as recorded while it runs. The start time tells a live step from an
/// unrelated process that got the same pid later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningStep {
    pub step: String,
    /// The leader's pid, which is also its process group.
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks after boot.
    pub start_time: u64,
}

impl RunningStep {
    /// The record for the process `pid`, if it exists.
    pub fn of(step: &str, pid: u32) -> Option<RunningStep> {
        Some(RunningStep {
            step: step.to_string(),
            pid,
            start_time: process_start_time(pid)?,
        })
    }

    /// Whether the step (its leader, or anything still in its process group) is alive.
    pub fn alive(&self) -> bool {
        if process_start_time(self.pid) == Some(self.start_time) {
            return true;
        }
        let Ok(pgid) = i32::try_from(self.pid) else {
            return false;
        };
        // The leader is gone. A process group keeps its number while any member lives, so a
        // group by that number with no leader is what the step left behind.
        // SAFETY: kill(2) with signal 0 only checks that the group exists.
        process_start_time(self.pid).is_none() && unsafe { libc::kill(-pgid, 0) } == 0
    }
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it exists.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Refuses to build a recipe whose step from an earlier jetforge is still running in the
/// same work dir: both would write the same tree.
pub fn refuse_running(
    layout: &crate::layout::Layout,
    recipes: &[&crate::recipe::Recipe],
) -> Result<()> {
    for r in recipes {
        let path = layout.state_file(&r.name);
        let Some(running) = RecipeState::load(&path).running else {
            continue;
        };
        if running.alive() {
            return Err(crate::error::failure_hint(
                format!(
                    "recipe `{}`: step `{}` of an earlier build is still running (pid {}, \
                     process group {}) in this work dir",
                    r.name, running.step, running.pid, running.pid
                ),
                format!(
                    "wait for it to end, or stop it with `kill -TERM -- -{}`, then build again",
                    running.pid
                ),
            ));
        }
    }
    Ok(())
}

impl RecipeState {
    /// Missing or unreadable state means "start from the beginning".
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path
            .parent()
            .context("state file has no parent directory")?;
        crate::private::create_dir(dir)?;
        crate::atomic::write_with_mode(
            path,
            &serde_json::to_vec_pretty(self)?,
            crate::private::FILE,
        )
    }

    /// The step to start at for `fingerprint`: where the last run stopped, if it was building
    /// the same thing; else the first.
    pub fn resume_at(&self, fingerprint: &str) -> usize {
        if self.fingerprint.as_deref() == Some(fingerprint) {
            self.steps_done
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_resume_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/x.json");
        assert_eq!(RecipeState::load(&p), RecipeState::default());
        let s = RecipeState {
            fingerprint: Some("abc".into()),
            steps_done: 2,
            jobs_ok: Some(3),
            last_built: None,
            running: None,
            ..Default::default()
        };
        s.save(&p).unwrap();
        let back = RecipeState::load(&p);
        assert_eq!(back, s);
        assert_eq!(back.resume_at("abc"), 2);
        assert_eq!(back.resume_at("other"), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_recorded_step_is_alive_only_while_its_process_is() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let running = RunningStep::of("step 1", child.id()).unwrap();
        assert!(running.alive());
        // Another process that got the same pid later has another start time.
        let reused = RunningStep {
            start_time: running.start_time + 1,
            ..running.clone()
        };
        assert!(!reused.alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!running.alive());
    }

    #[test]
    fn corrupt_state_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(RecipeState::load(&p), RecipeState::default());
    }
}
