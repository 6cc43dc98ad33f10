//! `private_key_jwt` client authentication (RFC 7523 §2.2) for the demo `assertion-client`:
//! assertions signed with its key are accepted at `/token` (client credentials, password,
//! refresh), `/introspect`, `/revoke` and `/device_authorization`; another key, another
//! audience, an expired assertion, a replayed `jti`, a foreign `iss`/`sub` and a missing
//! assertion are refused with 401 `invalid_client`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{json, start};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_idp::demo;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An Ed25519 key registered nowhere on this server.
const OTHER_KEY: &str = include_str!("../../../testdata/client-assertion/ed25519.pem");

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The claims of a correct client assertion for `aud`; `jti` unique per call.
fn claims(aud: &str) -> Value {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = now();
    json!({
        "iss": demo::ASSERTION_CLIENT_ID,
        "sub": demo::ASSERTION_CLIENT_ID,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": format!("client-jti-{n}-{now}"),
    })
}

fn sign(claims: &Value, key_pem: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(key_pem.as_bytes()).unwrap()).unwrap()
}

fn demo_signed(claims: &Value) -> String {
    sign(claims, demo::ASSERTION_CLIENT_PRIVATE_KEY, Some(demo::ASSERTION_CLIENT_KEY_ID))
}

/// POSTs `params` to `path` authenticated by `assertion` (and `client_id`).
async fn post(h: &common::Harness, path: &str, assertion: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![
        ("client_id", demo::ASSERTION_CLIENT_ID),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(params);
    json(h.http.post(h.url(path)).form(&form).send().await.unwrap()).await
}

#[track_caller]
fn assert_invalid_client(status: StatusCode, body: &Value, claim: &str) {
    assert_eq!((status, &body["error"]), (StatusCode::UNAUTHORIZED, &json!("invalid_client")), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains(claim), "{description}");
}

#[tokio::test]
async fn assertions_of_the_demo_client_authenticate_it_everywhere() {
    let h = start().await;
    let token_endpoint = h.url("/token");

    let (status, body) =
        post(&h, "/token", &demo_signed(&claims(&token_endpoint)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let introspected = h.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["client_id"], demo::ASSERTION_CLIENT_ID);

    // Password grant with aud = the issuer, no kid, no client_id (the client is the assertion's sub).
    let assertion = sign(&claims(&h.server.issuer()), demo::ASSERTION_CLIENT_PRIVATE_KEY, None);
    let form = [
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
        ("grant_type", "password"),
        ("username", demo::ALICE_USERNAME),
        ("password", demo::ALICE_PASSWORD),
    ];
    let (status, tokens) = json(h.http.post(&token_endpoint).form(&form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let (status, refreshed) = post(
        &h,
        "/token",
        &demo_signed(&claims(&token_endpoint)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    let new_refresh = refreshed["refresh_token"].as_str().unwrap();

    let (status, body) = post(&h, "/introspect", &demo_signed(&claims(&token_endpoint)), &[("token", access)]).await;
    assert_eq!((status, &body["active"]), (StatusCode::OK, &json!(true)), "{body}");

    let (status, body) = post(&h, "/revoke", &demo_signed(&claims(&token_endpoint)), &[("token", new_refresh)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.introspect(new_refresh).await["active"], json!(false));
    assert_eq!(h.introspect(access).await["active"], json!(false));

    // Device authorization authenticates the client first: the grant is what it may not use.
    let (status, body) = post(&h, "/device_authorization", &demo_signed(&claims(&token_endpoint)), &[]).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &json!("unauthorized_client")), "{body}");
}

#[tokio::test]
async fn wrong_key_audience_expiry_replay_and_identity_are_invalid_client() {
    let h = start().await;
    let token_endpoint = h.url("/token");
    let cc = [("grant_type", "client_credentials")];

    let (status, body) = post(&h, "/token", &sign(&claims(&token_endpoint), OTHER_KEY, None), &cc).await;
    assert_invalid_client(status, &body, "signature");
    let (status, body) =
        post(&h, "/token", &sign(&claims(&token_endpoint), demo::ASSERTION_CLIENT_PRIVATE_KEY, Some("other")), &cc)
            .await;
    assert_invalid_client(status, &body, "kid");

    let (status, body) = post(&h, "/token", &demo_signed(&claims(&h.url("/revoke-elsewhere"))), &cc).await;
    assert_invalid_client(status, &body, "aud");

    let mut expired = claims(&token_endpoint);
    expired["iat"] = json!(now() - 600);
    expired["exp"] = json!(now() - 300);
    let (status, body) = post(&h, "/token", &demo_signed(&expired), &cc).await;
    assert_invalid_client(status, &body, "exp");

    let once = demo_signed(&claims(&token_endpoint));
    let (status, body) = post(&h, "/token", &once, &cc).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(&h, "/revoke", &once, &[("token", "anything")]).await;
    assert_invalid_client(status, &body, "jti");

    let mut foreign_sub = claims(&token_endpoint);
    foreign_sub["sub"] = json!(demo::CONFIDENTIAL_CLIENT_ID);
    let (status, body) = post(&h, "/token", &demo_signed(&foreign_sub), &cc).await;
    assert_invalid_client(status, &body, "sub");
    let mut foreign_iss = claims(&token_endpoint);
    foreign_iss["iss"] = json!(demo::CONFIDENTIAL_CLIENT_ID);
    let (status, body) = post(&h, "/token", &demo_signed(&foreign_iss), &cc).await;
    assert_invalid_client(status, &body, "iss");

    // A key-only client cannot pass as a public client by sending its client_id alone.
    let (status, body) = json(
        h.http.post(&token_endpoint).form(&[("client_id", demo::ASSERTION_CLIENT_ID), cc[0]]).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, &body["error"]), (StatusCode::UNAUTHORIZED, &json!("invalid_client")), "{body}");
    // A client without a registered key cannot use assertions.
    let mut confidential = claims(&token_endpoint);
    confidential["iss"] = json!(demo::CONFIDENTIAL_CLIENT_ID);
    confidential["sub"] = json!(demo::CONFIDENTIAL_CLIENT_ID);
    let form = [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &demo_signed(&confidential)), cc[0]];
    let (status, body) = json(h.http.post(&token_endpoint).form(&form).send().await.unwrap()).await;
    assert_invalid_client(status, &body, "public key");
    // The error never echoes the assertion.
    assert!(!body.to_string().contains(&form[1].1[..40]));
    assert!(h.server.stats().failed_token_requests > 0);
}

#[tokio::test]
async fn a_client_registered_with_a_public_jwk_authenticates_and_a_bad_key_is_a_config_error() {
    // The public members of the test-only Ed25519 JWK (its `kid` is "test-ed").
    let jwk: Value = serde_json::from_str(include_str!("../../../testdata/client-assertion/ed25519.jwk.json")).unwrap();
    let public = json!({ "kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": jwk["kid"] }).to_string();
    let mut config = tessera_idp::IdpConfig::demo();
    config.clients.push(tessera_idp::Client::private_key_jwt("jwk-client", public, &["client_credentials"]));
    let h = common::start_with(config).await;
    let mut c = claims(&h.url("/token"));
    c["iss"] = json!("jwk-client");
    c["sub"] = json!("jwk-client");
    let form = [
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &sign(&c, OTHER_KEY, Some("test-ed"))),
        ("grant_type", "client_credentials"),
    ];
    let (status, body) = json(h.http.post(h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c["jti"] = json!("another");
    let form = [
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &sign(&c, OTHER_KEY, Some("not-test-ed"))),
        ("grant_type", "client_credentials"),
    ];
    let (status, body) = json(h.http.post(h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_invalid_client(status, &body, "kid");

    let mut broken = tessera_idp::IdpConfig::demo();
    broken.clients.push(tessera_idp::Client::private_key_jwt("broken", "not a key", &["client_credentials"]));
    let Err(error) = tessera_idp::IdpServer::start(broken).await else { panic!("a bad public_key is refused") };
    assert!(error.to_string().contains("public_key"), "{error}");
}

#[tokio::test]
async fn client_secret_jwt_is_an_hs256_assertion_signed_with_the_clients_secret() {
    let h = start().await;
    let mut claims = claims(&h.url("/token"));
    claims["iss"] = json!(demo::CONFIDENTIAL_CLIENT_ID);
    claims["sub"] = json!(demo::CONFIDENTIAL_CLIENT_ID);
    let signed = |claims: &Value, secret: &str| {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    };
    let form = |assertion: &str| {
        vec![
            ("client_id".to_owned(), demo::CONFIDENTIAL_CLIENT_ID.to_owned()),
            ("client_assertion_type".to_owned(), ASSERTION_TYPE.to_owned()),
            ("client_assertion".to_owned(), assertion.to_owned()),
            ("grant_type".to_owned(), "client_credentials".to_owned()),
        ]
    };
    let good = signed(&claims, demo::CONFIDENTIAL_CLIENT_SECRET);
    let (status, body) = json(h.http.post(h.url("/token")).form(&form(&good)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
    // The same assertion again (jti replay), and one signed with another secret: invalid_client.
    let (status, body) = json(h.http.post(h.url("/token")).form(&form(&good)).send().await.unwrap()).await;
    assert_invalid_client(status, &body, "jti");
    claims["jti"] = json!("another");
    let wrong = signed(&claims, "not-the-secret");
    let (status, body) = json(h.http.post(h.url("/token")).form(&form(&wrong)).send().await.unwrap()).await;
    assert_invalid_client(status, &body, "signature");
    // A public client has no secret to sign with.
    claims["iss"] = json!(demo::PUBLIC_CLIENT_ID);
    claims["sub"] = json!(demo::PUBLIC_CLIENT_ID);
    claims["jti"] = json!("third");
    let public = signed(&claims, "anything");
    let mut public_form = form(&public);
    public_form[0].1 = demo::PUBLIC_CLIENT_ID.to_owned();
    let (status, body) = json(h.http.post(h.url("/token")).form(&public_form).send().await.unwrap()).await;
    assert_invalid_client(status, &body, "secret");
}
