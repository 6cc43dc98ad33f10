//! The one seam between the [`crate::Engine`] and every flow: built-in (token requests, device
//! code, RFC 7009 revocation, static tokens, browser, email OTP, Cognito) and custom alike. A grant
//! returns a [`Flow`] per [`FlowPurpose`] ([`super::Grant::flow`]); the engine feeds it events and
//! turns the [`FlowStep`]s it returns into [`crate::Action`]s, in one place. A flow owns its state,
//! its requests and its retry rules; what happens after it ends (caching the tokens, the rule for a
//! rejected refresh token, dropping the tokens at logout) is the engine's.

use std::fmt;

use crate::{EngineSettings, Error, HttpRequest, HttpResponse, ProviderConfig, ProviderMetadata, RequestId, Timestamp};
use crate::{TokenSet, flow::Prompt};

/// What a flow is started for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowPurpose {
    /// A login (explicit, or unattended when the grant allows it).
    Login,
    /// Renewing the tokens in [`FlowContext::tokens`] without a person.
    Refresh,
    /// Revoking the tokens in [`FlowContext::tokens`] at logout.
    Revoke,
}

/// What a flow can read about its provider.
#[derive(Clone, Copy, Debug)]
pub struct FlowContext<'a> {
    /// The provider.
    pub config: &'a ProviderConfig,
    /// Discovered metadata, when the provider is configured by issuer.
    pub metadata: Option<&'a ProviderMetadata>,
    /// The tokens held now (what a refresh renews or a logout revokes).
    pub tokens: Option<&'a TokenSet>,
    /// Engine settings (retry limits, refresh skew).
    pub settings: &'a EngineSettings,
    /// A fresh number in `[0, 1)` from the engine's seeded generator, to spread retry delays
    /// ([`super::RetrySettings::delay_before_retry`]): the core has no randomness of its own.
    pub jitter: f64,
    /// 128 fresh random bits for a client assertion's `jti` in a request sent in this step
    /// (from [`crate::EngineSettings::entropy`]); `None` when the driver gave no entropy.
    pub assertion_id: Option<[u8; 16]>,
    /// The DPoP key in use and the token endpoint's last nonce, when the provider uses DPoP
    /// ([`crate::ClientAuth::dpop`]): token requests then carry a proof.
    pub dpop: Option<crate::DpopInputs<'a>>,
    /// RFC 8707 resource indicators ([`crate::Engine::set_resources`]): a login's authorization
    /// (or device authorization) request names every one; token requests ask for the first.
    /// Empty: no `resource` parameter anywhere.
    pub resources: &'a [String],
}

impl FlowContext<'_> {
    /// The resource a token request asks for (RFC 8707 §2.2), when any.
    pub fn token_resource(&self) -> Option<&str> {
        self.resources.first().map(String::as_str)
    }
}

impl FlowContext<'_> {
    /// The token endpoint: explicit, or from discovery (its RFC 8705 `mtls_endpoint_aliases` entry
    /// for a client that authenticates with its TLS certificate).
    pub fn token_endpoint(&self) -> Option<&str> {
        match (&self.config.endpoints, self.metadata) {
            (crate::Endpoints::Explicit { token_endpoint, .. }, _) => Some(token_endpoint),
            (crate::Endpoints::Discover { .. }, Some(metadata)) => {
                Some(self.mtls_alias(metadata, "token_endpoint").unwrap_or(&metadata.token_endpoint))
            }
            (crate::Endpoints::Discover { .. }, None) => None,
        }
    }

    /// The RFC 7009 revocation endpoint: explicit, or from discovery (or its mTLS alias, as for
    /// [`FlowContext::token_endpoint`]); `None` when the server has none.
    pub fn revocation_endpoint(&self) -> Option<&str> {
        match (&self.config.endpoints, self.metadata) {
            (crate::Endpoints::Explicit { revocation_endpoint, .. }, _) => revocation_endpoint.as_deref(),
            (crate::Endpoints::Discover { .. }, Some(metadata)) => {
                self.mtls_alias(metadata, "revocation_endpoint").or(metadata.revocation_endpoint.as_deref())
            }
            (crate::Endpoints::Discover { .. }, None) => None,
        }
    }

    /// RFC 8705 §5: a client that authenticates with its certificate sends its requests to the
    /// endpoints the server lists for that (where it asks for the certificate), when it lists them.
    pub(crate) fn mtls_alias<'m>(&self, metadata: &'m ProviderMetadata, name: &str) -> Option<&'m str> {
        self.config.client.method.uses_certificate().then(|| metadata.mtls_alias(name)).flatten()
    }

    /// What a request built in this step needs for a client assertion: `now`, this step's random
    /// `jti`, and the token endpoint as audience (RFC 7523 §3; oidc-provider, Keycloak and Okta
    /// accept it at every endpoint that authenticates clients).
    pub fn assertion_inputs(&self, now: Timestamp) -> crate::AssertionInputs<'_> {
        crate::AssertionInputs {
            now,
            jti: self.assertion_id,
            audience: self.token_endpoint().unwrap_or_default(),
            dpop: self.dpop,
        }
    }

    /// [`FlowContext::token_endpoint`], or an internal error: the engine discovers before it starts
    /// a flow that needs endpoints, so a missing one is a bug, not a configuration to fix.
    pub(crate) fn require_token_endpoint(&self) -> Result<&str, Error> {
        self.token_endpoint().ok_or_else(|| Error::internal("no token endpoint: the flow started before discovery"))
    }
}

