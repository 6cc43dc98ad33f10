//! The `tower` integration: a [`Layer`] for any `Service<http::Request<B>>` client (hyper-util,
//! axum/tower stacks, tonic channels).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower::{BoxError, Layer, Service};
use tracing::debug;

use super::{
    authorize, dpop_nonce_challenge, insufficient_scope, is_token_rejected, rejected_again, replacement_token,
};
use crate::Session;

/// A request body that can be copied before sending, so that a rejected request can be sent again.
pub trait ReplayableBody: Sized {
    /// A copy of the body, or `None` when it cannot be replayed (a stream).
    fn try_replay(&self) -> Option<Self>;
}

impl ReplayableBody for () {
    fn try_replay(&self) -> Option<Self> {
        Some(())
    }
}

impl ReplayableBody for String {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayableBody for Vec<u8> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayableBody for Bytes {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D: Clone> ReplayableBody for http_body_util::Full<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayableBody for http_body_util::Empty<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(*self)
    }
}

/// Boxed bodies may be streams: never replayed.
impl<D, E> ReplayableBody for http_body_util::combinators::BoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// Boxed bodies may be streams: never replayed.
impl<D, E> ReplayableBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// Buffered reqwest bodies are replayed; streaming ones are not.
impl ReplayableBody for reqwest::Body {
    fn try_replay(&self) -> Option<Self> {
        self.as_bytes().map(|bytes| reqwest::Body::from(Bytes::copy_from_slice(bytes)))
    }
}

/// Decides whether (and how) a rejected request is sent again.
pub trait ReplayPolicy<B>: Clone + Send + Sync + 'static {
    /// A copy of `request` to send again after a refresh, or `None` to return the rejection as is.
    fn replay(&self, request: &Request<B>) -> Option<Request<B>>;
}

/// The default policy: replay requests whose body type is [`ReplayableBody`] and says it can be copied.
#[derive(Clone, Copy, Debug, Default)]
pub struct BufferedBodies;

impl<B: ReplayableBody> ReplayPolicy<B> for BufferedBodies {
    fn replay(&self, request: &Request<B>) -> Option<Request<B>> {
        let mut copy = Request::new(request.body().try_replay()?);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// Never replay (streaming clients such as tonic): a rejection is returned as is, and the
/// refreshed token serves the next request.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverReplay;

impl<B> ReplayPolicy<B> for NeverReplay {
    fn replay(&self, _request: &Request<B>) -> Option<Request<B>> {
        None
    }
}

/// A [`tower::Layer`] that authenticates every request with a [`Session`] and, when the API
/// rejects the token, refreshes once and retries once (see the [module docs](crate::middleware)).
///
/// The wrapped service's errors are boxed ([`tower::BoxError`]); tessera's own errors (a failed
/// refresh, a token rejected again) are boxed [`tessera::Error`](crate::Error)s:
/// `error.downcast_ref::<tessera::Error>()`.
///
/// ```no_run
/// # fn example(session: tessera::Session) {
/// use tessera::middleware::AuthLayer;
/// use tower::Layer;
///
/// let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
///     .build_http::<http_body_util::Full<bytes::Bytes>>();
/// let authenticated = AuthLayer::new(session).layer(client);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AuthLayer<P = BufferedBodies> {
    session: Session,
    policy: P,
    origin: Option<Arc<str>>,
}

impl AuthLayer {
    /// Authenticates requests with `session`; replays buffered bodies ([`BufferedBodies`]).
    pub fn new(session: Session) -> Self {
        AuthLayer { session, policy: BufferedBodies, origin: None }
    }
}

impl<P> AuthLayer<P> {
    /// The same layer with another replay policy (e.g. [`NeverReplay`] for tonic).
    pub fn replay<Q>(self, policy: Q) -> AuthLayer<Q> {
        AuthLayer { session: self.session, policy, origin: self.origin }
    }

    /// The scheme and authority (`https://api.example.com`) of requests whose URI is a path
    /// only (origin form, as a tonic channel or a service with a base URL sends them). A DPoP
    /// proof signs the request's full URL (RFC 9449 `htu`): without this, such a request to a
    /// DPoP provider fails with a configuration error instead of carrying a proof the API must
    /// refuse. Requests with an absolute URI keep their own. Errors when `origin` is not an
    /// `http(s)://host[:port]` URL without a path or `user:password@`.
    pub fn origin(self, origin: &str) -> Result<Self, crate::Error> {
        let trimmed = origin.strip_suffix('/').unwrap_or(origin);
        let parsed: http::Uri = trimmed
            .parse()
            .map_err(|_| crate::Error::configuration("AuthLayer::origin: not a URL (give https://host[:port])"))?;
        let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
        let path_empty = parsed.path_and_query().is_none_or(|path| path.as_str().is_empty() || path.as_str() == "/");
        // No userinfo: it would travel in every proof's `htu` and show in error messages.
        let plain_authority = parsed.authority().is_some_and(|authority| !authority.as_str().contains('@'));
        if !scheme_ok || !plain_authority || !path_empty {
            return Err(crate::Error::configuration(
                "AuthLayer::origin: give the scheme and authority only (https://host[:port]), without a path or credentials",
            ));
        }
        Ok(AuthLayer { origin: Some(trimmed.into()), ..self })
    }
}

impl<S, P: Clone> Layer<S> for AuthLayer<P> {
    type Service = AuthService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, session: self.session.clone(), policy: self.policy.clone(), origin: self.origin.clone() }
    }
}

