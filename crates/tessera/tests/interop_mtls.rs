//! Mutual TLS (RFC 8705) against a third-party server: panva's `oidc-provider` (8.8.1,
//! `interop/oidc-provider`) with its `mTLS` feature on. Its token, revocation and userinfo
//! endpoints have aliases (`mtls_endpoint_aliases`) on an HTTPS listener that asks for a client
//! certificate; it authenticates `tls_client_auth` clients by their CA-issued certificate's subject
//! and `self_signed_tls_client_auth` clients by the certificate registered in their JWKS, and binds
//! their access tokens to the certificate (`cnf.x5t#S256`): its userinfo endpoint refuses a bound
//! token presented without that certificate.
//!
//! Certificates: test-only fixtures in `testdata/mtls/` (`regenerate.sh` there). Needs `node` and
//! `npm ci` in `interop/oidc-provider` (see its README).

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;
use support::oidc_provider::*;
use tessera::core::ClientAuthMethod;
use tessera::registry::Registry;
use tessera::store::MemoryStore;
use tessera::transport::{TransportSettings, client_builder};
use tessera::{AuthClient, ClientAuth, Endpoints, Error, Grant, ProviderConfig, Session, SessionSettings};

/// The transport of a client holding `certificate` and `key` (files in `testdata/mtls/`), trusting
/// the test CA that issued the server's certificate.
fn with_certificate(certificate: &str, key: &str) -> TransportSettings {
    TransportSettings {
        ca_file: Some(mtls_file("ca.pem")),
        tls_client_certificate: Some(mtls_file(certificate)),
        tls_client_key: Some(mtls_file(key)),
        ..TransportSettings::default()
    }
}

fn session(key: &str, config: ProviderConfig, transport: TransportSettings) -> Session {
    Session::builder(key, config).settings(SessionSettings { transport, ..SessionSettings::default() }).build()
}

fn machine(op: &OidcProvider, client: ClientAuth) -> ProviderConfig {
    ProviderConfig {
        client,
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("api:read".into()),
        grant: Grant::ClientCredentials,
    }
}

fn certificate_client(client_id: &str, method: ClientAuthMethod) -> ClientAuth {
    ClientAuth { method, ..ClientAuth::public(client_id) }
}

/// `x5t#S256` of a PEM certificate file: base64url(SHA-256(DER)), RFC 8705 §3.1.
fn thumbprint(certificate: &str) -> String {
    let pem = std::fs::read_to_string(mtls_file(certificate)).unwrap();
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// `GET {userinfo}` with `token`, through a client that presents `certificate` (or none).
async fn userinfo(url: &str, token: &str, certificate: Option<(&str, &str)>) -> (u16, serde_json::Value) {
    let settings = match certificate {
        Some((certificate, key)) => with_certificate(certificate, key),
        None => TransportSettings { ca_file: Some(mtls_file("ca.pem")), ..TransportSettings::default() },
    };
    let client = client_builder(&settings).unwrap().build().unwrap();
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn tls_client_auth_from_a_toml_description_logs_in_refreshes_and_revokes_with_a_bound_token() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    // No client_auth: a certificate and no other credential is tls_client_auth. The requests go
    // to the mTLS aliases the server publishes (its plain-HTTP token endpoint would see no
    // certificate and refuse the client).
    let text = format!(
        r#"
[[contexts]]
name = "dev"

[[contexts.auth_providers]]
name = "bank"
type = "password"
issuer = "{issuer}"
client_id = "{MTLS_CLIENT_ID}"
username = "{ALICE}"
password = "{ALICE_PASSWORD}"
scope = "openid offline_access"
ca_file = "{ca}"
tls_client_certificate = "{certificate}"
tls_client_key = "{key}"
"#,
        issuer = op.issuer(),
        ca = mtls_file("ca.pem").display(),
        certificate = mtls_file("client.pem").display(),
        key = mtls_file("client-key.pem").display(),
    );
    let registry = Registry::default();
    let config = registry.parse_config(&text, "mtls.toml").unwrap();
    let client = AuthClient::from_config(&registry, &config, None, Arc::new(MemoryStore::new())).unwrap();
    let first = client.token("bank", Duration::ZERO).await.unwrap();
    let access_token = first.access_token.expose_secret().to_owned();

    // Bound to the client certificate: the introspection says so, and userinfo takes the token
    // only from a client that shows that certificate.
    let body = op.introspect(&access_token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["cnf"]["x5t#S256"], thumbprint("client.pem"), "{body}");
    let alias = format!("{}/me", op.mtls_base());
    assert_eq!(userinfo(&alias, &access_token, Some(("client.pem", "client-key.pem"))).await.0, 200);
    let (status, body) = userinfo(&alias, &access_token, Some(("self-signed.pem", "self-signed-key.pem"))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "another certificate: {body}");
    let (status, _) = userinfo(&format!("{}/me", op.issuer()), &access_token, None).await;
    assert_eq!(status, 401, "no certificate");

    // A refresh, authenticated by the certificate too; the new token is bound as well.
    let refreshed = client.refresh_credentials(Some("bank"), true).await.unwrap();
    assert_eq!(refreshed.get("bank"), Some(&true), "{refreshed:?}");
    let second = client.token("bank", Duration::ZERO).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(op.introspect(second.access_token.expose_secret()).await["cnf"]["x5t#S256"], thumbprint("client.pem"));

    let logged_out = client.logout(Some("bank")).await.unwrap();
    assert_eq!(logged_out.get("bank"), Some(&true), "{logged_out:?}");
    let stats = op.stats().await;
    assert_eq!(
        (
            stats.grant_type("password"),
            stats.grant_type("refresh_token"),
            stats.revocations,
            stats.refresh_token_reuses
        ),
        (1, 1, 1, 0),
        "{stats:?}"
    );
    let body = op.introspect(second.refresh_token.as_ref().unwrap().expose_secret()).await;
    assert_eq!(body["active"], false, "the revocation was authenticated: {body}");
}

#[tokio::test]
async fn self_signed_tls_client_auth_with_an_rsa_pkcs1_key() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let client = certificate_client(SELF_SIGNED_MTLS_CLIENT_ID, ClientAuthMethod::SelfSignedTlsClientAuth);
    let transport = with_certificate("self-signed.pem", "self-signed-key.pem");
    let tokens = session("machine", machine(&op, client), transport).tokens().await.unwrap();
    let body = op.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!((body["active"].as_bool(), body["client_id"].as_str()), (Some(true), Some(SELF_SIGNED_MTLS_CLIENT_ID)));
    assert_eq!(body["cnf"]["x5t#S256"], thumbprint("self-signed.pem"), "{body}");
    assert_eq!(op.stats().await.grant_type("client_credentials"), 1);
}

