//! Test harness for the third-party OAuth 2.0 server in `interop/django-oauth-toolkit`
//! (django-oauth-toolkit 3.4.1, "DOT", hosted by `server.py`).
//!
//! Reached as `support::django_oauth_toolkit`; it uses the sibling module `peer_process` (a
//! `support/mod.rs` that includes this file includes that one too). It needs the Python venv of
//! that folder (`python3 -m venv .venv && .venv/bin/pip install -r requirements.txt` there;
//! scripts/test.sh does it), or `$TESSERA_DOT_PYTHON` naming a Python that has the packages of
//! `requirements.txt`. A missing interpreter is a panic, never a skip.
//!
//! ```ignore
//! let dot = DjangoOauthToolkit::start(DotOptions { grace_period_secs: 2, ..DotOptions::default() });
//! let token_url = dot.token_endpoint();
//! // ... drive tessera against it ...
//! let stats = dot.stats().await;
//! assert_eq!((stats.grant_type("refresh_token"), stats.refresh_token_reuses), (1, 0));
//! ```
//!
//! The server's stderr goes to a log file in the temp directory (kept when the test panics);
//! `TESSERA_DOT_LOG=inherit` sends it to the test's stderr instead.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::peer_process::{self, PeerProcess};

/// Password-grant account.
pub const ALICE: &str = "alice";
/// Password of [`ALICE`].
pub const ALICE_PASSWORD: &str = "alice-password";
/// A second password-grant account.
pub const BOB: &str = "bob";
/// Password of [`BOB`].
pub const BOB_PASSWORD: &str = "bob-password";
/// Confidential client, grant type `password` (and `refresh_token`); DOT accepts
/// `client_secret_basic` and `client_secret_post` from every confidential client.
pub const CONFIDENTIAL_CLIENT_ID: &str = "confidential-client";
/// Secret of [`CONFIDENTIAL_CLIENT_ID`].
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "confidential-secret";
/// A second confidential password client (for `client_secret_post`).
pub const POST_CLIENT_ID: &str = "post-client";
/// Secret of [`POST_CLIENT_ID`].
pub const POST_CLIENT_SECRET: &str = "post-secret";
/// Public password client (no secret).
pub const PUBLIC_CLIENT_ID: &str = "public-client";
/// Confidential client, grant type `client_credentials`.
pub const MACHINE_CLIENT_ID: &str = "machine-client";
/// Secret of [`MACHINE_CLIENT_ID`].
pub const MACHINE_CLIENT_SECRET: &str = "machine-secret";
/// The scopes DOT knows; `read write` is granted when no scope is asked for.
pub const SCOPES: &str = "read write introspection";

/// How long [`DjangoOauthToolkit::start`] waits for the ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for [`DjangoOauthToolkit::start`] (the server's environment variables).
#[derive(Debug, Clone)]
pub struct DotOptions {
    /// `ACCESS_TTL`: access token lifetime, in seconds (`ACCESS_TOKEN_EXPIRE_SECONDS`).
    pub access_ttl_secs: u64,
    /// `REFRESH_TTL`: a refresh token dies this long after its access token expired
    /// (`REFRESH_TOKEN_EXPIRE_SECONDS`); 0 = never.
    pub refresh_ttl_secs: u64,
    /// `GRACE_PERIOD`: `REFRESH_TOKEN_GRACE_PERIOD_SECONDS`. Within it, a rotated refresh token
    /// presented again gets the answer its first use got; 0 = none (DOT's default).
    pub grace_period_secs: u64,
    /// `ROTATE_REFRESH_TOKEN` (DOT's default: on).
    pub rotate: bool,
    /// `REUSE_PROTECTION`: `REFRESH_TOKEN_REUSE_PROTECTION` (DOT's default: off; on here).
    pub reuse_protection: bool,
}

impl Default for DotOptions {
    fn default() -> Self {
        DotOptions {
            access_ttl_secs: 60,
            refresh_ttl_secs: 86_400,
            grace_period_secs: 0,
            rotate: true,
            reuse_protection: true,
        }
    }
}

