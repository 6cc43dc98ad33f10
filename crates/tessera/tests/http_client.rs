//! The application's own HTTP stack: a custom [`Transport`], a custom reqwest client, and the
//! rules tessera keeps around both (HTTPS off loopback, body cap).

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use support::*;
use tessera::core::{HttpRequest, HttpResponse};
use tessera::transport::{HttpTransport, Transport, TransportSettings};
use tessera::{Endpoints, Error, Session, SessionSettings, TransportErrorKind};

/// Sends through tessera's own transport and records every URL it was given.
#[derive(Default)]
struct Recording {
    inner: HttpTransport,
    seen: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Transport for Recording {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.seen.lock().unwrap().push(request.endpoint());
        self.inner.execute(request).await
    }
}

#[tokio::test]
async fn a_custom_transport_carries_every_request_and_single_flight_still_holds() {
    let idp = idp(Duration::from_secs(60)).await;
    let recording = Arc::new(Recording::default());
    let session = Session::builder("alice", alice(&idp.issuer())).transport(recording.clone()).build();
    let calls: Vec<_> = (0..20).map(|_| session.authorization_header()).collect();
    for header in futures_util::future::join_all(calls).await {
        assert_eq!(whoami(&idp, header.unwrap().expose_secret()).await, 200);
    }
    let seen = recording.seen.lock().unwrap().clone();
    let issuer = idp.issuer();
    assert_eq!(
        seen,
        vec![format!("{issuer}/.well-known/openid-configuration"), format!("{issuer}/token")],
        "discovery and one token request, both through the custom transport"
    );
    assert_eq!(idp.stats().token_requests, 1);
}

/// Answers every request with a canned body, without sending anything.
struct Canned(Vec<u8>);

#[async_trait::async_trait]
impl Transport for Canned {
    async fn execute(&self, _request: HttpRequest) -> Result<HttpResponse, Error> {
        // A wrong request id: the session echoes the right one itself.
        Ok(HttpResponse::json(tessera::core::RequestId(u64::MAX), 200, self.0.clone()))
    }
}

#[tokio::test]
async fn a_custom_transport_stays_inside_the_https_rule_and_the_body_cap() {
    let token = br#"{"access_token":"canned","token_type":"Bearer","expires_in":3600}"#.to_vec();
    let config = |url: &str| tessera::ProviderConfig { endpoints: Endpoints::explicit(url), ..machine("") };

    // Plain HTTP off loopback is refused before the transport is called (it would answer).
    let session =
        Session::builder("m", config("http://idp.example/token")).transport(Arc::new(Canned(token.clone()))).build();
    let error = session.authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::InvalidUrl, .. }), "{error}");
    assert!(error.to_string().contains("allow_insecure_http"), "{error}");

    // ... unless allowed; and the request id is the session's, whatever the transport said.
    let settings = SessionSettings {
        transport: TransportSettings { allow_insecure_http: true, ..TransportSettings::default() },
        ..SessionSettings::default()
    };
    let session = Session::builder("m", config("http://idp.example/token"))
        .settings(settings)
        .transport(Arc::new(Canned(token.clone())))
        .build();
    assert_eq!(session.access_token().await.unwrap().expose_secret(), "canned");

    // A body over the cap is refused even though the transport read it.
    let settings = SessionSettings {
        transport: TransportSettings { max_response_bytes: 16, ..TransportSettings::default() },
        ..SessionSettings::default()
    };
    let session = Session::builder("m", config("https://idp.example/token"))
        .settings(settings)
        .transport(Arc::new(Canned(token)))
        .build();
    let error = session.authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// tessera's own client, configured: proxy, private CA, allow_insecure_http, from Rust and TOML.

use base64::Engine as _;
use tessera::registry::Registry;
use tessera::store::MemoryStore;
use tessera::{AuthClient, ProviderConfig};
use tessera_idp::test_proxy::{ProxiedRequest, TestProxy};
use tessera_idp::{IdpConfig, IdpServer, TestCa};

