//! The token-request state machine shared by every non-interactive grant.
//!
//! ```text
//! Ready ──send──► Sent ──response──► Finished (Done | Failed)
//!                  │  └─transient error, retry safe──► Backoff ──timer──► Ready
//!                  └─transport error──► (same as a response error)
//! ```
//!
//! Retrying is not always safe. A login (password, client credentials) can be repeated at will. A
//! refresh cannot: if the server processed a rotating refresh but the answer was lost (timeout,
//! reset, 500), presenting the same refresh token again is *reuse*, and servers with reuse
//! detection revoke the whole grant. So a refresh is retried only when the server said it did not
//! process the request (connection refused, 429, 503, `temporarily_unavailable`).

use std::time::Duration;

use super::Grant;
use super::refresh::{merge_refreshed, params as refresh_params};
use crate::ClientAuth;
use crate::protocol::{parse_token_response, token_request};
use crate::{Error, HttpResponse, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet, TransportErrorKind};

/// What a flow needs next.
#[derive(Debug)]
pub enum Step {
    /// Send this request and feed its answer back.
    Send(crate::HttpRequest),
    /// Call back at (or after) this instant.
    Wait(Timestamp),
    /// Finished with tokens.
    Done(TokenSet),
    /// Finished with an error.
    Failed(Error),
}

/// Retry limits for one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Total attempts including the first (1 = never retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest delay; a server asking for a longer `Retry-After` fails the flow instead.
    pub max_delay: Duration,
}

impl RetrySettings {
    /// How long to wait after failed attempt number `attempt` (1-based): the server's `Retry-After`,
    /// else `base_delay` doubled per attempt and scaled by `0.5 + jitter` (jitter in [0, 1)). `None`
    /// when that is longer than `max_delay`: the flow fails instead of waiting.
    pub fn delay_before_retry(&self, attempt: u32, error: &Error, jitter: f64) -> Option<Duration> {
        self.delay_after(attempt, error.retry_after(), jitter)
    }

