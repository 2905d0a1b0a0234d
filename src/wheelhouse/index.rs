//! PEP 503 "simple" index pages, regenerated from the wheel files that are really there (never
//! from the manifest, which may be stale): `simple/index.html` lists projects,
//! `simple/<project>/index.html` links each wheel with its `#sha256=`. Pages are replaced
//! atomically one by one; projects that have no wheel any more lose their page. Uploading to a
//! remote index is not done here.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::atomic::{self, TMP_PREFIX};
use super::wheel::{sha256_file, WheelName};
use crate::error;

/// One link of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedWheel {
    /// PEP 503 normalized project name.
    pub project: String,
    pub file: String,
    pub sha256: String,
    /// The link as written on the project page, without the hash fragment.
    pub href: String,
}

/// The wheels at the top level of `dir`: not `broken/`, not temporary files.
pub fn wheels_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && name.ends_with(".whl") && !name.starts_with(TMP_PREFIX) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Regenerates `dir/simple/` for the wheels at the top level of `dir`.
pub fn write_simple_index(dir: &Path) -> Result<Vec<IndexedWheel>> {
    write_index(dir, &wheels_in(dir)?)
}

/// Writes `root/simple/` for `wheels`, which may live anywhere: wheels under `root` get
/// relative links (the tree can be served or copied as a whole), others `file://` URLs.
pub fn write_index(root: &Path, wheels: &[PathBuf]) -> Result<Vec<IndexedWheel>> {
    write_index_with(root, wheels, &|_| None)
}

/// [`write_index`], taking a wheel's sha256 from `known` when it answers (the wheelhouse knows
/// the hashes of files whose stat data did not change) instead of reading the file.
pub fn write_index_with(
    root: &Path,
    wheels: &[PathBuf],
    known: &dyn Fn(&Path) -> Option<String>,
) -> Result<Vec<IndexedWheel>> {
    let root = fs::canonicalize(root)
        .with_context(|| format!("failed to resolve `{}`", root.display()))?;
    let mut projects: BTreeMap<String, Vec<IndexedWheel>> = BTreeMap::new();
    for wheel in wheels {
        let indexed = index_entry(&root, wheel, known)?;
        projects
            .entry(indexed.project.clone())
            .or_default()
            .push(indexed);
    }
    let simple = root.join("simple");
    fs::create_dir_all(&simple)
        .with_context(|| format!("failed to create `{}`", simple.display()))?;
    for (project, files) in &projects {
        let page_dir = simple.join(project);
        fs::create_dir_all(&page_dir)
            .with_context(|| format!("failed to create `{}`", page_dir.display()))?;
        write_if_changed(
            &page_dir.join("index.html"),
            project_page(project, files).as_bytes(),
        )?;
    }
    remove_stale_projects(&simple, &projects)?;
    let names: Vec<&String> = projects.keys().collect();
    write_if_changed(&simple.join("index.html"), root_page(&names).as_bytes())?;
    Ok(projects.into_values().flatten().collect())
}

fn index_entry(
    root: &Path,
    wheel: &Path,
    known: &dyn Fn(&Path) -> Option<String>,
) -> Result<IndexedWheel> {
    let file = wheel
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = WheelName::parse(&file).map_err(|e| {
        error::input_hint(
            e.to_string(),
            format!("move `{}` out of the wheelhouse", wheel.display()),
        )
    })?;
    let abs = fs::canonicalize(wheel)
        .with_context(|| format!("failed to resolve `{}`", wheel.display()))?;
    let sha256 = match known(wheel) {
        Some(sha) => sha,
        None => sha256_file(&abs).with_context(|| format!("failed to hash `{}`", abs.display()))?,
    };
    let href = match abs.strip_prefix(root) {
        Ok(rel) => format!("../../{}", url_path(&rel.to_string_lossy())),
        Err(_) => format!("file://{}", url_path(&abs.to_string_lossy())),
    };
    Ok(IndexedWheel {
        project: name.normalized(),
        file,
        sha256,
        href,
    })
}

/// A page with the same bytes is left alone: a no-op build writes nothing.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    atomic::write(path, bytes)
}

