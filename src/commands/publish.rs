//! `jetforge publish --index URL | --dir DIR`: the wheelhouse and its fingerprints to a package
//! index or a static tree (see `wheelhouse::publish`). With `--verified`, the passed results of
//! `jetforge verify --index/--find-links` instead, as attestations (see `wheelhouse::verified`).
//! Credentials come from the environment only, so they never sit in shell history, process
//! lists or logs.

use anyhow::Result;

use super::{caller_env, Session};
use crate::cli::{GlobalArgs, PublishArgs};
use crate::envvars::{JETFORGE_INDEX_PASSWORD, JETFORGE_INDEX_TOKEN, JETFORGE_INDEX_USER};
use crate::net::index::{simple_url, Credentials, IndexClient};
use crate::redact::redact;
use crate::wheelhouse::publish::{self, IndexDestination, Published};
use crate::wheelhouse::store::Wheelhouse;
use crate::wheelhouse::verified::LocalResults;

pub fn run(g: &GlobalArgs, a: &PublishArgs) -> Result<()> {
    let s = Session::load(g)?;
    if a.verified {
        return run_verified(&s, a);
    }
    let wh = Wheelhouse::open(&s.wheelhouse)?;
    let mut print = |p: &Published| println!("{}: {}", p.file, p.action);
    let (results, dest) = match &a.dir {
        Some(dir) => (
            publish::publish_dir(&wh, dir, &mut print)?,
            dir.display().to_string(),
        ),
        None => {
            let dest = destination(&s, a)?;
            let client = IndexClient::new(&s.policy, s.policy.fetch.clone());
            (
                publish::publish_index(&wh, &client, &dest, &mut print)?,
                redact(&dest.upload_url),
            )
        }
    };
    let skipped = results.iter().filter(|p| p.action.is_skip()).count();
    println!(
        "published {} files to {dest} ({} new, {skipped} already there)",
        results.len(),
        results.len() - skipped
    );
    Ok(())
}

/// `publish --verified`: the passed results of `jetforge verify --index/--find-links` saved in
/// this work dir, as attestations next to the cache's manifest (see `wheelhouse::verified`).
fn run_verified(s: &Session, a: &PublishArgs) -> Result<()> {
    let path = LocalResults::path(&s.layout.root);
    let attested = LocalResults::load(&path)?.attestations();
    if attested.attestations.is_empty() {
        return Err(crate::error::failure_hint(
            format!("no passed verify results in `{}`", path.display()),
            "run `jetforge verify --index URL` (or --find-links) on a device first, with the same --set and --target",
        ));
    }
    let mut print = |p: &Published| println!("{}: {}", p.file, p.action);
    let (results, dest) = match &a.dir {
        Some(dir) => (
            publish::publish_verified_dir(&attested, dir, &mut print)?,
            dir.display().to_string(),
        ),
        None => {
            let dest = destination(s, a)?;
            let client = IndexClient::new(&s.policy, s.policy.fetch.clone());
            (
                publish::publish_verified_index(&attested, &client, &dest, &mut print)?,
                redact(&dest.upload_url),
            )
        }
    };
    if results.is_empty() {
        return Err(crate::error::failure_hint(
            format!(
                "{dest} holds none of the {} verified wheel(s): nothing to attest there",
                attested.attestations.len()
            ),
            "publish --verified to the cache the device installed from",
        ));
    }
    let skipped = results.iter().filter(|p| p.action.is_skip()).count();
    println!(
        "published {} attestation(s) to {dest} ({} new, {skipped} already there)",
        results.len(),
        results.len() - skipped
    );
    Ok(())
}

fn destination(s: &Session, a: &PublishArgs) -> Result<IndexDestination> {
    let Some(url) = a.index.clone().or_else(|| s.config.index.url.clone()) else {
        return Err(crate::error::input_hint(
            "publish needs a destination",
            "pass --index URL (or set [index] url) for a package index, or --dir DIR for a static tree",
        ));
    };
    if url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.split('/').next().unwrap_or_default().contains('@'))
    {
        return Err(crate::error::input_hint(
            format!("the index URL {} carries credentials", redact(&url)),
            format!("remove them from the URL and set {JETFORGE_INDEX_USER} and {JETFORGE_INDEX_PASSWORD} (or {JETFORGE_INDEX_TOKEN})"),
        ));
    }
    let simple = match &a.simple_url {
        Some(u) => format!("{}/", u.trim_end_matches('/')),
        None => simple_url(&url),
    };
    Ok(IndexDestination {
        credentials: credentials(s)?,
        upload_url: url,
        simple_url: simple,
    })
}

/// A token (as user `__token__`, the PyPI convention), else user and password, else none.
fn credentials(s: &Session) -> Result<Option<Credentials>> {
    let env = |k: &str| caller_env(k).filter(|v| !v.is_empty());
    if let Some(token) = env(JETFORGE_INDEX_TOKEN) {
        return Ok(Some(Credentials {
            user: "__token__".into(),
            password: token,
        }));
    }
    let user = env(JETFORGE_INDEX_USER).or_else(|| s.config.index.user.clone());
    match (user, env(JETFORGE_INDEX_PASSWORD)) {
        (Some(user), Some(password)) => Ok(Some(Credentials { user, password })),
        (None, None) => Ok(None),
        (Some(user), None) => Err(crate::error::input_hint(
            format!("index user `{user}` is set but {JETFORGE_INDEX_PASSWORD} is not"),
            format!("export {JETFORGE_INDEX_PASSWORD} (it is read only from the environment)"),
        )),
        (None, Some(_)) => Err(crate::error::input_hint(
            format!("{JETFORGE_INDEX_PASSWORD} is set but no index user"),
            format!("export {JETFORGE_INDEX_USER} or set [index] user"),
        )),
    }
}
