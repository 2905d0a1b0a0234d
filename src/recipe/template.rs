//! Template strings in recipes: `${{ version }}`, `${{ jobs }}`, `${{ source_dir:vllm-flash-attn }}`, …
//!
//! A placeholder is `${{ name }}` or `${{ name:arg }}` (spaces inside the braces optional) where
//! `name` is lower-case `[a-z][a-z0-9_]*`, the syntax rattler-build uses. Nothing else is
//! touched: `{x}`, `{{x}}`, Python f-strings, shell and CMake `${X}`, `{a,b}` and `find -exec {}`
//! are written exactly as they stand, so a template can never silently change code. Unknown
//! names, and a `${{` without its `}}`, are rejected when the recipe is loaded.
//!
//! Per-arch repetition: `${{ for each_arch in cuda_archs }}BODY${{ endfor }}` writes BODY once for
//! every target CUDA arch (`--cuda-arch 8.7,9.0` → twice), with `${{ each_arch }}` (`8.7`) and
//! `${{ each_arch_nodot }}` (`87`) set to that arch. The copies are joined with nothing in
//! between, so BODY carries its own separator: a trailing space for a flag list, a trailing
//! newline and indentation for Python lines. A target without CUDA archs writes BODY zero
//! times. Loops do not nest; `${{ each_arch… }}` outside a loop, and an unbalanced marker, are
//! load errors.
//!
//! The syntax before this one was `{name}`; [`old_syntax`] finds such placeholders so that
//! `check` can say the exact rewrite.
//!
//! Size: about 505 lines, of which 136 are the unit tests beside the code (369 of code).

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
        PER_ARCH,
        "starts a loop written once per target CUDA arch (ends at `${{ endfor }}`)",
    ),
    (
        END_PER_ARCH,
        "ends a `${{ for each_arch in cuda_archs }}` loop",
    ),
    (
        "each_arch",
        "inside the loop: the arch of this copy (e.g. `8.7`)",
    ),
    (
        "each_arch_nodot",
        "inside the loop: the arch of this copy without the dot (e.g. `87`)",
    ),
];

/// How a placeholder opens and closes.
pub const OPEN: &str = "${{";
pub const CLOSE: &str = "}}";

/// The loop markers (whitespace inside is normalised to one space) and the variables only a
/// loop defines.
pub const PER_ARCH: &str = "for each_arch in cuda_archs";
pub const END_PER_ARCH: &str = "endfor";
const EACH_ARCH: &str = "each_arch";
const EACH_ARCH_NODOT: &str = "each_arch_nodot";

/// Variables that take an argument: `${{ source_dir:NAME }}`, `${{ version:NAME }}`, `${{ resource:NAME }}`.
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
    /// `${{ for each_arch in cuda_archs }}…${{ endfor }}`: written once per target CUDA arch.
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
        let mut rest = raw;
        let mut at = 0;
        while let Some(open) = rest.find(OPEN) {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let inner_start = open + OPEN.len();
            // An unclosed `${{` runs to the end; its "name" is reported as unknown at load.
            let (inner, len) = match rest[inner_start..].find(CLOSE) {
                Some(close) => (
                    &rest[inner_start..inner_start + close],
                    close + OPEN.len() + CLOSE.len(),
                ),
                None => (&rest[inner_start..], rest.len() - open),
            };
            let (name, arg) = expression(inner);
            refs.push(VarRef {
                name: name.clone(),
                arg: arg.clone(),
                range: at + open..at + open + len,
            });
            pieces.push(Piece::Var { name, arg });
            at += open + len;
            rest = &rest[open + len..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        (
            Self {
                pieces: fold_blocks(pieces),
                raw: raw.to_string(),
            },
            refs,
        )
    }

    /// What is wrong with the template's loops, if anything: an unbalanced or nested marker,
    /// or `${{ each_arch }}`/`${{ each_arch_nodot }}` outside a loop.
    pub fn block_error(raw: &str) -> Option<String> {
        let start = display_var(PER_ARCH, None);
        let end = display_var(END_PER_ARCH, None);
        let mut inside = false;
        for r in Self::parse(raw).1 {
            match (r.name.as_str(), inside) {
                (PER_ARCH, true) => {
                    return Some(format!("`{start}` inside a loop (loops do not nest)"))
                }
                (PER_ARCH, false) => inside = true,
                (END_PER_ARCH, false) => {
                    return Some(format!("`{end}` without a `{start}` before it"))
                }
                (END_PER_ARCH, true) => inside = false,
                (EACH_ARCH | EACH_ARCH_NODOT, false) => {
                    return Some(format!(
                        "`{}` is only defined inside a `{start}` … `{end}` loop",
                        display_var(&r.name, None)
                    ))
                }
                _ => {}
            }
        }
        inside.then(|| format!("`{start}` without an `{end}` after it"))
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

/// Turns `${{ for each_arch in cuda_archs }}` … `${{ endfor }}` runs into [`Piece::PerArch`]. Unbalanced markers are
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
        Some(a) => format!("{OPEN} {name}:{a} {CLOSE}"),
        None => format!("{OPEN} {name} {CLOSE}"),
    }
}

