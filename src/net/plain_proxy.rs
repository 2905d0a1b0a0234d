//! HTTP through a plain (`http://`) proxy the way such proxies expect it, where ureq cannot:
//! ureq 3 tunnels every request with CONNECT, also for `http://` targets, and a stock squid
//! allows CONNECT only to port 443 (403 otherwise). For `http://` URLs the proxy wants the
//! request itself, with the absolute URI: `GET http://host/path HTTP/1.1`. So does every
//! browser and curl.
//!
//! Also asks a proxy whether it takes our credentials, so a fetch that failed with a tool's
//! vague message (git's `could not read Username`, libgit2's `http parser error`) can say
//! "the proxy refused the credentials (407)" instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A question asked only to explain an error must not make the error take long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_REDIRECTS: usize = 10;

/// Why a request through the proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyGetError {
    #[error("http status: {0}")]
    Status(u16),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// The status, the headers (lower-case names) and the stream positioned at the body.
type Answer = (u16, Vec<(String, String)>, BufReader<TcpStream>);

/// The parts of an `http://` proxy URL a request needs.
struct Proxy {
    host: String,
    port: u16,
    /// `Basic …` for `Proxy-Authorization`, when the URL has a user.
    auth: Option<String>,
}

impl Proxy {
    /// None for proxies this module does not speak to (https or SOCKS proxies).
    fn parse(url: &str) -> Option<Proxy> {
        let rest = url.strip_prefix("http://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport, 80)?;
        let auth = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let plain = format!("{}:{}", percent_decode(user), percent_decode(pass));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(plain)
            )
        });
        Some(Proxy { host, port, auth })
    }

    fn connect(&self, timeout: Duration) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout.min(CONNECT_TIMEOUT)) {
                Ok(s) => {
                    s.set_read_timeout(Some(timeout))?;
                    s.set_write_timeout(Some(timeout))?;
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the proxy's name has no address",
            )
        }))
    }

    /// Sends `request_line` with our headers and reads the answer's head.
    fn send(
        &self,
        request_line: &str,
        host: &str,
        timeout: Duration,
    ) -> Result<Answer, ProxyGetError> {
        let mut stream = self.connect(timeout)?;
        let mut head = format!(
            "{request_line}\r\nHost: {host}\r\nUser-Agent: jetforge/{}\r\nAccept: */*\r\n\
             Connection: close\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(auth) = &self.auth {
            head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                ProxyGetError::Protocol(format!(
                    "the proxy sent no HTTP status line (got `{}`)",
                    status_line.trim()
                ))
            })?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        Ok((status, headers, reader))
    }
}

/// True when `url` should go through `proxy` with [`get`] rather than ureq: an `http://` URL
/// and a plain `http://` proxy.
pub fn handles(proxy: &str, url: &str) -> bool {
    url.starts_with("http://") && Proxy::parse(proxy).is_some()
}

/// GET `url` (http) through the plain proxy `proxy`, following redirects that stay on http;
/// returns the body. A redirect to https comes back as `Redirect` for the caller's client.
pub fn get(proxy: &str, url: &str) -> Result<Fetched, ProxyGetError> {
    let p = Proxy::parse(proxy)
        .ok_or_else(|| ProxyGetError::Protocol("not a plain http:// proxy".into()))?;
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let Some(rest) = url.strip_prefix("http://") else {
            return Ok(Fetched::Redirect(url));
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or("").to_string();
        let target = url.split('#').next().unwrap_or(&url).to_string();
        let (status, headers, reader) =
            p.send(&format!("GET {target} HTTP/1.1"), &host, READ_TIMEOUT)?;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if (300..400).contains(&status) {
            let location = header("location").ok_or(ProxyGetError::Status(status))?;
            url = if location.contains("://") {
                location
            } else if location.starts_with('/') {
                format!("http://{host}{location}")
            } else {
                return Err(ProxyGetError::Protocol(format!(
                    "unsupported redirect to `{location}`"
                )));
            };
            continue;
        }
        if status >= 400 {
            return Err(ProxyGetError::Status(status));
        }
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let body: Box<dyn Read + Send> = if chunked {
            Box::new(Chunked {
                inner: reader,
                left: 0,
                done: false,
            })
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
            Box::new(reader.take(len))
        } else {
            // `Connection: close`: the body ends with the connection.
            Box::new(reader)
        };
        return Ok(Fetched::Body(body));
    }
    Err(ProxyGetError::Protocol(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// What [`get`] got.
pub enum Fetched {
    Body(Box<dyn Read + Send>),
    /// Redirected to a URL that is not plain http.
    Redirect(String),
}

/// Whether the plain proxy `proxy` answers 407 (Proxy Authentication Required) to a request
/// for `url` made with the proxy URL's own credentials. False when it cannot tell.
pub fn refuses_credentials(proxy: &str, url: &str) -> bool {
    let Some(p) = Proxy::parse(proxy) else {
        return false;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let line = match scheme {
        "https" => {
            let Some((host, port)) = split_host_port(hostport, 443) else {
                return false;
            };
            format!("CONNECT {host}:{port} HTTP/1.1")
        }
        // HEAD: the answer is all we want, not the body.
        "http" => format!("HEAD {url} HTTP/1.1"),
        _ => return false,
    };
    matches!(p.send(&line, hostport, PROBE_TIMEOUT), Ok((407, _, _)))
}

/// `host[:port]`, IPv6 in brackets.
fn split_host_port(s: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None if !s.is_empty() => Some((s.to_string(), default)),
        None => None,
    }
}

/// `%40` → `@`: credentials in URLs are percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A chunked transfer-encoded body.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad chunk size `{}`", line.trim()),
                )
            })?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_and_credentials() {
        let p = Proxy::parse("http://u%40corp:p%3Aw@proxy:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        let expected = base64::engine::general_purpose::STANDARD.encode("u@corp:p:w");
        assert_eq!(p.auth, Some(format!("Basic {expected}")));
        assert_eq!(Proxy::parse("http://proxy").unwrap().port, 80);
        assert!(Proxy::parse("socks5://proxy:1080").is_none());
        assert!(handles("http://p:3128", "http://example.org/x"));
        assert!(!handles("http://p:3128", "https://example.org/x"));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n";
        let mut body = String::new();
        Chunked {
            inner: &raw[..],
            left: 0,
            done: false,
        }
        .read_to_string(&mut body)
        .unwrap();
        assert_eq!(body, "Wikipedia");
    }
}
