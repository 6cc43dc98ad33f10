//! Browser logins (authorization code + PKCE, loopback redirect) through the public API, with a real
//! headless Chromium signing in (interop/browser/sign-in.mjs) at panva's oidc-provider
//! (interop/oidc-provider) and at the reference IdP.
//!
//! Needs `apt-get install -y chromium`, `npm ci` in interop/browser and in interop/oidc-provider;
//! a test fails saying so when one is missing.

#[path = "support/chromium.rs"]
mod chromium;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chromium::{ChromiumPrompter, sign_in};
use support::oidc_provider::{OidcProvider, OidcProviderOptions};
use tessera::browser::{LoopbackReceiver, LoopbackSettings};
use tessera::prompt::{FnPrompter, Prompter};
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Session, SessionSettings};

/// oidc-provider's native public client (see interop/oidc-provider/server.mjs).
const NATIVE_CLIENT_ID: &str = "native-client";

fn browser_grant(redirect_uri: Option<String>) -> Grant {
    // oidc-provider keeps `offline_access` (so issues a refresh token) only with prompt=consent.
    Grant::Browser {
        authorization_endpoint: None,
        redirect_uri,
        authorization_params: vec![("prompt".to_owned(), "consent".to_owned())],
    }
}

fn native_client(op: &OidcProvider, redirect_uri: Option<String>) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(NATIVE_CLIENT_ID),
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid offline_access api:read".into()),
        grant: browser_grant(redirect_uri),
    }
}

fn session(key: &str, config: ProviderConfig, prompter: Arc<dyn Prompter>, store: Arc<dyn TokenStore>) -> Session {
    Session::builder(key, config).prompter(prompter).store(store).build()
}

fn file_store() -> (tempfile::TempDir, Arc<FileStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    (dir, store)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// The claims of a JWT, unverified (tessera verified it; the test reads what it said).
fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The redirect the browser should have followed: `forged` with the `state` of the login's
/// authorization URL put back.
fn real_callback(forged: &str, authorization_url: &str) -> String {
    let state = query_param(authorization_url, "state").unwrap();
    let mut real = url::Url::parse(forged).unwrap();
    let pairs: Vec<(String, String)> = real
        .query_pairs()
        .map(|(name, value)| (name.to_string(), if name == "state" { state.clone() } else { value.to_string() }))
        .collect();
    real.query_pairs_mut().clear().extend_pairs(pairs);
    real.into()
}

/// True when something accepts connections on this loopback URL's port.
async fn listening(url: &str) -> bool {
    let port = url::Url::parse(url).unwrap().port().unwrap();
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

#[tokio::test]
async fn chromium_signs_in_at_oidc_provider_then_the_tokens_are_stored_and_refresh() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let (_dir, store) = file_store();
    let prompter = Arc::new(ChromiumPrompter::new("alice", "any-password", &[]));
    let session = session("web/alice", native_client(&op, None), prompter.clone(), store.clone());

    let header = session.login().await.unwrap();
    let runs = prompter.finished().await;
    let [run] = &runs[..] else { panic!("one sign-in: {runs:?}") };
    assert!(run.success, "Chromium reached the redirect:\n{}", run.stderr);
    assert_eq!(run.message.as_deref(), Some("Signed in to web/alice. You can close this tab."));

    // The request: loopback redirect on an ephemeral port, PKCE S256, state, nonce.
    let urls = prompter.urls();
    let authorization_url = &urls[0];
    let redirect_uri = query_param(authorization_url, "redirect_uri").unwrap();
    assert!(redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"), "{redirect_uri}");
    assert_eq!(query_param(authorization_url, "code_challenge_method").as_deref(), Some("S256"));
    let callback = run.callback.as_deref().unwrap();
    assert!(callback.starts_with(&redirect_uri), "{callback}");
    assert_eq!(query_param(callback, "state"), query_param(authorization_url, "state"));
    assert!(!listening(&redirect_uri).await, "the listener is closed after the callback");

    // Tokens landed in the file store; the ID token is the one for this login's nonce.
    let stored = store.load("web/alice").await.unwrap().expect("tokens stored");
    assert_eq!(stored.access_token, *header.access_token());
    assert!(stored.refresh_token.is_some(), "offline_access with prompt=consent gives a refresh token");
    let claims = jwt_claims(stored.id_token.as_ref().expect("an ID token").expose_secret());
    assert_eq!(claims["nonce"].as_str(), query_param(authorization_url, "nonce").as_deref());
    assert_eq!(claims["aud"], NATIVE_CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], op.issuer());
    assert_eq!(op.stats().await.grant_type("authorization_code"), 1);

    // The standard refresh (rotating) works on these tokens.
    let refreshed = session.force_refresh().await.unwrap();
    assert_ne!(refreshed.access_token(), header.access_token());
    let stats = op.stats().await;
    assert_eq!((stats.grant_type("refresh_token"), stats.refresh_token_reuses), (1, 0));
    let stored = store.load("web/alice").await.unwrap().unwrap();
    assert_eq!(stored.access_token, *refreshed.access_token());
}

/// A page that sends the browser to the loopback address with a forged `state` gets a "not this
/// sign-in" page, no code is exchanged, and the login keeps waiting: the real redirect that follows
/// completes it (the forged request could neither end nor complete the login).
#[tokio::test]
async fn a_forged_redirect_is_refused_and_the_login_waits_for_the_real_one() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let (_dir, store) = file_store();
    let prompter = Arc::new(ChromiumPrompter::new("alice", "x", &["--tamper-state"]));
    let session = session("web/forged", native_client(&op, None), prompter.clone(), store.clone());
    let login = tokio::spawn({
        let session = session.clone();
        async move { session.login().await }
    });

    let run = prompter.first_sign_in().await;
    assert!(run.success, "{}", run.stderr);
    let forged = run.callback.clone().unwrap();
    assert!(query_param(&forged, "state").unwrap().ends_with("-forged"));
    assert!(run.message.as_deref().unwrap().contains("does not belong to the sign-in"), "{:?}", run.message);
    assert_eq!(op.stats().await.grant_type("authorization_code"), 0, "the forged redirect's code was not exchanged");
    assert!(!login.is_finished(), "the login still waits");

    // The real redirect (the login's own state) still completes the login.
    let page = support::http_client().get(real_callback(&forged, &prompter.urls()[0])).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = tokio::time::timeout(Duration::from_secs(30), login).await.expect("bounded").unwrap().unwrap();
    assert_eq!(store.load("web/forged").await.unwrap().as_ref(), Some(header.tokens()));
    assert_eq!(op.stats().await.grant_type("authorization_code"), 1);
}

