//! L4T user space without a Tegra device: NVIDIA's `l4t-jetpack` container (or a rootfs with
//! JetPack's packages) on an arm64 machine that is not a Jetson, such as a cloud server or a CI
//! runner. Such a machine has JetPack's CUDA toolkit and libraries, so it can compile wheels for
//! a Jetson target, but no Tegra GPU to run them: a *build* host.
//!
//! What identifies it, as found in public material about the `nvcr.io/nvidia/l4t-jetpack:r36.x`
//! images (NVIDIA's own Dockerfile is not in the sources reachable from here):
//! - The apt source `/etc/apt/sources.list.d/nvidia-l4t-apt-source.list` naming the release
//!   series, `deb https://repo.download.nvidia.com/jetson/common r36.4 main` (plus the `t234`
//!   line): Dockerfiles built on NVIDIA's r36 images append only the `t234` line to the file
//!   the base image already has (zzlee/docker-scripts, `l4t-base-r36-2.Dockerfile`).
//! - dpkg's status lists JetPack's packages at L4T's version: `nvidia-l4t-core
//!   36.4.0-20240912212859`, `nvidia-l4t-cuda`, `nvidia-jetpack 6.1+b123` (as `apt list
//!   --installed` shows them on JetPack 6.1, dusty-nv/jetson-containers issue #710); CUDA
//!   itself as `cuda-nvcc-12-6` etc. under `/usr/local/cuda-12.6` (`/usr/local/cuda` links
//!   there; version.json says 12.6.68).
//! - `/etc/nv_tegra_release` belongs to the `nvidia-l4t-core` package (anduril/jetpack-nixos
//!   PR #49 takes it from that deb), so it is there only when the image installed that package;
//!   dusty-nv/jetson-containers bind-mounts the host's file into its containers (`run.sh`:
//!   `--volume /etc/nv_tegra_release:/etc/nv_tegra_release`) and synthesises one when it is
//!   missing (`l4t_version.py`, `nv_tegra_release()`), so it cannot be relied on in a container.
//!   A user of containers built on NVIDIA's images found "in the container the file
//!   `nv_tegra_release` is empty and the package `nvidia-l4t-core` is not installed" (r35,
//!   dusty-nv/jetson-containers issue #215), so an empty file must not count, and neither the
//!   file nor the package can be required. What every Jetson has and no container on another
//!   machine has is `/proc/device-tree/model` naming the module (see `jetson`).
//!
//! So any one of the three counts, the most precise first: nv_tegra_release ("36.4.0"), the
//! `nvidia-l4t-core` package's version ("36.4.0"), the apt source ("36.4"; the package's
//! release replaces it when it is of that series). dpkg's status (megabytes on a full image) is
//! read only when nv_tegra_release says nothing, since every command reads the host files.

use std::path::Path;

use serde::Serialize;

use super::jetson::{jetpack_for_l4t, parse_l4t};
use super::{host_path, read_text};

const APT_SOURCE: &str = "etc/apt/sources.list.d/nvidia-l4t-apt-source.list";
const APT_SOURCES_DIR: &str = "etc/apt/sources.list.d";
const DPKG_STATUS: &str = "var/lib/dpkg/status";
/// NVIDIA's Jetson apt repository; the suite after it is the L4T series (`r36.4`).
const JETSON_REPO: &str = "repo.download.nvidia.com/jetson/";

/// JetPack's user space found on a machine that is not a Jetson.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L4tUserspace {
    /// L4T release ("36.4.0") or, from the apt source alone, its series ("36.4").
    pub l4t: String,
    /// The JetPack of that release ("6.1"), from dpkg's `nvidia-jetpack` or the L4T mapping.
    pub jetpack: Option<String>,
    /// The file that told, as a path on the host.
    pub source: String,
}

impl L4tUserspace {
    /// `L4T JetPack container r36.4 (no Tegra device)`.
    pub fn describe(&self) -> String {
        format!("L4T JetPack container r{} (no Tegra device)", self.l4t)
    }
}

