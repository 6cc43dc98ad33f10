//! Discovery, JWKS and the token endpoint: every grant, client authentication, TOTP, refresh
//! rotation and reuse detection.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{bob_totp, json, start, start_with, str_field};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::Value;
use tessera_idp::{IdpConfig, demo};

#[tokio::test]
async fn discovery_document_lists_endpoints() {
    let h = start().await;
    let (status, doc) = json(h.http.get(h.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let issuer = h.server.issuer();
    assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'));
    assert_eq!(issuer, format!("http://{}", h.server.addr()));
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(doc["revocation_endpoint"], format!("{issuer}/revoke"));
    assert_eq!(doc["introspection_endpoint"], format!("{issuer}/introspect"));
    assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "password",
            "refresh_token",
            "client_credentials",
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["EdDSA"]));
    assert_eq!(h.server.stats().discovery_requests, 1);
}

#[tokio::test]
async fn password_grant_for_alice_issues_a_jwt_that_verifies_against_jwks() {
    let h = start().await;
    let response = h
        .confidential_post("/token")
        .form(&[
            ("grant_type", "password"),
            ("username", demo::ALICE_USERNAME),
            ("password", demo::ALICE_PASSWORD),
            ("scope", "openid email"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "openid email");
    let refresh = str_field(&body, "refresh_token");
    assert!(refresh.len() >= 43, "refresh token too short: {}", refresh.len());
    assert!(body["id_token"].is_string());

    // Verify the access token with the published key, as a resource server would.
    let jwks: JwkSet = h.http.get(h.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let access = str_field(&body, "access_token");
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("kid in header");
    let jwk = jwks.find(&kid).expect("kid published in /jwks");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[demo::CONFIDENTIAL_CLIENT_ID]);
    validation.set_issuer(&[h.server.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(access, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], demo::ALICE_USERNAME);
    assert_eq!(claims["client_id"], demo::CONFIDENTIAL_CLIENT_ID);
    assert_eq!(claims["scope"], "openid email");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 300);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(iat.abs_diff(now) <= 5);

    // A token signed by another server's key does not verify with this JWKS.
    let other = start().await;
    let foreign = other.alice_tokens().await;
    let foreign_access = str_field(&foreign, "access_token");
    assert!(jsonwebtoken::decode::<Value>(foreign_access, &key, &validation).is_err());

    let stats = h.server.stats();
    assert_eq!((stats.token_requests, stats.password_grants), (1, 1));
    assert_eq!(stats.jwks_requests, 1);
}

#[tokio::test]
async fn client_secret_post_and_public_client_authenticate() {
    let h = start().await;
    let (status, body) = json(
        h.http
            .post(h.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", demo::ALICE_USERNAME),
                ("password", demo::ALICE_PASSWORD),
                ("client_id", demo::CONFIDENTIAL_CLIENT_ID),
                ("client_secret", demo::CONFIDENTIAL_CLIENT_SECRET),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "openid");

    let (status, body) = json(
        h.http
            .post(h.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", demo::ALICE_USERNAME),
                ("password", demo::ALICE_PASSWORD),
                ("client_id", demo::PUBLIC_CLIENT_ID),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string());
    assert_eq!(h.server.stats().password_grants, 2);
}

#[tokio::test]
async fn bob_needs_a_correct_totp_code() {
    let h = start().await;
    let base = [("grant_type", "password"), ("username", demo::BOB_USERNAME), ("password", demo::BOB_PASSWORD)];

    let (status, body) = h.token(&base).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(str_field(&body, "error_description").contains("TOTP code is missing"), "{body}");

    let totp = bob_totp();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    // A 6-digit code that is valid in none of the accepted steps (now - 1 .. now + 1, and one
    // more on each side in case the step changes during the test).
    let window: Vec<String> = (0..5).map(|i| totp.generate(now + i * 30 - 60).to_string()).collect();
    let wrong =
        (0..).map(|n| format!("{:06}", (123_456 + n * 7919) % 1_000_000)).find(|c| !window.contains(c)).unwrap();
    let mut with_wrong = base.to_vec();
    with_wrong.push(("totp", &wrong));
    let (status, body) = h.token(&with_wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(str_field(&body, "error_description").contains("TOTP code is wrong"), "{body}");

    let code = totp.generate_current().to_string();
    let mut with_code = base.to_vec();
    with_code.push(("totp", &code));
    let (status, body) = h.token(&with_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());

    // The previous step's code is accepted too (clock skew).
    let previous = totp.generate(now - 30).to_string();
    let mut with_previous = base.to_vec();
    with_previous.push(("totp", &previous));
    assert_eq!(h.token(&with_previous).await.0, StatusCode::OK);

    let stats = h.server.stats();
    assert_eq!(stats.token_requests, 4);
    assert_eq!(stats.failed_token_requests, 2);
    assert_eq!(stats.password_grants, 2);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_invalid_grant() {
    let h = start().await;
    for (user, password) in [(demo::ALICE_USERNAME, "not-the-password"), ("mallory", demo::ALICE_PASSWORD)] {
        let (status, body) = h.token(&[("grant_type", "password"), ("username", user), ("password", password)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "invalid username or password");
    }
    let (status, body) = h.token(&[("grant_type", "password"), ("username", "alice")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(h.server.stats().failed_token_requests, 3);
}

#[tokio::test]
async fn bad_client_credentials_are_401_invalid_client() {
    let h = start().await;
    let form = [("grant_type", "password"), ("username", demo::ALICE_USERNAME), ("password", demo::ALICE_PASSWORD)];
    let attempts = [
        h.http.post(h.url("/token")).basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some("wrong-secret")),
        h.http.post(h.url("/token")).basic_auth("no-such-client", Some("x")),
        // A confidential client may not skip its secret.
        h.http.post(h.url("/token")).basic_auth(demo::CONFIDENTIAL_CLIENT_ID, None::<&str>),
        // No client authentication at all.
        h.http.post(h.url("/token")),
    ];
    for attempt in attempts {
        let response = attempt.form(&form).send().await.unwrap();
        let challenge = response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = json(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"].is_string());
        assert!(challenge.is_some_and(|c| c.starts_with("Basic")));
    }
    assert_eq!(h.server.stats().password_grants, 0);
}

#[tokio::test]
async fn grant_type_errors() {
    let h = start().await;
    let (status, body) = h.token(&[("grant_type", "implicit")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    // `email_otp` names the one-time-code endpoints, not a grant of /token.
    let (_, body) = h.token(&[("grant_type", "email_otp")]).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    // A grant the server has but this client may not use.
    let (status, body) = h.token(&[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")]).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"unauthorized_client".into()));

    let (status, body) = json(
        h.http
            .post(h.url("/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", demo::PUBLIC_CLIENT_ID)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");

    // A JSON body is not a form.
    let (status, body) = json(
        h.confidential_post("/token")
            .json(&serde_json::json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(h.server.stats().failed_token_requests, 5);
}

#[tokio::test]
async fn client_credentials_has_no_refresh_token() {
    let h = start().await;
    let (status, body) = h.token(&[("grant_type", "client_credentials"), ("scope", "reports:read")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("id_token").is_none(), "{body}");
    assert_eq!(body["scope"], "reports:read");
    assert_eq!(body["token_type"], "Bearer");

    let (status, me) = json(h.whoami(str_field(&body, "access_token")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["sub"], demo::CONFIDENTIAL_CLIENT_ID);
    assert_eq!(me["scope"], "reports:read");
    assert_eq!(h.server.stats().client_credentials_grants, 1);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let h = start().await;
    let first = h.alice_tokens().await;
    let old_refresh = str_field(&first, "refresh_token");

    let (status, second) = h.refresh(old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let new_refresh = str_field(&second, "refresh_token");
    assert_ne!(new_refresh, old_refresh);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["scope"], "openid");
    assert_eq!(h.introspect(new_refresh).await["active"], true);
    assert_eq!(h.introspect(old_refresh).await["active"], false);
    let new_access = str_field(&second, "access_token");
    assert_eq!(h.whoami(new_access).await.status(), StatusCode::OK);

    // Presenting the rotated token again is reuse.
    let (status, body) = h.refresh(old_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(str_field(&body, "error_description").contains("reuse"));

    // The whole family is gone: the newest refresh token and its access tokens too.
    assert_eq!(h.introspect(new_refresh).await["active"], false);
    assert_eq!(h.introspect(new_access).await["active"], false);
    assert_eq!(h.whoami(new_access).await.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = h.refresh(new_refresh).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()));

    let stats = h.server.stats();
    assert_eq!(stats.refresh_token_reuse_detected, 1);
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.token_requests, 4);
    assert_eq!(stats.failed_token_requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_one_token_let_exactly_one_through() {
    let h = start().await;
    let tokens = h.alice_tokens().await;
    let refresh = str_field(&tokens, "refresh_token").to_owned();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let request = h
                .confidential_post("/token")
                .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())]);
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert_eq!(h.server.stats().refresh_token_reuse_detected, 4);
}

#[tokio::test]
async fn without_rotation_the_refresh_token_is_kept() {
    let h = start_with(IdpConfig { rotate_refresh_tokens: false, ..IdpConfig::demo() }).await;
    let tokens = h.alice_tokens().await;
    let refresh = str_field(&tokens, "refresh_token");
    for _ in 0..2 {
        let (status, body) = h.refresh(refresh).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    assert_eq!(h.introspect(refresh).await["active"], true);
    assert_eq!(h.server.stats().refresh_token_reuse_detected, 0);
}

#[tokio::test]
async fn refresh_scope_may_narrow_but_not_widen() {
    let h = start().await;
    let (_, tokens) = h
        .token(&[
            ("grant_type", "password"),
            ("username", demo::ALICE_USERNAME),
            ("password", demo::ALICE_PASSWORD),
            ("scope", "openid email"),
        ])
        .await;
    let (status, body) = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_field(&tokens, "refresh_token")),
            ("scope", "admin"),
        ])
        .await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_scope".into()));

    let (status, body) = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_field(&tokens, "refresh_token")),
            ("scope", "email"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "email");
    assert!(body.get("id_token").is_none());
}

#[tokio::test]
async fn refresh_token_of_another_client_or_expired_is_refused() {
    let h = start_with(IdpConfig { refresh_token_ttl: Duration::ZERO, ..IdpConfig::demo() }).await;
    let tokens = h.alice_tokens().await;
    let refresh = str_field(&tokens, "refresh_token");
    let (status, body) = h.refresh(refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(str_field(&body, "error_description").contains("expired"));

    let h = start().await;
    let tokens = h.alice_tokens().await;
    let (status, body) = json(
        h.http
            .post(h.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", str_field(&tokens, "refresh_token")),
                ("client_id", demo::PUBLIC_CLIENT_ID),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(str_field(&body, "error_description").contains("another client"));
}

#[tokio::test]
async fn access_token_ttl_applies_to_tokens_issued_afterwards() {
    let h = start().await;
    h.server.set_access_token_ttl(Duration::from_secs(7));
    assert_eq!(h.alice_tokens().await["expires_in"], 7);

    h.server.set_access_token_ttl(Duration::ZERO);
    let expired = h.alice_tokens().await;
    assert_eq!(expired["expires_in"], 0);
    let access = str_field(&expired, "access_token");
    assert_eq!(h.introspect(access).await["active"], false);
    assert_eq!(h.whoami(access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoke_all_refresh_tokens_of_a_user() {
    let h = start().await;
    let alice = h.alice_tokens().await;
    h.server.revoke_all_refresh_tokens_of(demo::ALICE_USERNAME);
    let (status, body) = h.refresh(str_field(&alice, "refresh_token")).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()));
    // Access tokens already issued keep working until they expire.
    assert_eq!(h.whoami(str_field(&alice, "access_token")).await.status(), StatusCode::OK);
    // Tokens issued afterwards are not affected.
    let again = h.alice_tokens().await;
    assert_eq!(h.refresh(str_field(&again, "refresh_token")).await.0, StatusCode::OK);
}
