//! Verify runs the way a user runs the wheel (issue #11 item 4), `install` refuses stale wheels
//! (#12 item 8), and recipes map to the distributions their wheels really are (#12 item 9).

use std::path::Path;

use serde_json::Value;

use crate::build::{build, jf, jf_env};
use crate::fixtures::{fixture_project, python};
use crate::util::{assert_ok, stderr, stdout, write_file};

fn log(dir: &Path, recipe: &str, name: &str) -> String {
    std::fs::read_to_string(dir.join("work/recipes-host/logs").join(recipe).join(name))
        .unwrap_or_else(|e| panic!("logs/{recipe}/{name}: {e}"))
}

/// A pure-Python package whose import raises unless FOO is set, and a recipe whose `[env]` sets
/// FOO for the build: the wheel is broken for every user who does not export FOO.
fn add_needs_env(dir: &Path, verify: bool) {
    write_file(
dir,
        "src/needsenv/setup.py",
        "from setuptools import setup\nsetup(name='needsenv', version='1.0.0', py_modules=['needsenv'])\n",
    );
    write_file(
dir,
        "src/needsenv/needsenv.py",
        "import os\nif 'FOO' not in os.environ:\n    raise ImportError('needsenv only works with FOO set')\n",
    );
    let verify = if verify {
        "[verify]\npython = \"import needsenv\"\n"
    } else {
        ""
    };
    write_file(
dir,
        "recipes/needsenv.toml",
        &format!(
            "[package]\nname = \"needsenv\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/needsenv\"\n[env]\nFOO = \"1\"\n[build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{{{ out }}}} .\"]\n{verify}"
        ),
    );
}

/// Regression: build-time verify used to run with the recipe's build environment, so a wheel
/// that only imports with the recipe's `[env]` set passed.
#[test]
fn verify_fails_a_wheel_that_needs_the_recipe_env() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    add_needs_env(dir, true);
    let out = build(dir, &["needsenv"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("needsenv: verify failed (exit status 1)"),
        "{err}"
    );
    assert!(err.contains("needsenv only works with FOO set"), "{err}");
    assert!(err.contains("logs/needsenv/verify.log"), "{err}");
    assert!(log(dir, "needsenv", "verify.log").contains("needsenv only works with FOO set"));
    assert!(dir
        .join("wheelhouse/broken/needsenv-1.0.0-py3-none-any.whl")
        .is_file());
}

/// `jetforge verify` on the wheelhouse's wheel fails it too, even when the caller's shell has
/// the recipe's variable (e.g. after `eval "$(jetforge env needsenv)"`).
#[test]
fn jetforge_verify_runs_without_the_recipe_env() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    add_needs_env(dir, false);
    assert_ok(&build(dir, &["needsenv"]));
    add_needs_env(dir, true);
    for env in [&[][..], &[("FOO", "1")][..]] {
        let out = jf_env(dir, &["verify", "needsenv"], env);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("needsenv only works with FOO set"), "{text}");
        assert!(text.contains("verify-venv/bin/python"), "{text}");
    }
    assert!(log(dir, "needsenv", "verify.log").contains("needsenv only works with FOO set"));
}

/// A normal set passes, each snippet in the verify venv with the caller's environment only
/// (no recipe `[env]` key even when the caller has it, no build variables), and the whole
/// output is kept in `verify.log` on success too. A second recipe reuses the venv and installs
/// only its own wheel.
#[test]
fn verify_environment_holds_no_recipe_env_key() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    let third = std::fs::read_to_string(dir.join("recipes/third.toml")).unwrap();
    write_file(
dir,
        "recipes/third.toml",
        &format!(
            "{third}\n[verify]\npython = \"\"\"\nimport os, sys, third\nleaked = [k for k in ('KERNELS_SRC', 'MAX_JOBS', 'CMAKE_BUILD_PARALLEL_LEVEL', 'PYTHONPATH') if k in os.environ]\nassert not leaked, leaked\nassert sys.prefix.endswith('verify-venv'), sys.prefix\nassert os.environ['JETFORGE_VERSION'] == '3.0.0'\nprint('clean env', third.KERNEL)\n\"\"\"\n"
        ),
    );
    let py = python();
    let out = jf_env(
        dir,
        &["build", "--python", &py, "--system-site-packages"],
        &[("KERNELS_SRC", "/from/the/shell")],
    );
    assert_ok(&out);
    let third_log = log(dir, "third", "verify.log");
    assert!(
        third_log.contains("clean env fast-attention-v1"),
        "{third_log}"
    );
    assert!(log(dir, "first", "verify.log").contains("import first"));
    // third's venv sync installed third only: first and second were already there.
    let installs = third_log
        .lines()
        .filter(|l| l.starts_with("$ ") && l.contains("install"))
        .collect::<Vec<_>>();
    assert_eq!(installs.len(), 1, "{third_log}");
    assert!(
        installs[0].ends_with("third-3.0.0-py3-none-any.whl"),
        "{third_log}"
    );

    let again = jf_env(dir, &["verify"], &[("KERNELS_SRC", "/from/the/shell")]);
    assert_ok(&again);
    assert!(stdout(&again).contains("clean env"), "{}", stdout(&again));
}

