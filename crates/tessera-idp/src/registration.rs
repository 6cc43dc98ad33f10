//! RFC 7591 dynamic client registration at `POST /register`: open registration (no initial
//! access token), for the resource-first login (a client that knows only an API's URL registers
//! itself). Registered clients live in memory with the configured ones.
//!
//! Accepted metadata: `redirect_uris` (absolute, no fragment, `https` or loopback `http`;
//! required with `authorization_code`), `token_endpoint_auth_method` (`none`,
//! `client_secret_basic` — the default, RFC 7591 §2 — or `client_secret_post`), `grant_types`
//! (default `["authorization_code"]`; `authorization_code`, `refresh_token`, the device code grant,
//! and `client_credentials` for a confidential client), `response_types`, `client_name`, `scope`,
//! `application_type`. Other fields are ignored. The answer is 201 with `client_id`,
//! `client_id_issued_at`, for a confidential client `client_secret` and
//! `client_secret_expires_at: 0` (never), and the metadata as registered. Refusals are 400
//! `invalid_redirect_uri` or `invalid_client_metadata`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::config::{Client, grant_types};
use crate::oauth::{self, OAuthError};
use crate::server::Shared;

/// Grant types a client may register for.
const REGISTRABLE: [&str; 4] = [
    grant_types::AUTHORIZATION_CODE,
    grant_types::REFRESH_TOKEN,
    grant_types::DEVICE_CODE,
    grant_types::CLIENT_CREDENTIALS,
];

fn invalid_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", description)
}

fn invalid_redirect_uri(description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
}

/// `POST /register`.
pub(crate) async fn register(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match registered(&s, &headers, &body) {
        Ok(answer) => {
            s.stats.update(|st| st.client_registrations += 1);
            (StatusCode::CREATED, oauth::no_store(), Json(answer)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn strings(object: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid_metadata(format!("{field} is not a list of strings")))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(invalid_metadata(format!("{field} is not a list of strings"))),
    }
}

fn string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, OAuthError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_metadata(format!("{field} is not a string"))),
    }
}

/// RFC 8252 §7.3 / §8.3: `https`, or `http` to a loopback IP (not `localhost`).
fn redirect_uri_ok(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else { return false };
    url.fragment().is_none()
        && match url.scheme() {
            "https" => true,
            "http" => {
                matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            }
            _ => false,
        }
}

fn registered(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(invalid_metadata("the request body must be application/json"));
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid_metadata("the request body must be a JSON object"));
    };
    let method = string(&object, "token_endpoint_auth_method")?.unwrap_or_else(|| "client_secret_basic".into());
    if !["none", "client_secret_basic", "client_secret_post"].contains(&method.as_str()) {
        return Err(invalid_metadata(format!(
            "token_endpoint_auth_method {method} is not supported here (none, client_secret_basic, client_secret_post)"
        )));
    }
    let grants = strings(&object, "grant_types")?.unwrap_or_else(|| vec![grant_types::AUTHORIZATION_CODE.into()]);
    if let Some(grant) = grants.iter().find(|g| !REGISTRABLE.contains(&g.as_str())) {
        return Err(invalid_metadata(format!("grant type {grant} cannot be registered")));
    }
    let public = method == "none";
    if public && grants.iter().any(|g| g == grant_types::CLIENT_CREDENTIALS) {
        return Err(invalid_metadata("client_credentials needs a confidential client"));
    }
    let redirect_uris = strings(&object, "redirect_uris")?.unwrap_or_default();
    if grants.iter().any(|g| g == grant_types::AUTHORIZATION_CODE) && redirect_uris.is_empty() {
        return Err(invalid_redirect_uri("authorization_code needs at least one redirect URI"));
    }
    if redirect_uris.iter().any(|u| !redirect_uri_ok(u)) {
        return Err(invalid_redirect_uri(
            "a redirect URI must be absolute, without a fragment, https or http to a loopback IP",
        ));
    }
    let response_types = strings(&object, "response_types")?.unwrap_or_else(|| vec!["code".into()]);
    let client_name = string(&object, "client_name")?;
    let scope = string(&object, "scope")?;
    let application_type = string(&object, "application_type")?;

    let client_id = format!("dyn-{}", &crate::store::random_token()[..22]);
    let secret = (!public).then(crate::store::random_token);
    let client = Client {
        client_id: client_id.clone(),
        client_secret: secret.clone(),
        grant_types: grants.clone(),
        redirect_uris: redirect_uris.clone(),
        public_key: None,
        key_id: None,
    };
    s.clients.insert(client).map_err(|problem| {
        OAuthError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", problem)
    })?;
    tracing::info!(client_id, public, "client registered");
    let mut answer = json!({
        "client_id": client_id,
        "client_id_issued_at": s.now(),
        "token_endpoint_auth_method": method,
        "grant_types": grants,
        "response_types": response_types,
        "redirect_uris": redirect_uris,
    });
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(0);
    }
    for (field, value) in [("client_name", client_name), ("scope", scope), ("application_type", application_type)] {
        if let Some(value) = value {
            answer[field] = json!(value);
        }
    }
    Ok(answer)
}
