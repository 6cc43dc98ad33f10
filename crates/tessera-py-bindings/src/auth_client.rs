//! The `AuthClient` / `SyncAuthClient` facades: the providers of a TOML configuration with
//! contexts (see `registry` for the types they know), one call for login, logout, refresh,
//! status and credentials of one provider or all.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tessera::config::Config;
use tessera::provider::Credential;
use tessera::registry::Registry;
use tessera::store::{MemoryStore, TokenStore};
use tessera::{AuthClient, ProviderInfo, Secret};

use crate::credentials::{PyProviderInfo, credential_to_python};
use crate::errors::{configuration, to_pyerr};
use crate::registry::PyRegistry;
use crate::runtime::{Ready, block_on, spawn};
use crate::time::Seconds;
use crate::tokens::PyTokenSet;

/// What both facades share.
struct SharedClient {
    client: AuthClient,
}

#[allow(clippy::too_many_arguments)]
fn build_client(
    text: Option<String>,
    path: Option<std::path::PathBuf>,
    origin: &str,
    registry: Option<PyRef<'_, PyRegistry>>,
    context: Option<&str>,
    store: Option<&Bound<'_, PyAny>>,
) -> PyResult<Arc<SharedClient>> {
    let registry = registry.map_or_else(Registry::default, |registry| registry.snapshot());
    // Factories are Python code: they run here, on this thread, with the GIL.
    let config: Config = match (text, path) {
        (Some(text), None) => registry.parse_config(&text, origin),
        (None, Some(path)) => registry.load_config(&path),
        _ => return Err(configuration("give the configuration text or its path")),
    }
    .map_err(|error| to_pyerr(&error))?;
    let store: Arc<dyn TokenStore> = match store.filter(|store| !store.is_none()) {
        Some(store) => crate::store::resolve(Some(store))?.0,
        None => {
            let chosen = config.context(context).map_err(|error| to_pyerr(&error))?;
            match &chosen.store {
                Some(store_config) => {
                    let default_dir =
                        tessera::config::Paths::from_env().map(|paths| paths.store_dir).unwrap_or_default();
                    tessera::store::open(store_config, &default_dir).map_err(|error| to_pyerr(&error))?
                }
                None => Arc::new(MemoryStore::new()),
            }
        }
    };
    let client = AuthClient::from_config(&registry, &config, context, store).map_err(|error| to_pyerr(&error))?;
    Ok(Arc::new(SharedClient { client }))
}

/// The providers of one context behind one facade (async): `await client.login()`,
/// `await client.list_providers()`, `await client.credential("name")`, ...
#[pyclass(name = "AuthClient", module = "tessera._tessera", frozen)]
pub struct PyAuthClient {
    shared: Arc<SharedClient>,
}

/// The same facade, sync: `client.login()`, `client.list_providers()`, ...
#[pyclass(name = "SyncAuthClient", module = "tessera._tessera", frozen)]
pub struct PySyncAuthClient {
    shared: Arc<SharedClient>,
}

struct Infos(Vec<ProviderInfo>);

impl<'py> IntoPyObject<'py> for Infos {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        let rows =
            self.0.into_iter().map(|info| Bound::new(py, PyProviderInfo::new(info))).collect::<PyResult<Vec<_>>>()?;
        Ok(rows.into_pyobject(py)?.into_any())
    }
}

/// Header names and values, as a `dict[str, str]`.
struct Headers(Vec<(String, Secret)>);

impl<'py> IntoPyObject<'py> for Headers {
    type Target = PyDict;
    type Output = Bound<'py, PyDict>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        let dict = PyDict::new(py);
        for (name, value) in &self.0 {
            dict.set_item(name, value.expose_secret())?;
        }
        Ok(dict)
    }
}

struct CredentialObject(Credential);

impl<'py> IntoPyObject<'py> for CredentialObject {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        credential_to_python(py, self.0)
    }
}

