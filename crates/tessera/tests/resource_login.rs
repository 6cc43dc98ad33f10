//! Resource-first login through the public API (`Session::for_resource`), against the reference
//! IdP's two protected demo resources: from a resource URL alone, discovery, registration (stored
//! with the tokens, never twice), a browser login with `resource=` (RFC 8707), one login serving
//! both resources through refreshes, sessions for both refreshing at once (one refresh per
//! resource, the rotating refresh token never presented twice), and a client the server forgot.

#[path = "support/chromium.rs"]
mod chromium;
mod support;

use std::sync::Arc;
use std::time::Duration;

use chromium::ChromiumPrompter;
use support::http_browser::HttpBrowser;
use support::oidc_provider::{OidcProvider, OidcProviderOptions};
use tessera::browser::LoopbackSettings;
use tessera::middleware::AuthMiddleware;
use tessera::resource::ResourceLogin;
use tessera::store::{FileStore, TokenStore};
use tessera::{Error, OAuthErrorCode, Session};

fn login(store: Arc<dyn TokenStore>) -> ResourceLogin {
    // A browser that fails fails the test in seconds, not after the default 5 minutes.
    let loopback = LoopbackSettings { timeout: Duration::from_secs(20), ..LoopbackSettings::default() };
    ResourceLogin { store, scope: Some("api:read".into()), loopback, ..ResourceLogin::default() }
}

/// What the resource at `url` answers to `authorization`: status and body.
async fn call(url: &str, authorization: &str) -> (u16, serde_json::Value) {
    let answer = support::http_client().get(url).header("authorization", authorization).send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or_default())
}

fn query_values(url: &str, name: &str) -> Vec<String> {
    url::Url::parse(url).unwrap().query_pairs().filter(|(n, _)| n == name).map(|(_, v)| v.into_owned()).collect()
}

#[tokio::test]
async fn a_resource_url_alone_registers_logs_in_and_one_login_serves_both_resources() {
    let server = support::idp(Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));
    let (first, second) = (server.demo_resource(), server.demo_files_resource());

    let browser = HttpBrowser::honest();
    let session =
        Session::for_resource("demo", &first, login(store.clone())).await.unwrap().prompter(browser.clone()).build();
    let header = session.login().await.unwrap();
    let stats = server.stats();
    assert_eq!((stats.client_registrations, stats.authorization_code_grants), (1, 1));
    let seen = browser.seen();
    let [(authorization_url, _, _)] = &seen[..] else { panic!("one sign-in: {seen:?}") };
    assert_eq!(query_values(authorization_url, "resource"), [first.as_str()], "RFC 8707 on the authorization request");
    let registered = store.load("demo").await.unwrap().unwrap().registered_client.expect("the client is stored");
    assert_eq!(query_values(authorization_url, "client_id"), [registered.client_id.as_str()]);
    assert_eq!(registered.issuer, server.issuer());

    // The token is meant for the first resource: it accepts it, the second does not.
    let (status, body) = call(&first, header.expose_secret()).await;
    assert_eq!((status, body["aud"].as_str()), (200, Some(first.as_str())));
    assert_eq!(call(&second, header.expose_secret()).await.0, 401);

    // The second resource, in a new session (as another process would): no login, no registration,
    // one refresh with resource= that gets a token for it.
    let files = Session::for_resource("demo", &second, login(store.clone())).await.unwrap().build();
    let files_header = files.authorization_header().await.unwrap();
    let stats = server.stats();
    assert_eq!((stats.client_registrations, stats.authorization_code_grants, stats.refresh_grants), (1, 1, 1));
    let (status, body) = call(&second, files_header.expose_secret()).await;
    assert_eq!((status, body["aud"].as_str()), (200, Some(second.as_str())));
    assert_eq!(call(&first, files_header.expose_secret()).await.0, 401);

    // One login in the store: one refresh token (the rotated one), an access token per resource.
    let stored = store.load("demo").await.unwrap().unwrap();
    assert_eq!(stored.refresh_token, files_header.tokens().refresh_token, "the rotation is the login's");
    assert_eq!(stored.resource_tokens.keys().collect::<Vec<_>>(), [&second, &first]);
    assert_eq!(stored.resource_tokens[&first].access_token, *header.access_token());
    assert!(stored.resource_tokens.values().all(|entry| entry.refresh_token.is_none()));
    // The first session still serves its own token, and refreshes with the rotated refresh token.
    assert_eq!(session.authorization_header().await.unwrap().expose_secret(), header.expose_secret());
    let refreshed = session.force_refresh().await.unwrap();
    assert_eq!(call(&first, refreshed.expose_secret()).await.0, 200);
    assert_eq!(server.stats().refresh_token_reuse_detected, 0);

    // A new session for a resource the login served already names it at its next login.
    let again =
        Session::for_resource("demo", &first, login(store.clone())).await.unwrap().prompter(browser.clone()).build();
    again.login().await.unwrap();
    let seen = browser.seen();
    let mut named = query_values(&seen[1].0, "resource");
    named.sort();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(named, both, "a new login keeps serving every resource of the old one");
    assert_eq!(server.stats().client_registrations, 1, "never registered twice");
}

