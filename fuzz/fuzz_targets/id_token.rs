//! OpenID Connect ID tokens: `parse_jwks` with arbitrary JWKS documents, and `verify_id_token` with
//! arbitrary compact JWTs against real key sets.
//!
//! The key sets, their expectations (issuer, client id, nonce, the time the tokens were captured) and
//! the tokens known to be validly signed live in `fuzz/fixtures/id_token_keysets.json`, written by
//! `fuzz/capture_id_token_seeds.py`: the JWKS and ID tokens of the reference IdP and of oidc-provider
//! (captured from authorization-code logins), and a fixed Ed25519 key pair generated once, whose
//! private key signed a few more tokens (other claim shapes) and is not used here.
//!
//! Input: one selector byte, then bytes.
//! - selector bit 0 clear: the rest is a compact JWT, verified against key set `(selector >> 1) % n`
//!   (bit 7: without the nonce expectation). Invariant: a token is accepted only when its signing
//!   input and signature bytes are those of a token known to be signed by that set's keys (nobody
//!   here holds their private keys, so nothing else can verify); an error never shows the token.
//! - selector bit 0 set: the rest is a JWKS response body (status and content type from the
//!   selector). When it parses, every known token is verified against it. Invariant: a known token is
//!   accepted only when the document carries its issuer's public key material (`x` or `n`).
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_core::protocol::{ID_TOKEN_LEEWAY, IdTokenExpectations, JsonWebKeySet, parse_jwks, verify_id_token};
use tessera_core::{Error, HttpResponse, RequestId, Timestamp};

const KEYSETS: &str = include_str!("../fixtures/id_token_keysets.json");

struct KeySet {
    keys: JsonWebKeySet,
    issuer: String,
    client_id: String,
    nonce: Option<String>,
    now: Timestamp,
    endpoint: String,
    tokens: Vec<String>,
    /// Decoded `x` / `n` of every key (leading zero bytes stripped).
    material: Vec<Vec<u8>>,
}

impl KeySet {
    fn expectations(&self, with_nonce: bool) -> IdTokenExpectations<'_> {
        IdTokenExpectations {
            issuer: &self.issuer,
            client_id: &self.client_id,
            nonce: self.nonce.as_deref().filter(|_| with_nonce),
            now: self.now,
            leeway: ID_TOKEN_LEEWAY,
        }
    }
}

fn keysets() -> &'static [KeySet] {
    static SETS: OnceLock<Vec<KeySet>> = OnceLock::new();
    SETS.get_or_init(|| {
        let sets: Vec<Value> = serde_json::from_str(KEYSETS).expect("fixtures/id_token_keysets.json");
        sets.iter()
            .map(|set| {
                let jwks = serde_json::to_vec(&set["jwks"]).unwrap();
                let text = |name: &str| set[name].as_str().unwrap_or_else(|| panic!("fixture field {name}")).to_owned();
                let material = set["jwks"]["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|key| key.get("x").or_else(|| key.get("n")).and_then(Value::as_str))
                    .filter_map(decode_lenient)
                    .collect();
                let keyset = KeySet {
                    keys: JsonWebKeySet::from_json(&jwks).expect("fixture JWKS"),
                    issuer: text("issuer"),
                    client_id: text("client_id"),
                    nonce: set["nonce"].as_str().map(str::to_owned),
                    now: Timestamp::from_unix_secs(set["now"].as_i64().expect("fixture now")),
                    endpoint: text("endpoint"),
                    tokens: set["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
                    material,
                };
                // The fixture must be right, or the invariants below prove nothing.
                for token in &keyset.tokens {
                    verify_id_token(token, &keyset.keys, &keyset.expectations(true), &keyset.endpoint)
                        .unwrap_or_else(|e| panic!("fixture token of {} does not verify: {e}", keyset.issuer));
                }
                keyset
            })
            .collect()
    })
}

/// Base64 as any JOSE library might read it: either alphabet, padding optional, trailing bits ignored;
/// leading zero bytes stripped (an RSA modulus may carry one).
fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let bytes = GeneralPurpose::new(&alphabet::URL_SAFE, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&alphabet::STANDARD, config).decode(text))
        .ok()?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes[first..].to_vec())
}

/// The signing input and the decoded signature of a compact JWS.
fn signed_parts(token: &str) -> Option<(&str, Vec<u8>)> {
    let (message, signature) = token.rsplit_once('.')?;
    Some((message, decode_lenient(signature)?))
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(values) => values.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    let sets = keysets();
    if selector & 1 == 0 {
        let set = &sets[usize::from(selector >> 1) % sets.len()];
        let token = String::from_utf8_lossy(rest);
        match verify_id_token(&token, &set.keys, &set.expectations(selector & 0x80 == 0), &set.endpoint) {
            Ok(claims) => {
                let (message, signature) = signed_parts(&token).expect("accepted a token without a signature part");
                assert!(
                    set.tokens.iter().filter_map(|t| signed_parts(t)).any(|(m, s)| m == message && s == signature),
                    "accepted a token that no key of {} signed: {token}",
                    set.issuer
                );
                assert_eq!(claims.issuer.trim_end_matches('/'), set.issuer.trim_end_matches('/'));
                assert!(claims.audience.contains(&set.client_id));
            }
            Err(error) => {
                assert!(matches!(error, Error::MalformedResponse { .. }), "{error:?}");
                if token.len() >= 40 && token.matches('.').count() >= 2 {
                    assert!(!format!("{error} {error:?}").contains(token.as_ref()), "the error shows the token");
                }
            }
        }
    } else {
        let status = [200, 200, 201, 404, 500, 503, 302, 200][usize::from((selector >> 1) & 7)];
        let content_type =
            ["application/json", "application/jwk-set+json", "text/html", "application/json; charset=utf-8"]
                [usize::from((selector >> 4) & 3)];
        let mut response = HttpResponse::json(RequestId(1), status, rest.to_vec());
        response.headers = vec![("content-type".into(), content_type.into())];
        let Ok(parsed) = parse_jwks(&response, "https://idp.example/jwks?q=FUZZQUERY").inspect_err(|error| {
            assert!(!error.to_string().contains("FUZZQUERY"), "{error}");
        }) else {
            return;
        };
        let _ = format!("{parsed:?} {}", parsed.len());
        let mut published = Vec::new();
        if let Ok(document) = serde_json::from_slice::<Value>(rest) {
            strings(&document, &mut published);
        }
        let published: Vec<Vec<u8>> = published.iter().filter_map(|s| decode_lenient(s)).collect();
        for set in sets {
            for token in &set.tokens {
                if verify_id_token(token, &parsed, &set.expectations(true), &set.endpoint).is_ok() {
                    assert!(
                        set.material.iter().any(|key| published.contains(key)),
                        "a JWKS without {}'s keys verified its token",
                        set.issuer
                    );
                }
            }
        }
    }
});
