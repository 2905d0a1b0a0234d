//! `jetforge fetch` and `prepare` end to end: the real binary against real servers on 127.0.0.1
//! (lighttpd serving git smart HTTP(S) and files, squid, tinyproxy), fixture repositories built
//! here with the `git` command (a superproject with history and tags, and a submodule referenced
//! as `../sub.git`), and a cache and work dir per test. The CA reaches jetforge only through its
//! own environment (`SSL_CERT_FILE`, `GIT_SSL_CAINFO`), never the test process's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jetforge::net::Direct;
use jetforge::source::git::MirrorCache;
use jetforge::source::lock::DirLock;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::{free_port, have_tools, Lighttpd, Squid, TestCa, Tinyproxy, PROXY_ONLY_HOST};
use crate::util::{git, jetforge_process, stderr, stdout};

const MAIN_C: &str =
    "#include <stdio.h>\n\nint main(void)\n{\n    puts(\"hello\");\n    return 0;\n}\n";
const SUB_TXT: &str = "sub one\nsub two\nsub three\n";
const GITMODULES: &str = "[submodule \"sub\"]\n\tpath = sub\n\turl = ../sub.git\n";

fn commit(dir: &Path, files: &[(&str, &str)], msg: &str) -> String {
    for (f, content) in files {
        std::fs::write(dir.join(f), content).unwrap();
        git(dir, &["add", f]);
    }
    git(dir, &["commit", "-q", "--allow-empty", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"])
}

/// `super` (tags `v0.9` → `old`, `v1.0` → `pinned`, then a newer `tip`) with submodule `sub` at
/// `sub_pinned` (url `../sub.git`), which is not the submodule's branch tip.
struct Repos {
    work: TempDir,
    old: String,
    pinned: String,
    sub_pinned: String,
}

impl Repos {
    fn new() -> Repos {
        let work = tempfile::tempdir().unwrap();
        let (sup, sub) = (work.path().join("super"), work.path().join("sub"));
        for d in [&sup, &sub] {
            std::fs::create_dir_all(d).unwrap();
            git(d, &["init", "-q"]);
        }
        let sub_pinned = commit(&sub, &[("sub.txt", SUB_TXT)], "s1");
        commit(&sub, &[("sub.txt", "sub moved on\n")], "s2");

        let old = commit(
            &sup,
            &[("README.md", "super v0\n"), ("main.c", "int main;\n")],
            "p1",
        );
        git(&sup, &["tag", "v0.9", &old]);
        std::fs::write(sup.join(".gitmodules"), GITMODULES).unwrap();
        git(&sup, &["add", ".gitmodules"]);
        let link = format!("160000,{sub_pinned},sub");
        git(&sup, &["update-index", "--add", "--cacheinfo", &link]);
        let pinned = commit(
            &sup,
            &[("README.md", "super v1\n"), ("main.c", MAIN_C)],
            "p2",
        );
        git(&sup, &["tag", "-a", "-m", "release", "v1.0", &pinned]);
        commit(&sup, &[("README.md", "super v2 (unreleased)\n")], "p3");
        Repos {
            work,
            old,
            pinned,
            sub_pinned,
        }
    }

    /// Bare copies as `dir/super.git` and `dir/sub.git`.
    fn publish(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for name in ["super", "sub"] {
            let bare = dir.join(format!("{name}.git"));
            git(
                self.work.path(),
                &["clone", "-q", "--bare", name, bare.to_str().unwrap()],
            );
        }
    }

    /// Files of the superproject's tree at `pinned`, submodule included.
    fn pinned_files(&self) -> BTreeMap<String, String> {
        files_of(&[
            (".gitmodules", GITMODULES),
            ("README.md", "super v1\n"),
            ("main.c", MAIN_C),
            ("sub/sub.txt", SUB_TXT),
        ])
    }
}

fn files_of(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every file under `dir` (relative path → content), `.git` of any repository left out.
fn files(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_name() == ".git" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A recipes dir, patches, a work dir and a cache in one temp dir, and how to run jetforge on
/// them. `work` and `cache` can be pointed elsewhere between runs.
struct Site {
    dir: TempDir,
    ca: Option<PathBuf>,
    work: PathBuf,
    cache: PathBuf,
}

impl Site {
    fn new(ca: Option<&TestCa>) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("recipes")).unwrap();
        Site {
            ca: ca.map(TestCa::ca_pem),
            work: dir.path().join("work"),
            cache: dir.path().join("cache"),
            dir,
        }
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

    /// `jetforge.toml` in the current work dir.
    fn config(&self, text: &str) {
        std::fs::create_dir_all(&self.work).unwrap();
        std::fs::write(self.work.join("jetforge.toml"), text).unwrap();
    }

    fn cmd(&self) -> Command {
        let mut c = jetforge_process();
        c.arg("--recipes")
            .arg(self.path("recipes"))
            .arg("--work-dir")
            .arg(&self.work)
            .arg("--no-progress")
            .env("JETFORGE_CACHE_DIR", &self.cache)
            // No user config from the machine running the tests.
            .env("JETFORGE_CONFIG", "");
        if let Some(ca) = &self.ca {
            c.env("SSL_CERT_FILE", ca).env("GIT_SSL_CAINFO", ca);
        }
        c
    }

    fn jf(&self, args: &[&str]) -> Output {
        run(self.cmd().args(args))
    }

    /// The tree `prepare` made for `name` (the work dir holds one set-target directory).
    fn src(&self, name: &str) -> PathBuf {
        let roots: Vec<PathBuf> = std::fs::read_dir(&self.work)
            .unwrap()
            .map(|e| e.unwrap().path().join("src").join(name))
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(roots.len(), 1, "one source dir for {name}: {roots:?}");
        roots[0].clone()
    }
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", stdout(o), stderr(o))
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "expected success:\n{}", text(o));
}

/// Exit 1: a fetch or prepare failed (not a usage error).
#[track_caller]
fn assert_fails(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1:\n{}", text(o));
    stderr(o)
}

fn git_recipe(name: &str, url: &str, tag: &str, commit: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "1.0.0"
[source]
git = "{url}"
tag = "{tag}"
commit = "{commit}"
submodules = true
[output]
kind = "source"
"#
    )
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A local-source recipe whose only download is one resource.
fn resource_recipe(name: &str, url: &str, sha256: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "1.0.0"
[source]
path = "../src/{name}"
[[resource]]
name = "blob"
url = "{url}"
sha256 = "{sha256}"
[output]
kind = "source"
"#
    )
}

/// Bare repos under `root/git/`, served by lighttpd (HTTPS with `ca`).
fn serve_repos(repos: &Repos, root: &Path, ca: Option<&TestCa>) -> Lighttpd {
    repos.publish(&root.join("git"));
    Lighttpd::start(root, ca)
}

fn dead_proxy() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

#[test]
fn https_prepare_pins_commit_and_submodule_and_reuses_the_mirror_without_the_server() {
    if !have_tools("src_e2e_https", &["git", "openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let url = web.url("/git/super.git");
    let mut site = Site::new(Some(&ca));
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &repos.pinned),
    );

    let o = site.jf(&["prepare"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("prepared superpkg 1.0.0 in") && stdout(&o).contains("(1 submodules)"),
        "{}",
        text(&o)
    );
    let tree = site.src("superpkg");
    assert_eq!(files(&tree), repos.pinned_files());
    assert_eq!(git(&tree, &["rev-parse", "HEAD"]), repos.pinned);
    assert_eq!(
        git(&tree.join("sub"), &["rev-parse", "HEAD"]),
        repos.sub_pinned
    );

    // The tag exists, but at another commit than the recipe pins.
    site.recipe(
        "wrongtag",
        &git_recipe("wrongtag", &url, "v0.9", &repos.pinned),
    );
    let err = assert_fails(&site.jf(&["fetch", "wrongtag"]));
    for needle in [
        format!("tag `v0.9` of `{url}` points at {}", repos.old),
        format!("expected: {}", repos.pinned),
        format!("actual: {}", repos.old),
        "never builds a commit the recipe did not pin".to_string(),
    ] {
        assert!(err.contains(&needle), "missing {needle:?} in:\n{err}");
    }

    drop(web);
    site.work = site.path("work2");
    let o = site.jf(&["prepare", "superpkg"]);
    assert_ok(&o);
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
}

/// Counts squid's access-log lines for the proxy-only host, waiting (up to 10 s) for at least
/// `want`: squid logs a CONNECT only once its tunnel has closed.
fn wait_for_connects(squid: &Squid, want: usize) -> usize {
    let count = || squid.access_log().matches(PROXY_ONLY_HOST).count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    count()
}

/// The recipe names a host only squid resolves: success proves the fetch went through squid,
/// whichever way the proxy was given (flag, environment, config file).
#[test]
fn proxy_only_host_is_reached_through_squid_from_flag_env_and_config() {
    if !have_tools("src_e2e_squid", &["git", "openssl", "lighttpd", "squid"]) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let squid = Squid::start(&[PROXY_ONLY_HOST], None);
    let url = web.url_for_host(PROXY_ONLY_HOST, "/git/super.git");
    let mut site = Site::new(Some(&ca));
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &repos.pinned),
    );

    let err = assert_fails(&site.jf(&["fetch"]));
    assert!(
        err.contains(&format!("failed to fetch `{url}`: gave up after"))
            && err.contains("failed to resolve address for git.proxyonly.test"),
        "{err}"
    );
    assert!(!err.contains("through the proxy"), "{err}");

    // Each run gets an empty cache, so each one has to reach the server; two repositories make
    // at least one tunnel each.
    site.cache = site.path("cache-flag");
    assert_ok(&site.jf(&["--proxy", &squid.url(), "fetch"]));
    assert!(squid.log_shows(PROXY_ONLY_HOST), "{}", squid.access_log());
    let seen = wait_for_connects(&squid, 2);
    assert!(seen >= 2, "--proxy: {}", squid.access_log());

    site.cache = site.path("cache-env");
    assert_ok(&run(site
        .cmd()
        .env("https_proxy", squid.url())
        .arg("fetch")));
    let seen_env = wait_for_connects(&squid, seen + 2);
    assert!(seen_env >= seen + 2, "https_proxy: {}", squid.access_log());

    site.cache = site.path("cache-config");
    site.config(&format!("[network]\nproxy = \"{}\"\n", squid.url()));
    let o = site.jf(&["prepare"]);
    assert_ok(&o);
    assert!(
        wait_for_connects(&squid, seen_env + 2) >= seen_env + 2,
        "[network] proxy: {}",
        squid.access_log()
    );
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
}

