//! Memory per job learned from builds that went well, remembered per recipe and per host.
//!
//! A successful step that ran `j` jobs with a measured peak `P` (see `process::sampler`) shows
//! what one job needs on this machine:
//!
//! ```text
//! per_job_gib = P ÷ j × SAFETY_MARGIN        (only when P > BASELINE: the step compiled)
//! ```
//!
//! The step's driver (make, ninja, pip) is counted into the jobs, on top of the policy's
//! reserve: the figure errs high. Which value `plan` uses ([`choose`]): the highest of the
//! host's remembered builds; above the recipe's figure it is used at once (a figure too low
//! means an OOM kill), below it only with [`Learned::evidence`]: the peak was the kernel's
//! (the step's cgroup saw every page) or sampled often enough with two jobs or more.

use serde::{Deserialize, Serialize};

use crate::host::{HostFacts, GIB};

/// Peaks move between builds of the same code (which files happen to compile together), and
/// sampling may miss a short spike: the learned figure is the measured one plus a quarter.
pub const SAFETY_MARGIN: f64 = 1.25;

/// What a step that compiles nothing holds (bash, a Python interpreter with pip, CMake): a
/// peak at or below this teaches nothing about compile jobs.
pub const BASELINE: u64 = 256 << 20;

/// Samples a peak needs, when no cgroup measured it, to lower the recipe's figure.
pub const MIN_SAMPLES: u32 = 8;

/// Builds remembered per host.
pub const HISTORY: usize = 5;

/// Differences below this share of the recipe's figure are not worth a different plan.
const NEGLIGIBLE: f64 = 0.05;

/// What one build taught: the step with the highest memory per job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// [`host_key`] of the machine it was measured on.
    pub host: String,
    /// The day of the build, `YYYY-MM-DD` (UTC).
    pub date: String,
    pub step: String,
    pub jobs: u32,
    pub peak_bytes: u64,
    pub per_job_gib: f64,
    /// The recipe's figure at the time.
    pub recipe_gib: f64,
    /// Strong enough to lower the recipe's figure (see the module doc).
    pub evidence: bool,
}

/// The value `plan` uses instead of the recipe's, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub per_job_gib: f64,
    pub from: Learned,
    pub recipe_gib: f64,
}

impl Choice {
    /// `learned 2.4 GiB per job from the build of 2026-11-30; recipe says 3.0`
    pub fn phrase(&self) -> String {
        format!(
            "learned {:.1} GiB per job from the build of {}; recipe says {:.1}",
            self.per_job_gib, self.from.date, self.recipe_gib
        )
    }
}

/// A machine as far as memory per job goes: CPU, model, RAM and CPUs. Stable across reboots,
/// and different for a faked host (`JETFORGE_HOST_ROOT`) or the same work dir on another box.
pub fn host_key(facts: &HostFacts) -> String {
    let model = facts
        .jetson
        .as_ref()
        .map_or("generic".to_string(), |j| j.model.clone());
    format!(
        "{} {model}, {:.0} GiB RAM, {} CPUs",
        facts.arch,
        facts.memory.total as f64 / GIB,
        facts.cpus.online
    )
}

/// `P ÷ j × SAFETY_MARGIN` in GiB, or `None` when the step stayed at the baseline.
pub fn derive(jobs: u32, peak: u64) -> Option<f64> {
    (peak > BASELINE).then(|| peak as f64 / GIB / f64::from(jobs.max(1)) * SAFETY_MARGIN)
}

/// A successful step as measured.
#[derive(Debug, Clone, Default)]
pub struct Measured<'a> {
    pub step: &'a str,
    pub jobs: u32,
    pub peak: u64,
    pub samples: u32,
    /// The peak is the kernel's (the step's cgroup), not sampled.
    pub kernel_peak: bool,
}

/// What a successful step teaches on `host`, if anything.
pub fn lesson(host: &str, date: &str, m: &Measured, recipe_gib: f64) -> Option<Learned> {
    let per_job_gib = derive(m.jobs, m.peak)?;
    let evidence = m.kernel_peak || (m.samples >= MIN_SAMPLES && m.jobs >= 2);
    Some(Learned {
        host: host.to_string(),
        date: date.to_string(),
        step: m.step.to_string(),
        jobs: m.jobs,
        peak_bytes: m.peak,
        per_job_gib,
        recipe_gib,
        evidence,
    })
}

/// Adds a build's lesson, keeping the last [`HISTORY`] per host.
pub fn remember(history: &mut Vec<Learned>, new: Learned) {
    history.push(new.clone());
    let mine = history.iter().filter(|l| l.host == new.host).count();
    let mut drop = mine.saturating_sub(HISTORY);
    history.retain(|l| {
        if drop > 0 && l.host == new.host {
            drop -= 1;
            return false;
        }
        true
    });
}

/// The figure to plan with on `host`, when the history says the recipe's is wrong.
pub fn choose(recipe_gib: f64, history: &[Learned], host: &str) -> Option<Choice> {
    let mine: Vec<&Learned> = history.iter().filter(|l| l.host == host).collect();
    let top = mine
        .iter()
        .copied()
        .max_by(|a, b| a.per_job_gib.total_cmp(&b.per_job_gib))?;
    let per_job_gib = top.per_job_gib;
    let usable_recipe = recipe_gib.is_finite() && recipe_gib > 0.0;
    if usable_recipe && (per_job_gib - recipe_gib).abs() <= NEGLIGIBLE * recipe_gib {
        return None;
    }
    let lower = usable_recipe && per_job_gib < recipe_gib;
    if lower && !mine.iter().any(|l| l.evidence) {
        return None;
    }
    Some(Choice {
        per_job_gib,
        from: top.clone(),
        recipe_gib,
    })
}

