//! Sources for a real offline build, through the real CLI against lighttpd (git smart HTTP and
//! files on 127.0.0.1): branch-pinned sources, selected submodules, `[mirrors]` keys and `.git`,
//! resources trusted on first use, and the proof that `build --offline` after `fetch` works in a
//! network namespace without any network (`unshare -n`) while a build step clones a declared
//! repository and uses a declared resource.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::fixtures::python;
use crate::support::{have_tools, Lighttpd};
use crate::util::{git, jetforge_process, stderr, stdout};

/// A work repo under `work/<name>`, published to `root/git/<name>.git` (served at `/git/`).
struct Repo {
    dir: PathBuf,
}

impl Repo {
    fn new(work: &Path, name: &str) -> Repo {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q"]);
        Repo { dir }
    }

    fn commit(&self, files: &[(&str, &str)], msg: &str) -> String {
        for (f, content) in files {
            let p = self.dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            git(&self.dir, &["add", f]);
        }
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    /// Records `commit` as submodule `path` with `url` in the next commit.
    fn gitlink(&self, path: &str, url: &str, commit: &str) {
        let gm = self.dir.join(".gitmodules");
        let mut text = std::fs::read_to_string(&gm).unwrap_or_default();
        text.push_str(&format!(
            "[submodule \"{path}\"]\n\tpath = {path}\n\turl = {url}\n"
        ));
        std::fs::write(&gm, text).unwrap();
        git(&self.dir, &["add", ".gitmodules"]);
        let info = format!("160000,{commit},{path}");
        git(&self.dir, &["update-index", "--add", "--cacheinfo", &info]);
    }

    fn publish(&self, root: &Path) {
        let name = self.dir.file_name().unwrap().to_str().unwrap();
        let bare = root.join("git").join(format!("{name}.git"));
        git(
            self.dir.parent().unwrap(),
            &["clone", "-q", "--bare", name, bare.to_str().unwrap()],
        );
    }
}

/// Recipes, work dir and cache in one temp dir; a server root with `git/` and `files/`.
struct Site {
    dir: TempDir,
    cache: PathBuf,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        Site { dir, cache }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn recipe(&self, name: &str, text: &str) {
        self.write(&format!("recipes/{name}.toml"), text);
    }

    /// The command line of a jetforge run (to be wrapped, e.g. by `unshare -n`).
    fn cmd_in(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let bin = jetforge_process().get_program().to_owned();
        let mut c = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        c.arg("--recipes")
            .arg(self.path("recipes"))
            .arg("--work-dir")
            .arg(self.path("work"))
            .args(["--target", "host", "--no-progress"])
            .args(args)
            .env("JETFORGE_CACHE_DIR", &self.cache)
            .env("JETFORGE_CONFIG", "")
            .env("NO_COLOR", "1")
            .env_remove("PIP_FIND_LINKS")
            .env_remove("GIT_CONFIG_COUNT");
        for v in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "MAX_JOBS",
        ] {
            c.env_remove(v);
        }
        c
    }

    fn jf(&self, args: &[&str]) -> Output {
        self.cmd_in(&[], args).output().unwrap()
    }

    /// The one `<set>-<target>` directory of the work dir.
    fn set_dir(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(self.path("work"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("src").is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }
}

fn text(o: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", stdout(o), stderr(o))
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "expected success:\n{}", text(o));
}

#[track_caller]
fn assert_fails(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1:\n{}", text(o));
    stderr(o)
}

#[track_caller]
fn assert_has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "missing {n:?} in:\n{haystack}");
    }
}

fn source_recipe(name: &str, source: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\n[source]\n{source}\n[output]\nkind = \"source\"\n"
    )
}

