//! The front channel of the authorization code grant: the authorization request URL (RFC 6749
//! §4.1.1 with PKCE, RFC 7636, and OpenID Connect's `nonce`) and the redirect that comes back
//! (RFC 6749 §4.1.2, RFC 9207 `iss`). Pure functions: no browser, no listener, no randomness
//! (the secrets are derived from bytes the runtime provides).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;

use crate::http::endpoint_of;
use crate::{Error, OAuthErrorCode, Secret};

use super::server_text;

/// Bytes of randomness the browser login needs: 32 for the PKCE verifier, 16 for `state`, 16 for `nonce`.
pub const AUTHORIZATION_RANDOM_LEN: usize = 64;

/// The per-login secrets of an authorization code login, derived from runtime-provided randomness.
/// `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationSecrets {
    /// RFC 7636 `code_verifier`: 43 characters of base64url (256 bits).
    pub code_verifier: Secret,
    /// `state`: binds the redirect to this login (CSRF protection), 22 characters (128 bits).
    pub state: String,
    /// OpenID Connect `nonce`: binds the ID token to this login, 22 characters (128 bits).
    pub nonce: String,
}

impl std::fmt::Debug for AuthorizationSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizationSecrets([redacted])")
    }
}

impl AuthorizationSecrets {
    /// Derives the verifier, `state` and `nonce` from at least [`AUTHORIZATION_RANDOM_LEN`] bytes of a
    /// cryptographically secure generator (each from its own slice, so none reveals another).
    pub fn from_random(random: &[u8]) -> Result<Self, Error> {
        if random.len() < AUTHORIZATION_RANDOM_LEN {
            return Err(Error::configuration(format!(
                "a browser login needs {AUTHORIZATION_RANDOM_LEN} random bytes from the runtime, got {}",
                random.len()
            )));
        }
        Ok(AuthorizationSecrets {
            code_verifier: Secret::new(URL_SAFE_NO_PAD.encode(&random[..32])),
            state: URL_SAFE_NO_PAD.encode(&random[32..48]),
            nonce: URL_SAFE_NO_PAD.encode(&random[48..64]),
        })
    }

    /// The S256 `code_challenge` of the verifier.
    pub fn code_challenge(&self) -> String {
        pkce_s256_challenge(self.code_verifier.expose_secret())
    }
}

/// RFC 7636 §4.2 `S256`: `BASE64URL(SHA256(ASCII(code_verifier)))`. The only method tessera sends.
pub fn pkce_s256_challenge(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

/// An authorization request (RFC 6749 §4.1.1) with PKCE S256, `state`, and `nonce` when the
/// scope holds `openid`.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest<'a> {
    /// The authorization endpoint (may already carry query parameters; they are kept).
    pub authorization_endpoint: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: &'a str,
    /// `scope`, when any.
    pub scope: Option<&'a str>,
    /// RFC 8707 `resource` parameters, one per resource the login is for (none: no parameter).
    pub resources: &'a [String],
    /// The login's secrets (only the challenge, `state` and `nonce` go into the URL).
    pub secrets: &'a AuthorizationSecrets,
    /// More parameters (`prompt`, `login_hint`, ...). They cannot replace the ones above.
    pub extra_params: &'a [(String, String)],
}

/// Parameters this module sets itself; `extra_params` may not override them (the provider
/// description refuses them as `authorization_params` too).
pub const RESERVED_AUTHORIZATION_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

