//! The provider registry and the `AuthClient` facade: providers of a TOML configuration with
//! contexts, built-in types plus types registered with a Python factory.
//!
//! A Python provider is any object with `is_authenticated()` and `credential()` (sync or async),
//! and optionally `description()`, `status()`, `auth_context()`, `extra_info()`, `login()`,
//! `logout()`, `refresh(force)` and `can_refresh()`. Its factory receives a `ProviderSettings`
//! (the section, secrets unresolved) and should check every field there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use tessera::config::{Config, ProviderEntry};
use tessera::provider::{
    AuthProvider, BasicCredential, Credential, Login, OAuthCredential, ProviderStatus, Refreshable,
};
use tessera::registry::{ProviderFactory, ProviderSettings, Registry};
use tessera::store::{MemoryStore, TokenStore};
use tessera::{AuthClient, Error, LogoutOutcome, ProviderInfo, Secret, Timestamp};

use crate::callback::Callback;
use crate::errors::{configuration, from_python, to_pyerr};
use crate::runtime::{Ready, block_on, spawn};
use crate::time::{instant, to_datetime};

fn status_from(name: &str) -> PyResult<ProviderStatus> {
    match name {
        "authenticated" => Ok(ProviderStatus::Authenticated),
        "expired" => Ok(ProviderStatus::Expired),
        "available" => Ok(ProviderStatus::Available),
        "error" => Ok(ProviderStatus::Error),
        other => {
            Err(configuration(format!("status must be one of authenticated, expired, available, error; not {other:?}")))
        }
    }
}

fn optional_instant(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Timestamp>> {
    value.filter(|value| !value.is_none()).map(instant).transpose()
}

fn optional_datetime<'py>(py: Python<'py>, at: Option<Timestamp>) -> PyResult<Option<Bound<'py, PyAny>>> {
    at.map(|at| to_datetime(py, at)).transpose()
}

fn json_to_python<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| configuration(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

fn python_to_json(value: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let text: String = value.py().import("json")?.call_method1("dumps", (value,))?.extract()?;
    serde_json::from_str(&text).map_err(|e| configuration(e.to_string()))
}

/// A username/password-style credential (HTTP Basic, an API key of a user). Holds no secret.
#[pyclass(name = "BasicCredential", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyBasicCredential {
    inner: BasicCredential,
}

#[pymethods]
impl PyBasicCredential {
    /// `status`: `authenticated`, `expired`, `available` or `error`; `login_time`: Unix seconds or a datetime.
    #[new]
    #[pyo3(signature = (name, status, *, auth_source, username = None, login_time = None))]
    fn py_new(
        name: String,
        status: &str,
        auth_source: String,
        username: Option<String>,
        login_time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(PyBasicCredential {
            inner: BasicCredential {
                name,
                status: status_from(status)?,
                username,
                login_time: optional_instant(login_time)?,
                auth_source,
            },
        })
    }

    /// The provider's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// `authenticated`, `expired`, `available` or `error`.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }

    /// Who is logged in, when known.
    #[getter]
    fn username(&self) -> Option<&str> {
        self.inner.username.as_deref()
    }

    /// When the login happened, when known.
    #[getter]
    fn login_time<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.login_time)
    }

    /// Where the credential comes from (`env:API_KEY`, `login`, ...); never the value.
    #[getter]
    fn auth_source(&self) -> &str {
        &self.inner.auth_source
    }

    fn __repr__(&self) -> String {
        format!(
            "BasicCredential(name={}, status={}, username={}, auth_source={})",
            crate::quote(&self.inner.name),
            crate::quote(self.inner.status.as_str()),
            crate::quote_opt(self.inner.username.as_deref()),
            crate::quote(&self.inner.auth_source)
        )
    }
}

/// An OAuth credential. Its `repr` shows no token.
#[pyclass(name = "OAuthCredential", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyOAuthCredential {
    inner: OAuthCredential,
}

