//! Fault injection, observed by a raw reqwest client: what a client of the token endpoint sees
//! for each [`FaultKind`], and that faulted requests are counted.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, start, str_field};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tessera_idp::{Fault, FaultEndpoint, FaultKind, demo};

fn content_type(response: &reqwest::Response) -> String {
    response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned()
}

async fn password_request(h: &Harness) -> reqwest::Result<reqwest::Response> {
    h.confidential_post("/token")
        .form(&[("grant_type", "password"), ("username", demo::ALICE_USERNAME), ("password", demo::ALICE_PASSWORD)])
        .send()
        .await
}

/// The request after the faulted one is handled normally.
async fn assert_next_request_succeeds(h: &Harness) {
    let response = password_request(h).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());
}

#[tokio::test]
async fn status_fault_returns_the_given_status_body_and_type() {
    let h = start().await;
    h.server.faults().push(
        FaultEndpoint::Token,
        Fault::new(FaultKind::Status {
            status: 503,
            body: r#"{"message":"maintenance"}"#.into(),
            content_type: "application/problem+json".into(),
        }),
        2,
    );
    for _ in 0..2 {
        let response = password_request(&h).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type(&response), "application/problem+json");
        assert_eq!(response.text().await.unwrap(), r#"{"message":"maintenance"}"#);
    }
    assert_next_request_succeeds(&h).await;
    let stats = h.server.stats();
    assert_eq!(stats.token_requests, 3);
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.password_grants, 1);
    assert_eq!(stats.failed_token_requests, 0);
    assert_eq!(h.server.faults().pending(), 0);
}

#[tokio::test]
async fn malformed_json_is_200_json_that_does_not_parse() {
    let h = start().await;
    h.server.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::MalformedJson), 1);
    let response = password_request(&h).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    let body = response.bytes().await.unwrap();
    assert!(!body.is_empty());
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert_next_request_succeeds(&h).await;
}

#[tokio::test]
async fn html_error_page_looks_like_a_proxy() {
    let h = start().await;
    h.server.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::HtmlErrorPage { status: 502 }), 1);
    let response = password_request(&h).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(content_type(&response), "text/html");
    let page = response.text().await.unwrap();
    assert!(page.contains("<title>502 Bad Gateway</title>"), "{page}");
    assert_next_request_succeeds(&h).await;
}

#[tokio::test]
async fn oversize_body_has_the_requested_length() {
    let h = start().await;
    let bytes = 3 * 1024 * 1024;
    h.server.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::Oversize { bytes }), 1);
    let response = password_request(&h).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(response.content_length(), Some(bytes as u64));
    assert_eq!(response.bytes().await.unwrap().len(), bytes);
    assert_next_request_succeeds(&h).await;
}

#[tokio::test]
async fn wrong_content_type_is_plain_text_with_a_token_like_body() {
    let h = start().await;
    h.server.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::WrongContentType), 1);
    let response = password_request(&h).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "text/plain");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(body["access_token"].is_string());
    assert_next_request_succeeds(&h).await;
}

#[tokio::test]
async fn drop_connection_is_a_connection_error_not_a_status() {
    let h = start().await;
    // Warm the connection pool so the fault hits a reused keep-alive connection too.
    assert_next_request_succeeds(&h).await;
    h.server.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::DropConnection), 1);
    let err = password_request(&h).await.unwrap_err();
    assert!(err.status().is_none(), "{err:?}");
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert_next_request_succeeds(&h).await;
    // Exactly one request reached the server for the dropped attempt: no silent retry.
    assert_eq!(h.server.stats().token_requests, 3);
}

#[tokio::test]
async fn delay_only_fault_delays_then_answers_normally() {
    let h = start().await;
    h.server.faults().push(FaultEndpoint::Token, Fault::delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    let response = password_request(&h).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());
    assert_eq!(h.server.stats().password_grants, 1);
}

#[tokio::test]
async fn a_delay_longer_than_the_client_timeout_times_out() {
    let h = start().await;
    h.server.faults().push(FaultEndpoint::Token, Fault::status(500, "late").with_delay(Duration::from_secs(2)), 1);
    let err = h
        .confidential_post("/token")
        .timeout(Duration::from_millis(200))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(h.server.stats().token_requests, 1);
}

#[tokio::test]
async fn faults_target_their_endpoint_and_any_hits_the_next_request() {
    let h = start().await;
    let faults = h.server.faults();
    faults.push(FaultEndpoint::Revoke, Fault::status(500, "revoke down"), 1);
    // The token endpoint is not affected by a revoke fault.
    assert_next_request_succeeds(&h).await;
    let revoke = h.confidential_post("/revoke").form(&[("token", "x")]).send().await.unwrap();
    assert_eq!(revoke.status(), StatusCode::INTERNAL_SERVER_ERROR);

    faults.push(FaultEndpoint::Any, Fault::status(429, "slow down"), 1);
    let discovery = h.http.get(h.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(discovery.status(), StatusCode::TOO_MANY_REQUESTS);
    let discovery = h.http.get(h.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(discovery.status(), StatusCode::OK);

    faults.push(FaultEndpoint::Introspect, Fault::status(500, "x"), 3);
    faults.clear();
    assert_eq!(faults.pending(), 0);
    let tokens = h.alice_tokens().await;
    assert_eq!(h.introspect(str_field(&tokens, "access_token")).await["active"], true);
}
