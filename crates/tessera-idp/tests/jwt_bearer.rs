//! The JWT bearer grant (RFC 7523 §2.1) at `POST /token`: the demo service account's assertions
//! are accepted, and refused when signed by another key, expired, too long-lived, for another
//! audience, replayed, or for a subject the account may not act for.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{json, start};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_idp::{JWT_BEARER_GRANT_TYPE, demo};

const OTHER_KEY: &str = include_str!("../../../testdata/client-assertion/rsa.pem");

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The claims a correct assertion for `token_endpoint` carries; `jti` unique per call.
fn claims(token_endpoint: &str) -> Value {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = now();
    json!({
        "iss": demo::SERVICE_ACCOUNT_EMAIL,
        "sub": demo::SERVICE_ACCOUNT_EMAIL,
        "aud": token_endpoint,
        "iat": now,
        "exp": now + 3600,
        "jti": format!("jti-{n}-{now}"),
    })
}

fn sign(claims: &Value, key_pem: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap()).unwrap()
}

fn demo_signed(claims: &Value) -> String {
    sign(claims, demo::SERVICE_ACCOUNT_PRIVATE_KEY, Some(demo::SERVICE_ACCOUNT_KEY_ID))
}

async fn grant(h: &common::Harness, assertion: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", JWT_BEARER_GRANT_TYPE), ("assertion", assertion)];
    form.extend_from_slice(extra);
    json(h.http.post(h.url("/token")).form(&form).send().await.unwrap()).await
}

/// The claims of an access token this server issued (the signature is checked by other tests).
fn access_claims(token: &Value) -> Value {
    use base64::Engine as _;
    let payload = token["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_demo_assertion_gets_an_access_token_without_refresh_token() {
    let h = start().await;
    let token_endpoint = h.url("/token");
    let (status, body) = grant(&h, &demo_signed(&claims(&token_endpoint)), &[("scope", "api:read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "RFC 7521 §4.1: no refresh token");
    assert_eq!(body["scope"], "api:read");
    let at = access_claims(&body);
    assert_eq!(at["sub"], demo::SERVICE_ACCOUNT_EMAIL);
    assert_eq!(at["client_id"], demo::SERVICE_ACCOUNT_EMAIL);
    assert_eq!(h.server.stats().jwt_bearer_grants, 1);

    // The scope claim (google-auth's place for it), sub = a user (domain-wide delegation), aud = the issuer.
    let mut delegated = claims(&h.server.issuer());
    delegated["sub"] = json!(demo::ALICE_USERNAME);
    delegated["scope"] = json!("cloud-platform  api:write");
    let (status, body) = grant(&h, &demo_signed(&delegated), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "cloud-platform api:write");
    assert_eq!(access_claims(&body)["sub"], demo::ALICE_USERNAME);

    // Discovery says the server speaks it.
    let (_, doc) = json(h.http.get(h.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert!(doc["grant_types_supported"].as_array().unwrap().contains(&json!(JWT_BEARER_GRANT_TYPE)));
}

#[tokio::test]
async fn refused_assertions_are_invalid_grant_naming_the_claim() {
    let h = start().await;
    let token_endpoint = h.url("/token");
    let with = |changes: Value| {
        let mut claims = claims(&token_endpoint);
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    };
    let now = now();
    let cases: Vec<(&str, String, &str)> = vec![
        ("another key", sign(&claims(&token_endpoint), OTHER_KEY, None), "signature"),
        ("another kid", sign(&claims(&token_endpoint), demo::SERVICE_ACCOUNT_PRIVATE_KEY, Some("other")), "kid"),
        ("expired", demo_signed(&with(json!({"iat": now - 7200, "exp": now - 3600}))), "expired"),
        ("more than 1 h", demo_signed(&with(json!({"exp": now + 7200}))), "one hour"),
        ("no exp", demo_signed(&with(json!({"exp": null}))), "exp"),
        ("wrong aud", demo_signed(&with(json!({"aud": "https://elsewhere.example/token"}))), "aud"),
        ("unknown iss", demo_signed(&with(json!({"iss": "stranger@example"}))), "iss"),
        ("no jti", demo_signed(&with(json!({"jti": null}))), "jti"),
        ("iat ahead", demo_signed(&with(json!({"iat": now + 600}))), "not valid yet"),
        ("sub not allowed", demo_signed(&with(json!({"sub": "mallory"}))), "sub"),
        ("not a JWT", "not-a-jwt".to_owned(), "not a JWT"),
    ];
    for (what, assertion, says) in cases {
        let (status, body) = grant(&h, &assertion, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(says), "{what}: {description}");
        assert!(!description.contains(&assertion[..assertion.len().min(20)]), "{what}: the assertion is not echoed");
    }
    assert_eq!(h.server.stats().jwt_bearer_grants, 0);

    // Scope in the form and in the assertion: ambiguous.
    let (status, body) = grant(&h, &demo_signed(&with(json!({"scope": "a"}))), &[("scope", "b")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{body}");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let h = start().await;
    let assertion = demo_signed(&claims(&h.url("/token")));
    let (status, body) = grant(&h, &assertion, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = grant(&h, &assertion, &[]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
    assert_eq!(h.server.stats().jwt_bearer_grants, 1);
}

#[tokio::test]
async fn client_authentication_is_optional_but_checked_when_sent() {
    let h = start().await;
    let token_endpoint = h.url("/token");
    let (status, body) = grant(
        &h,
        &demo_signed(&claims(&token_endpoint)),
        &[("client_id", demo::CONFIDENTIAL_CLIENT_ID), ("client_secret", "wrong")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
    let (status, body) = grant(
        &h,
        &demo_signed(&claims(&token_endpoint)),
        &[("client_id", demo::CONFIDENTIAL_CLIENT_ID), ("client_secret", demo::CONFIDENTIAL_CLIENT_SECRET)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[test]
fn the_demo_key_file_is_a_google_style_service_account_key() {
    let file: Value = serde_json::from_str(&demo::service_account_key_file("http://127.0.0.1:1/token")).unwrap();
    assert_eq!(file["type"], "service_account");
    assert_eq!(file["client_email"], demo::SERVICE_ACCOUNT_EMAIL);
    assert_eq!(file["private_key_id"], demo::SERVICE_ACCOUNT_KEY_ID);
    assert_eq!(file["token_uri"], "http://127.0.0.1:1/token");
    assert!(file["private_key"].as_str().unwrap().starts_with("-----BEGIN PRIVATE KEY-----"));
}
