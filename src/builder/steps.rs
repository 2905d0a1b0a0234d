//! A recipe's build steps: resumed where the last run stopped, retried with fewer jobs after an
//! OOM kill, and a failed step's message with its log, last lines and replay script.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

use super::driver::{make_plans, BuildContext, BuildOptions};
use crate::env::RenderedStep;
use crate::plan::RecipePlan;
use crate::process::runner::{self, Program, Status, StepCommand};
use crate::recipe::Recipe;
use crate::state::{RecipeState, RunningStep};

/// Runs the recipe's steps from where the last run stopped. Returns the jobs that worked and
/// whether an OOM retry happened.
pub(super) fn run_steps(
    cx: &BuildContext,
    r: &Recipe,
    p: &RecipePlan,
    fp: &str,
    opts: &BuildOptions,
    state: &mut RecipeState,
) -> Result<(u32, bool)> {
    let state_path = cx.layout.state_file(&r.name);
    let mut start = state.resume_at(fp);
    if start >= r.steps.len() {
        // Every step finished before, yet we are building (--force, or its wheel is gone):
        // start over rather than resume past the end.
        start = 0;
    }
    if start == 0 {
        clear_wheels(&cx.layout.out_dir(&r.name))?;
    } else if start < r.steps.len() {
        cx.reporter.message(&format!(
            "{}: resuming at step {}/{} (earlier steps finished; compiled objects are kept)",
            r.name,
            start + 1,
            r.steps.len()
        ));
    }
    state.fingerprint = Some(fp.to_string());
    state.steps_done = start;
    state.save(&state_path)?;
    let mut plan = p.clone();
    let mut retried = false;
    let n = r.steps.len();
    let mut i = start;
    while i < n {
        let step = &plan.steps[i];
        cx.reporter
            .phase(&r.name, &format!("step {}/{n}: {}", i + 1, step.name));
        let cmd = step_command(cx, r, &plan, step, i);
        let out = runner::run_observed(&cmd, &mut |l| cx.reporter.line(&r.name, l), &mut |pid| {
            state.running = RunningStep::of(&step.name, pid);
            state.save(&state_path)
        })?;
        state.running = None;
        if out.success() {
            i += 1;
            state.steps_done = i;
            state.save(&state_path)?;
            continue;
        }
        state.save(&state_path)?;
        if crate::process::interrupt::interrupted() {
            return Err(anyhow!(
                "{}: step {} `{}` was interrupted",
                r.name,
                i + 1,
                step.name
            ));
        }
        let jobs = plan.jobs.jobs;
        if out.oom && jobs > 1 {
            let fewer = (jobs / 2).max(1);
            cx.reporter.message(&format!(
                "{}: step `{}` was killed ({}), most likely out of memory, with MAX_JOBS={}; \
                 retrying with {fewer} jobs, keeping what was compiled",
                r.name, step.name, out.status, plan.jobs.max_jobs
            ));
            let mut ov = opts.jobs.clone();
            ov.cli = Some(fewer);
            ov.env = None;
            plan = make_plans(cx, &[r], &ov)?.remove(0);
            retried = true;
            continue;
        }
        return Err(step_failure(
            r,
            &cmd,
            &plan,
            i,
            n,
            &out.status,
            &out.tail,
            out.oom,
        ));
    }
    Ok((plan.jobs.jobs, retried))
}

pub(super) fn step_command(
    cx: &BuildContext,
    r: &Recipe,
    plan: &RecipePlan,
    step: &RenderedStep,
    i: usize,
) -> StepCommand {
    let program = match (&step.script, &step.argv) {
        (Some(s), _) => Program::Script(s.clone()),
        (None, Some(a)) => Program::Argv(a.clone()),
        (None, None) => Program::Argv(vec!["true".into()]),
    };
    StepCommand {
        name: step.name.clone(),
        program,
        cwd: step.cwd.clone(),
        env: plan
            .build_env
            .pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        log: cx.layout.log_dir(&r.name).join(format!(
            "{:02}-{}.log",
            i + 1,
            runner::slug(&step.name)
        )),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn step_failure(
    r: &Recipe,
    cmd: &StepCommand,
    plan: &RecipePlan,
    i: usize,
    n: usize,
    status: &Status,
    tail: &[String],
    oom: bool,
) -> anyhow::Error {
    // The environment the step ran with: after an OOM retry, its reduced MAX_JOBS.
    let replay = runner::write_replay(cmd, &plan.build_env.to_shell(false))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(could not write a replay script: {e})"));
    let hint = if oom {
        "it was killed at MAX_JOBS=1: add swap (an 8 GB Orin needs ~16 GB) or free memory, then run `jetforge build` again"
    } else {
        "fix the cause, then run `jetforge build` again: it resumes at this step"
    };
    crate::error::failure_hint(
        format!(
            "{}: build step {}/{n} `{}` failed ({status})\n  command: {}\n  cwd: {}\n  log: {}\n  replay: {replay}\n  last lines:\n{}",
            r.name,
            i + 1,
            cmd.name,
            crate::redact::redact(&cmd.display()),
            cmd.cwd.display(),
            cmd.log.display(),
            crate::redact::redact(&indent_tail(tail))
        ),
        hint,
    )
}

/// Removes wheels left in the output dir by an earlier build, so only this build's count.
pub(super) fn clear_wheels(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    for e in crate::paths::dir_entries(out)? {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "whl") {
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
        }
    }
    Ok(())
}

pub(super) fn indent_tail(tail: &[String]) -> String {
    tail.iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
