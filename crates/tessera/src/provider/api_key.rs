//! The `api_key` provider type: a long-lived secret with a known prefix (default `qk_`), given as
//! an argument or read from an environment variable (default `TESSERA_API_KEY`), a file or the
//! keyring, and sent as `Authorization: Bearer <key>` (or in a header of your choice).
//!
//! There is nothing to refresh and nothing is sent to log in: "login" checks the key is there and
//! well-formed. The key is read when it is needed, so listing providers works without it.
//!
//! ```toml
//! [[contexts.auth_providers]]
//! name = "ci"
//! provider = "api_key"
//! api_key = "env:TESSERA_API_KEY"   # the default; or file:PATH, keyring:<service>/<account>
//! prefix = "qk_"                    # the default
//! header = "x-api-key"              # optional; default: Authorization: Bearer <key>
//! ```

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tessera_core::{Error, Secret, TokenSet};

use super::{AuthProvider, BasicCredential, Credential, HttpHeaders, Login, ProviderStatus, TokenSource};
use crate::clock::{Clock, SystemClock};
use crate::config::{is_env_name, is_well_formed_reference, resolve_reference};
use crate::registry::ProviderSettings;
use crate::session::LogoutOutcome;

/// Where [`ApiKeyProvider`] reads the key when not told otherwise.
pub const DEFAULT_API_KEY_REFERENCE: &str = "env:TESSERA_API_KEY";
/// What keys must start with when not told otherwise.
pub const DEFAULT_API_KEY_PREFIX: &str = "qk_";

#[derive(Clone)]
enum KeySource {
    /// Given by the caller.
    Given(Secret),
    /// `env:NAME`, `file:PATH`, `keyring:<service>/<account>` or a literal, resolved on use.
    Reference(String),
}

/// An API key provider. `Debug` never shows the key.
///
/// ```
/// use tessera::Secret;
/// use tessera::provider::ApiKeyProvider;
///
/// let provider = ApiKeyProvider::new("ci", Secret::new("  qk_abc123\n"));
/// assert_eq!(provider.key().unwrap().expose_secret(), "qk_abc123"); // whitespace trimmed
///
/// let wrong = ApiKeyProvider::new("ci", Secret::new("sk_abc123"));
/// assert_eq!(wrong.key().unwrap_err().to_string(), "configuration error: API key must start with 'qk_'");
///
/// let from_env = ApiKeyProvider::from_reference("ci", "env:MY_SERVICE_KEY").with_prefix("msk_");
/// ```
#[derive(Clone)]
pub struct ApiKeyProvider {
    name: String,
    source: KeySource,
    prefix: String,
    header: Option<String>,
    /// Names the configuration file, context and provider in errors, when built from one.
    place: Option<(String, String, crate::config::ProviderEntry)>,
}

impl std::fmt::Debug for ApiKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyProvider")
            .field("name", &self.name)
            .field("source", &self.source_name())
            .field("prefix", &self.prefix)
            .field("header", &self.header)
            .finish()
    }
}

impl ApiKeyProvider {
    /// A provider for the key `key` (from an argument).
    pub fn new(name: impl Into<String>, key: Secret) -> Self {
        Self::with_source(name.into(), KeySource::Given(key))
    }

    /// A provider reading the key from `TESSERA_API_KEY` when it is needed.
    pub fn from_env(name: impl Into<String>) -> Self {
        Self::from_reference(name, DEFAULT_API_KEY_REFERENCE)
    }

    /// A provider reading the key from `reference` (`env:NAME`, `file:PATH`,
    /// `keyring:<service>/<account>`, or the key itself) when it is needed.
    pub fn from_reference(name: impl Into<String>, reference: impl Into<String>) -> Self {
        Self::with_source(name.into(), KeySource::Reference(reference.into()))
    }

    fn with_source(name: String, source: KeySource) -> Self {
        ApiKeyProvider { name, source, prefix: DEFAULT_API_KEY_PREFIX.to_owned(), header: None, place: None }
    }

