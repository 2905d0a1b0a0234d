//! Loading recipe sets from a [`FileTree`], with every problem reported at once and each one
//! pointing at file:line:col.
//!
//! Layout: a set is a directory holding recipe files (`*.toml` with a `[package]`); an optional
//! `set.toml` in it describes the set (`description`, `default = true`). Recipe files placed
//! directly in the root form a set named after the root. `targets.toml` at the root holds target
//! profiles (read by `target`). Patch files live in a separate tree (`patches/`).
//!
//! Size: about 1,250 lines, one validation function per part of the recipe format (source,
//! patches, edits, resources, paths, jobs, steps, verify, set-wide checks), all sharing the
//! span-keeping context that turns a problem into a `file:line:col` diagnostic and collects every
//! problem of a set before reporting; it is the one place that turns `schema` into `Recipe`.
//! Splitting it by key is the next step once the format settles.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::schema::{self, RecipeFile, StepSpec};
use super::template::{self, Template};
use super::tree::FileTree;
use super::{
    Edit, ExtraRepo, JobsPolicy, OutputKind, Patch, Recipe, RecipeSet, Resource, SetRequires,
    Source, Step, StepKind, Submodules, Verify,
};
use crate::diag::{toml_error, Diagnostic, Diagnostics};
use crate::repo_url::repo_key;

/// Files at the root or in a set directory that are not recipes.
const NOT_RECIPES: &[&str] = &["set.toml", "targets.toml", "jetforge.toml"];
pub(crate) const DEFAULT_VERIFY_TIMEOUT_SECS: u64 = 300;

/// All sets found in a recipe tree.
#[derive(Debug, Clone)]
pub struct RecipeSets {
    pub sets: Vec<RecipeSet>,
    pub default: Option<String>,
}

