//! A Redis store for a fleet: tokens per key with a TTL, and a lease lock with fencing so that
//! one process among many machines refreshes a shared, rotating refresh token.
//!
//! Keys (with the default prefix `tessera:`):
//! - `tessera:tokens:<key>`: the token set as JSON, expiring with the refresh token (or, without
//!   one, with the access token, or a login's latest per-resource one), never sooner than
//!   [`RedisSettings::min_ttl`]; a login holding the client tessera registered does not expire;
//! - `tessera:lock:<key>`: the refresh lock, `SET NX PX <lease>` holding a fencing token;
//! - `tessera:fence:<key>`: the counter (`INCR`) the fencing tokens come from.
//!
//! While a holder works, a background task extends its lease (compare-and-`PEXPIRE`), so a slow
//! refresh keeps the lock. If the holder stalls longer than the lease (a paused VM, a stopped
//! process), the lease expires and the next waiter proceeds; when the stale holder wakes, its save
//! is rejected by the fencing check (a Lua script compares the lock's value with its token before
//! writing) with `Error::Store { kind: LockLost }`, so the store never goes back to older tokens.
//! Release is a compare-and-delete, so a stale holder never deletes someone else's lock.
//!
//! How `save` knows the fencing token: [`crate::Session`] calls `save(key, ..)` while it holds the
//! lock it took through this store, so the store remembers, per key, the fencing token of the lock
//! it currently holds; a `save` of a key whose lock this store holds is fenced, any other `save` is
//! a plain write. See docs/DECISIONS.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tessera_core::{Error, StoreErrorKind, Timestamp, TokenSet};
use tokio::sync::OnceCell;

use super::{LockGuard, StoreLock, TokenStore};

/// Tunables of a [`RedisStore`].
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// Prepended to every Redis key (namespace). Default `tessera:`.
    pub prefix: String,
    /// How long a refresh lock lives without renewal. Default 3 s, renewed every second while the
    /// holder works: a holder that dies delays the others by at most one lease.
    pub lease: Duration,
    /// Extend the lease while the holder works. Default true; turn off only to test stalls.
    pub renew_lease: bool,
    /// Shortest time a token set is kept (also used when neither token states an expiry and there is
    /// no refresh token). Default 5 min.
    pub min_ttl: Duration,
    /// Longest wait for one Redis command or connection attempt. Default 2 s.
    pub command_timeout: Duration,
    /// For `rediss://`: PEM certificate(s) of the CA to trust instead of the public roots (a
    /// private CA, a self-signed server). Default none.
    pub ca_certificate_pem: Option<Vec<u8>>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            prefix: "tessera:".to_owned(),
            lease: Duration::from_secs(3),
            renew_lease: true,
            min_ttl: Duration::from_secs(300),
            command_timeout: Duration::from_secs(2),
            ca_certificate_pem: None,
        }
    }
}

/// Tokens in Redis, shared by every process that reaches it (`redis://`, `rediss://`,
/// `redis://user:password@host:port/db`). Cheap to clone.
///
/// `Debug`, [`TokenStore::location`] and errors show the URL with its password replaced by `***`.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    location: String,
    settings: RedisSettings,
    /// Per store key: the fencing token of the lock this store currently holds.
    held: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("location", &self.inner.location).finish_non_exhaustive()
    }
}

const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0";

/// KEYS[1] tokens, KEYS[2] lock; ARGV[1] fencing token, ARGV[2] value, ARGV[3] TTL in ms (0: none).
const FENCED_SAVE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1";

impl RedisStore {
    /// A store at `url` with default settings. Parses the URL only: nothing connects until used.
    pub fn new(url: &str) -> Result<RedisStore, Error> {
        Self::with_settings(url, RedisSettings::default())
    }

