//! Resources: files a build would otherwise download by itself (toolchains, prebuilt archives),
//! fetched up front, checked against their sha256 and kept in the cache.
//!
//! Layout: `<cache>/resources-v1/<sha256>/<file name>`, and for archives
//! `<cache>/resources-v1/<sha256>/extracted/`. Keying by hash means a mirror or a moved URL
//! still hits the cache, and a file only ever lands under its name after its hash was checked
//! (temp file + rename), so whatever is there can be trusted without hashing it again.
//!
//! This module owns the download (proxy per URL from the [`UrlPolicy`], mirrors, retries, test
//! CAs via `SSL_CERT_FILE`) and unpacking; it does not decide proxies or read the config.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tempfile::NamedTempFile;

use crate::envvars;
use crate::net::http::{self, AgentError, AgentOptions};
use crate::net::plain_proxy::{self, Fetched, ProxyGetError};
use crate::net::{FetchOptions, UrlPolicy};

use crate::recipe::Resource;
use crate::redact::redact;
use crate::source::first_use;

/// Versioned so a layout change never reads old data.
pub const CACHE_SUBDIR: &str = "resources-v1";
const EXTRACTED: &str = "extracted";
/// Where a first-use resource that was never fetched would be (it has no digest yet).
const NOT_FETCHED: &str = "not-fetched-yet";
/// What getaddrinfo says (through std's io::Error) for a name that does not exist.
const UNKNOWN_NAME: &str = "Name or service not known";
const PROXY_HINT: &str = "check --proxy / [network] proxy / https_proxy (and no_proxy)";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(
        "resource `{name}` is missing from the cache and jetforge is offline\n  missing: {url}\n  \
         expected at: {}",
        path.display()
    )]
    Offline {
        name: String,
        url: String,
        path: PathBuf,
    },
    #[error(
        "checksum mismatch for resource `{name}` downloaded from {url}\n  expected sha256: {expected}\n  \
         actual sha256:   {actual}\n  the download was deleted"
    )]
    Checksum {
        name: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("failed to download resource `{name}` from {url}{via}: {reason}")]
    Download {
        name: String,
        url: String,
        via: String,
        reason: String,
        hint: Option<String>,
    },
    #[error(
        "resource `{name}` from {url} no longer matches the digest recorded when it was first fetched\n  \
         expected sha256: {expected} (recorded in `{}`)\n  actual sha256:   {actual}\n  the download was deleted",
        lock.display()
    )]
    FirstUseMismatch {
        name: String,
        url: String,
        expected: String,
        actual: String,
        lock: PathBuf,
    },
    #[error("resource `{name}`: {reason}")]
    FirstUseLock { name: String, reason: String },
    #[error("resource `{name}` has an invalid sha256 `{sha256}` (want 64 hex digits)")]
    BadHash { name: String, sha256: String },
    #[error("failed to {what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("failed to extract `{}` (resource `{name}`): {reason}", archive.display())]
    Extract {
        name: String,
        archive: PathBuf,
        reason: String,
    },
    #[error("resource `{name}`: subdir `{subdir}` is not a directory of the archive")]
    Subdir {
        name: String,
        subdir: String,
        top: String,
    },
    #[error("failed to use the CA bundle `{}` (from {}): {reason}", path.display(), envvars::SSL_CERT_FILE)]
    CaFile { path: PathBuf, reason: String },
}

impl crate::error::Hint for ResourceError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Offline { .. } => {
                "run `jetforge fetch` on a machine with network access and copy the cache".into()
            }
            Self::Checksum { .. } => {
                "if the file changed upstream on purpose, update `sha256` in the recipe".into()
            }
            Self::Download { hint, .. } => return hint.clone(),
            Self::FirstUseMismatch { .. } => {
                "if the file changed upstream on purpose, delete its entry from that file (or pin \
                 `sha256` in the recipe) and run `jetforge fetch` again"
                    .into()
            }
            Self::Subdir { top, .. } => format!("the archive's top level holds: {top}"),
            _ => return None,
        })
    }
}

type Result<T> = std::result::Result<T, ResourceError>;

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ResourceError {
    let path = path.to_path_buf();
    move |source| ResourceError::Io { what, path, source }
}

