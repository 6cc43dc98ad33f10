//! Token stores: the Rust `MemoryStore` and `FileStore`, and any Python object with
//! `load(key)`, `save(key, tokens)` and optionally `clear(key)`, sync or async, as a Rust
//! `TokenStore`. Sync methods run on a blocking thread (never on the event loop, never on a
//! runtime worker); async ones are awaited on the event loop of the call that needs them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use tessera::store::{FileStore, MemoryStore, OpenedStore, RedisSettings, RedisStore, StoreConfig, TokenStore};
use tessera::{Error, StoreErrorKind, TokenSet};

use crate::callback::Callback;
use crate::errors::{configuration, to_pyerr};
use crate::runtime::block_on;
use crate::time::Seconds;
use crate::tokens::PyTokenSet;

/// Tokens in this process's memory only (the default).
#[pyclass(name = "MemoryStore", module = "tessera._tessera", frozen)]
pub struct PyMemoryStore {
    pub(crate) store: Arc<dyn TokenStore>,
}

#[pymethods]
impl PyMemoryStore {
    #[new]
    fn py_new() -> Self {
        PyMemoryStore { store: Arc::new(MemoryStore::new()) }
    }

    /// The tokens saved under `key`, if any.
    fn load(&self, py: Python<'_>, key: String) -> PyResult<Option<PyTokenSet>> {
        load(py, &self.store, key)
    }

    /// Saves `tokens` under `key`.
    fn save(&self, py: Python<'_>, key: String, tokens: PyRef<'_, PyTokenSet>) -> PyResult<()> {
        save(py, &self.store, key, tokens.inner.clone())
    }

    /// Removes `key`.
    fn clear(&self, py: Python<'_>, key: String) -> PyResult<()> {
        clear(py, &self.store, key)
    }

    fn __repr__(&self) -> &'static str {
        "MemoryStore()"
    }
}

/// Tokens in `path/tokens.json` (mode 0600, directory 0700, replaced atomically), shared by the
/// processes of this user on this machine, with a file lock around refreshes.
#[pyclass(name = "FileStore", module = "tessera._tessera", frozen)]
pub struct PyFileStore {
    pub(crate) store: Arc<dyn TokenStore>,
    dir: std::path::PathBuf,
}

/// A path given by a Python caller (`str` or `os.PathLike`), `~` expanded as `os.path.expanduser`
/// does: `FileStore("~/.cache/my-app")` is in the home directory, as in a shell.
pub(crate) fn user_path(path: &Bound<'_, PyAny>) -> PyResult<std::path::PathBuf> {
    let os = path.py().import("os")?;
    let path = os.call_method1("fspath", (path,))?;
    os.getattr("path")?.call_method1("expanduser", (path,))?.extract()
}

#[pymethods]
impl PyFileStore {
    /// A store in the directory `path` (`str` or `os.PathLike`; a leading `~` is the home
    /// directory), created with mode 0700 on first write. Nothing is touched until used.
    #[new]
    fn py_new(path: &Bound<'_, PyAny>) -> PyResult<Self> {
        let path = user_path(path)?;
        Ok(PyFileStore { store: Arc::new(FileStore::new(path.clone())), dir: path })
    }

    /// The directory (`~` expanded).
    #[getter]
    fn path(&self) -> std::path::PathBuf {
        self.dir.clone()
    }

    /// The tokens saved under `key`, if any.
    fn load(&self, py: Python<'_>, key: String) -> PyResult<Option<PyTokenSet>> {
        load(py, &self.store, key)
    }

    /// Saves `tokens` under `key`.
    fn save(&self, py: Python<'_>, key: String, tokens: PyRef<'_, PyTokenSet>) -> PyResult<()> {
        save(py, &self.store, key, tokens.inner.clone())
    }

    /// Removes `key`.
    fn clear(&self, py: Python<'_>, key: String) -> PyResult<()> {
        clear(py, &self.store, key)
    }

    fn __repr__(&self) -> String {
        format!("FileStore({})", crate::quote(&self.dir.to_string_lossy()))
    }
}

/// Tokens in Redis, shared by every process and machine that reaches it: values with a TTL, and a
/// lease lock with a fencing token around refreshes (`SET NX PX`, renewed while held).
#[pyclass(name = "RedisStore", module = "tessera._tessera", frozen)]
pub struct PyRedisStore {
    pub(crate) store: Arc<dyn TokenStore>,
    redis: RedisStore,
}