#[pymethods]
impl PyOAuthCredential {
    /// `status`: `authenticated`, `expired`, `available` or `error`; `expires_at`: Unix seconds or a datetime.
    #[new]
    #[pyo3(signature = (name, status, *, client_id = None, access_token = None, refresh_token = None,
        expires_at = None, allows_refresh = false))]
    fn py_new(
        name: String,
        status: &str,
        client_id: Option<String>,
        access_token: Option<String>,
        refresh_token: Option<String>,
        expires_at: Option<&Bound<'_, PyAny>>,
        allows_refresh: bool,
    ) -> PyResult<Self> {
        Ok(PyOAuthCredential {
            inner: OAuthCredential {
                name,
                status: status_from(status)?,
                client_id,
                access_token: access_token.map(Secret::new),
                refresh_token: refresh_token.map(Secret::new),
                expires_at: optional_instant(expires_at)?,
                allows_refresh,
            },
        })
    }

    /// The provider's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// `authenticated`, `expired`, `available` or `error`.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }

    /// The OAuth client, when there is one.
    #[getter]
    fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// The access token (a secret: never log it).
    #[getter]
    fn access_token<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.inner.access_token.as_ref().map(|token| PyString::new(py, token.expose_secret()))
    }

    /// The refresh token (a secret: never log it).
    #[getter]
    fn refresh_token<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.inner.refresh_token.as_ref().map(|token| PyString::new(py, token.expose_secret()))
    }

    /// When the access token expires, when known.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.expires_at)
    }

    /// True when a new access token can be had without the user.
    #[getter]
    fn allows_refresh(&self) -> bool {
        self.inner.allows_refresh
    }

    fn __repr__(&self) -> String {
        let hidden = |secret: &Option<Secret>| if secret.is_some() { "<redacted>" } else { "None" };
        format!(
            "OAuthCredential(name={}, status={}, client_id={}, access_token={}, refresh_token={}, expires_at_ms={}, allows_refresh={})",
            crate::quote(&self.inner.name),
            crate::quote(self.inner.status.as_str()),
            crate::quote_opt(self.inner.client_id.as_deref()),
            hidden(&self.inner.access_token),
            hidden(&self.inner.refresh_token),
            self.inner.expires_at.map_or_else(|| "None".to_owned(), |at| at.as_unix_millis().to_string()),
            if self.inner.allows_refresh { "True" } else { "False" }
        )
    }
}

fn credential_to_python(py: Python<'_>, credential: Credential) -> PyResult<Bound<'_, PyAny>> {
    match credential {
        Credential::Basic(inner) => Ok(Bound::new(py, PyBasicCredential { inner })?.into_any()),
        Credential::OAuth(inner) => Ok(Bound::new(py, PyOAuthCredential { inner })?.into_any()),
        #[allow(unreachable_patterns, reason = "Credential is non_exhaustive")]
        other => Err(configuration(format!("this binding has no class for the credential {other:?}"))),
    }
}

/// One row of `list_providers()`. No secret.
#[pyclass(name = "ProviderInfo", module = "tessera._tessera", frozen)]
pub struct PyProviderInfo {
    /// The provider's name.
    #[pyo3(get)]
    name: String,
    /// Its type (`password`, ... or a registered one).
    #[pyo3(get, name = "type")]
    provider_type: String,
    /// `authenticated`, `expired`, `available` or `error`.
    #[pyo3(get)]
    status: &'static str,
    /// One line for people.
    #[pyo3(get)]
    description: String,
    extra: serde_json::Map<String, serde_json::Value>,
    /// What it can do: a subset of `login`, `refresh`, `http_headers`, `token`.
    #[pyo3(get)]
    capabilities: Vec<&'static str>,
    /// Why the status is `error`.
    #[pyo3(get)]
    error: Option<String>,
}

impl PyProviderInfo {
    fn new(info: ProviderInfo) -> Self {
        let caps = info.capabilities;
        let capabilities = [("login", caps.login), ("refresh", caps.refresh), ("http_headers", caps.http_headers)]
            .into_iter()
            .chain([("token", caps.token)])
            .filter_map(|(name, has)| has.then_some(name))
            .collect();
        PyProviderInfo {
            name: info.name,
            provider_type: info.provider_type,
            status: info.status.as_str(),
            description: info.description,
            extra: info.extra,
            capabilities,
            error: info.error,
        }
    }
}

#[pymethods]
impl PyProviderInfo {
    /// Display-only facts from the provider.
    #[getter]
    fn extra<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_python(py, &self.extra)
    }

    fn __repr__(&self) -> String {
        format!(
            "ProviderInfo(name={}, type={}, status={})",
            crate::quote(&self.name),
            crate::quote(&self.provider_type),
            crate::quote(self.status)
        )
    }
}

