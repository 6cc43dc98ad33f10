//! Sends the core's [`HttpRequest`]s, and nothing else: timeouts, a response-size limit, no
//! redirects to another origin. Retries are the core's decision, not this layer's.
//!
//! [`Transport`] is the seam: [`HttpTransport`] (reqwest) is tessera's own implementation; an
//! application brings another HTTP stack by implementing the trait and handing it to
//! [`crate::SessionBuilder::transport`], or a reqwest client of its own to
//! [`crate::SessionBuilder::http_client`].

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use tessera_core::provider_spec::{TransportSpec, redact_url};
use tessera_core::{Error, HttpRequest, HttpResponse, Method, TransportErrorKind};

use crate::local_file::{self, FileKind};

/// The attribute for implementing [`Transport`] (re-exported: no `async-trait` dependency needed).
pub use async_trait::async_trait;

/// Sends one of the core's requests and returns the whole response: the seam for an HTTP stack
/// other than tessera's own ([`HttpTransport`]).
///
/// A session calls `execute` for every request its engine plans (token, discovery, device
/// authorization, revocation, ...), one at a time per session. Retries, backoff and the
/// refresh-token rules are the engine's; an implementation sends the request once.
///
/// Around a custom transport the session keeps two of tessera's rules itself: the URL is checked
/// *before* the call (`https`, or `http` only to loopback unless
/// [`TransportSettings::allow_insecure_http`]), and the body is checked *after* it (at most
/// [`TransportSettings::max_response_bytes`]). The rest is the implementation's contract:
///
/// - **No redirect to another origin** (scheme, host and port). The request carries credentials (a
///   form with a password or a refresh token, an `Authorization` header): the simplest is to
///   follow no redirect at all, and return the 3xx as it is.
/// - **A time limit** on the whole request.
/// - **A bounded body**: stop reading past a limit rather than buffering anything a server sends.
/// - **Honest error kinds** in [`Error::Transport`] (`endpoint`: [`HttpRequest::endpoint`], which
///   has no query string; `message`: never the request's body or headers):
///   - [`TransportErrorKind::Connect`] **only when nothing of the request can have reached the
///     server** (name resolution, connection refused, TLS handshake). A refresh that fails so is
///     retried with the same refresh token.
///   - [`TransportErrorKind::Timeout`] or [`TransportErrorKind::ConnectionClosed`] when the request
///     may have been sent. The engine then treats a refresh as *outcome unknown*
///     ([`Error::OutcomeUnknown`]): the server may have rotated the refresh token, so it is never
///     presented again. When unsure, say `ConnectionClosed`: it costs at most a login, while a
///     wrong `Connect` can present a spent refresh token, which servers with reuse detection punish
///     by revoking the whole grant.
///   - [`TransportErrorKind::Other`] only for failures before sending (a client that cannot be
///     built, a header value the stack refuses).
/// - **Echo** the request's [`HttpRequest::id`] in [`HttpResponse::request_id`] (the session also
///   sets it), and return at least the `content-type`, `retry-after`, `www-authenticate` and
///   `dpop-nonce` headers: the core reads no others.
///
/// ```
/// use std::sync::Arc;
/// use tessera::core::{Error, HttpRequest, HttpResponse};
/// use tessera::transport::Transport;
///
/// /// Answers every request itself (a test double; a real one would send it).
/// struct Canned;
///
/// #[async_trait::async_trait]
/// impl Transport for Canned {
///     async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
///         let body = r#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#;
///         Ok(HttpResponse::json(request.id, 200, body))
///     }
/// }
///
/// let transport: Arc<dyn Transport> = Arc::new(Canned);
/// # let _ = transport;
/// ```
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` once and reads the whole response (any status: a 400 or a 503 is a response,
    /// not an error).
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error>;
}

/// How requests travel: limits, roots, proxy. One per provider (the `timeout`, `ca_file`,
/// `ca_file_only`, `proxy`, `no_proxy`, `allow_insecure_http` and `user_agent` fields of its
/// description: [`TransportSettings::from_spec`]) or per [`crate::Session`]
/// ([`crate::SessionSettings::transport`]).
///
/// The standard environment variables apply where a setting is not given: `HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY` (and their lowercase forms) choose a proxy, `NO_PROXY` the hosts
/// reached directly; `SSL_CERT_FILE` / `SSL_CERT_DIR` *replace* the system's roots (as with
/// OpenSSL). `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` are not read: they belong to other programs;
/// give their file as `ca_file`.
///
/// `Debug` shows the proxy URL without its password.
#[derive(Clone)]
pub struct TransportSettings {
    /// Whole-request limit (connect + send + receive). Default 30 s.
    pub timeout: Duration,
    /// Connect limit. Default 10 s.
    pub connect_timeout: Duration,
    /// Largest accepted response body. Default 1 MiB: a token response is a few KiB.
    pub max_response_bytes: usize,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Allow plain `http://` to hosts other than loopback (`localhost`, 127.0.0.0/8, `::1`).
    /// Default false: tokens, passwords and client secrets travel only over TLS, except to this
    /// machine (the reference IdP, local development servers, loopback redirects).
    pub allow_insecure_http: bool,
    /// A PEM file of CA certificates trusted in addition to the system's roots (a private CA).
    /// Read when the HTTP client is built (on the first request). Default none.
    pub ca_file: Option<PathBuf>,
    /// Trust `ca_file` alone, not the system's roots. Default false.
    pub ca_file_only: bool,
    /// A PEM file with the TLS client certificate (and its chain) presented on every request:
    /// mutual TLS client authentication (`tls_client_auth`, `self_signed_tls_client_auth`) and
    /// certificate-bound tokens (RFC 8705). Read, with [`TransportSettings::tls_client_key`], when
    /// the HTTP client is built. Default none.
    pub tls_client_certificate: Option<PathBuf>,
    /// A PEM file with the private key of `tls_client_certificate` (PKCS#8, PKCS#1 RSA or SEC1
    /// EC). Default none.
    pub tls_client_key: Option<PathBuf>,
    /// A proxy for every request, `http://[user:password@]host:port` (or `https://`). Default
    /// none: the environment's (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`).
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, `NO_PROXY` syntax (`a.example,.corp.example,10.0.0.0/8`,
    /// `*` for all). Default none: the environment's `NO_PROXY`. Applies to `proxy` and to the
    /// environment's proxies alike.
    pub no_proxy: Option<String>,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
            user_agent: concat!("tessera/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_insecure_http: false,
            ca_file: None,
            ca_file_only: false,
            tls_client_certificate: None,
            tls_client_key: None,
            proxy: None,
            no_proxy: None,
        }
    }
}

