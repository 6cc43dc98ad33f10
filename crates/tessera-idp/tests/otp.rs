//! Email one-time-code login, generic JSON flavour: start → outbox → verify, the attempts
//! countdown, unknown addresses, exhausted/expired/reused challenges and client errors.

mod common;

use common::{Harness, json, start_with, str_field};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_idp::{Fault, FaultEndpoint, IdpConfig, demo};

async fn harness() -> Harness {
    start_with(IdpConfig { test_endpoints: true, ..IdpConfig::demo() }).await
}

async fn start_otp(h: &Harness, body: Value) -> (StatusCode, Value) {
    json(h.http.post(h.url("/otp/start")).json(&body).send().await.unwrap()).await
}

async fn verify(h: &Harness, challenge_id: &str, code: &str) -> (StatusCode, Value) {
    let body = json!({"challenge_id": challenge_id, "code": code});
    json(h.http.post(h.url("/otp/verify")).json(&body).send().await.unwrap()).await
}

/// Starts a challenge for alice by the browser client; returns `(challenge_id, code)`.
async fn alice_challenge(h: &Harness) -> (String, String) {
    let (status, body) = start_otp(h, json!({"client_id": demo::BROWSER_CLIENT_ID, "email": demo::ALICE_EMAIL})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = h.server.outbox().last().expect("a message in the outbox").code.clone();
    (str_field(&body, "challenge_id").to_owned(), code)
}

/// A wrong code that is certainly not `code`.
fn other_code(code: &str) -> String {
    if code == "000000" { "111111".to_owned() } else { "000000".to_owned() }
}

#[tokio::test]
async fn start_emails_a_code_and_verify_returns_token_endpoint_json() {
    let h = harness().await;
    let (status, body) = start_otp(&h, json!({"client_id": demo::BROWSER_CLIENT_ID, "email": demo::ALICE_EMAIL})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channel"], "email");
    assert_eq!(body["destination"], "a***@example.com");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["attempts_left"], 3);
    let challenge_id = str_field(&body, "challenge_id");

    let outbox = h.server.outbox();
    assert_eq!(outbox.len(), 1);
    let message = &outbox[0];
    assert_eq!(message.to, demo::ALICE_EMAIL);
    assert_eq!(message.code.len(), 6);
    assert!(message.code.bytes().all(|b| b.is_ascii_digit()));
    assert!(message.body.contains(&message.code));
    assert!(!message.subject.is_empty());
    // The same over HTTP, filtered by recipient.
    let (status, listed) =
        json(h.http.get(h.url("/_test/outbox")).query(&[("to", demo::ALICE_EMAIL)]).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["code"], message.code.as_str());
    assert_eq!(listed[0]["to"], demo::ALICE_EMAIL);
    assert!(listed[0]["sent_at"].as_u64().is_some());
    let (_, nobody) =
        json(h.http.get(h.url("/_test/outbox")).query(&[("to", "bob@example.com")]).send().await.unwrap()).await;
    assert_eq!(nobody, json!([]));

    let (status, tokens) = verify(&h, challenge_id, &message.code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid");
    assert!(tokens["expires_in"].as_u64().is_some() && tokens["id_token"].is_string());
    let (status, who) = json(h.whoami(str_field(&tokens, "access_token")).await).await;
    assert_eq!((status, &who["sub"]), (StatusCode::OK, &demo::ALICE_USERNAME.into()));

    // Refresh goes through the normal refresh_token grant, with rotation.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", demo::BROWSER_CLIENT_ID),
        ("refresh_token", str_field(&tokens, "refresh_token")),
    ];
    let (status, refreshed) = json(h.http.post(h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);

    // A challenge works once.
    let (status, again) = verify(&h, challenge_id, &message.code).await;
    assert_eq!((status, &again["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()));
    let stats = h.server.stats();
    assert_eq!((stats.otp_requests, stats.otp_logins), (3, 1));
}

#[tokio::test]
async fn wrong_codes_count_down_then_the_challenge_is_dead() {
    let h = harness().await;
    let (challenge_id, code) = alice_challenge(&h).await;
    let wrong = other_code(&code);
    for expected_left in [2, 1] {
        let (status, body) = verify(&h, &challenge_id, &wrong).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_code", "{body}");
        assert_eq!(body["attempts_left"], expected_left);
        assert!(body["error_description"].is_string());
    }
    let (status, body) = verify(&h, &challenge_id, &wrong).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
    // Exhausted: even the right code no longer works.
    let (_, body) = verify(&h, &challenge_id, &code).await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn the_right_code_after_a_wrong_one_still_works() {
    let h = harness().await;
    let (challenge_id, code) = alice_challenge(&h).await;
    let (_, body) = verify(&h, &challenge_id, &other_code(&code)).await;
    assert_eq!(body["attempts_left"], 2);
    let (status, body) = verify(&h, &challenge_id, &format!(" {code} ")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_addresses_look_the_same_but_nothing_is_sent_and_nothing_verifies() {
    let h = harness().await;
    let (status, body) = start_otp(&h, json!({"client_id": demo::BROWSER_CLIENT_ID, "email": "zed@example.com"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["destination"], "z***@example.com");
    assert_eq!(body["attempts_left"], 3);
    assert!(h.server.outbox().is_empty());
    let challenge_id = str_field(&body, "challenge_id");
    let (_, first) = verify(&h, challenge_id, "123456").await;
    assert_eq!((&first["error"], &first["attempts_left"]), (&"invalid_code".into(), &2.into()));
    verify(&h, challenge_id, "234567").await;
    let (_, last) = verify(&h, challenge_id, "345678").await;
    assert_eq!(last["error"], "invalid_grant");
}

#[tokio::test]
async fn unknown_and_expired_challenges_are_invalid_grant() {
    let h = harness().await;
    let (status, body) = verify(&h, "no-such-challenge", "123456").await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()));
    let (challenge_id, code) = alice_challenge(&h).await;
    h.server.set_clock_offset(300);
    let (status, body) = verify(&h, &challenge_id, &code).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
    assert!(str_field(&body, "error_description").contains("expired"));
}

#[tokio::test]
async fn client_and_request_errors() {
    let h = harness().await;
    let cases = [
        (json!({"client_id": "nobody", "email": demo::ALICE_EMAIL}), StatusCode::UNAUTHORIZED, "invalid_client"),
        (json!({"email": demo::ALICE_EMAIL}), StatusCode::UNAUTHORIZED, "invalid_client"),
        (
            json!({"client_id": demo::WEB_CLIENT_ID, "email": demo::ALICE_EMAIL}),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            json!({"client_id": demo::PUBLIC_CLIENT_ID, "email": demo::ALICE_EMAIL}),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (json!({"client_id": demo::BROWSER_CLIENT_ID}), StatusCode::BAD_REQUEST, "invalid_request"),
    ];
    for (body, status, error) in cases {
        let (got_status, got) = start_otp(&h, body.clone()).await;
        assert_eq!((got_status, got["error"].as_str()), (status, Some(error)), "{body} → {got}");
    }
    let (status, body) = json(
        h.http
            .post(h.url("/otp/start"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_request".into()));
    let (status, body) =
        json(h.http.post(h.url("/otp/verify")).json(&json!({"code": "1"})).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_request".into()));
    assert!(h.server.outbox().is_empty());

    // A confidential client sends its secret in the body.
    let (status, body) = start_otp(
        &h,
        json!({"client_id": demo::WEB_CLIENT_ID, "client_secret": demo::WEB_CLIENT_SECRET, "email": demo::BOB_EMAIL, "scope": "openid email"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = h.server.outbox().last().unwrap().code.clone();
    let (status, tokens) = verify(&h, str_field(&body, "challenge_id"), &code).await;
    assert_eq!((status, &tokens["scope"]), (StatusCode::OK, &"openid email".into()), "{tokens}");
}

#[tokio::test]
async fn faults_can_target_the_otp_endpoints() {
    let h = harness().await;
    h.server.faults().push(FaultEndpoint::Otp, Fault::status(502, "bad gateway"), 1);
    let (status, _) = start_otp(&h, json!({"client_id": demo::BROWSER_CLIENT_ID, "email": demo::ALICE_EMAIL})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(h.server.outbox().is_empty());
}