fn remove_stale_projects(
    simple: &Path,
    projects: &BTreeMap<String, Vec<IndexedWheel>>,
) -> Result<()> {
    let read =
        fs::read_dir(simple).with_context(|| format!("failed to list `{}`", simple.display()))?;
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !projects.contains_key(&name) {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("failed to remove `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"pypi:repository-version\" content=\"1.0\">\n\
         <title>{}</title>\n</head>\n<body>\n{body}</body>\n</html>\n",
        html(title)
    )
}

fn root_page(projects: &[&String]) -> String {
    let body: String = projects
        .iter()
        .map(|p| format!("<a href=\"{}/\">{}</a><br>\n", url_path(p), html(p)))
        .collect();
    page("Simple index", &body)
}

fn project_page(project: &str, files: &[IndexedWheel]) -> String {
    let body: String = files
        .iter()
        .map(|w| {
            format!(
                "<a href=\"{}#sha256={}\">{}</a><br>\n",
                html(&w.href),
                w.sha256,
                html(&w.file)
            )
        })
        .collect();
    page(
        &format!("Links for {project}"),
        &format!("<h1>Links for {}</h1>\n{body}", html(project)),
    )
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Percent-encodes what may not stand in a URL path (RFC 3986 `pchar` and `/` stay; `+` of
/// local versions too, as pip expects to see it).
fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheelhouse::fixtures::TestWheel;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn index_links_every_wheel_with_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let torch = TestWheel::new("torch", "2.9.0+cu126").write(dir.path());
        TestWheel::new("Vllm_Flash_Attn", "2.7.4")
            .tag("py3-none-any")
            .write(dir.path());
        fs::create_dir(dir.path().join("broken")).unwrap();
        TestWheel::new("bad", "1.0").write(&dir.path().join("broken"));
        fs::write(
            dir.path()
                .join(".tmp-1-torch-2.9.1-cp310-cp310-linux_aarch64.whl"),
            b"",
        )
        .unwrap();

        let indexed = write_simple_index(dir.path()).unwrap();
        assert_eq!(indexed.len(), 2);

        let root = read(&dir.path().join("simple/index.html"));
        assert!(root.starts_with("<!DOCTYPE html>"), "{root}");
        assert!(root.contains("<meta name=\"pypi:repository-version\" content=\"1.0\">"));
        assert!(root.contains("<a href=\"torch/\">torch</a>"), "{root}");
        assert!(
            root.contains("<a href=\"vllm-flash-attn/\">vllm-flash-attn</a>"),
            "{root}"
        );
        assert!(!root.contains("bad"), "{root}");

        let page = read(&dir.path().join("simple/torch/index.html"));
        let sha = sha256_file(&torch).unwrap();
        let link = format!(
            "<a href=\"../../torch-2.9.0+cu126-cp310-cp310-linux_aarch64.whl#sha256={sha}\">torch-2.9.0+cu126-cp310-cp310-linux_aarch64.whl</a>"
        );
        assert!(page.contains(&link), "{page}");
        assert!(!page.contains("2.9.1"), "{page}");
        assert!(!dir.path().join("simple/bad").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("simple/torch"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "only index.html");
    }

    #[test]
    fn a_wheel_removed_from_disk_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let a = TestWheel::new("a", "1.0").write(dir.path());
        TestWheel::new("b", "1.0").write(dir.path());
        write_simple_index(dir.path()).unwrap();
        assert!(dir.path().join("simple/a/index.html").exists());

        fs::remove_file(a).unwrap();
        write_simple_index(dir.path()).unwrap();
        assert!(!dir.path().join("simple/a").exists());
        let root = read(&dir.path().join("simple/index.html"));
        assert!(
            !root.contains("\"a/\"") && root.contains("\"b/\""),
            "{root}"
        );
    }

    #[test]
    fn wheels_outside_the_root_get_file_urls() {
        let wheels = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let w = TestWheel::new("a", "1.0").write(wheels.path());
        let indexed = write_index(out.path(), std::slice::from_ref(&w)).unwrap();
        let abs = fs::canonicalize(&w).unwrap();
        assert_eq!(indexed[0].href, format!("file://{}", abs.display()));
        let page = read(&out.path().join("simple/a/index.html"));
        assert!(
            page.contains(&format!("file://{}#sha256=", abs.display())),
            "{page}"
        );
    }

    #[test]
    fn a_stray_file_is_named_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.whl"), b"").unwrap();
        let err = write_simple_index(dir.path()).unwrap_err();
        let out = crate::error::render(&err);
        assert!(
            out.contains("`notes.whl` is not a wheel file name"),
            "{out}"
        );
        assert!(out.contains("hint: move"), "{out}");
    }

    #[test]
    fn pages_parse_as_html() {
        let dir = tempfile::tempdir().unwrap();
        TestWheel::new("a", "1.0").write(dir.path());
        write_simple_index(dir.path()).unwrap();
        let script = "import sys, html.parser\n\
class P(html.parser.HTMLParser):\n    links = []\n    def handle_starttag(self, t, a):\n        if t == 'a': self.links.append(dict(a)['href'])\n\
for f in sys.argv[1:]:\n    p = P(); p.links = []; p.feed(open(f).read()); print(p.links)\n";
        let Ok(out) = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(dir.path().join("simple/index.html"))
            .arg(dir.path().join("simple/a/index.html"))
            .output()
        else {
            return; // no python3 here; the string checks of the other tests still hold
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.starts_with("['a/']\n['../../a-1.0-cp310-cp310-linux_aarch64.whl#sha256="),
            "{text}"
        );
    }
}
