//! The build environment of a recipe: composed from the caller's allow-listed variables, the
//! target, the cross toolchain (cross builds only), values jetforge computes (MAX_JOBS, CUDA_HOME,
//! PATH …), the proxy, resources and the recipe's `[env]`; exported as shell, dotenv or JSON.
//!
//! What `jetforge env PKG` prints is exactly what build steps get. Values that carry credentials
//! are masked in every printed form unless the caller asks for secrets explicitly.
//!
//! Size: about 609 lines, of which 101 are the unit tests beside the code (508 of code).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::compiler_cache::Setup as CompilerSetup;
use crate::cross::Cross;
use crate::jobs::JobsDecision;
use crate::layout::Layout;
use crate::process::shell_quote;
use crate::recipe::template::{Template, Vars};
use crate::recipe::{OutputKind, Recipe, RecipeSet, StepKind};
use crate::redact::redact;
use crate::target::Target;

/// Variables taken from the caller's environment as they are. Everything else is dropped, so a
/// stray `CFLAGS` or `PYTHONPATH` in a user's shell cannot change a build behind their back.
/// Proxy variables are not here: they come from jetforge's own proxy decision.
pub const PASS_THROUGH: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "NIX_SSL_CERT_FILE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "UV_INDEX_URL",
    "LD_LIBRARY_PATH",
    "CCACHE_DIR",
    "CCACHE_BASEDIR",
    "CCACHE_NOHASHDIR",
    "CCACHE_MAXSIZE",
];

/// Where a variable's value came from (shown by `plan -v` and `env --format json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Caller,
    Jetforge,
    Target,
    /// The cross toolchain and sysroot (only when building for another CPU).
    Cross,
    Jobs,
    /// The compiler cache and distribution engine (`[compiler-cache]`, `[distribute]`).
    Compiler,
    Proxy,
    Resource,
    /// Git config handed to build steps: the redirects to the mirror cache (see
    /// `source::redirect`), after the caller's own `GIT_CONFIG_*` entries.
    Git,
    Recipe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// An ordered environment; setting a key again replaces its value and origin in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildEnv {
    pub vars: Vec<EnvVar>,
}

impl BuildEnv {
    pub fn set(&mut self, key: &str, value: impl Into<String>, origin: Origin) {
        let value = value.into();
        match self.vars.iter_mut().find(|v| v.key == key) {
            Some(v) => {
                v.value = value;
                v.origin = origin;
            }
            None => self.vars.push(EnvVar {
                key: key.to_string(),
                value,
                origin,
            }),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|v| v.key == key)
            .map(|v| v.value.as_str())
    }

    /// The environment without the variables of one origin: jetforge's own tools (venv
    /// creation, pip) run natively even in a cross build.
    pub fn without(&self, origin: Origin) -> BuildEnv {
        BuildEnv {
            vars: self
                .vars
                .iter()
                .filter(|v| v.origin != origin)
                .cloned()
                .collect(),
        }
    }

    /// The pairs to give a child process (real values, never redacted).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|v| (v.key.as_str(), v.value.as_str()))
    }

    fn shown(&self, secrets: bool) -> impl Iterator<Item = (&str, String)> {
        self.vars.iter().map(move |v| {
            let value = if secrets {
                v.value.clone()
            } else {
                redact(&v.value)
            };
            (v.key.as_str(), value)
        })
    }

    /// `export KEY='value'` lines that `eval` reproduces exactly.
    pub fn to_shell(&self, secrets: bool) -> String {
        self.shown(secrets)
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(&v)))
            .collect()
    }

    /// Shell lines that first unset every exported variable the build steps do not get, so
    /// that `eval` in any POSIX shell leaves exactly the steps' environment (the shell's own
    /// `PWD`, `SHLVL` and `_` aside, which every shell sets for itself, steps too).
    pub fn unset_others(&self) -> String {
        let keep: Vec<&str> = self
            .vars
            .iter()
            .map(|v| v.key.as_str())
            .chain(["PWD", "SHLVL", "_"])
            .collect();
        format!(
            "for _jf_v in $(env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p'); do\n  \
             case \" {} \" in *\" $_jf_v \"*) ;; *) unset \"$_jf_v\" 2>/dev/null ;; esac\n\
             done; unset _jf_v\n",
            keep.join(" ")
        )
    }

    /// `KEY="value"` lines (docker/systemd/python-dotenv style).
    pub fn to_dotenv(&self, secrets: bool) -> String {
        self.shown(secrets)
            .map(|(k, v)| format!("{k}=\"{}\"\n", dotenv_escape(&v)))
            .collect()
    }

    /// A JSON object of key → value.
    pub fn to_json(&self, secrets: bool) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .shown(secrets)
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        serde_json::Value::Object(map)
    }
}

