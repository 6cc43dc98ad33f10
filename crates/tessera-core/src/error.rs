//! One error taxonomy for every layer: RFC 6749 §5.2 codes, transport, malformed responses,
//! reauthentication, configuration and stores. Each error says whether retrying may help.
//!
//! Messages never contain secrets: only endpoints (without query strings), codes, server-provided
//! descriptions (cut, their control characters shown as `?`) and paths.

use std::fmt;
use std::time::Duration;

/// An error from any part of tessera.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authorization server answered with an OAuth error (RFC 6749 §5.2).
    #[error("{endpoint} answered {code} (HTTP {status}){}", describe(.description))]
    OAuth {
        /// The `error` code.
        code: OAuthErrorCode,
        /// `error_description`, cut to 300 characters, control characters shown as `?`.
        description: Option<String>,
        /// HTTP status of the answer.
        status: u16,
        /// Which endpoint answered (no query string).
        endpoint: String,
    },
    /// A non-success HTTP status without an OAuth error body (a proxy page, a bare 500).
    #[error("{endpoint} answered HTTP {status} ({}) without an OAuth error body", .content_type.as_deref().unwrap_or("no content type"))]
    UnexpectedStatus {
        /// HTTP status.
        status: u16,
        /// Content type of the body, when given.
        content_type: Option<String>,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
        /// Which endpoint answered.
        endpoint: String,
    },
    /// The request did not complete: connection refused or reset, timeout, body too large, bad redirect.
    #[error("{kind} calling {endpoint}: {message}")]
    Transport {
        /// What went wrong.
        kind: TransportErrorKind,
        /// Which endpoint was called.
        endpoint: String,
        /// Detail from the HTTP stack.
        message: String,
    },
    /// A request that spends a refresh token was sent, but its answer never arrived (a timeout,
    /// the connection closed before the whole answer): the server may have processed it and
    /// rotated the token. Not transient: presenting the same refresh token again could be *reuse*,
    /// which a server with reuse detection punishes by revoking the whole grant. The refresh token
    /// it presented is dropped, never presented again (see docs/refresh-protocol.md).
    #[error("{kind} calling {endpoint} after the request was sent: the outcome is unknown ({message})")]
    OutcomeUnknown {
        /// What went wrong.
        kind: TransportErrorKind,
        /// Which endpoint was called.
        endpoint: String,
        /// Detail from the HTTP stack.
        message: String,
    },
    /// A success status whose body is not what the protocol requires.
    #[error("malformed response from {endpoint}: {reason}")]
    MalformedResponse {
        /// Which endpoint answered.
        endpoint: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A metadata document that tessera refuses to use (RFC 9728 protected resource metadata, RFC
    /// 8414 / OpenID Connect authorization server metadata): it names another issuer or resource,
    /// an insecure URL, is too large, or a field is malformed. Match on [`MetadataProblem`]; the
    /// message never quotes the document.
    #[error("refused metadata from {endpoint}: {problem}")]
    Metadata {
        /// What is wrong with it.
        problem: MetadataProblem,
        /// Where it was fetched (no query string).
        endpoint: String,
    },
    /// No token can be obtained without the user (refresh token rejected or expired, static token expired).
    #[error("reauthentication required: {reason}")]
    ReauthenticationRequired {
        /// Why.
        reason: String,
    },
    /// Bad configuration: unknown provider, missing field, unreadable secret reference, bad TOML.
    #[error("configuration error: {message}")]
    Configuration {
        /// What is wrong and where (file, context, provider, field).
        message: String,
    },
    /// A state that should not happen: a bug in tessera (or in a [`crate::Flow`] brought by the
    /// caller), never something the user can fix in a configuration. Please report it.
    #[error("internal error (a bug, please report it): {message}")]
    Internal {
        /// Which invariant broke.
        message: String,
    },
    /// A token store could not be read or written.
    #[error("token store error ({kind}) at {location}: {message}")]
    Store {
        /// What went wrong.
        kind: StoreErrorKind,
        /// Path, URL or name of the store.
        location: String,
        /// Detail.
        message: String,
    },
}

/// The longest message a configuration or store error carries: past it, the text is cut (on a
/// character boundary) and says how much was left out.
pub const MAX_MESSAGE_LEN: usize = 2000;

fn capped(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_LEN {
        let mut cut = MAX_MESSAGE_LEN;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let left_out = message.len() - cut;
        message.truncate(cut);
        message.push_str(&format!("… ({left_out} more bytes)"));
    }
    message
}

fn describe(description: &Option<String>) -> String {
    description.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl Error {
    /// True when retrying the same operation later may succeed (network trouble, 5xx, 429, lock timeouts).
    /// False for errors that repeat until something changes (bad credentials, revoked grant, bad config).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::OAuth { code, .. } => code.is_transient(),
            Error::UnexpectedStatus { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Error::Transport { kind, .. } => kind.is_transient(),
            // Retrying is exactly what could cost the grant.
            Error::OutcomeUnknown { .. } => false,
            Error::MalformedResponse { .. } => false,
            Error::Metadata { .. } => false,
            Error::ReauthenticationRequired { .. } => false,
            Error::Configuration { .. } => false,
            Error::Internal { .. } => false,
            Error::Store { kind, .. } => matches!(kind, StoreErrorKind::LockTimeout | StoreErrorKind::Unavailable),
        }
    }

    /// The OAuth error code, when the server sent one.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        match self {
            Error::OAuth { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when a request that spent a refresh token got no answer: see [`Error::OutcomeUnknown`].
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// True when only a new login (with the user) can help.
    pub fn requires_reauthentication(&self) -> bool {
        matches!(self, Error::ReauthenticationRequired { .. })
    }

    /// How long the server asked us to wait, when it did (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::UnexpectedStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A configuration error (its message capped at [`MAX_MESSAGE_LEN`] bytes).
    pub fn configuration(message: impl Into<String>) -> Self {
        Error::Configuration { message: capped(message.into()) }
    }

    /// An internal-invariant error (see [`Error::Internal`]).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into() }
    }

    /// A store error.
    pub fn store(kind: StoreErrorKind, location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Store { kind, location: capped(location.into()), message: capped(message.into()) }
    }
}

/// Why a metadata document was refused ([`Error::Metadata`]). Field names and the identifiers
/// tessera expected appear in messages; the document's own values never do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataProblem {
    /// RFC 8414 §3.3 / OpenID Connect Discovery §4.3: `issuer` must be identical to the issuer
    /// identifier the document was fetched for.
    #[error("its issuer is not {expected} (RFC 8414 §3.3: it must be identical to the issuer identifier)")]
    IssuerMismatch {
        /// The issuer identifier it was fetched for.
        expected: String,
    },
    /// RFC 9728 §3.3: `resource` must be identical to the resource identifier the client used.
    #[error("its resource is not {expected} (RFC 9728 §3.3: it must be identical to the resource identifier)")]
    ResourceMismatch {
        /// The resource identifier it was fetched for.
        expected: String,
    },
    /// A URL field (an issuer, the resource, an endpoint) that is not `https`, or `http` to a
    /// host other than loopback (`localhost`, 127.0.0.0/8, `::1`).
    #[error("{field} is not an https URL (plain http is accepted only to loopback)")]
    InsecureUrl {
        /// The field (`authorization_servers`, `token_endpoint`, ...).
        field: String,
    },
    /// The document is larger than the limit for metadata.
    #[error("the document exceeds {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not served as JSON (`application/json` or `+json`).
    #[error("expected application/json, got {content_type}")]
    NotJson {
        /// The content type it had (or `no content type`).
        content_type: String,
    },
    /// The body is not a JSON object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// A field is missing or of the wrong shape.
    #[error("{field} {reason}")]
    Malformed {
        /// The field.
        field: String,
        /// What is wrong (`is missing`, `is not a string`, `is not an absolute URL`, ...).
        reason: String,
    },
    /// The resource names no authorization server (RFC 9728 `authorization_servers` is empty or
    /// absent), or not the one the configuration asks for.
    #[error("{0}")]
    NoAuthorizationServer(String),
}

