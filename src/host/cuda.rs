//! The CUDA toolkit (version and home) and, on the live root, the GPU's compute capability
//! from `nvidia-smi`. The toolkit's own version files are read first because they need no
//! process and work on a fake root; `nvcc` is the last resort for toolkits without them.

use std::path::{Path, PathBuf};

use super::{env_var, is_live, read_text, run_stdout, Cuda, CUDA_HOME_ENV};

const DEFAULT_HOME: &str = "/usr/local/cuda";

pub(super) fn read(root: &Path) -> Option<Cuda> {
    let home = home(root);
    let found = |version: String, source: &str| Cuda {
        version,
        home: home.clone(),
        source: source.to_string(),
    };
    if let Some(v) = read_text(root, home.join("version.json")).and_then(|t| parse_version_json(&t))
    {
        return Some(found(v, "version.json"));
    }
    if let Some(v) = read_text(root, home.join("version.txt")).and_then(|t| parse_version_txt(&t)) {
        return Some(found(v, "version.txt"));
    }
    if is_live(root) {
        return from_nvcc(&home);
    }
    None
}

/// `CUDA_HOME` counts only for the live root; a fake tree always has its toolkit in the
/// default place.
fn home(root: &Path) -> PathBuf {
    let from_env = is_live(root).then(|| env_var(CUDA_HOME_ENV)).flatten();
    PathBuf::from(from_env.unwrap_or_else(|| DEFAULT_HOME.to_string()))
}

/// `{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}, …}`.
fn parse_version_json(text: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let version = json.get("cuda")?.get("version")?.as_str()?.trim();
    looks_like_version(version).then(|| version.to_string())
}

/// `CUDA Version 10.2.89` (toolkits before 11.1).
fn parse_version_txt(text: &str) -> Option<String> {
    let version = text.trim().strip_prefix("CUDA Version")?.trim();
    looks_like_version(version).then(|| version.to_string())
}

/// `Cuda compilation tools, release 12.6, V12.6.68` → "12.6.68" (or "12.6" without the V part).
fn parse_nvcc(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("release "))?;
    let after = line.split("release ").nth(1)?;
    let full = after.split(", V").nth(1).map(str::trim);
    let short = after.split(',').next().map(str::trim);
    full.filter(|v| looks_like_version(v))
        .or(short.filter(|v| looks_like_version(v)))
        .map(str::to_string)
}

/// nvcc under `home` or on PATH; a PATH nvcc (e.g. /usr/bin/nvcc from distro packages) moves
/// `home` to its prefix.
fn from_nvcc(home: &Path) -> Option<Cuda> {
    let in_home = home.join("bin/nvcc");
    let (nvcc, home) = if in_home.is_file() {
        (in_home, home.to_path_buf())
    } else {
        let nvcc = which::which("nvcc").ok()?;
        let prefix = nvcc.parent()?.parent()?.to_path_buf();
        (nvcc, prefix)
    };
    let version = parse_nvcc(&run_stdout(&nvcc, &["--version"])?)?;
    Some(Cuda {
        version,
        home,
        source: "nvcc".to_string(),
    })
}

/// The first GPU's compute capability ("9.0"), None without a working driver.
pub(super) fn nvidia_smi_compute_cap() -> Option<String> {
    let smi = which::which("nvidia-smi").ok()?;
    let out = run_stdout(smi, &["--query-gpu=compute_cap", "--format=csv,noheader"])?;
    let first = out.lines().next()?.trim();
    looks_like_version(first).then(|| first.to_string())
}

/// Dotted digits, at least two parts: guards against error text where a version should be.
fn looks_like_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::host_path;

    #[test]
    fn version_files() {
        let json = r#"{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}, "nvcc": {"version": "12.6.68"}}"#;
        assert_eq!(parse_version_json(json).as_deref(), Some("12.6.68"));
        assert_eq!(
            parse_version_txt("CUDA Version 10.2.89\n").as_deref(),
            Some("10.2.89")
        );
    }

    #[test]
    fn nvcc_output() {
        let out = "nvcc: NVIDIA (R) Cuda compiler driver\n\
                   Copyright (c) 2005-2024 NVIDIA Corporation\n\
                   Built on Wed_Aug_14_10:26:51_PDT_2024\n\
                   Cuda compilation tools, release 12.6, V12.6.68\n\
                   Build cuda_12.6.r12.6/compiler.34714021_0\n";
        assert_eq!(parse_nvcc(out).as_deref(), Some("12.6.68"));
        assert_eq!(
            parse_nvcc("Cuda compilation tools, release 11.4\n").as_deref(),
            Some("11.4")
        );
        assert_eq!(parse_nvcc("command not found"), None);
    }

    #[test]
    fn garbage_version_files() {
        assert_eq!(parse_version_json("{not json"), None);
        assert_eq!(parse_version_json(r#"{"cuda": {"version": 12}}"#), None);
        assert_eq!(
            parse_version_json(r#"{"cuda": {"version": "twelve"}}"#),
            None
        );
        assert_eq!(parse_version_txt("CUDA Version\n"), None);
        assert_eq!(parse_version_txt("Driver Version 540.4.0"), None);
    }

    #[test]
    fn falls_back_to_version_txt() {
        let dir = tempfile::tempdir().unwrap();
        let home = host_path(dir.path(), DEFAULT_HOME);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("version.json"), "garbage").unwrap();
        std::fs::write(home.join("version.txt"), "CUDA Version 10.2.89\n").unwrap();
        let cuda = read(dir.path()).unwrap();
        assert_eq!(
            (cuda.version.as_str(), cuda.source.as_str()),
            ("10.2.89", "version.txt")
        );
        assert_eq!(cuda.home, Path::new(DEFAULT_HOME));
    }

    #[test]
    fn fake_root_without_toolkit_has_no_cuda() {
        assert_eq!(read(tempfile::tempdir().unwrap().path()), None);
    }
}
