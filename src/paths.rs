//! File-system calls whose errors name the operation and the path, for the places that have no
//! better message of their own: a bare `Read-only file system (os error 30)` leaves the user
//! guessing which of a dozen directories is the problem.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

pub fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("failed to create `{}`", path.display()))
}

pub fn read_dir(path: &Path) -> Result<fs::ReadDir> {
    fs::read_dir(path).with_context(|| format!("failed to list `{}`", path.display()))
}

/// The entries of `path`, each error naming the directory.
pub fn dir_entries(path: &Path) -> Result<Vec<fs::DirEntry>> {
    read_dir(path)?
        .map(|e| e.with_context(|| format!("failed to list `{}`", path.display())))
        .collect()
}

/// Gives `to` the permission bits of `from` (the executable bit of scripts, mostly).
pub fn copy_permissions(from: &Path, to: &Path) -> Result<()> {
    let perms = fs::metadata(from)
        .with_context(|| format!("failed to read the metadata of `{}`", from.display()))?
        .permissions();
    set_permissions(to, perms)
}

pub fn set_permissions(path: &Path, perms: fs::Permissions) -> Result<()> {
    fs::set_permissions(path, perms)
        .with_context(|| format!("failed to set the permissions of `{}`", path.display()))
}

/// Annotates an `io::Error` with the operation and the path, for code that stays on
/// `io::Result`.
pub fn io_context(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> std::io::Error {
    let path = path.display().to_string();
    move |e| std::io::Error::new(e.kind(), format!("failed to {op} `{path}`: {e}"))
}

/// The current directory (it can be gone: deleted under a running shell).
pub fn current_dir() -> Result<std::path::PathBuf> {
    std::env::current_dir().context("failed to read the current directory (was it deleted?)")
}
