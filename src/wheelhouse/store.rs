//! The wheelhouse directory and its `manifest.json`: which wheel was built from which inputs.
//!
//! ```text
//! <dir>/.jetforge-wheelhouse-v1   format marker; another version's directory is refused
//! <dir>/manifest.json             {"format": 2, "wheels": [entry…]}, one entry per (package, target)
//! <dir>/*.whl                     accepted wheels
//! <dir>/.records/<wheel>.json     the build records of one wheel file (see below)
//! <dir>/broken/*.whl              wheels that failed their checks, with `<file>.why`
//! <dir>/simple/                   PEP 503 index (see `index`)
//! ```
//!
//! The manifest is read once per command and kept in memory, indexed by fingerprint, so a
//! no-op build of thousands of recipes parses it once; it is written only when it changes.
//!
//! Integrity without re-reading gigabytes: each entry records, beside the sha256, the stat data
//! of its file when it was last hashed (size, mtime, inode, ctime), as git's index, ninja and
//! cargo do. A wheel whose stat data is unchanged is trusted; any change (a rewrite in place
//! with the size and mtime restored still moves the ctime) re-hashes it. `verify_all` (build
//! `--verify-wheels`) re-hashes every wheel regardless; publish and install hash them anyway.
//! Format 2 added the stat data; format 1 manifests are still read (their wheels are hashed
//! once, then their stat data is recorded).
//!
//! Why `.records/`: the manifest is the only place that says which fingerprint a wheel was
//! built from, so a deleted manifest used to mean rebuilding everything. Each wheel file gets a
//! small JSON record (its manifest entries) written with it, from which a missing manifest is
//! rebuilt (package and version from the wheel's own `METADATA`, re-hashed against the recorded
//! sha256). The record lives beside the wheel, not inside its `*.dist-info`, because changing
//! the wheel would change its sha256 and `RECORD` and make it differ from what was built and
//! verified, and one pure wheel may serve several targets; a dot directory keeps `pip
//! --find-links` and the index from ever seeing it.
//!
//! Every write is atomic (see `atomic`). Checking wheels is `check`'s job: the caller decides
//! between [`Wheelhouse::add`] and [`Wheelhouse::add_broken`]. One writer at a time is assumed.
//!
//! Size: about 740 lines of code and 330 of unit tests: the manifest (format 2 with stat
//! fingerprints), the per-wheel records that rebuild a lost manifest, and the cached-wheel lookup
//! are one data structure kept consistent under one lock; the tests exercise their interplay
//! (stale stat data, format upgrades, recovery).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::atomic;
use super::index::{self, IndexedWheel};
use super::verified::VerifyState;
use super::wheel::{normalize_name, sha256_file, WheelInfo};
use crate::error;

/// The format written. Format 1 (no stat data) is still read.
const FORMAT: u32 = 2;
const READABLE: [u32; 2] = [1, 2];
const MARKER: &str = ".jetforge-wheelhouse-v1";
const MARKER_PREFIX: &str = ".jetforge-wheelhouse-v";
const MANIFEST: &str = "manifest.json";
const BROKEN: &str = "broken";
const RECORDS: &str = ".records";

/// The stat data of a wheel file when its sha256 was last computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub ctime_ns: i128,
}

impl FileStat {
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            inode: meta.ino(),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One wheel in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// PEP 503 normalized project name.
    pub package: String,
    pub version: String,
    /// File name inside the wheelhouse.
    pub file: String,
    pub sha256: String,
    /// The file's stat data when `sha256` was last checked (format 2; absent in format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<FileStat>,
    /// The build's cache key (see `fingerprint`).
    pub fingerprint: String,
    pub commit: Option<String>,
    /// Target profile name.
    pub target: String,
    /// RFC 3339, UTC.
    pub built_at: String,
    /// The recipe that built it: a recipe's distributions are known from its wheels' METADATA,
    /// whatever the recipe is called. Absent in manifests written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// How far its `[verify]` checks ran when it was stored (see `verified`). Absent in
    /// manifests written before it was recorded: unknown, never passed. An optional field
    /// keeps the format at 2: older jetforge versions ignore it (and drop it when they rewrite
    /// the manifest, which reads back as unknown, the safe side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyState>,
}

