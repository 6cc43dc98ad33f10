//! Property tests for round trips: a `TokenSet` through serde, through a `FileStore` (save, load,
//! and the pure `FileStore::parse_document`), through the JSON engine's exported tokens, and a
//! token response through the protocol parser.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proptest::option;
use proptest::prelude::*;
use tessera::store::{FileStore, TokenStore};
use tessera::{Secret, Timestamp, TokenSet};
use tessera_core::json::JsonEngine;
use tessera_core::protocol::parse_token_response;
use tessera_core::{HttpResponse, RequestId};

fn secret() -> impl Strategy<Value = String> {
    // Any non-empty text: tokens are opaque, and a store must not care what they hold.
    "\\PC{1,48}"
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp::from_unix_millis)
}

fn token_set() -> impl Strategy<Value = TokenSet> {
    (
        secret(),
        "[A-Za-z]{1,12}",
        option::of(timestamp()),
        option::of(secret()),
        option::of(timestamp()),
        option::of(secret()),
        option::of("\\PC{0,40}"),
        timestamp(),
    )
        .prop_map(|(access, token_type, expires_at, refresh, refresh_expires_at, id_token, scope, issued_at)| {
            // A stored DPoP key round-trips like the tokens (any text: the store does not read it).
            let dpop_key = id_token.clone().map(|text| Secret::new(format!("k{text}")));
            // A login serving resources (RFC 8707) and its registered client round-trip too.
            let resource_tokens = scope
                .iter()
                .map(|scope| (format!("https://api/{scope}"), TokenSet::bearer(access.clone(), expires_at, issued_at)))
                .collect();
            let registered_client = refresh.clone().map(|secret| {
                Box::new(tessera::StoredClient {
                    issuer: "https://idp".into(),
                    client_id: token_type.clone(),
                    client_secret: Some(Secret::new(secret)),
                    client_secret_expires_at: refresh_expires_at,
                    registered_at: issued_at,
                })
            });
            TokenSet {
                access_token: Secret::new(access),
                token_type,
                expires_at,
                refresh_token: refresh.map(Secret::new),
                refresh_expires_at,
                id_token: id_token.map(Secret::new),
                scope,
                issued_at,
                dpop_key,
                resource_tokens,
                registered_client,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn token_set_serde_round_trip(tokens in token_set()) {
        let json = serde_json::to_vec(&tokens).unwrap();
        let back: TokenSet = serde_json::from_slice(&json).unwrap();
        prop_assert_eq!(back, tokens);
    }

    #[test]
    fn store_document_round_trip(entries in proptest::collection::btree_map("\\PC{1,24}", token_set(), 0..6)) {
        let document = serde_json::json!({ "version": 1, "tokens": entries });
        let bytes = serde_json::to_vec_pretty(&document).unwrap();
        let parsed = FileStore::parse_document(&bytes, Path::new("tokens.json")).unwrap();
        prop_assert_eq!(parsed, entries);
    }

    #[test]
    fn token_response_round_trip(
        access in "[!-~]{1,64}",
        refresh in option::of("[!-~]{1,64}"),
        expires_in in option::of(0u64..10_000_000),
        scope in option::of("[ -~]{0,40}"),
        now in 0i64..4_000_000_000_000,
    ) {
        let body = serde_json::json!({
            "access_token": access, "token_type": "Bearer", "expires_in": expires_in,
            "refresh_token": refresh, "scope": scope,
        });
        let now = Timestamp::from_unix_millis(now);
        let response = HttpResponse::json(RequestId(1), 200, serde_json::to_vec(&body).unwrap());
        let tokens = parse_token_response(&response, "https://idp.example/token", now).unwrap();
        prop_assert_eq!(tokens.access_token.expose_secret(), access.as_str());
        prop_assert_eq!(tokens.refresh_token.as_ref().map(Secret::expose_secret), refresh.as_deref().filter(|r| !r.is_empty()));
        prop_assert_eq!(tokens.expires_at, expires_in.map(|secs| now + Duration::from_secs(secs)));
        prop_assert_eq!(tokens.scope, scope);
        prop_assert_eq!(tokens.issued_at, now);
    }

    #[test]
    fn json_engine_exported_tokens_round_trip(tokens in token_set()) {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "k",
                r#"{"type":"client_credentials","client_id":"c","client_secret":"s","token_endpoint":"https://idp.example/token"}"#,
            )
            .unwrap();
        let json = serde_json::to_string(&tokens).unwrap();
        engine.set_tokens("k", Some(&json)).unwrap();
        let exported = engine.tokens("k").expect("tokens are exported");
        let back: TokenSet = serde_json::from_str(&exported).unwrap();
        prop_assert_eq!(back, tokens);
    }
}

proptest! {
    // Real files: fewer cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn file_store_save_load_round_trip(entries in proptest::collection::btree_map("\\PC{1,24}", token_set(), 1..4)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        runtime.block_on(async {
            for (key, tokens) in &entries {
                store.save(key, tokens).await.unwrap();
            }
            let mut loaded = BTreeMap::new();
            for key in entries.keys() {
                loaded.insert(key.clone(), store.load(key).await.unwrap().expect("saved"));
            }
            assert_eq!(loaded, entries);
            let bytes = std::fs::read(store.path()).unwrap();
            assert_eq!(FileStore::parse_document(&bytes, &store.path()).unwrap(), entries);
        });
    }
}
