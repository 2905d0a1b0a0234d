//! Where recipe and patch files come from: the set embedded in the binary, or a directory
//! given with `--recipes`. Both are read into the same in-memory tree, so loading, checking and
//! fingerprinting never care which one it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use include_dir::{include_dir, Dir};

static EMBEDDED_RECIPES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/recipes");
static EMBEDDED_PATCHES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/patches");

/// A tree of files keyed by their `/`-separated path relative to the tree's root.
#[derive(Debug, Clone)]
pub struct FileTree {
    /// How paths are shown to the user: `recipes/` (embedded) or the directory given.
    pub display_root: String,
    /// The directory on disk, when the tree was read from one.
    pub dir: Option<PathBuf>,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl FileTree {
    pub fn embedded_recipes() -> Self {
        Self::from_embedded(&EMBEDDED_RECIPES, "<embedded>/recipes")
    }

    pub fn embedded_patches() -> Self {
        Self::from_embedded(&EMBEDDED_PATCHES, "<embedded>/patches")
    }

    fn from_embedded(dir: &Dir<'static>, display_root: &str) -> Self {
        let mut files = BTreeMap::new();
        collect_embedded(dir, &mut files);
        Self {
            display_root: display_root.to_string(),
            dir: None,
            files,
        }
    }

    /// Reads every file under `dir` (hidden entries skipped). A missing directory is an empty tree.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let mut files = BTreeMap::new();
        if dir.is_dir() {
            collect_dir(dir, dir, &mut files)?;
        }
        Ok(Self {
            display_root: dir.display().to_string(),
            dir: Some(dir.to_path_buf()),
            files,
        })
    }

    pub fn empty(display_root: &str) -> Self {
        Self {
            display_root: display_root.to_string(),
            dir: None,
            files: BTreeMap::new(),
        }
    }

    /// The path of `rel` as shown in messages.
    pub fn display(&self, rel: &str) -> String {
        format!("{}/{}", self.display_root.trim_end_matches('/'), rel)
    }

    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files.get(&normalize(rel)).map(Vec::as_slice)
    }
}

fn normalize(rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn collect_embedded(dir: &Dir<'static>, out: &mut BTreeMap<String, Vec<u8>>) {
    for f in dir.files() {
        out.insert(path_key(f.path()), f.contents().to_vec());
    }
    for d in dir.dirs() {
        collect_embedded(d, out);
    }
}

fn collect_dir(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_dir(root, &path, out)?;
        } else {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            out.insert(path_key(path.strip_prefix(root).unwrap_or(&path)), bytes);
        }
    }
    Ok(())
}

fn path_key(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_set_is_present() {
        let t = FileTree::embedded_recipes();
        assert!(
            t.files.keys().any(|k| k.ends_with(".toml")),
            "{:?}",
            t.files.keys()
        );
    }

    #[test]
    fn normalizes_relative_paths() {
        assert_eq!(normalize("./torch/../torch/0001.patch"), "torch/0001.patch");
    }
}
