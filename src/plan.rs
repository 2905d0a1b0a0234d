//! The plan: for each selected recipe, in build order, what would run and why — source and
//! commit, patches, jobs with the reason, the filled steps and the exact environment. `plan`
//! prints it; `build` executes it. Pure data: no network, no work-dir writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::build_reqs::{self, BuildReq};
use crate::compiler_cache::Setup as CompilerSetup;
use crate::cross::{Cross, Platforms};
use crate::env::{self, BuildEnv, EnvContext, RenderedStep};
use crate::host::HostFacts;
use crate::jobs::{self, JobsDecision, JobsOverride};
use crate::layout::Layout;
use crate::net::UrlPolicy;
use crate::recipe::template::Vars;
use crate::recipe::{OutputKind, Recipe, RecipeSet, Source, Submodules};
use crate::source::git::MirrorCache;
use crate::source::redirect::{self, Redirects};
use crate::source::resource::{expected_sha256, exposed_path};
use crate::state::RecipeState;
use crate::target::Target;

#[derive(Debug, Clone, Serialize)]
pub struct SourcePlan {
    /// `git` or `path`.
    pub kind: &'static str,
    /// The URL as the recipe writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The URL actually fetched, when a `[mirrors]` entry rewrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub submodules: bool,
    /// The submodules selected by path (empty: all of them, or none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub submodule_paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourcePlan {
    pub name: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// The recipe's digest, or the one recorded on first use; None when a first-use resource
    /// was never fetched.
    pub sha256: Option<String>,
    /// True for `trust = "first-use"`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub first_use: bool,
    pub path: PathBuf,
}

/// A patch as `plan` shows it: the file and its header line (what it does).
#[derive(Debug, Clone, Serialize)]
pub struct PatchPlan {
    pub file: String,
    pub header: Option<String>,
}

/// An `[[edit]]` as `plan` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EditPlan {
    pub file: String,
    pub count: u32,
    pub why: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipePlan {
    pub name: String,
    pub version: String,
    pub file: String,
    pub output: OutputKind,
    pub commit: Option<String>,
    pub source: SourcePlan,
    pub patches: Vec<PatchPlan>,
    pub edits: Vec<EditPlan>,
    pub resources: Vec<ResourcePlan>,
    pub depends: Vec<String>,
    pub python_requires: Vec<String>,
    /// The build requirements (`[build-system] requires` merged with `[depends] python`) and
    /// where each comes from.
    pub build_requires: Vec<BuildReq>,
    /// True while the source is not prepared: its `pyproject.toml` is read after prepare, so
    /// `build_requires` holds only the recipe's.
    pub build_requires_pending: bool,
    pub jobs: JobsDecision,
    #[serde(skip)]
    pub build_env: BuildEnv,
    /// Values of the recipe's `${{ placeholders }}` (for edits at prepare time).
    #[serde(skip)]
    pub vars: Vars,
    /// Filled in by the caller when rendering JSON (redacted unless asked).
    pub env: serde_json::Value,
    pub steps: Vec<RenderedStep>,
    pub verify: bool,
    /// What `build` would do with it: cached, or why it builds (filled by the caller, which
    /// knows the wheelhouse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    pub source_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub set: String,
    pub target: Target,
    /// Proxy and offline settings in force, credentials masked.
    pub network: Vec<String>,
    /// Build and host platforms when the plan is a cross build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross: Option<Platforms>,
    /// Which repositories build steps' `git` reaches in the mirror cache.
    pub git_redirects: Redirects,
    pub compiler_cache: CompilerSetup,
    pub recipes: Vec<RecipePlan>,
}

/// Inputs that do not depend on the recipe.
pub struct PlanInputs<'a> {
    pub set: &'a RecipeSet,
    pub target: &'a Target,
    pub facts: &'a HostFacts,
    pub layout: &'a Layout,
    pub jobs: &'a JobsOverride,
    pub policy: &'a dyn UrlPolicy,
    pub proxy_env: Vec<(String, String)>,
    /// The cache root: resources, and the git mirrors that build steps are redirected to.
    pub resource_cache: &'a Path,
    pub caller: &'a dyn Fn(&str) -> Option<String>,
    /// Proxy and offline settings in force, credentials masked.
    pub network: Vec<String>,
    /// Set when building for another CPU.
    pub cross: Option<&'a Cross>,
    /// The compiler cache and distribution engines build steps go through.
    pub compiler: &'a CompilerSetup,
}

