//! The library's default store: a map in this process. Touches no file and no network.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tessera_core::{Error, TokenSet};

use super::TokenStore;

/// Tokens in memory, gone when the process exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, TokenSet>>,
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

    fn location(&self) -> String {
        "memory".to_owned()
    }
}