/// Fetches `res` into the cache (unless it is there) and returns the file, or with `extract` the
/// unpacked directory (its `subdir` when given), with the policy's fetch options.
pub fn fetch_resource(res: &Resource, cache_dir: &Path, policy: &dyn UrlPolicy) -> Result<PathBuf> {
    fetch_resource_with(res, cache_dir, policy, &policy.fetch_options())
}

/// [`fetch_resource`] with explicit options.
pub fn fetch_resource_with(
    res: &Resource,
    cache_dir: &Path,
    policy: &dyn UrlPolicy,
    opts: &FetchOptions,
) -> Result<PathBuf> {
    let file = match expected_sha256(res, cache_dir)? {
        Some(sha) => {
            let file = hashed_path(res, &sha, cache_dir)?;
            if !file.is_file() {
                download(res, &file, &sha, cache_dir, policy, opts)?;
            }
            file
        }
        None => first_download(res, cache_dir, policy, opts)?,
    };
    if !res.extract {
        return Ok(file);
    }
    let dir = file.parent().expect("cache_path always has a parent");
    let extracted = extract_once(res, &file, dir)?;
    match &res.subdir {
        Some(sub) => expose_subdir(res, &extracted, sub),
        None => Ok(extracted),
    }
}

/// The path a build sees for `res` (the file, or its extracted directory and `subdir`), whether
/// or not it has been fetched yet; `plan` shows it before anything is downloaded. A resource
/// trusted on first use that was never fetched has no digest yet: its path is under
/// `resources-v1/not-fetched-yet/`, which never exists.
pub fn exposed_path(res: &Resource, cache_dir: &Path) -> Result<PathBuf> {
    let file = match expected_sha256(res, cache_dir)? {
        Some(sha) => hashed_path(res, &sha, cache_dir)?,
        None => cache_dir
            .join(CACHE_SUBDIR)
            .join(NOT_FETCHED)
            .join(file_name(res)),
    };
    if !res.extract {
        return Ok(file);
    }
    let extracted = file.with_file_name(EXTRACTED);
    Ok(match &res.subdir {
        Some(sub) => extracted.join(sub),
        None => extracted,
    })
}

/// The digest `res` must have: the recipe's `sha256`, else the one recorded on first use (None
/// when a first-use resource was never fetched).
pub fn expected_sha256(res: &Resource, cache_dir: &Path) -> Result<Option<String>> {
    match &res.sha256 {
        Some(sha) => Ok(Some(sha.to_ascii_lowercase())),
        None => first_use::recorded(cache_dir, &res.url)
            .map(|e| e.map(|e| e.sha256))
            .map_err(|e| ResourceError::FirstUseLock {
                name: res.name.clone(),
                reason: format!("{e:#}"),
            }),
    }
}

/// Where the downloaded file of `res` with digest `sha256` lives in the cache (whether or not
/// it is there yet).
fn hashed_path(res: &Resource, sha256: &str, cache_dir: &Path) -> Result<PathBuf> {
    let hash = sha256.to_ascii_lowercase();
    // The hash names a directory: anything but hex could climb out of the cache.
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ResourceError::BadHash {
            name: res.name.clone(),
            sha256: sha256.to_string(),
        });
    }
    Ok(cache_dir.join(CACHE_SUBDIR).join(hash).join(file_name(res)))
}

/// The last path segment of the recipe's URL (not the mirror's, so the cache does not depend on
/// mirrors), or the resource name when the URL has none.
fn file_name(res: &Resource) -> String {
    let path = res.url.split(['?', '#']).next().unwrap_or("");
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    match after_host
        .split_once('/')
        .map(|(_, p)| p.rsplit('/').next().unwrap_or(""))
    {
        Some(last) if !last.is_empty() && last != "." && last != ".." => last.to_string(),
        _ => res.name.clone(),
    }
}

