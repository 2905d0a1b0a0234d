//! The global `--wheelhouse`: every command sees the same directory, and `clean` keeps a
//! wheelhouse a build used even when `clean` itself is run without the flag.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::build::{build, jf};
use crate::fixtures::fixture_project;
use crate::util::{assert_ok as ok, plan_recipe, stderr, work_layout};

fn refused(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(out));
    assert!(
        stderr(out).contains("contains the wheelhouse"),
        "{what}: {}",
        stderr(out)
    );
}

/// The `cache` column of `solo` in `plan --json`.
fn solo_cache(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["plan", "--json", "solo"];
    args.extend_from_slice(extra);
    let out = jf(dir, &args);
    ok(&out);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    plan_recipe(&plan, "solo")["cache"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn clean_keeps_a_wheelhouse_given_only_to_build() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    let inside = work_layout(dir, "host").root.join("wheels");
    ok(&build(
        dir,
        &["solo", "--wheelhouse", inside.to_str().unwrap()],
    ));
    refused(
        &jf(dir, &["clean"]),
        "work dir holding a build's wheelhouse",
    );
    assert!(inside.join("manifest.json").is_file());

    ok(&build(dir, &["solo", "--wheelhouse", "cache/wh"]));
    refused(
        &jf(dir, &["clean", "--caches", "--wheelhouse", "elsewhere"]),
        "cache dir holding a build's wheelhouse",
    );
    assert!(dir.join("cache/wh/manifest.json").is_file());
}

#[test]
fn plan_reads_the_wheelhouse_given_by_the_global_flag() {
    let p = fixture_project("first==1.0.0");
    let dir = p.path();
    ok(&build(dir, &["solo", "--wheelhouse", "other"]));
    let cached = solo_cache(dir, &["--wheelhouse", "other"]);
    assert!(cached.starts_with("cached (solo-"), "{cached}");
    let default = solo_cache(dir, &[]);
    assert!(default.starts_with("will build"), "{default}");
}
