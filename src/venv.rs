//! The build venv: one per recipe set and target, made with the target's Python. Builds run
//! with it first on PATH and never with build isolation (an isolated build would fetch a CPU
//! torch from the index). Dependency wheels go in as exact files with `--no-index --no-deps`;
//! build requirements come from the configured index, through the proxy, unless already
//! satisfied (so an air-gapped machine with the tools installed needs no index at all).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub mod seed;

/// How packages get into the venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    /// `uv pip …` (found on PATH).
    Uv(PathBuf),
    /// `python -m pip …`.
    Pip,
}

impl Installer {
    /// uv when it is on PATH and the network may be used; offline, pip: it sees everything the
    /// venv can import (system site-packages, an inherited parent venv) as already satisfied.
    pub fn detect(offline: bool) -> Self {
        match which::which("uv") {
            Ok(p) if !offline => Installer::Uv(p),
            _ => Installer::Pip,
        }
    }
}

#[derive(Debug, Clone)]
pub struct VenvSpec {
    pub dir: PathBuf,
    /// The interpreter that creates the venv (the target's Python).
    pub base_python: PathBuf,
    /// Let the venv see the base interpreter's site-packages (a preinstalled torch, offline
    /// machines with the build tools already installed).
    pub system_site_packages: bool,
    pub installer: Installer,
    /// The pip seed store (`seed::store`): new venvs get pip from there instead of ensurepip.
    /// `None`: plain `python -m venv`.
    pub seeds: Option<PathBuf>,
}

/// How [`VenvSpec::create`] made a venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// It already existed.
    Existed,
    /// `--without-pip` plus the pip seed at `seed`; `remade` says why the seed was made again
    /// (damaged), `None` when it was whole or new.
    Seeded {
        seed: PathBuf,
        remade: Option<String>,
    },
    /// Plain `python -m venv`; `warning` says why the seed was not used (it could not be made
    /// or put in), `None` when no seed was asked for.
    Plain { warning: Option<String> },
}

impl Made {
    /// What the user should hear about: a seed that was damaged, or one that could not be used.
    pub fn warning(&self) -> Option<String> {
        match self {
            Made::Seeded {
                seed,
                remade: Some(why),
            } => Some(format!(
                "the pip seed `{}` was damaged ({why}), so it was made again (nothing to do)",
                seed.display()
            )),
            Made::Plain { warning } => warning.clone(),
            _ => None,
        }
    }
}

/// Runs a command that makes a venv or a seed (`what`, argv), logged as the caller logs.
pub type RunTool<'a> = dyn FnMut(&str, &[String]) -> Result<()> + 'a;

impl VenvSpec {
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// The command that creates the venv (empty when it already exists). Always the stdlib
    /// `venv`: its bundled pip needs no network (uv's `--seed` downloads pip).
    pub fn create_argv(&self) -> Vec<String> {
        if self.python().exists() {
            return Vec::new();
        }
        let mut argv = vec![
            self.base_python.to_string_lossy().into_owned(),
            "-m".into(),
            "venv".into(),
        ];
        if self.system_site_packages {
            argv.push("--system-site-packages".into());
        }
        argv.push(self.dir.to_string_lossy().into_owned());
        argv
    }

    /// Creates the venv unless it exists: from the pip seed when there is a seed store (made
    /// first when missing or damaged), else — or when the seed fails — with plain
    /// `python -m venv` (`what` names that command). Does not inherit a parent venv: see
    /// [`Self::inherit_parent_site`].
    pub fn create(&self, what: &str, run: &mut RunTool) -> Result<Made> {
        let argv = self.create_argv();
        if argv.is_empty() {
            return Ok(Made::Existed);
        }
        let mut warning = None;
        if let Some(store) = &self.seeds {
            match self.create_seeded(store, what, &argv, run) {
                Ok(made) => return Ok(made),
                Err(e) => {
                    warning = Some(format!(
                        "the pip seed in `{}` could not be used ({e:#}), so the venv is made \
                         with plain `python -m venv` (about 2 s slower); set {}=0 to skip the \
                         seed, or remove `{}` to have it made again",
                        store.display(),
                        crate::envvars::JETFORGE_VENV_SEED,
                        store.display()
                    ))
                }
            }
        }
        run(what, &argv)?;
        Ok(Made::Plain { warning })
    }