/// Looks for JetPack's user space below `root`; callers ask only when no Jetson module was found.
pub(super) fn read(root: &Path) -> Option<L4tUserspace> {
    let found = |l4t: String, source: &str, jetpack: Option<String>| L4tUserspace {
        jetpack: jetpack.or_else(|| series_jetpack(&l4t)),
        l4t,
        source: format!("/{source}"),
    };
    if let Some(l4t) = read_text(root, "etc/nv_tegra_release").and_then(|t| parse_l4t(&t)) {
        return Some(found(l4t, "etc/nv_tegra_release", None));
    }
    if let Some((file, series)) = apt_series(root) {
        let dpkg = read_text(root, DPKG_STATUS).map(|t| dpkg_versions(&t));
        let (l4t, jetpack) = dpkg.unwrap_or_default();
        // The installed package's release is more precise than the repository's series,
        // provided they agree.
        return Some(match l4t.filter(|v| v.starts_with(&format!("{series}."))) {
            Some(l4t) => found(l4t, DPKG_STATUS, jetpack),
            None => found(series, &file, jetpack),
        });
    }
    let (l4t, jetpack) = dpkg_versions(&read_text(root, DPKG_STATUS)?);
    l4t.map(|l4t| found(l4t, DPKG_STATUS, jetpack))
}

/// The JetPack for an L4T release, or for a bare series ("36.4" → "6.1/6.2").
fn series_jetpack(l4t: &str) -> Option<String> {
    let key = if l4t.matches('.').count() == 1 {
        format!("{l4t}.")
    } else {
        l4t.to_string()
    };
    jetpack_for_l4t(&key).map(str::to_string)
}

/// The first apt source naming NVIDIA's Jetson repository: (its file, the series "36.4").
fn apt_series(root: &Path) -> Option<(String, String)> {
    let mut files = vec![APT_SOURCE.to_string(), "etc/apt/sources.list".to_string()];
    if let Ok(entries) = std::fs::read_dir(host_path(root, APT_SOURCES_DIR)) {
        let mut others: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".list"))
            .map(|n| format!("{APT_SOURCES_DIR}/{n}"))
            .filter(|p| p != APT_SOURCE)
            .collect();
        others.sort();
        files.extend(others);
    }
    files.into_iter().find_map(|file| {
        let series = parse_apt_series(&read_text(root, &file)?)?;
        Some((file, series))
    })
}

/// `deb https://repo.download.nvidia.com/jetson/common r36.4 main` → "36.4"; comments and other
/// repositories are skipped.
fn parse_apt_series(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("deb ") || l.starts_with("deb\t"))
        .filter(|l| l.contains(JETSON_REPO))
        .find_map(|l| {
            let suite = l.split_whitespace().find(|w| w.starts_with('r'))?;
            let series = suite.strip_prefix('r')?;
            let parts: Vec<&str> = series.split('.').collect();
            let numeric = parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            (numeric && (1..=3).contains(&parts.len())).then(|| series.to_string())
        })
}

/// From dpkg's status: the L4T release of an installed `nvidia-l4t-core` ("36.4.0" from
/// "36.4.0-20240912212859") and the JetPack of an installed `nvidia-jetpack` ("6.1" from
/// "6.1+b123").
fn dpkg_versions(status: &str) -> (Option<String>, Option<String>) {
    let mut l4t = None;
    let mut jetpack = None;
    for para in status.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        let version = field("Version").unwrap_or_default();
        match field("Package") {
            Some("nvidia-l4t-core") => {
                l4t = version
                    .split('-')
                    .next()
                    .filter(|v| v.split('.').count() == 3)
                    .map(str::to_string);
            }
            Some("nvidia-jetpack") => {
                jetpack = version
                    .split('+')
                    .next()
                    .filter(|v| !v.is_empty())
                    .map(str::to_string);
            }
            _ => {}
        }
    }
    (l4t, jetpack)
}

