//! What the `Client` and `SyncClient` classes are made of, but for the cached-header calls: the
//! shared state, its construction, and every call that goes to the tokio runtime.
//!
//! The classes live in tessera-py, compiled for speed (their cached-header methods run per
//! request); this crate is compiled for size (docs/DECISIONS.md). Their methods call these.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tessera::core::ClientAuthMethod;
use tessera::policy::DefaultRefreshPolicy;
use tessera::{AuthorizationHeader, Endpoints, LogoutOutcome, ProviderConfig, Session, SessionSettings};

use crate::callback::Callback;
use crate::errors::{configuration, to_pyerr};
use crate::grants::{AssertionArgs, PyGrant, PyProviderConfig, client_auth_with_assertion, endpoints_repr, scope_arg};
use crate::refresh::{PolicyErrorSlot, PythonHooks, PythonPolicy, PythonPrompter, callable, with_login_code};
use crate::runtime::{Ready, block_on, spawn};
use crate::time::Seconds;
use crate::tokens::PyTokenSet;
use crate::transport::Transport;

/// What both front ends share.
pub struct Shared {
    /// The Rust session.
    pub session: Session,
    /// The `repr` of the client's arguments.
    pub description: String,
    /// An exception raised by a Python refresh policy, raised in place of the refresh error.
    raised: PolicyErrorSlot,
    /// When logging in needs a person and the client lacks the callback that would reach them:
    /// its name (`prompter`, `otp_callback`, or either).
    missing: Option<&'static str>,
}

impl Shared {
    /// Logs in, with `otp_callback` answering code prompts in place of the client's while it runs.
    async fn login(&self, otp_callback: Option<Callback>) -> Result<AuthorizationHeader, tessera::Error> {
        if let Some(missing) = self.missing
            && (otp_callback.is_none() || missing == "prompter")
        {
            // Fail before anything is sent: no code is mailed, no device code requested, that
            // nobody would ever enter.
            let key = self.session.key();
            return Err(tessera::Error::ReauthenticationRequired {
                reason: format!("logging in to {key} needs a person, and this client has no {missing}"),
            });
        }
        with_login_code(otp_callback, self.raised.guard(self.session.login())).await
    }
}

/// The header value as a Python string.
struct Header(AuthorizationHeader);

impl<'py> IntoPyObject<'py> for Header {
    type Target = PyString;
    type Output = Bound<'py, PyString>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyString::new(py, self.0.expose_secret()))
    }
}

/// The headers of one API request as a Python dict: `Authorization`, and `DPoP` for a DPoP provider.
struct RequestHeaders(tessera::RequestAuth);

impl<'py> IntoPyObject<'py> for RequestHeaders {
    type Target = pyo3::types::PyDict;
    type Output = Bound<'py, pyo3::types::PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        let headers = pyo3::types::PyDict::new(py);
        headers.set_item("Authorization", self.0.authorization.expose_secret())?;
        if let Some(proof) = &self.0.dpop {
            headers.set_item("DPoP", proof.expose_secret())?;
        }
        Ok(headers)
    }
}

/// The access token alone as a Python string.
struct AccessToken(AuthorizationHeader);

impl<'py> IntoPyObject<'py> for AccessToken {
    type Target = PyString;
    type Output = Bound<'py, PyString>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyString::new(py, self.0.access_token().expose_secret()))
    }
}

/// What `logout()` did.
#[pyclass(name = "LogoutResult", module = "tessera._tessera", frozen)]
pub struct PyLogoutResult {
    /// True when the server confirmed revocation (RFC 7009).
    #[pyo3(get)]
    revoked: bool,
    /// True when there were tokens to log out of.
    #[pyo3(get)]
    had_tokens: bool,
    /// Why revocation failed, when it did (local tokens are cleared either way).
    #[pyo3(get)]
    revocation_error: Option<Py<PyAny>>,
}

#[pymethods]
impl PyLogoutResult {
    fn __repr__(&self) -> String {
        format!(
            "LogoutResult(revoked={}, had_tokens={}, revocation_error={})",
            py_bool(self.revoked),
            py_bool(self.had_tokens),
            if self.revocation_error.is_some() { "<error>" } else { "None" }
        )
    }
}

fn py_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

fn logout_result(outcome: LogoutOutcome) -> PyLogoutResult {
    let revocation_error =
        outcome.revocation_error.map(|error| Python::attach(|py| to_pyerr(&error).into_value(py).into_any()));
    PyLogoutResult { revoked: outcome.revoked, had_tokens: outcome.had_tokens, revocation_error }
}