#[tokio::test]
async fn sessions_for_two_resources_on_expired_tokens_refresh_once_each_and_the_grant_lives() {
    let server = support::idp(Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (server.demo_resource(), server.demo_files_resource());
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));
    let session = Session::for_resource("demo", &first, login(store.clone()))
        .await
        .unwrap()
        .also_at_login([second.clone()])
        .prompter(HttpBrowser::honest())
        .build();
    session.login().await.unwrap();
    let files = Session::for_resource("demo", &second, login(store.clone())).await.unwrap().build();
    files.authorization_header().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The refreshed tokens live long enough for the 16 calls below on a busy machine.
    server.set_access_token_ttl(Duration::from_secs(60));

    // 16 sessions, 8 per resource, each with its own store handle (as 16 processes would have).
    let before = server.stats();
    let mut sessions = Vec::new();
    for i in 0..16 {
        let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));
        let resource = if i % 2 == 0 { &first } else { &second };
        sessions.push(Session::for_resource("demo", resource, login(store)).await.unwrap().build());
    }
    let headers = futures_util::future::join_all(sessions.iter().map(Session::authorization_header)).await;
    let after = server.stats();
    assert_eq!(after.refresh_grants - before.refresh_grants, 2, "one refresh per resource");
    assert_eq!(after.refresh_token_reuse_detected, 0);
    for (i, header) in headers.into_iter().enumerate() {
        let resource = if i % 2 == 0 { &first } else { &second };
        let header = header.unwrap();
        assert_eq!(call(resource, header.expose_secret()).await.0, 200, "session {i} holds a token for its resource");
    }
    // The grant is alive: both refresh again.
    assert_eq!(call(&first, session.force_refresh().await.unwrap().expose_secret()).await.0, 200);
    assert_eq!(call(&second, files.force_refresh().await.unwrap().expose_secret()).await.0, 200);
    assert_eq!(server.stats().client_registrations, 1);
}

#[tokio::test]
async fn a_client_the_server_forgot_is_dropped_with_its_login_and_registered_again() {
    let server = support::idp(Duration::from_secs(60)).await;
    let store: Arc<dyn TokenStore> = support::memory();
    let resource = server.demo_resource();
    let session = Session::for_resource("demo", &resource, login(store.clone()))
        .await
        .unwrap()
        .prompter(HttpBrowser::honest())
        .build();
    session.login().await.unwrap();
    let client_id = store.load("demo").await.unwrap().unwrap().registered_client.unwrap().client_id;

    assert!(server.forget_client(&client_id));
    let error = session.force_refresh().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidClient, .. }), "{error:?}");
    assert!(store.load("demo").await.unwrap().is_none(), "the login and the registration are gone");

    let session = Session::for_resource("demo", &resource, login(store.clone()))
        .await
        .unwrap()
        .prompter(HttpBrowser::honest())
        .build();
    let header = session.login().await.unwrap();
    assert_eq!(call(&resource, header.expose_secret()).await.0, 200);
    let stored = store.load("demo").await.unwrap().unwrap();
    assert_ne!(stored.registered_client.unwrap().client_id, client_id, "a new registration");
    assert_eq!(server.stats().client_registrations, 2);
}

