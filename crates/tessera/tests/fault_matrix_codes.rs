//! The fault matrix for the grants that redeem a code or a Cognito session (issue #8): email
//! one-time codes (`/otp/start`, `/otp/verify`) and Cognito (`InitiateAuth` login,
//! `REFRESH_TOKEN_AUTH`, `RespondToAuthChallenge`), each row × the 14 shared fault cases, against
//! the reference IdP's fault hooks, with a `FileStore` under every session.
//!
//! Each cell asserts the outcome (tokens, or the typed error), how many requests the server saw
//! (whether the request was resent), what the store holds afterwards (the new tokens, or exactly
//! what it held before), and for 429 that `Retry-After` was honoured. The rules under test are in
//! `tessera-core/src/flow/resend.rs`: a request that only starts a login is resent on any transient
//! failure (and so is Cognito's `REFRESH_TOKEN_AUTH`, which spends nothing), a request that redeems
//! something (a mailed code, a Cognito session) only when the server cannot have processed it
//! (429, 503, no connection).
//!
//! Clock skew is a standing difference between the two clocks, so it is set before the login in
//! every row (not between start and verify).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::faults::*;
use support::*;
use tessera::clock::{Clock, ManualClock, system_now};
use tessera::core::flow::CognitoAuthFlow;
use tessera::prompt::CodePrompter;
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, Prompt, ProviderConfig, Secret, Session, TokenSet};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpServer, Stats, demo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    /// Email OTP login; the fault hits `/otp/start`.
    EmailOtpStart,
    /// Email OTP login; the fault hits `/otp/verify` (set from the prompter, once the code was mailed).
    EmailOtpVerify,
    /// Cognito `USER_PASSWORD_AUTH` (alice: no MFA); the fault hits `InitiateAuth`.
    CognitoLogin,
    /// Cognito tokens held; the fault hits `REFRESH_TOKEN_AUTH`.
    CognitoRefresh,
    /// Cognito `USER_PASSWORD_AUTH` + `EMAIL_OTP` (carol); the fault hits `RespondToAuthChallenge`.
    CognitoChallengeAnswer,
}

impl Row {
    fn is_otp(self) -> bool {
        matches!(self, Row::EmailOtpStart | Row::EmailOtpVerify)
    }

    /// The fault is set from the prompter, after the first request succeeded.
    fn injects_from_prompter(self) -> bool {
        matches!(self, Row::EmailOtpVerify | Row::CognitoChallengeAnswer)
    }
}

/// Cognito's own "wrong password / dead refresh token", mapped to OAuth `invalid_grant`.
fn is_not_authorized(e: &Error) -> bool {
    is_invalid_grant(e) && e.to_string().contains("NotAuthorizedException")
}

/// Cognito's "unknown app client", mapped to OAuth `invalid_client`.
fn is_resource_not_found(e: &Error) -> bool {
    is_invalid_client(e) && e.to_string().contains("ResourceNotFoundException")
}

