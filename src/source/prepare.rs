//! `prepare`: a recipe's source tree, pristine at its pinned commit, with its patches and edits.
//!
//! Everything is checked before anything is written: all patches, then all edits, are applied
//! in memory to the pristine files (later ones see earlier ones), for every recipe handed to
//! [`prepare_all`]; only when all of them apply is a single file touched. Preparing twice gives
//! the same tree, because each run starts from the pristine commit. A marker beside the tree
//! (`<name>.prepared.json`) records the commit and a hash of the changes, so a caller can skip
//! an identical re-prepare (and keep the mtimes incremental builds rely on).
//!
//! Not here: fetching (the [`MirrorCache`] does it on demand) and choosing the work dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::recipe::template::Vars;
use crate::recipe::{Recipe, Source};
use crate::source::git::{Anchor, MirrorCache, Submodule};
use crate::source::patch::{self, FilePatch};

const MARKER_FORMAT: u32 = 1;

/// One recipe to prepare: its tree goes to `source_dir`; `vars` fill the edits' templates.
pub struct PrepareJob<'a> {
    pub recipe: &'a Recipe,
    pub source_dir: PathBuf,
    pub vars: Vars,
}

/// A planned write: `content: None` deletes the file. `path` is relative to the source dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    pub content: Option<Vec<u8>>,
}

/// What a prepared tree is made of (what its fingerprint needs), as also written to the marker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prepared {
    pub format: u32,
    pub recipe: String,
    pub commit: Option<String>,
    pub submodules: Vec<Submodule>,
    /// SHA-256 over the patches' bytes and options and the rendered edits.
    pub changes_sha256: String,
}

/// Prepares one recipe; see [`prepare_all`].
pub fn prepare(cache: &MirrorCache, job: &PrepareJob) -> Result<Prepared> {
    Ok(prepare_all(cache, std::slice::from_ref(job))?.remove(0))
}

/// Checks out every job's source pristine, checks every patch and edit of every job in memory,
/// and only then writes them all. On any failure nothing is patched, and the error lists every
/// recipe that failed.
pub fn prepare_all(cache: &MirrorCache, jobs: &[PrepareJob]) -> Result<Vec<Prepared>> {
    let parsed: Vec<Vec<ParsedPatch>> = jobs
        .iter()
        .map(|j| parse_patches(j.recipe))
        .collect::<Result<_>>()?;
    let mut prepared = Vec::new();
    for (job, patches) in jobs.iter().zip(&parsed) {
        prepared.push(restore_pristine(cache, job, patches)?);
    }
    let mut plans = Vec::new();
    let mut failures = Vec::new();
    let mut hints = Vec::new();
    for (job, patches) in jobs.iter().zip(&parsed) {
        // A local directory is its own pristine copy: planned against it, the work tree is
        // then written once, only where it differs (a no-op prepare writes nothing).
        let pristine = match &job.recipe.source {
            Source::Path { dir } => dir.as_path(),
            Source::Git { .. } => job.source_dir.as_path(),
        };
        match plan_parsed(job.recipe, &dir_reader(pristine), patches, &job.vars) {
            Ok(plan) => plans.push(plan),
            Err(e) => {
                hints.extend(crate::error::hints(&e));
                failures.push(format!("{e:#}"));
            }
        }
    }
    if !failures.is_empty() {
        return Err(crate::error::failure_hints(
            format!(
                "{}\nnothing was patched: every source tree is left pristine",
                failures.join("\n\n")
            ),
            hints,
        ));
    }
    for ((job, plan), p) in jobs.iter().zip(&plans).zip(&prepared) {
        if let Source::Path { dir } = &job.recipe.source {
            let planned: std::collections::BTreeSet<&Path> =
                plan.iter().map(|c| c.path.as_path()).collect();
            sync_tree_except(dir, &job.source_dir, Path::new(""), &planned).with_context(|| {
                format!("recipe `{}`: failed to copy its source", job.recipe.name)
            })?;
        }
        write_changes(&job.source_dir, plan)?;
        write_marker(job, p)?;
    }
    Ok(prepared)
}

/// Applies all of the recipe's patches, then all its edits, in memory, to the files under
/// `source_dir` (assumed pristine). Returns the files that change; writes nothing.
pub fn plan_changes(recipe: &Recipe, source_dir: &Path, vars: &Vars) -> Result<Vec<FileChange>> {
    plan_parsed(
        recipe,
        &dir_reader(source_dir),
        &parse_patches(recipe)?,
        vars,
    )
}

