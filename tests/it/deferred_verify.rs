//! Deferred verification (issue #18 part 2): a wheel whose GPU snippet was skipped on a
//! GPU-less build host is recorded as pending, `install` warns about it, a (faked) GPU host
//! verifies it from the published cache, `publish --verified` attests it, and then `install`
//! is silent. Once through a static tree (`--dir`, `--find-links`), once through a real
//! package index (pypiserver: `--index`, attestation sidecars in project `jetforge-verified`,
//! the commands of `scripts/ci/jetson-build.yml`).

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::build::jf_env;
use crate::fixtures::{fake_nvidia_smi, fake_torch_into, fixture_project, python};
use crate::support::{have_tools, PypiServer, StaticServer};
use crate::util::{assert_ok, host, stderr, stdout, tree, write_file};

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// The entry of `package` in `entries`, a manifest's list (`wheels` of the wheelhouse's,
/// `entries` of a published one).
fn entry_of(entries: &Value, package: &str) -> Value {
    entries
        .as_array()
        .unwrap_or_else(|| panic!("not a list of entries: {entries}"))
        .iter()
        .find(|e| e["package"] == package)
        .unwrap_or_else(|| panic!("no {package} in {entries}"))
        .clone()
}

/// A pure-Python package with a `gpu = true` snippet.
fn add_gpu_recipe(dir: &Path) {
    write_file(
dir,
        "src/gpupkg/setup.py",
        "from setuptools import setup\nsetup(name='gpupkg', version='1.0.0', py_modules=['gpupkg'])\n",
    );
    write_file(dir, "src/gpupkg/gpupkg.py", "KERNEL = 'ok'\n");
    write_file(
dir,
        "recipes/gpupkg.toml",
        "[package]\nname = \"gpupkg\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/gpupkg\"\n[build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\"]\n[verify]\ngpu = true\npython = \"import gpupkg; print('gpu snippet ran', gpupkg.KERNEL)\"\n",
    );
}

/// `jetforge` on a faked host: `gpu` picks one with `/dev/nvidia0`, else one without a GPU.
fn on(dir: &Path, gpu: bool, args: &[&str]) -> Output {
    on_env(dir, gpu, args, &[])
}

/// [`on`] with extra environment variables.
fn on_env(dir: &Path, gpu: bool, args: &[&str], env: &[(&str, &str)]) -> Output {
    let root = host(if gpu {
        "x86-container-no-runtime"
    } else {
        "x86-ci-cgroup6g"
    });
    // The snippet needs a GPU, so the recipe counts as a CUDA one: name the arch (an Orin's).
    let mut all = vec!["--cuda-arch", "8.7"];
    all.extend_from_slice(args);
    let mut vars = vec![
        ("JETFORGE_HOST_ROOT", root.to_str().unwrap()),
        ("MAX_JOBS", ""),
    ];
    vars.extend_from_slice(env);
    jf_env(dir, &all, &vars)
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
    assert_ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains(
            "verify: pending (no GPU: the [verify] snippet needs a GPU and none is visible)"
        ),
        "{all}"
    );
    let manifest = json(&dir.join("wheelhouse/manifest.json"));
    assert_eq!(manifest["format"], 2);
    let entry = entry_of(&manifest["wheels"], "gpupkg");
    assert_eq!(entry["verify"]["state"], "pending", "{entry}");

    // 2. install from the wheelhouse warns, naming the package.
    let out = on(
        dir,
        false,
        &["install", "--venv", "v1", "--python", &py, "gpupkg"],
    );
    assert_ok(&out);
    let warning = unverified_warning(&out).unwrap_or_else(|| panic!("{}", stderr(&out)));
    assert!(
        warning.contains("gpupkg==1.0.0 (verify pending (no GPU"),
        "{warning}"
    );

    // 3. The published tree carries the state.
    assert_ok(&on(dir, false, &["publish", "--dir", "tree"]));
    let published = json(&dir.join("tree/jetforge-manifest.json"));
    let pe = entry_of(&published["entries"], "gpupkg");
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
    assert_ok(&out);
    assert!(unverified_warning(&out).is_some(), "{}", stderr(&out));

    // 5. On a host with a GPU, verify from the served tree runs the snippet and records it.
    let out = on(
        dir,
        true,
        &["verify", "gpupkg", "--python", &py, "--find-links", &url],
    );
    assert_ok(&out);
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
    assert_ok(&out);
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
    assert_ok(&again);
    assert!(
        stdout(&again).contains("0 new, 1 already there"),
        "{}",
        stdout(&again)
    );
    assert!(
        stdout(&again).contains("(attestation): skipped (already there, attests the same wheels)"),
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
    assert_ok(&out);
    assert_eq!(unverified_warning(&out), None, "{}", stderr(&out));
    let out = on(
        dir,
        false,
        &["install", "--venv", "v4", "--python", &py, "gpupkg"],
    );
    assert_ok(&out);
    assert_eq!(unverified_warning(&out), None, "{}", stderr(&out));

    // 8. A fresh checkout on a GPU-less machine takes the wheel from the served tree and keeps
    //    its attestation's word: passed.
    let fresh = fixture_project("first==1.0.0");
    let fresh = fresh.path();
    add_gpu_recipe(fresh);
    let out = on(
        fresh,
        false,
        &[
            "build",
            "gpupkg",
            "--python",
            &py,
            "--system-site-packages",
            "--cache-from",
            &url,
        ],
    );
    assert_ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains(&format!("gpupkg: cached (remote: {url})")),
        "{all}"
    );
    let got = local_entry(fresh, "gpupkg");
    assert_eq!(got["sha256"], pe["sha256"], "{got}");
    assert_eq!(got["verify"]["state"], "passed", "{got}");

    // 9. Unreadable local results do not fail an install that already happened: a warning
    //    names the file and what to do, and only the build's checks count (pending).
    std::fs::write(dir_results(dir), "not json").unwrap();
    let out = on(
        dir,
        false,
        &["install", "--venv", "v5", "--python", &py, "gpupkg"],
    );
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: only the build's checks count, the local verify results are unusable: `"
        ) && err.contains("verify-results.json` is not a jetforge verify results file")
            && err.contains("(delete it and run `jetforge verify` again)"),
        "{err}"
    );
    assert!(
        unverified_warning(&out).is_some_and(|w| w.contains("verify pending")),
        "{err}"
    );
}

