//! The one subprocess runner: build steps, and every other child jetforge waits on.
//!
//! A step is an argv or a bash script run as `bash -euo pipefail -c SCRIPT`, with exactly the
//! environment `jetforge env` shows (the child's environment is cleared first) and its cwd in
//! the prepared source. stdout and stderr are joined into one pipe by the child itself, so a
//! single reader drains both and neither can fill up and block the build; every line goes to
//! the step's log file and to the caller (the progress reporter), with known secrets masked
//! (see `redact`). Logs are private to the user (see `private`). On failure the caller gets the
//! status (exit code or signal), the last lines, and whether the log shows an OOM kill.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::shell_quote;

/// Lines of output kept for the failure message.
pub const TAIL_LINES: usize = 40;

/// Markers of a compiler killed by the kernel's OOM killer (gcc, g++, nvcc's cicc/ptxas).
const OOM_MARKERS: &[&str] = &[
    "Killed signal terminated program",
    "fatal error: Killed",
    "c++: fatal error: Killed",
    "nvcc error   : 'cicc' died due to signal 9",
    "died due to signal 9 (Kill signal)",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// Run with `bash -euo pipefail -c`.
    Script(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct StepCommand {
    pub name: String,
    pub program: Program,
    pub cwd: PathBuf,
    /// The complete environment of the child.
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

impl StepCommand {
    fn argv(&self) -> Vec<String> {
        match &self.program {
            Program::Script(s) => vec![
                "bash".into(),
                "-euo".into(),
                "pipefail".into(),
                "-c".into(),
                s.clone(),
            ],
            Program::Argv(a) => a.clone(),
        }
    }

    /// The command as a person would type it.
    pub fn display(&self) -> String {
        match &self.program {
            Program::Script(s) => format!("bash -euo pipefail -c {}", shell_quote(s)),
            Program::Argv(a) => a
                .iter()
                .map(|x| shell_quote(x))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success,
    Exit(i32),
    Signal(i32),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Success => write!(f, "exit status 0"),
            Status::Exit(c) => write!(f, "exit status {c}"),
            Status::Signal(9) => write!(f, "killed by signal 9 (SIGKILL)"),
            Status::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub status: Status,
    pub tail: Vec<String>,
    /// The step or a compiler under it was killed for memory (SIGKILL, 137, or a log marker).
    pub oom: bool,
    pub duration: Duration,
}

impl StepOutcome {
    pub fn success(&self) -> bool {
        self.status == Status::Success
    }
}

/// Runs one step to completion, feeding every output line to `on_line`.
pub fn run(cmd: &StepCommand, on_line: &mut dyn FnMut(&str)) -> Result<StepOutcome> {
    if let Some(dir) = cmd.log.parent() {
        crate::private::create_dir(dir)?;
    }
    let mut log: File = crate::private::create_file(&cmd.log, crate::private::FILE)
        .with_context(|| format!("failed to create the step log `{}`", cmd.log.display()))?;
    // A step's own environment holds the proxy credentials it was given: mask those too, even
    // when nobody registered them (e.g. the proxy came from the caller's environment).
    for (_, v) in &cmd.env {
        if v.contains("://") {
            crate::redact::register(v);
        }
    }
    let argv = cmd.argv();
    let start = Instant::now();
    let reader = duct::cmd(&argv[0], &argv[1..])
        .dir(&cmd.cwd)
        .full_env(cmd.env.iter().cloned())
        .stderr_to_stdout()
        .stdin_null()
        .unchecked()
        .before_spawn(|c| {
            // Its own process group, so an interrupt can stop the step and everything it
            // started (see `interrupt`), and a terminal's Ctrl-C reaches it only through us.
            std::os::unix::process::CommandExt::process_group(c, 0);
            Ok(())
        })
        .reader()
        .with_context(|| format!("failed to start `{}` in `{}`", argv[0], cmd.cwd.display()))?;
    let _children = super::interrupt::register(&reader.pids());
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut oom = false;
    let mut lines = BufReader::new(&reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = lines
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("failed to read the output of step `{}`", cmd.name))?;
        if n == 0 {
            break;
        }
        let raw = String::from_utf8_lossy(&buf);
        let masked = crate::redact::redact(&raw);
        let bytes = if masked == raw {
            buf.as_slice()
        } else {
            masked.as_bytes()
        };
        log.write_all(bytes)
            .with_context(|| format!("failed to write `{}`", cmd.log.display()))?;
        let line = masked.trim_end_matches(['\n', '\r']);
        oom |= OOM_MARKERS.iter().any(|m| line.contains(m));
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
        on_line(line);
    }
    let output = reader
        .try_wait()
        .with_context(|| format!("failed to wait for step `{}`", cmd.name))?
        .context("the step's output ended but the process did not")?;
    let status = status_of(&output.status);
    oom |= matches!(status, Status::Signal(9) | Status::Exit(137));
    Ok(StepOutcome {
        status,
        tail: tail.into(),
        oom,
        duration: start.elapsed(),
    })
}

/// The result of a command run with a time limit.
#[derive(Debug, Clone)]
pub struct TimedOutput {
    /// None when the time limit killed it.
    pub status: Option<Status>,
    pub output: String,
    pub duration: Duration,
}

/// Runs `argv` with `env` (complete), killing it after `timeout`; stdout and stderr together.
pub fn run_with_timeout(
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
) -> Result<TimedOutput> {
    let start = Instant::now();
    let out_file = tempfile::NamedTempFile::new().context("failed to create a temp file")?;
    let handle = duct::cmd(&argv[0], &argv[1..])
        .dir(cwd)
        .full_env(env.iter().cloned())
        .stderr_to_stdout()
        .stdout_path(out_file.path())
        .stdin_null()
        .unchecked()
        .before_spawn(|c| {
            std::os::unix::process::CommandExt::process_group(c, 0);
            Ok(())
        })
        .start()
        .with_context(|| format!("failed to start `{}`", argv[0]))?;
    let _children = super::interrupt::register(&handle.pids());
    let status = loop {
        if let Some(o) = handle.try_wait()? {
            break Some(status_of(&o.status));
        }
        if start.elapsed() >= timeout {
            kill_group(&handle.pids());
            handle.kill()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output =
        String::from_utf8_lossy(&std::fs::read(out_file.path()).unwrap_or_default()).into_owned();
    Ok(TimedOutput {
        status,
        output,
        duration: start.elapsed(),
    })
}

/// Kills the process groups led by `pids` (a timed-out command and whatever it started).
fn kill_group(pids: &[u32]) {
    for &pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: plain kill(2) on a process group this runner created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

fn status_of(s: &std::process::ExitStatus) -> Status {
    match (s.code(), s.signal()) {
        (Some(0), _) => Status::Success,
        (Some(c), _) => Status::Exit(c),
        (None, Some(sig)) => Status::Signal(sig),
        (None, None) => Status::Exit(-1),
    }
}

/// Writes `build_env.sh` (the environment, credentials masked) and `replay-<step>.sh` next to
/// the step's log, so a person can rerun the failed step by hand. Returns the replay script.
pub fn write_replay(cmd: &StepCommand, env_script: &str) -> Result<PathBuf> {
    let dir = cmd.log.parent().unwrap_or(Path::new("."));
    crate::private::create_dir(dir)?;
    let env_path = dir.join("build_env.sh");
    let header = "# The build environment of this recipe, as `jetforge env` prints it.\n\
                  # Passwords in proxy URLs are masked: export them again before replaying.\n";
    crate::private::write_file(
        &env_path,
        format!("{header}{env_script}").as_bytes(),
        crate::private::FILE,
    )?;
    let replay = dir.join(format!("replay-{}.sh", slug(&cmd.name)));
    let body = format!(
        "#!/usr/bin/env bash\n# Reruns build step `{}` by hand.\nset -euo pipefail\nsource {}\ncd {}\n{}\n",
        cmd.name,
        shell_quote(&env_path.to_string_lossy()),
        shell_quote(&cmd.cwd.to_string_lossy()),
        cmd.display()
    );
    crate::private::write_file(&replay, body.as_bytes(), crate::private::EXEC)?;
    Ok(replay)
}

/// A file-name-safe form of a step name.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(dir: &Path, program: Program) -> StepCommand {
        StepCommand {
            name: "step 1".into(),
            program,
            cwd: dir.to_path_buf(),
            env: vec![
                ("PATH".into(), std::env::var("PATH").unwrap()),
                ("ONLY".into(), "this".into()),
            ],
            log: dir.join("logs/step-1.log"),
        }
    }

    #[test]
    fn drains_both_pipes_and_logs_every_line() {
        let dir = tempfile::tempdir().unwrap();
        // Far more than a pipe buffer on each stream: a runner reading one pipe at a time would hang.
        let script = "for i in $(seq 1 20000); do echo out$i; echo err$i >&2; done";
        let mut n = 0;
        let out = run(
            &step(dir.path(), Program::Script(script.into())),
            &mut |_| n += 1,
        )
        .unwrap();
        assert!(out.success());
        assert_eq!(n, 40000);
        let log = std::fs::read_to_string(dir.path().join("logs/step-1.log")).unwrap();
        assert!(log.contains("err20000"));
        assert_eq!(out.tail.len(), TAIL_LINES);
    }

    #[test]
    fn environment_is_exactly_the_given_one() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("JETFORGE_TEST_LEAK", "1");
        let mut lines = Vec::new();
        let s = step(dir.path(), Program::Argv(vec!["env".into()]));
        run(&s, &mut |l| lines.push(l.to_string())).unwrap();
        assert!(lines.contains(&"ONLY=this".to_string()));
        assert!(!lines.iter().any(|l| l.starts_with("JETFORGE_TEST_LEAK")));
    }

    #[test]
    fn scripts_fail_fast_on_errors_and_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let s = step(
            dir.path(),
            Program::Script("false | true; echo unreachable".into()),
        );
        let out = run(&s, &mut |_| {}).unwrap();
        assert_eq!(out.status, Status::Exit(1));
        assert!(!out.tail.iter().any(|l| l == "unreachable"));
    }

    #[test]
    fn oom_is_recognised_by_signal_and_by_log() {
        let dir = tempfile::tempdir().unwrap();
        let killed = run(
            &step(dir.path(), Program::Script("kill -9 $$".into())),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(killed.status, Status::Signal(9));
        assert!(killed.oom);
        let s = "echo 'c++: fatal error: Killed signal terminated program cc1plus'; exit 1";
        let logged = run(&step(dir.path(), Program::Script(s.into())), &mut |_| {}).unwrap();
        assert!(logged.oom);
        let plain = run(
            &step(dir.path(), Program::Script("exit 3".into())),
            &mut |_| {},
        )
        .unwrap();
        assert!(!plain.oom);
        assert_eq!(plain.status.to_string(), "exit status 3");
    }

    #[test]
    fn replay_script_reruns_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let s = step(
            dir.path(),
            Program::Script("echo \"$ONLY\" > replayed".into()),
        );
        let replay = write_replay(&s, "export ONLY=this\n").unwrap();
        let ok = std::process::Command::new(&replay).status().unwrap();
        assert!(ok.success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("replayed")).unwrap(),
            "this\n"
        );
    }

    #[test]
    fn timeout_kills_a_hanging_command() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap())];
        let argv: Vec<String> = ["bash", "-c", "echo started; sleep 30"]
            .map(String::from)
            .to_vec();
        let out = run_with_timeout(&argv, &env, dir.path(), Duration::from_millis(300)).unwrap();
        assert_eq!(out.status, None);
        assert!(out.duration < Duration::from_secs(5));
        assert_eq!(out.output, "started\n");
        let ok: Vec<String> = ["bash", "-c", "echo hi >&2; exit 4"]
            .map(String::from)
            .to_vec();
        let out = run_with_timeout(&ok, &env, dir.path(), Duration::from_secs(10)).unwrap();
        assert_eq!(out.status, Some(Status::Exit(4)));
        assert_eq!(out.output, "hi\n");
    }

    #[test]
    fn logs_are_private_and_mask_the_step_proxy_password() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut s = step(
            dir.path(),
            Program::Script("echo \"proxy: $P\"; echo cr3dS3cret".into()),
        );
        s.env
            .push(("P".into(), "http://u:cr3dS3cret@proxy:3128".into()));
        let mut lines = Vec::new();
        run(&s, &mut |l| lines.push(l.to_string())).unwrap();
        let log = std::fs::read_to_string(&s.log).unwrap();
        assert_eq!(log, "proxy: http://u:****@proxy:3128\n****\n");
        assert_eq!(lines, ["proxy: http://u:****@proxy:3128", "****"]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&s.log), 0o600);
        assert_eq!(mode(s.log.parent().unwrap()), 0o700);
        let replay = write_replay(&s, "export A=1\n").unwrap();
        assert_eq!(mode(&replay), 0o700);
        assert_eq!(mode(&replay.with_file_name("build_env.sh")), 0o600);
    }

    #[test]
    fn missing_cwd_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = step(dir.path(), Program::Argv(vec!["true".into()]));
        s.cwd = dir.path().join("nope");
        let err = format!("{:#}", run(&s, &mut |_| {}).unwrap_err());
        assert!(err.contains("nope"), "{err}");
    }
}
