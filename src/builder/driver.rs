//! The build driver: `jetforge build [all|PKG…]`.
//!
//! Order of work, so that hours of compiling are never followed by an avoidable failure:
//! 1. plan every selected recipe (environment, steps, jobs);
//! 2. fetch every source and resource, then check every patch and edit of every recipe and
//!    prepare the trees — all before the first build step of any recipe;
//! 3. fingerprint each recipe (dependencies first) and skip those with a verified wheel, in
//!    the wheelhouse or in a remote cache (downloaded, hash and wheel checks, then kept);
//! 4. build the rest in dependency order: build venv, steps (resumable, OOM retry), wheel
//!    checks, install into the build venv, verify, wheelhouse (atomic);
//!    a cross build (see `cross`) writes its toolchain files first, runs jetforge's own tools
//!    (venv, pip) without the cross variables, installs no target wheel into the build venv and
//!    verifies under the target's emulator instead;
//! 5. check every wheel's `Requires-Dist` against the set, regenerate the index, summarise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::verify_venv::{self, VerifyVenv};
use crate::cross::emulate::EmulatedVerify;
use crate::cross::Cross;
use crate::env::{Origin, RenderedStep};
use crate::fingerprint::{self, Fingerprint};
use crate::host::HostFacts;
use crate::jobs::JobsOverride;
use crate::layout::Layout;
use crate::net::UrlPolicy;
use crate::plan::{self, PlanInputs, RecipePlan};
use crate::process::runner::{self, Program, Status, StepCommand};
use crate::recipe::{OutputKind, Recipe, RecipeSet, Source};
use crate::report::{format_duration, Reporter};
use crate::source::git::MirrorCache;
use crate::source::phase as sources;
use crate::source::prepare::Prepared;
use crate::source::resource::expected_sha256;
use crate::state::{RecipeState, RunningStep};
use crate::target::Target;
use crate::venv::{self, Installer, VenvSpec};
use crate::verify::Outcome as VerifyOutcome;
use crate::wheelhouse::check::{check_requirements, check_wheel};
use crate::wheelhouse::remote::{RemoteCaches, RemoteHit};
use crate::wheelhouse::store::{Cached, EntryMeta, Wheelhouse};
use crate::wheelhouse::wheel::WheelInfo;

/// Everything a build needs that does not change per recipe.
pub struct BuildContext<'a> {
    pub set: &'a RecipeSet,
    pub target: &'a Target,
    pub facts: &'a HostFacts,
    pub layout: &'a Layout,
    pub policy: &'a dyn UrlPolicy,
    pub proxy_env: Vec<(String, String)>,
    pub cache_dir: &'a Path,
    pub wheelhouse: &'a Wheelhouse,
    /// Remote wheel caches consulted before building (`[cache] indexes`, `--cache-from`).
    pub remote: &'a RemoteCaches<'a>,
    pub reporter: &'a dyn Reporter,
    pub caller: &'a dyn Fn(&str) -> Option<String>,
    pub network: Vec<String>,
    /// Set when building for another CPU.
    pub cross: Option<&'a Cross>,
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

/// How one recipe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Built {
        wheels: Vec<String>,
        took: Duration,
    },
    Cached {
        wheels: Vec<String>,
    },
    /// Downloaded from a remote cache (named redacted) instead of built.
    CachedRemote {
        wheels: Vec<String>,
        from: String,
    },
    Prepared,
    Failed {
        error: String,
    },
    Skipped {
        failed_dependency: String,
    },
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub rows: Vec<(String, String, Outcome)>,
}

impl Summary {
    pub fn failed(&self) -> bool {
        self.rows
            .iter()
            .any(|(_, _, o)| matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }

    /// The table printed at the end of a build.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(n, _, _)| n.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:width$}  {:12}  result\n", "recipe", "version");
        for (name, version, o) in &self.rows {
            let what = match o {
                Outcome::Built { wheels, took } => format!(
                    "built in {} ({})",
                    format_duration(*took),
                    wheels.join(", ")
                ),
                Outcome::Cached { wheels } => format!("cached ({})", wheels.join(", ")),
                Outcome::CachedRemote { wheels, from } => {
                    format!("cached (remote: {from}) ({})", wheels.join(", "))
                }
                Outcome::Prepared => "prepared source".to_string(),
                Outcome::Failed { .. } => "FAILED".to_string(),
                Outcome::Skipped { failed_dependency } => {
                    format!("skipped: dependency {failed_dependency} failed")
                }
            };
            out.push_str(&format!("{name:width$}  {version:12}  {what}\n"));
        }
        out
    }
}

