//! With `--json` an error is one JSON object on stderr (stdout stays data only), carrying the
//! same message, causes and hints as the text rendering, and recipe diagnostics with theirs.

use serde_json::Value;

use crate::util::{jetforge, stderr, stdout, tree};

fn json_error(out: &std::process::Output) -> Value {
    assert!(stdout(out).is_empty(), "stdout: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    serde_json::from_str(&err).unwrap_or_else(|e| panic!("{e}: {err}"))
}

#[test]
fn json_error_carries_the_hint() {
    let out = jetforge()
        .args(["--json", "--host-facts", "orin-nano-8g", "build"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = json_error(&out);
    assert_eq!(v["error"]["exit_code"], 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--host-facts describes another machine"),
        "{v}"
    );
    assert_eq!(
        v["error"]["hints"][0],
        "run the command on the machine itself, without --host-facts"
    );
    let text = jetforge()
        .args(["--host-facts", "orin-nano-8g", "build"])
        .output()
        .unwrap();
    assert!(
        stderr(&text)
            .ends_with("\n  = hint: run the command on the machine itself, without --host-facts\n"),
        "{}",
        stderr(&text)
    );
}

#[test]
fn json_recipe_errors_keep_file_line_and_hint() {
    let dir = tree(&[(
        "recipes/first.toml",
        "[package]\nname = \"first\"\nversion = \"1.0.0\"\nflavour = 1\n",
    )]);
    let out = jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .args(["--json", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = json_error(&out);
    let d = &v["error"]["diagnostics"][0];
    assert!(d["file"].as_str().unwrap().ends_with("first.toml"), "{v}");
    assert!(d["line"].as_u64().unwrap() > 0, "{v}");
    assert!(d.get("hint").is_some(), "{v}");
}