#[tokio::test]
async fn denying_in_the_browser_is_access_denied() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let (_dir, store) = file_store();
    let prompter = Arc::new(ChromiumPrompter::new("alice", "x", &["--deny"]));
    let session = session("web/denied", native_client(&op, None), prompter.clone(), store.clone());

    let error = session.login().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::AccessDenied), "{error:?}");
    assert!(!error.is_transient());
    let runs = prompter.finished().await;
    let message = runs[0].message.as_deref().unwrap_or_default();
    assert!(message.contains("failed (access_denied: End-User aborted interaction)"), "{runs:?}");
    assert_eq!(op.stats().await.grant_type("authorization_code"), 0);
    assert!(store.load("web/denied").await.unwrap().is_none());
}

#[tokio::test]
async fn paste_mode_needs_no_listener() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    // A registered loopback redirect on a port where nothing listens: the person copies the URL
    // the browser ends on (an error page) and pastes it.
    let free_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redirect_uri = format!("http://127.0.0.1:{free_port}/callback");
    let (_dir, store) = file_store();
    let prompter = Arc::new(ChromiumPrompter::new("bob", "x", &[]));
    let session = session("web/paste", native_client(&op, Some(redirect_uri.clone())), prompter.clone(), store.clone());

    session.login().await.unwrap();
    assert_eq!(*prompter.asked.lock().unwrap(), 1, "answered by ask(), the paste");
    assert!(prompter.finished().await.is_empty(), "show() never ran: no listener");
    assert_eq!(query_param(&prompter.urls()[0], "redirect_uri").as_deref(), Some(redirect_uri.as_str()));
    let stored = store.load("web/paste").await.unwrap().expect("tokens stored");
    assert_eq!(jwt_claims(stored.id_token.unwrap().expose_secret())["sub"], "bob");
}

