//! Token stores: the Rust `MemoryStore` and `FileStore`, and any Python object with
//! `load(key)`, `save(key, tokens)` and optionally `clear(key)`, sync or async, as a Rust
//! `TokenStore`. Sync methods run on a blocking thread (never on the event loop, never on a
//! runtime worker); async ones are awaited on the event loop of the call that needs them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use tessera::store::{FileStore, MemoryStore, TokenStore};
use tessera::{Error, StoreErrorKind, TokenSet};

use crate::errors::from_python;
use crate::runtime::{LOOP, block_on};
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

#[pymethods]
impl PyFileStore {
    #[new]
    fn py_new(path: std::path::PathBuf) -> Self {
        PyFileStore { store: Arc::new(FileStore::new(path.clone())), dir: path }
    }

    /// The directory.
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
    object: Py<PyAny>,
    load_is_async: bool,
    save_is_async: bool,
    clear: Option<bool>,
    location: String,
}

impl std::fmt::Debug for PythonStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonStore").field("location", &self.location).finish_non_exhaustive()
    }
}

type PyFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

enum Plan {
    /// Awaited on the caller's event loop.
    OnLoop(PyFuture),
    /// No event loop (the sync API): run with `asyncio.run` on a blocking thread.
    Run(Py<PyAny>),
}

impl PythonStore {
    fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = object.py();
        for required in ["load", "save"] {
            if !object.getattr(required).is_ok_and(|method| method.is_callable()) {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "store must be a MemoryStore, a FileStore, or an object with load(key) and save(key, tokens) \
                     methods (and optionally clear(key)), sync or async",
                ));
            }
        }
        let inspect = py.import("inspect")?;
        let is_async = |name: &str| -> PyResult<bool> {
            inspect.call_method1("iscoroutinefunction", (object.getattr(name)?,))?.extract()
        };
        let clear = match object.getattr("clear") {
            Ok(method) if method.is_callable() => Some(is_async("clear")?),
            _ => None,
        };
        Ok(PythonStore {
            object: object.clone().unbind(),
            load_is_async: is_async("load")?,
            save_is_async: is_async("save")?,
            clear,
            location: format!("{}()", object.get_type().name()?),
        })
    }

    async fn call(
        &self,
        name: &'static str,
        is_async: bool,
        key: &str,
        tokens: Option<&TokenSet>,
    ) -> Result<Py<PyAny>, Error> {
        let fail = |error: PyErr| from_python(&self.location, error);
        let (key, tokens) = (key.to_owned(), tokens.cloned());
        let object = Python::attach(|py| self.object.clone_ref(py));
        if !is_async {
            return self
                .blocking(move || {
                    Python::attach(|py| Ok(object.bind(py).call_method1(name, arguments(py, &key, tokens)?)?.unbind()))
                })
                .await;
        }
        let plan = Python::attach(|py| -> PyResult<Plan> {
            let coroutine = object.bind(py).call_method1(name, arguments(py, &key, tokens)?)?;
            Ok(match LOOP.try_with(Clone::clone) {
                Ok(locals) => Plan::OnLoop(Box::pin(pyo3_async_runtimes::into_future_with_locals(&locals, coroutine)?)),
                Err(_) => Plan::Run(coroutine.unbind()),
            })
        })
        .map_err(fail)?;
        match plan {
            Plan::OnLoop(future) => future.await.map_err(fail),
            Plan::Run(coroutine) => {
                self.blocking(move || {
                    Python::attach(|py| Ok(py.import("asyncio")?.call_method1("run", (coroutine,))?.unbind()))
                })
                .await
            }
        }
    }

    async fn blocking(&self, call: impl FnOnce() -> PyResult<Py<PyAny>> + Send + 'static) -> Result<Py<PyAny>, Error> {
        match tokio::task::spawn_blocking(call).await {
            Ok(result) => result.map_err(|error| from_python(&self.location, error)),
            Err(_) => Err(Error::store(StoreErrorKind::Io, &self.location, "the store callback panicked")),
        }
    }
}

#[async_trait]
impl TokenStore for PythonStore {
    async fn load(&self, key: &str) -> Result<Option<TokenSet>, Error> {
        let loaded = self.call("load", self.load_is_async, key, None).await?;
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
        self.call("save", self.save_is_async, key, Some(tokens)).await.map(drop)
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        match self.clear {
            Some(is_async) => self.call("clear", is_async, key, None).await.map(drop),
            None => Ok(()),
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}