impl RecipeSets {
    /// The set named `name`, or the default one.
    pub fn pick(&self, name: Option<&str>) -> Result<&RecipeSet, String> {
        let names = || {
            self.sets
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name.or(self.default.as_deref()) {
            Some(n) => self
                .sets
                .iter()
                .find(|s| s.name == n)
                .ok_or_else(|| format!("no recipe set named `{n}` (sets: {})", names())),
            None if self.sets.len() == 1 => Ok(&self.sets[0]),
            None if self.sets.is_empty() => Err("the recipe directory holds no recipes".into()),
            None => Err(format!(
                "several recipe sets and none is the default: pick one with --set ({})",
                names()
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    set: SetMeta,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMeta {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    cuda: Option<String>,
    #[serde(default)]
    python: Option<String>,
    #[serde(default)]
    jetpack: Option<String>,
}

/// Loads every set of `recipes`, resolving patch files against `patches`.
/// `root_name` names a set made of files placed directly in the root.
pub fn load_sets(
    recipes: &FileTree,
    patches: &FileTree,
    root_name: &str,
) -> Result<RecipeSets, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut by_set: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in recipes.files.keys() {
        if !key.ends_with(".toml") {
            continue;
        }
        let (dir, file) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
        if NOT_RECIPES.contains(&file) || dir.contains('/') {
            continue;
        }
        by_set.entry(dir.to_string()).or_default().push(key.clone());
    }
    let mut sets = Vec::new();
    let mut default = None;
    for (dir, files) in by_set {
        let name = if dir.is_empty() {
            root_name.to_string()
        } else {
            dir.clone()
        };
        let meta = read_set_meta(recipes, &dir, &mut diags);
        if meta.as_ref().is_some_and(|m| m.default) {
            default = Some(name.clone());
        }
        let requires = meta
            .as_ref()
            .map_or_else(SetRequires::default, |m| SetRequires {
                cuda: m.cuda.clone(),
                python: m.python.clone(),
                jetpack: m.jetpack.clone(),
            });
        let loaded: Vec<Recipe> = files
            .iter()
            .filter_map(|f| load_recipe(recipes, patches, f, &mut diags))
            .collect();
        if let Some(mut set) = check_set(
            name,
            meta.and_then(|m| m.description),
            loaded,
            recipes,
            &mut diags,
        ) {
            set.requires = requires;
            sets.push(set);
        }
    }
    if diags.is_empty() {
        Ok(RecipeSets { sets, default })
    } else {
        Err(diags)
    }
}

fn read_set_meta(tree: &FileTree, dir: &str, diags: &mut Diagnostics) -> Option<SetMeta> {
    let key = if dir.is_empty() {
        "set.toml".to_string()
    } else {
        format!("{dir}/set.toml")
    };
    let bytes = tree.get(&key)?;
    let text = String::from_utf8_lossy(bytes);
    match toml::from_str::<SetFile>(&text) {
        Ok(f) => Some(f.set),
        Err(e) => {
            diags.push(toml_error(&tree.display(&key), &text, &e));
            None
        }
    }
}

/// Loads one recipe file; problems go to `diags`, and `None` is returned when the file is unusable.
fn load_recipe(
    recipes: &FileTree,
    patches: &FileTree,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<Recipe> {
    let file = recipes.display(key);
    let text = match std::str::from_utf8(recipes.get(key)?) {
        Ok(t) => t.to_string(),
        Err(_) => {
            diags.push(Diagnostic::file_only(
                &file,
                "the recipe is not valid UTF-8",
            ));
            return None;
        }
    };
    let raw: RecipeFile = match toml::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            diags.push(toml_error(&file, &text, &e));
            return None;
        }
    };
    let before = diags.len();
    let cx = Cx {
        file: &file,
        text: &text,
    };
    let recipe_dir = recipes
        .dir
        .as_ref()
        .map(|d| d.join(Path::new(key).parent().unwrap_or(Path::new(""))));
    let name = raw.package.name.get_ref().clone();
    if !valid_name(&name) {
        diags.push(
            cx.at(
                raw.package.name.span(),
                format!("invalid package name `{name}`"),
            )
            .with_hint("use letters, digits, `-`, `_` and `.`, starting with a letter or digit"),
        );
    }
    let version_text = raw.package.version.get_ref();
    // A version that does not parse is reported; the placeholder never leaves this function.
    let version = match version_text.parse::<pep440_rs::Version>() {
        Ok(v) => v,
        Err(e) => {
            diags.push(
                cx.at(
                    raw.package.version.span(),
                    format!("`{version_text}` is not a PEP 440 version: {e}"),
                )
                .with_hint("write the version the wheel must carry, e.g. `2.9.0`"),
            );
            pep440_rs::Version::new([0])
        }
    };
    if let Some(d) = &raw.package.disk_gib {
        let gib = *d.get_ref();
        if !(gib.is_finite() && gib >= 0.0) {
            diags.push(
                cx.at(
                    d.span(),
                    format!(
                        "`disk_gib = {gib}` is not a size: it must be a number of GiB, 0 or more"
                    ),
                )
                .with_hint(
                    "write the free disk the source tree and build need, e.g. `disk_gib = 30`",
                ),
            );
        }
    }
    // How far `source.path` may climb: out of the recipe's directory and the recipe directory,
    // into the directory that holds it (the project), no further.
    let levels_up = Path::new(key).components().count();
    let source = check_source(&cx, &raw.source, recipe_dir.as_deref(), levels_up, diags);
    let patches = check_patches(&cx, &raw.patches, patches, diags);
    let resources = check_resources(&cx, &raw.resources, diags);
    let repositories = check_repositories(&cx, &raw.repositories, diags);
    let edits = check_edits(&cx, &raw.edits, diags);
    let after: Vec<String> = raw
        .depends
        .after
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    let depends: Vec<String> = raw
        .depends
        .recipes
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    for req in &raw.depends.python {
        if let Err(e) = req.get_ref().parse::<pep508_rs::Requirement>() {
            diags.push(
                cx.at(
                    req.span(),
                    format!("`{}` is not a PEP 508 requirement", req.get_ref()),
                )
                .with_hint(first_line(&e.to_string())),
            );
        }
    }
    let env = check_env(&cx, &raw.env, diags);
    let jobs = check_jobs(&cx, &raw.jobs, diags);
    let steps = check_steps(&cx, &raw.build.steps, diags);
    let output = match raw
        .output
        .kind
        .as_ref()
        .map(|k| (k.get_ref().as_str(), k.span()))
    {
        None | Some(("wheel", _)) => OutputKind::Wheel,
        Some(("source", _)) => OutputKind::Source,
        Some(("tree", _)) => OutputKind::Tree,
        Some((other, span)) => {
            diags.push(
                cx.at(span, format!("unknown output kind `{other}`"))
                    .with_hint("use `wheel`, `source` or `tree`"),
            );
            OutputKind::Wheel
        }
    };
    if output != OutputKind::Source && steps.is_empty() {
        diags.push(
            cx.at(
                raw.package.name.span(),
                format!(
                    "recipe `{name}` builds a {} but has no build steps",
                    output.noun()
                ),
            )
            .with_hint("add [build] steps, or set [output] kind = \"source\""),
        );
    }
    if output == OutputKind::Tree && raw.verify.is_some() {
        diags.push(
            cx.at(
                find_table(&text, "verify"),
                format!("recipe `{name}` installs a tree, which has nothing to import: [verify] does not apply"),
            )
            .with_hint("check the tree in the recipe that uses it (its verify imports the wheel built against it)"),
        );
    }
    check_template_refs(&cx, &raw, diags);
    if diags.len() > before {
        return None;
    }
    Some(Recipe {
        name,
        version,
        description: raw.package.description.clone(),
        disk_gib: raw.package.disk_gib.as_ref().map(|d| *d.get_ref()),
        file,
        text: text.clone(),
        source: source?,
        patches,
        edits,
        resources,
        repositories,
        depends,
        after,
        python_requires: raw
            .depends
            .python
            .iter()
            .map(|d| d.get_ref().clone())
            .collect(),
        pyproject_requires: raw.depends.pyproject.unwrap_or(true),
        env,
        jobs,
        steps,
        output,
        wheel_names: raw.output.wheels.clone(),
        verify: raw.verify.as_ref().map(|v| Verify {
            python: v.python.clone(),
            timeout_secs: v.timeout_secs.unwrap_or(DEFAULT_VERIFY_TIMEOUT_SECS),
            gpu: v.gpu,
        }),
        cross: raw.build.cross,
        network: raw.build.network.clone(),
    })
}

/// Location context of the file being checked.
struct Cx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Cx<'_> {
    fn at(&self, span: Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.file, self.text, span, msg)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn check_source(
    cx: &Cx,
    s: &schema::SourceSpec,
    recipe_dir: Option<&Path>,
    levels_up: usize,
    diags: &mut Diagnostics,
) -> Option<Source> {
    match (&s.git, &s.path) {
        (Some(_), Some(p)) => {
            diags.push(cx.at(p.span(), "a source has either `git` or `path`, not both"));
            None
        }
        (None, None) => {
            diags.push(
                cx.at(
                    find_table(cx.text, "source"),
                    "the source has neither `git` nor `path`",
                )
                .with_hint("add `git = \"https://…\"` with `tag` and `commit`"),
            );
            None
        }
        (None, Some(p)) => {
            let Some(dir) = recipe_dir else {
                diags.push(cx.at(
                    p.span(),
                    "an embedded recipe cannot use a local `path` source",
                ));
                return None;
            };
            if !confined(
                cx,
                p,
                "source.path",
                "the directory holding the recipe directory",
                levels_up,
                diags,
            ) {
                return None;
            }
            Some(Source::Path {
                dir: dir.join(p.get_ref()),
            })
        }
        (Some(url), None) => {
            let pin = GitPinSpec {
                what: "a git source",
                url,
                commit: s.commit.as_ref(),
                tag: s.tag.as_ref(),
                branch: s.branch.as_ref(),
                submodules: s.submodules.as_ref(),
            };
            let (commit, submodules) = check_git_pin(cx, &pin, diags)?;
            Some(Source::Git {
                url: url.get_ref().clone(),
                tag: s.tag.as_ref().map(|t| t.get_ref().clone()),
                branch: s.branch.as_ref().map(|t| t.get_ref().clone()),
                commit,
                submodules,
            })
        }
    }
}

/// The pin fields shared by `[source]` and `[[repository]]`.
struct GitPinSpec<'a> {
    what: &'a str,
    url: &'a Spanned<String>,
    commit: Option<&'a Spanned<String>>,
    tag: Option<&'a Spanned<String>>,
    branch: Option<&'a Spanned<String>>,
    submodules: Option<&'a Spanned<schema::SubmodulesSpec>>,
}

/// The commit (lower-case) and submodule selection of a git pin.
fn check_git_pin(cx: &Cx, p: &GitPinSpec, diags: &mut Diagnostics) -> Option<(String, Submodules)> {
    let Some(commit) = p.commit else {
        diags.push(
            cx.at(p.url.span(), format!("{} needs a pinned `commit`", p.what))
                .with_hint("add `commit = \"<40 hex digits>\"`: the commit the tag points at, or a commit on `branch`"),
        );
        return None;
    };
    let c = commit.get_ref();
    if !is_hex(c, 40) {
        diags.push(
            cx.at(commit.span(), format!("commit `{c}` is not 40 hex digits"))
                .with_hint("pin the full commit id (`git rev-parse <tag>^{commit}`)"),
        );
        return None;
    }
    if let (Some(_), Some(b)) = (p.tag, p.branch) {
        diags.push(cx.at(
            b.span(),
            format!("{} has either `tag` or `branch`, not both", p.what),
        ));
        return None;
    }
    let submodules = check_submodules(cx, p.submodules, diags)?;
    Some((c.to_ascii_lowercase(), submodules))
}

fn check_repositories(
    cx: &Cx,
    specs: &[schema::RepositorySpec],
    diags: &mut Diagnostics,
) -> Vec<ExtraRepo> {
    let mut out: Vec<ExtraRepo> = Vec::new();
    for r in specs {
        let pin = GitPinSpec {
            what: "a [[repository]]",
            url: &r.git,
            commit: r.commit.as_ref(),
            tag: r.tag.as_ref(),
            branch: r.branch.as_ref(),
            submodules: r.submodules.as_ref(),
        };
        let Some((commit, submodules)) = check_git_pin(cx, &pin, diags) else {
            continue;
        };
        let url = r.git.get_ref();
        if out.iter().any(|o| repo_key(&o.url) == repo_key(url)) {
            diags.push(cx.at(
                r.git.span(),
                format!("repository `{url}` is declared twice"),
            ));
            continue;
        }
        out.push(ExtraRepo {
            url: url.clone(),
            tag: r.tag.as_ref().map(|t| t.get_ref().clone()),
            branch: r.branch.as_ref().map(|t| t.get_ref().clone()),
            commit,
            submodules,
        });
    }
    out
}

fn check_submodules(
    cx: &Cx,
    spec: Option<&Spanned<schema::SubmodulesSpec>>,
    diags: &mut Diagnostics,
) -> Option<Submodules> {
    let Some(spec) = spec else {
        return Some(Submodules::None);
    };
    let paths = match spec.get_ref() {
        schema::SubmodulesSpec::All(all) => return Some((*all).into()),
        schema::SubmodulesSpec::Only(paths) => paths,
    };
    let bad = |p: &String| {
        p.is_empty()
            || p.starts_with('/')
            || p.split('/').any(|c| c == ".." || c == ".")
            || p.contains('\\')
    };
    if paths.is_empty() {
        diags.push(
            cx.at(spec.span(), "`submodules` is an empty list")
                .with_hint("write `submodules = false` to check out none"),
        );
        return None;
    }
    if let Some(p) = paths.iter().find(|p| bad(p)) {
        diags.push(
            cx.at(
                spec.span(),
                format!("submodule path `{p}` is not a relative path"),
            )
            .with_hint("write paths as in `.gitmodules`, relative to the repository root"),
        );
        return None;
    }
    Some(Submodules::Only(
        paths
            .iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .collect(),
    ))
}

/// The span of a `[table]` header, for errors about a table as a whole.
fn find_table(text: &str, name: &str) -> Range<usize> {
    let header = format!("[{name}]");
    text.find(&header).map_or(0..0, |i| i..i + header.len())
}

/// Why `path` (as a recipe wrote it, relative to some root) could leave that root, if it could:
/// it is absolute, or its `..` climb more than `levels_up` levels above where it starts.
/// Symlinks are not followed here; `prepare` checks them in the real tree.
pub fn escapes(path: &str, levels_up: usize) -> Option<&'static str> {
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Some("is an absolute path");
    }
    let mut depth = levels_up as i64;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some("climbs out with `..`");
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// Pushes an error and returns false when the path at `value` could leave `root`.
fn confined(
    cx: &Cx,
    value: &Spanned<String>,
    what: &str,
    root: &str,
    levels_up: usize,
    diags: &mut Diagnostics,
) -> bool {
    confined_at(
        cx,
        value.get_ref(),
        value.span(),
        what,
        root,
        levels_up,
        diags,
    )
}

fn confined_at(
    cx: &Cx,
    path: &str,
    span: Range<usize>,
    what: &str,
    root: &str,
    levels_up: usize,
    diags: &mut Diagnostics,
) -> bool {
    let Some(why) = escapes(path, levels_up) else {
        return true;
    };
    diags.push(
        cx.at(
            span,
            format!("{what} `{path}` {why}: it would leave {root}"),
        )
        .with_hint(format!(
            "write {what} relative to {root}, without leading `/` or `..` that climb out of it"
        )),
    );
    false
}

fn check_patches(
    cx: &Cx,
    specs: &[schema::PatchSpec],
    tree: &FileTree,
    diags: &mut Diagnostics,
) -> Vec<Patch> {
    let mut out = Vec::new();
    for p in specs {
        let rel = p.file.get_ref();
        let dir_ok = p
            .directory
            .as_ref()
            .is_none_or(|d| confined(cx, d, "the patch directory", "the source tree", 0, diags));
        if !confined(
            cx,
            &p.file,
            "the patch file",
            "the patch directory",
            0,
            diags,
        ) || !dir_ok
        {
            continue;
        }
        match tree.get(rel) {
            Some(bytes) => out.push(Patch {
                file: rel.clone(),
                display: tree.display(rel),
                bytes: bytes.to_vec(),
                strip: p.strip,
                directory: p.directory.as_ref().map(|d| d.get_ref().clone()),
            }),
            None => diags.push(
                cx.at(p.file.span(), format!("patch file `{rel}` not found"))
                    .with_hint(format!(
                        "patch paths are relative to `{}`",
                        tree.display_root
                    )),
            ),
        }
    }
    out
}

fn check_resources(
    cx: &Cx,
    specs: &[schema::ResourceSpec],
    diags: &mut Diagnostics,
) -> Vec<Resource> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for r in specs {
        let trust = r.trust.as_ref().map(|t| (t.get_ref().as_str(), t.span()));
        match (&r.sha256, trust) {
            (Some(sha), None) if !is_hex(sha.get_ref(), 64) => diags.push(
                cx.at(
                    sha.span(),
                    format!("sha256 `{}` is not 64 hex digits", sha.get_ref()),
                )
                .with_hint("use `sha256sum FILE` on a trusted copy"),
            ),
            (Some(_), None) | (None, Some((TRUST_FIRST_USE, _))) => {}
            (None, None) => diags.push(
                cx.at(
                    r.name.span(),
                    format!("resource `{}` has no `sha256`", r.name.get_ref()),
                )
                .with_hint(
                    "add `sha256 = \"…\"` (`sha256sum FILE` on a trusted copy), or, when the \
                     digest cannot be known in advance, `trust = \"first-use\"`",
                ),
            ),
            (Some(_), Some((_, span))) => diags.push(
                cx.at(span, "a resource has either `sha256` or `trust`, not both")
                    .with_hint("`trust = \"first-use\"` is for resources without a known sha256"),
            ),
            (None, Some((other, span))) => diags.push(
                cx.at(span, format!("unknown trust `{other}`"))
                    .with_hint("the only one is `trust = \"first-use\"`"),
            ),
        }
        if !seen.insert(r.name.get_ref().clone()) {
            diags.push(cx.at(
                r.name.span(),
                format!("resource `{}` is declared twice", r.name.get_ref()),
            ));
        }
        if let Some(env) = &r.env {
            if !valid_env_key(env.get_ref()) {
                diags.push(cx.at(
                    env.span(),
                    format!(
                        "`{}` is not a valid environment variable name",
                        env.get_ref()
                    ),
                ));
            }
        }
        if let Some(sub) = &r.subdir {
            confined(
                cx,
                sub,
                "the resource subdir",
                "the extracted archive",
                0,
                diags,
            );
        }
        let url = r.url.get_ref();
        if !(url.starts_with("https://")
            || url.starts_with("http://")
            || url.starts_with("file://"))
        {
            diags.push(cx.at(
                r.url.span(),
                format!("resource URL `{url}` is not http(s):// or file://"),
            ));
        }
        out.push(Resource {
            name: r.name.get_ref().clone(),
            url: url.clone(),
            sha256: r.sha256.as_ref().map(|s| s.get_ref().to_ascii_lowercase()),
            extract: r.extract,
            env: r.env.as_ref().map(|e| e.get_ref().clone()),
            subdir: r.subdir.as_ref().map(|s| s.get_ref().clone()),
        });
    }
    out
}

fn check_edits(cx: &Cx, specs: &[schema::EditSpec], diags: &mut Diagnostics) -> Vec<Edit> {
    let mut out = Vec::new();
    for e in specs {
        if !confined(cx, &e.file, "the edited file", "the source tree", 0, diags) {
            continue;
        }
        let find = match &e.find {
            Some(f) if !f.get_ref().is_empty() => f.get_ref().clone(),
            Some(f) => {
                diags.push(cx.at(f.span(), "an edit's `find` must not be empty"));
                continue;
            }
            None => {
                diags.push(
                    cx.at(
                        e.file.span(),
                        format!("the edit of `{}` has no `find`", e.file.get_ref()),
                    )
                    .with_hint("add `find = \"…\"` with the exact text to replace"),
                );
                continue;
            }
        };
        let count = *e.count.get_ref();
        if count < 1 {
            diags.push(
                cx.at(
                    e.count.span(),
                    format!("edit count must be at least 1, not {count}"),
                )
                .with_hint("`count` is how many times `find` must occur in the file"),
            );
            continue;
        }
        out.push(Edit {
            file: e.file.get_ref().clone(),
            find,
            replace: Template::parse(e.replace.get_ref()).0,
            count: count as u32,
            why: e.why.clone(),
        });
    }
    out
}

fn valid_env_key(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The one `trust` a resource may declare instead of a `sha256`.
const TRUST_FIRST_USE: &str = "first-use";

/// Variables jetforge computes itself; a recipe setting them would silently defeat the policy.
const COMPUTED_ENV: &[(&str, &str)] = &[
    (
        "MAX_JOBS",
        "set [jobs] mem_per_job_gib (and `max`) instead; jetforge computes MAX_JOBS",
    ),
    ("NVCC_THREADS", "set [jobs] nvcc_threads instead"),
];

fn check_env(
    cx: &Cx,
    env: &BTreeMap<String, Spanned<String>>,
    diags: &mut Diagnostics,
) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    for (k, v) in env {
        if !valid_env_key(k) {
            diags.push(cx.at(
                v.span(),
                format!("`{k}` is not a valid environment variable name"),
            ));
            continue;
        }
        if let Some((_, hint)) = COMPUTED_ENV.iter().find(|(n, _)| n == k) {
            diags.push(
                cx.at(
                    v.span(),
                    format!("`{k}` is computed by jetforge and cannot be set in [env]"),
                )
                .with_hint(*hint),
            );
            continue;
        }
        out.push((k.clone(), Template::parse(v.get_ref()).0));
    }
    out
}

fn check_jobs(cx: &Cx, j: &schema::JobsSpec, diags: &mut Diagnostics) -> JobsPolicy {
    let mut gib = |field: &str, m: &Spanned<f64>| {
        let v = *m.get_ref();
        if !(v > 0.0 && v < 1024.0) {
            diags.push(cx.at(
                m.span(),
                format!("{field} must be between 0 and 1024 GiB, not {v}"),
            ));
        }
        v
    };
    let mem = j
        .mem_per_job_gib
        .as_ref()
        .map_or(JobsPolicy::DEFAULT_MEM_PER_JOB_GIB, |m| {
            gib("mem_per_job_gib", m)
        });
    let link = j
        .mem_per_link_gib
        .as_ref()
        .map(|m| gib("mem_per_link_gib", m));
    for (field, v) in [("nvcc_threads", &j.nvcc_threads), ("max", &j.max)] {
        if let Some(v) = v {
            if *v.get_ref() == 0 {
                diags.push(cx.at(v.span(), format!("jobs.{field} must be at least 1")));
            }
        }
    }
    if j.max_jobs_counts_nvcc_threads && j.nvcc_threads.is_none() {
        diags.push(
            cx.at(
                find_table(cx.text, "jobs"),
                "max_jobs_counts_nvcc_threads needs nvcc_threads",
            )
            .with_hint("add `nvcc_threads = N`"),
        );
    }
    JobsPolicy {
        mem_per_job_gib: mem,
        mem_per_link_gib: link,
        nvcc_threads: j.nvcc_threads.as_ref().map(|v| *v.get_ref()),
        max_jobs_counts_nvcc_threads: j.max_jobs_counts_nvcc_threads,
        max: j.max.as_ref().map(|v| *v.get_ref()),
    }
}

fn check_steps(cx: &Cx, specs: &[Spanned<StepSpec>], diags: &mut Diagnostics) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let n = i + 1;
        match s.get_ref() {
            StepSpec::Script(script) => out.push(Step {
                name: format!("step {n}"),
                kind: StepKind::Script(Template::parse(script).0),
                cwd: None,
            }),
            StepSpec::Table(t) => {
                let name = t.name.clone().unwrap_or_else(|| format!("step {n}"));
                if let Some(c) = &t.cwd {
                    let at = locate(cx.text, &s.span(), &format!("\"{c}\""));
                    if !confined_at(
                        cx,
                        c,
                        at,
                        &format!("the cwd of build step {n}"),
                        "the source tree",
                        0,
                        diags,
                    ) {
                        continue;
                    }
                }
                let cwd = t.cwd.as_ref().map(|c| Template::parse(c).0);
                match (&t.run, &t.argv) {
                    (Some(run), None) => out.push(Step {
                        name,
                        kind: StepKind::Script(Template::parse(run).0),
                        cwd,
                    }),
                    (None, Some(argv)) if !argv.is_empty() => out.push(Step {
                        name,
                        kind: StepKind::Argv(argv.iter().map(|a| Template::parse(a).0).collect()),
                        cwd,
                    }),
                    _ => diags.push(cx.at(
                        s.span(),
                        format!("build step {n} needs exactly one of `run` or a non-empty `argv`"),
                    )),
                }
            }
        }
    }
    out
}

