//! `jetforge schema`: the JSON Schema validates both embedded sets, and the README's recipe
//! reference is exactly what the schema types generate.

use std::path::Path;
use std::process::Command;

use crate::util::{jetforge, stderr, stdout};

fn schema(args: &[&str]) -> String {
    let out = jetforge().arg("schema").args(args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn readme_recipe_reference_is_generated_from_the_schema_types() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let begin = "<!-- BEGIN generated: jetforge schema --markdown recipe -->\n";
    let end = "<!-- END generated: jetforge schema --markdown recipe -->";
    let start = readme.find(begin).expect("README has the begin marker") + begin.len();
    let stop = readme.find(end).expect("README has the end marker");
    assert!(
        readme[start..stop] == schema(&["--markdown", "recipe"]),
        "README's recipe reference differs from `jetforge schema --markdown recipe`: paste its \
         output between the markers"
    );
}

/// Validates TOML files against a schema with Python's `jsonschema` (installed by .ci/run).
const VALIDATE: &str = r#"
import json, sys, tomllib
from jsonschema import Draft202012Validator as V
schema = json.load(open(sys.argv[1]))
V.check_schema(schema)
bad = 0
for path in sys.argv[2:]:
    expect_error = path.endswith(".bad.toml")
    errors = list(V(schema).iter_errors(tomllib.load(open(path, "rb"))))
    if bool(errors) != expect_error:
        bad += 1
        print(path, [e.message for e in errors] or "validated but should not")
print("checked", len(sys.argv) - 2)
sys.exit(1 if bad else 0)
"#;

fn python_jsonschema() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import jsonschema, tomllib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg =
            "schema tests: python3 with `jsonschema` (pip install jsonschema, as .ci/run does)";
        if std::env::var_os("CI").is_some() {
            panic!("missing {msg}");
        }
        eprintln!("\n!!!!!!!!!! SKIPPED: missing {msg} !!!!!!!!!!\n");
    }
    ok
}

fn validate(kind: &str, files: &[std::path::PathBuf]) {
    let dir = tempfile::tempdir().unwrap();
    let schema_file = dir.path().join(format!("{kind}.schema.json"));
    std::fs::write(&schema_file, schema(&[kind])).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&schema_file)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kind}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("checked {}", files.len())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_schema_validates_both_embedded_sets_and_rejects_unknown_keys() {
    if !python_jsonschema() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut recipes = Vec::new();
    for set in [
        "recipes/jp6-vllm-0.12",
        "recipes/jp6-vllm-0.5",
        "tests/fixtures/project/recipes",
    ] {
        for e in std::fs::read_dir(root.join(set)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") && !p.ends_with("set.toml") {
                recipes.push(p);
            }
        }
    }
    assert!(recipes.len() >= 20, "{recipes:?}");
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("typo.bad.toml", "[package]\nname = \"a\"\nversion = \"1\"\nverison = \"2\"\n[source]\npath = \".\"\n"),
        ("kind.bad.toml", "[package]\nname = \"a\"\nversion = \"1\"\n[source]\npath = \".\"\n[output]\nkind = \"wheels\"\n"),
        ("edit.bad.toml", "[package]\nname = \"a\"\nversion = \"1\"\n[source]\npath = \".\"\n[[edit]]\nfile = \"x\"\nreplace = \"y\"\n"),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        recipes.push(p);
    }
    validate("recipe", &recipes);
    validate("targets", &[root.join("recipes/targets.toml")]);
    let config = dir.path().join("jetforge.toml");
    std::fs::write(
        &config,
        "[network]\nproxy = \"http://proxy:3128\"\noffline = false\n[mirrors]\n\"https://github.com/\" = \"file:///m/\"\n[cache]\nindexes = [\"https://x/\"]\n",
    )
    .unwrap();
    validate("config", &[config]);
}
