//! Git sources and patches through the library API, against fixture repositories that the tests
//! build with the `git` command (file:// and bare-path remotes; no network).

use std::path::{Path, PathBuf};

use crate::util::git;
use jetforge::net::Direct;
use jetforge::recipe::template::{Template, Vars};
use jetforge::recipe::{Edit, JobsPolicy, OutputKind, Patch, Recipe, Source};
use jetforge::source::git::{MirrorCache, Missing};
use jetforge::source::prepare::{is_prepared, prepare, prepare_all, PrepareJob};

static ONLINE: Direct = Direct { offline: false };

/// Work repos under `work/`, published as bare repos under `remotes/<name>.git`.
struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }
    fn work(&self, name: &str) -> PathBuf {
        let dir = self.path("work").join(name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            git(&dir, &["init", "-q"]);
        }
        dir
    }
    fn commit(&self, name: &str, files: &[(&str, &str)], msg: &str) -> String {
        let dir = self.work(name);
        for (f, content) in files {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            git(&dir, &["add", f]);
        }
        git(&dir, &["commit", "-q", "--allow-empty", "-m", msg]);
        git(&dir, &["rev-parse", "HEAD"])
    }
    /// Records `sub_commit` as submodule `path` (url `url`) in the next commit of `name`.
    fn add_gitlink(&self, name: &str, path: &str, url: &str, sub_commit: &str) {
        let dir = self.work(name);
        let gm = dir.join(".gitmodules");
        let mut text = std::fs::read_to_string(&gm).unwrap_or_default();
        text.push_str(&format!(
            "[submodule \"{path}\"]\n\tpath = {path}\n\turl = {url}\n"
        ));
        std::fs::write(&gm, text).unwrap();
        git(&dir, &["add", ".gitmodules"]);
        git(
            &dir,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("160000,{sub_commit},{path}"),
            ],
        );
    }
    fn publish(&self, name: &str) -> String {
        let bare = self.path("remotes").join(format!("{name}.git"));
        if !bare.exists() {
            std::fs::create_dir_all(&bare).unwrap();
            git(&bare, &["init", "-q", "--bare"]);
        }
        let b = bare.to_str().unwrap();
        git(
            &self.work(name),
            &[
                "push",
                "-q",
                "--force",
                b,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
        );
        format!("file://{b}")
    }
    fn tag(&self, name: &str, tag: &str, commit: &str) {
        git(
            &self.work(name),
            &["tag", "-f", "-a", "-m", tag, tag, commit],
        );
    }
}

/// super (tag v1) -> third_party/sub (../sub.git) -> deep (../nested.git).
struct Tree {
    fx: Fixture,
    url: String,
    commit: String,
    sub_commit: String,
    nested_commit: String,
}

fn tree_with_submodules() -> Tree {
    let fx = Fixture::new();
    let nested_commit = fx.commit("nested", &[("n.txt", "nested\n")], "n1");
    fx.publish("nested");
    fx.commit("sub", &[("s.txt", "sub one\n")], "s1");
    fx.add_gitlink("sub", "deep", "../nested.git", &nested_commit);
    let sub_commit = fx.commit("sub", &[], "s2 with deep");
    // A later commit on the submodule's branch: checkouts must use the recorded one.
    fx.commit("sub", &[("s.txt", "sub later\n")], "s3");
    fx.publish("sub");
    fx.commit(
        "super",
        &[("README", "super\n"), ("src/a.c", &numbered(20))],
        "p1",
    );
    fx.add_gitlink("super", "third_party/sub", "../sub.git", &sub_commit);
    let commit = fx.commit("super", &[], "p2");
    fx.tag("super", "v1", &commit);
    let url = fx.publish("super");
    Tree {
        fx,
        url,
        commit,
        sub_commit,
        nested_commit,
    }
}

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn checkout_pins_the_commit_and_verifies_the_tag() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let mirror = cache.ensure_commit(&t.url, &t.commit, Some("v1")).unwrap();
    assert!(
        mirror.starts_with(t.fx.path("cache/git-v1")),
        "{}",
        mirror.display()
    );
    let dest = t.fx.path("src/super");
    let subs = cache
        .checkout(&t.url, &t.commit, Some("v1"), &dest, false)
        .unwrap();
    assert!(subs.is_empty());
    assert_eq!(read(dest.join("README")), "super\n");
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), t.commit);
}

