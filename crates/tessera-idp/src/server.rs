//! The running server: [`IdpServer`] (start, control hooks, shutdown), the state shared by the
//! handlers, the router, and the per-endpoint middleware that counts requests and applies
//! injected faults before any protocol handling.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use totp_rs::{Secret, Totp};

use crate::authorize::AuthorizeState;
use crate::chain::{ChainControl, ChainState};
use crate::cognito::CognitoState;
use crate::config::{Client, IdpConfig, User};
use crate::conn::{ConnHandle, KillSwitchListener};
use crate::device::{DeviceHookError, DeviceState};
use crate::faults::{self, FaultEndpoint, FaultInjector, FaultKind};
use crate::keys::Keys;
use crate::otp::OtpState;
use crate::outbox::{Outbox, OutboxMessage};
use crate::stats::{Stats, StatsCell};
use crate::store::Store;
use crate::{authorize, chain, cognito, device, handlers, otp};

/// How long [`IdpServer::shutdown`] lets in-flight requests finish before it aborts the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdpError {
    /// [`IdpServer::start`] was called outside a tokio runtime.
    #[error("IdpServer::start must be called inside a tokio runtime")]
    NoRuntime,
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is inconsistent (duplicate names, bad TOTP secret, unknown grant...).
    #[error("invalid identity server configuration: {0}")]
    InvalidConfig(String),
    /// The signing key could not be generated.
    #[error("cannot create the signing key: {0}")]
    Key(String),
    /// The TLS identity (certificate, key) could not be made or used.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A user and, when they have a second factor, its verifier.
pub(crate) struct UserEntry {
    pub(crate) user: User,
    pub(crate) totp: Option<Totp>,
}

/// The clients: configured ones, and those registered at `POST /register` (RFC 7591) while the
/// server runs. Shared as `Arc`s so that a handler keeps its client while another registers.
#[derive(Default)]
pub(crate) struct Clients(std::sync::RwLock<HashMap<String, Arc<Client>>>);

impl Clients {
    pub(crate) fn new(clients: Vec<Client>) -> Self {
        Clients(std::sync::RwLock::new(clients.into_iter().map(|c| (c.client_id.clone(), Arc::new(c))).collect()))
    }

    pub(crate) fn get(&self, client_id: &str) -> Option<Arc<Client>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(client_id).cloned()
    }

    /// Adds a client. `Err` (and nothing changes) when its id is taken, or when the server
    /// already holds [`MAX_CLIENTS`]: open registration must not grow memory without bound.
    pub(crate) fn insert(&self, client: Client) -> Result<(), &'static str> {
        let mut clients = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if clients.len() >= MAX_CLIENTS {
            return Err("the server holds as many clients as it can");
        }
        if clients.contains_key(&client.client_id) {
            return Err("a client id was drawn twice");
        }
        clients.insert(client.client_id.clone(), Arc::new(client));
        Ok(())
    }
    /// Forgets a client (a test hook: a server that lost a registration). True when it was known.
    pub(crate) fn forget(&self, client_id: &str) -> bool {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(client_id).is_some()
    }
}

/// The most clients the server holds, configured and registered together.
pub(crate) const MAX_CLIENTS: usize = 10_000;

