//! `jetforge new`: reads a checked-out project and writes a first recipe for it, with comments
//! saying what was found where. What it reads: the build system (`pyproject.toml`
//! `[build-system]`, `setup.py`, `CMakeLists.txt`), whether the project compiles CUDA, and how
//! it chooses CUDA archs: `TORCH_CUDA_ARCH_LIST` (torch's cpp_extension), hard-coded
//! `-gencode`/`arch=compute_XX` lines (turned into an `[[edit]]` with a per-arch loop), or
//! `CMAKE_CUDA_ARCHITECTURES`.

use std::path::Path;

/// Where the recipe's source comes from.
pub enum Origin<'a> {
    Git {
        url: &'a str,
        tag: &'a str,
        commit: &'a str,
    },
    /// An sdist unpacked at `path` (relative to the recipe file).
    Sdist {
        url: &'a str,
        sha256: &'a str,
        path: &'a str,
    },
}

/// What was found in the project, each with the file that said so.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    /// `pyproject.toml` `[build-system] requires`, when it has them.
    pub build_requires: Option<Vec<String>>,
    pub build_backend: Option<String>,
    pub has_pyproject: bool,
    pub has_setup_py: bool,
    pub has_cmake: bool,
    /// A file that shows the project compiles CUDA, if any.
    pub cuda_evidence: Option<String>,
    /// torch's cpp_extension or `TORCH_CUDA_ARCH_LIST` is used (file).
    pub torch_arch_list: Option<String>,
    /// `CMAKE_CUDA_ARCHITECTURES` is used (file).
    pub cmake_cuda_archs: Option<String>,
    /// Hard-coded arch flags: one proposed edit per file.
    pub edits: Vec<ArchEdit>,
}

/// An `[[edit]]` that replaces hard-coded arch lines with one copy per target arch.
#[derive(Debug, PartialEq)]
pub struct ArchEdit {
    pub file: String,
    /// The exact text found (whole lines, newline included).
    pub find: String,
    pub replace: String,
    pub count: usize,
    pub why: String,
}

/// Files read for arch flags, besides `setup.py` and `CMakeLists.txt`, by extension.
const SCANNED: &[&str] = &["py", "cmake", "txt"];
/// Directories never read (vendored code, build outputs, VCS data).
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "build",
    "dist",
    "third_party",
    "3rdparty",
    "node_modules",
];

/// Reads the project checked out at `root`.
pub fn analyze(root: &Path) -> Findings {
    let mut f = Findings {
        has_pyproject: root.join("pyproject.toml").is_file(),
        has_setup_py: root.join("setup.py").is_file(),
        has_cmake: root.join("CMakeLists.txt").is_file(),
        ..Findings::default()
    };
    if let Ok(text) = std::fs::read_to_string(root.join("pyproject.toml")) {
        if let Ok(doc) = text.parse::<toml::Table>() {
            let bs = doc.get("build-system");
            f.build_requires = bs
                .and_then(|b| b.get("requires"))
                .and_then(|r| r.as_array())
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                });
            f.build_backend = bs
                .and_then(|b| b.get("build-backend"))
                .and_then(|b| b.as_str())
                .map(str::to_string);
        }
    }
    let mut files = Vec::new();
    walk(root, root, 0, &mut files);
    files.sort();
    for rel in files {
        let path = root.join(&rel);
        let is_cu = rel.ends_with(".cu") || rel.ends_with(".cuh");
        if is_cu {
            f.cuda_evidence.get_or_insert_with(|| rel.clone());
            continue;
        }
        let scanned = rel.ends_with("CMakeLists.txt")
            || rel
                .rsplit_once('.')
                .is_some_and(|(_, ext)| SCANNED.contains(&ext) && ext != "txt");
        if !scanned {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.contains("CUDAExtension") || text.contains("TORCH_CUDA_ARCH_LIST") {
            f.torch_arch_list.get_or_insert_with(|| rel.clone());
            f.cuda_evidence.get_or_insert_with(|| rel.clone());
        }
        if text.contains("CMAKE_CUDA_ARCHITECTURES") {
            f.cmake_cuda_archs.get_or_insert_with(|| rel.clone());
            f.cuda_evidence.get_or_insert_with(|| rel.clone());
        }
        if let Some(edit) = arch_edit(&rel, &text) {
            f.cuda_evidence.get_or_insert_with(|| rel.clone());
            f.edits.push(edit);
        }
    }
    f
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ty) = e.file_type() else { continue };
        if ty.is_dir() && depth < 6 && !SKIPPED_DIRS.contains(&name.as_str()) {
            walk(root, &path, depth + 1, out);
        } else if ty.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