    /// Requires keys to start with `prefix` (default `qk_`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sends the key as `<header>: <key>` (e.g. `x-api-key`) instead of `Authorization: Bearer <key>`.
    pub fn with_header(mut self, header: impl Into<String>) -> Self {
        self.header = Some(header.into());
        self
    }

    /// The provider of an `api_key` section: fields `api_key` (default `env:TESSERA_API_KEY`),
    /// `prefix` (default `qk_`) and `header` (optional). Reads no secret.
    pub fn from_settings(settings: &ProviderSettings<'_>) -> Result<Self, Error> {
        settings.allow_fields(&["api_key", "prefix", "header"])?;
        let reference = settings.string("api_key")?.unwrap_or(DEFAULT_API_KEY_REFERENCE);
        let prefix = settings.string("prefix")?.unwrap_or(DEFAULT_API_KEY_PREFIX);
        if prefix.trim() != prefix {
            return Err(settings.error("prefix", "must not contain surrounding whitespace"));
        }
        let header = settings.string("header")?;
        if let Some(header) = header
            && http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            // Not repeated: whatever is in the file may be a misplaced secret.
            return Err(settings.error("header", "is not a valid HTTP header name"));
        }
        let mut provider = Self::from_reference(settings.name(), reference).with_prefix(prefix);
        provider.header = header.map(str::to_owned);
        provider.place = Some((settings.origin().to_owned(), settings.context().to_owned(), settings.entry().clone()));
        Ok(provider)
    }

    /// The required prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key, whitespace trimmed, checked against the prefix.
    ///
    /// Errors: no key (an unset or empty variable) is [`Error::ReauthenticationRequired`] naming
    /// where it was looked for; a key with another prefix is [`Error::Configuration`] with the
    /// message `API key must start with 'qk_'` (with the configured prefix).
    pub fn key(&self) -> Result<Secret, Error> {
        self.resolve()?.ok_or_else(|| Error::ReauthenticationRequired {
            reason: format!("no API key for {:?}: set {}", self.name, self.source_name()),
        })
    }

    /// [`ApiKeyProvider::key`] for async code: a `file:` or `keyring:` source is read on the
    /// blocking pool, never on a runtime worker.
    async fn key_async(&self) -> Result<Secret, Error> {
        self.resolve_async().await?.ok_or_else(|| Error::ReauthenticationRequired {
            reason: format!("no API key for {:?}: set {}", self.name, self.source_name()),
        })
    }

    /// [`ApiKeyProvider::resolve`] off the runtime when it reads a file or the keyring. Read on
    /// every use (not cached), so a rotated key file is picked up at once.
    async fn resolve_async(&self) -> Result<Option<Secret>, Error> {
        let blocking =
            matches!(&self.source, KeySource::Reference(r) if r.starts_with("file:") || r.starts_with("keyring:"));
        // Outside a tokio runtime (another executor) there is no blocking pool: read inline.
        if !blocking || tokio::runtime::Handle::try_current().is_err() {
            return self.resolve();
        }
        let provider = self.clone();
        match tokio::task::spawn_blocking(move || provider.resolve()).await {
            Ok(resolved) => resolved,
            Err(failure) if failure.is_panic() => std::panic::resume_unwind(failure.into_panic()),
            Err(_) => Err(self.error("api_key", "reading the key was cancelled (the runtime is shutting down)")),
        }
    }

    /// The key, `None` when absent; errors for an unreadable source or a wrong prefix.
    fn resolve(&self) -> Result<Option<Secret>, Error> {
        let raw = match &self.source {
            KeySource::Given(key) => key.clone(),
            KeySource::Reference(reference) => {
                // An unset variable means "no key yet"; a malformed name is `resolve_reference`'s
                // error, which does not repeat it.
                if let Some(variable) = reference.strip_prefix("env:")
                    && is_env_name(variable)
                    && std::env::var_os(variable).is_none_or(|v| v.is_empty())
                {
                    return Ok(None);
                }
                resolve_reference(reference).map_err(|problem| self.error("api_key", &problem))?
            }
        };
        let key = raw.expose_secret().trim();
        if key.is_empty() {
            return Ok(None);
        }
        if !key.starts_with(&self.prefix) {
            return Err(Error::configuration(format!("API key must start with '{}'", self.prefix)));
        }
        Ok(Some(Secret::new(key)))
    }

    fn error(&self, field: &str, problem: &str) -> Error {
        match &self.place {
            Some((origin, context, entry)) => entry.error(origin, context, field, problem),
            None => Error::configuration(format!("API key provider {:?}: {problem}", self.name)),
        }
    }

    /// Where the key comes from, for people: `env:TESSERA_API_KEY`, `file:...`, or `argument`.
    /// A literal key in the configuration shows as `configuration`.
    fn source_name(&self) -> String {
        match &self.source {
            KeySource::Given(_) => "argument".to_owned(),
            KeySource::Reference(r) if is_well_formed_reference(r) => r.clone(),
            // A malformed reference may be a key typed in the wrong place: not repeated.
            KeySource::Reference(r) if r.starts_with("env:") || r.starts_with("keyring:") => {
                "a malformed reference in the configuration".to_owned()
            }
            KeySource::Reference(_) => "configuration".to_owned(),
        }
    }
}

