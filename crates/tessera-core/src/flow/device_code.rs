//! Device authorization grant (RFC 8628), for machines without a browser: ask for a device code,
//! show the user a code and a URL, poll the token endpoint until they approve.
//!
//! ```text
//! Ready ─send─► Authorizing ─response─► [Prompt(show code), Wait(interval)] ─timer─► Polling
//! Polling ─authorization_pending─► Wait(interval)         ─slow_down─► Wait(interval + 5 s)
//!         ─tokens─► Done     ─expired_token | access_denied | other error─► Failed
//! the local deadline (expires_in) passing ─► Failed(ReauthenticationRequired)
//! ```
//! Polling is safe to repeat after a lost answer: the device code is only spent once approved and
//! redeemed, and a spent code answers an error, never a second set of tokens.

use std::time::Duration;

use super::token_request::is_nonce_demand;
use super::{Flow, FlowContext, FlowStep, Prompt};
use crate::protocol::{
    DEVICE_CODE_GRANT_TYPE, device_authorization_request, parse_device_authorization, parse_token_response,
    token_request,
};
use crate::{Error, HttpResponse, OAuthErrorCode, RequestId, Secret, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    Authorizing { request_id: RequestId, endpoint: String },
    Waiting { until: Timestamp },
    Polling { request_id: RequestId, endpoint: String },
    Finished,
}

/// One device login.
#[derive(Debug)]
pub(crate) struct DeviceCodeFlow {
    /// The configured device authorization endpoint; `None`: from discovery.
    device_authorization_endpoint: Option<String>,
    state: State,
    device_code: Option<Secret>,
    interval: Duration,
    deadline: Timestamp,
    /// True when the last poll was sent again at once for a DPoP nonce (`use_dpop_nonce`): a
    /// second demand in a row is an error, not a loop.
    nonce_retried: bool,
}

impl DeviceCodeFlow {
    /// A login for [`super::Grant::DeviceCode`].
    pub(crate) fn new(device_authorization_endpoint: Option<String>) -> Self {
        DeviceCodeFlow {
            device_authorization_endpoint,
            state: State::Ready,
            device_code: None,
            interval: Duration::from_secs(5),
            deadline: Timestamp::EPOCH,
            nonce_retried: false,
        }
    }

    fn on_poll_error(&mut self, error: Error, now: Timestamp) -> Vec<FlowStep> {
        match error.oauth_code() {
            Some(OAuthErrorCode::AuthorizationPending) => self.wait(now),
            Some(OAuthErrorCode::SlowDown) => {
                // RFC 8628 §3.5: add 5 seconds to the interval for this and all later requests.
                self.interval += Duration::from_secs(5);
                self.wait(now)
            }
            _ if error.is_transient() => self.wait(now),
            _ => self.fail(error),
        }
    }

    fn wait(&mut self, now: Timestamp) -> Vec<FlowStep> {
        let until = now + self.interval;
        self.state = State::Waiting { until };
        vec![FlowStep::Wait(until)]
    }

    fn fail(&mut self, error: Error) -> Vec<FlowStep> {
        self.state = State::Finished;
        vec![FlowStep::Failed(error)]
    }
}

