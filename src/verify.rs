//! Proving installed wheels work: runs a recipe's `[verify]` snippet with a venv's python under
//! a time limit, and the NCCL smoke test (2 processes with 2+ GPUs, one process with one GPU).
//! Shared by the build driver (after each build, in the set's verify venv) and `jetforge
//! verify` (against any venv, or one installed from a published cache). It owns how a snippet
//! is run and what its outcome means; choosing recipes, venvs and environments belongs to the
//! callers.
//!
//! Size: about 607 lines, of which 237 are the unit tests beside the code (370 of code).

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

/// One process, one GPU (every Jetson): a world of one rank on `cuda:0`. It proves that NCCL
/// loads, creates a communicator on the device (topology detection, the NVML lookups the
/// Tegra patch makes non-fatal) and runs collectives there: an in-place SUM all-reduce and a
/// broadcast (with one rank NCCL leaves the data as it is), and an AVG all-reduce of floats,
/// which NCCL runs as a 1/1 pre-multiply with its one-rank reduce kernel. No data crosses
/// between GPUs: inter-GPU transport (P2P, shared memory, network) is not exercised.
/// Runs as `python3 script.py` with torch present; prints one `nccl (1 process) ok:` line.
pub const NCCL_SINGLE_SCRIPT: &str = r#"
"""jetforge: single-process NCCL check on one GPU (not inter-GPU transport)."""
import sys

import torch
import torch.cuda.nccl
import torch.distributed as dist


def fail(what):
    sys.exit("nccl (1 process) FAILED: " + what)


def nccl_version():
    v = torch.cuda.nccl.version()
    return str(v) if isinstance(v, int) else ".".join(str(p) for p in v)


def main():
    if not torch.cuda.is_available():
        fail("torch sees no CUDA device")
    if not (dist.is_available() and dist.is_nccl_available()):
        fail("this torch has no NCCL (built without USE_DISTRIBUTED or USE_NCCL)")
    version = nccl_version()
    dev = torch.device("cuda", 0)
    torch.cuda.set_device(dev)
    # A store in this process: a world of one rank needs no rendezvous, no port.
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1)
    try:
        want = torch.arange(1, 1025, dtype=torch.float32, device=dev)
        summed = want.clone()
        dist.all_reduce(summed)
        averaged = want.clone()
        dist.all_reduce(averaged, op=dist.ReduceOp.AVG)
        sent = torch.full((256,), 7.0, dtype=torch.float32, device=dev)
        dist.broadcast(sent, src=0)
        torch.cuda.synchronize()
        if not torch.equal(summed, want):
            fail("all_reduce(SUM) over one rank changed the tensor")
        if not torch.equal(averaged, want):
            fail("all_reduce(AVG) over one rank changed the tensor")
        if not bool(torch.all(sent == 7.0)):
            fail("broadcast from rank 0 changed the tensor")
    finally:
        dist.destroy_process_group()
    print(
        "nccl (1 process) ok: NCCL %s, all_reduce (sum, avg) and broadcast on cuda:0 (%s)"
        % (version, torch.cuda.get_device_name(0))
    )


if __name__ == "__main__":
    main()
"#;

/// Which NCCL check a host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NcclMode {
    /// One GPU: a single-process communicator ([`NCCL_SINGLE_SCRIPT`]).
    #[serde(rename = "1-process")]
    SingleProcess,
    /// Two or more GPUs: the 2-process all-reduce ([`NCCL_SCRIPT`]).
    #[serde(rename = "2-process")]
    TwoProcesses,
}

impl NcclMode {
    /// The Python program this mode runs.
    pub fn script(self) -> &'static str {
        match self {
            NcclMode::SingleProcess => NCCL_SINGLE_SCRIPT,
            NcclMode::TwoProcesses => NCCL_SCRIPT,
        }
    }

    /// The name recorded in verify results' `checks` when it ran and passed: `nccl` for the
    /// 2-process all-reduce (as before), `nccl-1` for the single-process check, so a result
    /// says which one ran.
    pub fn check_name(self) -> &'static str {
        match self {
            NcclMode::SingleProcess => "nccl-1",
            NcclMode::TwoProcesses => "nccl",
        }
    }

    /// How reports name it.
    pub fn title(self) -> &'static str {
        match self {
            NcclMode::SingleProcess => "nccl (1 process)",
            NcclMode::TwoProcesses => "nccl all-reduce (2 processes)",
        }
    }

    /// What a pass proves, when that needs saying.
    pub fn scope(self) -> Option<&'static str> {
        match self {
            NcclMode::SingleProcess => Some(
                "one GPU: proves NCCL loads, creates a communicator on the device and runs its kernels; not inter-GPU transport",
            ),
            NcclMode::TwoProcesses => None,
        }
    }
}

/// The NCCL smoke test and, after a hang or failure of the 2-process one, the same with P2P
/// disabled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NcclReport {
    pub mode: NcclMode,
    /// The name recorded in verify results when it passed (`nccl`, `nccl-1`).
    pub check: &'static str,
    pub outcome: Outcome,
    /// The rerun with `NCCL_P2P_DISABLE=1`, when the 2-process run did not pass.
    pub p2p_disabled: Option<Outcome>,
    /// What to try, as lines.
    pub advice: Vec<String>,
}

