//! RFC 8628 device authorization: the request that starts a device login, and its response.

use serde::Deserialize;

use super::token::parse_error_response;
use crate::http::endpoint_of;
use crate::{AssertionInputs, ClientAuth};
use crate::{Error, HttpRequest, HttpResponse, RequestId, Secret};

/// The grant type a device polls the token endpoint with (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the device authorization endpoint returned (RFC 8628 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// Polled with; secret (it yields the tokens once approved).
    pub device_code: Secret,
    /// What the user types at `verification_uri`. Shown, not secret.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// `verification_uri` with the code filled in (for a QR code), when given.
    pub verification_uri_complete: Option<String>,
    /// Lifetime of the codes, in seconds.
    pub expires_in: u64,
    /// Minimum polling interval in seconds (default 5).
    pub interval: u64,
}

#[derive(Deserialize)]
struct Wire {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(alias = "verification_url_complete")]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

/// Builds the device authorization request.
pub fn device_authorization_request(
    id: RequestId,
    endpoint: &str,
    client: &ClientAuth,
    assertion: &AssertionInputs<'_>,
    scope: Option<&str>,
    resources: &[String],
) -> Result<HttpRequest, Error> {
    let mut params = Vec::new();
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        params.push(("scope", scope));
    }
    // RFC 8707 §2.1: every resource the login is for (RFC 8628 requests take the same parameters).
    params.extend(resources.iter().map(|resource| ("resource", resource.as_str())));
    super::token::token_request(id, endpoint, client, assertion, &params)
}

/// Parses the device authorization response.
pub fn parse_device_authorization(response: &HttpResponse, endpoint: &str) -> Result<DeviceAuthorization, Error> {
    let endpoint = endpoint_of(endpoint);
    if !(200..300).contains(&response.status) {
        return Err(parse_error_response(response, &endpoint));
    }
    let malformed = |reason: String| Error::MalformedResponse { endpoint: endpoint.clone(), reason };
    if !response.media_type().is_some_and(|t| t == "application/json" || t.ends_with("+json")) {
        return Err(malformed("expected application/json".into()));
    }
    let wire: Wire = serde_json::from_slice(&response.body).map_err(|e| {
        malformed(format!("not a device authorization response (line {}, column {})", e.line(), e.column()))
    })?;
    if wire.device_code.is_empty() || wire.user_code.is_empty() || wire.verification_uri.is_empty() {
        return Err(malformed("device_code, user_code and verification_uri must not be empty".into()));
    }
    // What the person is shown: a control character there would rewrite their terminal.
    let shown = [Some(&wire.user_code), Some(&wire.verification_uri), wire.verification_uri_complete.as_ref()];
    if shown.into_iter().flatten().any(|text| text.chars().any(super::is_hidden)) {
        return Err(malformed(
            "user_code or a verification URI holds a control or invisible character (a server writing to the terminal)"
                .into(),
        ));
    }
    Ok(DeviceAuthorization {
        device_code: Secret::new(wire.device_code),
        user_code: wire.user_code,
        verification_uri: wire.verification_uri,
        verification_uri_complete: wire.verification_uri_complete,
        expires_in: wire.expires_in,
        interval: wire.interval.unwrap_or(5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the person is shown must not write to their terminal: a control or invisible character
    /// in the user code or a verification URI is a malformed response, not a prompt.
    #[test]
    fn a_code_or_uri_with_a_control_character_is_refused() {
        for (field, value) in [
            ("user_code", "WDJB\u{1b}[2J-MJHT"),
            ("verification_uri", "https://example.com/device\nlevel=INFO"),
            ("verification_uri_complete", "https://example.com/device?\u{202e}user_code=1"),
        ] {
            let mut body = serde_json::json!({
                "device_code": "d", "user_code": "WDJB-MJHT", "verification_uri": "https://example.com/device",
                "expires_in": 10,
            });
            body[field] = value.into();
            let response = HttpResponse::json(RequestId(1), 200, body.to_string());
            let error = parse_device_authorization(&response, "https://e/device").unwrap_err();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{field}: {error:?}");
            assert!(error.to_string().contains("control or invisible character"), "{error}");
        }
    }

    #[test]
    fn parses_rfc8628_example() {
        let body = r#"{"device_code":"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS","user_code":"WDJB-MJHT",
            "verification_uri":"https://example.com/device","verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT",
            "expires_in":1800,"interval":5}"#;
        let parsed =
            parse_device_authorization(&HttpResponse::json(RequestId(1), 200, body), "https://e/device").unwrap();
        assert_eq!(parsed.user_code, "WDJB-MJHT");
        assert_eq!(parsed.interval, 5);
        assert!(!format!("{parsed:?}").contains("GmRhm"));
        let no_interval = r#"{"device_code":"d","user_code":"u","verification_uri":"v","expires_in":10}"#;
        assert_eq!(
            parse_device_authorization(&HttpResponse::json(RequestId(1), 200, no_interval), "e").unwrap().interval,
            5
        );
        let error = parse_device_authorization(&HttpResponse::json(RequestId(1), 200, r#"{"user_code":"u"}"#), "e")
            .unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }));
    }
}