#[test]
fn a_tag_at_another_commit_is_an_error_naming_both() {
    let fx = Fixture::new();
    let c1 = fx.commit("r", &[("f", "1\n")], "c1");
    let c2 = fx.commit("r", &[("f", "2\n")], "c2");
    fx.tag("r", "v2", &c2);
    let url = fx.publish("r");
    let cache = MirrorCache::new(&fx.path("cache"), &ONLINE);
    let err = format!(
        "{:#}",
        cache.ensure_commit(&url, &c1, Some("v2")).unwrap_err()
    );
    assert!(
        err.contains(&format!(
            "tag `v2` of `{url}` points at {c2}, but the recipe pins {c1}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("expected: {c1}")) && err.contains(&format!("actual: {c2}")),
        "{err}"
    );
}

#[test]
fn a_tag_that_moved_upstream_is_refused() {
    let fx = Fixture::new();
    let c1 = fx.commit("r", &[("f", "1\n")], "c1");
    fx.tag("r", "v1", &c1);
    let url = fx.publish("r");
    let warm = MirrorCache::new(&fx.path("cache1"), &ONLINE);
    warm.ensure_commit(&url, &c1, Some("v1")).unwrap();
    let c2 = fx.commit("r", &[("f", "2\n")], "c2");
    fx.tag("r", "v1", &c2);
    fx.publish("r");
    let fresh = MirrorCache::new(&fx.path("cache2"), &ONLINE);
    let err = jetforge::error::render(&fresh.ensure_commit(&url, &c1, Some("v1")).unwrap_err());
    assert!(
        err.contains(&format!("points at {c2}, but the recipe pins {c1}")),
        "{err}"
    );
    assert!(err.contains("the tag moved"), "{err}");
}

#[test]
fn a_missing_commit_names_url_and_commit_with_a_hint() {
    let fx = Fixture::new();
    fx.commit("r", &[("f", "1\n")], "c1");
    let url = fx.publish("r");
    let cache = MirrorCache::new(&fx.path("cache"), &ONLINE);
    let bogus = "0123456789abcdef0123456789abcdef01234567";
    let err = jetforge::error::render(&cache.ensure_commit(&url, bogus, None).unwrap_err());
    assert!(
        err.contains(&format!("commit {bogus} is not in `{url}` after fetching")),
        "{err}"
    );
    assert!(err.contains("= hint: the commit may have been"), "{err}");
}

#[test]
fn a_bare_path_remote_works_too() {
    let fx = Fixture::new();
    let c1 = fx.commit("r", &[("f", "1\n")], "c1");
    fx.publish("r");
    let url = fx.path("remotes/r.git").to_str().unwrap().to_string();
    let cache = MirrorCache::new(&fx.path("cache"), &ONLINE);
    cache
        .checkout(&url, &c1, None, &fx.path("src"), true)
        .unwrap();
    assert_eq!(read(fx.path("src/f")), "1\n");
}

#[test]
fn submodules_and_nested_submodules_come_at_their_recorded_commits() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let dest = t.fx.path("src/super");
    let subs = cache
        .checkout(&t.url, &t.commit, Some("v1"), &dest, true)
        .unwrap();
    let remotes = t.fx.path("remotes");
    let listed: Vec<(&str, &str, &str)> = subs
        .iter()
        .map(|s| (s.path.as_str(), s.url.as_str(), s.commit.as_str()))
        .collect();
    let sub_url = format!("file://{}/sub.git", remotes.display());
    let nested_url = format!("file://{}/nested.git", remotes.display());
    assert_eq!(
        listed,
        [
            ("third_party/sub", sub_url.as_str(), t.sub_commit.as_str()),
            (
                "third_party/sub/deep",
                nested_url.as_str(),
                t.nested_commit.as_str()
            ),
        ]
    );
    assert_eq!(read(dest.join("third_party/sub/s.txt")), "sub one\n");
    assert_eq!(read(dest.join("third_party/sub/deep/n.txt")), "nested\n");
    assert_eq!(
        git(&dest.join("third_party/sub"), &["rev-parse", "HEAD"]),
        t.sub_commit
    );
    assert_eq!(
        git(&dest, &["status", "--porcelain"]),
        "",
        "the superproject sees a clean tree"
    );
}

#[test]
fn a_warm_mirror_needs_no_remote() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    cache
        .checkout(&t.url, &t.commit, Some("v1"), &t.fx.path("one"), true)
        .unwrap();
    std::fs::rename(t.fx.path("remotes"), t.fx.path("remotes-gone")).unwrap();
    let dest = t.fx.path("two");
    let subs = cache
        .checkout(&t.url, &t.commit, Some("v1"), &dest, true)
        .unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(read(dest.join("third_party/sub/deep/n.txt")), "nested\n");
}

