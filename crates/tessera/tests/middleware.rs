//! The HTTP integrations (`tessera::middleware`) against the reference IdP's protected
//! `/api/whoami`: the header is added, a rejected token is refreshed once and the request retried
//! once, a second rejection is a typed error, and a streaming body is never sent twice.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use support::*;
use tessera::clock::{ManualClock, system_now};
use tessera::middleware::{AuthLayer, AuthMiddleware, NeverReplay};
use tessera::{Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session};
use tessera_idp::{Fault, FaultEndpoint, IdpServer};
use tower::{Layer, Service};

/// A session whose clock stands still: once the server's short-lived token expires, the session
/// still believes it valid and sends it, which is exactly an "API says expired" situation.
fn frozen_session(key: &str, config: ProviderConfig) -> Session {
    Session::builder(key, config).clock(Arc::new(ManualClock::new(system_now()))).build()
}

/// Waits until every token the IdP has issued so far (one-second lifetime) is expired at the
/// server, then gives later tokens a minute, and returns the counts so far. The IdP dates tokens in
/// whole seconds, so a one-second token can expire a millisecond after it is issued: the first
/// request may already have needed a refresh, and the tests count from here.
async fn expire_at_the_server(idp: &IdpServer) -> tessera_idp::Stats {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    idp.set_access_token_ttl(Duration::from_secs(60)); // the new token outlives a loaded machine
    idp.stats()
}

fn reqwest_client(session: Session) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(http_client()).with(AuthMiddleware::new(session)).build()
}

fn tessera_error(error: &reqwest_middleware::Error) -> &Error {
    match error {
        reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<Error>().expect("a tessera::Error"),
        other => panic!("expected a middleware error, got {other}"),
    }
}

async fn revoke(idp: &IdpServer, token: &Secret) {
    let response = http_client()
        .post(idp.url("/revoke"))
        .basic_auth(tessera_idp::demo::CONFIDENTIAL_CLIENT_ID, Some(tessera_idp::demo::CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("token", token.expose_secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn reqwest_expired_token_is_refreshed_once_and_retried_once() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = frozen_session("alice", alice(&idp.issuer()));
    let client = reqwest_client(session.clone());
    let response = client.get(idp.url("/api/whoami")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["sub"], "alice");

    let before = expire_at_the_server(&idp).await; // expired at the server, not for the session
    let response = client.get(idp.url("/api/whoami")).send().await.unwrap();
    assert_eq!(response.status(), 200, "retried with the refreshed token");
    let stats = idp.stats();
    assert_eq!(stats.refresh_grants - before.refresh_grants, 1, "one refresh");
    assert_eq!(stats.token_requests - before.token_requests, 1);
    assert_eq!(stats.api_requests - before.api_requests, 2, "the rejected request and exactly one retry");
}

#[tokio::test]
async fn reqwest_token_rejected_again_is_a_typed_error_after_exactly_one_retry() {
    let idp = idp(Duration::from_secs(60)).await;
    let client = reqwest_client(session("alice", alice(&idp.issuer())));
    assert_eq!(client.get(idp.url("/api/whoami")).send().await.unwrap().status(), 200);
    // The API rejects the token and then the refreshed one too (a revocation it keeps applying).
    idp.faults().push(FaultEndpoint::Api, Fault::invalid_token(), 2);
    let error = client.get(idp.url("/api/whoami?x=1")).send().await.unwrap_err();
    let error = tessera_error(&error);
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidToken), "{error}");
    assert!(!error.is_transient());
    assert!(!error.to_string().contains("x=1"), "no query string in errors: {error}");
    let stats = idp.stats();
    assert_eq!(stats.api_requests, 3, "first request, then exactly one retry");
    assert_eq!(stats.refresh_grants, 1, "exactly one refresh");
    assert_eq!(idp.faults().pending(), 0);
}

#[tokio::test]
async fn reqwest_revoked_grant_is_a_typed_error_without_retry() {
    let idp = idp(Duration::from_secs(60)).await;
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
    let config = ProviderConfig {
        grant: Grant::RefreshToken { refresh_token: seed.refresh_token.unwrap() },
        ..alice(&idp.issuer())
    };
    let session = session("from-refresh", config);
    let client = reqwest_client(session.clone());
    assert_eq!(client.get(idp.url("/api/whoami")).send().await.unwrap().status(), 200);
    // RFC 7009 on the refresh token revokes its family, access tokens included.
    revoke(&idp, &session.tokens().await.unwrap().refresh_token.unwrap()).await;
    let before = idp.stats();
    let error = client.get(idp.url("/api/whoami")).send().await.unwrap_err();
    assert!(tessera_error(&error).requires_reauthentication(), "{error}");
    let stats = idp.stats();
    assert_eq!(stats.api_requests - before.api_requests, 1, "nothing to retry with: no retry");
    assert_eq!(stats.token_requests - before.token_requests, 1, "one refresh attempt");
}

#[tokio::test]
async fn reqwest_static_token_rejected_is_a_typed_error_without_retry() {
    let idp = idp(Duration::from_secs(60)).await;
    let config = ProviderConfig {
        grant: Grant::Static { access_token: Secret::new("not-a-jwt"), expires_at: None },
        ..alice("")
    };
    let client = reqwest_client(session("static", config));
    let error = client.get(idp.url("/api/whoami")).send().await.unwrap_err();
    assert_eq!(tessera_error(&error).oauth_code(), Some(&OAuthErrorCode::InvalidToken));
    assert_eq!((idp.stats().api_requests, idp.stats().token_requests), (1, 0), "same token: no retry");
}

#[tokio::test]
async fn reqwest_streaming_body_is_not_retried() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = frozen_session("alice", alice(&idp.issuer()));
    let client = reqwest_client(session.clone());
    assert_eq!(client.get(idp.url("/api/whoami")).send().await.unwrap().status(), 200);
    let first = session.authorization_header().await.unwrap();
    let before = expire_at_the_server(&idp).await;

    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{}"))]);
    let response = client.get(idp.url("/api/whoami")).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap();
    assert_eq!(response.status(), 401, "the rejection is returned unchanged");
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(idp.stats().api_requests - before.api_requests, 1, "no retry");
    // ... but the next request carries a new token.
    assert_ne!(session.authorization_header().await.unwrap().access_token(), first.access_token());
    assert_eq!(client.get(idp.url("/api/whoami")).send().await.unwrap().status(), 200);
    let stats = idp.stats();
    assert_eq!((stats.api_requests - before.api_requests, stats.refresh_grants - before.refresh_grants), (2, 1));
}