    /// `argv`: [`Self::create_argv`], given `--without-pip` here.
    fn create_seeded(
        &self,
        store: &Path,
        what: &str,
        argv: &[String],
        run: &mut RunTool,
    ) -> Result<Made> {
        let facts = seed::probe(&self.base_python)?;
        let dir = store.join(seed::key(&facts.0, &facts.1, &facts.2));
        let mut remade = None;
        let found = if dir.exists() {
            match seed::Seed::open(&dir) {
                Ok(s) => Some(s),
                Err(e) => {
                    remade = Some(format!("{e:#}"));
                    std::fs::remove_dir_all(&dir).with_context(|| {
                        format!("failed to remove the damaged pip seed `{}`", dir.display())
                    })?;
                    None
                }
            }
        } else {
            None
        };
        let seed = match found {
            Some(s) => s,
            None => {
                crate::paths::create_dir_all(store)?;
                seed::sweep(store);
                let tmp = tempfile::Builder::new()
                    .prefix(".make-")
                    .tempdir_in(store)
                    .with_context(|| {
                        format!("failed to make a temp dir in `{}`", store.display())
                    })?;
                let made = tmp.path().join("venv");
                let argv = vec![
                    self.base_python.to_string_lossy().into_owned(),
                    "-m".into(),
                    "venv".into(),
                    made.to_string_lossy().into_owned(),
                ];
                run("make the pip seed for new venvs", &argv)?;
                seed::Seed::make_from(&made, facts, &dir)?
            }
        };
        let mut argv = argv.to_vec();
        argv.insert(3, "--without-pip".into());
        run(what, &argv)?;
        seed.install(&self.dir)?;
        Ok(Made::Seeded {
            seed: seed.dir,
            remade,
        })
    }

    /// With `system_site_packages`, when the base interpreter is itself in a venv (a torch
    /// installed in `/opt/torch/.venv`, say), makes that venv's packages importable too: a new
    /// venv would otherwise only see the base installation's site-packages. Returns the `.pth`
    /// file written, if any.
    pub fn inherit_parent_site(&self) -> Result<Option<PathBuf>> {
        if !self.system_site_packages {
            return Ok(None);
        }
        let probe = "import site, sys\nprint(sys.prefix != sys.base_prefix)\nfor p in site.getsitepackages(): print(p)";
        let out = duct::cmd!(&self.base_python, "-c", probe)
            .read()
            .with_context(|| {
                format!(
                    "failed to ask `{}` for its site-packages",
                    self.base_python.display()
                )
            })?;
        let mut lines = out.lines();
        if lines.next() != Some("True") {
            return Ok(None);
        }
        let dirs: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
        let purelib = duct::cmd!(
            self.python(),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        )
        .read()
        .with_context(|| {
            format!(
                "failed to ask the venv `{}` for its site-packages",
                self.dir.display()
            )
        })?;
        let pth = PathBuf::from(purelib.trim()).join("_jetforge_parent_venv.pth");
        std::fs::write(&pth, dirs.join("\n") + "\n")
            .with_context(|| format!("failed to write `{}`", pth.display()))?;
        Ok(Some(pth))
    }

    /// Whether the venv sees packages it does not hold itself: the base interpreter's
    /// site-packages (`include-system-site-packages = true`) or a parent venv through
    /// [`Self::inherit_parent_site`]'s `.pth`. uv's resolver counts only what the venv's own
    /// site-packages holds (seen on a GPU machine: torch importable from a parent venv, yet
    /// `uv pip install bitsandbytes` failed with "torch was not found"), pip counts everything
    /// importable as installed.
    fn inherits_packages(&self) -> bool {
        let cfg = std::fs::read_to_string(self.dir.join("pyvenv.cfg")).unwrap_or_default();
        let system = cfg.lines().any(|l| {
            let mut kv = l.splitn(2, '=');
            kv.next().map(str::trim) == Some("include-system-site-packages")
                && kv.next().map(str::trim) == Some("true")
        });
        system || self.site_packages_holding("_jetforge_parent_venv.pth")
    }

