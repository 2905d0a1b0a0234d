//! `plan` and `env` on a fixture set and on faked machines: order, dependencies, filled
//! templates, jobs with reasons, JSON shape, and the shell export's round trip through bash.

use std::path::Path;

use serde_json::Value;

use crate::util::{host, jetforge, stdout, tree, work_layout};

/// Three recipes: a C extension, a package built against it, and a source-only tree that a
/// third recipe consumes through `${{ source_dir:… }}`.
pub fn fixture_set() -> tempfile::TempDir {
    tree(&[
        (
            "recipes/first.toml",
            r#"[package]
name = "first"
version = "1.0.0"
[source]
path = "../src/first"
[env]
FIRST_FLAGS = "-O2 '${{ cuda_arch_list }}' $HOME"
[jobs]
mem_per_job_gib = 2.0
[build]
steps = ["python -m pip wheel --no-build-isolation --no-deps -w ${{ out }} ."]
"#,
        ),
        (
            "recipes/second.toml",
            r#"[package]
name = "second"
version = "2.0.0"
[source]
path = "../src/second"
[depends]
recipes = ["first"]
python = ["setuptools>=61"]
[build]
steps = [{ name = "wheel", argv = ["${{ python }}", "-m", "pip", "wheel", "-w", "${{ out }}", "."] }]
"#,
        ),
        (
            "recipes/kernels.toml",
            r#"[package]
name = "kernels"
version = "0.1.0"
[source]
path = "../src/kernels"
[output]
kind = "source"
"#,
        ),
        (
            "recipes/third.toml",
            r#"[package]
name = "third"
version = "3.0.0"
[source]
path = "../src/third"
[depends]
recipes = ["kernels", "second"]
[env]
KERNELS_SRC = "${{ source_dir:kernels }}"
SECOND_VERSION = "${{ version:second }}"
[jobs]
mem_per_job_gib = 8.0
nvcc_threads = 2
max_jobs_counts_nvcc_threads = true
[build]
steps = ["python setup.py bdist_wheel -d ${{ out }}"]
"#,
        ),
    ])
}

/// The CLI on the fixture recipes in `dir`, as the faked machine `host_name` would run it.
fn on_host(dir: &Path, host_name: &str) -> assert_cmd::Command {
    let mut c = jetforge();
    c.arg("--recipes")
        .arg(dir.join("recipes"))
        .env("JETFORGE_HOST_ROOT", host(host_name));
    c
}

