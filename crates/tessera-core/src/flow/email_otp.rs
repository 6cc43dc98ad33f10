//! Email one-time-code login, generic JSON flavour: `POST start` → the server mails a code →
//! [`Prompt::Code`] → `POST verify` with the code → standard OAuth token JSON. Wrong codes are asked
//! again (with the attempt number and why the last one was refused) while attempts remain. Refresh
//! and revocation are standard OAuth (the grant returns no flow for them).
//!
//! Wire format (the reference server's `/otp/*`, see docs/email-otp.md):
//! - start: `{"client_id", "email", "client_secret"?}` → `{"challenge_id", "channel", "destination",
//!   "expires_in", "attempts_left"}`
//! - verify: `{"challenge_id", "code"}` → token JSON (RFC 6749 §5.1); a wrong code → 400
//!   `{"error": "invalid_code", "error_description", "attempts_left"}`; other errors as RFC 6749 §5.2.
//!
//! No I/O here: requests out, responses in.

use serde::{Deserialize, Serialize};

use super::{CodeChannel, Flow, FlowContext, FlowStep, Prompt};
use crate::protocol::{parse_error_response, parse_token_response};
use crate::{Error, HttpRequest, HttpResponse, Method, OAuthErrorCode, RequestId, Secret, Timestamp};

/// Discovery field naming the start endpoint (non-standard).
pub const OTP_START_ENDPOINT_FIELD: &str = "otp_start_endpoint";
/// Discovery field naming the verify endpoint (non-standard).
pub const OTP_VERIFY_ENDPOINT_FIELD: &str = "otp_verify_endpoint";

#[derive(Debug)]
pub(crate) struct EmailOtpLogin {
    email: String,
    start_endpoint: Option<String>,
    verify_endpoint: Option<String>,
    max_attempts: u32,
    state: State,
}

#[derive(Debug)]
enum State {
    Starting,
    /// A code was mailed; `attempt` is the ask in progress (1-based).
    Asking(Challenge),
    Verifying(Challenge),
    Finished,
}

#[derive(Debug)]
struct Challenge {
    challenge_id: Secret,
    channel: CodeChannel,
    destination: Option<String>,
    attempt: u32,
    /// The fewest attempts allowed: ours, or what the server said it still accepts.
    limit: u32,
}

#[derive(Serialize)]
struct StartBody<'a> {
    client_id: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

#[derive(Serialize)]
struct VerifyBody<'a> {
    challenge_id: &'a str,
    code: &'a str,
}

#[derive(Deserialize)]
struct StartResponse {
    challenge_id: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    attempts_left: Option<u32>,
}

#[derive(Deserialize)]
struct InvalidCode {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    attempts_left: Option<u32>,
}

impl EmailOtpLogin {
    pub(crate) fn new(
        email: String,
        start_endpoint: Option<String>,
        verify_endpoint: Option<String>,
        max_attempts: u32,
    ) -> Self {
        EmailOtpLogin {
            email,
            start_endpoint,
            verify_endpoint,
            max_attempts: max_attempts.max(1),
            state: State::Starting,
        }
    }

    fn endpoint(&self, context: &FlowContext<'_>, explicit: Option<&String>, field: &str) -> Result<String, Error> {
        if let Some(endpoint) = explicit {
            return Ok(endpoint.clone());
        }
        context.metadata.and_then(|m| m.extra_str(field)).map(str::to_owned).ok_or_else(|| {
            Error::configuration(format!(
                "the email_otp grant needs its {field}: configure it, or use an issuer whose discovery document has it"
            ))
        })
    }

    fn fail(&mut self, error: Error) -> Vec<FlowStep> {
        self.state = State::Finished;
        vec![FlowStep::Failed(error)]
    }

    fn prompt(challenge: &Challenge, previous_error: Option<String>) -> FlowStep {
        FlowStep::Prompt(Prompt::Code {
            channel: challenge.channel,
            destination: challenge.destination.clone(),
            attempt: challenge.attempt,
            previous_error,
        })
    }

