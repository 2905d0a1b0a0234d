//! Recipes: the checked, plain-data form of `recipes/**/*.toml`, grouped into sets.
//!
//! `schema` is the file format, `load` turns files into [`RecipeSet`]s with pointed errors,
//! `graph` orders them, `template` handles `{placeholders}`. Nothing here touches the network,
//! the build machine or the work dir.

pub mod graph;
pub mod load;
pub mod scaffold;
pub mod schema;
pub mod template;
pub mod tree;

use std::path::PathBuf;

pub use load::{load_sets, RecipeSets};
use template::Template;

/// A checked recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    /// Parsed once, when the recipe is loaded (shown in its PEP 440 normal form).
    pub version: pep440_rs::Version,
    pub description: Option<String>,
    pub disk_gib: Option<f64>,
    /// Path as shown to the user.
    pub file: String,
    /// The recipe file's bytes, for fingerprints.
    pub text: String,
    pub source: Source,
    pub patches: Vec<Patch>,
    pub edits: Vec<Edit>,
    pub resources: Vec<Resource>,
    /// Git repositories a build step clones by itself (`[[repository]]`).
    pub repositories: Vec<ExtraRepo>,
    pub depends: Vec<String>,
    /// Order-only dependencies (see `schema::DependsSpec::after`).
    pub after: Vec<String>,
    pub python_requires: Vec<String>,
    /// Whether the project's `[build-system] requires` are build requirements too
    /// (`[depends] pyproject`, default true).
    pub pyproject_requires: bool,
    pub env: Vec<(String, Template)>,
    pub jobs: JobsPolicy,
    pub steps: Vec<Step>,
    pub output: OutputKind,
    pub wheel_names: Vec<String>,
    pub verify: Option<Verify>,
    /// `None`: not said; `Some(false)`: refuses cross builds.
    pub cross: Option<bool>,
    pub network: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Git {
        url: String,
        tag: Option<String>,
        branch: Option<String>,
        commit: String,
        submodules: Submodules,
    },
    /// A local directory (absolute, resolved against the recipe file).
    Path { dir: PathBuf },
}

/// Which submodules a git source checks out: `submodules = false | true | ["csrc/cutlass", …]`.
/// A listed submodule comes with all of its own submodules; an unlisted one is never fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Submodules {
    #[default]
    None,
    All,
    /// Paths relative to the repository root.
    Only(Vec<String>),
}

impl From<bool> for Submodules {
    fn from(all: bool) -> Self {
        if all {
            Submodules::All
        } else {
            Submodules::None
        }
    }
}

impl From<&Submodules> for Submodules {
    fn from(s: &Submodules) -> Self {
        s.clone()
    }
}

impl Recipe {
    /// The normalized names of the distributions this recipe's wheels carry: `wheel_names`, or
    /// the recipe's own name.
    pub fn distributions(&self) -> Vec<String> {
        if self.wheel_names.is_empty() {
            vec![crate::pkgname::normalize(&self.name)]
        } else {
            self.wheel_names
                .iter()
                .map(|n| crate::pkgname::normalize(n))
                .collect()
        }
    }

    /// Everything that must come before this recipe in a build order.
    pub fn ordering_deps(&self) -> impl Iterator<Item = &String> {
        self.depends.iter().chain(&self.after)
    }

    /// The distribution names its wheels are expected to have before any is built: `[output]
    /// wheels`, else the recipe's name. Once built, the wheelhouse manifest records the real ones
    /// (from each wheel's METADATA) with the recipe that built them.
    pub fn declared_wheels(&self) -> Vec<String> {
        if self.wheel_names.is_empty() {
            vec![self.name.clone()]
        } else {
            self.wheel_names.clone()
        }
    }
}

/// A git repository that a build step clones by itself (torch's NCCL, a CMake FetchContent):
/// `fetch` mirrors it, and build steps reach the mirror through git's `insteadOf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRepo {
    /// As the build step writes it.
    pub url: String,
    pub tag: Option<String>,
    pub branch: Option<String>,
    pub commit: String,
    pub submodules: Submodules,
}

/// How a branch pin is shown: `release/2.3.x @ 958fccea`.
pub fn branch_pin(branch: &str, commit: &str) -> String {
    format!("{branch} @ {}", &commit[..commit.len().min(8)])
}

