//! The seam for flows that do not fit the token-endpoint machine ([`super::TokenFlow`]): browser
//! logins, one-time codes, other wire protocols (Cognito). A grant returns a [`Flow`] per
//! [`FlowPurpose`]; the [`crate::Engine`] drives it with the same actions and events as the
//! built-in flows, so the runtimes need nothing new.

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
}

impl FlowContext<'_> {
    /// The token endpoint: explicit, or from discovery.
    pub fn token_endpoint(&self) -> Option<&str> {
        match (&self.config.endpoints, self.metadata) {
            (crate::Endpoints::Explicit { token_endpoint, .. }, _) => Some(token_endpoint),
            (crate::Endpoints::Discover { .. }, Some(metadata)) => Some(&metadata.token_endpoint),
            (crate::Endpoints::Discover { .. }, None) => None,
        }
    }
}

/// One step of a pluggable flow; several may come at once (e.g. a prompt then a wait).
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
    /// Finished with this error.
    Failed(Error),
}

/// A login, refresh or revocation conversation, as a state machine. Each method gets a fresh
/// `request_id` to use if it sends a request, and returns what the runtime must do next. After a
/// `Done`, `Revoked` or `Failed` step the flow is dropped.
pub trait Flow: Send + Sync + fmt::Debug {
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

    /// A person answered a [`FlowStep::Prompt`]. Default: the flow asked nothing, so fail.
    fn on_answer(
        &mut self,
        _context: &FlowContext<'_>,
        _answer: crate::Secret,
        _request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        vec![FlowStep::Failed(Error::configuration("this login did not ask for an answer"))]
    }
}
