//! DPoP (RFC 9449) against a third-party server: panva's `oidc-provider` (8.8.1,
//! `interop/oidc-provider`) with `features.dPoP`, nonces required of every request that carries a
//! proof, and a public client (`dpop-client`) whose tokens must be DPoP-bound. The server checks
//! each proof (signature with the embedded key, `typ`, `htm`, `htu`, `iat`, `jti` replay, `nonce`,
//! `ath`) and counts proofs and `use_dpop_nonce` answers per route (`GET /_stats`).
//!
//! Needs `node` and `npm ci` in `interop/oidc-provider` (see its README).

mod support;

use std::sync::Arc;

use support::oidc_provider::*;
use tessera::store::{MemoryStore, TokenStore};
use tessera::{ClientAuth, DpopSettings, Endpoints, Error, Grant, ProviderConfig, Secret, Session};

fn dpop_alice(op: &OidcProvider, dpop: DpopSettings) -> ProviderConfig {
    let mut client = ClientAuth::public(DPOP_CLIENT_ID);
    client.dpop = Some(dpop);
    ProviderConfig {
        client,
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid api:read offline_access".into()),
        grant: Grant::Password { username: ALICE.into(), password: Secret::new(ALICE_PASSWORD), totp: None },
    }
}

/// GET the UserInfo endpoint with these headers: (status, body or `WWW-Authenticate`, `DPoP-Nonce`).
async fn userinfo(op: &OidcProvider, headers: &[(&str, &str)]) -> (u16, String, Option<String>) {
    let mut request = op.http_client().get(op.userinfo_endpoint());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (challenge, nonce) = (header("www-authenticate"), header("dpop-nonce"));
    let body = response.text().await.unwrap();
    (status, if status == 200 { body } else { challenge.unwrap_or(body) }, nonce)
}

/// One UserInfo call the way an adapter makes it: a proof per request, one retry on `use_dpop_nonce`.
async fn userinfo_with_tessera(op: &OidcProvider, session: &Session) -> (u16, String) {
    let url = op.userinfo_endpoint();
    for _ in 0..2 {
        let auth = session.request_auth("GET", &url).await.unwrap();
        let proof = auth.dpop.as_ref().expect("a DPoP provider makes a proof").expose_secret().to_owned();
        let (status, body, nonce) =
            userinfo(op, &[("authorization", auth.authorization.expose_secret()), ("dpop", &proof)]).await;
        if !session.observe_dpop_response(&url, status, Some(&body), nonce.as_deref()) {
            return (status, body);
        }
    }
    panic!("use_dpop_nonce twice")
}

#[tokio::test]
async fn a_dpop_bound_token_is_refused_without_a_proof_and_accepted_with_tesseras() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let session = Session::builder("dpop", dpop_alice(&op, DpopSettings::generated())).build();
    let header = session.authorization_header().await.unwrap();
    let tokens = header.tokens().clone();
    assert_eq!(tokens.token_type, "DPoP");
    assert!(header.expose_secret().starts_with("DPoP "), "the Authorization scheme is DPoP");
    assert!(tokens.dpop_key.is_some(), "the generated key is kept with the tokens it binds");

    // The token is bound to tessera's key.
    let jkt = session.dpop_jkt(&header).unwrap().unwrap();
    let introspection = op.introspect(tokens.access_token.expose_secret()).await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["cnf"]["jkt"].as_str(), Some(jkt.as_str()), "{introspection}");

    // The server asked for a nonce once at the token endpoint; tessera retried once with it.
    let stats = op.stats().await;
    assert_eq!(stats.dpop_nonce_demands.get("token"), Some(&1), "{stats:?}");
    assert_eq!(stats.dpop_proofs.get("token"), Some(&2), "{stats:?}");
    assert_eq!(stats.grant_type("password"), 2, "{stats:?}");

    // Without a valid proof the token is refused: as a bearer token, as DPoP without a proof,
    // and with a proof made for another URL.
    let at = tokens.access_token.expose_secret();
    let (status, challenge, _) = userinfo(&op, &[("authorization", &format!("Bearer {at}"))]).await;
    assert_eq!(status, 401, "{challenge}");
    let (status, challenge, _) = userinfo(&op, &[("authorization", &format!("DPoP {at}"))]).await;
    assert_eq!(status, 400, "no proof: {challenge}");
    let elsewhere = session.request_auth("GET", &format!("{}/elsewhere", op.issuer())).await.unwrap();
    let (status, challenge, _) = userinfo(
        &op,
        &[("authorization", header.expose_secret()), ("dpop", elsewhere.dpop.as_ref().unwrap().expose_secret())],
    )
    .await;
    assert_eq!(status, 401, "{challenge}");

    // tessera's proof is accepted (after one use_dpop_nonce, answered with the new nonce).
    op.reset_stats().await;
    let (status, body) = userinfo_with_tessera(&op, &session).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""sub":"alice""#), "{body}");
    // The nonce is remembered: the next call needs no retry.
    let (status, _) = userinfo_with_tessera(&op, &session).await;
    assert_eq!(status, 200);
    let stats = op.stats().await;
    assert_eq!(stats.dpop_nonce_demands.get("userinfo"), Some(&1), "{stats:?}");
    assert_eq!(stats.dpop_proofs.get("userinfo"), Some(&3), "{stats:?}");
}