fn dotenv_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '`' => out.push_str("\\`"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Everything needed to compose a recipe's environment.
pub struct EnvContext<'a> {
    pub recipe: &'a Recipe,
    pub set: &'a RecipeSet,
    pub target: &'a Target,
    pub jobs: &'a JobsDecision,
    pub layout: &'a Layout,
    /// Set when building for another CPU.
    pub cross: Option<&'a Cross>,
    /// Path of each of the recipe's resources (file, or extracted directory).
    pub resources: BTreeMap<String, PathBuf>,
    /// Proxy variables in both cases, real values.
    pub proxy_env: Vec<(String, String)>,
    /// Git config pairs for build steps (`source::redirect::Redirects::git_config`).
    pub git_config: Vec<(String, String)>,
    /// Reads the caller's environment.
    pub caller: &'a dyn Fn(&str) -> Option<String>,
    /// The compiler cache and distribution, resolved for this machine.
    pub compiler: &'a CompilerSetup,
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Values for the recipe's `{placeholders}`.
pub fn template_vars(cx: &EnvContext) -> Vars {
    let r = cx.recipe;
    let t = cx.target;
    let mut v = Vars::default();
    v.set("name", &r.name)
        .set("version", r.version.to_string())
        .set("cuda_arch_list", t.cuda_arch_list_str())
        .set("cuda_arch_nodot", t.cuda_arch_nodot())
        .set("cuda_home", path_str(&t.cuda_home))
        .set("jobs", cx.jobs.max_jobs.to_string())
        .set("source_dir", path_str(&cx.layout.source_dir(&r.name)))
        .set("out", path_str(&cx.layout.out_dir(&r.name)))
        .set("python", path_str(&cx.layout.venv_python()))
        .set("python_version", &t.python_version)
        .set("python_tag", t.python_tag())
        .set("platform_tag", &t.platform_tag)
        .set("arch", &t.arch)
        .set("target", &t.name)
        .set("work_dir", path_str(&cx.layout.recipe_work_dir(&r.name)));
    if let Some(n) = cx.jobs.nvcc_threads {
        v.set("nvcc_threads", n.to_string());
    }
    for d in &r.depends {
        v.set_arg("source_dir", d, path_str(&cx.layout.source_dir(d)));
        if let Some(dep) = cx.set.get(d) {
            v.set_arg("version", d, dep.version.to_string());
            if dep.output == OutputKind::Tree {
                // A tree recipe installs into its `${{ out }}`; that prefix is what dependents read.
                v.set_arg("tree_dir", d, path_str(&cx.layout.out_dir(d)));
            }
        }
    }
    for (name, path) in &cx.resources {
        v.set_arg("resource", name, path_str(path));
    }
    v
}

/// Fills a template, turning a missing value into an error that names the recipe.
pub fn render(t: &Template, vars: &Vars, recipe: &Recipe, what: &str) -> Result<String> {
    t.render(vars).map_err(|var| {
        let hint = match var.as_str() {
            "{cuda_arch_list}" | "{cuda_arch_nodot}" => {
                "the target has no CUDA arch: pass --cuda-arch (e.g. 8.7)".to_string()
            }
            "{nvcc_threads}" => "set [jobs] nvcc_threads in the recipe".to_string(),
            _ => format!("`{var}` has no value here"),
        };
        crate::error::input_hint(
            format!(
                "recipe `{}` ({}): cannot fill `{var}` in {what}",
                recipe.name, recipe.file
            ),
            hint,
        )
    })
}

/// The full environment of a recipe's build steps.
pub fn compose(cx: &EnvContext) -> Result<BuildEnv> {
    let mut env = BuildEnv::default();
    for key in PASS_THROUGH {
        if let Some(v) = (cx.caller)(key) {
            env.set(key, v, Origin::Caller);
        }
    }
    let venv_bin = cx.layout.venv_dir().join("bin");
    let cuda_bin = cx.target.cuda_home.join("bin");
    let caller_path = (cx.caller)("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    env.set(
        "PATH",
        format!(
            "{}:{}:{caller_path}",
            venv_bin.display(),
            cuda_bin.display()
        ),
        Origin::Jetforge,
    );
    env.set(
        "VIRTUAL_ENV",
        path_str(&cx.layout.venv_dir()),
        Origin::Jetforge,
    );
    env.set("JETFORGE_PACKAGE", &cx.recipe.name, Origin::Jetforge);
    env.set(
        "JETFORGE_VERSION",
        cx.recipe.version.to_string(),
        Origin::Jetforge,
    );
    env.set("JETFORGE_TARGET", &cx.target.name, Origin::Jetforge);
    env.set("CUDA_HOME", path_str(&cx.target.cuda_home), Origin::Target);
    if !cx.target.cuda_arch_list.is_empty() {
        env.set(
            "TORCH_CUDA_ARCH_LIST",
            cx.target.cuda_arch_list_str(),
            Origin::Target,
        );
    }
    for (k, v) in cx.cross.map(Cross::env).unwrap_or_default() {
        env.set(k, v, Origin::Cross);
    }
    set_compilers(&mut env, cx, &cuda_bin);
    env.set("MAX_JOBS", cx.jobs.max_jobs.to_string(), Origin::Jobs);
    env.set(
        "CMAKE_BUILD_PARALLEL_LEVEL",
        (cx.jobs.jobs + cx.jobs.remote_slots).to_string(),
        Origin::Jobs,
    );
    if let Some(n) = cx.jobs.nvcc_threads {
        env.set("NVCC_THREADS", n.to_string(), Origin::Jobs);
    }
    for (k, v) in &cx.proxy_env {
        env.set(k, v.clone(), Origin::Proxy);
    }
    for res in &cx.recipe.resources {
        if let (Some(var), Some(path)) = (&res.env, cx.resources.get(&res.name)) {
            env.set(var, path_str(path), Origin::Resource);
        }
    }
    set_git_config(&mut env, cx);
    let vars = template_vars(cx);
    for (k, t) in &cx.recipe.env {
        let value = render(t, &vars, cx.recipe, &format!("env.{k}"))?;
        env.set(k, value, Origin::Recipe);
    }
    if let Some(links) = cx.jobs.links {
        set_link_pool(&mut env, links, cx.jobs.jobs + cx.jobs.remote_slots);
    }
    Ok(env)
}

/// A Ninja job pool of `links` for link steps, in the two places builds read it; set after the
/// recipe's own variables so that a recipe's `CMAKE_ARGS` is kept (ours come after it, and
/// CMake takes the last `-D`), while a recipe that defines its own pools, in either place,
/// keeps them: then neither place gets ours.
/// - PyTorch's `tools/setup_helpers/cmake.py` (`CMake.generate`) hands every environment
///   variable whose name starts with `BUILD_`, `USE_` or `CMAKE_` to CMake as `-D`.
/// - vLLM's `setup.py` (`cmake_build_ext.configure`) appends `CMAKE_ARGS`, split on
///   whitespace, after its own `-DCMAKE_JOB_POOLS:STRING=compile=N`: a `CMAKE_JOB_POOLS`
///   there replaces that list, so it declares the `compile` pool again, at `compile`
///   (the compile parallelism, local and remote, as CMAKE_BUILD_PARALLEL_LEVEL).
fn set_link_pool(env: &mut BuildEnv, links: u32, compile: u32) {
    let theirs = env
        .get("CMAKE_ARGS")
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string);
    let recipe_pools = env.get("CMAKE_JOB_POOLS").is_some()
        || theirs
            .as_deref()
            .is_some_and(|v| v.contains("CMAKE_JOB_POOLS"));
    if recipe_pools {
        return;
    }
    env.set("CMAKE_JOB_POOLS", format!("link={links}"), Origin::Jobs);
    env.set("CMAKE_JOB_POOL_LINK", "link", Origin::Jobs);
    let ours =
        format!("-DCMAKE_JOB_POOLS=compile={compile};link={links} -DCMAKE_JOB_POOL_LINK=link");
    let args = match theirs {
        Some(theirs) => format!("{theirs} {ours}"),
        None => ours,
    };
    env.set("CMAKE_ARGS", args, Origin::Jobs);
}

