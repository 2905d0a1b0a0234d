//! Template strings in recipes: `{version}`, `{jobs}`, `{source_dir:vllm-flash-attn}`, …
//!
//! A placeholder is `{name}` or `{name:arg}` where `name` is lower-case `[a-z][a-z0-9_]*`.
//! Anything else in braces is literal text, so shell (`${VAR}`, `{a,b}`) and `find -exec {}`
//! pass through untouched; `{{` and `}}` write a literal brace. A `{` right after `$` is always
//! literal. Unknown names are rejected when the recipe is loaded, not when it is built.

use std::collections::BTreeMap;
use std::ops::Range;

/// The variables a template may use. Those with an argument name another recipe or resource.
pub const VARIABLES: &[(&str, &str)] = &[
    ("name", "the package name"),
    ("version", "the recipe's version"),
    (
        "cuda_arch_list",
        "target CUDA archs, `;`-separated (e.g. `8.7`)",
    ),
    (
        "cuda_arch_nodot",
        "target CUDA archs without dots (e.g. `87`)",
    ),
    ("cuda_home", "the CUDA toolkit directory"),
    ("jobs", "MAX_JOBS as jetforge computed it"),
    ("nvcc_threads", "NVCC_THREADS from [jobs]"),
    ("source_dir", "the prepared source tree of this recipe"),
    ("out", "the directory the wheel must be written to"),
    ("python", "the build venv's python"),
    ("python_version", "the target Python version (e.g. `3.10`)"),
    ("python_tag", "the target's CPython tag (e.g. `cp310`)"),
    (
        "platform_tag",
        "the target's wheel platform tag (e.g. `linux_aarch64`)",
    ),
    ("arch", "the target CPU architecture (e.g. `aarch64`)"),
    ("target", "the target profile's name"),
    ("work_dir", "this recipe's work directory"),
];

/// Variables that take an argument: `{source_dir:NAME}`, `{version:NAME}`, `{resource:NAME}`.
pub const ARG_VARIABLES: &[(&str, &str)] = &[
    (
        "source_dir",
        "the prepared source tree of recipe NAME (a dependency)",
    ),
    ("version", "the version of recipe NAME (a dependency)"),
    ("resource", "the path of this recipe's resource NAME"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var { name: String, arg: Option<String> },
}

/// A parsed template; the byte ranges of its placeholders are kept for error reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub pieces: Vec<Piece>,
    pub raw: String,
}

/// A placeholder found in a template, with its byte range in the raw string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    pub arg: Option<String>,
    pub range: Range<usize>,
}

impl Template {
    pub fn parse(raw: &str) -> (Self, Vec<VarRef>) {
        let mut pieces = Vec::new();
        let mut refs = Vec::new();
        let mut text = String::new();
        let bytes = raw.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            let c = bytes[i];
            if c == b'{' && bytes.get(i + 1) == Some(&b'{') {
                text.push('{');
                i += 2;
                continue;
            }
            if c == b'}' && bytes.get(i + 1) == Some(&b'}') {
                text.push('}');
                i += 2;
                continue;
            }
            if c == b'{' && (i == 0 || bytes[i - 1] != b'$') {
                if let Some((name, arg, len)) = placeholder(&raw[i..]) {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    refs.push(VarRef {
                        name: name.clone(),
                        arg: arg.clone(),
                        range: i..i + len,
                    });
                    pieces.push(Piece::Var { name, arg });
                    i += len;
                    continue;
                }
            }
            let ch = raw[i..].chars().next().unwrap();
            text.push(ch);
            i += ch.len_utf8();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        (
            Self {
                pieces,
                raw: raw.to_string(),
            },
            refs,
        )
    }

