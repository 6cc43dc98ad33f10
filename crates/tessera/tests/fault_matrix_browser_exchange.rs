//! The browser-login and token-exchange rows of the fault matrix (docs/fault-matrix.md), each cell
//! asserted against the reference IdP's fault hooks, with the cases and predicates of
//! `support/faults.rs` shared with `fault_matrix.rs`.
//!
//! - **Browser** (authorization code + PKCE, `openid`: the ID token is verified against the JWKS):
//!   the person signs in at once (an HTTP "browser" fills in the IdP's login form and follows the
//!   redirect to the loopback receiver) and the fault hits the code exchange at the token endpoint.
//!   The code is redeemed once, so the exchange is resent only when the server cannot have seen it.
//! - **JWKS** (the same login, the fault on the key fetch): a GET, resent on any transient failure.
//! - **Token exchange** (RFC 8693 stages of a `DomainClient`): the fault hits the domain stage's
//!   exchange. Deriving a token redeems nothing, so every transient failure is retried.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::faults::*;
use support::http_browser::HttpBrowser;
use support::*;
use tessera::browser::LoopbackSettings;
use tessera::chain::{ChainConfig, DomainClient, Stage};
use tessera::clock::{Clock, ManualClock, system_now};
use tessera::core::protocol::TokenExchangeParams;
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session, SessionSettings};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpServer, demo};

/// Upper bound for one login (the loopback receiver gives up after 10 s).
const LOGIN_LIMIT: Duration = Duration::from_secs(30);

fn is_id_token_refused(e: &Error) -> bool {
    matches!(e, Error::MalformedResponse { reason, .. } if reason.contains("ID token")) && !e.is_transient()
}

// ---------------------------------------------------------------------------------------------
// Browser: the code exchange.

/// The browser row of docs/fault-matrix.md.
fn browser_want(case: Case) -> Want {
    use Case::*;
    match case {
        // The server says it did not process the exchange: the same code is sent again.
        Status503 | TooManyRequests => ok(2),
        // Anything else may have redeemed the code: the error as it came, the login to be started again.
        Status500 => fails(1, "HTTP 500", is_500),
        HtmlErrorPage => fails(1, "HTTP 502", is_502),
        Timeout => fails(1, "timeout", is_timeout),
        ConnectionReset => fails(1, "connection closed", is_closed),
        MalformedJson | WrongContentType => fails(1, "malformed response", is_malformed),
        Oversize => fails(1, "body too large", is_too_large),
        InvalidGrant => fails(1, "invalid_grant", is_invalid_grant),
        InvalidClient => fails(1, "invalid_client", is_invalid_client),
        // The ID token's iat (server +5 min) or exp (server −5 min, 20 s lifetime) is beyond the 60 s leeway.
        ServerClockAhead | ServerClockBehind => fails(1, "ID token refused", is_id_token_refused),
        RefreshTokenReuse => ok(1), // a login redeems no refresh token
    }
}

fn browser_config(issuer: &str) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
        endpoints: Endpoints::discover(issuer),
        scope: Some("openid offline_access".into()),
        grant: Grant::Browser { authorization_endpoint: None, redirect_uri: None, authorization_params: Vec::new() },
    }
}

fn browser_session(idp: &IdpServer, store: Arc<FileStore>) -> Session {
    let settings = SessionSettings {
        loopback: LoopbackSettings { timeout: Duration::from_secs(10), ..LoopbackSettings::default() },
        ..settings()
    };
    Session::builder("browser", browser_config(&idp.issuer()))
        .prompter(HttpBrowser::honest())
        .store(store)
        .settings(settings)
        .build()
}

