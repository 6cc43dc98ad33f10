//! The `/_test/*` control endpoints, and the server's lifecycle (start errors, shutdown, drop).

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{http_client, json, start, start_with, str_field};
use reqwest::StatusCode;
use serde_json::json;
use tessera_idp::{Client, IdpConfig, IdpError, IdpServer, Stats, demo};

fn with_test_endpoints() -> IdpConfig {
    IdpConfig { test_endpoints: true, ..IdpConfig::demo() }
}

#[tokio::test]
async fn test_endpoints_are_absent_unless_enabled() {
    let h = start().await;
    let stats = h.http.get(h.url("/_test/stats")).send().await.unwrap();
    assert_eq!(stats.status(), StatusCode::NOT_FOUND);
    for path in ["/_test/faults", "/_test/reset", "/_test/access_token_ttl"] {
        let response = h.http.post(h.url(path)).json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn stats_endpoint_mirrors_the_rust_snapshot() {
    let h = start_with(with_test_endpoints()).await;
    h.alice_tokens().await;
    let (status, body) = json(h.http.get(h.url("/_test/stats")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let over_http: Stats = serde_json::from_value(body).unwrap();
    assert_eq!(over_http, h.server.stats());
    assert_eq!(over_http.token_requests, 1);
    assert_eq!(over_http.password_grants, 1);
}

#[tokio::test]
async fn faults_pushed_over_http_apply_and_reset_clears_them() {
    let h = start_with(with_test_endpoints()).await;
    let (status, body) = json(
        h.http
            .post(h.url("/_test/faults"))
            .json(&json!({
                "endpoint": "token",
                "times": 2,
                "delay_ms": 0,
                "kind": {"type": "status", "status": 500, "body": "boom", "content_type": "text/plain"},
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["pending"], 2);
    assert_eq!(h.server.faults().pending(), 2);

    let (status, _) = h.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let response = h.http.post(h.url("/_test/reset")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(h.server.faults().pending(), 0);
    assert_eq!(h.server.stats(), Stats::default());
    let (status, _) = h.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK);

    // A drop-connection fault over HTTP, by its JSON name.
    let response = h
        .http
        .post(h.url("/_test/faults"))
        .json(&json!({"endpoint": "token", "kind": {"type": "drop_connection"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let err = h.confidential_post("/token").form(&[("grant_type", "client_credentials")]).send().await.unwrap_err();
    assert!(err.status().is_none() && err.is_request(), "{err:?}");

    // An unknown fault type is refused.
    let response = h
        .http
        .post(h.url("/_test/faults"))
        .json(&json!({"endpoint": "token", "kind": {"type": "meteor_strike"}}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn access_token_ttl_and_revoke_user_over_http() {
    let h = start_with(with_test_endpoints()).await;
    let response = h.http.post(h.url("/_test/access_token_ttl")).json(&json!({"seconds": 42})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = h.alice_tokens().await;
    assert_eq!(tokens["expires_in"], 42);

    let (status, body) = json(
        h.http.post(h.url("/_test/revoke_user")).json(&json!({"username": demo::ALICE_USERNAME})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["revoked"], 1);
    assert_eq!(h.refresh(str_field(&tokens, "refresh_token")).await.0, StatusCode::BAD_REQUEST);

    // Reset restores the configured lifetime.
    h.http.post(h.url("/_test/reset")).send().await.unwrap();
    assert_eq!(h.alice_tokens().await["expires_in"], 300);
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let h = start().await;
    let url = h.url("/.well-known/openid-configuration");
    assert_eq!(h.http.get(&url).send().await.unwrap().status(), StatusCode::OK);
    h.server.shutdown().await;
    // A fresh client, so no pooled connection hides the closed listener.
    let err = http_client().get(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = IdpServer::start(IdpConfig::demo()).await.unwrap();
    let url = server.url("/jwks");
    let http = http_client();
    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::OK);
    drop(server);
    let mut stopped = false;
    for _ in 0..50 {
        if http_client().get(&url).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "server still answering after drop");
}

#[tokio::test]
async fn start_reports_bind_and_config_errors() {
    let h = start().await;
    let taken = IdpConfig { bind: h.server.addr(), ..IdpConfig::demo() };
    let err = IdpServer::start(taken).await.unwrap_err();
    assert!(matches!(err, IdpError::Bind { .. }), "{err}");

    let mut bad_totp = IdpConfig::demo();
    bad_totp.users[1].totp_secret = Some("not base32!".into());
    let err = IdpServer::start(bad_totp).await.unwrap_err();
    assert!(matches!(err, IdpError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("bob"), "{err}");

    let mut bad_client = IdpConfig::demo();
    bad_client.clients.push(Client::public("spa", &["authorization_code"]));
    let err = IdpServer::start(bad_client).await.unwrap_err();
    assert!(matches!(err, IdpError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("redirect URI"), "{err}");

    let mut unknown_grant = IdpConfig::demo();
    unknown_grant.clients.push(Client::public("spa", &["implicit"]));
    let err = IdpServer::start(unknown_grant).await.unwrap_err();
    assert!(err.to_string().contains("implicit"), "{err}");
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let mut start = pin!(IdpServer::start(IdpConfig::demo()));
    let mut cx = Context::from_waker(Waker::noop());
    match start.as_mut().poll(&mut cx) {
        Poll::Ready(Err(IdpError::NoRuntime)) => {}
        other => panic!("expected NoRuntime, got {other:?}"),
    }
}

#[tokio::test]
async fn clock_offset_moves_what_the_server_dates_and_checks() {
    let h = start_with(with_test_endpoints()).await;
    let before = h.alice_tokens().await;
    let token = str_field(&before, "access_token").to_owned();
    assert_eq!(h.whoami(&token).await.status(), StatusCode::OK);

    // One hour ahead: the token issued before has expired for the server, a new one is dated ahead.
    let (status, _) =
        json(h.http.post(h.url("/_test/clock_offset")).json(&json!({ "seconds": 3600 })).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let response = h.whoami(&token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let after = h.alice_tokens().await;
    assert_eq!(after["expires_in"], before["expires_in"], "expires_in is a duration: unchanged");
    let claims = h.introspect(str_field(&after, "access_token")).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(claims["iat"].as_u64().unwrap() >= now + 3590, "{claims}");

    // TOTP codes are checked against the server's clock: a correct code for real time is refused.
    let code = common::bob_totp().generate_current().to_string();
    let (status, body) = h
        .token(&[
            ("grant_type", "password"),
            ("username", demo::BOB_USERNAME),
            ("password", demo::BOB_PASSWORD),
            ("totp", &code),
        ])
        .await;
    assert_eq!((status, str_field(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));

    // The Rust setter and reset.
    h.server.set_clock_offset(0);
    assert_eq!(h.whoami(&token).await.status(), StatusCode::OK);
    h.server.set_clock_offset(-3600);
    h.server.reset();
    assert_eq!(h.whoami(&token).await.status(), StatusCode::OK, "reset restores the clock");
}

#[tokio::test]
async fn faults_with_headers_rate_limit_and_reject_tokens() {
    let h = start().await;
    h.server.faults().push(tessera_idp::FaultEndpoint::Token, tessera_idp::Fault::too_many_requests(7), 1);
    let response = h.confidential_post("/token").form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    let token = str_field(&h.alice_tokens().await, "access_token").to_owned();
    h.server.faults().push(tessera_idp::FaultEndpoint::Api, tessera_idp::Fault::invalid_token(), 1);
    let response = h.whoami(&token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    assert_eq!(h.whoami(&token).await.status(), StatusCode::OK, "one application only");
}
