//! A strict unified-diff reader and applier, working on bytes in memory.
//!
//! Strict means no fuzz: every context and removed line must match exactly. A hunk may be found
//! at an offset from where its header says (upstream added lines above it), as `git apply` and
//! `patch` allow. Text before the first file header (a description, a mail header) is ignored.
//! Files are created (`--- /dev/null`) and deleted (`+++ /dev/null`); `\ No newline at end of
//! file` is honoured. Binary patches and renames are refused. Nothing here touches the disk.

use std::fmt;

/// One file's part of a patch. Paths are already stripped (`-pN`) and `/`-separated.
#[derive(Debug, Clone)]
pub struct FilePatch {
    /// `None`: the file is created.
    pub old: Option<String>,
    /// `None`: the file is deleted.
    pub new: Option<String>,
    pub hunks: Vec<Hunk>,
}

#[derive(Debug, Clone)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@` line, for messages.
    pub header: String,
    old_start: usize,
    /// Context and removed lines, each with its line ending (if it had one).
    old_lines: Vec<Vec<u8>>,
    /// Context and added lines.
    new_lines: Vec<Vec<u8>>,
}

/// Why a patch could not be read; `line` is 1-based in the patch file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Why a file patch does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The hunk's lines are nowhere in the file; `line` is where the header said (1-based).
    Hunk {
        header: String,
        line: usize,
        expected: Vec<String>,
        found: Vec<String>,
    },
    NotFound,
    AlreadyExists,
    /// A deletion whose hunks leave something behind.
    DeleteLeavesContent,
}

impl FilePatch {
    /// The path the patch writes (or deletes).
    pub fn target(&self) -> &str {
        self.new
            .as_deref()
            .or(self.old.as_deref())
            .unwrap_or_default()
    }

    /// Applies to the file's content (`None`: absent). Returns the new content (`None`: deleted).
    pub fn apply(&self, current: Option<&[u8]>) -> Result<Option<Vec<u8>>, ApplyError> {
        let old = match (&self.old, current) {
            (None, Some(_)) => return Err(ApplyError::AlreadyExists),
            (Some(_), None) => return Err(ApplyError::NotFound),
            (_, c) => c.unwrap_or_default(),
        };
        let out = apply_hunks(old, &self.hunks)?;
        match &self.new {
            None if !out.is_empty() => Err(ApplyError::DeleteLeavesContent),
            None => Ok(None),
            Some(_) => Ok(Some(out)),
        }
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Hunk {
                header,
                line,
                expected,
                found,
            } => {
                writeln!(
                    f,
                    "hunk {header} does not match anywhere in the file (no fuzz)"
                )?;
                writeln!(f, "expected at line {line}:")?;
                for l in expected {
                    writeln!(f, "  | {l}")?;
                }
                writeln!(f, "found:")?;
                for l in found {
                    writeln!(f, "  | {l}")?;
                }
                Ok(())
            }
            ApplyError::NotFound => write!(f, "the file to patch does not exist"),
            ApplyError::AlreadyExists => {
                write!(f, "the patch creates the file, but it already exists")
            }
            ApplyError::DeleteLeavesContent => {
                write!(
                    f,
                    "the patch deletes the file, but it holds more than the patch removes"
                )
            }
        }
    }
}

/// Reads every file patch in `bytes`, stripping `strip` leading path components (`-pN`).
pub fn parse(bytes: &[u8], strip: u32) -> Result<Vec<FilePatch>, ParseError> {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let mut files = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        if lines[i].starts_with(b"GIT binary patch") {
            return Err(err("binary patches are not supported".into()));
        }
        if lines[i].starts_with(b"rename from ") || lines[i].starts_with(b"copy from ") {
            return Err(err(
                "renames and copies are not supported; write them as delete + create".into(),
            ));
        }
        let is_header = lines[i].starts_with(b"--- ")
            && lines.get(i + 1).is_some_and(|l| l.starts_with(b"+++ "));
        if !is_header {
            i += 1;
            continue;
        }
        let old = parse_path(&lines[i][4..], strip).map_err(err)?;
        let new = parse_path(&lines[i + 1][4..], strip).map_err(|m| ParseError {
            line: i + 2,
            message: m,
        })?;
        i += 2;
        let mut hunks = Vec::new();
        while i < lines.len() && lines[i].starts_with(b"@@ ") {
            let (hunk, next) = parse_hunk(&lines, i)?;
            hunks.push(hunk);
            i = next;
        }
        if hunks.is_empty() {
            return Err(ParseError {
                line: i + 1,
                message: "a file header without hunks".into(),
            });
        }
        files.push(FilePatch { old, new, hunks });
    }
    if files.is_empty() {
        return Err(ParseError {
            line: 1,
            message: "no `--- a/…` / `+++ b/…` file headers found".into(),
        });
    }
    Ok(files)
}

