//! `Session` against a third-party authorization server: panva's `oidc-provider` (8.8.1, hosted
//! by `interop/oidc-provider/server.mjs`), through the public API only. Endpoints come from OIDC
//! discovery; refresh tokens rotate and a reused one revokes the whole grant, so "exactly one
//! refresh" and "zero reuses" are checked by the server's own counters (`GET /_stats`).
//!
//! Needs `node` and `npm ci` in `interop/oidc-provider` (see its README). Access tokens live
//! 2–3 s here; waits sleep just past expiry.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use support::oidc_provider::*;
use support::third_party::{Peer, ThirdParty, sessions_sharing_a_file_store_refresh_once_per_window, sleep_past};
use tessera::store::{FileStore, MemoryStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session, TotpSource};

/// Starts oidc-provider with this access token lifetime (refresh tokens live a day).
fn provider(access_ttl_secs: u64) -> OidcProvider {
    OidcProvider::start(OidcProviderOptions { access_ttl_secs, ..OidcProviderOptions::default() })
}

fn confidential() -> ClientAuth {
    ClientAuth::basic(CONFIDENTIAL_CLIENT_ID, Secret::new(CONFIDENTIAL_CLIENT_SECRET))
}

/// alice, password grant, client_secret_basic, endpoints by discovery.
fn alice(op: &OidcProvider) -> ProviderConfig {
    ProviderConfig {
        client: confidential(),
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid api:read".into()),
        grant: Grant::Password { username: ALICE.into(), password: Secret::new(ALICE_PASSWORD), totp: None },
    }
}

fn bob(op: &OidcProvider, totp: Option<TotpSource>) -> ProviderConfig {
    ProviderConfig {
        grant: Grant::Password { username: BOB.into(), password: Secret::new(BOB_PASSWORD), totp },
        ..alice(op)
    }
}

fn machine(op: &OidcProvider) -> ProviderConfig {
    ProviderConfig { scope: Some("api:read".into()), grant: Grant::ClientCredentials, ..alice(op) }
}

fn session(key: &str, config: ProviderConfig) -> Session {
    Session::builder(key, config).build()
}

async fn active(op: &OidcProvider, token: &Secret) -> bool {
    let body = op.introspect(token.expose_secret()).await;
    body["active"].as_bool().unwrap_or_else(|| panic!("introspection without `active`: {body}"))
}

#[tokio::test]
async fn password_grant_with_discovery_totp_and_every_client_auth_method() {
    let op = provider(60);

    // alice, client_secret_basic, endpoints from discovery.
    let tokens = session("alice", alice(&op)).tokens().await.unwrap();
    assert_eq!(tokens.token_type.to_ascii_lowercase(), "bearer");
    assert!(tokens.refresh_token.is_some(), "the password grant here always issues a refresh token");
    assert!(tokens.id_token.is_some(), "openid was granted");
    let body = op.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], ALICE, "{body}");
    assert_eq!(body["client_id"], CONFIDENTIAL_CLIENT_ID, "{body}");
    assert!(active(&op, tokens.refresh_token.as_ref().unwrap()).await);

    // bob: the TOTP code is generated from the secret.
    let secret = TotpSource::Secret(Secret::new(BOB_TOTP_SECRET));
    let bob_tokens = session("bob", bob(&op, Some(secret))).tokens().await.unwrap();
    assert_eq!(op.introspect(bob_tokens.access_token.expose_secret()).await["sub"], BOB);

    // bob without a code, and a wrong password: invalid_grant, not retried.
    let before = op.stats().await.token_requests;
    let error = session("bob-no-totp", bob(&op, None)).authorization_header().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidGrant, status: 400, .. }), "{error}");
    let mut wrong = alice(&op);
    wrong.grant = Grant::Password { username: ALICE.into(), password: Secret::new("not-her-password"), totp: None };
    let error = session("wrong", wrong).authorization_header().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidGrant, .. }), "{error}");
    assert!(!error.is_transient());
    assert!(!error.to_string().contains("not-her-password"), "errors never echo secrets: {error}");
    assert_eq!(op.stats().await.token_requests - before, 2, "credential errors are not retried");

    // client_secret_post.
    let post =
        ProviderConfig { client: ClientAuth::post(POST_CLIENT_ID, Secret::new(POST_CLIENT_SECRET)), ..alice(&op) };
    let tokens = session("post", post).tokens().await.unwrap();
    let body = op.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!((&body["active"], &body["client_id"]), (&true.into(), &POST_CLIENT_ID.into()), "{body}");

    // A public client (no secret), and it can refresh too.
    let public = ProviderConfig { client: ClientAuth::public(PUBLIC_CLIENT_ID), ..alice(&op) };
    let public = session("public", public);
    let first = public.tokens().await.unwrap();
    let body = op.introspect(first.access_token.expose_secret()).await;
    assert_eq!((&body["active"], &body["client_id"]), (&true.into(), &PUBLIC_CLIENT_ID.into()), "{body}");
    let refreshed = public.force_refresh().await.unwrap();
    assert_ne!(refreshed.access_token(), &first.access_token);
    assert!(active(&op, refreshed.access_token()).await);

    let stats = op.stats().await;
    assert_eq!(stats.grant_type("refresh_token"), 1);
    assert_eq!(stats.refresh_token_reuses, 0);
}

