//! OAuth 2.0 Token Exchange (RFC 8693): the request builder and the response parser.
//!
//! Pure functions, no I/O: a runtime sends the [`HttpRequest`] and feeds the [`HttpResponse`]
//! back. A token exchange trades a token the client holds (the *subject token*) for another one,
//! usually for a different audience or resource: the building block of token chains
//! (network login → discovery token → per-domain access token).

use serde::Deserialize;

use super::token::{parse_token_response, token_request};
use crate::http::endpoint_of;
use crate::{AssertionInputs, ClientAuth};
use crate::{Error, HttpRequest, HttpResponse, RequestId, Secret, Timestamp, TokenSet};

/// `grant_type` of a token exchange request (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Token type identifiers (RFC 8693 §3).
pub mod token_types {
    /// An OAuth 2.0 access token.
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// An OAuth 2.0 refresh token.
    pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
    /// An OpenID Connect ID token.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// A JWT.
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
}

/// What to ask for in a token exchange, apart from the subject token itself.
///
/// ```
/// use tessera_core::protocol::{TokenExchangeParams, token_types};
///
/// let params = TokenExchangeParams::default().audience("https://api.example").scope("read");
/// assert_eq!(params.subject_token_type, token_types::ACCESS_TOKEN);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenExchangeParams {
    /// Type of the subject token. Default: [`token_types::ACCESS_TOKEN`].
    pub subject_token_type: String,
    /// Type of the token wanted (`requested_token_type`); `None` lets the server choose.
    pub requested_token_type: Option<String>,
    /// Logical names of the target services (`audience`, one parameter per entry).
    pub audience: Vec<String>,
    /// Absolute URIs of the target resources (`resource`, one parameter per entry).
    pub resource: Vec<String>,
    /// Requested scope (space separated).
    pub scope: Option<String>,
}

impl Default for TokenExchangeParams {
    fn default() -> Self {
        TokenExchangeParams {
            subject_token_type: token_types::ACCESS_TOKEN.to_owned(),
            requested_token_type: None,
            audience: Vec::new(),
            resource: Vec::new(),
            scope: None,
        }
    }
}

impl TokenExchangeParams {
    /// Adds an `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// Adds a `resource`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource.push(resource.into());
        self
    }

    /// Sets the `scope`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets the `requested_token_type`.
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }
}

/// Builds a token exchange request (RFC 8693 §2.1) for `subject_token`, with client authentication.
pub fn token_exchange_request(
    id: RequestId,
    endpoint: &str,
    client: &ClientAuth,
    assertion: &AssertionInputs<'_>,
    subject_token: &Secret,
    params: &TokenExchangeParams,
) -> Result<HttpRequest, Error> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
        ("subject_token", subject_token.expose_secret()),
        ("subject_token_type", &params.subject_token_type),
    ];
    if let Some(requested) = &params.requested_token_type {
        form.push(("requested_token_type", requested));
    }
    form.extend(params.audience.iter().map(|a| ("audience", a.as_str())));
    form.extend(params.resource.iter().map(|r| ("resource", r.as_str())));
    if let Some(scope) = &params.scope {
        form.push(("scope", scope));
    }
    token_request(id, endpoint, client, assertion, &form)
}

/// The answer to a successful token exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangedToken {
    /// The issued token (in `access_token`, whatever its type, as RFC 8693 §2.2.1 puts it).
    pub tokens: TokenSet,
    /// `issued_token_type`, e.g. [`token_types::ACCESS_TOKEN`].
    pub issued_token_type: String,
}

#[derive(Deserialize)]
struct WireIssuedType {
    issued_token_type: Option<serde_json::Value>,
}

