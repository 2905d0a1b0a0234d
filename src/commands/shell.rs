//! `jetforge shell PKG [--command CMD]`: bash with exactly the environment the recipe's build
//! steps get, the build venv created and the prepared source tree as the working directory
//! (like `nix develop`), to work on a build by hand.

use anyhow::{Context, Result};

use super::progress;
use super::Session;
use crate::builder::driver::{self, BuildOptions};
use crate::cli::{GlobalArgs, ShellArgs};
use crate::net::index::IndexClient;
use crate::wheelhouse::remote::RemoteCaches;
use crate::wheelhouse::store::Wheelhouse;

pub fn run(g: &GlobalArgs, a: &ShellArgs) -> Result<()> {
    let s = Session::load(g)?;
    let cross = s.build_mode()?;
    // `select` names an unknown recipe the way every command does.
    s.set
        .select(std::slice::from_ref(&a.package))
        .map_err(crate::error::input)?;
    let r = s.set.get(&a.package).expect("selected above");
    let reporter = progress::for_terminal(g.no_progress, g.verbose > 0);
    let plan = {
        let _lock = super::sources::lock_work_dir(&s, reporter.as_ref())?;
        let wheelhouse = Wheelhouse::open(&s.wheelhouse)?;
        // No remote caches: the shell builds the venv and the tree, never a wheel.
        let remote = RemoteCaches::new(&[], IndexClient::new(&s.policy, s.policy.fetch.clone()));
        let cx = s.build_context(&wheelhouse, &remote, reporter.as_ref(), cross.as_ref());
        let opts = BuildOptions {
            jobs: s.jobs_override(a.jobs.jobs)?,
            verbose: g.verbose > 0,
            python: g.python.clone(),
            system_site_packages: a.system_site_packages,
            ..BuildOptions::default()
        };
        driver::enter(&cx, r, &opts)?
    };
    let dir = &plan.source_dir;
    let mut cmd = std::process::Command::new("bash");
    match &a.command {
        Some(c) => {
            cmd.args(["-c", c]);
        }
        None => {
            eprintln!(
                "jetforge: a shell for {} in {} with its build environment; `exit` leaves it",
                r.name,
                dir.display()
            );
            // No rc files: they would change the environment the steps get.
            cmd.args(["--norc", "--noprofile", "-i"]);
        }
    }
    let status = cmd
        .current_dir(dir)
        .env_clear()
        .envs(plan.build_env.pairs())
        .status()
        .with_context(|| format!("failed to start bash in `{}`", dir.display()))?;
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(status.code().unwrap_or(128 + status_signal(&status)));
}

fn status_signal(status: &std::process::ExitStatus) -> i32 {
    std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(1)
}
