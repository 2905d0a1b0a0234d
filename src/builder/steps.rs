//! A recipe's build steps: resumed where the last run stopped, retried with fewer jobs after an
//! OOM kill, measured (compiler cache counters read around each run), and a failed step's
//! message with its log, last lines and replay script.

use anyhow::{anyhow, Result};

use super::driver::{make_plans, BuildContext, BuildOptions};
use super::wheels::clear_wheels;
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
    state.timings.clear();
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
        // Read in the step's own environment and cwd, so the engine reads the same cache.
        let before = cx.compiler.stats(&cmd.env, &cmd.cwd);
        let out = runner::run_observed(&cmd, &mut |l| cx.reporter.line(&r.name, l), &mut |pid| {
            state.running = RunningStep::of(&step.name, pid);
            state.save(&state_path)
        })?;
        state.running = None;
        let cache = before.and_then(|b| Some(cx.compiler.stats(&cmd.env, &cmd.cwd)?.since(b)));
        super::timings::record(state, &step.name, &plan.jobs, &out, cache);
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
        if let Some(fewer) = retry_jobs(out.oom, plan.jobs.jobs) {
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
        // The environment the step ran with: after an OOM retry, its reduced MAX_JOBS.
        let env_script = plan.build_env.to_shell(false);
        return Err(step_failure(
            &r.name,
            &cmd,
            &env_script,
            (i, n),
            &out.status,
            &out.tail,
            out.oom,
        ));
    }
    Ok((plan.jobs.jobs, retried))
}

/// The jobs to retry a step with after it was killed: half, while more than one ran and the
/// kill was for memory; `None` when a retry cannot help.
fn retry_jobs(oom: bool, jobs: u32) -> Option<u32> {
    (oom && jobs > 1).then(|| (jobs / 2).max(1))
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

/// The error of a failed step (the `i`-th of `n`, from 0): command, cwd, log, last lines and a
/// replay script written beside the log with `env_script`, the environment the step ran with.
fn step_failure(
    recipe: &str,
    cmd: &StepCommand,
    env_script: &str,
    (i, n): (usize, usize),
    status: &Status,
    tail: &[String],
    oom: bool,
) -> anyhow::Error {
    let replay = runner::write_replay(cmd, env_script)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("(could not write a replay script: {e})"));
    let hint = if oom {
        "it was killed at MAX_JOBS=1: add swap (an 8 GB Orin needs ~16 GB) or free memory, then run `jetforge build` again"
    } else {
        "fix the cause, then run `jetforge build` again: it resumes at this step"
    };
    crate::error::failure_hint(
        format!(
            "{recipe}: build step {}/{n} `{}` failed ({status})\n  command: {}\n  cwd: {}\n  log: {}\n  replay: {replay}\n  last lines:\n{}",
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

pub(super) fn indent_tail(tail: &[String]) -> String {
    tail.iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn an_oom_kill_halves_the_jobs_down_to_one_and_other_failures_are_not_retried() {
        assert_eq!(retry_jobs(true, 8), Some(4));
        assert_eq!(retry_jobs(true, 3), Some(1));
        assert_eq!(retry_jobs(true, 2), Some(1));
        assert_eq!(retry_jobs(true, 1), None);
        assert_eq!(retry_jobs(false, 8), None);
    }

    fn failed(dir: &Path, oom: bool) -> String {
        let cmd = StepCommand {
            name: "step 2".into(),
            program: Program::Script("make -j$MAX_JOBS".into()),
            cwd: dir.to_path_buf(),
            env: Vec::new(),
            log: dir.join("logs/02-step-2.log"),
        };
        let tail = ["cc: error".to_string()];
        let e = step_failure(
            "res",
            &cmd,
            "export MAX_JOBS=1\n",
            (1, 3),
            &Status::Exit(2),
            &tail,
            oom,
        );
        crate::error::render(&e)
    }

    #[test]
    fn a_failed_step_names_its_log_and_a_replay_script_with_the_environment_it_ran_with() {
        let dir = tempfile::tempdir().unwrap();
        let text = failed(dir.path(), false);
        assert!(
            text.contains("res: build step 2/3 `step 2` failed"),
            "{text}"
        );
        assert!(text.contains("02-step-2.log"), "{text}");
        assert!(text.contains("  | cc: error"), "{text}");
        assert!(text.contains("it resumes at this step"), "{text}");
        let replay = dir.path().join("logs/replay-step-2.sh");
        assert!(text.contains(&replay.display().to_string()), "{text}");
        let env = std::fs::read_to_string(dir.path().join("logs/build_env.sh")).unwrap();
        assert!(env.ends_with("export MAX_JOBS=1\n"), "{env}");
    }

    #[test]
    fn a_step_killed_for_memory_at_one_job_says_to_add_swap() {
        let dir = tempfile::tempdir().unwrap();
        assert!(failed(dir.path(), true).contains("add swap"));
    }

    #[test]
    fn tails_are_indented_as_quoted_output() {
        assert_eq!(indent_tail(&["a".into(), "b".into()]), "  | a\n  | b");
    }
}
