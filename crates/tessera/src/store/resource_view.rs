//! One login, several resources (RFC 8707): what a session for one resource sees of a store that
//! keeps the login under one key.
//!
//! The store holds one [`TokenSet`] per login: its refresh token (one, rotated by whichever
//! resource refreshed last), its ID token and registered client, and each resource's access token
//! in [`TokenSet::resource_tokens`]. A session for a resource reads [`TokenSet::for_resource`] and
//! writes [`TokenSet::with_resource_tokens`], always under the store's lock for the login's key
//! (the session's protocol saves only while it holds it): so sessions for different resources,
//! in one process or many, take turns presenting the refresh token, and a rotation is never lost.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Error, TokenSet};

use super::{StoreLock, TokenStore};

/// A [`TokenStore`] seen by the session for `resource` (see the module docs). Built by
/// [`crate::SessionBuilder::resource`].
#[derive(Debug)]
pub(crate) struct ResourceView {
    inner: Arc<dyn TokenStore>,
    resource: String,
}

impl ResourceView {
    pub(crate) fn new(inner: Arc<dyn TokenStore>, resource: String) -> Self {
        ResourceView { inner, resource }
    }
}

#[async_trait]
impl TokenStore for ResourceView {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        Ok(self.inner.load(key).await?.map(|login| login.for_resource(&self.resource)))
    }

    /// Called with the lock of `key` held (the session's protocol), so the read and the write
    /// below are one step for every other session of the login.
    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        let stored = self.inner.load(key).await?;
        self.inner.save(key, &TokenSet::with_resource_tokens(stored, &self.resource, tokens)).await
    }

    /// A logout (or `clear`) ends the login, for every resource it served.
    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.inner.clear(key).await
    }

    async fn lock(&self, key: &str, timeout: Duration) -> Result<StoreLock, Error> {
        self.inner.lock(key, timeout).await
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn spent_refresh_tokens(&self) -> Option<Arc<crate::SpentRefreshTokens>> {
        self.inner.spent_refresh_tokens()
    }
}
