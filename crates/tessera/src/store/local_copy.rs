//! A shared store (Redis) with a private local copy of what it last said, served while it is
//! unreachable: a short-lived process (the CLI) that has no token in memory keeps getting its
//! still-valid token through an outage.
//!
//! The copy never holds more than the shared store: it is written after each successful read or
//! write of the shared store, and cleared when the shared store says a key is gone (or is told
//! to forget it). It is read only when the shared store is *unavailable* — an empty answer is
//! authoritative. A refresh still needs the shared store's lock, so a copy is never used to
//! present a refresh token that another machine may have rotated meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Error, StoreErrorKind, TokenSet};
use tracing::{debug, warn};

use super::{FileStore, StoreLock, TokenStore};
use crate::SpentRefreshTokens;

/// `shared`, with a local copy ([`FileStore`] format: 0600 file in a 0700 directory) served when
/// `shared` is unavailable.
///
/// The CLI puts one in front of every Redis store, under `$TESSERA_HOME/shared-copy/`.
#[derive(Clone, Debug)]
pub struct LocalCopyStore {
    shared: Arc<dyn TokenStore>,
    copy: FileStore,
}

impl LocalCopyStore {
    /// `shared` with its copy in `dir` (created on first write). Nothing is touched until used.
    pub fn new(shared: Arc<dyn TokenStore>, dir: impl Into<PathBuf>) -> Self {
        LocalCopyStore { shared, copy: FileStore::new(dir) }
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
            Err(error) if unavailable(&error) => match self.copy.load(key).await {
                Ok(Some(copy)) => {
                    warn!(key, %error, "the shared store is unavailable: using the local copy of its last answer");
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
        self.shared.lock(key, timeout).await
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
        let tokens = TokenSet::bearer("at-1", None, Timestamp::from_unix_secs(1));
        store.save("k", &tokens).await.unwrap();

        *shared.down.lock().unwrap() = true;
        assert_eq!(store.load("k").await.unwrap(), Some(tokens.clone()), "the copy bridges the outage");
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
