//! `Client` (async) and `SyncClient` (sync): two front ends over one Rust `Session`.
//!
//! Both try the session's cached header first (`Session::with_cached_header`, which lends it):
//! a valid cached header is returned without a future, a thread hop or a GIL release. Only a
//! miss goes to the tokio runtime.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
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
struct Shared {
    session: Session,
    description: String,
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

#[allow(clippy::too_many_arguments)]
fn build(
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
struct ResourceArgs {
    resource: String,
    key: String,
    login: tessera::ResourceLogin,
    prompter: Option<Callback>,
    refresh_skew: std::time::Duration,
    store_description: String,
}

impl ResourceArgs {
    #[allow(clippy::too_many_arguments)]
    fn read(
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
    async fn build(self) -> Result<Arc<Shared>, tessera::Error> {
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
struct Callbacks<'a, 'py> {
    /// `transport=`: the caller's HTTP stack (an httpx client or a callable).
    transport: Option<&'a Bound<'py, PyAny>>,
    /// Whether the front end is the async `Client` (an `httpx.AsyncClient` needs its event loop).
    is_async: bool,
    prompter: Option<&'a Bound<'py, PyAny>>,
    otp_callback: Option<&'a Bound<'py, PyAny>>,
    refresh_policy: Option<&'a Bound<'py, PyAny>>,
    hooks: Option<&'a Bound<'py, PyAny>>,
}

/// The async client: ``async with tessera.Client(...) as client: await client.authorization_header()``.
///
/// Parameters (all keyword-only but ``issuer``):
///
/// - ``issuer=None``: OpenID Connect discovery; or ``token_endpoint=None`` (+ ``revocation_endpoint=None``).
///   With ``grant=JwtBearer(service_account_key=...)`` and neither: the key file's ``token_uri``;
///   with ``grant=WorkloadIdentity(external_account=...)``: the file's ``token_url``.
/// - ``client_id=None`` (with ``JwtBearer(service_account_key=...)``: the key file's ``client_email``;
///   with ``WorkloadIdentity(external_account=...)``: the file's ``client_id``, if any),
///   ``client_secret=None`` (with ``WorkloadIdentity(external_account=...)``: the file's, if any), ``client_auth=None`` (how the client authenticates:
///   ``"client_secret_basic"``, the default with a secret (a discovered server that does not list it
///   gets ``"client_secret_post"``, else ``"client_secret_jwt"``, if it lists them); ``"client_secret_post"``;
///   ``"client_secret_jwt"``; ``"private_key_jwt"``, the default with ``client_assertion_key``;
///   ``"tls_client_auth"``, the default with ``tls_client_certificate`` alone;
///   ``"self_signed_tls_client_auth"``; or ``"none"``, the default without any), ``scope=None`` (string or sequence), ``grant=None``
///   (client credentials).
/// - ``client_assertion_key=None`` (``private_key_jwt``: the private key's text, a PEM or a JWK with
///   ``d``; never shown), ``client_assertion_alg=None`` (from the key: ``RS256`` / ``ES256`` /
///   ``EdDSA``), ``client_assertion_kid=None`` (the JWK's ``kid``, else none),
///   ``client_assertion_certificate=None`` (the key's PEM certificate as text: ``x5t``,
///   ``x5t#S256`` and ``x5c`` headers, as msal sends them); see docs/client-assertions.md.
/// - ``dpop=False`` (DPoP, RFC 9449: tokens bound to a key; API requests then need
///   ``request_headers(method, url)`` or the ``tessera.httpx`` / ``tessera.requests`` adapters),
///   ``dpop_key=None`` (the private key's text; ``None``: generated and kept in the store with the
///   tokens; never shown), ``dpop_alg=None`` (``ES256``, or from ``dpop_key``); see docs/dpop.md.
/// - ``provider=None``: a ``ProviderConfig`` in place of the arguments above.
/// - ``store=None`` (in memory), ``key="default"`` (the store key), ``refresh_skew=30`` (seconds or
///   ``timedelta``: refresh this long before expiry).
/// - How requests travel (with ``provider=``, one given here replaces the provider's):
///   ``timeout=None`` (seconds per request; ``None``: 30), ``ca_file=None`` (a PEM file of CA
///   certificates trusted in addition to the system's roots), ``ca_file_only=False`` (trust
///   ``ca_file`` alone), ``tls_client_certificate=None`` and ``tls_client_key=None`` (PEM files of a
///   TLS client certificate and its key, presented on every request: RFC 8705 mutual TLS, the
///   client's credential with ``client_auth="tls_client_auth"`` or ``"self_signed_tls_client_auth"``
///   (the default when a certificate is the only credential) and certificate-bound tokens; see
///   docs/mtls.md), ``proxy=None`` (``"http://[user:password@]host:port"``; ``None``:
///   ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``; the password is never shown),
///   ``no_proxy=None`` (``NO_PROXY`` syntax; ``None``: ``NO_PROXY``), ``allow_insecure_http=False``
///   (plain ``http://`` to hosts other than loopback), ``user_agent=None`` (``"tessera/<version>"``).
///   ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace the system's roots; ``REQUESTS_CA_BUNDLE`` is not read.
/// - ``prompter=None`` (shows device codes and browser URLs), ``otp_callback=None`` (returns one-time
///   codes), ``refresh_policy=None``, ``hooks=None``.
/// - ``transport=None``: your own HTTP stack for every request (an ``httpx.AsyncClient``, an
///   ``httpx.Client``, or a callable ``(HttpRequest) -> HttpResponse``, sync or async; see
///   docs/python-transport.md). With it, ``timeout`` is handed to a callable and
///   ``allow_insecure_http`` still applies; ``ca_file``, ``ca_file_only``, ``tls_client_certificate``,
///   ``tls_client_key``, ``proxy``, ``no_proxy`` and ``user_agent`` configure tessera's own client and
///   are refused (configure yours).
/// - ``token_url=None``, ``revocation_url=None``: old names of ``token_endpoint`` / ``revocation_endpoint``.
#[pyclass(name = "Client", module = "tessera._tessera", frozen)]
pub struct PyClient {
    shared: Arc<Shared>,
}

/// The sync client, same shape: ``with tessera.SyncClient(...) as client: client.authorization_header()``.
///
/// Takes exactly the parameters of ``Client`` (see ``help(tessera.Client)``), with the same defaults:
/// ``issuer=None``, ``client_id=None``, ``client_secret=None``, ``grant=None``, ``scope=None``,
/// ``token_endpoint=None``, ``revocation_endpoint=None``, ``client_auth=None`` (``"client_secret_basic"``
/// with a secret, ``"private_key_jwt"`` with a key, ``"tls_client_auth"`` with a certificate alone, else
/// ``"none"``), ``client_assertion_key=None``,
/// ``client_assertion_alg=None`` (from the key), ``client_assertion_kid=None`` (the JWK's),
/// ``client_assertion_certificate=None``, ``dpop=False``,
/// ``dpop_key=None`` (generated), ``dpop_alg=None`` (``ES256``), ``provider=None``,
/// ``store=None``, ``key="default"``, ``refresh_skew=30``, ``timeout=None`` (30 s), ``ca_file=None``,
/// ``ca_file_only=False``, ``tls_client_certificate=None``, ``tls_client_key=None``, ``proxy=None``, ``no_proxy=None``, ``allow_insecure_http=False``,
/// ``user_agent=None``, ``prompter=None``, ``otp_callback=None``, ``refresh_policy=None``, ``hooks=None``,
/// ``transport=None`` (an ``httpx.Client`` or a callable; an ``httpx.AsyncClient`` needs ``Client``).
#[pyclass(name = "SyncClient", module = "tessera._tessera", frozen)]
pub struct PySyncClient {
    shared: Arc<Shared>,
}

impl PyClient {
    /// The Rust session (for `ApiKeys`, `DomainClient`).
    pub(crate) fn session(&self) -> &Session {
        &self.shared.session
    }
}

impl PySyncClient {
    /// The Rust session (for `SyncApiKeys`, `DomainClient`).
    pub(crate) fn session(&self) -> &Session {
        &self.shared.session
    }
}

#[pymethods]
impl PyClient {
    #[new]
    #[pyo3(signature = (issuer = None, *, client_id = None, client_secret = None, grant = None, scope = None,
        token_endpoint = None, revocation_endpoint = None, client_auth = None, client_assertion_key = None,
        client_assertion_alg = None, client_assertion_kid = None, client_assertion_certificate = None,
        dpop = false, dpop_key = None, dpop_alg = None,
        provider = None, store = None,
        key = "default", refresh_skew = Seconds::Number(30.0), timeout = None, ca_file = None,
        ca_file_only = false, tls_client_certificate = None, tls_client_key = None, proxy = None, no_proxy = None, allow_insecure_http = false, user_agent = None,
        prompter = None, otp_callback = None, refresh_policy = None, hooks = None, transport = None,
        token_url = None, revocation_url = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        issuer: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
        grant: Option<PyRef<'_, PyGrant>>,
        scope: Option<&Bound<'_, PyAny>>,
        token_endpoint: Option<String>,
        revocation_endpoint: Option<String>,
        client_auth: Option<&str>,
        client_assertion_key: Option<String>,
        client_assertion_alg: Option<String>,
        client_assertion_kid: Option<String>,
        client_assertion_certificate: Option<String>,
        dpop: bool,
        dpop_key: Option<String>,
        dpop_alg: Option<String>,
        provider: Option<PyRef<'_, PyProviderConfig>>,
        store: Option<&Bound<'_, PyAny>>,
        key: &str,
        refresh_skew: Seconds<'_>,
        timeout: Option<Seconds<'_>>,
        ca_file: Option<std::path::PathBuf>,
        ca_file_only: bool,
        tls_client_certificate: Option<std::path::PathBuf>,
        tls_client_key: Option<std::path::PathBuf>,
        proxy: Option<String>,
        no_proxy: Option<String>,
        allow_insecure_http: bool,
        user_agent: Option<String>,
        prompter: Option<&Bound<'_, PyAny>>,
        otp_callback: Option<&Bound<'_, PyAny>>,
        refresh_policy: Option<&Bound<'_, PyAny>>,
        hooks: Option<&Bound<'_, PyAny>>,
        transport: Option<&Bound<'_, PyAny>>,
        token_url: Option<String>,
        revocation_url: Option<String>,
    ) -> PyResult<Self> {
        let token_endpoint = crate::renamed(py, ("token_endpoint", token_endpoint), ("token_url", token_url))?;
        let revocation_endpoint =
            crate::renamed(py, ("revocation_endpoint", revocation_endpoint), ("revocation_url", revocation_url))?;
        let shared = build(
            py,
            issuer,
            client_id,
            client_secret,
            grant,
            scope,
            token_endpoint,
            revocation_endpoint,
            client_auth,
            AssertionArgs {
                client_assertion_key,
                client_assertion_alg,
                client_assertion_kid,
                client_assertion_certificate,
                dpop,
                dpop_key,
                dpop_alg,
            },
            provider,
            store,
            key.to_owned(),
            refresh_skew,
            Transport::new(
                ca_file,
                ca_file_only,
                (tls_client_certificate, tls_client_key),
                proxy,
                no_proxy,
                timeout,
                allow_insecure_http,
                user_agent,
            )?,
            Callbacks { transport, is_async: true, prompter, otp_callback, refresh_policy, hooks },
        )?;
        Ok(PyClient { shared })
    }

    /// Awaitable: a client for the protected resource at ``resource`` (resource-first login):
    /// finds its authorization server (RFC 9728, RFC 8414), takes the client registered for this
    /// login (or registers one, RFC 7591, stored with the tokens), and returns a ``Client`` whose
    /// tokens are meant for that resource (RFC 8707). ``await client.login()`` signs in.
    ///
    /// - ``resource``: the API's URL, which is its identifier (``https``, or ``http`` on loopback).
    /// - ``store=None``: where the login is kept (its tokens for every resource, and the client
    ///   registered for it); default a fresh ``MemoryStore``. Clients for other resources of the
    ///   same server share the login when given the same ``store`` and ``key``.
    /// - ``key="default"``: the login's store key.
    /// - ``scope=None``: default the resource's ``scopes_supported`` (RFC 9728).
    /// - ``issuer=None``: which of the resource's authorization servers (default its first).
    /// - ``client_id=None``: a client the server gave you (then nothing is registered); default the
    ///   one registered for this login earlier, else a public client registered now (RFC 7591).
    /// - ``device_code=False``: log in with the device code grant instead of a browser.
    /// - ``also_for=None``: more resources of the same server the login names (RFC 8707), so that one
    ///   login serves them all through refreshes.
    /// - ``client_name="tessera"``: the name a registration asks for (shown on consent pages).
    /// - ``timeout=None`` (30 s): per request; ``allow_insecure_http=False``.
    /// - ``prompter=None``: shows the browser URL (``BrowserPrompt``) or device code; without one,
    ///   a login fails with ``ReauthenticationRequired`` instead of waiting for nobody.
    /// - ``refresh_skew=30``: refresh this long before expiry.
    /// - ``redirect_uri=None``: a fixed redirect URI (registered) instead of the loopback receiver:
    ///   paste mode, the ``prompter`` returns the URL the browser ended on.
    ///
    /// Errors: ``MalformedResponseError`` (``kind == "metadata"``) for a refused document (issuer or resource mismatch, plain
    /// ``http`` off loopback, oversized), ``ConfigurationError`` for a server that registers no
    /// clients, the server's refusal, the store's. See docs/resource-login.md.
    #[staticmethod]
    #[pyo3(signature = (resource, *, store = None, key = "default", scope = None, issuer = None, client_id = None,
        device_code = false, also_for = None, client_name = "tessera", timeout = None,
        allow_insecure_http = false, prompter = None, refresh_skew = Seconds::Number(30.0), redirect_uri = None))]
    #[allow(clippy::too_many_arguments)]
    fn for_resource<'py>(
        py: Python<'py>,
        resource: String,
        store: Option<&Bound<'py, PyAny>>,
        key: &str,
        scope: Option<&Bound<'py, PyAny>>,
        issuer: Option<String>,
        client_id: Option<String>,
        device_code: bool,
        also_for: Option<Vec<String>>,
        client_name: &str,
        timeout: Option<Seconds<'py>>,
        allow_insecure_http: bool,
        prompter: Option<&Bound<'py, PyAny>>,
        refresh_skew: Seconds<'py>,
        redirect_uri: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = ResourceArgs::read(
            resource,
            key,
            store,
            scope,
            issuer,
            client_id,
            device_code,
            also_for,
            client_name,
            timeout,
            allow_insecure_http,
            prompter,
            refresh_skew,
            redirect_uri,
        )?;
        spawn(py, async move { args.build().await.map(|shared| PyClient { shared }) })
    }

