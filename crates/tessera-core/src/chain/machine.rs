//! [`ChainMachine`]: the whole chain — network login → discovery → domain — planned as actions
//! and events, for hosts that do their own I/O (the JSON engine, Python's `NativeEngine`).
//!
//! It owns the discovery token, the cached domain accesses and one operation per stage: which
//! request is due, which answer it waits for, when a refused bearer sends it one stage up, and when
//! a transient failure is retried. The network login is not its own: it is an [`Engine`] key (any
//! grant), driven through [`Engine::ensure`] / [`Engine::refresh`], whose final `Done` / `Failed`
//! the machine consumes instead of the host ([`Chains::route`]). It never does I/O, reads a clock or
//! draws randomness.
//!
//! ```text
//! domain_access(id) ─► access fresh? ─yes─► Ready
//!   └no─► discovery token fresh? ─yes─► Send(domain request) ───────────────────────────┐
//!          └no─► Engine::ensure(network) ─► (network requests, passed through) ─► Done    │
//!                 └─► Send(discovery request) ─► answer ─► discovery token ─► Send(domain) ┤
//! answer to a domain request:                                                           ▼
//!   token ─► cached, Ready { access }
//!   401 / invalid_token (invalid_grant for an exchange), first time ─► discovery re-derived, sent again
//!   transient (5xx, 429, timeout) ─► Wait, then sent again (ChainConfig::retry)
//!   anything else ─► Failed { stage: domain } (or the still-valid cached access: Ready)
//! answer to a discovery request: the same, one stage up (a refused network token ─► Engine::refresh)
//! ```
//!
//! A token the stage above has just issued is used as it is, even one born inside its refresh
//! window (deriving it again at once would loop); freshness is checked only for held tokens.
//!
//! Differences from the async `tessera::chain::DomainClient`, which shares the stages, parsers,
//! freshness rule and state format: one host thread drives it (no single flight is needed: a second
//! `domain_access` for a domain in flight returns no action, its outcome comes with the first), and
//! a failure is reported at once instead of being postponed or remembered (the host decides when to
//! ask again).

use std::collections::BTreeMap;

use super::{
    ChainConfig, ChainState, DomainAccess, Stage, check_domain_id, is_rejection, parse_stage_response, stage_request,
};
use crate::{Action, Engine, Error, Event, HttpRequest, RequestId, Secret, Timestamp, TokenSet};

/// A stage of a chain: where a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChainStage {
    /// The network login (the [`Engine`] key the chain was given).
    Network,
    /// The discovery token, derived from the network token.
    Discovery,
    /// A domain's access token, derived from the discovery token.
    Domain,
}

impl ChainStage {
    /// `network`, `discovery` or `domain` (JSON, Python).
    pub fn as_str(self) -> &'static str {
        match self {
            ChainStage::Network => "network",
            ChainStage::Discovery => "discovery",
            ChainStage::Domain => "domain",
        }
    }
}

/// What the host must do next for a chain.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChainAction {
    /// An action of the [`Engine`]: the network login's `Send` / `Wait` / `Prompt` /
    /// `RefreshTokenDropped`, or an outcome of a key no chain waits for. Handle it as usual.
    Engine(Action),
    /// Send a stage's request; feed back [`Event::Response`] or [`Event::TransportFailed`].
    Send(HttpRequest),
    /// Sleep until `until`, then feed back [`Event::Timer`] with `key` (the chain's key): a stage's
    /// request is retried after a transient failure.
    Wait {
        /// The chain's key.
        key: String,
        /// When to wake up.
        until: Timestamp,
    },
    /// Access to a domain: derived, or cached and fresh.
    Ready {
        /// The chain's key.
        key: String,
        /// The access (its `id` is the domain id asked for).
        access: DomainAccess,
    },
    /// Obtaining access to `domain_id` failed at `stage`.
    Failed {
        /// The chain's key.
        key: String,
        /// The domain asked for.
        domain_id: String,
        /// Whose request failed.
        stage: ChainStage,
        /// Why.
        error: Error,
    },
}

/// Where one stage's operation is.
#[derive(Debug)]
enum Phase {
    /// Waiting for the token of the stage above (the network login, or the discovery token).
    Above,
    /// The request `request_id` was sent with `bearer` (the stage above's token).
    Sent { request_id: RequestId, bearer: Secret },
    /// Sent again at `until`, after a transient failure.
    Backoff { until: Timestamp },
}

/// One stage's derivation in progress.
#[derive(Debug)]
struct StageOp {
    phase: Phase,
    /// Failed attempts of this derivation (transient failures retried).
    attempts: u32,
    /// The bearer this stage's server refused: the stage above is re-derived once, and a second
    /// refusal is the error.
    rejected: Option<Secret>,
    /// The network login was asked to refresh because of `rejected` (asked once).
    renewing: bool,
}

impl StageOp {
    fn new() -> Self {
        StageOp { phase: Phase::Above, attempts: 0, rejected: None, renewing: false }
    }
}

/// Which operation a request or a timer belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Discovery,
    Domain(String),
}

/// One chain, sans-I/O. See the module docs; [`Chains`] routes a host's events between chains and
/// the [`Engine`].
#[derive(Debug)]
pub struct ChainMachine {
    key: String,
    network_key: String,
    config: ChainConfig,
    discovery: Option<TokenSet>,
    domains: BTreeMap<String, DomainAccess>,
    /// The engine runs the network login for this chain: its `Done` / `Failed` comes to
    /// [`ChainMachine::on_network_outcome`].
    network_pending: bool,
    discovery_op: Option<StageOp>,
    domain_ops: BTreeMap<String, StageOp>,
}

