//! Standard output that a closed pipe cannot kill. `jetforge list | head -1` closes the pipe
//! after one line; the rest of the output is dropped and the command ends as it would have
//! (exit 0 for a good listing) instead of dying of SIGPIPE (141, which fails the pipeline under
//! `set -o pipefail`) or panicking in `println!`. A build is never stopped by it: its summary
//! then goes to stderr with a note, so a build whose reader went away does not end silently.
//!
//! `println!` and `print!` are redefined crate-wide to come here (see `lib.rs`), so new
//! output cannot forget this.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static TO_STDERR_WHEN_CLOSED: AtomicBool = AtomicBool::new(false);

/// From now on, output that finds stdout closed goes to stderr (after a note) instead of being
/// dropped: for commands whose output says what they did (`build`).
pub fn fall_back_to_stderr() {
    TO_STDERR_WHEN_CLOSED.store(true, Ordering::SeqCst);
}

/// Writes to stdout; after EPIPE, drops the text (or sends it to stderr, see above).
pub fn write(args: std::fmt::Arguments<'_>) {
    if !CLOSED.load(Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        match out.write_fmt(args).and_then(|()| out.flush()) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                CLOSED.store(true, Ordering::SeqCst);
                if TO_STDERR_WHEN_CLOSED.load(Ordering::SeqCst) {
                    eprintln!("note: stdout was closed; the rest of the output follows here");
                }
            }
            // Another error (a full disk behind a redirect): the output is lost either way;
            // say so once instead of panicking.
            Err(e) => {
                CLOSED.store(true, Ordering::SeqCst);
                eprintln!(
                    "warning: cannot write to stdout ({e}); the rest of the output is dropped"
                );
                return;
            }
        }
    }
    if TO_STDERR_WHEN_CLOSED.load(Ordering::SeqCst) {
        eprint!("{args}");
    }
}
