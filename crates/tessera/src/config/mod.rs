//! The TOML configuration shared by the CLI and the bindings: contexts, each with named auth
//! providers, and secrets given by reference (`env:NAME`, `file:PATH`, `keyring:<service>/<account>`)
//! rather than inline.
//!
//! ```toml
//! current_context = "dev"
//! [[contexts]]
//! name = "dev"
//! [[contexts.auth_providers]]
//! name = "peer"
//! type = "password"                # also: client_credentials, refresh_token, static, device_code, email_otp,
//!                                  # cognito, browser, api_key (registered by Registry::default, see docs/api-keys.md)
//! issuer = "http://127.0.0.1:4010" # OIDC discovery; or token_endpoint = "..."
//! client_id = "confidential-client"
//! client_secret = "env:PEER_CLIENT_SECRET"   # env:NAME | file:PATH | keyring:<service>/<account> | literal
//! username = "alice"
//! password = "env:PEER_PASSWORD"
//! totp_secret = "env:PEER_TOTP_SECRET"       # optional
//! scope = "openid api:read"
//! ```
//!
//! Loading checks everything but secret values (types, unknown fields, required fields), and
//! names the file, context, provider and field in every error. Secrets are read only when a
//! provider is built, i.e. when a token must actually be requested.
//!
//! Provider types registered from outside ([`crate::registry::Registry::register_factory`]) are
//! accepted by [`Config::from_toml_str_with_types`]; their sections are kept as raw TOML
//! ([`ProviderEntry::settings`]) for their factory to check. This module never writes a secret:
//! [`Config::masked`] hides literal secrets, and [`set_current_context`] edits one line.
//!
//! Layout: this module holds the file model (contexts, stores, `config view`, `use-context`) and
//! [`Paths`]; [`entry`] reads one provider section into the one provider description
//! ([`tessera_core::provider_spec`], which validates it); [`secret_ref`] parses and resolves secret
//! references.

mod entry;
mod secret_ref;

#[cfg(unix)]
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_core::Error;
use tessera_core::provider_spec::{FieldError, ProviderKind, ProviderSpec};

use entry::is_secret_field;
pub use entry::{ProviderEntry, TypedSecrets};
use secret_ref::parse_reference;
pub use secret_ref::{expand_home, resolve_reference};
pub(crate) use secret_ref::{is_env_name, is_well_formed_reference};

/// Provider types this version understands (the [`ProviderKind`]s, by name).
pub const PROVIDER_TYPES: &[&str] = &ProviderKind::NAMES;

/// A parsed configuration file.
#[derive(Clone, Debug)]
pub struct Config {
    origin: String,
    /// The context used when none is named.
    pub current_context: Option<String>,
    /// All contexts.
    pub contexts: Vec<Context>,
}

/// A named set of providers (e.g. `dev`, `prod`).
#[derive(Clone, Debug)]
pub struct Context {
    /// Its name.
    pub name: String,
    /// Its providers, in file order.
    pub providers: Vec<ProviderEntry>,
    /// Where its tokens live (`store = { kind = "redis", url = "env:REDIS_URL" }`); `None`: the default file store.
    pub store: Option<crate::store::StoreConfig>,
    /// The provider used when none is named and the context has several
    /// (`current_provider = "peer"`, set by `tessera config use-provider`).
    pub current_provider: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<RawContext>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    name: String,
    #[serde(default)]
    auth_providers: Vec<toml::Table>,
    #[serde(default)]
    store: Option<crate::store::StoreConfig>,
    current_provider: Option<String>,
}

impl Config {
    /// Parses and validates TOML with the built-in provider types; `origin` (usually the path)
    /// prefixes every error.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, Error> {
        Self::from_toml_str_with_types(text, origin, PROVIDER_TYPES)
    }

    /// Like [`Config::from_toml_str`], also accepting the provider types in `types` (usually
    /// [`crate::registry::Registry::type_names`]). Sections of types that are not built in are
    /// checked for `name` and `provider` only; their factory checks the rest.
    pub fn from_toml_str_with_types(text: &str, origin: &str, types: &[&str]) -> Result<Config, Error> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Error::configuration(format!("{origin}: {}", toml_error(&e, text))))?;
        let mut contexts = Vec::with_capacity(raw.contexts.len());
        for c in raw.contexts {
            let providers = c
                .auth_providers
                .into_iter()
                .enumerate()
                .map(|(index, table)| ProviderEntry::from_table(table, origin, &c.name, index, types))
                .collect::<Result<Vec<_>, _>>()?;
            contexts.push(Context { name: c.name, providers, store: c.store, current_provider: c.current_provider });
        }
        let config = Config { origin: origin.to_owned(), current_context: raw.current_context, contexts };
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a file (built-in provider types).
    pub fn load(path: &Path) -> Result<Config, Error> {
        Self::load_with_types(path, PROVIDER_TYPES)
    }

    /// Reads and parses a file, also accepting the provider types in `types`.
    pub fn load_with_types(path: &Path, types: &[&str]) -> Result<Config, Error> {
        let text = read_config_file(path)?;
        Self::from_toml_str_with_types(&text, &path.display().to_string(), types)
    }

    /// The configuration as TOML with every literal secret replaced by `"***"`; references
    /// (`env:NAME`, `file:PATH`, `keyring:...`) are shown, since they are not secrets.
    /// For custom types, string fields whose name contains `secret`, `password`, `token` or
    /// `key` are treated as secrets.
    pub fn masked(&self) -> toml::Table {
        let mut root = toml::Table::new();
        if let Some(current) = &self.current_context {
            root.insert("current_context".into(), toml::Value::String(current.clone()));
        }
        let contexts = self
            .contexts
            .iter()
            .map(|context| {
                let mut table = toml::Table::new();
                table.insert("name".into(), toml::Value::String(context.name.clone()));
                if let Some(current) = &context.current_provider {
                    table.insert("current_provider".into(), toml::Value::String(current.clone()));
                }
                if let Some(store) = &context.store {
                    table.insert("store".into(), toml::Value::Table(masked_store(store)));
                }
                let providers = context.providers.iter().map(|p| toml::Value::Table(p.masked_settings())).collect();
                table.insert("auth_providers".into(), toml::Value::Array(providers));
                toml::Value::Table(table)
            })
            .collect();
        root.insert("contexts".into(), toml::Value::Array(contexts));
        root
    }

    /// Where this configuration came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The named context, else `current_context`, else the only context.
    pub fn context(&self, name: Option<&str>) -> Result<&Context, Error> {
        let wanted = name.or(self.current_context.as_deref());
        match wanted {
            Some(wanted) => self.contexts.iter().find(|c| c.name == wanted).ok_or_else(|| {
                Error::configuration(format!(
                    "{}: no context named {wanted:?} (have: {})",
                    self.origin,
                    self.context_names()
                ))
            }),
            None if self.contexts.len() == 1 => Ok(&self.contexts[0]),
            None => Err(Error::configuration(format!(
                "{}: set current_context or pass --context (have: {})",
                self.origin,
                self.context_names()
            ))),
        }
    }

    fn context_names(&self) -> String {
        names_list(self.contexts.iter().map(|c| c.name.as_str()))
    }

    fn validate(&self) -> Result<(), Error> {
        let mut seen_contexts = std::collections::HashSet::new();
        for context in &self.contexts {
            if !seen_contexts.insert(&context.name) {
                return Err(Error::configuration(format!(
                    "{}: context {:?} is defined twice",
                    self.origin, context.name
                )));
            }
            let mut seen = std::collections::HashSet::new();
            for provider in &context.providers {
                let at = Location { origin: &self.origin, context: &context.name, provider: &provider.name };
                if !seen.insert(&provider.name) {
                    return Err(at.error("", "is defined twice in this context"));
                }
            }
            if let Some(current) = &context.current_provider
                && !context.providers.iter().any(|p| &p.name == current)
            {
                return Err(Error::configuration(format!(
                    "{}: context {:?}: current_provider {current:?} names no provider of this context (have: {})",
                    self.origin,
                    context.name,
                    context.provider_names()
                )));
            }
        }
        if let Some(current) = &self.current_context
            && !self.contexts.iter().any(|c| &c.name == current)
        {
            return Err(Error::configuration(format!(
                "{}: current_context {current:?} names no context (have: {})",
                self.origin,
                self.context_names()
            )));
        }
        Ok(())
    }
}

