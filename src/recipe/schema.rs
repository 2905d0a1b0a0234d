//! The recipe file format, exactly as written in `recipes/**/*.toml`.
//!
//! These types mirror the TOML one to one (serde, `deny_unknown_fields`) and keep the spans of
//! every value that validation may complain about, so an error can point at file:line:col. They
//! hold no meaning beyond the syntax: `load` turns them into a checked [`crate::recipe::Recipe`].
//!
//! The same types publish the JSON Schema (`jetforge schema recipe`) and the README's recipe
//! reference (`jetforge schema --markdown recipe`): their doc comments are the descriptions, so
//! a key cannot be added without being documented. `Spanned<T>` is described as plain `T`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// One recipe file, `recipes/<set>/<package>.toml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jetforge recipe")]
pub struct RecipeFile {
    /// What is built.
    pub package: PackageSpec,
    /// Where the source comes from.
    pub source: SourceSpec,
    /// Unified diffs applied to the source, in order.
    #[serde(default, rename = "patch")]
    pub patches: Vec<PatchSpec>,
    /// Exact text replacements in the source.
    #[serde(default, rename = "edit")]
    pub edits: Vec<EditSpec>,
    /// Files the build would download, fetched and checked up front.
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceSpec>,
    /// Git repositories a build step clones itself.
    #[serde(default, rename = "repository")]
    pub repositories: Vec<RepositorySpec>,
    /// What must be built or installed first.
    #[serde(default)]
    pub depends: DependsSpec,
    /// Build environment: variable name = value (a template). Ordered by key for a stable export.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub env: BTreeMap<String, Spanned<String>>,
    /// What drives MAX_JOBS.
    #[serde(default)]
    pub jobs: JobsSpec,
    /// How the wheel (or tree) is built.
    #[serde(default)]
    pub build: BuildSpec,
    /// What the build produces.
    #[serde(default)]
    pub output: OutputSpec,
    /// How `verify` checks the installed package.
    #[serde(default)]
    pub verify: Option<VerifySpec>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// The package name (the wheel's distribution name unless `[output] wheels` says otherwise).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The version built (PEP 440); the wheel must carry it.
    #[schemars(with = "String")]
    pub version: Spanned<String>,
    /// One line for `list`.
    #[serde(default)]
    pub description: Option<String>,
    /// Free disk (GiB) the source tree and build need; `doctor` checks it (unset: not checked).
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0))]
    pub disk_gib: Option<Spanned<f64>>,
}

/// Where the source comes from: a git repository at a pinned commit, or a local directory
/// (fixtures and out-of-tree development).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The git repository's URL (mirrors and proxies from `jetforge.toml` apply).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub git: Option<Spanned<String>>,
    /// The tag `commit` is checked against (never a fallback to a branch head).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tag: Option<Spanned<String>>,
    /// Instead of `tag`, when upstream has none: `commit` must be on this branch.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub branch: Option<Spanned<String>>,
    /// The full commit id (40 hex digits) that is built.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = "^[0-9a-f]{40}$"))]
    pub commit: Option<Spanned<String>>,
    /// Check out submodules at the commits the superproject records: `true` all of them
    /// recursively, or a list of paths (each recursively); unlisted ones are never fetched.
    #[serde(default)]
    #[schemars(with = "Option<SubmodulesSpec>")]
    pub submodules: Option<Spanned<SubmodulesSpec>>,
    /// A local directory instead of `git` (tests, development), relative to the recipe file and
    /// inside the directory holding the recipe directory; only read (copied into the work dir).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
}

/// `submodules = true` or `submodules = ["csrc/cutlass"]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SubmodulesSpec {
    /// `true`: every submodule, recursively.
    All(bool),
    /// Only these paths (each recursively).
    Only(Vec<String>),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSpec {
    /// Path relative to the patches directory (`patches/` beside `recipes/`). Its first
    /// non-empty line (or mail `Subject:`) says what it does; `plan` shows it.
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    /// Leading path components to strip (`patch -pN`); 1 by default.
    #[serde(default = "default_strip")]
    pub strip: u32,
    /// Apply inside this subdirectory of the source (e.g. a submodule).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub directory: Option<Spanned<String>>,
}

fn default_strip() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditSpec {
    /// File relative to the source directory.
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    /// The exact text to replace (a missing `find` is reported by the loader, with a hint).
    #[schemars(with = "String")]
    pub find: Option<Spanned<String>>,
    /// Replacement text; a template. Empty deletes the match.
    #[serde(default = "empty_text")]
    #[schemars(with = "String", default = "empty_string")]
    pub replace: Spanned<String>,
    /// How many times `find` must occur (1 or more).
    #[serde(default = "default_count")]
    #[schemars(with = "i64", default = "one", range(min = 1))]
    pub count: Spanned<i64>,
    /// Why the edit is needed (shown by `plan`).
    #[serde(default)]
    pub why: Option<String>,
}

fn empty_text() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

fn default_count() -> Spanned<i64> {
    Spanned::new(0..0, one())
}

fn one() -> i64 {
    1
}

fn empty_string() -> String {
    String::new()
}

fn default_verify_timeout() -> Option<u64> {
    Some(crate::recipe::load::DEFAULT_VERIFY_TIMEOUT_SECS)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// The resource's name (`${{ resource:NAME }}` in templates).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Where it is downloaded from (proxies and `[mirrors]` apply).
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// The file's digest (64 hex digits). Without it, `trust = "first-use"` is required.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: Option<Spanned<String>>,
    /// `"first-use"`: for a file whose digest cannot be known in advance. The first `fetch`
    /// records the sha256 it got in the cache's first-use lock, and every later use must match.
    #[serde(default)]
    #[schemars(with = "Option<Trust>")]
    pub trust: Option<Spanned<String>>,
    /// Unpack (tar.gz, tar.xz, zip) instead of exposing the file itself.
    #[serde(default)]
    pub extract: bool,
    /// Environment variable that receives the file or extracted directory path.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub env: Option<Spanned<String>>,
    /// Inside an extracted archive, the subdirectory to expose (e.g. the archive's top folder).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub subdir: Option<Spanned<String>>,
}

