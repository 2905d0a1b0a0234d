//! Command-line definitions (clap derive). Raw flags only: `commands` turns them into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "jetforge",
    version,
    about = "Build PyTorch, torchvision, Triton, vllm-flash-attn and vLLM wheels for Jetson Orin from source",
    after_help = "Exit codes: 0 ok, 1 a build or check failed, 2 bad input or usage."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Recipe directory (default: the recipes embedded in this binary).
    #[arg(long, global = true, value_name = "DIR", env = "JETFORGE_RECIPES")]
    pub recipes: Option<PathBuf>,
    /// Patch directory (default: `patches/` beside the recipe directory, or the embedded one).
    #[arg(long, global = true, value_name = "DIR")]
    pub patches: Option<PathBuf>,
    /// Recipe set to use (default: the set marked default).
    #[arg(long, global = true, value_name = "NAME")]
    pub set: Option<String>,
    /// Target profile: `jetson-orin` (default), `host`, or one from targets.toml.
    #[arg(long, global = true, value_name = "NAME")]
    pub target: Option<String>,
    /// CUDA archs to build for, replacing the target's (e.g. `8.7`, `9.0`); repeat or comma-separate.
    #[arg(long, global = true, value_name = "ARCH", value_delimiter = ',')]
    pub cuda_arch: Vec<String>,
    /// Work directory for sources, logs and build state.
    #[arg(long, global = true, value_name = "DIR", default_value = ".jetforge")]
    pub work_dir: PathBuf,
    /// Wheelhouse directory (default: config `[wheelhouse] dir`, else `./wheelhouse`); `build`
    /// fills it, `plan`, `install` and `publish` read it, `clean` never removes it.
    #[arg(long, global = true, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Proxy for every download, overriding config and environment (credentials are redacted).
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy, overriding config and environment.
    #[arg(long, global = true, value_name = "LIST")]
    pub no_proxy: Option<String>,
    /// Use only the caches; fail listing everything that is missing.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Say more (why recipes rebuild, the full environment).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Plain, timestamped output lines instead of progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Machine-readable output where the output is data.
    #[arg(long, global = true)]
    pub json: bool,
    /// The target's Python: creates the build and install venvs, and tells the `host` target
    /// its version (default: python<target version>, or python3, on PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Plan for another machine: a facts file (TOML or JSON: cpus, memory_gib, … see the README)
    /// or a built-in profile (orin-nano-8g, orin-nx-16g, agx-orin-32g, agx-orin-64g) stands in
    /// for this machine in `plan` and `env`.
    #[arg(long, global = true, value_name = "FILE|PROFILE")]
    pub host_facts: Option<String>,
    /// Read host facts below this root instead of `/` (for tests and what-if plans).
    #[arg(
        long,
        global = true,
        hide = true,
        value_name = "DIR",
        env = "JETFORGE_HOST_ROOT"
    )]
    pub host_root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List recipe sets, recipes, versions and dependencies.
    List,
    /// Validate every recipe, patch reference and pin without building anything.
    Check(CheckArgs),
    /// Show what a build would do: order, commits, MAX_JOBS and why, steps, environment.
    Plan(PlanArgs),
    /// Print the exact build environment of a recipe.
    Env(EnvArgs),
    /// A shell with a recipe's exact step environment, its build venv and its prepared source.
    Shell(ShellArgs),
    /// Print what a uv or pip project needs to install the built set (not PyPI's builds).
    Export(ExportArgs),
    /// Fill the source and resource caches (for offline and air-gapped builds).
    Fetch(Packages),
    /// Check out, patch and edit sources into the work directory.
    Prepare(Packages),
    /// Build wheels (the main job).
    Build(BuildArgs),
    /// Install the built set into a venv, from the wheelhouse only.
    Install(InstallArgs),
    /// Upload the wheelhouse to a package index or write a static index.
    Publish(PublishArgs),
    /// Check this machine for what the recipe set needs, and say how to fix what is missing.
    Doctor(Packages),
    /// Run the recipes' verify snippets against an installed venv.
    Verify(VerifyArgs),
    /// Remove work directories (and, with --caches, the download caches).
    Clean(CleanArgs),
    /// Print the JSON Schema of a recipe, `jetforge.toml` or `targets.toml` (for editors), or
    /// with --markdown the reference the README carries.
    Schema(SchemaArgs),
    /// Write a first recipe for a project: pins the tag's commit, reads the build system and
    /// how it picks CUDA archs.
    New(NewArgs),
    /// Print where the last build's timings report is (`build --timings`).
    Report(ReportArgs),
    /// Internal: load libcuda in this process and print what it says (run by `doctor` as a
    /// child, so a crashing driver cannot take `doctor` down).
    #[command(name = "__cuda-probe", hide = true)]
    CudaProbe,
}