    /// Whether some `lib/python*/site-packages` of the venv holds `name`.
    fn site_packages_holding(&self, name: &str) -> bool {
        std::fs::read_dir(self.dir.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|d| d.path().join("site-packages").join(name).exists())
    }

    fn install_prefix(&self) -> Vec<String> {
        // pip where the venv inherits packages (and has pip: a `uv venv` has none).
        let pip_sees_more = self.inherits_packages() && self.site_packages_holding("pip");
        match &self.installer {
            Installer::Uv(uv) if !pip_sees_more => vec![
                uv.to_string_lossy().into_owned(),
                "pip".into(),
                "install".into(),
                "--python".into(),
                self.python().to_string_lossy().into_owned(),
            ],
            _ => vec![
                self.python().to_string_lossy().into_owned(),
                "-m".into(),
                "pip".into(),
                "install".into(),
                "--disable-pip-version-check".into(),
            ],
        }
    }

    /// Installs exact wheel files, touching no index and pulling in no dependencies.
    pub fn install_wheels_argv(&self, wheels: &[PathBuf]) -> Option<Vec<String>> {
        if wheels.is_empty() {
            return None;
        }
        let mut argv = self.install_prefix();
        argv.extend([
            "--no-index".into(),
            "--no-deps".into(),
            "--force-reinstall".into(),
        ]);
        argv.extend(wheels.iter().map(|w| w.to_string_lossy().into_owned()));
        Some(argv)
    }

    /// Downloads build requirements and their dependencies as wheels into the wheel cache
    /// (`pip wheel`: uv has no equivalent, and the venv always has pip).
    pub fn download_requirements_argv(&self, cache: &Path, reqs: &[String]) -> Vec<String> {
        let mut argv = vec![
            self.python().to_string_lossy().into_owned(),
            "-m".into(),
            "pip".into(),
            "wheel".into(),
            "--disable-pip-version-check".into(),
            "--wheel-dir".into(),
            cache.to_string_lossy().into_owned(),
            "--find-links".into(),
            cache.to_string_lossy().into_owned(),
        ];
        argv.extend(reqs.iter().cloned());
        argv
    }

    /// Installs requirements; offline, only what the venv already satisfies passes.
    pub fn install_requirements_argv(&self, reqs: &[String], offline: bool) -> Option<Vec<String>> {
        if reqs.is_empty() {
            return None;
        }
        let mut argv = self.install_prefix();
        if offline {
            argv.push("--no-index".into());
        }
        argv.extend(reqs.iter().cloned());
        Some(argv)
    }

    /// Installs build requirements from the wheel cache only; what the venv already
    /// satisfies is kept.
    pub fn install_cached_requirements_argv(&self, cache: &Path, reqs: &[String]) -> Vec<String> {
        let mut argv = self.install_prefix();
        argv.extend([
            "--no-index".into(),
            "--find-links".into(),
            cache.to_string_lossy().into_owned(),
        ]);
        argv.extend(reqs.iter().cloned());
        argv
    }
}

