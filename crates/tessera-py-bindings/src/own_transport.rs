//! `transport=`: a `Client`'s requests sent by the caller's own Python HTTP stack (an
//! `httpx.Client`, an `httpx.AsyncClient`, or a callable `HttpRequest -> HttpResponse`).
//!
//! `tessera/_transport.py` turns what the caller gave into one sender,
//! `send(method, url, headers, body) -> (status, headers, body)`, and maps httpx's exceptions to a
//! `tessera.TransportError` whose `transport_kind` says the phase. Here that sender becomes a
//! `tessera::transport::Transport`: the engine, single flight, stores and policies are untouched,
//! and the session still checks the URL before the call and the body size after it.
//!
//! The one rule this layer owns: an exception that does not say its kind counts as
//! `ConnectionClosed` (the request may have been sent), never `Connect`, so that a refresh whose
//! fate is unknown spends its refresh token instead of presenting it again.

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tessera::core::{HttpRequest, HttpResponse};
use tessera::{Error, TransportErrorKind};

use crate::callback::Callback;

/// The caller's HTTP stack as a tessera transport.
pub(crate) struct PythonTransport {
    send: Callback,
}

impl PythonTransport {
    /// Wraps `transport` (what the caller gave) with `tessera._transport.adapt`. `timeout`: the
    /// client's (handed to a callable in its `HttpRequest`); `max_bytes`: where reading stops;
    /// `async_allowed`: false for `SyncClient` (an `httpx.AsyncClient` is refused there).
    pub(crate) fn new(
        transport: &Bound<'_, PyAny>,
        timeout: f64,
        max_bytes: usize,
        async_allowed: bool,
    ) -> PyResult<Self> {
        let py = transport.py();
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("timeout", timeout)?;
        kwargs.set_item("max_bytes", max_bytes)?;
        kwargs.set_item("async_allowed", async_allowed)?;
        let send = py.import("tessera._transport")?.getattr("adapt")?.call((transport,), Some(&kwargs))?;
        Ok(PythonTransport { send: Callback::new(&send, "transport")? })
    }
}

/// A Python exception raised while sending, as the transport error the engine understands.
fn transport_error(endpoint: &str, error: PyErr) -> Error {
    Python::attach(|py| {
        let value = error.value(py);
        let type_name = value.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "Exception".into());
        let said = py
            .import("tessera._errors")
            .and_then(|errors| errors.getattr("TransportError"))
            .is_ok_and(|class| value.is_instance(&class).unwrap_or(false));
        let (kind, message) = if said {
            let kind: Option<String> = value.getattr("transport_kind").and_then(|kind| kind.extract()).unwrap_or(None);
            let message = value.str().map(|text| text.to_string()).unwrap_or_default();
            (kind_named(kind.as_deref()), message)
        } else {
            // Not said what happened: it may have been sent. The message is not repeated (it is
            // the caller's code's, and could quote the request).
            (TransportErrorKind::ConnectionClosed, format!("{type_name} raised by the transport"))
        };
        Error::Transport { kind, endpoint: endpoint.to_owned(), message }
    })
}

fn kind_named(kind: Option<&str>) -> TransportErrorKind {
    match kind {
        Some("connect") => TransportErrorKind::Connect,
        Some("timeout") => TransportErrorKind::Timeout,
        Some("body_too_large") => TransportErrorKind::BodyTooLarge,
        Some("redirect") => TransportErrorKind::Redirect,
        Some("invalid_url") => TransportErrorKind::InvalidUrl,
        Some("certificate") => TransportErrorKind::Certificate,
        // `connection_closed`, `other`, or nothing said: the outcome is unknown.
        _ => TransportErrorKind::ConnectionClosed,
    }
}

#[async_trait]
impl tessera::transport::Transport for PythonTransport {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let endpoint = request.endpoint();
        let id = request.id;
        // Python copies of the request, made here: the Rust request (password, client secret or
        // refresh token in its body or headers) is zeroed when it drops below, as everywhere.
        let args = Python::attach(|py| -> PyResult<Py<PyTuple>> {
            let body = (!request.body.is_empty()).then(|| PyBytes::new(py, &request.body).into_any());
            let items = [
                request.method.as_str().into_pyobject(py)?.into_any(),
                request.url.as_str().into_pyobject(py)?.into_any(),
                request.headers.as_slice().into_pyobject(py)?,
                body.into_pyobject(py)?,
            ];
            Ok(PyTuple::new(py, items)?.unbind())
        })
        // Nothing was sent yet.
        .map_err(|error| Error::Transport {
            kind: TransportErrorKind::Other,
            endpoint: endpoint.clone(),
            message: format!("the request could not be handed to the transport: {error}"),
        })?;
        drop(request);
        let answer = self
            .send
            .call_async_raw(move |py| Ok(args.into_bound(py)))
            .await
            .map_err(|error| transport_error(&endpoint, error))?;
        let (status, headers, body) = Python::attach(|py| -> PyResult<(u16, Vec<(String, String)>, Vec<u8>)> {
            let answer = answer.bind(py);
            let status = answer.get_item(0)?.extract()?;
            let headers = answer.get_item(1)?.extract()?;
            let body = answer.get_item(2)?.cast::<PyBytes>()?.as_bytes().to_vec();
            Ok((status, headers, body))
        })
        .map_err(|error| transport_error(&endpoint, error))?;
        Ok(HttpResponse { request_id: id, status, headers, body })
    }
}
