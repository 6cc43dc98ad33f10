//! Revocation (RFC 7009), introspection (RFC 7662), `/userinfo` and `/api/whoami`.

mod common;

use common::{json, start, str_field};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use tessera_idp::demo;

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let h = start().await;
    let tokens = h.alice_tokens().await;
    let (refresh, access) = (str_field(&tokens, "refresh_token"), str_field(&tokens, "access_token"));
    let active = h.introspect(refresh).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "refresh_token");
    assert_eq!(active["username"], demo::ALICE_USERNAME);
    assert_eq!(active["client_id"], demo::CONFIDENTIAL_CLIENT_ID);

    let response = h
        .confidential_post("/revoke")
        .form(&[("token", refresh), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(h.introspect(refresh).await, serde_json::json!({"active": false}));
    assert_eq!(h.introspect(access).await["active"], false);
    let (status, body) = h.refresh(refresh).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()));
    let stats = h.server.stats();
    assert_eq!((stats.revocations, stats.introspections), (1, 3));
}

#[tokio::test]
async fn revoking_an_access_token_makes_it_inactive_and_unusable() {
    let h = start().await;
    let tokens = h.alice_tokens().await;
    let access = str_field(&tokens, "access_token");
    let before = h.introspect(access).await;
    assert_eq!(before["active"], true);
    assert_eq!(before["sub"], demo::ALICE_USERNAME);
    assert_eq!(before["scope"], "openid");
    assert_eq!(before["token_type"], "Bearer");
    assert!(before["exp"].as_u64().unwrap() > before["iat"].as_u64().unwrap());

    let response = h.confidential_post("/revoke").form(&[("token", access)]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(h.introspect(access).await["active"], false);
    assert_eq!(h.whoami(access).await.status(), StatusCode::UNAUTHORIZED);
    // The refresh token is a different token: still usable.
    assert_eq!(h.refresh(str_field(&tokens, "refresh_token")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn revocation_of_unknown_tokens_is_200_and_needs_client_auth() {
    let h = start().await;
    let response = h.confidential_post("/revoke").form(&[("token", "never-issued")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (status, body) =
        json(h.http.post(h.url("/revoke")).form(&[("token", "never-issued")]).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::UNAUTHORIZED, &"invalid_client".into()));
    assert_eq!(h.server.stats().revocations, 2);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_refresh_token() {
    let h = start().await;
    let tokens = h.alice_tokens().await;
    let refresh = str_field(&tokens, "refresh_token");
    let response = h
        .http
        .post(h.url("/revoke"))
        .form(&[("token", refresh), ("client_id", demo::PUBLIC_CLIENT_ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(h.introspect(refresh).await["active"], true);
}

#[tokio::test]
async fn introspection_requires_client_auth_and_reports_garbage_inactive() {
    let h = start().await;
    let (status, body) = json(h.http.post(h.url("/introspect")).form(&[("token", "x")]).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::UNAUTHORIZED, &"invalid_client".into()));

    assert_eq!(h.introspect("not-a-token").await["active"], false);
    assert_eq!(h.introspect("a.b.c").await["active"], false);
    assert_eq!(h.server.stats().introspections, 3);
}

#[tokio::test]
async fn whoami_and_userinfo_need_a_valid_bearer_token() {
    let h = start().await;

    let missing = h.http.get(h.url("/api/whoami")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let challenge = missing.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");

    let garbage = h.whoami("garbage").await;
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    let challenge = garbage.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer"));
    assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
    assert_eq!(json(garbage).await.1["error"], "invalid_token");

    let tokens = h.alice_tokens().await;
    let access = str_field(&tokens, "access_token");
    let (status, me) = json(h.whoami(access).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        serde_json::json!({
            "sub": demo::ALICE_USERNAME,
            "client_id": demo::CONFIDENTIAL_CLIENT_ID,
            "scope": "openid",
        })
    );

    let (status, info) = json(h.http.get(h.url("/userinfo")).bearer_auth(access).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], demo::ALICE_USERNAME);
    assert_eq!(info["email"], demo::ALICE_EMAIL);
    assert_eq!(info["admin"], true);

    let userinfo_without_token = h.http.get(h.url("/userinfo")).send().await.unwrap();
    assert_eq!(userinfo_without_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h.server.stats().api_requests, 5);
}
