//! `tessera token` for a DPoP provider (RFC 9449, `dpop = true`) against oidc-provider
//! (`interop/oidc-provider`: `dpop-client` must get DPoP-bound tokens, and every proof must carry
//! a server nonce). The key is generated once and kept in the FileStore with the tokens, so every
//! process proves with it; `--dpop-url` prints a proof for curl.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::*;

const PASSWORD_ENV: &str = "TESSERA_TEST_PASSWORD";

fn dpop_home(issuer: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"api\"\n\
         type = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nusername = \"alice\"\n\
         password = \"env:{PASSWORD_ENV}\"\nscope = \"openid api:read offline_access\"\ndpop = true\n",
        oidc_provider::DPOP_CLIENT_ID
    ))
    .with_env(PASSWORD_ENV, "alice-password")
}

/// The private scalar of the stored generated key (what must never be printed).
fn stored_private_scalar(home: &Home) -> String {
    let key: Value = serde_json::from_str(&home.stored_field("dev/api", "dpop_key")).expect("a JWK");
    key["d"].as_str().expect("a private JWK").to_owned()
}

/// GET UserInfo with the header lines `tessera token --format header --dpop-url` printed.
fn userinfo_with(op: &OidcProvider, lines: &str) -> (u16, Option<String>, String) {
    let url = op.userinfo_endpoint();
    block_on(async {
        let mut request = op.http_client().get(&url);
        for line in lines.lines() {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("a header line: {line:?}"));
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let nonce = response.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
        (status, nonce, response.text().await.unwrap())
    })
}

#[test]
fn tessera_token_prints_dpop_headers_that_curl_can_send() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let home = dpop_home(op.issuer());
    let url = op.userinfo_endpoint();

    let run = home.run(&["token", "--format", "header", "--dpop-url", &url]);
    let lines = run.success().to_owned();
    let [authorization, proof] = lines.lines().collect::<Vec<_>>()[..] else { panic!("two lines: {run:#?}") };
    assert!(authorization.starts_with("Authorization: DPoP "), "{run:#?}");
    assert!(proof.starts_with("DPoP: ey"), "{run:#?}");
    let stats = block_on(op.stats());
    assert_eq!(stats.dpop_nonce_demands.get("token"), Some(&1), "the login met use_dpop_nonce once: {stats:?}");

    // The API wants its own nonce: the answer gives it, a second run puts it in the proof.
    let (status, nonce, body) = userinfo_with(&op, &lines);
    assert_eq!(status, 401, "{body}");
    let nonce = nonce.expect("a DPoP-Nonce with use_dpop_nonce");
    let run = home.run(&["token", "--format", "header", "--dpop-url", &url, "--dpop-nonce", &nonce]);
    let (status, _, body) = userinfo_with(&op, run.success());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""sub":"alice""#), "{body}");

    // --json carries the proof too; the token was cached (one login in all).
    let run = home.run(&["token", "--json", "--dpop-url", &url, "--dpop-method", "POST"]);
    let value: Value = serde_json::from_str(run.success()).unwrap();
    assert_eq!(value["token_type"], "DPoP");
    let claims = value["dpop"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!((&claims["htm"], &claims["htu"]), (&json!("POST"), &json!(url)));
    assert!(claims["ath"].is_string() && claims.get("nonce").is_none(), "{claims}");
    assert_eq!(block_on(op.stats()).grant_type("password"), 2, "one login (and its nonce retry)");

    // The private key is in the store, never printed.
    let d = stored_private_scalar(&home);
    for output in [&lines, &value.to_string(), &run.stderr] {
        assert!(!output.contains(&d), "the private key was printed");
    }
    assert!(!value.to_string().contains("dpop_key"), "{value}");

    // Misuse says what is wrong.
    let raw = home.run(&["token", "--dpop-url", &url]);
    assert!(raw.failure(2).contains("--format header or --json"), "{raw:#?}");
}

#[test]
fn tessera_token_dpop_url_needs_a_dpop_provider() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let home = Home::alice(op.issuer());
    let run = home.run(&["token", "-p", "peer", "--format", "header", "--dpop-url", "https://api.example/x"]);
    assert!(run.failure(1).contains("does not use DPoP"), "{run:#?}");
}

/// Sixteen `tessera token` processes on an expired DPoP-bound token: one refresh, with the key
/// stored with the tokens (the server checks the refresh token's binding), a nonce demand answered
/// once, no reuse, the grant alive.
#[test]
fn sixteen_token_processes_after_expiry_refresh_a_dpop_bound_token_once() {
    let op = OidcProvider::start(OidcProviderOptions { access_ttl_secs: 3, ..OidcProviderOptions::default() });
    let home = dpop_home(op.issuer());
    home.run(&["login"]).success();
    let old_access = home.stored_field("dev/api", "access_token");
    let old_refresh = home.stored_field("dev/api", "refresh_token");
    let key = home.stored_field("dev/api", "dpop_key");

    home.sleep_past_expiry("dev/api");
    block_on(op.reset_stats());
    let mut children: Vec<_> = (0..16).map(|_| home.spawn(&["token"])).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let statuses: Vec<_> = children.iter_mut().map(|child| wait_until(child, deadline)).collect();
    let runs: Vec<_> = children
        .into_iter()
        .zip(statuses)
        .map(|(child, status)| collect(child, status.expect("finished within 30 s")))
        .collect();
    let printed: HashSet<_> = runs.iter().map(|run| run.success().to_owned()).collect();
    assert_eq!(printed.len(), 1, "every process printed the same token: {runs:#?}");
    let token = printed.into_iter().next().unwrap().trim_end().to_owned();
    assert_ne!(token, old_access);

    let stats = block_on(op.stats());
    // One refresh: its first attempt met use_dpop_nonce (a new process knows no nonce), the retry succeeded.
    assert_eq!(stats.grant_type("refresh_token"), 2, "{stats:?}");
    assert_eq!(stats.dpop_nonce_demands.get("token"), Some(&1), "{stats:?}");
    assert_eq!(stats.token_requests, 2, "and no other token request: {stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");

    assert_eq!(home.stored_field("dev/api", "access_token"), token);
    assert_eq!(home.stored_field("dev/api", "dpop_key"), key, "the same key, kept with the new tokens");
    let new_refresh = home.stored_field("dev/api", "refresh_token");
    assert_ne!(new_refresh, old_refresh, "rotated");
    let body = block_on(op.introspect(&new_refresh));
    assert_eq!((&body["active"], &body["sub"]), (&json!(true), &json!("alice")), "the grant is alive: {body}");
    let body = block_on(op.introspect(&token));
    assert!(body["cnf"]["jkt"].is_string(), "bound: {body}");
}
