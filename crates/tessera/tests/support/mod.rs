//! Shared test support: the in-process reference IdP and provider configurations for it.
#![allow(dead_code)]

pub mod chain;
pub mod django_oauth_toolkit;
pub mod fault_proxy;
pub mod faults;
pub mod http_browser;
pub mod logs;
pub mod oidc_provider;
pub mod peer_process;
pub mod third_party;

use std::sync::Arc;
use std::time::Duration;

use tessera::store::{MemoryStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret, Session, TotpSource};
use tessera_idp::{IdpConfig, IdpServer, demo};

/// Starts the reference IdP with the demo users and clients and the given access token lifetime.
pub async fn idp(access_ttl: Duration) -> IdpServer {
    IdpServer::start(IdpConfig { access_token_ttl: access_ttl, ..IdpConfig::demo() }).await.expect("IdP starts")
}

pub fn confidential_client() -> ClientAuth {
    ClientAuth::basic(demo::CONFIDENTIAL_CLIENT_ID, Secret::new(demo::CONFIDENTIAL_CLIENT_SECRET))
}

pub fn alice(issuer: &str) -> ProviderConfig {
    ProviderConfig {
        client: confidential_client(),
        endpoints: Endpoints::discover(issuer),
        scope: Some("openid api:read".into()),
        grant: Grant::Password {
            username: demo::ALICE_USERNAME.into(),
            password: Secret::new(demo::ALICE_PASSWORD),
            totp: None,
        },
    }
}

pub fn bob(issuer: &str) -> ProviderConfig {
    ProviderConfig {
        grant: Grant::Password {
            username: demo::BOB_USERNAME.into(),
            password: Secret::new(demo::BOB_PASSWORD),
            totp: Some(TotpSource::Secret(Secret::new(demo::BOB_TOTP_SECRET))),
        },
        ..alice(issuer)
    }
}

pub fn machine(issuer: &str) -> ProviderConfig {
    ProviderConfig { grant: Grant::ClientCredentials, ..alice(issuer) }
}

pub fn session(key: &str, config: ProviderConfig) -> Session {
    Session::builder(key, config).build()
}

pub fn session_with_store(key: &str, config: ProviderConfig, store: Arc<dyn TokenStore>) -> Session {
    Session::builder(key, config).store(store).build()
}

pub fn memory() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

/// RFC 7662 introspection at the reference IdP: is this token active?
pub async fn introspect(server: &IdpServer, token: &str) -> bool {
    introspection(server, token).await["active"].as_bool().expect("active is a bool")
}

/// RFC 7662 introspection at the reference IdP: the whole answer.
pub async fn introspection(server: &IdpServer, token: &str) -> serde_json::Value {
    let response = http_client()
        .post(server.url("/introspect"))
        .basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspection answers");
    response.json().await.expect("introspection is JSON")
}

/// `GET /api/whoami` with the given Authorization header value: the HTTP status.
pub async fn whoami(server: &IdpServer, authorization: &str) -> u16 {
    http_client()
        .get(server.url("/api/whoami"))
        .header("authorization", authorization)
        .send()
        .await
        .expect("whoami answers")
        .status()
        .as_u16()
}

pub fn http_client() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder().no_proxy().build().expect("client builds")
}

/// oidc-provider for device-code tests, polling interval 1 s.
pub fn device_provider(access_ttl_secs: u64) -> Arc<oidc_provider::OidcProvider> {
    Arc::new(oidc_provider::OidcProvider::start(oidc_provider::OidcProviderOptions {
        access_ttl_secs,
        device_interval_secs: 1,
        ..oidc_provider::OidcProviderOptions::default()
    }))
}

/// oidc-provider's public device client, endpoints (including the device authorization endpoint)
/// by discovery. `offline_access` makes oidc-provider issue a refresh token.
pub fn device_config(op: &oidc_provider::OidcProvider) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(oidc_provider::DEVICE_CLIENT_ID),
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid offline_access api:read".into()),
        grant: Grant::DeviceCode { device_authorization_endpoint: None },
    }
}

/// Every session asks for a header at the same moment; returns the distinct access tokens they got
/// (one, when they share a store and a single refresh served them all).
pub async fn access_tokens_at_once(sessions: &[Session]) -> Result<std::collections::HashSet<String>, tessera::Error> {
    let tasks: Vec<_> = sessions
        .iter()
        .cloned()
        .map(|s| tokio::spawn(async move { s.authorization_header().await.map(|h| h.tokens().clone()) }))
        .collect();
    let mut access = std::collections::HashSet::new();
    for task in tasks {
        let tokens = task.await.expect("the task does not panic")?;
        access.insert(tokens.access_token.expose_secret().to_owned());
    }
    Ok(access)
}
