//! The pip seed: what `ensurepip` puts into a new venv, made once per interpreter and kept in
//! jetforge's cache dir (`<cache>/venv-seed-v1/<key>`), so that a new venv is
//! `python -m venv --without-pip` (~0.1 s) plus a hard link (or copy) of the seed instead of
//! `python -m venv` running ensurepip (~2 s on an idle 2-core machine, paid by every fresh
//! work dir, twice with a verify venv). virtualenv does the same with its app-data seed.
//!
//! The seed holds everything ensurepip installed into site-packages (pip; on Python ≤ 3.11 also
//! setuptools, as a plain venv has it) and the body of its `bin/pip*` launchers; a seeded venv
//! holds the same files as one `python -m venv` makes. The key is a hash of the interpreter's
//! real path, its version and the pip version its ensurepip bundles: a Python upgrade makes a
//! new seed. A seed is made in a temp dir and renamed into place, so a killed run leaves no half
//! seed; `seed.json`, written last, lists every file with its size, and a seed whose files do not
//! match (deleted, truncated) is made again.
//!
//! Hard links share the files with the seed: pip replaces files (uninstall removes, install
//! writes new ones), it does not write into them, so upgrading pip in one venv leaves the seed
//! alone.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The seed store's directory in the cache dir; the version changes with the layout.
pub const STORE: &str = "venv-seed-v1";
/// The seed's description, written last.
const INFO: &str = "seed.json";
/// The seed's copy of the site-packages ensurepip filled.
const SITE: &str = "site-packages";

/// Where seeds live under `cache_dir`, or `None` when `switch` (the value of
/// `JETFORGE_VENV_SEED`) is `0`: every venv is then a plain `python -m venv`.
pub fn store(cache_dir: &Path, switch: Option<&str>) -> Option<PathBuf> {
    match switch.map(str::trim) {
        Some("0") => None,
        _ => Some(cache_dir.join(STORE)),
    }
}

/// Removes what killed runs left in `store` (temp dirs older than an hour); best effort.
pub fn sweep(store: &Path) {
    let hour = std::time::Duration::from_secs(3600);
    for e in std::fs::read_dir(store).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > hour);
        if old && (name.starts_with(".tmp-") || name.starts_with(".make-")) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The seed's name: a hash of the interpreter's real path, its version and ensurepip's pip
/// version.
pub fn key(realpath: &Path, version: &str, pip: &str) -> String {
    let text = format!("{}\n{version}\n{pip}\n", realpath.display());
    crate::hash::sha256_hex(text.as_bytes())[..16].to_string()
}

/// What a seed holds (`seed.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeedInfo {
    pub python: PathBuf,
    pub version: String,
    pub pip: String,
    /// The venv's site-packages, relative to the venv (`lib/python3.11/site-packages`).
    pub purelib: String,
    /// The venv interpreter the launchers run (`python3`).
    pub interpreter: String,
    /// `bin/pip`, `bin/pip3`, `bin/pip3.11`: name and body (everything after the shebang).
    pub launchers: Vec<Launcher>,
    /// Every file of the seed's site-packages (relative path, size).
    pub files: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Launcher {
    pub name: String,
    pub body: String,
}

/// A seed ready to use.
#[derive(Debug)]
pub struct Seed {
    pub dir: PathBuf,
    pub info: SeedInfo,
}

/// The interpreter facts the key is made of: (real path, version, ensurepip's pip version).
pub fn probe(base_python: &Path) -> Result<(PathBuf, String, String)> {
    let code = "import os, sys, ensurepip\nprint(os.path.realpath(sys.executable))\n\
                print(sys.version.split()[0])\nprint(ensurepip.version())";
    let out = duct::cmd!(base_python, "-c", code)
        .stderr_capture()
        .read()
        .with_context(|| {
            format!(
                "failed to ask `{}` for its version and ensurepip's pip",
                base_python.display()
            )
        })?;
    let mut lines = out.lines().map(str::trim);
    match (lines.next(), lines.next(), lines.next()) {
        (Some(p), Some(v), Some(pip)) if !p.is_empty() && !v.is_empty() && !pip.is_empty() => {
            Ok((PathBuf::from(p), v.to_string(), pip.to_string()))
        }
        _ => bail!(
            "`{}` said {out:?} when asked for its version and ensurepip's pip",
            base_python.display()
        ),
    }
}

