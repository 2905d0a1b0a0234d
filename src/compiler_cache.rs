//! The compiler cache and distributed compiles (`[compiler-cache]`, `[distribute]` in
//! `jetforge.toml`): which existing engine (ccache, sccache; distcc, icecream, sccache-dist)
//! build steps go through, and the variables that wire it into every build system the sets use:
//! CMake's `CMAKE_{C,CXX,CUDA}_COMPILER_LAUNCHER`, PyTorch's `USE_CCACHE`, `cpp_extension`'s
//! `CC`/`CXX`/`PYTORCH_NVCC`, setuptools' `CC`/`CXX` (vLLM's setup.py finds the engine on PATH
//! itself and passes the same launchers to CMake).
//!
//! Objects are shared between work dirs and sets: the cache lives in jetforge's cache dir
//! (`compiler-cache-v1/`) and paths below the work dir are hashed relative to it. sccache
//! runs as jetforge's own server on a socket there, stopped after each build.
//!
//! Size: about 750 lines, of which 200 are the unit tests beside the code (550 of code).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Directory below jetforge's cache dir; the version changes when its layout does.
pub const DIR: &str = "compiler-cache-v1";

/// distcc's default number of jobs per remote host when a host entry gives none (`host/N`).
pub const DISTCC_DEFAULT_SLOTS: u32 = 4;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum CacheEngine {
    Ccache,
    Sccache,
    None,
}

impl CacheEngine {
    pub fn program(self) -> Option<&'static str> {
        match self {
            CacheEngine::Ccache => Some("ccache"),
            CacheEngine::Sccache => Some("sccache"),
            CacheEngine::None => None,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DistEngine {
    Distcc,
    Icecream,
    SccacheDist,
}

impl DistEngine {
    pub fn program(self) -> &'static str {
        match self {
            DistEngine::Distcc => "distcc",
            DistEngine::Icecream => "icecc",
            DistEngine::SccacheDist => "sccache",
        }
    }
}

/// `[compiler-cache]` as written (after merging the user's and the work dir's file).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSettings {
    /// Unset: whichever of ccache, sccache is on PATH.
    pub engine: Option<CacheEngine>,
    /// True when `JETFORGE_COMPILER_CACHE` set `engine` (for what `plan` says).
    #[serde(skip)]
    pub engine_from_env: bool,
    /// e.g. "20G" (ccache and sccache syntax).
    pub max_size: Option<String>,
    /// Remote storage: `redis://…`, `http://…` (WebDAV or any GET/PUT server).
    #[serde(default)]
    pub remote: Vec<String>,
    /// Consumers read the remote storage but never write to it.
    #[serde(default)]
    pub read_only: bool,
}

/// `[distribute]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DistSettings {
    pub engine: Option<DistEngine>,
    /// distcc host specs (`host[:port][/jobs]`), as DISTCC_HOSTS takes them.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// icecream or sccache-dist scheduler (`host[:port]` / URL).
    pub scheduler: Option<String>,
    /// Remote compile slots in all; distcc counts them from `hosts` when unset.
    pub slots: Option<u32>,
}

/// What build steps use, resolved against this machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setup {
    pub engine: Option<CacheEngine>,
    /// Why this engine ("ccache on PATH", "[compiler-cache] engine").
    pub engine_reason: String,
    pub dir: PathBuf,
    pub max_size: Option<String>,
    pub remote: Vec<String>,
    pub read_only: bool,
    pub distribute: Option<Distribute>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Distribute {
    pub engine: DistEngine,
    pub hosts: Vec<String>,
    pub scheduler: Option<String>,
    /// Remote compile slots, and on how many hosts.
    pub slots: u32,
    pub host_count: usize,
}

