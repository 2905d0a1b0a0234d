//! The remote wheel caches that `build` consults (`[cache] indexes`, `--cache-from`): a static
//! tree's `jetforge-manifest.json`, or an index's sidecar manifests, looked up by fingerprint.
//! The HTTP side (pages, downloads, retries) is the index client of `net::index`.

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::published::{self, PublishedEntry, PublishedManifest, MANIFEST_FILE};
use super::verified::{self, Attestations, VERIFIED_FILE, VERIFIED_PROJECT};
use crate::net::index::{root_url, simple_url, IndexClient, RemoteError, RemoteFile};
use crate::redact::redact;

/// What one remote cache holds, read once per build.
enum Listing {
    /// A static tree's `jetforge-manifest.json`.
    Manifest(PublishedManifest),
    /// An index's sidecar wheels, by fingerprint.
    Sidecars(BTreeMap<String, RemoteFile>),
}

/// Where a remote cache keeps its attestations (see `verified`), read once per build.
enum AttestedListing {
    /// A static tree's `jetforge-verified.json`, whole.
    Tree(Attestations),
    /// An index's attestation sidecars, by fingerprint (each fetched when its fingerprint hits).
    Sidecars(BTreeMap<String, RemoteFile>),
}

struct RemoteCache {
    url: String,
    root: String,
    simple: String,
    listing: OnceCell<Option<Listing>>,
    /// The error, as the warning tells it, when the attestations cannot be read.
    attested: OnceCell<Result<AttestedListing, String>>,
}

/// The wheels of one fingerprint that a remote cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHit {
    /// The cache as the user named it (redacted).
    pub url: String,
    pub entries: Vec<PublishedEntry>,
    simple: String,
    root: String,
    /// A static tree (its manifest at the root), not an index with sidecars.
    tree: bool,
    /// Which of the build's caches it is.
    cache: usize,
}

/// The remote caches of a build, tried in order. Problems reading a cache are warnings: the
/// recipe is then built instead.
pub struct RemoteCaches<'a> {
    client: IndexClient<'a>,
    caches: Vec<RemoteCache>,
    warned_offline: Cell<bool>,
}