/// The caller's `CC`/`CXX` (a native build used to drop them, and so compiled with another
/// compiler than the user's shell), behind the compiler cache or distribution engine when
/// there is one, and the engine's own variables. A cross toolchain's compilers win.
fn set_compilers(env: &mut BuildEnv, cx: &EnvContext, cuda_bin: &Path) {
    let native = cx.cross.is_none();
    let caller = |k: &str| (cx.caller)(k).filter(|v| native && !v.trim().is_empty());
    let (cc, cxx) = (caller("CC"), caller("CXX"));
    let vars = cx.compiler.env(
        &cx.layout.root,
        cc.as_deref(),
        cxx.as_deref(),
        &cuda_bin.join("nvcc"),
        native,
    );
    for (k, v) in vars {
        let from_caller =
            (k == "CC" && cc.as_ref() == Some(&v)) || (k == "CXX" && cxx.as_ref() == Some(&v));
        let origin = if from_caller {
            Origin::Caller
        } else {
            Origin::Compiler
        };
        env.set(&k, v, origin);
    }
}

/// `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n`: the caller's own entries first (kept as they are),
/// then jetforge's. git reads these before any config file, and they never show in `ps`.
fn set_git_config(env: &mut BuildEnv, cx: &EnvContext) {
    let caller_count = (cx.caller)("GIT_CONFIG_COUNT")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let caller: Vec<(String, String)> = (0..caller_count)
        .map_while(|i| {
            let k = (cx.caller)(&format!("GIT_CONFIG_KEY_{i}"))?;
            let v = (cx.caller)(&format!("GIT_CONFIG_VALUE_{i}")).unwrap_or_default();
            Some((k, v))
        })
        .collect();
    if caller.is_empty() && cx.git_config.is_empty() {
        return;
    }
    let origin = if cx.git_config.is_empty() {
        Origin::Caller
    } else {
        Origin::Git
    };
    let n = caller.len() + cx.git_config.len();
    env.set("GIT_CONFIG_COUNT", n.to_string(), origin);
    let all = caller
        .iter()
        .map(|kv| (kv, Origin::Caller))
        .chain(cx.git_config.iter().map(|kv| (kv, Origin::Git)));
    for (i, ((k, v), origin)) in all.enumerate() {
        env.set(&format!("GIT_CONFIG_KEY_{i}"), k.clone(), origin);
        env.set(&format!("GIT_CONFIG_VALUE_{i}"), v.clone(), origin);
    }
}

