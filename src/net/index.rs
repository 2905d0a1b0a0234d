//! Package indexes over HTTP: reading PEP 503 project pages, downloading files with their
//! sha256 checked, uploading through the legacy upload API. The remote wheel caches that
//! `build` consults (`[cache] indexes`, `--cache-from`) use this client from
//! `wheelhouse::remote`.
//!
//! Every request goes through the [`UrlPolicy`] (mirrors, proxy per URL, offline) and the
//! shared agent of `net::http`. Redirects are not followed when reading pages: pypiserver
//! answers a project it lacks with a redirect to pypi.org, whose files of the same name are
//! not ours. Deciding what to publish and where the wheels go locally is not done here.
//!
//! Size: about 536 lines, of which 79 are the unit tests beside the code (457 of code).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::http::{self, AgentError, AgentOptions};
use super::{FetchOptions, UrlPolicy};
use crate::redact::redact;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url}: HTTP {code}{body}")]
    Status {
        url: String,
        code: u16,
        body: String,
    },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: not fetched, jetforge is offline")]
    Offline { url: String },
    #[error(
        "sha256 mismatch for {url}\n  expected sha256: {expected}\n  actual sha256:   {actual}"
    )]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("failed to {what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{url}: {source}")]
    Agent { url: String, source: AgentError },
}

/// A file linked from a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub file: String,
    /// Absolute URL, without the hash fragment.
    pub url: String,
    /// From the link's `#sha256=` fragment, when the index gives one.
    pub sha256: Option<String>,
}

/// Basic-auth credentials for uploads. Debug output never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:****)", self.user)
    }
}

/// The fields of one legacy-API upload.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub path: &'a Path,
    pub file: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    /// `cp311`, or `py3` for pure wheels.
    pub pyversion: &'a str,
    pub sha256: &'a str,
}

/// What the index said to an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    Created,
    /// 409 Conflict: a file of that name is already there (maybe with other bytes).
    Exists,
}

/// The index root for a URL given by the user: the URL itself, or the parent of a `simple/`
/// URL.
pub fn root_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    match trimmed.strip_suffix("/simple") {
        Some(root) => format!("{root}/"),
        None => format!("{trimmed}/"),
    }
}

/// The PEP 503 simple URL of an index root or upload URL (`<url>/simple/`), unless the URL is
/// one already.
pub fn simple_url(url: &str) -> String {
    format!("{}simple/", root_url(url))
}

/// Resolves a link of a page at `base` as a browser would (RFC 3986); a base that is no URL
/// leaves the link as it is.
pub fn join_url(base: &str, href: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(href)) {
        Ok(u) => u.to_string(),
        Err(_) => href.to_string(),
    }
}

/// The `<a>` links of a PEP 503 page: the anchor text is the file name.
pub fn parse_links(page: &str, base: &str) -> Vec<RemoteFile> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = find_ci(rest, "<a ") {
        rest = &rest[start + 3..];
        let Some(tag_end) = rest.find('>') else { break };
        let attrs = &rest[..tag_end];
        let body = &rest[tag_end + 1..];
        let text_end = find_ci(body, "</a>").unwrap_or(body.len());
        let text = unescape(body[..text_end].trim());
        rest = &body[text_end..];
        let Some(href) = attribute(attrs, "href") else {
            continue;
        };
        let href = unescape(&href);
        let (link, fragment) = href.split_once('#').unwrap_or((&href, ""));
        let sha256 = fragment
            .strip_prefix("sha256=")
            .map(|h| h.to_ascii_lowercase());
        let file = if text.is_empty() {
            link.rsplit('/').next().unwrap_or_default().to_string()
        } else {
            text
        };
        out.push(RemoteFile {
            file,
            url: join_url(base, link),
            sha256,
        });
    }
    out
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.to_ascii_lowercase().find(needle)
}