#[test]
fn a_submodule_used_by_two_superprojects_has_one_mirror() {
    let t = tree_with_submodules();
    t.fx.commit("other", &[("o", "o\n")], "o1");
    t.fx.add_gitlink("other", "cutlass", "../sub.git", &t.sub_commit);
    let other_commit = t.fx.commit("other", &[], "o2");
    let other_url = t.fx.publish("other");
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    cache
        .checkout(&t.url, &t.commit, None, &t.fx.path("a"), true)
        .unwrap();
    cache
        .checkout(&other_url, &other_commit, None, &t.fx.path("b"), true)
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(t.fx.path("cache/git-v1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".git"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "super, other, sub, nested: {names:?}");
    assert_eq!(
        names.iter().filter(|n| n.contains("-sub-")).count(),
        1,
        "{names:?}"
    );
    assert_eq!(read(t.fx.path("b/cutlass/deep/n.txt")), "nested\n");
}

#[test]
fn offline_with_a_cold_cache_reports_what_is_missing() {
    let t = tree_with_submodules();
    let offline = Direct { offline: true };
    let cache = MirrorCache::new(&t.fx.path("cache"), &offline);
    let err = cache
        .fetch(&t.url, &t.commit, Some("v1"), true)
        .unwrap_err();
    let missing = err.downcast_ref::<Missing>().expect("a Missing error");
    assert_eq!(
        (missing.url.as_str(), missing.commit.as_str()),
        (t.url.as_str(), t.commit.as_str())
    );
    assert!(err.to_string().contains("is not in the git cache"), "{err}");
    // Once fetched, offline is fine.
    MirrorCache::new(&t.fx.path("cache"), &ONLINE)
        .fetch(&t.url, &t.commit, None, true)
        .unwrap();
    assert_eq!(
        cache
            .fetch(&t.url, &t.commit, Some("v1"), true)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_second_checkout_resets_tracked_files_and_keeps_build_outputs() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let dest = t.fx.path("src");
    cache
        .checkout(&t.url, &t.commit, None, &dest, true)
        .unwrap();
    std::fs::write(dest.join("README"), "changed").unwrap();
    std::fs::write(dest.join("third_party/sub/s.txt"), "changed").unwrap();
    std::fs::create_dir_all(dest.join("build")).unwrap();
    std::fs::write(dest.join("build/out.o"), "obj").unwrap();
    cache
        .checkout(&t.url, &t.commit, None, &dest, true)
        .unwrap();
    assert_eq!(read(dest.join("README")), "super\n");
    assert_eq!(read(dest.join("third_party/sub/s.txt")), "sub one\n");
    assert_eq!(read(dest.join("build/out.o")), "obj");
}

// ---- patches and edits ----

fn recipe(name: &str, url: &str, commit: &str, patches: Vec<Patch>, edits: Vec<Edit>) -> Recipe {
    Recipe {
        name: name.into(),
        version: "1.0".parse().unwrap(),
        description: None,
        disk_gib: None,
        file: format!("recipes/{name}.toml"),
        text: String::new(),
        source: Source::Git {
            url: url.into(),
            tag: None,
            branch: None,
            commit: commit.into(),
            submodules: true.into(),
        },
        patches,
        edits,
        resources: vec![],
        depends: vec![],
        after: vec![],
        python_requires: vec![],
        pyproject_requires: true,
        env: vec![],
        jobs: JobsPolicy {
            mem_per_job_gib: 1.5,
            mem_per_link_gib: None,
            nvcc_threads: None,
            max_jobs_counts_nvcc_threads: false,
            max: None,
        },
        steps: vec![],
        output: OutputKind::Source,
        wheel_names: vec![],
        verify: None,
        cross: None,
        network: None,
        repositories: vec![],
    }
}

fn patch(name: &str, text: &str, strip: u32, directory: Option<&str>) -> Patch {
    Patch {
        file: name.into(),
        display: format!("patches/{name}"),
        bytes: text.as_bytes().to_vec(),
        strip,
        directory: directory.map(Into::into),
    }
}

fn edit(file: &str, find: &str, replace: &str, count: u32) -> Edit {
    Edit {
        file: file.into(),
        find: find.into(),
        replace: Template::parse(replace).0,
        count,
        why: None,
    }
}

fn job<'a>(r: &'a Recipe, dir: PathBuf) -> PrepareJob<'a> {
    let mut vars = Vars::default();
    vars.set("cuda_arch_list", "8.7");
    PrepareJob {
        recipe: r,
        source_dir: dir,
        vars,
    }
}

/// A patch of `src/a.c` (20 numbered lines) replacing line `at`.
fn line_patch(prefix: &str, at: usize, header_at: usize) -> String {
    format!(
        "Subject: change line {at}\n\n--- {prefix}src/a.c\n+++ {prefix}src/a.c\n@@ -{s},3 +{s},3 @@\n line {}\n-line {at}\n+LINE {at}\n line {}\n",
        at - 1,
        at + 1,
        s = header_at - 1
    )
}

const NEW_FILE: &str = "--- /dev/null\n+++ b/NEW.txt\n@@ -0,0 +1 @@\n+created\n";

fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() == ".git" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn patches_apply_with_strip_offset_directory_and_edits() {
    let t = tree_with_submodules();
    let patches = vec![
        patch("p1.patch", &line_patch("a/", 5, 5), 1, None),
        // Header says line 10, the text is at line 14: found at an offset.
        patch("p0.patch", &line_patch("", 14, 10), 0, None),
        patch(
            "sub.patch",
            "--- a/s.txt\n+++ b/s.txt\n@@ -1 +1 @@\n-sub one\n+sub patched\n",
            1,
            Some("third_party/sub"),
        ),
        patch("new.patch", NEW_FILE, 1, None),
    ];
    let edits = vec![edit("src/a.c", "LINE 14", "arch ${{ cuda_arch_list }}", 1)];
    let r = recipe("demo", &t.url, &t.commit, patches, edits);
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let dir = t.fx.path("work/demo/src");
    let j = job(&r, dir.clone());
    let prepared = prepare(&cache, &j).unwrap();
    assert_eq!(prepared.submodules.len(), 2);
    let a = read(dir.join("src/a.c"));
    assert!(
        a.contains("line 4\nLINE 5\nline 6\n") && a.contains("line 13\narch 8.7\nline 15\n"),
        "{a}"
    );
    assert_eq!(read(dir.join("third_party/sub/s.txt")), "sub patched\n");
    assert_eq!(read(dir.join("NEW.txt")), "created\n");
    assert!(is_prepared(&j).unwrap());

    // Idempotent: a second prepare starts from pristine and gives the same tree.
    let before = all_files(&dir);
    prepare(&cache, &j).unwrap();
    prepare(&cache, &j).unwrap();
    assert_eq!(all_files(&dir), before);
}

#[test]
fn a_broken_patch_leaves_every_tree_pristine() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let good = recipe(
        "good",
        &t.url,
        &t.commit,
        vec![patch("ok.patch", &line_patch("a/", 5, 5), 1, None)],
        vec![],
    );
    let broken_patch = "Subject: x\n\n--- a/src/a.c\n+++ b/src/a.c\n@@ -12,3 +12,3 @@\n line 11\n-line twelve\n+LINE 12\n line 13\n";
    let bad = recipe(
        "bad",
        &t.url,
        &t.commit,
        vec![
            patch("first.patch", NEW_FILE, 1, None),
            patch("0002-broken.patch", broken_patch, 1, None),
        ],
        vec![],
    );
    let (good_dir, bad_dir) = (t.fx.path("w/good/src"), t.fx.path("w/bad/src"));
    cache
        .checkout(&t.url, &t.commit, None, &t.fx.path("pristine"), true)
        .unwrap();
    let pristine = all_files(&t.fx.path("pristine"));
    let jobs = [job(&good, good_dir.clone()), job(&bad, bad_dir.clone())];
    let err = format!("{:#}", prepare_all(&cache, &jobs).unwrap_err());
    assert!(
        err.contains(
            "recipe `bad`: the patch `patches/0002-broken.patch` does not apply to `src/a.c`"
        ),
        "{err}"
    );
    assert!(err.contains("hunk @@ -12,3 +12,3 @@"), "{err}");
    assert!(err.contains("  | line 11\n  | line twelve\n"), "{err}");
    assert!(err.contains("found:\n  | line 12\n"), "{err}");
    assert_eq!(
        all_files(&good_dir),
        pristine,
        "the good recipe's tree was not patched either"
    );
    assert_eq!(all_files(&bad_dir), pristine);
    assert!(!is_prepared(&jobs[0]).unwrap());
}

#[test]
fn an_edit_that_matches_the_wrong_number_of_times_is_an_error() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let r = recipe(
        "e",
        &t.url,
        &t.commit,
        vec![],
        vec![edit("src/a.c", "line 1", "x", 1)],
    );
    let err = format!(
        "{:#}",
        prepare(&cache, &job(&r, t.fx.path("w/e/src"))).unwrap_err()
    );
    // "line 1" also matches inside line 10..19.
    assert!(
        err.contains(
            "recipe `e`: the edit of `src/a.c`: found 11 occurrence(s) of the text, expected 1"
        ),
        "{err}"
    );
    assert!(err.contains("find: \"line 1\""), "{err}");
}

#[test]
fn a_patch_that_creates_a_file_can_be_prepared_again() {
    let t = tree_with_submodules();
    let cache = MirrorCache::new(&t.fx.path("cache"), &ONLINE);
    let r = recipe(
        "n",
        &t.url,
        &t.commit,
        vec![patch("new.patch", NEW_FILE, 1, None)],
        vec![],
    );
    let j = job(&r, t.fx.path("w/n/src"));
    for _ in 0..3 {
        prepare(&cache, &j).unwrap();
    }
    assert_eq!(read(j.source_dir.join("NEW.txt")), "created\n");
}
