//! Retries for the built-in interactive flows (browser, email OTP, Cognito).
//!
//! `TokenRequest` (token_request.rs) retries the token requests of the unattended grants; the
//! interactive flows send other requests (a code exchange, a JWKS fetch, `/otp/verify`,
//! `RespondToAuthChallenge`) whose safety differs per request, so each flow says, right after it
//! sends one, which rule applies to it ([`Resendable::resend_rule`]). [`Resending`] wraps the flow,
//! keeps the request it last sent, and sends it again after the login backoff when the rule allows:
//!
//! - [`ResendRule::WhenNotProcessed`]: the request redeems something once (an authorization code, a
//!   mailed code, a Cognito `Session`), so it is resent only when the server cannot
//!   have processed it: HTTP 429 or 503 (after `Retry-After`), or no connection at all. A 500, a
//!   proxy's 502, a timeout or a reset may have spent it; a second try would be reuse.
//! - [`ResendRule::WhenTransient`]: repeating is harmless (a GET, starting a login again, Cognito's
//!   `REFRESH_TOKEN_AUTH`, which never rotates), so every
//!   transient failure is resent: 408, 429, 5xx, timeouts, resets, failed connections.
//!
//! Everything else, and the last failure once the attempts run out, goes to the wrapped flow, which
//! turns it into its typed error as before. The protocol-level "busy" answers that come with a 400
//! (OAuth `temporarily_unavailable`, Cognito `TooManyRequestsException`) are left to the flows.

use std::time::Duration;

use super::{Flow, FlowContext, FlowStep};
use crate::{Error, HttpRequest, HttpResponse, RequestId, Timestamp, TransportErrorKind};

/// Interactive logins are one person's: there is no herd of clients to spread, so the backoff uses
/// its mean (`0.5`) instead of a random jitter.
const NO_JITTER: f64 = 0.5;

/// When the request a flow just sent may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResendRule {
    /// Never: every failure goes to the flow.
    Never,
    /// Only when the server cannot have processed it (429, 503, no connection).
    WhenNotProcessed,
    /// On any transient failure.
    WhenTransient,
}

/// A flow that says how its last request may be resent.
pub(crate) trait Resendable: Flow {
    /// The rule for the request the flow has just sent (asked right after a [`FlowStep::Send`]).
    fn resend_rule(&self) -> ResendRule;
}

/// Wraps a [`Resendable`] flow with the retries its rules allow.
#[derive(Debug)]
pub(crate) struct Resending<F> {
    inner: F,
    last: Option<LastRequest>,
}

#[derive(Debug)]
struct LastRequest {
    /// The request as the flow built it (its id is the one the flow knows).
    request: HttpRequest,
    /// The id of the copy in flight (the original's, or a resend's).
    in_flight: Option<RequestId>,
    rule: ResendRule,
    /// Times sent so far.
    attempt: u32,
    /// Waiting out a backoff until then.
    backoff_until: Option<Timestamp>,
}

impl<F: Resendable> Resending<F> {
    pub(crate) fn new(inner: F) -> Self {
        Resending { inner, last: None }
    }

    /// Remembers the request the flow sent (if any) with its rule, replacing the previous one. Steps
    /// without a request (a prompt, the end) forget it; no steps at all (an event the flow ignored)
    /// change nothing, so a stray event cannot make the wrapper lose the copy in flight.
    fn track(&mut self, steps: Vec<FlowStep>) -> Vec<FlowStep> {
        if steps.is_empty() {
            return steps;
        }
        let sent = steps.iter().find_map(|step| match step {
            FlowStep::Send(request) => Some(copy(request, request.id)),
            _ => None,
        });
        self.last = match sent {
            Some(request) => match self.inner.resend_rule() {
                ResendRule::Never => None,
                rule => {
                    Some(LastRequest { in_flight: Some(request.id), request, rule, attempt: 1, backoff_until: None })
                }
            },
            None => None,
        };
        steps
    }