/// The shared state of a new `Client` / `SyncClient`, from the constructor's arguments.
#[allow(clippy::too_many_arguments)]
pub fn build(
    py: Python<'_>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    grant: Option<PyRef<'_, PyGrant>>,
    scope: Option<&Bound<'_, PyAny>>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    client_auth_method: Option<&str>,
    assertion: AssertionArgs,
    provider: Option<PyRef<'_, PyProviderConfig>>,
    store: Option<&Bound<'_, PyAny>>,
    key: String,
    refresh_skew: Seconds<'_>,
    mut transport: Transport,
    callbacks: Callbacks<'_, '_>,
) -> PyResult<Arc<Shared>> {
    let mut loopback = grant.as_ref().and_then(|grant| grant.loopback.clone());
    let mut config = match provider {
        Some(provider) => {
            loopback = provider.loopback.clone();
            // A transport keyword given to the client replaces the provider's.
            transport = transport.over(&provider.transport);
            if issuer.is_some() || client_id.is_some() || client_secret.is_some() || grant.is_some() {
                return Err(configuration("give provider=, or issuer/client_id/grant..., not both"));
            }
            if client_auth_method.is_some() || assertion.given().is_some() {
                let field = assertion.given().unwrap_or("client_auth");
                return Err(configuration(format!("give provider= (its ClientAuth), or {field}, not both")));
            }
            if scope.is_some_and(|scope| !scope.is_none()) || token_endpoint.is_some() || revocation_endpoint.is_some()
            {
                return Err(configuration("give provider=, or scope/token_endpoint/revocation_endpoint, not both"));
            }
            provider.inner.clone()
        }
        None => {
            // A static token or an API key never talks to a server: no client or endpoint needed.
            let is_static = grant.as_ref().is_some_and(|grant| matches!(grant.inner, tessera::Grant::Static { .. }));
            let place = format!("provider {key:?}");
            let field_error = |field: &str, problem: &str| {
                to_pyerr(&tessera::core::provider_spec::FieldError::new(field, problem).at(&place))
            };
            // A credential file holds the client (a service-account key: its id, fixed; an
            // external_account file: defaults) and usually the token endpoint.
            let file = grant.as_ref().and_then(|grant| grant.credential_file.clone());
            let client_id = match (client_id, &file) {
                (Some(_), Some(file)) if file.fixes_client_id() => {
                    return Err(field_error("client_id", "comes from service_account_key: give one or the other"));
                }
                (Some(client_id), _) => client_id,
                (None, Some(file)) => file.client_id.clone().unwrap_or_default(),
                (None, None) if is_static => String::new(),
                (None, None) => return Err(configuration("client_id is required")),
            };
            // An external_account file's client_secret, unless the client gives its own.
            let client_secret = client_secret
                .or_else(|| file.as_ref()?.client_secret.as_ref().map(|secret| secret.expose_secret().to_owned()));
            let endpoints = match (issuer, token_endpoint) {
                (None, None) if is_static => {
                    Endpoints::Explicit { token_endpoint: String::new(), revocation_endpoint: None }
                }
                (None, None) if let Some(file) = file => match file.token_endpoint {
                    Some(token_endpoint) => Endpoints::Explicit { token_endpoint, revocation_endpoint },
                    // (An external_account file always has one: Google's STS by default.)
                    None => {
                        // The member that names it: a service-account key's token_uri (an
                        // external_account file's token_url defaults to Google's STS).
                        let member = if file.fixes_client_id() { "token_uri" } else { "token_url" };
                        let problem = format!("has no \"{member}\": give token_endpoint (or issuer)");
                        return Err(field_error(file.field, &problem));
                    }
                },
                (Some(issuer), None) => {
                    if revocation_endpoint.is_some() {
                        return Err(to_pyerr(
                            &tessera::core::provider_spec::FieldError::new(
                                "revocation_endpoint",
                                "goes with token_endpoint; with issuer it is discovered",
                            )
                            .at(&place),
                        ));
                    }
                    Endpoints::discover(issuer)
                }
                (None, Some(token_endpoint)) => Endpoints::Explicit { token_endpoint, revocation_endpoint },
                (Some(_), Some(_)) => {
                    return Err(to_pyerr(
                        &tessera::core::provider_spec::FieldError::new(
                            "token_endpoint",
                            "give either issuer or token_endpoint, not both",
                        )
                        .at(&place),
                    ));
                }
                (None, None) => return Err(configuration("give issuer (OIDC discovery) or token_endpoint")),
            };
            let grant = match grant {
                Some(grant) => grant.inner.clone(),
                None => tessera::Grant::ClientCredentials,
            };
            ProviderConfig {
                client: client_auth_with_assertion(py, client_id, client_secret, client_auth_method, assertion)?,
                endpoints,
                scope: scope_arg(scope)?,
                grant,
            }
        }
    };
    // A certificate and no other credential: the certificate authenticates (as in TOML).
    if client_auth_method.is_none() && config.client.method == ClientAuthMethod::None && transport.has_certificate() {
        config.client.method = ClientAuthMethod::TlsClientAuth;
    }
    // The provider's rules are reported after every argument's type is checked (a TypeError for a
    // wrong callback comes first, as it always did).
    let invalid = crate::grants::validate(&config, &format!("provider {key:?}")).and_then(|()| {
        if config.client.method.uses_certificate()
            && !transport.has_certificate()
            && callbacks.transport.is_none_or(|own| own.is_none())
        {
            return Err(to_pyerr(
                &tessera::core::provider_spec::FieldError::new(
                    "tls_client_certificate",
                    format!(
                        "is required with client_auth {:?} (the certificate is the credential)",
                        config.client.method.name()
                    ),
                )
                .at(&format!("provider {key:?}")),
            ));
        }
        Ok(())
    });
    let (store, store_description) = crate::store::resolve(store)?;
    let description = format!(
        "key={}, client_id={}, endpoints={}, grant={}, store={store_description}",
        crate::quote(&key),
        crate::quote(&config.client.client_id),
        endpoints_repr(&config.endpoints),
        crate::quote(config.grant.name())
    );
    let settings = SessionSettings {
        loopback: loopback.unwrap_or_default(),
        refresh_skew: refresh_skew.duration()?,
        transport: transport.settings(&format!("provider {key:?}"))?,
        ..SessionSettings::default()
    };
    let raised = PolicyErrorSlot::default();
    let interactive = config.grant.is_interactive();
    let asks_for = PersonNeeded::of(&config.grant);
    let may_ask_code = matches!(config.grant, tessera::Grant::Cognito { .. });
    let own = match callbacks.transport.filter(|own| !own.is_none()) {
        Some(own) => Some(crate::own_transport::PythonTransport::new(
            own,
            settings.transport.timeout.as_secs_f64(),
            settings.transport.max_response_bytes,
            callbacks.is_async,
        )?),
        None => None,
    };
    let mut builder = Session::builder(key, config).store(store).settings(settings);
    if let Some(own) = own {
        if let Some(field) = transport.only_for_tessera_client() {
            return Err(configuration(format!(
                "{field} configures tessera's own HTTP client: with transport=, configure yours"
            )));
        }
        builder = builder.transport(Arc::new(own));
    }
    let show = callable(callbacks.prompter, "prompter", "DeviceCodePrompt or BrowserPrompt")?;
    let code = callable(callbacks.otp_callback, "otp_callback", "CodePrompt")?;
    let missing = match asks_for {
        PersonNeeded::Show if show.is_none() => Some("prompter"),
        PersonNeeded::Code if code.is_none() => Some("otp_callback"),
        PersonNeeded::Either if show.is_none() && code.is_none() => Some("prompter or otp_callback"),
        _ => None,
    };
    // An interactive grant (or a Cognito one: the pool may ask for a code) always gets one, so
    // that `login(otp_callback=...)` can answer.
    if show.is_some() || code.is_some() || interactive || may_ask_code {
        builder = builder.prompter(Arc::new(PythonPrompter::new(show, code)));
    }
    if let Some(policy) = callbacks.refresh_policy.filter(|p| !p.is_none()) {
        builder = builder.refresh_policy(Arc::new(PythonPolicy::new(policy, raised.clone())?));
    } else if missing.is_some() {
        // The same default as a session without a prompter: a failed refresh never starts a login
        // that nobody can finish.
        builder = builder.refresh_policy(Arc::new(DefaultRefreshPolicy { can_prompt: false }));
    }
    if let Some(hooks) = callbacks.hooks.filter(|h| !h.is_none()) {
        builder = builder.hooks(Arc::new(PythonHooks::new(hooks)?));
    }
    invalid?;
    Ok(Arc::new(Shared { session: builder.build(), description, raised, missing }))
}

