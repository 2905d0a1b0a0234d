//! `doctor` on faked machines (snapshots of what the user sees, and the `--json` shape), and
//! `verify` against a real venv with passing, failing, hanging and GPU-only snippets.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::fixtures::{fake_nvidia_smi, fake_torch_into};
use crate::util::{host, jetforge, redact_dir, stderr, stdout, tree};

fn doctor(host_name: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    jetforge()
        .current_dir(dir.path())
        .env("JETFORGE_HOST_ROOT", host(host_name))
        .args(extra)
        .arg("doctor")
        .output()
        .unwrap()
}

/// An 8 GB Orin Nano without swap must be told that torch builds with MAX_JOBS=1 and how to
/// add swap; it is not a blocker.
#[test]
fn doctor_orin_nano_without_swap() {
    let out = doctor("orin-nano-8g", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Jetson Orin Nano 8 GB with no swap: torch will build with MAX_JOBS=1"));
    assert!(text.contains("fix: add 16 GB swap: sudo fallocate -l 16G /swapfile"));
    insta::assert_snapshot!(text);
}

/// A container with /dev/nvidia* but no libcuda: the report names the missing NVIDIA runtime.
#[test]
fn doctor_container_without_nvidia_runtime() {
    let out = doctor(
        "x86-container-no-runtime",
        &["--target", "host", "--cuda-arch", "9.0"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("device nodes present but libcuda missing"));
    assert!(text.contains("--gpus all"));
    insta::assert_snapshot!(text);
}

/// No CUDA, no headers, no compiler: a CUDA build for this host is blocked, exit 1.
#[test]
fn doctor_x86_without_cuda_blocks() {
    let out = doctor(
        "x86-ci-cgroup6g",
        &["--target", "host", "--cuda-arch", "9.0"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("doctor found 5 blocker(s): toolkit, nvcc, dev headers, gcc, g++"),
        "{}",
        stderr(&out)
    );
    insta::assert_snapshot!(stdout(&out));
}

/// Building for the Jetson on an x86 machine is not possible natively: a blocker that says so.
#[test]
fn doctor_jetson_target_on_x86_is_blocked() {
    let out = doctor("x86-container-no-runtime", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("a native build is impossible here"));
}

#[test]
fn doctor_json_shape() {
    let out = doctor("orin-nano-8g", &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["set"], "jp6-vllm-0.12");
    assert_eq!(v["summary"]["blockers"], 0);
    let titles: Vec<&str> = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Platform",
            "CUDA",
            "Python",
            "Build tools",
            "CUDA libraries",
            "Disk",
            "Memory",
            "Network",
            "Cross build",
            "GPU"
        ]
    );
    let swap = v["sections"][6]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "swap")
        .unwrap();
    assert_eq!(swap["level"], "warn");
    assert!(swap["fix"].as_str().unwrap().contains("mkswap"));
}

