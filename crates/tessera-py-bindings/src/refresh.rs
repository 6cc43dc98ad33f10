//! Refresh policy, refresh hooks and prompters written in Python.
//!
//! - A policy is an object with `on_refresh_failure(context, error) -> RefreshFailureAction`, or a
//!   `RefreshFailureAction` itself (the same answer every time: `RefreshFailureAction.RAISE` in a daemon).
//! - Hooks are an object with any of `on_refresh_start(context)`, `on_refresh_success(context,
//!   tokens)`, `on_refresh_failure(context, error)`. An exception raised by a hook fails the operation
//!   with that very exception.
//! - A prompter is a callable receiving a `DeviceCodePrompt` or a `BrowserPrompt` (show it to a
//!   person, then return; in browser paste mode, return the URL), and `otp_callback` a callable
//!   receiving a `CodePrompt` and returning the code.
//!
//! Methods may be sync or `async def` (see [`crate::callback`]).

use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tessera::policy::{RefreshContext, RefreshFailureAction, RefreshHooks, RefreshPolicy, TokenSource};
use tessera::prompt::Prompter;
use tessera::{Error, Prompt, RefreshReason, Secret, TokenSet};

use crate::callback::Callback;
use crate::errors::{configuration, to_pyerr};
use crate::time::{Seconds, to_datetime};
use crate::tokens::PyTokenSet;

/// Why a refresh runs, as its Python name.
pub(crate) fn reason_name(reason: RefreshReason) -> &'static str {
    match reason {
        RefreshReason::Startup => "startup",
        RefreshReason::Expired => "expired",
        RefreshReason::NearExpiry => "near_expiry",
        RefreshReason::Forced => "forced",
        RefreshReason::Unauthorized => "unauthorized",
        RefreshReason::Login => "login",
        _ => "other",
    }
}

fn source_name(source: TokenSource) -> &'static str {
    match source {
        TokenSource::Memory => "memory",
        TokenSource::Store => "store",
        TokenSource::Network => "network",
        TokenSource::Login => "login",
        _ => "other",
    }
}

/// Describes one refresh: for the policy and the hooks (and on the `tessera.refresh` log records).
#[pyclass(name = "RefreshContext", module = "tessera._tessera", frozen, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct PyRefreshContext {
    /// The session's store key.
    #[pyo3(get)]
    key: String,
    /// Why it runs: `startup`, `expired`, `near_expiry`, `forced`, `unauthorized` or `login`.
    #[pyo3(get)]
    reason: &'static str,
    /// Where the token comes from: `memory`, `store`, `network` or `login`.
    #[pyo3(get)]
    source: &'static str,
    /// 1 for the first attempt; grows with `retry_after` and reauthentication.
    #[pyo3(get)]
    attempt: u32,
}

impl PyRefreshContext {
    fn new(context: &RefreshContext) -> Self {
        PyRefreshContext {
            key: context.key.clone(),
            reason: reason_name(context.reason),
            source: source_name(context.source),
            attempt: context.attempt,
        }
    }
}

#[pymethods]
impl PyRefreshContext {
    fn __repr__(&self) -> String {
        format!(
            "RefreshContext(key={}, reason={}, source={}, attempt={})",
            crate::quote(&self.key),
            crate::quote(self.reason),
            crate::quote(self.source),
            self.attempt
        )
    }
}

/// What to do about a failed refresh: `RAISE`, `REAUTHENTICATE` or `retry_after(seconds)`.
#[pyclass(name = "RefreshFailureAction", module = "tessera._tessera", frozen, eq)]
#[derive(Clone, Copy, PartialEq)]
pub struct PyRefreshFailureAction {
    action: RefreshFailureAction,
}

#[pymethods]
impl PyRefreshFailureAction {
    /// Raise the error to the caller (daemons: a typed `ReauthenticationRequired`, never a prompt).
    #[classattr]
    #[pyo3(name = "RAISE")]
    fn raise() -> Self {
        PyRefreshFailureAction { action: RefreshFailureAction::Raise }
    }

    /// Run the login flow again (with the prompter when it needs a person), then carry on.
    #[classattr]
    #[pyo3(name = "REAUTHENTICATE")]
    fn reauthenticate() -> Self {
        PyRefreshFailureAction { action: RefreshFailureAction::Reauthenticate }
    }

    /// Sleep `seconds`, then try the refresh again (at most three attempts in all).
    #[staticmethod]
    fn retry_after(seconds: Seconds<'_>) -> PyResult<Self> {
        Ok(PyRefreshFailureAction { action: RefreshFailureAction::RetryAfter(seconds.duration()?) })
    }

