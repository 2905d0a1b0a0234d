//! The cache decision: each recipe's fingerprint (dependencies first), and whether its result
//! comes from the wheelhouse, a remote cache, an installed tree that is current, or a build (and
//! why). `plan` and `build` both call [`decide`], so what `plan` says is what `build` does.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::driver::BuildContext;
use crate::fingerprint::{self, Fingerprint};
use crate::host::HostFacts;
use crate::plan::RecipePlan;
use crate::recipe::{OutputKind, Recipe, Source};
use crate::source::phase as sources;
use crate::source::prepare::Prepared;
use crate::source::resource::expected_sha256;
use crate::state::RecipeState;
use crate::target::Target;
use crate::wheelhouse::check::check_wheel;
use crate::wheelhouse::remote::{RemoteCaches, RemoteHit};
use crate::wheelhouse::store::{Cached, EntryMeta};
use crate::wheelhouse::verified::VerifyState;
use crate::wheelhouse::wheel::WheelInfo;

/// Where a recipe's result comes from, decided once per recipe by [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheDecision {
    /// The wheelhouse has every wheel of this fingerprint, intact: their file names.
    Local(Vec<String>),
    /// A remote cache (named redacted) has them: for `plan` the published names, for `build`
    /// the names stored after the download and the wheel checks.
    Remote { url: String, wheels: Vec<String> },
    /// A tree recipe's installed tree was built with this fingerprint and is still there.
    Tree,
    /// It is built, for these reasons.
    Build(Vec<String>),
}

impl CacheDecision {
    /// The `cache` line of `plan`.
    pub fn describe(&self) -> String {
        match self {
            CacheDecision::Local(files) => format!("cached ({})", files.join(", ")),
            CacheDecision::Build(why) => format!("will build: {}", why.join("; ")),
            other => other.finished().unwrap_or_default(),
        }
    }

    /// What `build` reports for a recipe it does not build; `None` when it builds.
    pub fn finished(&self) -> Option<String> {
        match self {
            CacheDecision::Local(_) => Some("cached".into()),
            CacheDecision::Remote { url, .. } => Some(format!("cached (remote: {url})")),
            CacheDecision::Tree => Some("cached (installed tree)".into()),
            CacheDecision::Build(_) => None,
        }
    }
}

/// What a cache decision is made from, besides the lookups [`decide`] takes as closures.
pub struct Question<'a> {
    pub output: OutputKind,
    pub fingerprint: &'a Fingerprint,
    /// The fingerprint of the recipe's last finished build, to say what changed.
    pub last_built: Option<&'a Fingerprint>,
    /// `--force` names it.
    pub forced: bool,
    /// The wheelhouse the local lookup reads, named in the reason when nothing else changed.
    pub wheelhouse: &'a Path,
}

/// The one cache decision, for `plan` and `build`: `--force` builds; a current installed tree
/// is kept; a wheel recipe takes its wheels from the wheelhouse, else from the first remote
/// cache that has them (a local entry that is unusable does not stop that), else builds. The
/// lookups are closures, called only when needed and in this order, so that `plan` only looks
/// where `build` downloads and stores. A source recipe is prepared, not decided.
pub fn decide(
    q: &Question,
    tree_current: impl FnOnce() -> bool,
    local: impl FnOnce() -> Result<Cached>,
    remote: impl FnOnce() -> Result<Option<(String, Vec<String>)>>,
) -> Result<CacheDecision> {
    if q.forced {
        return Ok(CacheDecision::Build(vec!["--force".to_string()]));
    }
    let mut unusable = None;
    match q.output {
        OutputKind::Tree if tree_current() => return Ok(CacheDecision::Tree),
        OutputKind::Wheel => {
            match local()? {
                Cached::Hit(wheels) => return Ok(CacheDecision::Local(wheels)),
                Cached::Unusable(why) => unusable = Some(why),
                Cached::Miss => {}
            }
            if let Some((url, wheels)) = remote()? {
                return Ok(CacheDecision::Remote { url, wheels });
            }
        }
        _ => {}
    }
    Ok(CacheDecision::Build(match unusable {
        Some(why) => vec![why],
        None => rebuild_reasons(q.last_built, q.fingerprint, q.wheelhouse),
    }))
}

