//! The one subprocess runner: build steps, and every other child jetforge waits on.
//!
//! A step is an argv or a bash script run as `bash -euo pipefail -c SCRIPT`, with exactly the
//! environment `jetforge env` shows (the child's environment is cleared first) and its cwd in
//! the prepared source. stdout and stderr are joined into one pipe by the child itself, so a
//! single reader drains both and neither can fill up and block the build; every line goes to
//! the step's log file and to the caller (the progress reporter), with known secrets masked
//! (see `redact`). Logs are private to the user (see `private`). On failure the caller gets the
//! status (exit code or signal), the last lines, and whether the log shows an OOM kill.
//!
//! A step never outlives its leader or jetforge, and jetforge never waits on it for long: see
//! [`run_observed`] for how the step's process group is ended.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    /// Memory and CPU the step used (see `sampler`).
    pub usage: super::sampler::Usage,
}

impl StepOutcome {
    pub fn success(&self) -> bool {
        self.status == Status::Success
    }
}

/// Runs one step to completion, feeding every output line to `on_line`.
pub fn run(cmd: &StepCommand, on_line: &mut dyn FnMut(&str)) -> Result<StepOutcome> {
    run_observed(cmd, on_line, &mut |_| Ok(()))
}

/// How long output is still read after the step's leader exited and what it left running was
/// killed: a process that moved to a group of its own may still hold the pipe open, and the
/// step must not wait for it.
const DRAIN: Duration = Duration::from_millis(500);

/// [`run`], calling `on_start` with the pid (= process group) of the step's leader once it
/// runs, so the caller can record it (see `state`).
///
/// A step ends when its leader exits: whatever it left running in its process group is killed
/// then, and output is read until the pipe closes or for [`DRAIN`] at most. After Ctrl-C or
/// SIGTERM (see `interrupt`) the group gets [`super::interrupt::GRACE`] to stop before it is
/// killed. A watchdog (see [`Watchdog`]) kills the group if jetforge itself dies.
pub fn run_observed(
    cmd: &StepCommand,
    on_line: &mut dyn FnMut(&str),
    on_start: &mut dyn FnMut(u32) -> Result<()>,
) -> Result<StepOutcome> {
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
    let (read_end, write_end) = pipe().context("failed to create a pipe for the step's output")?;
    let cgroup = super::sampler::StepCgroup::create();
    let child = {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .current_dir(&cmd.cwd)
            .env_clear()
            .envs(cmd.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                write_end
                    .try_clone()
                    .context("failed to duplicate a pipe")?,
            ))
            .stderr(Stdio::from(write_end))
            // Its own process group, so an interrupt can stop the step and everything it
            // started (see `interrupt`), and a terminal's Ctrl-C reaches it only through us.
            .process_group(0);
        if let Some(cg) = &cgroup {
            join_cgroup_on_exec(&mut c, &cg.procs());
        }
        // `c` goes out of scope here and closes our copies of the write end: the pipe ends
        // when the step's processes are gone.
        c.spawn()
            .with_context(|| format!("failed to start `{}` in `{}`", argv[0], cmd.cwd.display()))?
    };
    let mut group = Group::new(child)?;
    let sampler = super::sampler::Sampler::start(group.pid);
    on_start(group.pid)?;
    let mut out = File::from(read_end);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut oom = false;
    let mut handle = |bytes: &[u8]| -> Result<()> {
        let raw = String::from_utf8_lossy(bytes);
        let masked = crate::redact::redact(&raw);
        let out = if masked == raw {
            bytes
        } else {
            masked.as_bytes()
        };
        log.write_all(out)
            .with_context(|| format!("failed to write `{}`", cmd.log.display()))?;
        let line = masked.trim_end_matches(['\n', '\r']);
        oom |= OOM_MARKERS.iter().any(|m| line.contains(m));
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
        on_line(line);
        Ok(())
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut leader_gone: Option<Instant> = None;
    let mut interrupted_at: Option<Instant> = None;
    loop {
        if readable(&out, Duration::from_millis(100))
            .with_context(|| format!("failed to read the output of step `{}`", cmd.name))?
        {
            let n = match out.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("failed to read the output of step `{}`", cmd.name)
                    })
                }
            };
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                handle(&line)?;
            }
        }
        if leader_gone.is_none() && group.leader_exited() {
            // The leader is a zombie until we reap it, so its pid still names this group.
            group.kill();
            leader_gone = Some(Instant::now());
        }
        if super::interrupt::interrupted() {
            let at = *interrupted_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= super::interrupt::GRACE {
                group.kill();
            }
        }
        if leader_gone.is_some_and(|t| t.elapsed() >= DRAIN) {
            break;
        }
    }
    if !pending.is_empty() {
        handle(&pending)?;
    }
    let status = group
        .wait()
        .with_context(|| format!("failed to wait for step `{}`", cmd.name))?;
    let status = status_of(&status);
    oom |= matches!(status, Status::Signal(9) | Status::Exit(137));
    let usage = sampler.finish(cgroup.as_ref());
    oom |= usage.oom_kills.is_some_and(|n| n > 0);
    Ok(StepOutcome {
        status,
        tail: tail.into(),
        oom,
        duration: start.elapsed(),
        usage,
    })
}

