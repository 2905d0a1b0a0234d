//! The wheels of a build: the dependency wheels a recipe needs, the wheels its steps wrote (found,
//! checked, verified, or moved to `broken/`), and the set-wide check of `Requires-Dist` pins.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::driver::BuildContext;
use crate::recipe::{OutputKind, Recipe};
use crate::wheelhouse::check::{check_requirements, check_wheel};
use crate::wheelhouse::store::ManifestEntry;
use crate::wheelhouse::wheel::WheelInfo;

/// Wheel files of every recipe `r` depends on or comes after, directly or not, that the
/// wheelhouse has.
pub(super) fn dependency_wheels(cx: &BuildContext, r: &Recipe) -> Result<Vec<PathBuf>> {
    Ok(dependency_entries(cx, r)?
        .iter()
        .map(|e| cx.wheelhouse.dir().join(&e.file))
        .collect())
}

/// The manifest entries of [`dependency_wheels`].
pub(super) fn dependency_entries(cx: &BuildContext, r: &Recipe) -> Result<Vec<ManifestEntry>> {
    let want = reachable(r.ordering_deps().map(String::as_str).collect(), |d| {
        cx.set
            .get(d)
            .map(|dep| dep.ordering_deps().map(String::as_str).collect())
            .unwrap_or_default()
    });
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
                .cloned(),
        );
    }
    Ok(out)
}

/// Every name reachable from `roots` through `next`, each once (cycles and diamonds included).
fn reachable<'a>(roots: Vec<&'a str>, next: impl Fn(&str) -> Vec<&'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack = roots;
    while let Some(d) = stack.pop() {
        if seen.insert(d) {
            stack.extend(next(d));
        }
    }
    seen
}

/// The `.whl` files directly in `dir`, sorted.
fn wheel_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut wheels: Vec<PathBuf> = crate::paths::dir_entries(dir)?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    wheels.sort();
    Ok(wheels)
}

/// Removes wheels left in the output dir by an earlier build, so only this build's count.
pub(super) fn clear_wheels(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    for path in wheel_files(out)? {
        std::fs::remove_file(&path)
            .with_context(|| format!("failed to remove `{}`", path.display()))?;
    }
    Ok(())
}

/// Finds the wheels the steps wrote and checks them (the verify snippet comes next, see
/// `verify::verify_wheels`). A wheel failing its checks goes to `broken/` and fails the recipe.
pub(super) fn collect_wheels(cx: &BuildContext, r: &Recipe) -> Result<Vec<PathBuf>> {
    cx.reporter.phase(&r.name, "verify");
    let out = cx.layout.out_dir(&r.name);
    let wheels = wheel_files(&out)?;
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
    for w in &wheels {
        let info = WheelInfo::read(w)?;
        if let Err(errs) = check_wheel(&info, &r.version, cx.target) {
            cx.wheelhouse.add_broken(w, &errs.to_string())?;
            let message = format!(
                "{}: `{}` failed its checks (moved to {}, not into the wheelhouse):",
                r.name,
                info.file(),
                cx.wheelhouse.broken_dir().display()
            );
            return Err(errs.into_error(&message, &[]));
        }
    }
    same_distribution_elsewhere(cx, r, &wheels)?;
    Ok(wheels)
}

/// Refuses a wheel whose distribution (from its METADATA) another recipe of the set already
/// produces for this target: storing it would replace that recipe's wheel, which would then
/// rebuild and replace this one, forever.
pub(super) fn same_distribution_elsewhere(
    cx: &BuildContext,
    r: &Recipe,
    wheels: &[PathBuf],
) -> Result<()> {
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

/// Every wheel of this target in the wheelhouse must have its `Requires-Dist` on set packages
/// satisfied by the versions the set builds.
pub(super) fn check_set_pins(cx: &BuildContext) -> Result<()> {
    let entries = cx.wheelhouse.entries()?;
    let mut versions = BTreeMap::new();
    for r in &cx.set.recipes {
        let declared = r.distributions();
        // The distributions its wheels say they are, whatever the recipe is called.
        let built = entries
            .iter()
            .filter(|e| e.target == cx.target.name && e.is_of(&r.name, &declared))
            .map(|e| e.package.clone());
        for n in declared
            .iter()
            .cloned()
            .chain(built)
            .filter_map(|n| crate::pkgname::package_name(&n))
        {
            versions.insert(n, r.version.clone());
        }
    }
    let infos: Vec<WheelInfo> = entries
        .iter()
        .filter(|e| e.target == cx.target.name)
        .map(|e| WheelInfo::read(&cx.wheelhouse.dir().join(&e.file)))
        .collect::<Result<_, _>>()?;
    check_requirements(&infos, &versions, cx.target).map_err(|errs| {
        errs.into_error(
            "version pins across the set are not satisfied:",
            &["change the recipe versions so every pin holds, or patch the pin (and say why)"],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_followed_through_every_level_once() {
        let graph: BTreeMap<&str, Vec<&str>> = [
            ("vllm", vec!["torch", "triton"]),
            ("triton", vec!["torch"]),
            ("torch", vec!["nccl", "vllm"]),
        ]
        .into();
        let got = reachable(vec!["triton"], |d| {
            graph.get(d).cloned().unwrap_or_default()
        });
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["nccl", "torch", "triton", "vllm"]
        );
    }

    #[test]
    fn clearing_the_output_dir_removes_only_wheels_and_lists_none_after() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        clear_wheels(&out).unwrap();
        for f in ["b-1-py3-none-any.whl", "a-1-py3-none-any.whl", "keep.txt"] {
            std::fs::write(out.join(f), "").unwrap();
        }
        let listed = wheel_files(&out).unwrap();
        assert_eq!(
            listed,
            [
                out.join("a-1-py3-none-any.whl"),
                out.join("b-1-py3-none-any.whl")
            ]
        );
        clear_wheels(&out).unwrap();
        assert!(wheel_files(&out).unwrap().is_empty());
        assert!(out.join("keep.txt").is_file());
    }
}
