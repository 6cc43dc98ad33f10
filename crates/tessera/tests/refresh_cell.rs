//! One refresh cell (src/refresh_cell.rs) under `Session` and the chain, counted by the servers'
//! own counters: a failed refresh is shared by every caller that waited on it, a dead credential
//! is never presented again (nothing is sent until a new login or a new stored token), transient
//! failures are postponed. Against the reference IdP and oidc-provider (needs `npm ci` in
//! interop/oidc-provider).

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::chain::http_chain;
use support::oidc_provider::{self as op, OidcProvider, OidcProviderOptions};
use support::*;
use tessera::chain::{ChainConfig, DomainClient};
use tessera::clock::{ManualClock, system_now};
use tessera::core::flow::RetrySettings;
use tessera::store::{MemoryStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session};
use tessera_idp::{Fault, FaultEndpoint, demo};

const KEY: &str = "cell";

/// `n` concurrent `authorization_header()` calls: their results, in order.
async fn at_once(session: &Session, n: usize) -> Vec<Result<String, Error>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.authorization_header().await.map(|h| h.expose_secret().to_owned()) })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("no panic"));
    }
    results
}

/// Every result is this same error.
fn all_fail_with(results: &[Result<String, Error>], expected: &Error) {
    for result in results {
        assert_eq!(result.as_ref().expect_err("fails"), expected);
    }
}

/// `n` sequential calls, each failing with `expected`.
async fn calls_fail(session: &Session, n: usize, expected: &Error) {
    for _ in 0..n {
        assert_eq!(&session.authorization_header().await.expect_err("fails fast"), expected);
    }
}

fn wrong_password(config: ProviderConfig) -> ProviderConfig {
    let Grant::Password { username, totp, .. } = config.grant else { panic!("a password grant") };
    ProviderConfig { grant: Grant::Password { username, password: Secret::new("wrong"), totp }, ..config }
}

// ---------------------------------------------------------------------------------------------
// Reference IdP

#[tokio::test]
async fn idp_revoked_refresh_token_200_callers_one_request_then_nothing_until_a_new_token_is_stored() {
    let idp = idp(Duration::from_secs(300)).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(system_now()));
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
    let config = ProviderConfig {
        grant: Grant::RefreshToken { refresh_token: seed.refresh_token.unwrap() },
        ..alice(&idp.issuer())
    };
    let daemon = Session::builder(KEY, config).store(store.clone()).clock(clock.clone()).build();
    daemon.authorization_header().await.unwrap();

    idp.revoke_all_refresh_tokens_of(demo::ALICE_USERNAME);
    clock.advance(Duration::from_secs(301));
    let before = idp.stats().token_requests;
    let results = at_once(&daemon, 200).await;
    assert_eq!(idp.stats().token_requests - before, 1, "200 callers → 1 request");
    let error = results[0].clone().unwrap_err();
    assert!(error.requires_reauthentication(), "{error:?}");
    all_fail_with(&results, &error);
    let stored = store.load(KEY).await.unwrap().expect("the access token stays stored");
    assert!(stored.refresh_token.is_none(), "the dead refresh token is gone from the store");

    calls_fail(&daemon, 2_000, &error).await;
    assert_eq!(idp.stats().token_requests - before, 1, "2,000 more calls → 0 requests");

    // Another process logs in and stores a token: reading the store revives the daemon.
    let other = Session::builder(KEY, alice(&idp.issuer())).store(store.clone()).clock(clock.clone()).build();
    let fresh = other.login().await.unwrap();
    let after_login = idp.stats().token_requests;
    assert_eq!(daemon.authorization_header().await.unwrap().access_token(), fresh.access_token());
    assert_eq!(idp.stats().token_requests, after_login, "adopted from the store, no request");
    idp.shutdown().await;
}