/// Makes the child join the step's cgroup before it runs anything, so everything it starts is
/// counted. A failure leaves it where it was: measuring is never worth failing a build for.
fn join_cgroup_on_exec(c: &mut Command, procs: &Path) {
    let Ok(path) = std::ffi::CString::new(procs.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: between fork and exec the closure only calls open/write/close (async-signal-safe)
    // on memory allocated before the fork.
    unsafe {
        c.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// A pipe whose ends are closed on exec, so no other child inherits them.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two new descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Whether `f` has data (or end of file) within `timeout`.
fn readable(f: &File, timeout: Duration) -> std::io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut pfd, 1, ms) } {
        -1 => {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// A running step: its leader, the process group it leads, registered for interrupts, and
/// the watchdog that kills the group if jetforge dies. Dropping it early (an error while
/// reading) kills the group.
struct Group {
    child: Child,
    pid: u32,
    _registered: super::interrupt::ChildGuard,
    watchdog: Watchdog,
    reaped: bool,
}

impl Group {
    fn new(child: Child) -> Result<Group> {
        let pid = child.id();
        let registered = super::interrupt::register(&[pid]);
        let watchdog = match Watchdog::start(pid) {
            Ok(w) => w,
            Err(e) => {
                kill_group(&[pid]);
                return Err(e);
            }
        };
        Ok(Group {
            child,
            pid,
            _registered: registered,
            watchdog,
            reaped: false,
        })
    }

    /// Whether the leader exited, without reaping it.
    fn leader_exited(&self) -> bool {
        // SAFETY: waitid(2) with WNOWAIT only reads the state of our own child into `info`.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                self.pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r == 0 && info.si_pid() != 0
        }
    }

    fn kill(&self) {
        if !self.reaped {
            kill_group(&[self.pid]);
        }
    }

    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait()?;
        self.reaped = true;
        self.watchdog.stand_down();
        Ok(status)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.wait();
        }
    }
}

/// A small shell in a process group of its own that kills the step's group when jetforge's
/// end of a pipe closes without a word — that is, when jetforge died (`kill -9`, a crash, the
/// OOM killer). `PR_SET_PDEATHSIG` would only reach the step's leader, not the compilers under
/// it, and fires when the *thread* that forked exits; the watchdog has neither limit. It
/// ignores the signals a terminal or a hang-up sends, so it outlives jetforge to do its job.
struct Watchdog {
    child: Option<Child>,
    tell: Option<File>,
}

impl Watchdog {
    fn start(pgid: u32) -> Result<Watchdog> {
        let (read_end, write_end) = pipe().context("failed to create a pipe for the watchdog")?;
        let child = Command::new("sh")
            .args([
                "-c",
                "trap '' INT TERM HUP; read -r _ || kill -KILL -\"$1\" 2>/dev/null",
                "jetforge-step-watchdog",
                &pgid.to_string(),
            ])
            .stdin(Stdio::from(read_end))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("failed to start `sh` (the watchdog that stops a step if jetforge dies)")?;
        Ok(Watchdog {
            child: Some(child),
            tell: Some(File::from(write_end)),
        })
    }

    /// The step is over and reaped: the watchdog exits without killing anything.
    fn stand_down(&mut self) {
        if let Some(mut tell) = self.tell.take() {
            let _ = tell.write_all(b"done\n");
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
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
    fn a_step_is_measured_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let s = "python3 -c 'b = bytearray(64 << 20); import time; time.sleep(0.6)'";
        let out = run(&step(dir.path(), Program::Script(s.into())), &mut |_| {}).unwrap();
        assert!(out.success());
        let u = &out.usage;
        assert!(u.samples >= 2, "{u:?}");
        assert!(u.peak() >= 64 << 20, "{u:?}");
        assert!(u.cpu_secs > 0.0, "{u:?}");
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
