//! The resolve phase shared by `fetch`, `prepare` and `build`: every source and resource of the
//! selected recipes is fetched (or, offline, found in the caches) before anything is patched,
//! and every patch and edit of every recipe is checked before any tree is written. Missing items
//! and failures are collected and reported together, not one per run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::net::UrlPolicy;
use crate::recipe::template::Vars;
use crate::recipe::{Recipe, Source};
use crate::redact::redact;
use crate::report::Reporter;
use crate::source::git::{Anchor, MirrorCache, Missing, Submodule};
use crate::source::prepare::{self, PrepareJob, Prepared};
use crate::source::resource::{fetch_resource, ResourceError};

/// What `fetch` learned about one recipe.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub submodules: Vec<Submodule>,
    pub resources: BTreeMap<String, PathBuf>,
    /// How many `[[repository]]` mirrors hold their pinned commits.
    pub repositories: usize,
}

/// Fetches every git source (with its selected submodules), `[[repository]]` and resource of
/// `recipes`.
pub fn fetch_all(
    recipes: &[&Recipe],
    cache: &MirrorCache,
    cache_dir: &Path,
    policy: &dyn UrlPolicy,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Fetched>> {
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    let mut failed = Failed::default();
    for r in recipes {
        reporter.phase(&r.name, "fetch");
        let problems = missing.len() + failed.len();
        let mut got = Fetched::default();
        if let Source::Git {
            url,
            tag,
            branch,
            commit,
            submodules,
        } = &r.source
        {
            let anchor = Anchor::of(tag.as_deref(), branch.as_deref());
            match cache.fetch(url, commit, anchor, submodules) {
                Ok(subs) => got.submodules = subs,
                Err(e) => git_problem(r, e, &mut missing, &mut failed),
            }
        }
        for repo in &r.repositories {
            let anchor = Anchor::of(repo.tag.as_deref(), repo.branch.as_deref());
            match cache.fetch(&repo.url, &repo.commit, anchor, &repo.submodules) {
                Ok(_) => got.repositories += 1,
                Err(e) => git_problem(r, e.context("[[repository]]"), &mut missing, &mut failed),
            }
        }
        for res in &r.resources {
            match fetch_resource(res, cache_dir, policy) {
                Ok(p) => {
                    got.resources.insert(res.name.clone(), p);
                }
                Err(ResourceError::Offline { name, url, .. }) => {
                    missing.push(format!("{}: resource `{name}` {}", r.name, redact(&url)))
                }
                Err(e) => {
                    failed.hints.extend(crate::error::Hint::hint(&e));
                    failed.lines.push(format!("{}: {e}", r.name));
                }
            }
        }
        let summary = if missing.len() + failed.len() > problems {
            "not fetched".to_string()
        } else {
            let repos = match got.repositories {
                0 => String::new(),
                n => format!(", {n} repositories"),
            };
            format!(
                "fetched ({} submodules, {} resources{repos})",
                got.submodules.len(),
                got.resources.len()
            )
        };
        reporter.finished(&r.name, &summary);
        out.insert(r.name.clone(), got);
    }
    report(missing, failed)?;
    Ok(out)
}

/// Failures folded into one error: a line per failure, and their hints (each said once).
#[derive(Default)]
struct Failed {
    lines: Vec<String>,
    hints: Vec<String>,
}

impl Failed {
    fn len(&self) -> usize {
        self.lines.len()
    }
}

/// Sorts a git error: offline and missing from the cache, or a failure naming the recipe file.
fn git_problem(r: &Recipe, e: anyhow::Error, missing: &mut Vec<String>, failed: &mut Failed) {
    match e.downcast_ref::<Missing>() {
        Some(m) => missing.push(format!(
            "{}: git {} at {}",
            r.name,
            redact(&m.url),
            m.commit
        )),
        None => {
            failed.hints.extend(crate::error::hints(&e));
            failed.lines.push(format!("{} ({}): {e:#}", r.name, r.file));
        }
    }
}

fn report(missing: Vec<String>, failed: Failed) -> Result<()> {
    if !missing.is_empty() {
        let mut msg = format!(
            "offline: {} item(s) missing from the caches:",
            missing.len()
        );
        for m in &missing {
            msg.push_str(&format!("\n  - {m}"));
        }
        for f in &failed.lines {
            msg.push_str(&format!("\n  - {f}"));
        }
        let mut hints = vec![
            "run `jetforge fetch` where the network works, then copy the cache \
                              directory (see `jetforge plan`)"
                .to_string(),
        ];
        hints.extend(failed.hints);
        return Err(crate::error::failure_hints(msg, hints));
    }
    if !failed.lines.is_empty() {
        let msg = format!(
            "failed to fetch {} source(s):\n{}",
            failed.len(),
            failed
                .lines
                .iter()
                .map(|f| format!("  - {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        return Err(crate::error::failure_hints(msg, failed.hints));
    }
    Ok(())
}

/// What preparing a tree needs from a recipe's plan: where the tree goes and the values of the
/// recipe's `{placeholders}`. `plan::RecipePlan` implements it, so `source` stays below `plan`.
pub trait TreePlan {
    fn source_dir(&self) -> &Path;
    fn vars(&self) -> &Vars;
}

/// Prepares the planned recipes' trees: all patches of all recipes are checked before any tree
/// is written. Git trees already prepared identically are left alone (their mtimes drive
/// incremental builds); local directories are always re-synced (cheap: unchanged files stay).
pub fn prepare_all<P: TreePlan>(
    plans: &[&P],
    recipes: &[&Recipe],
    cache: &MirrorCache,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Prepared>> {
    let mut jobs = Vec::new();
    let mut done = BTreeMap::new();
    for (p, r) in plans.iter().zip(recipes) {
        let job = PrepareJob {
            recipe: r,
            source_dir: p.source_dir().to_path_buf(),
            vars: p.vars().clone(),
        };
        let is_git = matches!(r.source, Source::Git { .. });
        if is_git && prepare::is_prepared(&job)? {
            if let Some(marker) = read_marker(&job) {
                done.insert(r.name.clone(), marker);
                continue;
            }
        }
        reporter.phase(&r.name, "patch");
        jobs.push(job);
    }
    for prepared in prepare::prepare_all(cache, &jobs)? {
        done.insert(prepared.recipe.clone(), prepared);
    }
    Ok(done)
}

/// The submodules recorded when `r`'s tree was prepared, if it is prepared as planned now.
pub fn prepared_marker(
    r: &Recipe,
    p: &impl TreePlan,
) -> Option<Vec<crate::source::git::Submodule>> {
    let job = PrepareJob {
        recipe: r,
        source_dir: p.source_dir().to_path_buf(),
        vars: p.vars().clone(),
    };
    if !prepare::is_prepared(&job).unwrap_or(false) {
        return None;
    }
    read_marker(&job).map(|m| m.submodules)
}

fn read_marker(job: &PrepareJob) -> Option<Prepared> {
    let text = std::fs::read_to_string(prepare::marker_path(job)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A content hash of a local source directory (for fingerprints of `path` sources).
pub fn tree_hash(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut text = String::new();
    for rel in files {
        let bytes = std::fs::read(dir.join(&rel))
            .with_context(|| format!("failed to read `{}`", dir.join(&rel).display()))?;
        text.push_str(&format!("{rel}\0{}\n", crate::hash::sha256_hex(&bytes)));
    }
    Ok(crate::hash::sha256_hex(text.as_bytes()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in crate::paths::dir_entries(dir)? {
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            collect(root, &path, out)?;
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    Ok(())
}
