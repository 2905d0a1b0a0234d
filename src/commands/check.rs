//! `jetforge check`: load and validate every recipe of every set (syntax, schema, pins,
//! patches, graph, templates) and the target profiles, without network or building; then the
//! version pins the recipes declare, and placeholder commits.
//!
//! `check --deep` (after `jetforge fetch`, still no network): for the selected set, reads the
//! upstream requirement files at each pinned commit from the git mirrors and checks every pin
//! on a set package, the git pins of its CMake FetchContent declarations against the set's
//! source recipes ([`crate::fetch_pins`]), and that every patch and edit applies to the files at
//! that commit.
//! The engine is [`crate::pins`]; this module picks the set, prints and decides the exit code.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Session;
use crate::cli::{CheckArgs, GlobalArgs};
use crate::fetch_pins;
use crate::pins::{self, CommitFiles, Origin, PinCheck, SourceFiles, Verdict};
use crate::recipe::{OutputKind, Recipe, RecipeSet, Source};
use crate::source::git::MirrorCache;
use crate::source::prepare;
use crate::target::{self, Target};
use crate::wheelhouse::check::marker_environment;

pub fn run(g: &GlobalArgs, a: &CheckArgs) -> Result<()> {
    let session = Session::load(g)?;
    let (sets, targets, target) = (&session.sets, &session.targets, &session.target);
    let mut problems = Vec::new();
    for s in &sets.sets {
        if let Some(name) = &g.set {
            if &s.name != name {
                continue;
            }
        }
        let patches: usize = s.recipes.iter().map(|r| r.patches.len()).sum();
        let edits: usize = s.recipes.iter().map(|r| r.edits.len()).sum();
        // The set's verdict comes first and agrees with the lines under it.
        let (lines, set_problems) = check_set(s, target)?;
        let verdict = if set_problems.is_empty() {
            "ok".to_string()
        } else {
            format!("error ({} problem(s))", set_problems.len())
        };
        println!(
            "{verdict}: set `{}`: {} recipes, {patches} patches, {edits} edits; order: {}",
            s.name,
            s.recipes.len(),
            s.recipes
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(" -> ")
        );
        for line in lines {
            println!("{line}");
        }
        problems.extend(set_problems);
    }
    println!(
        "ok: {} target profiles ({})",
        targets.len() + 1,
        targets
            .iter()
            .map(|t| t.name.as_str())
            .chain([target::HOST_TARGET])
            .collect::<Vec<_>>()
            .join(", ")
    );
    if a.deep {
        problems.extend(deep(&session)?);
    }
    finish(problems, a.deep)
}

/// Placeholder commits and the pins the recipes declare: the lines to print and the problems.
fn check_set(set: &RecipeSet, target: &Target) -> Result<(Vec<String>, Vec<String>)> {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for r in &set.recipes {
        if r.source.commit().is_some_and(pins::is_placeholder_commit) {
            let msg = format!(
                "{}:{}: set `{}`: recipe `{}` has the placeholder commit 0000000…; its source \
                 cannot be fetched or checked",
                r.file,
                placeholder_line(&r.text),
                set.name,
                r.name
            );
            lines.push(format!("error: {msg}"));
            problems.push(msg);
        }
    }
    for r in &set.recipes {
        for res in r.resources.iter().filter(|res| res.sha256.is_none()) {
            println!(
                "note: set `{}`: resource `{}` of `{}` ({}) is trusted on first use: `jetforge \
                 fetch` records its sha256, later uses must match",
                set.name, res.name, r.name, r.file
            );
        }
    }
    let checks = pins::declared_pins(set, &marker_environment(target))?;
    let (pin_lines, violations) = render_checks(&checks);
    lines.extend(pin_lines);
    problems.extend(violations);
    Ok((lines, problems))
}

/// Every pin check as a line, and the violations.
fn render_checks(checks: &[PinCheck]) -> (Vec<String>, Vec<String>) {
    let lines: Vec<String> = checks.iter().map(|c| c.render()).collect();
    let violations = checks
        .iter()
        .zip(&lines)
        .filter(|(c, _)| c.verdict == Verdict::Violated)
        .map(|(_, l)| l.clone())
        .collect();
    (lines, violations)
}

/// The 1-based line of the recipe's all-zero commit (1 if it cannot be found).
fn placeholder_line(text: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with("commit") && l.contains(&"0".repeat(40)))
        .map_or(1, |i| i + 1)
}

