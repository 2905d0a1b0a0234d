//! Which git URLs name the same repository: `X` and `X.git`, a trailing `/`, the host in any
//! case, and on GitHub (whose owner and repository names are case-insensitive) the path in any
//! case. `[mirrors]` matching and the mirror cache's keys both go through here, so a submodule
//! written `https://github.com/nvidia/cutlass.git` finds the mirror of
//! `https://github.com/NVIDIA/cutlass`.

/// Hosts whose repository paths are case-insensitive.
const CASE_INSENSITIVE_PATHS: &[&str] = &["github.com", "www.github.com"];

/// `url` with the scheme and host lower-cased (and the path too on [`CASE_INSENSITIVE_PATHS`]).
/// Credentials and everything else are kept as written; a path or scp-like URL is unchanged.
pub fn fold_case(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let host = host.to_ascii_lowercase();
    let bare_host = host.split(':').next().unwrap_or_default();
    let path = if CASE_INSENSITIVE_PATHS.contains(&bare_host) {
        path.to_ascii_lowercase()
    } else {
        path.to_string()
    };
    format!("{}://{user}{host}{path}", scheme.to_ascii_lowercase())
}

/// The repository's identity: [`fold_case`], without a trailing `/` or `.git`.
pub fn repo_key(url: &str) -> String {
    let folded = fold_case(url);
    let t = folded.trim_end_matches('/');
    t.strip_suffix(".git").unwrap_or(t).to_string()
}

/// Where `url` goes under the prefix rewrite `from` → `to`, when `from` matches: as a plain
/// prefix (case folded as in [`fold_case`]), where `X.git` counts as `X` (the rest `.git` is
/// dropped: the mirror is the repository itself, not `<mirror>.git`), and `X` as `X.git`.
pub fn rewrite_prefix(url: &str, from: &str, to: &str) -> Option<String> {
    let (u, f) = (fold_case(url), fold_case(from));
    if let Some(rest) = u.strip_prefix(&f) {
        let rest = if f.ends_with('/') {
            rest
        } else {
            // `X` must not turn `X.git` into `<mirror>.git`.
            rest.strip_prefix(".git")
                .filter(|r| r.is_empty() || r.starts_with('/'))
                .unwrap_or(rest)
        };
        // The rest keeps the case it was written in (only the matched prefix was folded).
        let rest = &url[url.len() - rest.len()..];
        return Some(format!("{to}{rest}"));
    }
    (f.ends_with(".git") && repo_key(url) == repo_key(from)).then(|| to.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_and_x_git_and_host_case_are_one_repository() {
        let k = repo_key("https://github.com/NVIDIA/cutlass");
        for u in [
            "https://github.com/NVIDIA/cutlass.git",
            "https://github.com/nvidia/cutlass.git",
            "https://GitHub.com/NVIDIA/cutlass/",
            "HTTPS://github.com/NVIDIA/cutlass.git/",
        ] {
            assert_eq!(repo_key(u), k, "{u}");
        }
        // Only GitHub's paths are known to be case-insensitive.
        assert_ne!(
            repo_key("https://git.corp/Team/x"),
            repo_key("https://git.corp/team/x")
        );
        assert_eq!(
            repo_key("https://GIT.corp/Team/x.git"),
            repo_key("https://git.corp/Team/x")
        );
        assert_ne!(
            repo_key("https://github.com/NVIDIA/cutlass-extra"),
            k,
            "another repository"
        );
    }

    #[test]
    fn a_mirror_of_x_serves_x_git_as_itself() {
        let to = "file:///srv/mirrors/cutlass.git";
        let r = |u| rewrite_prefix(u, "https://github.com/NVIDIA/cutlass", to);
        assert_eq!(r("https://github.com/NVIDIA/cutlass").as_deref(), Some(to));
        assert_eq!(
            r("https://github.com/NVIDIA/cutlass.git").as_deref(),
            Some(to)
        );
        assert_eq!(
            r("https://github.com/nvidia/cutlass.git").as_deref(),
            Some(to)
        );
        assert_eq!(
            r("https://GITHUB.COM/NVIDIA/cutlass/").as_deref(),
            Some("file:///srv/mirrors/cutlass.git/")
        );
        assert_eq!(r("https://github.com/NVIDIA/other"), None);
        // A key written with `.git` serves the URL without it.
        let g = |u| rewrite_prefix(u, "https://github.com/NVIDIA/cutlass.git", to);
        assert_eq!(g("https://github.com/NVIDIA/cutlass").as_deref(), Some(to));
        assert_eq!(
            g("https://github.com/NVIDIA/cutlass.git").as_deref(),
            Some(to)
        );
    }

    #[test]
    fn directory_prefixes_keep_the_rest_as_written() {
        let r = |u| rewrite_prefix(u, "https://github.com/", "https://git.corp/gh/");
        assert_eq!(
            r("https://GitHub.com/NVIDIA/Cutlass.git").as_deref(),
            Some("https://git.corp/gh/NVIDIA/Cutlass.git")
        );
        let other = |u| rewrite_prefix(u, "https://git.corp/Team/", "file:///m/");
        assert_eq!(other("https://git.corp/team/x"), None);
        assert_eq!(
            other("https://GIT.CORP/Team/x").as_deref(),
            Some("file:///m/x")
        );
    }

    #[test]
    fn credentials_and_paths_are_left_alone() {
        assert_eq!(
            fold_case("https://User:PW@Host.Example/Org/X"),
            "https://User:PW@host.example/Org/X"
        );
        assert_eq!(fold_case("/srv/Git/X.git"), "/srv/Git/X.git");
        assert_eq!(fold_case("git@GitHub.com:Org/x"), "git@GitHub.com:Org/x");
    }
}
