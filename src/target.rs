//! Target profiles: where the built wheels will run (CPU arch, CUDA archs, Python, wheel
//! platform tag). Named profiles come from `targets.toml` in the recipe tree; `host` is derived
//! from the machine jetforge runs on.
//!
//! Vocabulary (as in Nix and conda): the *build* machine runs jetforge; the *host* of a wheel is
//! where it runs. The `host` target means "build for this machine". A profile with a `cross`
//! table can also be built from a machine of another CPU: its settings ([`CrossSpec`]) are read
//! here, what a cross build does with them is in `cross`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::diag::{toml_error, Diagnostic, Diagnostics};
use crate::host::HostFacts;
use crate::recipe::tree::FileTree;

/// Used when the user names no target: the product exists for Jetson Orin.
pub const DEFAULT_TARGET: &str = "jetson-orin";
pub const HOST_TARGET: &str = "host";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    pub description: String,
    pub arch: String,
    pub cuda_arch_list: Vec<String>,
    /// "3.10"
    pub python_version: String,
    pub platform_tag: String,
    pub cuda_home: PathBuf,
    /// How to build for it from a machine of another CPU (`[target.NAME.cross]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross: Option<CrossSpec>,
}

impl Target {
    /// The CPython tag, e.g. `cp310`.
    pub fn python_tag(&self) -> String {
        format!("cp{}", self.python_version.replace('.', ""))
    }

    /// `8.7;9.0` — the form TORCH_CUDA_ARCH_LIST and CMake lists accept.
    pub fn cuda_arch_list_str(&self) -> String {
        self.cuda_arch_list.join(";")
    }

    /// `87;90` — the form CMAKE_CUDA_ARCHITECTURES and `sm_` names use.
    pub fn cuda_arch_nodot(&self) -> String {
        self.cuda_arch_list
            .iter()
            .map(|a| a.replace('.', ""))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// One line for headers: `jetson-orin (aarch64, CUDA arch 8.7, cp310, linux_aarch64)`.
    pub fn summary(&self) -> String {
        let archs = if self.cuda_arch_list.is_empty() {
            "no CUDA arch".to_string()
        } else {
            format!("CUDA arch {}", self.cuda_arch_list.join(" "))
        };
        format!(
            "{} ({}, {}, {}, {})",
            self.name,
            self.arch,
            archs,
            self.python_tag(),
            self.platform_tag
        )
    }
}

/// `targets.toml` beside the recipe sets: the machines wheels are built for.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jetforge targets")]
struct TargetsFile {
    /// Target profiles by name (`--target NAME`); `host` is derived from this machine.
    #[serde(default)]
    target: BTreeMap<String, TargetSpec>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    /// One line for `list` and `plan`.
    description: String,
    /// CPU architecture (`aarch64`, `x86_64`).
    arch: String,
    /// CUDA archs built for (`["8.7"]`).
    cuda_arch_list: Vec<String>,
    /// CPython version of the target (`3.10`).
    python: String,
    /// Wheel platform tag (`linux_aarch64`).
    platform_tag: String,
    /// The CUDA toolkit directory.
    #[serde(default = "default_cuda_home")]
    cuda_home: PathBuf,
    /// Cross-building settings; without them the target is built natively only.
    #[serde(default)]
    cross: Option<RawCrossSpec>,
}

/// The JSON Schema of `targets.toml`.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(TargetsFile).to_value()
}

fn default_cuda_home() -> PathBuf {
    PathBuf::from("/usr/local/cuda")
}

