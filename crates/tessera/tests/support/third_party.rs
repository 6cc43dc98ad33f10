//! The third-party authorization servers behind one face, for the tests that run the same
//! scenario against each (the fault matrix's refresh rows, the fleet): oidc-provider
//! (`interop/oidc-provider`) and django-oauth-toolkit (`interop/django-oauth-toolkit`). Both rotate
//! refresh tokens and revoke the grant when a rotated one is presented again.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret, Session, Timestamp};

use super::access_tokens_at_once;
use super::django_oauth_toolkit::{self as dot, DjangoOauthToolkit, DotOptions, RefreshTokenState};
use super::oidc_provider::{self as op, OidcProvider, OidcProviderOptions};

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// panva's oidc-provider 8.8.1.
    OidcProvider,
    /// django-oauth-toolkit 3.4.1, reuse protection on, no grace period.
    DjangoOauthToolkit,
}

/// A running third-party server.
pub enum ThirdParty {
    /// oidc-provider.
    OidcProvider(OidcProvider),
    /// django-oauth-toolkit.
    DjangoOauthToolkit(DjangoOauthToolkit),
}

/// The server's counters that the tests compare, whichever server it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// Token requests, successful or not.
    pub token_requests: u64,
    /// `grant_type=password` requests.
    pub password: u64,
    /// `grant_type=refresh_token` requests.
    pub refresh: u64,
    /// Rotated refresh tokens presented again (each revokes a grant).
    pub reuses: u64,
}

impl ThirdParty {
    /// Starts `peer` with this access token lifetime (refresh tokens live a day).
    pub fn start(peer: Peer, access_ttl_secs: u64) -> ThirdParty {
        match peer {
            Peer::OidcProvider => ThirdParty::OidcProvider(OidcProvider::start(OidcProviderOptions {
                access_ttl_secs,
                ..OidcProviderOptions::default()
            })),
            Peer::DjangoOauthToolkit => ThirdParty::DjangoOauthToolkit(DjangoOauthToolkit::start(DotOptions {
                access_ttl_secs,
                ..DotOptions::default()
            })),
        }
    }

    /// Which server this is.
    pub fn peer(&self) -> Peer {
        match self {
            ThirdParty::OidcProvider(_) => Peer::OidcProvider,
            ThirdParty::DjangoOauthToolkit(_) => Peer::DjangoOauthToolkit,
        }
    }

    /// The issuer (OIDC discovery at `<issuer>/.well-known/openid-configuration`).
    pub fn issuer(&self) -> String {
        match self {
            ThirdParty::OidcProvider(op) => op.issuer().to_owned(),
            ThirdParty::DjangoOauthToolkit(dot) => dot.issuer().to_owned(),
        }
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> String {
        match self {
            ThirdParty::OidcProvider(op) => op.token_endpoint(),
            ThirdParty::DjangoOauthToolkit(dot) => dot.token_endpoint(),
        }
    }

    /// The token endpoint's path (what a fault proxy matches).
    pub fn token_path(&self) -> &'static str {
        match self {
            ThirdParty::OidcProvider(_) => "/token",
            ThirdParty::DjangoOauthToolkit(dot) => dot.token_path(),
        }
    }

