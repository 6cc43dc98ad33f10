//! One request to the token endpoint, with the retries that are safe: the flow of every grant that
//! is a single token-endpoint POST (password, client credentials, the refresh-token grant) and of the
//! standard OAuth refresh. Each grant's file says what goes in the form ([`TokenForm`]); this file
//! owns the states and the retry rule.
//!
//! ```text
//! start ─► Sent ──response──► Finished (Done | Failed)
//!            │  └─transient error, retry safe──► Backoff ──timer──► Sent (a new request id)
//!            └─transport error──► (same as a response error)
//! ```
//!
//! Retrying is not always safe. A login (password, client credentials) can be repeated at will. A
//! request that spends a refresh token cannot: if the server processed a rotating refresh but the
//! answer was lost (timeout, reset, 500), presenting the same refresh token again is *reuse*, and
//! servers with reuse detection revoke the whole grant. So such a request is retried only when the
//! server said it did not process it (connection refused, 429, 503, `temporarily_unavailable`).
//! When it was sent and no answer came back (a timeout, a closed connection), the failure is
//! [`Error::OutcomeUnknown`]: the engine then drops that refresh token for good
//! ([`crate::Action::RefreshTokenDropped`]).

use std::fmt;

use super::{Flow, FlowContext, FlowStep};
use crate::protocol::{parse_token_response, token_request};
use crate::{
    ClientAuth, ClientAuthMethod, Error, HttpResponse, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet,
    TransportErrorKind,
};

