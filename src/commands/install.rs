//! `jetforge install --venv DIR [PKG…|all]`: installs the built set into a venv from the
//! wheelhouse only. The set's wheels go in as exact files with no index, so no index can
//! swap the CUDA torch for a CPU one; `--with-deps` then lets the index supply only the
//! *other* dependencies, with every set package pinned to its exact version.
//!
//! `--index URL` / `--find-links URL` take the set from a remote cache instead: every set
//! package pinned to its recipe version, binary wheels only, and that source alone.
//!
//! A wheelhouse wheel goes in only if it was built from the recipe's current inputs (its
//! fingerprint is the one a build would compute now): after a recipe changed and its rebuild
//! failed, the old wheel is refused, naming what changed, unless `--allow-stale`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Session;
use std::collections::BTreeSet;

use crate::cli::{GlobalArgs, InstallArgs};
use crate::fingerprint::explain;
use crate::net::index::{simple_url, IndexClient};
use crate::process::runner::{self, Program, StepCommand};
use crate::recipe::{OutputKind, Recipe};
use crate::redact::redact;
use crate::state::RecipeState;
use crate::venv::{self, Installer, VenvSpec};
use crate::wheelhouse::remote::CacheView;
use crate::wheelhouse::store::{ManifestEntry, Wheelhouse};
use crate::wheelhouse::verified::{self, LocalResults, VerifyState};
use crate::wheelhouse::wheel::normalize_name;

pub fn run(g: &GlobalArgs, a: &InstallArgs) -> Result<()> {
    let s = Session::load(g)?;
    if let Some(source) = CacheSource::of(a.index.as_ref(), a.find_links.as_ref()) {
        return install_remote(&s, a, &source);
    }
    let wheelhouse = Wheelhouse::open(&s.wheelhouse)?;
    let recipes = s
        .set
        .select(&a.packages.packages)
        .map_err(crate::error::input)?;
    let entries = selected_entries(
        &s,
        &wheelhouse,
        &recipes,
        "run `jetforge build` first (with the same --set and --target)",
    )?;
    refuse_stale(&s, &a.packages.packages, &entries, a.allow_stale)?;
    let files: Vec<ManifestEntry> = entries.iter().map(|(_, e)| e.clone()).collect();
    wheelhouse.verify_files(&files)?;
    let env = pip_env(&s);
    let venv = create_venv(&s, &a.venv, a.system_site_packages, &env)?;
    let entries: Vec<ManifestEntry> = entries.into_iter().map(|(_, e)| e).collect();
    let files: Vec<PathBuf> = entries
        .iter()
        .map(|e| wheelhouse.dir().join(&e.file))
        .collect();
    let constraints = write_constraints(&entries)?;
    // 1. The set's wheels as exact files: no index, no resolver, and a same-version wheel from
    //    elsewhere (a CPU torch) is replaced.
    let install = venv
        .install_wheels_argv(&files)
        .expect("at least one wheel");
    run_pip(
        &install,
        &env,
        &s,
        "install the set's wheels (exact files, no index)",
    )?;
    // 2. Their other dependencies, with every set package pinned to the version just installed:
    //    from the wheelhouse and what the venv already sees, or with --with-deps from the index.
    let mut deps = venv
        .install_requirements_argv(&pins(&entries), s.policy.offline || !a.with_deps)
        .expect("at least one pin");
    deps.extend([
        "--constraint".into(),
        constraints.path().display().to_string(),
    ]);
    if !a.with_deps {
        deps.extend([
            "--find-links".into(),
            wheelhouse.dir().display().to_string(),
        ]);
    }
    run_pip(&deps, &env, &s, "install the dependencies of the set's wheels").map_err(|e| {
        if a.with_deps {
            e
        } else {
            e.context("a dependency outside the set is missing from the wheelhouse: rerun with --with-deps to take it from the index")
        }
    })?;
    for e in &entries {
        println!("installed {} {} ({})", e.package, e.version, e.file);
    }
    println!("into {}", venv.dir.display());
    warn_unverified_local(&s, &entries);
    Ok(())
}

