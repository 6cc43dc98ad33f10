//! Providers as Python values: grants, client authentication, endpoints, provider configuration.

use pyo3::prelude::*;
use tessera::browser::LoopbackSettings;
use tessera::core::flow::{CognitoAuthFlow, DEFAULT_MAX_CODE_ATTEMPTS};
use tessera::{ClientAuth, ClientAuthMethod, Endpoints, Grant, ProviderConfig, Secret, TotpSource};

use crate::errors::configuration;
use crate::time::{Seconds, instant};

/// How a client logs in: `Password`, `ClientCredentials`, `RefreshToken`, `StaticToken`,
/// `JwtBearer`, ...
#[pyclass(name = "Grant", module = "tessera._tessera", subclass, frozen)]
pub struct PyGrant {
    pub(crate) inner: Grant,
    /// Where a browser login's loopback receiver listens (`Browser` only).
    pub(crate) loopback: Option<LoopbackSettings>,
    /// What a credential file says about the client (`JwtBearer(service_account_key=...)`,
    /// `WorkloadIdentity(external_account=...)`).
    pub(crate) credential_file: Option<CredentialFile>,
}

/// The client and token endpoint a grant's credential file holds (a Google service-account key's
/// `client_email` and `token_uri`; an `external_account` file's `client_id`, `client_secret` and
/// `token_url`): a client built with the grant takes them, as a TOML section does.
#[derive(Clone)]
pub(crate) struct CredentialFile {
    /// The grant's field that named the file: `service_account_key` or `external_account`.
    pub(crate) field: &'static str,
    /// The client id the file names. A service-account key's `client_email` is the assertion's
    /// `iss`: another client id is refused. An `external_account` file's is a default.
    pub(crate) client_id: Option<String>,
    /// `client_secret` of an `external_account` file, when it has one.
    pub(crate) client_secret: Option<Secret>,
    /// The token endpoint, when the file has one.
    pub(crate) token_endpoint: Option<String>,
}

impl CredentialFile {
    /// True when the file's client id is the only one allowed (a service-account key).
    pub(crate) fn fixes_client_id(&self) -> bool {
        self.field == "service_account_key"
    }
}

/// Reads a credential file named by a keyword (`file:PATH`, `env:NAME`, or the JSON itself) now,
/// as the TOML front end reads it: errors name the keyword and the path or variable, never the
/// contents.
fn read_reference(field: &str, value: &str, place: &str) -> PyResult<Secret> {
    tessera::config::resolve_reference(value).map_err(|problem| {
        crate::errors::to_pyerr(&tessera::core::provider_spec::FieldError::new(field, problem).at(place))
    })
}

impl PyGrant {
    /// A grant without loopback settings.
    pub(crate) fn of(inner: Grant) -> Self {
        PyGrant { inner, loopback: None, credential_file: None }
    }
}

#[pymethods]
impl PyGrant {
    /// The grant's configuration name (`password`, `client_credentials`, ...).
    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// True when logging in needs nobody (the session may log in again by itself).
    #[getter]
    fn unattended(&self) -> bool {
        self.inner.logs_in_unattended()
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            Grant::Password { username, totp, .. } => {
                let totp = match totp {
                    None => "",
                    Some(TotpSource::Code(_)) => ", totp=<redacted>",
                    Some(TotpSource::Secret(_)) => ", totp_secret=<redacted>",
                };
                format!("Password(username={}, password=<redacted>{totp})", crate::quote(username))
            }
            Grant::ClientCredentials => "ClientCredentials()".to_owned(),
            Grant::RefreshToken { .. } => "RefreshToken(refresh_token=<redacted>)".to_owned(),
            Grant::Static { expires_at, .. } => format!(
                "StaticToken(access_token=<redacted>, expires_at_ms={})",
                expires_at.map_or_else(|| "None".to_owned(), |t| t.as_unix_millis().to_string())
            ),
            Grant::DeviceCode { device_authorization_endpoint } => format!(
                "DeviceCode(device_authorization_endpoint={})",
                crate::quote_opt(device_authorization_endpoint.as_deref())
            ),
            Grant::Browser { authorization_endpoint, redirect_uri, authorization_params } => format!(
                "Browser(authorization_endpoint={}, redirect_uri={}, authorization_params={:?})",
                crate::quote_opt(authorization_endpoint.as_deref()),
                crate::quote_opt(redirect_uri.as_deref()),
                authorization_params
            ),
            Grant::EmailOtp { email, max_code_attempts, .. } => {
                format!("EmailOtp(email={}, max_code_attempts={max_code_attempts})", crate::quote(email))
            }
            Grant::Cognito { endpoint_url, username, auth_flow, max_code_attempts, .. } => format!(
                "Cognito(endpoint_url={}, username={}, auth_flow={}, max_code_attempts={max_code_attempts})",
                crate::quote(endpoint_url),
                crate::quote(username),
                crate::quote(auth_flow_name(*auth_flow))
            ),
            Grant::JwtBearer { key, subject, audience, scope_in_assertion, lifetime } => format!(
                "JwtBearer(assertion_key=<redacted>, assertion_alg={}, assertion_kid={}, subject={}, audience={}, \
                 assertion_lifetime={}, scope_in_assertion={})",
                crate::quote_opt(key.alg.as_deref()),
                crate::quote_opt(key.kid.as_deref()),
                crate::quote_opt(subject.as_deref()),
                crate::quote_opt(audience.as_deref()),
                lifetime.as_secs(),
                if *scope_in_assertion { "True" } else { "False" }
            ),
            Grant::WorkloadIdentity { source, subject_token_type, exchange } => format!(
                "WorkloadIdentity(subject_token={}, subject_token_type={}, exchange={})",
                crate::quote(&source.describe()),
                crate::quote(subject_token_type),
                crate::quote(exchange.name())
            ),
            #[allow(unreachable_patterns, reason = "Grant may grow")]
            _ => format!("Grant({})", crate::quote(self.inner.name())),
        }
    }
}

/// Resource owner password credentials (RFC 6749 §4.3), with an optional TOTP second factor:
/// `totp` (a code typed once) or `totp_secret` (base32; a fresh code per login, unattended).
#[pyclass(name = "Password", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyPassword;

