//! API key management on the reference IdP, over HTTP: create (lifetime bounds), the secret shown
//! once, list filters, get, revoke by id and by secret, expiry by the server's clock, last use
//! recorded by `/api/whoami`, the admin API refused to non-admins, and the configurable prefix.

mod common;

use common::{Harness, bob_totp, json, start, start_with, str_field};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_idp::{IdpConfig, demo};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Harness {
    async fn alice_access_token(&self) -> String {
        str_field(&self.alice_tokens().await, "access_token").to_owned()
    }

    async fn bob_access_token(&self) -> String {
        let code = bob_totp().generate_current().to_string();
        let (status, body) = self
            .token(&[
                ("grant_type", "password"),
                ("username", demo::BOB_USERNAME),
                ("password", demo::BOB_PASSWORD),
                ("totp", &code),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        str_field(&body, "access_token").to_owned()
    }

    async fn create_key(&self, token: &str, body: Value) -> (StatusCode, Value) {
        json(self.http.post(self.url("/api/keys")).bearer_auth(token).json(&body).send().await.unwrap()).await
    }

    async fn get_json(&self, token: &str, path: &str) -> (StatusCode, Value) {
        json(self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap()).await
    }

    async fn post_json(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        json(self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
    }

    /// Creates a key that must succeed; returns `(key, secret)`.
    async fn new_key(&self, token: &str, name: &str, days: i64) -> (Value, String) {
        let (status, body) = self.create_key(token, json!({ "name": name, "expires_in_days": days })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["key"].clone(), str_field(&body, "secret").to_owned())
    }

    async fn list_ids(&self, token: &str, path: &str) -> Vec<String> {
        let (status, body) = self.get_json(token, path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["keys"].as_array().unwrap().iter().map(|k| str_field(k, "id").to_owned()).collect()
    }
}

#[tokio::test]
async fn create_enforces_1_to_365_days_and_defaults_to_90() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    for days in [0, 366, -1] {
        let (status, body) = h.create_key(&alice, json!({ "name": "ci", "expires_in_days": days })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(str_field(&body, "error_description").contains("between 1 and 365"), "{body}");
    }
    for days in [1, 365] {
        let (key, _) = h.new_key(&alice, "ci", days).await;
        let lifetime = key["expires_at"].as_i64().unwrap() - key["created_at"].as_i64().unwrap();
        assert_eq!(lifetime, days * DAY_MS, "{key}");
        assert_eq!(key["status"], "ACTIVE");
        assert_eq!(key["created_by_email"], demo::ALICE_EMAIL);
        assert_eq!(key["last_used_at"], Value::Null);
    }
    let (status, body) = h.create_key(&alice, json!({ "name": "default" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = &body["key"];
    assert_eq!(key["expires_at"].as_i64().unwrap() - key["created_at"].as_i64().unwrap(), 90 * DAY_MS);

    for bad in [json!({ "name": "  " }), json!({ "expires_in_days": 5 }), json!({ "name": "x", "scope": "all" })] {
        let (status, body) = h.create_key(&alice, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_secret_is_shown_once_and_only_its_fingerprint_after() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    let (key, secret) = h.new_key(&alice, "deploy", 30).await;
    let (_, other) = h.new_key(&alice, "deploy", 30).await;
    assert!(secret.starts_with("qk_") && secret.len() >= 40, "{secret}");
    assert_ne!(secret, other, "every key has its own secret");
    let fingerprint = str_field(&key, "fingerprint");
    assert_eq!(fingerprint.len(), 16);
    assert!(!secret.contains(fingerprint), "the fingerprint is derived from the hash, not the secret");

    let id = str_field(&key, "id");
    for path in ["/api/keys".to_owned(), format!("/api/keys/{id}"), "/api/admin/keys".to_owned()] {
        let (status, body) = h.get_json(&alice, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = body.to_string();
        assert!(!text.contains(&secret[3..]) && !text.contains("secret"), "{path} shows the secret: {text}");
        assert!(text.contains(fingerprint), "{path}: {text}");
    }
}

#[tokio::test]
async fn list_filters_by_name_fingerprint_and_status_and_shows_own_keys_only() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    let bob = h.bob_access_token().await;
    let (ci, _) = h.new_key(&alice, "ci", 10).await;
    let (deploy, _) = h.new_key(&alice, "deploy", 10).await;
    let (revoked, _) = h.new_key(&alice, "ci", 10).await;
    let (bobs, _) = h.new_key(&bob, "ci", 10).await;
    let id = |k: &Value| str_field(k, "id").to_owned();
    let (status, _) = h.post_json(&alice, &format!("/api/keys/{}/revoke", id(&revoked)), json!({})).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(h.list_ids(&alice, "/api/keys").await, [id(&ci), id(&deploy), id(&revoked)]);
    assert_eq!(h.list_ids(&bob, "/api/keys").await, [id(&bobs)]);
    assert_eq!(h.list_ids(&alice, "/api/keys?name=ci").await, [id(&ci), id(&revoked)]);
    let by_fingerprint = format!("/api/keys?fingerprint={}", str_field(&deploy, "fingerprint"));
    assert_eq!(h.list_ids(&alice, &by_fingerprint).await, [id(&deploy)]);
    assert_eq!(h.list_ids(&alice, "/api/keys?status=REVOKED").await, [id(&revoked)]);
    assert_eq!(h.list_ids(&alice, "/api/keys?name=ci&status=active").await, [id(&ci)]);
    assert!(h.list_ids(&alice, "/api/keys?name=nothing").await.is_empty());
    let (status, body) = h.get_json(&alice, "/api/keys?status=SLEEPING").await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &json!("invalid_request")), "{body}");
}

#[tokio::test]
async fn get_of_an_unknown_or_foreign_key_is_404() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    let bob = h.bob_access_token().await;
    let (key, _) = h.new_key(&alice, "ci", 10).await;
    let id = str_field(&key, "id");
    let (status, body) = h.get_json(&alice, &format!("/api/keys/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, key);
    for (token, path) in [(&alice, "/api/keys/key_0000000000000000".to_owned()), (&bob, format!("/api/keys/{id}"))] {
        let (status, body) = h.get_json(token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let (status, _) = h.post_json(&bob, &format!("/api/keys/{id}/revoke"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob cannot revoke alice's key");
}

#[tokio::test]
async fn keys_authenticate_whoami_until_revoked_by_id_or_by_secret() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    let (by_id, by_id_secret) = h.new_key(&alice, "a", 10).await;
    let (_, by_secret_secret) = h.new_key(&alice, "b", 10).await;

    // Bearer and X-API-Key both work, and the server records the use.
    let (status, body) = json(h.whoami(&by_id_secret).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["sub"].as_str(), body["api_key_id"].as_str()), (Some("alice"), by_id["id"].as_str()));
    let response =
        h.http.get(h.url("/api/whoami")).header("X-API-Key", format!(" {by_secret_secret} ")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, after) = h.get_json(&alice, &format!("/api/keys/{}", str_field(&by_id, "id"))).await;
    let used = after["last_used_at"].as_i64().expect("last_used_at set by the use");
    assert!(used >= after["created_at"].as_i64().unwrap(), "{after}");

    let (status, revoked) =
        h.post_json(&alice, &format!("/api/keys/{}/revoke", str_field(&by_id, "id")), json!({})).await;
    assert_eq!((status, &revoked["status"]), (StatusCode::OK, &json!("REVOKED")), "{revoked}");
    let (status, revoked) = h.post_json(&alice, "/api/keys/revoke", json!({ "secret": by_secret_secret })).await;
    assert_eq!((status, &revoked["status"]), (StatusCode::OK, &json!("REVOKED")), "{revoked}");
    assert_eq!(revoked["name"], "b");

    for secret in [&by_id_secret, &by_secret_secret] {
        let response = h.whoami(secret).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        let (_, body) = json(response).await;
        assert!(str_field(&body, "error_description").contains("revoked"), "{body}");
    }
    let (status, _) = h.post_json(&alice, "/api/keys/revoke", json!({ "secret": "qk_never-issued" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json(h.whoami("qk_never-issued").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An ordinary access token still reaches whoami as before.
    assert_eq!(h.whoami(&alice).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_key_reads_expired_and_is_rejected() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    let (key, secret) = h.new_key(&alice, "short", 1).await;
    assert_eq!(h.whoami(&secret).await.status(), StatusCode::OK);

    // One day and a minute later by the server's clock. Access tokens issued now are dated by it too.
    h.server.set_clock_offset(24 * 60 * 60 + 60);
    let alice = h.alice_access_token().await;
    let (status, body) = h.get_json(&alice, &format!("/api/keys/{}", str_field(&key, "id"))).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("EXPIRED")), "{body}");
    assert_eq!(h.list_ids(&alice, "/api/keys?status=EXPIRED").await, [str_field(&key, "id")]);
    assert!(h.list_ids(&alice, "/api/keys?status=ACTIVE").await.is_empty());
    let (status, body) = json(h.whoami(&secret).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(str_field(&body, "error_description").contains("expired"), "{body}");
}

#[tokio::test]
async fn admins_see_and_revoke_every_key_and_others_get_403() {
    let h = start().await;
    let alice = h.alice_access_token().await; // admin
    let bob = h.bob_access_token().await;
    let (bobs, bobs_secret) = h.new_key(&bob, "bob-ci", 10).await;
    let (alices, _) = h.new_key(&alice, "alice-ci", 10).await;
    let bobs_id = str_field(&bobs, "id");

    for (path, post) in [
        ("/api/admin/keys".to_owned(), false),
        (format!("/api/admin/keys/{bobs_id}"), false),
        (format!("/api/admin/keys/{bobs_id}/revoke"), true),
    ] {
        let (status, body) =
            if post { h.post_json(&bob, &path, json!({})).await } else { h.get_json(&bob, &path).await };
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"], "access_denied");
        assert!(str_field(&body, "error_description").contains("not an administrator"), "{body}");
    }
    assert_eq!(h.whoami(&bobs_secret).await.status(), StatusCode::OK, "the refused revoke changed nothing");

    let all = h.list_ids(&alice, "/api/admin/keys").await;
    assert_eq!(all, [bobs_id, str_field(&alices, "id")]);
    assert_eq!(h.list_ids(&alice, &format!("/api/admin/keys?email={}", demo::BOB_EMAIL)).await, [bobs_id]);
    assert_eq!(h.list_ids(&alice, "/api/admin/keys?key_name=alice-ci").await, [str_field(&alices, "id")]);
    let (status, body) = h.get_json(&alice, &format!("/api/admin/keys/{bobs_id}")).await;
    assert_eq!((status, &body["created_by_email"]), (StatusCode::OK, &json!(demo::BOB_EMAIL)));
    let (status, _) = h.get_json(&alice, "/api/admin/keys/key_ffffffffffffffff").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = h.post_json(&alice, &format!("/api/admin/keys/{bobs_id}/revoke"), json!({})).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("REVOKED")), "{body}");
    assert_eq!(h.whoami(&bobs_secret).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h.list_ids(&alice, "/api/admin/keys?status=REVOKED").await, [bobs_id]);
}

#[tokio::test]
async fn management_needs_a_user_access_token() {
    let h = start().await;
    let alice = h.alice_access_token().await;
    let (_, secret) = h.new_key(&alice, "ci", 10).await;

    let response = h.http.get(h.url("/api/keys")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = h.get_json("not-a-token", "/api/keys").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An API key cannot mint more keys.
    let (status, body) = h.create_key(&secret, json!({ "name": "more" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A client_credentials token speaks for no user.
    let (status, tokens) = h.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.get_json(str_field(&tokens, "access_token"), "/api/keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn the_prefix_is_configurable_and_checked() {
    let h = start_with(IdpConfig { api_key_prefix: "tk_".into(), ..IdpConfig::demo() }).await;
    let alice = h.alice_access_token().await;
    let (_, secret) = h.new_key(&alice, "ci", 10).await;
    assert!(secret.starts_with("tk_"), "{secret}");
    assert_eq!(h.whoami(&secret).await.status(), StatusCode::OK);

    for prefix in ["", "q k_"] {
        let error = tessera_idp::IdpServer::start(IdpConfig { api_key_prefix: prefix.into(), ..IdpConfig::demo() })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("api_key_prefix"), "{error}");
    }
}
