//! The MAX_JOBS policy. STUB: contract final, implementation being written.

use crate::host::HostFacts;
use crate::recipe::JobsPolicy;

/// Where the jobs number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobsSource {
    Computed,
    CliFlag,
    EnvMaxJobs,
    Remembered,
}

/// Overrides in precedence order: `--jobs`, then `MAX_JOBS` from the caller's environment,
/// then jobs remembered after an OOM retry on this machine.
#[derive(Debug, Clone, Default)]
pub struct JobsOverride {
    pub cli: Option<u32>,
    pub env: Option<u32>,
    pub remembered: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobsDecision {
    /// Parallel compile jobs.
    pub jobs: u32,
    /// The value exported as MAX_JOBS (jobs × nvcc_threads when the build divides by it).
    pub max_jobs: u32,
    pub nvcc_threads: Option<u32>,
    pub source: JobsSource,
    /// e.g. "7.1 GiB usable ÷ 3.5 GiB per job; 6 CPUs".
    pub reason: String,
}

pub fn decide(policy: &JobsPolicy, facts: &HostFacts, ov: &JobsOverride) -> JobsDecision {
    let _ = (facts, ov);
    JobsDecision {
        jobs: 1,
        max_jobs: 1,
        nvcc_threads: policy.nvcc_threads,
        source: JobsSource::Computed,
        reason: "stub".into(),
    }
}