fn parse_path(raw: &[u8], strip: u32) -> Result<Option<String>, String> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    let path = text
        .split('\t')
        .next()
        .unwrap_or_default()
        .trim_end()
        .trim_matches('"');
    if path == "/dev/null" {
        return Ok(None);
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some(kept) = parts.get(strip as usize..).filter(|k| !k.is_empty()) else {
        return Err(format!(
            "cannot strip {strip} leading components from `{path}`"
        ));
    };
    if path.starts_with('/') && strip == 0 || kept.contains(&"..") {
        return Err(format!("`{path}` points outside the source tree"));
    }
    Ok(Some(kept.join("/")))
}

/// Parses `@@ -a,b +c,d @@` and its body starting at `lines[at]`; returns the next line index.
fn parse_hunk(lines: &[&[u8]], at: usize) -> Result<(Hunk, usize), ParseError> {
    let header_text = String::from_utf8_lossy(lines[at]);
    let header_text = header_text.trim_end();
    let bad = || ParseError {
        line: at + 1,
        message: format!("malformed hunk header `{header_text}`"),
    };
    let ranges = header_text
        .strip_prefix("@@ ")
        .and_then(|r| r.split(" @@").next())
        .ok_or_else(bad)?;
    let (old, new) = ranges.split_once(' ').ok_or_else(bad)?;
    let (old_start, old_len) =
        parse_range(old.strip_prefix('-').ok_or_else(bad)?).ok_or_else(bad)?;
    let (_, new_len) = parse_range(new.strip_prefix('+').ok_or_else(bad)?).ok_or_else(bad)?;
    let end = header_text.find(" @@").map_or(header_text.len(), |e| e + 3);
    let mut hunk = Hunk {
        header: header_text[..end].to_string(),
        old_start,
        old_lines: vec![],
        new_lines: vec![],
    };
    let mut i = at + 1;
    let mut last = b' ';
    while hunk.old_lines.len() < old_len || hunk.new_lines.len() < new_len {
        let Some(line) = lines.get(i) else {
            return Err(ParseError {
                line: i,
                message: format!("hunk {} ends early: the patch is truncated", hunk.header),
            });
        };
        let (kind, text) = match line.first() {
            Some(b'\n') | Some(b'\r') => (b' ', *line),
            Some(&k @ (b' ' | b'-' | b'+')) => (k, &line[1..]),
            Some(b'\\') => {
                strip_newline(&mut hunk, last);
                i += 1;
                continue;
            }
            _ => {
                return Err(ParseError {
                    line: i + 1,
                    message: format!("unexpected line in hunk {}", hunk.header),
                })
            }
        };
        if kind != b'+' {
            hunk.old_lines.push(text.to_vec());
        }
        if kind != b'-' {
            hunk.new_lines.push(text.to_vec());
        }
        last = kind;
        i += 1;
    }
    if lines.get(i).is_some_and(|l| l.starts_with(b"\\")) {
        strip_newline(&mut hunk, last);
        i += 1;
    }
    Ok((hunk, i))
}

fn parse_range(r: &str) -> Option<(usize, usize)> {
    match r.split_once(',') {
        Some((s, l)) => Some((s.parse().ok()?, l.parse().ok()?)),
        None => Some((r.parse().ok()?, 1)),
    }
}

/// `\ No newline at end of file` applies to the line before it.
fn strip_newline(hunk: &mut Hunk, last: u8) {
    let chop = |v: &mut Vec<Vec<u8>>| {
        if let Some(l) = v.last_mut() {
            if l.ends_with(b"\n") {
                l.pop();
            }
        }
    };
    if last != b'+' {
        chop(&mut hunk.old_lines);
    }
    if last != b'-' {
        chop(&mut hunk.new_lines);
    }
}

fn apply_hunks(old: &[u8], hunks: &[Hunk]) -> Result<Vec<u8>, ApplyError> {
    let lines: Vec<&[u8]> = old.split_inclusive(|&b| b == b'\n').collect();
    let mut out: Vec<u8> = Vec::with_capacity(old.len());
    let mut cursor = 0;
    let mut drift: isize = 0;
    for h in hunks {
        // `-5,0` inserts after line 5; `-5,3` replaces from line 5.
        let nominal = if h.old_lines.is_empty() {
            h.old_start
        } else {
            h.old_start.saturating_sub(1)
        };
        let want = (nominal as isize + drift).clamp(cursor as isize, lines.len() as isize) as usize;
        let pos = find_near(&lines, &h.old_lines, want, cursor)
            .ok_or_else(|| hunk_error(h, &lines, want))?;
        drift = pos as isize - nominal as isize;
        lines[cursor..pos]
            .iter()
            .for_each(|l| out.extend_from_slice(l));
        h.new_lines.iter().for_each(|l| out.extend_from_slice(l));
        cursor = pos + h.old_lines.len();
    }
    lines[cursor..]
        .iter()
        .for_each(|l| out.extend_from_slice(l));
    Ok(out)
}

/// The match of `needle` nearest to `want`, not before `floor` (hunks never overlap).
fn find_near(lines: &[&[u8]], needle: &[Vec<u8>], want: usize, floor: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(want);
    }
    let last = lines.len().checked_sub(needle.len())?;
    let matches = |p: usize| {
        needle
            .iter()
            .zip(&lines[p..])
            .all(|(n, l)| n.as_slice() == *l)
    };
    (0..=last.max(want)).find_map(|d| {
        [want.checked_sub(d), want.checked_add(d).filter(|_| d > 0)]
            .into_iter()
            .flatten()
            .find(|&p| p >= floor && p <= last && matches(p))
    })
}