/// Parses a token exchange response (RFC 8693 §2.2) received at `now`.
///
/// Errors are those of [`parse_token_response`]; in addition a success without a string
/// `issued_token_type` (required by §2.2.1) is [`Error::MalformedResponse`].
pub fn parse_token_exchange_response(
    response: &HttpResponse,
    endpoint: &str,
    now: Timestamp,
) -> Result<ExchangedToken, Error> {
    let tokens = parse_token_response(response, endpoint, now)?;
    let malformed =
        |reason: &str| Error::MalformedResponse { endpoint: endpoint_of(endpoint), reason: reason.to_owned() };
    // The body parsed as a JSON object above; read the one extra field.
    let wire: WireIssuedType = serde_json::from_slice(&response.body)
        .map_err(|_| malformed("the token exchange response is not an object"))?;
    let issued_token_type = match wire.issued_token_type {
        Some(serde_json::Value::String(t)) if !t.is_empty() => t,
        Some(_) => return Err(malformed("issued_token_type is not a non-empty string")),
        None => return Err(malformed("no issued_token_type in the token exchange response")),
    };
    Ok(ExchangedToken { tokens, issued_token_type })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::OAuthErrorCode;

    const NOW: Timestamp = Timestamp::from_unix_secs(2_000);

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse::json(RequestId(3), status, body)
    }

    fn form(request: &HttpRequest) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&request.body).into_owned().collect()
    }

    #[test]
    fn request_carries_every_parameter_and_client_auth() {
        let params = TokenExchangeParams::default()
            .audience("discovery")
            .audience("other")
            .resource("https://api.example/x")
            .scope("read write")
            .requested_token_type(token_types::ACCESS_TOKEN);
        let client = ClientAuth::basic("c", Secret::new("s"));
        let subject = Secret::new("subject-token-value");
        let inputs = crate::AssertionInputs { now: Timestamp::EPOCH, jti: None, audience: "", dpop: None };
        let request =
            token_exchange_request(RequestId(9), "https://idp/token", &client, &inputs, &subject, &params).unwrap();
        assert_eq!(request.id, RequestId(9));
        assert_eq!(request.url, "https://idp/token");
        assert!(request.header("authorization").is_some_and(|v| v.starts_with("Basic ")));
        let pairs = form(&request);
        let get = |name: &str| pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("grant_type"), [TOKEN_EXCHANGE_GRANT_TYPE]);
        assert_eq!(get("subject_token"), ["subject-token-value"]);
        assert_eq!(get("subject_token_type"), [token_types::ACCESS_TOKEN]);
        assert_eq!(get("requested_token_type"), [token_types::ACCESS_TOKEN]);
        assert_eq!(get("audience"), ["discovery", "other"]);
        assert_eq!(get("resource"), ["https://api.example/x"]);
        assert_eq!(get("scope"), ["read write"]);
        assert!(!format!("{request:?}").contains("subject-token-value"));
    }

    #[test]
    fn minimal_request_and_public_client() {
        let request = token_exchange_request(
            RequestId(1),
            "https://idp/token",
            &ClientAuth::public("p"),
            &crate::AssertionInputs { now: Timestamp::EPOCH, jti: None, audience: "", dpop: None },
            &Secret::new("t"),
            &TokenExchangeParams::default(),
        )
        .unwrap();
        let names: Vec<String> = form(&request).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["grant_type", "subject_token", "subject_token_type", "client_id"]);
    }

    #[test]
    fn parses_issued_token_and_type() {
        let body = r#"{"access_token":"new","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":60,"scope":"read"}"#;
        let exchanged = parse_token_exchange_response(&response(200, body), "https://idp/token", NOW).unwrap();
        assert_eq!(exchanged.issued_token_type, token_types::ACCESS_TOKEN);
        assert_eq!(exchanged.tokens.access_token.expose_secret(), "new");
        assert_eq!(exchanged.tokens.expires_at, Some(NOW + Duration::from_secs(60)));
        assert_eq!(exchanged.tokens.scope.as_deref(), Some("read"));
    }

    #[test]
    fn rejects_missing_issued_token_type_and_keeps_oauth_errors() {
        for body in [r#"{"access_token":"a"}"#, r#"{"access_token":"a","issued_token_type":7}"#] {
            let error = parse_token_exchange_response(&response(200, body), "https://idp/token", NOW).unwrap_err();
            assert!(matches!(&error, Error::MalformedResponse { reason, .. } if reason.contains("issued_token_type")));
        }
        let denied = r#"{"error":"invalid_grant","error_description":"subject token inactive"}"#;
        let error = parse_token_exchange_response(&response(400, denied), "https://idp/token", NOW).unwrap_err();
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        let truncated = parse_token_exchange_response(&response(200, r#"{"access_token":"#), "e", NOW).unwrap_err();
        assert!(matches!(truncated, Error::MalformedResponse { .. }));
    }
}