/// An error that stops the whole build, with the summary so far.
#[derive(Debug)]
pub struct BuildFailed {
    pub summary: Summary,
    pub errors: Vec<String>,
}

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n{}",
            self.errors.join("\n\n"),
            self.summary.render().trim_end()
        )
    }
}

impl std::error::Error for BuildFailed {}

/// Per-recipe facts gathered before building.
struct Resolved {
    fingerprint: Fingerprint,
    commit: Option<String>,
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
                    .push((r.name.clone(), r.version.clone(), outcome));
                return Err(BuildFailed { summary, errors }.into());
            }
        }
        summary
            .rows
            .push((r.name.clone(), r.version.clone(), outcome));
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

fn make_plans(
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
    };
    Ok(plan::make(&inputs, selected)?.recipes)
}

/// Fingerprints in build order, so each sees its dependencies' keys.
fn fingerprints(
    cx: &BuildContext,
    selected: &[&Recipe],
    prepared: &BTreeMap<String, Prepared>,
) -> Result<BTreeMap<String, Resolved>> {
    let mut out: BTreeMap<String, Resolved> = BTreeMap::new();
    let cuda = cx.facts.cuda.as_ref().map(|c| c.version.as_str());
    for r in selected {
        let subs = prepared
            .get(&r.name)
            .map(|p| p.submodules.clone())
            .unwrap_or_default();
        let deps: Vec<(String, String)> = r
            .depends
            .iter()
            .map(|d| (d.clone(), out[d].fingerprint.hash.clone()))
            .collect();
        let first_use = r
            .resources
            .iter()
            .filter(|res| res.sha256.is_none())
            .map(|res| {
                let sha = expected_sha256(res, cx.cache_dir)?.unwrap_or_default();
                Ok((res.name.clone(), sha))
            })
            .collect::<Result<Vec<_>>>()?;
        let fp = fingerprint_of(r, &subs, cx.target, cuda, &deps, &first_use)?;
        let commit = r.source.commit().map(str::to_string);
        out.insert(
            r.name.clone(),
            Resolved {
                fingerprint: fp,
                commit,
            },
        );
    }
    Ok(out)
}

fn fingerprint_of(
    r: &Recipe,
    submodules: &[crate::source::git::Submodule],
    target: &Target,
    cuda: Option<&str>,
    deps: &[(String, String)],
    first_use: &[(String, String)],
) -> Result<Fingerprint> {
    let subs: Vec<(String, String)> = submodules
        .iter()
        .map(|s| (s.path.clone(), s.commit.clone()))
        .collect();
    let tree = match &r.source {
        Source::Path { dir } => Some(sources::tree_hash(dir)?),
        Source::Git { .. } => None,
    };
    Ok(fingerprint::compute(&fingerprint::Inputs {
        recipe: r,
        commit: r.source.commit(),
        submodules: &subs,
        tree_hash: tree.as_deref(),
        target,
        cuda_version: cuda,
        deps,
        first_use,
    }))
}

