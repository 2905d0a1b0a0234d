//! The build venv: created once per build, with each recipe's dependency wheels (exact files, no
//! index) and build requirements; jetforge's own tools run there without the cross variables.

use anyhow::{anyhow, Result};

use super::driver::{make_plans, BuildContext, BuildOptions};
use super::steps::indent_tail;
use super::wheels::dependency_wheels;
use crate::env::Origin;
use crate::jobs::JobsOverride;
use crate::process::runner::{self, Program, StepCommand};
use crate::recipe::Recipe;
use crate::venv::{self, Installer, VenvSpec};

/// Creates the build venv once per build and installs this recipe's dependency wheels
/// (exact files, no index) and build requirements.
pub(super) fn ensure_venv<'v>(
    cx: &BuildContext,
    r: &Recipe,
    opts: &BuildOptions,
    venv: &'v mut Option<VenvSpec>,
) -> Result<&'v VenvSpec> {
    cx.reporter.phase(&r.name, "venv");
    if venv.is_none() {
        let base = venv::find_python(&cx.target.python_version, opts.python.as_deref())?;
        let spec = VenvSpec {
            dir: cx.layout.venv_dir(),
            base_python: base,
            system_site_packages: opts.system_site_packages,
            installer: Installer::detect(cx.policy.offline()),
        };
        let argv = spec.create_argv();
        if !argv.is_empty() {
            run_tool(cx, r, "create the build venv", &argv)?;
            if let Some(pth) = spec.inherit_parent_site()? {
                cx.reporter.message(&format!(
                    "{}: the build venv also sees the packages of `{}` ({})",
                    r.name,
                    spec.base_python.display(),
                    pth.display()
                ));
            }
        }
        *venv = Some(spec);
    }
    let spec = venv.as_ref().expect("set above");
    // A cross build's dependency wheels are for the target: the build venv cannot load them.
    let wheels = match cx.cross {
        None => dependency_wheels(cx, r)?,
        Some(_) => Vec::new(),
    };
    if let Some(argv) = spec.install_wheels_argv(&wheels) {
        run_tool(
            cx,
            r,
            "install dependency wheels into the build venv",
            &argv,
        )?;
    }
    if let Some(argv) = spec.install_requirements_argv(&r.python_requires, cx.policy.offline()) {
        if let Err(e) = run_tool(
            cx,
            r,
            "install build requirements into the build venv",
            &argv,
        ) {
            return Err(requirements_failed(
                e,
                &r.name,
                &r.python_requires,
                cx.policy.offline(),
            ));
        }
    }
    Ok(spec)
}

/// Names the build requirement pip could not install (from pip's own words when it said,
/// else the whole list); the error underneath keeps pip's last lines. The hint about offline
/// builds only when offline: online the cause is elsewhere (a typo, a version that does not
/// exist, an unreachable index).
fn requirements_failed(
    e: anyhow::Error,
    recipe: &str,
    requires: &[String],
    offline: bool,
) -> anyhow::Error {
    const PIP_SAYS: &[&str] = &[
        "No matching distribution found for ",
        "Could not find a version that satisfies the requirement ",
    ];
    let text = format!("{e:#}");
    let named = text.lines().find_map(|l| {
        PIP_SAYS.iter().find_map(|m| {
            let rest = &l[l.find(m)? + m.len()..];
            rest.split_whitespace().next().map(str::to_string)
        })
    });
    let what = match named {
        Some(req) => format!("{recipe}: build requirement `{req}` could not be installed"),
        None => format!(
            "{recipe}: the build requirements could not be installed ({})",
            requires.join(", ")
        ),
    };
    if offline {
        e.context(format!(
            "{what}: with --offline, build requirements must already be installed (see \
             --system-site-packages)"
        ))
    } else {
        e.context(what)
    }
}

/// Runs a jetforge-internal command (venv creation, pip) with the recipe's environment.
fn run_tool(cx: &BuildContext, r: &Recipe, what: &str, argv: &[String]) -> Result<()> {
    let plan = make_plans(cx, &[r], &JobsOverride::default())?.remove(0);
    let cmd = StepCommand {
        name: what.to_string(),
        program: Program::Argv(argv.to_vec()),
        cwd: crate::paths::current_dir()?,
        env: plan
            .build_env
            .without(Origin::Cross)
            .pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        log: cx.layout.log_dir(&r.name).join("venv.log"),
    };
    let out = runner::run(&cmd, &mut |l| cx.reporter.line(&r.name, l))?;
    if out.success() {
        return Ok(());
    }
    Err(anyhow!(
        "{}: failed to {what} ({})\n  command: {}\n  log: {}\n{}",
        r.name,
        out.status,
        cmd.display(),
        cmd.log.display(),
        indent_tail(&out.tail)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(pip: &str, offline: bool) -> String {
        let reqs = ["numpy".to_string(), "ninja".to_string()];
        format!(
            "{:#}",
            requirements_failed(anyhow!("{pip}"), "torch", &reqs, offline)
        )
    }

    #[test]
    fn the_requirement_pip_could_not_install_is_named() {
        let text = said(
            "| ERROR: No matching distribution found for ninja==9.9",
            false,
        );
        assert!(
            text.starts_with("torch: build requirement `ninja==9.9` could not be installed"),
            "{text}"
        );
        assert!(!text.contains("--offline"), "{text}");
    }

    #[test]
    fn without_pip_naming_one_every_requirement_is_listed_and_offline_gets_the_hint() {
        let text = said("pip exploded", true);
        assert!(
            text.contains("torch: the build requirements could not be installed (numpy, ninja)"),
            "{text}"
        );
        assert!(
            text.contains("with --offline, build requirements must"),
            "{text}"
        );
    }
}
