//! OpenID Connect discovery documents: metadata for the expected issuer, or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::parse_discovery;
use tessera_core::{HttpResponse, RequestId};

fuzz_target!(|data: &[u8]| {
    let [status, body @ ..] = data else { return };
    let status = if status & 1 == 0 { 200 } else { 400 + u16::from(*status) };
    let response = HttpResponse::json(RequestId(1), status, body.to_vec());
    if let Ok(metadata) = parse_discovery(&response, "https://idp.example/") {
        assert_eq!(metadata.issuer.trim_end_matches('/'), "https://idp.example");
    }
});