#[tokio::test]
async fn a_dpop_bound_refresh_token_rotates_with_the_stored_key_in_another_process() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let first = Session::builder("dpop", dpop_alice(&op, DpopSettings::generated())).store(Arc::clone(&store)).build();
    let login = first.tokens().await.unwrap();
    let refresh_token = login.refresh_token.clone().expect("offline_access gives a refresh token");
    let stored = store.load("dpop").await.unwrap().expect("saved");
    assert_eq!(stored.dpop_key, login.dpop_key, "the store keeps the key with the tokens");

    // A second process (its own engine, its own would-be key) shares the store: it refreshes with
    // the stored key, as the server demands of a public client's bound refresh token.
    op.reset_stats().await;
    let second = Session::builder("dpop", dpop_alice(&op, DpopSettings::generated())).store(Arc::clone(&store)).build();
    let renewed = second.force_refresh().await.unwrap();
    let renewed_tokens = renewed.tokens();
    assert_ne!(renewed_tokens.access_token, login.access_token);
    assert_ne!(renewed_tokens.refresh_token.as_ref(), Some(&refresh_token), "rotated");
    assert_eq!(renewed_tokens.token_type, "DPoP");
    assert_eq!(renewed_tokens.dpop_key, login.dpop_key);
    let stats = op.stats().await;
    assert_eq!(stats.grant_type("refresh_token"), 2, "one nonce demand, then the refresh: {stats:?}");
    assert_eq!(stats.dpop_nonce_demands.get("token"), Some(&1), "{stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");

    // The renewed token is bound to the same key and works.
    let introspection = op.introspect(renewed_tokens.access_token.expose_secret()).await;
    assert_eq!(introspection["cnf"]["jkt"].as_str(), second.dpop_jkt(&renewed).unwrap().as_deref());
    assert_eq!(
        second.dpop_jkt(&renewed).unwrap(),
        first.dpop_jkt(&first.authorization_header().await.unwrap()).unwrap()
    );
    let (status, body) = userinfo_with_tessera(&op, &second).await;
    assert_eq!(status, 200, "{body}");

    // A proof by another key is refused for that refresh token: the binding is real. (The
    // password grant then logs in again unattended: a new grant, the old one untouched.)
    let stranger = Session::builder("stranger", dpop_alice(&op, DpopSettings::generated())).build();
    let mut foreign = renewed_tokens.clone();
    foreign.dpop_key = None; // the stranger proves with its own generated key
    stranger.store().save("stranger", &foreign).await.unwrap();
    op.reset_stats().await;
    let relogged = stranger.force_refresh().await.unwrap();
    assert_ne!(relogged.tokens().refresh_token, renewed_tokens.refresh_token);
    let stats = op.stats().await;
    assert!(stats.grant_type("refresh_token") >= 1 && stats.grant_type("password") >= 1, "{stats:?}");
    if let Some(log) = op.log_path() {
        assert!(std::fs::read_to_string(log).unwrap().contains("failed jkt verification"));
    }
}

#[tokio::test]
async fn a_user_supplied_key_is_used_and_never_stored() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let key = std::fs::read_to_string(assertion_key_path("ec.pem")).unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let session = Session::builder("dpop", dpop_alice(&op, DpopSettings::with_key(key.clone())))
        .store(Arc::clone(&store))
        .build();
    let header = session.authorization_header().await.unwrap();
    let stored = store.load("dpop").await.unwrap().unwrap();
    assert_eq!(stored.dpop_key, None, "a user's key stays where the user keeps it");
    let expected = tessera::core::DpopProver::from_key(&key, None).unwrap();
    assert_eq!(session.dpop_jkt(&header).unwrap().as_deref(), Some(expected.jkt()));
    let introspection = op.introspect(header.access_token().expose_secret()).await;
    assert_eq!(introspection["cnf"]["jkt"].as_str(), Some(expected.jkt()), "{introspection}");
    let (status, body) = userinfo_with_tessera(&op, &session).await;
    assert_eq!(status, 200, "{body}");
}

/// A reqwest client with tessera's middleware over a DPoP session that is logged in already; the
/// server's counters start from zero.
async fn logged_in_reqwest_client(op: &OidcProvider) -> reqwest_middleware::ClientWithMiddleware {
    let session = Session::builder("dpop", dpop_alice(op, DpopSettings::generated())).build();
    session.authorization_header().await.unwrap();
    op.reset_stats().await;
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(tessera::middleware::AuthMiddleware::new(session))
        .build()
}

