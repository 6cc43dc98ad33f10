//! Token chains, sans-I/O: a network login, a *discovery* token derived from it, and one access
//! token per *domain* derived from the discovery token.
//!
//! ```text
//! network login (an Engine key, any grant) ──► discovery stage ──► domain stage (per domain id)
//!                                              RFC 8693 exchange     RFC 8693 exchange or HTTP call,
//!                                              or HTTP call          cached per domain
//! ```
//!
//! This module owns what a chain *is*: its stages ([`Stage`]) and their pure request builders and
//! response parsers ([`stage_request`], [`parse_stage_response`], [`is_rejection`]), the domain-id
//! rule ([`check_domain_id`]), the refresh rule ([`ChainConfig::is_fresh`]), the exported state
//! ([`ChainState`]), and [`ChainMachine`]: the whole chain planned as actions and events. It must
//! never do I/O, read a clock or draw randomness (time is a parameter; jitter comes from the
//! [`crate::Engine`]). `tessera::chain::DomainClient` (async, concurrent, with stores) and the
//! JSON engine's `register_chain` / `domain_access` both use these pieces.

mod machine;
mod stage;
mod state;

use std::time::Duration;

use crate::Timestamp;
use crate::flow::RetrySettings;

pub use machine::{ChainAction, ChainMachine, ChainStage, Chains};
pub use stage::{
    DOMAIN_ID_PLACEHOLDER, DomainAccess, DomainServer, HttpCallStage, Stage, TokenExchangeStage, check_domain_id,
    is_rejection, parse_stage_response, stage_request,
};
pub use state::{CHAIN_STATE_VERSION, ChainState};

/// The stages below the network login, and when to refresh them.
///
/// ```
/// use std::time::Duration;
/// use tessera_core::chain::{ChainConfig, Stage};
///
/// let chain = ChainConfig::new(
///     Stage::http_post("https://api.example/discovery"),
///     Stage::http_post("https://api.example/domains/{domain_id}/access"),
/// )
/// .refresh_threshold(Duration::from_secs(60));
/// assert_eq!(chain.refresh_threshold, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Derives the discovery token from the network access token.
    pub discovery: Stage,
    /// Derives a domain's access token from the discovery token (`{domain_id}` is replaced).
    pub domain: Stage,
    /// Re-derive a stage's token this long before it expires (capped at half its lifetime).
    /// Default 30 s.
    pub refresh_threshold: Duration,
    /// How a stage's request is retried after a transient failure (5xx, 429, 408, timeouts,
    /// resets), with `Retry-After` honoured. Deriving a token redeems nothing (the bearer stays
    /// valid for the next derivation), so every transient failure is safe to retry. Default: the
    /// login retries (3 attempts, 200 ms doubling, × [0.5, 1.5) jitter).
    pub retry: RetrySettings,
}

impl ChainConfig {
    /// A chain with these stages, a 30 s refresh threshold and the default retries.
    pub fn new(discovery: Stage, domain: Stage) -> Self {
        ChainConfig { discovery, domain, refresh_threshold: Duration::from_secs(30), retry: RetrySettings::default() }
    }

    /// Sets the retries of a stage's request (`max_attempts: 1`: never retried).
    pub fn retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the refresh threshold.
    pub fn refresh_threshold(mut self, threshold: Duration) -> Self {
        self.refresh_threshold = threshold;
        self
    }

    /// True when a stage's token issued at `issued_at` and expiring at `expires_at` is further
    /// from expiry than the refresh threshold (capped at half its lifetime): serve it, derive
    /// nothing. A token without expiry is always fresh.
    pub fn is_fresh(&self, expires_at: Option<Timestamp>, issued_at: Timestamp, now: Timestamp) -> bool {
        let Some(expires_at) = expires_at else { return true };
        let window = self.refresh_threshold.min(expires_at.duration_since(issued_at) / 2);
        now + window < expires_at
    }
}
