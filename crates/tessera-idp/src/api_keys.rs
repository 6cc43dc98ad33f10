//! API key management (REST, JSON) and API key authentication of `/api/whoami`.
//!
//! | request | who | answer |
//! |---|---|---|
//! | `POST /api/keys` `{"name", "expires_in_days"?}` | the user (Bearer token) | 201 `{"key": ApiKey, "secret"}` |
//! | `GET /api/keys?name=&fingerprint=&status=` | the user | `{"keys": [ApiKey]}` (own keys only) |
//! | `GET /api/keys/{id}` | the user | `ApiKey`, or 404 |
//! | `POST /api/keys/{id}/revoke` | the user | the revoked `ApiKey`, or 404 |
//! | `POST /api/keys/revoke` `{"secret"}` | the user | the revoked `ApiKey`, or 404 |
//! | `GET /api/admin/keys?email=&key_name=&status=` | an admin | `{"keys": [ApiKey]}` (every user's) |
//! | `GET /api/admin/keys/{id}` | an admin | `ApiKey`, or 404 |
//! | `POST /api/admin/keys/{id}/revoke` | an admin | the revoked `ApiKey`, or 404 |
//!
//! The full contract is docs/api-keys.openapi.yaml. Times are Unix milliseconds, from the server's
//! clock (so [`IdpServer::set_clock_offset`](crate::IdpServer::set_clock_offset) moves them too).
//!
//! The secret is returned once, by `create`; the server keeps only its SHA-256 digest. A secret is
//! the prefix plus 32 random bytes (base64url), so guessing is hopeless and a fast hash is enough:
//! a slow password hash (argon2, bcrypt) protects low-entropy secrets, which these are not.
//! Management needs a user's OAuth access token: an API key cannot mint or list API keys, so a
//! leaked key cannot make itself permanent. Revoked and expired keys stay listed with their status.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::oauth::{self, OAuthError};
use crate::server::Shared;

type AppState = State<Arc<Shared>>;

/// The prefix of API key secrets when the configuration names none.
pub(crate) const DEFAULT_PREFIX: &str = "qk_";
/// Lifetime of a key when `create` names none.
pub(crate) const DEFAULT_EXPIRES_IN_DAYS: u32 = 90;
/// Longest lifetime `create` accepts.
pub(crate) const MAX_EXPIRES_IN_DAYS: u32 = 365;
/// Longest key name accepted, in characters.
const MAX_NAME_CHARS: usize = 100;
/// The header that carries an API key when `Authorization` does not.
const API_KEY_HEADER: &str = "x-api-key";
const MS_PER_DAY: u64 = 24 * 60 * 60 * 1000;

/// The status of a key at a given instant: revoked wins over expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

/// A key as the API shows it: no secret, no digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ApiKeyView {
    id: String,
    name: String,
    fingerprint: String,
    status: KeyStatus,
    created_at: u64,
    expires_at: u64,
    last_used_at: Option<u64>,
    created_by_email: String,
}

/// A stored key. The secret itself is never kept.
#[derive(Debug)]
struct KeyRecord {
    id: String,
    name: String,
    fingerprint: String,
    digest: [u8; 32],
    username: String,
    email: String,
    created_at: u64,
    expires_at: u64,
    last_used_at: Option<u64>,
    revoked_at: Option<u64>,
}

impl KeyRecord {
    fn status(&self, now_ms: u64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at <= now_ms {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    fn view(&self, now_ms: u64) -> ApiKeyView {
        ApiKeyView {
            id: self.id.clone(),
            name: self.name.clone(),
            fingerprint: self.fingerprint.clone(),
            status: self.status(now_ms),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            created_by_email: self.email.clone(),
        }
    }
}

/// Who asks: the user behind an access token.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) username: String,
    pub(crate) email: String,
}

/// Filters of a listing; `None` matches everything.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    username: Option<String>,
    email: Option<String>,
    name: Option<String>,
    fingerprint: Option<String>,
    status: Option<KeyStatus>,
}

