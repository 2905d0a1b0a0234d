//! Errors that carry what the user should do, and the exit code policy.
//!
//! One hint channel: a hint is never part of an error's message. Stages hand it over in a
//! [`Hinted`] (made by [`input_hint`]/[`failure_hint`], or by [`typed`] from a stage's own error
//! type implementing [`Hint`]); recipe diagnostics keep theirs in [`Diagnostic::hint`]. [`render`]
//! prints message, `Caused by:` chain and `= hint:` lines once; [`render_json`] puts the same
//! parts in one JSON object for `--json`.
//!
//! Exit codes (documented in the README): 0 ok, 1 a build or check failed, 2 bad input or usage
//! (a malformed recipe, an unknown package, a missing tool, a bad flag).

use std::fmt;

use serde_json::{json, Value};

use crate::diag::{Diagnostic, Diagnostics};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user's input is wrong: exit 2.
    Input,
    /// Something was attempted and failed: exit 1.
    Failure,
}

/// An error with its `hint:` lines (usually one; several when errors were folded into one).
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hints: Vec<String>,
    pub kind: Kind,
    /// The stage's own error when made by [`typed`], for callers that match on it.
    typed: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Hinted {
    /// The stage error this was made from by [`typed`], if it is an `E`.
    pub fn typed<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.typed.as_deref()?.downcast_ref::<E>()
    }
}

/// A stage's typed error whose hint is kept apart from its message (a field or a match).
pub trait Hint: std::error::Error + Send + Sync + Sized + 'static {
    fn hint(&self) -> Option<String>;
    /// Bad input (exit 2) or a failure (exit 1, the default).
    fn kind(&self) -> Kind {
        Kind::Failure
    }
}

/// A stage's typed error as an `anyhow::Error` whose hint [`render`] shows; the error itself
/// stays reachable through [`Hinted::typed`] (and [`find`]).
pub fn typed<E: Hint>(e: E) -> anyhow::Error {
    Hinted {
        message: e.to_string(),
        hints: e.hint().into_iter().collect(),
        kind: e.kind(),
        typed: Some(Box::new(e)),
    }
    .into()
}

/// The first `E` in the chain of `err`, also inside a [`typed`] error.
pub fn find<E: std::error::Error + 'static>(err: &anyhow::Error) -> Option<&E> {
    err.chain().find_map(|c| {
        c.downcast_ref::<E>()
            .or_else(|| c.downcast_ref::<Hinted>().and_then(|h| h.typed::<E>()))
    })
}

/// Every hint in the chain of `err`, outermost first: for callers that fold several errors
/// into one and must keep their hints.
pub fn hints(err: &anyhow::Error) -> Vec<String> {
    err.chain()
        .filter_map(|e| e.downcast_ref::<Hinted>())
        .flat_map(|h| h.hints.iter().cloned())
        .collect()
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
        hints: Vec::new(),
        kind: Kind::Input,
        typed: None,
    }
    .into()
}

/// Bad input with a hint (exit 2).
pub fn input_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hints: vec![hint.into()],
        kind: Kind::Input,
        typed: None,
    }
    .into()
}

/// A failure with a hint (exit 1).
pub fn failure_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hints: vec![hint.into()],
        kind: Kind::Failure,
        typed: None,
    }
    .into()
}

/// A failure with several hints, each said once (e.g. several fetch errors folded into one).
pub fn failure_hints(message: impl Into<String>, hints: Vec<String>) -> anyhow::Error {
    let mut unique: Vec<String> = Vec::new();
    for h in hints {
        if !unique.contains(&h) {
            unique.push(h);
        }
    }
    Hinted {
        message: message.into(),
        hints: unique,
        kind: Kind::Failure,
        typed: None,
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
    for hint in hints(err) {
        out.push_str(&format!("\n  = hint: {hint}"));
    }
    crate::redact::redact(&out)
}

/// The error as one JSON object (`--json`), redacted like [`render`]:
/// `{"error": {"message", "causes": [..], "hints": [..], "exit_code", "diagnostics": [..]}}`;
/// `diagnostics` (file, line, col, message, hint) only for recipe and config errors.
pub fn render_json(err: &anyhow::Error) -> String {
    let r = |s: &str| crate::redact::redact(s);
    let mut obj = match err.downcast_ref::<Diagnostics>() {
        Some(d) => json!({
            "message": format!("{} problem(s) found", d.len()),
            "causes": [],
            "hints": [],
            "diagnostics": d.0.iter().map(|d| diagnostic_json(d, &r)).collect::<Vec<_>>(),
        }),
        None => json!({
            "message": r(&err.to_string()),
            "causes": err.chain().skip(1).map(|c| r(&c.to_string())).collect::<Vec<_>>(),
            "hints": hints(err).iter().map(|h| r(h)).collect::<Vec<_>>(),
        }),
    };
    obj["exit_code"] = exit_code(err).into();
    json!({ "error": obj }).to_string()
}

fn diagnostic_json(d: &Diagnostic, r: &dyn Fn(&str) -> String) -> Value {
    json!({
        "file": d.file,
        "line": d.line,
        "col": d.col,
        "message": r(&d.message),
        "hint": d.hint.as_deref().map(r),
    })
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

    #[derive(Debug, thiserror::Error)]
    #[error("the lock is held")]
    struct Busy;

    impl Hint for Busy {
        fn hint(&self) -> Option<String> {
            Some("wait".into())
        }
    }

    #[test]
    fn typed_errors_keep_their_type_and_render_their_hint_once() {
        let e = Err::<(), _>(typed(Busy)).context("fetching").unwrap_err();
        assert!(find::<Busy>(&e).is_some());
        assert_eq!(exit_code(&e), 1);
        assert_eq!(
            render(&e),
            "error: fetching\n\nCaused by:\n  - the lock is held\n  = hint: wait"
        );
        let v: Value = serde_json::from_str(&render_json(&e)).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "fetching", "causes": ["the lock is held"],
                "hints": ["wait"], "exit_code": 1}})
        );
    }

    #[test]
    fn json_errors_carry_diagnostics_with_their_hints() {
        let mut d = Diagnostics::default();
        d.push(Diagnostic::file_only("r.toml", "bad").with_hint("fix it"));
        let v: Value = serde_json::from_str(&render_json(&d.into())).unwrap();
        assert_eq!(v["error"]["exit_code"], 2);
        assert_eq!(v["error"]["diagnostics"][0]["hint"], "fix it");
        assert_eq!(v["error"]["diagnostics"][0]["file"], "r.toml");
    }

    #[test]
    fn other_errors_exit_1_and_are_redacted() {
        let e = anyhow::anyhow!("proxy http://u:pw@p:3128 refused");
        assert_eq!(exit_code(&e), 1);
        assert_eq!(render(&e), "error: proxy http://u:****@p:3128 refused");
    }
}
