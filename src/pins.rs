//! Version pins across a recipe set: those the recipes declare (`[depends] python`), and those
//! the upstream sources declare at their pinned commits (requirement files, `pyproject.toml`,
//! a `torch == X` literal in `setup.py`), checked against the versions the set builds.
//!
//! Reading upstream files is abstracted by [`SourceFiles`]; [`CommitFiles`] supplies them from a
//! bare git mirror (tree at the commit → blob, no checkout). Everything else is plain data in,
//! plain data out. Not here: fetching mirrors, and choosing the set or target (the `check`
//! command does both).
//!
//! Which files are read, and why:
//! - `requirements*.txt` at the root and `requirements/*.txt`, but only those meant for a CUDA
//!   build: the plain `requirements.txt` and the `common`, `cuda` and `build` ones (vLLM's other
//!   files pin torch builds for ROCm, TPU, XPU, CPU or list test tools). `-r other.txt` includes
//!   are followed from there, relative to the including file.
//! - `pyproject.toml`: `[build-system] requires` and `[project] dependencies`.
//! - `setup.py`, by a simple scan: a quoted string holding `<set package> == <version>`, where the
//!   version is a literal or an f-string `{NAME}` whose value is a `NAME = "…"` line of the same
//!   file (flash-attention writes `f"torch == {PYTORCH_VERSION}"`). Computed pins are not seen.
//!
//! A recipe whose steps run `use_existing_torch.py` (vLLM) removes every line mentioning torch
//! (so torchvision and torchaudio pins too) from its requirement files and `pyproject.toml`
//! before building, so those are reported as stripped, not checked. A recipe whose output is a
//! source tree is not read at all: another recipe's build compiles it, and its own packaging
//! metadata never runs.
//!
//! Size: about 567 lines, of which 75 are the unit tests beside the code (492 of code).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{MarkerEnvironment, PackageName, Requirement, VersionOrUrl};

use crate::recipe::{OutputKind, RecipeSet, StepKind};
use crate::wheelhouse::normalize_name;

/// The requirement-file stems read for a CUDA build (see the module docs).
const CUDA_REQUIREMENT_STEMS: [&str; 4] = ["", "common", "cuda", "build"];
/// The script vLLM ships to drop torch pins in favour of an installed torch.
const USE_EXISTING_TORCH: &str = "use_existing_torch.py";
const PLACEHOLDER_COMMIT: &str = "0000000000000000000000000000000000000000";

/// Files of one source tree at one commit.
pub trait SourceFiles {
    /// A file's bytes by its `/`-separated path; `None` when the tree has no such file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The names of the regular files directly inside `dir` (`""` is the root).
    fn list(&self, dir: &str) -> Result<Vec<String>>;
}

/// A commit's tree in a bare git mirror.
pub struct CommitFiles {
    repo: git2::Repository,
    tree: git2::Oid,
}

impl CommitFiles {
    /// Opens `mirror` at `commit`; `Ok(None)` when the mirror does not exist or lacks the commit.
    pub fn open(mirror: &Path, commit: &str) -> Result<Option<Self>> {
        if !mirror.exists() {
            return Ok(None);
        }
        let repo = git2::Repository::open_bare(mirror)
            .with_context(|| format!("failed to open the git mirror `{}`", mirror.display()))?;
        let oid = git2::Oid::from_str(commit)
            .with_context(|| format!("`{commit}` is not a commit id"))?;
        let tree = match repo.find_commit(oid) {
            Ok(c) => c.tree_id(),
            Err(_) => return Ok(None),
        };
        Ok(Some(Self { repo, tree }))
    }

    fn entry(&self, path: &str) -> Result<Option<git2::TreeEntry<'static>>> {
        let tree = self.repo.find_tree(self.tree)?;
        match tree.get_path(Path::new(path)) {
            Ok(e) => Ok(Some(e.to_owned())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("failed to look up `{path}` in the tree")),
        }
    }
}

impl SourceFiles for CommitFiles {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.entry(path)? else {
            return Ok(None);
        };
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .with_context(|| format!("failed to read the blob of `{path}`"))?;
        Ok(Some(blob.content().to_vec()))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        let tree = if dir.is_empty() {
            self.repo.find_tree(self.tree)?
        } else {
            match self.entry(dir)? {
                Some(e) if e.kind() == Some(git2::ObjectType::Tree) => {
                    self.repo.find_tree(e.id())?
                }
                _ => return Ok(Vec::new()),
            }
        };
        Ok(tree
            .iter()
            .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect())
    }
}

