//! [`AuthProvider`]: one configured way of authenticating (an OAuth grant, a static token, an API
//! key, ...), as the [`crate::AuthClient`] facade and the CLI see it.
//!
//! Every provider answers the required questions (name, description, status, a JSON
//! `auth_context`, a [`Credential`]). What it can *do* is optional and discovered without
//! downcasting: [`AuthProvider::as_login`], [`AuthProvider::as_refreshable`],
//! [`AuthProvider::as_http_headers`] and [`AuthProvider::as_token_source`] return `Some` when the
//! provider has that capability ([`AuthProvider::capabilities`] sums them up).
//!
//! Nothing here may put a secret in `Debug`, `Display`, an error or a log line.

mod api_key;
mod oauth;

pub use api_key::{ApiKeyProvider, DEFAULT_API_KEY_PREFIX, DEFAULT_API_KEY_REFERENCE};
pub use oauth::OAuthProvider;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tessera_core::{Error, Secret, Timestamp, TokenSet};

use crate::session::LogoutOutcome;

/// The state of a provider's credential, as [`crate::AuthClient::list_providers`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    /// A valid credential is at hand.
    Authenticated,
    /// There is a credential, past its expiry (a refresh may renew it).
    Expired,
    /// Configured, not logged in.
    Available,
    /// The provider cannot tell: its store or its configuration fails.
    Error,
}

impl ProviderStatus {
    /// `authenticated`, `expired`, `available` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Authenticated => "authenticated",
            ProviderStatus::Expired => "expired",
            ProviderStatus::Available => "available",
            ProviderStatus::Error => "error",
        }
    }
}

impl std::fmt::Display for ProviderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider can do beyond the required methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// [`AuthProvider::as_login`]: login and logout.
    pub login: bool,
    /// [`AuthProvider::as_refreshable`]: non-interactive refresh.
    pub refresh: bool,
    /// [`AuthProvider::as_http_headers`]: ready-made HTTP headers.
    pub http_headers: bool,
    /// [`AuthProvider::as_token_source`]: a raw (bearer) token.
    pub token: bool,
}

/// A username/password-style credential (e.g. HTTP Basic, an API key tied to a user). Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicCredential {
    /// The provider's name.
    pub name: String,
    /// Its status.
    pub status: ProviderStatus,
    /// Who is logged in, when known.
    pub username: Option<String>,
    /// When the login happened, when known.
    pub login_time: Option<Timestamp>,
    /// Where the credential comes from (e.g. `env:API_KEY`, `keyring`, `login`); never the value.
    pub auth_source: String,
}

/// An OAuth credential. `Debug` shows no token ([`Secret`] redacts itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthCredential {
    /// The provider's name.
    pub name: String,
    /// Its status.
    pub status: ProviderStatus,
    /// The OAuth client, when there is one.
    pub client_id: Option<String>,
    /// The current access token, when there is one.
    pub access_token: Option<Secret>,
    /// The current refresh token, when there is one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires, when known.
    pub expires_at: Option<Timestamp>,
    /// True when a new access token can be had without the user.
    pub allows_refresh: bool,
}

/// A provider's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// See [`BasicCredential`].
    Basic(BasicCredential),
    /// See [`OAuthCredential`].
    OAuth(OAuthCredential),
}

impl Credential {
    /// The provider's name.
    pub fn name(&self) -> &str {
        match self {
            Credential::Basic(c) => &c.name,
            Credential::OAuth(c) => &c.name,
        }
    }

    /// The credential's status.
    pub fn status(&self) -> ProviderStatus {
        match self {
            Credential::Basic(c) => c.status,
            Credential::OAuth(c) => c.status,
        }
    }

    /// When the credential expires, when known.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            Credential::Basic(_) => None,
            Credential::OAuth(c) => c.expires_at,
        }
    }
}