const USER: &str = "builder";
const PASSWORD: &str = "s3cret-Pa55";

/// A checkout holding only the `gpupkg` recipe, so `all` is what the CI workflow runs.
fn gpu_project() -> tempfile::TempDir {
    let p = tree(&[]);
    add_gpu_recipe(p.path());
    p
}

/// The entry of `package` in a project's wheelhouse manifest.
fn local_entry(dir: &Path, package: &str) -> Value {
    entry_of(
        &json(&dir.join("wheelhouse/manifest.json"))["wheels"],
        package,
    )
}

/// A page of the server, through no proxy.
fn http_get(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Files the index holds, sorted.
fn index_files(server: &PypiServer) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(&server.packages)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// The path of `scripts/ci/jetson-build.yml` end to end on one pypiserver: the build machine
/// (no GPU) builds and publishes, the device runs `verify all --index URL --nccl` and
/// `publish --verified --index URL`, and the index then tells `install` and `build
/// --cache-from` that the wheel passed.
#[test]
fn a_gpu_snippet_skipped_at_build_is_verified_later_from_a_package_index() {
    if !have_tools("deferred verify through pypiserver", &["pypi-server"]) {
        return;
    }
    let start = std::time::Instant::now();
    let server = PypiServer::start(USER, PASSWORD);
    let url = server.url();
    let creds = [
        ("JETFORGE_INDEX_USER", USER),
        ("JETFORGE_INDEX_PASSWORD", PASSWORD),
    ];
    let py = python();

    // 1. The CI machine (no GPU) builds: pending; publish --index uploads it.
    let ci = gpu_project();
    let ci = ci.path();
    assert_ok(&on(
        ci,
        false,
        &["build", "all", "--python", &py, "--system-site-packages"],
    ));
    let entry = local_entry(ci, "gpupkg");
    assert_eq!(entry["verify"]["state"], "pending", "{entry}");
    let file = entry["file"].as_str().unwrap();
    let fp = entry["fingerprint"].as_str().unwrap();
    let sha = entry["sha256"].as_str().unwrap();
    let out = on_env(ci, false, &["publish", "--index", &url], &creds);
    assert_ok(&out);
    assert!(
        stdout(&out).contains(&format!("{file}: uploaded")),
        "{}",
        stdout(&out)
    );
    let published = index_files(&server);

    // 2. install --index warns: the index's sidecar manifest says pending.
    let out = on(
        ci,
        false,
        &[
            "install", "--venv", "v1", "--python", &py, "--index", &url, "gpupkg",
        ],
    );
    assert_ok(&out);
    let warning = unverified_warning(&out).unwrap_or_else(|| panic!("{}", stderr(&out)));
    assert!(
        warning.contains("gpupkg==1.0.0 (verify pending (no GPU"),
        "{warning}"
    );

    // 3. The device: another checkout, a GPU, one of them by nvidia-smi (as on an Orin), so
    //    --nccl runs the single-process NCCL check (jetforge's real script, against the
    //    stand-in torch put into the venv the set is installed into) and the result records
    //    the snippet and `nccl-1`.
    let device = gpu_project();
    let device = device.path();
    let path = fake_nvidia_smi(device, 1);
    let venv = device.join("device-venv");
    let made = std::process::Command::new(&py)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    fake_torch_into(&venv);
    let out = on_env(
        device,
        true,
        &[
            "verify",
            "all",
            "--index",
            &url,
            "--nccl",
            "--python",
            &py,
            "--venv",
            "device-venv",
        ],
        &[("PATH", &path)],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("gpu snippet ran ok"), "{text}");
    assert!(text.contains("device-venv/bin/python"), "{text}");
    assert!(text.contains("\nnccl (1 process): pass "), "{text}");
    assert!(
        text.contains("| nccl (1 process) ok: NCCL 2.27.5"),
        "{text}"
    );
    assert!(text.contains("not inter-GPU transport"), "{text}");
    let results = json(&dir_results(device));
    let r = &results["results"][0];
    assert_eq!(r["passed"], true, "{results}");
    assert_eq!(r["sha256"], sha, "{results}");
    assert_eq!(r["fingerprint"], fp, "{results}");
    assert_eq!(
        r["checks"],
        serde_json::json!(["snippet", "nccl-1"]),
        "{results}"
    );

    // 4. publish --verified --index uploads one attestation sidecar, listed under
    //    simple/jetforge-verified/, attesting those bytes; nothing else changes.
    let sidecar = format!("jetforge_verified-0+{fp}-py3-none-any.whl");
    let out = on_env(
        device,
        true,
        &["publish", "--verified", "--index", &url],
        &creds,
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("{sidecar}: uploaded")), "{text}");
    assert!(text.contains("(1 new, 0 already there)"), "{text}");
    let mut expected = published.clone();
    expected.push(sidecar.clone());
    expected.sort();
    assert_eq!(index_files(&server), expected);
    let page = http_get(&format!("{url}simple/jetforge-verified/"));
    assert!(
        page.contains(&sidecar) || page.contains(&sidecar.replace('+', "%2B")),
        "{page}"
    );
    let attested = jetforge::wheelhouse::verified::read_sidecar(
        &std::fs::read(server.packages.join(&sidecar)).unwrap(),
    )
    .unwrap();
    assert_eq!(attested.attestations.len(), 1, "{attested:?}");
    let a = &attested.attestations[0];
    assert_eq!((a.run.file.as_str(), a.run.sha256.as_str()), (file, sha));
    assert_eq!(a.run.checks, ["snippet", "nccl-1"]);

    // 5. Again, after a later run on the device (another date): the published record is kept
    //    as it was, nothing uploaded, no error, and the line says why.
    let results_path = dir_results(device);
    let mut later = json(&results_path);
    later["results"][0]["verified_at"] = "2099-01-01T00:00:00Z".into();
    std::fs::write(&results_path, serde_json::to_vec_pretty(&later).unwrap()).unwrap();
    let sidecar_bytes = std::fs::read(server.packages.join(&sidecar)).unwrap();
    let again = on_env(
        device,
        true,
        &["publish", "--verified", "--index", &url],
        &creds,
    );
    assert_ok(&again);
    let text = stdout(&again);
    assert!(!text.contains("uploaded"), "{text}");
    assert!(
        text.contains(&format!(
            "{sidecar}: skipped (already there, attests the same wheels)"
        )),
        "{text}"
    );
    assert!(text.contains("(0 new, 1 already there)"), "{text}");
    assert_eq!(index_files(&server), expected);
    assert_eq!(
        std::fs::read(server.packages.join(&sidecar)).unwrap(),
        sidecar_bytes
    );

    // 6. install --index on the CI machine (no local results there) no longer warns.
    let out = on(
        ci,
        false,
        &[
            "install", "--venv", "v2", "--python", &py, "--index", &url, "gpupkg",
        ],
    );
    assert_ok(&out);
    assert_eq!(unverified_warning(&out), None, "{}", stderr(&out));

    // 7. A fresh work dir on a GPU-less machine takes the wheel from the cache, and keeps the
    //    index's word: passed.
    let fresh = gpu_project();
    let fresh = fresh.path();
    let out = on(
        fresh,
        false,
        &[
            "build",
            "all",
            "--python",
            &py,
            "--system-site-packages",
            "--cache-from",
            &url,
        ],
    );
    assert_ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains(&format!("gpupkg: cached (remote: {url})")),
        "{all}"
    );
    assert!(!all.contains("verify: pending"), "{all}");
    let got = local_entry(fresh, "gpupkg");
    assert_eq!(got["sha256"], sha, "{got}");
    assert_eq!(got["verify"]["state"], "passed", "{got}");
    eprintln!(
        "\ntiming: deferred verify through pypiserver, end to end {:.1}s\n",
        start.elapsed().as_secs_f64()
    );
}

/// `verify-results.json` of a gpupkg project's work dir for the `host` target.
fn dir_results(dir: &Path) -> std::path::PathBuf {
    crate::util::work_layout(dir, "host")
        .root
        .join("verify-results.json")
}
