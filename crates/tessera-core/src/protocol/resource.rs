//! Resource-first discovery: from the URL of a protected resource to its authorization server's
//! endpoints. RFC 9728 (OAuth 2.0 Protected Resource Metadata), RFC 8414 (OAuth 2.0 Authorization
//! Server Metadata) with OpenID Connect Discovery 1.0 as the fallback, and the resource's
//! `WWW-Authenticate` challenge (RFC 9728 §5.1, [`super::challenge`]).
//!
//! Owns the well-known URLs, the metadata parsers, the identifier checks (RFC 9728 §3.3, RFC 8414
//! §3.3), the choice among several authorization servers, and [`ResourceDiscovery`], the state
//! machine that strings them together. Never does I/O: it plans [`HttpRequest`]s and reads
//! [`HttpResponse`]s; the runtime sends them (`tessera::resource::discover_resource`).
//!
//! ```text
//!  GET resource ──► 401 + WWW-Authenticate: Bearer resource_metadata="M" ──► GET M
//!               └─► anything else ──► GET {origin}/.well-known/oauth-protected-resource{path}
//!  RFC 9728 metadata: resource == the resource URL; authorization_servers ──► pick issuer I
//!  GET {origin of I}/.well-known/oauth-authorization-server{path of I}   (RFC 8414)
//!      └─ 4xx or not JSON ──► GET I/.well-known/openid-configuration    (OIDC)
//!          └─ 4xx or not JSON, I has a path ──► GET {origin}/.well-known/openid-configuration{path}
//!  metadata: issuer == I ──► DiscoveredResource
//! ```
//!
//! Every refusal is an [`Error::Metadata`] with a [`MetadataProblem`] naming the field, never
//! quoting the document.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ProviderMetadata;
use super::challenge::token_challenges;
use super::discovery::discovery_url;
use super::token::{parse_error_response, redacted_json_error};
use crate::http::endpoint_of;
use crate::{Error, HttpRequest, HttpResponse, MetadataProblem, Method, RequestId};

/// The largest metadata document accepted, in bytes. Real documents are a few KiB (Keycloak's
/// OpenID configuration, among the largest, is ~10 KiB); the limit leaves room and bounds what a
/// hostile server can make a client parse. The runtime reads no more than this.
pub const MAX_METADATA_LEN: usize = 256 * 1024;