/// Downloads `res` to `dest`, which must end up with the digest `expected`.
fn download(
    res: &Resource,
    dest: &Path,
    expected: &str,
    cache_dir: &Path,
    policy: &dyn UrlPolicy,
    opts: &FetchOptions,
) -> Result<()> {
    let dir = dest.parent().expect("cache paths always have a parent");
    let (tmp, actual, url) = download_to_temp(res, dir, dest, policy, opts)?;
    if !actual.eq_ignore_ascii_case(expected) {
        // Dropping the temp file deletes it: a bad download never sits in the cache.
        drop(tmp);
        let (name, url, expected) = (res.name.clone(), redact(&url), expected.to_string());
        return Err(match res.sha256 {
            Some(_) => ResourceError::Checksum {
                name,
                url,
                expected,
                actual,
            },
            None => ResourceError::FirstUseMismatch {
                name,
                url,
                expected,
                actual,
                lock: first_use::lock_path(cache_dir),
            },
        });
    }
    tmp.persist(dest)
        .map_err(|e| io_err("move download into place", dest)(e.error))?;
    Ok(())
}

/// The first fetch of a resource trusted on first use: whatever arrives is kept under its
/// digest, and the digest is recorded for every later use.
fn first_download(
    res: &Resource,
    cache_dir: &Path,
    policy: &dyn UrlPolicy,
    opts: &FetchOptions,
) -> Result<PathBuf> {
    let root = cache_dir.join(CACHE_SUBDIR);
    let pending = root.join(NOT_FETCHED).join(file_name(res));
    let (tmp, actual, _) = download_to_temp(res, &root, &pending, policy, opts)?;
    let dest = hashed_path(res, &actual, cache_dir)?;
    let dir = dest.parent().expect("cache paths always have a parent");
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    tmp.persist(&dest)
        .map_err(|e| io_err("move download into place", &dest)(e.error))?;
    first_use::record(cache_dir, &res.url, &res.name, &actual).map_err(|e| {
        ResourceError::FirstUseLock {
            name: res.name.clone(),
            reason: format!("{e:#}"),
        }
    })?;
    Ok(dest)
}

/// Downloads (or copies, for `file://`) `res` into a temp file in `dir`; returns it with its
/// sha256 and the URL used. Offline, only local files can be had; `dest` is where the missing
/// file was expected, for the message.
fn download_to_temp(
    res: &Resource,
    dir: &Path,
    dest: &Path,
    policy: &dyn UrlPolicy,
    opts: &FetchOptions,
) -> Result<(NamedTempFile, String, String)> {
    let url = policy.rewrite(&res.url);
    let local = url.strip_prefix("file://").map(PathBuf::from);
    if local.is_none() && policy.offline() {
        return Err(ResourceError::Offline {
            name: res.name.clone(),
            url: redact(&res.url),
            path: dest.to_path_buf(),
        });
    }
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let (tmp, actual) = match local {
        Some(path) => copy_local(&path, dir)?,
        None => http_get_with_retries(res, &url, dir, policy, opts)?,
    };
    Ok((tmp, actual, url))
}

fn copy_local(path: &Path, dir: &Path) -> Result<(NamedTempFile, String)> {
    let mut src = File::open(path).map_err(io_err("open", path))?;
    let mut tmp = temp_file(dir)?;
    let hash =
        crate::hash::copy_hashing(&mut src, tmp.as_file_mut()).map_err(io_err("copy", path))?;
    Ok((tmp, hash))
}

fn temp_file(dir: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .map_err(io_err("create a temp file in", dir))
}

/// One failed try: the message, and whether trying again may help.
struct Failure {
    reason: String,
    transient: bool,
}

fn http_get_with_retries(
    res: &Resource,
    url: &str,
    dir: &Path,
    policy: &dyn UrlPolicy,
    opts: &FetchOptions,
) -> Result<(NamedTempFile, String)> {
    let proxy = policy.proxy_for(url);
    let agent = agent(res, url, proxy.as_deref(), opts)?;
    // A fresh temp file per try; failing to make one (`Err`) is not worth another try.
    let got = opts.retry(
        || {
            let mut tmp = temp_file(dir).map_err(|e| Err(Box::new(e)))?;
            let hash = http_get(&agent, proxy.as_deref(), url, tmp.as_file_mut())
                .map_err(|f| Ok(Box::new(f)))?;
            Ok((tmp, hash))
        },
        |e| matches!(e, Ok(f) if f.transient),
    );
    match got {
        Ok(done) => Ok(done),
        Err((Err(e), _)) => Err(*e),
        Err((Ok(failure), tries)) => {
            Err(download_error(res, url, proxy.as_deref(), *failure, tries))
        }
    }
}

