//! The library's default store: a map in this process. Touches no file and no network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Error, StoreErrorKind, TokenSet};

use super::{LockGuard, StoreLock, TokenStore};

/// Tokens in memory, gone when the process exits.
///
/// Its [`TokenStore::lock`] is a real lock per key: sessions of one process that share a login
/// (one per resource, [`crate::SessionBuilder::resource`]) take turns presenting its refresh token.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, TokenSet>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct MemoryLockGuard(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

#[async_trait]
impl LockGuard for MemoryLockGuard {
    async fn release(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenSet>> {
        // A panic while holding this lock cannot leave the map half-updated (single inserts/removes).
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        Ok(self.map().get(key).cloned())
    }

    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        self.map().insert(key.to_owned(), tokens.clone());
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.map().remove(key);
        Ok(())
    }

    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(locks.entry(key.to_owned()).or_default())
        };
        // Uncontended (nearly always): no timer, so no runtime is needed.
        if let Ok(guard) = Arc::clone(&lock).try_lock_owned() {
            return Ok(StoreLock::new(Box::new(MemoryLockGuard(guard))));
        }
        match tokio::time::timeout(timeout, lock.lock_owned()).await {
            Ok(guard) => Ok(StoreLock::new(Box::new(MemoryLockGuard(guard)))),
            Err(_) => Err(Error::store(
                StoreErrorKind::LockTimeout,
                "memory",
                format!("another session held the refresh lock of {key} for more than {timeout:?}"),
            )),
        }
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}
