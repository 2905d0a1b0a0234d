//! `jetforge new`: a recipe scaffolded from a git tag passes `check` and builds the fixture
//! project without hand edits; a CUDA project's hard-coded arch lines become a per-arch edit.

use std::path::Path;

use crate::fixtures::{project_dir, python};
use crate::util::{git, jetforge, stderr};

/// A git repository at `dir` holding `files`, tagged `tag`; returns its file:// URL.
fn tagged_repo(dir: &Path, files: &[(String, Vec<u8>)], tag: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (rel, bytes) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "release"]);
    git(dir, &["tag", tag]);
    format!("file://{}", dir.display())
}

fn fixture_files(rel: &str) -> Vec<(String, Vec<u8>)> {
    let root = project_dir().join("src").join(rel);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn jf(dir: &Path, args: &[&str]) -> std::process::Output {
    jetforge()
        .current_dir(dir)
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", "")
        .args([
            "--recipes",
            "recipes",
            "--work-dir",
            "work",
            "--no-progress",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn new_recipe_from_a_git_tag_checks_builds_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let url = tagged_repo(
        &dir.path().join("upstream/first"),
        &fixture_files("first"),
        "v1.0.0",
    );
    let commit = git(&dir.path().join("upstream/first"), &["rev-parse", "HEAD"]);

    let out = jf(
        dir.path(),
        &["new", "first", "--git", &url, "--tag", "v1.0.0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("recipes/first.toml")).unwrap();
    assert!(text.contains(&format!("commit = \"{commit}\"")), "{text}");
    assert!(text.contains("version = \"1.0.0\""), "{text}");
    assert!(text.contains("# The build system: setup.py."), "{text}");

    let out = jf(dir.path(), &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let py = python();
    let out = jf(
        dir.path(),
        &[
            "--target",
            "host",
            "build",
            "--python",
            &py,
            "--system-site-packages",
            "first",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let venv = dir.path().join("venv");
    let out = jf(
        dir.path(),
        &[
            "--target",
            "host",
            "install",
            "--venv",
            venv.to_str().unwrap(),
            "--system-site-packages",
            "first",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import first; print(first.add(40, 2))"])
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "42",
        "{}",
        stderr(&run)
    );
    // The same name again is refused rather than overwritten.
    let out = jf(
        dir.path(),
        &["new", "first", "--git", &url, "--tag", "v1.0.0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn new_recipe_for_hard_coded_gencode_lines_proposes_a_per_arch_edit() {
    let dir = tempfile::tempdir().unwrap();
    let setup = "from setuptools import setup\ncc_flag = []\ncc_flag.append(\"-gencode\")\n\
                 cc_flag.append(\"arch=compute_80,code=sm_80\")\nsetup(name=\"kern\")\n";
    let url = tagged_repo(
        &dir.path().join("upstream/kern"),
        &[
            ("setup.py".into(), setup.as_bytes().to_vec()),
            ("csrc/k.cu".into(), Vec::new()),
        ],
        "v0.3",
    );
    let out = jf(dir.path(), &["new", "kern", "--git", &url, "--tag", "v0.3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("recipes/kern.toml")).unwrap();
    for needle in [
        "[[edit]]\nfile = \"setup.py\"",
        "${{ for each_arch in cuda_archs }}cc_flag.append(\"-gencode\")",
        "arch=compute_${{ each_arch_nodot }},code=sm_${{ each_arch_nodot }}",
        "CUDA_HOME = \"${{ cuda_home }}\"",
        "gpu = true",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    let out = jf(dir.path(), &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The edit applies and writes one gencode pair per target arch.
    let out = jf(
        dir.path(),
        &[
            "--target",
            "host",
            "--cuda-arch",
            "8.7,9.0",
            "prepare",
            "kern",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let roots: Vec<_> = std::fs::read_dir(dir.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src/kern/setup.py"))
        .filter(|p| p.is_file())
        .collect();
    let prepared = std::fs::read_to_string(&roots[0]).unwrap();
    assert!(
        prepared.contains(
            "cc_flag.append(\"arch=compute_87,code=sm_87\")\ncc_flag.append(\"-gencode\")\n\
             cc_flag.append(\"arch=compute_90,code=sm_90\")\n"
        ),
        "{prepared}"
    );
}

/// The fixture's `solo` as an sdist (`solo-0.5.0/…` in a .tar.gz).
fn solo_sdist() -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (rel, bytes) in fixture_files("solo") {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("solo-0.5.0/{rel}"), bytes.as_slice())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn new_recipe_from_a_pypi_sdist_builds_from_a_local_index() {
    if !crate::support::have_tools("new_from_pypi", &["python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    std::fs::create_dir_all(index.join("files")).unwrap();
    std::fs::create_dir_all(index.join("pypi/solo/0.5.0")).unwrap();
    let sdist = solo_sdist();
    std::fs::write(index.join("files/solo-0.5.0.tar.gz"), &sdist).unwrap();
    let server = crate::support::StaticServer::start(&index);
    let json = serde_json::json!({"urls": [
        {"packagetype": "bdist_wheel", "filename": "solo-0.5.0-py3-none-any.whl",
         "url": format!("{}files/nope.whl", server.url()), "digests": {"sha256": "00"}},
        {"packagetype": "sdist", "filename": "solo-0.5.0.tar.gz",
         "url": format!("{}files/solo-0.5.0.tar.gz", server.url()),
         "digests": {"sha256": jetforge::hash::sha256_hex(&sdist)}},
    ]});
    std::fs::write(index.join("pypi/solo/0.5.0/json"), json.to_string()).unwrap();

    let out = jf(
        dir.path(),
        &[
            "new",
            "solo",
            "--from-pypi",
            "solo==0.5.0",
            "--pypi-url",
            &server.url(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("recipes/solo.toml")).unwrap();
    assert!(text.contains("path = \"../src/solo-0.5.0\""), "{text}");
    assert!(dir.path().join("src/solo-0.5.0/setup.py").is_file());
    let out = jf(dir.path(), &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let py = python();
    let out = jf(
        dir.path(),
        &[
            "--target",
            "host",
            "build",
            "--python",
            &py,
            "--system-site-packages",
            "solo",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A version the index does not have is an error naming it.
    let out = jf(
        dir.path(),
        &[
            "new",
            "solo2",
            "--from-pypi",
            "solo==9.9",
            "--pypi-url",
            &server.url(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the index has no solo 9.9"),
        "{}",
        stderr(&out)
    );
}