#[test]
fn proxy_password_works_and_never_appears_in_output() {
    if !have_tools(
        "src_e2e_squid_auth",
        &["git", "openssl", "lighttpd", "squid"],
    ) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let squid = Squid::start(&[PROXY_ONLY_HOST], Some(("jf", "Corr3ctHorse")));
    let url = web.url_for_host(PROXY_ONLY_HOST, "/git/super.git");
    let mut site = Site::new(Some(&ca));
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &repos.pinned),
    );

    let wrong = squid.url_with_credentials("jf", "Wr0ngHorse");
    let o = site.jf(&["-v", "--proxy", &wrong, "fetch"]);
    let err = assert_fails(&o);
    assert!(!text(&o).contains("Wr0ngHorse"), "{}", text(&o));
    assert!(
        err.contains(&format!(
            "failed to fetch `{url}` through the proxy `http://jf:****@127.0.0.1:{}`",
            squid.port
        )) && err.contains("the proxy refused the credentials (407)"),
        "{err}"
    );

    site.cache = site.path("cache-right");
    let right = squid.url_with_credentials("jf", "Corr3ctHorse");
    let o = site.jf(&["-v", "--proxy", &right, "prepare"]);
    assert_ok(&o);
    assert!(!text(&o).contains("Corr3ctHorse"), "{}", text(&o));
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
    assert!(squid.log_shows(PROXY_ONLY_HOST), "{}", squid.access_log());
}

