//! [`Session`]: one credential's hot path, single-flight refresh, and the cross-process refresh
//! protocol over a [`TokenStore`].
//!
//! Hot path: this thread's own copy of the header (an entry of a per-thread table indexed by the
//! session's slot, valid while a process-wide epoch is unchanged, see local_cache.rs), one
//! comparison of a coarse clock reading with a precomputed instant, one clone of an `Arc` that
//! only this thread counts, shared by this thread's copies of 32 neighbouring sessions' headers
//! ([`Session::with_cached_header`]: not even that). No lock, no
//! allocation, no write to memory another thread writes, no syscall beyond a vDSO clock read.
//!
//! Slow path (the token is due or gone), in this order — see docs/refresh-protocol.md:
//! 1. the session's [`RefreshCell`] (one refresh per session at a time; other callers wait and
//!    share its outcome, success or error, or keep using a still-valid token; after a failure the
//!    next attempt is postponed; after a final one the cell is dead and nothing is sent until a
//!    login, or until another process stores a new token);
//! 2. re-read the store: another process may already have refreshed;
//! 3. take the store's lock; 4. re-read under the lock;
//! 5. refresh over the network with the *stored* refresh token; 6. save; release the lock.
//!
//! No lock other than the cell's attempt slot and the store lock is held across a network call.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tessera_core::{
    Action, DropReason, Engine, EngineSettings, Error, Event, Grant, Prompt, ProviderConfig, Secret, Timestamp,
    TokenSet,
};
use tracing::{Instrument, debug, info_span, warn};

use crate::browser::{self, LoopbackReceiver, LoopbackSettings};
use crate::clock::{Clock, SystemClock};
use crate::local_cache::{self, Chunk, Registration, Servable, Table};
use crate::policy::{
    DefaultRefreshPolicy, NoHooks, RefreshContext, RefreshFailureAction, RefreshHooks, RefreshPolicy, TokenSource,
};
use crate::prompt::Prompter;
use crate::refresh_cell::{Expiring, Failed, RefreshCell, Want};
use crate::spent::SpentRefreshTokens;
use crate::store::{MemoryStore, ResourceView, TokenStore};
use crate::transport::{Checked, HttpTransport, Transport, TransportSettings};

