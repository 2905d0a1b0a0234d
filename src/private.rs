//! Files only their owner may read: step logs, replay scripts and resume state hold whatever a
//! build printed and the environment it ran with. Files are created 0600 (0700 when
//! executable) and their directories 0700, through the umask, so a stricter umask still wins;
//! a file or directory left by an older run with wider modes is narrowed, never widened.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// Mode of a private file.
pub const FILE: u32 = 0o600;
/// Mode of a private executable (a replay script) and of a private directory.
pub const EXEC: u32 = 0o700;

/// Creates `dir` 0700 (its parents as usual), or narrows it to 0700 when it exists.
pub fn create_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    match DirBuilder::new().mode(EXEC).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            narrow(dir, EXEC)
        }
        Err(e) => Err(e).with_context(|| format!("failed to create `{}`", dir.display())),
    }
}

/// Creates (or truncates) `path` for writing with at most `mode`.
pub fn create_file(path: &Path, mode: u32) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    let current = file
        .metadata()
        .with_context(|| format!("failed to read the mode of `{}`", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if current & !mode != 0 {
        file.set_permissions(Permissions::from_mode(current & mode))
            .with_context(|| format!("failed to narrow the mode of `{}`", path.display()))?;
    }
    Ok(file)
}

/// Writes `bytes` to `path`, created as by [`create_file`].
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    create_file(path, mode)?
        .write_all(bytes)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

fn narrow(path: &Path, mode: u32) -> Result<()> {
    let current = std::fs::metadata(path)
        .with_context(|| format!("failed to read the mode of `{}`", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(current & mode))
            .with_context(|| format!("failed to narrow the mode of `{}`", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn wide_leftovers_are_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/logs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("x.log");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        create_dir(&dir).unwrap();
        write_file(&file, b"new", FILE).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new");
    }
}
