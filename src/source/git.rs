//! The git mirror cache and work trees checked out from it.
//!
//! Every repository gets one bare mirror under `<cache>/git-v1/`, keyed by its URL after
//! `[mirrors]` rewriting (`X`, `X.git` and the host in any case are one repository, see
//! [`crate::repo_url`]), and shared by every recipe (and submodule) that uses it. A commit
//! already in its mirror costs no network at all. Work trees borrow the mirror's objects (git
//! "alternates"), so a checkout only writes files. Pinning is strict: the recipe's commit must exist, its tag, when
//! given, must point at exactly that commit, and its branch, when given, must contain it;
//! nothing ever falls back to a branch tip.
//!
//! Not here: patches (see `patch`/`prepare`), resource downloads, and choosing proxies (the
//! [`UrlPolicy`] does that; this module only applies its answer).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use git2::{build::CheckoutBuilder, AutotagOption, FetchOptions, ObjectType, Oid, ProxyOptions};
use git2::{ErrorClass, Repository, ResetType, TreeWalkMode, TreeWalkResult};
use sha2::{Digest, Sha256};

use crate::net::plain_proxy;
use crate::net::UrlPolicy;
use crate::recipe::Submodules;
use crate::redact::redact;
use crate::repo_url::repo_key;
use crate::source::lock::DirLock;

/// Cache subdirectory; bump the version when the mirror layout changes.
pub const CACHE_DIR: &str = "git-v1";
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
const TRIES: u32 = 3;
const NETWORK_HINT: &str = "check the URL and the network; behind a proxy, set `proxy` in \
the config or `https_proxy`; for an air-gapped build, run `jetforge fetch` where the network works \
and copy the cache";

/// A submodule as checked out: where, from which URL (resolved, before mirror rewriting), at
/// which commit. Part of a recipe's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Submodule {
    /// `/`-separated, relative to the top-level work tree.
    pub path: String,
    pub url: String,
    pub commit: String,
}

/// Offline, and the cache lacks what a source needs. Typed so a caller can collect every
/// missing source and list them together.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{}` at {commit} is not in the git cache (`{}`) and jetforge is offline", redact(url), mirror.display())]
pub struct Missing {
    pub url: String,
    pub commit: String,
    pub mirror: PathBuf,
}

/// Bare mirrors of git remotes under one cache root.
pub struct MirrorCache<'a> {
    root: PathBuf,
    policy: &'a dyn UrlPolicy,
    on_wait: Box<dyn Fn(&str) + 'a>,
}

/// What a pinned commit must also match: the tag pointing at it, or the branch it is on
/// (`Some("v1")` / `None` convert, as a tag or nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor<'a> {
    None,
    Tag(&'a str),
    /// The commit must be the branch's head or an ancestor of it.
    Branch(&'a str),
}

impl<'a> Anchor<'a> {
    /// A recipe's `tag` or `branch` (it cannot have both).
    pub fn of(tag: Option<&'a str>, branch: Option<&'a str>) -> Self {
        match (tag, branch) {
            (Some(t), _) => Anchor::Tag(t),
            (None, Some(b)) => Anchor::Branch(b),
            (None, None) => Anchor::None,
        }
    }
}

impl<'a> From<Option<&'a str>> for Anchor<'a> {
    fn from(tag: Option<&'a str>) -> Self {
        tag.map_or(Anchor::None, Anchor::Tag)
    }
}

/// What the mirror says about a pin.
#[derive(Debug, PartialEq, Eq)]
enum Pin {
    Ok,
    NoCommit,
    NoTag,
    TagAt(Oid),
    NoBranch,
    NotOnBranch(Oid),
}

/// How a fetch reaches a URL (see [`transport_for`]).
#[derive(Debug, PartialEq, Eq)]
enum Transport {
    Libgit2 { proxy: Option<String> },
    GitCli { proxy: String },
}

