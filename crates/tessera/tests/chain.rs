//! Token chains end to end: a network login (password grant) → discovery token → per-domain
//! access tokens, against the reference IdP's chain endpoints (HTTP-call stages) and its RFC 8693
//! token exchange, and RFC 8693 against oidc-provider. "One request per stage" is asserted with
//! the servers' own counters.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::chain::{client, http_chain};
use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::{alice, http_client, idp, introspect};
use tessera::chain::{ChainConfig, DomainAccess, DomainClient, Stage};
use tessera::clock::{Clock, ManualClock, system_now};
use tessera::core::protocol::TokenExchangeParams;
use tessera::{ClientAuth, Endpoints, Error, Grant, ProviderConfig, Secret, Session};
use tessera_idp::{IdpServer, Stats, demo};

fn client_with_clock(server: &IdpServer, clock: Arc<ManualClock>) -> DomainClient {
    let session = Session::builder("network", alice(&server.issuer())).clock(clock.clone()).build();
    DomainClient::builder(http_chain(server)).network(session).clock(clock).build()
}

/// `GET` the domain's protected resource with its token: the HTTP status.
async fn use_domain(access: &DomainAccess) -> u16 {
    let url = format!("{}/resource", access.domain_server.url);
    let response = http_client()
        .get(url)
        .header("authorization", access.authorization_value().expose_secret())
        .send()
        .await
        .expect("the resource answers");
    response.status().as_u16()
}

/// (password grants, refresh grants, discovery requests, domain access requests)
fn counts(stats: &Stats) -> (u64, u64, u64, u64) {
    (stats.password_grants, stats.refresh_grants, stats.chain_discovery_requests, stats.chain_domain_access_requests)
}

#[tokio::test]
async fn one_network_login_serves_three_domains() {
    let server = idp(Duration::from_secs(300)).await;
    let client = client(&server);
    let mut accesses = Vec::new();
    for id in ["alpha", "beta", "gamma"] {
        let access = client.get_domain_access(id).await.unwrap();
        assert_eq!(access.id, id);
        assert_eq!(access.domain_server.url, server.url(&format!("/chain/domains/{id}")));
        assert!(access.domain_server.extra["region"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(access.name.ends_with("Domain"), "{}", access.name);
        assert!(access.expires_at.is_some());
        accesses.push(access);
    }
    assert_eq!(counts(&server.stats()), (1, 0, 1, 3));
    assert_eq!(server.stats().token_requests, 1, "one network login in all");

    // Each token opens its own domain and no other.
    for access in &accesses {
        assert_eq!(use_domain(access).await, 200, "{}", access.id);
    }
    let mut beta_with_alpha_token = (*accesses[1]).clone();
    beta_with_alpha_token.access_token = accesses[0].access_token.clone();
    assert_eq!(use_domain(&beta_with_alpha_token).await, 401);

    // Cached: no request, and the same token.
    let again = client.get_domain_access("beta").await.unwrap();
    assert_eq!(again.access_token, accesses[1].access_token);
    assert_eq!(client.cached_domain_access("gamma").unwrap().access_token, accesses[2].access_token);
    assert!(client.cached_domain_access("delta").is_none());
    assert_eq!(client.cached_domain_ids(), ["alpha", "beta", "gamma"]);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 3));

    // The stages alone.
    let network = client.authenticate().await.unwrap();
    assert!(introspect(&server, network.access_token.expose_secret()).await);
    let discovery = client.authenticate_discovery().await.unwrap();
    assert_ne!(discovery.access_token, network.access_token);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 3));
    assert!(!format!("{client:?}{:?}", accesses[0]).contains(accesses[0].access_token.expose_secret()));
}