type HyperClient = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn hyper_client() -> HyperClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

fn get(url: String) -> http::Request<Full<Bytes>> {
    http::Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn tower_layer_adds_the_header_refreshes_and_retries_once() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = frozen_session("alice", alice(&idp.issuer()));
    let mut service = AuthLayer::new(session.clone()).layer(hyper_client());
    let response = service.call(get(idp.url("/api/whoami"))).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("alice"));

    let before = expire_at_the_server(&idp).await;
    let response = service.call(get(idp.url("/api/whoami"))).await.unwrap();
    assert_eq!(response.status(), 200);
    let counts = |before: &tessera_idp::Stats| {
        let stats = idp.stats();
        (stats.api_requests - before.api_requests, stats.refresh_grants - before.refresh_grants)
    };
    assert_eq!(counts(&before), (2, 1), "one refresh, one retry");

    // Rejected twice: a typed error after exactly one retry.
    idp.faults().push(FaultEndpoint::Api, Fault::invalid_token(), 2);
    let error = service.call(get(idp.url("/api/whoami"))).await.unwrap_err();
    let error = error.downcast_ref::<Error>().expect("a tessera::Error");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidToken));
    assert_eq!(counts(&before), (4, 2));
}

#[tokio::test]
async fn tower_layer_never_replays_a_streaming_body() {
    let idp = idp(Duration::from_secs(60)).await;
    let session = session("alice", alice(&idp.issuer()));
    // NeverReplay: what a tonic channel (streaming bodies) uses.
    let mut service = AuthLayer::new(session.clone()).replay(NeverReplay).layer(hyper_client());
    assert_eq!(service.call(get(idp.url("/api/whoami"))).await.unwrap().status(), 200);
    idp.faults().push(FaultEndpoint::Api, Fault::invalid_token(), 1);
    let response = service.call(get(idp.url("/api/whoami"))).await.unwrap();
    assert_eq!(response.status(), 401, "returned unchanged");
    assert_eq!(idp.stats().api_requests, 2, "no retry");
    assert_eq!(idp.stats().refresh_grants, 1, "the next request gets a new token");
    assert_eq!(service.call(get(idp.url("/api/whoami"))).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rejections_share_one_refresh() {
    let idp = idp(Duration::from_secs(1)).await;
    let session = frozen_session("alice", alice(&idp.issuer()));
    let client = reqwest_client(session.clone());
    assert_eq!(client.get(idp.url("/api/whoami")).send().await.unwrap().status(), 200);
    let before = expire_at_the_server(&idp).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), idp.url("/api/whoami"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let stats = idp.stats();
    assert_eq!(stats.refresh_grants - before.refresh_grants, 1, "twenty rejected requests, one refresh");
    let api_requests = stats.api_requests - before.api_requests;
    assert!((20..=40).contains(&api_requests), "at most one retry each: {api_requests}");
}
