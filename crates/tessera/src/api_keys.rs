//! API key management: create, list, get and revoke a user's API keys, and (for administrators)
//! every user's, over the REST API of docs/api-keys.openapi.yaml (served by the reference IdP).
//!
//! ```no_run
//! # async fn example(session: tessera::Session) -> Result<(), tessera::Error> {
//! use tessera::api_keys::{ApiKeyFilter, ApiKeyStatus, ApiKeys};
//!
//! let keys = ApiKeys::new(session, "https://idp.example.com"); // the user's OAuth session
//! let (key, secret) = keys.create("ci", Some(30)).await?;     // secret: shown this once
//! println!("{} expires at {:?}", key.fingerprint, key.expires_at);
//! let active = keys.list(&ApiKeyFilter { status: Some(ApiKeyStatus::Active), ..Default::default() }).await?;
//! assert!(keys.get("key_0000000000000000").await?.is_none());
//! keys.revoke_by_secret(&secret).await?; // or keys.revoke(&key.id)
//! let every_users = keys.admin().list(&Default::default()).await?; // 403 unless admin
//! # Ok(()) }
//! ```
//!
//! Requests carry the user's `Authorization` header (from a [`Session`], refreshed as needed and
//! retried once after a 401, or a fixed access token). Errors are [`Error`]s: the server's JSON
//! errors become [`Error::OAuth`] with its code — `invalid_request` (HTTP 400, e.g. an empty
//! name), `access_denied` (HTTP 403: the admin API for a non-admin), `not_found`
//! (HTTP 404), `invalid_token` (HTTP 401). [`is_permission_denied`] and [`is_not_found`] classify
//! them without matching on codes.
//!
//! Times are [`Timestamp`]s: Unix milliseconds on the wire. The secret returned by
//! [`ApiKeys::create`] is a [`Secret`]: redacted in `Debug`, zeroed on drop.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tessera_core::protocol::parse_error_response;
use tessera_core::{Error, HttpRequest, HttpResponse, Method, OAuthErrorCode, RequestId, Secret, Timestamp};

use crate::session::Session;
use crate::transport::{HttpTransport, Transport, TransportSettings};

/// Where a key stands now. Revoked wins over expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyStatus {
    /// Usable.
    Active,
    /// Past its `expires_at`: refused by the server.
    Expired,
    /// Revoked by its owner or an administrator: refused by the server.
    Revoked,
}

impl ApiKeyStatus {
    /// `ACTIVE`, `EXPIRED` or `REVOKED`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyStatus::Active => "ACTIVE",
            ApiKeyStatus::Expired => "EXPIRED",
            ApiKeyStatus::Revoked => "REVOKED",
        }
    }
}

impl std::fmt::Display for ApiKeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiKeyStatus {
    type Err = Error;

    /// Case-insensitive: `active`, `EXPIRED`, `Revoked`.
    fn from_str(text: &str) -> Result<Self, Error> {
        match text.trim().to_ascii_uppercase().as_str() {
            "ACTIVE" => Ok(ApiKeyStatus::Active),
            "EXPIRED" => Ok(ApiKeyStatus::Expired),
            "REVOKED" => Ok(ApiKeyStatus::Revoked),
            _ => Err(Error::configuration(format!("API key status {text:?} is not one of ACTIVE, EXPIRED, REVOKED"))),
        }
    }
}

/// An API key as the server shows it: everything but the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Server-assigned id (`key_...`), for [`ApiKeys::get`] and [`ApiKeys::revoke`].
    pub id: String,
    /// The name given at creation.
    pub name: String,
    /// A short, non-secret identifier derived from the secret's hash (first 8 bytes of its
    /// SHA-256, hex): tells keys apart in lists and logs.
    pub fingerprint: String,
    /// Status when the server answered.
    pub status: ApiKeyStatus,
    /// Creation time (server clock).
    pub created_at: Timestamp,
    /// Expiry time (server clock).
    pub expires_at: Timestamp,
    /// Last successful use, recorded by the server; `None` if never used.
    pub last_used_at: Option<Timestamp>,
    /// Email address of the user who created it.
    pub created_by_email: String,
}

