//! The git pins a CMake build clones by itself (`FetchContent_Declare(… GIT_REPOSITORY … GIT_TAG
//! …)`), read from an upstream tree at its pinned commit, and checked against the source recipes
//! of the set that stand in for those clones (vLLM's flash-attention, CUTLASS, FlashMLA, QuTLASS,
//! triton_kernels). A recipe that no longer matches the upstream pin builds against other code
//! than upstream tested, silently: `check --deep` reports each pin ✔ or ✘.
//!
//! Files read: `CMakeLists.txt` and `cmake/external_projects/*.cmake`. A `GIT_TAG ${VAR}` is
//! resolved from a `set(VAR "value" …)` in those files (vLLM's `CUTLASS_REVISION`,
//! `DEFAULT_TRITON_KERNELS_TAG`). Comments (`# …`) are ignored. A declaration with
//! `SOURCE_DIR` instead of a repository (the branch vLLM takes when the `*_SRC_DIR` variable is
//! set) pins nothing and is skipped.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::pins::SourceFiles;
use crate::recipe::{RecipeSet, Source};

/// A `FetchContent_Declare` with a repository and a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPin {
    /// `/`-separated path in the source tree.
    pub file: String,
    /// 1-based line of the `GIT_TAG`.
    pub line: usize,
    /// The content name (first argument of `FetchContent_Declare`).
    pub name: String,
    pub repository: String,
    /// The tag or commit as written (`${VAR}` resolved).
    pub tag: String,
}

/// Every pin of the CMake files `files` holds (see the module docs for which files).
pub fn fetch_pins(files: &dyn SourceFiles) -> Result<Vec<FetchPin>> {
    let mut paths = vec!["CMakeLists.txt".to_string()];
    let mut ext: Vec<String> = files
        .list("cmake/external_projects")?
        .into_iter()
        .filter(|n| n.ends_with(".cmake"))
        .map(|n| format!("cmake/external_projects/{n}"))
        .collect();
    ext.sort();
    paths.extend(ext);
    let mut texts = Vec::new();
    for p in paths {
        if let Some(bytes) = files.read(&p)? {
            texts.push((p, strip_comments(&String::from_utf8_lossy(&bytes))));
        }
    }
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for (_, text) in &texts {
        vars.extend(set_commands(text));
    }
    let mut out = Vec::new();
    for (file, text) in &texts {
        for decl in declarations(text) {
            let (Some(repo), Some((tag, line))) = (decl.value("GIT_REPOSITORY"), decl.tag()) else {
                continue;
            };
            out.push(FetchPin {
                file: file.clone(),
                line,
                name: decl.name.clone(),
                repository: repo.to_string(),
                tag: expand(tag, &vars),
            });
        }
    }
    Ok(out)
}

/// One pin checked against the set: `Ok` names the recipe it matches, `Err` says why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinVerdict {
    pub pin: FetchPin,
    pub result: Result<String, String>,
}

/// Checks every pin against the git recipes of `set` with the same repository.
pub fn check(pins: &[FetchPin], set: &RecipeSet) -> Vec<PinVerdict> {
    pins.iter()
        .map(|pin| PinVerdict {
            pin: pin.clone(),
            result: check_one(pin, set),
        })
        .collect()
}

fn check_one(pin: &FetchPin, set: &RecipeSet) -> Result<String, String> {
    let want = same_repo_key(&pin.repository);
    let mut seen = Vec::new();
    for r in &set.recipes {
        let Source::Git {
            url, tag, commit, ..
        } = &r.source
        else {
            continue;
        };
        if same_repo_key(url) != want {
            continue;
        }
        if pin.tag.eq_ignore_ascii_case(commit) {
            return Ok(format!("recipe `{}` commit", r.name));
        }
        if tag.as_deref() == Some(pin.tag.as_str()) {
            return Ok(format!("recipe `{}` tag", r.name));
        }
        seen.push(format!(
            "`{}` pins {}{commit}",
            r.name,
            tag.as_deref()
                .map(|t| format!("tag {t}, commit "))
                .unwrap_or_default()
        ));
    }
    if seen.is_empty() {
        Err(format!(
            "no recipe of set `{}` has {}: the build would clone it",
            set.name, pin.repository
        ))
    } else {
        Err(seen.join("; "))
    }
}

impl PinVerdict {
    /// One line for `check --deep`, prefixed by the recipe whose files hold the pin.
    pub fn render(&self, recipe: &str, version: &str) -> String {
        let p = &self.pin;
        let head = format!(
            "{recipe} {version}: {}:{} FetchContent `{}` GIT_TAG {}",
            p.file, p.line, p.name, p.tag
        );
        match &self.result {
            Ok(by) => format!("{head} = {by} ✔"),
            Err(why) => format!("{head}; {why} ✘"),
        }
    }
}

/// Scheme, host and path of a repository URL, lower-cased, without `.git` or a trailing `/`:
/// `github.com/nvidia/cutlass.git` and `https://github.com/NVIDIA/cutlass` are one repository.
fn same_repo_key(url: &str) -> String {
    let u = url.trim().trim_end_matches('/').to_ascii_lowercase();
    let u = u.strip_suffix(".git").unwrap_or(&u);
    u.split_once("://").map_or(u, |(_, rest)| rest).to_string()
}