impl Context {
    /// The named provider, else the only one, else `current_provider`.
    pub fn provider(&self, name: Option<&str>) -> Result<&ProviderEntry, Error> {
        let names = || self.provider_names();
        match name.or(if self.providers.len() == 1 { None } else { self.current_provider.as_deref() }) {
            Some(name) => self.providers.iter().find(|p| p.name == name).ok_or_else(|| {
                Error::configuration(format!(
                    "context {:?} has no provider named {name:?} (have: {})",
                    self.name,
                    names()
                ))
            }),
            None if self.providers.len() == 1 => Ok(&self.providers[0]),
            None if self.providers.is_empty() => {
                Err(Error::configuration(format!("context {:?} has no auth_providers", self.name)))
            }
            None => Err(Error::configuration(format!(
                "context {:?} has several providers: pass --provider, or choose a default with \
                 'tessera config use-provider NAME' (one of: {})",
                self.name,
                names()
            ))),
        }
    }

    /// Its providers' names, for messages (at most ten, then how many more).
    pub fn provider_names(&self) -> String {
        names_list(self.providers.iter().map(|p| p.name.as_str()))
    }

    /// The store key of a provider of this context.
    pub fn store_key(&self, provider: &ProviderEntry) -> String {
        format!("{}/{}", self.name, provider.name)
    }
}

struct Location<'a> {
    origin: &'a str,
    context: &'a str,
    provider: &'a str,
}

impl Location<'_> {
    /// Reads a built-in type's section into its description; logs old spellings.
    fn spec(&self, table: &toml::Table) -> Result<ProviderSpec, Error> {
        let mut fields = table.clone();
        fields.remove("name");
        // Secret references are checked now (well formed), read only when a token is needed.
        for (field, value) in &fields {
            if let (true, toml::Value::String(value)) = (is_secret_field(field), value) {
                parse_reference(value).map_err(|problem| self.error(field, &problem))?;
            }
        }
        let value =
            serde_json::to_value(&fields).map_err(|_| self.error("", "holds a value that is not plain data"))?;
        let parsed = ProviderSpec::from_value(value).map_err(|e| self.field_error(&e))?;
        for deprecation in &parsed.deprecations {
            tracing::warn!("{}: context {:?}, provider {:?}: {deprecation}", self.origin, self.context, self.provider);
        }
        Ok(parsed.spec)
    }

    fn field_error(&self, error: &FieldError) -> Error {
        self.error(&error.field, &error.problem)
    }

    fn error(&self, field: &str, problem: &str) -> Error {
        let field = if field.is_empty() { String::new() } else { format!(", field {field:?}") };
        Error::configuration(format!(
            "{}: context {:?}, provider {:?}{field}: {problem}",
            self.origin, self.context, self.provider
        ))
    }
}

/// A context's `store = { ... }` for `config view`: a literal Redis URL (it may hold a password) masked.
fn masked_store(store: &crate::store::StoreConfig) -> toml::Table {
    use crate::store::StoreConfig;
    let mut table = toml::Table::new();
    let mut put = |key: &str, value: toml::Value| {
        table.insert(key.to_owned(), value);
    };
    #[allow(unreachable_patterns)] // StoreConfig is non_exhaustive: new kinds show as "unknown"
    match store {
        StoreConfig::Memory => put("kind", "memory".into()),
        StoreConfig::File { dir } => {
            put("kind", "file".into());
            if let Some(dir) = dir {
                put("dir", dir.display().to_string().into());
            }
        }
        StoreConfig::Redis { url, prefix, lease_ms, .. } => {
            put("kind", "redis".into());
            put("url", if is_well_formed_reference(url) { url.clone() } else { "***".to_owned() }.into());
            if let Some(prefix) = prefix {
                put("prefix", prefix.clone().into());
            }
            if let Some(lease_ms) = lease_ms {
                put("lease_ms", i64::try_from(*lease_ms).unwrap_or(i64::MAX).into());
            }
        }
        _ => put("kind", "unknown".into()),
    }
    table
}

