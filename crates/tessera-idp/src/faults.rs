//! Fault injection: the queue of faults tests push ([`FaultInjector`]), the fault types, their
//! JSON form for `POST /_test/faults` ([`FaultSpec`]), and the responses a fault renders.
//!
//! A fault is consumed by the next matching request and answered *instead of* the protocol
//! handler (except [`FaultKind::None`], which only delays). Applying it happens in the
//! per-endpoint middleware in `server.rs`; this module never touches sockets itself:
//! [`FaultKind::DropConnection`] is carried out by the connection kill switch in `conn.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEndpoint {
    /// `POST /token`.
    Token,
    /// `POST /revoke`.
    Revoke,
    /// `POST /introspect`.
    Introspect,
    /// The metadata documents: `GET /.well-known/openid-configuration`, RFC 8414's
    /// `/.well-known/oauth-authorization-server` and the demo resource's RFC 9728 metadata.
    Discovery,
    /// `GET /jwks`.
    Jwks,
    /// `GET /userinfo` and `GET /api/whoami`.
    Api,
    /// `GET`/`POST /authorize` and the device verification page `GET`/`POST /device`: the pages
    /// a person sees.
    Authorize,
    /// `POST /device_authorization`.
    DeviceAuthorization,
    /// `POST /otp/start` and `POST /otp/verify`.
    Otp,
    /// `POST /cognito`.
    Cognito,
    /// `POST /register` (RFC 7591).
    Register,
    /// Whichever of the endpoints above is requested next (never the `/_test/*` endpoints).
    Any,
}

/// What a fault does to the response.
///
/// JSON form (used by `POST /_test/faults`): internally tagged by `type`, snake_case, e.g.
/// `{"type":"status","status":503,"body":"busy","content_type":"text/plain"}`,
/// `{"type":"html_error_page","status":502}`, `{"type":"drop_connection"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// No change: only the fault's delay applies, then the request is handled normally.
    #[default]
    None,
    /// Answer with this status, body and `Content-Type`.
    Status {
        /// HTTP status code (an invalid code is answered as 500).
        status: u16,
        /// Response body.
        #[serde(default)]
        body: String,
        /// `Content-Type` header value.
        #[serde(default = "default_content_type")]
        content_type: String,
    },
    /// Like [`FaultKind::Status`], plus extra response headers (e.g. `Retry-After` on a 429, or
    /// `WWW-Authenticate` on a 401). JSON: `{"type":"status_with_headers","status":429,
    /// "headers":[["retry-after","1"]]}`.
    StatusWithHeaders {
        /// HTTP status code (an invalid code is answered as 500).
        status: u16,
        /// Response body.
        #[serde(default)]
        body: String,
        /// `Content-Type` header value.
        #[serde(default = "default_content_type")]
        content_type: String,
        /// Extra headers, `(name, value)`; invalid ones are skipped.
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// 200 with `Content-Type: application/json` and a truncated JSON body.
    MalformedJson,
    /// An HTML error page with this status, as a reverse proxy would send (e.g. 502).
    HtmlErrorPage {
        /// HTTP status code (an invalid code is answered as 502).
        status: u16,
    },
    /// 200 with `Content-Type: application/json` and a body of exactly `bytes` bytes.
    Oversize {
        /// Body length in bytes.
        bytes: usize,
    },
    /// 200 with `Content-Type: text/plain` and a body that looks like a valid token response.
    WrongContentType,
    /// Close the connection without sending any response byte: the client sees a connection
    /// error (e.g. "connection closed before message completed"), never an HTTP status.
    DropConnection,
}

fn default_content_type() -> String {
    "text/plain".to_owned()
}

/// A fault: an optional delay, then the [`FaultKind`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fault {
    /// Wait this long before answering. With [`FaultKind::None`] the request is handled first and
    /// its answer held back this long: a late answer to a request the server did process.
    pub delay: Option<Duration>,
    /// What to answer.
    pub kind: FaultKind,
}

impl Fault {
    /// A fault of `kind` without delay.
    pub fn new(kind: FaultKind) -> Self {
        Self { delay: None, kind }
    }

