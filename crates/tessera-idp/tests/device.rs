//! Device authorization (RFC 8628): the authorization response, polling answers (pending,
//! slow_down with +5 s, expired, denied, success once), the verification page and the test
//! hooks (Rust and `/_test/*`).

mod common;

use std::time::Duration;

use common::{Harness, json, start_with, str_field};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_idp::{DeviceHookError, IdpConfig, demo};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn harness() -> Harness {
    start_with(IdpConfig { device_poll_interval: Duration::from_secs(1), test_endpoints: true, ..IdpConfig::demo() })
        .await
}

/// `POST /device_authorization` by the browser client.
async fn authorize_device(h: &Harness) -> Value {
    let form = [("client_id", demo::BROWSER_CLIENT_ID), ("scope", "openid profile")];
    let (status, body) = json(h.http.post(h.url("/device_authorization")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn poll(h: &Harness, device_code: &str) -> (StatusCode, Value) {
    let form = [("grant_type", DEVICE_GRANT), ("client_id", demo::BROWSER_CLIENT_ID), ("device_code", device_code)];
    json(h.http.post(h.url("/token")).form(&form).send().await.unwrap()).await
}

async fn poll_error(h: &Harness, device_code: &str) -> String {
    let (status, body) = poll(h, device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    str_field(&body, "error").to_owned()
}

#[tokio::test]
async fn device_authorization_response_has_the_rfc_8628_fields() {
    let h = harness().await;
    let body = authorize_device(&h).await;
    let user_code = str_field(&body, "user_code");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code.chars().filter(|c| *c != '-').all(|c| c.is_ascii_uppercase()));
    assert!(str_field(&body, "device_code").len() >= 43);
    let issuer = h.server.issuer();
    assert_eq!(body["verification_uri"], format!("{issuer}/device"));
    assert_eq!(body["verification_uri_complete"], format!("{issuer}/device?user_code={user_code}"));
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 1);
    assert_eq!(h.server.stats().device_authorization_requests, 1);

    // The default interval is 5 s.
    let default = start_with(IdpConfig::demo()).await;
    let form = [("client_id", demo::BROWSER_CLIENT_ID)];
    let (_, body) =
        json(default.http.post(default.url("/device_authorization")).form(&form).send().await.unwrap()).await;
    assert_eq!(body["interval"], 5);
}

#[tokio::test]
async fn clients_need_the_device_grant_and_their_credentials() {
    let h = harness().await;
    let post = |form: Vec<(&'static str, &'static str)>| h.http.post(h.url("/device_authorization")).form(&form).send();
    let (status, body) = json(post(vec![("client_id", demo::PUBLIC_CLIENT_ID)]).await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"unauthorized_client".into()));
    let (status, body) = json(post(vec![("client_id", demo::WEB_CLIENT_ID)]).await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::UNAUTHORIZED, &"invalid_client".into()));
    let (status, body) =
        json(post(vec![("client_id", demo::WEB_CLIENT_ID), ("client_secret", demo::WEB_CLIENT_SECRET)]).await.unwrap())
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn pending_until_approved_on_the_html_page_then_tokens_exactly_once() {
    let h = harness().await;
    let body = authorize_device(&h).await;
    let device_code = str_field(&body, "device_code");
    let user_code = str_field(&body, "user_code");
    assert_eq!(poll_error(&h, device_code).await, "authorization_pending");

    // The verification_uri_complete page comes with the code filled in.
    let page = h.http.get(str_field(&body, "verification_uri_complete")).send().await.unwrap().text().await.unwrap();
    assert_eq!(common::input_value(&page, "user_code").as_deref(), Some(user_code));
    for id in [r#"id="user_code""#, r#"id="username""#, r#"id="password""#, r#"id="approve""#, r#"id="deny""#] {
        assert!(page.contains(id), "{id} missing:\n{page}");
    }

    // Wrong password: the page again, 401, nothing approved.
    let wrong =
        [("user_code", user_code), ("username", demo::ALICE_USERNAME), ("password", "nope"), ("action", "approve")];
    let response = h.http.post(h.url("/device")).form(&wrong).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("Wrong username or password."));
    h.server.set_clock_offset(2);
    assert_eq!(poll_error(&h, device_code).await, "authorization_pending");

    // Lower case without the dash is the same code.
    let typed = user_code.replace('-', "").to_lowercase();
    let approve = [
        ("user_code", typed.as_str()),
        ("username", demo::ALICE_USERNAME),
        ("password", demo::ALICE_PASSWORD),
        ("action", "approve"),
    ];
    let response = h.http.post(h.url("/device")).form(&approve).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("id=\"approved\""));

    h.server.set_clock_offset(4);
    let (status, tokens) = poll(&h, device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "openid profile");
    assert!(tokens["refresh_token"].is_string() && tokens["id_token"].is_string());
    let (status, who) = json(h.whoami(str_field(&tokens, "access_token")).await).await;
    assert_eq!((status, &who["sub"]), (StatusCode::OK, &demo::ALICE_USERNAME.into()));

    h.server.set_clock_offset(6);
    assert_eq!(poll_error(&h, device_code).await, "invalid_grant");
    assert_eq!(h.server.stats().device_code_grants, 1);
    // A used code cannot be approved again on the page.
    let response = h.http.post(h.url("/device")).form(&approve).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn polling_too_fast_is_slow_down_and_adds_five_seconds() {
    let h = harness().await;
    let x = authorize_device(&h).await;
    let y = authorize_device(&h).await;
    let (x, y) = (str_field(&x, "device_code"), str_field(&y, "device_code"));
    assert_eq!(poll_error(&h, x).await, "authorization_pending");
    assert_eq!(poll_error(&h, x).await, "slow_down"); // interval 1 s → 6 s
    assert_eq!(poll_error(&h, y).await, "authorization_pending");
    assert_eq!(poll_error(&h, y).await, "slow_down"); // interval 1 s → 6 s

    // 5 s later is still too fast for x (interval now 6 s, not 1 s)...
    h.server.set_clock_offset(5);
    assert_eq!(poll_error(&h, x).await, "slow_down");
    // ...and 6 s later is fine for y (the interval grew by exactly 5 s, not more).
    h.server.set_clock_offset(6);
    assert_eq!(poll_error(&h, y).await, "authorization_pending");
}