#[tokio::test]
async fn client_credentials_has_no_refresh_token_and_is_requested_again_after_expiry() {
    let op = provider(2);
    let session = session("machine", machine(&op));
    let first = session.authorization_header().await.unwrap();
    for _ in 0..100 {
        assert_eq!(session.authorization_header().await.unwrap().access_token(), first.access_token());
    }
    assert_eq!(op.stats().await.grant_type("client_credentials"), 1, "cached: one request for 101 calls");
    assert!(first.tokens().refresh_token.is_none());
    assert!(active(&op, first.access_token()).await);

    sleep_past(first.expires_at()).await;
    let second = session.authorization_header().await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert!(active(&op, second.access_token()).await);
    let stats = op.stats().await;
    assert_eq!(stats.grant_type("client_credentials"), 2);
    assert_eq!((stats.grant_type("refresh_token"), stats.token_requests), (0, 2));
}

#[tokio::test]
async fn expired_tokens_refresh_once_with_rotation_and_the_grant_stays_alive() {
    let op = provider(2);
    let session = session("rotate", alice(&op));
    let mut current = session.authorization_header().await.unwrap();
    let mut seen = HashSet::from([current.tokens().refresh_token.clone().unwrap().expose_secret().to_owned()]);
    for round in 1..=3 {
        sleep_past(current.expires_at()).await;
        op.reset_stats().await;
        let next = session.authorization_header().await.unwrap();
        let stats = op.stats().await;
        assert_eq!(stats.grant_type("refresh_token"), 1, "round {round}: {stats:?}");
        assert_eq!(stats.token_requests, 1, "round {round}: no password login: {stats:?}");

        let old_refresh = current.tokens().refresh_token.clone().unwrap();
        let new_refresh = next.tokens().refresh_token.clone().expect("a rotated refresh token");
        assert_ne!(next.access_token(), current.access_token(), "round {round}");
        assert_ne!(new_refresh, old_refresh, "round {round}: rotated");
        assert!(seen.insert(new_refresh.expose_secret().to_owned()), "round {round}: never seen before");
        assert!(!active(&op, &old_refresh).await, "round {round}: the old refresh token is consumed");
        assert!(active(&op, &new_refresh).await, "round {round}: the new refresh token works");
        assert!(active(&op, next.access_token()).await, "round {round}");
        assert_eq!(op.stats().await.refresh_token_reuses, 0, "round {round}");
        current = next;
    }
    assert_eq!(op.stats().await.grants_revoked, 0);
    // The grant is alive: the last refresh token still refreshes.
    let forced = session.force_refresh().await.unwrap();
    assert!(active(&op, forced.access_token()).await);
    let stats = op.stats().await;
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
}

