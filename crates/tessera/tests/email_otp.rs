//! Email one-time-code logins (generic JSON flavour) through a `Session` against the reference
//! IdP's `/otp/start` + `/otp/verify`: codes come from its outbox, wrong codes are asked again
//! (sync and async callbacks), exhaustion is a typed error, refresh is the standard OAuth grant.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{http_client, idp, whoami};
use tessera::core::CodeChannel;
use tessera::prompt::CodePrompter;
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, Prompt, ProviderConfig, Secret, Session};
use tessera_idp::{IdpConfig, IdpServer, demo};

fn config(server: &IdpServer, grant: Grant) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(demo::BROWSER_CLIENT_ID),
        endpoints: Endpoints::discover(server.issuer()),
        scope: Some("openid".into()),
        grant,
    }
}

/// The newest code mailed to `to`.
fn latest_code(server: &IdpServer, to: &str) -> String {
    server
        .outbox()
        .into_iter()
        .rev()
        .find(|message| message.to == to)
        .map(|message| message.code)
        .expect("a code was mailed")
}

/// A code that is certainly not `code`.
fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect()
}

fn file_store() -> (tempfile::TempDir, Arc<FileStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    (dir, store)
}

fn attempts(prompts: &[Prompt]) -> Vec<(u32, bool)> {
    prompts
        .iter()
        .map(|prompt| match prompt {
            Prompt::Code { attempt, previous_error, .. } => (*attempt, previous_error.is_some()),
            other => panic!("unexpected prompt {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn sync_callback_wrong_code_then_right_then_standard_refresh() {
    let server = Arc::new(idp(Duration::from_secs(60)).await);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let prompter = {
        let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
        // A blocking callback (it runs on tokio's blocking pool): reads the "mailbox" directly.
        CodePrompter::new(move |prompt: &Prompt| {
            asked.lock().unwrap().push(prompt.clone());
            let code = latest_code(&server, demo::ALICE_EMAIL);
            let Prompt::Code { attempt, .. } = prompt else { unreachable!("only codes are asked") };
            Ok::<_, Error>(if *attempt == 1 { wrong(&code) } else { code })
        })
    };
    let (_dir, store) = file_store();
    let session = Session::builder("otp", config(&server, Grant::email_otp(demo::ALICE_EMAIL)))
        .store(store.clone())
        .prompter(Arc::new(prompter))
        .build();

    let header = session.login().await.expect("wrong code, asked again, right code");
    assert_eq!(whoami(&server, header.expose_secret()).await, 200, "the IdP accepts the token");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        Prompt::Code {
            channel: CodeChannel::Email,
            destination: Some("a***@example.com".into()),
            attempt: 1,
            previous_error: None
        }
    );
    assert_eq!(attempts(&asked), [(1, false), (2, true)]);
    assert_eq!(server.outbox().iter().filter(|m| m.to == demo::ALICE_EMAIL).count(), 1, "one code per login");
    let first = store.load("otp").await.unwrap().expect("stored");
    assert_eq!(first.access_token, header.tokens().access_token);

    // Refresh: the standard refresh_token grant at /token (rotated by the reference IdP), no prompt.
    let refreshed = session.force_refresh().await.expect("refresh");
    assert_ne!(refreshed.tokens().access_token, first.access_token);
    assert!(refreshed.tokens().refresh_token.is_some());
    assert_ne!(refreshed.tokens().refresh_token, first.refresh_token, "rotated by /token");
    assert_eq!(whoami(&server, refreshed.expose_secret()).await, 200);
    assert_eq!(server.outbox().len(), 1, "no new code for a refresh");
}

#[tokio::test]
async fn async_callback_with_explicit_endpoints() {
    let config_with_outbox = IdpConfig { test_endpoints: true, ..IdpConfig::demo() };
    let server = Arc::new(IdpServer::start(config_with_outbox).await.expect("IdP starts"));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let prompter = {
        let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
        CodePrompter::from_async(move |prompt: Prompt| {
            let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
            async move {
                // An async source, e.g. a mailbox over HTTP: the IdP's test outbox endpoint.
                let outbox: serde_json::Value = http_client()
                    .get(server.url("/_test/outbox"))
                    .query(&[("to", demo::BOB_EMAIL)])
                    .send()
                    .await
                    .map_err(|e| Error::configuration(e.to_string()))?
                    .json()
                    .await
                    .map_err(|e| Error::configuration(e.to_string()))?;
                let code = outbox.as_array().and_then(|all| all.last()).and_then(|m| m["code"].as_str());
                let code = code.expect("a code in the outbox").to_owned();
                let first = matches!(prompt, Prompt::Code { attempt: 1, .. });
                asked.lock().unwrap().push(prompt);
                Ok::<_, Error>(if first { wrong(&code) } else { code })
            }
        })
    };
    let grant = Grant::EmailOtp {
        email: demo::BOB_EMAIL.into(),
        otp_start_endpoint: Some(server.url("/otp/start")),
        otp_verify_endpoint: Some(server.url("/otp/verify")),
        max_code_attempts: 3,
    };
    let config = ProviderConfig { endpoints: Endpoints::explicit(server.url("/token")), ..config(&server, grant) };
    let (_dir, store) = file_store();
    let session = Session::builder("otp-async", config).store(store).prompter(Arc::new(prompter)).build();
    let header = session.login().await.expect("async callback: wrong then right");
    assert_eq!(whoami(&server, header.expose_secret()).await, 200);
    assert_eq!(attempts(&asked.lock().unwrap()), [(1, false), (2, true)]);
}

#[tokio::test]
async fn wrong_codes_until_no_attempts_are_left_is_a_typed_error() {
    let server = Arc::new(idp(Duration::from_secs(60)).await);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let prompter = {
        let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
        CodePrompter::new(move |prompt: &Prompt| {
            asked.lock().unwrap().push(prompt.clone());
            Ok::<_, Error>(wrong(&latest_code(&server, demo::ALICE_EMAIL)))
        })
    };
    let (_dir, store) = file_store();
    let session = Session::builder("otp", config(&server, Grant::email_otp(demo::ALICE_EMAIL)))
        .store(store.clone())
        .prompter(Arc::new(prompter))
        .build();
    let error = session.login().await.expect_err("three wrong codes");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(attempts(&asked.lock().unwrap()), [(1, false), (2, true), (3, true)]);
    let code = latest_code(&server, demo::ALICE_EMAIL);
    assert!(!error.to_string().contains(&wrong(&code)), "codes never appear in errors: {error}");
    assert!(store.load("otp").await.unwrap().is_none());

    // Our own limit, lower than the server's, stops earlier.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let prompter = {
        let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
        CodePrompter::new(move |prompt: &Prompt| {
            asked.lock().unwrap().push(prompt.clone());
            Ok::<_, Error>(wrong(&latest_code(&server, demo::ALICE_EMAIL)))
        })
    };
    let grant = Grant::EmailOtp {
        email: demo::ALICE_EMAIL.into(),
        otp_start_endpoint: None,
        otp_verify_endpoint: None,
        max_code_attempts: 1,
    };
    let error = Session::builder("otp-1", config(&server, grant))
        .prompter(Arc::new(prompter))
        .build()
        .login()
        .await
        .expect_err("one wrong code");
    assert!(error.to_string().contains("no attempts left after 1 wrong code"), "{error}");
    assert_eq!(asked.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn never_prompts_silently_and_a_giving_up_callback_ends_the_login() {
    let server = idp(Duration::from_secs(60)).await;
    // Without an explicit login, an interactive grant does not start one.
    let session = Session::builder("otp", config(&server, Grant::email_otp(demo::ALICE_EMAIL))).build();
    let error = session.authorization_header().await.expect_err("needs a person");
    assert!(error.requires_reauthentication(), "{error:?}");
    assert!(server.outbox().is_empty(), "no code was requested");

    let prompter = CodePrompter::new(|_: &Prompt| -> Result<Secret, Error> {
        Err(Error::ReauthenticationRequired { reason: "the user closed the dialog".into() })
    });
    let session = Session::builder("otp", config(&server, Grant::email_otp(demo::ALICE_EMAIL)))
        .prompter(Arc::new(prompter))
        .build();
    let error = session.login().await.expect_err("gave up");
    assert!(error.to_string().contains("closed the dialog"), "{error}");
}

#[tokio::test]
async fn faults_on_the_otp_endpoints_are_typed_errors() {
    use tessera_idp::{Fault, FaultEndpoint, FaultKind};
    let server = Arc::new(idp(Duration::from_secs(60)).await);
    let prompter = {
        let server = Arc::clone(&server);
        CodePrompter::new(move |_: &Prompt| Ok::<_, Error>(latest_code(&server, demo::ALICE_EMAIL)))
    };
    let session = Session::builder("otp", config(&server, Grant::email_otp(demo::ALICE_EMAIL)))
        .prompter(Arc::new(prompter))
        .build();
    // Every request to /otp/* (start, resent on transient failures: 3 attempts) fails: no prompt,
    // a typed error.
    for (fault, check, attempts) in [
        (Fault::new(FaultKind::HtmlErrorPage { status: 502 }), "UnexpectedStatus", 3),
        (Fault::new(FaultKind::MalformedJson), "MalformedResponse", 1),
        (Fault::new(FaultKind::WrongContentType), "MalformedResponse", 1),
        (Fault::new(FaultKind::DropConnection), "Transport", 3),
    ] {
        server.faults().push(FaultEndpoint::Otp, fault.clone(), attempts);
        let before = server.stats().otp_requests;
        let error = session.login().await.expect_err("the fault fails the login");
        assert!(format!("{error:?}").starts_with(check), "{fault:?}: {error:?}");
        assert_eq!(server.stats().otp_requests - before, u64::from(attempts), "{fault:?}");
    }
    // The second request (verify, after the code was asked) answers garbage: typed, no tokens.
    server.faults().push(FaultEndpoint::Otp, Fault::new(FaultKind::None), 1);
    server.faults().push(FaultEndpoint::Otp, Fault::new(FaultKind::WrongContentType), 1);
    let error = session.login().await.expect_err("verify answered text/plain");
    assert!(matches!(error, Error::MalformedResponse { .. }), "{error:?}");
    let header = session.login().await.expect("without a fault the login works");
    assert_eq!(whoami(&server, header.expose_secret()).await, 200);
}