/// A requirement found in an upstream file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The requirement as written (PEP 508).
    pub text: String,
    /// `/`-separated path in the source tree.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// From a requirement file or `pyproject.toml` (what `use_existing_torch.py` rewrites).
    pub strippable: bool,
}

/// Every requirement the files of one source declare (see the module docs for which files).
/// `names` are the (normalized) packages the setup.py scan looks for.
pub fn upstream_requirements(files: &dyn SourceFiles, names: &[String]) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut roots: Vec<String> = Vec::new();
    for (dir, prefix) in [("", "requirements"), ("requirements", "")] {
        for name in files.list(dir)? {
            let Some(stem) = name.strip_suffix(".txt") else {
                continue;
            };
            let Some(rest) = stem.strip_prefix(prefix) else {
                continue;
            };
            let rest = rest.trim_start_matches(['-', '_']);
            if CUDA_REQUIREMENT_STEMS.contains(&rest) {
                roots.push(join(dir, &name));
            }
        }
    }
    for root in roots {
        read_requirement_file(files, &root, &mut seen, &mut out)?;
    }
    if let Some(bytes) = files.read("pyproject.toml")? {
        out.extend(pyproject_requirements(&String::from_utf8_lossy(&bytes))?);
    }
    if let Some(bytes) = files.read("setup.py")? {
        out.extend(setup_py_pins(&String::from_utf8_lossy(&bytes), names));
    }
    Ok(out)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `dir/../x` → `x`, so includes resolve to tree paths.
fn normalize_path(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

fn read_requirement_file(
    files: &dyn SourceFiles,
    path: &str,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<Found>,
) -> Result<()> {
    if !seen.insert(path.to_string()) {
        return Ok(());
    }
    let Some(bytes) = files.read(path)? else {
        return Err(anyhow!("`{path}` is included but does not exist"));
    };
    let text = String::from_utf8_lossy(&bytes);
    let dir = Path::new(path).parent().unwrap_or(Path::new(""));
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(include) = include_target(line) {
            let target = normalize_path(&PathBuf::from(dir).join(include));
            read_requirement_file(files, &target, seen, out)?;
        } else if !line.starts_with('-') {
            out.push(Found {
                text: line.to_string(),
                file: path.to_string(),
                line: i + 1,
                strippable: true,
            });
        }
    }
    Ok(())
}

/// A ` #` starts a comment (a `#` inside a URL fragment does not).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    line.find(" #").map_or(line, |i| &line[..i])
}

fn include_target(line: &str) -> Option<&str> {
    for flag in ["--requirement", "-r"] {
        if let Some(rest) = line.strip_prefix(flag) {
            let rest = rest.trim_start_matches('=').trim();
            if !rest.is_empty() {
                return Some(rest);
            }
        }
    }
    None
}

fn pyproject_requirements(text: &str) -> Result<Vec<Found>> {
    let doc: toml::Table = toml::from_str(text).context("failed to parse `pyproject.toml`")?;
    let lists = [
        doc.get("build-system").and_then(|b| b.get("requires")),
        doc.get("project").and_then(|p| p.get("dependencies")),
    ];
    let mut out = Vec::new();
    for item in lists.into_iter().flatten().filter_map(|v| v.as_array()) {
        for req in item.iter().filter_map(|v| v.as_str()) {
            out.push(Found {
                text: req.to_string(),
                file: "pyproject.toml".into(),
                line: line_of(text, req),
                strippable: true,
            });
        }
    }
    Ok(out)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

/// The setup.py heuristic of the module docs.
fn setup_py_pins(text: &str, names: &[String]) -> Vec<Found> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for literal in quoted_strings(line) {
            let Some((name, spec)) = literal.split_once("==") else {
                continue;
            };
            let name = name.trim();
            if !names.contains(&normalize_name(name)) {
                continue;
            }
            let spec = spec.trim();
            let version = match spec.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(var) => match assigned_string(text, var) {
                    Some(v) => v,
                    None => continue,
                },
                None => spec.to_string(),
            };
            if Version::from_str(&version).is_ok() {
                out.push(Found {
                    text: format!("{name}=={version}"),
                    file: "setup.py".into(),
                    line: i + 1,
                    strippable: false,
                });
            }
        }
    }
    out
}

