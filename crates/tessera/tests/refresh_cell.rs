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

// --- Regressions found by review: each failed before its fix. ---

/// A memory store that, when armed, saves `inject` as the `nth` `lock()` call is made (another
/// process storing its tokens at that moment).
#[derive(Debug, Default)]
struct Injecting {
    inner: MemoryStore,
    locks: std::sync::atomic::AtomicU32,
    nth: std::sync::atomic::AtomicU32,
    inject: std::sync::Mutex<Option<tessera::TokenSet>>,
}

#[async_trait::async_trait]
impl TokenStore for Injecting {
    async fn load(&self, key: &str) -> Result<Option<tessera::TokenSet>, Error> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &str, tokens: &tessera::TokenSet) -> Result<(), Error> {
        self.inner.save(key, tokens).await
    }
    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.inner.clear(key).await
    }
    async fn lock(&self, key: &str, _timeout: Duration) -> Result<tessera::store::StoreLock, Error> {
        use std::sync::atomic::Ordering;
        let n = self.locks.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.nth.load(Ordering::SeqCst) {
            let tokens = self.inject.lock().unwrap().take();
            if let Some(tokens) = tokens {
                self.inner.save(key, &tokens).await?;
            }
        }
        Ok(tessera::store::StoreLock::none())
    }
    fn location(&self) -> String {
        "injecting".into()
    }
}

/// A failed explicit `login()` (a wrong code, a refused sign-in) must not stop a session that
/// still holds a good refresh token: after expiry it refreshes.
#[tokio::test]
async fn a_failed_login_leaves_a_session_with_a_good_refresh_token_refreshing() {
    let idp = idp(Duration::from_secs(300)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let session = Session::builder(KEY, alice(&idp.issuer())).store(Arc::clone(&store)).clock(clock.clone()).build();
    assert!(session.tokens().await.unwrap().refresh_token.is_some());
    idp.faults().push(FaultEndpoint::Token, faults::json_error(400, "invalid_grant"), 1);
    assert!(session.login().await.is_err(), "the login is refused");
    clock.advance(Duration::from_secs(301));
    let before = idp.stats();
    session.authorization_header().await.expect("the held refresh token still works");
    assert_eq!(idp.stats().refresh_grants - before.refresh_grants, 1, "one refresh");
    idp.shutdown().await;
}

/// When another process stores good tokens while a refused refresh is cleaned up, the store holds
/// no witness of the failure: the next call adopts them (and sends nothing).
#[tokio::test]
async fn tokens_stored_by_another_process_during_the_clean_up_revive_the_session() {
    let idp = idp(Duration::from_secs(300)).await;
    let injecting = Arc::new(Injecting::default());
    let store: Arc<dyn TokenStore> = injecting.clone();
    let clock = Arc::new(ManualClock::new(system_now()));
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
    let config = ProviderConfig {
        grant: Grant::RefreshToken { refresh_token: seed.refresh_token.unwrap() },
        ..alice(&idp.issuer())
    };
    let daemon = Session::builder(KEY, config).store(Arc::clone(&store)).clock(clock.clone()).build();
    daemon.authorization_header().await.unwrap();
    idp.revoke_all_refresh_tokens_of(demo::ALICE_USERNAME);
    clock.advance(Duration::from_secs(301));
    let fresh = Session::builder("other", alice(&idp.issuer())).clock(clock.clone()).build().tokens().await.unwrap();
    *injecting.inject.lock().unwrap() = Some(fresh.clone());
    injecting.locks.store(0, std::sync::atomic::Ordering::SeqCst);
    injecting.nth.store(2, std::sync::atomic::Ordering::SeqCst); // the clean-up's lock
    assert!(daemon.authorization_header().await.unwrap_err().requires_reauthentication());
    assert_eq!(store.load(KEY).await.unwrap().unwrap().access_token, fresh.access_token);
    let before = idp.stats().token_requests;
    let header = daemon.authorization_header().await.expect("the other process's token revives the daemon");
    assert_eq!(header.access_token(), &fresh.access_token);
    assert_eq!(idp.stats().token_requests, before, "adopted, nothing sent");
    idp.shutdown().await;
}

/// Callers that waited on a failed early refresh are served the valid stored token the leader
/// adopted, like the leader (not the refresh's error).
#[tokio::test]
async fn waiters_of_a_failed_refresh_get_the_valid_stored_token_too() {
    let idp = idp(Duration::from_secs(300)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let first = Session::builder(KEY, alice(&idp.issuer())).store(Arc::clone(&store)).clock(clock.clone()).build();
    first.tokens().await.unwrap();
    // A new process; the stored token is due for its early refresh but valid for 20 s more.
    clock.advance(Duration::from_secs(280));
    let second = Session::builder(KEY, alice(&idp.issuer())).store(Arc::clone(&store)).clock(clock.clone()).build();
    idp.faults().push(FaultEndpoint::Token, Fault::status(500, "down"), 100);
    let results = at_once(&second, 50).await;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of 50 callers got {:?}", failed.len(), failed.first());
    idp.shutdown().await;
}

/// A refresh token and password refused during the early-refresh window are not sent again before
/// the token expires (account lockout), then once more with the policy, then never.
#[tokio::test]
async fn a_refused_password_is_not_retried_during_the_early_window() {
    let idp = idp(Duration::from_secs(300)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder(KEY, alice(&idp.issuer())).clock(clock.clone()).build();
    session.tokens().await.unwrap();
    idp.faults().push(FaultEndpoint::Token, faults::json_error(400, "invalid_grant"), 1000);
    clock.advance(Duration::from_secs(280));
    let before = idp.stats().token_requests;
    let mut served = 0;
    for _ in 0..1000 {
        if session.authorization_header().await.is_ok() {
            served += 1;
        }
        clock.advance(Duration::from_millis(50)); // 50 s in all: through expiry and beyond
    }
    assert!(served > 300, "the valid token is served until it expires ({served})");
    // The early refresh (refresh refused, then the password), then one attempt after expiry.
    let sent = idp.stats().token_requests - before;
    assert!(sent <= 3, "{sent} token requests");
    idp.shutdown().await;
}

/// A chain stage does not keep an error that came from the stage above: once the network session
/// is good again, a domain asked for the first time meanwhile works too.
#[tokio::test]
async fn a_stage_does_not_die_of_an_error_from_the_stage_above() {
    let idp = idp(Duration::from_secs(300)).await;
    let chain =
        ChainConfig { retry: RetrySettings { max_attempts: 1, ..RetrySettings::default() }, ..http_chain(&idp) };
    let clock = Arc::new(ManualClock::new(system_now()));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let network = Session::builder("network", wrong_password(alice(&idp.issuer())))
        .store(Arc::clone(&store))
        .clock(clock.clone())
        .build();
    let client = DomainClient::builder(chain).network(network).clock(clock.clone()).build();
    assert!(client.get_domain_access("alpha").await.is_err(), "the network login is refused");
    // The right password in another process, same store: the network session revives from it.
    Session::builder("network", alice(&idp.issuer()))
        .store(Arc::clone(&store))
        .clock(clock.clone())
        .build()
        .login()
        .await
        .unwrap();
    client.authenticate().await.expect("the network session adopted the stored token");
    client.get_domain_access("beta").await.expect("a domain asked for the first time works");
    client.get_domain_access("alpha").await.expect("and the one that failed before");
    idp.shutdown().await;
}