/// Filters of [`ApiKeys::list`]; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeyFilter {
    /// Exact key name.
    pub name: Option<String>,
    /// Fingerprint (case-insensitive).
    pub fingerprint: Option<String>,
    /// Status now.
    pub status: Option<ApiKeyStatus>,
}

/// Filters of [`AdminApiKeys::list`]; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminApiKeyFilter {
    /// The creator's email address (case-insensitive).
    pub email: Option<String>,
    /// Exact key name.
    pub key_name: Option<String>,
    /// Status now.
    pub status: Option<ApiKeyStatus>,
}

/// True when the server refused the request because the caller lacks the right (HTTP 403,
/// `access_denied`): e.g. the admin API called by a user who is not an administrator.
pub fn is_permission_denied(error: &Error) -> bool {
    matches!(error, Error::OAuth { code: OAuthErrorCode::AccessDenied, .. } | Error::OAuth { status: 403, .. })
}

/// True when the server knows no such key (HTTP 404) — for [`ApiKeys::revoke`] and friends.
pub fn is_not_found(error: &Error) -> bool {
    matches!(error, Error::OAuth { status: 404, .. } | Error::UnexpectedStatus { status: 404, .. })
}

/// How requests are authenticated.
#[derive(Clone)]
enum Credentials {
    /// The session's header, refreshed as needed; a 401 triggers one refresh and one retry.
    Session(Session),
    /// A fixed access token.
    AccessToken(Secret),
}

/// The key management API of one server, as one user. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    base_url: String,
    credentials: Credentials,
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = match &self.credentials {
            Credentials::Session(session) => format!("session {:?}", session.key()),
            Credentials::AccessToken(_) => "access token".to_owned(),
        };
        f.debug_struct("ApiKeys").field("base_url", &self.base_url).field("credentials", &credentials).finish()
    }
}

#[derive(Serialize)]
struct CreateRequest<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_days: Option<u32>,
}

#[derive(Deserialize)]
struct Created {
    key: ApiKey,
    secret: Secret,
}

#[derive(Serialize)]
struct RevokeSecretRequest<'a> {
    secret: &'a str,
}

#[derive(Deserialize)]
struct KeyList {
    keys: Vec<ApiKey>,
}

/// The lifetimes, in days, a key may be created with (the API's bounds; the default is 90).
pub const EXPIRES_IN_DAYS: std::ops::RangeInclusive<i64> = 1..=365;

/// `days` as a lifetime [`ApiKeys::create`] accepts, or [`Error::Configuration`] when it is outside
/// [`EXPIRES_IN_DAYS`]: checked before any request, by every front end (the Python binding passes
/// any integer it is given, saturated to `i64`).
pub fn check_expires_in_days(days: i64) -> Result<u32, Error> {
    match u32::try_from(days) {
        Ok(days) if EXPIRES_IN_DAYS.contains(&i64::from(days)) => Ok(days),
        _ => Err(Error::configuration(format!(
            "expires_in_days must be between {} and {} days",
            EXPIRES_IN_DAYS.start(),
            EXPIRES_IN_DAYS.end()
        ))),
    }
}

impl ApiKeys {
    /// The API at `base_url` (the server root, e.g. the IdP's issuer: requests go to
    /// `{base_url}/api/keys...`), authenticated with `session`'s access token, and sent the way
    /// the session sends its own (its proxy, roots, limits, or its custom transport).
    pub fn new(session: Session, base_url: impl Into<String>) -> Self {
        let transport = session.shared_transport();
        ApiKeys { transport, ..Self::with_credentials(Credentials::Session(session), base_url.into()) }
    }

    /// The API at `base_url`, authenticated with a fixed OAuth access token (no refresh).
    pub fn with_access_token(access_token: Secret, base_url: impl Into<String>) -> Self {
        Self::with_credentials(Credentials::AccessToken(access_token), base_url.into())
    }

    fn with_credentials(credentials: Credentials, base_url: String) -> Self {
        ApiKeys {
            base_url: base_url.trim_end_matches('/').to_owned(),
            credentials,
            transport: Arc::new(HttpTransport::default()),
        }
    }

