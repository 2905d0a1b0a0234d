//! What a no-op build costs and what it trusts (issues #15 and #12 item 17): it writes nothing,
//! trusts a wheel by its stat data and re-hashes it when that changed (a rewrite in place with
//! size and mtime restored included), says why it rebuilds, rebuilds a lost manifest from the
//! wheels on disk, and `plan` reads the wheelhouse that `--wheelhouse` names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::build::{build, jf};
use crate::util::{stderr, stdout, tree};

/// Writes a pure wheel `NAME-VERSION-py3-none-any.whl` into the directory `argv[1]`: a build
/// step that costs one Python start, not a pip run.
const MKWHEEL: &str = r#"import sys, zipfile
out, name, version = sys.argv[1:4]
dist = name.replace("-", "_")
with zipfile.ZipFile(f"{out}/{dist}-{version}-py3-none-any.whl", "w") as z:
    z.writestr(f"{dist}/__init__.py", open("note.txt").read())
    z.writestr(f"{dist}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    z.writestr(f"{dist}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{dist}-{version}.dist-info/RECORD", "")
"#;

/// Two wheel recipes from local sources (one patched) and a source tree one of them uses.
fn project() -> tempfile::TempDir {
    let wheel = |name: &str, extra: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0\"\n[source]\npath = \"../src/{name}\"\n{extra}\
             [build]\nsteps = [\"python mkwheel.py ${{{{ out }}}} {name} 1.0\"]\n"
        )
    };
    let alpha = wheel("alpha", "[[patch]]\nfile = \"alpha/0001-note.patch\"\n");
    let beta = wheel("beta", "[depends]\nrecipes = [\"tree\"]\n");
    tree(&[
        ("recipes/alpha.toml", &alpha),
        ("recipes/beta.toml", &beta),
        (
            "recipes/tree.toml",
            "[package]\nname = \"tree\"\nversion = \"1.0\"\n[source]\npath = \"../src/tree\"\n[output]\nkind = \"source\"\n",
        ),
        (
            "patches/alpha/0001-note.patch",
            "--- a/note.txt\n+++ b/note.txt\n@@ -1 +1,2 @@\n alpha\n+patched\n",
        ),
        ("src/alpha/note.txt", "alpha\n"),
        ("src/alpha/mkwheel.py", MKWHEEL),
        ("src/beta/note.txt", "beta\n"),
        ("src/beta/mkwheel.py", MKWHEEL),
        ("src/tree/kernel.txt", "k\n"),
    ])
}

fn built(dir: &Path, extra: &[&str]) -> (String, String) {
    let out = build(dir, extra);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}\n{e}");
    (o, e)
}

/// Every file below `dir` with its mtime and ctime.
fn times(dir: &Path) -> BTreeMap<PathBuf, (SystemTime, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.insert(
                e.path(),
                (
                    meta.modified().unwrap(),
                    meta.ctime_nsec() + meta.ctime() * 1_000_000_000,
                ),
            );
        }
    }
    out
}

fn wheel_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("wheelhouse/{name}-1.0-py3-none-any.whl"))
}

#[test]
fn a_noop_build_writes_nothing() {
    let p = project();
    let dir = p.path();
    built(dir, &[]);
    let before_work = times(&dir.join("work"));
    let before_house = times(&dir.join("wheelhouse"));
    let (out, _) = built(dir, &[]);
    assert!(out.contains("alpha") && out.contains("cached ("), "{out}");
    let mut after_work = times(&dir.join("work"));
    // The work-dir lock is taken (and its holder's pid written) by every build: the one file a
    // no-op must touch, so that a second jetforge can say who holds it.
    let lock = |m: &mut BTreeMap<PathBuf, _>| {
        m.retain(|p: &PathBuf, _| !p.to_string_lossy().ends_with(".lock"))
    };
    let mut before_work = before_work;
    lock(&mut before_work);
    lock(&mut after_work);
    assert_eq!(before_work, after_work, "the work dir changed");
    assert_eq!(
        before_house,
        times(&dir.join("wheelhouse")),
        "the wheelhouse changed"
    );
}

