//! Masks secrets before anything is printed or logged: the password in `scheme://user:pass@host`
//! URLs (proxies, package indexes), wherever such a URL appears inside a larger text, and the
//! secrets jetforge knows of (proxy and index credentials from the config, the environment and
//! the command line, see [`register`]) wherever they appear on their own.

use std::sync::{Mutex, PoisonError};

/// Secrets shorter than this are masked only inside URLs: masking every `ab` in a log would
/// garble it and reveal the secret by where the holes are.
const MIN_KNOWN_SECRET: usize = 4;

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers `secret` so that [`redact`] masks it wherever it appears (a password printed on its
/// own by a build step, quoted in an error). A URL registers the credentials it carries (the
/// password, or a user name used as a token), raw and percent-decoded; any other text registers
/// itself.
pub fn register(secret: &str) {
    let mut found = Vec::new();
    if secret.contains("://") {
        let mut rest = secret;
        while let Some(pos) = rest.find("://") {
            let tail = &rest[pos + 3..];
            let (userinfo, next) = userinfo_of(tail);
            if let Some(info) = userinfo {
                let cred = info.split_once(':').map_or(info, |(_, pass)| pass);
                found.push(cred.to_string());
                found.push(percent_decode(cred));
            }
            rest = next;
        }
    } else {
        found.push(secret.to_string());
    }
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    for s in found {
        if s.len() >= MIN_KNOWN_SECRET && !known.contains(&s) {
            known.push(s);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the credentials of the environment jetforge runs in: the proxy variables and the
/// index password and token.
pub fn register_from_env() {
    for key in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "UV_INDEX_URL",
    ] {
        if let Ok(v) = std::env::var(key) {
            register(&v);
        }
    }
    for key in [
        crate::envvars::JETFORGE_INDEX_PASSWORD,
        crate::envvars::JETFORGE_INDEX_TOKEN,
    ] {
        if let Ok(v) = std::env::var(key) {
            register(v.trim());
        }
    }
}

/// The userinfo of the authority starting `tail` (just after `://`), and the text after the
/// authority.
fn userinfo_of(tail: &str) -> (Option<&str>, &str) {
    let end = tail
        .find(|c: char| {
            c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '<' | '>' | ',' | ';' | '?' | '#')
        })
        .unwrap_or(tail.len());
    let authority = &tail[..end];
    (
        authority.rfind('@').map(|at| &authority[..at]),
        &tail[end..],
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// [`redact_urls`], then every registered secret replaced with `****`.
pub fn redact(text: &str) -> String {
    let mut out = redact_urls(text);
    let known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    for s in known.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "****");
        }
    }
    out
}

/// Replaces the password of every `scheme://user:password@` in `text` with `****`. A URL with a
/// user name but no password (a token used as the user) has the user masked instead.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let (userinfo, next) = userinfo_of(tail);
        let authority = &tail[..tail.len() - next.len()];
        match userinfo {
            Some(info) => {
                match info.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:****")),
                    None => out.push_str("****"),
                }
                out.push_str(&authority[info.len()..]);
            }
            None => out.push_str(authority),
        }
        rest = next;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn masks_passwords_in_urls() {
        assert_eq!(
            redact("http://bob:s3cr3t@proxy:3128"),
            "http://bob:****@proxy:3128"
        );
        assert_eq!(
            redact("export https_proxy='http://u:p%40ss@10.0.0.1:8080/' x"),
            "export https_proxy='http://u:****@10.0.0.1:8080/' x"
        );
        assert_eq!(
            redact("https://tok3n@index/simple"),
            "https://****@index/simple"
        );
    }

    #[test]
    fn leaves_plain_urls_and_text_alone() {
        let s = "git clone https://github.com/pytorch/pytorch; mail me@host";
        assert_eq!(redact(s), s);
        assert_eq!(redact("no url"), "no url");
    }

    #[test]
    fn masks_registered_secrets_on_their_own() {
        super::register("http://bob:pr%40xyS3cret@proxy:3128");
        super::register("t0kenVALUE");
        super::register("ab");
        assert_eq!(
            redact("pw pr%40xyS3cret / pr@xyS3cret, tok t0kenVALUE, ab"),
            "pw **** / ****, tok ****, ab"
        );
    }

    #[test]
    fn masks_every_url() {
        assert_eq!(
            redact("a=http://x:1@h b=https://y:2@g"),
            "a=http://x:****@h b=https://y:****@g"
        );
    }
}
