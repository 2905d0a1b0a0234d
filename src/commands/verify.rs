//! `jetforge verify [PKG…] [--venv DIR] [--nccl]`: runs the selected recipes' `[verify]`
//! snippets as a user runs the wheels, prints a table (or `--json`), exit 1 on any failure.
//! With `--venv DIR`, in that venv (where `jetforge install` put the set); without, in the
//! set's verify venv, synced with the wheelhouse's wheels of the selection (see
//! `build::verify_venv`). Either way with the caller's environment only: no recipe's `[env]`.
//! Each recipe's whole output goes to `logs/<recipe>/verify.log`.
//!
//! With `--index URL` / `--find-links DIR_OR_URL`, the selection is first installed from that
//! published cache (as `install --index/--find-links` does) into `--venv DIR` or a fresh venv
//! under the work dir: the deferred verification of wheels built on a machine without a GPU.
//! Every result against a known wheel (the cache's or the wheelhouse's manifest entry, matched
//! by package and version) is saved in the work dir (`wheelhouse::verified::LocalResults`),
//! keyed by fingerprint and sha256, for `publish --verified`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::builder::verify_venv::{self, VenvWheel, VerifyVenv};
use crate::cli::{GlobalArgs, VerifyArgs};
use crate::process::runner::{self, Status};
use crate::recipe::Recipe;
use crate::venv;
use crate::verify::{self, NcclMode, NcclReport, Outcome};
use crate::wheelhouse::store::Wheelhouse;

