//! Fetch settings and the one retry loop of every network access (resource downloads, git
//! fetches, the index client).

use std::path::PathBuf;
use std::time::Duration;

use crate::envvars;

/// The longest wait between two tries.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Knobs that the environment sets in production and tests set explicitly (tests run in
/// parallel threads, so they must not change process-wide variables).
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// PEM bundle trusted instead of the built-in web roots.
    pub ca_file: Option<PathBuf>,
    pub tries: u32,
    /// Wait before the second try; doubled before each further one.
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            ca_file: None,
            tries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

impl FetchOptions {
    /// Defaults, with `SSL_CERT_FILE` as the CA bundle when set.
    pub fn from_env() -> Self {
        FetchOptions {
            ca_file: std::env::var_os(envvars::SSL_CERT_FILE)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ..Self::default()
        }
    }
}

impl FetchOptions {
    /// [`retry`] with these options' tries and backoff.
    pub fn retry<T, E>(
        &self,
        attempt: impl FnMut() -> Result<T, E>,
        transient: impl Fn(&E) -> bool,
    ) -> Result<T, (E, u32)> {
        retry(self.tries, self.backoff, attempt, transient)
    }
}

/// Calls `attempt` until it succeeds, fails in a way `transient` says another try cannot help,
/// or `tries` are spent; waits `backoff` before the second try and twice as long before each
/// further one (at most 30 s). A failure comes back with the number of tries made.
pub fn retry<T, E>(
    tries: u32,
    backoff: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
    transient: impl Fn(&E) -> bool,
) -> Result<T, (E, u32)> {
    let mut wait = backoff;
    let mut tried = 0;
    loop {
        tried += 1;
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e) if !transient(&e) || tried >= tries.max(1) => return Err((e, tried)),
            Err(_) => {}
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(MAX_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_failures_until_the_tries_are_spent() {
        let mut calls = 0;
        let r: Result<(), _> = retry(
            3,
            Duration::ZERO,
            || {
                calls += 1;
                Err("down")
            },
            |_| true,
        );
        assert_eq!(r, Err(("down", 3)));
        assert_eq!(calls, 3);
    }

    #[test]
    fn stops_at_a_permanent_failure_and_returns_a_success() {
        let r: Result<(), _> = retry(3, Duration::ZERO, || Err("404"), |_| false);
        assert_eq!(r, Err(("404", 1)));
        let mut calls = 0;
        let r = retry(
            3,
            Duration::ZERO,
            || {
                calls += 1;
                if calls < 2 {
                    Err("reset")
                } else {
                    Ok(calls)
                }
            },
            |_| true,
        );
        assert_eq!(r, Ok(2));
    }
}
