//! Request counters that tests assert on ("exactly one token request"). Owns [`Stats`] and the
//! shared counter behind [`IdpServer::stats`](crate::IdpServer::stats).
//!
//! Request counters are bumped before fault injection and before any parsing, so a request
//! answered by a fault, or rejected as malformed, is still counted.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A snapshot of the server's counters since start (or the last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Requests that reached `POST /token`, whatever their outcome (faults included).
    pub token_requests: u64,
    /// Token responses issued by the password grant.
    pub password_grants: u64,
    /// Token responses issued by the refresh_token grant.
    pub refresh_grants: u64,
    /// Token responses issued by the client_credentials grant.
    pub client_credentials_grants: u64,
    /// `/token` requests answered with an OAuth error (not counting injected faults).
    pub failed_token_requests: u64,
    /// Requests that reached `POST /revoke`.
    pub revocations: u64,
    /// Requests that reached `POST /introspect`.
    pub introspections: u64,
    /// Times an already-rotated refresh token was presented (each one revoked its family).
    pub refresh_token_reuse_detected: u64,
    /// Requests that reached a metadata document: `GET /.well-known/openid-configuration`,
    /// `/.well-known/oauth-authorization-server` or the demo resource's RFC 9728 metadata.
    pub discovery_requests: u64,
    /// Requests that reached `POST /register`, whatever their outcome.
    pub registration_requests: u64,
    /// Clients registered at `POST /register` (RFC 7591).
    pub client_registrations: u64,
    /// Requests that reached `GET /jwks`.
    pub jwks_requests: u64,
    /// Requests that reached `GET /userinfo` or `GET /api/whoami`.
    pub api_requests: u64,
    /// Requests that reached `GET /authorize` or `POST /authorize` (and the `/device` pages).
    pub authorize_requests: u64,
    /// Token responses issued by the authorization_code grant.
    pub authorization_code_grants: u64,
    /// Requests that reached `POST /device_authorization`.
    pub device_authorization_requests: u64,
    /// Token responses issued by the device_code grant.
    pub device_code_grants: u64,
    /// Requests that reached `POST /otp/start` or `POST /otp/verify`.
    pub otp_requests: u64,
    /// Successful `/otp/verify` logins.
    pub otp_logins: u64,
    /// Requests that reached `POST /cognito`.
    pub cognito_requests: u64,
    /// Cognito logins that returned an `AuthenticationResult` (password or answered challenge).
    pub cognito_logins: u64,
    /// Cognito `REFRESH_TOKEN_AUTH` refreshes.
    pub cognito_refreshes: u64,
    /// Token responses issued by RFC 8693 token exchange.
    pub token_exchange_grants: u64,
    /// Token responses issued by the JWT bearer grant (RFC 7523 §2.1).
    pub jwt_bearer_grants: u64,
    /// Requests that reached `GET /ci/github-actions/token` (the GitHub-Actions-style endpoint).
    pub ci_token_requests: u64,
    /// Requests that reached `POST /chain/discovery`.
    pub chain_discovery_requests: u64,
    /// Requests that reached `GET /chain/domains`.
    pub chain_domain_list_requests: u64,
    /// Requests that reached `POST /chain/domains/{id}/access`.
    pub chain_domain_access_requests: u64,
    /// Requests that reached `GET /chain/domains/{id}/resource`.
    pub chain_resource_requests: u64,
    /// Requests that a queued fault was applied to (a delay-only fault included).
    pub faults_injected: u64,
}

/// The live counters. A mutex around a plain struct: nothing awaits while it is held.
#[derive(Debug, Default)]
pub(crate) struct StatsCell(Mutex<Stats>);

impl StatsCell {
    pub(crate) fn update(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn reset(&self) {
        self.update(|s| *s = Stats::default());
    }
}
