//! Stores with a blocking API (a synchronous database driver, an HTTP client without async, a
//! secrets manager SDK): implement [`BlockingTokenStore`] and wrap it in a [`BlockingAdapter`],
//! which runs every call on tokio's blocking pool so that no runtime thread ever waits on it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Error, StoreErrorKind, TokenSet};

use super::{LockGuard, StoreLock, TokenStore};

/// A token store with blocking methods. Wrap it in [`BlockingAdapter`] to use it as a [`TokenStore`].
///
/// ```
/// use std::{collections::HashMap, sync::{Arc, Mutex}};
/// use tessera::{Error, TokenSet, store::{BlockingAdapter, BlockingTokenStore, TokenStore}};
///
/// /// Stands for a store over a blocking client (e.g. a synchronous SQL driver).
/// #[derive(Debug, Default)]
/// struct Table(Mutex<HashMap<String, String>>);
///
/// impl BlockingTokenStore for Table {
///     fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
///         let rows = self.0.lock().unwrap();
///         rows.get(key).map(|json| serde_json::from_str(json).map_err(|e| Error::configuration(e.to_string()))).transpose()
///     }
///     fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
///         let json = serde_json::to_string(tokens).map_err(|e| Error::configuration(e.to_string()))?;
///         self.0.lock().unwrap().insert(key.to_owned(), json);
///         Ok(())
///     }
///     fn clear(&self, key: &str) -> Result<(), Error> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     fn location(&self) -> String { "table tokens".into() }
/// }
///
/// let store: Arc<dyn TokenStore> = Arc::new(BlockingAdapter::new(Table::default()));
/// ```
pub trait BlockingTokenStore: Send + Sync + std::fmt::Debug + 'static {
    /// The tokens saved under `key`, if any.
    fn load(&self, key: &str) -> Result<Option<TokenSet>, Error>;

    /// Saves `tokens` under `key`, atomically.
    fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error>;

    /// Removes `key`.
    fn clear(&self, key: &str) -> Result<(), Error>;

    /// Takes the refresh lock for `key`, waiting at most `timeout` (blocking is fine: this runs on
    /// the blocking pool). `None` (the default) means "no cross-process lock": only the
    /// [`crate::Session`]'s in-process gate serialises refreshes.
    fn lock(&self, key: &str, timeout: Duration) -> Result<Option<Box<dyn BlockingLockGuard>>, Error> {
        let _ = (key, timeout);
        Ok(None)
    }

    /// Where the store is, for messages (no secrets).
    fn location(&self) -> String;
}

/// A held lock of a [`BlockingTokenStore`].
pub trait BlockingLockGuard: Send + Sync + 'static {
    /// Releases the lock.
    fn release(self: Box<Self>) -> Result<(), Error>;
}

/// Runs a [`BlockingTokenStore`] on tokio's blocking pool: a [`TokenStore`] for any blocking client.
#[derive(Debug)]
pub struct BlockingAdapter<S> {
    store: Arc<S>,
}

impl<S: BlockingTokenStore> BlockingAdapter<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        BlockingAdapter { store: Arc::new(store) }
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.store
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&S) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| Error::store(StoreErrorKind::Io, self.store.location(), format!("store task failed: {e}")))?
    }
}

struct AdaptedGuard(Option<Box<dyn BlockingLockGuard>>);

#[async_trait]
impl LockGuard for AdaptedGuard {
    async fn release(mut self: Box<Self>) -> Result<(), Error> {
        match self.0.take() {
            Some(guard) => tokio::task::spawn_blocking(move || guard.release())
                .await
                .map_err(|e| Error::store(StoreErrorKind::Io, "blocking store", format!("store task failed: {e}")))?,
            None => Ok(()),
        }
    }
}

impl Drop for AdaptedGuard {
    fn drop(&mut self) {
        // Dropped without release (an error path): release anyway, off the runtime's threads when possible.
        if let Some(guard) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || guard.release())),
                Err(_) => drop(guard.release()),
            }
        }
    }
}

#[async_trait]
impl<S: BlockingTokenStore> TokenStore for BlockingAdapter<S> {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        let key = key.to_owned();
        self.run(move |store| store.load(&key)).await
    }

    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        let (key, tokens) = (key.to_owned(), tokens.clone());
        self.run(move |store| store.save(&key, &tokens)).await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        let key = key.to_owned();
        self.run(move |store| store.clear(&key)).await
    }

    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        let key = key.to_owned();
        match self.run(move |store| store.lock(&key, timeout)).await? {
            Some(guard) => Ok(StoreLock::new(Box::new(AdaptedGuard(Some(guard))))),
            None => Ok(StoreLock::none()),
        }
    }

    fn location(&self) -> String {
        self.store.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tessera_core::Timestamp;

    #[derive(Debug, Default)]
    struct Slow {
        rows: Mutex<HashMap<String, TokenSet>>,
        locked: Arc<Mutex<bool>>,
        releases: Arc<AtomicUsize>,
    }

    struct Guard(Arc<Mutex<bool>>, Arc<AtomicUsize>);

    impl BlockingLockGuard for Guard {
        fn release(self: Box<Self>) -> Result<(), Error> {
            *self.0.lock().unwrap() = false;
            self.1.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl BlockingTokenStore for Slow {
        fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
            std::thread::sleep(Duration::from_millis(20)); // a blocking call
            Ok(self.rows.lock().unwrap().get(key).cloned())
        }
        fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
            std::thread::sleep(Duration::from_millis(20));
            self.rows.lock().unwrap().insert(key.to_owned(), tokens.clone());
            Ok(())
        }
        fn clear(&self, key: &str) -> Result<(), Error> {
            self.rows.lock().unwrap().remove(key);
            Ok(())
        }
        fn lock(&self, key: &str, _timeout: Duration) -> Result<Option<Box<dyn BlockingLockGuard>>, Error> {
            let mut locked = self.locked.lock().unwrap();
            if *locked {
                return Err(Error::store(StoreErrorKind::LockTimeout, self.location(), format!("{key} is locked")));
            }
            *locked = true;
            Ok(Some(Box::new(Guard(Arc::clone(&self.locked), Arc::clone(&self.releases)))))
        }
        fn location(&self) -> String {
            "slow".into()
        }
    }

    /// Blocking calls run off the runtime: on a one-thread runtime a timer keeps ticking meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn runs_blocking_calls_off_the_runtime_and_releases_locks() {
        let adapter = BlockingAdapter::new(Slow::default());
        let tokens = TokenSet::bearer("t", None, Timestamp::from_unix_secs(1));
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                for _ in 0..100 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        adapter.save("k", &tokens).await.unwrap();
        assert_eq!(adapter.load("k").await.unwrap(), Some(tokens));
        assert!(ticks.load(Ordering::SeqCst) >= 5, "the runtime kept running during 40 ms of blocking calls");
        ticker.abort();

        let lock = adapter.lock("k", Duration::from_secs(1)).await.unwrap();
        assert!(adapter.lock("k", Duration::from_secs(1)).await.is_err());
        lock.release().await.unwrap();
        let dropped = adapter.lock("k", Duration::from_secs(1)).await.unwrap();
        drop(dropped);
        for _ in 0..100 {
            if adapter.get_ref().releases.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(adapter.get_ref().releases.load(Ordering::SeqCst), 2, "a dropped guard releases too");
        adapter.clear("k").await.unwrap();
        assert_eq!(adapter.load("k").await.unwrap(), None);
        assert_eq!(adapter.location(), "slow");
    }
}
