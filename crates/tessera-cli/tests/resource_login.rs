//! `tessera login <URL>` through the binary, against panva's oidc-provider (registration and
//! resource indicators on, a loopback resource server publishing RFC 9728 metadata for two
//! resources; interop/oidc-provider), headless Chromium signing in: no client id configured, no
//! configuration file even. Then `tessera token --resource` for the second resource without a
//! second login, and 16 processes on expired tokens for both resources: one refresh per resource,
//! the grant alive (oidc-provider revokes the whole grant when a rotated refresh token is
//! presented again).
//!
//! Needs `/usr/bin/chromium`, `npm ci` in interop/browser and interop/oidc-provider.

mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use support::oidc_provider::{OidcProvider, OidcProviderOptions};
use support::*;

/// The authorization URL the binary printed (on a line of its own).
#[track_caller]
fn authorization_url(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("http://") && line.contains("/auth?"))
        .unwrap_or_else(|| panic!("no authorization URL on stderr: {stderr}"))
        .to_owned()
}

fn query_values(url: &str, name: &str) -> Vec<String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().filter(|(n, _)| n == name).map(|(_, v)| v.into_owned()).collect()
}

/// What the resource at `url` answers to the bearer `token`: status and `aud`.
fn call(url: &str, token: &str) -> (u16, Option<String>) {
    block_on(async {
        let answer = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        (status, body["aud"].as_str().map(str::to_owned))
    })
}

#[test]
fn tessera_login_url_signs_in_with_chromium_and_one_login_serves_two_resources_across_16_processes() {
    let op = OidcProvider::start(OidcProviderOptions { access_ttl_secs: 4, ..OidcProviderOptions::default() });
    let [first, second] = op.resources() else { panic!("two resources: {:?}", op.resources()) };
    let home = Home::new("");
    std::fs::remove_file(home.config_path()).unwrap();

    // No configuration at all: the provider is added, its server discovered, a client registered.
    let mut login =
        Interactive::start(&home, &["login", first, second, "--name", "mcp", "--prompt", "always", "--no-browser"]);
    let stderr = login.wait_for("Waiting for the browser to come back", 1);
    let url = authorization_url(&stderr);
    assert_eq!(query_values(&url, "resource"), [first.as_str(), second.as_str()], "RFC 8707: both named");
    assert!(query_values(&url, "nonce").is_empty(), "no OpenID scope, no nonce");
    let signed_in = chromium_sign_in(&url, "alice", "any-password");
    assert!(signed_in["callback"].is_string(), "{signed_in}");
    let run = login.finish();
    assert!(run.stderr.contains("Logged in to mcp (default) for"), "{run:#?}");
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    assert!(config.contains("name = \"mcp\"") && config.contains(&format!("resource = \"{first}\"")), "{config}");
    assert!(!config.contains("client_id"), "the registration is kept with the tokens: {config}");
    let stored = home.stored("default/mcp").expect("the login is stored");
    let client_id = query_values(&url, "client_id").remove(0);
    assert_eq!(stored["registered_client"]["client_id"], client_id.as_str(), "{stored}");

    // The token's audience is the resource.
    let token = home.run(&["token", "-p", "mcp"]).success().trim().to_owned();
    assert_eq!(call(first, &token), (200, Some(first.clone())));
    assert_eq!(call(second, &token).0, 401);
    // The second resource: its own token, from a refresh; no second login.
    let files = home.run(&["token", "-p", "mcp", "--resource", second]).success().trim().to_owned();
    assert_eq!(call(second, &files), (200, Some(second.clone())));
    let stats = block_on(op.stats());
    assert_eq!((stats.grant_type("authorization_code"), stats.grant_type("refresh_token")), (1, 1));
    // Served from the store by the next process (the fast path), no request.
    assert_eq!(home.run(&["token", "-p", "mcp", "--resource", second]).success().trim(), files);
    assert_eq!(block_on(op.stats()).grant_type("refresh_token"), 1);

    // With several providers and none chosen, `--resource` alone picks the one whose section names it.
    let mut config = std::fs::read_to_string(home.config_path()).unwrap();
    config.push_str("\n[[contexts.auth_providers]]\nname = \"other\"\ntype = \"static\"\naccess_token = \"x\"\n");
    std::fs::write(home.config_path(), config).unwrap();
    assert_eq!(home.run(&["token", "--resource", first]).success().trim(), token, "the fast path");
    let stale = Home::new(&std::fs::read_to_string(home.config_path()).unwrap());
    assert_ne!(stale.run(&["token", "--resource", first]).code, Some(0), "another home holds no login");

    // Both expire; 16 processes, 8 per resource, at once.
    std::thread::sleep(Duration::from_millis(4_200));
    let children: Vec<(usize, Child)> = (0..16)
        .map(|i| {
            let resource = if i % 2 == 0 { first } else { second };
            (i, home.spawn(&["token", "-p", "mcp", "--resource", resource, "--prompt", "never"]))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, mut child) in children {
        let status = wait_until(&mut child, deadline).expect("every process finishes");
        let run = collect(child, status);
        let resource = if i % 2 == 0 { first } else { second };
        let token = run.success().trim().to_owned();
        assert_eq!(call(resource, &token), (200, Some(resource.clone())), "process {i}: {run:#?}");
    }
    let stats = block_on(op.stats());
    assert_eq!(stats.grant_type("refresh_token"), 3, "one refresh per resource: {stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
    // The grant is alive.
    let forced = home.run(&["refresh", "-p", "mcp", "--force", "--prompt", "never"]);
    forced.success();
    assert_eq!(call(first, home.run(&["token", "-p", "mcp"]).success().trim()).0, 200);
    assert_eq!(block_on(op.stats()).refresh_token_reuses, 0);
}
