//! The protocol endpoints: discovery, JWKS, token (password + TOTP, refresh_token with rotation
//! and reuse detection, client_credentials; authorization_code and device_code are delegated to
//! `authorize.rs` and `device.rs`), revocation (RFC 7009), introspection (RFC 7662), userinfo
//! and the protected `/api/whoami`. Also the token-minting helpers every login path shares.
//!
//! Handlers do their work synchronously against the in-memory state and never hold a lock
//! across an await. Logs name grant types, clients and users, never credentials or tokens.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Client, grant_types};
use crate::keys::{self, AccessTokenClaims, IdTokenClaims};
use crate::oauth::{self, Form, OAuthError};
use crate::server::Shared;
use crate::store::{Grant, RedeemError};

type AppState = State<Arc<Shared>>;

pub(crate) const DEFAULT_SCOPE: &str = "openid";

/// `GET /.well-known/openid-configuration`, and the same document at RFC 8414's
/// `/.well-known/oauth-authorization-server`.
pub(crate) async fn discovery(State(s): AppState) -> Json<Value> {
    let auth_methods = ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"];
    Json(json!({
        "issuer": s.issuer,
        "authorization_endpoint": s.url("/authorize"),
        "token_endpoint": s.url("/token"),
        "device_authorization_endpoint": s.url("/device_authorization"),
        "jwks_uri": s.url("/jwks"),
        "revocation_endpoint": s.url("/revoke"),
        "introspection_endpoint": s.url("/introspect"),
        "userinfo_endpoint": s.url("/userinfo"),
        "registration_endpoint": s.url("/register"),
        // Non-standard: the generic email one-time-code login (docs/reference-idp.md).
        "otp_start_endpoint": s.url("/otp/start"),
        "otp_verify_endpoint": s.url("/otp/verify"),
        "grant_types_supported": grant_types::TOKEN_ENDPOINT,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "id_token_signing_alg_values_supported": [keys::ALGORITHM_NAME],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified", "preferred_username"
        ],
    }))
}

/// `GET /jwks`.
pub(crate) async fn jwks(State(s): AppState) -> Response {
    Json(s.keys.jwks()).into_response()
}

/// The JSON of a successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
}

/// ID token claims that depend on how the user logged in.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoginContext {
    /// The authorization request's `nonce`.
    pub(crate) nonce: Option<String>,
    /// When the user authenticated (Unix seconds).
    pub(crate) auth_time: Option<u64>,
    /// The RFC 8707 `resource` of the token request: the access token's `aud` (else the client id).
    pub(crate) resource: Option<String>,
}

/// The token request's RFC 8707 `resource` parameter: an absolute URL without a fragment
/// (`invalid_target` otherwise). One per token request (§2.2: a token has one audience here).
pub(crate) fn requested_resource(form: &Form) -> Result<Option<String>, OAuthError> {
    if form.resources().len() > 1 {
        return Err(invalid_target("a token request asks for one resource (RFC 8707 §2.2)"));
    }
    let Some(resource) = form.get("resource") else { return Ok(None) };
    check_resource(resource)?;
    Ok(Some(resource.to_owned()))
}

/// Every `resource` of an authorization or device authorization request (RFC 8707 §2.1: as many
/// as the login is for), each an absolute URI without a fragment.
pub(crate) fn requested_resources(form: &Form) -> Result<Vec<String>, OAuthError> {
    form.resources().iter().map(|resource| check_resource(resource).map(|()| resource.clone())).collect()
}

pub(crate) fn check_resource(resource: &str) -> Result<(), OAuthError> {
    match url::Url::parse(resource) {
        Ok(url) if url.fragment().is_none() => Ok(()),
        _ => Err(invalid_target("resource must be an absolute URI without a fragment (RFC 8707 §2)")),
    }
}

fn invalid_target(description: &str) -> OAuthError {
    OAuthError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_target", description)
}