/// The reference IdP over HTTPS with a certificate from a CA made now, and that CA's PEM file.
async fn tls_idp() -> (IdpServer, tempfile::TempDir, std::path::PathBuf) {
    let ca = TestCa::generate("http_client test CA").unwrap();
    let config = IdpConfig { tls: Some(ca.loopback_identity().unwrap()), ..IdpConfig::demo() };
    let idp = IdpServer::start(config).await.unwrap();
    assert!(idp.issuer().starts_with("https://127.0.0.1:"), "{}", idp.issuer());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    (idp, dir, ca_file)
}

fn with_transport(transport: TransportSettings) -> SessionSettings {
    SessionSettings { transport, ..SessionSettings::default() }
}

fn targets(log: &[ProxiedRequest]) -> Vec<String> {
    log.iter().map(|entry| format!("{} {}", entry.method, entry.target)).collect()
}

#[tokio::test]
async fn plain_http_token_requests_go_through_the_configured_proxy() {
    let idp = idp(Duration::from_secs(60)).await;
    let proxy = TestProxy::start().await.unwrap();
    let settings = with_transport(TransportSettings { proxy: Some(proxy.url()), ..TransportSettings::default() });
    let session = Session::builder("alice", alice(&idp.issuer())).settings(settings.clone()).build();
    let header = session.authorization_header().await.unwrap();
    assert_eq!(whoami(&idp, header.expose_secret()).await, 200);
    let issuer = idp.issuer();
    assert_eq!(
        targets(&proxy.log()),
        [format!("GET {issuer}/.well-known/openid-configuration"), format!("POST {issuer}/token")]
    );

    // `no_proxy` sends the same requests directly.
    let proxy = TestProxy::start().await.unwrap();
    let settings = with_transport(TransportSettings {
        proxy: Some(proxy.url()),
        no_proxy: Some("localhost,127.0.0.1".into()),
        ..TransportSettings::default()
    });
    let session = Session::builder("alice", alice(&idp.issuer())).settings(settings).build();
    session.authorization_header().await.unwrap();
    assert_eq!(proxy.log(), [], "no_proxy: nothing through the proxy");
    assert_eq!(idp.stats().token_requests, 2);
}

#[tokio::test]
async fn a_private_ca_given_only_as_ca_file_is_trusted_and_nothing_else_is() {
    let (idp, dir, ca_file) = tls_idp().await;

    // The system's roots alone do not know the private CA: refused before anything is sent, for
    // good (not transient: no retry meets another certificate), and the message names the fix.
    let error = session("alice", alice(&idp.issuer())).authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::Certificate, .. }), "{error}");
    assert!(!error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("certificate is not trusted") && error.to_string().contains("ca_file"),
        "{error}"
    );
    assert_eq!(idp.stats().token_requests, 0);

    // Added to the system's roots, and alone (`ca_file_only`).
    for only in [false, true] {
        let settings = with_transport(TransportSettings {
            ca_file: Some(ca_file.clone()),
            ca_file_only: only,
            ..TransportSettings::default()
        });
        let session = Session::builder("alice", alice(&idp.issuer())).settings(settings).build();
        let header = session.authorization_header().await.unwrap();
        assert!(header.tokens().refresh_token.is_some());
        // Refresh (rotation) over the same TLS connection setup.
        let refreshed = session.force_refresh().await.unwrap();
        assert_ne!(refreshed.access_token(), header.access_token());
    }
    assert_eq!(idp.stats().token_requests, 4);

    // Another CA's file: refused.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, TestCa::generate("another CA").unwrap().ca_pem()).unwrap();
    let settings = with_transport(TransportSettings { ca_file: Some(other), ..TransportSettings::default() });
    let error = Session::builder("alice", alice(&idp.issuer())).settings(settings).build().authorization_header().await;
    assert!(matches!(error, Err(Error::Transport { kind: TransportErrorKind::Certificate, .. })), "{error:?}");

    // A file that is not a CA bundle is a configuration error naming the file, not quoting it.
    let garbage = dir.path().join("not-a-bundle.pem");
    std::fs::write(&garbage, "S3cr3t-not-a-certificate\n").unwrap();
    let settings = with_transport(TransportSettings { ca_file: Some(garbage), ..TransportSettings::default() });
    let error = Session::builder("alice", alice(&idp.issuer()))
        .settings(settings)
        .build()
        .authorization_header()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Configuration { .. }), "{error}");
    let shown = error.to_string();
    assert!(shown.contains("ca_file: is not a PEM bundle") || shown.contains("ca_file: holds no PEM"), "{shown}");
    assert!(!shown.contains("S3cr3t") && !shown.contains("not-a-bundle.pem"), "{shown}");
}