/// RFC 9728 §3: the well-known suffix of protected resource metadata.
pub const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// RFC 8414 §3: the well-known suffix of authorization server metadata.
pub const AUTHORIZATION_SERVER_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// OpenID Connect Discovery §4: the well-known suffix of an OpenID provider's configuration.
pub const OPENID_CONFIGURATION_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// True for `https`, or `http` to loopback (`localhost`, 127.0.0.0/8, `::1`): the rule the
/// transport applies to every request, applied here to the URLs a document names.
fn is_secure(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Inserts `suffix` between the host and the path (RFC 8414 §3.1, RFC 9728 §3.1): a path of `/`
/// alone is dropped, a query is kept.
fn insert_well_known(url: &url::Url, suffix: &str) -> String {
    let mut out = url.origin().ascii_serialization();
    out.push_str(suffix);
    if url.path() != "/" {
        out.push_str(url.path());
    }
    if let Some(query) = url.query() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Checks the resource identifier a caller gives (the API's URL): absolute, `https` (or `http` to
/// loopback), no fragment (RFC 9728 §1.2). A configuration error names `resource`.
pub fn check_resource_url(resource: &str) -> Result<url::Url, Error> {
    let url = url::Url::parse(resource)
        .map_err(|_| Error::configuration("resource: not an absolute URL (https://api.example.com/...)"))?;
    if !is_secure(&url) {
        return Err(Error::configuration(format!(
            "resource: {} is not an https URL (plain http is accepted only to loopback)",
            endpoint_of(resource)
        )));
    }
    if url.fragment().is_some() {
        return Err(Error::configuration("resource: a resource identifier has no fragment (RFC 9728 §1.2)"));
    }
    Ok(url)
}

/// The RFC 9728 §3.1 metadata URL of a resource:
/// `https://api.example/v1` → `https://api.example/.well-known/oauth-protected-resource/v1`.
pub fn protected_resource_metadata_url(resource: &str) -> Result<String, Error> {
    Ok(insert_well_known(&check_resource_url(resource)?, PROTECTED_RESOURCE_WELL_KNOWN))
}

/// Where an issuer's metadata may be, in the order tried: RFC 8414 §3.1 (suffix inserted before
/// the issuer's path), then OpenID Connect Discovery (`{issuer}/.well-known/openid-configuration`),
/// then, for an issuer with a path, the OpenID suffix inserted before it (RFC 8414 §5's
/// compatibility note: some servers publish there).
pub fn authorization_server_metadata_urls(issuer: &str) -> Result<Vec<String>, Error> {
    let url =
        check_issuer(issuer, "issuer").map_err(|problem| Error::Metadata { problem, endpoint: endpoint_of(issuer) })?;
    // RFC 8414 §3.1: the issuer's terminating "/" goes before the suffix is inserted
    // (`https://idp/tenant/` → `https://idp/.well-known/oauth-authorization-server/tenant`).
    let mut trimmed = url.clone();
    if url.path().len() > 1 && url.path().ends_with('/') {
        trimmed.set_path(url.path().trim_end_matches('/'));
    }
    let mut urls = vec![insert_well_known(&trimmed, AUTHORIZATION_SERVER_WELL_KNOWN), discovery_url(issuer)];
    if url.path() != "/" {
        urls.push(insert_well_known(&url, OPENID_CONFIGURATION_WELL_KNOWN));
    }
    Ok(urls)
}

/// An issuer identifier (RFC 8414 §2): absolute, `https` (or `http` to loopback), no query, no
/// fragment.
fn check_issuer(issuer: &str, field: &str) -> Result<url::Url, MetadataProblem> {
    let url = parse_url(issuer, field)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(malformed(field, "has a query or fragment (an issuer identifier has neither)"));
    }
    Ok(url)
}

/// An absolute URL that is `https` (or `http` to loopback).
fn parse_url(value: &str, field: &str) -> Result<url::Url, MetadataProblem> {
    // The URL parser drops tabs and newlines silently; the text as sent reaches logs.
    if value.chars().any(super::is_hidden) {
        return Err(malformed(field, "holds a control or invisible character"));
    }
    let url = url::Url::parse(value).map_err(|_| malformed(field, "is not an absolute URL"))?;
    if !is_secure(&url) {
        return Err(MetadataProblem::InsecureUrl { field: field.to_owned() });
    }
    Ok(url)
}

fn malformed(field: &str, reason: &str) -> MetadataProblem {
    MetadataProblem::Malformed { field: field.to_owned(), reason: reason.to_owned() }
}

/// Two URLs are the same identifier when their WHATWG serializations are identical: scheme and
/// host case, a default port and an empty path (`https://a` = `https://a/`) are not differences;
/// anything else is (`/v1` ≠ `/v1/`).
fn same_identifier(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.as_str() == b.as_str(),
        _ => false,
    }
}

/// The GET request for a metadata document.
pub fn metadata_request(id: RequestId, url: &str) -> HttpRequest {
    HttpRequest {
        id,
        method: Method::Get,
        url: url.to_owned(),
        headers: vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
    }
}

/// The JSON object of a metadata response: a success status, at most [`MAX_METADATA_LEN`] bytes,
/// served as JSON.
fn metadata_object(response: &HttpResponse, url: &str) -> Result<Map<String, Value>, Error> {
    let endpoint = endpoint_of(url);
    if !(200..300).contains(&response.status) {
        return Err(parse_error_response(response, &endpoint));
    }
    let refuse = |problem| Error::Metadata { problem, endpoint: endpoint.clone() };
    if response.body.len() > MAX_METADATA_LEN {
        return Err(refuse(MetadataProblem::TooLarge { limit: MAX_METADATA_LEN }));
    }
    if !response.media_type().is_some_and(|t| t == "application/json" || t.ends_with("+json")) {
        let content_type = response.media_type().unwrap_or_else(|| "no content type".into());
        return Err(refuse(MetadataProblem::NotJson { content_type }));
    }
    match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(refuse(MetadataProblem::NotAnObject)),
        Err(e) => Err(Error::MalformedResponse {
            endpoint: endpoint.clone(),
            reason: format!("invalid JSON ({})", redacted_json_error(&e)),
        }),
    }
}