impl<'a> RemoteCaches<'a> {
    /// Nothing is fetched until the first lookup.
    pub fn new(urls: &[String], client: IndexClient<'a>) -> Self {
        let caches = urls
            .iter()
            .map(|u| RemoteCache {
                url: redact(u),
                root: root_url(u),
                simple: simple_url(u),
                listing: OnceCell::new(),
                attested: OnceCell::new(),
            })
            .collect();
        RemoteCaches {
            client,
            caches,
            warned_offline: Cell::new(false),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    /// Every cache's entries for `fingerprint`, in cache order.
    pub fn lookup(&self, fingerprint: &str, warn: &mut dyn FnMut(&str)) -> Vec<RemoteHit> {
        if self.caches.is_empty() {
            return Vec::new();
        }
        if self.client.offline() {
            if !self.warned_offline.replace(true) {
                warn("offline: remote wheel caches are not consulted");
            }
            return Vec::new();
        }
        let mut hits = Vec::new();
        for (i, cache) in self.caches.iter().enumerate() {
            let listing = cache.listing.get_or_init(|| self.list(cache, warn));
            let tree = matches!(listing, Some(Listing::Manifest(_)));
            let entries = match listing {
                Some(Listing::Manifest(m)) => m.find(fingerprint),
                Some(Listing::Sidecars(s)) => match s.get(fingerprint) {
                    Some(file) => self.sidecar_entries(cache, file, fingerprint, warn),
                    None => Vec::new(),
                },
                None => Vec::new(),
            };
            if !entries.is_empty() {
                hits.push(RemoteHit {
                    url: cache.url.clone(),
                    entries,
                    simple: cache.simple.clone(),
                    root: cache.root.clone(),
                    tree,
                    cache: i,
                });
            }
        }
        hits
    }

    /// Downloads one wheel of a hit into `dir`, checking the manifest's sha256.
    pub fn download(
        &self,
        hit: &RemoteHit,
        entry: &PublishedEntry,
        dir: &Path,
    ) -> Result<PathBuf, RemoteError> {
        let files = self
            .client
            .project_files(&hit.simple, &entry.package)?
            .unwrap_or_default();
        let Some(remote) = files.iter().find(|f| f.file == entry.file) else {
            return Err(RemoteError::Status {
                url: format!("{}{}/", redact(&hit.simple), entry.package),
                code: 404,
                body: format!(": `{}` is not listed", entry.file),
            });
        };
        self.client
            .download(&remote.url, &entry.file, &entry.sha256, dir)
    }

    /// The attestations the cache of `hit` holds for its fingerprint (see `verified`); a cache
    /// that cannot be read for them is a warning and attests nothing. A tree's file and an
    /// index's list of sidecars are fetched once per build, whatever the number of hits.
    pub fn attestations(
        &self,
        hit: &RemoteHit,
        fingerprint: &str,
        warn: &mut dyn FnMut(&str),
    ) -> Attestations {
        let listing = self.caches[hit.cache].attested.get_or_init(|| {
            let listing = if hit.tree {
                tree_attestations(&self.client, &hit.root).map(AttestedListing::Tree)
            } else {
                self.client
                    .project_files(&hit.simple, VERIFIED_PROJECT)
                    .map(|files| AttestedListing::Sidecars(verified_sidecars(files)))
            };
            listing.map_err(|e| e.to_string())
        });
        let read = match listing {
            Ok(AttestedListing::Tree(all)) => Ok(all.clone()),
            Ok(AttestedListing::Sidecars(files)) => match files.get(fingerprint) {
                Some(file) => read_verified_sidecar(&self.client, file).map_err(|e| e.to_string()),
                None => Ok(Attestations::default()),
            },
            Err(e) => Err(e.clone()),
        };
        read.unwrap_or_else(|e| {
            warn(&format!(
                "remote cache {}: verification records unusable: {e}",
                hit.url
            ));
            Attestations::default()
        })
    }

    fn list(&self, cache: &RemoteCache, warn: &mut dyn FnMut(&str)) -> Option<Listing> {
        let manifest_url = format!("{}{MANIFEST_FILE}", cache.root);
        let result = self
            .client
            .get(&manifest_url)
            .and_then(|found| match found {
                Some(bytes) => Ok(Some(Listing::Manifest(
                    PublishedManifest::parse(&bytes).map_err(|e| RemoteError::Transport {
                        url: redact(&manifest_url),
                        reason: e.to_string(),
                    })?,
                ))),
                None => Ok(self
                    .client
                    .project_files(&cache.simple, published::SIDECAR_PROJECT)?
                    .map(|files| Listing::Sidecars(sidecars(files)))),
            });
        match result {
            Ok(Some(listing)) => Some(listing),
            Ok(None) => {
                warn(&format!(
                    "remote cache {}: no {MANIFEST_FILE} and no sidecar manifests there (publish to it with `jetforge publish`)",
                    cache.url
                ));
                None
            }
            Err(e) => {
                warn(&format!(
                    "remote cache {} is not usable, building instead: {e}",
                    cache.url
                ));
                None
            }
        }
    }

    fn sidecar_entries(
        &self,
        cache: &RemoteCache,
        file: &RemoteFile,
        fingerprint: &str,
        warn: &mut dyn FnMut(&str),
    ) -> Vec<PublishedEntry> {
        match read_manifest_sidecar(&self.client, file) {
            Ok(m) => m.find(fingerprint),
            Err(e) => {
                warn(&format!(
                    "remote cache {}: sidecar manifest unusable: {e}",
                    cache.url
                ));
                Vec::new()
            }
        }
    }
}

fn sidecars(files: Vec<RemoteFile>) -> BTreeMap<String, RemoteFile> {
    files
        .into_iter()
        .filter_map(|f| Some((published::sidecar_fingerprint(&f.file)?.to_string(), f)))
        .collect()
}

/// A tree's `jetforge-verified.json` (none there: no attestations).
fn tree_attestations(client: &IndexClient, root: &str) -> Result<Attestations, RemoteError> {
    let url = format!("{root}{VERIFIED_FILE}");
    match client.get(&url)? {
        None => Ok(Attestations::default()),
        Some(bytes) => Attestations::parse(&bytes).map_err(|e| RemoteError::Transport {
            url: redact(&url),
            reason: format!("{e:#}"),
        }),
    }
}

/// The attestation sidecars of `fingerprints` on an index, merged.
fn index_attestations(
    client: &IndexClient,
    simple: &str,
    fingerprints: &std::collections::BTreeSet<String>,
) -> Result<Attestations, RemoteError> {
    let mut all = Attestations::default();
    let files = verified_sidecars(client.project_files(simple, VERIFIED_PROJECT)?);
    for (fp, f) in &files {
        if fingerprints.contains(fp) {
            all.merge(read_verified_sidecar(client, f)?.attestations);
        }
    }
    Ok(all)
}

/// An index's attestation sidecars (none listed: none), by fingerprint.
fn verified_sidecars(files: Option<Vec<RemoteFile>>) -> BTreeMap<String, RemoteFile> {
    files
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| Some((verified::sidecar_fingerprint(&f.file)?.to_string(), f)))
        .collect()
}

/// One manifest sidecar's entries, its bytes checked against the index's sha256.
pub(super) fn read_manifest_sidecar(
    client: &IndexClient,
    file: &RemoteFile,
) -> Result<PublishedManifest, RemoteError> {
    let bytes = checked_get(client, file)?;
    published::read_sidecar(&bytes).map_err(|e| RemoteError::Transport {
        url: redact(&file.url),
        reason: e.to_string(),
    })
}

/// One attestation sidecar's records, its bytes checked against the index's sha256.
pub(super) fn read_verified_sidecar(
    client: &IndexClient,
    file: &RemoteFile,
) -> Result<Attestations, RemoteError> {
    let bytes = checked_get(client, file)?;
    verified::read_sidecar(&bytes).map_err(|e| RemoteError::Transport {
        url: redact(&file.url),
        reason: format!("{e:#}"),
    })
}

/// The bytes of a listed file, checked against the sha256 of its link when it has one.
fn checked_get(client: &IndexClient, file: &RemoteFile) -> Result<Vec<u8>, RemoteError> {
    let bytes = client.get(&file.url)?.unwrap_or_default();
    let actual = crate::hash::sha256_hex(&bytes);
    match &file.sha256 {
        Some(expected) if *expected != actual => Err(RemoteError::Checksum {
            url: redact(&file.url),
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(bytes),
    }
}

/// What a cache says about the wheels it holds, for `install` and `verify` from it: its
/// manifest entries (those `want` keeps) and the attestations of their fingerprints.
#[derive(Debug, Clone, Default)]
pub struct CacheView {
    pub entries: Vec<PublishedEntry>,
    pub attested: Attestations,
}

impl CacheView {
    /// Reads the cache at `source`: a local directory (a `publish --dir` tree), or the URL of a
    /// tree or an index (root or `simple/`).
    pub fn read(
        client: &IndexClient,
        source: &str,
        want: &dyn Fn(&PublishedEntry) -> bool,
    ) -> anyhow::Result<Self> {
        let dir = Path::new(source);
        if !source.contains("://") {
            return Self::read_dir(dir, want);
        }
        let root = root_url(source);
        let simple = simple_url(source);
        let manifest_url = format!("{root}{MANIFEST_FILE}");
        let tree = client.get(&manifest_url)?;
        let mut view = CacheView::default();
        if let Some(bytes) = tree {
            let m = PublishedManifest::parse(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", redact(&manifest_url)))?;
            view.entries = m.entries.into_iter().filter(|e| want(e)).collect();
            view.attested = tree_attestations(client, &root)?;
            return Ok(view);
        }
        let sidecar_files = client
            .project_files(&simple, published::SIDECAR_PROJECT)?
            .unwrap_or_default();
        for f in sidecar_files {
            if published::sidecar_fingerprint(&f.file).is_none() {
                continue;
            }
            let m = read_manifest_sidecar(client, &f)?;
            view.entries
                .extend(m.entries.into_iter().filter(|e| want(e)));
        }
        let fingerprints = view.entries.iter().map(|e| e.fingerprint.clone()).collect();
        view.attested = index_attestations(client, &simple, &fingerprints)?;
        Ok(view)
    }

    fn read_dir(dir: &Path, want: &dyn Fn(&PublishedEntry) -> bool) -> anyhow::Result<Self> {
        let read =
            |name: &str| -> anyhow::Result<Option<Vec<u8>>> {
                let path = dir.join(name);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(anyhow::Error::new(e)
                        .context(format!("failed to read `{}`", path.display()))),
                }
            };
        let mut view = CacheView::default();
        if let Some(bytes) = read(MANIFEST_FILE)? {
            let m = PublishedManifest::parse(&bytes)
                .map_err(|e| anyhow::anyhow!("`{}`: {e}", dir.join(MANIFEST_FILE).display()))?;
            view.entries = m.entries.into_iter().filter(|e| want(e)).collect();
        }
        if let Some(bytes) = read(VERIFIED_FILE)? {
            view.attested = Attestations::parse(&bytes)
                .map_err(|e| e.context(format!("`{}`", dir.join(VERIFIED_FILE).display())))?;
        }
        Ok(view)
    }

    /// Whether `e` counts as verified: its build passed every check, or it is attested.
    pub fn is_verified(&self, e: &PublishedEntry) -> bool {
        verified::is_verified(e.verify.as_ref(), &e.fingerprint, &e.sha256, &self.attested)
    }
}
