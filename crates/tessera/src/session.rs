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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tessera_core::{Action, Engine, EngineSettings, Error, Event, ProviderConfig, Secret, Timestamp, TokenSet};
use tracing::{Instrument, debug, info_span, warn};

use crate::clock::{Clock, SystemClock};
use crate::local_cache;
use crate::store::{MemoryStore, TokenStore};
use crate::transport::{HttpTransport, TransportSettings};

/// The Coarse clock can lag by one scheduler tick; a cached header is retired at least this long before expiry.
const COARSE_CLOCK_MARGIN: Duration = Duration::from_millis(20);
thread_local! {
    static CACHED_HEADERS: std::cell::RefCell<Vec<local_cache::Entry<Cached>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Upper bound on engine round trips in one operation (the engine's own retry limits end far sooner).
const MAX_STEPS: usize = 64;

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
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            refresh_skew: Duration::from_secs(30),
            jitter: true,
            lock_timeout: Duration::from_secs(30),
            transport: TransportSettings::default(),
            engine: EngineSettings::default(),
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
    /// [`Session::force_refresh`] (e.g. after a 401).
    Forced,
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
}

impl SessionBuilder {
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
            }),
        }
    }
}

impl Session {
    /// Starts building a session for `config`, stored under `key`.
    pub fn builder(key: impl Into<String>, config: ProviderConfig) -> SessionBuilder {
        SessionBuilder { key: key.into(), config, store: None, clock: None, settings: SessionSettings::default() }
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
        self.refresh_locked(RefreshReason::Forced, rejected).await
    }

    /// Logs in afresh with the configured grant (ignoring any refresh token) and stores the result.
    pub async fn login(&self) -> Result<AuthorizationHeader, Error> {
        let _gate = self.inner.gate.lock().await;
        self.run_under_store_lock(RefreshReason::Login, None).await
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
            let outcome = match self.drive(actions).await {
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

    /// Steps 2–6 of the protocol. The caller holds the gate.
    async fn refresh_locked(
        &self,
        reason: RefreshReason,
        rejected: Option<Secret>,
    ) -> Result<AuthorizationHeader, Error> {
        // 2. Another process may have refreshed already: adopt its tokens without taking any lock.
        if let Some(stored) = self.inner.store.load(&self.inner.key).await?
            && self.adoptable(&stored, rejected.as_ref())
        {
            debug!(key = %self.inner.key, ?reason, "adopted tokens refreshed by another process");
            return Ok(self.adopt(stored));
        }
        self.run_under_store_lock(reason, rejected).await
    }

    /// Steps 3–6: lock, re-read, network, save, unlock.
    async fn run_under_store_lock(
        &self,
        reason: RefreshReason,
        rejected: Option<Secret>,
    ) -> Result<AuthorizationHeader, Error> {
        let span = info_span!("tessera.refresh", key = %self.inner.key, reason = ?reason);
        async {
            let store = &self.inner.store;
            let lock = store.lock(&self.inner.key, self.inner.settings.lock_timeout).await?;
            let result = async {
                let stored = store.load(&self.inner.key).await?;
                if reason != RefreshReason::Login
                    && let Some(stored) = stored.as_ref().filter(|stored| self.adoptable(stored, rejected.as_ref()))
                {
                    debug!("adopted tokens refreshed by another process while we waited for the lock");
                    return Ok(self.adopt(stored.clone()));
                }
                // The stored set holds the newest refresh token; fall back to ours only if the store is empty.
                let tokens = stored.or_else(|| self.inner.cached.load().as_ref().map(|c| c.tokens.clone()));
                let now = self.inner.clock.now();
                let actions = {
                    let mut engine = self.engine();
                    engine.set_tokens(&self.inner.key, tokens);
                    if reason == RefreshReason::Login {
                        engine.login(&self.inner.key, now)
                    } else {
                        engine.refresh(&self.inner.key, now)
                    }
                };
                let tokens = match self.drive(actions).await? {
                    Outcome::Tokens(tokens) => tokens,
                    Outcome::LoggedOut { .. } => return Err(Error::configuration("unexpected logout outcome")),
                };
                let header = self.adopt(tokens.clone());
                // Save before releasing the lock: a rotated refresh token must be visible to the
                // next process before it can take the lock. If saving fails the new tokens still
                // serve this process, and the caller learns that the store is broken.
                store.save(&self.inner.key, &tokens).await?;
                debug!(expires_at = ?tokens.expires_at, "token obtained and stored");
                Ok(header)
            }
            .await;
            lock.release().await?;
            result
        }
        .instrument(span)
        .await
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

    /// Runs engine actions to completion: sends requests, sleeps through backoffs.
    async fn drive(&self, mut actions: Vec<Action>) -> Result<Outcome, Error> {
        for _ in 0..MAX_STEPS {
            let Some(action) = actions.pop() else {
                return Err(Error::configuration("the engine stopped without an outcome"));
            };
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
                    Event::Timer { key }
                }
                Action::Done { tokens, .. } => return Ok(Outcome::Tokens(tokens)),
                Action::Failed { error, .. } => return Err(error),
                Action::LoggedOut { revoked, error, .. } => return Ok(Outcome::LoggedOut { revoked, error }),
                _ => return Err(Error::configuration("unsupported engine action")),
            };
            actions = self.engine().handle(event, self.inner.clock.now());
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