impl std::fmt::Debug for TransportSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportSettings")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("user_agent", &self.user_agent)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("ca_file", &self.ca_file)
            .field("ca_file_only", &self.ca_file_only)
            .field("tls_client_certificate", &self.tls_client_certificate)
            .field("tls_client_key", &self.tls_client_key)
            .field("proxy", &self.proxy.as_deref().map(redact_url))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl TransportSettings {
    /// The settings a provider's description asks for, over the defaults: `timeout` (connecting
    /// is limited to the shorter of it and 10 s), `ca_file` (`~/` is the home directory),
    /// `ca_file_only`, `tls_client_certificate`, `tls_client_key`, `proxy`, `no_proxy`,
    /// `allow_insecure_http`, `user_agent`.
    pub fn from_spec(spec: &TransportSpec) -> Self {
        let defaults = TransportSettings::default();
        let timeout = spec.timeout_secs.map_or(defaults.timeout, Duration::from_secs);
        TransportSettings {
            timeout,
            connect_timeout: defaults.connect_timeout.min(timeout),
            user_agent: spec.user_agent.clone().unwrap_or(defaults.user_agent),
            allow_insecure_http: spec.allow_insecure_http,
            ca_file: spec.ca_file.as_deref().map(crate::config::expand_home),
            ca_file_only: spec.ca_file_only,
            tls_client_certificate: spec.tls_client_certificate.as_deref().map(crate::config::expand_home),
            tls_client_key: spec.tls_client_key.as_deref().map(crate::config::expand_home),
            proxy: spec.proxy.clone(),
            no_proxy: spec.no_proxy.clone(),
            ..defaults
        }
    }

    /// Replaces the password of the proxy URL (if any) by `***` in `message`: what reqwest and
    /// hyper say never repeats it.
    fn scrub(&self, mut message: String) -> String {
        if let Some(password) = self
            .proxy
            .as_deref()
            .and_then(|proxy| url::Url::parse(proxy).ok())
            .and_then(|url| url.password().filter(|password| !password.is_empty()).map(str::to_owned))
        {
            message = message.replace(&password, "***");
        }
        message
    }
}

