//! Resource-first discovery: from an API's URL to the authorization server that issues its
//! tokens, with nothing configured but the URL (RFC 9728, RFC 8414, OpenID Connect Discovery);
//! and dynamic client registration at that server ([`register_client`], RFC 7591).
//!
//! The protocol and every check live in [`tessera_core::protocol::resource`] (the
//! [`ResourceDiscovery`] state machine); this module sends its requests, within limits: each
//! request is bounded by the transport's time limit, the whole discovery by
//! [`DiscoverySettings::timeout`], and every answer by [`MAX_METADATA_LEN`] bytes.
//!
//! ```no_run
//! # async fn example() -> Result<(), tessera::Error> {
//! use tessera::resource::{DiscoverySettings, discover_resource};
//!
//! let found = discover_resource("https://api.example.com/", &DiscoverySettings::default()).await?;
//! println!("tokens for {} come from {}", found.resource.resource, found.issuer);
//! println!("token endpoint: {}", found.server.token_endpoint);
//! if let Some(registration) = &found.server.registration_endpoint {
//!     println!("clients register at {registration}");
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tessera_core::flow::Grant;
use tessera_core::{
    ClientAuth, Endpoints, Error, MetadataProblem, ProviderConfig, StoredClient, Timestamp, TokenSet,
    TransportErrorKind,
};
use tracing::{debug, info};

use tessera_core::protocol::DEVICE_CODE_GRANT_TYPE;
pub use tessera_core::protocol::registration::{ClientRegistration, RegisteredClient};
use tessera_core::protocol::registration::{parse_registration_response, registration_request};
use tessera_core::protocol::resource::DiscoveryStep;
pub use tessera_core::protocol::resource::{
    DiscoveredResource, MAX_METADATA_LEN, ProtectedResourceMetadata, ResourceDiscovery,
};
use tessera_core::{RequestId, Secret};

use crate::browser::LoopbackSettings;
use crate::clock::{Clock, SystemClock};
use crate::store::{MemoryStore, TokenStore};
use crate::transport::{HttpTransport, TransportSettings};
use crate::{Session, SessionBuilder, SessionSettings};

/// How [`discover_resource`] runs.
#[derive(Clone, Debug)]
pub struct DiscoverySettings {
    /// The authorization server to use, by issuer identifier: it must be one the resource names in
    /// `authorization_servers` (else [`MetadataProblem::NoAuthorizationServer`]). Default none: the
    /// first the resource names. The same `issuer` as a provider's.
    pub issuer: Option<String>,
    /// The limit on the whole discovery (up to five requests). Default 30 s.
    pub timeout: Duration,
    /// Proxy, roots, per-request time limit, `allow_insecure_http`. Its `max_response_bytes` is
    /// lowered to [`MAX_METADATA_LEN`] for discovery.
    pub transport: TransportSettings,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings { issuer: None, timeout: Duration::from_secs(30), transport: TransportSettings::default() }
    }
}

impl DiscoverySettings {
    /// The default settings, choosing the authorization server `issuer`.
    pub fn with_issuer(issuer: impl Into<String>) -> Self {
        DiscoverySettings { issuer: Some(issuer.into()), ..Self::default() }
    }
}

