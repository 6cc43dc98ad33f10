//! `Session` against a second third-party authorization server: django-oauth-toolkit 3.4.1
//! (hosted by `interop/django-oauth-toolkit/server.py`), through the public API only. Refresh
//! tokens rotate and reuse protection is on (a rotated refresh token presented again revokes its
//! whole token family), so "one refresh per window" and "zero reuses" are the server's own counts
//! (`GET /_stats`). Also: what DOT's grace period (`REFRESH_TOKEN_GRACE_PERIOD_SECONDS`) changes
//! when a refresh answer is lost, and the fault proxy's own behaviour (support/fault_proxy.rs).
//!
//! Needs the venv of `interop/django-oauth-toolkit` (see its README). Access tokens live 2 s in the
//! shared-store test; waits sleep just past expiry.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::django_oauth_toolkit::*;
use support::fault_proxy::{FaultProxy, ProxyFault};
use support::third_party::{Peer, ThirdParty, sessions_sharing_a_file_store_refresh_once_per_window};
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn dot(access_ttl_secs: u64) -> DjangoOauthToolkit {
    DjangoOauthToolkit::start(DotOptions { access_ttl_secs, ..DotOptions::default() })
}

/// alice, password grant, client_secret_basic, endpoints by OIDC discovery.
fn alice(dot: &DjangoOauthToolkit) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::basic(CONFIDENTIAL_CLIENT_ID, Secret::new(CONFIDENTIAL_CLIENT_SECRET)),
        endpoints: Endpoints::discover(dot.issuer()),
        scope: Some("read".into()),
        grant: Grant::Password { username: ALICE.into(), password: Secret::new(ALICE_PASSWORD), totp: None },
    }
}

async fn active(dot: &DjangoOauthToolkit, access_token: &Secret) -> bool {
    let body = dot.introspect(access_token.expose_secret()).await;
    body["active"].as_bool().unwrap_or_else(|| panic!("introspection without `active`: {body}"))
}

#[tokio::test]
async fn password_grant_with_discovery_every_client_auth_method_and_client_credentials() {
    let dot = dot(60);

    // alice, client_secret_basic, the token endpoint from DOT's discovery document.
    let tokens = Session::builder("alice", alice(&dot)).build().tokens().await.unwrap();
    assert_eq!(tokens.token_type.to_ascii_lowercase(), "bearer");
    let body = dot.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!((&body["active"], &body["username"], &body["scope"]), (&true.into(), &ALICE.into(), &"read".into()));
    assert_eq!(body["client_id"], CONFIDENTIAL_CLIENT_ID, "{body}");
    let refresh = tokens.refresh_token.clone().expect("DOT issues refresh tokens to the password grant");
    assert_eq!(dot.refresh_token_state(refresh.expose_secret()).await, RefreshTokenState::Active);

    // A wrong password: invalid_grant, final, not retried, and the password is in no message.
    let before = dot.stats().await.token_requests;
    let mut wrong = alice(&dot);
    wrong.grant = Grant::Password { username: ALICE.into(), password: Secret::new("not-her-password"), totp: None };
    let error = Session::builder("wrong", wrong).build().authorization_header().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidGrant, status: 400, .. }), "{error}");
    assert!(!error.is_transient());
    assert!(!format!("{error} {error:?}").contains("not-her-password"), "errors never echo secrets: {error}");
    assert_eq!(dot.stats().await.token_requests - before, 1, "credential errors are not retried");

    // client_secret_post.
    let post =
        ProviderConfig { client: ClientAuth::post(POST_CLIENT_ID, Secret::new(POST_CLIENT_SECRET)), ..alice(&dot) };
    let tokens = Session::builder("post", post).build().tokens().await.unwrap();
    assert_eq!(dot.introspect(tokens.access_token.expose_secret()).await["client_id"], POST_CLIENT_ID);

    // A public client, which refreshes too: the refresh token rotates.
    let public = ProviderConfig { client: ClientAuth::public(PUBLIC_CLIENT_ID), ..alice(&dot) };
    let public = Session::builder("public", public).build();
    let first = public.tokens().await.unwrap();
    let refreshed = public.force_refresh().await.unwrap();
    assert_ne!(refreshed.access_token(), &first.access_token);
    assert!(active(&dot, refreshed.access_token()).await);
    assert!(!active(&dot, &first.access_token).await, "rotation deletes the old access token");
    let (old, new) = (first.refresh_token.unwrap(), refreshed.tokens().refresh_token.clone().unwrap());
    assert_ne!(old, new);
    assert_eq!(dot.refresh_token_state(old.expose_secret()).await, RefreshTokenState::Revoked);
    assert_eq!(dot.refresh_token_state(new.expose_secret()).await, RefreshTokenState::Active);

    // Client credentials: no refresh token.
    let machine = ProviderConfig {
        client: ClientAuth::basic(MACHINE_CLIENT_ID, Secret::new(MACHINE_CLIENT_SECRET)),
        grant: Grant::ClientCredentials,
        ..alice(&dot)
    };
    let header = Session::builder("machine", machine).build().authorization_header().await.unwrap();
    assert!(header.tokens().refresh_token.is_none());
    assert!(active(&dot, header.access_token()).await);

    let stats = dot.stats().await;
    assert_eq!((stats.grant_type("password"), stats.grant_type("refresh_token")), (4, 1), "{stats:?}");
    assert_eq!(stats.grant_type("client_credentials"), 1, "{stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
}