fn hunk_error(h: &Hunk, lines: &[&[u8]], want: usize) -> ApplyError {
    const SHOWN: usize = 3;
    let show = |l: &[u8]| {
        String::from_utf8_lossy(l)
            .trim_end_matches(['\n', '\r'])
            .to_string()
    };
    let found: Vec<String> = lines
        .iter()
        .skip(want)
        .take(SHOWN)
        .map(|l| show(l))
        .collect();
    ApplyError::Hunk {
        header: h.header.clone(),
        line: want + 1,
        expected: h.old_lines.iter().take(SHOWN).map(|l| show(l)).collect(),
        found: if found.is_empty() {
            vec!["(end of file)".into()]
        } else {
            found
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply1(patch: &str, strip: u32, old: Option<&str>) -> Result<Option<String>, ApplyError> {
        let files = parse(patch.as_bytes(), strip).unwrap();
        assert_eq!(files.len(), 1);
        files[0]
            .apply(old.map(str::as_bytes))
            .map(|o| o.map(|b| String::from_utf8(b).unwrap()))
    }

    const MODIFY: &str = "From: someone\nSubject: fix\n\nWhy it exists.\n---\n \
        a.txt | 2 +-\n\ndiff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n\
        @@ -2,3 +2,3 @@ ctx\n two\n-three\n+THREE\n four\n";

    #[test]
    fn applies_with_a_header_and_strip() {
        let got = apply1(MODIFY, 1, Some("one\ntwo\nthree\nfour\nfive\n")).unwrap();
        assert_eq!(got.unwrap(), "one\ntwo\nTHREE\nfour\nfive\n");
        let files = parse(MODIFY.as_bytes(), 0).unwrap();
        assert_eq!(files[0].target(), "b/a.txt");
        assert_eq!(files[0].hunks[0].header, "@@ -2,3 +2,3 @@");
    }

    #[test]
    fn finds_a_hunk_at_an_offset() {
        let got = apply1(MODIFY, 1, Some("new\nnew\none\ntwo\nthree\nfour\n")).unwrap();
        assert_eq!(got.unwrap(), "new\nnew\none\ntwo\nTHREE\nfour\n");
    }

    #[test]
    fn no_fuzz_and_the_error_shows_expected_and_found() {
        let err = apply1(MODIFY, 1, Some("one\ntwo\nthree!\nfour\n")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("hunk @@ -2,3 +2,3 @@ does not match"),
            "{text}"
        );
        assert!(
            text.contains(
                "expected at line 2:\n  | two\n  | three\n  | four\nfound:\n  | two\n  | three!"
            ),
            "{text}"
        );
    }

    #[test]
    fn creates_and_deletes_files() {
        let create = "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n";
        assert_eq!(apply1(create, 1, None).unwrap().unwrap(), "hello\nworld\n");
        assert_eq!(
            apply1(create, 1, Some("x")).unwrap_err(),
            ApplyError::AlreadyExists
        );
        let delete = "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        assert_eq!(apply1(delete, 1, Some("bye\n")).unwrap(), None);
        assert_eq!(
            apply1(delete, 1, Some("bye\nmore\n")).unwrap_err(),
            ApplyError::DeleteLeavesContent
        );
        assert_eq!(apply1(delete, 1, None).unwrap_err(), ApplyError::NotFound);
    }

    #[test]
    fn honours_no_newline_at_end_of_file() {
        let p = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n";
        assert_eq!(apply1(p, 1, Some("a\nb")).unwrap().unwrap(), "a\nc");
        assert!(
            apply1(p, 1, Some("a\nb\n")).is_err(),
            "b with a newline is not `b` without one"
        );
        let add_nl = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+x\n";
        assert_eq!(apply1(add_nl, 1, Some("x")).unwrap().unwrap(), "x\n");
    }

    #[test]
    fn a_removed_line_that_looks_like_a_header_is_content() {
        let p = "--- a/f\n+++ b/f\n@@ -1,2 +1,1 @@\n--- x\n keep\n";
        assert_eq!(
            apply1(p, 1, Some("-- x\nkeep\n")).unwrap().unwrap(),
            "keep\n"
        );
    }

    #[test]
    fn refuses_paths_outside_the_tree_and_truncated_patches() {
        assert!(parse(b"--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n", 1).is_err());
        let err = parse(b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n", 1).unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
        assert!(parse(b"just text\n", 1).is_err());
    }

    #[test]
    fn several_hunks_keep_their_drift() {
        let p = "--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n+a2\n b\n@@ -5,2 +6,2 @@\n e\n-f\n+F\n";
        let got = apply1(p, 1, Some("a\nb\nc\nd\ne\nf\n")).unwrap().unwrap();
        assert_eq!(got, "a\na2\nb\nc\nd\ne\nF\n");
    }
}