/// What a factory gets to build one provider: its section (secrets unresolved) and where it is.
#[pyclass(name = "ProviderSettings", module = "tessera._tessera", frozen)]
pub struct PyProviderSettings {
    origin: String,
    context: String,
    entry: ProviderEntry,
    store: Arc<dyn TokenStore>,
}

impl PyProviderSettings {
    fn with<T>(&self, f: impl FnOnce(&ProviderSettings<'_>) -> Result<T, Error>) -> PyResult<T> {
        let settings = ProviderSettings::new(&self.origin, &self.context, &self.entry, Arc::clone(&self.store));
        f(&settings).map_err(|error| to_pyerr(&error))
    }
}

#[pymethods]
impl PyProviderSettings {
    /// The provider's name.
    #[getter]
    fn name(&self) -> &str {
        &self.entry.name
    }

    /// The provider's type.
    #[getter]
    fn provider_type(&self) -> &str {
        &self.entry.type_name
    }

    /// The context's name.
    #[getter]
    fn context(&self) -> &str {
        &self.context
    }

    /// The configuration file (or other origin).
    #[getter]
    fn origin(&self) -> &str {
        &self.origin
    }

    /// `<context>/<name>`: where this provider's credential is stored.
    #[getter]
    fn store_key(&self) -> String {
        format!("{}/{}", self.context, self.entry.name)
    }

    /// The raw section as a dict, secrets unresolved (`env:NAME` stays as written).
    #[getter]
    fn table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_python(py, self.entry.settings())
    }

    /// A string field, if present (a `ConfigurationError` names it when it is not a string).
    fn string(&self, field: &str) -> PyResult<Option<String>> {
        self.with(|settings| settings.string(field).map(|value| value.map(str::to_owned)))
    }

    /// A string field that must be present and non-empty.
    fn required_string(&self, field: &str) -> PyResult<String> {
        self.with(|settings| settings.required_string(field).map(str::to_owned))
    }

    /// Fails naming the first field that is not `name`, `provider` or in `allowed`.
    fn allow_fields(&self, allowed: Vec<String>) -> PyResult<()> {
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        self.with(|settings| settings.allow_fields(&allowed))
    }

    /// Resolves a secret field (`env:NAME`, `file:PATH` or a literal). Call it when the secret is
    /// needed (in `login()`), not in the factory.
    fn secret(&self, field: &str) -> PyResult<Option<String>> {
        self.with(|settings| settings.secret(field).map(|secret| secret.map(|s| s.expose_secret().to_owned())))
    }

    /// A `ConfigurationError` naming the file, context, provider and `field` (raise it).
    fn error<'py>(&self, py: Python<'py>, field: &str, problem: &str) -> Bound<'py, PyAny> {
        let error = self.entry.error(&self.origin, &self.context, field, problem);
        to_pyerr(&error).into_value(py).into_bound(py).into_any()
    }

    fn __repr__(&self) -> String {
        format!(
            "ProviderSettings(context={}, name={}, provider_type={})",
            crate::quote(&self.context),
            crate::quote(&self.entry.name),
            crate::quote(&self.entry.type_name)
        )
    }
}

/// A factory written in Python: `factory(settings) -> provider`.
struct PythonFactory {
    factory: Py<PyAny>,
    type_name: String,
}

