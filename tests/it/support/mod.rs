//! Real servers for integration tests, all on 127.0.0.1 and free ports: a test CA, lighttpd
//! (static files and git smart HTTP, plain or TLS), squid (optionally with basic auth, resolving
//! a name nobody else can), tinyproxy (with a readable request log), pypiserver and a static
//! `python3 -m http.server`.
//!
//! Every server is a child process in the foreground, stopped by PID when its guard drops, and
//! every file it needs lives in a temp dir removed with it. A missing server binary skips the
//! test with a loud message, except under `CI`, where it fails: CI must install everything.

#![allow(dead_code)] // each test uses a different part of the harness

mod ca;
mod lighttpd;
mod pypiserver;
mod squid;
mod tinyproxy;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use ca::{TestCa, PROXY_ONLY_HOST};
pub use lighttpd::Lighttpd;
pub use pypiserver::{PypiServer, StaticServer};
pub use squid::Squid;
pub use tinyproxy::Tinyproxy;

/// A port that was free a moment ago (the OS picks it; we close it for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// True when every tool is on PATH (or in /usr/sbin, where Debian puts servers). Otherwise
/// panics under `CI`, and elsewhere prints why the test is skipped and returns false.
pub fn have_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: missing {} (install with .ci/run or apt-get install lighttpd lighttpd-mod-openssl squid tinyproxy openssl)",
        missing.join(", ")
    );
    if std::env::var_os(jetforge::envvars::CI).is_some() {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED {msg} !!!!!!!!!!\n");
    false
}

/// A tool CI installs in its own venv outside PATH (on PATH, every build of every test would
/// use it): from the environment variable `var`, else `name` on PATH. Missing: None (a skip),
/// or under CI a failure; `pip` names the PyPI package that brings it.
pub fn tool_from_env(name: &str, var: &str, pip: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| which::which(name).ok());
    if found.is_none() {
        assert!(
            std::env::var_os(jetforge::envvars::CI).is_none(),
            "{name} is missing: .ci/run installs it and sets {var}"
        );
        eprintln!("\n!!!!!!!!!! SKIPPED: no {name} (pip install {pip}; {var}=PATH) !!!!!!!!!!\n");
    }
    found
}

pub fn find_tool(name: &str) -> Option<PathBuf> {
    which::which(name).ok().or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// Runs a setup command and panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server child process; SIGTERM (then SIGKILL) on drop.
pub struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `cmd` with its output in `log` and waits until `port` accepts connections.
    pub fn start(name: &'static str, mut cmd: Command, port: u16, log: PathBuf) -> Server {
        let out = std::fs::File::create(&log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name}: {e}"));
        let mut server = Server { name, child, log };
        server.wait_ready(port);
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before listening:\n{}",
                    self.name,
                    self.output()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not listen on port {port} within 20 s:\n{}",
            self.name,
            self.output()
        );
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first so servers remove their helpers (squid's auth children) themselves.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
