//! The side effects of `doctor`: looking for tools, headers, libraries, device nodes and free
//! disk, and (on the live root only) running them. Everything is gathered into [`Probes`],
//! plain data the checks read.
//!
//! A fake host root (`JETFORGE_HOST_ROOT`) is described by its files alone: a tool is "present"
//! when `usr/bin/<tool>` exists, a device node when `dev/<name>` exists as any file (git cannot
//! hold device nodes), and nothing is executed, loaded or measured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::host::HostFacts;
use crate::process::runner::{self, Status};
use crate::target::Target;

/// Tools a build runs, and what to look for in their `--version`.
pub const TOOLS: &[&str] = &["cmake", "ninja", "git", "gcc", "g++"];

/// How long a probe that runs something (nvidia-smi, python with torch) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Library name prefixes looked for, with the name shown to the user.
pub const LIBRARIES: &[(&str, &str)] = &[
    ("cuDNN", "libcudnn.so"),
    ("cuSPARSELt", "libcusparseLt.so"),
    ("NCCL", "libnccl.so"),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub name: String,
    /// The user's choice this tool stands for (`$CC=clang` for gcc), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    pub path: Option<PathBuf>,
    /// The first line of `--version`; None under a fake root or when it failed.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Library {
    pub name: String,
    /// Where it was found: a file path, or `ld.so.cache`.
    pub found: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disk {
    pub path: PathBuf,
    pub free_bytes: u64,
}

/// The outcome of one way of seeing the GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum PathResult {
    /// It works; `devices` when this path counts GPUs.
    Ok {
        detail: String,
        devices: Option<u32>,
    },
    /// The thing to probe is not there (no file, no library, no program).
    Missing { detail: String },
    /// It is there but failed.
    Failed { detail: String },
    /// Not tried (fake root, or nothing to try it with).
    NotRun { detail: String },
}

impl PathResult {
    pub fn ok(detail: impl Into<String>, devices: Option<u32>) -> Self {
        PathResult::Ok {
            detail: detail.into(),
            devices,
        }
    }
    pub fn missing(detail: impl Into<String>) -> Self {
        PathResult::Missing {
            detail: detail.into(),
        }
    }
    pub fn failed(detail: impl Into<String>) -> Self {
        PathResult::Failed {
            detail: detail.into(),
        }
    }
    pub fn not_run(detail: impl Into<String>) -> Self {
        PathResult::NotRun {
            detail: detail.into(),
        }
    }
    pub fn is_ok(&self) -> bool {
        matches!(self, PathResult::Ok { .. })
    }
    pub fn devices(&self) -> Option<u32> {
        match self {
            PathResult::Ok { devices, .. } => *devices,
            _ => None,
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            PathResult::Ok { detail, .. }
            | PathResult::Missing { detail }
            | PathResult::Failed { detail }
            | PathResult::NotRun { detail } => detail,
        }
    }
}

/// The independent ways of seeing a GPU, each reported on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuPaths {
    /// `/dev/nvidia*`, `/dev/nvhost-*`, `/dev/nvmap` that exist.
    pub device_nodes: Vec<String>,
    /// `/proc/driver/nvidia/version`.
    pub driver: PathResult,
    pub nvidia_smi: PathResult,
    /// `libcuda.so.1`: cuInit + cuDeviceGetCount, in a child process.
    pub libcuda: PathResult,
    pub torch: PathResult,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probes {
    /// False under a fake host root: nothing was run.
    pub live: bool,
    pub tools: Vec<Tool>,
    pub nvcc: Tool,
    /// The include directory looked in, and whether `Python.h` is there.
    pub python_include: Option<PathBuf>,
    pub python_h: bool,
    pub libraries: Vec<Library>,
    pub disk: Option<Disk>,
    pub gpu: GpuPaths,
}

/// How to reach the libcuda probe: the program and arguments that print its one line.
pub struct CudaProbeCommand(pub Vec<String>);

