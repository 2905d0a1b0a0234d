//! `jetforge export` consumed by the real tools (issue #14): a uv project that depends on the
//! set's packages gets exactly the set's wheels through `uv sync` and `uv pip install`,
//! offline, and pip gets them from the wheelhouse served over HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::build::{build, jf};
use crate::support::{run, tool_from_env, StaticServer};
use crate::util::{stderr, stdout, tree};

/// uv from `JETFORGE_TEST_UV` (CI installs it outside PATH, so that builds keep using pip), else
/// on PATH. Missing: skipped, or under CI a failure.
fn uv() -> Option<PathBuf> {
    tool_from_env("uv", "JETFORGE_TEST_UV", "uv")
}

/// Two pure wheels, `beta` requiring `alpha==1.0.0`, built into the project's wheelhouse.
fn built_set() -> tempfile::TempDir {
    let recipe = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/{name}\"\n\
             [build]\nsteps = [\"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{{{ out }}}} .\"]\n"
        )
    };
    let p = tree(&[
        ("recipes/alpha.toml", &recipe("alpha")),
        ("recipes/beta.toml", &(recipe("beta") + "[depends]\nrecipes = [\"alpha\"]\n")),
        (
            "src/alpha/setup.py",
            "from setuptools import setup\nsetup(name='alpha', version='1.0.0', py_modules=['alpha'])\n",
        ),
        ("src/alpha/alpha.py", "FROM = 'the set'\n"),
        (
            "src/beta/setup.py",
            "from setuptools import setup\nsetup(name='beta', version='1.0.0', py_modules=['beta'], install_requires=['alpha==1.0.0'])\n",
        ),
        ("src/beta/beta.py", "import alpha\nFROM = alpha.FROM\n"),
    ]);
    let o = build(p.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    p
}

/// The manifest's sha256 of each wheel.
fn hashes(dir: &Path) -> Vec<String> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.join("wheelhouse/manifest.json")).unwrap())
            .unwrap();
    m["wheels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["sha256"].as_str().unwrap().to_string())
        .collect()
}

fn export(dir: &Path, args: &[&str]) -> String {
    let o = jf(dir, &[&["export"], args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn imports_the_set(python: &Path) {
    let out = run(Command::new(python).args(["-c", "import beta; print(beta.FROM)"]));
    assert_eq!(out.trim(), "the set");
}

#[test]
fn export_uv_is_consumed_by_uv_sync_and_uv_pip_install_offline() {
    let Some(uv) = uv() else { return };
    let p = built_set();
    let dir = p.path();
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("pyproject.toml"),
        "[project]\nname = \"app\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n\
         dependencies = [\"beta\"]\n\n"
            .to_string()
            + &export(dir, &["--format", "uv"]),
    )
    .unwrap();
    let uv_cmd = |cwd: &Path| {
        let mut c = Command::new(&uv);
        c.current_dir(cwd)
            .env("UV_OFFLINE", "1")
            .env("UV_CACHE_DIR", dir.join("uv-cache"))
            .env("UV_PYTHON", crate::fixtures::python())
            .env("UV_NO_CONFIG", "1")
            .env_remove("UV_INDEX_URL")
            .env_remove("PIP_FIND_LINKS");
        c
    };
    run(uv_cmd(&app).arg("sync"));
    imports_the_set(&app.join(".venv/bin/python"));
    let lock = std::fs::read_to_string(app.join("uv.lock")).unwrap();
    for h in hashes(dir) {
        assert!(
            lock.contains(&format!("sha256:{h}")),
            "{h} not in uv.lock:\n{lock}"
        );
    }

    // `uv pip install` with the pip form: the set's index only.
    std::fs::write(dir.join("set.txt"), export(dir, &["--format", "pip"])).unwrap();
    run(uv_cmd(dir).args(["venv", "v2"]));
    run(uv_cmd(dir).args([
        "pip",
        "install",
        "--python",
        "v2/bin/python",
        "-r",
        "set.txt",
    ]));
    imports_the_set(&dir.join("v2/bin/python"));
}

#[test]
fn export_pip_installs_the_sets_wheels_from_the_served_wheelhouse() {
    let p = built_set();
    let dir = p.path();
    // The served copy has the index pages `export` writes for the local form.
    export(dir, &["--format", "constraints"]);
    let server = StaticServer::start(&dir.join("wheelhouse"));
    let index = format!("{}simple/", server.url());
    let text = export(dir, &["--format", "pip", "--index", &index]);
    assert!(text.contains(&format!("--index-url {index}\n")), "{text}");
    assert!(text.contains("\nalpha==1.0.0\nbeta==1.0.0\n"), "{text}");
    std::fs::write(dir.join("set.txt"), text).unwrap();
    let constraints = export(dir, &["--format", "constraints"]);
    assert!(
        constraints.ends_with("alpha==1.0.0\nbeta==1.0.0\n"),
        "{constraints}"
    );
    std::fs::write(dir.join("constraints.txt"), constraints).unwrap();
    run(Command::new(crate::fixtures::python())
        .args(["-m", "venv"])
        .arg(dir.join("v")));
    let out = run(Command::new(dir.join("v/bin/python"))
        .current_dir(dir)
        .env_remove("PIP_FIND_LINKS")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "-r",
            "set.txt",
            "-c",
            "constraints.txt",
            "beta",
        ]));
    assert!(
        out.contains(&format!("Looking in indexes: {index}")),
        "{out}"
    );
    imports_the_set(&dir.join("v/bin/python"));
}