    /// A store at `url` with these settings. Parses the URL only: nothing connects until used.
    pub fn with_settings(url: &str, settings: RedisSettings) -> Result<RedisStore, Error> {
        let redacted = redact_url(url);
        let location = format!("{redacted} (prefix {:?})", settings.prefix);
        let client = match &settings.ca_certificate_pem {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) },
            ),
            None => redis::Client::open(url),
        };
        let client = client.map_err(|e| {
            // redis's parse errors do not echo the URL; ours shows it redacted.
            Error::configuration(format!("invalid Redis URL {redacted}: {:?}", e.kind()))
        })?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                connection: OnceCell::new(),
                location,
                settings,
                held: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &RedisSettings {
        &self.inner.settings
    }

    /// The Redis key holding `key`'s token set.
    pub fn tokens_key(&self, key: &str) -> String {
        format!("{}tokens:{key}", self.inner.settings.prefix)
    }

    /// The Redis key of `key`'s refresh lock.
    pub fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{key}", self.inner.settings.prefix)
    }

    fn fence_key(&self, key: &str) -> String {
        format!("{}fence:{key}", self.inner.settings.prefix)
    }

    async fn connection(&self) -> Result<ConnectionManager, Error> {
        let inner = &self.inner;
        let connection = inner
            .connection
            .get_or_try_init(|| async {
                install_crypto_provider();
                let timeout = inner.settings.command_timeout;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(inner.client.clone(), config).await
            })
            .await
            .map_err(|e| self.error(&e, "cannot connect"))?;
        Ok(connection.clone())
    }

    fn error(&self, error: &redis::RedisError, what: &str) -> Error {
        let kind = if error.is_io_error()
            || error.is_connection_refusal()
            || error.is_timeout()
            || error.is_connection_dropped()
        {
            StoreErrorKind::Unavailable
        } else {
            StoreErrorKind::Io
        };
        // The error's kind and detail, never its full text: that could quote a command argument.
        // I/O errors (refused, reset, TLS: "invalid peer certificate") carry no argument: shown.
        let detail = match (error.kind(), error.detail()) {
            (kind, Some(detail)) => format!("{kind:?}: {detail}"),
            (kind, None) if error.is_io_error() => match std::error::Error::source(error) {
                Some(source) => format!("{kind:?}: {source}"),
                None => format!("{kind:?}"),
            },
            (kind, None) => format!("{kind:?}"),
        };
        Error::store(kind, self.inner.location.clone(), format!("{what}: {detail}"))
    }

    /// How long a token set is kept: until its refresh token expires (without one, its access
    /// token, or the latest of a login's per-resource access tokens), never less than `min_ttl`;
    /// `None` (no expiry) for a refresh token without a stated expiry, and for a login holding the
    /// client tessera registered for it (losing it would mean registering again).
    fn ttl(&self, tokens: &TokenSet) -> Option<Duration> {
        if tokens.registered_client.is_some() {
            return None;
        }
        let now = crate::clock::system_now();
        let until = if tokens.refresh_token.is_some() {
            tokens.refresh_expires_at?
        } else {
            let resources = tokens.resource_tokens.values().map(|entry| entry.expires_at);
            std::iter::once(tokens.expires_at)
                .chain(resources)
                .try_fold(Timestamp::EPOCH, |latest, at| Some(latest.max(at?)))?
        };
        Some(until.duration_since(now).max(self.inner.settings.min_ttl))
    }

    fn held_token(&self, key: &str) -> Option<u64> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    fn forget_held(&self, key: &str, token: u64) {
        let mut held = self.inner.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(key) == Some(&token) {
            held.remove(key);
        }
    }

    async fn try_acquire(&self, key: &str) -> Result<Option<u64>, Error> {
        let mut connection = self.connection().await?;
        let token: u64 = redis::Script::new(ACQUIRE)
            .key(self.lock_key(key))
            .key(self.fence_key(key))
            .arg(millis(self.inner.settings.lease))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.error(&e, "cannot take the refresh lock"))?;
        Ok((token != 0).then_some(token))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// rustls needs a process-wide crypto provider for `rediss://`; install ring's if the application has none.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The URL with its password (if any) replaced by `***`; unparsable URLs are not echoed at all.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(_) => tessera_core::provider_spec::redact_url(url),
        Err(_) => "<unparsable Redis URL>".to_owned(),
    }
}

struct RedisLockGuard {
    store: RedisStore,
    key: String,
    token: u64,
    renewal: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl RedisLockGuard {
    fn stop_renewal(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
    }
}

async fn release(store: &RedisStore, key: &str, token: u64) -> Result<(), Error> {
    store.forget_held(key, token);
    let mut connection = store.connection().await?;
    let _: i64 = redis::Script::new(RELEASE)
        .key(store.lock_key(key))
        .arg(token)
        .invoke_async(&mut connection)
        .await
        .map_err(|e| store.error(&e, "cannot release the refresh lock"))?;
    Ok(())
}

#[async_trait]
impl LockGuard for RedisLockGuard {
    async fn release(mut self: Box<Self>) -> Result<(), Error> {
        self.stop_renewal();
        self.released = true;
        release(&self.store, &self.key, self.token).await
    }
}

impl Drop for RedisLockGuard {
    fn drop(&mut self) {
        self.stop_renewal();
        if self.released {
            return;
        }
        self.store.forget_held(&self.key, self.token);
        // Dropped without `release()` (an error path, a cancelled future): release in the
        // background when a runtime is around; otherwise the lease expires on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key, token) = (self.store.clone(), std::mem::take(&mut self.key), self.token);
            runtime.spawn(async move {
                let _ = release(&store, &key, token).await;
            });
        }
    }
}