/// The same against oidc-provider (registration and resource indicators on; the host script's
/// loopback resource server publishes RFC 9728 metadata for two resources), Chromium signing in.
/// oidc-provider lets a refresh ask only for a resource the login named (RFC 8707 §2.2 leaves it
/// to the server): the login names both.
#[tokio::test]
async fn chromium_logs_in_at_oidc_provider_from_a_resource_url_and_the_second_resource_needs_no_second_login() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let [first, second] = op.resources() else { panic!("two resources: {:?}", op.resources()) };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));
    let prompter = Arc::new(ChromiumPrompter::new("alice", "any-password", &[]));
    let session = Session::for_resource("mcp", first, ResourceLogin { scope: None, ..login(store.clone()) })
        .await
        .unwrap()
        .also_at_login([second.clone()])
        .prompter(prompter.clone())
        .build();
    let header = session.login().await.unwrap();
    let runs = prompter.finished().await;
    assert!(runs.iter().all(|run| run.success), "{runs:?}");
    let url = &prompter.urls()[0];
    assert_eq!(query_values(url, "resource"), [first.as_str(), second.as_str()]);
    let stored = store.load("mcp").await.unwrap().unwrap();
    let client = stored.registered_client.expect("registered at oidc-provider");
    assert_eq!(query_values(url, "client_id"), [client.client_id.as_str()]);
    assert!(stored.refresh_token.is_some(), "a refresh token for the login");

    let (status, body) = call(first, header.expose_secret()).await;
    assert_eq!((status, body["aud"].as_str()), (200, Some(first.as_str())), "the token's audience is the resource");
    assert_eq!(call(second, header.expose_secret()).await.0, 401);

    let files = Session::for_resource("mcp", second, login(store.clone())).await.unwrap().build();
    let files_header = files.authorization_header().await.unwrap();
    let (status, body) = call(second, files_header.expose_secret()).await;
    assert_eq!((status, body["aud"].as_str()), (200, Some(second.as_str())));
    let stats = op.stats().await;
    assert_eq!((stats.grant_type("authorization_code"), stats.grant_type("refresh_token")), (1, 1));
    // The rotated refresh token serves the first resource too: the grant is alive.
    assert_eq!(call(first, session.force_refresh().await.unwrap().expose_secret()).await.0, 200);
    assert_eq!(op.stats().await.refresh_token_reuses, 0);
}