/// `POST /token`.
pub(crate) async fn token(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    // RFC 8693 token exchange is answered by the chain module (its response has `issued_token_type`).
    if let Some(response) = crate::chain::token_exchange(&s, &headers, &body) {
        return response;
    }
    // RFC 7523 JWT bearer assertions: the assertion, not a client, is the credential.
    if let Some(response) = crate::jwt_bearer::jwt_bearer(&s, &headers, &body) {
        return response;
    }
    match token_response(&s, &headers, &body) {
        Ok((grant_type, response)) => {
            s.stats.update(|st| match grant_type {
                grant_types::PASSWORD => st.password_grants += 1,
                grant_types::REFRESH_TOKEN => st.refresh_grants += 1,
                grant_types::AUTHORIZATION_CODE => st.authorization_code_grants += 1,
                grant_types::DEVICE_CODE => st.device_code_grants += 1,
                _ => st.client_credentials_grants += 1,
            });
            (oauth::no_store(), Json(response)).into_response()
        }
        Err(e) => {
            s.stats.update(|st| st.failed_token_requests += 1);
            tracing::info!(error = e.error, description = %e.description, "token request refused");
            e.into_response()
        }
    }
}

/// Runs one token request; returns the grant type that issued the response.
fn token_response(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(&'static str, TokenResponse), OAuthError> {
    let form = Form::parse(headers, body)?;
    let requested = form.require("grant_type")?;
    let client = oauth::authenticate_client(s, headers, &form)?;
    let Some(grant_type) = grant_types::TOKEN_ENDPOINT.into_iter().find(|g| *g == requested) else {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type `{requested}` is not supported (supported: {})",
            grant_types::TOKEN_ENDPOINT.join(", ")
        )));
    };
    if !client.allows(grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "client `{}` may not use grant_type `{grant_type}`",
            client.client_id
        )));
    }
    let response = match grant_type {
        grant_types::PASSWORD => password_grant(s, &client, &form)?,
        grant_types::REFRESH_TOKEN => refresh_grant(s, &client, &form)?,
        grant_types::AUTHORIZATION_CODE => crate::authorize::code_grant(s, &client, &form)?,
        grant_types::DEVICE_CODE => crate::device::device_grant(s, &client, &form)?,
        _ => client_credentials_grant(s, &client, &form)?,
    };
    tracing::debug!(grant_type, client_id = %client.client_id, "token issued");
    Ok((grant_type, response))
}

/// The `scope` parameter, whitespace-normalized; `None` when absent or blank.
pub(crate) fn requested_scope(form: &Form) -> Option<String> {
    form.get("scope").map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty())
}

/// The scope of a new grant: the requested one, else [`DEFAULT_SCOPE`].
fn new_grant_scope(form: &Form) -> String {
    requested_scope(form).unwrap_or_else(|| DEFAULT_SCOPE.to_owned())
}

fn password_grant(s: &Shared, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
    // Checked before anything is spent or started.
    let resource = requested_resource(form)?;
    let username = form.require("username")?;
    let password = form.require("password")?;
    let entry = s
        .users
        .get(username)
        .filter(|e| oauth::secrets_match(&e.user.password, password))
        .ok_or_else(|| OAuthError::invalid_grant("invalid username or password"))?;
    if let Some(totp) = &entry.totp {
        // Codes are not remembered, so one code works for its whole window (and several
        // logins): tests log in repeatedly within 30 s. A production server must not do this.
        match form.get("totp").map(str::trim) {
            None => {
                return Err(OAuthError::invalid_grant(
                    "the TOTP code is missing: this user requires a 6-digit code in the `totp` parameter",
                ));
            }
            Some(code) if totp.check(code, s.now()).is_none() => {
                return Err(OAuthError::invalid_grant("the TOTP code is wrong or expired"));
            }
            Some(_) => {}
        }
    }
    let grant = Grant {
        client_id: client.client_id.clone(),
        username: entry.user.username.clone(),
        scope: new_grant_scope(form),
    };
    let now = s.now();
    let (family, refresh_token) = if client.allows(grant_types::REFRESH_TOKEN) {
        let (family, token) = s.store.start_family(grant.clone(), now, s.refresh_token_ttl);
        (Some(family), Some(token))
    } else {
        (None, None)
    };
    let login = LoginContext { nonce: None, auth_time: Some(now), resource };
    user_tokens(s, &grant, &grant.scope, family, refresh_token, now, &login)
}

