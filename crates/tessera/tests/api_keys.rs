//! API keys end to end with the library against the in-process reference IdP: the management
//! client ([`ApiKeys`], [`AdminApiKeys`]) driven by a user's [`Session`], and the `api_key`
//! provider whose headers the server accepts until the key is revoked or expires.

mod support;

use std::time::Duration;

use support::{alice, bob, http_client, idp, memory, session};
use tessera::api_keys::{AdminApiKeyFilter, ApiKeyFilter, ApiKeyStatus, ApiKeys, is_not_found, is_permission_denied};
use tessera::provider::{ApiKeyProvider, AuthProvider, ProviderStatus};
use tessera::registry::Registry;
use tessera::{Error, OAuthErrorCode, Secret};
use tessera_idp::{IdpServer, demo};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn alice_keys(server: &IdpServer) -> ApiKeys {
    ApiKeys::new(session("alice", alice(&server.issuer())), server.issuer())
}

fn bob_keys(server: &IdpServer) -> ApiKeys {
    ApiKeys::new(session("bob", bob(&server.issuer())), server.issuer())
}

/// `GET /api/whoami` with the provider's headers: the HTTP status.
async fn whoami_with(server: &IdpServer, provider: &dyn AuthProvider) -> u16 {
    let mut request = http_client().get(server.url("/api/whoami"));
    for (name, value) in provider.as_http_headers().expect("api_key has headers").headers().await.unwrap() {
        request = request.header(name, value.expose_secret());
    }
    request.send().await.expect("whoami answers").status().as_u16()
}

#[tokio::test]
async fn create_checks_the_lifetime_and_returns_the_secret_once() {
    let server = idp(Duration::from_secs(300)).await;
    let keys = alice_keys(&server);
    // Out of 1..=365: a configuration error before anything is sent (the server's own 400 is
    // tested in tessera-idp), the same one from every front end. Even an unreachable server says so.
    let nowhere = ApiKeys::with_access_token(Secret::new("unused"), "http://127.0.0.1:1");
    for days in [0, 366, u32::MAX] {
        for client in [&keys, &nowhere] {
            let error = client.create("ci", Some(days)).await.unwrap_err();
            assert!(matches!(error, Error::Configuration { .. }), "{days} days: {error:?}");
            assert_eq!(error.to_string(), "configuration error: expires_in_days must be between 1 and 365 days");
        }
    }
    assert!(
        tessera::api_keys::check_expires_in_days(-1).is_err()
            && tessera::api_keys::check_expires_in_days(i64::MAX).is_err()
    );
    assert_eq!(tessera::api_keys::check_expires_in_days(365).unwrap(), 365);
    for days in [1, 365] {
        let (key, secret) = keys.create("ci", Some(days)).await.unwrap();
        assert_eq!(key.expires_at.as_unix_millis() - key.created_at.as_unix_millis(), i64::from(days) * DAY_MS);
        assert_eq!((key.status, key.created_by_email.as_str()), (ApiKeyStatus::Active, demo::ALICE_EMAIL));
        assert!(secret.expose_secret().starts_with("qk_"));
        assert!(!format!("{secret:?} {key:?}").contains(secret.expose_secret()), "Debug shows the secret");
    }
    let (default, _) = keys.create("default", None).await.unwrap();
    assert_eq!(default.expires_at.as_unix_millis() - default.created_at.as_unix_millis(), 90 * DAY_MS);

    // Afterwards only the fingerprint is ever shown.
    let listed = keys.list(&ApiKeyFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 3);
    let fetched = keys.get(&default.id).await.unwrap().expect("the key exists");
    assert_eq!(fetched, default);
    assert!(keys.get("key_0000000000000000").await.unwrap().is_none(), "unknown id: None, not an error");
}