#[tokio::test]
async fn nobody_coming_back_times_out_and_closes_the_listener() {
    // No server is needed: the login never gets past the browser.
    let config = ProviderConfig {
        client: ClientAuth::public("cli"),
        endpoints: Endpoints::explicit("http://127.0.0.1:9/token"),
        scope: Some("api".into()),
        grant: Grant::Browser {
            authorization_endpoint: Some("http://127.0.0.1:9/authorize".into()),
            redirect_uri: None,
            authorization_params: Vec::new(),
        },
    };
    let shown = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = shown.clone();
    let prompter = Arc::new(FnPrompter(move |_: &str, prompt: &tessera::Prompt| {
        if let tessera::Prompt::Browser { redirect_uri, .. } = prompt {
            seen.lock().unwrap().push(redirect_uri.clone());
        }
        Ok(())
    }));
    let settings = SessionSettings {
        loopback: LoopbackSettings { timeout: Duration::from_millis(700), ..LoopbackSettings::default() },
        ..SessionSettings::default()
    };
    let session = Session::builder("web/away", config).prompter(prompter).settings(settings).build();
    let started = Instant::now();
    let error = session.login().await.unwrap_err();
    assert!(matches!(error, Error::ReauthenticationRequired { .. }), "{error:?}");
    assert!(error.to_string().contains("no browser came back"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let redirect_uri = shown.lock().unwrap()[0].clone();
    assert!(!listening(&redirect_uri).await, "the listener is closed after the timeout");
}

#[tokio::test]
async fn the_loopback_receiver_takes_one_callback_and_nothing_else() {
    let receiver = LoopbackReceiver::bind(&LoopbackSettings::default(), "<b>svc</b>").await.unwrap();
    let redirect_uri = receiver.redirect_uri().to_owned();
    let origin = redirect_uri.trim_end_matches("/callback").to_owned();
    let http = support::http_client();
    // Before the login's URL is known (discovery still running), nothing can be its answer.
    let early = http.get(format!("{redirect_uri}?code=c&state=S1")).send().await.unwrap();
    assert_eq!(early.status(), 400, "refused before the sign-in was opened");
    receiver.expect_authorization_url("https://idp.example/authorize?state=S1");

    let favicon = http.get(format!("{origin}/favicon.ico")).send().await.unwrap();
    assert_eq!(favicon.status(), 404);
    let post = http.post(&redirect_uri).send().await.unwrap();
    assert_eq!(post.status(), 405);
    let port = url::Url::parse(&redirect_uri).unwrap().port().unwrap();
    let rebound = http.get(format!("{redirect_uri}?code=c&state=S1")).header("host", format!("evil.example:{port}"));
    assert_eq!(rebound.send().await.unwrap().status(), 400, "another host name does not use up the callback");

    for stray in ["?code=c", "?code=c&state=S2", "?code=c&state=S1&state=S2"] {
        let page = http.get(format!("{redirect_uri}{stray}")).send().await.unwrap();
        assert_eq!(page.status(), 400, "{stray}: not this login's state");
        assert!(page.text().await.unwrap().contains("is still waiting"), "{stray}: the callback is not used up");
    }

    let callback =
        format!("{redirect_uri}?error=access_denied&error_description=%3Cscript%3Ex%3C%2Fscript%3E&state=S1");
    let page = http.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let body = page.text().await.unwrap();
    assert!(body.contains("&lt;script&gt;x&lt;/script&gt;") && !body.contains("<script>"), "escaped: {body}");
    assert!(body.contains("&lt;b&gt;svc&lt;/b&gt;"), "{body}");

    let second = http.get(format!("{redirect_uri}?code=c&state=S1")).send().await.unwrap();
    assert_eq!(second.status(), 409, "one callback only");
    assert_eq!(receiver.receive().await.unwrap().expose_secret(), callback);
    let closing = std::time::Instant::now();
    while listening(&redirect_uri).await {
        assert!(closing.elapsed() < Duration::from_secs(5), "the listener closes after its callback");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A fixed port that is taken is a configuration error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = LoopbackSettings { port: taken.local_addr().unwrap().port(), ..LoopbackSettings::default() };
    assert!(matches!(LoopbackReceiver::bind(&settings, "svc").await, Err(Error::Configuration { .. })));
}

/// A sign-in script run that goes nowhere near tessera: the script itself refuses to leave loopback.
#[tokio::test]
async fn the_sign_in_script_reports_failures() {
    let run =
        sign_in("http://127.0.0.1:9/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback", "a", "b", &[]).await;
    assert!(!run.success && run.callback.is_none(), "{run:?}");
}

// ---------------------------------------------------------------------------------------------
// The same, against the reference IdP (crates/tessera-idp, docs/reference-idp.md): EdDSA ID tokens,
// a login page with its own form, server-side counters.

mod reference_idp {
    use super::*;
    use tessera::Secret;
    use tessera_idp::demo;

    fn browser_client(issuer: &str, scope: &str) -> ProviderConfig {
        ProviderConfig {
            client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
            endpoints: Endpoints::discover(issuer),
            scope: Some(scope.into()),
            grant: Grant::Browser {
                authorization_endpoint: None,
                redirect_uri: None,
                authorization_params: Vec::new(),
            },
        }
    }

    #[tokio::test]
    async fn chromium_signs_in_then_the_api_accepts_the_token_and_it_refreshes() {
        let server = support::idp(Duration::from_secs(60)).await;
        let (_dir, store) = file_store();
        let prompter = Arc::new(ChromiumPrompter::new(demo::ALICE_USERNAME, demo::ALICE_PASSWORD, &[]));
        let session = session("idp/alice", browser_client(&server.issuer(), "openid"), prompter.clone(), store.clone());

        let header = session.login().await.unwrap();
        let runs = prompter.finished().await;
        assert!(runs[0].success, "{}", runs[0].stderr);
        assert_eq!(runs[0].message.as_deref(), Some("Signed in to idp/alice. You can close this tab."));
        assert_eq!(support::whoami(&server, header.expose_secret()).await, 200);

        let stored = store.load("idp/alice").await.unwrap().expect("tokens stored");
        let claims = jwt_claims(stored.id_token.as_ref().unwrap().expose_secret());
        assert_eq!(claims["nonce"].as_str(), query_param(&prompter.urls()[0], "nonce").as_deref());
        assert_eq!((claims["aud"].as_str(), claims["sub"].as_str()), (Some(demo::BROWSER_CLIENT_ID), Some("alice")));
        let stats = server.stats();
        assert_eq!(stats.authorization_code_grants, 1);
        assert!(stats.jwks_requests >= 1, "the keys were fetched to verify the EdDSA ID token");

        let refreshed = session.force_refresh().await.unwrap();
        assert_ne!(refreshed.access_token(), header.access_token());
        assert_eq!(server.stats().refresh_grants, 1);
        assert_eq!(support::whoami(&server, refreshed.expose_secret()).await, 200);
    }

    #[tokio::test]
    async fn a_confidential_client_with_its_own_callback_path_and_a_totp_user() {
        let server = support::idp(Duration::from_secs(60)).await;
        let config = ProviderConfig {
            client: ClientAuth::basic(demo::WEB_CLIENT_ID, Secret::new(demo::WEB_CLIENT_SECRET)),
            ..browser_client(&server.issuer(), "openid")
        };
        let prompter = Arc::new(
            ChromiumPrompter::new(demo::BOB_USERNAME, demo::BOB_PASSWORD, &[]).with_totp_secret(demo::BOB_TOTP_SECRET),
        );
        let settings = SessionSettings {
            loopback: LoopbackSettings { path: "/web-callback".into(), ..LoopbackSettings::default() },
            ..SessionSettings::default()
        };
        let session = Session::builder("idp/bob", config).prompter(prompter.clone()).settings(settings).build();

        let header = session.login().await.unwrap();
        let runs = prompter.finished().await;
        assert!(runs[0].success, "{}", runs[0].stderr);
        assert!(runs[0].callback.as_deref().unwrap().contains("/web-callback?"), "{runs:?}");
        assert_eq!(jwt_claims(header.tokens().id_token.as_ref().unwrap().expose_secret())["sub"], "bob");
        assert_eq!(server.stats().authorization_code_grants, 1);
    }

    /// A denial ends the login with `access_denied` and never reaches the token endpoint; a forged
    /// redirect is refused by the receiver, and the real one that follows completes the login.
    #[tokio::test]
    async fn a_forged_state_or_a_denial_never_reaches_the_token_endpoint() {
        let server = support::idp(Duration::from_secs(60)).await;
        let denier = Arc::new(ChromiumPrompter::new(demo::ALICE_USERNAME, demo::ALICE_PASSWORD, &["--deny"]));
        let denied =
            session("idp/denied", browser_client(&server.issuer(), "openid"), denier.clone(), support::memory());
        let error = denied.login().await.unwrap_err();
        assert!(denier.finished().await[0].success);
        assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::AccessDenied), "{error:?}");

        let forger = Arc::new(ChromiumPrompter::new(demo::ALICE_USERNAME, demo::ALICE_PASSWORD, &["--tamper-state"]));
        let forged =
            session("idp/forged", browser_client(&server.issuer(), "openid"), forger.clone(), support::memory());
        let login = tokio::spawn(async move { forged.login().await });
        let run = forger.first_sign_in().await;
        assert!(run.success, "{}", run.stderr);
        assert!(run.message.as_deref().unwrap().contains("does not belong to the sign-in"), "{:?}", run.message);
        assert_eq!(server.stats().token_requests, 0, "the forged redirect's code was not exchanged");
        let real = super::real_callback(run.callback.as_deref().unwrap(), &forger.urls()[0]);
        assert_eq!(support::http_client().get(real).send().await.unwrap().status(), 200);
        let header = tokio::time::timeout(Duration::from_secs(30), login).await.expect("bounded").unwrap().unwrap();
        assert_eq!(support::whoami(&server, header.expose_secret()).await, 200, "the real redirect completed it");

        let stats = server.stats();
        assert_eq!((stats.token_requests, stats.authorization_code_grants), (1, 1), "only the real redirect's code");
        assert!(stats.authorize_requests >= 2, "both logins reached the login page: {stats:?}");
    }
}
