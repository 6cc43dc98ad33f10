//! The chain endpoints (network token → discovery token → per-domain access token → resource) and
//! RFC 8693 token exchange at `/token`, over HTTP.

mod common;

use std::time::Duration;

use common::{Harness, json, start, str_field};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;
use tessera_idp::{ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE, demo};

async fn discovery_token(h: &Harness, network: &str) -> (StatusCode, Value) {
    json(h.http.post(h.url("/chain/discovery")).bearer_auth(network).send().await.unwrap()).await
}

async fn domain_access(h: &Harness, discovery: &str, domain: &str) -> (StatusCode, Value) {
    let url = h.url(&format!("/chain/domains/{domain}/access"));
    json(h.http.post(url).bearer_auth(discovery).send().await.unwrap()).await
}

fn exchange<'a>(subject: &'a str, kind: &'a str, scope: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut form =
        vec![("grant_type", TOKEN_EXCHANGE_GRANT_TYPE), ("subject_token", subject), ("subject_token_type", kind)];
    form.extend(scope.map(|s| ("scope", s)));
    form
}

async fn resource(h: &Harness, token: &str, domain: &str) -> reqwest::Response {
    h.http.get(h.url(&format!("/chain/domains/{domain}/resource"))).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn network_token_buys_discovery_which_buys_domain_access_for_that_domain_only() {
    let h = start().await;
    let network = h.alice_tokens().await;
    let (status, discovery) = discovery_token(&h, str_field(&network, "access_token")).await;
    assert_eq!(status, StatusCode::OK, "{discovery}");
    assert_eq!(discovery["expires_in"], 60);
    let discovery = str_field(&discovery, "access_token").to_owned();

    let (status, list) = json(h.http.get(h.url("/chain/domains")).bearer_auth(&discovery).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["domains"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alpha", "beta", "gamma", "delta"]);

    let (status, alpha) = domain_access(&h, &discovery, "alpha").await;
    assert_eq!(status, StatusCode::OK, "{alpha}");
    assert_eq!(alpha["id"], "alpha");
    assert_eq!(alpha["name"], "Alpha Domain");
    assert_eq!(alpha["domain_server"]["url"], h.url("/chain/domains/alpha"));
    assert_eq!(alpha["expires_in"], 300);
    let alpha_token = str_field(&alpha, "access_token");

    let ok = resource(&h, alpha_token, "alpha").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let (_, body) = json(ok).await;
    assert_eq!((body["domain"].as_str(), body["sub"].as_str()), (Some("alpha"), Some(demo::ALICE_USERNAME)));

    // A token of one stage is no good at another, nor for another domain.
    for (token, domain) in [(alpha_token, "beta"), (discovery.as_str(), "alpha")] {
        let refused = resource(&h, token, domain).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers()[WWW_AUTHENTICATE].to_str().unwrap().contains("invalid_token"));
    }
    assert_eq!(domain_access(&h, alpha_token, "beta").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(discovery_token(&h, &discovery).await.0, StatusCode::UNAUTHORIZED);
    let (status, unknown) = domain_access(&h, &discovery, "omega").await;
    assert_eq!((status, unknown["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_domain")));

    let stats = h.server.stats();
    assert_eq!(stats.chain_discovery_requests, 2);
    assert_eq!(stats.chain_domain_list_requests, 1);
    assert_eq!(stats.chain_domain_access_requests, 3);
    assert_eq!(stats.chain_resource_requests, 3);
}

#[tokio::test]
async fn hooks_revoke_and_shorten_chain_tokens() {
    let h = start().await;
    let chain = h.server.chain();
    chain.set_discovery_ttl(Duration::from_secs(1));
    let network = h.alice_tokens().await;
    let (_, discovery) = discovery_token(&h, str_field(&network, "access_token")).await;
    assert_eq!(discovery["expires_in"], 1);
    let discovery = str_field(&discovery, "access_token").to_owned();
    let (_, alpha) = domain_access(&h, &discovery, "alpha").await;
    let alpha = str_field(&alpha, "access_token").to_owned();

    assert_eq!(chain.revoke_domain_tokens("beta"), 0);
    assert_eq!(chain.revoke_domain_tokens("alpha"), 1);
    assert_eq!(resource(&h, &alpha, "alpha").await.status(), StatusCode::UNAUTHORIZED);
    // The discovery token survives a domain revocation, and expires with the server's clock.
    assert_eq!(domain_access(&h, &discovery, "beta").await.0, StatusCode::OK);
    h.server.set_clock_offset(2);
    assert_eq!(domain_access(&h, &discovery, "beta").await.0, StatusCode::UNAUTHORIZED);
    h.server.set_clock_offset(0);
    assert_eq!(chain.revoke_discovery_tokens(), 1);
    assert_eq!(domain_access(&h, &discovery, "beta").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(chain.domains().len(), 4);
}

#[tokio::test]
async fn rfc8693_exchange_issues_an_access_token_for_the_audience() {
    let h = start().await;
    let network = h.alice_tokens().await;
    let subject = str_field(&network, "access_token");
    let (status, exchanged) = h
        .token(&[
            ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "https://domain.example/alpha"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{exchanged}");
    assert_eq!(exchanged["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(exchanged["token_type"], "Bearer");
    assert!(exchanged.get("refresh_token").is_none());
    let token = str_field(&exchanged, "access_token");
    assert_ne!(token, subject);
    let introspected = h.introspect(token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["aud"], "https://domain.example/alpha");
    assert_eq!(introspected["sub"], demo::ALICE_USERNAME);
    assert_eq!(h.whoami(token).await.status(), StatusCode::OK);
    assert_eq!(h.server.stats().token_exchange_grants, 1);

    // Refusals: inactive subject, wrong subject type, wider scope, public client.
    let (status, body) = h.token(&exchange("not-a-token", ACCESS_TOKEN_TYPE, None)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, body) = h.token(&exchange(subject, "urn:ietf:params:oauth:token-type:id_token", None)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    // An access token is no CI token (crate::ci), whatever type it is sent as.
    let (status, body) = h.token(&exchange(subject, "urn:ietf:params:oauth:token-type:jwt", None)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let mut bad_resource = exchange(subject, ACCESS_TOKEN_TYPE, None);
    bad_resource.push(("resource", "not a uri"));
    let (status, body) = h.token(&bad_resource).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
    let (status, body) = h.token(&exchange(subject, ACCESS_TOKEN_TYPE, Some("openid admin"))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
    let public = h
        .http
        .post(h.url("/token"))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
            ("client_id", demo::PUBLIC_CLIENT_ID),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(public).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));
    // A confidential client registered at runtime (open registration) does not have the grant:
    // registering is not a way to exchange tokens.
    let registered = h
        .http
        .post(h.url("/register"))
        .json(&serde_json::json!({"grant_types": ["client_credentials"], "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic"}))
        .send()
        .await
        .unwrap();
    let (status, registered) = json(registered).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let stranger = h
        .http
        .post(h.url("/token"))
        .basic_auth(str_field(&registered, "client_id"), Some(str_field(&registered, "client_secret")))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(stranger).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")), "{body}");
    assert_eq!(h.server.stats().token_exchange_grants, 1);
}