/// What changed since the last build; when nothing did, that the wheelhouse lacks its wheel.
fn rebuild_reasons(
    last: Option<&Fingerprint>,
    now: &Fingerprint,
    wheelhouse: &Path,
) -> Vec<String> {
    let why = fingerprint::explain(last, now);
    if why.is_empty() {
        vec![format!(
            "no wheel of this build is recorded in the wheelhouse `{}`",
            wheelhouse.display()
        )]
    } else {
        why
    }
}

/// A tree recipe's `${{ out }}` is current when its last build finished every step with this
/// fingerprint and the tree is still there.
pub fn tree_is_current(state: &RecipeState, steps: usize, fp: &Fingerprint, out: &Path) -> bool {
    state.last_built.as_ref().map(|f| &f.hash) == Some(&fp.hash)
        && state.steps_done >= steps
        && std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some())
}

/// The remote caches that have wheels of this fingerprint for this target, in order.
pub fn remote_hits(
    remote: &RemoteCaches,
    fingerprint: &str,
    target: &str,
    warn: &mut dyn FnMut(&str),
) -> Vec<RemoteHit> {
    remote
        .lookup(fingerprint, warn)
        .into_iter()
        .filter(|h| h.entries.iter().all(|e| e.target == target))
        .collect()
}

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

