//! The production [`UrlPolicy`]: resolved proxy settings, `[mirrors]`, the offline switch and the
//! download options (CA bundle, tries), resolved once per run; the proxy variables build steps
//! get come from it too.

use super::proxy::ProxySettings;
use super::{FetchOptions, UrlPolicy};
use crate::config::{Config, Mirrors};

#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    pub proxy: ProxySettings,
    pub mirrors: Mirrors,
    pub offline: bool,
    /// CA bundle, tries and backoff of every download.
    pub fetch: FetchOptions,
}

impl NetPolicy {
    /// `offline_flag` is `--offline`; it can only add to `[network] offline`, never cancel it.
    pub fn new(
        config: &Config,
        proxy: ProxySettings,
        offline_flag: bool,
        fetch: FetchOptions,
    ) -> NetPolicy {
        NetPolicy {
            proxy,
            mirrors: config.mirrors.clone(),
            offline: offline_flag || config.network.offline,
            fetch,
        }
    }

    /// The proxy variables build steps and pip get (see [`ProxySettings::export_env`]).
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        self.proxy.export_env()
    }
}

impl UrlPolicy for NetPolicy {
    fn rewrite(&self, url: &str) -> String {
        self.mirrors.rewrite(url)
    }

    /// Decided on the URL as given; callers pass the rewritten one, so a mirror inside the
    /// company network can be listed in no_proxy.
    fn proxy_for(&self, url: &str) -> Option<String> {
        self.proxy.proxy_for(url)
    }

    fn offline(&self) -> bool {
        self.offline
    }

    fn fetch_options(&self) -> FetchOptions {
        self.fetch.clone()
    }
}