#[tokio::test]
async fn list_filters_get_and_revoke_by_id_and_by_secret() {
    let server = idp(Duration::from_secs(300)).await;
    let keys = alice_keys(&server);
    let (ci, ci_secret) = keys.create("ci", Some(10)).await.unwrap();
    let (deploy, deploy_secret) = keys.create("deploy", Some(10)).await.unwrap();
    let ids = |list: Vec<tessera::api_keys::ApiKey>| list.into_iter().map(|k| k.id).collect::<Vec<_>>();

    // Both keys work as `api_key` providers; the server records the use.
    let ci_provider = ApiKeyProvider::new("ci", Secret::new(format!("  {}\n", ci_secret.expose_secret())));
    let deploy_provider = ApiKeyProvider::new("deploy", deploy_secret.clone()).with_header("x-api-key");
    assert_eq!(whoami_with(&server, &ci_provider).await, 200);
    assert_eq!(whoami_with(&server, &deploy_provider).await, 200);
    let used = keys.get(&ci.id).await.unwrap().unwrap();
    assert!(used.last_used_at.is_some_and(|at| at >= used.created_at), "{used:?}");

    let by_name = keys.list(&ApiKeyFilter { name: Some("deploy".into()), ..Default::default() }).await.unwrap();
    assert_eq!(ids(by_name), [deploy.id.as_str()]);
    let by_fingerprint =
        keys.list(&ApiKeyFilter { fingerprint: Some(ci.fingerprint.to_uppercase()), ..Default::default() }).await;
    assert_eq!(ids(by_fingerprint.unwrap()), [ci.id.as_str()]);

    let revoked = keys.revoke(&ci.id).await.unwrap();
    assert_eq!((revoked.id.as_str(), revoked.status), (ci.id.as_str(), ApiKeyStatus::Revoked));
    let revoked = keys.revoke_by_secret(&Secret::new(format!("{}\n", deploy_secret.expose_secret()))).await.unwrap();
    assert_eq!((revoked.id.as_str(), revoked.status), (deploy.id.as_str(), ApiKeyStatus::Revoked));
    assert_eq!(whoami_with(&server, &ci_provider).await, 401);
    assert_eq!(whoami_with(&server, &deploy_provider).await, 401);

    let status = |status| ApiKeyFilter { status: Some(status), ..Default::default() };
    assert_eq!(ids(keys.list(&status(ApiKeyStatus::Revoked)).await.unwrap()), [ci.id.clone(), deploy.id.clone()]);
    assert!(keys.list(&status(ApiKeyStatus::Active)).await.unwrap().is_empty());

    let unknown = keys.revoke("key_0000000000000000").await.unwrap_err();
    assert!(is_not_found(&unknown), "{unknown:?}");
    let unknown = keys.revoke_by_secret(&Secret::new("qk_never-issued")).await.unwrap_err();
    assert!(is_not_found(&unknown) && !unknown.to_string().contains("never-issued"), "{unknown}");
}

#[tokio::test]
async fn an_expired_key_is_listed_expired_and_refused() {
    let server = idp(Duration::from_secs(300)).await;
    let keys = alice_keys(&server);
    let (key, secret) = keys.create("short", Some(1)).await.unwrap();
    let provider = ApiKeyProvider::new("short", secret);
    assert_eq!(whoami_with(&server, &provider).await, 200);

    // A day and a minute later on the server. Alice's cached access token is now expired there:
    // the client gets a 401, takes a new token once, and retries.
    server.set_clock_offset(24 * 60 * 60 + 60);
    let now = keys.get(&key.id).await.unwrap().expect("the key exists");
    assert_eq!(now.status, ApiKeyStatus::Expired);
    let expired = keys.list(&ApiKeyFilter { status: Some(ApiKeyStatus::Expired), ..Default::default() }).await;
    assert_eq!(expired.unwrap().len(), 1);
    assert_eq!(whoami_with(&server, &provider).await, 401);
}