/// The cache and stored wheels of this fingerprint from the first remote cache whose every wheel downloads with
/// the published sha256 and passes the wheel checks. A cache that fails is a warning and the
/// next one (or the build) takes over: a bad download must never stop a build.
pub(super) fn remote_cached(
    cx: &BuildContext,
    r: &Recipe,
    res: &Resolved,
) -> Result<Option<(String, Vec<String>)>> {
    let warn = |m: &str| cx.reporter.message(&format!("warning: {}: {m}", r.name));
    for hit in remote_hits(
        cx.remote,
        &res.fingerprint.hash,
        &cx.target.name,
        &mut |m| warn(m),
    ) {
        match fetch_remote(cx, r, res, &hit) {
            Ok(wheels) => return Ok(Some((hit.url, wheels))),
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
    let mut wheels = Vec::new();
    for e in &hit.entries {
        let path = cx.remote.download(hit, e, tmp.path())?;
        let info = WheelInfo::read(&path)?;
        check_wheel(&info, &r.version, cx.target)
            .map_err(|errs| errs.into_error(&format!("`{}` failed its checks:", e.file), &[]))?;
        wheels.push((path, e));
    }
    // The cache's word on verification comes along: its state, or a device's attestation.
    let attested = cx
        .remote
        .attestations(hit, &res.fingerprint.hash, &mut |w| {
            cx.reporter.message(&format!("warning: {}: {w}", r.name))
        });
    wheels
        .iter()
        .map(|(w, e)| {
            let verify = if attested.attests(&e.fingerprint, &e.sha256) {
                Some(VerifyState::Passed)
            } else {
                e.verify.clone()
            };
            let meta = EntryMeta {
                fingerprint: res.fingerprint.hash.clone(),
                commit: res.commit.clone(),
                target: cx.target.name.clone(),
                recipe: Some(r.name.clone()),
                verify,
            };
            Ok(cx.wheelhouse.add(w, &meta)?.entry.file)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(hash: &str, commit: &str) -> Fingerprint {
        Fingerprint {
            hash: hash.to_string(),
            parts: [("commit".to_string(), commit.to_string())].into(),
        }
    }

    /// The decision for a wheel recipe built before as `last`, now `now`, that neither the
    /// wheelhouse nor a remote cache has.
    fn wheelhouse_miss(now: &Fingerprint, last: &Fingerprint) -> CacheDecision {
        decide(
            &ask(OutputKind::Wheel, false, now, Some(last)),
            || false,
            || Ok(Cached::Miss),
            || Ok(None),
        )
        .unwrap()
    }

    fn ask<'a>(
        output: OutputKind,
        forced: bool,
        now: &'a Fingerprint,
        last: Option<&'a Fingerprint>,
    ) -> Question<'a> {
        Question {
            output,
            fingerprint: now,
            last_built: last,
            forced,
            wheelhouse: Path::new("wh"),
        }
    }

    fn remote_has() -> Result<Option<(String, Vec<String>)>> {
        Ok(Some(("https://cache/".into(), vec!["a.whl".into()])))
    }

    #[test]
    fn force_builds_without_looking_anywhere() {
        let now = fp("new", "c2");
        let d = decide(
            &ask(OutputKind::Wheel, true, &now, None),
            || panic!("tree looked at"),
            || panic!("wheelhouse looked at"),
            || panic!("remote looked at"),
        )
        .unwrap();
        assert_eq!(d, CacheDecision::Build(vec!["--force".into()]));
        assert_eq!(d.finished(), None);
    }

    #[test]
    fn a_local_hit_is_taken_without_asking_the_remote_caches() {
        let now = fp("new", "c2");
        let d = decide(
            &ask(OutputKind::Wheel, false, &now, None),
            || panic!("tree looked at"),
            || Ok(Cached::Hit(vec!["a.whl".into()])),
            || panic!("remote looked at"),
        )
        .unwrap();
        assert_eq!(d.describe(), "cached (a.whl)");
        assert_eq!(d.finished().as_deref(), Some("cached"));
    }

    #[test]
    fn an_unusable_local_wheel_still_lets_a_remote_cache_serve_it() {
        let now = fp("new", "c2");
        let d = decide(
            &ask(OutputKind::Wheel, false, &now, None),
            || false,
            || Ok(Cached::Unusable("wheel a.whl is missing".into())),
            remote_has,
        )
        .unwrap();
        assert_eq!(
            d,
            CacheDecision::Remote {
                url: "https://cache/".into(),
                wheels: vec!["a.whl".into()]
            }
        );
        assert_eq!(d.describe(), "cached (remote: https://cache/)");
        assert_eq!(d.finished(), Some(d.describe()));
    }

    #[test]
    fn an_unusable_local_wheel_is_the_reason_when_no_remote_cache_has_it() {
        let now = fp("new", "c2");
        let d = decide(
            &ask(OutputKind::Wheel, false, &now, None),
            || false,
            || Ok(Cached::Unusable("wheel a.whl is missing".into())),
            || Ok(None),
        )
        .unwrap();
        assert_eq!(d.describe(), "will build: wheel a.whl is missing");
    }

    #[test]
    fn a_miss_says_what_changed_since_the_last_build() {
        let now = fp("new", "c2");
        let last = fp("old", "c1");
        let d = wheelhouse_miss(&now, &last);
        let CacheDecision::Build(why) = d else {
            panic!("{d:?}")
        };
        assert_eq!(why, fingerprint::explain(Some(&last), &fp("new", "c2")));
        assert!(!why.is_empty());
    }

    #[test]
    fn a_miss_with_nothing_changed_names_the_wheelhouse() {
        let now = fp("new", "c2");
        let same = fp("new", "c2");
        let d = wheelhouse_miss(&now, &same);
        assert_eq!(
            d.describe(),
            "will build: no wheel of this build is recorded in the wheelhouse `wh`"
        );
    }

    #[test]
    fn a_tree_recipe_is_kept_when_current_and_never_looks_for_wheels() {
        let now = fp("new", "c2");
        let no_wheels = || -> Result<Cached> { panic!("wheelhouse looked at") };
        let no_remote = || -> Result<Option<(String, Vec<String>)>> { panic!("remote looked at") };
        let q = ask(OutputKind::Tree, false, &now, None);
        let d = decide(&q, || true, no_wheels, no_remote).unwrap();
        assert_eq!(d.describe(), "cached (installed tree)");
        let d = decide(&q, || false, no_wheels, no_remote).unwrap();
        assert!(matches!(d, CacheDecision::Build(_)), "{d:?}");
    }

    #[test]
    fn a_tree_is_current_only_with_every_step_done_for_this_key_and_files_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let now = fp("new", "c2");
        let state = RecipeState {
            steps_done: 2,
            last_built: Some(now.clone()),
            ..RecipeState::default()
        };
        assert!(!tree_is_current(&state, 2, &now, &out), "no dir");
        std::fs::create_dir(&out).unwrap();
        assert!(!tree_is_current(&state, 2, &now, &out), "empty dir");
        std::fs::write(out.join("lib.so"), "").unwrap();
        assert!(tree_is_current(&state, 2, &now, &out));
        assert!(!tree_is_current(&state, 3, &now, &out), "a step not done");
        assert!(!tree_is_current(&state, 2, &fp("other", "c3"), &out));
    }
}