/// Named targets from `targets.toml` of `tree`, falling back to the embedded file.
pub fn load_targets(tree: &FileTree) -> Result<Vec<Target>, Diagnostics> {
    let embedded;
    let (tree, bytes) = match tree.get("targets.toml") {
        Some(b) => (tree, b),
        None => {
            embedded = FileTree::embedded_recipes();
            let b = embedded.get("targets.toml").unwrap_or_default();
            (&embedded, b)
        }
    };
    let file = tree.display("targets.toml");
    let text = String::from_utf8_lossy(bytes);
    let parsed: TargetsFile =
        toml::from_str(&text).map_err(|e| Diagnostics(vec![toml_error(&file, &text, &e)]))?;
    let mut diags = Diagnostics::default();
    let mut out = Vec::new();
    for (name, t) in parsed.target {
        if name == HOST_TARGET {
            diags.push(Diagnostic::file_only(
                &file,
                "`host` is derived from the machine and cannot be defined",
            ));
            continue;
        }
        if let Some(bad) = t.cuda_arch_list.iter().find(|a| !valid_cuda_arch(a)) {
            diags.push(Diagnostic::file_only(
                &file,
                format!("target `{name}`: `{bad}` is not a CUDA arch like `8.7`"),
            ));
            continue;
        }
        out.push(Target {
            cross: t.cross.map(|c| CrossSpec::from_raw(&t.arch, c)),
            name,
            description: t.description,
            arch: t.arch,
            cuda_arch_list: t.cuda_arch_list,
            python_version: t.python,
            platform_tag: t.platform_tag,
            cuda_home: t.cuda_home,
        });
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// `8.7`, `9.0`, `9.0a`, `10.0` …
pub fn valid_cuda_arch(a: &str) -> bool {
    let a = a.strip_suffix(['a', 'f']).unwrap_or(a);
    matches!(a.split_once('.'), Some((maj, min)) if !maj.is_empty() && !min.is_empty()
        && maj.chars().all(|c| c.is_ascii_digit()) && min.chars().all(|c| c.is_ascii_digit()))
}

/// The `host` target: this machine's arch and Python, the CUDA archs given or detected.
pub fn host_target(facts: &HostFacts, cuda_arch: Option<&[String]>) -> Target {
    let python = facts
        .python
        .as_ref()
        .map(|p| p.version.split('.').take(2).collect::<Vec<_>>().join("."))
        .unwrap_or_else(|| "3".to_string());
    let cuda_arch_list = match cuda_arch {
        Some(list) => list.to_vec(),
        None => facts.gpu_arch.iter().cloned().collect(),
    };
    Target {
        name: HOST_TARGET.to_string(),
        description: "this machine".to_string(),
        arch: facts.arch.clone(),
        cuda_arch_list,
        python_version: python,
        platform_tag: format!("linux_{}", facts.arch),
        cuda_home: facts
            .cuda
            .as_ref()
            .map_or_else(default_cuda_home, |c| c.home.clone()),
        cross: None,
    }
}

/// Picks the target: the one named, else `jetson-orin` (on a Jetson and, as the plan of what a
/// Jetson would build, elsewhere). `--cuda-arch` replaces the profile's arch list.
pub fn select(
    name: Option<&str>,
    targets: &[Target],
    facts: &HostFacts,
    cuda_arch: Option<&[String]>,
) -> anyhow::Result<Target> {
    if let Some(bad) = cuda_arch
        .unwrap_or_default()
        .iter()
        .find(|a| !valid_cuda_arch(a))
    {
        return Err(crate::error::input_hint(
            format!("`{bad}` is not a CUDA arch"),
            "write compute capabilities with a dot, e.g. --cuda-arch 8.7 or --cuda-arch 9.0",
        ));
    }
    let name = name.unwrap_or(DEFAULT_TARGET);
    if name == HOST_TARGET {
        return Ok(host_target(facts, cuda_arch));
    }
    let mut t = targets
        .iter()
        .find(|t| t.name == name)
        .cloned()
        .ok_or_else(|| {
            let mut names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            names.push(HOST_TARGET);
            crate::error::input_hint(
                format!("no target named `{name}`"),
                format!("targets: {}", names.join(", ")),
            )
        })?;
    if let Some(list) = cuda_arch {
        t.cuda_arch_list = list.to_vec();
    }
    Ok(t)
}

/// `[target.NAME.cross]` as written in `targets.toml`; every key has a default.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCrossSpec {
    /// GNU triple of the toolchain (default `<arch>-linux-gnu`).
    triple: Option<String>,
    /// C compiler (default `<triple>-gcc`).
    cc: Option<String>,
    /// C++ compiler (default `<triple>-g++`).
    cxx: Option<String>,
    /// Archiver (default `<triple>-ar`).
    ar: Option<String>,
    /// A compiler launcher such as `ccache`, put before `cc`/`cxx`.
    launcher: Option<String>,
    /// A directory, or `{sysroot}`: JETFORGE_SYSROOT, else `[cross] sysroot` in jetforge.toml.
    sysroot: Option<String>,
    /// Module name of the target Python's sysconfigdata (default from the triple).
    python_sysconfigdata: Option<String>,
    /// Runs target programs, e.g. `["qemu-aarch64-static", "-L", "{sysroot}"]`.
    emulator: Option<Vec<String>>,
    /// The target's CUDA libraries (nvcc's `targets/<arch>-linux`), for CUDA builds.
    cuda_target_dir: Option<PathBuf>,
}

/// The written form of "the sysroot configured for this machine": `JETFORGE_SYSROOT`, else
/// `[cross] sysroot` in `jetforge.toml`. Also fills `emulator` arguments.
pub const SYSROOT_PLACEHOLDER: &str = "{sysroot}";

/// A target profile's cross settings, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossSpec {
    /// GNU triple of the toolchain, e.g. `aarch64-linux-gnu`.
    pub triple: String,
    pub cc: String,
    pub cxx: String,
    pub ar: String,
    /// A compiler launcher such as `ccache`, put before `cc`/`cxx`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launcher: Option<String>,
    /// A directory (a sysroot made by `scripts/make-arm64-sysroot.sh`, or a JetPack/L4T
    /// rootfs), or `{sysroot}` for the configured one.
    pub sysroot: String,
    /// Module name of the target Python's sysconfigdata in `<sysroot>/usr/lib/python3.X/`.
    pub python_sysconfigdata: String,
    /// Runs target programs, e.g. `["qemu-aarch64-static", "-L", "{sysroot}"]`; empty: none.
    pub emulator: Vec<String>,
    /// The target's CUDA libraries (nvcc's `targets/<arch>-linux`), for CUDA builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda_target_dir: Option<PathBuf>,
}