impl<'a> MirrorCache<'a> {
    /// A cache under `cache_root` (mirrors go to `cache_root/git-v1/`). Waiting for a lock held by
    /// another process is reported on stderr; use [`MirrorCache::on_wait`] to route it elsewhere.
    pub fn new(cache_root: &Path, policy: &'a dyn UrlPolicy) -> Self {
        Self {
            root: cache_root.join(CACHE_DIR),
            policy,
            // A silent wait looks like a hang, so the default is to say something.
            on_wait: Box::new(|m| eprintln!("{m}")),
        }
    }

    /// Routes "waiting for the lock …" messages to `f` (e.g. the progress reporter).
    pub fn on_wait(mut self, f: impl Fn(&str) + 'a) -> Self {
        self.on_wait = Box::new(f);
        self
    }

    /// The mirror directory for `url` (the URL as written; mirror rewriting is applied here).
    pub fn mirror_path(&self, url: &str) -> PathBuf {
        self.root.join(mirror_name(&self.policy.rewrite(url)))
    }

    /// Makes sure the mirror of `url` holds `commit` (and the tag pointing at it, or the branch
    /// it is on), fetching only when it does not. Returns the mirror's path. Offline and
    /// missing: a [`Missing`] error.
    pub fn ensure_commit<'t>(
        &self,
        url: &str,
        commit: &str,
        anchor: impl Into<Anchor<'t>>,
    ) -> Result<PathBuf> {
        let anchor = anchor.into();
        let fetch_url = self.policy.rewrite(url);
        let mirror = self.root.join(mirror_name(&fetch_url));
        let what = format!("the git mirror of `{}`", redact(&fetch_url));
        let _lock = DirLock::acquire(&mirror, &what, &self.on_wait)?;
        let oid = parse_commit(commit)?;
        let repo = open_or_init_mirror(&mirror)?;
        let pin = check_pin(&repo, oid, anchor)?;
        if pin == Pin::Ok {
            return Ok(mirror);
        }
        // A `[mirrors]` entry pointing at bare repos on disk is how an air-gapped machine
        // gets its sources, so offline still fetches from such a mirror.
        let local_mirror = fetch_url != url && is_local(&fetch_url);
        let offline = self.policy.offline() && !local_mirror;
        if offline && matches!(pin, Pin::NoCommit | Pin::NoTag | Pin::NoBranch) {
            return Err(Missing {
                url: url.to_string(),
                commit: commit.to_string(),
                mirror,
            }
            .into());
        }
        if !offline {
            self.fetch_mirror(&repo, &mirror, &fetch_url)?;
        }
        match check_pin(&repo, oid, anchor)? {
            Pin::Ok => Ok(mirror),
            pin => Err(pin_error(pin, url, commit, anchor)),
        }
    }

    /// The commit `tag` of `url` points at, after fetching the mirror (`jetforge new`, which
    /// pins what it finds). Offline, only what the mirror already holds is read.
    pub fn resolve_tag(&self, url: &str, tag: &str) -> Result<String> {
        let fetch_url = self.policy.rewrite(url);
        let mirror = self.root.join(mirror_name(&fetch_url));
        let what = format!("the git mirror of `{}`", redact(&fetch_url));
        let _lock = DirLock::acquire(&mirror, &what, &self.on_wait)?;
        let repo = open_or_init_mirror(&mirror)?;
        let local_mirror = fetch_url != url && is_local(&fetch_url);
        if !self.policy.offline() || local_mirror {
            self.fetch_mirror(&repo, &mirror, &fetch_url)?;
        }
        let reference = repo
            .find_reference(&format!("refs/tags/{tag}"))
            .map_err(|_| anyhow::anyhow!("`{}` has no tag `{tag}`", redact(url)))?;
        let commit = reference
            .peel_to_commit()
            .with_context(|| format!("tag `{tag}` does not point at a commit"))?;
        Ok(commit.id().to_string())
    }

    /// `jetforge fetch` for one git source: the mirror of `url` at `commit`, and the mirrors of
    /// the selected submodules at the commits the tree records, each recursively. Returns the
    /// submodules, parents before their children.
    pub fn fetch<'t>(
        &self,
        url: &str,
        commit: &str,
        anchor: impl Into<Anchor<'t>>,
        submodules: impl Into<Submodules>,
    ) -> Result<Vec<Submodule>> {
        let mirror = self.ensure_commit(url, commit, anchor)?;
        let mut out = Vec::new();
        match submodules.into() {
            Submodules::None => {}
            Submodules::All => self.fetch_submodules(url, &mirror, commit, "", None, &mut out)?,
            Submodules::Only(paths) => {
                self.fetch_submodules(url, &mirror, commit, "", Some(&paths), &mut out)?
            }
        }
        Ok(out)
    }

    /// `only`: the paths to take at this level (each with all of its own submodules); an
    /// unknown one is an error listing the submodules there are.
    fn fetch_submodules(
        &self,
        super_url: &str,
        mirror: &Path,
        commit: &str,
        prefix: &str,
        only: Option<&[String]>,
        out: &mut Vec<Submodule>,
    ) -> Result<()> {
        let repo = Repository::open_bare(mirror)
            .with_context(|| format!("failed to open the mirror `{}`", mirror.display()))?;
        let mut links = gitlinks(&repo, parse_commit(commit)?).with_context(|| {
            format!(
                "failed to read the submodules of `{}` at {commit}",
                redact(super_url)
            )
        })?;
        if let Some(only) = only {
            let wanted = |p: &str| only.iter().any(|o| o.trim_end_matches('/') == p);
            if let Some(unknown) = only
                .iter()
                .find(|o| !links.iter().any(|l| l.path == o.trim_end_matches('/')))
            {
                let known: Vec<&str> = links.iter().map(|l| l.path.as_str()).collect();
                return Err(crate::error::failure_hint(
                    format!(
                        "`{unknown}` in `submodules` is not a submodule of `{}` at {commit}",
                        redact(super_url)
                    ),
                    format!(
                        "its submodules are: {}",
                        if known.is_empty() {
                            "(none)".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            links.retain(|l| wanted(&l.path));
        }
        for link in links {
            let url = resolve_url(super_url, &link.url)?;
            let sub_mirror = self
                .ensure_commit(&url, &link.commit, None)
                .with_context(|| {
                    format!(
                        "submodule `{prefix}{}` of `{}`",
                        link.path,
                        redact(super_url)
                    )
                })?;
            let path = format!("{prefix}{}", link.path);
            out.push(Submodule {
                path: path.clone(),
                url: url.clone(),
                commit: link.commit.clone(),
            });
            self.fetch_submodules(
                &url,
                &sub_mirror,
                &link.commit,
                &format!("{path}/"),
                None,
                out,
            )?;
        }
        Ok(())
    }

    /// The selected submodules of `url` at `commit`, recursively, as far as the cache already
    /// knows them: nothing is fetched or written (for `plan`). Unreadable parts are skipped.
    pub fn cached_submodules(
        &self,
        url: &str,
        commit: &str,
        submodules: &Submodules,
    ) -> Vec<Submodule> {
        let mut out = Vec::new();
        let only = match submodules {
            Submodules::None => return out,
            Submodules::All => None,
            Submodules::Only(paths) => Some(paths.as_slice()),
        };
        self.walk_cached(url, commit, "", only, &mut out);
        out
    }

    fn walk_cached(
        &self,
        url: &str,
        commit: &str,
        prefix: &str,
        only: Option<&[String]>,
        out: &mut Vec<Submodule>,
    ) {
        let mirror = self.mirror_path(url);
        let links = mirror
            .join("HEAD")
            .is_file()
            .then(|| Repository::open_bare(&mirror).ok())
            .flatten()
            .and_then(|repo| gitlinks(&repo, parse_commit(commit).ok()?).ok())
            .unwrap_or_default();
        for link in links {
            if only.is_some_and(|o| !o.iter().any(|p| p == &link.path)) {
                continue;
            }
            let Ok(sub_url) = resolve_url(url, &link.url) else {
                continue;
            };
            let path = format!("{prefix}{}", link.path);
            out.push(Submodule {
                path: path.clone(),
                url: sub_url.clone(),
                commit: link.commit.clone(),
            });
            self.walk_cached(&sub_url, &link.commit, &format!("{path}/"), None, out);
        }
    }

    /// Makes `dest` a work tree of `url` at `commit` (fetching into the cache only what it lacks),
    /// with the selected submodules at their recorded commits. An existing `dest` has its
    /// tracked files reset; untracked and ignored files (build outputs) stay.
    pub fn checkout<'t>(
        &self,
        url: &str,
        commit: &str,
        anchor: impl Into<Anchor<'t>>,
        dest: &Path,
        submodules: impl Into<Submodules>,
    ) -> Result<Vec<Submodule>> {
        let subs = self.fetch(url, commit, anchor, submodules)?;
        checkout_tree(&self.mirror_path(url), commit, dest).with_context(|| {
            format!(
                "failed to check out `{}` into `{}`",
                redact(url),
                dest.display()
            )
        })?;
        for s in &subs {
            let sub_dest = dest.join(&s.path);
            checkout_tree(&self.mirror_path(&s.url), &s.commit, &sub_dest).with_context(|| {
                format!(
                    "failed to check out submodule `{}` into `{}`",
                    redact(&s.url),
                    sub_dest.display()
                )
            })?;
        }
        Ok(subs)
    }

    fn fetch_mirror(&self, repo: &Repository, mirror: &Path, url: &str) -> Result<()> {
        let proxy = self.policy.proxy_for(url);
        let transport =
            transport_for(url, proxy).map_err(|(m, h)| crate::error::failure_hint(m, h))?;
        let via = match &transport {
            Transport::Libgit2 { proxy: Some(p) } | Transport::GitCli { proxy: p } => {
                format!(" through the proxy `{}`", redact(p))
            }
            Transport::Libgit2 { proxy: None } => String::new(),
        };
        with_retries(|| match &transport {
            Transport::Libgit2 { proxy } => fetch_libgit2(repo, url, proxy.as_deref()),
            Transport::GitCli { proxy } => fetch_git_cli(mirror, url, proxy),
        })
        .map_err(|e| {
            // git and libgit2 report a 407 as `could not read Username` or `http parser
            // error`: ask the proxy itself whether it takes the credentials.
            let proxy = match &transport {
                Transport::Libgit2 { proxy: Some(p) } | Transport::GitCli { proxy: p } => Some(p),
                Transport::Libgit2 { proxy: None } => None,
            };
            if let Some(p) = proxy.filter(|p| plain_proxy::refuses_credentials(p, url)) {
                let (what, hint) = if p.contains('@') {
                    (
                        "refused the credentials",
                        "check the user and password in the proxy URL",
                    )
                } else {
                    (
                        "requires credentials",
                        "put them in the proxy URL (http://user:password@host:port)",
                    )
                };
                return crate::error::failure_hint(
                    format!(
                        "failed to fetch `{}`{via}: the proxy {what} (407)",
                        redact(url)
                    ),
                    format!("{hint} (--proxy, [network] proxy or https_proxy)"),
                );
            }
            let hint = crate::error::hints(&e)
                .into_iter()
                .next()
                .unwrap_or_else(|| NETWORK_HINT.to_string());
            crate::error::failure_hint(
                format!("failed to fetch `{}`{via}: {e:#}", redact(url)),
                hint,
            )
        })
    }
}

/// `<host-and-path>-<16 hex of sha256(key)>.git`: readable, and unique per repository, where
/// the key ([`repo_key`]) makes `X`, `X.git` and the host in any case one repository.
fn mirror_name(url: &str) -> String {
    let key = repo_key(url);
    let url = key.as_str();
    let no_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let no_user = no_scheme
        .rsplit_once('@')
        .map_or(no_scheme, |(_, rest)| rest);
    let readable: String = no_user
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let readable = readable.trim_matches(|c| c == '-' || c == '.');
    let tail: String = readable
        .chars()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let hash = hex::encode(Sha256::digest(url.as_bytes()));
    format!(
        "{}-{}.git",
        tail.trim_start_matches(['-', '.']),
        &hash[..16]
    )
}

fn parse_commit(commit: &str) -> Result<Oid> {
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{commit}` is not a full commit id (40 hex digits)");
    }
    Oid::from_str(commit).with_context(|| format!("`{commit}` is not a commit id"))
}

fn open_or_init_mirror(mirror: &Path) -> Result<Repository> {
    if mirror.join("HEAD").exists() {
        return Repository::open_bare(mirror)
            .with_context(|| format!("failed to open the git mirror `{}`", mirror.display()));
    }
    Repository::init_bare(mirror)
        .with_context(|| format!("failed to create the git mirror `{}`", mirror.display()))
}

fn check_pin(repo: &Repository, oid: Oid, anchor: Anchor) -> Result<Pin> {
    if repo.find_commit(oid).is_err() {
        return Ok(Pin::NoCommit);
    }
    let tag = match anchor {
        Anchor::None => return Ok(Pin::Ok),
        Anchor::Branch(branch) => return check_branch(repo, oid, branch),
        Anchor::Tag(tag) => tag,
    };
    let Ok(reference) = repo.find_reference(&format!("refs/tags/{tag}")) else {
        return Ok(Pin::NoTag);
    };
    let at = reference
        .peel_to_commit()
        .with_context(|| format!("tag `{tag}` does not point at a commit"))?
        .id();
    Ok(if at == oid { Pin::Ok } else { Pin::TagAt(at) })
}

/// A branch pin holds when the commit is the branch's head or one of its ancestors: the branch
/// may move on, but the pinned commit must stay on it.
fn check_branch(repo: &Repository, oid: Oid, branch: &str) -> Result<Pin> {
    let Ok(reference) = repo.find_reference(&format!("refs/heads/{branch}")) else {
        return Ok(Pin::NoBranch);
    };
    let head = reference
        .peel_to_commit()
        .with_context(|| format!("branch `{branch}` does not point at a commit"))?
        .id();
    if head == oid || repo.graph_descendant_of(head, oid)? {
        Ok(Pin::Ok)
    } else {
        Ok(Pin::NotOnBranch(head))
    }
}

fn pin_error(pin: Pin, url: &str, commit: &str, anchor: Anchor) -> anyhow::Error {
    let url = redact(url);
    let (tag, branch) = match anchor {
        Anchor::Tag(t) => (t, ""),
        Anchor::Branch(b) => ("", b),
        Anchor::None => ("", ""),
    };
    let (message, hint) = match pin {
        Pin::NotOnBranch(head) => (
            format!(
                "commit {commit} is not on branch `{branch}` of `{url}` (the branch head is {head})\n\
                 \x20 branch: {branch}\n  commit: {commit}\n    head: {head}"
            ),
            format!(
                "the recipe pins a commit that the branch does not contain; pin a commit of \
                 `{branch}` (`git log {branch}`), or name the branch that holds it"
            ),
        ),
        Pin::NoBranch => (
            format!("branch `{branch}` is not in `{url}` (the recipe pins {commit} on it)"),
            format!("check the branch's spelling (`git ls-remote --heads {url}`)"),
        ),
        Pin::TagAt(actual) => (
            format!(
                "tag `{tag}` of `{url}` points at {actual}, but the recipe pins {commit}\n\
                 expected: {commit}\n  actual: {actual}"
            ),
            "the tag moved or the recipe is wrong; check the upstream release and update \
             `commit` (or `tag`) in the recipe. jetforge never builds a commit the recipe did not pin"
                .to_string(),
        ),
        Pin::NoTag => (
            format!("tag `{tag}` is not in `{url}` (the recipe pins it at {commit})"),
            "check the tag's spelling, or drop `tag` and keep only `commit`".to_string(),
        ),
        Pin::NoCommit => (
            format!("commit {commit} is not in `{url}` after fetching all its branches and tags"),
            format!(
                "the commit may have been force-pushed away or belong to another repository; \
                 pin a commit reachable from a branch or tag (`git ls-remote {url}`)"
            ),
        ),
        Pin::Ok => return anyhow!("internal error: pin reported as an error for {commit}"),
    };
    crate::error::failure_hint(message, hint)
}

/// libgit2 connects plain `http://` remotes directly even when given a proxy, so those go to the
/// `git` command instead; ssh and `git://` cannot use an HTTP proxy at all. A configured proxy is
/// never silently skipped. Local remotes never use one.
/// The error is a message and its hint.
fn transport_for(url: &str, proxy: Option<String>) -> Result<Transport, (String, &'static str)> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let Some(proxy) = proxy else {
        return Ok(Transport::Libgit2 { proxy: None });
    };
    match scheme.as_deref() {
        None if !is_scp_like(url) => Ok(Transport::Libgit2 { proxy: None }),
        Some("file") => Ok(Transport::Libgit2 { proxy: None }),
        Some("https") => Ok(Transport::Libgit2 { proxy: Some(proxy) }),
        Some("http") => Ok(Transport::GitCli { proxy }),
        _ => Err((
            format!(
                "`{}` cannot go through the proxy `{}`: only http(s) git URLs can",
                redact(url),
                redact(&proxy)
            ),
            "use the https:// URL of the repository, or a [mirrors] entry that rewrites it",
        )),
    }
}

/// A remote on this machine (`file://` or a path): fetching it needs no network.
fn is_local(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("file"),
        None => !is_scp_like(url),
    }
}

/// `git@host:org/repo`: ssh in scp syntax (a `:` before any `/`).
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(c), Some(s)) => c < s,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Network errors are retried with backoff; anything else (a bad URL, a missing local repo) is
/// not, since retrying cannot help.
fn with_retries(mut f: impl FnMut() -> Result<(), (bool, anyhow::Error)>) -> Result<()> {
    crate::net::retry(TRIES, Duration::from_secs(1), &mut f, |(transient, _)| {
        *transient
    })
    .map_err(|((_, e), attempt)| e.context(format!("gave up after {attempt} attempt(s)")))
}

fn fetch_libgit2(
    repo: &Repository,
    url: &str,
    proxy: Option<&str>,
) -> Result<(), (bool, anyhow::Error)> {
    let mut options = FetchOptions::new();
    // The refspecs below bring every tag; automatic tag following would only add traffic.
    options.download_tags(AutotagOption::None);
    if let Some(p) = proxy {
        let mut po = ProxyOptions::new();
        po.url(p);
        options.proxy_options(po);
    }
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| (false, anyhow!(redact(&e.to_string()))))?;
    remote
        .fetch(&REFSPECS, Some(&mut options), None)
        .map_err(|e| {
            let transient = matches!(
                e.class(),
                ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssl
            );
            (transient, anyhow!(redact(e.message())))
        })
}