fn rewritten(policy: &dyn UrlPolicy, url: &str) -> Option<String> {
    let m = policy.rewrite(url);
    (m != url).then_some(m)
}

fn source_plan(r: &Recipe, policy: &dyn UrlPolicy) -> SourcePlan {
    match &r.source {
        Source::Git {
            url,
            tag,
            branch,
            commit,
            submodules,
        } => SourcePlan {
            kind: "git",
            url: Some(url.clone()),
            mirror: rewritten(policy, url),
            tag: tag.clone(),
            branch: branch.clone(),
            commit: Some(commit.clone()),
            submodules: *submodules != Submodules::None,
            submodule_paths: match submodules {
                Submodules::Only(paths) => paths.clone(),
                _ => Vec::new(),
            },
            path: None,
        },
        Source::Path { dir } => SourcePlan {
            kind: "path",
            url: None,
            mirror: None,
            tag: None,
            branch: None,
            commit: None,
            submodules: false,
            submodule_paths: Vec::new(),
            path: Some(dir.clone()),
        },
    }
}

/// The recipe's build requirements as `build` will install them: from the prepared tree's
/// `pyproject.toml` (or a local source's own), else only the recipe's, marked pending.
fn build_requires(inp: &PlanInputs, r: &Recipe) -> Result<(Vec<BuildReq>, bool)> {
    // A prepared source is only consumed by other recipes: nothing is installed for it.
    if r.output == OutputKind::Source {
        return Ok((Vec::new(), false));
    }
    let prepared = inp.layout.source_dir(&r.name);
    let dir = match &r.source {
        _ if prepared.is_dir() => Some(prepared),
        Source::Path { dir } => Some(dir.clone()),
        Source::Git { .. } => None,
    };
    match dir {
        Some(d) => {
            let project = build_reqs::project_requires(r, &d)?;
            Ok((
                build_reqs::resolve(project.as_deref(), &r.python_requires, inp.set)?,
                false,
            ))
        }
        None => Ok((
            build_reqs::resolve(Some(&[]), &r.python_requires, inp.set)?,
            r.pyproject_requires,
        )),
    }
}

pub fn plan_recipe(inp: &PlanInputs, r: &Recipe, git: &Redirects) -> Result<RecipePlan> {
    let state = RecipeState::load(&inp.layout.state_file(&r.name));
    let learned = jobs::learn::choose(
        r.jobs.mem_per_job_gib,
        &state.learned,
        &jobs::learn::host_key(inp.facts),
    );
    let mut overrides = inp.jobs.clone();
    // A learned figure comes from a build that finished, after its OOM retry if it had one:
    // it supersedes the jobs remembered then.
    overrides.remembered = state.jobs_ok.filter(|_| learned.is_none());
    let (slots, hosts) = inp.compiler.remote_slots();
    let decision = jobs::distribute(
        jobs::learn::decide_with(&r.jobs, inp.facts, &overrides, learned.as_ref()),
        &r.jobs,
        inp.facts,
        slots,
        hosts,
    );
    let resources: BTreeMap<String, PathBuf> = r
        .resources
        .iter()
        .map(|res| Ok((res.name.clone(), exposed_path(res, inp.resource_cache)?)))
        .collect::<Result<_>>()?;
    let cx = EnvContext {
        recipe: r,
        set: inp.set,
        target: inp.target,
        jobs: &decision,
        layout: inp.layout,
        cross: inp.cross,
        resources: resources.clone(),
        proxy_env: inp.proxy_env.clone(),
        git_config: git.git_config(),
        caller: inp.caller,
        compiler: inp.compiler,
    };
    let build_env = env::compose(&cx)?;
    let vars = env::template_vars(&cx);
    let steps = env::render_steps(&cx)?;
    let (build_requires, pending) = build_requires(inp, r)?;
    Ok(RecipePlan {
        name: r.name.clone(),
        version: r.version.to_string(),
        file: r.file.clone(),
        output: r.output,
        commit: r.source.commit().map(str::to_string),
        source: source_plan(r, inp.policy),
        patches: r
            .patches
            .iter()
            .map(|p| PatchPlan {
                file: p.file.clone(),
                header: p.header(),
            })
            .collect(),
        edits: r
            .edits
            .iter()
            .map(|e| EditPlan {
                file: e.file.clone(),
                count: e.count,
                why: e.why.clone(),
            })
            .collect(),
        resources: r
            .resources
            .iter()
            .map(|res| -> Result<ResourcePlan> {
                Ok(ResourcePlan {
                    name: res.name.clone(),
                    url: res.url.clone(),
                    mirror: rewritten(inp.policy, &res.url),
                    sha256: expected_sha256(res, inp.resource_cache)?,
                    first_use: res.sha256.is_none(),
                    path: resources[&res.name].clone(),
                })
            })
            .collect::<Result<_>>()?,
        depends: r.depends.clone(),
        python_requires: r.python_requires.clone(),
        build_requires,
        build_requires_pending: pending,
        jobs: decision,
        env: build_env.to_json(false),
        build_env,
        vars,
        steps,
        verify: r.verify.is_some(),
        cache: None,
        network: r.network.clone(),
        source_dir: inp.layout.source_dir(&r.name),
    })
}

