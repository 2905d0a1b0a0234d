//! `jetforge clean [PKG…] [--caches]`: removes work directories (sources, logs, state, the
//! build venv) and, with `--caches`, the git mirror and resource caches. The wheelhouse is never
//! removed: it holds hours of builds, and a directory that contains it is refused. That holds
//! for the wheelhouse of this run and for every one a build in this work dir used (a
//! `build --wheelhouse DIR` earlier, then `clean` without the flag).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Session;
use crate::cli::{CleanArgs, GlobalArgs};
use crate::layout::Layout;

pub fn run(g: &GlobalArgs, a: &CleanArgs) -> Result<()> {
    let s = Session::load(g)?;
    let mut doomed: Vec<PathBuf> = Vec::new();
    if a.packages.is_empty() {
        doomed.push(s.layout.root.clone());
    } else {
        let selected = s.set.select(&a.packages).map_err(crate::error::input)?;
        for r in selected.iter().filter(|r| a.packages.contains(&r.name)) {
            let l = &s.layout;
            doomed.extend([
                l.source_dir(&r.name),
                l.out_dir(&r.name),
                l.log_dir(&r.name),
                l.recipe_work_dir(&r.name),
                l.state_file(&r.name),
            ]);
        }
    }
    if a.caches {
        doomed.push(s.cache_dir.clone());
    }
    let mut kept = remembered_wheelhouses(&s.layout)?;
    kept.push(s.wheelhouse.clone());
    for p in &doomed {
        for wheelhouse in &kept {
            refuse_if_contains(p, wheelhouse)?;
        }
    }
    for p in doomed.iter().filter(|p| p.exists()) {
        remove(p)?;
        println!("removed {}", p.display());
    }
    Ok(())
}

fn refuse_if_contains(dir: &Path, wheelhouse: &Path) -> Result<()> {
    if wheelhouse.starts_with(dir) {
        return Err(crate::error::input_hint(
            format!(
                "`{}` contains the wheelhouse `{}`; not removing it",
                dir.display(),
                wheelhouse.display()
            ),
            "move the wheelhouse out of the work dir (--wheelhouse DIR) or delete it by hand",
        ));
    }
    Ok(())
}

/// Records `dir` in the work dir's list of wheelhouses (once), so a later `clean` keeps it.
pub(super) fn remember_wheelhouse(layout: &Layout, dir: &Path) -> Result<()> {
    let dir = std::path::absolute(dir)?;
    let mut known = remembered_wheelhouses(layout)?;
    if known.contains(&dir) {
        return Ok(());
    }
    known.push(dir);
    let text: String = known.iter().map(|p| format!("{}\n", p.display())).collect();
    std::fs::create_dir_all(&layout.work_dir)
        .with_context(|| format!("failed to create `{}`", layout.work_dir.display()))?;
    crate::atomic::write(&layout.wheelhouses_file(), text.as_bytes())
}

/// The wheelhouses builds in this work dir used that still exist.
fn remembered_wheelhouses(layout: &Layout) -> Result<Vec<PathBuf>> {
    let file = layout.wheelhouses_file();
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", file.display())),
    };
    Ok(text
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect())
}

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
    .with_context(|| format!("failed to remove `{}`", p.display()))
}