/// Every templated string of a recipe with its span, for placeholder checks.
fn templated(raw: &RecipeFile) -> Vec<(&str, Range<usize>)> {
    let mut v: Vec<(&str, Range<usize>)> = Vec::new();
    for val in raw.env.values() {
        v.push((val.get_ref(), val.span()));
    }
    for e in &raw.edits {
        v.push((e.replace.get_ref(), e.replace.span()));
    }
    for s in &raw.build.steps {
        match s.get_ref() {
            StepSpec::Script(text) => v.push((text, s.span())),
            StepSpec::Table(t) => {
                for x in t
                    .run
                    .iter()
                    .chain(t.cwd.iter())
                    .chain(t.argv.iter().flatten())
                {
                    v.push((x, s.span()));
                }
            }
        }
    }
    v
}

fn check_template_refs(cx: &Cx, raw: &RecipeFile, diags: &mut Diagnostics) {
    let deps: BTreeSet<&str> = raw
        .depends
        .recipes
        .iter()
        .map(|d| d.get_ref().as_str())
        .collect();
    let resources: BTreeSet<&str> = raw
        .resources
        .iter()
        .map(|r| r.name.get_ref().as_str())
        .collect();
    // A file that uses `${{ }}` nowhere was written for the old `{name}` syntax; in a file that
    // does, `{name}` is the user's own text (a Python f-string, say) and is left alone.
    let old_file = !cx.text.contains(template::OPEN);
    for (s, span) in templated(raw) {
        if old_file {
            for (range, new) in template::old_syntax(s) {
                let old = &s[range.clone()];
                let nth = s[..range.start].matches(old).count();
                diags.push(
                    cx.at(
                        locate_nth(cx.text, &span, old, nth),
                        format!("write `{new}` instead of `{old}`"),
                    )
                    .with_hint(
                        "templates are written `${{ name }}` now; `{name}` is left as it stands, \
                         so Python f-strings and shell or CMake `${X}` pass through untouched",
                    ),
                );
            }
        }
        if let Some(msg) = Template::block_error(s) {
            let at = locate(cx.text, &span, template::OPEN);
            diags.push(cx.at(at, msg).with_hint(
                "write `${{ for each_arch in cuda_archs }}…${{ each_arch_nodot }}…${{ endfor }}`: the body is repeated once per target CUDA arch",
            ));
        }
        for r in Template::parse(s).1 {
            let shown = template::display_var(&r.name, r.arg.as_deref());
            let at = locate(cx.text, &span, &s[r.range.clone()]);
            if !template::is_known(&r.name, r.arg.as_deref()) {
                let written = &s[r.range.clone()];
                diags.push(
                    cx.at(at, format!("unknown template variable `{written}`"))
                        .with_hint(format!("known variables: {}", template::known_list())),
                );
                continue;
            }
            let Some(arg) = r.arg.as_deref() else {
                continue;
            };
            if r.name == "resource" && !resources.contains(arg) {
                diags.push(cx.at(
                    at,
                    format!("`{shown}` names no [[resource]] of this recipe"),
                ));
            } else if r.name != "resource" && !deps.contains(arg) {
                diags.push(
                    cx.at(
                        at,
                        format!(
                            "`{shown}` names `{arg}`, which is not a dependency of this recipe"
                        ),
                    )
                    .with_hint(format!(
                        "add \"{arg}\" to [depends] recipes so it is prepared first"
                    )),
                );
            }
        }
    }
}