/// Every API key of the server, in creation order. One mutex; no method awaits while holding it.
#[derive(Debug)]
pub(crate) struct ApiKeyStore {
    prefix: String,
    keys: Mutex<Vec<KeyRecord>>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares digests without an early exit on the first differing byte.
fn digests_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ApiKeyStore {
    /// An empty store issuing secrets that start with `prefix`.
    pub(crate) fn new(prefix: impl Into<String>) -> Self {
        ApiKeyStore { prefix: prefix.into(), keys: Mutex::new(Vec::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<KeyRecord>> {
        // A panic under the lock leaves plain data, still consistent record by record.
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a key for `owner`; returns it with its secret (the only time the secret exists here).
    pub(crate) fn create(&self, owner: &Owner, name: &str, expires_in_days: u32, now_ms: u64) -> (ApiKeyView, String) {
        let mut random = [0u8; 32];
        rand::fill(&mut random);
        let secret = format!("{}{}", self.prefix, URL_SAFE_NO_PAD.encode(random));
        random.fill(0);
        let digest = digest(&secret);
        let mut id = [0u8; 8];
        rand::fill(&mut id);
        let record = KeyRecord {
            id: format!("key_{}", hex(&id)),
            name: name.to_owned(),
            fingerprint: hex(&digest[..8]),
            digest,
            username: owner.username.clone(),
            email: owner.email.clone(),
            created_at: now_ms,
            expires_at: now_ms + u64::from(expires_in_days) * MS_PER_DAY,
            last_used_at: None,
            revoked_at: None,
        };
        let view = record.view(now_ms);
        self.lock().push(record);
        (view, secret)
    }

    /// The keys matching `filter`, oldest first.
    pub(crate) fn list(&self, filter: &Filter, now_ms: u64) -> Vec<ApiKeyView> {
        self.lock()
            .iter()
            .filter(|k| filter.username.as_ref().is_none_or(|u| *u == k.username))
            .filter(|k| filter.email.as_ref().is_none_or(|e| e.eq_ignore_ascii_case(&k.email)))
            .filter(|k| filter.name.as_ref().is_none_or(|n| *n == k.name))
            .filter(|k| filter.fingerprint.as_ref().is_none_or(|f| f.eq_ignore_ascii_case(&k.fingerprint)))
            .filter(|k| filter.status.is_none_or(|s| s == k.status(now_ms)))
            .map(|k| k.view(now_ms))
            .collect()
    }

    /// The key `id`, if it exists and belongs to `username` (any user's when `None`).
    pub(crate) fn get(&self, id: &str, username: Option<&str>, now_ms: u64) -> Option<ApiKeyView> {
        self.lock().iter().find(|k| k.id == id && username.is_none_or(|u| u == k.username)).map(|k| k.view(now_ms))
    }

    /// Revokes the key `id` (of `username`, or of anyone when `None`). Revoking twice keeps the
    /// first revocation time.
    pub(crate) fn revoke(&self, id: &str, username: Option<&str>, now_ms: u64) -> Option<ApiKeyView> {
        let mut keys = self.lock();
        let key = keys.iter_mut().find(|k| k.id == id && username.is_none_or(|u| u == k.username))?;
        key.revoked_at.get_or_insert(now_ms);
        Some(key.view(now_ms))
    }

    /// Revokes the key whose secret is `secret`, if it belongs to `username`.
    pub(crate) fn revoke_secret(&self, secret: &str, username: &str, now_ms: u64) -> Option<ApiKeyView> {
        let wanted = digest(secret);
        let mut keys = self.lock();
        let key = keys.iter_mut().find(|k| digests_match(&k.digest, &wanted) && k.username == username)?;
        key.revoked_at.get_or_insert(now_ms);
        Some(key.view(now_ms))
    }

    /// Authenticates a request by its key: the owner's username and the key id when the key is
    /// active (and then records the use), the key's status otherwise, `None` for an unknown key.
    pub(crate) fn authenticate(&self, secret: &str, now_ms: u64) -> Option<Result<(String, String), KeyStatus>> {
        let wanted = digest(secret);
        let mut keys = self.lock();
        let key = keys.iter_mut().find(|k| digests_match(&k.digest, &wanted))?;
        match key.status(now_ms) {
            KeyStatus::Active => {
                key.last_used_at = Some(now_ms);
                Some(Ok((key.username.clone(), key.id.clone())))
            }
            status => Some(Err(status)),
        }
    }

    /// True when `credential` looks like one of this server's API keys.
    pub(crate) fn is_api_key(&self, credential: &str) -> bool {
        credential.starts_with(&self.prefix)
    }
}

/// The key management routes (`/api/whoami` is routed by the server, to [`whoami`]).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/keys", post(create).get(list))
        .route("/api/keys/revoke", post(revoke_secret))
        .route("/api/keys/{id}", get(get_key))
        .route("/api/keys/{id}/revoke", post(revoke))
        .route("/api/admin/keys", get(admin_list))
        .route("/api/admin/keys/{id}", get(admin_get))
        .route("/api/admin/keys/{id}/revoke", post(admin_revoke))
}

/// A JSON error of the key management API: `{"error", "error_description"}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 401 with a `WWW-Authenticate: Bearer` challenge.
    Unauthorized(OAuthError),
    /// 400 `invalid_request`.
    BadRequest(String),
    /// 403 `access_denied` (the caller is known but may not do this).
    Forbidden(String),
    /// 404 `not_found`.
    NotFound(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            ApiError::Unauthorized(e) => return e.into_response(),
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, "access_denied", d),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, "not_found", d),
        };
        (status, oauth::no_store(), Json(json!({ "error": error, "error_description": description }))).into_response()
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no API key with id {id:?}"))
}

/// The user behind the request's Bearer access token. API keys are refused here on purpose (see
/// the module documentation); so are client_credentials tokens, which speak for no user.
fn user(s: &Shared, headers: &HeaderMap) -> Result<(Owner, bool), ApiError> {
    let token = oauth::bearer_token(headers).map_err(ApiError::Unauthorized)?;
    if s.api_keys.is_api_key(token) {
        return Err(ApiError::Forbidden("API keys cannot manage API keys: use a user's access token".into()));
    }
    let claims = s
        .keys
        .verify_access(token, &s.issuer, s.now(), true)
        .filter(|claims| !s.store.access_revoked(&claims.jti))
        .ok_or_else(|| {
            ApiError::Unauthorized(OAuthError::bearer(false, "the access token is invalid, expired or revoked"))
        })?;
    let entry = s
        .users
        .get(&claims.sub)
        .ok_or_else(|| ApiError::Forbidden("API keys belong to users: this token speaks for a client".into()))?;
    Ok((Owner { username: entry.user.username.clone(), email: entry.user.email.clone() }, entry.user.admin))
}

/// Like [`user`], and refuses non-administrators with 403.
fn admin(s: &Shared, headers: &HeaderMap) -> Result<Owner, ApiError> {
    match user(s, headers)? {
        (owner, true) => Ok(owner),
        (owner, false) => {
            tracing::info!(username = %owner.username, "admin API key request refused");
            Err(ApiError::Forbidden(format!("user {:?} is not an administrator", owner.username)))
        }
    }
}

fn now_ms(s: &Shared) -> u64 {
    s.now().saturating_mul(1000)
}

fn parse_status(text: Option<&str>) -> Result<Option<KeyStatus>, ApiError> {
    match text.map(|t| t.trim().to_ascii_uppercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("ACTIVE") => Ok(Some(KeyStatus::Active)),
        Some("EXPIRED") => Ok(Some(KeyStatus::Expired)),
        Some("REVOKED") => Ok(Some(KeyStatus::Revoked)),
        Some(other) => Err(ApiError::BadRequest(format!("status {other:?} is not one of ACTIVE, EXPIRED, REVOKED"))),
    }
}

/// An empty query parameter counts as absent.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(format!("bad query string: {}", e.body_text())))
}

