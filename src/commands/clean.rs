//! `jetforge clean [PKG…] [--caches]`: removes work directories (sources, logs, state, the
//! build venv) and, with `--caches`, the git mirror and resource caches. The wheelhouse is never
//! removed: it holds hours of builds, and a directory that contains it is refused.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Session;
use crate::cli::{CleanArgs, GlobalArgs};

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
    let wheelhouse = std::path::absolute(s.wheelhouse_dir())?;
    for p in &doomed {
        refuse_if_contains(p, &wheelhouse)?;
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

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
    .with_context(|| format!("failed to remove `{}`", p.display()))
}