fn plan_json(dir: &Path, host_name: &str, extra: &[&str]) -> Value {
    let out = on_host(dir, host_name)
        .arg("--work-dir")
        .arg(dir.join("work"))
        .args(["plan", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(plan: &Value) -> Vec<String> {
    plan["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn order_is_topological_and_selection_pulls_dependencies() {
    let dir = fixture_set();
    let all = plan_json(dir.path(), "agx-orin-64g", &[]);
    assert_eq!(names(&all), ["first", "kernels", "second", "third"]);
    let some = plan_json(dir.path(), "agx-orin-64g", &["second"]);
    assert_eq!(names(&some), ["first", "second"]);
}

#[test]
fn json_has_the_documented_fields() {
    let dir = fixture_set();
    let plan = plan_json(dir.path(), "agx-orin-64g", &[]);
    let third = &plan["recipes"][3];
    for key in [
        "name", "version", "commit", "jobs", "env", "steps", "depends",
    ] {
        assert!(third.get(key).is_some(), "missing {key}: {third}");
    }
    assert_eq!(third["depends"], serde_json::json!(["kernels", "second"]));
    let layout = work_layout(dir.path(), "jetson-orin");
    assert_eq!(
        third["env"]["KERNELS_SRC"],
        layout.source_dir("kernels").display().to_string()
    );
    assert_eq!(third["env"]["SECOND_VERSION"], "2.0.0");
    assert_eq!(third["env"]["TORCH_CUDA_ARCH_LIST"], "8.7");
    let second_step = &plan["recipes"][2]["steps"][0]["argv"];
    assert_eq!(second_step[0], layout.venv_python().display().to_string());
}

#[test]
fn jobs_follow_memory_and_say_why() {
    let dir = fixture_set();
    let nano = plan_json(dir.path(), "orin-nano-8g", &[]);
    let agx = plan_json(dir.path(), "agx-orin-64g", &[]);
    let jobs = |p: &Value, i: usize| p["recipes"][i]["jobs"]["jobs"].as_u64().unwrap();
    assert!(jobs(&nano, 0) < jobs(&agx, 0), "{nano} vs {agx}");
    let reason = nano["recipes"][0]["jobs"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("GiB usable") && reason.contains("per job"),
        "{reason}"
    );
    let third = &agx["recipes"][3]["jobs"];
    assert_eq!(
        third["max_jobs"].as_u64().unwrap(),
        third["jobs"].as_u64().unwrap() * 2
    );
    assert_eq!(agx["recipes"][3]["env"]["NVCC_THREADS"], "2");
}

#[test]
fn jobs_overrides_are_reported() {
    let dir = fixture_set();
    let plan = plan_json(dir.path(), "agx-orin-64g", &["--jobs", "3", "first"]);
    let j = &plan["recipes"][0]["jobs"];
    assert_eq!(j["jobs"], 3);
    assert_eq!(j["source"], "cli-flag");
    assert_eq!(plan["recipes"][0]["env"]["MAX_JOBS"], "3");
    let out = on_host(dir.path(), "agx-orin-64g")
        .env("MAX_JOBS", "5")
        .args(["plan", "first"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("MAX_JOBS=5 (MAX_JOBS=5 from the environment"),
        "{text}"
    );
}

#[test]
fn human_plan_shows_steps_jobs_and_env() {
    let dir = fixture_set();
    let out = on_host(dir.path(), "orin-nano-8g")
        .args(["plan", "third"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("Plan: set recipes for target jetson-orin (aarch64, CUDA arch 8.7, cp310, linux_aarch64)"), "{text}");
    assert!(text.contains("Host: NVIDIA Jetson Orin Nano"), "{text}");
    assert!(
        text.contains("2. kernels 0.1.0 (prepared source)"),
        "{text}"
    );
    assert!(
        text.contains("   steps     1. python setup.py bdist_wheel -d "),
        "{text}"
    );
    assert!(text.contains("   jobs      MAX_JOBS="), "{text}");
}

#[test]
fn env_shell_export_round_trips_through_bash() {
    let dir = fixture_set();
    let out = on_host(dir.path(), "agx-orin-64g")
        .env("HOME", "/home/o'brien $x")
        .args(["env", "first", "--format", "json"])
        .output()
        .unwrap();
    let want: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(want["FIRST_FLAGS"], "-O2 '8.7' $HOME");
    let shell = on_host(dir.path(), "agx-orin-64g")
        .env("HOME", "/home/o'brien $x")
        .args(["env", "first"])
        .output()
        .unwrap();
    let script = format!(
        "eval \"$1\"; for k in {}; do printf '%s\\0%s\\0' \"$k\" \"${{!k}}\"; done",
        want.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let got = std::process::Command::new("bash")
        .args(["-c", &script, "bash", &stdout(&shell)])
        .env_clear()
        .output()
        .unwrap();
    let fields: Vec<String> = String::from_utf8(got.stdout)
        .unwrap()
        .split('\0')
        .map(str::to_string)
        .collect();
    for pair in fields.chunks(2).filter(|c| c.len() == 2) {
        assert_eq!(want[&pair[0]], pair[1], "{}", pair[0]);
    }
    assert!(fields.len() > 20, "{fields:?}");
}

#[test]
fn dotenv_format() {
    let dir = fixture_set();
    let out = on_host(dir.path(), "agx-orin-64g")
        .args(["env", "first", "--format", "dotenv"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("FIRST_FLAGS=\"-O2 '8.7' \\$HOME\"\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn host_target_takes_cuda_arch_flag() {
    let dir = fixture_set();
    let plan = plan_json(
        dir.path(),
        "cgroup-v2-host",
        &["--target", "host", "--cuda-arch", "9.0", "first"],
    );
    assert_eq!(plan["target"]["name"], "host");
    assert_eq!(plan["target"]["arch"], "x86_64");
    assert_eq!(plan["recipes"][0]["env"]["TORCH_CUDA_ARCH_LIST"], "9.0");
    assert_eq!(plan["recipes"][0]["env"]["FIRST_FLAGS"], "-O2 '9.0' $HOME");
}

#[test]
fn proxy_reaches_the_environment_and_is_redacted_when_printed() {
    let dir = fixture_set();
    let run = |args: &[&str]| {
        on_host(dir.path(), "agx-orin-64g")
            .env("https_proxy", "http://alice:hunter2@proxy.corp:3128")
            .env("no_proxy", "localhost, .corp")
            .args(args)
            .output()
            .unwrap()
    };
    // The shell form is for `eval` and carries the real value (security::env_eval_gets_the_real_proxy).
    for args in [
        &["env", "first", "--format", "json"][..],
        &["env", "first", "--format", "dotenv"],
        &["plan", "-v"],
        &["plan", "--json"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(
            !text.contains("hunter2"),
            "{args:?} leaked the password:\n{text}"
        );
        assert!(
            text.contains("alice:****@proxy.corp:3128"),
            "{args:?}:\n{text}"
        );
    }
    let env: Value =
        serde_json::from_slice(&run(&["env", "first", "--format", "json"]).stdout).unwrap();
    for key in ["https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"] {
        assert!(env.get(key).is_some(), "{key} missing: {env}");
    }
    let secret = run(&["env", "first", "--show-secrets"]);
    assert!(
        stdout(&secret).contains("alice:hunter2@"),
        "--show-secrets prints the real value"
    );
    let plan = stdout(&run(&["plan", "first"]));
    assert!(
        plan.contains("Network: https proxy: http://alice:****@proxy.corp:3128 (from"),
        "{plan}"
    );
}

#[test]
fn cli_proxy_beats_the_environment() {
    let dir = fixture_set();
    let out = on_host(dir.path(), "agx-orin-64g")
        .env("https_proxy", "http://env-proxy:1")
        .args([
            "--proxy",
            "http://cli-proxy:2",
            "env",
            "first",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["https_proxy"], "http://cli-proxy:2");
    assert_eq!(env["HTTP_PROXY"], "http://cli-proxy:2");
}

#[test]
fn mirrors_from_the_config_file_show_in_the_plan() {
    let dir = tree(&[
        (
            "recipes/up.toml",
            r#"[package]
name = "up"
version = "1.0"
[source]
git = "https://github.com/example/up"
tag = "v1.0"
commit = "0123456789abcdef0123456789abcdef01234567"
[build]
steps = ["true"]
"#,
        ),
        (
            "work/jetforge.toml",
            "[mirrors]\n\"https://github.com/\" = \"https://git.corp/github/\"\n",
        ),
    ]);
    let out = jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("JETFORGE_CONFIG", dir.path().join("none.toml"))
        .args(["plan", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["recipes"][0]["source"]["mirror"],
        "https://git.corp/github/example/up"
    );
    assert_eq!(
        plan["recipes"][0]["commit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
}

#[test]
fn a_malformed_config_file_is_pointed_at() {
    let dir = tree(&[("work/jetforge.toml", "[network]\nproxxy = \"x\"\n")]);
    let out = jetforge()
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jetforge.toml:2:1") && err.contains("unknown field `proxxy`"),
        "{err}"
    );
}
