//! Token endpoint requests and responses (RFC 6749 §5), and revocation (RFC 7009).

use std::time::Duration;

use serde::Deserialize;
use url::form_urlencoded;

use crate::http::endpoint_of;
use crate::{AssertionInputs, ClientAuth};
use crate::{Error, HttpRequest, HttpResponse, Method, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet};

/// Server-provided error descriptions are cut to this many characters.
pub const MAX_DESCRIPTION_LEN: usize = 300;

/// A server's free text (`error_description`, Cognito's `message`, an email-OTP server's reason, a
/// masked destination) as tessera repeats it in errors, prompts and logs: at most
/// [`MAX_DESCRIPTION_LEN`] characters, each [hidden](is_hidden) one shown as `?`, so that a server
/// cannot write lines of its own into a log or rewrite what a terminal shows (RFC 6749 §5.2 allows
/// printable ASCII only; other letters are kept for localised messages).
pub(crate) fn server_text(text: &str) -> String {
    text.chars().take(MAX_DESCRIPTION_LEN).map(|c| if is_hidden(c) { '?' } else { c }).collect()
}

/// A character no server text reaches a message with: a control character (a newline, an escape),
/// a line or paragraph separator, a bidirectional mark, override or isolate, or a zero-width one.
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Builds a token endpoint request: `params` (grant_type and its fields) plus client authentication
/// (a client assertion is made with `assertion`; it fails only for an assertion method without
/// randomness or with an unusable key).
pub fn token_request(
    id: RequestId,
    endpoint: &str,
    client: &ClientAuth,
    assertion: &AssertionInputs<'_>,
    params: &[(&str, &str)],
) -> Result<HttpRequest, Error> {
    let mut request = form_post(id, endpoint, client, assertion, params)?;
    if let Some(dpop) = &assertion.dpop {
        request.headers.push(("dpop".to_owned(), dpop_proof(dpop, endpoint, assertion)?.expose_secret().to_owned()));
    }
    Ok(request)
}

/// The DPoP proof of a token request (RFC 9449 §5): `htm` POST, `htu` the endpoint, no `ath`.
fn dpop_proof(dpop: &crate::DpopInputs<'_>, endpoint: &str, assertion: &AssertionInputs<'_>) -> Result<Secret, Error> {
    let prover = dpop.prover.map_err(Clone::clone)?;
    let Some(bits) = assertion.jti else {
        return Err(Error::configuration(
            "dpop: each DPoP proof needs fresh randomness for its jti: the driver gives none (EngineSettings::entropy)",
        ));
    };
    prover.proof(&crate::dpop::ProofInputs {
        method: "POST",
        url: endpoint,
        now: assertion.now,
        jti: crate::dpop::proof_jti(&bits),
        nonce: dpop.nonce,
        access_token: None,
    })
}

/// Builds an RFC 7009 revocation request.
pub fn revocation_request(
    id: RequestId,
    endpoint: &str,
    client: &ClientAuth,
    assertion: &AssertionInputs<'_>,
    token: &Secret,
    hint: &str,
) -> Result<HttpRequest, Error> {
    form_post(id, endpoint, client, assertion, &[("token", token.expose_secret()), ("token_type_hint", hint)])
}