/// The two-digit arch in `arch=compute_XX` (or `sm_XX`) on a line, if any.
fn hard_coded_arch(line: &str) -> Option<&str> {
    let at = line.find("arch=compute_")? + "arch=compute_".len();
    let digits = line[at..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(&line[at..], |end| &line[at..at + end]);
    (digits.len() >= 2).then_some(digits)
}

/// The first block of hard-coded arch lines in `text` (a line with `arch=compute_XX`, with the
/// line before it when that one holds the `-gencode`), proposed as a per-arch loop. Other
/// blocks for other archs are left for the user: the edit's comment lists them.
fn arch_edit(rel: &str, text: &str) -> Option<ArchEdit> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let i = lines.iter().position(|l| hard_coded_arch(l).is_some())?;
    let arch = hard_coded_arch(lines[i])?.to_string();
    let start = if i > 0 && lines[i - 1].contains("-gencode") && !lines[i - 1].contains("arch=") {
        i - 1
    } else {
        i
    };
    let find: String = lines[start..=i].concat();
    let body = find
        .replace(&format!("compute_{arch}"), "compute_${{ each_arch_nodot }}")
        .replace(&format!("sm_{arch}"), "sm_${{ each_arch_nodot }}");
    let body = if body.ends_with('\n') {
        body
    } else {
        format!("{body} ")
    };
    let replace = format!("${{{{ for each_arch in cuda_archs }}}}{body}${{{{ endfor }}}}");
    let count = text.matches(&find).count();
    let others: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(n, l)| *n != i && hard_coded_arch(l).is_some_and(|a| a != arch))
        .map(|(n, _)| (n + 1).to_string())
        .collect();
    let mut why = format!("build for every target arch instead of the hard-coded sm_{arch}");
    if !others.is_empty() {
        why.push_str(&format!(
            "; lines {} hard-code other archs: drop them with further edits if they do not \
             build for Orin",
            others.join(", ")
        ));
    }
    Some(ArchEdit {
        file: rel.to_string(),
        find,
        replace,
        count,
        why,
    })
}

/// The recipe text: every finding is written as a key with a comment saying where it came from.
/// `set_recipes` are the recipes of the set the file goes into (`torch` there becomes a
/// dependency when the project builds torch extensions).
pub fn recipe_text(
    name: &str,
    version: &str,
    origin: &Origin,
    f: &Findings,
    set_recipes: &[String],
) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "# Written by `jetforge new`; review every line, then `jetforge check` and `jetforge plan {name}`.\n"
    ));
    t.push_str(&format!(
        "[package]\nname = {}\nversion = {}\n",
        q(name),
        q(version)
    ));
    match origin {
        Origin::Git { url, tag, commit } => t.push_str(&format!(
            "\n[source]\ngit = {}\ntag = {}\ncommit = {}  # what `{tag}` pointed at when this was written\n",
            q(url),
            q(tag),
            q(commit)
        )),
        Origin::Sdist { url, sha256, path } => t.push_str(&format!(
            "\n# The sdist {url}\n# (sha256 {sha256}), unpacked here by `jetforge new`; a git\n\
             # repository with a tag, when the project has one, is the better source.\n\
             [source]\npath = {}\n",
            q(path)
        )),
    }
    for e in &f.edits {
        t.push_str("\n# Hard-coded CUDA arch flags: one copy per target arch instead.\n[[edit]]\n");
        t.push_str(&format!(
            "file = {}\nfind = {}\nreplace = {}\ncount = {}\nwhy = {}\n",
            q(&e.file),
            ml(&e.find),
            ml(&e.replace),
            e.count,
            q(&e.why)
        ));
    }
    let torch_dep = f.torch_arch_list.is_some() && set_recipes.iter().any(|r| r == "torch");
    let requires: Vec<&String> = f
        .build_requires
        .iter()
        .flatten()
        .filter(|r| !(torch_dep && crate::pkgname::normalize(req_name(r)) == "torch"))
        .collect();
    if torch_dep || !requires.is_empty() {
        t.push_str("\n[depends]\n");
        if torch_dep {
            t.push_str(&format!(
                "recipes = [\"torch\"]  # {} builds torch extensions: against the set's torch\n",
                f.torch_arch_list.as_deref().unwrap_or_default()
            ));
        }
        if !requires.is_empty() {
            let list: Vec<String> = requires.iter().map(|r| q(r)).collect();
            t.push_str(&format!(
                "python = [{}]  # pyproject.toml [build-system] requires\n",
                list.join(", ")
            ));
        }
    }
    let mut env = Vec::new();
    if let Some(file) = &f.torch_arch_list {
        env.push(format!(
            "TORCH_CUDA_ARCH_LIST = \"${{{{ cuda_arch_list }}}}\"  # {file} uses torch's cpp_extension / TORCH_CUDA_ARCH_LIST"
        ));
    }
    if let Some(file) = &f.cmake_cuda_archs {
        env.push(format!(
            "CUDAARCHS = \"${{{{ cuda_arch_nodot }}}}\"  # {file} uses CMAKE_CUDA_ARCHITECTURES; CMake reads its default from CUDAARCHS"
        ));
    }
    if let Some(file) = &f.cuda_evidence {
        env.push(format!(
            "CUDA_HOME = \"${{{{ cuda_home }}}}\"  # {file} compiles CUDA code"
        ));
    }
    if !env.is_empty() {
        t.push_str(&format!("\n[env]\n{}\n", env.join("\n")));
    }
    t.push_str("\n[build]\n");
    let how = match (f.has_pyproject, f.has_setup_py, f.has_cmake) {
        (true, _, _) => format!(
            "pyproject.toml (build-backend {})",
            f.build_backend
                .as_deref()
                .unwrap_or("setuptools, the default")
        ),
        (false, true, _) => "setup.py".to_string(),
        (false, false, true) => {
            "CMakeLists.txt only: replace the step with the project's own wheel build".to_string()
        }
        _ => "no pyproject.toml, setup.py or CMakeLists.txt found: write the steps".to_string(),
    };
    t.push_str(&format!(
        "# The build system: {how}. No build isolation: the venv holds [depends].\n\
         steps = [\"python -m pip wheel --no-build-isolation --no-deps -v -w ${{{{ out }}}} .\"]\n"
    ));
    if f.cuda_evidence.is_some() {
        t.push_str(
            "[jobs]\nmem_per_job_gib = 4.0  # a guess for nvcc; measure the peak and adjust\n",
        );
    }
    let module = name.replace('-', "_");
    t.push_str(&format!(
        "\n[verify]\npython = \"import {module}\"  # the import name may differ from the package name\n"
    ));
    if f.cuda_evidence.is_some() {
        t.push_str("gpu = true\n");
    }
    t
}