impl Setup {
    /// `on_path` says whether a program is on PATH.
    pub fn resolve(
        cache: &CacheSettings,
        dist: &DistSettings,
        cache_dir: &Path,
        on_path: &dyn Fn(&str) -> bool,
    ) -> Setup {
        let setting = if cache.engine_from_env {
            crate::envvars::JETFORGE_COMPILER_CACHE
        } else {
            "[compiler-cache] engine"
        };
        let (engine, engine_reason) = match cache.engine {
            Some(CacheEngine::None) => (None, format!("{setting} = none")),
            Some(e) => (Some(e), setting.to_string()),
            None => match [CacheEngine::Ccache, CacheEngine::Sccache]
                .into_iter()
                .find(|e| e.program().is_some_and(on_path))
            {
                Some(e) => (Some(e), format!("{} on PATH", e.program().unwrap_or(""))),
                None => (None, "neither ccache nor sccache on PATH".to_string()),
            },
        };
        let distribute = dist.engine.map(|engine| {
            let remote_hosts: Vec<&String> = dist
                .hosts
                .iter()
                .filter(|h| !h.starts_with("localhost"))
                .collect();
            let counted = remote_hosts.iter().map(|h| host_slots(h)).sum();
            Distribute {
                engine,
                hosts: dist.hosts.clone(),
                scheduler: dist.scheduler.clone(),
                slots: dist.slots.unwrap_or(counted),
                host_count: remote_hosts.len(),
            }
        });
        Setup {
            engine,
            engine_reason,
            dir: cache_dir
                .join(DIR)
                .join(engine.and_then(CacheEngine::program).unwrap_or("none")),
            max_size: cache.max_size.clone(),
            remote: cache.remote.clone(),
            read_only: cache.read_only,
            distribute,
        }
    }

