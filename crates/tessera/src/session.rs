//! [`Session`]: one credential's hot path, single-flight refresh, and the cross-process refresh
//! protocol over a [`TokenStore`].
//!
//! Hot path: one `ArcSwap` load, one comparison of a coarse clock reading with a precomputed
//! instant, one `Arc` clone. No lock, no allocation, no syscall beyond a vDSO clock read.
//!
//! Slow path (the token is due or gone), in this order — see docs/refresh-protocol.md:
//! 1. the in-process gate (one refresh per session at a time; other callers wait, or keep using a
//!    still-valid token);
//! 2. re-read the store: another process may already have refreshed;
//! 3. take the store's lock; 4. re-read under the lock;
//! 5. refresh over the network with the *stored* refresh token; 6. save; release the lock.
//!
//! No lock other than the gate and the store lock is held across a network call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tessera_core::{Action, Engine, EngineSettings, Error, Event, Prompt, ProviderConfig, Secret, Timestamp, TokenSet};
use tracing::{Instrument, debug, info_span, warn};

use crate::browser::{self, LoopbackReceiver, LoopbackSettings};
use crate::clock::{Clock, SystemClock};
use crate::local_cache;
use crate::policy::{
    DefaultRefreshPolicy, NoHooks, RefreshContext, RefreshFailureAction, RefreshHooks, RefreshPolicy, TokenSource,
};
use crate::prompt::Prompter;
use crate::store::{MemoryStore, TokenStore};
use crate::transport::{HttpTransport, TransportSettings};

/// The Coarse clock can lag by one scheduler tick; a cached header is retired at least this long before expiry.
const COARSE_CLOCK_MARGIN: Duration = Duration::from_millis(20);
thread_local! {
    static CACHED_HEADERS: std::cell::RefCell<Vec<local_cache::Entry<Cached>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Upper bound on engine round trips in one operation. The engine's own limits (retry counts, a
/// device code's expiry) end every flow far sooner; this only guards against a runaway loop.
const MAX_STEPS: usize = 10_000;
/// Refresh attempts under one policy decision chain (first try, retries, reauthentication).
const MAX_POLICY_ATTEMPTS: u32 = 3;

/// A login of `key` reached a prompt, and the session has no prompter.
fn no_prompter(key: &str) -> Error {
    Error::ReauthenticationRequired {
        reason: format!("logging in to {key} needs a person, and this session has no prompter"),
    }
}

/// Tunables of a [`Session`].
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// Refresh this long before expiry (capped at half the token's lifetime). Default 30 s.
    pub refresh_skew: Duration,
    /// Spread early refreshes over the last quarter of the window (a fleet sharing one token does
    /// not refresh in the same millisecond). Default true.
    pub jitter: bool,
    /// Longest wait for the store's refresh lock. Default 30 s.
    pub lock_timeout: Duration,
    /// HTTP limits.
    pub transport: TransportSettings,
    /// Engine settings (retries); `refresh_skew` above overrides the engine's.
    pub engine: EngineSettings,
    /// Browser logins without a fixed redirect URI: where the loopback receiver listens, how long it waits.
    pub loopback: LoopbackSettings,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            refresh_skew: Duration::from_secs(30),
            jitter: true,
            lock_timeout: Duration::from_secs(30),
            transport: TransportSettings::default(),
            engine: EngineSettings::default(),
            loopback: LoopbackSettings::default(),
        }
    }
}

/// Why a token operation runs (also on the `tracing` span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshReason {
    /// No token yet (first use in this process).
    Startup,
    /// The token expired.
    Expired,
    /// The token is valid but inside its early-refresh window.
    NearExpiry,
    /// [`Session::force_refresh`].
    Forced,
    /// [`Session::handle_unauthorized`]: an API answered 401 to the current token.
    Unauthorized,
    /// [`Session::login`].
    Login,
}

/// A cached, ready-to-send `Authorization` header and the token set behind it.
///
/// Cloning is an `Arc` clone. `Debug` shows no secret.
#[derive(Clone)]
pub struct AuthorizationHeader(Arc<Cached>);

struct Cached {
    header: Secret,
    tokens: TokenSet,
    /// Served without question before this instant (coarse clock).
    serve_until: Timestamp,
}

