//! Build requirements like pip's, without build isolation (issue #14): a project's
//! `[build-system] requires` (or PEP 517's setuptools default) is installed into the build
//! venv, a requirement the set builds is the set's wheel, and offline builds take them from
//! jetforge's wheel cache or name exactly what is missing.

use std::path::{Path, PathBuf};

use crate::build::jf_env;
use crate::fixtures::python;
use crate::util::{stderr, stdout, tree};

/// The `[build]` table of a recipe that builds its source with `pip wheel`.
const PIP_WHEEL: &str = "[build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\"]\n";

/// `recipes/NAME.toml`: `name` 1.0.0 from `src/NAME`, then `rest` (its other tables).
fn recipe(name: &str, rest: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/{name}\"\n{rest}"
    )
}

/// A `setup.py` of `name` 1.0.0 with the `py_modules` list `modules` (Python).
fn setup_py(name: &str, modules: &str) -> String {
    format!("from setuptools import setup\nsetup(name='{name}', version='1.0.0', py_modules={modules})\n")
}

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
            &recipe(
                "legacy",
                "[build]\nsteps = [\"python setup.py -q bdist_wheel -d ${{ out }}\"]\n",
            ),
        ),
        ("src/legacy/setup.py", &setup_py("legacy", "['legacy']")),
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
            &recipe("base", PIP_WHEEL),
        ),
        (
            "src/base/setup.py",
            &setup_py("base", "['base']"),
        ),
        ("src/base/base.py", "NAME = 'the set'\n"),
        (
            "recipes/user.toml",
            &recipe(
                "user",
                "[depends]\nrecipes = [\"base\"]\n\
             [build]\nsteps = [\n  \"python -c 'import base; assert base.NAME == \\\"the set\\\"'\",\n  \
             \"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\",\n]\n",
            ),
        ),
        (
            "src/user/pyproject.toml",
            "[build-system]\nrequires = [\"setuptools\", \"wheel\", \"base==1.0.0\"]\n\
             build-backend = \"setuptools.build_meta\"\n",
        ),
        (
            "src/user/setup.py",
            &setup_py("user", "[]"),
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
            &recipe("base", "[build]\nsteps = [\"true\"]\n"),
        ),
        ("src/base/setup.py", ""),
        (
            "recipes/user.toml",
            &recipe("user", "[build]\nsteps = [\"true\"]\n"),
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

/// A recipe whose steps bypass the project's declared backend (bitsandbytes' scikit-build-core
/// would rerun CMake with its own arch) leaves the project's requirements out.
#[test]
fn pyproject_false_leaves_the_projects_build_requirements_out() {
    let p = tree(&[
        (
            "recipes/own.toml",
            &recipe(
                "own",
                &format!("[depends]\npython = [\"wheel\"]\npyproject = false\n{PIP_WHEEL}"),
            ),
        ),
        (
            "src/own/pyproject.toml",
            "[build-system]\nrequires = [\"setuptools\", \"a-backend-the-steps-bypass\"]\n\
             build-backend = \"setuptools.build_meta\"\n",
        ),
        ("src/own/setup.py", &setup_py("own", "[]")),
    ]);
    let plan = stdout(&jf_env(p.path(), &["plan", "own"], &[]));
    assert!(
        plan.contains("build-req wheel (recipe) from index"),
        "{plan}"
    );
    assert!(!plan.contains("a-backend-the-steps-bypass"), "{plan}");
    assert!(!plan.contains("(pyproject)"), "{plan}");
}

/// A build tool as a wheel in `dir`: `jf_fake_tool.wheel(out)` writes the recipe's wheel.
fn fake_tool_wheel(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let whl = dir.join("jf_fake_tool-1.0-py3-none-any.whl");
    let module = "import zipfile\n\
                  def wheel(out):\n    \
                  with zipfile.ZipFile(out + '/tooluser-1.0.0-py3-none-any.whl', 'w') as z:\n        \
                  z.writestr('tooluser.py', 'X = 1\\n')\n        \
                  z.writestr('tooluser-1.0.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: tooluser\\nVersion: 1.0.0\\n')\n        \
                  z.writestr('tooluser-1.0.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n        \
                  z.writestr('tooluser-1.0.0.dist-info/RECORD', '')\n";
    let make = "import sys, zipfile\n\
                with zipfile.ZipFile(sys.argv[1], 'w') as z:\n    \
                z.writestr('jf_fake_tool.py', sys.argv[2])\n    \
                z.writestr('jf_fake_tool-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: jf-fake-tool\\nVersion: 1.0\\n')\n    \
                z.writestr('jf_fake_tool-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n    \
                z.writestr('jf_fake_tool-1.0.dist-info/RECORD', '')\n";
    let ok = std::process::Command::new(python())
        .args(["-c", make])
        .arg(&whl)
        .arg(module)
        .status()
        .unwrap();
    assert!(ok.success());
    whl
}

/// The pip seed of the cache (one interpreter: one seed).
fn seed_dir(dir: &Path) -> PathBuf {
    let seeds: Vec<PathBuf> = std::fs::read_dir(dir.join("cache/venv-seed-v1"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("seed.json").is_file())
        .collect();
    assert_eq!(seeds.len(), 1, "{seeds:?}");
    seeds[0].clone()
}

/// `venv/bin/python -m pip` and `venv/bin/pip` both run the venv's pip.
fn assert_pip_works(venv: &Path) {
    for argv in [
        vec![venv.join("bin/python"), "-m".into(), "pip".into()],
        vec![venv.join("bin/pip")],
    ] {
        let o = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .arg("--version")
            .output()
            .unwrap();
        let text = stdout(&o);
        assert!(
            o.status.success() && text.contains(&venv.display().to_string()),
            "{argv:?}: {text}{}",
            stderr(&o)
        );
    }
}

/// Issue #16 P8: a fresh work dir's fixed cost. The first build makes the pip seed and fills the
/// wheel cache from the index; a build in a fresh work dir then takes pip from the seed and its
/// build requirement from the cache without asking the index; a requirement missing from the
/// cache is downloaded again, and a damaged seed is made again.
#[test]
fn fresh_work_dirs_take_pip_from_the_seed_and_cached_build_requirements_without_the_index() {
    let p = tree(&[(
        "recipes/tooluser.toml",
        "[package]\nname = \"tooluser\"\nversion = \"1.0.0\"\n[source]\npath = \"../src\"\n\
         [depends]\npython = [\"jf-fake-tool\"]\npyproject = false\n\
         [build]\nsteps = [\"python -c 'import jf_fake_tool; jf_fake_tool.wheel(\\\"${{ out }}\\\")'\"]\n",
    ), ("src/.keep", "")]);
    let dir = p.path();
    fake_tool_wheel(&dir.join("index/simple/jf-fake-tool"));
    let server = crate::support::StaticServer::start(&dir.join("index"));
    let index = format!("{}simple/", server.url());
    let py = python();
    let build = |extra: &[&str]| {
        let mut args = vec!["-v", "build", "--python", &py, "--force", "all"];
        args.extend_from_slice(extra);
        let o = jf_env(dir, &args, &[("PIP_INDEX_URL", &index)]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        o
    };
    let asked = || {
        server
            .requests()
            .matches("GET /simple/jf-fake-tool/ HTTP")
            .count()
    };

    // First: the seed is made, the tool comes from the index into the cache.
    let o = build(&[]);
    assert!(
        stderr(&o).contains("build venv: pip from the seed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(asked(), 1, "{}", server.requests());
    let seed = seed_dir(dir);
    assert!(dir
        .join("cache/wheels-v1/jf_fake_tool-1.0-py3-none-any.whl")
        .is_file());

    // A fresh work dir: pip from the seed, the tool from the cache, no index request.
    std::fs::remove_dir_all(dir.join("work")).unwrap();
    let o = build(&[]);
    let err = stderr(&o);
    assert!(err.contains("build venv: pip from the seed"), "{err}");
    assert!(
        !err.contains("ensurepip") && !err.contains("warning"),
        "{err}"
    );
    assert_eq!(asked(), 1, "{}", server.requests());
    let venv = venvs(dir).pop().unwrap();
    assert_pip_works(&venv);
    assert!(dir
        .join("wheelhouse/tooluser-1.0.0-py3-none-any.whl")
        .is_file());

    // The tool gone from the cache and a file gone from the seed: downloaded again, seed
    // made again (with a warning), pip still works.
    std::fs::remove_file(dir.join("cache/wheels-v1/jf_fake_tool-1.0-py3-none-any.whl")).unwrap();
    std::fs::remove_dir_all(dir.join("work")).unwrap();
    let site = seed.join("site-packages/pip/__init__.py");
    std::fs::remove_file(&site).unwrap();
    let o = build(&[]);
    assert!(stderr(&o).contains("was damaged"), "{}", stderr(&o));
    assert!(site.is_file());
    assert_eq!(asked(), 2, "{}", server.requests());
    assert_pip_works(&venvs(dir).pop().unwrap());

    // With the seed off: plain `python -m venv`, pip works as well.
    std::fs::remove_dir_all(dir.join("work")).unwrap();
    let o = jf_env(
        dir,
        &["-v", "build", "--python", &py, "--force", "all"],
        &[("PIP_INDEX_URL", &index), ("JETFORGE_VENV_SEED", "0")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("pip from the seed"), "{}", stderr(&o));
    assert_pip_works(&venvs(dir).pop().unwrap());
}
