//! One `[[contexts.auth_providers]]` section: `name`, `type`, and for built-in types the one
//! provider description ([`ProviderSpec`]) it is read into. Never reads a secret: references are
//! checked for form here and resolved by [`ProviderEntry::build`].

use tessera_core::provider_spec::{FIELDS, FieldError, FieldType, ProviderKind, ProviderSpec, echo_identifier};
use tessera_core::{Error, ProviderConfig, Secret};

use super::Location;
use super::secret_ref::{is_well_formed_reference, resolve_reference};

/// One `[[contexts.auth_providers]]` section, validated but with secrets unresolved.
///
/// Built-in types are read into the one provider description ([`ProviderSpec`], shared with the
/// JSON API and the Python constructors); every type keeps its raw section in
/// [`ProviderEntry::settings`].
#[derive(Clone)]
pub struct ProviderEntry {
    /// The provider's name in its context.
    pub name: String,
    /// Its `type` (a [`ProviderKind`] name, or a type registered from outside).
    pub type_name: String,
    /// The description, for built-in types.
    spec: Option<ProviderSpec>,
    /// The raw section (secrets unresolved), for factories of custom types and `config view`.
    settings: toml::Table,
}

impl std::fmt::Debug for ProviderEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let client = self.spec.as_ref().map(|spec| &spec.client);
        f.debug_struct("ProviderEntry")
            .field("name", &self.name)
            .field("type", &self.type_name)
            .field("issuer", &client.and_then(|c| c.issuer.as_deref()))
            .field("token_endpoint", &client.and_then(|c| c.token_endpoint.as_deref()))
            .field("client_id", &client.and_then(|c| c.client_id.as_deref()))
            .finish_non_exhaustive()
    }
}

impl ProviderEntry {
    /// Reads one section: `name` and `type` for every type; built-in types into their
    /// [`ProviderSpec`] (old field spellings are accepted with a logged deprecation warning).
    pub(super) fn from_table(
        table: toml::Table,
        origin: &str,
        context: &str,
        index: usize,
        types: &[&str],
    ) -> Result<Self, Error> {
        let fallback = format!("#{}", index + 1);
        let name = match table.get("name") {
            Some(toml::Value::String(name)) => name.clone(),
            Some(_) => return Err(Location { origin, context, provider: &fallback }.error("name", "must be a string")),
            None => return Err(Location { origin, context, provider: &fallback }.error("name", "is required")),
        };
        let at = Location { origin, context, provider: &name };
        let type_name = match (table.get("type"), table.get("provider")) {
            (Some(_), Some(_)) => return Err(at.error("provider", "is the old name of type: give only type")),
            (Some(toml::Value::String(type_name)), None) | (None, Some(toml::Value::String(type_name))) => {
                type_name.clone()
            }
            (Some(_), None) | (None, Some(_)) => return Err(at.error("type", "must be a string")),
            // A resource alone: a resource-first browser login (the description says so too).
            (None, None) if table.contains_key("resource") => ProviderKind::Browser.as_str().to_owned(),
            (None, None) => return Err(at.error("type", &format!("is required (one of: {})", types.join(", ")))),
        };
        if !types.contains(&type_name.as_str()) {
            return Err(at.error(
                "type",
                &format!("unknown type{} (expected one of: {})", echo_identifier(&type_name), types.join(", ")),
            ));
        }
        let spec = match ProviderKind::from_name(&type_name) {
            Some(_) => Some(at.spec(&table)?),
            None => None,
        };
        Ok(ProviderEntry { name, type_name, spec, settings: table })
    }

    /// The raw section, secrets unresolved (e.g. `client_secret = "env:NAME"`). Factories of custom
    /// types read their fields here; resolve secret fields with [`resolve_reference`].
    pub fn settings(&self) -> &toml::Table {
        &self.settings
    }

    /// The built-in type, `None` for types registered from outside.
    pub fn kind(&self) -> Option<ProviderKind> {
        self.spec.as_ref().map(ProviderSpec::kind)
    }

    /// The description of a built-in type (secrets unresolved).
    pub fn spec(&self) -> Option<&ProviderSpec> {
        self.spec.as_ref()
    }

    /// True for built-in types.
    pub fn is_builtin(&self) -> bool {
        self.spec.is_some()
    }

    /// True when logging in needs a person (device code, email code, browser; also `cognito` with
    /// `auth_flow = "custom"`, whose challenge is a code sent to the person).
    pub fn is_interactive(&self) -> bool {
        self.spec.as_ref().is_some_and(|spec| spec.grant.is_interactive())
    }

