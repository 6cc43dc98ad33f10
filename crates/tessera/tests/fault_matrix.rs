//! The fault matrix of docs/fault-matrix.md: every grant × every fault, each cell asserted against
//! the reference IdP's fault hooks.
//!
//! Every row runs a cell twice when the session already holds a token:
//! - **expired**: the held token is past its expiry (on the session's clock), so the caller waits
//!   for the token request and gets either tokens or the typed error of the table;
//! - **still valid**: the held token is inside its early-refresh window; whatever the fault, the
//!   caller gets a token (the new one, or the still-valid old one when the refresh failed).
//!
//! In both, a failed token request leaves the store exactly as it was (never emptied, never
//! corrupted: the FileStore still parses), and the number of token requests shows whether the
//! request was retried.
//!
//! The two refresh rows also run against the third-party servers (django-oauth-toolkit and
//! oidc-provider, see `interop/`) through a fault proxy (`support/fault_proxy.rs`), with the same
//! expectations, and check at the server that the grant is still alive after every cell.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::fault_proxy::{FaultProxy, ProxyFault};
use support::faults::*;
use support::third_party::{Peer, ThirdParty};
use support::*;
use tessera::Timestamp;
use tessera::clock::{Clock, ManualClock, system_now};
use tessera::store::{FileStore, TokenStore};
use tessera::{Error, Grant, ProviderConfig, Secret, Session, TokenSet};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpServer, Stats, demo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    /// Password + TOTP (generated from the secret), no token yet: a login.
    PasswordLogin,
    /// Password + TOTP holding tokens: a refresh (falls back to a login when the refresh token is rejected).
    PasswordRefresh,
    /// Refresh-token grant: every token request is a refresh; nothing to fall back to.
    RefreshToken,
    /// Client credentials holding a token: a new client_credentials request (a login).
    ClientCredentials,
}

/// The table of docs/fault-matrix.md, column "no token / expired".
fn want(row: Row, case: Case) -> Want {
    use Case::*;
    let refresh = matches!(row, Row::PasswordRefresh | Row::RefreshToken);
    match case {
        // 500 and 502 are ambiguous for a refresh (the server may have rotated): never retried.
        Status500 if refresh => fails(1, "HTTP 500", is_500),
        HtmlErrorPage if refresh => fails(1, "HTTP 502", is_502),
        Status500 | HtmlErrorPage => ok(2),
        // 503 and 429 say "not processed": retried, logins and refreshes alike (429 after Retry-After).
        Status503 | TooManyRequests => ok(2),
        // Sent, answer lost: the refresh token may be spent. Never presented again: the password
        // grant logs in (1 refresh + 1 login), the refresh-token grant needs a person.
        Timeout | ConnectionReset if row == Row::PasswordRefresh => ok(2),
        Timeout | ConnectionReset if row == Row::RefreshToken => {
            fails(1, "reauthentication required", is_reauthentication)
        }
        Timeout | ConnectionReset => ok(2),
        MalformedJson | WrongContentType => fails(1, "malformed response", is_malformed),
        Oversize => fails(1, "body too large", is_too_large),
        InvalidGrant | RefreshTokenReuse if row == Row::PasswordRefresh => ok(2), // refresh rejected, then a new login
        InvalidGrant | RefreshTokenReuse if row == Row::RefreshToken => {
            fails(1, "reauthentication required", is_reauthentication)
        }
        InvalidGrant => fails(1, "invalid_grant", is_invalid_grant),
        RefreshTokenReuse => ok(1), // no refresh token involved
        InvalidClient => fails(1, "invalid_client", is_invalid_client),
        // TOTP codes are computed from each side's clock: 5 minutes apart, the server refuses them.
        ServerClockAhead | ServerClockBehind if row == Row::PasswordLogin => {
            fails(1, "invalid_grant (TOTP)", is_invalid_grant)
        }
        ServerClockAhead | ServerClockBehind => ok(1),
    }
}

struct Cell {
    idp: IdpServer,
    session: Session,
    clock: Arc<ManualClock>,
    store: Arc<FileStore>,
    _dir: tempfile::TempDir,
    held: Option<TokenSet>,
}