    /// `raise`, `reauthenticate` or `retry_after`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.action {
            RefreshFailureAction::Raise => "raise",
            RefreshFailureAction::Reauthenticate => "reauthenticate",
            _ => "retry_after",
        }
    }

    /// The delay of `retry_after`, in seconds; `None` otherwise.
    #[getter]
    fn delay(&self) -> Option<f64> {
        match self.action {
            RefreshFailureAction::RetryAfter(delay) => Some(delay.as_secs_f64()),
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        match self.action {
            RefreshFailureAction::Raise => "RefreshFailureAction.RAISE".to_owned(),
            RefreshFailureAction::Reauthenticate => "RefreshFailureAction.REAUTHENTICATE".to_owned(),
            RefreshFailureAction::RetryAfter(delay) => {
                format!("RefreshFailureAction.retry_after({})", delay.as_secs_f64())
            }
            _ => "RefreshFailureAction(?)".to_owned(),
        }
    }
}

fn error_object<'py>(py: Python<'py>, error: &Error) -> Bound<'py, PyAny> {
    to_pyerr(error).into_value(py).into_bound(py).into_any()
}

fn context_args<'py>(py: Python<'py>, context: &RefreshContext) -> PyResult<Bound<'py, PyAny>> {
    Ok(Bound::new(py, PyRefreshContext::new(context))?.into_any())
}

/// An exception raised by a Python policy: the session cannot carry it (a policy answers with an
/// action), so the binding keeps it here and raises it instead of the refresh error.
#[derive(Clone, Default)]
pub(crate) struct PolicyErrorSlot(Arc<Mutex<Option<Error>>>);

impl PolicyErrorSlot {
    fn put(&self, error: Error) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
    }

    /// The policy's exception, if it raised during the operation that just failed with `error`.
    fn replace(&self, error: Error) -> Error {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take().unwrap_or(error)
    }

    /// Runs a session operation; its error is the policy's exception when the policy raised one.
    pub(crate) async fn guard<T>(&self, operation: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        operation.await.map_err(|error| self.replace(error))
    }
}

/// A refresh policy written in Python.
pub(crate) enum PythonPolicy {
    /// Always the same answer.
    Constant(RefreshFailureAction),
    /// `on_refresh_failure(context, error)`.
    Object { decide: Callback, raised: PolicyErrorSlot },
}

impl PythonPolicy {
    /// The policy of a `refresh_policy=` argument.
    pub(crate) fn new(policy: &Bound<'_, PyAny>, raised: PolicyErrorSlot) -> PyResult<Self> {
        if let Ok(action) = policy.extract::<PyRef<'_, PyRefreshFailureAction>>() {
            return Ok(PythonPolicy::Constant(action.action));
        }
        match Callback::method(policy, "on_refresh_failure")? {
            Some(decide) => Ok(PythonPolicy::Object { decide, raised }),
            None => Err(pyo3::exceptions::PyTypeError::new_err(
                "refresh_policy must be a RefreshFailureAction or an object with an \
                 on_refresh_failure(context, error) method returning one",
            )),
        }
    }
}

impl RefreshPolicy for PythonPolicy {
    fn on_refresh_failure(&self, context: &RefreshContext, error: &Error) -> RefreshFailureAction {
        let PythonPolicy::Object { decide, raised } = self else {
            let PythonPolicy::Constant(action) = self else { unreachable!() };
            return *action;
        };
        let decided = decide.call_sync(
            |py| PyTuple::new(py, [context_args(py, context)?, error_object(py, error)]),
            |answer| match answer.extract::<PyRef<'_, PyRefreshFailureAction>>() {
                Ok(action) => Ok(action.action),
                Err(_) => Err(configuration(format!(
                    "on_refresh_failure must return a RefreshFailureAction, not {}",
                    answer.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))),
            },
        );
        decided.unwrap_or_else(|error| {
            raised.put(error);
            RefreshFailureAction::Raise
        })
    }
}

/// Refresh hooks written in Python: any of the three methods.
pub(crate) struct PythonHooks {
    start: Option<Callback>,
    success: Option<Callback>,
    failure: Option<Callback>,
}

impl PythonHooks {
    /// The hooks of a `hooks=` argument.
    pub(crate) fn new(hooks: &Bound<'_, PyAny>) -> PyResult<Self> {
        let built = PythonHooks {
            start: Callback::method(hooks, "on_refresh_start")?,
            success: Callback::method(hooks, "on_refresh_success")?,
            failure: Callback::method(hooks, "on_refresh_failure")?,
        };
        if built.start.is_none() && built.success.is_none() && built.failure.is_none() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "hooks must have at least one of on_refresh_start(context), \
                 on_refresh_success(context, tokens), on_refresh_failure(context, error)",
            ));
        }
        Ok(built)
    }
}

fn ignore(_: &Bound<'_, PyAny>) -> PyResult<()> {
    Ok(())
}

