//! Which proxy a URL goes through, decided by jetforge itself for every URL (libgit2 and the
//! tools run by build steps disagree on `no_proxy` syntax, so nothing is left to them).
//!
//! Precedence, per setting: the CLI flag (`--proxy`, `--no-proxy`) > `[network]` in the config
//! file > the environment. From the environment an `https://` URL uses `https_proxy`, an
//! `http://` URL `http_proxy`, either falls back to `all_proxy`; lower-case names are read
//! first, as curl does. Every decision remembers where it came from, for `plan` and `doctor`.
//!
//! Size: about 556 lines, of which 209 are the unit tests beside the code (347 of code).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::NetworkConfig;
use crate::envvars;
use crate::redact::redact;

/// Where a proxy setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Cli(&'static str),
    ConfigFile(PathBuf),
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Cli(flag) => write!(f, "the {flag} flag"),
            Origin::ConfigFile(p) => write!(f, "config file {}", p.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid proxy URL `{url}` (from {origin}): {reason}")]
pub struct InvalidProxy {
    /// Redacted.
    pub url: String,
    pub origin: Origin,
    pub reason: String,
}

/// A proxy URL (normalised, credentials included) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub url: String,
    pub origin: Origin,
}

/// The resolved proxy configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    pub http: Option<ProxyUrl>,
    pub https: Option<ProxyUrl>,
    pub no_proxy: NoProxy,
    pub no_proxy_origin: Option<Origin>,
}

impl ProxySettings {
    /// Applies the precedence described in the module docs. `env` looks up an environment
    /// variable (injected so tests never touch the real environment); empty values count as unset.
    pub fn resolve(
        cli_proxy: Option<&str>,
        cli_no_proxy: Option<&str>,
        network: &NetworkConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxySettings, InvalidProxy> {
        let env_first = |names: &[&'static str]| {
            names.iter().find_map(|n| {
                env(n)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v, Origin::Env(n)))
            })
        };
        let fixed = cli_proxy
            .map(|p| (p.to_string(), Origin::Cli("--proxy")))
            .or_else(|| {
                let s = network.proxy.as_ref()?;
                Some((s.value.clone(), Origin::ConfigFile(s.file.clone())))
            });
        let pick = |scheme_vars: [&'static str; 2]| {
            let all: Vec<&'static str> =
                scheme_vars.into_iter().chain(envvars::ALL_PROXY).collect();
            fixed.clone().or_else(|| env_first(&all))
        };
        let no_proxy = cli_no_proxy
            .map(|v| (v.to_string(), Origin::Cli("--no-proxy")))
            .or_else(|| {
                let s = network.no_proxy.as_ref()?;
                Some((s.value.clone(), Origin::ConfigFile(s.file.clone())))
            })
            .or_else(|| env_first(&envvars::NO_PROXY));
        Ok(ProxySettings {
            http: pick(envvars::HTTP_PROXY).map(normalize).transpose()?,
            https: pick(envvars::HTTPS_PROXY).map(normalize).transpose()?,
            no_proxy: no_proxy
                .as_ref()
                .map(|(v, _)| NoProxy::parse(v))
                .unwrap_or_default(),
            no_proxy_origin: no_proxy.map(|(_, o)| o),
        })
    }

    /// The proxy `url` goes through, or None for a direct connection (also for schemes other
    /// than http and https, such as `file://`).
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        let target = Target::parse(url)?;
        let proxy = match target.scheme.as_str() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        (!self.no_proxy.matches(&target.host, target.port)).then(|| proxy.url.clone())
    }

    /// Variables for build steps, so pip, curl and CMake downloads follow the same decision.
    /// Both spellings are set because tools disagree on which one they read.
    pub fn export_env(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut both = |names: [&str; 2], value: &str| {
            for n in names {
                out.push((n.to_string(), value.to_string()));
            }
        };
        if let Some(p) = &self.http {
            both(envvars::HTTP_PROXY, &p.url);
        }
        if let Some(p) = &self.https {
            both(envvars::HTTPS_PROXY, &p.url);
        }
        if !self.no_proxy.is_empty() {
            both(envvars::NO_PROXY, &self.no_proxy.to_string());
        }
        out
    }

    /// Human-readable lines (credentials masked), e.g. for `plan` and `doctor`.
    pub fn describe(&self) -> Vec<String> {
        let line = |scheme: &str, p: &Option<ProxyUrl>| match p {
            Some(p) => format!("{scheme} proxy: {} (from {})", redact(&p.url), p.origin),
            None => format!("{scheme} proxy: none (direct)"),
        };
        let mut lines = vec![line("http", &self.http), line("https", &self.https)];
        if let Some(origin) = &self.no_proxy_origin {
            lines.push(format!("no_proxy: {} (from {origin})", self.no_proxy));
        }
        lines
    }
}