impl Seed {
    /// The seed at `dir` when it is whole: `seed.json` readable and every file it lists
    /// present with its size. `Err` says what is wrong.
    pub fn open(dir: &Path) -> Result<Seed> {
        let path = dir.join(INFO);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("`{}` is missing", path.display()))?;
        let info: SeedInfo = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a seed description", path.display()))?;
        let site = dir.join(SITE);
        for (rel, size) in &info.files {
            let f = site.join(rel);
            match std::fs::metadata(&f) {
                Ok(m) if m.is_file() && m.len() == *size => {}
                Ok(_) => bail!("`{}` has changed", f.display()),
                Err(_) => bail!("`{}` is missing", f.display()),
            }
        }
        Ok(Seed {
            dir: dir.to_path_buf(),
            info,
        })
    }

    /// Makes the seed at `dest` from a venv `python -m venv` made at `made` (which this
    /// consumes): site-packages moved into a temp dir next to `dest`, described, then renamed
    /// into place. When another process was faster, its seed is used.
    pub fn make_from(
        made: &Path,
        info_base: (PathBuf, String, String),
        dest: &Path,
    ) -> Result<Seed> {
        let (python, version, pip) = info_base;
        let purelib = find_purelib(made)?;
        let (interpreter, launchers) = read_launchers(made)?;
        let store = dest.parent().context("a seed dir has a parent")?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(store)
            .with_context(|| format!("failed to make a temp dir in `{}`", store.display()))?;
        let site = tmp.path().join(SITE);
        std::fs::rename(made.join(&purelib), &site).with_context(|| {
            format!(
                "failed to move `{}` to `{}`",
                made.join(&purelib).display(),
                site.display()
            )
        })?;
        let mut files = Vec::new();
        list_files(&site, Path::new(""), &mut files)?;
        let info = SeedInfo {
            python,
            version,
            pip,
            purelib,
            interpreter,
            launchers,
            files,
        };
        let json = serde_json::to_string_pretty(&info).context("serializing the seed")?;
        std::fs::write(tmp.path().join(INFO), json)
            .with_context(|| format!("failed to write the seed in `{}`", tmp.path().display()))?;
        let tmp = tmp.keep();
        if let Err(e) = std::fs::rename(&tmp, dest) {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another jetforge made it meanwhile: theirs is as good.
            return Seed::open(dest).with_context(|| {
                format!("failed to rename the seed to `{}`: {e}", dest.display())
            });
        }
        Ok(Seed {
            dir: dest.to_path_buf(),
            info,
        })
    }

    /// Puts the seed into `venv` (made with `--without-pip` by the same interpreter): its
    /// site-packages files hard-linked (copied across file systems) and the pip launchers
    /// written for `venv`'s interpreter.
    pub fn install(&self, venv: &Path) -> Result<()> {
        let target = venv.join(&self.info.purelib);
        if !target.is_dir() {
            bail!(
                "the new venv has no `{}` (the seed was made for `{}`)",
                self.info.purelib,
                self.info.python.display()
            );
        }
        link_tree(&self.dir.join(SITE), &target)?;
        let python = venv.join("bin").join(&self.info.interpreter);
        for l in &self.info.launchers {
            let text = format!("{}{}", shebang(&python), l.body);
            crate::atomic::write_with_mode(
                &venv.join("bin").join(&l.name),
                text.as_bytes(),
                0o755,
            )?;
        }
        Ok(())
    }
}

/// The venv's site-packages that holds pip, relative to the venv.
fn find_purelib(venv: &Path) -> Result<String> {
    for e in crate::paths::read_dir(&venv.join("lib"))?.flatten() {
        let site = e.path().join("site-packages");
        if site.join("pip").is_dir() {
            let name = e.file_name().to_string_lossy().into_owned();
            return Ok(format!("lib/{name}/site-packages"));
        }
    }
    bail!(
        "`{}` has no lib/python*/site-packages with pip",
        venv.display()
    )
}

/// The `bin/pip*` launchers ensurepip wrote: the interpreter they run (its file name) and each
/// one's body.
fn read_launchers(venv: &Path) -> Result<(String, Vec<Launcher>)> {
    let bin = venv.join("bin");
    let mut interpreter = None;
    let mut launchers = Vec::new();
    for e in crate::paths::dir_entries(&bin)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("pip") {
            continue;
        }
        let text = std::fs::read_to_string(e.path())
            .with_context(|| format!("failed to read `{}`", e.path().display()))?;
        let (python, body) = split_launcher(&text)
            .with_context(|| format!("`{}` is not a pip launcher", e.path().display()))?;
        interpreter.get_or_insert(python);
        launchers.push(Launcher { name, body });
    }
    launchers.sort_by(|a, b| a.name.cmp(&b.name));
    match interpreter {
        Some(i) if launchers.iter().any(|l| l.name == "pip") => Ok((i, launchers)),
        _ => bail!("`{}` has no pip launcher", bin.display()),
    }
}

