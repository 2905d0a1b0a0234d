//! One module per subcommand: glue between parsed flags and the engines. `Session` resolves
//! what the commands need from the global flags, once: the recipe sets and the chosen one, the
//! target, host facts, the work-dir `Layout`, the config, the wheelhouse (`--wheelhouse`, config,
//! default) and the one network policy (proxy, mirrors, offline, fetch options). Commands take
//! paths and settings from it, never from the flags again.

mod build;
mod check;
mod clean;
pub mod doctor;
mod env;
mod export;
mod install;
mod list;
mod new;
mod plan;
mod progress;
mod publish;
mod report;
mod schema;
mod shell;
mod sources;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::compiler_cache::Setup as CompilerSetup;
use crate::config::Config;
use crate::cross::{self, Cross, Mode};
use crate::host::HostFacts;
use crate::jobs::JobsOverride;
use crate::layout::Layout;
use crate::net::{FetchOptions, NetPolicy, ProxySettings};
use crate::recipe::tree::FileTree;
use crate::recipe::{load_sets, RecipeSet, RecipeSets};
use crate::target::{self, Target};

pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    crate::redact::register_from_env();
    if let Some(p) = &g.proxy {
        crate::redact::register(p);
    }
    if g.host_facts.is_some() && !matches!(cli.command, Command::Plan(_) | Command::Env(_)) {
        return Err(crate::error::input_hint(
            "--host-facts describes another machine and is only for `plan` and `env`",
            "run the command on the machine itself, without --host-facts",
        ));
    }
    match &cli.command {
        Command::List => list::run(g),
        Command::Check(a) => check::run(g, a),
        Command::Plan(a) => plan::run(g, a),
        Command::Env(a) => env::run(g, a),
        Command::Shell(a) => shell::run(g, a),
        Command::Export(a) => export::run(g, a),
        Command::Fetch(a) => sources::fetch(g, a),
        Command::Prepare(a) => sources::prepare(g, a),
        Command::Build(a) => build::run(g, a),
        Command::Install(a) => install::run(g, a),
        Command::Publish(a) => publish::run(g, a),
        Command::Doctor(a) => doctor::run(g, a),
        Command::Verify(a) => verify::run(g, a),
        Command::Clean(a) => clean::run(g, a),
        Command::Schema(a) => schema::run(a),
        Command::New(a) => new::run(g, a),
        Command::Report(a) => report::run(g, a),
        Command::CudaProbe => doctor::cuda_probe(),
    }
}

/// Recipe and patch trees chosen by `--recipes` / `--patches`.
pub fn trees(g: &GlobalArgs) -> Result<(FileTree, FileTree, String)> {
    let Some(dir) = &g.recipes else {
        let patches = match &g.patches {
            Some(p) => FileTree::read_dir(p)?,
            None => FileTree::embedded_patches(),
        };
        return Ok((FileTree::embedded_recipes(), patches, "recipes".into()));
    };
    if !dir.is_dir() {
        return Err(crate::error::input_hint(
            format!("recipe directory `{}` does not exist", dir.display()),
            "--recipes takes a directory of recipe sets or of *.toml recipes",
        ));
    }
    let patches = match &g.patches {
        Some(p) => FileTree::read_dir(p)?,
        None => FileTree::read_dir(&default_patch_dir(dir))?,
    };
    let root_name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "recipes".into());
    Ok((FileTree::read_dir(dir)?, patches, root_name))
}

/// `DIR/patches` if it exists, else `patches/` beside DIR (the repository layout).
fn default_patch_dir(recipes: &Path) -> PathBuf {
    let inside = recipes.join("patches");
    if inside.is_dir() {
        inside
    } else {
        recipes.join("..").join("patches")
    }
}

pub fn load_all_sets(g: &GlobalArgs) -> Result<(RecipeSets, FileTree)> {
    let (recipes, patches, root_name) = trees(g)?;
    let sets = load_sets(&recipes, &patches, &root_name)?;
    Ok((sets, recipes))
}

/// Reads the process environment; one place, so tests of the engines never do.
pub fn caller_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// The root host facts are read below: `/`, or `--host-root`/`JETFORGE_HOST_ROOT`, which must
/// look like a machine's root: without `proc/meminfo` every fact would read as 1 CPU and no RAM.
pub fn host_root(g: &GlobalArgs) -> Result<PathBuf> {
    let Some(root) = &g.host_root else {
        return Ok(PathBuf::from("/"));
    };
    if !root.join("proc/meminfo").is_file() {
        return Err(crate::error::input_hint(
            format!(
                "host root `{}` (--host-root / JETFORGE_HOST_ROOT) has no `proc/meminfo`: it is \
                 not a machine's root, and its facts would read as 1 CPU and 0 GiB RAM",
                root.display()
            ),
            "point it at a copy of a machine's /proc and /sys (as tests/hosts/* are), or unset \
             JETFORGE_HOST_ROOT",
        ));
    }
    Ok(root.clone())
}

