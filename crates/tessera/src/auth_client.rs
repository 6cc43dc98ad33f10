//! [`AuthClient`]: one place that knows every provider of a context — log in and out of one or
//! all, list them with their status, hand out credentials, refresh without the user.
//!
//! Operations on one named provider return its typed error; operations on all of them are best
//! effort: a failing provider is reported as `false` (and logged at `info`), never raised.
//!
//! Consumers ask for credentials by provider name: [`AuthClient::headers`] (ready-made HTTP
//! headers), [`AuthClient::token`] (a token set valid for at least a given time) and
//! [`AuthClient::logged_in`] (the server a provider is logged in to, or `None`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tessera_core::{Error, Secret, TokenSet};
use tracing::info;

use crate::config::Config;
use crate::provider::{AuthProvider, Capabilities, Credential, ProviderStatus};
use crate::registry::Registry;
use crate::session::LogoutOutcome;
use crate::store::TokenStore;

/// One row of [`AuthClient::list_providers`]. No secret.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderInfo {
    /// The provider's name.
    pub name: String,
    /// Its type (`password`, ... or a registered one).
    #[serde(rename = "type")]
    pub provider_type: String,
    /// Its status (`error` when the status could not be read).
    pub status: ProviderStatus,
    /// One line for people.
    pub description: String,
    /// Display-only facts from the provider.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// What it can do.
    pub capabilities: Capabilities,
    /// Why the status is `error`.
    pub error: Option<String>,
}

/// The providers of one context, behind one facade.
#[derive(Clone, Debug)]
pub struct AuthClient {
    context: String,
    providers: Vec<Arc<dyn AuthProvider>>,
}

impl AuthClient {
    /// A client over `providers` (names must be unique).
    pub fn new(context: impl Into<String>, providers: Vec<Arc<dyn AuthProvider>>) -> Result<Self, Error> {
        let context = context.into();
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = providers.iter().find(|p| !seen.insert(p.name().to_owned())) {
            return Err(Error::configuration(format!(
                "context {context:?}: provider {:?} is defined twice",
                twice.name()
            )));
        }
        Ok(AuthClient { context, providers })
    }

    /// Builds every provider of `context` (default: the configuration's current one) with the
    /// registry's factories; credentials go to `store`. Reads no secret and sends nothing; a bad
    /// field of any provider fails here, naming the file, context, provider and field.
    pub fn from_config(
        registry: &Registry,
        config: &Config,
        context: Option<&str>,
        store: Arc<dyn TokenStore>,
    ) -> Result<Self, Error> {
        let context = config.context(context)?;
        let providers = context
            .providers
            .iter()
            .map(|entry| registry.build(config, context, entry, Arc::clone(&store)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(context.name.clone(), providers)
    }

    /// The context's name.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Every provider, in configuration order.
    pub fn providers(&self) -> &[Arc<dyn AuthProvider>] {
        &self.providers
    }

    /// The named provider; the error lists the known names.
    pub fn provider(&self, name: &str) -> Result<&Arc<dyn AuthProvider>, Error> {
        self.providers.iter().find(|p| p.name() == name).ok_or_else(|| {
            Error::configuration(format!(
                "context {:?} has no provider named {name:?} (have: {})",
                self.context,
                self.names().join(", ")
            ))
        })
    }

    fn names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name()).collect()
    }

    fn unsupported(&self, name: &str, what: &str) -> Error {
        Error::configuration(format!("context {:?}, provider {name:?}: does not support {what}", self.context))
    }

    /// Logs in to `name`, or to every provider that can log in. One: `{name: true}` or its error.
    /// All: `{name: ok}` for each.
    pub async fn login(&self, name: Option<&str>) -> Result<BTreeMap<String, bool>, Error> {
        Ok(Self::to_flags(self.login_each(name).await?))
    }

    /// Like [`AuthClient::login`], with each provider's error (for reporting). With a name, a
    /// failure is returned as the error.
    pub async fn login_each(&self, name: Option<&str>) -> Result<Vec<(String, Result<(), Error>)>, Error> {
        if let Some(name) = name {
            let provider = self.provider(name)?;
            let login = provider.as_login().ok_or_else(|| self.unsupported(name, "login"))?;
            login.login().await?;
            return Ok(vec![(name.to_owned(), Ok(()))]);
        }
        let mut results = Vec::new();
        for provider in &self.providers {
            if let Some(login) = provider.as_login() {
                let result = login.login().await;
                if let Err(error) = &result {
                    info!(provider = provider.name(), %error, "login failed");
                }
                results.push((provider.name().to_owned(), result));
            }
        }
        Ok(results)
    }

    /// Logs out of `name`, or of every provider that can. One: `{name: true}` or its error.
    /// All: `{name: ok}` for each (a failed revocation still forgets the tokens: `true`).
    pub async fn logout(&self, name: Option<&str>) -> Result<BTreeMap<String, bool>, Error> {
        Ok(Self::to_flags(self.logout_each(name).await?))
    }

    /// Like [`AuthClient::logout`], with each provider's outcome.
    pub async fn logout_each(&self, name: Option<&str>) -> Result<Vec<(String, Result<LogoutOutcome, Error>)>, Error> {
        if let Some(name) = name {
            let provider = self.provider(name)?;
            let login = provider.as_login().ok_or_else(|| self.unsupported(name, "logout"))?;
            return Ok(vec![(name.to_owned(), Ok(login.logout().await?))]);
        }
        let mut results = Vec::new();
        for provider in &self.providers {
            if let Some(login) = provider.as_login() {
                let result = login.logout().await;
                if let Err(error) = &result {
                    info!(provider = provider.name(), %error, "logout failed");
                }
                results.push((provider.name().to_owned(), result));
            }
        }
        Ok(results)
    }