fn http_get(
    agent: &ureq::Agent,
    proxy: Option<&str>,
    url: &str,
    dst: &mut File,
) -> std::result::Result<String, Failure> {
    // An http:// URL goes through a plain proxy as an absolute-URI GET, which every proxy
    // takes; ureq would tunnel it with CONNECT, which squid refuses for port 80.
    let mut url = url.to_string();
    if let Some(p) = proxy.filter(|p| plain_proxy::handles(p, &url)) {
        match plain_proxy::get(p, &url).map_err(classify_plain)? {
            Fetched::Body(mut body) => {
                return crate::hash::copy_hashing(&mut body, dst).map_err(|e| Failure {
                    reason: format!("reading the body failed: {e}"),
                    transient: true,
                })
            }
            Fetched::Redirect(to) => url = to,
        }
    }
    let response = agent.get(&url).call().map_err(classify)?;
    let mut body = response.into_body().into_reader();
    crate::hash::copy_hashing(&mut body, dst).map_err(|e| Failure {
        reason: format!("reading the body failed: {e}"),
        transient: true,
    })
}

fn classify(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    // ureq's messages may quote the proxy URL; never let its password through.
    let reason = redact(&e.to_string());
    let transient = match &e {
        E::StatusCode(code) => *code >= 500 || matches!(code, 408 | 429),
        // An unknown name stays unknown; "temporary failure in name resolution" is retried.
        E::Io(_) => !reason.contains(UNKNOWN_NAME),
        E::Timeout(_) | E::ConnectionFailed | E::BodyStalled => true,
        _ => false,
    };
    Failure { reason, transient }
}

fn classify_plain(e: ProxyGetError) -> Failure {
    let reason = redact(&e.to_string());
    let transient = match &e {
        ProxyGetError::Status(code) => *code >= 500 || matches!(code, 408 | 429),
        ProxyGetError::Io(_) => !reason.contains(UNKNOWN_NAME),
        ProxyGetError::Protocol(_) => false,
    };
    Failure { reason, transient }
}

fn download_error(
    res: &Resource,
    url: &str,
    proxy: Option<&str>,
    f: Failure,
    tries: u32,
) -> ResourceError {
    let mirrored = if url != res.url {
        format!(" (mirror of {})", redact(&res.url))
    } else {
        String::new()
    };
    let via = match proxy {
        Some(p) => format!("{mirrored} through proxy {}", redact(p)),
        None => format!("{mirrored} (direct, no proxy)"),
    };
    let tries = if tries > 1 {
        format!(" (after {tries} tries)")
    } else {
        String::new()
    };
    // Both ureq's CONNECT and the plain-proxy GET say the status.
    let refused = proxy.is_some() && f.reason.contains("407");
    let has_credentials = proxy.is_some_and(|p| p.contains('@'));
    let reason = match (refused, has_credentials) {
        (true, true) => "the proxy refused the credentials (407)".to_string(),
        (true, false) => "the proxy requires credentials (407)".to_string(),
        _ => f.reason.clone(),
    };
    let hint = match proxy {
        Some(_) if refused && has_credentials => Some(format!(
            "check the user and password in the proxy URL; {PROXY_HINT}"
        )),
        Some(_) if refused => Some(format!(
            "the proxy wants credentials: put them in its URL \
             (http://user:password@host:port); {PROXY_HINT}"
        )),
        Some(_) => Some(PROXY_HINT.to_string()),
        None if f.reason.contains(UNKNOWN_NAME) || f.reason.contains("host not found") => Some(
            "if this host is only reachable through a proxy, set one with --proxy, \
             [network] proxy or https_proxy"
                .to_string(),
        ),
        None => None,
    };
    ResourceError::Download {
        name: res.name.clone(),
        url: redact(url),
        via,
        reason: format!("{reason}{tries}"),
        hint,
    }
}

