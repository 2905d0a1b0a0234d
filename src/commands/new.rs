//! `jetforge new NAME --git URL --tag T` / `--from-pypi NAME==VERSION`: pins the tag's commit
//! through the git mirror cache (so proxies, `[mirrors]` and the cache apply as for a build) and
//! checks the tree out into a temporary directory, or downloads the sdist through jetforge's
//! HTTP client (checked against the index's sha256) and unpacks it beside the recipes; then
//! reads the tree (`recipe::scaffold`) and writes `<recipes>/<NAME>.toml`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::{GlobalArgs, NewArgs};
use crate::config::Config;
use crate::net::index::IndexClient;
use crate::net::FetchOptions;
use crate::recipe::scaffold::{self, Origin};
use crate::recipe::Submodules;
use crate::source::git::{Anchor, MirrorCache};

pub fn run(g: &GlobalArgs, a: &NewArgs) -> Result<()> {
    if a.name.is_empty()
        || !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(crate::error::input(format!(
            "`{}` is not a package name (letters, digits, `-`, `_`, `.`)",
            a.name
        )));
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
    let policy = super::net_policy(g, &config)?;
    let set_recipes = recipes_in(&dir);

    let (text, summary) = match (&a.git, &a.tag, &a.from_pypi) {
        (Some(url), Some(tag), None) => {
            let version = version_of(a.package_version.as_deref(), tag)?;
            let cache_dir = std::path::absolute(config.cache_dir())?;
            let cache = MirrorCache::new(&cache_dir, &policy);
            let commit = cache.resolve_tag(url, tag)?;
            let tree = tempfile::tempdir().context("failed to make a temporary directory")?;
            let src = tree.path().join("src");
            cache.checkout(url, &commit, Anchor::Tag(tag), &src, Submodules::None)?;
            let findings = scaffold::analyze(&src);
            let origin = Origin::Git {
                url,
                tag,
                commit: &commit,
            };
            let text = scaffold::recipe_text(&a.name, &version, &origin, &findings, &set_recipes);
            (text, (format!("{tag} at {commit}"), findings))
        }
        (None, _, Some(spec)) => {
            let (project, version) = spec
                .split_once("==")
                .map(|(n, v)| (n.trim(), v.trim()))
                .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                .ok_or_else(|| {
                    crate::error::input(format!("--from-pypi `{spec}` is not NAME==VERSION"))
                })?;
            let version = version_of(a.package_version.as_deref().or(Some(version)), version)?;
            let client = IndexClient::new(&policy, FetchOptions::from_env());
            let sdist = find_sdist(&client, &a.pypi_url, project, &version)?;
            let rel = format!("../src/{}-{version}", a.name);
            let dest = dir.join(&rel);
            unpack_sdist(&client, &sdist, &dest)?;
            let findings = scaffold::analyze(&dest);
            let origin = Origin::Sdist {
                url: &sdist.url,
                sha256: &sdist.sha256,
                path: &rel,
            };
            let text = scaffold::recipe_text(&a.name, &version, &origin, &findings, &set_recipes);
            (
                text,
                (
                    format!("{} unpacked into {}", sdist.file, dest.display()),
                    findings,
                ),
            )
        }
        _ => bail!("give --git URL --tag TAG, or --from-pypi NAME==VERSION"),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    crate::atomic::write(&file, text.as_bytes())?;
    let (what, findings) = summary;
    eprintln!("wrote {} ({what})", file.display());
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

/// The recipes already in the set directory (`torch` there makes torch extensions depend on it).
fn recipes_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
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
        .unwrap_or_default()
}

/// `--package-version`, else the tag without a leading `v`; it must be PEP 440.
fn version_of(given: Option<&str>, tag: &str) -> Result<String> {
    let version = given.map_or_else(|| tag.trim_start_matches('v').to_string(), str::to_string);
    if version.parse::<pep440_rs::Version>().is_err() {
        return Err(crate::error::input_hint(
            format!("the version `{version}` (from `{tag}`) is not a PEP 440 version"),
            "pass --package-version with the version the wheel will carry",
        ));
    }
    Ok(version)
}

struct Sdist {
    url: String,
    file: String,
    sha256: String,
}

/// The sdist of `project` `version` from the index's JSON API.
fn find_sdist(client: &IndexClient, base: &str, project: &str, version: &str) -> Result<Sdist> {
    let url = format!(
        "{}/pypi/{project}/{version}/json",
        base.trim_end_matches('/')
    );
    let body = client.get(&url)?.ok_or_else(|| {
        crate::error::input(format!("{url}: the index has no {project} {version}"))
    })?;
    let doc: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{url}: not the JSON API"))?;
    let files = doc["urls"].as_array().cloned().unwrap_or_default();
    let sdist = files
        .iter()
        .find(|f| f["packagetype"] == "sdist")
        .ok_or_else(|| {
            crate::error::input(format!(
                "{project} {version} has no sdist on {base} (only wheels): use --git URL --tag TAG"
            ))
        })?;
    let field = |v: &serde_json::Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{url}: the sdist entry has no {what}"))
    };
    Ok(Sdist {
        url: field(&sdist["url"], "url")?,
        file: field(&sdist["filename"], "filename")?,
        sha256: field(&sdist["digests"]["sha256"], "sha256 digest")?,
    })
}

/// Downloads the sdist (checked against its sha256) and unpacks its top directory as `dest`.
fn unpack_sdist(client: &IndexClient, sdist: &Sdist, dest: &Path) -> Result<()> {
    if dest.exists() {
        return Err(crate::error::input_hint(
            format!("`{}` already exists", dest.display()),
            "remove it first: `new --from-pypi` unpacks the sdist there",
        ));
    }
    if !sdist.file.ends_with(".tar.gz") {
        bail!(
            "`{}`: only .tar.gz sdists are unpacked; use --git URL --tag TAG",
            sdist.file
        );
    }
    let parent = dest.parent().context("the sdist directory has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("failed to create `{}`", parent.display()))?;
    // Unpacked beside `dest`, then renamed, so a failure leaves no half tree behind.
    let staging = tempfile::Builder::new()
        .prefix(".jetforge-new-")
        .tempdir_in(parent)
        .with_context(|| format!("failed to make a directory in `{}`", parent.display()))?;
    let archive = client.download(&sdist.url, &sdist.file, &sdist.sha256, staging.path())?;
    let unpacked = staging.path().join("unpacked");
    let reader = std::fs::File::open(&archive)
        .with_context(|| format!("failed to open `{}`", archive.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(reader))
        .unpack(&unpacked)
        .with_context(|| format!("failed to unpack `{}`", sdist.file))?;
    let tops: Vec<PathBuf> = std::fs::read_dir(&unpacked)?
        .flatten()
        .map(|e| e.path())
        .collect();
    let [top] = tops.as_slice() else {
        bail!("`{}` does not hold one top directory", sdist.file);
    };
    std::fs::rename(top, dest)
        .with_context(|| format!("failed to move the sdist to `{}`", dest.display()))?;
    Ok(())
}
