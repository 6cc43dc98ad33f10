//! Running Rust futures for Python: on the shared tokio runtime, awaited from asyncio
//! ([`spawn`]) or blocked on from a sync caller with the GIL released ([`block_on`]); and
//! [`Ready`], the awaitable of a value known at once (the hot path builds no future).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use tessera::Error;

use crate::errors::{configuration, to_pyerr};

tokio::task_local! {
    /// The event loop of the async call being served: where a Python store's coroutines run.
    pub(crate) static LOOP: TaskLocals;
}

/// Async operations started from Python and not finished yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Whether any async operation ever started (a process that never awaited tessera exits at once).
static EVER_SPAWNED: AtomicBool = AtomicBool::new(false);

struct InFlight;

impl InFlight {
    fn start() -> Self {
        EVER_SPAWNED.store(true, Ordering::Relaxed);
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An asyncio awaitable running `future` on the tokio runtime.
///
/// Generic only up to a box: every call site shares one tokio task type and one
/// pyo3-async-runtimes wrapper ([`spawn_erased`]). Each distinct future handed to tokio and
/// pyo3-async-runtimes costs a copy of their task machinery (~3-5 KB each, 60-odd call sites;
/// benches/README.md, "The wheel at 3 MB"); the box costs one allocation on a call that goes to
/// the network or a store anyway (a cached value never comes here, see [`Ready`]).
pub fn spawn<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    spawn_erased(
        py,
        Box::pin(async move {
            match future.await {
                Ok(value) => Ok(Deferred::new(value)),
                Err(error) => Err(to_pyerr(&error)),
            }
        }),
    )
}

/// [`spawn`] once its future is boxed.
fn spawn_erased<'py>(
    py: Python<'py>,
    future: Pin<Box<dyn Future<Output = PyResult<Deferred>> + Send>>,
) -> PyResult<Bound<'py, PyAny>> {
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let in_flight = InFlight::start();
    let scoped = LOOP.scope(locals.clone(), async move {
        let result = future.await;
        drop(in_flight);
        result
    });
    pyo3_async_runtimes::tokio::future_into_py_with_locals(py, locals, scoped)
}

/// A result of [`spawn`] whose conversion to Python waits for the GIL that pyo3-async-runtimes
/// takes to hand it over: the conversion of each result type, boxed, so that the task type
/// stays one.
struct Deferred(Box<ToPython>);

/// The conversion a [`Deferred`] holds.
type ToPython = dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send;

impl Deferred {
    fn new<T>(value: T) -> Self
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        Deferred(Box::new(move |py: Python<'_>| value.into_bound_py_any(py)))
    }
}

impl<'py> IntoPyObject<'py> for Deferred {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.0)(py)
    }
}

/// Registered with `atexit`: lets runtime threads finish handing results to Python before the
/// interpreter finalizes.
///
/// When an awaited operation completes, a tokio thread hands the result to the event loop
/// (`call_soon_threadsafe`) and then needs the GIL once more to return. A script whose last
/// statement is `asyncio.run(...)` can reach interpreter finalization before that thread gets the
/// GIL back; a thread taking the GIL during finalization is terminated in the middle of Rust
/// frames (an abort or a segfault at exit). Releasing the GIL here, while operations are in
/// flight and then briefly, lets such a thread finish first. Costs nothing in a process that
/// never awaited tessera (the cached-token path of a short script).
#[pyfunction]
pub(crate) fn _drain_before_exit(py: Python<'_>) {
    if !EVER_SPAWNED.load(Ordering::Relaxed) {
        EXITING.store(true, Ordering::Release);
        return;
    }
    py.detach(|| {
        let deadline = std::time::Instant::now() + DRAIN_LIMIT;
        while IN_FLIGHT.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // A thread that completed an operation is already waiting for the GIL: it takes it now.
        std::thread::sleep(DRAIN_GRACE);
    });
    EXITING.store(true, Ordering::Release);
}

/// Set once the interpreter is about to finalize: background work (a Redis lease renewal) must
/// no longer call into Python, e.g. to log.
pub(crate) static EXITING: AtomicBool = AtomicBool::new(false);

/// Longest wait at exit for operations still running (a task abandoned by its caller).
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);
/// The time given to threads waiting for the GIL at exit.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_millis(5);

/// Runs `future` to completion on the tokio runtime, with the GIL released meanwhile.
///
/// Generic only up to a `dyn` future, like [`spawn`]: the runtime's `block_on` and the signal
/// loop are compiled once ([`block_on_erased`]), not once per call site; the result comes back
/// through `output`.
pub fn block_on<F, T>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    let mut output = None;
    block_on_erased(py, std::pin::pin!(async { output = Some(future.await) }))?;
    match output {
        Some(result) => result.map_err(|error| to_pyerr(&error)),
        // `block_on_erased` returns Ok only once the future completed, which sets `output`.
        None => Err(PyRuntimeError::new_err("tessera: a blocking call returned before its future completed")),
    }
}

/// [`block_on`] once its future is `dyn`: `Ok` once `future` completed.
fn block_on_erased(py: Python<'_>, mut future: Pin<&mut (dyn Future<Output = ()> + Send + '_)>) -> PyResult<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(configuration(
            "tessera's sync API was called from inside its own runtime (e.g. from a store callback): use the async API",
        ));
    }
    let runtime = pyo3_async_runtimes::tokio::get_runtime();
    // Wake up now and then to let Python handle signals: Ctrl-C interrupts a slow network call
    // (dropping the future cancels it; the session and its store lock stay consistent).
    loop {
        // The timeout is made inside `block_on`: its timer needs the runtime's context.
        let step = py
            .detach(|| runtime.block_on(async { tokio::time::timeout(SIGNAL_CHECK_INTERVAL, future.as_mut()).await }));
        match step {
            Ok(()) => return Ok(()),
            Err(_) => py.check_signals()?,
        }
    }
}

/// How often a blocking call looks for pending Python signals (KeyboardInterrupt).
const SIGNAL_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// An awaitable whose value is already known: `await` returns it without an event loop round
/// trip, a thread hop or a future.
#[pyclass(name = "Ready", module = "tessera._tessera", frozen)]
pub struct Ready {
    value: Py<PyAny>,
}

impl Ready {
    /// `value` as an awaitable. `#[inline]`: compiled into the caller, `Client`'s cached-header
    /// methods, at their opt-level (3) rather than this crate's.
    #[inline]
    pub fn awaitable<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, Ready { value: value.unbind() })?.into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Err(PyStopIteration::new_err((self.value.clone_ref(py),)))
    }

    fn send(&self, py: Python<'_>, _value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.__next__(py)
    }

    #[pyo3(signature = (*_args))]
    fn throw(&self, _args: Bound<'_, pyo3::types::PyTuple>) -> PyResult<Py<PyAny>> {
        Err(pyo3::exceptions::PyRuntimeError::new_err("a Ready awaitable cannot be thrown into"))
    }

    fn close(&self) {}
}
