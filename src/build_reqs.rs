//! Build requirements the way pip and uv find them, without build isolation: the prepared
//! source's `pyproject.toml` `[build-system] requires` (PEP 518; without one, PEP 517's
//! setuptools default), with the recipe's `[depends] python` adding to or overriding them by
//! package name. A requirement the set builds (torch, …) is the set's wheel, never the index's:
//! an index torch would be a CPU build. The rest comes from the index through jetforge's wheel
//! cache, so that an offline build later finds them there.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::recipe::{Recipe, RecipeSet};

/// PEP 517's default when a project declares no `[build-system] requires`.
pub const DEFAULT_REQUIRES: &[&str] = &["setuptools>=40.8.0", "wheel"];

/// The wheel cache below the cache dir: build requirements downloaded online, read offline.
pub fn wheel_cache(cache_dir: &Path) -> PathBuf {
    cache_dir.join("wheels-v1")
}

/// Where a requirement was declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Declared {
    /// The project's `pyproject.toml`.
    Pyproject,
    /// PEP 517's default (no `pyproject.toml` or no `[build-system] requires`).
    Default,
    /// The recipe's `[depends] python`; `overrides` is what it replaced.
    Recipe { overrides: Option<String> },
}

/// Where a requirement is installed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Via {
    /// The set's own wheel, built by this recipe.
    SetWheel { recipe: String },
    /// The package index (or, offline, the wheel cache).
    Index,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReq {
    pub requirement: String,
    /// Normalized package name.
    pub name: String,
    pub declared: Declared,
    pub via: Via,
}

impl std::fmt::Display for BuildReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let declared = match &self.declared {
            Declared::Pyproject => "pyproject".to_string(),
            Declared::Default => "PEP 517 default".to_string(),
            Declared::Recipe { overrides: None } => "recipe".to_string(),
            Declared::Recipe { overrides: Some(o) } => format!("recipe, overrides pyproject's {o}"),
        };
        let via = match &self.via {
            Via::SetWheel { recipe } => format!("set wheel of `{recipe}`"),
            Via::Index => "index".to_string(),
        };
        write!(f, "{} ({declared}) from {via}", self.requirement)
    }
}

/// The `[build-system] requires` of `dir/pyproject.toml`, or `None` when the project relies
/// on PEP 517's default (no file, no table or no `requires`).
pub fn read_pyproject(dir: &Path) -> Result<Option<Vec<String>>> {
    let path = dir.join("pyproject.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let doc: toml::Table = toml::from_str(&text).with_context(|| {
        format!(
            "`{}` is not valid TOML; fix the file (an edit of the recipe may have broken it)",
            path.display()
        )
    })?;
    let Some(requires) = doc
        .get("build-system")
        .and_then(|b| b.get("requires"))
        .and_then(|r| r.as_array())
    else {
        return Ok(None);
    };
    requires
        .iter()
        .map(|v| {
            v.as_str().map(str::to_string).with_context(|| {
                format!(
                    "`{}`: [build-system] requires must be a list of strings",
                    path.display()
                )
            })
        })
        .collect::<Result<_>>()
        .map(Some)
}

/// The package name of a PEP 508 requirement, normalized.
pub fn requirement_name(req: &str) -> Result<String> {
    let parsed = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(req)
        .map_err(|e| anyhow::anyhow!("`{req}` is not a PEP 508 requirement: {e}"))?;
    Ok(parsed.name.to_string())
}

/// Merges the project's requirements (`None`: PEP 517's default) with the recipe's `[depends]
/// python` and decides where each comes from.
pub fn resolve(
    project: Option<&[String]>,
    recipe: &[String],
    set: &RecipeSet,
) -> Result<Vec<BuildReq>> {
    let mut out: Vec<BuildReq> = Vec::new();
    let (declared, project): (Declared, Vec<String>) = match project {
        Some(p) => (Declared::Pyproject, p.to_vec()),
        None => (
            Declared::Default,
            DEFAULT_REQUIRES.iter().map(|s| s.to_string()).collect(),
        ),
    };
    for req in project {
        out.push(BuildReq {
            name: requirement_name(&req)?,
            requirement: req,
            declared: declared.clone(),
            via: Via::Index,
        });
    }
    for req in recipe {
        let name = requirement_name(req)?;
        let new = BuildReq {
            requirement: req.clone(),
            name: name.clone(),
            declared: Declared::Recipe { overrides: None },
            via: Via::Index,
        };
        match out.iter_mut().find(|b| b.name == name) {
            Some(old) => {
                let overrides = (old.declared == Declared::Pyproject
                    || old.declared == Declared::Default)
                    .then(|| old.requirement.clone());
                *old = BuildReq {
                    declared: Declared::Recipe { overrides },
                    ..new
                };
            }
            None => out.push(new),
        }
    }
    for b in &mut out {
        if let Some(r) = builder_of(set, &b.name) {
            b.via = Via::SetWheel {
                recipe: r.name.clone(),
            };
        }
    }
    Ok(out)
}