impl Probes {
    /// Probes below `root`; runs programs only when `root` is `/`.
    pub fn gather(
        root: &Path,
        facts: &HostFacts,
        target: &Target,
        work_dir: &Path,
        cuda_probe: &CudaProbeCommand,
        compilers: &Compilers,
    ) -> Self {
        let live = root == Path::new("/");
        let cuda_home = facts
            .cuda
            .as_ref()
            .map_or_else(|| target.cuda_home.clone(), |c| c.home.clone());
        let (python_include, python_h) = python_headers(root, live, facts);
        Self {
            live,
            tools: TOOLS
                .iter()
                .map(|t| match (*t, &compilers.cc, &compilers.cxx) {
                    ("gcc", Some(cc), _) => chosen_tool(root, live, t, "CC", cc),
                    ("g++", _, Some(cxx)) => chosen_tool(root, live, t, "CXX", cxx),
                    _ => tool(root, live, t),
                })
                .collect(),
            nvcc: nvcc(root, live, &cuda_home),
            python_include,
            python_h,
            libraries: LIBRARIES
                .iter()
                .map(|(name, file)| Library {
                    name: name.to_string(),
                    found: find_library(root, &cuda_home, file),
                })
                .collect(),
            disk: live.then(|| free_disk(work_dir)).flatten(),
            gpu: gpu_paths(root, live, &cuda_home, facts, cuda_probe),
        }
    }
}

