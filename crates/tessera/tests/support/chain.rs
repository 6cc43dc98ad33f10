//! Token-chain clients against the reference IdP's `/chain/*` endpoints.

use tessera::Session;
use tessera::chain::{ChainConfig, DomainClient, Stage};
use tessera_idp::IdpServer;

use super::alice;

/// HTTP-call stages at the reference IdP's `/chain/*` endpoints.
pub fn http_chain(server: &IdpServer) -> ChainConfig {
    ChainConfig::new(
        Stage::http_post(server.url("/chain/discovery")),
        Stage::http_post(server.url("/chain/domains/{domain_id}/access")),
    )
}

pub fn client(server: &IdpServer) -> DomainClient {
    DomainClient::new(Session::builder("network", alice(&server.issuer())).build(), http_chain(server))
}
