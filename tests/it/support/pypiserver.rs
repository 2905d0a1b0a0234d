//! pypiserver (a PyPI-compatible index with the legacy upload API) with one basic-auth user.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use super::{free_port, run, Server};

pub struct PypiServer {
    pub port: u16,
    /// Where the server keeps uploaded files (tests tamper with them here).
    pub packages: PathBuf,
    // Field order: the server stops before its directory is removed.
    _server: Server,
    _dir: TempDir,
}

impl PypiServer {
    /// Uploads need `user`/`password`; downloads are open.
    pub fn start(user: &str, password: &str) -> PypiServer {
        let dir = tempfile::tempdir().expect("temp dir for pypiserver");
        let packages = dir.path().join("packages");
        std::fs::create_dir_all(&packages).expect("create packages dir");
        let htpasswd = dir.path().join("htpasswd");
        run(Command::new("python3").args([
            "-c",
            "import sys; from passlib.apache import HtpasswdFile as H; \
             h = H(sys.argv[1], new=True); h.set_password(sys.argv[2], sys.argv[3]); h.save()",
            htpasswd.to_str().unwrap(),
            user,
            password,
        ]));
        let port = free_port();
        let mut cmd = Command::new(super::find_tool("pypi-server").expect("pypi-server"));
        cmd.args(["run", "-i", "127.0.0.1", "-p", &port.to_string(), "-P"])
            .arg(&htpasswd)
            .args(["-a", "update", "--log-file"])
            .arg(dir.path().join("server.log"))
            .arg(&packages);
        let server = Server::start("pypi-server", cmd, port, dir.path().join("stdout.log"));
        PypiServer {
            port,
            packages,
            _server: server,
            _dir: dir,
        }
    }

    /// The upload URL, which is also the index root (`/simple/` below it).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The server's log: one line per request (`"GET /simple/x/ HTTP/1.1" 200 -`).
    pub fn requests(&self) -> String {
        self._server.output()
    }
}

/// `python3 -m http.server` serving a directory: any static web server.
pub struct StaticServer {
    pub port: u16,
    _server: Server,
    _log: TempDir,
}

impl StaticServer {
    pub fn start(root: &std::path::Path) -> StaticServer {
        let log = tempfile::tempdir().expect("temp dir for the server log");
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(root);
        let server = Server::start("http.server", cmd, port, log.path().join("stdout.log"));
        StaticServer {
            port,
            _server: server,
            _log: log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The server's log: one line per request (`"GET /simple/x/ HTTP/1.1" 200 -`).
    pub fn requests(&self) -> String {
        self._server.output()
    }
}
