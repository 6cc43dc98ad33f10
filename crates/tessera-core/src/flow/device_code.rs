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

use super::Prompt;
use crate::ClientAuth;
use crate::protocol::{
    DEVICE_CODE_GRANT_TYPE, device_authorization_request, parse_device_authorization, parse_token_response,
    token_request,
};
use crate::{Error, HttpRequest, HttpResponse, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet};

/// A step of the device flow.
#[derive(Debug)]
pub enum DeviceStep {
    /// Send this request.
    Send(HttpRequest),
    /// Show this to the user (no answer needed), then carry on with the next step.
    Prompt(Prompt),
    /// Call back at this instant.
    Wait(Timestamp),
    /// Approved: tokens.
    Done(TokenSet),
    /// Denied, expired or broken.
    Failed(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Authorizing { request_id: RequestId },
    Waiting { until: Timestamp },
    Polling { request_id: RequestId },
    Finished,
}

/// The device flow's state.
#[derive(Debug)]
pub struct DeviceFlow {
    state: State,
    device_code: Option<Secret>,
    interval: Duration,
    deadline: Timestamp,
}

impl Default for DeviceFlow {
    fn default() -> Self {
        DeviceFlow {
            state: State::Ready,
            device_code: None,
            interval: Duration::from_secs(5),
            deadline: Timestamp::EPOCH,
        }
    }
}

impl DeviceFlow {
    /// A flow that has not started.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the request in flight, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        match self.state {
            State::Authorizing { request_id } | State::Polling { request_id } => Some(request_id),
            _ => None,
        }
    }

    /// True while the device authorization request (not a poll) is in flight.
    pub fn is_authorizing(&self) -> bool {
        matches!(self.state, State::Authorizing { .. })
    }

    /// The current polling interval (grows on `slow_down`).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts: the device authorization request.
    pub fn start(&mut self, id: RequestId, endpoint: &str, client: &ClientAuth, scope: Option<&str>) -> DeviceStep {
        if self.state != State::Ready {
            return self.fail(Error::configuration("device flow started twice"));
        }
        self.state = State::Authorizing { request_id: id };
        DeviceStep::Send(device_authorization_request(id, endpoint, client, scope))
    }

    /// Feeds the answer to the request in flight (`endpoint` is the URL it was sent to).
    pub fn on_response(&mut self, response: &HttpResponse, endpoint: &str, now: Timestamp) -> Vec<DeviceStep> {
        match self.state {
            State::Authorizing { request_id } if request_id == response.request_id => {
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
                        vec![DeviceStep::Prompt(prompt), self.wait(now)]
                    }
                    Err(error) => vec![self.fail(error)],
                }
            }
            State::Polling { request_id } if request_id == response.request_id => {
                match parse_token_response(response, endpoint, now) {
                    Ok(tokens) => {
                        self.state = State::Finished;
                        vec![DeviceStep::Done(tokens)]
                    }
                    Err(error) => vec![self.on_poll_error(error, now)],
                }
            }
            _ => Vec::new(), // not ours
        }
    }

    /// Feeds a transport failure of the request in flight.
    pub fn on_transport_error(&mut self, error: Error, now: Timestamp) -> Vec<DeviceStep> {
        match self.state {
            // Polling again is safe (see the module docs); the deadline bounds it.
            State::Polling { .. } if error.is_transient() => vec![self.wait(now)],
            _ => vec![self.fail(error)],
        }
    }

    /// The wait elapsed: poll (or wait more, or give up past the deadline).
    pub fn on_timer(&mut self, id: RequestId, token_endpoint: &str, client: &ClientAuth, now: Timestamp) -> DeviceStep {
        match self.state {
            State::Waiting { until } if now < until => DeviceStep::Wait(until),
            State::Waiting { .. } if now >= self.deadline => self.fail(Error::ReauthenticationRequired {
                reason: "the device code expired before the login was approved; start the login again".into(),
            }),
            State::Waiting { .. } => {
                let Some(device_code) = &self.device_code else {
                    return self.fail(Error::configuration("device flow polled without a device code"));
                };
                let request = token_request(
                    id,
                    token_endpoint,
                    client,
                    &[("grant_type", DEVICE_CODE_GRANT_TYPE), ("device_code", device_code.expose_secret())],
                );
                self.state = State::Polling { request_id: id };
                DeviceStep::Send(request)
            }
            _ => DeviceStep::Wait(now),
        }
    }

    fn on_poll_error(&mut self, error: Error, now: Timestamp) -> DeviceStep {
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

    fn wait(&mut self, now: Timestamp) -> DeviceStep {
        let until = now + self.interval;
        self.state = State::Waiting { until };
        DeviceStep::Wait(until)
    }

    fn fail(&mut self, error: Error) -> DeviceStep {
        self.state = State::Finished;
        DeviceStep::Failed(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    fn client() -> ClientAuth {
        ClientAuth::public("device-client")
    }

    fn body(request: &HttpRequest) -> &str {
        std::str::from_utf8(&request.body).unwrap()
    }

    fn authorized(flow: &mut DeviceFlow) -> Timestamp {
        let DeviceStep::Send(request) = flow.start(RequestId(1), "https://idp/device", &client(), Some("openid"))
        else {
            panic!()
        };
        assert_eq!(body(&request), "scope=openid&client_id=device-client");
        let response = HttpResponse::json(
            RequestId(1),
            200,
            r#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://idp/device","expires_in":60,"interval":2}"#,
        );
        let steps = flow.on_response(&response, "https://idp/device", NOW);
        let [DeviceStep::Prompt(Prompt::DeviceCode { user_code, expires_at, .. }), DeviceStep::Wait(until)] =
            &steps[..]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(user_code, "ABCD-EFGH");
        assert_eq!(*expires_at, NOW + Duration::from_secs(60));
        *until
    }

    fn poll(flow: &mut DeviceFlow, id: u64, at: Timestamp, mut answer: HttpResponse) -> Vec<DeviceStep> {
        let DeviceStep::Send(request) = flow.on_timer(RequestId(id), "https://idp/token", &client(), at) else {
            panic!("expected a poll")
        };
        assert!(
            body(&request)
                .starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dc")
        );
        answer.request_id = RequestId(id);
        flow.on_response(&answer, "https://idp/token", at)
    }

    fn error(code: &str) -> HttpResponse {
        HttpResponse::json(RequestId(0), 400, format!(r#"{{"error":"{code}"}}"#))
    }

    #[test]
    fn pending_then_slow_down_then_tokens() {
        let mut flow = DeviceFlow::new();
        let until = authorized(&mut flow);
        assert_eq!(until, NOW + Duration::from_secs(2));
        assert!(matches!(flow.on_timer(RequestId(2), "t", &client(), NOW), DeviceStep::Wait(_)), "too early: wait");
        let steps = poll(&mut flow, 2, until, error("authorization_pending"));
        assert!(matches!(steps[..], [DeviceStep::Wait(t)] if t == until + Duration::from_secs(2)));
        let at = until + Duration::from_secs(2);
        let steps = poll(&mut flow, 3, at, error("slow_down"));
        assert!(matches!(steps[..], [DeviceStep::Wait(t)] if t == at + Duration::from_secs(7)), "{steps:?}");
        assert_eq!(flow.interval(), Duration::from_secs(7));
        let at = at + Duration::from_secs(7);
        let steps = poll(
            &mut flow,
            4,
            at,
            HttpResponse::json(RequestId(0), 200, r#"{"access_token":"at","refresh_token":"rt"}"#),
        );
        assert!(matches!(&steps[..], [DeviceStep::Done(tokens)] if tokens.refresh_token.is_some()));
    }

    #[test]
    fn denial_expiry_and_deadline_end_the_flow() {
        for code in ["access_denied", "expired_token"] {
            let mut flow = DeviceFlow::new();
            let until = authorized(&mut flow);
            let steps = poll(&mut flow, 2, until, error(code));
            assert!(matches!(&steps[..], [DeviceStep::Failed(e)] if e.oauth_code().map(|c| c.as_str()) == Some(code)));
        }
        let mut flow = DeviceFlow::new();
        authorized(&mut flow);
        let late = NOW + Duration::from_secs(61);
        let DeviceStep::Failed(error) = flow.on_timer(RequestId(2), "t", &client(), late) else { panic!() };
        assert!(error.requires_reauthentication());
    }

    #[test]
    fn transient_poll_failures_keep_polling() {
        let mut flow = DeviceFlow::new();
        let until = authorized(&mut flow);
        let DeviceStep::Send(_) = flow.on_timer(RequestId(2), "t", &client(), until) else { panic!() };
        let reset = Error::Transport {
            kind: crate::TransportErrorKind::ConnectionClosed,
            endpoint: "t".into(),
            message: String::new(),
        };
        assert!(matches!(flow.on_transport_error(reset, until)[..], [DeviceStep::Wait(_)]));
    }
}
