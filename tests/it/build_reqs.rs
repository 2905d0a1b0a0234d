//! Build requirements like pip's, without build isolation (issue #14): a project's
//! `[build-system] requires` (or PEP 517's setuptools default) is installed into the build
//! venv, a requirement the set builds is the set's wheel, and offline builds take them from
//! jetforge's wheel cache or name exactly what is missing.

use std::path::{Path, PathBuf};

use crate::build::jf_env;
use crate::fixtures::python;
use crate::util::{stderr, stdout, tree};

/// The venv dirs of the project's work dirs.
fn venvs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("work"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("venv"))
        .filter(|p| p.is_dir())
        .collect()
}

fn remove_venvs(dir: &Path) {
    for v in venvs(dir) {
        std::fs::remove_dir_all(v).unwrap();
    }
}

#[test]
fn a_legacy_setup_py_project_with_no_depends_builds_and_then_builds_offline_from_the_cache() {
    let p = tree(&[
        (
            "recipes/legacy.toml",
            "[package]\nname = \"legacy\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/legacy\"\n\
             [build]\nsteps = [\"python setup.py -q bdist_wheel -d ${{ out }}\"]\n",
        ),
        (
            "src/legacy/setup.py",
            "from setuptools import setup\nsetup(name='legacy', version='1.0.0', py_modules=['legacy'])\n",
        ),
        ("src/legacy/legacy.py", "ANSWER = 42\n"),
    ]);
    let dir = p.path();
    let plan = jf_env(dir, &["plan"], &[]);
    let text = stdout(&plan);
    assert!(
        text.contains("build-req setuptools>=40.8.0 (PEP 517 default) from index")
            && text.contains("build-req wheel (PEP 517 default) from index"),
        "{text}"
    );

    // Online: the build venv (no system site-packages, so no `wheel`) gets the default
    // requirements; `bdist_wheel` exists.
    let py = python();
    let o = jf_env(dir, &["build", "--python", &py], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir
        .join("wheelhouse/legacy-1.0.0-py3-none-any.whl")
        .is_file());
    let cached: Vec<String> = std::fs::read_dir(dir.join("cache/wheels-v1"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(cached.iter().any(|f| f.starts_with("wheel-")), "{cached:?}");

    // Offline, in a fresh venv: from the wheel cache.
    remove_venvs(dir);
    let o = jf_env(
        dir,
        &["--offline", "build", "--python", &py, "--force", "legacy"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // Offline with an empty cache: exactly what is missing.
    remove_venvs(dir);
    std::fs::remove_dir_all(dir.join("cache/wheels-v1")).unwrap();
    let o = jf_env(
        dir,
        &["--offline", "build", "--python", &py, "--force", "legacy"],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("legacy: offline: 1 build requirement(s) missing from the wheel cache")
            && err.contains("  wheel (PEP 517 default) from index")
            && !err.contains("setuptools>=40.8.0 (PEP"),
        "{err}"
    );
}

#[test]
fn a_pyproject_build_requirement_the_set_builds_is_the_sets_wheel() {
    let p = tree(&[
        (
            "recipes/base.toml",
            "[package]\nname = \"base\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/base\"\n\
             [build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\"]\n",
        ),
        (
            "src/base/setup.py",
            "from setuptools import setup\nsetup(name='base', version='1.0.0', py_modules=['base'])\n",
        ),
        ("src/base/base.py", "NAME = 'the set'\n"),
        (
            "recipes/user.toml",
            "[package]\nname = \"user\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/user\"\n\
             [depends]\nrecipes = [\"base\"]\n\
             [build]\nsteps = [\n  \"python -c 'import base; assert base.NAME == \\\"the set\\\"'\",\n  \
             \"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\",\n]\n",
        ),
        (
            "src/user/pyproject.toml",
            "[build-system]\nrequires = [\"setuptools\", \"wheel\", \"base==1.0.0\"]\n\
             build-backend = \"setuptools.build_meta\"\n",
        ),
        (
            "src/user/setup.py",
            "from setuptools import setup\nsetup(name='user', version='1.0.0', py_modules=[])\n",
        ),
        ("index/.keep", ""),
    ]);
    let dir = p.path();
    let plan = stdout(&jf_env(dir, &["plan", "user"], &[]));
    assert!(
        plan.contains("build-req base==1.0.0 (pyproject) from set wheel of `base`")
            && plan.contains("build-req setuptools (pyproject) from index"),
        "{plan}"
    );
    // An empty index: had jetforge asked the index for `base`, the build would fail.
    let index = format!("file://{}", dir.join("index").display());
    let py = python();
    let o = jf_env(
        dir,
        &["build", "--python", &py, "--system-site-packages"],
        &[("PIP_INDEX_URL", &index), ("UV_INDEX_URL", &index)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("wheelhouse/user-1.0.0-py3-none-any.whl").is_file());
}

#[test]
fn a_set_package_build_requirement_not_built_yet_says_to_depend_on_its_recipe() {
    let p = tree(&[
        (
            "recipes/base.toml",
            "[package]\nname = \"base\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/base\"\n\
             [build]\nsteps = [\"true\"]\n",
        ),
        ("src/base/setup.py", ""),
        (
            "recipes/user.toml",
            "[package]\nname = \"user\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/user\"\n\
             [build]\nsteps = [\"true\"]\n",
        ),
        (
            "src/user/pyproject.toml",
            "[build-system]\nrequires = [\"base>=1\"]\n",
        ),
    ]);
    let dir = p.path();
    let py = python();
    let o = jf_env(
        dir,
        &["build", "--python", &py, "--system-site-packages", "user"],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "user: build requirement `base>=1` is built by the set (recipe `base`), but the \
             wheelhouse has no wheel of it for target `host`"
        ) && err.contains("add \"base\" to `[depends] recipes` in"),
        "{err}"
    );
}