fn attribute(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let value = &attrs[at..];
    let quote = value.chars().next()?;
    if quote == '"' || quote == '\'' {
        let end = value[1..].find(quote)?;
        Some(value[1..1 + end].to_string())
    } else {
        Some(value.split_whitespace().next()?.to_string())
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// One failed try: the error, and whether trying again may help.
struct Failure {
    error: RemoteError,
    transient: bool,
}

/// HTTP access to indexes, with retries and the network policy.
pub struct IndexClient<'a> {
    policy: &'a dyn UrlPolicy,
    opts: FetchOptions,
}

impl<'a> IndexClient<'a> {
    pub fn new(policy: &'a dyn UrlPolicy, opts: FetchOptions) -> Self {
        IndexClient { policy, opts }
    }

    pub fn offline(&self) -> bool {
        self.policy.offline()
    }

    /// The body of `url`, or None when the index does not have it (404, 410, or a redirect
    /// elsewhere).
    pub fn get(&self, url: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        self.with_retries(url, |agent, url| {
            let response = agent.get(url).call().map_err(|e| classify(url, e))?;
            let code = response.status().as_u16();
            if matches!(code, 404 | 410) || (300..400).contains(&code) {
                return Ok(None);
            }
            if code >= 400 {
                return Err(status_failure(url, code, response));
            }
            let mut body = Vec::new();
            response
                .into_body()
                .into_reader()
                .read_to_end(&mut body)
                .map_err(|e| read_failure(url, e))?;
            Ok(Some(body))
        })
    }

    /// The files on `simple/<project>/`, or None when the index has no such project.
    pub fn project_files(
        &self,
        simple: &str,
        project: &str,
    ) -> Result<Option<Vec<RemoteFile>>, RemoteError> {
        let url = format!("{simple}{}/", crate::pkgname::normalize(project));
        Ok(self
            .get(&url)?
            .map(|page| parse_links(&String::from_utf8_lossy(&page), &url)))
    }

    /// Downloads `url` into `dir/<file>`, checking its sha256; a mismatch leaves nothing.
    pub fn download(
        &self,
        url: &str,
        file: &str,
        sha256: &str,
        dir: &Path,
    ) -> Result<PathBuf, RemoteError> {
        let io_err = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| RemoteError::Io { what, path, source }
        };
        let (tmp, actual) = self.with_retries(url, |agent, url| {
            let mut tmp = tempfile::Builder::new()
                .prefix(".download-")
                .tempfile_in(dir)
                .map_err(|e| Failure {
                    error: io_err("create a temp file in", dir)(e),
                    transient: false,
                })?;
            let response = agent.get(url).call().map_err(|e| classify(url, e))?;
            let code = response.status().as_u16();
            if code >= 300 {
                return Err(status_failure(url, code, response));
            }
            let mut body = response.into_body().into_reader();
            let hash = crate::hash::copy_hashing(&mut body, tmp.as_file_mut())
                .map_err(|e| read_failure(url, e))?;
            Ok((tmp, hash))
        })?;
        if !actual.eq_ignore_ascii_case(sha256) {
            return Err(RemoteError::Checksum {
                url: redact(url),
                expected: sha256.to_ascii_lowercase(),
                actual,
            });
        }
        let dest = dir.join(file);
        tmp.persist(&dest)
            .map_err(|e| io_err("move download into place", &dest)(e.error))?;
        Ok(dest)
    }

    /// Uploads one file through the legacy API (multipart `file_upload`).
    pub fn upload(
        &self,
        url: &str,
        credentials: Option<&Credentials>,
        u: &Upload,
    ) -> Result<Uploaded, RemoteError> {
        self.with_retries(url, |agent, url| {
            let boundary = format!("jetforge-{}", u.sha256);
            let (head, tail) = multipart_frame(&boundary, u);
            let size = std::fs::metadata(u.path)
                .map_err(|e| Failure {
                    error: RemoteError::Io {
                        what: "read",
                        path: u.path.to_path_buf(),
                        source: e,
                    },
                    transient: false,
                })?
                .len();
            let file = File::open(u.path).map_err(|e| Failure {
                error: RemoteError::Io {
                    what: "open",
                    path: u.path.to_path_buf(),
                    source: e,
                },
                transient: false,
            })?;
            let length = head.len() as u64 + size + tail.len() as u64;
            let mut body = io::Cursor::new(head)
                .chain(file)
                .chain(io::Cursor::new(tail));
            let mut request = agent
                .post(url)
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                // Streams the file with its length: WSGI servers often reject chunked bodies.
                .header("Content-Length", length.to_string());
            if let Some(c) = credentials {
                request = request.header("Authorization", basic_auth(c));
            }
            let response = request
                .send(ureq::SendBody::from_reader(&mut body))
                .map_err(|e| classify(url, e))?;
            match response.status().as_u16() {
                200..=299 => Ok(Uploaded::Created),
                409 => Ok(Uploaded::Exists),
                code => Err(status_failure(url, code, response)),
            }
        })
    }

    fn with_retries<T>(
        &self,
        url: &str,
        mut attempt: impl FnMut(&ureq::Agent, &str) -> Result<T, Failure>,
    ) -> Result<T, RemoteError> {
        let url = self.policy.rewrite(url);
        if self.policy.offline() && !url.starts_with("file://") {
            return Err(RemoteError::Offline { url: redact(&url) });
        }
        let proxy = self.policy.proxy_for(&url);
        let agent = http::agent(&AgentOptions {
            proxy: proxy.as_deref(),
            ca_file: self.opts.ca_file.as_deref(),
            follow_redirects: false,
            statuses_as_responses: true,
        })
        .map_err(|source| RemoteError::Agent {
            url: redact(&url),
            source,
        })?;
        self.opts
            .retry(|| attempt(&agent, &url), |f| f.transient)
            .map_err(|(f, _)| f.error)
    }
}