/// Counters served by the host script at `GET /_stats`.
#[derive(Debug, serde::Deserialize, Default, Clone, PartialEq, Eq)]
pub struct DotStats {
    /// POST requests to the token endpoint, successful or not.
    pub token_requests: u64,
    /// Token requests by `grant_type` (`(none)`: without one).
    pub by_grant_type: HashMap<String, u64>,
    /// Token requests answered with an error status, by `grant_type`.
    pub errors_by_grant_type: HashMap<String, u64>,
    /// POST requests to the revocation endpoint (RFC 7009).
    pub revocations: u64,
    /// POST requests to the introspection endpoint (RFC 7662).
    pub introspections: u64,
    /// Reuse detections: a revoked refresh token presented again outside the grace period (or
    /// one never used to mint a successor); each revokes its whole token family.
    pub refresh_token_reuses: u64,
    /// Reuse detections that revoked at least one live refresh token (a live grant was killed).
    pub grants_revoked: u64,
    /// Refresh tokens not revoked, all users and clients.
    pub live_refresh_tokens: u64,
}

impl DotStats {
    /// Token requests with this `grant_type` (0 when never seen).
    pub fn grant_type(&self, grant_type: &str) -> u64 {
        self.by_grant_type.get(grant_type).copied().unwrap_or(0)
    }
}

/// What DOT would say of a refresh token now (grace period aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshTokenState {
    /// Not revoked, with its access token: it refreshes.
    Active,
    /// Rotated away or revoked.
    Revoked,
    /// Never issued (or deleted).
    Unknown,
}

#[derive(serde::Deserialize)]
struct ReadyLine {
    issuer: String,
    port: u16,
    token_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
}

/// A running `python server.py`; killed when dropped.
pub struct DjangoOauthToolkit {
    process: PeerProcess,
    ready: ReadyLine,
    http: reqwest::Client,
    /// The database's folder (`DATA_DIR`): deleted here, after the server (declared after it).
    _data: tempfile::TempDir,
}

/// `<workspace>/interop/django-oauth-toolkit`.
pub fn interop_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/django-oauth-toolkit");
    dir.canonicalize().unwrap_or(dir)
}

/// The interpreter: `$TESSERA_DOT_PYTHON`, else the venv `interop/django-oauth-toolkit/.venv`.
pub fn python() -> PathBuf {
    std::env::var_os("TESSERA_DOT_PYTHON").map(PathBuf::from).unwrap_or_else(|| interop_dir().join(".venv/bin/python"))
}

impl DjangoOauthToolkit {
    /// Starts `server.py` on an ephemeral 127.0.0.1 port and waits (at most 30 s) for its ready
    /// line. Panics when the interpreter is missing (see the module's documentation) or the
    /// server does not become ready.
    pub fn start(options: DotOptions) -> DjangoOauthToolkit {
        let dir = interop_dir();
        let python = python();
        if !python.exists() {
            panic!(
                "the django-oauth-toolkit interop server is not installed: no {} (run `python3 -m venv .venv && \
                 .venv/bin/pip install -r requirements.txt` in {}, or set $TESSERA_DOT_PYTHON)",
                python.display(),
                dir.display()
            );
        }
        let data = tempfile::Builder::new().prefix("tessera-dot-").tempdir().expect("a temp directory");
        let flag = |on: bool| if on { "1" } else { "0" };
        let mut command = Command::new(&python);
        command
            .arg("server.py")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("ACCESS_TTL", options.access_ttl_secs.to_string())
            .env("REFRESH_TTL", options.refresh_ttl_secs.to_string())
            .env("GRACE_PERIOD", options.grace_period_secs.to_string())
            .env("ROTATE_REFRESH_TOKEN", flag(options.rotate))
            .env("REUSE_PROTECTION", flag(options.reuse_protection))
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .env("DATA_DIR", data.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("DJANGO_SETTINGS_MODULE")
            .env_remove("PYTHONPATH");
        let (process, ready) = PeerProcess::start(
            "django-oauth-toolkit",
            command,
            "TESSERA_DOT_LOG",
            READY_TIMEOUT,
            "see interop/django-oauth-toolkit/README.md",
        );
        DjangoOauthToolkit { process, ready, http: peer_process::http_client(), _data: data }
    }

    /// `http://127.0.0.1:<port>/o`: the issuer (OIDC discovery at
    /// `<issuer>/.well-known/openid-configuration`).
    pub fn issuer(&self) -> &str {
        &self.ready.issuer
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.ready.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.ready.port
    }

    /// `<issuer>/token/`.
    pub fn token_endpoint(&self) -> String {
        self.ready.token_endpoint.clone()
    }

    /// The path of [`DjangoOauthToolkit::token_endpoint`] (`/o/token/`), e.g. for a fault proxy.
    pub fn token_path(&self) -> &'static str {
        "/o/token/"
    }

