//! Token chains: a network login, a discovery token derived from it, and per-domain access tokens
//! derived from the discovery token — obtained, cached, refreshed and recovered automatically.
//!
//! ```text
//! network Session (any grant)  ──►  discovery stage  ──►  domain stage (one token per domain id)
//!   password, client credentials,     RFC 8693 exchange       RFC 8693 exchange or HTTP call,
//!   device code, ...                  or HTTP call            cached per domain
//! ```
//!
//! [`DomainClient`] owns the three stages. The top one is an ordinary [`Session`], so it keeps its
//! store, single flight and cross-process refresh. The lower ones are derived tokens held in
//! memory (and in [`DomainClient::save_state`]):
//!
//! - each stage's token is cached and re-derived from the stage above when it is within
//!   `refresh_threshold` of expiry (capped at half its lifetime), independently of the others;
//! - concurrent callers of one stage (one domain) cause one request; different domains derive in
//!   parallel; a cached access is read without any lock (`ArcSwap` loads only);
//! - a rejected token is replaced from the stage above: [`DomainClient::handle_unauthorized`] after
//!   a domain's API answered 401; a 401 / `invalid_token` from the discovery stage's token while
//!   deriving a domain re-derives discovery; only when the network token itself is refused does
//!   the network `Session` refresh (or log in again).
//!
//! No lock is held across a network call. Each stage's cache and single flight is a
//! [`RefreshCell`] (refresh_cell.rs): failures are shared by the callers that waited, postponed,
//! or final (the stage then sends nothing until new credentials arrive).
//! Stages are declared in code ([`ChainConfig`]); see docs/token-chains.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tessera_core::{Error, ProviderConfig, RequestId, Secret, Timestamp, TokenSet};
use tracing::{debug, warn};

// The stages, their requests and answers, the exported state and the configuration are the core's
// (tessera_core::chain), shared with the sans-I/O ChainMachine that the JSON engine drives.
use tessera_core::chain as stage;
pub use tessera_core::chain::{
    CHAIN_STATE_VERSION, ChainConfig, ChainState, DOMAIN_ID_PLACEHOLDER, DomainAccess, DomainServer, HttpCallStage,
    Stage, TokenExchangeStage,
};

use crate::clock::{Clock, SystemClock};
use crate::refresh_cell::{Expiring, Failed, RefreshCell, Want, is_final};
use crate::session::Session;
use crate::transport::{HttpTransport, TransportSettings};

/// The store key of the network session built by [`DomainClient::set_credentials`].
pub const DEFAULT_NETWORK_KEY: &str = "chain-network";

impl Expiring for TokenSet {
    fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
}

impl Expiring for DomainAccess {
    fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
}

/// One stage's cached value and its single flight (see refresh_cell.rs).
type Cell<T> = RefreshCell<T>;

type DomainCells = HashMap<String, Arc<Cell<DomainAccess>>>;

/// A network login plus derived discovery and per-domain tokens: one login serves any number of
/// domains. Cheap to clone (shared state); safe to use from any number of tasks.
///
/// ```no_run
/// # async fn example(network: tessera::ProviderConfig) -> Result<(), tessera::Error> {
/// use tessera::chain::{ChainConfig, DomainClient, Stage};
///
/// let chain = ChainConfig::new(
///     Stage::http_post("https://id.example/chain/discovery"),
///     Stage::http_post("https://id.example/chain/domains/{domain_id}/access"),
/// );
/// let client = DomainClient::new(tessera::Session::builder("network", network).build(), chain);
/// let access = client.get_domain_access("alpha").await?; // login → discovery → alpha, cached
/// // call access.domain_server.url with access.authorization_value(); after a 401:
/// let access = client.handle_unauthorized(&access).await?;
/// let saved = client.save_state()?; // tokens only, never credentials
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DomainClient {
    inner: Arc<Inner>,
}

struct Inner {
    chain: ChainConfig,
    network: ArcSwapOption<Session>,
    /// The network tokens last seen (or imported): exported by `save_state`, and used to derive
    /// while no credentials are set.
    last_network: ArcSwapOption<TokenSet>,
    discovery: Cell<TokenSet>,
    domains: ArcSwap<DomainCells>,
    transport: HttpTransport,
    clock: Option<Arc<dyn Clock>>,
    /// The clock of the stages' cells (`clock`, or the system clock).
    cell_clock: Arc<dyn Clock>,
    network_key: String,
    next_request: AtomicU64,
}

