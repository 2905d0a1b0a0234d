//! What the engines report while they work. The trait is all an engine sees; the terminal and
//! plain implementations live at the CLI edge (`commands::progress`).

use std::time::Duration;

/// What the engines report while they work.
pub trait Reporter: Send + Sync {
    /// A recipe moves to a phase: `fetch`, `patch`, `venv`, `step 2/3: wheel`, `verify`.
    fn phase(&self, recipe: &str, phase: &str);
    /// A line of a step's output (already in the step log).
    fn line(&self, recipe: &str, line: &str);
    /// A message for the user (not tied to a step's output).
    fn message(&self, text: &str);
    /// A recipe is done: `built in 3m12s`, `cached`, `failed`.
    fn finished(&self, recipe: &str, outcome: &str);
}

/// A duration as the summary and progress lines show it: `42s`, `3m12s`, `1h02m`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
