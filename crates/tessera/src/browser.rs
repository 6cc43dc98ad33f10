//! Browser logins at runtime: the loopback redirect receiver (RFC 8252 §7.3) and the hook that
//! connects it to a [`Session`](crate::Session) login.
//!
//! A login with [`Grant::Browser`] and no fixed `redirect_uri` binds a [`LoopbackReceiver`] on
//! `127.0.0.1` (never `0.0.0.0`, never `localhost`, which may resolve elsewhere), port 0 by default,
//! before the login starts; its URL becomes the redirect URI. When the core asks for the browser
//! ([`Prompt::Browser`]), the prompter's `show` opens the URL, and the receiver waits for the one
//! request the browser is sent back with: that full URL is the login's answer. The core checks it
//! (state, iss, error) and exchanges the code; the page the browser shows is only a courtesy.
//!
//! What the receiver never does: listen beyond loopback, answer a request for another host name
//! (DNS rebinding), accept more than one callback, let a callback without the login's `state` use up
//! the one it accepts (a forged request cannot abort a login), keep listening after the callback (or
//! the timeout), or log the callback's query (it holds the code).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tessera_core::{Error, Event, Grant, LoginInputs, Prompt, Secret};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::debug;

use crate::prompt::Prompter;

/// How long a connection to the receiver may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After the callback, how long open connections get to finish (the page being sent) before they are cut.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how long the loopback receiver listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopbackSettings {
    /// TCP port on 127.0.0.1; 0 (the default) lets the system choose a free one. Servers following
    /// RFC 8252 accept any port for a registered `http://127.0.0.1/...` redirect; set a port only
    /// for servers that need an exact match.
    pub port: u16,
    /// Path of the redirect URI. Default `/callback`.
    pub path: String,
    /// How long to wait for the browser to come back. Default 5 minutes.
    pub timeout: Duration,
}

impl Default for LoopbackSettings {
    fn default() -> Self {
        LoopbackSettings { port: 0, path: "/callback".to_owned(), timeout: Duration::from_secs(300) }
    }
}

/// What the request handler shares with the receiver.
struct Shared {
    /// Taken by the first callback with the login's `state`.
    callback: Mutex<Option<oneshot::Sender<String>>>,
    /// The login's `state`: callbacks without it (or any, while it is unknown) are refused and the
    /// receiver keeps waiting. The core checks the accepted one again.
    expected_state: Mutex<Option<String>>,
    /// `http://127.0.0.1:PORT`.
    origin: String,
    path: String,
    /// Shown on the page: "Signed in to NAME".
    name: String,
}

/// A one-shot HTTP listener on 127.0.0.1 that receives the authorization redirect.
///
/// Dropping it stops the listener.
pub struct LoopbackReceiver {
    redirect_uri: String,
    timeout: Duration,
    shared: Arc<Shared>,
    callback: oneshot::Receiver<String>,
    /// Dropped (or fired) to stop accepting connections.
    _stop: oneshot::Sender<()>,
}

impl std::fmt::Debug for LoopbackReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackReceiver").field("redirect_uri", &self.redirect_uri).finish_non_exhaustive()
    }
}