impl AuthorizationHeader {
    /// The header value, e.g. `Bearer eyJ...`.
    pub fn expose_secret(&self) -> &str {
        self.0.header.expose_secret()
    }

    /// The header value as an `http` header, marked sensitive (hidden from logs by hyper and friends).
    pub fn to_header_value(&self) -> http::HeaderValue {
        let mut value = http::HeaderValue::from_str(self.expose_secret()).unwrap_or(http::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// The access token alone.
    pub fn access_token(&self) -> &Secret {
        &self.0.tokens.access_token
    }

    /// When the access token expires, when known.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.0.tokens.expires_at
    }

    /// The whole token set.
    pub fn tokens(&self) -> &TokenSet {
        &self.0.tokens
    }
}

impl std::fmt::Debug for AuthorizationHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationHeader").field("expires_at", &self.expires_at()).finish_non_exhaustive()
    }
}

/// The result of [`Session::logout`].
#[derive(Debug)]
pub struct LogoutOutcome {
    /// True when the server confirmed revocation (RFC 7009).
    pub revoked: bool,
    /// Why revocation failed, when it did. Local tokens are cleared either way.
    pub revocation_error: Option<Error>,
    /// True when there were tokens to log out of.
    pub had_tokens: bool,
}

/// One credential: obtains, caches, refreshes, persists and revokes its tokens.
///
/// Cheap to clone (shared state). Safe to use from any number of tasks: concurrent callers of an
/// expired session cause exactly one token request.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    key: String,
    cached: Arc<ArcSwapOption<Cached>>,
    gate: tokio::sync::Mutex<()>,
    engine: Mutex<Engine>,
    store: Arc<dyn TokenStore>,
    transport: HttpTransport,
    clock: SessionClock,
    settings: SessionSettings,
    prompter: Option<Arc<dyn Prompter>>,
    policy: Arc<dyn RefreshPolicy>,
    hooks: Arc<dyn RefreshHooks>,
    /// Prompts the engine asked for (answered or not): tells `refresh_locked` whether a failed
    /// attempt already involved a person.
    prompts: AtomicU64,
}

/// The system clock is called directly (inlined) on the hot path; injected clocks through the trait.
enum SessionClock {
    System,
    Custom(Arc<dyn Clock>),
}

impl SessionClock {
    #[inline]
    fn now_coarse(&self) -> Timestamp {
        match self {
            SessionClock::System => SystemClock.now_coarse(),
            SessionClock::Custom(clock) => clock.now_coarse(),
        }
    }

