//! A shared store (Redis) with a private local copy of what it last said, served while it is
//! unreachable: a short-lived process (the CLI) that has no token in memory keeps getting its
//! still-valid token through an outage.
//!
//! The copy never holds more than the shared store: it is written after each successful read or
//! write of the shared store, and cleared when the shared store says a key is gone (or is told
//! to forget it). It is read only when the shared store is *unavailable* — an empty answer is
//! authoritative — and never while this store holds the key's refresh lock (the re-read under the
//! lock must be the shared store's). A copy is served without its refresh token: another machine
//! may have rotated it meanwhile, so it is never presented.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Error, StoreErrorKind, TokenSet};
use tracing::{debug, warn};

use super::{FileStore, LockGuard, StoreLock, TokenStore};
use crate::SpentRefreshTokens;

/// `shared`, with a local copy ([`FileStore`] format: 0600 file in a 0700 directory) served when
/// `shared` is unavailable.
///
/// The CLI puts one in front of every Redis store, under `$TESSERA_HOME/tokens/shared-copy/`.
#[derive(Clone, Debug)]
pub struct LocalCopyStore {
    shared: Arc<dyn TokenStore>,
    copy: FileStore,
    /// Keys whose refresh lock this store holds.
    locked: Arc<Mutex<HashSet<String>>>,
}

impl LocalCopyStore {
    /// `shared` with its copy in `dir` (created on first write). Nothing is touched until used.
    pub fn new(shared: Arc<dyn TokenStore>, dir: impl Into<PathBuf>) -> Self {
        LocalCopyStore { shared, copy: FileStore::new(dir), locked: Arc::default() }
    }

    /// The directory of the copy.
    pub fn copy_dir(&self) -> &Path {
        self.copy.dir()
    }

    /// Brings the copy of `key` in line with what the shared store said. Best effort: a copy that
    /// cannot be written only means an outage will not be bridged.
    async fn follow(&self, key: &str, tokens: Option<&TokenSet>) {
        let current = self.copy.load(key).await;
        let result = match (tokens, current) {
            (Some(tokens), Ok(Some(copy))) if copy == *tokens => Ok(()),
            (Some(tokens), _) => self.copy.save(key, tokens).await,
            (None, Ok(None)) => Ok(()),
            (None, _) => self.copy.clear(key).await,
        };
        if let Err(error) = result {
            debug!(key, %error, "the local copy of the shared store was not updated");
        }
    }
}

fn held(locked: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    locked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared store's lock, and the mark that keeps the copy out of reads while it is held.
struct CopyLockGuard {
    lock: Option<StoreLock>,
    key: String,
    locked: Arc<Mutex<HashSet<String>>>,
}

#[async_trait]
impl LockGuard for CopyLockGuard {
    async fn release(mut self: Box<Self>) -> Result<(), Error> {
        held(&self.locked).remove(&self.key);
        match self.lock.take() {
            Some(lock) => lock.release().await,
            None => Ok(()),
        }
    }
}

impl Drop for CopyLockGuard {
    fn drop(&mut self) {
        held(&self.locked).remove(&self.key);
    }
}

fn unavailable(error: &Error) -> bool {
    matches!(error, Error::Store { kind: StoreErrorKind::Unavailable, .. })
}

#[async_trait]
impl TokenStore for LocalCopyStore {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        match self.shared.load(key).await {
            Ok(tokens) => {
                self.follow(key, tokens.as_ref()).await;
                Ok(tokens)
            }
            Err(error) if unavailable(&error) && !held(&self.locked).contains(key) => match self.copy.load(key).await {
                Ok(Some(mut copy)) => {
                    warn!(key, %error, "the shared store is unavailable: using the local copy of its last answer");
                    copy.refresh_token = None;
                    copy.refresh_expires_at = None;
                    Ok(Some(copy))
                }
                _ => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        self.shared.save(key, tokens).await?;
        self.follow(key, Some(tokens)).await;
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        // The copy goes first and whatever happens to the shared store: a logout leaves nothing here.
        let copy = self.copy.clear(key).await;
        self.shared.clear(key).await?;
        copy
    }

    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let lock = self.shared.lock(key, timeout).await?;
        held(&self.locked).insert(key.to_owned());
        Ok(StoreLock::new(Box::new(CopyLockGuard {
            lock: Some(lock),
            key: key.to_owned(),
            locked: Arc::clone(&self.locked),
        })))
    }

    fn location(&self) -> String {
        self.shared.location()
    }

    /// The shared store can be wiped; the copy's directory outlives that.
    fn spent_refresh_tokens(&self) -> Option<Arc<SpentRefreshTokens>> {
        self.shared.spent_refresh_tokens().or_else(|| self.copy.spent_refresh_tokens())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::MemoryStore;
    use tessera_core::Timestamp;

    /// A memory store that can be switched off.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryStore,
        down: Mutex<bool>,
    }

    impl Flaky {
        fn check(&self) -> Result<(), Error> {
            if *self.down.lock().unwrap() {
                return Err(Error::store(StoreErrorKind::Unavailable, "flaky", "down"));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl TokenStore for Flaky {
        async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
            self.check()?;
            self.inner.load(key).await
        }
        async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
            self.check()?;
            self.inner.save(key, tokens).await
        }
        async fn clear(&self, key: &str) -> Result<(), Error> {
            self.check()?;
            self.inner.clear(key).await
        }
        fn location(&self) -> String {
            "flaky".into()
        }
    }

    #[tokio::test]
    async fn serves_the_copy_only_while_the_shared_store_is_unavailable_and_never_holds_more() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Flaky::default());
        let store = LocalCopyStore::new(shared.clone(), dir.path().join("copy"));
        let mut tokens = TokenSet::bearer("at-1", None, Timestamp::from_unix_secs(1));
        tokens.refresh_token = Some(tessera_core::Secret::new("rt-1"));
        store.save("k", &tokens).await.unwrap();

        *shared.down.lock().unwrap() = true;
        let mut served = tokens.clone();
        served.refresh_token = None;
        assert_eq!(
            store.load("k").await.unwrap(),
            Some(served),
            "the copy bridges the outage, its refresh token never presented"
        );
        let lock = store.lock("k", Duration::from_secs(1)).await.unwrap();
        assert!(store.load("k").await.is_err(), "under the refresh lock only the shared store answers");
        lock.release().await.unwrap();
        assert!(store.load("k").await.is_ok());
        assert!(store.load("other").await.is_err(), "no copy: the outage is reported");
        assert!(store.save("k", &tokens).await.is_err());

        *shared.down.lock().unwrap() = false;
        shared.inner.clear("k").await.unwrap(); // wiped (a restart without persistence)
        assert_eq!(store.load("k").await.unwrap(), None, "an empty answer is authoritative");
        *shared.down.lock().unwrap() = true;
        assert!(store.load("k").await.is_err(), "the copy followed the wipe");

        *shared.down.lock().unwrap() = false;
        store.save("k", &tokens).await.unwrap();
        *shared.down.lock().unwrap() = true;
        assert!(store.clear("k").await.is_err(), "the shared store is down");
        assert!(store.load("k").await.is_err(), "but the copy is gone: a logout leaves nothing here");
        assert!(store.spent_refresh_tokens().unwrap().path().unwrap().starts_with(dir.path()));
    }
}
