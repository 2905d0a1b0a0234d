//! Advisory locks on directories (the git cache, a work dir), so two jetforge processes never
//! fetch into the same mirror or build in the same tree at once.
//!
//! The lock is an `flock` on a sibling file `<dir>.lock`, which holds the holder's pid so the
//! waiting side can say whom it waits for. The lock dies with its process, so a crash never
//! leaves a stale lock behind; the pid in the file is only a message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fs4::{FileExt, TryLockError};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

/// `try_acquire` found the lock held by someone else.
#[derive(Debug, thiserror::Error)]
#[error("the lock on {what} is held by {holder} (lock file `{}`)", path.display())]
pub struct Busy {
    pub what: String,
    pub holder: String,
    pub path: PathBuf,
}

impl crate::error::Hint for Busy {
    fn hint(&self) -> Option<String> {
        Some("wait for that jetforge to finish, or stop it".into())
    }
}

impl DirLock {
    /// Takes the lock on `dir`, blocking while another process holds it. `on_wait` is called once,
    /// before blocking, with a message such as "waiting for the lock on the git cache held by
    /// pid 42…"; `what` names the locked thing in that message.
    pub fn acquire(dir: &Path, what: &str, on_wait: impl Fn(&str)) -> Result<Self> {
        let (mut file, path) = open_lock_file(dir)?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait(&format!(
                    "waiting for the lock on {what} held by {}…",
                    holder(&mut file)
                ));
                FileExt::lock(&file)
                    .with_context(|| format!("failed to lock `{}`", path.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("failed to lock `{}`", path.display()))
            }
        }
        Self::held(file, path)
    }

    /// Takes the lock on `dir` or fails at once with [`Busy`] when another process holds it.
    pub fn try_acquire(dir: &Path, what: &str) -> Result<Self> {
        let (mut file, path) = open_lock_file(dir)?;
        match FileExt::try_lock(&file) {
            Ok(()) => Self::held(file, path),
            Err(TryLockError::WouldBlock) => Err(crate::error::typed(Busy {
                what: what.to_string(),
                holder: holder(&mut file),
                path,
            })),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("failed to lock `{}`", path.display()))
            }
        }
    }

    fn held(mut file: File, path: PathBuf) -> Result<Self> {
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            write!(f, "{}", std::process::id())
        };
        write(&mut file).with_context(|| format!("failed to write `{}`", path.display()))?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the hand-over prompt
        // even if something keeps a duplicate of the descriptor.
        let _ = FileExt::unlock(&self.file);
    }
}

fn open_lock_file(dir: &Path) -> Result<(File, PathBuf)> {
    let mut name = dir
        .file_name()
        .with_context(|| format!("cannot lock `{}`: it has no file name", dir.display()))?
        .to_os_string();
    name.push(".lock");
    let path = dir.with_file_name(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("failed to open the lock file `{}`", path.display()))?;
    Ok((file, path))
}

fn holder(file: &mut File) -> String {
    let mut pid = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut pid));
    match pid.trim() {
        "" => "another process".to_string(),
        p => format!("pid {p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn try_acquire_fails_while_held_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let held = DirLock::try_acquire(&dir, "the git cache").unwrap();
        let err = DirLock::try_acquire(&dir, "the git cache").unwrap_err();
        let busy = crate::error::find::<Busy>(&err).expect("a Busy error");
        assert_eq!(busy.holder, format!("pid {}", std::process::id()));
        assert!(err
            .to_string()
            .contains("the lock on the git cache is held by pid"));
        drop(held);
        DirLock::try_acquire(&dir, "the git cache").unwrap();
    }

    #[test]
    fn second_acquirer_waits_until_the_first_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("work");
        let first = DirLock::acquire(&dir, "work dir", |_| panic!("nothing to wait for")).unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let tx2 = tx.clone();
                let lock =
                    DirLock::acquire(&dir, "work dir", move |m| tx2.send(m.to_string()).unwrap())
                        .unwrap();
                tx.send("acquired".to_string()).unwrap();
                lock
            })
        };
        let msg = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            msg.starts_with("waiting for the lock on work dir held by pid"),
            "{msg}"
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "got the lock while held"
        );
        drop(first);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            "acquired"
        );
        waiter.join().unwrap();
    }
}
