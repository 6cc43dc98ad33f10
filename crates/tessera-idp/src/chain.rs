//! Token chains: a network login's access token buys a short-lived *discovery* token, which buys
//! per-domain access tokens, each accepted only by its own domain's resource. Also RFC 8693 token
//! exchange at `POST /token`. What tessera's `chain` module is tested against.
//!
//! | request | bearer | answer |
//! |---|---|---|
//! | `POST /chain/discovery` | network access token (any grant of this server) | `{access_token, token_type, expires_in}` |
//! | `GET /chain/domains` | discovery token | `{"domains": [{id, name, domain_server: {url, region}}]}` |
//! | `POST /chain/domains/{id}/access` | discovery token | `{id, name, domain_server: {url, region}, access_token, token_type, expires_in}` |
//! | `GET /chain/domains/{id}/resource` | that domain's access token | `{domain, sub}`; 401 for any other token |
//!
//! A rejected bearer token is answered 401 `invalid_token` with a `WWW-Authenticate` challenge;
//! an unknown domain 404 `{"error": "unknown_domain"}`. Discovery and domain tokens are opaque
//! random strings held in memory (by SHA-256 digest), dated by the server's clock (so the clock
//! offset hook expires them too). Test hooks are on [`ChainControl`] ([`IdpServer::chain`](crate::IdpServer::chain)).
//!
//! Never holds a lock across an await; never logs a token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::Client;
use crate::keys::AccessTokenClaims;
use crate::oauth::{self, Form, OAuthError};
use crate::server::Shared;
use crate::store::random_token;

type AppState = State<Arc<Shared>>;

/// `grant_type` of RFC 8693 token exchange, accepted at `POST /token` from confidential clients.
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of an access token: the only type that can be requested here, and the
/// subject type of this server's own access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type of a JWT that is not this server's access token (a CI job's token).
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// What a CI token may be exchanged for: the demo API's scopes.
const CI_SCOPES: &str = "api:read api:write";

/// Default lifetime of discovery tokens.
const DEFAULT_DISCOVERY_TTL: u64 = 60;
/// Default lifetime of domain access tokens.
const DEFAULT_DOMAIN_TTL: u64 = 300;

/// The domains the server knows: `(id, name, region)`.
const DOMAINS: [(&str, &str, &str); 4] = [
    ("alpha", "Alpha Domain", "eu-west"),
    ("beta", "Beta Domain", "us-east"),
    ("gamma", "Gamma Domain", "ap-south"),
    ("delta", "Delta Domain", "eu-north"),
];

/// A domain served by the reference IdP's chain endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDomain {
    /// Identifier used in URLs (`alpha`, `beta`, `gamma`, `delta`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Base URL of the domain's server; its protected resource is `{url}/resource`.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Discovery,
    Domain(String),
}

struct ChainToken {
    subject: String,
    kind: Kind,
    expires_at: u64,
    revoked: bool,
}

