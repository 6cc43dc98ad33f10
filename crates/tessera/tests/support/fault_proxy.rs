//! A loopback HTTP proxy that injects faults in front of a third-party server (oidc-provider,
//! django-oauth-toolkit), whose own code cannot be told to fail: the tests of the fault matrix and
//! of lost answers put it between tessera and the server.
//!
//! ```ignore
//! // oidc-provider: the upstream base URL is its issuer, the token endpoint's path `/token`.
//! let proxy = FaultProxy::start(op.issuer());
//! let endpoints = Endpoints::explicit(proxy.url_for(&op.token_endpoint())); // or discover(proxy.url())
//! proxy.fail_next("/token", ProxyFault::DropAnswer, 1); // the next token request only
//! // ... tessera refreshes through `endpoints`: the server rotates, tessera sees the connection close ...
//! assert_eq!(proxy.requests("/token"), 1);  // every request that reached the proxy
//! assert_eq!(proxy.forwarded("/token"), 1); // those the upstream received
//! // django-oauth-toolkit: FaultProxy::start(dot.issuer()), path `/o/token/` (`dot.token_path()`).
//! ```
//!
//! - [`FaultProxy::start`] binds `127.0.0.1:0` and serves from a thread of its own (its own tokio
//!   runtime), so it works from any test, async or not; dropping the proxy stops it and closes
//!   every connection it holds.
//! - Requests are matched on their path only (no query), e.g. `/token` or `/o/token/`. Each
//!   [`FaultProxy::fail_next`] queues a fault for the next `count` requests to that path; faults
//!   queued for one path are used in order. Every other request is forwarded unchanged (method,
//!   path, query, headers but `Host` and hop-by-hop ones, body) to the upstream's origin, and its
//!   answer is returned unchanged — except that in JSON answers the upstream's origin
//!   (`http://127.0.0.1:<upstream port>`) is replaced by the proxy's, so that a discovery document
//!   fetched through the proxy points through the proxy too (`Endpoints::discover(proxy.url())`
//!   works). Signed content is not rewritten: an ID token's `iss` still names the upstream, so
//!   through a proxy ask for a scope without `openid`, or give explicit endpoints.
//! - The faults ([`ProxyFault`]): only [`ProxyFault::DropAnswer`] reaches the upstream. Every other
//!   one answers (or fails) in place of the upstream, which never sees the request: the client's
//!   outcome is ambiguous to the client (did the server process it?) but known to the test.
//!   - `Status { status, retry_after }`: that status, a `text/plain` body, and `Retry-After: <secs>`
//!     when given (429 and 503 say "not processed"; 500 does not say).
//!   - `Timeout`: the request is read and held; no byte is ever answered (until the proxy is
//!     dropped, or 60 s): the client's own timeout ends it.
//!   - `ResetBeforeForwarding`: the request is read, then the connection is closed without a byte
//!     of answer.
//!   - `DropAnswer`: **the lost answer**. The request is forwarded, the upstream's whole answer is
//!     read (so the server has processed it: a refresh token is rotated), then the client's
//!     connection is closed without sending any byte of it.
//!   - `MalformedJson`: `200 application/json` with a truncated JSON body.
//!   - `HtmlErrorPage`: `502 text/html`, the error page of an nginx-style proxy.
//! - [`FaultProxy::requests`] counts every request that reached the proxy for a path (faulted or
//!   not), [`FaultProxy::forwarded`] those that reached the upstream.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// How long a [`ProxyFault::Timeout`] holds a request at most (the proxy's drop ends it sooner).
const HOLD_AT_MOST: Duration = Duration::from_secs(60);
/// How long the proxy waits for the upstream's answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy does with a request instead of forwarding it (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyFault {
    /// This status, a `text/plain` body, and `Retry-After: <secs>` when given; not forwarded.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Held without an answer; not forwarded.
    Timeout,
    /// The connection is closed without an answer; not forwarded.
    ResetBeforeForwarding,
    /// Forwarded, the whole answer read, then the connection closed without a byte of it.
    DropAnswer,
    /// `200 application/json` with a truncated body; not forwarded.
    MalformedJson,
    /// `502 text/html` from "the proxy"; not forwarded.
    HtmlErrorPage,
}

impl ProxyFault {
    /// A status without `Retry-After`.
    pub fn status(status: u16) -> ProxyFault {
        ProxyFault::Status { status, retry_after: None }
    }

    /// `429 Too Many Requests` with `Retry-After: <secs>`.
    pub fn too_many_requests(retry_after_secs: u64) -> ProxyFault {
        ProxyFault::Status { status: 429, retry_after: Some(retry_after_secs) }
    }
}

#[derive(Default)]
struct State {
    /// path → faults to use, in order, each with the number of requests it still applies to.
    faults: HashMap<String, VecDeque<(ProxyFault, usize)>>,
    requests: HashMap<String, u64>,
    forwarded: HashMap<String, u64>,
}

struct Shared {
    state: Mutex<State>,
    upstream_origin: String,
    proxy_origin: String,
    client: reqwest::Client,
}

