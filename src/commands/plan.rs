//! `jetforge plan [all|PKG…]`: what a build would do, in order, with jobs and why.

use anyhow::Result;

use super::{caller_env, Session};
use crate::builder::cache::{decide, remote_hits, tree_is_current, Question};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::env::Origin;
use crate::host::{HostFacts, GIB};
use crate::plan::{self, Plan, PlanInputs, RecipePlan};
use crate::recipe::OutputKind;
use crate::state::RecipeState;
use crate::wheelhouse::store::{Cached, Wheelhouse};

pub fn run(g: &GlobalArgs, a: &PlanArgs) -> Result<()> {
    let s = Session::load(g)?;
    let mut plan = make(&s, &a.packages.packages, a.jobs.jobs)?;
    if let Some(w) = foreign_target_warning(&s, &plan) {
        eprintln!("{w}");
    }
    fill_cache_status(&s, &mut plan, a)?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan, &s.facts, g.verbose > 0));
    }
    if a.explain_jobs {
        print!("{}", explain_jobs(&s, &plan));
    }
    Ok(())
}

/// `plan --explain-jobs`: every remembered build's lesson per recipe, and what the plan took.
fn explain_jobs(s: &Session, plan: &Plan) -> String {
    use crate::jobs::learn;
    let host = learn::host_key(&s.facts);
    let mut out = format!("\nMemory per job learned on this host ({host}):\n");
    for r in &plan.recipes {
        let Some(recipe) = s.set.get(&r.name) else {
            continue;
        };
        let state = RecipeState::load(&s.layout.state_file(&r.name));
        out.push_str(&format!(
            "  {}: recipe says {:.1} GiB per job; MAX_JOBS={} ({})\n",
            r.name, recipe.jobs.mem_per_job_gib, r.jobs.max_jobs, r.jobs.reason
        ));
        let (mine, others): (Vec<_>, Vec<_>) = state.learned.iter().partition(|l| l.host == host);
        if mine.is_empty() {
            out.push_str("    no build measured on this host yet\n");
        }
        for l in mine {
            out.push_str(&format!(
                "    {}  step `{}`: peak {:.2} GiB with {} jobs → {:.2} GiB per job (× {} margin){}\n",
                l.date,
                l.step,
                l.peak_bytes as f64 / GIB,
                l.jobs,
                l.per_job_gib,
                learn::SAFETY_MARGIN,
                if l.evidence {
                    ""
                } else {
                    "; too little evidence to lower the recipe's figure"
                }
            ));
        }
        if !others.is_empty() {
            out.push_str(&format!(
                "    {} build(s) on other hosts, not used here\n",
                others.len()
            ));
        }
        if let Some(j) = state.jobs_ok {
            out.push_str(&format!("    {j} jobs remembered after an OOM retry\n"));
        }
    }
    out
}

pub fn make(s: &Session, packages: &[String], jobs: Option<u32>) -> Result<Plan> {
    let selected = s.set.select(packages).map_err(crate::error::input)?;
    let ov = s.jobs_override(jobs)?;
    let mode = s.mode()?;
    let inputs = PlanInputs {
        set: &s.set,
        target: &s.target,
        facts: &s.facts,
        layout: &s.layout,
        jobs: &ov,
        policy: &s.policy,
        proxy_env: s.policy.proxy_env(),
        resource_cache: &s.cache_dir,
        caller: &caller_env,
        network: network_lines(s),
        cross: mode.cross(),
        compiler: &s.compiler,
    };
    plan::make(&inputs, &selected)
}

/// Says per wheel or tree recipe what `build` would do, from the same decision (`builder::cache`):
/// take it from the wheelhouse, a remote cache or the installed tree, or build it, and why.
fn fill_cache_status(s: &Session, plan: &mut Plan, a: &PlanArgs) -> Result<()> {
    let remote = s.remote_caches(&a.cache_from);
    let selected = s
        .set
        .select(&a.packages.packages)
        .map_err(crate::error::input)?;
    let known =
        crate::builder::cache::known_fingerprints(&plan.recipes, &selected, &s.target, &s.facts);
    // Loaded once for all recipes; not created when it does not exist (plan writes nothing).
    let wheelhouse = Wheelhouse::open_existing(&s.wheelhouse)?;
    for r in plan
        .recipes
        .iter_mut()
        .filter(|r| r.output != OutputKind::Source)
    {
        let Some(fp) = known.get(&r.name).cloned().flatten() else {
            r.cache =
                Some("will build (the cache key is known once the sources are prepared)".into());
            continue;
        };
        let state = RecipeState::load(&s.layout.state_file(&r.name));
        let steps = r.steps.len();
        let question = Question {
            output: r.output,
            fingerprint: &fp,
            last_built: state.last_built.as_ref(),
            forced: false,
            wheelhouse: &s.wheelhouse,
        };
        let decision = decide(
            &question,
            || tree_is_current(&state, steps, &fp, &s.layout.out_dir(&r.name)),
            || match &wheelhouse {
                Some(w) => w.cached(&fp.hash, &s.target.name),
                None => Ok(Cached::Miss),
            },
            || {
                let warn = &mut |w: &str| eprintln!("warning: {w}");
                let hit = remote_hits(&remote, &fp.hash, &s.target.name, warn)
                    .into_iter()
                    .next();
                Ok(hit.map(|h| (h.url, h.entries.into_iter().map(|e| e.file).collect())))
            },
        )?;
        r.cache = Some(decision.describe());
    }
    Ok(())
}