#[derive(Debug, Args)]
pub struct Packages {
    /// Recipes (`all` for the whole set); their dependencies are included.
    #[arg(value_name = "PKG", default_value = "all")]
    pub packages: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also read upstream requirement files in fetched sources and check every patch applies.
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args)]
pub struct JobsArg {
    /// Parallel compile jobs, overriding the memory-based MAX_JOBS policy.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub packages: Packages,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// Also look recipes up in this remote wheel cache (repeatable; `[cache] indexes` too).
    #[arg(long, value_name = "URL")]
    pub cache_from: Vec<String>,
    /// Also show the memory per job learned from earlier builds on this host, build by build.
    #[arg(long)]
    pub explain_jobs: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvFormat {
    Shell,
    Dotenv,
    Json,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The recipe.
    #[arg(value_name = "PKG")]
    pub package: String,
    #[arg(long, value_enum, default_value = "shell")]
    pub format: EnvFormat,
    /// Print credentials in proxy URLs instead of masking them (the shell form always does, for `eval`).
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub jobs: JobsArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Uv,
    Pip,
    Constraints,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "uv")]
    pub format: ExportFormat,
    /// The index that serves the set's wheels (a published cache); default: the wheelhouse's
    /// own `simple/` index as a file URL.
    #[arg(long, value_name = "URL")]
    pub index: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The recipe.
    #[arg(value_name = "PKG")]
    pub package: String,
    /// Run this bash command there instead of an interactive shell; exits with its status.
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// Let the build venv see the interpreter's own packages (as for `build`).
    #[arg(long)]
    pub system_site_packages: bool,
    #[command(flatten)]
    pub jobs: JobsArg,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub packages: Packages,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// Rebuild these recipes even when the wheelhouse has them.
    #[arg(long, value_name = "PKG")]
    pub force: Vec<String>,
    /// Keep building what does not depend on a failed recipe.
    #[arg(long)]
    pub keep_going: bool,
    /// Re-hash every cached wheel instead of trusting its unchanged size, mtime, inode and ctime.
    #[arg(long)]
    pub verify_wheels: bool,
    /// Remote wheel cache (an index or static tree filled by `publish`), tried before building
    /// and before `[cache] indexes`; repeatable.
    #[arg(long, value_name = "URL")]
    pub cache_from: Vec<String>,
    /// Let the build venv see the interpreter's site-packages (a preinstalled torch or build
    /// tools on an air-gapped machine).
    #[arg(long)]
    pub system_site_packages: bool,
    /// Write the timings report (steps, memory, jobs, critical path) as HTML in the work dir;
    /// `--json` always does.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Also open it in the desktop's browser (xdg-open).
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub packages: Packages,
    /// The venv to create or use.
    #[arg(long, value_name = "DIR")]
    pub venv: PathBuf,
    /// Create the venv with access to the interpreter's site-packages.
    #[arg(long)]
    pub system_site_packages: bool,
    /// After installing the set's wheels (exact files, no index), install their other
    /// dependencies from the configured index, with the set's versions pinned as constraints.
    #[arg(long)]
    pub with_deps: bool,
    /// Install the set from this remote cache (an index root or its `simple/` URL) instead of
    /// the wheelhouse, with exact pins and no other index.
    #[arg(long, value_name = "URL", conflicts_with = "find_links")]
    pub index: Option<String>,
    /// Like --index, for a page or directory of wheel links (pip's --find-links).
    #[arg(long, value_name = "URL")]
    pub find_links: Option<String>,
    /// Install wheels built from other inputs than the recipes' current ones (a recipe changed
    /// and its rebuild failed), with a warning, instead of refusing.
    #[arg(long)]
    pub allow_stale: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Upload endpoint of a package index (legacy upload API; default `[index] url`).
    /// Credentials come from JETFORGE_INDEX_USER / JETFORGE_INDEX_PASSWORD or
    /// JETFORGE_INDEX_TOKEN, never from the command line.
    #[arg(long, value_name = "URL", conflicts_with = "dir")]
    pub index: Option<String>,
    /// The index's PEP 503 simple URL (default: `<index>/simple/`).
    #[arg(long, value_name = "URL", requires = "index")]
    pub simple_url: Option<String>,
    /// Write a static PEP 503 index into this directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Publish the passed results of `jetforge verify --index/--find-links` as attestations
    /// next to the cache's manifest, instead of the wheels (which stay as they are).
    #[arg(long)]
    pub verified: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub packages: Packages,
    /// The venv holding the installed set; with --index/--find-links, the venv to install the
    /// set into (default: a fresh one under the work dir).
    #[arg(long, value_name = "DIR")]
    pub venv: Option<PathBuf>,
    /// Install the selection from this published cache (an index root or its `simple/` URL)
    /// and verify it there; the results are saved locally for `publish --verified`.
    #[arg(long, value_name = "URL", conflicts_with = "find_links")]
    pub index: Option<String>,
    /// Like --index, for a `publish --dir` tree: its directory or its URL.
    #[arg(long, value_name = "DIR_OR_URL")]
    pub find_links: Option<String>,
    /// With --index/--find-links: as `install --with-deps`, take the set's other dependencies
    /// (those the snippets import, too) from the configured index, set versions pinned.
    #[arg(long)]
    pub with_deps: bool,
    /// Also run an NCCL check: a 2-process all-reduce with 2+ GPUs; with one GPU (a Jetson), a
    /// single-process communicator (proves NCCL works on the device, not inter-GPU transport).
    #[arg(long)]
    pub nccl: bool,
    /// Seconds the NCCL check may take before it counts as a hang.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub nccl_timeout: u64,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The recipe's (package's) name; the file is `<recipes>/<NAME>.toml`.
    pub name: String,
    /// The project's git repository (mirrors and proxies apply).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "from_pypi",
        requires = "tag"
    )]
    pub git: Option<String>,
    /// The tag to build; its commit is pinned.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Instead of git: the sdist of NAME==VERSION from the package index, unpacked into
    /// `src/<name>-<version>/` beside the recipe directory.
    #[arg(long, value_name = "NAME==VERSION", conflicts_with = "git")]
    pub from_pypi: Option<String>,
    /// The index whose JSON API (`<URL>/pypi/<name>/<version>/json`) `--from-pypi` reads.
    #[arg(long, value_name = "URL", default_value = "https://pypi.org")]
    pub pypi_url: String,
    /// The version (default: the tag without a leading `v`).
    #[arg(long, value_name = "VERSION")]
    pub package_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file format.
    #[arg(value_enum)]
    pub what: SchemaKind,
    /// The reference as Markdown (every key, type, default and meaning) instead of JSON Schema.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemaKind {
    /// `recipes/<set>/<package>.toml`
    Recipe,
    /// `jetforge.toml`
    Config,
    /// `targets.toml`
    Targets,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only these recipes' work directories.
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
    /// Also remove the git mirror and resource caches.
    #[arg(long)]
    pub caches: bool,
}
