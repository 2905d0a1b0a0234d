//! Cross-building on x86-64 for aarch64 (issue 6): the `first` fixture (a C extension) built
//! with the cross toolchain against a Debian arm64 CPython 3.11 sysroot (made by
//! `scripts/make-arm64-sysroot.sh`), checked at the ELF level and imported under qemu; native
//! builds untouched; recipes not marked cross-capable refused before anything runs; ccache hits
//! across fresh work dirs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

use crate::build::jf;
use crate::fixtures::{fixture_project, python};
use crate::support::have_tools;
use crate::util::{jetforge, stderr, stdout, work_layout};

const TARGET: &str = "debian-arm64";
/// `e_machine` of AArch64 in the ELF header (bytes 18..20, little-endian).
const EM_AARCH64: u16 = 183;
const VERIFY: &str =
    "import first; r = first.add(2, 3); print('first.add(2, 3) =', r); assert r == 5";

/// The Debian arm64 sysroot, made once per test run (the script is idempotent, so CI's earlier
/// run of it makes this instant); None when the cross tools are missing outside CI.
fn sysroot() -> Option<&'static Path> {
    static SYSROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            let tools = [
                "aarch64-linux-gnu-gcc",
                "qemu-aarch64-static",
                "apt-get",
                "dpkg",
            ];
            if !have_tools("cross", &tools) {
                return None;
            }
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("arm64-sysroot");
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-arm64-sysroot.sh");
            let start = Instant::now();
            let out = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .output()
                .unwrap();
            eprintln!(
                "sysroot setup ({:.1}s):\n{}{}",
                start.elapsed().as_secs_f64(),
                stdout(&out),
                stderr(&out)
            );
            if out.status.success() {
                return Some(dir);
            }
            let msg = format!(
                "cross: {} failed (needs root and the Debian mirror)",
                script.display()
            );
            if std::env::var_os(jetforge::envvars::CI).is_some() {
                panic!("{msg}");
            }
            eprintln!("\n!!!!!!!!!! SKIPPED {msg} !!!!!!!!!!\n");
            None
        })
        .as_deref()
}

/// `targets.toml` for the fixture's recipe dir: the aarch64 profile on `sysroot`.
fn targets_toml(sysroot: &Path, launcher: Option<&str>) -> String {
    let launcher = launcher.map_or(String::new(), |l| format!("launcher = \"{l}\"\n"));
    format!(
        "[target.{TARGET}]\ndescription = \"test\"\narch = \"aarch64\"\ncuda_arch_list = []\npython = \"3.11\"\n\
         platform_tag = \"linux_aarch64\"\n[target.{TARGET}.cross]\nsysroot = \"{}\"\n\
         emulator = [\"qemu-aarch64-static\", \"-L\", \"{{sysroot}}\"]\n{launcher}",
        sysroot.display()
    )
}

/// The fixture project with `first` marked cross-capable (`cross`) and printing its result.
fn cross_project(sysroot: &Path, cross: &str, launcher: Option<&str>) -> tempfile::TempDir {
    let p = fixture_project("first==1.0.0");
    let recipe = p.path().join("recipes/first.toml");
    let text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("[build]\n", &format!("[build]\ncross = {cross}\n"))
        .replace("import first; assert first.add(2, 3) == 5", VERIFY);
    std::fs::write(&recipe, text).unwrap();
    std::fs::write(
        p.path().join("recipes/targets.toml"),
        targets_toml(sysroot, launcher),
    )
    .unwrap();
    p
}

