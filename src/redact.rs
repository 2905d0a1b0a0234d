//! Masks secrets before anything is printed: the password in `scheme://user:pass@host` URLs
//! (proxies, package indexes), wherever such a URL appears inside a larger text.

/// Replaces the password of every `scheme://user:password@` in `text` with `****`. A URL with a
/// user name but no password (a token used as the user) has the user masked instead.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                c.is_whitespace()
                    || matches!(c, '/' | '"' | '\'' | '<' | '>' | ',' | ';' | '?' | '#')
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:****")),
                    None => out.push_str("****"),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
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
    fn masks_every_url() {
        assert_eq!(
            redact("a=http://x:1@h b=https://y:2@g"),
            "a=http://x:****@h b=https://y:****@g"
        );
    }
}
