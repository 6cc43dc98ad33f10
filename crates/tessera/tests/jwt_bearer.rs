//! The JWT bearer grant (RFC 7523 §2.1) end to end against the reference IdP's demo service
//! account: a `Session` signs one assertion for 100 concurrent callers, signs a new one (new
//! `jti`) when the token expires, and a Google-style service-account key file configures it
//! (scope in the assertion, `token_uri` replaced by `token_endpoint`). Never Google.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::*;
use tessera::config::Config;
use tessera::core::ClientAssertionKey;
use tessera::core::provider_spec::ProviderSpec;
use tessera::{ClientAuth, Endpoints, Grant, OAuthErrorCode, ProviderConfig, Secret};
use tessera_idp::demo;

fn demo_key() -> ClientAssertionKey {
    ClientAssertionKey {
        kid: Some(demo::SERVICE_ACCOUNT_KEY_ID.into()),
        ..ClientAssertionKey::new(demo::SERVICE_ACCOUNT_PRIVATE_KEY)
    }
}

fn service_account(issuer: &str) -> ProviderConfig {
    ProviderConfig {
        client: ClientAuth::public(demo::SERVICE_ACCOUNT_EMAIL),
        endpoints: Endpoints::discover(issuer),
        scope: Some("api:read".into()),
        grant: Grant::jwt_bearer(demo_key()),
    }
}

/// The claims of an access token the reference IdP issued.
fn claims(access_token: &Secret) -> Value {
    let payload = access_token.expose_secret().split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn hundred_concurrent_callers_share_one_assertion_and_expiry_signs_a_new_one() {
    // Three seconds: long enough that the token is still valid at the whoami check on a loaded
    // machine (one second was not), short enough to wait out below.
    let idp = idp(Duration::from_secs(3)).await;
    let session = session("robot", service_account(&idp.issuer()));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.authorization_header().await.map(|h| h.access_token().clone()) })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().unwrap().expose_secret().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every caller got the same token");
    let stats = idp.stats();
    assert_eq!((stats.token_requests, stats.jwt_bearer_grants), (1, 1), "one assertion for 100 callers");
    let first = session.authorization_header().await.unwrap();
    assert!(first.tokens().refresh_token.is_none(), "no refresh token: a new assertion on expiry");
    assert_eq!(whoami(&idp, first.expose_secret()).await, 200);
    let at = claims(first.access_token());
    assert_eq!((at["sub"].as_str(), at["scope"].as_str()), (Some(demo::SERVICE_ACCOUNT_EMAIL), Some("api:read")));

    // Expired: a new assertion (the IdP refuses a jti it has seen, so this proves a fresh one).
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let second = session.authorization_header().await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    let stats = idp.stats();
    assert_eq!((stats.jwt_bearer_grants, stats.failed_token_requests, stats.refresh_grants), (2, 0, 0));
}

#[tokio::test]
async fn subject_audience_and_scope_in_the_assertion_reach_the_server() {
    let idp = idp(Duration::from_secs(60)).await;
    let mut config = service_account(&idp.issuer());
    config.grant = Grant::JwtBearer {
        key: demo_key(),
        subject: Some(demo::ALICE_USERNAME.into()),
        audience: Some(idp.issuer()),
        scope_in_assertion: true,
        lifetime: Duration::from_secs(120),
    };
    let header = session("delegated", config).authorization_header().await.unwrap();
    let at = claims(header.access_token());
    assert_eq!((at["sub"].as_str(), at["scope"].as_str()), (Some(demo::ALICE_USERNAME), Some("api:read")));
}

#[tokio::test]
async fn an_assertion_the_server_refuses_is_invalid_grant_without_the_key() {
    let idp = idp(Duration::from_secs(60)).await;
    let other = include_str!("../../../testdata/client-assertion/rsa.pem");
    let mut config = service_account(&idp.issuer());
    config.grant = Grant::jwt_bearer(ClientAssertionKey::new(other));
    let error = session("impostor", config).authorization_header().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidGrant), "{error}");
    let text = format!("{error} {error:?}");
    for line in other.lines().chain(demo::SERVICE_ACCOUNT_PRIVATE_KEY.lines()).filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "key material in {text}");
    }
    assert_eq!(idp.stats().jwt_bearer_grants, 0);
}

