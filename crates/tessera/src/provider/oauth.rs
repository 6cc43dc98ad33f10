//! The built-in provider types (`password`, `client_credentials`, `refresh_token`, `static`, `device_code`,
//! `email_otp`, `cognito`, `browser`, `jwt_bearer`):
//! an [`AuthProvider`] around a [`Session`].
//!
//! The session (and with it the secrets and the HTTP client) is built on first network use only:
//! status, credential and a valid stored token need neither.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tessera_core::provider_spec::{ClientSpec, GrantSpec, ProviderKind, ProviderSpec};
use tessera_core::{Error, Secret, TokenSet};

use super::{AuthProvider, Credential, HttpHeaders, Login, OAuthCredential, ProviderStatus, Refreshable, TokenSource};
use crate::clock::{Clock, SystemClock};
use crate::config::ProviderEntry;
use crate::prompt::Prompter;
use crate::registry::ProviderSettings;
use crate::session::{LogoutOutcome, Session, SessionSettings};
use crate::store::TokenStore;

/// A built-in OAuth provider (or a static token) configured by a `[[contexts.auth_providers]]` section.
pub struct OAuthProvider {
    kind: ProviderKind,
    entry: ProviderEntry,
    origin: String,
    context: String,
    key: String,
    store: Arc<dyn TokenStore>,
    settings: SessionSettings,
    prompter: Option<Arc<dyn Prompter>>,
    /// What a person typed at login (a password the section does not give, a TOTP code).
    typed: Option<crate::config::TypedSecrets>,
    /// RFC 8707: the resource its tokens are for (the section's `resource`, or `with_resource`),
    /// and more resources a login names.
    resource: Option<String>,
    also_at_login: Vec<String>,
    session: tokio::sync::OnceCell<Session>,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("entry", &self.entry)
            .field("context", &self.context)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl OAuthProvider {
    /// The provider of a built-in section. Reads no secret.
    pub fn from_settings(settings: &ProviderSettings<'_>) -> Result<Self, Error> {
        let entry = settings.entry();
        let Some(spec) = entry.spec() else {
            return Err(settings.error("type", "is not a built-in type: OAuthProvider cannot build it"));
        };
        Ok(OAuthProvider {
            kind: spec.kind(),
            entry: entry.clone(),
            origin: settings.origin().to_owned(),
            context: settings.context().to_owned(),
            key: settings.store_key(),
            store: Arc::clone(settings.store()),
            settings: SessionSettings {
                // Browser logins: the listener's port, path and timeout from the section.
                loopback: entry.loopback_settings().unwrap_or_default(),
                // Proxy, roots, time limit, user agent, allow_insecure_http.
                transport: crate::transport::TransportSettings::from_spec(&spec.transport),
                ..SessionSettings::default()
            },
            prompter: None,
            typed: None,
            resource: spec.client.resource.clone(),
            also_at_login: Vec::new(),
            session: tokio::sync::OnceCell::new(),
        })
    }

    /// Shows interactive logins (device codes) with `prompter`. Without one, a login that needs a
    /// person fails with `ReauthenticationRequired` before anything is sent.
    pub fn with_prompter(mut self, prompter: Arc<dyn Prompter>) -> Self {
        self.prompter = Some(prompter);
        self
    }

    /// Logs in with what a person typed: the password when the section gives none (see
    /// [`ProviderEntry::password_missing`]; without it such a provider fails with
    /// `ReauthenticationRequired` when it needs its session, before anything is sent), the current
    /// TOTP code when its `totp_secret` cannot be read ([`ProviderEntry::totp_unavailable`]).
    pub fn with_typed(mut self, typed: crate::config::TypedSecrets) -> Self {
        self.typed = Some(typed);
        self
    }

    /// Tokens for `resource` (RFC 8707) instead of the section's `resource`: another resource
    /// served by the same login (`tessera token --resource`). See [`crate::SessionBuilder::resource`].
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// More resources a login names, so that its refresh token serves them too
    /// (`tessera login URL URL…`). See [`crate::SessionBuilder::also_at_login`].
    pub fn also_at_login(mut self, resources: Vec<String>) -> Self {
        self.also_at_login = resources;
        self
    }

    /// The resource its tokens are for, when it has one.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Where its tokens are stored (`<context>/<name>`).
    pub fn store_key(&self) -> &str {
        &self.key
    }

    /// The session, built (secrets resolved) on first use. A failure is not remembered: a
    /// secret that appears later (a file written, a variable set) is picked up. A resource-first
    /// section ([`ProviderSpec::is_resource_first`]) finds its server and client first
    /// ([`Session::for_resource`]: network, and a registration the first time).
    pub async fn session(&self) -> Result<Session, Error> {
        if let Some(session) = self.session.get() {
            return Ok(session.clone());
        }
        let mut builder = match self.entry.spec().filter(|spec| spec.is_resource_first()) {
            // Nothing stored and nobody to log in: nothing is discovered or registered for nothing.
            Some(_) if self.prompter.is_none() && self.store.load(&self.key).await?.is_none() => {
                return Err(Error::ReauthenticationRequired {
                    reason: format!("{} has not logged in yet, and logging in needs a person", self.key),
                });
            }
            Some(spec) => {
                let resource = self.resource.as_deref().or(spec.client.resource.as_deref()).unwrap_or_default();
                let login = crate::resource::ResourceLogin {
                    store: Arc::clone(&self.store),
                    discovery: crate::resource::DiscoverySettings {
                        issuer: spec.client.issuer.clone(),
                        transport: self.settings.transport.clone(),
                        ..crate::resource::DiscoverySettings::default()
                    },
                    client: spec.client.client_id.clone().map(tessera_core::ClientAuth::public),
                    scope: spec.client.scope.clone(),
                    device_code: self.kind == ProviderKind::DeviceCode,
                    also_for: self.also_at_login.clone(),
                    loopback: self.settings.loopback.clone(),
                    // Paste mode: the section's fixed redirect URI is the one registered.
                    redirect_uri: match &spec.grant {
                        GrantSpec::Browser { redirect_uri, .. } => redirect_uri.clone(),
                        _ => None,
                    },
                    ..crate::resource::ResourceLogin::default()
                };
                Session::for_resource(self.key.clone(), resource, login).await?.settings(self.settings.clone())
            }
            None => {
                let config = match &self.typed {
                    Some(typed) => self.entry.build_with_typed(&self.origin, &self.context, typed)?,
                    None => self.entry.build(&self.origin, &self.context)?,
                };
                let builder = Session::builder(self.key.clone(), config)
                    .store(Arc::clone(&self.store))
                    .settings(self.settings.clone());
                match &self.resource {
                    Some(resource) => builder.resource(resource.clone()).also_at_login(self.also_at_login.clone()),
                    None => builder,
                }
            }
        };
        if let Some(prompter) = &self.prompter {
            builder = builder.prompter(Arc::clone(prompter));
        }
        let session = builder.build();
        Ok(self.session.get_or_init(|| async { session }).await.clone())
    }

    /// A session for logout only (see [`ProviderEntry::build_for_revocation`]): not kept, so that a
    /// later login in this process resolves every secret.
    fn revocation_session(&self) -> Result<Session, Error> {
        let config = self.entry.build_for_revocation(&self.origin, &self.context)?;
        Ok(Session::builder(self.key.clone(), config)
            .store(Arc::clone(&self.store))
            .settings(self.settings.clone())
            .build())
    }

    /// What the store holds for this provider (for its resource, when it has one).
    async fn stored(&self) -> Result<Option<TokenSet>, Error> {
        let stored = self.store.load(&self.key).await?;
        Ok(match &self.resource {
            Some(resource) => stored.map(|login| login.for_resource(resource)),
            None => stored,
        })
    }

    fn status_of(tokens: Option<&TokenSet>) -> ProviderStatus {
        match tokens {
            None => ProviderStatus::Available,
            Some(tokens) if tokens.is_expired(SystemClock.now()) => ProviderStatus::Expired,
            Some(_) => ProviderStatus::Authenticated,
        }
    }

    /// True when the type can get a new token without the user whatever is stored.
    fn renews_by_itself(&self) -> bool {
        match self.kind {
            ProviderKind::ClientCredentials | ProviderKind::JwtBearer => true,
            // Only with a password it may send again without asking.
            ProviderKind::Password => !self.entry.password_missing(),
            _ => false,
        }
    }

    /// The description (every `OAuthProvider` is of a built-in type).
    fn client(&self) -> Option<&ClientSpec> {
        self.entry.spec().map(|spec| &spec.client)
    }

    /// `issuer`, else `token_endpoint`.
    fn server(&self) -> Option<&str> {
        self.client().and_then(|c| c.issuer.as_deref().or(c.token_endpoint.as_deref()))
    }
}

#[async_trait]
impl AuthProvider for OAuthProvider {
    fn name(&self) -> &str {
        &self.entry.name
    }

