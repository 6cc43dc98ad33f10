//! Cognito logins through a `Session` (FileStore, CodePrompter) against two servers:
//! - cognito-local (a third-party Cognito emulator, `interop/cognito-local`): USER_PASSWORD_AUTH,
//!   REFRESH_TOKEN_AUTH, SOFTWARE_TOKEN_MFA, SMS_MFA with a wrong code first, wrong password,
//!   RevokeToken, a client with a secret;
//! - the reference IdP's `/cognito` for what no emulator speaks (CUSTOM_AUTH, EMAIL_OTP) and for a
//!   server that verifies SECRET_HASH.

#[path = "support/cognito_local.rs"]
mod cognito_local;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cognito_local::{AppClient, CognitoLocal};
use tessera::core::flow::CognitoAuthFlow;
use tessera::prompt::{CodePrompter, Prompter};
use tessera::store::{FileStore, TokenStore};
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, Prompt, ProviderConfig, Secret, Session};
use tessera_core::CodeChannel;
use tessera_core::protocol::cognito::unverified_jwt_claim;

const PASSWORD: &str = "Correct-Horse-9";

fn config(endpoint: &str, client: &AppClient, grant: Grant) -> ProviderConfig {
    let client = match &client.secret {
        Some(secret) => ClientAuth::post(client.id.as_str(), Secret::new(secret.as_str())),
        None => ClientAuth::public(client.id.as_str()),
    };
    ProviderConfig { client, endpoints: Endpoints::explicit(endpoint), scope: None, grant }
}

fn password_grant(server: &CognitoLocal, username: &str, password: &str) -> Grant {
    Grant::cognito_password(server.endpoint(), username, Secret::new(password))
}

fn file_store() -> (tempfile::TempDir, Arc<FileStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(FileStore::new(dir.path().join("tokens")));
    (dir, store)
}

/// A prompter that must never be asked.
fn no_prompts() -> Arc<dyn Prompter> {
    Arc::new(CodePrompter::new(|prompt: &Prompt| -> Result<Secret, Error> { panic!("unexpected prompt {prompt:?}") }))
}

async fn pool_with_user(
    server: &CognitoLocal,
    mfa: &str,
    with_secret: bool,
    attributes: &[(&str, &str)],
) -> (String, AppClient) {
    let pool = server.create_user_pool(mfa).await;
    let client = server.create_app_client(&pool, with_secret).await;
    server.create_user(&pool, "alice", PASSWORD, attributes).await;
    (pool, client)
}

#[tokio::test]
async fn cognito_local_password_login_then_refresh_keeps_the_refresh_token() {
    let server = CognitoLocal::start();
    let (_pool, client) = pool_with_user(&server, "OFF", false, &[("email", "alice@example.com")]).await;
    let (_dir, store) = file_store();
    let session =
        Session::builder("cognito", config(server.endpoint(), &client, password_grant(&server, "alice", PASSWORD)))
            .store(store.clone())
            .prompter(no_prompts())
            .build();

    let first = session.tokens().await.expect("USER_PASSWORD_AUTH logs in");
    assert_eq!(unverified_jwt_claim(&first.access_token, "username").as_deref(), Some("alice"));
    assert!(first.refresh_token.is_some() && first.id_token.is_some());
    let expires_at = first.expires_at.expect("expiry from the JWT when ExpiresIn is missing");
    assert!(expires_at > first.issued_at + Duration::from_secs(3000), "cognito-local's default is 1 h");
    let stored = store.load("cognito").await.unwrap().expect("saved to the file store");
    assert_eq!(stored.access_token, first.access_token);

    let header = session.force_refresh().await.expect("REFRESH_TOKEN_AUTH");
    let refreshed = header.tokens();
    assert_ne!(refreshed.access_token, first.access_token, "a new access token");
    assert_eq!(refreshed.refresh_token, first.refresh_token, "Cognito does not rotate: the refresh token is kept");
    assert!(refreshed.id_token.is_some());
    let stored = store.load("cognito").await.unwrap().unwrap();
    assert_eq!(stored.access_token, refreshed.access_token);
    assert_eq!(stored.refresh_token, first.refresh_token);
}

