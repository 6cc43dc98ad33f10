//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256 only, RFC 8252 loopback
//! redirects, RFC 9207 `iss`): `GET /authorize` validates the request and serves the login page,
//! `POST /authorize` checks the credentials and redirects back with a code, and the token
//! endpoint redeems the code ([`code_grant`]).
//!
//! The client and its redirect URI are checked before anything else: until both are known to be
//! good, errors are shown as an HTML page and never redirected (RFC 6749 §4.1.2.1), so the
//! server cannot be used as an open redirector. The pending request lives on the server (the
//! form carries only its random id), so nothing the browser posts back can alter it.
//!
//! Codes are single-use, live 60 s, and are stored by SHA-256 digest. Presenting a used code
//! revokes every token issued from it (RFC 6749 §4.1.2).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use url::{Host, Url};

use crate::config::{Client, grant_types};
use crate::handlers::{self, LoginContext, TokenResponse};
use crate::html::{self, LoginPage};
use crate::oauth::{self, Form, OAuthError};
use crate::server::Shared;

/// Lifetime of an authorization code, seconds.
pub(crate) const CODE_TTL: u64 = 60;
/// How long the login page of one request may stay open, seconds.
const REQUEST_TTL: u64 = 600;
/// Above this many entries, expired requests and codes are swept on insert.
const SWEEP_ABOVE: usize = 1024;

type AppState = State<Arc<Shared>>;

/// An authorization request whose login page is open.
#[derive(Debug, Clone)]
struct PendingRequest {
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: Option<String>,
    scope: String,
    code_challenge: String,
    expires_at: u64,
}

/// An issued authorization code and everything it is bound to.
#[derive(Debug, Clone)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    username: String,
    auth_time: u64,
    expires_at: u64,
    used: bool,
    /// Presented again after its first use.
    reused: bool,
    /// The refresh-token family the code's tokens belong to, once issued.
    family: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: HashMap<String, PendingRequest>,
    codes: HashMap<[u8; 32], CodeRecord>,
}

/// Pending authorization requests and issued codes.
#[derive(Debug, Default)]
pub(crate) struct AuthorizeState(Mutex<Inner>);

impl AuthorizeState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_request(&self, request: PendingRequest, now: u64) -> String {
        let id = crate::store::random_token();
        let mut inner = self.lock();
        if inner.requests.len() > SWEEP_ABOVE {
            inner.requests.retain(|_, r| r.expires_at > now);
        }
        inner.requests.insert(id.clone(), request);
        id
    }

    fn pending(&self, id: &str, now: u64) -> Option<PendingRequest> {
        self.lock().requests.get(id).filter(|r| r.expires_at > now).cloned()
    }

    fn close_request(&self, id: &str) -> Option<PendingRequest> {
        self.lock().requests.remove(id)
    }

    fn issue_code(&self, request: PendingRequest, username: &str, now: u64) -> String {
        let code = crate::store::random_token();
        let mut inner = self.lock();
        if inner.codes.len() > SWEEP_ABOVE {
            // A used code is kept until it expires so a replay is still recognised as reuse.
            inner.codes.retain(|_, c| c.expires_at > now);
        }
        inner.codes.insert(
            digest(&code),
            CodeRecord {
                client_id: request.client_id,
                redirect_uri: request.redirect_uri,
                code_challenge: request.code_challenge,
                nonce: request.nonce,
                scope: request.scope,
                username: username.to_owned(),
                auth_time: now,
                expires_at: now + CODE_TTL,
                used: false,
                reused: false,
                family: None,
            },
        );
        code
    }

    /// Takes `code` for `client_id`: marks it used, or reports reuse (returning the family to
    /// revoke). A code presented by another client is refused without being consumed.
    fn redeem(&self, code: &str, client_id: &str, now: u64) -> Result<CodeRecord, Redeem> {
        let mut inner = self.lock();
        let record = inner.codes.get_mut(&digest(code)).ok_or(Redeem::Unknown)?;
        if record.client_id != client_id {
            return Err(Redeem::WrongClient);
        }
        if record.used {
            record.reused = true;
            return Err(Redeem::Reused(record.family));
        }
        record.used = true;
        if record.expires_at <= now {
            return Err(Redeem::Expired);
        }
        Ok(record.clone())
    }

    /// Records the family issued from `code`. Returns `false` when the code was replayed in the
    /// meantime: the caller must then revoke the family.
    fn attach_family(&self, code: &str, family: u64) -> bool {
        let mut inner = self.lock();
        match inner.codes.get_mut(&digest(code)) {
            Some(record) => {
                record.family = Some(family);
                !record.reused
            }
            None => true,
        }
    }
}

