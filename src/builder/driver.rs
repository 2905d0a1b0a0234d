//! The build driver: `jetforge build [all|PKG…]`.
//!
//! Order of work, so that hours of compiling are never followed by an avoidable failure:
//! 1. plan every selected recipe (environment, steps, jobs);
//! 2. fetch every source and resource, then check every patch and edit of every recipe and
//!    prepare the trees — all before the first build step of any recipe;
//! 3. fingerprint each recipe (dependencies first) and skip those with a verified wheel, in
//!    the wheelhouse or in a remote cache (downloaded, hash and wheel checks, then kept), or
//!    a current installed tree: `cache::decide`, the decision `plan` shows;
//! 4. build the rest in dependency order: build venv with the build requirements
//!    (`build_venv`), steps (`steps`: resumable, OOM retry, measured for `timings`; compiler
//!    cache counters read around each, the recipe's figures their sum), wheel checks
//!    (`wheels`), verify (`verify`), wheelhouse (atomic);
//!    a cross build (see `cross`) writes its toolchain files first, runs jetforge's own tools
//!    (venv, pip) without the cross variables, installs no target wheel into the build venv and
//!    verifies under the target's emulator instead;
//! 5. check every wheel's `Requires-Dist` against the set, regenerate the index, summarise.
//!
//! `enter` readies one recipe up to its first step for `jetforge shell`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use super::build_venv::ensure_venv;
use super::cache::{
    decide, fingerprints, remote_cached, tree_is_current, CacheDecision, Question, Resolved,
};
use super::steps::run_steps;
use super::summary::{BuildFailed, Outcome, Summary};
use super::verify::verify_wheels;
use super::wheels::{check_set_pins, collect_wheels};
use crate::compiler_cache::{Setup as CompilerSetup, Stats as CompilerStats};
use crate::cross::Cross;
use crate::host::HostFacts;
use crate::jobs::JobsOverride;
use crate::layout::Layout;
use crate::net::UrlPolicy;
use crate::plan::{self, PlanInputs, RecipePlan};
use crate::recipe::{OutputKind, Recipe, RecipeSet};
use crate::report::{format_duration, Reporter};
use crate::source::git::MirrorCache;
use crate::source::phase as sources;
use crate::state::RecipeState;
use crate::target::Target;
use crate::venv::VenvSpec;
use crate::wheelhouse::remote::RemoteCaches;
use crate::wheelhouse::store::{EntryMeta, Wheelhouse};
use crate::wheelhouse::verified::VerifyState;

/// Everything a build needs that does not change per recipe.
pub struct BuildContext<'a> {
    pub set: &'a RecipeSet,
    pub target: &'a Target,
    pub facts: &'a HostFacts,
    pub layout: &'a Layout,
    pub policy: &'a dyn UrlPolicy,
    pub proxy_env: Vec<(String, String)>,
    pub cache_dir: &'a Path,
    /// The pip seed store for new venvs (`venv::seed`); `None`: plain `python -m venv`.
    pub venv_seeds: Option<&'a Path>,
    /// Build requirements from the wheel cache first when it satisfies them (see
    /// `build_venv::install_build_requirements`).
    pub build_reqs_cache_first: bool,
    pub wheelhouse: &'a Wheelhouse,
    /// Remote wheel caches consulted before building (`[cache] indexes`, `--cache-from`).
    pub remote: &'a RemoteCaches<'a>,
    pub reporter: &'a dyn Reporter,
    pub caller: &'a dyn Fn(&str) -> Option<String>,
    pub network: Vec<String>,
    /// Set when building for another CPU.
    pub cross: Option<&'a Cross>,
    pub compiler: &'a CompilerSetup,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub force: Vec<String>,
    pub keep_going: bool,
    pub jobs: JobsOverride,
    pub verbose: bool,
    /// The interpreter that creates the build venv (else found from the target's version).
    pub python: Option<PathBuf>,
    pub system_site_packages: bool,
}