fn respond<T: Serialize>(result: Result<(StatusCode, T), ApiError>) -> Response {
    match result {
        Ok((status, body)) => (status, oauth::no_store(), Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    expires_in_days: Option<i64>,
}

/// `POST /api/keys`.
async fn create(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    respond((|| {
        let (owner, _) = user(&s, &headers)?;
        let request: CreateRequest = serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("the body must be JSON {{\"name\", \"expires_in_days\"}}: {e}"))
        })?;
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::BadRequest(format!("name must be 1 to {MAX_NAME_CHARS} characters")));
        }
        let days = request.expires_in_days.unwrap_or(i64::from(DEFAULT_EXPIRES_IN_DAYS));
        let days = u32::try_from(days).ok().filter(|d| (1..=MAX_EXPIRES_IN_DAYS).contains(d)).ok_or_else(|| {
            ApiError::BadRequest(format!("expires_in_days must be between 1 and {MAX_EXPIRES_IN_DAYS}, got {days}"))
        })?;
        let (key, secret) = s.api_keys.create(&owner, name, days, now_ms(&s));
        tracing::info!(username = %owner.username, key_id = %key.id, fingerprint = %key.fingerprint, "API key created");
        Ok((StatusCode::CREATED, json!({ "key": key, "secret": secret })))
    })())
}

