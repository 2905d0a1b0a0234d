//! Publishing the wheelhouse so other machines install from it and skip builds: to a package
//! index through the legacy upload API, or as a static PEP 503 tree in a directory. Either way
//! the fingerprints go along (see `published`).
//!
//! A file name is published once: a file already there with the same sha256 is skipped, the
//! same name with other bytes is an error naming both hashes, and every conflict is found
//! before anything is written. Wheels go first and manifests last, so a published manifest
//! never names a wheel that is not there yet. Reading credentials and printing are the
//! caller's.
//!
//! Size: about 566 lines, of which 55 are the unit tests beside the code (511 of code).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::atomic;
use super::index::write_simple_index;
use super::published::{self, PublishedEntry, PublishedManifest, MANIFEST_FILE};
use super::store::{ManifestEntry, Wheelhouse};
use super::verified::{self, Attestation, Attestations, VERIFIED_FILE, VERIFIED_PROJECT};
use super::wheel::{sha256_file, WheelName};
use crate::error;
use crate::net::index::{Credentials, IndexClient, RemoteError, RemoteFile, Upload, Uploaded};
use crate::redact::redact;

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Uploaded,
    Copied,
    /// Already there with the same sha256.
    Skipped,
    /// An attestation already there for the same wheels (fingerprint and sha256): kept as it
    /// was, whatever its bytes (another run's date, host), since a published record never
    /// changes.
    AlreadyAttested,
}

