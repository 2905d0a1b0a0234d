//! User configuration (`jetforge.toml`): network (proxy, no_proxy, offline), URL mirrors, cache
//! and wheelhouse directories, the publish index, the cross-build sysroot.
//!
//! Two files are read: the user's (`<config dir>/jetforge/jetforge.toml`, or `JETFORGE_CONFIG`)
//! and the work dir's; the work dir's wins key by key, so a project can pin one setting without
//! repeating the rest. This module only parses and merges; deciding which proxy a URL uses is
//! `net::proxy`'s job, and secrets (the index password) never come from a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::compiler_cache::{CacheSettings, DistSettings};
use crate::diag::{toml_error, Diagnostic, Diagnostics};
use crate::envvars;
use crate::repo_url;

/// Name of the configuration file, in the work dir and the user config dir.
pub const FILE_NAME: &str = "jetforge.toml";

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub network: NetworkConfig,
    pub mirrors: Mirrors,
    pub cache: CacheConfig,
    pub wheelhouse: Option<PathBuf>,
    pub index: IndexConfig,
    /// `[cross] sysroot`: the target rootfs of profiles that say `sysroot = "{sysroot}"`
    /// (absolute; `JETFORGE_SYSROOT` wins, see [`Config::sysroot`]).
    pub cross_sysroot: Option<PathBuf>,
    /// `[compiler-cache]` and `[distribute]` (see `compiler_cache`).
    pub compiler_cache: CacheSettings,
    pub distribute: DistSettings,
}

/// A value together with the file that set it, so messages can say where a setting came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkConfig {
    /// Proxy for both http and https URLs.
    pub proxy: Option<Setting<String>>,
    pub no_proxy: Option<Setting<String>>,
    pub offline: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheConfig {
    /// Absolute (relative paths are resolved against the file that set them).
    pub dir: Option<PathBuf>,
    /// Remote wheel caches, tried in order.
    pub indexes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexConfig {
    pub url: Option<String>,
    pub user: Option<String>,
}

/// URL prefix rewrites from `[mirrors]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirrors(pub BTreeMap<String, String>);

impl Mirrors {
    /// `url` with the longest matching prefix replaced; unchanged when none matches. A key
    /// `X` also matches `X.git` (and the host in any case): see [`crate::repo_url`].
    pub fn rewrite(&self, url: &str) -> String {
        self.0
            .iter()
            .filter_map(|(from, to)| Some((from.len(), repo_url::rewrite_prefix(url, from, to)?)))
            .max_by_key(|(len, _)| *len)
            .map_or_else(|| url.to_string(), |(_, rewritten)| rewritten)
    }
}

impl Config {
    /// Loads the user file and the work dir's file (both optional) and merges them.
    pub fn load(work_dir: &Path) -> Result<Config, Diagnostics> {
        let named = std::env::var_os(envvars::JETFORGE_CONFIG).map(PathBuf::from);
        // An empty JETFORGE_CONFIG means "no user configuration", quietly.
        if let Some(file) = named
            .as_ref()
            .filter(|f| !f.as_os_str().is_empty() && !f.exists())
        {
            // The default file is optional; one the user named is expected to be there: a typo
            // would silently drop their proxy and mirrors. A warning, not an error, so that a
            // deliberately absent file still means "no user configuration".
            eprintln!(
                "warning: {} names `{}`, which does not exist: no user configuration is read \
                 (fix the path, or unset {} for the default one)",
                envvars::JETFORGE_CONFIG,
                file.display(),
                envvars::JETFORGE_CONFIG
            );
        }
        let user_file =
            named.or_else(|| dirs::config_dir().map(|d| d.join("jetforge").join(FILE_NAME)));
        let mut config = Self::load_files(user_file.as_deref(), &work_dir.join(FILE_NAME))?;
        if let Some(dir) = std::env::var_os(envvars::JETFORGE_CACHE_DIR).filter(|d| !d.is_empty()) {
            config.cache.dir = Some(PathBuf::from(dir));
        }
        if let Some(engine) = std::env::var(envvars::JETFORGE_COMPILER_CACHE)
            .ok()
            .filter(|e| !e.is_empty())
        {
            let parsed = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(&engine);
            config.compiler_cache.engine =
                Some(serde::Deserialize::deserialize(parsed).map_err(|_| {
                    Diagnostics(vec![Diagnostic::file_only(
                        envvars::JETFORGE_COMPILER_CACHE,
                        format!("`{engine}` is not an engine: use ccache, sccache or none"),
                    )])
                })?);
            config.compiler_cache.engine_from_env = true;
        }
        Ok(config)
    }

    /// Merges `user` (if any) and then `work`, each only when the file exists; reads no
    /// environment. All problems of both files are reported together.
    pub fn load_files(user: Option<&Path>, work: &Path) -> Result<Config, Diagnostics> {
        let mut config = Config::default();
        let mut diags = Diagnostics::default();
        for file in user.into_iter().chain([work]) {
            if let Some(raw) = read_file(file, &mut diags) {
                config.apply(raw, file);
            }
        }
        if diags.is_empty() {
            Ok(config)
        } else {
            Err(diags)
        }
    }

    /// The sysroot for cross builds: `JETFORGE_SYSROOT`, else `[cross] sysroot`.
    pub fn sysroot(&self, env: Option<String>) -> Option<PathBuf> {
        env.filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| self.cross_sysroot.clone())
    }

    /// Where caches live: `[cache] dir` (or `JETFORGE_CACHE_DIR`), else `<XDG cache>/jetforge`.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache.dir.clone().unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("jetforge")
        })
    }

    fn apply(&mut self, raw: RawConfig, file: &Path) {
        let set = |value| Setting {
            value,
            file: file.to_path_buf(),
        };
        let base = file.parent().unwrap_or(Path::new("."));
        let net = raw.network;
        merge(&mut self.network.proxy, net.proxy.map(set).map(Some));
        merge(&mut self.network.no_proxy, net.no_proxy.map(set).map(Some));
        merge(&mut self.network.offline, net.offline);
        self.mirrors.0.extend(raw.mirrors);
        merge(
            &mut self.cache.dir,
            raw.cache.dir.map(|d| Some(base.join(d))),
        );
        merge(&mut self.cache.indexes, raw.cache.indexes);
        merge(
            &mut self.wheelhouse,
            raw.wheelhouse.dir.map(|d| Some(base.join(d))),
        );
        merge(&mut self.index.url, raw.index.url.map(Some));
        merge(&mut self.index.user, raw.index.user.map(Some));
        merge(
            &mut self.cross_sysroot,
            raw.cross.sysroot.map(|d| Some(base.join(d))),
        );
        merge(&mut self.compiler_cache, raw.compiler_cache);
        merge(&mut self.distribute, raw.distribute);
    }
}

