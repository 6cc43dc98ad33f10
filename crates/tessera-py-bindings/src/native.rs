//! `JsonEngine`: the sans-I/O engine with JSON text in and out (docs/sans-io-json.md), and the
//! time utilities. `tessera.native.NativeEngine` wraps it with dicts.

use pyo3::prelude::*;
use tessera::clock::current_time_ms as now_ms;
use tessera_core::json::{JsonEngine, is_expired_ms, is_near_expiry_ms};

use crate::errors::to_pyerr;

/// The token engine with every input and output as JSON text. No I/O: the host sends the
/// requests and reports back.
#[pyclass(name = "JsonEngine", module = "tessera._tessera")]
pub struct PyJsonEngine {
    inner: JsonEngine,
}

#[pymethods]
impl PyJsonEngine {
    /// An engine seeded with 32 bytes from the operating system's generator (getrandom, what
    /// `os.urandom` reads) for client assertions' `jti`: `set_entropy` replaces them.
    #[new]
    fn py_new() -> Self {
        let mut inner = JsonEngine::new();
        let mut seed = [0u8; 32];
        if getrandom::fill(&mut seed).is_ok() {
            // Cannot fail: 32 bytes.
            let _ = inner.set_entropy_bytes(&seed);
        }
        PyJsonEngine { inner }
    }

    /// Replaces the random bytes client assertions' `jti` values are derived from:
    /// `entropy_base64` is base64 of at least 32 bytes from a cryptographically secure generator
    /// (a `ConfigurationError`, without the value, otherwise). The engine draws its own at creation.
    fn set_entropy(&mut self, entropy_base64: &str) -> PyResult<()> {
        self.inner.set_entropy(entropy_base64).map_err(|error| to_pyerr(&error))
    }

    /// Registers a provider (JSON) under `key`. Old field spellings load with a `DeprecationWarning`
    /// naming the new field.
    fn register(&mut self, py: Python<'_>, key: &str, provider_json: &str) -> PyResult<()> {
        let deprecations = self.inner.register(key, provider_json).map_err(|error| to_pyerr(&error))?;
        crate::warn_deprecations(py, &format!("provider {key:?}"), &deprecations)
    }

    /// The actions (JSON array) that make `key` hold a valid token; `"[]"` when it does.
    #[pyo3(signature = (key, now_ms = None))]
    fn ensure(&mut self, key: &str, now_ms: Option<i64>) -> String {
        self.inner.ensure(key, now(now_ms))
    }

    /// The actions of a refresh now (after a 401).
    #[pyo3(signature = (key, now_ms = None))]
    fn refresh(&mut self, key: &str, now_ms: Option<i64>) -> String {
        self.inner.refresh(key, now(now_ms))
    }

    /// The actions of a fresh login with the grant.
    #[pyo3(signature = (key, now_ms = None))]
    fn login(&mut self, key: &str, now_ms: Option<i64>) -> String {
        self.inner.login(key, now(now_ms))
    }

    /// The actions of a fresh login with host-made inputs (JSON `{"random_base64"?, "redirect_uri"?}`:
    /// 64 random bytes for PKCE, state and nonce, and where the browser comes back; browser logins
    /// need both).
    #[pyo3(signature = (key, inputs_json, now_ms = None))]
    fn login_with(&mut self, key: &str, inputs_json: &str, now_ms: Option<i64>) -> PyResult<String> {
        self.inner.login_with(key, inputs_json, now(now_ms)).map_err(|error| to_pyerr(&error))
    }

    /// The actions of a logout (revocation when possible).
    #[pyo3(signature = (key, now_ms = None))]
    fn logout(&mut self, key: &str, now_ms: Option<i64>) -> String {
        self.inner.logout(key, now(now_ms))
    }

    /// Feeds an event (JSON) back; returns the next actions.
    #[pyo3(signature = (event_json, now_ms = None))]
    fn handle(&mut self, event_json: &str, now_ms: Option<i64>) -> PyResult<String> {
        self.inner.handle(event_json, now(now_ms)).map_err(|error| to_pyerr(&error))
    }

    /// The tokens of `key` as JSON (secrets in clear), if any.
    fn tokens(&self, key: &str) -> Option<String> {
        self.inner.tokens(key)
    }

    /// Restores (or, with `None`, forgets) the tokens of `key`.
    #[pyo3(signature = (key, tokens_json))]
    fn set_tokens(&mut self, key: &str, tokens_json: Option<&str>) -> PyResult<()> {
        self.inner.set_tokens(key, tokens_json).map_err(|error| to_pyerr(&error))
    }

    /// Registers a token chain (JSON: `network` (a registered provider's key), `discovery`,
    /// `domain`, `refresh_threshold_ms`?, `max_attempts`?) under `key`.
    fn register_chain(&mut self, key: &str, chain_json: &str) -> PyResult<()> {
        self.inner.register_chain(key, chain_json).map_err(|error| to_pyerr(&error))
    }

    /// The actions (JSON array) of the whole chain for access to `domain_id`: `done` (with
    /// `domain_id` and `domain_access`) at once when it is cached and fresh.
    #[pyo3(signature = (key, domain_id, now_ms = None))]
    fn domain_access(&mut self, key: &str, domain_id: &str, now_ms: Option<i64>) -> String {
        self.inner.domain_access(key, domain_id, now(now_ms))
    }

    /// The actions that replace a domain access its server refused (401).
    #[pyo3(signature = (key, domain_id, now_ms = None))]
    fn refresh_domain_access(&mut self, key: &str, domain_id: &str, now_ms: Option<i64>) -> String {
        self.inner.refresh_domain_access(key, domain_id, now(now_ms))
    }

    /// The cached, still valid access to `domain_id` as JSON (token in clear), if any.
    #[pyo3(signature = (key, domain_id, now_ms = None))]
    fn cached_domain_access(&self, key: &str, domain_id: &str, now_ms: Option<i64>) -> Option<String> {
        self.inner.cached_domain_access(key, domain_id, now(now_ms))
    }

    /// The tokens of every stage of chain `key` as a versioned JSON document (no credentials).
    fn chain_state(&self, key: &str) -> Option<String> {
        self.inner.chain_state(key)
    }

    /// Restores a document of `chain_state` (or `DomainClient.save_state`) into chain `key`.
    fn set_chain_state(&mut self, key: &str, state_json: &str) -> PyResult<()> {
        self.inner.set_chain_state(key, state_json).map_err(|error| to_pyerr(&error))
    }

    fn __repr__(&self) -> &'static str {
        "JsonEngine()"
    }
}

fn now(now: Option<i64>) -> i64 {
    now.unwrap_or_else(now_ms)
}

/// Milliseconds since the Unix epoch.
#[pyfunction]
pub fn current_time_ms() -> i64 {
    now_ms()
}

/// True when `expires_at_ms` is known and not after `now_ms` (default: now).
#[pyfunction]
#[pyo3(signature = (expires_at_ms, now_ms = None))]
pub fn is_expired(expires_at_ms: Option<i64>, now_ms: Option<i64>) -> bool {
    is_expired_ms(expires_at_ms, now(now_ms))
}

/// True when `expires_at_ms` is known and within `threshold_ms` of `now_ms` (default: now), or past.
#[pyfunction]
#[pyo3(signature = (expires_at_ms, threshold_ms, now_ms = None))]
pub fn is_near_expiry(expires_at_ms: Option<i64>, threshold_ms: u64, now_ms: Option<i64>) -> bool {
    is_near_expiry_ms(expires_at_ms, now(now_ms), threshold_ms)
}
