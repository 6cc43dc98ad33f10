//! Support for the CLI tests: the `tessera` binary run in its own `TESSERA_HOME`, the reference
//! IdP run as `tessera idp serve` (which runs the `tessera-idp` program beside `tessera`, built
//! here by [`ensure_idp_program`]), and the oidc-provider harness shared with the library tests.
#![allow(dead_code)]

#[path = "../../../tessera/tests/support/oidc_provider.rs"]
pub mod oidc_provider;
#[path = "../../../tessera/tests/support/peer_process.rs"]
pub mod peer_process;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Builds the `tessera-idp` program next to [`BIN`], once per test process, and returns its path.
///
/// `tessera idp serve` runs it, but cargo builds only this package's binaries for its tests: a
/// `cargo test -p tessera-cli` alone would find none, or a stale one from an earlier build. Asking
/// cargo each time keeps it current (a no-op when it is). Panics when the build fails.
pub fn ensure_idp_program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let bin = Path::new(BIN);
        let profile_dir = bin.parent().expect("the binary is in a profile directory");
        let target_dir = profile_dir.parent().expect("the profile directory is in a target directory");
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build.args(["build", "--quiet", "-p", "tessera-idp", "--bin", "tessera-idp"]);
        if profile_dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build tessera-idp: {e}"));
        assert!(status.success(), "cargo build -p tessera-idp failed: {status}");
        let program = profile_dir.join(format!("tessera-idp{}", std::env::consts::EXE_SUFFIX));
        assert!(program.is_file(), "{} was not built", program.display());
        program
    })
}

/// Longest any one `tessera` invocation may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables of the test's own environment that would change what the binary does.
const SCRUBBED_ENV: &[&str] = &[
    "TESSERA_CONFIG",
    "TESSERA_CONTEXT",
    "TESSERA_PROVIDER",
    "TESSERA_LOG",
    "TESSERA_PROMPT",
    "TESSERA_NO_BROWSER",
    "TESSERA_NO_QR",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Runs a future to completion on a fresh current-thread runtime (tests here are synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

/// A plain-http client for loopback servers (the one the interop harnesses use).
pub use peer_process::http_client;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn success(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts this exit code and returns stderr.
    #[track_caller]
    pub fn failure(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "expected exit code {code}: {self:#?}");
        &self.stderr
    }
}

/// A `TESSERA_HOME` of its own: `config.toml`, `tokens/`, and the environment the binary runs with.
pub struct Home {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Home {
    /// A fresh home holding `config` as its `config.toml`.
    pub fn new(config: &str) -> Home {
        let dir = tempfile::Builder::new().prefix("tessera-cli-test-").tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Home { dir, env: Vec::new() }
    }

    /// A home whose one provider, `peer` of context `dev`, is alice with the password grant at
    /// `issuer` (the reference IdP's demo client), secrets through `env:` references set on the child.
    pub fn alice(issuer: &str) -> Home {
        Home::new(&format!(
            "[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"peer\"\ntype = \"password\"\n\
             issuer = \"{issuer}\"\nclient_id = \"confidential-client\"\n\
             client_secret = \"env:TESSERA_TEST_CLIENT_SECRET\"\nusername = \"alice\"\n\
             password = \"env:TESSERA_TEST_PASSWORD\"\n"
        ))
        .with_env("TESSERA_TEST_CLIENT_SECRET", "confidential-secret")
        .with_env("TESSERA_TEST_PASSWORD", "alice-password")
    }

    /// Sets an environment variable on every child (secrets for `env:` references).
    pub fn with_env(mut self, name: &str, value: &str) -> Home {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// `$TESSERA_HOME/tokens/tokens.json`.
    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("tokens").join("tokens.json")
    }

    /// The command, ready to spawn: own home, scrubbed environment, no stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        self.wrapped_command(&[], args)
    }

    /// Like [`Home::command`], run through `wrapper` (e.g. `["keyctl", "session", NAME]`): the
    /// program is `wrapper[0]`, then the rest of `wrapper`, the binary and `args`.
    pub fn wrapped_command(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        command.args(args).env("TESSERA_HOME", self.dir.path()).env("NO_PROXY", "127.0.0.1,localhost");
        for name in SCRUBBED_ENV {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// Spawns the binary with `args`.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"))
    }

    /// Runs the binary through `wrapper` (see [`Home::wrapped_command`]) to completion, with
    /// `stdin` as its input (none when `None`).
    #[track_caller]
    pub fn run_wrapped(&self, wrapper: &[&str], args: &[&str], stdin: Option<&str>) -> Run {
        let mut command = self.wrapped_command(wrapper, args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {wrapper:?} {BIN}: {e}"));
        if let Some(input) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("piped stdin");
            // A command that refuses its arguments exits without reading its input: that is fine.
            match pipe.write_all(input.as_bytes()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {error}"),
                _ => {}
            }
        }
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = wait_until(&mut child, deadline)
            .unwrap_or_else(|| panic!("`tessera {}` did not finish within {RUN_TIMEOUT:?}", args.join(" ")));
        collect(child, status)
    }

    /// Runs the binary with `args` to completion (at most [`RUN_TIMEOUT`]).
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        let mut child = self.spawn(args);
        let deadline = Instant::now() + RUN_TIMEOUT;
        let status = wait_until(&mut child, deadline)
            .unwrap_or_else(|| panic!("`tessera {}` did not finish within {RUN_TIMEOUT:?}", args.join(" ")));
        collect(child, status)
    }

    /// The stored token set under `key` (`<context>/<provider>`), if any, read straight from the file.
    pub fn stored(&self, key: &str) -> Option<serde_json::Value> {
        let bytes = match std::fs::read(self.store_path()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot read {}: {e}", self.store_path().display()),
        };
        let document: serde_json::Value = serde_json::from_slice(&bytes).expect("the store is JSON");
        assert_eq!(document["version"], 1, "{document}");
        document["tokens"].get(key).cloned()
    }

    /// A field of the stored token set, as a string.
    #[track_caller]
    pub fn stored_field(&self, key: &str, field: &str) -> String {
        let tokens = self.stored(key).unwrap_or_else(|| panic!("no tokens stored under {key}"));
        tokens[field].as_str().unwrap_or_else(|| panic!("{field} missing from the stored set")).to_owned()
    }

    /// How long until the stored access token expires (zero when it has).
    pub fn stored_expires_in(&self, key: &str) -> Duration {
        let tokens = self.stored(key).unwrap_or_else(|| panic!("no tokens stored under {key}"));
        let expires_at = tokens["expires_at"].as_i64().expect("expires_at in milliseconds");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        Duration::from_millis((expires_at - now).max(0) as u64)
    }

    /// Sleeps until the stored access token has expired, plus a small margin.
    pub fn sleep_past_expiry(&self, key: &str) {
        let left = self.stored_expires_in(key);
        assert!(left <= Duration::from_secs(10), "token lives {left:?}: longer than this test expects");
        std::thread::sleep(left + Duration::from_millis(200));
    }
}

/// Polls `child` until it exits or `deadline` passes (then kills it and returns `None`).
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the (small) output of an exited child.
pub fn collect(mut child: Child, status: ExitStatus) -> Run {
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout).expect("read stdout");
    }
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("read stderr");
    }
    Run { code: status.code(), stdout, stderr }
}

