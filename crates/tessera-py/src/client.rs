//! `Client` (async) and `SyncClient` (sync): two front ends over one Rust `Session`.
//!
//! Both try the session's cached header first (`Session::with_cached_header`, which lends it):
//! a valid cached header is returned without a future, a thread hop or a GIL release. Only a
//! miss goes to the tokio runtime, through the functions of `tessera_py_bindings::front`.
//!
//! This is the only module of this crate, which is compiled at opt-level 3: these methods run per
//! request, and the generic code they call (PyO3's call glue, `Session::with_cached_header`) is
//! compiled where it is instantiated. The rest of the bindings is in tessera-py-bindings, compiled
//! for size (docs/DECISIONS.md, benches/README.md "The wheel, round 4").

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use tessera::Session;
use tessera_py_bindings::front::PyLogoutResult;
use tessera_py_bindings::front::{Callbacks, ResourceArgs, Shared, build};
use tessera_py_bindings::grants::{AssertionArgs, PyGrant, PyProviderConfig};
use tessera_py_bindings::runtime::{Ready, block_on, spawn};
use tessera_py_bindings::time::Seconds;
use tessera_py_bindings::tokens::PyTokenSet;
use tessera_py_bindings::transport::Transport;

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
        let token_endpoint =
            tessera_py_bindings::renamed(py, ("token_endpoint", token_endpoint), ("token_url", token_url))?;
        let revocation_endpoint = tessera_py_bindings::renamed(
            py,
            ("revocation_endpoint", revocation_endpoint),
            ("revocation_url", revocation_url),
        )?;
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
        self.shared.authorization_header_awaitable(py)
    }

    /// Awaitable: a valid access token.
    fn access_token<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(token) =
            self.shared.session.with_cached_header(|header| PyString::new(py, header.access_token().expose_secret()))
        {
            return Ready::awaitable(py, token.into_any());
        }
        self.shared.access_token_awaitable(py)
    }

    /// Awaitable: the current token set (refreshed as needed).
    fn tokens<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.shared.tokens_awaitable(py)
    }

    /// Awaitable: a new header now, whatever the cache says (after an API answered 401).
    fn force_refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.shared.force_refresh_awaitable(py)
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
        self.shared.request_headers_awaitable(py, method, url)
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
        self.shared.step_up_awaitable(py, url, status, www_authenticate)
    }

    /// Awaitable: logs in afresh with the grant and stores the tokens. `otp_callback`: answers
    /// one-time codes for this login, in place of the client's.
    #[pyo3(signature = (*, otp_callback = None))]
    fn login<'py>(&self, py: Python<'py>, otp_callback: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        self.shared.login_awaitable(py, otp_callback)
    }

    /// Awaitable: revokes the tokens (RFC 7009) when the server can, then forgets them.
    fn logout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.shared.logout_awaitable(py)
    }

    /// Awaitable: forgets the tokens here and in the store, without telling the server.
    fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.shared.clear_awaitable(py)
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
        let token_endpoint =
            tessera_py_bindings::renamed(py, ("token_endpoint", token_endpoint), ("token_url", token_url))?;
        let revocation_endpoint = tessera_py_bindings::renamed(
            py,
            ("revocation_endpoint", revocation_endpoint),
            ("revocation_url", revocation_url),
        )?;
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
        self.shared.authorization_header_blocking(py)
    }

    /// A valid access token.
    fn access_token<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        if let Some(token) =
            self.shared.session.with_cached_header(|header| PyString::new(py, header.access_token().expose_secret()))
        {
            return Ok(token);
        }
        self.shared.access_token_blocking(py)
    }

    /// The current token set (refreshed as needed).
    fn tokens(&self, py: Python<'_>) -> PyResult<PyTokenSet> {
        self.shared.tokens_blocking(py)
    }

    /// A new header now, whatever the cache says (after an API answered 401).
    fn force_refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        self.shared.force_refresh_blocking(py)
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
        self.shared.request_headers_blocking(py, method, url)
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
        self.shared.step_up_blocking(py, url, status, www_authenticate)
    }

    /// Logs in afresh with the grant and stores the tokens. `otp_callback`: answers one-time codes
    /// for this login, in place of the client's.
    #[pyo3(signature = (*, otp_callback = None))]
    fn login(&self, py: Python<'_>, otp_callback: Option<&Bound<'_, PyAny>>) -> PyResult<PyTokenSet> {
        self.shared.login_blocking(py, otp_callback)
    }

    /// Revokes the tokens (RFC 7009) when the server can, then forgets them.
    fn logout(&self, py: Python<'_>) -> PyResult<PyLogoutResult> {
        self.shared.logout_blocking(py)
    }

    /// Forgets the tokens here and in the store, without telling the server.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.clear_blocking(py)
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

/// The session of a `Client` or `SyncClient` (`ApiKeys` and `DomainClient` take either), for
/// tessera-py-bindings, which cannot name these classes.
pub fn session_of(client: &Bound<'_, PyAny>) -> Option<Session> {
    if let Ok(client) = client.cast::<PyClient>() {
        return Some(client.get().shared.session.clone());
    }
    if let Ok(client) = client.cast::<PySyncClient>() {
        return Some(client.get().shared.session.clone());
    }
    None
}