/// Chain tokens and lifetimes of one server.
pub(crate) struct ChainState {
    tokens: Mutex<HashMap<[u8; 32], ChainToken>>,
    discovery_ttl: AtomicU64,
    domain_ttl: AtomicU64,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState {
            tokens: Mutex::new(HashMap::new()),
            discovery_ttl: AtomicU64::new(DEFAULT_DISCOVERY_TTL),
            domain_ttl: AtomicU64::new(DEFAULT_DOMAIN_TTL),
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl ChainState {
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], ChainToken>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a token of `kind` for `subject`; returns it with its lifetime. Forgets expired ones.
    fn issue(&self, subject: &str, kind: Kind, now: u64) -> (String, u64) {
        let ttl = match kind {
            Kind::Discovery => self.discovery_ttl.load(Ordering::Relaxed),
            Kind::Domain(_) => self.domain_ttl.load(Ordering::Relaxed),
        };
        let token = random_token();
        let mut tokens = self.lock();
        if tokens.len() >= 4096 {
            tokens.retain(|_, t| t.expires_at > now);
        }
        let record = ChainToken { subject: subject.to_owned(), kind, expires_at: now + ttl, revoked: false };
        tokens.insert(digest(&token), record);
        (token, ttl)
    }

    /// The subject of `token` if it is an active token of `kind`.
    fn check(&self, token: &str, kind: &Kind, now: u64) -> Option<String> {
        let tokens = self.lock();
        let record = tokens.get(&digest(token))?;
        (record.kind == *kind && !record.revoked && record.expires_at > now).then(|| record.subject.clone())
    }

    fn revoke(&self, matches: impl Fn(&Kind) -> bool) -> usize {
        let mut count = 0;
        for record in self.lock().values_mut().filter(|r| !r.revoked && matches(&r.kind)) {
            record.revoked = true;
            count += 1;
        }
        count
    }
}

/// Test hooks for the chain endpoints of a running server.
#[derive(Clone)]
pub struct ChainControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ChainControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainControl").finish_non_exhaustive()
    }
}

impl ChainControl {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ChainControl { shared }
    }

    /// Lifetime of discovery tokens issued from now on (whole seconds). Default 60 s.
    pub fn set_discovery_ttl(&self, ttl: Duration) {
        self.shared.chain.discovery_ttl.store(ttl.as_secs(), Ordering::Relaxed);
    }

    /// Lifetime of domain access tokens issued from now on (whole seconds). Default 300 s.
    pub fn set_domain_ttl(&self, ttl: Duration) {
        self.shared.chain.domain_ttl.store(ttl.as_secs(), Ordering::Relaxed);
    }

    /// Revokes every discovery token issued so far: they are answered 401 from now on.
    /// Returns how many were active.
    pub fn revoke_discovery_tokens(&self) -> usize {
        self.shared.chain.revoke(|kind| *kind == Kind::Discovery)
    }

    /// Revokes every access token issued so far for `domain_id`. Returns how many were active.
    pub fn revoke_domain_tokens(&self, domain_id: &str) -> usize {
        self.shared.chain.revoke(|kind| matches!(kind, Kind::Domain(id) if id == domain_id))
    }

    /// The domains the server serves, with their server URLs.
    pub fn domains(&self) -> Vec<ChainDomain> {
        DOMAINS
            .iter()
            .map(|(id, name, _)| ChainDomain {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                url: domain_url(&self.shared, id),
            })
            .collect()
    }
}

fn domain_url(s: &Shared, id: &str) -> String {
    s.url(&format!("/chain/domains/{id}"))
}

fn domain_json(s: &Shared, id: &str, name: &str, region: &str) -> Value {
    json!({ "id": id, "name": name, "domain_server": { "url": domain_url(s, id), "region": region } })
}

fn find_domain(id: &str) -> Option<(&'static str, &'static str, &'static str)> {
    DOMAINS.iter().copied().find(|(d, _, _)| *d == id)
}

