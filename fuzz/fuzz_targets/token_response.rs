//! Token endpoint answers (RFC 6749 §5.1/§5.2) and revocation answers: any status, content type
//! and body must give tokens or a typed error, never a panic, and never echo the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::{parse_error_response, parse_revocation_response, parse_token_response};
use tessera_core::{Error, HttpResponse, RequestId, Timestamp};

const STATUSES: [u16; 8] = [200, 201, 204, 400, 401, 429, 500, 503];
const TYPES: [&str; 6] =
    ["application/json", "application/json; charset=utf-8", "application/problem+json", "text/html", "text/plain", ""];

fuzz_target!(|data: &[u8]| {
    let [selector, content_type, body @ ..] = data else { return };
    let mut headers = Vec::new();
    if !TYPES[*content_type as usize % TYPES.len()].is_empty() {
        headers.push(("content-type".to_owned(), TYPES[*content_type as usize % TYPES.len()].to_owned()));
    }
    if selector & 0x80 != 0 {
        headers.push(("retry-after".to_owned(), format!("{}", content_type)));
    }
    let response = HttpResponse {
        request_id: RequestId(1),
        status: STATUSES[*selector as usize % STATUSES.len()],
        headers,
        body: body.to_vec(),
    };
    let now = Timestamp::from_unix_secs(1_700_000_000);
    match parse_token_response(&response, "https://idp.example/token?q=FUZZQUERY", now) {
        Ok(tokens) => {
            assert!(!tokens.access_token.expose_secret().is_empty());
            assert!(tokens.expires_at.is_none_or(|at| at >= now));
            let _ = format!("{tokens:?}");
        }
        Err(error) => check_error(&error),
    }
    check_error(&parse_error_response(&response, "https://idp.example/token?q=FUZZQUERY"));
    if let Err(error) = parse_revocation_response(&response, "https://idp.example/revoke") {
        check_error(&error);
    }
});

fn check_error(error: &Error) {
    let message = format!("{error} {error:?}");
    assert!(!message.contains("FUZZQUERY"), "query string in an error: {message}");
    if let Error::OAuth { description: Some(description), .. } = error {
        assert!(description.chars().count() <= tessera_core::protocol::MAX_DESCRIPTION_LEN);
    }
    let _ = error.is_transient();
}
