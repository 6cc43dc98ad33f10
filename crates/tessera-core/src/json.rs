//! The engine as JSON: actions out, events in, for hosts that bring their own HTTP stack and
//! runtime (another language, an embedded device, a test harness). No I/O here either.
//!
//! ```text
//! host                                    JsonEngine
//!  register(key, provider JSON)  ───────►
//!  ensure(key, now_ms)           ───────►  [{"type":"http_request","id":1,"method":"POST","url":…,"headers":{…},"body":"grant_type=…"}]
//!  (sends it with any HTTP client)
//!  handle({"type":"http_response","request_id":1,"status":200,"headers":{…},"body":"{…}"}, now_ms)
//!                                ◄───────  [{"type":"done","key":…,"tokens":{…}}]
//! ```
//!
//! Actions: `http_request`, `wait` (call back with `{"type":"timer","key":…}` at `until_ms`),
//! `prompt` (show `prompt` to the user: a device code to show while polling goes on, or, when
//! `expects_answer` is true, a browser URL or a one-time code to ask for), `done`, `failed` (with a
//! typed `error`), `logged_out`. Events: `http_response`, `transport_error` (`kind`: `connect`,
//! `timeout`, `connection_closed`, `body_too_large`, `other`), `timer`, `prompt_answer` (`key`,
//! `answer`: the code, or the URL the browser came back to) and `prompt_failed` (`key`, `message`:
//! nobody can answer). Times are milliseconds since the Unix epoch.
//!
//! Actions carry secrets where the host needs them (a request body with a password, the tokens of a
//! `done`): treat the JSON like the secrets it holds.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::provider_spec::{Deprecation, ProviderSpec};
use crate::{
    Action, Engine, EngineSettings, Error, Event, HttpResponse, LoginInputs, RequestId, Secret, Timestamp, TokenSet,
    TransportErrorKind, flow::Prompt,
};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum JsonAction<'a> {
    HttpRequest { id: u64, method: &'a str, url: &'a str, headers: BTreeMap<&'a str, &'a str>, body: &'a str },
    Wait { key: &'a str, until_ms: i64 },
    Prompt { key: &'a str, expects_answer: bool, prompt: JsonPrompt<'a> },
    Done { key: &'a str, tokens: &'a TokenSet },
    Failed { key: &'a str, error: JsonError },
    LoggedOut { key: &'a str, revoked: bool, error: Option<JsonError> },
}

/// A [`Prompt`] as JSON, tagged by `kind`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JsonPrompt<'a> {
    DeviceCode {
        user_code: &'a str,
        verification_uri: &'a str,
        verification_uri_complete: Option<&'a str>,
        expires_at_ms: i64,
    },
    Browser {
        authorization_url: &'a str,
        redirect_uri: &'a str,
    },
    Code {
        channel: &'static str,
        destination: Option<&'a str>,
        attempt: u32,
        previous_error: Option<&'a str>,
    },
}

impl<'a> JsonPrompt<'a> {
    fn from_prompt(prompt: &'a Prompt) -> Option<Self> {
        match prompt {
            Prompt::DeviceCode { user_code, verification_uri, verification_uri_complete, expires_at } => {
                Some(JsonPrompt::DeviceCode {
                    user_code,
                    verification_uri,
                    verification_uri_complete: verification_uri_complete.as_deref(),
                    expires_at_ms: expires_at.as_unix_millis(),
                })
            }
            Prompt::Browser { authorization_url, redirect_uri } => {
                Some(JsonPrompt::Browser { authorization_url, redirect_uri })
            }
            Prompt::Code { channel, destination, attempt, previous_error } => Some(JsonPrompt::Code {
                channel: channel.as_str(),
                destination: destination.as_deref(),
                attempt: *attempt,
                previous_error: previous_error.as_deref(),
            }),
            #[allow(unreachable_patterns, reason = "Prompt is non_exhaustive")]
            _ => None,
        }
    }
}

/// An [`Error`] as JSON: `kind`, `message`, `transient`, and `code` / `status` when they apply.
#[derive(Serialize)]
struct JsonError {
    kind: &'static str,
    code: Option<String>,
    status: Option<u16>,
    message: String,
    transient: bool,
}

impl From<&Error> for JsonError {
    fn from(error: &Error) -> Self {
        let (kind, code, status) = match error {
            Error::OAuth { code, status, .. } => ("oauth", Some(code.as_str().to_owned()), Some(*status)),
            Error::UnexpectedStatus { status, .. } => ("unexpected_status", None, Some(*status)),
            Error::Transport { .. } => ("transport", None, None),
            Error::OutcomeUnknown { .. } => ("outcome_unknown", None, None),
            Error::MalformedResponse { .. } => ("malformed_response", None, None),
            Error::ReauthenticationRequired { .. } => ("reauthentication_required", None, None),
            Error::Configuration { .. } => ("configuration", None, None),
            Error::Internal { .. } => ("internal", None, None),
            Error::Store { .. } => ("store", None, None),
        };
        JsonError { kind, code, status, message: error.to_string(), transient: error.is_transient() }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum JsonEvent {
    HttpResponse {
        request_id: u64,
        status: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        body_base64: Option<String>,
    },
    TransportError {
        request_id: u64,
        kind: String,
        #[serde(default)]
        message: String,
    },
    Timer {
        key: String,
    },
    PromptAnswer {
        key: String,
        answer: Secret,
    },
    PromptFailed {
        key: String,
        #[serde(default)]
        message: String,
    },
}

/// What a host brings to a login (see [`LoginInputs`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLoginInputs {
    random_base64: Option<Secret>,
    redirect_uri: Option<String>,
}

/// The [`Engine`] behind a JSON interface. See the module docs for the message shapes.
#[derive(Debug, Default)]
pub struct JsonEngine {
    engine: Engine,
}

impl JsonEngine {
    /// An engine with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with these settings.
    pub fn with_settings(settings: EngineSettings) -> Self {
        JsonEngine { engine: Engine::new(settings) }
    }

    /// Registers a provider under `key` from JSON: the one provider description of
    /// [`crate::provider_spec`] (the same fields as the TOML configuration, secrets in clear), e.g.
    ///
    /// ```text
    /// {"type": "password", "issuer": "https://idp.example", "client_id": "cli",
    ///  "username": "alice", "password": "…", "totp_secret"?: "…"}
    /// ```
    ///
    /// Interactive types (`device_code`, `browser`, `email_otp`) start only with
    /// [`JsonEngine::login`] / [`JsonEngine::login_with`] (a browser login needs `random_base64`
    /// and, without a fixed `redirect_uri`, the URL of the host's loopback listener). The first
    /// shape of this API (`"grant": {"type": …}`, `token_url`, `max_attempts`, …) still loads:
    /// the old spellings come back as [`Deprecation`]s for the host to log. An invalid provider is
    /// an [`Error::Configuration`] naming `key` and the field, and changes nothing.
    pub fn register(&mut self, key: &str, provider_json: &str) -> Result<Vec<Deprecation>, Error> {
        let place = format!("provider {key:?}");
        let value: serde_json::Value = serde_json::from_str(provider_json)
            .map_err(|e| Error::configuration(format!("{place}: {}", redacted(&e))))?;
        let parsed = ProviderSpec::from_value(value).map_err(|e| e.at(&place))?;
        let config = parsed.spec.into_config(&mut |_, value| Ok(value.clone())).map_err(|e| e.at(&place))?;
        self.engine.register(key, config);
        Ok(parsed.deprecations)
    }

    /// [`Engine::ensure`], as a JSON array of actions (`[]`: the cached token is valid).
    pub fn ensure(&mut self, key: &str, now_ms: i64) -> String {
        let actions = self.engine.ensure(key, Timestamp::from_unix_millis(now_ms));
        actions_json(&actions)
    }

    /// [`Engine::refresh`] (e.g. after a 401), as JSON actions.
    pub fn refresh(&mut self, key: &str, now_ms: i64) -> String {
        let actions = self.engine.refresh(key, Timestamp::from_unix_millis(now_ms));
        actions_json(&actions)
    }

    /// [`Engine::login`], as JSON actions.
    pub fn login(&mut self, key: &str, now_ms: i64) -> String {
        let actions = self.engine.login(key, Timestamp::from_unix_millis(now_ms));
        actions_json(&actions)
    }

    /// [`Engine::login_with`], as JSON actions. `inputs_json`: `{"random_base64"?: 64 random bytes,
    /// base64, "redirect_uri"?: where the browser comes back}` (browser logins need both).
    pub fn login_with(&mut self, key: &str, inputs_json: &str, now_ms: i64) -> Result<String, Error> {
        let inputs: JsonLoginInputs = serde_json::from_str(inputs_json)
            .map_err(|e| Error::configuration(format!("login inputs for {key:?}: {}", redacted(&e))))?;
        let random = inputs
            .random_base64
            .map(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded.expose_secret()))
            .transpose()
            .map_err(|_| Error::configuration(format!("login inputs for {key:?}: random_base64 is not base64")))?
            .map(zeroize::Zeroizing::new);
        let inputs = LoginInputs { random, redirect_uri: inputs.redirect_uri };
        let actions = self.engine.login_with(key, inputs, Timestamp::from_unix_millis(now_ms));
        Ok(actions_json(&actions))
    }

    /// [`Engine::logout`], as JSON actions.
    pub fn logout(&mut self, key: &str, now_ms: i64) -> String {
        let actions = self.engine.logout(key, Timestamp::from_unix_millis(now_ms));
        actions_json(&actions)
    }

    /// Feeds a JSON event; returns the next JSON actions. A malformed event is a typed error and
    /// changes nothing.
    pub fn handle(&mut self, event_json: &str, now_ms: i64) -> Result<String, Error> {
        let malformed = |reason: String| Error::MalformedResponse { endpoint: "json event".into(), reason };
        let event: JsonEvent = serde_json::from_str(event_json).map_err(|e| malformed(redacted(&e)))?;
        let event = match event {
            JsonEvent::HttpResponse { request_id, status, headers, body, body_base64 } => {
                let body = match (body, body_base64) {
                    (Some(body), None) => body.into_bytes(),
                    (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .map_err(|_| malformed("body_base64 is not base64".into()))?,
                    (None, None) => Vec::new(),
                    (Some(_), Some(_)) => return Err(malformed("give body or body_base64, not both".into())),
                };
                Event::Response(HttpResponse {
                    request_id: RequestId(request_id),
                    status,
                    headers: headers.into_iter().collect(),
                    body,
                })
            }
            JsonEvent::TransportError { request_id, kind, message } => {
                let kind = match kind.as_str() {
                    "connect" => TransportErrorKind::Connect,
                    "timeout" => TransportErrorKind::Timeout,
                    "connection_closed" => TransportErrorKind::ConnectionClosed,
                    "body_too_large" => TransportErrorKind::BodyTooLarge,
                    "redirect" => TransportErrorKind::Redirect,
                    "invalid_url" => TransportErrorKind::InvalidUrl,
                    _ => TransportErrorKind::Other,
                };
                let endpoint = "host transport".to_owned();
                Event::TransportFailed {
                    request_id: RequestId(request_id),
                    error: Error::Transport { kind, endpoint, message },
                }
            }
            JsonEvent::Timer { key } => Event::Timer { key },
            JsonEvent::PromptAnswer { key, answer } => Event::Answer { key, answer },
            JsonEvent::PromptFailed { key, message } => Event::PromptFailed {
                key,
                error: Error::ReauthenticationRequired {
                    reason: if message.is_empty() { "nobody answered the prompt".into() } else { message },
                },
            },
        };
        let actions = self.engine.handle(event, Timestamp::from_unix_millis(now_ms));
        Ok(actions_json(&actions))
    }

    /// The cached tokens of `key`, as JSON (with secrets), if any.
    pub fn tokens(&self, key: &str) -> Option<String> {
        self.engine.tokens(key).and_then(|tokens| serde_json::to_string(tokens).ok())
    }

    /// Replaces the cached tokens of `key` (e.g. with what the host persisted); `None` clears them.
    pub fn set_tokens(&mut self, key: &str, tokens_json: Option<&str>) -> Result<(), Error> {
        let tokens = tokens_json
            .map(serde_json::from_str::<TokenSet>)
            .transpose()
            .map_err(|e| Error::configuration(format!("tokens for {key:?}: {}", redacted(&e))))?;
        self.engine.set_tokens(key, tokens);
        Ok(())
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The actions as the JSON array hosts read.
///
/// [`Action::RefreshTokenDropped`] is not an action of its own here: hosts written before it would
/// stop at an unknown action and never send the login that follows. It rides on the next action
/// instead, as the field `refresh_token_dropped` (`rejected` | `outcome_unknown`), which such hosts
/// ignore and newer ones act on (delete the stored refresh token).
fn actions_json(actions: &[Action]) -> String {
    let mut dropped = None;
    let mut json: Vec<serde_json::Value> = Vec::with_capacity(actions.len());
    for action in actions {
        let action = match action {
            Action::Send(request) => JsonAction::HttpRequest {
                id: request.id.0,
                method: request.method.as_str(),
                url: &request.url,
                headers: request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect(),
                // Requests the core builds are forms and are always UTF-8.
                body: std::str::from_utf8(&request.body).unwrap_or_default(),
            },
            Action::Wait { key, until } => JsonAction::Wait { key, until_ms: until.as_unix_millis() },
            Action::Prompt { key, prompt } => {
                let Some(json_prompt) = JsonPrompt::from_prompt(prompt) else { continue };
                JsonAction::Prompt { key, expects_answer: prompt.expects_answer(), prompt: json_prompt }
            }
            Action::Done { key, tokens } => JsonAction::Done { key, tokens },
            Action::Failed { key, error } => JsonAction::Failed { key, error: error.into() },
            Action::RefreshTokenDropped { reason, .. } => {
                dropped = Some(reason.as_str());
                continue;
            }
            Action::LoggedOut { key, revoked, error } => {
                JsonAction::LoggedOut { key, revoked: *revoked, error: error.as_ref().map(JsonError::from) }
            }
            #[allow(unreachable_patterns, reason = "Action is non_exhaustive for other crates")]
            _ => continue,
        };
        let Ok(mut value) = serde_json::to_value(action) else { continue };
        if let (Some(reason), Some(object)) = (dropped.take(), value.as_object_mut()) {
            object.insert("refresh_token_dropped".to_owned(), reason.into());
        }
        json.push(value);
    }
    serde_json::to_string(&json).unwrap_or_else(|_| "[]".to_owned())
}

/// serde_json's message without the offending value (it could be a secret).
fn redacted(error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde_json quotes values as `invalid type: string "..."`; keep only the part before any quote.
    let cut = message.find('"').map(|i| &message[..i]).unwrap_or(&message);
    format!("{} (line {}, column {})", cut.trim_end().trim_end_matches(':'), error.line(), error.column())
}

/// True when `expires_at_ms` is known and not after `now_ms` (for hosts without a clock type).
pub fn is_expired_ms(expires_at_ms: Option<i64>, now_ms: i64) -> bool {
    crate::is_expired(expires_at_ms.map(Timestamp::from_unix_millis), Timestamp::from_unix_millis(now_ms))
}

/// True when `expires_at_ms` is known and within `threshold_ms` of `now_ms` (or past).
pub fn is_near_expiry_ms(expires_at_ms: Option<i64>, now_ms: i64, threshold_ms: u64) -> bool {
    crate::is_near_expiry(
        expires_at_ms.map(Timestamp::from_unix_millis),
        Timestamp::from_unix_millis(now_ms),
        Duration::from_millis(threshold_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn password_login_round_trip_in_json() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "k",
                r#"{"client_id":"c","client_secret":"s","token_url":"https://idp/token","scope":"api",
                    "grant":{"type":"password","username":"alice","password":"pw"}}"#,
            )
            .unwrap();
        let actions = parse(&engine.ensure("k", 1_000));
        let request = &actions[0];
        assert_eq!(request["type"], "http_request");
        assert_eq!(request["method"], "POST");
        assert_eq!(request["body"], "grant_type=password&username=alice&password=pw&scope=api");
        assert_eq!(request["headers"]["authorization"], "Basic Yzpz");
        let event = json!({"type":"http_response","request_id":request["id"],"status":200,
            "headers":{"content-type":"application/json"},"body":"{\"access_token\":\"at\",\"expires_in\":60,\"refresh_token\":\"rt\"}"});
        let done = parse(&engine.handle(&event.to_string(), 1_000).unwrap());
        assert_eq!(done[0]["type"], "done");
        assert_eq!(done[0]["tokens"]["access_token"], "at");
        assert_eq!(done[0]["tokens"]["expires_at"], 61_000);
        assert_eq!(engine.ensure("k", 2_000), "[]");
        assert!(engine.tokens("k").unwrap().contains("\"rt\""));
    }

    #[test]
    fn failures_waits_and_timers_in_json() {
        let mut engine = JsonEngine::new();
        engine.register("cc", r#"{"client_id":"c","client_secret":"s","token_url":"https://idp/token","grant":{"type":"client_credentials"}}"#).unwrap();
        let request = parse(&engine.ensure("cc", 0))[0].clone();
        let wait = parse(
            &engine
                .handle(
                    &json!({"type":"transport_error","request_id":request["id"],"kind":"connect","message":"refused"})
                        .to_string(),
                    0,
                )
                .unwrap(),
        );
        assert_eq!(wait[0]["type"], "wait");
        let until = wait[0]["until_ms"].as_i64().unwrap();
        let again = parse(&engine.handle(&json!({"type":"timer","key":"cc"}).to_string(), until).unwrap());
        assert_eq!(again[0]["type"], "http_request");
        let failed = parse(
            &engine
                .handle(
                    &json!({"type":"http_response","request_id":again[0]["id"],"status":401,
                        "headers":{"content-type":"application/json"},"body_base64":"eyJlcnJvciI6ImludmFsaWRfY2xpZW50In0="})
                    .to_string(),
                    until,
                )
                .unwrap(),
        );
        assert_eq!(failed[0]["type"], "failed");
        assert_eq!(failed[0]["error"]["kind"], "oauth");
        assert_eq!(failed[0]["error"]["code"], "invalid_client");
        assert_eq!(failed[0]["error"]["transient"], false);
    }

    #[test]
    fn a_refresh_whose_answer_is_lost_tells_the_host_to_drop_the_refresh_token() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "rt",
                r#"{"type":"refresh_token","client_id":"c","token_endpoint":"https://idp/token","refresh_token":"configured"}"#,
            )
            .unwrap();
        engine
            .set_tokens("rt", Some(r#"{"access_token":"a","expires_at":1000,"refresh_token":"held","issued_at":0}"#))
            .unwrap();
        let request = parse(&engine.ensure("rt", 2_000))[0].clone();
        assert!(request["body"].as_str().unwrap().contains("refresh_token=held"), "{request}");
        let event = json!({"type":"transport_error","request_id":request["id"],"kind":"timeout","message":"no answer"});
        let actions = parse(&engine.handle(&event.to_string(), 2_000).unwrap());
        assert_eq!(actions.as_array().unwrap().len(), 1, "{actions:?}");
        assert_eq!(actions[0]["type"], "failed", "{actions:?}");
        assert_eq!(actions[0]["refresh_token_dropped"], "outcome_unknown", "{actions:?}");
        assert_eq!(actions[0]["error"]["kind"], "reauthentication_required");
        assert_eq!(actions[0]["error"]["transient"], false);
        assert!(!actions.to_string().contains("held"), "the dropped token is not repeated: {actions:?}");
    }

    #[test]
    fn malformed_input_is_a_typed_error_without_echoing_secrets() {
        let mut engine = JsonEngine::new();
        let error = engine
            .register(
                "k",
                r#"{"client_id":"c","token_url":"u","grant":{"type":"password","username":"a","password":42}}"#,
            )
            .unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error}");
        let error = engine
            .register("k", r#"{"client_id":"c","token_url":"u","grant":{"type":"static","access_token":"tok-secret","oops":"x-secret"}}"#)
            .unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        for event in [
            "{",
            r#"{"type":"http_response"}"#,
            r#"{"type":"nope"}"#,
            r#"{"type":"http_response","request_id":1,"status":200,"body_base64":"%%"}"#,
        ] {
            let error = engine.handle(event, 0).unwrap_err();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{event}: {error}");
        }
        assert_eq!(engine.handle(r#"{"type":"timer","key":"unknown"}"#, 0).unwrap(), "[]");
    }

    fn respond(engine: &mut JsonEngine, request: &Value, status: u16, body: Value, now_ms: i64) -> Value {
        assert_eq!(request["type"], "http_request", "{request}");
        let event = json!({"type": "http_response", "request_id": request["id"], "status": status,
            "headers": {"content-type": "application/json"}, "body": body.to_string()});
        parse(&engine.handle(&event.to_string(), now_ms).unwrap())
    }

    fn answer(engine: &mut JsonEngine, key: &str, answer: &str, now_ms: i64) -> Value {
        let event = json!({"type": "prompt_answer", "key": key, "answer": answer});
        parse(&engine.handle(&event.to_string(), now_ms).unwrap())
    }

    #[test]
    fn a_host_drives_an_email_otp_login_through_prompts_and_answers() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "otp",
                r#"{"client_id":"cli","token_url":"https://idp/token","grant":{"type":"email_otp",
                    "email":"a@example.com","start_endpoint":"https://idp/otp/start",
                    "verify_endpoint":"https://idp/otp/verify","max_attempts":2}}"#,
            )
            .unwrap();
        // Interactive: `ensure` never mails a code by itself.
        let refused = parse(&engine.ensure("otp", 0));
        assert_eq!(
            (&refused[0]["type"], &refused[0]["error"]["kind"]),
            (&json!("failed"), &json!("reauthentication_required"))
        );

        let start = parse(&engine.login("otp", 0));
        assert_eq!(start[0]["url"], "https://idp/otp/start");
        assert_eq!(parse(start[0]["body"].as_str().unwrap())["email"], "a@example.com");
        let challenge = json!({"challenge_id": "ch1", "channel": "email", "destination": "a***@example.com",
            "expires_in": 300, "attempts_left": 5});
        let prompt = respond(&mut engine, &start[0], 200, challenge, 0);
        assert_eq!(prompt[0]["type"], "prompt");
        assert_eq!(prompt[0]["expects_answer"], true);
        assert_eq!(
            prompt[0]["prompt"],
            json!({"kind": "code", "channel": "email", "destination": "a***@example.com", "attempt": 1, "previous_error": null})
        );

        let verify = answer(&mut engine, "otp", " 111 111\n", 0);
        assert_eq!(verify[0]["url"], "https://idp/otp/verify");
        assert_eq!(parse(verify[0]["body"].as_str().unwrap()), json!({"challenge_id": "ch1", "code": "111111"}));
        let wrong = json!({"error": "invalid_code", "error_description": "wrong code", "attempts_left": 4});
        let again = respond(&mut engine, &verify[0], 400, wrong, 0);
        assert_eq!((&again[0]["type"], &again[0]["prompt"]["attempt"]), (&json!("prompt"), &json!(2)), "{again}");
        assert!(again[0]["prompt"]["previous_error"].as_str().unwrap().contains("wrong code"), "{again}");

        let verify = answer(&mut engine, "otp", "222222", 0);
        let tokens = json!({"access_token": "at", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt"});
        let done = respond(&mut engine, &verify[0], 200, tokens, 0);
        assert_eq!((&done[0]["type"], &done[0]["tokens"]["access_token"]), (&json!("done"), &json!("at")));
        assert_eq!(engine.ensure("otp", 1_000), "[]");

        // The lower of max_attempts (2) and the server's limit ends the next login after two wrong codes.
        let start = parse(&engine.login("otp", 2_000));
        let challenge = json!({"challenge_id": "ch2", "channel": "email", "expires_in": 300, "attempts_left": 5});
        respond(&mut engine, &start[0], 200, challenge, 2_000);
        let mut last = Value::Null;
        for attempts_left in [4, 3] {
            let verify = answer(&mut engine, "otp", "000000", 2_000);
            let wrong = json!({"error": "invalid_code", "attempts_left": attempts_left});
            last = respond(&mut engine, &verify[0], 400, wrong, 2_000);
        }
        assert_eq!(
            (&last[0]["type"], &last[0]["error"]["code"]),
            (&json!("failed"), &json!("invalid_grant")),
            "{last}"
        );
        // A prompt nobody can answer fails the login with a typed error.
        let start = parse(&engine.login("otp", 3_000));
        respond(&mut engine, &start[0], 200, json!({"challenge_id": "ch3", "expires_in": 300}), 3_000);
        let event = json!({"type": "prompt_failed", "key": "otp", "message": "no terminal"});
        let failed = parse(&engine.handle(&event.to_string(), 3_000).unwrap());
        assert_eq!(failed[0]["error"]["kind"], "reauthentication_required", "{failed}");
    }

    #[test]
    fn a_host_drives_a_browser_login_with_its_randomness_and_redirect_uri() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "web",
                r#"{"client_id":"cli","token_url":"https://idp/token","scope":"api","grant":{"type":"browser",
                    "authorization_endpoint":"https://idp/authorize","extra_params":{"prompt":"consent"}}}"#,
            )
            .unwrap();
        let random = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        let redirect_uri = "http://127.0.0.1:8765/callback";
        let inputs = json!({"random_base64": random, "redirect_uri": redirect_uri}).to_string();
        let prompt = parse(&engine.login_with("web", &inputs, 0).unwrap());
        assert_eq!((&prompt[0]["type"], &prompt[0]["expects_answer"]), (&json!("prompt"), &json!(true)), "{prompt}");
        assert_eq!(
            (&prompt[0]["prompt"]["kind"], &prompt[0]["prompt"]["redirect_uri"]),
            (&json!("browser"), &json!(redirect_uri))
        );
        let url = prompt[0]["prompt"]["authorization_url"].as_str().unwrap();
        assert!(url.starts_with("https://idp/authorize?"), "{url}");
        let query: BTreeMap<String, String> = url
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(query["prompt"], "consent");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["response_type"], "code");

        // A callback with another state is refused before any token request.
        let forged = answer(&mut engine, "web", &format!("{redirect_uri}?code=c&state=forged"), 0);
        assert_eq!((&forged[0]["type"], &forged[0]["error"]["kind"]), (&json!("failed"), &json!("malformed_response")));

        let prompt = parse(&engine.login_with("web", &inputs, 0).unwrap());
        let url = prompt[0]["prompt"]["authorization_url"].as_str().unwrap();
        let state = url.split('&').find_map(|p| p.strip_prefix("state=")).unwrap().to_owned();
        let exchange = answer(&mut engine, "web", &format!("{redirect_uri}?code=the-code&state={state}"), 0);
        let body = exchange[0]["body"].as_str().unwrap();
        assert_eq!(exchange[0]["url"], "https://idp/token");
        assert!(body.contains("grant_type=authorization_code") && body.contains("code=the-code"), "{body}");
        assert!(
            body.contains("code_verifier=") && body.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback"),
            "{body}"
        );
        let tokens = json!({"access_token": "at", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt"});
        let done = respond(&mut engine, &exchange[0], 200, tokens, 0);
        assert_eq!((&done[0]["type"], &done[0]["tokens"]["refresh_token"]), (&json!("done"), &json!("rt")), "{done}");

        // Without the host's randomness a browser login cannot start.
        let failed = parse(&engine.login_with("web", r#"{"redirect_uri":"http://127.0.0.1:1/callback"}"#, 0).unwrap());
        assert_eq!(
            (&failed[0]["type"], &failed[0]["error"]["kind"]),
            (&json!("failed"), &json!("configuration")),
            "{failed}"
        );
    }

    #[test]
    fn cognito_grants_need_no_oauth_endpoints_and_bad_fields_are_named() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "pool",
                r#"{"client_id":"app","grant":{"type":"cognito","endpoint":"https://cognito.example/",
                    "username":"carol","password":"pw"}}"#,
            )
            .unwrap();
        let initiate = parse(&engine.login("pool", 0));
        assert_eq!(initiate[0]["url"], "https://cognito.example/");
        assert_eq!(initiate[0]["headers"]["x-amz-target"], "AWSCognitoIdentityProviderService.InitiateAuth");
        let body = parse(initiate[0]["body"].as_str().unwrap());
        assert_eq!(
            (&body["AuthFlow"], &body["AuthParameters"]["USERNAME"]),
            (&json!("USER_PASSWORD_AUTH"), &json!("carol"))
        );
        let challenge = json!({"ChallengeName": "EMAIL_OTP", "Session": "s1",
            "ChallengeParameters": {"USER_ID_FOR_SRP": "carol", "CODE_DELIVERY_DESTINATION": "c***@e***"}});
        let prompt = respond(&mut engine, &initiate[0], 200, challenge, 0);
        assert_eq!(
            (&prompt[0]["prompt"]["kind"], &prompt[0]["prompt"]["destination"]),
            (&json!("code"), &json!("c***@e***")),
            "{prompt}"
        );
        let respond_to = answer(&mut engine, "pool", "123456", 0);
        let body = parse(respond_to[0]["body"].as_str().unwrap());
        assert_eq!(body["ChallengeResponses"]["EMAIL_OTP_CODE"], "123456", "{body}");

        for (grant, expected) in [
            (r#"{"type":"cognito","endpoint":"e","username":"u"}"#, r#"field "password": is required"#),
            (
                r#"{"type":"cognito","endpoint":"e","username":"u","auth_flow":"srp"}"#,
                r#"field "auth_flow": is not one of"#,
            ),
            (
                r#"{"type":"email_otp","email":"a@b","max_attempts":0}"#,
                r#"field "max_code_attempts": must be at least 1"#,
            ),
            (
                r#"{"type":"browser","extra_params":{"prompt":1}}"#,
                r#"field "authorization_params.prompt": must be a string"#,
            ),
        ] {
            let provider = format!(r#"{{"client_id":"c","token_url":"https://idp/token","grant":{grant}}}"#);
            let provider = if grant.contains("cognito") {
                provider.replace(r#""token_url":"https://idp/token","#, "")
            } else {
                provider
            };
            let error = engine.register("bad", &provider).unwrap_err();
            assert!(
                matches!(error, Error::Configuration { .. }) && error.to_string().contains(expected),
                "{error}: {expected}"
            );
        }
    }

    #[test]
    fn expiry_helpers_in_milliseconds() {
        assert!(is_expired_ms(Some(1_000), 1_000));
        assert!(!is_expired_ms(None, i64::MAX));
        assert!(is_near_expiry_ms(Some(10_000), 5_000, 5_000));
        assert!(!is_near_expiry_ms(Some(10_000), 4_999, 5_000));
    }
}
