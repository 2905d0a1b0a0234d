//! The remote wheel caches that `build` consults (`[cache] indexes`, `--cache-from`): a static
//! tree's `jetforge-manifest.json`, or an index's sidecar manifests, looked up by fingerprint.
//! The HTTP side (pages, downloads, retries) is the index client of `net::index`.

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::published::{self, PublishedEntry, PublishedManifest, MANIFEST_FILE};
use crate::net::index::{root_url, simple_url, IndexClient, RemoteError, RemoteFile};
use crate::redact::redact;

/// What one remote cache holds, read once per build.
enum Listing {
    /// A static tree's `jetforge-manifest.json`.
    Manifest(PublishedManifest),
    /// An index's sidecar wheels, by fingerprint.
    Sidecars(BTreeMap<String, RemoteFile>),
}

struct RemoteCache {
    url: String,
    root: String,
    simple: String,
    listing: OnceCell<Option<Listing>>,
}

/// The wheels of one fingerprint that a remote cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHit {
    /// The cache as the user named it (redacted).
    pub url: String,
    pub entries: Vec<PublishedEntry>,
    simple: String,
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
        for cache in &self.caches {
            let listing = cache.listing.get_or_init(|| self.list(cache, warn));
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
        let read = self.client.get(&file.url).and_then(|bytes| {
            let bytes = bytes.unwrap_or_default();
            let actual = crate::hash::sha256_hex(&bytes);
            match &file.sha256 {
                Some(expected) if *expected != actual => Err(RemoteError::Checksum {
                    url: redact(&file.url),
                    expected: expected.clone(),
                    actual,
                }),
                _ => published::read_sidecar(&bytes).map_err(|e| RemoteError::Transport {
                    url: redact(&file.url),
                    reason: e.to_string(),
                }),
            }
        });
        match read {
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