/// The distribution name of a PEP 508 requirement (`torch>=2` → `torch`).
fn req_name(r: &str) -> &str {
    let end = r
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(r.len());
    &r[..end]
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML multi-line literal string where it can be one (the text as written), else basic.
fn ml(s: &str) -> String {
    if s.contains("'''") || s.contains('\r') {
        q(s)
    } else {
        format!("'''\n{s}'''")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::tree as project;

    #[test]
    fn hard_coded_gencode_lines_become_a_per_arch_edit() {
        let dir = project(&[(
            "setup.py",
            "cc_flag = []\ncc_flag.append(\"-gencode\")\ncc_flag.append(\"arch=compute_80,code=sm_80\")\nsetup()\n",
        )]);
        let f = analyze(dir.path());
        assert_eq!(f.edits.len(), 1);
        let e = &f.edits[0];
        assert_eq!(
            e.find,
            "cc_flag.append(\"-gencode\")\ncc_flag.append(\"arch=compute_80,code=sm_80\")\n"
        );
        assert_eq!(
            e.replace,
            "${{ for each_arch in cuda_archs }}cc_flag.append(\"-gencode\")\n\
             cc_flag.append(\"arch=compute_${{ each_arch_nodot }},code=sm_${{ each_arch_nodot }}\")\n${{ endfor }}"
        );
        let (t, _) = crate::recipe::template::Template::parse(&e.replace);
        let mut vars = crate::recipe::template::Vars::default();
        vars.set("cuda_arch_list", "8.7;9.0");
        assert_eq!(
            t.render(&vars).unwrap(),
            "cc_flag.append(\"-gencode\")\ncc_flag.append(\"arch=compute_87,code=sm_87\")\n\
             cc_flag.append(\"-gencode\")\ncc_flag.append(\"arch=compute_90,code=sm_90\")\n"
        );
        assert_eq!(f.cuda_evidence.as_deref(), Some("setup.py"));
    }

    #[test]
    fn arch_mechanisms_and_build_requirements_are_read() {
        let dir = project(&[
            (
                "pyproject.toml",
                "[build-system]\nrequires = [\"setuptools>=61\", \"torch==2.9.0\"]\nbuild-backend = \"setuptools.build_meta\"\n",
            ),
            (
                "setup.py",
                "from torch.utils.cpp_extension import CUDAExtension\n",
            ),
            ("csrc/CMakeLists.txt", "set(CMAKE_CUDA_ARCHITECTURES 80)\n"),
            ("csrc/k.cu", ""),
        ]);
        let f = analyze(dir.path());
        assert_eq!(f.torch_arch_list.as_deref(), Some("setup.py"));
        assert_eq!(f.cmake_cuda_archs.as_deref(), Some("csrc/CMakeLists.txt"));
        let text = recipe_text(
            "kern",
            "1.0",
            &Origin::Git {
                url: "https://example.invalid/kern.git",
                tag: "v1.0",
                commit: "0123456789abcdef0123456789abcdef01234567",
            },
            &f,
            &["torch".to_string()],
        );
        for needle in [
            "recipes = [\"torch\"]",
            "python = [\"setuptools>=61\"]",
            "TORCH_CUDA_ARCH_LIST = \"${{ cuda_arch_list }}\"",
            "CUDAARCHS = \"${{ cuda_arch_nodot }}\"",
            "gpu = true",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        toml::from_str::<crate::recipe::schema::RecipeFile>(&text).unwrap();
    }
}