/// A reqwest client builder with tessera's rules and `settings` applied: time limits, user agent,
/// same-origin redirects only, the roots (`ca_file`, `ca_file_only`), the TLS client certificate
/// (`tls_client_certificate`, `tls_client_key`) and the proxy (`proxy`, `no_proxy`, else the
/// environment's). Start here to add what tessera does not configure (a connection pool shared
/// with the application), then hand the built client to [`crate::SessionBuilder::http_client`];
/// or build the application's own API client from it, so that its requests present the same
/// certificate (RFC 8705 certificate-bound tokens are accepted only with it).
///
/// Installs rustls's `ring` crypto provider as the process default when the application has not
/// installed one. Reads `ca_file` now: an unreadable or empty bundle is an
/// [`Error::Configuration`] naming the field (neither the path nor the content).
pub fn client_builder(settings: &TransportSettings) -> Result<reqwest::ClientBuilder, Error> {
    // reqwest is built without a bundled crypto provider (ring builds in a fraction of aws-lc's
    // time). Install ring only when the application has not installed a provider of its own.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut builder = reqwest::Client::builder()
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
        }));
    if let Some(path) = &settings.ca_file {
        // The field, not its value: a path is a value from the configuration like any other.
        let fail = |problem: &str| Error::configuration(format!("ca_file: {problem}"));
        let pem = local_file::read(path, FileKind::CaBundle).map_err(|refused| fail(&refused.problem))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| fail("is not a PEM bundle of certificates"))?;
        if certificates.is_empty() {
            return Err(fail("holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
        }
        builder = if settings.ca_file_only {
            builder.tls_certs_only(certificates)
        } else {
            builder.tls_certs_merge(certificates)
        };
    } else if settings.ca_file_only {
        return Err(Error::configuration("ca_file_only needs ca_file (the roots to trust instead of the system's)"));
    }
    if let Some(identity) = client_identity(settings)? {
        builder = builder.identity(identity);
    }
    match proxies(settings)? {
        None => {}
        // No proxy anywhere: say so, so that reqwest does not read NO_PROXY over `no_proxy`.
        Some(proxies) if proxies.is_empty() => builder = builder.no_proxy(),
        Some(proxies) => {
            for proxy in proxies {
                builder = builder.proxy(proxy);
            }
        }
    }
    Ok(builder)
}

/// The TLS client certificate and key of `settings`, read now (both files, or neither). Errors
/// name the field and the problem: never the path's content, and never a word of the key.
fn client_identity(settings: &TransportSettings) -> Result<Option<reqwest::Identity>, Error> {
    let (certificate, key) = match (&settings.tls_client_certificate, &settings.tls_client_key) {
        (None, None) => return Ok(None),
        (Some(certificate), Some(key)) => (certificate, key),
        (Some(_), None) => {
            return Err(Error::configuration(
                "tls_client_key: is required with tls_client_certificate (its private key)",
            ));
        }
        (None, Some(_)) => return Err(Error::configuration("tls_client_key: goes with tls_client_certificate")),
    };
    let fail = |field: &str, problem: &str| Error::configuration(format!("{field}: {problem}"));
    let certificate_pem = local_file::read(certificate, FileKind::ClientCertificate)
        .map_err(|refused| fail("tls_client_certificate", &refused.problem))?;
    if !certificate_pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(fail("tls_client_certificate", "holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
    }
    // The key is a secret: held in a zeroizing buffer, and its problems are told without it.
    let key_pem = zeroize::Zeroizing::new(
        local_file::read(key, FileKind::Secret).map_err(|refused| fail("tls_client_key", &refused.problem))?,
    );
    if !key_pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(fail(
            "tls_client_key",
            "holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\", RSA or EC PRIVATE KEY)",
        ));
    }
    // reqwest reads the key only when the client is built, and then fails with a bare "builder
    // error": load it now with the TLS provider, so that a key that is no key names its field.
    {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject as _;
        let unusable = || fail("tls_client_key", "is not a usable private key (RSA, EC P-256 or P-384, Ed25519)");
        let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| unusable())?;
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()));
        provider.key_provider.load_private_key(der).map_err(|_| unusable())?;
    }
    let mut both = zeroize::Zeroizing::new(Vec::with_capacity(certificate_pem.len() + key_pem.len() + 1));
    both.extend_from_slice(&certificate_pem);
    both.push(b'\n');
    both.extend_from_slice(&key_pem);
    reqwest::Identity::from_pem(&both).map(Some).map_err(|_| {
        fail(
            "tls_client_key",
            "and tls_client_certificate are not a usable certificate and private key (PEM: a certificate, and a \
             PKCS#8, PKCS#1 RSA or SEC1 EC key)",
        )
    })
}

