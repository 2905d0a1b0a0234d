//! `jetforge verify [PKG…] --venv DIR [--nccl]`: runs the selected recipes' `[verify]`
//! snippets with `DIR/bin/python`, prints a table (or `--json`), exit 1 on any failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::process::runner::{self, Status};
use crate::verify::{self, NcclReport, Outcome};

use super::Session;

#[derive(Debug, Serialize)]
struct Row {
    package: String,
    version: String,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Debug, Serialize)]
struct Report {
    venv: PathBuf,
    results: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nccl: Option<NcclSection>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum NcclSection {
    Ran(NcclReport),
    Skipped { skipped: String },
}

pub fn run(g: &GlobalArgs, a: &VerifyArgs) -> Result<()> {
    let session = Session::load(g)?;
    let venv = a.venv.clone().unwrap_or_else(|| session.layout.venv_dir());
    let venv = std::path::absolute(&venv)
        .map_err(|e| crate::error::input(format!("venv `{}`: {e}", venv.display())))?;
    let python = venv.join("bin/python");
    if !python.exists() {
        return Err(crate::error::input_hint(
            format!("`{}` is not a venv: no bin/python", venv.display()),
            "pass the venv the set was installed into: `jetforge install --venv DIR`, then `jetforge verify --venv DIR`",
        ));
    }
    let recipes = session
        .set
        .select(&a.packages.packages)
        .map_err(crate::error::input)?;
    let gpu_visible = session.facts.gpu_visible || session.facts.gpu_arch.is_some();
    let base_env = venv_env(&venv);
    let mut results = Vec::new();
    for r in recipes {
        let outcome = match &r.verify {
            None => Outcome::Skipped {
                reason: "the recipe has no [verify]".into(),
            },
            Some(v) => {
                let mut env = base_env.clone();
                env.push(("JETFORGE_PACKAGE".into(), r.name.clone()));
                env.push(("JETFORGE_VERSION".into(), r.version.to_string()));
                verify::run_snippet(&python, v, &env, gpu_visible)?
            }
        };
        results.push(Row {
            package: r.name.clone(),
            version: r.version.to_string(),
            outcome,
        });
    }
    let nccl = a
        .nccl
        .then(|| nccl(&python, &base_env, a.nccl_timeout))
        .transpose()?;
    let report = Report {
        venv,
        results,
        nccl,
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    let failed: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.outcome.failed())
        .map(|r| r.package.as_str())
        .chain(
            matches!(&report.nccl, Some(NcclSection::Ran(n)) if n.outcome.failed())
                .then_some("nccl"),
        )
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(crate::error::failure_hint(
        format!("verify failed: {}", failed.join(", ")),
        "the output of each failed snippet is shown above",
    ))
}

/// The caller's environment with the venv activated, so snippets see the machine as a user of
/// the venv does.
fn venv_env(venv: &Path) -> Vec<(String, String)> {
    let bin = venv.join("bin").to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "PATH" && k != "VIRTUAL_ENV" && k != "PYTHONHOME")
        .collect();
    let path = super::caller_env("PATH").map_or(bin.clone(), |p| format!("{bin}:{p}"));
    env.push(("PATH".into(), path));
    env.push(("VIRTUAL_ENV".into(), venv.to_string_lossy().into_owned()));
    env
}

fn nccl(python: &Path, env: &[(String, String)], timeout: u64) -> Result<NcclSection> {
    if let Err(why) = verify::nccl_gate(count_gpus(python, env)) {
        return Ok(NcclSection::Skipped { skipped: why });
    }
    let argv = vec![python.to_string_lossy().into_owned()];
    Ok(NcclSection::Ran(verify::nccl_smoke(
        &argv,
        env,
        Duration::from_secs(timeout),
    )?))
}

/// GPUs by `nvidia-smi -L`, else by the venv's torch.
fn count_gpus(python: &Path, env: &[(String, String)]) -> Option<u32> {
    let limit = Duration::from_secs(60);
    let run = |argv: Vec<String>| {
        let out = runner::run_with_timeout(&argv, env, &std::env::temp_dir(), limit).ok()?;
        (out.status == Some(Status::Success)).then_some(out.output)
    };
    let smi = which::which("nvidia-smi").ok().and_then(|smi| {
        let out = run(vec![smi.to_string_lossy().into_owned(), "-L".into()])?;
        Some(out.lines().filter(|l| l.starts_with("GPU ")).count() as u32)
    });
    smi.or_else(|| {
        let out = run(vec![
            python.to_string_lossy().into_owned(),
            "-c".into(),
            "import torch; print(torch.cuda.device_count())".into(),
        ])?;
        out.lines().last()?.trim().parse().ok()
    })
}

fn render(report: &Report) -> String {
    let width = report
        .results
        .iter()
        .map(|r| r.package.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "verify with {}\n{:<width$}  {:<12}  {:<7}  {:>7}  detail\n",
        report.venv.join("bin/python").display(),
        "package",
        "version",
        "result",
        "time"
    );
    for r in &report.results {
        let (time, detail) = detail(&r.outcome);
        out.push_str(&format!(
            "{:<width$}  {:<12}  {:<7}  {:>7}  {}\n",
            r.package,
            r.version,
            r.outcome.label(),
            time,
            detail.first().map(String::as_str).unwrap_or("")
        ));
        for line in detail.iter().skip(1) {
            out.push_str(&format!("    | {line}\n"));
        }
    }
    match &report.nccl {
        None => {}
        Some(NcclSection::Skipped { skipped }) => {
            out.push_str(&format!("\nnccl all-reduce: skipped: {skipped}\n"));
        }
        Some(NcclSection::Ran(n)) => {
            let (time, detail) = detail(&n.outcome);
            out.push_str(&format!(
                "\nnccl all-reduce (2 processes): {} {time}\n",
                n.outcome.label()
            ));
            for line in detail.iter().skip(1) {
                out.push_str(&format!("    | {line}\n"));
            }
            if let Some(rerun) = &n.p2p_disabled {
                out.push_str(&format!(
                    "nccl all-reduce with NCCL_P2P_DISABLE=1: {}\n",
                    rerun.label()
                ));
            }
            for line in &n.advice {
                out.push_str(&format!("  hint: {line}\n"));
            }
        }
    }
    out
}

/// The time column and the detail lines (first line in the table, the rest below it).
fn detail(o: &Outcome) -> (String, Vec<String>) {
    match o {
        Outcome::Pass { secs, said } => (format!("{secs:.1}s"), said.iter().cloned().collect()),
        Outcome::Fail { secs, status, tail } => {
            let mut lines = vec![status.clone()];
            lines.extend(tail.iter().cloned());
            (format!("{secs:.1}s"), lines)
        }
        Outcome::Timeout { secs, tail } => {
            let mut lines = vec![format!("no answer within {secs}s: stopped (a hang?)")];
            lines.extend(tail.iter().cloned());
            (format!(">{secs}s"), lines)
        }
        Outcome::Skipped { reason } => ("-".into(), vec![reason.clone()]),
    }
}
