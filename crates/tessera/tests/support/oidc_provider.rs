//! Test harness for the third-party OAuth / OpenID Connect server in
//! `interop/oidc-provider` (panva's `oidc-provider`, hosted by `server.mjs`).
//!
//! Include it from a `support/mod.rs` (`pub mod oidc_provider;`) that also includes its sibling
//! `peer_process.rs` (`pub mod peer_process;`): the child-process plumbing both harnesses share.
//! It needs `node` on `PATH` (or in `$NODE`) and `npm ci` run once in `interop/oidc-provider`.
//!
//! ```ignore
//! let idp = OidcProvider::start(OidcProviderOptions::default());
//! let token_url = idp.token_endpoint();
//! // ... drive tessera against it ...
//! let stats = idp.stats().await;
//! assert_eq!(stats.by_grant_type.get("refresh_token"), Some(&1));
//! ```
//!
//! The server's stderr goes to a log file in the temp directory (its path is
//! [`OidcProvider::log_path`]; it is kept when the test panics and deleted otherwise).
//! Set `TESSERA_OIDC_PROVIDER_LOG=inherit` to send it to the test's stderr instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::peer_process::{self, PeerProcess};

/// Password-grant account without TOTP.
#[allow(dead_code)]
pub const ALICE: &str = "alice";
/// Password of [`ALICE`].
#[allow(dead_code)]
pub const ALICE_PASSWORD: &str = "alice-password";
/// Password-grant account that also needs a `totp` parameter.
#[allow(dead_code)]
pub const BOB: &str = "bob";
/// Password of [`BOB`].
#[allow(dead_code)]
pub const BOB_PASSWORD: &str = "bob-password";
/// Base32 TOTP secret of [`BOB`] (RFC 6238 defaults: SHA-1, 6 digits, 30 s; the server
/// accepts the previous and next step too).
#[allow(dead_code)]
pub const BOB_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// Confidential client authenticating with `client_secret_basic`; grant types
/// `password`, `client_credentials`, `refresh_token`, `authorization_code`.
#[allow(dead_code)]
pub const CONFIDENTIAL_CLIENT_ID: &str = "confidential-client";
/// Secret of [`CONFIDENTIAL_CLIENT_ID`].
#[allow(dead_code)]
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "confidential-secret";
/// Confidential client authenticating with `client_secret_post` (same grant types as
/// [`CONFIDENTIAL_CLIENT_ID`]).
#[allow(dead_code)]
pub const POST_CLIENT_ID: &str = "post-client";
/// Secret of [`POST_CLIENT_ID`].
#[allow(dead_code)]
pub const POST_CLIENT_SECRET: &str = "post-secret";
/// Public client (`token_endpoint_auth_method=none`); grant types `password`, `refresh_token`.
#[allow(dead_code)]
pub const PUBLIC_CLIENT_ID: &str = "public-client";
/// Public client (`token_endpoint_auth_method=none`) for the device authorization grant
/// (RFC 8628) and `refresh_token`. A refresh token is issued only when `offline_access` is asked for.
#[allow(dead_code)]
pub const DEVICE_CLIENT_ID: &str = "device-client";
/// Client authenticating with `private_key_jwt`; its registered public keys are those of
/// `testdata/client-assertion/{rsa,ec,ed25519}.pem` (kids `test-rsa`, `test-ec`, `test-ed`);
/// grant types `password`, `client_credentials`, `refresh_token`.
#[allow(dead_code)]
pub const JWT_CLIENT_ID: &str = "jwt-client";
/// Client authenticating with `client_secret_jwt` (same grant types as [`JWT_CLIENT_ID`]).
#[allow(dead_code)]
pub const SECRET_JWT_CLIENT_ID: &str = "secret-jwt-client";
/// A public client whose access tokens must be DPoP-bound (RFC 9449; password and refresh_token
/// grants); the server demands a nonce of every request with a DPoP proof.
#[allow(dead_code)]
pub const DPOP_CLIENT_ID: &str = "dpop-client";
/// Secret of [`SECRET_JWT_CLIENT_ID`].
#[allow(dead_code)]
pub const SECRET_JWT_CLIENT_SECRET: &str = "secret-jwt-client-secret-of-at-least-32-bytes";