/// Fingerprints that can be known without fetching anything (for `plan`): a git recipe needs
/// its prepared tree's marker (which records the submodule commits); a recipe whose key, or a
/// dependency's, is unknown maps to `None`.
pub fn known_fingerprints(
    plans: &[RecipePlan],
    selected: &[&Recipe],
    target: &Target,
    facts: &HostFacts,
) -> BTreeMap<String, Option<Fingerprint>> {
    let mut out: BTreeMap<String, Option<Fingerprint>> = BTreeMap::new();
    let cuda = facts.cuda.as_ref().map(|c| c.version.as_str());
    for (r, p) in selected.iter().zip(plans) {
        let subs = match &r.source {
            Source::Git { .. } => sources::prepared_marker(r, p),
            Source::Path { .. } => Some(Vec::new()),
        };
        let deps: Option<Vec<(String, String)>> = r
            .depends
            .iter()
            .map(|d| out.get(d).cloned().flatten().map(|f| (d.clone(), f.hash)))
            .collect();
        // A first-use resource never fetched has no digest yet, so no key either.
        let first_use: Option<Vec<(String, String)>> = p
            .resources
            .iter()
            .filter(|res| res.first_use)
            .map(|res| Some((res.name.clone(), res.sha256.clone()?)))
            .collect();
        let fp = match (subs, deps, first_use) {
            (Some(subs), Some(deps), Some(first_use)) => {
                fingerprint_of(r, &subs, target, cuda, &deps, &first_use).ok()
            }
            _ => None,
        };
        out.insert(r.name.clone(), fp);
    }
    out
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
    let mut unusable = None;
    if !forced && r.output == OutputKind::Tree && tree_is_current(cx, r, &state, res) {
        cx.reporter.finished(&r.name, "cached (installed tree)");
        return Ok(Outcome::Cached { wheels: Vec::new() });
    }
    if !forced && r.output == OutputKind::Wheel {
        match cx
            .wheelhouse
            .cached(&res.fingerprint.hash, &cx.target.name)?
        {
            Cached::Hit(wheels) => {
                cx.reporter.finished(&r.name, "cached");
                return Ok(Outcome::Cached { wheels });
            }
            Cached::Unusable(why) => unusable = Some(why),
            Cached::Miss => {}
        }
        if let Some((wheels, from)) = remote_cached(cx, r, res)? {
            cx.reporter
                .finished(&r.name, &format!("cached (remote: {from})"));
            return Ok(Outcome::CachedRemote { wheels, from });
        }
    }
    let why = match (forced, unusable) {
        (true, _) => vec!["--force".to_string()],
        (false, Some(why)) => vec![why],
        (false, None) => {
            let why = fingerprint::explain(state.last_built.as_ref(), &res.fingerprint);
            if why.is_empty() {
                vec![format!(
                    "no wheel of this build is recorded in the wheelhouse `{}`",
                    cx.wheelhouse.dir().display()
                )]
            } else {
                why
            }
        }
    };
    if opts.verbose {
        cx.reporter
            .message(&format!("{}: rebuilding: {}", r.name, why.join("; ")));
    }
    let start = Instant::now();
    let venv = ensure_venv(cx, r, opts, venv)?;
    let (jobs_ok, retried) = run_steps(cx, r, p, &res.fingerprint.hash, opts, &mut state)?;
    let wheels = match r.output {
        OutputKind::Tree => Vec::new(),
        _ => collect_wheels(cx, r, venv)?,
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
    state.save(&state_path)?;
    let took = start.elapsed();
    cx.reporter
        .finished(&r.name, &format!("built in {}", format_duration(took)));
    Ok(Outcome::Built {
        wheels: names,
        took,
    })
}

/// A tree recipe's `{out}` is current when its last build finished every step with this
/// fingerprint and the tree is still there.
fn tree_is_current(cx: &BuildContext, r: &Recipe, state: &RecipeState, res: &Resolved) -> bool {
    state.last_built.as_ref().map(|f| &f.hash) == Some(&res.fingerprint.hash)
        && state.steps_done >= r.steps.len()
        && std::fs::read_dir(cx.layout.out_dir(&r.name)).is_ok_and(|mut d| d.next().is_some())
}

/// The wheels of this fingerprint from the first remote cache whose every wheel downloads with
/// the published sha256 and passes the wheel checks. A cache that fails is a warning and the
/// next one (or the build) takes over: a bad download must never stop a build.
fn remote_cached(
    cx: &BuildContext,
    r: &Recipe,
    res: &Resolved,
) -> Result<Option<(Vec<String>, String)>> {
    let warn = |m: &str| cx.reporter.message(&format!("warning: {}: {m}", r.name));
    for hit in cx.remote.lookup(&res.fingerprint.hash, &mut |m| warn(m)) {
        match fetch_remote(cx, r, res, &hit) {
            Ok(wheels) => return Ok(Some((wheels, hit.url))),
            Err(e) => warn(&format!(
                "rejected the wheel from remote cache {}, building instead:\n{}",
                hit.url,
                crate::error::render(&e)
            )),
        }
    }
    Ok(None)
}

/// Downloads and checks every wheel of `hit` before any goes into the wheelhouse.
fn fetch_remote(
    cx: &BuildContext,
    r: &Recipe,
    res: &Resolved,
    hit: &RemoteHit,
) -> Result<Vec<String>> {
    cx.reporter
        .phase(&r.name, &format!("download from {}", hit.url));
    std::fs::create_dir_all(&cx.layout.root)
        .with_context(|| format!("failed to create `{}`", cx.layout.root.display()))?;
    let tmp = tempfile::tempdir_in(&cx.layout.root).with_context(|| {
        format!(
            "failed to create a temp dir in `{}`",
            cx.layout.root.display()
        )
    })?;
    let version: pep440_rs::Version = r.version.parse().map_err(|e| anyhow!("{e}"))?;
    let mut wheels = Vec::new();
    for e in &hit.entries {
        let path = cx.remote.download(hit, e, tmp.path())?;
        let info = WheelInfo::read(&path)?;
        check_wheel(&info, &version, cx.target)
            .map_err(|errs| anyhow!("`{}` failed its checks:\n{errs}", e.file))?;
        wheels.push(path);
    }
    let meta = EntryMeta {
        fingerprint: res.fingerprint.hash.clone(),
        commit: res.commit.clone(),
        target: cx.target.name.clone(),
        recipe: Some(r.name.clone()),
    };
    wheels
        .iter()
        .map(|w| Ok(cx.wheelhouse.add(w, &meta)?.entry.file))
        .collect()
}

/// Creates the build venv once per build and installs this recipe's dependency wheels
/// (exact files, no index) and build requirements.
fn ensure_venv<'v>(
    cx: &BuildContext,
    r: &Recipe,
    opts: &BuildOptions,
    venv: &'v mut Option<VenvSpec>,
) -> Result<&'v VenvSpec> {
    cx.reporter.phase(&r.name, "venv");
    if venv.is_none() {
        let base = venv::find_python(&cx.target.python_version, opts.python.as_deref())?;
        let spec = VenvSpec {
            dir: cx.layout.venv_dir(),
            base_python: base,
            system_site_packages: opts.system_site_packages,
            installer: Installer::detect(cx.policy.offline()),
        };
        let argv = spec.create_argv();
        if !argv.is_empty() {
            run_tool(cx, r, "create the build venv", &argv)?;
            if let Some(pth) = spec.inherit_parent_site()? {
                cx.reporter.message(&format!(
                    "{}: the build venv also sees the packages of `{}` ({})",
                    r.name,
                    spec.base_python.display(),
                    pth.display()
                ));
            }
        }
        *venv = Some(spec);
    }
    let spec = venv.as_ref().expect("set above");
    // A cross build's dependency wheels are for the target: the build venv cannot load them.
    let wheels = match cx.cross {
        None => dependency_wheels(cx, r)?,
        Some(_) => Vec::new(),
    };
    if let Some(argv) = spec.install_wheels_argv(&wheels) {
        run_tool(
            cx,
            r,
            "install dependency wheels into the build venv",
            &argv,
        )?;
    }
    if let Some(argv) = spec.install_requirements_argv(&r.python_requires, cx.policy.offline()) {
        if let Err(e) = run_tool(
            cx,
            r,
            "install build requirements into the build venv",
            &argv,
        ) {
            return Err(requirements_failed(e, r, cx.policy.offline()));
        }
    }
    Ok(spec)
}