/// What most commands need, resolved from the global flags.
pub struct Session {
    /// Every set of the recipe tree (`check` looks at all of them).
    pub sets: RecipeSets,
    /// The chosen set (`--set`, else the default one).
    pub set: RecipeSet,
    /// The target profiles of the recipe tree, without the built-in `host`.
    pub targets: Vec<Target>,
    pub target: Target,
    pub facts: HostFacts,
    pub layout: Layout,
    pub config: Config,
    /// Proxy, mirrors, offline and download options: the one network setting every stage gets.
    pub policy: NetPolicy,
    pub cache_dir: PathBuf,
    /// The pip seed store new venvs take pip from (`None` with `JETFORGE_VENV_SEED=0`).
    pub venv_seeds: Option<PathBuf>,
    /// Whether build requirements come from the wheel cache first when it satisfies them
    /// (`JETFORGE_BUILD_REQS_CACHE_FIRST=0` turns it off).
    pub build_reqs_cache_first: bool,
    /// Where built wheels are kept (`--wheelhouse`, config, or `./wheelhouse`), absolute.
    pub wheelhouse: PathBuf,
    /// `--python`: the target's interpreter, when given.
    pub python: Option<PathBuf>,
    /// `[compiler-cache]` and `[distribute]` resolved against this machine's PATH.
    pub compiler: CompilerSetup,
}

/// The network policy of the command line and the config: `--proxy`/`--no-proxy` over the
/// config over the environment, with the proxies' credentials registered as secrets so that
/// nothing prints them.
pub(crate) fn net_policy(g: &GlobalArgs, config: &Config) -> Result<NetPolicy> {
    let proxy = ProxySettings::resolve(
        g.proxy.as_deref(),
        g.no_proxy.as_deref(),
        &config.network,
        caller_env,
    )
    .map_err(|e| {
        crate::error::input_hint(
            e.to_string(),
            "fix the proxy URL (e.g. http://user:pass@proxy:3128)",
        )
    })?;
    let policy = NetPolicy::new(config, proxy, g.offline, FetchOptions::from_env());
    for v in policy
        .proxy_env()
        .iter()
        .map(|(_, v)| v)
        .chain(config.network.proxy.iter().map(|p| &p.value))
    {
        crate::redact::register(v);
    }
    Ok(policy)
}

