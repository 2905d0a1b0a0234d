//! `jetforge build` end to end on fixture packages (see `fixtures`): wheels, manifest, index,
//! install into a fresh venv, no-op rebuilds, targeted rebuilds, pin checks, resume, OOM retry.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::fixtures::{fixture_project, python};
use crate::util::{jetforge, stderr, stdout};

/// `jetforge --target host <args>` in the fixture project, with its own cache and work dir.
pub fn jf(dir: &Path, args: &[&str]) -> Output {
    jf_env(dir, args, &[])
}

/// [`jf`] with extra environment variables.
pub fn jf_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    jetforge()
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", dir.join("no-user-config.toml"))
        .env_remove("PIP_FIND_LINKS")
        .args([
            "--recipes",
            "recipes",
            "--work-dir",
            "work",
            "--target",
            "host",
            "--no-progress",
        ])
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

#[test]
fn build_all_then_install_and_import() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    let out = build(dir, &[]);
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("work/recipes-host/logs/first/01-step-1.log"))
            .unwrap_or_default();
        panic!("{}\n{}\nLOG:\n{log}", stdout(&out), stderr(&out));
    }
    let text = stdout(&out);
    for line in ["first", "second", "kernels", "third"] {
        assert!(text.contains(line), "{text}");
    }
    let m = manifest(dir);
    let pkgs: Vec<&str> = m["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["package"].as_str().unwrap())
        .collect();
    assert_eq!(pkgs, ["first", "second", "third"]);
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
    let check = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", "import first, second._magic as m, third; print(first.add(40, 2), m.magic(), third.KERNEL)"])
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "42 42 fast-attention-v1",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