#[tokio::test]
async fn https_goes_through_a_proxy_that_wants_the_password_in_its_url_and_the_password_is_never_shown() {
    let (idp, _dir, ca_file) = tls_idp().await;
    let password = "S3cr3t-proxy-pw";
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("me:{password}")));
    let proxy = TestProxy::start_with_auth(Some(expected.clone())).await.unwrap();
    let proxy_url = |password: &str| format!("http://me:{password}@{}", proxy.addr());
    let settings = |password: &str| {
        with_transport(TransportSettings {
            proxy: Some(proxy_url(password)),
            ca_file: Some(ca_file.clone()),
            ..TransportSettings::default()
        })
    };
    let session = Session::builder("alice", alice(&idp.issuer())).settings(settings(password)).build();
    session.authorization_header().await.unwrap();
    let log = proxy.log();
    let authority = idp.issuer().trim_start_matches("https://").to_owned();
    // One tunnel per connection (discovery and token may share one).
    assert!(!log.is_empty() && log.iter().all(|e| e.method == "CONNECT" && e.target == authority), "{log:?}");
    assert!(log.iter().all(|e| e.proxy_authorization.as_deref() == Some(expected.as_str()) && e.forwarded));
    assert_eq!(idp.stats().token_requests, 1);
    assert!(!format!("{:?}", settings(password)).contains(password), "Debug hides the proxy password");

    // A wrong password: the proxy refuses, and the error does not repeat either password.
    let wrong = "Wr0ng-pw-value";
    let error = Session::builder("alice", alice(&idp.issuer()))
        .settings(settings(wrong))
        .build()
        .authorization_header()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(wrong) && !shown.contains(password), "{shown}");
    assert_eq!(idp.stats().token_requests, 1, "nothing reached the IdP");
}

#[tokio::test]
async fn allow_insecure_http_lets_a_non_loopback_http_url_through_and_only_then() {
    // `idp.test` resolves nowhere; the proxy sends every host to 127.0.0.1 on the named port, so the
    // request leaves tessera as plain HTTP to a non-loopback name and still never leaves the machine.
    let idp = idp(Duration::from_secs(60)).await;
    let proxy = TestProxy::start().await.unwrap();
    let token_endpoint = format!("http://idp.test:{}/token", idp.addr().port());
    let config = ProviderConfig { endpoints: tessera::Endpoints::explicit(token_endpoint.clone()), ..machine("") };
    let transport = |allow| TransportSettings {
        proxy: Some(proxy.url()),
        allow_insecure_http: allow,
        ..TransportSettings::default()
    };

    let error = Session::builder("m", config.clone())
        .settings(with_transport(transport(false)))
        .build()
        .authorization_header()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::InvalidUrl, .. }), "{error}");
    assert!(error.to_string().contains("allow_insecure_http"), "{error}");
    assert_eq!(proxy.log(), [], "refused before anything was sent");

    let session = Session::builder("m", config).settings(with_transport(transport(true))).build();
    let header = session.authorization_header().await.unwrap();
    assert_eq!(whoami(&idp, header.expose_secret()).await, 200);
    assert_eq!(targets(&proxy.log()), [format!("POST {token_endpoint}")]);
}

