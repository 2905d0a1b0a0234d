//! Each fixture under `tests/hosts/`, read in full, so a change to a reader shows up as a
//! changed description of a real kind of machine.

use std::path::{Path, PathBuf};

use super::*;

const GIB_U: u64 = 1 << 30;

fn kib(n: u64) -> u64 {
    n * 1024
}

fn orin_cuda() -> Option<Cuda> {
    Some(Cuda {
        version: "12.6.68".into(),
        home: PathBuf::from("/usr/local/cuda"),
        source: "version.json".into(),
    })
}

fn python(minor: u32) -> Option<Python> {
    Some(Python {
        version: format!("3.{minor}"),
        executable: Some(PathBuf::from(format!("/usr/bin/python3.{minor}"))),
    })
}

fn jetson(model: &str) -> Option<Jetson> {
    Some(Jetson {
        model: model.into(),
        l4t: Some("36.4.3".into()),
        jetpack: Some("6.2".into()),
    })
}

fn nano(swap_kib: u64) -> HostFacts {
    HostFacts {
        arch: "aarch64".into(),
        cpus: Cpus {
            online: 6,
            quota: None,
            usable: 6,
        },
        memory: Memory {
            total: kib(7759460),
            available: kib(6606028),
            swap_total: kib(swap_kib),
            swap_free: kib(swap_kib),
        },
        cgroup: Some(CgroupMemory {
            version: 2,
            path: "/user.slice/user-1000.slice/session-3.scope".into(),
            limit: None,
            usage: Some(1289748480),
            inactive_file: Some(652361728),
        }),
        jetson: jetson("NVIDIA Jetson Orin Nano Developer Kit"),
        l4t_userspace: None,
        cuda: orin_cuda(),
        gpu_arch: Some("8.7".into()),
        gpu_visible: false,
        python: python(10),
    }
}

#[test]
fn orin_nano_8g() {
    let mut expected = nano(0);
    // Its tree has Jetson's GPU device nodes (dev/nvhost-gpu, dev/nvmap).
    expected.gpu_visible = true;
    assert_eq!(fixtures::facts("orin-nano-8g"), expected);
}

#[test]
fn orin_nano_8g_swap16() {
    assert_eq!(fixtures::facts("orin-nano-8g-swap16"), nano(16777212));
}

#[test]
fn agx_orin_64g() {
    let expected = HostFacts {
        arch: "aarch64".into(),
        cpus: Cpus {
            online: 12,
            quota: None,
            usable: 12,
        },
        memory: Memory {
            total: kib(64335836),
            available: kib(60817408),
            swap_total: 0,
            swap_free: 0,
        },
        cgroup: None,
        jetson: jetson("NVIDIA Jetson AGX Orin Developer Kit"),
        l4t_userspace: None,
        cuda: orin_cuda(),
        gpu_arch: Some("8.7".into()),
        gpu_visible: false,
        python: python(10),
    };
    assert_eq!(fixtures::facts("agx-orin-64g"), expected);
}

#[test]
fn x86_ci_cgroup6g() {
    let expected = HostFacts {
        arch: "x86_64".into(),
        cpus: Cpus {
            online: 16,
            quota: Some(4.0),
            usable: 4,
        },
        memory: Memory {
            total: kib(65839012),
            available: 50 * GIB_U,
            swap_total: kib(2097148),
            swap_free: kib(2097148),
        },
        cgroup: Some(CgroupMemory {
            version: 1,
            path: "/docker/4b1f0c6e2d9a8f7e3c5b1a0d9e8f7c6b5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b".into(),
            limit: Some(6 * GIB_U),
            usage: Some(GIB_U),
            inactive_file: Some(GIB_U / 4),
        }),
        jetson: None,
        l4t_userspace: None,
        cuda: None,
        gpu_arch: None,
        gpu_visible: false,
        python: python(12),
    };
    assert_eq!(fixtures::facts("x86-ci-cgroup6g"), expected);
}

