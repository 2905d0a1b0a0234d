//! The CLI surface: subcommands exist, exit codes, list/check/plan/env on the embedded set and
//! on `--recipes DIR`.

use crate::util::{jetforge, stderr, stdout};

#[test]
fn every_subcommand_exists() {
    for cmd in [
        "list", "check", "plan", "env", "fetch", "prepare", "build", "install", "publish",
        "doctor", "verify", "clean",
    ] {
        jetforge().args([cmd, "--help"]).assert().success();
    }
}

#[test]
fn usage_error_exits_2() {
    let out = jetforge().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = jetforge().args(["plan", "--jobs", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn unknown_package_is_bad_input() {
    let out = jetforge().args(["plan", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no recipe named `nosuch`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn embedded_set_lists_and_checks_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = jetforge()
        .current_dir(dir.path())
        .arg("list")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("jp6-vllm-0.12 (default)"),
        "{}",
        stdout(&out)
    );
    let out = jetforge()
        .current_dir(dir.path())
        .arg("check")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
}
