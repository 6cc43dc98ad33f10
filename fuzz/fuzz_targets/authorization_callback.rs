//! The URL a browser comes back to after a login (RFC 6749 §4.1.2, RFC 9207 `iss`):
//! `parse_authorization_response` against fixed expectations.
//!
//! Input: one selector byte (which redirect URI, whether the issuer is known, whether the rest is a
//! whole URL or only a query appended to the redirect URI), then the text. In the text, `{S}` stands
//! for this login's `state` and `{C}` for a marker code, so that captured callbacks keep reaching the
//! success path and the checks below know which values are secret.
//!
//! Invariants (each re-derived here with the `url` crate, not taken from the parser):
//! - success only when the callback is the redirect URI (scheme, host, port, path), carries exactly
//!   one `state` equal to this login's, no `error`, an `iss` equal to the issuer when both are
//!   known, and exactly one non-empty `code`, which is what is returned;
//! - an error never shows this login's `state` or the marker code, unless the callback carries them
//!   outside the `state` and `code` parameters (an attacker-chosen description may say anything).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::Error;
use tessera_core::protocol::{ExpectedRedirect, parse_authorization_response};
use url::Url;

const STATE: &str = "k7Qx2LmZ9pW4vR1tY8nB3c";
const CODE: &str = "Zc0deMark3rQ5";
const ISSUER: &str = "https://idp.example";
const REDIRECT_URIS: [&str; 4] = [
    "http://127.0.0.1:4711/callback",
    "http://127.0.0.1:8400/",
    "http://[::1]:4711/callback",
    "https://app.example/oauth/cb",
];

fuzz_target!(|data: &[u8]| {
    let [selector, text @ ..] = data else { return };
    let redirect_uri = REDIRECT_URIS[usize::from(selector & 3)];
    let issuer = (selector & 4 == 0).then_some(ISSUER);
    let text = String::from_utf8_lossy(text).replace("{S}", STATE).replace("{C}", CODE);
    let callback = if selector & 8 == 0 { text } else { format!("{redirect_uri}?{text}") };
    let expected = ExpectedRedirect {
        redirect_uri,
        state: STATE,
        issuer,
        authorization_endpoint: "https://idp.example/authorize",
    };
    let result = parse_authorization_response(&callback, &expected);
    let parsed = Url::parse(callback.trim()).ok();
    match result {
        Ok(code) => {
            let url = parsed.expect("accepted a callback that is not a URL");
            let redirect = Url::parse(redirect_uri).unwrap();
            assert_eq!(url.scheme(), redirect.scheme());
            assert_eq!(url.host_str(), redirect.host_str());
            assert_eq!(url.port_or_known_default(), redirect.port_or_known_default());
            assert_eq!(url.path(), redirect.path());
            let values = |name: &str| -> Vec<String> {
                url.query_pairs().filter(|(n, _)| n == name).map(|(_, v)| v.into_owned()).collect()
            };
            assert_eq!(values("state"), [STATE], "accepted without this login's state");
            assert!(values("error").is_empty(), "accepted an error redirect");
            let iss = values("iss");
            assert!(iss.len() <= 1);
            if let (Some(iss), Some(issuer)) = (iss.first(), issuer) {
                assert_eq!(iss.trim_end_matches('/'), issuer, "accepted another issuer");
            }
            let codes = values("code");
            assert_eq!(codes.len(), 1);
            assert!(!code.expose_secret().is_empty(), "an empty code");
            assert_eq!(code.expose_secret(), codes[0]);
            assert!(!format!("{code:?}").contains(CODE), "a code in Debug output");
        }
        Err(error) => {
            assert!(
                matches!(error, Error::MalformedResponse { .. } | Error::OAuth { .. }),
                "unexpected error kind: {error:?}"
            );
            let shown = format!("{error} {error:?}");
            // What an error may legitimately echo: everything but the values of `state` and `code`.
            let elsewhere = match &parsed {
                None => String::new(),
                Some(url) => {
                    // The part before the query (it may carry user info), and the fragment.
                    let mut text = url.as_str().split(['?', '#']).next().unwrap_or_default().to_owned();
                    text.push_str(url.fragment().unwrap_or_default());
                    for (name, value) in url.query_pairs() {
                        text.push_str(&name);
                        if name != "state" && name != "code" {
                            text.push_str(&value);
                        }
                    }
                    text
                }
            };
            for secret in [STATE, CODE] {
                if !elsewhere.contains(secret) {
                    assert!(!shown.contains(secret), "the error shows a secret value: {shown}");
                }
            }
        }
    }
});
