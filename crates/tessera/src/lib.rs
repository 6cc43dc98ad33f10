//! # tessera: token lifecycle for API clients
//!
//! Obtains, caches, refreshes, persists and revokes OAuth 2.0 credentials, correctly under
//! concurrency (many tasks, many processes sharing one rotating refresh token) and fast on the
//! hot path.
//!
//! ```no_run
//! # async fn example() -> Result<(), tessera::Error> {
//! use std::sync::Arc;
//! use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Secret, Session, store::FileStore};
//!
//! let session = Session::builder("my-api", ProviderConfig {
//!     client: ClientAuth::basic("my-client", Secret::new("my-secret")),
//!     endpoints: Endpoints::discover("https://idp.example.com"),
//!     scope: Some("api:read".into()),
//!     grant: Grant::ClientCredentials,
//! })
//! .store(Arc::new(FileStore::new("/var/lib/my-app/tokens"))) // default: in memory
//! .build();
//!
//! let header = session.authorization_header().await?; // cached; refreshed once when due
//! // request.header("authorization", header.to_header_value())
//! // after a 401: session.force_refresh().await?;
//! # Ok(()) }
//! ```
//!
//! The library never touches the filesystem or the network unless asked: the default store is
//! [`store::MemoryStore`], and nothing is sent until a token is needed.

pub mod api_keys;
mod auth_client;
pub mod browser;
pub mod chain;
pub mod clock;
pub mod config;
mod dpop;
pub mod keyring;
mod local_cache;
mod local_file;
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub mod middleware;
pub mod policy;
pub mod prompt;
pub mod provider;
mod refresh_cell;
pub mod registry;
pub mod resource;
mod session;
mod spent;
pub mod store;
pub mod transport;
mod workload_identity;

pub use auth_client::{AuthClient, ProviderInfo};
pub use dpop::{RequestAuth, dpop_proof_for};
pub use resource::{DiscoveredResource, ResourceLogin, discover_resource};
pub use session::{AuthorizationHeader, LogoutOutcome, RefreshReason, Session, SessionBuilder, SessionSettings};
pub use spent::SpentRefreshTokens;
pub use tessera_core::{
    self as core, ClientAuth, ClientAuthMethod, DpopSettings, DropReason, Endpoints, Error, Grant, MetadataProblem,
    OAuthErrorCode, Prompt, ProviderConfig, Secret, StoreErrorKind, StoredClient, Timestamp, TokenSet, TotpSource,
    TransportErrorKind, is_expired, is_near_expiry,
};

/// The Rust examples of docs/mtls.md, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/mtls.md")]
pub struct MtlsDocExamples;

/// The Rust example of docs/resource-login.md, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/resource-login.md")]
pub struct ResourceLoginDocExamples;