/// The recipes a recipe's templates name with `${{ tree_dir:NAME }}`.
fn tree_dir_args(r: &Recipe) -> BTreeSet<String> {
    let mut templates: Vec<&Template> = r.env.iter().map(|(_, t)| t).collect();
    templates.extend(r.edits.iter().map(|e| &e.replace));
    for s in &r.steps {
        match &s.kind {
            StepKind::Script(t) => templates.push(t),
            StepKind::Argv(a) => templates.extend(a),
        }
        templates.extend(&s.cwd);
    }
    templates
        .iter()
        .flat_map(|t| t.vars())
        .filter_map(|(name, arg)| (name == "tree_dir").then_some(arg).flatten())
        .map(str::to_string)
        .collect()
}

/// The byte range of `needle` inside the value at `span` (falls back to the whole value).
fn locate(text: &str, span: &Range<usize>, needle: &str) -> Range<usize> {
    locate_nth(text, span, needle, 0)
}

/// The byte range of the `nth` (from 0) `needle` inside the value at `span`.
fn locate_nth(text: &str, span: &Range<usize>, needle: &str, nth: usize) -> Range<usize> {
    text.get(span.clone())
        .and_then(|v| v.match_indices(needle).nth(nth))
        .map_or(span.clone(), |(i, _)| {
            span.start + i..span.start + i + needle.len()
        })
}

