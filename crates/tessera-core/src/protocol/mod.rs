//! The OAuth 2.0 / OpenID Connect wire protocol: request builders and response parsers.
//! A leaf layer: it knows requests, responses and the client's identity, never grants, flows or
//! provider configuration.
//! Pure functions from values to [`HttpRequest`](crate::HttpRequest)s and from [`HttpResponse`](crate::HttpResponse)s to values.
//!
//! - RFC 6749 §4.3, §4.4, §5.1, §5.2, §6: token requests and responses
//! - RFC 6749 §2.3.1: client authentication, applied from [`ClientAuth`](crate::ClientAuth)
//! - RFC 7009: token revocation
//! - RFC 6749 §4.1, RFC 7636, RFC 9207: authorization requests and redirects (PKCE S256)
//! - RFC 8628: device authorization
//! - RFC 8693: token exchange
//! - OpenID Connect Core §3.1.3.7: ID token verification (JWKS)
//! - OpenID Connect Discovery 1.0: provider metadata
//! - RFC 9728, RFC 8414: resource-first discovery ([`resource`]): protected resource metadata,
//!   authorization server metadata, their well-known URLs and identifier checks
//! - RFC 7591: dynamic client registration ([`registration`])
//! - RFC 9110 §11.6.1, RFC 6750 §3, RFC 9449 §7.1: `WWW-Authenticate` challenges ([`challenge`])
//! - Amazon Cognito's user-pool JSON protocol ([`cognito`]), which is not OAuth

mod authorization;
pub(crate) use authorization::printable;
pub(crate) use token::{is_hidden, server_text};
pub mod challenge;
pub mod cognito;
mod device;
mod discovery;
pub(crate) mod id_token;
pub mod registration;
pub mod resource;
mod token;
mod token_exchange;

pub use authorization::{
    AUTHORIZATION_RANDOM_LEN, AuthorizationRequest, AuthorizationSecrets, ExpectedRedirect,
    RESERVED_AUTHORIZATION_PARAMS, parse_authorization_response, pkce_s256_challenge,
};
pub use device::{
    DEVICE_CODE_GRANT_TYPE, DeviceAuthorization, device_authorization_request, parse_device_authorization,
};
pub use discovery::{ProviderMetadata, discovery_request, discovery_url, parse_discovery};
pub use id_token::{
    Account, ID_TOKEN_LEEWAY, IdTokenClaims, IdTokenExpectations, JsonWebKeySet, jwks_request, parse_jwks,
    unverified_account, verify_id_token,
};
pub use token::{
    MAX_DESCRIPTION_LEN, parse_error_response, parse_revocation_response, parse_token_response, revocation_request,
    token_request,
};
pub use token_exchange::{
    ExchangedToken, TOKEN_EXCHANGE_GRANT_TYPE, TokenExchangeParams, parse_token_exchange_response,
    token_exchange_request, token_types,
};
