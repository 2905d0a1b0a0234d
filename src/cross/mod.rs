//! Cross-building: wheels for another CPU (the *host* platform, e.g. a Jetson's aarch64) built on
//! the *build* platform jetforge runs on (e.g. an x86-64 CI runner).
//!
//! This module owns the decision native / cross / refused ([`mode`]), the `[target.NAME.cross]`
//! settings of a profile (`target::CrossSpec`, which lives beside `Target`), the environment a cross build's steps get
//! ([`Cross::env`]), the files that environment points at (`files`), which recipes may be
//! cross-built ([`refuse_uncrossable`]), the doctor's checks (`report`) and running a built
//! wheel under the target's emulator (`emulate`). It does not run build steps or compose the rest
//! of the environment: `builder::driver` and `env` call in here.
//!
//! How a Python extension gets cross-built: the build venv's (build platform) Python runs
//! setuptools, told by `_PYTHON_HOST_PLATFORM` and `_PYTHON_SYSCONFIGDATA_NAME` (with a
//! `PYTHONPATH` holding only the target's sysconfigdata, copied from the sysroot) that it builds
//! for the target; the cross compiler and the sysroot's headers (via `CPPFLAGS`, as `CFLAGS`
//! would replace the `-O2` the sysconfigdata carries) and libraries (`--sysroot`) do the rest.
//! CMake projects get a toolchain file instead.

pub mod emulate;
mod files;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::recipe::{OutputKind, Recipe};
use crate::target::{CrossSpec, Target, SYSROOT_PLACEHOLDER};

pub use emulate::run_verify_emulated;
pub use files::materialize;
pub use report::{cross_report, CrossCheck};

/// Where jetforge runs (`build`) and where the wheels run (`host`), as CPU architectures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platforms {
    pub build: String,
    pub host: String,
}

impl Platforms {
    pub fn new(build_arch: &str, target: &Target) -> Self {
        Self {
            build: build_arch.to_string(),
            host: target.arch.clone(),
        }
    }

    pub fn is_cross(&self) -> bool {
        self.build != self.host
    }
}

/// How a build for the chosen target runs on this machine.
#[derive(Debug, Clone)]
pub enum Mode {
    Native,
    Cross(Box<Cross>),
    /// Another CPU, and the target has no cross settings: only `plan` can show its build.
    NoCrossSettings(Platforms),
}

impl Mode {
    /// The cross settings for plans and environments; a target without any is shown as it
    /// would build on its own machine.
    pub fn cross(&self) -> Option<&Cross> {
        match self {
            Mode::Cross(c) => Some(c),
            Mode::Native | Mode::NoCrossSettings(_) => None,
        }
    }
}

/// A cross build, resolved for one target and work dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cross {
    pub platforms: Platforms,
    pub spec: CrossSpec,
    pub sysroot: PathBuf,
    /// `3.11`: the target's Python, whose headers and sysconfigdata the sysroot holds.
    pub python_version: String,
    /// The wheel platform tag of the target, e.g. `linux_aarch64`.
    pub platform_tag: String,
    /// Set for targets with CUDA archs: the target's toolkit dir (see [`CrossSpec::cuda_target_dir`]).
    pub cuda_target_dir: Option<PathBuf>,
    /// Where generated files go (`<work-dir>/<set>-<target>/cross`).
    pub dir: PathBuf,
}

/// Decides native or cross for `target` on a machine of `build_arch`. `configured_sysroot`
/// replaces `{sysroot}`; `dir` receives generated files.
pub fn mode(
    target: &Target,
    build_arch: &str,
    configured_sysroot: Option<&Path>,
    dir: &Path,
) -> Result<Mode> {
    let platforms = Platforms::new(build_arch, target);
    if !platforms.is_cross() {
        return Ok(Mode::Native);
    }
    let Some(spec) = &target.cross else {
        return Ok(Mode::NoCrossSettings(platforms));
    };
    let sysroot = if spec.sysroot == SYSROOT_PLACEHOLDER {
        configured_sysroot.map(Path::to_path_buf).ok_or_else(|| {
            crate::error::input_hint(
                format!(
                    "target `{}` cross-builds against the configured sysroot, but none is configured",
                    target.name
                ),
                format!(
                    "set {} or `[cross] sysroot` in jetforge.toml to a target rootfs (make one with scripts/make-arm64-sysroot.sh DIR)",
                    crate::envvars::JETFORGE_SYSROOT
                ),
            )
        })?
    } else {
        PathBuf::from(&spec.sysroot)
    };
    let sysroot = std::path::absolute(&sysroot)?;
    let cuda_target_dir = (!target.cuda_arch_list.is_empty()).then(|| {
        spec.cuda_target_dir.clone().unwrap_or_else(|| {
            target
                .cuda_home
                .join("targets")
                .join(format!("{}-linux", target.arch))
        })
    });
    Ok(Mode::Cross(Box::new(Cross {
        platforms,
        spec: spec.clone(),
        sysroot,
        python_version: target.python_version.clone(),
        platform_tag: target.platform_tag.clone(),
        cuda_target_dir,
        dir: dir.to_path_buf(),
    })))
}

impl Cross {
    /// Holds only the target's sysconfigdata: `PYTHONPATH` of cross build steps.
    pub fn sysconfig_dir(&self) -> PathBuf {
        self.dir.join("sysconfigdata")
    }

    pub fn toolchain_file(&self) -> PathBuf {
        self.dir.join("toolchain.cmake")
    }

    /// The sysconfigdata file in the sysroot that `materialize` copies.
    pub fn sysconfigdata_source(&self) -> PathBuf {
        self.sysroot
            .join("usr/lib")
            .join(format!("python{}", self.python_version))
            .join(format!("{}.py", self.spec.python_sysconfigdata))
    }