/// Which check the host can run: 2+ GPUs the 2-process all-reduce, one GPU the
/// single-process check; none (or not known), none.
pub fn nccl_gate(gpus: Option<u32>) -> Result<NcclMode, String> {
    match gpus {
        Some(n) if n >= 2 => Ok(NcclMode::TwoProcesses),
        Some(1) => Ok(NcclMode::SingleProcess),
        Some(_) => Err("needs a GPU, this host has none".to_string()),
        None => {
            Err("needs a GPU, and neither nvidia-smi nor torch could count them here".to_string())
        }
    }
}

/// Runs the check of `mode` with `python` (normally the venv's; tests pass a stand-in). The
/// 2-process all-reduce, on a hang or failure, is rerun with `NCCL_P2P_DISABLE=1` to say
/// whether P2P is the culprit; the single-process check is not (no peer to talk to).
pub fn nccl_smoke(
    python: &[String],
    env: &[(String, String)],
    timeout: Duration,
    mode: NcclMode,
) -> Result<NcclReport> {
    // A file, not `-c`: torch's spawn start method re-imports `__main__` in each worker and
    // cannot find `worker` in a `-c` program (seen on a 2-GPU machine).
    let script = tempfile::Builder::new()
        .prefix("jetforge-nccl-")
        .suffix(".py")
        .tempfile()
        .context("failed to create a temp file for the NCCL test")?;
    std::fs::write(script.path(), mode.script())
        .with_context(|| format!("failed to write `{}`", script.path().display()))?;
    let mut argv = python.to_vec();
    argv.push(script.path().to_string_lossy().into_owned());
    let outcome = run_timed(&argv, env, timeout)?;
    let report = |outcome, p2p_disabled, advice| NcclReport {
        mode,
        check: mode.check_name(),
        outcome,
        p2p_disabled,
        advice,
    };
    if !outcome.failed() {
        return Ok(report(outcome, None, Vec::new()));
    }
    if mode == NcclMode::SingleProcess {
        let advice = single_advice(&outcome);
        return Ok(report(outcome, None, advice));
    }
    let mut p2p_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "NCCL_P2P_DISABLE")
        .cloned()
        .collect();
    p2p_env.push(("NCCL_P2P_DISABLE".into(), "1".into()));
    let rerun = run_timed(&argv, &p2p_env, timeout)?;
    let advice = advice(&outcome, &rerun);
    Ok(report(outcome, Some(rerun), advice))
}

