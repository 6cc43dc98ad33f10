//! Credentials and provider listings as Python values: `BasicCredential`, `OAuthCredential`,
//! `ProviderInfo`, and the conversions between Python objects, JSON and timestamps they share.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tessera::provider::{BasicCredential, Credential, OAuthCredential, ProviderStatus};
use tessera::{ProviderInfo, Secret, Timestamp};

use crate::errors::configuration;
use crate::time::{instant, to_datetime};

pub(crate) fn status_from(name: &str) -> PyResult<ProviderStatus> {
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

pub(crate) fn optional_instant(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Timestamp>> {
    value.filter(|value| !value.is_none()).map(instant).transpose()
}

pub(crate) fn optional_datetime<'py>(py: Python<'py>, at: Option<Timestamp>) -> PyResult<Option<Bound<'py, PyAny>>> {
    at.map(|at| to_datetime(py, at)).transpose()
}

pub(crate) fn json_to_python<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| configuration(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

pub(crate) fn python_to_json(value: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let text: String = value.py().import("json")?.call_method1("dumps", (value,))?.extract()?;
    serde_json::from_str(&text).map_err(|e| configuration(e.to_string()))
}

/// A username/password-style credential (HTTP Basic, an API key of a user). Holds no secret.
#[pyclass(name = "BasicCredential", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyBasicCredential {
    pub(crate) inner: BasicCredential,
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
    pub(crate) inner: OAuthCredential,
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

pub(crate) fn credential_to_python(py: Python<'_>, credential: Credential) -> PyResult<Bound<'_, PyAny>> {
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
    /// Why the status is `error`: the error's message, or for an exception raised by a Python
    /// provider or store, `"<Class>.<method> raised <ExceptionType>: <its message>"`.
    #[pyo3(get)]
    error: Option<String>,
}

impl PyProviderInfo {
    pub(crate) fn new(info: ProviderInfo) -> Self {
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
            // A Python provider's (or store's) own exception, as it was raised.
            error: info.error.map(|error| crate::errors::describe_python_error(&error).unwrap_or(error)),
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
