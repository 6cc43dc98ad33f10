//! HTTP as data: what the core asks a runtime to send, and what the runtime feeds back.
//! Bodies and credential headers are redacted in `Debug` and zeroed on drop.

use std::fmt;

use zeroize::Zeroize;

/// Identifies a request so that its response can be matched to the flow that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
}

impl Method {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request the runtime must send.
pub struct HttpRequest {
    /// Echo this in the response.
    pub id: RequestId,
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers (name, value). May contain credentials (`Authorization`).
    pub headers: Vec<(String, String)>,
    /// Body bytes (a form, with secrets). Empty for GET.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The URL without its query string, for error messages.
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.url)
    }

    /// The value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Strips the query string and fragment: what is safe to put in an error message.
pub(crate) fn endpoint_of(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(name, value)| {
                if is_sensitive_header(name) { (name.as_str(), "[redacted]") } else { (name.as_str(), value.as_str()) }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("url", &self.endpoint())
            .field("headers", &headers)
            .field("body", &format_args!("[{} bytes redacted]", self.body.len()))
            .finish()
    }
}

fn is_sensitive_header(name: &str) -> bool {
    ["authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key", "dpop"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

impl Drop for HttpRequest {
    fn drop(&mut self) {
        self.body.zeroize();
        for (_, value) in &mut self.headers {
            value.zeroize();
        }
    }
}

/// A response fed back to the core.
pub struct HttpResponse {
    /// The id of the request this answers.
    pub request_id: RequestId,
    /// HTTP status.
    pub status: u16,
    /// Headers (name, value); only `Content-Type`, `Retry-After`, `WWW-Authenticate` and `DPoP-Nonce` are read.
    pub headers: Vec<(String, String)>,
    /// Body bytes (may contain tokens).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON response (tests, examples).
    pub fn json(request_id: RequestId, status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            request_id,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// The value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in delay-seconds form (an HTTP date is ignored).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(std::time::Duration::from_secs)
    }

    /// The media type without parameters, lower-cased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("request_id", &self.request_id)
            .field("status", &self.status)
            .field("content_type", &self.header("content-type"))
            .field("body", &format_args!("[{} bytes redacted]", self.body.len()))
            .finish()
    }
}

impl Drop for HttpResponse {
    fn drop(&mut self) {
        self.body.zeroize();
    }
}