/// The schema's spelling of `trust` (the loader checks the string itself, with a hint).
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum Trust {
    FirstUse,
}

/// `[[repository]]`: a git repository that a build step clones by itself (e.g. torch ≥ 2.7
/// clones NVIDIA/nccl at a tag; CMake FetchContent). `fetch` mirrors it at the pinned commit,
/// and every build step's `git` is redirected to the mirror (`url.<mirror>.insteadOf <url>`),
/// so the clone works offline.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositorySpec {
    /// The URL exactly as the build step clones it (`X` and `X.git` are both redirected).
    #[schemars(with = "String")]
    pub git: Spanned<String>,
    /// The commit the build clones; must be 40 hex digits.
    #[schemars(with = "String", regex(pattern = "^[0-9a-f]{40}$"))]
    pub commit: Option<Spanned<String>>,
    /// The tag the build asks for (checked to point at `commit`) …
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tag: Option<Spanned<String>>,
    /// … or the branch that holds `commit`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub branch: Option<Spanned<String>>,
    /// Submodules the build checks out too, as for `[source]`.
    #[serde(default)]
    #[schemars(with = "Option<SubmodulesSpec>")]
    pub submodules: Option<Spanned<SubmodulesSpec>>,
    /// Which step clones it and why (for people reading the recipe).
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DependsSpec {
    /// Recipes that must be built first; their wheels go into the build venv.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub recipes: Vec<Spanned<String>>,
    /// Python build requirements (PEP 508), installed into the build venv.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub python: Vec<Spanned<String>>,
    /// Recipes built first *when they are built in the same run*, their wheels then installed
    /// into the build venv (e.g. for a verify snippet that imports torch); unlike `recipes`,
    /// selecting this recipe does not select them.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub after: Vec<Spanned<String>>,
    /// Whether the project's own `pyproject.toml` `[build-system] requires` (PEP 518) is
    /// installed too (default `true`). `false`: only `python` above, for a project whose
    /// declared build backend the recipe's steps deliberately do not use (bitsandbytes'
    /// scikit-build-core would rerun CMake with its own arch settings).
    #[serde(default)]
    pub pyproject: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsSpec {
    /// Peak RAM of one compile job, in GiB; drives MAX_JOBS (unset: 1.5).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub mem_per_job_gib: Option<Spanned<f64>>,
    /// Peak RAM of one link, in GiB; with distributed compiles it caps the links that run at
    /// once (unset: twice `mem_per_job_gib`).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub mem_per_link_gib: Option<Spanned<f64>>,
    /// Threads each nvcc runs (exported as NVCC_THREADS).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub nvcc_threads: Option<Spanned<u32>>,
    /// The build divides MAX_JOBS by NVCC_THREADS itself (vLLM's setup.py does), so jetforge
    /// exports jobs × nvcc_threads.
    #[serde(default)]
    pub max_jobs_counts_nvcc_threads: bool,
    /// Upper bound for MAX_JOBS whatever the machine offers.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The build steps, run in order in the source tree; each must succeed.
    #[serde(default)]
    #[schemars(with = "Vec<StepSpec>")]
    pub steps: Vec<Spanned<StepSpec>>,
    /// Whether the recipe can be built for a foreign architecture (say why in a comment if not).
    #[serde(default)]
    pub cross: Option<bool>,
    /// Which step still needs the network and why (for `--offline`).
    #[serde(default)]
    pub network: Option<String>,
}

/// A build step: a string is a bash script (`bash -euo pipefail -c`); a table gives an argv.
/// (serde's untagged enums cannot hold `Spanned` values, so the span is kept around the step.)
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StepSpec {
    /// A bash script (a template), run as `bash -euo pipefail -c`.
    Script(String),
    /// A named step with `run` or `argv`.
    Table(StepTable),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepTable {
    /// The step's name in logs and `plan` (default: `step N`).
    #[serde(default)]
    pub name: Option<String>,
    /// A bash script (a template), as for a plain string step; exactly one of `run`, `argv`.
    #[serde(default)]
    pub run: Option<String>,
    /// A command and its arguments (each a template), run without a shell.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Working directory relative to the source dir (a template; it may not leave it).
    #[serde(default)]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `wheel` (default); `source`: a prepared tree another recipe consumes, nothing built;
    /// `tree`: the steps install a directory into `${{ out }}` (e.g. an LLVM prefix), which
    /// dependents read as `${{ tree_dir:NAME }}`.
    #[serde(default)]
    #[schemars(with = "Option<OutputKindName>")]
    pub kind: Option<Spanned<String>>,
    /// Distribution names of the wheels the build writes, when more than or other than the
    /// package name (each must be written; `install` installs them all).
    #[serde(default)]
    pub wheels: Vec<String>,
}

/// The schema's spelling of `[output] kind` (the loader checks the string itself, with a hint).
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum OutputKindName {
    Wheel,
    Source,
    Tree,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// Python snippet run with the target's Python in a venv holding the set (not a template;
    /// it gets JETFORGE_VERSION).
    pub python: String,
    /// How long the snippet may run, in seconds.
    #[serde(default)]
    #[schemars(default = "default_verify_timeout")]
    pub timeout_secs: Option<u64>,
    /// Needs a GPU: skipped (and said so) where none is visible.
    #[serde(default)]
    pub gpu: bool,
}

/// The JSON Schema of a recipe file.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(RecipeFile).to_value()
}