/// The tables of the section for docs/fault-matrix.md (/work/wt/matrix-codes-section.md).
fn want(row: Row, case: Case) -> Want {
    use Case::*;
    match row {
        // /otp/start only opens a challenge: resent on any transient failure (then 1 verify).
        Row::EmailOtpStart => match case {
            Status500 | Status503 | TooManyRequests | Timeout | ConnectionReset | HtmlErrorPage => ok(3),
            MalformedJson | WrongContentType => fails(1, "malformed response", is_malformed),
            Oversize => fails(1, "body too large", is_too_large),
            InvalidGrant => fails(1, "invalid_grant", is_invalid_grant),
            InvalidClient => fails(1, "invalid_client", is_invalid_client),
            ServerClockAhead | ServerClockBehind | RefreshTokenReuse => ok(2),
        },
        // /otp/verify redeems the code: resent only when it cannot have been processed.
        Row::EmailOtpVerify => match case {
            Status503 | TooManyRequests => ok(3),
            Status500 => fails(2, "HTTP 500", is_500),
            HtmlErrorPage => fails(2, "HTTP 502", is_502),
            Timeout => fails(2, "timeout", is_timeout),
            ConnectionReset => fails(2, "connection closed", is_closed),
            MalformedJson | WrongContentType => fails(2, "malformed response", is_malformed),
            Oversize => fails(2, "body too large", is_too_large),
            InvalidGrant => fails(2, "invalid_grant", is_invalid_grant),
            InvalidClient => fails(2, "invalid_client", is_invalid_client),
            ServerClockAhead | ServerClockBehind | RefreshTokenReuse => ok(2),
        },
        // InitiateAuth starts over: resent on any transient failure.
        Row::CognitoLogin => match case {
            Status500 | Status503 | TooManyRequests | Timeout | ConnectionReset | HtmlErrorPage => ok(2),
            MalformedJson | WrongContentType => fails(1, "malformed response", is_malformed),
            Oversize => fails(1, "body too large", is_too_large),
            InvalidGrant => fails(1, "NotAuthorizedException → invalid_grant", is_not_authorized),
            InvalidClient => fails(1, "ResourceNotFoundException → invalid_client", is_resource_not_found),
            ServerClockAhead | ServerClockBehind | RefreshTokenReuse => ok(1),
        },
        // REFRESH_TOKEN_AUTH spends nothing (Cognito refuses it where refresh tokens rotate): resent
        // on any transient failure. A rejected refresh token is dropped and the password grant logs
        // in again (it logs in unattended).
        Row::CognitoRefresh => match case {
            Status500 | Status503 | TooManyRequests | Timeout | ConnectionReset | HtmlErrorPage => ok(2),
            MalformedJson | WrongContentType => fails(1, "malformed response", is_malformed),
            Oversize => fails(1, "body too large", is_too_large),
            InvalidGrant => ok(2),
            InvalidClient => fails(1, "ResourceNotFoundException → invalid_client", is_resource_not_found),
            ServerClockAhead | ServerClockBehind | RefreshTokenReuse => ok(1),
        },
        // RespondToAuthChallenge redeems the session and code: resent only when unprocessed
        // (1 InitiateAuth first).
        Row::CognitoChallengeAnswer => match case {
            Status503 | TooManyRequests => ok(3),
            Status500 => fails(2, "HTTP 500", is_500),
            HtmlErrorPage => fails(2, "HTTP 502", is_502),
            Timeout => fails(2, "timeout", is_timeout),
            ConnectionReset => fails(2, "connection closed", is_closed),
            MalformedJson | WrongContentType => fails(2, "malformed response", is_malformed),
            Oversize => fails(2, "body too large", is_too_large),
            InvalidGrant => fails(2, "NotAuthorizedException → invalid_grant", is_not_authorized),
            InvalidClient => fails(2, "ResourceNotFoundException → invalid_client", is_resource_not_found),
            ServerClockAhead | ServerClockBehind | RefreshTokenReuse => ok(2),
        },
    }
}

fn is_clock(case: Case) -> bool {
    matches!(case, Case::ServerClockAhead | Case::ServerClockBehind)
}

/// A Cognito exception as AWS sends it: 400, `application/x-amz-json-1.1`, `__type` + `message`.
fn cognito_exception(kind: &str, message: &str) -> Fault {
    Fault::new(FaultKind::Status {
        status: 400,
        body: serde_json::json!({ "__type": kind, "message": message }).to_string(),
        content_type: "application/x-amz-json-1.1".into(),
    })
}

/// Sets up the fault of `case` for the next request to the row's endpoint. For Cognito, the OAuth
/// cases are Cognito's native exceptions, and reuse spends `held`'s refresh token at `/cognito`.
async fn inject_row(idp: &IdpServer, row: Row, case: Case, held: Option<&TokenSet>) {
    if row.is_otp() {
        return inject_at(idp, FaultEndpoint::Otp, case, held).await;
    }
    let push = |fault| idp.faults().push(FaultEndpoint::Cognito, fault, 1);
    match case {
        Case::InvalidGrant => push(cognito_exception("NotAuthorizedException", "Incorrect username or password.")),
        Case::InvalidClient => {
            push(cognito_exception("ResourceNotFoundException", "User pool client x does not exist."))
        }
        Case::RefreshTokenReuse => {
            if let Some(refresh_token) = held.and_then(|t| t.refresh_token.as_ref()) {
                spend_at_cognito(idp, refresh_token).await;
            }
        }
        _ => inject_at(idp, FaultEndpoint::Cognito, case, held).await,
    }
}

