//! Resource downloads against real servers: HTTPS through squid to a name only squid resolves,
//! no_proxy, dead proxies, proxy credentials, checksums, archives, the cache and offline mode.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use jetforge::config::{Mirrors, NetworkConfig};
use jetforge::net::FetchOptions;
use jetforge::net::{Direct, NetPolicy, ProxySettings};
use jetforge::recipe::Resource;
use jetforge::source::resource::fetch_resource_with;
use sha2::{Digest, Sha256};

use crate::support::{free_port, have_tools, Lighttpd, Squid, TestCa, Tinyproxy, PROXY_ONLY_HOST};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn resource(url: &str, sha256: &str) -> Resource {
    Resource {
        name: "blob".into(),
        url: url.into(),
        sha256: Some(sha256.into()),
        extract: false,
        env: None,
        subdir: None,
    }
}

/// A policy made the way the CLI makes it, from a `--proxy` and `--no-proxy` value.
fn via_proxy(proxy: &str, no_proxy: Option<&str>) -> NetPolicy {
    let proxy = ProxySettings::resolve(Some(proxy), no_proxy, &NetworkConfig::default(), |_| None)
        .expect("valid proxy");
    NetPolicy {
        proxy,
        mirrors: Mirrors::default(),
        offline: false,
        fetch: FetchOptions::default(),
    }
}

fn opts(ca: Option<&TestCa>) -> FetchOptions {
    FetchOptions {
        ca_file: ca.map(TestCa::ca_pem),
        tries: 3,
        backoff: Duration::from_millis(50),
    }
}

/// Puts `bytes` at `root/files/name`, served by lighttpd as `/files/name`.
fn serve(root: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(root.join("files")).unwrap();
    std::fs::write(root.join("files").join(name), bytes).unwrap();
}

/// The proxy-only name proves the download went through squid: a direct attempt cannot even
/// resolve it.
#[test]
fn https_download_through_squid_reaches_a_host_only_the_proxy_resolves() {
    if !have_tools("https_through_squid", &["openssl", "lighttpd", "squid"]) {
        return;
    }
    let ca = TestCa::new();
    let root = tempfile::tempdir().unwrap();
    serve(root.path(), "blob.bin", b"payload over tls");
    let web = Lighttpd::start(root.path(), Some(&ca));
    let squid = Squid::start(&[PROXY_ONLY_HOST], None);
    let url = web.url_for_host(PROXY_ONLY_HOST, "/files/blob.bin");
    let res = resource(&url, &sha256(b"payload over tls"));
    let cache = tempfile::tempdir().unwrap();

    let direct = fetch_resource_with(&res, cache.path(), &Direct::default(), &opts(Some(&ca)));
    let err = direct
        .expect_err("a direct download must not resolve the proxy-only name")
        .to_string();
    assert!(err.contains(&url) && err.contains("direct"), "{err}");

    let got = fetch_resource_with(
        &res,
        cache.path(),
        &via_proxy(&squid.url(), None),
        &opts(Some(&ca)),
    )
    .expect("download through squid");
    assert_eq!(std::fs::read(&got).unwrap(), b"payload over tls");
    assert!(
        got.starts_with(
            cache
                .path()
                .join("resources-v1")
                .join(res.sha256.as_ref().unwrap())
        ),
        "{got:?}"
    );
    assert!(squid.log_shows(PROXY_ONLY_HOST), "{}", squid.access_log());
}