/// Later files win, but only for keys they actually set.
fn merge<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// None when the file does not exist (both files are optional) or has errors (pushed to `diags`).
fn read_file(file: &Path, diags: &mut Diagnostics) -> Option<RawConfig> {
    let shown = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            diags.push(Diagnostic::file_only(
                &shown,
                format!("failed to read: {e}"),
            ));
            return None;
        }
    };
    match toml::from_str(&text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let d = toml_error(&shown, &text, &e);
            diags.push(if e.message().contains("`password`") {
                d.with_hint(format!(
                    "the index password is read only from {} so it never sits in a file",
                    envvars::JETFORGE_INDEX_PASSWORD
                ))
            } else {
                d
            });
            None
        }
    }
}

/// `jetforge.toml`: this machine's network, caches and outputs. Environment variables and
/// flags override each key.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jetforge config")]
struct RawConfig {
    /// How jetforge and the build steps reach the network.
    #[serde(default)]
    network: RawNetwork,
    /// URL prefix rewrites for sources, submodules and resources; the longest prefix wins.
    #[serde(default)]
    mirrors: BTreeMap<String, String>,
    /// Download caches and remote wheel caches.
    #[serde(default)]
    cache: RawCache,
    /// Where built wheels are kept.
    #[serde(default)]
    wheelhouse: RawWheelhouse,
    /// The package index `publish` uploads to.
    #[serde(default)]
    index: RawIndex,
    /// Cross-building from another machine.
    #[serde(default)]
    cross: RawCross,
    #[serde(rename = "compiler-cache")]
    compiler_cache: Option<CacheSettings>,
    distribute: Option<DistSettings>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawCross {
    /// The target's root filesystem, written `{sysroot}` in `targets.toml` (JETFORGE_SYSROOT
    /// overrides it).
    sysroot: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    /// Proxy URL for http and https (`http://user:pass@host:port`, `socks5://…`).
    proxy: Option<String>,
    /// Hosts, domains (`.corp`) and CIDR ranges reached directly.
    no_proxy: Option<String>,
    /// Use only the caches (like `--offline`).
    offline: Option<bool>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawCache {
    /// Cache directory (`git-v1/` and `resources-v1/` live there).
    dir: Option<PathBuf>,
    /// Remote wheel caches (published wheelhouses) `build` takes cached wheels from.
    indexes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawWheelhouse {
    /// The wheelhouse directory.
    dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    /// Upload URL of the package index.
    url: Option<String>,
    /// User name for it (the password comes from JETFORGE_INDEX_PASSWORD, never a file).
    user: Option<String>,
}

/// The JSON Schema of `jetforge.toml`.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(RawConfig).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn work_dir_file_wins_key_by_key() {
        let tmp = tempfile::tempdir().unwrap();
        let user = write(
            tmp.path(),
            "user.toml",
            "[network]\nproxy = \"http://p:3128\"\nno_proxy = \"a\"\n[mirrors]\n\"https://x/\" = \"https://m/\"\n",
        );
        let work = write(
            tmp.path(),
            FILE_NAME,
            "[network]\nno_proxy = \"b\"\n[mirrors]\n\"https://y/\" = \"file:///srv/\"\n[cache]\ndir = \"c\"\n",
        );
        let c = Config::load_files(Some(&user), &work).unwrap();
        let proxy = c.network.proxy.clone().unwrap();
        assert_eq!((proxy.value.as_str(), proxy.file), ("http://p:3128", user));
        assert_eq!(c.network.no_proxy.as_ref().unwrap().value, "b");
        assert_eq!(c.mirrors.0.len(), 2);
        assert_eq!(c.cache_dir(), tmp.path().join("c"));
    }

    #[test]
    fn missing_files_give_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Config::load_files(Some(&tmp.path().join("nope")), &tmp.path().join(FILE_NAME));
        assert_eq!(c.unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_points_at_it() {
        let tmp = tempfile::tempdir().unwrap();
        let work = write(tmp.path(), FILE_NAME, "[network]\nproxxy = \"x\"\n");
        let err = Config::load_files(None, &work).unwrap_err().to_string();
        assert!(err.contains("unknown field `proxxy`"), "{err}");
        assert!(err.contains(":2:1"), "{err}");
    }

    #[test]
    fn password_in_file_is_refused_with_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let work = write(
            tmp.path(),
            FILE_NAME,
            "[index]\nurl = \"u\"\npassword = \"x\"\n",
        );
        let err = Config::load_files(None, &work).unwrap_err().to_string();
        assert!(err.contains("JETFORGE_INDEX_PASSWORD"), "{err}");
    }

    #[test]
    fn longest_mirror_prefix_wins() {
        let m = Mirrors(BTreeMap::from([
            ("https://github.com/".into(), "https://git.corp/gh/".into()),
            (
                "https://github.com/pytorch/".into(),
                "file:///srv/pt/".into(),
            ),
        ]));
        assert_eq!(
            m.rewrite("https://github.com/pytorch/pytorch"),
            "file:///srv/pt/pytorch"
        );
        assert_eq!(
            m.rewrite("https://github.com/vllm/vllm"),
            "https://git.corp/gh/vllm/vllm"
        );
        assert_eq!(m.rewrite("https://gitlab.com/x"), "https://gitlab.com/x");
    }

    /// vLLM 0.5.3 writes `github.com/nvidia/cutlass.git`; a mirror keyed without `.git` must
    /// serve it as the mirror itself, not `<mirror>.git`.
    #[test]
    fn mirror_keys_match_dot_git_and_any_host_case() {
        let m = Mirrors(BTreeMap::from([(
            "https://github.com/NVIDIA/cutlass".into(),
            "file:///srv/cutlass.git".into(),
        )]));
        for u in [
            "https://github.com/NVIDIA/cutlass",
            "https://github.com/NVIDIA/cutlass.git",
            "https://github.com/nvidia/cutlass.git",
            "https://GitHub.com/NVIDIA/cutlass.git",
        ] {
            assert_eq!(m.rewrite(u), "file:///srv/cutlass.git", "{u}");
        }
    }
}
