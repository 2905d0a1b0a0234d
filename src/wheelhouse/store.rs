//! The wheelhouse directory and its `manifest.json`: which wheel was built from which inputs.
//!
//! ```text
//! <dir>/.jetforge-wheelhouse-v1   format marker; another version's directory is refused
//! <dir>/manifest.json             {"format": 1, "wheels": [entry…]}, one entry per (package, target)
//! <dir>/*.whl                     accepted wheels
//! <dir>/broken/*.whl              wheels that failed their checks, with `<file>.why`
//! <dir>/simple/                   PEP 503 index (see `index`)
//! ```
//!
//! Every write is atomic (see `atomic`). Checking wheels is `check`'s job: the caller decides
//! between [`Wheelhouse::add`] and [`Wheelhouse::add_broken`]. One writer at a time is assumed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::atomic;
use super::index::{self, IndexedWheel};
use super::wheel::{normalize_name, sha256_file, WheelInfo};
use crate::error;

const FORMAT: u32 = 1;
const MARKER: &str = ".jetforge-wheelhouse-v1";
const MARKER_PREFIX: &str = ".jetforge-wheelhouse-v";
const MANIFEST: &str = "manifest.json";
const BROKEN: &str = "broken";

/// One wheel in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// PEP 503 normalized project name.
    pub package: String,
    pub version: String,
    /// File name inside the wheelhouse.
    pub file: String,
    pub sha256: String,
    /// The build's cache key (see `fingerprint`).
    pub fingerprint: String,
    pub commit: Option<String>,
    /// Target profile name.
    pub target: String,
    /// RFC 3339, UTC.
    pub built_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
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
}

/// A wheel after [`Wheelhouse::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWheel {
    pub path: PathBuf,
    pub entry: ManifestEntry,
    /// The entry for the same package and target that this one replaced.
    pub replaced: Option<ManifestEntry>,
}

