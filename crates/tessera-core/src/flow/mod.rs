//! Every flow the engine runs, one per file, and the [`Grant`]s that choose them.
//!
//! ```text
//!                       Grant::flow(purpose, inputs) ─► Box<dyn Flow>
//!   Login   password, client_credentials, refresh_token, ─► TokenRequest<form>  (token_request.rs +
//!           jwt_bearer                                                           password.rs,
//!           device_code ─► DeviceCodeFlow                                        client_credentials.rs,
//!           browser ─► AuthorizationCodeFlow ┐                                   refresh.rs,
//!           email_otp ─► EmailOtpLogin       ├─ behind Resending (resend.rs)     jwt_bearer.rs)
//!           cognito ─► CognitoLogin          ┘
//!           static ─► StaticTokenFlow        custom ─► FlowFactory::flow
//!   Refresh cognito ─► CognitoRefresh   custom ─► its own, or   others ─► TokenRequest<RefreshForm>
//!   Revoke  cognito ─► CognitoRevoke    custom ─► its own, or   others ─► RevocationFlow (RFC 7009)
//! ```
//! Every flow implements [`Flow`] (seam.rs): the engine starts it, feeds it responses, transport
//! failures, timers and answers, and turns the [`FlowStep`]s it returns into actions. A flow owns
//! its states and its retry rules (safe retries for token requests, the resend rules of the
//! interactive flows, polling for the device code); no flow does I/O, keeps a clock or draws random
//! numbers: time, jitter ([`FlowContext::jitter`]) and login secrets ([`LoginInputs`]) come in.

mod authorization_code;
mod client_credentials;
mod cognito;
mod device_code;
mod email_otp;
mod jwt_bearer;
mod password;
mod prompt;
mod refresh;
mod resend;
mod retry;
mod revocation;
mod seam;
mod static_token;
mod token_request;
mod workload_identity;

pub use cognito::CognitoAuthFlow;
pub use email_otp::{OTP_START_ENDPOINT_FIELD, OTP_VERIFY_ENDPOINT_FIELD};
pub(crate) use jwt_bearer::checked_grant_signer;
pub use jwt_bearer::{DEFAULT_ASSERTION_LIFETIME, JWT_BEARER_GRANT_TYPE};
pub use password::totp_code;
pub use prompt::{CodeChannel, LoginInputs, Prompt};
pub use refresh::merge_refreshed;
pub use retry::RetrySettings;
pub use seam::{Flow, FlowContext, FlowPurpose, FlowStep};
pub use workload_identity::{DEFAULT_SOURCE_TIMEOUT, Exchange, TokenSource};

use std::sync::Arc;