    /// Creates the directories the engines write to: distcc silently compiles locally when
    /// its state dir is missing.
    pub fn create_dirs(&self) -> anyhow::Result<()> {
        let mut dirs = Vec::new();
        if self.engine.is_some() {
            dirs.push(self.dir.clone());
        }
        if self.distribute.is_some() {
            dirs.push(self.distcc_dir());
        }
        for d in dirs {
            std::fs::create_dir_all(&d).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create the compiler cache dir `{}`: {e} (check the permissions of \
                     jetforge's cache dir, or set [cache] dir)",
                    d.display()
                )
            })?;
        }
        Ok(())
    }

    /// The socket of jetforge's own sccache server. sccache reads its settings (dir, remote,
    /// base dirs) once, when its server starts, and every client talks to the server on the
    /// default port whatever its own variables say; a server of jetforge's cache dir, on its
    /// own socket, is the one that has jetforge's settings. A path too long for a socket
    /// address (108 bytes with the NUL) moves to the temp dir under a name hashed from it.
    pub fn sccache_socket(&self) -> PathBuf {
        let p = self.dir.join("server.sock");
        if p.as_os_str().len() < 100 {
            return p;
        }
        let id = crate::hash::sha256_hex(p.as_os_str().as_encoded_bytes());
        std::env::temp_dir().join(format!("jetforge-sccache-{}.sock", &id[..16]))
    }

    /// Stops jetforge's sccache server after a build (sccache otherwise keeps it for 10
    /// minutes, holding settings a changed `jetforge.toml` would not reach); `path` is the
    /// PATH that found sccache for the build steps. Nothing to do for other engines.
    pub fn stop_server(&self, path: &str) {
        if self.engine != Some(CacheEngine::Sccache) {
            return;
        }
        let env = [
            ("PATH".to_string(), path.to_string()),
            (
                "SCCACHE_SERVER_UDS".to_string(),
                self.sccache_socket().display().to_string(),
            ),
        ];
        // No server running is the usual case for a build that compiled nothing.
        let _ = run_engine(&["sccache", "--stop-server"], &env, &std::env::temp_dir());
    }

    /// distcc's host back-off state, beside the cache rather than in ~/.distcc.
    fn distcc_dir(&self) -> PathBuf {
        self.dir.parent().unwrap_or(&self.dir).join("distcc")
    }

    /// Remote compile slots (0 without distribution).
    pub fn remote_slots(&self) -> (u32, usize) {
        self.distribute
            .as_ref()
            .map_or((0, 0), |d| (d.slots, d.host_count))
    }

    /// One line for `plan`: "ccache (ccache on PATH), remote redis://…, read-only; distcc on 2 hosts".
    pub fn describe(&self) -> String {
        let mut s = match self.engine.and_then(CacheEngine::program) {
            Some(p) => format!("{p} ({}) in {}", self.engine_reason, self.dir.display()),
            None => format!("none ({})", self.engine_reason),
        };
        if self.engine.is_some() && !self.remote.is_empty() {
            s.push_str(&format!(", remote {}", self.remote.join(" ")));
            if self.read_only {
                s.push_str(" (read-only)");
            }
        }
        if let Some(d) = &self.distribute {
            s.push_str(&format!(
                "; {} with {} remote slots on {} hosts",
                d.engine.program(),
                d.slots,
                d.host_count
            ));
        }
        s
    }

    /// The variables build steps get. `work_dir` is the base of path-independent hashing;
    /// `cc`/`cxx` are the caller's compilers (else gcc/g++); `nvcc` the target's; `wrap_cc`
    /// is false when a cross toolchain sets CC/CXX itself.
    pub fn env(
        &self,
        work_dir: &Path,
        cc: Option<&str>,
        cxx: Option<&str>,
        nvcc: &Path,
        wrap_cc: bool,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        let dir = self.dir.display().to_string();
        let dist = self.distribute.as_ref();
        if let Some(d) = dist {
            match d.engine {
                DistEngine::Distcc => {
                    set("DISTCC_HOSTS", d.hosts.join(" "));
                    set("DISTCC_DIR", self.distcc_dir().display().to_string());
                }
                DistEngine::Icecream => {
                    if let Some(s) = &d.scheduler {
                        set("USE_SCHEDULER", s.clone());
                    }
                }
                DistEngine::SccacheDist => {
                    if let Some(s) = &d.scheduler {
                        set("SCCACHE_DIST_SCHEDULER_URL", s.clone());
                    }
                }
            }
        }
        let launcher = match self.engine {
            Some(CacheEngine::Ccache) => {
                set("CCACHE_DIR", dir);
                set("CCACHE_BASEDIR", work_dir.display().to_string());
                set("CCACHE_NOHASHDIR", "true".into());
                if let Some(m) = &self.max_size {
                    set("CCACHE_MAXSIZE", m.clone());
                }
                if !self.remote.is_empty() {
                    let attr = if self.read_only {
                        "|read-only=true"
                    } else {
                        ""
                    };
                    let urls: Vec<String> =
                        self.remote.iter().map(|u| format!("{u}{attr}")).collect();
                    set("CCACHE_REMOTE_STORAGE", urls.join(" "));
                }
                match dist.map(|d| d.engine) {
                    Some(DistEngine::Distcc) => set("CCACHE_PREFIX", "distcc".into()),
                    Some(DistEngine::Icecream) => set("CCACHE_PREFIX", "icecc".into()),
                    _ => {}
                }
                // PyTorch's CMakeLists looks for ccache itself when this is on.
                set("USE_CCACHE", "1".into());
                Some("ccache")
            }
            Some(CacheEngine::Sccache) => {
                set("SCCACHE_DIR", dir);
                set("SCCACHE_BASEDIRS", work_dir.display().to_string());
                set(
                    "SCCACHE_SERVER_UDS",
                    self.sccache_socket().display().to_string(),
                );
                if let Some(m) = &self.max_size {
                    set("SCCACHE_CACHE_SIZE", m.clone());
                }
                // sccache takes one storage: a remote one replaces the local dir.
                for url in &self.remote {
                    let backend = if url.starts_with("redis") {
                        "REDIS"
                    } else {
                        "WEBDAV"
                    };
                    set(&format!("SCCACHE_{backend}_ENDPOINT"), url.clone());
                    if self.read_only {
                        set(&format!("SCCACHE_{backend}_RW_MODE"), "READ_ONLY".into());
                    }
                }
                set("USE_CCACHE", "0".into());
                Some("sccache")
            }
            _ => dist.and_then(|d| match d.engine {
                DistEngine::Distcc => Some("distcc"),
                DistEngine::Icecream => Some("icecc"),
                DistEngine::SccacheDist => None,
            }),
        };
        let Some(launcher) = launcher else {
            for (k, v) in [("CC", cc), ("CXX", cxx)] {
                if let Some(v) = v {
                    env.push((k.to_string(), v.to_string()));
                }
            }
            return env;
        };
        // distcc and icecream cannot run nvcc remotely; ccache and sccache cache it.
        let cuda = launcher != "distcc" && launcher != "icecc";
        // CMake takes `CC`/`CXX` (wrapped below) as `launcher` + compiler; a launcher on top
        // is only harmless with ccache (`ccache ccache gcc` is one ccache call), while distcc
        // aborts on `distcc distcc gcc` as a recursion.
        let mut langs: Vec<&str> = Vec::new();
        if launcher == "ccache" {
            langs.extend(["C", "CXX"]);
        }
        if cuda {
            langs.push("CUDA");
        }
        for lang in langs {
            set(
                &format!("CMAKE_{lang}_COMPILER_LAUNCHER"),
                launcher.to_string(),
            );
        }
        if wrap_cc {
            set("CC", wrapped(launcher, cc.unwrap_or("gcc")));
            set("CXX", wrapped(launcher, cxx.unwrap_or("g++")));
        }
        if cuda {
            set("PYTORCH_NVCC", format!("{launcher} {}", nvcc.display()));
        }
        env
    }
}