/// Checks that span files: duplicate names, unknown dependencies, cycles; then orders the set.
fn check_set(
    name: String,
    description: Option<String>,
    recipes: Vec<Recipe>,
    tree: &FileTree,
    diags: &mut Diagnostics,
) -> Option<RecipeSet> {
    let before = diags.len();
    let mut first: BTreeMap<&str, &Recipe> = BTreeMap::new();
    for r in &recipes {
        if let Some(prev) = first.get(r.name.as_str()) {
            diags.push(
                Diagnostic::at(
                    &r.file,
                    &r.text,
                    name_span(&r.text),
                    format!("duplicate package name `{}`", r.name),
                )
                .with_hint(format!(
                    "`{}` already defines it; each package has one recipe per set",
                    prev.file
                )),
            );
        } else {
            first.insert(&r.name, r);
        }
    }
    // Two recipes declaring the same distribution would replace each other's wheel in the
    // wheelhouse and rebuild forever.
    let mut producer: BTreeMap<String, &Recipe> = BTreeMap::new();
    for r in &recipes {
        for w in &r.wheel_names {
            let dist = crate::pkgname::normalize(w);
            match producer.get(&dist) {
                Some(prev) if prev.name != r.name => diags.push(
                    Diagnostic::at(
                        &r.file,
                        &r.text,
                        quoted_span(&r.text, w),
                        format!(
                            "`{}` declares distribution `{w}`, which recipe `{}` also declares",
                            r.name, prev.name
                        ),
                    )
                    .with_hint(format!(
                        "`{}` already produces it; two recipes of a set cannot produce the same distribution",
                        prev.file
                    )),
                ),
                _ => {
                    producer.insert(dist, r);
                }
            }
        }
    }
    for r in &recipes {
        for d in r.ordering_deps() {
            if !first.contains_key(d.as_str()) {
                let known: Vec<&str> = first.keys().copied().collect();
                diags.push(
                    Diagnostic::at(
                        &r.file,
                        &r.text,
                        dep_span(&r.text, d),
                        format!("`{}` depends on unknown recipe `{d}`", r.name),
                    )
                    .with_hint(format!("recipes in set `{name}`: {}", known.join(", "))),
                );
            }
        }
    }
    for r in &recipes {
        for d in tree_dir_args(r) {
            if first
                .get(d.as_str())
                .is_some_and(|dep| dep.output != OutputKind::Tree)
            {
                let shown = template::display_var("tree_dir", Some(&d));
                let at = r.text.find(&format!("tree_dir:{d}")).map_or(0..0, |i| {
                    let start = r.text[..i].rfind(template::OPEN).unwrap_or(i);
                    let end = r.text[i..].find(template::CLOSE).map_or(i, |e| i + e + 2);
                    start..end
                });
                diags.push(
                    Diagnostic::at(
                        &r.file,
                        &r.text,
                        at,
                        format!("`{shown}` names `{d}`, whose output is not a tree"),
                    )
                    .with_hint(format!(
                        "give `{d}` [output] kind = \"tree\" (its steps install into ${{{{ out }}}}), or use ${{{{ source_dir:{d} }}}}"
                    )),
                );
            }
        }
    }
    if diags.len() > before {
        return None;
    }
    let mut set = RecipeSet {
        name,
        description,
        requires: SetRequires::default(),
        recipes,
        index: Default::default(),
    };
    match super::graph::order(&set.recipes) {
        Ok(order) => {
            let mut sorted: Vec<Option<Recipe>> = set.recipes.drain(..).map(Some).collect();
            set.recipes = order
                .into_iter()
                .map(|i| sorted[i].take().unwrap())
                .collect();
            let _ = tree;
            Some(set)
        }
        Err(cycle) => {
            let r = set.recipes.iter().find(|r| r.name == cycle[0]).unwrap();
            let next = &cycle[1];
            diags.push(
                Diagnostic::at(
                    &r.file,
                    &r.text,
                    dep_span(&r.text, next),
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                )
                .with_hint("a recipe cannot depend on itself, directly or through others"),
            );
            None
        }
    }
}