#[test]
fn a_wheel_rewritten_in_place_with_size_and_mtime_restored_is_rebuilt_with_the_reason() {
    let p = project();
    let dir = p.path();
    built(dir, &[]);
    let wheel = wheel_path(dir, "alpha");
    let mtime = std::fs::metadata(&wheel).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    // Same size, same inode (written in place), mtime put back: only the ctime tells.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wheel)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&bytes)?;
            f.set_modified(mtime)
        })
        .unwrap();
    let (out, err) = built(dir, &["-v"]);
    assert!(
        err.contains(
            "alpha: rebuilding: wheel alpha-1.0-py3-none-any.whl changed on disk (sha256 "
        ),
        "{err}"
    );
    assert!(out.contains("beta") && out.contains("cached ("), "{out}");
    let (out, err) = built(dir, &["-v"]);
    assert_eq!(out.matches("cached (").count(), 2, "{out}");
    assert!(
        !err.contains("rebuilding"),
        "the rebuilt wheel is trusted again: {err}"
    );
}

#[test]
fn a_deleted_manifest_is_rebuilt_from_the_wheels_on_disk() {
    let p = project();
    let dir = p.path();
    built(dir, &[]);
    let manifest = dir.join("wheelhouse/manifest.json");
    let old: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let (out, err) = built(dir, &["-v"]);
    assert!(
        err.contains("manifest missing: re-read 2 wheels from disk (2 entries recovered)"),
        "{err}"
    );
    assert!(!err.contains("rebuilding"), "{err}");
    assert_eq!(out.matches("cached (").count(), 2, "{out}");
    let new: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    for key in [
        "package",
        "version",
        "file",
        "sha256",
        "fingerprint",
        "target",
    ] {
        for i in 0..2 {
            assert_eq!(old["wheels"][i][key], new["wheels"][i][key], "{key}");
        }
    }

    // A wheel without its build record cannot be trusted: it is rebuilt, and -v says why.
    std::fs::remove_file(&manifest).unwrap();
    std::fs::remove_file(dir.join("wheelhouse/.records/beta-1.0-py3-none-any.whl.json")).unwrap();
    let (_, err) = built(dir, &["-v"]);
    assert!(
        err.contains("left out, will be rebuilt: beta-1.0-py3-none-any.whl: no build record"),
        "{err}"
    );
    assert!(
        err.contains("beta: rebuilding: no wheel of this build is recorded in the wheelhouse"),
        "{err}"
    );
}

#[test]
fn verify_wheels_rehashes_and_plan_reads_the_named_wheelhouse() {
    let p = project();
    let dir = p.path();
    built(dir, &["--wheelhouse", "elsewhere"]);
    let (out, _) = built(dir, &["--wheelhouse", "elsewhere", "--verify-wheels"]);
    assert_eq!(out.matches("cached (").count(), 2, "{out}");
    let plan = stdout(&jf(dir, &["plan", "all", "--wheelhouse", "elsewhere"]));
    assert!(
        plan.contains("cached (alpha-1.0-py3-none-any.whl)"),
        "{plan}"
    );
    let plan = stdout(&jf(dir, &["plan", "all"]));
    assert!(!plan.contains("cached ("), "{plan}");
}

/// `check` for a profile target needs no Python: none is started (a pyenv shim alone costs
/// ~65 ms). The `host` target is made of this machine's Python, so there it is asked.
#[test]
fn check_starts_no_python_unless_the_target_is_host() {
    let p = project();
    let dir = p.path();
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("python3");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ntouch '{}'\nexec '{}' \"$@\"\n",
            dir.join("python-ran").display(),
            crate::fixtures::python()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let check = |target: &str| {
        crate::util::jetforge()
            .current_dir(dir)
            .env("PATH", &path)
            .env("JETFORGE_CONFIG", dir.join("none.toml"))
            .args(["--recipes", "recipes", "--target", target, "check"])
            .output()
            .unwrap()
    };
    let out = check("jetson-orin");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.join("python-ran").exists(), "check started python3");
    let out = check("host");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        dir.join("python-ran").exists(),
        "the host target asks python3"
    );
}