/// #12 item 8: after a recipe changed and its rebuild failed, `install` refuses the old wheel,
/// saying what changed and how to build it; `--allow-stale` installs it with a warning.
#[test]
fn install_refuses_a_stale_wheel() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    assert_ok(&build(dir, &["solo"]));
    let recipe = std::fs::read_to_string(dir.join("recipes/solo.toml")).unwrap();
    write_file(
        dir,
        "recipes/solo.toml",
        &recipe.replace(
            "steps = [\"python",
            "steps = [\"echo broken >&2; exit 3\", \"python",
        ),
    );
    let failed = build(dir, &["solo"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));

    let venv = dir.join("venv");
    let install = |extra: &[&str]| {
        let mut args = vec!["install", "--venv", venv.to_str().unwrap(), "--python"];
        let py = python();
        args.push(&py);
        args.extend_from_slice(extra);
        args.push("solo");
        jf(dir, &args)
    };
    let refused = install(&[]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("solo: `solo-0.5.0-py3-none-any.whl` is stale: recipe changed"),
        "{err}"
    );
    assert!(err.contains("jetforge build solo"), "{err}");
    assert!(err.contains("--allow-stale"), "{err}");
    assert!(!venv.join("bin/python").exists() || !stdout(&refused).contains("installed"));

    let allowed = install(&["--allow-stale"]);
    assert_ok(&allowed);
    assert!(
        stderr(&allowed).contains("warning: installing stale wheels (--allow-stale)"),
        "{}",
        stderr(&allowed)
    );
    assert!(stdout(&allowed).contains("installed solo 0.5.0"));
}

/// A recipe whose wheel's distribution has another name (`ms-renamed` builds `msr-real`).
fn add_renamed(dir: &Path, recipe: &str) {
    write_file(
dir,
        &format!("src/{recipe}/setup.py"),
        "from setuptools import setup\nsetup(name='msr-real', version='1.0.0', py_modules=['msr_real'])\n",
    );
    write_file(dir, &format!("src/{recipe}/msr_real.py"), "X = 1\n");
    write_file(
dir,
        &format!("recipes/{recipe}.toml"),
        &format!(
            "[package]\nname = \"{recipe}\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/{recipe}\"\n[build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{{{ out }}}} .\"]\n[verify]\npython = \"import msr_real\"\n"
        ),
    );
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("wheelhouse/manifest.json")).unwrap()).unwrap()
}

/// #12 item 9: install finds a recipe's wheel by what the manifest records from METADATA,
/// whatever the recipe is called.
#[test]
fn a_recipe_named_unlike_its_distribution_installs() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    add_renamed(dir, "ms-renamed");
    assert_ok(&build(dir, &["ms-renamed"]));
    let m = manifest(dir);
    let entry = &m["wheels"][0];
    assert_eq!(entry["package"], "msr-real");
    assert_eq!(entry["recipe"], "ms-renamed");
    let venv = dir.join("venv");
    let out = jf(
        dir,
        &[
            "install",
            "--venv",
            venv.to_str().unwrap(),
            "--python",
            &python(),
            "ms-renamed",
        ],
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("installed msr-real 1.0.0"),
        "{}",
        stdout(&out)
    );
    let again = build(dir, &["ms-renamed"]);
    assert_ok(&again);
    assert!(stdout(&again).contains("cached"), "{}", stdout(&again));
}

/// Two recipes whose wheels are the same distribution (found in METADATA): a build error naming
/// both, and the first recipe's wheel stays (no overwrite-and-rebuild loop).
#[test]
fn two_recipes_building_one_distribution_is_a_build_error() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    add_renamed(dir, "ms-renamed");
    add_renamed(dir, "ms-twin");
    for _ in 0..2 {
        let out = build(dir, &["ms-renamed", "ms-twin", "--keep-going"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("ms-twin: its wheel `msr_real-1.0.0-py3-none-any.whl` is distribution `msr-real`, which recipe `ms-renamed` of set `recipes` also produces"),
            "{err}"
        );
        let m = manifest(dir);
        assert_eq!(m["wheels"].as_array().unwrap().len(), 1, "{m}");
        assert_eq!(m["wheels"][0]["recipe"], "ms-renamed");
    }
}

/// Two recipes declaring the same distribution in `[output] wheels`: a load error (check, plan).
#[test]
fn two_recipes_declaring_one_distribution_is_a_load_error() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    for name in ["dup-a", "dup-b"] {
        write_file(
dir,
            &format!("recipes/{name}.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/solo\"\n[output]\nwheels = [\"Shared_Dist\"]\n[build]\nsteps = [\"true\"]\n"
            ),
        );
    }
    for cmd in ["check", "plan"] {
        let out = jf(dir, &[cmd]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "`dup-b` declares distribution `Shared_Dist`, which recipe `dup-a` also declares"
            ),
            "{cmd}: {err}"
        );
        assert!(err.contains("dup-b.toml:"), "{cmd}: {err}");
    }
}

/// `verify --with-deps` (as `install --with-deps`) needs a cache to install from: without
/// --index/--find-links it is refused as a usage error saying what to add.
#[test]
fn verify_with_deps_needs_a_cache() {
    let p = fixture_project("first==1.0.0");
    let out = jf(p.path(), &["verify", "--with-deps"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--with-deps applies to installing from a cache"),
        "{err}"
    );
    assert!(err.contains("add --index URL or --find-links"), "{err}");
}
