//! Deferred verification (issue #18 part 2): a wheel whose GPU snippet was skipped on a
//! GPU-less build host is recorded as pending, `install` warns about it, a (faked) GPU host
//! verifies it from the published cache, `publish --verified` attests it, and then `install`
//! is silent.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::build::jf_env;
use crate::fixtures::{fixture_project, python};
use crate::support::StaticServer;
use crate::util::{host, stderr, stdout};

fn ok(out: &Output) {
    assert!(out.status.success(), "{}\n{}", stdout(out), stderr(out));
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// A pure-Python package with a `gpu = true` snippet.
fn add_gpu_recipe(dir: &Path) {
    write(
        dir,
        "src/gpupkg/setup.py",
        "from setuptools import setup\nsetup(name='gpupkg', version='1.0.0', py_modules=['gpupkg'])\n",
    );
    write(dir, "src/gpupkg/gpupkg.py", "KERNEL = 'ok'\n");
    write(
        dir,
        "recipes/gpupkg.toml",
        "[package]\nname = \"gpupkg\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/gpupkg\"\n[build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\"]\n[verify]\ngpu = true\npython = \"import gpupkg; print('gpu snippet ran', gpupkg.KERNEL)\"\n",
    );
}

/// `jetforge` on a faked host: `gpu` picks one with `/dev/nvidia0`, else one without a GPU.
fn on(dir: &Path, gpu: bool, args: &[&str]) -> Output {
    let root = host(if gpu {
        "x86-container-no-runtime"
    } else {
        "x86-ci-cgroup6g"
    });
    // The snippet needs a GPU, so the recipe counts as a CUDA one: name the arch (an Orin's).
    let mut all = vec!["--cuda-arch", "8.7"];
    all.extend_from_slice(args);
    jf_env(
        dir,
        &all,
        &[
            ("JETFORGE_HOST_ROOT", root.to_str().unwrap()),
            ("MAX_JOBS", ""),
        ],
    )
}

fn unverified_warning(out: &Output) -> Option<String> {
    stderr(out)
        .lines()
        .find(|l| l.contains("not verified on a device"))
        .map(str::to_string)
}

#[test]
fn a_gpu_snippet_skipped_at_build_is_verified_later_from_a_published_tree() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    add_gpu_recipe(dir);
    let py = python();

    // 1. Built on a host without a GPU: pending, never passed, and the summary says so.
    let out = on(
        dir,
        false,
        &["build", "gpupkg", "--python", &py, "--system-site-packages"],
    );
    ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains(
            "verify: pending (no GPU: the [verify] snippet needs a GPU and none is visible)"
        ),
        "{all}"
    );
    let manifest = json(&dir.join("wheelhouse/manifest.json"));
    assert_eq!(manifest["format"], 2);
    let entry = manifest["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["package"] == "gpupkg")
        .unwrap()
        .clone();
    assert_eq!(entry["verify"]["state"], "pending", "{entry}");

    // 2. install from the wheelhouse warns, naming the package.
    let out = on(
        dir,
        false,
        &["install", "--venv", "v1", "--python", &py, "gpupkg"],
    );
    ok(&out);
    let warning = unverified_warning(&out).unwrap_or_else(|| panic!("{}", stderr(&out)));
    assert!(
        warning.contains("gpupkg==1.0.0 (verify pending (no GPU"),
        "{warning}"
    );

    // 3. The published tree carries the state.
    ok(&on(dir, false, &["publish", "--dir", "tree"]));
    let published = json(&dir.join("tree/jetforge-manifest.json"));
    let pe = published["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["package"] == "gpupkg")
        .unwrap()
        .clone();
    assert_eq!(pe["verify"]["state"], "pending", "{pe}");
    let wheel = dir.join("tree").join(pe["file"].as_str().unwrap());
    let wheel_bytes = std::fs::read(&wheel).unwrap();
    let server = StaticServer::start(&dir.join("tree"));
    let url = server.url();

    // 4. install from the served tree warns too.
    let out = on(
        dir,
        false,
        &[
            "install",
            "--venv",
            "v2",
            "--python",
            &py,
            "--find-links",
            &url,
            "gpupkg",
        ],
    );
    ok(&out);
    assert!(unverified_warning(&out).is_some(), "{}", stderr(&out));

    // 5. On a host with a GPU, verify from the served tree runs the snippet and records it.
    let out = on(
        dir,
        true,
        &["verify", "gpupkg", "--python", &py, "--find-links", &url],
    );
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("gpu snippet ran ok"), "{text}");
    assert!(text.contains("verify-cache-venv/bin/python"), "{text}");
    let results = json(&dir.join("work/recipes-host/verify-results.json"));
    let r = &results["results"][0];
    assert_eq!(r["passed"], true, "{results}");
    assert_eq!(r["sha256"], pe["sha256"]);
    assert_eq!(r["fingerprint"], pe["fingerprint"]);
    assert!(r["verified_at"].as_str().unwrap().ends_with('Z'), "{r}");
    assert!(!r["host"].as_str().unwrap().is_empty());

    // 6. publish --verified writes the attestation; wheels and manifest stay as they were.
    let manifest_before = std::fs::read(dir.join("tree/jetforge-manifest.json")).unwrap();
    let out = on(dir, true, &["publish", "--verified", "--dir", "tree"]);
    ok(&out);
    assert!(stdout(&out).contains("1 new"), "{}", stdout(&out));
    let attested = json(&dir.join("tree/jetforge-verified.json"));
    assert_eq!(
        attested["attestations"][0]["sha256"], pe["sha256"],
        "{attested}"
    );
    assert_eq!(attested["attestations"][0]["checks"][0], "snippet");
    assert_eq!(std::fs::read(&wheel).unwrap(), wheel_bytes);
    assert_eq!(
        std::fs::read(dir.join("tree/jetforge-manifest.json")).unwrap(),
        manifest_before
    );
    let again = on(dir, true, &["publish", "--verified", "--dir", "tree"]);
    ok(&again);
    assert!(
        stdout(&again).contains("0 new, 1 already there"),
        "{}",
        stdout(&again)
    );

    // 7. install from the tree no longer warns; the local wheelhouse neither (verified here).
    let out = on(
        dir,
        false,
        &[
            "install",
            "--venv",
            "v3",
            "--python",
            &py,
            "--find-links",
            &url,
            "gpupkg",
        ],
    );
    ok(&out);
    assert_eq!(unverified_warning(&out), None, "{}", stderr(&out));
    let out = on(
        dir,
        false,
        &["install", "--venv", "v4", "--python", &py, "gpupkg"],
    );
    ok(&out);
    assert_eq!(unverified_warning(&out), None, "{}", stderr(&out));
}