fn unknown_domain(id: &str) -> Response {
    let body = json!({ "error": "unknown_domain", "error_description": format!("no domain `{id}`") });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// The subject of the request's bearer token if it is an active chain token of `kind`.
fn bearer_subject(s: &Shared, headers: &HeaderMap, kind: &Kind) -> Result<String, OAuthError> {
    let token = oauth::bearer_token(headers)?;
    s.chain.check(token, kind, s.now()).ok_or_else(|| {
        let what = match kind {
            Kind::Discovery => "discovery token".to_owned(),
            Kind::Domain(id) => format!("access token for domain `{id}`"),
        };
        OAuthError::bearer(false, format!("the bearer token is not an active {what}"))
    })
}

/// `POST /chain/discovery`: a network access token buys a discovery token.
pub(crate) async fn discovery(State(s): AppState, headers: HeaderMap) -> Response {
    s.stats.update(|st| st.chain_discovery_requests += 1);
    let claims = match oauth::bearer_token(&headers).and_then(|token| {
        crate::handlers::active_access_token(&s, token)
            .ok_or_else(|| OAuthError::bearer(false, "the network access token is invalid, expired or revoked"))
    }) {
        Ok(claims) => claims,
        Err(e) => return e.into_response(),
    };
    let (access_token, expires_in) = s.chain.issue(&claims.sub, Kind::Discovery, s.now());
    tracing::debug!(sub = %claims.sub, "discovery token issued");
    let body = json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": expires_in });
    (oauth::no_store(), Json(body)).into_response()
}

/// `GET /chain/domains`: the domains a discovery token may reach.
pub(crate) async fn list_domains(State(s): AppState, headers: HeaderMap) -> Response {
    s.stats.update(|st| st.chain_domain_list_requests += 1);
    if let Err(e) = bearer_subject(&s, &headers, &Kind::Discovery) {
        return e.into_response();
    }
    let domains: Vec<Value> = DOMAINS.iter().map(|(id, name, region)| domain_json(&s, id, name, region)).collect();
    Json(json!({ "domains": domains })).into_response()
}

/// `POST /chain/domains/{id}/access`: a discovery token buys an access token for one domain.
pub(crate) async fn domain_access(State(s): AppState, Path(id): Path<String>, headers: HeaderMap) -> Response {
    s.stats.update(|st| st.chain_domain_access_requests += 1);
    let subject = match bearer_subject(&s, &headers, &Kind::Discovery) {
        Ok(subject) => subject,
        Err(e) => return e.into_response(),
    };
    let Some((id, name, region)) = find_domain(&id) else {
        return unknown_domain(&id);
    };
    let (access_token, expires_in) = s.chain.issue(&subject, Kind::Domain(id.to_owned()), s.now());
    tracing::debug!(domain = id, sub = %subject, "domain access token issued");
    let mut body = domain_json(&s, id, name, region);
    body["access_token"] = json!(access_token);
    body["token_type"] = json!("Bearer");
    body["expires_in"] = json!(expires_in);
    (oauth::no_store(), Json(body)).into_response()
}

/// `GET /chain/domains/{id}/resource`: accepts only an access token of that domain.
pub(crate) async fn domain_resource(State(s): AppState, Path(id): Path<String>, headers: HeaderMap) -> Response {
    s.stats.update(|st| st.chain_resource_requests += 1);
    let Some((id, _, _)) = find_domain(&id) else {
        return unknown_domain(&id);
    };
    match bearer_subject(&s, &headers, &Kind::Domain(id.to_owned())) {
        Ok(sub) => Json(json!({ "domain": id, "sub": sub })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A successful token exchange response (RFC 8693 §2.2.1).
#[derive(Serialize)]
struct ExchangeResponse {
    access_token: String,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
}

/// `POST /token` with `grant_type` = token exchange: the response, or `None` for any other
/// request (left to the token endpoint, which also reports malformed bodies).
pub(crate) fn token_exchange(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let form = Form::parse(headers, body).ok()?;
    if form.get("grant_type") != Some(TOKEN_EXCHANGE_GRANT_TYPE) {
        return None;
    }
    let result =
        oauth::authenticate_client(s, headers, &form).and_then(|client| token_exchange_grant(s, &client, &form));
    Some(match result {
        Ok(response) => {
            s.stats.update(|st| st.token_exchange_grants += 1);
            (oauth::no_store(), Json(response)).into_response()
        }
        Err(e) => {
            s.stats.update(|st| st.failed_token_requests += 1);
            tracing::info!(error = e.error, description = %e.description, "token exchange refused");
            e.into_response()
        }
    })
}

/// RFC 8693 token exchange: the subject token is an active access token of this server, or one
/// of its CI tokens asked for this issuer ([`crate::ci`]); the issued access token keeps the
/// subject and its scope (or a narrower requested scope) and carries the requested `audience`
/// (else `resource`, else the client id) in `aud`. Only confidential clients with the
/// token-exchange grant may exchange.
fn token_exchange_grant(s: &Shared, client: &Client, form: &Form) -> Result<ExchangeResponse, OAuthError> {
    if client.client_secret.is_none() {
        return Err(OAuthError::unauthorized_client("token exchange needs a confidential client"));
    }
    if !client.allows(TOKEN_EXCHANGE_GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(format!(
            "client `{}` may not use grant_type `{TOKEN_EXCHANGE_GRANT_TYPE}`",
            client.client_id
        )));
    }
    let subject_token = form.require("subject_token")?;
    let subject_type = form.require("subject_token_type")?;
    if form.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!("only {ACCESS_TOKEN_TYPE} can be requested")));
    }
    // The subject and the scopes it holds: an access token of this server keeps its own; a CI
    // token (workload identity, crate::ci) holds the demo API's.
    let (sub, granted) = match subject_type {
        ACCESS_TOKEN_TYPE => {
            let subject = crate::handlers::active_access_token(s, subject_token)
                .ok_or_else(|| OAuthError::invalid_grant("the subject token is invalid, expired or revoked"))?;
            (subject.sub, subject.scope)
        }
        JWT_TOKEN_TYPE => {
            let ci = crate::ci::verify(s, subject_token)
                .map_err(|problem| OAuthError::invalid_grant(format!("the subject token {problem}")))?;
            (ci.sub, CI_SCOPES.to_owned())
        }
        _ => {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE} or {JWT_TOKEN_TYPE}"
            )));
        }
    };
    let scope = match crate::handlers::requested_scope(form) {
        Some(requested) => {
            if let Some(extra) = requested.split(' ').find(|r| !granted.split(' ').any(|g| g == *r)) {
                return Err(OAuthError::invalid_scope(format!("scope `{extra}` is not granted to the subject token")));
            }
            requested
        }
        None => granted,
    };
    // RFC 8693 §2.1: `resource` is an absolute URI (checked as for every grant, RFC 8707);
    // `audience` a logical name.
    let resource = crate::handlers::requested_resource(form)?;
    let audience = form.get("audience").map(str::to_owned).or(resource).unwrap_or_else(|| client.client_id.clone());
    let now = s.now();
    let ttl = s.access_token_ttl();
    let claims = AccessTokenClaims {
        iss: s.issuer.clone(),
        sub,
        aud: audience,
        exp: now + ttl,
        iat: now,
        jti: random_token(),
        scope: scope.clone(),
        client_id: client.client_id.clone(),
    };
    let access_token = s.keys.sign("at+jwt", &claims).map_err(OAuthError::server_error)?;
    s.store.record_access(claims.jti, None, claims.exp, now);
    Ok(ExchangeResponse {
        access_token,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_kind_expiry_and_revocation() {
        let state = ChainState::default();
        let (discovery, ttl) = state.issue("alice", Kind::Discovery, 100);
        assert_eq!(ttl, DEFAULT_DISCOVERY_TTL);
        let (alpha, _) = state.issue("alice", Kind::Domain("alpha".into()), 100);
        assert_eq!(state.check(&discovery, &Kind::Discovery, 100).as_deref(), Some("alice"));
        assert_eq!(state.check(&discovery, &Kind::Domain("alpha".into()), 100), None);
        assert_eq!(state.check(&alpha, &Kind::Domain("beta".into()), 100), None);
        assert_eq!(state.check(&discovery, &Kind::Discovery, 100 + DEFAULT_DISCOVERY_TTL), None);
        assert_eq!(state.revoke(|k| matches!(k, Kind::Domain(id) if id == "alpha")), 1);
        assert_eq!(state.check(&alpha, &Kind::Domain("alpha".into()), 100), None);
        assert!(state.check(&discovery, &Kind::Discovery, 100).is_some());
        assert_eq!(state.check("unknown", &Kind::Discovery, 100), None);
    }
}
