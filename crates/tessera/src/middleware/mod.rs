//! HTTP integrations: put a [`Session`]'s `Authorization` header on every request, and when the
//! API answers that the token was rejected, refresh once and retry once.
//!
//! - [`AuthMiddleware`] for `reqwest-middleware` (feature `reqwest-middleware`);
//! - [`AuthLayer`] for `tower` services: hyper and axum clients, tonic channels (feature `tower`).
//!
//! Both follow the same rules (docs/http-integration.md):
//!
//! 1. The header comes from [`Session::authorization_header`]: cached, refreshed once when due.
//!    A cached header is the calling thread's own copy, and its
//!    [`AuthorizationHeader::to_header_value`] is built once per copy: a request costs a clone of
//!    the header value, not its validation and copy.
//! 2. A response is a *rejection* when its status is 401, when it carries
//!    `WWW-Authenticate: Bearer error="invalid_token"`, or (gRPC) when its headers carry
//!    `grpc-status: 16` (UNAUTHENTICATED).
//! 3. On a rejection, a new token is obtained once: the session's current one if another task
//!    already replaced the rejected token, else a [`Session::force_refresh`] of the rejected token (callers that saw the
//!    same rejected token share one refresh).
//! 4. A request whose body can be replayed is sent again, once, with the new token. If that answer
//!    is a rejection too, the result is the typed error [`Error::OAuth`] with
//!    [`OAuthErrorCode::InvalidToken`]; there is never a second retry.
//! 5. A request whose body cannot be replayed (a stream) is not sent again: the rejection is
//!    returned unchanged, and the refreshed token serves the next request.
//! 6. When the refresh itself fails, that error is returned (e.g. `ReauthenticationRequired`).
//!    When the refresh yields the very token that was rejected (a static token), the typed
//!    `invalid_token` error is returned without a pointless retry.
//! 7. DPoP providers (`dpop = true`, docs/dpop.md): every request (and every retry) carries
//!    `Authorization: DPoP <token>` and a fresh `DPoP` proof for its method and URL, with the
//!    nonce that server gave last (each answer's `DPoP-Nonce` is remembered per origin). A 401
//!    asking for a nonce (`WWW-Authenticate: DPoP error="use_dpop_nonce"`) is sent again once with
//!    the new nonce, before and apart from rule 3. Bearer providers never take this path.
//! 8. A 403 (or 401) whose challenge says `error="insufficient_scope"` with `scope="…"` (RFC 6750
//!    §3.1) is a *step-up*, before and apart from rule 2: [`Session::step_up`] logs in again for
//!    the wider scope when that needs nobody or the session has a prompter, and a replayable
//!    request is sent again once with the new token; otherwise (nobody to ask, no `scope` named,
//!    the scope still missing after the step-up) the result is the typed error [`Error::OAuth`]
//!    with [`OAuthErrorCode::InsufficientScope`]. A request that cannot be replayed gets the 403
//!    back, and the stepped-up token serves the next request.

#[cfg(feature = "reqwest-middleware")]
mod reqwest;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "reqwest-middleware")]
pub use self::reqwest::AuthMiddleware;
#[cfg(feature = "tower")]
pub use self::tower::{AuthLayer, AuthService, BufferedBodies, NeverReplay, ReplayPolicy, ReplayableBody};

use http::HeaderMap;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use tessera_core::protocol::challenge::TokenScheme;
use tessera_core::{Error, OAuthErrorCode};

use crate::{AuthorizationHeader, Session};

/// True when a response says that the token it was sent with was rejected: status 401, a
/// `WWW-Authenticate: Bearer ... error="invalid_token"` challenge, or gRPC status 16
/// (UNAUTHENTICATED) in the headers of a trailers-only response.
pub fn is_token_rejected(status: u16, headers: &HeaderMap) -> bool {
    status == 401
        || headers.get_all(WWW_AUTHENTICATE).iter().any(|value| challenges_invalid_token(value.as_bytes()))
        || headers.get("grpc-status").is_some_and(|value| value.as_bytes() == b"16")
}

/// A `Bearer` challenge with `error="invalid_token"` (RFC 6750 §3.1), read by the one challenge
/// parser ([`tessera_core::protocol::challenge`]).
fn challenges_invalid_token(value: &[u8]) -> bool {
    let value = String::from_utf8_lossy(value);
    tessera_core::protocol::challenge::token_challenges([value.as_ref()])
        .iter()
        .any(|c| c.scheme == TokenScheme::Bearer && c.error == Some(OAuthErrorCode::InvalidToken))
}

/// The scope an answer says the request needs (rule 8), `None` for any other answer.
pub(crate) fn insufficient_scope(status: u16, headers: &HeaderMap) -> Option<String> {
    tessera_core::protocol::challenge::required_scope(status, www_authenticate(headers).as_deref())
}