#[tokio::test]
async fn an_expired_discovery_token_is_rederived_from_the_network_token_without_a_login() {
    let server = idp(Duration::from_secs(300)).await; // network and domain tokens: 300 s; discovery: 60 s
    let clock = Arc::new(ManualClock::new(system_now()));
    let client = client_with_clock(&server, clock.clone());
    let alpha = client.get_domain_access("alpha").await.unwrap();
    let first_discovery = client.authenticate_discovery().await.unwrap();
    assert_eq!(counts(&server.stats()), (1, 0, 1, 1));

    clock.advance(Duration::from_secs(61)); // discovery expired; network and alpha still valid
    let beta = client.get_domain_access("beta").await.unwrap();
    assert_eq!(use_domain(&beta).await, 200);
    assert_eq!(counts(&server.stats()), (1, 0, 2, 2), "discovery re-derived, no new login");
    let second_discovery = client.authenticate_discovery().await.unwrap();
    assert_ne!(second_discovery.access_token, first_discovery.access_token);
    // alpha's own token is still fresh: served from the cache.
    assert_eq!(client.get_domain_access("alpha").await.unwrap().access_token, alpha.access_token);

    // Inside the refresh threshold (30 s before expiry) a stage is re-derived early, on its own.
    clock.advance(Duration::from_secs(35));
    client.authenticate_discovery().await.unwrap();
    assert_eq!(counts(&server.stats()), (1, 0, 3, 2));
}

#[tokio::test]
async fn a_401_at_each_stage_recovers_from_the_stage_above() {
    let server = idp(Duration::from_secs(300)).await;
    let client = client(&server);
    let alpha = client.get_domain_access("alpha").await.unwrap();
    client.get_domain_access("beta").await.unwrap();
    assert_eq!(counts(&server.stats()), (1, 0, 1, 2));

    // Domain token refused by the domain's server: re-derived from the (still valid) discovery token.
    assert_eq!(server.chain().revoke_domain_tokens("alpha"), 1);
    assert_eq!(use_domain(&alpha).await, 401);
    let renewed = client.handle_unauthorized(&alpha).await.unwrap();
    assert_ne!(renewed.access_token, alpha.access_token);
    assert_eq!(use_domain(&renewed).await, 200);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 3));
    // A second caller holding the same rejected token gets the replacement without a request.
    assert_eq!(client.handle_unauthorized(&alpha).await.unwrap().access_token, renewed.access_token);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 3));

    // Discovery token refused while deriving a domain: discovery re-derived, domain retried.
    server.chain().revoke_discovery_tokens();
    client.invalidate("beta");
    let beta = client.get_domain_access("beta").await.unwrap();
    assert_eq!(use_domain(&beta).await, 200);
    assert_eq!(counts(&server.stats()), (1, 0, 2, 5), "one refused access request, one new discovery");

    // Network token refused too: only then does the network session refresh (no new password login).
    let network = client.authenticate().await.unwrap();
    let revoked = http_client()
        .post(server.url("/revoke"))
        .basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("token", network.access_token.expose_secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(!introspect(&server, network.access_token.expose_secret()).await);
    server.chain().revoke_discovery_tokens();
    let gamma = client.get_domain_access("gamma").await.unwrap();
    assert_eq!(use_domain(&gamma).await, 200);
    let stats = server.stats();
    assert_eq!((stats.password_grants, stats.refresh_grants), (1, 1));
    assert_eq!((stats.chain_discovery_requests, stats.chain_domain_access_requests), (4, 7));
    assert_ne!(client.authenticate().await.unwrap().access_token, network.access_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_make_one_request_per_stage() {
    let server = idp(Duration::from_secs(300)).await;
    let client = client(&server);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let client = client.clone();
            let id = if i % 2 == 0 { "alpha" } else { "beta" };
            tokio::spawn(
                async move { client.get_domain_access(id).await.map(|a| (a.id.clone(), a.access_token.clone())) },
            )
        })
        .collect();
    let mut tokens = std::collections::HashMap::<String, std::collections::HashSet<String>>::new();
    for task in tasks {
        let (id, token) = tokio::time::timeout(Duration::from_secs(20), task).await.unwrap().unwrap().unwrap();
        tokens.entry(id).or_default().insert(token.expose_secret().to_owned());
    }
    assert_eq!(tokens["alpha"].len(), 1, "every alpha caller got the same token");
    assert_eq!(tokens["beta"].len(), 1);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 2), "one login, one discovery, one access per domain");
    assert_eq!(server.stats().token_requests, 1);
}

#[tokio::test]
async fn bad_domain_ids_and_unknown_domains_are_typed_errors() {
    let server = idp(Duration::from_secs(300)).await;
    let client = client(&server);
    for bad in ["", "../admin", "a b", "x/y"] {
        let error = client.get_domain_access(bad).await.unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{bad:?}: {error}");
    }
    assert_eq!(server.stats().token_requests, 0, "nothing sent for a bad id");
    let error = client.get_domain_access("omega").await.unwrap_err();
    assert!(matches!(&error, Error::OAuth { status: 404, .. }), "{error:?}");
    assert!(client.cached_domain_access("omega").is_none());
    // The chain still works afterwards.
    assert_eq!(use_domain(&client.get_domain_access("delta").await.unwrap()).await, 200);
}

