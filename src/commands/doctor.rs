//! `jetforge doctor`: gathers probes for the session's host root, runs the checks and prints
//! the report (text or `--json`). Exit 1 when a blocker is found.

use anyhow::{Context, Result};

use crate::cli::{GlobalArgs, Packages};
use crate::doctor::probe::{Compilers, CudaProbeCommand};
use crate::doctor::{self, Inputs, Probes};

use super::Session;

/// The hidden subcommand that runs the libcuda probe in a child process.
pub const CUDA_PROBE_SUBCOMMAND: &str = "__cuda-probe";

pub fn run(g: &GlobalArgs, a: &Packages) -> Result<()> {
    let mut session = Session::load(g)?;
    // Disk and MAX_JOBS count only what would be built: the selection and its dependencies.
    let mut set = session.set.clone();
    set.recipes = session
        .set
        .select(&a.packages)
        .map_err(crate::error::input)?
        .into_iter()
        .cloned()
        .collect();
    let root = super::host_root(g)?;
    // Doctor is the one command that always asks Python and the GPU, whatever the target.
    session.facts.probe_python(&root, None);
    session.facts.probe_gpu(&root);
    let exe = std::env::current_exe().context("failed to find the jetforge executable")?;
    let probe = CudaProbeCommand(vec![
        exe.to_string_lossy().into_owned(),
        CUDA_PROBE_SUBCOMMAND.into(),
    ]);
    let probes = Probes::gather(
        &root,
        &session.facts,
        &session.target,
        &session.layout.root,
        &probe,
        &Compilers {
            cc: super::caller_env("CC").filter(|v| !v.trim().is_empty()),
            cxx: super::caller_env("CXX").filter(|v| !v.trim().is_empty()),
        },
    );
    let inputs = Inputs {
        facts: &session.facts,
        probes: &probes,
        set: &set,
        target: &session.target,
        proxy: session.policy.proxy.describe(),
        work_dir: session.layout.root.clone(),
        sysroot: session
            .config
            .sysroot(super::caller_env(crate::envvars::JETFORGE_SYSROOT)),
    };
    let mut report = doctor::report(&inputs);
    let compiler = doctor::compiler::probe(&session.compiler, &|p| which::which(p).is_ok());
    if let Some(section) = doctor::compiler::section(&compiler) {
        report.add_section(section);
    }
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::redact::redact(&doctor::render(&report)));
    }
    if report.has_blockers() {
        return Err(crate::error::failure_hint(
            format!(
                "doctor found {} blocker(s): {}",
                report.summary.blockers,
                report.summary.blocking.join(", ")
            ),
            "each blocker above has a `fix:` line",
        ));
    }
    Ok(())
}

/// The child side of the libcuda probe: one line on stdout.
pub fn cuda_probe() -> Result<()> {
    println!("{}", doctor::cuda_probe::run_child());
    Ok(())
}