impl ManifestEntry {
    /// Whether this wheel is one of `recipe`'s: recorded so, or (in an older manifest that
    /// records no recipe) named as one of the distributions the recipe declares.
    pub fn is_of(&self, recipe: &str, declared: &[String]) -> bool {
        match &self.recipe {
            Some(r) => r == recipe,
            None => declared.iter().any(|d| normalize_name(d) == self.package),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    wheels: Vec<ManifestEntry>,
}

/// What the build knows about a wheel that the wheel itself does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub fingerprint: String,
    pub commit: Option<String>,
    pub target: String,
    /// The recipe that built it.
    pub recipe: Option<String>,
    /// How far its checks ran (`None`: not known, e.g. taken from a cache that did not say).
    pub verify: Option<VerifyState>,
}

/// A wheel after [`Wheelhouse::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWheel {
    pub path: PathBuf,
    pub entry: ManifestEntry,
    /// The entry for the same package and target that this one replaced.
    pub replaced: Option<ManifestEntry>,
}

/// Whether the wheels of a fingerprint can be taken from the wheelhouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Every wheel recorded for it is there and intact: their file names.
    Hit(Vec<String>),
    /// Nothing is recorded for it.
    Miss,
    /// Something is recorded but cannot be used; the reason, for `-v`.
    Unusable(String),
}

/// The manifest in memory, with the index a lookup needs.
#[derive(Debug, Clone)]
struct Loaded {
    manifest: Manifest,
    /// fingerprint → indices into `manifest.wheels`.
    by_fingerprint: HashMap<String, Vec<usize>>,
    /// Set when entries changed since the manifest was read (only stat data: see `flush`).
    stale_stats: bool,
}

impl Loaded {
    fn new(manifest: Manifest) -> Self {
        let mut by_fingerprint: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in manifest.wheels.iter().enumerate() {
            by_fingerprint
                .entry(e.fingerprint.clone())
                .or_default()
                .push(i);
        }
        Self {
            manifest,
            by_fingerprint,
            stale_stats: false,
        }
    }
}

#[derive(Debug)]
pub struct Wheelhouse {
    dir: PathBuf,
    /// Re-hash every wheel, whatever its stat data says.
    verify_all: bool,
    loaded: Mutex<Option<Loaded>>,
    /// Set once this process changed the wheel files, so the index must be rewritten.
    changed: Mutex<bool>,
    /// What was done to recover a missing manifest, to be told to the user.
    recovered: Mutex<Option<String>>,
}

impl Clone for Wheelhouse {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            verify_all: self.verify_all,
            loaded: Mutex::new(self.lock().clone()),
            changed: Mutex::new(*self.changed.lock().unwrap_or_else(|e| e.into_inner())),
            recovered: Mutex::new(None),
        }
    }
}

impl Wheelhouse {
    /// Used when the user names no directory.
    pub const DEFAULT_DIR: &'static str = "wheelhouse";

