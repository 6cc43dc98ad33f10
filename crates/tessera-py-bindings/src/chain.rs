//! Token chains (`tessera.DomainClient`) over `tessera::chain`: one network login, a discovery
//! token derived from it, then one access token per domain, each cached and re-derived before it
//! expires. The state (tokens, never credentials) exports to JSON and back.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tessera::chain::{ChainConfig, DomainAccess, DomainClient, Stage};
use tessera::core::protocol::TokenExchangeParams;

use crate::errors::{configuration, to_pyerr};
use crate::grants::{PyClientAuth, PyProviderConfig, scope_arg};
use crate::runtime::{Ready, block_on, spawn};
use crate::time::{Seconds, to_datetime};
use crate::tokens::PyTokenSet;

/// One step of a chain: an HTTP call with the previous token as bearer, or an RFC 8693 exchange.
/// `{domain_id}` in a URL (or an exchange's audience, resource, scope) is replaced at the domain stage.
#[pyclass(name = "Stage", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyStage {
    inner: Stage,
}

/// Strings given as one string or a sequence.
fn strings(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Vec<String>> {
    let Some(value) = value.filter(|value| !value.is_none()) else { return Ok(Vec::new()) };
    if let Ok(one) = value.extract::<String>() {
        return Ok(vec![one]);
    }
    value.extract().map_err(|_| configuration(format!("{name} must be a string or a sequence of strings")))
}

#[pymethods]
impl PyStage {
    /// A `POST` to `url` with the previous token as bearer, answered with JSON
    /// `{access_token, expires_in, ...}` (plus `{id, name, domain_server}` at the domain stage).
    #[staticmethod]
    fn http_post(url: String) -> Self {
        PyStage { inner: Stage::http_post(url) }
    }

    /// A `GET` to `url`, like `http_post`.
    #[staticmethod]
    fn http_get(url: String) -> Self {
        PyStage { inner: Stage::http_get(url) }
    }

    /// An RFC 8693 token exchange at `token_url`, authenticated as `client` (any `ClientAuth`
    /// method, `private_key_jwt` and `client_secret_jwt` included: each request signs a new
    /// assertion).
    #[staticmethod]
    #[pyo3(signature = (token_url, client, *, audience = None, resource = None, scope = None,
        requested_token_type = None))]
    fn token_exchange(
        token_url: String,
        client: PyRef<'_, PyClientAuth>,
        audience: Option<&Bound<'_, PyAny>>,
        resource: Option<&Bound<'_, PyAny>>,
        scope: Option<&Bound<'_, PyAny>>,
        requested_token_type: Option<String>,
    ) -> PyResult<Self> {
        let params = TokenExchangeParams {
            audience: strings(audience, "audience")?,
            resource: strings(resource, "resource")?,
            scope: scope_arg(scope)?,
            requested_token_type,
            ..TokenExchangeParams::default()
        };
        // A client assertion's key is checked now (a ConfigurationError naming the field, never
        // the key), not at the first request.
        client.inner.check_assertion_key().map_err(|error| to_pyerr(&error))?;
        Ok(PyStage { inner: Stage::token_exchange(token_url, client.inner.clone(), params) })
    }

    /// The URL the stage calls (without query).
    #[getter]
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    fn __repr__(&self) -> String {
        let kind = match &self.inner {
            Stage::TokenExchange(_) => "token_exchange",
            _ => "http",
        };
        format!("Stage.{kind}({})", crate::quote(&self.inner.endpoint()))
    }
}

/// The stages of a chain, and how early a stage's token is re-derived (`refresh_threshold`
/// seconds before it expires, capped at half its lifetime; default 30).
#[pyclass(name = "ChainConfig", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyChainConfig {
    inner: ChainConfig,
}

#[pymethods]
impl PyChainConfig {
    #[new]
    #[pyo3(signature = (discovery, domain, *, refresh_threshold = Seconds::Number(30.0)))]
    fn py_new(
        discovery: PyRef<'_, PyStage>,
        domain: PyRef<'_, PyStage>,
        refresh_threshold: Seconds<'_>,
    ) -> PyResult<Self> {
        let chain = ChainConfig::new(discovery.inner.clone(), domain.inner.clone())
            .refresh_threshold(refresh_threshold.duration()?);
        Ok(PyChainConfig { inner: chain })
    }