#[test]
fn wrong_sha256_shows_both_hashes_and_leaves_nothing_behind() {
    if !have_tools("wrong_sha256", &["openssl", "lighttpd"]) {
        return;
    }
    let ca = TestCa::new();
    let root = tempfile::tempdir().unwrap();
    serve(root.path(), "blob.bin", b"real bytes");
    let web = Lighttpd::start(root.path(), Some(&ca));
    let expected = sha256(b"other bytes");
    let res = resource(&web.url("/files/blob.bin"), &expected);
    let cache = tempfile::tempdir().unwrap();

    let err = fetch_resource_with(&res, cache.path(), &Direct::default(), &opts(Some(&ca)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("expected sha256: {expected}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("actual sha256:   {}", sha256(b"real bytes"))),
        "{err}"
    );
    assert!(err.contains(&res.url), "{err}");
    let dir = cache.path().join("resources-v1").join(&expected);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "temp file left in {dir:?}"
    );
}

#[test]
fn no_proxy_bypasses_a_dead_proxy_for_127_0_0_1() {
    if !have_tools("no_proxy_bypass", &["lighttpd"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    serve(root.path(), "x.txt", b"direct");
    let web = Lighttpd::start(root.path(), None);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let policy = via_proxy(&dead, Some("localhost ,  127.0.0.1"));
    let cache = tempfile::tempdir().unwrap();
    let got = fetch_resource_with(
        &resource(&web.url("/files/x.txt"), &sha256(b"direct")),
        cache.path(),
        &policy,
        &opts(None),
    )
    .expect("no_proxy must bypass the dead proxy");
    assert_eq!(std::fs::read(got).unwrap(), b"direct");
}

#[test]
fn dead_proxy_error_names_the_redacted_proxy_and_the_url() {
    let port = free_port();
    let policy = via_proxy(&format!("bob:s3cret-pw@127.0.0.1:{port}"), None);
    let url = "https://downloads.example/llvm.tar.xz";
    let cache = tempfile::tempdir().unwrap();
    let err = fetch_resource_with(
        &resource(url, &"0".repeat(64)),
        cache.path(),
        &policy,
        &opts(None),
    )
    .unwrap_err();
    let err = jetforge::error::typed(err);
    let text = jetforge::error::render(&err);
    assert!(
        text.contains(&format!("through proxy http://bob:****@127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        text.contains(url) && text.contains("after 3 tries"),
        "{text}"
    );
    assert!(
        text.contains("= hint: check --proxy / [network] proxy / https_proxy"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret-pw") && !format!("{err:?}").contains("s3cret-pw"),
        "{err:?}"
    );
}

#[test]
fn proxy_credentials_work_and_never_appear_in_errors() {
    if !have_tools("proxy_credentials", &["openssl", "lighttpd", "squid"]) {
        return;
    }
    let ca = TestCa::new();
    let root = tempfile::tempdir().unwrap();
    serve(root.path(), "blob.bin", b"authorised");
    let web = Lighttpd::start(root.path(), Some(&ca));
    let squid = Squid::start(&[PROXY_ONLY_HOST], Some(("jf", "Corr3ctHorse")));
    let res = resource(
        &web.url_for_host(PROXY_ONLY_HOST, "/files/blob.bin"),
        &sha256(b"authorised"),
    );

    let cache = tempfile::tempdir().unwrap();
    let wrong = via_proxy(&squid.url_with_credentials("jf", "Wr0ngHorse"), None);
    let err = fetch_resource_with(&res, cache.path(), &wrong, &opts(Some(&ca))).unwrap_err();
    let (text, debug) = (err.to_string(), format!("{err:?}"));
    assert!(text.contains("http://jf:****@127.0.0.1"), "{text}");
    assert!(
        !text.contains("Wr0ngHorse") && !debug.contains("Wr0ngHorse"),
        "{debug}"
    );

    let right = via_proxy(&squid.url_with_credentials("jf", "Corr3ctHorse"), None);
    let got = fetch_resource_with(&res, cache.path(), &right, &opts(Some(&ca)))
        .expect("authenticated download");
    assert_eq!(std::fs::read(got).unwrap(), b"authorised");
}

#[test]
fn plain_http_goes_through_tinyproxy() {
    if !have_tools("tinyproxy", &["lighttpd", "tinyproxy"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    serve(root.path(), "t.txt", b"tiny");
    let web = Lighttpd::start(root.path(), None);
    let proxy = Tinyproxy::start();
    let cache = tempfile::tempdir().unwrap();
    fetch_resource_with(
        &resource(&web.url("/files/t.txt"), &sha256(b"tiny")),
        cache.path(),
        &via_proxy(&proxy.url(), None),
        &opts(None),
    )
    .expect("download through tinyproxy");
    assert!(
        proxy.log().contains(&format!("127.0.0.1:{}", web.port)),
        "{}",
        proxy.log()
    );
}

/// The second fetch must come from the cache: the server is gone by then.
#[test]
fn cached_resource_needs_no_server() {
    if !have_tools("cache_hit", &["lighttpd"]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    serve(root.path(), "c.bin", b"cache me");
    let web = Lighttpd::start(root.path(), None);
    let res = resource(&web.url("/files/c.bin"), &sha256(b"cache me"));
    let cache = tempfile::tempdir().unwrap();
    let first = fetch_resource_with(&res, cache.path(), &Direct::default(), &opts(None)).unwrap();
    drop(web);
    let second =
        fetch_resource_with(&res, cache.path(), &Direct { offline: true }, &opts(None)).unwrap();
    assert_eq!(first, second);
}

#[test]
fn offline_with_an_empty_cache_names_the_missing_resource() {
    let cache = tempfile::tempdir().unwrap();
    let mut res = resource("https://downloads.example/cudnn.tar.xz", &"ab".repeat(32));
    res.name = "cudnn".into();
    let policy = NetPolicy {
        offline: true,
        ..NetPolicy::default()
    };
    let err = fetch_resource_with(&res, cache.path(), &policy, &opts(None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resource `cudnn` is missing from the cache and jetforge is offline"),
        "{err}"
    );
    assert!(
        err.contains("missing: https://downloads.example/cudnn.tar.xz"),
        "{err}"
    );
}

/// A mirror to a local directory works even offline: `file://` is not the network.
#[test]
fn mirror_rewrites_to_a_local_directory() {
    let mirror = tempfile::tempdir().unwrap();
    std::fs::write(mirror.path().join("m.bin"), b"mirrored").unwrap();
    let mirrors = Mirrors(BTreeMap::from([(
        "https://downloads.example/".to_string(),
        format!("file://{}/", mirror.path().display()),
    )]));
    let policy = NetPolicy {
        mirrors,
        offline: true,
        ..NetPolicy::default()
    };
    let cache = tempfile::tempdir().unwrap();
    let res = resource("https://downloads.example/m.bin", &sha256(b"mirrored"));
    let got = fetch_resource_with(&res, cache.path(), &policy, &opts(None)).unwrap();
    assert_eq!(got.file_name().unwrap(), "m.bin");
    assert_eq!(std::fs::read(got).unwrap(), b"mirrored");
}

/// Files of the fixture archives: `top/a.txt` and `top/sub/b.txt`.
const A: &[u8] = b"alpha";
const B: &[u8] = b"beta";

fn tar_bytes() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [("top/a.txt", A), ("top/sub/b.txt", B)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn tar_gz() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&tar_bytes()).unwrap();
    e.finish().unwrap()
}

fn tar_xz() -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(&tar_bytes()).unwrap();
    e.finish().unwrap()
}

fn zip_bytes() -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    for (path, data) in [("top/a.txt", A), ("top/sub/b.txt", B)] {
        z.start_file(path, o).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

#[test]
fn extracts_tar_gz_tar_xz_and_zip_by_name_or_magic() {
    let src = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // `.bin`: nothing in the name says xz, so the magic bytes must.
    for (name, bytes) in [
        ("a.tar.gz", tar_gz()),
        ("b.tgz", tar_gz()),
        ("c.tar.xz", tar_xz()),
        ("d.bin", tar_xz()),
        ("e.zip", zip_bytes()),
    ] {
        let path = src.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let mut res = resource(&format!("file://{}", path.display()), &sha256(&bytes));
        res.extract = true;
        res.subdir = Some("top".into());
        let dir = fetch_resource_with(&res, cache.path(), &Direct::default(), &opts(None))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), A, "{name}");
        assert_eq!(std::fs::read(dir.join("sub/b.txt")).unwrap(), B, "{name}");
        assert!(dir.ends_with("extracted/top"), "{dir:?}");
    }
}

#[test]
fn missing_subdir_lists_what_the_archive_holds() {
    let src = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bytes = tar_gz();
    let path = src.path().join("a.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    let mut res = resource(&format!("file://{}", path.display()), &sha256(&bytes));
    res.extract = true;
    res.subdir = Some("llvm-17".into());
    let err = fetch_resource_with(&res, cache.path(), &Direct::default(), &opts(None)).unwrap_err();
    let err = jetforge::error::render(&jetforge::error::typed(err));
    assert!(
        err.contains("subdir `llvm-17`") && err.contains("holds: top"),
        "{err}"
    );
}

/// The harness's git smart-HTTP server is what the git tests build on: check it clones over TLS.
#[test]
fn harness_lighttpd_serves_git_over_https() {
    if !have_tools("harness_git", &["openssl", "lighttpd", "git"]) {
        return;
    }
    let ca = TestCa::new();
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("git/repo.git");
    crate::support::run(
        std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&bare),
    );
    let web = Lighttpd::start(root.path(), Some(&ca));
    let out = crate::support::run(
        std::process::Command::new("git")
            .args(["ls-remote", &web.url("/git/repo.git")])
            .env("GIT_SSL_CAINFO", ca.ca_pem()),
    );
    assert_eq!(out, "", "an empty repository lists no refs");
}