fn quoted_strings(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'']) {
        let quote = rest.as_bytes()[start] as char;
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// The value of a top-level `NAME = "…"` line.
fn assigned_string(text: &str, var: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (lhs, rhs) = l.split_once('=')?;
        if lhs.trim() != var || l.starts_with(char::is_whitespace) {
            return None;
        }
        quoted_strings(rhs).first().map(|s| s.to_string())
    })
}

/// Which packages the set builds, by normalized name: the recipes that make wheels, under
/// their names and their `[output] wheels` names. Source-only recipes make no distribution.
pub fn built_versions(set: &RecipeSet) -> BTreeMap<PackageName, Version> {
    let mut out = BTreeMap::new();
    for r in set.recipes.iter().filter(|r| r.output == OutputKind::Wheel) {
        for name in std::iter::once(&r.name).chain(&r.wheel_names) {
            if let Some(name) = crate::pkgname::package_name(name) {
                out.insert(name, r.version.clone());
            }
        }
    }
    out
}

/// What became of one requirement on a set package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Satisfied,
    Violated,
    /// Its marker is false for the target.
    MarkerFalse,
    /// Removed by `use_existing_torch.py` before the build.
    Stripped,
    /// A URL or a bare name: nothing to compare.
    Unversioned,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinCheck {
    /// Who requires: the recipe, its version, and where (`file:line`, or `recipe file`).
    pub recipe: String,
    pub version: String,
    pub location: String,
    /// The requirement as written.
    pub requirement: String,
    /// The set package it names (normalized) and the version the set builds.
    pub package: String,
    pub built: Version,
    pub verdict: Verdict,
}

impl PinCheck {
    pub fn render(&self) -> String {
        let head = format!(
            "{} {} requires {} ({})",
            self.recipe, self.version, self.requirement, self.location
        );
        match self.verdict {
            Verdict::Satisfied => {
                format!("{head}; the set builds {} {} ✔", self.package, self.built)
            }
            Verdict::Violated => {
                format!("{head}; the set builds {} {} ✘", self.package, self.built)
            }
            Verdict::MarkerFalse => format!("{head}; marker is false for the target, skipped"),
            Verdict::Stripped => format!("{head}; stripped by {USE_EXISTING_TORCH}"),
            Verdict::Unversioned => format!("{head}; no version to check"),
        }
    }
}

/// Where a requirement comes from, for [`check_requirements`].
pub struct Origin<'a> {
    pub recipe: &'a str,
    pub version: &'a Version,
    /// The recipe runs `use_existing_torch.py`.
    pub strips_torch: bool,
}

/// Checks each requirement that names a set package (other names are ignored). A requirement
/// that does not parse as PEP 508 is an error naming its location.
pub fn check_requirements(
    origin: &Origin,
    found: &[Found],
    built: &BTreeMap<PackageName, Version>,
    env: &MarkerEnvironment,
) -> Result<Vec<PinCheck>> {
    let mut out = Vec::new();
    for f in found {
        let location = if f.line == 0 {
            f.file.clone()
        } else {
            format!("{}:{}", f.file, f.line)
        };
        let req = Requirement::<pep508_rs::VerbatimUrl>::from_str(&f.text).map_err(|e| {
            anyhow!(
                "{} {}: `{}` ({location}) is not a PEP 508 requirement: {e}",
                origin.recipe,
                origin.version,
                f.text
            )
        })?;
        let Some(version) = built.get(&req.name) else {
            continue;
        };
        if crate::pkgname::package_name(origin.recipe).as_ref() == Some(&req.name) {
            continue;
        }
        // The script drops every line that mentions torch (torchvision, torchaudio too).
        let verdict =
            if f.strippable && origin.strips_torch && f.text.to_lowercase().contains("torch") {
                Verdict::Stripped
            } else if !req.evaluate_markers(env, &[]) {
                Verdict::MarkerFalse
            } else {
                match &req.version_or_url {
                    Some(VersionOrUrl::VersionSpecifier(spec)) => verdict_of(spec, version),
                    _ => Verdict::Unversioned,
                }
            };
        out.push(PinCheck {
            recipe: origin.recipe.to_string(),
            version: origin.version.to_string(),
            location,
            requirement: f.text.clone(),
            package: req.name.to_string(),
            built: version.clone(),
            verdict,
        });
    }
    Ok(out)
}

