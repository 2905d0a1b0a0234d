//! Writing a recipe by hand: the `${{ }}` template syntax leaves everything else alone, and a
//! recipe in the old `{name}` syntax is refused with the exact rewrite.

use std::path::Path;

use crate::util::{jetforge, stderr, tree};

/// The prepared tree of `name` under a work dir (which holds one `<set>-<target>` directory).
fn prepared(work: &Path, name: &str) -> std::path::PathBuf {
    let roots: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().path().join("src").join(name))
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(roots.len(), 1, "{roots:?}");
    roots[0].clone()
}

#[test]
fn f_string_edit_round_trips_unchanged_through_prepare() {
    let dir = tree(&[
        (
            "recipes/fs.toml",
            r#"[package]
name = "fs"
version = "1.2.3"
[source]
path = "../src/fs"
[output]
kind = "source"
[[edit]]
file = "setup.py"
find = 'ARCH = "sm_80"'
replace = '''ARCH = f"arch=compute_{arch}"  # {_arch} {{x}} ${HOME} ${CMAKE_VAR} v${{ version }}'''
count = 1
why = "an f-string and shell/CMake text stay as written"
"#,
        ),
        ("src/fs/setup.py", "ARCH = \"sm_80\"\n"),
    ]);
    let work = dir.path().join("work");
    let out = jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .arg("--work-dir")
        .arg(&work)
        .args(["--no-progress", "prepare", "fs"])
        .env("JETFORGE_CACHE_DIR", dir.path().join("cache"))
        .env("JETFORGE_CONFIG", dir.path().join("no-config.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(prepared(&work, "fs").join("setup.py")).unwrap();
    assert_eq!(
        text,
        "ARCH = f\"arch=compute_{arch}\"  # {_arch} {{x}} ${HOME} ${CMAKE_VAR} v1.2.3\n"
    );
}

#[test]
fn old_template_syntax_fails_check_with_the_exact_rewrite() {
    let dir = tree(&[(
        "recipes/old.toml",
        r#"[package]
name = "old"
version = "1.0.0"
[source]
path = "../src/old"
[[edit]]
file = "setup.py"
find = "sm_80"
replace = '''f"sm_{_arch}" {per_arch}-gencode arch=compute_{each_arch_nodot} {end_per_arch}'''
[env]
TORCH_CUDA_ARCH_LIST = "{cuda_arch_list}"
[build]
steps = ["python -m pip wheel -w {out} . && echo {out} ${HOME}"]
"#,
    )]);
    let out = jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for (at, new, old) in [
        (
            "old.toml:9:28",
            "${{ for each_arch in cuda_archs }}",
            "{per_arch}",
        ),
        (
            "old.toml:9:60",
            "${{ each_arch_nodot }}",
            "{each_arch_nodot}",
        ),
        ("old.toml:9:78", "${{ endfor }}", "{end_per_arch}"),
        (
            "old.toml:11:25",
            "${{ cuda_arch_list }}",
            "{cuda_arch_list}",
        ),
        ("old.toml:13:34", "${{ out }}", "{out}"),
        ("old.toml:13:50", "${{ out }}", "{out}"),
    ] {
        let line = format!("error: write `{new}` instead of `{old}`\n  --> ");
        let found = err
            .split(&line)
            .skip(1)
            .any(|rest| rest.lines().next().unwrap_or("").ends_with(at));
        assert!(found, "no `{line}…{at}` in:\n{err}");
    }
    assert!(!err.contains("instead of `{_arch}`"), "{err}");
    assert!(err.contains("6 errors in the recipes"), "{err}");
}

/// A recipe with a `git format-patch` mail, a plain patch and two edits, for `plan`.
fn patched_and_edited() -> tempfile::TempDir {
    tree(&[
        (
            "recipes/pe.toml",
            r#"[package]
name = "pe"
version = "1.0.0"
[source]
path = "../src/pe"
[output]
kind = "source"
[[patch]]
file = "pe/0001-mail.patch"
[[patch]]
file = "pe/0002-plain.patch"
[[edit]]
file = "setup.py"
find = "sm_80"
replace = "sm_87"
count = 2
why = "Orin is sm_87"
[[edit]]
file = "CMakeLists.txt"
find = "x"
replace = "y"
"#,
        ),
        (
            "patches/pe/0001-mail.patch",
            "From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n\
             From: A <a@example.invalid>\nSubject: [PATCH 1/2] Make NVML optional\n\n\
             Longer text.\n---\n a | 1 +\n\ndiff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-a\n+b\n",
        ),
        (
            "patches/pe/0002-plain.patch",
            "\n  Fix the build with GCC 13.\n\nWhy: it fails.\n--- a/b\n+++ b/b\n@@ -1 +1 @@\n-a\n+b\n",
        ),
    ])
}

#[test]
fn plan_shows_each_edit_why_and_patch_header() {
    let dir = patched_and_edited();
    let run = |json: bool| {
        let mut c = jetforge();
        c.arg("--recipes").arg(dir.path().join("recipes"));
        if json {
            c.arg("--json");
        }
        let out = c.args(["plan", "pe"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        crate::util::stdout(&out)
    };
    let text = run(false);
    for needle in [
        "   patch     pe/0001-mail.patch\n             Make NVML optional\n",
        "   patch     pe/0002-plain.patch\n             Fix the build with GCC 13.\n",
        "   edit      setup.py (2 times)\n             why: Orin is sm_87\n",
        "   edit      CMakeLists.txt (once)\n",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let plan: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let r = &plan["recipes"][0];
    assert_eq!(
        r["patches"],
        serde_json::json!([
            {"file": "pe/0001-mail.patch", "header": "Make NVML optional"},
            {"file": "pe/0002-plain.patch", "header": "Fix the build with GCC 13."},
        ])
    );
    assert_eq!(
        r["edits"],
        serde_json::json!([
            {"file": "setup.py", "count": 2, "why": "Orin is sm_87"},
            {"file": "CMakeLists.txt", "count": 1, "why": null},
        ])
    );
}
