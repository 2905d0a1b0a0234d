//! Diagnostics that point into a file: `file:line:col`, the offending line, a caret under the
//! offending text, and a `hint:` when one helps. Rendering is plain text (no colour), so it reads
//! the same in a terminal, a CI log and a snapshot test. Used by every file jetforge reads: recipes,
//! config, targets. Credentials in the quoted text (a proxy URL's password, a known secret) are
//! masked when rendered, the caret moved to match.

use std::fmt;
use std::ops::Range;

use crate::redact::redact;

/// One error located in a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Path as shown to the user (relative to the recipes root, or marked as embedded).
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// The source line holding the error, and the caret range within it (in chars).
    pub snippet: Option<(String, Range<usize>)>,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a byte span of `text`. An empty or out-of-range span points at the file.
    pub fn at(file: &str, text: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let message = message.into();
        if span.start > text.len() || (span.start == 0 && span.end == 0) {
            return Self::file_only(file, message);
        }
        let start = floor_char_boundary(text, span.start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let line = text[..start].matches('\n').count() + 1;
        let col = text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(text, span.end.clamp(start, line_end.max(start)));
        let width = text[start..end].chars().count().max(1);
        Self {
            message,
            file: file.to_string(),
            line,
            col,
            snippet: Some((line_text.to_string(), col - 1..col - 1 + width)),
            hint: None,
        }
    }

    /// A diagnostic about a whole file (e.g. it could not be read).
    pub fn file_only(file: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            file: file.to_string(),
            line: 0,
            col: 0,
            snippet: None,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The line with its credentials masked, and the caret range moved onto the masked text.
fn masked_snippet(text: &str, range: &Range<usize>) -> (String, Range<usize>) {
    let masked = redact(text);
    if masked == text {
        return (masked, range.clone());
    }
    let byte = |chars: usize| {
        text.char_indices()
            .nth(chars)
            .map_or(text.len(), |(i, _)| i)
    };
    let (start, end) = (byte(range.start), byte(range.end));
    let len = masked.chars().count();
    let new_start = redact(&text[..start]).chars().count().min(len);
    let width = redact(&text[start..end]).chars().count().max(1);
    (
        masked,
        new_start..(new_start + width).min(len.max(new_start + 1)),
    )
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", redact(&self.message))?;
        if self.line == 0 {
            write!(f, "  --> {}", self.file)?;
        } else {
            write!(f, "  --> {}:{}:{}", self.file, self.line, self.col)?;
        }
        if let Some((text, range)) = &self.snippet {
            let (text, range) = masked_snippet(text, range);
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            write!(f, "\n{pad} |\n{num} | {text}\n{pad} | ")?;
            write!(
                f,
                "{}{}",
                " ".repeat(range.start),
                "^".repeat(range.len().max(1))
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {}", redact(hint))?;
        }
        Ok(())
    }
}

/// Every problem found while loading a recipe set; reported all at once.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} errors in the recipes", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Turns a TOML/serde error into a pointed diagnostic with a hint for the common cases.
pub fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> Diagnostic {
    let msg = e.message().trim().to_string();
    let span = e.span().unwrap_or(0..0);
    let d = Diagnostic::at(file, text, span, msg.clone());
    if msg.starts_with("unknown field") {
        d.with_hint("check the spelling; the recipe format is described in the README")
    } else if let Some(field) = msg.strip_prefix("missing field ") {
        d.with_hint(format!("this table needs {field}"))
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_line_and_column() {
        let text = "[package]\nname = \"x\"\nversion = 1\n";
        let start = text.find('1').unwrap();
        let d =
            Diagnostic::at("r.toml", text, start..start + 1, "bad version").with_hint("quote it");
        assert_eq!(
            d.to_string(),
            "error: bad version\n  --> r.toml:3:11\n  |\n3 | version = 1\n  |           ^\n  = hint: quote it"
        );
    }

    #[test]
    fn empty_span_names_the_file() {
        let d = Diagnostic::at("r.toml", "abc", 0..0, "broken");
        assert_eq!(d.to_string(), "error: broken\n  --> r.toml");
    }

    #[test]
    fn credentials_in_the_quoted_line_are_masked() {
        let text = "[network]\nproxxy = \"http://a:hunter2@b:1\"\n";
        let d = Diagnostic::at("j.toml", text, 10..16, "unknown field `proxxy`");
        let shown = d.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("proxxy = \"http://a:****@b:1\"\n  | ^^^^^^"),
            "{shown}"
        );
        let at = text.find("hunter2").unwrap();
        let d = Diagnostic::at("j.toml", text, at..at + 7, "here");
        // The caret still starts where the (now masked) password does.
        assert!(
            d.to_string().ends_with("  |                    ^^^^^^^"),
            "{d}"
        );
    }

    #[test]
    fn multibyte_text_counts_chars() {
        let text = "a = \"é\" # ü\nb = 2";
        let start = text.find('2').unwrap();
        let d = Diagnostic::at("f", text, start..start + 1, "m");
        assert_eq!((d.line, d.col), (2, 5));
    }
}