/// The service built by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S, P = BufferedBodies> {
    inner: S,
    session: Session,
    policy: P,
    origin: Option<Arc<str>>,
}

/// The request's full URL: its URI when absolute, else the layer's origin and the URI's path.
/// For a DPoP provider a path-only URI without an origin is an error (the proof's `htu` must be
/// the full URL); a bearer request only uses the URL in error messages.
fn target_url(uri: &http::Uri, origin: Option<&str>, dpop: bool) -> Result<String, crate::Error> {
    if uri.scheme().is_some() && uri.authority().is_some() {
        return Ok(uri.to_string());
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    match origin {
        Some(origin) => Ok(format!("{origin}{path}")),
        None if dpop => Err(crate::Error::configuration(
            "a DPoP proof needs the request's full URL, and this request's URI is a path only: \
             give the layer the API's origin (AuthLayer::origin)",
        )),
        None => Ok(uri.to_string()),
    }
}

impl<S, P, B, ResBody> Service<Request<B>> for AuthService<S, P>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    P: ReplayPolicy<B>,
    B: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone may not be ready; the instance that was polled ready serves the first call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let session = self.session.clone();
        let policy = self.policy.clone();
        let origin = self.origin.clone();
        Box::pin(async move {
            let url = target_url(request.uri(), origin.as_deref(), session.uses_dpop())?;
            let sent = session.authorization_header().await?;
            let mut replay = policy.replay(&request);
            let method = request.method().as_str().to_owned();
            if session.uses_dpop() {
                authorize(request.headers_mut(), &session, &sent, &method, &url)?;
            } else {
                request.headers_mut().insert(AUTHORIZATION, sent.to_header_value());
            }
            let mut response = inner.call(request).await.map_err(Into::into)?;
            // DPoP: the server wants (another) nonce: once more with it, if the body can be replayed.
            let mut nonce_challenge =
                dpop_nonce_challenge(&session, &url, response.status().as_u16(), response.headers());
            if nonce_challenge && let Some(mut again) = replay.take() {
                replay = policy.replay(&again);
                authorize(again.headers_mut(), &session, &sent, &method, &url)?;
                drop(response);
                std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
                response = inner.call(again).await.map_err(Into::into)?;
                nonce_challenge = dpop_nonce_challenge(&session, &url, response.status().as_u16(), response.headers());
            }
            // A scope the token lacks: a step-up (rule 8), not a refresh.
            if !nonce_challenge && let Some(scope) = insufficient_scope(response.status().as_u16(), response.headers())
            {
                let status = response.status().as_u16();
                let Some(mut retry) = replay else {
                    if let Err(error) = session.step_up_for(&url, status, &scope).await {
                        debug!(%error, "step-up after a non-replayable request failed");
                    }
                    return Ok(response);
                };
                let stepped = session.step_up_for(&url, status, &scope).await?;
                drop(response);
                authorize(retry.headers_mut(), &session, &stepped, &method, &url)?;
                std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
                let response = inner.call(retry).await.map_err(Into::into)?;
                dpop_nonce_challenge(&session, &url, response.status().as_u16(), response.headers());
                if insufficient_scope(response.status().as_u16(), response.headers()).is_some() {
                    return Err(crate::session::insufficient_scope_error(
                        &url,
                        response.status().as_u16(),
                        "the API still finds a scope missing after a step-up login",
                    )
                    .into());
                }
                return Ok(response);
            }
            // A nonce challenge is not a rejected token: no refresh (the nonce is remembered for
            // the next request).
            if nonce_challenge || !is_token_rejected(response.status().as_u16(), response.headers()) {
                return Ok(response);
            }
            let status = response.status().as_u16();
            let Some(mut retry) = replay else {
                if let Err(error) = replacement_token(&session, &sent).await {
                    debug!(%error, "refresh after a rejected non-replayable request failed");
                }
                return Ok(response);
            };
            let Some(replacement) = replacement_token(&session, &sent).await? else {
                return Err(rejected_again(
                    &url,
                    status,
                    "the API rejected the token and no other token can be obtained without the user",
                )
                .into());
            };
            drop(response);
            authorize(retry.headers_mut(), &session, &replacement, &method, &url)?;
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
            let response = inner.call(retry).await.map_err(Into::into)?;
            dpop_nonce_challenge(&session, &url, response.status().as_u16(), response.headers());
            if is_token_rejected(response.status().as_u16(), response.headers()) {
                return Err(rejected_again(
                    &url,
                    response.status().as_u16(),
                    "the API rejected the token again after a refresh",
                )
                .into());
            }
            Ok(response)
        })
    }
}