/// The proxies to set on the client; `None`: reqwest's own reading of the environment (`*_PROXY`,
/// `NO_PROXY`).
fn proxies(settings: &TransportSettings) -> Result<Option<Vec<reqwest::Proxy>>, Error> {
    let refused = || Error::configuration("proxy is not a usable proxy URL (http://[user:password@]host:port)");
    let no_proxy = |list: Option<&str>| match list {
        Some(list) => reqwest::NoProxy::from_string(list),
        None => reqwest::NoProxy::from_env(),
    };
    if let Some(url) = &settings.proxy {
        let proxy = reqwest::Proxy::all(url.as_str()).map_err(|_| refused())?;
        return Ok(Some(vec![proxy.no_proxy(no_proxy(settings.no_proxy.as_deref()))]));
    }
    let Some(list) = settings.no_proxy.as_deref() else { return Ok(None) };
    // `no_proxy` without `proxy`: the environment's proxies, with this list in place of NO_PROXY.
    let from_env = |names: [&str; 2]| names.iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    let mut proxies = Vec::new();
    let env_error = || Error::configuration("a *_PROXY environment variable is not a usable proxy URL");
    if let Some(url) = from_env(["HTTPS_PROXY", "https_proxy"]) {
        proxies.push(reqwest::Proxy::https(url.as_str()).map_err(|_| env_error())?.no_proxy(no_proxy(Some(list))));
    }
    if let Some(url) = from_env(["HTTP_PROXY", "http_proxy"]) {
        proxies.push(reqwest::Proxy::http(url.as_str()).map_err(|_| env_error())?.no_proxy(no_proxy(Some(list))));
    }
    if let Some(url) = from_env(["ALL_PROXY", "all_proxy"]) {
        proxies.push(reqwest::Proxy::all(url.as_str()).map_err(|_| env_error())?.no_proxy(no_proxy(Some(list))));
    }
    Ok(Some(proxies))
}

/// tessera's own [`Transport`], over reqwest. The reqwest client (and its TLS setup) is built on
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

    /// A transport that sends through `client`, the application's own (proxy, roots, client
    /// certificate, connection pool shared with its API calls). Of `settings`, only
    /// `max_response_bytes` and `allow_insecure_http` apply: timeouts, the user agent and the
    /// redirect policy are the client's. Build it with
    /// `.redirect(reqwest::redirect::Policy::none())` (or a same-origin policy): tessera cannot
    /// change a built client's, and refuses an answer that ended on another origin, but only after
    /// the client followed the redirect.
    pub fn with_client(client: reqwest::Client, settings: TransportSettings) -> Self {
        HttpTransport { settings, client: OnceLock::from(Ok(client)) }
    }

    /// The limits.
    pub fn settings(&self) -> &TransportSettings {
        &self.settings
    }

    fn client(&self) -> Result<&reqwest::Client, Error> {
        // A failure (an unreadable ca_file) is not remembered: a file fixed later is picked up.
        if let Some(client) = self.client.get() {
            return client.as_ref().map_err(|message| Error::configuration(message.clone()));
        }
        let built = client_builder(&self.settings)?
            .build()
            .map_err(|e| Error::configuration(self.settings.scrub(format!("cannot build the HTTP client: {e}"))))?;
        Ok(self.client.get_or_init(|| Ok(built)).as_ref().expect("just built"))
    }

    /// Sends one request and reads the whole (bounded) response.
    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let endpoint = request.endpoint();
        let fail = |kind, message: String| Error::Transport { kind, endpoint: endpoint.clone(), message };
        let url = reqwest::Url::parse(&request.url).map_err(|e| fail(TransportErrorKind::InvalidUrl, e.to_string()))?;
        check_url(&url, &self.settings).map_err(|message| fail(TransportErrorKind::InvalidUrl, message))?;
        let origin = url.origin();
        let client = self.client()?;
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
        let response = builder.send().await.map_err(|e| classify(&e, &endpoint, &self.settings))?;
        if response.url().origin() != origin {
            // Only an application's own client can get here (ours follows no such redirect).
            return Err(fail(TransportErrorKind::Redirect, "the answer came from another origin (a redirect)".into()));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| {
                matches!(name.as_str(), "content-type" | "retry-after" | "www-authenticate" | "dpop-nonce")
            })
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        if response.content_length().is_some_and(|len| len > self.settings.max_response_bytes as u64) {
            return Err(too_large(&endpoint, self.settings.max_response_bytes));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(&e, &endpoint, &self.settings))?;
            if body.len() + chunk.len() > self.settings.max_response_bytes {
                return Err(too_large(&endpoint, self.settings.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { request_id: request.id, status, headers, body })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        HttpTransport::execute(self, request).await
    }
}

