//! Resume state, one small JSON file per recipe in the work dir: which fingerprint the
//! prepared tree and finished steps belong to, how many steps are done, and the jobs that
//! worked after an OOM retry on this machine. Written atomically after every step, so an
//! interrupted build (Ctrl-C, SIGKILL, power loss) resumes at the step it was in. Written by the
//! build stage, read by `plan` (the remembered jobs) too, so it sits below both. Private to the
//! user (0600 in a 0700 directory).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeState {
    /// The fingerprint the steps below were run for.
    pub fingerprint: Option<String>,
    /// Steps completed successfully, in order.
    pub steps_done: usize,
    /// MAX_JOBS that finally worked after an OOM retry; used next time.
    pub jobs_ok: Option<u32>,
    /// The fingerprint of the last successful build, so `-v` can say why a rebuild happens.
    #[serde(default)]
    pub last_built: Option<Fingerprint>,
}

impl RecipeState {
    /// Missing or unreadable state means "start from the beginning".
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path
            .parent()
            .context("state file has no parent directory")?;
        crate::private::create_dir(dir)?;
        crate::atomic::write_with_mode(
            path,
            &serde_json::to_vec_pretty(self)?,
            crate::private::FILE,
        )
    }

    /// The step to start at for `fingerprint`: where the last run stopped, if it was building
    /// the same thing; else the first.
    pub fn resume_at(&self, fingerprint: &str) -> usize {
        if self.fingerprint.as_deref() == Some(fingerprint) {
            self.steps_done
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_resume_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state/x.json");
        assert_eq!(RecipeState::load(&p), RecipeState::default());
        let s = RecipeState {
            fingerprint: Some("abc".into()),
            steps_done: 2,
            jobs_ok: Some(3),
            last_built: None,
        };
        s.save(&p).unwrap();
        let back = RecipeState::load(&p);
        assert_eq!(back, s);
        assert_eq!(back.resume_at("abc"), 2);
        assert_eq!(back.resume_at("other"), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            1
        );
    }

    #[test]
    fn corrupt_state_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(RecipeState::load(&p), RecipeState::default());
    }
}
