//! Chain state export and import: `save_state()` → JSON with every stage's tokens and the cached
//! domain accesses but no credential; `from_state(json, chain)` + `set_credentials(...)` resumes
//! without a single request while the tokens are valid, and refreshes (not logs in) after expiry.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use support::{alice, http_client, idp};
use tessera::chain::{ChainConfig, ChainState, DomainAccess, DomainClient, DomainServer, Stage};
use tessera::clock::{ManualClock, system_now};
use tessera::{Error, Secret, Session, Timestamp, TokenSet};
use tessera_idp::{IdpServer, demo};

fn http_chain(server: &IdpServer) -> ChainConfig {
    ChainConfig::new(
        Stage::http_post(server.url("/chain/discovery")),
        Stage::http_post(server.url("/chain/domains/{domain_id}/access")),
    )
}

async fn use_domain(access: &DomainAccess) -> u16 {
    http_client()
        .get(format!("{}/resource", access.domain_server.url))
        .header("authorization", access.authorization_value().expose_secret())
        .send()
        .await
        .expect("the resource answers")
        .status()
        .as_u16()
}

/// Every request the chain can cause at the IdP.
fn requests(server: &IdpServer) -> u64 {
    let stats = server.stats();
    stats.token_requests
        + stats.chain_discovery_requests
        + stats.chain_domain_access_requests
        + stats.discovery_requests
}