/// The proxy and offline settings, masked, for `plan`.
pub fn network_lines(s: &Session) -> Vec<String> {
    let mut lines = s.policy.proxy.describe();
    if s.policy.offline {
        lines.push("offline: only the caches are used".to_string());
    }
    lines
}

/// A plan for a machine of another kind (`--target jetson-orin` on an x86 workstation) computes
/// MAX_JOBS from this machine's CPUs and memory, which says nothing about the device: say so,
/// with the figures used. Not for a cross build (it does run here), a build host in the JetPack
/// container, or `--target host`.
fn foreign_target_warning(s: &Session, plan: &Plan) -> Option<String> {
    let t = &s.target;
    let gpu_differs = !t.cuda_arch_list.is_empty()
        && !s
            .facts
            .gpu_arch
            .as_ref()
            .is_some_and(|a| t.cuda_arch_list.contains(a));
    // A build host (JetPack's user space on an arm64 server, no Tegra GPU) builds the target's
    // wheels here: its own figures are the ones that count.
    let build_host = s.facts.arch == t.arch && s.facts.l4t_userspace.is_some();
    let foreign = t.name != crate::target::HOST_TARGET
        && plan.cross.is_none()
        && !build_host
        && (s.facts.arch != t.arch || gpu_differs);
    foreign.then(|| {
        format!(
            "warning: this machine is not a {} device, yet MAX_JOBS below is computed from its own \
             figures ({})\n  = hint: pass --host-facts with the device's figures or a profile \
             (e.g. --host-facts orin-nano-8g), or run `plan` on the device",
            t.name,
            host_line(&s.facts)
        )
    })
}

/// One line about the machine the plan was made on.
pub fn host_line(f: &HostFacts) -> String {
    let mut parts = Vec::new();
    if let Some(j) = &f.jetson {
        let mut s = j.model.clone();
        if let Some(l4t) = &j.l4t {
            s.push_str(&format!(", L4T {l4t}"));
        }
        if let Some(jp) = &j.jetpack {
            s.push_str(&format!(" (JetPack {jp})"));
        }
        parts.push(s);
    } else if let Some(u) = &f.l4t_userspace {
        parts.push(format!("{}, {}", f.arch, u.describe()));
    } else {
        parts.push(f.arch.clone());
    }
    parts.push(format!("{} CPUs", f.cpus.usable));
    let m = &f.memory;
    parts.push(format!(
        "{:.1} GiB RAM ({:.1} GiB available)",
        m.total as f64 / GIB,
        m.available as f64 / GIB
    ));
    parts.push(if m.swap_total == 0 {
        "no swap".to_string()
    } else {
        format!("{:.1} GiB swap", m.swap_total as f64 / GIB)
    });
    if let Some(limit) = f.cgroup.as_ref().and_then(|c| c.limit) {
        parts.push(format!("cgroup limit {:.1} GiB", limit as f64 / GIB));
    }
    parts.push(match &f.cuda {
        Some(c) => format!("CUDA {}", c.version),
        None => "no CUDA".to_string(),
    });
    parts.join(", ")
}

fn render(plan: &Plan, facts: &HostFacts, verbose: bool) -> String {
    let mut out = format!(
        "Plan: set {} for target {}\nHost: {}\n",
        plan.set,
        plan.target.summary(),
        host_line(facts)
    );
    if let Some(p) = &plan.cross {
        out.push_str(&format!(
            "Cross: built on {} for {} (the cross toolchain's variables are marked `# cross`)\n",
            p.build, p.host
        ));
    }
    for line in &plan.network {
        out.push_str(&format!("Network: {}\n", crate::redact::redact(line)));
    }
    out.push_str(&format!(
        "Compiler cache: {}\n",
        crate::redact::redact(&plan.compiler_cache.describe())
    ));
    let git = &plan.git_redirects;
    if !git.mirrors.is_empty() || !git.not_fetched.is_empty() {
        out.push_str(&format!("Git: {}\n", git.summary()));
    }
    for (i, r) in plan.recipes.iter().enumerate() {
        out.push('\n');
        out.push_str(&render_recipe(i + 1, r, verbose));
    }
    out
}

