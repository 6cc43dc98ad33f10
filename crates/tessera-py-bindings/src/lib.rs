//! The Python bindings of tessera but for the `Client` and `SyncClient` classes: everything the
//! `tessera._tessera` extension module holds besides them (grants, stores, the registry, API keys,
//! token chains, logging, the runtime) and what those two classes do off their per-call path
//! (`front`).
//!
//! A crate of its own so that it can be compiled for size (Cargo.toml, `[profile.release]`) while
//! the classes that serve a cached header per request, in tessera-py, stay at opt-level 3: a
//! package's opt-level also applies to the generic code instantiated in it (docs/DECISIONS.md).
//! tessera-py links the module and registers these classes with [`add_to`].

mod api_keys;
mod auth_client;
mod callback;
mod chain;
mod credentials;
mod errors;
pub mod front;
pub mod grants;
mod logging;
mod native;
mod own_transport;
mod refresh;
mod registry;
pub mod runtime;
mod store;
pub mod time;
pub mod tokens;
pub mod transport;

use std::sync::OnceLock;

use pyo3::prelude::*;

/// Registers this crate's classes and functions in the module `m` (`tessera._tessera`), installs
/// the logging bridge and the drain of the runtime at exit.
pub fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    let drain = wrap_pyfunction!(runtime::_drain_before_exit, m)?;
    m.py().import("atexit")?.call_method1("register", (&drain,))?;
    m.add_class::<front::PyLogoutResult>()?;
    m.add_class::<tokens::PyTokenSet>()?;
    m.add_class::<grants::PyGrant>()?;
    m.add_class::<grants::PyPassword>()?;
    m.add_class::<grants::PyClientCredentials>()?;
    m.add_class::<grants::PyJwtBearer>()?;
    m.add_class::<grants::PyWorkloadIdentity>()?;
    m.add_class::<grants::PyRefreshToken>()?;
    m.add_class::<grants::PyStaticToken>()?;
    m.add_class::<grants::PyDeviceCode>()?;
    m.add_class::<grants::PyBrowser>()?;
    m.add_class::<grants::PyEmailOtp>()?;
    m.add_class::<grants::PyCognito>()?;
    m.add_class::<refresh::PyBrowserPrompt>()?;
    m.add_class::<refresh::PyCodePrompt>()?;
    m.add_class::<api_keys::PyApiKey>()?;
    m.add_class::<api_keys::PyApiKeys>()?;
    m.add_class::<api_keys::PySyncApiKeys>()?;
    m.add_class::<api_keys::PyAdminApiKeys>()?;
    m.add_class::<api_keys::PySyncAdminApiKeys>()?;
    m.add_class::<api_keys::PyApiKeyGrant>()?;
    m.add_class::<chain::PyStage>()?;
    m.add_class::<chain::PyChainConfig>()?;
    m.add_class::<chain::PyDomainServer>()?;
    m.add_class::<chain::PyDomainAccess>()?;
    m.add_class::<chain::PyDomainClient>()?;
    m.add_class::<chain::PySyncDomainClient>()?;
    m.add_class::<refresh::PyRefreshContext>()?;
    m.add_class::<refresh::PyRefreshFailureAction>()?;
    m.add_class::<refresh::PyDeviceCodePrompt>()?;
    m.add_class::<store::PyRedisStore>()?;
    m.add_class::<store::PyOpaqueStore>()?;
    m.add_function(wrap_pyfunction!(store::open_store, m)?)?;
    m.add_class::<registry::PyRegistry>()?;
    m.add_class::<registry::PyProviderSettings>()?;
    m.add_class::<credentials::PyProviderInfo>()?;
    m.add_class::<credentials::PyBasicCredential>()?;
    m.add_class::<credentials::PyOAuthCredential>()?;
    m.add_class::<auth_client::PyAuthClient>()?;
    m.add_class::<auth_client::PySyncAuthClient>()?;
    m.add_class::<grants::PyClientAuth>()?;
    m.add_class::<grants::PyEndpoints>()?;
    m.add_class::<grants::PyProviderConfig>()?;
    m.add_class::<store::PyMemoryStore>()?;
    m.add_class::<store::PyFileStore>()?;
    m.add_class::<native::PyJsonEngine>()?;
    m.add_class::<runtime::Ready>()?;
    m.add_function(wrap_pyfunction!(native::current_time_ms, m)?)?;
    m.add_function(wrap_pyfunction!(native::is_expired, m)?)?;
    m.add_function(wrap_pyfunction!(native::is_near_expiry, m)?)?;
    Ok(())
}

/// How [`client_session`] finds the session of a `Client` or `SyncClient`: set by tessera-py,
/// where these classes are defined (this crate cannot name them).
static CLIENT_SESSION: OnceLock<SessionOf> = OnceLock::new();

/// The session of a Python object when it is a `Client` or a `SyncClient`.
pub type SessionOf = fn(&Bound<'_, PyAny>) -> Option<tessera::Session>;

/// Sets how [`client_session`] finds the session of a `Client` or `SyncClient` (once, when the
/// module is loaded).
pub fn set_client_session(session_of: SessionOf) {
    // A second call (a second module init in the same process) would set the same function.
    let _ = CLIENT_SESSION.set(session_of);
}

/// The session of `client` when it is a `Client` or a `SyncClient`.
pub fn client_session(client: &Bound<'_, PyAny>) -> Option<tessera::Session> {
    CLIENT_SESSION.get().and_then(|session_of| session_of(client))
}

/// `value` as a Python string literal, for `repr`s.
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `value` as a Python string literal or `None`, for `repr`s.
pub(crate) fn quote_opt(value: Option<&str>) -> String {
    value.map_or_else(|| "None".to_owned(), quote)
}

/// Warns (`DeprecationWarning`) about each old spelling a provider description used.
pub(crate) fn warn_deprecations(
    py: Python<'_>,
    place: &str,
    deprecations: &[tessera::core::provider_spec::Deprecation],
) -> PyResult<()> {
    for deprecation in deprecations {
        deprecated(py, &format!("{place}: {deprecation}"))?;
    }
    Ok(())
}

/// Raises a `DeprecationWarning` with `message` at the caller's line.
pub(crate) fn deprecated(py: Python<'_>, message: &str) -> PyResult<()> {
    let category = py.get_type::<pyo3::exceptions::PyDeprecationWarning>();
    let message = std::ffi::CString::new(message).unwrap_or_default();
    PyErr::warn(py, &category, &message, 1)
}

/// The value of a renamed keyword argument: `new`, or the deprecated `old` spelling (with a
/// `DeprecationWarning` naming the new one); both at once is an error.
pub fn renamed<T>(
    py: Python<'_>,
    (new_name, new): (&str, Option<T>),
    (old_name, old): (&str, Option<T>),
) -> PyResult<Option<T>> {
    match (new, old) {
        (Some(_), Some(_)) => {
            Err(errors::configuration(format!("{old_name} is the old name of {new_name}: give only {new_name}")))
        }
        (None, Some(old)) => {
            deprecated(py, &format!("{old_name} is deprecated: use {new_name}"))?;
            Ok(Some(old))
        }
        (new, None) => Ok(new),
    }
}
