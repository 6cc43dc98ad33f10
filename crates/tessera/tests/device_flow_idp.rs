//! The device authorization grant (RFC 8628) through `Session` against the reference IdP, whose
//! test hooks produce what a person and a busy server do: approve or deny a user code, answer
//! `slow_down`, let every pending code expire. (tests/device_flow.rs runs the happy paths against
//! oidc-provider.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera::prompt::{FnPrompter, Prompter};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, Prompt, ProviderConfig, Session};
use tessera_idp::{IdpConfig, IdpServer, demo};

/// Upper bound on any login here (the poll interval is 1 s, plus 5 s after one `slow_down`).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

async fn idp() -> Arc<IdpServer> {
    let config = IdpConfig { device_poll_interval: Duration::from_secs(1), ..IdpConfig::demo() };
    Arc::new(IdpServer::start(config).await.expect("the reference IdP starts"))
}

fn device_config(idp: &IdpServer) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
        endpoints: Endpoints::discover(idp.issuer()),
        scope: Some("openid offline_access".into()),
        grant: Grant::DeviceCode { device_authorization_endpoint: None },
    }
}

/// What the person (and the server's operator) does when the code is shown.
#[derive(Clone, Copy)]
enum Reaction {
    Approve,
    Deny,
    ExpireEverything,
}

/// A prompter that records the prompts and reacts through the IdP's hooks, as a person would in
/// the browser a moment later.
fn reacting_prompter(idp: &Arc<IdpServer>, reaction: Reaction) -> (Arc<dyn Prompter>, Arc<Mutex<Vec<Prompt>>>) {
    let shown = Arc::new(Mutex::new(Vec::new()));
    let (idp, recorded) = (Arc::clone(idp), Arc::clone(&shown));
    let prompter = FnPrompter(move |_key: &str, prompt: &Prompt| {
        recorded.lock().unwrap().push(prompt.clone());
        let Prompt::DeviceCode { user_code, .. } = prompt else { panic!("unexpected prompt {prompt:?}") };
        match reaction {
            Reaction::Approve => idp.approve_device(user_code, demo::ALICE_USERNAME).expect("a pending code"),
            Reaction::Deny => idp.deny_device(user_code).expect("a pending code"),
            Reaction::ExpireEverything => assert_eq!(idp.expire_device_codes(), 1, "one code pending"),
        }
        Ok(())
    });
    (Arc::new(prompter), shown)
}

#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_interval_then_the_login_succeeds() {
    let idp = idp().await;
    idp.force_device_slow_down(1);
    let (prompter, shown) = reacting_prompter(&idp, Reaction::Approve);
    let session = Session::builder("device", device_config(&idp)).prompter(prompter).build();

    let started = Instant::now();
    let header = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("the login ends").expect("tokens");
    let elapsed = started.elapsed();

    assert_eq!(shown.lock().unwrap().len(), 1, "the code is shown once");
    let stats = idp.stats();
    // First poll at +1 s answered slow_down; the next waits 1 + 5 s (RFC 8628 §3.5) and succeeds.
    assert!(elapsed >= Duration::from_secs(6), "polled again before interval + 5 s: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "slow_down must add 5 s once, not more: {elapsed:?}");
    assert!(stats.token_requests >= 2, "{stats:?}");
    let whoami = reqwest::Client::new()
        .get(idp.url("/api/whoami"))
        .header("authorization", header.to_header_value())
        .send()
        .await
        .expect("whoami answers");
    assert_eq!(whoami.status(), 200, "the device-code token works at the API");
}

#[tokio::test]
async fn expired_device_code_ends_the_login_with_expired_token() {
    let idp = idp().await;
    let (prompter, shown) = reacting_prompter(&idp, Reaction::ExpireEverything);
    let session = Session::builder("device", device_config(&idp)).prompter(prompter).build();

    let error = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("the login ends").unwrap_err();
    assert_eq!(shown.lock().unwrap().len(), 1);
    assert!(
        matches!(&error, Error::OAuth { code: OAuthErrorCode::ExpiredToken, .. }),
        "expected expired_token, got {error:?}"
    );
    assert!(session.cached_header().is_none(), "no token after a failed login");
}

#[tokio::test]
async fn denied_device_code_ends_the_login_with_access_denied() {
    let idp = idp().await;
    let (prompter, _shown) = reacting_prompter(&idp, Reaction::Deny);
    let session = Session::builder("device", device_config(&idp)).prompter(prompter).build();

    let error = tokio::time::timeout(LOGIN_TIMEOUT, session.login()).await.expect("the login ends").unwrap_err();
    assert!(
        matches!(&error, Error::OAuth { code: OAuthErrorCode::AccessDenied, .. }),
        "expected access_denied, got {error:?}"
    );
    assert!(!error.is_transient());
}
