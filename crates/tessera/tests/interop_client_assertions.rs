//! Client assertions (RFC 7523 §2.2; OpenID Connect `private_key_jwt` and `client_secret_jwt`)
//! against a third-party server: panva's `oidc-provider` (8.8.1, `interop/oidc-provider`), which
//! verifies the signature against the client's registered keys, checks `iss`/`sub`/`aud`/`exp`
//! and refuses a `jti` it has seen. The server records every assertion's `jti`, `aud` and `alg`
//! (`GET /_stats`), so "never the same assertion twice" is checked where it matters.
//!
//! Keys: test-only fixtures in `testdata/client-assertion/`. Needs `node` and `npm ci` in
//! `interop/oidc-provider` (see its README).

mod support;

use std::collections::HashSet;

use support::oidc_provider::*;
use tessera::chain::{ChainConfig, DomainClient, Stage};
use tessera::core::ClientAssertionKey;
use tessera::core::protocol::TokenExchangeParams;
use tessera::{ClientAuth, Endpoints, Error, Grant, OAuthErrorCode, ProviderConfig, Secret, Session};

fn key(file: &str) -> String {
    std::fs::read_to_string(assertion_key_path(file)).unwrap()
}

fn signed_by(file: &str, kid: Option<&str>, alg: Option<&str>) -> ClientAuth {
    let key = ClientAssertionKey {
        alg: alg.map(str::to_owned),
        kid: kid.map(str::to_owned),
        ..ClientAssertionKey::new(key(file))
    };
    ClientAuth::private_key_jwt(JWT_CLIENT_ID, key)
}

fn machine(op: &OidcProvider, client: ClientAuth) -> ProviderConfig {
    ProviderConfig {
        client,
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("api:read".into()),
        grant: Grant::ClientCredentials,
    }
}

fn alice(op: &OidcProvider, client: ClientAuth) -> ProviderConfig {
    ProviderConfig {
        scope: Some("openid api:read".into()),
        grant: Grant::Password { username: ALICE.into(), password: Secret::new(ALICE_PASSWORD), totp: None },
        ..machine(op, client)
    }
}

fn session(key: &str, config: ProviderConfig) -> Session {
    Session::builder(key, config).build()
}

/// Every assertion the server saw had a distinct `jti` and the token endpoint as audience.
async fn assertions_were_fresh(op: &OidcProvider, expected: usize) -> OidcStats {
    let stats = op.stats().await;
    assert_eq!(stats.assertion_jtis.len(), expected, "{stats:?}");
    let distinct: HashSet<&String> = stats.assertion_jtis.iter().collect();
    assert_eq!(distinct.len(), expected, "an assertion was sent twice: {:?}", stats.assertion_jtis);
    assert!(stats.assertion_jtis.iter().all(|jti| jti.len() >= 22), "128-bit jti: {:?}", stats.assertion_jtis);
    assert!(stats.assertion_auds.iter().all(|aud| *aud == op.token_endpoint()), "{:?}", stats.assertion_auds);
    stats
}

#[tokio::test]
async fn private_key_jwt_with_rsa_ec_and_ed25519_keys_for_client_credentials() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    for (file, kid, alg, expected_alg) in [
        ("rsa.pem", Some("test-rsa"), None, "RS256"),
        ("rsa.pem", Some("test-rsa"), Some("PS256"), "PS256"),
        ("ec.pem", Some("test-ec"), None, "ES256"),
        // The same keys in the other PEM forms: PKCS#1, and SEC1 as `openssl ecparam -genkey` writes it.
        ("rsa-pkcs1.pem", Some("test-rsa"), None, "RS256"),
        ("ec-sec1.pem", Some("test-ec"), None, "ES256"),
        ("ed25519.pem", Some("test-ed"), None, "EdDSA"),
        // Without a kid, the server tries every registered key of the right type.
        ("ec.pem", None, None, "ES256"),
    ] {
        op.reset_stats().await;
        let client = signed_by(file, kid, alg);
        let tokens = session("machine", machine(&op, client.clone())).tokens().await.unwrap();
        let body = op.introspect(tokens.access_token.expose_secret()).await;
        assert_eq!((body["active"].as_bool(), body["client_id"].as_str()), (Some(true), Some(JWT_CLIENT_ID)), "{body}");
        // A second session, a second login: a new assertion.
        session("machine-2", machine(&op, client)).tokens().await.unwrap();
        let stats = assertions_were_fresh(&op, 2).await;
        assert_eq!(stats.assertion_algs, [expected_alg, expected_alg], "{file}");
        assert_eq!(stats.grant_type("client_credentials"), 2);
    }
}