/// `no_proxy` is decided by jetforge, in the forms libgit2 itself would not match (a space after
/// the comma), from the flag and from the environment.
#[test]
fn no_proxy_sends_127_0_0_1_direct_past_a_dead_proxy() {
    if !have_tools("src_e2e_no_proxy", &["git", "openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let mut site = Site::new(Some(&ca));
    let url = web.url("/git/super.git");
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &repos.pinned),
    );

    let dead = dead_proxy();
    let o = site.jf(&[
        "--proxy",
        &dead,
        "--no-proxy",
        "localhost, 127.0.0.1",
        "fetch",
    ]);
    assert_ok(&o);

    site.cache = site.path("cache-env");
    let o = run(site
        .cmd()
        .env("https_proxy", &dead)
        .env("no_proxy", "example.invalid, 127.0.0.1")
        .arg("prepare"));
    assert_ok(&o);
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
}

#[test]
fn dead_proxy_error_names_the_redacted_proxy_and_the_url() {
    let port = free_port();
    let dead = format!("http://bob:s3cret-pw@127.0.0.1:{port}");
    let url = format!("https://127.0.0.1:{}/git/super.git", free_port());
    let site = Site::new(None);
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &"a".repeat(40)),
    );
    let o = site.jf(&["--proxy", &dead, "fetch"]);
    let err = assert_fails(&o);
    assert!(
        err.contains(&format!(
            "failed to fetch `{url}` through the proxy `http://bob:****@127.0.0.1:{port}`"
        )),
        "{err}"
    );
    // The cause, then the hint: the last line tells the user what to try.
    assert!(
        err.contains(": gave up after") && err.contains("Connection refused"),
        "{err}"
    );
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("  = hint: check the URL and the network"),
        "{err}"
    );
    assert!(!text(&o).contains("s3cret-pw"), "{}", text(&o));
}