/// Where `"value"` is written in the recipe (the whole file when it is not found as such).
fn quoted_span(text: &str, value: &str) -> Range<usize> {
    let quoted = format!("\"{value}\"");
    text.find(&quoted)
        .map_or(0..0, |i| i + 1..i + 1 + value.len())
}

fn name_span(text: &str) -> Range<usize> {
    toml::from_str::<NameOnly>(text)
        .map(|n| n.package.name.span())
        .unwrap_or(0..0)
}

#[derive(Deserialize)]
struct NameOnly {
    package: NameOnlyPackage,
}
#[derive(Deserialize)]
struct NameOnlyPackage {
    name: Spanned<String>,
}

/// The span of `dep` inside `[depends] recipes`.
fn dep_span(text: &str, dep: &str) -> Range<usize> {
    #[derive(Deserialize)]
    struct D {
        #[serde(default)]
        depends: Option<DD>,
    }
    #[derive(Deserialize)]
    struct DD {
        #[serde(default)]
        recipes: Vec<Spanned<String>>,
        #[serde(default)]
        after: Vec<Spanned<String>>,
    }
    toml::from_str::<D>(text)
        .ok()
        .and_then(|d| d.depends)
        .and_then(|d| {
            d.recipes
                .into_iter()
                .chain(d.after)
                .find(|r| r.get_ref() == dep)
        })
        .map_or(0..0, |r| r.span())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recipes shipped in the binary must always load and check.
    #[test]
    fn embedded_sets_load() {
        let sets = load_sets(
            &FileTree::embedded_recipes(),
            &FileTree::embedded_patches(),
            "recipes",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        assert!(sets.pick(None).is_ok());
    }
}