    /// The threshold in seconds.
    #[getter]
    fn refresh_threshold(&self) -> f64 {
        self.inner.refresh_threshold.as_secs_f64()
    }

    fn __repr__(&self) -> String {
        format!(
            "ChainConfig(discovery={}, domain={}, refresh_threshold={})",
            crate::quote(&self.inner.discovery.endpoint()),
            crate::quote(&self.inner.domain.endpoint()),
            self.inner.refresh_threshold.as_secs_f64()
        )
    }
}

/// A domain's server, as the domain stage described it.
#[pyclass(name = "DomainServer", module = "tessera._tessera", frozen)]
pub struct PyDomainServer {
    /// The server's URL.
    #[pyo3(get)]
    url: String,
    extra: String,
}

#[pymethods]
impl PyDomainServer {
    /// Everything else the stage said about the server (e.g. `region`), as a dict.
    #[getter]
    fn extra<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (&self.extra,))
    }

    fn __repr__(&self) -> String {
        format!("DomainServer(url={})", crate::quote(&self.url))
    }
}

/// Access to one domain: its server and the token it accepts.
#[pyclass(name = "DomainAccess", module = "tessera._tessera", frozen)]
pub struct PyDomainAccess {
    inner: Arc<DomainAccess>,
}

#[pymethods]
impl PyDomainAccess {
    /// The domain id it was asked for.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }

    /// Display name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// The domain's server (`.url`, `.extra`).
    #[getter]
    fn domain_server(&self) -> PyDomainServer {
        let server = &self.inner.domain_server;
        let extra = serde_json::Value::Object(server.extra.clone()).to_string();
        PyDomainServer { url: server.url.clone(), extra }
    }

    /// The token the domain's server accepts (a secret: never log it).
    #[getter]
    fn access_token(&self) -> &str {
        self.inner.access_token.expose_secret()
    }

    /// Usually `Bearer`.
    #[getter]
    fn token_type(&self) -> &str {
        &self.inner.token_type
    }

    /// The `Authorization` header value for the domain's server.
    #[getter]
    fn authorization_header(&self) -> String {
        self.inner.authorization_value().expose_secret().to_owned()
    }

    /// When the token stops being accepted (aware UTC datetime), when the server said.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.expires_at.map(|time| to_datetime(py, time)).transpose()
    }

    fn __repr__(&self) -> String {
        format!(
            "DomainAccess(id={}, name={}, domain_server={}, access_token=<redacted>)",
            crate::quote(&self.inner.id),
            crate::quote(&self.inner.name),
            crate::quote(&self.inner.domain_server.url)
        )
    }
}

/// The chain a `DomainClient` and its `sync` view share: `None` once closed.
#[derive(Clone, Default)]
struct Slot(Arc<std::sync::RwLock<Option<DomainClient>>>);

impl Slot {
    fn new(client: DomainClient) -> Self {
        Slot(Arc::new(std::sync::RwLock::new(Some(client))))
    }

    fn read(&self) -> Option<DomainClient> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The chain, or a `RuntimeError` once closed (as httpx does for a closed client).
    fn client(&self) -> PyResult<DomainClient> {
        self.read().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("this DomainClient is closed (create a new one to derive tokens)")
        })
    }

    /// Drops this handle's chain: its derived tokens (discovery, every domain; zeroed when the last
    /// request in flight ends), its HTTP connections, and a network login made by
    /// `set_credentials(ProviderConfig)`. A `Client` given by the caller stays open.
    fn close(&self) {
        drop(self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
    }

    fn cached_domain_access(&self, domain_id: &str) -> Option<PyDomainAccess> {
        self.read()?.cached_domain_access(domain_id).map(|inner| PyDomainAccess { inner })
    }

    fn cached_domain_ids(&self) -> Vec<String> {
        self.read().map(|client| client.cached_domain_ids()).unwrap_or_default()
    }

    fn repr(&self, class: &str) -> String {
        match self.read() {
            Some(client) => format!("{class}(cached_domains={:?})", client.cached_domain_ids()),
            None => format!("{class}(closed)"),
        }
    }
}

/// A chain of tokens: `client = tessera.DomainClient(network_client, chain)`, then
/// `access = await client.get_domain_access("alpha")`. Concurrent callers share one request per stage.
/// `async with tessera.DomainClient(...) as client:` closes it on exit (see `close`).
#[pyclass(name = "DomainClient", module = "tessera._tessera", frozen)]
pub struct PyDomainClient {
    slot: Slot,
}