#[pymethods]
impl PyPassword {
    #[new]
    #[pyo3(signature = (username, password, *, totp = None, totp_secret = None))]
    fn py_new(
        username: String,
        password: String,
        totp: Option<String>,
        totp_secret: Option<String>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let totp = match (totp, totp_secret) {
            (Some(_), Some(_)) => return Err(configuration("give totp (a code) or totp_secret, not both")),
            (Some(code), None) => Some(TotpSource::Code(Secret::new(code))),
            (None, Some(secret)) => Some(TotpSource::Secret(Secret::new(secret))),
            (None, None) => None,
        };
        let grant = Grant::Password { username, password: Secret::new(password), totp };
        Ok(PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyPassword))
    }

    /// The username.
    #[getter]
    fn username(slf: PyRef<'_, Self>) -> String {
        match &slf.as_super().inner {
            Grant::Password { username, .. } => username.clone(),
            _ => String::new(),
        }
    }
}

/// Client credentials (RFC 6749 §4.4): the client's own identity; a new request on expiry.
#[pyclass(name = "ClientCredentials", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyClientCredentials;

#[pymethods]
impl PyClientCredentials {
    #[new]
    fn py_new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyGrant::of(Grant::ClientCredentials)).add_subclass(PyClientCredentials)
    }
}

/// Start from a refresh token obtained elsewhere (RFC 6749 §6).
#[pyclass(name = "RefreshToken", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyRefreshToken;

#[pymethods]
impl PyRefreshToken {
    #[new]
    fn py_new(refresh_token: String) -> PyClassInitializer<Self> {
        let grant = Grant::RefreshToken { refresh_token: Secret::new(refresh_token) };
        PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyRefreshToken)
    }
}

/// Device authorization (RFC 8628): a person approves the login on another device. Interactive:
/// only `login()` (or the refresh policy's `REAUTHENTICATE`) starts it, and the client needs a
/// `prompter=` to show the code. `device_authorization_endpoint`: default from OIDC discovery
/// (`device_authorization_url` is its deprecated old name).
#[pyclass(name = "DeviceCode", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyDeviceCode;

#[pymethods]
impl PyDeviceCode {
    #[new]
    #[pyo3(signature = (device_authorization_endpoint = None, *, device_authorization_url = None))]
    fn py_new(
        py: Python<'_>,
        device_authorization_endpoint: Option<String>,
        device_authorization_url: Option<String>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let device_authorization_endpoint = crate::renamed(
            py,
            ("device_authorization_endpoint", device_authorization_endpoint),
            ("device_authorization_url", device_authorization_url),
        )?;
        let grant = Grant::DeviceCode { device_authorization_endpoint };
        Ok(PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyDeviceCode))
    }

    /// The device authorization endpoint, when given (else discovered).
    #[getter]
    fn device_authorization_endpoint(slf: PyRef<'_, Self>) -> Option<String> {
        Self::device_authorization_url(slf)
    }

    /// Deprecated name of `device_authorization_endpoint`.
    #[getter]
    fn device_authorization_url(slf: PyRef<'_, Self>) -> Option<String> {
        match &slf.as_super().inner {
            Grant::DeviceCode { device_authorization_endpoint } => device_authorization_endpoint.clone(),
            _ => None,
        }
    }
}

/// A token given by the caller (tests, `--with-token`); nothing can renew it.
/// `expires_at`: Unix seconds or a datetime.
#[pyclass(name = "StaticToken", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyStaticToken;

#[pymethods]
impl PyStaticToken {
    #[new]
    #[pyo3(signature = (access_token, *, expires_at = None))]
    fn py_new(access_token: String, expires_at: Option<&Bound<'_, PyAny>>) -> PyResult<PyClassInitializer<Self>> {
        let expires_at = expires_at.filter(|value| !value.is_none()).map(instant).transpose()?;
        let grant = Grant::Static { access_token: Secret::new(access_token), expires_at };
        Ok(PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyStaticToken))
    }
}

/// Browser login: authorization code with PKCE (RFC 6749 §4.1, RFC 7636, RFC 8252). Interactive:
/// only `login()` starts it, and the client needs a `prompter=` that opens the `BrowserPrompt`'s
/// URL. Without `redirect_uri`, a loopback receiver on 127.0.0.1 (`redirect_port`,
/// `redirect_path`) waits up to `login_timeout` seconds for the browser to come back; with one
/// (paste mode), the prompter returns the URL the browser ended on. `authorization_params` adds
/// authorization request parameters. (`authorization_url`, `extra_params`, `port`,
/// `callback_path` and `timeout` are the deprecated old names.)
#[pyclass(name = "Browser", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyBrowser;

#[pymethods]
impl PyBrowser {
    #[new]
    #[pyo3(signature = (authorization_endpoint = None, redirect_uri = None, authorization_params = None, *,
        redirect_port = 0, redirect_path = "/callback", login_timeout = Seconds::Number(300.0),
        authorization_url = None, extra_params = None, port = None, callback_path = None, timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        authorization_endpoint: Option<String>,
        redirect_uri: Option<String>,
        authorization_params: Option<&Bound<'_, PyAny>>,
        redirect_port: u16,
        redirect_path: &str,
        login_timeout: Seconds<'_>,
        authorization_url: Option<String>,
        extra_params: Option<&Bound<'_, PyAny>>,
        port: Option<u16>,
        callback_path: Option<&str>,
        timeout: Option<Seconds<'_>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let authorization_url = crate::renamed(
            py,
            ("authorization_endpoint", authorization_endpoint),
            ("authorization_url", authorization_url),
        )?;
        let extra_params = crate::renamed(
            py,
            ("authorization_params", authorization_params.filter(|params| !params.is_none())),
            ("extra_params", extra_params.filter(|params| !params.is_none())),
        )?;
        // Keywords with a default: the old spelling counts when the new one was left at its default
        // (both given with different values is an error).
        let login_timeout = login_timeout.duration()?;
        let port =
            crate::renamed(py, ("redirect_port", (redirect_port != 0).then_some(redirect_port)), ("port", port))?
                .unwrap_or(redirect_port);
        let callback_path = crate::renamed(
            py,
            ("redirect_path", (redirect_path != "/callback").then_some(redirect_path)),
            ("callback_path", callback_path),
        )?
        .unwrap_or(redirect_path);
        let timeout = match crate::renamed(
            py,
            ("login_timeout", (login_timeout != std::time::Duration::from_secs(300)).then_some(login_timeout)),
            ("timeout", timeout.map(|timeout| timeout.duration()).transpose()?),
        )? {
            Some(timeout) => timeout,
            None => login_timeout,
        };
        let extra_params = match extra_params {
            None => Vec::new(),
            Some(params) => {
                let items = if params.hasattr("items")? { params.call_method0("items")? } else { params.clone() };
                let mut pairs = Vec::new();
                for item in items.try_iter()? {
                    let pair: (String, String) = item?.extract().map_err(|_| {
                        configuration("authorization_params must be a mapping or a sequence of (name, value) strings")
                    })?;
                    pairs.push(pair);
                }
                pairs
            }
        };
        if !callback_path.starts_with('/') {
            return Err(configuration("redirect_path must start with '/' (callback_path is its old name)"));
        }
        if timeout.is_zero() {
            return Err(configuration("login_timeout must be positive"));
        }
        let grant = Grant::Browser {
            authorization_endpoint: authorization_url,
            redirect_uri,
            authorization_params: extra_params,
        };
        let loopback = LoopbackSettings { port, path: callback_path.to_owned(), timeout };
        Ok(PyClassInitializer::from(PyGrant { inner: grant, loopback: Some(loopback), credential_file: None })
            .add_subclass(PyBrowser))
    }

    /// The authorization endpoint, when given (else discovered).
    #[getter]
    fn authorization_endpoint(slf: PyRef<'_, Self>) -> Option<String> {
        Self::authorization_url(slf)
    }

    /// Deprecated name of `authorization_endpoint`.
    #[getter]
    fn authorization_url(slf: PyRef<'_, Self>) -> Option<String> {
        match &slf.as_super().inner {
            Grant::Browser { authorization_endpoint, .. } => authorization_endpoint.clone(),
            _ => None,
        }
    }

    /// The fixed redirect URI (paste mode), or `None` for a loopback receiver.
    #[getter]
    fn redirect_uri(slf: PyRef<'_, Self>) -> Option<String> {
        match &slf.as_super().inner {
            Grant::Browser { redirect_uri, .. } => redirect_uri.clone(),
            _ => None,
        }
    }
}