impl Flow for DeviceCodeFlow {
    /// The device authorization request.
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        if self.state != State::Ready {
            return self.fail(Error::internal("device flow started twice"));
        }
        let endpoint = self.device_authorization_endpoint.clone().or_else(|| {
            let metadata = context.metadata?;
            context
                .mtls_alias(metadata, "device_authorization_endpoint")
                .or(metadata.device_authorization_endpoint.as_deref())
                .map(str::to_owned)
        });
        let Some(endpoint) = endpoint else {
            return self
                .fail(Error::configuration("the server publishes no device_authorization_endpoint; configure one"));
        };
        let request = device_authorization_request(
            request_id,
            &endpoint,
            &context.config.client,
            &context.assertion_inputs(now),
            context.config.scope.as_deref(),
            context.resources,
        );
        let request = match request {
            Ok(request) => request,
            Err(error) => return self.fail(error),
        };
        self.state = State::Authorizing { request_id, endpoint };
        vec![FlowStep::Send(request)]
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        next_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        match &self.state {
            State::Authorizing { request_id, endpoint } if *request_id == response.request_id => {
                match parse_device_authorization(response, endpoint) {
                    Ok(authorization) => {
                        self.interval = Duration::from_secs(authorization.interval.clamp(1, 60));
                        self.deadline = now + Duration::from_secs(authorization.expires_in);
                        self.device_code = Some(authorization.device_code);
                        let prompt = Prompt::DeviceCode {
                            user_code: authorization.user_code,
                            verification_uri: authorization.verification_uri,
                            verification_uri_complete: authorization.verification_uri_complete,
                            expires_at: self.deadline,
                        };
                        let mut steps = vec![FlowStep::Prompt(prompt)];
                        steps.extend(self.wait(now));
                        steps
                    }
                    Err(error) => self.fail(error),
                }
            }
            State::Polling { request_id, endpoint } if *request_id == response.request_id => {
                match parse_token_response(response, endpoint, now) {
                    Ok(tokens) => {
                        self.state = State::Finished;
                        vec![FlowStep::Done(tokens)]
                    }
                    // RFC 9449 §8: poll again at once with the nonce just given (the engine took it).
                    Err(error) if !self.nonce_retried && is_nonce_demand(&error, response, context) => {
                        self.nonce_retried = true;
                        self.state = State::Waiting { until: now };
                        self.on_timer(context, next_id, now)
                    }
                    Err(error) => {
                        self.nonce_retried = false;
                        self.on_poll_error(error, now)
                    }
                }
            }
            _ => Vec::new(), // not ours
        }
    }

    fn on_transport_error(
        &mut self,
        _context: &FlowContext<'_>,
        error: Error,
        _request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        match self.state {
            // Polling again is safe (see the module docs); the deadline bounds it.
            State::Polling { .. } if error.is_transient() => self.wait(now),
            _ => self.fail(error),
        }
    }

    /// The wait elapsed: poll (or wait more, or give up past the deadline).
    fn on_timer(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        match self.state {
            State::Waiting { until } if now < until => vec![FlowStep::Wait(until)],
            State::Waiting { .. } if now >= self.deadline => self.fail(Error::ReauthenticationRequired {
                reason: "the device code expired before the login was approved; start the login again".into(),
            }),
            State::Waiting { .. } => {
                let Some(device_code) = &self.device_code else {
                    return self.fail(Error::internal("device flow polled without a device code"));
                };
                let endpoint = match context.require_token_endpoint() {
                    Ok(endpoint) => endpoint.to_owned(),
                    Err(error) => return self.fail(error),
                };
                let request = token_request(
                    request_id,
                    &endpoint,
                    &context.config.client,
                    &context.assertion_inputs(now),
                    &[("grant_type", DEVICE_CODE_GRANT_TYPE), ("device_code", device_code.expose_secret())]
                        .into_iter()
                        .chain(context.token_resource().map(|resource| ("resource", resource)))
                        .collect::<Vec<_>>(),
                );
                let request = match request {
                    Ok(request) => request,
                    Err(error) => return self.fail(error),
                };
                self.state = State::Polling { request_id, endpoint };
                vec![FlowStep::Send(request)]
            }
            // A timer while a request is in flight (a stale one): the answer will come.
            _ => Vec::new(),
        }
    }

    /// The device code prompt asks for no answer: a stray one is ignored.
    fn on_answer(&mut self, _: &FlowContext<'_>, _: Secret, _: RequestId, _: Timestamp) -> Vec<FlowStep> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::token_request::tests::Provider;
    use super::*;
    use crate::{ClientAuth, Endpoints, HttpRequest};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    /// A public client with scope `openid` and token endpoint `https://idp/token`.
    fn provider() -> Provider {
        let mut provider = Provider::new(None);
        provider.config.client = ClientAuth::public("device-client");
        provider.config.scope = Some("openid".into());
        provider.config.endpoints = Endpoints::explicit("https://idp/token");
        provider
    }

    fn body(request: &HttpRequest) -> &str {
        std::str::from_utf8(&request.body).unwrap()
    }

    fn authorized(flow: &mut DeviceCodeFlow, provider: &Provider) -> Timestamp {
        let steps = flow.start(&provider.context(), RequestId(1), NOW);
        let [FlowStep::Send(request)] = &steps[..] else { panic!("{steps:?}") };
        assert_eq!(request.url, "https://idp/device");
        assert_eq!(body(request), "scope=openid&client_id=device-client");
        let response = HttpResponse::json(
            RequestId(1),
            200,
            r#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://idp/device","expires_in":60,"interval":2}"#,
        );
        let steps = flow.on_response(&provider.context(), &response, RequestId(9), NOW);
        let [FlowStep::Prompt(Prompt::DeviceCode { user_code, expires_at, .. }), FlowStep::Wait(until)] = &steps[..]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(user_code, "ABCD-EFGH");
        assert_eq!(*expires_at, NOW + Duration::from_secs(60));
        *until
    }

    fn new_flow() -> DeviceCodeFlow {
        DeviceCodeFlow::new(Some("https://idp/device".into()))
    }

    fn poll(
        flow: &mut DeviceCodeFlow,
        provider: &Provider,
        id: u64,
        at: Timestamp,
        mut answer: HttpResponse,
    ) -> Vec<FlowStep> {
        let steps = flow.on_timer(&provider.context(), RequestId(id), at);
        let [FlowStep::Send(request)] = &steps[..] else { panic!("expected a poll: {steps:?}") };
        assert_eq!(request.url, "https://idp/token");
        assert!(
            body(request)
                .starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dc")
        );
        answer.request_id = RequestId(id);
        flow.on_response(&provider.context(), &answer, RequestId(id + 100), at)
    }

    fn error(code: &str) -> HttpResponse {
        HttpResponse::json(RequestId(0), 400, format!(r#"{{"error":"{code}"}}"#))
    }

    #[test]
    fn a_dpop_nonce_demand_is_polled_again_at_once_with_the_nonce_once() {
        let provider = provider();
        let mut flow = new_flow();
        let until = authorized(&mut flow, &provider);
        let (_, prover) = crate::DpopProver::generate(None, &[4; 32]).unwrap().unwrap();
        let mut context = provider.context();
        context.assertion_id = Some([1; 16]);
        context.dpop = Some(crate::DpopInputs { prover: Ok(&prover), nonce: Some("n-1") });
        let demand = |id| {
            let mut response = HttpResponse::json(RequestId(id), 400, r#"{"error":"use_dpop_nonce"}"#);
            response.headers.push(("DPoP-Nonce".into(), "n-1".into()));
            response
        };
        let steps = flow.on_timer(&context, RequestId(2), until);
        assert!(matches!(&steps[..], [FlowStep::Send(r)] if r.header("dpop").is_some()), "{steps:?}");
        let steps = flow.on_response(&context, &demand(2), RequestId(3), until);
        let [FlowStep::Send(again)] = &steps[..] else { panic!("polled again at once: {steps:?}") };
        assert_eq!(again.id, RequestId(3));
        let proof = again.header("dpop").unwrap().split('.').nth(1).unwrap().to_owned();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, proof).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["nonce"], "n-1");
        let steps = flow.on_response(&context, &demand(3), RequestId(4), until);
        assert!(matches!(&steps[..], [FlowStep::Failed(_)]), "a second demand in a row fails: {steps:?}");
    }

    #[test]
    fn pending_then_slow_down_then_tokens() {
        let provider = provider();
        let mut flow = new_flow();
        let until = authorized(&mut flow, &provider);
        assert_eq!(until, NOW + Duration::from_secs(2));
        let early = flow.on_timer(&provider.context(), RequestId(2), NOW);
        assert!(matches!(early[..], [FlowStep::Wait(t)] if t == until), "too early: wait");
        let steps = poll(&mut flow, &provider, 2, until, error("authorization_pending"));
        assert!(matches!(steps[..], [FlowStep::Wait(t)] if t == until + Duration::from_secs(2)));
        let at = until + Duration::from_secs(2);
        let steps = poll(&mut flow, &provider, 3, at, error("slow_down"));
        assert!(matches!(steps[..], [FlowStep::Wait(t)] if t == at + Duration::from_secs(7)), "{steps:?}");
        assert_eq!(flow.interval, Duration::from_secs(7));
        let at = at + Duration::from_secs(7);
        let steps = poll(
            &mut flow,
            &provider,
            4,
            at,
            HttpResponse::json(RequestId(0), 200, r#"{"access_token":"at","refresh_token":"rt"}"#),
        );
        assert!(matches!(&steps[..], [FlowStep::Done(tokens)] if tokens.refresh_token.is_some()));
    }

    #[test]
    fn denial_expiry_and_deadline_end_the_flow() {
        let provider = provider();
        for code in ["access_denied", "expired_token"] {
            let mut flow = new_flow();
            let until = authorized(&mut flow, &provider);
            let steps = poll(&mut flow, &provider, 2, until, error(code));
            assert!(matches!(&steps[..], [FlowStep::Failed(e)] if e.oauth_code().map(|c| c.as_str()) == Some(code)));
        }
        let mut flow = new_flow();
        authorized(&mut flow, &provider);
        let late = NOW + Duration::from_secs(61);
        let steps = flow.on_timer(&provider.context(), RequestId(2), late);
        let [FlowStep::Failed(error)] = &steps[..] else { panic!("{steps:?}") };
        assert!(error.requires_reauthentication());
    }

    #[test]
    fn transient_poll_failures_keep_polling() {
        let provider = provider();
        let mut flow = new_flow();
        let until = authorized(&mut flow, &provider);
        let [FlowStep::Send(_)] = flow.on_timer(&provider.context(), RequestId(2), until)[..] else { panic!() };
        // A stale timer while the poll is in flight changes nothing.
        assert!(flow.on_timer(&provider.context(), RequestId(3), until).is_empty());
        let reset = Error::Transport {
            kind: crate::TransportErrorKind::ConnectionClosed,
            endpoint: "t".into(),
            message: String::new(),
        };
        assert!(matches!(
            flow.on_transport_error(&provider.context(), reset, RequestId(4), until)[..],
            [FlowStep::Wait(_)]
        ));
    }

    #[test]
    fn broken_invariants_are_internal_and_missing_endpoints_configuration() {
        let provider = provider();
        let mut flow = new_flow();
        authorized(&mut flow, &provider);
        let again = flow.start(&provider.context(), RequestId(5), NOW);
        assert!(matches!(&again[..], [FlowStep::Failed(Error::Internal { .. })]), "{again:?}");
        // Neither configured nor discovered: the user can fix that.
        let steps = DeviceCodeFlow::new(None).start(&provider.context(), RequestId(1), NOW);
        let [FlowStep::Failed(error @ Error::Configuration { .. })] = &steps[..] else { panic!("{steps:?}") };
        assert!(error.to_string().contains("device_authorization_endpoint"));
    }
}