fn string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, MetadataProblem> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(field, "is not a string")),
    }
}

fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, MetadataProblem> {
    string(object, field)?.ok_or_else(|| malformed(field, "is missing"))
}

fn strings(object: &Map<String, Value>, field: &str) -> Result<Vec<String>, MetadataProblem> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| malformed(field, "is not a list of strings")))
            .collect(),
        Some(_) => Err(malformed(field, "is not a list of strings")),
    }
}

fn boolean(object: &Map<String, Value>, field: &str) -> Result<bool, MetadataProblem> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(malformed(field, "is not a boolean")),
    }
}

/// RFC 9728 §2: what a protected resource says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier; identical to the URL it was discovered from (checked).
    pub resource: String,
    /// Issuer identifiers of the authorization servers that issue tokens for it, in the
    /// resource's order (each checked: `https` or loopback `http`, no query or fragment).
    pub authorization_servers: Vec<String>,
    /// Scopes the resource uses, when listed.
    pub scopes_supported: Vec<String>,
    /// How it accepts a bearer token (`header`, `body`, `query`), when listed.
    pub bearer_methods_supported: Vec<String>,
    /// Its JWKS (signed responses), when given.
    pub jwks_uri: Option<String>,
    /// Human-readable name, when given (display only).
    pub resource_name: Option<String>,
    /// Documentation URL, when given.
    pub resource_documentation: Option<String>,
    /// RFC 9728 §2 / RFC 9449: the resource accepts only DPoP-bound tokens.
    pub dpop_bound_access_tokens_required: bool,
    /// DPoP signature algorithms it accepts, when listed.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Every other field, as sent (`signed_metadata` among them: not verified, not used).
    pub extra: BTreeMap<String, Value>,
}

impl ProtectedResourceMetadata {
    /// The authorization server to use: `issuer` when the configuration names one (it must be in
    /// `authorization_servers`: a resource is not made to trust a server it does not name), else
    /// the first listed. RFC 9728 leaves the choice to the client (§7.6); the first is the
    /// resource's own preference, and a fixed rule keeps the choice the same on every run.
    pub fn choose_authorization_server(&self, issuer: Option<&str>) -> Result<&str, MetadataProblem> {
        match issuer {
            Some(wanted) => self
                .authorization_servers
                .iter()
                .find(|listed| same_identifier(listed, wanted))
                .map(String::as_str)
                .ok_or_else(|| {
                    MetadataProblem::NoAuthorizationServer(format!(
                        "authorization_servers does not list the configured issuer {}",
                        endpoint_of(wanted)
                    ))
                }),
            None => self.authorization_servers.first().map(String::as_str).ok_or_else(|| {
                MetadataProblem::NoAuthorizationServer("authorization_servers lists no authorization server".into())
            }),
        }
    }
}

/// Parses RFC 9728 metadata fetched from `url` for the resource `expected_resource`, and checks
/// it: `resource` identical to `expected_resource` (§3.3), URLs `https` (or loopback `http`),
/// fields of the right shape.
pub fn parse_protected_resource_metadata(
    response: &HttpResponse,
    url: &str,
    expected_resource: &str,
) -> Result<ProtectedResourceMetadata, Error> {
    let object = metadata_object(response, url)?;
    protected_resource_metadata_from(&object, expected_resource)
        .map_err(|problem| Error::Metadata { problem, endpoint: endpoint_of(url) })
}

