//! The one atomic file replacement (wheelhouse files, resume state): write under
//! `.tmp-<pid>-<name>` in the same directory, fsync, rename, fsync the directory. A reader sees
//! the old file or the new one, never half of one, and a crash leaves at most a `.tmp-` file
//! (which the wheelhouse index ignores).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Prefix of every temporary file written here.
pub const TMP_PREFIX: &str = ".tmp-";

fn tmp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!("{TMP_PREFIX}{}-{name}", std::process::id()))
}

/// Writes `bytes` to `dest` atomically.
pub fn write(dest: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(dest, |tmp| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
    .with_context(|| format!("failed to write `{}`", dest.display()))
}

/// Writes `bytes` to `dest` atomically, the file created with at most `mode` (through the umask).
pub fn write_with_mode(dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    replace_with(dest, |tmp| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
    .with_context(|| format!("failed to write `{}`", dest.display()))
}

/// Copies `src` to `dest` atomically.
pub fn copy(src: &Path, dest: &Path) -> Result<()> {
    replace_with(dest, |tmp| {
        fs::copy(src, tmp)?;
        File::open(tmp)?.sync_all()
    })
    .with_context(|| format!("failed to copy `{}` to `{}`", src.display(), dest.display()))
}

fn replace_with(dest: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let tmp = tmp_path(dest);
    let result = fill(&tmp).and_then(|()| fs::rename(&tmp, dest));
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_parent(dest)
}

/// Makes a rename durable: without this, a power cut can lose the directory entry.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("manifest.json");
        write(&dest, b"old").unwrap();
        write(&dest, b"new").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_copy_names_the_paths_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let err = copy(&dir.path().join("missing.whl"), &dir.path().join("x.whl")).unwrap_err();
        assert!(format!("{err}").contains("missing.whl"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
