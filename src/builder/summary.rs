//! The outcome of each recipe and the table printed at the end of a build (`Summary`), and the
//! error that stops a build with the summary so far (`BuildFailed`).

use std::time::Duration;

use crate::report::format_duration;

/// How one recipe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Built {
        wheels: Vec<String>,
        took: Duration,
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
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:width$}  {:12}  result\n", "recipe", "version");
        for (name, version, o) in &self.rows {
            let what = match o {
                Outcome::Built { wheels, took } => format!(
                    "built in {} ({})",
                    format_duration(*took),
                    wheels.join(", ")
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