/// True when the recipe builds CUDA code for the target's archs: a template of it uses them
/// (`${{ cuda_arch_list }}`, `${{ cuda_arch_nodot }}`, …), or its verify snippet needs a GPU.
pub fn compiles_cuda(r: &Recipe) -> bool {
    let steps = r.steps.iter().flat_map(|s| {
        let kind: Vec<&crate::recipe::template::Template> = match &s.kind {
            crate::recipe::StepKind::Script(t) => vec![t],
            crate::recipe::StepKind::Argv(a) => a.iter().collect(),
        };
        kind.into_iter().chain(s.cwd.as_ref())
    });
    let uses_arch = r
        .env
        .iter()
        .map(|(_, t)| t)
        .chain(r.edits.iter().map(|e| &e.replace))
        .chain(steps)
        .any(|t| {
            t.vars()
                .any(|(name, _)| name.starts_with("cuda_arch") || name.starts_with("each_arch"))
        });
    uses_arch || r.verify.as_ref().is_some_and(|v| v.gpu)
}

/// `--target host` takes its CUDA archs from the GPU it sees: without one (and without
/// `--cuda-arch`) the list is empty, and a CUDA build would get `TORCH_CUDA_ARCH_LIST=''`,
/// which builds for no GPU at all (or for whatever the build system guesses).
fn check_cuda_archs(target: &Target, recipes: &[&Recipe]) -> Result<()> {
    if target.name != crate::target::HOST_TARGET || !target.cuda_arch_list.is_empty() {
        return Ok(());
    }
    let cuda: Vec<&str> = recipes
        .iter()
        .filter(|r| compiles_cuda(r))
        .map(|r| r.name.as_str())
        .collect();
    if cuda.is_empty() {
        return Ok(());
    }
    Err(crate::error::input_hint(
        format!(
            "target `host` has no CUDA arch: no GPU is visible on this machine and no --cuda-arch \
             was given, yet {} compile{} CUDA code for the target's archs",
            cuda.join(", "),
            if cuda.len() == 1 { "s" } else { "" }
        ),
        "name the GPU to build for, e.g. `--cuda-arch 8.7` (Jetson Orin) or `--cuda-arch 9.0` (H100)",
    ))
}

/// Plans `recipes` (already selected and in build order).
pub fn make(inp: &PlanInputs, recipes: &[&Recipe]) -> Result<Plan> {
    check_cuda_archs(inp.target, recipes)?;
    let git = redirect::for_set(inp.set, &MirrorCache::new(inp.resource_cache, inp.policy));
    Ok(Plan {
        set: inp.set.name.clone(),
        target: inp.target.clone(),
        network: inp.network.clone(),
        cross: inp.cross.map(|c| c.platforms.clone()),
        recipes: recipes
            .iter()
            .map(|r| plan_recipe(inp, r, &git))
            .collect::<Result<_>>()?,
        git_redirects: git,
        compiler_cache: inp.compiler.clone(),
    })
}

impl crate::source::phase::TreePlan for RecipePlan {
    fn source_dir(&self) -> &Path {
        &self.source_dir
    }
    fn vars(&self) -> &Vars {
        &self.vars
    }
}