/// Eight sessions on one FileStore stand for eight processes on one machine sharing one rotating
/// refresh token: one refresh per window, no reuse (the same test runs against django-oauth-toolkit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_sessions_sharing_a_file_store_refresh_once_per_window_without_reuse() {
    let op = ThirdParty::start(Peer::OidcProvider, 2);
    sessions_sharing_a_file_store_refresh_once_per_window(&op, 8, 3).await;
    let ThirdParty::OidcProvider(op) = op else { unreachable!() };
    assert_eq!(op.stats().await.grants_revoked, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_callers_on_an_expired_session_make_one_refresh_request() {
    let op = provider(2);
    let session = session("herd", alice(&op));
    let first = session.authorization_header().await.unwrap();
    sleep_past(first.expires_at()).await; // expired, not merely due
    op.reset_stats().await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.authorization_header().await.map(|h| h.access_token().clone()) })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().unwrap().expose_secret().to_owned());
    }
    let stats = op.stats().await;
    assert_eq!(stats.grant_type("refresh_token"), 1, "{stats:?}");
    assert_eq!(stats.token_requests, 1, "{stats:?}");
    assert_eq!(stats.refresh_token_reuses, 0);
    assert_eq!(tokens.len(), 1, "every caller got the same fresh token");
    assert!(!tokens.contains(first.access_token().expose_secret()));
    assert!(active(&op, &Secret::new(tokens.into_iter().next().unwrap())).await);
}

#[tokio::test]
async fn logout_revokes_at_the_discovered_revocation_endpoint_and_clears_the_store() {
    let op = provider(60);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let session = Session::builder("bye", alice(&op)).store(store.clone()).build();
    let tokens = session.tokens().await.unwrap();
    let refresh = tokens.refresh_token.clone().unwrap();
    assert!(active(&op, &tokens.access_token).await && active(&op, &refresh).await);
    assert!(store.load("bye").await.unwrap().is_some());

    let outcome = session.logout().await.unwrap();
    assert!(outcome.revoked && outcome.had_tokens, "{outcome:?}");
    assert!(outcome.revocation_error.is_none(), "{outcome:?}");
    let stats = op.stats().await;
    assert_eq!(stats.revocations, 1, "{stats:?}");
    assert!(!active(&op, &refresh).await, "the refresh token is revoked");
    assert!(!active(&op, &tokens.access_token).await, "revoking the refresh token revokes its grant");
    assert!(store.load("bye").await.unwrap().is_none(), "store cleared");
    assert!(session.cached_header().is_none());

    let again = session.logout().await.unwrap();
    assert!(!again.had_tokens && !again.revoked, "{again:?}");
    assert_eq!(op.stats().await.revocations, 1, "nothing left to revoke");

    // Logging in afterwards starts a new grant.
    let fresh = session.authorization_header().await.unwrap();
    assert!(active(&op, fresh.access_token()).await);
}

#[tokio::test]
async fn force_refresh_gets_a_new_token_with_exactly_one_request() {
    let op = provider(60);
    let store = Arc::new(MemoryStore::new());
    let session = Session::builder("forced", alice(&op)).store(store.clone()).build();
    let rejected = session.authorization_header().await.unwrap();
    op.reset_stats().await;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.force_refresh().await })
        })
        .collect();
    let mut fresh = HashSet::new();
    for task in tasks {
        let header = task.await.unwrap().unwrap();
        assert_ne!(header.access_token(), rejected.access_token());
        fresh.insert(header.access_token().expose_secret().to_owned());
    }
    let stats = op.stats().await;
    assert_eq!((stats.token_requests, stats.grant_type("refresh_token")), (1, 1), "{stats:?}");
    assert_eq!(fresh.len(), 1, "callers that saw the same rejected token share one refresh");

    let header = session.cached_header().expect("the new token is cached");
    assert!(active(&op, header.access_token()).await);
    assert!(!active(&op, rejected.tokens().refresh_token.as_ref().unwrap()).await, "rotated away");
    assert_eq!(store.load("forced").await.unwrap().as_ref(), Some(header.tokens()), "saved");
    assert_eq!(op.stats().await.refresh_token_reuses, 0);
}