#[tokio::test]
async fn export_drop_import_serves_without_a_request_then_refreshes_after_expiry() {
    let server = idp(Duration::from_secs(300)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder("network", alice(&server.issuer())).clock(clock.clone()).build();
    let client = DomainClient::builder(http_chain(&server)).network(session).clock(clock.clone()).build();
    let alpha = client.get_domain_access("alpha").await.unwrap();
    let beta = client.get_domain_access("beta").await.unwrap();
    let json = client.save_state().unwrap();
    drop(client);

    // Tokens, never credentials.
    let document: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(document["version"], 1);
    assert!(document["network"]["refresh_token"].is_string(), "the network refresh token is kept");
    assert!(document["discovery"]["access_token"].is_string());
    assert_eq!(document["domains"]["alpha"]["domain_server"]["url"], server.url("/chain/domains/alpha"));
    for secret in [demo::ALICE_PASSWORD, demo::CONFIDENTIAL_CLIENT_SECRET, demo::BOB_TOTP_SECRET] {
        assert!(!json.contains(secret), "the exported state contains {secret:?}");
    }

    let before = requests(&server);
    let restored = DomainClient::builder(http_chain(&server)).state(&json).unwrap().clock(clock.clone()).build();
    assert_eq!(restored.cached_domain_access("alpha").unwrap().access_token, alpha.access_token);
    let again = restored.get_domain_access("beta").await.unwrap();
    assert_eq!(again.access_token, beta.access_token);
    assert_eq!(use_domain(&again).await, 200, "the imported token still works at the domain");
    // A new domain needs only the imported (valid) discovery token.
    restored.get_domain_access("gamma").await.unwrap();
    assert_eq!(requests(&server), before + 1, "only gamma's access request");

    // Credentials given again: the imported network token is adopted, not replaced.
    restored.set_credentials(alice(&server.issuer())).await.unwrap();
    let network = restored.authenticate().await.unwrap();
    assert_eq!(Some(network.clone()), ChainState::from_json(&json).unwrap().network);
    assert_eq!(requests(&server), before + 1, "no request while every token is valid");

    // After every token expired: the network session refreshes (no password login), then discovery
    // and the domain are re-derived.
    clock.advance(Duration::from_secs(301));
    let (password_before, refresh_before) = (server.stats().password_grants, server.stats().refresh_grants);
    let renewed = restored.get_domain_access("alpha").await.unwrap();
    assert_ne!(renewed.access_token, alpha.access_token);
    assert_eq!(use_domain(&renewed).await, 200);
    let stats = server.stats();
    assert_eq!((stats.password_grants, stats.refresh_grants), (password_before, refresh_before + 1));
}

#[tokio::test]
async fn expired_import_without_credentials_asks_for_them() {
    let server = idp(Duration::from_secs(300)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder("network", alice(&server.issuer())).clock(clock.clone()).build();
    let client = DomainClient::builder(http_chain(&server)).network(session).clock(clock.clone()).build();
    client.get_domain_access("alpha").await.unwrap();
    let json = client.save_state().unwrap();
    clock.advance(Duration::from_secs(400));
    let restored = DomainClient::builder(http_chain(&server)).state(&json).unwrap().clock(clock).build();
    assert!(restored.cached_domain_access("alpha").is_none(), "expired accesses are not served");
    let error = restored.get_domain_access("alpha").await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error}");
}

#[test]
fn unknown_versions_and_malformed_documents_are_refused_clearly() {
    let chain =
        ChainConfig::new(Stage::http_post("https://a.example/d"), Stage::http_post("https://a.example/{domain_id}"));
    for (json, expected) in [
        (r#"{"version":2,"network":null,"discovery":null,"domains":{}}"#, "version 2 is not supported"),
        (r#"{"version":"1"}"#, "version that is not a number is not supported"),
        (r#"{"network":null}"#, "no `version`"),
        (r#"{"version":1,"domains":{"a":{"id":5}}}"#, "unexpected shape"),
        (r#"{"version":1,"network":{"access_token":"zz-secret-zz""#, "truncated"),
        ("not json", "syntax error"),
    ] {
        let error = DomainClient::from_state(json, chain.clone()).unwrap_err();
        let Error::Configuration { message } = &error else { panic!("{json}: {error:?}") };
        assert!(message.contains(expected), "{json}: {message}");
        assert!(!message.contains("zz-secret"), "{message}");
    }
}

fn token_set() -> impl Strategy<Value = TokenSet> {
    (
        "[A-Za-z0-9._~+/=-]{1,40}",
        proptest::option::of("[A-Za-z0-9]{1,20}"),
        proptest::option::of(0i64..4_000_000_000_000),
        0i64..4_000_000_000_000,
        proptest::option::of("[a-z: ]{0,20}"),
    )
        .prop_map(|(access, refresh, expires, issued, scope)| TokenSet {
            refresh_token: refresh.map(Secret::new),
            scope,
            ..TokenSet::bearer(access, expires.map(Timestamp::from_unix_millis), Timestamp::from_unix_millis(issued))
        })
}

fn domain_access() -> impl Strategy<Value = DomainAccess> {
    (
        "[a-z0-9-]{1,12}",
        "\\PC{0,20}",
        "https://[a-z]{1,10}\\.example/[a-z]{0,8}",
        proptest::collection::btree_map("[a-z]{1,6}", "\\PC{0,10}", 0..3),
        token_set(),
    )
        .prop_map(|(id, name, url, extra, tokens)| DomainAccess {
            id,
            name,
            domain_server: DomainServer {
                url,
                extra: extra.into_iter().map(|(k, v)| (format!("x_{k}"), serde_json::Value::String(v))).collect(),
            },
            access_token: tokens.access_token,
            token_type: tokens.token_type,
            expires_at: tokens.expires_at,
            issued_at: tokens.issued_at,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any state survives export and import unchanged, through the document and through a client.
    #[test]
    fn state_round_trips(
        network in proptest::option::of(token_set()),
        discovery in proptest::option::of(token_set()),
        accesses in proptest::collection::vec(domain_access(), 0..5),
    ) {
        let domains: BTreeMap<String, DomainAccess> = accesses.into_iter().map(|a| (a.id.clone(), a)).collect();
        let state = ChainState { network, discovery, domains };
        let json = state.to_json().unwrap();
        prop_assert_eq!(&ChainState::from_json(&json).unwrap(), &state);
        let chain = ChainConfig::new(Stage::http_post("https://a.example/d"), Stage::http_post("https://a.example/{domain_id}"));
        let client = DomainClient::from_state(&json, chain).unwrap();
        prop_assert_eq!(client.state(), state);
        prop_assert_eq!(client.save_state().unwrap(), json);
    }
}

#[tokio::test]
async fn a_failed_early_rederivation_keeps_serving_the_still_valid_token() {
    // Network tokens live 40 s, discovery tokens 60 s: 45 s later the imported network token has
    // expired while the discovery token is valid but inside its refresh threshold.
    let server = idp(Duration::from_secs(40)).await;
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder("network", alice(&server.issuer())).clock(clock.clone()).build();
    let client = DomainClient::builder(http_chain(&server)).network(session).clock(clock.clone()).build();
    client.get_domain_access("alpha").await.unwrap();
    let discovery = client.authenticate_discovery().await.unwrap();
    let json = client.save_state().unwrap();

    clock.advance(Duration::from_secs(45));
    let restored = DomainClient::builder(http_chain(&server)).state(&json).unwrap().clock(clock.clone()).build();
    // Re-deriving discovery needs the (expired) network token and there are no credentials: the
    // early re-derivation fails, and the valid discovery token keeps serving.
    assert_eq!(restored.authenticate_discovery().await.unwrap().access_token, discovery.access_token);
    let beta = restored.get_domain_access("beta").await.unwrap();
    assert_eq!(use_domain(&beta).await, 200);
    // Once it has expired, the failure is the caller's.
    clock.advance(Duration::from_secs(16));
    let error = restored.authenticate_discovery().await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error}");
}