#[tokio::test]
async fn logout_revokes_at_the_revocation_endpoint_and_clears_the_store() {
    let dot = dot(60);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    // DOT's discovery document has no revocation endpoint: both endpoints are given.
    let endpoints = Endpoints::Explicit {
        token_endpoint: dot.token_endpoint(),
        revocation_endpoint: Some(dot.revocation_endpoint()),
    };
    let session = Session::builder("bye", ProviderConfig { endpoints, ..alice(&dot) }).store(store.clone()).build();
    let tokens = session.tokens().await.unwrap();
    let refresh = tokens.refresh_token.clone().unwrap();

    let outcome = session.logout().await.unwrap();
    assert!(outcome.revoked && outcome.had_tokens && outcome.revocation_error.is_none(), "{outcome:?}");
    assert!(dot.stats().await.revocations >= 1);
    assert_eq!(dot.refresh_token_state(refresh.expose_secret()).await, RefreshTokenState::Revoked);
    assert!(!active(&dot, &tokens.access_token).await, "revoking the refresh token deletes its access token");
    assert!(store.load("bye").await.unwrap().is_none(), "store cleared");
    // A revoked (not rotated) refresh token presented again is refused; DOT counts it as reuse,
    // with nothing left alive to revoke.
    let (status, body) =
        dot.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh.expose_secret())]).await;
    assert_eq!((status, &body["error"]), (400, &Value::from("invalid_grant")));
    let stats = dot.stats().await;
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked, stats.live_refresh_tokens), (1, 0, 0), "{stats:?}");
}

/// Eight sessions on one FileStore stand for eight processes sharing one rotating refresh token
/// (the fleet test runs real processes): one refresh per window, no reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_sessions_sharing_a_file_store_refresh_once_per_window_without_reuse() {
    let dot = ThirdParty::start(Peer::DjangoOauthToolkit, 2);
    sessions_sharing_a_file_store_refresh_once_per_window(&dot, 8, 3).await;
    let ThirdParty::DjangoOauthToolkit(dot) = dot else { unreachable!() };
    let stats = dot.stats().await;
    assert_eq!((stats.grants_revoked, stats.live_refresh_tokens), (0, 1), "one live grant: {stats:?}");
}