    fn provider_type(&self) -> &str {
        &self.entry.type_name
    }

    fn description(&self) -> String {
        if let Some(spec) = self.entry.spec().filter(|spec| spec.is_resource_first()) {
            let how = if self.kind == ProviderKind::DeviceCode { "device code" } else { "browser sign-in" };
            let resource = self.resource.as_deref().or(spec.client.resource.as_deref()).unwrap_or("-");
            return format!("{how} for {resource} (its server and client found from it)");
        }
        let at = self.server().unwrap_or("-");
        let client_id = self.client().and_then(|c| c.client_id.as_deref()).unwrap_or("?");
        match self.entry.spec().map(|spec| &spec.grant) {
            Some(GrantSpec::Password { username, .. }) => format!("password grant for {username} at {at}"),
            Some(GrantSpec::ClientCredentials) => format!("client credentials for {client_id} at {at}"),
            Some(GrantSpec::JwtBearer { service_account_key: Some(_), .. }) => {
                format!("service-account assertion (key file) at {}", self.server().unwrap_or("its token_uri"))
            }
            Some(GrantSpec::JwtBearer { .. }) => format!("JWT bearer assertion for {client_id} at {at}"),
            Some(GrantSpec::RefreshToken { .. }) => format!("configured refresh token at {at}"),
            Some(GrantSpec::DeviceCode { .. }) => format!("device code for {client_id} at {at}"),
            Some(GrantSpec::Browser { .. }) => format!("browser sign-in for {client_id} at {at}"),
            Some(GrantSpec::EmailOtp { email, .. }) => format!("emailed code for {email} at {at}"),
            Some(GrantSpec::Cognito { username, region, endpoint_url, .. }) => {
                format!("Cognito user {username} at {}", region.as_deref().unwrap_or(endpoint_url))
            }
            _ => "static bearer token".to_owned(),
        }
    }