#[tokio::test]
async fn private_key_jwt_password_refresh_and_revocation_each_send_a_new_assertion() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    // A JWK with its kid, read as the configuration would (the JWK's kid is used).
    let client = ClientAuth::private_key_jwt(JWT_CLIENT_ID, ClientAssertionKey::new(key("ec.jwk.json")));
    let alice_session = session("alice", alice(&op, client));
    let first = alice_session.tokens().await.unwrap();
    assert!(first.refresh_token.is_some());
    let second = alice_session.force_refresh().await.unwrap();
    assert_ne!(first.access_token, second.tokens().access_token);
    let outcome = alice_session.logout().await.unwrap();
    assert!(outcome.revoked && outcome.revocation_error.is_none(), "{outcome:?}");
    let stats = assertions_were_fresh(&op, 3).await;
    assert_eq!((stats.grant_type("password"), stats.grant_type("refresh_token"), stats.revocations), (1, 1, 1));
    assert_eq!(stats.refresh_token_reuses, 0);
    // The revocation was authenticated: the grant is gone.
    let body = op.introspect(second.tokens().refresh_token.as_ref().unwrap().expose_secret()).await;
    assert_eq!(body["active"], false, "{body}");
}

#[tokio::test]
async fn client_secret_jwt_logs_in_and_refreshes() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let client = ClientAuth::secret_jwt(SECRET_JWT_CLIENT_ID, Secret::new(SECRET_JWT_CLIENT_SECRET));
    let tokens = session("machine", machine(&op, client.clone())).tokens().await.unwrap();
    assert_eq!(op.introspect(tokens.access_token.expose_secret()).await["client_id"], SECRET_JWT_CLIENT_ID);
    let alice_session = session("alice", alice(&op, client));
    alice_session.tokens().await.unwrap();
    alice_session.force_refresh().await.unwrap();
    let stats = assertions_were_fresh(&op, 3).await;
    assert!(stats.assertion_algs.iter().all(|alg| alg == "HS256"), "{:?}", stats.assertion_algs);

    // The wrong secret: invalid_client, and the secret is not in the error.
    let wrong = ClientAuth::secret_jwt(SECRET_JWT_CLIENT_ID, Secret::new("not-the-secret-but-32-bytes-long-x"));
    let error = session("wrong", machine(&op, wrong)).authorization_header().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidClient, .. }), "{error:?}");
    assert!(!format!("{error:?} {error}").contains("not-the-secret"), "{error}");
}

/// A description that gives a secret and no `client_auth`, for a server that offers only
/// `client_secret_jwt` among the secret methods: tessera reads the method from the discovered
/// `token_endpoint_auth_methods_supported` instead of sending `client_secret_basic`, which this
/// server refuses. A method the description names is sent as named.
#[tokio::test]
async fn an_unset_client_auth_is_chosen_from_the_servers_metadata() {
    let op = OidcProvider::start(OidcProviderOptions {
        client_auth_methods: Some("none,client_secret_jwt,private_key_jwt"),
        ..OidcProviderOptions::default()
    });
    let description = |client_auth: &str| {
        let config = tessera::config::Config::from_toml_str(
            &format!(
                r#"[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "machine"
type = "client_credentials"
issuer = "{}"
client_id = "{SECRET_JWT_CLIENT_ID}"
client_secret = "{SECRET_JWT_CLIENT_SECRET}"
scope = "api:read"
{client_auth}
"#,
                op.issuer()
            ),
            "config.toml",
        )
        .unwrap();
        config.context(None).unwrap().provider(None).unwrap().build("config.toml", "dev").unwrap()
    };
    // (Introspection, which the test support authenticates with client_secret_basic, is off here.)
    let tokens = session("machine", description("")).tokens().await.unwrap();
    assert!(!tokens.access_token.expose_secret().is_empty());
    let stats = assertions_were_fresh(&op, 1).await;
    assert_eq!(
        (stats.assertion_algs.as_slice(), stats.grant_type("client_credentials")),
        (&["HS256".to_owned()][..], 1)
    );

    let named = description(r#"client_auth = "client_secret_basic""#);
    let error = session("named", named).authorization_header().await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidClient, .. }), "{error:?}");
    assert_eq!(op.stats().await.assertion_jtis.len(), 1, "no assertion: the named method was used");
}

#[tokio::test]
async fn a_key_the_server_does_not_know_is_refused_as_invalid_client_without_the_key_in_the_error() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let pem = key("wrong-ec.pem");
    for kid in [Some("test-ec"), None] {
        let client = signed_by("wrong-ec.pem", kid, None);
        let error = session("wrong", machine(&op, client)).authorization_header().await.unwrap_err();
        assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidClient, .. }), "{error:?}");
        let shown = format!("{error:?} {error}");
        for line in pem.lines().filter(|line| !line.starts_with("-----")) {
            assert!(!shown.contains(line), "the key is in the error: {error}");
        }
        assert!(!shown.contains("eyJ"), "an assertion is in the error: {error}");
    }
    // Refused once each: invalid_client is final, not retried.
    assert_eq!(op.stats().await.grant_type("client_credentials"), 2);
}