#[pymethods]
impl PyRedisStore {
    /// `url`: `redis://[user:password@]host[:port][/db]` or `rediss://...`. Nothing connects until
    /// the store is used. `ca_certificate`: PEM bytes or a path, to trust a private CA (rediss).
    #[new]
    #[pyo3(signature = (url, *, prefix = "tessera:", lease = Seconds::Number(3.0), command_timeout = Seconds::Number(2.0),
        min_ttl = Seconds::Number(300.0), ca_certificate = None))]
    fn py_new(
        url: &str,
        prefix: &str,
        lease: Seconds<'_>,
        command_timeout: Seconds<'_>,
        min_ttl: Seconds<'_>,
        ca_certificate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let lease = lease.duration()?;
        if lease < Duration::from_millis(100) {
            return Err(configuration("lease must be at least 0.1 s"));
        }
        let command_timeout = command_timeout.duration()?;
        if command_timeout.is_zero() {
            return Err(configuration("command_timeout must be positive"));
        }
        let ca_certificate_pem = match ca_certificate.filter(|value| !value.is_none()) {
            None => None,
            Some(value) => Some(match value.extract::<Vec<u8>>() {
                Ok(pem) if value.is_instance_of::<pyo3::types::PyBytes>() => pem,
                _ => {
                    let path = user_path(value)
                        .map_err(|_| configuration("ca_certificate must be PEM bytes or the path of a PEM file"))?;
                    tessera::store::read_ca_file(&path, "ca_certificate").map_err(|error| to_pyerr(&error))?
                }
            }),
        };
        let settings = RedisSettings {
            prefix: prefix.to_owned(),
            lease,
            command_timeout,
            min_ttl: min_ttl.duration()?,
            ca_certificate_pem,
            ..RedisSettings::default()
        };
        let redis = RedisStore::with_settings(url, settings).map_err(|error| to_pyerr(&error))?;
        Ok(PyRedisStore { store: Arc::new(redis.clone()), redis })
    }

    /// The key prefix (namespace).
    #[getter]
    fn prefix(&self) -> &str {
        &self.redis.settings().prefix
    }

    /// The Redis key that holds the tokens of `key`.
    fn tokens_key(&self, key: &str) -> String {
        self.redis.tokens_key(key)
    }

    /// The Redis key of `key`'s refresh lock.
    fn lock_key(&self, key: &str) -> String {
        self.redis.lock_key(key)
    }

    /// The tokens saved under `key`, if any.
    fn load(&self, py: Python<'_>, key: String) -> PyResult<Option<PyTokenSet>> {
        load(py, &self.store, key)
    }

    /// Saves `tokens` under `key`.
    fn save(&self, py: Python<'_>, key: String, tokens: PyRef<'_, PyTokenSet>) -> PyResult<()> {
        save(py, &self.store, key, tokens.inner.clone())
    }

    /// Removes `key`.
    fn clear(&self, py: Python<'_>, key: String) -> PyResult<()> {
        clear(py, &self.store, key)
    }

    fn __repr__(&self) -> String {
        // The location has the URL's password replaced by `***`.
        format!("RedisStore({})", crate::quote(&self.store.location()))
    }
}

/// Opens the store a configuration mapping describes, like a context's `store = { ... }` in the
/// TOML configuration: `{"kind": "memory"}`, `{"kind": "file", "dir": ...}` or
/// `{"kind": "redis", "url": "env:REDIS_URL", "prefix": ..., "lease_ms": ..., "ca_file": ...}`.
/// `url` may be a reference (`env:NAME`, `file:PATH`). A `file` store without `dir` lives in
/// `default_dir`, else in tessera's token directory (`$TESSERA_HOME/tokens` or the platform's).
#[pyfunction]
#[pyo3(signature = (config, *, default_dir = None))]
pub(crate) fn open_store<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    default_dir: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let default_dir = default_dir.filter(|dir| !dir.is_none()).map(user_path).transpose()?;
    let json: String = py.import("json")?.call_method1("dumps", (config,))?.extract()?;
    // serde quotes the value it refused (a store kind, a URL with a password): not repeated.
    let config: StoreConfig = serde_json::from_str(&json).map_err(|e| {
        configuration(format!("store config: {}", tessera::core::provider_spec::without_quoted(&e.to_string())))
    })?;
    let default_dir = match default_dir {
        Some(dir) => dir,
        None => match &config {
            StoreConfig::File { dir: None } => {
                tessera::config::Paths::from_env().map_err(|error| to_pyerr(&error))?.store_dir
            }
            _ => std::path::PathBuf::new(),
        },
    };
    match tessera::store::open_by_kind(&config, &default_dir).map_err(|error| to_pyerr(&error))? {
        OpenedStore::Memory(store) => Ok(Bound::new(py, PyMemoryStore { store: Arc::new(store) })?.into_any()),
        OpenedStore::File(store) => {
            let dir = store.dir().to_path_buf();
            Ok(Bound::new(py, PyFileStore { store: Arc::new(store), dir })?.into_any())
        }
        OpenedStore::Redis(redis) => {
            Ok(Bound::new(py, PyRedisStore { store: Arc::new(redis.clone()), redis })?.into_any())
        }
        // A kind this binding has no class for (from a newer tessera).
        other => Ok(Bound::new(py, PyOpaqueStore { store: other.into_dyn() })?.into_any()),
    }
}

/// A store of a kind this binding has no class for (from a newer configuration format).
#[pyclass(name = "OpaqueStore", module = "tessera._tessera", frozen)]
pub struct PyOpaqueStore {
    pub(crate) store: Arc<dyn TokenStore>,
}