    /// Fills the template. Every name was checked at load time; a missing value here is a bug
    /// in the caller, reported as an error naming the variable.
    pub fn render(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { name, arg } => match vars.get(name, arg.as_deref()) {
                    Some(v) => out.push_str(v),
                    None => return Err(display_var(name, arg.as_deref())),
                },
            }
        }
        Ok(out)
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var { name, arg } => Some((name.as_str(), arg.as_deref())),
            Piece::Text(_) => None,
        })
    }
}

pub fn display_var(name: &str, arg: Option<&str>) -> String {
    match arg {
        Some(a) => format!("{{{name}:{a}}}"),
        None => format!("{{{name}}}"),
    }
}

/// Parses `{name}` or `{name:arg}` at the start of `s`; returns (name, arg, byte length).
fn placeholder(s: &str) -> Option<(String, Option<String>, usize)> {
    let close = s.find('}')?;
    let inner = &s[1..close];
    let (name, arg) = match inner.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (inner, None),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let arg_ok = arg.is_none_or(|a| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    });
    (name_ok && arg_ok).then(|| (name.to_string(), arg.map(str::to_string), close + 1))
}

/// Checks a placeholder's name (and argument kind) against the known variables.
pub fn is_known(name: &str, arg: Option<&str>) -> bool {
    match arg {
        None => VARIABLES.iter().any(|(n, _)| *n == name),
        Some(_) => ARG_VARIABLES.iter().any(|(n, _)| *n == name),
    }
}

/// A one-line list of the variables, for hints.
pub fn known_list() -> String {
    let mut v: Vec<String> = VARIABLES.iter().map(|(n, _)| format!("{{{n}}}")).collect();
    v.extend(ARG_VARIABLES.iter().map(|(n, _)| format!("{{{n}:NAME}}")));
    v.join(", ")
}

/// Values for rendering: plain variables and `name:arg` ones.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    plain: BTreeMap<String, String>,
    with_arg: BTreeMap<(String, String), String>,
}

impl Vars {
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.plain.insert(name.to_string(), value.into());
        self
    }
    pub fn set_arg(&mut self, name: &str, arg: &str, value: impl Into<String>) -> &mut Self {
        self.with_arg
            .insert((name.to_string(), arg.to_string()), value.into());
        self
    }
    pub fn get(&self, name: &str, arg: Option<&str>) -> Option<&str> {
        match arg {
            None => self.plain.get(name),
            Some(a) => self.with_arg.get(&(name.to_string(), a.to_string())),
        }
        .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        Template::parse(s)
            .1
            .into_iter()
            .map(|r| display_var(&r.name, r.arg.as_deref()))
            .collect()
    }

    #[test]
    fn finds_placeholders_and_leaves_shell_alone() {
        assert_eq!(names("pip wheel -w {out} ."), ["{out}"]);
        assert_eq!(names("echo ${HOME} {a,b} {} {Not}"), Vec::<String>::new());
        assert_eq!(
            names("{source_dir:vllm-flash-attn}/csrc"),
            ["{source_dir:vllm-flash-attn}"]
        );
        assert_eq!(names("{{version}}"), Vec::<String>::new());
    }

    #[test]
    fn renders_values_and_escapes() {
        let (t, _) = Template::parse("v={version} {{x}} ${Y} dep={version:torch}");
        let mut vars = Vars::default();
        vars.set("version", "2.9.0")
            .set_arg("version", "torch", "2.9.0");
        assert_eq!(t.render(&vars).unwrap(), "v=2.9.0 {x} ${Y} dep=2.9.0");
    }

    #[test]
    fn missing_value_is_named() {
        let (t, _) = Template::parse("{jobs}");
        assert_eq!(t.render(&Vars::default()).unwrap_err(), "{jobs}");
    }

    #[test]
    fn ranges_point_at_the_placeholder() {
        let (_, refs) = Template::parse("a {jbos} b");
        assert_eq!(refs[0].range, 2..8);
        assert!(!is_known("jbos", None));
        assert!(is_known("source_dir", Some("x")));
        assert!(!is_known("jobs", Some("x")));
    }
}