/// Sets `current_context` in the file at `path` by editing that one line (or adding it at the
/// top), so comments, layout and secret references stay as they were. The result is parsed
/// before it replaces the file (atomically, keeping the file's permissions).
pub fn set_current_context(path: &Path, context: &str, types: &[&str]) -> Result<(), Error> {
    let origin = path.display().to_string();
    let text = read_config_file(path)?;
    let config = Config::from_toml_str_with_types(&text, &origin, types)?;
    if !config.contexts.iter().any(|c| c.name == context) {
        return Err(Error::configuration(format!(
            "{origin}: no context named {context:?} (have: {})",
            config.context_names()
        )));
    }
    let line = format!("current_context = {}", toml::Value::String(context.to_owned()));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Only top-level keys: those before the first table header.
    let top = lines.iter().position(|l| l.trim_start().starts_with('[')).unwrap_or(lines.len());
    match lines[..top].iter().position(|l| {
        l.trim_start().strip_prefix("current_context").is_some_and(|rest| rest.trim_start().starts_with('='))
    }) {
        Some(index) => lines[index] = line,
        None => lines.insert(0, line),
    }
    let mut edited = lines.join("\n");
    edited.push('\n');
    let check = Config::from_toml_str_with_types(&edited, &origin, types)?;
    if check.current_context.as_deref() != Some(context) {
        return Err(Error::configuration(format!("{origin}: could not set current_context; edit the file by hand")));
    }
    replace_file(path, &edited)
}

/// The provider of a resource-first login (`tessera login URL`, docs/resource-login.md): the name
/// of a provider of `context` (the one in effect when `None`) whose `resource` is `resource`, else
/// of one added for it: a `[[contexts.auth_providers]]` section with `name` (default: from the
/// URL's host and path) and `resource` only, appended to the file (comments, layout and secret
/// references stay as they were; the section goes at the end of the context's part of the file;
/// the result is parsed before it replaces the file, atomically). Without a file at `path`, one is
/// created holding a context `default` and that provider. A layout this cannot extend (a context
/// written as an inline table) is refused with a message saying what to add by hand.
pub fn add_resource_provider(
    path: &Path,
    context: Option<&str>,
    name: Option<&str>,
    resource: &str,
    types: &[&str],
) -> Result<String, Error> {
    tessera_core::protocol::resource::check_resource_url(resource)?;
    let origin = path.display().to_string();
    let section = |name: &str| {
        format!(
            "\n[[contexts.auth_providers]]\nname = {}\nresource = {}\n",
            toml::Value::String(name.to_owned()),
            toml::Value::String(resource.to_owned())
        )
    };
    if !path.exists() {
        let name = name.map_or_else(|| provider_name_for(resource), str::to_owned);
        let text = format!(
            "[[contexts]]\nname = {}\n{}",
            toml::Value::String(context.unwrap_or("default").into()),
            section(&name)
        );
        Config::from_toml_str_with_types(&text, &origin, types)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            // Windows: the directory inherits its parent's ACL (no mode to set).
            #[cfg(unix)]
            builder.mode(0o700);
            builder.create(dir).map_err(|e| Error::configuration(format!("cannot create {}: {e}", dir.display())))?;
        }
        replace_file(path, &text)?;
        return Ok(name);
    }
    let text = read_config_file(path)?;
    let config = Config::from_toml_str_with_types(&text, &origin, types)?;
    let wanted = config.context(context)?;
    let serves = |provider: &ProviderEntry| {
        provider.spec().is_some_and(|spec| spec.client.resource.as_deref() == Some(resource))
    };
    if let Some(existing) = wanted.providers.iter().find(|p| serves(p) && name.is_none_or(|n| n == p.name)) {
        return Ok(existing.name.clone());
    }
    let name = match name {
        Some(name) if wanted.providers.iter().any(|p| p.name == name) => {
            return Err(Error::configuration(format!(
                "{origin}: context {:?} already has a provider named {name:?}, for another resource",
                wanted.name
            )));
        }
        Some(name) => name.to_owned(),
        None => {
            let base = provider_name_for(resource);
            let taken = |candidate: &str| wanted.providers.iter().any(|p| p.name == candidate);
            (1..1000)
                .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
                .find(|candidate| !taken(candidate))
                .ok_or_else(|| Error::configuration(format!("{origin}: give the provider a name (--name)")))?
        }
    };
    // The section goes at the end of the context's own part of the file: before the next
    // `[[contexts]]` header (a table array entry belongs to the last header above it).
    let lines: Vec<&str> = text.lines().collect();
    let headers: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.trim() == "[[contexts]]").map(|(i, _)| i).collect();
    let index = config.contexts.iter().position(|c| c.name == wanted.name).unwrap_or(usize::MAX);
    if headers.len() != config.contexts.len() || index >= headers.len() {
        return Err(Error::configuration(format!(
            "{origin}: could not add a provider to context {:?}; add this to it by hand:\n{}",
            wanted.name,
            section(&name).trim()
        )));
    }
    let at = headers.get(index + 1).copied().unwrap_or(lines.len());
    let mut edited = lines[..at].join("\n");
    edited.push('\n');
    edited.push_str(&section(&name));
    if at < lines.len() {
        edited.push('\n');
        edited.push_str(&lines[at..].join("\n"));
        edited.push('\n');
    }
    let check = Config::from_toml_str_with_types(&edited, &origin, types)?;
    let added = check.context(Some(&wanted.name))?.providers.iter().any(|p| p.name == name && serves(p));
    if !added {
        return Err(Error::configuration(format!("{origin}: could not add the provider; edit the file by hand")));
    }
    replace_file(path, &edited)?;
    Ok(name)
}

/// A provider name for a resource URL: its host and path, in lowercase letters, digits, `.` and
/// `-` (`https://api.example.com/mcp` → `api.example.com-mcp`).
fn provider_name_for(resource: &str) -> String {
    let url = url::Url::parse(resource).ok();
    let host = url.as_ref().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| "resource".into());
    let path = url.as_ref().map(|u| u.path().trim_matches('/').to_owned()).unwrap_or_default();
    let raw = if path.is_empty() { host } else { format!("{host}-{path}") };
    let name: String =
        raw.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    name.trim_matches('-').chars().take(64).collect()
}

