//! Rust `tracing` events of tessera, forwarded to Python `logging` (logger `tessera`).
//!
//! Levels map TRACE→5, DEBUG→10, INFO→20, WARN→30, ERROR→40. A record's message is the event's
//! message and fields, then the fields of the spans it happened in (e.g. `tessera.refresh{key=...
//! reason=Startup source=Network attempt=1}`); `record.tessera_target` is the Rust module path.
//! tessera never puts a secret in an event (tokens and passwords are `Secret`s that format as
//! `[redacted]`), so nothing here filters. Only tessera's own targets are forwarded: the HTTP and
//! TLS libraries underneath stay silent, and an event costs nothing unless it happens (events sit
//! on the refresh path only, never on the cached-header path). Records below WARNING are dropped
//! while the program has not imported `logging` (nobody can be listening): the import alone costs
//! more than the rest of a script that prints a stored token.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Installs the forwarding subscriber, unless the process already has a global one (an
/// application embedding Python that set its own keeps it).
pub(crate) fn install() {
    let filter = tracing_subscriber::filter::filter_fn(|metadata| metadata.target().starts_with("tessera"));
    let subscriber = tracing_subscriber::registry().with(PythonLogging.with_filter(filter));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// `key=value` text of a span's or an event's fields; the `message` field apart.
#[derive(Default)]
struct Fields {
    message: String,
    text: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}

struct PythonLogging;

fn python_level(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 5,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        Level::ERROR => 40,
    }
}

impl<S> Layer<S> for PythonLogging
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if crate::runtime::EXITING.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut text = fields.message;
        text.push_str(&fields.text);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let _ = write!(text, " [{}{{", span.name());
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    text.push_str(span_fields.text.trim_start());
                }
                text.push_str("}]");
            }
        }
        let level = python_level(metadata.level());
        let target = metadata.target();
        Python::attach(|py| {
            let forward = || -> PyResult<()> {
                // Importing `logging` costs milliseconds (it pulls in re, enum, traceback,
                // threading): more than everything else a short script printing a stored token
                // does. Below WARNING, a record shows only where someone configured a logger or a
                // handler, which imports `logging`: while it is not imported, nobody is listening.
                // Warnings and errors import it, as Python's last-resort handler prints them.
                if LOGGER.get(py).is_none() && level < 30 && !logging_imported(py)? {
                    return Ok(());
                }
                let logger = LOGGER
                    .get_or_try_init(py, || {
                        py.import("logging")?.call_method1("getLogger", ("tessera",)).map(Bound::unbind)
                    })?
                    .bind(py);
                if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    return Ok(());
                }
                let extra = PyDict::new(py);
                extra.set_item("tessera_target", target)?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("extra", extra)?;
                logger.call_method("log", (level, "%s", text.as_str()), Some(&kwargs))?;
                Ok(())
            };
            // A failing handler must not break the token operation that logged.
            if let Err(error) = forward() {
                error.print(py);
            }
        });
    }
}

/// Whether the application (or anything it loaded) imported `logging` already.
fn logging_imported(py: Python<'_>) -> PyResult<bool> {
    py.import("sys")?.getattr("modules")?.contains("logging")
}