/// What one grant sends to the token endpoint, and how it keeps the answer.
pub(crate) trait TokenForm: Send + Sync + fmt::Debug + 'static {
    /// Reads what the form needs from the provider when the flow starts (a refresh: the tokens held).
    fn prepare(&mut self, _context: &FlowContext<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// The form fields for a request sent at `now` (scope excluded: see [`TokenRequest`]). Built
    /// per attempt, so that a generated TOTP code (or a signed assertion, with the step's random
    /// `jti`) is fresh on every retry.
    fn params(&self, context: &FlowContext<'_>, now: Timestamp) -> Result<Vec<(&'static str, Secret)>, Error>;

    /// False when the grant carries the scope elsewhere (a JWT bearer assertion's `scope` claim,
    /// as Google reads it): `scope` is then not a form field.
    fn scope_in_form(&self) -> bool {
        true
    }

    /// False when the grant identifies the client itself (a JWT bearer assertion's `iss`): a
    /// client without authentication (`client_auth = "none"`) then sends no `client_id`.
    fn sends_client_id(&self) -> bool {
        true
    }

    /// True when the request spends a refresh token: it is then retried only when the server cannot
    /// have consumed the token, and sent without `scope` (a refresh without scope keeps the
    /// original, RFC 6749 §6).
    fn spends_refresh_token(&self) -> bool {
        false
    }

    /// The tokens to keep from a successful answer (a refresh merges with what it renewed).
    fn finish(&self, tokens: TokenSet) -> TokenSet {
        tokens
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    Sent { request_id: RequestId, endpoint: String },
    Backoff { until: Timestamp },
    Finished,
}

/// One token request from start to tokens or error, with safe retries.
#[derive(Debug)]
pub(crate) struct TokenRequest<F> {
    form: F,
    state: State,
    attempt: u32,
    /// True once the request was sent again with a nonce the server asked for (`use_dpop_nonce`).
    nonce_retried: bool,
}

impl<F: TokenForm> TokenRequest<F> {
    pub(crate) fn new(form: F) -> Self {
        TokenRequest { form, state: State::Ready, attempt: 0, nonce_retried: false }
    }

    /// Builds and sends the request (from `Ready`, or a backoff that has elapsed).
    fn send(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        match self.state {
            State::Ready => {}
            State::Backoff { until } if now >= until => {}
            State::Backoff { until } => return vec![FlowStep::Wait(until)],
            State::Sent { .. } | State::Finished => {
                return self.fail(Error::internal("token flow asked to send while not ready"));
            }
        }
        let endpoint = match context.require_token_endpoint() {
            Ok(endpoint) => endpoint.to_owned(),
            Err(error) => return self.fail(error),
        };
        let mut params = match self.form.params(context, now) {
            Ok(params) => params,
            Err(error) => return self.fail(error),
        };
        // Scope on the initial grant only: a refresh without scope keeps the original (RFC 6749 §6).
        if let Some(scope) = context.config.scope.as_deref().filter(|s| !s.is_empty())
            && !self.form.spends_refresh_token()
            && self.form.scope_in_form()
        {
            params.push(("scope", Secret::new(scope)));
        }
        // RFC 8707 §2.2: every token request, refreshes included, asks for the resource the tokens
        // are meant for (a form that names its own resource, a token exchange's, keeps it).
        if let Some(resource) = context.token_resource()
            && !params.iter().any(|(name, _)| *name == "resource")
        {
            params.push(("resource", Secret::new(resource)));
        }
        let fields: Vec<(&str, &str)> = params.iter().map(|(name, value)| (*name, value.expose_secret())).collect();
        let anonymous;
        let client = if !self.form.sends_client_id() && context.config.client.method == ClientAuthMethod::None {
            anonymous = ClientAuth { client_id: String::new(), ..context.config.client.clone() };
            &anonymous
        } else {
            &context.config.client
        };
        let request = match token_request(request_id, &endpoint, client, &context.assertion_inputs(now), &fields) {
            Ok(request) => request,
            Err(error) => return self.fail(error),
        };
        self.attempt += 1;
        self.state = State::Sent { request_id, endpoint };
        vec![FlowStep::Send(request)]
    }

    fn on_error(&mut self, context: &FlowContext<'_>, error: Error, now: Timestamp) -> Vec<FlowStep> {
        let retry = &context.settings.retry;
        if self.attempt < retry.max_attempts
            && self.retry_is_safe(&error)
            && let Some(delay) = retry.delay_before_retry(self.attempt, &error, context.jitter)
        {
            let until = now + delay;
            self.state = State::Backoff { until };
            return vec![FlowStep::Wait(until)];
        }
        // A refresh token sent without an answer may be spent: say so, so that nobody presents it again.
        let error = match error {
            Error::Transport {
                kind: kind @ (TransportErrorKind::Timeout | TransportErrorKind::ConnectionClosed),
                endpoint,
                message,
            } if self.form.spends_refresh_token() => Error::OutcomeUnknown { kind, endpoint, message },
            error => error,
        };
        self.fail(error)
    }

    fn retry_is_safe(&self, error: &Error) -> bool {
        if !self.form.spends_refresh_token() {
            return error.is_transient();
        }
        // Only when the server cannot have consumed the refresh token.
        match error {
            Error::Transport { kind, .. } => *kind == TransportErrorKind::Connect,
            Error::UnexpectedStatus { status, .. } => *status == 429 || *status == 503,
            Error::OAuth { code, .. } => *code == OAuthErrorCode::TemporarilyUnavailable,
            _ => false,
        }
    }

    fn fail(&mut self, error: Error) -> Vec<FlowStep> {
        self.state = State::Finished;
        vec![FlowStep::Failed(error)]
    }
}

impl<F: TokenForm> Flow for TokenRequest<F> {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        if self.state != State::Ready {
            return self.fail(Error::internal("token flow started twice"));
        }
        if let Err(error) = self.form.prepare(context) {
            return self.fail(error);
        }
        self.send(context, request_id, now)
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        request_id_for_retry: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let State::Sent { request_id, endpoint } = &self.state else { return Vec::new() };
        if *request_id != response.request_id {
            return Vec::new(); // not ours: ignore
        }
        match parse_token_response(response, endpoint, now) {
            Ok(tokens) => {
                self.state = State::Finished;
                vec![FlowStep::Done(self.form.finish(tokens))]
            }
            // RFC 9449 §8: the server wants a nonce (the engine has already taken the new one from
            // this answer's DPoP-Nonce). Once: a second demand means the nonce is not the problem.
            // Safe for a refresh too: a server that asks for a nonce has not used the refresh token.
            Err(error) if is_nonce_demand(&error, response, context) && !self.nonce_retried => {
                self.nonce_retried = true;
                self.state = State::Ready;
                self.attempt -= 1; // not a failure: it does not count against the retry limit
                self.send(context, request_id_for_retry, now)
            }
            Err(error) => self.on_error(context, error, now),
        }
    }

    fn on_transport_error(
        &mut self,
        context: &FlowContext<'_>,
        error: Error,
        _request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        if !matches!(self.state, State::Sent { .. }) {
            return Vec::new(); // nothing in flight: not ours
        }
        self.on_error(context, error, now)
    }

    /// Only a flow waiting out a backoff expects a timer; a stale one (from an abandoned
    /// operation) is ignored rather than failing the request in flight.
    fn on_timer(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        match self.state {
            State::Backoff { .. } => self.send(context, request_id, now),
            _ => Vec::new(),
        }
    }

    /// Nothing here asks a person anything: a stray answer is ignored, as for every unattended grant.
    fn on_answer(&mut self, _: &FlowContext<'_>, _: Secret, _: RequestId, _: Timestamp) -> Vec<FlowStep> {
        Vec::new()
    }
}