    /// An error naming `origin`, `context`, this provider and `field`.
    pub fn error(&self, origin: &str, context: &str, field: &str, problem: &str) -> Error {
        Location { origin, context, provider: &self.name }.error(field, problem)
    }

    /// The raw section with literal secrets replaced by `"***"` (see [`Config::masked`]).
    pub fn masked_settings(&self) -> toml::Table {
        let builtin = self.is_builtin();
        let mut table = self.settings.clone();
        for (field, value) in table.iter_mut() {
            let secret = if builtin {
                is_secret_field(field)
            } else {
                ["secret", "password", "token", "key"].iter().any(|word| field.contains(word))
            };
            // A literal, a malformed reference (a secret after `env:`?), or a list or table that
            // may hold one; numbers and booleans (a custom type's `token_ttl`) are shown.
            let hidden = match &*value {
                toml::Value::String(text) => !is_well_formed_reference(text),
                toml::Value::Array(_) | toml::Value::Table(_) => true,
                _ => false,
            };
            if secret && hidden {
                *value = toml::Value::String("***".into());
            } else if builtin
                && field == "proxy"
                && let toml::Value::String(url) = &*value
            {
                // A proxy URL may carry a password: shown without it.
                *value = toml::Value::String(tessera_core::provider_spec::redact_url(url));
            }
        }
        table
    }

    /// Browser providers: where the loopback listener listens and how long it waits (`None` for other
    /// types, and for paste mode, where nothing listens).
    pub fn loopback_settings(&self) -> Option<crate::browser::LoopbackSettings> {
        let loopback = self.spec.as_ref()?.loopback()?;
        let defaults = crate::browser::LoopbackSettings::default();
        Some(crate::browser::LoopbackSettings {
            port: loopback.port.unwrap_or(defaults.port),
            path: loopback.path.unwrap_or(defaults.path),
            timeout: loopback.timeout_secs.map(std::time::Duration::from_secs).unwrap_or(defaults.timeout),
        })
    }

    /// Resolves secret references and builds the core configuration. `origin` and `context` name
    /// the place in errors.
    pub fn build(&self, origin: &str, context: &str) -> Result<ProviderConfig, Error> {
        let at = Location { origin, context, provider: &self.name };
        let Some(spec) = &self.spec else {
            return Err(at.error("type", &format!("{:?} is built by its registered factory", self.type_name)));
        };
        if let tessera_core::provider_spec::GrantSpec::Static { access_token: None, .. } = &spec.grant {
            return Err(Error::ReauthenticationRequired {
                reason: format!(
                    "static provider {:?} has no access_token: run `tessera login --with-token`",
                    self.name
                ),
            });
        }
        if self.password_missing() {
            return Err(Error::ReauthenticationRequired {
                reason: format!(
                    "password provider {:?} has no password in the configuration: type it at `tessera login` in a terminal",
                    self.name
                ),
            });
        }
        spec.into_config(&mut |_, value| resolve_reference(value.expose_secret()))
            .map_err(|e| at.field_error(&in_key_file(spec, e)))
    }

    /// Like [`ProviderEntry::build`], for revoking at logout: only the client's own secret is read,
    /// since RFC 7009 authenticates the client and nothing else. The login secrets (a password, a
    /// TOTP secret, a configured refresh or static token) are not resolved, so that one that is
    /// missing (an unset variable) cannot keep a grant alive at the server; placeholders stand in
    /// for them, and are never sent (a revocation sends the stored token, never a login secret).
    pub fn build_for_revocation(&self, origin: &str, context: &str) -> Result<ProviderConfig, Error> {
        use tessera_core::provider_spec::GrantSpec;
        const NOT_READ: &str = "not-read-at-logout";
        let at = Location { origin, context, provider: &self.name };
        let Some(spec) = &self.spec else {
            return Err(at.error("type", &format!("{:?} is built by its registered factory", self.type_name)));
        };
        let mut spec = spec.clone();
        // Fields a login may leave out (a static token given later, a password typed at login):
        // placeholders, so that building does not stop at their absence either.
        match &mut spec.grant {
            GrantSpec::Static { access_token: missing @ None, .. }
            | GrantSpec::Password { password: missing @ None, .. } => {
                *missing = Some(Secret::new(NOT_READ));
            }
            _ => {}
        }
        spec.into_config(&mut |field, value| match field {
            // What authenticates the client, and a service-account key file (it names the client
            // and the token endpoint): a jwt_bearer provider is built with them and its key.
            "client_secret" | "client_assertion_key" | "assertion_key" | "service_account_key" => {
                resolve_reference(value.expose_secret())
            }
            _ => Ok(Secret::new(NOT_READ)),
        })
        .map_err(|e| at.field_error(&in_key_file(&spec, e)))
    }