/// The `git` command fetches through a proxy where libgit2 cannot (plain http).
fn fetch_git_cli(mirror: &Path, url: &str, proxy: &str) -> Result<(), (bool, anyhow::Error)> {
    let git = which::which("git").map_err(|_| {
        let msg = format!(
            "`{}` is a plain http:// URL and must go through the proxy `{}`: libgit2 cannot do \
             that and the `git` command is not installed",
            redact(url),
            redact(proxy)
        );
        let hint = "install git, or use the https:// URL of the repository";
        (false, crate::error::failure_hint(msg, hint))
    })?;
    let output = Command::new(git)
        .arg("--git-dir")
        .arg(mirror)
        .args(["fetch", "--quiet", "--no-tags", url])
        .args(REFSPECS)
        // Config through the environment keeps the proxy's password out of `ps`. gc stays off:
        // work trees borrow the mirror's objects, and a gc could drop ones they still need.
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "http.proxy")
        .env("GIT_CONFIG_VALUE_0", proxy)
        .env("GIT_CONFIG_KEY_1", "gc.auto")
        .env("GIT_CONFIG_VALUE_1", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| (false, anyhow!("failed to run `git fetch`: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err((
        true,
        anyhow!(
            "`git fetch` failed ({}): {}",
            output.status,
            redact(stderr.trim())
        ),
    ))
}