impl Clients {
    /// How many clients the server holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

/// State shared by every handler.
pub(crate) struct Shared {
    pub(crate) issuer: String,
    pub(crate) users: HashMap<String, UserEntry>,
    pub(crate) clients: Clients,
    pub(crate) keys: Keys,
    pub(crate) store: Store,
    pub(crate) api_keys: crate::api_keys::ApiKeyStore,
    pub(crate) stats: StatsCell,
    pub(crate) faults: FaultInjector,
    pub(crate) authorize: AuthorizeState,
    pub(crate) device: DeviceState,
    pub(crate) otp: OtpState,
    pub(crate) outbox: Outbox,
    pub(crate) cognito: CognitoState,
    pub(crate) chain: ChainState,
    pub(crate) jwt_bearer: crate::jwt_bearer::JwtBearerState,
    /// Public keys of `private_key_jwt` clients, and the `jti`s of their assertions.
    pub(crate) client_keys: crate::oauth::ClientKeys,
    pub(crate) rotate_refresh_tokens: bool,
    pub(crate) refresh_token_ttl: u64,
    /// Configured access token lifetime, restored by `/_test/reset`.
    pub(crate) default_access_token_ttl: u64,
    access_token_ttl: AtomicU64,
    /// Seconds added to the system clock for everything the server dates or checks (token
    /// `iat`/`exp`, refresh token expiry, TOTP): simulates a server whose clock is off.
    clock_offset: AtomicI64,
}

impl Shared {
    fn new(config: IdpConfig, issuer: String) -> Result<Self, IdpError> {
        config.validate().map_err(IdpError::InvalidConfig)?;
        let mut users = HashMap::new();
        for user in config.users {
            let totp = user
                .totp_secret
                .as_deref()
                .map(totp_verifier)
                .transpose()
                .map_err(|e| IdpError::InvalidConfig(format!("user `{}`: {e}", user.username)))?;
            users.insert(user.username.clone(), UserEntry { user, totp });
        }
        let client_keys = crate::oauth::ClientKeys::new(&config.clients).map_err(IdpError::InvalidConfig)?;
        let clients = Clients::new(config.clients);
        let jwt_bearer =
            crate::jwt_bearer::JwtBearerState::new(config.service_accounts).map_err(IdpError::InvalidConfig)?;
        let access_ttl = config.access_token_ttl.as_secs();
        Ok(Self {
            issuer,
            users,
            clients,
            keys: Keys::generate().map_err(IdpError::Key)?,
            store: Store::default(),
            api_keys: crate::api_keys::ApiKeyStore::new(config.api_key_prefix),
            stats: StatsCell::default(),
            faults: FaultInjector::default(),
            authorize: AuthorizeState::default(),
            device: DeviceState::new(config.device_code_ttl.as_secs(), config.device_poll_interval.as_secs()),
            otp: OtpState::default(),
            outbox: Outbox::default(),
            cognito: CognitoState::default(),
            chain: ChainState::default(),
            jwt_bearer,
            client_keys,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            refresh_token_ttl: config.refresh_token_ttl.as_secs(),
            default_access_token_ttl: access_ttl,
            access_token_ttl: AtomicU64::new(access_ttl),
            clock_offset: AtomicI64::new(0),
        })
    }

    /// Lifetime of access tokens issued now, in seconds.
    pub(crate) fn access_token_ttl(&self) -> u64 {
        self.access_token_ttl.load(Ordering::Relaxed)
    }

    pub(crate) fn set_access_token_ttl(&self, seconds: u64) {
        self.access_token_ttl.store(seconds, Ordering::Relaxed);
    }

    /// The server's idea of now (system clock plus the clock offset), in Unix seconds.
    pub(crate) fn now(&self) -> u64 {
        now().saturating_add_signed(self.clock_offset.load(Ordering::Relaxed))
    }

    /// [`Shared::now`] in milliseconds (device polling speed is measured with it).
    pub(crate) fn now_millis(&self) -> u64 {
        now_millis().saturating_add_signed(self.clock_offset.load(Ordering::Relaxed).saturating_mul(1000))
    }

    pub(crate) fn set_clock_offset(&self, seconds: i64) {
        self.clock_offset.store(seconds, Ordering::Relaxed);
    }