    async fn is_authenticated(&self) -> Result<bool, Error> {
        Ok(self.stored().await?.is_some_and(|tokens| tokens.access_valid(SystemClock.now(), Duration::ZERO)))
    }

    async fn status(&self) -> Result<ProviderStatus, Error> {
        Ok(Self::status_of(self.stored().await?.as_ref()))
    }

    fn auth_context(&self) -> Value {
        json!({
            "context": self.context,
            "name": self.entry.name,
            "type": self.entry.type_name,
            "store_key": self.key,
            "store": self.store.location(),
            "issuer": self.client().and_then(|c| c.issuer.as_deref()),
            "token_endpoint": self.client().and_then(|c| c.token_endpoint.as_deref()),
            "client_id": self.client().and_then(|c| c.client_id.as_deref()),
            "username": match self.entry.spec().map(|spec| &spec.grant) {
                Some(GrantSpec::Password { username, .. } | GrantSpec::Cognito { username, .. }) => Some(username.as_str()),
                _ => None,
            },
            "scope": self.client().and_then(|c| c.scope.as_deref()),
        })
    }

    async fn credential(&self) -> Result<Credential, Error> {
        let tokens = self.stored().await?;
        let now = SystemClock.now();
        Ok(Credential::OAuth(OAuthCredential {
            name: self.entry.name.clone(),
            status: Self::status_of(tokens.as_ref()),
            client_id: self.client().and_then(|c| c.client_id.clone()),
            allows_refresh: self.renews_by_itself()
                || tokens.as_ref().is_some_and(|t| t.refresh_valid(now, Duration::ZERO)),
            access_token: tokens.as_ref().map(|t| t.access_token.clone()),
            refresh_token: tokens.as_ref().and_then(|t| t.refresh_token.clone()),
            expires_at: tokens.as_ref().and_then(|t| t.expires_at),
        }))
    }

    fn extra_info(&self) -> serde_json::Map<String, Value> {
        let mut extra = serde_json::Map::new();
        extra.insert("store_key".into(), Value::String(self.key.clone()));
        if let Some(endpoint) = self.server() {
            extra.insert("endpoint".into(), Value::String(endpoint.to_owned()));
        }
        extra
    }

