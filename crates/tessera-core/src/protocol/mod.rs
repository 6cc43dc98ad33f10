//! The OAuth 2.0 / OpenID Connect wire protocol: request builders and response parsers.
//! Pure functions from values to [`HttpRequest`](crate::HttpRequest)s and from [`HttpResponse`](crate::HttpResponse)s to values.
//!
//! - RFC 6749 §4.3, §4.4, §5.1, §5.2, §6: token requests and responses
//! - RFC 6749 §2.3.1: client authentication (`client_secret_basic`, `client_secret_post`, none)
//! - RFC 7009: token revocation
//! - RFC 6749 §4.1, RFC 7636, RFC 9207: authorization requests and redirects (PKCE S256)
//! - RFC 8628: device authorization
//! - RFC 8693: token exchange
//! - OpenID Connect Core §3.1.3.7: ID token verification (JWKS)
//! - OpenID Connect Discovery 1.0: provider metadata
//! - Amazon Cognito's user-pool JSON protocol ([`cognito`]), which is not OAuth

mod authorization;
pub(crate) use authorization::printable;
pub mod cognito;
mod device;
mod discovery;
pub(crate) mod id_token;
mod token;
mod token_exchange;

pub use authorization::{
    AUTHORIZATION_RANDOM_LEN, AuthorizationRequest, AuthorizationSecrets, ExpectedRedirect,
    parse_authorization_response, pkce_s256_challenge,
};
pub use device::{
    DEVICE_CODE_GRANT_TYPE, DeviceAuthorization, device_authorization_request, parse_device_authorization,
};
pub use discovery::{ProviderMetadata, discovery_request, parse_discovery};
pub use id_token::{
    ID_TOKEN_LEEWAY, IdTokenClaims, IdTokenExpectations, JsonWebKeySet, jwks_request, parse_jwks, verify_id_token,
};
pub use token::{
    MAX_DESCRIPTION_LEN, parse_error_response, parse_revocation_response, parse_token_response, revocation_request,
    token_request,
};
pub use token_exchange::{
    ExchangedToken, TOKEN_EXCHANGE_GRANT_TYPE, TokenExchangeParams, parse_token_exchange_response,
    token_exchange_request, token_types,
};

use base64::Engine as _;
use url::form_urlencoded;

use crate::{Secret, flow::Grant};

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (`client_secret_basic`, the default for confidential clients).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// Public client: only `client_id` in the body.
    None,
}

/// The client's identity at the authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuth {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, for confidential clients.
    pub client_secret: Option<Secret>,
    /// How to send them.
    pub method: ClientAuthMethod,
}

impl ClientAuth {
    /// A confidential client using `client_secret_basic`.
    pub fn basic(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::Basic,
        }
    }

    /// A confidential client using `client_secret_post`.
    pub fn post(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::Post,
        }
    }

    /// A public client.
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientAuth { client_id: client_id.into(), client_secret: None, method: ClientAuthMethod::None }
    }

    /// Adds the client's credentials to a request being built.
    pub(crate) fn apply(
        &self,
        headers: &mut Vec<(String, String)>,
        form: &mut form_urlencoded::Serializer<'_, String>,
    ) {
        match (&self.method, &self.client_secret) {
            (ClientAuthMethod::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                // Held in a Secret so the clear pair is zeroed when it goes out of scope.
                let pair = Secret::new(format!("{}:{}", encode(&self.client_id), encode(secret.expose_secret())));
                let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.expose_secret()));
                headers.push(("authorization".into(), value));
            }
            (ClientAuthMethod::Post, Some(secret)) => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret.expose_secret());
            }
            _ => {
                form.append_pair("client_id", &self.client_id);
            }
        }
    }
}

/// Where the endpoints come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoints {
    /// Fetched from `{issuer}/.well-known/openid-configuration` on first network use.
    Discover {
        /// The issuer URL.
        issuer: String,
    },
    /// Given directly.
    Explicit {
        /// Token endpoint.
        token_endpoint: String,
        /// RFC 7009 revocation endpoint, when the server has one.
        revocation_endpoint: Option<String>,
    },
}

impl Endpoints {
    /// Explicit token endpoint, no revocation.
    pub fn explicit(token_endpoint: impl Into<String>) -> Self {
        Endpoints::Explicit { token_endpoint: token_endpoint.into(), revocation_endpoint: None }
    }

    /// Discovery from an issuer URL.
    pub fn discover(issuer: impl Into<String>) -> Self {
        Endpoints::Discover { issuer: issuer.into() }
    }
}

/// Everything needed to obtain tokens for one provider: who the client is, where the server is,
/// what to ask for and how.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Client identity.
    pub client: ClientAuth,
    /// Endpoints.
    pub endpoints: Endpoints,
    /// Requested scope (space separated).
    pub scope: Option<String>,
    /// The grant used to log in.
    pub grant: Grant,
}