impl Session {
    /// The remote wheel caches `build` and `plan` consult: `--cache-from` URLs, then the
    /// config's `[cache] indexes`.
    pub fn remote_caches(
        &self,
        cache_from: &[String],
    ) -> crate::wheelhouse::remote::RemoteCaches<'_> {
        let urls: Vec<String> = cache_from
            .iter()
            .chain(&self.config.cache.indexes)
            .cloned()
            .collect();
        crate::wheelhouse::remote::RemoteCaches::new(
            &urls,
            crate::net::index::IndexClient::new(&self.policy, self.policy.fetch.clone()),
        )
    }

    /// The build stage's view of this session (`build` and `shell` run the same stage).
    pub fn build_context<'a>(
        &'a self,
        wheelhouse: &'a crate::wheelhouse::store::Wheelhouse,
        remote: &'a crate::wheelhouse::remote::RemoteCaches<'a>,
        reporter: &'a dyn crate::report::Reporter,
        cross: Option<&'a Cross>,
    ) -> crate::builder::driver::BuildContext<'a> {
        crate::builder::driver::BuildContext {
            set: &self.set,
            target: &self.target,
            facts: &self.facts,
            layout: &self.layout,
            policy: &self.policy,
            proxy_env: self.policy.proxy_env(),
            cache_dir: &self.cache_dir,
            venv_seeds: self.venv_seeds.as_deref(),
            build_reqs_cache_first: self.build_reqs_cache_first,
            wheelhouse,
            remote,
            reporter,
            caller: &caller_env,
            network: plan::network_lines(self),
            cross,
            compiler: &self.compiler,
        }
    }

    pub fn load(g: &GlobalArgs) -> Result<Self> {
        let (sets, tree) = load_all_sets(g)?;
        let set = sets
            .pick(g.set.as_deref())
            .map_err(crate::error::input)?
            .clone();
        let targets = target::load_targets(&tree)?;
        let root = host_root(g)?;
        let cuda_arch = (!g.cuda_arch.is_empty()).then_some(g.cuda_arch.as_slice());
        let mut facts = match &g.host_facts {
            Some(spec) => crate::host::facts_file::load(spec)?,
            None => HostFacts::read_files(&root),
        };
        if g.target.as_deref() == Some(target::HOST_TARGET) && g.host_facts.is_none() {
            facts.probe_python(&root, g.python.as_deref());
            if cuda_arch.is_none() {
                facts.probe_gpu(&root);
            }
        }
        let target = target::select(g.target.as_deref(), &targets, &facts, cuda_arch)?;
        let work_dir = std::path::absolute(&g.work_dir).map_err(|e| {
            crate::error::input(format!("work dir `{}`: {e}", g.work_dir.display()))
        })?;
        let layout = Layout::new(&work_dir, &set.name, &target.name);
        let config = Config::load(&work_dir)?;
        let policy = net_policy(g, &config)?;
        let cache_dir = std::path::absolute(config.cache_dir())?;
        for url in &config.compiler_cache.remote {
            crate::redact::register(url);
        }
        let compiler = CompilerSetup::resolve(
            &config.compiler_cache,
            &config.distribute,
            &cache_dir,
            &|p| which::which(p).is_ok(),
        );
        let wheelhouse = wheelhouse_dir(g, &config)?;
        let venv_seeds = crate::venv::seed::store(
            &cache_dir,
            caller_env(crate::envvars::JETFORGE_VENV_SEED).as_deref(),
        );
        let build_reqs_cache_first =
            caller_env(crate::envvars::JETFORGE_BUILD_REQS_CACHE_FIRST).as_deref() != Some("0");
        Ok(Self {
            sets,
            set,
            targets,
            target,
            facts,
            layout,
            config,
            policy,
            cache_dir,
            venv_seeds,
            build_reqs_cache_first,
            wheelhouse,
            python: g.python.clone(),
            compiler,
        })
    }

    /// Native or cross for the chosen target on this machine (see `cross::mode`).
    pub fn mode(&self) -> Result<Mode> {
        let sysroot = self
            .config
            .sysroot(caller_env(crate::envvars::JETFORGE_SYSROOT));
        cross::mode(
            &self.target,
            &self.facts.arch,
            sysroot.as_deref(),
            &self.layout.cross_dir(),
        )
    }

    /// What a build runs in: `None` natively, the cross settings when the target has them;
    /// building for another CPU without them is refused.
    pub fn build_mode(&self) -> Result<Option<Cross>> {
        match self.mode()? {
            Mode::Native => Ok(None),
            Mode::Cross(c) => Ok(Some(*c)),
            Mode::NoCrossSettings(p) => Err(crate::error::input_hint(
                format!(
                    "target `{}` is {}, but this machine is {}: that is a cross build, and this target has no cross settings",
                    self.target.name, p.host, p.build
                ),
                "build on the Jetson itself, use a profile with a [target.NAME.cross] table (e.g. `--target jetson-orin-cross`), or `--target host` to build for this machine",
            )),
        }
    }

    /// `--jobs`, then MAX_JOBS from the caller's environment.
    pub fn jobs_override(&self, cli: Option<u32>) -> Result<JobsOverride> {
        Ok(JobsOverride {
            cli,
            env: env_max_jobs(caller_env(crate::envvars::MAX_JOBS))?,
            remembered: None,
        })
    }
}

/// The wheelhouse every command uses: `--wheelhouse`, else the config's, else `./wheelhouse`;
/// absolute, so `clean` compares it with the work dir's paths reliably.
fn wheelhouse_dir(g: &GlobalArgs, config: &Config) -> Result<PathBuf> {
    let dir = g
        .wheelhouse
        .clone()
        .or_else(|| config.wheelhouse.clone())
        .unwrap_or_else(|| PathBuf::from(crate::wheelhouse::Wheelhouse::DEFAULT_DIR));
    std::path::absolute(&dir)
        .map_err(|e| crate::error::input(format!("wheelhouse `{}`: {e}", dir.display())))
}

/// MAX_JOBS from the environment: unset or empty is none; anything but a whole number ≥ 1 is
/// an error rather than silently computing the jobs instead of what the user asked for.
fn env_max_jobs(value: Option<String>) -> Result<Option<u32>> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(crate::error::input_hint(
            format!(
                "MAX_JOBS=`{v}` from the environment is not a whole number of jobs (1 or more)"
            ),
            "set MAX_JOBS to e.g. 4, pass --jobs N, or unset MAX_JOBS to let jetforge compute it",
        )),
    }
}
