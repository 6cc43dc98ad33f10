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
//! Token chains (network login → discovery → per-domain access, [`crate::chain`]) go through the
//! same loop: `register_chain(key, json)`, then `domain_access(key, domain_id, now_ms)` gives the
//! whole chain's requests and ends in a `done` carrying `domain_id` and `domain_access` (or a
//! `failed` carrying `domain_id` and `stage`); `cached_domain_access` reads the result,
//! `refresh_domain_access` follows a domain server's 401, `chain_state` / `set_chain_state` save and
//! restore every stage's tokens.
//!
//! Actions carry secrets where the host needs them (a request body with a password, the tokens of a
//! `done`): treat the JSON like the secrets it holds.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::chain::{ChainAction, ChainConfig, ChainMachine, ChainState, Chains, DomainAccess, Stage};
use crate::protocol::TokenExchangeParams;
use crate::provider_spec::{Deprecation, ProviderSpec};
use crate::{
    Action, ClientAuth, ClientAuthMethod, Engine, EngineSettings, Entropy, Error, Event, HttpResponse, LoginInputs,
    RequestId, Secret, Timestamp, TokenSet, TransportErrorKind, flow::Prompt,
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
    /// For the host, not a person: read the workload's platform token and answer with it.
    SubjectToken {
        source: JsonTokenSource<'a>,
    },
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

/// A [`crate::flow::TokenSource`] as JSON, tagged by `from`.
#[derive(Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
enum JsonTokenSource<'a> {
    File { path: &'a str },
    Env { name: &'a str },
    Url { url: &'a str, headers: BTreeMap<&'a str, &'a str>, field: Option<&'a str> },
    Exec { command: &'a str, timeout_ms: u64 },
    GithubActions { audience: Option<&'a str> },
}

impl<'a> JsonTokenSource<'a> {
    fn from_source(source: &'a crate::flow::TokenSource) -> Option<Self> {
        use crate::flow::TokenSource as S;
        Some(match source {
            S::File(path) => JsonTokenSource::File { path },
            S::Env(name) => JsonTokenSource::Env { name },
            S::Url { url, headers, field } => JsonTokenSource::Url {
                url,
                headers: headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect(),
                field: field.as_deref(),
            },
            S::Exec { command, timeout } => {
                JsonTokenSource::Exec { command, timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) }
            }
            S::GithubActions { audience } => JsonTokenSource::GithubActions { audience: audience.as_deref() },
            #[allow(unreachable_patterns, reason = "TokenSource is non_exhaustive")]
            _ => return None,
        })
    }
}

impl<'a> JsonPrompt<'a> {
    fn from_prompt(prompt: &'a Prompt) -> Option<Self> {
        match prompt {
            Prompt::SubjectToken { source } => {
                Some(JsonPrompt::SubjectToken { source: JsonTokenSource::from_source(source)? })
            }
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
            Error::Metadata { .. } => ("metadata", None, None),
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
    /// Token chains ([`JsonEngine::register_chain`]); every event and engine outcome goes through them.
    chains: Chains,
}

impl JsonEngine {
    /// An engine with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with these settings.
    pub fn with_settings(settings: EngineSettings) -> Self {
        JsonEngine { engine: Engine::new(settings), chains: Chains::new() }
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
        if self.chains.contains(key) {
            return Err(Error::configuration(format!("{place}: a chain is registered under that key")));
        }
        let value: serde_json::Value = serde_json::from_str(provider_json)
            .map_err(|e| Error::configuration(format!("{place}: {}", redacted(&e))))?;
        let parsed = ProviderSpec::from_value(value).map_err(|e| e.at(&place))?;
        let config = parsed.spec.into_config(&mut |_, value| Ok(value.clone())).map_err(|e| e.at(&place))?;
        self.engine.register(key, config);
        Ok(parsed.deprecations)
    }

    /// Gives the engine random bytes for client assertions (`client_secret_jwt`,
    /// `private_key_jwt`): `entropy_base64` is base64 of at least 32 bytes from the host's
    /// cryptographically secure generator (e.g. `os.urandom(32)`, `crypto.getRandomValues`),
    /// drawn once per engine. Each assertion's `jti` is derived from them
    /// ([`crate::EngineSettings::entropy`]: their SHA-256 keys an HMAC of a counter). Without it,
    /// providers and chain stages with those methods fail with a configuration error; the other
    /// methods need none. Too few bytes, or not base64, is an [`Error::Configuration`] that changes
    /// nothing (the bytes are never in it).
    pub fn set_entropy(&mut self, entropy_base64: &str) -> Result<(), Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(entropy_base64.trim())
            .map(zeroize::Zeroizing::new)
            .map_err(|_| Error::configuration("entropy: is not base64"))?;
        self.set_entropy_bytes(&bytes)
    }

    /// [`JsonEngine::set_entropy`] for hosts in Rust: the bytes themselves.
    pub fn set_entropy_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        use sha2::Digest;
        if bytes.len() < 32 {
            return Err(Error::configuration(format!(
                "entropy: needs at least 32 random bytes, got {} (e.g. base64 of os.urandom(32))",
                bytes.len()
            )));
        }
        self.engine.set_entropy(Entropy(sha2::Sha256::digest(bytes).into()));
        Ok(())
    }

    /// [`Engine::ensure`], as a JSON array of actions (`[]`: the cached token is valid).
    pub fn ensure(&mut self, key: &str, now_ms: i64) -> String {
        let now = Timestamp::from_unix_millis(now_ms);
        let actions = self.engine.ensure(key, now);
        self.routed(actions, now)
    }

    /// [`Engine::refresh`] (e.g. after a 401), as JSON actions.
    pub fn refresh(&mut self, key: &str, now_ms: i64) -> String {
        let now = Timestamp::from_unix_millis(now_ms);
        let actions = self.engine.refresh(key, now);
        self.routed(actions, now)
    }

    /// [`Engine::login`], as JSON actions.
    pub fn login(&mut self, key: &str, now_ms: i64) -> String {
        let now = Timestamp::from_unix_millis(now_ms);
        let actions = self.engine.login(key, now);
        self.routed(actions, now)
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
        let now = Timestamp::from_unix_millis(now_ms);
        let actions = self.engine.login_with(key, inputs, now);
        Ok(self.routed(actions, now))
    }

    /// [`Engine::logout`], as JSON actions.
    pub fn logout(&mut self, key: &str, now_ms: i64) -> String {
        let now = Timestamp::from_unix_millis(now_ms);
        let actions = self.engine.logout(key, now);
        self.routed(actions, now)
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
                    "certificate" => TransportErrorKind::Certificate,
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
        let actions = self.chains.handle(&mut self.engine, event, Timestamp::from_unix_millis(now_ms));
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

    /// Registers a token chain under `key` (see the module docs and docs/sans-io-json.md):
    ///
    /// ```text
    /// {"network": "<key of a provider registered with register()>",
    ///  "discovery": STAGE, "domain": STAGE,            // "{domain_id}" is replaced at the domain stage
    ///  "refresh_threshold_ms"?: 30000, "max_attempts"?: 3}
    /// STAGE: {"type": "http_call", "url": "…", "method"?: "POST" | "GET"}
    ///      | {"type": "token_exchange", "token_endpoint": "…", "client_id": "…", "client_secret"?: "…",
    ///         "client_auth"?: "client_secret_basic" | "client_secret_post" | "none",
    ///         "audience"?: "…" | ["…"], "resource"?: "…" | ["…"], "scope"?: "…",
    ///         "requested_token_type"?: "…", "subject_token_type"?: "…"}
    /// ```
    ///
    /// The key must differ from every provider key (a chain's `wait` and `timer` carry it). A
    /// chain registered again starts empty. A malformed description is an [`Error::Configuration`]
    /// naming `key` (never a value) and changes nothing.
    pub fn register_chain(&mut self, key: &str, chain_json: &str) -> Result<(), Error> {
        let place = format!("chain {key:?}");
        let invalid = |message: String| Error::configuration(format!("{place}: {message}"));
        let description: JsonChain =
            serde_json::from_str(chain_json).map_err(|e| invalid(names_only(&redacted(&e))))?;
        if self.engine.config(key).is_some() {
            return Err(invalid("a provider is registered under that key: give the chain its own".into()));
        }
        if self.engine.config(&description.network).is_none() {
            return Err(invalid(format!(
                "network {:?} is not a registered provider (register it first)",
                description.network
            )));
        }
        let discovery = description.discovery.into_stage().map_err(|e| invalid(format!("discovery: {e}")))?;
        let domain = description.domain.into_stage().map_err(|e| invalid(format!("domain: {e}")))?;
        let mut config = ChainConfig::new(discovery, domain);
        if let Some(threshold) = description.refresh_threshold_ms {
            config = config.refresh_threshold(Duration::from_millis(threshold));
        }
        if let Some(max_attempts) = description.max_attempts {
            if max_attempts == 0 {
                return Err(invalid("max_attempts: must be at least 1".into()));
            }
            config.retry.max_attempts = max_attempts;
        }
        self.chains.insert(ChainMachine::new(key, description.network, config));
        Ok(())
    }

    /// What must happen for the chain `key` to hold access to `domain_id`, as JSON actions: the
    /// whole chain's requests (network login, discovery, domain: each only when its own token
    /// needs it), ending in `done` (with `domain_id` and `domain_access`) or `failed` (with
    /// `domain_id` and `stage`). A fresh cached access is `[done]` at once; `[]` means a
    /// derivation for that domain is in flight already.
    pub fn domain_access(&mut self, key: &str, domain_id: &str, now_ms: i64) -> String {
        let actions = self.chains.domain_access(&mut self.engine, key, domain_id, Timestamp::from_unix_millis(now_ms));
        actions_json(&actions)
    }

    /// After the domain's server refused its access (401): forgets it and derives a new one, as
    /// JSON actions (the stages above are renewed only if they are refused too).
    pub fn refresh_domain_access(&mut self, key: &str, domain_id: &str, now_ms: i64) -> String {
        let now = Timestamp::from_unix_millis(now_ms);
        let actions = self.chains.refresh_domain_access(&mut self.engine, key, domain_id, now);
        actions_json(&actions)
    }

    /// The cached access of chain `key` to `domain_id` while it is valid, as JSON (the
    /// `domain_access` object of a `done`, token in clear), without any request.
    pub fn cached_domain_access(&self, key: &str, domain_id: &str, now_ms: i64) -> Option<String> {
        let access = self.chains.get(key)?.cached_domain_access(domain_id, Timestamp::from_unix_millis(now_ms))?;
        serde_json::to_string(access).ok()
    }

    /// The tokens of every stage of chain `key` (network tokens from the engine), as the versioned
    /// document `DomainClient::save_state` writes. Never a credential; tokens in clear.
    pub fn chain_state(&self, key: &str) -> Option<String> {
        self.chains.get(key)?.state(&self.engine).to_json().ok()
    }

    /// Restores a document of [`JsonEngine::chain_state`] (or `DomainClient::save_state`) into
    /// chain `key` and its network provider. Another version, or malformed JSON, is an
    /// [`Error::Configuration`] that changes nothing.
    pub fn set_chain_state(&mut self, key: &str, state_json: &str) -> Result<(), Error> {
        let state = ChainState::from_json(state_json)?;
        let machine = self
            .chains
            .get_mut(key)
            .ok_or_else(|| Error::configuration(format!("no chain registered under {key:?}")))?;
        machine.restore(&mut self.engine, state);
        Ok(())
    }

    /// The engine's actions for the host, after the chains took the outcomes they wait for.
    fn routed(&mut self, actions: Vec<Action>, now: Timestamp) -> String {
        actions_json(&self.chains.route(&mut self.engine, actions, now))
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
///
/// A chain's outcome is the same kind of action for the same reason: its access is a `done` whose
/// `tokens` are the domain's (what an old host reads) with `domain_id` and `domain_access` beside
/// them, and its failure a `failed` with `domain_id` and `stage`. The network login's own outcome
/// never reaches the host while a chain waits for it ([`Chains::route`]): an old host would stop at
/// that `done`, which is only the chain's first step.
fn actions_json(actions: &[ChainAction]) -> String {
    let mut dropped = None;
    let mut json: Vec<serde_json::Value> = Vec::with_capacity(actions.len());
    for action in actions {
        let value = match action {
            ChainAction::Engine(action) => engine_action_json(action, &mut dropped),
            ChainAction::Send(request) => serde_json::to_value(http_request_json(request)).ok(),
            ChainAction::Wait { key, until } => {
                serde_json::to_value(JsonAction::Wait { key, until_ms: until.as_unix_millis() }).ok()
            }
            ChainAction::Ready { key, access } => {
                let tokens = access.as_token_set();
                with_fields(
                    serde_json::to_value(JsonAction::Done { key, tokens: &tokens }).ok(),
                    [("domain_id", access.id.as_str().into()), ("domain_access", domain_access_json(access))],
                )
            }
            ChainAction::Failed { key, domain_id, stage, error } => with_fields(
                serde_json::to_value(JsonAction::Failed { key, error: error.into() }).ok(),
                [("domain_id", domain_id.as_str().into()), ("stage", stage.as_str().into())],
            ),
            #[allow(unreachable_patterns, reason = "ChainAction is non_exhaustive for other crates")]
            _ => None,
        };
        let Some(mut value) = value else { continue };
        if let (Some(reason), Some(object)) = (dropped.take(), value.as_object_mut()) {
            object.insert("refresh_token_dropped".to_owned(), reason.into());
        }
        json.push(value);
    }
    serde_json::to_string(&json).unwrap_or_else(|_| "[]".to_owned())
}

/// One engine action as JSON; `None` for [`Action::RefreshTokenDropped`] (its reason goes into
/// `dropped`, for the next action) and for what JSON hosts cannot see.
fn engine_action_json(action: &Action, dropped: &mut Option<&'static str>) -> Option<serde_json::Value> {
    let action = match action {
        Action::Send(request) => http_request_json(request),
        Action::Wait { key, until } => JsonAction::Wait { key, until_ms: until.as_unix_millis() },
        Action::Prompt { key, prompt } => {
            let json_prompt = JsonPrompt::from_prompt(prompt)?;
            JsonAction::Prompt { key, expects_answer: prompt.expects_answer(), prompt: json_prompt }
        }
        Action::Done { key, tokens } => JsonAction::Done { key, tokens },
        Action::Failed { key, error } => JsonAction::Failed { key, error: error.into() },
        Action::RefreshTokenDropped { reason, .. } => {
            *dropped = Some(reason.as_str());
            return None;
        }
        Action::LoggedOut { key, revoked, error } => {
            JsonAction::LoggedOut { key, revoked: *revoked, error: error.as_ref().map(JsonError::from) }
        }
        #[allow(unreachable_patterns, reason = "Action is non_exhaustive for other crates")]
        _ => return None,
    };
    serde_json::to_value(action).ok()
}

fn http_request_json(request: &crate::HttpRequest) -> JsonAction<'_> {
    JsonAction::HttpRequest {
        id: request.id.0,
        method: request.method.as_str(),
        url: &request.url,
        headers: request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect(),
        // Requests the core builds are forms (or empty) and are always UTF-8.
        body: std::str::from_utf8(&request.body).unwrap_or_default(),
    }
}

/// A domain access as JSON: `id`, `name`, `domain_server` (`url` and the server's other fields),
/// `access_token` (in clear), `token_type`, `expires_at` and `issued_at` (ms).
fn domain_access_json(access: &DomainAccess) -> serde_json::Value {
    serde_json::to_value(access).unwrap_or_default()
}

fn with_fields<const N: usize>(
    value: Option<serde_json::Value>,
    fields: [(&str, serde_json::Value); N],
) -> Option<serde_json::Value> {
    let mut value = value?;
    if let Some(object) = value.as_object_mut() {
        for (name, field) in fields {
            object.insert(name.to_owned(), field);
        }
    }
    Some(value)
}

/// A chain as `register_chain` reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonChain {
    network: String,
    discovery: JsonStage,
    domain: JsonStage,
    refresh_threshold_ms: Option<u64>,
    max_attempts: Option<u32>,
}

/// A stage as `register_chain` reads it (the shapes of [`Stage`]).
#[derive(Deserialize)]
// Two per chain, read once: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum JsonStage {
    HttpCall {
        url: String,
        method: Option<String>,
    },
    TokenExchange {
        token_endpoint: String,
        client_id: String,
        client_secret: Option<Secret>,
        client_auth: Option<String>,
        client_assertion_key: Option<Secret>,
        client_assertion_alg: Option<String>,
        client_assertion_kid: Option<String>,
        audience: Option<serde_json::Value>,
        resource: Option<serde_json::Value>,
        scope: Option<String>,
        requested_token_type: Option<String>,
        subject_token_type: Option<String>,
    },
}

impl JsonStage {
    /// The [`Stage`]; an error names the field, never its value.
    fn into_stage(self) -> Result<Stage, String> {
        match self {
            JsonStage::HttpCall { url, method } => match method.as_deref() {
                None | Some("POST" | "post") => Ok(Stage::http_post(url)),
                Some("GET" | "get") => Ok(Stage::http_get(url)),
                Some(_) => Err("method: must be POST or GET".into()),
            },
            JsonStage::TokenExchange {
                token_endpoint,
                client_id,
                client_secret,
                client_auth,
                client_assertion_key,
                client_assertion_alg,
                client_assertion_kid,
                audience,
                resource,
                scope,
                requested_token_type,
                subject_token_type,
            } => {
                // The provider description's defaults: a key means private_key_jwt, a secret alone
                // client_secret_basic.
                let method = match client_auth.as_deref() {
                    None if client_assertion_key.is_some() => ClientAuthMethod::PrivateKeyJwt,
                    None if client_secret.is_some() => ClientAuthMethod::Basic,
                    None => ClientAuthMethod::None,
                    Some(name) => ClientAuthMethod::from_name(name)
                        .ok_or_else(|| format!("client_auth: is not one of {}", ClientAuthMethod::NAMES.join(", ")))?,
                };
                if method.uses_secret() && client_secret.is_none() {
                    return Err(format!("client_secret: is required with client_auth {}", method.name()));
                }
                let without_key =
                    [("client_assertion_alg", &client_assertion_alg), ("client_assertion_kid", &client_assertion_kid)]
                        .into_iter()
                        .find_map(|(field, value)| value.is_some().then_some(field))
                        .filter(|_| client_assertion_key.is_none());
                if let Some(field) = without_key {
                    return Err(format!("{field}: goes with client_assertion_key (private_key_jwt)"));
                }
                if client_assertion_key.is_some() && method != ClientAuthMethod::PrivateKeyJwt {
                    return Err(format!(
                        "client_assertion_key: is used only with client_auth private_key_jwt, not {}",
                        method.name()
                    ));
                }
                let assertion_key = client_assertion_key.map(|key| crate::ClientAssertionKey {
                    key,
                    alg: client_assertion_alg,
                    kid: client_assertion_kid,
                    certificate: None,
                });
                let mut params = TokenExchangeParams {
                    audience: strings("audience", audience)?,
                    resource: strings("resource", resource)?,
                    scope,
                    requested_token_type,
                    ..TokenExchangeParams::default()
                };
                if let Some(subject_token_type) = subject_token_type {
                    params.subject_token_type = subject_token_type;
                }
                let client = ClientAuth {
                    client_id,
                    client_secret,
                    method,
                    assertion_key,
                    dpop: None,
                    method_from_metadata: false,
                };
                // A key that cannot sign is refused now, naming the field, not at the first request.
                client.checked_assertion_signer().map_err(|(field, problem)| format!("{field}: {problem}"))?;
                Ok(Stage::token_exchange(token_endpoint, client, params))
            }
        }
    }
}

/// A string or a list of strings (`audience`, `resource`).
fn strings(field: &str, value: Option<serde_json::Value>) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(serde_json::Value::String(one)) => Ok(vec![one]),
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(item) => Ok(item),
                _ => Err(format!("{field}: must be a string or a list of strings")),
            })
            .collect(),
        Some(_) => Err(format!("{field}: must be a string or a list of strings")),
    }
}

