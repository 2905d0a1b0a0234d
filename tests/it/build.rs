//! `jetforge build` end to end on fixture packages (see `fixtures`): wheels, manifest, index,
//! install into a fresh venv, no-op rebuilds, targeted rebuilds, pin checks, resume, OOM retry.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::fixtures::{fixture_project, import_check, python};
use crate::util::{assert_ok as ok, in_project, jetforge, stderr, stdout, work_layout};

/// `jetforge --target host <args>` in the fixture project, with its own cache and work dir.
pub fn jf(dir: &Path, args: &[&str]) -> Output {
    jf_env(dir, args, &[])
}

/// The global flags every fixture-project run uses: its recipes, a work dir inside it, the
/// `host` target and plain output.
pub const PROJECT_ARGS: [&str; 7] = [
    "--recipes",
    "recipes",
    "--work-dir",
    "work",
    "--target",
    "host",
    "--no-progress",
];

/// [`jf`] with extra environment variables.
pub fn jf_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    in_project(dir)
        .envs(env.iter().copied())
        .args(["--target", "host"])
        .args(args)
        .output()
        .unwrap()
}

pub fn build(dir: &Path, extra: &[&str]) -> Output {
    let py = python();
    let mut args = vec!["build", "--python", py.as_str(), "--system-site-packages"];
    args.extend_from_slice(extra);
    jf(dir, &args)
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("wheelhouse/manifest.json")).unwrap()).unwrap()
}

/// The packages of a wheelhouse manifest's entries, in its order.
fn manifest_packages(m: &Value) -> Vec<&str> {
    m["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["package"].as_str().unwrap())
        .collect()
}

#[test]
fn build_all_then_install_and_import() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    let out = build(dir, &[]);
    if !out.status.success() {
        let log = std::fs::read_to_string(
            work_layout(dir, "host")
                .log_dir("first")
                .join("01-step-1.log"),
        )
        .unwrap_or_default();
        panic!("{}\n{}\nLOG:\n{log}", stdout(&out), stderr(&out));
    }
    let text = stdout(&out);
    for line in ["first", "second", "kernels", "third"] {
        assert!(text.contains(line), "{text}");
    }
    let m = manifest(dir);
    let pkgs = manifest_packages(&m);
    assert_eq!(pkgs, ["first", "second", "solo", "third"]);
    for w in m["wheels"].as_array().unwrap() {
        for key in [
            "version",
            "file",
            "sha256",
            "fingerprint",
            "target",
            "built_at",
        ] {
            assert!(w.get(key).is_some(), "{key} missing in {w}");
        }
        assert!(dir
            .join("wheelhouse")
            .join(w["file"].as_str().unwrap())
            .is_file());
    }
    let index = std::fs::read_to_string(dir.join("wheelhouse/simple/first/index.html")).unwrap();
    assert!(index.contains("#sha256="), "{index}");
    let venv = dir.join("venv");
    let out = jf(
        dir,
        &[
            "install",
            "--venv",
            venv.to_str().unwrap(),
            "--python",
            &python(),
            "all",
        ],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("second 2.0.0"), "{}", stdout(&out));
    import_check(&venv.join("bin/python"));
}

/// The summary line of `recipe` in a build's output.
fn result_of(out: &Output, recipe: &str) -> String {
    stdout(out)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(recipe))
        .unwrap_or_else(|| {
            panic!(
                "no summary line for {recipe}:\n{}\n{}",
                stdout(out),
                stderr(out)
            )
        })
        .to_string()
}

#[test]
fn second_build_does_nothing_and_a_changed_patch_rebuilds_only_dependents() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    ok(&build(dir, &[]));
    let again = build(dir, &["-v"]);
    ok(&again);
    for r in ["first", "second", "solo", "third"] {
        assert!(
            result_of(&again, r).contains("cached"),
            "{}",
            result_of(&again, r)
        );
    }
    assert!(
        !stderr(&again).contains(": step 1/1"),
        "no step may run:\n{}",
        stderr(&again)
    );

    std::fs::write(
        dir.join("patches/first/0001-note.patch"),
        crate::fixtures::first_patch("note 2"),
    )
    .unwrap();
    let after = build(dir, &["-v"]);
    ok(&after);
    for r in ["first", "second", "third"] {
        assert!(
            result_of(&after, r).contains("built in"),
            "{}",
            result_of(&after, r)
        );
    }
    assert!(result_of(&after, "solo").contains("cached"));
    let err = stderr(&after);
    assert!(
        err.contains("first: rebuilding: patch first/0001-note.patch changed"),
        "{err}"
    );
    assert!(
        err.contains("second: rebuilding: dependency first rebuilt"),
        "{err}"
    );
    let header = std::fs::read_to_string(
        work_layout(dir, "host")
            .source_dir("first")
            .join("first/include/first.h"),
    )
    .unwrap();
    assert_eq!(
        header, "#define FIRST_MAGIC 40\n/* note 2 */\n",
        "patched once, from pristine"
    );

    let forced = build(dir, &["--force", "solo"]);
    ok(&forced);
    assert!(result_of(&forced, "solo").contains("built in"));
    // A forced rebuild of a finished build runs its steps again (it must not "resume" past them).
    assert!(
        stderr(&forced).contains("solo: step 1/1"),
        "{}",
        stderr(&forced)
    );
    assert!(result_of(&forced, "first").contains("cached"));
}