impl Action {
    /// Nothing was written: the file or record was already there.
    pub fn is_skip(self) -> bool {
        matches!(self, Action::Skipped | Action::AlreadyAttested)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Action::Uploaded => "uploaded",
            Action::Copied => "copied",
            Action::Skipped => "skipped (already there, same sha256)",
            Action::AlreadyAttested => "skipped (already there, attests the same wheels)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub file: String,
    pub action: Action,
}

/// Where and as whom to upload.
#[derive(Debug, Clone)]
pub struct IndexDestination {
    pub upload_url: String,
    pub simple_url: String,
    pub credentials: Option<Credentials>,
}

/// A file to publish: a wheel of the wheelhouse or a sidecar written to a temp dir.
struct LocalFile {
    path: PathBuf,
    file: String,
    sha256: String,
    project: String,
    version: String,
}

/// Uploads every wheel of the wheelhouse, then one sidecar manifest per fingerprint.
pub fn publish_index(
    wh: &Wheelhouse,
    client: &IndexClient,
    dest: &IndexDestination,
    progress: &mut dyn FnMut(&Published),
) -> Result<Vec<Published>> {
    let entries = entries_to_publish(wh)?;
    let sidecar_dir = tempfile::tempdir().context("failed to create a temp dir")?;
    let mut files = wheel_files(wh, &entries)?;
    files.extend(sidecar_files(&entries, sidecar_dir.path())?);
    let mut pages: BTreeMap<String, Vec<RemoteFile>> = BTreeMap::new();
    let mut present = Vec::new();
    let mut conflicts = Vec::new();
    for f in &files {
        if !pages.contains_key(&f.project) {
            let listed = remote_files(client, dest, &f.project)?;
            pages.insert(f.project.clone(), listed);
        }
        match remote_hash(client, &pages[&f.project], &f.file)? {
            Some(h) if h == f.sha256 => present.push(true),
            Some(h) => {
                conflicts.push(conflict(&f.file, &f.sha256, &h));
                present.push(false);
            }
            None => present.push(false),
        }
    }
    if !conflicts.is_empty() {
        return Err(conflict_error(&conflicts, &dest.upload_url));
    }
    let mut out = Vec::new();
    for (f, there) in files.iter().zip(present) {
        let action = if there {
            Action::Skipped
        } else {
            upload_one(client, dest, f)?
        };
        let p = Published {
            file: f.file.clone(),
            action,
        };
        progress(&p);
        out.push(p);
    }
    Ok(out)
}

/// Copies every wheel into `dir`, regenerates `dir/simple/` and merges the entries into
/// `dir/jetforge-manifest.json`; each file is replaced atomically.
pub fn publish_dir(
    wh: &Wheelhouse,
    dir: &Path,
    progress: &mut dyn FnMut(&Published),
) -> Result<Vec<Published>> {
    let entries = entries_to_publish(wh)?;
    let files = wheel_files(wh, &entries)?;
    fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut manifest = read_manifest(&manifest_path)?;
    let mut present = Vec::new();
    let mut conflicts = Vec::new();
    for f in &files {
        let dest = dir.join(&f.file);
        if !dest.is_file() {
            present.push(false);
            continue;
        }
        let there =
            sha256_file(&dest).with_context(|| format!("failed to hash `{}`", dest.display()))?;
        if there != f.sha256 {
            conflicts.push(conflict(&f.file, &f.sha256, &there));
        }
        present.push(true);
    }
    if !conflicts.is_empty() {
        return Err(conflict_error(&conflicts, &dir.display().to_string()));
    }
    let mut out = Vec::new();
    for (f, there) in files.iter().zip(present) {
        if !there {
            atomic::copy(&f.path, &dir.join(&f.file))?;
        }
        let p = Published {
            file: f.file.clone(),
            action: if there {
                Action::Skipped
            } else {
                Action::Copied
            },
        };
        progress(&p);
        out.push(p);
    }
    write_simple_index(dir)?;
    manifest.merge(entries);
    atomic::write(&manifest_path, manifest.to_json().as_bytes())?;
    Ok(out)
}

fn entries_to_publish(wh: &Wheelhouse) -> Result<Vec<PublishedEntry>> {
    let entries: Vec<ManifestEntry> = wh.entries()?;
    if entries.is_empty() {
        return Err(error::failure_hint(
            format!(
                "the wheelhouse `{}` holds no wheels to publish",
                wh.dir().display()
            ),
            "run `jetforge build` first, or point --wheelhouse at the one it filled",
        ));
    }
    Ok(entries.iter().map(PublishedEntry::from).collect())
}

/// The distinct wheel files of `entries`, each checked against the hash the wheelhouse recorded.
fn wheel_files(wh: &Wheelhouse, entries: &[PublishedEntry]) -> Result<Vec<LocalFile>> {
    let mut out: Vec<LocalFile> = Vec::new();
    for e in entries {
        if out.iter().any(|f| f.file == e.file) {
            continue;
        }
        let path = wh.verify_file(&e.file, &e.sha256)?;
        out.push(LocalFile {
            path,
            file: e.file.clone(),
            sha256: e.sha256.clone(),
            project: e.package.clone(),
            version: e.version.clone(),
        });
    }
    Ok(out)
}

/// One sidecar wheel per fingerprint, written into `dir`.
fn sidecar_files(entries: &[PublishedEntry], dir: &Path) -> Result<Vec<LocalFile>> {
    let mut by_fp: BTreeMap<&str, Vec<PublishedEntry>> = BTreeMap::new();
    for e in entries {
        by_fp.entry(&e.fingerprint).or_default().push(e.clone());
    }
    let mut out = Vec::new();
    for (fp, group) in by_fp {
        let bytes = published::sidecar_wheel(fp, &group);
        let file = published::sidecar_file(fp);
        let path = dir.join(&file);
        fs::write(&path, &bytes)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        out.push(LocalFile {
            path,
            file,
            sha256: crate::hash::sha256_hex(&bytes),
            project: published::SIDECAR_PROJECT.to_string(),
            version: published::sidecar_version(fp),
        });
    }
    Ok(out)
}

fn remote_files(
    client: &IndexClient,
    dest: &IndexDestination,
    project: &str,
) -> Result<Vec<RemoteFile>> {
    Ok(client
        .project_files(&dest.simple_url, project)
        .map_err(|e| index_error(e, dest))?
        .unwrap_or_default())
}

/// The sha256 of `file` on the index: from the link, or by downloading it when the link has
/// none.
fn remote_hash(client: &IndexClient, listed: &[RemoteFile], file: &str) -> Result<Option<String>> {
    let Some(remote) = listed.iter().find(|r| r.file == file) else {
        return Ok(None);
    };
    if let Some(h) = &remote.sha256 {
        return Ok(Some(h.clone()));
    }
    let bytes = client
        .get(&remote.url)
        .with_context(|| format!("failed to read `{file}` back from the index"))?
        .unwrap_or_default();
    Ok(Some(crate::hash::sha256_hex(&bytes)))
}

fn upload_one(client: &IndexClient, dest: &IndexDestination, f: &LocalFile) -> Result<Action> {
    let name = WheelName::parse(&f.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pyversion = name.python_tags.join(".");
    let upload = Upload {
        path: &f.path,
        file: &f.file,
        name: &f.project,
        version: &f.version,
        pyversion: &pyversion,
        sha256: &f.sha256,
    };
    let result = client
        .upload(&dest.upload_url, dest.credentials.as_ref(), &upload)
        .map_err(|e| index_error(e, dest))
        .with_context(|| format!("failed to upload `{}`", f.file))?;
    if result == Uploaded::Created {
        return Ok(Action::Uploaded);
    }
    // 409: someone published this name since we looked; only identical bytes are fine.
    let listed = remote_files(client, dest, &f.project)?;
    match remote_hash(client, &listed, &f.file)? {
        Some(h) if h == f.sha256 => Ok(Action::Skipped),
        Some(h) => Err(conflict_error(
            &[conflict(&f.file, &f.sha256, &h)],
            &dest.upload_url,
        )),
        None => Err(error::failure_hint(
            format!(
                "{} refused `{}` as already existing (409), but its page does not list it",
                redact(&dest.upload_url),
                f.file
            ),
            "check --simple-url: it must be the simple index of the upload URL",
        )),
    }
}

/// Turns authentication failures into the error a user can act on.
fn index_error(e: RemoteError, dest: &IndexDestination) -> anyhow::Error {
    match &e {
        RemoteError::Status {
            code: 401 | 403, ..
        } => error::failure_hint(
            format!(
                "wrong credentials for {} ({e})",
                redact(&dest.upload_url)
            ),
            "set JETFORGE_INDEX_USER and JETFORGE_INDEX_PASSWORD (or JETFORGE_INDEX_TOKEN) for this index",
        ),
        _ => e.into(),
    }
}

fn conflict(file: &str, local: &str, there: &str) -> String {
    format!("`{file}`\n  local sha256:     {local}\n  published sha256: {there}")
}

fn conflict_error(conflicts: &[String], dest: &str) -> anyhow::Error {
    error::failure_hint(
        format!(
            "{} already holds {} with other contents; nothing was published:\n{}",
            redact(dest),
            if conflicts.len() == 1 {
                "a file of the same name"
            } else {
                "files of the same names"
            },
            conflicts.join("\n")
        ),
        "a published file name stands for one set of bytes: remove it from the index, or change the version (a local label like +jp6.1) and rebuild",
    )
}

fn read_manifest(path: &Path) -> Result<PublishedManifest> {
    match fs::read(path) {
        Ok(bytes) => PublishedManifest::parse(&bytes).map_err(|e| {
            error::failure_hint(
                format!("`{}`: {e}", path.display()),
                "publish into another directory, or remove the file to start the tree afresh",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PublishedManifest::new(vec![])),
        Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// Publishes `attested` (the passed results of `jetforge verify`) next to the manifest of the
/// static tree `dir`: merged into `jetforge-verified.json`, written atomically. Only wheels the
/// tree's manifest holds (same fingerprint and sha256) are attested; an attestation already
/// there is kept as it is. Wheels and manifest are not touched.
pub fn publish_verified_dir(
    attested: &Attestations,
    dir: &Path,
    progress: &mut dyn FnMut(&Published),
) -> Result<Vec<Published>> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(error::failure_hint(
            format!(
                "`{}` has no {MANIFEST_FILE}: it is no published tree",
                dir.display()
            ),
            "publish the wheels there first (`jetforge publish --dir DIR`)",
        ));
    }
    let manifest = read_manifest(&manifest_path)?;
    let path = dir.join(VERIFIED_FILE);
    let mut published = match fs::read(&path) {
        Ok(bytes) => Attestations::parse(&bytes).map_err(|e| {
            error::failure_hint(
                format!("`{}`: {e:#}", path.display()),
                "restore it, or remove it to start the attestations afresh",
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Attestations::new(vec![]),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let held = in_cache(attested, &manifest.entries);
    let mut out = Vec::new();
    for a in &held {
        let action = if published.attests(&a.run.fingerprint, &a.run.sha256) {
            Action::AlreadyAttested
        } else {
            Action::Copied
        };
        let p = Published {
            file: format!("{} (attestation)", a.run.file),
            action,
        };
        progress(&p);
        out.push(p);
    }
    if published.merge(held) > 0 {
        atomic::write(&path, published.to_json().as_bytes())?;
    }
    Ok(out)
}

/// Publishes `attested` to an index: one sidecar wheel per fingerprint in project
/// `jetforge-verified`, for the fingerprints whose manifest sidecar the index holds. A sidecar
/// already there is never replaced: it is skipped when it attests the same wheels, and a
/// conflict otherwise.
pub fn publish_verified_index(
    attested: &Attestations,
    client: &IndexClient,
    dest: &IndexDestination,
    progress: &mut dyn FnMut(&Published),
) -> Result<Vec<Published>> {
    let manifests = remote_files(client, dest, published::SIDECAR_PROJECT)?;
    let mut entries = Vec::new();
    let mut by_fp: BTreeMap<String, Vec<Attestation>> = BTreeMap::new();
    for a in &attested.attestations {
        by_fp
            .entry(a.run.fingerprint.clone())
            .or_default()
            .push(a.clone());
    }
    for fp in by_fp.keys() {
        let file = published::sidecar_file(fp);
        if let Some(f) = manifests.iter().find(|f| f.file == file) {
            let m = super::remote::read_manifest_sidecar(client, f)
                .with_context(|| format!("failed to read `{file}` from the index"))?;
            entries.extend(m.entries);
        }
    }
    let listed = remote_files(client, dest, VERIFIED_PROJECT)?;
    let dir = tempfile::tempdir().context("failed to create a temp dir")?;
    let mut uploads = Vec::new();
    let mut out = Vec::new();
    for (fp, list) in by_fp {
        let held = in_cache(&Attestations::new(list), &entries);
        if held.is_empty() {
            continue;
        }
        let file = verified::sidecar_file(&fp);
        if let Some(there) = listed.iter().find(|f| f.file == file) {
            let existing = super::remote::read_verified_sidecar(client, there)
                .with_context(|| format!("failed to read `{file}` back from the index"))?;
            let missing: Vec<&Attestation> = held
                .iter()
                .filter(|a| !existing.attests(&a.run.fingerprint, &a.run.sha256))
                .collect();
            if !missing.is_empty() {
                return Err(error::failure_hint(
                    format!(
                        "{} already holds `{file}`, which does not attest {}; a published file is never replaced, nothing was published",
                        redact(&dest.upload_url),
                        missing.iter().map(|a| a.run.file.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    "remove that file from the index to publish the new attestations, or keep the ones it holds",
                ));
            }
            let p = Published {
                file,
                action: Action::AlreadyAttested,
            };
            progress(&p);
            out.push(p);
            continue;
        }
        let (file, bytes) = verified::sidecar_wheel(&fp, &held);
        let path = dir.path().join(&file);
        fs::write(&path, &bytes)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        uploads.push(LocalFile {
            path,
            file,
            sha256: crate::hash::sha256_hex(&bytes),
            project: VERIFIED_PROJECT.to_string(),
            version: published::sidecar_version(&fp),
        });
    }
    for f in &uploads {
        let p = Published {
            file: f.file.clone(),
            action: upload_one(client, dest, f)?,
        };
        progress(&p);
        out.push(p);
    }
    Ok(out)
}

/// The attestations of wheels `entries` (a cache's manifest) holds: same fingerprint, file and
/// sha256.
fn in_cache(attested: &Attestations, entries: &[PublishedEntry]) -> Vec<Attestation> {
    attested
        .attestations
        .iter()
        .filter(|a| {
            let a = &a.run;
            entries
                .iter()
                .any(|e| e.fingerprint == a.fingerprint && e.sha256 == a.sha256 && e.file == a.file)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheelhouse::fixtures::TestWheel;
    use crate::wheelhouse::store::EntryMeta;

    fn wheelhouse_with(version: &str) -> (tempfile::TempDir, Wheelhouse) {
        let house = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let w = TestWheel::new("First", version).write(out.path());
        wh.add(
            &w,
            &EntryMeta {
                fingerprint: "f".repeat(64),
                commit: None,
                target: "host".into(),
                recipe: None,
                verify: None,
            },
        )
        .unwrap();
        (house, wh)
    }

    #[test]
    fn dir_publish_writes_wheels_index_and_manifest_and_skips_repeats() {
        let (_h, wh) = wheelhouse_with("1.0");
        let tree = tempfile::tempdir().unwrap();
        let first = publish_dir(&wh, tree.path(), &mut |_| {}).unwrap();
        assert_eq!(first[0].action, Action::Copied);
        let again = publish_dir(&wh, tree.path(), &mut |_| {}).unwrap();
        assert_eq!(again[0].action, Action::Skipped);
        let page = fs::read_to_string(tree.path().join("simple/first/index.html")).unwrap();
        assert!(page.contains("#sha256="), "{page}");
        let m =
            PublishedManifest::parse(&fs::read(tree.path().join(MANIFEST_FILE)).unwrap()).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.entries[0].fingerprint, "f".repeat(64));
    }

    #[test]
    fn dir_publish_refuses_another_file_of_the_same_name() {
        let (_h, wh) = wheelhouse_with("1.0");
        let tree = tempfile::tempdir().unwrap();
        let file = wh.entries().unwrap()[0].file.clone();
        fs::write(tree.path().join(&file), b"other bytes").unwrap();
        let err = crate::error::render(&publish_dir(&wh, tree.path(), &mut |_| {}).unwrap_err());
        assert!(err.contains("local sha256:"), "{err}");
        assert!(
            err.contains(&crate::hash::sha256_hex(b"other bytes")),
            "{err}"
        );
        assert!(!tree.path().join(MANIFEST_FILE).exists());
    }
}