/// The running proxy; stopped when dropped.
pub struct FaultProxy {
    shared: Arc<Shared>,
    upstream_base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `http://host:port` of an absolute `http://` URL.
fn origin_of(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("the fault proxy speaks plain http: {url}"));
    let end = rest.find('/').unwrap_or(rest.len());
    &url[..("http://".len() + end)]
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral loopback port in front of `upstream_base_url` (an
    /// `http://127.0.0.1:<port>` URL, with or without a path).
    pub fn start(upstream_base_url: &str) -> FaultProxy {
        let upstream_base = upstream_base_url.trim_end_matches('/').to_owned();
        let upstream_origin = origin_of(&upstream_base).to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let proxy_origin = format!("http://{}", listener.local_addr().expect("local address"));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(UPSTREAM_TIMEOUT)
            .build()
            .expect("build the proxy's upstream client");
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), upstream_origin, proxy_origin, client });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(serve(listener, serving, stopped));
                // Dropping the runtime drops every connection task, held ones included.
            })
            .expect("spawn the fault proxy thread");
        FaultProxy { shared, upstream_base, stop: Some(stop), thread: Some(thread) }
    }

    /// The upstream base URL given to [`FaultProxy::start`], through the proxy
    /// (`http://127.0.0.1:<proxy port><upstream base path>`, no trailing slash).
    pub fn url(&self) -> String {
        self.url_for(&self.upstream_base)
    }

    /// An absolute URL of the upstream (e.g. its token endpoint), through the proxy.
    pub fn url_for(&self, upstream_url: &str) -> String {
        let rest = upstream_url
            .strip_prefix(&self.shared.upstream_origin)
            .unwrap_or_else(|| panic!("{upstream_url} is not on the upstream {}", self.shared.upstream_origin));
        format!("{}{rest}", self.shared.proxy_origin)
    }

    /// The next `count` requests to `path` get `fault` (after any fault queued before for it).
    pub fn fail_next(&self, path: &str, fault: ProxyFault, count: usize) {
        if count > 0 {
            let mut state = self.shared.state.lock().unwrap();
            state.faults.entry(path.to_owned()).or_default().push_back((fault, count));
        }
    }

    /// Forgets every queued fault.
    pub fn clear(&self) {
        self.shared.state.lock().unwrap().faults.clear();
    }

    /// Requests to `path` that reached the proxy (faulted or not).
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.state.lock().unwrap().requests.get(path).copied().unwrap_or(0)
    }

    /// Requests to `path` that the proxy forwarded to the upstream.
    pub fn forwarded(&self, path: &str) -> u64 {
        self.shared.state.lock().unwrap().forwarded.get(path).copied().unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&shared), request));
            // An error here is a fault closing the connection on purpose, or the client leaving.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The error a fault returns to make hyper close the connection without writing anything.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by the fault proxy")
    }
}

impl std::error::Error for Closed {}

type Answer = Result<Response<Full<Bytes>>, Closed>;

fn answer(status: u16, content_type: &str, body: impl Into<Bytes>, extra: &[(&str, String)]) -> Answer {
    let mut response = Response::builder().status(status).header("content-type", content_type);
    for (name, value) in extra {
        response = response.header(*name, value);
    }
    Ok(response.body(Full::new(body.into())).expect("a valid response"))
}

async fn handle(shared: Arc<Shared>, request: Request<hyper::body::Incoming>) -> Answer {
    let path = request.uri().path().to_owned();
    let fault = {
        let mut state = shared.state.lock().unwrap();
        *state.requests.entry(path.clone()).or_default() += 1;
        let queue = state.faults.entry(path.clone()).or_default();
        let fault = queue.front_mut().map(|(fault, left)| {
            *left -= 1;
            fault.clone()
        });
        if queue.front().is_some_and(|(_, left)| *left == 0) {
            queue.pop_front();
        }
        fault
    };
    // The whole request is read in every case: closing a socket with unread bytes sends a reset
    // (RST) instead of a plain close, which the client would see as a different failure.
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Closed)?.to_bytes();
    match fault {
        None => forward(&shared, &path, parts, body).await,
        Some(ProxyFault::DropAnswer) => {
            forward(&shared, &path, parts, body).await?;
            Err(Closed)
        }
        Some(ProxyFault::Status { status, retry_after }) => {
            let extra: Vec<_> = retry_after.map(|secs| ("retry-after", secs.to_string())).into_iter().collect();
            answer(status, "text/plain", format!("injected by the fault proxy: {status}"), &extra)
        }
        Some(ProxyFault::Timeout) => {
            tokio::time::sleep(HOLD_AT_MOST).await;
            Err(Closed)
        }
        Some(ProxyFault::ResetBeforeForwarding) => Err(Closed),
        Some(ProxyFault::MalformedJson) => answer(200, "application/json", r#"{"access_token":"trunc"#, &[]),
        Some(ProxyFault::HtmlErrorPage) => answer(
            502,
            "text/html",
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n\
             <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            &[],
        ),
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy sets itself.
fn passes(name: &http::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// Sends the request to the upstream and returns its answer (an unreachable upstream: `502`).
async fn forward(shared: &Shared, path: &str, parts: http::request::Parts, body: Bytes) -> Answer {
    *shared.state.lock().unwrap().forwarded.entry(path.to_owned()).or_default() += 1;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path_and_query}", shared.upstream_origin);
    let mut upstream = shared.client.request(parts.method, url).body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| passes(name)) {
        upstream = upstream.header(name, value);
    }
    let response = match upstream.send().await {
        Ok(response) => response,
        Err(error) => return answer(502, "text/plain", format!("fault proxy: upstream unreachable: {error}"), &[]),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let Ok(mut body) = response.bytes().await else { return Err(Closed) };
    let is_json =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        let text = String::from_utf8_lossy(&body);
        if text.contains(&shared.upstream_origin) {
            body = Bytes::from(text.replace(&shared.upstream_origin, &shared.proxy_origin));
        }
    }
    let mut answer = Response::builder().status(status);
    for (name, value) in headers.iter().filter(|(name, _)| passes(name)) {
        answer = answer.header(name, value);
    }
    Ok(answer.body(Full::new(body)).expect("a valid response"))
}
