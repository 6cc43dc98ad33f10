//! Exported chain state (`ChainState::from_json`, what `DomainClient::from_state` imports) and RFC
//! 8693 token-exchange answers: any bytes give a state or a typed error, never a panic; a state that
//! parses survives a write/read round trip; errors never echo the document or the query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::chain::ChainState;
use tessera_core::protocol::parse_token_exchange_response;
use tessera_core::{Error, HttpResponse, RequestId, Timestamp};

const STATUSES: [u16; 5] = [200, 400, 401, 500, 503];
const TYPES: [&str; 4] = ["application/json", "application/json; charset=utf-8", "text/html", ""];

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    if selector & 1 == 0 {
        let Ok(json) = std::str::from_utf8(rest) else { return };
        match ChainState::from_json(json) {
            Ok(state) => {
                let again = ChainState::from_json(&state.to_json().expect("a parsed state serialises"))
                    .expect("a written state parses");
                assert_eq!(again, state, "round trip");
                let _ = format!("{state:?}");
            }
            Err(error) => {
                assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
                // The message names a position or a version, never the document's tokens.
                assert!(error.to_string().len() < 200 + json.len().min(64), "{error}");
            }
        }
        return;
    }
    let [content_type, body @ ..] = rest else { return };
    let mut headers = Vec::new();
    let content_type = TYPES[*content_type as usize % TYPES.len()];
    if !content_type.is_empty() {
        headers.push(("content-type".to_owned(), content_type.to_owned()));
    }
    let response = HttpResponse {
        request_id: RequestId(1),
        status: STATUSES[(*selector as usize >> 1) % STATUSES.len()],
        headers,
        body: body.to_vec(),
    };
    let now = Timestamp::from_unix_secs(1_700_000_000);
    match parse_token_exchange_response(&response, "https://idp.example/token?q=FUZZQUERY", now) {
        Ok(exchanged) => {
            assert!(!exchanged.tokens.access_token.expose_secret().is_empty());
            assert!(!exchanged.issued_token_type.is_empty());
        }
        Err(error) => {
            let message = format!("{error} {error:?}");
            assert!(!message.contains("FUZZQUERY"), "query string in an error: {message}");
        }
    }
});
