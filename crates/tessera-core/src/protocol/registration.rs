//! RFC 7591 dynamic client registration: the request a client sends to an authorization server's
//! `registration_endpoint`, and the registered client it gets back. Pure functions; no I/O.
//!
//! Secrets in the answer (`client_secret`, `registration_access_token`) are [`Secret`]s: never
//! printed, never in an error.

use serde::Serialize;
use serde_json::{Map, Value};

use super::token::{parse_error_response, redacted_json_error};
use crate::http::endpoint_of;
use crate::{Error, HttpRequest, HttpResponse, MetadataProblem, Method, RequestId, Secret};

/// RFC 7591 §2 client metadata: what a client asks to be registered as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// Redirect URIs for the authorization code grant (loopback `http://127.0.0.1/...` for a
    /// native app, RFC 8252 §7.3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// `none` (a public client: PKCE proves it), `client_secret_basic`, `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// Grant types the client will use.
    pub grant_types: Vec<String>,
    /// Response types (`code` for the authorization code grant). Sent even when empty: RFC 7591
    /// §2 makes an absent list mean `["code"]`, which needs redirect URIs.
    pub response_types: Vec<String>,
    /// Human-readable name shown on consent pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Space-separated scopes the client may ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OpenID Connect Registration's `native` or `web`: `native` lets a server accept loopback
    /// redirect URIs on any port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
}

impl ClientRegistration {
    /// A public native client (RFC 8252): authorization code with PKCE and refresh tokens,
    /// `token_endpoint_auth_method = none`, redirected to `redirect_uris`, named `client_name`.
    pub fn public_native(redirect_uris: &[&str], client_name: impl Into<String>) -> Self {
        ClientRegistration {
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            token_endpoint_auth_method: "none".into(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            client_name: Some(client_name.into()),
            scope: None,
            application_type: Some("native".into()),
        }
    }

    /// A confidential service client: `client_credentials`, authenticated by the secret the
    /// server issues (`client_secret_basic`), named `client_name`.
    pub fn confidential_service(client_name: impl Into<String>) -> Self {
        ClientRegistration {
            redirect_uris: Vec::new(),
            token_endpoint_auth_method: "client_secret_basic".into(),
            grant_types: vec!["client_credentials".into()],
            response_types: Vec::new(),
            client_name: Some(client_name.into()),
            scope: None,
            application_type: None,
        }
    }

    /// The same registration asking for `scope`.
    pub fn with_scope(self, scope: impl Into<String>) -> Self {
        ClientRegistration { scope: Some(scope.into()), ..self }
    }
}

/// The registration request (RFC 7591 §3.1): a JSON POST to `endpoint`, with the initial access
/// token as a bearer token when the server requires one.
pub fn registration_request(
    id: RequestId,
    endpoint: &str,
    registration: &ClientRegistration,
    initial_access_token: Option<&Secret>,
) -> Result<HttpRequest, Error> {
    let body =
        serde_json::to_vec(registration).map_err(|_| Error::internal("client metadata that is not serializable"))?;
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    if let Some(token) = initial_access_token {
        headers.push(("authorization".to_owned(), format!("Bearer {}", token.expose_secret())));
    }
    Ok(HttpRequest { id, method: Method::Post, url: endpoint.to_owned(), headers, body })
}

/// A registered client (RFC 7591 §3.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredClient {
    /// The `client_id` issued.
    pub client_id: String,
    /// The `client_secret`, for a confidential client.
    pub client_secret: Option<Secret>,
    /// When the secret expires (Unix seconds); `None` when it never does (`0`) or there is none.
    pub client_secret_expires_at: Option<u64>,
    /// When the client id was issued (Unix seconds), when given.
    pub client_id_issued_at: Option<u64>,
    /// RFC 7592: the token to read, update or delete the registration, when given.
    pub registration_access_token: Option<Secret>,
    /// RFC 7592: where the registration can be managed, when given.
    pub registration_client_uri: Option<String>,
    /// The authentication method the server registered (it may differ from the one asked).
    pub token_endpoint_auth_method: Option<String>,
    /// The redirect URIs the server registered.
    pub redirect_uris: Vec<String>,
    /// The grant types the server registered.
    pub grant_types: Vec<String>,
}