    /// A delay-only fault: the request is handled normally at once, and answered `delay` later.
    pub fn delay(delay: Duration) -> Self {
        Self { delay: Some(delay), kind: FaultKind::None }
    }

    /// A `status` response with a `text/plain` body.
    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self::new(FaultKind::Status { status, body: body.into(), content_type: default_content_type() })
    }

    /// A 429 with `Retry-After: {retry_after_secs}` and an empty `text/plain` body.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(FaultKind::StatusWithHeaders {
            status: 429,
            body: String::new(),
            content_type: default_content_type(),
            headers: vec![("retry-after".to_owned(), retry_after_secs.to_string())],
        })
    }

    /// What a resource server answers for a token it does not accept (RFC 6750 §3.1): 401 with
    /// `WWW-Authenticate: Bearer error="invalid_token"` and a JSON error body.
    pub fn invalid_token() -> Self {
        Self::new(FaultKind::StatusWithHeaders {
            status: 401,
            body: r#"{"error":"invalid_token","error_description":"rejected by fault injection"}"#.to_owned(),
            content_type: "application/json".to_owned(),
            headers: vec![(
                "www-authenticate".to_owned(),
                r#"Bearer realm="tessera-idp", error="invalid_token""#.to_owned(),
            )],
        })
    }

    /// Adds a delay before the fault is answered.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// JSON body of `POST /_test/faults`:
/// `{"endpoint":"token","times":1,"delay_ms":0,"kind":{"type":"status","status":500}}`.
/// `times` defaults to 1, `delay_ms` to 0 and `kind` to `{"type":"none"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Endpoint the fault applies to.
    pub endpoint: FaultEndpoint,
    /// How many requests it applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Delay before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// What to answer.
    #[serde(default)]
    pub kind: FaultKind,
}

fn one() -> u32 {
    1
}

impl FaultSpec {
    /// The [`Fault`] this spec describes.
    pub fn fault(&self) -> Fault {
        Fault { delay: (self.delay_ms > 0).then(|| Duration::from_millis(self.delay_ms)), kind: self.kind.clone() }
    }
}

#[derive(Debug)]
struct Queued {
    endpoint: FaultEndpoint,
    fault: Fault,
    remaining: u32,
}

/// Handle on the server's fault queue. Cheap to clone; all clones share one queue.
///
/// Faults apply in the order they were pushed: a request takes the oldest queued fault whose
/// endpoint is its own or [`FaultEndpoint::Any`].
///
/// ```no_run
/// # async fn f(server: &tessera_idp::IdpServer) {
/// use tessera_idp::{Fault, FaultEndpoint, FaultKind};
/// // The next two token requests get a 503, the one after that a dropped connection.
/// server.faults().push(FaultEndpoint::Token, Fault::status(503, "busy"), 2);
/// server.faults().push(FaultEndpoint::Token, Fault::new(FaultKind::DropConnection), 1);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    queue: Arc<Mutex<Vec<Queued>>>,
}

impl FaultInjector {
    /// Queues `fault` for the next `times` requests to `endpoint` (`times == 0` queues nothing).
    pub fn push(&self, endpoint: FaultEndpoint, fault: Fault, times: u32) {
        if times == 0 {
            return;
        }
        self.lock().push(Queued { endpoint, fault, remaining: times });
    }

    /// Removes every queued fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many more requests queued faults will apply to.
    pub fn pending(&self) -> u64 {
        self.lock().iter().map(|q| u64::from(q.remaining)).sum()
    }

