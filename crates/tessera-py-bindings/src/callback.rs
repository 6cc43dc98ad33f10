//! Calling Python code from the Rust session: stores, prompters, refresh policies, hooks and
//! custom providers are Python objects whose methods may be sync or `async def`.
//!
//! - From async Rust ([`call_async`]): a sync method runs under `spawn_blocking` (never on the
//!   event loop, never on a tokio worker); a coroutine is awaited on the event loop of the async
//!   call being served, or, from the sync API (no loop), run by `asyncio.run` on a blocking thread.
//! - From sync Rust trait methods ([`call_sync`], the refresh policy and hooks): the call runs
//!   under `block_in_place`, so the tokio worker hands its other tasks to another thread while
//!   Python runs; a coroutine is submitted to the serving event loop and waited for.
//!
//! An exception becomes a `tessera::Error` that [`crate::errors::to_pyerr`] turns back into the
//! very same exception object.

use std::future::Future;
use std::pin::Pin;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tessera::Error;

use crate::errors::from_python_raised_in;
use crate::runtime::LOOP;

type PyFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

enum Plan {
    /// Awaited on the caller's event loop.
    OnLoop(PyFuture),
    /// No event loop (the sync API): run with `asyncio.run` on a blocking thread.
    Run(Py<PyAny>),
}

/// Whether `function` is an `async def` (checked once, when the object is given to tessera).
pub(crate) fn is_async(function: &Bound<'_, PyAny>) -> PyResult<bool> {
    let inspect = function.py().import("inspect")?;
    if inspect.call_method1("iscoroutinefunction", (function,))?.extract()? {
        return Ok(true);
    }
    // A callable object (not a function or method) whose __call__ is async.
    let plain: bool = inspect.call_method1("isroutine", (function,))?.extract()?;
    match function.getattr("__call__") {
        Ok(call) if !plain => inspect.call_method1("iscoroutinefunction", (call,))?.extract(),
        _ => Ok(false),
    }
}

/// A Python callable that tessera calls back, with whether it is async.
pub(crate) struct Callback {
    function: Py<PyAny>,
    is_async: bool,
    /// Names the callback in errors (`MyStore.load`, `prompter`).
    pub(crate) location: String,
    /// The function as first named (`MyStore.load`), kept by [`Callback::named`]: where a listing
    /// says its exception was raised.
    raised_in: String,
}

impl Callback {
    /// `function`, described as `location` in errors.
    pub(crate) fn new(function: &Bound<'_, PyAny>, location: impl Into<String>) -> PyResult<Self> {
        let location = location.into();
        Ok(Callback {
            function: function.clone().unbind(),
            is_async: is_async(function)?,
            raised_in: location.clone(),
            location,
        })
    }

    /// The method `name` of `object`, if it has a callable one.
    pub(crate) fn method(object: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<Self>> {
        match object.getattr(name) {
            Ok(method) if method.is_callable() => {
                let owner = object.get_type().name()?;
                Ok(Some(Callback::new(&method, format!("{owner}.{name}"))?))
            }
            _ => Ok(None),
        }
    }

    /// The same callback, described as `location` in errors (a listing still names the method).
    pub(crate) fn named(self, location: String) -> Self {
        Callback { location, ..self }
    }

    fn fail(&self, error: PyErr) -> Error {
        from_python_raised_in(&self.location, &self.raised_in, error)
    }

    /// Calls it from async Rust with the arguments `args` builds (under the GIL).
    pub(crate) async fn call_async<A>(&self, args: A) -> Result<Py<PyAny>, Error>
    where
        A: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send + 'static,
    {
        self.call_async_raw(args).await.map_err(|error| self.fail(error))
    }

    /// [`Callback::call_async`], with the Python exception as it was raised (for a caller that
    /// maps it itself: the transport reads a `TransportError`'s kind).
    pub(crate) async fn call_async_raw<A>(&self, args: A) -> PyResult<Py<PyAny>>
    where
        A: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send + 'static,
    {
        let function = Python::attach(|py| self.function.clone_ref(py));
        if !self.is_async {
            return blocking(Box::new(move || Python::attach(|py| Ok(function.bind(py).call1(args(py)?)?.unbind()))))
                .await;
        }
        let plan = Python::attach(|py| -> PyResult<Plan> {
            let coroutine = function.bind(py).call1(args(py)?)?;
            Ok(match LOOP.try_with(Clone::clone) {
                Ok(locals) => Plan::OnLoop(Box::pin(pyo3_async_runtimes::into_future_with_locals(&locals, coroutine)?)),
                Err(_) => Plan::Run(coroutine.unbind()),
            })
        })?;
        match plan {
            Plan::OnLoop(future) => future.await,
            Plan::Run(coroutine) => {
                blocking(Box::new(move || {
                    Python::attach(|py| Ok(py.import("asyncio")?.call_method1("run", (coroutine,))?.unbind()))
                }))
                .await
            }
        }
    }

    /// Calls it from a sync Rust trait method running on the tokio runtime (or under
    /// `Runtime::block_on`), then converts the result under the GIL with `convert`.
    pub(crate) fn call_sync<A, T>(
        &self,
        args: A,
        convert: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> Result<T, Error>
    where
        A: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
    {
        let locals = LOOP.try_with(Clone::clone).ok();
        let run = || {
            Python::attach(|py| -> PyResult<T> {
                let result = self.function.bind(py).call1(args(py)?)?;
                let result = if self.is_async {
                    match &locals {
                        // The serving loop is free (it awaits the tessera future that runs this):
                        // hand the coroutine to it and wait, the GIL released by `result()`.
                        Some(locals) => py
                            .import("asyncio")?
                            .call_method1("run_coroutine_threadsafe", (result, locals.event_loop(py)))?
                            .call_method0("result")?,
                        None => py.import("asyncio")?.call_method1("run", (result,))?,
                    }
                } else {
                    result
                };
                convert(&result)
            })
        };
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        };
        result.map_err(|error| self.fail(error))
    }
}

/// Runs a sync call on a blocking thread (never on the event loop, never on a tokio worker).
/// Boxed: one blocking-task type for every callback instead of one per caller (code size; see
/// `runtime::spawn`).
async fn blocking(call: Box<dyn FnOnce() -> PyResult<Py<PyAny>> + Send>) -> PyResult<Py<PyAny>> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => result,
        Err(_) => Err(pyo3::exceptions::PyRuntimeError::new_err("the Python callback panicked")),
    }
}
