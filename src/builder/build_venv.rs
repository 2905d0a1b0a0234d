//! The build venv: created once per build, with each recipe's dependency wheels (exact files, no
//! index) and PEP 518 build requirements (see `build_reqs`: the set's own wheels, the rest through
//! jetforge's wheel cache); jetforge's own tools run there without the cross variables.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::driver::{make_plans, BuildContext, BuildOptions};
use super::steps::indent_tail;
use super::wheels::dependency_wheels;
use crate::build_reqs;
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
            seeds: cx.venv_seeds.map(Path::to_path_buf),
        };
        let made = spec.create("create the build venv", &mut |what, argv| {
            run_tool(cx, r, what, argv)
        })?;
        report_made(cx, r, "build venv", &made);
        if made != venv::Made::Existed {
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
    let project = build_reqs::project_requires(r, &cx.layout.source_dir(&r.name))?;
    let reqs = build_reqs::resolve(project.as_deref(), &r.python_requires, cx.set)?;
    // A cross build's dependency wheels are for the target: the build venv cannot load them.
    let wheels = match cx.cross {
        None => {
            let mut w = dependency_wheels(cx, r)?;
            for f in set_wheel_requirements(cx, r, &reqs)? {
                if !w.contains(&f) {
                    w.push(f);
                }
            }
            w
        }
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
    install_build_requirements(cx, r, spec, &reqs)?;
    Ok(spec)
}

/// Says how a venv was made: a line for -v, a warning when the pip seed could not be used or
/// had to be made again.
pub(super) fn report_made(cx: &BuildContext, r: &Recipe, which: &str, made: &venv::Made) {
    if let Some(w) = made.warning() {
        cx.reporter.message(&format!("warning: {}: {w}", r.name));
    }
    if let venv::Made::Seeded { seed, .. } = made {
        cx.reporter.line(
            &r.name,
            &format!("{which}: pip from the seed `{}`", seed.display()),
        );
    }
}

/// The wheelhouse files of the build requirements the set builds itself (the set's torch, not
/// the index's). One the wheelhouse lacks is an error: the recipe must come after its builder.
fn set_wheel_requirements(
    cx: &BuildContext,
    r: &Recipe,
    reqs: &[build_reqs::BuildReq],
) -> Result<Vec<PathBuf>> {
    let entries = cx.wheelhouse.entries()?;
    let mut out = Vec::new();
    for b in reqs {
        let build_reqs::Via::SetWheel { recipe } = &b.via else {
            continue;
        };
        let found: Vec<PathBuf> = entries
            .iter()
            .filter(|e| e.target == cx.target.name && e.package == b.name)
            .map(|e| cx.wheelhouse.dir().join(&e.file))
            .collect();
        if found.is_empty() {
            return Err(crate::error::input_hint(
                format!(
                    "{}: build requirement `{}` is built by the set (recipe `{recipe}`), but the \
                     wheelhouse has no wheel of it for target `{}`",
                    r.name, b.requirement, cx.target.name
                ),
                format!(
                    "add \"{recipe}\" to `[depends] recipes` in {} so that it is built first",
                    r.file
                ),
            ));
        }
        out.extend(found);
    }
    Ok(out)
}

/// Installs the build requirements the venv does not satisfy yet. Online they are first
/// downloaded (with their dependencies) into jetforge's wheel cache, then installed from
/// there with no index, so an offline build later finds the same wheels; offline, a
/// requirement with no wheel in the cache is named before pip runs.
///
/// Cache first: online, when the wheel cache already satisfies every requirement (pip with
/// `--no-index --find-links <cache>` succeeds), the index is not asked at all. Each fresh work
/// dir used to pay a `pip wheel` round trip to the index (through the proxy, ~1 s on a Jetson)
/// for wheels the cache held; the cache is the record of what the builds used. What it
/// changes: an unpinned requirement (`wheel`) is not upgraded while the cache satisfies it;
/// `jetforge clean --caches` empties the cache, and the next build takes the index's newest.
/// Only when the cache falls short does the build download, then install, as before.
/// `JETFORGE_BUILD_REQS_CACHE_FIRST=0` always asks the index (for benchmarks).
fn install_build_requirements(
    cx: &BuildContext,
    r: &Recipe,
    spec: &VenvSpec,
    reqs: &[build_reqs::BuildReq],
) -> Result<()> {
    let from_index: Vec<&build_reqs::BuildReq> = reqs
        .iter()
        .filter(|b| b.via == build_reqs::Via::Index)
        .collect();
    if from_index.is_empty() {
        return Ok(());
    }
    let wanted: Vec<String> = from_index.iter().map(|b| b.requirement.clone()).collect();
    let unsatisfied = unsatisfied(spec, &wanted)?;
    let todo: Vec<&build_reqs::BuildReq> = from_index
        .into_iter()
        .filter(|b| unsatisfied.contains(&b.requirement))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let offline = cx.policy.offline();
    let cache = build_reqs::wheel_cache(cx.cache_dir);
    crate::paths::create_dir_all(&cache)?;
    let names: Vec<String> = todo.iter().map(|b| b.requirement.clone()).collect();
    let failed = |e, offline| requirements_failed(e, &r.name, &r.python_requires, offline, &cache);
    if offline {
        let missing = build_reqs::missing_from_cache(&cache, &todo);
        if !missing.is_empty() {
            let list = todo
                .iter()
                .filter(|b| missing.contains(&b.requirement))
                .map(|b| format!("  {b}"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(crate::error::input_hint(
                format!(
                    "{}: offline: {} build requirement(s) missing from the wheel cache `{}` and \
                     not installed:\n{list}",
                    r.name,
                    missing.len(),
                    cache.display()
                ),
                format!(
                    "run the build once online (it fills the cache), put the wheels there \
                     (`pip download -d {} {}`), or use --system-site-packages with them installed",
                    cache.display(),
                    missing.join(" ")
                ),
            ));
        }
    } else {
        if cx.build_reqs_cache_first && build_reqs::missing_from_cache(&cache, &todo).is_empty() {
            let argv = spec.install_cached_requirements_argv(&cache, &names);
            if run_tool(
                cx,
                r,
                "install build requirements from the wheel cache",
                &argv,
            )
            .is_ok()
            {
                return Ok(());
            }
            cx.reporter.line(
                &r.name,
                "the wheel cache does not satisfy the build requirements: asking the index",
            );
        }
        let argv = spec.download_requirements_argv(&cache, &names);
        if let Err(e) = run_tool(
            cx,
            r,
            "download build requirements into the wheel cache",
            &argv,
        ) {
            return Err(failed(e, false));
        }
    }
    let argv = spec.install_cached_requirements_argv(&cache, &names);
    if let Err(e) = run_tool(
        cx,
        r,
        "install build requirements into the build venv",
        &argv,
    ) {
        return Err(failed(e, offline));
    }
    Ok(())
}

/// The requirements of `reqs` the venv does not satisfy (asked of the venv's own Python).
fn unsatisfied(spec: &VenvSpec, reqs: &[String]) -> Result<Vec<String>> {
    let mut args: Vec<String> = vec!["-c".into(), build_reqs::UNSATISFIED_PROBE.into()];
    args.extend(reqs.iter().cloned());
    let out = duct::cmd(spec.python(), &args)
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("failed to run `{}`", spec.python().display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "failed to check the build requirements against the build venv `{}`: {}",
            spec.dir.display(),
            text.trim()
        );
    }
    Ok(text.lines().map(str::to_string).collect())
}

/// Names the build requirement pip could not install (from pip's own words when it said,
/// else the whole list); the error underneath keeps pip's last lines. The hint about offline
/// builds only when offline: online the cause is elsewhere (a typo, a version that does not
/// exist, an unreachable index); offline, it names `wheel_cache`, where they come from.
fn requirements_failed(
    e: anyhow::Error,
    recipe: &str,
    requires: &[String],
    offline: bool,
    wheel_cache: &Path,
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
            "{what}: with --offline, build requirements and their dependencies come from the \
             wheel cache `{}` or must already be installed (see --system-site-packages)",
            wheel_cache.display()
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
            requirements_failed(
                anyhow!("{pip}"),
                "torch",
                &reqs,
                offline,
                Path::new("/c/wheels")
            )
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
            text.contains(
                "with --offline, build requirements and their dependencies come from the wheel \
                 cache `/c/wheels`"
            ),
            "{text}"
        );
    }
}
