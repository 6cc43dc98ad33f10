//! The engine: a keyed token cache that decides which flow must run for a key to hold a valid
//! token, and turns flow steps into [`Action`]s for whoever does the I/O.
//!
//! ```text
//! ensure/refresh(key) ─► token valid? ─yes─► []
//!   └no─► refresh token usable? ─yes─► Grant::flow(Refresh) ──────────┐
//!          └no─► may a login start unasked? ─yes─► Grant::flow(Login) ─┤
//!                 └no─► Failed(ReauthenticationRequired)               │
//! login(key) ─► Grant::flow(Login) ────────────────────────────────────┤
//! logout(key) ─► Grant::flow(Revoke) ──────────────────────────────────┤
//!         (discovery first, once per key, when endpoints come from an issuer)
//!                                                                      ▼
//! handle(event) ─► the running Box<dyn Flow> ─► Vec<FlowStep> ─► after_steps:
//!   Send | Wait | Prompt ─► actions; the flow keeps running
//!   the first final step ─► finish:
//!     Done ─► cached, Action::Done
//!     at logout, Revoked | NotRevoked | Failed ─► tokens dropped, LoggedOut
//!     Failed(invalid_grant | OutcomeUnknown) of a refresh ─► RefreshTokenDropped ─► unattended
//!                                   login if the grant allows, else ReauthenticationRequired
//!     any other Failed ─► Action::Failed
//! ```
//! Every flow, built-in or custom, runs through the one [`Flow`] seam, and the engine matches no
//! grant variant: it asks the [`Grant`] for the flow of a purpose and for a few properties
//! (interactive, unattended). It owns no clock and no randomness: time comes with each call, and
//! retry jitter from a generator seeded by [`EngineSettings::jitter_seed`].

use std::collections::HashMap;
use std::time::Duration;

use crate::flow::{Flow, FlowContext, FlowPurpose, FlowStep, Grant, LoginInputs, Prompt, RetrySettings};
use crate::protocol::{discovery_request, parse_discovery};
use crate::{DpopInputs, DpopProver};
use crate::{
    Endpoints, Error, HttpRequest, HttpResponse, OAuthErrorCode, ProviderConfig, ProviderMetadata, RequestId, Secret,
    Timestamp, TokenSet,
};

/// Engine-wide settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineSettings {
    /// A token is refreshed this long before expiry (capped at half its lifetime). Default 30 s.
    pub refresh_skew: Duration,
    /// Retry limits for token requests.
    pub retry: RetrySettings,
    /// Seed for retry jitter (the core has no randomness of its own).
    pub jitter_seed: u64,
    /// 256 bits from the driver's cryptographically secure generator, from which the engine
    /// derives each client assertion's `jti` (HMAC-SHA-256 of a counter: 128 bits per request,
    /// unique across processes because every engine gets its own; a process that forks after the
    /// engine was made must give the child new entropy). `None` (the default): client
    /// assertions (`client_secret_jwt`, `private_key_jwt`) fail as a configuration error; the
    /// other methods need none. `tessera::Session` always sets it.
    pub entropy: Option<Entropy>,
}

/// Random bytes from the driver for [`EngineSettings::entropy`]. `Debug` does not show them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Entropy(pub [u8; 32]);

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entropy([redacted])")
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            refresh_skew: Duration::from_secs(30),
            retry: RetrySettings::default(),
            jitter_seed: 0x9E37_79B9_7F4A_7C15,
            entropy: None,
        }
    }
}

/// What the runtime must do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Send this request; feed back [`Event::Response`] or [`Event::TransportFailed`].
    Send(HttpRequest),
    /// Sleep until `until`, then feed back [`Event::Timer`].
    Wait {
        /// The key whose flow waits.
        key: String,
        /// When to wake up.
        until: Timestamp,
    },
    /// Show this to the user (e.g. a device code), then carry on with the next action. Only
    /// interactive logins ([`Engine::login`] with an interactive grant) produce it.
    Prompt {
        /// The key whose login needs a person.
        key: String,
        /// What to show.
        prompt: Prompt,
    },
    /// `key` now holds these tokens (also cached in the engine).
    Done {
        /// The key.
        key: String,
        /// The tokens.
        tokens: TokenSet,
    },
    /// Obtaining a token for `key` failed.
    Failed {
        /// The key.
        key: String,
        /// Why.
        error: Error,
    },
    /// The refresh token `key` held (or the refresh-token grant's configured one) was just
    /// presented and must never be presented again: the runtime removes it from wherever it keeps
    /// tokens, then carries on with the next action (a login that needs nobody, or the failure).
    RefreshTokenDropped {
        /// The key.
        key: String,
        /// Why.
        reason: DropReason,
    },
    /// `key`'s tokens were dropped after a logout.
    LoggedOut {
        /// The key.
        key: String,
        /// True when the server confirmed revocation.
        revoked: bool,
        /// Why revocation failed, when it did (the tokens are dropped anyway).
        error: Option<Error>,
    },
}

/// Why a refresh token was dropped ([`Action::RefreshTokenDropped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The server refused it (`invalid_grant`): expired, revoked, or reused elsewhere.
    Rejected,
    /// It was sent and the answer was lost ([`Error::OutcomeUnknown`]): the server may have
    /// rotated it. Keep a fingerprint: presenting it again, even after the store is wiped, could
    /// be taken for reuse and revoke the grant.
    OutcomeUnknown,
}

impl DropReason {
    /// `rejected` or `outcome_unknown` (JSON, Python).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Rejected => "rejected",
            DropReason::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// What the runtime feeds back.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The answer to a [`Action::Send`].
    Response(HttpResponse),
    /// A [`Action::Send`] that did not complete.
    TransportFailed {
        /// The request's id.
        request_id: RequestId,
        /// What went wrong (normally [`Error::Transport`]).
        error: Error,
    },
    /// A [`Action::Wait`] elapsed.
    Timer {
        /// The key that asked to wait.
        key: String,
    },
    /// A person answered a [`Action::Prompt`] whose prompt [expects an answer](Prompt::expects_answer).
    Answer {
        /// The key whose login asked.
        key: String,
        /// The answer (a code, or the URL a browser was sent back to).
        answer: Secret,
    },
    /// No answer will come to a prompt (no prompter, the person gave up, a timeout): the login
    /// fails with `error`.
    PromptFailed {
        /// The key whose login asked.
        key: String,
        /// Why.
        error: Error,
    },
}

impl Event {
    fn request_id(&self) -> Option<RequestId> {
        match self {
            Event::Response(response) => Some(response.request_id),
            Event::TransportFailed { request_id, .. } => Some(*request_id),
            Event::Timer { .. } | Event::Answer { .. } | Event::PromptFailed { .. } => None,
        }
    }
}

enum Operation {
    /// Fetching the discovery document, attempt number `attempt` (a GET: safe to retry). `then`
    /// starts once it is known.
    Discovering { request_id: RequestId, then: Box<Running>, attempt: u32 },
    /// Waiting to fetch it again after a transient failure.
    DiscoveryBackoff { until: Timestamp, then: Box<Running>, attempt: u32 },
    /// A flow that has started and waits for an event.
    Running(Running),
}

/// A [`Flow`] and what it is for: the purpose decides what its end means (tokens to cache, a
/// rejected refresh token, a logout).
struct Running {
    flow: Box<dyn Flow>,
    purpose: FlowPurpose,
}

/// How a flow ended: its final [`FlowStep`].
enum Ending {
    Done(TokenSet),
    Revoked,
    NotRevoked,
    Failed(Error),
}

struct Entry {
    config: ProviderConfig,
    tokens: Option<TokenSet>,
    metadata: Option<ProviderMetadata>,
    operation: Option<Operation>,
    /// The token endpoint's last `DPoP-Nonce` (RFC 9449 §8), from any of its responses.
    dpop_nonce: Option<String>,
    /// The DPoP key made for this provider (no `dpop_key`, and no key held with the tokens yet).
    generated_dpop: Option<Secret>,
    /// RFC 8707 resource indicators (see [`Engine::set_resources`]).
    resources: Vec<String>,
}