/// A launcher's interpreter (file name) and body: after `#!/path/python3`, or after the
/// `/bin/sh` preamble distlib writes when that line would be too long.
pub fn split_launcher(text: &str) -> Option<(String, String)> {
    let first_end = text.find('\n')?;
    let first = &text[..first_end];
    let rest = &text[first_end + 1..];
    let (interpreter, body) = if first == "#!/bin/sh" {
        let second_end = rest.find('\n')?;
        let second = &rest[..second_end];
        let quoted = second.strip_prefix("'''exec' \"")?;
        let path = &quoted[..quoted.find('"')?];
        let after = &rest[second_end + 1..];
        let third_end = after.find('\n')?;
        (path.to_string(), after[third_end + 1..].to_string())
    } else {
        (
            first.strip_prefix("#!")?.trim().to_string(),
            rest.to_string(),
        )
    };
    let name = Path::new(&interpreter)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    Some((name, body))
}

/// The shebang lines distlib (pip's launcher maker) writes for `python`: `#!path` when the
/// kernel takes it (at most 127 bytes, no space), else a `/bin/sh` preamble that execs it.
pub fn shebang(python: &Path) -> String {
    let p = python.to_string_lossy();
    if p.len() + 2 <= 127 && !p.contains(' ') {
        format!("#!{p}\n")
    } else {
        format!("#!/bin/sh\n'''exec' \"{p}\" \"$0\" \"$@\"\n' '''\n")
    }
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
    for e in crate::paths::dir_entries(&root.join(rel))? {
        let r = rel.join(e.file_name());
        let m = std::fs::symlink_metadata(e.path())
            .with_context(|| format!("failed to read `{}`", e.path().display()))?;
        if m.is_dir() {
            list_files(root, &r, out)?;
        } else if m.is_file() {
            out.push((r.to_string_lossy().into_owned(), m.len()));
        } else {
            bail!("`{}` is neither a file nor a directory", e.path().display());
        }
    }
    Ok(())
}