    /// Uses these HTTP limits (timeouts, body size, plain HTTP beyond loopback) instead of the defaults.
    pub fn transport_settings(mut self, settings: TransportSettings) -> Self {
        self.transport = Arc::new(HttpTransport::new(settings));
        self
    }

    /// The server root requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Creates a key named `name` that expires in `expires_in_days` ([`EXPIRES_IN_DAYS`]: 1..=365;
    /// `None`: 90). Returns the key and its secret: keep the secret now, it is never shown again
    /// (the server stores only its hash).
    ///
    /// A lifetime out of bounds: [`Error::Configuration`], before anything is sent (see
    /// [`check_expires_in_days`]). An empty name: [`Error::OAuth`] `invalid_request` (HTTP 400).
    pub async fn create(&self, name: &str, expires_in_days: Option<u32>) -> Result<(ApiKey, Secret), Error> {
        if let Some(days) = expires_in_days {
            check_expires_in_days(i64::from(days))?;
        }
        let body = json_body(&CreateRequest { name, expires_in_days })?;
        let created: Created = self.call(Method::Post, &["api", "keys"], &[], Some(body)).await?;
        Ok((created.key, created.secret))
    }

    /// The caller's keys that match `filter`, oldest first (revoked and expired ones included).
    pub async fn list(&self, filter: &ApiKeyFilter) -> Result<Vec<ApiKey>, Error> {
        let status = filter.status.map(ApiKeyStatus::as_str);
        let query =
            [("name", filter.name.as_deref()), ("fingerprint", filter.fingerprint.as_deref()), ("status", status)];
        let list: KeyList = self.call(Method::Get, &["api", "keys"], &query, None).await?;
        Ok(list.keys)
    }

    /// The caller's key `id`; `None` when there is none (or it is another user's).
    pub async fn get(&self, id: &str) -> Result<Option<ApiKey>, Error> {
        found(self.call(Method::Get, &["api", "keys", id], &[], None).await)
    }

    /// Revokes the caller's key `id` and returns it (status `REVOKED`). Unknown id: HTTP 404
    /// (see [`is_not_found`]). Revoking a revoked key is not an error.
    pub async fn revoke(&self, id: &str) -> Result<ApiKey, Error> {
        self.call(Method::Post, &["api", "keys", id, "revoke"], &[], None).await
    }

    /// Revokes the caller's key whose secret is `secret` (surrounding whitespace ignored), e.g.
    /// one that leaked, and returns it. The secret travels in the request body only.
    pub async fn revoke_by_secret(&self, secret: &Secret) -> Result<ApiKey, Error> {
        let body = json_body(&RevokeSecretRequest { secret: secret.expose_secret().trim() })?;
        self.call(Method::Post, &["api", "keys", "revoke"], &[], Some(body)).await
    }

    /// The admin API (every user's keys), with the same credentials. Each call is refused with
    /// HTTP 403 `access_denied` ([`is_permission_denied`]) unless the user is an administrator.
    pub fn admin(&self) -> AdminApiKeys {
        AdminApiKeys { api: self.clone() }
    }