/// Reads a pristine file by its path relative to the source root; `None` when it does not exist.
pub type ReadFile<'a> = dyn Fn(&Path) -> Result<Option<Vec<u8>>> + 'a;

/// [`plan_changes`] against files that `read` supplies (e.g. blobs of a commit in a git mirror),
/// so patches and edits can be checked without a checkout.
pub fn plan_changes_with(recipe: &Recipe, read: &ReadFile, vars: &Vars) -> Result<Vec<FileChange>> {
    plan_parsed(recipe, read, &parse_patches(recipe)?, vars)
}

fn dir_reader(root: &Path) -> impl Fn(&Path) -> Result<Option<Vec<u8>>> + '_ {
    move |rel| {
        let path = inside(root, rel)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
        }
    }
}

/// True when the marker says `source_dir` was prepared from the same commit with the same
/// patches and edits.
pub fn is_prepared(job: &PrepareJob) -> Result<bool> {
    let Ok(text) = std::fs::read_to_string(marker_path(job)) else {
        return Ok(false);
    };
    let Ok(marker) = serde_json::from_str::<Prepared>(&text) else {
        return Ok(false);
    };
    Ok(marker.format == MARKER_FORMAT
        && marker.commit.as_deref() == job.recipe.source.commit()
        && marker.changes_sha256 == changes_hash(job.recipe, &job.vars)?)
}

/// `<source_dir>/../<recipe>.prepared.json`: outside the tree, so a checkout never touches it.
pub fn marker_path(job: &PrepareJob) -> PathBuf {
    let parent = job.source_dir.parent().unwrap_or(Path::new("."));
    parent.join(format!("{}.prepared.json", job.recipe.name))
}

struct ParsedPatch<'a> {
    patch: &'a crate::recipe::Patch,
    files: Vec<FilePatch>,
}

impl ParsedPatch<'_> {
    fn path_of(&self, fp: &FilePatch) -> PathBuf {
        let dir = self.patch.directory.as_deref().unwrap_or("");
        Path::new(dir).join(fp.target())
    }
}

fn parse_patches(recipe: &Recipe) -> Result<Vec<ParsedPatch<'_>>> {
    recipe
        .patches
        .iter()
        .map(|p| {
            let files = patch::parse(&p.bytes, p.strip).with_context(|| {
                format!(
                    "recipe `{}`: cannot read the patch `{}`",
                    recipe.name, p.display
                )
            })?;
            Ok(ParsedPatch { patch: p, files })
        })
        .collect()
}

/// Resets the tree to the pinned commit (tracked files only, so build outputs stay) and removes
/// the files a previous prepare created.
fn restore_pristine(
    cache: &MirrorCache,
    job: &PrepareJob,
    patches: &[ParsedPatch],
) -> Result<Prepared> {
    let recipe = job.recipe;
    let marker = marker_path(job);
    // A git tree's marker says it may be skipped, so it goes before the tree is touched; a
    // local directory is always synced, and its marker is rewritten only when it changes.
    let is_git = matches!(recipe.source, Source::Git { .. });
    if is_git && marker.exists() {
        std::fs::remove_file(&marker)
            .with_context(|| format!("failed to remove `{}`", marker.display()))?;
    }
    let (commit, submodules) = match &recipe.source {
        Source::Git {
            url,
            tag,
            branch,
            commit,
            submodules,
        } => {
            let anchor = Anchor::of(tag.as_deref(), branch.as_deref());
            let subs = cache
                .checkout(url, commit, anchor, &job.source_dir, submodules)
                .with_context(|| format!("recipe `{}`", recipe.name))?;
            (Some(commit.clone()), subs)
        }
        Source::Path { dir } => {
            if !dir.is_dir() {
                bail!(
                    "recipe `{}`: source directory `{}` does not exist",
                    recipe.name,
                    dir.display()
                );
            }
            (None, Vec::new())
        }
    };
    if matches!(recipe.source, Source::Git { .. }) {
        for p in patches {
            for fp in p.files.iter().filter(|f| f.old.is_none()) {
                remove_if_untracked(&job.source_dir, &p.path_of(fp))?;
            }
        }
    }
    Ok(Prepared {
        format: MARKER_FORMAT,
        recipe: recipe.name.clone(),
        commit,
        submodules,
        changes_sha256: changes_hash(recipe, &job.vars)?,
    })
}

