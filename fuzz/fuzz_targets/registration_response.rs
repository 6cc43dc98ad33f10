//! RFC 7591 client information responses: a registered client, or a typed error that never shows
//! the secrets or the endpoint's query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::registration::parse_registration_response;
use tessera_core::{HttpResponse, RequestId, Secret};

fuzz_target!(|data: &[u8]| {
    let [status, body @ ..] = data else { return };
    let status = if status & 1 == 0 { 201 } else { 400 + u16::from(*status >> 1) % 200 };
    let response = HttpResponse::json(RequestId(1), status, body.to_vec());
    match parse_registration_response(&response, "https://as.example/reg?q=FUZZQUERY") {
        Ok(client) => {
            assert!(!client.client_id.trim().is_empty());
            // Debug does not depend on the secrets' values: the same client with other secrets
            // prints the same.
            let mut other = client.clone();
            other.client_secret = other.client_secret.map(|_| Secret::new("another secret"));
            other.registration_access_token = other.registration_access_token.map(|_| Secret::new("x"));
            assert_eq!(format!("{client:?}"), format!("{other:?}"), "a secret shows in Debug");
        }
        Err(error) => {
            let text = error.to_string();
            assert!(!text.contains("FUZZQUERY"), "the endpoint's query in {text}");
        }
    }
});
