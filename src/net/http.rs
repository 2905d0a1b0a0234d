//! The one way jetforge builds an HTTP client: proxy decided by the caller (from the
//! [`super::UrlPolicy`]), an optional CA bundle, jetforge's user agent and timeouts. Downloads
//! of resources and the package-index client both use it; what to fetch is theirs, how to retry
//! is `net::retry`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::redact::redact;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid proxy URL: {reason}")]
    Proxy { reason: String },
    #[error("failed to use the CA bundle `{}`: {reason}", path.display())]
    Ca { path: PathBuf, reason: String },
}

/// How one agent is set up.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions<'a> {
    /// Proxy URL (credentials included), or None for a direct connection.
    pub proxy: Option<&'a str>,
    /// PEM bundle trusted instead of the built-in web roots.
    pub ca_file: Option<&'a Path>,
    /// False returns 3xx responses as they are instead of following them.
    pub follow_redirects: bool,
    /// True returns 4xx/5xx as responses (with their body) instead of errors.
    pub statuses_as_responses: bool,
}

/// A fresh agent: each URL may need a different proxy.
pub fn agent(opts: &AgentOptions) -> Result<ureq::Agent, AgentError> {
    let proxy = opts
        .proxy
        .map(|p| {
            ureq::Proxy::new(p).map_err(|e| AgentError::Proxy {
                reason: redact(&e.to_string()),
            })
        })
        .transpose()?;
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = opts.ca_file {
        tls = tls.root_certs(load_ca(ca)?);
    }
    let config = ureq::Agent::config_builder()
        // Set even when None: ureq would otherwise read the proxy variables on its own.
        .proxy(proxy)
        .tls_config(tls.build())
        .max_redirects(if opts.follow_redirects { 10 } else { 0 })
        .http_status_as_error(!opts.statuses_as_responses)
        .user_agent(concat!("jetforge/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .build();
    Ok(config.new_agent())
}

fn load_ca(path: &Path) -> Result<ureq::tls::RootCerts, AgentError> {
    let ca_err = |reason: String| AgentError::Ca {
        path: path.to_path_buf(),
        reason,
    };
    let pem = fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| ca_err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(ca_err("no certificate in it".into()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}