fn render_recipe(n: usize, r: &RecipePlan, verbose: bool) -> String {
    let kind = match r.output {
        OutputKind::Wheel => "wheel",
        OutputKind::Source => "prepared source",
        OutputKind::Tree => "installed tree",
    };
    let mut out = format!("{n}. {} {} ({kind})\n", r.name, r.version);
    let src = &r.source;
    let line = match (&src.url, &src.path) {
        (Some(url), _) => {
            let mut s = url.clone();
            if let Some(t) = &src.tag {
                s.push_str(&format!(" tag {t}"));
            }
            match (&src.branch, &src.commit) {
                (Some(b), Some(c)) => {
                    s.push_str(&format!(" {}", crate::recipe::branch_pin(b, c)));
                    s.push_str(&format!(" (commit {c})"));
                }
                (_, Some(c)) => s.push_str(&format!(" commit {c}")),
                _ => {}
            }
            if !src.submodule_paths.is_empty() {
                s.push_str(&format!(" + submodules {}", src.submodule_paths.join(", ")));
            } else if src.submodules {
                s.push_str(" + submodules");
            }
            if let Some(m) = &src.mirror {
                s.push_str(&format!("\n             via mirror {m}"));
            }
            s
        }
        (None, Some(p)) => format!("local {}", p.display()),
        (None, None) => String::new(),
    };
    out.push_str(&format!("   source    {line}\n"));
    if !r.depends.is_empty() {
        out.push_str(&format!("   depends   {}\n", r.depends.join(", ")));
    }
    for b in &r.build_requires {
        out.push_str(&format!("   build-req {b}\n"));
    }
    if r.build_requires_pending {
        out.push_str(
            "   build-req + pyproject.toml's [build-system] requires, read after prepare\n",
        );
    }
    for p in &r.patches {
        out.push_str(&format!("   patch     {}\n", p.file));
        if let Some(h) = &p.header {
            out.push_str(&format!("             {h}\n"));
        }
    }
    for e in &r.edits {
        let times = match e.count {
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        out.push_str(&format!("   edit      {} ({times})\n", e.file));
        if let Some(why) = &e.why {
            out.push_str(&format!("             why: {why}\n"));
        }
    }
    for res in &r.resources {
        let digest = match (&res.sha256, res.first_use) {
            (Some(sha), false) => format!("sha256 {}…", &sha[..12]),
            (Some(sha), true) => format!("sha256 {}…, recorded on first use", &sha[..12]),
            (None, _) => "trusted on first use, not fetched yet".to_string(),
        };
        out.push_str(&format!(
            "   resource  {} {} ({digest})\n",
            res.name, res.url
        ));
    }
    if r.output != OutputKind::Source {
        let j = &r.jobs;
        let mut jobs = format!("MAX_JOBS={} ({})", j.max_jobs, j.reason);
        if let Some(t) = j.nvcc_threads {
            jobs.push_str(&format!(", NVCC_THREADS={t}"));
        }
        out.push_str(&format!("   jobs      {jobs}\n"));
        for (i, s) in r.steps.iter().enumerate() {
            let lead = if i == 0 {
                "   steps     "
            } else {
                "             "
            };
            out.push_str(&format!("{lead}{}. {}\n", i + 1, indent(&s.display())));
        }
    }
    if let Some(c) = &r.cache {
        out.push_str(&format!("   cache     {c}\n"));
    }
    if let Some(n) = &r.network {
        out.push_str(&format!("   network   {n}\n"));
    }
    let shown: Vec<_> = r
        .build_env
        .vars
        .iter()
        .filter(|v| verbose || !matches!(v.origin, Origin::Caller | Origin::Jetforge | Origin::Git))
        .collect();
    for (i, v) in shown.iter().enumerate() {
        let lead = if i == 0 {
            "   env       "
        } else {
            "             "
        };
        let mark = if v.origin == Origin::Cross {
            "  # cross"
        } else {
            ""
        };
        out.push_str(&format!(
            "{lead}{}={}{mark}\n",
            v.key,
            crate::process::shell_quote(&crate::redact::redact(&v.value))
        ));
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().collect::<Vec<_>>().join("\n                ")
}