    /// Clears faults, forced `slow_down`s and counters, restores the configured access token
    /// lifetime and a correct clock.
    pub(crate) fn reset(&self) {
        self.faults.clear();
        self.device.reset_hooks();
        self.stats.reset();
        self.set_access_token_ttl(self.default_access_token_ttl);
        self.set_clock_offset(0);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// A TOTP verifier: RFC 6238 defaults (SHA-1, 6 digits, 30 s) accepting one step of skew.
fn totp_verifier(base32: &str) -> Result<Totp, String> {
    let normalized: String =
        base32.chars().filter(|c| !c.is_whitespace() && *c != '=').map(|c| c.to_ascii_uppercase()).collect();
    let secret = Secret::try_from_base32(&normalized).map_err(|e| format!("TOTP secret is not base32: {e:?}"))?;
    totp_rs::Builder::new().with_secret(secret).with_skew(1).build().map_err(|e| format!("unusable TOTP secret: {e}"))
}

/// A reference OAuth 2.0 / OpenID Connect server running on the current tokio runtime.
///
/// Dropping it stops the server too (in-flight requests finish first); [`shutdown`](Self::shutdown)
/// also waits for that.
///
/// ```no_run
/// # async fn f() -> Result<(), tessera_idp::IdpError> {
/// use tessera_idp::{IdpConfig, IdpServer};
///
/// let server = IdpServer::start(IdpConfig::demo()).await?;
/// let token_endpoint = server.url("/token");
/// // ... point a client at `server.issuer()` ...
/// assert_eq!(server.stats().token_requests, 0);
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct IdpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl fmt::Debug for IdpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpServer").field("issuer", &self.shared.issuer).finish_non_exhaustive()
    }
}

impl IdpServer {
    /// Validates `config`, binds its address and spawns the server on the current tokio
    /// runtime. Returns once the socket is listening.
    pub async fn start(config: IdpConfig) -> Result<IdpServer, IdpError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| IdpError::NoRuntime)?;
        let bind = config.bind;
        let test_endpoints = config.test_endpoints;
        let acceptor = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let listener = TcpListener::bind(bind).await.map_err(|source| IdpError::Bind { addr: bind, source })?;
        let addr = listener.local_addr().map_err(|source| IdpError::Bind { addr: bind, source })?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared::new(config, issuer_for(scheme, addr))?);

        let app = router(shared.clone(), test_endpoints).into_make_service_with_connect_info::<ConnHandle>();
        let (stop, stopped) = oneshot::channel::<()>();
        // Fires on `shutdown` and when the sender is dropped with the server.
        let stopped = async {
            let _ = stopped.await;
        };
        let listener = KillSwitchListener(listener);
        let task = match acceptor {
            None => {
                let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
                runtime.spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "identity server stopped with an error");
                    }
                })
            }
            Some(acceptor) => {
                let listener = crate::tls::TlsListener { inner: listener, acceptor };
                let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
                runtime.spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "identity server stopped with an error");
                    }
                })
            }
        };
        tracing::info!(issuer = %shared.issuer, "identity server listening");
        Ok(IdpServer { addr, shared, stop: Some(stop), task })
    }

    /// The issuer URL, e.g. `http://127.0.0.1:41234` (no trailing slash). Endpoint URLs are
    /// this plus their path.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The address the server listens on (the actual port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `issuer() + path`, e.g. `server.url("/token")`.
    pub fn url(&self, path: &str) -> String {
        self.shared.url(path)
    }

    /// The identifier (and URL) of the protected demo resource, `{issuer}/api/resource`
    /// (RFC 9728 metadata at `{issuer}/.well-known/oauth-protected-resource/api/resource`).
    pub fn demo_resource(&self) -> String {
        self.shared.url(crate::resource::RESOURCE_PATH)
    }

    /// The second protected demo resource, `{issuer}/api/files` (same rules, its own metadata):
    /// one login serves both.
    pub fn demo_files_resource(&self) -> String {
        self.shared.url(crate::resource::FILES_PATH)
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The fault queue of this server.
    pub fn faults(&self) -> FaultInjector {
        self.shared.faults.clone()
    }

    /// Sets the lifetime of access tokens issued from now on (whole seconds, rounded down).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.set_access_token_ttl(ttl.as_secs());
    }

    /// Moves the server's clock by `seconds` (negative: behind) relative to the system clock, for
    /// everything it dates or checks from now on: `iat`/`exp` of new tokens, the expiry checks of
    /// access and refresh tokens, TOTP codes. `expires_in` is a duration and does not change.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.shared.set_clock_offset(seconds);
    }

    /// Revokes every refresh token issued to `username`: the next refresh with any of them is
    /// answered `invalid_grant`. Access tokens already issued stay valid until they expire.
    pub fn revoke_all_refresh_tokens_of(&self, username: &str) {
        let count = self.shared.store.revoke_user_refresh_tokens(username);
        tracing::info!(username, count, "revoked refresh tokens of user");
    }

    /// Test hooks of the token chain endpoints (`/chain/*`): token lifetimes, revocation.
    pub fn chain(&self) -> ChainControl {
        ChainControl::new(self.shared.clone())
    }

    /// Every one-time-code email "sent" so far (generic `/otp/start` and Cognito challenges),
    /// oldest first. Also `GET /_test/outbox?to=<email>`.
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.shared.outbox.messages(None)
    }

    /// Approves the pending device authorization with `user_code` (any case, dashes optional)
    /// on behalf of `username`, as if they had used the verification page.
    pub fn approve_device(&self, user_code: &str, username: &str) -> Result<(), DeviceHookError> {
        device::approve(&self.shared, user_code, username)
    }

    /// Denies the pending device authorization with `user_code`: its next poll gets `access_denied`.
    pub fn deny_device(&self, user_code: &str) -> Result<(), DeviceHookError> {
        device::deny(&self.shared, user_code)
    }

    /// Answers the next `times` device-code polls (of any device code) with `slow_down`, each
    /// adding 5 s to that code's interval. Replaces an earlier count; `0` cancels.
    pub fn force_device_slow_down(&self, times: u32) {
        self.shared.device.force_slow_down(times);
    }

    /// Forgets a client, as a server that lost a registration would: requests naming it get
    /// `invalid_client`. True when it was known. Also `POST /_test/forget_client`.
    pub fn forget_client(&self, client_id: &str) -> bool {
        self.shared.clients.forget(client_id)
    }

    /// Makes every pending device code expire now: their next poll gets `expired_token`.
    /// Returns how many were pending.
    pub fn expire_device_codes(&self) -> usize {
        self.shared.device.expire_pending(self.shared.now())
    }

    /// What `POST /_test/reset` does: clears queued faults, forced `slow_down`s and counters,
    /// restores the configured access token lifetime and sets the clock offset back to 0. Issued
    /// tokens, pending logins and the outbox are kept.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s, then aborts)
    /// and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// The issuer for a bound address; an unspecified address (`0.0.0.0`, `::`) is reached