    /// Takes one application of the oldest fault matching `endpoint`.
    pub(crate) fn take(&self, endpoint: FaultEndpoint) -> Option<Fault> {
        let mut queue = self.lock();
        let index = queue.iter().position(|q| q.endpoint == endpoint || q.endpoint == FaultEndpoint::Any)?;
        let entry = &mut queue[index];
        entry.remaining -= 1;
        if entry.remaining == 0 { Some(queue.remove(index).fault) } else { Some(entry.fault.clone()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The response of a fault kind that answers by itself; `None` for [`FaultKind::None`] and
/// [`FaultKind::DropConnection`], which the caller handles.
pub(crate) fn render(kind: &FaultKind) -> Option<Response> {
    let mut extra_headers: &[(String, String)] = &[];
    let (status, content_type, body): (StatusCode, &str, Vec<u8>) = match kind {
        FaultKind::None | FaultKind::DropConnection => return None,
        FaultKind::Status { status, body, content_type } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type,
            body.clone().into_bytes(),
        ),
        FaultKind::StatusWithHeaders { status, body, content_type, headers } => {
            extra_headers = headers;
            (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                content_type,
                body.clone().into_bytes(),
            )
        }
        FaultKind::MalformedJson => (
            StatusCode::OK,
            "application/json",
            br#"{"access_token":"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOi","token_type":"Bea"#.to_vec(),
        ),
        FaultKind::HtmlErrorPage { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            let page = format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
                 <center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n\
                 </body>\r\n</html>\r\n"
            );
            (status, "text/html", page.into_bytes())
        }
        FaultKind::Oversize { bytes } => (StatusCode::OK, "application/json", oversize(*bytes)),
        FaultKind::WrongContentType => (
            StatusCode::OK,
            "text/plain",
            br#"{"access_token":"plain-text-access-token","token_type":"Bearer","expires_in":300,"scope":"openid"}"#
                .to_vec(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let content_type =
        HeaderValue::from_str(content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    for (name, value) in extra_headers {
        if let (Ok(name), Ok(value)) = (header::HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            response.headers_mut().append(name, value);
        }
    }
    Some(response)
}

/// Exactly `len` bytes; a JSON object padded with spaces when there is room for one.
fn oversize(len: usize) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"padding":""#;
    const TAIL: &[u8] = br#""}"#;
    if len < HEAD.len() + TAIL.len() {
        return vec![b' '; len];
    }
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(HEAD);
    body.resize(len - TAIL.len(), b'x');
    body.extend_from_slice(TAIL);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_is_fifo_counts_down_and_honours_any() {
        let faults = FaultInjector::default();
        faults.push(FaultEndpoint::Token, Fault::status(500, "a"), 2);
        faults.push(FaultEndpoint::Any, Fault::status(501, "b"), 1);
        faults.push(FaultEndpoint::Revoke, Fault::status(502, "c"), 0);
        assert_eq!(faults.pending(), 3);

        assert_eq!(faults.take(FaultEndpoint::Revoke), Some(Fault::status(501, "b")));
        assert_eq!(faults.take(FaultEndpoint::Revoke), None);
        assert_eq!(faults.take(FaultEndpoint::Token), Some(Fault::status(500, "a")));
        assert_eq!(faults.take(FaultEndpoint::Token), Some(Fault::status(500, "a")));
        assert_eq!(faults.take(FaultEndpoint::Token), None);
        assert_eq!(faults.pending(), 0);
    }

    #[test]
    fn oversize_has_exact_length() {
        for len in [0, 5, 14, 15, 16, 1000] {
            assert_eq!(oversize(len).len(), len);
        }
        assert!(serde_json::from_slice::<serde_json::Value>(&oversize(1000)).is_ok());
    }

    #[test]
    fn spec_json_form() {
        let spec: FaultSpec = serde_json::from_str(
            r#"{"endpoint":"token","times":2,"delay_ms":5,
                "kind":{"type":"status","status":503,"body":"x"}}"#,
        )
        .unwrap();
        assert_eq!(spec.times, 2);
        assert_eq!(spec.fault(), Fault::status(503, "x").with_delay(Duration::from_millis(5)));

        let spec: FaultSpec = serde_json::from_str(r#"{"endpoint":"any"}"#).unwrap();
        assert_eq!((spec.times, spec.fault()), (1, Fault::default()));

        let kind: FaultKind = serde_json::from_str(r#"{"type":"drop_connection"}"#).unwrap();
        assert_eq!(kind, FaultKind::DropConnection);

        let kind: FaultKind =
            serde_json::from_str(r#"{"type":"status_with_headers","status":429,"headers":[["retry-after","1"]]}"#)
                .unwrap();
        assert_eq!(Fault::new(kind.clone()), Fault::too_many_requests(1));
        let response = render(&kind).unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
        let response = render(&Fault::invalid_token().kind).unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }
}