    /// `<issuer>/revoke_token/` (RFC 7009).
    pub fn revocation_endpoint(&self) -> String {
        self.ready.revocation_endpoint.clone()
    }

    /// `<issuer>/introspect/` (RFC 7662; access tokens only).
    pub fn introspection_endpoint(&self) -> String {
        self.ready.introspection_endpoint.clone()
    }

    /// Where the server's stderr goes (`None` when inherited).
    pub fn log_path(&self) -> Option<&Path> {
        self.process.log_path()
    }

    /// A plain-http client suitable for talking to this server.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET /_stats`.
    pub async fn stats(&self) -> DotStats {
        let url = format!("{}/_stats", self.origin());
        peer_process::json(self.http.get(&url), &format!("GET {url}")).await
    }

    /// `POST /_stats/reset`: zero every counter.
    pub async fn reset_stats(&self) {
        let url = format!("{}/_stats/reset", self.origin());
        let _: serde_json::Value = peer_process::json(self.http.post(&url), &format!("POST {url}")).await;
    }

    /// What DOT would say of this refresh token now (`POST /_refresh_token`, the host script's
    /// window on DOT's database: DOT's introspection knows access tokens only).
    pub async fn refresh_token_state(&self, refresh_token: &str) -> RefreshTokenState {
        #[derive(serde::Deserialize)]
        struct Answer {
            state: RefreshTokenState,
        }
        let url = format!("{}/_refresh_token", self.origin());
        let answer: Answer =
            peer_process::json(self.http.post(&url).form(&[("token", refresh_token)]), &format!("POST {url}")).await;
        answer.state
    }

    /// Introspects an access token (RFC 7662) as [`CONFIDENTIAL_CLIENT_ID`] (basic auth): the
    /// JSON body, `{"active": false}` or `{"active": true, "scope", "exp", "client_id", "username"}`.
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        let url = self.introspection_endpoint();
        let request = self
            .http
            .post(&url)
            .basic_auth(CONFIDENTIAL_CLIENT_ID, Some(CONFIDENTIAL_CLIENT_SECRET))
            .form(&[("token", token)]);
        peer_process::json(request, &format!("POST {url}")).await
    }

    /// Raw token request to `url` (this server's token endpoint, or the same through a proxy) as
    /// [`CONFIDENTIAL_CLIENT_ID`] (basic auth), bypassing tessera: the HTTP status and the JSON
    /// body, or the transport error's text when no answer came.
    pub async fn token_request_at(&self, url: &str, form: &[(&str, &str)]) -> Result<(u16, serde_json::Value), String> {
        let response = self
            .http
            .post(url)
            .basic_auth(CONFIDENTIAL_CLIENT_ID, Some(CONFIDENTIAL_CLIENT_SECRET))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response.json().await.map_err(|e| format!("POST {url}: non-JSON body: {e}"))?;
        Ok((status, body))
    }

    /// [`DjangoOauthToolkit::token_request_at`] this server's token endpoint; panics when no
    /// answer comes.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        self.token_request_at(&self.token_endpoint(), form).await.unwrap_or_else(|e| panic!("{e}"))
    }
}