#[tokio::test]
async fn network_without_credentials_is_reauthentication_required() {
    let server = idp(Duration::from_secs(300)).await;
    let client = DomainClient::builder(http_chain(&server)).build();
    let error = client.get_domain_access("alpha").await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error}");
    client.set_credentials(alice(&server.issuer())).await.unwrap();
    assert_eq!(use_domain(&client.get_domain_access("alpha").await.unwrap()).await, 200);
}

fn confidential() -> ClientAuth {
    ClientAuth::basic(demo::CONFIDENTIAL_CLIENT_ID, Secret::new(demo::CONFIDENTIAL_CLIENT_SECRET))
}

#[tokio::test]
async fn rfc8693_exchange_stages_at_the_reference_idp() {
    let server = idp(Duration::from_secs(300)).await;
    let token_endpoint = server.url("/token");
    let chain = ChainConfig::new(
        Stage::token_exchange(&token_endpoint, confidential(), TokenExchangeParams::default().audience("discovery")),
        Stage::token_exchange(
            &token_endpoint,
            confidential(),
            TokenExchangeParams::default().audience("https://domains.example/{domain_id}"),
        ),
    );
    let client = DomainClient::new(Session::builder("network", alice(&server.issuer())).build(), chain);
    let alpha = client.get_domain_access("alpha").await.unwrap();
    let beta = client.get_domain_access("beta").await.unwrap();
    assert_eq!(alpha.domain_server.url, "https://domains.example/alpha");
    let stats = server.stats();
    assert_eq!((stats.password_grants, stats.token_exchange_grants), (1, 3), "one login, one discovery, two domains");
    for (access, audience) in [(&alpha, "https://domains.example/alpha"), (&beta, "https://domains.example/beta")] {
        let body = support::introspection(&server, access.access_token.expose_secret()).await;
        assert_eq!((body["active"].as_bool(), body["aud"].as_str()), (Some(true), Some(audience)), "{body}");
    }

    // A revoked discovery token is answered invalid_grant by the exchange: discovery is re-derived.
    let discovery = client.authenticate_discovery().await.unwrap();
    http_client()
        .post(server.url("/revoke"))
        .basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
        .form(&[("token", discovery.access_token.expose_secret())])
        .send()
        .await
        .unwrap();
    client.invalidate("alpha");
    client.get_domain_access("alpha").await.unwrap();
    let stats = server.stats();
    assert_eq!((stats.password_grants, stats.token_exchange_grants), (1, 5));
    assert_eq!(stats.failed_token_requests, 1, "the refused exchange");
}