/// Client authenticating with `tls_client_auth` (RFC 8705 §2.1): a certificate issued by
/// `testdata/mtls/ca.pem` with subject `CN=mtls-client` (`client.pem`, `client-key.pem`); its
/// access tokens are bound to the certificate. Grant types `password`, `client_credentials`,
/// `refresh_token`.
#[allow(dead_code)]
pub const MTLS_CLIENT_ID: &str = "mtls-client";
/// Client authenticating with `self_signed_tls_client_auth` (RFC 8705 §2.2): the self-signed
/// `testdata/mtls/self-signed.pem` is registered in its JWKS (`x5c`). Same grants and binding as
/// [`MTLS_CLIENT_ID`].
#[allow(dead_code)]
pub const SELF_SIGNED_MTLS_CLIENT_ID: &str = "self-signed-mtls-client";

/// The test-only certificate or key `testdata/mtls/{name}` (`ca.pem`, `client.pem`,
/// `client-key.pem`, `self-signed.pem`, `self-signed-key.pem`, `wrong.pem`, `wrong-key.pem`).
#[allow(dead_code)]
pub fn mtls_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mtls").join(name)
}

/// The test-only key `testdata/client-assertion/{name}` (`rsa.pem`, `ec.pem`, `ed25519.pem`,
/// `ec.jwk.json`, ...; `wrong-ec.pem` is registered nowhere).
#[allow(dead_code)]
pub fn assertion_key_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/client-assertion").join(name)
}

/// Redirect URI registered for the confidential clients (authorization_code).
#[allow(dead_code)]
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// Every scope the server knows; the password grant grants all of them when no `scope` is sent.
#[allow(dead_code)]
pub const SCOPES: &str = "openid offline_access api:read api:write";

/// How long [`OidcProvider::start`] waits for the server's ready line.
#[allow(dead_code)]
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for [`OidcProvider::start`].
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct OidcProviderOptions {
    /// Lifetime of access tokens (password, refresh_token, authorization_code and
    /// client_credentials grants), in seconds (`ACCESS_TTL`).
    pub access_ttl_secs: u64,
    /// Lifetime of each refresh token, in seconds (`REFRESH_TTL`); a rotated refresh
    /// token gets a fresh lifetime.
    pub refresh_ttl_secs: u64,
    /// Lifetime of device and user codes, in seconds (`DEVICE_CODE_TTL`).
    pub device_code_ttl_secs: u64,
    /// `interval` added to device authorization responses, in seconds (`DEVICE_INTERVAL`);
    /// 0 sends none, like oidc-provider itself (clients then poll every 5 s).
    pub device_interval_secs: u64,
    /// The client authentication methods the server offers, comma-separated
    /// (`CLIENT_AUTH_METHODS`); `None`: every one.
    pub client_auth_methods: Option<&'static str>,
}

impl Default for OidcProviderOptions {
    fn default() -> Self {
        Self {
            access_ttl_secs: 60,
            refresh_ttl_secs: 86_400,
            device_code_ttl_secs: 600,
            device_interval_secs: 0,
            client_auth_methods: None,
        }
    }
}