macro_rules! facade {
    ($class:ident { $($methods:tt)* }) => {
        #[pymethods]
        impl $class {
            $($methods)*

            /// The facade over `context` (default: the configuration's `current_context`) of the TOML
            /// `text`. `store`: where credentials live (default: the context's `store = {...}`, else memory).
            #[staticmethod]
            #[pyo3(signature = (text, *, registry = None, context = None, store = None, origin = "<string>"))]
            fn from_toml(
                text: String,
                registry: Option<PyRef<'_, PyRegistry>>,
                context: Option<&str>,
                store: Option<&Bound<'_, PyAny>>,
                origin: &str,
            ) -> PyResult<Self> {
                Ok($class { shared: build_client(Some(text), None, origin, registry, context, store)? })
            }

            /// Like `from_toml`, reading the file at `path`.
            #[staticmethod]
            #[pyo3(signature = (path, *, registry = None, context = None, store = None))]
            fn from_file(
                path: std::path::PathBuf,
                registry: Option<PyRef<'_, PyRegistry>>,
                context: Option<&str>,
                store: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Self> {
                Ok($class { shared: build_client(None, Some(path), "", registry, context, store)? })
            }

            /// The context's name.
            #[getter]
            fn context(&self) -> &str {
                self.shared.client.context()
            }

            /// The provider names, in configuration order.
            fn provider_names(&self) -> Vec<String> {
                self.shared.client.providers().iter().map(|p| p.name().to_owned()).collect()
            }

            fn __repr__(&self) -> String {
                format!(
                    "{}(context={}, providers={:?})",
                    stringify!($class).trim_start_matches("Py"),
                    crate::quote(self.shared.client.context()),
                    self.provider_names()
                )
            }
        }
    };
}

facade!(PyAuthClient {
    /// A `SyncAuthClient` over the same providers.
    #[getter]
    fn sync(&self) -> PySyncAuthClient {
        PySyncAuthClient { shared: Arc::clone(&self.shared) }
    }

    /// Awaitable: logs in to `name` (`{name: True}` or its error), or to every provider that can
    /// (`{name: ok}`, best effort).
    #[pyo3(signature = (name = None))]
    fn login<'py>(&self, py: Python<'py>, name: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { shared.client.login(name.as_deref()).await })
    }

    /// Awaitable: logs out of `name`, or of every provider that can.
    #[pyo3(signature = (name = None))]
    fn logout<'py>(&self, py: Python<'py>, name: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { shared.client.logout(name.as_deref()).await })
    }

    /// Awaitable: every provider with its status (`list[ProviderInfo]`).
    fn list_providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { Ok(Infos(shared.client.list_providers().await)) })
    }

    /// Awaitable: is `name` authenticated, or (without a name) any provider? Errors count as False.
    #[pyo3(signature = (name = None))]
    fn is_authenticated<'py>(&self, py: Python<'py>, name: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { Ok(shared.client.is_authenticated(name.as_deref()).await) })
    }

    /// Awaitable: the credential of `name` (`BasicCredential` or `OAuthCredential`; no network).
    fn credential<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { shared.client.credential(&name).await.map(CredentialObject) })
    }

    /// Awaitable: refreshes `name` (its error on failure), or every provider that can refresh
    /// without the user (`{name: ok}`, never an error). `force` refreshes valid tokens too.
    #[pyo3(signature = (name = None, *, force = false))]
    fn refresh_credentials<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        force: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { shared.client.refresh_credentials(name.as_deref(), force).await })
    }

    /// Awaitable: the HTTP headers to send for provider `name`, as `dict[str, str]` (values are
    /// secrets: never log them), refreshed as needed. A Python provider's own `get_headers()` is
    /// used as is; a provider without headers but with a token gives `{"authorization": "Bearer <token>"}`.
    ///
    /// - `name`: the provider's name in the context (required).
    ///
    /// Raises `ConfigurationError` for an unknown name or a provider with neither headers nor a
    /// token, else the provider's own error (e.g. `ReauthenticationRequired`).
    fn headers<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { shared.client.headers(&name).await.map(Headers) })
    }

    /// Awaitable: the `TokenSet` of provider `name`, its access token valid for at least
    /// `min_valid` from now when the server allows it (refreshed, or logged in again when that
    /// needs nobody).
    ///
    /// - `name`: the provider's name in the context (required).
    /// - `min_valid`: seconds (or a `timedelta`) the access token must stay valid; default `0`.
    ///
    /// Raises `ConfigurationError` for an unknown name or a provider without tokens.
    #[pyo3(signature = (name, *, min_valid = Seconds::ZERO), text_signature = "($self, name, *, min_valid=0)")]
    fn token<'py>(&self, py: Python<'py>, name: String, min_valid: Seconds<'py>) -> PyResult<Bound<'py, PyAny>> {
        let min_valid = min_valid.duration()?;
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { shared.client.token(&name, min_valid).await.map(PyTokenSet::new) })
    }

    /// Awaitable: quilt3's `logged_in()`. Where provider `name` (default `None`: the first
    /// authenticated provider, in configuration order) is logged in, else `None`: its `url`,
    /// `issuer` or `token_endpoint` (from `auth_context()`), or its name for a provider that talks
    /// to no server (a static token). No network; errors and unknown names give `None`.
    #[pyo3(signature = (name = None))]
    fn logged_in<'py>(&self, py: Python<'py>, name: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        spawn(py, async move { Ok(shared.client.logged_in(name.as_deref()).await) })
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Ready::awaitable(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (*_exc_info))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc_info: Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        Ready::awaitable(py, py.None().into_bound(py))
    }
});

