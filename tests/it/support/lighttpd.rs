//! lighttpd serving static files under `/files/` and `git http-backend` (smart HTTP) under
//! `/git/`, over HTTP or HTTPS.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{free_port, run, Server, TestCa};

pub struct Lighttpd {
    pub port: u16,
    tls: bool,
    // Field order: the server stops before its config dir is removed.
    _server: Server,
    _dir: TempDir,
}

impl Lighttpd {
    /// Serves `root/files/` at `/files/` and the bare repositories in `root/git/` at `/git/`
    /// (both created if missing). With `tls`, HTTPS with the CA's server certificate.
    pub fn start(root: &Path, tls: Option<&TestCa>) -> Lighttpd {
        let files = root.join("files");
        let git = root.join("git");
        std::fs::create_dir_all(&files).expect("create files dir");
        std::fs::create_dir_all(&git).expect("create git dir");
        let dir = tempfile::tempdir().expect("temp dir for lighttpd");
        let port = free_port();
        let conf = dir.path().join("lighttpd.conf");
        std::fs::write(&conf, config(dir.path(), port, &files, &git, tls)).expect("write conf");
        let mut cmd = Command::new(super::find_tool("lighttpd").expect("lighttpd"));
        cmd.arg("-D").arg("-f").arg(&conf);
        let server = Server::start("lighttpd", cmd, port, dir.path().join("stdout.log"));
        Lighttpd {
            port,
            tls: tls.is_some(),
            _server: server,
            _dir: dir,
        }
    }

    /// `http(s)://127.0.0.1:PORT` + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        self.url_for_host("127.0.0.1", path)
    }

    /// The same server under another name, e.g. [`super::PROXY_ONLY_HOST`].
    pub fn url_for_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.port)
    }
}

fn git_http_backend() -> PathBuf {
    let exec_path = run(Command::new("git").arg("--exec-path"));
    Path::new(exec_path.trim()).join("git-http-backend")
}

/// CGI is assigned globally: a `$HTTP["url"]` condition around it did not take effect with
/// lighttpd 1.4.69, so `cgi.execute-x-only` keeps static files (mode 0644) static instead.
fn config(dir: &Path, port: u16, files: &Path, git: &Path, tls: Option<&TestCa>) -> String {
    let mut conf = format!(
        r#"server.modules = ("mod_alias", "mod_setenv", "mod_cgi"{openssl})
server.document-root = "{files}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
alias.url = ("/git/" => "{backend}/", "/files/" => "{files}/")
cgi.assign = ("" => "")
cgi.execute-x-only = "enable"
setenv.add-environment = ("GIT_PROJECT_ROOT" => "{git}", "GIT_HTTP_EXPORT_ALL" => "1")
"#,
        openssl = if tls.is_some() {
            r#", "mod_openssl""#
        } else {
            ""
        },
        files = files.display(),
        dir = dir.display(),
        backend = git_http_backend().display(),
        git = git.display(),
    );
    if let Some(ca) = tls {
        conf.push_str(&format!(
            "ssl.engine = \"enable\"\nssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
            ca.server_cert().display(),
            ca.server_key().display()
        ));
    }
    conf
}
