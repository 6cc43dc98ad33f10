//! A refresh whose answer is lost, against oidc-provider (rotation with reuse detection: a spent
//! refresh token presented again revokes the whole grant). A proxy forwards the refresh, lets the
//! server rotate, and closes the connection without a byte of the answer (`ProxyFault::DropAnswer`).
//!
//! tessera never presents that refresh token again: zero reuse detections afterwards; the password
//! grant logs in again once; the refresh-token grant raises `ReauthenticationRequired` once and
//! sends nothing more. See docs/refresh-protocol.md, "When the answer is lost".

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::fault_proxy::{FaultProxy, ProxyFault};
use support::oidc_provider::*;
use tessera::clock::{ManualClock, system_now};
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret, Session};

/// Past the 60-s access token's expiry, on the session's clock (the server's stays put).
const PAST_EXPIRY: Duration = Duration::from_secs(61);

struct Setup {
    op: OidcProvider,
    proxy: FaultProxy,
    token_path: String,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let op = OidcProvider::start(OidcProviderOptions { access_ttl_secs: 60, ..OidcProviderOptions::default() });
    let proxy = FaultProxy::start(op.issuer());
    let token_path = url::Url::parse(&op.token_endpoint()).unwrap().path().to_owned();
    Setup { op, proxy, token_path, dir: tempfile::tempdir().unwrap() }
}

impl Setup {
    /// alice's client, the token endpoint through the proxy.
    fn config(&self, grant: Grant) -> ProviderConfig {
        ProviderConfig {
            client: ClientAuth::basic(CONFIDENTIAL_CLIENT_ID, Secret::new(CONFIDENTIAL_CLIENT_SECRET)),
            endpoints: Endpoints::Explicit {
                token_endpoint: self.proxy.url_for(&self.op.token_endpoint()),
                revocation_endpoint: None,
            },
            scope: Some("openid api:read".into()),
            grant,
        }
    }

    fn session(&self, key: &str, grant: Grant, clock: Arc<ManualClock>) -> (Session, Arc<FileStore>) {
        let store = Arc::new(FileStore::new(self.dir.path().join("tokens")));
        let session = Session::builder(key, self.config(grant)).store(store.clone()).clock(clock).build();
        (session, store)
    }

    fn token_requests(&self) -> u64 {
        self.proxy.requests(&self.token_path)
    }
}

fn alice() -> Grant {
    Grant::Password { username: ALICE.into(), password: Secret::new(ALICE_PASSWORD), totp: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_answer_makes_a_password_grant_log_in_once_and_no_reuse() {
    let setup = setup();
    let clock = Arc::new(ManualClock::new(system_now()));
    let (session, store) = setup.session("lost/password", alice(), clock.clone());
    let first = session.tokens().await.unwrap();
    let spent = first.refresh_token.clone().expect("oidc-provider issues refresh tokens");
    setup.op.reset_stats().await;

    clock.advance(PAST_EXPIRY);
    setup.proxy.fail_next(&setup.token_path, ProxyFault::DropAnswer, 1);
    let header = session.authorization_header().await.expect("a new login replaces the lost refresh");
    assert_ne!(header.access_token(), &first.access_token);
    let stats = setup.op.stats().await;
    assert_eq!(
        (stats.grant_type("refresh_token"), stats.grant_type("password")),
        (1, 1),
        "the refresh (processed, answer lost), then one login: {stats:?}"
    );
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
    let stored = store.load("lost/password").await.unwrap().unwrap();
    assert_ne!(stored.refresh_token.as_ref(), Some(&spent), "the spent token left the store");
    let ledger = std::fs::read_to_string(setup.dir.path().join("tokens/spent-refresh-tokens.json")).unwrap();
    assert!(ledger.contains(&spent.fingerprint()) && !ledger.contains(spent.expose_secret()), "{ledger}");

    // The next expiry refreshes with the new login's refresh token: the grant is alive.
    clock.advance(PAST_EXPIRY);
    session.authorization_header().await.expect("refreshed");
    let stats = setup.op.stats().await;
    assert_eq!(stats.grant_type("refresh_token"), 2, "{stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_answer_makes_a_refresh_token_grant_ask_for_a_login_once_and_send_nothing_more() {
    let setup = setup();
    let seed = {
        let clock = Arc::new(ManualClock::new(system_now()));
        let (seeder, _) = setup.session("lost/seed", alice(), clock);
        seeder.tokens().await.unwrap().refresh_token.expect("a refresh token to configure")
    };
    let clock = Arc::new(ManualClock::new(system_now()));
    let grant = Grant::RefreshToken { refresh_token: seed.clone() };
    let (session, store) = setup.session("lost/refresh", grant, clock.clone());
    let first = session.tokens().await.unwrap(); // presents the configured token: rotated
    let rotated = first.refresh_token.clone().unwrap();
    assert_ne!(rotated, seed, "oidc-provider rotates");
    setup.op.reset_stats().await;
    let before = setup.token_requests();

    clock.advance(PAST_EXPIRY);
    setup.proxy.fail_next(&setup.token_path, ProxyFault::DropAnswer, 1);
    let error = session.authorization_header().await.unwrap_err();
    assert!(error.requires_reauthentication() && !error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("answer to a refresh was lost"), "{error}");
    assert!(!error.to_string().contains(rotated.expose_secret()), "{error}");
    assert_eq!(setup.token_requests() - before, 1, "one refresh, no retry");

    // Nothing more is sent: neither the spent token nor the configured one, however often asked.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(30));
        let again = session.authorization_header().await.unwrap_err();
        assert!(again.requires_reauthentication(), "{again:?}");
        assert!(session.force_refresh().await.unwrap_err().requires_reauthentication());
    }
    assert_eq!(setup.token_requests() - before, 1, "nothing sent after the lost answer");
    // A new process on the same store (and ledger) sends nothing either.
    let (fresh, _) = setup.session("lost/refresh", Grant::RefreshToken { refresh_token: seed.clone() }, clock);
    let error = fresh.authorization_header().await.unwrap_err();
    assert!(error.to_string().contains("spent"), "{error}");
    assert_eq!(setup.token_requests() - before, 1, "nothing sent by a new process");

    let stats = setup.op.stats().await;
    assert_eq!(stats.grant_type("refresh_token"), 1, "{stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "no reuse, grant alive: {stats:?}");
    let stored = store.load("lost/refresh").await.unwrap().unwrap();
    assert_eq!(stored.refresh_token, None, "the maybe-spent token left the store");
}
