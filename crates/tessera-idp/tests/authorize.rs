//! Authorization code + PKCE: the login page, redirects, the code exchange and every error path
//! the brief names (PKCE mismatch, plain refused, code reuse and revocation, redirect URI
//! mismatch, unregistered redirect, wrong password, deny).

mod common;

use std::collections::HashMap;

use common::{Harness, input_value, json, location_params, no_redirect_client, pkce_pair, start, str_field};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::Value;
use tessera_idp::{Fault, FaultEndpoint, demo};

/// A loopback redirect URI on an arbitrary port, as a native app would open it.
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

struct Browser {
    h: Harness,
    http: reqwest::Client,
}

impl Browser {
    async fn start() -> Self {
        Self { h: start().await, http: no_redirect_client() }
    }

    /// `GET /authorize` with `params`.
    async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http.get(self.h.url("/authorize")).query(params).send().await.unwrap()
    }

    /// A complete, valid request for the browser client; returns the login page's request id.
    async fn login_page(&self, challenge: &str, extra: &[(&str, &str)]) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", demo::BROWSER_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email"),
            ("state", "st-123"),
            ("nonce", "n-456"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let response = self.authorize(&params).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let page = response.text().await.unwrap();
        input_value(&page, "request_id").expect("hidden request_id in the login page")
    }

    async fn submit(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.h.url("/authorize")).form(fields).send().await.unwrap()
    }

    /// Logs alice in through the page; returns the code.
    async fn alice_code(&self, challenge: &str) -> String {
        let request_id = self.login_page(challenge, &[]).await;
        let response = self
            .submit(&[
                ("request_id", &request_id),
                ("username", demo::ALICE_USERNAME),
                ("password", demo::ALICE_PASSWORD),
                ("action", "sign-in"),
            ])
            .await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let (base, params) = location_params(&response);
        assert_eq!(base, REDIRECT);
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], self.h.server.issuer());
        params["code"].clone()
    }

    async fn exchange(&self, code: &str, redirect_uri: &str, verifier: &str) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", demo::BROWSER_CLIENT_ID),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        json(self.h.http.post(self.h.url("/token")).form(&form).send().await.unwrap()).await
    }
}

