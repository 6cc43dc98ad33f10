//! API key management (`tessera.ApiKeys`, `tessera.SyncApiKeys`) over `tessera::api_keys`, and the
//! `tessera.ApiKey` grant that sends a key as a bearer token.
//!
//! The management client authenticates with a client's session (its token refreshes as usual)
//! or with a fixed access token. A key's secret is returned once, by `create`; nothing here keeps it.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tessera::api_keys::{AdminApiKeyFilter, AdminApiKeys, ApiKey, ApiKeyFilter, ApiKeyStatus, ApiKeys};
use tessera::provider::ApiKeyProvider;
use tessera::{Error, Grant, Secret, Timestamp};

use crate::errors::to_pyerr;
use crate::grants::PyGrant;
use crate::runtime::{block_on, spawn};
use crate::time::to_datetime;

/// One API key as the server describes it (never its secret).
#[pyclass(name = "ApiKey", module = "tessera._tessera", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyApiKey {
    inner: ApiKey,
}

fn optional_time<'py>(py: Python<'py>, time: Option<Timestamp>) -> PyResult<Option<Bound<'py, PyAny>>> {
    time.map(|time| to_datetime(py, time)).transpose()
}

#[pymethods]
impl PyApiKey {
    /// The server's id of the key.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }

    /// The name given at creation.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// A short, non-secret fingerprint of the secret (to match a key seen in a log with its record).
    #[getter]
    fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    /// `"ACTIVE"`, `"EXPIRED"` or `"REVOKED"`.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }

    /// When it was created (aware UTC datetime).
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, self.inner.created_at)
    }

    /// When it stops working (aware UTC datetime).
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, self.inner.expires_at)
    }

    /// When the server last accepted it, if ever.
    #[getter]
    fn last_used_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_time(py, self.inner.last_used_at)
    }

    /// The email of the user who created it.
    #[getter]
    fn created_by_email(&self) -> &str {
        &self.inner.created_by_email
    }

    fn __repr__(&self) -> String {
        format!(
            "ApiKey(id={}, name={}, fingerprint={}, status={}, created_by_email={})",
            crate::quote(&self.inner.id),
            crate::quote(&self.inner.name),
            crate::quote(&self.inner.fingerprint),
            crate::quote(self.inner.status.as_str()),
            crate::quote(&self.inner.created_by_email)
        )
    }
}

fn key(inner: ApiKey) -> PyApiKey {
    PyApiKey { inner }
}

fn keys(list: Vec<ApiKey>) -> Vec<PyApiKey> {
    list.into_iter().map(key).collect()
}

fn status(status: Option<&str>) -> PyResult<Option<ApiKeyStatus>> {
    status.map(|status| status.parse::<ApiKeyStatus>().map_err(|error| to_pyerr(&error))).transpose()
}

/// The management client behind both front ends, from a `Client`, a `SyncClient` or an access token.
fn management(credentials: &Bound<'_, PyAny>, base_url: String) -> PyResult<ApiKeys> {
    if let Some(session) = crate::client_session(credentials) {
        return Ok(ApiKeys::new(session, base_url));
    }
    if let Ok(token) = credentials.extract::<String>() {
        return Ok(ApiKeys::with_access_token(Secret::new(token), base_url));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "ApiKeys needs a tessera.Client, a tessera.SyncClient or an access token (str)",
    ))
}

/// A new key: the record and the secret (shown once: keep it now).
struct Created(ApiKey, Secret);

impl<'py> IntoPyObject<'py> for Created {
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        let record = Bound::new(py, key(self.0))?.into_any();
        let secret = pyo3::types::PyString::new(py, self.1.expose_secret()).into_any();
        PyTuple::new(py, [record, secret])
    }
}

