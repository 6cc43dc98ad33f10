//! The provider registry: built-in types plus types registered with a Python factory.
//!
//! A Python provider is any object with `is_authenticated()` and `credential()` (sync or async),
//! and optionally `description()`, `status()`, `auth_context()`, `extra_info()`, `login()`,
//! `logout()`, `refresh(force)`, `can_refresh()`, `get_headers()` (a mapping of header names to
//! values: the `http_headers` capability) and `token()` (a `str` or a `TokenSet`: the `token`
//! capability). Its factory receives a `ProviderSettings` (the section, secrets unresolved) and
//! should check every field there.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tessera::clock::{Clock, SystemClock};
use tessera::config::ProviderEntry;
use tessera::provider::{AuthProvider, Credential, HttpHeaders, Login, ProviderStatus, Refreshable, TokenSource};
use tessera::registry::{ProviderFactory, ProviderSettings, Registry};
use tessera::store::TokenStore;
use tessera::{Error, LogoutOutcome, Secret, TokenSet};

use crate::callback::Callback;
use crate::credentials::{PyBasicCredential, PyOAuthCredential, json_to_python, python_to_json, status_from};
use crate::errors::{configuration, from_python, to_pyerr};

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
    get_headers: Option<Callback>,
    token: Option<Callback>,
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
            get_headers: Callback::method(object, "get_headers")?,
            token: Callback::method(object, "token")?,
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

    fn as_http_headers(&self) -> Option<&dyn HttpHeaders> {
        self.get_headers.as_ref().map(|_| self as &dyn HttpHeaders)
    }

    fn as_token_source(&self) -> Option<&dyn TokenSource> {
        self.token.as_ref().map(|_| self as &dyn TokenSource)
    }
}

#[async_trait]
impl HttpHeaders for PythonProvider {
    /// The provider's own `get_headers()`: a mapping (a dict, httpx's `Headers`, ...) of names to values.
    async fn headers(&self) -> Result<Vec<(String, Secret)>, Error> {
        let Some(get_headers) = &self.get_headers else { return Ok(Vec::new()) };
        let answer = get_headers.call_async(no_args).await?;
        Python::attach(|py| -> PyResult<Vec<(String, Secret)>> {
            let answer = answer.bind(py);
            let items = answer.call_method0("items").map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err("get_headers() must return a mapping of header names to values")
            })?;
            let mut headers = Vec::new();
            for item in items.try_iter()? {
                let (name, value): (String, String) = item?.extract().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err("get_headers() must map str header names to str values")
                })?;
                headers.push((name, Secret::new(value)));
            }
            Ok(headers)
        })
        .map_err(|error| from_python(&get_headers.location, error))
    }
}

#[async_trait]
impl TokenSource for PythonProvider {
    /// The provider's own `token()` (no arguments): a `str` (a bearer token without expiry, so
    /// `min_valid` cannot be checked) or a `TokenSet`.
    async fn token(&self, _min_valid: std::time::Duration) -> Result<TokenSet, Error> {
        let Some(token) = &self.token else { return Err(Error::configuration("this provider has no token()")) };
        let answer = token.call_async(no_args).await?;
        Python::attach(|py| -> PyResult<TokenSet> {
            let answer = answer.bind(py);
            if let Ok(tokens) = answer.extract::<PyRef<'_, crate::tokens::PyTokenSet>>() {
                return Ok(tokens.inner.clone());
            }
            match answer.extract::<String>() {
                Ok(text) if !text.trim().is_empty() => Ok(TokenSet::bearer(Secret::new(text), None, SystemClock.now())),
                Ok(_) => Err(pyo3::exceptions::PyValueError::new_err("token() returned an empty token")),
                Err(_) => {
                    Err(pyo3::exceptions::PyTypeError::new_err("token() must return a str or a tessera.TokenSet"))
                }
            }
        })
        .map_err(|error| from_python(&token.location, error))
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
    pub(crate) fn snapshot(&self) -> Registry {
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