/// A build step with its templates filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedStep {
    pub name: String,
    /// A bash script (run with `bash -euo pipefail -c`) …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// … or an argv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    pub cwd: PathBuf,
}

impl RenderedStep {
    /// One line for display.
    pub fn display(&self) -> String {
        match (&self.script, &self.argv) {
            (Some(s), _) => s.trim().to_string(),
            (None, Some(a)) => a
                .iter()
                .map(|x| shell_quote(x))
                .collect::<Vec<_>>()
                .join(" "),
            (None, None) => String::new(),
        }
    }
}

pub fn render_steps(cx: &EnvContext) -> Result<Vec<RenderedStep>> {
    let vars = template_vars(cx);
    let src = cx.layout.source_dir(&cx.recipe.name);
    let mut out = Vec::new();
    for step in &cx.recipe.steps {
        let what = format!("build {}", step.name);
        let cwd = match &step.cwd {
            Some(c) => {
                let rel = render(c, &vars, cx.recipe, &what)?;
                // Checked again once rendered: a template could make it absolute.
                if let Some(why) = crate::recipe::load::escapes(&rel, 0) {
                    anyhow::bail!(
                        "recipe `{}`: the cwd of {} `{rel}` {why}: it would leave the source tree",
                        cx.recipe.name,
                        step.name
                    );
                }
                src.join(rel)
            }
            None => src.clone(),
        };
        let (script, argv) = match &step.kind {
            StepKind::Script(t) => (Some(render(t, &vars, cx.recipe, &what)?), None),
            StepKind::Argv(a) => {
                let argv = a
                    .iter()
                    .map(|t| render(t, &vars, cx.recipe, &what))
                    .collect::<Result<Vec<_>>>()?;
                (None, Some(argv))
            }
        };
        out.push(RenderedStep {
            name: step.name.clone(),
            script,
            argv,
            cwd,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BuildEnv {
        let mut e = BuildEnv::default();
        e.set("A", "plain", Origin::Recipe);
        e.set(
            "B",
            "with space 'quote' \"dq\" $HOME `x` \\ end",
            Origin::Recipe,
        );
        e.set("C", "", Origin::Recipe);
        e.set("https_proxy", "http://u:pa55@proxy:3128", Origin::Proxy);
        e.set("D", "line1\nline2", Origin::Recipe);
        e
    }

    #[test]
    fn set_replaces_in_place() {
        let mut e = sample();
        e.set("A", "new", Origin::Jetforge);
        assert_eq!(e.vars[0].value, "new");
        assert_eq!(e.vars.len(), 5);
    }

    #[test]
    fn shell_export_round_trips_through_bash() {
        let e = sample();
        let script = format!(
            "{}\nfor k in A B C https_proxy D; do printf '%s=%s\\0' \"$k\" \"${{!k}}\"; done",
            e.to_shell(true)
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env_clear()
            .output()
            .unwrap();
        let got: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let want: Vec<String> = e
            .vars
            .iter()
            .map(|v| format!("{}={}", v.key, v.value))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn printed_forms_redact_credentials() {
        let e = sample();
        for text in [
            e.to_shell(false),
            e.to_dotenv(false),
            e.to_json(false).to_string(),
        ] {
            assert!(!text.contains("pa55"), "{text}");
            assert!(text.contains("u:****@proxy"), "{text}");
        }
        assert!(e.to_shell(true).contains("pa55"));
    }

    #[test]
    fn the_link_pool_reaches_torchs_cmake_variables_and_vllms_cmake_args() {
        let mut e = BuildEnv::default();
        set_link_pool(&mut e, 2, 24);
        assert_eq!(e.get("CMAKE_JOB_POOLS"), Some("link=2"));
        assert_eq!(e.get("CMAKE_JOB_POOL_LINK"), Some("link"));
        assert_eq!(
            e.get("CMAKE_ARGS"),
            Some("-DCMAKE_JOB_POOLS=compile=24;link=2 -DCMAKE_JOB_POOL_LINK=link")
        );
        // A recipe's own CMAKE_ARGS is kept, ours after it; its own pools are left alone.
        let mut e = BuildEnv::default();
        e.set("CMAKE_ARGS", "-DFOO=1", Origin::Recipe);
        set_link_pool(&mut e, 1, 4);
        assert_eq!(
            e.get("CMAKE_ARGS"),
            Some("-DFOO=1 -DCMAKE_JOB_POOLS=compile=4;link=1 -DCMAKE_JOB_POOL_LINK=link")
        );
        let mut e = BuildEnv::default();
        e.set("CMAKE_JOB_POOLS", "heavy=1", Origin::Recipe);
        e.set("CMAKE_ARGS", "-DCMAKE_JOB_POOLS=heavy=1", Origin::Recipe);
        set_link_pool(&mut e, 1, 4);
        assert_eq!(e.get("CMAKE_JOB_POOLS"), Some("heavy=1"));
        assert_eq!(e.get("CMAKE_ARGS"), Some("-DCMAKE_JOB_POOLS=heavy=1"));
        assert_eq!(e.get("CMAKE_JOB_POOL_LINK"), None);
        // Pools in one place count for both: ours would fight the recipe's in the other.
        let mut e = BuildEnv::default();
        e.set("CMAKE_JOB_POOLS", "heavy=1", Origin::Recipe);
        set_link_pool(&mut e, 1, 4);
        assert_eq!(
            (e.get("CMAKE_ARGS"), e.get("CMAKE_JOB_POOL_LINK")),
            (None, None)
        );
        let mut e = BuildEnv::default();
        e.set("CMAKE_ARGS", "-DCMAKE_JOB_POOLS=heavy=1", Origin::Recipe);
        set_link_pool(&mut e, 1, 4);
        assert_eq!(
            (e.get("CMAKE_JOB_POOLS"), e.get("CMAKE_JOB_POOL_LINK")),
            (None, None)
        );
    }

    #[test]
    fn dotenv_escapes() {
        let mut e = BuildEnv::default();
        e.set("X", "a\"b$c\nd", Origin::Recipe);
        assert_eq!(e.to_dotenv(false), "X=\"a\\\"b\\$c\\nd\"\n");
    }
}