impl LoopbackReceiver {
    /// Binds `127.0.0.1:{settings.port}` and starts serving. `name` is shown on the page
    /// ("Signed in to NAME"). Must be called within a Tokio runtime.
    ///
    /// Errors: [`Error::Configuration`] when the path does not start with `/` or the port cannot
    /// be bound (in use, not permitted).
    pub async fn bind(settings: &LoopbackSettings, name: &str) -> Result<Self, Error> {
        if !settings.path.starts_with('/') || settings.path.contains(['?', '#']) {
            return Err(Error::configuration(format!(
                "the loopback redirect path {:?} must start with '/' and hold no query",
                settings.path
            )));
        }
        let listener = TcpListener::bind(("127.0.0.1", settings.port)).await.map_err(|error| {
            Error::configuration(format!("cannot listen on 127.0.0.1:{} for the browser login: {error}", settings.port))
        })?;
        let port = listener
            .local_addr()
            .map_err(|error| Error::configuration(format!("the loopback listener has no address: {error}")))?
            .port();
        let origin = format!("http://127.0.0.1:{port}");
        let (callback_tx, callback) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            callback: Mutex::new(Some(callback_tx)),
            expected_state: Mutex::new(None),
            origin: origin.clone(),
            path: settings.path.clone(),
            name: name.to_owned(),
        });
        tokio::spawn(serve(listener, Arc::clone(&shared), stop_rx));
        debug!(%origin, path = %settings.path, "loopback receiver listening");
        Ok(LoopbackReceiver {
            redirect_uri: format!("{origin}{}", settings.path),
            timeout: settings.timeout,
            shared,
            callback,
            _stop: stop,
        })
    }

    /// The redirect URI to send in the authorization request: `http://127.0.0.1:PORT/PATH`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Tells the receiver which `state` belongs to this login (taken from the authorization URL): a
    /// callback without exactly that `state` gets a "not this sign-in" page and does not use up the
    /// receiver, which keeps waiting for the real one. Call it before the browser is opened: until
    /// then every callback is refused.
    pub fn expect_authorization_url(&self, authorization_url: &str) {
        let state = url::Url::parse(authorization_url)
            .ok()
            .and_then(|url| url.query_pairs().find(|(name, _)| name == "state").map(|(_, v)| v.into_owned()));
        *lock(&self.shared.expected_state) = state;
    }

    /// Waits for the browser to come back, at most the configured timeout, and returns the full
    /// URL it requested (the login's answer). The listener stops either way.
    ///
    /// Errors: [`Error::ReauthenticationRequired`] when nobody came back in time.
    pub async fn receive(self) -> Result<Secret, Error> {
        let LoopbackReceiver { redirect_uri, timeout, callback, _stop, .. } = self;
        let outcome = tokio::time::timeout(timeout, callback).await;
        drop(_stop); // stop listening now; a page being sent gets DRAIN_TIMEOUT to finish
        match outcome {
            Ok(Ok(url)) => Ok(Secret::new(url)),
            Ok(Err(_)) => Err(Error::ReauthenticationRequired {
                reason: format!("the loopback listener at {redirect_uri} stopped before the browser came back"),
            }),
            Err(_) => Err(Error::ReauthenticationRequired {
                reason: format!(
                    "no browser came back to {redirect_uri} within {}; start the login again",
                    describe(timeout)
                ),
            }),
        }
    }
}

fn describe(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else if secs >= 1 {
        format!("{secs} s")
    } else {
        format!("{} ms", duration.as_millis())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Accepts connections until stopped, then drains them for at most [`DRAIN_TIMEOUT`].
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let response = respond(&shared, &request);
                            async move { Ok::<_, std::convert::Infallible>(response) }
                        });
                        // One request per connection, so that the drain below does not wait on idle keep-alives.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(false)
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // E.g. out of file descriptors: let the timeout end the login rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    // Dropping the JoinSet aborts what is left (a preconnected socket that never sent anything).
}

/// The receiver's one page per request: the callback (once), 404 elsewhere.
fn respond(shared: &Shared, request: &Request<Incoming>) -> Response<String> {
    // DNS rebinding: a page on another name that resolves to 127.0.0.1 must not reach (and use up) the callback.
    let host = request.headers().get(http::header::HOST).and_then(|h| h.to_str().ok());
    if host != shared.origin.strip_prefix("http://") {
        return page(StatusCode::BAD_REQUEST, "Wrong address", "This listener only answers at 127.0.0.1.");
    }
    if request.uri().path() != shared.path {
        return page(StatusCode::NOT_FOUND, "Not found", "Nothing here.");
    }
    if request.method() != Method::GET {
        return page(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This address only receives a sign-in redirect.");
    }
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let get = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let name = &shared.name;
    // Any page can send the browser here. An answer without this login's `state` (exactly one) is
    // refused without using up the callback: the sign-in keeps waiting for its own answer, so a
    // forged request cannot abort it. Before the login's URL is known (discovery still running),
    // nothing can be its answer. (The core checks `state` again on what is accepted.)
    let expected = lock(&shared.expected_state).clone();
    let Some(expected) = expected else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not this sign-in",
            &format!("No sign-in to {name} has been opened in the browser yet, so this answer was refused."),
        );
    };
    {
        let mut states = query.iter().filter(|(n, _)| n == "state").map(|(_, v)| v.as_bytes());
        let matches = states.next().is_some_and(|state| constant_time_eq(state, expected.as_bytes()));
        if !matches || states.next().is_some() {
            return page(
                StatusCode::BAD_REQUEST,
                "Not this sign-in",
                &format!(
                    "This answer does not belong to the sign-in to {name} in progress, so it was refused. The \
                     sign-in is still waiting: finish it in the window it opened."
                ),
            );
        }
    }
    let Some(sender) = lock(&shared.callback).take() else {
        return page(
            StatusCode::CONFLICT,
            "Already received",
            "This sign-in already received its answer. You can close this tab.",
        );
    };
    let path_and_query = request.uri().path_and_query().map_or(shared.path.as_str(), |pq| pq.as_str());
    let url = format!("{}{path_and_query}", shared.origin);
    let _ = sender.send(url); // the receiver may have timed out meanwhile: nothing to do then
    if let Some(error) = get("error") {
        let detail = get("error_description").map(|d| format!(": {d}")).unwrap_or_default();
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!("Signing in to {name} failed ({error}{detail})."),
        );
    }
    page(StatusCode::OK, "Signed in", &format!("Signed in to {name}. You can close this tab."))
}

