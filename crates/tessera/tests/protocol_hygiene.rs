//! The protocol-hygiene list of issue #8 in one place, each item asserted against a real server
//! (the in-process reference IdP, or a raw loopback server that misbehaves on purpose) through the
//! public API. A browser here is a few lines of HTTP (`HttpBrowser`): it opens the authorization
//! URL, fills in the IdP's login form and follows the redirect to the loopback receiver, optionally
//! tampering with the request or the callback on the way, as an attacker in the browser could.
//!
//! | item | here | also covered by |
//! | --- | --- | --- |
//! | PKCE S256 only, 43–128 character verifier at the token endpoint | `pkce_s256_and_the_verifier_reach_the_servers` | `tessera-core` `protocol::authorization` unit tests (RFC 7636 appendix B); `browser_login.rs` (Chromium) |
//! | `state` required and checked: no token request otherwise, and a forged callback does not end the login | `a_callback_without_state_or_with_another_state_never_reaches_the_token_endpoint` | `browser_login.rs` `a_forged_state_*` (Chromium); core `rejects_tampered_state_before_anything_else`; fuzz target `authorization_callback` |
//! | `nonce` required and checked | `an_id_token_with_another_nonce_or_none_is_refused` | core `id_token` unit tests; fuzz target `id_token` |
//! | ID token `iss`/`aud`/`exp`/`iat` with a 60 s leeway | `id_token_claims_are_checked_with_a_60_second_leeway` (the core verifier, the IdP's fixed key) | core `rejects_each_broken_claim` |
//! | HTTPS for non-loopback endpoints unless `allow_insecure_http` | `plain_http_to_another_host_fails_before_sending` | `transport.rs` unit tests `https_is_required_*`, `insecure_http_is_refused_*` |
//! | the loopback callback binds 127.0.0.1 only | `the_loopback_receiver_listens_on_127_0_0_1_only` | `browser_login.rs` `the_loopback_receiver_takes_one_callback_and_nothing_else` |
//! | redirects never followed to another host | `a_token_endpoint_redirecting_to_another_port_gets_no_credentials_through` | `transport.rs` `redirects_stay_on_their_origin` |
//! | response size and time limits on every request | `every_request_has_a_size_and_a_time_limit` | `transport.rs` `response_size_and_time_are_limited`; `fault_matrix.rs` (oversize, timeout cells) |

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tessera::browser::{LoopbackReceiver, LoopbackSettings};
use tessera::core::Timestamp;
use tessera::core::protocol::{ID_TOKEN_LEEWAY, IdTokenExpectations, JsonWebKeySet, verify_id_token};
use tessera::transport::TransportSettings;
use tessera::{ClientAuth, Endpoints, Error, Grant, ProviderConfig, Session, SessionSettings, TransportErrorKind};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpServer, demo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for any single login in this file.
const LOGIN_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A browser that speaks HTTP to the reference IdP's login page.

use support::http_browser::{HttpBrowser, Tamper, no_redirects};

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

fn without_param(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = parsed.query_pairs().into_owned().filter(|(n, _)| n != name).collect();
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    parsed.into()
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url::Url::parse(&without_param(url, name)).unwrap().as_str()).unwrap();
    parsed.query_pairs_mut().append_pair(name, value);
    parsed.into()
}

/// The reference IdP's public browser client, by discovery (so ID tokens are verified).
fn browser_client(issuer: &str, scope: &str) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
        endpoints: Endpoints::discover(issuer),
        scope: Some(scope.into()),
        grant: Grant::Browser { authorization_endpoint: None, redirect_uri: None, authorization_params: Vec::new() },
    }
}

fn browser_session(key: &str, config: ProviderConfig, browser: Arc<HttpBrowser>, settings: SessionSettings) -> Session {
    Session::builder(key, config).prompter(browser).settings(settings).store(support::memory()).build()
}

fn quick_loopback() -> SessionSettings {
    SessionSettings {
        loopback: LoopbackSettings { timeout: Duration::from_secs(10), ..LoopbackSettings::default() },
        ..SessionSettings::default()
    }
}

// ---------------------------------------------------------------------------------------------
// A raw loopback HTTP server that records every request and answers as told.

