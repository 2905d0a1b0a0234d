//! tinyproxy, whose log shows every request it carried.

use std::process::Command;

use tempfile::TempDir;

use super::{free_port, Server};

pub struct Tinyproxy {
    pub port: u16,
    _server: Server,
    dir: TempDir,
}

impl Tinyproxy {
    pub fn start() -> Tinyproxy {
        let dir = tempfile::tempdir().expect("temp dir for tinyproxy");
        let d = dir.path();
        let port = free_port();
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nLogFile \"{d}/tinyproxy.log\"\nLogLevel Info\n\
             PidFile \"{d}/tinyproxy.pid\"\nAllow 127.0.0.1\n",
            d = d.display()
        );
        std::fs::write(d.join("tinyproxy.conf"), conf).expect("write tinyproxy.conf");
        let mut cmd = Command::new(super::find_tool("tinyproxy").expect("tinyproxy"));
        cmd.arg("-d").arg("-c").arg(d.join("tinyproxy.conf"));
        let server = Server::start("tinyproxy", cmd, port, d.join("stdout.log"));
        Tinyproxy {
            port,
            _server: server,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}
