//! The hand-off to verify: a recipe's `[verify]` snippet in the verify venv (see `verify_venv`),
//! or under the target's emulator in a cross build.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::driver::BuildContext;
use super::verify_venv::{self, VenvWheel, VerifyVenv};
use super::wheels::{dependency_entries, dependency_wheels};
use crate::cross::emulate::EmulatedVerify;
use crate::cross::Cross;
use crate::process::runner;
use crate::recipe::Recipe;
use crate::venv::VenvSpec;
use crate::verify::Outcome as VerifyOutcome;
use crate::wheelhouse::verified::VerifyState;

/// Runs the verify snippet with `wheels` installed; on failure they go to `broken/`. The state
/// reached is recorded with the wheels: pending when a check was skipped, never passed.
pub(super) fn verify_wheels(
    cx: &BuildContext,
    r: &Recipe,
    venv: &VenvSpec,
    wheels: &[PathBuf],
) -> Result<VerifyState> {
    match verify(cx, r, venv, wheels) {
        Ok(state) => Ok(state),
        Err(e) => {
            for w in wheels {
                cx.wheelhouse.add_broken(w, &format!("{e:#}"))?;
            }
            Err(e)
        }
    }
}

/// Runs the recipe's `[verify]` snippet as a user would run the wheel: in the verify venv
/// holding the new wheels and the set's wheels they need, with the caller's environment only
/// (see `verify_venv`); in a cross build with the target's python under its emulator. The
/// whole output goes to `logs/<recipe>/verify.log`, and is shown on failure.
fn verify(
    cx: &BuildContext,
    r: &Recipe,
    venv: &VenvSpec,
    wheels: &[PathBuf],
) -> Result<VerifyState> {
    let Some(v) = &r.verify else {
        return Ok(VerifyState::NoCheck);
    };
    let log_path = cx.layout.log_dir(&r.name).join("verify.log");
    let mut log = String::new();
    let verify_venv = VerifyVenv::new(
        cx.layout.verify_venv_dir(),
        venv.base_python.clone(),
        venv.system_site_packages,
        cx.venv_seeds.map(Path::to_path_buf),
    );
    let caller: Vec<(String, String)> = std::env::vars().collect();
    let user = verify_venv::user_env(caller, cx.set, cx.layout, &verify_venv.spec.dir);
    let env = verify_venv::with_package(&user, &r.name, &r.version.to_string());
    let outcome = match cx.cross {
        Some(_) if v.gpu => VerifyOutcome::Skipped {
            reason: "needs the target's GPU, which a cross build does not have".into(),
        },
        Some(c) => {
            let timeout = Duration::from_secs(v.timeout_secs);
            match verify_emulated(cx, r, c, venv, wheels, &v.python, env, timeout)? {
                Some(out) => crate::verify::outcome_of(&out, timeout),
                None => {
                    return Ok(VerifyState::Pending {
                        reason: format!(
                            "no emulator: target `{}` names none, the [verify] snippet did not run",
                            cx.target.name
                        ),
                    })
                }
            }
        }
        None => {
            let mut all = dependency_entries(cx, r)?
                .iter()
                .map(|e| VenvWheel::of_entry(cx.wheelhouse, e))
                .collect::<Result<Vec<_>>>()?;
            for w in wheels {
                all.push(VenvWheel::read(w)?);
            }
            let ran = verify_venv.sync(&all, &env, &mut log).and_then(|made| {
                super::build_venv::report_made(cx, r, "verify venv", &made);
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
    let state = match &outcome {
        VerifyOutcome::Skipped { reason } => VerifyState::Pending {
            reason: format!("no GPU: the [verify] snippet {reason}"),
        },
        _ => VerifyState::Passed,
    };
    let said = judge(&r.name, outcome, &log_path, &verify_venv.python())?;
    if let Some(line) = said {
        cx.reporter.message(&line);
    }
    Ok(state)
}

/// What a verify outcome means for the recipe: a line to show when it passed or was skipped,
/// else the error, with the tail of the log at `log_path` and, for a failure, the python that
/// still has the wheel installed.
fn judge(
    recipe: &str,
    outcome: VerifyOutcome,
    log_path: &Path,
    python: &Path,
) -> Result<Option<String>> {
    let shown = || {
        let text = std::fs::read_to_string(log_path).unwrap_or_default();
        format!(
            "  log: {}\n{}",
            log_path.display(),
            verify_venv::tail(&text)
        )
    };
    match outcome {
        VerifyOutcome::Pass { said, .. } => Ok(said.map(|line| format!("{recipe}: verify: {line}"))),
        VerifyOutcome::Skipped { reason } => Ok(Some(format!("{recipe}: verify skipped: {reason}"))),
        VerifyOutcome::Fail { status, .. } => Err(crate::error::failure_hint(
            format!("{recipe}: verify failed ({status}):\n{}", shown()),
            format!(
                "the wheel was moved to broken/; the snippet ran as a user runs the wheel, with none of the recipes' [env]: investigate with `{}`, which still has it installed",
                python.display()
            ),
        )),
        VerifyOutcome::Timeout { secs, .. } => Err(crate::error::failure_hint(
            format!(
                "{recipe}: verify did not finish within {secs}s and was stopped\n{}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(outcome: VerifyOutcome) -> Result<Option<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("verify.log");
        std::fs::write(&log, "Traceback\nImportError: libcudnn.so.9\n").unwrap();
        judge("torch", outcome, &log, Path::new("/v/bin/python"))
            .map_err(|e| crate::error::render(&e))
    }

    #[test]
    fn a_pass_shows_what_the_snippet_said_and_a_skip_says_why() {
        let pass = VerifyOutcome::Pass {
            secs: 1.0,
            said: Some("cuda ok".into()),
        };
        assert_eq!(
            judged(pass).unwrap().as_deref(),
            Some("torch: verify: cuda ok")
        );
        let silent = VerifyOutcome::Pass {
            secs: 1.0,
            said: None,
        };
        assert_eq!(judged(silent).unwrap(), None);
        let skipped = VerifyOutcome::Skipped {
            reason: "no GPU".into(),
        };
        assert_eq!(
            judged(skipped).unwrap().as_deref(),
            Some("torch: verify skipped: no GPU")
        );
    }

    #[test]
    fn a_failure_shows_the_log_tail_and_the_python_that_still_has_the_wheel() {
        let fail = VerifyOutcome::Fail {
            secs: 1.0,
            status: "exit status 1".into(),
            tail: Vec::new(),
        };
        let text = judged(fail).unwrap_err();
        assert!(
            text.contains("torch: verify failed (exit status 1)"),
            "{text}"
        );
        assert!(text.contains("ImportError: libcudnn.so.9"), "{text}");
        assert!(text.contains("investigate with `/v/bin/python`"), "{text}");
    }

    #[test]
    fn a_timeout_says_which_setting_to_raise() {
        let timeout = VerifyOutcome::Timeout {
            secs: 30,
            tail: Vec::new(),
        };
        let text = judged(timeout).unwrap_err();
        assert!(text.contains("did not finish within 30s"), "{text}");
        assert!(text.contains("timeout_secs"), "{text}");
    }
}
