//! Verifying the way a user runs a wheel: in a venv holding the new wheel and the set's wheels it
//! needs (installed as exact files with `--no-index --no-deps`, as `jetforge install` does), with
//! an environment built from the caller's shell only. None of a recipe's `[env]`, no build venv
//! on PATH, no MAX_JOBS: a wheel that only works with a build variable set (triton without its
//! bundled ptxas, say) must fail here, not on the user's machine.
//!
//! One verify venv per set and target (`<work>/<set>-<target>/verify-venv`), kept between
//! recipes and builds: each sync installs only the wheels whose bytes it does not already hold,
//! so verifying a recipe costs the install of its own new wheel (and of a rebuilt dependency),
//! not of the whole set. It is recreated when the interpreter or `--system-site-packages` it was
//! made with changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::hash::sha256_file;
use crate::layout::Layout;
use crate::process::runner::{self, Status};
use crate::recipe::RecipeSet;
use crate::venv::{Installer, Made, VenvSpec};
use crate::wheelhouse::store::{ManifestEntry, Wheelhouse};
use crate::wheelhouse::wheel::WheelInfo;

/// What the verify venv holds, next to it.
const STATE: &str = "jetforge-verify-venv.json";
/// Creating a venv or installing a few large wheels (torch is ~2 GB) takes minutes at most.
const TOOL_TIMEOUT: Duration = Duration::from_secs(1800);

/// Variables jetforge sets for build steps that a user's shell has no business with; dropped
/// from the verify environment even when the caller has them (e.g. after
/// `eval "$(jetforge env PKG)"`), so they cannot make a broken wheel pass.
const BUILD_ONLY: &[&str] = &[
    "MAX_JOBS",
    "CMAKE_BUILD_PARALLEL_LEVEL",
    "NVCC_THREADS",
    "TORCH_CUDA_ARCH_LIST",
    "VIRTUAL_ENV",
    "PYTHONHOME",
    "PYTHONPATH",
    "JETFORGE_PACKAGE",
    "JETFORGE_VERSION",
    "JETFORGE_TARGET",
];

/// The environment a user's shell would give the snippet: `caller` (the process environment)
/// without any recipe's `[env]` keys or resource variables of `set`, without jetforge's build
/// variables, with `venv/bin` first on a PATH cleaned of jetforge's own directories, and
/// `VIRTUAL_ENV` set as `activate` does. Everything else the user had (HOME, proxies,
/// CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH …) is kept as it was.
pub fn user_env(
    caller: impl IntoIterator<Item = (String, String)>,
    set: &RecipeSet,
    layout: &Layout,
    venv: &Path,
) -> Vec<(String, String)> {
    let recipe_keys: Vec<&str> = set
        .recipes
        .iter()
        .flat_map(|r| {
            r.env
                .iter()
                .map(|(k, _)| k.as_str())
                .chain(r.resources.iter().filter_map(|res| res.env.as_deref()))
        })
        .collect();
    let mut path = None;
    let mut env: Vec<(String, String)> = caller
        .into_iter()
        .filter(|(k, v)| {
            if k == "PATH" {
                path = Some(v.clone());
                return false;
            }
            !BUILD_ONLY.contains(&k.as_str()) && !recipe_keys.contains(&k.as_str())
        })
        .collect();
    let bin = venv.join("bin");
    let kept: Vec<&str> = path
        .as_deref()
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
        .filter(|d| !d.is_empty() && !Path::new(d).starts_with(&layout.root))
        .collect();
    let mut dirs = vec![bin.to_string_lossy().into_owned()];
    dirs.extend(kept.iter().map(|d| d.to_string()));
    env.push(("PATH".into(), dirs.join(":")));
    env.push(("VIRTUAL_ENV".into(), venv.to_string_lossy().into_owned()));
    env
}

/// Adds what a snippet may read about the package under test (the `[verify]` contract).
pub fn with_package(env: &[(String, String)], name: &str, version: &str) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.push(("JETFORGE_PACKAGE".into(), name.into()));
    env.push(("JETFORGE_VERSION".into(), version.into()));
    env
}

/// What is installed in the verify venv, and how it was made.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Installed {
    base_python: PathBuf,
    system_site_packages: bool,
    /// Normalized distribution name → sha256 of the wheel installed for it.
    wheels: BTreeMap<String, String>,
}

