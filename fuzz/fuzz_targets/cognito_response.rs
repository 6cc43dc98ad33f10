//! Cognito answers (`InitiateAuth`, `RespondToAuthChallenge`, `RevokeToken`, exceptions): any status,
//! content type, headers and body must give tokens, a challenge or a typed error, never a panic, and
//! never echo the body or the endpoint's query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::cognito::{
    CognitoAuthResponse, CognitoCall, parse_auth_response, parse_exception, parse_revoke_response, unverified_jwt_claim,
};
use tessera_core::{Error, HttpResponse, RequestId, Secret, Timestamp};

const STATUSES: [u16; 7] = [200, 204, 400, 401, 429, 500, 503];
const TYPES: [&str; 5] = ["application/x-amz-json-1.1", "application/json", "text/html", "text/plain", ""];
const CALLS: [CognitoCall; 3] = [CognitoCall::Login, CognitoCall::Refresh, CognitoCall::Revoke];
const ENDPOINT: &str = "https://cognito-idp.example/?q=FUZZQUERY";

fuzz_target!(|data: &[u8]| {
    let [selector, content_type, body @ ..] = data else { return };
    let mut headers = Vec::new();
    let content_type = TYPES[*content_type as usize % TYPES.len()];
    if !content_type.is_empty() {
        headers.push(("content-type".to_owned(), content_type.to_owned()));
    }
    if selector & 0x80 != 0 {
        headers.push(("x-amzn-errortype".to_owned(), String::from_utf8_lossy(&body[..body.len().min(40)]).into()));
    }
    let response = HttpResponse {
        request_id: RequestId(1),
        status: STATUSES[*selector as usize % STATUSES.len()],
        headers,
        body: body.to_vec(),
    };
    let now = Timestamp::from_unix_secs(1_700_000_000);
    let call = CALLS[(*selector as usize / STATUSES.len()) % CALLS.len()];
    match parse_auth_response(&response, ENDPOINT, call, now) {
        Ok(CognitoAuthResponse::Tokens(tokens)) => {
            assert!(!tokens.access_token.expose_secret().is_empty());
            let _ = format!("{tokens:?}");
        }
        Ok(CognitoAuthResponse::Challenge(challenge)) => {
            assert!(!challenge.name.is_empty());
            let _ = format!("{challenge:?}");
            if let Some(session) = &challenge.session {
                // The Session stands for a half-done login: printed, it looks the same whatever it
                // holds (comparing with another value avoids false alarms for values that happen to
                // be part of the redaction marker).
                let other = Secret::new("another value");
                assert_eq!(format!("{session:?} {session}"), format!("{other:?} {other}"));
            }
        }
        Err(error) => check_error(&error),
    }
    if let Some(exception) = parse_exception(&response) {
        assert!(!exception.name.is_empty());
        check_error(&exception.into_error(ENDPOINT, call));
    }
    if let Err(error) = parse_revoke_response(&response, ENDPOINT) {
        check_error(&error);
    }
    // The unverified JWT reader takes whatever a server sends as a token.
    let token = Secret::new(String::from_utf8_lossy(body).into_owned());
    let _ = unverified_jwt_claim(&token, "username");
});

fn check_error(error: &Error) {
    let message = format!("{error} {error:?}");
    assert!(!message.contains("FUZZQUERY"), "query string in an error: {message}");
    if let Error::OAuth { description: Some(description), .. } = error {
        // The exception's name plus a message truncated to MAX_DESCRIPTION_LEN, plus a fixed context.
        assert!(description.chars().count() <= 3 * tessera_core::protocol::MAX_DESCRIPTION_LEN, "{description}");
    }
    let _ = error.is_transient();
}