#[tokio::test]
async fn browser_code_exchange() {
    for case in CASES {
        let label = format!("Browser × {case:?}");
        eprintln!("cell {label}");
        let idp = idp(ACCESS_TTL).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("tokens")));
        let session = browser_session(&idp, store.clone());
        inject(&idp, case, None).await;
        let before = idp.stats();
        let started = Instant::now();
        let result = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("the login ends");
        let elapsed = started.elapsed();
        let stats = idp.stats();
        let exchanges = stats.token_requests - before.token_requests;
        let stored = store.load("browser").await.expect("the store still parses");
        assert_eq!(stats.authorize_requests - before.authorize_requests, 2, "{label}: one sign-in (GET + POST)");
        match browser_want(case) {
            Want::Tokens { requests } => {
                let header = result.unwrap_or_else(|e| panic!("{label}: expected tokens, got {e}"));
                assert_eq!(exchanges, requests, "{label}: code exchanges");
                assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}: stored");
                assert!(header.tokens().id_token.is_some(), "{label}: the verified ID token is kept");
                assert_eq!(whoami(&idp, header.expose_secret()).await, 200, "{label}");
                if case == Case::TooManyRequests {
                    assert!(elapsed >= Duration::from_secs(1), "{label}: Retry-After honoured ({elapsed:?})");
                }
            }
            Want::Fails { requests, what, is } => {
                let error = result.err().unwrap_or_else(|| panic!("{label}: expected {what}, got tokens"));
                assert!(is(&error), "{label}: expected {what}, got {error:?}");
                assert_eq!(exchanges, requests, "{label}: code exchanges (not resent)");
                assert_eq!(stored, None, "{label}: nothing stored");
                let message = error.to_string();
                match case {
                    Case::ServerClockAhead => assert!(message.contains("s in the future"), "{label}: {message}"),
                    Case::ServerClockBehind => assert!(message.contains("expired"), "{label}: {message}"),
                    _ => {}
                }
                if case == Case::Timeout {
                    tokio::time::sleep(REQUEST_TIMEOUT * 3).await; // the late answer spent the code
                }
                // Nothing is stuck: the next login (a new code) works.
                idp.set_clock_offset(0);
                let header = tokio::time::timeout(LOGIN_LIMIT, session.login())
                    .await
                    .expect("the login ends")
                    .unwrap_or_else(|e| panic!("{label}: a new login after the failure: {e}"));
                assert_eq!(store.load("browser").await.unwrap().as_ref(), Some(header.tokens()), "{label}");
            }
        }
        idp.shutdown().await;
    }
}

/// The key fetch (`jwks_uri`) after the code exchange is a GET of public data: resent on any
/// transient failure; a final failure is a typed error and nothing is stored (the tokens came
/// with an ID token that could not be verified).
#[tokio::test]
async fn browser_jwks_fetch() {
    type Check = fn(&Error) -> bool;
    let resent: [Fault; 5] = [
        Fault::status(500, "internal error"),
        Fault::status(503, "busy"),
        Fault::new(FaultKind::HtmlErrorPage { status: 502 }),
        Fault::new(FaultKind::DropConnection),
        Fault::delay(REQUEST_TIMEOUT * 3),
    ];
    let finals: [(Fault, Check); 3] = [
        (Fault::new(FaultKind::MalformedJson), is_malformed),
        (Fault::new(FaultKind::WrongContentType), is_malformed),
        (Fault::new(FaultKind::Oversize { bytes: MAX_BODY * 4 }), is_too_large),
    ];
    let cells = resent.into_iter().map(|fault| (fault, None)).chain(finals.into_iter().map(|(f, c)| (f, Some(c))));
    for (fault, final_check) in cells {
        let label = format!("JWKS × {fault:?}");
        eprintln!("cell {label}");
        let idp = idp(ACCESS_TTL).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("tokens")));
        let session = browser_session(&idp, store.clone());
        idp.faults().push(FaultEndpoint::Jwks, fault.clone(), 1);
        let before = idp.stats();
        let result = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("the login ends");
        let stats = idp.stats();
        let (fetches, exchanges) =
            (stats.jwks_requests - before.jwks_requests, stats.token_requests - before.token_requests);
        let stored = store.load("browser").await.expect("the store still parses");
        assert_eq!(exchanges, 1, "{label}: the code is exchanged once");
        match final_check {
            None => {
                let header = result.unwrap_or_else(|e| panic!("{label}: resent, expected tokens: {e}"));
                assert_eq!(fetches, 2, "{label}: one resend");
                assert_eq!(stored.as_ref(), Some(header.tokens()), "{label}");
            }
            Some(is) => {
                let error = result.err().unwrap_or_else(|| panic!("{label}: expected a typed error"));
                assert!(is(&error), "{label}: {error:?}");
                assert_eq!(fetches, 1, "{label}: not resent");
                assert_eq!(stored, None, "{label}: an unverified ID token is not stored");
            }
        }
        if fault.delay.is_some() {
            tokio::time::sleep(REQUEST_TIMEOUT * 3).await;
        }
        idp.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Token exchange (RFC 8693): a DomainClient's domain stage.