async fn cell(row: Row) -> Cell {
    let idp = idp(ACCESS_TTL).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let clock = Arc::new(ManualClock::new(system_now()));
    let config = match row {
        Row::PasswordLogin | Row::PasswordRefresh => bob(&idp.issuer()),
        Row::ClientCredentials => machine(&idp.issuer()),
        Row::RefreshToken => {
            let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
            ProviderConfig { grant: Grant::RefreshToken { refresh_token: seed.refresh_token.unwrap() }, ..alice("") }
        }
    };
    let config = ProviderConfig { endpoints: tessera::Endpoints::discover(idp.issuer()), ..config };
    let session = Session::builder(format!("{row:?}"), config)
        .store(store.clone())
        .clock(clock.clone())
        .settings(settings())
        .build();
    let held = match row {
        Row::PasswordLogin => None,
        _ => Some(session.tokens().await.unwrap()),
    };
    Cell { idp, session, clock, store, _dir: dir, held }
}

fn delta(after: &Stats, before: &Stats) -> (u64, u64, u64) {
    (
        after.token_requests - before.token_requests,
        after.password_grants - before.password_grants,
        after.refresh_grants - before.refresh_grants,
    )
}

/// The "no token / expired" column: the caller waits and gets what the table says.
async fn run_expired(row: Row, case: Case) {
    eprintln!("cell {row:?} × {case:?} (expired)");
    let cell = cell(row).await;
    if cell.held.is_some() {
        cell.clock.advance(PAST_EXPIRY);
    }
    inject(&cell.idp, case, cell.held.as_ref()).await;
    let before = cell.idp.stats();
    let started = Instant::now();
    let result = cell.session.authorization_header().await;
    let elapsed = started.elapsed();
    let (requests, logins, refreshes) = delta(&cell.idp.stats(), &before);
    let stored = cell.store.load(cell.session.key()).await.expect("the store still parses");
    let label = format!("{row:?} × {case:?} (expired)");
    match want(row, case) {
        Want::Tokens { requests: expected } => {
            let header = result.unwrap_or_else(|e| panic!("{label}: expected tokens, got {e}"));
            assert_eq!(requests, expected, "{label}: token requests");
            assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: the new tokens are stored");
            if let Some(held) = &cell.held {
                assert_ne!(header.access_token(), &held.access_token, "{label}: a new token");
            }
            if case == Case::TooManyRequests {
                assert!(elapsed >= Duration::from_secs(1), "{label}: Retry-After honoured ({elapsed:?})");
            }
            if matches!(case, Case::InvalidGrant | Case::RefreshTokenReuse | Case::Timeout | Case::ConnectionReset)
                && row == Row::PasswordRefresh
            {
                // Two token requests (checked above): the rejected or lost refresh, then one password login.
                assert_eq!(logins, 1, "{label}: refresh rejected or lost, then one new login");
            }
            if case == Case::Timeout {
                // The server processed the lost refresh late; nothing presented its token again.
                tokio::time::sleep(REQUEST_TIMEOUT * 3).await;
                assert_eq!(cell.idp.stats().refresh_token_reuse_detected, 0, "{label}");
            }
            if matches!(case, Case::ServerClockAhead | Case::ServerClockBehind) {
                // expires_in is a duration: the expiry is right on the session's clock, and the
                // server (on its own clock) accepts the token.
                let expires_at = header.expires_at().unwrap();
                assert_eq!(expires_at.duration_since(cell.clock.now()), ACCESS_TTL, "{label}");
                assert_eq!(whoami(&cell.idp, header.expose_secret()).await, 200, "{label}");
            }
            if row == Row::ClientCredentials || row == Row::PasswordLogin {
                assert_eq!(refreshes, 0, "{label}: no refresh token involved");
            }
        }
        Want::Fails { requests: expected, what, is } => {
            let error = match result {
                Ok(_) => panic!("{label}: expected {what}, got tokens"),
                Err(error) => error,
            };
            assert!(is(&error), "{label}: expected {what}, got {error:?}");
            assert_eq!(requests, expected, "{label}: token requests (no retry)");
            // A refresh token the server rejected is dropped from the store (no process presents it
            // again); anything else leaves the store unchanged.
            let refresh_dead = error.requires_reauthentication() || is_invalid_grant(&error);
            let want_stored = cell.held.clone().map(|mut held| {
                if refresh_dead {
                    held.refresh_token = None;
                    held.refresh_expires_at = None;
                }
                held
            });
            assert_eq!(stored, want_stored, "{label}: the store is unchanged but for a dead refresh token");
            if case == Case::Timeout {
                // The server processed the lost refresh late; the session never presented the
                // refresh token again, so there was no reuse.
                tokio::time::sleep(REQUEST_TIMEOUT * 3).await;
                assert_eq!(cell.idp.stats().refresh_token_reuse_detected, 0, "{label}");
            }
        }
    }
    cell.idp.shutdown().await;
}