fn protected_resource_metadata_from(
    object: &Map<String, Value>,
    expected_resource: &str,
) -> Result<ProtectedResourceMetadata, MetadataProblem> {
    let resource = required_string(object, "resource")?;
    parse_url(&resource, "resource")?;
    if !same_identifier(&resource, expected_resource) {
        return Err(MetadataProblem::ResourceMismatch { expected: endpoint_of(expected_resource) });
    }
    let authorization_servers = strings(object, "authorization_servers")?;
    for issuer in &authorization_servers {
        check_issuer(issuer, "authorization_servers")?;
    }
    let jwks_uri = string(object, "jwks_uri")?;
    if let Some(jwks_uri) = &jwks_uri {
        parse_url(jwks_uri, "jwks_uri")?;
    }
    const NAMED: [&str; 9] = [
        "resource",
        "authorization_servers",
        "scopes_supported",
        "bearer_methods_supported",
        "jwks_uri",
        "resource_name",
        "resource_documentation",
        "dpop_bound_access_tokens_required",
        "dpop_signing_alg_values_supported",
    ];
    Ok(ProtectedResourceMetadata {
        resource,
        authorization_servers,
        scopes_supported: strings(object, "scopes_supported")?,
        bearer_methods_supported: strings(object, "bearer_methods_supported")?,
        jwks_uri,
        resource_name: string(object, "resource_name")?,
        resource_documentation: string(object, "resource_documentation")?,
        dpop_bound_access_tokens_required: boolean(object, "dpop_bound_access_tokens_required")?,
        dpop_signing_alg_values_supported: strings(object, "dpop_signing_alg_values_supported")?,
        extra: object
            .iter()
            .filter(|(k, _)| !NAMED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// The endpoint fields of authorization server metadata whose URLs must be `https` (or loopback
/// `http`): a token, a password or a client secret may be sent to any of them.
const ENDPOINT_FIELDS: [&str; 9] = [
    "token_endpoint",
    "authorization_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "device_authorization_endpoint",
    "userinfo_endpoint",
    "registration_endpoint",
    "pushed_authorization_request_endpoint",
    "jwks_uri",
];

/// Parses authorization server metadata (RFC 8414, or an OpenID configuration) fetched from
/// `url` for the issuer `expected_issuer`, and checks it: `issuer` identical to
/// `expected_issuer` (RFC 8414 §3.3; no slash is forgiven), `token_endpoint` present, every
/// endpoint `https` (or loopback `http`), fields of the right shape.
pub fn parse_authorization_server_metadata(
    response: &HttpResponse,
    url: &str,
    expected_issuer: &str,
) -> Result<ProviderMetadata, Error> {
    let object = metadata_object(response, url)?;
    authorization_server_metadata_from(object, expected_issuer)
        .map_err(|problem| Error::Metadata { problem, endpoint: endpoint_of(url) })
}

fn authorization_server_metadata_from(
    object: Map<String, Value>,
    expected_issuer: &str,
) -> Result<ProviderMetadata, MetadataProblem> {
    let issuer = required_string(&object, "issuer")?;
    if issuer != expected_issuer {
        return Err(MetadataProblem::IssuerMismatch { expected: endpoint_of(expected_issuer) });
    }
    required_string(&object, "token_endpoint")?;
    for field in ENDPOINT_FIELDS {
        if let Some(value) = string(&object, field)? {
            parse_url(&value, field)?;
        }
    }
    for field in ["grant_types_supported", "scopes_supported", "code_challenge_methods_supported"] {
        strings(&object, field)?;
    }
    // Every field ProviderMetadata reads was checked above: this cannot fail on the document's
    // account, and its message (which could quote a value) is not used.
    serde_json::from_value(Value::Object(object))
        .map_err(|_| malformed("metadata", "does not have the shape of authorization server metadata"))
}

/// What resource-first discovery found: the resource, its authorization server and that server's
/// endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveredResource {
    /// The resource's metadata (RFC 9728).
    pub resource: ProtectedResourceMetadata,
    /// Where that metadata was read.
    pub resource_metadata_url: String,
    /// The chosen authorization server's issuer identifier.
    pub issuer: String,
    /// Its metadata (endpoints, `registration_endpoint`, supported scopes and grants).
    pub server: ProviderMetadata,
    /// Where that metadata was read (RFC 8414 or OpenID Connect well-known URL).
    pub server_metadata_url: String,
    /// The challenge of the resource's first answer, when it sent one: a `scope` there is what the
    /// resource asks of a token.
    pub challenge_scope: Option<String>,
}

/// What [`ResourceDiscovery`] wants next.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)]
pub enum DiscoveryStep {
    /// Send this request and give its answer to [`ResourceDiscovery::handle`].
    Send(HttpRequest),
    /// Discovery is complete.
    Done(DiscoveredResource),
}

/// One per discovery, short-lived: its size does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum State {
    /// The resource's own answer is awaited.
    Probe,
    /// The RFC 9728 document is awaited.
    ResourceMetadata { url: String, challenge_scope: Option<String> },
    /// Authorization server metadata is awaited from `candidates[next - 1]`.
    ServerMetadata {
        resource: ProtectedResourceMetadata,
        resource_metadata_url: String,
        challenge_scope: Option<String>,
        issuer: String,
        candidates: Vec<String>,
        next: usize,
    },
    /// Finished (or failed): nothing more to send.
    Over,
}

/// Resource-first discovery as a state machine (see the module documentation for the order of
/// requests). [`ResourceDiscovery::start`] gives the first request; each answer goes to
/// [`ResourceDiscovery::handle`], which gives the next request or the result. An error ends it.
#[derive(Debug)]
pub struct ResourceDiscovery {
    resource: String,
    issuer: Option<String>,
    last_id: u64,
    state: State,
}

impl ResourceDiscovery {
    /// Discovery for the resource at `resource` (its URL, also its identifier), using the
    /// authorization server `issuer` when given (it must be one the resource names), else the
    /// first the resource names.
    pub fn new(resource: &str, issuer: Option<&str>) -> Result<Self, Error> {
        check_resource_url(resource)?;
        Ok(ResourceDiscovery {
            resource: resource.to_owned(),
            issuer: issuer.map(str::to_owned),
            last_id: 0,
            state: State::Probe,
        })
    }

    /// The resource identifier being discovered.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    fn request(&mut self, url: &str) -> HttpRequest {
        self.last_id += 1;
        metadata_request(RequestId(self.last_id), url)
    }

    /// The first request: a GET of the resource itself, without a token (its 401 names its metadata).
    pub fn start(&mut self) -> HttpRequest {
        self.last_id = 0;
        self.state = State::Probe;
        let resource = self.resource.clone();
        self.request(&resource)
    }

    /// Reads the answer to the last request; gives the next request or the result.
    pub fn handle(&mut self, response: &HttpResponse) -> Result<DiscoveryStep, Error> {
        if response.request_id != RequestId(self.last_id) {
            return Err(Error::internal("resource discovery was given the answer to another request"));
        }
        let state = std::mem::replace(&mut self.state, State::Over);
        match state {
            State::Probe => {
                // RFC 9728 §5.1: a 401 may name the metadata; without one, the well-known URL.
                let challenges = if response.status == 401 {
                    token_challenges(
                        response
                            .headers
                            .iter()
                            .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                            .map(|(_, v)| v.as_str()),
                    )
                } else {
                    Vec::new()
                };
                let named = challenges.iter().find_map(|c| c.resource_metadata.clone());
                let challenge_scope = challenges.iter().find_map(|c| c.scope.clone());
                let url = match named {
                    Some(url) => {
                        parse_url(&url, "resource_metadata")
                            .map_err(|problem| Error::Metadata { problem, endpoint: endpoint_of(&self.resource) })?;
                        url
                    }
                    None => protected_resource_metadata_url(&self.resource)?,
                };
                self.state = State::ResourceMetadata { url: url.clone(), challenge_scope };
                Ok(DiscoveryStep::Send(self.request(&url)))
            }
            State::ResourceMetadata { url, challenge_scope } => {
                let resource = parse_protected_resource_metadata(response, &url, &self.resource)?;
                let issuer = resource
                    .choose_authorization_server(self.issuer.as_deref())
                    .map_err(|problem| Error::Metadata { problem, endpoint: endpoint_of(&url) })?
                    .to_owned();
                let candidates = authorization_server_metadata_urls(&issuer)?;
                let first = candidates[0].clone();
                self.state = State::ServerMetadata {
                    resource,
                    resource_metadata_url: url,
                    challenge_scope,
                    issuer,
                    candidates,
                    next: 1,
                };
                Ok(DiscoveryStep::Send(self.request(&first)))
            }
            State::ServerMetadata { resource, resource_metadata_url, challenge_scope, issuer, candidates, next } => {
                let url = &candidates[next - 1];
                match parse_authorization_server_metadata(response, url, &issuer) {
                    Ok(server) => Ok(DiscoveryStep::Done(DiscoveredResource {
                        resource,
                        resource_metadata_url,
                        issuer,
                        server,
                        server_metadata_url: url.clone(),
                        challenge_scope,
                    })),
                    // Not published there (a 404, a 405, an HTML page of a catch-all route): the
                    // next well-known location. An answer that is metadata but wrong (another
                    // issuer, an insecure endpoint) or a 5xx is final: trying elsewhere would hide it.
                    Err(error) if next < candidates.len() && is_not_published(&error) => {
                        let following = candidates[next].clone();
                        self.state = State::ServerMetadata {
                            resource,
                            resource_metadata_url,
                            challenge_scope,
                            issuer,
                            candidates,
                            next: next + 1,
                        };
                        Ok(DiscoveryStep::Send(self.request(&following)))
                    }
                    Err(error) => Err(error),
                }
            }
            State::Over => Err(Error::internal("resource discovery was given an answer after it ended")),
        }
    }
}

/// A metadata location that does not publish a document: a 4xx, or a body that is not JSON.
fn is_not_published(error: &Error) -> bool {
    match error {
        Error::UnexpectedStatus { status, .. } | Error::OAuth { status, .. } => (400..500).contains(status),
        Error::Metadata { problem: MetadataProblem::NotJson { .. }, .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(id: u64, status: u16, body: &str) -> HttpResponse {
        HttpResponse::json(RequestId(id), status, body)
    }

    fn problem(error: Error) -> MetadataProblem {
        match error {
            Error::Metadata { problem, .. } => problem,
            other => panic!("not a metadata error: {other:?}"),
        }
    }

    #[test]
    fn well_known_urls() {
        assert_eq!(
            protected_resource_metadata_url("https://api.example").unwrap(),
            "https://api.example/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            protected_resource_metadata_url("https://api.example/").unwrap(),
            "https://api.example/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            protected_resource_metadata_url("https://api.example:8443/v1/mcp?x=1").unwrap(),
            "https://api.example:8443/.well-known/oauth-protected-resource/v1/mcp?x=1"
        );
        assert_eq!(
            authorization_server_metadata_urls("https://idp.example/tenant1").unwrap(),
            [
                "https://idp.example/.well-known/oauth-authorization-server/tenant1",
                "https://idp.example/tenant1/.well-known/openid-configuration",
                "https://idp.example/.well-known/openid-configuration/tenant1",
            ]
        );
        // RFC 8414 §3.1: the terminating slash of an issuer with a path is removed first.
        assert_eq!(
            authorization_server_metadata_urls("https://idp.example/tenant1/").unwrap()[0],
            "https://idp.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            authorization_server_metadata_urls("http://127.0.0.1:9/").unwrap(),
            [
                "http://127.0.0.1:9/.well-known/oauth-authorization-server",
                "http://127.0.0.1:9/.well-known/openid-configuration"
            ]
        );
        assert!(matches!(protected_resource_metadata_url("http://api.example/"), Err(Error::Configuration { .. })));
        assert!(matches!(protected_resource_metadata_url("https://api.example/#x"), Err(Error::Configuration { .. })));
        assert!(matches!(protected_resource_metadata_url("api.example"), Err(Error::Configuration { .. })));
        assert_eq!(
            problem(authorization_server_metadata_urls("http://idp.example").unwrap_err()),
            MetadataProblem::InsecureUrl { field: "issuer".into() }
        );
    }

    const RESOURCE: &str = "https://api.example/v1";

    #[test]
    fn protected_resource_metadata_is_checked() {
        let url = "https://api.example/.well-known/oauth-protected-resource/v1";
        let good = r#"{"resource":"https://api.example/v1","authorization_servers":["https://a.example","https://b.example/t"],
            "scopes_supported":["read"],"bearer_methods_supported":["header"],"resource_name":"API","x":1}"#;
        let metadata = parse_protected_resource_metadata(&json(1, 200, good), url, RESOURCE).unwrap();
        assert_eq!(metadata.scopes_supported, ["read"]);
        assert_eq!(metadata.extra.get("x"), Some(&serde_json::json!(1)));
        assert_eq!(metadata.choose_authorization_server(None).unwrap(), "https://a.example");
        assert_eq!(metadata.choose_authorization_server(Some("https://b.example/t")).unwrap(), "https://b.example/t");
        assert!(matches!(
            metadata.choose_authorization_server(Some("https://c.example")),
            Err(MetadataProblem::NoAuthorizationServer(_))
        ));

        let cases: [(&str, MetadataProblem); 8] = [
            (
                // The URL parser would drop the newline; the issuer as sent would reach a log.
                r#"{"resource":"https://api.example/v1","authorization_servers":["https://a.exam\nple"]}"#,
                malformed("authorization_servers", "holds a control or invisible character"),
            ),
            (
                r#"{"resource":"https://api.example/v1/","authorization_servers":["https://a.example"]}"#,
                MetadataProblem::ResourceMismatch { expected: RESOURCE.into() },
            ),
            (
                r#"{"resource":"https://api.example/v1","authorization_servers":["http://a.example"]}"#,
                MetadataProblem::InsecureUrl { field: "authorization_servers".into() },
            ),
            (r#"{"authorization_servers":[]}"#, malformed("resource", "is missing")),
            (r#"{"resource":5}"#, malformed("resource", "is not a string")),
            (
                r#"{"resource":"https://api.example/v1","authorization_servers":"https://a.example"}"#,
                malformed("authorization_servers", "is not a list of strings"),
            ),
            (
                r#"{"resource":"https://api.example/v1","authorization_servers":["https://a.example?x"]}"#,
                malformed("authorization_servers", "has a query or fragment (an issuer identifier has neither)"),
            ),
            (r#"[1]"#, MetadataProblem::NotAnObject),
        ];
        for (body, expected) in cases {
            let error = parse_protected_resource_metadata(&json(1, 200, body), url, RESOURCE).unwrap_err();
            let message = error.to_string();
            assert_eq!(problem(error), expected, "{body}");
            assert!(!message.contains("a.example"), "never quotes the document: {message}");
        }
        let big = format!(r#"{{"resource":"{RESOURCE}","pad":"{}"}}"#, "x".repeat(MAX_METADATA_LEN));
        assert_eq!(
            problem(parse_protected_resource_metadata(&json(1, 200, &big), url, RESOURCE).unwrap_err()),
            MetadataProblem::TooLarge { limit: MAX_METADATA_LEN }
        );
        let mut html = json(1, 200, "<html>");
        html.headers = vec![("content-type".into(), "text/html".into())];
        assert_eq!(
            problem(parse_protected_resource_metadata(&html, url, RESOURCE).unwrap_err()),
            MetadataProblem::NotJson { content_type: "text/html".into() }
        );
        let error = parse_protected_resource_metadata(&json(1, 200, "{\"resource\":"), url, RESOURCE).unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }), "{error:?}");
        // The identifier comparison forgives only what URL syntax makes equal.
        let upper = r#"{"resource":"https://API.example:443/v1","authorization_servers":[]}"#;
        parse_protected_resource_metadata(&json(1, 200, upper), url, RESOURCE).unwrap();
    }

    #[test]
    fn authorization_server_metadata_is_checked() {
        let url = "https://a.example/.well-known/oauth-authorization-server";
        let good = r#"{"issuer":"https://a.example","token_endpoint":"https://a.example/token",
            "registration_endpoint":"https://a.example/register","scopes_supported":["read"],"code_challenge_methods_supported":["S256"]}"#;
        let metadata = parse_authorization_server_metadata(&json(1, 200, good), url, "https://a.example").unwrap();
        assert_eq!(metadata.registration_endpoint.as_deref(), Some("https://a.example/register"));
        assert_eq!(metadata.code_challenge_methods_supported, ["S256"]);
        let cases: [(&str, &str, MetadataProblem); 4] = [
            (good, "https://a.example/", MetadataProblem::IssuerMismatch { expected: "https://a.example/".into() }),
            (
                r#"{"issuer":"https://a.example","token_endpoint":"http://a.example/token"}"#,
                "https://a.example",
                MetadataProblem::InsecureUrl { field: "token_endpoint".into() },
            ),
            (r#"{"issuer":"https://a.example"}"#, "https://a.example", malformed("token_endpoint", "is missing")),
            (
                r#"{"issuer":"https://a.example","token_endpoint":"https://a.example/t","grant_types_supported":[1]}"#,
                "https://a.example",
                malformed("grant_types_supported", "is not a list of strings"),
            ),
        ];
        for (body, issuer, expected) in cases {
            let error = parse_authorization_server_metadata(&json(1, 200, body), url, issuer).unwrap_err();
            assert_eq!(problem(error), expected, "{body}");
        }
    }

    fn sent(step: DiscoveryStep) -> HttpRequest {
        match step {
            DiscoveryStep::Send(request) => request,
            DiscoveryStep::Done(found) => panic!("done early: {found:?}"),
        }
    }

    #[test]
    fn discovery_follows_the_challenge_and_falls_back_to_openid_configuration() {
        let mut discovery = ResourceDiscovery::new(RESOURCE, None).unwrap();
        let probe = discovery.start();
        assert_eq!(probe.url, RESOURCE);
        let mut challenge = json(1, 401, "{}");
        challenge.headers.push((
            "WWW-Authenticate".into(),
            r#"Bearer realm="api", resource_metadata="https://meta.example/prm", scope="read write""#.into(),
        ));
        let request = sent(discovery.handle(&challenge).unwrap());
        assert_eq!(request.url, "https://meta.example/prm");
        let prm = r#"{"resource":"https://api.example/v1","authorization_servers":["https://a.example/t"]}"#;
        let request = sent(discovery.handle(&json(2, 200, prm)).unwrap());
        assert_eq!(request.url, "https://a.example/.well-known/oauth-authorization-server/t");
        let request = sent(discovery.handle(&json(3, 404, "{}")).unwrap());
        assert_eq!(request.url, "https://a.example/t/.well-known/openid-configuration");
        let oidc = r#"{"issuer":"https://a.example/t","token_endpoint":"https://a.example/t/token"}"#;
        let DiscoveryStep::Done(found) = discovery.handle(&json(4, 200, oidc)).unwrap() else { panic!("not done") };
        assert_eq!(found.issuer, "https://a.example/t");
        assert_eq!(found.server.token_endpoint, "https://a.example/t/token");
        assert_eq!(found.server_metadata_url, "https://a.example/t/.well-known/openid-configuration");
        assert_eq!(found.challenge_scope.as_deref(), Some("read write"));
        assert!(discovery.handle(&json(4, 200, oidc)).is_err(), "over");
    }

    #[test]
    fn discovery_without_a_challenge_and_its_refusals() {
        let mut discovery = ResourceDiscovery::new(RESOURCE, Some("https://b.example")).unwrap();
        discovery.start();
        let request = sent(discovery.handle(&json(1, 200, "{}")).unwrap());
        assert_eq!(request.url, "https://api.example/.well-known/oauth-protected-resource/v1");
        let prm = r#"{"resource":"https://api.example/v1","authorization_servers":["https://a.example","https://b.example"]}"#;
        let request = sent(discovery.handle(&json(2, 200, prm)).unwrap());
        assert_eq!(request.url, "https://b.example/.well-known/oauth-authorization-server");
        // Another issuer's metadata is final: no fallback hides it.
        let other = r#"{"issuer":"https://a.example","token_endpoint":"https://a.example/token"}"#;
        let error = discovery.handle(&json(3, 200, other)).unwrap_err();
        assert!(matches!(problem(error), MetadataProblem::IssuerMismatch { .. }));

        // An insecure resource_metadata URL in the challenge.
        let mut discovery = ResourceDiscovery::new(RESOURCE, None).unwrap();
        discovery.start();
        let mut challenge = json(1, 401, "");
        challenge
            .headers
            .push(("www-authenticate".into(), r#"Bearer resource_metadata="http://meta.example/""#.into()));
        assert_eq!(
            problem(discovery.handle(&challenge).unwrap_err()),
            MetadataProblem::InsecureUrl { field: "resource_metadata".into() }
        );
        // The answer to another request.
        let mut discovery = ResourceDiscovery::new(RESOURCE, None).unwrap();
        discovery.start();
        assert!(matches!(discovery.handle(&json(7, 200, "{}")), Err(Error::Internal { .. })));
    }
}
