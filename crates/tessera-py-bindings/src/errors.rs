//! `tessera_core::Error` as Python exceptions (classes defined in `tessera/_errors.py`), and the
//! way an exception raised by a Python callback (a store) crosses the Rust session unchanged.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use tessera::{Error, StoreErrorKind, TransportErrorKind};

/// Marks a store error that stands for a Python exception kept in [`RAISED`].
const MARK: &str = "[python exception #";
/// Exceptions kept for re-raising: a bounded ring (an error the session swallowed is forgotten).
const KEEP: usize = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Each kept exception with its id and where it was raised (`MyStore.load`, `MyProvider.status`).
static RAISED: Mutex<Vec<(u64, String, PyErr)>> = Mutex::new(Vec::new());
static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn raised() -> std::sync::MutexGuard<'static, Vec<(u64, String, PyErr)>> {
    RAISED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wraps an exception raised by a Python store method in a store error that
/// [`to_pyerr`] turns back into the very same exception.
pub(crate) fn from_python(location: &str, err: PyErr) -> Error {
    from_python_raised_in(location, location, err)
}

/// [`from_python`], for a callback whose errors name the object (`MyStore()`) and whose exception
/// a listing attributes to the method (`raised_in`: `MyStore.load`).
pub(crate) fn from_python_raised_in(location: &str, raised_in: &str, err: PyErr) -> Error {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let type_name = Python::attach(|py| {
        err.get_type(py).name().map(|name| name.to_string()).unwrap_or_else(|_| "Exception".to_owned())
    });
    {
        let mut kept = raised();
        if kept.len() >= KEEP {
            kept.remove(0);
        }
        kept.push((id, raised_in.to_owned(), err));
    }
    Error::store(StoreErrorKind::Io, location, format!("{type_name} raised by a Python callback {MARK}{id}]"))
}

fn kept(py: Python<'_>, message: &str) -> Option<(String, PyErr)> {
    let start = message.find(MARK)? + MARK.len();
    let id: u64 = message[start..].split(']').next()?.parse().ok()?;
    raised().iter().find(|(kept, _, _)| *kept == id).map(|(_, location, err)| (location.clone(), err.clone_ref(py)))
}

fn original(py: Python<'_>, message: &str) -> Option<PyErr> {
    kept(py, message).map(|(_, err)| err)
}

/// For an error message that stands for a Python callback's exception: what it really was,
/// `MyProvider.status raised ValueError: <its message>` (a listing shows this, not the store error
/// that carried it across the session). `None` for any other message, or one no longer kept.
pub(crate) fn describe_python_error(message: &str) -> Option<String> {
    if !message.contains(MARK) {
        return None;
    }
    Python::attach(|py| {
        let (location, err) = kept(py, message)?;
        let type_name = err.get_type(py).name().map(|name| name.to_string()).unwrap_or_else(|_| "Exception".into());
        let text = err.value(py).str().map(|text| text.to_string()).unwrap_or_default();
        Some(if text.is_empty() {
            format!("{location} raised {type_name}")
        } else {
            format!("{location} raised {type_name}: {text}")
        })
    })
}

/// The Python exception for `error`: the original one for a Python callback's exception, else an
/// instance of the `tessera` exception class of its kind.
pub(crate) fn to_pyerr(error: &Error) -> PyErr {
    Python::attach(|py| build(py, error).unwrap_or_else(|failed| failed))
}

fn transport_kind(kind: &TransportErrorKind) -> &'static str {
    match kind {
        TransportErrorKind::Connect => "connect",
        TransportErrorKind::Timeout => "timeout",
        TransportErrorKind::ConnectionClosed => "connection_closed",
        TransportErrorKind::BodyTooLarge => "body_too_large",
        TransportErrorKind::Redirect => "redirect",
        TransportErrorKind::InvalidUrl => "invalid_url",
        TransportErrorKind::Certificate => "certificate",
        _ => "other",
    }
}

fn store_kind(kind: &StoreErrorKind) -> &'static str {
    match kind {
        StoreErrorKind::InsecurePermissions => "insecure_permissions",
        StoreErrorKind::Corrupt => "corrupt",
        StoreErrorKind::Io => "io",
        StoreErrorKind::LockTimeout => "lock_timeout",
        StoreErrorKind::Unavailable => "unavailable",
        StoreErrorKind::UnsupportedVersion => "unsupported_version",
        StoreErrorKind::LockLost => "lock_lost",
        _ => "other",
    }
}

fn build(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    if let Error::Store { message, .. } = error
        && let Some(original) = original(py, message)
    {
        return Ok(original);
    }
    let module = ERRORS_MODULE.get_or_try_init(py, || py.import("tessera._errors").map(Bound::unbind))?.bind(py);
    let kwargs = PyDict::new(py);
    let (class, kind) = match error {
        Error::OAuth { code, description, status, endpoint } => {
            kwargs.set_item("code", code.as_str())?;
            kwargs.set_item("description", description)?;
            kwargs.set_item("status", status)?;
            kwargs.set_item("endpoint", endpoint)?;
            ("AuthenticationError", "oauth")
        }
        Error::UnexpectedStatus { status, retry_after, endpoint, .. } => {
            kwargs.set_item("status", status)?;
            kwargs.set_item("retry_after", retry_after.map(|d| d.as_secs_f64()))?;
            kwargs.set_item("endpoint", endpoint)?;
            ("UnexpectedStatusError", "unexpected_status")
        }
        Error::Transport { kind, endpoint, .. } => {
            kwargs.set_item("transport_kind", transport_kind(kind))?;
            kwargs.set_item("endpoint", endpoint)?;
            ("TransportError", "transport")
        }
        Error::OutcomeUnknown { kind, endpoint, .. } => {
            kwargs.set_item("transport_kind", transport_kind(kind))?;
            kwargs.set_item("endpoint", endpoint)?;
            ("TransportError", "outcome_unknown")
        }
        Error::MalformedResponse { endpoint, .. } => {
            kwargs.set_item("endpoint", endpoint)?;
            ("MalformedResponseError", "malformed_response")
        }
        Error::Metadata { endpoint, .. } => {
            kwargs.set_item("endpoint", endpoint)?;
            ("MalformedResponseError", "metadata")
        }
        Error::ReauthenticationRequired { .. } => ("ReauthenticationRequired", "reauthentication_required"),
        Error::Configuration { .. } => ("ConfigurationError", "configuration"),
        Error::Internal { .. } => ("InternalError", "internal"),
        Error::Store { kind, location, .. } => {
            kwargs.set_item("store_kind", store_kind(kind))?;
            kwargs.set_item("location", location)?;
            ("StoreError", "store")
        }
        _ => ("TesseraError", "other"),
    };
    kwargs.set_item("kind", kind)?;
    kwargs.set_item("transient", error.is_transient())?;
    let exception = module.getattr(class)?.call((error.to_string(),), Some(&kwargs))?;
    Ok(PyErr::from_value(exception))
}

/// A configuration error as a Python exception.
pub(crate) fn configuration(message: impl Into<String>) -> PyErr {
    to_pyerr(&Error::configuration(message))
}
