//! [`Registry`]: provider types by name, each with a factory that builds an
//! [`AuthProvider`] from its `[[contexts.auth_providers]]` section.
//!
//! The built-in types (`password`, `client_credentials`, `refresh_token`, `static`) are
//! registered exactly like outside ones, through [`Registry::register_factory`]. Building a
//! provider reads no secret and sends nothing: secrets are resolved when a token is needed.

use std::path::Path;
use std::sync::Arc;

use tessera_core::{Error, Secret};

use crate::config::{Config, Context, ProviderEntry, resolve_reference};
use crate::provider::{AuthProvider, OAuthProvider};
use crate::store::TokenStore;

/// Everything a factory gets to build one provider: its section (raw TOML), where it is
/// (file, context, name) for errors, and the token store the application uses.
#[derive(Debug)]
pub struct ProviderSettings<'a> {
    origin: &'a str,
    context: &'a str,
    entry: &'a ProviderEntry,
    store: Arc<dyn TokenStore>,
}

impl<'a> ProviderSettings<'a> {
    /// Settings for `entry` of `context`; `origin` (usually the config path) names the place in errors.
    pub fn new(origin: &'a str, context: &'a str, entry: &'a ProviderEntry, store: Arc<dyn TokenStore>) -> Self {
        ProviderSettings { origin, context, entry, store }
    }

    /// The configuration file (or other origin).
    pub fn origin(&self) -> &str {
        self.origin
    }