/// `launcher compiler`, unless the user's compiler already goes through it.
fn wrapped(launcher: &str, compiler: &str) -> String {
    if compiler.split_whitespace().next() == Some(launcher) {
        compiler.to_string()
    } else {
        format!("{launcher} {compiler}")
    }
}

/// Jobs of one distcc host spec: `host/8`, `host:3632/8,lzo` → 8; none given → the default.
fn host_slots(spec: &str) -> u32 {
    spec.split_once('/')
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(DISTCC_DEFAULT_SLOTS)
}

/// `host:port` of a remote storage URL or distcc host spec, for reachability checks.
pub fn endpoint(url_or_host: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url_or_host
        .split_once("://")
        .map_or(url_or_host, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split(['/', '|', ',']).next()?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => {
            let port = match url_or_host.split_once("://").map(|(s, _)| s) {
                Some("redis") => 6379,
                Some("http") => 80,
                Some("https") => 443,
                _ => default_port,
            };
            (hostport, port)
        }
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Hits and misses of one build step, from the engine's counters before and after it; a
/// recipe's are the sum of its steps'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Stats {
    pub hits: u64,
    /// Hits served by the remote storage, counted in `hits` too.
    pub remote_hits: u64,
    pub misses: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(self, o: Stats) -> Stats {
        Stats {
            hits: self.hits.saturating_add(o.hits),
            remote_hits: self.remote_hits.saturating_add(o.remote_hits),
            misses: self.misses.saturating_add(o.misses),
        }
    }
}

impl Stats {
    /// The sum of the steps that have figures; None when none has (no engine, or it could
    /// not say), which differs from a step that compiled nothing (all zero).
    pub fn total(steps: impl IntoIterator<Item = Option<Stats>>) -> Option<Stats> {
        steps.into_iter().flatten().reduce(|a, b| a + b)
    }

    pub fn since(self, before: Stats) -> Stats {
        Stats {
            hits: self.hits.saturating_sub(before.hits),
            remote_hits: self.remote_hits.saturating_sub(before.remote_hits),
            misses: self.misses.saturating_sub(before.misses),
        }
    }

    /// "12 hits (3 remote), 4 misses".
    pub fn describe(&self) -> String {
        let remote = if self.remote_hits > 0 {
            format!(" ({} remote)", self.remote_hits)
        } else {
            String::new()
        };
        format!("{} hits{remote}, {} misses", self.hits, self.misses)
    }

    /// `ccache --print-stats` (tab-separated counters).
    pub fn from_ccache(text: &str) -> Stats {
        let get = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('\t'))
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Stats {
            hits: get("direct_cache_hit") + get("preprocessed_cache_hit"),
            remote_hits: get("remote_storage_hit"),
            misses: get("cache_miss"),
        }
    }

    /// `sccache --show-stats --stats-format json`: counts per language.
    pub fn from_sccache(json: &serde_json::Value) -> Stats {
        let sum = |key: &str| {
            json["stats"][key]["counts"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
        };
        Stats {
            hits: sum("cache_hits"),
            remote_hits: 0,
            misses: sum("cache_misses"),
        }
    }
}

impl Setup {
    /// The engine's counters now, run in a build step's environment (`env`, complete) so it
    /// reads the same cache; None without an engine or when the engine cannot say.
    pub fn stats(&self, env: &[(String, String)], cwd: &Path) -> Option<Stats> {
        match self.engine? {
            CacheEngine::Ccache => {
                let out = run_engine(&["ccache", "--print-stats"], env, cwd)?;
                Some(Stats::from_ccache(&out))
            }
            CacheEngine::Sccache => {
                let out = run_engine(
                    &["sccache", "--show-stats", "--stats-format", "json"],
                    env,
                    cwd,
                )?;
                let start = out.find('{')?;
                let mut stats = Stats::from_sccache(&serde_json::from_str(&out[start..]).ok()?);
                // With a remote, sccache has no local storage: every hit is a remote one.
                if !self.remote.is_empty() {
                    stats.remote_hits = stats.hits;
                }
                Some(stats)
            }
            CacheEngine::None => None,
        }
    }
}

/// Runs a cache engine's own command (stats, stopping sccache's server) in `env`, complete;
/// its output when it succeeded within 30 s. The one place jetforge talks to the engine
/// itself: build steps only reach it through the launcher variables of [`Setup::env`].
fn run_engine(argv: &[&str], env: &[(String, String)], cwd: &Path) -> Option<String> {
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    let out = crate::process::runner::run_with_timeout(
        &argv,
        env,
        cwd,
        std::time::Duration::from_secs(30),
    )
    .ok()?;
    matches!(out.status, Some(crate::process::runner::Status::Success)).then_some(out.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(cache: CacheSettings, dist: DistSettings, path: &[&str]) -> Setup {
        Setup::resolve(&cache, &dist, Path::new("/c"), &|p| path.contains(&p))
    }

    /// `engine` with a read-only redis remote, nothing on PATH.
    fn read_only_redis(engine: CacheEngine) -> Setup {
        let cache = CacheSettings {
            engine: Some(engine),
            remote: vec!["redis://127.0.0.1:6390".into()],
            read_only: true,
            ..Default::default()
        };
        setup(cache, DistSettings::default(), &[])
    }

    /// The variables of `s` for work dir `/w`, by name.
    fn env_map(
        s: &Setup,
        cc: Option<&str>,
        nvcc: &str,
    ) -> std::collections::BTreeMap<String, String> {
        s.env(Path::new("/w"), cc, None, Path::new(nvcc), true)
            .into_iter()
            .collect()
    }

    #[test]
    fn the_engine_on_path_is_the_default_and_plan_says_so() {
        let s = setup(
            CacheSettings::default(),
            DistSettings::default(),
            &["ccache"],
        );
        assert_eq!(s.engine, Some(CacheEngine::Ccache));
        assert!(
            s.describe().starts_with("ccache (ccache on PATH)"),
            "{}",
            s.describe()
        );
        let none = setup(CacheSettings::default(), DistSettings::default(), &[]);
        assert_eq!(none.engine, None);
    }

    #[test]
    fn ccache_reaches_cmake_torch_setuptools_and_nvcc_path_independently() {
        let s = read_only_redis(CacheEngine::Ccache);
        let env = env_map(&s, Some("clang"), "/cuda/bin/nvcc");
        assert_eq!(env["CCACHE_DIR"], "/c/compiler-cache-v1/ccache");
        assert_eq!(env["CCACHE_BASEDIR"], "/w");
        assert_eq!(env["CCACHE_NOHASHDIR"], "true");
        assert_eq!(
            env["CCACHE_REMOTE_STORAGE"],
            "redis://127.0.0.1:6390|read-only=true"
        );
        assert_eq!(env["CMAKE_CUDA_COMPILER_LAUNCHER"], "ccache");
        assert_eq!(env["USE_CCACHE"], "1");
        assert_eq!(env["CC"], "ccache clang");
        assert_eq!(env["CXX"], "ccache g++");
        assert_eq!(env["PYTORCH_NVCC"], "ccache /cuda/bin/nvcc");
    }

    #[test]
    fn sccache_gets_its_own_server_base_dir_and_a_read_only_remote() {
        let s = read_only_redis(CacheEngine::Sccache);
        let env = env_map(&s, None, "nvcc");
        assert_eq!(env["SCCACHE_DIR"], "/c/compiler-cache-v1/sccache");
        assert_eq!(env["SCCACHE_BASEDIRS"], "/w");
        assert_eq!(
            env["SCCACHE_SERVER_UDS"],
            "/c/compiler-cache-v1/sccache/server.sock"
        );
        assert_eq!(env["SCCACHE_REDIS_ENDPOINT"], "redis://127.0.0.1:6390");
        assert_eq!(env["SCCACHE_REDIS_RW_MODE"], "READ_ONLY");
        assert_eq!(env["CC"], "sccache gcc");
        assert_eq!(env["USE_CCACHE"], "0");
        let long = Setup::resolve(
            &CacheSettings::default(),
            &DistSettings::default(),
            &Path::new("/c").join("d".repeat(120)),
            &|_| false,
        );
        let sock = long.sccache_socket();
        assert!(sock.as_os_str().len() < 100, "{}", sock.display());
        assert_eq!(sock, long.sccache_socket(), "the same dir, the same socket");
    }

    #[test]
    fn a_compiler_already_behind_the_launcher_is_not_wrapped_twice() {
        assert_eq!(wrapped("ccache", "ccache gcc-12"), "ccache gcc-12");
        assert_eq!(wrapped("ccache", "gcc-12"), "ccache gcc-12");
    }

    #[test]
    fn without_an_engine_the_callers_compilers_pass_through() {
        let s = setup(CacheSettings::default(), DistSettings::default(), &[]);
        let env = s.env(
            Path::new("/w"),
            Some("gcc-12"),
            None,
            Path::new("nvcc"),
            true,
        );
        assert_eq!(env, vec![("CC".to_string(), "gcc-12".to_string())]);
    }

    #[test]
    fn distcc_slots_come_from_the_host_specs_and_localhost_is_not_remote() {
        let dist = DistSettings {
            engine: Some(DistEngine::Distcc),
            hosts: vec![
                "localhost/2".into(),
                "10.0.0.2:3632/8,lzo".into(),
                "orin3".into(),
            ],
            ..Default::default()
        };
        let s = setup(CacheSettings::default(), dist, &["ccache"]);
        assert_eq!(s.remote_slots(), (8 + DISTCC_DEFAULT_SLOTS, 2));
        let env = env_map(&s, None, "nvcc");
        assert_eq!(env["CCACHE_PREFIX"], "distcc");
        assert_eq!(env["DISTCC_HOSTS"], "localhost/2 10.0.0.2:3632/8,lzo orin3");
    }

    #[test]
    fn nvcc_is_not_handed_to_distcc() {
        let dist = DistSettings {
            engine: Some(DistEngine::Distcc),
            hosts: vec!["h/4".into()],
            ..Default::default()
        };
        let s = setup(
            CacheSettings {
                engine: Some(CacheEngine::None),
                ..Default::default()
            },
            dist,
            &[],
        );
        let env = env_map(&s, None, "nvcc");
        assert_eq!(env["CC"], "distcc gcc");
        assert!(!env.contains_key("PYTORCH_NVCC"));
        assert!(!env.contains_key("CMAKE_CUDA_COMPILER_LAUNCHER"));
        assert!(!env.contains_key("CMAKE_CXX_COMPILER_LAUNCHER"));
    }

    #[test]
    fn endpoints_of_urls_and_host_specs() {
        assert_eq!(endpoint("redis://u:p@h:7000", 0), Some(("h".into(), 7000)));
        assert_eq!(endpoint("redis://h", 0), Some(("h".into(), 6379)));
        assert_eq!(
            endpoint("http://h/cache|read-only=true", 0),
            Some(("h".into(), 80))
        );
        assert_eq!(
            endpoint("10.0.0.2/8,lzo", 3632),
            Some(("10.0.0.2".into(), 3632))
        );
    }

    #[test]
    fn ccache_counters_are_read_and_subtracted() {
        let before =
            Stats::from_ccache("direct_cache_hit\t1\npreprocessed_cache_hit\t1\ncache_miss\t5\n");
        let after = Stats::from_ccache(
            "direct_cache_hit\t4\npreprocessed_cache_hit\t2\ncache_miss\t6\nremote_storage_hit\t3\n",
        );
        let d = after.since(before);
        assert_eq!((d.hits, d.remote_hits, d.misses), (4, 3, 1));
        assert_eq!(d.describe(), "4 hits (3 remote), 1 misses");
    }

    #[test]
    fn a_recipes_figures_are_the_sum_of_its_steps_and_none_without_any() {
        let s = |hits, remote_hits, misses| Stats {
            hits,
            remote_hits,
            misses,
        };
        assert_eq!(
            Stats::total([Some(s(1, 0, 7)), None, Some(s(6, 2, 0)), Some(s(0, 0, 0))]),
            Some(s(7, 2, 7))
        );
        assert_eq!(Stats::total([None, None]), None);
        assert_eq!(Stats::total([]), None);
        assert_eq!(Stats::total([Some(s(0, 0, 0))]), Some(s(0, 0, 0)));
        assert_eq!((s(u64::MAX, 0, 0) + s(1, 0, 0)).hits, u64::MAX);
    }
}