/// The arguments of `Client.for_resource` / `SyncClient.for_resource`, read with the GIL held.
pub struct ResourceArgs {
    resource: String,
    key: String,
    login: tessera::ResourceLogin,
    prompter: Option<Callback>,
    refresh_skew: std::time::Duration,
    store_description: String,
}

impl ResourceArgs {
    /// Reads the arguments of `for_resource`.
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        resource: String,
        key: &str,
        store: Option<&Bound<'_, PyAny>>,
        scope: Option<&Bound<'_, PyAny>>,
        issuer: Option<String>,
        client_id: Option<String>,
        device_code: bool,
        also_for: Option<Vec<String>>,
        client_name: &str,
        timeout: Option<Seconds<'_>>,
        allow_insecure_http: bool,
        prompter: Option<&Bound<'_, PyAny>>,
        refresh_skew: Seconds<'_>,
        redirect_uri: Option<String>,
    ) -> PyResult<Self> {
        let (store, store_description) = crate::store::resolve(store)?;
        let mut transport = tessera::transport::TransportSettings { allow_insecure_http, ..Default::default() };
        if let Some(timeout) = timeout {
            transport.timeout = timeout.duration()?;
        }
        let login = tessera::ResourceLogin {
            store,
            discovery: tessera::resource::DiscoverySettings {
                issuer,
                transport,
                ..tessera::resource::DiscoverySettings::default()
            },
            client: client_id.map(tessera::ClientAuth::public),
            scope: scope_arg(scope)?,
            device_code,
            also_for: also_for.unwrap_or_default(),
            client_name: client_name.to_owned(),
            redirect_uri,
            ..tessera::ResourceLogin::default()
        };
        Ok(ResourceArgs {
            resource,
            key: key.to_owned(),
            login,
            prompter: callable(prompter, "prompter", "DeviceCodePrompt or BrowserPrompt")?,
            refresh_skew: refresh_skew.duration()?,
            store_description,
        })
    }

    /// Discovery, the client (stored or registered), the session.
    pub async fn build(self) -> Result<Arc<Shared>, tessera::Error> {
        let builder = Session::for_resource(self.key.clone(), &self.resource, self.login).await?;
        let missing = self.prompter.is_none().then_some("prompter");
        let mut builder = builder.refresh_skew(self.refresh_skew);
        if let Some(show) = self.prompter {
            builder = builder.prompter(Arc::new(PythonPrompter::new(Some(show), None)));
        } else {
            // A failed refresh never starts a login that nobody can finish.
            builder = builder.refresh_policy(Arc::new(DefaultRefreshPolicy { can_prompt: false }));
        }
        let description = format!(
            "key={}, resource={}, store={}",
            crate::quote(&self.key),
            crate::quote(&self.resource),
            self.store_description
        );
        Ok(Arc::new(Shared { session: builder.build(), description, raised: PolicyErrorSlot::default(), missing }))
    }
}

