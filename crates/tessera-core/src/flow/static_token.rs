//! A token given by the caller (`Grant::Static`): nothing is requested and nothing can renew it.
//! The flow ends at once, with the token or, once it has expired, with `ReauthenticationRequired`.

use super::{Flow, FlowContext, FlowStep};
use crate::{Error, HttpResponse, RequestId, Secret, Timestamp, TokenSet};

/// Hands out the configured token.
#[derive(Debug)]
pub(crate) struct StaticTokenFlow {
    pub(crate) access_token: Secret,
    pub(crate) expires_at: Option<Timestamp>,
}

impl Flow for StaticTokenFlow {
    /// No request: the provider's endpoints do not matter, and need no discovery.
    fn needs_discovery(&self) -> bool {
        false
    }

    fn start(&mut self, _context: &FlowContext<'_>, _request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        let tokens = TokenSet::bearer(self.access_token.clone(), self.expires_at, now);
        if tokens.is_expired(now) {
            return vec![FlowStep::Failed(Error::ReauthenticationRequired {
                reason: "the static token has expired".into(),
            })];
        }
        vec![FlowStep::Done(tokens)]
    }

    fn on_response(&mut self, _: &FlowContext<'_>, _: &HttpResponse, _: RequestId, _: Timestamp) -> Vec<FlowStep> {
        // Never sends: an answer cannot be ours.
        vec![FlowStep::Failed(Error::internal("static tokens are not requested"))]
    }
}