/// Workload identity federation: the workload's platform token (a Kubernetes projected
/// service-account token, GitHub Actions' OIDC token, what a command prints) is read at every login
/// and traded for an access token, by RFC 8693 token exchange or as the client assertion of the
/// client credentials grant (Azure workload identity). Unattended: no refresh token; on expiry the
/// source is read again and exchanged again. See docs/workload-identity.md.
///
/// ``WorkloadIdentity(subject_token=None, *, external_account=None,
/// subject_token_type="urn:ietf:params:oauth:token-type:jwt", subject_token_headers=None,
/// subject_token_field=None, subject_token_timeout=30, subject_token_audience=None,
/// exchange="token_exchange", audience=None, resource=None, requested_token_type=None)`` — the
/// names of the TOML fields:
///
/// - ``subject_token=None``: where the token is read: ``"file:PATH"``, ``"env:NAME"``,
///   ``"url:URL"``, ``"exec:COMMAND"`` (run by ``sh -c``; its stdout) or ``"github-actions"``.
///   Required unless ``external_account``.
/// - ``external_account=None``: a Google ``external_account`` credential file (google-auth's
///   identity-pool credentials): the JSON itself, or a reference (``"file:PATH"``, ``"env:NAME"``)
///   read now. Its ``credential_source`` is the subject token, its ``audience`` and
///   ``subject_token_type`` are used, its ``token_url`` is the token endpoint and its ``client_id``
///   / ``client_secret`` the client, for a client that does not give its own. Instead of the other
///   keywords.
/// - ``subject_token_type``: the RFC 8693 ``subject_token_type``.
/// - ``subject_token_headers=None`` (``url:`` only): a dict of request headers; a value
///   ``"env:NAME"`` is read from the environment.
/// - ``subject_token_field=None`` (``url:`` only): the JSON field holding the token; ``None``: the
///   whole body.
/// - ``subject_token_timeout=30`` (``exec:`` only): seconds (or a ``timedelta``) the command may run.
/// - ``subject_token_audience=None`` (``github-actions`` only): the ``aud`` asked of GitHub;
///   ``None``: ``audience``.
/// - ``exchange="token_exchange"``: or ``"client_assertion"``.
/// - ``audience=None``, ``resource=None``, ``requested_token_type=None``: the token exchange's
///   parameters (``token_exchange`` only).
///
/// Checked here by the rules every front end applies (a ``ConfigurationError`` names the field);
/// nothing but ``external_account`` is read until the first login.
#[pyclass(name = "WorkloadIdentity", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyWorkloadIdentity;

#[pymethods]
impl PyWorkloadIdentity {
    #[new]
    #[pyo3(signature = (subject_token = None, *, external_account = None, subject_token_type = None,
        subject_token_headers = None, subject_token_field = None, subject_token_timeout = None,
        subject_token_audience = None, exchange = None, audience = None, resource = None,
        requested_token_type = None),
        text_signature = "(subject_token=None, *, external_account=None, \
            subject_token_type='urn:ietf:params:oauth:token-type:jwt', subject_token_headers=None, \
            subject_token_field=None, subject_token_timeout=30, subject_token_audience=None, \
            exchange='token_exchange', audience=None, resource=None, requested_token_type=None)")]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        subject_token: Option<String>,
        external_account: Option<String>,
        subject_token_type: Option<String>,
        subject_token_headers: Option<std::collections::BTreeMap<String, String>>,
        subject_token_field: Option<String>,
        subject_token_timeout: Option<Seconds<'_>>,
        subject_token_audience: Option<String>,
        exchange: Option<String>,
        audience: Option<String>,
        resource: Option<String>,
        requested_token_type: Option<String>,
    ) -> PyResult<PyClassInitializer<Self>> {
        use serde_json::{Map, Value};
        const PLACE: &str = "WorkloadIdentity";
        let external_account =
            external_account.map(|value| read_reference("external_account", &value, PLACE)).transpose()?;
        let mut spec = Map::new();
        let mut put = |field: &str, value: Value| {
            spec.insert(field.to_owned(), value);
        };
        put("type", Value::from("workload_identity"));
        // The client and the endpoint are stand-ins: the client that takes the grant gives them
        // (or the external_account file does).
        if external_account.is_none() {
            put("token_endpoint", Value::from("https://token-endpoint.invalid/token"));
            put("client_id", Value::from("client"));
        }
        if let Some(account) = &external_account {
            put("external_account", Value::from(account.expose_secret()));
        }
        if let Some(subject_token) = subject_token {
            put("subject_token", Value::from(subject_token));
        }
        if let Some(timeout) = subject_token_timeout {
            let timeout = timeout.duration()?;
            if timeout.is_zero() || timeout.subsec_nanos() != 0 {
                return Err(configuration(
                    "WorkloadIdentity, field \"subject_token_timeout\": must be a positive whole number of seconds",
                ));
            }
            put("subject_token_timeout", Value::from(timeout.as_secs()));
        }
        if let Some(headers) = subject_token_headers {
            put(
                "subject_token_headers",
                Value::Object(headers.into_iter().map(|(name, value)| (name, Value::from(value))).collect()),
            );
        }
        for (field, value) in [
            ("subject_token_type", subject_token_type),
            ("subject_token_field", subject_token_field),
            ("subject_token_audience", subject_token_audience),
            ("exchange", exchange),
            ("audience", audience),
            ("resource", resource),
            ("requested_token_type", requested_token_type),
        ] {
            if let Some(value) = value {
                put(field, Value::from(value));
            }
        }
        let field_error = |error: tessera::core::provider_spec::FieldError| crate::errors::to_pyerr(&error.at(PLACE));
        let parsed =
            tessera::core::provider_spec::ProviderSpec::from_value(Value::Object(spec)).map_err(field_error)?;
        let config = parsed.spec.into_config(&mut |_, value| Ok(value.clone())).map_err(field_error)?;
        // What the file says about the client, as the description read it.
        let credential_file = external_account.map(|_| CredentialFile {
            field: "external_account",
            client_id: Some(config.client.client_id.clone()).filter(|id| !id.is_empty()),
            client_secret: config.client.client_secret.clone(),
            token_endpoint: match &config.endpoints {
                tessera::Endpoints::Explicit { token_endpoint, .. } => Some(token_endpoint.clone()),
                tessera::Endpoints::Discover { .. } => None,
            },
        });
        let grant = PyGrant { inner: config.grant, loopback: None, credential_file };
        Ok(PyClassInitializer::from(grant).add_subclass(PyWorkloadIdentity))
    }
}

