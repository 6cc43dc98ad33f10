//! Token chains leave no secret in logs (TRACE), Debug or Display output, or errors. Its own test
//! binary: it installs a global tracing subscriber.

mod support;

use std::time::Duration;

use support::chain::{client, http_chain};
use support::idp;
use tessera::chain::DomainClient;
use tessera_idp::demo;

#[tokio::test]
async fn no_chain_token_reaches_logs_debug_output_or_errors() {
    // The only test of this binary: the capture is the global subscriber (support/logs.rs).
    let capture = support::logs::LogCapture::install(tracing::Level::TRACE);

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
    let logs = capture.text();
    assert!(logs.contains("deriving a domain token"), "the capture sees the chain's logs");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        assert!(!formatted.contains(secret.as_str()), "a secret reached Debug/Display output");
    }
}
