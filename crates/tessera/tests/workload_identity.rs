//! Workload identity federation (`type = "workload_identity"`) against panva's oidc-provider
//! (`interop/oidc-provider`): a platform token the workload holds, read from a file, a command or
//! a URL at every login, traded for an access token by RFC 8693 token exchange (the host script's
//! `urn:ietf:params:oauth:grant-type:token-exchange` grant, which accepts the server's own access
//! tokens as subject tokens) or presented as the client assertion of the client credentials grant
//! (Azure workload identity's shape; oidc-provider checks it as a `private_key_jwt` assertion).
//!
//! The platform tokens here are oidc-provider access tokens for alice (standing in for a Kubernetes
//! or CI token), and, for the client assertion, JWTs signed with the test key
//! `testdata/client-assertion/ec.pem`. Needs `node` and `npm ci` in `interop/oidc-provider`.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::oidc_provider::*;
use tessera::registry::Registry;
use tessera::store::MemoryStore;
use tessera::{AuthClient, Error};

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A fresh access token for alice from the confidential client: the "platform token".
async fn platform_token(op: &OidcProvider) -> String {
    let (status, body) = op
        .token_request(&[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid api:read"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn client(provider: &str) -> AuthClient {
    let text = format!("[[contexts]]\nname = \"ci\"\n\n[[contexts.auth_providers]]\nname = \"wi\"\n{provider}");
    let registry = Registry::default();
    let config = registry.parse_config(&text, "workload.toml").unwrap();
    AuthClient::from_config(&registry, &config, None, Arc::new(MemoryStore::new())).unwrap()
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn a_token_file_is_exchanged_and_read_again_after_expiry() {
    // Short-lived tokens: the exchanged token and the platform token expire within the test.
    let op = OidcProvider::start(OidcProviderOptions { access_ttl_secs: 3, ..OidcProviderOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_private(&file, &format!("{}\n", platform_token(&op).await));
    let wi = client(&format!(
        "type = \"workload_identity\"\nissuer = \"{issuer}\"\nclient_id = \"{CONFIDENTIAL_CLIENT_ID}\"\n\
         client_secret = \"{CONFIDENTIAL_CLIENT_SECRET}\"\nsubject_token = \"file:{path}\"\n\
         subject_token_type = \"{ACCESS_TOKEN_TYPE}\"\naudience = \"https://api.example\"\nscope = \"api:read\"\n",
        issuer = op.issuer(),
        path = file.display(),
    ));
    let first = wi.token("wi", Duration::ZERO).await.unwrap();
    let body = op.introspect(first.access_token.expose_secret()).await;
    assert_eq!((body["active"].as_bool(), body["sub"].as_str()), (Some(true), Some(ALICE)), "{body}");
    assert_eq!(body["aud"], "https://api.example", "{body}");
    assert_eq!(body["scope"], "api:read", "{body}");
    assert!(first.refresh_token.is_none());
    // Served from the cache: no second exchange.
    assert_eq!(wi.token("wi", Duration::ZERO).await.unwrap().access_token, first.access_token);
    assert_eq!(op.stats().await.grant_type(TOKEN_EXCHANGE), 1);

    // The platform rotates its token; the old one (and the exchanged token) expire. The next call
    // reads the file again: had it kept the old token, the server would refuse it.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    write_private(&file, &platform_token(&op).await);
    let second = wi.token("wi", Duration::ZERO).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(op.introspect(second.access_token.expose_secret()).await["active"], true);
    let stats = op.stats().await;
    assert_eq!(stats.grant_type(TOKEN_EXCHANGE), 2, "{stats:?}");
}

#[tokio::test]
async fn a_command_prints_the_token_and_failures_name_the_source_not_the_token() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let token = platform_token(&op).await;
    write_private(&file, &token);
    let provider = |subject_token: &str, extra: &str| {
        format!(
            "type = \"workload_identity\"\ntoken_endpoint = \"{endpoint}\"\nclient_id = \"{CONFIDENTIAL_CLIENT_ID}\"\n\
             client_secret = \"{CONFIDENTIAL_CLIENT_SECRET}\"\nsubject_token = '{subject_token}'\n\
             subject_token_type = \"{ACCESS_TOKEN_TYPE}\"\n{extra}",
            endpoint = op.token_endpoint(),
        )
    };
    let exec = client(&provider(&format!("exec:cat {}", file.display()), ""));
    let tokens = exec.token("wi", Duration::ZERO).await.unwrap();
    assert_eq!(op.introspect(tokens.access_token.expose_secret()).await["sub"], ALICE);

    // A command that fails, one that hangs, a file that is missing: configuration errors naming
    // the source; what a command printed is never repeated.
    let cases = [
        (provider(&format!("exec:echo {token}; exit 3"), ""), "exited with status 3"),
        (provider("exec:sleep 30", "subject_token_timeout = 1\n"), "did not finish within 1 s"),
        (provider(&format!("file:{}/missing", dir.path().display()), ""), "cannot be read"),
    ];
    for (description, expected) in cases {
        let started = std::time::Instant::now();
        let error = client(&description).token("wi", Duration::ZERO).await.unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("subject_token: ") && text.contains(expected), "{text}");
        assert!(!text.contains(&token) && !format!("{error:?}").contains(&token), "{text}");
        assert!(started.elapsed() < Duration::from_secs(10), "the timeout holds: {:?}", started.elapsed());
    }
    assert_eq!(op.stats().await.grant_type(TOKEN_EXCHANGE), 1, "failed reads send nothing");
}

#[tokio::test]
async fn a_url_source_with_headers_and_a_json_field() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let token = platform_token(&op).await;
    // A metadata-server-like endpoint on loopback: answers only with the right header.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token?audience=sts", listener.local_addr().unwrap());
    let served = token.clone();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 8192];
            let read = socket.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..read]).to_string();
            let authorized = request.to_ascii_lowercase().contains("\r\nmetadata-flavor: workload\r\n");
            let (status, body) = if authorized {
                ("200 OK", format!("{{\"value\":\"{served}\",\"count\":1}}"))
            } else {
                ("403 Forbidden", "{}".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            seen.push(request.lines().next().unwrap_or_default().to_owned());
        }
        seen
    });
    let provider = |headers: &str| {
        format!(
            "type = \"workload_identity\"\ntoken_endpoint = \"{endpoint}\"\nclient_id = \"{CONFIDENTIAL_CLIENT_ID}\"\n\
             client_secret = \"{CONFIDENTIAL_CLIENT_SECRET}\"\nsubject_token = \"url:{url}\"\n\
             subject_token_field = \"value\"\nsubject_token_headers = {headers}\n\
             subject_token_type = \"{ACCESS_TOKEN_TYPE}\"\n",
            endpoint = op.token_endpoint(),
        )
    };
    let good = client(&provider("{ Metadata-Flavor = \"Workload\" }"));
    let tokens = good.token("wi", Duration::ZERO).await.unwrap();
    assert_eq!(op.introspect(tokens.access_token.expose_secret()).await["sub"], ALICE);
    let refused = client(&provider("{ Metadata-Flavor = \"Other\" }"));
    let error = refused.token("wi", Duration::ZERO).await.unwrap_err();
    assert!(matches!(error, Error::UnexpectedStatus { status: 403, .. }), "{error:?}");
    assert!(!error.to_string().contains("audience=sts"), "no query string in errors: {error}");
    assert_eq!(server.await.unwrap(), ["GET /token?audience=sts HTTP/1.1"; 2]);
}

