//! A closed stdout (issue #12 item 7): `list`, `check` and `plan` into a reader that went away
//! exit as they would have (0), not 141 from SIGPIPE, which fails `set -o pipefail`; a build
//! keeps building and puts its summary on stderr instead of ending silently.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Output, Stdio};

use crate::build::PROJECT_ARGS;
use crate::fixtures::{fixture_project, python};
use crate::util::{host, jetforge_process, stderr};

/// The write end of a pipe whose read end is already closed: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two new descriptors, owned from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just created; the read end is closed at once.
    unsafe {
        drop(OwnedFd::from_raw_fd(fds[0]));
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

fn run_into_closed_pipe(dir: &Path, args: &[&str]) -> Output {
    jetforge_process()
        .current_dir(dir)
        .env("JETFORGE_HOST_ROOT", host("orin-nano-8g"))
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", "")
        .env_remove("PIP_FIND_LINKS")
        .args(PROJECT_ARGS)
        .args(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn list_check_and_plan_into_a_closed_pipe_exit_0_not_141() {
    let p = fixture_project("first==1.0.0");
    for args in [&["list"][..], &["check"], &["plan"], &["plan", "--json"]] {
        let out = run_into_closed_pipe(p.path(), args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {out:?}\n{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

#[test]
fn list_piped_to_head_succeeds_under_pipefail() {
    let p = fixture_project("first==1.0.0");
    let bin = assert_cmd::cargo::cargo_bin("jetforge");
    // Enough commands that some run after `head` has gone.
    let script = format!(
        "set -o pipefail; for i in 1 2 3 4 5; do {} {} list | head -1 > /dev/null || exit $?; done",
        bin.display(),
        PROJECT_ARGS.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(p.path())
        .env("JETFORGE_CONFIG", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn build_into_a_closed_pipe_finishes_and_says_so_on_stderr() {
    let p = fixture_project("first==1.0.0");
    let py = python();
    let out = run_into_closed_pipe(
        p.path(),
        &["build", "--python", &py, "--system-site-packages", "solo"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stdout was closed"), "{err}");
    assert!(err.contains("wheelhouse:"), "the summary is lost:\n{err}");
    assert!(p.path().join("wheelhouse/manifest.json").is_file());
}
