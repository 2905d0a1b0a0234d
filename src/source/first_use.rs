//! Trust on first use for resources whose digest cannot be known in advance (a recipe says
//! `trust = "first-use"` instead of `sha256`): the first `fetch` records the sha256 it got in a
//! lock file in the cache, and every later use expects exactly that digest.
//!
//! The lock is `<cache>/resources-v1/first-use-lock.json`, keyed by the URL as the recipe writes
//! it (not a mirror's), so copying the cache to an air-gapped machine carries the digests along.
//! Its format is versioned; it is rewritten whole through a temp file and a rename, under a
//! file lock, so two jetforge processes never lose each other's entries or leave half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::source::lock::DirLock;
use crate::source::resource::CACHE_SUBDIR;

const FILE_NAME: &str = "first-use-lock.json";
/// Bump when the layout of the file changes; an unknown version is refused, never guessed at.
const FORMAT: u32 = 1;

/// One recorded resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sha256: String,
    /// The resource's name in the recipe that first fetched it (for people reading the file).
    pub name: String,
    /// When it was recorded (RFC 3339, UTC).
    pub recorded: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockFile {
    format: u32,
    /// URL → entry.
    resources: BTreeMap<String, Entry>,
}

/// Where the lock of `cache_dir` lives.
pub fn lock_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(CACHE_SUBDIR).join(FILE_NAME)
}

/// The digest recorded for `url`, if any.
pub fn recorded(cache_dir: &Path, url: &str) -> Result<Option<Entry>> {
    Ok(read(&lock_path(cache_dir))?.resources.remove(url))
}

/// Records `sha256` for `url` (keeping every other entry).
pub fn record(cache_dir: &Path, url: &str, name: &str, sha256: &str) -> Result<()> {
    let path = lock_path(cache_dir);
    let _lock = DirLock::acquire(&path, "the first-use lock", |m| eprintln!("{m}"))?;
    let mut file = read(&path)?;
    let recorded = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    file.resources.insert(
        url.to_string(),
        Entry {
            sha256: sha256.to_string(),
            name: name.to_string(),
            recorded,
        },
    );
    file.format = FORMAT;
    write_atomically(&path, &file)
}

fn read(path: &Path) -> Result<LockFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockFile::default()),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let file: LockFile = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a valid first-use lock", path.display()))?;
    if file.format != FORMAT {
        return Err(crate::error::failure_hint(
            format!(
                "`{}` has format {}, this jetforge reads format {FORMAT}",
                path.display(),
                file.format
            ),
            "use the jetforge that wrote it, or delete the file to record the digests anew",
        ));
    }
    Ok(file)
}

fn write_atomically(path: &Path, file: &LockFile) -> Result<()> {
    let dir = path.parent().expect("the lock path has a parent");
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".first-use-")
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temp file in `{}`", dir.display()))?;
    let text = serde_json::to_string_pretty(file)?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| tmp.write_all(b"\n"))
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("failed to write `{}`", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("failed to move the lock into place at `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_kept_per_url_and_survive_rewrites() {
        let tmp = tempfile::tempdir().unwrap();
        let c = tmp.path();
        assert_eq!(recorded(c, "https://h/a").unwrap(), None);
        record(c, "https://h/a", "a", &"1".repeat(64)).unwrap();
        record(c, "https://h/b", "b", &"2".repeat(64)).unwrap();
        assert_eq!(
            recorded(c, "https://h/a").unwrap().unwrap().sha256,
            "1".repeat(64)
        );
        assert_eq!(recorded(c, "https://h/b").unwrap().unwrap().name, "b");
        let text = std::fs::read_to_string(lock_path(c)).unwrap();
        assert!(text.contains("\"format\": 1"), "{text}");
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let p = lock_path(tmp.path());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"format": 9, "resources": {}}"#).unwrap();
        let err = format!("{:#}", recorded(tmp.path(), "u").unwrap_err());
        assert!(err.contains("has format 9"), "{err}");
    }
}
