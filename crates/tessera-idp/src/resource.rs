//! Two protected demo resources that describe themselves (RFC 9728) and accept only tokens meant
//! for them (RFC 8707 audience): what resource-first discovery and login are tested against. The
//! second, [`FILES_PATH`], answers the same way at its own paths (one login serving two resources).
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /.well-known/oauth-protected-resource/api/resource` | RFC 9728 metadata: `resource` = `{issuer}/api/resource`, `authorization_servers` = `[issuer]` |
//! | `GET /api/resource` without a token | 401, `WWW-Authenticate: Bearer realm="tessera-idp", resource_metadata="…"` |
//! | a token whose `aud` is not the resource | 401, `error="invalid_token"` (and `resource_metadata`) |
//! | a token without the scope [`RESOURCE_SCOPE`] | 403, `error="insufficient_scope", scope="api:read"` |
//! | a token for it | 200 `{sub, client_id, scope, aud}` |

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::handlers::active_access_token;
use crate::oauth::{self, OAuthError, REALM};
use crate::server::Shared;

/// The demo resource's path; its identifier is the issuer followed by it.
pub const RESOURCE_PATH: &str = "/api/resource";

/// The second demo resource's path (same rules, its own identifier and metadata).
pub const FILES_PATH: &str = "/api/files";

/// The scope the demo resources require of a token.
pub const RESOURCE_SCOPE: &str = "api:read";

fn metadata_url(s: &Shared, path: &str) -> String {
    s.url(&format!("/.well-known/oauth-protected-resource{path}"))
}

/// `GET /.well-known/oauth-protected-resource/api/resource` (RFC 9728 §3).
pub(crate) async fn metadata(State(s): State<Arc<Shared>>) -> Json<Value> {
    metadata_of(&s, RESOURCE_PATH)
}

/// `GET /.well-known/oauth-protected-resource/api/files`.
pub(crate) async fn files_metadata(State(s): State<Arc<Shared>>) -> Json<Value> {
    metadata_of(&s, FILES_PATH)
}

fn metadata_of(s: &Shared, path: &str) -> Json<Value> {
    Json(json!({
        "resource": s.url(path),
        "authorization_servers": [s.issuer],
        "scopes_supported": [RESOURCE_SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "tessera-idp demo resource",
    }))
}

/// `GET /api/resource`: a token whose `aud` is this resource and whose scope holds [`RESOURCE_SCOPE`].
pub(crate) async fn resource(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    serve(&s, &headers, RESOURCE_PATH)
}

/// `GET /api/files`: as [`resource`], for its own identifier.
pub(crate) async fn files(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    serve(&s, &headers, FILES_PATH)
}

fn serve(s: &Shared, headers: &HeaderMap, path: &str) -> Response {
    let challenge =
        |extra: &str| format!("Bearer realm=\"{REALM}\", resource_metadata=\"{}\"{extra}", metadata_url(s, path));
    let token = match oauth::bearer_token(headers) {
        Ok(token) => token,
        // RFC 6750 §3.1: no error code when the request carried no credentials.
        Err(e) => return e.with_challenge(challenge("")).into_response(),
    };
    let invalid = |description: &str| {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
            .with_challenge(challenge(", error=\"invalid_token\""))
            .into_response()
    };
    let Some(claims) = active_access_token(s, token) else {
        return invalid("the access token is invalid, expired or revoked");
    };
    let identifier = s.url(path);
    if claims.aud != identifier {
        return invalid("the access token is not meant for this resource (its aud is another)");
    }
    if !claims.scope.split(' ').any(|scope| scope == RESOURCE_SCOPE) {
        return OAuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the scope {RESOURCE_SCOPE} is required"),
        )
        .with_challenge(challenge(&format!(", error=\"insufficient_scope\", scope=\"{RESOURCE_SCOPE}\"")))
        .into_response();
    }
    Json(json!({ "sub": claims.sub, "client_id": claims.client_id, "scope": claims.scope, "aud": claims.aud }))
        .into_response()
}
