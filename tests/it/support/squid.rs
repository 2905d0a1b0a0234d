//! squid as a CONNECT proxy that resolves chosen names to 127.0.0.1 through its own hosts file
//! (and nothing else: its only DNS server is 127.0.0.1), optionally behind basic auth.

use std::process::Command;

use tempfile::TempDir;

use super::{free_port, run, Server};

pub struct Squid {
    pub port: u16,
    _server: Server,
    dir: TempDir,
}

impl Squid {
    /// `hosts`: names that squid, and only squid, resolves to 127.0.0.1.
    pub fn start(hosts: &[&str], auth: Option<(&str, &str)>) -> Squid {
        let dir = tempfile::tempdir().expect("temp dir for squid");
        let d = dir.path();
        let port = free_port();
        let hosts: String = hosts.iter().map(|h| format!("127.0.0.1 {h}\n")).collect();
        std::fs::write(d.join("hosts"), hosts).expect("write hosts");
        let mut conf = format!(
            "http_port 127.0.0.1:{port}\npid_filename {d}/squid.pid\ncache_log {d}/cache.log\n\
             access_log stdio:{d}/access.log\ncache deny all\nhosts_file {d}/hosts\n\
             dns_nameservers 127.0.0.1\ncoredump_dir {d}\nshutdown_lifetime 0 seconds\n\
             pinger_enable off\nnetdb_filename none\nacl local src 127.0.0.1/32\n",
            d = d.display()
        );
        if let Some((user, pass)) = auth {
            let hash = run(Command::new("openssl").args(["passwd", "-apr1", pass]));
            std::fs::write(d.join("htpasswd"), format!("{user}:{}\n", hash.trim()))
                .expect("htpasswd");
            conf.push_str(&format!(
                "auth_param basic program /usr/lib/squid/basic_ncsa_auth {}/htpasswd\n\
                 auth_param basic children 2\nacl authed proxy_auth REQUIRED\nhttp_access deny !authed\n",
                d.display()
            ));
        }
        conf.push_str("http_access allow local\nhttp_access deny all\n");
        std::fs::write(d.join("squid.conf"), conf).expect("write squid.conf");
        // squid drops to the `proxy` user and must still write its logs and pid file.
        run(Command::new("chown").arg("-R").arg("proxy:proxy").arg(d));
        let mut cmd = Command::new(super::find_tool("squid").expect("squid"));
        cmd.arg("-N").arg("-f").arg(d.join("squid.conf"));
        let server = Server::start("squid", cmd, port, d.join("stdout.log"));
        Squid {
            port,
            _server: server,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url_with_credentials(&self, user: &str, pass: &str) -> String {
        format!("http://{user}:{pass}@127.0.0.1:{}", self.port)
    }

    /// One line per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Waits (up to 10 s) for `needle` in the access log: squid writes a CONNECT line only
    /// once the tunnel has closed, a moment after the client is done.
    pub fn log_shows(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.access_log().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }
}