/// The "still valid" column: whatever the fault, the caller gets a token.
async fn run_still_valid(row: Row, case: Case) {
    eprintln!("cell {row:?} × {case:?} (still valid)");
    let cell = cell(row).await;
    let held = cell.held.clone().expect("rows with a token");
    cell.clock.advance(INTO_REFRESH_WINDOW);
    inject(&cell.idp, case, Some(&held)).await;
    let before = cell.idp.stats();
    let result = cell.session.authorization_header().await;
    let (requests, _, _) = delta(&cell.idp.stats(), &before);
    let stored = cell.store.load(cell.session.key()).await.expect("the store still parses");
    let label = format!("{row:?} × {case:?} (still valid)");
    let header = result.unwrap_or_else(|e| panic!("{label}: a still-valid token must be served, got {e}"));
    match want(row, case) {
        Want::Tokens { requests: expected } => {
            assert_ne!(header.access_token(), &held.access_token, "{label}: refreshed");
            assert_eq!(requests, expected, "{label}: token requests");
            assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: stored");
        }
        Want::Fails { requests: expected, .. } => {
            assert_eq!(header.access_token(), &held.access_token, "{label}: the valid token is served");
            assert_eq!(requests, expected, "{label}: token requests (no retry)");
            // A rejected (or maybe spent) refresh token is dropped from the store; the valid access token stays.
            let mut want_stored = held.clone();
            if matches!(case, Case::InvalidGrant | Case::RefreshTokenReuse | Case::Timeout | Case::ConnectionReset) {
                want_stored.refresh_token = None;
                want_stored.refresh_expires_at = None;
            }
            assert_eq!(
                stored.as_ref(),
                Some(&want_stored),
                "{label}: the store is unchanged but for a dead refresh token"
            );
            // The next call within the postponement serves it without another request.
            let again = cell.session.authorization_header().await.unwrap();
            assert_eq!(again.access_token(), &held.access_token, "{label}");
            assert_eq!(cell.idp.stats().token_requests - before.token_requests, expected, "{label}: postponed");
        }
    }
    if case == Case::Timeout {
        tokio::time::sleep(REQUEST_TIMEOUT * 3).await; // let the late answer finish before shutdown
    }
    cell.idp.shutdown().await;
}

async fn run_row(row: Row) {
    for case in CASES {
        run_expired(row, case).await;
        if row != Row::PasswordLogin {
            run_still_valid(row, case).await;
        }
    }
}

#[tokio::test]
async fn password_totp_login() {
    run_row(Row::PasswordLogin).await;
}

#[tokio::test]
async fn password_totp_refresh() {
    run_row(Row::PasswordRefresh).await;
}

#[tokio::test]
async fn refresh_token_grant() {
    run_row(Row::RefreshToken).await;
}

#[tokio::test]
async fn client_credentials() {
    run_row(Row::ClientCredentials).await;
}

/// Static tokens make no request at all: every fault queued on the token endpoint stays unused,
/// and the token is served until its own expiry, on the session's clock.
#[tokio::test]
async fn static_token() {
    let idp = idp(ACCESS_TTL).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let expires_at = clock.now() + Duration::from_secs(600);
    let config = ProviderConfig {
        grant: Grant::Static { access_token: Secret::new("fixed"), expires_at: Some(expires_at) },
        ..machine(&idp.issuer())
    };
    let session = Session::builder("static", config).clock(clock.clone()).settings(settings()).build();
    for case in CASES {
        inject(&idp, case, None).await;
        for _ in 0..3 {
            assert_eq!(session.authorization_header().await.unwrap().expose_secret(), "Bearer fixed", "{case:?}");
        }
        idp.faults().clear();
        idp.set_clock_offset(0);
    }
    // Client clock five minutes either way of the server: only the token's own expiry matters.
    for offset in [-SKEW, SKEW] {
        clock.set(Timestamp::from_unix_millis(system_now().as_unix_millis() + offset * 1000));
        assert_eq!(session.authorization_header().await.unwrap().expose_secret(), "Bearer fixed");
    }
    clock.set(expires_at);
    let error = session.authorization_header().await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error}");
    assert_eq!(idp.stats().token_requests, 0);
    idp.shutdown().await;
}