/// The token-exchange row: no domain token yet, the fault on the domain stage's exchange.
fn exchange_want(case: Case) -> Want {
    use Case::*;
    match case {
        // Deriving redeems nothing (the subject token stays valid): every transient failure is retried.
        Status500 | Status503 | TooManyRequests | Timeout | ConnectionReset | HtmlErrorPage => ok(2),
        MalformedJson | WrongContentType => fails(1, "malformed response", is_malformed),
        Oversize => fails(1, "body too large", is_too_large),
        // invalid_grant: the subject token was refused. The stage above is derived again, then the
        // exchange is asked again: 3 token requests.
        InvalidGrant => ok(3),
        InvalidClient => fails(1, "invalid_client", is_invalid_client),
        // expires_in is a duration on the client's clock; the server checks the subject token on its own.
        ServerClockAhead | ServerClockBehind => ok(1),
        RefreshTokenReuse => ok(1), // no refresh token in an exchange
    }
}

/// Network and discovery tokens live an hour (so the server's clock ±5 min does not expire them
/// there); domain tokens live `ACCESS_TTL`.
async fn exchange_client(idp: &IdpServer, clock: Arc<ManualClock>) -> DomainClient {
    let token_endpoint = idp.url("/token");
    let client = || ClientAuth::basic(demo::CONFIDENTIAL_CLIENT_ID, Secret::new(demo::CONFIDENTIAL_CLIENT_SECRET));
    let chain = ChainConfig::new(
        Stage::token_exchange(&token_endpoint, client(), TokenExchangeParams::default().audience("discovery")),
        Stage::token_exchange(
            &token_endpoint,
            client(),
            TokenExchangeParams::default().audience("https://domains.example/{domain_id}"),
        ),
    );
    let network = Session::builder("network", alice(&idp.issuer())).settings(settings()).build();
    let domains = DomainClient::builder(chain).network(network).clock(clock).transport(settings().transport).build();
    idp.set_access_token_ttl(Duration::from_secs(3600));
    domains.authenticate_discovery().await.expect("network login and discovery");
    idp.set_access_token_ttl(ACCESS_TTL);
    domains
}

fn introspected_audience(body: &serde_json::Value) -> Option<&str> {
    (body["active"] == true).then(|| body["aud"].as_str()).flatten()
}

