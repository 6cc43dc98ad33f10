//! Token store files (what `FileStore` reads from disk): token sets by key, or a typed store error.
//! A document that parses must survive a write/read round trip unchanged.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tessera::store::FileStore;
use tessera::{Error, StoreErrorKind};

fuzz_target!(|data: &[u8]| {
    match FileStore::parse_document(data, Path::new("/fuzz/tokens.json")) {
        Ok(tokens) => {
            let encoded = serde_json::json!({ "version": 1, "tokens": tokens }).to_string();
            let again =
                FileStore::parse_document(encoded.as_bytes(), Path::new("/fuzz/tokens.json")).expect("re-parses");
            assert_eq!(again, tokens);
        }
        Err(Error::Store { kind, .. }) => {
            assert!(matches!(kind, StoreErrorKind::Corrupt | StoreErrorKind::UnsupportedVersion))
        }
        Err(other) => panic!("unexpected error type: {other:?}"),
    }
});