/// The recipe of the set whose wheel is distribution `name`.
pub fn builder_of<'s>(set: &'s RecipeSet, name: &str) -> Option<&'s Recipe> {
    set.recipes.iter().find(|r| {
        r.output == crate::recipe::OutputKind::Wheel && r.distributions().iter().any(|d| d == name)
    })
}

/// A Python snippet that prints each requirement (argv) the running interpreter does not
/// satisfy: not installed, a version outside the specifier; a requirement whose marker is
/// false is satisfied. pip's vendored `packaging` serves where `packaging` is not installed.
pub const UNSATISFIED_PROBE: &str = "\
import sys, importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
for line in sys.argv[1:]:
    r = Requirement(line)
    if r.marker is not None and not r.marker.evaluate():
        continue
    try:
        v = md.version(r.name)
    except md.PackageNotFoundError:
        print(line)
        continue
    if not r.specifier.contains(v, prereleases=True):
        print(line)
";

/// Requirements (of `reqs`) with no wheel of their name in the wheel cache `dir`.
pub fn missing_from_cache(dir: &Path, reqs: &[&BuildReq]) -> Vec<String> {
    let have: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let f = e.file_name().to_string_lossy().into_owned();
                    let stem = f.strip_suffix(".whl")?;
                    Some(crate::pkgname::normalize(stem.split('-').next()?))
                })
                .collect()
        })
        .unwrap_or_default();
    reqs.iter()
        .filter(|b| !have.contains(&b.name))
        .map(|b| b.requirement.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> RecipeSet {
        use crate::recipe::tree::FileTree;
        let sets = crate::recipe::load_sets(
            &FileTree::embedded_recipes(),
            &FileTree::embedded_patches(),
            "recipes",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        sets.pick(None).unwrap().clone()
    }

    #[test]
    fn no_pyproject_means_the_setuptools_default() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_pyproject(tmp.path()).unwrap(), None);
        std::fs::write(tmp.path().join("pyproject.toml"), "[project]\nname = 'x'\n").unwrap();
        assert_eq!(read_pyproject(tmp.path()).unwrap(), None);
        let reqs = resolve(None, &[], &set()).unwrap();
        let shown: Vec<String> = reqs.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            shown,
            [
                "setuptools>=40.8.0 (PEP 517 default) from index",
                "wheel (PEP 517 default) from index"
            ]
        );
    }

    #[test]
    fn the_recipe_overrides_by_name_and_set_packages_are_the_sets_wheels() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("pyproject.toml"),
            "[build-system]\nrequires = [\"setuptools\", \"cmake>=3.18\", \"Torch==2.9.0\"]\n",
        )
        .unwrap();
        let project = read_pyproject(tmp.path()).unwrap().unwrap();
        let recipe = ["cmake>=3.27,<4".to_string(), "ninja".to_string()];
        let shown: Vec<String> = resolve(Some(&project), &recipe, &set())
            .unwrap()
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "setuptools (pyproject) from index",
                "cmake>=3.27,<4 (recipe, overrides pyproject's cmake>=3.18) from index",
                "Torch==2.9.0 (pyproject) from set wheel of `torch`",
                "ninja (recipe) from index",
            ]
        );
    }

    #[test]
    fn missing_from_cache_names_what_has_no_wheel() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("Wheel-0.45.1-py3-none-any.whl"), "").unwrap();
        let reqs = resolve(None, &[], &set()).unwrap();
        let refs: Vec<&BuildReq> = reqs.iter().collect();
        assert_eq!(
            missing_from_cache(tmp.path(), &refs),
            ["setuptools>=40.8.0"]
        );
    }
}
