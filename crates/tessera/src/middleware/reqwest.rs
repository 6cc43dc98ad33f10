//! The `reqwest-middleware` integration.

use http::Extensions;
use http::header::AUTHORIZATION;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tracing::debug;

use super::{
    authorize, dpop_nonce_challenge, insufficient_scope, is_token_rejected, rejected_again, replacement_token,
};
use crate::Session;

/// A [`reqwest_middleware::Middleware`] that authenticates every request with a [`Session`] and,
/// when the API rejects the token, refreshes once and retries once (see the [module
/// docs](crate::middleware) for the exact rules).
///
/// Errors from tessera (a failed refresh, a token rejected again after a refresh) come back as
/// [`reqwest_middleware::Error::Middleware`] wrapping a [`tessera::Error`](crate::Error):
/// `error.downcast_ref::<tessera::Error>()` after matching the variant.
///
/// ```no_run
/// # async fn example(session: tessera::Session) -> Result<(), Box<dyn std::error::Error>> {
/// use tessera::middleware::AuthMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(AuthMiddleware::new(session))
///     .build();
/// let me = client.get("https://api.example.com/me").send().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AuthMiddleware {
    session: Session,
}

impl AuthMiddleware {
    /// Authenticates requests with `session`.
    pub fn new(session: Session) -> Self {
        AuthMiddleware { session }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let sent = self.session.authorization_header().await.map_err(reqwest_middleware::Error::middleware)?;
        // A copy made before the body is consumed; `None` for streaming bodies.
        let mut replay = request.try_clone();
        let method = request.method().as_str().to_owned();
        let target = request.url().to_string();
        if self.session.uses_dpop() {
            authorize(request.headers_mut(), &self.session, &sent, &method, &target)
                .map_err(reqwest_middleware::Error::middleware)?;
        } else {
            request.headers_mut().insert(AUTHORIZATION, sent.to_header_value());
        }
        let mut response = next.clone().run(request, extensions).await?;
        // DPoP: the server wants (another) nonce: once more with it, if the body can be replayed.
        let mut nonce_challenge =
            dpop_nonce_challenge(&self.session, &target, response.status().as_u16(), response.headers());
        if nonce_challenge && let Some(mut again) = replay.take() {
            replay = again.try_clone();
            authorize(again.headers_mut(), &self.session, &sent, &method, &target)
                .map_err(reqwest_middleware::Error::middleware)?;
            drop(response);
            response = next.clone().run(again, extensions).await?;
            nonce_challenge =
                dpop_nonce_challenge(&self.session, &target, response.status().as_u16(), response.headers());
        }
        // A scope the token lacks: a step-up (rule 8), not a refresh.
        if !nonce_challenge && let Some(scope) = insufficient_scope(response.status().as_u16(), response.headers()) {
            let status = response.status().as_u16();
            let Some(mut retry) = replay else {
                if let Err(error) = self.session.step_up_for(&target, status, &scope).await {
                    debug!(%error, "step-up after a non-replayable request failed");
                }
                return Ok(response);
            };
            let stepped = self
                .session
                .step_up_for(&target, status, &scope)
                .await
                .map_err(reqwest_middleware::Error::middleware)?;
            drop(response);
            authorize(retry.headers_mut(), &self.session, &stepped, &method, &target)
                .map_err(reqwest_middleware::Error::middleware)?;
            let response = next.run(retry, extensions).await?;
            dpop_nonce_challenge(&self.session, &target, response.status().as_u16(), response.headers());
            if insufficient_scope(response.status().as_u16(), response.headers()).is_some() {
                return Err(reqwest_middleware::Error::middleware(crate::session::insufficient_scope_error(
                    &target,
                    response.status().as_u16(),
                    "the API still finds a scope missing after a step-up login",
                )));
            }
            return Ok(response);
        }
        // A nonce challenge is not a rejected token: no refresh (the nonce is remembered for the
        // next request).
        if nonce_challenge || !is_token_rejected(response.status().as_u16(), response.headers()) {
            return Ok(response);
        }
        let url = response.url().to_string();
        let status = response.status().as_u16();
        let Some(mut retry) = replay else {
            // Not replayable: hand back the rejection, but let the next request carry a new token.
            if let Err(error) = replacement_token(&self.session, &sent).await {
                debug!(%error, "refresh after a rejected streaming request failed");
            }
            return Ok(response);
        };
        let replacement =
            replacement_token(&self.session, &sent).await.map_err(reqwest_middleware::Error::middleware)?;
        let Some(replacement) = replacement else {
            return Err(reqwest_middleware::Error::middleware(rejected_again(
                &url,
                status,
                "the API rejected the token and no other token can be obtained without the user",
            )));
        };
        drop(response);
        authorize(retry.headers_mut(), &self.session, &replacement, &method, &target)
            .map_err(reqwest_middleware::Error::middleware)?;
        let response = next.run(retry, extensions).await?;
        dpop_nonce_challenge(&self.session, &target, response.status().as_u16(), response.headers());
        if is_token_rejected(response.status().as_u16(), response.headers()) {
            return Err(reqwest_middleware::Error::middleware(rejected_again(
                &url,
                response.status().as_u16(),
                "the API rejected the token again after a refresh",
            )));
        }
        Ok(response)
    }
}