/// A gitlink (a submodule entry in a tree) with its URL from `.gitmodules`, as written there.
#[derive(Debug)]
struct Gitlink {
    path: String,
    url: String,
    commit: String,
}

fn gitlinks(repo: &Repository, commit: Oid) -> Result<Vec<Gitlink>> {
    let tree = repo.find_commit(commit)?.tree()?;
    let mut links = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() == Some(ObjectType::Commit) {
            links.push((
                format!("{root}{}", entry.name().unwrap_or_default()),
                entry.id(),
            ));
        }
        TreeWalkResult::Ok
    })?;
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let modules = read_gitmodules(repo, &tree)?;
    links
        .into_iter()
        .map(|(path, id)| {
            let url = modules
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, u)| u.clone())
                .ok_or_else(|| anyhow!("submodule `{path}` has no url in `.gitmodules`"))?;
            Ok(Gitlink {
                path,
                url,
                commit: id.to_string(),
            })
        })
        .collect()
}

/// (path, url) of every submodule in the tree's `.gitmodules`, parsed by libgit2's config reader.
fn read_gitmodules(repo: &Repository, tree: &git2::Tree) -> Result<Vec<(String, String)>> {
    let entry = tree
        .get_name(".gitmodules")
        .context("the tree has submodules but no `.gitmodules`")?;
    let blob = repo.find_blob(entry.id())?;
    // git2 parses config only from files, so the blob goes through a temp file.
    let tmp = tempfile::NamedTempFile::new().context("failed to create a temp file")?;
    std::fs::write(tmp.path(), blob.content()).context("failed to write a temp file")?;
    let config = git2::Config::open(tmp.path()).context("failed to parse `.gitmodules`")?;
    let mut out = Vec::new();
    let mut entries = config.entries(Some(r"submodule\..*\.path"))?;
    while let Some(e) = entries.next() {
        let e = e?;
        let (Ok(key), Ok(path)) = (e.name(), e.value()) else {
            continue;
        };
        let name = &key["submodule.".len()..key.len() - ".path".len()];
        let url = config
            .get_string(&format!("submodule.{name}.url"))
            .with_context(|| format!("submodule `{name}` in `.gitmodules` has no url"))?;
        out.push((path.trim_end_matches('/').to_string(), url));
    }
    Ok(out)
}