impl ChainMachine {
    /// A chain under `key` whose network login is the engine's `network_key`.
    pub fn new(key: impl Into<String>, network_key: impl Into<String>, config: ChainConfig) -> Self {
        ChainMachine {
            key: key.into(),
            network_key: network_key.into(),
            config,
            discovery: None,
            domains: BTreeMap::new(),
            network_pending: false,
            discovery_op: None,
            domain_ops: BTreeMap::new(),
        }
    }

    /// The chain's key (carried by its waits and outcomes).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The engine key of the network login.
    pub fn network_key(&self) -> &str {
        &self.network_key
    }

    /// The stages and thresholds.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// What must happen for the host to hold access to `domain_id`: `[Ready]` at once when the
    /// cached access is fresh (outside the refresh threshold), `[]` when a derivation for it is in
    /// flight already (its outcome will come from [`ChainMachine::handle`]), else the first
    /// requests of the chain (only the stages whose own tokens need it).
    pub fn domain_access(&mut self, engine: &mut Engine, domain_id: &str, now: Timestamp) -> Vec<ChainAction> {
        if let Err(error) = check_domain_id(domain_id) {
            return vec![self.failed(domain_id, ChainStage::Domain, error)];
        }
        if self.domain_ops.contains_key(domain_id) {
            return Vec::new();
        }
        if let Some(access) = self.domains.get(domain_id)
            && self.config.is_fresh(access.expires_at, access.issued_at, now)
        {
            return vec![self.ready(access.clone())];
        }
        self.domain_ops.insert(domain_id.to_owned(), StageOp::new());
        self.advance(engine, now)
    }

    /// After a domain's server refused its access (401): forgets it and derives a new one (the
    /// discovery token, then the network login, are renewed only if they are refused too). `[]`
    /// when a derivation for it is in flight already.
    pub fn refresh_domain_access(&mut self, engine: &mut Engine, domain_id: &str, now: Timestamp) -> Vec<ChainAction> {
        if let Err(error) = check_domain_id(domain_id) {
            return vec![self.failed(domain_id, ChainStage::Domain, error)];
        }
        if self.domain_ops.contains_key(domain_id) {
            return Vec::new();
        }
        self.domains.remove(domain_id);
        self.domain_ops.insert(domain_id.to_owned(), StageOp::new());
        self.advance(engine, now)
    }

    /// The cached access to `domain_id` while it is valid (not expired; it may be within the
    /// refresh threshold). No request, no state change.
    pub fn cached_domain_access(&self, domain_id: &str, now: Timestamp) -> Option<&DomainAccess> {
        self.domains.get(domain_id).filter(|access| access.is_valid(now, std::time::Duration::ZERO))
    }

    /// The discovery token, if one is held (valid or not).
    pub fn discovery_tokens(&self) -> Option<&TokenSet> {
        self.discovery.as_ref()
    }

    /// True while a derivation waits for an event.
    pub fn is_busy(&self) -> bool {
        self.network_pending || self.discovery_op.is_some() || !self.domain_ops.is_empty()
    }

    /// True while the engine runs the network login for this chain.
    pub fn awaits_network(&self) -> bool {
        self.network_pending
    }

    /// The tokens of every stage (the network tokens are the engine's): the document of
    /// [`ChainState`], the one `DomainClient::save_state` writes.
    pub fn state(&self, engine: &Engine) -> ChainState {
        ChainState {
            network: engine.tokens(&self.network_key).cloned(),
            discovery: self.discovery.clone(),
            domains: self.domains.clone(),
        }
    }

    /// Restores a [`ChainState`]: the discovery token and domain accesses here, the network
    /// tokens into the engine (when the state has some). Operations in flight are abandoned.
    pub fn restore(&mut self, engine: &mut Engine, state: ChainState) {
        if let Some(network) = state.network {
            engine.set_tokens(&self.network_key, Some(network));
        }
        self.discovery = state.discovery;
        self.domains = state.domains;
        self.network_pending = false;
        self.discovery_op = None;
        self.domain_ops.clear();
    }

    /// True when `event` is this chain's: the answer to one of its stage requests, or its timer.
    pub fn owns(&self, event: &Event) -> bool {
        match event {
            Event::Response(response) => self.target_of(response.request_id).is_some(),
            Event::TransportFailed { request_id, .. } => self.target_of(*request_id).is_some(),
            Event::Timer { key } => *key == self.key,
            _ => false,
        }
    }

    /// Feeds one of this chain's events (see [`ChainMachine::owns`]); others change nothing.
    pub fn handle(&mut self, engine: &mut Engine, event: Event, now: Timestamp) -> Vec<ChainAction> {
        let (request_id, result) = match event {
            Event::Timer { key } if key == self.key => return self.on_timer(engine, now),
            Event::Response(response) => {
                let Some(target) = self.target_of(response.request_id) else { return Vec::new() };
                let (stage, domain_id) = self.stage_of(&target);
                (response.request_id, parse_stage_response(stage, &response, domain_id, now))
            }
            Event::TransportFailed { request_id, error } => (request_id, Err(error)),
            _ => return Vec::new(),
        };
        match self.target_of(request_id) {
            Some(Target::Discovery) => self.on_discovery_answer(engine, result.map(|(tokens, _)| tokens), now),
            Some(Target::Domain(domain_id)) => {
                self.on_domain_answer(engine, &domain_id, result.map(|(_, access)| access), now)
            }
            None => Vec::new(),
        }
    }

    /// The engine's final action for the network login (`Done` or `Failed` for
    /// [`ChainMachine::network_key`]) while [`ChainMachine::awaits_network`]: the discovery request
    /// goes out, or every domain waiting for it fails at the network stage.
    pub fn on_network_outcome(&mut self, engine: &mut Engine, outcome: &Action, now: Timestamp) -> Vec<ChainAction> {
        if !self.network_pending {
            return Vec::new();
        }
        match outcome {
            Action::Done { key, tokens } if *key == self.network_key => {
                self.network_pending = false;
                // The new token is used as it is: asking the engine again could start another
                // refresh at once if the server issued a token already inside its refresh window.
                match self.discovery_op.as_ref().map(|op| &op.phase) {
                    Some(Phase::Above) => self.send(engine, Target::Discovery, tokens.access_token.clone(), now),
                    _ => self.advance(engine, now),
                }
            }
            Action::Failed { key, error } if *key == self.network_key => {
                self.network_pending = false;
                self.discovery_failed(engine, ChainStage::Network, error.clone(), now)
            }
            _ => Vec::new(),
        }
    }