#[tokio::test]
async fn rfc8693_exchange_stages_at_oidc_provider() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let network = ProviderConfig {
        client: ClientAuth::basic(
            oidc_provider::CONFIDENTIAL_CLIENT_ID,
            Secret::new(oidc_provider::CONFIDENTIAL_CLIENT_SECRET),
        ),
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid api:read api:write".into()),
        grant: Grant::Password {
            username: oidc_provider::ALICE.into(),
            password: Secret::new(oidc_provider::ALICE_PASSWORD),
            totp: None,
        },
    };
    let exchanger = ClientAuth::basic(
        oidc_provider::CONFIDENTIAL_CLIENT_ID,
        Secret::new(oidc_provider::CONFIDENTIAL_CLIENT_SECRET),
    );
    let chain = ChainConfig::new(
        Stage::token_exchange(
            op.token_endpoint(),
            exchanger.clone(),
            TokenExchangeParams::default().audience("urn:example:discovery").scope("api:read api:write"),
        ),
        Stage::token_exchange(
            op.token_endpoint(),
            exchanger,
            TokenExchangeParams::default().audience("urn:example:domain:{domain_id}").scope("api:read"),
        ),
    );
    let client = DomainClient::new(Session::builder("network", network).build(), chain);
    let accesses: Vec<_> = {
        let mut accesses = Vec::new();
        for id in ["alpha", "beta", "gamma"] {
            accesses.push(client.get_domain_access(id).await.unwrap());
        }
        accesses
    };
    let stats = op.stats().await;
    assert_eq!(stats.grant_type("password"), 1, "{stats:?}");
    assert_eq!(stats.grant_type(tessera::core::protocol::TOKEN_EXCHANGE_GRANT_TYPE), 4, "{stats:?}");
    for access in &accesses {
        let body = op.introspect(access.access_token.expose_secret()).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["aud"], format!("urn:example:domain:{}", access.id), "{body}");
        assert_eq!(body["scope"], "api:read", "{body}");
        assert_eq!(body["sub"], oidc_provider::ALICE, "{body}");
    }
    let discovery = client.authenticate_discovery().await.unwrap();
    assert_eq!(op.introspect(discovery.access_token.expose_secret()).await["aud"], "urn:example:discovery");

    // A subject token oidc-provider does not know is refused with invalid_grant, as RFC 8693 says.
    let clock_now = tessera::clock::SystemClock.now();
    let bogus = DomainClient::builder(ChainConfig::new(
        Stage::token_exchange(
            op.token_endpoint(),
            ClientAuth::basic(oidc_provider::CONFIDENTIAL_CLIENT_ID, Secret::new(oidc_provider::CONFIDENTIAL_CLIENT_SECRET)),
            TokenExchangeParams::default(),
        ),
        Stage::http_post("http://127.0.0.1:9/unused/{domain_id}"),
    ))
    .state(&format!(
        r#"{{"version":1,"network":{{"access_token":"not-a-token","issued_at":{0},"expires_at":{1}}},"discovery":null,"domains":{{}}}}"#,
        clock_now.as_unix_millis(),
        clock_now.as_unix_millis() + 60_000
    ))
    .unwrap()
    .build();
    let error = bogus.authenticate_discovery().await.unwrap_err();
    assert!(error.requires_reauthentication(), "{error:?}");
    assert_eq!(op.stats().await.grant_type(tessera::core::protocol::TOKEN_EXCHANGE_GRANT_TYPE), 5);
}

#[tokio::test]
async fn cached_accesses_are_served_without_requests() {
    const CALLS: u32 = 100_000;
    let server = idp(Duration::from_secs(300)).await;
    let client = client(&server);
    let alpha = client.get_domain_access("alpha").await.unwrap();
    let before = server.stats();
    let started = std::time::Instant::now();
    for _ in 0..CALLS {
        let access = client.get_domain_access("alpha").await.unwrap();
        assert!(Arc::ptr_eq(&access, &alpha));
    }
    let async_path = started.elapsed() / CALLS;
    let started = std::time::Instant::now();
    for _ in 0..CALLS {
        assert!(std::hint::black_box(client.cached_domain_access("alpha")).is_some());
    }
    let sync_path = started.elapsed() / CALLS;
    assert_eq!(server.stats(), before, "no request for cached accesses");
    eprintln!("cached get_domain_access: {async_path:?}/call; cached_domain_access: {sync_path:?}/call");
}

#[tokio::test]
async fn each_stage_is_refreshed_alone_at_its_own_threshold() {
    let server = idp(Duration::from_secs(600)).await;
    server.chain().set_discovery_ttl(Duration::from_secs(300));
    server.chain().set_domain_ttl(Duration::from_secs(60));
    let clock = Arc::new(ManualClock::new(system_now()));
    let session = Session::builder("network", alice(&server.issuer())).clock(clock.clone()).build();
    let chain = http_chain(&server).refresh_threshold(Duration::from_secs(10));
    let client = DomainClient::builder(chain).network(session).clock(clock.clone()).build();
    let first = client.get_domain_access("alpha").await.unwrap();
    assert_eq!(counts(&server.stats()), (1, 0, 1, 1));

    clock.advance(Duration::from_secs(45)); // 15 s left: outside the 10 s threshold
    assert_eq!(client.get_domain_access("alpha").await.unwrap().access_token, first.access_token);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 1));

    clock.advance(Duration::from_secs(7)); // 8 s left: re-derived early, from the cached discovery token
    let second = client.get_domain_access("alpha").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(use_domain(&second).await, 200);
    assert_eq!(counts(&server.stats()), (1, 0, 1, 2), "only the domain stage ran");
}