/// Adds `http://` when the scheme is missing and checks the rest, so a typo fails here, naming
/// its source, rather than as a confusing connection error later.
fn normalize((raw, origin): (String, Origin)) -> Result<ProxyUrl, InvalidProxy> {
    let raw = raw.trim();
    let url = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let invalid = |reason: &str| InvalidProxy {
        url: redact(&url),
        origin: origin.clone(),
        reason: reason.to_string(),
    };
    let target = Target::parse(&url).ok_or_else(|| invalid("cannot parse it as a URL"))?;
    const SCHEMES: &[&str] = &["http", "https", "socks4", "socks4a", "socks5", "socks5h"];
    if !SCHEMES.contains(&target.scheme.as_str()) {
        return Err(invalid(
            "the scheme must be one of http, https, socks4, socks4a, socks5, socks5h",
        ));
    }
    if target.host.is_empty() {
        return Err(invalid("no host name"));
    }
    // `proxy = "not a url"` parses as the host `not a url`: refuse what no host name can hold.
    if let Some(c) = target
        .host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._:%".contains(*c)))
    {
        return Err(invalid(&format!(
            "`{}` is not a host name (it contains {c:?})",
            target.host
        )));
    }
    Ok(ProxyUrl { url, origin })
}

/// Scheme, host and effective port of a URL: all that proxy decisions need.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: String,
    /// Lower case, without brackets for IPv6 and without a trailing dot.
    host: String,
    port: Option<u16>,
}