    /// The context's name.
    pub fn context(&self) -> &str {
        self.context
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The provider's type.
    pub fn provider_type(&self) -> &str {
        &self.entry.type_name
    }

    /// The parsed entry (typed fields are filled for built-in types only).
    pub fn entry(&self) -> &ProviderEntry {
        self.entry
    }

    /// The raw section, secrets unresolved.
    pub fn table(&self) -> &toml::Table {
        self.entry.settings()
    }

    /// The token store; keep credentials under [`ProviderSettings::store_key`].
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// `<context>/<name>`: where this provider's credential is stored.
    pub fn store_key(&self) -> String {
        format!("{}/{}", self.context, self.entry.name)
    }

    /// A configuration error naming the file, context, provider and `field`.
    pub fn error(&self, field: &str, problem: &str) -> Error {
        self.entry.error(self.origin, self.context, field, problem)
    }

    /// Fails naming the first field of the section that is not `name`, `type` (or its old name
    /// `provider`) or in `allowed`.
    pub fn allow_fields(&self, allowed: &[&str]) -> Result<(), Error> {
        match self
            .table()
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "type" | "provider") && !allowed.contains(&k.as_str()))
        {
            // A key that does not look like a name may be a misplaced secret: not repeated.
            Some(field) if !tessera_core::provider_spec::is_identifier(field) => Err(self.error(
                "",
                &format!(
                    "unknown field for provider type {:?} ({}; expected one of: {})",
                    self.provider_type(),
                    tessera_core::provider_spec::UNNAMED_KEY,
                    allowed.join(", ")
                ),
            )),
            Some(field) => Err(self.error(
                field,
                &format!(
                    "unknown field `{field}` for provider type {:?} (expected one of: {})",
                    self.provider_type(),
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A string field, if present (an error names it when it is not a string).
    pub fn string(&self, field: &str) -> Result<Option<&str>, Error> {
        match self.table().get(field) {
            None => Ok(None),
            Some(toml::Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(self.error(field, &format!("must be a string, not {}", other.type_str()))),
        }
    }

    /// A string field that must be present and non-empty.
    pub fn required_string(&self, field: &str) -> Result<&str, Error> {
        match self.string(field)? {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(self.error(field, &format!("is required for provider type {:?}", self.provider_type()))),
        }
    }

    /// Resolves a secret field (`env:NAME`, `file:PATH` or a literal). Call it when the secret is
    /// needed, not in the factory, so that commands that need no secret work without it.
    pub fn secret(&self, field: &str) -> Result<Option<Secret>, Error> {
        self.string(field)?
            .map(|value| resolve_reference(value).map_err(|problem| self.error(field, &problem)))
            .transpose()
    }
}

/// Builds a provider from its settings. Closures `Fn(&ProviderSettings) -> Result<Arc<dyn
/// AuthProvider>, Error>` are factories.
pub trait ProviderFactory: Send + Sync {
    /// Builds the provider `name` of `context` from its section. Check every field here (so that a
    /// bad one fails when the configuration is loaded), but resolve no secret.
    fn build_from_settings(
        &self,
        context: &str,
        name: &str,
        config: &ProviderSettings<'_>,
    ) -> Result<Arc<dyn AuthProvider>, Error>;
}

impl<F> ProviderFactory for F
where
    F: Fn(&ProviderSettings<'_>) -> Result<Arc<dyn AuthProvider>, Error> + Send + Sync,
{
    fn build_from_settings(
        &self,
        _context: &str,
        _name: &str,
        config: &ProviderSettings<'_>,
    ) -> Result<Arc<dyn AuthProvider>, Error> {
        self(config)
    }
}

/// Provider types by name.
///
/// ```
/// use std::sync::Arc;
/// use tessera::provider::AuthProvider;
/// use tessera::registry::{ProviderSettings, Registry};
/// # use tessera::{Error, provider::{BasicCredential, Credential, ProviderStatus}};
/// # #[derive(Debug)] struct ApiKey { name: String, header: String }
/// # #[async_trait::async_trait] impl AuthProvider for ApiKey {
/// #     fn name(&self) -> &str { &self.name }
/// #     fn provider_type(&self) -> &str { "api_key" }
/// #     fn description(&self) -> String { format!("API key in {}", self.header) }
/// #     async fn is_authenticated(&self) -> Result<bool, Error> { Ok(true) }
/// #     fn auth_context(&self) -> serde_json::Value { serde_json::json!({}) }
/// #     async fn credential(&self) -> Result<Credential, Error> { Err(Error::configuration("n/a")) }
/// # }
///
/// let mut registry = Registry::default(); // the built-in types
/// registry.register_factory("api_key", |settings: &ProviderSettings<'_>| {
///     settings.allow_fields(&["header", "key"])?; // a misspelt field fails, naming file and field
///     settings.required_string("key")?;           // a reference; resolved when used
///     let header = settings.string("header")?.unwrap_or("x-api-key").to_owned();
///     Ok(Arc::new(ApiKey { name: settings.name().to_owned(), header }) as Arc<dyn AuthProvider>)
/// });
/// assert!(registry.type_names().contains(&"api_key"));
/// let config = registry.parse_config(
///     "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"catalog\"\n\
///      provider = \"api_key\"\nkey = \"env:CATALOG_KEY\"\n",
///     "config.toml",
/// )?;
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    factories: Vec<(String, Arc<dyn ProviderFactory>)>,
}

impl Default for Registry {
    /// The built-in types.
    fn default() -> Self {
        let mut registry = Registry::empty();
        for kind in tessera_core::provider_spec::ProviderKind::ALL {
            registry.register_factory(kind.as_str(), |settings: &ProviderSettings<'_>| {
                Ok(Arc::new(OAuthProvider::from_settings(settings)?) as Arc<dyn AuthProvider>)
            });
        }
        registry.register_factory("api_key", |settings: &ProviderSettings<'_>| {
            Ok(Arc::new(crate::provider::ApiKeyProvider::from_settings(settings)?) as Arc<dyn AuthProvider>)
        });
        registry
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("types", &self.type_names()).finish()
    }
}

impl Registry {
    /// A registry without any type (not even the built-in ones).
    pub fn empty() -> Self {
        Registry { factories: Vec::new() }
    }

    /// Registers (or replaces) the factory of `type_name`.
    pub fn register_factory(
        &mut self,
        type_name: impl Into<String>,
        factory: impl ProviderFactory + 'static,
    ) -> &mut Self {
        let type_name = type_name.into();
        let factory: Arc<dyn ProviderFactory> = Arc::new(factory);
        match self.factories.iter_mut().find(|(name, _)| *name == type_name) {
            Some(slot) => slot.1 = factory,
            None => self.factories.push((type_name, factory)),
        }
        self
    }

    /// The registered type names, in registration order.
    pub fn type_names(&self) -> Vec<&str> {
        self.factories.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Parses a configuration accepting the registered types.
    pub fn parse_config(&self, text: &str, origin: &str) -> Result<Config, Error> {
        Config::from_toml_str_with_types(text, origin, &self.type_names())
    }

    /// Reads a configuration file accepting the registered types.
    pub fn load_config(&self, path: &Path) -> Result<Config, Error> {
        Config::load_with_types(path, &self.type_names())
    }

    /// Builds the provider of `entry` (of `context` in `config`) with its type's factory.
    pub fn build(
        &self,
        config: &Config,
        context: &Context,
        entry: &ProviderEntry,
        store: Arc<dyn TokenStore>,
    ) -> Result<Arc<dyn AuthProvider>, Error> {
        let settings = ProviderSettings::new(config.origin(), &context.name, entry, store);
        let Some((_, factory)) = self.factories.iter().find(|(name, _)| *name == entry.type_name) else {
            return Err(settings.error(
                "type",
                &format!(
                    "unknown type{} (expected one of: {})",
                    tessera_core::provider_spec::echo_identifier(&entry.type_name),
                    self.type_names().join(", ")
                ),
            ));
        };
        factory.build_from_settings(&context.name, &entry.name, &settings)
    }
}