#[tokio::test]
async fn a_certificate_the_server_does_not_trust_or_no_certificate_is_refused_as_invalid_client() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let client = || certificate_client(MTLS_CLIENT_ID, ClientAuthMethod::TlsClientAuth);
    // The right subject, but self-signed: not issued by the CA the server trusts.
    let wrong = session("wrong", machine(&op, client()), with_certificate("wrong.pem", "wrong-key.pem"));
    let error = wrong.authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::OAuth { .. }), "{error:?}");
    assert!(error.to_string().contains("invalid_client"), "{error}");
    let key = std::fs::read_to_string(mtls_file("wrong-key.pem")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!format!("{error:?}{error}").contains(key_body), "the key is never in an error");

    // Another client's registered certificate is not this client's.
    let other = session("other", machine(&op, client()), with_certificate("self-signed.pem", "self-signed-key.pem"));
    assert!(other.authorization_header().await.unwrap_err().to_string().contains("invalid_client"));

    // No certificate at all (a Rust caller that left the transport out): refused, not sent elsewhere.
    let bare = session(
        "bare",
        machine(&op, client()),
        TransportSettings { ca_file: Some(mtls_file("ca.pem")), ..TransportSettings::default() },
    );
    assert!(bare.authorization_header().await.unwrap_err().to_string().contains("invalid_client"));
    // One request each: a refused client is not retried.
    assert_eq!(op.stats().await.grant_type("client_credentials"), 3);
}

#[tokio::test]
async fn unusable_certificate_files_are_configuration_errors_naming_the_field_never_the_content() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let garbage = write("garbage.pem", "S3cr3t-looking garbage\n");
    let client = || certificate_client(MTLS_CLIENT_ID, ClientAuthMethod::TlsClientAuth);
    let cases = [
        (garbage.clone(), mtls_file("client-key.pem"), "tls_client_certificate"),
        (mtls_file("client.pem"), garbage.clone(), "tls_client_key"),
        (dir.path().join("missing.pem"), mtls_file("client-key.pem"), "tls_client_certificate"),
        // A certificate where the key should be: no private key in it.
        (mtls_file("client.pem"), mtls_file("client.pem"), "tls_client_key"),
    ];
    for (certificate, key, field) in cases {
        let transport = TransportSettings {
            tls_client_certificate: Some(certificate),
            tls_client_key: Some(key),
            ..with_certificate("client.pem", "client-key.pem")
        };
        let error = session("bad", machine(&op, client()), transport).authorization_header().await.unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{field}: {error:?}");
        let text = error.to_string();
        assert!(text.contains(field), "{text}");
        let certificate_body =
            std::fs::read_to_string(mtls_file("client.pem")).unwrap().lines().nth(1).unwrap().to_owned();
        assert!(!text.contains("S3cr3t") && !text.contains(&certificate_body), "no file content: {text}");
    }
    assert_eq!(op.stats().await.grant_type("client_credentials"), 0);

    // The description's rules: a certificate method needs the certificate, and a certificate its key.
    let registry = Registry::default();
    for (extra, field) in [
        ("client_auth = \"tls_client_auth\"", "tls_client_certificate"),
        ("tls_client_certificate = \"/c.pem\"", "tls_client_key"),
        ("client_auth = \"self_signed_tls_client_auth\"\nclient_secret = \"s\"", "tls_client_certificate"),
    ] {
        let text = format!(
            "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"bank\"\ntype = \"client_credentials\"\n\
             issuer = \"https://bank.example\"\nclient_id = \"c\"\n{extra}\n"
        );
        let error = registry.parse_config(&text, "mtls.toml").unwrap_err();
        assert!(error.to_string().contains(field), "{extra}: {error}");
    }
}