impl Target {
    fn parse(url: &str) -> Option<Target> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(hostport)?;
        let default_port = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        Some(Target {
            scheme,
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port: port.or(default_port),
        })
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. None when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// A parsed `no_proxy` list (curl semantics, plus CIDR ranges as Python's requests has them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
    /// The entries as written (trimmed), for export to build steps.
    written: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`: nothing goes through the proxy.
    All,
    /// `corp`, `.corp` and `*.corp` all match `corp` and every name below it.
    Domain {
        name: String,
        port: Option<u16>,
    },
    Ip {
        addr: IpAddr,
        port: Option<u16>,
    },
    Cidr {
        net: IpAddr,
        prefix: u8,
    },
}

impl NoProxy {
    /// Unparseable entries are ignored, as curl does, rather than failing every download.
    pub fn parse(list: &str) -> NoProxy {
        let written: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        let entries = written.iter().filter_map(|e| parse_entry(e)).collect();
        NoProxy { entries, written }
    }

    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// True when a request to `host` (lower case, no brackets) on `port` bypasses the proxy.
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let ip: Option<IpAddr> = host.parse().ok();
        let port_ok = |want: &Option<u16>| want.is_none() || *want == port;
        self.entries.iter().any(|e| match e {
            Entry::All => true,
            Entry::Domain { name, port: p } => {
                port_ok(p)
                    && (host == name
                        || host
                            .strip_suffix(name.as_str())
                            .is_some_and(|h| h.ends_with('.')))
            }
            Entry::Ip { addr, port: p } => port_ok(p) && ip == Some(*addr),
            Entry::Cidr { net, prefix } => ip.is_some_and(|ip| in_network(ip, *net, *prefix)),
        })
    }
}

impl fmt::Display for NoProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written.join(","))
    }
}

fn parse_entry(entry: &str) -> Option<Entry> {
    let entry = entry.to_ascii_lowercase();
    if entry == "*" {
        return Some(Entry::All);
    }
    // A bare IPv6 address is full of colons: try it whole before splitting off a port.
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(Entry::Ip { addr, port: None });
    }
    if let Some((net, prefix)) = entry.split_once('/') {
        let net: IpAddr = net
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(Entry::Cidr { net, prefix });
    }
    let (host, port) = split_host_port(&entry)?;
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Some(Entry::Ip { addr, port });
    }
    let name = host
        .trim_start_matches('*')
        .trim_start_matches('.')
        .trim_end_matches('.');
    (!name.is_empty()).then(|| Entry::Domain {
        name: name.to_string(),
        port,
    })
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    // checked_shr: a /0 prefix shifts by the full width, which plain `>>` rejects.
    ip.checked_shr(shift).unwrap_or(0) == net.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Setting;

    fn np(list: &str, url: &str) -> bool {
        let t = Target::parse(url).unwrap();
        NoProxy::parse(list).matches(&t.host, t.port)
    }

    #[test]
    fn no_proxy_star_matches_everything() {
        assert!(np("*", "https://anything.example/x"));
        assert!(np(" a , * ", "http://10.1.2.3/"));
    }

    #[test]
    fn no_proxy_exact_host_and_spaces() {
        let list = "localhost,  example.com ,other";
        assert!(np(list, "http://localhost:8080/"));
        assert!(np(list, "https://example.com/a"));
        assert!(!np(list, "https://example.org/a"));
        assert!(!np(list, "https://notexample.com/"));
    }

    #[test]
    fn no_proxy_leading_dot_matches_domain_and_subdomains() {
        assert!(np(".corp", "https://a.corp/"));
        assert!(np(".corp", "https://b.a.corp/"));
        assert!(np(".corp", "https://corp/"));
        assert!(!np(".corp", "https://acorp/"));
    }

    #[test]
    fn no_proxy_star_dot_matches_like_leading_dot() {
        assert!(np("*.corp", "https://git.corp/"));
        assert!(np("*.corp", "https://corp/"));
        assert!(!np("*.corp", "https://corp.com/"));
    }

    #[test]
    fn no_proxy_plain_domain_matches_subdomains_like_curl() {
        assert!(np("corp", "https://git.corp/"));
        assert!(np("corp", "https://corp/"));
        assert!(!np("corp", "https://xcorp/"));
    }

    #[test]
    fn no_proxy_host_port_matches_only_that_port() {
        assert!(np("git.corp:8443", "https://git.corp:8443/"));
        assert!(!np("git.corp:8443", "https://git.corp/"));
        assert!(
            np("git.corp:443", "https://git.corp/x"),
            "443 is https's default"
        );
        assert!(
            np("git.corp:80", "http://git.corp/x"),
            "80 is http's default"
        );
        assert!(!np("git.corp:80", "https://git.corp/x"));
    }

    #[test]
    fn no_proxy_ipv4_and_cidr() {
        assert!(np("127.0.0.1", "http://127.0.0.1:5000/"));
        assert!(!np("127.0.0.1", "http://127.0.0.2/"));
        assert!(np("127.0.0.1:5000", "http://127.0.0.1:5000/"));
        assert!(!np("127.0.0.1:5000", "http://127.0.0.1:5001/"));
        assert!(np("10.0.0.0/8", "https://10.200.3.4/"));
        assert!(!np("10.0.0.0/8", "https://11.0.0.1/"));
        assert!(np("192.168.1.0/24", "https://192.168.1.77/"));
        assert!(!np("192.168.1.0/24", "https://192.168.2.1/"));
        assert!(np("0.0.0.0/0", "https://8.8.8.8/"));
        assert!(
            !np("10.0.0.0/8", "https://ten.example/"),
            "names are not matched against ranges"
        );
    }

    #[test]
    fn no_proxy_ipv6_literals() {
        assert!(np("[::1]", "http://[::1]:8080/"));
        assert!(np("::1", "http://[::1]/"));
        assert!(np("[::1]:8080", "http://[::1]:8080/"));
        assert!(!np("[::1]:8080", "http://[::1]:9090/"));
        assert!(np("fd00::/8", "https://[fd12::5]/"));
        assert!(!np("[::1]", "http://[::2]/"));
    }

    #[test]
    fn no_proxy_is_case_insensitive() {
        assert!(np("Git.CORP", "https://git.corp/"));
        assert!(np(".corp", "https://GIT.Corp/"));
        assert!(
            np("corp", "https://git.corp./"),
            "a trailing dot is the same name"
        );
    }

    #[test]
    fn no_proxy_garbage_entries_are_ignored() {
        assert!(!np("host:notaport, , 10.0.0.0/99", "https://host/"));
        assert!(np("host:notaport, host", "https://host/"));
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn network(proxy: &str, no_proxy: &str) -> NetworkConfig {
        let file = PathBuf::from("/w/jetforge.toml");
        NetworkConfig {
            proxy: Some(Setting {
                value: proxy.into(),
                file: file.clone(),
            }),
            no_proxy: Some(Setting {
                value: no_proxy.into(),
                file,
            }),
            offline: false,
        }
    }

    #[test]
    fn env_picks_per_scheme_lower_case_first() {
        let env = env_of(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:1"),
            ("HTTP_PROXY", "http://plain:2"),
            ("no_proxy", "skip.me"),
        ]);
        let s = ProxySettings::resolve(None, None, &NetworkConfig::default(), env).unwrap();
        assert_eq!(s.proxy_for("https://x/").as_deref(), Some("http://lower:1"));
        assert_eq!(s.proxy_for("http://x/").as_deref(), Some("http://plain:2"));
        assert_eq!(s.proxy_for("https://skip.me/"), None);
        assert_eq!(s.proxy_for("file:///x"), None);
        assert_eq!(s.https.unwrap().origin, Origin::Env("https_proxy"));
    }

    #[test]
    fn all_proxy_is_the_fallback() {
        let env = env_of(&[("ALL_PROXY", "socks5h://s:1080"), ("http_proxy", "")]);
        let s = ProxySettings::resolve(None, None, &NetworkConfig::default(), env).unwrap();
        assert_eq!(
            s.proxy_for("http://x/").as_deref(),
            Some("socks5h://s:1080")
        );
    }

    #[test]
    fn config_beats_env_and_cli_beats_config() {
        let env = env_of(&[("https_proxy", "http://env:1"), ("no_proxy", "*")]);
        let net = network("cfg:3128", "a.corp");
        let s = ProxySettings::resolve(None, None, &net, &env).unwrap();
        assert_eq!(
            s.proxy_for("https://x/").as_deref(),
            Some("http://cfg:3128")
        );
        assert_eq!(
            s.https.as_ref().unwrap().origin,
            Origin::ConfigFile("/w/jetforge.toml".into())
        );
        let s = ProxySettings::resolve(Some("http://cli:9"), Some(""), &net, &env).unwrap();
        assert_eq!(
            s.proxy_for("https://a.corp/").as_deref(),
            Some("http://cli:9")
        );
    }

    #[test]
    fn invalid_proxy_names_its_source_and_hides_the_password() {
        let err = ProxySettings::resolve(None, None, &network("ftp://u:hunter2@p:1", ""), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("config file /w/jetforge.toml"), "{err}");
        assert!(err.contains("ftp://u:****@p:1"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = ProxySettings::resolve(
            Some("http://p:port"),
            None,
            &NetworkConfig::default(),
            |_| None,
        )
        .unwrap_err();
        assert_eq!(err.origin, Origin::Cli("--proxy"));
    }

    #[test]
    fn export_and_describe() {
        let s = ProxySettings::resolve(None, None, &network("http://u:pw@p:3128", "a, .b"), |_| {
            None
        })
        .unwrap();
        let env = s.export_env();
        assert!(env.contains(&("HTTPS_PROXY".into(), "http://u:pw@p:3128".into())));
        assert!(env.contains(&("no_proxy".into(), "a,.b".into())));
        assert_eq!(env.len(), 6);
        let text = s.describe().join("\n");
        assert!(
            text.contains("https proxy: http://u:****@p:3128 (from config file /w/jetforge.toml)")
        );
        assert!(!text.contains("pw@"));
    }
}
