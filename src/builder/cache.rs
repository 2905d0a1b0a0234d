//! The cache decision: each recipe's fingerprint (dependencies first), and whether its result
//! comes from the wheelhouse, a remote cache, an installed tree that is current, or a build (and
//! why). `plan` and `build` both call [`decide`], so what `plan` says is what `build` does.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};

use super::driver::BuildContext;
use crate::fingerprint::{self, Fingerprint};
use crate::host::HostFacts;
use crate::plan::RecipePlan;
use crate::recipe::{Recipe, Source};
use crate::source::phase as sources;
use crate::source::prepare::Prepared;
use crate::source::resource::expected_sha256;
use crate::target::Target;
use crate::wheelhouse::check::check_wheel;
use crate::wheelhouse::remote::RemoteHit;
use crate::wheelhouse::store::EntryMeta;
use crate::wheelhouse::wheel::WheelInfo;

/// Per-recipe facts gathered before building.
pub(super) struct Resolved {
    pub(super) fingerprint: Fingerprint,
    pub(super) commit: Option<String>,
}

/// Fingerprints in build order, so each sees its dependencies' keys.
pub(super) fn fingerprints(
    cx: &BuildContext,
    selected: &[&Recipe],
    prepared: &BTreeMap<String, Prepared>,
) -> Result<BTreeMap<String, Resolved>> {
    let mut out: BTreeMap<String, Resolved> = BTreeMap::new();
    let cuda = cx.facts.cuda.as_ref().map(|c| c.version.as_str());
    for r in selected {
        let subs = prepared
            .get(&r.name)
            .map(|p| p.submodules.clone())
            .unwrap_or_default();
        let deps: Vec<(String, String)> = r
            .depends
            .iter()
            .map(|d| (d.clone(), out[d].fingerprint.hash.clone()))
            .collect();
        let first_use = r
            .resources
            .iter()
            .filter(|res| res.sha256.is_none())
            .map(|res| {
                let sha = expected_sha256(res, cx.cache_dir)?.unwrap_or_default();
                Ok((res.name.clone(), sha))
            })
            .collect::<Result<Vec<_>>>()?;
        let fp = fingerprint_of(r, &subs, cx.target, cuda, &deps, &first_use)?;
        let commit = r.source.commit().map(str::to_string);
        out.insert(
            r.name.clone(),
            Resolved {
                fingerprint: fp,
                commit,
            },
        );
    }
    Ok(out)
}

pub(super) fn fingerprint_of(
    r: &Recipe,
    submodules: &[crate::source::git::Submodule],
    target: &Target,
    cuda: Option<&str>,
    deps: &[(String, String)],
    first_use: &[(String, String)],
) -> Result<Fingerprint> {
    let subs: Vec<(String, String)> = submodules
        .iter()
        .map(|s| (s.path.clone(), s.commit.clone()))
        .collect();
    let tree = match &r.source {
        Source::Path { dir } => Some(sources::tree_hash(dir)?),
        Source::Git { .. } => None,
    };
    Ok(fingerprint::compute(&fingerprint::Inputs {
        recipe: r,
        commit: r.source.commit(),
        submodules: &subs,
        tree_hash: tree.as_deref(),
        target,
        cuda_version: cuda,
        deps,
        first_use,
    }))
}

/// Fingerprints that can be known without fetching anything (for `plan`): a git recipe needs
/// its prepared tree's marker (which records the submodule commits); a recipe whose key, or a
/// dependency's, is unknown maps to `None`.
pub fn known_fingerprints(
    plans: &[RecipePlan],
    selected: &[&Recipe],
    target: &Target,
    facts: &HostFacts,
) -> BTreeMap<String, Option<Fingerprint>> {
    let mut out: BTreeMap<String, Option<Fingerprint>> = BTreeMap::new();
    let cuda = facts.cuda.as_ref().map(|c| c.version.as_str());
    for (r, p) in selected.iter().zip(plans) {
        let subs = match &r.source {
            Source::Git { .. } => sources::prepared_marker(r, p),
            Source::Path { .. } => Some(Vec::new()),
        };
        let deps: Option<Vec<(String, String)>> = r
            .depends
            .iter()
            .map(|d| out.get(d).cloned().flatten().map(|f| (d.clone(), f.hash)))
            .collect();
        // A first-use resource never fetched has no digest yet, so no key either.
        let first_use: Option<Vec<(String, String)>> = p
            .resources
            .iter()
            .filter(|res| res.first_use)
            .map(|res| Some((res.name.clone(), res.sha256.clone()?)))
            .collect();
        let fp = match (subs, deps, first_use) {
            (Some(subs), Some(deps), Some(first_use)) => {
                fingerprint_of(r, &subs, target, cuda, &deps, &first_use).ok()
            }
            _ => None,
        };
        out.insert(r.name.clone(), fp);
    }
    out
}

/// The wheels of this fingerprint from the first remote cache whose every wheel downloads with
/// the published sha256 and passes the wheel checks. A cache that fails is a warning and the
/// next one (or the build) takes over: a bad download must never stop a build.
pub(super) fn remote_cached(
    cx: &BuildContext,
    r: &Recipe,
    res: &Resolved,
) -> Result<Option<(Vec<String>, String)>> {
    let warn = |m: &str| cx.reporter.message(&format!("warning: {}: {m}", r.name));
    for hit in cx.remote.lookup(&res.fingerprint.hash, &mut |m| warn(m)) {
        match fetch_remote(cx, r, res, &hit) {
            Ok(wheels) => return Ok(Some((wheels, hit.url))),
            Err(e) => warn(&format!(
                "rejected the wheel from remote cache {}, building instead:\n{}",
                hit.url,
                crate::error::render(&e)
            )),
        }
    }
    Ok(None)
}

/// Downloads and checks every wheel of `hit` before any goes into the wheelhouse.
pub(super) fn fetch_remote(
    cx: &BuildContext,
    r: &Recipe,
    res: &Resolved,
    hit: &RemoteHit,
) -> Result<Vec<String>> {
    cx.reporter
        .phase(&r.name, &format!("download from {}", hit.url));
    std::fs::create_dir_all(&cx.layout.root)
        .with_context(|| format!("failed to create `{}`", cx.layout.root.display()))?;
    let tmp = tempfile::tempdir_in(&cx.layout.root).with_context(|| {
        format!(
            "failed to create a temp dir in `{}`",
            cx.layout.root.display()
        )
    })?;
    let version: pep440_rs::Version = r.version.parse().map_err(|e| anyhow!("{e}"))?;
    let mut wheels = Vec::new();
    for e in &hit.entries {
        let path = cx.remote.download(hit, e, tmp.path())?;
        let info = WheelInfo::read(&path)?;
        check_wheel(&info, &version, cx.target)
            .map_err(|errs| anyhow!("`{}` failed its checks:\n{errs}", e.file))?;
        wheels.push(path);
    }
    let meta = EntryMeta {
        fingerprint: res.fingerprint.hash.clone(),
        commit: res.commit.clone(),
        target: cx.target.name.clone(),
        recipe: Some(r.name.clone()),
    };
    wheels
        .iter()
        .map(|w| Ok(cx.wheelhouse.add(w, &meta)?.entry.file))
        .collect()
}