/// Recipes whose verify snippets pass, fail, hang (1 s limit) and need a GPU, plus a venv.
fn verify_project() -> tempfile::TempDir {
    let recipe = |name: &str, verify: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0\"\n[source]\npath = \"../src\"\n\
             [build]\nsteps = [\"true\"]\n[verify]\n{verify}\n"
        )
    };
    let dir = tree(&[
        (
            "recipes/good.toml",
            &recipe(
                "good",
                "python = \"import os, sys; assert os.environ['JETFORGE_PACKAGE'] == 'good' and os.environ['JETFORGE_VERSION'] == '1.0'; assert sys.prefix != sys.base_prefix\"",
            ),
        ),
        (
            "recipes/bad.toml",
            &recipe("bad", "python = \"raise SystemExit('bad wheel')\""),
        ),
        (
            "recipes/hangs.toml",
            &recipe(
                "hangs",
                "timeout_secs = 1\npython = \"import time; time.sleep(60)\"",
            ),
        ),
        (
            "recipes/gpu.toml",
            &recipe("gpu", "gpu = true\npython = \"import torch\""),
        ),
        ("src/.keep", ""),
    ]);
    let status = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir.path().join("venv"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn verify(dir: &Path, args: &[&str]) -> std::process::Output {
    jetforge()
        .current_dir(dir)
        .env("JETFORGE_HOST_ROOT", host("x86-ci-cgroup6g"))
        .args(["--recipes", "recipes", "verify", "--venv", "venv"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn verify_reports_pass_fail_timeout_and_skip() {
    let dir = verify_project();
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = redact_dir(&stdout(&out), dir.path());
    assert!(
        text.starts_with("verify with [DIR]/venv/bin/python\n"),
        "{text}"
    );
    let line = |pkg: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{pkg} ")))
            .unwrap_or_else(|| panic!("no row for {pkg}:\n{text}"))
            .to_string()
    };
    assert!(line("good").contains(" pass "), "{text}");
    assert!(line("bad").contains(" FAIL ") && line("bad").contains("exit status 1"));
    assert!(text.contains("    | bad wheel"), "{text}");
    assert!(line("hangs").contains(" TIMEOUT ") && line("hangs").contains("no answer within 1s"));
    assert!(line("gpu").contains(" skipped ") && line("gpu").contains("needs a GPU"));
    assert!(
        stderr(&out).contains("verify failed: bad, hangs"),
        "{}",
        stderr(&out)
    );

    let ok = verify(dir.path(), &["good", "gpu"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn verify_json_and_nccl_skip_without_gpus() {
    let dir = verify_project();
    let out = verify(dir.path(), &["--json", "--nccl", "good"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["results"][0]["package"], "good");
    assert_eq!(v["results"][0]["result"], "pass");
    assert!(
        v["nccl"]["skipped"]
            .as_str()
            .unwrap()
            .contains("needs a GPU"),
        "{v}"
    );
}

/// `verify --venv venv --nccl good` with a stand-in nvidia-smi listing `gpus` GPUs and the
/// stand-in torch in the venv (`tests/fixtures/fake-torch`); its calls go to `dir/torch.log`.
fn verify_nccl(dir: &Path, gpus: u32, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let path = fake_nvidia_smi(dir, gpus);
    let log = dir.join("torch.log");
    let _ = std::fs::remove_file(&log);
    let mut c = jetforge();
    c.current_dir(dir)
        .env("JETFORGE_HOST_ROOT", host("x86-ci-cgroup6g"))
        .env("PATH", path)
        .env("FAKE_TORCH_LOG", &log)
        .args(["--recipes", "recipes", "verify", "--venv", "venv", "--nccl"])
        .args(args)
        .arg("good");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Asserts that `out` exited with `code`; otherwise shows its stdout and stderr.
#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        stdout(out),
        stderr(out)
    );
}

/// One GPU (every Jetson): instead of a skip, the single-process check runs jetforge's real
/// script (against the stand-in torch): init, SUM and AVG all-reduce, broadcast, synchronize,
/// destroy; the output names it `nccl (1 process)` with NCCL's version and says what it does
/// not prove; `--json` carries the mode and the recorded check name.
#[test]
fn verify_nccl_on_one_gpu_runs_the_single_process_check() {
    let dir = verify_project();
    fake_torch_into(&dir.path().join("venv"));
    let out = verify_nccl(dir.path(), 1, &[], &[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("\nnccl (1 process): pass "), "{text}");
    assert!(
        text.contains("    | nccl (1 process) ok: NCCL 2.27.5, all_reduce (sum, avg) and broadcast on cuda:0 (Orin (stand-in))"),
        "{text}"
    );
    assert!(
        text.contains("  note: one GPU: proves NCCL loads, creates a communicator on the device and runs its kernels; not inter-GPU transport"),
        "{text}"
    );
    assert!(!text.contains("NCCL_P2P_DISABLE"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("torch.log")).unwrap(),
        "set_device 0\ninit_process_group nccl 0 1\nall_reduce sum\nall_reduce avg\nbroadcast 0\nsynchronize\ndestroy_process_group\n"
    );

    let out = verify_nccl(dir.path(), 1, &["--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["nccl"]["mode"], "1-process", "{v}");
    assert_eq!(v["nccl"]["check"], "nccl-1", "{v}");
    assert_eq!(v["nccl"]["outcome"]["result"], "pass", "{v}");
    assert_eq!(v["nccl"]["p2p_disabled"], Value::Null, "{v}");
}

/// A failing single-process check fails verify, shows NCCL's error, and is not rerun with
/// NCCL_P2P_DISABLE=1 (one process has no peer).
#[test]
fn verify_nccl_single_process_failure_fails_verify_with_its_output() {
    let dir = verify_project();
    fake_torch_into(&dir.path().join("venv"));
    let out = verify_nccl(dir.path(), 1, &[], &[("FAKE_TORCH_NCCL", "fail")]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("\nnccl (1 process): FAIL "), "{text}");
    assert!(
        text.contains("    | RuntimeError: NCCL error in: init.cc:1234, unhandled system error: nvmlInit_v2() failed: Driver Not Loaded"),
        "{text}"
    );
    assert!(
        text.contains("  hint: the single-process NCCL check failed"),
        "{text}"
    );
    assert!(!text.contains("NCCL_P2P_DISABLE=1:"), "{text}");
    assert!(
        stderr(&out).contains("verify failed: nccl-1"),
        "{}",
        stderr(&out)
    );
    // Ran once: no rerun.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("torch.log")).unwrap(),
        "set_device 0\ninit_process_group failed\n"
    );
}

/// Two GPUs: the 2-process all-reduce, unchanged (the stand-in torch has no
/// torch.multiprocessing, so it fails at import), and its rerun with P2P disabled; zero GPUs:
/// skipped.
#[test]
fn verify_nccl_picks_the_two_process_check_with_two_gpus_and_skips_with_none() {
    let dir = verify_project();
    fake_torch_into(&dir.path().join("venv"));
    let out = verify_nccl(dir.path(), 2, &["--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["nccl"]["mode"], "2-process", "{v}");
    assert_eq!(v["nccl"]["check"], "nccl", "{v}");
    assert_eq!(v["nccl"]["outcome"]["result"], "fail", "{v}");
    assert!(
        v["nccl"]["outcome"]["tail"]
            .to_string()
            .contains("torch.multiprocessing"),
        "{v}"
    );
    assert_eq!(v["nccl"]["p2p_disabled"]["result"], "fail", "{v}");
    assert!(
        stderr(&out).contains("verify failed: nccl"),
        "{}",
        stderr(&out)
    );

    let out = verify_nccl(dir.path(), 0, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\nnccl: skipped: needs a GPU, this host has none\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verify_without_a_venv_is_bad_input() {
    let dir = verify_project();
    let out = jetforge()
        .current_dir(dir.path())
        .args(["--recipes", "recipes", "verify", "--venv", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = redact_dir(&stderr(&out), dir.path());
    assert!(err.contains("`[DIR]/nowhere` is not a venv"), "{err}");
}

/// A cross target on an x86 machine: the arch difference is a cross build, not a blocker, and
/// the Cross build section says what is missing (here: a sysroot without the target's Python).
#[test]
fn doctor_reports_the_cross_toolchain_and_sysroot() {
    let sysroot = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = jetforge()
        .current_dir(dir.path())
        .env("JETFORGE_HOST_ROOT", host("x86-ci-cgroup6g"))
        .env("JETFORGE_SYSROOT", sysroot.path())
        .args(["--target", "jetson-orin-cross", "--json", "doctor"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let section = |title: &str| {
        report["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["title"] == title)
            .cloned()
            .unwrap_or_else(|| panic!("no {title} section: {report}"))
    };
    let platform = section("Platform").to_string();
    assert!(
        platform.contains("a cross build (see Cross build)"),
        "{platform}"
    );
    let cross = section("Cross build");
    let blockers: Vec<&Value> = cross["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["level"] == "blocker")
        .collect();
    assert!(
        !blockers.is_empty(),
        "an empty sysroot is not usable: {cross}"
    );
    assert!(blockers.iter().all(|c| c["fix"].is_string()), "{cross}");
    assert_eq!(out.status.code(), Some(1));

    let native = doctor("agx-orin-64g", &["--json"]);
    let report: Value = serde_json::from_slice(&native.stdout).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("native build (aarch64): no cross toolchain needed"),
        "{text}"
    );
}

/// A selection without torch and without `disk_gib`, built with the user's `$CC`/`$CXX` (issue
/// #14): the disk need is "unknown" (never "-0.0 GiB"), no torch-only library is checked, and
/// the compilers reported are the user's, not /usr/bin/gcc.
#[test]
fn doctor_for_a_small_set_with_cc_reports_unknown_disk_no_torch_checks_and_the_users_compiler() {
    let p = tree(&[
        (
            "recipes/tiny.toml",
            "[package]\nname = \"tiny\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/tiny\"\n\
             [build]\nsteps = [\"true\"]\n",
        ),
        ("src/tiny/setup.py", ""),
    ]);
    let dir = p.path();
    // A copy of a fake machine with clang installed beside gcc.
    let root = dir.join("host");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(host("x86-container-no-runtime"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(root.join("usr/bin/clang-17"), "").unwrap();
    let out = jetforge()
        .current_dir(dir)
        .env("JETFORGE_HOST_ROOT", &root)
        .env("CC", "clang-17")
        .env("CXX", "/usr/bin/clang++-17 -stdlib=libc++")
        .args(["--recipes", "recipes", "--target", "host", "doctor"])
        .output()
        .unwrap();
    let text = redact_dir(&stdout(&out), dir);
    assert!(
        text.contains("the build needs an unknown amount (set [package] disk_gib)")
            && !text.contains("-0.0 GiB"),
        "{text}"
    );
    assert!(
        text.contains("not checked: the selection does not build torch"),
        "{text}"
    );
    assert!(text.contains("$CC=clang-17: /usr/bin/clang-17"), "{text}");
    assert!(
        text.contains("$CXX=/usr/bin/clang++-17 -stdlib=libc++, but that compiler is not found"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}
