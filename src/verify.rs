//! Proving installed wheels work: runs a recipe's `[verify]` snippet with a venv's python under
//! a time limit, and the 2-process NCCL all-reduce smoke test. Shared by the build driver
//! (after each build, in the build venv) and `jetforge verify` (against any venv). It owns how
//! a snippet is run and what its outcome means; choosing recipes, venvs and environments
//! belongs to the callers.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::process::runner::{self, Status};
use crate::recipe::Verify;

/// Lines of a failed snippet's output kept for the report.
const TAIL_LINES: usize = 20;

/// How one snippet (or the NCCL test) ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    Pass {
        secs: f64,
        /// The snippet's last line of output, if it printed any (what it checked).
        said: Option<String>,
    },
    Fail {
        secs: f64,
        /// "exit status 1", "killed by signal 11".
        status: String,
        tail: Vec<String>,
    },
    /// Killed at the time limit (with everything it started).
    Timeout {
        secs: u64,
        tail: Vec<String>,
    },
    Skipped {
        reason: String,
    },
}

impl Outcome {
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Fail { .. } | Outcome::Timeout { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass { .. } => "pass",
            Outcome::Fail { .. } => "FAIL",
            Outcome::Timeout { .. } => "TIMEOUT",
            Outcome::Skipped { .. } => "skipped",
        }
    }
}

/// Runs `verify.python` with `python -c`, with exactly `env`, killed after its timeout; the
/// command and its whole output are appended to `log`. A snippet that needs a GPU is skipped
/// when `gpu_visible` is false.
pub fn run_snippet(
    python: &Path,
    verify: &Verify,
    env: &[(String, String)],
    gpu_visible: bool,
    log: &mut String,
) -> Result<Outcome> {
    if verify.gpu && !gpu_visible {
        log.push_str("# skipped: the snippet needs a GPU and none is visible\n");
        return Ok(Outcome::Skipped {
            reason: "needs a GPU and none is visible".into(),
        });
    }
    let argv = vec![
        python.to_string_lossy().into_owned(),
        "-c".into(),
        verify.python.clone(),
    ];
    let timeout = Duration::from_secs(verify.timeout_secs);
    let out = runner::run_with_timeout(&argv, env, &std::env::temp_dir(), timeout)?;
    log.push_str(&format!(
        "$ {} -c <<'EOF'\n{}\nEOF\n{}",
        python.display(),
        verify.python.trim_end(),
        out.output
    ));
    let outcome = outcome_of(&out, timeout);
    log.push_str(&format!("# {}\n", outcome.label()));
    Ok(outcome)
}

fn run_timed(argv: &[String], env: &[(String, String)], timeout: Duration) -> Result<Outcome> {
    let out = runner::run_with_timeout(argv, env, &std::env::temp_dir(), timeout)?;
    Ok(outcome_of(&out, timeout))
}

/// How a snippet run (native or under an emulator) ended.
pub fn outcome_of(out: &runner::TimedOutput, timeout: Duration) -> Outcome {
    let tail = last_lines(&out.output);
    let secs = (out.duration.as_secs_f64() * 10.0).round() / 10.0;
    match &out.status {
        Some(Status::Success) => Outcome::Pass {
            secs,
            said: tail.last().filter(|l| !l.trim().is_empty()).cloned(),
        },
        Some(status) => Outcome::Fail {
            secs,
            status: status.to_string(),
            tail,
        },
        None => Outcome::Timeout {
            secs: timeout.as_secs(),
            tail,
        },
    }
}

fn last_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Two processes on this host, one GPU each, all-reducing a small tensor over NCCL. Rank 0
/// prints the sum; the test passes only if both ranks agree on it.
pub const NCCL_SCRIPT: &str = r#"
import os, socket, sys
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

def worker(rank, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=2)
    t = torch.full((1024,), float(rank + 1), device="cuda")
    dist.all_reduce(t)
    torch.cuda.synchronize()
    assert torch.all(t == 3.0), t[:4]
    dist.destroy_process_group()
    if rank == 0:
        print("nccl all-reduce ok:", float(t[0]))

if __name__ == "__main__":
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    mp.spawn(worker, args=(port,), nprocs=2, join=True)
"#;

/// The NCCL smoke test and, after a hang or failure, the same with P2P disabled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NcclReport {
    pub outcome: Outcome,
    /// The rerun with `NCCL_P2P_DISABLE=1`, when the first run did not pass.
    pub p2p_disabled: Option<Outcome>,
    /// What to try, as lines.
    pub advice: Vec<String>,
}

/// Whether the host can run the test: it needs two GPUs.
pub fn nccl_gate(gpus: Option<u32>) -> Result<(), String> {
    match gpus {
        Some(n) if n >= 2 => Ok(()),
        Some(n) => Err(format!(
            "needs 2 GPUs, this host has {n}: a 2-process NCCL all-reduce cannot run"
        )),
        None => {
            Err("needs 2 GPUs, and neither nvidia-smi nor torch could count them here".to_string())
        }
    }
}

