//! The fixture project in `tests/fixtures/project` (see its README): tiny packages built by the
//! tests with jetforge, copied to a temp dir first so each test can change them.

use std::path::{Path, PathBuf};

pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/project")
}

/// A fresh copy of the fixture project; `second_pin` replaces `first==1.0.0` in second's
/// setup.py (to provoke a pin mismatch).
pub fn fixture_project(second_pin: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&project_dir(), dir.path());
    let setup = dir.path().join("src/second/setup.py");
    let text = std::fs::read_to_string(&setup).unwrap();
    std::fs::write(&setup, text.replace("first==1.0.0", second_pin)).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// `first`'s patch with another note (changes the patch's bytes).
pub fn first_patch(note: &str) -> String {
    std::fs::read_to_string(project_dir().join("patches/first/0001-note.patch"))
        .unwrap()
        .replace("note 1", note)
}

/// solo's setup.py, for tests that change its version.
pub fn solo_setup() -> String {
    std::fs::read_to_string(project_dir().join("src/solo/setup.py")).unwrap()
}

/// The python that tests build with (the build venv sees its site-packages: no index needed).
pub fn python() -> String {
    which::which("python3")
        .expect("python3 on PATH")
        .display()
        .to_string()
}

/// Imports the fixture set's three packages with `python` and checks what they compute.
pub fn import_check(python: &Path) {
    let check = std::process::Command::new(python)
        .args([
            "-c",
            "import first, second._magic as m, third; print(first.add(40, 2), m.magic(), third.KERNEL)",
        ])
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "42 42 fast-attention-v1",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
