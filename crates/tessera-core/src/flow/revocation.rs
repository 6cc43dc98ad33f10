//! Token revocation (RFC 7009) at logout: the standard revocation of every grant without one of its
//! own. The refresh token is revoked when held (servers then revoke its access tokens too, §2.1),
//! else the access token.
//!
//! ```text
//! start ─ no revocation endpoint, or nothing held ─► NotRevoked
//!       ─► Sent ──200──► Revoked
//!               └─error answer | transport error──► Failed
//! ```
//! Not retried: the engine drops the tokens whatever the outcome, and a logout should not keep a
//! person waiting on a server that may never answer.

use super::{Flow, FlowContext, FlowStep};
use crate::protocol::{parse_revocation_response, revocation_request};
use crate::{HttpResponse, RequestId, Secret, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    Sent { request_id: RequestId, endpoint: String },
    Finished,
}

/// One RFC 7009 revocation.
#[derive(Debug)]
pub(crate) struct RevocationFlow {
    state: State,
}

impl RevocationFlow {
    pub(crate) fn new() -> Self {
        RevocationFlow { state: State::Ready }
    }
}

impl Flow for RevocationFlow {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        if self.state != State::Ready {
            self.state = State::Finished;
            return vec![FlowStep::Failed(crate::Error::internal("revocation started twice"))];
        }
        let (Some(endpoint), Some(tokens)) = (context.revocation_endpoint(), context.tokens) else {
            self.state = State::Finished;
            return vec![FlowStep::NotRevoked];
        };
        let (token, hint) = match &tokens.refresh_token {
            Some(refresh_token) => (refresh_token, "refresh_token"),
            None => (&tokens.access_token, "access_token"),
        };
        let request = match revocation_request(
            request_id,
            endpoint,
            &context.config.client,
            &context.assertion_inputs(now),
            token,
            hint,
        ) {
            Ok(request) => request,
            Err(error) => {
                self.state = State::Finished;
                return vec![FlowStep::Failed(error)];
            }
        };
        self.state = State::Sent { request_id, endpoint: endpoint.to_owned() };
        vec![FlowStep::Send(request)]
    }

    fn on_response(
        &mut self,
        _context: &FlowContext<'_>,
        response: &HttpResponse,
        _request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        let State::Sent { request_id, endpoint } = &self.state else { return Vec::new() };
        if *request_id != response.request_id {
            return Vec::new(); // not ours
        }
        let step = match parse_revocation_response(response, endpoint) {
            Ok(()) => FlowStep::Revoked,
            Err(error) => FlowStep::Failed(error),
        };
        self.state = State::Finished;
        vec![step]
    }

    /// Nothing here asks a person anything: a stray answer is ignored.
    fn on_answer(&mut self, _: &FlowContext<'_>, _: Secret, _: RequestId, _: Timestamp) -> Vec<FlowStep> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::token_request::tests::Provider;
    use super::*;
    use crate::{Endpoints, Error, TokenSet};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    #[test]
    fn revokes_the_refresh_token_else_the_access_token() {
        let mut held = TokenSet::bearer("at", None, NOW);
        held.refresh_token = Some(Secret::new("rt"));
        for (tokens, body) in [
            (held, "token=rt&token_type_hint=refresh_token"),
            (TokenSet::bearer("at", None, NOW), "token=at&token_type_hint=access_token"),
        ] {
            let mut provider = Provider::new(Some(tokens));
            provider.config.endpoints =
                Endpoints::Explicit { token_endpoint: "t".into(), revocation_endpoint: Some("https://idp/r".into()) };
            let mut flow = RevocationFlow::new();
            let steps = flow.start(&provider.context(), RequestId(1), NOW);
            let [FlowStep::Send(request)] = &steps[..] else { panic!("{steps:?}") };
            assert_eq!((request.url.as_str(), std::str::from_utf8(&request.body).unwrap()), ("https://idp/r", body));
            let stray = HttpResponse::json(RequestId(9), 200, "{}");
            assert!(flow.on_response(&provider.context(), &stray, RequestId(2), NOW).is_empty());
            let refused = HttpResponse::json(RequestId(1), 400, r#"{"error":"invalid_request"}"#);
            let steps = flow.on_response(&provider.context(), &refused, RequestId(3), NOW);
            assert!(matches!(&steps[..], [FlowStep::Failed(Error::OAuth { .. })]), "{steps:?}");
        }
    }

    #[test]
    fn without_an_endpoint_nothing_is_sent() {
        let provider = Provider::new(Some(TokenSet::bearer("at", None, NOW)));
        let steps = RevocationFlow::new().start(&provider.context(), RequestId(1), NOW);
        assert!(matches!(steps[..], [FlowStep::NotRevoked]), "{steps:?}");
    }
}