/// Which callback an interactive login cannot do without.
enum PersonNeeded {
    /// The grant logs in by itself (or cannot log in at all).
    Nobody,
    /// A device code or a browser URL to show: `prompter=`.
    Show,
    /// A one-time code to type: `otp_callback=`.
    Code,
    /// A custom interactive grant: either.
    Either,
}

impl PersonNeeded {
    fn of(grant: &tessera::Grant) -> Self {
        use tessera::Grant;
        match grant {
            _ if !grant.is_interactive() => PersonNeeded::Nobody,
            Grant::DeviceCode { .. } | Grant::Browser { .. } => PersonNeeded::Show,
            Grant::EmailOtp { .. } | Grant::Cognito { .. } => PersonNeeded::Code,
            _ => PersonNeeded::Either,
        }
    }
}

/// The Python objects a session calls back.
pub struct Callbacks<'a, 'py> {
    /// `transport=`: the caller's HTTP stack (an httpx client or a callable).
    pub transport: Option<&'a Bound<'py, PyAny>>,
    /// Whether the front end is the async `Client` (an `httpx.AsyncClient` needs its event loop).
    pub is_async: bool,
    /// `prompter=`: shows device codes and browser URLs.
    pub prompter: Option<&'a Bound<'py, PyAny>>,
    /// `otp_callback=`: returns one-time codes.
    pub otp_callback: Option<&'a Bound<'py, PyAny>>,
    /// `refresh_policy=`.
    pub refresh_policy: Option<&'a Bound<'py, PyAny>>,
    /// `hooks=`.
    pub hooks: Option<&'a Bound<'py, PyAny>>,
}