/// RFC 6750 §3.1 step-up: the demo resource answers 403 `insufficient_scope` with
/// `scope="api:read"` to a token without it. Through the reqwest middleware, a session with a
/// person logs in again for the wider scope and the request is sent again; a session without
/// one gets the typed error and nothing is sent to the server.
#[tokio::test]
async fn a_missing_scope_steps_up_with_a_person_and_is_a_typed_error_without_one() {
    let server = support::idp(Duration::from_secs(60)).await;
    let store: Arc<dyn TokenStore> = support::memory();
    let resource = server.demo_resource();
    let narrow = || ResourceLogin { scope: Some("openid".into()), ..login(store.clone()) };
    let browser = HttpBrowser::honest();
    let session = Session::for_resource("demo", &resource, narrow()).await.unwrap().prompter(browser.clone()).build();
    session.login().await.unwrap();
    let nobody = Session::for_resource("demo", &resource, narrow()).await.unwrap().build();
    let logins = server.stats().authorization_code_grants;

    let without_person =
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(AuthMiddleware::new(nobody)).build();
    let error = without_person.get(&resource).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else { panic!("{error:?}") };
    let error = error.downcast_ref::<Error>().expect("a tessera error");
    assert!(
        matches!(error, Error::OAuth { code: OAuthErrorCode::InsufficientScope, status: 403, endpoint, .. } if *endpoint == resource),
        "{error:?}"
    );
    assert!(error.to_string().contains("api:read"), "{error}");
    assert_eq!(server.stats().authorization_code_grants, logins, "nothing was sent for a login nobody can finish");

    let with_person = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(session.clone()))
        .build();
    let answer = with_person.get(&resource).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(server.stats().authorization_code_grants, logins + 1, "one step-up login");
    let seen = browser.seen();
    let scope = query_values(&seen.last().unwrap().0, "scope");
    assert_eq!(scope, ["openid api:read"], "the wider scope");
    // The next request uses the stepped-up token: no more logins.
    assert_eq!(with_person.get(&resource).send().await.unwrap().status(), 200);
    assert_eq!(server.stats().authorization_code_grants, logins + 1);
}

/// A login is bound to its server: a resource of another server, under the same key and store,
/// is refused with a configuration error, and the login stays as it was.
#[tokio::test]
async fn a_resource_of_another_server_never_replaces_the_login() {
    let (server, other) = (support::idp(Duration::from_secs(60)).await, support::idp(Duration::from_secs(60)).await);
    let store: Arc<dyn TokenStore> = support::memory();
    let session = Session::for_resource("demo", &server.demo_resource(), login(store.clone()))
        .await
        .unwrap()
        .prompter(HttpBrowser::honest())
        .build();
    session.login().await.unwrap();
    let before = store.load("demo").await.unwrap().unwrap();

    let Err(error) = Session::for_resource("demo", &other.demo_resource(), login(store.clone())).await else {
        panic!("a resource of another server was accepted")
    };
    assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&server.issuer()) && text.contains(&other.issuer()), "{text}");
    assert_eq!(store.load("demo").await.unwrap().unwrap(), before, "the login is untouched");
    assert_eq!(other.stats().client_registrations, 0, "nothing registered at the other server");
    assert_eq!(call(&server.demo_resource(), session.force_refresh().await.unwrap().expose_secret()).await.0, 200);
}

/// The device code form: the registration asks for the device code grant, the device
/// authorization request names the resources, the token is the resource's.
#[tokio::test]
async fn a_resource_first_device_code_login_registers_for_the_device_grant() {
    let server = Arc::new(support::idp(Duration::from_secs(60)).await);
    let store: Arc<dyn TokenStore> = support::memory();
    let (first, second) = (server.demo_resource(), server.demo_files_resource());
    let idp = Arc::clone(&server);
    let prompter = tessera::prompt::FnPrompter(move |_key: &str, prompt: &tessera::Prompt| {
        let tessera::Prompt::DeviceCode { user_code, .. } = prompt else { panic!("unexpected prompt {prompt:?}") };
        idp.approve_device(user_code, tessera_idp::demo::ALICE_USERNAME).expect("a pending code");
        Ok(())
    });
    let device = ResourceLogin { device_code: true, also_for: vec![second.clone()], ..login(store.clone()) };
    let session = Session::for_resource("demo", &first, device).await.unwrap().prompter(Arc::new(prompter)).build();
    let header = session.login().await.unwrap();
    let (status, body) = call(&first, header.expose_secret()).await;
    assert_eq!((status, body["aud"].as_str()), (200, Some(first.as_str())), "the token is the resource's");
    let stats = server.stats();
    assert_eq!((stats.client_registrations, stats.device_code_grants), (1, 1));
    let files = Session::for_resource("demo", &second, login(store.clone())).await.unwrap().build();
    let (status, body) = call(&second, files.authorization_header().await.unwrap().expose_secret()).await;
    assert_eq!((status, body["aud"].as_str()), (200, Some(second.as_str())));
}