fn classify(url: &str, e: ureq::Error) -> Failure {
    use ureq::Error as E;
    let transient = matches!(
        &e,
        E::Io(_) | E::Timeout(_) | E::ConnectionFailed | E::BodyStalled
    );
    Failure {
        error: RemoteError::Transport {
            url: redact(url),
            // ureq's messages may quote the proxy URL; never let its password through.
            reason: redact(&e.to_string()),
        },
        transient,
    }
}

fn status_failure(url: &str, code: u16, response: ureq::http::Response<ureq::Body>) -> Failure {
    let mut text = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(4096)
        .read_to_string(&mut text);
    let first = text
        .lines()
        .map(strip_tags)
        .find(|l| !l.is_empty() && !l.eq_ignore_ascii_case("error"))
        .unwrap_or_default();
    Failure {
        error: RemoteError::Status {
            url: redact(url),
            code,
            body: if first.is_empty() {
                String::new()
            } else {
                format!(": {}", redact(&first))
            },
        },
        transient: code >= 500 || matches!(code, 408 | 429),
    }
}

fn strip_tags(line: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in line.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn read_failure(url: &str, e: io::Error) -> Failure {
    Failure {
        error: RemoteError::Transport {
            url: redact(url),
            reason: format!("reading the body failed: {e}"),
        },
        transient: true,
    }
}

fn basic_auth(c: &Credentials) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", c.user, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The multipart text before and after the file's bytes.
fn multipart_frame(boundary: &str, u: &Upload) -> (Vec<u8>, Vec<u8>) {
    let mut head = String::new();
    let fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", u.name),
        ("version", u.version),
        ("filetype", "bdist_wheel"),
        ("pyversion", u.pyversion),
        ("sha256_digest", u.sha256),
    ];
    for (name, value) in fields {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        u.file
    ));
    (
        head.into_bytes(),
        format!("\r\n--{boundary}--\r\n").into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_root_urls() {
        assert_eq!(simple_url("http://h:1"), "http://h:1/simple/");
        assert_eq!(simple_url("http://h:1/"), "http://h:1/simple/");
        assert_eq!(simple_url("http://h/simple"), "http://h/simple/");
        assert_eq!(root_url("http://h/a/simple/"), "http://h/a/");
    }

    #[test]
    fn links_resolve_like_a_browser() {
        let base = "http://h:1/simple/first/";
        assert_eq!(join_url(base, "../../f.whl"), "http://h:1/f.whl");
        assert_eq!(
            join_url(base, "/packages/f.whl"),
            "http://h:1/packages/f.whl"
        );
        assert_eq!(join_url(base, "f.whl"), "http://h:1/simple/first/f.whl");
        assert_eq!(join_url(base, "https://cdn/x.whl"), "https://cdn/x.whl");
        assert_eq!(join_url(base, "//cdn/x.whl"), "http://cdn/x.whl");
    }

    #[test]
    fn parses_pypiserver_and_static_pages() {
        let page = r#"<html><body><h1>Links</h1>
            <a href="/packages/first-1.0-py3-none-any.whl#sha256=ABC">first-1.0-py3-none-any.whl</a><br>
            <A HREF='../../x+y-1.0-py3-none-any.whl'>x+y-1.0-py3-none-any.whl</A>
            </body></html>"#;
        let links = parse_links(page, "http://h/simple/first/");
        assert_eq!(
            links,
            [
                RemoteFile {
                    file: "first-1.0-py3-none-any.whl".into(),
                    url: "http://h/packages/first-1.0-py3-none-any.whl".into(),
                    sha256: Some("abc".into()),
                },
                RemoteFile {
                    file: "x+y-1.0-py3-none-any.whl".into(),
                    url: "http://h/x+y-1.0-py3-none-any.whl".into(),
                    sha256: None,
                },
            ]
        );
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let c = Credentials {
            user: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(basic_auth(&c), "Basic dTpzM2NyZXQ=");
    }

    #[test]
    fn multipart_carries_the_hash_and_the_file_name() {
        let u = Upload {
            path: Path::new("x"),
            file: "a-1-py3-none-any.whl",
            name: "a",
            version: "1",
            pyversion: "py3",
            sha256: "ff",
        };
        let (head, tail) = multipart_frame("B", &u);
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.contains("name=\"sha256_digest\"\r\n\r\nff\r\n"),
            "{head}"
        );
        assert!(head.contains("filename=\"a-1-py3-none-any.whl\""), "{head}");
        assert_eq!(tail, b"\r\n--B--\r\n");
    }
}