#[derive(Deserialize)]
struct UserListQuery {
    name: Option<String>,
    fingerprint: Option<String>,
    status: Option<String>,
}

/// `GET /api/keys`.
async fn list(
    State(s): AppState,
    headers: HeaderMap,
    params: Result<Query<UserListQuery>, QueryRejection>,
) -> Response {
    respond((|| {
        let (owner, _) = user(&s, &headers)?;
        let params = query(params)?;
        let filter = Filter {
            username: Some(owner.username),
            email: None,
            name: given(params.name),
            fingerprint: given(params.fingerprint),
            status: parse_status(params.status.as_deref())?,
        };
        Ok((StatusCode::OK, json!({ "keys": s.api_keys.list(&filter, now_ms(&s)) })))
    })())
}

/// `GET /api/keys/{id}`.
async fn get_key(State(s): AppState, headers: HeaderMap, Path(id): Path<String>) -> Response {
    respond((|| {
        let (owner, _) = user(&s, &headers)?;
        let key = s.api_keys.get(&id, Some(&owner.username), now_ms(&s)).ok_or_else(|| not_found(&id))?;
        Ok((StatusCode::OK, key))
    })())
}

/// `POST /api/keys/{id}/revoke`.
async fn revoke(State(s): AppState, headers: HeaderMap, Path(id): Path<String>) -> Response {
    respond((|| {
        let (owner, _) = user(&s, &headers)?;
        let key = s.api_keys.revoke(&id, Some(&owner.username), now_ms(&s)).ok_or_else(|| not_found(&id))?;
        tracing::info!(username = %owner.username, key_id = %key.id, "API key revoked");
        Ok((StatusCode::OK, key))
    })())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeSecretRequest {
    secret: String,
}

/// `POST /api/keys/revoke` with `{"secret": "qk_..."}`.
async fn revoke_secret(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    respond((|| {
        let (owner, _) = user(&s, &headers)?;
        // The serde error could quote the body, and with it the secret: say only what is expected.
        let request: RevokeSecretRequest = serde_json::from_slice(&body)
            .map_err(|_| ApiError::BadRequest("the body must be JSON {\"secret\": \"...\"}".into()))?;
        let key = s
            .api_keys
            .revoke_secret(request.secret.trim(), &owner.username, now_ms(&s))
            .ok_or_else(|| ApiError::NotFound("no API key of yours has this secret".into()))?;
        tracing::info!(username = %owner.username, key_id = %key.id, "API key revoked by secret");
        Ok((StatusCode::OK, key))
    })())
}

#[derive(Deserialize)]
struct AdminListQuery {
    email: Option<String>,
    key_name: Option<String>,
    status: Option<String>,
}

/// `GET /api/admin/keys`.
async fn admin_list(
    State(s): AppState,
    headers: HeaderMap,
    params: Result<Query<AdminListQuery>, QueryRejection>,
) -> Response {
    respond((|| {
        admin(&s, &headers)?;
        let params = query(params)?;
        let filter = Filter {
            username: None,
            email: given(params.email),
            name: given(params.key_name),
            fingerprint: None,
            status: parse_status(params.status.as_deref())?,
        };
        Ok((StatusCode::OK, json!({ "keys": s.api_keys.list(&filter, now_ms(&s)) })))
    })())
}

/// `GET /api/admin/keys/{id}`.
async fn admin_get(State(s): AppState, headers: HeaderMap, Path(id): Path<String>) -> Response {
    respond((|| {
        admin(&s, &headers)?;
        Ok((StatusCode::OK, s.api_keys.get(&id, None, now_ms(&s)).ok_or_else(|| not_found(&id))?))
    })())
}

/// `POST /api/admin/keys/{id}/revoke`.
async fn admin_revoke(State(s): AppState, headers: HeaderMap, Path(id): Path<String>) -> Response {
    respond((|| {
        let admin = admin(&s, &headers)?;
        let key = s.api_keys.revoke(&id, None, now_ms(&s)).ok_or_else(|| not_found(&id))?;
        let (by, owner) = (&admin.username, &key.created_by_email);
        tracing::info!(admin = %by, key_id = %key.id, owner = %owner, "API key revoked by admin");
        Ok((StatusCode::OK, key))
    })())
}

/// The API key of a request: `X-API-Key`, else an `Authorization: Bearer` value with the key prefix.
fn presented_key<'h>(s: &Shared, headers: &'h HeaderMap) -> Option<&'h str> {
    if let Some(value) = headers.get(API_KEY_HEADER) {
        return Some(value.to_str().unwrap_or("").trim());
    }
    oauth::bearer_token(headers).ok().filter(|token| s.api_keys.is_api_key(token))
}