/// One step of a flow; several may come at once (e.g. a prompt then a wait). `Done`, `Revoked`,
/// `NotRevoked` and `Failed` end the flow: steps after them are ignored.
#[derive(Debug)]
pub enum FlowStep {
    /// Send this request; its id must be the `request_id` the engine passed in.
    Send(HttpRequest),
    /// Call back with [`Flow::on_timer`] at this instant.
    Wait(Timestamp),
    /// Show this to a person; when [`Prompt::expects_answer`], the answer comes to [`Flow::on_answer`].
    Prompt(Prompt),
    /// Finished with these tokens (login and refresh).
    Done(TokenSet),
    /// Finished revoking (logout).
    Revoked,
    /// Finished a logout without revoking, and without an error: the server has no revocation
    /// endpoint, or nothing was held to revoke. The tokens are dropped all the same.
    NotRevoked,
    /// Finished with this error.
    Failed(Error),
}

/// A login, refresh or revocation conversation, as a state machine. Each method gets a fresh
/// `request_id` to use if it sends a request (a request under any other id fails the flow with
/// [`Error::Internal`]), and returns what the runtime must do next. After a final step (`Done`,
/// `Revoked`, `NotRevoked`, `Failed`) the flow is dropped. A flow ignores (returns no steps for)
/// events that are not its own, such as the answer to a request it no longer waits for.
pub trait Flow: Send + Sync + fmt::Debug {
    /// True (the default) when the flow may read the provider's endpoints: for a provider
    /// configured by issuer, the engine then fetches the discovery document before [`Flow::start`].
    /// A flow that sends nothing to those endpoints (static tokens) says `false` and starts at once.
    fn needs_discovery(&self) -> bool {
        true
    }

    /// The first steps.
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep>;

    /// The answer to a request this flow sent.
    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep>;

    /// A request this flow sent did not complete. Default: fail with that error.
    fn on_transport_error(
        &mut self,
        _context: &FlowContext<'_>,
        error: Error,
        _request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        vec![FlowStep::Failed(error)]
    }

    /// A [`FlowStep::Wait`] elapsed. Default: nothing to do.
    fn on_timer(&mut self, _context: &FlowContext<'_>, _request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        Vec::new()
    }

    /// A person answered a [`FlowStep::Prompt`]. Default: the flow asked nothing, so fail with
    /// [`Error::Internal`] (an answer to a flow that never asks is a bug of the runtime or of the
    /// flow, not a setting to fix). Built-in flows that never ask ignore stray answers instead.
    fn on_answer(
        &mut self,
        _context: &FlowContext<'_>,
        _answer: crate::Secret,
        _request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        vec![FlowStep::Failed(Error::internal("this login did not ask for an answer"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientAuth, ClientAuthMethod, Endpoints, Grant, HttpResponse, RequestId};

    #[test]
    fn a_client_with_a_certificate_uses_the_mtls_endpoint_aliases() {
        let body = r#"{"issuer":"https://idp","token_endpoint":"https://idp/token","revocation_endpoint":"https://idp/revoke",
            "device_authorization_endpoint":"https://idp/device",
            "mtls_endpoint_aliases":{"token_endpoint":"https://mtls.idp/token","revocation_endpoint":"https://mtls.idp/revoke"}}"#;
        let metadata =
            crate::protocol::parse_discovery(&HttpResponse::json(RequestId(1), 200, body), "https://idp").unwrap();
        let settings = EngineSettings::default();
        let endpoints = |method: ClientAuthMethod| {
            let config = ProviderConfig {
                client: ClientAuth { method, ..ClientAuth::public("c") },
                endpoints: Endpoints::discover("https://idp"),
                scope: None,
                grant: Grant::ClientCredentials,
            };
            let context = FlowContext {
                config: &config,
                metadata: Some(&metadata),
                tokens: None,
                settings: &settings,
                jitter: 0.0,
                assertion_id: None,
                dpop: None,
                resources: &[],
            };
            (
                context.token_endpoint().map(str::to_owned),
                context.revocation_endpoint().map(str::to_owned),
                context.mtls_alias(&metadata, "device_authorization_endpoint").map(str::to_owned),
            )
        };
        let aliased = (Some("https://mtls.idp/token".into()), Some("https://mtls.idp/revoke".into()), None);
        assert_eq!(endpoints(ClientAuthMethod::TlsClientAuth), aliased);
        assert_eq!(endpoints(ClientAuthMethod::SelfSignedTlsClientAuth), aliased);
        for method in [ClientAuthMethod::None, ClientAuthMethod::Basic, ClientAuthMethod::PrivateKeyJwt] {
            let plain = (Some("https://idp/token".into()), Some("https://idp/revoke".into()), None);
            assert_eq!(endpoints(method), plain, "{method:?}");
        }
    }
}