/// Sets `current_provider` of `context` in the file at `path` by editing one line of that
/// context's `[[contexts]]` table (or adding it after its `name`), so comments, layout and secret
/// references stay as they were. The result is parsed before it replaces the file (atomically,
/// keeping the file's permissions); a layout this cannot edit (a context written as an inline
/// table) is refused with a message saying to edit the file by hand.
pub fn set_current_provider(path: &Path, context: &str, provider: &str, types: &[&str]) -> Result<(), Error> {
    let origin = path.display().to_string();
    let text = read_config_file(path)?;
    let config = Config::from_toml_str_with_types(&text, &origin, types)?;
    let index = config.contexts.iter().position(|c| c.name == context).ok_or_else(|| {
        Error::configuration(format!("{origin}: no context named {context:?} (have: {})", config.context_names()))
    })?;
    let wanted = &config.contexts[index];
    if !wanted.providers.iter().any(|p| p.name == provider) {
        return Err(Error::configuration(format!(
            "{origin}: context {context:?} has no provider named {provider:?} (have: {})",
            wanted.provider_names()
        )));
    }
    let by_hand = || Error::configuration(format!("{origin}: could not set current_provider; edit the file by hand"));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let is_header = |line: &str| line.trim_start().starts_with('[');
    let headers: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.trim() == "[[contexts]]").map(|(i, _)| i).collect();
    // The n-th `[[contexts]]` header is the n-th context only when every context is written so.
    if headers.len() != config.contexts.len() {
        return Err(by_hand());
    }
    let start = headers[index] + 1;
    let end = lines[start..].iter().position(|l| is_header(l)).map_or(lines.len(), |n| start + n);
    let key_of = |line: &str| line.split('=').next().map(|k| k.trim().to_owned()).unwrap_or_default();
    let line = format!("current_provider = {}", toml::Value::String(provider.to_owned()));
    match lines[start..end].iter().position(|l| key_of(l) == "current_provider") {
        Some(n) => lines[start + n] = line,
        None => {
            let after = lines[start..end].iter().position(|l| key_of(l) == "name").map_or(start, |n| start + n + 1);
            lines.insert(after, line);
        }
    }
    let mut edited = lines.join("\n");
    edited.push('\n');
    let check = Config::from_toml_str_with_types(&edited, &origin, types)?;
    let unchanged = check.contexts.iter().zip(&config.contexts).enumerate().all(|(i, (after, before))| {
        after.name == before.name && (i == index || after.current_provider == before.current_provider)
    });
    if !unchanged || check.contexts[index].current_provider.as_deref() != Some(provider) {
        return Err(by_hand());
    }
    replace_file(path, &edited)
}

