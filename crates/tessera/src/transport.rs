//! Sends the core's [`HttpRequest`]s with reqwest, and nothing else: timeouts, a response-size
//! limit, no redirects to another origin. Retries are the core's decision, not this layer's.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use tessera_core::{Error, HttpRequest, HttpResponse, Method, TransportErrorKind};

/// Limits for every request.
#[derive(Clone, Debug)]
pub struct TransportSettings {
    /// Whole-request limit (connect + send + receive). Default 30 s.
    pub timeout: Duration,
    /// Connect limit. Default 10 s.
    pub connect_timeout: Duration,
    /// Largest accepted response body. Default 1 MiB: a token response is a few KiB.
    pub max_response_bytes: usize,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
            user_agent: concat!("tessera/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An HTTP client for the core's requests. The reqwest client (and its TLS setup) is built on
/// first use, so that serving a cached token never pays for it.
#[derive(Debug, Default)]
pub struct HttpTransport {
    settings: TransportSettings,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl HttpTransport {
    /// A transport with these limits.
    pub fn new(settings: TransportSettings) -> Self {
        HttpTransport { settings, client: OnceLock::new() }
    }

    /// The limits.
    pub fn settings(&self) -> &TransportSettings {
        &self.settings
    }

    fn client(&self, endpoint: &str) -> Result<&reqwest::Client, Error> {
        self.client.get_or_init(|| build_client(&self.settings)).as_ref().map_err(|message| Error::Transport {
            kind: TransportErrorKind::Other,
            endpoint: endpoint.to_owned(),
            message: message.clone(),
        })
    }

    /// Sends one request and reads the whole (bounded) response.
    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let endpoint = request.endpoint();
        let fail = |kind, message: String| Error::Transport { kind, endpoint: endpoint.clone(), message };
        let url = reqwest::Url::parse(&request.url).map_err(|e| fail(TransportErrorKind::InvalidUrl, e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(TransportErrorKind::InvalidUrl, format!("unsupported scheme {}", url.scheme())));
        }
        let client = self.client(&endpoint)?;
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = client.request(method, url);
        for (name, value) in &request.headers {
            let mut value = http::HeaderValue::from_str(value)
                .map_err(|_| fail(TransportErrorKind::InvalidUrl, format!("invalid value for header {name}")))?;
            if name.eq_ignore_ascii_case("authorization") {
                value.set_sensitive(true);
            }
            builder = builder.header(name.as_str(), value);
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        let response = builder.send().await.map_err(|e| classify(&e, &endpoint))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| matches!(name.as_str(), "content-type" | "retry-after" | "www-authenticate"))
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        if response.content_length().is_some_and(|len| len > self.settings.max_response_bytes as u64) {
            return Err(too_large(&endpoint, self.settings.max_response_bytes));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&e, &endpoint))?;
            if body.len() + chunk.len() > self.settings.max_response_bytes {
                return Err(too_large(&endpoint, self.settings.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { request_id: request.id, status, headers, body })
    }
}

fn too_large(endpoint: &str, limit: usize) -> Error {
    Error::Transport {
        kind: TransportErrorKind::BodyTooLarge,
        endpoint: endpoint.to_owned(),
        message: format!("response body exceeds {limit} bytes"),
    }
}

fn build_client(settings: &TransportSettings) -> Result<reqwest::Client, String> {
    // reqwest is built without a bundled crypto provider (ring builds in a fraction of aws-lc's
    // time). Install ring only when the application has not installed a provider of its own.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .user_agent(settings.user_agent.clone())
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // Same origin only: a redirect must never carry a form with credentials to another host.
            let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
            if attempt.previous().len() >= 3 || !same_origin {
                attempt.error("redirect to another origin refused")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

fn classify(error: &reqwest::Error, endpoint: &str) -> Error {
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_redirect() {
        TransportErrorKind::Redirect
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_body() || error.is_request() || error.is_decode() {
        TransportErrorKind::ConnectionClosed
    } else {
        TransportErrorKind::Other
    };
    Error::Transport { kind, endpoint: endpoint.to_owned(), message: describe(error) }
}

/// reqwest's message plus its causes, without the URL (which may carry a query string).
fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::RequestId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-route HTTP server: `/start` redirects to `location(port)`, anything else answers JSON.
    async fn redirecting_server(location: fn(u16) -> String) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for _ in 0..4 {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut buffer = vec![0u8; 4096];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).to_string();
                let response = if request.starts_with("POST /start") || request.starts_with("GET /start") {
                    format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        location(port)
                    )
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_owned()
                };
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        port
    }

    fn post(url: String) -> HttpRequest {
        HttpRequest { id: RequestId(1), method: Method::Post, url, headers: vec![], body: b"password=secret".to_vec() }
    }

    #[tokio::test]
    async fn redirects_stay_on_their_origin() {
        let transport = HttpTransport::default();
        let port = redirecting_server(|port| format!("http://127.0.0.1:{port}/next")).await;
        let response = transport.execute(post(format!("http://127.0.0.1:{port}/start"))).await.unwrap();
        assert_eq!(response.status, 200, "same-origin redirect followed");

        // `localhost` is another origin than `127.0.0.1`, even on the same port.
        let port = redirecting_server(|port| format!("http://localhost:{port}/next")).await;
        let error = transport.execute(post(format!("http://127.0.0.1:{port}/start"))).await.unwrap_err();
        assert!(matches!(error, Error::Transport { kind: TransportErrorKind::Redirect, .. }), "{error}");
    }

    #[tokio::test]
    async fn bad_urls_are_refused_before_sending() {
        let transport = HttpTransport::default();
        for url in ["file:///etc/passwd", "not a url"] {
            let error = transport.execute(post(url.to_owned())).await.unwrap_err();
            assert!(matches!(error, Error::Transport { kind: TransportErrorKind::InvalidUrl, .. }), "{error}");
        }
    }
}