#[tokio::test]
async fn cognito_local_software_token_mfa_from_the_totp_secret_or_the_callback() {
    let server = CognitoLocal::start();
    let (_pool, client) = pool_with_user(&server, "OPTIONAL", false, &[]).await;
    let totp_secret = server.enable_totp(&client, "alice", PASSWORD).await;

    // With the secret in the grant: no person involved.
    let grant = Grant::Cognito {
        endpoint_url: server.endpoint().into(),
        username: "alice".into(),
        password: Some(Secret::new(PASSWORD)),
        auth_flow: CognitoAuthFlow::UserPassword,
        totp_secret: Some(Secret::new(totp_secret.as_str())),
        max_code_attempts: 3,
    };
    let (_dir, store) = file_store();
    let session =
        Session::builder("totp", config(server.endpoint(), &client, grant)).store(store).prompter(no_prompts()).build();
    let tokens = session.tokens().await.expect("SOFTWARE_TOKEN_MFA answered from the secret");
    assert_eq!(unverified_jwt_claim(&tokens.access_token, "username").as_deref(), Some("alice"));

    // Without it: the callback is asked for an authenticator code, and its real code works.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let secret = Secret::new(totp_secret.as_str());
    let prompter = CodePrompter::new(move |prompt: &Prompt| {
        seen.lock().unwrap().push(prompt.clone());
        tessera::core::flow::totp_code(&secret, tessera::clock::system_now())
    });
    let (_dir, store) = file_store();
    let session =
        Session::builder("totp-asked", config(server.endpoint(), &client, password_grant(&server, "alice", PASSWORD)))
            .store(store)
            .prompter(Arc::new(prompter))
            .build();
    session.login().await.expect("SOFTWARE_TOKEN_MFA answered by the callback");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [Prompt::Code {
            channel: CodeChannel::Authenticator,
            destination: Some("phone".into()),
            attempt: 1,
            previous_error: None
        }]
    );
}

#[tokio::test]
async fn cognito_local_sms_mfa_wrong_code_then_right_with_an_async_callback() {
    let mut server = CognitoLocal::start();
    let (pool, client) = pool_with_user(&server, "OPTIONAL", false, &[("phone_number", "+15555550123")]).await;
    server.enable_sms_mfa(&pool, "alice").await;
    let server = Arc::new(server);

    let asked = Arc::new(Mutex::new(Vec::new()));
    let mark = server.output_mark();
    let prompter = {
        let asked = Arc::clone(&asked);
        let server = Arc::clone(&server);
        CodePrompter::from_async(move |prompt: Prompt| {
            let asked = Arc::clone(&asked);
            let server = Arc::clone(&server);
            async move {
                let attempt = match &prompt {
                    Prompt::Code { attempt, .. } => *attempt,
                    other => panic!("unexpected prompt {other:?}"),
                };
                asked.lock().unwrap().push(prompt);
                // The code cognito-local "texted" (printed); the first answer is deliberately wrong.
                let code = server.code_after(mark).await;
                if attempt == 1 {
                    let wrong: String =
                        code.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect();
                    Ok::<_, Error>(wrong)
                } else {
                    Ok(code)
                }
            }
        })
    };
    let (_dir, store) = file_store();
    let session =
        Session::builder("sms", config(server.endpoint(), &client, password_grant(&server, "alice", PASSWORD)))
            .store(store.clone())
            .prompter(Arc::new(prompter))
            .build();
    let header = session.login().await.expect("SMS_MFA: wrong code, asked again, right code");
    assert!(store.load("sms").await.unwrap().is_some_and(|t| t.access_token == header.tokens().access_token));

    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "asked twice: {asked:?}");
    assert_eq!(
        asked[0],
        Prompt::Code {
            channel: CodeChannel::Sms,
            destination: Some("+15555550123".into()),
            attempt: 1,
            previous_error: None
        }
    );
    let Prompt::Code { channel: CodeChannel::Sms, attempt: 2, previous_error: Some(reason), .. } = &asked[1] else {
        panic!("second prompt: {:?}", asked[1])
    };
    assert!(reason.contains("CodeMismatchException"), "{reason}");
}

