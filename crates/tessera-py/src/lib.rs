//! Python bindings of tessera: the `tessera._tessera` extension module behind `import tessera`.
//!
//! Everything here is a thin layer over the Rust crate: one `Session` serves both the async
//! `Client` and the sync `SyncClient`; Python stores become a Rust `TokenStore`; errors map onto
//! the Python exception hierarchy of `tessera/_errors.py`. The Python sources live in
//! `python/tessera/`; maturin builds both into one abi3 wheel (see pyproject.toml).

mod api_keys;
mod auth_client;
mod callback;
mod chain;
mod client;
mod credentials;
mod errors;
mod grants;
mod logging;
mod native;
mod own_transport;
mod refresh;
mod registry;
mod runtime;
mod store;
mod time;
mod tokens;
mod transport;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _tessera(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    logging::install();
    let drain = wrap_pyfunction!(runtime::_drain_before_exit, m)?;
    m.py().import("atexit")?.call_method1("register", (&drain,))?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<client::PySyncClient>()?;
    m.add_class::<client::PyLogoutResult>()?;
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
pub(crate) fn renamed<T>(
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