    fn target_of(&self, request_id: RequestId) -> Option<Target> {
        let sent = |op: &StageOp| matches!(op.phase, Phase::Sent { request_id: id, .. } if id == request_id);
        if self.discovery_op.as_ref().is_some_and(sent) {
            return Some(Target::Discovery);
        }
        self.domain_ops.iter().find(|(_, op)| sent(op)).map(|(id, _)| Target::Domain(id.clone()))
    }

    fn stage_of<'a>(&'a self, target: &'a Target) -> (&'a Stage, Option<&'a str>) {
        match target {
            Target::Discovery => (&self.config.discovery, None),
            Target::Domain(id) => (&self.config.domain, Some(id.as_str())),
        }
    }

    /// The domains whose derivation waits for a discovery token.
    fn waiting_domains(&self) -> Vec<String> {
        self.domain_ops.iter().filter(|(_, op)| matches!(op.phase, Phase::Above)).map(|(id, _)| id.clone()).collect()
    }

    fn op_mut(&mut self, target: &Target) -> Option<&mut StageOp> {
        match target {
            Target::Discovery => self.discovery_op.as_mut(),
            Target::Domain(id) => self.domain_ops.get_mut(id),
        }
    }

    /// Moves every operation waiting for the stage above as far as it can go now.
    fn advance(&mut self, engine: &mut Engine, now: Timestamp) -> Vec<ChainAction> {
        let mut actions = Vec::new();
        // Domains waiting for a discovery token: a fresh one is used at once, else one is derived.
        let waiting = self.waiting_domains();
        let fresh = self
            .discovery
            .as_ref()
            .filter(|tokens| self.config.is_fresh(tokens.expires_at, tokens.issued_at, now))
            .map(|tokens| tokens.access_token.clone());
        for domain_id in waiting {
            let refused = self.domain_ops.get(&domain_id).and_then(|op| op.rejected.as_ref());
            match &fresh {
                Some(bearer) if refused != Some(bearer) => {
                    actions.extend(self.send(engine, Target::Domain(domain_id), bearer.clone(), now));
                }
                _ => {
                    self.discovery_op.get_or_insert_with(StageOp::new);
                }
            }
        }
        // The discovery derivation waiting for the network token.
        if self.network_pending && !engine.is_busy(&self.network_key) {
            // The engine dropped the operation we waited for (its provider was registered again,
            // or the host started another one that has ended): ask again.
            self.network_pending = false;
        }
        let Some(op) = self.discovery_op.as_mut() else { return actions };
        if !matches!(op.phase, Phase::Above) || self.network_pending {
            return actions;
        }
        let current = engine.tokens(&self.network_key).map(|tokens| tokens.access_token.clone());
        let network = if op.rejected.is_some() && op.rejected == current && !op.renewing {
            // The discovery stage refused the network token: the engine refreshes (or logs in).
            op.renewing = true;
            engine.refresh(&self.network_key, now)
        } else {
            engine.ensure(&self.network_key, now)
        };
        let mut outcome = None;
        for action in network {
            match action {
                Action::Done { ref key, .. } | Action::Failed { ref key, .. } if *key == self.network_key => {
                    outcome = Some(action);
                }
                other => actions.push(ChainAction::Engine(other)),
            }
        }
        if let Some(outcome) = outcome {
            self.network_pending = true;
            actions.extend(self.on_network_outcome(engine, &outcome, now));
        } else if engine.is_busy(&self.network_key) {
            self.network_pending = true;
        } else {
            // Nothing to do for the engine: its token is valid beyond its own refresh window.
            match engine.tokens(&self.network_key).map(|tokens| tokens.access_token.clone()) {
                Some(bearer) => actions.extend(self.send(engine, Target::Discovery, bearer, now)),
                None => {
                    let error = Error::internal("the network login ended without a token or an error");
                    actions.extend(self.discovery_failed(engine, ChainStage::Network, error, now));
                }
            }
        }
        actions
    }

    /// Sends `target`'s request with `bearer`; a request that cannot be built (a client
    /// assertion without entropy, an unusable key) fails the stage with its configuration error.
    fn send(&mut self, engine: &mut Engine, target: Target, bearer: Secret, now: Timestamp) -> Vec<ChainAction> {
        let request_id = engine.reserve_request_id();
        // The engine's randomness, drawn only for a stage that signs a client assertion.
        let uses_assertion = matches!(self.stage_of(&target).0,
            Stage::TokenExchange(exchange) if exchange.client.method.uses_assertion());
        let assertion_id = if uses_assertion { engine.next_assertion_id() } else { None };
        let (stage, domain_id) = self.stage_of(&target);
        match stage_request(request_id, stage, &bearer, domain_id, now, assertion_id) {
            Ok(request) => {
                if let Some(op) = self.op_mut(&target) {
                    op.phase = Phase::Sent { request_id, bearer };
                }
                vec![ChainAction::Send(request)]
            }
            Err(error) => match target {
                Target::Discovery => self.discovery_failed(engine, ChainStage::Discovery, error, now),
                Target::Domain(domain_id) => vec![self.domain_failed(&domain_id, ChainStage::Domain, error, now)],
            },
        }
    }

    fn on_discovery_answer(
        &mut self,
        engine: &mut Engine,
        result: Result<TokenSet, Error>,
        now: Timestamp,
    ) -> Vec<ChainAction> {
        let Some(mut op) = self.discovery_op.take() else { return Vec::new() };
        let Phase::Sent { bearer, .. } = std::mem::replace(&mut op.phase, Phase::Above) else { return Vec::new() };
        let error = match result {
            Ok(tokens) => {
                // The domains waiting for it use it as it is (even one issued inside its refresh
                // window: deriving again at once would loop).
                let bearer = tokens.access_token.clone();
                self.discovery = Some(tokens);
                let mut actions = Vec::new();
                for domain_id in self.waiting_domains() {
                    actions.extend(self.send(engine, Target::Domain(domain_id), bearer.clone(), now));
                }
                return actions;
            }
            Err(error) => error,
        };
        if is_rejection(&self.config.discovery, &error) && op.rejected.is_none() {
            // The network token was refused: renewed once (Engine::refresh), then sent again.
            op.rejected = Some(bearer);
            op.attempts = 0;
            self.discovery_op = Some(op);
            return self.advance(engine, now);
        }
        if let Some(until) = self.retry_at(engine, &mut op, &error, now) {
            op.phase = Phase::Backoff { until };
            self.discovery_op = Some(op);
            return vec![ChainAction::Wait { key: self.key.clone(), until }];
        }
        self.discovery_failed(engine, ChainStage::Discovery, error, now)
    }

    fn on_domain_answer(
        &mut self,
        engine: &mut Engine,
        domain_id: &str,
        result: Result<Option<DomainAccess>, Error>,
        now: Timestamp,
    ) -> Vec<ChainAction> {
        let Some(mut op) = self.domain_ops.remove(domain_id) else { return Vec::new() };
        let Phase::Sent { bearer, .. } = std::mem::replace(&mut op.phase, Phase::Above) else { return Vec::new() };
        let error = match result {
            Ok(Some(access)) => {
                self.domains.insert(domain_id.to_owned(), access.clone());
                return vec![self.ready(access)];
            }
            Ok(None) => Error::internal("the domain stage produced no domain access"),
            Err(error) => error,
        };
        if is_rejection(&self.config.domain, &error) && op.rejected.is_none() {
            // The discovery token was refused: it is re-derived once (unless already replaced).
            if self.discovery.as_ref().is_some_and(|tokens| tokens.access_token == bearer) {
                self.discovery = None;
            }
            op.rejected = Some(bearer);
            op.attempts = 0;
            self.domain_ops.insert(domain_id.to_owned(), op);
            return self.advance(engine, now);
        }
        if let Some(until) = self.retry_at(engine, &mut op, &error, now) {
            op.phase = Phase::Backoff { until };
            self.domain_ops.insert(domain_id.to_owned(), op);
            return vec![ChainAction::Wait { key: self.key.clone(), until }];
        }
        vec![self.domain_failed(domain_id, ChainStage::Domain, error, now)]
    }

    /// When to send a stage's request again after `error`, if it is retried: transient, attempts
    /// left, a delay within `ChainConfig::retry` (a derivation redeems nothing: safe to resend).
    fn retry_at(&self, engine: &mut Engine, op: &mut StageOp, error: &Error, now: Timestamp) -> Option<Timestamp> {
        op.attempts += 1;
        let retry = &self.config.retry;
        if !error.is_transient() || op.attempts >= retry.max_attempts {
            return None;
        }
        retry.delay_before_retry(op.attempts, error, engine.next_jitter()).map(|delay| now + delay)
    }

    /// A timer: operations whose backoff is over wait for the stage above again (and are sent).
    fn on_timer(&mut self, engine: &mut Engine, now: Timestamp) -> Vec<ChainAction> {
        let mut due = false;
        let mut next: Option<Timestamp> = None;
        for op in self.discovery_op.iter_mut().chain(self.domain_ops.values_mut()) {
            if let Phase::Backoff { until } = op.phase {
                if until <= now {
                    op.phase = Phase::Above;
                    due = true;
                } else {
                    next = Some(next.map_or(until, |next| next.min(until)));
                }
            }
        }
        let mut actions = self.advance(engine, now);
        if let (false, Some(until)) = (due, next) {
            // An early timer: ask again for the earliest backoff still running.
            actions.push(ChainAction::Wait { key: self.key.clone(), until });
        }
        actions
    }

    /// The discovery derivation failed at `stage`: the domains waiting for it use a still-valid
    /// discovery token if one is held (and the error hides no problem), else fail.
    fn discovery_failed(
        &mut self,
        engine: &mut Engine,
        stage: ChainStage,
        error: Error,
        now: Timestamp,
    ) -> Vec<ChainAction> {
        self.discovery_op = None;
        let held = self
            .discovery
            .as_ref()
            .filter(|tokens| tokens.access_valid(now, std::time::Duration::ZERO) && !hides_problem(&error))
            .map(|tokens| tokens.access_token.clone());
        let waiting = self.waiting_domains();
        let mut actions = Vec::new();
        for domain_id in waiting {
            let refused = self.domain_ops.get(&domain_id).and_then(|op| op.rejected.as_ref());
            match &held {
                Some(bearer) if refused != Some(bearer) => {
                    actions.extend(self.send(engine, Target::Domain(domain_id), bearer.clone(), now));
                }
                _ => actions.push(self.domain_failed(&domain_id, stage, error.clone(), now)),
            }
        }
        actions
    }

    /// A domain's derivation failed: its still-valid cached access is served unless the error
    /// hides a problem (configuration, a bug); otherwise [`ChainAction::Failed`].
    fn domain_failed(&mut self, domain_id: &str, stage: ChainStage, error: Error, now: Timestamp) -> ChainAction {
        self.domain_ops.remove(domain_id);
        match self.domains.get(domain_id) {
            Some(access) if access.is_valid(now, std::time::Duration::ZERO) && !hides_problem(&error) => {
                self.ready(access.clone())
            }
            _ => self.failed(domain_id, stage, error),
        }
    }

    fn ready(&self, access: DomainAccess) -> ChainAction {
        ChainAction::Ready { key: self.key.clone(), access }
    }

    fn failed(&self, domain_id: &str, stage: ChainStage, error: Error) -> ChainAction {
        ChainAction::Failed { key: self.key.clone(), domain_id: domain_id.to_owned(), stage, error }
    }
}

