//! The fault cases of docs/fault-matrix.md, shared by the fault-matrix suites: how each is injected
//! at the reference IdP, the settings the sessions run with, and predicates for the typed errors.

use std::time::Duration;

use tessera::transport::TransportSettings;
use tessera::{Error, OAuthErrorCode, Secret, SessionSettings, TokenSet, TransportErrorKind};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpServer, demo};

use super::http_client;

/// Access tokens live 20 s at the IdP: the refresh window is 10 s (half the lifetime), and
/// moving the session's clock by at most 21 s keeps TOTP codes within the server's ±1 step.
pub const ACCESS_TTL: Duration = Duration::from_secs(20);
pub const INTO_REFRESH_WINDOW: Duration = Duration::from_secs(15);
pub const PAST_EXPIRY: Duration = Duration::from_secs(21);
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
pub const MAX_BODY: usize = 64 * 1024;
pub const SKEW: i64 = 5 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    Status500,
    Status503,
    TooManyRequests,
    Timeout,
    ConnectionReset,
    MalformedJson,
    HtmlErrorPage,
    Oversize,
    WrongContentType,
    InvalidGrant,
    InvalidClient,
    ServerClockAhead,
    ServerClockBehind,
    RefreshTokenReuse,
}

pub const CASES: [Case; 14] = [
    Case::Status500,
    Case::Status503,
    Case::TooManyRequests,
    Case::Timeout,
    Case::ConnectionReset,
    Case::MalformedJson,
    Case::HtmlErrorPage,
    Case::Oversize,
    Case::WrongContentType,
    Case::InvalidGrant,
    Case::InvalidClient,
    Case::ServerClockAhead,
    Case::ServerClockBehind,
    Case::RefreshTokenReuse,
];

/// What a cell expects.
#[derive(Clone, Copy)]
pub enum Want {
    /// Tokens, after this many requests to the faulted endpoint(s) (2 = one retry, or a rejected
    /// refresh then a new login).
    Tokens { requests: u64 },
    /// This typed error, after this many requests.
    Fails { requests: u64, what: &'static str, is: fn(&Error) -> bool },
}

pub fn ok(requests: u64) -> Want {
    Want::Tokens { requests }
}

pub fn fails(requests: u64, what: &'static str, is: fn(&Error) -> bool) -> Want {
    Want::Fails { requests, what, is }
}

pub fn status(error: &Error, expected: u16) -> bool {
    matches!(error, Error::UnexpectedStatus { status, .. } if *status == expected)
}
pub fn is_500(e: &Error) -> bool {
    status(e, 500) && e.is_transient()
}
pub fn is_502(e: &Error) -> bool {
    status(e, 502) && e.is_transient()
}
pub fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Transport { kind: TransportErrorKind::Timeout, .. })
}
pub fn is_closed(e: &Error) -> bool {
    matches!(e, Error::Transport { kind: TransportErrorKind::ConnectionClosed, .. })
}
pub fn is_malformed(e: &Error) -> bool {
    matches!(e, Error::MalformedResponse { .. }) && !e.is_transient()
}
pub fn is_too_large(e: &Error) -> bool {
    matches!(e, Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }) && !e.is_transient()
}
pub fn is_invalid_grant(e: &Error) -> bool {
    e.oauth_code() == Some(&OAuthErrorCode::InvalidGrant) && !e.is_transient()
}
pub fn is_invalid_client(e: &Error) -> bool {
    e.oauth_code() == Some(&OAuthErrorCode::InvalidClient) && !e.is_transient()
}
pub fn is_reauthentication(e: &Error) -> bool {
    e.requires_reauthentication()
}

pub fn json_error(status: u16, code: &str) -> Fault {
    Fault::new(FaultKind::StatusWithHeaders {
        status,
        body: format!(r#"{{"error":"{code}","error_description":"injected"}}"#),
        content_type: "application/json".into(),
        headers: if status == 401 { vec![("www-authenticate".into(), "Basic realm=\"x\"".into())] } else { vec![] },
    })
}

/// Sets up the fault of `case` for the next token request.
pub async fn inject(idp: &IdpServer, case: Case, held: Option<&TokenSet>) {
    inject_at(idp, FaultEndpoint::Token, case, held).await;
}

/// Sets up the fault of `case` for the next request to `endpoint` (the clock cases move the whole
/// server's clock; the reuse case spends `held`'s refresh token at the token endpoint).
pub async fn inject_at(idp: &IdpServer, endpoint: FaultEndpoint, case: Case, held: Option<&TokenSet>) {
    let token = |fault: Fault| idp.faults().push(endpoint, fault, 1);
    match case {
        Case::Status500 => token(Fault::status(500, "internal error")),
        Case::Status503 => token(Fault::status(503, "busy")),
        Case::TooManyRequests => token(Fault::too_many_requests(1)),
        // Answered late: the server *does* process it (and rotates) after the client gave up.
        Case::Timeout => token(Fault::delay(REQUEST_TIMEOUT * 3)),
        Case::ConnectionReset => token(Fault::new(FaultKind::DropConnection)),
        Case::MalformedJson => token(Fault::new(FaultKind::MalformedJson)),
        Case::HtmlErrorPage => token(Fault::new(FaultKind::HtmlErrorPage { status: 502 })),
        Case::Oversize => token(Fault::new(FaultKind::Oversize { bytes: MAX_BODY * 4 })),
        Case::WrongContentType => token(Fault::new(FaultKind::WrongContentType)),
        Case::InvalidGrant => token(json_error(400, "invalid_grant")),
        Case::InvalidClient => token(json_error(401, "invalid_client")),
        Case::ServerClockAhead => idp.set_clock_offset(SKEW),
        Case::ServerClockBehind => idp.set_clock_offset(-SKEW),
        Case::RefreshTokenReuse => {
            // Someone else redeems the session's refresh token first (rotation): the session's copy is spent.
            if let Some(refresh_token) = held.and_then(|t| t.refresh_token.as_ref()) {
                spend(idp, refresh_token).await;
            }
        }
    }
}

pub async fn spend(idp: &IdpServer, refresh_token: &Secret) {
    let response = http_client()
        .post(idp.url("/token"))
        .basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

pub fn settings() -> SessionSettings {
    SessionSettings {
        jitter: false,
        transport: TransportSettings {
            timeout: REQUEST_TIMEOUT,
            connect_timeout: REQUEST_TIMEOUT,
            max_response_bytes: MAX_BODY,
            ..TransportSettings::default()
        },
        ..SessionSettings::default()
    }
}
