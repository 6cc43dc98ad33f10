//! `tessera-idp`: a reference OAuth 2.0 / OpenID Connect server for tessera's tests, demos and
//! quickstart. It runs in-process on a random loopback port (or as `tessera idp serve`) and
//! keeps all state in memory.
//!
//! What it speaks:
//!
//! - `GET /.well-known/openid-configuration` (also at RFC 8414's
//!   `/.well-known/oauth-authorization-server`) and `GET /jwks` (EdDSA key generated at start);
//! - `POST /token`: `password` (with a `totp` code for users who have a TOTP secret),
//!   `refresh_token` (rotation with reuse detection: presenting a rotated token revokes its
//!   whole family), `client_credentials`, `authorization_code`, the device code grant and the JWT
//!   bearer grant (RFC 7523, for the [`ServiceAccount`]s configured); client authentication by HTTP Basic, by
//!   `client_secret` in the body, or by `client_id` alone for public clients;
//! - `POST /revoke` (RFC 7009), `POST /introspect` (RFC 7662), `POST /register` (RFC 7591
//!   dynamic client registration, open);
//! - `GET /userinfo` and the protected resource `GET /api/whoami`;
//! - a protected demo resource `GET /api/resource` that publishes RFC 9728 metadata at
//!   `GET /.well-known/oauth-protected-resource/api/resource`, names it in its 401 challenge, and
//!   accepts only tokens whose `aud` is it (RFC 8707: a token request's `resource` becomes the
//!   token's `aud`), and a second one, `GET /api/files`, with the same rules (a refresh may ask
//!   for either: one login serves both);
//! - `GET`/`POST /authorize`: authorization code + PKCE S256 with a real HTML login page,
//!   loopback redirect URIs on any port (RFC 8252), `iss` in the response (RFC 9207);
//! - `POST /device_authorization` and the verification page `GET`/`POST /device` (RFC 8628);
//! - `POST /otp/start` + `POST /otp/verify`: email one-time-code login, codes land in an
//!   outbox ([`IdpServer::outbox`]);
//! - `POST /cognito`: a Cognito-compatible subset (`InitiateAuth`, `RespondToAuthChallenge`,
//!   `RevokeToken`) for `USER_PASSWORD_AUTH`, `EMAIL_OTP`, `CUSTOM_AUTH` and refresh;
//! - token chains: `POST /chain/discovery`, `GET /chain/domains`, `POST /chain/domains/{id}/access`,
//!   `GET /chain/domains/{id}/resource` (hooks on [`IdpServer::chain`]), and RFC 8693 token exchange
//!   at `POST /token`;
//! - fault injection per endpoint ([`FaultInjector`]) and counters ([`Stats`]) for tests, also
//!   reachable over HTTP under `/_test/*` when [`IdpConfig::test_endpoints`] is set.
//!
//! The full wire contract of every endpoint and test hook is in `docs/reference-idp.md`.
//!
//! Errors follow RFC 6749 §5.2: `{"error": "...", "error_description": "..."}`, status 400, or
//! 401 with `WWW-Authenticate` for `invalid_client` and for bad bearer tokens.
//!
//! ```no_run
//! use tessera_idp::{demo, Fault, FaultEndpoint, IdpConfig, IdpServer};
//!
//! # async fn f() -> Result<(), tessera_idp::IdpError> {
//! let server = IdpServer::start(IdpConfig::demo()).await?;
//! // POST server.url("/token") with grant_type=password, username=demo::ALICE_USERNAME, ...
//! server.faults().push(FaultEndpoint::Token, Fault::status(503, "try later"), 1);
//! assert_eq!(server.stats().token_requests, 0);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Never use it in production: passwords are stored in clear, TOTP codes may be replayed
//! within their window, and the signing key lives only as long as the process.

mod api_keys;
mod assertion;
mod authorize;
mod chain;
mod ci;
mod cognito;
mod config;
mod conn;
pub mod demo;
mod device;
mod faults;
mod handlers;
mod html;
mod jwt_bearer;
mod keys;
mod oauth;
mod otp;
mod outbox;
mod registration;
mod resource;
mod server;
mod stats;
mod store;
mod test_api;
pub mod test_proxy;
mod tls;

pub use chain::{ACCESS_TOKEN_TYPE, ChainControl, ChainDomain, TOKEN_EXCHANGE_GRANT_TYPE};
pub use config::{Client, IdpConfig, User, grant_types};
pub use device::DeviceHookError;
pub use faults::{Fault, FaultEndpoint, FaultInjector, FaultKind, FaultSpec};
pub use jwt_bearer::{JWT_BEARER_GRANT_TYPE, ServiceAccount};
pub use keys::AccessTokenClaims;
pub use outbox::OutboxMessage;
pub use resource::{FILES_PATH, RESOURCE_PATH, RESOURCE_SCOPE};
pub use server::{IdpError, IdpServer};
pub use stats::Stats;
pub use tls::{TestCa, TlsIdentity};