/// Any Python int (a huge one too) checked against the API's bounds, with the Rust client's
/// `ConfigurationError`; anything else is a `TypeError`.
fn check_days(expires_in_days: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u32>> {
    let Some(expires_in_days) = expires_in_days.filter(|days| !days.is_none()) else { return Ok(None) };
    if !expires_in_days.is_instance_of::<pyo3::types::PyInt>()
        || expires_in_days.is_instance_of::<pyo3::types::PyBool>()
    {
        return Err(pyo3::exceptions::PyTypeError::new_err("expires_in_days must be an int"));
    }
    let days = match expires_in_days.extract::<i64>() {
        Ok(days) => days,
        // Beyond i64: out of bounds either way; the sign says which end.
        Err(_) if expires_in_days.gt(0)? => i64::MAX,
        Err(_) => i64::MIN,
    };
    tessera::api_keys::check_expires_in_days(days).map(Some).map_err(|error| to_pyerr(&error))
}

/// The caller's API keys, async: `keys = tessera.ApiKeys(client, issuer)`, then
/// `key, secret = await keys.create("ci")`.
#[pyclass(name = "ApiKeys", module = "tessera._tessera", frozen)]
pub struct PyApiKeys {
    api: ApiKeys,
}

#[pymethods]
impl PyApiKeys {
    /// `credentials`: a `Client` or `SyncClient` (its token, refreshed as needed) or an access
    /// token. `base_url`: the server root (requests go to `{base_url}/api/keys`).
    #[new]
    fn py_new(credentials: &Bound<'_, PyAny>, base_url: String) -> PyResult<Self> {
        Ok(PyApiKeys { api: management(credentials, base_url)? })
    }

    /// The server root requests go to.
    #[getter]
    fn base_url(&self) -> &str {
        self.api.base_url()
    }

    /// A `SyncApiKeys` with the same credentials.
    #[getter]
    fn sync(&self) -> PySyncApiKeys {
        PySyncApiKeys { api: self.api.clone() }
    }

    /// Awaitable: creates a key, returns `(ApiKey, secret)`. The secret is never shown again.
    ///
    /// - `name`: the key's name (required, not empty).
    /// - `expires_in_days`: its lifetime, an int from 1 to 365; default `90` (`None`: the same).
    ///
    /// A lifetime outside 1–365 raises `ConfigurationError` before anything is sent; a value
    /// that is not an int raises `TypeError`.
    #[pyo3(signature = (name, expires_in_days = None), text_signature = "($self, name, expires_in_days=90)")]
    fn create<'py>(
        &self,
        py: Python<'py>,
        name: String,
        expires_in_days: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let days = check_days(expires_in_days)?;
        let api = self.api.clone();
        spawn(py, async move { api.create(&name, days).await.map(|(record, secret)| Created(record, secret)) })
    }

    /// Awaitable: the caller's keys matching the filters, oldest first.
    #[pyo3(signature = (*, name = None, fingerprint = None, status = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        name: Option<String>,
        fingerprint: Option<String>,
        status: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = ApiKeyFilter { name, fingerprint, status: self::status(status)? };
        let api = self.api.clone();
        spawn(py, async move { api.list(&filter).await.map(keys) })
    }

    /// Awaitable: the caller's key `id`, or `None`.
    fn get<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        spawn(py, async move { api.get(&id).await.map(|found| found.map(key)) })
    }

    /// Awaitable: revokes key `id`, returns it (status `REVOKED`).
    fn revoke<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        spawn(py, async move { api.revoke(&id).await.map(key) })
    }

    /// Awaitable: revokes the caller's key whose secret this is (a leaked one), returns it.
    fn revoke_by_secret<'py>(&self, py: Python<'py>, secret: String) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        let secret = Secret::new(secret);
        spawn(py, async move { api.revoke_by_secret(&secret).await.map(key) })
    }

    /// Every user's keys (administrators only; others get `AuthenticationError` `access_denied`).
    fn admin(&self) -> PyAdminApiKeys {
        PyAdminApiKeys { admin: self.api.admin() }
    }

    fn __repr__(&self) -> String {
        format!("ApiKeys(base_url={})", crate::quote(self.api.base_url()))
    }
}

/// The caller's API keys, sync: the same methods as `ApiKeys`, without `await`.
#[pyclass(name = "SyncApiKeys", module = "tessera._tessera", frozen)]
pub struct PySyncApiKeys {
    api: ApiKeys,
}

#[pymethods]
impl PySyncApiKeys {
    /// See `ApiKeys`.
    #[new]
    fn py_new(credentials: &Bound<'_, PyAny>, base_url: String) -> PyResult<Self> {
        Ok(PySyncApiKeys { api: management(credentials, base_url)? })
    }

    /// The server root requests go to.
    #[getter]
    fn base_url(&self) -> &str {
        self.api.base_url()
    }