/// The Coarse clock can lag by one scheduler tick; a cached header is retired at least this long before expiry.
const COARSE_CLOCK_MARGIN: Duration = Duration::from_millis(20);
thread_local! {
    /// This thread's copies of every session's header it has served (see local_cache.rs).
    static HEADERS: RefCell<Table<Cached, HeaderCell, AuthorizationHeader>> = const { RefCell::new(Table::new()) };
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
/// Cloning is an `Arc` clone. A header from [`Session::cached_header`] is this thread's own copy:
/// cloning and dropping it on this thread writes no memory that another thread writes (the token
/// data behind it is shared, read only). `Debug` shows no secret.
#[derive(Clone)]
pub struct AuthorizationHeader {
    /// This thread's copies of 32 neighbouring sessions' headers (a chunk of its header table,
    /// see local_cache.rs), counted only by the headers this thread handed out; or, for a header
    /// that no table served, a chunk of one.
    chunk: Arc<HeaderChunk>,
    index: usize,
}

/// [`AuthorizationHeader::to_header_value`], built on first use by the thread whose copy it is.
type HeaderCell = OnceLock<http::HeaderValue>;
type HeaderChunk = Chunk<Cached, HeaderCell>;

struct Cached {
    header: Secret,
    tokens: TokenSet,
    /// Served without question before this instant (coarse clock).
    serve_until: Timestamp,
}

impl Expiring for Cached {
    fn expires_at(&self) -> Option<Timestamp> {
        self.tokens.expires_at
    }

    /// The hot path serves a postponed (or dead but still valid) token until `until`.
    fn served_until(&self, until: Timestamp) -> Option<Self> {
        let expires_at = self.tokens.expires_at?;
        let serve_until = until.min(expires_at - COARSE_CLOCK_MARGIN);
        Some(Cached { header: self.header.clone(), tokens: self.tokens.clone(), serve_until })
    }
}

impl Servable for Cached {
    fn serve_until(&self) -> Timestamp {
        self.serve_until
    }
}

impl AuthorizationHeader {
    fn new(cached: Arc<Cached>) -> Self {
        AuthorizationHeader { chunk: Chunk::single(cached), index: 0 }
    }

    /// This thread's handle on the header at `index` of its `chunk`.
    fn in_chunk(chunk: &Arc<HeaderChunk>, index: usize) -> Self {
        AuthorizationHeader { chunk: Arc::clone(chunk), index }
    }

    fn cached(&self) -> &Arc<Cached> {
        self.chunk.get(self.index).0
    }

    /// The header value, e.g. `Bearer eyJ...`.
    pub fn expose_secret(&self) -> &str {
        self.cached().header.expose_secret()
    }

    /// The header value as an `http` header, marked sensitive (hidden from logs by hyper and friends).
    ///
    /// Built once per copy, then cloned: for a header from [`Session::cached_header`] (or
    /// [`Session::with_cached_header`]) that is once per thread per token, and each call is a
    /// clone of bytes that only this thread counts, with no allocation or validation.
    pub fn to_header_value(&self) -> http::HeaderValue {
        self.chunk
            .get(self.index)
            .1
            .get_or_init(|| {
                let mut value =
                    http::HeaderValue::from_str(self.expose_secret()).unwrap_or(http::HeaderValue::from_static(""));
                value.set_sensitive(true);
                value
            })
            .clone()
    }

    /// The access token alone.
    pub fn access_token(&self) -> &Secret {
        &self.cached().tokens.access_token
    }

    /// When the access token expires, when known.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.cached().tokens.expires_at
    }

    /// The whole token set.
    pub fn tokens(&self) -> &TokenSet {
        &self.cached().tokens
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
    /// Copied here so that the hot path reads nothing of `inner` (see local_cache.rs).
    local: LocalKey,
}

/// What the hot path needs to know about a session without reading its shared state.
#[derive(Clone, Copy)]
struct LocalKey {
    key: local_cache::Key,
    /// The system clock (called inline), not an injected one (read through `inner`).
    system_clock: bool,
}

struct Inner {
    key: String,
    /// This session's entry in every thread's header table: held, never read (dropping it frees
    /// the slot; the key is copied into every `Session` value).
    _registration: Registration,
    /// The cached header (`cell.slot()`) and the single flight over it: refreshes, logins,
    /// logouts (see refresh_cell.rs).
    cell: RefreshCell<Cached>,
    engine: Mutex<Engine>,
    store: Arc<dyn TokenStore>,
    transport: Arc<dyn Transport>,
    clock: SessionClock,
    settings: SessionSettings,
    prompter: Option<Arc<dyn Prompter>>,
    policy: Arc<dyn RefreshPolicy>,
    hooks: Arc<dyn RefreshHooks>,
    /// Prompts the engine asked for (answered or not): tells `refresh_locked` whether a failed
    /// attempt already involved a person.
    prompts: AtomicU64,
    /// The refresh token the current attempt presented: if it is rejected, the store must stop
    /// holding it.
    presented: Mutex<Option<Secret>>,
    /// After a final failure: the access token the store held then. A different one stored later
    /// (a login in another process) revives the session.
    /// (With the refresh token the store held then: a resource a login does not serve yet has no
    /// access token of its own, and a new login shows in the refresh token.)
    dead_witness: Mutex<Option<(Secret, Option<Secret>)>>,
    /// Refresh tokens never to be presented again (see spent.rs).
    spent: Arc<SpentRefreshTokens>,
    /// The current attempt rotated a refresh token but could not save the new one: its caller gets
    /// the error even though the new tokens are served.
    unsaved: AtomicBool,
    /// DPoP (`dpop = true`): the key's prover and the resource servers' nonces (see dpop.rs).
    dpop: Option<crate::dpop::DpopState>,
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
    spent: Option<Arc<SpentRefreshTokens>>,
    transport: Option<CustomTransport>,
    /// RFC 8707: the resource first, then the others a login also asks for.
    resources: Vec<String>,
    metadata: Option<tessera_core::ProviderMetadata>,
    /// The client `Session::for_resource` registered (see store/resource_view.rs).
    registered: Option<tessera_core::StoredClient>,
}

/// What [`SessionBuilder::transport`] or [`SessionBuilder::http_client`] gave.
enum CustomTransport {
    Transport(Arc<dyn Transport>),
    Reqwest(reqwest::Client),
}

impl SessionBuilder {
    /// Sends the session's requests through another HTTP stack (see [`Transport`] for what an
    /// implementation must do: no cross-origin redirects, a time limit, a bounded body, and
    /// [`tessera_core::TransportErrorKind::Connect`] only when nothing was sent). The session still
    /// refuses plain `http` off loopback (unless [`TransportSettings::allow_insecure_http`]) before
    /// calling it, and bodies over [`TransportSettings::max_response_bytes`] after. The last of
    /// `transport` and [`SessionBuilder::http_client`] wins.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(CustomTransport::Transport(transport));
        self
    }

    /// Sends the session's requests through the application's own reqwest client (its proxy,
    /// roots, client certificate, pool). Build it with `.redirect(reqwest::redirect::Policy::none())`:
    /// see [`HttpTransport::with_client`], which of the session's [`TransportSettings`] still apply
    /// (the body cap and `allow_insecure_http`), and which are the client's (timeouts, user agent,
    /// proxy, roots). The last of `http_client` and [`SessionBuilder::transport`] wins.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.transport = Some(CustomTransport::Reqwest(client));
        self
    }

    /// Where the session remembers the refresh tokens it must never present again (one whose
    /// refresh lost its answer; the refresh-token grant's configured token once rotated). Default:
    /// the store's ([`TokenStore::spent_refresh_tokens`]: a file beside a [`crate::store::FileStore`]'s
    /// tokens), else in memory. Give every process that shares a store that can be wiped (Redis)
    /// the same file ([`SpentRefreshTokens::file`]), so that none of them presents a spent token
    /// after a wipe.
    pub fn spent_refresh_tokens(mut self, spent: Arc<SpentRefreshTokens>) -> Self {
        self.spent = Some(spent);
        self
    }

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

    /// The protected resource the tokens are for (RFC 8707: its identifier, an absolute URI).
    /// Every token request asks for it, the login's authorization request names it (with
    /// [`SessionBuilder::also_at_login`]), and the store keeps this session's access token beside
    /// those of the other resources the same login serves: sessions built with the same key and
    /// store and different resources share one login and its one refresh token, and take turns
    /// (the store's lock) presenting it. A logout ends the login for all of them. See
    /// docs/resource-login.md. Default none: no `resource` parameter, the store holds one set.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        let resource = resource.into();
        self.resources.retain(|other| *other != resource);
        self.resources.insert(0, resource);
        self
    }

    /// More resources a login names in its authorization request (RFC 8707 §2.1), so that its
    /// refresh token can later get tokens for them too without another login: some servers
    /// (oidc-provider) refuse a refresh for a resource the login did not name. Needs
    /// [`SessionBuilder::resource`].
    pub fn also_at_login(mut self, resources: impl IntoIterator<Item = impl Into<String>>) -> Self {
        for resource in resources {
            let resource = resource.into();
            if !self.resources.contains(&resource) {
                self.resources.push(resource);
            }
        }
        self
    }

    /// The client `Session::for_resource` registered for this login (its store view checks it).
    pub(crate) fn registered_client(mut self, client: tessera_core::StoredClient) -> Self {
        self.registered = Some(client);
        self
    }

    /// The authorization server's metadata, already fetched (by [`crate::resource::discover_resource`]):
    /// not fetched again. Ignored unless its issuer is the provider's (`Endpoints::Discover`).
    pub fn metadata(mut self, metadata: tessera_core::ProviderMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Builds the session. Nothing is sent and nothing is read until a token is needed.
    pub fn build(self) -> Session {
        let mut engine_settings = self.settings.engine;
        engine_settings.refresh_skew = self.settings.refresh_skew;
        engine_settings.jitter_seed = fastrand::u64(..);
        // Client assertions' jti values come from this (the core draws no randomness). Without the
        // operating system's generator they cannot be made: those providers then fail with a
        // configuration error; every other provider works.
        if engine_settings.entropy.is_none() {
            let mut seed = [0u8; 32];
            if getrandom::fill(&mut seed).is_ok() {
                engine_settings.entropy = Some(tessera_core::Entropy(seed));
            }
        }
        let mut engine = Engine::new(engine_settings);
        // Reauthenticating can help only if the login needs nobody, or someone can be asked.
        let can_prompt = self.prompter.is_some() || self.config.grant.logs_in_unattended();
        let dpop = self.config.client.dpop.clone().map(crate::dpop::DpopState::new);
        engine.register(self.key.clone(), self.config);
        if let Some(metadata) = self.metadata {
            engine.set_metadata(&self.key, metadata);
        }
        let cell_clock: Arc<dyn Clock> = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let mut store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        if let Some(resource) = self.resources.first() {
            // This session sees its resource's tokens of the login (see store/resource_view.rs).
            store = Arc::new(ResourceView::new(store, &self.key, resource.clone(), self.registered));
            engine.set_resources(&self.key, self.resources);
        }
        let spent = self.spent.or_else(|| store.spent_refresh_tokens()).unwrap_or_default();
        let registration = Registration::new();
        let local = LocalKey { key: registration.key(), system_clock: self.clock.is_none() };
        Session {
            local,
            inner: Arc::new(Inner {
                key: self.key,
                _registration: registration,
                cell: RefreshCell::new(None, cell_clock),
                engine: Mutex::new(engine),
                store,
                transport: match self.transport {
                    None => Arc::new(HttpTransport::new(self.settings.transport.clone())),
                    Some(CustomTransport::Reqwest(client)) => {
                        Arc::new(HttpTransport::with_client(client, self.settings.transport.clone()))
                    }
                    Some(CustomTransport::Transport(transport)) => {
                        Arc::new(Checked::new(transport, self.settings.transport.clone()))
                    }
                },
                clock: self.clock.map_or(SessionClock::System, SessionClock::Custom),
                settings: self.settings,
                prompter: self.prompter,
                policy: self.policy.unwrap_or_else(|| Arc::new(DefaultRefreshPolicy { can_prompt })),
                hooks: self.hooks.unwrap_or_else(|| Arc::new(NoHooks)),
                prompts: AtomicU64::new(0),
                presented: Mutex::new(None),
                dead_witness: Mutex::new(None),
                spent,
                unsaved: AtomicBool::new(false),
                dpop,
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
            spent: None,
            transport: None,
            resources: Vec::new(),
            metadata: None,
            registered: None,
        }
    }

    /// The store key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// How this session sends requests (for calls made on its behalf: the key API).
    pub(crate) fn shared_transport(&self) -> Arc<dyn Transport> {
        Arc::clone(&self.inner.transport)
    }

    /// DPoP state, for a provider with `dpop = true` (dpop.rs).
    pub(crate) fn dpop_state(&self) -> Option<&crate::dpop::DpopState> {
        self.inner.dpop.as_ref()
    }

    /// The session's clock, read precisely (a DPoP proof's `iat`).
    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The cached header if it may be served right now without any work; `None` otherwise.
    /// This is the whole hot path: no lock, no allocation, no future, no write to memory that
    /// another thread writes. The header is this thread's copy (see [`AuthorizationHeader`]); the
    /// first call on a thread after a refresh makes that copy (a new chunk of this thread's copies
    /// of 32 neighbouring sessions' headers: two allocations, see local_cache.rs).
    #[inline]
    pub fn cached_header(&self) -> Option<AuthorizationHeader> {
        self.with_cached_header(AuthorizationHeader::clone)
    }

    /// Calls `f` with the cached header if it may be served right now without any work (the same
    /// rule as [`Session::cached_header`]), lending this thread's copy instead of cloning it:
    /// `None` (and `f` not called) otherwise. The fastest way to read the header, e.g. to copy it
    /// into a request (`session.with_cached_header(|h| h.to_header_value())`) or into a string
    /// of another runtime.
    ///
    /// `f` runs while this thread's header table is borrowed: a session read inside `f` is still
    /// served correctly, but without the per-thread copy (one allocation) if it needs a refill.
    #[inline]
    pub fn with_cached_header<R>(&self, f: impl FnOnce(&AuthorizationHeader) -> R) -> Option<R> {
        let now = || {
            if self.local.system_clock { SystemClock.now_coarse() } else { self.inner.clock.now_coarse() }
        };
        local_cache::with(&HEADERS, self.local.key, self.inner.cell.slot(), now, AuthorizationHeader::in_chunk, f)
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
        self.replace_token(RefreshReason::Forced, None).await
    }

    /// [`Session::force_refresh`] after an API rejected `sent`: a token other than `sent` that is
    /// still valid is returned without a request. Unlike `force_refresh`, which takes the
    /// session's current token for the rejected one, this cannot take a token that another task
    /// obtained meanwhile for the rejected one (and refresh it again); that matters while a refresh
    /// is being published, when this thread may still hold its copy of the old header for a moment.
    #[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
    pub(crate) async fn replace_rejected(&self, sent: &AuthorizationHeader) -> Result<AuthorizationHeader, Error> {
        self.replace_token(RefreshReason::Forced, Some(sent.access_token().clone())).await
    }

    /// [`Session::force_refresh`] after an API answered 401 (or `WWW-Authenticate: Bearer
    /// error="invalid_token"`): the same single-flight replacement, reported as
    /// [`RefreshReason::Unauthorized`] to the policy, hooks and traces.
    pub async fn handle_unauthorized(&self) -> Result<AuthorizationHeader, Error> {
        self.replace_token(RefreshReason::Unauthorized, None).await
    }

    /// Replaces `rejected`, or (`None`) the session's current token.
    async fn replace_token(
        &self,
        reason: RefreshReason,
        rejected: Option<Secret>,
    ) -> Result<AuthorizationHeader, Error> {
        if self.inner.cell.is_dead() {
            self.revive_from_store().await;
        }
        // Without a token of our own (a fresh process), the stored one is the one being replaced.
        let rejected = match (rejected, self.inner.cell.slot().load_full()) {
            (Some(rejected), _) => Some(rejected),
            (None, Some(seen)) => Some(seen.tokens.access_token.clone()),
            (None, None) => self.inner.store.load(&self.inner.key).await?.map(|stored| stored.access_token),
        };
        let accept = |cached: &Cached| rejected.as_ref().is_none_or(|rejected| *rejected != cached.tokens.access_token);
        // Another token than the rejected one, still valid: someone replaced it meanwhile.
        let valid = |cached: &Cached, now| cached.tokens.access_valid(now, Duration::ZERO);
        let want = Want { fresh: &valid, valid: &valid, accept: &accept };
        self.inner
            .cell
            .get(&want, |_| self.attempt_in_cell(reason, rejected.clone()))
            .await
            .map(AuthorizationHeader::new)
    }

    /// Logs in afresh with the configured grant (ignoring any refresh token) and stores the result.
    /// Callers waiting for a token meanwhile get this login's outcome; a dead session lives again.
    pub async fn login(&self) -> Result<AuthorizationHeader, Error> {
        let leader = self.inner.cell.exclusive().await;
        let result = self.attempt_in_cell(RefreshReason::Login, None).await;
        match leader.finish(result.map(Some), None)? {
            Some(cached) => Ok(AuthorizationHeader::new(cached)),
            None => Err(Error::internal("a login produced no token")),
        }
    }

    /// A step-up (RFC 6750 §3.1): an API answered `insufficient_scope`, naming the `scope` a
    /// request needs. When a login can get it — the grant logs in by itself, or it is interactive
    /// and the session has a prompter — logs in again asking for the session's scope widened with
    /// `scope` (kept for this session's later logins) and returns the new header. Otherwise
    /// nothing is sent and the typed error is [`Error::OAuth`] with
    /// [`tessera_core::OAuthErrorCode::InsufficientScope`] naming the scope, so that a daemon
    /// never hangs on a login nobody can finish. The middlewares and the Python adapters call it.
    pub async fn step_up(&self, scope: &str) -> Result<AuthorizationHeader, Error> {
        let wider = {
            let engine = self.engine();
            // What the session asks for, else what the server granted (its default scopes).
            let current = engine
                .config(&self.inner.key)
                .and_then(|config| config.scope.clone())
                .or_else(|| self.inner.cell.slot().load().as_ref().and_then(|cached| cached.tokens.scope.clone()));
            let mut scopes: Vec<&str> = current.as_deref().unwrap_or_default().split_ascii_whitespace().collect();
            for wanted in scope.split_ascii_whitespace() {
                if !scopes.contains(&wanted) {
                    scopes.push(wanted);
                }
            }
            scopes.join(" ")
        };
        let grant_alone = self.engine().config(&self.inner.key).is_some_and(|config| config.grant.logs_in_unattended());
        if !grant_alone && (self.inner.prompter.is_none() || !self.needs_person()) {
            return Err(Error::OAuth {
                code: tessera_core::OAuthErrorCode::InsufficientScope,
                description: Some(format!(
                    "the API needs the scope {scope:?}, and getting it takes a login with a person: log in to {} with scope {wider:?}",
                    self.inner.key
                )),
                status: 403,
                endpoint: String::new(),
            });
        }
        // Another caller's step-up may have got the scope already (several requests answered 403
        // at once): its token serves, no second login.
        if let Some(current) = self.cached_header()
            && current.tokens().scope.as_deref().is_some_and(|granted| {
                let granted: Vec<&str> = granted.split_ascii_whitespace().collect();
                scope.split_ascii_whitespace().all(|wanted| granted.contains(&wanted))
            })
        {
            return Ok(current);
        }
        debug!(key = %self.inner.key, scope = %wider, "step-up: logging in for a wider scope");
        // The wider scope is kept only if the login gets it: a scope the server refuses must not
        // make every later login of this session fail.
        let previous = self.engine().config(&self.inner.key).and_then(|config| config.scope.clone());
        self.engine().set_scope(&self.inner.key, (!wider.is_empty()).then_some(wider));
        let result = self.login().await;
        if result.is_err() {
            self.engine().set_scope(&self.inner.key, previous);
        }
        result
    }

    /// After an answer `status` with `www_authenticate` (every field, joined) from the API at
    /// `url`: `None` unless it says `insufficient_scope` (RFC 6750 §3.1); then
    /// [`Session::step_up`] for the scope it names, its typed error naming `url` (also when it
    /// names no scope: nothing to ask for). For HTTP stacks tessera has no adapter for (the
    /// Python adapters use it).
    pub async fn step_up_after(
        &self,
        url: &str,
        status: u16,
        www_authenticate: Option<&str>,
    ) -> Option<Result<AuthorizationHeader, Error>> {
        let scope = tessera_core::protocol::challenge::required_scope(status, www_authenticate)?;
        Some(self.step_up_for(url, status, &scope).await)
    }

    /// [`Session::step_up`] after the API at `url` answered `status`: its typed error names `url`.
    pub(crate) async fn step_up_for(&self, url: &str, status: u16, scope: &str) -> Result<AuthorizationHeader, Error> {
        if scope.trim().is_empty() {
            return Err(insufficient_scope_error(url, status, "the API says the token lacks a scope, and names none"));
        }
        self.step_up(scope).await.map_err(|error| match error {
            Error::OAuth { code: tessera_core::OAuthErrorCode::InsufficientScope, description, .. } => {
                insufficient_scope_error(url, status, description.as_deref().unwrap_or_default())
            }
            other => other,
        })
    }

    /// Revokes the tokens at the server when it has an RFC 7009 endpoint, then clears them here
    /// and in the store. Local tokens are cleared even when revocation fails.
    pub async fn logout(&self) -> Result<LogoutOutcome, Error> {
        let leader = self.inner.cell.exclusive().await;
        let store = &self.inner.store;
        let lock = store.lock(&self.inner.key, self.inner.settings.lock_timeout).await?;
        let result = async {
            let stored = store.load(&self.inner.key).await?;
            let tokens = stored.or_else(|| self.inner.cell.slot().load().as_ref().map(|c| c.tokens.clone()));
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
            self.inner.cell.slot().store(None);
            self.engine().set_tokens(&self.inner.key, None);
            store.clear(&self.inner.key).await?;
            Ok(outcome)
        }
        .await;
        lock.release().await?;
        // Whatever happened, the tokens are gone here and the cell starts afresh.
        let _ = leader.finish(Ok(None), None);
        result
    }

    /// Forgets the tokens here and in the store, without telling the server.
    pub async fn clear(&self) -> Result<(), Error> {
        let leader = self.inner.cell.exclusive().await;
        self.inner.cell.slot().store(None);
        self.engine().forget_tokens(&self.inner.key);
        let result = self.inner.store.clear(&self.inner.key).await;
        let _ = leader.finish(Ok(None), None);
        result
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, Engine> {
        // The engine's methods do not panic on bad input; if one ever did, its state is still a
        // valid (if stale) cache, so poisoning is not a reason to stop serving.
        self.inner.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cold]
    async fn slow_path(&self) -> Result<AuthorizationHeader, Error> {
        if self.inner.cell.is_dead() {
            self.revive_from_store().await;
        }
        let fresh = |cached: &Cached, now| now < cached.serve_until;
        let valid = |cached: &Cached, now| cached.tokens.access_valid(now, COARSE_CLOCK_MARGIN);
        let want = Want { fresh: &fresh, valid: &valid, accept: &|_| true };
        let had_token = self.inner.cell.slot().load().is_some();
        self.inner
            .cell
            .get(&want, |held| {
                // Still valid: one caller refreshes early while the others carry on (the cell serves
                // them the held token, and keeps serving it if this refresh fails).
                let reason = match (held, had_token) {
                    (Some(_), _) => RefreshReason::NearExpiry,
                    (None, true) => RefreshReason::Expired,
                    (None, false) => RefreshReason::Startup,
                };
                self.attempt_in_cell(reason, None)
            })
            .await
            .map(AuthorizationHeader::new)
    }

    /// One attempt of the cell: the protocol with the policy, then, on failure, a still-valid
    /// stored token adopted (the cell serves it), and a dead credential dropped.
    async fn attempt_in_cell(&self, reason: RefreshReason, rejected: Option<Secret>) -> Result<Arc<Cached>, Failed> {
        *locked(&self.inner.presented) = None;
        self.inner.unsaved.store(false, Ordering::Relaxed);
        let error = match self.refresh_locked(reason, rejected.clone()).await {
            Ok(header) => return Ok(Arc::clone(header.cached())),
            Err(error) => error,
        };
        // A session without a token of its own (a new process) may find one in the store that is
        // due for an early refresh but still valid: like an early refresh, a failed refresh keeps
        // serving it rather than failing the caller (the cell serves what the slot holds).
        if reason != RefreshReason::Login
            && self.inner.cell.slot().load().is_none()
            && let Ok(Some(stored)) = self.inner.store.load(&self.inner.key).await
            && stored.access_valid(self.inner.clock.now(), COARSE_CLOCK_MARGIN)
            && rejected.as_ref().is_none_or(|rejected| *rejected != stored.access_token)
        {
            warn!(key = %self.inner.key, %error, "early refresh failed; still serving the valid stored token");
            self.adopt(stored);
        }
        let mut failed = Failed::classify(error);
        // A rotation that could not be saved is served, but whoever forced this refresh hears that
        // the store is broken (`tessera refresh --force` exits 1).
        failed.serve_held = !(self.inner.unsaved.load(Ordering::Relaxed) && reason == RefreshReason::Forced);
        if failed.dead {
            self.drop_dead_credential(&failed.error, reason).await;
            if reason == RefreshReason::NearExpiry {
                // An early refresh did not ask the policy (a valid token is still held): the cell
                // is not dead yet, but nothing is tried again before the token expires (a refused
                // password is never retried early). The attempt after expiry asks the policy
                // (reauthenticate?), and its final failure makes the cell dead.
                failed.dead = false;
                failed.until_expiry = true;
            } else if reason == RefreshReason::Login && self.holds_refresh_token() {
                // A failed explicit login (a wrong code, a refused browser sign-in) says nothing
                // about the refresh token the session still holds: it keeps refreshing, at once.
                failed.dead = false;
                failed.record = false;
            }
        } else if reason == RefreshReason::NearExpiry {
            warn!(key = %self.inner.key, error = %failed.error, "early refresh failed; still serving the valid token, the next attempt is postponed");
        } else if failed.serve_held
            && self
                .inner
                .cell
                .slot()
                .load()
                .as_ref()
                .is_some_and(|c| c.tokens.access_valid(self.inner.clock.now(), COARSE_CLOCK_MARGIN))
        {
            // A valid token is served instead (e.g. new tokens that could not be saved): the
            // callers do not hear of this failure, so it is logged.
            warn!(key = %self.inner.key, error = %failed.error, "refresh failed; the next attempt is postponed");
        } else {
            // Not a warning: the callers get this error itself (a CLI printed it twice, once as a log line).
            debug!(key = %self.inner.key, error = %failed.error, "refresh failed; the next attempt is postponed");
        }
        Err(failed)
    }

    /// After a final failure: forget the dead refresh token here (the still-valid access token,
    /// if any, keeps being served) and in the store, so that no process presents it again, and
    /// remember what the store holds (a different token stored later revives the session).
    async fn drop_dead_credential(&self, error: &Error, reason: RefreshReason) {
        let presented = locked(&self.inner.presented).take();
        if reason == RefreshReason::Login {
            // A refused login is its caller's own result (the CLI prints it in words): a warning
            // would say it twice, the second time in protocol terms.
            debug!(key = %self.inner.key, %error, "login failed: nothing more is sent until a new login");
        } else if presented.is_some() {
            // A grant ended (its refresh token was refused): worth a line in a daemon's log.
            warn!(key = %self.inner.key, %error, "final failure: nothing more is sent until a new login");
        } else {
            // Nothing held was lost (e.g. never logged in): the caller's error says it all.
            debug!(key = %self.inner.key, %error, "final failure: nothing more is sent until a new login");
        }
        if error.oauth_code() == Some(&tessera_core::OAuthErrorCode::InvalidClient)
            && let Err(store_error) = self.forget_registered_client().await
        {
            warn!(key = %self.inner.key, %store_error, "could not drop the forgotten client's login from the store");
        }
        let refresh_token_dead = error.requires_reauthentication()
            || error.oauth_code() == Some(&tessera_core::OAuthErrorCode::InvalidGrant);
        // Only the refresh token that was presented and refused is dead (a failed login presented none).
        if refresh_token_dead && let Some(presented) = &presented {
            self.drop_cached_refresh_token(presented);
        }
        let store = &self.inner.store;
        let witness = async {
            if refresh_token_dead && let Some(presented) = presented {
                let lock = store.lock(&self.inner.key, self.inner.settings.lock_timeout).await?;
                let result = async {
                    let mut stored = store.load(&self.inner.key).await?;
                    // Only if it is still the one that was refused: another process may have
                    // stored a good one meanwhile, and then the store holds no witness of our
                    // failure (the next call adopts what it holds).
                    match stored.as_mut() {
                        Some(tokens) if tokens.refresh_token.as_ref() == Some(&presented) => {
                            tokens.refresh_token = None;
                            tokens.refresh_expires_at = None;
                            store.save(&self.inner.key, tokens).await?;
                        }
                        // Already dropped by this attempt (`forget_dropped_refresh_token`): the witness.
                        Some(tokens) if tokens.refresh_token.is_none() => {}
                        Some(_) => return Ok(None),
                        None => {}
                    }
                    Ok::<_, Error>(stored)
                }
                .await;
                lock.release().await?;
                result
            } else {
                store.load(&self.inner.key).await
            }
        }
        .await;
        match witness {
            Ok(stored) => {
                *locked(&self.inner.dead_witness) = stored.map(|tokens| (tokens.access_token, tokens.refresh_token));
            }
            Err(store_error) => {
                warn!(key = %self.inner.key, %store_error, "could not drop the dead refresh token from the store");
                *locked(&self.inner.dead_witness) = None;
            }
        }
    }

    /// The server refused the client (`invalid_client`): if tessera registered it
    /// ([`TokenSet::registered_client`], a resource-first login), the server forgot it, and
    /// everything issued to it is dead. The login and the registration leave the store, so that
    /// the next [`Session::for_resource`] registers again and logs in afresh.
    async fn forget_registered_client(&self) -> Result<(), Error> {
        let store = &self.inner.store;
        let lock = store.lock(&self.inner.key, self.inner.settings.lock_timeout).await?;
        let result = async {
            let registered = store.load(&self.inner.key).await?.and_then(|stored| stored.registered_client);
            let ours = self.engine().config(&self.inner.key).map(|config| config.client.client_id.clone());
            if let Some(registered) = registered
                && Some(&registered.client_id) == ours.as_ref()
            {
                warn!(key = %self.inner.key, client_id = %registered.client_id, "the server no longer knows the client registered for this login: the login and the registration are dropped, the next login registers again");
                store.clear(&self.inner.key).await?;
            }
            Ok(())
        }
        .await;
        lock.release().await?;
        result
    }

    /// Forgets `refresh_token` if the cached set holds it; a still-valid access token keeps being served.
    fn drop_cached_refresh_token(&self, refresh_token: &Secret) {
        let Some(cached) = self.inner.cell.slot().load_full() else { return };
        if cached.tokens.refresh_token.as_ref() != Some(refresh_token) {
            return;
        }
        let mut tokens = cached.tokens.clone();
        tokens.refresh_token = None;
        tokens.refresh_expires_at = None;
        self.engine().set_tokens(&self.inner.key, Some(tokens.clone()));
        let replacement = tokens.access_valid(self.inner.clock.now(), COARSE_CLOCK_MARGIN).then(|| {
            let serve_until = tokens.expires_at.map_or(cached.serve_until, |at| at - COARSE_CLOCK_MARGIN);
            Arc::new(Cached { header: cached.header.clone(), tokens, serve_until })
        });
        self.inner.cell.slot().compare_and_swap(&cached, replacement);
    }

    /// The refresh-token grant's configured refresh token (what its login presents).
    fn configured_refresh_token(&self) -> Option<Secret> {
        match self.engine().config(&self.inner.key).map(|config| &config.grant) {
            Some(Grant::RefreshToken { refresh_token }) => Some(refresh_token.clone()),
            _ => None,
        }
    }

    /// The set to refresh from: the stored one (else ours), without a refresh token the ledger says
    /// is spent (then the engine logs in instead, or says that someone must) — unless ours holds
    /// another one that is not (a rotation this process got but could not save).
    async fn usable_tokens(
        &self,
        stored: Option<TokenSet>,
        cached: Option<TokenSet>,
    ) -> Result<Option<TokenSet>, Error> {
        let Some(mut tokens) = stored.or(cached.clone()) else { return Ok(None) };
        let spent = &self.inner.spent;
        let Some(refresh_token) = &tokens.refresh_token else { return Ok(Some(tokens)) };
        if !spent.contains(&self.inner.key, refresh_token).await? {
            return Ok(Some(tokens));
        }
        if let Some(ours) = cached
            && let Some(own) = ours.refresh_token.as_ref().filter(|own| *own != refresh_token)
            && !spent.contains(&self.inner.key, own).await?
        {
            debug!("the stored refresh token is spent: refreshing with ours");
            return Ok(Some(ours));
        }
        debug!("the held refresh token is spent: not presented");
        tokens.refresh_token = None;
        tokens.refresh_expires_at = None;
        Ok(Some(tokens))
    }

    /// The engine dropped the refresh token this attempt presented (refused, or its answer lost),
    /// and may now log in: forget it first, so that a crash during that login leaves nothing that
    /// presents it. A lost answer goes in the ledger (the token may be spent); the token leaves the
    /// cache and the store (whose lock the caller holds). Store trouble is logged: the caller gets
    /// the refresh's own outcome.
    async fn forget_dropped_refresh_token(&self, reason: DropReason) {
        let Some(presented) = locked(&self.inner.presented).clone() else { return };
        let presented = &presented;
        if reason == DropReason::OutcomeUnknown {
            warn!(key = %self.inner.key, "a refresh lost its answer: its refresh token may be spent and is never presented again");
            if let Err(error) = self.inner.spent.record(&self.inner.key, presented).await {
                warn!(key = %self.inner.key, %error, "could not record the refresh token as spent");
            }
        }
        self.drop_cached_refresh_token(presented);
        let store = &self.inner.store;
        let dropped = async {
            if let Some(mut stored) = store.load(&self.inner.key).await?
                && stored.refresh_token.as_ref() == Some(presented)
            {
                stored.refresh_token = None;
                stored.refresh_expires_at = None;
                store.save(&self.inner.key, &stored).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(store_error) = dropped.await {
            warn!(key = %self.inner.key, %store_error, "could not drop the spent refresh token from the store");
        }
    }

    /// True when the session holds a refresh token it may still present.
    fn holds_refresh_token(&self) -> bool {
        let now = self.inner.clock.now();
        self.inner.cell.slot().load().as_ref().is_some_and(|cached| {
            cached.tokens.refresh_token.is_some() && cached.tokens.refresh_valid(now, Duration::ZERO)
        })
    }

    /// A dead session reads (never sends) the store: a token another process stored since the
    /// final failure (`tessera login` in another terminal) revives it.
    async fn revive_from_store(&self) {
        let Ok(Some(stored)) = self.inner.store.load(&self.inner.key).await else { return };
        if locked(&self.inner.dead_witness)
            .as_ref()
            .is_some_and(|(access, refresh)| *access == stored.access_token && *refresh == stored.refresh_token)
        {
            return;
        }
        let now = self.inner.clock.now();
        if stored.access_valid(now, COARSE_CLOCK_MARGIN) {
            let leader = self.inner.cell.exclusive().await;
            let header = self.adopt(stored);
            let _ = leader.finish(Ok(Some(Arc::clone(header.cached()))), None);
        } else if stored.refresh_valid(now, Duration::ZERO) && stored.refresh_token.is_some() {
            // A new refresh token: worth one attempt.
            self.inner.cell.reset();
        }
    }

    /// Steps 2–6 of the protocol with hooks, and the refresh policy on failure. The caller leads the cell's attempt.
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
                // 5. The stored set holds the newest refresh token; fall back to ours only if the store is
                // empty, or if the stored one is spent (a rotation this process could not save).
                let cached = self.inner.cell.slot().load().as_ref().map(|c| c.tokens.clone());
                let tokens = if login { stored.or(cached) } else { self.usable_tokens(stored, cached).await? };
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
                let refreshable = !login && tokens.as_ref().is_some_and(|t| t.refresh_valid(now, Duration::ZERO));
                // The refresh token this attempt presents: the one held, or the refresh-token grant's
                // configured one when it logs in. A spent one is never sent.
                let presented = if refreshable {
                    tokens.as_ref().and_then(|t| t.refresh_token.clone())
                } else {
                    self.configured_refresh_token()
                };
                if !refreshable
                    && let Some(configured) = &presented
                    && self.inner.spent.contains(&self.inner.key, configured).await?
                {
                    return Err(Error::ReauthenticationRequired {
                        reason: format!(
                            "the refresh token configured for {} is spent (the server rotated it, or a refresh presenting it lost its answer); presenting it again could be taken for reuse and revoke the grant: configure a new one",
                            self.inner.key
                        ),
                    });
                }
                *locked(&self.inner.presented) = presented.clone();
                let (actions, source) = {
                    let mut engine = self.engine();
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
                    Outcome::LoggedOut { .. } => return Err(Error::internal("unexpected logout outcome")),
                };
                // The configured refresh token came back rotated: it is spent for good (the store
                // now holds its successor, but a store can be wiped, the configuration cannot).
                if let Some(configured) = presented.as_ref().filter(|p| tokens.refresh_token.as_ref() != Some(*p))
                    && Some(configured) == self.configured_refresh_token().as_ref()
                    && let Err(error) = self.inner.spent.record(&self.inner.key, configured).await
                {
                    warn!(key = %self.inner.key, %error, "could not record the rotated configured refresh token as spent");
                }
                // 6. Save before releasing the lock: a rotated refresh token must be visible to the
                // next process before it can take the lock. If saving fails the new tokens still
                // serve this process, but the caller learns that the store is broken, and the
                // refresh token the store still holds is spent: no process may present it again.
                let header = self.adopt(tokens.clone());
                if let Err(error) = store.save(&self.inner.key, &tokens).await {
                    if let Some(spent) = presented.as_ref().filter(|p| tokens.refresh_token.as_ref() != Some(*p)) {
                        if let Err(ledger_error) = self.inner.spent.record(&self.inner.key, spent).await {
                            warn!(key = %self.inner.key, %ledger_error, "could not record the rotated refresh token as spent");
                        }
                        self.inner.unsaved.store(true, Ordering::Relaxed);
                    }
                    return Err(error);
                }
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
        self.inner.cell.slot().store(Some(Arc::clone(&cached)));
        AuthorizationHeader::new(cached)
    }

    /// Runs engine actions to completion, in order: sends requests, sleeps through waits, shows prompts.
    /// A browser prompt is answered by `loopback` when the login bound one, else by the prompter.
    /// A refresh token the engine drops is forgotten at once, before the login that may follow.
    async fn drive(&self, actions: Vec<Action>, mut loopback: Option<LoopbackReceiver>) -> Result<Outcome, Error> {
        let mut queue: VecDeque<Action> = actions.into();
        for _ in 0..MAX_STEPS {
            let Some(action) = queue.pop_front() else {
                return Err(Error::internal("the engine stopped without an outcome"));
            };
            let mut slept_until = None;
            let event = match action {
                Action::Send(request) => {
                    let request_id = request.id;
                    match self.inner.transport.execute(request).await {
                        Ok(response) => {
                            if is_slow_down(&response) {
                                // The flow waits 5 s longer between polls from now on (RFC 8628 §3.5):
                                // nothing for the person to do, so only a debug line.
                                debug!(key = %self.inner.key, "the server asked to poll less often (slow_down)");
                            }
                            Event::Response(response)
                        }
                        Err(error) => Event::TransportFailed { request_id, error },
                    }
                }
                Action::Wait { key, until } => {
                    let now = self.inner.clock.now();
                    tokio::time::sleep(until.duration_since(now)).await;
                    slept_until = Some(until);
                    Event::Timer { key }
                }
                // Not for a person: the workload's platform token, read afresh.
                Action::Prompt { key, prompt: Prompt::SubjectToken { source } } => {
                    match crate::workload_identity::read_subject_token(&source, self.inner.transport.as_ref()).await {
                        Ok(answer) => Event::Answer { key, answer },
                        Err(error) => Event::PromptFailed { key, error },
                    }
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
                Action::RefreshTokenDropped { reason, .. } => {
                    self.forget_dropped_refresh_token(reason).await;
                    continue;
                }
                Action::Done { tokens, .. } => return Ok(Outcome::Tokens(tokens)),
                Action::Failed { error, .. } => return Err(error),
                Action::LoggedOut { revoked, error, .. } => return Ok(Outcome::LoggedOut { revoked, error }),
                _ => return Err(Error::internal("unsupported engine action")),
            };
            // After sleeping the whole wait, its instant has come even if the wall clock lags,
            // stands still or stepped back meanwhile (otherwise the flow would wait again, and again).
            let now = self.inner.clock.now().max(slept_until.unwrap_or(Timestamp::EPOCH));
            queue.extend(self.engine().handle(event, now));
        }
        Err(Error::internal("token operation did not finish within its step limit"))
    }
}

/// The typed error for a scope the API at `url` needs and the session cannot get (RFC 6750 §3.1).
pub(crate) fn insufficient_scope_error(url: &str, status: u16, description: &str) -> Error {
    Error::OAuth {
        code: tessera_core::OAuthErrorCode::InsufficientScope,
        description: Some(description.to_owned()),
        status,
        endpoint: url.split(['?', '#']).next().unwrap_or_default().to_owned(),
    }
}

/// True for a device-flow poll answered `slow_down` (RFC 8628 §3.5).
fn is_slow_down(response: &tessera_core::HttpResponse) -> bool {
    response.status == 400
        && serde_json::from_slice::<serde_json::Value>(&response.body)
            .is_ok_and(|body| body.get("error").and_then(serde_json::Value::as_str) == Some("slow_down"))
}

/// Locks a std mutex whose data stays consistent even if a holder panicked.
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
                header.take().ok_or_else(|| Error::internal("authorization_header() future polled after completion")),
            ),
            HeaderFuture::Slow(future) => future.as_mut().poll(cx),
        }
    }
}

enum Outcome {
    Tokens(TokenSet),
    LoggedOut { revoked: bool, error: Option<Error> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{ClientAuth, Endpoints};

    fn static_session(i: usize) -> Session {
        let config = ProviderConfig {
            client: ClientAuth::public("t"),
            endpoints: Endpoints::explicit("http://127.0.0.1:9/token"),
            scope: None,
            grant: Grant::Static {
                access_token: Secret::new(format!("token-{i}")),
                expires_at: Some(SystemClock.now() + Duration::from_secs(3600)),
            },
        };
        let session = Session::builder(format!("drop-{i}"), config).build();
        futures_util::FutureExt::now_or_never(session.authorization_header()).unwrap().unwrap();
        session
    }

    fn occupied() -> usize {
        HEADERS.with(|table| table.borrow().occupied())
    }

    #[test]
    fn dropped_sessions_leave_no_per_thread_copies_behind() {
        let sessions: Vec<Session> = (0..10_000).map(static_session).collect();
        let mut tokens = Vec::new();
        for session in &sessions {
            let header = session.cached_header().unwrap();
            tokens.push(Arc::downgrade(header.cached()));
        }
        assert_eq!(occupied(), 10_000, "one copy per session on this thread");
        drop(sessions);
        // The next miss on this thread (a new session) sweeps the entries of the dropped ones.
        let survivor = static_session(10_000);
        assert_eq!(survivor.cached_header().unwrap().expose_secret(), "Bearer token-10000");
        assert_eq!(occupied(), 1, "only the live session's copy is left");
        assert!(tokens.iter().all(|token| token.upgrade().is_none()), "the dropped sessions' tokens are freed");
        HEADERS.with(|table| {
            let table = table.borrow();
            assert!(table.len() < 1_000, "the table shrinks (slots are reused lowest first)");
            assert_eq!(table.chunks(), table.len().div_ceil(32), "and so does its list of chunks");
        });
    }

    #[test]
    fn a_header_is_this_threads_copy_and_each_thread_has_its_own() {
        let session = static_session(0);
        let here = session.cached_header().unwrap();
        let again = session.cached_header().unwrap();
        assert!(Arc::ptr_eq(&here.chunk, &again.chunk) && here.index == again.index, "served from this thread's copy");
        let there = std::thread::scope(|scope| scope.spawn(|| session.cached_header().unwrap()).join().unwrap());
        assert!(!Arc::ptr_eq(&here.chunk, &there.chunk), "another thread has its own copy");
        assert!(Arc::ptr_eq(here.cached(), there.cached()), "of the same token");
        assert_eq!(here.to_header_value(), there.to_header_value());
        assert!(here.to_header_value().is_sensitive());
    }
}