    /// The store key.
    #[getter]
    fn key(&self) -> &str {
        self.shared.session.key()
    }

    /// A `SyncClient` over the same session (same cache, same single-flight refresh).
    #[getter]
    fn sync(&self) -> PySyncClient {
        PySyncClient { shared: Arc::clone(&self.shared) }
    }

    /// The cached header if valid right now, else `None`. Never does I/O.
    fn cached_header(&self) -> Option<String> {
        self.shared.session.cached_header().map(|header| header.expose_secret().to_owned())
    }

    /// Awaitable: a valid `Authorization` header value (`"Bearer ..."`), refreshed once when due.
    fn authorization_header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(header) = self.shared.session.with_cached_header(|header| PyString::new(py, header.expose_secret()))
        {
            return Ready::awaitable(py, header.into_any());
        }
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.authorization_header()).await.map(Header) })
    }

    /// Awaitable: a valid access token.
    fn access_token<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(token) =
            self.shared.session.with_cached_header(|header| PyString::new(py, header.access_token().expose_secret()))
        {
            return Ready::awaitable(py, token.into_any());
        }
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.authorization_header()).await.map(AccessToken) })
    }

    /// Awaitable: the current token set (refreshed as needed).
    fn tokens<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(header) = self.shared.session.cached_header() {
            return Ready::awaitable(py, Bound::new(py, PyTokenSet::new(header.tokens().clone()))?.into_any());
        }
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.tokens()).await.map(PyTokenSet::new) })
    }

    /// Awaitable: a new header now, whatever the cache says (after an API answered 401).
    fn force_refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.force_refresh()).await.map(Header) })
    }

    /// True when the provider uses DPoP (``dpop=True``): API requests then need
    /// ``request_headers(method, url)`` (a fresh proof per request), not only ``authorization_header()``.
    #[getter]
    fn uses_dpop(&self) -> bool {
        self.shared.session.uses_dpop()
    }

    /// Awaitable: the headers one API request must carry, as a dict: ``{"Authorization": ...}``,
    /// and for a DPoP provider also ``"DPoP"``, a proof made for this request only.
    ///
    /// Args:
    ///     method: the request's HTTP method (``"GET"``, ``"POST"``, ...).
    ///     url: the request's URL (the proof names it without query and fragment).
    fn request_headers<'py>(&self, py: Python<'py>, method: String, url: String) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.request_auth(&method, &url)).await.map(RequestHeaders) })
    }

    /// Reads an API's answer for DPoP: remembers its ``DPoP-Nonce``, and returns ``True`` when the
    /// answer asks for a retry with that nonce (a 401 with ``use_dpop_nonce``). Never does I/O;
    /// always ``False`` without DPoP.
    ///
    /// Args:
    ///     url: the URL the request went to.
    ///     status: the answer's HTTP status.
    ///     www_authenticate: its ``WWW-Authenticate`` header, if any.
    ///     dpop_nonce: its ``DPoP-Nonce`` header, if any.
    #[pyo3(signature = (url, status, www_authenticate = None, dpop_nonce = None))]
    fn observe_dpop_response(
        &self,
        url: &str,
        status: u16,
        www_authenticate: Option<&str>,
        dpop_nonce: Option<&str>,
    ) -> bool {
        self.shared.session.observe_dpop_response(url, status, www_authenticate, dpop_nonce)
    }

    /// Awaitable: after an answer from the API at ``url`` that may say the token lacks a scope,
    /// a step-up (RFC 6750 §3.1). ``None`` unless the answer says ``insufficient_scope``; then a
    /// login asking for the client's scope widened with the scope the answer names, and the new
    /// ``Authorization`` header value to send the request again with. The login happens when it
    /// needs nobody (a grant that logs in by itself) or the client has a ``prompter``; otherwise
    /// nothing is sent and ``AuthenticationError`` (``code == "insufficient_scope"``) names the scope. The
    /// ``tessera.httpx`` and ``tessera.requests`` adapters call it.
    ///
    /// Args:
    ///     url: the URL the request went to.
    ///     status: the answer's HTTP status (403, or 401).
    ///     www_authenticate: its ``WWW-Authenticate`` header, if any.
    #[pyo3(signature = (url, status, www_authenticate = None))]
    fn step_up<'py>(
        &self,
        py: Python<'py>,
        url: String,
        status: u16,
        www_authenticate: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move {
            match shared.session.step_up_after(&url, status, www_authenticate.as_deref()).await {
                None => Ok(None),
                Some(result) => result.map(|header| Some(header.expose_secret().to_owned())),
            }
        })
    }

    /// Awaitable: logs in afresh with the grant and stores the tokens. `otp_callback`: answers
    /// one-time codes for this login, in place of the client's.
    #[pyo3(signature = (*, otp_callback = None))]
    fn login<'py>(&self, py: Python<'py>, otp_callback: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let otp_callback = callable(otp_callback, "otp_callback", "CodePrompt")?;
        let shared = Arc::clone(&self.shared);
        spawn(
            py,
            async move { shared.login(otp_callback).await.map(|header| PyTokenSet::new(header.tokens().clone())) },
        )
    }

    /// Awaitable: revokes the tokens (RFC 7009) when the server can, then forgets them.
    fn logout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.logout()).await.map(logout_result) })
    }

    /// Awaitable: forgets the tokens here and in the store, without telling the server.
    fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let raised = self.shared.raised.clone();
        let session = self.shared.session.clone();
        spawn(py, async move { raised.guard(session.clear()).await })
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ready::awaitable(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc_info))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc_info: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        Ready::awaitable(py, py.None().into_bound(py))
    }

    fn __repr__(&self) -> String {
        format!("Client({})", self.shared.description)
    }
}