    /// The target's interpreter inside the sysroot (run it through the emulator).
    pub fn target_python(&self) -> PathBuf {
        self.sysroot
            .join("usr/bin")
            .join(format!("python{}", self.python_version))
    }

    pub fn python_include_dir(&self) -> PathBuf {
        self.sysroot
            .join("usr/include")
            .join(format!("python{}", self.python_version))
    }

    /// The emulator's argv with `{sysroot}` filled; empty when the profile names none.
    pub fn emulator_argv(&self) -> Vec<String> {
        let sysroot = self.sysroot.display().to_string();
        self.spec
            .emulator
            .iter()
            .map(|a| a.replace(SYSROOT_PLACEHOLDER, &sysroot))
            .collect()
    }

    fn launched(&self, compiler: &str) -> String {
        match &self.spec.launcher {
            Some(l) => format!("{l} {compiler}"),
            None => compiler.to_string(),
        }
    }

    pub fn cc(&self) -> String {
        self.launched(&self.spec.cc)
    }

    pub fn cxx(&self) -> String {
        self.launched(&self.spec.cxx)
    }

    /// `linux-aarch64`: what `sysconfig.get_platform()` must say, so the wheel is tagged for it.
    pub fn host_platform(&self) -> String {
        format!("linux-{}", self.platforms.host)
    }

    /// The variables a cross build's steps get, in order (`env` adds them with origin `cross`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let s = self.sysroot.display();
        let mut ldflags = format!("--sysroot={s}");
        let mut env = vec![
            ("CROSS_COMPILING", "1".to_string()),
            ("CC", self.cc()),
            ("CXX", self.cxx()),
            ("AR", self.spec.ar.clone()),
            ("LDSHARED", format!("{} -shared", self.cc())),
            ("LDCXXSHARED", format!("{} -shared", self.cxx())),
            ("_PYTHON_HOST_PLATFORM", self.host_platform()),
            (
                "_PYTHON_SYSCONFIGDATA_NAME",
                self.spec.python_sysconfigdata.clone(),
            ),
            ("PYTHONPATH", self.sysconfig_dir().display().to_string()),
            (
                "CPPFLAGS",
                format!(
                    "-I{} -idirafter {s}/usr/include",
                    self.python_include_dir().display()
                ),
            ),
            (
                "CMAKE_TOOLCHAIN_FILE",
                self.toolchain_file().display().to_string(),
            ),
        ];
        if let Some(cuda) = &self.cuda_target_dir {
            ldflags.push_str(&format!(" -L{}/lib", cuda.display()));
            env.push(("NVCC_PREPEND_FLAGS", format!("-ccbin {}", self.spec.cxx)));
            env.push(("CUDA_TARGET_DIR", cuda.display().to_string()));
        }
        env.push(("LDFLAGS", ldflags));
        env
    }

    /// The CMake toolchain file: target system, sysroot, compilers, and find modes that take
    /// libraries and headers only from the sysroot but programs only from the build machine.
    pub fn toolchain_cmake(&self) -> String {
        let mut out = format!(
            "# Generated by jetforge for a cross build ({} -> {}).\n\
             set(CMAKE_SYSTEM_NAME Linux)\n\
             set(CMAKE_SYSTEM_PROCESSOR {})\n\
             set(CMAKE_SYSROOT \"{}\")\n\
             set(CMAKE_C_COMPILER \"{}\")\n\
             set(CMAKE_CXX_COMPILER \"{}\")\n\
             set(CMAKE_AR \"{}\")\n\
             set(CMAKE_FIND_ROOT_PATH \"{}\")\n\
             set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n\
             set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)\n\
             set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)\n\
             set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)\n",
            self.platforms.build,
            self.platforms.host,
            self.platforms.host,
            self.sysroot.display(),
            self.spec.cc,
            self.spec.cxx,
            self.spec.ar,
            self.sysroot.display(),
        );
        if let Some(l) = &self.spec.launcher {
            out.push_str(&format!(
                "set(CMAKE_C_COMPILER_LAUNCHER \"{l}\")\nset(CMAKE_CXX_COMPILER_LAUNCHER \"{l}\")\n"
            ));
        }
        if let Some(cuda) = &self.cuda_target_dir {
            out.push_str(&format!(
                "set(CMAKE_CUDA_HOST_COMPILER \"{}\")\nset(CUDAToolkit_TARGET_DIR \"{}\")\n",
                self.spec.cxx,
                cuda.display()
            ));
        }
        out
    }
}

/// Refuses a cross build that includes a recipe not marked `[build] cross = true`, naming every
/// such recipe. Source-only recipes compile nothing and always pass.
pub fn refuse_uncrossable(recipes: &[&Recipe], target: &Target) -> Result<()> {
    let mut refused = Vec::new();
    for r in recipes.iter().filter(|r| r.output == OutputKind::Wheel) {
        match r.cross {
            Some(true) => {}
            Some(false) => refused.push(format!(
                "  {} ({}): `[build] cross = false`",
                r.name, r.file
            )),
            None => refused.push(format!(
                "  {} ({}): does not say whether it can be cross-built",
                r.name, r.file
            )),
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(crate::error::input_hint(
        format!(
            "target `{}` is a cross build, and these recipes cannot be cross-built:\n{}",
            target.name,
            refused.join("\n")
        ),
        "build them on the target itself; set `[build] cross = true` in a recipe once it builds with the cross environment (see `jetforge env PKG`)",
    ))
}

#[cfg(test)]
mod tests;