/// The text with `# …` comments blanked out (kept line for line, so line numbers hold).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut quoted = false;
            for (i, c) in l.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    '#' if !quoted => return &l[..i],
                    _ => {}
                }
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A word of a CMake argument list with the line it starts on.
type Word = (String, usize);

/// `(` … `)` argument words after each occurrence of `command(` (case-insensitive), with the
/// line each word is on.
fn commands(text: &str, command: &str) -> Vec<Vec<Word>> {
    let lower = text.to_ascii_lowercase();
    let needle = format!("{}(", command.to_ascii_lowercase());
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&needle) {
        let start = from + at;
        let begins_word = start == 0
            || !text.as_bytes()[start - 1].is_ascii_alphanumeric()
                && text.as_bytes()[start - 1] != b'_';
        let open = start + needle.len();
        from = open;
        if !begins_word {
            continue;
        }
        let mut depth = 1;
        let mut end = open;
        for (i, c) in text[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        if depth != 0 {
            break;
        }
        let mut words = Vec::new();
        let first = text[..open].matches('\n').count() + 1;
        for (line, raw_line) in (first..).zip(text[open..end].split('\n')) {
            for w in raw_line.split_whitespace() {
                words.push((w.trim_matches('"').to_string(), line));
            }
        }
        out.push(words);
        from = end;
    }
    out
}

/// `set(NAME value …)` commands with a literal value.
fn set_commands(text: &str) -> Vec<(String, String)> {
    commands(text, "set")
        .into_iter()
        .filter_map(|w| Some((w.first()?.0.clone(), w.get(1)?.0.clone())))
        .collect()
}

struct Declaration {
    name: String,
    words: Vec<Word>,
}

impl Declaration {
    fn find(&self, key: &str) -> Option<&Word> {
        let i = self.words.iter().position(|(w, _)| w == key)?;
        self.words.get(i + 1)
    }
    fn value(&self, key: &str) -> Option<&str> {
        self.find(key).map(|(w, _)| w.as_str())
    }
    fn tag(&self) -> Option<(&str, usize)> {
        self.find("GIT_TAG").map(|(w, l)| (w.as_str(), *l))
    }
}

fn declarations(text: &str) -> Vec<Declaration> {
    commands(text, "FetchContent_Declare")
        .into_iter()
        .filter_map(|words| {
            Some(Declaration {
                name: words.first()?.0.clone(),
                words,
            })
        })
        .collect()
}

/// `${VAR}` → its `set` value; anything unknown stays as written.
fn expand(value: &str, vars: &BTreeMap<String, String>) -> String {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(name) => vars.get(name).cloned().unwrap_or_else(|| value.to_string()),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<(&'static str, &'static str)>);

    impl SourceFiles for Mem {
        fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
            Ok(self
                .0
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, t)| t.as_bytes().to_vec()))
        }
        fn list(&self, dir: &str) -> Result<Vec<String>> {
            Ok(self
                .0
                .iter()
                .filter_map(|(p, _)| p.strip_prefix(&format!("{dir}/")))
                .filter(|rest| !rest.contains('/'))
                .map(str::to_string)
                .collect())
        }
    }

    #[test]
    fn reads_literal_and_variable_tags_and_skips_source_dir_branches() {
        let files = Mem(vec![
            (
                "CMakeLists.txt",
                "set(CUTLASS_REVISION \"v4.2.1\" CACHE STRING \"CUTLASS revision\")\n\
                 if(VLLM_CUTLASS_SRC_DIR)\n  FetchContent_Declare(cutlass SOURCE_DIR ${VLLM_CUTLASS_SRC_DIR})\n\
                 else()\n  FetchContent_Declare(\n    cutlass\n    GIT_REPOSITORY https://github.com/nvidia/cutlass.git\n\
                     # CUTLASS 4.2.1 (comment)\n    GIT_TAG ${CUTLASS_REVISION}\n  )\nendif()\n",
            ),
            (
                "cmake/external_projects/fa.cmake",
                "FetchContent_Declare(\n  vllm-flash-attn\n  GIT_REPOSITORY https://github.com/vllm-project/flash-attention.git\n  GIT_TAG 86f8f157cf82aa2342743752b97788922dd7de43 # pinned\n)\n",
            ),
        ]);
        let pins = fetch_pins(&files).unwrap();
        assert_eq!(pins.len(), 2, "{pins:?}");
        assert_eq!(
            (pins[0].name.as_str(), pins[0].tag.as_str(), pins[0].line),
            ("cutlass", "v4.2.1", 9)
        );
        assert_eq!(pins[0].file, "CMakeLists.txt");
        assert_eq!(pins[1].tag, "86f8f157cf82aa2342743752b97788922dd7de43");
        assert_eq!(pins[1].line, 4);
        assert_eq!(pins[1].file, "cmake/external_projects/fa.cmake");
    }

    #[test]
    fn repository_urls_compare_without_git_suffix_and_case() {
        assert_eq!(
            same_repo_key("https://github.com/nvidia/cutlass.git"),
            same_repo_key("https://github.com/NVIDIA/cutlass/")
        );
        assert_ne!(
            same_repo_key("https://github.com/nvidia/cutlass"),
            same_repo_key("https://github.com/nvidia/cutlass2")
        );
    }
}