    fn on_start_response(&mut self, response: &HttpResponse, endpoint: &str) -> Vec<FlowStep> {
        if !(200..300).contains(&response.status) {
            return self.fail(parse_error_response(response, endpoint));
        }
        let start: StartResponse = match parse_json(response, endpoint) {
            Ok(start) => start,
            Err(error) => return self.fail(error),
        };
        if start.challenge_id.is_empty() {
            return self.fail(Error::MalformedResponse {
                endpoint: endpoint.to_owned(),
                reason: "challenge_id is empty".into(),
            });
        }
        let channel = match start.channel.as_deref() {
            Some("sms") => CodeChannel::Sms,
            _ => CodeChannel::Email,
        };
        let limit = start.attempts_left.map_or(self.max_attempts, |left| left.min(self.max_attempts)).max(1);
        let challenge = Challenge {
            challenge_id: Secret::new(start.challenge_id),
            channel,
            destination: start.destination.as_deref().map(crate::protocol::server_text),
            attempt: 1,
            limit,
        };
        let step = Self::prompt(&challenge, None);
        self.state = State::Asking(challenge);
        vec![step]
    }

    fn on_verify_response(
        &mut self,
        mut challenge: Challenge,
        response: &HttpResponse,
        endpoint: &str,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        if (200..300).contains(&response.status) {
            self.state = State::Finished;
            return match parse_token_response(response, endpoint, now) {
                Ok(tokens) => vec![FlowStep::Done(tokens)],
                Err(error) => vec![FlowStep::Failed(error)],
            };
        }
        let invalid_code = (response.status == 400)
            .then(|| serde_json::from_slice::<InvalidCode>(&response.body).ok())
            .flatten()
            .filter(|body| body.error == "invalid_code");
        let Some(invalid_code) = invalid_code else {
            return self.fail(parse_error_response(response, endpoint));
        };
        let reason = invalid_code.error_description.unwrap_or_else(|| "the code was not accepted".into());
        let server_allows = invalid_code.attempts_left.is_none_or(|left| left > 0);
        if server_allows && challenge.attempt < challenge.limit {
            challenge.attempt += 1;
            let step = Self::prompt(&challenge, Some(crate::protocol::server_text(&reason)));
            self.state = State::Asking(challenge);
            return vec![step];
        }
        self.fail(Error::OAuth {
            code: OAuthErrorCode::InvalidGrant,
            description: Some(format!(
                "invalid_code: {} (no attempts left after {} wrong code{}); log in again for a new code",
                crate::protocol::server_text(&reason),
                challenge.attempt,
                if challenge.attempt == 1 { "" } else { "s" }
            )),
            status: response.status,
            endpoint: endpoint.to_owned(),
        })
    }
}

impl super::resend::Resendable for EmailOtpLogin {
    fn resend_rule(&self) -> super::resend::ResendRule {
        use super::resend::ResendRule;
        match self.state {
            // Asking for a code again is harmless (the person is prompted only once it succeeded).
            State::Starting => ResendRule::WhenTransient,
            // A code is redeemed once (and wrong ones count against the attempts).
            State::Verifying(_) => ResendRule::WhenNotProcessed,
            State::Asking(_) | State::Finished => ResendRule::Never,
        }
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(response: &HttpResponse, endpoint: &str) -> Result<T, Error> {
    let malformed = |reason: String| Error::MalformedResponse { endpoint: endpoint.to_owned(), reason };
    match response.media_type().as_deref() {
        Some("application/json") => {}
        Some(other) if other.ends_with("+json") => {}
        other => {
            return Err(malformed(format!("expected application/json, got {}", other.unwrap_or("no content type"))));
        }
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| malformed(format!("invalid JSON ({:?} at line {} column {})", e.classify(), e.line(), e.column())))
}

fn json_post(id: RequestId, endpoint: String, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        id,
        method: Method::Post,
        url: endpoint,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
        ],
        body,
    }
}