#[tokio::test]
async fn cognito_local_wrong_password_is_a_typed_error_without_the_password() {
    let server = CognitoLocal::start();
    let (_pool, client) = pool_with_user(&server, "OFF", false, &[]).await;
    let (_dir, store) = file_store();
    let session = Session::builder(
        "wrong",
        config(server.endpoint(), &client, password_grant(&server, "alice", "Not-The-Passw0rd")),
    )
    .store(store.clone())
    .build();
    let error = session.login().await.expect_err("wrong password");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    assert!(!error.is_transient());
    let message = error.to_string();
    assert!(
        message.contains("InvalidPasswordException") && message.contains("wrong username or password"),
        "{message}"
    );
    assert!(!message.contains("Not-The-Passw0rd") && !format!("{error:?}").contains("Not-The-Passw0rd"));
    assert!(store.load("wrong").await.unwrap().is_none());

    let unknown =
        Session::builder("unknown", config(server.endpoint(), &client, password_grant(&server, "mallory", PASSWORD)))
            .build()
            .login()
            .await
            .expect_err("unknown user");
    assert_eq!(unknown.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{unknown:?}");
}

#[tokio::test]
async fn cognito_local_logout_revokes_so_the_refresh_token_dies() {
    let server = CognitoLocal::start();
    let (_pool, client) = pool_with_user(&server, "OFF", false, &[]).await;
    let (_dir, store) = file_store();
    let session =
        Session::builder("logout", config(server.endpoint(), &client, password_grant(&server, "alice", PASSWORD)))
            .store(store.clone())
            .build();
    let tokens = session.tokens().await.expect("logged in");
    let outcome = session.logout().await.expect("logout");
    assert!(outcome.revoked && outcome.revocation_error.is_none() && outcome.had_tokens, "{outcome:?}");
    assert!(store.load("logout").await.unwrap().is_none(), "cleared locally");

    // A process that holds only the (now revoked) refresh token, and no password: the refresh is
    // rejected (NotAuthorizedException → invalid_grant), so only a new login can help.
    let mut expired = tokens.clone();
    expired.expires_at = Some(tessera::clock::system_now() - Duration::from_secs(1));
    store.save("refresh-only", &expired).await.unwrap();
    let refresh_only = Grant::Cognito {
        endpoint_url: server.endpoint().into(),
        username: "alice".into(),
        password: None,
        auth_flow: CognitoAuthFlow::UserPassword,
        totp_secret: None,
        max_code_attempts: 3,
    };
    let session =
        Session::builder("refresh-only", config(server.endpoint(), &client, refresh_only)).store(store.clone()).build();
    let error = session.authorization_header().await.expect_err("the refresh token was revoked");
    assert!(error.requires_reauthentication(), "{error:?}");
    assert!(error.to_string().contains("NotAuthorizedException"), "{error}");
}

#[tokio::test]
async fn cognito_local_client_with_a_secret_logs_in_refreshes_and_revokes() {
    let server = CognitoLocal::start();
    let (_pool, client) = pool_with_user(&server, "OFF", true, &[]).await;
    assert!(client.secret.is_some(), "GenerateSecret gave a secret");
    let (_dir, store) = file_store();
    let session =
        Session::builder("secret", config(server.endpoint(), &client, password_grant(&server, "alice", PASSWORD)))
            .store(store)
            .build();
    let first = session.tokens().await.expect("login with SECRET_HASH");
    let refreshed = session.force_refresh().await.expect("refresh with SECRET_HASH");
    assert_ne!(refreshed.tokens().access_token, first.access_token);
    let outcome = session.logout().await.expect("logout");
    assert!(outcome.revoked, "RevokeToken with ClientSecret: {outcome:?}");
}

// --- The reference IdP's /cognito: CUSTOM_AUTH and EMAIL_OTP (no emulator speaks them), and a
// server that verifies SECRET_HASH. ---

mod support;

use tessera_idp::{IdpServer, demo};

fn idp_config(server: &IdpServer, secret: Option<&str>, grant: Grant) -> ProviderConfig {
    let client = match secret {
        Some(secret) => ClientAuth::post(demo::COGNITO_SECRET_CLIENT_ID, Secret::new(secret)),
        None => ClientAuth::public(demo::COGNITO_CLIENT_ID),
    };
    ProviderConfig { client, endpoints: Endpoints::explicit(server.url("/cognito")), scope: None, grant }
}

fn idp_grant(server: &IdpServer, username: &str, password: Option<&str>, auth_flow: CognitoAuthFlow) -> Grant {
    Grant::Cognito {
        endpoint_url: server.url("/cognito"),
        username: username.into(),
        password: password.map(Secret::new),
        auth_flow,
        totp_secret: None,
        max_code_attempts: 3,
    }
}

/// The newest code mailed to `to`.
fn mailed_code(server: &IdpServer, to: &str) -> String {
    server.outbox().into_iter().rev().find(|m| m.to == to).map(|m| m.code).expect("a code was mailed")
}

fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect()
}

