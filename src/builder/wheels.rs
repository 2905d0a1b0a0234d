//! The wheels of a build: the dependency wheels a recipe needs, the wheels its steps wrote (found,
//! checked, verified, or moved to `broken/`), and the set-wide check of `Requires-Dist` pins.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

use super::driver::BuildContext;
use crate::recipe::{OutputKind, Recipe};
use crate::wheelhouse::check::{check_requirements, check_wheel};
use crate::wheelhouse::wheel::WheelInfo;

/// Wheel files of every recipe `r` depends on or comes after, directly or not, that the
/// wheelhouse has.
pub(super) fn dependency_wheels(cx: &BuildContext, r: &Recipe) -> Result<Vec<PathBuf>> {
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

/// Finds the wheels the steps wrote and checks them (the verify snippet comes next, see
/// `verify::verify_wheels`). A wheel failing its checks goes to `broken/` and fails the recipe.
pub(super) fn collect_wheels(cx: &BuildContext, r: &Recipe) -> Result<Vec<PathBuf>> {
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