    /// [`RetrySettings::delay_before_retry`] with the server's `Retry-After` given directly.
    pub fn delay_after(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
        let backoff = self
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0));
        let delay = retry_after.unwrap_or(backoff);
        (delay <= self.max_delay).then_some(delay)
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings { max_attempts: 3, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

#[derive(Debug)]
enum Purpose {
    Login { grant: Grant },
    Refresh { refresh_token: Secret, previous: Option<TokenSet> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Sent { request_id: RequestId },
    Backoff { until: Timestamp },
    Finished,
}

/// One token request from start to tokens or error, with safe retries.
#[derive(Debug)]
pub struct TokenFlow {
    purpose: Purpose,
    state: State,
    attempt: u32,
}

impl TokenFlow {
    /// A login with `grant` (not for static grants, which need no request).
    pub fn login(grant: Grant) -> Self {
        TokenFlow { purpose: Purpose::Login { grant }, state: State::Ready, attempt: 0 }
    }

    /// A refresh of `previous`; `None` when it holds no refresh token.
    pub fn refresh(previous: &TokenSet) -> Option<Self> {
        let refresh_token = previous.refresh_token.clone()?;
        Some(TokenFlow {
            purpose: Purpose::Refresh { refresh_token, previous: Some(previous.clone()) },
            state: State::Ready,
            attempt: 0,
        })
    }

    /// True for a refresh (as opposed to a login).
    pub fn is_refresh(&self) -> bool {
        matches!(self.purpose, Purpose::Refresh { .. })
    }

    /// The grant a login flow uses.
    pub fn grant(&self) -> Option<&Grant> {
        match &self.purpose {
            Purpose::Login { grant } => Some(grant),
            Purpose::Refresh { .. } => None,
        }
    }

    /// The id of the request in flight, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        match self.state {
            State::Sent { request_id } => Some(request_id),
            _ => None,
        }
    }

    /// True while the flow waits out a backoff (a timer is what it waits for).
    pub fn is_backing_off(&self) -> bool {
        matches!(self.state, State::Backoff { .. })
    }

    /// Attempts made so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Builds the request (state must be ready, or a backoff that has elapsed at `now`).
    pub fn send(
        &mut self,
        id: RequestId,
        endpoint: &str,
        client: &ClientAuth,
        scope: Option<&str>,
        now: Timestamp,
    ) -> Step {
        match self.state {
            State::Ready => {}
            State::Backoff { until } if now >= until => {}
            State::Backoff { until } => return Step::Wait(until),
            State::Sent { .. } | State::Finished => {
                return self.fail(Error::configuration("token flow asked to send while not ready"));
            }
        }
        let params = match &self.purpose {
            Purpose::Login { grant } => match grant.login_params(now) {
                Ok(Some(mut params)) => {
                    // Scope on the initial grant only: a refresh without scope keeps the original (RFC 6749 §6).
                    if let Some(scope) = scope.filter(|s| !s.is_empty() && !matches!(grant, Grant::RefreshToken { .. }))
                    {
                        params.push(("scope", Secret::new(scope)));
                    }
                    params
                }
                Ok(None) => return self.fail(Error::configuration("static tokens are not requested")),
                Err(error) => return self.fail(error),
            },
            Purpose::Refresh { refresh_token, .. } => refresh_params(refresh_token),
        };
        let fields: Vec<(&str, &str)> = params.iter().map(|(name, value)| (*name, value.expose_secret())).collect();
        self.attempt += 1;
        self.state = State::Sent { request_id: id };
        Step::Send(token_request(id, endpoint, client, &fields))
    }

    /// Feeds the answer to the request in flight. `jitter` in `[0, 1)` spreads retry delays.
    pub fn on_response(
        &mut self,
        response: &HttpResponse,
        endpoint: &str,
        now: Timestamp,
        retry: &RetrySettings,
        jitter: f64,
    ) -> Step {
        if self.request_id() != Some(response.request_id) {
            return Step::Wait(now); // not ours: ignore
        }
        match parse_token_response(response, endpoint, now) {
            Ok(tokens) => {
                self.state = State::Finished;
                Step::Done(self.finish(tokens))
            }
            Err(error) => self.on_error(error, now, retry, jitter),
        }
    }

    /// Feeds a transport failure of the request in flight.
    pub fn on_transport_error(&mut self, error: Error, now: Timestamp, retry: &RetrySettings, jitter: f64) -> Step {
        self.on_error(error, now, retry, jitter)
    }

    fn finish(&self, tokens: TokenSet) -> TokenSet {
        match &self.purpose {
            Purpose::Refresh { refresh_token, previous } => merge_refreshed(refresh_token, previous.as_ref(), tokens),
            Purpose::Login { grant: Grant::RefreshToken { refresh_token } } => {
                merge_refreshed(refresh_token, None, tokens)
            }
            Purpose::Login { .. } => tokens,
        }
    }

    fn on_error(&mut self, error: Error, now: Timestamp, retry: &RetrySettings, jitter: f64) -> Step {
        if self.attempt < retry.max_attempts
            && self.retry_is_safe(&error)
            && let Some(delay) = retry.delay_before_retry(self.attempt, &error, jitter)
        {
            let until = now + delay;
            self.state = State::Backoff { until };
            return Step::Wait(until);
        }
        self.fail(error)
    }

    fn retry_is_safe(&self, error: &Error) -> bool {
        let uses_refresh_token =
            matches!(self.purpose, Purpose::Refresh { .. } | Purpose::Login { grant: Grant::RefreshToken { .. } });
        if !uses_refresh_token {
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

    fn fail(&mut self, error: Error) -> Step {
        self.state = State::Finished;
        Step::Failed(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpResponse;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    fn refreshable() -> TokenSet {
        let mut tokens = TokenSet::bearer("at", Some(NOW), NOW);
        tokens.refresh_token = Some(Secret::new("rt-1"));
        tokens
    }

    fn client() -> ClientAuth {
        ClientAuth::basic("c", "s")
    }

    #[test]
    fn refresh_keeps_refresh_token_when_none_returned() {
        let mut flow = TokenFlow::refresh(&refreshable()).unwrap();
        let Step::Send(request) = flow.send(RequestId(1), "https://idp/token", &client(), Some("x"), NOW) else {
            panic!()
        };
        assert_eq!(std::str::from_utf8(&request.body).unwrap(), "grant_type=refresh_token&refresh_token=rt-1");
        let response = HttpResponse::json(RequestId(1), 200, r#"{"access_token":"at-2","expires_in":60}"#);
        let Step::Done(tokens) = flow.on_response(&response, "https://idp/token", NOW, &RetrySettings::default(), 0.0)
        else {
            panic!()
        };
        assert_eq!(tokens.refresh_token, Some(Secret::new("rt-1")));
        assert_eq!(tokens.access_token, Secret::new("at-2"));
    }

    #[test]
    fn login_retries_transient_errors_with_backoff() {
        let mut flow = TokenFlow::login(Grant::ClientCredentials);
        let retry = RetrySettings::default();
        assert!(matches!(flow.send(RequestId(1), "e", &client(), Some("api"), NOW), Step::Send(_)));
        let reset = Error::Transport {
            kind: TransportErrorKind::ConnectionClosed,
            endpoint: "e".into(),
            message: "reset".into(),
        };
        let Step::Wait(until) = flow.on_transport_error(reset, NOW, &retry, 0.5) else { panic!() };
        assert_eq!(until, NOW + Duration::from_millis(200));
        assert!(matches!(flow.send(RequestId(2), "e", &client(), None, NOW), Step::Wait(_)), "too early");
        let Step::Send(request) = flow.send(RequestId(2), "e", &client(), Some("api"), until) else { panic!() };
        assert_eq!(std::str::from_utf8(&request.body).unwrap(), "grant_type=client_credentials&scope=api");
        let html = |id| HttpResponse {
            request_id: RequestId(id),
            status: 500,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html/>".to_vec(),
        };
        let busy = html(2);
        let Step::Wait(second) = flow.on_response(&busy, "e", until, &retry, 0.5) else { panic!() };
        assert_eq!(second, until + Duration::from_millis(400));
        flow.send(RequestId(3), "e", &client(), None, second);
        let Step::Failed(error) = flow.on_response(&html(3), "e", second, &retry, 0.5) else {
            panic!("third attempt is the last")
        };
        assert!(matches!(error, Error::UnexpectedStatus { status: 500, .. }));
    }

    #[test]
    fn refresh_is_not_retried_when_the_server_may_have_rotated() {
        let retry = RetrySettings::default();
        for error in [
            Error::Transport { kind: TransportErrorKind::Timeout, endpoint: "e".into(), message: String::new() },
            Error::Transport {
                kind: TransportErrorKind::ConnectionClosed,
                endpoint: "e".into(),
                message: String::new(),
            },
            Error::UnexpectedStatus { status: 500, content_type: None, retry_after: None, endpoint: "e".into() },
        ] {
            let mut flow = TokenFlow::refresh(&refreshable()).unwrap();
            flow.send(RequestId(1), "e", &client(), None, NOW);
            assert!(matches!(flow.on_transport_error(error, NOW, &retry, 0.0), Step::Failed(_)));
        }
        let mut flow = TokenFlow::refresh(&refreshable()).unwrap();
        flow.send(RequestId(1), "e", &client(), None, NOW);
        let limited = Error::UnexpectedStatus {
            status: 429,
            content_type: None,
            retry_after: Some(Duration::from_secs(2)),
            endpoint: "e".into(),
        };
        assert!(
            matches!(flow.on_transport_error(limited, NOW, &retry, 0.0), Step::Wait(t) if t == NOW + Duration::from_secs(2))
        );
    }

    #[test]
    fn responses_to_other_requests_are_ignored() {
        let mut flow = TokenFlow::login(Grant::ClientCredentials);
        flow.send(RequestId(5), "e", &client(), None, NOW);
        let stray = HttpResponse::json(RequestId(4), 200, r#"{"access_token":"x"}"#);
        assert!(matches!(flow.on_response(&stray, "e", NOW, &RetrySettings::default(), 0.0), Step::Wait(_)));
        assert_eq!(flow.request_id(), Some(RequestId(5)));
    }
}
