//! Where token sets live between calls and between processes, and the lock that makes a
//! refresh safe when several processes share one rotating refresh token.
//!
//! A store must never lose the newest completed write and never hand out a half-written one.
//! See docs/refresh-protocol.md for how [`crate::Session`] uses `load`, `lock` and `save`.

mod blocking;
mod config;
mod file;
mod local_copy;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;
mod resource_view;

pub use blocking::{BlockingAdapter, BlockingLockGuard, BlockingTokenStore};
pub use config::{OpenedStore, StoreConfig, open, open_by_kind, read_ca_file};
pub use file::FileStore;
pub(crate) use file::json_problem;
pub use local_copy::LocalCopyStore;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis_store::{RedisSettings, RedisStore};
pub(crate) use resource_view::ResourceView;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Error, TokenSet};

/// Persistence for token sets, keyed by a string (e.g. `context/provider`).
///
/// Implement it to keep tokens somewhere else; every method may be called concurrently.
///
/// ```
/// use std::{collections::HashMap, sync::Mutex, time::Duration};
/// use tessera::{Error, TokenSet, store::{TokenStore, StoreLock}};
///
/// #[derive(Debug, Default)]
/// struct MyStore(Mutex<HashMap<String, TokenSet>>);
///
/// #[async_trait::async_trait]
/// impl TokenStore for MyStore {
///     async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
///         self.0.lock().unwrap().insert(key.to_owned(), tokens.clone());
///         Ok(())
///     }
///     async fn clear(&self, key: &str) -> Result<(), Error> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     fn location(&self) -> String { "my store".into() }
/// }
/// ```
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// The tokens saved under `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error>;

    /// Saves `tokens` under `key`, atomically: a concurrent `load` sees the old or the new set, never a mix.
    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error>;

    /// Removes `key`.
    async fn clear(&self, key: &str) -> Result<(), Error>;

    /// Takes the store-wide lock for refreshing `key`, waiting at most `timeout`. Stores shared
    /// between processes must override this; the default (for process-local stores) returns at
    /// once, since the [`crate::Session`]'s own gate already serialises refreshes in one process
    /// (and sessions of one process that share a login, one per resource, take turns by
    /// themselves: see [`crate::SessionBuilder::resource`]).
    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let _ = (key, timeout);
        Ok(StoreLock::none())
    }

    /// Where the store is (path, URL or name), for messages.
    fn location(&self) -> String;

    /// Where sessions using this store remember the refresh tokens they must never present again,
    /// when the store has a place for that which outlives the process (a [`FileStore`]: a file
    /// beside its tokens). Default `None`: each session remembers in memory. See
    /// [`crate::SessionBuilder::spent_refresh_tokens`].
    fn spent_refresh_tokens(&self) -> Option<Arc<crate::SpentRefreshTokens>> {
        None
    }
}

/// A held store lock. Call [`StoreLock::release`]; dropping it also releases (without reporting errors).
#[must_use = "the lock is released when this is dropped"]
pub struct StoreLock {
    guard: Option<Box<dyn LockGuard>>,
}

/// What a store returns from [`TokenStore::lock`].
#[async_trait]
pub trait LockGuard: Send + Sync {
    /// Releases the lock.
    async fn release(self: Box<Self>) -> Result<(), Error>;
}

impl StoreLock {
    /// A lock that protects nothing (process-local stores).
    pub fn none() -> Self {
        StoreLock { guard: None }
    }

    /// Wraps a store's guard.
    pub fn new(guard: Box<dyn LockGuard>) -> Self {
        StoreLock { guard: Some(guard) }
    }

    /// Releases the lock.
    pub async fn release(mut self) -> Result<(), Error> {
        match self.guard.take() {
            Some(guard) => guard.release().await,
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock").field("held", &self.guard.is_some()).finish()
    }
}