/// The JWT bearer grant (RFC 7523 §2.1): the client signs a short JWT with its private key and
/// presents it as the grant; a service account (Google, Okta, Keycloak, Salesforce). Unattended:
/// a new assertion is signed whenever a token is needed. See docs/service-accounts.md.
///
/// ``JwtBearer(assertion_key=None, *, service_account_key=None, assertion_alg=None,
/// assertion_kid=None, subject=None, audience=None, assertion_lifetime=3600,
/// scope_in_assertion=None)`` — the names of the TOML fields:
///
/// - ``assertion_key=None``: the private key's text (not a path), as ``client_assertion_key``
///   takes it: a PKCS#8 PEM of an RSA (≥ 2048 bits), EC P-256 or Ed25519 key, an RSA PKCS#1 or
///   EC P-256 SEC1 PEM, or a JWK with ``d``. Required unless ``service_account_key``. The
///   client's ``client_id`` is the assertion's ``iss``.
/// - ``service_account_key=None``: a Google service-account JSON key: the JSON itself, or a
///   reference ``"file:PATH"`` / ``"env:NAME"`` / ``"keyring:service/account"`` (read here).
///   Its ``client_email`` is the client's ``client_id`` (give no ``client_id``), ``private_key``
///   the key, ``private_key_id`` the ``kid``, and ``token_uri`` the token endpoint unless the
///   client gives ``issuer`` or ``token_endpoint``.
/// - ``assertion_alg=None``: from the key: ``RS256`` (RSA), ``ES256`` (EC P-256), ``EdDSA``
///   (Ed25519); or ``PS256``, ``RS384``, ... for RSA keys.
/// - ``assertion_kid=None``: the JWK's ``kid`` (with ``service_account_key``: its
///   ``private_key_id``), else no ``kid`` header.
/// - ``subject=None``: the assertion's ``sub`` (``None``: the client id); a user, for Google
///   domain-wide delegation.
/// - ``audience=None``: the assertion's ``aud`` (``None``: the token endpoint).
/// - ``assertion_lifetime=3600``: seconds (or a ``timedelta``) from ``iat`` to ``exp``.
/// - ``scope_in_assertion=None``: send the scope as a claim of the assertion instead of a form
///   field (``None``: ``True`` with ``service_account_key``, else ``False``).
///
/// The key (and the key file) is checked here by signing once: a ``ConfigurationError`` names the
/// field and the JSON member, never a value. ``repr`` never shows the key.
#[pyclass(name = "JwtBearer", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyJwtBearer;