fn refresh_form(refresh_token: &str) -> [(&str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
}

const PASSWORD_FORM: [(&str, &str); 4] =
    [("grant_type", "password"), ("username", ALICE), ("password", ALICE_PASSWORD), ("scope", "read")];

/// Logs alice in and loses the answer to her first refresh: the server rotated `R0` into `R1`, the
/// client saw no byte of it. Returns `R0`.
async fn lose_a_refresh_answer(dot: &DjangoOauthToolkit, proxy: &FaultProxy) -> String {
    let (status, login) = dot.token_request(&PASSWORD_FORM).await;
    assert_eq!(status, 200, "{}", login["error"]);
    let r0 = login["refresh_token"].as_str().expect("a refresh token").to_owned();
    let before = dot.stats().await;
    proxy.fail_next(dot.token_path(), ProxyFault::DropAnswer, 1);
    let lost = dot.token_request_at(&proxy.url_for(&dot.token_endpoint()), &refresh_form(&r0)).await;
    assert!(lost.is_err(), "the answer never reached the client");
    let after = dot.stats().await;
    assert_eq!(after.grant_type("refresh_token") - before.grant_type("refresh_token"), 1, "{after:?}");
    assert_eq!(dot.refresh_token_state(&r0).await, RefreshTokenState::Revoked, "the server rotated R0");
    r0
}

/// The lost answer (issue 14): a refresh the server processed and the client never heard back
/// from. Presenting the old refresh token again — a retry, or the next process reading it from the
/// shared store — is reuse to DOT without a grace period, and costs the grant; within
/// `REFRESH_TOKEN_GRACE_PERIOD_SECONDS` DOT answers it with the very tokens that were lost, and the
/// grant lives on. Driven with raw requests: this documents the server, not tessera.
#[tokio::test]
async fn a_lost_refresh_answer_costs_the_grant_without_a_grace_period_and_nothing_within_one() {
    // DOT's default: no grace period.
    let strict = DjangoOauthToolkit::start(DotOptions::default());
    let proxy = FaultProxy::start(strict.issuer());
    let r0 = lose_a_refresh_answer(&strict, &proxy).await;
    assert_eq!(strict.stats().await.live_refresh_tokens, 1, "R1, which only the server knows");
    let (status, body) = strict.token_request(&refresh_form(&r0)).await;
    assert_eq!((status, &body["error"]), (400, &Value::from("invalid_grant")), "R0 again is reuse");
    let stats = strict.stats().await;
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (1, 1), "{stats:?}");
    assert_eq!(stats.live_refresh_tokens, 0, "the whole grant is revoked: a new login is needed");
    drop(proxy);

    // A 2-second grace period.
    let lenient = DjangoOauthToolkit::start(DotOptions { grace_period_secs: 2, ..DotOptions::default() });
    let proxy = FaultProxy::start(lenient.issuer());
    let r0 = lose_a_refresh_answer(&lenient, &proxy).await;
    let (status, again) = lenient.token_request(&refresh_form(&r0)).await;
    assert_eq!(status, 200, "within the grace period R0 is answered: {}", again["error"]);
    let (status, once_more) = lenient.token_request(&refresh_form(&r0)).await;
    assert_eq!(status, 200, "{}", once_more["error"]);
    assert_eq!(
        (&again["access_token"], &again["refresh_token"]),
        (&once_more["access_token"], &once_more["refresh_token"]),
        "the same answer each time: the one that was lost, not a new pair"
    );
    let r1 = again["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r0);
    assert!(active(&lenient, &Secret::new(again["access_token"].as_str().unwrap())).await);
    let stats = lenient.stats().await;
    assert_eq!((stats.refresh_token_reuses, stats.live_refresh_tokens), (0, 1), "one live grant: {stats:?}");
    // The recovered R1 carries the grant on; once it has been used, R0 is reuse even within the grace period.
    let (status, next) = lenient.token_request(&refresh_form(&r1)).await;
    assert_eq!(status, 200, "{}", next["error"]);
    let (status, _) = lenient.token_request(&refresh_form(&r0)).await;
    assert_eq!(status, 400, "R0 after its successor was used");
    assert_eq!(lenient.stats().await.refresh_token_reuses, 1);

    // A second grant, whose lost answer is only looked for after the grace period: reuse again.
    let r0 = lose_a_refresh_answer(&lenient, &proxy).await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (status, _) = lenient.token_request(&refresh_form(&r0)).await;
    assert_eq!(status, 400, "R0 after the grace period");
    let stats = lenient.stats().await;
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (2, 2), "{stats:?}");
}

/// One raw HTTP/1.1 request on a new connection; returns what came back before the connection
/// closed or `wait` passed (`None`: still open, nothing received).
async fn raw_request(url: &str, path: &str, body: &str, wait: Duration) -> Option<Vec<u8>> {
    let authority = url.strip_prefix("http://").unwrap().split('/').next().unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{CONFIDENTIAL_CLIENT_ID}:{CONFIDENTIAL_CLIENT_SECRET}"),
    );
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         authorization: Basic {basic}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut received)).await {
        Ok(_) => Some(received),
        Err(_) => None,
    }
}