/// The typed error for a token rejected again after a refresh (or a refresh that changed nothing).
pub(crate) fn rejected_again(url: &str, status: u16, description: &str) -> Error {
    Error::OAuth {
        code: OAuthErrorCode::InvalidToken,
        description: Some(description.to_owned()),
        status,
        endpoint: url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

/// What to retry with after `sent` was rejected: the session's current token when another task
/// already replaced `sent`, else a forced refresh. `Ok(None)` when the session can only offer the
/// token that was just rejected (a static token).
pub(crate) async fn replacement_token(
    session: &Session,
    sent: &AuthorizationHeader,
) -> Result<Option<AuthorizationHeader>, Error> {
    if let Some(current) = session.cached_header()
        && current.expose_secret() != sent.expose_secret()
    {
        return Ok(Some(current));
    }
    // The token sent is the rejected one (not the session's current token, which another task
    // may have replaced already).
    let refreshed = session.replace_rejected(sent).await?;
    Ok((refreshed.expose_secret() != sent.expose_secret()).then_some(refreshed))
}

/// Puts `header` on a request to `method` `url`, and for a DPoP provider a fresh proof of it.
pub(crate) fn authorize(
    headers: &mut HeaderMap,
    session: &Session,
    header: &AuthorizationHeader,
    method: &str,
    url: &str,
) -> Result<(), Error> {
    headers.insert(AUTHORIZATION, header.to_header_value());
    if let Some(proof) = session.dpop_proof(header, method, url)? {
        let mut value = http::HeaderValue::from_str(proof.expose_secret())
            .map_err(|_| Error::internal("a DPoP proof that is not a header value"))?;
        value.set_sensitive(true);
        headers.insert("dpop", value);
    }
    Ok(())
}

/// For a DPoP provider: remembers the answer's `DPoP-Nonce`, and says whether the answer asks for
/// a retry with it (RFC 9449 §9). Always `false` for bearer providers.
pub(crate) fn dpop_nonce_challenge(session: &Session, url: &str, status: u16, headers: &HeaderMap) -> bool {
    if !session.uses_dpop() {
        return false;
    }
    let nonce = headers.get("dpop-nonce").and_then(|value| value.to_str().ok());
    session.observe_dpop_response(url, status, www_authenticate(headers).as_deref(), nonce)
}

/// Every `WWW-Authenticate` field of an answer as one list (RFC 9110 §5.3), so that the challenge
/// parser finds the one it looks for wherever it is (a description that merely mentions
/// `use_dpop_nonce` in another field does not count); `None` without any.
fn www_authenticate(headers: &HeaderMap) -> Option<String> {
    let fields: Vec<_> =
        headers.get_all(WWW_AUTHENTICATE).iter().map(|value| String::from_utf8_lossy(value.as_bytes())).collect();
    (!fields.is_empty()).then(|| fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn recognises_rejections() {
        assert!(is_token_rejected(401, &HeaderMap::new()));
        assert!(!is_token_rejected(403, &HeaderMap::new()));
        assert!(!is_token_rejected(200, &HeaderMap::new()));
        for challenge in [
            r#"Bearer realm="api", error="invalid_token", error_description="expired""#,
            r#"bearer error=invalid_token"#,
            r#"Basic realm="x", Bearer error="invalid_token""#,
        ] {
            assert!(is_token_rejected(400, &headers(&[("www-authenticate", challenge)])), "{challenge}");
        }
        for challenge in [r#"Bearer realm="api", error="insufficient_scope""#, r#"Basic error="invalid_token""#] {
            assert!(!is_token_rejected(403, &headers(&[("www-authenticate", challenge)])), "{challenge}");
        }
        assert!(is_token_rejected(200, &headers(&[("grpc-status", "16")])));
        assert!(!is_token_rejected(200, &headers(&[("grpc-status", "0")])));
    }

    #[test]
    fn the_nonce_challenge_is_found_in_any_www_authenticate_field() {
        let answer = headers(&[
            ("www-authenticate", r#"Bearer error="invalid_token", error_description="not use_dpop_nonce""#),
            ("www-authenticate", r#"DPoP error="use_dpop_nonce", algs="ES256""#),
        ]);
        let joined = www_authenticate(&answer);
        assert!(tessera_core::dpop::is_resource_nonce_challenge(401, joined.as_deref()), "{joined:?}");
        let mention_only = headers(&[("www-authenticate", r#"Bearer error_description="use_dpop_nonce""#)]);
        assert!(!tessera_core::dpop::is_resource_nonce_challenge(401, www_authenticate(&mention_only).as_deref()));
        assert_eq!(www_authenticate(&HeaderMap::new()), None);
    }

    #[test]
    fn rejected_again_is_final_and_has_no_query() {
        let error = rejected_again("https://api/x?token=secret", 401, "again");
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidToken));
        assert!(!error.is_transient());
        assert!(!error.to_string().contains("secret"));
    }
}
