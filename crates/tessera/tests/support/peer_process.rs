//! A third-party server run as a child process for the interop harnesses (`oidc_provider.rs`,
//! `django_oauth_toolkit.rs`), with the protocol their host scripts share: the server listens on
//! an ephemeral 127.0.0.1 port, prints exactly one JSON line on stdout when it is ready, logs to
//! stderr, and exits when its stdin closes (so it cannot outlive a crashed test).
//!
//! Its stderr goes to a log file in the temp directory, kept when the test panics and deleted
//! otherwise; `<log_env>=inherit` sends it to the test's stderr instead.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A running server; killed when dropped.
pub struct PeerProcess {
    name: &'static str,
    child: Child,
    /// Kept open: the server exits when its stdin closes.
    stdin: Option<ChildStdin>,
    log_path: Option<PathBuf>,
}

fn unique_log_path(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!(
        "tessera-{name}-{}-{}-{nanos}.log",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ))
}

/// The last `max` bytes of a log file, for panic messages.
pub fn log_tail(path: Option<&Path>, max: u64) -> String {
    let Some(path) = path else {
        return "(server stderr was inherited)".to_owned();
    };
    let Ok(mut file) = File::open(path) else {
        return format!("(could not read {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    format!("--- {} ---\n{}", path.display(), String::from_utf8_lossy(&buf))
}

impl PeerProcess {
    /// Spawns `command` (stdin, stdout and stderr are set here) and waits at most `ready_timeout`
    /// for its ready line, parsed as `T`. `name` names the server in messages and log files;
    /// `hint` says what to check when it cannot be started. Panics, with the tail of the server's
    /// log, if it does not become ready.
    pub fn start<T: serde::de::DeserializeOwned>(
        name: &'static str,
        mut command: Command,
        log_env: &str,
        ready_timeout: Duration,
        hint: &str,
    ) -> (PeerProcess, T) {
        let inherit = std::env::var(log_env).is_ok_and(|v| v == "inherit");
        let (stderr, log_path) = if inherit {
            (Stdio::inherit(), None)
        } else {
            let path = unique_log_path(name);
            let file = File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            (Stdio::from(file), Some(path))
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e} ({hint})"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("child stdout is piped");
        let mut process = PeerProcess { name, child, stdin, log_path };

        // Read the ready line on a thread so the wait is bounded; then keep draining stdout until
        // EOF so the server can never block on a full pipe.
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                let first = match reader.read_line(&mut line) {
                    Ok(0) => Err("server exited before printing its ready line".to_owned()),
                    Ok(_) => Ok(line.trim().to_owned()),
                    Err(e) => Err(format!("reading server stdout: {e}")),
                };
                let _ = tx.send(first);
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
            })
            .expect("spawn stdout reader thread");
        let line = match rx.recv_timeout(ready_timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(why)) => process.startup_failed(why),
            Err(_) => process.startup_failed(format!("no ready line within {ready_timeout:?}")),
        };
        match serde_json::from_str::<T>(&line) {
            Ok(ready) => (process, ready),
            Err(e) => process.startup_failed(format!("unexpected ready line {line:?}: {e}")),
        }
    }

    /// Kills the server and panics with the tail of its log.
    fn startup_failed(&mut self, why: String) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait();
        panic!(
            "{} interop server failed to start: {why} (exit status: {status:?})\n{}",
            self.name,
            log_tail(self.log_path.as_deref(), 4096)
        );
    }

    /// Where the server's stderr goes (`None` when inherited).
    pub fn log_path(&self) -> Option<&Path> {
        self.log_path.as_deref()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.log_path {
            if std::thread::panicking() {
                eprintln!("{} interop server log kept at {}", self.name, path.display());
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A plain-http client for talking to a server on loopback: no proxy, a 10 s limit, no pooled
/// connections (a harness shared between tests may outlive the tokio runtime that opened one).
pub fn http_client() -> reqwest::Client {
    // reqwest is built with `rustls-no-provider`: a provider must be installed even though only
    // plain http is used here. Ignore "already installed".
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .expect("build reqwest client")
}

/// Sends `request` (`what` names it in panics, e.g. `GET <url>`), requires a 2xx status and
/// returns the JSON answer.
pub async fn json<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder, what: &str) -> T {
    let response =
        request.send().await.and_then(reqwest::Response::error_for_status).unwrap_or_else(|e| panic!("{what}: {e}"));
    response.json().await.unwrap_or_else(|e| panic!("{what}: unexpected body: {e}"))
}