fn verdict_of(spec: &VersionSpecifiers, version: &Version) -> Verdict {
    if spec.contains(version) {
        Verdict::Satisfied
    } else {
        Verdict::Violated
    }
}

/// Whether a recipe's build steps run `use_existing_torch.py`.
pub fn strips_torch(recipe: &crate::recipe::Recipe) -> bool {
    recipe.steps.iter().any(|s| match &s.kind {
        StepKind::Script(t) => t.raw.contains(USE_EXISTING_TORCH),
        StepKind::Argv(a) => a.iter().any(|t| t.raw.contains(USE_EXISTING_TORCH)),
    })
}

/// The pins the recipes of a set declare themselves (`[depends] python`) on set packages.
pub fn declared_pins(set: &RecipeSet, env: &MarkerEnvironment) -> Result<Vec<PinCheck>> {
    let built = built_versions(set);
    let mut out = Vec::new();
    for r in &set.recipes {
        let found: Vec<Found> = r
            .python_requires
            .iter()
            .map(|text| Found {
                text: text.clone(),
                file: r.file.clone(),
                line: line_of(&r.text, text),
                strippable: false,
            })
            .collect();
        let origin = Origin {
            recipe: &r.name,
            version: &r.version,
            strips_torch: false,
        };
        out.extend(check_requirements(&origin, &found, &built, env)?);
    }
    Ok(out)
}

/// True for the all-zero commit recipes use while the real one is unknown.
pub fn is_placeholder_commit(commit: &str) -> bool {
    commit == PLACEHOLDER_COMMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory tree.
    struct Tree(BTreeMap<&'static str, &'static str>);

    impl SourceFiles for Tree {
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(path).map(|s| s.as_bytes().to_vec()))
        }
        fn list(&self, dir: &str) -> Result<Vec<String>> {
            Ok(self
                .0
                .keys()
                .filter_map(|k| {
                    let rest = if dir.is_empty() {
                        *k
                    } else {
                        k.strip_prefix(dir)?.strip_prefix('/')?
                    };
                    (!rest.contains('/')).then(|| rest.to_string())
                })
                .collect())
        }
    }

    fn names() -> Vec<String> {
        vec!["torch".into(), "vllm-flash-attn".into()]
    }

    #[test]
    fn includes_are_followed_and_other_devices_skipped() {
        let tree = Tree(BTreeMap::from([
            (
                "requirements/cuda.txt",
                "# pins\n-r common.txt\ntorch==2.9.0 # ours\n",
            ),
            ("requirements/common.txt", "numpy\n--extra-index-url x\n"),
            ("requirements/rocm.txt", "torch==2.9.0+rocm\n"),
        ]));
        let found = upstream_requirements(&tree, &names()).unwrap();
        let got: Vec<_> = found
            .iter()
            .map(|f| format!("{}:{} {}", f.file, f.line, f.text))
            .collect();
        assert_eq!(
            got,
            [
                "requirements/common.txt:1 numpy",
                "requirements/cuda.txt:3 torch==2.9.0"
            ]
        );
    }

    #[test]
    fn setup_py_literal_and_fstring_pins_are_found() {
        let tree = Tree(BTreeMap::from([(
            "setup.py",
            "PYTORCH_VERSION = \"2.3.1\"\nreqs = [f\"torch == {PYTORCH_VERSION}\"]\nold = ['torch == 2.3.0']\n",
        )]));
        let found = upstream_requirements(&tree, &names()).unwrap();
        let got: Vec<_> = found.iter().map(|f| (f.line, f.text.as_str())).collect();
        assert_eq!(got, [(2, "torch==2.3.1"), (3, "torch==2.3.0")]);
    }

    #[test]
    fn pyproject_lists_are_read_with_lines() {
        let text = "[build-system]\nrequires = [\n  \"cmake>=3.26\",\n  \"torch == 2.9.0\",\n]\n[project]\ndependencies = [\"regex\"]\n";
        let found = pyproject_requirements(text).unwrap();
        assert_eq!(found[1].text, "torch == 2.9.0");
        assert_eq!(found[1].line, 4);
        assert_eq!(found[2].line, 7);
    }
}
