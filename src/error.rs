//! Errors that carry what the user should do, and the exit code policy.
//!
//! Exit codes (documented in the README): 0 ok, 1 a build or check failed, 2 bad input or usage
//! (a malformed recipe, an unknown package, a missing tool, a bad flag).

use std::fmt;

use crate::diag::Diagnostics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user's input is wrong: exit 2.
    Input,
    /// Something was attempted and failed: exit 1.
    Failure,
}

/// An error with an optional `hint:` line.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: Option<String>,
    pub kind: Kind,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// A failure whose text is already the whole report, e.g. a failed build's rendered errors and its
/// summary table: printed as is (redacted), exit 1. Stages hand their own failure types to the
/// CLI edge, which wraps them in this, so this module knows no stage.
#[derive(Debug)]
pub struct Report(pub String);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Report {}

/// Bad input (exit 2).
pub fn input(message: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: None,
        kind: Kind::Input,
    }
    .into()
}

/// Bad input with a hint (exit 2).
pub fn input_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: Some(hint.into()),
        kind: Kind::Input,
    }
    .into()
}

/// A failure with a hint (exit 1).
pub fn failure_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: Some(hint.into()),
        kind: Kind::Failure,
    }
    .into()
}

/// The exit code for an error: 128 + the signal after Ctrl-C (130), SIGTERM (143) or a
/// hang-up (129), 2 when any cause is bad input, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(code) = crate::process::interrupt::exit_code() {
        return code;
    }
    let input = err.chain().any(|e| {
        e.downcast_ref::<Diagnostics>().is_some()
            || e.downcast_ref::<Hinted>()
                .is_some_and(|h| h.kind == Kind::Input)
    });
    if input {
        2
    } else {
        1
    }
}

/// Renders an error as `error: …`, a `Caused by:` chain and `hint:` lines.
pub fn render(err: &anyhow::Error) -> String {
    if let Some(d) = err.downcast_ref::<Diagnostics>() {
        return d.to_string();
    }
    if let Some(r) = err.downcast_ref::<Report>() {
        return crate::redact::redact(&r.0);
    }
    let mut out = format!("error: {err}");
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        out.push_str("\n\nCaused by:");
        for c in &causes {
            for (i, line) in c.lines().enumerate() {
                let lead = if i == 0 { "  - " } else { "    " };
                out.push_str(&format!("\n{lead}{line}"));
            }
        }
    }
    for hint in err
        .chain()
        .filter_map(|e| e.downcast_ref::<Hinted>())
        .filter_map(|h| h.hint.as_ref())
    {
        out.push_str(&format!("\n  = hint: {hint}"));
    }
    crate::redact::redact(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn input_errors_exit_2_even_with_context() {
        let e = Err::<(), _>(input_hint("no recipe `x`", "see `jetforge list`"))
            .context("planning")
            .unwrap_err();
        assert_eq!(exit_code(&e), 2);
        assert_eq!(
            render(&e),
            "error: planning\n\nCaused by:\n  - no recipe `x`\n  = hint: see `jetforge list`"
        );
    }

    #[test]
    fn other_errors_exit_1_and_are_redacted() {
        let e = anyhow::anyhow!("proxy http://u:pw@p:3128 refused");
        assert_eq!(exit_code(&e), 1);
        assert_eq!(render(&e), "error: proxy http://u:****@p:3128 refused");
    }
}