fn network_session(client: &Bound<'_, PyAny>) -> PyResult<Option<tessera::Session>> {
    Ok(crate::client_session(client))
}

fn no_credentials_type() -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(
        "set_credentials takes a tessera.ProviderConfig, a tessera.Client or a tessera.SyncClient",
    )
}

#[pymethods]
impl PyDomainClient {
    /// `network_client`: the `Client` (or `SyncClient`) of the network login.
    #[new]
    fn py_new(network_client: &Bound<'_, PyAny>, chain: PyRef<'_, PyChainConfig>) -> PyResult<Self> {
        let session = network_session(network_client)?.ok_or_else(no_network_client)?;
        Ok(PyDomainClient { slot: Slot::new(DomainClient::new(session, chain.inner.clone())) })
    }

    /// A client restored from `save_state()` output, without credentials: valid tokens serve at
    /// once without a request; call `set_credentials` so that expired ones can be replaced.
    #[staticmethod]
    fn from_state(state: &str, chain: PyRef<'_, PyChainConfig>) -> PyResult<Self> {
        let inner = DomainClient::from_state(state, chain.inner.clone()).map_err(|error| to_pyerr(&error))?;
        Ok(PyDomainClient { slot: Slot::new(inner) })
    }

    /// Awaitable: gives the network login (after `from_state`): a `ProviderConfig`, or a
    /// `Client`/`SyncClient` whose session is used as is. Imported network tokens are handed over.
    fn set_credentials<'py>(&self, py: Python<'py>, network: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.slot.client()?;
        if let Some(session) = network_session(network)? {
            return spawn(py, async move { client.set_network_session(session).await });
        }
        let Ok(config) = network.cast::<PyProviderConfig>() else { return Err(no_credentials_type()) };
        let config = config.get().inner.clone();
        spawn(py, async move { client.set_credentials(config).await })
    }

    /// Awaitable: access to `domain_id` (cached, or derived through the chain).
    fn get_domain_access<'py>(&self, py: Python<'py>, domain_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.slot.client()?;
        spawn(py, async move { client.get_domain_access(&domain_id).await.map(|inner| PyDomainAccess { inner }) })
    }

    /// The cached access to `domain_id` if it is still fresh, else `None` (always `None` once
    /// closed). Never does I/O.
    fn cached_domain_access(&self, domain_id: &str) -> Option<PyDomainAccess> {
        self.slot.cached_domain_access(domain_id)
    }

    /// The ids of the domains with a cached access (none once closed).
    fn cached_domain_ids(&self) -> Vec<String> {
        self.slot.cached_domain_ids()
    }

    /// Forgets the cached access to `domain_id` (after its server refused it).
    fn invalidate(&self, domain_id: &str) -> PyResult<()> {
        self.slot.client()?.invalidate(domain_id);
        Ok(())
    }

    /// Awaitable: the network login's tokens (the network stage alone).
    fn authenticate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.slot.client()?;
        spawn(py, async move { client.authenticate().await.map(PyTokenSet::new) })
    }

    /// Awaitable: the discovery token (the chain down to the discovery stage).
    fn authenticate_discovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.slot.client()?;
        spawn(py, async move { client.authenticate_discovery().await.map(PyTokenSet::new) })
    }

    /// The state as JSON: every stage's tokens, never a password or client secret. Keep it like
    /// a token (it holds them). Save it before closing.
    fn save_state(&self) -> PyResult<String> {
        self.slot.client()?.save_state().map_err(|error| to_pyerr(&error))
    }

    /// A `SyncDomainClient` over the same chain (same caches; closing one closes both).
    #[getter]
    fn sync(&self) -> PySyncDomainClient {
        PySyncDomainClient { slot: self.slot.clone() }
    }

    /// Closes the client: drops the derived tokens it holds (discovery and every domain), its HTTP
    /// connections, and a network login it made itself (`set_credentials(ProviderConfig)`); a
    /// `Client` you passed in stays open, its tokens in its store. Afterwards every method that
    /// could send raises `RuntimeError`. Idempotent; sends nothing (no logout).
    fn close(&self) {
        self.slot.close();
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ready::awaitable(slf.py(), slf.clone().into_any())
    }

    /// Closes the client (`close()`), whatever happened in the block.
    #[pyo3(signature = (*_exc_info))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc_info: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.slot.close();
        Ready::awaitable(py, py.None().into_bound(py))
    }

    fn __repr__(&self) -> String {
        self.slot.repr("DomainClient")
    }
}

