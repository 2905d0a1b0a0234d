//! Runs a verify snippet with the target's Python under the target's emulator (e.g.
//! `qemu-aarch64-static -L <sysroot> <sysroot>/usr/bin/python3.11 -c SNIPPET`), against wheels
//! installed for the target platform into a scratch dir, never into the build venv (its
//! interpreter is the build machine's and cannot load them). Used by `build` after a cross build
//! and meant for a standalone `verify`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use super::Cross;
use crate::process::runner::{self, Status, TimedOutput};

/// What an emulated verify needs.
pub struct EmulatedVerify<'a> {
    pub cross: &'a Cross,
    /// A Python of the build machine with pip, which unpacks the wheels for the target.
    pub installer_python: &'a Path,
    /// The wheels under test and every wheel they need at import time.
    pub wheels: &'a [PathBuf],
    pub snippet: &'a str,
    /// Variables for the snippet (HOME, JETFORGE_VERSION …); PYTHONPATH is set here.
    pub env: Vec<(String, String)>,
    /// Scratch dir the wheels are installed into; emptied first.
    pub site_dir: &'a Path,
    pub timeout: Duration,
}

/// The argv that runs `snippet` with the target's Python under the emulator.
pub fn emulated_python_argv(cross: &Cross, snippet: &str) -> Vec<String> {
    let mut argv = cross.emulator_argv();
    argv.push(cross.target_python().display().to_string());
    argv.extend(["-c".to_string(), snippet.to_string()]);
    argv
}

/// `pip install --target` for the target's platform and Python, from the given files only.
fn install_argv(v: &EmulatedVerify) -> Vec<String> {
    let mut argv: Vec<String> = [
        v.installer_python.display().to_string(),
        "-m".into(),
        "pip".into(),
        "install".into(),
        "--disable-pip-version-check".into(),
        "--no-deps".into(),
        "--no-index".into(),
        "--platform".into(),
        v.cross.platform_tag.clone(),
        "--python-version".into(),
        v.cross.python_version.clone(),
        "--implementation".into(),
        "cp".into(),
        "--only-binary=:all:".into(),
        "--target".into(),
        v.site_dir.display().to_string(),
    ]
    .into();
    argv.extend(v.wheels.iter().map(|w| w.display().to_string()));
    argv
}

/// Installs the wheels for the target and runs the snippet under the emulator. `Ok` carries
/// the snippet's run (status and output, which the caller judges); `Err` means it could not be
/// run at all.
pub fn run_verify_emulated(v: &EmulatedVerify) -> Result<TimedOutput> {
    if v.cross.emulator_argv().is_empty() {
        return Err(crate::error::input_hint(
            format!(
                "target for {} names no emulator, so the verify snippet cannot run here",
                v.cross.platforms.host
            ),
            "set emulator = [\"qemu-aarch64-static\", \"-L\", \"{sysroot}\"] in [target.NAME.cross]",
        ));
    }
    if v.site_dir.exists() {
        std::fs::remove_dir_all(v.site_dir)
            .with_context(|| format!("failed to remove `{}`", v.site_dir.display()))?;
    }
    std::fs::create_dir_all(v.site_dir)
        .with_context(|| format!("failed to create `{}`", v.site_dir.display()))?;
    let native_env: Vec<(String, String)> = v
        .env
        .iter()
        .filter(|(k, _)| k == "PATH" || k == "HOME")
        .cloned()
        .collect();
    let argv = install_argv(v);
    let install =
        runner::run_with_timeout(&argv, &native_env, v.site_dir, Duration::from_secs(300))?;
    if install.status != Some(Status::Success) {
        return Err(anyhow!(
            "failed to install the wheels for {} into `{}`:\n  command: {}\n{}",
            v.cross.platform_tag,
            v.site_dir.display(),
            argv.join(" "),
            install.output.trim_end()
        ));
    }
    let mut env = v.env.clone();
    env.retain(|(k, _)| !k.starts_with("PYTHON") && !k.starts_with("_PYTHON"));
    env.extend([
        ("PYTHONPATH".to_string(), v.site_dir.display().to_string()),
        ("PYTHONNOUSERSITE".to_string(), "1".to_string()),
        ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
    ]);
    let argv = emulated_python_argv(v.cross, v.snippet);
    let cwd = v.site_dir.parent().unwrap_or(v.site_dir);
    runner::run_with_timeout(&argv, &env, cwd, v.timeout)
}
