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

/// Puts the stand-in torch of `tests/fixtures/fake-torch` (see its README) into `venv`'s
/// site-packages, so `verify --nccl` runs jetforge's real NCCL script against it.
pub fn fake_torch_into(venv: &Path) {
    let out = std::process::Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let site = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-torch/torch"),
        &site.join("torch"),
    );
}

/// A stand-in `nvidia-smi` in `dir/bin` listing `gpus` GPUs (as on an Orin: one); returns a
/// PATH with it first.
pub fn fake_nvidia_smi(dir: &Path, gpus: u32) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let lines: String = (0..gpus)
        .map(|i| {
            format!(
                "echo 'GPU {i}: Orin (nvgpu) (UUID: GPU-00000000-0000-0000-0000-00000000000{i})'\n"
            )
        })
        .collect();
    let smi = bin.join("nvidia-smi");
    std::fs::write(&smi, format!("#!/bin/sh\n{lines}")).unwrap();
    std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
