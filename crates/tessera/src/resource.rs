//! Resource-first discovery: from an API's URL to the authorization server that issues its
//! tokens, with nothing configured but the URL (RFC 9728, RFC 8414, OpenID Connect Discovery);
//! and dynamic client registration at that server ([`register_client`], RFC 7591).
//!
//! The protocol and every check live in [`tessera_core::protocol::resource`] (the
//! [`ResourceDiscovery`] state machine); this module sends its requests, within limits: each
//! request is bounded by the transport's time limit, the whole discovery by
//! [`DiscoverySettings::timeout`], and every answer by [`MAX_METADATA_LEN`] bytes.
//!
//! ```no_run
//! # async fn example() -> Result<(), tessera::Error> {
//! use tessera::resource::{DiscoverySettings, discover_resource};
//!
//! let found = discover_resource("https://api.example.com/", &DiscoverySettings::default()).await?;
//! println!("tokens for {} come from {}", found.resource.resource, found.issuer);
//! println!("token endpoint: {}", found.server.token_endpoint);
//! if let Some(registration) = &found.server.registration_endpoint {
//!     println!("clients register at {registration}");
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use tessera_core::{Error, MetadataProblem, TransportErrorKind};

pub use tessera_core::protocol::registration::{ClientRegistration, RegisteredClient};
use tessera_core::protocol::registration::{parse_registration_response, registration_request};
use tessera_core::protocol::resource::DiscoveryStep;
pub use tessera_core::protocol::resource::{
    DiscoveredResource, MAX_METADATA_LEN, ProtectedResourceMetadata, ResourceDiscovery,
};
use tessera_core::{RequestId, Secret};

use crate::transport::{HttpTransport, TransportSettings};

/// How [`discover_resource`] runs.
#[derive(Clone, Debug)]
pub struct DiscoverySettings {
    /// The authorization server to use, by issuer identifier: it must be one the resource names in
    /// `authorization_servers` (else [`MetadataProblem::NoAuthorizationServer`]). Default none: the
    /// first the resource names. The same `issuer` as a provider's.
    pub issuer: Option<String>,
    /// The limit on the whole discovery (up to five requests). Default 30 s.
    pub timeout: Duration,
    /// Proxy, roots, per-request time limit, `allow_insecure_http`. Its `max_response_bytes` is
    /// lowered to [`MAX_METADATA_LEN`] for discovery.
    pub transport: TransportSettings,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings { issuer: None, timeout: Duration::from_secs(30), transport: TransportSettings::default() }
    }
}

impl DiscoverySettings {
    /// The default settings, choosing the authorization server `issuer`.
    pub fn with_issuer(issuer: impl Into<String>) -> Self {
        DiscoverySettings { issuer: Some(issuer.into()), ..Self::default() }
    }
}