/// Compares without stopping at the first difference (the `state` is this login's secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A small HTML page; `message` is escaped.
fn page(status: StatusCode, title: &str, message: &str) -> Response<String> {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style>\
         </head><body><h1>{title}</h1><p id=\"message\">{}</p></body></html>\n",
        escape_html(message)
    );
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    // The address bar holds the code: never send it on as a Referer, never run anything on this page.
    headers.insert(http::header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// What a login needs from the runtime: 64 bytes from the OS generator (PKCE verifier, `state`,
/// `nonce`; the core has no randomness of its own) and, for a browser login without a fixed
/// redirect URI, a bound loopback receiver whose URL is the redirect URI.
pub(crate) async fn login_inputs(
    grant: Option<&Grant>,
    settings: &LoopbackSettings,
    name: &str,
) -> Result<(LoginInputs, Option<LoopbackReceiver>), Error> {
    let mut random = zeroize::Zeroizing::new(vec![0u8; 64]);
    getrandom::fill(&mut random)
        .map_err(|error| Error::configuration(format!("the operating system's random generator failed: {error}")))?;
    let receiver = match grant {
        Some(Grant::Browser { redirect_uri: None, .. }) => Some(LoopbackReceiver::bind(settings, name).await?),
        _ => None,
    };
    let redirect_uri = receiver.as_ref().map(|r| r.redirect_uri().to_owned());
    Ok((LoginInputs { random: Some(random), redirect_uri }, receiver))
}

/// Answers a [`Prompt::Browser`] through the loopback receiver: show the URL (the prompter opens
/// the browser), then wait for the redirect. `Err` only when the prompter's `show` fails (that
/// aborts the login, as for any prompt); a receiver failure (timeout) becomes `PromptFailed`.
pub(crate) async fn answer_with_receiver(
    prompter: &dyn Prompter,
    key: String,
    prompt: &Prompt,
    receiver: LoopbackReceiver,
) -> Result<Event, Error> {
    if let Prompt::Browser { authorization_url, .. } = prompt {
        receiver.expect_authorization_url(authorization_url);
    }
    prompter.show(&key, prompt).await?;
    Ok(match receiver.receive().await {
        Ok(answer) => Event::Answer { key, answer },
        Err(error) => Event::PromptFailed { key, error },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[tokio::test]
    async fn binds_loopback_only_and_rejects_bad_paths() {
        let receiver = LoopbackReceiver::bind(&LoopbackSettings::default(), "t").await.unwrap();
        assert!(receiver.redirect_uri().starts_with("http://127.0.0.1:"), "{}", receiver.redirect_uri());
        assert!(receiver.redirect_uri().ends_with("/callback"));
        let bad = LoopbackSettings { path: "callback".into(), ..LoopbackSettings::default() };
        assert!(matches!(LoopbackReceiver::bind(&bad, "t").await, Err(Error::Configuration { .. })));
    }
}
