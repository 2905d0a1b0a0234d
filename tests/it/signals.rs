//! Signals and process lifetime (issue #12 items 5 and 6): Ctrl-C, SIGTERM and a hang-up stop a
//! build promptly even when a step ignores them and leaves a background job holding its output
//! open; steps die with jetforge, also on `kill -9`; a step still running from an earlier
//! jetforge is detected and the build refused.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::build::{build, PROJECT_ARGS};
use crate::fixtures::python;
use crate::util::{stderr, tree, work_layout};

use jetforge::process::interrupt::GRACE;

/// A recipe whose step ignores SIGINT and SIGTERM and starts a background job that does the
/// same and keeps the step's stdout open; it writes its leader's and the job's pids.
fn stubborn_project() -> tempfile::TempDir {
    tree(&[
        (
            "recipes/stubborn.toml",
            "[package]\nname = \"stubborn\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/stubborn\"\n\
             [build]\nsteps = [\"trap '' INT TERM HUP; sleep 600 & echo $! > ../job.pid; \
             echo $$ > ../leader.pid; echo started; sleep 600\"]\n",
        ),
        ("src/stubborn/setup.py", "from setuptools import setup\nsetup(name='stubborn')\n"),
    ])
}

fn start_build(dir: &Path) -> Child {
    crate::util::jetforge_process()
        .current_dir(dir)
        .args(PROJECT_ARGS)
        .args(["build", "--python", &python(), "--system-site-packages"])
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", dir.join("none.toml"))
        .env_remove("PIP_FIND_LINKS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn src_dir(dir: &Path) -> PathBuf {
    work_layout(dir, "host").root.join("src")
}

/// Waits for the step to write both pids; returns (leader, background job).
fn step_pids(dir: &Path, jetforge: &mut Child) -> (i32, i32) {
    let start = Instant::now();
    let read = |name: &str| -> Option<i32> {
        std::fs::read_to_string(src_dir(dir).join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    loop {
        if let (Some(leader), Some(job)) = (read("leader.pid"), read("job.pid")) {
            return (leader, job);
        }
        if let Ok(Some(status)) = jetforge.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(jetforge.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("jetforge ended ({status}) before the step started:\n{err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether any live process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the name: state, ppid, pgrp.
        fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && fields[0] != "Z"
    })
}

fn stopped_promptly_by(signal: i32, code: i32) {
    let p = stubborn_project();
    let dir = p.path();
    let mut jf = start_build(dir);
    let (leader, job) = step_pids(dir, &mut jf);
    let sent = Instant::now();
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(jf.id() as i32, signal) };
    let status = jf.wait().unwrap();
    let took = sent.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(jf.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(code), "{status}\n{err}");
    assert!(
        took <= GRACE + Duration::from_secs(1),
        "signal {signal}: jetforge took {took:?} to exit (grace {GRACE:?} + 1 s)\n{err}"
    );
    assert!(
        !crate::util::process_alive(leader),
        "the step's leader {leader} was left running"
    );
    assert!(
        !crate::util::process_alive(job),
        "the step's background job {job} was left running"
    );
    assert!(
        !group_alive(leader),
        "a process of the step's group was left running"
    );
}

#[test]
fn ctrl_c_stops_a_step_that_ignores_it_and_exits_130_within_the_grace_period() {
    stopped_promptly_by(libc::SIGINT, 130);
}

#[test]
fn sigterm_stops_a_step_that_ignores_it_and_exits_143_within_the_grace_period() {
    stopped_promptly_by(libc::SIGTERM, 143);
}

#[test]
fn a_hang_up_stops_the_step_like_sigterm_and_exits_129() {
    stopped_promptly_by(libc::SIGHUP, 129);
}

#[test]
fn kill_9_of_jetforge_takes_the_step_with_it() {
    let p = stubborn_project();
    let dir = p.path();
    let mut jf = start_build(dir);
    let (leader, job) = step_pids(dir, &mut jf);
    jf.kill().unwrap();
    jf.wait().unwrap();
    let start = Instant::now();
    while crate::util::process_alive(leader)
        || crate::util::process_alive(job)
        || group_alive(leader)
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the step (leader {leader}, job {job}) still runs 5 s after jetforge was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_step_still_running_from_an_earlier_build_is_refused() {
    let p = stubborn_project();
    let dir = p.path();
    // A real process standing in for the step an earlier jetforge left running.
    let mut step = std::process::Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = step.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start_time: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let state = work_layout(dir, "host").state_file("stubborn");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(
        &state,
        format!(
            r#"{{"fingerprint": null, "steps_done": 0, "jobs_ok": null,
                "running": {{"step": "step 1", "pid": {pid}, "start_time": {start_time}}}}}"#
        ),
    )
    .unwrap();
    let out = build(dir, &[]);
    let err = stderr(&out);
    step.kill().unwrap();
    step.wait().unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "recipe `stubborn`: step `step 1` of an earlier build is still running",
        &format!("pid {pid}"),
        &format!("kill -TERM -- -{pid}"),
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    assert!(
        !src_dir(dir).join("leader.pid").exists(),
        "the build ran the step anyway"
    );
}