#[tokio::test]
async fn idp_wrong_password_1000_calls_one_request_and_login_revives() {
    let idp = idp(Duration::from_secs(300)).await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let wrong = session_with_store(KEY, wrong_password(alice(&idp.issuer())), store.clone());
    let before = idp.stats().token_requests;
    let error = wrong.authorization_header().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    calls_fail(&wrong, 999, &error).await;
    assert_eq!(idp.stats().token_requests - before, 1, "1,000 calls → 1 request: no account lockout");
    // An explicit login is sent (and refused again).
    assert_eq!(wrong.login().await.unwrap_err(), error);
    assert_eq!(idp.stats().token_requests - before, 2);
    calls_fail(&wrong, 100, &error).await;
    assert_eq!(idp.stats().token_requests - before, 2);

    // A session whose login was refused once (injected), then `login()` → works again.
    let alice = session_with_store("alice", alice(&idp.issuer()), store.clone());
    idp.faults().push(FaultEndpoint::Token, faults::json_error(400, "invalid_grant"), 1);
    let before = idp.stats().token_requests;
    let results = at_once(&alice, 200).await;
    let error = results[0].clone().unwrap_err();
    all_fail_with(&results, &error);
    calls_fail(&alice, 2_000, &error).await;
    assert_eq!(idp.stats().token_requests - before, 1, "200 + 2,000 callers → 1 request");
    alice.login().await.unwrap();
    let results = at_once(&alice, 200).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(idp.stats().token_requests - before, 2, "one login, then cached");
    idp.shutdown().await;
}

#[tokio::test]
async fn idp_transient_failure_is_shared_then_postponed_then_tried_once_more() {
    let idp = idp(Duration::from_secs(300)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder(KEY, machine(&idp.issuer())).clock(clock.clone()).build();
    session.authorization_header().await.unwrap(); // discovery done
    session.clear().await.unwrap();
    // Every attempt of the login (3, with backoff) answered 503.
    idp.faults().push(FaultEndpoint::Token, Fault::status(503, "busy"), 3);
    let before = idp.stats().token_requests;
    let results = at_once(&session, 50).await;
    assert_eq!(idp.stats().token_requests - before, 3, "50 callers → the 3 tries of one attempt");
    let error = results[0].clone().unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    all_fail_with(&results, &error);
    // Postponed (0.5–1 s after a first failure): the same error, nothing sent.
    calls_fail(&session, 100, &error).await;
    assert_eq!(idp.stats().token_requests - before, 3);
    clock.advance(Duration::from_secs(1));
    let results = at_once(&session, 50).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(idp.stats().token_requests - before, 4, "after the postponement: one new attempt");
    idp.shutdown().await;
}

#[tokio::test]
async fn chain_32_callers_of_a_failing_stage_share_one_request_per_attempt() {
    let idp = idp(Duration::from_secs(300)).await;
    let chain =
        ChainConfig { retry: RetrySettings { max_attempts: 1, ..RetrySettings::default() }, ..http_chain(&idp) };
    let clock = Arc::new(ManualClock::new(system_now()));
    let network = Session::builder("network", alice(&idp.issuer())).clock(clock.clone()).build();
    let client = DomainClient::builder(chain).network(network).clock(clock.clone()).build();
    client.authenticate_discovery().await.unwrap(); // the network login and the discovery token
    let requests = || idp.stats().chain_domain_access_requests;
    let before = requests();
    // The domain stage answers 404 for an unknown domain: a failing derivation.
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_domain_access("omega").await })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        errors.push(task.await.unwrap().expect_err("the domain stage fails"));
    }
    assert_eq!(requests() - before, 1, "32 callers → 1 request");
    assert!(matches!(&errors[0], Error::OAuth { status: 404, .. }), "{:?}", errors[0]);
    assert!(errors.iter().all(|e| *e == errors[0]), "one shared error");
    for _ in 0..100 {
        assert_eq!(client.get_domain_access("omega").await.unwrap_err(), errors[0]);
    }
    assert_eq!(requests() - before, 1, "postponed: nothing sent");
    client.get_domain_access("alpha").await.expect("other domains are not affected");
    clock.advance(Duration::from_secs(1));
    assert_eq!(client.get_domain_access("omega").await.unwrap_err(), errors[0]);
    assert_eq!(requests() - before, 3, "after the postponement: one new attempt (and alpha's)");
    idp.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// oidc-provider: refresh rotation with reuse detection (a reused token revokes the whole grant)

