//! One login, several resources (RFC 8707): what a session for one resource sees of a store that
//! keeps the login under one key.
//!
//! The store holds one [`TokenSet`] per login: its refresh token (one, rotated by whichever
//! resource refreshed last), its ID token and registered client, and each resource's access token
//! in [`TokenSet::resource_tokens`]. A session for a resource reads [`TokenSet::for_resource`] and
//! writes [`TokenSet::with_resource_tokens`], always under the store's lock for the login's key
//! (the session's protocol saves only while it holds it): so sessions for different resources,
//! in one process or many, take turns presenting the refresh token, and a rotation is never lost.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tessera_core::{Error, StoreErrorKind, StoredClient, TokenSet};

use super::{LockGuard, StoreLock, TokenStore};
use crate::SpentRefreshTokens;

/// What the sessions of one process share for one login (one store, one key): turns at presenting
/// its refresh token, and the refresh tokens never to present again. A store whose own lock is a
/// no-op (the default for process-local stores) or whose ledger is per session (none of its own)
/// would otherwise let two sessions for different resources present one refresh token twice.
#[derive(Default)]
struct Shared {
    turn: Arc<tokio::sync::Mutex<()>>,
    spent: Arc<SpentRefreshTokens>,
}

type Logins = HashMap<(usize, String), Weak<Shared>>;

static LOGINS: LazyLock<Mutex<Logins>> = LazyLock::new(Mutex::default);

/// The shared part of the login under `key` in `store` (by the store's address: one `Arc`, one
/// store), made on first use and dropped with its last view.
fn shared(store: &Arc<dyn TokenStore>, key: &str) -> Arc<Shared> {
    let mut logins = LOGINS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    logins.retain(|_, login| login.strong_count() > 0);
    let id = (Arc::as_ptr(store).cast::<()>() as usize, key.to_owned());
    if let Some(login) = logins.get(&id).and_then(Weak::upgrade) {
        return login;
    }
    let login = Arc::new(Shared::default());
    logins.insert(id, Arc::downgrade(&login));
    login
}

/// This process's turn and the store's own lock, released together.
struct Turn {
    _turn: tokio::sync::OwnedMutexGuard<()>,
    store: StoreLock,
}

#[async_trait]
impl LockGuard for Turn {
    async fn release(self: Box<Self>) -> Result<(), Error> {
        self.store.release().await
    }
}

/// A [`TokenStore`] seen by the session for `resource` (see the module docs). Built by
/// [`crate::SessionBuilder::resource`].
pub(crate) struct ResourceView {
    inner: Arc<dyn TokenStore>,
    /// The key of the session's login, and what this process's sessions of it share.
    key: String,
    shared: Arc<Shared>,
    resource: String,
    /// The client tessera registered for this session's login, when it did: a stored login of
    /// another client (a new registration and login elsewhere since this session was built) is
    /// never read nor overwritten, and a login saved without one is stamped with it.
    client: Option<StoredClient>,
}

impl std::fmt::Debug for ResourceView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceView")
            .field("inner", &self.inner)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl ResourceView {
    /// The view of the login under `key` in `inner` for `resource`.
    pub(crate) fn new(inner: Arc<dyn TokenStore>, key: &str, resource: String, client: Option<StoredClient>) -> Self {
        let shared = shared(&inner, key);
        ResourceView { inner, key: key.to_owned(), shared, resource, client }
    }

    /// What this process's sessions of the login under `key` share (a view serves one key).
    fn shared(&self, key: &str) -> Arc<Shared> {
        if key == self.key { Arc::clone(&self.shared) } else { shared(&self.inner, key) }
    }

    /// Refuses a stored login that belongs to another registered client than this session's.
    fn check_owner(&self, key: &str, stored: Option<&TokenSet>) -> Result<(), Error> {
        let theirs = stored.and_then(|login| login.registered_client.as_ref());
        match (&self.client, theirs) {
            (Some(ours), Some(theirs)) if ours.client_id != theirs.client_id => Err(Error::ReauthenticationRequired {
                reason: format!(
                    "the login kept under {key} now belongs to another client (registered for a new login since this session was built): build the session again to use it"
                ),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl TokenStore for ResourceView {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        let stored = self.inner.load(key).await?;
        self.check_owner(key, stored.as_ref())?;
        Ok(stored.map(|login| login.for_resource(&self.resource)))
    }

    /// Called with the lock of `key` held (the session's protocol), so the read and the write
    /// below are one step for every other session of the login.
    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        let stored = self.inner.load(key).await?;
        self.check_owner(key, stored.as_ref())?;
        let mut login = TokenSet::with_resource_tokens(stored, &self.resource, tokens);
        if login.registered_client.is_none() {
            login.registered_client = self.client.clone().map(Box::new);
        }
        self.inner.save(key, &login).await
    }

    /// A logout (or `clear`) ends the login, for every resource it served.
    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.inner.clear(key).await
    }

    /// This process's turn for the login first (sessions for its other resources wait), then the
    /// store's lock (other processes wait).
    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let started = Instant::now();
        let turn = Arc::clone(&self.shared(key).turn);
        let turn = match Arc::clone(&turn).try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => tokio::time::timeout(timeout, turn.lock_owned()).await.map_err(|_| {
                Error::store(
                    StoreErrorKind::LockTimeout,
                    self.inner.location(),
                    format!("another session of this process held the refresh lock of {key} for more than {timeout:?}"),
                )
            })?,
        };
        let store = self.inner.lock(key, timeout.saturating_sub(started.elapsed())).await?;
        Ok(StoreLock::new(Box::new(Turn { _turn: turn, store })))
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    /// The store's ledger, else one shared by this process's sessions of the login.
    fn spent_refresh_tokens(&self) -> Option<Arc<crate::SpentRefreshTokens>> {
        self.inner.spent_refresh_tokens().or_else(|| Some(Arc::clone(&self.shared.spent)))
    }
}