/// libgit2 would connect a plain `http://` remote directly despite a proxy, so jetforge hands
/// those to the `git` command with `http.proxy`: tinyproxy must see both repositories, and a
/// dead proxy must fail rather than fall back to a direct connection.
#[test]
fn plain_http_git_goes_through_tinyproxy_and_never_direct() {
    if !have_tools("src_e2e_tinyproxy", &["git", "lighttpd", "tinyproxy"]) {
        return;
    }
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), None);
    let proxy = Tinyproxy::start();
    let url = web.url("/git/super.git");
    let mut site = Site::new(None);
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &repos.pinned),
    );

    let o = site.jf(&["--proxy", &proxy.url(), "prepare"]);
    assert_ok(&o);
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
    let log = proxy.log();
    for repo in ["/git/super.git", "/git/sub.git"] {
        let seen = format!("127.0.0.1:{}{repo}", web.port);
        assert!(log.contains(&seen), "tinyproxy did not see {seen}:\n{log}");
    }

    site.cache = site.path("cache-dead");
    let dead = dead_proxy();
    let err = assert_fails(&site.jf(&["--proxy", &dead, "fetch"]));
    assert!(
        err.contains(&format!(
            "failed to fetch `{url}` through the proxy `{dead}`"
        )) && err.contains("`git fetch` failed"),
        "{err}"
    );
}