facade!(PySyncAuthClient {
    /// An `AuthClient` (async) over the same providers.
    #[getter]
    fn aio(&self) -> PyAuthClient {
        PyAuthClient { shared: Arc::clone(&self.shared) }
    }

    /// Logs in to `name` (`{name: True}` or its error), or to every provider that can (best effort).
    #[pyo3(signature = (name = None))]
    fn login(&self, py: Python<'_>, name: Option<String>) -> PyResult<BTreeMap<String, bool>> {
        block_on(py, self.shared.client.login(name.as_deref()))
    }

    /// Logs out of `name`, or of every provider that can.
    #[pyo3(signature = (name = None))]
    fn logout(&self, py: Python<'_>, name: Option<String>) -> PyResult<BTreeMap<String, bool>> {
        block_on(py, self.shared.client.logout(name.as_deref()))
    }

    /// Every provider with its status.
    fn list_providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = block_on(py, async { Ok(self.shared.client.list_providers().await) })?;
        Infos(rows).into_pyobject(py)
    }

    /// Is `name` authenticated, or (without a name) any provider? Errors count as False.
    #[pyo3(signature = (name = None))]
    fn is_authenticated(&self, py: Python<'_>, name: Option<String>) -> PyResult<bool> {
        block_on(py, async { Ok(self.shared.client.is_authenticated(name.as_deref()).await) })
    }

    /// The credential of `name` (no network).
    fn credential<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let credential = block_on(py, self.shared.client.credential(&name))?;
        credential_to_python(py, credential)
    }

    /// Refreshes `name` (its error on failure), or every provider that can (best effort).
    #[pyo3(signature = (name = None, *, force = false))]
    fn refresh_credentials(
        &self,
        py: Python<'_>,
        name: Option<String>,
        force: bool,
    ) -> PyResult<BTreeMap<String, bool>> {
        block_on(py, self.shared.client.refresh_credentials(name.as_deref(), force))
    }

    /// The HTTP headers to send for provider `name`, as `dict[str, str]` (values are secrets),
    /// refreshed as needed; see `AuthClient.headers`.
    ///
    /// - `name`: the provider's name in the context (required).
    fn headers<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyDict>> {
        let headers = block_on(py, self.shared.client.headers(&name))?;
        Headers(headers).into_pyobject(py)
    }

    /// The `TokenSet` of provider `name`, valid for at least `min_valid`; see `AuthClient.token`.
    ///
    /// - `name`: the provider's name in the context (required).
    /// - `min_valid`: seconds (or a `timedelta`) the access token must stay valid; default `0`.
    #[pyo3(signature = (name, *, min_valid = Seconds::ZERO), text_signature = "($self, name, *, min_valid=0)")]
    fn token(&self, py: Python<'_>, name: String, min_valid: Seconds<'_>) -> PyResult<PyTokenSet> {
        let min_valid = min_valid.duration()?;
        Ok(PyTokenSet::new(block_on(py, self.shared.client.token(&name, min_valid))?))
    }

    /// quilt3's `logged_in()`: where provider `name` (default `None`: the first authenticated
    /// one) is logged in, else `None`; see `AuthClient.logged_in`.
    #[pyo3(signature = (name = None))]
    fn logged_in(&self, py: Python<'_>, name: Option<String>) -> PyResult<Option<String>> {
        block_on(py, async { Ok(self.shared.client.logged_in(name.as_deref()).await) })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: Bound<'_, PyTuple>) {}
});