#[derive(Debug)]
enum Redeem {
    Unknown,
    WrongClient,
    Expired,
    Reused(Option<u64>),
}

fn digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// Whether `presented` is one of `client`'s redirect URIs: equal as strings, or both loopback
/// IP literal `http` URIs (RFC 8252 §7.3) that differ at most by port.
pub(crate) fn redirect_uri_registered(client: &Client, presented: &str) -> bool {
    client.redirect_uris.iter().any(|registered| registered == presented || loopback_match(registered, presented))
}

fn loopback_match(registered: &str, presented: &str) -> bool {
    let (Ok(registered), Ok(presented)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback_ip = |url: &Url| {
        url.scheme() == "http"
            && match url.host() {
                Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                // `localhost` may resolve anywhere (RFC 8252 §8.3): no port exception.
                _ => false,
            }
    };
    loopback_ip(&registered)
        && loopback_ip(&presented)
        && registered.host() == presented.host()
        && registered.path() == presented.path()
        && registered.query() == presented.query()
        && presented.fragment().is_none()
        && presented.username().is_empty()
        && presented.password().is_none()
}

/// Query parameters, with the names that appeared more than once (RFC 6749 §3.1: none may,
/// but `resource`, RFC 8707 §2.1).
struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
    resources: Vec<String>,
}