/// Reads the inside of `${{ … }}`: a loop marker, `name` or `name:arg`. Anything else comes
/// back whole as the name, which no variable has, so the load reports it as unknown.
fn expression(inner: &str) -> (String, Option<String>) {
    let words = inner.split_whitespace().collect::<Vec<_>>().join(" ");
    if words == PER_ARCH || words == END_PER_ARCH {
        return (words, None);
    }
    match words.split_once(':') {
        Some((n, a)) if is_name(n) && is_arg(a) => (n.to_string(), Some(a.to_string())),
        _ => (words, None),
    }
}

fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_arg(arg: &str) -> bool {
    !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A placeholder in the syntax before `${{ }}` (`{cuda_arch_list}`, `{source_dir:NAME}`,
/// `{per_arch}`): its byte range and the text to write instead. Only known variables count, so
/// Python or f-string text such as `{_arch}` or `{x}` is never reported.
pub fn old_syntax(raw: &str) -> Vec<(Range<usize>, String)> {
    let bytes = raw.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(off) = raw[i..].find('{') {
        let open = i + off;
        i = open + 1;
        // `${X}` is shell or CMake; `{{x}}` was the old escape for a literal brace.
        if (open > 0 && matches!(bytes[open - 1], b'$' | b'{'))
            || bytes.get(open + 1) == Some(&b'{')
        {
            continue;
        }
        let Some(close) = raw[open..].find('}') else {
            break;
        };
        let inner = &raw[open + 1..open + close];
        let new = match inner.split_once(':') {
            _ if inner == "per_arch" => display_var(PER_ARCH, None),
            _ if inner == "end_per_arch" => display_var(END_PER_ARCH, None),
            Some((n, a)) if is_arg(a) && is_known(n, Some(a)) => display_var(n, Some(a)),
            None if is_known(inner, None) => display_var(inner, None),
            _ => continue,
        };
        found.push((open..open + close + 1, new));
        i = open + close + 1;
    }
    found
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
    let mut v: Vec<String> = VARIABLES
        .iter()
        .map(|(n, _)| display_var(n, None))
        .collect();
    v.extend(
        ARG_VARIABLES
            .iter()
            .map(|(n, _)| display_var(n, Some("NAME"))),
    );
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
        assert_eq!(names("pip wheel -w ${{ out }} ."), ["${{ out }}"]);
        assert_eq!(names("pip wheel -w ${{out}} ."), ["${{ out }}"]);
        assert_eq!(
            names("echo ${HOME} {a,b} {} {Not} {out} {{out}} f\"{arch}\""),
            Vec::<String>::new()
        );
        assert_eq!(
            names("${{ source_dir:vllm-flash-attn }}/csrc"),
            ["${{ source_dir:vllm-flash-attn }}"]
        );
    }

    #[test]
    fn renders_values_and_leaves_other_braces_as_written() {
        let (t, _) = Template::parse(
            "v=${{ version }} {{x}} ${Y} {version} f\"arch=compute_{arch}\" dep=${{ version:torch }}",
        );
        let mut vars = Vars::default();
        vars.set("version", "2.9.0")
            .set("arch", "x86_64")
            .set_arg("version", "torch", "2.9.0");
        assert_eq!(
            t.render(&vars).unwrap(),
            "v=2.9.0 {{x}} ${Y} {version} f\"arch=compute_{arch}\" dep=2.9.0"
        );
    }

    #[test]
    fn malformed_or_unclosed_placeholders_are_unknown() {
        let (_, refs) = Template::parse("a ${{ jobs jobs }} b ${{ out");
        assert_eq!(refs[0].name, "jobs jobs");
        assert_eq!(refs[1].name, "out");
        assert_eq!(refs[1].range, 21..28);
        assert!(!is_known("jobs jobs", None));
    }

    #[test]
    fn missing_value_is_named() {
        let (t, _) = Template::parse("${{ jobs }}");
        assert_eq!(t.render(&Vars::default()).unwrap_err(), "${{ jobs }}");
    }

    fn arch_vars(list: &str) -> Vars {
        let mut v = Vars::default();
        v.set("cuda_arch_list", list);
        v
    }

    #[test]
    fn per_arch_loop_repeats_for_every_arch() {
        let (t, _) = Template::parse(
            "nvcc ${{ for each_arch in cuda_archs }}-gencode arch=compute_${{ each_arch_nodot }},code=sm_${{ each_arch_nodot }} ${{ endfor }}-c",
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
    fn per_arch_loop_writes_python_lines() {
        let (t, _) = Template::parse(
            "${{for  each_arch in cuda_archs}}    cc_flag.append(\"-gencode\")\n    cc_flag.append(f\"arch=compute_${{ each_arch_nodot }},code=sm_{x}\")  # ${{ each_arch }}\n${{ endfor }}",
        );
        assert_eq!(
            t.render(&arch_vars("8.7;9.0")).unwrap(),
            "    cc_flag.append(\"-gencode\")\n    cc_flag.append(f\"arch=compute_87,code=sm_{x}\")  # 8.7\n    \
             cc_flag.append(\"-gencode\")\n    cc_flag.append(f\"arch=compute_90,code=sm_{x}\")  # 9.0\n"
        );
    }

    #[test]
    fn per_arch_loop_errors_are_named() {
        let (f, e) = ("${{ for each_arch in cuda_archs }}", "${{ endfor }}");
        assert_eq!(Template::block_error(&format!("{f}a{e} {f}b{e}")), None);
        assert!(Template::block_error(&format!("{f}a"))
            .unwrap()
            .contains("without an `${{ endfor }}`"));
        assert!(Template::block_error(&format!("a{e}"))
            .unwrap()
            .contains("without a `${{ for each_arch in cuda_archs }}`"));
        assert!(Template::block_error(&format!("{f}{f}{e}"))
            .unwrap()
            .contains("nest"));
        assert!(Template::block_error("sm_${{ each_arch_nodot }}")
            .unwrap()
            .contains("only defined inside"));
    }

    #[test]
    fn ranges_point_at_the_placeholder() {
        let (_, refs) = Template::parse("a ${{ jbos }} b");
        assert_eq!(refs[0].range, 2..13);
        assert!(!is_known("jbos", None));
        assert!(is_known("source_dir", Some("x")));
        assert!(!is_known("jobs", Some("x")));
    }

    #[test]
    fn old_syntax_names_the_rewrite_for_known_variables_only() {
        let found = old_syntax(
            "-w {out} {source_dir:torch} {_arch} {x} ${out} {{out}} {per_arch}{each_arch}{end_per_arch}",
        );
        let shown: Vec<(&str, &str)> = found.iter().map(|(r, n)| (&"-w {out} {source_dir:torch} {_arch} {x} ${out} {{out}} {per_arch}{each_arch}{end_per_arch}"[r.clone()], n.as_str())).collect();
        assert_eq!(
            shown,
            [
                ("{out}", "${{ out }}"),
                ("{source_dir:torch}", "${{ source_dir:torch }}"),
                ("{per_arch}", "${{ for each_arch in cuda_archs }}"),
                ("{each_arch}", "${{ each_arch }}"),
                ("{end_per_arch}", "${{ endfor }}"),
            ]
        );
        assert!(old_syntax("${{ out }} f\"{_arch}\"").is_empty());
    }
}