/// An OAuth 2.0 error code (RFC 6749 §5.2, RFC 8628 §3.5, RFC 6750 §3.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: credentials, code or refresh token invalid, expired, revoked or reused.
    InvalidGrant,
    /// `unauthorized_client`: client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `authorization_pending` (device flow)
    AuthorizationPending,
    /// `slow_down` (device flow)
    SlowDown,
    /// `expired_token` (device flow)
    ExpiredToken,
    /// `invalid_token` (resource servers)
    InvalidToken,
    /// `insufficient_scope` (resource servers, RFC 6750 §3.1): the token lacks a scope the request needs.
    InsufficientScope,
    /// Any other code: as sent when it is RFC 6749 §5.2 text of at most 64 characters (otherwise
    /// cut, other characters shown as `?`).
    Other(String),
}

impl OAuthErrorCode {
    /// Parses a wire code.
    pub fn from_wire(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "invalid_token" => Self::InvalidToken,
            "insufficient_scope" => Self::InsufficientScope,
            // Any other code is the server's text: shown as RFC 6749 §5.2 characters only.
            other => Self::Other(crate::protocol::printable(other)),
        }
    }

    /// The wire code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::Other(code) => code,
        }
    }

    /// True for codes that say "try again later".
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::ServerError | Self::TemporarilyUnavailable | Self::SlowDown | Self::AuthorizationPending)
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Could not connect.
    Connect,
    /// The whole request took longer than its limit.
    Timeout,
    /// The connection closed or reset before a full response arrived.
    ConnectionClosed,
    /// The response body exceeded the size limit.
    BodyTooLarge,
    /// A redirect to another origin (or too many redirects) was refused.
    Redirect,
    /// The URL is not allowed (bad scheme, plain HTTP to a non-loopback host).
    InvalidUrl,
    /// The server's TLS certificate is not trusted (unknown issuer, expired, wrong name). Not
    /// transient: retrying meets the same certificate; trusting its CA (`ca_file`) is the fix.
    Certificate,
    /// Anything else from the HTTP stack.
    Other,
}

