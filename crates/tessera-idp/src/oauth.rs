//! Request plumbing shared by the OAuth endpoints: RFC 6749 §5.2 error responses, form
//! parsing, client authentication (§2.3.1) and bearer token extraction (RFC 6750).
//!
//! Nothing here logs a request body or a credential: error descriptions may name a parameter,
//! a grant type or a scope, never a password, secret, code or token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Client;
use crate::server::{Clients, Shared};

/// Realm named in `WWW-Authenticate` challenges.
pub(crate) const REALM: &str = "tessera-idp";

/// An error response: status, RFC 6749 §5.2 body and, for 401s, a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
    challenge: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self { status, error, description: description.into(), challenge: None }
    }

    /// The same error with its own `WWW-Authenticate` challenge.
    pub(crate) fn with_challenge(self, challenge: String) -> Self {
        Self { challenge: Some(challenge), ..self }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 with a Basic challenge, as RFC 6749 §5.2 asks for failed client authentication.
    pub(crate) fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            challenge: Some(format!("Basic realm=\"{REALM}\"")),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(crate) fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub(crate) fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", description)
    }

    pub(crate) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub(crate) fn server_error(description: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", description)
    }

    /// 401 for a protected resource (RFC 6750 §3). A request without any token gets a bare
    /// challenge (§3.1: no error code when the client sent no credentials).
    pub(crate) fn bearer(missing: bool, description: impl Into<String>) -> Self {
        let (error, challenge) = if missing {
            ("unauthorized", format!("Bearer realm=\"{REALM}\""))
        } else {
            ("invalid_token", format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""))
        };
        Self { challenge: Some(challenge), ..Self::new(StatusCode::UNAUTHORIZED, error, description) }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, no_store(), Json(body)).into_response();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// A parsed `application/x-www-form-urlencoded` body.
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>, Vec<String>);

impl Form {
    /// Parses `body` after checking the request's content type. Repeated parameters are
    /// rejected (RFC 6749 §3.2), except `resource` (RFC 8707 §2: one per resource); a token
    /// request takes one ([`crate::handlers::requested_resource`]).
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let mut map = HashMap::new();
        let mut resources = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let (Some(key), Some(value)) = (percent_decode(key), percent_decode(value)) else {
                return Err(OAuthError::invalid_request("malformed form body"));
            };
            if key == "resource" {
                resources.push(value.clone());
            }
            if map.contains_key(&key) && key != "resource" {
                return Err(OAuthError::invalid_request(format!("parameter `{key}` is repeated")));
            }
            map.insert(key, value);
        }
        Ok(Self(map, resources))
    }

    /// A form built from already-decoded pairs (e.g. fields of a JSON body), so JSON endpoints
    /// share the client authentication of the form ones.
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        Self(pairs.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect(), Vec::new())
    }

    /// Every `resource` parameter, in order (RFC 8707 allows one per resource).
    pub(crate) fn resources(&self) -> &[String] {
        &self.1
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
fn percent_decode(input: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Compares secrets without an early exit on the first differing byte.
pub(crate) fn secrets_match(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `client_assertion_type` of a `private_key_jwt` client assertion (RFC 7523 §2.2).
pub(crate) const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Authenticates the client of a token, revocation, introspection or device authorization
/// request: a client assertion (`private_key_jwt`: `client_assertion_type` + `client_assertion`,
/// checked against the client's registered public key), HTTP Basic (`client_secret_basic`),
/// `client_id` + `client_secret` in the body (`client_secret_post`), or `client_id` alone for a
/// public client (`none`). Needs the server's state: an assertion is checked against the issuer,
/// the server clock and the `jti`s already seen.
pub(crate) fn authenticate_client(s: &Shared, headers: &HeaderMap, form: &Form) -> Result<Arc<Client>, OAuthError> {
    if form.get("client_assertion_type").is_some() || form.get("client_assertion").is_some() {
        return authenticate_client_assertion(s, headers, form);
    }
    authenticate_client_secret(&s.clients, headers, form)
}

/// `private_key_jwt` and `client_secret_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the
/// assertion's `iss` and `sub` are the client, signed with its registered key (or, with an HMAC
/// `alg`, its secret); every refusal is `invalid_client`.
fn authenticate_client_assertion(s: &Shared, headers: &HeaderMap, form: &Form) -> Result<Arc<Client>, OAuthError> {
    if headers.contains_key(header::AUTHORIZATION) || form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not a client assertion and a secret",
        ));
    }
    if form.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(format!("client_assertion_type must be `{CLIENT_ASSERTION_TYPE}`")));
    }
    let assertion = form.require("client_assertion")?;
    // The client picks the key: `client_id` when sent, else the assertion's (unverified) `sub`.
    let client_id = match form.get("client_id") {
        Some(id) => id.to_owned(),
        None => crate::assertion::unverified_claim(assertion, "sub")
            .ok_or_else(|| OAuthError::invalid_client("the client assertion has no sub"))?,
    };
    let client = s.clients.get(&client_id).ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    // An HMAC alg names the client's secret as the key (client_secret_jwt); anything else its
    // registered public key (private_key_jwt).
    let hmac = jsonwebtoken::decode_header(assertion).is_ok_and(|header| {
        matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256 | jsonwebtoken::Algorithm::HS384 | jsonwebtoken::Algorithm::HS512
        )
    });
    let shared;
    let key = if hmac {
        let secret = client
            .client_secret
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("the client has no secret for client_secret_jwt"))?;
        shared = crate::assertion::AssertionKey::shared_secret(secret);
        &shared
    } else {
        s.client_keys
            .keys
            .get(&client_id)
            .ok_or_else(|| OAuthError::invalid_client("the client has no public key for private_key_jwt"))?
    };
    let expected =
        crate::assertion::Expected { party: &client.client_id, kind: "client", issuer: &s.issuer, now: s.now() };
    let claims = crate::assertion::verify(assertion, key, &expected, &s.client_keys.jtis)
        .map_err(|e| OAuthError::invalid_client(format!("client assertion refused: {e}")))?;
    if claims.sub.as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::invalid_client("client assertion refused: its sub is not the client_id"));
    }
    Ok(client)
}