/// The reference IdP as a child process: `tessera idp serve --test-endpoints`. Killed on drop.
pub struct ReferenceIdp {
    child: Child,
    issuer: String,
    http: reqwest::Client,
}

impl ReferenceIdp {
    /// Starts `tessera idp serve --access-ttl <secs> --test-endpoints` and reads the issuer URL
    /// from the first line of its stdout (waiting at most 20 s).
    pub fn start(access_ttl_secs: u64) -> ReferenceIdp {
        ReferenceIdp::spawn(access_ttl_secs, None, &[])
    }

    /// Like [`ReferenceIdp::start`], with more `tessera idp serve` arguments (e.g.
    /// `["--device-poll-interval", "1"]`).
    pub fn start_with(access_ttl_secs: u64, extra: &[&str]) -> ReferenceIdp {
        ReferenceIdp::spawn(access_ttl_secs, None, extra)
    }

    /// Like [`ReferenceIdp::start`], over HTTPS (`--tls-ca-out`): the private CA's certificate is
    /// written to `ca_file`, and the test's own client trusts it.
    pub fn start_tls(access_ttl_secs: u64, ca_file: &Path) -> ReferenceIdp {
        ReferenceIdp::spawn(access_ttl_secs, Some(ca_file), &[])
    }

    fn spawn(access_ttl_secs: u64, ca_file: Option<&Path>, extra: &[&str]) -> ReferenceIdp {
        let mut args = vec!["idp".to_owned(), "serve".into(), "--access-ttl".into(), access_ttl_secs.to_string()];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args.push("--test-endpoints".into());
        if let Some(ca_file) = ca_file {
            args.extend(["--tls-ca-out".to_owned(), ca_file.display().to_string()]);
        }
        let prefix = if ca_file.is_some() { "https://127.0.0.1:" } else { "http://127.0.0.1:" };
        ensure_idp_program();
        let mut child = Command::new(BIN)
            .args(&args)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("TESSERA_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} idp serve: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line.trim().to_owned()));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let issuer = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(line)) if line.starts_with(prefix) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`tessera idp serve` did not print its issuer: {other:?}");
            }
        };
        let http = match ca_file {
            None => http_client(),
            Some(ca_file) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let pem = std::fs::read(ca_file).expect("the IdP wrote its CA");
                let roots = reqwest::Certificate::from_pem_bundle(&pem).expect("PEM");
                reqwest::Client::builder().no_proxy().tls_certs_merge(roots).build().expect("client builds")
            }
        };
        ReferenceIdp { child, issuer, http }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }

    /// `GET /_test/stats`.
    pub fn stats(&self) -> serde_json::Value {
        let url = self.url("/_test/stats");
        block_on(async {
            let response = self.http.get(&url).send().await.and_then(reqwest::Response::error_for_status);
            response.unwrap_or_else(|e| panic!("GET {url}: {e}")).json().await.expect("stats are JSON")
        })
    }

    /// One counter of `GET /_test/stats`.
    #[track_caller]
    pub fn stat(&self, name: &str) -> u64 {
        let stats = self.stats();
        stats[name].as_u64().unwrap_or_else(|| panic!("no counter {name} in {stats}"))
    }

    /// `POST <path>` with a JSON body to a `/_test/*` control endpoint; returns the JSON answer.
    pub fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = self.url(path);
        block_on(async {
            let response = self.http.post(&url).json(&body).send().await.and_then(reqwest::Response::error_for_status);
            response.unwrap_or_else(|e| panic!("POST {url}: {e}")).json().await.expect("JSON answer")
        })
    }

    /// `DELETE /_test/faults`: drops every queued fault.
    pub fn clear_faults(&self) {
        let url = self.url("/_test/faults");
        block_on(async {
            let response = self.http.delete(&url).send().await.and_then(reqwest::Response::error_for_status);
            response.unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
        });
    }

    /// `GET /_test/outbox?to=<email>`: the one-time codes mailed to `to`, oldest first.
    pub fn outbox_codes(&self, to: &str) -> Vec<String> {
        let url = self.url("/_test/outbox");
        block_on(async {
            let response =
                self.http.get(&url).query(&[("to", to)]).send().await.and_then(reqwest::Response::error_for_status);
            let messages: serde_json::Value =
                response.unwrap_or_else(|e| panic!("GET {url}: {e}")).json().await.expect("outbox is JSON");
            let messages = messages.as_array().cloned().unwrap_or_default();
            messages.iter().map(|m| m["code"].as_str().expect("a code").to_owned()).collect()
        })
    }

    /// `GET /api/whoami` with `Authorization: Bearer <token>`: the status and the JSON body (if any).
    pub fn whoami(&self, token: &str) -> (u16, serde_json::Value) {
        let url = self.url("/api/whoami");
        block_on(async {
            let response = self.http.get(&url).bearer_auth(token).send().await;
            let response = response.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(serde_json::Value::Null))
        })
    }

    /// RFC 7662 introspection as the demo confidential client: is `token` active?
    pub fn active(&self, token: &str) -> bool {
        let url = self.url("/introspect");
        block_on(async {
            let response = self
                .http
                .post(&url)
                .basic_auth("confidential-client", Some("confidential-secret"))
                .form(&[("token", token)])
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .unwrap_or_else(|e| panic!("POST {url}: {e}"));
            let body: serde_json::Value = response.json().await.expect("introspection is JSON");
            body["active"].as_bool().expect("active is a bool")
        })
    }
}