/// One configured way of authenticating. Implement it (and register a factory with
/// [`crate::registry::Registry::register_factory`]) to add a provider type.
///
/// ```
/// use std::sync::Arc;
/// use tessera::Error;
/// use tessera::provider::{AuthProvider, BasicCredential, Credential, ProviderStatus};
///
/// #[derive(Debug)]
/// struct Anonymous(String);
///
/// #[async_trait::async_trait]
/// impl AuthProvider for Anonymous {
///     fn name(&self) -> &str { &self.0 }
///     fn provider_type(&self) -> &str { "anonymous" }
///     fn description(&self) -> String { "no credentials at all".into() }
///     async fn is_authenticated(&self) -> Result<bool, Error> { Ok(true) }
///     fn auth_context(&self) -> serde_json::Value { serde_json::json!({ "type": "anonymous" }) }
///     async fn credential(&self) -> Result<Credential, Error> {
///         Ok(Credential::Basic(BasicCredential {
///             name: self.0.clone(), status: ProviderStatus::Authenticated,
///             username: None, login_time: None, auth_source: "none".into(),
///         }))
///     }
/// }
/// ```
#[async_trait]
pub trait AuthProvider: Send + Sync + std::fmt::Debug {
    /// Its name in its context.
    fn name(&self) -> &str;

    /// Its type, as written in `provider = "..."`.
    fn provider_type(&self) -> &str;

    /// One line for people (`password grant for alice at https://idp`). No secret.
    fn description(&self) -> String;

    /// True when a valid credential is at hand now (no network).
    async fn is_authenticated(&self) -> Result<bool, Error>;

    /// The status; by default derived from [`AuthProvider::is_authenticated`].
    async fn status(&self) -> Result<ProviderStatus, Error> {
        Ok(if self.is_authenticated().await? { ProviderStatus::Authenticated } else { ProviderStatus::Available })
    }

    /// What this provider authenticates against, as JSON (endpoints, client, user, scope). No secret.
    fn auth_context(&self) -> serde_json::Value;

    /// The current credential (no network).
    async fn credential(&self) -> Result<Credential, Error>;

    /// Display-only facts for listings (e.g. an account or a region). No secret.
    fn extra_info(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    /// Login and logout, when the provider has them.
    fn as_login(&self) -> Option<&dyn Login> {
        None
    }

    /// Non-interactive refresh, when the provider has it.
    fn as_refreshable(&self) -> Option<&dyn Refreshable> {
        None
    }

    /// Ready-made HTTP headers, when the provider has them.
    fn as_http_headers(&self) -> Option<&dyn HttpHeaders> {
        None
    }

    /// A raw bearer token, when the provider has one.
    fn as_token_source(&self) -> Option<&dyn TokenSource> {
        None
    }

    /// Which of the optional capabilities this provider has.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            login: self.as_login().is_some(),
            refresh: self.as_refreshable().is_some(),
            http_headers: self.as_http_headers().is_some(),
            token: self.as_token_source().is_some(),
        }
    }
}

/// Login and logout.
#[async_trait]
pub trait Login: Send + Sync {
    /// Logs in (may use the network) and keeps the credential.
    async fn login(&self) -> Result<(), Error>;

    /// Logs in with a token given by the caller (`tessera login --with-token`). By default refused.
    async fn login_with_token(&self, token: Secret) -> Result<(), Error> {
        drop(token);
        Err(Error::configuration("this provider does not accept a token (use a provider of type \"static\")"))
    }

    /// Logs out (revoking at the server when it can) and forgets the credential.
    async fn logout(&self) -> Result<LogoutOutcome, Error>;
}

/// Non-interactive refresh.
#[async_trait]
pub trait Refreshable: Send + Sync {
    /// True when a refresh can succeed without the user (a usable refresh token, or a grant that
    /// needs nobody).
    async fn can_refresh(&self) -> bool;

    /// Refreshes when due, or always with `force` (e.g. after a 401).
    async fn refresh(&self, force: bool) -> Result<(), Error>;
}

/// Ready-made HTTP headers.
#[async_trait]
pub trait HttpHeaders: Send + Sync {
    /// Header names and values (values are secrets), refreshed as needed.
    async fn headers(&self) -> Result<Vec<(String, Secret)>, Error>;
}

/// A raw bearer token.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token set whose access token stays valid at least `min_valid` from now when the server
    /// allows it (refreshing, or logging in again for grants that need nobody, when due).
    async fn token(&self, min_valid: Duration) -> Result<TokenSet, Error>;
}