/// Parses a registration answer: a 2xx with the registered client, or the server's error
/// (RFC 7591 §3.2.2: `invalid_redirect_uri`, `invalid_client_metadata`, ... as
/// [`Error::OAuth`]). A malformed field is an [`Error::Metadata`] naming it.
pub fn parse_registration_response(response: &HttpResponse, endpoint: &str) -> Result<RegisteredClient, Error> {
    let endpoint = endpoint_of(endpoint);
    if !(200..300).contains(&response.status) {
        return Err(parse_error_response(response, &endpoint));
    }
    let refuse = |problem| Error::Metadata { problem, endpoint: endpoint.clone() };
    let malformed = |field: &str, reason: &str| {
        refuse(MetadataProblem::Malformed { field: field.to_owned(), reason: reason.to_owned() })
    };
    if !response.media_type().is_some_and(|t| t == "application/json" || t.ends_with("+json")) {
        let content_type = response.media_type().unwrap_or_else(|| "no content type".into());
        return Err(refuse(MetadataProblem::NotJson { content_type }));
    }
    let object: Map<String, Value> = match serde_json::from_slice(&response.body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(refuse(MetadataProblem::NotAnObject)),
        Err(e) => {
            return Err(Error::MalformedResponse {
                endpoint: endpoint.clone(),
                reason: format!("invalid JSON ({})", redacted_json_error(&e)),
            });
        }
    };
    let string = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(field, "is not a string")),
    };
    let number = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| malformed(field, "is not a whole number")),
        Some(_) => Err(malformed(field, "is not a number")),
    };
    let strings = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| malformed(field, "is not a list of strings")))
            .collect(),
        Some(_) => Err(malformed(field, "is not a list of strings")),
    };
    let client_id =
        string("client_id")?.filter(|id| !id.trim().is_empty()).ok_or_else(|| malformed("client_id", "is missing"))?;
    // It is logged and shown: no line or escape of the server's own.
    if client_id.chars().any(super::is_hidden) {
        return Err(malformed("client_id", "holds a control or invisible character"));
    }
    Ok(RegisteredClient {
        client_id,
        client_secret: string("client_secret")?.filter(|s| !s.is_empty()).map(Secret::new),
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        client_secret_expires_at: number("client_secret_expires_at")?.filter(|at| *at != 0),
        client_id_issued_at: number("client_id_issued_at")?,
        registration_access_token: string("registration_access_token")?.filter(|s| !s.is_empty()).map(Secret::new),
        registration_client_uri: string("registration_client_uri")?,
        token_endpoint_auth_method: string("token_endpoint_auth_method")?,
        redirect_uris: strings("redirect_uris")?,
        grant_types: strings("grant_types")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_with_a_control_character_is_refused() {
        let body = r#"{"client_id":"abc\u001b[2Jdef","redirect_uris":["http://127.0.0.1/callback"]}"#;
        let error = parse_registration_response(&HttpResponse::json(RequestId(1), 201, body), "https://idp/register")
            .unwrap_err();
        assert!(error.to_string().contains("client_id") && error.to_string().contains("control"), "{error}");
        assert!(!error.to_string().contains("abc"), "{error}");
    }

    #[test]
    fn request_and_answer() {
        let registration =
            ClientRegistration::public_native(&["http://127.0.0.1/callback"], "tessera").with_scope("openid");
        let request =
            registration_request(RequestId(3), "https://idp/register", &registration, Some(&Secret::new("iat")))
                .unwrap();
        assert_eq!(request.header("authorization"), Some("Bearer iat"));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert_eq!(body["application_type"], "native");
        assert_eq!(body["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));

        let answer = r#"{"client_id":"c1","client_secret":"s3cr3t","client_secret_expires_at":0,"client_id_issued_at":5,
            "registration_access_token":"rat","redirect_uris":["http://127.0.0.1/callback"]}"#;
        let client =
            parse_registration_response(&HttpResponse::json(RequestId(3), 201, answer), "https://idp/register")
                .unwrap();
        assert_eq!(client.client_id, "c1");
        assert_eq!(client.client_secret.as_ref().map(Secret::expose_secret), Some("s3cr3t"));
        assert_eq!(client.client_secret_expires_at, None, "0: never");
        assert!(!format!("{client:?}").contains("s3cr3t"));

        let error = parse_registration_response(
            &HttpResponse::json(RequestId(3), 400, r#"{"error":"invalid_redirect_uri"}"#),
            "https://idp/register",
        )
        .unwrap_err();
        assert_eq!(error.oauth_code(), Some(&crate::OAuthErrorCode::Other("invalid_redirect_uri".into())));
        let error = parse_registration_response(
            &HttpResponse::json(RequestId(3), 201, r#"{"client_id":7,"client_secret":"s3cr3t"}"#),
            "https://idp/register",
        )
        .unwrap_err();
        assert!(
            matches!(&error, Error::Metadata { problem: MetadataProblem::Malformed { field, .. }, .. } if field == "client_id")
        );
        assert!(!error.to_string().contains("s3cr3t"));
        // A blank client id is no client id (the registration_response fuzz target's invariant).
        let blank = parse_registration_response(
            &HttpResponse::json(RequestId(3), 201, r#"{"client_id":"  "}"#),
            "https://idp/register",
        );
        assert!(matches!(blank, Err(Error::Metadata { .. })), "{blank:?}");
    }
}