impl Params {
    fn parse(query: &str) -> Self {
        let mut values = HashMap::new();
        let mut repeated = Vec::new();
        let mut resources = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if key == "resource" {
                resources.push(value.to_string());
            }
            // RFC 8707 §2.1: one `resource` per resource the login is for.
            if values.insert(key.to_string(), value.into_owned()).is_some() && key != "resource" {
                repeated.push(key.into_owned());
            }
        }
        Self { values, repeated, resources }
    }

    /// A parameter present once with a non-empty value.
    fn get(&self, name: &str) -> Option<&str> {
        if self.repeated.iter().any(|r| r == name) {
            return None;
        }
        self.values.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// `302 Found` to `redirect_uri` with `params` added to its query, plus `iss` (RFC 9207).
fn redirect(s: &Shared, redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return html::error_page(StatusCode::BAD_REQUEST, "The redirect URI is not a valid URL.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        query.append_pair("iss", &s.issuer);
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return html::error_page(StatusCode::BAD_REQUEST, "The redirect URI cannot be used.");
    };
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error redirect (RFC 6749 §4.1.2.1), carrying `state` when the request had one.
fn redirect_error(s: &Shared, redirect_uri: &str, error: &str, description: &str, state: Option<&str>) -> Response {
    tracing::info!(error, description, "authorization request refused");
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect(s, redirect_uri, &params)
}

/// Whether `value` is 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1, §4.2).
fn pkce_syntax_ok(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `GET /authorize`: validates the request, then serves the login page.
pub(crate) async fn authorize_page(State(s): AppState, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let bad = |message: &str| {
        tracing::info!(message, "authorization request refused without redirect");
        html::error_page(StatusCode::BAD_REQUEST, message)
    };
    let Some(client_id) = params.get("client_id") else {
        return bad("The request has no client_id (or repeats it).");
    };
    let Some(client) = s.clients.get(client_id) else {
        return bad("Unknown client: the application that sent you here is not registered.");
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return bad("The request has no redirect_uri (or repeats it).");
    };
    if !redirect_uri_registered(&client, redirect_uri) {
        return bad("The redirect_uri is not registered for this client.");
    }
    // From here on the redirect URI is trusted: errors go back to the client.
    let state = params.get("state");
    let fail = |error: &str, description: &str| redirect_error(&s, redirect_uri, error, description, state);
    if let Some(name) = params.repeated.first() {
        return fail("invalid_request", &format!("parameter `{name}` is repeated"));
    }
    if params.resources.iter().any(|resource| handlers::check_resource(resource).is_err()) {
        return fail("invalid_target", "resource must be an absolute URI without a fragment (RFC 8707 §2)");
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return fail("invalid_request", "missing parameter `response_type`"),
        Some(_) => return fail("unsupported_response_type", "only response_type=code is supported"),
    }
    if !client.allows(grant_types::AUTHORIZATION_CODE) {
        return fail("unauthorized_client", "this client may not use the authorization code grant");
    }
    let Some(state) = state else {
        return fail("invalid_request", "missing parameter `state`");
    };
    let Some(code_challenge) = params.get("code_challenge") else {
        return fail("invalid_request", "PKCE is required: missing parameter `code_challenge`");
    };
    match params.get("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => return fail("invalid_request", "code_challenge_method `plain` is refused: use S256"),
        Some(_) => return fail("invalid_request", "code_challenge_method must be S256"),
        None => return fail("invalid_request", "missing parameter `code_challenge_method` (must be S256)"),
    }
    if code_challenge.len() != 43 || !pkce_syntax_ok(code_challenge) {
        return fail("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)");
    }
    let scope = params
        .get("scope")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "openid".to_owned());
    let now = s.now();
    let request = PendingRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: state.to_owned(),
        nonce: params.get("nonce").map(str::to_owned),
        scope: scope.clone(),
        code_challenge: code_challenge.to_owned(),
        expires_at: now + REQUEST_TTL,
    };
    let request_id = s.authorize.open_request(request, now);
    html::login_page(
        StatusCode::OK,
        &LoginPage {
            request_id: &request_id,
            client_id: &client.client_id,
            scope: &scope,
            username: params.get("login_hint").unwrap_or(""),
            error: None,
        },
    )
}

/// Checks a username, password and (for users who have one) TOTP code typed into a page.
/// The error is meant for the person: it never says which of the fields was wrong.
pub(crate) fn check_login<'s>(
    s: &'s Shared,
    username: &str,
    password: Option<&str>,
    totp: Option<&str>,
) -> Result<&'s str, &'static str> {
    const WRONG: &str = "Wrong username or password.";
    let entry = s.users.get(username).ok_or(WRONG)?;
    if !password.is_some_and(|p| oauth::secrets_match(&entry.user.password, p)) {
        return Err(WRONG);
    }
    if let Some(verifier) = &entry.totp {
        match totp.map(str::trim) {
            None => return Err("This account needs the 6-digit code from your authenticator app."),
            Some(code) if verifier.check(code, s.now()).is_none() => {
                return Err("The one-time code is wrong or has expired.");
            }
            Some(_) => {}
        }
    }
    Ok(&entry.user.username)
}

/// `POST /authorize`: the login form. Wrong credentials show the page again (401); deny and
/// success redirect back to the client.
pub(crate) async fn authorize_submit(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let form = match Form::parse(&headers, &body) {
        Ok(form) => form,
        Err(e) => return html::error_page(StatusCode::BAD_REQUEST, &e.description),
    };
    let now = s.now();
    let Some(request_id) = form.get("request_id") else {
        return html::error_page(StatusCode::BAD_REQUEST, "The form does not name a sign-in request.");
    };
    let Some(request) = s.authorize.pending(request_id, now) else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request is unknown, finished or expired. Start again from the application.",
        );
    };
    if form.get("action") == Some("deny") {
        s.authorize.close_request(request_id);
        return redirect_error(
            &s,
            &request.redirect_uri,
            "access_denied",
            "the user denied the request",
            Some(&request.state),
        );
    }
    let username = form.get("username").unwrap_or("");
    match check_login(&s, username, form.get("password"), form.get("totp")) {
        Err(message) => {
            tracing::info!(client_id = %request.client_id, "login page: credentials refused");
            html::login_page(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    request_id,
                    client_id: &request.client_id,
                    scope: &request.scope,
                    username,
                    error: Some(message),
                },
            )
        }
        Ok(username) => {
            // Closing first makes a double submit of the form fail instead of minting two codes.
            let Some(request) = s.authorize.close_request(request_id) else {
                return html::error_page(StatusCode::BAD_REQUEST, "This sign-in request is already finished.");
            };
            let (redirect_uri, state) = (request.redirect_uri.clone(), request.state.clone());
            let code = s.authorize.issue_code(request, username, now);
            tracing::debug!(username, "authorization code issued");
            redirect(&s, &redirect_uri, &[("code", &code), ("state", &state)])
        }
    }
}

