//! `jetforge fetch` and `jetforge prepare`.
//!
//! `fetch` fills the git mirror and resource caches for the selected recipes (an air-gapped
//! machine then builds with `--offline`). `prepare` also checks out every tree and applies every
//! patch and edit — all checked before any tree is written.

use anyhow::Result;

use super::progress;
use super::Session;
use crate::cli::{GlobalArgs, Packages};
use crate::report::Reporter;
use crate::source::git::MirrorCache;
use crate::source::lock::DirLock;
use crate::source::phase as sources;

pub fn fetch(g: &GlobalArgs, a: &Packages) -> Result<()> {
    let s = Session::load(g)?;
    let recipes = s.set.select(&a.packages).map_err(crate::error::input)?;
    let reporter = progress::for_terminal(g.no_progress, g.verbose > 0);
    let cache = mirror_cache(&s, reporter.as_ref());
    sources::fetch_all(&recipes, &cache, &s.cache_dir, &s.policy, reporter.as_ref())?;
    println!(
        "fetched {} recipe(s) into {}",
        recipes.len(),
        s.cache_dir.display()
    );
    Ok(())
}

pub fn prepare(g: &GlobalArgs, a: &Packages) -> Result<()> {
    let s = Session::load(g)?;
    let plan = super::plan::make(&s, &a.packages, None)?;
    let recipes = s.set.select(&a.packages).map_err(crate::error::input)?;
    let reporter = progress::for_terminal(g.no_progress, g.verbose > 0);
    let _lock = lock_work_dir(&s, reporter.as_ref())?;
    let cache = mirror_cache(&s, reporter.as_ref());
    sources::fetch_all(&recipes, &cache, &s.cache_dir, &s.policy, reporter.as_ref())?;
    let plans: Vec<_> = plan.recipes.iter().collect();
    let prepared = sources::prepare_all(&plans, &recipes, &cache, reporter.as_ref())?;
    for p in &plan.recipes {
        let subs = prepared.get(&p.name).map_or(0, |x| x.submodules.len());
        println!(
            "prepared {} {} in {} ({subs} submodules)",
            p.name,
            p.version,
            p.source_dir.display()
        );
    }
    Ok(())
}

pub fn mirror_cache<'a>(s: &'a Session, reporter: &'a dyn Reporter) -> MirrorCache<'a> {
    MirrorCache::new(&s.cache_dir, &s.policy).on_wait(move |m| reporter.message(m))
}

/// One jetforge at a time per work dir; a second one waits and says so.
pub fn lock_work_dir(s: &Session, reporter: &dyn Reporter) -> Result<DirLock> {
    crate::paths::create_dir_all(&s.layout.root)?;
    DirLock::acquire(&s.layout.root, "the work dir", |m| reporter.message(m))
}