/// serde_json's message without the offending value (it could be a secret).
fn redacted(error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde_json quotes values as `invalid type: string "..."`; keep only the part before any quote.
    let cut = message.find('"').map(|i| &message[..i]).unwrap_or(&message);
    format!("{} (line {}, column {})", cut.trim_end().trim_end_matches(':'), error.line(), error.column())
}

/// `message` with every backquoted word that does not look like a name (a field, a stage type)
/// replaced by `…`: serde quotes unknown fields and variants, and a misplaced value could be a secret.
fn names_only(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('`').enumerate() {
        if i % 2 == 1 {
            let shown = if crate::provider_spec::is_identifier(part) { part } else { "…" };
            out.push('`');
            out.push_str(shown);
            out.push('`');
        } else {
            out.push_str(part);
        }
    }
    out
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

    /// The `jti` of the client assertion in a JSON `http_request` action.
    fn assertion_jti(request: &Value) -> String {
        let body = request["body"].as_str().unwrap();
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        let payload = form["client_assertion"].split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://idp/token");
        claims["jti"].as_str().unwrap().to_owned()
    }

    #[test]
    fn client_assertions_need_the_hosts_entropy_and_get_a_new_jti_per_request() {
        let pem =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/ec.pem"))
                .unwrap();
        let provider = json!({"type": "client_credentials", "client_id": "c", "token_endpoint": "https://idp/token",
            "client_assertion_key": pem, "client_assertion_kid": "test-ec"})
        .to_string();
        let mut engine = JsonEngine::new();
        engine.register("k", &provider).unwrap();
        // No entropy yet: a configuration error that says what to do, and nothing is sent.
        let failed = parse(&engine.ensure("k", 1_000));
        assert_eq!(
            (failed[0]["type"].as_str(), failed[0]["error"]["kind"].as_str()),
            (Some("failed"), Some("configuration")),
            "{failed}"
        );
        assert!(failed[0]["error"]["message"].as_str().unwrap().contains("entropy"), "{failed}");

        // Too few bytes, or not base64: refused, and the value is not quoted.
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let error = engine.set_entropy(&short).unwrap_err();
        assert!(matches!(&error, Error::Configuration { .. }) && error.to_string().contains("32"), "{error}");
        assert!(!error.to_string().contains(&short));
        assert!(engine.set_entropy("not base64!").is_err());

        engine.set_entropy(&base64::engine::general_purpose::STANDARD.encode([42u8; 32])).unwrap();
        let first = parse(&engine.ensure("k", 1_000))[0].clone();
        assert_eq!(first["type"], "http_request", "{first}");
        let answer = |id: &Value| {
            json!({"type":"http_response","request_id":id,"status":200,"headers":{"content-type":"application/json"},
                "body":"{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"expires_in\":60}"})
            .to_string()
        };
        assert_eq!(parse(&engine.handle(&answer(&first["id"]), 1_000).unwrap())[0]["type"], "done");
        let second = parse(&engine.login("k", 2_000))[0].clone();
        let (jti1, jti2) = (assertion_jti(&first), assertion_jti(&second));
        assert_ne!(jti1, jti2);
        assert!(jti1.len() >= 22 && jti2.len() >= 22, "128 bits: {jti1} {jti2}");

        // Another engine with other bytes draws other ids (the same bytes would repeat them: hosts
        // must draw fresh ones per engine).
        let mut other = JsonEngine::new();
        other.register("k", &provider).unwrap();
        other.set_entropy(&base64::engine::general_purpose::STANDARD.encode([43u8; 40])).unwrap();
        let third = parse(&other.ensure("k", 1_000))[0].clone();
        assert!(![&jti1, &jti2].contains(&&assertion_jti(&third)));
    }

    #[test]
    fn a_token_exchange_stage_may_sign_client_assertions() {
        let pem =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/ec.pem"))
                .unwrap();
        let mut engine = JsonEngine::new();
        engine.set_entropy(&base64::engine::general_purpose::STANDARD.encode([9u8; 32])).unwrap();
        engine.register("net", r#"{"type":"static","access_token":"net-token"}"#).unwrap();
        let stage = json!({"type": "token_exchange", "token_endpoint": "https://idp/token", "client_id": "x",
            "client_assertion_key": pem});
        let chain = json!({"network": "net", "discovery": stage, "domain": {"type": "http_call", "url": "https://api/{domain_id}"}});
        engine.register_chain("chain", &chain.to_string()).unwrap();
        let actions = parse(&engine.domain_access("chain", "alpha", 1_000));
        let request = actions.as_array().unwrap().iter().find(|a| a["type"] == "http_request").unwrap().clone();
        assert!(request["body"].as_str().unwrap().contains("subject_token=net-token"), "{request}");
        assert_eq!(assertion_jti(&request).len(), 22);

        // An unusable key or an assertion field without a key: refused when registered, naming
        // the field and not the value.
        for (bad, field) in [
            (json!({"client_assertion_key": "SECRETKEYTEXT"}), "client_assertion_key"),
            (json!({"client_secret": "SECRETKEYTEXT", "client_assertion_kid": "k"}), "client_assertion_kid"),
            (json!({"client_auth": "client_secret_jwt"}), "client_secret"),
        ] {
            let mut stage = json!({"type": "token_exchange", "token_endpoint": "https://idp/token", "client_id": "x"});
            stage.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
            let chain =
                json!({"network": "net", "discovery": stage, "domain": {"type": "http_call", "url": "https://api"}});
            let error = engine.register_chain("bad", &chain.to_string()).unwrap_err().to_string();
            assert!(error.contains(field) && !error.contains("SECRETKEYTEXT"), "{error}");
        }
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
    fn a_host_drives_a_whole_chain_with_actions_and_events_only() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "net",
                r#"{"type":"password","client_id":"c","client_secret":"client-zz-secret","token_endpoint":"https://idp/token",
                    "username":"alice","password":"alice-zz-password"}"#,
            )
            .unwrap();
        let chain = json!({"network": "net", "refresh_threshold_ms": 10_000,
            "discovery": {"type": "http_call", "url": "https://api/discovery"},
            "domain": {"type": "http_call", "url": "https://api/domains/{domain_id}/access"}});
        engine.register_chain("domains", &chain.to_string()).unwrap();

        // Only actions and events from here on: the host loop of an auki-style client.
        let mut sent = Vec::new();
        let mut outcomes = Vec::new();
        for domain_id in ["alpha", "beta"] {
            let mut queue: Vec<Value> =
                parse(&engine.domain_access("domains", domain_id, 1_000)).as_array().unwrap().clone();
            while let Some(action) = (!queue.is_empty()).then(|| queue.remove(0)) {
                match action["type"].as_str().unwrap() {
                    "http_request" => {
                        let url = action["url"].as_str().unwrap().to_owned();
                        let body = match url.as_str() {
                            "https://idp/token" => {
                                json!({"access_token": "net-1", "expires_in": 3600, "refresh_token": "rt-1"})
                            }
                            "https://api/discovery" => json!({"access_token": "disc-1", "expires_in": 600}),
                            other => {
                                let id = other.trim_start_matches("https://api/domains/").trim_end_matches("/access");
                                json!({"id": id, "name": id.to_uppercase(), "domain_server": {"url": format!("https://{id}.example"), "region": "eu"},
                                    "access_token": format!("{id}-token"), "expires_in": 300})
                            }
                        };
                        sent.push(url);
                        queue.extend(respond(&mut engine, &action, 200, body, 1_000).as_array().unwrap().clone());
                    }
                    _ => outcomes.push(action),
                }
            }
        }
        assert_eq!(
            sent,
            [
                "https://idp/token",
                "https://api/discovery",
                "https://api/domains/alpha/access",
                "https://api/domains/beta/access"
            ],
            "one login and one discovery call serve both domains"
        );
        assert_eq!(outcomes.len(), 2, "no done of the network login reached the host: {outcomes:?}");
        for (done, id) in outcomes.iter().zip(["alpha", "beta"]) {
            assert_eq!(
                (&done["type"], &done["key"], &done["domain_id"]),
                (&json!("done"), &json!("domains"), &json!(id))
            );
            assert_eq!(done["tokens"]["access_token"], format!("{id}-token"));
            assert_eq!(done["tokens"]["expires_at"], 301_000);
            let access = &done["domain_access"];
            assert_eq!((&access["id"], &access["name"]), (&json!(id), &json!(id.to_uppercase())));
            assert_eq!(access["domain_server"], json!({"url": format!("https://{id}.example"), "region": "eu"}));
            assert_eq!(
                (&access["access_token"], &access["expires_at"]),
                (&json!(format!("{id}-token")), &json!(301_000))
            );
        }

        // Served from the cache afterwards: no request, the same access.
        let cached = parse(&engine.cached_domain_access("domains", "beta", 2_000).unwrap());
        assert_eq!(cached, outcomes[1]["domain_access"]);
        assert_eq!(engine.cached_domain_access("domains", "gamma", 2_000), None);
        assert_eq!(engine.cached_domain_access("domains", "beta", 301_000), None, "expired");
        let again = parse(&engine.domain_access("domains", "alpha", 2_000));
        assert_eq!((&again[0]["type"], &again[0]["domain_id"]), (&json!("done"), &json!("alpha")));

        // The state document: every stage, no credential; it restores into a new engine.
        let state = engine.chain_state("domains").unwrap();
        assert!(!state.contains("zz-secret") && !state.contains("zz-password"), "{state}");
        let mut restored = JsonEngine::new();
        restored.register("net", r#"{"type":"client_credentials","client_id":"c","client_secret":"s","token_endpoint":"https://idp/token"}"#).unwrap();
        restored.register_chain("domains", &chain.to_string()).unwrap();
        restored.set_chain_state("domains", &state).unwrap();
        assert_eq!(
            parse(&restored.cached_domain_access("domains", "alpha", 2_000).unwrap()),
            outcomes[0]["domain_access"]
        );

        // A 401 from alpha's own server: alpha alone is derived again; a 404 fails at its stage.
        let request = parse(&engine.refresh_domain_access("domains", "alpha", 3_000));
        assert_eq!(
            (&request[0]["url"], request.as_array().unwrap().len()),
            (&json!("https://api/domains/alpha/access"), 1)
        );
        assert_eq!(request[0]["headers"]["authorization"], "Bearer disc-1");
        let failed = respond(&mut engine, &request[0], 404, json!({"error": "unknown_domain"}), 3_000);
        assert_eq!(
            (&failed[0]["type"], &failed[0]["key"], &failed[0]["domain_id"], &failed[0]["stage"]),
            (&json!("failed"), &json!("domains"), &json!("alpha"), &json!("domain")),
            "{failed}"
        );
        assert_eq!(failed[0]["error"]["kind"], "oauth");
        assert!(!failed.to_string().contains("disc-1"), "{failed}");
    }

    #[test]
    fn chain_descriptions_are_checked_and_network_drops_ride_on_chain_actions() {
        let mut engine = JsonEngine::new();
        engine
            .register(
                "net",
                r#"{"type":"password","client_id":"c","token_endpoint":"https://idp/token","username":"a","password":"p"}"#,
            )
            .unwrap();
        let stage = json!({"type": "http_call", "url": "https://api/x"});
        for (chain, expected) in [
            (
                json!({"network": "nope", "discovery": stage, "domain": stage}),
                "network \"nope\" is not a registered provider",
            ),
            (
                json!({"network": "net", "discovery": {"type": "ftp", "url": "u"}, "domain": stage}),
                "unknown variant `ftp`",
            ),
            (
                json!({"network": "net", "discovery": {"type": "zz-secret/1", "url": "u"}, "domain": stage}),
                "unknown variant `…`",
            ),
            (json!({"network": "net", "discovery": stage, "domain": stage, "max_attempts": 0}), "max_attempts"),
            (
                json!({"network": "net", "discovery": {"type": "token_exchange", "token_endpoint": "e", "client_id": "c",
                "client_auth": "client_secret_post"}, "domain": stage}),
                "discovery: client_secret: is required",
            ),
            (
                json!({"network": "net", "discovery": {"type": "http_call", "url": "u", "method": "zz-secret"}, "domain": stage}),
                "method",
            ),
            (
                json!({"network": "net", "discovery": stage, "domain": stage, "extra": "zz-secret"}),
                "unknown field `extra`",
            ),
        ] {
            let error = engine.register_chain("c1", &chain.to_string()).unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, Error::Configuration { .. }) && text.contains(expected), "{text}: {expected}");
            assert!(text.contains("chain \"c1\"") && !text.contains("zz-secret"), "{text}");
        }
        let ok = json!({"network": "net", "discovery": stage, "domain": {"type": "http_call", "url": "https://api/{domain_id}"}});
        assert!(engine.register_chain("net", &ok.to_string()).is_err(), "a provider's key");
        engine.register_chain("c1", &ok.to_string()).unwrap();
        assert!(engine.register("c1", r#"{"type":"static","access_token":"t"}"#).is_err(), "a chain's key");

        // An expired network token with a refresh token: the chain's first request is the refresh;
        // its answer is lost, so the engine drops the refresh token and logs in again: the host
        // sees the login request carrying refresh_token_dropped, not an action of its own.
        engine
            .set_tokens("net", Some(r#"{"access_token":"old","expires_at":500,"refresh_token":"held","issued_at":0}"#))
            .unwrap();
        let refresh = parse(&engine.domain_access("c1", "alpha", 1_000));
        assert!(refresh[0]["body"].as_str().unwrap().contains("grant_type=refresh_token"), "{refresh}");
        let event =
            json!({"type": "transport_error", "request_id": refresh[0]["id"], "kind": "timeout", "message": "lost"});
        let login = parse(&engine.handle(&event.to_string(), 1_000).unwrap());
        assert_eq!(login.as_array().unwrap().len(), 1, "{login}");
        assert_eq!(
            (&login[0]["type"], &login[0]["refresh_token_dropped"]),
            (&json!("http_request"), &json!("outcome_unknown"))
        );
        assert!(login[0]["body"].as_str().unwrap().contains("grant_type=password"), "{login}");
        // The login is refused: the chain fails at the network stage, with a typed error.
        let failed = respond(&mut engine, &login[0], 400, json!({"error": "invalid_grant"}), 1_000);
        assert_eq!((&failed[0]["stage"], &failed[0]["domain_id"]), (&json!("network"), &json!("alpha")), "{failed}");
        assert_eq!(failed[0]["error"]["code"], "invalid_grant");
        assert!(!failed.to_string().contains("held"), "{failed}");
    }

    #[test]
    fn expiry_helpers_in_milliseconds() {
        assert!(is_expired_ms(Some(1_000), 1_000));
        assert!(!is_expired_ms(None, i64::MAX));
        assert!(is_near_expiry_ms(Some(10_000), 5_000, 5_000));
        assert!(!is_near_expiry_ms(Some(10_000), 4_999, 5_000));
    }
}