#[test]
fn resources_download_over_https_are_checked_and_shown_by_plan() {
    if !have_tools("src_e2e_resource", &["openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let root = tempfile::tempdir().unwrap();
    let bytes = b"resource bytes over tls";
    std::fs::create_dir_all(root.path().join("files")).unwrap();
    std::fs::write(root.path().join("files/blob.bin"), bytes).unwrap();
    let web = Lighttpd::start(root.path(), Some(&ca));
    let url = web.url("/files/blob.bin");
    let site = Site::new(Some(&ca));
    site.recipe("blobs", &resource_recipe("blobs", &url, &sha256(bytes)));
    let wrong = sha256(b"something else");
    site.recipe("badblob", &resource_recipe("badblob", &url, &wrong));

    let o = site.jf(&["fetch", "blobs"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("fetched 1 recipe(s)"), "{}", text(&o));
    let plan = site.jf(&["plan", "--json", "blobs"]);
    assert_ok(&plan);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let res = &plan["recipes"][0]["resources"][0];
    assert_eq!(res["url"], url.as_str());
    let path = PathBuf::from(res["path"].as_str().unwrap());
    assert!(path.starts_with(&site.cache), "{path:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    let err = assert_fails(&site.jf(&["fetch", "badblob"]));
    assert!(err.contains(&format!("expected sha256: {wrong}")), "{err}");
    assert!(
        err.contains(&format!("actual sha256:   {}", sha256(bytes))),
        "{err}"
    );
    assert!(err.contains(&url), "{err}");
}

#[test]
fn offline_lists_every_missing_item_and_works_after_fetch() {
    if !have_tools("src_e2e_offline", &["git", "openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("files")).unwrap();
    std::fs::write(root.path().join("files/blob.bin"), b"offline blob").unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let git_url = web.url("/git/super.git");
    let blob_url = web.url("/files/blob.bin");
    let site = Site::new(Some(&ca));
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &git_url, "v1.0", &repos.pinned),
    );
    site.recipe(
        "blobs",
        &resource_recipe("blobs", &blob_url, &sha256(b"offline blob")),
    );
    site.write("src/blobs/setup.py", "# local source\n");

    let err = assert_fails(&site.jf(&["--offline", "prepare"]));
    for needle in [
        "offline: 2 item(s) missing from the caches:".to_string(),
        format!("superpkg: git {git_url} at {}", repos.pinned),
        format!("blobs: resource `blob` {blob_url}"),
        "hint: run `jetforge fetch` where the network works".to_string(),
    ] {
        assert!(err.contains(&needle), "missing {needle:?} in:\n{err}");
    }

    assert_ok(&site.jf(&["fetch"]));
    drop(web);
    let o = site.jf(&["--offline", "prepare"]);
    assert_ok(&o);
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
    assert_eq!(
        files(&site.src("blobs")),
        files_of(&[("setup.py", "# local source\n")])
    );
}

/// The GPU machine's setup: no network at all, sources from bare repos on disk through
/// `[mirrors]`, and `--offline`.
#[test]
fn mirrors_to_local_bare_repos_prepare_offline_and_show_in_plan() {
    if !have_tools("src_e2e_mirrors", &["git"]) {
        return;
    }
    let repos = Repos::new();
    let mirror = tempfile::tempdir().unwrap();
    repos.publish(&mirror.path().join("example"));
    let site = Site::new(None);
    site.config(&format!(
        "[mirrors]\n\"https://github.com/\" = \"file://{}/\"\n",
        mirror.path().display()
    ));
    let url = "https://github.com/example/super.git";
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", url, "v1.0", &repos.pinned),
    );

    let o = site.jf(&["plan"]);
    assert_ok(&o);
    let via = format!(
        "via mirror file://{}/example/super.git",
        mirror.path().display()
    );
    assert!(stdout(&o).contains(&via), "{}", text(&o));

    let o = site.jf(&["--offline", "prepare"]);
    assert_ok(&o);
    let tree = site.src("superpkg");
    assert_eq!(files(&tree), repos.pinned_files());
    assert_eq!(
        git(&tree.join("sub"), &["rev-parse", "HEAD"]),
        repos.sub_pinned
    );
}

const GOOD_PATCH: &str = "From: t\nSubject: greet the jetson\n\n\
--- a/main.c\n+++ b/main.c\n@@ -3,5 +3,5 @@\n int main(void)\n {\n-    puts(\"hello\");\n\
+    puts(\"hello jetson\");\n     return 0;\n }\n\
--- /dev/null\n+++ b/jetson.h\n@@ -0,0 +1 @@\n+#define JETSON 1\n";
const BROKEN_PATCH: &str =
    "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-super v0.5\n+super v1 for jetson\n";
const FIXED_PATCH: &str =
    "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-super v1\n+super v1 for jetson\n";
const SUB_PATCH: &str =
    "--- a/sub.txt\n+++ b/sub.txt\n@@ -1,3 +1,3 @@\n sub one\n-sub two\n+sub two (patched)\n sub three\n";

fn patched_recipe(url: &str, commit: &str) -> String {
    format!(
        r#"{}
[[patch]]
file = "superpkg/0001-greeting.patch"
[[patch]]
file = "superpkg/0002-readme.patch"
[[patch]]
file = "superpkg/0003-sub.patch"
directory = "sub"
"#,
        git_recipe("superpkg", url, "v1.0", commit)
    )
}

fn edited_recipe(url: &str, commit: &str, count: u32) -> String {
    format!(
        r#"[package]
name = "edited"
version = "1.0.0"
[source]
git = "{url}"
commit = "{commit}"
[output]
kind = "source"
[[edit]]
file = "main.c"
find = 'puts("hello");'
replace = 'puts("hello ${{{{ cuda_arch_list }}}}");'
count = {count}
"#
    )
}

fn markers(site: &Site) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for name in ["superpkg", "edited"] {
        let m = site
            .src(name)
            .with_file_name(format!("{name}.prepared.json"));
        if m.exists() {
            out.push(m);
        }
    }
    out
}

#[test]
fn patches_and_edits_are_all_checked_before_any_tree_is_written() {
    if !have_tools("src_e2e_patches", &["git", "openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let url = web.url("/git/super.git");
    let site = Site::new(Some(&ca));
    site.recipe("superpkg", &patched_recipe(&url, &repos.pinned));
    site.recipe("edited", &edited_recipe(&url, &repos.pinned, 1));
    site.write("patches/superpkg/0001-greeting.patch", GOOD_PATCH);
    site.write("patches/superpkg/0002-readme.patch", BROKEN_PATCH);
    site.write("patches/superpkg/0003-sub.patch", SUB_PATCH);

    let err = assert_fails(&site.jf(&["prepare", "all"]));
    for needle in [
        "recipe `superpkg`: the patch `",
        "0002-readme.patch` does not apply to `README.md`",
        "hunk @@ -1 +1 @@ does not match",
        "expected at line 1:\n  | super v0.5\nfound:\n  | super v1",
        "nothing was patched: every source tree is left pristine",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let pristine_edited = files_of(&[
        (".gitmodules", GITMODULES),
        ("README.md", "super v1\n"),
        ("main.c", MAIN_C),
    ]);
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
    assert_eq!(files(&site.src("edited")), pristine_edited);
    assert!(markers(&site).is_empty(), "{:?}", markers(&site));

    site.write("patches/superpkg/0002-readme.patch", FIXED_PATCH);
    assert_ok(&site.jf(&["prepare"]));
    let mut want = repos.pinned_files();
    want.insert("README.md".into(), "super v1 for jetson\n".into());
    want.insert("main.c".into(), MAIN_C.replace("hello", "hello jetson"));
    want.insert("jetson.h".into(), "#define JETSON 1\n".into());
    want.insert(
        "sub/sub.txt".into(),
        SUB_TXT.replace("two", "two (patched)"),
    );
    let first = files(&site.src("superpkg"));
    assert_eq!(first, want);
    let mut want_edited = pristine_edited.clone();
    want_edited.insert("main.c".into(), MAIN_C.replace("hello", "hello 8.7"));
    assert_eq!(files(&site.src("edited")), want_edited);

    assert_ok(&site.jf(&["prepare"]));
    assert_eq!(files(&site.src("superpkg")), first);
    assert_eq!(files(&site.src("edited")), want_edited);

    site.recipe("edited", &edited_recipe(&url, &repos.pinned, 2));
    let err = assert_fails(&site.jf(&["prepare", "edited"]));
    assert!(
        err.contains(
            "recipe `edited`: the edit of `main.c`: found 1 occurrence(s) of the text, expected 2"
        ),
        "{err}"
    );
    assert_eq!(files(&site.src("edited")), pristine_edited);
}

/// Two `prepare`s started together on one work dir: one takes the work dir's lock, the other
/// waits for it (and says so), and both end with the right tree.
///
/// So that the two really overlap on a busy machine, the test holds the git mirror's lock: the
/// first jetforge stops there while holding the work dir, and the test lets go only once the
/// second one has said it is waiting for the work dir.
#[test]
fn concurrent_prepares_on_one_work_dir_take_turns() {
    if !have_tools("src_e2e_concurrent", &["git", "openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let repos = Repos::new();
    let root = tempfile::tempdir().unwrap();
    let web = serve_repos(&repos, root.path(), Some(&ca));
    let site = Site::new(Some(&ca));
    let url = web.url("/git/super.git");
    site.recipe(
        "superpkg",
        &git_recipe("superpkg", &url, "v1.0", &repos.pinned),
    );
    let mirror = MirrorCache::new(&site.cache, &Direct::default()).mirror_path(&url);
    let mirror_lock = DirLock::acquire(&mirror, "the test's hold", |_| {}).unwrap();

    let logs: Vec<PathBuf> = (0..2).map(|i| site.path(&format!("stderr-{i}"))).collect();
    let children: Vec<_> = logs
        .iter()
        .map(|log| {
            site.cmd()
                .arg("prepare")
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    let read = |log: &PathBuf| std::fs::read_to_string(log).unwrap_or_default();
    let waits_for_work_dir =
        |log: &PathBuf| read(log).contains("waiting for the lock on the work dir held by");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !logs.iter().any(waits_for_work_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(mirror_lock);

    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let all = format!(
        "{}\n{}\n{}",
        read(&logs[0]),
        read(&logs[1]),
        text(&outputs[0])
    );
    for o in &outputs {
        assert!(o.status.success(), "{all}");
        assert!(stdout(o).contains("prepared superpkg 1.0.0"), "{all}");
    }
    let waited = logs.iter().filter(|l| waits_for_work_dir(l)).count();
    assert_eq!(waited, 1, "exactly one waits for the work dir:\n{all}");
    let waited_mirror = logs
        .iter()
        .filter(|l| read(l).contains("waiting for the lock on the git mirror of"))
        .count();
    assert_eq!(waited_mirror, 1, "the other waited for the test:\n{all}");
    assert_eq!(files(&site.src("superpkg")), repos.pinned_files());
}