#[pymethods]
impl PySyncClient {
    #[new]
    #[pyo3(signature = (issuer = None, *, client_id = None, client_secret = None, grant = None, scope = None,
        token_endpoint = None, revocation_endpoint = None, client_auth = None, client_assertion_key = None,
        client_assertion_alg = None, client_assertion_kid = None, client_assertion_certificate = None,
        dpop = false, dpop_key = None, dpop_alg = None,
        provider = None, store = None,
        key = "default", refresh_skew = Seconds::Number(30.0), timeout = None, ca_file = None,
        ca_file_only = false, tls_client_certificate = None, tls_client_key = None, proxy = None, no_proxy = None, allow_insecure_http = false, user_agent = None,
        prompter = None, otp_callback = None, refresh_policy = None, hooks = None, transport = None,
        token_url = None, revocation_url = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        issuer: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
        grant: Option<PyRef<'_, PyGrant>>,
        scope: Option<&Bound<'_, PyAny>>,
        token_endpoint: Option<String>,
        revocation_endpoint: Option<String>,
        client_auth: Option<&str>,
        client_assertion_key: Option<String>,
        client_assertion_alg: Option<String>,
        client_assertion_kid: Option<String>,
        client_assertion_certificate: Option<String>,
        dpop: bool,
        dpop_key: Option<String>,
        dpop_alg: Option<String>,
        provider: Option<PyRef<'_, PyProviderConfig>>,
        store: Option<&Bound<'_, PyAny>>,
        key: &str,
        refresh_skew: Seconds<'_>,
        timeout: Option<Seconds<'_>>,
        ca_file: Option<std::path::PathBuf>,
        ca_file_only: bool,
        tls_client_certificate: Option<std::path::PathBuf>,
        tls_client_key: Option<std::path::PathBuf>,
        proxy: Option<String>,
        no_proxy: Option<String>,
        allow_insecure_http: bool,
        user_agent: Option<String>,
        prompter: Option<&Bound<'_, PyAny>>,
        otp_callback: Option<&Bound<'_, PyAny>>,
        refresh_policy: Option<&Bound<'_, PyAny>>,
        hooks: Option<&Bound<'_, PyAny>>,
        transport: Option<&Bound<'_, PyAny>>,
        token_url: Option<String>,
        revocation_url: Option<String>,
    ) -> PyResult<Self> {
        let token_endpoint = crate::renamed(py, ("token_endpoint", token_endpoint), ("token_url", token_url))?;
        let revocation_endpoint =
            crate::renamed(py, ("revocation_endpoint", revocation_endpoint), ("revocation_url", revocation_url))?;
        let shared = build(
            py,
            issuer,
            client_id,
            client_secret,
            grant,
            scope,
            token_endpoint,
            revocation_endpoint,
            client_auth,
            AssertionArgs {
                client_assertion_key,
                client_assertion_alg,
                client_assertion_kid,
                client_assertion_certificate,
                dpop,
                dpop_key,
                dpop_alg,
            },
            provider,
            store,
            key.to_owned(),
            refresh_skew,
            Transport::new(
                ca_file,
                ca_file_only,
                (tls_client_certificate, tls_client_key),
                proxy,
                no_proxy,
                timeout,
                allow_insecure_http,
                user_agent,
            )?,
            Callbacks { transport, is_async: false, prompter, otp_callback, refresh_policy, hooks },
        )?;
        Ok(PySyncClient { shared })
    }

    /// A client for the protected resource at ``resource`` (resource-first login), as
    /// ``Client.for_resource`` but blocking: finds its authorization server, takes or registers
    /// the client, and returns a ``SyncClient`` whose tokens are meant for that resource.
    /// ``client.login()`` signs in.
    ///
    /// - ``resource``: the API's URL, which is its identifier (``https``, or ``http`` on loopback).
    /// - ``store=None``: where the login is kept (its tokens for every resource, and the client
    ///   registered for it); default a fresh ``MemoryStore``. Clients for other resources of the
    ///   same server share the login when given the same ``store`` and ``key``.
    /// - ``key="default"``: the login's store key.
    /// - ``scope=None``: default the resource's ``scopes_supported`` (RFC 9728).
    /// - ``issuer=None``: which of the resource's authorization servers (default its first).
    /// - ``client_id=None``: a client the server gave you (then nothing is registered); default the
    ///   one registered for this login earlier, else a public client registered now (RFC 7591).
    /// - ``device_code=False``: log in with the device code grant instead of a browser.
    /// - ``also_for=None``: more resources of the same server the login names (RFC 8707), so that one
    ///   login serves them all through refreshes.
    /// - ``client_name="tessera"``: the name a registration asks for (shown on consent pages).
    /// - ``timeout=None`` (30 s): per request; ``allow_insecure_http=False``.
    /// - ``prompter=None``: shows the browser URL (``BrowserPrompt``) or device code; without one,
    ///   a login fails with ``ReauthenticationRequired`` instead of waiting for nobody.
    /// - ``refresh_skew=30``: refresh this long before expiry.
    /// - ``redirect_uri=None``: a fixed redirect URI (registered) instead of the loopback receiver:
    ///   paste mode, the ``prompter`` returns the URL the browser ended on.
    ///
    /// Errors: ``MalformedResponseError`` (``kind == "metadata"``) for a refused document (issuer or resource mismatch, plain
    /// ``http`` off loopback, oversized), ``ConfigurationError`` for a server that registers no
    /// clients, the server's refusal, the store's. See docs/resource-login.md.
    #[staticmethod]
    #[pyo3(signature = (resource, *, store = None, key = "default", scope = None, issuer = None, client_id = None,
        device_code = false, also_for = None, client_name = "tessera", timeout = None,
        allow_insecure_http = false, prompter = None, refresh_skew = Seconds::Number(30.0), redirect_uri = None))]
    #[allow(clippy::too_many_arguments)]
    fn for_resource<'py>(
        py: Python<'py>,
        resource: String,
        store: Option<&Bound<'py, PyAny>>,
        key: &str,
        scope: Option<&Bound<'py, PyAny>>,
        issuer: Option<String>,
        client_id: Option<String>,
        device_code: bool,
        also_for: Option<Vec<String>>,
        client_name: &str,
        timeout: Option<Seconds<'py>>,
        allow_insecure_http: bool,
        prompter: Option<&Bound<'py, PyAny>>,
        refresh_skew: Seconds<'py>,
        redirect_uri: Option<String>,
    ) -> PyResult<Self> {
        let args = ResourceArgs::read(
            resource,
            key,
            store,
            scope,
            issuer,
            client_id,
            device_code,
            also_for,
            client_name,
            timeout,
            allow_insecure_http,
            prompter,
            refresh_skew,
            redirect_uri,
        )?;
        let shared = block_on(py, args.build())?;
        Ok(PySyncClient { shared })
    }

    /// The store key.
    #[getter]
    fn key(&self) -> &str {
        self.shared.session.key()
    }

    /// A `Client` (async) over the same session.
    #[getter]
    fn aio(&self) -> PyClient {
        PyClient { shared: Arc::clone(&self.shared) }
    }

    /// The cached header if valid right now, else `None`. Never does I/O.
    fn cached_header(&self) -> Option<String> {
        self.shared.session.cached_header().map(|header| header.expose_secret().to_owned())
    }

    /// A valid `Authorization` header value (`"Bearer ..."`), refreshed once when due.
    fn authorization_header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        // Lent, not cloned: no reference count touched on the hot path.
        if let Some(header) = self.shared.session.with_cached_header(|header| PyString::new(py, header.expose_secret()))
        {
            return Ok(header);
        }
        let session = &self.shared.session;
        let header = block_on(py, self.shared.raised.guard(session.authorization_header()))?;
        Ok(PyString::new(py, header.expose_secret()))
    }

    /// A valid access token.
    fn access_token<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        if let Some(token) =
            self.shared.session.with_cached_header(|header| PyString::new(py, header.access_token().expose_secret()))
        {
            return Ok(token);
        }
        let header = block_on(py, self.shared.raised.guard(self.shared.session.authorization_header()))?;
        Ok(PyString::new(py, header.access_token().expose_secret()))
    }

    /// The current token set (refreshed as needed).
    fn tokens(&self, py: Python<'_>) -> PyResult<PyTokenSet> {
        if let Some(header) = self.shared.session.cached_header() {
            return Ok(PyTokenSet::new(header.tokens().clone()));
        }
        Ok(PyTokenSet::new(block_on(py, self.shared.raised.guard(self.shared.session.tokens()))?))
    }

    /// A new header now, whatever the cache says (after an API answered 401).
    fn force_refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let header = block_on(py, self.shared.raised.guard(self.shared.session.force_refresh()))?;
        Ok(PyString::new(py, header.expose_secret()))
    }

    /// True when the provider uses DPoP (``dpop=True``): API requests then need
    /// ``request_headers(method, url)`` (a fresh proof per request), not only ``authorization_header()``.
    #[getter]
    fn uses_dpop(&self) -> bool {
        self.shared.session.uses_dpop()
    }

    /// The headers one API request must carry, as a dict: ``{"Authorization": ...}``, and for a
    /// DPoP provider also ``"DPoP"``, a proof made for this request only.
    ///
    /// Args:
    ///     method: the request's HTTP method (``"GET"``, ``"POST"``, ...).
    ///     url: the request's URL (the proof names it without query and fragment).
    fn request_headers<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let auth = block_on(py, self.shared.raised.guard(self.shared.session.request_auth(method, url)))?;
        RequestHeaders(auth).into_pyobject(py)
    }

    /// Reads an API's answer for DPoP: remembers its ``DPoP-Nonce``, and returns ``True`` when the
    /// answer asks for a retry with that nonce (a 401 with ``use_dpop_nonce``). Never does I/O;
    /// always ``False`` without DPoP.
    ///
    /// Args:
    ///     url: the URL the request went to.
    ///     status: the answer's HTTP status.
    ///     www_authenticate: its ``WWW-Authenticate`` header, if any.
    ///     dpop_nonce: its ``DPoP-Nonce`` header, if any.
    #[pyo3(signature = (url, status, www_authenticate = None, dpop_nonce = None))]
    fn observe_dpop_response(
        &self,
        url: &str,
        status: u16,
        www_authenticate: Option<&str>,
        dpop_nonce: Option<&str>,
    ) -> bool {
        self.shared.session.observe_dpop_response(url, status, www_authenticate, dpop_nonce)
    }

    /// After an answer from the API at ``url`` that may say the token lacks a scope,
    /// a step-up (RFC 6750 §3.1). ``None`` unless the answer says ``insufficient_scope``; then a
    /// login asking for the client's scope widened with the scope the answer names, and the new
    /// ``Authorization`` header value to send the request again with. The login happens when it
    /// needs nobody (a grant that logs in by itself) or the client has a ``prompter``; otherwise
    /// nothing is sent and ``AuthenticationError`` (``code == "insufficient_scope"``) names the scope. The
    /// ``tessera.httpx`` and ``tessera.requests`` adapters call it.
    ///
    /// Args:
    ///     url: the URL the request went to.
    ///     status: the answer's HTTP status (403, or 401).
    ///     www_authenticate: its ``WWW-Authenticate`` header, if any.
    #[pyo3(signature = (url, status, www_authenticate = None))]
    fn step_up(
        &self,
        py: Python<'_>,
        url: &str,
        status: u16,
        www_authenticate: Option<&str>,
    ) -> PyResult<Option<String>> {
        let session = &self.shared.session;
        match block_on(py, async { Ok(session.step_up_after(url, status, www_authenticate).await) })? {
            None => Ok(None),
            Some(result) => Ok(Some(result.map_err(|error| to_pyerr(&error))?.expose_secret().to_owned())),
        }
    }

    /// Logs in afresh with the grant and stores the tokens. `otp_callback`: answers one-time codes
    /// for this login, in place of the client's.
    #[pyo3(signature = (*, otp_callback = None))]
    fn login(&self, py: Python<'_>, otp_callback: Option<&Bound<'_, PyAny>>) -> PyResult<PyTokenSet> {
        let otp_callback = callable(otp_callback, "otp_callback", "CodePrompt")?;
        let header = block_on(py, self.shared.login(otp_callback))?;
        Ok(PyTokenSet::new(header.tokens().clone()))
    }

    /// Revokes the tokens (RFC 7009) when the server can, then forgets them.
    fn logout(&self, py: Python<'_>) -> PyResult<PyLogoutResult> {
        Ok(logout_result(block_on(py, self.shared.raised.guard(self.shared.session.logout()))?))
    }

    /// Forgets the tokens here and in the store, without telling the server.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.shared.raised.guard(self.shared.session.clear()))
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: Bound<'_, PyTuple>) {}

    fn __repr__(&self) -> String {
        format!("SyncClient({})", self.shared.description)
    }
}