impl RefreshHooks for PythonHooks {
    fn on_refresh_start(&self, context: &RefreshContext) -> Result<(), Error> {
        match &self.start {
            Some(hook) => hook.call_sync(|py| PyTuple::new(py, [context_args(py, context)?]), ignore),
            None => Ok(()),
        }
    }

    fn on_refresh_success(&self, context: &RefreshContext, tokens: &TokenSet) -> Result<(), Error> {
        match &self.success {
            Some(hook) => hook.call_sync(
                |py| {
                    let tokens = Bound::new(py, PyTokenSet::new(tokens.clone()))?.into_any();
                    PyTuple::new(py, [context_args(py, context)?, tokens])
                },
                ignore,
            ),
            None => Ok(()),
        }
    }

    fn on_refresh_failure(&self, context: &RefreshContext, error: &Error) -> Result<(), Error> {
        match &self.failure {
            Some(hook) => {
                hook.call_sync(|py| PyTuple::new(py, [context_args(py, context)?, error_object(py, error)]), ignore)
            }
            None => Ok(()),
        }
    }
}

/// What a person must see to approve a device-code login (RFC 8628).
#[pyclass(name = "DeviceCodePrompt", module = "tessera._tessera", frozen)]
pub struct PyDeviceCodePrompt {
    /// The store key of the session logging in.
    #[pyo3(get)]
    key: String,
    /// The code to enter.
    #[pyo3(get)]
    user_code: String,
    /// Where to enter it.
    #[pyo3(get)]
    verification_uri: String,
    /// A URL with the code filled in (for a QR code or a click), when the server gives one.
    #[pyo3(get)]
    verification_uri_complete: Option<String>,
    expires_at: tessera::Timestamp,
}

#[pymethods]
impl PyDeviceCodePrompt {
    /// When the code stops working (aware UTC datetime).
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, self.expires_at)
    }

    fn __repr__(&self) -> String {
        format!(
            "DeviceCodePrompt(user_code={}, verification_uri={}, verification_uri_complete={})",
            crate::quote(&self.user_code),
            crate::quote(&self.verification_uri),
            crate::quote_opt(self.verification_uri_complete.as_deref())
        )
    }
}

/// A browser to open for a browser login (authorization code + PKCE).
#[pyclass(name = "BrowserPrompt", module = "tessera._tessera", frozen)]
pub struct PyBrowserPrompt {
    /// The store key of the session logging in.
    #[pyo3(get)]
    key: String,
    /// Open this in a browser.
    #[pyo3(get)]
    authorization_url: String,
    /// Where the server sends the browser back (a loopback listener, or the registered paste URI).
    #[pyo3(get)]
    redirect_uri: String,
    /// True in paste mode: the prompter must return the full URL the browser ended on.
    #[pyo3(get)]
    expects_answer: bool,
}

#[pymethods]
impl PyBrowserPrompt {
    fn __repr__(&self) -> String {
        format!(
            "BrowserPrompt(authorization_url={}, redirect_uri={}, expects_answer={})",
            crate::quote(&self.authorization_url),
            crate::quote(&self.redirect_uri),
            if self.expects_answer { "True" } else { "False" }
        )
    }
}

/// A one-time code to type (email, text message, authenticator app, custom challenge): the
/// `otp_callback` returns it.
#[pyclass(name = "CodePrompt", module = "tessera._tessera", frozen)]
pub struct PyCodePrompt {
    /// The store key of the session logging in.
    #[pyo3(get)]
    key: String,
    /// How the code reached the person: `email`, `sms`, `authenticator` or `custom`.
    #[pyo3(get)]
    channel: &'static str,
    /// Where it was sent, masked by the server (`a***@e***`), when known.
    #[pyo3(get)]
    destination: Option<String>,
    /// 1 for the first ask, 2 after one wrong code, ...
    #[pyo3(get)]
    attempt: u32,
    /// Why the previous code was refused, on attempts after the first.
    #[pyo3(get)]
    previous_error: Option<String>,
}

#[pymethods]
impl PyCodePrompt {
    fn __repr__(&self) -> String {
        format!(
            "CodePrompt(channel={}, destination={}, attempt={}, previous_error={})",
            crate::quote(self.channel),
            crate::quote_opt(self.destination.as_deref()),
            self.attempt,
            crate::quote_opt(self.previous_error.as_deref())
        )
    }
}

tokio::task_local! {
    /// The `otp_callback=` of the `login()` call this task runs, in place of the client's. Task-local:
    /// concurrent logins on one client each keep their own (the session runs a login's prompts on
    /// the task that awaits it).
    static LOGIN_CODE: Option<Arc<Callback>>;
}

/// Runs `login` with `callback` answering its one-time-code prompts.
pub(crate) async fn with_login_code<F: Future>(callback: Option<Callback>, login: F) -> F::Output {
    LOGIN_CODE.scope(callback.map(Arc::new), login).await
}

