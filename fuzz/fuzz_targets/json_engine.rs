//! The JSON face of the engine (`tessera_core::json::JsonEngine`): provider and event JSON from a
//! host that may be buggy or hostile. Inputs are `provider JSON \0 event JSON \0 event JSON ...`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::json::JsonEngine;

const PROVIDER: &str = r#"{"client_id":"c","client_secret":"s","token_url":"https://idp.example/token","revocation_url":"https://idp.example/revoke","grant":{"type":"client_credentials"}}"#;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let Some(provider) = parts.next() else { return };
    let mut engine = JsonEngine::new();
    let provider = std::str::from_utf8(provider).unwrap_or("");
    if engine.register("k", provider).is_err() {
        engine.register("k", PROVIDER).expect("the reference provider registers");
    }
    let mut now = 1_700_000_000_000i64;
    let _ = engine.ensure("k", now);
    for (step, event) in parts.take(32).enumerate() {
        now += 1_000 * step as i64;
        let Ok(event) = std::str::from_utf8(event) else { continue };
        let _ = engine.handle(event, now);
        if step % 4 == 3 {
            let _ = engine.refresh("k", now);
        }
    }
    let _ = engine.tokens("k");
    let _ = engine.set_tokens("k", std::str::from_utf8(data).ok());
});
