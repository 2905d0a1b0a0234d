//! The MAX_JOBS policy: how many compile jobs a recipe's build may run at once on this host.
//! It reads [`HostFacts`] and a recipe's [`JobsPolicy`] and touches nothing else; applying
//! the number (environment, OOM retries) belongs to the build.
//!
//! ```text
//! usable_gib = min(MemAvailable + SWAP_FRACTION × SwapFree,
//!                  cgroup limit − cgroup usage + cgroup inactive_file)   (when limited)
//!              − reserve
//! reserve    = clamp(RESERVE_FRACTION × that memory, RESERVE_MIN_GIB, RESERVE_MAX_GIB)
//! cpu_limit  = usable CPUs, or usable CPUs ÷ nvcc_threads (≥ 1) when the recipe sets it
//! jobs       = clamp(floor(usable_gib ÷ mem_per_job_gib), 1, cpu_limit), then ≤ policy.max
//! MAX_JOBS   = jobs × nvcc_threads when policy.max_jobs_counts_nvcc_threads, else jobs
//!
//! with distributed compiles ([`distribute`]):
//! MAX_JOBS  += remote slots
//! links      = clamp(floor(usable_gib ÷ mem_per_link_gib), 1, jobs)
//! ```
//!
//! Overrides set `jobs` directly, in the order `--jobs` > `MAX_JOBS` from the environment >
//! the number remembered after an OOM retry; MAX_JOBS is then derived the same way.
//!
//! Size: about 645 lines, of which 351 are the unit tests beside the code (294 of code).

pub mod learn;

use crate::host::{HostFacts, GIB};
use crate::recipe::JobsPolicy;

/// Share of free swap counted as memory: swap is slow, so counting it fully invites
/// thrashing, but ignoring it wastes the 16 GB swap file an 8 GB Orin Nano is set up with.
pub const SWAP_FRACTION: f64 = 0.5;

/// Memory kept back for the build driver itself (pip, CMake, ninja, jetforge) and for what the
/// rest of the machine allocates meanwhile, which the per-job figure of a recipe does not
/// include: a share of the memory seen, so that a small cgroup is not eaten whole by a fixed
/// amount (a 700 MiB cap keeps 70 MiB back and fits 2 jobs of 300 MiB), with a floor for the
/// driver's own processes and a cap, since a big machine does not need more than a devkit's
/// desktop takes.
pub const RESERVE_FRACTION: f64 = 0.1;
/// 64 MiB: jetforge, a Python driver process and ninja together.
pub const RESERVE_MIN_GIB: f64 = 1.0 / 16.0;
/// What the old fixed reserve was: enough for a devkit's desktop session.
pub const RESERVE_MAX_GIB: f64 = 1.0;

/// The reserve for `seen_gib` of memory (see [`RESERVE_FRACTION`]).
pub fn reserve_gib(seen_gib: f64) -> f64 {
    (RESERVE_FRACTION * seen_gib).clamp(RESERVE_MIN_GIB, RESERVE_MAX_GIB)
}

/// Where the jobs number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobsSource {
    Computed,
    CliFlag,
    EnvMaxJobs,
    Remembered,
    /// Computed with the memory per job learned from earlier builds (see `learn`).
    Learned,
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
    /// Compile slots on distribution helpers, included in `max_jobs` (see [`distribute`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub remote_slots: u32,
    /// Links that may run at once; set only with distribution (see [`distribute`]), where
    /// MAX_JOBS no longer bounds what runs here by RAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<u32>,
    pub source: JobsSource,
    /// e.g. "7.1 GiB usable ÷ 3.5 GiB per job; 6 CPUs".
    pub reason: String,
}

/// Memory a build may use, in GiB after the reserve (never negative), and how it was worked
/// out, for `doctor` and `plan -v`.
pub fn usable_memory(facts: &HostFacts) -> (f64, String) {
    let usable = Usable::of(facts);
    (usable.gib, usable.explanation)
}

pub fn decide(policy: &JobsPolicy, facts: &HostFacts, ov: &JobsOverride) -> JobsDecision {
    let (jobs, source, reason) = overridden(ov).unwrap_or_else(|| {
        let (jobs, reason) = computed(policy, facts);
        (jobs, JobsSource::Computed, reason)
    });
    finish(policy, jobs, source, reason)
}