#[test]
fn a_pin_the_set_does_not_satisfy_is_an_error_naming_both_packages() {
    let p = fixture_project("first==9.9");
    let out = build(p.path(), &["second"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("second 2.0.0 requires first==9.9, but the set builds first 1.0.0"),
        "{err}"
    );
}

/// A recipe whose first step "compiles" objects (counting each compile) and whose second step
/// fails until a flag file exists.
fn resumable_project() -> tempfile::TempDir {
    crate::util::tree(&[
        (
            "recipes/res.toml",
            r#"[package]
name = "res"
version = "1.0.0"
[source]
path = "../src/res"
[build]
steps = [
  "mkdir -p obj; for i in 1 2 3; do [ -f obj/$i.o ] || { echo \"compiled $i\" >> ../compile-count.txt; touch obj/$i.o; }; done",
  "echo halfway; test -f ../../../../flag || { echo 'error: flag missing' >&2; exit 3; }",
  "python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .",
]
"#,
        ),
        ("src/res/setup.py", "from setuptools import setup\nsetup(name='res', version='1.0.0', py_modules=['res'])\n"),
        ("src/res/res.py", "X = 1\n"),
    ])
}

#[test]
fn a_failed_step_is_reported_and_the_next_build_resumes_there() {
    let p = resumable_project();
    let dir = p.path();
    let first = build(dir, &[]);
    assert_eq!(first.status.code(), Some(1));
    let err = stderr(&first);
    for needle in [
        "res: build step 2/3 `step 2` failed (exit status 3)",
        "command: bash -euo pipefail -c",
        "log: ",
        "02-step-2.log",
        "replay: ",
        "| error: flag missing",
        "hint: fix the cause, then run `jetforge build` again: it resumes at this step",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let logs = work_layout(dir, "host").log_dir("res");
    let replay = logs.join("replay-step-2.sh");
    assert!(replay.is_file());
    assert!(logs.join("build_env.sh").is_file());

    std::fs::write(dir.join("flag"), "").unwrap();
    let second = build(dir, &[]);
    ok(&second);
    assert!(
        stderr(&second).contains("res: resuming at step 2/3"),
        "{}",
        stderr(&second)
    );
    let count =
        std::fs::read_to_string(work_layout(dir, "host").root.join("src/compile-count.txt"))
            .unwrap();
    assert_eq!(
        count.lines().count(),
        3,
        "objects from the first run are reused: {count}"
    );
}

#[test]
fn keep_going_builds_what_it_can_and_summarises() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    std::fs::write(dir.join("src/first/first/_ext.c"), "this is not C").unwrap();
    let out = build(dir, &["--keep-going"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("first") && err.contains("FAILED"), "{err}");
    assert!(err.contains("skipped: dependency first failed"), "{err}");
    assert!(err.contains("solo") && err.contains("built in"), "{err}");
    let m = manifest(dir);
    let pkgs = manifest_packages(&m);
    assert_eq!(pkgs, ["solo"]);
}

#[test]
fn a_wrong_wheel_version_goes_to_broken_with_a_hint() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    std::fs::write(
        dir.join("src/solo/setup.py"),
        crate::fixtures::solo_setup().replace("0.5.0", "0.5.0a0+git1234abc"),
    )
    .unwrap();
    let out = build(dir, &["solo"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("PYTORCH_BUILD_VERSION"), "{err}");
    assert!(dir
        .join("wheelhouse/broken/solo-0.5.0a0+git1234abc-py3-none-any.whl")
        .is_file());
    let index = dir.join("wheelhouse/simple/solo/index.html");
    assert!(
        !index.exists()
            || !std::fs::read_to_string(index)
                .unwrap()
                .contains("solo-0.5.0a0")
    );
}

#[test]
fn a_failing_verify_moves_the_wheel_to_broken() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    let recipe = std::fs::read_to_string(dir.join("recipes/solo.toml")).unwrap()
        + "[verify]\npython = \"import solo; assert solo.ANSWER == 41, 'wrong answer'\"\n";
    std::fs::write(dir.join("recipes/solo.toml"), recipe).unwrap();
    let out = build(dir, &["solo"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("solo: verify failed") && err.contains("wrong answer"),
        "{err}"
    );
    assert!(dir
        .join("wheelhouse/broken/solo-0.5.0-py3-none-any.whl")
        .is_file());
}

#[test]
fn clean_removes_work_dirs_but_never_the_wheelhouse() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    ok(&build(dir, &["solo"]));
    ok(&jf(dir, &["clean", "solo"]));
    assert!(!work_layout(dir, "host").source_dir("solo").exists());
    assert!(dir.join("wheelhouse/manifest.json").is_file());
    ok(&jf(dir, &["clean"]));
    assert!(!work_layout(dir, "host").root.exists());
    assert!(dir.join("wheelhouse/manifest.json").is_file());
    std::fs::create_dir_all(dir.join("work")).unwrap();
    std::fs::write(
        dir.join("work/jetforge.toml"),
        "[wheelhouse]\ndir = \"recipes-host/wheels\"\n",
    )
    .unwrap();
    let inside = jf(dir, &["clean"]);
    assert_eq!(
        inside.status.code(),
        Some(2),
        "a work dir holding the wheelhouse is refused"
    );
    assert!(
        stderr(&inside).contains("contains the wheelhouse"),
        "{}",
        stderr(&inside)
    );
}

#[test]
fn cross_target_builds_are_refused_before_anything_runs() {
    let p = fixture_project("first==1.0.0");
    let out = jetforge()
        .current_dir(p.path())
        .args([
            "--recipes",
            "recipes",
            "--work-dir",
            "work",
            "--target",
            "jetson-orin",
            "build",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cross build"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no cross settings") && stderr(&out).contains("jetson-orin-cross"),
        "the refusal names the profile that can cross-build: {}",
        stderr(&out)
    );
    assert!(!work_layout(p.path(), "jetson-orin")
        .root
        .join("src")
        .exists());
}

/// A memory cgroup (v1, as on these machines) that a test puts jetforge into; removed on drop.
struct MemCgroup(std::path::PathBuf);

impl MemCgroup {
    fn new(limit: &str) -> Option<Self> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, p) = (parts.next()?, parts.next()?, parts.next()?);
            (ctrl == "memory").then(|| p.to_string())
        })?;
        let dir = std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/memory{path}/jf-test-{}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).ok()?;
        std::fs::write(dir.join("memory.limit_in_bytes"), limit).ok()?;
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limit);
        Some(Self(dir))
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

