//! `publish` to a real pypiserver and to a static tree, and the remote cache on the other side:
//! a fresh work dir builds nothing it can download, a corrupted download is rejected and built,
//! and pip installs from what was published. The fixture set is built once (work dir A) and
//! shared; every other work dir starts with empty caches.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::build::{build, jf, jf_env};
use crate::fixtures::{fixture_project, import_check, python};
use crate::support::{have_tools, PypiServer, StaticServer};
use crate::util::{stderr, stdout, work_layout};

const USER: &str = "builder";
const PASSWORD: &str = "s3cret-Pa55";

struct Built {
    dir: tempfile::TempDir,
    took: Duration,
}

/// Work dir A: the fixture set built from source, once for all tests here.
fn built_a() -> &'static Built {
    static A: OnceLock<Built> = OnceLock::new();
    A.get_or_init(|| {
        let p = fixture_project("first==1.0.0");
        let start = Instant::now();
        let out = build(p.path(), &[]);
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        Built {
            dir: p,
            took: start.elapsed(),
        }
    })
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn manifest(wheelhouse: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(wheelhouse.join("manifest.json")).unwrap()).unwrap()
}

/// Files `NN-*.log` that build steps write: none may exist after a build served by a cache.
fn step_logs(dir: &Path) -> Vec<String> {
    let logs = work_layout(dir, "host").root.join("logs");
    let mut out = Vec::new();
    for recipe in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(recipe.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(|c: char| c.is_ascii_digit()) {
                out.push(format!("{}/{name}", recipe.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// A static tree that `publish --dir` wrote from work dir A.
fn published_tree(a: &Built) -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    let out = jf(
        a.dir.path(),
        &["publish", "--dir", tree.path().to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", both(&out));
    tree
}

fn creds(password: &str) -> [(&'static str, &str); 2] {
    [
        ("JETFORGE_INDEX_USER", USER),
        ("JETFORGE_INDEX_PASSWORD", password),
    ]
}

#[test]
fn publish_to_pypiserver_then_build_and_install_from_it_elsewhere() {
    if !have_tools("publish to pypiserver", &["pypi-server"]) {
        return;
    }
    let a = built_a();
    let server = PypiServer::start(USER, PASSWORD);
    let url = server.url();

    let out = jf_env(
        a.dir.path(),
        &["publish", "--index", &url],
        &creds("wrong-password"),
    );
    let text = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("wrong credentials for {url}")),
        "{text}"
    );
    assert!(!text.contains("wrong-password"), "{text}");

    let out = jf_env(
        a.dir.path(),
        &["publish", "--index", &url],
        &creds(PASSWORD),
    );
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    let wheels = manifest(&a.dir.path().join("wheelhouse"))["wheels"]
        .as_array()
        .unwrap()
        .clone();
    for w in &wheels {
        let file = w["file"].as_str().unwrap();
        assert!(text.contains(&format!("{file}: uploaded")), "{text}");
        assert!(
            server.packages.join(file).is_file(),
            "{file} not on the server"
        );
    }
    let sidecars = std::fs::read_dir(&server.packages)
        .unwrap()
        .filter(|f| {
            let f = f.as_ref().unwrap().file_name();
            f.to_string_lossy().starts_with("jetforge_manifest-0+")
        })
        .count();
    assert_eq!(
        sidecars,
        wheels.len(),
        "one sidecar manifest per fingerprint"
    );

    let out = jf_env(
        a.dir.path(),
        &["publish", "--index", &url],
        &creds(PASSWORD),
    );
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("uploaded"), "nothing new: {text}");
    assert!(text.contains("(0 new,"), "{text}");

    refuses_a_tampered_file_of_the_same_name(a, &url);

    let b = fixture_project("first==1.0.0");
    let plan = crate::build::jf(b.path(), &["plan", "--json", "--cache-from", &url]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    for r in plan["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["output"] == "wheel")
    {
        assert_eq!(r["cache"], format!("cached (remote: {url})"), "plan: {r}");
    }
    let start = Instant::now();
    let out = build(b.path(), &["--cache-from", &url]);
    let took_b = start.elapsed();
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    for recipe in ["first", "second", "solo", "third"] {
        assert!(
            text.contains(&format!("{recipe}: cached (remote: {url})")),
            "{text}"
        );
    }
    assert_eq!(
        step_logs(b.path()),
        Vec::<String>::new(),
        "no build step may run"
    );
    let got = manifest(&b.path().join("wheelhouse"))["wheels"]
        .as_array()
        .unwrap()
        .clone();
    let sha =
        |ws: &[Value]| -> Vec<String> { ws.iter().map(|w| w["sha256"].to_string()).collect() };
    assert_eq!(sha(&got), sha(&wheels), "the same wheels, verified");
    eprintln!(
        "\ntiming: build all in A (from source) {:.1}s; build all in B (remote cache hits) {:.1}s\n",
        a.took.as_secs_f64(),
        took_b.as_secs_f64()
    );

    let venv = b.path().join("venv");
    let out = jf(
        b.path(),
        &[
            "install",
            "--venv",
            venv.to_str().unwrap(),
            "--python",
            &python(),
            "--index",
            &url,
            "all",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    import_check(&venv.join("bin/python"));
}

/// A wheelhouse whose `first` wheel has other bytes under the published name is refused, and
/// the error names both hashes.
fn refuses_a_tampered_file_of_the_same_name(a: &Built, url: &str) {
    let tampered = tempfile::tempdir().unwrap();
    let src = a.dir.path().join("wheelhouse");
    for f in std::fs::read_dir(&src).unwrap().flatten() {
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), tampered.path().join(f.file_name())).unwrap();
        }
    }
    let mut m = manifest(tampered.path());
    let entry = &mut m["wheels"][0];
    let file = entry["file"].as_str().unwrap().to_string();
    let published = entry["sha256"].as_str().unwrap().to_string();
    let path = tampered.path().join(&file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&path, &bytes).unwrap();
    let local = jetforge::hash::sha256_hex(&bytes);
    entry["sha256"] = Value::String(local.clone());
    std::fs::write(
        tampered.path().join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();

    let out = jf_env(
        a.dir.path(),
        &[
            "publish",
            "--index",
            url,
            "--wheelhouse",
            tampered.path().to_str().unwrap(),
        ],
        &creds(PASSWORD),
    );
    let text = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&file), "{text}");
    assert!(
        text.contains(&format!("local sha256:     {local}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("published sha256: {published}")),
        "{text}"
    );
}

#[test]
fn a_static_dir_publish_is_a_pep503_index_and_a_remote_cache() {
    let a = built_a();
    let tree = published_tree(a);
    let m: Value =
        serde_json::from_slice(&std::fs::read(tree.path().join("jetforge-manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["format"], 1);
    assert_eq!(m["entries"].as_array().unwrap().len(), 4, "{m}");
    let server = StaticServer::start(tree.path());

    let target = tempfile::tempdir().unwrap();
    let pip = Command::new(python())
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
        ])
        .args(["--index-url", &format!("{}simple/", server.url())])
        .arg("--target")
        .arg(target.path())
        .arg("first==1.0.0")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .output()
        .unwrap();
    assert!(pip.status.success(), "{}", both(&pip));
    assert!(target.path().join("first/__init__.py").is_file());

    let b = fixture_project("first==1.0.0");
    let out = build(b.path(), &["--cache-from", &server.url()]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("third: cached (remote: {})", server.url())),
        "{text}"
    );
    assert_eq!(
        step_logs(b.path()),
        Vec::<String>::new(),
        "no build step may run"
    );
}

#[test]
fn a_remote_wheel_that_does_not_match_its_hash_is_rejected_and_built() {
    let a = built_a();
    let tree = published_tree(a);
    let first = std::fs::read_dir(tree.path())
        .unwrap()
        .flatten()
        .find(|f| f.file_name().to_string_lossy().starts_with("first-"))
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    let server = StaticServer::start(tree.path());

    let b = fixture_project("first==1.0.0");
    let out = build(b.path(), &["--cache-from", &server.url()]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("warning: first: rejected the wheel"),
        "{text}"
    );
    assert!(text.contains("sha256 mismatch"), "{text}");
    assert!(text.contains("first: built in"), "{text}");
    assert!(
        text.contains(&format!("second: cached (remote: {})", server.url())),
        "{text}"
    );
    assert!(
        step_logs(b.path()).iter().any(|l| l.starts_with("first/")),
        "first was built: {text}"
    );
}

/// Regression: `plan` decided caching on its own and said "will build" for a wheel that is
/// missing from the wheelhouse, where `build` then took it from the remote cache.
#[test]
fn plan_says_what_build_does_when_the_local_wheel_is_gone_and_a_remote_cache_has_it() {
    let a = built_a();
    let tree = published_tree(a);
    let server = StaticServer::start(tree.path());
    let url = server.url();

    let b = fixture_project("first==1.0.0");
    let out = build(b.path(), &["--cache-from", &url]);
    assert!(out.status.success(), "{}", both(&out));
    let wheelhouse = b.path().join("wheelhouse");
    let third = manifest(&wheelhouse)["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["file"].as_str().unwrap().to_string())
        .find(|f| f.starts_with("third-"))
        .unwrap();
    std::fs::remove_file(wheelhouse.join(&third)).unwrap();

    let plan = jf(b.path(), &["plan", "--json", "--cache-from", &url]);
    assert!(plan.status.success(), "{}", both(&plan));
    let v: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let cache = |name: &str| {
        v["recipes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["cache"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(cache("third"), format!("cached (remote: {url})"), "{v}");
    assert!(cache("first").starts_with("cached (first-"), "{v}");

    let out = build(b.path(), &["--cache-from", &url]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("third: cached (remote: {url})")),
        "{text}"
    );
    assert!(wheelhouse.join(&third).is_file());
    assert_eq!(
        step_logs(b.path()),
        Vec::<String>::new(),
        "no build step may run"
    );
}