use crate::{ClientAssertionKey, Error, Secret, Timestamp};
use resend::Resending;
use token_request::TokenRequest;

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
    /// JWT bearer (RFC 7523 §2.1): a JWT signed with the client's `key` is the grant (Google
    /// service accounts, Okta, Keycloak, Salesforce). `iss` is the client id; no refresh token, a
    /// new assertion on expiry. Client authentication is optional (a public [`crate::ClientAuth`]
    /// sends no `client_id`). See docs/service-accounts.md.
    JwtBearer {
        /// The key that signs the assertion (`assertion_key`, `assertion_alg`, `assertion_kid`).
        key: ClientAssertionKey,
        /// `sub`; `None`: the client id.
        subject: Option<String>,
        /// `aud`; `None`: the token endpoint.
        audience: Option<String>,
        /// `scope` as a claim of the assertion instead of a form field (Google service accounts).
        scope_in_assertion: bool,
        /// From `iat` to `exp` ([`DEFAULT_ASSERTION_LIFETIME`]: 1 h).
        lifetime: std::time::Duration,
    },
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
    /// Email one-time code, generic JSON flavour: the server mails a code, a person types it
    /// ([`Prompt::Code`]), the server answers with OAuth tokens. Interactive: started only by an
    /// explicit login. Refresh and revocation are standard OAuth. See docs/email-otp.md.
    EmailOtp {
        /// Where the code is sent.
        email: String,
        /// `POST` here to send a code; `None`: the discovery field `otp_start_endpoint`.
        otp_start_endpoint: Option<String>,
        /// `POST` the code here; `None`: the discovery field `otp_verify_endpoint`.
        otp_verify_endpoint: Option<String>,
        /// How many codes a person may try per login (the server's own limit applies too). Default 3.
        max_code_attempts: u32,
    },
    /// Amazon Cognito user pools over Cognito's JSON protocol (`InitiateAuth`,
    /// `RespondToAuthChallenge`, `REFRESH_TOKEN_AUTH`, `RevokeToken`). The app client's id and secret
    /// come from [`crate::ProviderConfig::client`]; with a secret, every call carries `SECRET_HASH`.
    /// The provider's `endpoints` are not used for this grant (give `Endpoints::explicit(endpoint)`).
    /// See docs/cognito.md.
    Cognito {
        /// The Cognito service URL, e.g. `https://cognito-idp.eu-west-1.amazonaws.com/` (or an emulator's).
        endpoint_url: String,
        /// The username (or email / phone alias) to log in with.
        username: String,
        /// Required for [`CognitoAuthFlow::UserPassword`].
        password: Option<Secret>,
        /// `USER_PASSWORD_AUTH` or `CUSTOM_AUTH`.
        auth_flow: CognitoAuthFlow,
        /// A base32 TOTP secret: `SOFTWARE_TOKEN_MFA` is then answered without a person.
        totp_secret: Option<Secret>,
        /// How many codes a person may try per challenge. Default 3.
        max_code_attempts: u32,
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
        authorization_params: Vec<(String, String)>,
    },
    /// Workload identity federation: a platform token read from `source` at every login (the
    /// runtime reads it: [`Prompt::SubjectToken`]) is traded for an access token, by RFC 8693 token
    /// exchange or as the client assertion of the client credentials grant ([`Exchange`]). No
    /// refresh token: on expiry, a new login reads the source again. See docs/workload-identity.md.
    WorkloadIdentity {
        /// Where the subject token comes from.
        source: TokenSource,
        /// `subject_token_type` (RFC 8693 §3), default `urn:ietf:params:oauth:token-type:jwt`.
        subject_token_type: String,
        /// What the token is traded for, and how.
        exchange: Exchange,
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

/// Builds the flows of a grant that tessera does not have built in (another wire protocol, a
/// challenge/response login). Wrap it in [`CustomGrant`] to use it as a [`Grant`].
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

/// How many one-time codes a person may try per login unless configured otherwise.
pub const DEFAULT_MAX_CODE_ATTEMPTS: u32 = 3;

impl Grant {
    /// [`Grant::EmailOtp`] for `email`, with endpoints from discovery and 3 attempts.
    pub fn email_otp(email: impl Into<String>) -> Self {
        Grant::EmailOtp {
            email: email.into(),
            otp_start_endpoint: None,
            otp_verify_endpoint: None,
            max_code_attempts: DEFAULT_MAX_CODE_ATTEMPTS,
        }
    }

    /// [`Grant::JwtBearer`] signed with `key`: `sub` the client id, `aud` the token endpoint,
    /// scope in the form, 1 h assertions.
    pub fn jwt_bearer(key: ClientAssertionKey) -> Self {
        Grant::JwtBearer {
            key,
            subject: None,
            audience: None,
            scope_in_assertion: false,
            lifetime: DEFAULT_ASSERTION_LIFETIME,
        }
    }

    /// [`Grant::Cognito`] with `USER_PASSWORD_AUTH`, no TOTP secret and 3 attempts per challenge.
    pub fn cognito_password(
        endpoint: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Grant::Cognito {
            endpoint_url: endpoint.into(),
            username: username.into(),
            password: Some(password.into()),
            auth_flow: CognitoAuthFlow::UserPassword,
            totp_secret: None,
            max_code_attempts: DEFAULT_MAX_CODE_ATTEMPTS,
        }
    }

    /// The grant's configuration name: its [`ProviderKind`](crate::provider_spec::ProviderKind)'s
    /// `type` (`password`, `client_credentials`, ...), or a custom factory's name.
    pub fn name(&self) -> &'static str {
        match self {
            Grant::Custom(custom) => custom.0.name(),
            _ => crate::provider_spec::ProviderKind::of(self).map_or("custom", |kind| kind.as_str()),
        }
    }

    /// True when a login with this grant needs no person: the engine may fall back to it
    /// when a refresh token is rejected.
    pub fn logs_in_unattended(&self) -> bool {
        match self {
            Grant::Password { totp, .. } => !matches!(totp, Some(TotpSource::Code(_))),
            Grant::ClientCredentials | Grant::JwtBearer { .. } | Grant::WorkloadIdentity { .. } => true,
            // With a password, a Cognito login needs nobody unless the pool asks for a code (SMS,
            // email): then the session's prompter is asked, or the login fails without one.
            Grant::Cognito { password, auth_flow, .. } => {
                password.is_some() && *auth_flow == CognitoAuthFlow::UserPassword
            }
            Grant::EmailOtp { .. } => false,
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
            Grant::DeviceCode { .. } | Grant::EmailOtp { .. } | Grant::Browser { .. } => true,
            Grant::Cognito { .. } => !self.logs_in_unattended(),
            Grant::Custom(custom) => custom.0.is_interactive(),
            _ => false,
        }
    }

    /// The flow for `purpose`: what the engine runs to log in, to renew the tokens held, or to revoke
    /// them at logout. A grant without a refresh or revocation of its own gets the standard ones (the
    /// OAuth refresh token grant, RFC 7009 revocation), as does a [`FlowFactory`] that returns `None`
    /// for them; a factory's `None` for [`FlowPurpose::Login`] is a configuration error (the grant
    /// cannot log in). `inputs` are for logins that need the runtime's randomness (browser).
    pub fn flow(&self, purpose: FlowPurpose, inputs: &LoginInputs) -> Result<Box<dyn Flow>, Error> {
        // The standard flows, for grants without their own.
        let refresh = || -> Box<dyn Flow> { Box::new(TokenRequest::new(refresh::RefreshForm::held())) };
        let revocation = || -> Box<dyn Flow> { Box::new(revocation::RevocationFlow::new()) };
        Ok(match (self, purpose) {
            (Grant::Custom(custom), purpose) => match (custom.0.flow(purpose, inputs)?, purpose) {
                (Some(flow), _) => flow,
                (None, FlowPurpose::Login) => {
                    return Err(Error::configuration(format!("the {} grant has no login flow", self.name())));
                }
                (None, FlowPurpose::Refresh) => refresh(),
                (None, FlowPurpose::Revoke) => revocation(),
            },
            (Grant::Password { username, password, totp }, FlowPurpose::Login) => {
                Box::new(TokenRequest::new(password::PasswordForm {
                    username: username.clone(),
                    password: password.clone(),
                    totp: totp.clone(),
                }))
            }
            (Grant::ClientCredentials, FlowPurpose::Login) => {
                Box::new(TokenRequest::new(client_credentials::ClientCredentialsForm))
            }
            (grant @ Grant::JwtBearer { .. }, FlowPurpose::Login) => Box::new(TokenRequest::new(
                jwt_bearer::JwtBearerForm::of(grant).ok_or_else(|| Error::internal("not a jwt_bearer grant"))?,
            )),
            (Grant::WorkloadIdentity { source, subject_token_type, exchange }, FlowPurpose::Login) => {
                Box::new(workload_identity::WorkloadIdentityLogin::new(
                    source.clone(),
                    subject_token_type.clone(),
                    exchange.clone(),
                ))
            }
            (Grant::RefreshToken { refresh_token }, FlowPurpose::Login) => {
                Box::new(TokenRequest::new(refresh::RefreshForm::configured(refresh_token.clone())))
            }
            (Grant::DeviceCode { device_authorization_endpoint }, FlowPurpose::Login) => {
                Box::new(device_code::DeviceCodeFlow::new(device_authorization_endpoint.clone()))
            }
            (Grant::Static { access_token, expires_at }, FlowPurpose::Login) => {
                Box::new(static_token::StaticTokenFlow { access_token: access_token.clone(), expires_at: *expires_at })
            }
            (
                Grant::EmailOtp { email, otp_start_endpoint, otp_verify_endpoint, max_code_attempts },
                FlowPurpose::Login,
            ) => Box::new(Resending::new(email_otp::EmailOtpLogin::new(
                email.clone(),
                otp_start_endpoint.clone(),
                otp_verify_endpoint.clone(),
                *max_code_attempts,
            ))),
            (Grant::Browser { authorization_endpoint, redirect_uri, authorization_params }, FlowPurpose::Login) => {
                let flow = authorization_code::AuthorizationCodeFlow::new(
                    authorization_endpoint.as_deref(),
                    redirect_uri.as_deref(),
                    authorization_params,
                    inputs,
                )?;
                Box::new(Resending::new(flow))
            }
            (
                Grant::Cognito { endpoint_url, username, password, auth_flow, totp_secret, max_code_attempts },
                purpose,
            ) => match purpose {
                FlowPurpose::Login => Box::new(Resending::new(cognito::CognitoLogin::new(cognito::CognitoSettings {
                    endpoint: endpoint_url.clone(),
                    username: username.clone(),
                    password: password.clone(),
                    auth_flow: *auth_flow,
                    totp_secret: totp_secret.clone(),
                    max_attempts: *max_code_attempts,
                }))),
                FlowPurpose::Refresh => Box::new(Resending::new(cognito::CognitoRefresh {
                    endpoint: endpoint_url.clone(),
                    username: username.clone(),
                })),
                FlowPurpose::Revoke => {
                    Box::new(Resending::new(cognito::CognitoRevoke { endpoint: endpoint_url.clone() }))
                }
            },
            (_, FlowPurpose::Refresh) => refresh(),
            (_, FlowPurpose::Revoke) => revocation(),
        })
    }

    /// True when a login may start without being asked for (from `ensure` or `refresh`, when no
    /// refresh token can be used). Never when it needs a person. Once tokens were held, only when
    /// repeating the login needs nobody: the first login spent a typed TOTP code, or the refresh
    /// token of the refresh-token grant, and sending it again would be refused (or be reuse).
    pub(crate) fn logs_in_silently(&self, tokens_held: bool) -> bool {
        match self {
            _ if self.is_interactive() => false,
            // Static tokens are read again, not requested; a custom grant that needs no person
            // logs in whenever needed (its factory knows what its login spends).
            Grant::Static { .. } | Grant::Custom(_) => true,
            _ => !tokens_held || self.logs_in_unattended(),
        }
    }

    /// True when a login spends a refresh token (the refresh-token grant): its rejection then
    /// follows the rule for a rejected refresh (see the engine).
    pub(crate) fn login_spends_refresh_token(&self) -> bool {
        matches!(self, Grant::RefreshToken { .. })
    }
}