pub fn hog_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = crate::fixtures::project_dir().join("../hog");
    for rel in ["recipes/hog.toml", "src/hog/hog.py", "src/hog/setup.py"] {
        std::fs::create_dir_all(dir.path().join(rel).parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), dir.path().join(rel)).unwrap();
    }
    dir
}

/// Runs `jetforge build` inside `cg` (children inherit the cgroup).
pub fn build_in_cgroup(dir: &Path, cg: &Path, jobs: &str) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("jetforge");
    let py = python();
    let script = format!("echo $$ > {}/cgroup.procs; exec \"$@\"", cg.display());
    std::process::Command::new("bash")
        .current_dir(dir)
        .args(["-c", &script, "bash"])
        .arg(bin)
        .args(PROJECT_ARGS)
        .args([
            "build",
            "--python",
            &py,
            "--system-site-packages",
            "--jobs",
            jobs,
        ])
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", dir.join("none.toml"))
        .env_remove("PIP_FIND_LINKS")
        .env_remove("MAX_JOBS")
        .output()
        .unwrap()
}

#[test]
fn oom_killed_steps_are_retried_with_fewer_jobs_and_remembered() {
    let Some(cg) = MemCgroup::new("500M") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to make a memory cgroup"
        );
        eprintln!("SKIPPED: cannot create a memory cgroup here (needs root and cgroup v1)");
        return;
    };
    let p = hog_project();
    let dir = p.path();
    // Eight objects, so that the retry still compiles two at a time however many of the first
    // four the kernel killed (one kill leaves one object: a peak too small to learn from).
    let recipe = dir.join("recipes/hog.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    assert!(text.contains("\"python hog.py\""), "{text}");
    let text = text.replace("\"python hog.py\"", "\"HOG_OBJECTS=8 python hog.py\"");
    std::fs::write(&recipe, text).unwrap();
    let out = build_in_cgroup(dir, &cg.0, "4");
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("most likely out of memory, with MAX_JOBS=4; retrying with 2 jobs"),
        "{err}"
    );
    let src = work_layout(dir, "host").source_dir("hog");
    assert!(src.join("ran-with-2-jobs").exists() || src.join("ran-with-1-jobs").exists());
    assert!(!src.join("ran-with-4-jobs").exists());
    // The kernel counts the kill in the victim's cgroup: the step's own, which jetforge read.
    let state = work_layout(dir, "host").state_file("hog");
    let state: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let killed = &state["timings"][0];
    assert!(
        killed["oom"] == true && killed["oom_kills"].as_u64() > Some(0),
        "the kernel really killed something: {killed}"
    );
    let plan = jf(dir, &["plan", "--json"]);
    let v: Value = serde_json::from_slice(&plan.stdout).unwrap();
    // The retry's successful run measured memory per job: that lesson supersedes the jobs
    // remembered after the OOM (see `jobs::learn`).
    assert_eq!(v["recipes"][0]["jobs"]["source"], "learned", "{v}");
    assert!(v["recipes"][0]["jobs"]["jobs"].as_u64().unwrap() <= 2);

    // A step failing after an OOM retry: its replay script has the MAX_JOBS that ran. Twice the
    // memory per job takes the retries down to 1 job, below the 2 planned above, which a
    // re-made plan would have used.
    let text = std::fs::read_to_string(&recipe).unwrap();
    let text = text
        .replace(
            "\"HOG_OBJECTS=8 python hog.py\"",
            "\"HOG_MIB=300 python hog.py\"",
        )
        .replace("\n]", "\n  \"exit 3\",\n]");
    std::fs::write(&recipe, text).unwrap();
    let _ = std::fs::remove_dir_all(src.join("obj"));
    let out = build_in_cgroup(dir, &cg.0, "4");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("with MAX_JOBS=2; retrying with 1 jobs"),
        "{err}"
    );
    assert!(err.contains("build step 3/3"), "{err}");
    let logs = work_layout(dir, "host").log_dir("hog");
    let env = std::fs::read_to_string(logs.join("build_env.sh")).unwrap();
    let max_jobs: Vec<&str> = env.lines().filter(|l| l.contains("MAX_JOBS=")).collect();
    assert_eq!(max_jobs, ["export MAX_JOBS=1"], "{env}");
}