#[async_trait]
impl AuthProvider for ApiKeyProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn provider_type(&self) -> &str {
        "api_key"
    }

    fn description(&self) -> String {
        let header = self.header.as_deref().unwrap_or("authorization: Bearer");
        format!("API key ({}...) from {}, sent as {header}", self.prefix, self.source_name())
    }

    async fn is_authenticated(&self) -> Result<bool, Error> {
        Ok(self.resolve_async().await.ok().flatten().is_some())
    }

    /// `authenticated` with a well-formed key, `available` without one, `error` for a key with
    /// the wrong prefix or an unreadable source.
    async fn status(&self) -> Result<ProviderStatus, Error> {
        Ok(match self.resolve_async().await {
            Ok(Some(_)) => ProviderStatus::Authenticated,
            Ok(None) => ProviderStatus::Available,
            Err(_) => ProviderStatus::Error,
        })
    }

    fn auth_context(&self) -> Value {
        json!({ "type": "api_key", "source": self.source_name(), "prefix": self.prefix, "header": self.header })
    }

    async fn credential(&self) -> Result<Credential, Error> {
        let status = if self.resolve_async().await?.is_some() {
            ProviderStatus::Authenticated
        } else {
            ProviderStatus::Available
        };
        Ok(Credential::Basic(BasicCredential {
            name: self.name.clone(),
            status,
            username: None,
            login_time: None,
            auth_source: self.source_name(),
        }))
    }

    fn as_login(&self) -> Option<&dyn Login> {
        Some(self)
    }

    fn as_http_headers(&self) -> Option<&dyn HttpHeaders> {
        Some(self)
    }

    fn as_token_source(&self) -> Option<&dyn TokenSource> {
        Some(self)
    }
}

#[async_trait]
impl Login for ApiKeyProvider {
    /// Checks that the key is present and well-formed. Sends nothing.
    async fn login(&self) -> Result<(), Error> {
        self.key_async().await.map(drop)
    }

    /// Nothing to forget here: the key lives where it was configured.
    async fn logout(&self) -> Result<LogoutOutcome, Error> {
        Ok(LogoutOutcome { revoked: false, revocation_error: None, had_tokens: false })
    }
}

#[async_trait]
impl HttpHeaders for ApiKeyProvider {
    async fn headers(&self) -> Result<Vec<(String, Secret)>, Error> {
        let key = self.key_async().await?;
        Ok(vec![match &self.header {
            Some(header) => (header.clone(), key),
            None => ("authorization".to_owned(), Secret::new(format!("Bearer {}", key.expose_secret()))),
        }])
    }
}