fn refresh_grant(s: &Shared, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
    let presented = form.require("refresh_token")?;
    // RFC 8707 §2.2: a refresh may ask for a token for another resource (this demo server lets a
    // grant serve any resource; a real one would limit it to those the user consented to).
    let resource = requested_resource(form)?;
    let scope = requested_scope(form);
    let now = s.now();
    let redeemed = s
        .store
        .redeem(presented, &client.client_id, scope.as_deref(), s.rotate_refresh_tokens, now, s.refresh_token_ttl)
        .map_err(|e| match e {
            RedeemError::ScopeNotGranted(_) => OAuthError::invalid_scope(e.description()),
            RedeemError::Reused => {
                s.stats.update(|st| st.refresh_token_reuse_detected += 1);
                tracing::warn!(client_id = %client.client_id, "refresh token reuse detected: family revoked");
                OAuthError::invalid_grant(e.description())
            }
            _ => OAuthError::invalid_grant(e.description()),
        })?;
    user_tokens(
        s,
        &redeemed.grant,
        &redeemed.scope,
        Some(redeemed.family),
        redeemed.rotated,
        now,
        &LoginContext { resource, ..LoginContext::default() },
    )
}

fn client_credentials_grant(s: &Shared, client: &Client, form: &Form) -> Result<TokenResponse, OAuthError> {
    let scope = new_grant_scope(form);
    let resource = requested_resource(form)?;
    let now = s.now();
    let audience = resource.as_deref().unwrap_or(&client.client_id);
    let (access_token, expires_in) =
        mint_access_token(s, &client.client_id, &client.client_id, audience, &scope, None, now)?;
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in, refresh_token: None, scope, id_token: None })
}

/// The tokens of a fresh interactive login (authorization code, device code, email code) by
/// `username` through `client`: a new refresh token family (so revocation reaches every token
/// of the login), whose refresh token is returned only when the client may refresh.
pub(crate) fn new_login(
    s: &Shared,
    client: &Client,
    username: &str,
    scope: &str,
    login: &LoginContext,
) -> Result<(TokenResponse, u64), OAuthError> {
    let grant = Grant { client_id: client.client_id.clone(), username: username.to_owned(), scope: scope.to_owned() };
    let now = s.now();
    let (family, refresh_token) = s.store.start_family(grant.clone(), now, s.refresh_token_ttl);
    let refresh_token = client.allows(grant_types::REFRESH_TOKEN).then_some(refresh_token);
    let login = LoginContext { auth_time: login.auth_time.or(Some(now)), ..login.clone() };
    let response = user_tokens(s, &grant, scope, Some(family), refresh_token, now, &login)?;
    Ok((response, family))
}

/// The response of a grant on behalf of a user: access token, the refresh token if any, and an
/// ID token when `openid` is in scope.
pub(crate) fn user_tokens(
    s: &Shared,
    grant: &Grant,
    scope: &str,
    family: Option<u64>,
    refresh_token: Option<String>,
    now: u64,
    login: &LoginContext,
) -> Result<TokenResponse, OAuthError> {
    let audience = login.resource.as_deref().unwrap_or(&grant.client_id);
    let (access_token, expires_in) =
        mint_access_token(s, &grant.client_id, &grant.username, audience, scope, family, now)?;
    let id_token = if scope.split(' ').any(|s| s == "openid") {
        id_token(s, &grant.client_id, &grant.username, now, expires_in, login)?
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token,
        scope: scope.to_owned(),
        id_token,
    })
}

/// An ID token for `username` (`None` when the user is unknown, e.g. a client subject).
pub(crate) fn id_token(
    s: &Shared,
    client_id: &str,
    username: &str,
    now: u64,
    lifetime: u64,
    login: &LoginContext,
) -> Result<Option<String>, OAuthError> {
    let Some(entry) = s.users.get(username) else {
        return Ok(None);
    };
    let claims = IdTokenClaims {
        iss: s.issuer.clone(),
        sub: username.to_owned(),
        aud: client_id.to_owned(),
        exp: now + lifetime,
        iat: now,
        email: entry.user.email.clone(),
        email_verified: true,
        preferred_username: username.to_owned(),
        nonce: login.nonce.clone(),
        auth_time: login.auth_time,
    };
    s.keys.sign("JWT", &claims).map(Some).map_err(OAuthError::server_error)
}