/// The calls of `Client` (each returns an awaitable) that go to the runtime: a cached header is
/// served by the class itself.
impl Shared {
    /// `Client.authorization_header()` when no valid header is cached.
    pub fn authorization_header_awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.authorization_header()).await.map(Header) })
    }

    /// `Client.access_token()` when no valid header is cached.
    pub fn access_token_awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.authorization_header()).await.map(AccessToken) })
    }

    /// `Client.tokens()`.
    pub fn tokens_awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(header) = self.session.cached_header() {
            return Ready::awaitable(py, Bound::new(py, PyTokenSet::new(header.tokens().clone()))?.into_any());
        }
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.tokens()).await.map(PyTokenSet::new) })
    }

    /// `Client.force_refresh()`.
    pub fn force_refresh_awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.force_refresh()).await.map(Header) })
    }

    /// `Client.request_headers(method, url)`.
    pub fn request_headers_awaitable<'py>(
        &self,
        py: Python<'py>,
        method: String,
        url: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.request_auth(&method, &url)).await.map(RequestHeaders) })
    }

    /// `Client.step_up(url, status, www_authenticate)`.
    pub fn step_up_awaitable<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
        url: String,
        status: u16,
        www_authenticate: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(self);
        spawn(py, async move {
            match shared.session.step_up_after(&url, status, www_authenticate.as_deref()).await {
                None => Ok(None),
                Some(result) => result.map(|header| Some(header.expose_secret().to_owned())),
            }
        })
    }

    /// `Client.login(otp_callback=...)`.
    pub fn login_awaitable<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
        otp_callback: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let otp_callback = callable(otp_callback, "otp_callback", "CodePrompt")?;
        let shared = Arc::clone(self);
        spawn(
            py,
            async move { shared.login(otp_callback).await.map(|header| PyTokenSet::new(header.tokens().clone())) },
        )
    }

    /// `Client.logout()`.
    pub fn logout_awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.logout()).await.map(logout_result) })
    }

    /// `Client.clear()`.
    pub fn clear_awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.raised.clone();
        let session = self.session.clone();
        spawn(py, async move { raised.guard(session.clear()).await })
    }
}

/// The calls of `SyncClient` that go to the runtime (blocking, the GIL released): a cached header
/// is served by the class itself.
impl Shared {
    /// `SyncClient.authorization_header()` when no valid header is cached.
    pub fn authorization_header_blocking<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let header = block_on(py, self.raised.guard(self.session.authorization_header()))?;
        Ok(PyString::new(py, header.expose_secret()))
    }

    /// `SyncClient.access_token()` when no valid header is cached.
    pub fn access_token_blocking<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let header = block_on(py, self.raised.guard(self.session.authorization_header()))?;
        Ok(PyString::new(py, header.access_token().expose_secret()))
    }

    /// `SyncClient.tokens()`.
    pub fn tokens_blocking(&self, py: Python<'_>) -> PyResult<PyTokenSet> {
        if let Some(header) = self.session.cached_header() {
            return Ok(PyTokenSet::new(header.tokens().clone()));
        }
        Ok(PyTokenSet::new(block_on(py, self.raised.guard(self.session.tokens()))?))
    }

    /// `SyncClient.force_refresh()`.
    pub fn force_refresh_blocking<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let header = block_on(py, self.raised.guard(self.session.force_refresh()))?;
        Ok(PyString::new(py, header.expose_secret()))
    }

    /// `SyncClient.request_headers(method, url)`.
    pub fn request_headers_blocking<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let auth = block_on(py, self.raised.guard(self.session.request_auth(method, url)))?;
        RequestHeaders(auth).into_pyobject(py)
    }

    /// `SyncClient.step_up(url, status, www_authenticate)`.
    pub fn step_up_blocking(
        &self,
        py: Python<'_>,
        url: &str,
        status: u16,
        www_authenticate: Option<&str>,
    ) -> PyResult<Option<String>> {
        let session = &self.session;
        match block_on(py, async { Ok(session.step_up_after(url, status, www_authenticate).await) })? {
            None => Ok(None),
            Some(result) => Ok(Some(result.map_err(|error| to_pyerr(&error))?.expose_secret().to_owned())),
        }
    }

    /// `SyncClient.login(otp_callback=...)`.
    pub fn login_blocking(&self, py: Python<'_>, otp_callback: Option<&Bound<'_, PyAny>>) -> PyResult<PyTokenSet> {
        let otp_callback = callable(otp_callback, "otp_callback", "CodePrompt")?;
        let header = block_on(py, self.login(otp_callback))?;
        Ok(PyTokenSet::new(header.tokens().clone()))
    }

    /// `SyncClient.logout()`.
    pub fn logout_blocking(&self, py: Python<'_>) -> PyResult<PyLogoutResult> {
        Ok(logout_result(block_on(py, self.raised.guard(self.session.logout()))?))
    }

    /// `SyncClient.clear()`.
    pub fn clear_blocking(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.raised.guard(self.session.clear()))
    }
}
