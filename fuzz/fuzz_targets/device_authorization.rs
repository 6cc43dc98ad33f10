//! RFC 8628 device authorization responses: a device code to show, or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::parse_device_authorization;
use tessera_core::{HttpResponse, RequestId};

fuzz_target!(|data: &[u8]| {
    let [status, body @ ..] = data else { return };
    let status = if status & 1 == 0 { 200 } else { 400 + u16::from(*status) };
    let response = HttpResponse::json(RequestId(1), status, body.to_vec());
    match parse_device_authorization(&response, "https://idp.example/device?q=FUZZQUERY") {
        Ok(authorization) => {
            let _ = format!("{authorization:?}");
        }
        Err(error) => assert!(!error.to_string().contains("FUZZQUERY")),
    }
});