/// Finds the authorization server of the protected resource at `resource` (its URL, which is also
/// its identifier) and that server's endpoints:
///
/// 1. `GET resource` without a token; a 401 whose `WWW-Authenticate` challenge has
///    `resource_metadata` names the metadata's URL (RFC 9728 §5.1), else it is the well-known
///    `{origin}/.well-known/oauth-protected-resource{path}` (§3.1);
/// 2. the RFC 9728 metadata, whose `resource` must be identical to `resource` (§3.3);
/// 3. the authorization server: [`DiscoverySettings::issuer`] when set (it must be listed), else
///    the first of `authorization_servers`;
/// 4. its metadata from RFC 8414's well-known URL, falling back to OpenID Connect discovery when
///    that location answers 4xx or not JSON; its `issuer` must be identical to the one chosen.
///
/// Errors: [`Error::Metadata`] for a document refused (issuer or resource mismatch, plain `http`
/// off loopback, larger than [`MAX_METADATA_LEN`], malformed field), [`Error::Configuration`]
/// for a `resource` that is not an `https` URL, the transport's and the servers' errors as usual,
/// and a [`TransportErrorKind::Timeout`] past [`DiscoverySettings::timeout`].
pub async fn discover_resource(resource: &str, settings: &DiscoverySettings) -> Result<DiscoveredResource, Error> {
    let mut discovery = ResourceDiscovery::new(resource, settings.issuer.as_deref())?;
    let transport = HttpTransport::new(TransportSettings {
        max_response_bytes: settings.transport.max_response_bytes.min(MAX_METADATA_LEN),
        ..settings.transport.clone()
    });
    // The probe (the resource itself) is read within the transport's own limit: only its status
    // and challenge matter, and an API's landing page may well be larger than a metadata document.
    let probe_transport = HttpTransport::new(settings.transport.clone());
    let run = async {
        let mut request = discovery.start();
        let mut probing = true;
        loop {
            let endpoint = request.endpoint();
            let request_id = request.id;
            let sent = if probing { probe_transport.execute(request).await } else { transport.execute(request).await };
            let response = match sent {
                // A probe too large to read says nothing about its challenge: as if it had none
                // (the well-known location comes next).
                Err(Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }) if probing => {
                    tessera_core::HttpResponse { request_id, status: 200, headers: Vec::new(), body: Vec::new() }
                }
                // A document, not the connection, is the problem: the typed metadata refusal.
                Err(Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }) => {
                    return Err(Error::Metadata {
                        problem: MetadataProblem::TooLarge { limit: MAX_METADATA_LEN },
                        endpoint,
                    });
                }
                other => other?,
            };
            probing = false;
            match discovery.handle(&response)? {
                DiscoveryStep::Send(next) => request = next,
                DiscoveryStep::Done(found) => return Ok(found),
                _ => return Err(Error::internal("a resource discovery step this runtime does not know")),
            }
        }
    };
    tokio::time::timeout(settings.timeout, run).await.unwrap_or_else(|_| {
        Err(Error::Transport {
            kind: TransportErrorKind::Timeout,
            endpoint: resource.split(['?', '#']).next().unwrap_or_default().to_owned(),
            message: format!("resource discovery took longer than {:?}", settings.timeout),
        })
    })
}

/// Registers a client at an authorization server's `registration_endpoint` (RFC 7591), e.g. the
/// [`DiscoveredResource`]'s `server.registration_endpoint`, with `initial_access_token` when the
/// server requires one. One request, within `transport`'s limits.
///
/// Errors: the server's refusal as [`Error::OAuth`] (`invalid_redirect_uri`,
/// `invalid_client_metadata`, ... as `OAuthErrorCode::Other`), a malformed answer as
/// [`Error::Metadata`] naming the field, the transport's errors as usual. The answer's
/// `client_secret` and `registration_access_token` are [`Secret`]s.
///
/// ```no_run
/// # async fn example(found: tessera::DiscoveredResource) -> Result<(), tessera::Error> {
/// use tessera::resource::{ClientRegistration, register_client};
/// use tessera::transport::TransportSettings;
///
/// let endpoint = found.server.registration_endpoint.as_deref().expect("the server registers clients");
/// let registration = ClientRegistration::public_native(&["http://127.0.0.1/callback"], "my tool");
/// let client = register_client(endpoint, &registration, None, &TransportSettings::default()).await?;
/// println!("registered as {}", client.client_id);
/// # Ok(()) }
/// ```
pub async fn register_client(
    registration_endpoint: &str,
    registration: &ClientRegistration,
    initial_access_token: Option<&Secret>,
    transport: &TransportSettings,
) -> Result<RegisteredClient, Error> {
    let request = registration_request(RequestId(1), registration_endpoint, registration, initial_access_token)?;
    let transport = HttpTransport::new(TransportSettings {
        max_response_bytes: transport.max_response_bytes.min(MAX_METADATA_LEN),
        ..transport.clone()
    });
    let response = transport.execute(request).await?;
    parse_registration_response(&response, registration_endpoint)
}