/// Hard-links every file of `from` into `to` (made as needed), copying where a link fails
/// (another file system); a copy keeps the modification time, so the `.pyc` files stay valid.
pub fn link_tree(from: &Path, to: &Path) -> Result<()> {
    crate::paths::create_dir_all(to)?;
    for e in crate::paths::dir_entries(from)? {
        let src = e.path();
        let dst = to.join(e.file_name());
        let m = std::fs::symlink_metadata(&src)
            .with_context(|| format!("failed to read `{}`", src.display()))?;
        if m.is_dir() {
            link_tree(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            copy_keeping_mtime(&src, &dst, &m)?;
        }
    }
    Ok(())
}

fn copy_keeping_mtime(src: &Path, dst: &Path, m: &std::fs::Metadata) -> Result<()> {
    let _ = std::fs::remove_file(dst);
    std::fs::copy(src, dst)
        .with_context(|| format!("failed to copy `{}` to `{}`", src.display(), dst.display()))?;
    let mtime = m.modified().context("file modification time")?;
    std::fs::File::options()
        .write(true)
        .open(dst)
        .and_then(|f| f.set_modified(mtime))
        .with_context(|| format!("failed to set the time of `{}`", dst.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_key_changes_with_the_interpreter_its_version_and_pip() {
        let k = key(Path::new("/usr/bin/python3.11"), "3.11.2", "23.0.1");
        assert_eq!(k.len(), 16);
        assert_eq!(k, key(Path::new("/usr/bin/python3.11"), "3.11.2", "23.0.1"));
        for other in [
            key(Path::new("/opt/py/bin/python3.11"), "3.11.2", "23.0.1"),
            key(Path::new("/usr/bin/python3.11"), "3.11.4", "23.0.1"),
            key(Path::new("/usr/bin/python3.11"), "3.11.2", "24.0"),
        ] {
            assert_ne!(k, other);
        }
        assert_eq!(store(Path::new("/c"), Some("0")), None);
        assert_eq!(
            store(Path::new("/c"), None),
            Some(PathBuf::from("/c/venv-seed-v1"))
        );
    }

    #[test]
    fn the_tree_is_linked_and_a_copy_keeps_the_time() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        std::fs::create_dir_all(from.join("pip/__pycache__")).unwrap();
        std::fs::write(from.join("pip/__init__.py"), "x = 1\n").unwrap();
        std::fs::write(from.join("pip/__pycache__/a.pyc"), "pyc").unwrap();
        let to = tmp.path().join("venv/site");
        link_tree(&from, &to).unwrap();
        let a = std::fs::metadata(from.join("pip/__init__.py")).unwrap();
        let b = std::fs::metadata(to.join("pip/__init__.py")).unwrap();
        assert_eq!(a.ino(), b.ino(), "same file system: a hard link");
        assert_eq!(
            std::fs::read(to.join("pip/__pycache__/a.pyc")).unwrap(),
            b"pyc"
        );

        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(from.join("pip/__init__.py"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let copy = tmp.path().join("copy.py");
        let m = std::fs::metadata(from.join("pip/__init__.py")).unwrap();
        copy_keeping_mtime(&from.join("pip/__init__.py"), &copy, &m).unwrap();
        let c = std::fs::metadata(&copy).unwrap();
        assert_ne!(c.ino(), m.ino());
        assert_eq!(c.modified().unwrap(), old);
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "x = 1\n");
    }

    #[test]
    fn launchers_are_split_and_rewritten_for_any_path_length() {
        let body = "# -*- coding: utf-8 -*-\nimport sys\nfrom pip._internal.cli.main import main\n";
        let (i, b) = split_launcher(&format!("#!/tmp/s/bin/python3\n{body}")).unwrap();
        assert_eq!((i.as_str(), b.as_str()), ("python3", body));
        let long = PathBuf::from(format!("/{}/bin/python3", "d".repeat(130)));
        let sh = shebang(&long);
        assert!(sh.starts_with("#!/bin/sh\n'''exec' \""), "{sh}");
        let (i, b) = split_launcher(&format!("{sh}{body}")).unwrap();
        assert_eq!((i.as_str(), b.as_str()), ("python3", body));
        assert_eq!(
            shebang(Path::new("/w/venv/bin/python3")),
            "#!/w/venv/bin/python3\n"
        );
        assert!(split_launcher("no shebang\n").is_none());
    }

    #[test]
    fn a_seed_with_a_missing_or_changed_file_is_not_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let made = tmp.path().join("made");
        std::fs::create_dir_all(made.join("lib/python3.11/site-packages/pip")).unwrap();
        std::fs::write(
            made.join("lib/python3.11/site-packages/pip/__init__.py"),
            "v = 1\n",
        )
        .unwrap();
        std::fs::create_dir_all(made.join("bin")).unwrap();
        std::fs::write(made.join("bin/pip"), "#!/x/bin/python3\nmain()\n").unwrap();
        let store = tmp.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let dest = store.join("k");
        let facts = (
            "/usr/bin/python3.11".into(),
            "3.11.2".into(),
            "23.0.1".into(),
        );
        let seed = Seed::make_from(&made, facts, &dest).unwrap();
        assert_eq!(seed.info.purelib, "lib/python3.11/site-packages");
        assert_eq!(seed.info.files, [("pip/__init__.py".to_string(), 6)]);
        assert_eq!(Seed::open(&dest).unwrap().info, seed.info);
        // No temp dir left behind.
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);

        let venv = tmp.path().join("venv");
        std::fs::create_dir_all(venv.join("lib/python3.11/site-packages")).unwrap();
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        seed.install(&venv).unwrap();
        assert_eq!(
            std::fs::read_to_string(venv.join("bin/pip")).unwrap(),
            format!("#!{}/bin/python3\nmain()\n", venv.display())
        );
        assert!(venv
            .join("lib/python3.11/site-packages/pip/__init__.py")
            .is_file());

        std::fs::write(dest.join("site-packages/pip/__init__.py"), "v = 22\n").unwrap();
        assert!(format!("{:#}", Seed::open(&dest).unwrap_err()).contains("has changed"));
        std::fs::remove_file(dest.join("site-packages/pip/__init__.py")).unwrap();
        assert!(format!("{:#}", Seed::open(&dest).unwrap_err()).contains("is missing"));
    }
}