    /// When the failure of the request in flight may be resent, the backoff to wait first.
    fn backoff(&mut self, context: &FlowContext<'_>, failure: Failure, now: Timestamp) -> Option<Timestamp> {
        let last = self.last.as_mut()?;
        let retry = &context.settings.retry;
        let resend = match (last.rule, &failure) {
            (ResendRule::Never, _) => false,
            (ResendRule::WhenNotProcessed, Failure::Status { status, .. }) => matches!(status, 429 | 503),
            (ResendRule::WhenNotProcessed, Failure::Transport(kind)) => *kind == TransportErrorKind::Connect,
            (ResendRule::WhenTransient, Failure::Status { status, .. }) => {
                *status >= 500 || matches!(status, 408 | 429)
            }
            (ResendRule::WhenTransient, Failure::Transport(kind)) => kind.is_transient(),
        };
        if !resend || last.attempt >= retry.max_attempts {
            return None;
        }
        let retry_after = match failure {
            Failure::Status { retry_after, .. } => retry_after,
            Failure::Transport(_) => None,
        };
        let until = now + retry.delay_after(last.attempt, retry_after, NO_JITTER)?;
        last.in_flight = None;
        last.backoff_until = Some(until);
        Some(until)
    }
}

enum Failure {
    Status { status: u16, retry_after: Option<Duration> },
    Transport(TransportErrorKind),
}

/// A copy of `request` under another id (requests are not `Clone`: they zeroize on drop).
fn copy(request: &HttpRequest, id: RequestId) -> HttpRequest {
    HttpRequest {
        id,
        method: request.method,
        url: request.url.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    }
}

impl<F: Resendable> Flow for Resending<F> {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        let steps = self.inner.start(context, request_id, now);
        self.track(steps)
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let Some(last) = &self.last else {
            let steps = self.inner.on_response(context, response, request_id, now);
            return self.track(steps);
        };
        if last.in_flight != Some(response.request_id) {
            return Vec::new(); // not the copy in flight: a stale answer
        }
        let original = last.request.id;
        if !(200..300).contains(&response.status) {
            let failure = Failure::Status { status: response.status, retry_after: response.retry_after() };
            if let Some(until) = self.backoff(context, failure, now) {
                return vec![FlowStep::Wait(until)];
            }
        }
        // The flow matches answers to the id it sent: hand it the answer under that id.
        let answer = HttpResponse {
            request_id: original,
            status: response.status,
            headers: response.headers.clone(),
            body: response.body.clone(),
        };
        let steps = self.inner.on_response(context, &answer, request_id, now);
        self.track(steps)
    }

    fn on_transport_error(
        &mut self,
        context: &FlowContext<'_>,
        error: Error,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        if let Error::Transport { kind, .. } = &error
            && let Some(until) = self.backoff(context, Failure::Transport(*kind), now)
        {
            return vec![FlowStep::Wait(until)];
        }
        let steps = self.inner.on_transport_error(context, error, request_id, now);
        self.track(steps)
    }

    fn on_timer(&mut self, context: &FlowContext<'_>, request_id: RequestId, now: Timestamp) -> Vec<FlowStep> {
        let Some(last) = self.last.as_mut().filter(|last| last.backoff_until.is_some()) else {
            let steps = self.inner.on_timer(context, request_id, now);
            return self.track(steps);
        };
        match last.backoff_until {
            Some(until) if now < until => vec![FlowStep::Wait(until)],
            _ => {
                last.backoff_until = None;
                last.in_flight = Some(request_id);
                last.attempt += 1;
                vec![FlowStep::Send(copy(&last.request, request_id))]
            }
        }
    }

    fn on_answer(
        &mut self,
        context: &FlowContext<'_>,
        answer: crate::Secret,
        request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        let steps = self.inner.on_answer(context, answer, request_id, now);
        self.track(steps)
    }
}
