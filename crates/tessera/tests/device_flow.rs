//! The device authorization grant (RFC 8628) through `Session`, against a third-party server:
//! panva's `oidc-provider` (interop/oidc-provider). A `Prompter` receives the device code, and the
//! test approves (or denies) it over HTTP the way a person would in a browser: the verification
//! page, its xsrf-protected form, the login and consent pages (`OidcProvider::approve_device`),
//! while tessera polls the token endpoint.
//!
//! Needs `node` and `npm ci` in `interop/oidc-provider` (see its README). The server adds
//! `interval: 1` to its device authorization responses in all but the last test, so a login takes
//! about a second; the last one checks the 5 s default when the server sends no interval.

mod support;

use support::{device_config, device_provider as provider};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::oidc_provider::*;
use tessera::policy::RaisePolicy;
use tessera::prompt::{FnPrompter, Prompter};
use tessera::{Error, OAuthErrorCode, Prompt, Secret, Session};

/// Upper bound on any login here (the poll interval is 1 s; codes live 10 minutes).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What a person does with a device code: a spawned task opens the verification page and
/// approves the code as `alice` (or presses "Abort"), while the prompter returns at once.
type Approvals = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

fn approving_prompter(
    op: &Arc<OidcProvider>,
    approve: bool,
) -> (Arc<dyn Prompter>, Arc<Mutex<Vec<Prompt>>>, Approvals) {
    let shown = Arc::new(Mutex::new(Vec::new()));
    let approvals: Approvals = Arc::default();
    let (op, recorded, tasks) = (Arc::clone(op), Arc::clone(&shown), Arc::clone(&approvals));
    let prompter = FnPrompter(move |key: &str, prompt: &Prompt| {
        assert_eq!(key, "device");
        recorded.lock().unwrap().push(prompt.clone());
        let Prompt::DeviceCode { user_code, .. } = prompt else { panic!("unexpected prompt {prompt:?}") };
        let (op, user_code) = (Arc::clone(&op), user_code.clone());
        tasks.lock().unwrap().push(tokio::spawn(async move {
            if approve {
                op.approve_device(&user_code, ALICE).await;
            } else {
                op.deny_device(&user_code).await;
            }
        }));
        Ok(())
    });
    (Arc::new(prompter), shown, approvals)
}

/// Waits for the browser tasks, so that a failure inside one shows up as its panic.
async fn join(approvals: &Approvals) {
    let tasks: Vec<_> = std::mem::take(&mut *approvals.lock().unwrap());
    for task in tasks {
        tokio::time::timeout(LOGIN_TIMEOUT, task).await.expect("the browser finishes").expect("the browser succeeds");
    }
}

async fn introspect(op: &OidcProvider, token: &Secret) -> serde_json::Value {
    op.introspect(token.expose_secret()).await
}