/// Someone else redeems the refresh token first, with a raw `REFRESH_TOKEN_AUTH`.
async fn spend_at_cognito(idp: &IdpServer, refresh_token: &Secret) {
    let body = serde_json::json!({
        "AuthFlow": "REFRESH_TOKEN_AUTH",
        "ClientId": demo::COGNITO_CLIENT_ID,
        "AuthParameters": { "REFRESH_TOKEN": refresh_token.expose_secret() },
    });
    let response = http_client()
        .post(idp.url("/cognito"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSCognitoIdentityProviderService.InitiateAuth")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the refresh token is redeemed by someone else");
}

/// Answers the code prompt from the outbox (the last code mailed to `to`); for the rows that inject
/// from the prompter, sets up the fault first (once), after the first request succeeded.
fn prompter(idp: &Arc<IdpServer>, to: &'static str, inject: Option<(Row, Case)>) -> CodePrompter {
    let idp = Arc::clone(idp);
    let injected = Arc::new(AtomicBool::new(false));
    CodePrompter::from_async(move |prompt: Prompt| {
        let (idp, injected) = (Arc::clone(&idp), Arc::clone(&injected));
        async move {
            assert!(matches!(prompt, Prompt::Code { attempt: 1, .. }), "asked once: {prompt:?}");
            if let Some((row, case)) = inject
                && !injected.swap(true, Ordering::SeqCst)
            {
                inject_row(&idp, row, case, None).await;
            }
            let code = idp.outbox().into_iter().rev().find(|m| m.to == to).map(|m| m.code);
            Ok::<_, Error>(code.expect("a code was mailed"))
        }
    })
}

struct Cell {
    row: Row,
    idp: Arc<IdpServer>,
    session: Session,
    clock: Arc<ManualClock>,
    store: Arc<FileStore>,
    _dir: tempfile::TempDir,
    held: Option<TokenSet>,
}

fn cognito_grant(idp: &IdpServer, username: &str, password: &str) -> Grant {
    Grant::Cognito {
        endpoint_url: idp.url("/cognito"),
        username: username.into(),
        password: Some(Secret::new(password)),
        auth_flow: CognitoAuthFlow::UserPassword,
        totp_secret: None,
        max_code_attempts: 3,
    }
}

/// The row's login: alice by email code, alice by Cognito password, or carol by Cognito password
/// and emailed code.
fn config(row: Row, idp: &IdpServer) -> ProviderConfig {
    match row {
        Row::EmailOtpStart | Row::EmailOtpVerify => ProviderConfig {
            client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
            endpoints: Endpoints::discover(idp.issuer()),
            scope: Some("openid".into()),
            grant: Grant::email_otp(demo::ALICE_EMAIL),
        },
        Row::CognitoLogin | Row::CognitoRefresh | Row::CognitoChallengeAnswer => ProviderConfig {
            client: ClientAuth::public(demo::COGNITO_CLIENT_ID),
            endpoints: Endpoints::explicit(idp.url("/cognito")),
            scope: None,
            grant: match row {
                Row::CognitoChallengeAnswer => cognito_grant(idp, demo::CAROL_USERNAME, demo::CAROL_PASSWORD),
                _ => cognito_grant(idp, demo::ALICE_USERNAME, demo::ALICE_PASSWORD),
            },
        },
    }
}

async fn cell(row: Row, case: Case) -> Cell {
    let idp = Arc::new(idp(ACCESS_TTL).await);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let clock = Arc::new(ManualClock::new(system_now()));
    let from_prompter = (row.injects_from_prompter() && !is_clock(case)).then_some((row, case));
    let to = if row == Row::CognitoChallengeAnswer { demo::CAROL_EMAIL } else { demo::ALICE_EMAIL };
    let prompter = (row.is_otp() || row == Row::CognitoChallengeAnswer).then(|| prompter(&idp, to, from_prompter));
    let config = config(row, &idp);
    let mut builder =
        Session::builder(format!("{row:?}"), config).store(store.clone()).clock(clock.clone()).settings(settings());
    if let Some(prompter) = prompter {
        builder = builder.prompter(Arc::new(prompter));
    }
    let session = builder.build();
    let held = match row {
        Row::CognitoRefresh => Some(session.tokens().await.unwrap()),
        _ => None,
    };
    Cell { row, idp, session, clock, store, _dir: dir, held }
}

/// Requests to the row's endpoints, and the logins / refreshes the server completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    requests: u64,
    logins: u64,
    refreshes: u64,
}