#[pymethods]
impl PyJwtBearer {
    #[new]
    #[pyo3(signature = (assertion_key = None, *, service_account_key = None, assertion_alg = None,
        assertion_kid = None, subject = None, audience = None, assertion_lifetime = Seconds::Number(3600.0),
        scope_in_assertion = None),
        text_signature = "(assertion_key=None, *, service_account_key=None, assertion_alg=None, \
            assertion_kid=None, subject=None, audience=None, assertion_lifetime=3600, scope_in_assertion=None)")]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        assertion_key: Option<String>,
        service_account_key: Option<String>,
        assertion_alg: Option<String>,
        assertion_kid: Option<String>,
        subject: Option<String>,
        audience: Option<String>,
        assertion_lifetime: Seconds<'_>,
        scope_in_assertion: Option<bool>,
    ) -> PyResult<PyClassInitializer<Self>> {
        use serde_json::{Map, Value};
        const PLACE: &str = "JwtBearer";
        let lifetime = assertion_lifetime.duration()?;
        if lifetime.is_zero() || lifetime.subsec_nanos() != 0 {
            return Err(configuration(
                "JwtBearer, field \"assertion_lifetime\": must be a positive whole number of seconds",
            ));
        }
        let service_account_key =
            service_account_key.map(|value| read_reference("service_account_key", &value, PLACE)).transpose()?;
        // One description, checked by the rules every front end applies (the same errors as TOML).
        // The client and the endpoint are stand-ins: the client that takes the grant gives them.
        let mut spec = Map::new();
        let mut put = |field: &str, value: Value| {
            spec.insert(field.to_owned(), value);
        };
        put("type", Value::from("jwt_bearer"));
        put("token_endpoint", Value::from("https://token-endpoint.invalid/token"));
        if service_account_key.is_none() {
            put("client_id", Value::from("client"));
        }
        for (field, value) in [
            ("assertion_key", assertion_key),
            ("service_account_key", service_account_key.as_ref().map(|key| key.expose_secret().to_owned())),
            ("assertion_alg", assertion_alg),
            ("assertion_kid", assertion_kid),
            ("subject", subject),
            ("audience", audience),
        ] {
            if let Some(value) = value {
                put(field, Value::from(value));
            }
        }
        put("assertion_lifetime", Value::from(lifetime.as_secs()));
        if let Some(scope_in_assertion) = scope_in_assertion {
            put("scope_in_assertion", Value::from(scope_in_assertion));
        }
        let field_error = |error: tessera::core::provider_spec::FieldError| crate::errors::to_pyerr(&error.at(PLACE));
        let parsed =
            tessera::core::provider_spec::ProviderSpec::from_value(Value::Object(spec)).map_err(field_error)?;
        let config = parsed.spec.into_config(&mut |_, value| Ok(value.clone())).map_err(field_error)?;
        let credential_file = service_account_key.map(|key| CredentialFile {
            field: "service_account_key",
            client_id: Some(config.client.client_id.clone()),
            client_secret: None,
            // Already read once by the description (which refused a malformed file).
            token_endpoint: serde_json::from_str::<Map<String, Value>>(key.expose_secret())
                .ok()
                .and_then(|json| json.get("token_uri").and_then(Value::as_str).map(str::to_owned))
                .filter(|uri| !uri.trim().is_empty()),
        });
        let grant = PyGrant { inner: config.grant, loopback: None, credential_file };
        Ok(PyClassInitializer::from(grant).add_subclass(PyJwtBearer))
    }

    /// With ``service_account_key``: its ``client_email`` (the client id a client takes); else ``None``.
    #[getter]
    fn client_id(slf: PyRef<'_, Self>) -> Option<String> {
        slf.as_super().credential_file.as_ref().and_then(|file| file.client_id.clone())
    }

    /// With ``service_account_key``: its ``token_uri``, when it has one; else ``None``.
    #[getter]
    fn token_endpoint(slf: PyRef<'_, Self>) -> Option<String> {
        slf.as_super().credential_file.as_ref().and_then(|file| file.token_endpoint.clone())
    }
}

// The Python signatures spell the default out (a literal shows in `help()` and the stubs).
const _: () = assert!(DEFAULT_MAX_CODE_ATTEMPTS == 3);

fn attempts(py: Python<'_>, max_code_attempts: u32, max_attempts: Option<u32>) -> PyResult<u32> {
    let attempts = crate::renamed(
        py,
        ("max_code_attempts", (max_code_attempts != DEFAULT_MAX_CODE_ATTEMPTS).then_some(max_code_attempts)),
        ("max_attempts", max_attempts),
    )?
    .unwrap_or(max_code_attempts);
    if attempts == 0 {
        return Err(configuration("max_code_attempts must be at least 1 (max_attempts is its old name)"));
    }
    Ok(attempts)
}

/// Email one-time code: the server mails a code, the client's `otp_callback` returns it.
/// Interactive: only `login()` starts it. `otp_start_endpoint` / `otp_verify_endpoint`: default from
/// discovery (`start_url` / `verify_url` / `max_attempts` are deprecated old names).
#[pyclass(name = "EmailOtp", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyEmailOtp;

#[pymethods]
impl PyEmailOtp {
    #[new]
    #[pyo3(signature = (email, otp_start_endpoint = None, otp_verify_endpoint = None, max_code_attempts = 3, *,
        start_url = None, verify_url = None, max_attempts = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        email: String,
        otp_start_endpoint: Option<String>,
        otp_verify_endpoint: Option<String>,
        max_code_attempts: u32,
        start_url: Option<String>,
        verify_url: Option<String>,
        max_attempts: Option<u32>,
    ) -> PyResult<PyClassInitializer<Self>> {
        if email.trim().is_empty() {
            return Err(configuration("email must not be empty"));
        }
        let grant = Grant::EmailOtp {
            email,
            otp_start_endpoint: crate::renamed(
                py,
                ("otp_start_endpoint", otp_start_endpoint),
                ("start_url", start_url),
            )?,
            otp_verify_endpoint: crate::renamed(
                py,
                ("otp_verify_endpoint", otp_verify_endpoint),
                ("verify_url", verify_url),
            )?,
            max_code_attempts: attempts(py, max_code_attempts, max_attempts)?,
        };
        Ok(PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyEmailOtp))
    }

    /// Where the code is sent.
    #[getter]
    fn email(slf: PyRef<'_, Self>) -> String {
        match &slf.as_super().inner {
            Grant::EmailOtp { email, .. } => email.clone(),
            _ => String::new(),
        }
    }
}

fn auth_flow_name(flow: CognitoAuthFlow) -> &'static str {
    match flow {
        CognitoAuthFlow::UserPassword => "user_password",
        CognitoAuthFlow::Custom => "custom",
    }
}

/// Amazon Cognito user pools over Cognito's JSON protocol (`InitiateAuth`, `RespondToAuthChallenge`,
/// `REFRESH_TOKEN_AUTH`). `auth_flow`: `"user_password"` (needs `password`) or `"custom"`
/// (`CUSTOM_AUTH`: codes answered by the client's `otp_callback`). `totp_secret` answers
/// `SOFTWARE_TOKEN_MFA` without a person. The client's `client_id` (and secret) is the app client.
#[pyclass(name = "Cognito", module = "tessera._tessera", extends = PyGrant, frozen)]
pub struct PyCognito;