pub fn build(cx: &BuildContext, selected: &[&Recipe], opts: &BuildOptions) -> Result<Summary> {
    crate::process::interrupt::install();
    crate::state::refuse_running(cx.layout, selected)?;
    if let Some(c) = cx.cross {
        crate::cross::materialize(c)?;
    }
    // A recipe that cannot be planned fails here, before anything is downloaded.
    make_plans(cx, selected, &opts.jobs)?;
    let cache = MirrorCache::new(cx.cache_dir, cx.policy).on_wait(|m| cx.reporter.message(m));
    sources::fetch_all(selected, &cache, cx.cache_dir, cx.policy, cx.reporter)?;
    // Planned again: first-use digests and the git redirects are known once fetched.
    let plans = make_plans(cx, selected, &opts.jobs)?;
    let plan_refs: Vec<&RecipePlan> = plans.iter().collect();
    let prepared = sources::prepare_all(&plan_refs, selected, &cache, cx.reporter)?;
    let resolved = fingerprints(cx, selected, &prepared)?;
    // Read the manifest now, so that a recovery from a missing one is told before any result.
    cx.wheelhouse.entries()?;
    if let Some(note) = cx.wheelhouse.take_recovery_note() {
        cx.reporter.message(&note);
    }
    let mut summary = Summary { rows: Vec::new() };
    let mut errors = Vec::new();
    let mut bad: BTreeSet<String> = BTreeSet::new();
    let mut venv: Option<VenvSpec> = None;
    for (r, p) in selected.iter().zip(&plans) {
        let res = &resolved[&r.name];
        let outcome = if let Some(dep) = r.depends.iter().find(|d| bad.contains(*d)) {
            Outcome::Skipped {
                failed_dependency: dep.clone(),
            }
        } else {
            let step = build_one(cx, r, p, res, opts, &mut venv);
            match step {
                Ok(o) => o,
                Err(e) if crate::process::interrupt::interrupted() => {
                    return Err(e.context(
                        "interrupted; the next `jetforge build` resumes where this one stopped",
                    ))
                }
                Err(e) => {
                    let text = crate::error::render(&e);
                    cx.reporter.finished(&r.name, "failed");
                    errors.push(text.clone());
                    Outcome::Failed { error: text }
                }
            }
        };
        if matches!(outcome, Outcome::Failed { .. } | Outcome::Skipped { .. }) {
            bad.insert(r.name.clone());
            if !opts.keep_going && matches!(outcome, Outcome::Failed { .. }) {
                summary
                    .rows
                    .push((r.name.clone(), r.version.to_string(), outcome));
                return Err(BuildFailed { summary, errors }.into());
            }
        }
        summary
            .rows
            .push((r.name.clone(), r.version.to_string(), outcome));
    }
    if let Err(e) = check_set_pins(cx) {
        errors.push(crate::error::render(&e));
    }
    cx.wheelhouse.flush()?;
    cx.wheelhouse.refresh_index()?;
    if errors.is_empty() && !summary.failed() {
        Ok(summary)
    } else {
        Err(BuildFailed { summary, errors }.into())
    }
}

/// Readies one recipe for `jetforge shell`: its sources (and its dependencies') fetched and
/// prepared, the build venv created with the dependency wheels and build requirements, as a
/// build would before its first step. Returns the recipe's plan (environment, source dir).
pub fn enter(cx: &BuildContext, r: &Recipe, opts: &BuildOptions) -> Result<RecipePlan> {
    let selected = cx
        .set
        .select(std::slice::from_ref(&r.name))
        .map_err(crate::error::input)?;
    crate::state::refuse_running(cx.layout, &selected)?;
    if let Some(c) = cx.cross {
        crate::cross::materialize(c)?;
    }
    let cache = MirrorCache::new(cx.cache_dir, cx.policy).on_wait(|m| cx.reporter.message(m));
    sources::fetch_all(&selected, &cache, cx.cache_dir, cx.policy, cx.reporter)?;
    let plans = make_plans(cx, &selected, &opts.jobs)?;
    let refs: Vec<&RecipePlan> = plans.iter().collect();
    sources::prepare_all(&refs, &selected, &cache, cx.reporter)?;
    let mut venv = None;
    ensure_venv(cx, r, opts, &mut venv)?;
    Ok(plans
        .into_iter()
        .find(|p| p.name == r.name)
        .expect("the selection holds the recipe"))
}