impl ProviderFactory for PythonFactory {
    fn build_from_settings(
        &self,
        context: &str,
        _name: &str,
        config: &ProviderSettings<'_>,
    ) -> Result<Arc<dyn AuthProvider>, Error> {
        let location = format!("factory of {:?}", self.type_name);
        Python::attach(|py| {
            let settings = PyProviderSettings {
                origin: config.origin().to_owned(),
                context: context.to_owned(),
                entry: config.entry().clone(),
                store: Arc::clone(config.store()),
            };
            let object = self.factory.bind(py).call1((settings,))?;
            PythonProvider::new(&object, config.name().to_owned(), self.type_name.clone())
        })
        .map(|provider| Arc::new(provider) as Arc<dyn AuthProvider>)
        .map_err(|error| from_python(&location, error))
    }
}

/// A provider written in Python.
struct PythonProvider {
    name: String,
    provider_type: String,
    object: Py<PyAny>,
    is_authenticated: Callback,
    credential: Callback,
    description: Option<Callback>,
    status: Option<Callback>,
    auth_context: Option<Callback>,
    extra_info: Option<Callback>,
    login: Option<Callback>,
    logout: Option<Callback>,
    refresh: Option<Callback>,
    can_refresh: Option<Callback>,
}

impl std::fmt::Debug for PythonProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonProvider").field("name", &self.name).field("type", &self.provider_type).finish()
    }
}

fn no_args(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    Ok(PyTuple::empty(py))
}

impl PythonProvider {
    fn new(object: &Bound<'_, PyAny>, name: String, provider_type: String) -> PyResult<Self> {
        let required = |method: &str| {
            Callback::method(object, method)?.ok_or_else(|| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "the factory of provider type {provider_type:?} returned an object without a {method}() method \
                     (a provider needs is_authenticated() and credential())"
                ))
            })
        };
        Ok(PythonProvider {
            is_authenticated: required("is_authenticated")?,
            credential: required("credential")?,
            description: Callback::method(object, "description")?,
            status: Callback::method(object, "status")?,
            auth_context: Callback::method(object, "auth_context")?,
            extra_info: Callback::method(object, "extra_info")?,
            login: Callback::method(object, "login")?,
            logout: Callback::method(object, "logout")?,
            refresh: Callback::method(object, "refresh")?,
            can_refresh: Callback::method(object, "can_refresh")?,
            object: object.clone().unbind(),
            name,
            provider_type,
        })
    }

    fn json_map(&self, callback: &Option<Callback>) -> serde_json::Map<String, serde_json::Value> {
        let Some(callback) = callback else { return serde_json::Map::new() };
        let value = callback.call_sync(no_args, |value| {
            if value.is_none() {
                return Ok(serde_json::Value::Null);
            }
            python_to_json(value)
        });
        match value {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        }
    }
}

#[async_trait]
impl AuthProvider for PythonProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn provider_type(&self) -> &str {
        &self.provider_type
    }

    fn description(&self) -> String {
        let described = self.description.as_ref().map(|callback| callback.call_sync(no_args, |text| text.extract()));
        match described {
            Some(Ok(text)) => text,
            _ => Python::attach(|py| {
                let object = self.object.bind(py);
                format!(
                    "{} ({})",
                    self.provider_type,
                    object.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                )
            }),
        }
    }

    async fn is_authenticated(&self) -> Result<bool, Error> {
        let answer = self.is_authenticated.call_async(no_args).await?;
        Python::attach(|py| answer.bind(py).is_truthy())
            .map_err(|error| from_python(&self.is_authenticated.location, error))
    }

    async fn status(&self) -> Result<ProviderStatus, Error> {
        let Some(status) = &self.status else {
            return Ok(if self.is_authenticated().await? {
                ProviderStatus::Authenticated
            } else {
                ProviderStatus::Available
            });
        };
        let answer = status.call_async(no_args).await?;
        Python::attach(|py| status_from(&answer.bind(py).extract::<String>()?))
            .map_err(|error| from_python(&status.location, error))
    }

    fn auth_context(&self) -> serde_json::Value {
        let mut context = self.json_map(&self.auth_context);
        context.entry("type").or_insert_with(|| serde_json::Value::String(self.provider_type.clone()));
        serde_json::Value::Object(context)
    }

    async fn credential(&self) -> Result<Credential, Error> {
        let answer = self.credential.call_async(no_args).await?;
        Python::attach(|py| {
            let answer = answer.bind(py);
            if let Ok(basic) = answer.extract::<PyRef<'_, PyBasicCredential>>() {
                return Ok(Credential::Basic(basic.inner.clone()));
            }
            if let Ok(oauth) = answer.extract::<PyRef<'_, PyOAuthCredential>>() {
                return Ok(Credential::OAuth(oauth.inner.clone()));
            }
            Err(configuration("credential() must return a BasicCredential or an OAuthCredential"))
        })
        .map_err(|error| from_python(&self.credential.location, error))
    }

    fn extra_info(&self) -> serde_json::Map<String, serde_json::Value> {
        self.json_map(&self.extra_info)
    }

    fn as_login(&self) -> Option<&dyn Login> {
        self.login.as_ref().map(|_| self as &dyn Login)
    }

    fn as_refreshable(&self) -> Option<&dyn Refreshable> {
        self.refresh.as_ref().map(|_| self as &dyn Refreshable)
    }
}