/// The person in the browser: opens the reference IdP's login page at `url`, signs in as alice,
/// and returns where the IdP redirects the browser (the `redirect_uri` with `code` and `state`),
/// without following it.
pub fn sign_in_as_alice(idp: &ReferenceIdp, url: &str) -> String {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds");
    block_on(async {
        let page = http.get(url).send().await.unwrap().error_for_status().unwrap().text().await.unwrap();
        let request_id = page
            .split("name=\"request_id\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no request_id on the login page: {page}"))
            .to_owned();
        let form = [
            ("request_id", request_id.as_str()),
            ("username", tessera_idp::demo::ALICE_USERNAME),
            ("password", tessera_idp::demo::ALICE_PASSWORD),
            ("totp", ""),
            ("action", "sign-in"),
        ];
        let response = http.post(idp.url("/authorize")).form(&form).send().await.unwrap();
        assert!(response.status().is_redirection(), "{:?}", response.status());
        response.headers()["location"].to_str().unwrap().to_owned()
    })
}

impl Drop for ReferenceIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tessera` run that a test talks to while it runs: stdin is a pipe the test writes answers to,
/// stdout and stderr are collected as they come (prompts end without a newline, so not by lines).
pub struct Interactive {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Pump,
    stderr: Pump,
    args: String,
}

/// What a pipe yielded so far, collected by a thread of its own (prompts end without a newline,
/// so not by lines).
pub struct Pump {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    thread: std::thread::JoinHandle<()>,
}

impl Pump {
    /// What came so far.
    pub fn so_far(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Everything, once the pipe reached its end (when the process that writes it, and anything it
    /// started, exited); what came so far after 5 s (something it started still holds the pipe).
    /// A fixed pause here lost the end of the output on a busy machine.
    pub fn all(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.so_far()
    }
}

/// Collects what `pipe` yields, as it comes.
pub fn pump(mut pipe: impl Read + Send + 'static) -> Pump {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&text);
    let thread = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                return;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    Pump { text, thread }
}

impl Interactive {
    /// Starts `tessera <args>` in `home` with a piped stdin.
    pub fn start(home: &Home, args: &[&str]) -> Interactive {
        let mut command = home.command(args);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdin = child.stdin.take();
        let stdout = pump(child.stdout.take().expect("piped stdout"));
        let stderr = pump(child.stderr.take().expect("piped stderr"));
        Interactive { child, stdin, stdout, stderr, args: args.join(" ") }
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.so_far()
    }

    /// Waits (at most `RUN_TIMEOUT`) until stderr contains `needle` at least `times` times; returns stderr.
    #[track_caller]
    pub fn wait_for(&mut self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let stderr = self.stderr();
            if stderr.matches(needle).count() >= times {
                return stderr;
            }
            if Instant::now() >= deadline || self.child.try_wait().expect("try_wait").is_some() {
                std::thread::sleep(Duration::from_millis(100));
                let stderr = self.stderr();
                assert!(
                    stderr.matches(needle).count() >= times,
                    "`tessera {}` never wrote {needle:?} ({times}x) on stderr: {stderr}",
                    self.args
                );
                return stderr;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes one line to the binary's stdin.
    pub fn answer(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()).expect("write stdin");
    }

    /// Closes stdin and waits for the exit (at most `RUN_TIMEOUT`).
    #[track_caller]
    pub fn finish(mut self) -> Run {
        drop(self.stdin.take());
        let status = wait_until(&mut self.child, Instant::now() + RUN_TIMEOUT)
            .unwrap_or_else(|| panic!("`tessera {}` did not finish: {}", self.args, self.stderr()));
        Run { code: status.code(), stdout: self.stdout.all(), stderr: self.stderr.all() }
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant), to check RFC 3339 output independently.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` into Unix seconds, asserting the shape.
pub fn parse_rfc3339(text: &str) -> i64 {
    let bytes = text.as_bytes();
    assert!(
        text.len() == 20
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes[10] == b'T'
            && bytes[13] == b':'
            && bytes[16] == b':'
            && bytes[19] == b'Z',
        "not RFC 3339 UTC: {text}"
    );
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap_or_else(|_| panic!("digits: {text}"));
    days_from_civil(n(0..4), n(5..7), n(8..10)) * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// A `tessera` run on a real terminal, as a person sees it: a tmux session on a tmux server of its
/// own (its socket in the run's temporary directory, no user configuration), `columns`×`rows`, running the binary with the same
/// environment as [`Home::command`]. The test reads the visible screen and types keys. The
/// server (and with it the run) is killed on drop.
pub struct Terminal {
    socket: String,
    dir: tempfile::TempDir,
    args: String,
}

/// Quotes `text` for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Terminal {
    /// Starts `tessera <args>` in `home` on a `columns`×`rows` terminal.
    pub fn start(home: &Home, args: &[&str], columns: u16, rows: u16) -> Terminal {
        let dir = tempfile::Builder::new().prefix("tessera-tty-").tempdir().expect("temp dir");
        // A trap (not an ignore, which the binary would inherit) keeps the script alive through a
        // Ctrl-C that ends the binary, so that it still writes the exit code.
        let mut script = String::from("#!/bin/sh\ntrap true INT\n");
        for name in SCRUBBED_ENV {
            script.push_str(&format!("unset {name}\n"));
        }
        script.push_str(&format!("export TESSERA_HOME={}\n", shell_quote(&home.path().display().to_string())));
        script.push_str("export NO_PROXY=127.0.0.1,localhost\n");
        for (name, value) in &home.env {
            script.push_str(&format!("export {name}={}\n", shell_quote(value)));
        }
        let command: Vec<String> = std::iter::once(BIN).chain(args.iter().copied()).map(shell_quote).collect();
        // The exit code lands in a file (written whole, then renamed), after the terminal's modes
        // as the binary left them; the pane stays as it was.
        script.push_str(&format!(
            "{}\ncode=$?\nstty -a > stty.txt 2>&1\necho $code > exit.tmp && mv exit.tmp exit\nexec sleep 600\n",
            command.join(" ")
        ));
        std::fs::write(dir.path().join("run.sh"), script).expect("write the script");
        let socket = dir.path().join("tmux.sock").display().to_string();
        let terminal = Terminal { socket, dir, args: args.join(" ") };
        let (columns, rows) = (columns.to_string(), rows.to_string());
        let script = terminal.dir.path().join("run.sh").display().to_string();
        let cwd = terminal.dir.path().display().to_string();
        terminal.tmux(&["new-session", "-d", "-s", "t", "-x", &columns, "-y", &rows, "-c", &cwd, "sh", &script]);
        terminal
    }

    /// Runs `tmux -S <socket> -f /dev/null ARGS`, asserting success; returns its stdout.
    #[track_caller]
    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-u", "-S", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs (apt-get install tmux)");
        assert!(output.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The visible screen, one string per row (all rows, blank ones included).
    pub fn screen(&self) -> Vec<String> {
        self.tmux(&["capture-pane", "-p", "-t", "t"]).lines().map(str::to_owned).collect()
    }

    /// The visible screen without its trailing blank rows, as text, lines that the terminal
    /// wrapped joined again.
    pub fn text(&self) -> String {
        let mut rows: Vec<String> =
            self.tmux(&["capture-pane", "-p", "-J", "-t", "t"]).lines().map(|row| row.trim_end().to_owned()).collect();
        while rows.last().is_some_and(|row| row.trim().is_empty()) {
            rows.pop();
        }
        rows.join("\n")
    }

    /// Waits (at most `RUN_TIMEOUT`) until the screen shows `needle`; returns the screen's text.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline && self.exit_code().is_none(),
                "`tessera {}` never showed {needle:?}; the screen:\n{text}",
                self.args
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` (literally, no Enter).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses a key by its tmux name (`Enter`, `C-c`).
    pub fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "t", key]);
    }

    /// The exit code, once the run has ended.
    pub fn exit_code(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.path().join("exit")).ok()?;
        text.trim().parse().ok()
    }

    /// After the exit: whether the terminal echoes typed keys (as a shell expects to find it).
    pub fn echoes(&self) -> bool {
        let modes = std::fs::read_to_string(self.dir.path().join("stty.txt")).expect("stty -a ran after the exit");
        let words: Vec<&str> = modes.split_whitespace().collect();
        assert!(words.contains(&"echo") || words.contains(&"-echo"), "{modes}");
        words.contains(&"echo")
    }

    /// Waits (at most `RUN_TIMEOUT`) for the exit; returns its code and the final screen.
    #[track_caller]
    pub fn finish(&self) -> (i32, String) {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(code) = self.exit_code() {
                // The last output reaches the screen a moment after the exit.
                std::thread::sleep(Duration::from_millis(100));
                return (code, self.text());
            }
            assert!(Instant::now() < deadline, "`tessera {}` did not finish; the screen:\n{}", self.args, self.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/browser")
}

/// Runs interop/browser/sign-in.mjs (headless Chromium) to the end: signs in at `url` as `user`.
#[track_caller]
pub fn chromium_sign_in(url: &str, user: &str, password: &str) -> serde_json::Value {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(Path::new(&chromium).is_file(), "{chromium} is missing: apt-get install -y chromium");
    assert!(
        browser_dir().join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is not installed: run `npm ci` in interop/browser"
    );
    let mut child = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".to_owned()))
        .current_dir(browser_dir())
        .args(["sign-in.mjs", url, user, password])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (install nodejs)");
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(90)).expect("sign-in.mjs finishes");
    let run = collect(child, status);
    assert_eq!(run.code, Some(0), "Chromium did not reach the redirect: {run:#?}");
    serde_json::from_str(run.stdout.lines().last().unwrap_or_default()).expect("sign-in.mjs prints JSON")
}