/// A custom [`Transport`] inside the rules tessera keeps for any transport: the URL check before,
/// the body size cap after, the request id echoed.
pub(crate) struct Checked {
    inner: Arc<dyn Transport>,
    settings: TransportSettings,
}

impl Checked {
    pub(crate) fn new(inner: Arc<dyn Transport>, settings: TransportSettings) -> Self {
        Checked { inner, settings }
    }
}

#[async_trait]
impl Transport for Checked {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let endpoint = request.endpoint();
        let id = request.id;
        let fail = |kind, message: String| Error::Transport { kind, endpoint: endpoint.clone(), message };
        let url = reqwest::Url::parse(&request.url).map_err(|e| fail(TransportErrorKind::InvalidUrl, e.to_string()))?;
        check_url(&url, &self.settings).map_err(|message| fail(TransportErrorKind::InvalidUrl, message))?;
        let mut response = self.inner.execute(request).await?;
        if response.body.len() > self.settings.max_response_bytes {
            return Err(too_large(&endpoint, self.settings.max_response_bytes));
        }
        response.request_id = id;
        Ok(response)
    }
}

/// Only `https`, or `http` to loopback (or anywhere when `allow_insecure_http` is set).
fn check_url(url: &reqwest::Url, settings: &TransportSettings) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if settings.allow_insecure_http || is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "plain HTTP to {} is refused: credentials travel only over HTTPS to hosts other than loopback \
             (set allow_insecure_http to override)",
            url.host_str().unwrap_or_default()
        )),
        other => Err(format!("unsupported scheme {other}")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn too_large(endpoint: &str, limit: usize) -> Error {
    Error::Transport {
        kind: TransportErrorKind::BodyTooLarge,
        endpoint: endpoint.to_owned(),
        message: format!("response body exceeds {limit} bytes"),
    }
}

fn classify(error: &reqwest::Error, endpoint: &str, settings: &TransportSettings) -> Error {
    // A certificate that is not trusted fails the same way on every attempt: final, never retried,
    // and the message says what fixes it (a connect error would be retried, and say neither).
    if let Some(problem) = certificate_problem(error) {
        let message = match problem {
            rustls::CertificateError::UnknownIssuer => "the server's certificate is not trusted: no trusted CA \
                signed it; if a private CA did, set ca_file to that CA's PEM file in the provider's configuration"
                .to_owned(),
            other => format!("the server's certificate is not trusted: {other}"),
        };
        return Error::Transport { kind: TransportErrorKind::Certificate, endpoint: endpoint.to_owned(), message };
    }
    // Connect first: a connection that timed out is also a timeout, but nothing was sent.
    let kind = if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_redirect() {
        TransportErrorKind::Redirect
    } else if error.is_body() || error.is_request() || error.is_decode() {
        TransportErrorKind::ConnectionClosed
    } else {
        TransportErrorKind::Other
    };
    Error::Transport { kind, endpoint: endpoint.to_owned(), message: settings.scrub(describe(error)) }
}

/// rustls's verdict on the server's certificate, when that is why `error` happened. The TLS error
/// sits inside `io::Error`s of the connector, whose `source()` skips what they wrap: look inside
/// those too (`get_ref`), at every level.
fn certificate_problem(error: &reqwest::Error) -> Option<rustls::CertificateError> {
    fn visit(error: &(dyn std::error::Error + 'static), depth: usize) -> Option<rustls::CertificateError> {
        if depth > 16 {
            return None;
        }
        if let Some(rustls::Error::InvalidCertificate(problem)) = error.downcast_ref::<rustls::Error>() {
            return Some(problem.clone());
        }
        if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
            && let Some(problem) = visit(inner, depth + 1)
        {
            return Some(problem);
        }
        visit(error.source()?, depth + 1)
    }
    visit(error, 0)
}

/// reqwest's message plus its causes, without the URL (which may carry a query string): the
/// endpoint is named by the error itself, so reqwest's " for url (...)" goes, not just the URL.
fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(&format!(" for url ({url})"), "").replace(url.as_str(), "");
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
    async fn an_application_client_that_follows_a_cross_origin_redirect_gets_no_answer_accepted() {
        // Its own policy follows anything; tessera refuses an answer from another origin.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let lax =
            reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::limited(3)).build().unwrap();
        let transport = HttpTransport::with_client(lax, TransportSettings::default());
        let port = redirecting_server(|port| format!("http://localhost:{port}/next")).await;
        let error = transport.execute(post(format!("http://127.0.0.1:{port}/start"))).await.unwrap_err();
        assert!(matches!(error, Error::Transport { kind: TransportErrorKind::Redirect, .. }), "{error}");
        // Same origin: accepted.
        let lax = reqwest::Client::builder().no_proxy().build().unwrap();
        let transport = HttpTransport::with_client(lax, TransportSettings::default());
        let port = redirecting_server(|port| format!("http://127.0.0.1:{port}/next")).await;
        assert_eq!(transport.execute(post(format!("http://127.0.0.1:{port}/start"))).await.unwrap().status, 200);
    }

    #[test]
    fn settings_debug_and_errors_hide_the_proxy_password() {
        let settings = TransportSettings {
            proxy: Some("http://me:S3cr3t-pw@proxy.example:3128".into()),
            ..TransportSettings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("S3cr3t-pw") && shown.contains("me:***@proxy.example"), "{shown}");
        assert_eq!(settings.scrub("tunnel to me:S3cr3t-pw@proxy failed".into()), "tunnel to me:***@proxy failed");
    }

    #[test]
    fn https_is_required_except_for_loopback_unless_allowed() {
        let strict = TransportSettings::default();
        let lax = TransportSettings { allow_insecure_http: true, ..TransportSettings::default() };
        let check = |url: &str, settings: &TransportSettings| check_url(&reqwest::Url::parse(url).unwrap(), settings);
        for url in [
            "https://idp.example/token",
            "http://127.0.0.1:8080/token",
            "http://127.8.9.10/token",
            "http://localhost:1/token",
            "http://LOCALHOST/token",
            "http://[::1]:8080/token",
        ] {
            assert_eq!(check(url, &strict), Ok(()), "{url}");
        }
        for url in ["http://idp.example/token", "http://10.0.0.1/token", "http://localhost.evil.example/token"] {
            let error = check(url, &strict).unwrap_err();
            assert!(error.contains("plain HTTP") && error.contains("allow_insecure_http"), "{error}");
            assert_eq!(check(url, &lax), Ok(()), "{url} allowed when asked");
        }
        assert!(check("ftp://idp.example/token", &lax).unwrap_err().contains("unsupported scheme"));
    }

    #[tokio::test]
    async fn insecure_http_is_refused_before_anything_is_sent() {
        let error = HttpTransport::default().execute(post("http://idp.example/token".into())).await.unwrap_err();
        assert!(matches!(error, Error::Transport { kind: TransportErrorKind::InvalidUrl, .. }), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient_and_its_message_has_no_empty_url() {
        // Nothing listens on this port once the listener is dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error =
            HttpTransport::default().execute(post(format!("http://127.0.0.1:{port}/token?x=1"))).await.unwrap_err();
        assert!(matches!(error, Error::Transport { kind: TransportErrorKind::Connect, .. }), "{error}");
        assert!(error.is_transient());
        let message = error.to_string();
        // The endpoint is named once, by the error; reqwest's " for url (...)" is gone, not emptied.
        assert!(message.contains(&format!("http://127.0.0.1:{port}/token")), "{message}");
        assert!(!message.contains("url (") && !message.contains("()") && !message.contains("x=1"), "{message}");
    }

    #[tokio::test]
    async fn response_size_and_time_are_limited() {
        // A server that declares a huge body, one that streams without a length, and one that never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for round in 0..3 {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut buffer = vec![0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let head = match round {
                    0 => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n",
                    1 => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                    _ => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        return;
                    }
                };
                let _ = socket.write_all(head.as_bytes()).await;
                if round == 1 {
                    let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
                    for _ in 0..8 {
                        if socket.write_all(chunk.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let transport = HttpTransport::new(TransportSettings {
            max_response_bytes: 16 * 1024,
            timeout: Duration::from_millis(300),
            ..TransportSettings::default()
        });
        for _ in 0..2 {
            let error = transport.execute(post(format!("http://127.0.0.1:{port}/token"))).await.unwrap_err();
            assert!(matches!(error, Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }), "{error}");
        }
        let started = std::time::Instant::now();
        let error = transport.execute(post(format!("http://127.0.0.1:{port}/token"))).await.unwrap_err();
        assert!(matches!(error, Error::Transport { kind: TransportErrorKind::Timeout, .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
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
