//! Ctrl-C and SIGTERM during a build: the running step's processes are told to stop (SIGINT to
//! the step's whole process group, as a terminal would), the step's reader sees their output
//! end, and the driver saves its state and exits 130 — so the next `build` resumes at that step
//! instead of leaving orphans compiling in the background. Each step runs in a process group of
//! its own (see `runner`), so this works the same for a terminal's Ctrl-C, `kill -INT
//! <jetforge>`, and CI runners that signal only the parent.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

const SLOTS: usize = 8;
static CHILDREN: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    for slot in &CHILDREN {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe. A negative pid names the process group
            // the step leads, so its compilers stop too.
            unsafe {
                libc::kill(-pid, libc::SIGINT);
            }
        }
    }
}

/// Installs the handler for SIGINT and SIGTERM (once per build).
pub fn install() {
    // SAFETY: the handler only touches atomics and calls kill(2).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
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
    ChildGuard { slots }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        for &i in &self.slots {
            CHILDREN[i].store(0, Ordering::SeqCst);
        }
    }
}