/// Errors after which serving a still-valid token would hide a real problem: a configuration to
/// fix, or a bug ([`Error::Internal`]). The rule `DomainClient` follows too.
fn hides_problem(error: &Error) -> bool {
    matches!(error, Error::Configuration { .. } | Error::Internal { .. })
}

/// The chains of one host, beside its [`Engine`]: routes each event to the chain whose request or
/// timer it answers, or else to the engine, and hands the engine's outcomes for a network login
/// to the chains waiting for it (the host never sees those: an old host loop would stop at a
/// `done` that is only the chain's first step).
#[derive(Debug, Default)]
pub struct Chains {
    machines: BTreeMap<String, ChainMachine>,
}

impl Chains {
    /// No chains.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a chain (under its key).
    pub fn insert(&mut self, machine: ChainMachine) {
        self.machines.insert(machine.key.clone(), machine);
    }

    /// The chain under `key`.
    pub fn get(&self, key: &str) -> Option<&ChainMachine> {
        self.machines.get(key)
    }

    /// The chain under `key`, to drive it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut ChainMachine> {
        self.machines.get_mut(key)
    }

    /// True when a chain is registered under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.machines.contains_key(key)
    }

    /// [`ChainMachine::domain_access`] of the chain under `key` (an unknown key is a
    /// configuration failure).
    pub fn domain_access(
        &mut self,
        engine: &mut Engine,
        key: &str,
        domain_id: &str,
        now: Timestamp,
    ) -> Vec<ChainAction> {
        match self.machines.get_mut(key) {
            Some(machine) => machine.domain_access(engine, domain_id, now),
            None => vec![unknown_chain(key, domain_id)],
        }
    }

    /// [`ChainMachine::refresh_domain_access`] of the chain under `key`.
    pub fn refresh_domain_access(
        &mut self,
        engine: &mut Engine,
        key: &str,
        domain_id: &str,
        now: Timestamp,
    ) -> Vec<ChainAction> {
        match self.machines.get_mut(key) {
            Some(machine) => machine.refresh_domain_access(engine, domain_id, now),
            None => vec![unknown_chain(key, domain_id)],
        }
    }

    /// Feeds an event: to the chain that owns it, else to the engine (whose actions then go
    /// through [`Chains::route`]).
    pub fn handle(&mut self, engine: &mut Engine, event: Event, now: Timestamp) -> Vec<ChainAction> {
        if let Some(machine) = self.machines.values_mut().find(|machine| machine.owns(&event)) {
            return machine.handle(engine, event, now);
        }
        let actions = engine.handle(event, now);
        self.route(engine, actions, now)
    }

    /// The engine's actions as the host must see them: a `Done` / `Failed` of a network login that
    /// chains wait for goes to them (and becomes their next steps); everything else passes through.
    pub fn route(&mut self, engine: &mut Engine, actions: Vec<Action>, now: Timestamp) -> Vec<ChainAction> {
        let mut routed = Vec::with_capacity(actions.len());
        for action in actions {
            let finished = match &action {
                Action::Done { key, .. } | Action::Failed { key, .. } => Some(key.as_str()),
                _ => None,
            };
            let waiting: Vec<String> = self
                .machines
                .values()
                .filter(|machine| machine.network_pending && Some(machine.network_key.as_str()) == finished)
                .map(|machine| machine.key.clone())
                .collect();
            if waiting.is_empty() {
                routed.push(ChainAction::Engine(action));
                continue;
            }
            for key in waiting {
                if let Some(machine) = self.machines.get_mut(&key) {
                    routed.extend(machine.on_network_outcome(engine, &action, now));
                }
            }
        }
        routed
    }
}