    fn as_login(&self) -> Option<&dyn Login> {
        Some(self)
    }

    fn as_refreshable(&self) -> Option<&dyn Refreshable> {
        self.kind.can_refresh().then_some(self as &dyn Refreshable)
    }

    fn as_http_headers(&self) -> Option<&dyn HttpHeaders> {
        Some(self)
    }

    fn as_token_source(&self) -> Option<&dyn TokenSource> {
        Some(self)
    }
}

#[async_trait]
impl Login for OAuthProvider {
    async fn login(&self) -> Result<(), Error> {
        self.session().await?.login().await.map(drop)
    }

    async fn login_with_token(&self, token: Secret) -> Result<(), Error> {
        if self.kind != ProviderKind::Static {
            return Err(self.entry.error(
                &self.origin,
                &self.context,
                "type",
                "--with-token needs a provider of type \"static\"",
            ));
        }
        let token = Secret::new(token.expose_secret().trim());
        if token.is_empty() || token.expose_secret().contains(char::is_whitespace) {
            return Err(Error::configuration("the token given is empty or contains whitespace"));
        }
        let expires_at = match self.entry.spec().map(|spec| &spec.grant) {
            Some(GrantSpec::Static { expires_at, .. }) => *expires_at,
            _ => None,
        };
        self.store.save(&self.key, &TokenSet::bearer(token, expires_at, SystemClock.now())).await
    }

    async fn logout(&self) -> Result<LogoutOutcome, Error> {
        // A session this process already built revokes what it holds; otherwise one that reads the
        // client's secret only: a login secret that is missing must not keep the grant alive.
        let session = match self.session.get() {
            Some(session) => Ok(session.clone()),
            // Its server and client are found from the resource (the stored registration); with
            // nothing stored there is nothing to revoke, and nothing is registered to say so.
            None if self.entry.spec().is_some_and(ProviderSpec::is_resource_first) => {
                if self.store.load(&self.key).await?.is_none() {
                    return Ok(LogoutOutcome { revoked: false, revocation_error: None, had_tokens: false });
                }
                self.session().await
            }
            None => self.revocation_session(),
        };
        match session {
            Ok(session) => session.logout().await,
            // Forgetting tokens needs no secret; revoking needs the client's.
            Err(error) => {
                let had_tokens = self.stored().await?.is_some();
                self.store.clear(&self.key).await?;
                Ok(LogoutOutcome { revoked: false, revocation_error: Some(error), had_tokens })
            }
        }
    }
}

#[async_trait]
impl Refreshable for OAuthProvider {
    async fn can_refresh(&self) -> bool {
        if self.renews_by_itself() {
            return true;
        }
        match self.stored().await {
            Ok(Some(tokens)) => tokens.refresh_valid(SystemClock.now(), Duration::ZERO),
            Ok(None) => self.kind == ProviderKind::RefreshToken,
            Err(_) => false,
        }
    }

    async fn refresh(&self, force: bool) -> Result<(), Error> {
        let session = self.session().await?;
        if force { session.force_refresh().await.map(drop) } else { session.authorization_header().await.map(drop) }
    }
}

#[async_trait]
impl HttpHeaders for OAuthProvider {
    async fn headers(&self) -> Result<Vec<(String, Secret)>, Error> {
        let header = self.session().await?.authorization_header().await?;
        Ok(vec![("authorization".to_owned(), Secret::new(header.expose_secret()))])
    }
}

#[async_trait]
impl TokenSource for OAuthProvider {
    async fn token(&self, min_valid: Duration) -> Result<TokenSet, Error> {
        // A stored token outside its refresh window (and `min_valid`) needs no session at all.
        if let Some(tokens) = self.stored().await?
            && tokens.access_valid(SystemClock.now(), tokens.refresh_window(self.settings.refresh_skew).max(min_valid))
        {
            return Ok(tokens);
        }
        let session = self.session().await?;
        let header = session.authorization_header().await?;
        if header.tokens().access_valid(SystemClock.now(), min_valid) {
            return Ok(header.tokens().clone());
        }
        // Less than `min_valid` left (e.g. a kubectl plugin asking for 5 minutes): a new token now.
        let header = session.force_refresh().await?;
        Ok(header.tokens().clone())
    }
}