#[tokio::test]
async fn forced_slow_down_hook_answers_the_next_polls() {
    let h = harness().await;
    let body = authorize_device(&h).await;
    let device_code = str_field(&body, "device_code");
    h.server.force_device_slow_down(2);
    assert_eq!(poll_error(&h, device_code).await, "slow_down");
    h.server.set_clock_offset(100);
    assert_eq!(poll_error(&h, device_code).await, "slow_down");
    h.server.set_clock_offset(200);
    assert_eq!(poll_error(&h, device_code).await, "authorization_pending");

    // The same over HTTP.
    let (status, _) =
        json(h.http.post(h.url("/_test/device/slow_down")).json(&json!({"times": 1})).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    h.server.set_clock_offset(300);
    assert_eq!(poll_error(&h, device_code).await, "slow_down");
}

#[tokio::test]
async fn expired_codes_answer_expired_token() {
    let h = harness().await;
    let a = authorize_device(&h).await;
    let b = authorize_device(&h).await;
    assert_eq!(h.server.expire_device_codes(), 2);
    assert_eq!(poll_error(&h, str_field(&a, "device_code")).await, "expired_token");
    assert_eq!(h.server.approve_device(str_field(&b, "user_code"), "alice"), Err(DeviceHookError::NotPending));

    let c = authorize_device(&h).await;
    let (status, body) = json(h.http.post(h.url("/_test/device/expire")).send().await.unwrap()).await;
    assert_eq!((status, &body["expired"]), (StatusCode::OK, &1.into()));
    assert_eq!(poll_error(&h, str_field(&c, "device_code")).await, "expired_token");

    // Natural expiry: 600 s later on the server clock.
    let d = authorize_device(&h).await;
    h.server.set_clock_offset(600);
    assert_eq!(poll_error(&h, str_field(&d, "device_code")).await, "expired_token");
}

#[tokio::test]
async fn denied_codes_answer_access_denied() {
    let h = harness().await;
    // On the page (no credentials needed to refuse).
    let a = authorize_device(&h).await;
    let deny = [("user_code", str_field(&a, "user_code")), ("action", "deny")];
    let response = h.http.post(h.url("/device")).form(&deny).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("id=\"denied\""));
    assert_eq!(poll_error(&h, str_field(&a, "device_code")).await, "access_denied");

    // Through the Rust hook and the HTTP hook.
    let b = authorize_device(&h).await;
    h.server.deny_device(str_field(&b, "user_code")).unwrap();
    assert_eq!(poll_error(&h, str_field(&b, "device_code")).await, "access_denied");
    let c = authorize_device(&h).await;
    let response =
        h.http.post(h.url("/_test/device/deny")).json(&json!({"user_code": c["user_code"]})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(poll_error(&h, str_field(&c, "device_code")).await, "access_denied");
}

#[tokio::test]
async fn approval_hooks_and_their_errors() {
    let h = harness().await;
    let a = authorize_device(&h).await;
    assert_eq!(h.server.approve_device("BBBB-BBBB", "alice"), Err(DeviceHookError::UnknownUserCode));
    assert_eq!(
        h.server.approve_device(str_field(&a, "user_code"), "mallory"),
        Err(DeviceHookError::UnknownUser("mallory".into()))
    );
    h.server.approve_device(str_field(&a, "user_code"), demo::BOB_USERNAME).unwrap();
    let (status, tokens) = poll(&h, str_field(&a, "device_code")).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (_, who) = json(h.whoami(str_field(&tokens, "access_token")).await).await;
    assert_eq!(who["sub"], demo::BOB_USERNAME);

    let b = authorize_device(&h).await;
    let approve = json!({"user_code": b["user_code"], "username": "alice"});
    let response = h.http.post(h.url("/_test/device/approve")).json(&approve).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = poll(&h, str_field(&b, "device_code")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = json(h.http.post(h.url("/_test/device/approve")).json(&approve).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::NOT_FOUND, &"not_pending".into()));
    let unknown = json!({"user_code": "ZZZZ-ZZZZ", "username": "alice"});
    let (status, body) = json(h.http.post(h.url("/_test/device/approve")).json(&unknown).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::NOT_FOUND, &"unknown_user_code".into()));
}

#[tokio::test]
async fn the_page_refuses_unknown_codes_and_other_clients_cannot_poll() {
    let h = harness().await;
    let form = [("user_code", "ZZZZ-ZZZZ"), ("username", "alice"), ("password", demo::ALICE_PASSWORD)];
    let response = h.http.post(h.url("/device")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("unknown, expired or already used"));

    let a = authorize_device(&h).await;
    let form = [("grant_type", DEVICE_GRANT), ("device_code", str_field(&a, "device_code"))];
    let response = h
        .http
        .post(h.url("/token"))
        .basic_auth(demo::WEB_CLIENT_ID, Some(demo::WEB_CLIENT_SECRET))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
    assert_eq!(poll_error(&h, "not-a-device-code").await, "invalid_grant");
}