/// Warns about wheelhouse wheels whose verification is pending or unknown: neither their
/// build passed every check nor did `jetforge verify` pass them here since. The wheels are
/// installed by then: unreadable local results are a warning too, not a failed install.
fn warn_unverified_local(s: &Session, entries: &[ManifestEntry]) {
    let attested = match LocalResults::load(&LocalResults::path(&s.layout.root)) {
        Ok(results) => results.attestations(),
        Err(e) => {
            eprintln!(
                "warning: only the build's checks count, the local verify results are unusable: {}",
                one_line(&e)
            );
            Default::default()
        }
    };
    let named: Vec<String> = entries
        .iter()
        .filter(|e| !verified::is_verified(e.verify.as_ref(), &e.fingerprint, &e.sha256, &attested))
        .map(|e| {
            format!(
                "{}=={} ({})",
                e.package,
                e.version,
                VerifyState::warning(e.verify.as_ref()).unwrap_or_default()
            )
        })
        .collect();
    warn_unverified(&named);
}

fn create_venv(
    s: &Session,
    dir: &Path,
    system_site_packages: bool,
    env: &[(String, String)],
) -> Result<VenvSpec> {
    let venv = VenvSpec {
        dir: std::path::absolute(dir)?,
        base_python: venv::find_python(&s.target.python_version, s.python.as_deref())?,
        system_site_packages,
        installer: Installer::detect(s.policy.offline),
        seeds: s.venv_seeds.clone(),
    };
    let made = venv.create("create the venv", &mut |what, argv| {
        run_pip(argv, env, s, what)
    })?;
    if let Some(w) = made.warning() {
        eprintln!("warning: {w}");
    }
    if made != venv::Made::Existed {
        venv.inherit_parent_site()?;
    }
    Ok(venv)
}

/// A published cache to install from: `--index URL` or `--find-links DIR_OR_URL`.
#[derive(Debug, Clone)]
pub struct CacheSource {
    /// The URL or directory as given.
    pub location: String,
    /// pip's arguments that make it the only source.
    pub pip_args: Vec<String>,
}

impl CacheSource {
    pub fn of(index: Option<&String>, find_links: Option<&String>) -> Option<Self> {
        if let Some(url) = index {
            return Some(CacheSource {
                location: url.clone(),
                pip_args: vec!["--index-url".into(), simple_url(url)],
            });
        }
        find_links.map(|url| CacheSource {
            location: url.clone(),
            pip_args: vec!["--no-index".into(), "--find-links".into(), url.clone()],
        })
    }

    /// What the cache says about the selected recipes' wheels for this target: the entries of
    /// their distributions at the recipes' versions, and the attestations.
    pub fn view(&self, s: &Session, recipes: &[&Recipe]) -> Result<CacheView> {
        let wanted: Vec<(String, String)> = recipes
            .iter()
            .filter(|r| r.output == OutputKind::Wheel)
            .flat_map(|r| {
                r.distributions()
                    .into_iter()
                    .map(|d| (normalize_name(&d), r.version.to_string()))
            })
            .collect();
        let client = IndexClient::new(&s.policy, s.policy.fetch.clone());
        let target = s.target.name.clone();
        CacheView::read(&client, &self.location, &|e| {
            e.target == target
                && wanted
                    .iter()
                    .any(|(p, v)| *p == e.package && *v == e.version)
        })
        .with_context(|| {
            format!(
                "failed to read the manifest of the cache {}",
                redact(&self.location)
            )
        })
    }
}

/// Warns, in one line, about installed wheels whose verification is pending or unknown: what
/// `view` says of the cache entries of `pins` (`name==version`).
fn warn_unverified_remote(view: &CacheView, pins: &[String]) {
    let mut named = Vec::new();
    for pin in pins {
        let Some((name, version)) = pin.split_once("==") else {
            continue;
        };
        let package = normalize_name(name);
        let entries: Vec<_> = view
            .entries
            .iter()
            .filter(|e| e.package == package && e.version == version)
            .collect();
        if entries.is_empty() {
            named.push(format!("{pin} (the cache's manifest does not name it)"));
        } else if !entries.iter().all(|e| view.is_verified(e)) {
            let why = entries
                .iter()
                .find_map(|e| {
                    VerifyState::warning(e.verify.as_ref()).filter(|_| !view.is_verified(e))
                })
                .unwrap_or_default();
            named.push(format!("{pin} ({why})"));
        }
    }
    warn_unverified(&named);
}