/// Runs the all-reduce with `python` (normally the venv's; tests pass a stand-in), and on a
/// hang or failure reruns it with `NCCL_P2P_DISABLE=1` to say whether P2P is the culprit.
pub fn nccl_smoke(
    python: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<NcclReport> {
    // A file, not `-c`: torch's spawn start method re-imports `__main__` in each worker and
    // cannot find `worker` in a `-c` program (seen on a 2-GPU machine).
    let script = tempfile::Builder::new()
        .prefix("jetforge-nccl-")
        .suffix(".py")
        .tempfile()
        .context("failed to create a temp file for the NCCL test")?;
    std::fs::write(script.path(), NCCL_SCRIPT)
        .with_context(|| format!("failed to write `{}`", script.path().display()))?;
    let mut argv = python.to_vec();
    argv.push(script.path().to_string_lossy().into_owned());
    let outcome = run_timed(&argv, env, timeout)?;
    if !outcome.failed() {
        return Ok(NcclReport {
            outcome,
            p2p_disabled: None,
            advice: Vec::new(),
        });
    }
    let mut p2p_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "NCCL_P2P_DISABLE")
        .cloned()
        .collect();
    p2p_env.push(("NCCL_P2P_DISABLE".into(), "1".into()));
    let rerun = run_timed(&argv, &p2p_env, timeout)?;
    let advice = advice(&outcome, &rerun);
    Ok(NcclReport {
        outcome,
        p2p_disabled: Some(rerun),
        advice,
    })
}

fn advice(first: &Outcome, rerun: &Outcome) -> Vec<String> {
    let what = if matches!(first, Outcome::Timeout { .. }) {
        "the all-reduce hung (no answer within the time limit)"
    } else {
        "the all-reduce failed"
    };
    let mut lines = vec![what.to_string()];
    if matches!(rerun, Outcome::Pass { .. }) {
        lines.push(
            "with NCCL_P2P_DISABLE=1 it passes: GPU peer-to-peer is broken on this host; export NCCL_P2P_DISABLE=1 for multi-GPU runs, and start vLLM with --disable-custom-all-reduce".into(),
        );
    } else {
        lines.push(
            "with NCCL_P2P_DISABLE=1 it does not pass either: P2P is not (only) the cause".into(),
        );
        lines.push("try: vLLM's --disable-custom-all-reduce; NCCL_DEBUG=INFO to see where it stops; NCCL_SHM_DISABLE=1 and NCCL_IB_DISABLE=1; check that IOMMU/ACS is off (`sudo lspci -vvv | grep ACSCtl`)".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn verify(python: &str, timeout_secs: u64, gpu: bool) -> Verify {
        Verify {
            python: python.into(),
            timeout_secs,
            gpu,
        }
    }

    fn env() -> Vec<(String, String)> {
        vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())]
    }

    fn python3() -> std::path::PathBuf {
        which::which("python3").expect("python3 on PATH")
    }

    #[test]
    fn snippet_outcomes() {
        let py = python3();
        let pass = run_snippet(
            &py,
            &verify("print('hi')", 30, false),
            &env(),
            false,
            &mut String::new(),
        )
        .unwrap();
        assert!(matches!(pass, Outcome::Pass { .. }), "{pass:?}");
        let fail = run_snippet(
            &py,
            &verify("raise SystemExit('nope')", 30, false),
            &env(),
            false,
            &mut String::new(),
        )
        .unwrap();
        match fail {
            Outcome::Fail { status, tail, .. } => {
                assert_eq!(status, "exit status 1");
                assert_eq!(tail, vec!["nope".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let skipped = run_snippet(
            &py,
            &verify("x", 30, true),
            &env(),
            false,
            &mut String::new(),
        )
        .unwrap();
        assert!(matches!(skipped, Outcome::Skipped { .. }));
    }

    #[test]
    fn hanging_snippet_is_a_timeout() {
        let out = run_snippet(
            &python3(),
            &verify(
                "print('start', flush=True)\nimport time; time.sleep(60)",
                1,
                false,
            ),
            &env(),
            true,
            &mut String::new(),
        )
        .unwrap();
        assert!(matches!(out, Outcome::Timeout { secs: 1, .. }), "{out:?}");
    }

    #[test]
    fn nccl_needs_two_gpus() {
        assert!(nccl_gate(Some(2)).is_ok());
        assert!(nccl_gate(Some(1)).unwrap_err().contains("this host has 1"));
        assert!(nccl_gate(None).is_err());
    }

    /// The hang path without GPUs: a stand-in python that hangs unless P2P is disabled.
    #[test]
    fn nccl_hang_is_reported_and_p2p_rerun_decides() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("python");
        std::fs::write(
            &fake,
            "#!/bin/sh\ngrep -q init_process_group \"$1\" || exit 3\nif [ \"${NCCL_P2P_DISABLE:-}\" = 1 ]; then echo ok; exit 0; fi\nexec sleep 60\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let argv = vec![fake.to_string_lossy().into_owned()];
        let r = nccl_smoke(&argv, &env(), Duration::from_millis(700)).unwrap();
        assert!(matches!(r.outcome, Outcome::Timeout { .. }), "{r:?}");
        assert!(matches!(r.p2p_disabled, Some(Outcome::Pass { .. })));
        assert!(r.advice[0].contains("hung"));
        assert!(r.advice[1].contains("--disable-custom-all-reduce"));

        std::fs::write(&fake, "#!/bin/sh\nexec sleep 60\n").unwrap();
        let r = nccl_smoke(&argv, &env(), Duration::from_millis(500)).unwrap();
        assert!(matches!(r.p2p_disabled, Some(Outcome::Timeout { .. })));
        assert!(r.advice[1].contains("does not pass either"));
    }
}
