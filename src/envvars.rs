//! Every environment variable jetforge reads, declared in one place so a user (and `doctor`)
//! can see the whole list. Code elsewhere names these constants, never string literals.
//!
//! Reading happens at the edges (config loading, CLI setup); the engines receive plain values.

/// Path of the user configuration file; replaces `<config dir>/jetforge/jetforge.toml`.
pub const JETFORGE_CONFIG: &str = "JETFORGE_CONFIG";
/// Root of the file system that host facts are read from (`/proc`, `/sys`, `/etc`); tests point
/// it at a fake tree.
pub const JETFORGE_HOST_ROOT: &str = "JETFORGE_HOST_ROOT";
/// Cache directory (sources, resources, wheels); wins over `[cache] dir` and the XDG default.
pub const JETFORGE_CACHE_DIR: &str = "JETFORGE_CACHE_DIR";
/// Compiler cache engine (`ccache`, `sccache`, `none`); wins over `[compiler-cache] engine`.
pub const JETFORGE_COMPILER_CACHE: &str = "JETFORGE_COMPILER_CACHE";
/// `0`: every venv is made with plain `python -m venv` (ensurepip, ~2 s) instead of from the
/// pip seed in the cache dir (`venv-seed-v1`); for benchmarks and as an escape hatch.
pub const JETFORGE_VENV_SEED: &str = "JETFORGE_VENV_SEED";
/// `0`: build requirements are always downloaded from the index first, even when the wheel
/// cache already satisfies them (the behaviour before cache-first); for benchmarks.
pub const JETFORGE_BUILD_REQS_CACHE_FIRST: &str = "JETFORGE_BUILD_REQS_CACHE_FIRST";
/// User name for `publish`; wins over `[index] user`.
pub const JETFORGE_INDEX_USER: &str = "JETFORGE_INDEX_USER";
/// Password for `publish`. Only ever read from the environment, so it never lands in a file.
pub const JETFORGE_INDEX_PASSWORD: &str = "JETFORGE_INDEX_PASSWORD";
/// API token for `publish`, used instead of user and password.
pub const JETFORGE_INDEX_TOKEN: &str = "JETFORGE_INDEX_TOKEN";
/// The target rootfs cross builds use where a profile says `sysroot = "{sysroot}"`; wins over
/// `[cross] sysroot` in jetforge.toml.
pub const JETFORGE_SYSROOT: &str = "JETFORGE_SYSROOT";
/// Parallel compile jobs, overriding the memory policy (`--jobs` overrides it in turn).
pub const MAX_JOBS: &str = "MAX_JOBS";
/// The recipe directory, as `--recipes` (clap reads it; named here so the list is complete).
pub const JETFORGE_RECIPES: &str = "JETFORGE_RECIPES";
/// The CUDA toolkit directory when `/usr/local/cuda/version.json` does not say (host facts).
pub const CUDA_HOME: &str = "CUDA_HOME";

/// Any value disables colour in output (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// CA bundle (PEM) trusted for HTTPS downloads instead of the built-in roots.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// When set: plain progress lines, and tests fail instead of skipping when a tool is missing.
pub const CI: &str = "CI";

/// Proxy for `http://` URLs; the lower-case name is looked up first, as curl does.
pub const HTTP_PROXY: [&str; 2] = ["http_proxy", "HTTP_PROXY"];
/// Proxy for `https://` URLs; the lower-case name is looked up first.
pub const HTTPS_PROXY: [&str; 2] = ["https_proxy", "HTTPS_PROXY"];
/// Proxy for any scheme without its own variable.
pub const ALL_PROXY: [&str; 2] = ["all_proxy", "ALL_PROXY"];
/// Hosts, domains and networks that bypass the proxy (see `net::proxy::NoProxy`).
pub const NO_PROXY: [&str; 2] = ["no_proxy", "NO_PROXY"];