    /// Creates a key, returns `(ApiKey, secret)`. The secret is never shown again.
    ///
    /// - `name`: the key's name (required, not empty).
    /// - `expires_in_days`: its lifetime, an int from 1 to 365; default `90` (`None`: the same).
    ///
    /// A lifetime outside 1–365 raises `ConfigurationError` before anything is sent; a value
    /// that is not an int raises `TypeError`.
    #[pyo3(signature = (name, expires_in_days = None), text_signature = "($self, name, expires_in_days=90)")]
    fn create(
        &self,
        py: Python<'_>,
        name: String,
        expires_in_days: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(PyApiKey, String)> {
        let days = check_days(expires_in_days)?;
        let (record, secret) = block_on(py, self.api.create(&name, days))?;
        Ok((key(record), secret.expose_secret().to_owned()))
    }

    /// The caller's keys matching the filters, oldest first.
    #[pyo3(signature = (*, name = None, fingerprint = None, status = None))]
    fn list(
        &self,
        py: Python<'_>,
        name: Option<String>,
        fingerprint: Option<String>,
        status: Option<&str>,
    ) -> PyResult<Vec<PyApiKey>> {
        let filter = ApiKeyFilter { name, fingerprint, status: self::status(status)? };
        Ok(keys(block_on(py, self.api.list(&filter))?))
    }

    /// The caller's key `id`, or `None`.
    fn get(&self, py: Python<'_>, id: String) -> PyResult<Option<PyApiKey>> {
        Ok(block_on(py, self.api.get(&id))?.map(key))
    }

    /// Revokes key `id`, returns it (status `REVOKED`).
    fn revoke(&self, py: Python<'_>, id: String) -> PyResult<PyApiKey> {
        Ok(key(block_on(py, self.api.revoke(&id))?))
    }

    /// Revokes the caller's key whose secret this is, returns it.
    fn revoke_by_secret(&self, py: Python<'_>, secret: String) -> PyResult<PyApiKey> {
        let secret = Secret::new(secret);
        Ok(key(block_on(py, self.api.revoke_by_secret(&secret))?))
    }

    /// Every user's keys (administrators only).
    fn admin(&self) -> PySyncAdminApiKeys {
        PySyncAdminApiKeys { admin: self.api.admin() }
    }

    fn __repr__(&self) -> String {
        format!("SyncApiKeys(base_url={})", crate::quote(self.api.base_url()))
    }
}

/// Every user's API keys, async (administrators only).
#[pyclass(name = "AdminApiKeys", module = "tessera._tessera", frozen)]
pub struct PyAdminApiKeys {
    admin: AdminApiKeys,
}

#[pymethods]
impl PyAdminApiKeys {
    /// Awaitable: keys of every user matching the filters.
    #[pyo3(signature = (*, email = None, key_name = None, status = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        email: Option<String>,
        key_name: Option<String>,
        status: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = AdminApiKeyFilter { email, key_name, status: self::status(status)? };
        let admin = self.admin.clone();
        spawn(py, async move { admin.list(&filter).await.map(keys) })
    }

    /// Awaitable: any user's key `id`, or `None`.
    fn get<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let admin = self.admin.clone();
        spawn(py, async move { admin.get(&id).await.map(|found| found.map(key)) })
    }

    /// Awaitable: revokes any user's key `id`, returns it.
    fn revoke<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let admin = self.admin.clone();
        spawn(py, async move { admin.revoke(&id).await.map(key) })
    }

    fn __repr__(&self) -> &'static str {
        "AdminApiKeys()"
    }
}

/// Every user's API keys, sync (administrators only).
#[pyclass(name = "SyncAdminApiKeys", module = "tessera._tessera", frozen)]
pub struct PySyncAdminApiKeys {
    admin: AdminApiKeys,
}

#[pymethods]
impl PySyncAdminApiKeys {
    /// Keys of every user matching the filters.
    #[pyo3(signature = (*, email = None, key_name = None, status = None))]
    fn list(
        &self,
        py: Python<'_>,
        email: Option<String>,
        key_name: Option<String>,
        status: Option<&str>,
    ) -> PyResult<Vec<PyApiKey>> {
        let filter = AdminApiKeyFilter { email, key_name, status: self::status(status)? };
        Ok(keys(block_on(py, self.admin.list(&filter))?))
    }

    /// Any user's key `id`, or `None`.
    fn get(&self, py: Python<'_>, id: String) -> PyResult<Option<PyApiKey>> {
        Ok(block_on(py, self.admin.get(&id))?.map(key))
    }

    /// Revokes any user's key `id`, returns it.
    fn revoke(&self, py: Python<'_>, id: String) -> PyResult<PyApiKey> {
        Ok(key(block_on(py, self.admin.revoke(&id))?))
    }

    fn __repr__(&self) -> &'static str {
        "SyncAdminApiKeys()"
    }
}

/// An API key sent as `Authorization: Bearer <key>`: nothing to refresh, nothing sent to log in.
/// `key`: given, else read from the environment variable `env` (default `TESSERA_API_KEY`);
/// surrounding whitespace is ignored and the key must start with `prefix` (default `qk_`).
/// Use it as a client's grant: `tessera.SyncClient(grant=tessera.ApiKeyGrant())` (no issuer or
/// client id needed). A missing key is `ReauthenticationRequired`, a wrong prefix `ConfigurationError`.
#[pyclass(name = "ApiKeyGrant", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyApiKeyGrant;

#[pymethods]
impl PyApiKeyGrant {
    #[new]
    #[pyo3(signature = (key = None, *, env = "TESSERA_API_KEY", prefix = "qk_"))]
    fn py_new(key: Option<String>, env: &str, prefix: &str) -> PyResult<PyClassInitializer<Self>> {
        let provider = match key {
            Some(key) => ApiKeyProvider::new("api_key", Secret::new(key)),
            None => ApiKeyProvider::from_reference("api_key", format!("env:{env}")),
        }
        .with_prefix(prefix);
        let key = provider.key().map_err(|error: Error| to_pyerr(&error))?;
        let grant = Grant::Static { access_token: key, expires_at: None };
        Ok(PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyApiKeyGrant))
    }
}