#[tokio::test]
async fn token_exchange_stages_authenticate_with_private_key_jwt() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let client = signed_by("rsa.pem", Some("test-rsa"), None);
    let token_endpoint = op.token_endpoint();
    let chain = ChainConfig::new(
        Stage::token_exchange(&token_endpoint, client.clone(), TokenExchangeParams::default().audience("discovery")),
        Stage::token_exchange(
            &token_endpoint,
            client.clone(),
            TokenExchangeParams::default().audience("https://domains.example/{domain_id}"),
        ),
    );
    let domains = DomainClient::new(session("alice", alice(&op, client)), chain);
    let alpha = domains.get_domain_access("alpha").await.unwrap();
    domains.get_domain_access("beta").await.unwrap();
    let body = op.introspect(alpha.access_token.expose_secret()).await;
    assert_eq!((body["active"].as_bool(), body["client_id"].as_str()), (Some(true), Some(JWT_CLIENT_ID)), "{body}");
    // The login, the discovery exchange, two domain exchanges: four assertions, none twice.
    let stats = assertions_were_fresh(&op, 4).await;
    assert_eq!(stats.grant_type("urn:ietf:params:oauth:grant-type:token-exchange"), 3, "{stats:?}");

    // A stage with a key the server does not know: refused as invalid_client at that stage.
    let wrong = signed_by("wrong-ec.pem", Some("test-ec"), None);
    let chain = ChainConfig::new(
        Stage::token_exchange(&token_endpoint, wrong, TokenExchangeParams::default().audience("discovery")),
        Stage::http_post("http://127.0.0.1:9/unused/{domain_id}"),
    );
    let domains = DomainClient::new(session("alice-2", alice(&op, signed_by("ec.pem", Some("test-ec"), None))), chain);
    let error = domains.get_domain_access("alpha").await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { code: OAuthErrorCode::InvalidClient, .. }), "{error:?}");
}

#[tokio::test]
async fn a_certificate_puts_x5t_x5t_s256_and_x5c_in_the_header_as_msal_does() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let certificate = assertion_key_path("ec-cert.pem");
    // The TOML form, the certificate by file: reference (as msal users hold it: a PEM beside the key).
    let text = format!(
        "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"svc\"\ntype = \"client_credentials\"\n\
         issuer = \"{}\"\nclient_id = \"{JWT_CLIENT_ID}\"\nclient_assertion_key = \"file:{}\"\n\
         client_assertion_certificate = \"file:{}\"\nscope = \"api:read\"\n",
        op.issuer(),
        assertion_key_path("ec.pem").display(),
        certificate.display(),
    );
    let registry = tessera::registry::Registry::default();
    let config = registry.parse_config(&text, "msal.toml").unwrap();
    let client = tessera::AuthClient::from_config(
        &registry,
        &config,
        None,
        std::sync::Arc::new(tessera::store::MemoryStore::new()),
    )
    .unwrap();
    client.token("svc", std::time::Duration::ZERO).await.unwrap();
    let stats = assertions_were_fresh(&op, 1).await;
    // The SHA-1 thumbprint of the certificate's DER, as `openssl x509 -fingerprint -sha1` prints it.
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(&certificate)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(output.stdout).unwrap();
    let hex: String = fingerprint.trim().rsplit('=').next().unwrap().split(':').collect();
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let expected = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    assert_eq!(stats.assertion_x5ts, [Some(expected)]);
    assert_eq!(stats.assertion_x5c_consistent, [Some(true)], "x5t#S256 and x5c agree");

    // Without a certificate, no x5t; a certificate without a key, and a file that is no
    // certificate, are configuration errors naming the field.
    op.reset_stats().await;
    session("plain", machine(&op, signed_by("ec.pem", Some("test-ec"), None))).tokens().await.unwrap();
    assert_eq!(op.stats().await.assertion_x5ts, [None]);
    for (extra, field) in [
        (
            format!("client_assertion_certificate = \"file:{}\"\nclient_secret = \"s\"\n", certificate.display()),
            "client_assertion_certificate",
        ),
        (
            format!(
                "client_assertion_key = \"file:{}\"\nclient_assertion_certificate = \"file:{}\"\n",
                assertion_key_path("ec.pem").display(),
                assertion_key_path("ec.pem").display()
            ),
            "client_assertion_certificate",
        ),
    ] {
        let text = format!(
            "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"svc\"\ntype = \"client_credentials\"\n\
             issuer = \"{}\"\nclient_id = \"{JWT_CLIENT_ID}\"\n{extra}",
            op.issuer()
        );
        let error = match registry.parse_config(&text, "msal.toml") {
            Err(error) => error,
            Ok(config) => {
                let client = tessera::AuthClient::from_config(
                    &registry,
                    &config,
                    None,
                    std::sync::Arc::new(tessera::store::MemoryStore::new()),
                );
                match client {
                    Err(error) => error,
                    Ok(client) => client.token("svc", std::time::Duration::ZERO).await.unwrap_err(),
                }
            }
        };
        assert!(error.to_string().contains(field), "{extra}: {error}");
        assert!(!error.to_string().contains("PRIVATE KEY"), "{error}");
    }
}