impl CrossSpec {
    pub fn from_raw(arch: &str, raw: RawCrossSpec) -> Self {
        let triple = raw.triple.unwrap_or_else(|| format!("{arch}-linux-gnu"));
        Self {
            cc: raw.cc.unwrap_or_else(|| format!("{triple}-gcc")),
            cxx: raw.cxx.unwrap_or_else(|| format!("{triple}-g++")),
            ar: raw.ar.unwrap_or_else(|| format!("{triple}-ar")),
            launcher: raw.launcher,
            sysroot: raw
                .sysroot
                .unwrap_or_else(|| SYSROOT_PLACEHOLDER.to_string()),
            python_sysconfigdata: raw
                .python_sysconfigdata
                .unwrap_or_else(|| format!("_sysconfigdata__linux_{triple}")),
            emulator: raw.emulator.unwrap_or_default(),
            cuda_target_dir: raw.cuda_target_dir,
            triple,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_targets_have_orin() {
        let ts = load_targets(&FileTree::empty("x")).unwrap();
        let orin = ts.iter().find(|t| t.name == DEFAULT_TARGET).unwrap();
        assert_eq!(orin.cuda_arch_list, ["8.7"]);
        assert_eq!(orin.python_tag(), "cp310");
        assert_eq!(orin.cuda_arch_nodot(), "87");
    }

    #[test]
    fn cuda_arch_syntax() {
        for ok in ["8.7", "9.0", "9.0a", "10.0", "12.0f"] {
            assert!(valid_cuda_arch(ok), "{ok}");
        }
        for bad in ["87", "sm_87", "8.", ".7", "x.y"] {
            assert!(!valid_cuda_arch(bad), "{bad}");
        }
    }
}