/// Resolves a submodule URL as git does: `./x` and `../x` are relative to the superproject's
/// URL (the one the recipe names, never a mirror path), anything else is absolute.
pub fn resolve_url(base: &str, url: &str) -> Result<String> {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return Ok(url.to_string());
    }
    let mut base = base.trim_end_matches('/').to_string();
    let mut sep = '/';
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            let cut = base
                .rfind(['/', ':'])
                .filter(|&i| !base[..i].ends_with('/') && !base[..=i].ends_with("://"))
                .ok_or_else(|| anyhow!("submodule url `{url}` climbs above `{}`", redact(&base)))?;
            sep = if base[cut..].starts_with(':') {
                ':'
            } else {
                '/'
            };
            base.truncate(cut);
            rest = r;
        } else {
            break;
        }
    }
    Ok(format!("{base}{sep}{rest}"))
}

/// Makes `dest` a repository that borrows the mirror's objects and has `commit` checked out
/// (detached), tracked files forced to it, untracked files left alone.
fn checkout_tree(mirror: &Path, commit: &str, dest: &Path) -> Result<()> {
    let git_dir = dest.join(".git");
    if !git_dir.is_dir() {
        std::fs::create_dir_all(dest)
            .with_context(|| format!("failed to create `{}`", dest.display()))?;
        Repository::init(dest)
            .with_context(|| format!("failed to init a repository in `{}`", dest.display()))?;
    }
    let alternates = git_dir.join("objects/info/alternates");
    let line = format!("{}\n", mirror.join("objects").display());
    if std::fs::read_to_string(&alternates).ok().as_deref() != Some(line.as_str()) {
        std::fs::write(&alternates, &line)
            .with_context(|| format!("failed to write `{}`", alternates.display()))?;
    }
    let repo =
        Repository::open(dest).with_context(|| format!("failed to open `{}`", dest.display()))?;
    let oid = parse_commit(commit)?;
    let object = repo
        .find_object(oid, Some(ObjectType::Commit))
        .with_context(|| {
            format!(
                "commit {commit} is not in the mirror `{}`",
                mirror.display()
            )
        })?;
    repo.set_head_detached(oid)?;
    let mut force = CheckoutBuilder::new();
    force.force();
    repo.reset(&object, ResetType::Hard, Some(&mut force))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_submodule_urls_resolve_against_the_superproject_url() {
        let r = |b, u| resolve_url(b, u).unwrap();
        assert_eq!(
            r("https://h/org/super.git", "../sub.git"),
            "https://h/org/sub.git"
        );
        assert_eq!(r("https://h/org/super/", "../sub"), "https://h/org/sub");
        assert_eq!(r("https://h/org/super", "./sub"), "https://h/org/super/sub");
        assert_eq!(r("https://h/a/b/super", "../../x/sub"), "https://h/a/x/sub");
        assert_eq!(r("/srv/git/super.git", "../sub.git"), "/srv/git/sub.git");
        assert_eq!(
            r("file:///srv/super.git", "../sub.git"),
            "file:///srv/sub.git"
        );
        assert_eq!(
            r("git@github.com:org/super", "../sub"),
            "git@github.com:org/sub"
        );
        assert_eq!(
            r("https://h/org/super", "https://other/x"),
            "https://other/x"
        );
        assert!(resolve_url("https://h/super", "../../x").is_err());
    }

    #[test]
    fn mirror_names_are_readable_unique_and_free_of_credentials() {
        let a = mirror_name("https://github.com/NVIDIA/cutlass.git");
        assert!(a.starts_with("github.com-nvidia-cutlass-"), "{a}");
        assert!(a.ends_with(".git"));
        assert_ne!(a, mirror_name("https://github.com/NVIDIA/cutlass-extra"));
        let b = mirror_name("https://user:secret@host/x.git");
        assert!(!b.contains("secret") && b.starts_with("host-x-"), "{b}");
    }

    /// One bare mirror per repository, however its URL is spelled.
    #[test]
    fn x_and_x_git_share_one_mirror() {
        let a = mirror_name("https://github.com/NVIDIA/cutlass");
        for u in [
            "https://github.com/NVIDIA/cutlass.git",
            "https://github.com/nvidia/cutlass.git",
            "https://GITHUB.com/NVIDIA/cutlass/",
        ] {
            assert_eq!(mirror_name(u), a, "{u}");
        }
    }

    #[test]
    fn proxies_are_applied_or_refused_never_skipped() {
        let p = || Some("http://u:pw@proxy:3128".to_string());
        assert_eq!(
            transport_for("https://h/x", p()),
            Ok(Transport::Libgit2 { proxy: p() })
        );
        assert_eq!(
            transport_for("http://h/x", p()),
            Ok(Transport::GitCli {
                proxy: p().unwrap()
            })
        );
        assert_eq!(
            transport_for("/srv/x.git", p()),
            Ok(Transport::Libgit2 { proxy: None })
        );
        assert_eq!(
            transport_for("file:///srv/x", p()),
            Ok(Transport::Libgit2 { proxy: None })
        );
        assert_eq!(
            transport_for("http://h/x", None),
            Ok(Transport::Libgit2 { proxy: None })
        );
        let (err, _) = transport_for("git@h:org/x", p()).unwrap_err();
        assert!(
            err.contains("cannot go through the proxy `http://u:****@proxy:3128`"),
            "{err}"
        );
        assert!(transport_for("ssh://h/x", p()).is_err());
    }

    #[test]
    fn only_file_urls_and_paths_are_local() {
        assert!(is_local("file:///srv/mirrors/x.git"));
        assert!(is_local("/srv/mirrors/x.git"));
        assert!(!is_local("https://github.com/x/y"));
        assert!(!is_local("http://h/x"));
        assert!(!is_local("git@github.com:x/y"));
        assert!(!is_local("ssh://h/x"));
    }

    #[test]
    fn short_commits_are_refused() {
        assert!(parse_commit("abc123").is_err());
        assert!(parse_commit(&"a".repeat(40)).is_ok());
    }
}