#[test]
fn cgroup_v2_host() {
    let expected = HostFacts {
        arch: "x86_64".into(),
        cpus: Cpus {
            online: 16,
            quota: Some(3.0),
            usable: 3,
        },
        memory: Memory {
            total: kib(32780676),
            available: 28 * GIB_U,
            swap_total: kib(8388604),
            swap_free: kib(8388604),
        },
        cgroup: Some(CgroupMemory {
            version: 2,
            path: "/system.slice/jetforge-build.service".into(),
            limit: Some(12 * GIB_U),
            usage: Some(2 * GIB_U),
            inactive_file: Some(GIB_U / 2),
        }),
        jetson: None,
        l4t_userspace: None,
        cuda: Some(Cuda {
            version: "12.4.1".into(),
            home: PathBuf::from("/usr/local/cuda"),
            source: "version.json".into(),
        }),
        gpu_arch: None,
        gpu_visible: false,
        python: python(11),
    };
    assert_eq!(fixtures::facts("cgroup-v2-host"), expected);
}

/// An empty tree is a valid, if uninformative, host: defaults everywhere, no panic.
#[test]
fn empty_root_has_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let facts = HostFacts::read(dir.path());
    assert_eq!(facts.arch, "x86_64");
    assert_eq!(
        facts.cpus,
        Cpus {
            online: 1,
            quota: None,
            usable: 1
        }
    );
    assert_eq!(facts.memory, Memory::default());
    assert_eq!(
        (
            facts.cgroup,
            facts.jetson,
            facts.cuda,
            facts.gpu_arch,
            facts.python
        ),
        (None, None, None, None, None)
    );
}

/// Every reader meets binary junk where it expects text and must shrug it off.
#[test]
fn garbage_files_are_unknown_facts() {
    let dir = tempfile::tempdir().unwrap();
    let junk: &[u8] = &[0xff, 0xfe, 0, 1, 2, b'\n', 0x80];
    for rel in [
        "proc/sys/kernel/arch",
        "proc/meminfo",
        "proc/self/cgroup",
        "proc/device-tree/model",
        "etc/nv_tegra_release",
        "sys/devices/system/cpu/online",
        "usr/local/cuda/version.json",
        "usr/local/cuda/version.txt",
    ] {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, junk).unwrap();
    }
    let facts = HostFacts::read(dir.path());
    assert_eq!(facts.cpus.usable, 1);
    assert_eq!((facts.jetson, facts.cuda, facts.cgroup), (None, None, None));
}

#[test]
fn live_root_reads_without_panicking() {
    let facts = HostFacts::read(Path::new("/"));
    assert!(facts.cpus.usable >= 1);
    assert!(!facts.arch.is_empty());
}

#[test]
fn host_paths_stay_below_root() {
    let root = Path::new("/fake");
    assert_eq!(
        host_path(root, "/usr/local/cuda"),
        Path::new("/fake/usr/local/cuda")
    );
    assert_eq!(
        host_path(root, "proc/meminfo"),
        Path::new("/fake/proc/meminfo")
    );
}

#[test]
fn arm64_server_jetpack() {
    let facts = fixtures::facts("arm64-server-jetpack");
    assert_eq!(facts.jetson, None);
    let u = facts.l4t_userspace.clone().unwrap();
    assert_eq!(
        (u.l4t.as_str(), u.jetpack.as_deref(), u.source.as_str()),
        (
            "36.4",
            Some("6.1/6.2"),
            "/etc/apt/sources.list.d/nvidia-l4t-apt-source.list"
        )
    );
    assert_eq!((facts.cpus.usable, facts.gpu_visible), (64, false));
    assert_eq!(facts.cuda, orin_cuda());
    assert_eq!(facts.memory.available, kib(125000000));
    let bare = fixtures::facts("arm64-server-no-cuda");
    assert_eq!((bare.l4t_userspace, bare.cuda), (None, None));
}
