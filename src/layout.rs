//! Where things live in the work dir. One place computes every path, so a change of layout
//! never leaves two parts of the code disagreeing.
//!
//! ```text
//! <work-dir>/wheelhouses       the wheelhouses builds in this work dir filled, which `clean` keeps
//! <work-dir>/<set>-<target>/
//!     src/<name>/          prepared source tree (patched), kept between builds for incremental work
//!     out/<name>/          where a recipe's build writes its wheel
//!     logs/<name>/         one log per step, replay scripts after a failure
//!     state/<name>.json    resume state (step reached, jobs that worked)
//!     venv/                the build venv of this set and target
//!     cross/               cross builds only: the target's sysconfigdata, CMake toolchain file
//!     verify/<name>/       cross builds only: the wheels installed for the target, for verify
//!     verify-venv/         the set's wheels installed as a user would, where verify snippets run
//!     timings.html         the last `build --timings` (or `--json`) report
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    pub work_dir: PathBuf,
    pub root: PathBuf,
}

impl Layout {
    pub fn new(work_dir: &Path, set: &str, target: &str) -> Self {
        Self {
            work_dir: work_dir.to_path_buf(),
            root: work_dir.join(format!("{set}-{target}")),
        }
    }

    /// One absolute path a line: every wheelhouse a build in this work dir used.
    pub fn wheelhouses_file(&self) -> PathBuf {
        self.work_dir.join("wheelhouses")
    }

    pub fn source_dir(&self, name: &str) -> PathBuf {
        self.root.join("src").join(name)
    }

    pub fn out_dir(&self, name: &str) -> PathBuf {
        self.root.join("out").join(name)
    }

    pub fn log_dir(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(name)
    }

    pub fn state_file(&self, name: &str) -> PathBuf {
        self.root.join("state").join(format!("{name}.json"))
    }

    pub fn venv_dir(&self) -> PathBuf {
        self.root.join("venv")
    }

    pub fn venv_python(&self) -> PathBuf {
        self.venv_dir().join("bin").join("python")
    }

    pub fn cross_dir(&self) -> PathBuf {
        self.root.join("cross")
    }

    pub fn verify_venv_dir(&self) -> PathBuf {
        self.root.join("verify-venv")
    }

    pub fn verify_dir(&self, name: &str) -> PathBuf {
        self.root.join("verify").join(name)
    }

    pub fn timings_report(&self) -> PathBuf {
        self.root.join("timings.html")
    }

    pub fn recipe_work_dir(&self, name: &str) -> PathBuf {
        self.root.join("work").join(name)
    }
}
