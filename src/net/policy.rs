//! The production [`UrlPolicy`]: resolved proxy settings, `[mirrors]` and the offline switch.

use super::proxy::ProxySettings;
use super::UrlPolicy;
use crate::config::{Config, Mirrors};

#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    pub proxy: ProxySettings,
    pub mirrors: Mirrors,
    pub offline: bool,
}

impl NetPolicy {
    /// `offline_flag` is `--offline`; it can only add to `[network] offline`, never cancel it.
    pub fn new(config: &Config, proxy: ProxySettings, offline_flag: bool) -> NetPolicy {
        NetPolicy {
            proxy,
            mirrors: config.mirrors.clone(),
            offline: offline_flag || config.network.offline,
        }
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
}