/// A sync callback answering from the outbox: wrong while `attempt <= wrong_until`, then right.
fn outbox_prompter(
    server: &Arc<IdpServer>,
    to: &'static str,
    wrong_until: u32,
) -> (CodePrompter, Arc<Mutex<Vec<Prompt>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (server, seen) = (Arc::clone(server), Arc::clone(&asked));
    let prompter = CodePrompter::new(move |prompt: &Prompt| {
        seen.lock().unwrap().push(prompt.clone());
        let code = mailed_code(&server, to);
        let Prompt::Code { attempt, .. } = prompt else { unreachable!("only codes are asked") };
        Ok::<_, Error>(if *attempt <= wrong_until { wrong(&code) } else { code })
    });
    (prompter, asked)
}

#[tokio::test]
async fn idp_custom_auth_emailed_code_refresh_and_revoke() {
    let server = Arc::new(support::idp(Duration::from_secs(60)).await);
    let (prompter, asked) = outbox_prompter(&server, demo::ALICE_EMAIL, 1);
    let (_dir, store) = file_store();
    let grant = idp_grant(&server, demo::ALICE_USERNAME, None, CognitoAuthFlow::Custom);
    let session = Session::builder("custom", idp_config(&server, None, grant))
        .store(store.clone())
        .prompter(Arc::new(prompter))
        .build();
    let without_prompter = Session::builder(
        "custom-silent",
        idp_config(&server, None, idp_grant(&server, demo::ALICE_USERNAME, None, CognitoAuthFlow::Custom)),
    )
    .build();
    let error = without_prompter.authorization_header().await.expect_err("CUSTOM_AUTH needs a person");
    assert!(error.requires_reauthentication(), "{error:?}");
    assert!(server.outbox().is_empty(), "nothing was started");

    let header = session.login().await.expect("CUSTOM_AUTH: wrong answer, asked again, right answer");
    assert_eq!(support::whoami(&server, header.expose_secret()).await, 200);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        Prompt::Code {
            channel: CodeChannel::Email,
            destination: Some("a***@e***".into()),
            attempt: 1,
            previous_error: None
        }
    );
    assert!(
        matches!(&asked[1..], [Prompt::Code { attempt: 2, previous_error: Some(reason), .. }] if reason.contains("CodeMismatchException")),
        "{asked:?}"
    );

    let first = header.tokens().clone();
    let refreshed = session.force_refresh().await.expect("REFRESH_TOKEN_AUTH");
    assert_ne!(refreshed.tokens().access_token, first.access_token);
    assert_eq!(refreshed.tokens().refresh_token, first.refresh_token, "not rotated");
    assert_eq!(support::whoami(&server, refreshed.expose_secret()).await, 200);

    let outcome = session.logout().await.expect("logout");
    assert!(outcome.revoked, "{outcome:?}");
    assert_eq!(support::whoami(&server, refreshed.expose_secret()).await, 401, "RevokeToken kills its access tokens");
}