    /// True for a `password` provider whose section gives no `password`: a person types it at login
    /// ([`ProviderEntry::build_with_typed`]); [`ProviderEntry::build`] says so.
    pub fn password_missing(&self) -> bool {
        matches!(
            self.spec.as_ref().map(|spec| &spec.grant),
            Some(tessera_core::provider_spec::GrantSpec::Password { password: None, .. })
        )
    }

    /// For a `password` provider whose `totp_secret` (or `totp`) reference cannot be read now (an
    /// `env:` variable that is not set, a missing file or keyring entry): which field and why,
    /// never its value. A person may type the current code instead ([`TypedSecrets::totp`]).
    pub fn totp_unavailable(&self) -> Option<String> {
        use tessera_core::provider_spec::GrantSpec;
        let GrantSpec::Password { totp, totp_secret, .. } = &self.spec.as_ref()?.grant else { return None };
        let (field, value) = match (totp_secret, totp) {
            (Some(secret), _) => ("totp_secret", secret),
            (None, Some(code)) => ("totp", code),
            (None, None) => return None,
        };
        resolve_reference(value.expose_secret()).err().map(|problem| format!("{field}: {problem}"))
    }

    /// Like [`ProviderEntry::build`], with what a person typed for a `password` provider: its
    /// password when the section has none, the current TOTP code in place of a `totp_secret` or
    /// `totp` that cannot be read. Typed values are taken literally (never read as `env:`,
    /// `file:` or `keyring:` references) and kept nowhere but in the returned configuration; a
    /// typed TOTP code makes the login one that needs a person. Other entries, and fields not
    /// typed, are built as [`ProviderEntry::build`] does.
    pub fn build_with_typed(&self, origin: &str, context: &str, typed: &TypedSecrets) -> Result<ProviderConfig, Error> {
        use tessera_core::provider_spec::GrantSpec;
        let Some(spec) = self.spec.as_ref().filter(|spec| matches!(spec.grant, GrantSpec::Password { .. })) else {
            return self.build(origin, context);
        };
        let mut with_typed = spec.clone();
        if let GrantSpec::Password { password, totp, totp_secret, .. } = &mut with_typed.grant {
            if let Some(typed) = typed.password.as_ref().filter(|_| password.is_none()) {
                *password = Some(typed.clone());
            }
            if let Some(code) = &typed.totp {
                *totp = Some(code.clone());
                *totp_secret = None;
            }
        }
        if self.password_missing() && typed.password.is_none() {
            return self.build(origin, context);
        }
        let literal = |field: &str| match field {
            "password" => self.password_missing(),
            "totp" => typed.totp.is_some(),
            _ => false,
        };
        let at = Location { origin, context, provider: &self.name };
        with_typed
            .into_config(&mut |field, value| {
                if literal(field) { Ok(value.clone()) } else { resolve_reference(value.expose_secret()) }
            })
            .map_err(|e| at.field_error(&e))
    }
}

/// What a person typed at login for a `password` provider ([`ProviderEntry::build_with_typed`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TypedSecrets {
    /// The password, when the section gives none.
    pub password: Option<Secret>,
    /// The current TOTP code, when the section's `totp_secret` (or `totp`) cannot be read.
    pub totp: Option<Secret>,
}

/// A problem with what a `service_account_key = "file:…"` holds, saying which file: the section
/// names only the reference, and the person has to open the file to fix it. Other errors as they are.
fn in_key_file(spec: &ProviderSpec, mut error: FieldError) -> FieldError {
    use tessera_core::provider_spec::GrantSpec;
    if error.field == "service_account_key"
        && let GrantSpec::JwtBearer { service_account_key: Some(reference), .. } = &spec.grant
        && let Ok(super::secret_ref::Reference::File(path)) =
            super::secret_ref::parse_reference(reference.expose_secret())
    {
        let path = super::secret_ref::expand_home(path);
        // A file that cannot be read already says which one.
        if !error.problem.contains(&*path.to_string_lossy()) {
            error.problem = format!("the key file {}: {}", path.display(), error.problem);
        }
    }
    error
}

/// True for the fields that hold secrets (current or old spelling).
pub(super) fn is_secret_field(name: &str) -> bool {
    let name = tessera_core::provider_spec::current_name(name).unwrap_or(name);
    FIELDS.iter().any(|field| field.name == name && field.ty == FieldType::Secret)
}
