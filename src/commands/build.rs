//! `jetforge build [all|PKG…]`: the main job (see `builder::driver`).

use anyhow::Result;

use super::progress;
use super::Session;
use crate::builder::driver::{self, BuildOptions};
use crate::builder::summary::BuildFailed;
use crate::builder::timings_report::{self, BuildTimings};
use crate::cli::{BuildArgs, GlobalArgs};
use crate::wheelhouse::store::Wheelhouse;

pub fn run(g: &GlobalArgs, a: &BuildArgs) -> Result<()> {
    let mut s = Session::load(g)?;
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
    let wheelhouse = Wheelhouse::open(&s.wheelhouse)?.verify_all(a.verify_wheels);
    super::clean::remember_wheelhouse(&s.layout, wheelhouse.dir())?;
    s.compiler.create_dirs()?;
    warn_unreachable_remotes(&mut s.compiler);
    let remote = s.remote_caches(&a.cache_from);
    let cx = s.build_context(&wheelhouse, &remote, reporter.as_ref(), cross.as_ref());
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
    let started = std::time::SystemTime::now();
    // The steps find sccache on the caller's PATH (behind the build venv's and CUDA's bin).
    // jetforge's sccache server is stopped when the build ends, however it ends: a server left
    // by an interrupted build would serve the next one with its old settings (it reads them
    // only when it starts), so one still running is stopped first too.
    let path = super::caller_env("PATH").unwrap_or_default();
    s.compiler.stop_server(&path);
    {
        let (compiler, path) = (s.compiler.clone(), path.clone());
        crate::process::interrupt::before_forced_exit(move || compiler.stop_server(&path));
    }
    let result = driver::build(&cx, &selected, &opts);
    s.compiler.stop_server(&path);
    if a.timings || g.json {
        let summary = match &result {
            Ok(s) => Some(s.clone()),
            Err(e) => e.downcast_ref::<BuildFailed>().map(|f| f.summary.clone()),
        };
        if let Some(summary) = summary {
            let t = BuildTimings::collect(&s.layout, &selected, &summary, started, &s.facts);
            let report = timings_report::write(&s.layout, &t)?;
            if g.json {
                let json = serde_json::json!({
                    "ok": result.is_ok(),
                    "wheelhouse": wheelhouse.dir(),
                    "report": report,
                    "timings": t,
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                eprintln!("timings report: {}", report.display());
            }
        }
    }
    let summary = result.map_err(|e| match e.downcast::<BuildFailed>() {
        Ok(failed) => crate::error::Report(failed.to_string()).into(),
        Err(e) => e,
    })?;
    if !g.json {
        print!("{}", summary.render());
        println!("wheelhouse: {}", wheelhouse.dir().display());
    }
    Ok(())
}

/// A dead compiler cache remote only costs hits, so it is a warning before the build rather
/// than a failure. ccache then compiles locally by itself; sccache's server does not start
/// with a storage it cannot reach (every compile fails), so it is built without that remote.
fn warn_unreachable_remotes(compiler: &mut crate::compiler_cache::Setup) {
    use crate::compiler_cache::CacheEngine;
    let Some(engine) = compiler.engine else {
        return;
    };
    compiler.remote.retain(|url| {
        let Err(e) = crate::doctor::compiler::connect(url, 0) else {
            return true;
        };
        let keep = engine != CacheEngine::Sccache;
        let how = if keep {
            "ccache compiles locally on a failed lookup, so this build uses the local cache only"
        } else {
            "sccache's server cannot start with a storage it cannot reach, so this build leaves \
             it out and uses the local cache only"
        };
        eprintln!(
            "{}",
            crate::redact::redact(&format!(
                "warning: compiler cache remote storage {url} ([compiler-cache] remote) is not \
                 reachable ({e}); {how}. Check it with `jetforge doctor`"
            ))
        );
        keep
    });
}
