//! `[output] kind = "tree"`: a recipe whose steps install a directory tree into `${{ out }}` (an LLVM
//! install prefix in the real 0.5 set), handed to the recipes that depend on it as
//! `${{ tree_dir:NAME }}`; built once, then reused while its inputs stay the same.

use crate::build::{build, jf};
use crate::util::{stderr, stdout, tree, work_layout};

fn tree_project() -> tempfile::TempDir {
    tree(&[
        (
            "recipes/prefix.toml",
            r#"[package]
name = "prefix"
version = "1.0.0"
[source]
path = "../src/prefix"
[output]
kind = "tree"
[build]
steps = [
  "echo built >> ../prefix-builds.txt; mkdir -p ${{ out }}/share && cp answer.txt ${{ out }}/share/answer.txt",
]
"#,
        ),
        ("src/prefix/answer.txt", "42\n"),
        (
            "recipes/user.toml",
            r#"[package]
name = "user"
version = "1.0.0"
[source]
path = "../src/user"
[depends]
recipes = ["prefix"]
[env]
PREFIX_DIR = "${{ tree_dir:prefix }}"
[build]
steps = [
  "printf 'ANSWER = %s\n' \"$(cat $PREFIX_DIR/share/answer.txt)\" > user.py",
  "python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .",
]
"#,
        ),
        (
            "src/user/setup.py",
            "from setuptools import setup\nsetup(name='user', version='1.0.0', py_modules=['user'])\n",
        ),
    ])
}

#[test]
fn a_tree_recipe_installs_into_out_and_its_dependents_read_it_through_tree_dir() {
    let p = tree_project();
    let dir = p.path();
    let out = build(dir, &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let installed = work_layout(dir, "host")
        .out_dir("prefix")
        .join("share/answer.txt");
    assert_eq!(std::fs::read_to_string(&installed).unwrap(), "42\n");
    let module =
        std::fs::read_to_string(work_layout(dir, "host").source_dir("user").join("user.py"))
            .unwrap();
    assert_eq!(module, "ANSWER = 42\n");
    let wheels: Vec<String> = std::fs::read_dir(dir.join("wheelhouse"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "a tree is not a wheel: {wheels:?}");
    assert!(wheels[0].starts_with("user-1.0.0"), "{wheels:?}");

    let again = build(dir, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(work_layout(dir, "host").root.join("src/prefix-builds.txt"))
            .unwrap(),
        "built\n",
        "an unchanged tree is not rebuilt: {}",
        stdout(&again)
    );
}

#[test]
fn tree_dir_of_a_recipe_that_is_not_a_tree_is_a_load_error() {
    let p = tree_project();
    let dir = p.path();
    let f = dir.join("recipes/prefix.toml");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replace("kind = \"tree\"", "kind = \"source\"");
    std::fs::write(&f, text).unwrap();
    let out = jf(dir, &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`${{ tree_dir:prefix }}` names `prefix`, whose output is not a tree"),
        "{err}"
    );
}