    fn now(&self) -> Timestamp {
        match self {
            SessionClock::System => SystemClock.now(),
            SessionClock::Custom(clock) => clock.now(),
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("key", &self.inner.key)
            .field("store", &self.inner.store.location())
            .field("cached", &self.cached_header())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Session`].
#[must_use]
pub struct SessionBuilder {
    key: String,
    config: ProviderConfig,
    store: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    settings: SessionSettings,
    prompter: Option<Arc<dyn Prompter>>,
    policy: Option<Arc<dyn RefreshPolicy>>,
    hooks: Option<Arc<dyn RefreshHooks>>,
}

impl SessionBuilder {
    /// How interactive logins reach a person (device codes). Without one, an interactive login
    /// fails with [`Error::ReauthenticationRequired`] instead of waiting for nobody.
    pub fn prompter(mut self, prompter: Arc<dyn Prompter>) -> Self {
        self.prompter = Some(prompter);
        self
    }

    /// What to do when a refresh fails. Default: [`DefaultRefreshPolicy`] (reauthenticate only
    /// when that needs nobody or a prompter is configured).
    pub fn refresh_policy(mut self, policy: Arc<dyn RefreshPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Observers of every refresh.
    pub fn hooks(mut self, hooks: Arc<dyn RefreshHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Where tokens persist. Default: a fresh [`MemoryStore`] (nothing touches the disk).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock. Default: [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// All tunables.
    pub fn settings(mut self, settings: SessionSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Refresh this long before expiry (capped at half the token's lifetime).
    pub fn refresh_skew(mut self, skew: Duration) -> Self {
        self.settings.refresh_skew = skew;
        self
    }

    /// Builds the session. Nothing is sent and nothing is read until a token is needed.
    pub fn build(self) -> Session {
        let mut engine_settings = self.settings.engine;
        engine_settings.refresh_skew = self.settings.refresh_skew;
        engine_settings.jitter_seed = fastrand::u64(..);
        let mut engine = Engine::new(engine_settings);
        // Reauthenticating can help only if the login needs nobody, or someone can be asked.
        let can_prompt = self.prompter.is_some() || self.config.grant.logs_in_unattended();
        engine.register(self.key.clone(), self.config);
        Session {
            inner: Arc::new(Inner {
                key: self.key,
                cached: Arc::new(ArcSwapOption::empty()),
                gate: tokio::sync::Mutex::new(()),
                engine: Mutex::new(engine),
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                transport: HttpTransport::new(self.settings.transport.clone()),
                clock: self.clock.map_or(SessionClock::System, SessionClock::Custom),
                settings: self.settings,
                prompter: self.prompter,
                policy: self.policy.unwrap_or_else(|| Arc::new(DefaultRefreshPolicy { can_prompt })),
                hooks: self.hooks.unwrap_or_else(|| Arc::new(NoHooks)),
                prompts: AtomicU64::new(0),
            }),
        }
    }
}

impl Session {
    /// Starts building a session for `config`, stored under `key`.
    pub fn builder(key: impl Into<String>, config: ProviderConfig) -> SessionBuilder {
        SessionBuilder {
            key: key.into(),
            config,
            store: None,
            clock: None,
            settings: SessionSettings::default(),
            prompter: None,
            policy: None,
            hooks: None,
        }
    }

    /// The store key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The cached header if it may be served right now without any work; `None` otherwise.
    /// This is the whole hot path: no lock, no allocation, no future.
    #[inline]
    pub fn cached_header(&self) -> Option<AuthorizationHeader> {
        let cached = local_cache::load(&self.inner.cached, &CACHED_HEADERS)?;
        (self.inner.clock.now_coarse() < cached.serve_until).then_some(AuthorizationHeader(cached))
    }

    /// A valid `Authorization` header: cached, or refreshed (once, whatever the number of callers).
    ///
    /// A token inside its early-refresh window is refreshed by one caller while the others keep
    /// using it; if that refresh fails, the still-valid token keeps being served. Only a token past
    /// expiry makes callers wait.
    pub fn authorization_header(&self) -> impl Future<Output = Result<AuthorizationHeader, Error>> + Send + '_ {
        // A hand-written future: ready at once when cached (no state machine to drive), and the
        // large slow-path state machine boxed, so the hot path never builds a future of that size.
        match self.cached_header() {
            Some(header) => HeaderFuture::Ready(Some(header)),
            None => HeaderFuture::Slow(Box::pin(self.slow_path())),
        }
    }

    /// The access token alone (a copy; prefer [`Session::authorization_header`] on hot paths).
    pub async fn access_token(&self) -> Result<Secret, Error> {
        Ok(self.authorization_header().await?.access_token().clone())
    }

    /// The current token set (refreshing as needed).
    pub async fn tokens(&self) -> Result<TokenSet, Error> {
        Ok(self.authorization_header().await?.tokens().clone())
    }

    /// Gets a new token now, whatever the cache says: call it after an API answered 401.
    ///
    /// Callers that saw the same rejected token share one refresh: if another caller (or process)
    /// replaced it meanwhile, that newer token is returned without a request.
    pub async fn force_refresh(&self) -> Result<AuthorizationHeader, Error> {
        self.replace_token(RefreshReason::Forced).await
    }

    /// [`Session::force_refresh`] after an API answered 401 (or `WWW-Authenticate: Bearer
    /// error="invalid_token"`): the same single-flight replacement, reported as
    /// [`RefreshReason::Unauthorized`] to the policy, hooks and traces.
    pub async fn handle_unauthorized(&self) -> Result<AuthorizationHeader, Error> {
        self.replace_token(RefreshReason::Unauthorized).await
    }

    async fn replace_token(&self, reason: RefreshReason) -> Result<AuthorizationHeader, Error> {
        let seen = self.inner.cached.load_full();
        let _gate = self.inner.gate.lock().await;
        if let Some(current) = self.inner.cached.load_full()
            && !seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &current))
            && current.tokens.access_valid(self.inner.clock.now(), Duration::ZERO)
        {
            return Ok(AuthorizationHeader(current));
        }
        // Without a token of our own (a fresh process), the stored one is the one being replaced.
        let rejected = match seen {
            Some(seen) => Some(seen.tokens.access_token.clone()),
            None => self.inner.store.load(&self.inner.key).await?.map(|stored| stored.access_token),
        };
        self.refresh_locked(reason, rejected).await
    }