fn form_post(
    id: RequestId,
    endpoint: &str,
    client: &ClientAuth,
    assertion: &AssertionInputs<'_>,
    params: &[(&str, &str)],
) -> Result<HttpRequest, Error> {
    let mut headers = vec![
        ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    client.apply(&mut headers, &mut form, assertion)?;
    Ok(HttpRequest { id, method: Method::Post, url: endpoint.to_owned(), headers, body: form.finish().into_bytes() })
}

#[derive(Deserialize)]
struct WireTokenResponse {
    access_token: Option<serde_json::Value>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    refresh_expires_in: Option<serde_json::Value>,
    id_token: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    error: String,
    error_description: Option<String>,
}

/// Parses a token endpoint response (RFC 6749 §5.1) received at `now`.
///
/// Non-2xx statuses become [`Error::OAuth`] when the body is an RFC 6749 §5.2 error, else
/// [`Error::UnexpectedStatus`]. A 2xx that is not a JSON object with a string `access_token` is
/// [`Error::MalformedResponse`].
pub fn parse_token_response(response: &HttpResponse, endpoint: &str, now: Timestamp) -> Result<TokenSet, Error> {
    let endpoint = endpoint_of(endpoint);
    if !(200..300).contains(&response.status) {
        return Err(parse_error_response(response, &endpoint));
    }
    let body: WireTokenResponse = parse_json_body(response, &endpoint)?;
    let malformed = |reason: &str| Error::MalformedResponse { endpoint: endpoint.clone(), reason: reason.to_owned() };
    let access_token = match body.access_token {
        Some(serde_json::Value::String(token)) if !token.is_empty() => Secret::new(token),
        Some(serde_json::Value::String(_)) => return Err(malformed("access_token is empty")),
        Some(_) => return Err(malformed("access_token is not a string")),
        None => return Err(malformed("no access_token in the response")),
    };
    let expires_in =
        parse_seconds(body.expires_in.as_ref()).map_err(|reason| malformed(&format!("expires_in {reason}")))?;
    let refresh_expires_in = parse_seconds(body.refresh_expires_in.as_ref())
        .map_err(|reason| malformed(&format!("refresh_expires_in {reason}")))?;
    let refresh_token = body.refresh_token.filter(|t| !t.is_empty()).map(Secret::new);
    Ok(TokenSet {
        access_token,
        token_type: body.token_type.filter(|t| !t.is_empty()).unwrap_or_else(|| "Bearer".to_owned()),
        expires_at: expires_in.map(|secs| now + Duration::from_secs(secs)),
        refresh_expires_at: refresh_expires_in
            .filter(|_| refresh_token.is_some())
            .map(|secs| now + Duration::from_secs(secs)),
        refresh_token,
        id_token: body.id_token.filter(|t| !t.is_empty()).map(Secret::new),
        scope: body.scope,
        issued_at: now,
        dpop_key: None,
        resource_tokens: Default::default(),
        registered_client: None,
    })
}

/// Reads `expires_in`-style values: a non-negative integer, or a string holding one (some servers quote it).
fn parse_seconds(value: Option<&serde_json::Value>) -> Result<Option<u64>, &'static str> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(secs), _) => Ok(Some(secs)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err("is not a non-negative number"),
        },
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| "is not a number"),
        Some(_) => Err("is not a number"),
    }
}

fn parse_json_body<T: for<'de> Deserialize<'de>>(response: &HttpResponse, endpoint: &str) -> Result<T, Error> {
    let malformed = |reason: String| Error::MalformedResponse { endpoint: endpoint.to_owned(), reason };
    match response.media_type().as_deref() {
        Some("application/json") => {}
        Some(other) if other.ends_with("+json") => {}
        Some(other) => return Err(malformed(format!("expected application/json, got {other}"))),
        None => return Err(malformed("expected application/json, got no content type".into())),
    }
    // Never echo the body: it may hold tokens. serde_json's messages name only positions and types.
    serde_json::from_slice(&response.body).map_err(|e| malformed(format!("invalid JSON ({})", redacted_json_error(&e))))
}

pub(crate) fn redacted_json_error(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "I/O",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{kind} at line {} column {}", error.line(), error.column())
}

/// Turns a non-success response into the most precise error: [`Error::OAuth`] when the body is an
/// RFC 6749 §5.2 JSON error, else [`Error::UnexpectedStatus`].
pub fn parse_error_response(response: &HttpResponse, endpoint: &str) -> Error {
    let endpoint = endpoint_of(endpoint);
    let is_json = response.media_type().is_some_and(|t| t == "application/json" || t.ends_with("+json"));
    if is_json && let Ok(error) = serde_json::from_slice::<WireError>(&response.body) {
        return Error::OAuth {
            code: OAuthErrorCode::from_wire(&error.error),
            description: error.error_description.as_deref().map(server_text),
            status: response.status,
            endpoint,
        };
    }
    Error::UnexpectedStatus {
        status: response.status,
        content_type: response.media_type(),
        retry_after: response.retry_after(),
        endpoint,
    }
}