fn login_code() -> Option<Arc<Callback>> {
    LOGIN_CODE.try_with(Clone::clone).ok().flatten()
}

/// Prompters written in Python: `prompter` (a callable, sync or async) shows device codes and
/// browser URLs (and answers paste mode); `otp_callback` (sync or async) returns one-time codes.
pub(crate) struct PythonPrompter {
    show: Option<Arc<Callback>>,
    code: Option<Arc<Callback>>,
}

/// A Python callable argument, checked.
pub(crate) fn callable(value: Option<&Bound<'_, PyAny>>, name: &str, takes: &str) -> PyResult<Option<Callback>> {
    let Some(value) = value.filter(|value| !value.is_none()) else { return Ok(None) };
    if !value.is_callable() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} must be a callable taking a {takes} (sync or async)"
        )));
    }
    Ok(Some(Callback::new(value, name)?))
}

impl PythonPrompter {
    /// The prompter of the `prompter=` and `otp_callback=` arguments.
    pub(crate) fn new(show: Option<Callback>, code: Option<Callback>) -> Self {
        PythonPrompter { show: show.map(Arc::new), code: code.map(Arc::new) }
    }

    fn nobody(key: &str, what: &str) -> Error {
        Error::ReauthenticationRequired {
            reason: format!(
                "logging in to {key} needs a person ({what}), and this client has no {}",
                match what {
                    "a one-time code" => "otp_callback",
                    _ => "prompter",
                }
            ),
        }
    }
}

/// The answer of a Python prompter: a non-empty string.
fn answer(location: &str, answer: Py<PyAny>) -> Result<Secret, Error> {
    Python::attach(|py| match answer.bind(py).extract::<String>() {
        Ok(text) if !text.trim().is_empty() => Ok(Secret::new(text.trim())),
        Ok(_) => Err(Error::ReauthenticationRequired { reason: format!("{location} returned an empty answer") }),
        Err(_) => Err(Error::configuration(format!(
            "{location} must return the answer as a str, not {}",
            answer.bind(py).get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))),
    })
}

#[async_trait]
impl Prompter for PythonPrompter {
    async fn show(&self, key: &str, prompt: &Prompt) -> Result<(), Error> {
        let Some(show) = &self.show else {
            let what = match prompt {
                Prompt::Browser { .. } => "a browser",
                _ => "a device code",
            };
            return Err(Self::nobody(key, what));
        };
        let key = key.to_owned();
        match prompt {
            Prompt::DeviceCode { user_code, verification_uri, verification_uri_complete, expires_at } => {
                let prompt = PyDeviceCodePrompt {
                    key,
                    user_code: user_code.clone(),
                    verification_uri: verification_uri.clone(),
                    verification_uri_complete: verification_uri_complete.clone(),
                    expires_at: *expires_at,
                };
                show.call_async(move |py| PyTuple::new(py, [Bound::new(py, prompt)?.into_any()])).await.map(drop)
            }
            Prompt::Browser { authorization_url, redirect_uri } => {
                let prompt = PyBrowserPrompt {
                    key,
                    authorization_url: authorization_url.clone(),
                    redirect_uri: redirect_uri.clone(),
                    expects_answer: false,
                };
                show.call_async(move |py| PyTuple::new(py, [Bound::new(py, prompt)?.into_any()])).await.map(drop)
            }
            other => Err(Error::configuration(format!("this binding cannot show the prompt {other:?}"))),
        }
    }

    async fn ask(&self, key: &str, prompt: &Prompt) -> Result<Secret, Error> {
        match prompt {
            Prompt::Browser { authorization_url, redirect_uri } => {
                let Some(show) = &self.show else { return Err(Self::nobody(key, "a browser")) };
                let prompt = PyBrowserPrompt {
                    key: key.to_owned(),
                    authorization_url: authorization_url.clone(),
                    redirect_uri: redirect_uri.clone(),
                    expects_answer: true,
                };
                let reply = show.call_async(move |py| PyTuple::new(py, [Bound::new(py, prompt)?.into_any()])).await?;
                answer(&show.location, reply)
            }
            Prompt::Code { channel, destination, attempt, previous_error } => {
                let callback = login_code().or_else(|| self.code.clone());
                let Some(callback) = callback else { return Err(Self::nobody(key, "a one-time code")) };
                let prompt = PyCodePrompt {
                    key: key.to_owned(),
                    channel: channel.as_str(),
                    destination: destination.clone(),
                    attempt: *attempt,
                    previous_error: previous_error.clone(),
                };
                let reply =
                    callback.call_async(move |py| PyTuple::new(py, [Bound::new(py, prompt)?.into_any()])).await?;
                answer(&callback.location, reply)
            }
            other => Err(Error::configuration(format!("this binding cannot answer the prompt {other:?}"))),
        }
    }
}
