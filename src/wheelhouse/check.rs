//! Checks on built wheels, before they enter the wheelhouse: the version is the recipe's, the
//! tags fit the target, and every pin one wheel of the set puts on another holds (PEP 508
//! markers evaluated for the target, not for the build machine). Pure functions over
//! [`WheelInfo`]; running Python import checks is the build's job, not this module's.
//!
//! Size: about 541 lines, of which 225 are the unit tests beside the code (316 of code).

use std::collections::BTreeMap;
use std::fmt;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder, PackageName, VersionOrUrl};

use super::wheel::WheelInfo;
use crate::target::Target;

/// One failed check. The message names the package and the wheel file; [`CheckError::hint`]
/// says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{package}: `{file}` has version {actual}, but the recipe says {expected}")]
    VersionMismatch {
        package: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{package}: `{file}` has the pre-release/dev version {actual}, but the recipe says {expected}")]
    UnreleasedVersion {
        package: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{package}: `{file}` is for platform {actual}, but target `{target}` needs {expected}"
    )]
    WrongPlatform {
        package: String,
        file: String,
        target: String,
        expected: String,
        actual: String,
    },
    #[error("{package}: `{file}` is for Python {actual}, but target `{target}` runs {expected}")]
    WrongPython {
        package: String,
        file: String,
        target: String,
        expected: String,
        actual: String,
    },
    #[error("{package}: `{file}` says it is {file_tags} but its WHEEL file says {wheel_tags}")]
    TagsDisagree {
        package: String,
        file: String,
        file_tags: String,
        wheel_tags: String,
    },
    #[error("{package} {version} requires {requirement}, but the set builds {dependency} {dependency_version} (in `{file}`)")]
    PinViolated {
        package: String,
        version: String,
        file: String,
        requirement: String,
        dependency: String,
        dependency_version: String,
    },
}

impl CheckError {
    /// What the user should do about it.
    pub fn hint(&self) -> String {
        match self {
            CheckError::VersionMismatch { expected, .. } => format!(
                "make the build produce {expected} (the recipe's `[package] version`), or fix the recipe version"
            ),
            CheckError::UnreleasedVersion { expected, .. } => format!(
                "set PYTORCH_BUILD_VERSION={expected} and PYTORCH_BUILD_NUMBER=1 (torch), or SETUPTOOLS_SCM_PRETEND_VERSION (setuptools-scm projects)"
            ),
            CheckError::WrongPlatform { .. } => {
                "check the target's toolchain: the build ran for another CPU (cross settings, or a wheel copied from another machine)".to_string()
            }
            CheckError::WrongPython { .. } => {
                "build with the target's Python in the build venv (see `jetforge env`)".to_string()
            }
            CheckError::TagsDisagree { .. } => {
                "rebuild the wheel instead of renaming it; retag with `wheel tags` if it must change".to_string()
            }
            CheckError::PinViolated { package, dependency, .. } => format!(
                "change `{dependency}`'s recipe version to one the pin accepts, or patch `{package}` to relax its pin"
            ),
        }
    }
}

/// All failed checks of one call, so a user sees every problem at once. Shown as one line per
/// check; the hints go to the error's hint lines (see [`CheckErrors::into_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckErrors(pub Vec<CheckError>);

impl CheckErrors {
    /// One error (exit 1): `message`, the failed checks below it, their hints and `more_hints`.
    pub fn into_error(self, message: &str, more_hints: &[&str]) -> anyhow::Error {
        let mut hints: Vec<String> = self.0.iter().map(CheckError::hint).collect();
        hints.extend(more_hints.iter().map(|h| h.to_string()));
        crate::error::failure_hints(format!("{message}\n{self}"), hints)
    }
}

impl fmt::Display for CheckErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CheckErrors {}

fn into_result(errors: Vec<CheckError>) -> Result<(), CheckErrors> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CheckErrors(errors))
    }
}

/// Checks one built wheel against its recipe version and the target.
pub fn check_wheel(
    wheel: &WheelInfo,
    recipe_version: &Version,
    target: &Target,
) -> Result<(), CheckErrors> {
    let errors = [
        check_version(wheel, recipe_version),
        check_tags(wheel, target),
    ]
    .into_iter()
    .flatten()
    .collect();
    into_result(errors)
}

