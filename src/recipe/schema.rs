//! The recipe file format, exactly as written in `recipes/**/*.toml`.
//!
//! These types mirror the TOML one to one (serde, `deny_unknown_fields`) and keep the spans of
//! every value that validation may complain about, so an error can point at file:line:col. They
//! hold no meaning beyond the syntax: `load` turns them into a checked [`crate::recipe::Recipe`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One recipe file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    pub package: PackageSpec,
    pub source: SourceSpec,
    #[serde(default, rename = "patch")]
    pub patches: Vec<PatchSpec>,
    #[serde(default, rename = "edit")]
    pub edits: Vec<EditSpec>,
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub depends: DependsSpec,
    /// Build environment; values are templates. Ordered by key for a stable export.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub jobs: JobsSpec,
    #[serde(default)]
    pub build: BuildSpec,
    #[serde(default)]
    pub output: OutputSpec,
    #[serde(default)]
    pub verify: Option<VerifySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    pub name: Spanned<String>,
    pub version: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Free disk (GiB) the source tree and build need; read by `doctor`.
    #[serde(default)]
    pub disk_gib: Option<f64>,
}

/// Where the source comes from: a git repository at a pinned commit, or a local directory
/// (fixtures and out-of-tree development).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    #[serde(default)]
    pub git: Option<Spanned<String>>,
    #[serde(default)]
    pub tag: Option<Spanned<String>>,
    #[serde(default)]
    pub branch: Option<Spanned<String>>,
    #[serde(default)]
    pub commit: Option<Spanned<String>>,
    /// Check out submodules recursively at the commits the superproject records: `true` for
    /// all, or a list of submodule paths (each with its own nested submodules).
    #[serde(default)]
    pub submodules: SubmodulesSpec,
    /// A local directory, relative to the recipe file.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
}

/// `submodules = true | false | ["csrc/cutlass", …]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SubmodulesSpec {
    All(bool),
    Paths(Vec<String>),
}

impl Default for SubmodulesSpec {
    fn default() -> Self {
        SubmodulesSpec::All(false)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchSpec {
    /// Path relative to the patches directory (`patches/` beside `recipes/`).
    pub file: Spanned<String>,
    /// Leading path components to strip (`patch -pN`); 1 by default.
    #[serde(default = "default_strip")]
    pub strip: u32,
    /// Apply inside this subdirectory of the source (e.g. a submodule).
    #[serde(default)]
    pub directory: Option<Spanned<String>>,
}

fn default_strip() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditSpec {
    /// File relative to the source directory.
    pub file: Spanned<String>,
    #[serde(default)]
    pub find: Option<Spanned<String>>,
    /// Replacement text; a template. Empty deletes the match.
    #[serde(default = "empty_text")]
    pub replace: Spanned<String>,
    /// How many times `find` must occur; 1 by default.
    #[serde(default = "default_count")]
    pub count: Spanned<i64>,
    /// Why the edit is needed (shown by `plan -v`).
    #[serde(default)]
    pub why: Option<String>,
}

fn empty_text() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

fn default_count() -> Spanned<i64> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    /// Absent only with `trust = "first-use"`.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// `"first-use"`: no sha256 can be known in advance; `fetch` records the one it gets and
    /// every later use must match it.
    #[serde(default)]
    pub trust: Option<Spanned<String>>,
    /// Unpack (tar.gz, tar.xz, zip) instead of exposing the file itself.
    #[serde(default)]
    pub extract: bool,
    /// Environment variable that receives the file or extracted directory path.
    #[serde(default)]
    pub env: Option<Spanned<String>>,
    /// Inside an extracted archive, the subdirectory to expose (e.g. the archive's top folder).
    #[serde(default)]
    pub subdir: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependsSpec {
    /// Recipes that must be built first; their wheels go into the build venv.
    #[serde(default)]
    pub recipes: Vec<Spanned<String>>,
    /// Python build requirements (PEP 508), installed into the build venv.
    #[serde(default)]
    pub python: Vec<Spanned<String>>,
    /// Recipes built first *when they are built in the same run*, their wheels then installed
    /// into the build venv (e.g. for a verify snippet that imports torch); unlike `recipes`,
    /// selecting this recipe does not select them.
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSpec {
    /// Peak RAM of one compile job, in GiB; drives MAX_JOBS.
    #[serde(default)]
    pub mem_per_job_gib: Option<Spanned<f64>>,
    /// Threads each nvcc runs (exported as NVCC_THREADS).
    #[serde(default)]
    pub nvcc_threads: Option<Spanned<u32>>,
    /// The build divides MAX_JOBS by NVCC_THREADS itself (vLLM's setup.py does), so jetforge
    /// exports jobs × nvcc_threads.
    #[serde(default)]
    pub max_jobs_counts_nvcc_threads: bool,
    /// Upper bound for MAX_JOBS whatever the machine offers.
    #[serde(default)]
    pub max: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    #[serde(default)]
    pub steps: Vec<Spanned<StepSpec>>,
    /// Whether the recipe can be built for a foreign architecture; with the reason if not.
    #[serde(default)]
    pub cross: Option<bool>,
    /// Which step still needs the network and why (for `--offline`).
    #[serde(default)]
    pub network: Option<String>,
}

/// A build step: a string is a bash script (`bash -euo pipefail -c`); a table gives an argv.
/// (serde's untagged enums cannot hold `Spanned` values, so the span is kept around the step.)
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StepSpec {
    Script(String),
    Table(StepTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTable {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Working directory relative to the source dir.
    #[serde(default)]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `wheel` (default) or `source` (a prepared tree another recipe consumes).
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Distribution names of the wheels produced, when not the package name.
    #[serde(default)]
    pub wheels: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// Python snippet run with the target's Python in a venv holding the set.
    pub python: String,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Needs a GPU: skipped (and said so) where none is visible.
    #[serde(default)]
    pub gpu: bool,
}