fn spawn_renewal(store: RedisStore, key: String, token: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lease = store.inner.settings.lease;
        let period = (lease / 3).max(Duration::from_millis(1));
        let script = redis::Script::new(RENEW);
        loop {
            tokio::time::sleep(period).await;
            let Ok(mut connection) = store.connection().await else { continue };
            let renewed: Result<i64, _> =
                script.key(store.lock_key(&key)).arg(token).arg(millis(lease)).invoke_async(&mut connection).await;
            match renewed {
                Ok(0) => {
                    tracing::warn!(key = %key, "refresh lock lease lost before renewal; a later save will be fenced off");
                    return;
                }
                Ok(_) => {}
                // Transient: try again next period (the lease may still be alive).
                Err(error) => tracing::debug!(key = %key, kind = ?error.kind(), "lease renewal failed"),
            }
        }
    })
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        let mut connection = self.connection().await?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.tokens_key(key))
            .query_async(&mut connection)
            .await
            .map_err(|e| self.error(&e, "cannot read tokens"))?;
        let Some(value) = value else { return Ok(None) };
        serde_json::from_slice(&value).map(Some).map_err(|e| {
            Error::store(
                StoreErrorKind::Corrupt,
                self.inner.location.clone(),
                format!(
                    "{} is not a token set ({} at column {}); left untouched",
                    self.tokens_key(key),
                    crate::store::json_problem(&e),
                    e.column()
                ),
            )
        })
    }

    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        let value = serde_json::to_vec(tokens).map_err(|e| {
            Error::store(StoreErrorKind::Io, self.inner.location.clone(), format!("cannot encode: {e}"))
        })?;
        let ttl = self.ttl(tokens).map_or(0, millis);
        let mut connection = self.connection().await?;
        match self.held_token(key) {
            Some(token) => {
                let written: i64 = redis::Script::new(FENCED_SAVE)
                    .key(self.tokens_key(key))
                    .key(self.lock_key(key))
                    .arg(token)
                    .arg(value)
                    .arg(ttl)
                    .invoke_async(&mut connection)
                    .await
                    .map_err(|e| self.error(&e, "cannot write tokens"))?;
                if written == 0 {
                    return Err(Error::store(
                        StoreErrorKind::LockLost,
                        self.inner.location.clone(),
                        format!(
                            "the refresh lock of {key:?} expired and was taken by another holder (our fencing token {token} is stale); this write was rejected"
                        ),
                    ));
                }
                Ok(())
            }
            None => {
                let mut command = redis::cmd("SET");
                command.arg(self.tokens_key(key)).arg(value);
                if ttl > 0 {
                    command.arg("PX").arg(ttl);
                }
                command.query_async::<()>(&mut connection).await.map_err(|e| self.error(&e, "cannot write tokens"))
            }
        }
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        let mut connection = self.connection().await?;
        redis::cmd("DEL")
            .arg(self.tokens_key(key))
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| self.error(&e, "cannot delete tokens"))
    }

    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(5);
        loop {
            if let Some(token) = self.try_acquire(key).await? {
                self.inner.held.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), token);
                let renewal =
                    self.inner.settings.renew_lease.then(|| spawn_renewal(self.clone(), key.to_owned(), token));
                return Ok(StoreLock::new(Box::new(RedisLockGuard {
                    store: self.clone(),
                    key: key.to_owned(),
                    token,
                    renewal,
                    released: false,
                })));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::store(
                    StoreErrorKind::LockTimeout,
                    self.inner.location.clone(),
                    format!("another process held the refresh lock of {key:?} for more than {timeout:?}"),
                ));
            }
            // Polling with a capped backoff and jitter: waiters on many machines do not hammer Redis in step.
            let jittered = delay.mul_f64(0.5 + fastrand::f64());
            tokio::time::sleep(jittered.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    fn location(&self) -> String {
        self.inner.location.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{Secret, Timestamp};

    #[test]
    fn urls_are_redacted_and_parsed() {
        assert_eq!(redact_url("redis://user:hunter2@localhost:6380/3"), "redis://user:***@localhost:6380/3");
        assert_eq!(redact_url("rediss://:hunter2@cache.example.com/"), "rediss://:***@cache.example.com/");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("not a url hunter2"), "<unparsable Redis URL>");
        let store = RedisStore::new("redis://alice:hunter2@127.0.0.1:1/2").unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        assert!(store.location().contains("alice:***@127.0.0.1:1/2"), "{}", store.location());
        assert!(RedisStore::new("rediss://u:p@example.com:6380/0").is_ok());
        let error = RedisStore::new("http://user:hunter2@x/").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn ttl_follows_the_refresh_token_with_a_floor() {
        let store = RedisStore::new("redis://127.0.0.1:1").unwrap();
        let now = crate::clock::system_now();
        let mut tokens = TokenSet::bearer("a", Some(now + Duration::from_secs(3600)), now);
        let hour = store.ttl(&tokens).unwrap();
        assert!(hour > Duration::from_secs(3590) && hour <= Duration::from_secs(3600), "{hour:?}");
        tokens.refresh_token = Some(Secret::new("r"));
        assert_eq!(store.ttl(&tokens), None, "a refresh token without a stated expiry is kept");
        tokens.refresh_expires_at = Some(now + Duration::from_secs(86_400));
        assert!(store.ttl(&tokens).unwrap() > Duration::from_secs(86_000));
        tokens.refresh_expires_at = Some(Timestamp::from_unix_secs(1));
        assert_eq!(store.ttl(&tokens), Some(Duration::from_secs(300)), "floor");
    }
}
