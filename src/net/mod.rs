//! The network layer shared by every part that reaches out (git, resource downloads, package
//! indexes, build steps): which proxy a URL goes through, how mirrors rewrite URLs, whether we
//! are offline (this file, `policy`, `proxy`), the one HTTP agent (`http`), the one retry loop
//! and fetch settings (`retry`), and the package-index client (`index`).
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
    /// CA bundle, tries and backoff for downloads (default: from the environment).
    fn fetch_options(&self) -> FetchOptions {
        FetchOptions::from_env()
    }
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
pub mod index;
pub mod plain_proxy;
pub mod policy;
pub mod proxy;
pub mod retry;

pub use policy::NetPolicy;
pub use proxy::ProxySettings;
pub use retry::{retry, FetchOptions};