/// through loopback.
fn issuer_for(scheme: &str, addr: SocketAddr) -> String {
    let ip = addr.ip();
    let host = if ip.is_unspecified() {
        match ip {
            std::net::IpAddr::V4(_) => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(_) => "[::1]".to_owned(),
        }
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// Every route. Protocol endpoints sit behind [`instrument`]; `/_test/*` only when enabled.
fn router(shared: Arc<Shared>, test_endpoints: bool) -> Router {
    let instrumented = |endpoint: FaultEndpoint, route: MethodRouter<Arc<Shared>>| {
        route.layer(middleware::from_fn_with_state((shared.clone(), endpoint), instrument))
    };
    let mut app = Router::new()
        .route("/.well-known/openid-configuration", instrumented(FaultEndpoint::Discovery, get(handlers::discovery)))
        .route(
            "/.well-known/oauth-authorization-server",
            instrumented(FaultEndpoint::Discovery, get(handlers::discovery)),
        )
        .route(
            "/.well-known/oauth-protected-resource/api/resource",
            instrumented(FaultEndpoint::Discovery, get(crate::resource::metadata)),
        )
        .route(
            "/.well-known/oauth-protected-resource/api/files",
            instrumented(FaultEndpoint::Discovery, get(crate::resource::files_metadata)),
        )
        .route("/register", instrumented(FaultEndpoint::Register, post(crate::registration::register)))
        .route("/api/resource", instrumented(FaultEndpoint::Api, get(crate::resource::resource)))
        .route("/api/files", instrumented(FaultEndpoint::Api, get(crate::resource::files)))
        .route("/jwks", instrumented(FaultEndpoint::Jwks, get(handlers::jwks)))
        .route("/token", instrumented(FaultEndpoint::Token, post(handlers::token)))
        .route("/revoke", instrumented(FaultEndpoint::Revoke, post(handlers::revoke)))
        .route("/introspect", instrumented(FaultEndpoint::Introspect, post(handlers::introspect)))
        .route("/userinfo", instrumented(FaultEndpoint::Api, get(handlers::userinfo)))
        .route("/api/whoami", instrumented(FaultEndpoint::Api, get(crate::api_keys::whoami)))
        .route(
            "/authorize",
            instrumented(FaultEndpoint::Authorize, get(authorize::authorize_page).post(authorize::authorize_submit)),
        )
        .route(
            "/device_authorization",
            instrumented(FaultEndpoint::DeviceAuthorization, post(device::device_authorization)),
        )
        .route("/device", instrumented(FaultEndpoint::Authorize, get(device::device_page).post(device::device_submit)))
        .route("/otp/start", instrumented(FaultEndpoint::Otp, post(otp::start)))
        .route("/otp/verify", instrumented(FaultEndpoint::Otp, post(otp::verify)))
        .route("/cognito", instrumented(FaultEndpoint::Cognito, post(cognito::cognito)))
        .route("/cognito/", instrumented(FaultEndpoint::Cognito, post(cognito::cognito)))
        .route("/chain/discovery", post(chain::discovery))
        .route("/chain/domains", get(chain::list_domains))
        .route("/chain/domains/{id}/access", post(chain::domain_access))
        .route("/chain/domains/{id}/resource", get(chain::domain_resource))
        .merge(
            crate::api_keys::routes()
                .layer(middleware::from_fn_with_state((shared.clone(), FaultEndpoint::Api), instrument)),
        );
    if test_endpoints {
        app = app.merge(crate::test_api::routes()).route("/ci/github-actions/token", get(crate::ci::token));
    }
    app.with_state(shared)
}

/// Counts the request, then applies the next queued fault for `endpoint`, if any.
async fn instrument(
    State((shared, endpoint)): State<(Arc<Shared>, FaultEndpoint)>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    request: Request,
    next: Next,
) -> Response {
    shared.stats.update(|s| match endpoint {
        FaultEndpoint::Token => s.token_requests += 1,
        FaultEndpoint::Revoke => s.revocations += 1,
        FaultEndpoint::Introspect => s.introspections += 1,
        FaultEndpoint::Discovery => s.discovery_requests += 1,
        FaultEndpoint::Jwks => s.jwks_requests += 1,
        FaultEndpoint::Api | FaultEndpoint::Any => s.api_requests += 1,
        FaultEndpoint::Authorize => s.authorize_requests += 1,
        FaultEndpoint::DeviceAuthorization => s.device_authorization_requests += 1,
        FaultEndpoint::Otp => s.otp_requests += 1,
        FaultEndpoint::Cognito => s.cognito_requests += 1,
        FaultEndpoint::Register => s.registration_requests += 1,
    });
    let Some(fault) = shared.faults.take(endpoint) else {
        return next.run(request).await;
    };
    shared.stats.update(|s| s.faults_injected += 1);
    tracing::debug!(?endpoint, kind = ?fault.kind, delay = ?fault.delay, "injecting fault");
    if let Some(delay) = fault.delay
        && fault.kind != FaultKind::None
    {
        tokio::time::sleep(delay).await;
    }
    match fault.kind {
        FaultKind::None => {
            // A late answer to a request the server *did* process (a refresh token rotated, a
            // device code redeemed): handle it now, hold the answer back. A client that gives up
            // meanwhile has lost the outcome, which is exactly the case retry rules must survive.
            let response = next.run(request).await;
            if let Some(delay) = fault.delay {
                tokio::time::sleep(delay).await;
            }
            response
        }
        FaultKind::DropConnection => {
            // Read the request fully first, so closing the socket is a clean close rather
            // than a reset racing the client's write.
            let _ = axum::body::to_bytes(request.into_body(), 1 << 20).await;
            tracing::debug!(peer = %conn.peer, "dropping connection");
            conn.kill();
            ().into_response()
        }
        kind => faults::render(&kind).unwrap_or_else(|| ().into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_bounded_and_ids_unique() {
        let clients = Clients::new(IdpConfig::demo().clients);
        let demo = clients.len();
        assert!(clients.insert(Client::public(crate::demo::PUBLIC_CLIENT_ID, &[])).is_err(), "a taken id");
        for n in demo..MAX_CLIENTS {
            clients.insert(Client::public(format!("registered-{n}"), &[])).unwrap();
        }
        assert_eq!(clients.len(), MAX_CLIENTS);
        assert!(clients.insert(Client::public("one-too-many", &[])).is_err());
        assert!(clients.get("one-too-many").is_none() && clients.get("registered-9999").is_some());
    }

    #[test]
    fn issuer_uses_loopback_for_unspecified_addresses() {
        assert_eq!(issuer_for("http", "0.0.0.0:8080".parse().unwrap()), "http://127.0.0.1:8080");
        assert_eq!(issuer_for("http", "[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(issuer_for("http", "[::1]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(issuer_for("http", "127.0.0.1:1".parse().unwrap()), "http://127.0.0.1:1");
        assert_eq!(issuer_for("https", "127.0.0.1:1".parse().unwrap()), "https://127.0.0.1:1");
    }

    #[test]
    fn totp_secrets_are_checked() {
        assert!(totp_verifier(crate::demo::BOB_TOTP_SECRET).is_ok());
        assert!(totp_verifier("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").is_ok());
        assert!(totp_verifier("not base32!").is_err());
        assert!(totp_verifier("JBSWY3DP").is_err()); // 40 bits: too short for RFC 4226
    }
}