use super::install::{install_from_cache, selected_entries, CacheSource};
use super::Session;
use crate::wheelhouse::published::PublishedEntry;
use crate::wheelhouse::store::now_rfc3339;
use crate::wheelhouse::verified::{Checked, LocalResults, VerifyResult};
use crate::wheelhouse::wheel::normalize_name;

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
    let recipes = session
        .set
        .select(&a.packages.packages)
        .map_err(crate::error::input)?;
    let source = CacheSource::of(a.index.as_ref(), a.find_links.as_ref());
    if a.with_deps && source.is_none() {
        return Err(crate::error::input_hint(
            "--with-deps applies to installing from a cache",
            "add --index URL or --find-links DIR_OR_URL, or leave --with-deps out",
        ));
    }
    // The wheels under test, by recipe, when known: what results are recorded against.
    let mut tested: Vec<PublishedEntry> = Vec::new();
    let venv = match (&source, &a.venv) {
        (Some(source), venv) => {
            let dir = match venv {
                Some(dir) => dir.clone(),
                None => {
                    let dir = session.layout.root.join("verify-cache-venv");
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir).with_context(|| {
                            format!("failed to remove the old venv `{}`", dir.display())
                        })?;
                    }
                    dir
                }
            };
            install_from_cache(&session, &recipes, &dir, false, a.with_deps, source)?;
            tested = source.view(&session, &recipes)?.entries;
            std::path::absolute(&dir)?
        }
        (None, Some(dir)) => {
            let venv = std::path::absolute(dir)
                .map_err(|e| crate::error::input(format!("venv `{}`: {e}", dir.display())))?;
            if !venv.join("bin/python").exists() {
                return Err(crate::error::input_hint(
                    format!("`{}` is not a venv: no bin/python", venv.display()),
                    "pass the venv the set was installed into (`jetforge install --venv DIR`), or leave out --venv to verify the wheelhouse's wheels",
                ));
            }
            venv
        }
        (None, None) => {
            let (venv, entries) = sync_verify_venv(&session, &recipes)?;
            tested = entries;
            venv
        }
    };
    let python = venv.join("bin/python");
    let gpu_visible = session.facts.gpu_visible || session.facts.gpu_arch.is_some();
    let base_env = user_env(&session, &venv);
    let mut results = Vec::new();
    for r in &recipes {
        let outcome = match &r.verify {
            None => Outcome::Skipped {
                reason: "the recipe has no [verify]".into(),
            },
            Some(v) => {
                let env = verify_venv::with_package(&base_env, &r.name, &r.version.to_string());
                let mut log = String::new();
                let outcome = verify::run_snippet(&python, v, &env, gpu_visible, &mut log)?;
                verify_venv::write_log(&session.layout.log_dir(&r.name).join("verify.log"), &log)?;
                outcome
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
    if !tested.is_empty() {
        record(&session, &recipes, &report, &tested)?;
    }
    let failed: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.outcome.failed())
        .map(|r| r.package.as_str())
        .chain(match &report.nccl {
            Some(NcclSection::Ran(n)) if n.outcome.failed() => Some(n.check),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(crate::error::failure_hint(
        format!("verify failed: {}", failed.join(", ")),
        "the output of each failed snippet is shown above",
    ))
}

/// The caller's environment with the venv activated and nothing of the recipes' build
/// environment, so snippets see the machine as a user of the venv does.
fn user_env(s: &Session, venv: &Path) -> Vec<(String, String)> {
    verify_venv::user_env(std::env::vars(), &s.set, &s.layout, venv)
}

/// Saves what the run says about each tested wheel (see `wheelhouse::verified`), atomically, in
/// the work dir: passed when its snippet ran and passed (and the NCCL check, when asked for,
/// did not fail); `checks` names the NCCL check that ran and passed (`nccl` for 2 processes,
/// `nccl-1` for one). A recipe without `[verify]` records nothing.
fn record(
    s: &Session,
    recipes: &[&Recipe],
    report: &Report,
    tested: &[PublishedEntry],
) -> Result<()> {
    let nccl = match &report.nccl {
        Some(NcclSection::Ran(n)) => Some(n),
        _ => None,
    };
    let nccl_failed = nccl.filter(|n| n.outcome.failed());
    let nccl_passed = nccl.filter(|n| !n.outcome.failed()).map(|n| n.check);
    let host = host_description(s);
    let at = now_rfc3339();
    let mut new = Vec::new();
    for (r, row) in recipes.iter().zip(&report.results) {
        if r.verify.is_none() {
            continue;
        }
        let declared: Vec<String> = r
            .distributions()
            .iter()
            .map(|d| normalize_name(d))
            .collect();
        let matching: Vec<&PublishedEntry> = tested
            .iter()
            .filter(|e| declared.contains(&e.package) && e.version == r.version.to_string())
            .collect();
        let ambiguous = matching.iter().any(|e| {
            matching
                .iter()
                .any(|o| o.package == e.package && o.sha256 != e.sha256)
        });
        if ambiguous {
            eprintln!(
                "warning: {} {}: no verify result recorded: the cache holds more than one wheel of it for target `{}` (e.g. for several Pythons) and which one pip installed is not known; to record one, verify from a cache that holds a single wheel of {} {} for this target",
                r.name, r.version, s.target.name, r.name, r.version
            );
            continue;
        }
        for e in matching {
            let (passed, detail) = match &row.outcome {
                Outcome::Pass { .. } if nccl_failed.is_some() => (
                    false,
                    nccl_failed.map(|n| format!("the {} check failed", n.mode.title())),
                ),
                Outcome::Pass { .. } => (true, None),
                other => (
                    false,
                    Some(format!("{}: {}", other.label(), detail(other).1.join(" "))),
                ),
            };
            let mut checks = vec!["snippet".to_string()];
            if let Some(check) = nccl_passed {
                checks.push(check.into());
            }
            new.push(VerifyResult {
                run: Checked {
                    fingerprint: e.fingerprint.clone(),
                    package: e.package.clone(),
                    version: e.version.clone(),
                    file: e.file.clone(),
                    sha256: e.sha256.clone(),
                    target: e.target.clone(),
                    host: host.clone(),
                    verified_at: at.clone(),
                    checks,
                },
                passed,
                detail,
            });
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    let path = LocalResults::path(&s.layout.root);
    let mut results = LocalResults::load(&path)?;
    let passed = new.iter().filter(|r| r.passed).count();
    let total = new.len();
    results.merge(new);
    results.save(&path)?;
    eprintln!(
        "recorded {total} result(s) ({passed} passed) in {}; `jetforge publish --verified` publishes the passed ones",
        path.display()
    );
    Ok(())
}

/// Where the checks ran, for the record: hostname, CPU architecture, Jetson model or GPU.
fn host_description(s: &Session) -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut parts = vec![s.facts.arch.clone()];
    if let Some(j) = &s.facts.jetson {
        parts.push(match &j.l4t {
            Some(l4t) => format!("{} (L4T {l4t})", j.model),
            None => j.model.clone(),
        });
    }
    if let Some(arch) = &s.facts.gpu_arch {
        parts.push(format!("GPU sm_{}", arch.replace('.', "")));
    } else if s.facts.gpu_visible {
        parts.push("GPU".into());
    }
    if hostname.is_empty() {
        parts.join(", ")
    } else {
        format!("{hostname} ({})", parts.join(", "))
    }
}

/// Brings the set's verify venv up to date with the wheelhouse's wheels of `recipes` (and
/// their dependencies): made as the build made it (its interpreter and
/// `--system-site-packages`), else with the target's Python, seeing system site-packages when
/// the build venv does. Returns the venv and the entries of the wheels it holds.
fn sync_verify_venv(s: &Session, recipes: &[&Recipe]) -> Result<(PathBuf, Vec<PublishedEntry>)> {
    let wheelhouse = Wheelhouse::open(&s.wheelhouse)?;
    let entries = selected_entries(
        s,
        &wheelhouse,
        recipes,
        "run `jetforge build` first (with the same --set and --target), or pass --venv DIR to verify an installed venv",
    )?;
    let wheels: Vec<VenvWheel> = entries
        .iter()
        .map(|(_, e)| VenvWheel::of_entry(&wheelhouse, e))
        .collect::<Result<_>>()?;
    let tested: Vec<PublishedEntry> = entries.iter().map(|(_, e)| e.into()).collect();
    let dir = s.layout.verify_venv_dir();
    let (python, system_site) = match VerifyVenv::made_with(&dir) {
        Some(made) => made,
        None => (
            venv::find_python(&s.target.python_version, s.python.as_deref())?,
            build_venv_sees_system_site(&s.layout.venv_dir()),
        ),
    };
    let vv = VerifyVenv::new(dir, python, system_site, s.venv_seeds.clone());
    let env = user_env(s, &vv.spec.dir);
    let mut log = String::new();
    let synced = vv.sync(&wheels, &env, &mut log);
    let log_path = s.layout.root.join("logs").join("verify-venv.log");
    verify_venv::write_log(&log_path, &log)?;
    let made = synced.with_context(|| format!("log: {}", log_path.display()))?;
    if let Some(w) = made.warning() {
        eprintln!("warning: {w}");
    }
    Ok((vv.spec.dir, tested))
}

/// Whether the build venv was made with `--system-site-packages` (its `pyvenv.cfg` says so).
fn build_venv_sees_system_site(venv: &Path) -> bool {
    std::fs::read_to_string(venv.join("pyvenv.cfg")).is_ok_and(|cfg| {
        cfg.lines().any(|l| {
            l.split_once('=').is_some_and(|(k, v)| {
                k.trim() == "include-system-site-packages" && v.trim() == "true"
            })
        })
    })
}

fn nccl(python: &Path, env: &[(String, String)], timeout: u64) -> Result<NcclSection> {
    let mode = match verify::nccl_gate(count_gpus(python, env)) {
        Ok(mode) => mode,
        Err(why) => return Ok(NcclSection::Skipped { skipped: why }),
    };
    let argv = vec![python.to_string_lossy().into_owned()];
    Ok(NcclSection::Ran(verify::nccl_smoke(
        &argv,
        env,
        Duration::from_secs(timeout),
        mode,
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
            out.push_str(&format!("\nnccl: skipped: {skipped}\n"));
        }
        Some(NcclSection::Ran(n)) => {
            let (time, detail) = detail(&n.outcome);
            out.push_str(&format!(
                "\n{}: {} {time}\n",
                n.mode.title(),
                n.outcome.label()
            ));
            // The single-process check's pass line names NCCL's version and the GPU.
            let shown = match (&n.outcome, n.mode) {
                (Outcome::Pass { .. }, NcclMode::SingleProcess) => 0,
                _ => 1,
            };
            for line in detail.iter().skip(shown) {
                out.push_str(&format!("    | {line}\n"));
            }
            if let Some(scope) = n.mode.scope() {
                out.push_str(&format!("  note: {scope}\n"));
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
