//! A GitHub-Actions-style OIDC token endpoint (demo): what a CI job with `permissions: id-token:
//! write` asks for its workload identity token, so that `subject_token = "github-actions"` can be
//! shown and tested against this server instead of GitHub.
//!
//! Mounted with the test endpoints only ([`crate::IdpConfig::test_endpoints`]): its request token is
//! public, so anyone who reaches it gets a CI token.
//!
//! `GET /ci/github-actions/token?audience=AUD` with `Authorization: bearer <request token>`
//! (GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the demo request
//! token is [`crate::demo::CI_REQUEST_TOKEN`]) answers `{"value": JWT, "count": 1}` as GitHub
//! does. The JWT (`typ: ci+jwt`, signed with this server's key) says `iss` = this issuer, `sub` =
//! [`crate::demo::CI_SUBJECT`], `aud` = the `audience` asked (GitHub's default when none: the
//! repository owner's URL, here [`crate::demo::CI_DEFAULT_AUDIENCE`]), and lives five minutes.
//!
//! The token endpoint's RFC 8693 token exchange takes such a token as a `subject_token` of type
//! `urn:ietf:params:oauth:token-type:jwt` when its `aud` is this issuer (a token asked for
//! another audience is refused, as a real STS refuses it).

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::sync::Arc;

use crate::server::Shared;

type AppState = State<Arc<Shared>>;

/// The `typ` of a CI token: its own (GitHub's say `JWT`), so that it is never taken for one of
/// this server's ID tokens, whose `aud` a caller cannot choose.
const CI_TOKEN_TYPE: &str = "ci+jwt";
/// How long a CI token lives (GitHub's are valid for a few minutes).
const CI_TOKEN_TTL_SECS: u64 = 300;

/// The claims of a CI token (the subset of GitHub's that matters here).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CiTokenClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) jti: String,
    /// GitHub's `repository` claim.
    pub(crate) repository: String,
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    audience: Option<String>,
}

/// `GET /ci/github-actions/token`.
pub(crate) async fn token(State(s): AppState, headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    s.stats.update(|st| st.ci_token_requests += 1);
    let presented = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    // GitHub's runner sends "bearer" in lower case; the scheme is case-insensitive (RFC 9110).
    let authorized = presented
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && token == crate::demo::CI_REQUEST_TOKEN);
    if !authorized {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials"}))).into_response();
    }
    let now = s.now();
    let claims = CiTokenClaims {
        iss: s.issuer.clone(),
        sub: crate::demo::CI_SUBJECT.to_owned(),
        aud: query.audience.filter(|aud| !aud.is_empty()).unwrap_or_else(|| crate::demo::CI_DEFAULT_AUDIENCE.into()),
        exp: now + CI_TOKEN_TTL_SECS,
        iat: now,
        jti: crate::store::random_token(),
        repository: crate::demo::CI_REPOSITORY.to_owned(),
    };
    match s.keys.sign(CI_TOKEN_TYPE, &claims) {
        Ok(value) => Json(json!({"value": value, "count": 1})).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error).into_response(),
    }
}

/// The claims of a CI token this server issued, unexpired, asked for this server (its `aud` is
/// the issuer: a token meant for another party is not exchanged here).
pub(crate) fn verify(s: &Shared, token: &str) -> Result<CiTokenClaims, &'static str> {
    let claims: CiTokenClaims =
        s.keys.verify_typed(token, CI_TOKEN_TYPE, &s.issuer).ok_or("is not a CI token of this server")?;
    if claims.exp <= s.now() {
        return Err("has expired");
    }
    if claims.aud != s.issuer {
        return Err("was issued for another audience");
    }
    Ok(claims)
}
