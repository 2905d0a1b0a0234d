//! Every kind of recipe error is reported with file:line:col, the offending text and a hint,
//! and exits with 2. Each test guards one error kind; the snapshots are what a user sees.

use crate::util::{check_recipes, redact_dir, stderr, tree};

const GOOD: &str = r#"[package]
name = "first"
version = "1.0.0"

[source]
git = "https://example.invalid/first.git"
tag = "v1.0.0"
commit = "0123456789abcdef0123456789abcdef01234567"

[build]
steps = ["python -m pip wheel --no-build-isolation --no-deps -w ${{ out }} ."]
"#;

/// Runs `check` on a recipe tree and returns the redacted stderr; asserts exit code 2.
fn check_fails(files: &[(&str, &str)]) -> String {
    let dir = tree(files);
    let out = check_recipes(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    redact_dir(&stderr(&out), dir.path())
}

fn with(find: &str, replace: &str) -> String {
    assert!(GOOD.contains(find), "{find}");
    GOOD.replacen(find, replace, 1)
}

#[test]
fn good_recipe_checks() {
    let dir = tree(&[("recipes/first.toml", GOOD)]);
    check_recipes(dir.path()).assert().success();
}

#[test]
fn toml_syntax_error() {
    let text = with("version = \"1.0.0\"", "version = \"1.0.0");
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn unknown_key() {
    let text = with("tag = ", "tga = \"x\"\ntag = ");
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn missing_required_field() {
    let text = with("version = \"1.0.0\"\n", "");
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn commit_not_40_hex() {
    let text = with("0123456789abcdef0123456789abcdef01234567", "v1.0.0");
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn duplicate_package_name() {
    insta::assert_snapshot!(check_fails(&[
        ("recipes/a.toml", GOOD),
        ("recipes/b.toml", GOOD)
    ]));
}

#[test]
fn dependency_on_unknown_recipe() {
    let text = with("[build]", "[depends]\nrecipes = [\"torhc\"]\n\n[build]");
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn dependency_cycle_prints_the_cycle() {
    let dep = |name: &str, on: &str| {
        with("name = \"first\"", &format!("name = \"{name}\"")).replace(
            "[build]",
            &format!("[depends]\nrecipes = [\"{on}\"]\n\n[build]"),
        )
    };
    insta::assert_snapshot!(check_fails(&[
        ("recipes/a.toml", &dep("a", "b")),
        ("recipes/b.toml", &dep("b", "c")),
        ("recipes/c.toml", &dep("c", "a")),
    ]));
}

#[test]
fn unknown_template_variable() {
    let text = with("-w ${{ out }} .", "-w ${{ out }} -j ${{ jbos }} .");
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn patch_file_missing() {
    let text = with(
        "[build]",
        "[[patch]]\nfile = \"first/0001-sm87.patch\"\n\n[build]",
    );
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn bad_sha256() {
    let text = with(
        "[build]",
        "[[resource]]\nname = \"llvm\"\nurl = \"https://example.invalid/llvm.tar.gz\"\nsha256 = \"abc123\"\n\n[build]",
    );
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn edit_with_count_zero() {
    let text = with(
        "[build]",
        "[[edit]]\nfile = \"setup.py\"\nfind = \"sm_90\"\nreplace = \"sm_87\"\ncount = 0\n\n[build]",
    );
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn edit_without_find() {
    let text = with(
        "[build]",
        "[[edit]]\nfile = \"setup.py\"\nreplace = \"sm_87\"\n\n[build]",
    );
    insta::assert_snapshot!(check_fails(&[("recipes/first.toml", &text)]));
}

#[test]
fn every_error_of_a_set_is_reported_at_once() {
    let a = with("0123456789abcdef0123456789abcdef01234567", "abc");
    let b = with("name = \"first\"", "name = \"second\"").replace("${{ out }}", "${{ outt }}");
    let out = check_fails(&[("recipes/a.toml", &a), ("recipes/b.toml", &b)]);
    assert!(out.contains("commit `abc` is not 40 hex digits"), "{out}");
    assert!(
        out.contains("unknown template variable `${{ outt }}`"),
        "{out}"
    );
    assert!(out.contains("2 errors in the recipes"), "{out}");
}

#[test]
fn computed_variables_cannot_be_set() {
    let text = with("[build]", "[env]\nMAX_JOBS = \"8\"\n\n[build]");
    let out = check_fails(&[("recipes/first.toml", &text)]);
    assert!(out.contains("`MAX_JOBS` is computed by jetforge"), "{out}");
    assert!(out.contains("first.toml:11:12"), "{out}");
}

#[test]
fn source_dir_of_a_non_dependency_is_refused() {
    let text = with("-w ${{ out }} .", "-w ${{ out }} ${{ source_dir:other }}");
    let out = check_fails(&[("recipes/first.toml", &text)]);
    assert!(
        out.contains("which is not a dependency of this recipe"),
        "{out}"
    );
    assert!(
        out.contains("hint: add \"other\" to [depends] recipes"),
        "{out}"
    );
}

#[test]
fn invalid_version_and_requirement() {
    let text = with("version = \"1.0.0\"", "version = \"one\"")
        .replace("[build]", "[depends]\npython = [\"cmake>=>3\"]\n\n[build]");
    let out = check_fails(&[("recipes/first.toml", &text)]);
    assert!(out.contains("`one` is not a PEP 440 version"), "{out}");
    assert!(
        out.contains("`cmake>=>3` is not a PEP 508 requirement"),
        "{out}"
    );
}