impl std::fmt::Debug for DomainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let domains: Vec<String> = self.inner.domains.load().keys().cloned().collect();
        f.debug_struct("DomainClient")
            .field("discovery", &self.inner.chain.discovery.endpoint())
            .field("domain", &self.inner.chain.domain.endpoint())
            .field("has_credentials", &self.inner.network.load().is_some())
            .field("domains", &domains)
            .finish_non_exhaustive()
    }
}

/// Builds a [`DomainClient`].
#[must_use]
pub struct DomainClientBuilder {
    chain: ChainConfig,
    network: Option<Session>,
    state: ChainState,
    clock: Option<Arc<dyn Clock>>,
    transport: TransportSettings,
    network_key: String,
}

impl DomainClientBuilder {
    /// The network login (top stage). Without one, only imported tokens serve until
    /// [`DomainClient::set_credentials`] or [`DomainClient::set_network_session`].
    pub fn network(mut self, session: Session) -> Self {
        self.network = Some(session);
        self
    }

    /// Starts from a document written by [`DomainClient::save_state`].
    pub fn state(mut self, json: &str) -> Result<Self, Error> {
        self.state = ChainState::from_json(json)?;
        Ok(self)
    }

    /// The clock (also given to a network session built by `set_credentials`). Default: system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// HTTP limits of the discovery and domain stages.
    pub fn transport(mut self, settings: TransportSettings) -> Self {
        self.transport = settings;
        self
    }

    /// Store key of a network session built by `set_credentials`. Default [`DEFAULT_NETWORK_KEY`].
    pub fn network_key(mut self, key: impl Into<String>) -> Self {
        self.network_key = key.into();
        self
    }

    /// Builds the client. Nothing is sent until a token is needed.
    pub fn build(self) -> DomainClient {
        let cell_clock: Arc<dyn Clock> = self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let cells: DomainCells = self
            .state
            .domains
            .into_iter()
            .map(|(id, access)| (id, Arc::new(new_cell(&cell_clock, Some(Arc::new(access))))))
            .collect();
        let discovery = new_cell(&cell_clock, self.state.discovery.map(Arc::new));
        DomainClient {
            inner: Arc::new(Inner {
                chain: self.chain,
                network: ArcSwapOption::new(self.network.map(Arc::new)),
                last_network: ArcSwapOption::new(self.state.network.map(Arc::new)),
                discovery,
                domains: ArcSwap::from_pointee(cells),
                transport: HttpTransport::new(self.transport),
                clock: self.clock,
                cell_clock,
                network_key: self.network_key,
                next_request: AtomicU64::new(1),
            }),
        }
    }
}

impl DomainClient {
    /// A client whose network login is `network`.
    pub fn new(network: Session, chain: ChainConfig) -> Self {
        Self::builder(chain).network(network).build()
    }

    /// Starts building a client for `chain`.
    pub fn builder(chain: ChainConfig) -> DomainClientBuilder {
        DomainClientBuilder {
            chain,
            network: None,
            state: ChainState::default(),
            clock: None,
            transport: TransportSettings::default(),
            network_key: DEFAULT_NETWORK_KEY.to_owned(),
        }
    }

    /// A client restored from [`DomainClient::save_state`] output. It holds no credentials: valid
    /// imported tokens serve at once without any request; call [`DomainClient::set_credentials`]
    /// so that expired ones can be replaced. An unknown format version, or JSON that does not
    /// parse, is an [`Error::Configuration`].
    pub fn from_state(json: &str, chain: ChainConfig) -> Result<Self, Error> {
        Ok(Self::builder(chain).state(json)?.build())
    }

    /// Gives the credentials of the network login (after [`DomainClient::from_state`], or to
    /// replace them): builds its [`Session`] (memory store, key [`DEFAULT_NETWORK_KEY`] unless
    /// set) and hands it the imported network tokens, so a valid imported token is used and a
    /// stale one is refreshed with its refresh token rather than by a new login.
    pub async fn set_credentials(&self, network: ProviderConfig) -> Result<(), Error> {
        let mut builder = Session::builder(self.inner.network_key.clone(), network);
        if let Some(clock) = &self.inner.clock {
            builder = builder.clock(Arc::clone(clock));
        }
        self.set_network_session(builder.build()).await
    }