#[derive(Clone, Debug)]
struct Recorded {
    head: String,
    body: Vec<u8>,
}

type Answer = Arc<dyn Fn(Recorded, u16) -> BoxFuture<'static, Vec<u8>> + Send + Sync>;

/// Serves at most `max_requests` connections (one request each) on 127.0.0.1; returns its port.
async fn recording_server(max_requests: usize, answer: Answer) -> (u16, Arc<Mutex<Vec<Recorded>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let record = log.clone();
    tokio::spawn(async move {
        for _ in 0..max_requests {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let Some(request) = read_request(&mut socket).await else { continue };
            record.lock().unwrap().push(request.clone());
            let response = answer(request, port).await;
            let _ = socket.write_all(&response).await;
            let _ = socket.shutdown().await;
        }
    });
    (port, log)
}

/// One HTTP/1.1 request (head and `content-length` body), read within 5 s.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let read = async {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    let n = socket.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                return Some(Recorded { head, body: buffer[end + 4..end + 4 + length].to_vec() });
            }
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 || buffer.len() > 1 << 20 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.ok().flatten()
}

fn raw_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

/// Forwards a recorded POST to `target` (same path) and returns its answer as raw HTTP.
fn forward_to(target: String) -> Answer {
    Arc::new(move |request: Recorded, _port| {
        let target = target.clone();
        Box::pin(async move {
            let path = request.head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let content_type = header_of(&request.head, "content-type").unwrap_or_default();
            let response = no_redirects()
                .post(format!("{target}{path}"))
                .header("content-type", content_type)
                .body(request.body)
                .send()
                .await
                .expect("the IdP answers the proxy");
            let status = response.status();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            let body = response.bytes().await.unwrap();
            raw_response(
                &format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
                &content_type,
                &body,
            )
        })
    })
}

fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

async fn idp() -> IdpServer {
    support::idp(Duration::from_secs(300)).await
}

// ---------------------------------------------------------------------------------------------
// PKCE

#[tokio::test]
async fn pkce_s256_and_the_verifier_reach_the_servers() {
    let server = idp().await;
    // The token endpoint is a recording proxy in front of the IdP's, so the form tessera sends is seen.
    let (proxy_port, recorded) = recording_server(4, forward_to(server.issuer())).await;
    let config = ProviderConfig {
        client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
        endpoints: Endpoints::explicit(format!("http://127.0.0.1:{proxy_port}/token")),
        scope: Some("api:read".into()),
        grant: Grant::Browser {
            authorization_endpoint: Some(server.url("/authorize")),
            redirect_uri: None,
            authorization_params: Vec::new(),
        },
    };
    let browser = HttpBrowser::honest();
    let session = browser_session("hygiene/pkce", config, browser.clone(), quick_loopback());
    let header = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("bounded").unwrap();
    assert!(!header.access_token().expose_secret().is_empty());

    let [(authorization_url, redirect_uri, _)] = &browser.seen()[..] else { panic!("one login: {:?}", browser.seen()) };
    assert_eq!(query_param(authorization_url, "code_challenge_method").as_deref(), Some("S256"));
    let challenge = query_param(authorization_url, "code_challenge").unwrap();
    assert_eq!(challenge.len(), 43, "base64url of a SHA-256");
    assert!(query_param(authorization_url, "code_verifier").is_none(), "the verifier never goes to the browser");
    assert!(redirect_uri.starts_with("http://127.0.0.1:"), "{redirect_uri}");

    let recorded = recorded.lock().unwrap().clone();
    let [token_request] = &recorded[..] else { panic!("one token request: {recorded:?}") };
    assert_eq!(form_value(&token_request.body, "grant_type").as_deref(), Some("authorization_code"));
    let verifier = form_value(&token_request.body, "code_verifier").expect("a code_verifier");
    assert!((43..=128).contains(&verifier.len()), "RFC 7636 §4.1 length: {}", verifier.len());
    assert!(verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)), "RFC 7636 alphabet");
    assert_eq!(tessera::core::protocol::pkce_s256_challenge(&verifier), challenge, "S256 of the verifier");
    assert_eq!(form_value(&token_request.body, "redirect_uri").as_deref(), Some(redirect_uri.as_str()));
    assert_eq!(server.stats().authorization_code_grants, 1, "the IdP checked the verifier and issued tokens");
}

