//! # tessera-core: the sans-I/O heart of tessera
//!
//! This crate owns the token model ([`TokenSet`]), the OAuth 2.0 wire protocol (request builders and
//! response parsers), one state machine per grant, and the [`Engine`] that decides which of them runs.
//!
//! It must never do I/O: no sockets, no files, no clock, no async runtime. Time is a parameter
//! ([`Timestamp`]), HTTP is data ([`HttpRequest`] out, [`HttpResponse`] in). That is what makes every
//! grant testable byte-for-byte without a server, every parser fuzzable, and the whole core bindable
//! to any runtime or language.
//!
//! ```
//! use std::time::Duration;
//! use tessera_core::{Action, ClientAuth, Endpoints, Engine, Grant, HttpResponse, ProviderConfig, Secret, Timestamp, Event};
//!
//! let mut engine = Engine::default();
//! engine.register("svc", ProviderConfig {
//!     client: ClientAuth::basic("my-client", Secret::new("my-secret")),
//!     endpoints: Endpoints::explicit("https://idp.example/token"),
//!     scope: Some("api:read".into()),
//!     grant: Grant::ClientCredentials,
//! });
//! let now = Timestamp::from_unix_secs(1_700_000_000);
//! let actions = engine.ensure("svc", now);
//! let Action::Send(request) = &actions[0] else { panic!("expected a request") };
//! assert_eq!(request.url, "https://idp.example/token");
//!
//! // ... the runtime sends it and feeds the answer back:
//! let response = HttpResponse::json(request.id, 200, r#"{"access_token":"abc","token_type":"Bearer","expires_in":300}"#);
//! let actions = engine.handle(Event::Response(response), now);
//! let Action::Done { tokens, .. } = &actions[0] else { panic!("expected tokens") };
//! assert_eq!(tokens.expires_at, Some(now + Duration::from_secs(300)));
//! assert!(engine.ensure("svc", now).is_empty()); // cached and valid
//! ```

pub mod chain;
mod client_auth;
pub mod dpop;
mod engine;
mod error;
pub mod flow;
mod http;
pub mod json;
mod jws;
pub mod protocol;
mod provider;
pub mod provider_spec;
mod secret;
mod time;
mod token;

pub use client_auth::{
    ASSERTION_ALGS, ASSERTION_LIFETIME_SECS, AssertionInputs, ClientAssertionKey, ClientAuth, ClientAuthMethod,
    JWT_BEARER_ASSERTION_TYPE,
};
pub use dpop::{DpopInputs, DpopProver, DpopSettings};
pub use engine::{Action, DropReason, Engine, EngineSettings, Entropy, Event};
pub use error::{Error, MAX_MESSAGE_LEN, MetadataProblem, OAuthErrorCode, StoreErrorKind, TransportErrorKind};
pub use flow::{
    CodeChannel, CognitoAuthFlow, CustomGrant, Flow, FlowContext, FlowFactory, FlowPurpose, FlowStep, Grant,
    LoginInputs, Prompt, TotpSource,
};
pub use http::{HttpRequest, HttpResponse, Method, RequestId};
pub use protocol::ProviderMetadata;
pub use provider::{Endpoints, ProviderConfig};
pub use secret::Secret;
pub use time::Timestamp;
pub use token::{StoredClient, TokenSet, is_expired, is_near_expiry};