fn seen_since(row: Row, after: &Stats, before: &Stats) -> Seen {
    if row.is_otp() {
        Seen {
            requests: after.otp_requests - before.otp_requests,
            logins: after.otp_logins - before.otp_logins,
            refreshes: after.refresh_grants - before.refresh_grants,
        }
    } else {
        Seen {
            requests: after.cognito_requests - before.cognito_requests,
            logins: after.cognito_logins - before.cognito_logins,
            refreshes: after.cognito_refreshes - before.cognito_refreshes,
        }
    }
}

impl Cell {
    /// Stops the IdP once the session (whose prompter holds it too) is gone.
    async fn shutdown(self) {
        let Cell { idp, session, .. } = self;
        drop(session);
        if let Ok(idp) = Arc::try_unwrap(idp) {
            idp.shutdown().await;
        }
    }

    /// What the caller does: a login for the login rows, a header for the refresh row.
    async fn call(&self) -> Result<tessera::AuthorizationHeader, Error> {
        let call = async {
            match self.row {
                Row::CognitoRefresh | Row::CognitoLogin => self.session.authorization_header().await,
                _ => self.session.login().await,
            }
        };
        tokio::time::timeout(Duration::from_secs(30), call).await.expect("the call ends")
    }
}

/// The login / "expired" column: the caller waits and gets what the table says.
async fn run_expired(row: Row, case: Case) {
    let label = format!("{row:?} × {case:?}");
    eprintln!("cell {label}");
    let cell = cell(row, case).await;
    if cell.held.is_some() {
        cell.clock.advance(PAST_EXPIRY);
    }
    if !row.injects_from_prompter() || is_clock(case) {
        inject_row(&cell.idp, row, case, cell.held.as_ref()).await;
    }
    let before = cell.idp.stats();
    let started = Instant::now();
    let result = cell.call().await;
    let elapsed = started.elapsed();
    let seen = seen_since(row, &cell.idp.stats(), &before);
    let stored = cell.store.load(cell.session.key()).await.expect("the store still parses");
    match want(row, case) {
        Want::Tokens { requests } => {
            let header = result.unwrap_or_else(|e| panic!("{label}: expected tokens, got {e}"));
            assert_eq!(seen.requests, requests, "{label}: requests");
            assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: the new tokens are stored");
            if let Some(held) = &cell.held {
                assert_ne!(header.access_token(), &held.access_token, "{label}: a new token");
            }
            if case == Case::TooManyRequests {
                assert!(elapsed >= Duration::from_secs(1), "{label}: Retry-After honoured ({elapsed:?})");
            }
            match (row, case) {
                // The rejected refresh token is dropped; the password logs in again.
                (Row::CognitoRefresh, Case::InvalidGrant) => {
                    assert_eq!((seen.logins, seen.refreshes), (1, 0), "{label}: one new login")
                }
                // The late refresh was processed at the server, then the resend.
                (Row::CognitoRefresh, Case::Timeout) => {
                    assert_eq!((seen.logins, seen.refreshes), (0, 2), "{label}")
                }
                // Cognito does not rotate: the token someone else redeemed still refreshes.
                (Row::CognitoRefresh, _) => assert_eq!((seen.logins, seen.refreshes), (0, 1), "{label}"),
                // The late answer's login was completed at the server, then InitiateAuth again.
                (Row::CognitoLogin, Case::Timeout) => assert_eq!((seen.logins, seen.refreshes), (2, 0), "{label}"),
                // A login: exactly one completed, no refresh token involved.
                _ => assert_eq!((seen.logins, seen.refreshes), (1, 0), "{label}: one login, no refresh"),
            }
            if row == Row::EmailOtpStart && case == Case::Timeout {
                // The late /otp/start was processed: two codes mailed, the newest one redeemed.
                assert_eq!(cell.idp.outbox().len(), 2, "{label}: two codes mailed");
            }
            if is_clock(case) || case == Case::RefreshTokenReuse {
                // expires_in is a duration: the expiry is right on the session's clock, and the
                // server (on its own clock) accepts the token.
                let expires_at = header.expires_at().unwrap();
                assert_eq!(expires_at.duration_since(cell.clock.now()), ACCESS_TTL, "{label}");
                assert_eq!(whoami(&cell.idp, header.expose_secret()).await, 200, "{label}");
            }
        }
        Want::Fails { requests, what, is } => {
            let error = match result {
                Ok(_) => panic!("{label}: expected {what}, got tokens"),
                Err(error) => error,
            };
            assert!(is(&error), "{label}: expected {what}, got {error:?}");
            assert_eq!(seen.requests, requests, "{label}: requests (not resent)");
            assert_eq!(stored, cell.held, "{label}: the store is unchanged");
            assert!(!format!("{error} {error:?}").contains(demo::ALICE_PASSWORD), "{label}: no password in errors");
            if case == Case::Timeout {
                // The server processed the request the client gave up on: the code / session /
                // refresh token was spent once, and the session never presented it again.
                tokio::time::sleep(REQUEST_TIMEOUT * 3).await;
                let late = seen_since(row, &cell.idp.stats(), &before);
                assert_eq!(late.requests, requests, "{label}: never presented again");
                let processed = if row == Row::CognitoRefresh { late.refreshes } else { late.logins };
                assert_eq!(processed, 1, "{label}: the late request was processed once");
            } else {
                assert_eq!(seen.logins, 0, "{label}: no login completed");
            }
        }
    }
    if case == Case::Timeout {
        tokio::time::sleep(REQUEST_TIMEOUT * 3).await; // let the late answer finish before shutdown
    }
    cell.shutdown().await;
}