// ---------------------------------------------------------------------------------------------
// state and nonce

/// `state` is required and checked twice. The loopback receiver refuses a callback without this
/// login's `state` (absent, another, or two of them) with a "not this sign-in" page and keeps
/// waiting, so a forged request neither ends nor completes a login: the real callback that follows
/// does, with exactly one code exchange. In paste mode (no receiver) the core refuses the same
/// answers itself, before any token request.
#[tokio::test]
async fn a_callback_without_state_or_with_another_state_never_reaches_the_token_endpoint() {
    let server = idp().await;
    let cases: [(&str, Tamper); 3] = [
        ("no state", |url| without_param(&url, "state")),
        ("another state", |url| with_param(&url, "state", "forged-state-value")),
        ("two states", |url| format!("{url}&state=second")),
    ];
    for (label, tamper) in cases {
        let browser = HttpBrowser::forging_first(tamper);
        let config = browser_client(&server.issuer(), "openid");
        let session = browser_session("hygiene/state", config, browser.clone(), quick_loopback());
        let before = server.stats();
        let header = tokio::time::timeout(LOGIN_LIMIT, session.login())
            .await
            .expect("bounded")
            .unwrap_or_else(|e| panic!("{label}: the real callback completes the login: {e}"));
        assert!(header.tokens().id_token.is_some(), "{label}");
        let forged = browser.forged_answers();
        assert_eq!(forged.len(), 1, "{label}");
        assert_eq!(forged[0].0, 400, "{label}: the receiver refused the forged callback");
        assert!(forged[0].1.contains("does not belong to the sign-in"), "{label}: {}", forged[0].1);
        let exchanged = server.stats().authorization_code_grants - before.authorization_code_grants;
        assert_eq!(exchanged, 1, "{label}: only the real callback's code was exchanged");

        // Paste mode: the core refuses the same answer before any token request.
        let browser = HttpBrowser::new(|url| url, tamper);
        let config = ProviderConfig {
            grant: Grant::Browser {
                authorization_endpoint: None,
                redirect_uri: Some("http://127.0.0.1:9/callback".into()),
                authorization_params: Vec::new(),
            },
            ..browser_client(&server.issuer(), "openid")
        };
        let session = browser_session("hygiene/paste", config, browser.clone(), quick_loopback());
        let before = server.stats();
        let error = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("bounded").unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }), "{label}: {error:?}");
        assert!(error.to_string().contains("state"), "{label}: {error}");
        let (_, _, pasted) = browser.seen().pop().unwrap();
        let code = query_param(&pasted, "code").expect("the IdP issued a code");
        assert!(!error.to_string().contains(&code), "{label}: the code is not in the error");
        let stats = server.stats();
        assert_eq!(stats.token_requests - before.token_requests, 0, "{label}: no code was exchanged");
        assert_eq!(stats.authorize_requests - before.authorize_requests, 2, "{label}: signed in (GET + POST)");
    }
}

#[tokio::test]
async fn an_id_token_with_another_nonce_or_none_is_refused() {
    let server = idp().await;
    let cases: [(&str, Tamper, &str); 2] = [
        ("another nonce", |url| with_param(&url, "nonce", "someone-elses-nonce"), "`nonce` does not match"),
        ("no nonce", |url| without_param(&url, "nonce"), "no `nonce`"),
    ];
    for (label, tamper, reason) in cases {
        // The browser changes the request the IdP sees; the IdP signs an ID token for that nonce.
        let browser = HttpBrowser::new(tamper, |url| url);
        let session =
            browser_session("hygiene/nonce", browser_client(&server.issuer(), "openid"), browser, quick_loopback());
        let error = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("bounded").unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }), "{label}: {error:?}");
        assert!(error.to_string().contains(reason), "{label}: {error}");
        assert!(session.cached_header().is_none(), "{label}: no tokens kept");
    }
    assert_eq!(server.stats().authorization_code_grants, 2, "the codes were exchanged, the ID tokens refused");

    // The honest login against the same server passes: the refusals were about the nonce.
    let session = browser_session(
        "hygiene/nonce-ok",
        browser_client(&server.issuer(), "openid"),
        HttpBrowser::honest(),
        quick_loopback(),
    );
    tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("bounded").unwrap();
}