/// How [`Session::for_resource`] finds the authorization server, which client it uses, and how
/// the login goes. Every field has a default: a resource URL alone is enough.
#[derive(Clone, Debug)]
pub struct ResourceLogin {
    /// Where the login is kept (its tokens for every resource, and the client registered for
    /// it). The session uses this store. Default: a fresh [`MemoryStore`].
    pub store: Arc<dyn TokenStore>,
    /// Discovery: which authorization server (`issuer`), its time limit, and the transport
    /// settings the session uses too.
    pub discovery: DiscoverySettings,
    /// The client, when the server gave you one: then nothing is registered. Default `None`: the
    /// client registered for this login earlier (kept in the store), else a new public client
    /// registered now (RFC 7591: `token_endpoint_auth_method = none`, PKCE, loopback redirect).
    pub client: Option<ClientAuth>,
    /// The scope to ask for. Default none: the resource's `scopes_supported` (RFC 9728), else no
    /// `scope` parameter (the server's default for the client).
    pub scope: Option<String>,
    /// Log in with the device code grant (RFC 8628) instead of a browser on this machine.
    pub device_code: bool,
    /// More resources of the same server the login names (RFC 8707), so that one login serves
    /// them all through refreshes ([`SessionBuilder::also_at_login`]). Resources the store's
    /// login already serves are added.
    pub also_for: Vec<String>,
    /// The `client_name` a registration asks for (shown on consent pages). Default `tessera`.
    pub client_name: String,
    /// The initial access token the server requires for registration (RFC 7591 §3), when it does.
    pub initial_access_token: Option<Secret>,
    /// Where the browser login's loopback receiver listens (its path goes into the registered
    /// redirect URI `http://127.0.0.1{path}`, on any port as RFC 8252 §7.3 allows).
    pub loopback: LoopbackSettings,
    /// A fixed redirect URI instead of the loopback receiver: paste mode (the person copies the
    /// URL the browser ends on, as with `Grant::Browser`'s `redirect_uri`). It is the one
    /// registered. Default `None`.
    pub redirect_uri: Option<String>,
}

impl Default for ResourceLogin {
    fn default() -> Self {
        ResourceLogin {
            store: Arc::new(MemoryStore::new()),
            discovery: DiscoverySettings::default(),
            client: None,
            scope: None,
            device_code: false,
            also_for: Vec::new(),
            client_name: "tessera".to_owned(),
            initial_access_token: None,
            loopback: LoopbackSettings::default(),
            redirect_uri: None,
        }
    }
}

/// The longest wait for the store's lock while registering.
const REGISTRATION_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

impl Session {
    /// Resource-first login: a session for the protected resource at `resource` (its URL, which
    /// is its identifier), with nothing else configured.
    ///
    /// 1. Finds the resource's authorization server ([`discover_resource`]).
    /// 2. Takes the client: [`ResourceLogin::client`] when given; else the one registered for
    ///    this login earlier (kept with the tokens under `key` in [`ResourceLogin::store`]); else
    ///    registers a public client (RFC 7591) and stores it there at once, under the store's lock,
    ///    so that no other process sharing the store registers another. A stored client whose
    ///    secret expired is replaced (with its login). A login kept under `key` at another server
    ///    is never replaced: that is an [`Error::Configuration`] (log out first, or use another key).
    /// 3. Returns a [`SessionBuilder`] for a browser login (or device code) at that server, for
    ///    that resource ([`SessionBuilder::resource`]), with the server's metadata and the store:
    ///    add a prompter and build. Its first login asks for `resource=` at every step (RFC 8707).
    ///
    /// Several resources of one server share one login: build one session per resource with the
    /// same `key` and store. If the server forgets the registered client (`invalid_client`), the
    /// session drops the login and the registration from the store, and the next
    /// `for_resource` registers again.
    ///
    /// Errors: discovery's ([`Error::Metadata`] for a refused document), a server that registers
    /// no clients and no [`ResourceLogin::client`] ([`Error::Configuration`]), registration's
    /// refusal ([`Error::OAuth`]), the store's.
    ///
    /// ```no_run
    /// # async fn example(prompter: std::sync::Arc<dyn tessera::prompt::Prompter>) -> Result<(), tessera::Error> {
    /// use std::sync::Arc;
    /// use tessera::resource::ResourceLogin;
    ///
    /// let store: Arc<dyn tessera::store::TokenStore> = Arc::new(tessera::store::FileStore::new("tokens"));
    /// let login = ResourceLogin { store, ..ResourceLogin::default() };
    /// let session = tessera::Session::for_resource("mcp", "https://mcp.example.com/", login)
    ///     .await?
    ///     .prompter(prompter) // shows the browser URL (TerminalPrompter in a terminal)
    ///     .build();
    /// let header = session.authorization_header().await?;
    /// # Ok(()) }
    /// ```
    pub async fn for_resource(
        key: impl Into<String>,
        resource: &str,
        login: ResourceLogin,
    ) -> Result<SessionBuilder, Error> {
        let key = key.into();
        let mut login = login;
        let found = discover_resource(resource, &login.discovery).await?;
        // Without a scope of its own, the login asks for what the resource says it takes (RFC 9728
        // `scopes_supported`): a server grants nothing to a request without scope (oidc-provider
        // answers access_denied).
        if login.scope.is_none() && !found.resource.scopes_supported.is_empty() {
            login.scope = Some(found.resource.scopes_supported.join(" "));
        }
        let store = Arc::clone(&login.store);
        let (client, served, registered) = match &login.client {
            Some(client) => {
                let served = store.load(&key).await?.map(|stored| stored.resource_tokens.into_keys().collect());
                (client.clone(), served.unwrap_or_default(), None)
            }
            None => {
                let (registered, served) = registered_client(&key, &found, &login).await?;
                (client_auth(&registered), served, Some(registered))
            }
        };
        let grant = if login.device_code {
            Grant::DeviceCode { device_authorization_endpoint: None }
        } else {
            Grant::Browser {
                authorization_endpoint: None,
                redirect_uri: login.redirect_uri.clone(),
                authorization_params: Vec::new(),
            }
        };
        let config =
            ProviderConfig { client, endpoints: Endpoints::discover(&found.issuer), scope: login.scope, grant };
        let settings = SessionSettings {
            transport: login.discovery.transport.clone(),
            loopback: login.loopback.clone(),
            ..SessionSettings::default()
        };
        let builder = Session::builder(key, config);
        let builder = match registered {
            Some(registered) => builder.registered_client(registered),
            None => builder,
        };
        Ok(builder
            .store(store)
            .settings(settings)
            .metadata(found.server)
            // As the caller spells it (discovery checked it is the metadata's `resource`): that is
            // how later lookups (`tessera token --resource`, the section's `resource`) name it.
            .resource(resource)
            .also_at_login(login.also_for)
            .also_at_login(served))
    }
}

