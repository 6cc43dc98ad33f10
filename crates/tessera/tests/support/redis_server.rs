//! A `redis-server` child process on a free loopback port, for tests and the fleet benchmark.
//!
//! Include with `#[path = "support/redis_server.rs"] mod redis_server;`. Needs `redis-server` on
//! `PATH` (Debian package `redis-server`; scripts/test.sh installs it). Killed when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the server is started.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Persist every write to an append-only file (`--appendfsync always`), so data survives a restart.
    pub persistent: bool,
    /// `requirepass` for the default user.
    pub password: Option<String>,
    /// An extra ACL user `(name, password)` with every permission.
    pub user: Option<(String, String)>,
    /// Also listen with TLS on [`RedisServer::tls_port`], with a certificate for 127.0.0.1 signed by a
    /// test CA made with `openssl` (`ca.pem` in [`RedisServer::dir`]).
    pub tls: bool,
}

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    tls_port: u16,
    dir: tempfile::TempDir,
    options: RedisOptions,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

impl RedisServer {
    /// Starts a server (no persistence unless asked) and waits until it answers PING (at most 10 s).
    pub fn start(options: RedisOptions) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer { child: None, port: free_port(), tls_port: free_port(), dir, options };
        if server.options.tls {
            // A CA, and a server certificate for 127.0.0.1 signed by it.
            let dir = server.dir.path();
            std::fs::write(
                dir.join("server.ext"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            let steps: [&[&str]; 3] = [
                &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tessera test CA"]
                    .iter()
                    .chain(&["-keyout", "ca.key", "-out", "ca.pem"])
                    .copied()
                    .collect::<Vec<_>>(),
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                    "key.pem",
                    "-out",
                    "server.csr",
                ],
                &[
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "1",
                ]
                .iter()
                .chain(&["-extfile", "server.ext", "-out", "cert.pem"])
                .copied()
                .collect::<Vec<_>>(),
            ];
            for args in steps {
                let status = Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("openssl runs");
                assert!(status.success(), "openssl {args:?}");
            }
        }
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--dir", &self.dir.path().display().to_string(), "--protected-mode", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"]);
        if self.options.persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        if self.options.tls {
            command.args(["--tls-port", &self.tls_port.to_string(), "--tls-auth-clients", "no"]);
            command.args([
                "--tls-cert-file",
                "cert.pem",
                "--tls-key-file",
                "key.pem",
                "--tls-ca-cert-file",
                "cert.pem",
            ]);
            command.current_dir(self.dir.path());
        }
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
        }
        if let Some((user, password)) = &self.options.user {
            command.args(["--user", user, "on", &format!(">{password}"), "~*", "&*", "+@all"]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("redis-server exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "redis-server did not answer within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when something on the port answers PING (with or without authentication).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(stream.read(&mut buf), Ok(n) if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")))
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port on 127.0.0.1 (with [`RedisOptions::tls`]).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// `redis://127.0.0.1:<port>` (no credentials).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The data directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Stops the server (SIGKILL when not persistent, else SHUTDOWN-like SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.options.persistent {
                // SIGTERM: redis flushes the AOF and exits.
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