// ---------------------------------------------------------------------------------------------
// ID token claims, with the core verifier and the IdP's (fixed, for its lifetime) key

#[tokio::test]
async fn id_token_claims_are_checked_with_a_60_second_leeway() {
    let server = idp().await;
    let browser = HttpBrowser::honest();
    let session =
        browser_session("hygiene/claims", browser_client(&server.issuer(), "openid"), browser, quick_loopback());
    let header = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("bounded").unwrap();
    let id_token = header.tokens().id_token.clone().expect("an ID token").expose_secret().to_owned();
    let jwks = support::http_client().get(server.url("/jwks")).send().await.unwrap().bytes().await.unwrap();
    let keys = JsonWebKeySet::from_json(&jwks).unwrap();
    let claims: serde_json::Value = {
        use base64::Engine as _;
        let payload = id_token.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let (exp, iat) = (claims["exp"].as_i64().unwrap(), claims["iat"].as_i64().unwrap());
    let nonce = claims["nonce"].as_str().unwrap().to_owned();
    let issuer = server.issuer();
    assert_eq!(ID_TOKEN_LEEWAY, Duration::from_secs(60));
    let verify = |issuer: &str, client_id: &str, now: i64| {
        let expected = IdTokenExpectations {
            issuer,
            client_id,
            nonce: Some(&nonce),
            now: Timestamp::from_unix_secs(now),
            leeway: ID_TOKEN_LEEWAY,
        };
        verify_id_token(&id_token, &keys, &expected, "https://idp.example/token")
    };
    let client = demo::BROWSER_CLIENT_ID;
    assert!(verify(&issuer, client, iat).is_ok());
    assert!(verify(&issuer, client, exp + 59).is_ok(), "59 s expired: within the leeway");
    let expired = verify(&issuer, client, exp + 61).unwrap_err();
    assert!(expired.to_string().contains("expired 61s ago"), "{expired}");
    assert!(verify(&issuer, client, iat - 59).is_ok(), "issued 59 s ahead: within the leeway");
    let early = verify(&issuer, client, iat - 61).unwrap_err();
    assert!(early.to_string().contains("issued 61s in the future"), "{early}");
    let other_issuer = verify("https://evil.example", client, iat).unwrap_err();
    assert!(other_issuer.to_string().contains("`iss`"), "{other_issuer}");
    let other_audience = verify(&issuer, "another-client", iat).unwrap_err();
    assert!(other_audience.to_string().contains("`aud`"), "{other_audience}");
    for error in [expired, early, other_issuer, other_audience] {
        assert!(matches!(error, Error::MalformedResponse { .. }), "{error:?}");
        assert!(!error.to_string().contains(&id_token), "the token is never in an error");
    }
}

// ---------------------------------------------------------------------------------------------
// Transport

#[tokio::test]
async fn plain_http_to_another_host_fails_before_sending() {
    for endpoints in
        [Endpoints::explicit("http://example.invalid/token"), Endpoints::discover("http://example.invalid")]
    {
        let config = ProviderConfig { endpoints, ..support::machine("http://example.invalid") };
        let session = Session::builder("hygiene/http", config).build();
        let started = Instant::now();
        let error = session.authorization_header().await.unwrap_err();
        assert!(matches!(error, Error::Transport { kind: TransportErrorKind::InvalidUrl, .. }), "{error:?}");
        assert!(error.to_string().contains("allow_insecure_http"), "{error}");
        assert!(!error.to_string().contains(demo::CONFIDENTIAL_CLIENT_SECRET), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2), "no connection was attempted: {:?}", started.elapsed());
    }
    // Loopback is the exception (the reference IdP here is plain HTTP on 127.0.0.1).
    let server = idp().await;
    assert!(server.issuer().starts_with("http://127.0.0.1:"));
    support::session("hygiene/loopback", support::machine(&server.issuer())).authorization_header().await.unwrap();
}

