//! OpenID Connect Discovery 1.0 (and RFC 8414): provider metadata.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::token::{parse_error_response, redacted_json_error};
use crate::http::endpoint_of;
use crate::{Error, HttpRequest, HttpResponse, Method, RequestId};

/// The endpoints and capabilities a server publishes at `/.well-known/openid-configuration`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// Must equal the issuer the client was configured with.
    pub issuer: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Authorization endpoint (browser logins).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// RFC 8628 device authorization endpoint.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// UserInfo endpoint.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// JWKS URL.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Grant types the server supports, when listed.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// The client authentication methods the token endpoint accepts (RFC 8414 §2), when listed:
    /// where a client whose description leaves `client_auth` unset picks its method
    /// ([`crate::ClientAuth::choose_method`]).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7591 dynamic client registration endpoint.
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// Scopes the server supports, when listed.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// PKCE methods the server supports (RFC 8414 §2), when listed.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Every other field of the document, as sent: non-standard endpoints such as the reference
    /// server's `otp_start_endpoint` / `otp_verify_endpoint` (see [`ProviderMetadata::extra_str`]).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ProviderMetadata {
    /// A non-standard string field of the document (e.g. `otp_start_endpoint`), when present.
    pub fn extra_str(&self, name: &str) -> Option<&str> {
        self.extra.get(name).and_then(serde_json::Value::as_str)
    }

    /// The RFC 8705 §5 alias of endpoint `name` (`token_endpoint`, `revocation_endpoint`, ...) in
    /// `mtls_endpoint_aliases`: where a client that authenticates with its TLS certificate sends
    /// its requests, when the server publishes one.
    pub fn mtls_alias(&self, name: &str) -> Option<&str> {
        self.extra.get("mtls_endpoint_aliases")?.get(name)?.as_str()
    }
}

fn trim_issuer(issuer: &str) -> &str {
    issuer.strip_suffix('/').unwrap_or(issuer)
}

/// The OpenID Connect discovery URL for an issuer: `{issuer}/.well-known/openid-configuration`
/// (a trailing slash of the issuer removed first, OpenID Connect Discovery §4.1).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", trim_issuer(issuer))
}

/// Builds the discovery request for `issuer`.
pub fn discovery_request(id: RequestId, issuer: &str) -> HttpRequest {
    HttpRequest {
        id,
        method: Method::Get,
        url: discovery_url(issuer),
        headers: vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
    }
}

/// Parses a discovery document and checks that it belongs to `expected_issuer` (a trailing slash is tolerated).
pub fn parse_discovery(response: &HttpResponse, expected_issuer: &str) -> Result<ProviderMetadata, Error> {
    let endpoint = endpoint_of(&discovery_url(expected_issuer));
    if !(200..300).contains(&response.status) {
        return Err(parse_error_response(response, &endpoint));
    }
    let malformed = |reason: String| Error::MalformedResponse { endpoint: endpoint.clone(), reason };
    if !response.media_type().is_some_and(|t| t == "application/json" || t.ends_with("+json")) {
        return Err(malformed(format!(
            "expected application/json, got {}",
            response.media_type().unwrap_or_else(|| "no content type".into())
        )));
    }
    let metadata: ProviderMetadata =
        // The document's values never appear in the error: serde's own messages quote them.
        serde_json::from_slice(&response.body)
            .map_err(|e| malformed(format!("not a discovery document ({})", redacted_json_error(&e))))?;
    if trim_issuer(&metadata.issuer) != trim_issuer(expected_issuer) {
        return Err(malformed(format!("its issuer is not {}", endpoint_of(expected_issuer))));
    }
    // Endpoints reach errors and logs as sent: none may carry a line or an escape of its own.
    let endpoints = [
        ("token_endpoint", Some(&metadata.token_endpoint)),
        ("authorization_endpoint", metadata.authorization_endpoint.as_ref()),
        ("revocation_endpoint", metadata.revocation_endpoint.as_ref()),
        ("introspection_endpoint", metadata.introspection_endpoint.as_ref()),
        ("device_authorization_endpoint", metadata.device_authorization_endpoint.as_ref()),
        ("userinfo_endpoint", metadata.userinfo_endpoint.as_ref()),
        ("jwks_uri", metadata.jwks_uri.as_ref()),
        ("registration_endpoint", metadata.registration_endpoint.as_ref()),
    ];
    if let Some((name, _)) =
        endpoints.iter().find(|(_, value)| value.is_some_and(|value| value.chars().any(super::is_hidden)))
    {
        return Err(malformed(format!("`{name}` holds a control or invisible character")));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_issuer() {
        let request = discovery_request(RequestId(1), "https://idp.example/");
        assert_eq!(request.url, "https://idp.example/.well-known/openid-configuration");
        let body = r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","revocation_endpoint":"https://idp.example/revoke","extra":1}"#;
        let metadata = parse_discovery(&HttpResponse::json(RequestId(1), 200, body), "https://idp.example/").unwrap();
        assert_eq!(metadata.token_endpoint, "https://idp.example/token");
        assert_eq!(metadata.revocation_endpoint.as_deref(), Some("https://idp.example/revoke"));
        assert_eq!(metadata.extra.get("extra"), Some(&serde_json::json!(1)));
        assert_eq!(metadata.extra_str("extra"), None, "not a string");
        assert!(!metadata.extra.contains_key("token_endpoint"), "named fields are not repeated");

        // An endpoint that carries a line of its own (the URL parser would drop it) is refused, by name.
        let forged = r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","jwks_uri":"https://idp.example/jw\nks"}"#;
        let error = parse_discovery(&HttpResponse::json(RequestId(1), 200, forged), "https://idp.example").unwrap_err();
        assert!(error.to_string().contains("`jwks_uri` holds a control or invisible character"), "{error}");

        let error = parse_discovery(&HttpResponse::json(RequestId(1), 200, body), "https://evil.example").unwrap_err();
        assert!(error.to_string().contains("issuer"), "{error}");
        assert!(!error.to_string().contains("idp.example"), "never quotes the document: {error}");
        let typed =
            r#"{"issuer":"https://idp.example","token_endpoint":"s3cr3t-value","grant_types_supported":"s3cr3t"}"#;
        let error = parse_discovery(&HttpResponse::json(RequestId(1), 200, typed), "https://idp.example").unwrap_err();
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        let error = parse_discovery(&HttpResponse::json(RequestId(1), 200, r#"{"issuer":"x"}"#), "x").unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }));
        let error = parse_discovery(&HttpResponse::json(RequestId(1), 404, "{}"), "x").unwrap_err();
        assert!(matches!(error, Error::UnexpectedStatus { status: 404, .. }));
    }
}