/// A fresh agent per download: each URL may need a different proxy.
fn agent(
    res: &Resource,
    url: &str,
    proxy: Option<&str>,
    opts: &FetchOptions,
) -> Result<ureq::Agent> {
    let setup = AgentOptions {
        proxy,
        ca_file: opts.ca_file.as_deref(),
        follow_redirects: true,
        statuses_as_responses: false,
    };
    http::agent(&setup).map_err(|e| match e {
        AgentError::Proxy { reason } => ResourceError::Download {
            name: res.name.clone(),
            url: redact(url),
            via: format!(" through proxy {}", redact(proxy.unwrap_or_default())),
            reason: format!("invalid proxy URL: {reason}"),
            hint: Some(PROXY_HINT.to_string()),
        },
        AgentError::Ca { path, reason } => ResourceError::CaFile { path, reason },
    })
}

/// Unpacks `archive` into `dir/extracted` once. Unpacking goes to a temp dir that is renamed
/// into place, so an interrupted run never leaves a half-extracted tree that looks complete.
fn extract_once(res: &Resource, archive: &Path, dir: &Path) -> Result<PathBuf> {
    let out = dir.join(EXTRACTED);
    if out.is_dir() {
        return Ok(out);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(dir)
        .map_err(io_err("create a temp dir in", dir))?;
    unpack(archive, tmp.path()).map_err(|reason| ResourceError::Extract {
        name: res.name.clone(),
        archive: archive.to_path_buf(),
        reason,
    })?;
    let tmp = tmp.keep();
    if let Err(e) = fs::rename(&tmp, &out) {
        let _ = fs::remove_dir_all(&tmp);
        // Another jetforge extracting the same archive at the same time won the race.
        if !out.is_dir() {
            return Err(io_err("move extracted tree into place", &out)(e));
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq)]
enum ArchiveKind {
    TarGz,
    TarXz,
    Tar,
    Zip,
}

/// By magic bytes first (a URL's name can lie), then by file name.
fn archive_kind(archive: &Path) -> io::Result<Option<ArchiveKind>> {
    let mut head = Vec::with_capacity(262);
    File::open(archive)
        .and_then(|f| f.take(262).read_to_end(&mut head))
        .map_err(crate::paths::io_context("read", archive))?;
    let name = archive.to_string_lossy().to_ascii_lowercase();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveKind::TarGz)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(ArchiveKind::TarXz)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(ArchiveKind::Zip)
    } else if head.get(257..262) == Some(b"ustar") || name.ends_with(".tar") {
        Some(ArchiveKind::Tar)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(ArchiveKind::TarGz)
    } else if name.ends_with(".tar.xz") || name.ends_with(".txz") {
        Some(ArchiveKind::TarXz)
    } else if name.ends_with(".zip") {
        Some(ArchiveKind::Zip)
    } else {
        None
    })
}

fn unpack(archive: &Path, dest: &Path) -> std::result::Result<(), String> {
    let kind = archive_kind(archive).map_err(|e| e.to_string())?;
    let open = || {
        File::open(archive)
            .map(io::BufReader::new)
            .map_err(|e| e.to_string())
    };
    match kind {
        Some(ArchiveKind::TarGz) => unpack_tar(flate2::read::GzDecoder::new(open()?), dest),
        Some(ArchiveKind::TarXz) => unpack_tar(xz2::read::XzDecoder::new(open()?), dest),
        Some(ArchiveKind::Tar) => unpack_tar(open()?, dest),
        Some(ArchiveKind::Zip) => unpack_zip(open()?, dest),
        None => Err("unknown archive format (expected tar.gz, tar.xz, tar or zip)".into()),
    }
}

fn unpack_tar(reader: impl Read, dest: &Path) -> std::result::Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if !stays_inside(Path::new(""), &path) {
            return Err(format!(
                "entry `{}` points outside the archive",
                path.display()
            ));
        }
        if let Some(target) = entry.link_name().map_err(|e| e.to_string())? {
            // Symlinks resolve from their own directory, hard links from the archive root.
            let base = match entry.header().entry_type() {
                tar::EntryType::Symlink => path.parent().unwrap_or(Path::new("")),
                _ => Path::new(""),
            };
            if !stays_inside(base, &target) {
                return Err(format!(
                    "link `{}` -> `{}` points outside the archive",
                    path.display(),
                    target.display()
                ));
            }
        }
        entry
            .unpack_in(dest)
            .map_err(|e| format!("entry `{}`: {e}", path.display()))?;
    }
    Ok(())
}