/// The client registered for the login under `key` (registering one now if there is none that
/// can be used), and the resources that login already serves.
async fn registered_client(
    key: &str,
    found: &DiscoveredResource,
    login: &ResourceLogin,
) -> Result<(StoredClient, Vec<String>), Error> {
    let store = &login.store;
    let lock = store.lock(key, REGISTRATION_LOCK_TIMEOUT).await?;
    let result = async {
        let stored = store.load(key).await?;
        let now = SystemClock.now();
        if let Some(stored) = &stored
            && let Some(client) = &stored.registered_client
        {
            // A login is bound to its server: a resource of another one never replaces it.
            if client.issuer != found.issuer {
                return Err(Error::configuration(format!(
                    "the login kept under {key} is with {}, and {} takes its tokens from {}: log out of it first, or use another key (another provider)",
                    client.issuer, found.resource.resource, found.issuer
                )));
            }
            if client.usable_at(&found.issuer, now) {
                debug!(key, issuer = %found.issuer, "using the client registered for this login");
                return Ok(((**client).clone(), stored.resource_tokens.keys().cloned().collect()));
            }
        }
        let Some(endpoint) = found.server.registration_endpoint.as_deref() else {
            return Err(Error::configuration(format!(
                "{} does not register clients (its metadata has no registration_endpoint): configure a client_id",
                found.issuer
            )));
        };
        let redirect_uri = match (&login.redirect_uri, login.loopback.port) {
            (Some(fixed), _) => fixed.clone(),
            (None, 0) => format!("http://127.0.0.1{}", login.loopback.path),
            (None, port) => format!("http://127.0.0.1:{port}{}", login.loopback.path),
        };
        let mut registration = ClientRegistration::public_native(&[redirect_uri.as_str()], login.client_name.clone());
        if login.device_code {
            registration.grant_types.push(DEVICE_CODE_GRANT_TYPE.to_owned());
        }
        if let Some(scope) = &login.scope {
            registration = registration.with_scope(scope.clone());
        }
        let registered =
            register_client(endpoint, &registration, login.initial_access_token.as_ref(), &login.discovery.transport)
                .await?;
        info!(key, issuer = %found.issuer, client_id = %registered.client_id, "registered a client (RFC 7591)");
        let client = StoredClient {
            issuer: found.issuer.clone(),
            client_id: registered.client_id,
            client_secret: registered.client_secret,
            client_secret_expires_at: registered
                .client_secret_expires_at
                .map(|secs| Timestamp::from_unix_secs(i64::try_from(secs).unwrap_or(i64::MAX))),
            registered_at: now,
        };
        // A new client starts a new login: tokens issued to the old one are not kept.
        let mut record = TokenSet::without_access_token(now);
        record.registered_client = Some(Box::new(client.clone()));
        store.save(key, &record).await?;
        Ok((client, Vec::new()))
    }
    .await;
    lock.release().await?;
    result
}

/// How a registered client authenticates: with its secret when it got one, else as a public client.
fn client_auth(client: &StoredClient) -> ClientAuth {
    match &client.client_secret {
        Some(secret) => ClientAuth::basic(client.client_id.clone(), secret.clone()),
        None => ClientAuth::public(client.client_id.clone()),
    }
}
