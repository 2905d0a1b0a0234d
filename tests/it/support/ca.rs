//! A throw-away certificate authority and one server certificate, made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::run;

/// A name that only the test squid resolves (through its hosts file): a request that reaches
/// it must have gone through the proxy.
pub const PROXY_ONLY_HOST: &str = "git.proxyonly.test";

pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    /// A CA plus a server certificate for `localhost`, `127.0.0.1` and [`PROXY_ONLY_HOST`].
    /// EC keys: RSA generation would cost a second per test.
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir for the test CA");
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .current_dir(d)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
            .args(["-subj", "/CN=jetforge test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        run(Command::new("openssl")
            .current_dir(d)
            .arg("req")
            .args(ec)
            .args([
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ]));
        let ext = format!(
            "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:{PROXY_ONLY_HOST}\n\
             basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n"
        );
        std::fs::write(d.join("server.ext"), ext).expect("write server.ext");
        run(Command::new("openssl")
            .current_dir(d)
            .args([
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ])
            .args([
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ]));
        TestCa { dir }
    }

    /// The CA certificate: what `SSL_CERT_FILE` / `GIT_SSL_CAINFO` should point at.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