/// `GET /api/whoami`: an active API key (`Authorization: Bearer qk_...` or `X-API-Key`) speaks
/// for its owner and has its last use recorded; anything else goes to the access token check.
pub(crate) async fn whoami(State(s): AppState, headers: HeaderMap) -> Response {
    let Some(secret) = presented_key(&s, &headers).map(str::to_owned) else {
        return crate::handlers::whoami(State(s), headers).await;
    };
    let invalid = |why: &str| OAuthError::bearer(false, format!("the API key is {why}")).into_response();
    match s.api_keys.authenticate(&secret, now_ms(&s)) {
        Some(Ok((username, key_id))) => {
            let email = s.users.get(&username).map(|e| e.user.email.clone());
            Json(json!({ "sub": username, "email": email, "api_key_id": key_id, "auth": "api_key" })).into_response()
        }
        Some(Err(KeyStatus::Expired)) => invalid("expired"),
        Some(Err(_)) => invalid("revoked"),
        None => invalid("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Owner {
        Owner { username: "alice".into(), email: "alice@example.com".into() }
    }

    #[test]
    fn secrets_are_prefixed_random_and_stored_only_as_digests() {
        let store = ApiKeyStore::new("qk_");
        let (key, secret) = store.create(&alice(), "ci", 1, 1_000);
        let (_, other) = store.create(&alice(), "ci", 1, 1_000);
        assert!(secret.starts_with("qk_") && secret.len() >= 3 + 43, "{secret}");
        assert_ne!(secret, other);
        assert_eq!(key.fingerprint, hex(&digest(&secret)[..8]));
        assert_eq!(key.expires_at, 1_000 + MS_PER_DAY);
        let stored = format!("{:?}", store.keys.lock().unwrap());
        assert!(!stored.contains(&secret[3..]), "the store must not hold the secret");
    }

    #[test]
    fn status_moves_with_time_and_revocation() {
        let store = ApiKeyStore::new("qk_");
        let (key, secret) = store.create(&alice(), "ci", 1, 0);
        assert_eq!(store.authenticate(&secret, 10), Some(Ok(("alice".into(), key.id.clone()))));
        assert_eq!(store.get(&key.id, None, 10).unwrap().last_used_at, Some(10));
        assert_eq!(store.authenticate(&secret, MS_PER_DAY), Some(Err(KeyStatus::Expired)));
        assert_eq!(store.revoke(&key.id, Some("bob"), 20), None, "another user's key");
        assert_eq!(store.revoke(&key.id, Some("alice"), 20).unwrap().status, KeyStatus::Revoked);
        assert_eq!(store.authenticate(&secret, 30), Some(Err(KeyStatus::Revoked)));
        assert_eq!(store.authenticate("qk_unknown", 30), None);
    }
}