#[tokio::test]
async fn a_service_account_key_file_configures_the_provider() {
    let idp = idp(Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    // The file says Google's token_uri: the configuration's token_endpoint replaces it (never Google).
    let key_file = dir.path().join("robot.json");
    std::fs::write(&key_file, demo::service_account_key_file("https://oauth2.googleapis.com/token")).unwrap();
    let config = Config::from_toml_str(
        &format!(
            r#"[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "robot"
type = "jwt_bearer"
service_account_key = "file:{}"
token_endpoint = "{}"
scope = "cloud-platform api:read"
"#,
            key_file.display(),
            idp.url("/token")
        ),
        "config.toml",
    )
    .unwrap();
    let built = config.context(None).unwrap().provider(None).unwrap().build("config.toml", "dev").unwrap();
    assert_eq!(built.client.client_id, demo::SERVICE_ACCOUNT_EMAIL);
    assert_eq!(built.endpoints, Endpoints::explicit(idp.url("/token")));
    let header = session("robot", built).authorization_header().await.unwrap();
    let at = claims(header.access_token());
    assert_eq!(at["client_id"], demo::SERVICE_ACCOUNT_EMAIL);
    assert_eq!(
        at["scope"], "cloud-platform api:read",
        "sent in the assertion (a form scope would be refused beside it)"
    );

    // The file's own token_uri, when it points at our server.
    let spec = ProviderSpec::from_value(json!({
        "type": "jwt_bearer",
        "service_account_key": demo::service_account_key_file(&idp.url("/token")),
    }))
    .unwrap();
    let built = spec.spec.into_config(&mut |_, value| Ok(value.clone())).unwrap();
    assert_eq!(built.endpoints, Endpoints::explicit(idp.url("/token")));
    session("robot-2", built).authorization_header().await.unwrap();
    assert_eq!(idp.stats().jwt_bearer_grants, 2);

    // A file that is not a service-account key: the error names the file's field, and quotes nothing.
    let broken = dir.path().join("user.json");
    std::fs::write(&broken, r#"{"type": "authorized_user", "refresh_token": "SECRET-REFRESH-TOKEN"}"#).unwrap();
    let text = std::fs::read_to_string(dir.path().join("robot.json")).unwrap();
    let config = Config::from_toml_str(
        &format!(
            "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"robot\"\ntype = \"jwt_bearer\"\n\
             service_account_key = \"file:{}\"\n",
            broken.display()
        ),
        "config.toml",
    )
    .unwrap();
    let error = config.context(None).unwrap().provider(None).unwrap().build("config.toml", "dev").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("service_account_key") && message.contains("authorized_user"), "{message}");
    assert!(message.contains("user.json"), "names the file: {message}");
    assert!(!message.contains("SECRET-REFRESH-TOKEN") && !message.contains(&text[..40]), "{message}");
}

/// Client authentication with `client_secret_jwt` (an HS256 assertion signed with the secret) at
/// the reference IdP, for a login, a refresh and a revocation: each a new assertion.
#[tokio::test]
async fn client_secret_jwt_authenticates_at_the_reference_idp() {
    let idp = idp(Duration::from_secs(60)).await;
    let config = ProviderConfig {
        client: ClientAuth::secret_jwt(demo::CONFIDENTIAL_CLIENT_ID, Secret::new(demo::CONFIDENTIAL_CLIENT_SECRET)),
        endpoints: Endpoints::discover(idp.issuer()),
        scope: Some("api:read".into()),
        grant: Grant::Password { username: "alice".into(), password: Secret::new("alice-password"), totp: None },
    };
    let alice = session("alice", config.clone());
    alice.tokens().await.unwrap();
    alice.force_refresh().await.unwrap();
    assert!(alice.logout().await.unwrap().revoked);
    let wrong = ProviderConfig {
        client: ClientAuth::secret_jwt(demo::CONFIDENTIAL_CLIENT_ID, Secret::new("not-the-secret")),
        ..config
    };
    let error = session("wrong", wrong).tokens().await.unwrap_err();
    assert_eq!(error.oauth_code(), Some(&OAuthErrorCode::InvalidClient), "{error:?}");
    assert!(!error.to_string().contains("not-the-secret"), "{error}");
}