/// Finds the authorization server of the protected resource at `resource` (its URL, which is also
/// its identifier) and that server's endpoints:
///
/// 1. `GET resource` without a token; a 401 whose `WWW-Authenticate` challenge has
///    `resource_metadata` names the metadata's URL (RFC 9728 §5.1), else it is the well-known
///    `{origin}/.well-known/oauth-protected-resource{path}` (§3.1);
/// 2. the RFC 9728 metadata, whose `resource` must be identical to `resource` (§3.3);
/// 3. the authorization server: [`DiscoverySettings::issuer`] when set (it must be listed), else
///    the first of `authorization_servers`;
/// 4. its metadata from RFC 8414's well-known URL, falling back to OpenID Connect discovery when
///    that location answers 4xx or not JSON; its `issuer` must be identical to the one chosen.
///
/// Errors: [`Error::Metadata`] for a document refused (issuer or resource mismatch, plain `http`
/// off loopback, larger than [`MAX_METADATA_LEN`], malformed field), [`Error::Configuration`]
/// for a `resource` that is not an `https` URL, the transport's and the servers' errors as usual,
/// and a [`TransportErrorKind::Timeout`] past [`DiscoverySettings::timeout`].
pub async fn discover_resource(resource: &str, settings: &DiscoverySettings) -> Result<DiscoveredResource, Error> {
    let mut discovery = ResourceDiscovery::new(resource, settings.issuer.as_deref())?;
    let transport = HttpTransport::new(TransportSettings {
        max_response_bytes: settings.transport.max_response_bytes.min(MAX_METADATA_LEN),
        ..settings.transport.clone()
    });
    // The probe (the resource itself) is read within the transport's own limit: only its status
    // and challenge matter, and an API's landing page may well be larger than a metadata document.
    let probe_transport = HttpTransport::new(settings.transport.clone());
    let run = async {
        let mut request = discovery.start();
        let mut probing = true;
        loop {
            let endpoint = request.endpoint();
            let request_id = request.id;
            let sent = if probing { probe_transport.execute(request).await } else { transport.execute(request).await };
            let response = match sent {
                // A probe too large to read says nothing about its challenge: as if it had none
                // (the well-known location comes next).
                Err(Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }) if probing => {
                    tessera_core::HttpResponse { request_id, status: 200, headers: Vec::new(), body: Vec::new() }
                }
                // A document, not the connection, is the problem: the typed metadata refusal.
                Err(Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }) => {
                    return Err(Error::Metadata {
                        problem: MetadataProblem::TooLarge { limit: MAX_METADATA_LEN },
                        endpoint,
                    });
                }
                other => other?,
            };
            probing = false;
            match discovery.handle(&response)? {
                DiscoveryStep::Send(next) => request = next,
                DiscoveryStep::Done(found) => return Ok(found),
                _ => return Err(Error::internal("a resource discovery step this runtime does not know")),
            }
        }
    };
    tokio::time::timeout(settings.timeout, run).await.unwrap_or_else(|_| {
        Err(Error::Transport {
            kind: TransportErrorKind::Timeout,
            endpoint: resource.split(['?', '#']).next().unwrap_or_default().to_owned(),
            message: format!("resource discovery took longer than {:?}", settings.timeout),
        })
    })
}

/// Registers a client at an authorization server's `registration_endpoint` (RFC 7591), e.g. the
/// [`DiscoveredResource`]'s `server.registration_endpoint`, with `initial_access_token` when the
/// server requires one. One request, within `transport`'s limits.
///
/// Errors: the server's refusal as [`Error::OAuth`] (`invalid_redirect_uri`,
/// `invalid_client_metadata`, ... as `OAuthErrorCode::Other`), a malformed answer as
/// [`Error::Metadata`] naming the field, the transport's errors as usual. The answer's
/// `client_secret` and `registration_access_token` are [`Secret`]s.
///
/// ```no_run
/// # async fn example(found: tessera::DiscoveredResource) -> Result<(), tessera::Error> {
/// use tessera::resource::{ClientRegistration, register_client};
/// use tessera::transport::TransportSettings;
///
/// let endpoint = found.server.registration_endpoint.as_deref().expect("the server registers clients");
/// let registration = ClientRegistration::public_native(&["http://127.0.0.1/callback"], "my tool");
/// let client = register_client(endpoint, &registration, None, &TransportSettings::default()).await?;
/// println!("registered as {}", client.client_id);
/// # Ok(()) }
/// ```
pub async fn register_client(
    registration_endpoint: &str,
    registration: &ClientRegistration,
    initial_access_token: Option<&Secret>,
    transport: &TransportSettings,
) -> Result<RegisteredClient, Error> {
    let request = registration_request(RequestId(1), registration_endpoint, registration, initial_access_token)?;
    let transport = HttpTransport::new(TransportSettings {
        max_response_bytes: transport.max_response_bytes.min(MAX_METADATA_LEN),
        ..transport.clone()
    });
    let response = transport.execute(request).await?;
    parse_registration_response(&response, registration_endpoint)
}