#[tokio::test]
async fn the_loopback_receiver_listens_on_127_0_0_1_only() {
    let receiver = LoopbackReceiver::bind(&LoopbackSettings::default(), "svc").await.unwrap();
    let redirect_uri = url::Url::parse(receiver.redirect_uri()).unwrap();
    assert_eq!(redirect_uri.host_str(), Some("127.0.0.1"), "{redirect_uri}");
    let port = redirect_uri.port().unwrap();
    let connect = |address: std::net::SocketAddr| async move {
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(address))
            .await
            .is_ok_and(|c| c.is_ok())
    };
    for other in ["127.0.0.2", "127.1.2.3", "::1"] {
        let address = std::net::SocketAddr::new(other.parse().unwrap(), port);
        assert!(!connect(address).await, "the receiver must not answer on {address}");
    }
    assert!(connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await, "it does listen on 127.0.0.1");
}

#[tokio::test]
async fn a_token_endpoint_redirecting_to_another_port_gets_no_credentials_through() {
    let ok = |_: Recorded, _| -> BoxFuture<'static, Vec<u8>> {
        Box::pin(async { raw_response("200 OK", "application/json", br#"{"access_token":"t","token_type":"Bearer"}"#) })
    };
    let (elsewhere, elsewhere_log) = recording_server(8, Arc::new(ok)).await;
    let redirecting: Answer = Arc::new(move |_, _| {
        Box::pin(async move {
            let mut response = raw_response("307 Temporary Redirect", "text/plain", b"");
            let at = response.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            let location = format!("location: http://127.0.0.1:{elsewhere}/token\r\n");
            response.splice(at..at, location.into_bytes());
            response
        })
    });
    let (port, log) = recording_server(8, redirecting).await;
    let config = ProviderConfig {
        endpoints: Endpoints::explicit(format!("http://127.0.0.1:{port}/token")),
        ..support::machine("http://unused.invalid")
    };
    let error = Session::builder("hygiene/redirect", config).build().authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::Redirect, .. }), "{error:?}");
    assert!(!log.lock().unwrap().is_empty(), "the token endpoint was asked");
    assert!(
        elsewhere_log.lock().unwrap().is_empty(),
        "the other port saw nothing: {:?}",
        elsewhere_log.lock().unwrap()
    );
}

#[tokio::test]
async fn every_request_has_a_size_and_a_time_limit() {
    let limits = TransportSettings {
        max_response_bytes: 64 * 1024,
        // Generous for the healthy requests on a loaded machine; the slow fault is well past it.
        timeout: Duration::from_secs(2),
        ..TransportSettings::default()
    };
    let settings = SessionSettings { transport: limits, ..quick_loopback() };
    // Discovery and the token endpoint through a password login, the JWKS through a browser login.
    for endpoint in [FaultEndpoint::Discovery, FaultEndpoint::Token, FaultEndpoint::Jwks] {
        for (label, fault, kind) in [
            ("oversize", Fault::new(FaultKind::Oversize { bytes: 200 * 1024 }), TransportErrorKind::BodyTooLarge),
            ("slow", Fault::delay(Duration::from_secs(6)), TransportErrorKind::Timeout),
        ] {
            let server = idp().await;
            server.faults().push(endpoint, fault, 10);
            let config = if endpoint == FaultEndpoint::Jwks {
                browser_client(&server.issuer(), "openid")
            } else {
                support::alice(&server.issuer())
            };
            let session = browser_session("hygiene/limits", config, HttpBrowser::honest(), settings.clone());
            let started = Instant::now();
            let result = tokio::time::timeout(LOGIN_LIMIT, session.login()).await.expect("bounded");
            let error = result.expect_err(&format!("{endpoint:?} {label}: must fail"));
            assert!(
                matches!(&error, Error::Transport { kind: k, .. } if *k == kind),
                "{endpoint:?} {label}: expected {kind:?}, got {error:?}"
            );
            // Retries included (discovery and logins retry a timeout, at most 3 attempts).
            assert!(started.elapsed() < Duration::from_secs(25), "{endpoint:?} {label}: {:?}", started.elapsed());
            assert!(server.stats().faults_injected >= 1, "{endpoint:?} {label}: the fault was hit");
        }
    }
}