/// Names the build requirement pip could not install (from pip's own words when it said,
/// else the whole list); the error underneath keeps pip's last lines. The hint about offline
/// builds only when offline: online the cause is elsewhere (a typo, a version that does not
/// exist, an unreachable index).
fn requirements_failed(e: anyhow::Error, r: &Recipe, offline: bool) -> anyhow::Error {
    const PIP_SAYS: &[&str] = &[
        "No matching distribution found for ",
        "Could not find a version that satisfies the requirement ",
    ];
    let text = format!("{e:#}");
    let named = text.lines().find_map(|l| {
        PIP_SAYS.iter().find_map(|m| {
            let rest = &l[l.find(m)? + m.len()..];
            rest.split_whitespace().next().map(str::to_string)
        })
    });
    let what = match named {
        Some(req) => format!(
            "{}: build requirement `{req}` could not be installed",
            r.name
        ),
        None => format!(
            "{}: the build requirements could not be installed ({})",
            r.name,
            r.python_requires.join(", ")
        ),
    };
    if offline {
        e.context(format!(
            "{what}: with --offline, build requirements must already be installed (see \
             --system-site-packages)"
        ))
    } else {
        e.context(what)
    }
}

/// Wheel files of every recipe `r` depends on or comes after, directly or not, that the
/// wheelhouse has.
fn dependency_wheels(cx: &BuildContext, r: &Recipe) -> Result<Vec<PathBuf>> {
    let mut want: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<&str> = r.ordering_deps().map(String::as_str).collect();
    while let Some(d) = stack.pop() {
        if want.insert(d) {
            if let Some(dep) = cx.set.get(d) {
                stack.extend(dep.ordering_deps().map(String::as_str));
            }
        }
    }
    let entries = cx.wheelhouse.entries()?;
    let mut out = Vec::new();
    for d in want {
        let Some(dep) = cx.set.get(d) else { continue };
        if dep.output != OutputKind::Wheel {
            continue;
        }
        let declared = dep.distributions();
        out.extend(
            entries
                .iter()
                .filter(|e| e.target == cx.target.name && e.is_of(&dep.name, &declared))
                .map(|e| cx.wheelhouse.dir().join(&e.file)),
        );
    }
    Ok(out)
}