impl AuthorizationRequest<'_> {
    /// The URL to open in a browser.
    pub fn url(&self) -> Result<String, Error> {
        let mut url = Url::parse(self.authorization_endpoint).map_err(|error| {
            Error::configuration(format!(
                "the authorization endpoint {} is not a URL: {error}",
                endpoint_of(self.authorization_endpoint)
            ))
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::configuration(format!(
                "the authorization endpoint {} is not an http(s) URL",
                endpoint_of(self.authorization_endpoint)
            )));
        }
        if let Some((name, _)) =
            self.extra_params.iter().find(|(name, _)| RESERVED_AUTHORIZATION_PARAMS.contains(&name.as_str()))
        {
            return Err(Error::configuration(format!(
                "the extra authorization parameter {name:?} is set by tessera itself and cannot be overridden"
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", self.client_id)
                .append_pair("redirect_uri", self.redirect_uri);
            if let Some(scope) = self.scope.filter(|scope| !scope.is_empty()) {
                query.append_pair("scope", scope);
            }
            for resource in self.resources {
                query.append_pair("resource", resource);
            }
            query.append_pair("state", &self.secrets.state);
            // OpenID Connect's parameter, for an OpenID request only: servers may refuse it in a
            // plain OAuth request (oidc-provider does), and no ID token is kept without `openid`.
            if self.scope.is_some_and(|scope| scope.split_ascii_whitespace().any(|s| s == "openid")) {
                query.append_pair("nonce", &self.secrets.nonce);
            }
            query
                .append_pair("code_challenge", &self.secrets.code_challenge())
                .append_pair("code_challenge_method", "S256");
            for (name, value) in self.extra_params {
                query.append_pair(name, value);
            }
        }
        Ok(url.into())
    }
}

/// What the checks of [`parse_authorization_response`] compare against.
#[derive(Clone, Copy, Debug)]
pub struct ExpectedRedirect<'a> {
    /// The redirect URI of the request: the callback must come back to it (scheme, host, port, path).
    pub redirect_uri: &'a str,
    /// The request's `state`.
    pub state: &'a str,
    /// The issuer, when known (discovery): an `iss` parameter must equal it (RFC 9207).
    pub issuer: Option<&'a str>,
    /// The authorization endpoint, named in errors.
    pub authorization_endpoint: &'a str,
}

/// Reads the URL the browser was sent back to and returns the authorization `code`.
///
/// In this order, so that nothing from a forged redirect is trusted:
/// 1. it must be the redirect URI (same scheme, host, port and path), else
///    [`Error::MalformedResponse`];
/// 2. `state` must be present and equal to the request's, else [`Error::MalformedResponse`]
///    (a forged or stale redirect: no token request follows). This is checked before `error`
///    too, so that a forged `error=...` is not reported as the server's answer;
/// 3. `iss`, when present, must equal the issuer (RFC 9207 mix-up defence), else
///    [`Error::MalformedResponse`];
/// 4. `error` → [`Error::OAuth`] with that code (`access_denied`, ...) and `error_description`,
///    with `status` 302 (the redirect that carried it);
/// 5. a non-empty `code`.
///
/// Error messages never contain the code, the state or the URL's query.
pub fn parse_authorization_response(callback_url: &str, expected: &ExpectedRedirect<'_>) -> Result<Secret, Error> {
    let redirect_endpoint = endpoint_of(expected.redirect_uri);
    let malformed = |reason: String| Error::MalformedResponse { endpoint: redirect_endpoint.clone(), reason };
    let callback = Url::parse(callback_url.trim())
        .map_err(|_| malformed("the URL the browser came back to is not a URL".to_owned()))?;
    let redirect = Url::parse(expected.redirect_uri)
        .map_err(|error| Error::configuration(format!("the redirect URI {redirect_endpoint} is not a URL: {error}")))?;
    if callback.scheme() != redirect.scheme()
        || callback.host_str() != redirect.host_str()
        || callback.port_or_known_default() != redirect.port_or_known_default()
        || callback.path() != redirect.path()
    {
        return Err(malformed(format!(
            "the browser came back to {}, not to the redirect URI of this login",
            endpoint_of(callback.as_str())
        )));
    }
    let mut state = None;
    let mut code = None;
    let mut iss = None;
    let mut error = None;
    let mut description = None;
    for (name, value) in callback.query_pairs() {
        let slot = match name.as_ref() {
            "state" => &mut state,
            "code" => &mut code,
            "iss" => &mut iss,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        if slot.is_some() {
            // RFC 6749 §3.1: parameters must not be repeated; a second copy is an injection attempt.
            return Err(malformed(format!("the redirect repeats the `{name}` parameter")));
        }
        *slot = Some(value.into_owned());
    }
    match state.as_deref() {
        None => {
            let carried = error.as_deref().map(|e| format!(" (it carried error={})", printable(e))).unwrap_or_default();
            return Err(malformed(format!("the redirect has no `state`: it does not belong to this login{carried}")));
        }
        Some(state) if !constant_time_eq(state.as_bytes(), expected.state.as_bytes()) => {
            return Err(malformed(
                "the redirect's `state` does not match this login's (a forged or stale redirect); \
                 no code was exchanged"
                    .into(),
            ));
        }
        Some(_) => {}
    }
    if let (Some(iss), Some(issuer)) = (iss.as_deref(), expected.issuer)
        && trim_slash(iss) != trim_slash(issuer)
    {
        return Err(malformed(format!("the redirect's `iss` is {:?}, expected {issuer:?} (RFC 9207)", printable(iss))));
    }
    if let Some(error) = error {
        return Err(Error::OAuth {
            code: OAuthErrorCode::from_wire(&error),
            description: description.as_deref().map(server_text),
            status: 302,
            endpoint: endpoint_of(expected.authorization_endpoint),
        });
    }
    match code {
        Some(code) if !code.is_empty() => Ok(Secret::new(code)),
        _ => Err(malformed("the redirect has neither `code` nor `error`".into())),
    }
}

/// The front channel is anyone's to write (any page can send the browser to the loopback address):
/// what it says reaches messages and logs only as RFC 6749 §5.2 characters (printable ASCII), and
/// at most 64 of them. Others become `?` rather than vanishing, so that no value is spliced
/// together from the pieces around them (found by the authorization_callback fuzz target: dropping
/// a control character rebuilt the login's `state` in an error message).
pub(crate) fn printable(value: &str) -> String {
    value.chars().take(64).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect()
}

fn trim_slash(value: &str) -> &str {
    value.strip_suffix('/').unwrap_or(value)
}

/// Compares without stopping at the first difference (the `state` is a secret of this login).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> AuthorizationSecrets {
        let random: Vec<u8> = (0u8..64).collect();
        AuthorizationSecrets::from_random(&random).unwrap()
    }

    fn expected<'a>(state: &'a str) -> ExpectedRedirect<'a> {
        ExpectedRedirect {
            redirect_uri: "http://127.0.0.1:4711/callback",
            state,
            issuer: Some("https://idp.example"),
            authorization_endpoint: "https://idp.example/authorize",
        }
    }

    #[test]
    fn rfc7636_appendix_b_challenge() {
        assert_eq!(
            pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_come_from_separate_slices_and_need_64_bytes() {
        let s = secrets();
        assert_eq!(s.code_verifier.expose_secret().len(), 43);
        assert!(s.code_verifier.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!((s.state.len(), s.nonce.len()), (22, 22));
        assert_ne!(s.state, s.nonce);
        assert!(!format!("{s:?}").contains(&s.state));
        let error = AuthorizationSecrets::from_random(&[0; 63]).unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error}");
    }

    #[test]
    fn builds_the_request_url() {
        let s = secrets();
        let extra = vec![("prompt".to_owned(), "consent".to_owned())];
        let resources = vec!["https://api.example/mcp".to_owned(), "https://api.example/files".to_owned()];
        let request = AuthorizationRequest {
            authorization_endpoint: "https://idp.example/authorize?tenant=a",
            client_id: "cli",
            redirect_uri: "http://127.0.0.1:4711/callback",
            scope: Some("openid offline_access"),
            resources: &resources,
            secrets: &s,
            extra_params: &extra,
        };
        let url = Url::parse(&request.url().unwrap()).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("a"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:4711/callback"));
        assert_eq!(get("scope"), Some("openid offline_access"));
        assert_eq!(get("state"), Some(s.state.as_str()));
        assert_eq!(get("nonce"), Some(s.nonce.as_str()));
        assert_eq!(get("code_challenge"), Some(s.code_challenge().as_str()));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("prompt"), Some("consent"));
        let named: Vec<&str> = pairs.iter().filter(|(n, _)| n == "resource").map(|(_, v)| v.as_str()).collect();
        assert_eq!(named, ["https://api.example/mcp", "https://api.example/files"], "RFC 8707: one per resource");
        assert!(get("code_verifier").is_none() && !url.as_str().contains(s.code_verifier.expose_secret()));

        let plain = AuthorizationRequest { scope: Some("api"), ..request.clone() }.url().unwrap();
        assert!(!plain.contains("nonce="), "nonce only in an OpenID request: {plain}");

        let override_state = vec![("state".to_owned(), "x".to_owned())];
        let error = AuthorizationRequest { extra_params: &override_state, ..request.clone() }.url().unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error}");
        let error = AuthorizationRequest { authorization_endpoint: "not a url", ..request }.url().unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error}");
    }

    #[test]
    fn accepts_the_matching_redirect() {
        let url = "http://127.0.0.1:4711/callback?code=abc&state=S&iss=https%3A%2F%2Fidp.example";
        assert_eq!(parse_authorization_response(url, &expected("S")).unwrap().expose_secret(), "abc");
        let without_iss = "http://127.0.0.1:4711/callback?state=S&code=abc";
        assert!(parse_authorization_response(without_iss, &expected("S")).is_ok());
    }

    #[test]
    fn rejects_tampered_state_before_anything_else() {
        for url in [
            "http://127.0.0.1:4711/callback?code=abc&state=T",
            "http://127.0.0.1:4711/callback?code=abc",
            "http://127.0.0.1:4711/callback?code=abc&state=S&state=T",
            // a forged error is not reported as the server's answer either
            "http://127.0.0.1:4711/callback?error=access_denied&state=T",
        ] {
            let error = parse_authorization_response(url, &expected("S")).unwrap_err();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{url}: {error}");
            assert!(!error.to_string().contains("abc"), "the code never appears in errors: {error}");
        }
    }

    #[test]
    fn rejects_other_redirects_and_issuers() {
        for url in [
            "http://127.0.0.1:4712/callback?code=abc&state=S",
            "http://localhost:4711/callback?code=abc&state=S",
            "http://127.0.0.1:4711/other?code=abc&state=S",
            "http://127.0.0.1:4711/callback?code=abc&state=S&iss=https%3A%2F%2Fevil.example",
            "http://127.0.0.1:4711/callback?state=S",
            "http://127.0.0.1:4711/callback?state=S&code=",
            "garbage",
        ] {
            let error = parse_authorization_response(url, &expected("S")).unwrap_err();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{url}: {error}");
        }
    }

    #[test]
    fn hostile_callbacks_are_errors_not_panics() {
        let long = format!("http://127.0.0.1:4711/callback?state=S&code={}", "a".repeat(100_000));
        for url in [
            "",
            " ",
            "http://",
            "http://127.0.0.1:4711/callback?%",
            "http://127.0.0.1:4711/callback?state=%FF%FE&code=%00",
            "http://127.0.0.1:4711/callback?state=S%00&code=c",
            "http://127.0.0.1:4711/callback?\u{1F600}=\u{1F600}&state=\u{1F600}",
            "http://127.0.0.1:99999/callback?state=S&code=c",
            "javascript:alert(1)",
            "http://127.0.0.1:4711/callback#state=S&code=c",
        ] {
            assert!(parse_authorization_response(url, &expected("S")).is_err(), "{url}");
        }
        assert!(parse_authorization_response(&long, &expected("S")).is_ok(), "a long code is still a code");
    }

    /// The invariant of the `authorization_callback` fuzz target, on the paths that build a message
    /// from the callback: none shows this login's `state` or the code.
    #[test]
    fn errors_never_show_the_state_or_the_code() {
        let state = "k7Qx2LmZ9pW4vR1tY8nB3c";
        for url in [
            "http://127.0.0.1:4712/callback?code=c0deZZ&state=k7Qx2LmZ9pW4vR1tY8nB3c",
            "http://127.0.0.1:4711/callback?code=c0deZZ&state=k7Qx2LmZ9pW4vR1tY8nB3c&state=k7Qx2LmZ9pW4vR1tY8nB3c",
            "http://127.0.0.1:4711/callback?code=c0deZZ&code=c0deZZ&state=k7Qx2LmZ9pW4vR1tY8nB3c",
            "http://127.0.0.1:4711/callback?code=c0deZZ&state=k7Qx2LmZ9pW4vR1tY8nB3",
            "http://127.0.0.1:4711/callback?code=c0deZZ&state=k7Qx2LmZ9pW4vR1tY8nB3c&iss=https%3A%2F%2Fevil",
            "http://127.0.0.1:4711/callback?code=c0deZZ&error=server_error&state=k7Qx2LmZ9pW4vR1tY8nB3c",
            "http://127.0.0.1:4711/callback?code=c0deZZ&error=server_error",
        ] {
            let error = parse_authorization_response(url, &expected(state)).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(state) && !shown.contains("c0deZZ"), "{url}: {shown}");
        }
    }

    #[test]
    fn server_errors_are_typed() {
        let url = "http://127.0.0.1:4711/callback?error=access_denied&error_description=User+said+no&state=S";
        let error = parse_authorization_response(url, &expected("S")).unwrap_err();
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::AccessDenied));
        assert!(error.to_string().contains("User said no"), "{error}");
        assert!(error.to_string().contains("https://idp.example/authorize"), "{error}");
    }

    #[test]
    fn front_channel_values_reach_errors_printable_and_short() {
        let secrets = AuthorizationSecrets::from_random(&[7u8; 64]).unwrap();
        let redirect = "http://127.0.0.1:8400/callback";
        let expected = ExpectedRedirect {
            redirect_uri: redirect,
            state: &secrets.state,
            issuer: None,
            authorization_endpoint: "https://idp.example/authorize",
        };
        let hostile = format!("{}\u{1b}[31m{}", "x".repeat(10_000), "\n");
        let url =
            url::Url::parse_with_params(redirect, [("state", secrets.state.as_str()), ("error", hostile.as_str())])
                .unwrap();
        let error = parse_authorization_response(url.as_str(), &expected).unwrap_err();
        let text = error.to_string();
        assert!(text.len() < 500 && !text.contains('\u{1b}') && !text.contains('\n'), "{text}");
        // With its own state, an error's description is the server's text: no line of its own either.
        let forged = "denied\nlevel=INFO msg=\"login ok\"\r\u{1b}[2K\u{202e}";
        let url = url::Url::parse_with_params(
            redirect,
            [("state", secrets.state.as_str()), ("error", "access_denied"), ("error_description", forged)],
        )
        .unwrap();
        let text = parse_authorization_response(url.as_str(), &expected).unwrap_err().to_string();
        assert!(text.contains("denied?level=INFO msg=\"login ok\"??[2K?"), "{text}");

        // A refused value never splices into the state around a control character.
        let state = secrets.state.as_str();
        let (head, tail) = state.split_at(3);
        let spliced = format!("{head}\u{1f}{tail}");
        let url = url::Url::parse_with_params(redirect, [("error", spliced.as_str())]).unwrap();
        let error = parse_authorization_response(url.as_str(), &expected).unwrap_err().to_string();
        assert!(!error.contains(state), "{error}");
    }
}
