//! The hand-off to verify: a recipe's `[verify]` snippet in the verify venv (see `verify_venv`),
//! or under the target's emulator in a cross build.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::driver::BuildContext;
use super::verify_venv::{self, VerifyVenv};
use super::wheels::dependency_wheels;
use crate::cross::emulate::EmulatedVerify;
use crate::cross::Cross;
use crate::process::runner;
use crate::recipe::Recipe;
use crate::venv::VenvSpec;
use crate::verify::Outcome as VerifyOutcome;

/// Runs the verify snippet with `wheels` installed; on failure they go to `broken/`.
pub(super) fn verify_wheels(
    cx: &BuildContext,
    r: &Recipe,
    venv: &VenvSpec,
    wheels: &[PathBuf],
) -> Result<()> {
    if let Err(e) = verify(cx, r, venv, wheels) {
        for w in wheels {
            cx.wheelhouse.add_broken(w, &format!("{e:#}"))?;
        }
        return Err(e);
    }
    Ok(())
}

/// Runs the recipe's `[verify]` snippet as a user would run the wheel: in the verify venv
/// holding the new wheels and the set's wheels they need, with the caller's environment only
/// (see `verify_venv`); in a cross build with the target's python under its emulator. The
/// whole output goes to `logs/<recipe>/verify.log`, and is shown on failure.
fn verify(cx: &BuildContext, r: &Recipe, venv: &VenvSpec, wheels: &[PathBuf]) -> Result<()> {
    let Some(v) = &r.verify else { return Ok(()) };
    let log_path = cx.layout.log_dir(&r.name).join("verify.log");
    let mut log = String::new();
    let verify_venv = VerifyVenv::new(
        cx.layout.verify_venv_dir(),
        venv.base_python.clone(),
        venv.system_site_packages,
    );
    let caller: Vec<(String, String)> = std::env::vars().collect();
    let user = verify_venv::user_env(caller, cx.set, cx.layout, &verify_venv.spec.dir);
    let env = verify_venv::with_package(&user, &r.name, &r.version);
    let outcome = match cx.cross {
        Some(_) if v.gpu => VerifyOutcome::Skipped {
            reason: "it needs the target's GPU, which a cross build does not have".into(),
        },
        Some(c) => {
            let timeout = Duration::from_secs(v.timeout_secs);
            match verify_emulated(cx, r, c, venv, wheels, &v.python, env, timeout)? {
                Some(out) => crate::verify::outcome_of(&out, timeout),
                None => return Ok(()),
            }
        }
        None => {
            let mut all = dependency_wheels(cx, r)?;
            all.extend(wheels.iter().cloned());
            let ran = verify_venv.sync(&all, &env, &mut log).and_then(|()| {
                crate::verify::run_snippet(
                    &verify_venv.python(),
                    v,
                    &env,
                    cx.facts.gpu_visible || cx.facts.gpu_arch.is_some(),
                    &mut log,
                )
            });
            verify_venv::write_log(&log_path, &log)?;
            ran.with_context(|| {
                format!(
                    "{}: verify could not run (log: {})",
                    r.name,
                    log_path.display()
                )
            })?
        }
    };
    let shown = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        format!(
            "  log: {}\n{}",
            log_path.display(),
            verify_venv::tail(&text)
        )
    };
    match outcome {
        VerifyOutcome::Pass { said, .. } => {
            if let Some(line) = said {
                cx.reporter.message(&format!("{}: verify: {line}", r.name));
            }
            Ok(())
        }
        VerifyOutcome::Skipped { reason } => {
            cx.reporter
                .message(&format!("{}: verify skipped: {reason}", r.name));
            Ok(())
        }
        VerifyOutcome::Fail { status, .. } => Err(crate::error::failure_hint(
            format!("{}: verify failed ({status}):\n{}", r.name, shown()),
            format!(
                "the wheel was moved to broken/; the snippet ran as a user runs the wheel, with none of the recipes' [env]: investigate with `{}`, which still has it installed",
                verify_venv.python().display()
            ),
        )),
        VerifyOutcome::Timeout { secs, .. } => Err(crate::error::failure_hint(
            format!(
                "{}: verify did not finish within {secs}s and was stopped\n{}",
                r.name,
                shown()
            ),
            "raise [verify] timeout_secs if the check is slow, or look for a hang",
        )),
    }
}

/// The emulated run of a cross build's verify snippet, with the recipe's dependency wheels
/// beside the new ones; `None` (and a message) when the target names no emulator.
#[allow(clippy::too_many_arguments)]
fn verify_emulated(
    cx: &BuildContext,
    r: &Recipe,
    cross: &Cross,
    venv: &VenvSpec,
    wheels: &[PathBuf],
    snippet: &str,
    env: Vec<(String, String)>,
    timeout: Duration,
) -> Result<Option<runner::TimedOutput>> {
    if cross.emulator_argv().is_empty() {
        cx.reporter.message(&format!(
            "{}: verify skipped: target `{}` names no emulator to run {} code",
            r.name, cx.target.name, cross.platforms.host
        ));
        return Ok(None);
    }
    let mut all = dependency_wheels(cx, r)?;
    all.extend(wheels.iter().cloned());
    let out = crate::cross::run_verify_emulated(&EmulatedVerify {
        cross,
        installer_python: &venv.python(),
        wheels: &all,
        snippet,
        env,
        site_dir: &cx.layout.verify_dir(&r.name),
        timeout,
    })?;
    let log = cx.layout.log_dir(&r.name).join("verify.log");
    crate::private::write_file(
        &log,
        crate::redact::redact(&out.output).as_bytes(),
        crate::private::FILE,
    )?;
    let emulator = cross.emulator_argv().remove(0);
    for line in out.output.lines() {
        cx.reporter
            .message(&format!("{}: verify ({emulator}): {line}", r.name));
    }
    cx.reporter.message(&format!(
        "{}: verify ran under {emulator} in {:.1}s",
        r.name,
        out.duration.as_secs_f64()
    ));
    Ok(Some(out))
}