/// The "still valid" column of the refresh row: whatever the fault, the caller gets a token.
async fn run_still_valid(row: Row, case: Case) {
    let label = format!("{row:?} × {case:?} (still valid)");
    eprintln!("cell {label}");
    let cell = cell(row, case).await;
    let held = cell.held.clone().expect("rows with a token");
    cell.clock.advance(INTO_REFRESH_WINDOW);
    inject_row(&cell.idp, row, case, Some(&held)).await;
    let before = cell.idp.stats();
    let result = cell.call().await;
    let seen = seen_since(row, &cell.idp.stats(), &before);
    let stored = cell.store.load(cell.session.key()).await.expect("the store still parses");
    let header = result.unwrap_or_else(|e| panic!("{label}: a still-valid token must be served, got {e}"));
    match want(row, case) {
        Want::Tokens { requests } => {
            assert_ne!(header.access_token(), &held.access_token, "{label}: refreshed");
            assert_eq!(seen.requests, requests, "{label}: requests");
            assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: stored");
        }
        Want::Fails { requests, .. } => {
            assert_eq!(header.access_token(), &held.access_token, "{label}: the valid token is served");
            assert_eq!(seen.requests, requests, "{label}: requests (not resent)");
            assert_eq!(stored.as_ref(), Some(&held), "{label}: the store is unchanged");
            // The next call within the postponement serves it without another request.
            let again = cell.call().await.unwrap();
            assert_eq!(again.access_token(), &held.access_token, "{label}");
            let after = seen_since(row, &cell.idp.stats(), &before);
            assert_eq!(after.requests, requests, "{label}: postponed");
        }
    }
    if case == Case::Timeout {
        tokio::time::sleep(REQUEST_TIMEOUT * 3).await; // let the late answer finish before shutdown
    }
    cell.shutdown().await;
}

async fn run_row(row: Row) {
    for case in CASES {
        run_expired(row, case).await;
        if row == Row::CognitoRefresh {
            run_still_valid(row, case).await;
        }
    }
}

#[tokio::test]
async fn email_otp_start() {
    run_row(Row::EmailOtpStart).await;
}

#[tokio::test]
async fn email_otp_verify() {
    run_row(Row::EmailOtpVerify).await;
}

#[tokio::test]
async fn cognito_login() {
    run_row(Row::CognitoLogin).await;
}

#[tokio::test]
async fn cognito_refresh() {
    run_row(Row::CognitoRefresh).await;
}

#[tokio::test]
async fn cognito_challenge_answer() {
    run_row(Row::CognitoChallengeAnswer).await;
}

