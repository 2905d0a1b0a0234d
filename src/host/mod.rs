//! Facts about the build machine: CPUs, memory, cgroup limits, Jetson model, L4T/JetPack,
//! CUDA and Python. Every reader takes a root path (`/` normally, a fake tree in tests, set
//! with `JETFORGE_HOST_ROOT`), so a test can describe an Orin Nano on an x86 CI runner.
//!
//! STUB: the contract below is final; the implementation is being written.

use std::path::{Path, PathBuf};

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostFacts {
    /// CPU architecture as `uname -m` says (`aarch64`, `x86_64`).
    pub arch: String,
    pub cpus: Cpus,
    pub memory: Memory,
    pub cgroup: Option<CgroupMemory>,
    pub jetson: Option<Jetson>,
    pub cuda: Option<Cuda>,
    pub python: Option<Python>,
    pub gpu_arch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cpus {
    /// CPUs online (from /sys/devices/system/cpu/online).
    pub online: usize,
    /// CPU quota from the cgroup (cpu.max / cfs_quota_us ÷ period), if any.
    pub quota: Option<f64>,
    /// What a build may use: min(online, ceil(quota)), at least 1.
    pub usable: usize,
}

/// From /proc/meminfo, in bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Memory {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CgroupMemory {
    /// 1 or 2.
    pub version: u8,
    /// The cgroup path as /proc/self/cgroup gives it.
    pub path: String,
    /// None when unlimited ("max", or v1's huge sentinel).
    pub limit: Option<u64>,
    pub usage: Option<u64>,
    /// Reclaimable page cache counted in usage (memory.stat inactive_file).
    pub inactive_file: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Jetson {
    /// /proc/device-tree/model, e.g. "NVIDIA Jetson AGX Orin Developer Kit".
    pub model: String,
    /// L4T release from /etc/nv_tegra_release, e.g. "36.4.3".
    pub l4t: Option<String>,
    /// JetPack that L4T release ships with, e.g. "6.1/6.2".
    pub jetpack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cuda {
    /// e.g. "12.6.68".
    pub version: String,
    pub home: PathBuf,
    /// Where the version came from: "version.json", "version.txt" or "nvcc".
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Python {
    /// "3.10.12".
    pub version: String,
    pub executable: Option<PathBuf>,
}

impl HostFacts {
    /// Reads all facts below `root`.
    pub fn read(root: &Path) -> Self {
        let _ = root;
        Self {
            arch: std::env::consts::ARCH.to_string(),
            cpus: Cpus {
                online: num_cpus::get(),
                quota: None,
                usable: num_cpus::get(),
            },
            memory: Memory {
                total: 8 << 30,
                available: 6 << 30,
                swap_total: 0,
                swap_free: 0,
            },
            cgroup: None,
            jetson: None,
            cuda: None,
            python: None,
            gpu_arch: None,
        }
    }
}