/// The registered public keys of `private_key_jwt` clients and the `jti`s of their assertions.
#[derive(Default)]
pub(crate) struct ClientKeys {
    keys: HashMap<String, crate::assertion::AssertionKey>,
    jtis: crate::assertion::JtiCache,
}

impl ClientKeys {
    /// Reads every client's `public_key`; one that is not a public key is a configuration error.
    pub(crate) fn new<'c>(clients: impl IntoIterator<Item = &'c Client>) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for client in clients {
            if let Some(text) = &client.public_key {
                let key = crate::assertion::AssertionKey::parse(text, client.key_id.as_deref()).ok_or_else(|| {
                    format!("client `{}`: public_key is neither an SPKI PEM nor a public JWK", client.client_id)
                })?;
                keys.insert(client.client_id.clone(), key);
            }
        }
        Ok(ClientKeys { keys, jtis: Default::default() })
    }
}

/// Secret-based (or no) client authentication: HTTP Basic (`client_secret_basic`),
/// `client_id` + `client_secret` in the body (`client_secret_post`), or `client_id` alone for a
/// public client (`none`). A client with only a public key must send an assertion.
pub(crate) fn authenticate_client_secret(
    clients: &Clients,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Arc<Client>, OAuthError> {
    let (client_id, secret) = match basic_credentials(headers)? {
        Some((id, secret)) => {
            if form.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not HTTP Basic and client_secret",
                ));
            }
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request("client_id in the body differs from the HTTP Basic user"));
            }
            (id, secret.filter(|s| !s.is_empty()))
        }
        None => match form.get("client_id") {
            Some(id) => (id.to_owned(), form.get("client_secret").map(str::to_owned)),
            None => {
                return Err(OAuthError::invalid_client("client authentication is required"));
            }
        },
    };
    let client = clients.get(&client_id).ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    let authenticated = match (&client.client_secret, &secret) {
        (Some(expected), Some(presented)) => secrets_match(expected, presented),
        (None, None) => client.public_key.is_none(),
        _ => false,
    };
    if authenticated { Ok(client) } else { Err(OAuthError::invalid_client("client authentication failed")) }
}

/// The `(client_id, client_secret)` of an `Authorization: Basic` header, each
/// form-urlencoded before base64 as RFC 6749 §2.3.1 requires.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Option<String>)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client("malformed HTTP Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("unsupported Authorization scheme for client authentication"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let (id, secret) = match decoded.iter().position(|b| *b == b':') {
        Some(i) => (&decoded[..i], Some(&decoded[i + 1..])),
        None => (&decoded[..], None),
    };
    let id = percent_decode(id).ok_or_else(malformed)?;
    let secret = secret.map(|s| percent_decode(s).ok_or_else(malformed)).transpose()?;
    Ok(Some((id, secret)))
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, OAuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| OAuthError::bearer(true, "a bearer access token is required"))?;
    let value = value.to_str().map_err(|_| OAuthError::bearer(false, "malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(OAuthError::bearer(true, "the Authorization header must use the Bearer scheme")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IdpConfig;

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"));
        h
    }

    fn clients() -> Clients {
        Clients::new(IdpConfig::demo().clients)
    }

    #[test]
    fn form_decoding() {
        let form = Form::parse(&form_headers(), b"a=x+y%2Fz&b=&c").unwrap();
        assert_eq!(form.get("a"), Some("x y/z"));
        assert_eq!(form.get("b"), None);
        assert_eq!(form.get("c"), None);
        assert!(form.require("b").is_err());

        let repeated = Form::parse(&form_headers(), b"a=1&a=2").unwrap_err();
        assert_eq!(repeated.error, "invalid_request");
        assert!(Form::parse(&form_headers(), b"a=%zz").is_err());
        assert!(Form::parse(&HeaderMap::new(), b"a=1").is_err());
    }

    #[test]
    fn client_authentication_methods() {
        let clients = clients();
        let mut basic = HeaderMap::new();
        let creds = STANDARD.encode("confidential-client:confidential-secret");
        basic.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {creds}")).unwrap());
        let empty = Form::default();
        assert_eq!(authenticate_client_secret(&clients, &basic, &empty).unwrap().client_id, "confidential-client");

        let post = Form::parse(&form_headers(), b"client_id=confidential-client&client_secret=wrong").unwrap();
        let err = authenticate_client_secret(&clients, &HeaderMap::new(), &post).unwrap_err();
        assert_eq!((err.status, err.error), (StatusCode::UNAUTHORIZED, "invalid_client"));

        let public = Form::parse(&form_headers(), b"client_id=public-client").unwrap();
        assert!(authenticate_client_secret(&clients, &HeaderMap::new(), &public).is_ok());

        let missing_secret = Form::parse(&form_headers(), b"client_id=confidential-client").unwrap();
        assert!(authenticate_client_secret(&clients, &HeaderMap::new(), &missing_secret).is_err());
        assert!(authenticate_client_secret(&clients, &HeaderMap::new(), &empty).is_err());
    }

    #[test]
    fn bearer_extraction() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h).unwrap_err().error, "unauthorized");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&h).is_err());
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
    }
}