/// Replaces the file at `path` with `text` atomically (a temporary file beside it, renamed over
/// it), keeping the file's permissions.
fn replace_file(path: &Path, text: &str) -> Result<(), Error> {
    let origin = path.display();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |e: std::io::Error| Error::configuration(format!("cannot write {origin}: {e}"));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(io)?;
    // A new file keeps the temporary file's owner-only mode (0600).
    if path.exists() {
        let permissions = std::fs::metadata(path).map_err(io)?.permissions();
        std::fs::set_permissions(temp.path(), permissions).map_err(io)?;
    }
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Names for an error message: at most ten, then how many more (a file with 600,000 providers
/// must not make a megabyte-long message).
fn names_list<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 10;
    let total = names.len();
    if total == 0 {
        return "none".into();
    }
    let mut text = names.take(SHOWN).collect::<Vec<_>>().join(", ");
    let more = total.saturating_sub(SHOWN);
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// The text of a configuration file, read with the checks of [`crate::local_file`] (a regular
/// file of at most 1 MiB, owned by you or root, not writable by group or others).
fn read_config_file(path: &Path) -> Result<String, Error> {
    let origin = path.display();
    let bytes = crate::local_file::read(path, crate::local_file::FileKind::Config)
        .map_err(|refused| Error::configuration(format!("{origin} {}", refused.problem)))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::configuration(format!("{origin} is not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()))
    })
}

/// A TOML error as the place (line, column) and what was expected, never the text of the line: it
/// may hold a literal secret. Quoted parts of the parser's message are left out for the same reason.
fn toml_error(error: &toml::de::Error, text: &str) -> String {
    let place = error.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    format!("{}{}", place.unwrap_or_default(), tessera_core::provider_spec::without_quoted(error.message()))
}

/// Where the CLI keeps its configuration and tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The configuration file.
    pub config_file: PathBuf,
    /// The token store directory.
    pub store_dir: PathBuf,
}

impl Paths {
    /// `$TESSERA_HOME/config.toml` and `$TESSERA_HOME/tokens` when `TESSERA_HOME` is set; else the
    /// platform's config and data directories. `TESSERA_CONFIG` overrides the file alone.
    pub fn from_env() -> Result<Paths, Error> {
        let home = std::env::var_os("TESSERA_HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let (config_file, store_dir) = match home {
            Some(home) => (home.join("config.toml"), home.join("tokens")),
            None => {
                let dirs = directories::ProjectDirs::from("dev", "tessera", "tessera")
                    .ok_or_else(|| Error::configuration("cannot find a home directory: set TESSERA_HOME"))?;
                (dirs.config_dir().join("config.toml"), dirs.data_dir().join("tokens"))
            }
        };
        let config_file =
            std::env::var_os("TESSERA_CONFIG").filter(|c| !c.is_empty()).map(PathBuf::from).unwrap_or(config_file);
        Ok(Paths { config_file, store_dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::provider_spec::DEFAULT_BROWSER_SCOPE;
    use tessera_core::{ClientAuthMethod, Endpoints, Grant, Secret};

    const GOOD: &str = r#"
current_context = "dev"
[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
provider = "password"
issuer = "http://127.0.0.1:4010"
client_id = "confidential-client"
client_secret = "literal-secret"
username = "alice"
password = "env:TESSERA_TEST_CONFIG_PASSWORD"
scope = "openid api:read"
[[contexts.auth_providers]]
name = "machine"
provider = "client_credentials"
token_url = "http://127.0.0.1:4010/token"
client_id = "c"
client_secret = "s"
client_auth = "post"
"#;

    #[test]
    fn parses_the_documented_contract() {
        let config = Config::from_toml_str(GOOD, "config.toml").unwrap();
        let context = config.context(None).unwrap();
        assert_eq!(context.name, "dev");
        let peer = context.provider(Some("peer")).unwrap();
        assert_eq!(context.store_key(peer), "dev/peer");
        assert!(context.provider(None).unwrap_err().to_string().contains("pass --provider"));
        let machine = context.provider(Some("machine")).unwrap().build("config.toml", "dev").unwrap();
        assert_eq!(machine.client.method, ClientAuthMethod::Post);
        assert!(matches!(machine.endpoints, Endpoints::Explicit { .. }));
        assert!(!format!("{peer:?}").contains("literal-secret"));
    }

    #[test]
    fn secrets_resolve_lazily_and_errors_name_the_place() {
        let config = Config::from_toml_str(GOOD, "config.toml").unwrap();
        let peer = config.context(None).unwrap().provider(Some("peer")).unwrap();
        // TESSERA_TEST_CONFIG_PASSWORD is set by no one: resolution must fail, naming the place.
        let error = peer.build("config.toml", "dev").unwrap_err().to_string();
        assert!(
            error.contains("provider \"peer\", field \"password\"") && error.contains("TESSERA_TEST_CONFIG_PASSWORD"),
            "{error}"
        );
    }

    #[test]
    fn bad_lines_are_reported_with_place_and_field() {
        let cases = [
            (GOOD.replace("username = \"alice\"", "usernme = \"alice\""), "field \"usernme\": unknown field"),
            (
                GOOD.replace("provider = \"password\"", "provider = \"passwd\""),
                "field \"type\": unknown type \"passwd\"",
            ),
            (GOOD.replace("username = \"alice\"\n", ""), "field \"username\": is required"),
            (GOOD.replace("client_auth = \"post\"", "client_auth = \"jwt\""), "field \"client_auth\""),
            (GOOD.replace("current_context = \"dev\"", "current_context = \"prod\""), "names no context"),
            (GOOD.replace("scope = \"openid api:read\"", "scope = openid"), "line 13"),
            (GOOD.replace("env:TESSERA_TEST_CONFIG_PASSWORD", "env:"), "needs a valid environment variable name"),
            (GOOD.replace("http://127.0.0.1:4010\"", "ftp://x\""), "not an http(s) URL"),
        ];
        for (text, expected) in cases {
            let error = Config::from_toml_str(&text, "/home/u/config.toml").unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::Configuration { .. }));
            assert!(
                message.contains("/home/u/config.toml") && message.contains(expected),
                "{message} should contain {expected}"
            );
        }
    }

    #[test]
    fn device_code_providers_discover_or_name_their_device_endpoint() {
        let section = |fields: &str| {
            format!(
                "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"tv\"\nprovider = \"device_code\"\n\
                 client_id = \"device-client\"\nscope = \"openid offline_access\"\n{fields}"
            )
        };
        let discovered = Config::from_toml_str(&section("issuer = \"http://127.0.0.1:4010\"\n"), "c.toml").unwrap();
        let entry = discovered.context(None).unwrap().provider(None).unwrap();
        assert!(entry.is_interactive());
        let built = entry.build("c.toml", "dev").unwrap();
        assert!(matches!(built.grant, Grant::DeviceCode { device_authorization_endpoint: None }));
        assert_eq!(built.client.method, ClientAuthMethod::None, "public client without a secret");

        let explicit = section(
            "token_url = \"http://127.0.0.1:4010/token\"\n\
             device_authorization_endpoint = \"http://127.0.0.1:4010/device/auth\"\n",
        );
        let explicit = Config::from_toml_str(&explicit, "c.toml").unwrap();
        let built = explicit.context(None).unwrap().provider(None).unwrap().build("c.toml", "dev").unwrap();
        let Grant::DeviceCode { device_authorization_endpoint: Some(endpoint) } = built.grant else { panic!() };
        assert_eq!(endpoint, "http://127.0.0.1:4010/device/auth");

        let cases = [
            (
                section("token_url = \"http://127.0.0.1:4010/token\"\n"),
                "field \"device_authorization_endpoint\": is required",
            ),
            (section("issuer = \"http://x\"\nusername = \"alice\"\n"), "field \"username\": does not apply"),
            (section("issuer = \"http://x\"\ndevice_authorization_endpoint = \"ftp://x\"\n"), "not an http(s) URL"),
            (section("issuer = \"http://x\"\nclient_secret = \"keyring:bad\"\n"), "field \"client_secret\""),
        ];
        for (text, expected) in cases {
            let message = Config::from_toml_str(&text, "c.toml").unwrap_err().to_string();
            assert!(message.contains("provider \"tv\"") && message.contains(expected), "{message}: {expected}");
        }
        let misplaced = GOOD.replace("client_auth = \"post\"", "device_authorization_endpoint = \"http://x/d\"");
        let message = Config::from_toml_str(&misplaced, "c.toml").unwrap_err().to_string();
        assert!(message.contains("device_authorization_endpoint\": does not apply"), "{message}");
    }

    #[test]
    fn email_otp_and_cognito_providers_build_their_grants_and_name_bad_fields() {
        let section = |provider: &str, fields: &str| {
            format!(
                "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"p\"\nprovider = \"{provider}\"\n\
                 client_id = \"app\"\n{fields}"
            )
        };
        let build = |text: &str| {
            let config = Config::from_toml_str(text, "c.toml").unwrap();
            let entry = config.context(None).unwrap().provider(None).unwrap().clone();
            (entry.is_interactive(), entry.build("c.toml", "dev").unwrap())
        };
        let (interactive, otp) =
            build(&section("email_otp", "issuer = \"http://127.0.0.1:4010\"\nemail = \"a@example.com\"\n"));
        assert!(interactive);
        assert_eq!(otp.grant, Grant::email_otp("a@example.com"));
        let (_, explicit) = build(&section(
            "email_otp",
            "token_url = \"http://i/token\"\notp_start_url = \"http://i/otp/start\"\n\
             otp_verify_url = \"http://i/otp/verify\"\nemail = \"a@example.com\"\nmax_code_attempts = 5\n",
        ));
        let Grant::EmailOtp { otp_start_endpoint, otp_verify_endpoint, max_code_attempts, .. } = explicit.grant else {
            panic!()
        };
        assert_eq!(
            (otp_start_endpoint.as_deref(), otp_verify_endpoint.as_deref()),
            (Some("http://i/otp/start"), Some("http://i/otp/verify"))
        );
        assert_eq!(max_code_attempts, 5);

        let (interactive, cognito) = build(
            &section(
                "cognito",
                "region = \"eu-west-1\"\nusername = \"alice\"\npassword = \"env:TESSERA_TEST_UNSET_OK\"\n",
            )
            .replace("env:TESSERA_TEST_UNSET_OK", "literal-password"),
        );
        assert!(!interactive, "a password login asks only if the pool challenges");
        let Grant::Cognito { endpoint_url, username, password, auth_flow, .. } = cognito.grant else { panic!() };
        assert_eq!(endpoint_url, "https://cognito-idp.eu-west-1.amazonaws.com/");
        assert_eq!((username.as_str(), password), ("alice", Some(Secret::new("literal-password"))));
        assert_eq!(auth_flow, tessera_core::CognitoAuthFlow::UserPassword);
        let (interactive, custom) = build(&section(
            "cognito",
            "endpoint_url = \"http://127.0.0.1:9229/\"\nusername = \"carol\"\nauth_flow = \"custom\"\nclient_secret = \"s\"\n",
        ));
        assert!(interactive, "CUSTOM_AUTH sends the person a code");
        assert!(matches!(
            custom.grant,
            Grant::Cognito { auth_flow: tessera_core::CognitoAuthFlow::Custom, password: None, .. }
        ));
        assert_eq!(custom.client.client_secret, Some(Secret::new("s")), "SECRET_HASH needs the app client's secret");

        let cases = [
            (section("email_otp", "issuer = \"http://x\"\n"), "field \"email\": is required"),
            (
                section("email_otp", "token_url = \"http://x/t\"\nemail = \"a@b\"\n"),
                "field \"otp_start_endpoint\": is required",
            ),
            (
                section("email_otp", "issuer = \"http://x\"\nemail = \"a@b\"\npassword = \"p\"\n"),
                "field \"password\": does not apply",
            ),
            (
                section("email_otp", "issuer = \"http://x\"\nemail = \"a@b\"\nmax_code_attempts = 0\n"),
                "must be at least 1",
            ),
            (section("cognito", "username = \"u\"\npassword = \"p\"\n"), "field \"region\": is required"),
            (section("cognito", "region = \"eu west\"\nusername = \"u\"\npassword = \"p\"\n"), "not an AWS region"),
            (
                section("cognito", "region = \"r\"\nendpoint_url = \"http://x\"\nusername = \"u\"\npassword = \"p\"\n"),
                "not both",
            ),
            (section("cognito", "region = \"r\"\nusername = \"u\"\n"), "field \"password\": is required"),
            (
                section("cognito", "region = \"r\"\nusername = \"u\"\nauth_flow = \"srp\"\n"),
                "is not one of user_password, custom",
            ),
            (
                section("cognito", "issuer = \"http://x\"\nregion = \"r\"\nusername = \"u\"\npassword = \"p\"\n"),
                "field \"issuer\": does not apply",
            ),
            (
                section("password", "issuer = \"http://x\"\nusername = \"u\"\npassword = \"p\"\nregion = \"r\"\n"),
                "field \"region\": does not apply",
            ),
        ];
        for (text, expected) in cases {
            let message = Config::from_toml_str(&text, "c.toml").unwrap_err().to_string();
            assert!(message.contains("provider \"p\"") && message.contains(expected), "{message}: {expected}");
        }
    }

    #[test]
    fn a_password_provider_without_a_password_loads_and_needs_one_typed() {
        let section = |fields: &str| {
            format!(
                "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"peer\"\ntype = \"password\"\n\
                 client_id = \"c\"\nissuer = \"http://127.0.0.1:4010\"\nusername = \"alice\"\n{fields}"
            )
        };
        let entry = Config::from_toml_str(&section(""), "c.toml").unwrap().contexts[0].providers[0].clone();
        assert!(entry.password_missing() && !entry.is_interactive());
        // Without the typed password: the login needs a person (as a static provider without a token).
        let error = entry.build("c.toml", "dev").unwrap_err();
        assert!(
            error.requires_reauthentication() && error.to_string().contains("type it at `tessera login`"),
            "{error}"
        );
        // Typed: taken literally, never read as a reference.
        let typed = |password: &str| TypedSecrets { password: Some(Secret::new(password)), totp: None };
        let built = entry.build_with_typed("c.toml", "dev", &typed("env:NOT_A_VARIABLE ")).unwrap();
        let Grant::Password { username, password, .. } = built.grant else { panic!("a password grant") };
        assert_eq!((username.as_str(), password.expose_secret()), ("alice", "env:NOT_A_VARIABLE "));
        // A configured password is used as before, and a typed one is ignored.
        let given =
            Config::from_toml_str(&section("password = \"p\"\n"), "c.toml").unwrap().contexts[0].providers[0].clone();
        assert!(!given.password_missing());
        let Grant::Password { password, .. } = given.build_with_typed("c.toml", "dev", &typed("x")).unwrap().grant
        else {
            panic!()
        };
        assert_eq!(password.expose_secret(), "p");
        // A totp_secret that cannot be read: named (not shown); a typed code takes its place.
        let unset = Config::from_toml_str(
            &section("password = \"p\"\ntotp_secret = \"env:TESSERA_TEST_UNSET_TOTP\"\n"),
            "c.toml",
        )
        .unwrap()
        .contexts[0]
            .providers[0]
            .clone();
        assert_eq!(
            unset.totp_unavailable().as_deref(),
            Some("totp_secret: environment variable TESSERA_TEST_UNSET_TOTP is not set")
        );
        assert!(given.totp_unavailable().is_none());
        let code = TypedSecrets { password: None, totp: Some(Secret::new("123456")) };
        let Grant::Password { totp, .. } = unset.build_with_typed("c.toml", "dev", &code).unwrap().grant else {
            panic!()
        };
        assert!(matches!(totp, Some(tessera_core::TotpSource::Code(code)) if code.expose_secret() == "123456"));
        // Given but blank is still a mistake; other rules are still checked without a password.
        for (fields, expected) in [
            ("password = \" \"\n", "field \"password\": is required"),
            ("totp = \"1\"\ntotp_secret = \"2\"\n", "give either totp"),
            ("client_auth = \"client_secret_post\"\n", "client_secret"),
        ] {
            let error = Config::from_toml_str(&section(fields), "c.toml").unwrap_err();
            assert!(error.to_string().contains(expected), "{fields}: {error}");
        }
    }

    #[test]
    fn browser_providers_build_their_grant_and_loopback_settings_and_name_bad_fields() {
        let section = |fields: &str| {
            format!(
                "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"web\"\nprovider = \"browser\"\n\
                 client_id = \"tessera-cli\"\n{fields}"
            )
        };
        let entry = |text: &str| Config::from_toml_str(text, "c.toml").unwrap().contexts[0].providers[0].clone();

        // Discovery, defaults: scope openid, loopback on any port at /callback for 5 minutes.
        let discovered = entry(&section("issuer = \"http://127.0.0.1:4010\"\n"));
        assert!(discovered.is_interactive() && discovered.kind().is_some_and(ProviderKind::may_prompt));
        assert_eq!(discovered.loopback_settings(), Some(crate::browser::LoopbackSettings::default()));
        let built = discovered.build("c.toml", "dev").unwrap();
        assert_eq!(built.scope.as_deref(), Some(DEFAULT_BROWSER_SCOPE));
        assert_eq!(built.client.method, ClientAuthMethod::None);
        assert_eq!(
            built.grant,
            Grant::Browser { authorization_endpoint: None, redirect_uri: None, authorization_params: Vec::new() }
        );

        // Explicit endpoints, listener settings and extra parameters.
        let explicit = entry(&section(
            "token_url = \"http://i/token\"\nauthorization_url = \"http://i/authorize\"\nscope = \"api\"\n\
             client_secret = \"s\"\nredirect_port = 8400\nredirect_path = \"/cb\"\nlogin_timeout = 60\n\
             authorization_params = { prompt = \"consent\", login_hint = \"alice\" }\n",
        ));
        let loopback = explicit.loopback_settings().unwrap();
        assert_eq!((loopback.port, loopback.path.as_str(), loopback.timeout.as_secs()), (8400, "/cb", 60));
        let built = explicit.build("c.toml", "dev").unwrap();
        assert_eq!(built.scope.as_deref(), Some("api"));
        assert_eq!(built.client.method, ClientAuthMethod::Basic);
        let Grant::Browser { authorization_endpoint, redirect_uri, authorization_params } = built.grant else {
            panic!()
        };
        assert_eq!((authorization_endpoint.as_deref(), redirect_uri), (Some("http://i/authorize"), None));
        assert_eq!(
            authorization_params,
            vec![("login_hint".to_owned(), "alice".to_owned()), ("prompt".to_owned(), "consent".to_owned())]
        );

        // Paste mode: a fixed redirect URI, no listener.
        let paste = entry(&section("issuer = \"http://x\"\nredirect_uri = \"http://127.0.0.1:8400/callback\"\n"));
        assert_eq!(paste.loopback_settings(), None);
        let Grant::Browser { redirect_uri, .. } = paste.build("c.toml", "dev").unwrap().grant else { panic!() };
        assert_eq!(redirect_uri.as_deref(), Some("http://127.0.0.1:8400/callback"));

        let cases = [
            (section("token_url = \"http://x/t\"\n"), "field \"authorization_endpoint\": is required"),
            (
                section("token_url = \"http://x/t\"\nauthorization_url = \"http://x/a\"\nscope = \"openid api\"\n"),
                "field \"scope\": \"openid\" needs issuer",
            ),
            (section("issuer = \"http://x\"\nauthorization_url = \"ftp://x\"\n"), "not an http(s) URL"),
            (section("issuer = \"http://x\"\nredirect_uri = \"nope\"\n"), "field \"redirect_uri\""),
            (
                section("issuer = \"http://x\"\nredirect_uri = \"http://127.0.0.1/cb?x=1\"\n"),
                "neither a query nor a fragment",
            ),
            (
                section("issuer = \"http://x\"\nredirect_uri = \"http://127.0.0.1/cb\"\nredirect_port = 1\n"),
                "field \"redirect_port\": does not apply",
            ),
            (section("issuer = \"http://x\"\nredirect_path = \"cb\"\n"), "must start with '/'"),
            (section("issuer = \"http://x\"\nredirect_port = 70000\n"), "redirect_port"),
            (section("issuer = \"http://x\"\nlogin_timeout = 0\n"), "field \"login_timeout\": must be at least 1"),
            (
                section("issuer = \"http://x\"\nauthorization_params = { state = \"x\" }\n"),
                "field \"authorization_params.state\": is set by tessera",
            ),
            (section("issuer = \"http://x\"\nauthorization_params = { prompt = 1 }\n"), "authorization_params"),
            (section("issuer = \"http://x\"\npassword = \"p\"\n"), "field \"password\": does not apply"),
            (
                GOOD.replace("client_auth = \"post\"", "redirect_uri = \"http://127.0.0.1/cb\""),
                "field \"redirect_uri\": does not apply to provider type \"client_credentials\"",
            ),
        ];
        for (text, expected) in cases {
            let error = Config::from_toml_str(&text, "c.toml").unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::Configuration { .. }));
            assert!(
                message.contains("c.toml: context \"dev\", provider") && message.contains(expected),
                "{message}: {expected}"
            );
        }
    }

    #[test]
    fn custom_types_keep_their_raw_section_and_unknown_ones_are_named() {
        let text = format!(
            "{GOOD}\n[[contexts.auth_providers]]\nname = \"catalog\"\nprovider = \"api_key\"\nkey = \"k-literal\"\n\
             api_secret = \"env:CATALOG\"\nregion = \"eu\"\napi_token = [\"k-in-a-list\"]\n\
             api_password = \"env:k-after-env\"\ntoken_ttl = 300\n"
        );
        let error = Config::from_toml_str(&text, "c.toml").unwrap_err().to_string();
        assert!(error.contains("provider \"catalog\", field \"type\": unknown type \"api_key\""), "{error}");
        let mut types = PROVIDER_TYPES.to_vec();
        types.push("api_key");
        let config = Config::from_toml_str_with_types(&text, "c.toml", &types).unwrap();
        let catalog = config.context(None).unwrap().provider(Some("catalog")).unwrap();
        assert!(!catalog.is_builtin());
        assert_eq!(catalog.settings()["region"].as_str(), Some("eu"));
        assert!(!format!("{catalog:?}").contains("k-literal"));

        // `config view`: literal secrets masked, references and everything else shown.
        let masked = toml::to_string(&config.masked()).unwrap();
        // A secret field of the wrong type, or holding a malformed reference (a custom type's
        // section is not checked on load), too.
        for hidden in ["literal-secret", "k-literal", "k-in-a-list", "k-after-env"] {
            assert!(!masked.contains(hidden), "{masked}");
        }
        for shown in [
            "env:TESSERA_TEST_CONFIG_PASSWORD",
            "env:CATALOG",
            "region = \"eu\"",
            "username = \"alice\"",
            "token_ttl = 300",
        ] {
            assert!(masked.contains(shown), "{shown} in {masked}");
        }
        let reparsed = Config::from_toml_str_with_types(&masked, "masked", &types).unwrap();
        assert_eq!(reparsed.contexts[0].providers.len(), 3);

        // A literal Redis URL may hold a password: masked; a reference is shown.
        let with_store = GOOD.replace(
            "name = \"dev\"\n",
            "name = \"dev\"\nstore = { kind = \"redis\", url = \"redis://:hunter2@127.0.0.1/0\" }\n",
        );
        let masked = toml::to_string(&Config::from_toml_str(&with_store, "c.toml").unwrap().masked()).unwrap();
        assert!(!masked.contains("hunter2") && masked.contains("kind = \"redis\""), "{masked}");
        let reparsed = Config::from_toml_str(&masked, "masked").unwrap();
        assert!(reparsed.contexts[0].store.is_some());
    }

    #[test]
    fn keyring_references_are_checked_on_load_and_never_taken_literally() {
        // Well-formed: loads (the keyring is read only when the secret is needed), and is shown by
        // `config view` as the reference.
        let text = GOOD.replace("env:TESSERA_TEST_CONFIG_PASSWORD", "keyring:tessera/alice");
        let config = Config::from_toml_str(&text, "c.toml").unwrap();
        assert!(toml::to_string(&config.masked()).unwrap().contains("password = \"keyring:tessera/alice\""));
        // Malformed: a configuration error naming file, context, provider and field.
        for (reference, expected) in
            [("keyring:tessera", "expected keyring:<service>/<account>"), ("keyring:a@b/c", "'@'")]
        {
            let text = GOOD.replace("env:TESSERA_TEST_CONFIG_PASSWORD", reference);
            let error = Config::from_toml_str(&text, "c.toml").unwrap_err();
            assert!(matches!(error, Error::Configuration { .. }));
            let message = error.to_string();
            assert!(
                message.contains("c.toml: context \"dev\", provider \"peer\", field \"password\"")
                    && message.contains(expected),
                "{message}"
            );
        }
    }

    #[cfg(not(all(feature = "keyring", target_os = "linux")))]
    #[test]
    fn keyring_references_without_the_feature_say_what_to_use_instead() {
        let text = GOOD.replace("env:TESSERA_TEST_CONFIG_PASSWORD", "keyring:tessera/alice");
        let config = Config::from_toml_str(&text, "c.toml").unwrap();
        let peer = config.context(None).unwrap().provider(Some("peer")).unwrap();
        let error = peer.build("c.toml", "dev").unwrap_err().to_string();
        assert!(error.contains("field \"password\"") && error.contains("use an env: or file: reference"), "{error}");
    }

    #[cfg(unix)] // checks the file's mode
    #[test]
    fn use_context_edits_one_line_and_keeps_comments_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = format!("# my comment\n{GOOD}\n[[contexts]]\nname = \"prod\"\n");
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        set_current_context(&path, "prod", PROVIDER_TYPES).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after, text.replace("current_context = \"dev\"", "current_context = \"prod\""));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let error = set_current_context(&path, "staging", PROVIDER_TYPES).unwrap_err().to_string();
        assert!(error.contains("no context named \"staging\" (have: dev, prod)"), "{error}");

        // Without the key, it is added at the top.
        std::fs::write(&path, text.replace("current_context = \"dev\"\n", "")).unwrap();
        set_current_context(&path, "dev", PROVIDER_TYPES).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with("current_context = \"dev\"\n# my comment\n"), "{after}");
    }

    #[cfg(unix)] // checks the file's mode
    #[test]
    fn current_provider_is_the_default_of_its_context_and_use_provider_edits_one_line() {
        use std::os::unix::fs::PermissionsExt;
        let several = Config::from_toml_str(GOOD, "c.toml").unwrap();
        let error = several.context(None).unwrap().provider(None).unwrap_err().to_string();
        assert!(
            error.contains("several providers")
                && error.contains("tessera config use-provider NAME")
                && error.contains("(one of: peer, machine)"),
            "{error}"
        );
        let with_default = GOOD.replace("name = \"dev\"\n", "name = \"dev\"\ncurrent_provider = \"machine\"\n");
        let config = Config::from_toml_str(&with_default, "c.toml").unwrap();
        let dev = config.context(None).unwrap();
        assert_eq!(dev.provider(None).unwrap().name, "machine");
        assert_eq!(dev.provider(Some("peer")).unwrap().name, "peer", "a name given wins");
        assert!(toml::to_string(&config.masked()).unwrap().contains("current_provider = \"machine\""));
        let unknown = with_default.replace("current_provider = \"machine\"", "current_provider = \"nobody\"");
        let error = Config::from_toml_str(&unknown, "c.toml").unwrap_err().to_string();
        assert!(
            error.contains("c.toml: context \"dev\": current_provider \"nobody\" names no provider")
                && error.contains("(have: peer, machine)"),
            "{error}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = format!(
            "# my comment\n{GOOD}\n[[contexts]]\nname = \"prod\" # prod\n[[contexts.auth_providers]]\nname = \"ci\"\ntype = \"static\"\n"
        );
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        set_current_provider(&path, "dev", "machine", PROVIDER_TYPES).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after, text.replacen("name = \"dev\"\n", "name = \"dev\"\ncurrent_provider = \"machine\"\n", 1));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        set_current_provider(&path, "dev", "peer", PROVIDER_TYPES).unwrap();
        let again = std::fs::read_to_string(&path).unwrap();
        assert_eq!(again, after.replace("current_provider = \"machine\"", "current_provider = \"peer\""));
        set_current_provider(&path, "prod", "ci", PROVIDER_TYPES).unwrap();
        let config = Config::load(&path).unwrap();
        let defaults: Vec<_> = config.contexts.iter().map(|c| c.current_provider.as_deref()).collect();
        assert_eq!(defaults, [Some("peer"), Some("ci")]);
        let error = set_current_provider(&path, "dev", "ci", PROVIDER_TYPES).unwrap_err().to_string();
        assert!(error.contains("context \"dev\" has no provider named \"ci\" (have: peer, machine)"), "{error}");
        let error = set_current_provider(&path, "staging", "ci", PROVIDER_TYPES).unwrap_err().to_string();
        assert!(error.contains("no context named \"staging\" (have: dev, prod)"), "{error}");
    }

    #[test]
    fn references_read_files_and_never_echo_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(resolve_reference(&format!("file:{}", path.display())).unwrap().expose_secret(), "s3cret");
        assert_eq!(resolve_reference("plain").unwrap().expose_secret(), "plain");
        let missing = resolve_reference("file:/nonexistent/secret").unwrap_err();
        assert!(missing.contains("/nonexistent/secret"));
    }
}