#[pymethods]
impl PyCognito {
    #[new]
    #[pyo3(signature = (endpoint_url = None, username = None, password = None, *, auth_flow = "user_password",
        totp_secret = None, max_code_attempts = 3, endpoint = None, max_attempts = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        endpoint_url: Option<String>,
        username: Option<String>,
        password: Option<String>,
        auth_flow: &str,
        totp_secret: Option<String>,
        max_code_attempts: u32,
        endpoint: Option<String>,
        max_attempts: Option<u32>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let endpoint = crate::renamed(py, ("endpoint_url", endpoint_url), ("endpoint", endpoint))?
            .ok_or_else(|| configuration("endpoint_url is required (the Cognito service URL)"))?;
        let username = username.ok_or_else(|| configuration("username is required"))?;
        let auth_flow = match auth_flow {
            "user_password" | "USER_PASSWORD_AUTH" => CognitoAuthFlow::UserPassword,
            "custom" | "CUSTOM_AUTH" => CognitoAuthFlow::Custom,
            _ => return Err(configuration("auth_flow must be \"user_password\" or \"custom\"")),
        };
        if auth_flow == CognitoAuthFlow::UserPassword && password.is_none() {
            return Err(configuration("auth_flow \"user_password\" needs a password"));
        }
        let grant = Grant::Cognito {
            endpoint_url: endpoint,
            username,
            password: password.map(Secret::new),
            auth_flow,
            totp_secret: totp_secret.map(Secret::new),
            max_code_attempts: attempts(py, max_code_attempts, max_attempts)?,
        };
        Ok(PyClassInitializer::from(PyGrant::of(grant)).add_subclass(PyCognito))
    }

    /// The username.
    #[getter]
    fn username(slf: PyRef<'_, Self>) -> String {
        match &slf.as_super().inner {
            Grant::Cognito { username, .. } => username.clone(),
            _ => String::new(),
        }
    }

    /// `"user_password"` or `"custom"`.
    #[getter]
    fn auth_flow(slf: PyRef<'_, Self>) -> &'static str {
        match &slf.as_super().inner {
            Grant::Cognito { auth_flow, .. } => auth_flow_name(*auth_flow),
            _ => "",
        }
    }
}

/// The client's identity at the authorization server (RFC 6749 §2.3.1; client assertions:
/// RFC 7523, docs/client-assertions.md).
///
/// ``ClientAuth(client_id, client_secret=None, *, method=None, client_assertion_key=None,
/// client_assertion_alg=None, client_assertion_kid=None, client_assertion_certificate=None, dpop=False,
/// dpop_key=None, dpop_alg=None)``:
///
/// - ``method=None``: ``"client_secret_basic"`` (the default with a secret; unset, a discovered
///   server that does not list it gets ``"client_secret_post"`` or ``"client_secret_jwt"`` if it
///   lists them), ``"client_secret_post"``,
///   ``"client_secret_jwt"`` (an HS256 assertion signed with the secret), ``"private_key_jwt"``
///   (the default with ``client_assertion_key``), or ``"none"`` (a public client: the default
///   without either). ``"basic"`` and ``"post"`` are deprecated old names.
/// - ``client_assertion_key=None``: the private key's text (not a path): a PKCS#8 PEM of an RSA
///   (≥ 2048 bits), EC P-256 or Ed25519 key, an RSA PKCS#1 or EC P-256 SEC1 PEM, or a JWK with
///   ``d``.
/// - ``client_assertion_alg=None``: from the key (``RS256`` / ``ES256`` / ``EdDSA``); or
///   ``PS256``, ``RS384``, ... for RSA keys.
/// - ``client_assertion_kid=None``: the JWK's ``kid``, else no ``kid`` header.
/// - ``client_assertion_certificate=None``: the key's PEM certificate as text (its chain may
///   follow): assertions then carry ``x5t``, ``x5t#S256`` and ``x5c`` (msal's certificate
///   credentials; Azure AD requires ``x5t``).
/// - ``dpop=False``: DPoP (RFC 9449, docs/dpop.md): tokens bound to a key, a proof on every token
///   request and (through ``request_headers`` and the adapters) on every API request.
/// - ``dpop_key=None``: the DPoP private key's text (PEM or JWK with ``d``); ``None``: a key
///   generated per provider and kept in the store with the tokens.
/// - ``dpop_alg=None``: ``ES256`` (generated), or from ``dpop_key`` (``ES256`` / ``EdDSA`` /
///   ``RS256``; ``PS256`` ... for RSA keys).
///
/// The key is checked when the provider is built (a ``ConfigurationError`` naming the field,
/// never quoting the key) and never shown by ``repr``.
#[pyclass(name = "ClientAuth", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyClientAuth {
    pub(crate) inner: ClientAuth,
}

pub(crate) fn client_auth(
    py: Python<'_>,
    client_id: String,
    client_secret: Option<String>,
    method: Option<&str>,
) -> PyResult<ClientAuth> {
    let method_from_metadata = method.is_none();
    let method = match (method, &client_secret) {
        (None, Some(_)) => ClientAuthMethod::Basic,
        (None, None) => ClientAuthMethod::None,
        (Some(old @ ("basic" | "post")), _) => {
            let new = if old == "basic" { "client_secret_basic" } else { "client_secret_post" };
            crate::deprecated(py, &format!("client_auth {old:?} is deprecated: use {new:?}"))?;
            if old == "basic" { ClientAuthMethod::Basic } else { ClientAuthMethod::Post }
        }
        (Some(name), _) => ClientAuthMethod::from_name(name).ok_or_else(|| {
            let names: Vec<String> = ClientAuthMethod::NAMES.iter().map(|name| format!("{name:?}")).collect();
            configuration(format!("client_auth must be one of {}", names.join(", ")))
        })?,
    };
    // A missing secret for basic/post is refused with every other front end's rule: see
    // `ProviderConfig` / `Client` (provider_spec::validate_config).
    Ok(ClientAuth {
        client_id,
        client_secret: client_secret.map(Secret::new),
        method,
        method_from_metadata,
        assertion_key: None,
        dpop: None,
    })
}

/// The `client_assertion_*` and `dpop*` keywords of `ClientAuth`, `Client` and `SyncClient` (the
/// TOML names): how the client proves who it is, and which key its tokens are bound to.
#[derive(Default)]
pub struct AssertionArgs {
    /// `client_assertion_key`: the private key's text (PEM or JWK).
    pub client_assertion_key: Option<String>,
    /// `client_assertion_alg`.
    pub client_assertion_alg: Option<String>,
    /// `client_assertion_kid`.
    pub client_assertion_kid: Option<String>,
    /// `client_assertion_certificate`: the key's PEM certificate.
    pub client_assertion_certificate: Option<String>,
    /// `dpop`.
    pub dpop: bool,
    /// `dpop_key`: the private key's text.
    pub dpop_key: Option<String>,
    /// `dpop_alg`.
    pub dpop_alg: Option<String>,
}