#[tokio::test]
async fn device_login_approved_in_the_browser_then_refreshes_silently() {
    let op = provider(60);
    let (prompter, shown, approvals) = approving_prompter(&op, true);
    let session = Session::builder("device", device_config(&op)).prompter(prompter).build();

    let before = tessera::clock::system_now();
    let login = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("the login ends");
    join(&approvals).await;
    let header = login.expect("approved in the browser");

    // What the person was shown: oidc-provider's code and pages, with the code filled in for a QR code.
    let prompts = shown.lock().unwrap().clone();
    let [Prompt::DeviceCode { user_code, verification_uri, verification_uri_complete, expires_at }] = &prompts[..]
    else {
        panic!("one device code prompt expected: {prompts:?}")
    };
    assert_eq!(user_code.len(), 9, "base-20 ****-**** code: {user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(verification_uri, &op.verification_uri());
    assert_eq!(
        verification_uri_complete.as_deref(),
        Some(format!("{}?user_code={user_code}", op.verification_uri()).as_str())
    );
    let lifetime = expires_at.duration_since(before);
    assert!(
        lifetime > Duration::from_secs(590) && lifetime <= Duration::from_secs(601),
        "codes live 600 s: {lifetime:?}"
    );

    // Real tokens for alice and the device client, with a refresh token (offline_access).
    let tokens = header.tokens().clone();
    let refresh_token = tokens.refresh_token.clone().expect("offline_access was granted: a refresh token");
    assert!(tokens.id_token.is_some(), "openid was granted");
    let body = introspect(&op, &tokens.access_token).await;
    assert_eq!(
        (&body["active"], &body["sub"], &body["client_id"]),
        (&true.into(), &ALICE.into(), &DEVICE_CLIENT_ID.into()),
        "{body}"
    );
    assert_eq!(
        session.store().load("device").await.unwrap().map(|t| t.access_token),
        Some(tokens.access_token.clone())
    );

    let stats = op.stats().await;
    assert_eq!(stats.device_authorizations, 1);
    assert!(stats.grant_type(DEVICE_CODE_GRANT) >= 1, "polled: {stats:?}");
    assert_eq!(stats.grant_type("refresh_token"), 0);

    // Later refreshes use the refresh token: silent, no new device code, no prompt.
    let refreshed = session.force_refresh().await.expect("silent refresh");
    assert_ne!(refreshed.access_token(), &tokens.access_token);
    assert_ne!(refreshed.tokens().refresh_token.as_ref(), Some(&refresh_token), "oidc-provider rotates refresh tokens");
    assert_eq!(introspect(&op, refreshed.access_token()).await["active"], true);
    assert_eq!(session.authorization_header().await.unwrap().access_token(), refreshed.access_token(), "cached");
    let stats = op.stats().await;
    assert_eq!((stats.device_authorizations, stats.grant_type("refresh_token")), (1, 1), "{stats:?}");
    assert_eq!(shown.lock().unwrap().len(), 1, "the refresh prompted nobody");
}

#[tokio::test]
async fn device_login_denied_in_the_browser_is_access_denied() {
    let op = provider(60);
    let (prompter, shown, approvals) = approving_prompter(&op, false);
    let session = Session::builder("device", device_config(&op)).prompter(prompter).build();

    let login = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("the login ends");
    join(&approvals).await;
    let error = login.expect_err("the person pressed Abort");
    assert!(matches!(error, Error::OAuth { code: OAuthErrorCode::AccessDenied, .. }), "{error:?}");
    assert!(!error.is_transient(), "final: {error:?}");
    assert_eq!(shown.lock().unwrap().len(), 1);
    assert!(session.store().load("device").await.unwrap().is_none(), "nothing stored");
    assert!(session.cached_header().is_none());
    assert_eq!(op.stats().await.device_authorizations, 1);
}

#[tokio::test]
async fn without_a_prompter_a_device_login_fails_before_asking_for_a_code() {
    let op = provider(60);
    let session = Session::builder("device", device_config(&op)).build();

    // An explicit login needs a person and there is no way to reach one.
    let error =
        tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("no wait").expect_err("nobody to prompt");
    assert!(error.requires_reauthentication(), "{error:?}");
    assert!(error.to_string().contains("prompter"), "says why: {error}");
    // A silent token request does not start one either (and the default policy, without a
    // prompter, raises).
    let error = session.authorization_header().await.expect_err("no tokens, and no silent way to get one");
    assert!(error.requires_reauthentication(), "{error:?}");

    let stats = op.stats().await;
    assert_eq!(stats.device_authorizations, 0, "no device code requested that nobody would enter");
    assert_eq!(stats.token_requests, 0);

    // With a prompter, whether a silent request may prompt is the refresh policy's call
    // (tests/policy.rs); under `RaisePolicy` it never does.
    let (prompter, shown, _approvals) = approving_prompter(&op, true);
    let interactive =
        Session::builder("device", device_config(&op)).prompter(prompter).refresh_policy(Arc::new(RaisePolicy)).build();
    assert!(interactive.authorization_header().await.expect_err("silent").requires_reauthentication());
    assert!(shown.lock().unwrap().is_empty());
    assert_eq!(op.stats().await.device_authorizations, 0);
}

#[tokio::test]
async fn a_prompter_error_aborts_the_login() {
    let op = provider(60);
    let prompter = FnPrompter(|_: &str, _: &Prompt| Err(Error::configuration("no terminal to show the code on")));
    let session = Session::builder("device", device_config(&op)).prompter(Arc::new(prompter)).build();
    let error = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("no polling").expect_err("aborted");
    assert!(matches!(&error, Error::Configuration { message } if message.contains("no terminal")), "{error:?}");
    let stats = op.stats().await;
    assert_eq!((stats.device_authorizations, stats.grant_type(DEVICE_CODE_GRANT)), (1, 0), "never polled: {stats:?}");
}

#[tokio::test]
async fn without_an_interval_from_the_server_polling_waits_five_seconds() {
    // oidc-provider itself sends no `interval`: RFC 8628 §3.2 says 5 s then.
    let op = Arc::new(OidcProvider::start(OidcProviderOptions::default()));
    let (prompter, _, approvals) = approving_prompter(&op, true);
    let session = Session::builder("device", device_config(&op)).prompter(prompter).build();
    let started = std::time::Instant::now();
    let login = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("the login ends");
    join(&approvals).await;
    login.expect("approved");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(4_900), "the first poll waited 5 s: {elapsed:?}");
    // Approving takes a fraction of a second: the first poll already gets the tokens.
    assert_eq!(op.stats().await.grant_type(DEVICE_CODE_GRANT), 1, "one poll");
}