#[tokio::test]
async fn idp_email_otp_challenge_with_a_verified_secret_hash() {
    let server = Arc::new(support::idp(Duration::from_secs(60)).await);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let prompter = {
        let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
        CodePrompter::from_async(move |prompt: Prompt| {
            let (server, asked) = (Arc::clone(&server), Arc::clone(&asked));
            async move {
                asked.lock().unwrap().push(prompt);
                Ok::<_, Error>(mailed_code(&server, demo::CAROL_EMAIL))
            }
        })
    };
    let grant = idp_grant(&server, demo::CAROL_USERNAME, Some(demo::CAROL_PASSWORD), CognitoAuthFlow::UserPassword);
    let (_dir, store) = file_store();
    let session = Session::builder("carol", idp_config(&server, Some(demo::COGNITO_CLIENT_SECRET), grant.clone()))
        .store(store)
        .prompter(Arc::new(prompter))
        .build();
    let header = session.login().await.expect("USER_PASSWORD_AUTH + EMAIL_OTP, SECRET_HASH checked by the server");
    assert_eq!(support::whoami(&server, header.expose_secret()).await, 200);
    assert_eq!(
        asked.lock().unwrap().clone(),
        [Prompt::Code {
            channel: CodeChannel::Email,
            destination: Some("c***@e***".into()),
            attempt: 1,
            previous_error: None
        }]
    );
    let refreshed = session.force_refresh().await.expect("REFRESH_TOKEN_AUTH with SECRET_HASH");
    assert_ne!(refreshed.tokens().access_token, header.tokens().access_token);
    assert!(session.logout().await.expect("logout").revoked, "RevokeToken with ClientSecret");

    // A wrong client secret: the server cannot verify SECRET_HASH.
    let session = Session::builder("carol-bad", idp_config(&server, Some("not-the-secret"), grant)).build();
    let error = session.login().await.expect_err("bad SECRET_HASH");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    assert!(error.to_string().contains("secret hash"), "{error}");
    assert!(!error.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn idp_three_wrong_codes_end_the_login_with_a_typed_error() {
    let server = Arc::new(support::idp(Duration::from_secs(60)).await);
    let (prompter, asked) = outbox_prompter(&server, demo::ALICE_EMAIL, u32::MAX);
    let grant = idp_grant(&server, demo::ALICE_USERNAME, None, CognitoAuthFlow::Custom);
    let session = Session::builder("custom", idp_config(&server, None, grant)).prompter(Arc::new(prompter)).build();
    let error = session.login().await.expect_err("three wrong answers");
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error:?}");
    assert_eq!(asked.lock().unwrap().len(), 3);
    assert!(!error.to_string().contains(&wrong(&mailed_code(&server, demo::ALICE_EMAIL))));
}

#[tokio::test]
async fn idp_faults_on_the_cognito_endpoint_are_typed_errors() {
    use tessera_idp::{Fault, FaultEndpoint, FaultKind};
    let server = support::idp(Duration::from_secs(60)).await;
    let grant = idp_grant(&server, demo::ALICE_USERNAME, Some(demo::ALICE_PASSWORD), CognitoAuthFlow::UserPassword);
    let session = Session::builder("faults", idp_config(&server, None, grant)).build();
    let throttled = r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#;
    type ErrorCheck = fn(&Error) -> bool;
    let cases: Vec<(Fault, ErrorCheck)> = vec![
        (Fault::new(FaultKind::HtmlErrorPage { status: 502 }), |e| {
            matches!(e, Error::UnexpectedStatus { status: 502, .. }) && e.is_transient()
        }),
        (Fault::new(FaultKind::MalformedJson), |e| matches!(e, Error::MalformedResponse { .. })),
        (
            Fault::new(FaultKind::WrongContentType),
            |e| matches!(e, Error::MalformedResponse { reason, .. } if reason.contains("text/plain")),
        ),
        (
            Fault::new(FaultKind::Status {
                status: 400,
                body: throttled.into(),
                content_type: "application/x-amz-json-1.1".into(),
            }),
            |e| e.oauth_code() == Some(&OAuthErrorCode::TemporarilyUnavailable) && e.is_transient(),
        ),
        (
            Fault::new(FaultKind::Status {
                status: 500,
                body: r#"{"__type":"InternalErrorException"}"#.into(),
                content_type: "application/x-amz-json-1.1".into(),
            }),
            |e| e.oauth_code() == Some(&OAuthErrorCode::ServerError) && e.is_transient(),
        ),
        (Fault::new(FaultKind::DropConnection), |e| matches!(e, Error::Transport { .. }) && e.is_transient()),
    ];
    for (fault, expected) in cases {
        // InitiateAuth starts over, so it is resent on a transient failure (3 attempts in all): the
        // fault stays for all three, and the last one's error comes back.
        let attempts = match fault.kind {
            FaultKind::HtmlErrorPage { .. } | FaultKind::DropConnection => 3,
            FaultKind::Status { status, .. } if status >= 500 => 3,
            _ => 1,
        };
        server.faults().push(FaultEndpoint::Cognito, fault.clone(), attempts);
        let before = server.stats().cognito_requests;
        let error = session.login().await.expect_err("the fault fails the login");
        assert!(expected(&error), "{fault:?}: {error:?}");
        assert!(!error.to_string().contains(demo::ALICE_PASSWORD));
        assert_eq!(server.stats().cognito_requests - before, u64::from(attempts), "{fault:?}");
    }
    // One failure, then the resend succeeds.
    server.faults().push(FaultEndpoint::Cognito, Fault::new(FaultKind::DropConnection), 1);
    let before = server.stats().cognito_requests;
    session.login().await.expect("resent after a reset");
    assert_eq!(server.stats().cognito_requests - before, 2);
    let header = session.login().await.expect("without a fault the login works");
    assert_eq!(support::whoami(&server, header.expose_secret()).await, 200);
}