impl AssertionArgs {
    /// The first keyword given, by name.
    pub(crate) fn given(&self) -> Option<&'static str> {
        [
            ("client_assertion_key", self.client_assertion_key.is_some()),
            ("client_assertion_alg", self.client_assertion_alg.is_some()),
            ("client_assertion_kid", self.client_assertion_kid.is_some()),
            ("client_assertion_certificate", self.client_assertion_certificate.is_some()),
            ("dpop", self.dpop),
            ("dpop_key", self.dpop_key.is_some()),
            ("dpop_alg", self.dpop_alg.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// [`client_auth`] with the assertion keywords: a key implies `private_key_jwt` (as in TOML);
/// `_alg`/`_kid` without a key are refused. The key itself is checked with the provider's other
/// rules (`validate`), naming the field and never quoting the key.
pub(crate) fn client_auth_with_assertion(
    py: Python<'_>,
    client_id: String,
    client_secret: Option<String>,
    method: Option<&str>,
    assertion: AssertionArgs,
) -> PyResult<ClientAuth> {
    let AssertionArgs {
        client_assertion_key,
        client_assertion_alg,
        client_assertion_kid,
        client_assertion_certificate,
        dpop,
        dpop_key,
        dpop_alg,
    } = assertion;
    let method = match (method, &client_assertion_key) {
        (None, Some(_)) => Some("private_key_jwt"),
        (method, _) => method,
    };
    let mut inner = client_auth(py, client_id, client_secret, method)?;
    if client_assertion_key.is_none()
        && (client_assertion_alg.is_some() || client_assertion_kid.is_some() || client_assertion_certificate.is_some())
    {
        let field = if client_assertion_alg.is_some() {
            "client_assertion_alg"
        } else if client_assertion_kid.is_some() {
            "client_assertion_kid"
        } else {
            "client_assertion_certificate"
        };
        return Err(configuration(format!("{field}: goes with client_assertion_key (private_key_jwt)")));
    }
    inner.assertion_key = client_assertion_key.map(|key| tessera::core::ClientAssertionKey {
        key: Secret::new(key),
        alg: client_assertion_alg,
        kid: client_assertion_kid,
        certificate: client_assertion_certificate.map(Secret::new),
    });
    if !dpop && (dpop_key.is_some() || dpop_alg.is_some()) {
        let field = if dpop_key.is_some() { "dpop_key" } else { "dpop_alg" };
        return Err(configuration(format!("{field}: goes with dpop=True")));
    }
    inner.dpop = dpop.then(|| tessera::DpopSettings { key: dpop_key.map(Secret::new), alg: dpop_alg });
    Ok(inner)
}

#[pymethods]
impl PyClientAuth {
    /// See the class documentation.
    #[new]
    #[pyo3(signature = (client_id, client_secret = None, *, method = None, client_assertion_key = None,
        client_assertion_alg = None, client_assertion_kid = None, client_assertion_certificate = None, dpop = false,
        dpop_key = None, dpop_alg = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        client_id: String,
        client_secret: Option<String>,
        method: Option<&str>,
        client_assertion_key: Option<String>,
        client_assertion_alg: Option<String>,
        client_assertion_kid: Option<String>,
        client_assertion_certificate: Option<String>,
        dpop: bool,
        dpop_key: Option<String>,
        dpop_alg: Option<String>,
    ) -> PyResult<Self> {
        let assertion = AssertionArgs {
            client_assertion_key,
            client_assertion_alg,
            client_assertion_kid,
            client_assertion_certificate,
            dpop,
            dpop_key,
            dpop_alg,
        };
        Ok(PyClientAuth { inner: client_auth_with_assertion(py, client_id, client_secret, method, assertion)? })
    }

    /// A confidential client using `client_secret_basic`.
    #[staticmethod]
    fn basic(client_id: String, client_secret: String) -> Self {
        PyClientAuth { inner: ClientAuth::basic(client_id, client_secret) }
    }

    /// A confidential client using `client_secret_post`.
    #[staticmethod]
    fn post(client_id: String, client_secret: String) -> Self {
        PyClientAuth { inner: ClientAuth::post(client_id, client_secret) }
    }

    /// A public client (no secret).
    #[staticmethod]
    fn public(client_id: String) -> Self {
        PyClientAuth { inner: ClientAuth::public(client_id) }
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// `"client_secret_basic"`, `"client_secret_post"`, `"client_secret_jwt"`, `"private_key_jwt"`,
    /// `"tls_client_auth"`, `"self_signed_tls_client_auth"` or `"none"`.
    #[getter]
    fn method(&self) -> &'static str {
        self.inner.method.name()
    }

    fn __repr__(&self) -> String {
        let secret = if self.inner.client_secret.is_some() { "<redacted>" } else { "None" };
        format!(
            "ClientAuth(client_id={}, client_secret={secret}, method={})",
            crate::quote(&self.inner.client_id),
            crate::quote(self.inner.method.name())
        )
    }
}

/// Where the server's endpoints come from: OIDC discovery, or given explicitly.
#[pyclass(name = "Endpoints", module = "tessera._tessera", frozen)]
#[derive(Clone)]
pub struct PyEndpoints {
    pub(crate) inner: Endpoints,
}

#[pymethods]
impl PyEndpoints {
    /// Read from `{issuer}/.well-known/openid-configuration` on first network use.
    #[staticmethod]
    fn discover(issuer: String) -> Self {
        PyEndpoints { inner: Endpoints::discover(issuer) }
    }

    /// A token endpoint, and an RFC 7009 revocation endpoint when the server has one
    /// (`token_url` / `revocation_url` are the deprecated old names).
    #[staticmethod]
    #[pyo3(signature = (token_endpoint = None, revocation_endpoint = None, *, token_url = None, revocation_url = None))]
    fn explicit(
        py: Python<'_>,
        token_endpoint: Option<String>,
        revocation_endpoint: Option<String>,
        token_url: Option<String>,
        revocation_url: Option<String>,
    ) -> PyResult<Self> {
        let token_endpoint = crate::renamed(py, ("token_endpoint", token_endpoint), ("token_url", token_url))?
            .ok_or_else(|| configuration("token_endpoint is required"))?;
        let revocation_endpoint =
            crate::renamed(py, ("revocation_endpoint", revocation_endpoint), ("revocation_url", revocation_url))?;
        Ok(PyEndpoints { inner: Endpoints::Explicit { token_endpoint, revocation_endpoint } })
    }

    fn __repr__(&self) -> String {
        endpoints_repr(&self.inner)
    }
}

pub(crate) fn endpoints_repr(endpoints: &Endpoints) -> String {
    match endpoints {
        Endpoints::Discover { issuer } => format!("Endpoints.discover({})", crate::quote(issuer)),
        Endpoints::Explicit { token_endpoint, revocation_endpoint } => {
            format!(
                "Endpoints.explicit({}, revocation_endpoint={})",
                crate::quote(token_endpoint),
                crate::quote_opt(revocation_endpoint.as_deref())
            )
        }
    }
}

/// Everything needed to obtain tokens: client, endpoints, grant, scope, and how requests travel.
///
/// ``ProviderConfig(client, endpoints, grant, *, scope=None, ca_file=None, ca_file_only=False,
/// tls_client_certificate=None, tls_client_key=None, proxy=None, no_proxy=None, timeout=None,
/// allow_insecure_http=False, user_agent=None)``
///
/// - ``client``: a ``ClientAuth``; ``endpoints``: an ``Endpoints``; ``grant``: a grant object.
/// - ``scope``: a space-separated string or a sequence of strings; ``None``: the grant's default.
/// - ``ca_file``: a PEM file of CA certificates trusted in addition to the system's roots (a private
///   CA); ``None``: the system's roots (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace them;
///   ``REQUESTS_CA_BUNDLE`` is not read).
/// - ``ca_file_only``: trust ``ca_file`` alone, not the system's roots. Default ``False``.
/// - ``tls_client_certificate``, ``tls_client_key``: PEM files of a TLS client certificate (and
///   chain) and its private key, presented on every request (RFC 8705 mutual TLS: the client's
///   credential with ``method="tls_client_auth"`` or ``"self_signed_tls_client_auth"``, and
///   certificate-bound tokens). A public client (``method="none"``) given a certificate
///   authenticates with it (``tls_client_auth``). Default ``None``; see docs/mtls.md.
/// - ``proxy``: ``"http://[user:password@]host:port"`` for every request; ``None``: ``HTTPS_PROXY`` /
///   ``HTTP_PROXY`` / ``ALL_PROXY``. The password is never shown (``repr``, errors).
/// - ``no_proxy``: hosts reached directly, ``NO_PROXY`` syntax; ``None``: ``NO_PROXY``.
/// - ``timeout``: seconds (or a ``timedelta``) per HTTP request; ``None``: 30.
/// - ``allow_insecure_http``: allow plain ``http://`` to hosts other than loopback. Default ``False``.
/// - ``user_agent``: the ``User-Agent`` header; ``None``: ``"tessera/<version>"``.
#[pyclass(name = "ProviderConfig", module = "tessera._tessera", frozen)]
pub struct PyProviderConfig {
    pub(crate) inner: ProviderConfig,
    /// The `Browser` grant's loopback receiver settings.
    pub(crate) loopback: Option<LoopbackSettings>,
    /// The transport keywords (a `Client` may replace some).
    pub(crate) transport: crate::transport::Transport,
}

#[pymethods]
impl PyProviderConfig {
    #[new]
    #[pyo3(signature = (client, endpoints, grant, *, scope = None, ca_file = None, ca_file_only = false,
        tls_client_certificate = None, tls_client_key = None, proxy = None, no_proxy = None, timeout = None,
        allow_insecure_http = false, user_agent = None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        client: PyRef<'_, PyClientAuth>,
        endpoints: PyRef<'_, PyEndpoints>,
        grant: PyRef<'_, PyGrant>,
        scope: Option<&Bound<'_, PyAny>>,
        ca_file: Option<std::path::PathBuf>,
        ca_file_only: bool,
        tls_client_certificate: Option<std::path::PathBuf>,
        tls_client_key: Option<std::path::PathBuf>,
        proxy: Option<String>,
        no_proxy: Option<String>,
        timeout: Option<Seconds<'_>>,
        allow_insecure_http: bool,
        user_agent: Option<String>,
    ) -> PyResult<Self> {
        let mut inner = ProviderConfig {
            client: client.inner.clone(),
            endpoints: endpoints.inner.clone(),
            scope: scope_arg(scope)?,
            grant: grant.inner.clone(),
        };
        if let Some(file) = &grant.credential_file
            && file.fixes_client_id()
            && file.client_id.as_ref() != Some(&inner.client.client_id)
        {
            // The key file names the client: another client id would sign as one and claim another.
            return Err(crate::errors::to_pyerr(
                &tessera::core::provider_spec::FieldError::new(
                    "client_id",
                    "comes from service_account_key: use ClientAuth(grant.client_id)",
                )
                .at("ProviderConfig"),
            ));
        }
        // A certificate and no other credential: the certificate authenticates (as in TOML).
        if inner.client.method == ClientAuthMethod::None && tls_client_certificate.is_some() {
            inner.client.method = ClientAuthMethod::TlsClientAuth;
        }
        let certificate_needed = inner.client.method.uses_certificate() && tls_client_certificate.is_none();
        validate(&inner, "ProviderConfig")?;
        let transport = crate::transport::Transport::new(
            ca_file,
            ca_file_only,
            (tls_client_certificate, tls_client_key),
            proxy,
            no_proxy,
            timeout,
            allow_insecure_http,
            user_agent,
        )?;
        transport.settings("ProviderConfig")?;
        if certificate_needed {
            return Err(crate::errors::to_pyerr(
                &tessera::core::provider_spec::FieldError::new(
                    "tls_client_certificate",
                    format!(
                        "is required with client_auth {:?} (the certificate is the credential)",
                        inner.client.method.name()
                    ),
                )
                .at("ProviderConfig"),
            ));
        }
        Ok(PyProviderConfig { inner, loopback: grant.loopback.clone(), transport })
    }

    fn __repr__(&self) -> String {
        format!(
            "ProviderConfig(client_id={}, endpoints={}, grant={}, scope={}{})",
            crate::quote(&self.inner.client.client_id),
            endpoints_repr(&self.inner.endpoints),
            crate::quote(self.inner.grant.name()),
            crate::quote_opt(self.inner.scope.as_deref()),
            self.transport.repr()
        )
    }
}

/// A scope given as one space-separated string or as a sequence of strings.
pub(crate) fn scope_arg(scope: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(scope) = scope.filter(|scope| !scope.is_none()) else { return Ok(None) };
    if let Ok(scope) = scope.extract::<String>() {
        return Ok(Some(scope));
    }
    let parts: Vec<String> =
        scope.extract().map_err(|_| configuration("scope must be a string or a sequence of strings"))?;
    Ok(Some(parts.join(" ")))
}

/// The rules every front end applies to a provider ([`tessera::core::provider_spec::validate_config`]),
/// as a `ConfigurationError` naming `place` and the field.
pub(crate) fn validate(config: &ProviderConfig, place: &str) -> PyResult<()> {
    tessera::core::provider_spec::validate_config(config).map_err(|error| crate::errors::to_pyerr(&error.at(place)))
}