fn unpack_zip(reader: impl Read + io::Seek, dest: &Path) -> std::result::Result<(), String> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| e.to_string())?;
    for i in 0..archive.len() {
        let file = archive.by_index(i).map_err(|e| e.to_string())?;
        if file.enclosed_name().is_none() {
            return Err(format!(
                "entry `{}` points outside the archive",
                String::from_utf8_lossy(file.name_raw())
            ));
        }
    }
    archive.extract(dest).map_err(|e| e.to_string())
}

/// True when `rel`, taken from inside `base` (itself relative to the archive root), never climbs
/// above the root and is not absolute.
fn stays_inside(base: &Path, rel: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in base.components().chain(rel.components()) {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn expose_subdir(res: &Resource, extracted: &Path, sub: &str) -> Result<PathBuf> {
    let dir = extracted.join(sub);
    if stays_inside(Path::new(""), Path::new(sub)) && dir.is_dir() {
        return Ok(dir);
    }
    let mut top: Vec<String> = fs::read_dir(extracted)
        .map_err(io_err("list", extracted))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    top.sort();
    Err(ResourceError::Subdir {
        name: res.name.clone(),
        subdir: sub.to_string(),
        top: top.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Direct;

    fn resource(url: &str, sha256: &str) -> Resource {
        Resource {
            name: "blob".into(),
            url: url.into(),
            sha256: Some(sha256.into()),
            extract: false,
            env: None,
            subdir: None,
        }
    }

    #[test]
    fn file_name_comes_from_the_url_path() {
        let f = |u| file_name(&resource(u, ""));
        assert_eq!(f("https://h/a/llvm-17.tar.xz?x=1#y"), "llvm-17.tar.xz");
        assert_eq!(f("https://h/"), "blob");
        assert_eq!(f("https://h"), "blob");
        assert_eq!(f("file:///srv/x.zip"), "x.zip");
        assert_eq!(f("https://h/a/.."), "blob");
    }

    #[test]
    fn a_hash_that_is_not_hex_is_refused() {
        let r = resource("https://h/x", "../../etc");
        assert!(matches!(
            exposed_path(&r, Path::new("/c")),
            Err(ResourceError::BadHash { .. })
        ));
    }

    #[test]
    fn stays_inside_rejects_escapes() {
        let p = Path::new;
        assert!(stays_inside(p(""), p("a/b/../c")));
        assert!(stays_inside(p("a/b"), p("../c")));
        assert!(!stays_inside(p(""), p("../x")));
        assert!(!stays_inside(p(""), p("a/../../x")));
        assert!(!stays_inside(p("a"), p("../../x")));
        assert!(!stays_inside(p(""), p("/etc/passwd")));
    }

    /// A tar whose entry name climbs out must fail, not write outside the cache.
    #[test]
    fn tar_with_parent_dir_entry_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..9].copy_from_slice(b"../escape");
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut data = header.as_bytes().to_vec();
        data.extend_from_slice(&[b'x'; 512]);
        data.extend_from_slice(&[0; 1024]);
        let archive = tmp.path().join("evil.tar");
        fs::write(&archive, data).unwrap();
        let dest = tmp.path().join("out");
        fs::create_dir(&dest).unwrap();
        let err = unpack(&archive, &dest).unwrap_err();
        assert!(err.contains("points outside"), "{err}");
        assert!(!tmp.path().join("escape").exists());
    }

    #[test]
    fn tar_with_escaping_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("link.tar");
        let mut b = tar::Builder::new(File::create(&archive).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "dir/link", "../../etc").unwrap();
        b.finish().unwrap();
        drop(b);
        let err = unpack(&archive, tmp.path()).unwrap_err();
        assert!(err.contains("link `dir/link`"), "{err}");
    }

    #[test]
    fn offline_without_cache_names_the_missing_resource() {
        let tmp = tempfile::tempdir().unwrap();
        let r = resource("https://h/x.bin", &"a".repeat(64));
        let err = fetch_resource(&r, tmp.path(), &Direct { offline: true })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("resource `blob`") && err.contains("https://h/x.bin"),
            "{err}"
        );
    }
}