fn host_path(root: &Path, p: impl AsRef<Path>) -> PathBuf {
    let p = p.as_ref();
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// The caller's `$CC` and `$CXX` (set and not empty): builds use them instead of gcc and g++.
#[derive(Debug, Clone, Default)]
pub struct Compilers {
    pub cc: Option<String>,
    pub cxx: Option<String>,
}

/// The compiler `$VAR` names (its first word, as make and setuptools run it), found on PATH
/// or, under a fake root, below it.
fn chosen_tool(root: &Path, live: bool, name: &str, var: &str, value: &str) -> Tool {
    let program = value.split_whitespace().next().unwrap_or(value);
    let found = if Path::new(program).is_absolute() {
        host_path(root, program)
            .exists()
            .then(|| PathBuf::from(program))
    } else if live {
        which::which(program).ok()
    } else {
        tool(root, live, program).path
    };
    let version = match (&found, live) {
        (Some(p), true) => version_line(p),
        _ => None,
    };
    Tool {
        name: name.to_string(),
        chosen: Some(format!("${var}={value}")),
        path: found,
        version,
    }
}

fn tool(root: &Path, live: bool, name: &str) -> Tool {
    if !live {
        let path = ["usr/bin", "usr/local/bin"]
            .iter()
            .map(|d| Path::new("/").join(d).join(name))
            .find(|p| host_path(root, p).exists());
        return Tool {
            name: name.to_string(),
            chosen: None,
            path,
            version: None,
        };
    }
    let path = which::which(name).ok();
    let version = path.as_deref().and_then(version_line);
    Tool {
        name: name.to_string(),
        chosen: None,
        path,
        version,
    }
}

/// The first non-empty line of `PROGRAM --version`.
fn version_line(program: &Path) -> Option<String> {
    let argv = vec![program.to_string_lossy().into_owned(), "--version".into()];
    let out = run(&argv, &inherited_env()).ok()?;
    out.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

fn nvcc(root: &Path, live: bool, cuda_home: &Path) -> Tool {
    let in_home = cuda_home.join("bin/nvcc");
    let path = if host_path(root, &in_home).exists() {
        Some(in_home)
    } else if live {
        which::which("nvcc").ok()
    } else {
        None
    };
    let version = if live {
        path.as_deref().and_then(|p| {
            let argv = vec![p.to_string_lossy().into_owned(), "--version".into()];
            let out = run(&argv, &inherited_env()).ok()?;
            out.lines()
                .find(|l| l.contains("release"))
                .map(|l| l.trim().to_string())
        })
    } else {
        None
    };
    Tool {
        name: "nvcc".into(),
        chosen: None,
        path,
        version,
    }
}

/// Where `Python.h` must be: the interpreter's `include` path on the live root, else
/// `usr/include/python3.N` of the fake tree's Python.
fn python_headers(root: &Path, live: bool, facts: &HostFacts) -> (Option<PathBuf>, bool) {
    let dir = if live {
        facts.python.as_ref().and_then(|p| {
            let exe = p.executable.clone()?;
            let argv = vec![
                exe.to_string_lossy().into_owned(),
                "-c".into(),
                "import sysconfig; print(sysconfig.get_paths()['include'])".into(),
            ];
            run(&argv, &inherited_env())
                .ok()
                .map(|o| PathBuf::from(o.trim()))
        })
    } else {
        facts.python.as_ref().map(|p| {
            let mm: Vec<&str> = p.version.split('.').take(2).collect();
            PathBuf::from(format!("/usr/include/python{}", mm.join(".")))
        })
    };
    let found = dir
        .as_ref()
        .is_some_and(|d| host_path(root, d.join("Python.h")).is_file());
    (dir, found)
}

/// Directories a build's linker and CMake look in, below the root.
fn library_dirs(cuda_home: &Path) -> Vec<PathBuf> {
    vec![
        cuda_home.join("lib64"),
        cuda_home.join("lib"),
        PathBuf::from("/usr/lib/aarch64-linux-gnu"),
        PathBuf::from("/usr/lib/x86_64-linux-gnu"),
        PathBuf::from("/usr/local/lib"),
    ]
}

fn find_library(root: &Path, cuda_home: &Path, prefix: &str) -> Option<String> {
    let in_dirs = library_dirs(cuda_home).into_iter().find_map(|dir| {
        let entries = std::fs::read_dir(host_path(root, &dir)).ok()?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
            .first()
            .map(|n| dir.join(n).to_string_lossy().into_owned())
    });
    in_dirs.or_else(|| {
        // The binary cache holds every library name as a NUL-terminated string.
        let cache = std::fs::read(host_path(root, "etc/ld.so.cache")).ok()?;
        let needle = prefix.as_bytes();
        cache
            .windows(needle.len())
            .any(|w| w == needle)
            .then(|| "ld.so.cache".to_string())
    })
}

/// Free bytes on the file system holding `dir` (or its nearest existing parent).
fn free_disk(dir: &Path) -> Option<Disk> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is writable memory of the right type.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    Some(Disk {
        path: existing.to_path_buf(),
        free_bytes: free,
    })
}

fn gpu_paths(
    root: &Path,
    live: bool,
    cuda_home: &Path,
    facts: &HostFacts,
    cuda_probe: &CudaProbeCommand,
) -> GpuPaths {
    GpuPaths {
        device_nodes: device_nodes(root),
        driver: driver_version(root),
        nvidia_smi: nvidia_smi(root, live),
        libcuda: libcuda(root, live, cuda_home, cuda_probe),
        torch: torch(live, facts),
    }
}

fn device_nodes(root: &Path) -> Vec<String> {
    crate::host::gpu_device_nodes(root)
}

fn driver_version(root: &Path) -> PathResult {
    const FILE: &str = "/proc/driver/nvidia/version";
    match std::fs::read_to_string(host_path(root, FILE)) {
        Ok(text) => {
            let first = text.lines().next().unwrap_or("").trim();
            let version = first
                .split_whitespace()
                .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
                .unwrap_or(first);
            PathResult::ok(format!("driver {version} ({FILE})"), None)
        }
        Err(_) => PathResult::missing(format!("{FILE} does not exist")),
    }
}

fn nvidia_smi(root: &Path, live: bool) -> PathResult {
    if !live {
        return if host_path(root, "usr/bin/nvidia-smi").exists() {
            PathResult::not_run("/usr/bin/nvidia-smi present; not run under a fake host root")
        } else {
            PathResult::missing("nvidia-smi is not installed")
        };
    }
    let Ok(smi) = which::which("nvidia-smi") else {
        return PathResult::missing("nvidia-smi is not on PATH");
    };
    let argv = vec![smi.to_string_lossy().into_owned(), "-L".into()];
    match run(&argv, &inherited_env()) {
        Ok(out) => {
            let gpus = out.lines().filter(|l| l.starts_with("GPU ")).count() as u32;
            let first = out.lines().next().unwrap_or("").trim().to_string();
            PathResult::ok(format!("{gpus} GPU(s): {first}"), Some(gpus))
        }
        Err(e) => PathResult::failed(format!("`nvidia-smi -L` failed: {e}")),
    }
}

fn libcuda(root: &Path, live: bool, cuda_home: &Path, cuda_probe: &CudaProbeCommand) -> PathResult {
    if !live {
        let mut dirs = library_dirs(cuda_home);
        // JetPack keeps the driver library apart from the CUDA toolkit.
        dirs.push(PathBuf::from("/usr/lib/aarch64-linux-gnu/nvidia"));
        let found = dirs
            .iter()
            .map(|d| d.join("libcuda.so.1"))
            .find(|p| host_path(root, p).exists());
        return match found {
            Some(p) => PathResult::not_run(format!(
                "{} present; not loaded under a fake host root",
                p.display()
            )),
            None => PathResult::missing("libcuda.so.1 not found in the library directories"),
        };
    }
    match run(&cuda_probe.0, &inherited_env()) {
        Ok(line) => super::cuda_probe::parse(line.trim()),
        Err(e) => PathResult::failed(format!("the libcuda probe did not finish: {e}")),
    }
}

const TORCH_PROBE: &str = "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.device_count())";

fn torch(live: bool, facts: &HostFacts) -> PathResult {
    if !live {
        return PathResult::not_run("not run under a fake host root");
    }
    let Some(exe) = facts.python.as_ref().and_then(|p| p.executable.clone()) else {
        return PathResult::not_run("no Python found");
    };
    let argv = vec![
        exe.to_string_lossy().into_owned(),
        "-c".into(),
        TORCH_PROBE.into(),
    ];
    match run(&argv, &inherited_env()) {
        Ok(out) => parse_torch(out.lines().last().unwrap_or("")),
        Err(e) if e.contains("No module named 'torch'") => {
            PathResult::not_run(format!("torch is not installed for {}", exe.display()))
        }
        Err(e) => PathResult::failed(format!("`import torch` failed: {e}")),
    }
}

/// `2.11.0+cu130 13.0 True 1`.
pub(super) fn parse_torch(line: &str) -> PathResult {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [version, cuda, available, count] = words[..] else {
        return PathResult::failed(format!("unexpected output: {line}"));
    };
    let count: u32 = count.parse().unwrap_or(0);
    let what = format!("torch {version} (CUDA {cuda})");
    if available == "True" && count > 0 {
        PathResult::ok(format!("{what}: {count} GPU(s)"), Some(count))
    } else {
        PathResult::failed(format!("{what}: torch.cuda.is_available() is False"))
    }
}

/// The caller's environment, for probes that must see the machine as the user does.
fn inherited_env() -> Vec<(String, String)> {
    std::env::vars().collect()
}

/// Runs a probe with a time limit; Ok(output) on exit 0, else Err(why, with the last line).
fn run(argv: &[String], env: &[(String, String)]) -> Result<String, String> {
    let out = runner::run_with_timeout(argv, env, &std::env::temp_dir(), PROBE_TIMEOUT)
        .map_err(|e| format!("{e:#}"))?;
    match out.status {
        Some(Status::Success) => Ok(out.output),
        Some(status) => {
            let last = out.output.lines().last().unwrap_or("").trim().to_string();
            Err(format!("{status}: {last}"))
        }
        None => Err(format!(
            "no answer within {}s (hung)",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_probe_lines() {
        assert_eq!(parse_torch("2.11.0+cu130 13.0 True 2").devices(), Some(2));
        assert!(matches!(
            parse_torch("2.9.0 12.6 False 0"),
            PathResult::Failed { .. }
        ));
        assert!(matches!(parse_torch("garbage"), PathResult::Failed { .. }));
    }

    #[test]
    fn fake_root_libraries_and_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("usr/lib/aarch64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libcudnn.so.9"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(dir.path().join("dev/nvmap"), "").unwrap();
        std::fs::write(dir.path().join("dev/null"), "").unwrap();
        let home = Path::new("/usr/local/cuda");
        assert_eq!(
            find_library(dir.path(), home, "libcudnn.so").as_deref(),
            Some("/usr/lib/aarch64-linux-gnu/libcudnn.so.9")
        );
        assert_eq!(find_library(dir.path(), home, "libnccl.so"), None);
        assert_eq!(device_nodes(dir.path()), vec!["/dev/nvmap".to_string()]);
    }

    #[test]
    fn ld_so_cache_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/ld.so.cache"),
            b"ld.so-1.7.0\0libnccl.so.2\0/usr/lib/libnccl.so.2\0",
        )
        .unwrap();
        assert_eq!(
            find_library(dir.path(), Path::new("/usr/local/cuda"), "libnccl.so").as_deref(),
            Some("ld.so.cache")
        );
    }

    #[test]
    fn free_disk_of_a_missing_dir_uses_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let disk = free_disk(&dir.path().join("not/yet")).unwrap();
        assert_eq!(disk.path, dir.path());
    }
}