/// triton 2.3.1 has no tag: the set pins the head of `release/2.3.x`. A commit on the branch is
/// accepted; one that is not on it is refused with the branch, the commit and the head.
#[test]
fn branch_pins_accept_a_commit_on_the_branch_and_refuse_one_off_it() {
    if !have_tools("branch_pins", &["git", "lighttpd"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let r = Repo::new(work.path(), "triton");
    let base = r.commit(&[("setup.py", "v1\n")], "base");
    git(&r.dir, &["checkout", "-q", "-b", "release/2.3.x"]);
    let on_branch = r.commit(&[("setup.py", "2.3.1\n")], "version: 2.3.1");
    let head = r.commit(&[("setup.py", "2.3.2\n")], "later on the branch");
    git(&r.dir, &["checkout", "-q", "main"]);
    let off_branch = r.commit(&[("setup.py", "main\n")], "main only");
    r.publish(root.path());
    let web = Lighttpd::start(root.path(), None);
    let url = web.url("/git/triton.git");
    let site = Site::new();
    let pinned = |commit: &str| {
        source_recipe(
            "triton",
            &format!("git = \"{url}\"\nbranch = \"release/2.3.x\"\ncommit = \"{commit}\""),
        )
    };

    site.recipe("triton", &pinned(&on_branch));
    assert_ok(&site.jf(&["fetch"]));
    let short = &on_branch[..8];
    let list = site.jf(&["list"]);
    assert_ok(&list);
    assert_has(&stdout(&list), &[&format!("(release/2.3.x @ {short})")]);
    let plan = site.jf(&["plan"]);
    assert_ok(&plan);
    assert_has(
        &stdout(&plan),
        &[&format!(
            "{url} release/2.3.x @ {short} (commit {on_branch})"
        )],
    );
    // An older commit of the branch is on it too.
    let _ = base;

    site.recipe("triton", &pinned(&off_branch));
    let err = assert_fails(&site.jf(&["fetch"]));
    assert_has(
        &err,
        &[
            "triton (",
            "triton.toml",
            &format!("commit {off_branch} is not on branch `release/2.3.x` of `{url}`"),
            "branch: release/2.3.x",
            &format!("commit: {off_branch}"),
            &format!("head: {head}"),
        ],
    );
}

/// vllm-flash-attn's ROCm submodule must not be needed by a CUDA build: only the listed
/// submodules are fetched (here the unlisted one's repository does not even exist on the
/// server), recursively, and only their commits enter the prepared tree's record.
#[test]
fn only_the_listed_submodules_are_fetched_recursively() {
    if !have_tools("submodule_selection", &["git", "lighttpd"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let nested = Repo::new(work.path(), "nested");
    let nested_commit = nested.commit(&[("n.txt", "nested\n")], "n");
    nested.publish(root.path());
    let cutlass = Repo::new(work.path(), "cutlass");
    cutlass.commit(&[("include/cutlass.h", "// cutlass\n")], "c1");
    cutlass.gitlink("tools/nested", "../nested.git", &nested_commit);
    let cutlass_commit = cutlass.commit(&[], "c2");
    cutlass.publish(root.path());
    // `ck` is never published: fetching it would fail.
    let ck = Repo::new(work.path(), "ck");
    let ck_commit = ck.commit(&[("ck.h", "rocm\n")], "ck");
    let fa = Repo::new(work.path(), "flash");
    fa.commit(&[("setup.py", "fa\n")], "f1");
    fa.gitlink("csrc/cutlass", "../cutlass.git", &cutlass_commit);
    fa.gitlink("csrc/composable_kernel", "../ck.git", &ck_commit);
    let fa_commit = fa.commit(&[], "f2");
    fa.publish(root.path());
    let web = Lighttpd::start(root.path(), None);
    let url = web.url("/git/flash.git");
    let site = Site::new();
    let recipe = |subs: &str| {
        source_recipe(
            "flash",
            &format!("git = \"{url}\"\ncommit = \"{fa_commit}\"\nsubmodules = {subs}"),
        )
    };

    site.recipe("flash", &recipe("true"));
    let err = assert_fails(&site.jf(&["fetch"]));
    assert_has(&err, &["csrc/composable_kernel"]);

    site.recipe("flash", &recipe("[\"csrc/cutlass\"]"));
    let o = site.jf(&["prepare"]);
    assert_ok(&o);
    assert_has(&stdout(&o), &["(2 submodules)"]);
    let src = site.set_dir().join("src");
    let tree = src.join("flash");
    assert_eq!(
        std::fs::read_to_string(tree.join("csrc/cutlass/include/cutlass.h")).unwrap(),
        "// cutlass\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("csrc/cutlass/tools/nested/n.txt")).unwrap(),
        "nested\n"
    );
    assert!(!tree.join("csrc/composable_kernel/ck.h").exists());
    // The prepared record (what the fingerprint takes the submodule commits from).
    let marker: Value =
        serde_json::from_slice(&std::fs::read(src.join("flash.prepared.json")).unwrap()).unwrap();
    let recorded: Vec<(&str, &str)> = marker["submodules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["commit"].as_str().unwrap()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("csrc/cutlass", cutlass_commit.as_str()),
            ("csrc/cutlass/tools/nested", nested_commit.as_str())
        ]
    );
    let plan = site.jf(&["plan"]);
    assert_has(&stdout(&plan), &["+ submodules csrc/cutlass"]);

    site.recipe("flash", &recipe("[\"csrc/cutlas\"]"));
    let err = assert_fails(&site.jf(&["fetch"]));
    assert_has(
        &err,
        &[
            "flash (",
            "flash.toml",
            "`csrc/cutlas` in `submodules` is not a submodule of",
            "its submodules are: csrc/composable_kernel, csrc/cutlass",
        ],
    );
}

/// vLLM 0.5.3's `.gitmodules` writes `https://github.com/nvidia/cutlass.git`; a `[mirrors]` key
/// `https://github.com/NVIDIA/cutlass` must serve it from the mirror itself (not
/// `<mirror>.git`), and `X` and `X.git` share one bare mirror in the cache.
#[test]
fn a_mirror_key_without_dot_git_serves_the_dot_git_url_from_one_mirror() {
    if !have_tools("mirrors_dot_git", &["git", "lighttpd"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let cutlass = Repo::new(work.path(), "cutlass");
    let cutlass_commit = cutlass.commit(&[("cutlass.h", "// c\n")], "c");
    cutlass.publish(root.path());
    let vllm = Repo::new(work.path(), "vllm");
    vllm.commit(&[("setup.py", "vllm\n")], "v1");
    vllm.gitlink(
        "csrc/cutlass",
        "https://github.com/nvidia/cutlass.git",
        &cutlass_commit,
    );
    let vllm_commit = vllm.commit(&[], "v2");
    vllm.publish(root.path());
    let web = Lighttpd::start(root.path(), None);
    let site = Site::new();
    std::fs::create_dir_all(site.path("work")).unwrap();
    site.write(
        "work/jetforge.toml",
        &format!(
            "[mirrors]\n\"https://github.com/NVIDIA/cutlass\" = \"{}\"\n\"https://github.com/vllm-project/vllm\" = \"{}\"\n",
            web.url("/git/cutlass.git"),
            web.url("/git/vllm.git")
        ),
    );
    site.recipe(
        "vllm",
        &source_recipe(
            "vllm",
            &format!(
                "git = \"https://github.com/vllm-project/vllm\"\ncommit = \"{vllm_commit}\"\nsubmodules = true"
            ),
        ),
    );
    site.recipe(
        "cutlass",
        &source_recipe(
            "cutlass",
            &format!("git = \"https://github.com/NVIDIA/cutlass\"\ncommit = \"{cutlass_commit}\""),
        ),
    );
    let o = site.jf(&["prepare"]);
    assert_ok(&o);
    let tree = site.set_dir().join("src/vllm");
    assert_eq!(
        std::fs::read_to_string(tree.join("csrc/cutlass/cutlass.h")).unwrap(),
        "// c\n"
    );
    let mirrors: Vec<String> = std::fs::read_dir(site.cache.join("git-v1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("cutlass") && !n.ends_with(".lock"))
        .collect();
    assert_eq!(mirrors.len(), 1, "one mirror for X and X.git: {mirrors:?}");
}

/// triton's LLVM tarball has no digest known in advance: the first fetch records it, later
/// fetches must get the same bytes, and `check` says which resources are trusted that way.
#[test]
fn a_first_use_resource_is_recorded_then_held_to_its_digest() {
    if !have_tools("first_use", &["lighttpd"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("files")).unwrap();
    std::fs::write(root.path().join("files/llvm.tar"), "first bytes\n").unwrap();
    let web = Lighttpd::start(root.path(), None);
    let url = web.url("/files/llvm.tar");
    let site = Site::new();
    site.write("src/llvm/README", "local\n");
    site.recipe(
        "llvm",
        &source_recipe(
            "llvm",
            &format!(
                "path = \"../src/llvm\"\n[[resource]]\nname = \"llvm\"\nurl = \"{url}\"\ntrust = \"first-use\"\nenv = \"LLVM_SYSPATH\""
            ),
        ),
    );
    let check = site.jf(&["check"]);
    assert_ok(&check);
    assert_has(
        &stdout(&check),
        &[
            "note: set `recipes`: resource `llvm` of `llvm`",
            "is trusted on first use",
        ],
    );
    let plan = site.jf(&["plan"]);
    assert_has(&stdout(&plan), &["(trusted on first use, not fetched yet)"]);

    assert_ok(&site.jf(&["fetch"]));
    let first = jetforge_sha256(b"first bytes\n");
    let lock_file = site.cache.join("resources-v1/first-use-lock.json");
    let lock: Value = serde_json::from_slice(&std::fs::read(&lock_file).unwrap()).unwrap();
    assert_eq!(lock["format"], 1);
    assert_eq!(lock["resources"][&url]["sha256"], first.as_str());
    let plan = site.jf(&["plan"]);
    assert_has(
        &stdout(&plan),
        &[&format!(
            "(sha256 {}…, recorded on first use)",
            &first[..12]
        )],
    );
    let env = site.jf(&["env", "llvm"]);
    assert_has(
        &stdout(&env),
        &[&format!(
            "LLVM_SYSPATH={}",
            site.cache
                .join("resources-v1")
                .join(&first)
                .join("llvm.tar")
                .display()
        )],
    );

    // Upstream changed the file; the cached copy is gone (e.g. a fresh machine with the lock).
    std::fs::write(root.path().join("files/llvm.tar"), "other bytes\n").unwrap();
    std::fs::remove_dir_all(site.cache.join("resources-v1").join(&first)).unwrap();
    let err = assert_fails(&site.jf(&["fetch"]));
    let second = jetforge_sha256(b"other bytes\n");
    assert_has(
        &err,
        &[
            &format!("resource `llvm` from {url} no longer matches the digest recorded"),
            &format!("expected sha256: {first}"),
            &format!("actual sha256:   {second}"),
            "first-use-lock.json",
            "delete its entry from that file",
        ],
    );
}

fn jetforge_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// `unshare -n true` works (root, or user namespaces allowed). Under CI it must.
fn can_unshare_network(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("{test}: `unshare -n` is not permitted here (run as root)");
        if std::env::var_os(jetforge::envvars::CI).is_some() {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!!!! SKIPPED {msg} !!!!!!!!!!\n");
    }
    ok
}

/// The proof of "offline after `fetch`": a build step that runs `git clone <server URL>` of a
/// declared `[[repository]]` and reads a declared resource succeeds with `build --offline` in a
/// network namespace with no network at all; without `fetch`, the same build fails listing
/// what is missing.
#[test]
fn build_offline_in_a_network_namespace_clones_and_downloads_only_from_the_cache() {
    if !have_tools("offline_proof", &["git", "lighttpd", "unshare"])
        || !can_unshare_network("offline_proof")
    {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let nccl = Repo::new(work.path(), "nccl");
    nccl.commit(&[("VERSION", "old\n")], "n1");
    let nccl_commit = nccl.commit(&[("VERSION", "2.27.5\n")], "n2");
    git(&nccl.dir, &["tag", "v2.27.5-1", &nccl_commit]);
    nccl.publish(root.path());
    std::fs::create_dir_all(root.path().join("files")).unwrap();
    std::fs::write(root.path().join("files/tool.txt"), "prebuilt tool\n").unwrap();
    let web = Lighttpd::start(root.path(), None);
    let nccl_url = web.url("/git/nccl.git");
    let tool_url = web.url("/files/tool.txt");

    let site = Site::new();
    site.write(
        "src/proof/setup.py",
        "from setuptools import setup\nsetup(name='proof', version='1.0.0', py_modules=['proof'])\n",
    );
    site.write("src/proof/proof.py", "");
    // The clone asks for the URL with `.git` stripped, as upstream build scripts often do.
    let clone_url = nccl_url.trim_end_matches(".git");
    site.recipe(
        "proof",
        &format!(
            r#"[package]
name = "proof"
version = "1.0.0"
[source]
path = "../src/proof"
[[repository]]
git = "{nccl_url}"
tag = "v2.27.5-1"
commit = "{nccl_commit}"
why = "the build clones NCCL itself"
[[resource]]
name = "tool"
url = "{tool_url}"
trust = "first-use"
env = "PROOF_TOOL"
[build]
steps = [
  "rm -rf ${{{{ work_dir }}}}/nccl && git clone -q --depth 1 --branch v2.27.5-1 {clone_url} ${{{{ work_dir }}}}/nccl",
  "printf 'NCCL = %s\nTOOL = %s\n' \"$(cat ${{{{ work_dir }}}}/nccl/VERSION)\" \"$(cat \"$PROOF_TOOL\")\" > proof.py",
  "python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{{{ out }}}} .",
]
"#
        ),
    );
    let build_args = [
        "build",
        "--offline",
        "--python",
        &python(),
        "--system-site-packages",
    ];
    let offline = ["unshare", "-n"];

    // Without fetch: nothing to clone from, nothing downloaded; both are named.
    let o = site.cmd_in(&offline, &build_args).output().unwrap();
    let err = assert_fails(&o);
    assert_has(
        &err,
        &[
            "offline: 2 item(s) missing from the caches",
            &format!("proof: git {nccl_url} at {nccl_commit}"),
            &format!("proof: resource `tool` {tool_url}"),
            "run `jetforge fetch`",
        ],
    );

    assert_ok(&site.jf(&["fetch"]));
    drop(web);
    let plan = site.jf(&["plan", "--offline"]);
    assert_ok(&plan);
    assert_has(
        &stdout(&plan),
        &["Git: build steps clone 1 repository from the mirror cache"],
    );
    // The caller's own git config through the environment is kept, ahead of the redirects.
    let user_git = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "advice.detachedHead"),
        ("GIT_CONFIG_VALUE_0", "false"),
    ];
    let env = site
        .cmd_in(&[], &["env", "proof"])
        .envs(user_git)
        .output()
        .unwrap();
    assert_has(
        &stdout(&env),
        &[
            "# build steps clone 1 repository from the mirror cache",
            "GIT_CONFIG_COUNT=4",
            "GIT_CONFIG_KEY_0=advice.detachedHead",
            "GIT_CONFIG_KEY_1=protocol.file.allow",
            &format!("GIT_CONFIG_VALUE_2={}", nccl_url),
            &format!("GIT_CONFIG_VALUE_3={}", clone_url),
        ],
    );

    let o = site
        .cmd_in(&offline, &build_args)
        .envs(user_git)
        .output()
        .unwrap();
    assert_ok(&o);
    let built = std::fs::read_to_string(site.set_dir().join("src/proof/proof.py")).unwrap();
    assert_eq!(built, "NCCL = 2.27.5\nTOOL = prebuilt tool\n");
}

/// The new keys are checked when the recipe loads, each error pointing at its line.
#[test]
fn submodule_lists_first_use_and_repositories_are_checked_at_load() {
    let recipe = r#"[package]
name = "bad"
version = "1.0.0"
[source]
git = "https://example.invalid/bad.git"
commit = "0123456789abcdef0123456789abcdef01234567"
submodules = ["../outside"]
[[resource]]
name = "nodigest"
url = "https://example.invalid/a.tar"
[[resource]]
name = "both"
url = "https://example.invalid/b.tar"
sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
trust = "first-use"
[[resource]]
name = "unknown"
url = "https://example.invalid/c.tar"
trust = "always"
[[repository]]
git = "https://example.invalid/nccl"
tag = "v1"
[output]
kind = "source"
"#;
    let dir = crate::util::tree(&[("recipes/bad.toml", recipe)]);
    let out = crate::util::check_recipes(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_has(
        &stderr(&out),
        &[
            "bad.toml:7:",
            "submodule path `../outside` is not a relative path",
            "bad.toml:9:",
            "resource `nodigest` has no `sha256`",
            "`trust = \"first-use\"`",
            "bad.toml:15:",
            "a resource has either `sha256` or `trust`, not both",
            "bad.toml:19:",
            "unknown trust `always`",
            "bad.toml:21:",
            "a [[repository]] needs a pinned `commit`",
        ],
    );
}