fn provider() -> OidcProvider {
    OidcProvider::start(OidcProviderOptions { access_ttl_secs: 60, ..OidcProviderOptions::default() })
}

fn op_alice(op: &OidcProvider) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::basic(op::CONFIDENTIAL_CLIENT_ID, Secret::new(op::CONFIDENTIAL_CLIENT_SECRET)),
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid api:read".into()),
        grant: Grant::Password { username: op::ALICE.into(), password: Secret::new(op::ALICE_PASSWORD), totp: None },
    }
}

#[tokio::test]
async fn oidc_provider_reused_refresh_token_200_callers_one_request_then_nothing_until_a_new_token_is_stored() {
    let op = provider();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(system_now()));
    let seed = session("seed", op_alice(&op)).tokens().await.unwrap();
    let refresh_token = seed.refresh_token.unwrap();
    let config =
        ProviderConfig { grant: Grant::RefreshToken { refresh_token: refresh_token.clone() }, ..op_alice(&op) };
    let daemon = Session::builder(KEY, config).store(store.clone()).clock(clock.clone()).build();
    let held = daemon.tokens().await.unwrap();
    // Someone else redeems the daemon's current refresh token: the daemon's copy is spent, and
    // presenting it is a reuse, which revokes the grant.
    let spent = held.refresh_token.clone().unwrap();
    let (status, _) =
        op.token_request(&[("grant_type", "refresh_token"), ("refresh_token", spent.expose_secret())]).await;
    assert_eq!(status, 200);
    clock.advance(Duration::from_secs(61));
    op.reset_stats().await;

    let results = at_once(&daemon, 200).await;
    let stats = op.stats().await;
    assert_eq!(stats.token_requests, 1, "200 callers → 1 request: {stats:?}");
    assert_eq!(stats.refresh_token_reuses, 1, "{stats:?}");
    let error = results[0].clone().unwrap_err();
    assert!(error.requires_reauthentication(), "{error:?}");
    all_fail_with(&results, &error);
    assert!(store.load(KEY).await.unwrap().is_none_or(|t| t.refresh_token.is_none()), "dead token dropped");
    calls_fail(&daemon, 2_000, &error).await;
    assert_eq!(op.stats().await.token_requests, 1, "2,000 more calls → 0 requests");

    let other = Session::builder(KEY, op_alice(&op)).store(store.clone()).clock(clock.clone()).build();
    let fresh = other.login().await.unwrap();
    assert_eq!(daemon.authorization_header().await.unwrap().access_token(), fresh.access_token());
    assert_eq!(op.stats().await.token_requests, 2, "the other session's login only");
}

#[tokio::test]
async fn oidc_provider_wrong_password_1000_calls_one_request_and_login_revives() {
    let op = provider();
    let wrong = session(KEY, wrong_password(op_alice(&op)));
    wrong.authorization_header().await.expect_err("discovery, then a refused password");
    op.reset_stats().await;
    // (the first call did discovery and the refused login; the next 999 send nothing)
    let error = wrong.authorization_header().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    calls_fail(&wrong, 998, &error).await;
    assert_eq!(op.stats().await.token_requests, 0, "1,000 calls → 1 request in all");

    // The right password, by another session on the same store: a stored token revives it.
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let wrong = session_with_store("alice", wrong_password(op_alice(&op)), store.clone());
    let error = at_once(&wrong, 200).await[0].clone().unwrap_err();
    calls_fail(&wrong, 2_000, &error).await;
    assert_eq!(op.stats().await.token_requests, 1, "200 + 2,000 callers → 1 request");
    session_with_store("alice", op_alice(&op), store.clone()).login().await.unwrap();
    wrong.authorization_header().await.expect("revived by the stored token");
    assert_eq!(op.stats().await.token_requests, 2);
}