/// A session built before a logout and a new login (which registered a new client) must not
/// present the new login's refresh token with its old client: that would get `invalid_grant` and
/// drop the new login for every resource. It gets a typed error, and the new login lives.
#[tokio::test]
async fn a_session_of_a_client_registered_before_a_new_login_leaves_the_new_login_alone() {
    let server = support::idp(Duration::from_secs(60)).await;
    let store: Arc<dyn TokenStore> = support::memory();
    let (first, second) = (server.demo_resource(), server.demo_files_resource());
    let old = Session::for_resource("demo", &first, login(store.clone()))
        .await
        .unwrap()
        .prompter(HttpBrowser::honest())
        .build();
    old.login().await.unwrap();
    let stale = Session::for_resource("demo", &second, login(store.clone())).await.unwrap().build();
    old.logout().await.unwrap();
    let new = Session::for_resource("demo", &first, login(store.clone()))
        .await
        .unwrap()
        .prompter(HttpBrowser::honest())
        .build();
    new.login().await.unwrap();
    assert_eq!(server.stats().client_registrations, 2);
    let new_login = store.load("demo").await.unwrap().unwrap();

    let error = stale.authorization_header().await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error:?}");
    assert!(error.to_string().contains("another client"), "{error}");
    assert_eq!(store.load("demo").await.unwrap().unwrap().refresh_token, new_login.refresh_token, "kept");
    assert_eq!(call(&first, new.force_refresh().await.unwrap().expose_secret()).await.0, 200);
}

/// A step-up whose login the server refuses (`invalid_scope`) leaves the session's scope as it
/// was: later logins must not keep asking for a scope the server refused.
#[tokio::test]
async fn a_refused_step_up_does_not_widen_later_logins() {
    let server = support::idp(Duration::from_secs(60)).await;
    let mut config = support::machine(&server.issuer());
    config.scope = Some("api:read".into());
    let session = support::session("machine", config);
    session.authorization_header().await.unwrap();
    server.faults().push(
        tessera_idp::FaultEndpoint::Token,
        tessera_idp::Fault::new(tessera_idp::FaultKind::Status {
            status: 400,
            body: r#"{"error":"invalid_scope"}"#.into(),
            content_type: "application/json".into(),
        }),
        1,
    );
    let error = session.step_up("admin").await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidScope, .. }), "{error:?}");
    let later = session.login().await.unwrap();
    let claims = support::introspection(&server, later.access_token().expose_secret()).await;
    assert_eq!(claims["scope"], "api:read", "the refused scope is not asked for again: {claims}");
}

/// Paste mode (a fixed redirect URI, no loopback receiver): the fixed URI is the one registered,
/// and the person pastes the URL the browser ended on.
#[tokio::test]
async fn a_resource_first_login_in_paste_mode_registers_the_fixed_redirect_uri() {
    let server = support::idp(Duration::from_secs(60)).await;
    let store: Arc<dyn TokenStore> = support::memory();
    let resource = server.demo_resource();
    let fixed = "http://127.0.0.1:9/pasted".to_owned();
    let browser = HttpBrowser::honest();
    let paste = ResourceLogin { redirect_uri: Some(fixed.clone()), ..login(store.clone()) };
    let session = Session::for_resource("demo", &resource, paste).await.unwrap().prompter(browser.clone()).build();
    let header = session.login().await.unwrap();
    let seen = browser.seen();
    let [(authorization_url, redirect_uri, pasted)] = &seen[..] else { panic!("one paste: {seen:?}") };
    assert_eq!((redirect_uri, query_values(authorization_url, "redirect_uri")), (&fixed, vec![fixed.clone()]));
    assert!(pasted.starts_with(&fixed), "{pasted}");
    assert_eq!(call(&resource, header.expose_secret()).await.0, 200);
    assert_eq!(server.stats().client_registrations, 1);
}
