//! `jetforge new NAME --git URL --tag T`: pins the tag's commit through the git mirror cache
//! (so proxies, `[mirrors]` and the cache apply as for a build), checks the tree out into a
//! temporary directory, reads it (`recipe::scaffold`) and writes `<recipes>/<NAME>.toml`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::caller_env;
use crate::cli::{GlobalArgs, NewArgs};
use crate::config::Config;
use crate::net::{NetPolicy, ProxySettings};
use crate::recipe::scaffold::{self, Origin};
use crate::recipe::Submodules;
use crate::source::git::{Anchor, MirrorCache};

pub fn run(g: &GlobalArgs, a: &NewArgs) -> Result<()> {
    if !a
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || a.name.is_empty()
    {
        return Err(crate::error::input(format!(
            "`{}` is not a package name (letters, digits, `-`, `_`, `.`)",
            a.name
        )));
    }
    let version = a
        .package_version
        .clone()
        .unwrap_or_else(|| a.tag.trim_start_matches('v').to_string());
    if version.parse::<pep440_rs::Version>().is_err() {
        return Err(crate::error::input_hint(
            format!(
                "the version `{version}` (from the tag `{}`) is not a PEP 440 version",
                a.tag
            ),
            "pass --package-version with the version the wheel will carry",
        ));
    }
    let dir = g
        .recipes
        .clone()
        .unwrap_or_else(|| PathBuf::from("recipes"));
    let file = dir.join(format!("{}.toml", a.name));
    if file.exists() {
        return Err(crate::error::input_hint(
            format!("`{}` already exists", file.display()),
            "remove it first, or pick another NAME or --recipes DIR",
        ));
    }

    let work_dir = std::path::absolute(&g.work_dir)?;
    let config = Config::load(&work_dir)?;
    let proxy = ProxySettings::resolve(
        g.proxy.as_deref(),
        g.no_proxy.as_deref(),
        &config.network,
        caller_env,
    )?;
    let policy = NetPolicy::new(&config, proxy, g.offline);
    let cache_dir = std::path::absolute(config.cache_dir())?;
    let cache = MirrorCache::new(&cache_dir, &policy);
    let commit = cache.resolve_tag(&a.git, &a.tag)?;
    let tree = tempfile::tempdir().context("failed to make a temporary directory")?;
    let src = tree.path().join("src");
    cache.checkout(&a.git, &commit, Anchor::Tag(&a.tag), &src, Submodules::None)?;
    let findings = scaffold::analyze(&src);

    let set_recipes: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".toml")
                        .filter(|n| *n != "set" && *n != "targets")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let origin = Origin::Git {
        url: &a.git,
        tag: &a.tag,
        commit: &commit,
    };
    let text = scaffold::recipe_text(&a.name, &version, &origin, &findings, &set_recipes);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    crate::atomic::write(&file, text.as_bytes())?;
    eprintln!("wrote {} ({} at {commit})", file.display(), a.tag);
    if let Some(e) = &findings.cuda_evidence {
        eprintln!(
            "  CUDA: {e} compiles CUDA code; {} arch edit(s) proposed",
            findings.edits.len()
        );
    }
    eprintln!(
        "  next: review it, then `jetforge --recipes {} check` and `plan {}`",
        dir.display(),
        a.name
    );
    Ok(())
}