/// Copies a local source directory into the work tree, writing only files whose bytes differ,
/// so unchanged files keep their mtimes (incremental builds) and patched files are restored.
/// Build outputs in the work tree that the source does not have are left alone. `.git` is
/// skipped, and so are the files at the relative paths in `skip` (below `rel`), which the
/// patches and edits write.
fn sync_tree_except(
    src: &Path,
    dst: &Path,
    rel: &Path,
    skip: &std::collections::BTreeSet<&Path>,
) -> Result<()> {
    std::fs::create_dir_all(dst)
        .with_context(|| format!("failed to create `{}`", dst.display()))?;
    for entry in crate::paths::dir_entries(src)? {
        if entry.file_name() == ".git" {
            continue;
        }
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            sync_tree_except(&from, &to, &rel, skip)?;
        } else if !skip.contains(rel.as_path()) {
            let bytes = std::fs::read(&from)
                .with_context(|| format!("failed to read `{}`", from.display()))?;
            if std::fs::read(&to).ok().as_deref() != Some(bytes.as_slice()) {
                std::fs::write(&to, &bytes)
                    .with_context(|| format!("failed to write `{}`", to.display()))?;
                crate::paths::copy_permissions(&from, &to)?;
            }
        }
    }
    Ok(())
}

fn remove_file_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

/// A file a patch creates is ours when git does not track it (in whichever repository, top
/// level or submodule, holds it).
fn remove_if_untracked(root: &Path, rel: &Path) -> Result<()> {
    let path = inside(root, rel)?;
    if !path.is_file() {
        return Ok(());
    }
    let repo = git2::Repository::discover(path.parent().unwrap_or(root))
        .with_context(|| format!("failed to find the repository holding `{}`", path.display()))?;
    let workdir = repo.workdir().context("the repository has no work tree")?;
    let in_repo = path.strip_prefix(workdir).unwrap_or(&path);
    let status = repo
        .status_file(in_repo)
        .with_context(|| format!("failed to read the git status of `{}`", path.display()))?;
    if status.intersects(git2::Status::WT_NEW | git2::Status::IGNORED) {
        std::fs::remove_file(&path)
            .with_context(|| format!("failed to remove `{}`", path.display()))?;
    }
    Ok(())
}

/// The tree as patches see it: pristine files read on first use, then the planned contents.
struct Overlay<'a> {
    read: &'a ReadFile<'a>,
    pristine: BTreeMap<PathBuf, Option<Vec<u8>>>,
    current: BTreeMap<PathBuf, Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    fn get(&mut self, rel: &Path) -> Result<Option<Vec<u8>>> {
        if let Some(c) = self.current.get(rel) {
            return Ok(c.clone());
        }
        let content = (self.read)(rel)?;
        self.pristine.insert(rel.to_path_buf(), content.clone());
        self.current.insert(rel.to_path_buf(), content.clone());
        Ok(content)
    }

    fn changes(self) -> Vec<FileChange> {
        let pristine = self.pristine;
        self.current
            .into_iter()
            .filter(|(p, c)| pristine.get(p) != Some(c))
            .map(|(path, content)| FileChange { path, content })
            .collect()
    }
}

fn plan_parsed(
    recipe: &Recipe,
    read: &ReadFile,
    patches: &[ParsedPatch],
    vars: &Vars,
) -> Result<Vec<FileChange>> {
    let mut tree = Overlay {
        read,
        pristine: BTreeMap::new(),
        current: BTreeMap::new(),
    };
    for p in patches {
        for fp in &p.files {
            let rel = p.path_of(fp);
            let before = tree.get(&rel)?;
            let after = fp.apply(before.as_deref()).map_err(|e| {
                crate::error::failure_hint(
                    format!(
                        "recipe `{}`: the patch `{}` does not apply to `{}`\n{}",
                        recipe.name,
                        p.patch.display,
                        rel.display(),
                        e.to_string().trim_end()
                    ),
                    "the patch was written for another version of the source; regenerate it \
                     against the pinned commit (and check `strip`/`directory`)",
                )
            })?;
            tree.current.insert(rel, after);
        }
    }
    for edit in &recipe.edits {
        apply_edit(recipe, edit, &mut tree, vars)?;
    }
    Ok(tree.changes())
}