/// A wheel to hold in the verify venv, with the sha256 that says whether the venv has it. For a
/// wheelhouse wheel the sha256 is the manifest's, trusted as the wheelhouse trusts it (its
/// recorded stat data; see `wheelhouse::store`): one source of truth, no cache of our own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenvWheel {
    pub path: PathBuf,
    /// Normalized distribution name.
    pub package: String,
    pub sha256: String,
}

impl VenvWheel {
    /// A wheelhouse wheel: its recorded sha256, after the wheelhouse's integrity check.
    pub fn of_entry(wheelhouse: &Wheelhouse, entry: &ManifestEntry) -> Result<Self> {
        Ok(Self {
            path: wheelhouse.intact_path(entry)?,
            package: entry.package.clone(),
            sha256: entry.sha256.clone(),
        })
    }

    /// A wheel outside the wheelhouse (just built, not stored yet): hashed and read here.
    pub fn read(path: &Path) -> Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            package: WheelInfo::read(path)?.package(),
            sha256: sha256_file(path)
                .with_context(|| format!("failed to hash `{}`", path.display()))?,
        })
    }
}

/// The verify venv of a set and target.
pub struct VerifyVenv {
    pub spec: VenvSpec,
}

impl VerifyVenv {
    /// `seeds`: the pip seed store a new verify venv takes pip from (see `venv::seed`).
    pub fn new(
        dir: PathBuf,
        base_python: PathBuf,
        system_site_packages: bool,
        seeds: Option<PathBuf>,
    ) -> Self {
        Self {
            spec: VenvSpec {
                dir,
                base_python,
                system_site_packages,
                // Exact files only, never an index: pip needs nothing but the files.
                installer: Installer::detect(true),
                seeds,
            },
        }
    }

    /// How an existing verify venv was made, if there is one: (interpreter, system site).
    pub fn made_with(dir: &Path) -> Option<(PathBuf, bool)> {
        let s = load_state(dir)?;
        Some((s.base_python, s.system_site_packages))
    }

    pub fn python(&self) -> PathBuf {
        self.spec.python()
    }

    /// Makes the venv hold `wheels` (the wheels under test and those they need): creates it if
    /// needed and installs each wheel whose distribution it does not hold with the same bytes.
    /// Every command and its output go to `log`. Returns how the venv was made
    /// ([`Made::Existed`] when it was kept), for the caller to pass on a warning.
    pub fn sync(
        &self,
        wheels: &[VenvWheel],
        env: &[(String, String)],
        log: &mut String,
    ) -> Result<Made> {
        let dir = &self.spec.dir;
        let mut state = load_state(dir).unwrap_or_default();
        let same_make = state.base_python == self.spec.base_python
            && state.system_site_packages == self.spec.system_site_packages;
        if self.python().exists() && !same_make {
            std::fs::remove_dir_all(dir).with_context(|| {
                format!("failed to remove the old verify venv `{}`", dir.display())
            })?;
        }
        let mut made = Made::Existed;
        if !self.python().exists() {
            state = Installed {
                base_python: self.spec.base_python.clone(),
                system_site_packages: self.spec.system_site_packages,
                ..Installed::default()
            };
            made = self
                .spec
                .create("create the verify venv", &mut |what, argv| {
                    run_logged(argv, env, what, log)
                })?;
            if let Some(w) = made.warning() {
                log.push_str(&format!("# warning: {w}\n"));
            }
            if let Made::Seeded { seed, .. } = &made {
                log.push_str(&format!("# pip from the seed `{}`\n", seed.display()));
            }
            self.spec.inherit_parent_site()?;
            save_state(dir, &state)?;
        }
        let mut changed = Vec::new();
        let mut new_wheels = BTreeMap::new();
        for w in wheels {
            // pip runs elsewhere: a wheelhouse given as a relative path must still be found.
            let path = std::path::absolute(&w.path)
                .with_context(|| format!("failed to resolve `{}`", w.path.display()))?;
            if state.wheels.get(&w.package) != Some(&w.sha256) {
                changed.push(path);
            }
            new_wheels.insert(w.package.clone(), w.sha256.clone());
        }
        if let Some(argv) = self.spec.install_wheels_argv(&changed) {
            // Exact files: no pip setting may add a source or a dependency behind our back.
            let pip_env: Vec<(String, String)> = env
                .iter()
                .filter(|(k, _)| !k.starts_with("PIP_"))
                .cloned()
                .collect();
            // Forget them first: a half-done install must be redone next time.
            for p in new_wheels.keys() {
                state.wheels.remove(p);
            }
            save_state(dir, &state)?;
            run_logged(
                &argv,
                &pip_env,
                "install the wheels into the verify venv",
                log,
            )?;
        } else {
            log.push_str("# the verify venv already holds these wheels\n");
        }
        state.wheels.extend(new_wheels);
        save_state(dir, &state)?;
        Ok(made)
    }
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE)
}

