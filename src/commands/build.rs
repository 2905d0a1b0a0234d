//! `jetforge build [all|PKG…]`: the main job (see `builder::driver`).

use anyhow::Result;

use super::progress;
use super::{caller_env, Session};
use crate::builder::driver::{self, BuildContext, BuildOptions};
use crate::builder::summary::BuildFailed;
use crate::cli::{BuildArgs, GlobalArgs};
use crate::net::index::IndexClient;
use crate::net::FetchOptions;
use crate::wheelhouse::remote::RemoteCaches;
use crate::wheelhouse::store::Wheelhouse;

pub fn run(g: &GlobalArgs, a: &BuildArgs) -> Result<()> {
    let s = Session::load(g)?;
    let cross = s.build_mode()?;
    let selected = s
        .set
        .select(&a.packages.packages)
        .map_err(crate::error::input)?;
    if cross.is_some() {
        crate::cross::refuse_uncrossable(&selected, &s.target)?;
    }
    for f in a.force.iter().filter(|f| *f != "all") {
        if s.set.get(f).is_none() {
            return Err(crate::error::input(format!(
                "--force {f}: no recipe named `{f}`"
            )));
        }
    }
    let reporter = progress::for_terminal(g.no_progress, g.verbose > 0);
    let _lock = super::sources::lock_work_dir(&s, reporter.as_ref())?;
    let wheelhouse = Wheelhouse::open(a.wheelhouse.as_deref().unwrap_or(&s.wheelhouse))?
        .verify_all(a.verify_wheels);
    let urls: Vec<String> = a
        .cache_from
        .iter()
        .chain(&s.config.cache.indexes)
        .cloned()
        .collect();
    let remote = RemoteCaches::new(&urls, IndexClient::new(&s.policy, FetchOptions::from_env()));
    let cx = BuildContext {
        set: &s.set,
        target: &s.target,
        facts: &s.facts,
        layout: &s.layout,
        policy: &s.policy,
        proxy_env: s.proxy_env.clone(),
        cache_dir: &s.cache_dir,
        wheelhouse: &wheelhouse,
        remote: &remote,
        reporter: reporter.as_ref(),
        caller: &caller_env,
        network: super::plan::network_lines(&s),
        cross: cross.as_ref(),
    };
    let opts = BuildOptions {
        force: a.force.clone(),
        keep_going: a.keep_going,
        jobs: s.jobs_override(a.jobs.jobs)?,
        verbose: g.verbose > 0,
        python: g.python.clone(),
        system_site_packages: a.system_site_packages,
    };
    // A reader that went away must not hide how the build ended.
    crate::out::fall_back_to_stderr();
    let summary =
        driver::build(&cx, &selected, &opts).map_err(|e| match e.downcast::<BuildFailed>() {
            Ok(failed) => crate::error::Report(failed.to_string()).into(),
            Err(e) => e,
        })?;
    print!("{}", summary.render());
    println!("wheelhouse: {}", wheelhouse.dir().display());
    Ok(())
}
