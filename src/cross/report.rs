//! Whether this machine can cross-build for a target: the toolchain on PATH, a sysroot with the
//! target's Python headers, sysconfigdata and C library, and an emulator that starts the
//! target's Python. `doctor` prints these; nothing here changes the machine.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{mode, Cross, Mode};
use crate::host::HostFacts;
use crate::target::Target;

/// One check: what was looked at, whether it is usable, and how to fix it when not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrossCheck {
    pub what: String,
    pub ok: bool,
    /// What was found, or the problem.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl CrossCheck {
    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(what: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

const TOOLCHAIN_FIX: &str =
    "apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross (or set cc/cxx/ar in [target.NAME.cross])";
const SYSROOT_FIX: &str =
    "make a sysroot with scripts/make-arm64-sysroot.sh DIR, or point the target's sysroot at a JetPack/L4T rootfs";

/// The cross checks for `target` on this machine; one `ok` line for a native build.
pub fn cross_report(
    target: &Target,
    facts: &HostFacts,
    configured_sysroot: Option<&Path>,
) -> Vec<CrossCheck> {
    let scratch = std::env::temp_dir().join("jetforge-cross-report");
    match mode(target, &facts.arch, configured_sysroot, &scratch) {
        Ok(Mode::Native) => vec![CrossCheck::ok(
            "platforms",
            format!("native build ({}): no cross toolchain needed", facts.arch),
        )],
        Ok(Mode::NoCrossSettings(p)) => vec![CrossCheck::problem(
            "platforms",
            format!(
                "target `{}` is {} and this machine is {}, but the target has no cross settings",
                target.name, p.host, p.build
            ),
            "add a [target.NAME.cross] table to targets.toml (see the jetson-orin-cross profile)",
        )],
        Ok(Mode::Cross(c)) => checks(&c),
        Err(e) => vec![CrossCheck::problem(
            "sysroot",
            e.to_string(),
            format!(
                "set {} or `[cross] sysroot` in jetforge.toml",
                crate::envvars::JETFORGE_SYSROOT
            ),
        )],
    }
}

fn checks(c: &Cross) -> Vec<CrossCheck> {
    let mut out = vec![CrossCheck::ok(
        "platforms",
        format!("cross build: {} -> {}", c.platforms.build, c.platforms.host),
    )];
    let tools = [
        ("C compiler", &c.spec.cc),
        ("C++ compiler", &c.spec.cxx),
        ("archiver", &c.spec.ar),
    ];
    for (what, program) in tools {
        out.push(program_check(what, program, TOOLCHAIN_FIX));
    }
    if let Some(l) = &c.spec.launcher {
        out.push(program_check(
            "compiler launcher",
            l,
            "install it (apt-get install ccache) or drop `launcher`",
        ));
    }
    let s = &c.sysroot;
    let files = [
        ("sysroot", s.clone()),
        (
            "target Python headers",
            c.python_include_dir().join("Python.h"),
        ),
        ("target sysconfigdata", c.sysconfigdata_source()),
        (
            "target C library (for --sysroot links)",
            s.join("usr/lib").join(&c.spec.triple).join("libc.so"),
        ),
    ];
    for (what, path) in files {
        out.push(if path.exists() {
            CrossCheck::ok(what, path.display().to_string())
        } else {
            CrossCheck::problem(
                what,
                format!("`{}` is missing", path.display()),
                SYSROOT_FIX,
            )
        });
    }
    if let Some(cuda) = &c.cuda_target_dir {
        out.push(if cuda.is_dir() {
            CrossCheck::ok("target CUDA libraries", cuda.display().to_string())
        } else {
            CrossCheck::problem(
                "target CUDA libraries",
                format!("`{}` is missing", cuda.display()),
                "install the CUDA cross package for the target (cuda-cross-aarch64) or set cuda_target_dir",
            )
        });
    }
    out.push(emulator_check(c));
    out
}

fn program_check(what: &str, program: &str, fix: &str) -> CrossCheck {
    match which::which(program) {
        Ok(p) => CrossCheck::ok(what, p.display().to_string()),
        Err(_) => CrossCheck::problem(what, format!("`{program}` is not on PATH"), fix),
    }
}

/// Starts the target's Python under the emulator: the check `verify` depends on.
fn emulator_check(c: &Cross) -> CrossCheck {
    const WHAT: &str = "emulator";
    let argv = c.emulator_argv();
    let Some(program) = argv.first() else {
        return CrossCheck::problem(
            WHAT,
            "the target names no emulator: verify snippets are skipped",
            "set emulator = [\"qemu-aarch64-static\", \"-L\", \"{sysroot}\"] and apt-get install qemu-user-static",
        );
    };
    if which::which(program).is_err() {
        return CrossCheck::problem(
            WHAT,
            format!("`{program}` is not on PATH"),
            "apt-get install qemu-user-static",
        );
    }
    let mut run = argv.clone();
    run.push(c.target_python().display().to_string());
    run.extend([
        "-c".into(),
        "import sys; print(sys.version.split()[0])".into(),
    ]);
    let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
    match crate::process::runner::run_with_timeout(
        &run,
        &env,
        &std::env::temp_dir(),
        Duration::from_secs(60),
    ) {
        Ok(out) if out.status == Some(crate::process::runner::Status::Success) => CrossCheck::ok(
            WHAT,
            format!("{} runs the target's Python {}", program, out.output.trim()),
        ),
        Ok(out) => CrossCheck::problem(
            WHAT,
            format!(
                "the target's Python did not start under `{}`: {}",
                argv.join(" "),
                out.output.trim()
            ),
            SYSROOT_FIX,
        ),
        Err(e) => CrossCheck::problem(WHAT, format!("{e:#}"), "apt-get install qemu-user-static"),
    }
}