fn load_state(dir: &Path) -> Option<Installed> {
    let text = std::fs::read_to_string(state_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_state(dir: &Path, state: &Installed) -> Result<()> {
    let json = serde_json::to_string_pretty(state).context("serializing the verify venv state")?;
    // Atomic: a kill mid-write must not leave half a state.
    crate::atomic::write(&state_path(dir), json.as_bytes())
}

/// Runs a tool for the verify venv, appending the command and its output to `log`.
fn run_logged(
    argv: &[String],
    env: &[(String, String)],
    what: &str,
    log: &mut String,
) -> Result<()> {
    log.push_str(&format!("$ {}\n", argv.join(" ")));
    let out = runner::run_with_timeout(argv, env, &std::env::temp_dir(), TOOL_TIMEOUT)?;
    log.push_str(&out.output);
    if !out.output.ends_with('\n') && !out.output.is_empty() {
        log.push('\n');
    }
    match out.status {
        Some(Status::Success) => Ok(()),
        Some(status) => Err(anyhow!(
            "failed to {what} ({status})\n  command: {}\n{}",
            crate::redact::redact(&argv.join(" ")),
            tail(&out.output)
        )),
        None => Err(anyhow!(
            "failed to {what}: no answer within {}s\n  command: {}",
            TOOL_TIMEOUT.as_secs(),
            crate::redact::redact(&argv.join(" "))
        )),
    }
}

/// The last lines of a tool's output, indented, masked.
pub fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| format!("  | {}", crate::redact::redact(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes a recipe's `verify.log` (also on success, so a passing check can be read later).
pub fn write_log(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::tree::FileTree;

    fn set() -> RecipeSet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("r")).unwrap();
        std::fs::write(
            dir.path().join("r/x.toml"),
            "[package]\nname = \"x\"\nversion = \"1\"\n[source]\npath = \".\"\n[env]\nTRITON_PTXAS_PATH = \"/usr/local/cuda/bin/ptxas\"\n[build]\nsteps = [\"true\"]\n",
        )
        .unwrap();
        let tree = FileTree::read_dir(&dir.path().join("r")).unwrap();
        let patches = FileTree::empty("patches");
        crate::recipe::load_sets(&tree, &patches, "s").unwrap().sets[0].clone()
    }

    #[test]
    fn the_verify_environment_holds_no_recipe_env_key_and_no_build_dirs() {
        let layout = Layout::new(Path::new("/w"), "s", "host");
        let venv = layout.root.join("verify-venv");
        let caller = [
            ("HOME", "/home/u"),
            ("PATH", "/w/s-host/venv/bin:/usr/local/cuda/bin:/usr/bin"),
            ("TRITON_PTXAS_PATH", "/usr/local/cuda/bin/ptxas"),
            ("MAX_JOBS", "4"),
            ("PYTHONPATH", "/w/s-host/verify/x"),
            ("https_proxy", "http://proxy:3128"),
            ("CUDA_VISIBLE_DEVICES", "0"),
            ("LD_LIBRARY_PATH", "/usr/local/cuda/lib64"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = user_env(caller, &set(), &layout, &venv);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        for key in ["TRITON_PTXAS_PATH", "MAX_JOBS", "PYTHONPATH"] {
            assert_eq!(get(key), None, "{key} leaked into {env:?}");
        }
        assert_eq!(
            get("PATH"),
            Some("/w/s-host/verify-venv/bin:/usr/local/cuda/bin:/usr/bin")
        );
        assert_eq!(get("VIRTUAL_ENV"), Some("/w/s-host/verify-venv"));
        for (k, v) in [
            ("HOME", "/home/u"),
            ("https_proxy", "http://proxy:3128"),
            ("CUDA_VISIBLE_DEVICES", "0"),
            ("LD_LIBRARY_PATH", "/usr/local/cuda/lib64"),
        ] {
            assert_eq!(get(k), Some(v));
        }
        let with = with_package(&env, "x", "1");
        assert!(with.contains(&("JETFORGE_VERSION".into(), "1".into())));
    }
}