/// An error as the tail of a warning line: its chain and its hints, redacted.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = format!("{e:#}").replace('\n', " ");
    for hint in crate::error::hints(e) {
        line.push_str(&format!(" ({hint})"));
    }
    redact(&line)
}

/// The one warning line about unverified wheels, if any.
fn warn_unverified(named: &[String]) {
    if named.is_empty() {
        return;
    }
    eprintln!(
        "warning: installed {} wheel(s) not verified on a device: {}; run `jetforge verify --index/--find-links` on one, then `jetforge publish --verified`",
        named.len(),
        named.join(", ")
    );
}

/// Installs the selected recipes' wheels from a published cache into the venv at `dir`
/// (created if needed): every set package pinned to its recipe version, binary wheels only, the
/// cache the only source (with `with_deps`, the index supplies the other dependencies). Returns
/// the venv and the pins.
pub fn install_from_cache(
    s: &Session,
    recipes: &[&Recipe],
    dir: &Path,
    system_site_packages: bool,
    with_deps: bool,
    source: &CacheSource,
) -> Result<(VenvSpec, Vec<String>)> {
    let source = &source.pip_args;
    let pins: Vec<String> = recipes
        .iter()
        .filter(|r| r.output == OutputKind::Wheel)
        .flat_map(|r| {
            r.distributions()
                .into_iter()
                .map(|n| format!("{n}=={}", r.version))
        })
        .collect();
    let env = pip_env(s);
    let venv = create_venv(s, dir, system_site_packages, &env)?;
    let mut install = venv
        .install_requirements_argv(&pins, false)
        .context("the selection holds no wheel recipe")?;
    install.extend(source.iter().cloned());
    install.push("--only-binary=:all:".into());
    if with_deps {
        install.push("--no-deps".into());
    }
    let what = format!("install the set from {}", redact(&source[source.len() - 1]));
    run_pip(&install, &env, s, &what).map_err(|e| {
        e.context(
            "the cache lacks a wheel of the set, or a dependency outside it (then add --with-deps)",
        )
    })?;
    if with_deps {
        let constraints = write_pins(&pins)?;
        let mut deps = venv
            .install_requirements_argv(&pins, s.policy.offline)
            .expect("at least one pin");
        deps.extend([
            "--constraint".into(),
            constraints.path().display().to_string(),
        ]);
        run_pip(&deps, &env, s, "install the other dependencies")?;
    }
    Ok((venv, pins))
}

fn install_remote(s: &Session, a: &InstallArgs, source: &CacheSource) -> Result<()> {
    let recipes = s
        .set
        .select(&a.packages.packages)
        .map_err(crate::error::input)?;
    let (venv, pins) = install_from_cache(
        s,
        &recipes,
        &a.venv,
        a.system_site_packages,
        a.with_deps,
        source,
    )?;
    for p in &pins {
        println!("installed {p}");
    }
    println!("into {}", venv.dir.display());
    match source.view(s, &recipes) {
        Ok(view) => warn_unverified_remote(&view, &pins),
        Err(e) => eprintln!(
            "warning: cannot tell whether the installed wheels were verified: {}",
            one_line(&e)
        ),
    }
    Ok(())
}