    /// Logs in afresh with the configured grant (ignoring any refresh token) and stores the result.
    pub async fn login(&self) -> Result<AuthorizationHeader, Error> {
        let _gate = self.inner.gate.lock().await;
        self.refresh_locked(RefreshReason::Login, None).await
    }

    /// Revokes the tokens at the server when it has an RFC 7009 endpoint, then clears them here
    /// and in the store. Local tokens are cleared even when revocation fails.
    pub async fn logout(&self) -> Result<LogoutOutcome, Error> {
        let _gate = self.inner.gate.lock().await;
        let store = &self.inner.store;
        let lock = store.lock(&self.inner.key, self.inner.settings.lock_timeout).await?;
        let result = async {
            let stored = store.load(&self.inner.key).await?;
            let tokens = stored.or_else(|| self.inner.cached.load().as_ref().map(|c| c.tokens.clone()));
            let had_tokens = tokens.is_some();
            self.engine().set_tokens(&self.inner.key, tokens);
            let actions = self.engine().logout(&self.inner.key, self.inner.clock.now());
            let outcome = match self.drive(actions, None).await {
                Ok(Outcome::LoggedOut { revoked, error }) => {
                    LogoutOutcome { revoked, revocation_error: error, had_tokens }
                }
                Ok(Outcome::Tokens(_)) => LogoutOutcome { revoked: false, revocation_error: None, had_tokens },
                Err(error) => LogoutOutcome { revoked: false, revocation_error: Some(error), had_tokens },
            };
            self.inner.cached.store(None);
            self.engine().set_tokens(&self.inner.key, None);
            store.clear(&self.inner.key).await?;
            Ok(outcome)
        }
        .await;
        lock.release().await?;
        result
    }

    /// Forgets the tokens here and in the store, without telling the server.
    pub async fn clear(&self) -> Result<(), Error> {
        let _gate = self.inner.gate.lock().await;
        self.inner.cached.store(None);
        self.engine().set_tokens(&self.inner.key, None);
        self.inner.store.clear(&self.inner.key).await
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        // The engine's methods do not panic on bad input; if one ever did, its state is still a
        // valid (if stale) cache, so poisoning is not a reason to stop serving.
        self.inner.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cold]
    async fn slow_path(&self) -> Result<AuthorizationHeader, Error> {
        let now = self.inner.clock.now();
        let current = self.inner.cached.load_full();
        if let Some(current) = current.as_ref().filter(|c| c.tokens.access_valid(now, COARSE_CLOCK_MARGIN)) {
            // Due for an early refresh but still valid: one caller refreshes, the others carry on.
            let Ok(_gate) = self.inner.gate.try_lock() else {
                return Ok(AuthorizationHeader(Arc::clone(current)));
            };
            if !self.is_current(current) {
                return self.cached_or_valid(now);
            }
            return match self.refresh_locked(RefreshReason::NearExpiry, None).await {
                Ok(header) => Ok(header),
                Err(error) => {
                    warn!(key = %self.inner.key, %error, "early refresh failed; still serving the valid token");
                    self.postpone(current, self.inner.clock.now());
                    Ok(AuthorizationHeader(Arc::clone(current)))
                }
            };
        }
        let _gate = self.inner.gate.lock().await;
        // Whoever held the gate before us may have done the work.
        if let Some(header) = self.cached_header() {
            return Ok(header);
        }
        let reason = if current.is_some() { RefreshReason::Expired } else { RefreshReason::Startup };
        match self.refresh_locked(reason, None).await {
            Ok(header) => Ok(header),
            // A session without a token of its own (a new process) may find one in the store that
            // is due for an early refresh but still valid: like the early-refresh path above, a
            // failed refresh keeps serving it rather than failing the caller.
            Err(error) => match self.inner.store.load(&self.inner.key).await {
                Ok(Some(stored)) if stored.access_valid(self.inner.clock.now(), COARSE_CLOCK_MARGIN) => {
                    warn!(key = %self.inner.key, %error, "early refresh failed; still serving the valid stored token");
                    let header = self.adopt(stored);
                    self.postpone(&header.0, self.inner.clock.now());
                    Ok(header)
                }
                _ => Err(error),
            },
        }
    }