/// A keyed token cache plus the flows that fill it. See the module docs.
pub struct Engine {
    settings: EngineSettings,
    entries: HashMap<String, Entry>,
    in_flight: HashMap<RequestId, String>,
    next_request_id: u64,
    jitter_state: u64,
    /// How many assertion ids were drawn from [`EngineSettings::entropy`].
    assertion_counter: u64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineSettings::default())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &self.settings)
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Engine {
    /// An engine with these settings.
    pub fn new(settings: EngineSettings) -> Self {
        Engine {
            settings,
            entries: HashMap::new(),
            in_flight: HashMap::new(),
            next_request_id: 1,
            jitter_state: settings.jitter_seed | 1,
            assertion_counter: 0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Replaces [`EngineSettings::entropy`] (for hosts that create the engine before they have
    /// random bytes, such as the JSON API's `set_entropy`). Assertion ids drawn afterwards come
    /// from the new key; the counter goes on, so even the same bytes given twice repeat no id.
    pub fn set_entropy(&mut self, entropy: Entropy) {
        self.settings.entropy = Some(entropy);
    }

    /// Adds or replaces the provider behind `key` (cached tokens are kept; an operation in flight is dropped).
    pub fn register(&mut self, key: impl Into<String>, config: ProviderConfig) {
        let key = key.into();
        self.in_flight.retain(|_, k| *k != key);
        let (tokens, generated_dpop, resources) = self
            .entries
            .remove(&key)
            .map(|entry| (entry.tokens, entry.generated_dpop, entry.resources))
            .unwrap_or_default();
        let entry =
            Entry { config, tokens, metadata: None, operation: None, dpop_nonce: None, generated_dpop, resources };
        self.entries.insert(key, entry);
    }

    /// RFC 8707 resource indicators for `key`: its tokens are meant for `resources[0]` (every
    /// token request, refreshes included, asks for it), and a login's authorization request (or
    /// device authorization request) names them all, so that one login can later serve each of
    /// them through a refresh. Empty (the default): no `resource` parameter. Cached tokens are
    /// kept (the runtime decides which tokens a resource may use). Unknown keys are ignored.
    pub fn set_resources(&mut self, key: &str, resources: Vec<String>) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.resources = resources;
        }
    }

    /// Replaces the scope `key`'s logins ask for (a step-up to a wider scope, RFC 6750 §3.1
    /// `insufficient_scope`); tokens and metadata are kept. Unknown keys are ignored.
    pub fn set_scope(&mut self, key: &str, scope: Option<String>) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.config.scope = scope;
        }
    }

    /// The resource indicators of `key` ([`Engine::set_resources`]).
    pub fn resources(&self, key: &str) -> &[String] {
        self.entries.get(key).map_or(&[], |entry| &entry.resources)
    }

    /// Discovered metadata can also come from elsewhere (a resource's authorization server found
    /// by [`crate::protocol::resource::ResourceDiscovery`]): the engine then does not fetch it again. Its
    /// issuer must be the provider's (`Endpoints::Discover`); otherwise nothing changes.
    pub fn set_metadata(&mut self, key: &str, metadata: ProviderMetadata) -> bool {
        let Some(entry) = self.entries.get_mut(key) else { return false };
        match &entry.config.endpoints {
            Endpoints::Discover { issuer } if *issuer == metadata.issuer => {
                entry.config.client.choose_method(&metadata.token_endpoint_auth_methods_supported);
                entry.metadata = Some(metadata);
                true
            }
            _ => false,
        }
    }

    /// The provider behind `key`.
    pub fn config(&self, key: &str) -> Option<&ProviderConfig> {
        self.entries.get(key).map(|entry| &entry.config)
    }

    /// The cached tokens of `key`.
    pub fn tokens(&self, key: &str) -> Option<&TokenSet> {
        self.entries.get(key)?.tokens.as_ref()
    }

    /// Replaces the cached tokens of `key` (e.g. with what a store holds). Unknown keys are ignored.
    pub fn set_tokens(&mut self, key: &str, tokens: Option<TokenSet>) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.tokens = tokens;
        }
    }

    /// Forgets the tokens of `key` and the DPoP key generated for them, as a logout does but
    /// without telling the server (a session's `clear`): the next login proves with a new key.
    pub fn forget_tokens(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.tokens = None;
            entry.generated_dpop = None;
        }
    }

    /// Discovered metadata of `key`, once fetched.
    pub fn metadata(&self, key: &str) -> Option<&ProviderMetadata> {
        self.entries.get(key)?.metadata.as_ref()
    }

    /// True while a flow for `key` waits for an event.
    pub fn is_busy(&self, key: &str) -> bool {
        self.entries.get(key).is_some_and(|entry| entry.operation.is_some())
    }

    /// What must happen for `key` to hold a token valid beyond the refresh window. Empty when the
    /// cached token is fine, or when an operation for `key` is already in flight (its outcome will
    /// come from [`Engine::handle`]).
    pub fn ensure(&mut self, key: &str, now: Timestamp) -> Vec<Action> {
        let skew = self.settings.refresh_skew;
        match self.entries.get(key) {
            None => return vec![unknown_key(key)],
            Some(entry) if entry.operation.is_some() => return Vec::new(),
            Some(entry) => {
                if let Some(tokens) = &entry.tokens
                    && tokens.access_valid(now, tokens.refresh_window(skew))
                {
                    return Vec::new();
                }
            }
        }
        self.start(key, false, &LoginInputs::default(), now)
    }

    /// Gets a new token now, whatever the cache says (after a 401): refresh if possible, else log in.
    pub fn refresh(&mut self, key: &str, now: Timestamp) -> Vec<Action> {
        self.start(key, false, &LoginInputs::default(), now)
    }

    /// Logs in afresh with the configured grant, ignoring any refresh token.
    pub fn login(&mut self, key: &str, now: Timestamp) -> Vec<Action> {
        self.login_with(key, LoginInputs::default(), now)
    }

    /// [`Engine::login`] with what only the runtime can bring: randomness and a redirect URI
    /// (browser logins need both).
    pub fn login_with(&mut self, key: &str, inputs: LoginInputs, now: Timestamp) -> Vec<Action> {
        self.start(key, true, &inputs, now)
    }

    /// Revokes the refresh token (or else the access token) when the server has an RFC 7009
    /// endpoint (or through the grant's own revocation), then drops the tokens.
    pub fn logout(&mut self, key: &str, now: Timestamp) -> Vec<Action> {
        // Whatever was in flight for this key is abandoned: its late answers must not reach the revocation.
        self.in_flight.retain(|_, owner| owner != key);
        let Some(entry) = self.entries.get_mut(key) else { return vec![unknown_key(key)] };
        entry.operation = None;
        // A generated DPoP key goes with the tokens it bound: the next login gets a new one.
        entry.generated_dpop = None;
        if entry.tokens.is_none() {
            return vec![Action::LoggedOut { key: key.to_owned(), revoked: false, error: None }];
        }
        self.start_flow(key, FlowPurpose::Revoke, &LoginInputs::default(), now)
    }

    /// Feeds back the outcome of an action.
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Vec<Action> {
        let key = match (&event, event.request_id()) {
            (Event::Timer { key } | Event::Answer { key, .. } | Event::PromptFailed { key, .. }, _) => key.clone(),
            (_, Some(id)) => match self.in_flight.remove(&id) {
                Some(key) => key,
                None => return Vec::new(), // stale or unknown: nothing waits for it
            },
            _ => return Vec::new(),
        };
        let jitter = self.next_jitter();
        let retry = self.settings.retry;
        let Some(entry) = self.entries.get_mut(&key) else { return Vec::new() };
        // Every answer of the server may carry its next DPoP nonce (RFC 9449 §8.2), a success too.
        if let Event::Response(response) = &event
            && let Some(nonce) = crate::dpop::response_nonce(response)
        {
            entry.dpop_nonce = Some(nonce.to_owned());
        }
        let Some(operation) = entry.operation.take() else { return Vec::new() };
        match (operation, event) {
            (Operation::Discovering { request_id, then, attempt }, Event::Response(response))
                if response.request_id == request_id =>
            {
                let Endpoints::Discover { issuer } = &entry.config.endpoints else { return Vec::new() };
                match parse_discovery(&response, issuer) {
                    Ok(metadata) => {
                        entry.config.client.choose_method(&metadata.token_endpoint_auth_methods_supported);
                        entry.metadata = Some(metadata);
                        self.proceed(&key, *then, now)
                    }
                    Err(error) => retry_discovery(entry, &key, then, attempt, error, now, &retry, jitter),
                }
            }
            (Operation::Discovering { then, attempt, .. }, Event::TransportFailed { error, .. }) => {
                retry_discovery(entry, &key, then, attempt, error, now, &retry, jitter)
            }
            (Operation::DiscoveryBackoff { until, then, attempt }, Event::Timer { .. }) => {
                if now < until {
                    entry.operation = Some(Operation::DiscoveryBackoff { until, then, attempt });
                    return vec![Action::Wait { key, until }];
                }
                self.discover(&key, *then, attempt + 1)
            }
            (Operation::Running(running), event) => self.step(&key, running, event, jitter, now),
            (operation, _) => {
                entry.operation = Some(operation); // an event that does not belong to this state
                Vec::new()
            }
        }
    }

    /// Starts what `key` needs: a refresh when a refresh token can be used (unless `asked` for a
    /// login), else a login, if one may start (see [`Grant::logs_in_silently`]).
    fn start(&mut self, key: &str, asked: bool, inputs: &LoginInputs, now: Timestamp) -> Vec<Action> {
        // A new operation replaces any in flight: late answers to the old one are dropped, never fed
        // to the new flow (a refresh's answer must not complete a login).
        self.in_flight.retain(|_, owner| owner != key);
        let Some(entry) = self.entries.get_mut(key) else { return vec![unknown_key(key)] };
        entry.operation = None;
        let refresh_usable = !asked
            && entry.tokens.as_ref().is_some_and(|t| t.refresh_token.is_some() && t.refresh_valid(now, Duration::ZERO));
        if refresh_usable {
            return self.start_flow(key, FlowPurpose::Refresh, inputs, now);
        }
        let grant = &entry.config.grant;
        if !asked && !grant.logs_in_silently(entry.tokens.is_some()) {
            // A login that needs a person starts only when asked for, never from a silent refresh;
            // nor does one that would spend again what the first login spent.
            let cause =
                if entry.tokens.is_some() { Reauthentication::Expired } else { Reauthentication::NeverLoggedIn };
            return vec![Action::Failed { key: key.to_owned(), error: reauthentication(grant, cause) }];
        }
        self.start_flow(key, FlowPurpose::Login, inputs, now)
    }

    /// Runs the grant's flow for `purpose`.
    fn start_flow(&mut self, key: &str, purpose: FlowPurpose, inputs: &LoginInputs, now: Timestamp) -> Vec<Action> {
        let Some(entry) = self.entries.get(key) else { return vec![unknown_key(key)] };
        match entry.config.grant.flow(purpose, inputs) {
            Ok(flow) => self.proceed(key, Running { flow, purpose }, now),
            Err(error) => self.finish(key, purpose, Ending::Failed(error), now),
        }
    }

    /// Starts `running` once endpoints are known (discovering them first if it needs them).
    fn proceed(&mut self, key: &str, mut running: Running, now: Timestamp) -> Vec<Action> {
        let Some(entry) = self.entries.get(key) else { return Vec::new() };
        if running.flow.needs_discovery()
            && matches!((&entry.config.endpoints, &entry.metadata), (Endpoints::Discover { .. }, None))
        {
            return self.discover(key, running, 1);
        }
        let request_id = self.allocate_request_id(key);
        let jitter = self.next_jitter();
        let jti = self.next_assertion_id();
        let prover = self.dpop_prover(key);
        let Some(entry) = self.entries.get(key) else { return Vec::new() };
        let context = flow_context(entry, &self.settings, jitter, jti, prover.as_ref());
        let steps = running.flow.start(&context, request_id, now);
        self.after_steps(key, running, request_id, steps, now)
    }

    /// Sends discovery attempt number `attempt`; `then` starts once it succeeds.
    fn discover(&mut self, key: &str, then: Running, attempt: u32) -> Vec<Action> {
        let request_id = self.allocate_request_id(key);
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let Endpoints::Discover { issuer } = &entry.config.endpoints else { return Vec::new() };
        let request = discovery_request(request_id, issuer);
        entry.operation = Some(Operation::Discovering { request_id, then: Box::new(then), attempt });
        vec![Action::Send(request)]
    }

    /// Feeds `event` to the running flow.
    fn step(&mut self, key: &str, mut running: Running, event: Event, jitter: f64, now: Timestamp) -> Vec<Action> {
        let request_id = self.allocate_request_id(key);
        let jti = self.next_assertion_id();
        let prover = self.dpop_prover(key);
        let Some(entry) = self.entries.get(key) else { return Vec::new() };
        let context = flow_context(entry, &self.settings, jitter, jti, prover.as_ref());
        let steps = match event {
            Event::Response(response) => running.flow.on_response(&context, &response, request_id, now),
            Event::TransportFailed { error, .. } => running.flow.on_transport_error(&context, error, request_id, now),
            Event::Timer { .. } => running.flow.on_timer(&context, request_id, now),
            Event::Answer { answer, .. } => running.flow.on_answer(&context, answer, request_id, now),
            // Nobody will answer the flow's prompt: it ends with the runtime's reason.
            Event::PromptFailed { error, .. } => vec![FlowStep::Failed(error)],
        };
        self.after_steps(key, running, request_id, steps, now)
    }

    /// The one translator from steps to actions. `request_id` is the id the flow was given for
    /// this call: a request under any other id is a flow bug. Keeps the flow while it has more to
    /// do; its final step (the first one; later steps do not count) goes to [`Engine::finish`].
    fn after_steps(
        &mut self,
        key: &str,
        running: Running,
        request_id: RequestId,
        steps: Vec<FlowStep>,
        now: Timestamp,
    ) -> Vec<Action> {
        if !steps.iter().any(|step| matches!(step, FlowStep::Send(request) if request.id == request_id)) {
            self.in_flight.remove(&request_id);
        }
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let mut actions = Vec::with_capacity(steps.len());
        let mut ending = None;
        for step in steps {
            match step {
                FlowStep::Send(request) if request.id == request_id => actions.push(Action::Send(request)),
                FlowStep::Send(_) => {
                    // Refuse rather than lose track of the answer.
                    let message = format!("the {} flow sent a request with a stale id", entry.config.grant.name());
                    ending = Some(Ending::Failed(Error::internal(message)));
                }
                FlowStep::Wait(until) => actions.push(Action::Wait { key: key.to_owned(), until }),
                FlowStep::Prompt(prompt) => actions.push(Action::Prompt { key: key.to_owned(), prompt }),
                FlowStep::Done(tokens) => ending = Some(Ending::Done(tokens)),
                FlowStep::Revoked => ending = Some(Ending::Revoked),
                FlowStep::NotRevoked => ending = Some(Ending::NotRevoked),
                FlowStep::Failed(error) => ending = Some(Ending::Failed(error)),
            }
            if ending.is_some() {
                break;
            }
        }
        match ending {
            None => {
                entry.operation = Some(Operation::Running(running));
                actions
            }
            Some(ending) => {
                actions.extend(self.finish(key, running.purpose, ending, now));
                actions
            }
        }
    }

    /// What the end of a flow means, for every flow: tokens are cached, a logout drops them
    /// whatever happened, and a rejected refresh token follows one rule.
    fn finish(&mut self, key: &str, purpose: FlowPurpose, ending: Ending, now: Timestamp) -> Vec<Action> {
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let key = key.to_owned();
        let grant = &entry.config.grant;
        match (purpose, ending) {
            (FlowPurpose::Login | FlowPurpose::Refresh, Ending::Done(mut tokens)) => {
                // A generated DPoP key stays with the tokens bound to it: the store keeps both, so
                // every process sharing it proves with that key (see `dpop_prover`).
                if entry.config.client.dpop.as_ref().is_some_and(|dpop| dpop.generates_key()) {
                    tokens.dpop_key = entry
                        .tokens
                        .as_ref()
                        .and_then(|held| held.dpop_key.clone())
                        .or_else(|| entry.generated_dpop.clone());
                }
                entry.tokens = Some(tokens.clone());
                vec![Action::Done { key, tokens }]
            }
            // The tokens go whatever the server said: a logout must not leave them usable here.
            (FlowPurpose::Revoke, Ending::Revoked | Ending::Done(_)) => {
                entry.tokens = None;
                vec![Action::LoggedOut { key, revoked: true, error: None }]
            }
            (FlowPurpose::Revoke, Ending::NotRevoked) => {
                entry.tokens = None;
                vec![Action::LoggedOut { key, revoked: false, error: None }]
            }
            (FlowPurpose::Revoke, Ending::Failed(error)) => {
                entry.tokens = None;
                vec![Action::LoggedOut { key, revoked: false, error: Some(error) }]
            }
            // The refresh token is dead (expired, revoked, or reused elsewhere), whichever flow
            // spent it: the standard refresh, a grant's own (Cognito, custom), or the refresh-token
            // grant's login. A refresh drops it, then logs in again if that needs nobody; otherwise
            // (and for the refresh-token grant, whose configured token it was) the caller must
            // reauthenticate.
            // A refresh whose answer was lost is handled alike: the token may be spent.
            (purpose, Ending::Failed(error))
                if (refresh_rejected(&error) || error.is_outcome_unknown())
                    && (purpose == FlowPurpose::Refresh || grant.login_spends_refresh_token()) =>
            {
                let reason = if error.is_outcome_unknown() { DropReason::OutcomeUnknown } else { DropReason::Rejected };
                let mut actions = vec![Action::RefreshTokenDropped { key: key.clone(), reason }];
                if purpose == FlowPurpose::Refresh {
                    if let Some(tokens) = entry.tokens.as_mut() {
                        tokens.refresh_token = None;
                        tokens.refresh_expires_at = None;
                    }
                    if grant.logs_in_unattended() {
                        actions.extend(self.start_flow(&key, FlowPurpose::Login, &LoginInputs::default(), now));
                        return actions;
                    }
                }
                actions.push(Action::Failed { key, error: reauthentication(grant, Reauthentication::Refused(&error)) });
                actions
            }
            (_, Ending::Failed(error)) => vec![Action::Failed { key, error }],
            (FlowPurpose::Login | FlowPurpose::Refresh, Ending::Revoked | Ending::NotRevoked) => {
                let message = format!("the {} flow ended a {purpose:?} as a revocation", grant.name());
                vec![Action::Failed { key, error: Error::internal(message) }]
            }
        }
    }

    fn allocate_request_id(&mut self, key: &str) -> RequestId {
        let id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        self.in_flight.insert(id, key.to_owned());
        id
    }

    /// A request id that no request of this engine has or will have, for a machine that sends
    /// requests beside it and shares its event stream (the chain's stages, [`crate::chain::ChainMachine`]).
    /// The engine does not wait for its answer: an event carrying it is ignored here.
    pub fn reserve_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        id
    }

    /// 128 fresh bits for a client assertion's `jti`: HMAC-SHA-256, keyed with
    /// [`EngineSettings::entropy`], of a counter (a PRF: distinct inputs, unpredictable outputs).
    /// `None` without entropy. Public for drivers that build requests of their own from the
    /// engine's randomness (token-chain stages).
    pub fn next_assertion_id(&mut self) -> Option<[u8; 16]> {
        use hmac::{Hmac, KeyInit, Mac};
        let Entropy(seed) = self.settings.entropy?;
        self.assertion_counter += 1;
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&seed).ok()?;
        mac.update(&self.assertion_counter.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Some(id)
    }

    /// The DPoP key `key`'s next token request proves with, ready to sign; `None` without DPoP.
    /// In order: the user's `dpop_key`; the generated key held with the tokens (they are bound to
    /// it, whichever process made it); the key generated here before; a new one from
    /// [`EngineSettings::entropy`] (an error without entropy).
    fn dpop_prover(&mut self, key: &str) -> Option<Result<DpopProver, Error>> {
        let entry = self.entries.get(key)?;
        let settings = entry.config.client.dpop.as_ref()?;
        if let Some(user_key) = &settings.key {
            return Some(DpopProver::from_key(user_key.expose_secret(), settings.alg.as_deref()));
        }
        let held = entry.tokens.as_ref().and_then(|tokens| tokens.dpop_key.as_ref());
        if let Some(text) = held.or(entry.generated_dpop.as_ref()) {
            return Some(DpopProver::from_key(text.expose_secret(), None));
        }
        let alg = settings.alg.clone();
        // A P-256 scalar is invalid with probability 2^-32: a second draw is all it ever takes.
        for _ in 0..4 {
            let (Some(high), Some(low)) = (self.next_assertion_id(), self.next_assertion_id()) else {
                return Some(Err(Error::configuration(
                    "dpop: a DPoP key cannot be made: the driver gives no randomness (EngineSettings::entropy)",
                )));
            };
            let mut random = zeroize::Zeroizing::new([0u8; 32]);
            random[..16].copy_from_slice(&high);
            random[16..].copy_from_slice(&low);
            match DpopProver::generate(alg.as_deref(), &random) {
                Ok(Some((text, prover))) => {
                    self.entries.get_mut(key)?.generated_dpop = Some(text);
                    return Some(Ok(prover));
                }
                Ok(None) => continue,
                Err(error) => return Some(Err(error)),
            }
        }
        Some(Err(Error::internal("no valid DPoP key in four draws")))
    }

    /// The next retry jitter in `[0, 1)` (xorshift64*: deterministic given
    /// [`EngineSettings::jitter_seed`], good enough to spread retries).
    pub fn next_jitter(&mut self) -> f64 {
        let mut x = self.jitter_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.jitter_state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Test helper: checks that `actions` starts with [`Action::RefreshTokenDropped`] for `reason`, and
/// returns the actions after it.
#[cfg(test)]
pub(crate) fn after_drop(actions: &[Action], reason: DropReason) -> &[Action] {
    match actions {
        [Action::RefreshTokenDropped { reason: dropped, .. }, rest @ ..] if *dropped == reason => rest,
        other => panic!("expected RefreshTokenDropped({reason:?}) first, got {other:?}"),
    }
}

/// Discovery is a GET: any transient failure is retried like a login's token request.
#[allow(clippy::too_many_arguments, reason = "the pieces of one engine step")]
fn retry_discovery(
    entry: &mut Entry,
    key: &str,
    then: Box<Running>,
    attempt: u32,
    error: Error,
    now: Timestamp,
    retry: &RetrySettings,
    jitter: f64,
) -> Vec<Action> {
    if attempt < retry.max_attempts
        && error.is_transient()
        && let Some(delay) = retry.delay_before_retry(attempt, &error, jitter)
    {
        let until = now + delay;
        entry.operation = Some(Operation::DiscoveryBackoff { until, then, attempt });
        return vec![Action::Wait { key: key.to_owned(), until }];
    }
    if then.purpose == FlowPurpose::Revoke {
        // A logout forgets the tokens even when the server cannot be found to revoke them.
        entry.tokens = None;
        return vec![Action::LoggedOut { key: key.to_owned(), revoked: false, error: Some(error) }];
    }
    vec![Action::Failed { key: key.to_owned(), error }]
}

fn refresh_rejected(error: &Error) -> bool {
    error.oauth_code() == Some(&OAuthErrorCode::InvalidGrant)
}

/// Why only a person can help: what [`reauthentication`] explains.
enum Reauthentication<'a> {
    /// Nothing was ever stored for this key.
    NeverLoggedIn,
    /// Tokens were held, and the grant cannot renew them without a person.
    Expired,
    /// The refresh token was refused, or the answer to its refresh was lost.
    Refused(&'a Error),
}

fn reauthentication(grant: &Grant, cause: Reauthentication<'_>) -> Error {
    // "a device code entered on another device", not "a device_code grant": for people.
    let login = match crate::provider_spec::ProviderKind::of(grant) {
        Some(kind) => format!("a login with {}", kind.describe()),
        None => format!("a login with the {} grant", grant.name()),
    };
    let reason = match cause {
        Reauthentication::Refused(cause @ Error::OutcomeUnknown { .. }) => format!(
            "the answer to a refresh was lost ({cause}): the server may have rotated the refresh token, and presenting it again could be taken for reuse and revoke the grant; log in again"
        ),
        Reauthentication::Refused(cause) => format!("the refresh token was rejected ({cause}); log in again"),
        Reauthentication::NeverLoggedIn => format!("not logged in: {login} needs you"),
        Reauthentication::Expired => {
            format!("the token expired and cannot be renewed without you ({login}); log in again")
        }
    };
    Error::ReauthenticationRequired { reason }
}

fn unknown_key(key: &str) -> Action {
    Action::Failed { key: key.to_owned(), error: Error::configuration(format!("no provider registered under {key:?}")) }
}

fn flow_context<'a>(
    entry: &'a Entry,
    settings: &'a EngineSettings,
    jitter: f64,
    assertion_id: Option<[u8; 16]>,
    dpop: Option<&'a Result<DpopProver, Error>>,
) -> FlowContext<'a> {
    FlowContext {
        config: &entry.config,
        metadata: entry.metadata.as_ref(),
        tokens: entry.tokens.as_ref(),
        settings,
        jitter,
        assertion_id,
        dpop: dpop.map(|prover| DpopInputs { prover: prover.as_ref(), nonce: entry.dpop_nonce.as_deref() }),
        resources: &entry.resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientAuth, Secret, TotpSource, TransportErrorKind, flow::Prompt};

    const T0: Timestamp = Timestamp::from_unix_secs(1_000_000);

    fn config(grant: Grant, endpoints: Endpoints) -> ProviderConfig {
        ProviderConfig { client: ClientAuth::basic("c", "s"), endpoints, scope: Some("api".into()), grant }
    }

    fn explicit() -> Endpoints {
        Endpoints::Explicit {
            token_endpoint: "https://idp/token".into(),
            revocation_endpoint: Some("https://idp/revoke".into()),
        }
    }

    fn password() -> Grant {
        Grant::Password { username: "alice".into(), password: Secret::new("pw"), totp: None }
    }

    fn sent(actions: &[Action]) -> &HttpRequest {
        match actions {
            [Action::Send(request)] => request,
            other => panic!("expected one Send, got {other:?}"),
        }
    }

    fn body(request: &HttpRequest) -> &str {
        std::str::from_utf8(&request.body).unwrap()
    }

    fn answer(engine: &mut Engine, request: &HttpRequest, status: u16, json: &str, now: Timestamp) -> Vec<Action> {
        engine.handle(Event::Response(HttpResponse::json(request.id, status, json)), now)
    }

    #[test]
    fn password_login_then_cached_then_rotating_refresh() {
        let mut engine = Engine::default();
        engine.register("k", config(password(), explicit()));
        let actions = engine.ensure("k", T0);
        let request = sent(&actions);
        assert_eq!(body(request), "grant_type=password&username=alice&password=pw&scope=api");
        let done =
            answer(&mut engine, request, 200, r#"{"access_token":"a1","expires_in":100,"refresh_token":"r1"}"#, T0);
        assert!(matches!(&done[..], [Action::Done { tokens, .. }] if tokens.access_token == Secret::new("a1")));
        assert!(engine.ensure("k", T0 + Duration::from_secs(69)).is_empty(), "valid outside the 30 s window");

        let actions = engine.ensure("k", T0 + Duration::from_secs(71));
        let request = sent(&actions);
        assert_eq!(body(request), "grant_type=refresh_token&refresh_token=r1");
        assert!(engine.ensure("k", T0).is_empty(), "in flight: no second request");
        let done =
            answer(&mut engine, request, 200, r#"{"access_token":"a2","expires_in":100,"refresh_token":"r2"}"#, T0);
        assert!(matches!(&done[..], [Action::Done { .. }]));
        assert_eq!(engine.tokens("k").unwrap().refresh_token, Some(Secret::new("r2")));
    }

    #[test]
    fn rejected_refresh_falls_back_to_unattended_login() {
        let mut engine = Engine::default();
        engine.register("k", config(password(), explicit()));
        let mut stale = TokenSet::bearer("a0", Some(T0), T0 - Duration::from_secs(60));
        stale.refresh_token = Some(Secret::new("burned"));
        engine.set_tokens("k", Some(stale));
        let actions = engine.ensure("k", T0);
        let refresh = sent(&actions);
        assert!(body(refresh).contains("refresh_token=burned"));
        let actions = answer(&mut engine, refresh, 400, r#"{"error":"invalid_grant"}"#, T0);
        let login = sent(after_drop(&actions, DropReason::Rejected));
        assert!(body(login).starts_with("grant_type=password"));
        let done = answer(&mut engine, login, 200, r#"{"access_token":"a1","expires_in":100}"#, T0);
        assert!(matches!(&done[..], [Action::Done { .. }]));
    }

    #[test]
    fn a_refresh_whose_answer_is_lost_drops_the_token_and_is_never_resent() {
        for (grant, logs_in_again) in
            [(password(), true), (Grant::RefreshToken { refresh_token: Secret::new("r0") }, false)]
        {
            let mut engine = Engine::default();
            engine.register("k", config(grant, explicit()));
            let mut stale = TokenSet::bearer("a0", Some(T0), T0 - Duration::from_secs(60));
            stale.refresh_token = Some(Secret::new("maybe-spent"));
            engine.set_tokens("k", Some(stale));
            let actions = engine.ensure("k", T0);
            let refresh = sent(&actions);
            assert!(body(refresh).contains("refresh_token=maybe-spent"));
            let lost = Error::Transport {
                kind: TransportErrorKind::Timeout,
                endpoint: "https://idp/token".into(),
                message: "no answer".into(),
            };
            let after = engine.handle(Event::TransportFailed { request_id: refresh.id, error: lost }, T0);
            let after = after_drop(&after, DropReason::OutcomeUnknown);
            assert!(engine.tokens("k").unwrap().refresh_token.is_none());
            if logs_in_again {
                assert!(body(sent(after)).starts_with("grant_type=password"), "{after:?}");
            } else {
                let [Action::Failed { error, .. }] = after else { panic!("{after:?}") };
                assert!(error.requires_reauthentication() && !error.is_transient(), "{error}");
                assert!(error.to_string().contains("answer to a refresh was lost"), "{error}");
                assert!(!error.to_string().contains("maybe-spent"), "{error}");
            }
        }
    }

    #[test]
    fn a_refresh_that_never_connected_is_retried_and_a_login_timeout_too() {
        let mut engine = Engine::default();
        engine.register("k", config(password(), explicit()));
        let mut stale = TokenSet::bearer("a0", Some(T0), T0 - Duration::from_secs(60));
        stale.refresh_token = Some(Secret::new("r1"));
        engine.set_tokens("k", Some(stale));
        let refresh = engine.ensure("k", T0);
        let refused = |kind| Error::Transport { kind, endpoint: "https://idp/token".into(), message: String::new() };
        let wait = engine.handle(
            Event::TransportFailed { request_id: sent(&refresh).id, error: refused(TransportErrorKind::Connect) },
            T0,
        );
        assert!(matches!(&wait[..], [Action::Wait { .. }]), "not sent: retried after a backoff, {wait:?}");
        assert_eq!(engine.tokens("k").unwrap().refresh_token, Some(Secret::new("r1")));

        let mut engine = Engine::default();
        engine.register("k", config(password(), explicit()));
        let login = engine.ensure("k", T0);
        let wait = engine.handle(
            Event::TransportFailed { request_id: sent(&login).id, error: refused(TransportErrorKind::Timeout) },
            T0,
        );
        assert!(matches!(&wait[..], [Action::Wait { .. }]), "a password login may be repeated: {wait:?}");
    }

    #[test]
    fn rejected_refresh_without_unattended_login_requires_reauthentication() {
        for grant in [
            Grant::RefreshToken { refresh_token: Secret::new("r0") },
            Grant::Password {
                username: "u".into(),
                password: Secret::new("p"),
                totp: Some(TotpSource::Code(Secret::new("1"))),
            },
        ] {
            let mut engine = Engine::default();
            engine.register("k", config(grant, explicit()));
            let actions = engine.ensure("k", T0);
            let request = sent(&actions);
            let done =
                answer(&mut engine, request, 200, r#"{"access_token":"a1","expires_in":100,"refresh_token":"r1"}"#, T0);
            assert!(matches!(&done[..], [Action::Done { .. }]));
            let later = T0 + Duration::from_secs(200);
            let actions = engine.ensure("k", later);
            let refresh = sent(&actions);
            let failed =
                answer(&mut engine, refresh, 400, r#"{"error":"invalid_grant","error_description":"reused"}"#, later);
            let [Action::Failed { error, .. }] = after_drop(&failed, DropReason::Rejected) else {
                panic!("{failed:?}")
            };
            assert!(error.requires_reauthentication(), "{error}");
            assert!(error.to_string().contains("reused"));
        }
    }

    #[test]
    fn a_silent_refresh_of_an_interactive_grant_says_why_for_people() {
        let email_otp = Grant::EmailOtp {
            email: "a@example.com".into(),
            otp_start_endpoint: None,
            otp_verify_endpoint: None,
            max_code_attempts: 3,
        };
        let device_code = Grant::DeviceCode { device_authorization_endpoint: None };
        for (grant, held, expected) in [
            (device_code.clone(), false, "not logged in: a login with a code entered on another device needs you"),
            (email_otp.clone(), false, "not logged in: a login with an emailed code needs you"),
            (email_otp, true, "the token expired and cannot be renewed without you (a login with an emailed code)"),
            (device_code, true, "the token expired"),
        ] {
            let mut engine = Engine::default();
            engine.register("k", config(grant, explicit()));
            engine.set_tokens("k", held.then(|| TokenSet::bearer("old", Some(T0), T0 - Duration::from_secs(60))));
            let actions = engine.ensure("k", T0 + Duration::from_secs(1));
            let [Action::Failed { error, .. }] = &actions[..] else { panic!("{actions:?}") };
            let message = error.to_string();
            assert!(error.requires_reauthentication() && message.contains(expected), "{message}");
            // Never the wire names ("a email_otp grant"), and never "expired" for what never was.
            assert!(!message.contains("_otp") && !message.contains("device_code"), "{message}");
            assert_eq!(message.contains("expired"), held, "{message}");
        }
    }

    #[test]
    fn client_credentials_requests_again_and_static_tokens_expire() {
        let mut engine = Engine::default();
        engine.register("cc", config(Grant::ClientCredentials, explicit()));
        let actions = engine.ensure("cc", T0);
        let request = sent(&actions);
        answer(&mut engine, request, 200, r#"{"access_token":"a1","expires_in":10}"#, T0);
        let actions = engine.ensure("cc", T0 + Duration::from_secs(9));
        assert!(body(sent(&actions)).starts_with("grant_type=client_credentials"));

        engine.register(
            "st",
            config(Grant::Static { access_token: Secret::new("fixed"), expires_at: Some(T0) }, explicit()),
        );
        let before = engine.ensure("st", T0 - Duration::from_secs(1));
        assert!(matches!(&before[..], [Action::Done { tokens, .. }] if tokens.access_token == Secret::new("fixed")));
        let after = engine.ensure("st", T0 + Duration::from_secs(1));
        assert!(matches!(&after[..], [Action::Failed { error, .. }] if error.requires_reauthentication()));
    }

    #[test]
    fn an_unset_client_auth_is_chosen_from_the_discovered_methods() {
        let mut engine = Engine::default();
        let mut provider = config(Grant::ClientCredentials, Endpoints::discover("https://idp"));
        provider.client.method_from_metadata = true;
        engine.register("k", provider);
        let actions = engine.ensure("k", T0);
        let discovery = sent(&actions);
        let metadata = r#"{"issuer":"https://idp","token_endpoint":"https://idp/t",
            "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#;
        let actions = answer(&mut engine, discovery, 200, metadata, T0);
        let token = sent(&actions);
        let body = String::from_utf8_lossy(&token.body);
        assert!(body.contains("client_id=c") && body.contains("client_secret=s"), "client_secret_post: {body}");
        assert!(!token.headers.iter().any(|(name, _)| name == "authorization"), "no Basic header");
        assert_eq!(engine.config("k").unwrap().client.method, crate::ClientAuthMethod::Post);
    }

    #[test]
    fn discovery_runs_once_then_token_and_revocation_use_its_endpoints() {
        let mut engine = Engine::default();
        engine.register("k", config(Grant::ClientCredentials, Endpoints::discover("https://idp")));
        let actions = engine.ensure("k", T0);
        let discovery = sent(&actions);
        assert_eq!(discovery.url, "https://idp/.well-known/openid-configuration");
        let actions = answer(
            &mut engine,
            discovery,
            200,
            r#"{"issuer":"https://idp","token_endpoint":"https://idp/t","revocation_endpoint":"https://idp/r"}"#,
            T0,
        );
        let token = sent(&actions);
        assert_eq!(token.url, "https://idp/t");
        answer(&mut engine, token, 200, r#"{"access_token":"a1","expires_in":1}"#, T0);
        let actions = engine.refresh("k", T0);
        assert_eq!(sent(&actions).url, "https://idp/t", "metadata cached");
        answer(&mut engine, sent(&actions), 200, r#"{"access_token":"a2","expires_in":100}"#, T0);

        let actions = engine.logout("k", T0);
        let revoke = sent(&actions);
        assert_eq!(revoke.url, "https://idp/r");
        assert_eq!(body(revoke), "token=a2&token_type_hint=access_token");
        let out = answer(&mut engine, revoke, 200, "{}", T0);
        assert!(matches!(&out[..], [Action::LoggedOut { revoked: true, error: None, .. }]));
        assert!(engine.tokens("k").is_none());
    }

    #[test]
    fn transient_login_errors_wait_then_retry_on_timer() {
        let mut engine = Engine::default();
        engine.register("k", config(Grant::ClientCredentials, explicit()));
        let actions = engine.ensure("k", T0);
        let first = sent(&actions);
        let waits = answer(&mut engine, first, 503, r#"{"error":"temporarily_unavailable"}"#, T0);
        let [Action::Wait { until, .. }] = &waits[..] else { panic!("{waits:?}") };
        let actions = engine.handle(Event::Timer { key: "k".into() }, *until);
        let second = sent(&actions);
        assert_ne!(second.id, first.id);
        // A late answer to the first request is ignored.
        assert!(answer(&mut engine, first, 200, r#"{"access_token":"late"}"#, *until).is_empty());
        let done = answer(&mut engine, second, 200, r#"{"access_token":"a1"}"#, *until);
        assert!(matches!(&done[..], [Action::Done { tokens, .. }] if tokens.expires_at.is_none()));
    }

    #[test]
    fn device_code_logins_start_only_when_asked_and_poll_until_approved() {
        let mut engine = Engine::default();
        engine.register(
            "dev",
            config(Grant::DeviceCode { device_authorization_endpoint: None }, Endpoints::discover("https://idp")),
        );
        let silent = engine.ensure("dev", T0);
        assert!(
            matches!(&silent[..], [Action::Failed { error, .. }] if error.requires_reauthentication()),
            "never prompts silently"
        );

        let actions = engine.login("dev", T0);
        let discovery = sent(&actions);
        let metadata = r#"{"issuer":"https://idp","token_endpoint":"https://idp/t","device_authorization_endpoint":"https://idp/d"}"#;
        let actions = answer(&mut engine, discovery, 200, metadata, T0);
        let authorize = sent(&actions);
        assert_eq!((authorize.url.as_str(), body(authorize)), ("https://idp/d", "scope=api"));
        let codes = r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://idp/device","expires_in":600,"interval":1}"#;
        let actions = answer(&mut engine, authorize, 200, codes, T0);
        let [Action::Prompt { prompt: Prompt::DeviceCode { user_code, .. }, .. }, Action::Wait { until, .. }] =
            &actions[..]
        else {
            panic!("{actions:?}")
        };
        assert_eq!(user_code, "WDJB-MJHT");
        let actions = engine.handle(Event::Timer { key: "dev".into() }, *until);
        let poll = sent(&actions);
        assert_eq!(poll.url, "https://idp/t");
        let done =
            answer(&mut engine, poll, 200, r#"{"access_token":"a","expires_in":60,"refresh_token":"r"}"#, *until);
        assert!(matches!(&done[..], [Action::Done { .. }]));
        // Afterwards refreshes are silent, like any other grant.
        let later = *until + Duration::from_secs(59);
        assert!(body(sent(&engine.ensure("dev", later))).starts_with("grant_type=refresh_token"));
    }

    /// A challenge/response login over a made-up protocol, to drive the pluggable seam.
    #[derive(Debug)]
    struct CodeFlow {
        purpose: FlowPurpose,
        attempt: u32,
    }

    impl Flow for CodeFlow {
        fn start(&mut self, _: &FlowContext<'_>, request_id: RequestId, _: Timestamp) -> Vec<FlowStep> {
            let path = match self.purpose {
                FlowPurpose::Login => "start",
                FlowPurpose::Refresh => "renew",
                FlowPurpose::Revoke => "revoke",
            };
            vec![FlowStep::Send(HttpRequest {
                id: request_id,
                method: crate::Method::Post,
                url: format!("https://idp/{path}"),
                headers: Vec::new(),
                body: Vec::new(),
            })]
        }

        fn on_response(
            &mut self,
            context: &FlowContext<'_>,
            response: &HttpResponse,
            request_id: RequestId,
            now: Timestamp,
        ) -> Vec<FlowStep> {
            match (self.purpose, response.status) {
                (FlowPurpose::Revoke, 200) => vec![FlowStep::Revoked],
                (FlowPurpose::Refresh, 200) => {
                    let mut tokens = context.tokens.cloned().expect("refresh has tokens");
                    tokens.access_token = Secret::new("renewed");
                    tokens.expires_at = Some(now + Duration::from_secs(60));
                    vec![FlowStep::Done(tokens)]
                }
                (FlowPurpose::Refresh, _) => {
                    vec![FlowStep::Failed(crate::protocol::parse_error_response(response, "https://idp/renew"))]
                }
                (FlowPurpose::Login, 202) | (FlowPurpose::Login, 401) => {
                    self.attempt += 1;
                    vec![FlowStep::Prompt(Prompt::Code {
                        channel: crate::CodeChannel::Email,
                        destination: Some("a***@e***".into()),
                        attempt: self.attempt,
                        previous_error: (response.status == 401).then(|| "wrong code".into()),
                    })]
                }
                (FlowPurpose::Login, 200) => {
                    let mut tokens = TokenSet::bearer("a1", Some(now + Duration::from_secs(60)), now);
                    tokens.refresh_token = Some(Secret::new("r1"));
                    vec![FlowStep::Done(tokens)]
                }
                _ => {
                    let _ = request_id;
                    vec![FlowStep::Failed(Error::configuration("unexpected"))]
                }
            }
        }

        fn on_answer(
            &mut self,
            _: &FlowContext<'_>,
            answer: Secret,
            request_id: RequestId,
            _: Timestamp,
        ) -> Vec<FlowStep> {
            vec![FlowStep::Send(HttpRequest {
                id: request_id,
                method: crate::Method::Post,
                url: "https://idp/verify".into(),
                headers: Vec::new(),
                body: answer.expose_secret().as_bytes().to_vec(),
            })]
        }
    }

    #[derive(Debug)]
    struct CodeGrant {
        interactive: bool,
    }

    impl crate::FlowFactory for CodeGrant {
        fn name(&self) -> &'static str {
            "emailed_code"
        }
        fn flow(&self, purpose: FlowPurpose, _: &LoginInputs) -> Result<Option<Box<dyn Flow>>, Error> {
            Ok(Some(Box::new(CodeFlow { purpose, attempt: 0 })))
        }
        fn is_interactive(&self) -> bool {
            self.interactive
        }
    }

    fn custom(factory: impl crate::FlowFactory + 'static) -> Grant {
        Grant::Custom(crate::CustomGrant(std::sync::Arc::new(factory)))
    }

    #[test]
    fn pluggable_flows_prompt_for_answers_refresh_and_revoke() {
        let mut engine = Engine::default();
        let grant = custom(CodeGrant { interactive: true });
        engine.register("otp", config(grant, explicit()));
        let silent = engine.ensure("otp", T0);
        assert!(matches!(&silent[..], [Action::Failed { error, .. }] if error.requires_reauthentication()));

        let actions = engine.login("otp", T0);
        assert_eq!(sent(&actions).url, "https://idp/start");
        let asked = answer(&mut engine, sent(&actions), 202, "{}", T0);
        let [Action::Prompt { prompt: prompt @ Prompt::Code { attempt: 1, .. }, .. }] = &asked[..] else {
            panic!("{asked:?}")
        };
        assert!(prompt.expects_answer());
        let verify = engine.handle(Event::Answer { key: "otp".into(), answer: Secret::new("000000") }, T0);
        assert_eq!(body(sent(&verify)), "000000");
        let again = answer(&mut engine, sent(&verify), 401, "{}", T0);
        assert!(
            matches!(
                &again[..],
                [Action::Prompt { prompt: Prompt::Code { attempt: 2, previous_error: Some(_), .. }, .. }]
            ),
            "{again:?}"
        );
        let verify = engine.handle(Event::Answer { key: "otp".into(), answer: Secret::new("123456") }, T0);
        let done = answer(&mut engine, sent(&verify), 200, "{}", T0);
        assert!(matches!(&done[..], [Action::Done { .. }]));

        // Near expiry: the pluggable refresh, silently.
        let later = T0 + Duration::from_secs(50);
        let renew = engine.ensure("otp", later);
        assert_eq!(sent(&renew).url, "https://idp/renew");
        let done = answer(&mut engine, sent(&renew), 200, "{}", later);
        assert!(matches!(&done[..], [Action::Done { tokens, .. }] if tokens.access_token == Secret::new("renewed")));

        // A rejected refresh of an interactive grant: reauthentication, the refresh token dropped.
        let much_later = later + Duration::from_secs(55);
        let renew = engine.ensure("otp", much_later);
        let failed = answer(&mut engine, sent(&renew), 400, r#"{"error":"invalid_grant"}"#, much_later);
        assert!(
            matches!(after_drop(&failed, DropReason::Rejected), [Action::Failed { error, .. }] if error.requires_reauthentication())
        );
        assert!(engine.tokens("otp").unwrap().refresh_token.is_none());

        // A prompt nobody answers ends the login with the runtime's error.
        let actions = engine.login("otp", much_later);
        answer(&mut engine, sent(&actions), 202, "{}", much_later);
        let gave_up = engine
            .handle(Event::PromptFailed { key: "otp".into(), error: Error::configuration("no prompter") }, much_later);
        assert!(matches!(&gave_up[..], [Action::Failed { error: Error::Configuration { .. }, .. }]));
        assert!(!engine.is_busy("otp"));

        // Logout through the pluggable revocation.
        let out = engine.logout("otp", much_later);
        assert_eq!(sent(&out).url, "https://idp/revoke");
        let out = answer(&mut engine, sent(&out), 200, "{}", much_later);
        assert!(matches!(&out[..], [Action::LoggedOut { revoked: true, error: None, .. }]));
        assert!(engine.tokens("otp").is_none());
    }

    #[test]
    fn discovery_retries_transient_failures_then_gives_up() {
        let mut engine = Engine::default();
        engine.register("k", config(Grant::ClientCredentials, Endpoints::discover("https://idp")));
        let first = engine.ensure("k", T0);
        let busy = answer(&mut engine, sent(&first), 503, r#"{"error":"temporarily_unavailable"}"#, T0);
        let [Action::Wait { until, .. }] = &busy[..] else { panic!("{busy:?}") };
        assert!(engine.handle(Event::Timer { key: "k".into() }, T0).iter().all(|a| matches!(a, Action::Wait { .. })));
        let second = engine.handle(Event::Timer { key: "k".into() }, *until);
        assert_eq!(sent(&second).url, "https://idp/.well-known/openid-configuration");
        let metadata = r#"{"issuer":"https://idp","token_endpoint":"https://idp/t"}"#;
        let token = answer(&mut engine, sent(&second), 200, metadata, *until);
        assert_eq!(sent(&token).url, "https://idp/t", "discovered on the second attempt");

        // Final errors are not retried; transient ones stop after max_attempts.
        let mut engine = Engine::default();
        engine.register("k", config(Grant::ClientCredentials, Endpoints::discover("https://idp")));
        let first = engine.ensure("k", T0);
        let failed = answer(&mut engine, sent(&first), 404, "{}", T0);
        assert!(matches!(&failed[..], [Action::Failed { error: Error::UnexpectedStatus { status: 404, .. }, .. }]));
        let mut now = T0;
        let mut actions = engine.ensure("k", now);
        for attempt in 1..=3 {
            let request_id = sent(&actions).id;
            let failure = Error::Transport {
                kind: crate::TransportErrorKind::ConnectionClosed,
                endpoint: "https://idp".into(),
                message: "reset".into(),
            };
            actions = engine.handle(Event::TransportFailed { request_id, error: failure }, now);
            if attempt == 3 {
                assert!(matches!(&actions[..], [Action::Failed { error: Error::Transport { .. }, .. }]), "{actions:?}");
                break;
            }
            let [Action::Wait { until, .. }] = &actions[..] else { panic!("{actions:?}") };
            now = *until;
            actions = engine.handle(Event::Timer { key: "k".into() }, now);
        }
    }

    #[test]
    fn late_answers_and_timers_of_an_abandoned_operation_are_ignored() {
        let mut engine = Engine::default();
        engine.register("k", config(password(), explicit()));
        let mut held = TokenSet::bearer("a0", Some(T0), T0 - Duration::from_secs(60));
        held.refresh_token = Some(Secret::new("r0"));
        engine.set_tokens("k", Some(held));
        let refresh = engine.ensure("k", T0);
        let refresh_id = sent(&refresh).id;
        // A login replaces the refresh in flight; the refresh's late answer must not complete it.
        let login = engine.login("k", T0);
        assert!(body(sent(&login)).starts_with("grant_type=password"));
        let late = HttpResponse::json(refresh_id, 200, r#"{"access_token":"from-refresh","expires_in":60}"#);
        assert!(engine.handle(Event::Response(late), T0).is_empty(), "a stale answer is dropped");
        // A stale timer does not fail the request in flight either.
        assert!(engine.handle(Event::Timer { key: "k".into() }, T0).is_empty());
        let done = answer(&mut engine, sent(&login), 200, r#"{"access_token":"from-login","expires_in":60}"#, T0);
        assert!(matches!(&done[..], [Action::Done { tokens, .. }] if tokens.access_token == Secret::new("from-login")));

        // A logout whose discovery fails still forgets the tokens, and says why it could not revoke.
        let mut engine = Engine::default();
        engine.register("d", config(password(), Endpoints::discover("https://idp")));
        engine.set_tokens("d", Some(TokenSet::bearer("a", None, T0)));
        let out = engine.logout("d", T0);
        let gone = answer(&mut engine, sent(&out), 404, "{}", T0);
        assert!(matches!(&gone[..], [Action::LoggedOut { revoked: false, error: Some(_), .. }]), "{gone:?}");
        assert!(engine.tokens("d").is_none());
    }

    #[test]
    fn unknown_keys_and_logout_without_tokens() {
        let mut engine = Engine::default();
        assert!(matches!(&engine.ensure("nope", T0)[..], [Action::Failed { error: Error::Configuration { .. }, .. }]));
        engine.register("k", config(Grant::ClientCredentials, explicit()));
        assert!(matches!(&engine.logout("k", T0)[..], [Action::LoggedOut { revoked: false, .. }]));
    }

    #[test]
    fn a_rejected_refresh_follows_one_rule_whichever_flow_spent_the_token() {
        let device = Grant::DeviceCode { device_authorization_endpoint: Some("https://idp/d".into()) };
        // (grant, the refresh it sends, whether it logs in again by itself)
        for (grant, refresh_url, logs_in_again) in [
            (password(), "https://idp/token", true),
            (device, "https://idp/token", false),
            (custom(CodeGrant { interactive: false }), "https://idp/renew", true),
            (custom(CodeGrant { interactive: true }), "https://idp/renew", false),
        ] {
            let name = grant.name();
            let mut engine = Engine::default();
            engine.register("k", config(grant, explicit()));
            let mut held = TokenSet::bearer("a0", Some(T0), T0 - Duration::from_secs(60));
            held.refresh_token = Some(Secret::new("r0"));
            engine.set_tokens("k", Some(held));
            let refresh = engine.ensure("k", T0);
            assert_eq!(sent(&refresh).url, refresh_url, "{name}");
            let after = answer(&mut engine, sent(&refresh), 400, r#"{"error":"invalid_grant"}"#, T0);
            assert!(engine.tokens("k").unwrap().refresh_token.is_none(), "{name}: the dead refresh token is dropped");
            let after = after_drop(&after, DropReason::Rejected);
            if logs_in_again {
                let login = sent(after);
                let is_login = login.url == "https://idp/start" || body(login).starts_with("grant_type=password");
                assert!(is_login, "{name}: {login:?}");
                let done = answer(&mut engine, login, 200, r#"{"access_token":"a1","expires_in":100}"#, T0);
                assert!(matches!(&done[..], [Action::Done { .. }]), "{name}: {done:?}");
            } else {
                let [Action::Failed { error, .. }] = after else { panic!("{name}: {after:?}") };
                assert!(error.requires_reauthentication(), "{name}: {error}");
                assert!(!engine.is_busy("k"));
            }
        }
    }

    /// A flow that breaks the seam's contract in one way.
    #[derive(Debug)]
    enum BrokenFlow {
        /// Sends under an id it was not given.
        StaleId,
        /// Ends a login as if it were a logout.
        RevokedLogin,
        /// Prompts without expecting an answer, then gets one (the default `on_answer`).
        AsksNothing,
    }

    impl Flow for BrokenFlow {
        fn start(&mut self, _: &FlowContext<'_>, request_id: RequestId, _: Timestamp) -> Vec<FlowStep> {
            match self {
                BrokenFlow::StaleId => vec![FlowStep::Send(HttpRequest {
                    id: RequestId(request_id.0 + 1_000),
                    method: crate::Method::Post,
                    url: "https://idp/start".into(),
                    headers: Vec::new(),
                    body: Vec::new(),
                })],
                BrokenFlow::RevokedLogin => vec![FlowStep::Revoked],
                BrokenFlow::AsksNothing => vec![FlowStep::Wait(T0 + Duration::from_secs(60))],
            }
        }

        fn on_response(&mut self, _: &FlowContext<'_>, _: &HttpResponse, _: RequestId, _: Timestamp) -> Vec<FlowStep> {
            Vec::new()
        }
    }

    #[derive(Debug)]
    struct BrokenGrant(fn() -> BrokenFlow);

    impl crate::FlowFactory for BrokenGrant {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn flow(&self, _: FlowPurpose, _: &LoginInputs) -> Result<Option<Box<dyn Flow>>, Error> {
            Ok(Some(Box::new((self.0)())))
        }
        fn is_interactive(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_flow_that_breaks_the_contract_fails_with_an_internal_error() {
        for broken in [|| BrokenFlow::StaleId, || BrokenFlow::RevokedLogin] {
            let mut engine = Engine::default();
            engine.register("k", config(custom(BrokenGrant(broken)), explicit()));
            let actions = engine.login("k", T0);
            assert!(matches!(&actions[..], [Action::Failed { error: Error::Internal { .. }, .. }]), "{actions:?}");
            assert!(!engine.is_busy("k"), "the flow is dropped");
            assert!(engine.tokens("k").is_none());
        }
        let mut engine = Engine::default();
        engine.register("k", config(custom(BrokenGrant(|| BrokenFlow::AsksNothing)), explicit()));
        assert!(matches!(&engine.login("k", T0)[..], [Action::Wait { .. }]));
        let stray = engine.handle(Event::Answer { key: "k".into(), answer: Secret::new("x") }, T0);
        assert!(matches!(&stray[..], [Action::Failed { error: Error::Internal { .. }, .. }]), "{stray:?}");
    }

    #[test]
    fn static_tokens_need_no_discovery_and_logout_without_revocation_drops_the_tokens() {
        let mut engine = Engine::default();
        let grant = Grant::Static { access_token: Secret::new("fixed"), expires_at: None };
        engine.register("st", config(grant, Endpoints::discover("https://idp")));
        let actions = engine.ensure("st", T0);
        assert!(matches!(&actions[..], [Action::Done { tokens, .. }] if tokens.access_token == Secret::new("fixed")));

        engine.register("cc", config(Grant::ClientCredentials, Endpoints::explicit("https://idp/token")));
        engine.set_tokens("cc", Some(TokenSet::bearer("a", None, T0)));
        let out = engine.logout("cc", T0);
        assert!(matches!(&out[..], [Action::LoggedOut { revoked: false, error: None, .. }]), "{out:?}");
        assert!(engine.tokens("cc").is_none());
    }

    /// Part `index` of the request's DPoP proof (0: the header, 1: the claims), as JSON.
    fn proof_part(request: &HttpRequest, index: usize) -> serde_json::Value {
        use base64::Engine as _;
        let proof = request.header("dpop").expect("a DPoP header");
        let part = proof.split('.').nth(index).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn proof_claims(request: &HttpRequest) -> serde_json::Value {
        proof_part(request, 1)
    }

    /// The public key (`jwk`) in the header of the request's DPoP proof.
    fn proof_jwk(request: &HttpRequest) -> serde_json::Value {
        proof_part(request, 0)["jwk"].clone()
    }

    fn dpop_engine() -> Engine {
        let mut engine = Engine::new(EngineSettings { entropy: Some(Entropy([5; 32])), ..EngineSettings::default() });
        let mut config = config(password(), explicit());
        config.client.dpop = Some(crate::DpopSettings::generated());
        engine.register("k", config);
        engine
    }

    #[test]
    fn dpop_token_requests_carry_a_proof_retry_once_with_a_nonce_and_keep_the_generated_key() {
        let mut engine = dpop_engine();
        let actions = engine.ensure("k", T0);
        let first = sent(&actions);
        let claims = proof_claims(first);
        assert_eq!((claims["htm"].as_str(), claims["htu"].as_str()), (Some("POST"), Some("https://idp/token")));
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none(), "{claims}");
        assert!(!format!("{first:?}").contains(first.header("dpop").unwrap()), "Debug redacts the proof");

        // use_dpop_nonce with a nonce: sent again at once, with it.
        let mut demand = HttpResponse::json(first.id, 400, r#"{"error":"use_dpop_nonce"}"#);
        demand.headers.push(("DPoP-Nonce".into(), "n-1".into()));
        let actions = engine.handle(Event::Response(demand), T0);
        let second = sent(&actions);
        let retried = proof_claims(second);
        assert_eq!(retried["nonce"], "n-1");
        assert_ne!(retried["jti"], claims["jti"], "a fresh jti");
        // A second demand is not retried again.
        let mut again = HttpResponse::json(second.id, 400, r#"{"error":"use_dpop_nonce"}"#);
        again.headers.push(("DPoP-Nonce".into(), "n-2".into()));
        let actions = engine.handle(Event::Response(again), T0);
        assert!(matches!(&actions[..], [Action::Failed { .. }]), "{actions:?}");

        // The next request uses the newest nonce; its tokens keep the key they are bound to.
        let actions = engine.login("k", T0);
        let login = sent(&actions);
        assert_eq!(proof_claims(login)["nonce"], "n-2");
        let mut ok = HttpResponse::json(
            login.id,
            200,
            r#"{"access_token":"a1","token_type":"DPoP","expires_in":100,"refresh_token":"r1"}"#,
        );
        ok.headers.push(("dpop-nonce".into(), "n-3".into()));
        let done = engine.handle(Event::Response(ok), T0);
        let [Action::Done { tokens, .. }] = &done[..] else { panic!("{done:?}") };
        assert_eq!(tokens.authorization_value().expose_secret(), "DPoP a1");
        let key = tokens.dpop_key.clone().expect("the generated key is kept with the tokens");
        let prover = crate::DpopProver::from_key(key.expose_secret(), None).unwrap();
        assert!(!format!("{tokens:?}").contains(key.expose_secret()));

        // Another engine (another process) holding these tokens refreshes with the same key.
        let mut other = dpop_engine();
        other.set_tokens("k", Some(tokens.clone()));
        let actions = other.ensure("k", T0 + Duration::from_secs(90));
        let refresh = sent(&actions);
        assert!(body(refresh).contains("refresh_token=r1"));
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(proof_jwk(refresh)).unwrap();
        assert_eq!(&jwk, prover.public_jwk(), "the held key, not this engine's own");
        let done =
            answer(&mut other, refresh, 200, r#"{"access_token":"a2","token_type":"DPoP","expires_in":100}"#, T0);
        let [Action::Done { tokens: renewed, .. }] = &done[..] else { panic!("{done:?}") };
        assert_eq!(renewed.dpop_key.as_ref(), Some(&key));
    }

    #[test]
    fn a_logout_forgets_the_generated_dpop_key_with_the_tokens() {
        let mut engine = dpop_engine();
        let actions = engine.ensure("k", T0);
        let first = proof_jwk(sent(&actions));
        answer(&mut engine, sent(&actions), 200, r#"{"access_token":"a1","token_type":"DPoP","expires_in":100}"#, T0);
        let out = engine.logout("k", T0);
        let revoke = sent(&out);
        assert!(revoke.header("dpop").is_none(), "revocation carries no proof");
        answer(&mut engine, revoke, 200, "", T0);
        let actions = engine.login("k", T0);
        assert_ne!(proof_jwk(sent(&actions)), first, "a new key after a logout");
    }

    #[test]
    fn forgetting_the_tokens_forgets_the_generated_dpop_key_too() {
        let mut engine = dpop_engine();
        let actions = engine.ensure("k", T0);
        let first = proof_jwk(sent(&actions));
        answer(&mut engine, sent(&actions), 200, r#"{"access_token":"a1","token_type":"DPoP","expires_in":100}"#, T0);
        engine.forget_tokens("k");
        let actions = engine.login("k", T0);
        assert_ne!(proof_jwk(sent(&actions)), first, "a new key after the tokens were forgotten");
    }

    #[test]
    fn dpop_without_entropy_is_a_configuration_error() {
        let mut engine = Engine::default();
        let mut config = config(password(), explicit());
        config.client.dpop = Some(crate::DpopSettings::generated());
        engine.register("k", config);
        let actions = engine.ensure("k", T0);
        let [Action::Failed { error, .. }] = &actions[..] else { panic!("{actions:?}") };
        assert!(matches!(error, Error::Configuration { .. }) && error.to_string().contains("entropy"), "{error}");
    }
}