/// The fault proxy does what its header says, observed from a raw socket (so that "no byte of the
/// answer" is checked byte for byte) and from the server's own counters.
#[tokio::test]
async fn the_fault_proxy_forwards_fails_and_drops_answers_as_documented() {
    let dot = dot(60);
    let proxy = FaultProxy::start(dot.issuer());
    let path = dot.token_path();
    let form = "grant_type=password&username=alice&password=alice-password&scope=read";
    let served = || async { dot.stats().await.token_requests };
    let wait = Duration::from_secs(5);

    // No fault: forwarded, answered; a discovery document through the proxy points through it.
    let answer = raw_request(&proxy.url(), path, form, wait).await.expect("answered");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..12.min(answer.len())]));
    let discovery: Value = dot
        .http_client()
        .get(format!("{}/.well-known/openid-configuration", proxy.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["token_endpoint"], proxy.url_for(&dot.token_endpoint()), "{discovery}");
    assert_eq!(discovery["issuer"], proxy.url(), "{discovery}");
    assert_eq!((proxy.requests(path), proxy.forwarded(path), served().await), (1, 1, 1));

    // Answered by the proxy, never forwarded.
    proxy.fail_next(path, ProxyFault::Status { status: 503, retry_after: Some(2) }, 1);
    proxy.fail_next(path, ProxyFault::MalformedJson, 1);
    proxy.fail_next(path, ProxyFault::HtmlErrorPage, 1);
    let text = |bytes: Option<Vec<u8>>| String::from_utf8(bytes.expect("answered")).unwrap().to_ascii_lowercase();
    let busy = text(raw_request(&proxy.url(), path, form, wait).await);
    assert!(busy.starts_with("http/1.1 503") && busy.contains("retry-after: 2\r\n"), "{busy}");
    let malformed = text(raw_request(&proxy.url(), path, form, wait).await);
    let (_, json) = malformed.split_once("\r\n\r\n").unwrap();
    assert!(malformed.starts_with("http/1.1 200") && serde_json::from_str::<Value>(json).is_err(), "{malformed}");
    let html = text(raw_request(&proxy.url(), path, form, wait).await);
    assert!(html.starts_with("http/1.1 502") && html.contains("content-type: text/html"), "{html}");
    assert_eq!((proxy.requests(path), proxy.forwarded(path), served().await), (4, 1, 1));

    // Closed without a byte, not forwarded; held without a byte, not forwarded.
    proxy.fail_next(path, ProxyFault::ResetBeforeForwarding, 1);
    assert_eq!(raw_request(&proxy.url(), path, form, wait).await, Some(Vec::new()), "closed, no byte");
    proxy.fail_next(path, ProxyFault::Timeout, 1);
    assert_eq!(raw_request(&proxy.url(), path, form, Duration::from_millis(500)).await, None, "held, no byte");
    assert_eq!((proxy.requests(path), proxy.forwarded(path), served().await), (6, 1, 1));

    // The lost answer: forwarded and processed by the server, then closed without a byte of it.
    proxy.fail_next(path, ProxyFault::DropAnswer, 1);
    assert_eq!(raw_request(&proxy.url(), path, form, wait).await, Some(Vec::new()), "closed, no byte");
    assert_eq!((proxy.requests(path), proxy.forwarded(path), served().await), (7, 2, 2));
    let stats = dot.stats().await;
    assert_eq!((stats.grant_type("password"), stats.errors_by_grant_type.get("password")), (2, None), "{stats:?}");

    // Faults apply to their path only, in order, `count` times; then forwarding resumes.
    proxy.fail_next(path, ProxyFault::status(500), 2);
    let other = raw_request(&proxy.url(), "/o/introspect/", "token=x", wait).await.expect("answered");
    assert!(other.starts_with(b"HTTP/1.1 200"), "another path is forwarded");
    for expected in ["http/1.1 500", "http/1.1 500", "http/1.1 200"] {
        assert!(text(raw_request(&proxy.url(), path, form, wait).await).starts_with(expected));
    }
    assert_eq!((proxy.requests(path), proxy.forwarded(path), proxy.requests("/o/introspect/")), (10, 3, 1));
}