#[test]
fn interrupting_a_build_stops_the_step_and_the_next_build_resumes() {
    let p = crate::util::tree(&[
        (
            "recipes/slow.toml",
            "[package]\nname = \"slow\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/slow\"\n[build]\nsteps = [\n  \"touch step1-done\",\n  \"test -f ../../../../fast || { sh -c 'echo $$ > ../sleeper.pid; exec sleep 60'; }\",\n  \"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\",\n]\n",
        ),
        ("src/slow/setup.py", "from setuptools import setup\nsetup(name='slow', version='1.0.0', py_modules=['slow'])\n"),
        ("src/slow/slow.py", ""),
    ]);
    let dir = p.path();
    let bin = assert_cmd::cargo::cargo_bin("jetforge");
    let py = python();
    let mut child = std::process::Command::new(bin)
        .current_dir(dir)
        .args(PROJECT_ARGS)
        .args(["build", "--python", &py, "--system-site-packages"])
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", dir.join("none.toml"))
        .env_remove("PIP_FIND_LINKS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = work_layout(dir, "host").root.join("src/sleeper.pid");
    let start = std::time::Instant::now();
    while !pid_file.exists() {
        assert!(
            start.elapsed().as_secs() < 60,
            "the slow step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sleeper: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(start.elapsed().as_secs() < 30, "interrupt took too long");
    assert!(
        crate::util::process_gone_within(sleeper, 5),
        "the step's process was left running"
    );
    std::fs::write(dir.join("fast"), "").unwrap();
    let again = build(dir, &[]);
    ok(&again);
    assert!(
        stderr(&again).contains("slow: resuming at step 2/3"),
        "{}",
        stderr(&again)
    );
}
