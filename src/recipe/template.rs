//! Template strings in recipes: `{version}`, `{jobs}`, `{source_dir:vllm-flash-attn}`, …
//!
//! A placeholder is `{name}` or `{name:arg}` where `name` is lower-case `[a-z][a-z0-9_]*`.
//! Anything else in braces is literal text, so shell (`${VAR}`, `{a,b}`) and `find -exec {}`
//! pass through untouched; `{{` and `}}` write a literal brace. A `{` right after `$` is always
//! literal. Unknown names are rejected when the recipe is loaded, not when it is built.
//!
//! Per-arch repetition: `{per_arch}BODY{end_per_arch}` writes BODY once for every target CUDA
//! arch (`--cuda-arch 8.7,9.0` → twice), with `{each_arch}` (`8.7`) and `{each_arch_nodot}`
//! (`87`) set to that arch. The copies are joined with nothing in between, so BODY carries its
//! own separator: a trailing space for a flag list (`{per_arch}-gencode
//! arch=compute_{each_arch_nodot},code=sm_{each_arch_nodot} {end_per_arch}`), a trailing newline
//! and indentation for Python lines (`{per_arch}    cc_flag.append("…{each_arch_nodot}")\n{end_per_arch}`).
//! A target without CUDA archs writes BODY zero times. Blocks do not nest; `{each_arch…}` outside
//! a block, and an unbalanced marker, are load errors.

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
    (
        "per_arch",
        "starts a block written once per target CUDA arch (ends at `{end_per_arch}`)",
    ),
    ("end_per_arch", "ends a `{per_arch}` block"),
    (
        "each_arch",
        "inside `{per_arch}`: the arch of this copy (e.g. `8.7`)",
    ),
    (
        "each_arch_nodot",
        "inside `{per_arch}`: the arch of this copy without the dot (e.g. `87`)",
    ),
];

/// The block markers and the variables only a block defines.
pub const PER_ARCH: &str = "per_arch";
pub const END_PER_ARCH: &str = "end_per_arch";
const EACH_ARCH: &str = "each_arch";
const EACH_ARCH_NODOT: &str = "each_arch_nodot";