#[tokio::test]
async fn discovery_advertises_the_interactive_endpoints() {
    let h = start().await;
    let (status, doc) = json(h.http.get(h.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let issuer = h.server.issuer();
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["device_authorization_endpoint"], format!("{issuer}/device_authorization"));
    assert_eq!(doc["otp_start_endpoint"], format!("{issuer}/otp/start"));
    assert_eq!(doc["otp_verify_endpoint"], format!("{issuer}/otp/verify"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["EdDSA"]));
    let grants = doc["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&"authorization_code".into()));
    assert!(grants.contains(&"urn:ietf:params:oauth:grant-type:device_code".into()));
}

#[tokio::test]
async fn login_page_has_the_documented_form() {
    let b = Browser::start().await;
    let (_, challenge) = pkce_pair();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", demo::BROWSER_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.push(("login_hint", "<alice>"));
    let page = b.authorize(&params).await.text().await.unwrap();
    for needle in [
        r#"<form method="post" action="/authorize">"#,
        r#"id="username" name="username""#,
        r#"id="password" name="password""#,
        r#"id="totp" name="totp""#,
        r#"id="sign-in""#,
        r#"id="deny" type="submit" name="action" value="deny""#,
        r#"name="request_id""#,
    ] {
        assert!(page.contains(needle), "`{needle}` missing from the login page:\n{page}");
    }
    // Request values are escaped, never interpreted as markup.
    assert!(page.contains("&lt;alice&gt;") && !page.contains("<alice>"));
    assert_eq!(b.h.server.stats().authorize_requests, 1);
}

#[tokio::test]
async fn code_flow_issues_tokens_and_an_id_token_bound_to_the_nonce() {
    let b = Browser::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = b.alice_code(&challenge).await;
    let (status, body) = b.exchange(&code, REDIRECT, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email");
    assert_eq!(body["expires_in"], 300);
    let id_claims = common::verified_claims(&b.h, str_field(&body, "id_token"), demo::BROWSER_CLIENT_ID).await;
    assert_eq!(id_claims["sub"], demo::ALICE_USERNAME);
    assert_eq!(id_claims["nonce"], "n-456");
    assert_eq!(id_claims["email"], demo::ALICE_EMAIL);
    assert!(id_claims["auth_time"].as_u64().is_some_and(|t| t <= id_claims["iat"].as_u64().unwrap()));

    let access = str_field(&body, "access_token");
    let (status, who) = json(b.h.whoami(access).await).await;
    assert_eq!((status, &who["sub"], &who["client_id"]), (StatusCode::OK, &"alice".into(), &"tessera-cli".into()));

    // The refresh token rotates like the password grant's.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", demo::BROWSER_CLIENT_ID),
        ("refresh_token", str_field(&body, "refresh_token")),
    ];
    let (status, refreshed) = json(b.h.http.post(b.h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], body["refresh_token"]);
    assert_eq!(b.h.server.stats().authorization_code_grants, 1);
}

#[tokio::test]
async fn bob_needs_his_totp_code_on_the_login_page() {
    let b = Browser::start().await;
    let (verifier, challenge) = pkce_pair();
    let request_id = b.login_page(&challenge, &[]).await;
    let fields = |totp: &str| {
        vec![
            ("request_id".to_owned(), request_id.clone()),
            ("username".to_owned(), demo::BOB_USERNAME.to_owned()),
            ("password".to_owned(), demo::BOB_PASSWORD.to_owned()),
            ("totp".to_owned(), totp.to_owned()),
        ]
    };
    let missing = b.http.post(b.h.url("/authorize")).form(&fields("")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.text().await.unwrap().contains("authenticator app"));
    let code = common::bob_totp().generate_current().to_string();
    let ok = b.http.post(b.h.url("/authorize")).form(&fields(&code)).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::FOUND);
    let (_, params) = location_params(&ok);
    let (status, body) = b.exchange(&params["code"], REDIRECT, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn wrong_password_shows_the_page_again_then_the_same_request_succeeds() {
    let b = Browser::start().await;
    let (_, challenge) = pkce_pair();
    let request_id = b.login_page(&challenge, &[]).await;
    let wrong =
        b.submit(&[("request_id", &request_id), ("username", demo::ALICE_USERNAME), ("password", "nope")]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(LOCATION).is_none());
    let page = wrong.text().await.unwrap();
    assert!(page.contains("Wrong username or password."), "{page}");
    assert_eq!(input_value(&page, "username").as_deref(), Some(demo::ALICE_USERNAME));
    assert_eq!(input_value(&page, "request_id").as_deref(), Some(request_id.as_str()));

    let ok = b
        .submit(&[("request_id", &request_id), ("username", demo::ALICE_USERNAME), ("password", demo::ALICE_PASSWORD)])
        .await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    // The request is finished: submitting it again is an error page, not a second code.
    let again = b
        .submit(&[("request_id", &request_id), ("username", demo::ALICE_USERNAME), ("password", demo::ALICE_PASSWORD)])
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let b = Browser::start().await;
    let (_, challenge) = pkce_pair();
    let request_id = b.login_page(&challenge, &[]).await;
    let response = b.submit(&[("request_id", &request_id), ("action", "deny")]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (base, params) = location_params(&response);
    assert_eq!(base, REDIRECT);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-123");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn pkce_mismatch_is_invalid_grant() {
    let b = Browser::start().await;
    let (_, challenge) = pkce_pair();
    let (other_verifier, _) = pkce_pair();
    let code = b.alice_code(&challenge).await;
    let (status, body) = b.exchange(&code, REDIRECT, &other_verifier).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
    assert!(str_field(&body, "error_description").contains("PKCE"));
}

#[tokio::test]
async fn request_errors_redirect_back_with_invalid_request_and_state() {
    let b = Browser::start().await;
    let (_, challenge) = pkce_pair();
    let base = [("response_type", "code"), ("client_id", demo::BROWSER_CLIENT_ID), ("redirect_uri", REDIRECT)];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "plain method",
            vec![("state", "s1"), ("code_challenge", &challenge), ("code_challenge_method", "plain")],
            Some("s1"),
        ),
        ("no method", vec![("state", "s2"), ("code_challenge", &challenge)], Some("s2")),
        ("no challenge", vec![("state", "s3"), ("code_challenge_method", "S256")], Some("s3")),
        ("no state", vec![("code_challenge", &challenge), ("code_challenge_method", "S256")], None),
        (
            "short challenge",
            vec![("state", "s5"), ("code_challenge", "abc"), ("code_challenge_method", "S256")],
            Some("s5"),
        ),
    ];
    for (name, extra, state) in cases {
        let mut params = base.to_vec();
        params.extend(extra);
        let response = b.authorize(&params).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{name}");
        let (location, query) = location_params(&response);
        assert_eq!(location, REDIRECT, "{name}");
        assert_eq!(query["error"], "invalid_request", "{name}");
        assert_eq!(query.get("state").map(String::as_str), state, "{name}");
        assert_eq!(query["iss"], b.h.server.issuer(), "{name}");
    }

    let mut params = base.to_vec();
    params[0] = ("response_type", "token");
    params.extend([("state", "s6"), ("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")]);
    let (_, query) = location_params(&b.authorize(&params).await);
    assert_eq!(query["error"], "unsupported_response_type");
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_never_redirects() {
    let b = Browser::start().await;
    let (_, challenge) = pkce_pair();
    let request = |client_id: &'static str, redirect_uri: &'static str| {
        let challenge = challenge.clone();
        let b = &b;
        async move {
            b.authorize(&[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("state", "s"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .await
        }
    };
    let cases = [
        ("unknown client", request("nobody", REDIRECT).await),
        ("foreign host", request(demo::BROWSER_CLIENT_ID, "https://evil.example/callback").await),
        ("other path", request(demo::BROWSER_CLIENT_ID, "http://127.0.0.1:49152/other").await),
        ("localhost is not loopback", request(demo::BROWSER_CLIENT_ID, "http://localhost:49152/callback").await),
        ("client without redirect URIs", request(demo::PUBLIC_CLIENT_ID, REDIRECT).await),
    ];
    for (name, response) in cases {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(response.headers().get(LOCATION).is_none(), "{name}");
        assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{name}");
        assert!(response.text().await.unwrap().contains("id=\"error\""), "{name}");
    }
    // The IPv6 and root-path loopback registrations also match any port.
    for redirect_uri in ["http://[::1]:5000/callback", "http://127.0.0.1:8000", "http://127.0.0.1:8000/"] {
        let ok = request(demo::BROWSER_CLIENT_ID, redirect_uri).await;
        assert_eq!(ok.status(), StatusCode::OK, "{redirect_uri}");
    }
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_the_tokens_issued_from_it() {
    let b = Browser::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = b.alice_code(&challenge).await;
    let (status, first) = b.exchange(&code, REDIRECT, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let access = str_field(&first, "access_token");
    assert_eq!(b.h.whoami(access).await.status(), StatusCode::OK);

    let (status, reused) = b.exchange(&code, REDIRECT, &verifier).await;
    assert_eq!((status, &reused["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{reused}");
    assert_eq!(b.h.whoami(access).await.status(), StatusCode::UNAUTHORIZED);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", demo::BROWSER_CLIENT_ID),
        ("refresh_token", str_field(&first, "refresh_token")),
    ];
    let (status, body) = json(b.h.http.post(b.h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
}

#[tokio::test]
async fn the_token_request_must_repeat_the_exact_redirect_uri() {
    let b = Browser::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = b.alice_code(&challenge).await;
    let (status, body) = b.exchange(&code, "http://127.0.0.1:49153/callback", &verifier).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
    assert!(str_field(&body, "error_description").contains("redirect_uri"));
}

#[tokio::test]
async fn codes_expire_after_sixty_seconds_and_are_bound_to_their_client() {
    let b = Browser::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = b.alice_code(&challenge).await;
    // Another client cannot redeem it (and does not consume it).
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let response =
        b.h.http
            .post(b.h.url("/token"))
            .basic_auth(demo::WEB_CLIENT_ID, Some(demo::WEB_CLIENT_SECRET))
            .form(&form)
            .send()
            .await
            .unwrap();
    let (status, body) = json(response).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");

    b.h.server.set_clock_offset(61);
    let (status, body) = b.exchange(&code, REDIRECT, &verifier).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_grant".into()), "{body}");
    assert!(str_field(&body, "error_description").contains("expired"));
}

#[tokio::test]
async fn a_confidential_client_authenticates_at_the_token_endpoint() {
    let b = Browser::start().await;
    let (verifier, challenge) = pkce_pair();
    let redirect = "http://127.0.0.1:40000/web-callback";
    let response = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", demo::WEB_CLIENT_ID),
            ("redirect_uri", redirect),
            ("state", "w"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let request_id = input_value(&response.text().await.unwrap(), "request_id").unwrap();
    let response = b
        .submit(&[("request_id", &request_id), ("username", demo::ALICE_USERNAME), ("password", demo::ALICE_PASSWORD)])
        .await;
    let (_, params): (String, HashMap<String, String>) = location_params(&response);
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", demo::WEB_CLIENT_ID),
        ("code", params["code"].as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = json(b.h.http.post(b.h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!((status, &body["error"]), (StatusCode::UNAUTHORIZED, &"invalid_client".into()), "{body}");
    let response =
        b.h.http
            .post(b.h.url("/token"))
            .basic_auth(demo::WEB_CLIENT_ID, Some(demo::WEB_CLIENT_SECRET))
            .form(&form)
            .send()
            .await
            .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The scope defaulted to openid, so there is an ID token (without a nonce: none was sent).
    let claims = common::verified_claims(&b.h, str_field(&body, "id_token"), demo::WEB_CLIENT_ID).await;
    assert!(claims.get("nonce").is_none());
}

#[tokio::test]
async fn faults_can_target_the_authorize_endpoint() {
    let b = Browser::start().await;
    b.h.server.faults().push(FaultEndpoint::Authorize, Fault::status(503, "down for maintenance"), 1);
    let response = b.authorize(&[("client_id", demo::BROWSER_CLIENT_ID)]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.text().await.unwrap(), "down for maintenance");
    assert_eq!(b.h.server.stats().faults_injected, 1);
}

/// RFC 8707 on the code exchange and on refresh: `resource` becomes the access token's `aud` (the
/// demo resource then accepts it), and a bad `resource` is refused before the code is spent.
#[tokio::test]
async fn a_resource_on_the_code_exchange_and_refresh_becomes_the_audience() {
    let b = Browser::start().await;
    let resource = b.h.server.demo_resource();
    let (verifier, challenge) = pkce_pair();
    let code = b.alice_code(&challenge).await;
    let exchange = |resource: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", demo::BROWSER_CLIENT_ID),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
            ("resource", resource),
        ];
        let request = b.h.http.post(b.h.url("/token")).form(&form);
        async move { json(request.send().await.unwrap()).await }
    };
    let (status, body) = exchange("relative/path").await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"invalid_target".into()), "{body}");
    let (status, tokens) = exchange(&resource).await;
    assert_eq!(status, StatusCode::OK, "the code was not spent by the refused request: {tokens}");
    let access = str_field(&tokens, "access_token");
    let call = |token: &str| b.h.http.get(&resource).bearer_auth(token).send();
    // alice's scope is `openid email`: the audience is right, the scope is not.
    assert_eq!(call(access).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(b.h.whoami(access).await.status(), StatusCode::OK, "other APIs of the IdP still accept it");

    // A refresh for another resource: a token for that one, refused by the demo resource.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", demo::BROWSER_CLIENT_ID),
        ("refresh_token", str_field(&tokens, "refresh_token")),
        ("resource", "https://other.example/api"),
    ];
    let (status, other) = json(b.h.http.post(b.h.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let response = call(str_field(&other, "access_token")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
}