#[derive(Debug, Clone)]
pub struct Wheelhouse {
    dir: PathBuf,
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
        })
    }

    /// Opens `dir` for reading when it exists, creating nothing: `None` when there is no
    /// wheelhouse yet (e.g. `plan` before the first build).
    pub fn open_existing(dir: &Path) -> Result<Option<Self>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        check_format_marker(dir)?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn broken_dir(&self) -> PathBuf {
        self.dir.join(BROKEN)
    }

    /// Copies an accepted wheel in (atomically) and records it, replacing the entry of the same
    /// package and target; the replaced wheel file is deleted unless another entry uses it.
    pub fn add(&self, wheel: &Path, meta: &EntryMeta) -> Result<StoredWheel> {
        let info = WheelInfo::read(wheel)?;
        let dest = self.dir.join(info.file());
        atomic::copy(wheel, &dest)?;
        let entry = ManifestEntry {
            package: info.package(),
            version: info.metadata.version.to_string(),
            file: info.file().to_string(),
            sha256: hash(&dest)?,
            fingerprint: meta.fingerprint.clone(),
            commit: meta.commit.clone(),
            target: meta.target.clone(),
            built_at: now_rfc3339(),
        };
        let mut manifest = self.load()?;
        let replaced = take_entry(&mut manifest, &entry.package, &entry.target);
        manifest.wheels.push(entry.clone());
        self.save(&mut manifest)?;
        if let Some(old) = &replaced {
            self.delete_if_unused(&manifest, &old.file)?;
        }
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

    /// The entry of `package` built with `fingerprint`, if its file is there with the recorded
    /// hash. Only that one file is re-hashed.
    pub fn find(&self, package: &str, fingerprint: &str) -> Result<Option<ManifestEntry>> {
        let package = normalize_name(package);
        let manifest = self.load()?;
        let Some(entry) = manifest
            .wheels
            .into_iter()
            .find(|e| e.package == package && e.fingerprint == fingerprint)
        else {
            return Ok(None);
        };
        let path = self.dir.join(&entry.file);
        if !path.is_file() {
            return Ok(None);
        }
        Ok((hash(&path)? == entry.sha256).then_some(entry))
    }

    /// Forgets the entry of `package` for `target` and deletes its file unless another entry
    /// uses it.
    pub fn remove(&self, package: &str, target: &str) -> Result<Option<ManifestEntry>> {
        let mut manifest = self.load()?;
        let removed = take_entry(&mut manifest, &normalize_name(package), target);
        if let Some(old) = &removed {
            self.save(&mut manifest)?;
            self.delete_if_unused(&manifest, &old.file)?;
        }
        Ok(removed)
    }

    /// Every manifest entry, sorted by package and target.
    pub fn entries(&self) -> Result<Vec<ManifestEntry>> {
        Ok(self.load()?.wheels)
    }

    /// Regenerates `simple/` from the wheels on disk.
    pub fn write_index(&self) -> Result<Vec<IndexedWheel>> {
        index::write_simple_index(&self.dir)
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST)
    }

    fn load(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Manifest {
                    format: FORMAT,
                    wheels: Vec::new(),
                })
            }
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", path.display()))
            }
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            error::failure_hint(
                format!("`{}` is not a valid manifest: {e}", path.display()),
                "restore it, or delete it and rebuild (the wheels will be rebuilt)",
            )
        })?;
        if manifest.format != FORMAT {
            return Err(wrong_format(&path, &manifest.format.to_string()));
        }
        Ok(manifest)
    }

    fn save(&self, manifest: &mut Manifest) -> Result<()> {
        manifest
            .wheels
            .sort_by(|a, b| (&a.package, &a.target).cmp(&(&b.package, &b.target)));
        let mut json =
            serde_json::to_string_pretty(manifest).context("serializing the manifest")?;
        json.push('\n');
        atomic::write(&self.manifest_path(), json.as_bytes())
    }

    fn delete_if_unused(&self, manifest: &Manifest, file: &str) -> Result<()> {
        if manifest.wheels.iter().any(|e| e.file == file) {
            return Ok(());
        }
        let path = self.dir.join(file);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("failed to remove `{}`", path.display()))
            }
            _ => Ok(()),
        }
    }
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

fn now_rfc3339() -> String {
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
                return Err(wrong_format(dir, version));
            }
        }
    }
    Ok(())
}

fn wrong_format(path: &Path, found: &str) -> anyhow::Error {
    error::input_hint(
        format!(
            "`{}` is a wheelhouse of format {found}; this jetforge reads format {FORMAT}",
            path.display()
        ),
        "use another wheelhouse directory, or remove this one to rebuild it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheelhouse::fixtures::TestWheel;

    fn meta(fingerprint: &str) -> EntryMeta {
        EntryMeta {
            fingerprint: fingerprint.to_string(),
            commit: Some("a".repeat(40)),
            target: "jetson-orin".to_string(),
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
        assert_eq!(json["format"], 1);
        assert_eq!(
            json["wheels"][0]["file"],
            "Torch-2.9.0-cp310-cp310-linux_aarch64.whl"
        );
        assert_eq!(json["wheels"][0]["target"], "jetson-orin");
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
                MANIFEST,
                "torch-2.9.0-cp310-cp310-linux_aarch64.whl"
            ]
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
        let out = tempfile::tempdir().unwrap();
        let house = tempfile::tempdir().unwrap();
        let wh = Wheelhouse::open(house.path()).unwrap();
        let stored = wh
            .add(&TestWheel::new("a", "1.0").write(out.path()), &meta("fp"))
            .unwrap();
        assert_eq!(wh.find("A", "fp").unwrap(), Some(stored.entry));
        assert_eq!(wh.find("a", "other").unwrap(), None);

        fs::write(&stored.path, b"tampered").unwrap();
        assert_eq!(wh.find("a", "fp").unwrap(), None);
        fs::remove_file(&stored.path).unwrap();
        assert_eq!(wh.find("a", "fp").unwrap(), None);
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
