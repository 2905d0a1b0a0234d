//! Plain proxies (issue #12 items 13 and 14): an `http://` resource goes through squid as an
//! absolute-URI GET, not a CONNECT tunnel (which a stock squid refuses for port 80); a wrong
//! proxy password is reported as "the proxy refused the credentials (407)" for git over
//! https (libgit2) and plain http (the git command) and for downloads, the password never shown.

use std::path::Path;
use std::process::Output;

use sha2::{Digest, Sha256};

use crate::support::{have_tools, Lighttpd, Squid, PROXY_ONLY_HOST};
use crate::util::{git, in_project, stderr, stdout};

const BLOB: &str = "a resource only the proxy can reach\n";
const PASSWORD: &str = "Corr3ctHorse";
const WRONG: &str = "Wr0ngHorse";

/// A project dir with `recipes/`, run with `args` and no user configuration.
fn jf(dir: &Path, args: &[&str]) -> Output {
    in_project(dir)
        .env("JETFORGE_CONFIG", "")
        .args(args)
        .output()
        .unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A server root with `files/blob` and the bare repository `git/r.git`; returns its commit.
fn serve_root(root: &Path) -> String {
    write(&root.join("files/blob"), BLOB);
    let work = root.join("r");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    write(&work.join("README"), "r\n");
    git(&work, &["add", "README"]);
    git(&work, &["commit", "-q", "-m", "r"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    let bare = root.join("git/r.git");
    git(
        root,
        &["clone", "-q", "--bare", "r", bare.to_str().unwrap()],
    );
    commit
}

fn resource_project(dir: &Path, url: &str) {
    let sha = hex::encode(Sha256::digest(BLOB.as_bytes()));
    write(
        &dir.join("recipes/res.toml"),
        &format!(
            "[package]\nname = \"res\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/res\"\n\
             [[resource]]\nname = \"blob\"\nurl = \"{url}\"\nsha256 = \"{sha}\"\n\
             [output]\nkind = \"source\"\n"
        ),
    );
    write(&dir.join("src/res/README"), "res\n");
}

fn git_project(dir: &Path, url: &str, commit: &str) {
    write(
        &dir.join("recipes/repo.toml"),
        &format!(
            "[package]\nname = \"repo\"\nversion = \"1.0.0\"\n[source]\ngit = \"{url}\"\n\
             commit = \"{commit}\"\n[output]\nkind = \"source\"\n"
        ),
    );
}

fn output(o: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", stdout(o), stderr(o))
}

#[test]
fn an_http_resource_goes_through_a_plain_proxy_as_a_get_not_a_connect() {
    if !have_tools("proxy_http_get", &["git", "lighttpd", "squid"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    serve_root(root.path());
    let web = Lighttpd::start(root.path(), None);
    let squid = Squid::start(&[PROXY_ONLY_HOST], None);
    let url = web.url_for_host(PROXY_ONLY_HOST, "/files/blob");
    let p = tempfile::tempdir().unwrap();
    resource_project(p.path(), &url);
    let o = jf(p.path(), &["--proxy", &squid.url(), "fetch"]);
    assert!(o.status.success(), "{}", output(&o));
    assert!(
        squid.log_shows(&format!("GET {url}")),
        "{}",
        squid.access_log()
    );
    assert!(
        !squid.access_log().contains("CONNECT"),
        "{}",
        squid.access_log()
    );
}

#[test]
fn a_wrong_proxy_password_is_named_as_407_for_downloads_and_git() {
    if !have_tools("proxy_407", &["git", "openssl", "lighttpd", "squid"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let commit = serve_root(root.path());
    let web = Lighttpd::start(root.path(), None);
    let squid = Squid::start(&[PROXY_ONLY_HOST], Some(("jf", PASSWORD)));
    let wrong = squid.url_with_credentials("jf", WRONG);
    let shown = format!("http://jf:****@127.0.0.1:{}", squid.port);

    let res = tempfile::tempdir().unwrap();
    resource_project(
        res.path(),
        &web.url_for_host(PROXY_ONLY_HOST, "/files/blob"),
    );
    // Plain http git goes to the git command, which would ask for a user name.
    let plain_git = tempfile::tempdir().unwrap();
    git_project(
        plain_git.path(),
        &web.url_for_host(PROXY_ONLY_HOST, "/git/r.git"),
        &commit,
    );
    for dir in [res.path(), plain_git.path()] {
        let o = jf(dir, &["--proxy", &wrong, "fetch"]);
        let text = output(&o);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert!(
            text.contains("the proxy refused the credentials (407)"),
            "{text}"
        );
        assert!(text.contains(&shown), "{text}");
        assert!(!text.contains(WRONG), "the password is shown:\n{text}");
    }

    // The right password works for both.
    let right = squid.url_with_credentials("jf", PASSWORD);
    for dir in [res.path(), plain_git.path()] {
        let o = jf(dir, &["--proxy", &right, "fetch"]);
        assert!(o.status.success(), "{}", output(&o));
    }
}