#[tokio::test]
async fn the_reqwest_middleware_sends_a_proof_per_request_and_answers_the_nonce_challenge_once() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let client = logged_in_reqwest_client(&op).await;
    for _ in 0..3 {
        let response = client.get(op.userinfo_endpoint()).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""sub":"alice""#), "{body}");
    }
    let stats = op.stats().await;
    // 3 calls: the first met use_dpop_nonce once, then each request carried its own proof.
    assert_eq!(stats.dpop_nonce_demands.get("userinfo"), Some(&1), "{stats:?}");
    assert_eq!(stats.dpop_proofs.get("userinfo"), Some(&4), "{stats:?}");
    assert_eq!(stats.token_requests, 0, "no refresh: {stats:?}");
}

#[tokio::test]
async fn the_tower_layer_sends_a_proof_per_request_and_answers_the_nonce_challenge_once() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tessera::middleware::AuthLayer;
    use tower::{Layer, Service};
    let op = OidcProvider::start(OidcProviderOptions::default());
    let session = Session::builder("dpop", dpop_alice(&op, DpopSettings::generated())).build();
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let mut service = AuthLayer::new(session.clone()).layer(client);
    session.authorization_header().await.unwrap();
    op.reset_stats().await;
    for _ in 0..2 {
        let request = http::Request::get(op.userinfo_endpoint()).body(Full::new(Bytes::new())).unwrap();
        std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        let response = service.call(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{body:?}");
        assert!(String::from_utf8_lossy(&body).contains(r#""sub":"alice""#));
    }
    let stats = op.stats().await;
    assert_eq!(stats.dpop_nonce_demands.get("userinfo"), Some(&1), "{stats:?}");
    assert_eq!(stats.dpop_proofs.get("userinfo"), Some(&3), "{stats:?}");
}

/// A service that sends path-only URIs (as a tonic channel does, the origin being the channel's):
/// the layer signs the full URL from `AuthLayer::origin`; without an origin a DPoP request is a
/// configuration error, sent nowhere (it used to carry a proof for `htu` = the path, which the API
/// refused).
#[tokio::test]
async fn the_tower_layer_signs_the_full_url_of_a_path_only_request() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tessera::middleware::AuthLayer;
    use tower::{Layer, Service};
    let op = OidcProvider::start(OidcProviderOptions::default());
    let session = Session::builder("dpop", dpop_alice(&op, DpopSettings::generated())).build();
    let hyper: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let issuer = op.issuer().to_owned();
    // The channel: it puts its origin in front of the path it is given.
    let channel = tower::service_fn(move |mut request: http::Request<Full<Bytes>>| {
        let mut hyper = hyper.clone();
        let absolute = format!("{issuer}{}", request.uri().path());
        *request.uri_mut() = absolute.parse().unwrap();
        async move { hyper.call(request).await }
    });
    let path = op.userinfo_endpoint().strip_prefix(op.issuer()).unwrap().to_owned();
    let request = || http::Request::get(path.as_str()).body(Full::new(Bytes::new())).unwrap();

    let mut without_origin = AuthLayer::new(session.clone()).layer(channel.clone());
    let error = without_origin.call(request()).await.unwrap_err();
    let error = error.downcast_ref::<Error>().expect("a tessera error");
    assert!(matches!(error, Error::Configuration { .. }) && error.to_string().contains("AuthLayer::origin"), "{error}");
    assert_eq!(op.stats().await.dpop_proofs.get("userinfo"), None, "nothing sent");

    let mut service = AuthLayer::new(session.clone()).origin(&format!("{}/", op.issuer())).unwrap().layer(channel);
    for _ in 0..2 {
        std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        let response = service.call(request()).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{body:?}");
    }
    for bad in ["api.example", "https://api.example/v1", "ftp://api.example", "https://user:pw@api.example"] {
        assert!(AuthLayer::new(session.clone()).origin(bad).is_err(), "{bad}");
    }
}

/// A nonce challenge is not a rejected token: a request whose body cannot be replayed gets the
/// challenge back, the nonce is remembered for the next request, and no refresh is made (it used
/// to refresh a valid token, rotating its refresh token for nothing).
#[tokio::test]
async fn a_nonce_challenge_on_a_streaming_request_is_not_a_reason_to_refresh() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let client = logged_in_reqwest_client(&op).await;
    let stream = futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"")) });
    let response = client
        .post(op.userinfo_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
    assert!(challenge.contains("use_dpop_nonce"), "{challenge}");
    // The next request carries the nonce it was given, and succeeds at once.
    let response = client.get(op.userinfo_endpoint()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stats = op.stats().await;
    assert_eq!(stats.token_requests, 0, "no refresh for a nonce challenge: {stats:?}");
    assert_eq!(stats.dpop_nonce_demands.get("userinfo"), Some(&1), "{stats:?}");
}