    fn is_current(&self, cached: &Arc<Cached>) -> bool {
        self.inner.cached.load().as_ref().is_some_and(|current| Arc::ptr_eq(current, cached))
    }

    fn cached_or_valid(&self, now: Timestamp) -> Result<AuthorizationHeader, Error> {
        match self.inner.cached.load_full() {
            Some(cached) if cached.tokens.access_valid(now, Duration::ZERO) => Ok(AuthorizationHeader(cached)),
            _ => Err(Error::ReauthenticationRequired { reason: "no valid token".into() }),
        }
    }

    /// After a failed early refresh: keep serving, and try again after half the remaining time (at most 10 s).
    fn postpone(&self, cached: &Arc<Cached>, now: Timestamp) {
        let Some(expires_at) = cached.tokens.expires_at else { return };
        let retry_in = (expires_at.duration_since(now) / 2).min(Duration::from_secs(10));
        let serve_until = (now + retry_in).min(expires_at - COARSE_CLOCK_MARGIN);
        let postponed = Arc::new(Cached { header: cached.header.clone(), tokens: cached.tokens.clone(), serve_until });
        self.inner.cached.compare_and_swap(cached, Some(postponed));
    }

    /// Steps 2–6 of the protocol with hooks, and the refresh policy on failure. The caller holds the gate.
    async fn refresh_locked(
        &self,
        reason: RefreshReason,
        rejected: Option<Secret>,
    ) -> Result<AuthorizationHeader, Error> {
        let mut login = reason == RefreshReason::Login;
        for attempt in 1..=MAX_POLICY_ATTEMPTS {
            let context = self.context(reason, if login { TokenSource::Login } else { TokenSource::Network }, attempt);
            self.inner.hooks.on_refresh_start(&context)?;
            let prompts_before = self.inner.prompts.load(Ordering::Relaxed);
            let error = match self.attempt_refresh(&context, rejected.as_ref(), login).await {
                Ok(header) => return Ok(header),
                Err(error) => error,
            };
            self.inner.hooks.on_refresh_failure(&context, &error)?;
            // A failed login, or a failed early refresh (the caller still holds a valid token), is final here.
            if login || reason == RefreshReason::NearExpiry || attempt == MAX_POLICY_ATTEMPTS {
                return Err(error);
            }
            match self.inner.policy.on_refresh_failure(&context, &error) {
                RefreshFailureAction::Raise => return Err(error),
                // The attempt already ran a login (an unattended grant's after a rejected refresh) that
                // stopped at a prompt nobody answered (e.g. a Cognito pool that mails a code, and no
                // prompter or no code callback): running it again would only mail another code.
                RefreshFailureAction::Reauthenticate
                    if self.inner.prompts.load(Ordering::Relaxed) != prompts_before =>
                {
                    return Err(error);
                }
                RefreshFailureAction::Reauthenticate => login = true,
                RefreshFailureAction::RetryAfter(delay) => tokio::time::sleep(delay).await,
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    fn context(&self, reason: RefreshReason, source: TokenSource, attempt: u32) -> RefreshContext {
        RefreshContext { key: self.inner.key.clone(), reason, source, attempt }
    }

    /// Steps 2–6 once: adopt from the store, or lock, re-read, refresh (or log in), save, unlock.
    async fn attempt_refresh(
        &self,
        context: &RefreshContext,
        rejected: Option<&Secret>,
        login: bool,
    ) -> Result<AuthorizationHeader, Error> {
        let span = info_span!(
            "tessera.refresh",
            key = %context.key,
            reason = ?context.reason,
            source = ?context.source,
            attempt = context.attempt
        );
        async {
            // A login that needs a person, and nobody to ask: fail before sending anything (no
            // device code is requested that nobody will ever enter).
            if login && self.inner.prompter.is_none() && self.needs_person() {
                return Err(no_prompter(&self.inner.key));
            }
            let store = &self.inner.store;
            // 2. Another process may have refreshed already: adopt its tokens without taking any lock.
            if !login
                && let Some(stored) = store.load(&self.inner.key).await?
                && self.adoptable(&stored, rejected)
            {
                debug!("adopted tokens refreshed by another process");
                return self.succeed(context, TokenSource::Store, stored);
            }
            // 3.–4. Lock, re-read under the lock.
            let lock = store.lock(&self.inner.key, self.inner.settings.lock_timeout).await?;
            let result = async {
                let stored = store.load(&self.inner.key).await?;
                if !login && let Some(stored) = stored.as_ref().filter(|stored| self.adoptable(stored, rejected)) {
                    debug!("adopted tokens refreshed by another process while we waited for the lock");
                    return self.succeed(context, TokenSource::Store, stored.clone());
                }
                // 5. The stored set holds the newest refresh token; fall back to ours only if the store is empty.
                let tokens = stored.or_else(|| self.inner.cached.load().as_ref().map(|c| c.tokens.clone()));
                // A browser login binds its loopback receiver first: its URL is the redirect URI.
                let (inputs, loopback) = if login {
                    let grant = self.engine().config(&self.inner.key).map(|config| config.grant.clone());
                    let (inputs, loopback) =
                        browser::login_inputs(grant.as_ref(), &self.inner.settings.loopback, &self.inner.key).await?;
                    (Some(inputs), loopback)
                } else {
                    (None, None)
                };
                let now = self.inner.clock.now();
                let (actions, source) = {
                    let mut engine = self.engine();
                    let refreshable = tokens.as_ref().is_some_and(|t| t.refresh_valid(now, Duration::ZERO));
                    engine.set_tokens(&self.inner.key, tokens);
                    if let Some(inputs) = inputs {
                        (engine.login_with(&self.inner.key, inputs, now), TokenSource::Login)
                    } else {
                        let source = if refreshable { TokenSource::Network } else { TokenSource::Login };
                        (engine.refresh(&self.inner.key, now), source)
                    }
                };
                let tokens = match self.drive(actions, loopback).await? {
                    Outcome::Tokens(tokens) => tokens,
                    Outcome::LoggedOut { .. } => return Err(Error::configuration("unexpected logout outcome")),
                };
                // 6. Save before releasing the lock: a rotated refresh token must be visible to the
                // next process before it can take the lock. If saving fails the new tokens still
                // serve this process, and the caller learns that the store is broken.
                let header = self.adopt(tokens.clone());
                store.save(&self.inner.key, &tokens).await?;
                debug!(expires_at = ?tokens.expires_at, "token obtained and stored");
                self.inner.hooks.on_refresh_success(&RefreshContext { source, ..context.clone() }, &tokens)?;
                Ok(header)
            }
            .await;
            lock.release().await?;
            result
        }
        .instrument(span)
        .await
    }

    /// True when this session's login shows something to a person (a device code).
    fn needs_person(&self) -> bool {
        self.engine().config(&self.inner.key).is_some_and(|config| config.grant.is_interactive())
    }

    fn succeed(
        &self,
        context: &RefreshContext,
        source: TokenSource,
        tokens: TokenSet,
    ) -> Result<AuthorizationHeader, Error> {
        let header = self.adopt(tokens);
        self.inner.hooks.on_refresh_success(&RefreshContext { source, ..context.clone() }, header.tokens())?;
        Ok(header)
    }

    /// A stored set we can use instead of refreshing: valid beyond its refresh window, and not the
    /// token an API just rejected.
    fn adoptable(&self, stored: &TokenSet, rejected: Option<&Secret>) -> bool {
        let now = self.inner.clock.now();
        rejected.is_none_or(|rejected| *rejected != stored.access_token)
            && stored.access_valid(now, stored.refresh_window(self.inner.settings.refresh_skew))
    }

    fn adopt(&self, tokens: TokenSet) -> AuthorizationHeader {
        let jitter = if self.inner.settings.jitter { fastrand::f64() } else { 0.0 };
        let serve_until = match tokens.expires_at {
            Some(expires_at) => tokens
                .refresh_at(self.inner.settings.refresh_skew, jitter)
                .unwrap_or(expires_at)
                .min(expires_at - COARSE_CLOCK_MARGIN),
            None => Timestamp::from_unix_millis(i64::MAX),
        };
        self.engine().set_tokens(&self.inner.key, Some(tokens.clone()));
        let cached = Arc::new(Cached { header: tokens.authorization_value(), tokens, serve_until });
        self.inner.cached.store(Some(Arc::clone(&cached)));
        AuthorizationHeader(cached)
    }

    /// Runs engine actions to completion, in order: sends requests, sleeps through waits, shows prompts.
    /// A browser prompt is answered by `loopback` when the login bound one, else by the prompter.
    async fn drive(&self, actions: Vec<Action>, mut loopback: Option<LoopbackReceiver>) -> Result<Outcome, Error> {
        let mut queue: VecDeque<Action> = actions.into();
        for _ in 0..MAX_STEPS {
            let Some(action) = queue.pop_front() else {
                return Err(Error::configuration("the engine stopped without an outcome"));
            };
            let mut slept_until = None;
            let event = match action {
                Action::Send(request) => {
                    let request_id = request.id;
                    match self.inner.transport.execute(request).await {
                        Ok(response) => Event::Response(response),
                        Err(error) => Event::TransportFailed { request_id, error },
                    }
                }
                Action::Wait { key, until } => {
                    let now = self.inner.clock.now();
                    tokio::time::sleep(until.duration_since(now)).await;
                    slept_until = Some(until);
                    Event::Timer { key }
                }
                Action::Prompt { key, prompt } => {
                    self.inner.prompts.fetch_add(1, Ordering::Relaxed);
                    let Some(prompter) = &self.inner.prompter else {
                        return Err(no_prompter(&key));
                    };
                    if !prompt.expects_answer() {
                        prompter.show(&key, &prompt).await?;
                        continue;
                    }
                    if let (Prompt::Browser { .. }, Some(receiver)) = (&prompt, loopback.take()) {
                        browser::answer_with_receiver(prompter.as_ref(), key, &prompt, receiver).await?
                    } else {
                        match prompter.ask(&key, &prompt).await {
                            Ok(answer) => Event::Answer { key, answer },
                            Err(error) => Event::PromptFailed { key, error },
                        }
                    }
                }
                Action::Done { tokens, .. } => return Ok(Outcome::Tokens(tokens)),
                Action::Failed { error, .. } => return Err(error),
                Action::LoggedOut { revoked, error, .. } => return Ok(Outcome::LoggedOut { revoked, error }),
                _ => return Err(Error::configuration("unsupported engine action")),
            };
            // After sleeping the whole wait, its instant has come even if the wall clock lags,
            // stands still or stepped back meanwhile (otherwise the flow would wait again, and again).
            let now = self.inner.clock.now().max(slept_until.unwrap_or(Timestamp::EPOCH));
            queue.extend(self.engine().handle(event, now));
        }
        Err(Error::configuration("token operation did not finish within its step limit"))
    }
}

/// The future of [`Session::authorization_header`].
enum HeaderFuture<'a> {
    Ready(Option<AuthorizationHeader>),
    Slow(std::pin::Pin<Box<dyn Future<Output = Result<AuthorizationHeader, Error>> + Send + 'a>>),
}

impl Future for HeaderFuture<'_> {
    type Output = Result<AuthorizationHeader, Error>;

    #[inline]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            HeaderFuture::Ready(header) => std::task::Poll::Ready(
                header
                    .take()
                    .ok_or_else(|| Error::configuration("authorization_header() future polled after completion")),
            ),
            HeaderFuture::Slow(future) => future.as_mut().poll(cx),
        }
    }
}

enum Outcome {
    Tokens(TokenSet),
    LoggedOut { revoked: bool, error: Option<Error> },
}
