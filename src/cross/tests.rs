use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::recipe::tree::FileTree;

fn targets() -> Vec<Target> {
    crate::target::load_targets(&FileTree::empty("x")).unwrap()
}

fn target(name: &str) -> Target {
    targets().into_iter().find(|t| t.name == name).unwrap()
}

fn cross_for(name: &str) -> Cross {
    match mode(
        &target(name),
        "x86_64",
        Some(Path::new("/sr")),
        Path::new("/w/cross"),
    )
    .unwrap()
    {
        Mode::Cross(c) => *c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn same_cpu_is_native_whatever_the_profile_says() {
    let m = mode(&target("debian-arm64"), "aarch64", None, Path::new("/w")).unwrap();
    assert!(matches!(m, Mode::Native));
}

#[test]
fn another_cpu_without_cross_settings_is_reported_as_such() {
    let m = mode(&target("jetson-orin"), "x86_64", None, Path::new("/w")).unwrap();
    match m {
        Mode::NoCrossSettings(p) => {
            assert_eq!((p.build.as_str(), p.host.as_str()), ("x86_64", "aarch64"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_sysroot_placeholder_needs_a_configured_sysroot() {
    let err = mode(&target("debian-arm64"), "x86_64", None, Path::new("/w")).unwrap_err();
    assert!(err.to_string().contains("none is configured"), "{err}");
}

#[test]
fn defaults_come_from_the_triple() {
    let c = cross_for("debian-arm64");
    assert_eq!(c.spec.cc, "aarch64-linux-gnu-gcc");
    assert_eq!(c.spec.ar, "aarch64-linux-gnu-ar");
    assert_eq!(
        c.spec.python_sysconfigdata,
        "_sysconfigdata__linux_aarch64-linux-gnu"
    );
    assert_eq!(
        c.sysconfigdata_source(),
        Path::new("/sr/usr/lib/python3.11/_sysconfigdata__linux_aarch64-linux-gnu.py")
    );
    assert_eq!(
        c.emulator_argv(),
        ["qemu-aarch64-static", "-L", "/sr"],
        "{{sysroot}} is filled in the emulator's argv"
    );
}

#[test]
fn cross_env_points_python_and_compilers_at_the_target() {
    let c = cross_for("debian-arm64");
    let env: BTreeMap<&str, String> = c.env().into_iter().collect();
    assert_eq!(env["CROSS_COMPILING"], "1");
    assert_eq!(env["LDSHARED"], "aarch64-linux-gnu-gcc -shared");
    assert_eq!(env["_PYTHON_HOST_PLATFORM"], "linux-aarch64");
    assert_eq!(env["PYTHONPATH"], "/w/cross/sysconfigdata");
    assert_eq!(
        env["CPPFLAGS"],
        "-I/sr/usr/include/python3.11 -idirafter /sr/usr/include"
    );
    assert!(!env.contains_key("CFLAGS"), "CFLAGS would replace -O2");
    assert_eq!(env["LDFLAGS"], "--sysroot=/sr");
    assert_eq!(env["CMAKE_TOOLCHAIN_FILE"], "/w/cross/toolchain.cmake");
    assert!(
        !env.contains_key("NVCC_PREPEND_FLAGS"),
        "no CUDA arch, no nvcc"
    );
}

#[test]
fn cuda_targets_give_nvcc_the_cross_host_compiler() {
    let c = cross_for("jetson-orin-cross");
    let env: BTreeMap<&str, String> = c.env().into_iter().collect();
    assert_eq!(env["NVCC_PREPEND_FLAGS"], "-ccbin aarch64-linux-gnu-g++");
    assert_eq!(
        env["CUDA_TARGET_DIR"],
        "/usr/local/cuda/targets/aarch64-linux"
    );
    assert!(env["LDFLAGS"].ends_with("-L/usr/local/cuda/targets/aarch64-linux/lib"));
    assert!(c
        .toolchain_cmake()
        .contains("set(CMAKE_CUDA_HOST_COMPILER \"aarch64-linux-gnu-g++\")"));
}

#[test]
fn a_launcher_prefixes_the_compilers_and_becomes_cmakes_launcher() {
    let mut c = cross_for("debian-arm64");
    c.spec.launcher = Some("ccache".into());
    let env: BTreeMap<&str, String> = c.env().into_iter().collect();
    assert_eq!(env["CC"], "ccache aarch64-linux-gnu-gcc");
    assert_eq!(env["LDSHARED"], "ccache aarch64-linux-gnu-gcc -shared");
    let cmake = c.toolchain_cmake();
    assert!(cmake.contains("set(CMAKE_C_COMPILER \"aarch64-linux-gnu-gcc\")"));
    assert!(cmake.contains("set(CMAKE_C_COMPILER_LAUNCHER \"ccache\")"));
}

#[test]
fn toolchain_file_takes_programs_from_the_build_machine_and_the_rest_from_the_sysroot() {
    let cmake = cross_for("debian-arm64").toolchain_cmake();
    for line in [
        "set(CMAKE_SYSTEM_NAME Linux)",
        "set(CMAKE_SYSTEM_PROCESSOR aarch64)",
        "set(CMAKE_SYSROOT \"/sr\")",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
    ] {
        assert!(cmake.contains(line), "{line} missing in\n{cmake}");
    }
}

#[test]
fn unknown_cross_keys_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("targets.toml"),
        "[target.x]\ndescription = \"\"\narch = \"aarch64\"\ncuda_arch_list = []\npython = \"3.11\"\nplatform_tag = \"linux_aarch64\"\n[target.x.cross]\nsysroott = \"/s\"\n",
    )
    .unwrap();
    let tree = FileTree::read_dir(tmp.path()).unwrap();
    let err = crate::target::load_targets(&tree).unwrap_err().to_string();
    assert!(err.contains("sysroott"), "{err}");
}

#[test]
fn materialize_copies_only_the_sysconfigdata_and_writes_the_toolchain() {
    let tmp = tempfile::tempdir().unwrap();
    let sysroot = tmp.path().join("sr");
    let lib = sysroot.join("usr/lib/python3.11");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("_sysconfigdata__linux_aarch64-linux-gnu.py"),
        "x = 1\n",
    )
    .unwrap();
    std::fs::write(lib.join("os.py"), "").unwrap();
    let Mode::Cross(c) = mode(
        &target("debian-arm64"),
        "x86_64",
        Some(&sysroot),
        &tmp.path().join("cross"),
    )
    .unwrap() else {
        panic!("cross expected")
    };
    materialize(&c).unwrap();
    let names: Vec<_> = std::fs::read_dir(c.sysconfig_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["_sysconfigdata__linux_aarch64-linux-gnu.py"]);
    assert!(c.toolchain_file().is_file());

    std::fs::remove_file(lib.join("_sysconfigdata__linux_aarch64-linux-gnu.py")).unwrap();
    let err = materialize(&c).unwrap_err().to_string();
    assert!(err.contains("not a Python 3.11 sysroot"), "{err}");
}

#[test]
fn report_names_what_the_sysroot_lacks_and_how_to_fix_it() {
    let facts = crate::host::fixtures::facts("x86-ci-cgroup6g");
    let tmp = tempfile::tempdir().unwrap();
    let checks = cross_report(&target("debian-arm64"), &facts, Some(tmp.path()));
    assert_eq!(
        checks[0].detail,
        format!("cross build: {} -> aarch64", facts.arch)
    );
    let headers = checks
        .iter()
        .find(|c| c.what == "target Python headers")
        .unwrap();
    assert!(!headers.ok);
    assert!(headers
        .fix
        .as_deref()
        .unwrap()
        .contains("scripts/make-arm64-sysroot.sh"));
    let orin = cross_report(&target("jetson-orin"), &facts, None);
    assert!(
        !orin[0].ok && orin[0].detail.contains("no cross settings"),
        "{orin:?}"
    );
}