#[tokio::test]
async fn the_toml_fields_reach_the_transport() {
    let (idp, dir, ca_file) = tls_idp().await;
    let proxy = TestProxy::start().await.unwrap();
    let plain = tessera_idp::IdpServer::start(IdpConfig::demo()).await.unwrap();
    let text = format!(
        r#"
[[contexts]]
name = "dev"

[[contexts.auth_providers]]
name = "tls"
type = "password"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{client_secret}"
username = "alice"
password = "alice-password"
ca_file = "{ca_file}"
proxy = "{proxy}"
timeout = 5
user_agent = "my-app/1.0"

[[contexts.auth_providers]]
name = "insecure"
type = "client_credentials"
token_endpoint = "http://idp.test:{plain_port}/token"
client_id = "{client_id}"
client_secret = "{client_secret}"
proxy = "{proxy}"
allow_insecure_http = true
user_agent = "my-app/2.0 (ci)"
"#,
        issuer = idp.issuer(),
        client_id = tessera_idp::demo::CONFIDENTIAL_CLIENT_ID,
        client_secret = tessera_idp::demo::CONFIDENTIAL_CLIENT_SECRET,
        ca_file = ca_file.display(),
        proxy = proxy.url(),
        plain_port = plain.addr().port(),
    );
    let registry = Registry::default();
    let config = registry.parse_config(&text, "http_client.toml").unwrap();
    let client = AuthClient::from_config(&registry, &config, None, Arc::new(MemoryStore::new())).unwrap();
    for name in ["tls", "insecure"] {
        let source = client.provider(name).unwrap().as_token_source().unwrap();
        source.token(Duration::ZERO).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let authority = idp.issuer().trim_start_matches("https://").to_owned();
    let log = targets(&proxy.log());
    assert!(log.contains(&format!("CONNECT {authority}")), "{log:?}");
    assert!(log.contains(&format!("POST http://idp.test:{}/token", plain.addr().port())), "{log:?}");
    let plain_request = proxy.log().into_iter().find(|e| e.method == "POST").unwrap();
    assert_eq!(plain_request.user_agent.as_deref(), Some("my-app/2.0 (ci)"));
    assert_eq!(idp.stats().token_requests, 1);
    assert_eq!(plain.stats().token_requests, 1);
    drop(dir);
}

#[test]
fn the_description_maps_onto_transport_settings() {
    let spec = tessera::core::provider_spec::TransportSpec {
        ca_file: Some("~/corp/ca.pem".into()),
        timeout_secs: Some(3),
        user_agent: Some("app/2".into()),
        ..Default::default()
    };
    let settings = TransportSettings::from_spec(&spec);
    assert_eq!(settings.timeout, Duration::from_secs(3));
    assert_eq!(settings.connect_timeout, Duration::from_secs(3), "connecting never outlasts the whole limit");
    assert_eq!(settings.user_agent, "app/2");
    let home = std::env::var("HOME").unwrap();
    assert_eq!(settings.ca_file, Some(std::path::Path::new(&home).join("corp/ca.pem")));
    let defaults = TransportSettings::from_spec(&Default::default());
    assert_eq!((defaults.timeout, defaults.connect_timeout), (Duration::from_secs(30), Duration::from_secs(10)));
    assert!(!defaults.allow_insecure_http && defaults.proxy.is_none() && defaults.ca_file.is_none());
}

#[tokio::test]
async fn an_application_client_built_from_client_builder_carries_the_roots() {
    let (idp, _dir, ca_file) = tls_idp().await;
    let settings = TransportSettings { ca_file: Some(ca_file), ..TransportSettings::default() };
    let client = tessera::transport::client_builder(&settings).unwrap().build().unwrap();
    let session = Session::builder("alice", alice(&idp.issuer())).http_client(client).build();
    session.authorization_header().await.unwrap();
    assert_eq!(idp.stats().token_requests, 1);
}