/// The `authorization_code` grant at the token endpoint.
pub(crate) fn code_grant(s: &Shared, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
    // Checked before the code is redeemed: a bad `resource` does not burn the code.
    let resource = handlers::requested_resource(form)?;
    let code = form.require("code")?;
    let redirect_uri = form.require("redirect_uri")?;
    let verifier = form.require("code_verifier")?;
    let record = s.authorize.redeem(code, &client.client_id, s.now()).map_err(|e| match e {
        Redeem::Unknown => OAuthError::invalid_grant("the authorization code is unknown"),
        Redeem::WrongClient => OAuthError::invalid_grant("the authorization code was issued to another client"),
        Redeem::Expired => OAuthError::invalid_grant("the authorization code has expired"),
        Redeem::Reused(family) => {
            if let Some(family) = family {
                s.store.revoke_family(family);
            }
            tracing::warn!(client_id = %client.client_id, "authorization code reuse: its tokens are revoked");
            OAuthError::invalid_grant("the authorization code was already used; tokens issued from it are revoked")
        }
    })?;
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant("redirect_uri differs from the one of the authorization request"));
    }
    if !pkce_syntax_ok(verifier) {
        return Err(OAuthError::invalid_grant("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]"));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !oauth::secrets_match(&computed, &record.code_challenge) {
        return Err(OAuthError::invalid_grant("PKCE verification failed: code_verifier does not match code_challenge"));
    }
    let login = LoginContext { nonce: record.nonce.clone(), auth_time: Some(record.auth_time), resource };
    let (response, family) = handlers::new_login(s, client, &record.username, &record.scope, &login)?;
    if !s.authorize.attach_family(code, family) {
        s.store.revoke_family(family);
        return Err(OAuthError::invalid_grant("the authorization code was used twice; its tokens are revoked"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client::public("c", &[grant_types::AUTHORIZATION_CODE]).with_redirect_uris(uris)
    }

    #[test]
    fn loopback_redirects_match_any_port_only_for_ip_literals() {
        let c = client(&["http://127.0.0.1/callback", "http://[::1]/cb", "http://localhost/cb"]);
        assert!(redirect_uri_registered(&c, "http://127.0.0.1/callback"));
        assert!(redirect_uri_registered(&c, "http://127.0.0.1:49152/callback"));
        assert!(redirect_uri_registered(&c, "http://[::1]:8080/cb"));
        assert!(!redirect_uri_registered(&c, "http://127.0.0.1:49152/other"));
        assert!(!redirect_uri_registered(&c, "http://127.0.0.1:49152/callback?x=1"));
        assert!(!redirect_uri_registered(&c, "https://127.0.0.1:49152/callback"));
        assert!(!redirect_uri_registered(&c, "http://localhost:8080/cb"));
        assert!(redirect_uri_registered(&c, "http://localhost/cb"));
        assert!(!redirect_uri_registered(&c, "http://127.0.0.2:80/callback"));
    }

    #[test]
    fn exact_match_for_other_uris() {
        let c = client(&["https://app.example.com/cb"]);
        assert!(redirect_uri_registered(&c, "https://app.example.com/cb"));
        assert!(!redirect_uri_registered(&c, "https://app.example.com:8443/cb"));
        assert!(!redirect_uri_registered(&c, "https://app.example.com/cb/"));
    }

    #[test]
    fn pkce_syntax() {
        assert!(pkce_syntax_ok(&"a".repeat(43)));
        assert!(!pkce_syntax_ok(&"a".repeat(42)));
        assert!(!pkce_syntax_ok(&"a".repeat(129)));
        assert!(!pkce_syntax_ok(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn repeated_params_are_not_returned() {
        let p = Params::parse("a=1&b=2&a=3&c=");
        assert_eq!((p.get("a"), p.get("b"), p.get("c")), (None, Some("2"), None));
        assert_eq!(p.repeated, ["a"]);
    }
}
