//! Facts about the build machine: CPUs, memory, cgroup limits, Jetson model, L4T/JetPack,
//! CUDA, GPU compute capability and Python. Every reader takes a root path (`/` normally, a
//! fake tree in tests, set with `JETFORGE_HOST_ROOT`), so a test can describe an Orin Nano on
//! an x86 CI runner. Readers never fail: a missing or garbled file leaves a fact unknown
//! (`None` or a documented default). Only the live root (`/`) may fall back to the running
//! process (`num_cpus`, `nvcc`, `nvidia-smi`, `python3`); a fake root is described by its files
//! alone. Deciding what to do with these facts (MAX_JOBS) belongs to `jobs`, not here.

mod cgroup;
mod cpu;
mod cuda;
pub mod facts_file;
mod jetson;
mod l4t;
mod memory;
mod python;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use cpu::parse_cpu_list;
pub use jetson::{jetpack_for_l4t, parse_l4t};
pub use l4t::{jetpack_image_for_cuda, L4tUserspace};

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Root of the host description to read instead of `/`: a fake tree with `proc/`, `sys/`,
/// `etc/`, `usr/` (see `tests/hosts/`), so that `plan` and `doctor` can be tested as if on a
/// Jetson.
pub const HOST_ROOT_ENV: &str = crate::envvars::JETFORGE_HOST_ROOT;

/// Where the CUDA toolkit lives when it is not `/usr/local/cuda`; read only for the live root.
pub const CUDA_HOME_ENV: &str = crate::envvars::CUDA_HOME;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostFacts {
    /// CPU architecture as `uname -m` says (`aarch64`, `x86_64`).
    pub arch: String,
    pub cpus: Cpus,
    pub memory: Memory,
    pub cgroup: Option<CgroupMemory>,
    pub jetson: Option<Jetson>,
    /// JetPack's user space on a machine that is not a Jetson (the `l4t-jetpack` container on
    /// an arm64 server): a build host for Jetson targets. Only looked for when `jetson` is None.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l4t_userspace: Option<L4tUserspace>,
    pub cuda: Option<Cuda>,
    /// CUDA compute capability of the GPU, e.g. "8.7" on Orin, "9.0" on an H100.
    pub gpu_arch: Option<String>,
    /// NVIDIA device nodes exist (see [`gpu_device_nodes`]): GPU code can run here.
    pub gpu_visible: bool,
    pub python: Option<Python>,
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
    /// JetPack that L4T release ships with, e.g. "6.2".
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
    /// Reads all facts below `root`, asking `python3` from PATH about Python.
    pub fn read(root: &Path) -> Self {
        Self::read_with_python(root, None)
    }

    /// Like [`HostFacts::read`], asking `python` (when given) instead of `python3`. A fake
    /// root ignores it: its Python is the newest `usr/lib/python3.N` in the tree.
    pub fn read_with_python(root: &Path, python: Option<&Path>) -> Self {
        let mut facts = Self::read_files(root);
        facts.probe_python(root, python);
        facts.probe_gpu(root);
        facts
    }

    /// Only what files say: no process is started, so every command can afford it (a no-op
    /// `build` must stay fast). Python and a non-Jetson GPU are left for the probes below.
    pub fn read_files(root: &Path) -> Self {
        let memory = memory::read(root);
        let jetson = jetson::read(root);
        let gpu_arch = jetson
            .as_ref()
            .and_then(|j| jetson::gpu_arch_for_model(&j.model))
            .map(str::to_string);
        Self {
            arch: arch(root),
            cpus: cpu::read(root),
            cgroup: cgroup::memory(root, memory.total),
            memory,
            l4t_userspace: if jetson.is_none() {
                l4t::read(root)
            } else {
                None
            },
            jetson,
            cuda: cuda::read(root),
            gpu_arch,
            gpu_visible: !gpu_device_nodes(root).is_empty(),
            python: None,
        }
    }

    /// Asks the interpreter (or reads a fake root) for the Python version.
    pub fn probe_python(&mut self, root: &Path, python: Option<&Path>) {
        self.python = python::read(root, python);
    }

    /// Asks `nvidia-smi` for the GPU's compute capability, unless the Jetson model told it.
    pub fn probe_gpu(&mut self, root: &Path) {
        if self.gpu_arch.is_none() && is_live(root) {
            self.gpu_arch = cuda::nvidia_smi_compute_cap();
        }
    }
}

/// The root to read: `JETFORGE_HOST_ROOT` if set, else `/`.
pub fn root_from_env() -> PathBuf {
    env_var(HOST_ROOT_ENV).map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

fn arch(root: &Path) -> String {
    let from_proc = read_text(root, "proc/sys/kernel/arch")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    // A fake tree that does not say is most likely describing a CI runner.
    let fallback = if is_live(root) {
        std::env::consts::ARCH
    } else {
        "x86_64"
    };
    from_proc.unwrap_or_else(|| fallback.to_string())
}

/// A Jetson's GPU is fixed by its module, so the model string is enough; elsewhere only the
/// driver knows, and only for the live root.
/// NVIDIA device nodes present: `/dev/nvidia*` (discrete GPUs), `/dev/nvhost-*` and
/// `/dev/nvmap` (Jetson's integrated GPU). A GPU that can run a verify snippet has some.
pub fn gpu_device_nodes(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(host_path(root, "dev")) else {
        return Vec::new();
    };
    let mut nodes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nvidia") || n.starts_with("nvhost-") || n == "nvmap")
        .map(|n| format!("/dev/{n}"))
        .collect();
    nodes.sort();
    nodes
}

/// True when `root` is the machine we run on, so processes and the environment describe it.
fn is_live(root: &Path) -> bool {
    root == Path::new("/")
}

/// `rel` (an absolute or relative path on the host) below `root`.
fn host_path(root: &Path, rel: impl AsRef<Path>) -> PathBuf {
    let rel = rel.as_ref();
    root.join(rel.strip_prefix("/").unwrap_or(rel))
}

/// The file's text, or None if it is missing, unreadable or not UTF-8.
fn read_text(root: &Path, rel: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(host_path(root, rel)).ok()
}

/// The single place the host readers consult the environment, so a fake root is never
/// mixed with facts of the machine running the tests.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Stdout of a successful run, or None. `output()` drains stdout and stderr together, so a
/// chatty tool cannot block on a full pipe.
fn run_stdout(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Access to the fake host roots under `tests/hosts/`.

    use super::HostFacts;
    use std::path::PathBuf;

    pub fn root(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/hosts")
            .join(name)
    }

    pub fn facts(name: &str) -> HostFacts {
        let root = root(name);
        assert!(root.is_dir(), "missing fixture {}", root.display());
        HostFacts::read(&root)
    }
}

#[cfg(test)]
mod tests;