/// True when `error` is a token endpoint's `use_dpop_nonce` and the answer carried a usable nonce,
/// for a provider that uses DPoP.
pub(crate) fn is_nonce_demand(error: &Error, response: &HttpResponse, context: &FlowContext<'_>) -> bool {
    context.dpop.is_some()
        && matches!(error.oauth_code(), Some(OAuthErrorCode::Other(code)) if code == crate::dpop::USE_DPOP_NONCE)
        && crate::dpop::response_nonce(response).is_some()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::super::refresh::RefreshForm;
    use super::super::{Grant, client_credentials::ClientCredentialsForm};
    use super::*;
    use crate::{ClientAuth, Endpoints, EngineSettings, ProviderConfig};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    fn refreshable() -> TokenSet {
        let mut tokens = TokenSet::bearer("at", Some(NOW), NOW);
        tokens.refresh_token = Some(Secret::new("rt-1"));
        tokens
    }

    /// A provider with a token endpoint `e` and scope `api`, and what a flow reads of it.
    pub(crate) struct Provider {
        pub(crate) config: ProviderConfig,
        pub(crate) settings: EngineSettings,
        pub(crate) tokens: Option<TokenSet>,
        pub(crate) jitter: f64,
    }

    impl Provider {
        pub(crate) fn new(tokens: Option<TokenSet>) -> Self {
            Provider {
                config: ProviderConfig {
                    client: ClientAuth::basic("c", "s"),
                    endpoints: Endpoints::explicit("e"),
                    scope: Some("api".into()),
                    grant: Grant::ClientCredentials,
                },
                settings: EngineSettings::default(),
                tokens,
                jitter: 0.5,
            }
        }

        pub(crate) fn context(&self) -> FlowContext<'_> {
            FlowContext {
                config: &self.config,
                metadata: None,
                tokens: self.tokens.as_ref(),
                settings: &self.settings,
                jitter: self.jitter,
                assertion_id: None,
                dpop: None,
                resources: &[],
            }
        }
    }

    fn body(steps: &[FlowStep]) -> &str {
        match steps {
            [FlowStep::Send(request)] => std::str::from_utf8(&request.body).unwrap(),
            other => panic!("expected one Send, got {other:?}"),
        }
    }

    #[test]
    fn refresh_keeps_refresh_token_when_none_returned() {
        let provider = Provider::new(Some(refreshable()));
        let mut flow = TokenRequest::new(RefreshForm::held());
        let steps = flow.start(&provider.context(), RequestId(1), NOW);
        assert_eq!(body(&steps), "grant_type=refresh_token&refresh_token=rt-1", "no scope on a refresh");
        let response = HttpResponse::json(RequestId(1), 200, r#"{"access_token":"at-2","expires_in":60}"#);
        let steps = flow.on_response(&provider.context(), &response, RequestId(2), NOW);
        let [FlowStep::Done(tokens)] = &steps[..] else { panic!("{steps:?}") };
        assert_eq!(tokens.refresh_token, Some(Secret::new("rt-1")));
        assert_eq!(tokens.access_token, Secret::new("at-2"));
    }

    #[test]
    fn every_token_request_asks_for_the_first_resource() {
        let provider = Provider::new(Some(refreshable()));
        let resources = ["https://api/mcp".to_owned(), "https://api/files".to_owned()];
        let context = FlowContext { resources: &resources, ..provider.context() };
        let steps = TokenRequest::new(RefreshForm::held()).start(&context, RequestId(1), NOW);
        assert_eq!(body(&steps), "grant_type=refresh_token&refresh_token=rt-1&resource=https%3A%2F%2Fapi%2Fmcp");
        let steps = TokenRequest::new(ClientCredentialsForm).start(&context, RequestId(1), NOW);
        assert_eq!(body(&steps), "grant_type=client_credentials&scope=api&resource=https%3A%2F%2Fapi%2Fmcp");
    }

    #[test]
    fn a_refresh_without_a_refresh_token_is_our_bug() {
        let provider = Provider::new(Some(TokenSet::bearer("at", None, NOW)));
        let steps = TokenRequest::new(RefreshForm::held()).start(&provider.context(), RequestId(1), NOW);
        assert!(matches!(&steps[..], [FlowStep::Failed(Error::Internal { .. })]), "{steps:?}");
    }

    #[test]
    fn login_retries_transient_errors_with_backoff() {
        let provider = Provider::new(None);
        let context = provider.context();
        let mut flow = TokenRequest::new(ClientCredentialsForm);
        assert_eq!(body(&flow.start(&context, RequestId(1), NOW)), "grant_type=client_credentials&scope=api");
        let reset = Error::Transport {
            kind: TransportErrorKind::ConnectionClosed,
            endpoint: "e".into(),
            message: "reset".into(),
        };
        let steps = flow.on_transport_error(&context, reset, RequestId(2), NOW);
        let [FlowStep::Wait(until)] = steps[..] else { panic!("{steps:?}") };
        assert_eq!(until, NOW + Duration::from_millis(200));
        assert!(
            matches!(flow.on_timer(&context, RequestId(2), NOW)[..], [FlowStep::Wait(t)] if t == until),
            "too early"
        );
        let steps = flow.on_timer(&context, RequestId(3), until);
        assert_eq!(body(&steps), "grant_type=client_credentials&scope=api");
        let html = |id| HttpResponse {
            request_id: RequestId(id),
            status: 500,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html/>".to_vec(),
        };
        let steps = flow.on_response(&context, &html(3), RequestId(4), until);
        let [FlowStep::Wait(second)] = steps[..] else { panic!("{steps:?}") };
        assert_eq!(second, until + Duration::from_millis(400));
        flow.on_timer(&context, RequestId(5), second);
        let steps = flow.on_response(&context, &html(5), RequestId(6), second);
        let [FlowStep::Failed(error)] = &steps[..] else { panic!("third attempt is the last: {steps:?}") };
        assert!(matches!(error, Error::UnexpectedStatus { status: 500, .. }));
    }

    #[test]
    fn refresh_is_not_retried_when_the_server_may_have_rotated() {
        let provider = Provider::new(Some(refreshable()));
        let context = provider.context();
        for error in [
            Error::Transport { kind: TransportErrorKind::Timeout, endpoint: "e".into(), message: String::new() },
            Error::Transport {
                kind: TransportErrorKind::ConnectionClosed,
                endpoint: "e".into(),
                message: String::new(),
            },
            Error::UnexpectedStatus { status: 500, content_type: None, retry_after: None, endpoint: "e".into() },
        ] {
            for form in [RefreshForm::held(), RefreshForm::configured(Secret::new("rt-0"))] {
                let mut flow = TokenRequest::new(form);
                flow.start(&context, RequestId(1), NOW);
                let steps = flow.on_transport_error(&context, error.clone(), RequestId(2), NOW);
                assert!(matches!(steps[..], [FlowStep::Failed(_)]), "{error}: {steps:?}");
            }
        }
        let limited = Error::UnexpectedStatus {
            status: 429,
            content_type: None,
            retry_after: Some(Duration::from_secs(2)),
            endpoint: "e".into(),
        };
        let mut flow = TokenRequest::new(RefreshForm::held());
        flow.start(&context, RequestId(1), NOW);
        let steps = flow.on_transport_error(&context, limited, RequestId(2), NOW);
        assert!(matches!(steps[..], [FlowStep::Wait(t)] if t == NOW + Duration::from_secs(2)), "{steps:?}");
    }

    #[test]
    fn responses_to_other_requests_and_stray_events_are_ignored() {
        let provider = Provider::new(None);
        let context = provider.context();
        let mut flow = TokenRequest::new(ClientCredentialsForm);
        flow.start(&context, RequestId(5), NOW);
        let stray = HttpResponse::json(RequestId(4), 200, r#"{"access_token":"x"}"#);
        assert!(flow.on_response(&context, &stray, RequestId(6), NOW).is_empty());
        assert!(flow.on_timer(&context, RequestId(7), NOW).is_empty(), "not backing off");
        assert!(flow.on_answer(&context, Secret::new("x"), RequestId(8), NOW).is_empty());
        let ours = HttpResponse::json(RequestId(5), 200, r#"{"access_token":"a"}"#);
        assert!(matches!(flow.on_response(&context, &ours, RequestId(9), NOW)[..], [FlowStep::Done(_)]));
        let again = flow.start(&context, RequestId(10), NOW);
        assert!(matches!(&again[..], [FlowStep::Failed(Error::Internal { .. })]), "{again:?}");
    }
}