    /// Opens `dir`, creating it (with its format marker) if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("failed to create wheelhouse `{}`", dir.display()))?;
        check_format_marker(dir)?;
        let marker = dir.join(MARKER);
        if !marker.exists() {
            atomic::write(&marker, b"")?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            verify_all: false,
            loaded: Mutex::new(None),
            changed: Mutex::new(false),
            recovered: Mutex::new(None),
        })
    }

    /// Re-hash every wheel on use instead of trusting unchanged stat data.
    pub fn verify_all(mut self, yes: bool) -> Self {
        self.verify_all = yes;
        self
    }

    /// Opens `dir` when it exists, creating nothing: `None` when there is no wheelhouse yet
    /// (e.g. `plan` before the first build).
    pub fn open_existing(dir: &Path) -> Result<Option<Self>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        Self::open(dir).map(Some)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn broken_dir(&self) -> PathBuf {
        self.dir.join(BROKEN)
    }

    /// How a missing manifest was rebuilt from the wheels on disk, once, if it was.
    pub fn take_recovery_note(&self) -> Option<String> {
        self.recovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Copies an accepted wheel in (atomically) and records it, replacing the entry of the same
    /// package and target; the replaced wheel file is deleted unless another entry uses it.
    pub fn add(&self, wheel: &Path, meta: &EntryMeta) -> Result<StoredWheel> {
        let info = WheelInfo::read(wheel)?;
        let dest = self.dir.join(info.file());
        atomic::copy(wheel, &dest)?;
        self.mark_changed();
        let entry = ManifestEntry {
            package: info.package(),
            version: info.metadata.version.to_string(),
            file: info.file().to_string(),
            sha256: hash(&dest)?,
            stat: Some(stat(&dest)?),
            fingerprint: meta.fingerprint.clone(),
            commit: meta.commit.clone(),
            target: meta.target.clone(),
            built_at: now_rfc3339(),
            recipe: meta.recipe.clone(),
            verify: meta.verify.clone(),
        };
        let mut guard = self.loaded()?;
        let loaded = guard.as_mut().expect("loaded above");
        let mut manifest = loaded.manifest.clone();
        let replaced = take_entry(&mut manifest, &entry.package, &entry.target);
        manifest.wheels.push(entry.clone());
        self.save(&mut manifest)?;
        self.write_record(&manifest, &entry.file)?;
        if let Some(old) = &replaced {
            self.delete_if_unused(&manifest, &old.file)?;
        }
        *loaded = Loaded::new(manifest);
        Ok(StoredWheel {
            path: dest,
            entry,
            replaced,
        })
    }

    /// Moves a wheel that failed its checks to `broken/` (atomically) with `<file>.why`
    /// holding `reason`. It never enters the manifest or the index.
    pub fn add_broken(&self, wheel: &Path, reason: &str) -> Result<PathBuf> {
        let broken = self.broken_dir();
        fs::create_dir_all(&broken)
            .with_context(|| format!("failed to create `{}`", broken.display()))?;
        let file = wheel
            .file_name()
            .with_context(|| format!("`{}` names no file", wheel.display()))?;
        let dest = broken.join(file);
        atomic::copy(wheel, &dest)?;
        let why = broken.join(format!("{}.why", file.to_string_lossy()));
        atomic::write(&why, format!("{reason}\n").as_bytes())?;
        fs::remove_file(wheel)
            .with_context(|| format!("failed to remove `{}`", wheel.display()))?;
        Ok(dest)
    }

    /// The entry of `package` built with `fingerprint`, if its file is there intact (see the
    /// module comment for when that re-hashes it).
    pub fn find(&self, package: &str, fingerprint: &str) -> Result<Option<ManifestEntry>> {
        let package = normalize_name(package);
        let mut guard = self.loaded()?;
        let loaded = guard.as_mut().expect("loaded above");
        let Some(i) = loaded.by_fingerprint.get(fingerprint).and_then(|ix| {
            ix.iter()
                .copied()
                .find(|&i| loaded.manifest.wheels[i].package == package)
        }) else {
            return Ok(None);
        };
        Ok(match self.check_intact(loaded, i)? {
            Integrity::Intact => Some(loaded.manifest.wheels[i].clone()),
            _ => None,
        })
    }

    /// The wheels recorded for `fingerprint` and `target`, if every one is still intact.
    pub fn cached(&self, fingerprint: &str, target: &str) -> Result<Cached> {
        let mut guard = self.loaded()?;
        let loaded = guard.as_mut().expect("loaded above");
        let ix: Vec<usize> = loaded
            .by_fingerprint
            .get(fingerprint)
            .map(|ix| {
                ix.iter()
                    .copied()
                    .filter(|&i| loaded.manifest.wheels[i].target == target)
                    .collect()
            })
            .unwrap_or_default();
        if ix.is_empty() {
            return Ok(Cached::Miss);
        }
        let mut files = Vec::new();
        for i in ix {
            let file = loaded.manifest.wheels[i].file.clone();
            match self.check_intact(loaded, i)? {
                Integrity::Intact => files.push(file),
                Integrity::Missing => {
                    return Ok(Cached::Unusable(format!(
                        "wheel {file} is missing from the wheelhouse"
                    )))
                }
                Integrity::Changed { recorded, actual } => {
                    return Ok(Cached::Unusable(format!(
                        "wheel {file} changed on disk (sha256 {actual}, recorded {recorded})"
                    )))
                }
            }
        }
        Ok(Cached::Hit(files))
    }

    /// The path of `entry`'s wheel when it is intact, trusting unchanged stat data as `cached`
    /// does (a changed file is re-hashed); missing or other bytes are an error.
    pub fn intact_path(&self, entry: &ManifestEntry) -> Result<PathBuf> {
        let mut guard = self.loaded()?;
        let loaded = guard.as_mut().expect("loaded above");
        let Some(i) = loaded
            .manifest
            .wheels
            .iter()
            .position(|e| e.file == entry.file)
        else {
            return Err(error::failure_hint(
                format!(
                    "`{}` is not recorded in the wheelhouse `{}`",
                    entry.file,
                    self.dir.display()
                ),
                "rebuild it with `jetforge build`",
            ));
        };
        let path = self.dir.join(&entry.file);
        match self.check_intact(loaded, i)? {
            Integrity::Intact => Ok(path),
            Integrity::Missing => Err(error::failure_hint(
                format!("`{}` is missing from the wheelhouse", path.display()),
                "rebuild it with `jetforge build`",
            )),
            Integrity::Changed { recorded, actual } => {
                Err(changed_since_built(&path, &recorded, &actual))
            }
        }
    }

    /// Re-hashes the files of `entries` (whatever their stat data says): what `install` runs
    /// before handing them to pip. The first one that is missing or changed is an error.
    pub fn verify_files(&self, entries: &[ManifestEntry]) -> Result<()> {
        for e in entries {
            self.verify_file(&e.file, &e.sha256)?;
        }
        Ok(())
    }

    /// Re-hashes wheel `file` and returns its path when it still has the recorded `sha256`.
    pub fn verify_file(&self, file: &str, sha256: &str) -> Result<PathBuf> {
        let path = self.dir.join(file);
        let actual = hash(&path)?;
        if actual != sha256 {
            return Err(changed_since_built(&path, sha256, &actual));
        }
        Ok(path)
    }

    /// Forgets the entry of `package` for `target` and deletes its file unless another entry
    /// uses it.
    pub fn remove(&self, package: &str, target: &str) -> Result<Option<ManifestEntry>> {
        let mut guard = self.loaded()?;
        let loaded = guard.as_mut().expect("loaded above");
        let mut manifest = loaded.manifest.clone();
        let removed = take_entry(&mut manifest, &normalize_name(package), target);
        if let Some(old) = &removed {
            self.mark_changed();
            self.save(&mut manifest)?;
            self.write_record(&manifest, &old.file)?;
            self.delete_if_unused(&manifest, &old.file)?;
            *loaded = Loaded::new(manifest);
        }
        Ok(removed)
    }

    /// Every manifest entry, sorted by package and target.
    pub fn entries(&self) -> Result<Vec<ManifestEntry>> {
        Ok(self
            .loaded()?
            .as_ref()
            .expect("loaded above")
            .manifest
            .wheels
            .clone())
    }

    /// Writes the stat data learnt by re-hashing unchanged wheels (so the next run trusts them
    /// again without hashing); writes nothing when there is none.
    pub fn flush(&self) -> Result<()> {
        let mut guard = self.lock();
        let Some(loaded) = guard.as_mut() else {
            return Ok(());
        };
        if loaded.stale_stats {
            self.save(&mut loaded.manifest)?;
            loaded.stale_stats = false;
            *loaded = Loaded::new(loaded.manifest.clone());
        }
        Ok(())
    }

    /// Regenerates `simple/` from the wheels on disk.
    pub fn write_index(&self) -> Result<Vec<IndexedWheel>> {
        let known = self.known_hashes();
        index::write_index_with(&self.dir, &index::wheels_in(&self.dir)?, &|p| {
            known_hash(&known, p)
        })
    }

    /// [`Wheelhouse::write_index`], unless nothing can have changed: this process changed no
    /// wheel and the index is newer than the last change of the directory's entries.
    pub fn refresh_index(&self) -> Result<()> {
        let changed = *self.changed.lock().unwrap_or_else(|e| e.into_inner());
        if changed || !self.index_is_current() {
            self.write_index()?;
        }
        Ok(())
    }

    fn index_is_current(&self) -> bool {
        let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        match (mtime(&self.dir.join("simple/index.html")), mtime(&self.dir)) {
            (Some(index), Some(dir)) => index >= dir,
            _ => false,
        }
    }

    /// file name → sha256, for the files whose stat data is the recorded one.
    fn known_hashes(&self) -> HashMap<String, (FileStat, String)> {
        let guard = self.lock();
        let Some(loaded) = guard.as_ref() else {
            return HashMap::new();
        };
        loaded
            .manifest
            .wheels
            .iter()
            .filter_map(|e| Some((e.file.clone(), (e.stat?, e.sha256.clone()))))
            .collect()
    }

    fn mark_changed(&self) {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    fn lock(&self) -> MutexGuard<'_, Option<Loaded>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The manifest, read on first use.
    fn loaded(&self) -> Result<MutexGuard<'_, Option<Loaded>>> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(Loaded::new(self.load()?));
        }
        Ok(guard)
    }

    /// Whether entry `i`'s file is intact; records fresh stat data after a re-hash that matched.
    fn check_intact(&self, loaded: &mut Loaded, i: usize) -> Result<Integrity> {
        let entry = &loaded.manifest.wheels[i];
        let path = self.dir.join(&entry.file);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(Integrity::Missing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Integrity::Missing),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to stat `{}`", path.display()))
            }
        };
        let now = FileStat::of(&meta);
        if !self.verify_all && entry.stat == Some(now) {
            return Ok(Integrity::Intact);
        }
        let actual = hash(&path)?;
        if actual != entry.sha256 {
            return Ok(Integrity::Changed {
                recorded: entry.sha256.clone(),
                actual,
            });
        }
        if entry.stat != Some(now) {
            // Same bytes, other stat data (copied, touched, format 1): trust it next time.
            let file = entry.file.clone();
            for e in loaded.manifest.wheels.iter_mut().filter(|e| e.file == file) {
                e.stat = Some(now);
            }
            loaded.stale_stats = true;
        }
        Ok(Integrity::Intact)
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST)
    }

    fn load(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.recover(),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", path.display()))
            }
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            error::failure_hint(
                format!("`{}` is not a valid manifest: {e}", path.display()),
                "restore it, or delete it: it is then rebuilt from the wheels and their records in `.records/`",
            )
        })?;
        if !READABLE.contains(&manifest.format) {
            return Err(wrong_format(&path, &manifest.format.to_string(), "1 or 2"));
        }
        Ok(manifest)
    }

    /// Rebuilds a missing manifest from the wheels on disk and their records; wheels without a
    /// record, or whose bytes are not the recorded ones, are left out (and so rebuilt).
    fn recover(&self) -> Result<Manifest> {
        let mut manifest = Manifest {
            format: FORMAT,
            wheels: Vec::new(),
        };
        let wheels = index::wheels_in(&self.dir)?;
        if wheels.is_empty() {
            return Ok(manifest);
        }
        let mut unusable = Vec::new();
        for path in &wheels {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(records) = self.read_record(&file) else {
                unusable.push(format!("{file}: no build record"));
                continue;
            };
            let sha256 = hash(path)?;
            let now = stat(path)?;
            let records: Vec<ManifestEntry> = records
                .into_iter()
                .filter(|r| {
                    let same = r.sha256 == sha256;
                    if !same {
                        unusable.push(format!(
                            "{file}: changed on disk (sha256 {sha256}, recorded {})",
                            r.sha256
                        ));
                    }
                    same
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            let info = match WheelInfo::read(path) {
                Ok(info) => info,
                Err(e) => {
                    unusable.push(format!("{file}: {e}"));
                    continue;
                }
            };
            for r in records {
                manifest.wheels.push(ManifestEntry {
                    package: info.package(),
                    version: info.metadata.version.to_string(),
                    file: file.clone(),
                    sha256: sha256.clone(),
                    stat: Some(now),
                    ..r
                });
            }
        }
        let mut note = format!(
            "manifest missing: re-read {} wheels from disk ({} entries recovered)",
            wheels.len(),
            manifest.wheels.len()
        );
        for u in &unusable {
            note.push_str(&format!("\n  left out, will be rebuilt: {u}"));
        }
        *self.recovered.lock().unwrap_or_else(|e| e.into_inner()) = Some(note);
        self.save(&mut manifest)?;
        Ok(manifest)
    }

    fn save(&self, manifest: &mut Manifest) -> Result<()> {
        manifest.format = FORMAT;
        manifest
            .wheels
            .sort_by(|a, b| (&a.package, &a.target).cmp(&(&b.package, &b.target)));
        let mut json =
            serde_json::to_string_pretty(manifest).context("serializing the manifest")?;
        json.push('\n');
        atomic::write(&self.manifest_path(), json.as_bytes())
    }

    fn record_path(&self, file: &str) -> PathBuf {
        self.dir.join(RECORDS).join(format!("{file}.json"))
    }

    fn read_record(&self, file: &str) -> Option<Vec<ManifestEntry>> {
        let text = fs::read_to_string(self.record_path(file)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the record of wheel `file` (its manifest entries), or removes it when it has none.
    fn write_record(&self, manifest: &Manifest, file: &str) -> Result<()> {
        let path = self.record_path(file);
        let entries: Vec<&ManifestEntry> =
            manifest.wheels.iter().filter(|e| e.file == file).collect();
        if entries.is_empty() {
            return remove_if_exists(&path);
        }
        let dir = self.dir.join(RECORDS);
        fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let mut json = serde_json::to_string_pretty(&entries).context("serializing a record")?;
        json.push('\n');
        atomic::write(&path, json.as_bytes())
    }

    fn delete_if_unused(&self, manifest: &Manifest, file: &str) -> Result<()> {
        if manifest.wheels.iter().any(|e| e.file == file) {
            return Ok(());
        }
        remove_if_exists(&self.dir.join(file))?;
        remove_if_exists(&self.record_path(file))
    }
}

/// What a wheel file is compared with its entry.
enum Integrity {
    Intact,
    Missing,
    Changed { recorded: String, actual: String },
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

/// The recorded sha256 of `path` when its stat data is still the recorded one.
fn known_hash(known: &HashMap<String, (FileStat, String)>, path: &Path) -> Option<String> {
    let file = path.file_name()?.to_string_lossy();
    let (recorded, sha) = known.get(file.as_ref())?;
    let now = FileStat::of(&fs::metadata(path).ok()?);
    (now == *recorded).then(|| sha.clone())
}

fn take_entry(manifest: &mut Manifest, package: &str, target: &str) -> Option<ManifestEntry> {
    let i = manifest
        .wheels
        .iter()
        .position(|e| e.package == package && e.target == target)?;
    Some(manifest.wheels.remove(i))
}

fn hash(path: &Path) -> Result<String> {
    sha256_file(path).with_context(|| format!("failed to hash `{}`", path.display()))
}

fn stat(path: &Path) -> Result<FileStat> {
    let meta =
        fs::metadata(path).with_context(|| format!("failed to stat `{}`", path.display()))?;
    Ok(FileStat::of(&meta))
}

/// The error for a wheel whose bytes are not the ones its manifest entry records.
fn changed_since_built(path: &Path, recorded: &str, actual: &str) -> anyhow::Error {
    error::failure_hint(
        format!(
            "`{}` in the wheelhouse changed since it was built\n  manifest sha256: {recorded}\n  file sha256:     {actual}",
            path.display(),
        ),
        "rebuild it (`jetforge build` rebuilds a wheel that changed on disk)",
    )
}

/// Now, as the manifest records times (RFC 3339, UTC, whole seconds).
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|e| panic!("RFC 3339 formats every UTC time: {e}"))
}

/// Refuses a directory another wheelhouse format wrote, so old data is never misread.
fn check_format_marker(dir: &Path) -> Result<()> {
    let read = fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(version) = name.strip_prefix(MARKER_PREFIX) {
            if name != MARKER {
                return Err(wrong_format(dir, version, "1"));
            }
        }
    }
    Ok(())
}

/// `reads`: the formats this jetforge reads ("1"; the manifest's "1 and 2").
fn wrong_format(path: &Path, found: &str, reads: &str) -> anyhow::Error {
    error::input_hint(
        format!(
            "`{}` is a wheelhouse of format {found}; this jetforge reads format {reads}",
            path.display()
        ),
        "use another wheelhouse directory, or remove this one to rebuild it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheelhouse::fixtures::TestWheel;

    /// A wheelhouse holding one wheel, `a` 1.0 of fingerprint `fp`.
    fn house_with_a() -> (tempfile::TempDir, Wheelhouse, StoredWheel) {
        let out = tempfile::tempdir().unwrap();
        let house = tempfile::tempdir().unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let stored = wh
            .add(&TestWheel::new("a", "1.0").write(out.path()), &meta("fp"))
            .unwrap();
        (house, wh, stored)
    }

    fn meta(fingerprint: &str) -> EntryMeta {
        EntryMeta {
            fingerprint: fingerprint.to_string(),
            commit: Some("a".repeat(40)),
            target: "jetson-orin".to_string(),
            recipe: Some("torch".to_string()),
            verify: Some(VerifyState::Pending {
                reason: "no GPU".into(),
            }),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn add_copies_atomically_and_records_the_wheel() {
        let out = tempfile::tempdir().unwrap();
        let house = tempfile::tempdir().unwrap();
        let built = TestWheel::new("Torch", "2.9.0").write(out.path());
        let wh = Wheelhouse::open(house.path()).unwrap();
        let stored = wh.add(&built, &meta("fp1")).unwrap();

        assert_eq!(
            names(house.path()),
            [
                MARKER,
                RECORDS,
                "Torch-2.9.0-cp310-cp310-linux_aarch64.whl",
                MANIFEST
            ]
        );
        assert_eq!(stored.entry.package, "torch");
        assert_eq!(stored.entry.sha256, sha256_file(&built).unwrap());
        assert!(
            stored.entry.built_at.ends_with('Z'),
            "{}",
            stored.entry.built_at
        );
        assert_eq!(stored.replaced, None);

        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(house.path().join(MANIFEST)).unwrap())
                .unwrap();
        assert_eq!(json["format"], 2);
        assert_eq!(
            json["wheels"][0]["stat"]["size"],
            fs::metadata(&stored.path).unwrap().len()
        );
        assert_eq!(
            json["wheels"][0]["file"],
            "Torch-2.9.0-cp310-cp310-linux_aarch64.whl"
        );
        assert_eq!(json["wheels"][0]["target"], "jetson-orin");
        assert_eq!(
            json["wheels"][0]["verify"],
            serde_json::json!({"state": "pending", "reason": "no GPU"})
        );
        assert_eq!(wh.entries().unwrap(), [stored.entry]);
    }

    #[test]
    fn a_new_build_replaces_the_old_entry_and_file() {
        let out = tempfile::tempdir().unwrap();
        let house = tempfile::tempdir().unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let old = wh.add(
            &TestWheel::new("torch", "2.8.0").write(out.path()),
            &meta("fp1"),
        );
        let new = wh.add(
            &TestWheel::new("torch", "2.9.0").write(out.path()),
            &meta("fp2"),
        );
        let new = new.unwrap();
        assert_eq!(new.replaced, Some(old.unwrap().entry));
        assert_eq!(
            names(house.path()),
            [
                MARKER,
                RECORDS,
                MANIFEST,
                "torch-2.9.0-cp310-cp310-linux_aarch64.whl"
            ]
        );
        assert_eq!(
            names(&house.path().join(RECORDS)),
            ["torch-2.9.0-cp310-cp310-linux_aarch64.whl.json"],
            "the replaced wheel's record went with it"
        );
        assert_eq!(wh.entries().unwrap().len(), 1);
        assert_eq!(wh.find("torch", "fp1").unwrap(), None);
        assert_eq!(wh.find("torch", "fp2").unwrap(), Some(new.entry));
    }

    #[test]
    fn a_file_shared_by_another_target_is_kept() {
        let out = tempfile::tempdir().unwrap();
        let house = tempfile::tempdir().unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let pure = TestWheel::new("pkg", "1.0")
            .tag("py3-none-any")
            .write(out.path());
        wh.add(&pure, &meta("fp1")).unwrap();
        let other = EntryMeta {
            target: "host".to_string(),
            ..meta("fp1")
        };
        wh.add(&pure, &other).unwrap();
        wh.add(
            &TestWheel::new("pkg", "1.1")
                .tag("py3-none-any")
                .write(out.path()),
            &meta("fp2"),
        )
        .unwrap();
        assert!(house.path().join("pkg-1.0-py3-none-any.whl").exists());
        wh.remove("pkg", "host").unwrap();
        assert!(!house.path().join("pkg-1.0-py3-none-any.whl").exists());
        assert_eq!(wh.entries().unwrap().len(), 1);
    }

    #[test]
    fn find_verifies_the_file_and_its_hash() {
        let (_house, wh, stored) = house_with_a();
        assert_eq!(wh.find("A", "fp").unwrap(), Some(stored.entry));
        assert_eq!(wh.find("a", "other").unwrap(), None);

        fs::write(&stored.path, b"tampered").unwrap();
        assert_eq!(wh.find("a", "fp").unwrap(), None);
        fs::remove_file(&stored.path).unwrap();
        assert_eq!(wh.find("a", "fp").unwrap(), None);
    }

    /// The stat data decides whether a wheel is re-hashed: a manifest whose sha256 lies is
    /// believed while the file's stat data is the recorded one, and caught by `verify_all`.
    #[test]
    fn unchanged_stat_data_is_trusted_and_verify_all_rehashes() {
        let (house, wh, _) = house_with_a();
        let path = house.path().join(MANIFEST);
        let text = fs::read_to_string(&path).unwrap();
        let sha = wh.entries().unwrap()[0].sha256.clone();
        fs::write(&path, text.replace(&sha, &"0".repeat(64))).unwrap();

        let trusting = Wheelhouse::open(house.path()).unwrap();
        assert!(matches!(
            trusting.cached("fp", "jetson-orin").unwrap(),
            Cached::Hit(_)
        ));
        let verifying = Wheelhouse::open(house.path()).unwrap().verify_all(true);
        match verifying.cached("fp", "jetson-orin").unwrap() {
            Cached::Unusable(why) => assert!(
                why.starts_with(
                    "wheel a-1.0-cp310-cp310-linux_aarch64.whl changed on disk (sha256 "
                ),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// A format 1 manifest (no stat data) is read; its wheels are hashed once, and `flush`
    /// records their stat data in format 2 so the next run does not hash them.
    #[test]
    fn a_format_1_manifest_is_read_and_upgraded_on_flush() {
        let (house, _wh, _) = house_with_a();
        let path = house.path().join(MANIFEST);
        let mut json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        json["format"] = 1.into();
        json["wheels"][0].as_object_mut().unwrap().remove("stat");
        json["wheels"][0].as_object_mut().unwrap().remove("verify");
        fs::write(&path, json.to_string()).unwrap();

        let old = Wheelhouse::open(house.path()).unwrap();
        assert_eq!(
            old.entries().unwrap()[0].verify,
            None,
            "not recorded: unknown"
        );
        assert!(matches!(
            old.cached("fp", "jetson-orin").unwrap(),
            Cached::Hit(_)
        ));
        old.flush().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["format"], 2);
        assert!(
            json["wheels"][0]["stat"]["inode"].as_u64().is_some(),
            "{json}"
        );
        let before = fs::metadata(&path).unwrap().modified().unwrap();
        let again = Wheelhouse::open(house.path()).unwrap();
        assert!(matches!(
            again.cached("fp", "jetson-orin").unwrap(),
            Cached::Hit(_)
        ));
        again.flush().unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().modified().unwrap(),
            before,
            "nothing to write"
        );
    }

    /// `install` re-hashes whatever the stat data says.
    #[test]
    fn verify_files_catches_a_changed_wheel() {
        let (_house, wh, a) = house_with_a();
        wh.verify_files(&wh.entries().unwrap()).unwrap();
        fs::write(&a.path, b"tampered").unwrap();
        let err = crate::error::render(&wh.verify_files(&wh.entries().unwrap()).unwrap_err());
        assert!(err.contains("changed since it was built"), "{err}");
        assert!(err.contains(&a.entry.sha256), "{err}");
    }

    #[test]
    fn intact_path_names_a_changed_or_missing_wheel() {
        let (_house, wh, a) = house_with_a();
        assert_eq!(wh.intact_path(&a.entry).unwrap(), a.path);
        fs::write(&a.path, b"tampered").unwrap();
        let err = crate::error::render(&wh.intact_path(&a.entry).unwrap_err());
        assert!(err.contains("changed since it was built"), "{err}");
        assert!(err.contains(&a.entry.sha256), "{err}");
        fs::remove_file(&a.path).unwrap();
        let err = crate::error::render(&wh.intact_path(&a.entry).unwrap_err());
        assert!(err.contains("is missing from the wheelhouse"), "{err}");
    }

    #[test]
    fn a_missing_manifest_is_rebuilt_from_the_records() {
        let (house, wh, a) = house_with_a();
        let out = tempfile::tempdir().unwrap();
        wh.add(&TestWheel::new("b", "2.0").write(out.path()), &meta("fp2"))
            .unwrap();
        let before = wh.entries().unwrap();
        fs::remove_file(house.path().join(MANIFEST)).unwrap();
        fs::write(&a.path, b"tampered").unwrap();

        let wh = Wheelhouse::open(house.path()).unwrap();
        let after = wh.entries().unwrap();
        assert_eq!(after, before[1..], "a's bytes are not the recorded ones");
        let note = wh.take_recovery_note().unwrap();
        assert!(
            note.starts_with("manifest missing: re-read 2 wheels from disk (1 entries recovered)"),
            "{note}"
        );
        assert!(
            note.contains(
                "left out, will be rebuilt: a-1.0-cp310-cp310-linux_aarch64.whl: changed on disk"
            ),
            "{note}"
        );
        assert!(house.path().join(MANIFEST).is_file());
    }

    #[test]
    fn a_broken_wheel_goes_to_broken_and_out_of_the_index() {
        let out = tempfile::tempdir().unwrap();
        let house = tempfile::tempdir().unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let good = TestWheel::new("good", "1.0").write(out.path());
        wh.add(&good, &meta("fp")).unwrap();
        let bad = TestWheel::new("torch", "2.9.0a0+gitabc1234").write(out.path());
        let moved = wh
            .add_broken(&bad, "version 2.9.0a0+gitabc1234, recipe says 2.9.0")
            .unwrap();

        assert_eq!(
            moved,
            wh.broken_dir()
                .join("torch-2.9.0a0+gitabc1234-cp310-cp310-linux_aarch64.whl")
        );
        assert!(!bad.exists());
        let why = fs::read_to_string(wh.broken_dir().join(format!(
            "{}.why",
            moved.file_name().unwrap().to_string_lossy()
        )))
        .unwrap();
        assert!(why.contains("recipe says 2.9.0"));
        assert_eq!(
            names(&wh.broken_dir()).len(),
            2,
            "wheel and .why, no temp files"
        );
        assert_eq!(wh.entries().unwrap().len(), 1);

        let indexed = wh.write_index().unwrap();
        assert_eq!(indexed.len(), 1);
        assert_eq!(indexed[0].project, "good");
        assert!(!house.path().join("simple/torch").exists());
    }

    #[test]
    fn another_format_is_refused() {
        let house = tempfile::tempdir().unwrap();
        fs::write(house.path().join(".jetforge-wheelhouse-v2"), b"").unwrap();
        let err = Wheelhouse::open(house.path()).unwrap_err();
        let out = crate::error::render(&err);
        assert!(out.contains("a wheelhouse of format 2"), "{out}");
        assert!(
            out.contains("hint: use another wheelhouse directory"),
            "{out}"
        );

        let house = tempfile::tempdir().unwrap();
        fs::write(
            house.path().join(MANIFEST),
            br#"{"format": 7, "wheels": []}"#,
        )
        .unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        assert!(format!("{}", wh.entries().unwrap_err()).contains("format 7"));
    }

    #[test]
    fn a_corrupt_manifest_is_named() {
        let house = tempfile::tempdir().unwrap();
        fs::write(house.path().join(MANIFEST), b"{not json").unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let err = wh.entries().unwrap_err().to_string();
        assert!(
            err.contains("manifest.json` is not a valid manifest"),
            "{err}"
        );
    }
}