/// Regression (session.rs `refresh_locked`): a Cognito password grant logs in unattended, until the
/// pool answers with a challenge (carol: an emailed code). Without a prompter that login stops at
/// the prompt; the default policy then said "reauthenticate", which ran the same login again and
/// mailed the user a second code on every call. One call is now one `InitiateAuth` and one code,
/// whether the session had no token or its refresh token was rejected.
#[tokio::test]
async fn a_login_stopped_at_a_prompt_without_a_prompter_is_not_run_twice() {
    let idp = Arc::new(idp(ACCESS_TTL).await);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    let clock = Arc::new(ManualClock::new(system_now()));
    let carol = || {
        let config = config(Row::CognitoChallengeAnswer, &idp);
        Session::builder("carol", config).store(store.clone()).clock(clock.clone()).settings(settings())
    };
    let daemon = carol().build();
    for call in 1..=3u64 {
        let error = tokio::time::timeout(Duration::from_secs(10), daemon.authorization_header())
            .await
            .expect("no hang")
            .expect_err("nobody to answer the code");
        assert!(error.requires_reauthentication() && error.to_string().contains("prompter"), "{error:?}");
        let mailed = idp.outbox().len() as u64;
        // The first call's final failure is shared by the later ones: nothing more is sent or mailed.
        assert_eq!((idp.stats().cognito_requests, mailed), (1, 1), "call {call}: one InitiateAuth, one code in all");
        assert_eq!(store.load("carol").await.unwrap(), None, "nothing stored");
    }

    // Expired tokens whose refresh token is rejected: the engine logs in again (once), which stops
    // at the prompt; the held set stays in the store.
    let person = carol().prompter(Arc::new(prompter(&idp, demo::CAROL_EMAIL, None))).build();
    let held = person.login().await.expect("carol answers the code").tokens().clone();
    clock.advance(PAST_EXPIRY);
    let revoked = cognito_exception("NotAuthorizedException", "Refresh Token has been revoked");
    idp.faults().push(FaultEndpoint::Cognito, revoked, 1);
    let (requests, mailed) = (idp.stats().cognito_requests, idp.outbox().len());
    let error = daemon.authorization_header().await.expect_err("nobody to answer the code");
    assert!(error.requires_reauthentication(), "{error:?}");
    assert_eq!(idp.stats().cognito_requests - requests, 2, "the rejected refresh, then one InitiateAuth");
    assert_eq!(idp.outbox().len() - mailed, 1, "one code");
    // The rejected refresh token leaves the store (no process presents it again); the rest stays.
    let mut without_refresh = held;
    without_refresh.refresh_token = None;
    without_refresh.refresh_expires_at = None;
    assert_eq!(store.load("carol").await.unwrap(), Some(without_refresh), "the store keeps the held set");
}

/// A server clock that *jumps* 5 minutes between the two requests of a login (unlike a standing
/// skew, which the rows above show changes nothing) expires the challenge opened by the first: the
/// answer is refused with a final `invalid_grant`, once, and nothing is stored.
#[tokio::test]
async fn a_server_clock_jump_between_start_and_answer_expires_the_challenge() {
    for row in [Row::EmailOtpVerify, Row::CognitoChallengeAnswer] {
        let label = format!("{row:?}");
        let cell = cell(row, Case::ServerClockAhead).await; // its prompter injects nothing for clock cases
        let jumped = Arc::new(AtomicBool::new(false));
        let (idp, flag) = (Arc::clone(&cell.idp), Arc::clone(&jumped));
        // Wrap: jump the server's clock from inside the prompt, then answer as the cell's prompter would.
        let to = if row == Row::EmailOtpVerify { demo::ALICE_EMAIL } else { demo::CAROL_EMAIL };
        let jumping = CodePrompter::new(move |_: &Prompt| {
            idp.set_clock_offset(SKEW);
            flag.store(true, Ordering::SeqCst);
            let code = idp.outbox().into_iter().rev().find(|m| m.to == to).map(|m| m.code);
            Ok::<_, Error>(code.expect("a code was mailed"))
        });
        let session = Session::builder(format!("{row:?}-jump"), config(row, &cell.idp))
            .store(cell.store.clone())
            .prompter(Arc::new(jumping))
            .settings(settings())
            .build();
        let before = cell.idp.stats();
        let error = session.login().await.expect_err("the challenge expired");
        assert!(jumped.load(Ordering::SeqCst), "{label}: prompted");
        assert!(is_invalid_grant(&error) && error.to_string().contains("expired"), "{label}: {error:?}");
        assert_eq!(seen_since(row, &cell.idp.stats(), &before).requests, 2, "{label}: not resent");
        assert_eq!(cell.store.load(session.key()).await.unwrap(), None, "{label}: nothing stored");
        drop(session);
        cell.shutdown().await;
    }
}