/// A JWT client assertion for `jwt-client`, signed with the registered test key: the shape of the
/// federated token Azure workload identity presents.
fn federated_jwt(audience: &str, jti: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"iss": JWT_CLIENT_ID, "sub": JWT_CLIENT_ID, "aud": audience, "jti": jti,
        "iat": now, "exp": now + 300});
    let key = std::fs::read(assertion_key_path("ec.pem")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("test-ec".into());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_pem(&key).unwrap()).unwrap()
}

#[tokio::test]
async fn the_token_as_a_client_assertion_for_client_credentials() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    write_private(&file, &federated_jwt(&op.token_endpoint(), "federated-1"));
    let wi = client(&format!(
        "type = \"workload_identity\"\nissuer = \"{issuer}\"\nclient_id = \"{JWT_CLIENT_ID}\"\n\
         subject_token = \"file:{path}\"\nexchange = \"client_assertion\"\nscope = \"api:read\"\n",
        issuer = op.issuer(),
        path = file.display(),
    ));
    let tokens = wi.token("wi", Duration::ZERO).await.unwrap();
    let body = op.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!((body["active"].as_bool(), body["client_id"].as_str()), (Some(true), Some(JWT_CLIENT_ID)), "{body}");
    let stats = op.stats().await;
    assert_eq!(
        (stats.grant_type("client_credentials"), stats.assertion_jtis.as_slice()),
        (1, &["federated-1".to_owned()][..])
    );
}

#[tokio::test]
async fn a_google_external_account_file_is_a_provider() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    write_private(&token_file, &platform_token(&op).await);
    // What `gcloud iam workload-identity-pools create-cred-config` writes, pointed at oidc-provider
    // (its STS client credentials stand in for Google's optional client_id / client_secret).
    let credentials = dir.path().join("external-account.json");
    let json = serde_json::json!({
        "type": "external_account",
        "audience": "https://api.example",
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "token_url": op.token_endpoint(),
        "credential_source": {"file": token_file.display().to_string(), "format": {"type": "text"}},
        "client_id": CONFIDENTIAL_CLIENT_ID,
        "client_secret": CONFIDENTIAL_CLIENT_SECRET,
    });
    write_private(&credentials, &json.to_string());
    let wi = client(&format!(
        "type = \"workload_identity\"\nexternal_account = \"file:{}\"\nscope = \"api:read\"\n",
        credentials.display()
    ));
    let tokens = wi.token("wi", Duration::ZERO).await.unwrap();
    let body = op.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!((body["active"].as_bool(), body["aud"].as_str()), (Some(true), Some("https://api.example")), "{body}");
    assert_eq!(op.stats().await.grant_type(TOKEN_EXCHANGE), 1);
}