#[tokio::test]
async fn the_admin_api_is_for_admins_only() {
    let server = idp(Duration::from_secs(300)).await;
    let (alice, bob) = (alice_keys(&server), bob_keys(&server));
    let (bobs, bobs_secret) = bob.create("bob-ci", Some(5)).await.unwrap();
    let (alices, _) = alice.create("alice-ci", Some(5)).await.unwrap();

    let refusals = [
        bob.admin().list(&AdminApiKeyFilter::default()).await.map(drop),
        bob.admin().get(&bobs.id).await.map(drop),
        bob.admin().revoke(&bobs.id).await.map(drop),
    ];
    for refusal in refusals {
        let error = refusal.unwrap_err();
        assert!(is_permission_denied(&error), "{error:?}");
        assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::AccessDenied, status: 403, .. }));
        assert!(error.to_string().contains("not an administrator"), "{error}");
    }
    // A user sees only their own keys, even by id.
    assert_eq!(bob.list(&ApiKeyFilter::default()).await.unwrap().len(), 1);
    assert!(bob.get(&alices.id).await.unwrap().is_none());

    let admin = alice.admin();
    assert_eq!(admin.list(&AdminApiKeyFilter::default()).await.unwrap().len(), 2);
    let of_bob = AdminApiKeyFilter { email: Some(demo::BOB_EMAIL.into()), ..Default::default() };
    assert_eq!(admin.list(&of_bob).await.unwrap(), std::slice::from_ref(&bobs));
    let by_name = AdminApiKeyFilter { key_name: Some("alice-ci".into()), ..Default::default() };
    assert_eq!(admin.list(&by_name).await.unwrap()[0].id, alices.id);
    assert_eq!(admin.get(&bobs.id).await.unwrap().map(|k| k.created_by_email), Some(demo::BOB_EMAIL.to_owned()));
    assert!(admin.get("key_0000000000000000").await.unwrap().is_none());
    assert_eq!(admin.revoke(&bobs.id).await.unwrap().status, ApiKeyStatus::Revoked);
    assert_eq!(whoami_with(&server, &ApiKeyProvider::new("bob", bobs_secret)).await, 401);
}

#[tokio::test]
async fn the_api_key_provider_type_reads_its_section_and_checks_the_prefix() {
    let server = idp(Duration::from_secs(300)).await;
    let (_, secret) = alice_keys(&server).create("file-key", Some(5)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{}\n", secret.expose_secret())).unwrap();

    let config = format!(
        "[[contexts]]\nname = \"dev\"\n\
         [[contexts.auth_providers]]\nname = \"good\"\nprovider = \"api_key\"\napi_key = \"file:{path}\"\n\
         [[contexts.auth_providers]]\nname = \"header\"\nprovider = \"api_key\"\napi_key = \"file:{path}\"\n\
         header = \"X-API-Key\"\n\
         [[contexts.auth_providers]]\nname = \"other-prefix\"\nprovider = \"api_key\"\napi_key = \"file:{path}\"\n\
         prefix = \"tk_\"\n\
         [[contexts.auth_providers]]\nname = \"from-env\"\nprovider = \"api_key\"\n",
        path = key_file.display()
    );
    let registry = Registry::default();
    let config = registry.parse_config(&config, "c.toml").unwrap();
    let context = config.context(None).unwrap();
    let build =
        |name: &str| registry.build(&config, context, context.provider(Some(name)).unwrap(), memory()).expect("builds");

    for name in ["good", "header"] {
        let provider = build(name);
        assert_eq!(provider.provider_type(), "api_key");
        assert_eq!(provider.status().await.unwrap(), ProviderStatus::Authenticated);
        provider.as_login().unwrap().login().await.expect("login checks the key");
        assert_eq!(whoami_with(&server, provider.as_ref()).await, 200, "{name}");
        assert!(!provider.description().contains(secret.expose_secret()));
        let token = provider.as_token_source().unwrap().token(Duration::from_secs(3600)).await.unwrap();
        assert_eq!(token.access_token, secret);
        assert!(provider.as_refreshable().is_none(), "API keys do not refresh");
    }

    let wrong = build("other-prefix");
    let error = wrong.as_login().unwrap().login().await.unwrap_err();
    assert_eq!(error, Error::Configuration { message: "API key must start with 'tk_'".into() });
    assert_eq!(wrong.status().await.unwrap(), ProviderStatus::Error);

    // Default source: TESSERA_API_KEY, unset in this test process.
    let from_env = build("from-env");
    assert!(from_env.description().contains("env:TESSERA_API_KEY"), "{}", from_env.description());
    if std::env::var_os("TESSERA_API_KEY").is_none() {
        assert_eq!(from_env.status().await.unwrap(), ProviderStatus::Available);
        assert!(from_env.as_login().unwrap().login().await.unwrap_err().requires_reauthentication());
    }

    // Bad sections fail when the provider is built, naming the field.
    for (extra, expected) in [("prefix = 3\n", "field \"prefix\""), ("keyy = \"x\"\n", "unknown field `keyy`")] {
        let text = format!(
            "[[contexts]]\nname = \"d\"\n[[contexts.auth_providers]]\nname = \"k\"\nprovider = \"api_key\"\n{extra}"
        );
        let config = registry.parse_config(&text, "c.toml").unwrap();
        let context = config.context(None).unwrap();
        let error = registry.build(&config, context, &context.providers[0], memory()).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
}