    /// Uses `session` as the network login. Imported network tokens are saved to its store when
    /// the store holds none for its key.
    pub async fn set_network_session(&self, session: Session) -> Result<(), Error> {
        if let Some(imported) = self.inner.last_network.load_full()
            && session.store().load(session.key()).await?.is_none()
        {
            session.store().save(session.key(), &imported).await?;
        }
        self.inner.network.store(Some(Arc::new(session)));
        // New credentials: stages that died with the old ones may try again.
        self.inner.discovery.reset();
        for cell in self.inner.domains.load().values() {
            cell.reset();
        }
        Ok(())
    }

    /// The network session, when credentials are set.
    pub fn network_session(&self) -> Option<Session> {
        self.inner.network.load_full().map(|session| (*session).clone())
    }

    /// Runs the network stage alone: the network login's tokens (cached, refreshed or logged in
    /// by the session's own rules).
    pub async fn authenticate(&self) -> Result<TokenSet, Error> {
        self.network_tokens(None).await
    }

    /// Runs the chain down to the discovery stage: the discovery token (cached, or derived).
    pub async fn authenticate_discovery(&self) -> Result<TokenSet, Error> {
        Ok((*self.discovery_tokens(None).await?).clone())
    }

    /// Access to `domain_id`: cached, or derived through the whole chain (network login and
    /// discovery only when their own tokens need it). Concurrent callers for one domain share
    /// one request per stage.
    pub async fn get_domain_access(&self, domain_id: &str) -> Result<Arc<DomainAccess>, Error> {
        // Hot path first: a fresh cached access costs two ArcSwap loads and a clock read; the
        // large derivation future is boxed so that this one stays small.
        if let Some(access) = self.fresh_cached(domain_id) {
            return Ok(access);
        }
        Box::pin(self.domain_access(domain_id, None)).await
    }

    fn fresh_cached(&self, domain_id: &str) -> Option<Arc<DomainAccess>> {
        let cells = self.inner.domains.load();
        let access = cells.get(domain_id)?.load_full()?;
        self.fresh(access.expires_at, access.issued_at, self.now()).then_some(access)
    }

    /// The cached access to `domain_id` if it is still valid, without any request or lock.
    pub fn cached_domain_access(&self, domain_id: &str) -> Option<Arc<DomainAccess>> {
        let cells = self.inner.domains.load();
        let access = cells.get(domain_id)?.load_full()?;
        access.is_valid(self.now(), Duration::ZERO).then_some(access)
    }

    /// Call after a domain's server answered 401 to `rejected`: derives a new access for that
    /// domain (re-deriving discovery, then the network login, only if they are refused too).
    /// Callers that saw the same rejected token share one request; if it was already replaced,
    /// the replacement is returned.
    pub async fn handle_unauthorized(&self, rejected: &DomainAccess) -> Result<Arc<DomainAccess>, Error> {
        self.domain_access(&rejected.id, Some(&rejected.access_token)).await
    }

    /// Drops the cached access to `domain_id`: the next [`DomainClient::get_domain_access`]
    /// derives a new one.
    pub fn invalidate(&self, domain_id: &str) {
        if let Some(cell) = self.inner.domains.load().get(domain_id) {
            cell.store(None);
        }
    }

