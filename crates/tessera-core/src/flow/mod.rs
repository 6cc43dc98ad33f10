//! One module per grant, and the state machine they share.
//!
//! Every non-interactive grant has the same shape: (discover) → POST the token endpoint → parse,
//! with retries only where they are safe. [`TokenFlow`] is that state machine; the grant modules
//! say what goes in the form and how the answer is merged with what we had.

mod authorization_code;
mod client_credentials;
mod device_code;
mod machine;
mod password;
mod pluggable;
mod prompt;
mod refresh;

pub use device_code::{DeviceFlow, DeviceStep};
pub use machine::{RetrySettings, Step, TokenFlow};
pub use password::totp_code;
pub use pluggable::{Flow, FlowContext, FlowPurpose, FlowStep};
pub use prompt::{CodeChannel, LoginInputs, Prompt};
pub use refresh::merge_refreshed;

use std::sync::Arc;

use crate::{Error, Secret, Timestamp, TokenSet};

/// How a provider logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// Resource owner password credentials (RFC 6749 §4.3), with an optional `totp` form field.
    Password {
        /// `username`
        username: String,
        /// `password`
        password: Secret,
        /// Second factor, sent as the `totp` form field.
        totp: Option<TotpSource>,
    },
    /// Client credentials (RFC 6749 §4.4): no refresh token, a new request on expiry.
    ClientCredentials,
    /// Start from a refresh token obtained elsewhere (RFC 6749 §6). The session ends when it expires.
    RefreshToken {
        /// The initial refresh token.
        refresh_token: Secret,
    },
    /// Device authorization (RFC 8628): the user approves on another device. Interactive: started
    /// only by an explicit login, never by a silent refresh.
    DeviceCode {
        /// Device authorization endpoint; `None`: from discovery.
        device_authorization_endpoint: Option<String>,
    },
    /// Browser login: authorization code with PKCE S256 (RFC 6749 §4.1, RFC 7636, RFC 8252), `state`
    /// and `nonce` checked, the ID token verified against the issuer's JWKS. Interactive: started only
    /// by an explicit login. Refresh and revocation are the standard OAuth ones.
    Browser {
        /// Authorization endpoint; `None`: from discovery.
        authorization_endpoint: Option<String>,
        /// A fixed redirect URI registered with the server, for paste mode (the person copies the
        /// URL the browser ends on). `None`: the runtime binds a loopback listener on 127.0.0.1 and
        /// passes its URL in [`LoginInputs::redirect_uri`].
        redirect_uri: Option<String>,
        /// More authorization request parameters, e.g. `("prompt", "consent")`, `("login_hint", ...)`.
        /// They cannot replace the ones tessera sets (state, nonce, PKCE, redirect_uri, scope).
        extra_params: Vec<(String, String)>,
    },
    /// A flow brought by the caller: see [`FlowFactory`].
    Custom(CustomGrant),
    /// A token given by the caller. Nothing can renew it.
    Static {
        /// The token.
        access_token: Secret,
        /// When it expires, when known.
        expires_at: Option<Timestamp>,
    },
}

/// Builds the flows of a grant that the token-endpoint machine does not cover (another wire
/// protocol, a challenge/response login). Wrap it in [`CustomGrant`] to use it as a [`Grant`].
pub trait FlowFactory: Send + Sync + std::fmt::Debug {
    /// The grant's name in configuration and messages.
    fn name(&self) -> &'static str;

    /// The flow for `purpose`, or `None` for the standard one (OAuth refresh, RFC 7009 revocation).
    /// `None` for [`FlowPurpose::Login`] means the grant cannot log in.
    fn flow(&self, purpose: FlowPurpose, inputs: &LoginInputs) -> Result<Option<Box<dyn Flow>>, Error>;

    /// True when logging in needs a person (see [`Grant::is_interactive`]).
    fn is_interactive(&self) -> bool;

    /// True when a login needs nobody (see [`Grant::logs_in_unattended`]).
    fn logs_in_unattended(&self) -> bool {
        !self.is_interactive()
    }
}

/// A [`FlowFactory`] as a [`Grant`]. Two are equal when they are the same factory.
#[derive(Clone, Debug)]
pub struct CustomGrant(pub Arc<dyn FlowFactory>);

impl PartialEq for CustomGrant {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CustomGrant {}

/// Where the TOTP code comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TotpSource {
    /// A code typed by the user (valid for one login).
    Code(Secret),
    /// A base32 shared secret (RFC 6238: SHA-1, 6 digits, 30 s); a fresh code is generated per request.
    Secret(Secret),
}

impl Grant {
    /// The grant's configuration name (`password`, `client_credentials`, `refresh_token`, `static`).
    pub fn name(&self) -> &'static str {
        match self {
            Grant::Password { .. } => "password",
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::DeviceCode { .. } => "device_code",
            Grant::Browser { .. } => "browser",
            Grant::Custom(custom) => custom.0.name(),
            Grant::Static { .. } => "static",
        }
    }

    /// True when a login with this grant needs no person: the engine may fall back to it
    /// when a refresh token is rejected.
    pub fn logs_in_unattended(&self) -> bool {
        match self {
            Grant::Password { totp, .. } => !matches!(totp, Some(TotpSource::Code(_))),
            Grant::ClientCredentials => true,
            Grant::Custom(custom) => custom.0.logs_in_unattended(),
            Grant::RefreshToken { .. } | Grant::Static { .. } | Grant::DeviceCode { .. } | Grant::Browser { .. } => {
                false
            }
        }
    }

    /// True when logging in needs a person during the flow (a code to show or to type): such a
    /// login starts only when asked for explicitly ([`crate::Engine::login`]), never from `ensure`.
    pub fn is_interactive(&self) -> bool {
        match self {
            Grant::DeviceCode { .. } | Grant::Browser { .. } => true,
            Grant::Custom(custom) => custom.0.is_interactive(),
            _ => false,
        }
    }

    /// The pluggable flow for `purpose`, when this grant has one; `None`: the built-in machinery.
    pub(crate) fn pluggable_flow(
        &self,
        purpose: FlowPurpose,
        inputs: &LoginInputs,
    ) -> Result<Option<Box<dyn Flow>>, Error> {
        match self {
            Grant::Custom(custom) => custom.0.flow(purpose, inputs),
            Grant::Browser { authorization_endpoint, redirect_uri, extra_params } if purpose == FlowPurpose::Login => {
                let flow = authorization_code::AuthorizationCodeFlow::new(
                    authorization_endpoint.as_deref(),
                    redirect_uri.as_deref(),
                    extra_params,
                    inputs,
                )?;
                Ok(Some(Box::new(flow)))
            }
            _ => Ok(None),
        }
    }

    /// The token-endpoint form for a login at `now` (`None` for static tokens, which need no request).
    pub(crate) fn login_params(&self, now: Timestamp) -> Result<Option<Vec<(&'static str, Secret)>>, Error> {
        Ok(match self {
            Grant::Password { username, password, totp } => {
                Some(password::params(username, password, totp.as_ref(), now)?)
            }
            Grant::ClientCredentials => Some(client_credentials::params()),
            Grant::RefreshToken { refresh_token } => Some(refresh::params(refresh_token)),
            Grant::Static { .. } | Grant::DeviceCode { .. } | Grant::Browser { .. } | Grant::Custom(_) => None,
        })
    }

    /// The tokens of a static grant.
    pub(crate) fn static_tokens(&self, now: Timestamp) -> Option<TokenSet> {
        match self {
            Grant::Static { access_token, expires_at } => {
                Some(TokenSet::bearer(access_token.clone(), *expires_at, now))
            }
            _ => None,
        }
    }
}