impl TransportErrorKind {
    /// True when retrying may help.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Connect | Self::Timeout | Self::ConnectionClosed)
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::ConnectionClosed => "connection closed",
            Self::BodyTooLarge => "response body too large",
            Self::Redirect => "redirect refused",
            Self::InvalidUrl => "URL not allowed",
            Self::Certificate => "TLS certificate not trusted",
            Self::Other => "HTTP error",
        })
    }
}

/// What went wrong with a token store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The file or directory is readable or writable by other users: refused.
    InsecurePermissions,
    /// The stored data does not parse (left untouched).
    Corrupt,
    /// Reading or writing failed (permissions, disk full, ...).
    Io,
    /// The store's lock was not obtained in time.
    LockTimeout,
    /// The store's backend is unreachable.
    Unavailable,
    /// The data was written by a newer, unknown format version.
    UnsupportedVersion,
    /// A write under a lock was rejected because the lock is no longer ours: its lease expired and
    /// another holder took it (fencing). The store keeps the other holder's newer write.
    LockLost,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InsecurePermissions => "insecure permissions",
            Self::Corrupt => "unreadable contents",
            Self::Io => "I/O failure",
            Self::LockTimeout => "lock timeout",
            Self::Unavailable => "unavailable",
            Self::UnsupportedVersion => "unsupported format version",
            Self::LockLost => "lock lost (write fenced off)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_classify() {
        for code in ["invalid_grant", "invalid_client", "slow_down", "weird_code"] {
            assert_eq!(OAuthErrorCode::from_wire(code).as_str(), code);
        }
        assert!(OAuthErrorCode::TemporarilyUnavailable.is_transient());
        assert!(!OAuthErrorCode::InvalidGrant.is_transient());
        let unexpected =
            |status| Error::UnexpectedStatus { status, content_type: None, retry_after: None, endpoint: "e".into() };
        assert!(unexpected(503).is_transient());
        assert!(unexpected(429).is_transient());
        assert!(!unexpected(404).is_transient());
    }

    #[test]
    fn display_names_endpoint_and_code() {
        let error = Error::OAuth {
            code: OAuthErrorCode::InvalidGrant,
            description: Some("refresh token reused".into()),
            status: 400,
            endpoint: "https://idp/token".into(),
        };
        assert_eq!(error.to_string(), "https://idp/token answered invalid_grant (HTTP 400): refresh token reused");
    }
}