/// The `l4t-jetpack` image that carries a CUDA release ("12.6" → "r36.4.0"), for fix lines.
pub fn jetpack_image_for_cuda(cuda: &str) -> Option<&'static str> {
    // NVIDIA's JetPack release notes: JetPack 6.0 (L4T 36.3) ships CUDA 12.2, JetPack 6.1/6.2
    // (L4T 36.4) CUDA 12.6, JetPack 5.1.2 (L4T 35.4.1) CUDA 11.4.
    const IMAGES: &[(&str, &str)] = &[
        ("12.6", "r36.4.0"),
        ("12.2", "r36.3.0"),
        ("11.4", "r35.4.1"),
    ];
    let mm: String = cuda.split('.').take(2).collect::<Vec<_>>().join(".");
    IMAGES.iter().find(|(c, _)| *c == mm).map(|(_, tag)| *tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APT: &str = "deb https://repo.download.nvidia.com/jetson/common r36.4 main\n\
                       deb https://repo.download.nvidia.com/jetson/t234 r36.4 main\n";

    const STATUS: &str = "Package: cuda-nvcc-12-6\nStatus: install ok installed\n\
                          Version: 12.6.68-1\n\n\
                          Package: nvidia-l4t-core\nStatus: install ok installed\n\
                          Architecture: arm64\nVersion: 36.4.0-20240912212859\n\n\
                          Package: nvidia-jetpack\nStatus: install ok installed\n\
                          Version: 6.1+b123\n";

    use crate::testutil::tree;

    #[test]
    fn apt_series_lines() {
        assert_eq!(parse_apt_series(APT).as_deref(), Some("36.4"));
        assert_eq!(
            parse_apt_series("# deb https://repo.download.nvidia.com/jetson/common r36.4 main"),
            None
        );
        assert_eq!(
            parse_apt_series("deb http://ports.ubuntu.com/ubuntu-ports jammy main"),
            None
        );
        assert_eq!(
            parse_apt_series("deb https://repo.download.nvidia.com/jetson/common rxx main"),
            None
        );
    }

    #[test]
    fn dpkg_gives_release_and_jetpack() {
        assert_eq!(
            dpkg_versions(STATUS),
            (Some("36.4.0".into()), Some("6.1".into()))
        );
        let removed = STATUS.replace(
            "nvidia-l4t-core\nStatus: install ok installed",
            "nvidia-l4t-core\nStatus: deinstall ok config-files",
        );
        assert_eq!(dpkg_versions(&removed).0, None);
    }

    #[test]
    fn most_precise_source_wins() {
        let apt_only = tree(&[(APT_SOURCE, APT)]);
        let u = read(apt_only.path()).unwrap();
        assert_eq!(
            (u.l4t.as_str(), u.jetpack.as_deref(), u.source.as_str()),
            (
                "36.4",
                Some("6.1/6.2"),
                "/etc/apt/sources.list.d/nvidia-l4t-apt-source.list"
            )
        );
        assert_eq!(
            u.describe(),
            "L4T JetPack container r36.4 (no Tegra device)"
        );

        let with_dpkg = tree(&[(APT_SOURCE, APT), (DPKG_STATUS, STATUS)]);
        let u = read(with_dpkg.path()).unwrap();
        assert_eq!(
            (u.l4t.as_str(), u.jetpack.as_deref(), u.source.as_str()),
            ("36.4.0", Some("6.1"), "/var/lib/dpkg/status")
        );

        let release =
            "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64\n";
        let with_release = tree(&[(APT_SOURCE, APT), ("etc/nv_tegra_release", release)]);
        let u = read(with_release.path()).unwrap();
        assert_eq!(
            (u.l4t.as_str(), u.jetpack.as_deref()),
            ("36.4.0", Some("6.1"))
        );

        // An empty nv_tegra_release (seen in containers built on NVIDIA's images, whose
        // nvidia-l4t-core is not installed) says nothing; the apt source still tells.
        let empty_release = tree(&[(APT_SOURCE, APT), ("etc/nv_tegra_release", "")]);
        let u = read(empty_release.path()).unwrap();
        assert_eq!(
            (u.l4t.as_str(), u.source.as_str()),
            ("36.4", "/etc/apt/sources.list.d/nvidia-l4t-apt-source.list")
        );

        // Another list file naming the repository counts too.
        let other = tree(&[("etc/apt/sources.list.d/jetson.list", APT)]);
        assert_eq!(read(other.path()).unwrap().l4t, "36.4");
    }

    #[test]
    fn plain_arm64_server_has_none() {
        let dir = tree(&[(
            "etc/apt/sources.list",
            "deb http://ports.ubuntu.com/ubuntu-ports noble main\n",
        )]);
        assert_eq!(read(dir.path()), None);
        assert_eq!(read(tempfile::tempdir().unwrap().path()), None);
    }

    #[test]
    fn images_by_cuda() {
        assert_eq!(jetpack_image_for_cuda("12.6"), Some("r36.4.0"));
        assert_eq!(jetpack_image_for_cuda("12.6.68"), Some("r36.4.0"));
        assert_eq!(jetpack_image_for_cuda("12.2"), Some("r36.3.0"));
        assert_eq!(jetpack_image_for_cuda("13.0"), None);
    }
}