fn single_advice(first: &Outcome) -> Vec<String> {
    let what = if matches!(first, Outcome::Timeout { .. }) {
        "the single-process NCCL check hung (no answer within the time limit)"
    } else {
        "the single-process NCCL check failed: NCCL did not load, create a communicator or run on this GPU"
    };
    vec![
        what.to_string(),
        "try: NCCL_DEBUG=INFO to see where it stops; on a Jetson an NVML error means torch's NCCL lacks the set's nvml-optional patch (patches/nccl/): rebuild torch with the set's nccl recipe".into(),
    ]
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

    /// Runs `code` as a `[verify]` snippet with the python on PATH.
    fn snippet(code: &str, timeout_secs: u64, needs_gpu: bool, gpu_visible: bool) -> Outcome {
        run_snippet(
            &python3(),
            &verify(code, timeout_secs, needs_gpu),
            &env(),
            gpu_visible,
            &mut String::new(),
        )
        .unwrap()
    }

    #[test]
    fn snippet_outcomes() {
        let pass = snippet("print('hi')", 30, false, false);
        assert!(matches!(pass, Outcome::Pass { .. }), "{pass:?}");
        match snippet("raise SystemExit('nope')", 30, false, false) {
            Outcome::Fail { status, tail, .. } => {
                assert_eq!(status, "exit status 1");
                assert_eq!(tail, vec!["nope".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let skipped = snippet("x", 30, true, false);
        assert!(matches!(skipped, Outcome::Skipped { .. }), "{skipped:?}");
    }

    #[test]
    fn hanging_snippet_is_a_timeout() {
        let out = snippet(
            "print('start', flush=True)\nimport time; time.sleep(60)",
            1,
            false,
            true,
        );
        assert!(matches!(out, Outcome::Timeout { secs: 1, .. }), "{out:?}");
    }

    #[test]
    fn nccl_gate_picks_the_check_by_gpu_count() {
        assert_eq!(nccl_gate(Some(2)), Ok(NcclMode::TwoProcesses));
        assert_eq!(nccl_gate(Some(8)), Ok(NcclMode::TwoProcesses));
        assert_eq!(nccl_gate(Some(1)), Ok(NcclMode::SingleProcess));
        assert!(nccl_gate(Some(0))
            .unwrap_err()
            .contains("this host has none"));
        assert!(nccl_gate(None).unwrap_err().contains("could count them"));
    }

    #[test]
    fn nccl_modes_pick_their_script_and_check_name() {
        let single = NcclMode::SingleProcess;
        assert!(single.script().contains("world_size=1"));
        assert!(single.script().contains("torch.cuda.nccl.version()"));
        assert!(single.script().contains("dist.broadcast("));
        assert!(!single.script().contains("mp.spawn"));
        assert_eq!(single.check_name(), "nccl-1");
        assert_eq!(single.title(), "nccl (1 process)");
        assert!(single.scope().unwrap().contains("not inter-GPU transport"));
        let pair = NcclMode::TwoProcesses;
        assert!(pair.script().contains("world_size=2"));
        assert!(pair.script().contains("mp.spawn"));
        assert_eq!(pair.check_name(), "nccl");
        assert_eq!(pair.scope(), None);
        assert_eq!(
            serde_json::to_value(single).unwrap(),
            serde_json::json!("1-process")
        );
        assert_eq!(
            serde_json::to_value(pair).unwrap(),
            serde_json::json!("2-process")
        );
    }

    /// Both programs are valid Python for the interpreter here (torch cannot be imported
    /// here: this compiles them without running them) and run as `python3 script.py`.
    #[test]
    fn nccl_scripts_are_valid_python() {
        for mode in [NcclMode::SingleProcess, NcclMode::TwoProcesses] {
            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("nccl.py");
            std::fs::write(&script, mode.script()).unwrap();
            let out = std::process::Command::new(python3())
                .args(["-c", "import ast, sys; tree = ast.parse(open(sys.argv[1]).read(), sys.argv[1]); compile(tree, sys.argv[1], 'exec'); print(any(isinstance(n, ast.If) and 'main' in ast.dump(n.test) for n in tree.body))"])
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{mode:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // A `__main__` guard: importable (spawn re-imports it) and runnable as a script.
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "True",
                "{mode:?}"
            );
        }
    }

    fn stand_in(dir: &Path, body: &str) -> Vec<String> {
        let fake = dir.join("python");
        std::fs::write(&fake, body).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        vec![fake.to_string_lossy().into_owned()]
    }

    /// One GPU: the single-process script runs once; a failure is reported with its output
    /// and advice, and is not rerun with P2P disabled (there is no peer).
    #[test]
    fn nccl_single_process_runs_once_and_is_not_rerun_without_p2p() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let argv = stand_in(
            dir.path(),
            &format!(
                "#!/bin/sh
echo run >> '{}'
grep -q 'world_size=1' \"$1\" || exit 3
echo 'nccl (1 process) ok: NCCL 2.27.5'
",
                runs.display()
            ),
        );
        let mode = NcclMode::SingleProcess;
        let r = nccl_smoke(&argv, &env(), Duration::from_secs(30), mode).unwrap();
        assert_eq!(r.mode, mode);
        assert_eq!(r.check, "nccl-1");
        match &r.outcome {
            Outcome::Pass { said, .. } => {
                assert_eq!(said.as_deref(), Some("nccl (1 process) ok: NCCL 2.27.5"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.p2p_disabled, None);

        std::fs::remove_file(&runs).unwrap();
        let argv = stand_in(
            dir.path(),
            &format!(
                "#!/bin/sh
echo \"run ${{NCCL_P2P_DISABLE:-}}\" >> '{}'
echo 'RuntimeError: NCCL error: unhandled system error (nvmlInit failed)'
exit 1
",
                runs.display()
            ),
        );
        let r = nccl_smoke(&argv, &env(), Duration::from_secs(30), mode).unwrap();
        match &r.outcome {
            Outcome::Fail { status, tail, .. } => {
                assert_eq!(status, "exit status 1");
                assert!(tail[0].contains("nvmlInit failed"), "{tail:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.p2p_disabled, None);
        assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run \n");
        assert!(r.advice[0].contains("single-process NCCL check failed"));
        assert!(r.advice[1].contains("NCCL_DEBUG=INFO"));
    }

    /// The hang path without GPUs: a stand-in python that hangs unless P2P is disabled.
    #[test]
    fn nccl_hang_is_reported_and_p2p_rerun_decides() {
        let dir = tempfile::tempdir().unwrap();
        let smoke = |body: &str, timeout_ms: u64| {
            let argv = stand_in(dir.path(), body);
            let timeout = Duration::from_millis(timeout_ms);
            nccl_smoke(&argv, &env(), timeout, NcclMode::TwoProcesses).unwrap()
        };
        let r = smoke(
            "#!/bin/sh\ngrep -q 'world_size=2' \"$1\" || exit 3\nif [ \"${NCCL_P2P_DISABLE:-}\" = 1 ]; then echo ok; exit 0; fi\nexec sleep 60\n",
            700,
        );
        assert_eq!(r.check, "nccl");
        assert!(matches!(r.outcome, Outcome::Timeout { .. }), "{r:?}");
        assert!(matches!(r.p2p_disabled, Some(Outcome::Pass { .. })));
        assert!(r.advice[0].contains("hung"));
        assert!(r.advice[1].contains("--disable-custom-all-reduce"));

        let r = smoke("#!/bin/sh\nexec sleep 60\n", 500);
        assert!(matches!(r.p2p_disabled, Some(Outcome::Timeout { .. })));
        assert!(r.advice[1].contains("does not pass either"));
    }
}
