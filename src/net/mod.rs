//! Network policy shared by every part that reaches out (git, resource downloads, build steps):
//! which proxy a URL goes through, how mirrors rewrite URLs, and whether we are offline.
//!
//! Sources and downloads only see the [`UrlPolicy`] trait, so they can be tested with a fixed
//! policy and never read the environment themselves.

/// Decisions about one URL, made in one place.
pub trait UrlPolicy: Send + Sync {
    /// The URL after `[mirrors]` prefix rewriting (unchanged when no mirror matches).
    fn rewrite(&self, url: &str) -> String;
    /// The proxy URL (credentials included) that `url` must go through, or None for direct.
    fn proxy_for(&self, url: &str) -> Option<String>;
    /// True when nothing may be fetched from the network.
    fn offline(&self) -> bool;
}

/// No proxy, no mirrors, online: for tests and local sources.
#[derive(Debug, Clone, Default)]
pub struct Direct {
    pub offline: bool,
}

impl UrlPolicy for Direct {
    fn rewrite(&self, url: &str) -> String {
        url.to_string()
    }
    fn proxy_for(&self, _url: &str) -> Option<String> {
        None
    }
    fn offline(&self) -> bool {
        self.offline
    }
}

pub mod http;
pub mod policy;
pub mod proxy;
pub mod repo;

pub use policy::NetPolicy;
pub use proxy::ProxySettings;
