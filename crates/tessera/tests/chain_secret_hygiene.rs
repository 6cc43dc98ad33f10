//! Token chains leave no secret in logs (TRACE), Debug or Display output, or errors. Its own test
//! binary: it installs a global tracing subscriber.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::chain::{client, http_chain};
use support::idp;
use tessera::chain::DomainClient;
use tessera_idp::demo;

#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_chain_token_reaches_logs_debug_output_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    // The only test of this binary, so a global subscriber: a thread-local one races with
    // callsites registered by tests on other threads (tracing caches their interest).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = idp(Duration::from_secs(300)).await;
    let client = client(&server);
    let alpha = client.get_domain_access("alpha").await.unwrap();
    server.chain().revoke_discovery_tokens();
    server.chain().revoke_domain_tokens("alpha");
    let renewed = client.handle_unauthorized(&alpha).await.unwrap();
    let network = client.authenticate().await.unwrap();
    let discovery = client.authenticate_discovery().await.unwrap();
    let unknown = client.get_domain_access("omega").await.unwrap_err();
    let state = client.state();
    let broken = DomainClient::from_state(&client.save_state().unwrap()[..60], http_chain(&server)).unwrap_err();

    let mut secrets = vec![demo::ALICE_PASSWORD.to_owned(), demo::CONFIDENTIAL_CLIENT_SECRET.to_owned()];
    for token in [&alpha.access_token, &renewed.access_token, &network.access_token, &discovery.access_token] {
        secrets.push(token.expose_secret().to_owned());
    }
    secrets.extend(network.refresh_token.iter().map(|t| t.expose_secret().to_owned()));
    let formatted = format!(
        "{client:?} {alpha:?} {renewed:?} {network:?} {discovery:?} {unknown:?} {unknown} {state:?} {broken:?} {broken}"
    );
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("deriving a domain token"), "the capture sees the chain's logs");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        assert!(!formatted.contains(secret.as_str()), "a secret reached Debug/Display output");
    }
}