/// The wheel's version must be the recipe's; a `+local` label is allowed.
pub fn check_version(wheel: &WheelInfo, expected: &Version) -> Option<CheckError> {
    let actual = &wheel.metadata.version;
    let public = if expected.is_local() {
        actual.clone()
    } else {
        actual.clone().without_local()
    };
    if &public == expected {
        return None;
    }
    let (package, file) = (wheel.package(), wheel.file().to_string());
    let (expected, actual) = (expected.to_string(), actual.to_string());
    let unreleased = public.is_pre() || public.is_dev();
    Some(if unreleased {
        CheckError::UnreleasedVersion {
            package,
            file,
            expected,
            actual,
        }
    } else {
        CheckError::VersionMismatch {
            package,
            file,
            expected,
            actual,
        }
    })
}

/// Some tag of the file name must fit the target's Python and platform, and the `WHEEL` file's
/// tags must be the file name's (a renamed wheel lies about what it contains).
pub fn check_tags(wheel: &WheelInfo, target: &Target) -> Option<CheckError> {
    let name = &wheel.name;
    let (package, file) = (wheel.package(), wheel.file().to_string());
    let file_tags = sorted(name.tags());
    let wheel_tags = sorted(wheel.wheel_tags.clone());
    if file_tags != wheel_tags {
        return Some(CheckError::TagsDisagree {
            package,
            file,
            file_tags: file_tags.join("."),
            wheel_tags: wheel_tags.join("."),
        });
    }
    if !name.platform_tags.iter().any(|p| platform_fits(p, target)) {
        return Some(CheckError::WrongPlatform {
            package,
            file,
            target: target.name.clone(),
            expected: format!(
                "{} (or manylinux*_{}, any)",
                target.platform_tag, target.arch
            ),
            actual: name.platform_tags.join("."),
        });
    }
    let python_ok = name
        .python_tags
        .iter()
        .any(|py| name.abi_tags.iter().any(|abi| python_fits(py, abi, target)));
    (!python_ok).then(|| CheckError::WrongPython {
        package,
        file,
        target: target.name.clone(),
        expected: target.python_tag(),
        actual: format!("{}-{}", name.python_tags.join("."), name.abi_tags.join(".")),
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// `linux_aarch64` accepts itself, `manylinux*_aarch64` and `any`.
fn platform_fits(platform: &str, target: &Target) -> bool {
    platform == "any"
        || platform == target.platform_tag
        || (target.platform_tag == format!("linux_{}", target.arch)
            && platform.starts_with("manylinux")
            && platform.ends_with(&format!("_{}", target.arch)))
}

/// For CPython 3.N: `cp3N` (ABI `cp3N`, `abi3` or `none`), `cp3M-abi3` with M ≤ N, `py3`,
/// `py3M` with M ≤ N.
fn python_fits(python: &str, abi: &str, target: &Target) -> bool {
    let own = target.python_tag();
    let minor = |tag: &str, prefix: &str| -> Option<u32> { tag.strip_prefix(prefix)?.parse().ok() };
    let target_minor = minor(&own, "cp3");
    let at_most_target = |m: Option<u32>| matches!((m, target_minor), (Some(m), Some(t)) if m <= t);
    if python == own {
        return abi == own || abi == "abi3" || abi == "none";
    }
    if python.starts_with("cp3") {
        return abi == "abi3" && at_most_target(minor(python, "cp3"));
    }
    abi == "none" && (python == "py3" || at_most_target(minor(python, "py3")))
}

/// The PEP 508 marker environment of the target: Linux, CPython, the target's arch and Python.
/// The target knows only `3.N`, so `python_full_version` is `3.N.0`.
pub fn marker_environment(target: &Target) -> MarkerEnvironment {
    let full = if target.python_version.matches('.').count() >= 2 {
        target.python_version.clone()
    } else {
        format!("{}.0", target.python_version)
    };
    let short: String = full.split('.').take(2).collect::<Vec<_>>().join(".");
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &full,
        os_name: "posix",
        platform_machine: &target.arch,
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: "Linux",
        platform_version: "",
        python_full_version: &full,
        python_version: &short,
        sys_platform: "linux",
    })
    .unwrap_or_else(|e| panic!("target `{}` has Python `{full}`: {e}", target.name))
}

/// Every `Requires-Dist` of every wheel that names a package the set builds (keys: normalized
/// names) must accept the version the set builds, for the markers of `target`. Requirements
/// only under an `extra` do not apply. Returns every violation.
pub fn check_requirements(
    wheels: &[WheelInfo],
    set_versions: &BTreeMap<PackageName, Version>,
    target: &Target,
) -> Result<(), CheckErrors> {
    let env = marker_environment(target);
    let mut errors = Vec::new();
    for wheel in wheels {
        for req in &wheel.metadata.requires_dist {
            let Some(built) = set_versions.get(&req.name) else {
                continue;
            };
            let Some(VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url else {
                continue;
            };
            if !req.evaluate_markers(&env, &[]) || spec.contains(built) {
                continue;
            }
            errors.push(pin_violated(wheel, req.name.as_ref(), spec, built));
        }
    }
    into_result(errors)
}

fn pin_violated(
    wheel: &WheelInfo,
    dependency: &str,
    spec: &VersionSpecifiers,
    built: &Version,
) -> CheckError {
    CheckError::PinViolated {
        package: wheel.package(),
        version: wheel.metadata.version.to_string(),
        file: wheel.file().to_string(),
        requirement: format!("{dependency}{spec}"),
        dependency: dependency.to_string(),
        dependency_version: built.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::str::FromStr;

    use super::*;
    use crate::wheelhouse::fixtures::{orin, TestWheel};

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    fn read(dir: &Path, w: TestWheel) -> WheelInfo {
        WheelInfo::read(&w.write(dir)).unwrap()
    }

    fn errors_of(r: Result<(), CheckErrors>) -> Vec<CheckError> {
        r.err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn version_equal_or_with_local_label_passes() {
        let dir = tempfile::tempdir().unwrap();
        for version in ["2.9.0", "2.9.0+cu126", "2.9"] {
            let w = read(dir.path(), TestWheel::new("torch", version));
            assert_eq!(check_version(&w, &v("2.9.0")), None, "{version}");
        }
    }

    #[test]
    fn git_prerelease_version_names_the_build_variables() {
        let dir = tempfile::tempdir().unwrap();
        let w = read(dir.path(), TestWheel::new("torch", "2.9.0a0+gitabc1234"));
        let e = check_version(&w, &v("2.9.0")).unwrap();
        assert!(matches!(e, CheckError::UnreleasedVersion { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("torch") && msg.contains("torch-2.9.0a0+gitabc1234-cp310"),
            "{msg}"
        );
        assert_eq!(
            e.hint(),
            "set PYTORCH_BUILD_VERSION=2.9.0 and PYTORCH_BUILD_NUMBER=1 (torch), or SETUPTOOLS_SCM_PRETEND_VERSION (setuptools-scm projects)"
        );
        let dev = read(dir.path(), TestWheel::new("triton", "3.5.0.dev0"));
        let e = check_version(&dev, &v("3.5.0")).unwrap();
        assert!(matches!(e, CheckError::UnreleasedVersion { .. }));
    }

    #[test]
    fn other_version_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let w = read(dir.path(), TestWheel::new("torchvision", "0.23.0"));
        let e = check_version(&w, &v("0.24.0")).unwrap();
        assert_eq!(
            e.to_string(),
            "torchvision: `torchvision-0.23.0-cp310-cp310-linux_aarch64.whl` has version 0.23.0, but the recipe says 0.24.0"
        );
    }

    #[test]
    fn platform_and_python_tags_that_fit_orin() {
        let dir = tempfile::tempdir().unwrap();
        for tag in [
            "cp310-cp310-linux_aarch64",
            "cp310-cp310-manylinux_2_28_aarch64",
            "cp310-cp310-manylinux2014_aarch64",
            "cp38-abi3-linux_aarch64",
            "py3-none-any",
            "py2.py3-none-any",
            "py310-none-any",
        ] {
            let w = read(dir.path(), TestWheel::new("pkg", "1.0").tag(tag));
            assert_eq!(check_wheel(&w, &v("1.0"), &orin()), Ok(()), "{tag}");
        }
    }

    #[test]
    fn wrong_arch_names_expected_and_actual() {
        let dir = tempfile::tempdir().unwrap();
        let w = read(
            dir.path(),
            TestWheel::new("torch", "2.9.0").tag("cp310-cp310-linux_x86_64"),
        );
        let errs = errors_of(check_wheel(&w, &v("2.9.0"), &orin()));
        assert_eq!(errs.len(), 1);
        let msg = errs[0].to_string();
        assert!(
            msg.contains("linux_x86_64") && msg.contains("needs linux_aarch64"),
            "{msg}"
        );
        assert!(
            msg.contains("`torch-2.9.0-cp310-cp310-linux_x86_64.whl`"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_python_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for tag in [
            "cp311-cp311-linux_aarch64",
            "cp312-abi3-linux_aarch64",
            "py311-none-any",
            "cp310-none-musllinux_1_2_aarch64",
        ] {
            let w = read(dir.path(), TestWheel::new("pkg", "1.0").tag(tag));
            let errs = errors_of(check_wheel(&w, &v("1.0"), &orin()));
            assert_eq!(errs.len(), 1, "{tag}");
        }
    }

    #[test]
    fn renamed_wheel_is_caught_by_its_wheel_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = TestWheel::new("pkg", "1.0")
            .tag("cp310-cp310-manylinux_2_28_aarch64")
            .wheel_tags(&["cp310-cp310-linux_x86_64"]);
        let errs = errors_of(check_wheel(&read(dir.path(), w), &v("1.0"), &orin()));
        assert!(
            matches!(errs[..], [CheckError::TagsDisagree { .. }]),
            "{errs:?}"
        );
    }

    #[test]
    fn version_and_tag_errors_come_together() {
        let dir = tempfile::tempdir().unwrap();
        let w = read(
            dir.path(),
            TestWheel::new("pkg", "1.0a1").tag("cp310-cp310-linux_x86_64"),
        );
        let err = check_wheel(&w, &v("1.0"), &orin()).unwrap_err();
        assert_eq!(err.0.len(), 2);
        let out = crate::error::render(&err.into_error("checks:", &[]));
        assert!(
            out.contains("\n  = hint: set PYTORCH_BUILD_VERSION=1.0"),
            "{out}"
        );
        assert_eq!(out.matches("= hint:").count(), 2, "{out}");
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<PackageName, Version> {
        pairs
            .iter()
            .map(|(n, ver)| (PackageName::from_str(n).unwrap(), v(ver)))
            .collect()
    }

    #[test]
    fn pins_within_the_set_hold() {
        let dir = tempfile::tempdir().unwrap();
        let wheels = [
            read(dir.path(), TestWheel::new("first", "1.0.0")),
            read(
                dir.path(),
                TestWheel::new("second", "2.0.0").requires(&["first==1.0.0", "numpy<2"]),
            ),
        ];
        let versions = set(&[("first", "1.0.0+cu126"), ("second", "2.0.0")]);
        assert_eq!(check_requirements(&wheels, &versions, &orin()), Ok(()));
    }

    #[test]
    fn every_violated_pin_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let wheels = [
            read(dir.path(), TestWheel::new("First", "1.0.0")),
            read(
                dir.path(),
                TestWheel::new("second", "2.0.0").requires(&["first==9.9", "third>=2"]),
            ),
            read(dir.path(), TestWheel::new("third", "1.0.0")),
        ];
        let versions = set(&[("first", "1.0.0"), ("second", "2.0.0"), ("third", "1.0.0")]);
        let errs = errors_of(check_requirements(&wheels, &versions, &orin()));
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "second 2.0.0 requires first==9.9, but the set builds first 1.0.0 (in `second-2.0.0-cp310-cp310-linux_aarch64.whl`)",
                "second 2.0.0 requires third>=2, but the set builds third 1.0.0 (in `second-2.0.0-cp310-cp310-linux_aarch64.whl`)",
            ]
        );
        assert!(errs[0].hint().contains("`first`'s recipe version"));
    }

    /// torch pins `triton==X; platform_machine == "x86_64"`: on Orin that pin does not apply,
    /// and the set's own triton must not be judged by it.
    #[test]
    fn markers_are_evaluated_for_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let torch = TestWheel::new("torch", "2.9.0").requires(&[
            "triton==3.5.0; platform_machine == \"x86_64\"",
            "triton==3.5.0; platform_machine == \"aarch64\" and python_version < \"3.10\"",
            "triton==3.5.0; python_version >= \"3.11\"",
            "triton==3.5.0; sys_platform == \"win32\"",
            "triton==3.5.0; extra == \"cuda\"",
            "triton[tests]==3.5.0; python_full_version < \"3.10.0\"",
        ]);
        let wheels = [read(dir.path(), torch)];
        let versions = set(&[("torch", "2.9.0"), ("triton", "3.4.0")]);
        assert_eq!(check_requirements(&wheels, &versions, &orin()), Ok(()));

        let applies = TestWheel::new("vllm", "0.11.0").requires(&[
            "triton==3.5.0; platform_machine == \"aarch64\" and python_version < \"3.11\" and os_name == \"posix\" and platform_system == \"Linux\" and implementation_name == \"cpython\" and platform_python_implementation == \"CPython\"",
        ]);
        let errs = errors_of(check_requirements(
            &[read(dir.path(), applies)],
            &versions,
            &orin(),
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
    }

    #[test]
    fn hinted_error_renders_with_hint() {
        let dir = tempfile::tempdir().unwrap();
        let w = read(dir.path(), TestWheel::new("pkg", "1.0"));
        let e = CheckErrors(vec![check_version(&w, &v("2.0")).unwrap()]).into_error("x", &[]);
        let out = crate::error::render(&e);
        assert!(out.contains("= hint: make the build produce 2.0"), "{out}");
        assert_eq!(crate::error::exit_code(&e), 1);
    }
}