/// [`super::decide`] with the learned figure in place of the recipe's, said in the reason;
/// `--jobs` and `MAX_JOBS` still win.
pub fn decide_with(
    policy: &crate::recipe::JobsPolicy,
    facts: &HostFacts,
    ov: &super::JobsOverride,
    learned: Option<&Choice>,
) -> super::JobsDecision {
    let Some(c) = learned else {
        return super::decide(policy, facts, ov);
    };
    let policy = crate::recipe::JobsPolicy {
        mem_per_job_gib: c.per_job_gib,
        ..policy.clone()
    };
    let mut d = super::decide(&policy, facts, ov);
    if d.source == super::JobsSource::Computed {
        d.source = super::JobsSource::Learned;
        d.reason = format!("{}; {}", c.phrase(), d.reason);
    }
    d
}

/// Today as `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(peak_gib: f64, samples: u32, kernel_peak: bool) -> Measured<'static> {
        Measured {
            step: "wheel",
            jobs: 0,
            peak: (peak_gib * GIB) as u64,
            samples,
            kernel_peak,
        }
    }

    fn learned(per_job: f64, evidence: bool, host: &str) -> Learned {
        Learned {
            host: host.into(),
            date: "2026-11-30".into(),
            step: "wheel".into(),
            jobs: 4,
            peak_bytes: 0,
            per_job_gib: per_job,
            recipe_gib: 3.0,
            evidence,
        }
    }

    #[test]
    fn per_job_is_peak_over_jobs_with_the_margin() {
        assert_eq!(derive(4, (8.0 * GIB) as u64), Some(2.0 * SAFETY_MARGIN));
        assert_eq!(derive(0, (2.0 * GIB) as u64), Some(2.0 * SAFETY_MARGIN));
        assert_eq!(derive(4, BASELINE), None);
    }

    #[test]
    fn evidence_needs_the_kernel_peak_or_enough_samples_of_parallel_jobs() {
        let l = |u: Measured, jobs| {
            let m = Measured { jobs, ..u };
            lesson("h", "d", &m, 3.0).unwrap().evidence
        };
        assert!(l(usage(4.0, 1, true), 1));
        assert!(l(usage(4.0, MIN_SAMPLES, false), 2));
        assert!(!l(usage(4.0, MIN_SAMPLES - 1, false), 2));
        assert!(!l(usage(4.0, 100, false), 1));
        assert!(lesson("h", "d", &usage(0.1, 100, true), 3.0).is_none());
    }

    #[test]
    fn higher_is_used_at_once_lower_only_with_evidence() {
        let h = "host-a";
        let higher = [learned(4.0, false, h)];
        let c = choose(3.0, &higher, h).unwrap();
        assert_eq!(c.per_job_gib, 4.0);
        assert_eq!(
            c.phrase(),
            "learned 4.0 GiB per job from the build of 2026-11-30; recipe says 3.0"
        );
        assert_eq!(choose(3.0, &[learned(1.5, false, h)], h), None);
        assert_eq!(
            choose(3.0, &[learned(1.5, true, h)], h).map(|c| c.per_job_gib),
            Some(1.5)
        );
        assert_eq!(choose(3.0, &[learned(3.1, true, h)], h), None, "negligible");
    }

    #[test]
    fn the_highest_of_this_hosts_builds_counts_and_no_other_hosts() {
        let hist = [
            learned(1.5, true, "a"),
            learned(2.0, true, "a"),
            learned(9.0, true, "b"),
        ];
        assert_eq!(choose(3.0, &hist, "a").unwrap().per_job_gib, 2.0);
        assert_eq!(choose(3.0, &hist, "b").unwrap().per_job_gib, 9.0);
        assert_eq!(choose(3.0, &hist, "c"), None);
    }

    #[test]
    fn history_keeps_the_last_builds_per_host() {
        let mut hist = vec![learned(9.0, true, "b")];
        for i in 0..HISTORY + 2 {
            remember(&mut hist, learned(i as f64, true, "a"));
        }
        let a: Vec<f64> = hist
            .iter()
            .filter(|l| l.host == "a")
            .map(|l| l.per_job_gib)
            .collect();
        assert_eq!(a, [2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(hist.iter().any(|l| l.host == "b"));
    }

    #[test]
    fn plan_says_what_it_learned_and_overrides_still_win() {
        let facts = crate::host::fixtures::facts("agx-orin-64g");
        let policy = crate::recipe::JobsPolicy {
            mem_per_job_gib: 12.0,
            mem_per_link_gib: None,
            nvcc_threads: None,
            max_jobs_counts_nvcc_threads: false,
            max: None,
        };
        let host = host_key(&facts);
        let c = choose(12.0, &[learned(6.0, true, &host)], &host).unwrap();
        let d = decide_with(&policy, &facts, &Default::default(), Some(&c));
        assert_eq!(d.source, super::super::JobsSource::Learned);
        assert_eq!(d.jobs, 9, "{}", d.reason);
        assert!(
            d.reason.starts_with(
                "learned 6.0 GiB per job from the build of 2026-11-30; recipe says 12.0; "
            ),
            "{}",
            d.reason
        );
        let cli = super::super::JobsOverride {
            cli: Some(2),
            ..Default::default()
        };
        assert_eq!(decide_with(&policy, &facts, &cli, Some(&c)).jobs, 2);
    }

    #[test]
    fn hosts_differ_by_memory_and_cpus() {
        let nano = host_key(&crate::host::fixtures::facts("orin-nano-8g"));
        let agx = host_key(&crate::host::fixtures::facts("agx-orin-64g"));
        assert_ne!(nano, agx);
        assert!(agx.starts_with("aarch64 "), "{agx}");
    }
}