/// Variables that take an argument: `{source_dir:NAME}`, `{version:NAME}`, `{resource:NAME}`.
pub const ARG_VARIABLES: &[(&str, &str)] = &[
    (
        "source_dir",
        "the prepared source tree of recipe NAME (a dependency)",
    ),
    ("version", "the version of recipe NAME (a dependency)"),
    ("resource", "the path of this recipe's resource NAME"),
    (
        "tree_dir",
        "the installed tree (`[output] kind = \"tree\"`) of recipe NAME (a dependency)",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var {
        name: String,
        arg: Option<String>,
    },
    /// `{per_arch}…{end_per_arch}`: written once per target CUDA arch.
    PerArch(Vec<Piece>),
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
                pieces: fold_blocks(pieces),
                raw: raw.to_string(),
            },
            refs,
        )
    }

    /// What is wrong with the template's `{per_arch}` blocks, if anything: an unbalanced or
    /// nested marker, or `{each_arch}`/`{each_arch_nodot}` outside a block.
    pub fn block_error(raw: &str) -> Option<String> {
        let mut inside = false;
        for r in Self::parse(raw).1 {
            match (r.name.as_str(), inside) {
                (PER_ARCH, true) => {
                    return Some(
                        "`{per_arch}` inside a `{per_arch}` block (blocks do not nest)".into(),
                    )
                }
                (PER_ARCH, false) => inside = true,
                (END_PER_ARCH, false) => {
                    return Some("`{end_per_arch}` without a `{per_arch}` before it".into())
                }
                (END_PER_ARCH, true) => inside = false,
                (EACH_ARCH | EACH_ARCH_NODOT, false) => {
                    return Some(format!(
                    "`{{{}}}` is only defined inside a `{{per_arch}}` … `{{end_per_arch}}` block",
                    r.name
                ))
                }
                _ => {}
            }
        }
        inside.then(|| "`{per_arch}` without an `{end_per_arch}` after it".into())
    }

    /// Fills the template. Every name was checked at load time; a missing value here is a bug
    /// in the caller, reported as an error naming the variable.
    pub fn render(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        render_pieces(&self.pieces, vars, &mut out)?;
        Ok(out)
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        fn walk<'a>(pieces: &'a [Piece], out: &mut Vec<(&'a str, Option<&'a str>)>) {
            for p in pieces {
                match p {
                    Piece::Var { name, arg } => out.push((name.as_str(), arg.as_deref())),
                    Piece::PerArch(body) => walk(body, out),
                    Piece::Text(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.pieces, &mut out);
        out.into_iter()
    }
}

fn render_pieces(pieces: &[Piece], vars: &Vars, out: &mut String) -> Result<(), String> {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, arg } => match vars.get(name, arg.as_deref()) {
                Some(v) => out.push_str(v),
                None => return Err(display_var(name, arg.as_deref())),
            },
            Piece::PerArch(body) => {
                let list = vars
                    .get("cuda_arch_list", None)
                    .ok_or_else(|| display_var("cuda_arch_list", None))?;
                for arch in list.split(';').filter(|a| !a.is_empty()) {
                    let mut each = vars.clone();
                    each.set(EACH_ARCH, arch)
                        .set(EACH_ARCH_NODOT, arch.replace('.', ""));
                    render_pieces(body, &each, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Turns `{per_arch}` … `{end_per_arch}` runs into [`Piece::PerArch`]. Unbalanced markers are
/// left as they are (and reported at load time by [`Template::block_error`]).
fn fold_blocks(pieces: Vec<Piece>) -> Vec<Piece> {
    let is = |p: &Piece, n: &str| matches!(p, Piece::Var { name, arg: None } if name == n);
    let Some(start) = pieces.iter().position(|p| is(p, PER_ARCH)) else {
        return pieces;
    };
    let Some(len) = pieces[start + 1..].iter().position(|p| is(p, END_PER_ARCH)) else {
        return pieces;
    };
    let mut rest = pieces;
    let tail = rest.split_off(start + 1 + len + 1);
    let body: Vec<Piece> = rest.drain(start + 1..start + 1 + len).collect();
    rest.truncate(start);
    rest.push(Piece::PerArch(body));
    rest.extend(fold_blocks(tail));
    rest
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

    fn arch_vars(list: &str) -> Vars {
        let mut v = Vars::default();
        v.set("cuda_arch_list", list);
        v
    }

    #[test]
    fn per_arch_block_repeats_for_every_arch() {
        let (t, _) = Template::parse(
            "nvcc {per_arch}-gencode arch=compute_{each_arch_nodot},code=sm_{each_arch_nodot} {end_per_arch}-c",
        );
        assert_eq!(
            t.render(&arch_vars("8.7;9.0")).unwrap(),
            "nvcc -gencode arch=compute_87,code=sm_87 -gencode arch=compute_90,code=sm_90 -c"
        );
        assert_eq!(
            t.render(&arch_vars("8.7")).unwrap(),
            "nvcc -gencode arch=compute_87,code=sm_87 -c"
        );
        assert_eq!(t.render(&arch_vars("")).unwrap(), "nvcc -c");
    }

    #[test]
    fn per_arch_block_writes_python_lines() {
        let (t, _) = Template::parse(
            "{per_arch}    cc_flag.append(\"-gencode\")\n    cc_flag.append(\"arch=compute_{each_arch_nodot},code=sm_{each_arch_nodot}\")  # {each_arch}\n{end_per_arch}",
        );
        assert_eq!(
            t.render(&arch_vars("8.7;9.0")).unwrap(),
            "    cc_flag.append(\"-gencode\")\n    cc_flag.append(\"arch=compute_87,code=sm_87\")  # 8.7\n    \
             cc_flag.append(\"-gencode\")\n    cc_flag.append(\"arch=compute_90,code=sm_90\")  # 9.0\n"
        );
    }

    #[test]
    fn per_arch_block_errors_are_named() {
        assert_eq!(
            Template::block_error("{per_arch}a{end_per_arch} {per_arch}b{end_per_arch}"),
            None
        );
        assert!(Template::block_error("{per_arch}a")
            .unwrap()
            .contains("without an `{end_per_arch}`"));
        assert!(Template::block_error("a{end_per_arch}")
            .unwrap()
            .contains("without a `{per_arch}`"));
        assert!(Template::block_error("{per_arch}{per_arch}{end_per_arch}")
            .unwrap()
            .contains("nest"));
        assert!(Template::block_error("sm_{each_arch_nodot}")
            .unwrap()
            .contains("only defined inside"));
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