/// Refuses (or with `allow` warns about) wheels whose fingerprint is not the one their recipe
/// has now, saying what changed as `plan -v` does. A recipe whose key cannot be known here
/// (a git source never prepared in this work dir) is a warning: the wheelhouse may have come
/// from another machine.
fn refuse_stale(
    s: &Session,
    names: &[String],
    entries: &[(String, ManifestEntry)],
    allow: bool,
) -> Result<()> {
    let plan = super::plan::make(s, names, None)?;
    let selected = s.set.select(names).map_err(crate::error::input)?;
    let known =
        crate::builder::cache::known_fingerprints(&plan.recipes, &selected, &s.target, &s.facts);
    let mut stale = Vec::new();
    let mut unknown = BTreeSet::new();
    for (recipe, e) in entries {
        match known.get(recipe).cloned().flatten() {
            None => {
                unknown.insert(recipe.as_str());
            }
            Some(fp) if fp.hash != e.fingerprint => {
                let last = RecipeState::load(&s.layout.state_file(recipe)).last_built;
                let why = match last.filter(|l| l.hash == e.fingerprint) {
                    Some(l) => explain(Some(&l), &fp).join("; "),
                    None => {
                        "it was built from other inputs than the recipe's current ones".to_string()
                    }
                };
                stale.push((recipe.clone(), e.file.clone(), why));
            }
            Some(_) => {}
        }
    }
    for r in unknown {
        eprintln!(
            "warning: {r}: cannot tell whether its wheel is current (its source is not prepared in `{}`); installing the wheelhouse's",
            s.layout.root.display()
        );
    }
    if stale.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = stale
        .iter()
        .map(|(r, file, why)| format!("  {r}: `{file}` is stale: {why}"))
        .collect();
    let recipes: Vec<&str> = stale.iter().map(|(r, _, _)| r.as_str()).collect();
    if allow {
        eprintln!(
            "warning: installing stale wheels (--allow-stale):\n{}",
            lines.join("\n")
        );
        return Ok(());
    }
    Err(crate::error::failure_hint(
        format!(
            "the wheelhouse's wheels are not what the recipes build now:\n{}",
            lines.join("\n")
        ),
        format!(
            "build them first: `jetforge build {}` (same --set and --target); or install the old wheels anyway with --allow-stale",
            recipes.join(" ")
        ),
    ))
}

/// Manifest entries of `recipes` (a selection, with its dependencies) for this target, each
/// with its recipe: the wheels the manifest records as the recipe's (whatever their
/// distribution is called). A wheel recipe without one is an error, with `hint`.
pub(super) fn selected_entries(
    s: &Session,
    wh: &Wheelhouse,
    recipes: &[&Recipe],
    hint: &str,
) -> Result<Vec<(String, ManifestEntry)>> {
    let all = wh.entries()?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for r in recipes.iter().filter(|r| r.output == OutputKind::Wheel) {
        let declared = r.distributions();
        let found: Vec<_> = all
            .iter()
            .filter(|e| e.target == s.target.name && e.is_of(&r.name, &declared))
            .map(|e| (r.name.clone(), e.clone()))
            .collect();
        if found.is_empty() {
            missing.push(r.name.clone());
        }
        out.extend(found);
    }
    if !missing.is_empty() {
        return Err(crate::error::failure_hint(
            format!(
                "the wheelhouse `{}` has no wheel of {} for target `{}`",
                wh.dir().display(),
                missing.join(", "),
                s.target.name
            ),
            hint.to_string(),
        ));
    }
    Ok(out)
}

fn pins(entries: &[ManifestEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}=={}", e.package, e.version))
        .collect()
}

fn write_constraints(entries: &[ManifestEntry]) -> Result<tempfile::NamedTempFile> {
    write_pins(&pins(entries))
}

fn write_pins(pins: &[String]) -> Result<tempfile::NamedTempFile> {
    let mut f = tempfile::NamedTempFile::new().context("failed to create a constraints file")?;
    std::io::Write::write_all(&mut f, (pins.join("\n") + "\n").as_bytes())?;
    Ok(f)
}

/// The caller's environment without pip settings that would add sources behind our back
/// (PIP_FIND_LINKS, PIP_EXTRA_INDEX_URL …), plus the proxy.
fn pip_env(s: &Session) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("PIP_") || k == "PIP_INDEX_URL" || k == "PIP_CERT")
        .filter(|(k, _)| !k.to_ascii_lowercase().ends_with("_proxy"))
        .collect();
    env.extend(s.policy.proxy_env());
    env
}

fn run_pip(argv: &[String], env: &[(String, String)], s: &Session, what: &str) -> Result<()> {
    let cmd = StepCommand {
        name: what.to_string(),
        program: Program::Argv(argv.to_vec()),
        cwd: crate::paths::current_dir()?,
        env: env.to_vec(),
        log: s.layout.root.join("logs").join("install.log"),
    };
    let out = runner::run(&cmd, &mut |_| {})?;
    if out.success() {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "failed to {what} ({})\n  command: {}\n  log: {}\n{}",
        out.status,
        crate::redact::redact(&cmd.display()),
        cmd.log.display(),
        out.tail
            .iter()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}