fn no_network_client() -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(
        "DomainClient needs the network login's tessera.Client or tessera.SyncClient",
    )
}

/// The sync front end of `DomainClient`: the same methods, without `await`.
/// `with tessera.SyncDomainClient(...) as client:` closes it on exit (see `close`).
#[pyclass(name = "SyncDomainClient", module = "tessera._tessera", frozen)]
pub struct PySyncDomainClient {
    slot: Slot,
}

#[pymethods]
impl PySyncDomainClient {
    /// See `DomainClient`.
    #[new]
    fn py_new(network_client: &Bound<'_, PyAny>, chain: PyRef<'_, PyChainConfig>) -> PyResult<Self> {
        let session = network_session(network_client)?.ok_or_else(no_network_client)?;
        Ok(PySyncDomainClient { slot: Slot::new(DomainClient::new(session, chain.inner.clone())) })
    }

    /// See `DomainClient.from_state`.
    #[staticmethod]
    fn from_state(state: &str, chain: PyRef<'_, PyChainConfig>) -> PyResult<Self> {
        let inner = DomainClient::from_state(state, chain.inner.clone()).map_err(|error| to_pyerr(&error))?;
        Ok(PySyncDomainClient { slot: Slot::new(inner) })
    }

    /// Gives the network login: a `ProviderConfig`, a `Client` or a `SyncClient`.
    fn set_credentials(&self, py: Python<'_>, network: &Bound<'_, PyAny>) -> PyResult<()> {
        let client = self.slot.client()?;
        if let Some(session) = network_session(network)? {
            return block_on(py, client.set_network_session(session));
        }
        let Ok(config) = network.cast::<PyProviderConfig>() else { return Err(no_credentials_type()) };
        let config = config.get().inner.clone();
        block_on(py, client.set_credentials(config))
    }

    /// Access to `domain_id` (cached, or derived through the chain).
    fn get_domain_access(&self, py: Python<'_>, domain_id: &str) -> PyResult<PyDomainAccess> {
        let client = self.slot.client()?;
        // Always through get_domain_access: its cached path is lock-free and, unlike
        // cached_domain_access, re-derives a token that is within the refresh threshold.
        Ok(PyDomainAccess { inner: block_on(py, client.get_domain_access(domain_id))? })
    }

    /// The cached access to `domain_id` if it is still fresh, else `None`. Never does I/O.
    fn cached_domain_access(&self, domain_id: &str) -> Option<PyDomainAccess> {
        self.slot.cached_domain_access(domain_id)
    }

    /// The ids of the domains with a cached access.
    fn cached_domain_ids(&self) -> Vec<String> {
        self.slot.cached_domain_ids()
    }

    /// Forgets the cached access to `domain_id`.
    fn invalidate(&self, domain_id: &str) -> PyResult<()> {
        self.slot.client()?.invalidate(domain_id);
        Ok(())
    }

    /// The network login's tokens.
    fn authenticate(&self, py: Python<'_>) -> PyResult<PyTokenSet> {
        let client = self.slot.client()?;
        Ok(PyTokenSet::new(block_on(py, client.authenticate())?))
    }

    /// The discovery token.
    fn authenticate_discovery(&self, py: Python<'_>) -> PyResult<PyTokenSet> {
        let client = self.slot.client()?;
        Ok(PyTokenSet::new(block_on(py, client.authenticate_discovery())?))
    }

    /// The state as JSON (tokens only, never credentials).
    fn save_state(&self) -> PyResult<String> {
        self.slot.client()?.save_state().map_err(|error| to_pyerr(&error))
    }

    /// A `DomainClient` (async) over the same chain.
    #[getter]
    fn aio(&self) -> PyDomainClient {
        PyDomainClient { slot: self.slot.clone() }
    }

    /// See `DomainClient.close`.
    fn close(&self) {
        self.slot.close();
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Closes the client (`close()`), whatever happened in the block.
    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: Bound<'_, PyTuple>) {
        self.slot.close();
    }

    fn __repr__(&self) -> String {
        self.slot.repr("SyncDomainClient")
    }
}
