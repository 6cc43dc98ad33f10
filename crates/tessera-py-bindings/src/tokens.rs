//! `TokenSet`: the tokens one grant produced. Its `repr` never shows a token.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tessera::clock::system_now;
use tessera::{Secret, Timestamp, TokenSet};

use crate::errors::configuration;
use crate::time::{Seconds, instant, to_datetime};

/// The tokens one grant produced, with absolute expiry instants.
#[pyclass(name = "TokenSet", module = "tessera._tessera", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyTokenSet {
    pub(crate) inner: TokenSet,
}

impl PyTokenSet {
    pub(crate) fn new(inner: TokenSet) -> Self {
        PyTokenSet { inner }
    }
}

fn optional_instant(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Timestamp>> {
    value.filter(|value| !value.is_none()).map(instant).transpose()
}

fn optional_datetime<'py>(py: Python<'py>, timestamp: Option<Timestamp>) -> PyResult<Option<Bound<'py, PyAny>>> {
    timestamp.map(|timestamp| to_datetime(py, timestamp)).transpose()
}

#[pymethods]
impl PyTokenSet {
    #[new]
    #[pyo3(signature = (access_token, *, token_type = "Bearer", expires_at = None, expires_in = None,
        refresh_token = None, refresh_expires_at = None, id_token = None, scope = None, issued_at = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        access_token: String,
        token_type: &str,
        expires_at: Option<&Bound<'_, PyAny>>,
        expires_in: Option<Seconds<'_>>,
        refresh_token: Option<String>,
        refresh_expires_at: Option<&Bound<'_, PyAny>>,
        id_token: Option<String>,
        scope: Option<String>,
        issued_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let issued_at = optional_instant(issued_at)?.unwrap_or_else(system_now);
        let expires_at = match (optional_instant(expires_at)?, expires_in) {
            (Some(_), Some(_)) => return Err(configuration("give expires_at or expires_in, not both")),
            (Some(at), None) => Some(at),
            (None, Some(expires_in)) => Some(issued_at + expires_in.duration()?),
            (None, None) => None,
        };
        Ok(PyTokenSet::new(TokenSet {
            access_token: Secret::new(access_token),
            token_type: token_type.to_owned(),
            expires_at,
            refresh_token: refresh_token.map(Secret::new),
            refresh_expires_at: optional_instant(refresh_expires_at)?,
            id_token: id_token.map(Secret::new),
            scope,
            issued_at,
            dpop_key: None,
            resource_tokens: Default::default(),
            registered_client: None,
        }))
    }

    /// The access token (a secret: never log it).
    #[getter]
    fn access_token<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.inner.access_token.expose_secret())
    }

    /// Usually `Bearer`.
    #[getter]
    fn token_type(&self) -> &str {
        &self.inner.token_type
    }

    /// When the access token expires (aware UTC datetime), when known.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.expires_at)
    }

    /// `expires_at` in milliseconds since the Unix epoch.
    #[getter]
    fn expires_at_ms(&self) -> Option<i64> {
        self.inner.expires_at.map(Timestamp::as_unix_millis)
    }

    /// The refresh token (a secret), when one was issued.
    #[getter]
    fn refresh_token(&self) -> Option<&str> {
        self.inner.refresh_token.as_ref().map(Secret::expose_secret)
    }

    /// When the refresh token expires, when known.
    #[getter]
    fn refresh_expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.refresh_expires_at)
    }

    /// The OpenID Connect ID token (a secret), when one was issued.
    #[getter]
    fn id_token(&self) -> Option<&str> {
        self.inner.id_token.as_ref().map(Secret::expose_secret)
    }

    /// The granted scope, when the server said.
    #[getter]
    fn scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// When this set was received (aware UTC datetime).
    #[getter]
    fn issued_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, self.inner.issued_at)
    }

    /// `issued_at` in milliseconds since the Unix epoch.
    #[getter]
    fn issued_at_ms(&self) -> i64 {
        self.inner.issued_at.as_unix_millis()
    }

    /// True when the access token is still valid `skew` (seconds or timedelta) from now.
    #[pyo3(signature = (skew = Seconds::ZERO))]
    fn access_valid(&self, skew: Seconds<'_>) -> PyResult<bool> {
        Ok(self.inner.access_valid(system_now(), skew.duration()?))
    }

    /// True when a refresh token exists and is still valid `skew` from now.
    #[pyo3(signature = (skew = Seconds::ZERO))]
    fn refresh_valid(&self, skew: Seconds<'_>) -> PyResult<bool> {
        Ok(self.inner.refresh_valid(system_now(), skew.duration()?))
    }

    /// True when the access token is past its expiry.
    fn is_expired(&self) -> bool {
        self.inner.is_expired(system_now())
    }

    /// True when the access token expires within `threshold` (seconds or timedelta), or has.
    fn is_near_expiry(&self, threshold: Seconds<'_>) -> PyResult<bool> {
        Ok(self.inner.is_near_expiry(system_now(), threshold.duration()?))
    }

    /// The set as JSON, tokens in clear (what a store writes: keep it as secret as the tokens).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner).map_err(|_| configuration("a token set failed to serialize"))
    }

    /// Reads what `to_json` wrote.
    #[staticmethod]
    fn from_json(data: &str) -> PyResult<Self> {
        parse(data).map(PyTokenSet::new)
    }

    fn __repr__(&self) -> String {
        let redacted = |present: bool| if present { "<redacted>" } else { "None" };
        format!(
            "TokenSet(token_type={}, expires_at_ms={}, scope={}, access_token=<redacted>, refresh_token={}, id_token={})",
            crate::quote(&self.inner.token_type),
            self.inner.expires_at.map_or_else(|| "None".to_owned(), |t| t.as_unix_millis().to_string()),
            crate::quote_opt(self.inner.scope.as_deref()),
            redacted(self.inner.refresh_token.is_some()),
            redacted(self.inner.id_token.is_some()),
        )
    }

    fn __str__(&self) -> String {
        self.__repr__()
    }
}

/// A token set from JSON; the error never repeats the input.
pub(crate) fn parse(data: &str) -> PyResult<TokenSet> {
    serde_json::from_str(data)
        .map_err(|error| configuration(format!("not a token set (line {}, column {})", error.line(), error.column())))
}