/// Prints every pin check; returns the violations.
fn report(checks: &[PinCheck]) -> Vec<String> {
    let (lines, violations) = render_checks(checks);
    for line in lines {
        println!("{line}");
    }
    violations
}

fn finish(problems: Vec<String>, deep: bool) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let hint = if deep {
        "a ✘ pin means the set's versions do not go together: change the recipe's version or \
         commit, or the pin with an [[edit]]; a recipe missing from the cache needs `jetforge \
         fetch <recipe>` first"
    } else {
        "replace a placeholder commit with the commit the tag points at (`git ls-remote <url> \
         refs/tags/<tag>^{}`); fix a ✘ pin in the recipe that declares it"
    };
    Err(crate::error::failure_hint(
        format!("{} problem(s) found", problems.len()),
        hint,
    ))
}

/// `check --deep` for the selected set.
fn deep(s: &Session) -> Result<Vec<String>> {
    let plan = super::plan::make(s, &[], None)?;
    let cache = MirrorCache::new(&s.cache_dir, &s.policy);
    let built = pins::built_versions(&s.set);
    let names: Vec<String> = built.keys().map(|n| n.to_string()).collect();
    let env = marker_environment(&s.target);
    println!(
        "deep check of set `{}` against the upstream files at the pinned commits",
        s.set.name
    );
    let mut problems = Vec::new();
    for r in &s.set.recipes {
        let files: Box<dyn SourceFiles> = match open_source(r, &cache) {
            Ok(f) => f,
            Err(msg) => {
                println!("✘ {msg}");
                problems.push(msg);
                continue;
            }
        };
        let origin = Origin {
            recipe: &r.name,
            version: &r.version,
            strips_torch: pins::strips_torch(r),
        };
        if r.output == OutputKind::Wheel {
            let found = pins::upstream_requirements(files.as_ref(), &names)
                .map_err(|e| e.context(format!("recipe `{}`", r.name)))?;
            problems.extend(report(&pins::check_requirements(
                &origin, &found, &built, &env,
            )?));
            let fetched = fetch_pins::fetch_pins(files.as_ref())
                .map_err(|e| e.context(format!("recipe `{}`", r.name)))?;
            for v in fetch_pins::check(&fetched, &s.set) {
                let line = v.render(&r.name, &r.version.to_string());
                println!("{line}");
                if v.result.is_err() {
                    problems.push(line);
                }
            }
        } else {
            println!(
                "{} {}: a source tree built by another recipe; its packaging pins do not apply",
                r.name, r.version
            );
        }
        if r.patches.is_empty() && r.edits.is_empty() {
            continue;
        }
        let Some(vars) = plan
            .recipes
            .iter()
            .find(|p| p.name == r.name)
            .map(|p| &p.vars)
        else {
            continue;
        };
        let read = |rel: &Path| files.read(&rel.to_string_lossy());
        match prepare::plan_changes_with(r, &read, vars) {
            Ok(changes) => println!(
                "{} {}: {} patch(es) and {} edit(s) apply at the pinned commit ({} file(s) \
                 change) ✔",
                r.name,
                r.version,
                r.patches.len(),
                r.edits.len(),
                changes.len()
            ),
            Err(e) => {
                let msg = format!("{e:#}");
                println!("✘ {msg}");
                problems.push(msg);
            }
        }
    }
    Ok(problems)
}

/// The recipe's files at its pinned commit, or why they cannot be read.
fn open_source(r: &Recipe, cache: &MirrorCache) -> Result<Box<dyn SourceFiles>, String> {
    match &r.source {
        Source::Git { url, commit, .. } => {
            if pins::is_placeholder_commit(commit) {
                return Err(format!(
                    "{} {}: placeholder commit, upstream files not read",
                    r.name, r.version
                ));
            }
            match CommitFiles::open(&cache.mirror_path(url), commit) {
                Ok(Some(f)) => Ok(Box::new(f)),
                Ok(None) => Err(format!(
                    "{} {}: commit {commit} is not in the git cache; run `jetforge fetch {}` first",
                    r.name, r.version, r.name
                )),
                Err(e) => Err(format!("{} {}: {e:#}", r.name, r.version)),
            }
        }
        Source::Path { dir } => Ok(Box::new(DirFiles(dir.clone()))),
    }
}

/// A local source directory.
struct DirFiles(PathBuf);

impl SourceFiles for DirFiles {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = self.0.join(path);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("failed to read `{}`", p.display())))
            }
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        let Ok(entries) = std::fs::read_dir(self.0.join(dir)) else {
            return Ok(Vec::new());
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}
