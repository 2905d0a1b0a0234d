//! A build's measurements: each step run (OOM-killed attempts too) goes into the recipe's
//! state, and a finished build's steps teach the memory per job (see `jobs::learn`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::compiler_cache::Stats as CompilerStats;
use crate::host::HostFacts;
use crate::jobs::learn::{self, Measured};
use crate::jobs::JobsDecision;
use crate::process::runner::StepOutcome;
use crate::recipe::Recipe;
use crate::state::{RecipeState, StepTiming};

/// Records one run of `step` that just ended, with the compiler cache's figures of that run.
pub fn record(
    state: &mut RecipeState,
    step: &str,
    jobs: &JobsDecision,
    out: &StepOutcome,
    compiler_cache: Option<CompilerStats>,
) {
    let now = SystemTime::now()
        .checked_sub(out.duration)
        .unwrap_or(UNIX_EPOCH);
    let oom_retries = state
        .timings
        .iter()
        .filter(|t| t.step == step && t.oom)
        .count();
    let u = &out.usage;
    state.timings.push(StepTiming {
        step: step.to_string(),
        started: now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64(),
        wall_secs: out.duration.as_secs_f64(),
        cpu_secs: u.cpu_secs,
        jobs: jobs.jobs,
        max_jobs: jobs.max_jobs,
        nvcc_threads: jobs.nvcc_threads,
        peak_bytes: u.peak(),
        peak_swap_bytes: u.peak_swap,
        cgroup_measured: u.cgroup_peak.is_some(),
        oom_retries: u32::try_from(oom_retries).unwrap_or(u32::MAX),
        exit: out.status.to_string(),
        oom: out.oom && !out.success(),
        oom_kills: u.oom_kills,
        compiler_cache,
        series: u.series.clone(),
    });
}

/// After a successful build: the step with the most memory per job is this build's lesson.
pub fn learn(state: &mut RecipeState, facts: &HostFacts, r: &Recipe) {
    let host = learn::host_key(facts);
    let date = learn::today();
    let best = state
        .timings
        .iter()
        .filter(|t| !t.oom && t.exit == crate::process::runner::Status::Success.to_string())
        .filter_map(|t| {
            let m = Measured {
                step: &t.step,
                jobs: t.jobs,
                peak: t.peak_bytes,
                samples: u32::try_from(t.series.len()).unwrap_or(u32::MAX),
                kernel_peak: t.cgroup_measured,
            };
            learn::lesson(&host, &date, &m, r.jobs.mem_per_job_gib)
        })
        .max_by(|a, b| a.per_job_gib.total_cmp(&b.per_job_gib));
    if let Some(l) = best {
        learn::remember(&mut state.learned, l);
    }
}