#[async_trait]
impl Login for PythonProvider {
    async fn login(&self) -> Result<(), Error> {
        match &self.login {
            Some(login) => login.call_async(no_args).await.map(drop),
            None => Err(Error::configuration("this provider does not support login")),
        }
    }

    async fn logout(&self) -> Result<LogoutOutcome, Error> {
        let Some(logout) = &self.logout else {
            return Ok(LogoutOutcome { revoked: false, revocation_error: None, had_tokens: false });
        };
        let answer = logout.call_async(no_args).await?;
        // `logout()` may return whether the server revoked the credential.
        let revoked = Python::attach(|py| answer.bind(py).is_truthy())
            .map_err(|err| from_python("the provider's logout() result", err))?;
        Ok(LogoutOutcome { revoked, revocation_error: None, had_tokens: true })
    }
}

#[async_trait]
impl Refreshable for PythonProvider {
    /// `Refreshable::can_refresh` answers a plain bool: a `can_refresh()` that raises (or returns
    /// something without a truth value) counts as "cannot refresh", and `refresh()` then reports it.
    async fn can_refresh(&self) -> bool {
        let Some(can_refresh) = &self.can_refresh else { return true };
        match can_refresh.call_async(no_args).await {
            Ok(answer) => Python::attach(|py| answer.bind(py).is_truthy()).unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn refresh(&self, force: bool) -> Result<(), Error> {
        match &self.refresh {
            Some(refresh) => refresh.call_async(move |py| PyTuple::new(py, [force])).await.map(drop),
            None => Err(Error::configuration("this provider does not support refresh")),
        }
    }
}

/// Provider types by name: the built-in ones, plus those registered with a Python factory.
#[pyclass(name = "Registry", module = "tessera._tessera", frozen)]
pub struct PyRegistry {
    inner: Mutex<Registry>,
}

impl PyRegistry {
    fn snapshot(&self) -> Registry {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

#[pymethods]
impl PyRegistry {
    /// A registry of the built-in types (`password`, `client_credentials`, `refresh_token`, `static`).
    #[new]
    fn py_new() -> Self {
        PyRegistry { inner: Mutex::new(Registry::default()) }
    }

    /// Registers (or replaces) `type_name`: `factory(settings: ProviderSettings)` returns a provider
    /// object. It runs when a configuration is loaded: check fields there, resolve no secret.
    fn register_factory(&self, type_name: String, factory: Bound<'_, PyAny>) -> PyResult<()> {
        if !factory.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err("factory must be callable"));
        }
        let factory = PythonFactory { factory: factory.unbind(), type_name: type_name.clone() };
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).register_factory(type_name, factory);
        Ok(())
    }

    /// The registered type names, in registration order.
    fn type_names(&self) -> Vec<String> {
        self.snapshot().type_names().into_iter().map(str::to_owned).collect()
    }

    fn __repr__(&self) -> String {
        format!("Registry(types={:?})", self.type_names())
    }
}

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

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, _exc_info: Bound<'_, PyTuple>) {}
});
