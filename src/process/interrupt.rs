//! Ctrl-C, SIGTERM and SIGHUP during a build. On the first signal the running step's process
//! group is told to stop (SIGINT for Ctrl-C, SIGTERM for SIGTERM and a hang-up), as a terminal
//! would; the runner gives it [`GRACE`] to do so and then kills the group, and never waits for
//! output that processes it left behind still hold open (see `runner`). The driver then exits
//! 128 + the signal (130, 143, 129), so the next `build` resumes at that step. Each step runs
//! in a process group of its own, so this works the same for a terminal's Ctrl-C, `kill -INT
//! <jetforge>`, and CI runners that signal only the parent.
//!
//! Two backstops make the exit prompt whatever jetforge was doing (a libgit2 fetch does not
//! look at the flag): a second signal kills the step groups and exits at once, and a monitor
//! thread does the same [`GRACE`] + [`BACKSTOP_SLACK`] after the first one. Before that
//! monitor exits it runs the hooks registered with [`before_forced_exit`] (stopping a compiler
//! cache server jetforge started, say); a second signal exits at once, without them.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long a step's processes get to stop after the signal is forwarded before the whole group
/// is killed: enough for compilers and ninja to remove half-written outputs and for pip to
/// clean its temp dirs, short enough that Ctrl-C still feels immediate.
pub const GRACE: Duration = Duration::from_secs(3);

/// After the grace period, the runner needs a moment to see the group die and return; the
/// monitor only steps in when that did not happen.
const BACKSTOP_SLACK: Duration = Duration::from_millis(800);

const SLOTS: usize = 8;
static CHILDREN: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
/// The first signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static MONITOR: AtomicBool = AtomicBool::new(false);
type Hook = Box<dyn Fn() + Send>;
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs `hook` when the monitor ends the process after the grace period, so what jetforge
/// started outside the steps' process groups does not outlive it. The normal exit paths (the
/// build returning, also after a signal) clean up on their own.
pub fn before_forced_exit(hook: impl Fn() + Send + 'static) {
    if let Ok(mut hooks) = HOOKS.lock() {
        hooks.push(Box::new(hook));
    }
}

fn kill_groups(sig: libc::c_int) {
    for slot in &CHILDREN {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe. A negative pid names the process group
            // the step leads, so its compilers stop too.
            unsafe {
                libc::kill(-pid, sig);
            }
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    if SIGNAL
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // The second signal: the user does not want to wait for the grace period.
        kill_groups(libc::SIGKILL);
        // SAFETY: _exit(2) is async-signal-safe.
        unsafe { libc::_exit(exit_code_of(SIGNAL.load(Ordering::SeqCst))) };
    }
    kill_groups(forwarded(sig));
}

/// What the step gets for the signal jetforge got. A hang-up means nobody watches the step any
/// more: it is stopped like SIGTERM would.
fn forwarded(sig: libc::c_int) -> libc::c_int {
    if sig == libc::SIGINT {
        libc::SIGINT
    } else {
        libc::SIGTERM
    }
}

/// 128 + the signal, as a shell reports a command killed by it.
fn exit_code_of(sig: i32) -> i32 {
    128 + sig
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP and starts the monitor (once).
pub fn install() {
    // SAFETY: the handler only touches atomics and calls kill(2) and _exit(2).
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    if !MONITOR.swap(true, Ordering::SeqCst) {
        std::thread::spawn(monitor);
    }
}

fn monitor() {
    while !interrupted() {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(GRACE + BACKSTOP_SLACK);
    kill_groups(libc::SIGKILL);
    eprintln!(
        "error: interrupted; the step did not stop within {} s and was killed; the next \
         `jetforge build` resumes at it",
        GRACE.as_secs()
    );
    if let Ok(hooks) = HOOKS.try_lock() {
        for hook in hooks.iter() {
            hook();
        }
    }
    // SAFETY: ends the process without running destructors another thread is using; the
    // state on disk is written atomically after each step, so nothing is half-saved.
    unsafe { libc::_exit(exit_code().unwrap_or(1)) };
}

pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The exit code after a signal: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
pub fn exit_code() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(exit_code_of(sig)),
    }
}

/// Registers running child pids until the guard is dropped.
pub struct ChildGuard {
    slots: Vec<usize>,
}

pub fn register(pids: &[u32]) -> ChildGuard {
    let mut slots = Vec::new();
    for &pid in pids {
        let pid = i32::try_from(pid).unwrap_or(0);
        if let Some(i) = CHILDREN.iter().position(|s| {
            s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        }) {
            slots.push(i);
        }
    }
    // A signal that came while the step was starting finds no group to forward to: forward it
    // now, so the step does not run to the end.
    let sig = SIGNAL.load(Ordering::SeqCst);
    if sig != 0 {
        for &pid in pids {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) on the process group this runner just created.
                unsafe { libc::kill(-pid, forwarded(sig)) };
            }
        }
    }
    ChildGuard { slots }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        for &i in &self.slots {
            CHILDREN[i].store(0, Ordering::SeqCst);
        }
    }
}
