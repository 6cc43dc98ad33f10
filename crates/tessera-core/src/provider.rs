//! What the engine knows about one provider: the client, where the endpoints come from, the scope
//! and the grant. Configuration only: no protocol and no flow logic here.

use crate::{ClientAuth, flow::Grant};

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