impl Source {
    pub fn commit(&self) -> Option<&str> {
        match self {
            Source::Git { commit, .. } => Some(commit),
            Source::Path { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Patch {
    /// Path relative to the patches root, as written in the recipe.
    pub file: String,
    /// Path as shown to the user.
    pub display: String,
    pub bytes: Vec<u8>,
    pub strip: u32,
    pub directory: Option<String>,
}

impl Patch {
    /// The patch's header line: the first non-empty line of its description (the text before
    /// the first file header), or the `Subject:` of a `git format-patch` mail without its
    /// `[PATCH]` tag. None when the patch has no description.
    pub fn header(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        let description = text
            .lines()
            .take_while(|l| !l.starts_with("diff --git ") && !l.starts_with("--- "));
        let mut first = None;
        for line in description {
            if let Some(subject) = line.strip_prefix("Subject: ") {
                let subject = match subject.strip_prefix('[') {
                    Some(tagged) => tagged.split_once("] ").map_or(subject, |(_, s)| s),
                    None => subject,
                };
                return Some(subject.trim().to_string());
            }
            let line = line.trim();
            if first.is_none() && !line.is_empty() && !line.starts_with("From ") {
                first = Some(line.to_string());
            }
        }
        first
    }
}

#[derive(Debug, Clone)]
pub struct Edit {
    pub file: String,
    pub find: String,
    pub replace: Template,
    pub count: u32,
    pub why: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub url: String,
    /// None: `trust = "first-use"`, the digest is recorded by the first `fetch`
    /// (see `source::first_use`).
    pub sha256: Option<String>,
    pub extract: bool,
    pub env: Option<String>,
    pub subdir: Option<String>,
}

/// What drives MAX_JOBS for a recipe (see `jobs`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobsPolicy {
    pub mem_per_job_gib: f64,
    /// Unset: [`JobsPolicy::link_gib`] derives it.
    pub mem_per_link_gib: Option<f64>,
    pub nvcc_threads: Option<u32>,
    pub max_jobs_counts_nvcc_threads: bool,
    pub max: Option<u32>,
}

impl JobsPolicy {
    /// Used when a recipe says nothing: a plain C/C++ compile job.
    pub const DEFAULT_MEM_PER_JOB_GIB: f64 = 1.5;

    /// Peak RAM of one link. Unset, twice a compile job's: a link holds every object of a
    /// library and the linker's symbol tables at once, where a compile job holds one
    /// translation unit, so the compile figure alone would admit too many links.
    pub fn link_gib(&self) -> f64 {
        self.mem_per_link_gib.unwrap_or(2.0 * self.mem_per_job_gib)
    }
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// Run with `bash -euo pipefail -c`.
    Script(Template),
    Argv(Vec<Template>),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    pub cwd: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    Wheel,
    /// A prepared source tree consumed by another recipe; nothing is built.
    Source,
    /// A directory tree the steps install into `${{ out }}` (e.g. an LLVM install prefix); no wheel.
    /// Recipes that depend on it read it through `${{ tree_dir:NAME }}`.
    Tree,
}

impl OutputKind {
    /// What the recipe produces, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            OutputKind::Wheel => "wheel",
            OutputKind::Source => "source tree",
            OutputKind::Tree => "tree",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Verify {
    pub python: String,
    pub timeout_secs: u64,
    pub gpu: bool,
}

/// A set's platform requirements from `set.toml` `[set]`: `cuda = "12.6"`, `python = "3.10"`,
/// `jetpack = "6.1"`. Plain strings compared by `doctor`; none of them changes a build.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SetRequires {
    /// CUDA toolkit major.minor the set's wheels are built against.
    pub cuda: Option<String>,
    /// Python major.minor of the target.
    pub python: Option<String>,
    /// Lowest JetPack release the set is meant for.
    pub jetpack: Option<String>,
}

/// A named, loaded and checked set of recipes, in build order.
#[derive(Debug, Clone)]
pub struct RecipeSet {
    pub name: String,
    pub description: Option<String>,
    /// What the machine must have for this set (`set.toml`), checked by `doctor`.
    pub requires: SetRequires,
    /// Recipes in topological order (dependencies first; ties broken by name).
    pub recipes: Vec<Recipe>,
    /// name → index into `recipes`, built on the first [`RecipeSet::get`]: a lookup per
    /// dependency of every recipe must not scan the set (quadratic at thousands of recipes).
    pub(crate) index: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
}

impl RecipeSet {
    pub fn get(&self, name: &str) -> Option<&Recipe> {
        let index = self.index.get_or_init(|| {
            self.recipes
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i))
                .collect()
        });
        match index.get(name).and_then(|&i| self.recipes.get(i)) {
            Some(r) if r.name == name => Some(r),
            // `recipes` was changed after the index was built (it is a public field).
            _ => self.recipes.iter().find(|r| r.name == name),
        }
    }

    /// The selected recipes plus everything they depend on, in build order.
    /// `all` (or nothing) selects the whole set. Unknown names are an error naming them.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Recipe>, String> {
        graph::select(self, names)
    }
}