    /// One request; a 2xx body parsed as `T`, anything else as an [`Error`].
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, Option<&str>)],
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let url = self.url(segments, query)?;
        let endpoint = url.split('?').next().unwrap_or_default().to_owned();
        let mut response = self.send(method, &url, body.clone(), None).await?;
        if response.status == 401
            && let Credentials::Session(session) = &self.credentials
        {
            // The token was refused (revoked, or the server's clock is ahead): one new token, one retry.
            let header = session.handle_unauthorized().await?;
            response = self.send(method, &url, body, Some(Secret::new(header.expose_secret()))).await?;
        }
        if !(200..300).contains(&response.status) {
            return Err(parse_error_response(&response, &endpoint));
        }
        serde_json::from_slice(&response.body).map_err(|e| Error::MalformedResponse {
            endpoint,
            // Only serde's position and category: its message may quote the body (and a secret).
            reason: format!("unexpected JSON ({:?} at line {} column {})", e.classify(), e.line(), e.column()),
        })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        authorization: Option<Secret>,
    ) -> Result<HttpResponse, Error> {
        let authorization = match (authorization, &self.credentials) {
            (Some(header), _) => header,
            (None, Credentials::Session(session)) => Secret::new(session.authorization_header().await?.expose_secret()),
            (None, Credentials::AccessToken(token)) => Secret::new(format!("Bearer {}", token.expose_secret())),
        };
        let mut headers = vec![
            ("authorization".to_owned(), authorization.expose_secret().to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
        ];
        if body.is_some() {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        let request =
            HttpRequest { id: RequestId(0), method, url: url.to_owned(), headers, body: body.unwrap_or_default() };
        self.transport.execute(request).await
    }

    /// `{base_url}/seg/ments?query`, each segment percent-encoded (an id cannot change the path).
    fn url(&self, segments: &[&str], query: &[(&str, Option<&str>)]) -> Result<String, Error> {
        let mut url = url::Url::parse(&self.base_url)
            .map_err(|e| Error::configuration(format!("API keys base URL {:?} is not a URL: {e}", self.base_url)))?;
        url.path_segments_mut()
            .map_err(|()| Error::configuration(format!("API keys base URL {:?} cannot have a path", self.base_url)))?
            .pop_if_empty()
            .extend(segments);
        let pairs: Vec<_> = query.iter().filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v))).collect();
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(url.into())
    }
}

fn json_body<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::configuration(format!("cannot encode the request: {e}")))
}

/// A 404 as `None`.
fn found(result: Result<ApiKey, Error>) -> Result<Option<ApiKey>, Error> {
    match result {
        Ok(key) => Ok(Some(key)),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The admin key management API: every user's keys. From [`ApiKeys::admin`].
#[derive(Clone, Debug)]
pub struct AdminApiKeys {
    api: ApiKeys,
}

impl AdminApiKeys {
    /// Every user's keys that match `filter`, oldest first.
    pub async fn list(&self, filter: &AdminApiKeyFilter) -> Result<Vec<ApiKey>, Error> {
        let status = filter.status.map(ApiKeyStatus::as_str);
        let query = [("email", filter.email.as_deref()), ("key_name", filter.key_name.as_deref()), ("status", status)];
        let list: KeyList = self.api.call(Method::Get, &["api", "admin", "keys"], &query, None).await?;
        Ok(list.keys)
    }

    /// Any user's key `id`; `None` when there is none.
    pub async fn get(&self, id: &str) -> Result<Option<ApiKey>, Error> {
        found(self.api.call(Method::Get, &["api", "admin", "keys", id], &[], None).await)
    }

    /// Revokes any user's key `id` and returns it.
    pub async fn revoke(&self, id: &str) -> Result<ApiKey, Error> {
        self.api.call(Method::Post, &["api", "admin", "keys", id, "revoke"], &[], None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_ids_and_skip_empty_filters() {
        let api = ApiKeys::with_access_token(Secret::new("t"), "http://127.0.0.1:1/base/");
        let url = api.url(&["api", "keys", "../admin?x"], &[("name", Some("a b")), ("status", None)]).unwrap();
        assert_eq!(url, "http://127.0.0.1:1/base/api/keys/..%2Fadmin%3Fx?name=a+b");
        let api = ApiKeys::with_access_token(Secret::new("hunter2"), "http://127.0.0.1:1");
        assert!(!format!("{api:?} {:?}", api.admin()).contains("hunter2"));
        let bad = ApiKeys::with_access_token(Secret::new("t"), "not a url").url(&["api"], &[]).unwrap_err();
        assert!(matches!(bad, Error::Configuration { .. }), "{bad}");
    }

    #[test]
    fn statuses_parse_case_insensitively() {
        assert_eq!("active".parse::<ApiKeyStatus>().unwrap(), ApiKeyStatus::Active);
        assert_eq!(" Revoked ".parse::<ApiKeyStatus>().unwrap(), ApiKeyStatus::Revoked);
        assert!("sleeping".parse::<ApiKeyStatus>().unwrap_err().to_string().contains("ACTIVE, EXPIRED, REVOKED"));
        let json = serde_json::to_string(&ApiKeyStatus::Expired).unwrap();
        assert_eq!(json, "\"EXPIRED\"");
    }
}