#[pymethods]
impl PyOpaqueStore {
    fn __repr__(&self) -> String {
        format!("OpaqueStore({})", crate::quote(&self.store.location()))
    }
}

fn load(py: Python<'_>, store: &Arc<dyn TokenStore>, key: String) -> PyResult<Option<PyTokenSet>> {
    let store = Arc::clone(store);
    Ok(block_on(py, async move { store.load(&key).await })?.map(PyTokenSet::new))
}

fn save(py: Python<'_>, store: &Arc<dyn TokenStore>, key: String, tokens: TokenSet) -> PyResult<()> {
    let store = Arc::clone(store);
    block_on(py, async move { store.save(&key, &tokens).await })
}

fn clear(py: Python<'_>, store: &Arc<dyn TokenStore>, key: String) -> PyResult<()> {
    let store = Arc::clone(store);
    block_on(py, async move { store.clear(&key).await })
}

/// The store behind a `store=` argument, and its description for `repr`.
pub(crate) fn resolve(store: Option<&Bound<'_, PyAny>>) -> PyResult<(Arc<dyn TokenStore>, String)> {
    let Some(store) = store.filter(|store| !store.is_none()) else {
        return Ok((Arc::new(MemoryStore::new()), "MemoryStore()".to_owned()));
    };
    if let Ok(memory) = store.extract::<PyRef<'_, PyMemoryStore>>() {
        return Ok((Arc::clone(&memory.store), memory.__repr__().to_owned()));
    }
    if let Ok(file) = store.extract::<PyRef<'_, PyFileStore>>() {
        return Ok((Arc::clone(&file.store), file.__repr__()));
    }
    if let Ok(redis) = store.extract::<PyRef<'_, PyRedisStore>>() {
        return Ok((Arc::clone(&redis.store), redis.__repr__()));
    }
    if let Ok(opaque) = store.extract::<PyRef<'_, PyOpaqueStore>>() {
        return Ok((Arc::clone(&opaque.store), opaque.__repr__()));
    }
    let python = PythonStore::new(store)?;
    let description = python.location.clone();
    Ok((Arc::new(python), description))
}

fn arguments<'py>(py: Python<'py>, key: &str, tokens: Option<TokenSet>) -> PyResult<Bound<'py, PyTuple>> {
    let key = PyString::new(py, key).into_any();
    match tokens {
        Some(tokens) => PyTuple::new(py, [key, Bound::new(py, PyTokenSet::new(tokens))?.into_any()]),
        None => PyTuple::new(py, [key]),
    }
}

/// A Python object used as a [`TokenStore`].
pub(crate) struct PythonStore {
    load: Callback,
    save: Callback,
    clear: Option<Callback>,
    location: String,
}

impl std::fmt::Debug for PythonStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonStore").field("location", &self.location).finish_non_exhaustive()
    }
}

impl PythonStore {
    fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let missing = || {
            pyo3::exceptions::PyTypeError::new_err(
                "store must be a MemoryStore, a FileStore, a RedisStore, or an object with load(key) and \
                 save(key, tokens) methods (and optionally clear(key)), sync or async",
            )
        };
        let location = format!("{}()", object.get_type().name()?);
        let with_location = |callback: Callback| callback.named(location.clone());
        Ok(PythonStore {
            load: with_location(Callback::method(object, "load")?.ok_or_else(missing)?),
            save: with_location(Callback::method(object, "save")?.ok_or_else(missing)?),
            clear: Callback::method(object, "clear")?.map(with_location),
            location,
        })
    }

    async fn call(&self, callback: &Callback, key: &str, tokens: Option<&TokenSet>) -> Result<Py<PyAny>, Error> {
        let (key, tokens) = (key.to_owned(), tokens.cloned());
        callback.call_async(move |py| arguments(py, &key, tokens)).await
    }
}

#[async_trait]
impl TokenStore for PythonStore {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        let loaded = self.call(&self.load, key, None).await?;
        Python::attach(|py| {
            let loaded = loaded.bind(py);
            if loaded.is_none() {
                return Ok(None);
            }
            if let Ok(tokens) = loaded.extract::<PyRef<'_, PyTokenSet>>() {
                return Ok(Some(tokens.inner.clone()));
            }
            let json = match loaded.extract::<String>() {
                Ok(json) => Some(json),
                Err(_) => py
                    .import("json")
                    .and_then(|json| json.call_method1("dumps", (loaded,)))
                    .and_then(|dumped| dumped.extract::<String>())
                    .ok(),
            };
            match json.map(|json| crate::tokens::parse(&json)) {
                Some(Ok(tokens)) => Ok(Some(tokens)),
                _ => Err(Error::store(
                    StoreErrorKind::Corrupt,
                    &self.location,
                    "load() must return a TokenSet, its to_json() text or a dict of it, or None",
                )),
            }
        })
    }

    async fn save(&self, key: &str, tokens: &TokenSet) -> Result<(), Error> {
        self.call(&self.save, key, Some(tokens)).await.map(drop)
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        match &self.clear {
            Some(clear) => self.call(clear, key, None).await.map(drop),
            None => Ok(()),
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}