/// Client-side skew (the session's clock five minutes off, the server's right): expiry is computed
/// from `expires_in` on the session's own clock, so tokens are neither refreshed in a loop nor
/// served past their real lifetime; only TOTP, which compares clocks, fails (typed, not retried).
#[tokio::test]
async fn client_clock_skew() {
    for offset in [-SKEW, SKEW] {
        let idp = idp(ACCESS_TTL).await;
        let skewed = Timestamp::from_unix_millis(system_now().as_unix_millis() + offset * 1000);
        let build = |config| Session::builder("skewed", config).clock(Arc::new(ManualClock::new(skewed))).build();
        let machine = build(machine(&idp.issuer()));
        let header = machine.authorization_header().await.unwrap();
        assert_eq!(header.expires_at().unwrap().duration_since(skewed), ACCESS_TTL);
        assert_eq!(whoami(&idp, header.expose_secret()).await, 200);
        for _ in 0..10 {
            machine.authorization_header().await.unwrap();
        }
        assert_eq!(idp.stats().token_requests, 1, "cached, not refreshed in a loop");

        let error = build(bob(&idp.issuer())).authorization_header().await.unwrap_err();
        assert!(is_invalid_grant(&error), "TOTP from a clock 5 min off: {error}");
        assert_eq!(idp.stats().token_requests, 2, "not retried");
        idp.shutdown().await;
    }
}

/// Discovery (the first request of every grant configured with an issuer) is a GET, always safe to
/// repeat: transient faults are retried with the login backoff, final ones (a malformed document)
/// are typed errors at once; nothing is cached or stored after a failure, and the next call
/// discovers again.
#[tokio::test]
async fn discovery_retries_transient_faults_and_fails_typed_on_final_ones() {
    for (fault, retried) in [
        (Fault::status(503, "busy"), true),
        (Fault::new(FaultKind::HtmlErrorPage { status: 502 }), true),
        (Fault::new(FaultKind::DropConnection), true),
        (Fault::delay(REQUEST_TIMEOUT * 3), true),
        (Fault::new(FaultKind::MalformedJson), false),
    ] {
        let idp = idp(ACCESS_TTL).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("tokens")));
        let session =
            Session::builder("machine", machine(&idp.issuer())).store(store.clone()).settings(settings()).build();
        idp.faults().push(FaultEndpoint::Discovery, fault.clone(), 1);
        let result = session.authorization_header().await;
        let stats = idp.stats();
        if retried {
            let header = result.unwrap_or_else(|e| panic!("{fault:?}: retried, expected tokens: {e}"));
            assert_eq!((stats.discovery_requests, stats.token_requests), (2, 1), "{fault:?}: one retry");
            assert_eq!(store.load("machine").await.unwrap().as_ref(), Some(header.tokens()), "{fault:?}");
        } else {
            let error = result.unwrap_err();
            assert!(is_malformed(&error), "{fault:?}: {error:?}");
            assert_eq!((stats.discovery_requests, stats.token_requests), (1, 0), "{fault:?}: not retried");
            assert_eq!(store.load("machine").await.unwrap(), None, "{fault:?}: nothing stored");
            // The next attempt is postponed (0.5–1 s after a first failure), then made.
            assert!(is_malformed(&session.authorization_header().await.unwrap_err()), "{fault:?}: postponed");
            assert_eq!(idp.stats().discovery_requests, 1, "{fault:?}: nothing sent while postponed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            session.authorization_header().await.unwrap();
            assert_eq!(idp.stats().discovery_requests, 2, "{fault:?}: discovered again");
        }
        if fault.delay.is_some() {
            tokio::time::sleep(REQUEST_TIMEOUT * 3).await; // let the late answer finish before shutdown
        }
        idp.shutdown().await;
    }
}

/// Regression (session.rs `drive`): a backoff is over once it has been slept, even when the wall
/// clock stands still or lags (here a clock that never moves). Before the fix the flow asked to wait
/// again after every sleep, until its 64-step limit.
#[tokio::test]
async fn backoff_ends_when_slept_even_if_the_wall_clock_stands_still() {
    let idp = idp(ACCESS_TTL).await;
    idp.faults().push(FaultEndpoint::Token, Fault::status(503, "busy"), 2);
    let session = Session::builder("machine", machine(&idp.issuer()))
        .clock(Arc::new(ManualClock::new(system_now())))
        .settings(settings())
        .build();
    let started = Instant::now();
    session.authorization_header().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(idp.stats().token_requests, 3, "two backoffs, three attempts");
    idp.shutdown().await;
}