/// Counters served by the server at `GET /_stats`.
#[allow(dead_code)]
#[derive(Debug, serde::Deserialize, Default, Clone, PartialEq, Eq)]
pub struct OidcStats {
    /// POST requests to the token endpoint, successful or not.
    pub token_requests: u64,
    /// Token requests by `grant_type` (`password`, `refresh_token`, `client_credentials`
    /// and `authorization_code` are always present; `(none)` counts requests without one).
    pub by_grant_type: HashMap<String, u64>,
    /// POST requests to the revocation endpoint (RFC 7009).
    pub revocations: u64,
    /// POST requests to the introspection endpoint (RFC 7662).
    pub introspections: u64,
    /// POST requests to the device authorization endpoint (RFC 8628 §3.1).
    #[serde(default)]
    pub device_authorizations: u64,
    /// `grant.revoked` events: a refresh-token reuse detection, or the revocation of a
    /// refresh token at the revocation endpoint (both revoke the whole grant).
    pub grants_revoked: u64,
    /// Reuse detections only: a consumed (rotated) refresh token was presented again.
    #[serde(default)]
    pub refresh_token_reuses: u64,
    /// The `jti` of every client assertion received at the token and revocation endpoints.
    #[serde(default)]
    pub assertion_jtis: Vec<String>,
    /// Their `aud`, in the same order.
    #[serde(default)]
    pub assertion_auds: Vec<String>,
    /// Their header's `alg`, in the same order.
    #[serde(default)]
    pub assertion_algs: Vec<String>,
    /// The `x5t` header of each assertion (`None` when absent).
    #[serde(default)]
    pub assertion_x5ts: Vec<Option<String>>,
    /// Per assertion: `x5t` and `x5t#S256` are the thumbprints of the first `x5c` certificate
    /// (`None` without `x5c`).
    #[serde(default)]
    pub assertion_x5c_consistent: Vec<Option<bool>>,
    /// Requests that carried a DPoP proof, by route (`token`, `userinfo`, ...).
    #[serde(default)]
    pub dpop_proofs: HashMap<String, u64>,
    /// `use_dpop_nonce` answers, by route.
    #[serde(default)]
    pub dpop_nonce_demands: HashMap<String, u64>,
}

impl OidcStats {
    /// Token requests with this `grant_type` (0 when never seen).
    #[allow(dead_code)]
    pub fn grant_type(&self, grant_type: &str) -> u64 {
        self.by_grant_type.get(grant_type).copied().unwrap_or(0)
    }
}

/// A running `node server.mjs` child process; killed when dropped.
#[allow(dead_code)]
pub struct OidcProvider {
    /// The child; its stdin is kept open: the server exits when it closes, so it cannot outlive
    /// this process even if the test crashes before `Drop` runs.
    process: PeerProcess,
    issuer: String,
    port: u16,
    mtls_base: String,
    resources: Vec<String>,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct ReadyLine {
    issuer: String,
    port: u16,
    mtls_base: String,
    resources: Vec<String>,
}

/// `<workspace>/interop/oidc-provider`.
#[allow(dead_code)]
pub fn interop_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/oidc-provider");
    dir.canonicalize().unwrap_or(dir)
}

impl OidcProvider {
    /// Starts `node server.mjs` in [`interop_dir`] on an ephemeral 127.0.0.1 port and
    /// waits (at most 30 s) for its ready line.
    ///
    /// Panics if `node_modules` is missing (run `npm ci` in that folder), if `node`
    /// cannot be started (`$NODE` overrides the binary), or if the server does not
    /// become ready.
    #[allow(dead_code)]
    pub fn start(options: OidcProviderOptions) -> OidcProvider {
        let dir = interop_dir();
        if !dir.join("node_modules/oidc-provider/package.json").is_file() {
            panic!("oidc-provider interop server is not installed: run `npm ci` in {}", dir.display());
        }

        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
        let mut command = Command::new(&node);
        command
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("ACCESS_TTL", options.access_ttl_secs.to_string())
            .env("REFRESH_TTL", options.refresh_ttl_secs.to_string())
            .env("DEVICE_CODE_TTL", options.device_code_ttl_secs.to_string())
            .env("DEVICE_INTERVAL", options.device_interval_secs.to_string())
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .env_remove("DEBUG");
        match options.client_auth_methods {
            Some(methods) => command.env("CLIENT_AUTH_METHODS", methods),
            None => command.env_remove("CLIENT_AUTH_METHODS"),
        };
        let (process, ReadyLine { issuer, port, mtls_base, resources }) = PeerProcess::start(
            "oidc-provider",
            command,
            "TESSERA_OIDC_PROVIDER_LOG",
            READY_TIMEOUT,
            "is Node.js installed? set $NODE to its path",
        );
        OidcProvider { process, issuer, port, mtls_base, resources, http: peer_process::http_client() }
    }