/// Parses an RFC 7009 revocation response: 200 is success (also for unknown tokens).
pub fn parse_revocation_response(response: &HttpResponse, endpoint: &str) -> Result<(), Error> {
    if (200..300).contains(&response.status) { Ok(()) } else { Err(parse_error_response(response, endpoint)) }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // jsonwebtoken with its own provider checks ring independently (clippy.toml)
mod tests {
    use super::*;
    use crate::ClientAuthMethod;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
        HttpResponse {
            request_id: RequestId(1),
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    const NO_RANDOM: AssertionInputs<'static> =
        AssertionInputs { now: NOW, jti: None, audience: "https://idp/token", dpop: None };

    fn form_of(request: &HttpRequest) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&request.body).into_owned().collect()
    }

    fn claims_of(assertion: &str) -> serde_json::Value {
        let payload = assertion.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap()
    }

    fn header_of(assertion: &str) -> serde_json::Value {
        let header = assertion.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
        )
        .unwrap()
    }

    fn assertion_request(client: &ClientAuth, jti: [u8; 16]) -> Result<HttpRequest, Error> {
        let inputs = AssertionInputs { now: NOW, jti: Some(jti), audience: "https://idp/token", dpop: None };
        token_request(RequestId(3), "https://idp/token", client, &inputs, &[("grant_type", "client_credentials")])
    }

    #[test]
    fn private_key_jwt_sends_a_signed_assertion_per_rfc_7523() {
        use crate::ClientAssertionKey;
        for (file, alg) in [("rsa.pem", "RS256"), ("ec.pem", "ES256"), ("ed25519.pem", "EdDSA")] {
            let pem = std::fs::read_to_string(format!(
                "{}/../../testdata/client-assertion/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let key = ClientAssertionKey { kid: Some("k1".into()), ..ClientAssertionKey::new(pem.clone()) };
            let client = ClientAuth::private_key_jwt("svc", key);
            let request = assertion_request(&client, [7; 16]).unwrap();
            let form = form_of(&request);
            let get = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
            assert_eq!(get("client_assertion_type"), crate::JWT_BEARER_ASSERTION_TYPE);
            assert_eq!(get("client_id"), "svc");
            assert!(request.header("authorization").is_none());
            let assertion = get("client_assertion");
            let header = header_of(&assertion);
            assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some(alg), Some("k1")), "{file}");
            let claims = claims_of(&assertion);
            assert_eq!(claims["iss"], "svc");
            assert_eq!(claims["sub"], "svc");
            assert_eq!(claims["aud"], "https://idp/token");
            assert_eq!(claims["iat"], NOW.as_unix_secs());
            assert_eq!(claims["exp"], NOW.as_unix_secs() + 60);
            assert_eq!(claims["jti"].as_str().map(str::len), Some(22), "128 bits, base64url");
            // Another jti, another assertion; and the key never shows in Debug.
            let other = assertion_request(&client, [8; 16]).unwrap();
            assert_ne!(
                claims_of(&form_of(&other).into_iter().find(|(n, _)| n == "client_assertion").unwrap().1)["jti"],
                claims["jti"]
            );
            let debug = format!("{client:?} {request:?}");
            assert!(!debug.contains(pem.lines().nth(1).unwrap()) && !debug.contains(&assertion), "{debug}");
        }
    }

    #[test]
    fn client_secret_jwt_signs_hs256_with_the_secret_and_never_sends_it() {
        let client = ClientAuth::secret_jwt("svc", Secret::new("a-shared-secret-of-32-bytes-or-more!"));
        let request = assertion_request(&client, [1; 16]).unwrap();
        let body = String::from_utf8(request.body.clone()).unwrap();
        assert!(!body.contains("a-shared-secret") && !body.contains("client_secret="), "{body}");
        let assertion = form_of(&request).into_iter().find(|(n, _)| n == "client_assertion").unwrap().1;
        assert_eq!(header_of(&assertion)["alg"], "HS256");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_audience(&["https://idp/token"]);
        let key = jsonwebtoken::DecodingKey::from_secret(b"a-shared-secret-of-32-bytes-or-more!");
        jsonwebtoken::decode::<serde_json::Value>(&assertion, &key, &validation).unwrap();
    }

    #[test]
    fn assertions_without_randomness_or_with_a_bad_key_are_configuration_errors() {
        use crate::ClientAssertionKey;
        let client = ClientAuth::secret_jwt("svc", Secret::new("s"));
        let error = token_request(RequestId(1), "https://idp/token", &client, &NO_RANDOM, &[]).unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }) && error.to_string().contains("jti"), "{error}");
        let key_text = "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWQ==\n-----END PRIVATE KEY-----\n";
        let client = ClientAuth::private_key_jwt("svc", ClientAssertionKey::new(key_text));
        let error = assertion_request(&client, [1; 16]).unwrap_err();
        assert!(error.to_string().contains("client_assertion_key") && !error.to_string().contains("Tk9U"), "{error}");
    }

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        let client = ClientAuth::basic("my client", Secret::new("s3cr:t"));
        let request = token_request(
            RequestId(7),
            "https://idp/token?x=1",
            &client,
            &NO_RANDOM,
            &[("grant_type", "client_credentials")],
        )
        .unwrap();
        assert_eq!(request.header("authorization"), Some("Basic bXkrY2xpZW50OnMzY3IlM0F0"));
        assert_eq!(std::str::from_utf8(&request.body).unwrap(), "grant_type=client_credentials");
        assert_eq!(request.endpoint(), "https://idp/token");
        let debug = format!("{request:?}");
        assert!(!debug.contains("bXkr") && debug.contains("[redacted]"));
    }

    #[test]
    fn post_and_public_auth_put_client_in_body() {
        let post = ClientAuth { method: ClientAuthMethod::Post, ..ClientAuth::basic("c", Secret::new("s&x")) };
        let request =
            token_request(RequestId(1), "https://idp/token", &post, &NO_RANDOM, &[("grant_type", "password")]).unwrap();
        assert_eq!(std::str::from_utf8(&request.body).unwrap(), "grant_type=password&client_id=c&client_secret=s%26x");
        assert!(request.header("authorization").is_none());
        let public =
            token_request(RequestId(1), "https://idp/token", &ClientAuth::public("p"), &NO_RANDOM, &[]).unwrap();
        assert_eq!(std::str::from_utf8(&public.body).unwrap(), "client_id=p");
    }

    #[test]
    fn parses_a_full_token_response() {
        let body = r#"{"access_token":"at","token_type":"bearer","expires_in":"120","refresh_token":"rt","refresh_expires_in":600,"scope":"a b","id_token":"idt"}"#;
        let tokens = parse_token_response(&response(200, "application/json; charset=utf-8", body), "e", NOW).unwrap();
        assert_eq!(tokens.access_token.expose_secret(), "at");
        assert_eq!(tokens.expires_at, Some(NOW + Duration::from_secs(120)));
        assert_eq!(tokens.refresh_token.as_ref().map(Secret::expose_secret), Some("rt"));
        assert_eq!(tokens.refresh_expires_at, Some(NOW + Duration::from_secs(600)));
        assert_eq!(tokens.scope.as_deref(), Some("a b"));
        assert_eq!(tokens.issued_at, NOW);
    }

    #[test]
    fn rejects_malformed_success_bodies() {
        for (content_type, body, expected) in [
            ("application/json", r#"{"access_token":"at","#, "truncated"),
            ("application/json", r#"{"token_type":"Bearer"}"#, "no access_token"),
            ("application/json", r#"{"access_token":42}"#, "not a string"),
            ("application/json", r#"{"access_token":"at","expires_in":-5}"#, "expires_in"),
            ("application/json", r#"[1,2]"#, "unexpected shape"),
            ("text/html", "<html>hi</html>", "expected application/json, got text/html"),
            ("text/plain", r#"{"access_token":"secret-at"}"#, "got text/plain"),
        ] {
            let error = parse_token_response(&response(200, content_type, body), "https://idp/token", NOW).unwrap_err();
            let Error::MalformedResponse { reason, .. } = &error else { panic!("{error:?}") };
            assert!(reason.contains(expected), "{reason} should mention {expected}");
            assert!(!format!("{error:?}{error}").contains("secret-at"));
        }
    }

    #[test]
    fn error_bodies_become_typed_errors() {
        let error = parse_token_response(
            &response(400, "application/json", r#"{"error":"invalid_grant","error_description":"reused"}"#),
            "https://idp/token",
            NOW,
        )
        .unwrap_err();
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert!(!error.is_transient());

        let mut html = response(502, "text/html", "<html><body>Bad gateway</body></html>");
        html.headers.push(("Retry-After".into(), "7".into()));
        let error = parse_token_response(&html, "https://idp/token", NOW).unwrap_err();
        assert!(matches!(error, Error::UnexpectedStatus { status: 502, .. }));
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert!(error.is_transient());

        let long = format!(r#"{{"error":"server_error","error_description":"{}"}}"#, "x".repeat(5000));
        let Error::OAuth { description, .. } = parse_error_response(&response(500, "application/json", &long), "e")
        else {
            panic!()
        };
        assert_eq!(description.unwrap().len(), MAX_DESCRIPTION_LEN);
    }

    /// The server's code and description reach errors (and logs) without a control character of
    /// theirs: a newline would start a forged log line, an escape would rewrite the terminal.
    #[test]
    fn a_servers_code_and_description_write_no_line_of_their_own() {
        let body = r#"{"error":"weird\nlevel=INFO","error_description":"Zugriff verweigert\nlevel=INFO msg=ok\u001b[2K\u2028"}"#;
        let error = parse_error_response(&response(400, "application/json", body), "https://idp/token");
        let Error::OAuth { code, description, .. } = &error else { panic!("{error:?}") };
        assert_eq!(code.as_str(), "weird?level=INFO");
        assert_eq!(description.as_deref(), Some("Zugriff verweigert?level=INFO msg=ok?[2K?"));
        assert!(!error.to_string().contains(['\n', '\u{1b}', '\u{2028}']), "{error}");
    }
}