pub(super) fn make_plans(
    cx: &BuildContext,
    selected: &[&Recipe],
    jobs: &JobsOverride,
) -> Result<Vec<RecipePlan>> {
    let inputs = PlanInputs {
        set: cx.set,
        target: cx.target,
        facts: cx.facts,
        layout: cx.layout,
        jobs,
        policy: cx.policy,
        proxy_env: cx.proxy_env.clone(),
        resource_cache: cx.cache_dir,
        caller: cx.caller,
        network: cx.network.clone(),
        cross: cx.cross,
        compiler: cx.compiler,
    };
    Ok(plan::make(&inputs, selected)?.recipes)
}

fn build_one(
    cx: &BuildContext,
    r: &Recipe,
    p: &RecipePlan,
    res: &Resolved,
    opts: &BuildOptions,
    venv: &mut Option<VenvSpec>,
) -> Result<Outcome> {
    let state_path = cx.layout.state_file(&r.name);
    let mut state = RecipeState::load(&state_path);
    if r.output == OutputKind::Source {
        cx.reporter.finished(&r.name, "prepared");
        return Ok(Outcome::Prepared);
    }
    let forced = opts.force.iter().any(|f| f == &r.name || f == "all");
    let fp = &res.fingerprint;
    let question = Question {
        output: r.output,
        fingerprint: fp,
        last_built: state.last_built.as_ref(),
        forced,
        wheelhouse: cx.wheelhouse.dir(),
    };
    let decision = decide(
        &question,
        || tree_is_current(&state, r.steps.len(), fp, &cx.layout.out_dir(&r.name)),
        || cx.wheelhouse.cached(&fp.hash, &cx.target.name),
        || remote_cached(cx, r, res),
    )?;
    if let Some(said) = decision.finished() {
        cx.reporter.finished(&r.name, &said);
    }
    let why = match decision {
        CacheDecision::Local(wheels) => return Ok(Outcome::Cached { wheels }),
        CacheDecision::Tree => return Ok(Outcome::Cached { wheels: Vec::new() }),
        CacheDecision::Remote { url, wheels } => {
            return Ok(Outcome::CachedRemote { wheels, from: url })
        }
        CacheDecision::Build(why) => why,
    };
    if opts.verbose {
        cx.reporter
            .message(&format!("{}: rebuilding: {}", r.name, why.join("; ")));
    }
    let start = Instant::now();
    let venv = ensure_venv(cx, r, opts, venv)?;
    let (jobs_ok, retried) = run_steps(cx, r, p, &res.fingerprint.hash, opts, &mut state)?;
    // The steps of this run (a resumed build's earlier steps are not counted twice).
    let compiler_cache = CompilerStats::total(state.timings.iter().map(|t| t.compiler_cache));
    let (wheels, verify_state) = match r.output {
        OutputKind::Tree => (Vec::new(), None),
        _ => {
            let wheels = collect_wheels(cx, r)?;
            let state = verify_wheels(cx, r, venv, &wheels)?;
            (wheels, Some(state))
        }
    };
    let mut names = Vec::new();
    for w in &wheels {
        let stored = cx.wheelhouse.add(
            w,
            &EntryMeta {
                fingerprint: res.fingerprint.hash.clone(),
                commit: res.commit.clone(),
                target: cx.target.name.clone(),
                recipe: Some(r.name.clone()),
                verify: verify_state.clone(),
            },
        )?;
        names.push(stored.entry.file);
    }
    state.steps_done = r.steps.len();
    state.fingerprint = Some(res.fingerprint.hash.clone());
    state.last_built = Some(res.fingerprint.clone());
    if retried {
        state.jobs_ok = Some(jobs_ok);
    }
    super::timings::learn(&mut state, cx.facts, r);
    state.save(&state_path)?;
    let took = start.elapsed();
    cx.reporter
        .finished(&r.name, &format!("built in {}", format_duration(took)));
    let verify_pending = match verify_state {
        Some(VerifyState::Pending { reason }) => Some(reason),
        _ => None,
    };
    Ok(Outcome::Built {
        wheels: names,
        took,
        compiler_cache,
        verify_pending,
    })
}