impl Flow for EmailOtpLogin {
    fn start(&mut self, context: &FlowContext<'_>, request_id: RequestId, _now: Timestamp) -> Vec<FlowStep> {
        let endpoint = match self.endpoint(context, self.start_endpoint.as_ref(), OTP_START_ENDPOINT_FIELD) {
            Ok(endpoint) => endpoint,
            Err(error) => return self.fail(error),
        };
        if self.email.trim().is_empty() {
            return self.fail(Error::configuration("the email_otp grant needs an email address"));
        }
        let client = &context.config.client;
        let body = StartBody {
            client_id: &client.client_id,
            email: &self.email,
            client_secret: client.client_secret.as_ref().map(Secret::expose_secret),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.state = State::Starting;
        vec![FlowStep::Send(json_post(request_id, endpoint, body))]
    }

    fn on_response(
        &mut self,
        context: &FlowContext<'_>,
        response: &HttpResponse,
        _request_id: RequestId,
        now: Timestamp,
    ) -> Vec<FlowStep> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Starting => {
                let endpoint = self.endpoint(context, self.start_endpoint.as_ref(), OTP_START_ENDPOINT_FIELD);
                self.on_start_response(response, &crate::http::endpoint_of(&endpoint.unwrap_or_default()))
            }
            State::Verifying(challenge) => {
                let endpoint = self.endpoint(context, self.verify_endpoint.as_ref(), OTP_VERIFY_ENDPOINT_FIELD);
                self.on_verify_response(
                    challenge,
                    response,
                    &crate::http::endpoint_of(&endpoint.unwrap_or_default()),
                    now,
                )
            }
            State::Asking(_) | State::Finished => {
                self.fail(Error::internal("the email_otp login got a response it did not ask for"))
            }
        }
    }

    fn on_answer(
        &mut self,
        context: &FlowContext<'_>,
        answer: Secret,
        request_id: RequestId,
        _now: Timestamp,
    ) -> Vec<FlowStep> {
        let State::Asking(challenge) = std::mem::replace(&mut self.state, State::Finished) else {
            return self.fail(Error::internal("the email_otp login got an answer it did not ask for"));
        };
        let endpoint = match self.endpoint(context, self.verify_endpoint.as_ref(), OTP_VERIFY_ENDPOINT_FIELD) {
            Ok(endpoint) => endpoint,
            Err(error) => return self.fail(error),
        };
        // People paste codes with spaces ("123 456") or a trailing newline.
        let code = Secret::new(answer.expose_secret().chars().filter(|c| !c.is_whitespace()).collect::<String>());
        if code.is_empty() {
            return self.fail(Error::configuration("no code was entered"));
        }
        let body = VerifyBody { challenge_id: challenge.challenge_id.expose_secret(), code: code.expose_secret() };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.state = State::Verifying(challenge);
        vec![FlowStep::Send(json_post(request_id, endpoint, body))]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Action, ClientAuth, Endpoints, Engine, Event, Grant, ProviderConfig};

    const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

    fn new_engine(grant: Grant, endpoints: Endpoints) -> Engine {
        let mut engine = Engine::default();
        engine.register("otp", ProviderConfig { client: ClientAuth::public("cli"), endpoints, scope: None, grant });
        engine
    }

    fn grant(max_attempts: u32) -> Grant {
        Grant::EmailOtp {
            email: "alice@example.com".into(),
            otp_start_endpoint: Some("https://idp/otp/start".into()),
            otp_verify_endpoint: Some("https://idp/otp/verify".into()),
            max_code_attempts: max_attempts,
        }
    }

    fn sent(actions: &[Action]) -> &HttpRequest {
        match actions {
            [Action::Send(request)] => request,
            other => panic!("expected one request, got {other:?}"),
        }
    }

    fn body(request: &HttpRequest) -> String {
        String::from_utf8(request.body.clone()).unwrap()
    }

    fn answer(engine: &mut Engine, request: &HttpRequest, status: u16, body: &str) -> Vec<Action> {
        engine.handle(Event::Response(HttpResponse::json(request.id, status, body)), T0)
    }

    fn code(engine: &mut Engine, code: &str) -> Vec<Action> {
        engine.handle(Event::Answer { key: "otp".into(), answer: Secret::new(code) }, T0)
    }

    const STARTED: &str = r#"{"challenge_id":"ch-1","channel":"email","destination":"a***@example.com","expires_in":300,"attempts_left":3}"#;

    #[test]
    fn start_prompt_verify_bytes() {
        let mut engine = new_engine(grant(3), Endpoints::explicit("https://idp/token"));
        assert!(Grant::email_otp("x@y").is_interactive() && !Grant::email_otp("x@y").logs_in_unattended());
        let actions = engine.login("otp", T0);
        let start = sent(&actions);
        assert_eq!(start.url, "https://idp/otp/start");
        assert_eq!(start.header("content-type"), Some("application/json"));
        assert_eq!(body(start), r#"{"client_id":"cli","email":"alice@example.com"}"#);
        let asked = answer(&mut engine, start, 200, STARTED);
        let [Action::Prompt { prompt, .. }] = &asked[..] else { panic!("{asked:?}") };
        assert_eq!(
            prompt,
            &Prompt::Code {
                channel: CodeChannel::Email,
                destination: Some("a***@example.com".into()),
                attempt: 1,
                previous_error: None
            }
        );
        let verify = code(&mut engine, " 123 456\n");
        let verify = sent(&verify);
        assert_eq!(verify.url, "https://idp/otp/verify");
        assert_eq!(body(verify), r#"{"challenge_id":"ch-1","code":"123456"}"#);
        let done = answer(&mut engine, verify, 200, r#"{"access_token":"at","expires_in":60,"refresh_token":"rt"}"#);
        let [Action::Done { tokens, .. }] = &done[..] else { panic!("{done:?}") };
        assert_eq!(tokens.expires_at, Some(T0 + Duration::from_secs(60)));

        // Refresh is the standard OAuth grant at the token endpoint.
        let later = T0 + Duration::from_secs(59);
        let refresh = engine.ensure("otp", later);
        assert_eq!(sent(&refresh).url, "https://idp/token");
        assert!(body(sent(&refresh)).starts_with("grant_type=refresh_token&refresh_token=rt"));
    }

    #[test]
    fn confidential_clients_send_their_secret() {
        let mut engine = Engine::default();
        engine.register(
            "otp",
            ProviderConfig {
                client: ClientAuth::basic("cli", Secret::new("cs")),
                endpoints: Endpoints::explicit("https://idp/token"),
                scope: None,
                grant: grant(3),
            },
        );
        let actions = engine.login("otp", T0);
        assert_eq!(body(sent(&actions)), r#"{"client_id":"cli","email":"alice@example.com","client_secret":"cs"}"#);
    }

    #[test]
    fn wrong_codes_ask_again_until_the_lower_limit_then_fail() {
        // Ours is 2, the server's 3: two asks.
        let mut engine = new_engine(grant(2), Endpoints::explicit("https://idp/token"));
        let actions = engine.login("otp", T0);
        answer(&mut engine, sent(&actions), 200, STARTED);
        let verify = code(&mut engine, "000000");
        let again = answer(
            &mut engine,
            sent(&verify),
            400,
            r#"{"error":"invalid_code","error_description":"wrong code","attempts_left":2}"#,
        );
        let [Action::Prompt { prompt: Prompt::Code { attempt: 2, previous_error: Some(reason), .. }, .. }] = &again[..]
        else {
            panic!("{again:?}")
        };
        assert_eq!(reason, "wrong code");
        let verify = code(&mut engine, "111111");
        let failed = answer(&mut engine, sent(&verify), 400, r#"{"error":"invalid_code","attempts_left":1}"#);
        let [Action::Failed { error, .. }] = &failed[..] else { panic!("{failed:?}") };
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert!(error.to_string().contains("no attempts left after 2 wrong codes"), "{error}");
        assert!(!error.to_string().contains("111111"));
        assert!(!engine.is_busy("otp"));

        // The server's count wins when it is lower; its invalid_grant ends the login as it is.
        let mut engine = engine_with_limit(5);
        let actions = engine.login("otp", T0);
        answer(&mut engine, sent(&actions), 200, r#"{"challenge_id":"c","attempts_left":1}"#);
        let verify = code(&mut engine, "1");
        let failed = answer(&mut engine, sent(&verify), 400, r#"{"error":"invalid_code","attempts_left":0}"#);
        assert!(matches!(&failed[..], [Action::Failed { .. }]), "{failed:?}");
        let mut engine = engine_with_limit(5);
        let actions = engine.login("otp", T0);
        answer(&mut engine, sent(&actions), 200, STARTED);
        let verify = code(&mut engine, "1");
        let failed =
            answer(&mut engine, sent(&verify), 400, r#"{"error":"invalid_grant","error_description":"expired"}"#);
        let [Action::Failed { error, .. }] = &failed[..] else { panic!("{failed:?}") };
        assert!(error.oauth_code() == Some(&OAuthErrorCode::InvalidGrant) && error.to_string().contains("expired"));
    }

    fn transport(
        engine: &mut Engine,
        request: &HttpRequest,
        kind: crate::TransportErrorKind,
        at: Timestamp,
    ) -> Vec<Action> {
        let error = Error::Transport { kind, endpoint: request.endpoint(), message: "injected".into() };
        engine.handle(Event::TransportFailed { request_id: request.id, error }, at)
    }

    fn waited(engine: &mut Engine, actions: &[Action]) -> Vec<Action> {
        let [Action::Wait { until, .. }] = actions else { panic!("expected a backoff, got {actions:?}") };
        // A timer that fires early is told to wait again, then the same request goes out.
        let early = engine.handle(Event::Timer { key: "otp".into() }, *until - Duration::from_millis(1));
        assert!(matches!(&early[..], [Action::Wait { until: again, .. }] if again == until), "{early:?}");
        engine.handle(Event::Timer { key: "otp".into() }, *until)
    }

    /// Starting is resent on any transient failure (up to the login's 3 attempts); a code is
    /// resent only when the server cannot have processed it (429 / 503 / no connection), and a
    /// 500, a timeout or a reset ends the login with that error, the code not presented twice.
    #[test]
    fn resends_follow_what_each_request_redeems() {
        use crate::TransportErrorKind::{Connect, ConnectionClosed, Timeout};
        // (The code limit of the grant is 3 too; the resends are capped by the engine's
        // `RetrySettings::max_attempts`, 3 by default.)
        let mut engine = engine_with_limit(3);
        let first = engine.login("otp", T0);
        let waits = answer(&mut engine, sent(&first), 500, "oops");
        let second = waited(&mut engine, &waits);
        assert_eq!(body(sent(&second)), body(sent(&first)));
        assert_ne!(sent(&second).id, sent(&first).id);
        let waits = transport(&mut engine, sent(&second), Timeout, T0);
        let third = waited(&mut engine, &waits);
        let failed = answer(&mut engine, sent(&third), 502, "<html>");
        let [Action::Failed { error, .. }] = &failed[..] else { panic!("three attempts, then the error: {failed:?}") };
        assert!(matches!(error, Error::UnexpectedStatus { status: 502, .. }), "{error}");

        let mut engine = engine_with_limit(3);
        let start = engine.login("otp", T0);
        answer(&mut engine, sent(&start), 200, STARTED);
        let verify = code(&mut engine, "123456");
        let mut busy = HttpResponse::json(sent(&verify).id, 429, "");
        busy.headers.push(("Retry-After".into(), "2".into()));
        let waits = engine.handle(Event::Response(busy), T0);
        assert!(matches!(&waits[..], [Action::Wait { until, .. }] if *until == T0 + Duration::from_secs(2)));
        let again = waited(&mut engine, &waits);
        assert_eq!(body(sent(&again)), r#"{"challenge_id":"ch-1","code":"123456"}"#);
        // A stray timer while the resent copy is in flight changes nothing.
        assert!(engine.handle(Event::Timer { key: "otp".into() }, T0).is_empty());
        let waits = transport(&mut engine, sent(&again), Connect, T0);
        let last = waited(&mut engine, &waits);
        let done = answer(&mut engine, sent(&last), 200, r#"{"access_token":"at","expires_in":60}"#);
        assert!(matches!(&done[..], [Action::Done { .. }]), "{done:?}");

        for failure in [Err(500), Err(502), Ok(Timeout), Ok(ConnectionClosed)] {
            let mut engine = engine_with_limit(3);
            let start = engine.login("otp", T0);
            answer(&mut engine, sent(&start), 200, STARTED);
            let verify = code(&mut engine, "123456");
            let failed = match failure {
                Err(status) => answer(&mut engine, sent(&verify), status, "oops"),
                Ok(kind) => transport(&mut engine, sent(&verify), kind, T0),
            };
            let [Action::Failed { error, .. }] = &failed[..] else { panic!("{failure:?}: {failed:?}") };
            assert!(error.is_transient(), "{failure:?}: the error as it came: {error}");
            assert!(!engine.is_busy("otp"), "{failure:?}");
        }
    }

    fn engine_with_limit(max_attempts: u32) -> Engine {
        new_engine(grant(max_attempts), Endpoints::explicit("https://idp/token"))
    }

    #[test]
    fn endpoints_from_discovery_or_a_configuration_error() {
        let grant = Grant::email_otp("alice@example.com");
        let mut engine = new_engine(grant.clone(), Endpoints::discover("https://idp"));
        let actions = engine.login("otp", T0);
        let discovery = sent(&actions);
        let metadata = r#"{"issuer":"https://idp","token_endpoint":"https://idp/token","otp_start_endpoint":"https://idp/otp/start","otp_verify_endpoint":"https://idp/otp/verify"}"#;
        let actions = answer(&mut engine, discovery, 200, metadata);
        assert_eq!(sent(&actions).url, "https://idp/otp/start");
        let actions = answer(&mut engine, sent(&actions), 200, STARTED);
        assert!(matches!(&actions[..], [Action::Prompt { .. }]));
        assert_eq!(sent(&code(&mut engine, "1")).url, "https://idp/otp/verify");

        let mut engine = new_engine(grant, Endpoints::explicit("https://idp/token"));
        let failed = engine.login("otp", T0);
        let [Action::Failed { error: Error::Configuration { message }, .. }] = &failed[..] else {
            panic!("{failed:?}")
        };
        assert!(message.contains("otp_start_endpoint"), "{message}");
    }

    #[test]
    fn malformed_and_error_answers_are_typed() {
        for (status, content_type, body, check) in [
            (200, "text/html", "<html/>", "MalformedResponse"),
            (200, "application/json", r#"{"channel":"email"}"#, "MalformedResponse"),
            (200, "application/json", r#"{"challenge_id":""}"#, "MalformedResponse"),
            (400, "application/json", r#"{"error":"unauthorized_client"}"#, "OAuth"),
            (404, "text/plain", "not here", "UnexpectedStatus"), // 5xx are resent: see above
        ] {
            let mut engine = engine_with_limit(3);
            let actions = engine.login("otp", T0);
            let response = HttpResponse {
                request_id: sent(&actions).id,
                status,
                headers: vec![("content-type".into(), content_type.into())],
                body: body.into(),
            };
            let failed = engine.handle(Event::Response(response), T0);
            let [Action::Failed { error, .. }] = &failed[..] else { panic!("{failed:?}") };
            assert!(format!("{error:?}").starts_with(check), "{body}: {error:?}");
        }
        // A verify answer that is not tokens.
        let mut engine = engine_with_limit(3);
        let actions = engine.login("otp", T0);
        answer(&mut engine, sent(&actions), 200, STARTED);
        let verify = code(&mut engine, "123456");
        let failed = answer(&mut engine, sent(&verify), 200, r#"{"token":"x"}"#);
        assert!(matches!(&failed[..], [Action::Failed { error: Error::MalformedResponse { .. }, .. }]));
        // An empty answer is refused before anything is sent.
        let mut engine = engine_with_limit(3);
        let actions = engine.login("otp", T0);
        answer(&mut engine, sent(&actions), 200, STARTED);
        assert!(matches!(&code(&mut engine, "  ")[..], [Action::Failed { error: Error::Configuration { .. }, .. }]));
    }
}