fn apply_edit(
    recipe: &Recipe,
    edit: &crate::recipe::Edit,
    tree: &mut Overlay,
    vars: &Vars,
) -> Result<()> {
    let rel = PathBuf::from(&edit.file);
    let where_ = || format!("recipe `{}`: the edit of `{}`", recipe.name, edit.file);
    let bytes = tree
        .get(&rel)?
        .ok_or_else(|| anyhow!("{}: the file does not exist", where_()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{}: the file is not UTF-8 text", where_()))?;
    let found = text.matches(edit.find.as_str()).count();
    if found != edit.count as usize {
        return Err(crate::error::failure_hint(
            format!(
                "{}: found {found} occurrence(s) of the text, expected {}\nfind: {:?}",
                where_(),
                edit.count,
                edit.find,
            ),
            format!(
                "the source changed, or `count` is wrong; look for the text in `{}` at the \
                 pinned commit",
                edit.file
            ),
        ));
    }
    let replace = edit
        .replace
        .render(vars)
        .map_err(|v| anyhow!("{}: no value for {v} in `replace`", where_()))?;
    tree.current
        .insert(rel, Some(text.replace(&edit.find, &replace).into_bytes()));
    Ok(())
}

/// `root/rel`, after checking that it stays inside `root` once symlinks are followed: a recipe's
/// paths are confined when loaded, but a symlink in the checked-out tree (`third_party/x ->
/// /etc`) could still lead a patch or an edit out of it. The deepest part of the path that
/// exists is resolved; a dangling symlink is refused, since writing through it would create its
/// target wherever it points.
pub fn inside(root: &Path, rel: &Path) -> Result<PathBuf> {
    let path = root.join(rel);
    let real_root = root
        .canonicalize()
        .with_context(|| format!("failed to resolve `{}`", root.display()))?;
    for existing in path.ancestors() {
        let Ok(meta) = std::fs::symlink_metadata(existing) else {
            continue;
        };
        let real = match existing.canonicalize() {
            Ok(r) => r,
            Err(_) if meta.file_type().is_symlink() => bail!(
                "`{}` is a symlink that leads nowhere: refusing to write through it",
                existing.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to resolve `{}`", existing.display()))
            }
        };
        if !real.starts_with(&real_root) {
            bail!(
                "`{}` leads out of the source tree `{}` through a symlink (it resolves to `{}`): \
                 refusing to read or write it",
                rel.display(),
                root.display(),
                real.display()
            );
        }
        break;
    }
    Ok(path)
}

fn write_changes(root: &Path, changes: &[FileChange]) -> Result<()> {
    for c in changes {
        let path = inside(root, &c.path)?;
        match &c.content {
            Some(bytes) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("failed to create `{}`", parent.display()))?;
                }
                // Unchanged bytes keep their mtime (incremental builds; a no-op writes nothing).
                if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("failed to write `{}`", path.display()))?;
                }
            }
            None => remove_file_if_exists(&path)?,
        }
    }
    Ok(())
}

fn write_marker(job: &PrepareJob, prepared: &Prepared) -> Result<()> {
    let path = marker_path(job);
    let json = serde_json::to_string_pretty(prepared).context("failed to serialise the marker")?;
    if std::fs::read(&path).ok().as_deref() == Some(json.as_bytes()) {
        return Ok(());
    }
    std::fs::write(&path, json).with_context(|| format!("failed to write `{}`", path.display()))
}

/// What the tree's changes are made of: each patch's bytes and options, each rendered edit.
fn changes_hash(recipe: &Recipe, vars: &Vars) -> Result<String> {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for p in &recipe.patches {
        field(b"patch");
        field(&p.bytes);
        field(p.strip.to_string().as_bytes());
        field(p.directory.as_deref().unwrap_or("").as_bytes());
    }
    for e in &recipe.edits {
        let replace = e
            .replace
            .render(vars)
            .map_err(|v| anyhow!("recipe `{}`: no value for {v}", recipe.name))?;
        field(b"edit");
        field(e.file.as_bytes());
        field(e.find.as_bytes());
        field(replace.as_bytes());
        field(e.count.to_string().as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}