fn jf_cross(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    jetforge()
        .current_dir(dir)
        .env("JETFORGE_CACHE_DIR", dir.join("cache"))
        .env("JETFORGE_CONFIG", "")
        .env_remove("PIP_FIND_LINKS")
        .envs(envs.iter().copied())
        .args([
            "--recipes",
            "recipes",
            "--work-dir",
            "work",
            "--target",
            TARGET,
            "--no-progress",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn cross_build(dir: &Path, envs: &[(&str, &str)]) -> Output {
    let py = python();
    let start = Instant::now();
    let out = jf_cross(
        dir,
        envs,
        &["build", "--python", &py, "--system-site-packages", "first"],
    );
    eprintln!("cross build: {:.1}s", start.elapsed().as_secs_f64());
    if !out.status.success() {
        let log = std::fs::read_to_string(
            work_layout(dir, TARGET)
                .log_dir("first")
                .join("01-step-1.log"),
        )
        .unwrap_or_default();
        panic!("{}\n{}\nLOG:\n{log}", stdout(&out), stderr(&out));
    }
    out
}

/// The `.so` files of a wheel: (name in the archive, bytes).
fn shared_objects(wheel: &Path) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().to_string())
        .filter(|n| n.ends_with(".so"))
        .collect();
    names
        .into_iter()
        .map(|n| {
            let mut bytes = Vec::new();
            zip.by_name(&n).unwrap().read_to_end(&mut bytes).unwrap();
            (n, bytes)
        })
        .collect()
}

fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[5], 1, "little-endian ELF expected");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
fn c_extension_cross_built_for_aarch64_runs_under_qemu() {
    let Some(sysroot) = sysroot() else { return };
    let p = cross_project(sysroot, "true", None);
    let dir = p.path();
    let out = cross_build(dir, &[]);
    let err = stderr(&out);
    let wheel = dir.join("wheelhouse/first-1.0.0-cp311-cp311-linux_aarch64.whl");
    assert!(wheel.is_file(), "{}\n{err}", stdout(&out));
    let sos = shared_objects(&wheel);
    assert_eq!(
        sos.len(),
        1,
        "{:?}",
        sos.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let (name, bytes) = &sos[0];
    assert_eq!(name, "first/_ext.cpython-311-aarch64-linux-gnu.so");
    assert_eq!(elf_machine(bytes), EM_AARCH64);
    let so = dir.join("ext.so");
    std::fs::write(&so, bytes).unwrap();
    if let Ok(file) = Command::new("file").arg(&so).output() {
        eprintln!("file: {}", stdout(&file).trim());
    }
    assert!(
        err.contains("first: verify (qemu-aarch64-static): first.add(2, 3) = 5"),
        "the verify snippet must have run under qemu:\n{err}"
    );
    eprintln!(
        "verify output:\n{}",
        err.lines()
            .filter(|l| l.contains("verify"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let venv_site = dir.join(format!(
        "work/recipes-{TARGET}/venv/lib/python3.11/site-packages/first"
    ));
    assert!(
        !venv_site.exists(),
        "an aarch64 wheel must not go into the x86 build venv"
    );

    let env = jf_cross(dir, &[], &["env", "first", "--format", "json"]);
    let env: Value = serde_json::from_slice(&env.stdout).unwrap();
    assert_eq!(env["_PYTHON_HOST_PLATFORM"], "linux-aarch64");
    assert_eq!(env["CROSS_COMPILING"], "1");
    let plan = jf_cross(dir, &[], &["plan", "first"]);
    assert!(
        stdout(&plan).contains("Cross: built on x86_64 for aarch64"),
        "{}",
        stdout(&plan)
    );
    assert!(
        stdout(&plan).contains("CC=aarch64-linux-gnu-gcc  # cross"),
        "{}",
        stdout(&plan)
    );
}

/// Every variable the cross mode adds; none may appear in a native build.
const CROSS_VARS: &[&str] = &[
    "CROSS_COMPILING",
    "CC",
    "CXX",
    "AR",
    "LDSHARED",
    "LDCXXSHARED",
    "_PYTHON_HOST_PLATFORM",
    "_PYTHON_SYSCONFIGDATA_NAME",
    "PYTHONPATH",
    "CPPFLAGS",
    "LDFLAGS",
    "CMAKE_TOOLCHAIN_FILE",
    "NVCC_PREPEND_FLAGS",
    "CUDA_TARGET_DIR",
];

#[test]
fn native_build_of_the_same_fixture_gets_no_cross_variables() {
    let p = cross_project(Path::new("/nonexistent-sysroot"), "true", None);
    let dir = p.path();
    let env = jf(dir, &["env", "first", "--format", "json"]);
    assert!(env.status.success(), "{}", stderr(&env));
    let env: Value = serde_json::from_slice(&env.stdout).unwrap();
    for var in CROSS_VARS {
        assert!(
            env.get(var).is_none(),
            "{var} leaked into a native build: {env}"
        );
    }
    let out = crate::build::build(dir, &["first"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let machine = std::env::consts::ARCH;
    assert!(
        dir.join(format!(
            "wheelhouse/first-1.0.0-cp311-cp311-linux_{machine}.whl"
        ))
        .is_file(),
        "{}",
        stdout(&out)
    );
    assert!(
        !work_layout(dir, "host").cross_dir().exists(),
        "no cross files in a native build"
    );
}

#[test]
fn recipes_not_marked_cross_capable_are_refused_before_anything_runs() {
    let p = cross_project(Path::new("/nonexistent-sysroot"), "false", None);
    let dir = p.path();
    let out = jf_cross(dir, &[], &["build", "first", "solo"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in [
        "target `debian-arm64` is a cross build, and these recipes cannot be cross-built:",
        "first (",
        "`[build] cross = false`",
        "solo (",
        "does not say whether it can be cross-built",
        "hint: build them on the target itself",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let root = work_layout(dir, TARGET).root;
    for nothing in ["src", "venv", "cross", "logs"] {
        assert!(!root.join(nothing).exists(), "{nothing} was created");
    }
}

/// `ccache --print-stats` as key → count.
fn ccache_stats(ccache_dir: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = Command::new("ccache")
        .arg("--print-stats")
        .env("CCACHE_DIR", ccache_dir)
        .output()
        .unwrap();
    stdout(&out)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn hits(stats: &std::collections::BTreeMap<String, u64>) -> u64 {
    stats.get("direct_cache_hit").copied().unwrap_or(0)
        + stats.get("preprocessed_cache_hit").copied().unwrap_or(0)
}

#[test]
fn second_cross_build_in_a_fresh_work_dir_hits_ccache() {
    let Some(sysroot) = sysroot() else { return };
    if !have_tools("cross ccache", &["ccache"]) {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let ccache_dir = cache.path().join("ccache");
    let base = std::env::temp_dir().canonicalize().unwrap();
    let envs = [
        ("CCACHE_DIR", ccache_dir.to_str().unwrap()),
        ("CCACHE_NOHASHDIR", "1"),
        ("CCACHE_BASEDIR", base.to_str().unwrap()),
    ];
    let first = cross_project(sysroot, "true", Some("ccache"));
    cross_build(first.path(), &envs);
    let after_first = ccache_stats(&ccache_dir);
    let misses = after_first.get("cache_miss").copied().unwrap_or(0);
    assert!(
        misses >= 1,
        "the first build must compile through ccache: {after_first:?}"
    );
    assert_eq!(hits(&after_first), 0, "{after_first:?}");

    let second = cross_project(sysroot, "true", Some("ccache"));
    cross_build(second.path(), &envs);
    let after_second = ccache_stats(&ccache_dir);
    assert!(hits(&after_second) >= 1, "no cache hit: {after_second:?}");
    assert_eq!(
        after_second.get("cache_miss").copied().unwrap_or(0),
        misses,
        "the second build must not miss: {after_second:?}"
    );
    let summary = Command::new("ccache")
        .arg("-s")
        .env("CCACHE_DIR", &ccache_dir)
        .output()
        .unwrap();
    eprintln!("ccache -s:\n{}", stdout(&summary));
}
