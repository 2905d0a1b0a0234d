//! `jetforge env` and `jetforge shell` reproduce exactly what a build step gets (issue #14): a
//! step dumps its environment, and both `env -i bash -c 'eval "$(jetforge env X)"; env'` and
//! `jetforge shell X --command env` must print the same variables, the shell in the prepared
//! source tree with the build venv on PATH.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::build::{jf_env, PROJECT_ARGS};
use crate::fixtures::python;
use crate::util::{jetforge, stderr, stdout, tree};

/// `env` output as a set of lines, without what every shell sets for itself.
fn vars(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| {
            !["PWD=", "SHLVL=", "_=", "OLDPWD="]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

fn project() -> tempfile::TempDir {
    tree(&[
        (
            "recipes/dump.toml",
            "[package]\nname = \"dump\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/dump\"\n\
             [env]\nDUMP_FLAVOUR = \"plain\"\n\
             [build]\nsteps = [\n  \"env > ../step-env.txt\",\n  \
             \"python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .\",\n]\n",
        ),
        (
            "src/dump/setup.py",
            "from setuptools import setup\nsetup(name='dump', version='1.0.0', py_modules=[])\n",
        ),
    ])
}

fn work_src(dir: &Path) -> std::path::PathBuf {
    let set = std::fs::read_dir(dir.join("work"))
        .unwrap()
        .flatten()
        .find(|e| e.path().join("src").is_dir())
        .unwrap()
        .path();
    set.join("src")
}

#[test]
fn env_and_shell_reproduce_the_step_environment_exactly() {
    let p = project();
    let dir = p.path();
    let py = python();
    // A variable of the caller's that steps do not get must not survive either.
    let extra = [("JETFORGE_TEST_STRAY", "leaks")];
    let o = jf_env(
        dir,
        &["build", "--python", &py, "--system-site-packages"],
        &extra,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let step = vars(&std::fs::read_to_string(work_src(dir).join("step-env.txt")).unwrap());
    assert!(step.contains("DUMP_FLAVOUR=plain"), "{step:?}");

    let env = jf_env(dir, &["env", "dump"], &extra);
    assert!(env.status.success(), "{}", stderr(&env));
    let script = format!("export JETFORGE_TEST_STRAY=leaks\n{}\nenv", stdout(&env));
    let out = Command::new("env")
        .args(["-i", "bash", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(vars(&stdout(&out)), step, "{}", stderr(&out));

    let sh = jetforge()
        .current_dir(dir)
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", "")
        .env_remove("PIP_FIND_LINKS")
        .envs(extra)
        .args(PROJECT_ARGS)
        .args(["--python", &py, "shell", "dump", "--command"])
        .arg("pwd >&2; python -c 'import sys; print(sys.prefix != sys.base_prefix)' >&2; env; exit 7")
        .output()
        .unwrap();
    assert_eq!(sh.status.code(), Some(7), "{}", stderr(&sh));
    assert_eq!(vars(&stdout(&sh)), step);
    let err = stderr(&sh);
    let src = work_src(dir).join("dump");
    assert!(
        err.contains(&format!("{}\nTrue\n", src.display())),
        "cwd is the prepared tree, python the build venv's:\n{err}"
    );
}
