//! The third-party authorization servers behind one face, for the tests that run the same
//! scenario against each (the fault matrix's refresh rows, the fleet): oidc-provider
//! (`interop/oidc-provider`) and django-oauth-toolkit (`interop/django-oauth-toolkit`). Both rotate
//! refresh tokens and revoke the grant when a rotated one is presented again.
#![allow(dead_code)]

use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret};

use super::django_oauth_toolkit::{self as dot, DjangoOauthToolkit, DotOptions, RefreshTokenState};
use super::oidc_provider::{self as op, OidcProvider, OidcProviderOptions};

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