/// The device-code row (RFC 8628), login column: the person approves at once, and the fault hits the
/// first poll of the token endpoint. Polling is safe to repeat (a device code is redeemed once, and a
/// spent code answers an error, never a second set of tokens), so every transient fault is simply
/// polled through at the next interval; the rest are typed errors. A timeout is the exception: the
/// server redeemed the code for the answer that came too late, so the next poll is refused
/// (`invalid_grant`) and the person must start again. Refreshes of device-code tokens are the
/// refresh-token row above (the same refresh machinery).
#[tokio::test]
async fn device_code_polling() {
    use tessera::Prompt;
    use tessera::prompt::FnPrompter;

    for case in CASES {
        let label = format!("DeviceCode × {case:?}");
        eprintln!("cell {label}");
        let config = tessera_idp::IdpConfig {
            access_token_ttl: ACCESS_TTL,
            device_poll_interval: Duration::from_secs(1),
            ..tessera_idp::IdpConfig::demo()
        };
        let idp = Arc::new(IdpServer::start(config).await.expect("IdP starts"));
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("tokens")));
        let approver = Arc::clone(&idp);
        let prompter = FnPrompter(move |_: &str, prompt: &Prompt| {
            let Prompt::DeviceCode { user_code, .. } = prompt else { panic!("unexpected prompt {prompt:?}") };
            approver.approve_device(user_code, demo::ALICE_USERNAME).expect("a pending code");
            Ok(())
        });
        let config = ProviderConfig {
            client: tessera::ClientAuth::public(demo::BROWSER_CLIENT_ID),
            endpoints: tessera::Endpoints::discover(idp.issuer()),
            scope: Some("openid offline_access".into()),
            grant: Grant::DeviceCode { device_authorization_endpoint: None },
        };
        let session = Session::builder("device", config)
            .store(store.clone())
            .prompter(Arc::new(prompter))
            .settings(settings())
            .build();
        inject(&idp, case, None).await;
        let before = idp.stats();
        let result = tokio::time::timeout(Duration::from_secs(30), session.login()).await.expect("the login ends");
        let polls = idp.stats().token_requests - before.token_requests;
        let stored = store.load("device").await.expect("the store still parses");
        let typed = |is: fn(&Error) -> bool, what: &str, result: Result<_, Error>| {
            let error = result.err().unwrap_or_else(|| panic!("{label}: expected {what}, got tokens"));
            assert!(is(&error), "{label}: expected {what}, got {error:?}");
            assert_eq!(polls, 1, "{label}: not polled again");
            assert_eq!(stored, None, "{label}: nothing stored");
        };
        match case {
            Case::Status500
            | Case::Status503
            | Case::TooManyRequests
            | Case::ConnectionReset
            | Case::HtmlErrorPage
            | Case::ServerClockAhead
            | Case::ServerClockBehind
            | Case::RefreshTokenReuse => {
                let header = result.unwrap_or_else(|e| panic!("{label}: expected tokens, got {e}"));
                let expected_polls =
                    if matches!(case, Case::ServerClockAhead | Case::ServerClockBehind | Case::RefreshTokenReuse) {
                        1
                    } else {
                        2
                    };
                assert_eq!(polls, expected_polls, "{label}: polls");
                assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: stored");
                assert_eq!(whoami(&idp, header.expose_secret()).await, 200, "{label}");
            }
            Case::Timeout => {
                // The server redeemed the code for the answer that came too late; the next poll
                // is refused and the person must start again (a typed, final error, not a hang).
                let error = result.err().unwrap_or_else(|| panic!("{label}: expected invalid_grant, got tokens"));
                assert!(is_invalid_grant(&error), "{label}: {error:?}");
                assert_eq!(polls, 2, "{label}: polled once more after the timeout");
                assert_eq!(stored, None, "{label}: nothing stored");
            }
            Case::MalformedJson | Case::WrongContentType => typed(is_malformed, "malformed response", result),
            Case::Oversize => typed(is_too_large, "body too large", result),
            Case::InvalidGrant => typed(is_invalid_grant, "invalid_grant", result),
            Case::InvalidClient => typed(is_invalid_client, "invalid_client", result),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The refresh rows against third-party servers (docs/fault-matrix.md, "Third-party servers"):
// django-oauth-toolkit and oidc-provider, whose code cannot be told to fail, behind a fault proxy
// (tests/support/fault_proxy.rs). The same table (`want`), the same store rules; and at the end of
// every cell the server still holds a live grant: no reuse detected but the one a cell provokes,
// and the refresh token the store holds still refreshes there.

/// The faults a proxy can put in front of a server, and the server's own reuse detection.
const THIRD_PARTY_CASES: [Case; 8] = [
    Case::Status500,
    Case::Status503,
    Case::TooManyRequests,
    Case::Timeout,
    Case::ConnectionReset,
    Case::MalformedJson,
    Case::HtmlErrorPage,
    Case::RefreshTokenReuse,
];

/// How the proxy injects `case` (`None`: the server itself answers, for the reuse case). None of
/// these reaches the server: the proxy answers (or fails) in its place.
fn proxy_fault(case: Case) -> Option<ProxyFault> {
    match case {
        Case::Status500 => Some(ProxyFault::status(500)),
        Case::Status503 => Some(ProxyFault::status(503)),
        Case::TooManyRequests => Some(ProxyFault::too_many_requests(1)),
        Case::Timeout => Some(ProxyFault::Timeout),
        Case::ConnectionReset => Some(ProxyFault::ResetBeforeForwarding),
        Case::MalformedJson => Some(ProxyFault::MalformedJson),
        Case::HtmlErrorPage => Some(ProxyFault::HtmlErrorPage),
        Case::RefreshTokenReuse => None,
        other => unreachable!("{other:?} is not injected in front of a third-party server"),
    }
}

/// The cells' settings, with a 1-s request limit: a server in another process answers in
/// milliseconds, but a loaded 2-core machine must not turn a slow answer into a timeout cell.
fn third_party_settings() -> tessera::SessionSettings {
    let mut settings = settings();
    settings.transport.timeout = Duration::from_secs(1);
    settings.transport.connect_timeout = Duration::from_secs(1);
    settings
}

async fn run_third_party_row(peer: Peer, row: Row) {
    let server = ThirdParty::start(peer, ACCESS_TTL.as_secs());
    let proxy = FaultProxy::start(&server.token_endpoint());
    for case in THIRD_PARTY_CASES {
        for still_valid in [false, true] {
            run_third_party(&server, &proxy, row, case, still_valid).await;
        }
    }
    // The two RefreshTokenReuse cells provoke one detection each; nothing else ever does.
    assert_eq!(server.counts().await.reuses, 2, "{peer:?} {row:?}: reuse detected only where provoked");
}

async fn run_third_party(server: &ThirdParty, proxy: &FaultProxy, row: Row, case: Case, still_valid: bool) {
    let column = if still_valid { "still valid" } else { "expired" };
    let label = format!("{:?} {row:?} × {case:?} ({column})", server.peer());
    eprintln!("cell {label}");
    let path = server.token_path();
    let alice = server.alice(tessera::Endpoints::explicit(proxy.url_for(&server.token_endpoint())));
    let config = match row {
        Row::PasswordRefresh => alice,
        Row::RefreshToken => {
            let seed = Session::builder("seed", alice.clone()).build().tokens().await.unwrap();
            ProviderConfig { grant: Grant::RefreshToken { refresh_token: seed.refresh_token.unwrap() }, ..alice }
        }
        Row::PasswordLogin | Row::ClientCredentials => unreachable!("only the refresh rows"),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder(format!("{row:?}"), config)
        .store(store.clone())
        .clock(clock.clone())
        .settings(third_party_settings())
        .build();
    let held = session.tokens().await.unwrap_or_else(|e| panic!("{label}: the first tokens: {e}"));
    let held_refresh = held.refresh_token.clone().expect("both servers issue refresh tokens");

    clock.advance(if still_valid { INTO_REFRESH_WINDOW } else { PAST_EXPIRY });
    match proxy_fault(case) {
        Some(fault) => proxy.fail_next(path, fault, 1),
        // Someone else redeems the session's refresh token first: its copy is spent.
        None => server.spend(&held_refresh).await,
    }
    let (before, proxied) = (server.counts().await, proxy.requests(path));
    let started = Instant::now();
    let result = session.authorization_header().await;
    let elapsed = started.elapsed();
    let requests = proxy.requests(path) - proxied;
    let after = server.counts().await;
    let stored = store.load(session.key()).await.expect("the store still parses");

    let answered_by_proxy = u64::from(proxy_fault(case).is_some());
    assert_eq!(
        after.token_requests - before.token_requests,
        requests - answered_by_proxy,
        "{label}: reached the server"
    );
    let provoked = u64::from(case == Case::RefreshTokenReuse);
    assert_eq!(after.reuses - before.reuses, provoked, "{label}: reuse detections at the server");
    // Sent without an answer (here the proxy never forwarded it, but tessera cannot know): the
    // held refresh token is dropped for good and never presented again.
    let lost = matches!(case, Case::Timeout | Case::ConnectionReset);
    let refresh_dead = case == Case::RefreshTokenReuse || lost;
    match want(row, case) {
        Want::Tokens { requests: expected } => {
            let header = result.unwrap_or_else(|e| panic!("{label}: expected tokens, got {e}"));
            assert_eq!(requests, expected, "{label}: token requests");
            assert_ne!(header.access_token(), &held.access_token, "{label}: a new token");
            assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: the new tokens are stored");
            if case == Case::TooManyRequests {
                assert!(elapsed >= Duration::from_secs(1), "{label}: Retry-After honoured ({elapsed:?})");
            }
            if case == Case::RefreshTokenReuse {
                assert_eq!(after.password - before.password, 1, "{label}: refresh rejected, then one new login");
            }
            let refresh = header.tokens().refresh_token.as_ref().expect("a rotated refresh token");
            assert!(server.refresh_token_alive(refresh).await, "{label}: the stored refresh token works");
            if lost {
                // The server never saw it: alive there, yet tessera dropped it (it may have been spent).
                assert!(server.refresh_token_alive(&held_refresh).await, "{label}: not forwarded");
                assert_ne!(header.tokens().refresh_token.as_ref(), Some(&held_refresh), "{label}: not kept");
            } else {
                assert!(!server.refresh_token_alive(&held_refresh).await, "{label}: the held one is spent");
            }
        }
        Want::Fails { requests: expected, what, is } => {
            match result {
                Err(error) if !still_valid => assert!(is(&error), "{label}: expected {what}, got {error:?}"),
                Ok(header) if still_valid => {
                    assert_eq!(header.access_token(), &held.access_token, "{label}: the valid token is served")
                }
                other => {
                    panic!("{label}: expected {what} ({column}), got {:?}", other.map(|h| h.access_token().clone()))
                }
            }
            assert_eq!(requests, expected, "{label}: token requests (no retry)");
            // A refresh token the server rejected, or whose answer was lost, is dropped from the
            // store; nothing else changes.
            let mut want_stored = held.clone();
            if refresh_dead {
                want_stored.refresh_token = None;
                want_stored.refresh_expires_at = None;
            } else {
                // Not forwarded: the server never saw the refresh, the grant lives on with the held token.
                assert!(server.refresh_token_alive(&held_refresh).await, "{label}: the held refresh token works");
            }
            assert_eq!(stored, Some(want_stored), "{label}: the store is unchanged but for a dead refresh token");
            if still_valid {
                let again = session.authorization_header().await.unwrap();
                assert_eq!(again.access_token(), &held.access_token, "{label}");
                assert_eq!(proxy.requests(path) - proxied, expected, "{label}: postponed, nothing sent");
            }
        }
    }
    proxy.clear();
}

#[tokio::test]
async fn password_refresh_at_django_oauth_toolkit_through_a_fault_proxy() {
    run_third_party_row(Peer::DjangoOauthToolkit, Row::PasswordRefresh).await;
}

#[tokio::test]
async fn refresh_token_grant_at_django_oauth_toolkit_through_a_fault_proxy() {
    run_third_party_row(Peer::DjangoOauthToolkit, Row::RefreshToken).await;
}

#[tokio::test]
async fn password_refresh_at_oidc_provider_through_a_fault_proxy() {
    run_third_party_row(Peer::OidcProvider, Row::PasswordRefresh).await;
}

#[tokio::test]
async fn refresh_token_grant_at_oidc_provider_through_a_fault_proxy() {
    run_third_party_row(Peer::OidcProvider, Row::RefreshToken).await;
}