    /// The domain ids with a cached access (valid or not).
    pub fn cached_domain_ids(&self) -> Vec<String> {
        let cells = self.inner.domains.load();
        let mut ids: Vec<String> =
            cells.iter().filter(|(_, cell)| cell.load_full().is_some()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    /// The current tokens of every stage (never credentials).
    pub fn state(&self) -> ChainState {
        let network = self
            .inner
            .network
            .load()
            .as_ref()
            .and_then(|session| session.cached_header())
            .map(|header| header.tokens().clone())
            .or_else(|| self.inner.last_network.load_full().map(|tokens| (*tokens).clone()));
        let domains = self
            .inner
            .domains
            .load()
            .iter()
            .filter_map(|(id, cell)| Some((id.clone(), (*cell.load_full()?).clone())))
            .collect();
        ChainState { network, discovery: self.inner.discovery.load_full().map(|t| (*t).clone()), domains }
    }

    /// Exports the tokens of every stage and the cached domain accesses as versioned JSON (see
    /// [`ChainState`]). Never contains a password, client secret or TOTP secret; it does contain
    /// tokens, so store it like a token file.
    pub fn save_state(&self) -> Result<String, Error> {
        self.state().to_json()
    }

    fn now(&self) -> Timestamp {
        match &self.inner.clock {
            Some(clock) => clock.now(),
            None => SystemClock.now(),
        }
    }

    /// True when `expires_at` is further away than the refresh threshold (capped at half the lifetime).
    fn fresh(&self, expires_at: Option<Timestamp>, issued_at: Timestamp, now: Timestamp) -> bool {
        self.inner.chain.is_fresh(expires_at, issued_at, now)
    }

    async fn network_tokens(&self, rejected: Option<&Secret>) -> Result<TokenSet, Error> {
        let tokens = match self.inner.network.load_full() {
            Some(session) => {
                // A session already holding a token other than the refused one was refreshed
                // meanwhile: use that instead of forcing another refresh.
                let replaced = session.cached_header().filter(|h| rejected.is_some_and(|r| r != h.access_token()));
                let header = match (rejected, replaced) {
                    (None, _) => session.authorization_header().await?,
                    (Some(_), Some(header)) => header,
                    (Some(_), None) => session.handle_unauthorized().await?,
                };
                header.tokens().clone()
            }
            None => {
                let imported = self.inner.last_network.load_full();
                match imported {
                    Some(tokens)
                        if rejected.is_none_or(|r| *r != tokens.access_token)
                            && tokens.access_valid(self.now(), Duration::ZERO) =>
                    {
                        (*tokens).clone()
                    }
                    _ => {
                        return Err(Error::ReauthenticationRequired {
                            reason: "the chain's network token is missing or expired and no credentials are set \
                                     (call DomainClient::set_credentials)"
                                .into(),
                        });
                    }
                }
            }
        };
        self.inner.last_network.store(Some(Arc::new(tokens.clone())));
        Ok(tokens)
    }

    /// The discovery token: cached, or derived. `rejected`: the token a server just refused.
    async fn discovery_tokens(&self, rejected: Option<&Secret>) -> Result<Arc<TokenSet>, Error> {
        let cell = &self.inner.discovery;
        let accept = |tokens: &TokenSet| rejected.is_none_or(|r| *r != tokens.access_token);
        let fresh = |tokens: &TokenSet, now| self.fresh(tokens.expires_at, tokens.issued_at, now);
        if let Some(tokens) = cell.load_full().filter(|t| accept(t) && fresh(t, self.now())) {
            return Ok(tokens);
        }
        let valid = |tokens: &TokenSet, now| tokens.access_valid(now, Duration::ZERO);
        let want = Want { fresh: &fresh, valid: &valid, accept: &accept };
        cell.get(&want, |held| async move {
            match self.derive_discovery().await {
                Ok(tokens) => Ok(Arc::new(tokens)),
                Err(failure) => {
                    if held.is_some() {
                        warn!(error = %failure.error, "re-deriving the discovery token failed; still serving the valid one");
                    }
                    Err(self.failed(failure))
                }
            }
        })
        .await
    }

    async fn derive_discovery(&self) -> Result<TokenSet, StageFailure> {
        let stage = &self.inner.chain.discovery;
        let network = self.network_tokens(None).await.map_err(StageFailure::upstream)?;
        debug!(stage = "discovery", "deriving the discovery token");
        match self.call(stage, &network.access_token, None).await {
            Err(error) if stage::is_rejection(stage, &error) => {
                debug!(%error, "the network token was refused; replacing it");
                let network = self.network_tokens(Some(&network.access_token)).await.map_err(StageFailure::upstream)?;
                Ok(self.call(stage, &network.access_token, None).await.map_err(StageFailure::own)?.0)
            }
            result => Ok(result.map_err(StageFailure::own)?.0),
        }
    }

    fn cell(&self, domain_id: &str) -> Arc<Cell<DomainAccess>> {
        if let Some(cell) = self.inner.domains.load().get(domain_id) {
            return Arc::clone(cell);
        }
        let mut created = None;
        self.inner.domains.rcu(|cells| {
            let mut cells = DomainCells::clone(cells);
            let cell =
                cells.entry(domain_id.to_owned()).or_insert_with(|| Arc::new(new_cell(&self.inner.cell_clock, None)));
            created = Some(Arc::clone(cell));
            cells
        });
        // rcu ran the closure at least once; the last run's cell is the one installed.
        created.unwrap_or_else(|| Arc::new(new_cell(&self.inner.cell_clock, None)))
    }

    /// Classifies a stage's failure. Only the stage's own request can make its cell dead (a final
    /// error: nothing sent until `set_credentials` / `set_network_session`) or postpone it; an
    /// error from a stage above (the network session, the discovery stage) is passed through to
    /// the callers as it is: that stage postpones or dies on its own, and lives again on its own
    /// (a network login), so this one must not remember its error.
    fn failed(&self, failure: StageFailure) -> Failed {
        let StageFailure { error, own } = failure;
        Failed {
            dead: own && is_final(&error),
            serve_held: !hides_problem(&error),
            record: own,
            until_expiry: false,
            error,
        }
    }

    async fn domain_access(&self, domain_id: &str, rejected: Option<&Secret>) -> Result<Arc<DomainAccess>, Error> {
        stage::check_domain_id(domain_id)?;
        let cell = self.cell(domain_id);
        let accept = |access: &DomainAccess| rejected.is_none_or(|r| *r != access.access_token);
        let fresh = |access: &DomainAccess, now| self.fresh(access.expires_at, access.issued_at, now);
        let valid = |access: &DomainAccess, now| access.is_valid(now, Duration::ZERO);
        let want = Want { fresh: &fresh, valid: &valid, accept: &accept };
        cell.get(&want, |held| async move {
            match self.derive_domain(domain_id).await {
                Ok(access) => Ok(Arc::new(access)),
                Err(failure) => {
                    if held.is_some() {
                        warn!(domain = domain_id, error = %failure.error, "re-deriving a domain token failed; still serving the valid one");
                    }
                    Err(self.failed(failure))
                }
            }
        })
        .await
    }

    async fn derive_domain(&self, domain_id: &str) -> Result<DomainAccess, StageFailure> {
        let stage = &self.inner.chain.domain;
        let discovery = self.discovery_tokens(None).await.map_err(StageFailure::upstream)?;
        debug!(stage = "domain", domain = domain_id, "deriving a domain token");
        let access = match self.call(stage, &discovery.access_token, Some(domain_id)).await {
            Err(error) if stage::is_rejection(stage, &error) => {
                debug!(domain = domain_id, %error, "the discovery token was refused; re-deriving it");
                let discovery =
                    self.discovery_tokens(Some(&discovery.access_token)).await.map_err(StageFailure::upstream)?;
                self.call(stage, &discovery.access_token, Some(domain_id)).await.map_err(StageFailure::own)?.1
            }
            result => result.map_err(StageFailure::own)?.1,
        };
        access.ok_or_else(|| StageFailure::own(Error::internal("the domain stage produced no domain access")))
    }

    async fn call(
        &self,
        stage: &Stage,
        bearer: &Secret,
        domain_id: Option<&str>,
    ) -> Result<(TokenSet, Option<DomainAccess>), Error> {
        let retry = &self.inner.chain.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = RequestId(self.inner.next_request.fetch_add(1, Ordering::Relaxed));
            // A client assertion's jti: 128 bits from the operating system, per request (a stage
            // is retried with a new one: servers refuse a jti they have seen).
            let mut assertion_id = [0u8; 16];
            let assertion_id = getrandom::fill(&mut assertion_id).ok().map(|()| assertion_id);
            let request = stage::stage_request(id, stage, bearer, domain_id, self.now(), assertion_id)?;
            let result = match self.inner.transport.execute(request).await {
                Ok(response) => stage::parse_stage_response(stage, &response, domain_id, self.now()),
                Err(error) => Err(error),
            };
            let error = match result {
                Err(error) if error.is_transient() && attempt < retry.max_attempts => error,
                result => return result,
            };
            let Some(delay) = retry.delay_before_retry(attempt, &error, fastrand::f64()) else {
                return Err(error);
            };
            debug!(%error, attempt, ?delay, "a chain stage failed transiently; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Why deriving a stage's token failed, and whose request it was.
struct StageFailure {
    error: Error,
    /// True when the stage's own request failed; false when a stage above it did.
    own: bool,
}

impl StageFailure {
    fn own(error: Error) -> Self {
        StageFailure { error, own: true }
    }

    fn upstream(error: Error) -> Self {
        StageFailure { error, own: false }
    }
}

fn new_cell<T: Expiring>(clock: &Arc<dyn Clock>, value: Option<Arc<T>>) -> Cell<T> {
    RefreshCell::new(value, Arc::clone(clock))
}

/// Errors after which serving the old token would hide a real problem from the caller: a
/// configuration to fix, or a bug in tessera ([`Error::Internal`]). Which errors make a stage
/// dead is [`is_final`]'s decision, not this one's.
fn hides_problem(error: &Error) -> bool {
    matches!(error, Error::Configuration { .. } | Error::Internal { .. })
}