#[async_trait]
impl TokenSource for ApiKeyProvider {
    /// The key as a bearer token without expiry (`min_valid` is always met: keys do not refresh).
    async fn token(&self, _min_valid: Duration) -> Result<TokenSet, Error> {
        Ok(TokenSet::bearer(self.key_async().await?, None, SystemClock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_trimmed_checked_and_never_shown() {
        let provider = ApiKeyProvider::new("ci", Secret::new(" \tqk_s3cret-value\r\n"));
        assert_eq!(provider.key().unwrap().expose_secret(), "qk_s3cret-value");
        let headers = provider.headers().await.unwrap();
        assert_eq!(headers[0].0, "authorization");
        assert_eq!(headers[0].1.expose_secret(), "Bearer qk_s3cret-value");
        let custom = provider.clone().with_header("x-api-key").headers().await.unwrap();
        assert_eq!((custom[0].0.as_str(), custom[0].1.expose_secret()), ("x-api-key", "qk_s3cret-value"));
        assert!(provider.is_authenticated().await.unwrap());
        let shown = format!("{provider:?} {} {}", provider.description(), provider.auth_context());
        assert!(!shown.contains("s3cret"), "{shown}");

        let wrong = ApiKeyProvider::new("ci", Secret::new("sk_s3cret"));
        let error = wrong.key().unwrap_err();
        assert_eq!(error, Error::configuration("API key must start with 'qk_'"));
        assert!(!error.to_string().contains("s3cret"));
        assert_eq!(wrong.status().await.unwrap(), ProviderStatus::Error);
        assert!(!wrong.is_authenticated().await.unwrap());
        let custom_prefix = ApiKeyProvider::new("ci", Secret::new("qk_x")).with_prefix("tk_");
        assert_eq!(custom_prefix.key().unwrap_err().to_string(), "configuration error: API key must start with 'tk_'");
    }

    #[tokio::test]
    async fn a_missing_key_means_available_and_reauthentication() {
        let provider = ApiKeyProvider::from_reference("ci", "env:TESSERA_TEST_API_KEY_NEVER_SET");
        assert_eq!(provider.status().await.unwrap(), ProviderStatus::Available);
        assert!(!provider.is_authenticated().await.unwrap());
        let error = provider.token(Duration::ZERO).await.unwrap_err();
        assert!(error.requires_reauthentication(), "{error}");
        assert!(error.to_string().contains("env:TESSERA_TEST_API_KEY_NEVER_SET"), "{error}");
        let blank = ApiKeyProvider::new("ci", Secret::new("  \n"));
        assert!(blank.key().unwrap_err().requires_reauthentication());
        // A malformed variable name (a key pasted after `env:`?) is a configuration error that
        // does not repeat it.
        let pasted = ApiKeyProvider::from_reference("ci", "env:qk_s3cret/value");
        let error = pasted.key().unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }) && !error.to_string().contains("s3cret"), "{error}");
        assert!(!pasted.description().contains("s3cret"), "{}", pasted.description());
    }

    /// A `file:` key is read on every use (through the blocking pool, which a current-thread
    /// runtime has too): a rotated file is picked up at once, and an unreadable one is a
    /// configuration error naming the provider.
    #[tokio::test(flavor = "current_thread")]
    async fn file_keys_are_read_off_the_runtime_on_every_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "qk_first\n").unwrap();
        let provider = ApiKeyProvider::from_reference("ci", format!("file:{}", path.display()));
        assert_eq!(provider.headers().await.unwrap()[0].1.expose_secret(), "Bearer qk_first");
        std::fs::write(&path, "qk_rotated\n").unwrap();
        assert_eq!(provider.token(Duration::ZERO).await.unwrap().access_token.expose_secret(), "qk_rotated");
        assert_eq!(provider.status().await.unwrap(), ProviderStatus::Authenticated);
        std::fs::remove_file(&path).unwrap();
        let error = provider.headers().await.unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }) && error.to_string().contains("\"ci\""), "{error}");
        assert_eq!(provider.status().await.unwrap(), ProviderStatus::Error);
    }
}