/// Runs a jetforge-internal command (venv creation, pip) with the recipe's environment.
fn run_tool(cx: &BuildContext, r: &Recipe, what: &str, argv: &[String]) -> Result<()> {
    let plan = make_plans(cx, &[r], &JobsOverride::default())?.remove(0);
    let cmd = StepCommand {
        name: what.to_string(),
        program: Program::Argv(argv.to_vec()),
        cwd: crate::paths::current_dir()?,
        env: plan
            .build_env
            .without(Origin::Cross)
            .pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        log: cx.layout.log_dir(&r.name).join("venv.log"),
    };
    let out = runner::run(&cmd, &mut |l| cx.reporter.line(&r.name, l))?;
    if out.success() {
        return Ok(());
    }
    Err(anyhow!(
        "{}: failed to {what} ({})\n  command: {}\n  log: {}\n{}",
        r.name,
        out.status,
        cmd.display(),
        cmd.log.display(),
        indent_tail(&out.tail)
    ))
}

fn indent_tail(tail: &[String]) -> String {
    tail.iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the recipe's steps from where the last run stopped. Returns the jobs that worked and
/// whether an OOM retry happened.
fn run_steps(
    cx: &BuildContext,
    r: &Recipe,
    p: &RecipePlan,
    fp: &str,
    opts: &BuildOptions,
    state: &mut RecipeState,
) -> Result<(u32, bool)> {
    let state_path = cx.layout.state_file(&r.name);
    let mut start = state.resume_at(fp);
    if start >= r.steps.len() {
        // Every step finished before, yet we are building (--force, or its wheel is gone):
        // start over rather than resume past the end.
        start = 0;
    }
    if start == 0 {
        clear_wheels(&cx.layout.out_dir(&r.name))?;
    } else if start < r.steps.len() {
        cx.reporter.message(&format!(
            "{}: resuming at step {}/{} (earlier steps finished; compiled objects are kept)",
            r.name,
            start + 1,
            r.steps.len()
        ));
    }
    state.fingerprint = Some(fp.to_string());
    state.steps_done = start;
    state.save(&state_path)?;
    let mut plan = p.clone();
    let mut retried = false;
    let n = r.steps.len();
    let mut i = start;
    while i < n {
        let step = &plan.steps[i];
        cx.reporter
            .phase(&r.name, &format!("step {}/{n}: {}", i + 1, step.name));
        let cmd = step_command(cx, r, &plan, step, i);
        let out = runner::run_observed(&cmd, &mut |l| cx.reporter.line(&r.name, l), &mut |pid| {
            state.running = RunningStep::of(&step.name, pid);
            state.save(&state_path)
        })?;
        state.running = None;
        if out.success() {
            i += 1;
            state.steps_done = i;
            state.save(&state_path)?;
            continue;
        }
        state.save(&state_path)?;
        if crate::process::interrupt::interrupted() {
            return Err(anyhow!(
                "{}: step {} `{}` was interrupted",
                r.name,
                i + 1,
                step.name
            ));
        }
        let jobs = plan.jobs.jobs;
        if out.oom && jobs > 1 {
            let fewer = (jobs / 2).max(1);
            cx.reporter.message(&format!(
                "{}: step `{}` was killed ({}), most likely out of memory, with MAX_JOBS={}; \
                 retrying with {fewer} jobs, keeping what was compiled",
                r.name, step.name, out.status, plan.jobs.max_jobs
            ));
            let mut ov = opts.jobs.clone();
            ov.cli = Some(fewer);
            ov.env = None;
            plan = make_plans(cx, &[r], &ov)?.remove(0);
            retried = true;
            continue;
        }
        return Err(step_failure(
            r,
            &cmd,
            &plan,
            i,
            n,
            &out.status,
            &out.tail,
            out.oom,
        ));
    }
    Ok((plan.jobs.jobs, retried))
}

fn step_command(
    cx: &BuildContext,
    r: &Recipe,
    plan: &RecipePlan,
    step: &RenderedStep,
    i: usize,
) -> StepCommand {
    let program = match (&step.script, &step.argv) {
        (Some(s), _) => Program::Script(s.clone()),
        (None, Some(a)) => Program::Argv(a.clone()),
        (None, None) => Program::Argv(vec!["true".into()]),
    };
    StepCommand {
        name: step.name.clone(),
        program,
        cwd: step.cwd.clone(),
        env: plan
            .build_env
            .pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        log: cx.layout.log_dir(&r.name).join(format!(
            "{:02}-{}.log",
            i + 1,
            runner::slug(&step.name)
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn step_failure(
    r: &Recipe,
    cmd: &StepCommand,
    plan: &RecipePlan,
    i: usize,
    n: usize,
    status: &Status,
    tail: &[String],
    oom: bool,
) -> anyhow::Error {
    // The environment the step ran with: after an OOM retry, its reduced MAX_JOBS.
    let replay = runner::write_replay(cmd, &plan.build_env.to_shell(false))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(could not write a replay script: {e})"));
    let hint = if oom {
        "it was killed at MAX_JOBS=1: add swap (an 8 GB Orin needs ~16 GB) or free memory, then run `jetforge build` again"
    } else {
        "fix the cause, then run `jetforge build` again: it resumes at this step"
    };
    crate::error::failure_hint(
        format!(
            "{}: build step {}/{n} `{}` failed ({status})\n  command: {}\n  cwd: {}\n  log: {}\n  replay: {replay}\n  last lines:\n{}",
            r.name,
            i + 1,
            cmd.name,
            crate::redact::redact(&cmd.display()),
            cmd.cwd.display(),
            cmd.log.display(),
            crate::redact::redact(&indent_tail(tail))
        ),
        hint,
    )
}

/// Removes wheels left in the output dir by an earlier build, so only this build's count.
fn clear_wheels(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    for e in crate::paths::dir_entries(out)? {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "whl") {
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
        }
    }
    Ok(())
}

/// Finds the wheels the steps wrote, checks them and runs the verify snippet with them
/// installed. A wheel failing any of that goes to `broken/` and fails the recipe.
fn collect_wheels(cx: &BuildContext, r: &Recipe, venv: &VenvSpec) -> Result<Vec<PathBuf>> {
    cx.reporter.phase(&r.name, "verify");
    let out = cx.layout.out_dir(&r.name);
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(&out)
        .with_context(|| format!("failed to list `{}`", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    wheels.sort();
    if wheels.is_empty() {
        return Err(crate::error::failure_hint(
            format!(
                "{}: the build steps finished but wrote no wheel into `{}`",
                r.name,
                out.display()
            ),
            "the steps must write the wheel to {out} (e.g. `pip wheel -w {out} .`)",
        ));
    }
    let version: pep440_rs::Version = r.version.parse().map_err(|e| anyhow!("{e}"))?;
    for w in &wheels {
        let info = WheelInfo::read(w)?;
        if let Err(errs) = check_wheel(&info, &version, cx.target) {
            cx.wheelhouse.add_broken(w, &errs.to_string())?;
            return Err(crate::error::failure_hint(
                format!(
                    "{}: `{}` failed its checks (moved to {}):\n{errs}",
                    r.name,
                    info.file(),
                    cx.wheelhouse.broken_dir().display()
                ),
                "see the hint above; the wheel is not in the wheelhouse",
            ));
        }
    }
    same_distribution_elsewhere(cx, r, &wheels)?;
    if let Err(e) = verify(cx, r, venv, &wheels) {
        for w in &wheels {
            cx.wheelhouse.add_broken(w, &format!("{e:#}"))?;
        }
        return Err(e);
    }
    Ok(wheels)
}

/// Refuses a wheel whose distribution (from its METADATA) another recipe of the set already
/// produces for this target: storing it would replace that recipe's wheel, which would then
/// rebuild and replace this one, forever.
fn same_distribution_elsewhere(cx: &BuildContext, r: &Recipe, wheels: &[PathBuf]) -> Result<()> {
    let entries = cx.wheelhouse.entries()?;
    for w in wheels {
        let info = WheelInfo::read(w)?;
        let package = info.package();
        let other = entries.iter().find_map(|e| {
            let owner = e.recipe.as_deref()?;
            (e.package == package
                && e.target == cx.target.name
                && owner != r.name
                && cx.set.get(owner).is_some())
            .then_some(owner)
        });
        if let Some(other) = other {
            return Err(crate::error::failure_hint(
                format!(
                    "{}: its wheel `{}` is distribution `{package}`, which recipe `{other}` of set `{}` also produces",
                    r.name,
                    info.file(),
                    cx.set.name
                ),
                format!(
                    "two recipes cannot produce the same distribution: change the package one of them builds, or remove `{}` or `{other}` from the set",
                    r.name
                ),
            ));
        }
    }
    Ok(())
}

/// Runs the recipe's `[verify]` snippet as a user would run the wheel: in the verify venv
/// holding the new wheels and the set's wheels they need, with the caller's environment only
/// (see `verify_venv`); in a cross build with the target's python under its emulator. The
/// whole output goes to `logs/<recipe>/verify.log`, and is shown on failure.
fn verify(cx: &BuildContext, r: &Recipe, venv: &VenvSpec, wheels: &[PathBuf]) -> Result<()> {
    let Some(v) = &r.verify else { return Ok(()) };
    let log_path = cx.layout.log_dir(&r.name).join("verify.log");
    let mut log = String::new();
    let verify_venv = VerifyVenv::new(
        cx.layout.verify_venv_dir(),
        venv.base_python.clone(),
        venv.system_site_packages,
    );
    let caller: Vec<(String, String)> = std::env::vars().collect();
    let user = verify_venv::user_env(caller, cx.set, cx.layout, &verify_venv.spec.dir);
    let env = verify_venv::with_package(&user, &r.name, &r.version);
    let outcome = match cx.cross {
        Some(_) if v.gpu => VerifyOutcome::Skipped {
            reason: "it needs the target's GPU, which a cross build does not have".into(),
        },
        Some(c) => {
            let timeout = Duration::from_secs(v.timeout_secs);
            match verify_emulated(cx, r, c, venv, wheels, &v.python, env, timeout)? {
                Some(out) => crate::verify::outcome_of(&out, timeout),
                None => return Ok(()),
            }
        }
        None => {
            let mut all = dependency_wheels(cx, r)?;
            all.extend(wheels.iter().cloned());
            let ran = verify_venv.sync(&all, &env, &mut log).and_then(|()| {
                crate::verify::run_snippet(
                    &verify_venv.python(),
                    v,
                    &env,
                    cx.facts.gpu_visible || cx.facts.gpu_arch.is_some(),
                    &mut log,
                )
            });
            verify_venv::write_log(&log_path, &log)?;
            ran.with_context(|| {
                format!(
                    "{}: verify could not run (log: {})",
                    r.name,
                    log_path.display()
                )
            })?
        }
    };
    let shown = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        format!(
            "  log: {}\n{}",
            log_path.display(),
            verify_venv::tail(&text)
        )
    };
    match outcome {
        VerifyOutcome::Pass { said, .. } => {
            if let Some(line) = said {
                cx.reporter.message(&format!("{}: verify: {line}", r.name));
            }
            Ok(())
        }
        VerifyOutcome::Skipped { reason } => {
            cx.reporter
                .message(&format!("{}: verify skipped: {reason}", r.name));
            Ok(())
        }
        VerifyOutcome::Fail { status, .. } => Err(crate::error::failure_hint(
            format!("{}: verify failed ({status}):\n{}", r.name, shown()),
            format!(
                "the wheel was moved to broken/; the snippet ran as a user runs the wheel, with none of the recipes' [env]: investigate with `{}`, which still has it installed",
                verify_venv.python().display()
            ),
        )),
        VerifyOutcome::Timeout { secs, .. } => Err(crate::error::failure_hint(
            format!(
                "{}: verify did not finish within {secs}s and was stopped\n{}",
                r.name,
                shown()
            ),
            "raise [verify] timeout_secs if the check is slow, or look for a hang",
        )),
    }
}

/// The emulated run of a cross build's verify snippet, with the recipe's dependency wheels
/// beside the new ones; `None` (and a message) when the target names no emulator.
#[allow(clippy::too_many_arguments)]
fn verify_emulated(
    cx: &BuildContext,
    r: &Recipe,
    cross: &Cross,
    venv: &VenvSpec,
    wheels: &[PathBuf],
    snippet: &str,
    env: Vec<(String, String)>,
    timeout: Duration,
) -> Result<Option<runner::TimedOutput>> {
    if cross.emulator_argv().is_empty() {
        cx.reporter.message(&format!(
            "{}: verify skipped: target `{}` names no emulator to run {} code",
            r.name, cx.target.name, cross.platforms.host
        ));
        return Ok(None);
    }
    let mut all = dependency_wheels(cx, r)?;
    all.extend(wheels.iter().cloned());
    let out = crate::cross::run_verify_emulated(&EmulatedVerify {
        cross,
        installer_python: &venv.python(),
        wheels: &all,
        snippet,
        env,
        site_dir: &cx.layout.verify_dir(&r.name),
        timeout,
    })?;
    let log = cx.layout.log_dir(&r.name).join("verify.log");
    crate::private::write_file(
        &log,
        crate::redact::redact(&out.output).as_bytes(),
        crate::private::FILE,
    )?;
    let emulator = cross.emulator_argv().remove(0);
    for line in out.output.lines() {
        cx.reporter
            .message(&format!("{}: verify ({emulator}): {line}", r.name));
    }
    cx.reporter.message(&format!(
        "{}: verify ran under {emulator} in {:.1}s",
        r.name,
        out.duration.as_secs_f64()
    ));
    Ok(Some(out))
}

/// Every wheel of this target in the wheelhouse must have its `Requires-Dist` on set packages
/// satisfied by the versions the set builds.
fn check_set_pins(cx: &BuildContext) -> Result<()> {
    let entries = cx.wheelhouse.entries()?;
    let mut versions = BTreeMap::new();
    for r in &cx.set.recipes {
        let v: pep440_rs::Version = r.version.parse().map_err(|e| anyhow!("{e}"))?;
        let declared = r.distributions();
        // The distributions its wheels say they are, whatever the recipe is called.
        let built = entries
            .iter()
            .filter(|e| e.target == cx.target.name && e.is_of(&r.name, &declared))
            .map(|e| e.package.clone());
        for n in declared.iter().cloned().chain(built) {
            versions.insert(n, v.clone());
        }
    }
    let infos: Vec<WheelInfo> = entries
        .iter()
        .filter(|e| e.target == cx.target.name)
        .map(|e| WheelInfo::read(&cx.wheelhouse.dir().join(&e.file)))
        .collect::<Result<_, _>>()?;
    check_requirements(&infos, &versions, cx.target).map_err(|errs| {
        crate::error::failure_hint(
            format!("version pins across the set are not satisfied:\n{errs}"),
            "change the recipe versions so every pin holds, or patch the pin (and say why)",
        )
    })
}