#[tokio::test]
async fn token_exchange_stage() {
    for case in CASES {
        for still_valid in [false, true] {
            let label = format!("TokenExchange × {case:?} ({})", if still_valid { "still valid" } else { "no token" });
            eprintln!("cell {label}");
            let idp = idp(ACCESS_TTL).await;
            let clock = Arc::new(ManualClock::new(system_now()));
            let domains = exchange_client(&idp, clock.clone()).await;
            let held = if still_valid {
                let held = domains.get_domain_access("alpha").await.unwrap();
                clock.advance(INTO_REFRESH_WINDOW);
                Some(held)
            } else {
                None
            };
            inject(&idp, case, None).await;
            let before = idp.stats();
            let started = Instant::now();
            let result = domains.get_domain_access("alpha").await;
            let elapsed = started.elapsed();
            let requests = idp.stats().token_requests - before.token_requests;
            match (exchange_want(case), &held) {
                (Want::Tokens { requests: expected }, _) => {
                    let access = result.unwrap_or_else(|e| panic!("{label}: expected a domain token, got {e}"));
                    assert_eq!(requests, expected, "{label}: token requests");
                    if let Some(held) = &held {
                        assert_ne!(access.access_token, held.access_token, "{label}: derived again");
                    }
                    let body = introspection(&idp, access.access_token.expose_secret()).await;
                    assert_eq!(introspected_audience(&body), Some("https://domains.example/alpha"), "{label}: {body}");
                    assert_eq!(
                        access.expires_at.map(|at| at.duration_since(clock.now())),
                        Some(ACCESS_TTL),
                        "{label}: expiry on the client's clock"
                    );
                    if case == Case::TooManyRequests {
                        assert!(elapsed >= Duration::from_secs(1), "{label}: Retry-After honoured ({elapsed:?})");
                    }
                }
                (Want::Fails { requests: expected, what, is }, None) => {
                    let error = result.err().unwrap_or_else(|| panic!("{label}: expected {what}, got a token"));
                    assert!(is(&error), "{label}: expected {what}, got {error:?}");
                    assert_eq!(requests, expected, "{label}: token requests (no retry)");
                    // The failure is shared until the next attempt: nothing is sent meanwhile.
                    let shared = domains.get_domain_access("alpha").await.expect_err("postponed or dead");
                    assert_eq!(shared, error, "{label}: the same error");
                    assert_eq!(idp.stats().token_requests - before.token_requests, expected, "{label}: nothing sent");
                    let dead = error.requires_reauthentication()
                        || matches!(
                            error.oauth_code(),
                            Some(OAuthErrorCode::InvalidGrant | OAuthErrorCode::InvalidClient)
                        );
                    if dead {
                        // A final failure: the stage waits for new credentials.
                        domains.set_network_session(domains.network_session().unwrap()).await.unwrap();
                    } else {
                        clock.advance(Duration::from_secs(1)); // past the first backoff (0.5–1 s)
                    }
                    // Nothing was cached: the next call derives again (the fault is spent).
                    let again = domains.get_domain_access("alpha").await;
                    again.unwrap_or_else(|e| panic!("{label}: the next call derives again: {e}"));
                    let total = idp.stats().token_requests - before.token_requests;
                    assert_eq!(total, expected + 1, "{label}: one new exchange");
                }
                (Want::Fails { requests: expected, .. }, Some(held)) => {
                    // The held token is still valid: served, and the next attempt postponed.
                    let access = result.unwrap_or_else(|e| panic!("{label}: a still-valid token must be served: {e}"));
                    assert_eq!(access.access_token, held.access_token, "{label}: the valid token is served");
                    assert_eq!(requests, expected, "{label}: token requests (no retry)");
                    let again = domains.get_domain_access("alpha").await.unwrap();
                    assert_eq!(again.access_token, held.access_token, "{label}");
                    assert_eq!(idp.stats().token_requests - before.token_requests, expected, "{label}: postponed");
                }
            }
            if case == Case::Timeout {
                tokio::time::sleep(REQUEST_TIMEOUT * 3).await; // let the late answer finish before shutdown
            }
            idp.shutdown().await;
        }
    }
}

/// While one caller re-derives a domain token through retries (two 503s: about 0.6 s of
/// backoff), the others are served the still-valid token at once instead of queueing behind it.
#[tokio::test]
async fn callers_get_the_valid_token_while_another_rederives_through_retries() {
    let idp = idp(ACCESS_TTL).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let domains = exchange_client(&idp, clock.clone()).await;
    let held = domains.get_domain_access("alpha").await.unwrap();
    clock.advance(INTO_REFRESH_WINDOW);
    idp.faults().push(FaultEndpoint::Token, Fault::status(503, "busy"), 2);
    let before = idp.stats().token_requests;
    let rederiving = tokio::spawn({
        let domains = domains.clone();
        async move { domains.get_domain_access("alpha").await }
    });
    // Let the first caller take the stage's gate and meet the first 503.
    let started = Instant::now();
    while idp.stats().token_requests == before {
        assert!(started.elapsed() < Duration::from_secs(5), "the re-derivation started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let waited = Instant::now();
    let served = domains.get_domain_access("alpha").await.unwrap();
    assert!(waited.elapsed() < Duration::from_millis(150), "served at once: {:?}", waited.elapsed());
    assert_eq!(served.access_token, held.access_token, "the still-valid token");
    assert!(!rederiving.is_finished(), "the re-derivation is still backing off");
    let renewed = rederiving.await.unwrap().unwrap();
    assert_ne!(renewed.access_token, held.access_token, "the third attempt succeeded");
    assert_eq!(domains.get_domain_access("alpha").await.unwrap().access_token, renewed.access_token);
    idp.shutdown().await;
}