    /// Every provider with its status; a provider whose status fails is listed as `error`.
    pub async fn list_providers(&self) -> Vec<ProviderInfo> {
        let mut rows = Vec::with_capacity(self.providers.len());
        for provider in &self.providers {
            let (status, error) = match provider.status().await {
                Ok(status) => (status, None),
                Err(error) => (ProviderStatus::Error, Some(error.to_string())),
            };
            rows.push(ProviderInfo {
                name: provider.name().to_owned(),
                provider_type: provider.provider_type().to_owned(),
                status,
                description: provider.description(),
                extra: provider.extra_info(),
                capabilities: provider.capabilities(),
                error,
            });
        }
        rows
    }

    /// Is `name` authenticated — or, without a name, any provider? Errors count as `false`.
    pub async fn is_authenticated(&self, name: Option<&str>) -> bool {
        match name {
            Some(name) => match self.provider(name) {
                Ok(provider) => provider.is_authenticated().await.unwrap_or(false),
                Err(_) => false,
            },
            None => {
                for provider in &self.providers {
                    if provider.is_authenticated().await.unwrap_or(false) {
                        return true;
                    }
                }
                false
            }
        }
    }

    /// The credential of `name` (no network).
    pub async fn credential(&self, name: &str) -> Result<Credential, Error> {
        self.provider(name)?.credential().await
    }

    /// Refreshes `name` (its typed error on failure), or every provider that can refresh without
    /// the user (best effort: `{name: ok}`, never an error). `force` refreshes valid tokens too.
    pub async fn refresh_credentials(&self, name: Option<&str>, force: bool) -> Result<BTreeMap<String, bool>, Error> {
        if let Some(name) = name {
            let provider = self.provider(name)?;
            let refreshable = provider.as_refreshable().ok_or_else(|| self.unsupported(name, "refresh"))?;
            refreshable.refresh(force).await?;
            return Ok(BTreeMap::from([(name.to_owned(), true)]));
        }
        let mut results = BTreeMap::new();
        for provider in &self.providers {
            let Some(refreshable) = provider.as_refreshable() else { continue };
            if !refreshable.can_refresh().await {
                results.insert(provider.name().to_owned(), false);
                continue;
            }
            let ok = match refreshable.refresh(force).await {
                Ok(()) => true,
                Err(error) => {
                    info!(provider = provider.name(), %error, "refresh failed");
                    false
                }
            };
            results.insert(provider.name().to_owned(), ok);
        }
        Ok(results)
    }

    /// The HTTP headers to send for `name` (refreshed as needed; values are secrets): the
    /// provider's own ([`AuthProvider::as_http_headers`]), else `authorization: Bearer <token>`
    /// from its token ([`AuthProvider::as_token_source`]). A provider with neither, or an unknown
    /// name, is a configuration error; a failed refresh is its typed error.
    ///
    /// ```no_run
    /// # async fn example(client: tessera::AuthClient) -> Result<(), tessera::Error> {
    /// let headers = client.headers("catalog").await?;
    /// let mut request = reqwest::Client::new().get("https://catalog.example/api/packages");
    /// for (name, value) in &headers {
    ///     request = request.header(name.as_str(), value.expose_secret());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn headers(&self, name: &str) -> Result<Vec<(String, Secret)>, Error> {
        let provider = self.provider(name)?;
        if let Some(headers) = provider.as_http_headers() {
            return headers.headers().await;
        }
        let source = provider.as_token_source().ok_or_else(|| self.unsupported(name, "HTTP headers or tokens"))?;
        let tokens = source.token(Duration::ZERO).await?;
        Ok(vec![("authorization".to_owned(), Secret::new(format!("Bearer {}", tokens.access_token.expose_secret())))])
    }

    /// The token set of `name`, its access token valid for at least `min_valid` from now when the
    /// server allows it (refreshed, or logged in again when that needs nobody). A provider without
    /// the token capability, or an unknown name, is a configuration error.
    pub async fn token(&self, name: &str, min_valid: Duration) -> Result<TokenSet, Error> {
        let provider = self.provider(name)?;
        let source = provider.as_token_source().ok_or_else(|| self.unsupported(name, "tokens"))?;
        source.token(min_valid).await
    }

    /// quilt3's `logged_in()`: where `name` (or, without a name, the first provider in
    /// configuration order) is logged in, or `None` when it is not authenticated. The answer is
    /// the server from the provider's [`AuthProvider::auth_context`] (`url`, else `issuer`, else
    /// `token_endpoint`), else the provider's name for one that talks to no server (a static
    /// token). Never uses the network; errors (and unknown names) count as not logged in.
    pub async fn logged_in(&self, name: Option<&str>) -> Option<String> {
        let candidates: Vec<&Arc<dyn AuthProvider>> = match name {
            Some(name) => vec![self.provider(name).ok()?],
            None => self.providers.iter().collect(),
        };
        for provider in candidates {
            if provider.is_authenticated().await.unwrap_or(false) {
                return Some(server_of(provider.as_ref()));
            }
        }
        None
    }

    fn to_flags<T>(results: Vec<(String, Result<T, Error>)>) -> BTreeMap<String, bool> {
        results.into_iter().map(|(name, result)| (name, result.is_ok())).collect()
    }
}

/// The server a provider authenticates against, as [`AuthClient::logged_in`] reports it.
fn server_of(provider: &dyn AuthProvider) -> String {
    let context = provider.auth_context();
    ["url", "issuer", "token_endpoint"]
        .iter()
        .find_map(|field| context.get(*field).and_then(|value| value.as_str()).filter(|value| !value.is_empty()))
        .map_or_else(|| provider.name().to_owned(), str::to_owned)
}