/// Finds the interpreter for a Python version: `python3.10` on PATH, then `python3` if it is
/// that version. `explicit` (from `--python`) wins.
pub fn find_python(version: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        // A bare name (`--python python3`) means the one on PATH, as a shell would find it.
        if p.components().count() == 1 {
            return which::which(p).with_context(|| format!("`{}` is not on PATH", p.display()));
        }
        return Ok(p.to_path_buf());
    }
    let exact = format!("python{version}");
    if let Ok(p) = which::which(&exact) {
        return Ok(p);
    }
    let python3 = which::which("python3").with_context(|| {
        format!("no `{exact}` or `python3` on PATH; install Python {version} or pass --python")
    })?;
    let out = duct::cmd!(
        &python3,
        "-c",
        "import sys; print('%d.%d' % sys.version_info[:2])"
    )
    .read()
    .with_context(|| format!("failed to run `{}`", python3.display()))?;
    if out.trim() == version {
        Ok(python3)
    } else {
        Err(crate::error::input_hint(
            format!(
                "the target needs Python {version}, but `python3` is {}",
                out.trim()
            ),
            format!("install python{version}, pass --python PATH, or build for `--target host`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(installer: Installer) -> VenvSpec {
        VenvSpec {
            dir: "/w/venv".into(),
            base_python: "/usr/bin/python3.10".into(),
            system_site_packages: true,
            installer,
            seeds: None,
        }
    }

    #[test]
    fn wheels_go_in_without_index_or_deps() {
        let argv = spec(Installer::Pip)
            .install_wheels_argv(&["/wh/torch.whl".into()])
            .unwrap();
        assert_eq!(argv[..4], ["/w/venv/bin/python", "-m", "pip", "install"]);
        assert!(
            argv.contains(&"--no-index".to_string()) && argv.contains(&"--no-deps".to_string())
        );
        assert_eq!(argv.last().unwrap(), "/wh/torch.whl");
        assert!(spec(Installer::Pip).install_wheels_argv(&[]).is_none());
    }

    #[test]
    fn offline_requirements_never_reach_an_index() {
        let s = spec(Installer::Uv("/bin/uv".into()));
        assert_eq!(s.create_argv()[..3], ["/usr/bin/python3.10", "-m", "venv"]);
        let argv = s
            .install_requirements_argv(&["ninja".into()], true)
            .unwrap();
        assert_eq!(
            argv[..5],
            [
                "/bin/uv",
                "pip",
                "install",
                "--python",
                "/w/venv/bin/python"
            ]
        );
        assert!(argv.contains(&"--no-index".to_string()));
        let online = s
            .install_requirements_argv(&["ninja".into()], false)
            .unwrap();
        assert!(!online.contains(&"--no-index".to_string()));
    }

    #[test]
    fn a_venv_that_inherits_packages_installs_with_its_pip_not_uv() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("lib/python3.12/site-packages");
        std::fs::create_dir_all(site.join("pip")).unwrap();
        let s = VenvSpec {
            dir: tmp.path().to_path_buf(),
            base_python: "/usr/bin/python3.12".into(),
            system_site_packages: false,
            installer: Installer::Uv("/bin/uv".into()),
            seeds: None,
        };
        let first = |s: &VenvSpec| s.install_wheels_argv(&["/wh/a.whl".into()]).unwrap()[0].clone();
        // Nothing inherited: uv.
        std::fs::write(
            tmp.path().join("pyvenv.cfg"),
            "include-system-site-packages = false\n",
        )
        .unwrap();
        assert_eq!(first(&s), "/bin/uv");
        // A parent venv through the .pth, or the system site-packages: pip.
        std::fs::write(site.join("_jetforge_parent_venv.pth"), "/opt/torch/site\n").unwrap();
        assert!(first(&s).ends_with("bin/python"));
        std::fs::remove_file(site.join("_jetforge_parent_venv.pth")).unwrap();
        std::fs::write(
            tmp.path().join("pyvenv.cfg"),
            "home = /usr/bin\ninclude-system-site-packages = true\n",
        )
        .unwrap();
        assert!(first(&s).ends_with("bin/python"));
        // A venv without pip (made by `uv venv`) stays with uv.
        std::fs::remove_dir(site.join("pip")).unwrap();
        assert_eq!(first(&s), "/bin/uv");
    }

    #[test]
    fn offline_installs_use_pip() {
        assert_eq!(Installer::detect(true), Installer::Pip);
    }

    #[test]
    fn a_parent_venv_is_inherited() {
        let dir = tempfile::tempdir().unwrap();
        let py = which::which("python3").unwrap();
        let parent = dir.path().join("parent");
        let ok = std::process::Command::new(&py)
            .args(["-m", "venv", "--without-pip"])
            .arg(&parent)
            .status()
            .unwrap();
        assert!(ok.success());
        let site = duct::cmd!(
            parent.join("bin/python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        )
        .read()
        .unwrap();
        std::fs::write(PathBuf::from(site.trim()).join("from_parent.py"), "X = 7\n").unwrap();
        let child = VenvSpec {
            dir: dir.path().join("child"),
            base_python: parent.join("bin/python"),
            system_site_packages: true,
            installer: Installer::Pip,
            seeds: None,
        };
        let mut argv = child.create_argv();
        argv.insert(3, "--without-pip".into());
        assert!(std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .unwrap()
            .success());
        assert!(child.inherit_parent_site().unwrap().is_some());
        let got = duct::cmd!(
            child.python(),
            "-c",
            "import from_parent; print(from_parent.X)"
        )
        .read()
        .unwrap();
        assert_eq!(got.trim(), "7");
    }

    fn run_all(what: &str, argv: &[String]) -> Result<()> {
        let ok = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()?
            .success();
        anyhow::ensure!(ok, "{what} failed");
        Ok(())
    }

    fn pip_works(venv: &Path) {
        for argv in [
            vec![venv.join("bin/python"), "-m".into(), "pip".into()],
            vec![venv.join("bin/pip")],
        ] {
            let out = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .arg("--version")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.starts_with("pip "),
                "{argv:?}: {text}"
            );
            assert!(text.contains(&venv.display().to_string()), "{text}");
        }
    }

    #[test]
    fn venvs_get_pip_from_the_seed_and_a_damaged_seed_is_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("cache/venv-seed-v1");
        let spec = |name: &str| VenvSpec {
            dir: tmp.path().join(name),
            base_python: which::which("python3").unwrap(),
            system_site_packages: false,
            installer: Installer::Pip,
            seeds: Some(store.clone()),
        };
        let ran = std::cell::RefCell::new(Vec::new());
        let mut run = |what: &str, argv: &[String]| {
            ran.borrow_mut().push(what.to_string());
            run_all(what, argv)
        };
        let a = spec("a").create("create a", &mut run).unwrap();
        let Made::Seeded { seed, remade: None } = &a else {
            panic!("{a:?}")
        };
        assert!(seed.join("seed.json").is_file());
        pip_works(&tmp.path().join("a"));
        let b = spec("b").create("create b", &mut run).unwrap();
        assert_eq!(b, a);
        pip_works(&tmp.path().join("b"));
        // The seed is made once.
        assert_eq!(
            *ran.borrow(),
            ["make the pip seed for new venvs", "create a", "create b"]
        );
        assert_eq!(spec("b").create("again", &mut run).unwrap(), Made::Existed);

        // A file gone from the seed: made again, with a warning.
        let init = std::fs::read_dir(seed.join("site-packages"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name() == "pip")
            .unwrap()
            .path()
            .join("__init__.py");
        std::fs::remove_file(&init).unwrap();
        let c = spec("c").create("create c", &mut run).unwrap();
        assert!(
            c.warning().unwrap().contains("was damaged") && init.is_file(),
            "{c:?}"
        );
        pip_works(&tmp.path().join("c"));

        // A seed store that cannot be made: plain venv, with a warning.
        let blocked = tmp.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let mut d = spec("d");
        d.seeds = Some(blocked.join("venv-seed-v1"));
        let made = d.create("create d", &mut run_all).unwrap();
        assert!(
            matches!(&made, Made::Plain { warning: Some(w) } if w.contains("plain `python -m venv`") && w.contains("JETFORGE_VENV_SEED=0")),
            "{made:?}"
        );
        pip_works(&tmp.path().join("d"));
    }

    #[test]
    fn creation_keeps_system_site_packages_when_asked() {
        let argv = spec(Installer::Pip).create_argv();
        assert_eq!(
            argv,
            [
                "/usr/bin/python3.10",
                "-m",
                "venv",
                "--system-site-packages",
                "/w/venv"
            ]
        );
    }
}
