//! Instants and durations given by Python callers: seconds as numbers, or `datetime`/`timedelta`.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use tessera::Timestamp;

use crate::errors::configuration;

static DATETIME: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Seconds as a number, or a `datetime.timedelta`.
#[derive(FromPyObject)]
pub enum Seconds<'py> {
    /// A number of seconds.
    Number(f64),
    /// Anything with `total_seconds()`.
    Delta(Bound<'py, PyAny>),
}

impl Seconds<'_> {
    /// Zero seconds (default arguments).
    pub(crate) const ZERO: Seconds<'static> = Seconds::Number(0.0);

    /// As a duration; negative values are refused.
    pub(crate) fn duration(&self) -> PyResult<Duration> {
        let seconds = match self {
            Seconds::Number(seconds) => *seconds,
            Seconds::Delta(delta) => delta.call_method0("total_seconds")?.extract()?,
        };
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| configuration("a duration must be a finite, non-negative number of seconds"))
    }
}

/// An instant: Unix seconds as a number, or an aware `datetime.datetime`.
pub(crate) fn instant(value: &Bound<'_, PyAny>) -> PyResult<Timestamp> {
    let seconds: f64 = match value.extract::<f64>() {
        Ok(seconds) => seconds,
        Err(_) => value.call_method0("timestamp")?.extract()?,
    };
    if !seconds.is_finite() {
        return Err(configuration("an instant must be a finite number of Unix seconds or a datetime"));
    }
    Ok(Timestamp::from_unix_millis((seconds * 1000.0).round() as i64))
}

/// An aware UTC `datetime` for `timestamp`.
pub(crate) fn to_datetime<'py>(py: Python<'py>, timestamp: Timestamp) -> PyResult<Bound<'py, PyAny>> {
    let module = DATETIME.get_or_try_init(py, || py.import("datetime").map(Bound::unbind))?.bind(py);
    let utc = module.getattr("timezone")?.getattr("utc")?;
    module.getattr("datetime")?.call_method1("fromtimestamp", (timestamp.as_unix_millis() as f64 / 1000.0, utc))
}