fn unknown_chain(key: &str, domain_id: &str) -> ChainAction {
    ChainAction::Failed {
        key: key.to_owned(),
        domain_id: domain_id.to_owned(),
        stage: ChainStage::Domain,
        error: Error::configuration(format!("no chain registered under {key:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::flow::RetrySettings;
    use crate::protocol::TokenExchangeParams;
    use crate::{ClientAuth, Endpoints, Grant, HttpResponse, ProviderConfig};

    const T0: Timestamp = Timestamp::from_unix_secs(1_000_000);

    fn setup() -> (Engine, Chains) {
        let mut engine = Engine::default();
        engine.register(
            "net",
            ProviderConfig {
                client: ClientAuth::basic("c", "client-secret-value"),
                endpoints: Endpoints::explicit("https://idp/token"),
                scope: None,
                grant: Grant::Password { username: "alice".into(), password: Secret::new("pw-value"), totp: None },
            },
        );
        let config = ChainConfig::new(
            Stage::http_post("https://api/discovery"),
            Stage::http_post("https://api/domains/{domain_id}/access"),
        );
        let mut chains = Chains::new();
        chains.insert(ChainMachine::new("chain", "net", config));
        (engine, chains)
    }

    /// A sent request, as the host saw it (HttpRequest is not Clone).
    struct Req {
        id: RequestId,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Req {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    fn sends(actions: &[ChainAction]) -> Vec<Req> {
        actions
            .iter()
            .filter_map(|action| match action {
                ChainAction::Send(request) | ChainAction::Engine(Action::Send(request)) => Some(Req {
                    id: request.id,
                    url: request.url.clone(),
                    headers: request.headers.clone(),
                    body: request.body.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    fn one_send(actions: &[ChainAction]) -> Req {
        let mut sent = sends(actions);
        match sent.len() {
            1 if actions.len() == 1 => sent.remove(0),
            _ => panic!("expected one request, got {actions:?}"),
        }
    }

    /// Checks a stage's request: where it goes and which bearer it carries.
    fn expect(request: &Req, url: &str, bearer: &str) {
        assert_eq!(
            (request.url.as_str(), request.header("authorization")),
            (url, Some(format!("Bearer {bearer}").as_str()))
        );
    }

    fn reply(
        engine: &mut Engine,
        chains: &mut Chains,
        request: &Req,
        status: u16,
        body: &str,
        now: Timestamp,
    ) -> Vec<ChainAction> {
        chains.handle(engine, Event::Response(HttpResponse::json(request.id, status, body)), now)
    }

    fn ready(actions: &[ChainAction]) -> &DomainAccess {
        match actions {
            [ChainAction::Ready { key, access }] if key == "chain" => access,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn login(n: u32, expires_in: u64) -> String {
        format!(r#"{{"access_token":"net-{n}","expires_in":{expires_in},"refresh_token":"rt-{n}"}}"#)
    }

    fn discovery(n: u32, expires_in: u64) -> String {
        format!(r#"{{"access_token":"disc-{n}","expires_in":{expires_in}}}"#)
    }

    fn domain(id: &str, n: u32, expires_in: u64) -> String {
        format!(
            r#"{{"id":"{id}","name":"{id} name","domain_server":{{"url":"https://{id}.example"}},"access_token":"{id}-{n}","expires_in":{expires_in}}}"#
        )
    }

    /// Drives alpha from nothing to Ready: login, discovery, alpha.
    fn first_access(engine: &mut Engine, chains: &mut Chains) -> DomainAccess {
        let request = one_send(&chains.domain_access(engine, "chain", "alpha", T0));
        assert_eq!(request.url, "https://idp/token");
        let request = one_send(&reply(engine, chains, &request, 200, &login(1, 3600), T0));
        expect(&request, "https://api/discovery", "net-1");
        let request = one_send(&reply(engine, chains, &request, 200, &discovery(1, 600), T0));
        assert_eq!(request.url, "https://api/domains/alpha/access");
        assert_eq!(request.header("authorization"), Some("Bearer disc-1"));
        ready(&reply(engine, chains, &request, 200, &domain("alpha", 1, 300), T0)).clone()
    }

    #[test]
    fn one_network_login_serves_two_domains_then_the_cache_serves_them() {
        let (mut engine, mut chains) = setup();
        let alpha = first_access(&mut engine, &mut chains);
        assert_eq!((alpha.id.as_str(), alpha.name.as_str()), ("alpha", "alpha name"));
        assert_eq!(alpha.domain_server.url, "https://alpha.example");
        assert_eq!(alpha.access_token.expose_secret(), "alpha-1");
        assert_eq!(alpha.expires_at, Some(T0 + Duration::from_secs(300)));

        // beta: the network and discovery tokens are fresh, so only beta's own request goes out.
        let request = one_send(&chains.domain_access(&mut engine, "chain", "beta", T0));
        expect(&request, "https://api/domains/beta/access", "disc-1");
        let beta = ready(&reply(&mut engine, &mut chains, &request, 200, &domain("beta", 1, 300), T0)).clone();
        assert_eq!(beta.access_token.expose_secret(), "beta-1");

        // Fresh accesses come back at once, without a request, and are readable without asking.
        let later = T0 + Duration::from_secs(60);
        assert_eq!(ready(&chains.domain_access(&mut engine, "chain", "alpha", later)), &alpha);
        let machine = chains.get("chain").unwrap();
        assert_eq!(machine.cached_domain_access("alpha", later), Some(&alpha));
        assert_eq!(machine.cached_domain_access("beta", later), Some(&beta));
        assert_eq!(machine.cached_domain_access("gamma", later), None);
        assert_eq!(machine.cached_domain_access("alpha", T0 + Duration::from_secs(300)), None, "expired");
        assert!(!machine.is_busy());
    }

    #[test]
    fn two_domains_asked_at_once_share_one_login_and_one_discovery_call() {
        let (mut engine, mut chains) = setup();
        let login_request = one_send(&chains.domain_access(&mut engine, "chain", "alpha", T0));
        assert!(chains.domain_access(&mut engine, "chain", "beta", T0).is_empty(), "beta waits for the same login");
        assert!(chains.domain_access(&mut engine, "chain", "alpha", T0).is_empty(), "alpha is in flight");
        let discovery_request = one_send(&reply(&mut engine, &mut chains, &login_request, 200, &login(1, 3600), T0));
        let domain_requests = reply(&mut engine, &mut chains, &discovery_request, 200, &discovery(1, 600), T0);
        let requests = sends(&domain_requests);
        let urls: Vec<&str> = requests.iter().map(|request| request.url.as_str()).collect();
        assert_eq!(urls, ["https://api/domains/alpha/access", "https://api/domains/beta/access"]);
        // Answers in either order reach the right domain.
        let beta = ready(&reply(&mut engine, &mut chains, &requests[1], 200, &domain("beta", 1, 300), T0)).clone();
        let alpha = ready(&reply(&mut engine, &mut chains, &requests[0], 200, &domain("alpha", 1, 300), T0)).clone();
        assert_eq!((alpha.id.as_str(), beta.id.as_str()), ("alpha", "beta"));
    }

    #[test]
    fn each_stage_is_re_derived_alone_near_its_expiry() {
        let (mut engine, mut chains) = setup();
        first_access(&mut engine, &mut chains);
        // alpha expires at +300 s: inside the 30 s threshold at +271 s, only alpha is re-derived.
        let request = one_send(&chains.domain_access(&mut engine, "chain", "alpha", T0 + Duration::from_secs(271)));
        assert_eq!(request.url, "https://api/domains/alpha/access");
        reply(&mut engine, &mut chains, &request, 200, &domain("alpha", 2, 300), T0 + Duration::from_secs(271));
        let beta_time = T0 + Duration::from_secs(575);
        // The discovery token (600 s) is within 30 s of expiry at +575 s: re-derived from the still
        // fresh network token, then beta is derived.
        let request = one_send(&chains.domain_access(&mut engine, "chain", "beta", beta_time));
        expect(&request, "https://api/discovery", "net-1");
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &discovery(2, 600), beta_time));
        assert_eq!(request.header("authorization"), Some("Bearer disc-2"));
        // The threshold is capped at half a token's lifetime: a 40 s access is fresh for 20 s.
        let beta = ready(&reply(&mut engine, &mut chains, &request, 200, &domain("beta", 1, 40), beta_time)).clone();
        assert!(
            matches!(&chains.domain_access(&mut engine, "chain", "beta", beta_time + Duration::from_secs(19))[..], [ChainAction::Ready { access, .. }] if *access == beta)
        );
        let request =
            one_send(&chains.domain_access(&mut engine, "chain", "beta", beta_time + Duration::from_secs(21)));
        assert_eq!(request.url, "https://api/domains/beta/access");
    }

    #[test]
    fn a_refused_discovery_token_is_re_derived_and_a_refused_network_token_refreshed() {
        let (mut engine, mut chains) = setup();
        first_access(&mut engine, &mut chains);
        let refused = r#"{"error":"invalid_token"}"#;
        // The domain stage refuses the discovery token: discovery is re-derived, beta sent again.
        let request = one_send(&chains.domain_access(&mut engine, "chain", "beta", T0));
        let request = one_send(&reply(&mut engine, &mut chains, &request, 401, refused, T0));
        expect(&request, "https://api/discovery", "net-1");
        // The discovery stage refuses the network token: the engine refreshes it (not a new login).
        let request = one_send(&reply(&mut engine, &mut chains, &request, 401, refused, T0));
        assert_eq!(request.url, "https://idp/token");
        assert_eq!(std::str::from_utf8(&request.body).unwrap(), "grant_type=refresh_token&refresh_token=rt-1");
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &login(2, 3600), T0));
        expect(&request, "https://api/discovery", "net-2");
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &discovery(2, 600), T0));
        expect(&request, "https://api/domains/beta/access", "disc-2");
        let beta = ready(&reply(&mut engine, &mut chains, &request, 200, &domain("beta", 1, 300), T0)).clone();
        assert_eq!(beta.access_token.expose_secret(), "beta-1");
        assert_eq!(engine.tokens("net").unwrap().access_token.expose_secret(), "net-2");
    }

    #[test]
    fn a_second_refusal_fails_at_its_stage_and_a_host_401_re_derives_one_domain() {
        let (mut engine, mut chains) = setup();
        let alpha = first_access(&mut engine, &mut chains);
        let refused = r#"{"error":"invalid_token"}"#;
        // The domain's own server refused alpha: only alpha is derived again.
        let request = one_send(&chains.refresh_domain_access(&mut engine, "chain", "alpha", T0));
        expect(&request, "https://api/domains/alpha/access", "disc-1");
        assert_eq!(chains.get("chain").unwrap().cached_domain_access("alpha", T0), None, "the refused access is gone");
        // Refused twice (before and after a new discovery token): the domain stage's error stands.
        let request = one_send(&reply(&mut engine, &mut chains, &request, 401, refused, T0));
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &discovery(2, 600), T0));
        let failed = reply(&mut engine, &mut chains, &request, 401, refused, T0);
        match &failed[..] {
            [ChainAction::Failed { key, domain_id, stage: ChainStage::Domain, error }] => {
                assert_eq!((key.as_str(), domain_id.as_str()), ("chain", "alpha"));
                assert_eq!(error.oauth_code(), Some(&crate::OAuthErrorCode::InvalidToken));
                let text = format!("{error} {failed:?}");
                for secret in ["disc-2", "net-1", "alpha-1", "pw-value", "client-secret-value"] {
                    assert!(!text.contains(secret), "{secret} in {text}");
                }
            }
            other => panic!("expected Failed at the domain stage, got {other:?}"),
        }
        assert_ne!(alpha.access_token.expose_secret(), "");
    }

    #[test]
    fn a_transient_failure_waits_then_retries_and_a_final_one_fails_at_its_stage() {
        let (mut engine, mut chains) = setup();
        first_access(&mut engine, &mut chains);
        let request = one_send(&chains.domain_access(&mut engine, "chain", "beta", T0));
        let wait = reply(&mut engine, &mut chains, &request, 503, "", T0);
        let until = match &wait[..] {
            [ChainAction::Wait { key, until }] if key == "chain" => *until,
            other => panic!("expected Wait, got {other:?}"),
        };
        assert!(until > T0 && until <= T0 + Duration::from_secs(1), "{until:?}");
        // An early timer only asks again for the same instant.
        let early = chains.handle(&mut engine, Event::Timer { key: "chain".into() }, T0);
        assert!(matches!(&early[..], [ChainAction::Wait { until: again, .. }] if *again == until), "{early:?}");
        let request = one_send(&chains.handle(&mut engine, Event::Timer { key: "chain".into() }, until));
        assert_eq!(request.url, "https://api/domains/beta/access");
        // Unknown domain: 404 is final, reported at the domain stage.
        let failed = reply(&mut engine, &mut chains, &request, 404, r#"{"error":"unknown_domain"}"#, until);
        assert!(
            matches!(&failed[..], [ChainAction::Failed { stage: ChainStage::Domain, domain_id, .. }] if domain_id == "beta"),
            "{failed:?}"
        );
        // A bad id fails before any request.
        let bad = chains.domain_access(&mut engine, "chain", "a/b", T0);
        assert!(matches!(&bad[..], [ChainAction::Failed { error: Error::Configuration { .. }, .. }]), "{bad:?}");
        let unknown = chains.domain_access(&mut engine, "nope", "alpha", T0);
        assert!(
            matches!(&unknown[..], [ChainAction::Failed { error: Error::Configuration { .. }, .. }]),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_failed_network_login_fails_every_waiting_domain_at_the_network_stage() {
        let (mut engine, mut chains) = setup();
        let request = one_send(&chains.domain_access(&mut engine, "chain", "alpha", T0));
        assert!(chains.domain_access(&mut engine, "chain", "beta", T0).is_empty());
        let failed = reply(&mut engine, &mut chains, &request, 400, r#"{"error":"invalid_grant"}"#, T0);
        let stages: Vec<(&str, ChainStage)> = failed
            .iter()
            .map(|action| match action {
                ChainAction::Failed { domain_id, stage, .. } => (domain_id.as_str(), *stage),
                other => panic!("expected Failed, got {other:?}"),
            })
            .collect();
        assert_eq!(stages, [("alpha", ChainStage::Network), ("beta", ChainStage::Network)]);
        assert!(!chains.get("chain").unwrap().is_busy());
        // The engine's own outcome was the chain's: no network Done/Failed reached the host.
        assert!(!failed.iter().any(|action| matches!(action, ChainAction::Engine(_))));
    }

    #[test]
    fn tokens_issued_inside_their_refresh_window_are_used_once_not_derived_again_in_a_loop() {
        let (mut engine, mut chains) = setup();
        let request = one_send(&chains.domain_access(&mut engine, "chain", "alpha", T0));
        // expires_in 0: every stage's token is "due" the moment it arrives.
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &login(1, 0), T0));
        expect(&request, "https://api/discovery", "net-1");
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &discovery(1, 0), T0));
        expect(&request, "https://api/domains/alpha/access", "disc-1");
        let access = ready(&reply(&mut engine, &mut chains, &request, 200, &domain("alpha", 1, 0), T0)).clone();
        assert_eq!(access.access_token.expose_secret(), "alpha-1");
        assert!(!chains.get("chain").unwrap().is_busy());
    }

    #[test]
    fn a_network_operation_the_engine_dropped_is_asked_for_again() {
        let (mut engine, mut chains) = setup();
        one_send(&chains.domain_access(&mut engine, "chain", "alpha", T0));
        // The host registers the network provider again: the engine forgets the login in flight.
        let config = engine.config("net").unwrap().clone();
        engine.register("net", config);
        let request = one_send(&chains.domain_access(&mut engine, "chain", "beta", T0));
        assert_eq!(request.url, "https://idp/token", "a new login, instead of waiting forever");
    }

    #[test]
    fn a_failed_early_re_derivation_serves_the_still_valid_access() {
        let (mut engine, mut chains) = setup();
        let alpha = first_access(&mut engine, &mut chains);
        let near = T0 + Duration::from_secs(280);
        let request = one_send(&chains.domain_access(&mut engine, "chain", "alpha", near));
        let served = reply(&mut engine, &mut chains, &request, 400, r#"{"error":"invalid_request"}"#, near);
        assert_eq!(ready(&served), &alpha);
    }

    #[test]
    fn token_exchange_stages_send_rfc_8693_requests_and_state_round_trips() {
        let mut engine = Engine::default();
        engine.register(
            "net",
            ProviderConfig {
                client: ClientAuth::basic("c", "s"),
                endpoints: Endpoints::explicit("https://idp/token"),
                scope: None,
                grant: Grant::ClientCredentials,
            },
        );
        let exchange =
            |params| Stage::token_exchange("https://idp/token", ClientAuth::basic("gw", "gw-secret"), params);
        let config = ChainConfig::new(
            exchange(TokenExchangeParams::default().audience("discovery")),
            exchange(TokenExchangeParams::default().audience("https://{domain_id}.example")),
        )
        .retry(RetrySettings { max_attempts: 1, ..RetrySettings::default() });
        let mut chains = Chains::new();
        chains.insert(ChainMachine::new("chain", "net", config));
        let request = one_send(&chains.domain_access(&mut engine, "chain", "alpha", T0));
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &login(1, 3600), T0));
        let body = String::from_utf8(request.body.clone()).unwrap();
        assert!(body.contains("subject_token=net-1") && body.contains("audience=discovery"), "{body}");
        let issued = r#""issued_token_type":"urn:ietf:params:oauth:token-type:access_token""#;
        let answer = format!(r#"{{"access_token":"disc-1","expires_in":600,{issued}}}"#);
        let request = one_send(&reply(&mut engine, &mut chains, &request, 200, &answer, T0));
        let body = String::from_utf8(request.body.clone()).unwrap();
        assert!(
            body.contains("subject_token=disc-1") && body.contains("audience=https%3A%2F%2Falpha.example"),
            "{body}"
        );
        let answer = format!(r#"{{"access_token":"alpha-1","expires_in":300,{issued}}}"#);
        let alpha = ready(&reply(&mut engine, &mut chains, &request, 200, &answer, T0)).clone();
        assert_eq!(alpha.domain_server.url, "https://alpha.example");

        // The state document restores into another engine and chain: alpha is served at once.
        let json = chains.get("chain").unwrap().state(&engine).to_json().unwrap();
        let (mut engine2, mut chains2) = setup();
        let state = ChainState::from_json(&json).unwrap();
        chains2.get_mut("chain").unwrap().restore(&mut engine2, state);
        assert_eq!(ready(&chains2.domain_access(&mut engine2, "chain", "alpha", T0)), &alpha);
        assert_eq!(engine2.tokens("net").unwrap().access_token.expose_secret(), "net-1");
    }
}