    /// The protected resources of the host script's loopback resource server
    /// (`http://127.0.0.1:<port>/mcp` and `/files`): each publishes RFC 9728 metadata naming
    /// [`OidcProvider::issuer`] and accepts only tokens issued for it (RFC 8707).
    #[allow(dead_code)]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    #[allow(dead_code)]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `https://127.0.0.1:<port>`: the listener that asks for TLS client certificates (RFC 8705),
    /// published in discovery as `mtls_endpoint_aliases`; its certificate is issued by
    /// `testdata/mtls/ca.pem` ([`mtls_file`]).
    #[allow(dead_code)]
    pub fn mtls_base(&self) -> &str {
        &self.mtls_base
    }

    /// The TCP port on 127.0.0.1.
    #[allow(dead_code)]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<issuer>/.well-known/openid-configuration`.
    #[allow(dead_code)]
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// `<issuer>/token` (oidc-provider's default route, as advertised by discovery).
    #[allow(dead_code)]
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// `<issuer>/token/introspection` (RFC 7662).
    #[allow(dead_code)]
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// `<issuer>/token/revocation` (RFC 7009).
    #[allow(dead_code)]
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/token/revocation", self.issuer)
    }

    /// `<issuer>/auth` (authorization endpoint; the dev login form accepts any login).
    #[allow(dead_code)]
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// `<issuer>/device/auth` (RFC 8628 device authorization endpoint).
    #[allow(dead_code)]
    pub fn device_authorization_endpoint(&self) -> String {
        format!("{}/device/auth", self.issuer)
    }

    /// `<issuer>/device`: the verification page a person opens to enter a user code.
    #[allow(dead_code)]
    pub fn verification_uri(&self) -> String {
        format!("{}/device", self.issuer)
    }

    /// Approves `user_code` the way a person does in a browser: opens the verification page
    /// (`GET /device`), submits the code with the page's `xsrf` field, confirms it, signs in as
    /// `username` on the dev-interactions login form, and consents; cookies are kept and
    /// redirects followed as a browser would. Panics (with the page) if any step goes wrong.
    /// The polling client gets its tokens on its next poll.
    #[allow(dead_code)]
    pub async fn approve_device(&self, user_code: &str, username: &str) {
        let mut browser = Browser::new(&self.issuer);
        let mut page = browser.confirmation_page(&self.verification_uri(), user_code).await;
        let confirm = page.form("op.deviceConfirmForm");
        page = browser.submit(&confirm, &[]).await;
        // The interactions: a login (no session in this browser yet), then a consent. Bounded.
        for _ in 0..4 {
            if page.body.contains("Sign-in Success") {
                return;
            }
            let Some(form) = page.forms().into_iter().find(|form| form.field("prompt").is_some()) else { break };
            page = match form.field("prompt") {
                Some("login") => browser.submit(&form, &[("login", username), ("password", "any-password")]).await,
                Some("consent") => browser.submit(&form, &[]).await,
                _ => break,
            };
        }
        panic!("approving device code {user_code} did not end on the success page:\n{page:?}");
    }

    /// Denies `user_code` the way a person does: enters it on the verification page, then
    /// presses "Abort" on the confirmation page. The polling client then gets `access_denied`.
    #[allow(dead_code)]
    pub async fn deny_device(&self, user_code: &str) {
        let mut browser = Browser::new(&self.issuer);
        let page = browser.confirmation_page(&self.verification_uri(), user_code).await;
        let confirm = page.form("op.deviceConfirmForm");
        // The "[ Abort ]" button submits the confirmation form plus its own name and value.
        let abort = page.button_for("op.deviceConfirmForm", "abort");
        let page = browser.submit(&confirm, &[(abort.0.as_str(), abort.1.as_str())]).await;
        assert!(page.body.contains("The Sign-in request was interrupted"), "denying {user_code}:\n{page:?}");
    }

    /// Revokes `token` (RFC 7009) as the public client `client_id`, bypassing tessera, and
    /// returns the HTTP status. Revoking a refresh token revokes its whole grant here.
    #[allow(dead_code)]
    pub async fn revoke_as_public_client(&self, client_id: &str, token: &str) -> u16 {
        let url = self.revocation_endpoint();
        let response = self
            .http
            .post(&url)
            .form(&[("token", token), ("client_id", client_id)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        response.status().as_u16()
    }

    /// Where the server's stderr goes (`None` when inherited).
    #[allow(dead_code)]
    pub fn log_path(&self) -> Option<&Path> {
        self.process.log_path()
    }

    /// The UserInfo endpoint (oidc-provider's default route): a resource server that accepts
    /// DPoP-bound tokens with a valid proof only.
    #[allow(dead_code)]
    pub fn userinfo_endpoint(&self) -> String {
        format!("{}/me", self.issuer)
    }

    /// A plain-http client suitable for talking to this server.
    #[allow(dead_code)]
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET /_stats`.
    #[allow(dead_code)]
    pub async fn stats(&self) -> OidcStats {
        let url = format!("{}/_stats", self.issuer);
        peer_process::json(self.http.get(&url), &format!("GET {url}")).await
    }

    /// `POST /_stats/reset`: zero every counter.
    #[allow(dead_code)]
    pub async fn reset_stats(&self) {
        let url = format!("{}/_stats/reset", self.issuer);
        let _: serde_json::Value = peer_process::json(self.http.post(&url), &format!("POST {url}")).await;
    }

    /// Introspects `token` (RFC 7662) as [`CONFIDENTIAL_CLIENT_ID`] (basic auth) and
    /// returns the JSON body, e.g. `{"active": false}` or
    /// `{"active": true, "sub": "alice", "client_id": ..., "scope": ..., "exp": ...}`.
    #[allow(dead_code)]
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        let url = self.introspection_endpoint();
        let request = self
            .http
            .post(&url)
            .basic_auth(CONFIDENTIAL_CLIENT_ID, Some(CONFIDENTIAL_CLIENT_SECRET))
            .form(&[("token", token)]);
        peer_process::json(request, &format!("POST {url}")).await
    }

    /// Raw token request as [`CONFIDENTIAL_CLIENT_ID`] (basic auth), bypassing tessera:
    /// returns the HTTP status and the JSON body (a token response or an RFC 6749 §5.2
    /// error). Counts in [`OidcStats`] like any other token request.
    #[allow(dead_code)]
    pub async fn token_request(&self, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let url = self.token_endpoint();
        let response = self
            .http
            .post(&url)
            .basic_auth(CONFIDENTIAL_CLIENT_ID, Some(CONFIDENTIAL_CLIENT_SECRET))
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or_else(|e| panic!("POST {url}: non-JSON body: {e}"));
        (status, body)
    }
}

/// Just enough of a browser for oidc-provider's device verification and dev-interaction pages:
/// one origin, a cookie jar honouring `Path` and deletions, redirects followed by hand (a 302
/// or 303 after a POST becomes a GET, as browsers do), HTML forms read from the page.
#[allow(dead_code)]
struct Browser {
    http: reqwest::Client,
    origin: String,
    /// (name, path, value)
    cookies: Vec<(String, String, String)>,
}

/// A page the browser ended on after redirects.
#[allow(dead_code)]
struct Page {
    url: String,
    status: u16,
    body: String,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}\n{}", self.status, self.url, self.body)
    }
}

/// An HTML form: where it posts, and the fields it carries (hidden inputs and filled-in ones).
#[allow(dead_code)]
#[derive(Debug, Clone)]
struct Form {
    id: Option<String>,
    action: String,
    fields: Vec<(String, String)>,
}

#[allow(dead_code)]
impl Form {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[allow(dead_code)]
impl Browser {
    fn new(origin: &str) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("build reqwest client");
        Browser { http, origin: origin.trim_end_matches('/').to_owned(), cookies: Vec::new() }
    }

    /// Opens the verification page, types `user_code` into its form and submits it: the
    /// confirmation page ("the following code should be displayed on your device").
    async fn confirmation_page(&mut self, verification_uri: &str, user_code: &str) -> Page {
        let page = self.go("GET", verification_uri.to_owned(), None).await;
        let input = page.form("op.deviceInputForm");
        assert!(
            input.field("xsrf").is_some_and(|x| !x.is_empty()),
            "no xsrf field on the verification page:\n{page:?}"
        );
        let page = self.submit(&input, &[("user_code", user_code)]).await;
        assert!(page.body.contains("op.deviceConfirmForm"), "user code {user_code} not accepted:\n{page:?}");
        page
    }

    /// Submits `form` (POST, urlencoded) with `extra` fields set or added, following redirects.
    async fn submit(&mut self, form: &Form, extra: &[(&str, &str)]) -> Page {
        let mut fields = form.fields.clone();
        for (name, value) in extra {
            match fields.iter_mut().find(|(n, _)| n == name) {
                Some(field) => field.1 = (*value).to_owned(),
                None => fields.push(((*name).to_owned(), (*value).to_owned())),
            }
        }
        let url = self.absolute(&form.action);
        self.go("POST", url, Some(fields)).await
    }

    /// One navigation: the request, then at most 10 redirects.
    async fn go(&mut self, method: &str, mut url: String, mut form: Option<Vec<(String, String)>>) -> Page {
        let mut method = method.to_owned();
        for _ in 0..=10 {
            let path = self.path_of(&url);
            let mut request = if method == "POST" { self.http.post(&url) } else { self.http.get(&url) };
            let cookie = self.cookie_header(&path);
            if !cookie.is_empty() {
                request = request.header("cookie", cookie);
            }
            if let Some(fields) = &form {
                request = request.form(fields);
            }
            let response = request.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let status = response.status().as_u16();
            for set_cookie in response.headers().get_all("set-cookie") {
                self.store_cookie(&path, set_cookie.to_str().unwrap_or_default());
            }
            let location = response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(location)) => {
                    if matches!(status, 301..=303) {
                        method = "GET".to_owned();
                        form = None;
                    }
                    url = self.absolute(&location);
                }
                _ => {
                    let body = response.text().await.unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
                    return Page { url, status, body };
                }
            }
        }
        panic!("more than 10 redirects from {url}");
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            assert!(location.starts_with(&self.origin), "the browser stays on {}: {location}", self.origin);
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", self.origin)
        } else {
            panic!("relative redirect or form action not supported: {location}")
        }
    }

    fn path_of(&self, url: &str) -> String {
        let rest = url.strip_prefix(&self.origin).unwrap_or(url);
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        if path.is_empty() { "/".to_owned() } else { path.to_owned() }
    }

    /// RFC 6265 §5.4, one origin: cookies whose path matches, longest path first.
    fn cookie_header(&self, path: &str) -> String {
        let mut matching: Vec<_> = self
            .cookies
            .iter()
            .filter(|(_, cookie_path, _)| {
                path == cookie_path
                    || (path.starts_with(cookie_path.as_str())
                        && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
            })
            .collect();
        matching.sort_by_key(|(_, cookie_path, _)| std::cmp::Reverse(cookie_path.len()));
        matching.iter().map(|(name, _, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    /// RFC 6265 §5.2, the parts oidc-provider uses: `Path` (default: the request's directory),
    /// and deletion by an empty value, `Max-Age=0` or an `Expires` in 1970.
    fn store_cookie(&mut self, request_path: &str, header: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else { return };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let mut path = match request_path.rfind('/') {
            Some(0) | None => "/".to_owned(),
            Some(slash) => request_path[..slash].to_owned(),
        };
        let mut deleted = value.is_empty();
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if val.starts_with('/') => path = val.trim().to_owned(),
                "max-age" => deleted |= val.trim().parse::<i64>().is_ok_and(|age| age <= 0),
                "expires" => deleted |= val.contains("1970"),
                _ => {}
            }
        }
        self.cookies.retain(|(n, p, _)| !(*n == name && *p == path));
        if !deleted {
            self.cookies.push((name, path, value));
        }
    }
}

#[allow(dead_code)]
impl Page {
    /// Every `<form>` of the page, with its `<input>`s that have a name.
    fn forms(&self) -> Vec<Form> {
        let mut forms = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find("<form") {
            let tail = &rest[start..];
            let end = tail.find("</form>").unwrap_or(tail.len());
            let html = &tail[..end];
            let attributes = tag_attributes(html);
            let mut fields = Vec::new();
            let mut inputs = html;
            while let Some(at) = inputs.find("<input") {
                let input = tag_attributes(&inputs[at..]);
                if let Some(name) = attribute(&input, "name") {
                    fields.push((name.to_owned(), attribute(&input, "value").unwrap_or_default().to_owned()));
                }
                inputs = &inputs[at + 6..];
            }
            forms.push(Form {
                id: attribute(&attributes, "id").map(str::to_owned),
                action: attribute(&attributes, "action").unwrap_or(&self.url).to_owned(),
                fields,
            });
            rest = &tail[end..];
        }
        forms
    }

    /// The form with this `id`; panics (showing the page) when there is none.
    fn form(&self, id: &str) -> Form {
        self.forms()
            .into_iter()
            .find(|form| form.id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no form {id} on the page:\n{self:?}"))
    }

    /// `(name, value)` of the submit button named `name` that belongs to form `form_id`.
    fn button_for(&self, form_id: &str, name: &str) -> (String, String) {
        let mut rest = self.body.as_str();
        while let Some(at) = rest.find("<button") {
            let button = tag_attributes(&rest[at..]);
            if attribute(&button, "form") == Some(form_id) && attribute(&button, "name") == Some(name) {
                return (name.to_owned(), attribute(&button, "value").unwrap_or_default().to_owned());
            }
            rest = &rest[at + 7..];
        }
        panic!("no button {name} for form {form_id} on the page:\n{self:?}")
    }
}

#[allow(dead_code)]
fn attribute<'a>(attributes: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The attributes of the tag `html` starts with (`<tag a="1" b='2' c=3 d>`), values unescaped.
#[allow(dead_code)]
fn tag_attributes(html: &str) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    let tag = html.split_once('>').map_or(html, |(tag, _)| tag);
    let mut chars = tag.char_indices().skip_while(|(_, c)| !c.is_whitespace()).peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace() || *c == '/').is_some() {}
        let mut name = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=' && *c != '/') {
            name.push(c);
        }
        if name.is_empty() {
            return attributes;
        }
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '=').is_some() {
            match chars.next_if(|(_, c)| *c == '"' || *c == '\'') {
                Some((_, quote)) => {
                    for (_, c) in chars.by_ref() {
                        if c == quote {
                            break;
                        }
                        value.push(c);
                    }
                }
                None => {
                    while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                        value.push(c);
                    }
                }
            }
        }
        let value = value
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        attributes.push((name.to_ascii_lowercase(), value));
    }
}