/// Signs an access token for `audience` (the requested resource, else the client id) and records
/// its `jti` for revocation. Returns it with `expires_in`.
pub(crate) fn mint_access_token(
    s: &Shared,
    client_id: &str,
    subject: &str,
    audience: &str,
    scope: &str,
    family: Option<u64>,
    now: u64,
) -> Result<(String, u64), OAuthError> {
    let ttl = s.access_token_ttl();
    let claims = AccessTokenClaims {
        iss: s.issuer.clone(),
        sub: subject.to_owned(),
        aud: audience.to_owned(),
        exp: now + ttl,
        iat: now,
        jti: crate::store::random_token(),
        scope: scope.to_owned(),
        client_id: client_id.to_owned(),
    };
    let token = s.keys.sign("at+jwt", &claims).map_err(OAuthError::server_error)?;
    s.store.record_access(claims.jti, family, claims.exp, now);
    Ok((token, ttl))
}

/// An access token's claims if it is valid now: signature, issuer, expiry, not revoked.
pub(crate) fn active_access_token(s: &Shared, token: &str) -> Option<AccessTokenClaims> {
    let claims = s.keys.verify_access(token, &s.issuer, s.now(), true)?;
    (!s.store.access_revoked(&claims.jti)).then_some(claims)
}

/// `POST /revoke` (RFC 7009). Revoking a refresh token revokes its family. Unknown tokens, and
/// tokens of another client, are answered 200 without effect.
pub(crate) async fn revoke(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let form = Form::parse(&headers, &body)?;
        let client = oauth::authenticate_client(&s, &headers, &form)?;
        let token = form.require("token")?;
        if !s.store.revoke_refresh(token, &client.client_id)
            && let Some(claims) = s.keys.verify_access(token, &s.issuer, s.now(), false)
            && claims.client_id == client.client_id
        {
            s.store.revoke_access(&claims.jti);
        }
        tracing::debug!(client_id = %client.client_id, "revocation request handled");
        Ok::<_, OAuthError>(Json(json!({})))
    })();
    match result {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /introspect` (RFC 7662). Any authenticated client may introspect any token.
pub(crate) async fn introspect(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let form = Form::parse(&headers, &body)?;
        oauth::authenticate_client(&s, &headers, &form)?;
        let token = form.require("token")?;
        let now = s.now();
        let answer = if let Some(info) = s.store.active_refresh(token, now) {
            json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": info.grant.scope,
                "client_id": info.grant.client_id,
                "username": info.grant.username,
                "sub": info.grant.username,
                "iss": s.issuer,
                "iat": info.issued_at,
                "exp": info.expires_at,
            })
        } else if let Some(claims) = active_access_token(&s, token) {
            let username = s.users.contains_key(&claims.sub).then_some(&claims.sub);
            json!({
                "active": true,
                "token_type": "Bearer",
                "scope": claims.scope,
                "client_id": claims.client_id,
                "username": username,
                "sub": claims.sub,
                "aud": claims.aud,
                "iss": claims.iss,
                "iat": claims.iat,
                "exp": claims.exp,
                "jti": claims.jti,
            })
        } else {
            json!({ "active": false })
        };
        Ok::<_, OAuthError>((oauth::no_store(), Json(answer)))
    })();
    match result {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The claims of the request's bearer token, or the 401 to answer.
fn authorize(s: &Shared, headers: &HeaderMap) -> Result<AccessTokenClaims, OAuthError> {
    let token = oauth::bearer_token(headers)?;
    active_access_token(s, token)
        .ok_or_else(|| OAuthError::bearer(false, "the access token is invalid, expired or revoked"))
}

/// `GET /userinfo` (OIDC Core §5.3).
pub(crate) async fn userinfo(State(s): AppState, headers: HeaderMap) -> Response {
    let claims = match authorize(&s, &headers) {
        Ok(claims) => claims,
        Err(e) => return e.into_response(),
    };
    let body = match s.users.get(&claims.sub) {
        Some(entry) => json!({
            "sub": claims.sub,
            "preferred_username": entry.user.username,
            "email": entry.user.email,
            "email_verified": true,
            "admin": entry.user.admin,
        }),
        // client_credentials tokens: the client is the subject.
        None => json!({ "sub": claims.sub }),
    };
    Json(body).into_response()
}

/// `GET /api/whoami`: a protected resource echoing who the token speaks for.
pub(crate) async fn whoami(State(s): AppState, headers: HeaderMap) -> Response {
    match authorize(&s, &headers) {
        Ok(claims) => Json(json!({
            "sub": claims.sub,
            "client_id": claims.client_id,
            "scope": claims.scope,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}