    /// A scope alice may ask for (no `openid`: no ID token to check).
    pub fn scope(&self) -> &'static str {
        match self {
            ThirdParty::OidcProvider(_) => "api:read",
            ThirdParty::DjangoOauthToolkit(_) => "read",
        }
    }

    /// `(client_id, client_secret, username, password)`: the confidential client (basic auth) and
    /// alice, the same names at both servers.
    pub fn credentials(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            ThirdParty::OidcProvider(_) => {
                (op::CONFIDENTIAL_CLIENT_ID, op::CONFIDENTIAL_CLIENT_SECRET, op::ALICE, op::ALICE_PASSWORD)
            }
            ThirdParty::DjangoOauthToolkit(_) => {
                (dot::CONFIDENTIAL_CLIENT_ID, dot::CONFIDENTIAL_CLIENT_SECRET, dot::ALICE, dot::ALICE_PASSWORD)
            }
        }
    }

    /// alice, password grant, the confidential client, endpoints as given.
    pub fn alice(&self, endpoints: Endpoints) -> ProviderConfig {
        let (client_id, client_secret, username, password) = self.credentials();
        ProviderConfig {
            client: ClientAuth::basic(client_id, Secret::new(client_secret)),
            endpoints,
            scope: Some(self.scope().into()),
            grant: Grant::Password { username: username.into(), password: Secret::new(password), totp: None },
        }
    }

    /// The server's counters now.
    pub async fn counts(&self) -> PeerCounts {
        match self {
            ThirdParty::OidcProvider(op) => {
                let stats = op.stats().await;
                PeerCounts {
                    token_requests: stats.token_requests,
                    password: stats.grant_type("password"),
                    refresh: stats.grant_type("refresh_token"),
                    reuses: stats.refresh_token_reuses,
                }
            }
            ThirdParty::DjangoOauthToolkit(dot) => {
                let stats = dot.stats().await;
                PeerCounts {
                    token_requests: stats.token_requests,
                    password: stats.grant_type("password"),
                    refresh: stats.grant_type("refresh_token"),
                    reuses: stats.refresh_token_reuses,
                }
            }
        }
    }

    /// Would this refresh token refresh now (not rotated away, not revoked)? Asked of the server
    /// without spending it.
    pub async fn refresh_token_alive(&self, refresh_token: &Secret) -> bool {
        match self {
            ThirdParty::OidcProvider(op) => op.introspect(refresh_token.expose_secret()).await["active"] == true,
            ThirdParty::DjangoOauthToolkit(dot) => {
                dot.refresh_token_state(refresh_token.expose_secret()).await == RefreshTokenState::Active
            }
        }
    }

    /// Redeems `refresh_token` directly at the server, as someone else holding a copy would: the
    /// caller's copy is then spent (rotated away). Panics unless the server answers 200.
    pub async fn spend(&self, refresh_token: &Secret) {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        let (status, body) = match self {
            ThirdParty::OidcProvider(op) => op.token_request(&form).await,
            ThirdParty::DjangoOauthToolkit(dot) => dot.token_request(&form).await,
        };
        assert_eq!(status, 200, "spending a refresh token at {:?}: {}", self.peer(), body["error"]);
    }
}

/// Sleeps until `expires_at` (as tessera saw it) has passed, plus a small margin.
pub async fn sleep_past(expires_at: Option<Timestamp>) {
    let expires_at = expires_at.expect("the server sends expires_in");
    let left = expires_at.duration_since(tessera::clock::system_now());
    assert!(left <= Duration::from_secs(5), "token lives {left:?}: longer than this test expects");
    tokio::time::sleep(left + Duration::from_millis(150)).await;
}

/// `count` sessions, each with its own cache and gate, share one FileStore: they stand for
/// `count` processes on one machine sharing one rotating refresh token (alice, endpoints by
/// discovery). For `rounds` expiry windows they all ask for a header at once, just past expiry:
/// one refresh per window, every session gets its token, no reuse, never a new login, the grant
/// alive at the end. Needs a server started with 2-s access tokens.
pub async fn sessions_sharing_a_file_store_refresh_once_per_window(server: &ThirdParty, count: usize, rounds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));
    let config = server.alice(Endpoints::discover(server.issuer()));
    let sessions: Vec<_> =
        (0..count).map(|_| Session::builder("dev/shared", config.clone()).store(store.clone()).build()).collect();
    let mut current = sessions[0].login().await.unwrap().tokens().clone();
    for round in 1..=rounds {
        sleep_past(current.expires_at).await;
        let access = access_tokens_at_once(&sessions).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(access.len(), 1, "round {round}: every session adopted the one refreshed token");
        let counts = server.counts().await;
        assert_eq!(counts.refresh, round, "round {round}: one refresh per window: {counts:?}");
        assert_eq!(counts.reuses, 0, "round {round}: {counts:?}");
        let stored = store.load("dev/shared").await.unwrap().expect("stored");
        assert!(access.contains(stored.access_token.expose_secret()), "round {round}: the store has it");
        assert_ne!(stored.refresh_token, current.refresh_token, "round {round}: rotated");
        current = stored;
    }
    let counts = server.counts().await;
    assert_eq!((counts.password, counts.reuses), (1, 0), "never fell back to a new login: {counts:?}");
    assert!(server.refresh_token_alive(current.refresh_token.as_ref().unwrap()).await, "the grant is alive");
}
