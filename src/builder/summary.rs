//! The outcome of each recipe and the table printed at the end of a build (`Summary`), and the
//! error that stops a build with the summary so far (`BuildFailed`).

use std::time::Duration;

use crate::compiler_cache::Stats as CompilerStats;
use crate::report::format_duration;

/// How one recipe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Built {
        wheels: Vec<String>,
        took: Duration,
        /// Compiler cache hits and misses of its steps, when an engine is in use.
        compiler_cache: Option<CompilerStats>,
        /// Why its verification is pending (a check was skipped), if it is.
        verify_pending: Option<String>,
    },
    Cached {
        wheels: Vec<String>,
    },
    /// Downloaded from a remote cache (named redacted) instead of built.
    CachedRemote {
        wheels: Vec<String>,
        from: String,
    },
    Prepared,
    Failed {
        error: String,
    },
    Skipped {
        failed_dependency: String,
    },
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub rows: Vec<(String, String, Outcome)>,
}

impl Summary {
    pub fn failed(&self) -> bool {
        self.rows
            .iter()
            .any(|(_, _, o)| matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }

    /// The table printed at the end of a build.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(n, _, _)| n.len())
            .max()
            .unwrap_or(0)
            .max("recipe".len());
        let mut out = format!("{:width$}  {:12}  result\n", "recipe", "version");
        for (name, version, o) in &self.rows {
            let what = match o {
                Outcome::Built {
                    wheels,
                    took,
                    compiler_cache,
                    verify_pending,
                } => format!(
                    "built in {} ({}){}{}",
                    format_duration(*took),
                    wheels.join(", "),
                    compiler_cache
                        .map(|c| format!("; compiler cache: {}", c.describe()))
                        .unwrap_or_default(),
                    verify_pending
                        .as_ref()
                        .map(|r| format!("; verify: pending ({r})"))
                        .unwrap_or_default()
                ),
                Outcome::Cached { wheels } => format!("cached ({})", wheels.join(", ")),
                Outcome::CachedRemote { wheels, from } => {
                    format!("cached (remote: {from}) ({})", wheels.join(", "))
                }
                Outcome::Prepared => "prepared source".to_string(),
                Outcome::Failed { .. } => "FAILED".to_string(),
                Outcome::Skipped { failed_dependency } => {
                    format!("skipped: dependency {failed_dependency} failed")
                }
            };
            out.push_str(&format!("{name:width$}  {version:12}  {what}\n"));
        }
        out
    }
}

/// An error that stops the whole build, with the summary so far.
#[derive(Debug)]
pub struct BuildFailed {
    pub summary: Summary,
    pub errors: Vec<String>,
}

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n{}",
            self.errors.join("\n\n"),
            self.summary.render().trim_end()
        )
    }
}

impl std::error::Error for BuildFailed {}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, o: Outcome) -> (String, String, Outcome) {
        (name.to_string(), "1.0.0".to_string(), o)
    }

    fn wheels(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_table_has_one_aligned_row_per_recipe_saying_how_it_ended() {
        let s = Summary {
            rows: vec![
                row(
                    "torch",
                    Outcome::Built {
                        wheels: wheels(&["torch-1.whl"]),
                        took: Duration::from_secs(65),
                        compiler_cache: None,
                        verify_pending: Some("no GPU".into()),
                    },
                ),
                row(
                    "triton",
                    Outcome::Built {
                        wheels: wheels(&["triton-1.whl"]),
                        took: Duration::from_secs(5),
                        compiler_cache: Some(CompilerStats {
                            hits: 12,
                            remote_hits: 3,
                            misses: 4,
                        }),
                        verify_pending: None,
                    },
                ),
                row(
                    "nccl",
                    Outcome::Cached {
                        wheels: wheels(&["a.whl", "b.whl"]),
                    },
                ),
                row(
                    "vllm",
                    Outcome::CachedRemote {
                        wheels: wheels(&["v.whl"]),
                        from: "https://cache/".into(),
                    },
                ),
                row("src", Outcome::Prepared),
                row(
                    "x",
                    Outcome::Failed {
                        error: "boom".into(),
                    },
                ),
                row(
                    "y",
                    Outcome::Skipped {
                        failed_dependency: "x".into(),
                    },
                ),
            ],
        };
        assert_eq!(
            s.render(),
            "recipe  version       result\n\
             torch   1.0.0         built in 1m05s (torch-1.whl); verify: pending (no GPU)\n\
             triton  1.0.0         built in 5s (triton-1.whl); compiler cache: 12 hits (3 remote), 4 misses\n\
             nccl    1.0.0         cached (a.whl, b.whl)\n\
             vllm    1.0.0         cached (remote: https://cache/) (v.whl)\n\
             src     1.0.0         prepared source\n\
             x       1.0.0         FAILED\n\
             y       1.0.0         skipped: dependency x failed\n"
        );
        assert!(s.failed());
    }

    #[test]
    fn the_name_column_is_at_least_as_wide_as_its_header() {
        let s = Summary {
            rows: vec![row("a", Outcome::Prepared)],
        };
        assert!(s.render().starts_with("recipe  version"));
        assert!(s.render().contains("\na       1.0.0"));
        assert!(!s.failed());
    }

    #[test]
    fn a_build_failure_shows_every_error_then_the_table() {
        let e = BuildFailed {
            summary: Summary {
                rows: vec![row("x", Outcome::Failed { error: "e1".into() })],
            },
            errors: vec!["e1".into(), "e2".into()],
        };
        assert_eq!(
            e.to_string(),
            "e1\n\ne2\nrecipe  version       result\nx       1.0.0         FAILED"
        );
    }
}