/// The first override present, in precedence order; 0 is taken as 1.
fn overridden(ov: &JobsOverride) -> Option<(u32, JobsSource, String)> {
    let cli = ov
        .cli
        .map(|j| (j, JobsSource::CliFlag, format!("--jobs {j}")));
    let env = || {
        let reason = |j| format!("MAX_JOBS={j} from the environment");
        ov.env.map(|j| (j, JobsSource::EnvMaxJobs, reason(j)))
    };
    let remembered = || {
        let reason = |j| format!("{j} jobs remembered after an OOM retry");
        ov.remembered
            .map(|j| (j, JobsSource::Remembered, reason(j)))
    };
    cli.or_else(env)
        .or_else(remembered)
        .map(|(j, source, reason)| (j.max(1), source, reason))
}

/// Derives MAX_JOBS from jobs, noting it in the reason when the build counts nvcc threads.
fn finish(policy: &JobsPolicy, jobs: u32, source: JobsSource, mut reason: String) -> JobsDecision {
    let mut max_jobs = jobs;
    if let (true, Some(threads)) = (policy.max_jobs_counts_nvcc_threads, policy.nvcc_threads) {
        max_jobs = jobs.saturating_mul(threads.max(1));
        reason.push_str(&format!("; nvcc_threads={threads} → MAX_JOBS={max_jobs}"));
    }
    JobsDecision {
        jobs,
        max_jobs,
        nvcc_threads: policy.nvcc_threads,
        remote_slots: 0,
        links: None,
        source,
        reason,
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Adds the compile slots of distribution helpers: a remote compile uses no local RAM, so they
/// come on top of the local jobs, which still bound what runs here (preprocessing, nvcc, links).
/// Links always run here and take the most memory, so they get their own cap (see
/// [`link_cap`]). The OOM retry halves `jobs` (the local share) and calls this again, which
/// lowers the link cap with it.
pub fn distribute(
    mut d: JobsDecision,
    policy: &JobsPolicy,
    facts: &HostFacts,
    slots: u32,
    hosts: usize,
) -> JobsDecision {
    if slots == 0 {
        return d;
    }
    let local = d.max_jobs;
    let usable = Usable::of(facts).gib;
    let links = link_cap(usable, policy.link_gib(), d.jobs);
    d.remote_slots = slots;
    d.max_jobs = local.saturating_add(slots);
    d.links = Some(links);
    d.reason = format!(
        "{local} local by {}: {} + {slots} remote slots on {hosts} host{}; links capped at \
         {links} ({usable:.1} GiB usable ÷ {:.1} GiB per link)",
        match d.source {
            JobsSource::Computed => "RAM",
            _ => "override",
        },
        d.reason,
        if hosts == 1 { "" } else { "s" },
        policy.link_gib(),
    );
    d
}

/// Links at once: clamp(floor(usable ÷ per link), 1, local jobs). Never more than the local
/// jobs, which were sized for what may run here together.
pub fn link_cap(usable_gib: f64, per_link_gib: f64, local_jobs: u32) -> u32 {
    let local = local_jobs.max(1);
    let by_memory = jobs_for_memory(usable_gib, per_link_gib, local as usize);
    u32::try_from(by_memory).unwrap_or(u32::MAX).clamp(1, local)
}

fn computed(policy: &JobsPolicy, facts: &HostFacts) -> (u32, String) {
    let usable = Usable::of(facts);
    let cpus = facts.cpus.usable.max(1);
    let threads = policy.nvcc_threads.filter(|&t| t > 1);
    let cpu_limit = threads.map_or(cpus, |t| (cpus / t as usize).max(1));
    let by_memory = jobs_for_memory(usable.gib, policy.mem_per_job_gib, cpu_limit);
    let mut jobs = by_memory.clamp(1, cpu_limit);
    let mut reason = format!(
        "{:.1} GiB usable ÷ {:.1} GiB per job; {}",
        usable.gib,
        policy.mem_per_job_gib,
        cpu_phrase(facts, threads)
    );
    if let Some(limit) = usable.cgroup_limit_gib {
        reason.push_str(&format!("; cgroup limit {limit:.1} GiB"));
    }
    if let Some(max) = policy.max.filter(|&m| (m.max(1) as usize) < jobs) {
        jobs = max.max(1) as usize;
        reason.push_str(&format!("; capped at {max}"));
    }
    (u32::try_from(jobs).unwrap_or(u32::MAX), reason)
}

/// floor(usable ÷ per job); a recipe without a usable per-job figure is bound by CPUs only.
fn jobs_for_memory(usable_gib: f64, per_job_gib: f64, cpu_limit: usize) -> usize {
    if !(per_job_gib.is_finite() && per_job_gib > 0.0) {
        return cpu_limit;
    }
    // `as` saturates: NaN and negatives become 0, which the clamp turns into 1.
    (usable_gib / per_job_gib).floor() as usize
}

/// "6 CPUs", "4 of 16 CPUs (cgroup quota)", "… ÷ 4 nvcc threads".
fn cpu_phrase(facts: &HostFacts, nvcc_threads: Option<u32>) -> String {
    let c = &facts.cpus;
    let mut s = if c.usable < c.online {
        format!("{} of {} CPUs (cgroup quota)", c.usable, c.online)
    } else {
        format!("{} CPUs", c.usable)
    };
    if let Some(t) = nvcc_threads {
        s.push_str(&format!(" ÷ {t} nvcc threads"));
    }
    s
}

/// Usable memory with its derivation; `cgroup_limit_gib` is set when the cgroup is what binds.
struct Usable {
    gib: f64,
    explanation: String,
    cgroup_limit_gib: Option<f64>,
}

impl Usable {
    fn of(facts: &HostFacts) -> Self {
        let m = &facts.memory;
        let available = m.available as f64 / GIB;
        let swap_free = m.swap_free as f64 / GIB;
        let host = available + SWAP_FRACTION * swap_free;
        let mut explanation = format!("{available:.1} GiB available");
        if swap_free > 0.0 {
            explanation.push_str(&format!(
                " + {SWAP_FRACTION} × {swap_free:.1} GiB free swap"
            ));
        }
        let mut gib = host;
        let mut cgroup_limit_gib = None;
        if let Some((limit, cg_available, text)) = cgroup_available(facts) {
            if cg_available < host {
                gib = cg_available;
                cgroup_limit_gib = Some(limit);
                explanation = format!("{text} (the host has {explanation})");
            }
        }
        let reserve = reserve_gib(gib);
        Self {
            gib: (gib - reserve).max(0.0),
            explanation: format!("{explanation} − {} reserve", gib_text(reserve)),
            cgroup_limit_gib,
        }
    }
}

/// "1.0 GiB", or "70 MiB" below 1 GiB, where a tenth of a GiB is too coarse.
fn gib_text(gib: f64) -> String {
    if gib < 1.0 {
        format!("{:.0} MiB", gib * 1024.0)
    } else {
        format!("{gib:.1} GiB")
    }
}

/// (limit, limit − usage + inactive_file, explanation) in GiB, when the cgroup has a limit.
fn cgroup_available(facts: &HostFacts) -> Option<(f64, f64, String)> {
    let cg = facts.cgroup.as_ref()?;
    let limit = cg.limit? as f64 / GIB;
    let usage = cg.usage.unwrap_or(0) as f64 / GIB;
    let inactive = cg.inactive_file.unwrap_or(0) as f64 / GIB;
    let available = (limit - usage + inactive).max(0.0);
    let text = format!(
        "cgroup limit {limit:.1} GiB − {usage:.1} GiB used + {inactive:.1} GiB reclaimable"
    );
    Some((limit, available, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures;

    fn torch() -> JobsPolicy {
        JobsPolicy {
            mem_per_job_gib: 3.0,
            mem_per_link_gib: None,
            nvcc_threads: None,
            max_jobs_counts_nvcc_threads: false,
            max: None,
        }
    }

    fn flash_attn() -> JobsPolicy {
        JobsPolicy {
            mem_per_job_gib: 8.0,
            mem_per_link_gib: None,
            nvcc_threads: Some(4),
            max_jobs_counts_nvcc_threads: false,
            max: None,
        }
    }

    fn vllm() -> JobsPolicy {
        JobsPolicy {
            mem_per_job_gib: 4.0,
            mem_per_link_gib: None,
            nvcc_threads: Some(2),
            max_jobs_counts_nvcc_threads: true,
            max: None,
        }
    }

    #[test]
    fn remote_slots_come_on_top_of_the_local_jobs_and_survive_an_oom_retry() {
        let policy = torch();
        let facts = fixtures::facts("agx-orin-64g");
        let d = distribute(
            decide(&policy, &facts, &JobsOverride::default()),
            &policy,
            &facts,
            16,
            2,
        );
        assert_eq!((d.jobs, d.remote_slots, d.max_jobs), (12, 16, 28));
        assert!(d.reason.starts_with("12 local by RAM: "), "{}", d.reason);
        assert!(
            d.reason
                .contains("+ 16 remote slots on 2 hosts; links capped at 9 (57.0 GiB usable"),
            "{}",
            d.reason
        );
        // The driver's OOM retry: half the local jobs, the remote slots stay.
        let ov = JobsOverride {
            cli: Some(d.jobs / 2),
            ..JobsOverride::default()
        };
        let retry = distribute(decide(&policy, &facts, &ov), &policy, &facts, 16, 2);
        assert_eq!((retry.jobs, retry.max_jobs), (6, 22));
        assert_eq!(distribute(retry.clone(), &policy, &facts, 0, 0), retry);
    }

    /// 57 GiB ÷ 6 GiB per link (twice torch's 3 GiB per job) = 9 links, below the 12 local
    /// jobs; the OOM retry's 6 local jobs then bind, and 1 job still links.
    #[test]
    fn links_are_capped_by_memory_per_link_and_by_the_local_jobs() {
        let policy = torch();
        let facts = fixtures::facts("agx-orin-64g");
        let links = |ov: JobsOverride, policy: &JobsPolicy| {
            distribute(decide(policy, &facts, &ov), policy, &facts, 8, 1).links
        };
        assert_eq!(policy.link_gib(), 6.0);
        assert_eq!(links(JobsOverride::default(), &policy), Some(9));
        let retry = |j| JobsOverride {
            cli: Some(j),
            ..JobsOverride::default()
        };
        assert_eq!(links(retry(6), &policy), Some(6));
        assert_eq!(links(retry(1), &policy), Some(1));
        let heavy = JobsPolicy {
            mem_per_link_gib: Some(20.0),
            ..torch()
        };
        assert_eq!(links(JobsOverride::default(), &heavy), Some(2));
        let d = distribute(
            decide(&heavy, &facts, &JobsOverride::default()),
            &heavy,
            &facts,
            16,
            2,
        );
        assert!(d
            .reason
            .contains("links capped at 2 (57.0 GiB usable ÷ 20.0 GiB per link)"));
        // Without distribution MAX_JOBS already bounds everything by RAM: no cap.
        assert_eq!(decide(&heavy, &facts, &JobsOverride::default()).links, None);
    }

    #[test]
    fn link_cap_never_goes_below_one_or_above_the_local_jobs() {
        assert_eq!(link_cap(0.0, 4.0, 8), 1);
        assert_eq!(link_cap(100.0, 4.0, 8), 8);
        assert_eq!(link_cap(10.0, 4.0, 8), 2);
        assert_eq!(link_cap(10.0, 0.0, 3), 3);
        assert_eq!(link_cap(10.0, f64::NAN, 0), 1);
    }

    fn computed(policy: &JobsPolicy, fixture: &str) -> JobsDecision {
        decide(policy, &fixtures::facts(fixture), &JobsOverride::default())
    }

    /// (fixture, torch, flash-attn, vLLM jobs, vLLM MAX_JOBS): the numbers a user of each
    /// machine would see in `plan`.
    #[test]
    fn jobs_per_fixture() {
        let expected = [
            ("orin-nano-8g", 1, 1, 1, 2),
            ("orin-nano-8g-swap16", 4, 1, 3, 6),
            ("agx-orin-64g", 12, 3, 6, 12),
            ("x86-ci-cgroup6g", 1, 1, 1, 2),
            ("cgroup-v2-host", 3, 1, 1, 2),
            ("arm64-server-jetpack", 39, 14, 29, 58),
        ];
        for (fixture, t, f, v, v_max) in expected {
            let torch = computed(&torch(), fixture);
            assert_eq!(
                (torch.jobs, torch.max_jobs),
                (t, t),
                "{fixture}: {}",
                torch.reason
            );
            let fa = computed(&flash_attn(), fixture);
            assert_eq!((fa.jobs, fa.max_jobs), (f, f), "{fixture}: {}", fa.reason);
            let vl = computed(&vllm(), fixture);
            assert_eq!(
                (vl.jobs, vl.max_jobs),
                (v, v_max),
                "{fixture}: {}",
                vl.reason
            );
            assert_eq!(vl.nvcc_threads, Some(2));
            assert_eq!(vl.source, JobsSource::Computed);
        }
    }

    #[test]
    fn reasons_name_what_bound() {
        let nano = computed(&torch(), "orin-nano-8g");
        assert_eq!(nano.reason, "5.7 GiB usable ÷ 3.0 GiB per job; 6 CPUs");
        let ci = computed(&vllm(), "x86-ci-cgroup6g");
        assert_eq!(
            ci.reason,
            "4.7 GiB usable ÷ 4.0 GiB per job; 4 of 16 CPUs (cgroup quota) ÷ 2 nvcc threads; \
             cgroup limit 6.0 GiB; nvcc_threads=2 → MAX_JOBS=2"
        );
    }

    #[test]
    fn usable_memory_explains_itself() {
        let (gib, text) = usable_memory(&fixtures::facts("orin-nano-8g-swap16"));
        assert!((gib - 13.3).abs() < 0.01, "{gib}");
        assert_eq!(
            text,
            "6.3 GiB available + 0.5 × 16.0 GiB free swap − 1.0 GiB reserve"
        );
        let (gib, text) = usable_memory(&fixtures::facts("cgroup-v2-host"));
        assert_eq!(gib, 9.5);
        assert!(text.starts_with("cgroup limit 12.0 GiB − 2.0 GiB used + 0.5 GiB reclaimable"));
    }

    /// A cgroup whose limit is far above what the host has left must not raise the estimate.
    #[test]
    fn loose_cgroup_limit_does_not_bind() {
        let mut facts = fixtures::facts("orin-nano-8g");
        let cg = facts.cgroup.as_mut().unwrap();
        cg.limit = Some(7 << 30);
        cg.usage = Some(0);
        let (gib, _) = usable_memory(&facts);
        assert!((gib - 6.3 * 0.9).abs() < 0.01, "{gib}");
        assert!(!decide(&torch(), &facts, &JobsOverride::default())
            .reason
            .contains("cgroup"));
    }

    /// The reserve is a tenth of the memory seen, at least 64 MiB and at most 1 GiB.
    #[test]
    fn reserve_is_proportional_with_a_floor_and_a_cap() {
        let mib = |m: f64| m / 1024.0;
        assert!((reserve_gib(mib(700.0)) - mib(70.0)).abs() < 1e-9);
        assert_eq!(reserve_gib(mib(300.0)), RESERVE_MIN_GIB);
        assert_eq!(reserve_gib(0.0), RESERVE_MIN_GIB);
        assert!((reserve_gib(5.0) - 0.5).abs() < 1e-9);
        assert_eq!(reserve_gib(10.0), RESERVE_MAX_GIB);
        assert_eq!(reserve_gib(64.0), RESERVE_MAX_GIB);
    }

    /// A 700 MiB cgroup fits 2 jobs of 300 MiB (a fixed 1 GiB reserve left it 1); 2.8 GiB fits
    /// 3 of 800 MiB.
    #[test]
    fn a_small_cgroup_is_not_eaten_by_the_reserve() {
        let cases = [(700, 300.0, 2), (2867, 800.0, 3), (500, 300.0, 1)];
        for (limit_mib, per_job_mib, jobs) in cases {
            let mut facts = fixtures::facts("agx-orin-64g");
            facts.cgroup = Some(crate::host::CgroupMemory {
                limit: Some(limit_mib << 20),
                usage: Some(0),
                inactive_file: Some(0),
                version: 1,
                path: "/jf".into(),
            });
            let policy = JobsPolicy {
                mem_per_job_gib: per_job_mib / 1024.0,
                ..torch()
            };
            let d = decide(&policy, &facts, &JobsOverride::default());
            assert_eq!(d.jobs, jobs, "{limit_mib} MiB: {}", d.reason);
            assert!(d.reason.contains("cgroup limit"), "{}", d.reason);
        }
        let (_, text) = usable_memory(&{
            let mut f = fixtures::facts("agx-orin-64g");
            f.cgroup = Some(crate::host::CgroupMemory {
                limit: Some(700 << 20),
                usage: Some(0),
                inactive_file: Some(0),
                version: 1,
                path: "/jf".into(),
            });
            f
        });
        assert!(text.ends_with("− 70 MiB reserve"), "{text}");
    }

    #[test]
    fn policy_max_caps() {
        let capped = JobsPolicy {
            max: Some(4),
            ..torch()
        };
        let d = computed(&capped, "agx-orin-64g");
        assert_eq!((d.jobs, d.max_jobs), (4, 4));
        assert_eq!(
            d.reason,
            "57.0 GiB usable ÷ 3.0 GiB per job; 12 CPUs; capped at 4"
        );
        let loose = JobsPolicy {
            max: Some(40),
            ..torch()
        };
        assert!(!computed(&loose, "agx-orin-64g").reason.contains("capped"));
        let vllm_capped = JobsPolicy {
            max: Some(2),
            ..vllm()
        };
        assert_eq!(computed(&vllm_capped, "agx-orin-64g").max_jobs, 4);
    }

    #[test]
    fn override_precedence() {
        let facts = fixtures::facts("agx-orin-64g");
        let all = JobsOverride {
            cli: Some(3),
            env: Some(5),
            remembered: Some(7),
        };
        let cases = [
            (all.clone(), 3, JobsSource::CliFlag, "--jobs 3"),
            (
                JobsOverride {
                    cli: None,
                    ..all.clone()
                },
                5,
                JobsSource::EnvMaxJobs,
                "MAX_JOBS=5 from the environment",
            ),
            (
                JobsOverride {
                    remembered: Some(7),
                    ..Default::default()
                },
                7,
                JobsSource::Remembered,
                "7 jobs remembered after an OOM retry",
            ),
        ];
        for (ov, jobs, source, reason) in cases {
            let d = decide(&torch(), &facts, &ov);
            assert_eq!(
                (d.jobs, d.max_jobs, d.source, d.reason.as_str()),
                (jobs, jobs, source, reason)
            );
        }
    }

    #[test]
    fn overrides_still_scale_max_jobs_by_nvcc_threads() {
        let ov = JobsOverride {
            cli: Some(3),
            ..Default::default()
        };
        let d = decide(&vllm(), &fixtures::facts("orin-nano-8g"), &ov);
        assert_eq!((d.jobs, d.max_jobs), (3, 6));
        assert_eq!(d.reason, "--jobs 3; nvcc_threads=2 → MAX_JOBS=6");
    }

    #[test]
    fn zero_override_means_one() {
        let ov = JobsOverride {
            env: Some(0),
            ..Default::default()
        };
        assert_eq!(
            decide(&torch(), &fixtures::facts("orin-nano-8g"), &ov).jobs,
            1
        );
    }

    /// Nonsense inputs (no memory at all, a zero per-job figure, a zero cap) still give a
    /// runnable number instead of a panic or 0.
    #[test]
    fn degenerate_inputs_give_at_least_one_job() {
        let empty = tempfile::tempdir().unwrap();
        let facts = HostFacts::read(empty.path());
        assert_eq!(decide(&torch(), &facts, &JobsOverride::default()).jobs, 1);
        let agx = fixtures::facts("agx-orin-64g");
        let no_mem = JobsPolicy {
            mem_per_job_gib: 0.0,
            ..torch()
        };
        assert_eq!(decide(&no_mem, &agx, &JobsOverride::default()).jobs, 12);
        let nan = JobsPolicy {
            mem_per_job_gib: f64::NAN,
            ..torch()
        };
        assert_eq!(decide(&nan, &agx, &JobsOverride::default()).jobs, 12);
        let zero_cap = JobsPolicy {
            max: Some(0),
            ..torch()
        };
        assert_eq!(decide(&zero_cap, &agx, &JobsOverride::default()).jobs, 1);
        let zero_threads = JobsPolicy {
            nvcc_threads: Some(0),
            ..vllm()
        };
        assert_eq!(
            decide(&zero_threads, &agx, &JobsOverride::default()).max_jobs,
            12
        );
    }
}
