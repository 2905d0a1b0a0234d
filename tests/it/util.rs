//! Helpers shared by the CLI tests: run the binary, write recipe trees, redact temp paths.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The real binary with a clean, predictable environment (no proxy, no MAX_JOBS, no colour).
pub fn jetforge() -> Command {
    Command::from_std(jetforge_process())
}

/// [`jetforge`] as a plain process, for tests that start it in the background.
pub fn jetforge_process() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("jetforge"));
    for var in [
        "MAX_JOBS",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "JETFORGE_HOST_ROOT",
        "JETFORGE_RECIPES",
        "JETFORGE_CONFIG",
        "JETFORGE_INDEX_USER",
        "JETFORGE_INDEX_PASSWORD",
        "JETFORGE_INDEX_TOKEN",
    ] {
        c.env_remove(var);
    }
    c.env("NO_COLOR", "1");
    // Plans and environments must not depend on whether ccache is on the test machine's PATH;
    // tests/it/ccache.rs turns the engine on.
    c.env("JETFORGE_COMPILER_CACHE", "none");
    c
}

/// [`jetforge`] for a project directory: started in it, with its `recipes/`, a `work/` dir and a
/// `cache/` inside it, no user configuration, no PIP_FIND_LINKS and plain output. Every test
/// that runs a project resolves these the same way ([`work_layout`] finds the work paths).
pub fn in_project(dir: &Path) -> Command {
    let mut c = jetforge();
    c.current_dir(dir)
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", "")
        .env_remove("PIP_FIND_LINKS")
        .args([
            "--recipes",
            "recipes",
            "--work-dir",
            "work",
            "--no-progress",
        ]);
    c
}

/// `jetforge --recipes DIR/recipes check`, to add flags to or run.
pub fn check_recipes(dir: &Path) -> Command {
    let mut c = jetforge();
    c.arg("--recipes").arg(dir.join("recipes")).arg("check");
    c
}

/// A fake machine from `tests/hosts/<name>`.
pub fn host(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hosts")
        .join(name)
}

/// Writes `files` (relative path, content) under a new temp dir.
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that a jetforge run succeeded; on failure shows its stdout and stderr.
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}\n{}", stdout(out), stderr(out));
}

/// Writes `text` to `dir/rel`, creating its parent directories.
pub fn write_file(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Replaces a temp dir path with `[DIR]` so snapshots are stable.
pub fn redact_dir(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[DIR]")
}

/// Runs `git` in `dir` with a fixed identity and no system config; panics with git's stderr on
/// failure; returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The work layout of a fixture project in `dir` (`--work-dir work`, a recipe tree whose set is
/// `recipes`) for `target`: jetforge's own `Layout`, so no test spells work-dir paths by hand.
pub fn work_layout(dir: &Path, target: &str) -> jetforge::layout::Layout {
    jetforge::layout::Layout::new(&dir.join("work"), "recipes", target)
}

/// Whether `pid` is a live process. A zombie counts as gone: it runs nothing and holds no pipe,
/// and once its parent has died only init reaps it, whenever init gets to it.
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// Waits up to `secs` seconds for `pid` to be gone; true if it is.
pub fn process_gone_within(pid: i32, secs: u64) -> bool {
    let start = std::time::Instant::now();
    while process_alive(pid) {
        if start.elapsed().as_secs() >= secs {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// A repository under `root/name` with `files` in one commit; returns (file:// URL, commit).
pub fn repo(root: &Path, name: &str, files: &[(&str, &str)]) -> (String, String) {
    let dir = root.join(name);
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "fixture"]);
    (
        format!("file://{}", dir.display()),
        git(&dir, &["rev-parse", "HEAD"]),
    )
}

/// The entry of recipe `name` in the JSON of `plan --json`.
pub fn plan_recipe<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plan["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {plan}"))
}
