//! The `tessera` binary end to end: each test runs it with `std::process::Command` in a
//! `TESSERA_HOME` of its own, against the reference IdP (run as `tessera idp serve`) or against
//! panva's oidc-provider (`interop/oidc-provider`). Secrets reach the binary through `env:`
//! references set on the child only.
//!
//! Contract checked: stdout carries data only (the token, JSON), messages go to stderr; exit codes
//! 0 ok, 1 error, 2 usage, 4 authentication required; processes sharing one store refresh once.

mod support;

use std::collections::HashSet;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::*;

const PASSWORD_ENV: &str = "TESSERA_TEST_PASSWORD";
const CLIENT_SECRET_ENV: &str = "TESSERA_TEST_CLIENT_SECRET";

/// A config with one context `dev` holding the given `[[contexts.auth_providers]]` sections.
fn config(providers: &[String]) -> String {
    let mut text = String::from("current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n");
    for provider in providers {
        text.push_str("\n[[contexts.auth_providers]]\n");
        text.push_str(provider);
    }
    text
}

/// alice with the password grant, secrets by `env:` reference.
fn password_provider(name: &str, issuer: &str) -> String {
    format!(
        "name = \"{name}\"\ntype = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nusername = \"alice\"\npassword = \"env:{PASSWORD_ENV}\"\n\
         scope = \"openid api:read\"\n"
    )
}

/// A home whose only provider is `peer`: alice, password grant, at `issuer`.
fn alice_home(issuer: &str) -> Home {
    Home::new(&config(&[password_provider("peer", issuer)]))
        .with_env(PASSWORD_ENV, "alice-password")
        .with_env(CLIENT_SECRET_ENV, "confidential-secret")
}

/// `tessera status --json`, parsed: one object per provider.
fn status_json(home: &Home) -> Vec<Value> {
    let run = home.run(&["status", "--json"]);
    let rows: Value = serde_json::from_str(run.success()).unwrap_or_else(|e| panic!("status --json: {e}: {run:#?}"));
    rows.as_array().unwrap_or_else(|| panic!("status --json is not an array: {rows}")).clone()
}

/// `tessera token`: asserts success, a stdout of exactly one token line, and returns the token.
#[track_caller]
fn token(home: &Home, args: &[&str]) -> String {
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    let run = home.run(&all);
    let stdout = run.success();
    let token = stdout.strip_suffix('\n').unwrap_or_else(|| panic!("no trailing newline: {run:#?}"));
    assert!(!token.is_empty() && !token.contains(char::is_whitespace), "one token, one line: {run:#?}");
    token.to_owned()
}

fn oidc_provider(access_ttl_secs: u64) -> OidcProvider {
    OidcProvider::start(OidcProviderOptions { access_ttl_secs, ..OidcProviderOptions::default() })
}

fn oidc_active(op: &OidcProvider, token: &str) -> bool {
    let body = block_on(op.introspect(token));
    body["active"].as_bool().unwrap_or_else(|| panic!("introspection without `active`: {body}"))
}

// ---------------------------------------------------------------------------------------------
// Against the reference IdP (`tessera idp serve --test-endpoints`).

#[test]
fn login_token_status_refresh_and_logout_against_the_reference_idp() {
    let idp = ReferenceIdp::start(3);
    // 60-second tokens while checking caching and status; back to 3 s for the refresh part.
    idp.control("/_test/access_token_ttl", json!({ "seconds": 60 }));
    let home = alice_home(idp.issuer());

    let login = home.run(&["login"]);
    assert_eq!(login.success(), "", "stdout carries data only: {login:#?}");
    assert!(login.stderr.contains("Logged in to peer (dev)"), "{login:#?}");
    assert_eq!((idp.stat("password_grants"), idp.stat("token_requests")), (1, 1));
    let stored = home.stored_field("dev/peer", "access_token");

    let first = token(&home, &[]);
    assert_eq!(first, stored, "prints the stored token");
    assert_eq!(token(&home, &[]), first);
    assert_eq!(idp.stat("token_requests"), 1, "a valid stored token is printed without a request");
    assert!(idp.active(&first));

    let table = home.run(&["status"]);
    let table = table.success();
    assert!(table.starts_with("context: dev\n"), "{table}");
    assert!(table.lines().nth(1).is_some_and(|header| header.starts_with("NAME")), "{table}");
    let row = table.lines().find(|line| line.starts_with("peer ")).unwrap_or_else(|| panic!("no row: {table}"));
    let columns: Vec<_> = row.split_whitespace().collect();
    assert_eq!(columns[..3], ["peer", "password", "authenticated"], "{table}");
    assert!(row.contains(" in "), "expiry shown: {table}");

    let rows = status_json(&home);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((&row["name"], &row["type"], &row["key"]), (&json!("peer"), &json!("password"), &json!("dev/peer")));
    assert_eq!(row["context"], "dev", "{row}");
    assert_eq!(row["status"], "authenticated", "{row}");
    let expires_in = row["expires_in"].as_i64().unwrap_or_else(|| panic!("{row}"));
    assert!((50..=60).contains(&expires_in), "{row}");
    assert_eq!((&row["refreshable"], &row["error"]), (&json!(true), &Value::Null), "{row}");
    assert!(!row.to_string().contains(&first), "status never shows a token");

    // refresh --force: exactly one refresh, and the new (3-second) token is stored.
    idp.control("/_test/access_token_ttl", json!({ "seconds": 3 }));
    let forced = home.run(&["refresh", "--force"]);
    assert_eq!(forced.success(), "", "{forced:#?}");
    assert!(forced.stderr.contains("Token for peer is fresh"), "{forced:#?}");
    assert_eq!((idp.stat("refresh_grants"), idp.stat("token_requests")), (1, 2));
    let second = home.stored_field("dev/peer", "access_token");
    assert_ne!(second, first);

    // After expiry `token` refreshes, once.
    home.sleep_past_expiry("dev/peer");
    let expired = &status_json(&home)[0];
    assert_eq!(expired["status"], "expired", "{expired}");
    assert!(expired["expires_in"].as_i64().is_some_and(|s| s <= 0), "{expired}");
    let third = token(&home, &[]);
    assert_ne!(third, second);
    assert_eq!((idp.stat("refresh_grants"), idp.stat("token_requests")), (2, 3));
    assert_eq!(third, home.stored_field("dev/peer", "access_token"));
    assert!(idp.active(&third));
    let refresh_token = home.stored_field("dev/peer", "refresh_token");

    let logout = home.run(&["logout"]);
    assert_eq!(logout.success(), "", "{logout:#?}");
    assert!(logout.stderr.contains("Logged out of peer (token revoked)"), "{logout:#?}");
    assert_eq!(idp.stat("revocations"), 1);
    assert!(!idp.active(&refresh_token), "the refresh token is revoked");
    assert!(home.stored("dev/peer").is_none(), "forgotten");
    let row = &status_json(&home)[0];
    assert_eq!((&row["status"], &row["expires_in"]), (&json!("available"), &Value::Null), "{row}");

    let stats = idp.stats();
    assert_eq!(stats["refresh_token_reuse_detected"], 0, "{stats}");
    assert_eq!(stats["password_grants"], 1, "{stats}");
}

/// Each `tessera token` is a new process without a cached token; a stored token that is due for
/// an early refresh but still valid is printed when that refresh fails. Only past expiry does a
/// failing server make `token` fail.
#[test]
fn a_failed_early_refresh_still_prints_the_valid_stored_token() {
    let idp = ReferenceIdp::start(6);
    let home = alice_home(idp.issuer());
    home.run(&["login"]).success();
    let stored = home.stored_field("dev/peer", "access_token");
    // Into the early-refresh window (the last 3 s of a 6-second token), with over 2 s left.
    std::thread::sleep(home.stored_expires_in("dev/peer").saturating_sub(Duration::from_millis(2700)));
    let busy = json!({ "endpoint": "token", "times": 50, "kind": { "type": "status", "status": 503, "body": "busy" } });
    idp.control("/_test/faults", busy);

    let run = home.run(&["token"]);
    assert_eq!(run.success(), format!("{stored}\n"), "the valid token is printed: {run:#?}");
    assert!(run.stderr.contains("early refresh failed") && run.stderr.contains("503"), "{run:#?}");
    assert!(!run.stderr.contains('\u{1b}'), "no terminal escape codes when stderr is not a terminal: {run:#?}");
    assert!(idp.stat("faults_injected") >= 1, "a refresh was attempted");

    home.sleep_past_expiry("dev/peer");
    let run = home.run(&["token"]);
    assert!(run.failure(1).contains("503"), "expired and the server fails: {run:#?}");
    assert_eq!(run.stdout, "");

    idp.clear_faults();
    let fresh = token(&home, &[]);
    assert_ne!(fresh, stored);
    assert_eq!((idp.stat("refresh_grants"), idp.stat("password_grants")), (1, 1));
}

#[test]
fn a_misspelled_config_field_fails_naming_the_file_and_the_field() {
    let good = password_provider("peer", "http://127.0.0.1:9");
    let home = Home::new(&config(&[good.replace("username = ", "usernme = ")]));
    let path = home.config_path();
    for command in [&["token"][..], &["login"], &["status", "--json"]] {
        let run = home.run(command);
        let stderr = run.failure(1);
        assert_eq!(run.stdout, "", "{run:#?}");
        assert!(stderr.contains(&path.display().to_string()), "names the file: {run:#?}");
        assert!(stderr.contains("usernme"), "names the field: {run:#?}");
    }

    let home = Home::new(&config(&[good.replace("type = \"password\"", "type = \"pasword\"")]));
    let stderr = home.run(&["token"]).failure(1).to_owned();
    assert!(stderr.contains("provider \"peer\", field \"type\"") && stderr.contains("pasword"), "{stderr}");
    assert!(stderr.contains("password, client_credentials"), "lists the known types: {stderr}");
}

/// A configuration written before the field names were unified still works; every command says
/// which field to rename (on stderr, so stdout stays data), naming the file, context and provider.
#[test]
fn old_field_spellings_still_work_and_say_what_to_rename() {
    let old = "name = \"machine\"\nprovider = \"client_credentials\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
               client_id = \"c\"\nclient_secret = \"s\"\nclient_auth = \"post\"\n";
    let home = Home::new(&config(&[old.to_owned()]));
    let run = home.run(&["providers", "list"]);
    let listed = run.success().to_owned();
    assert!(listed.contains("machine") && listed.contains("client_credentials"), "{run:#?}");
    let path = home.config_path().display().to_string();
    for (old, new) in [
        ("provider", "type"),
        ("token_url", "token_endpoint"),
        ("client_auth = \"post\"", "client_auth = \"client_secret_post\""),
    ] {
        let line = format!("{path}: context \"dev\", provider \"machine\": {old} is deprecated: use {new}");
        assert!(run.stderr.contains(&line), "{line} in {run:#?}");
    }
    // The current spelling says nothing.
    let new = old
        .replace("provider =", "type =")
        .replace("token_url", "token_endpoint")
        .replace("\"post\"", "\"client_secret_post\"");
    let run = Home::new(&config(&[new])).run(&["providers", "list"]);
    run.success();
    assert!(!run.stderr.contains("deprecated"), "{run:#?}");
}

#[test]
fn unknown_provider_or_context_names_fail_listing_the_known_ones_and_bad_usage_exits_2() {
    let machine = "name = \"machine\"\ntype = \"client_credentials\"\ntoken_endpoint = \"http://127.0.0.1:9/token\"\n\
                   client_id = \"c\"\nclient_secret = \"env:UNSET_TESSERA_TEST_SECRET\"\n";
    let home = Home::new(&config(&[password_provider("peer", "http://127.0.0.1:9"), machine.to_owned()]));

    let run = home.run(&["token", "--provider", "nope"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("\"nope\"") && stderr.contains("peer, machine"), "{run:#?}");
    assert_eq!(run.stdout, "");

    let run = home.run(&["token"]);
    assert!(
        run.failure(1).contains("several providers: pass --provider") && run.stderr.contains("(one of: peer, machine)"),
        "{run:#?}"
    );

    let run = home.run(&["--context", "prod", "status"]);
    assert!(run.failure(1).contains("no context named \"prod\" (have: dev)"), "{run:#?}");

    // A secret reference that does not resolve: named, never guessed.
    let run = home.run(&["token", "-p", "machine"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("field \"client_secret\"") && stderr.contains("UNSET_TESSERA_TEST_SECRET"), "{run:#?}");

    let run = home.run(&["token", "--no-such-flag"]);
    run.failure(2);
    assert_eq!(run.stdout, "");
    assert!(home.store_path().parent().is_some_and(|dir| !dir.exists()), "nothing was stored");
}

#[cfg(unix)] // file modes
#[test]
fn a_store_file_readable_by_others_is_refused_and_left_unchanged() {
    let idp = ReferenceIdp::start(300);
    let home = alice_home(idp.issuer());
    home.run(&["login"]).success();
    let path = home.store_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let requests = idp.stat("token_requests");

    for command in [&["token"][..], &["refresh", "--force"], &["login"]] {
        let run = home.run(command);
        let stderr = run.failure(1);
        assert_eq!(run.stdout, "", "{run:#?}");
        assert!(stderr.contains("chmod 600") && stderr.contains(&path.display().to_string()), "{run:#?}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file is left as it was");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644, "and its mode too");
    assert_eq!(idp.stat("token_requests"), requests, "no request: the refusal comes first");

    // `status` still prints every row, and exits 1 because a provider is in error.
    let run = home.run(&["status", "--json"]);
    run.failure(1);
    let rows: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("status --json: {e}: {run:#?}"));
    let row = &rows[0];
    assert_eq!(row["status"], "error", "{row}");
    assert!(row["error"].as_str().is_some_and(|e| e.contains("chmod 600")), "{row}");
}

#[test]
fn a_revoked_refresh_token_past_expiry_exits_1_naming_the_reference_that_needs_a_new_one() {
    let idp = ReferenceIdp::start(3);
    let rt_provider = format!(
        "name = \"rt\"\ntype = \"refresh_token\"\nissuer = \"{}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nrefresh_token = \"env:TESSERA_TEST_REFRESH_TOKEN\"\n",
        idp.issuer()
    );
    let home = Home::new(&config(&[password_provider("seed", idp.issuer()), rt_provider]))
        .with_env(PASSWORD_ENV, "alice-password")
        .with_env(CLIENT_SECRET_ENV, "confidential-secret");
    home.run(&["login", "-p", "seed"]).success();
    let seed = home.stored_field("dev/seed", "refresh_token");
    let home = home.with_env("TESSERA_TEST_REFRESH_TOKEN", &seed);

    let first = token(&home, &["-p", "rt"]);
    assert_eq!(idp.stat("refresh_grants"), 1, "the configured refresh token was used");
    assert_eq!(first, home.stored_field("dev/rt", "access_token"));
    assert_ne!(home.stored_field("dev/rt", "refresh_token"), seed, "rotated and stored");

    let revoked = idp.control("/_test/revoke_user", json!({ "username": "alice" }));
    assert!(revoked["revoked"].as_u64().is_some_and(|n| n >= 1), "{revoked}");
    home.sleep_past_expiry("dev/rt");

    let run = home.run(&["token", "-p", "rt"]);
    // No login can renew a refresh-token provider: it needs a new refresh token, so not exit 4.
    let stderr = run.failure(1);
    assert_eq!(run.stdout, "", "{run:#?}");
    assert!(stderr.contains("reauthentication required"), "{run:#?}");
    assert!(
        stderr.contains("refresh_token (env:TESSERA_TEST_REFRESH_TOKEN)"),
        "names where the new one goes: {run:#?}"
    );
    assert!(stderr.contains("'tessera login --provider rt'") && !stderr.contains("terminal"), "{run:#?}");
    assert!(!stderr.contains(&seed) && !stderr.contains(&first), "no secret in messages: {run:#?}");
    let stats = idp.stats();
    assert_eq!((&stats["refresh_grants"], &stats["password_grants"]), (&json!(1), &json!(1)), "{stats}");
}

// ---------------------------------------------------------------------------------------------
// Against panva's oidc-provider.

/// How many `tessera token` processes run at once in the multi-process tests.
const PROCESSES: usize = 16;

/// Starts `count` `tessera token` processes at once, waits for all (at most 30 s in total), and
/// asserts that all succeeded and printed the same token, which it returns.
#[track_caller]
fn token_processes_at_once(home: &Home, count: usize) -> String {
    let mut children: Vec<_> = (0..count).map(|_| home.spawn(&["token"])).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let statuses: Vec<_> = children.iter_mut().map(|child| wait_until(child, deadline)).collect();
    assert!(statuses.iter().all(Option::is_some), "every process finished within 30 s: {statuses:?}");
    let runs: Vec<_> =
        children.into_iter().zip(statuses).map(|(child, status)| collect(child, status.unwrap())).collect();
    for run in &runs {
        run.success();
    }
    let printed: HashSet<_> = runs.iter().map(|run| run.stdout.as_str()).collect();
    assert_eq!(printed.len(), 1, "every process printed the same token: {runs:#?}");
    let token = printed.into_iter().next().unwrap();
    token.strip_suffix('\n').filter(|t| !t.contains('\n')).unwrap_or_else(|| panic!("one line: {runs:#?}")).to_owned()
}

/// Sixteen `tessera token` processes started at once on an expired token share one refresh:
/// the refresh token rotates, so a second refresh with the old one would be a reuse, which
/// oidc-provider punishes by revoking the whole grant.
#[test]
fn sixteen_token_processes_after_expiry_refresh_once_at_oidc_provider() {
    let op = oidc_provider(3);
    let home = alice_home(op.issuer());
    let login = home.run(&["login"]);
    assert_eq!(login.success(), "", "{login:#?}");
    let old_access = home.stored_field("dev/peer", "access_token");
    let old_refresh = home.stored_field("dev/peer", "refresh_token");
    assert!(oidc_active(&op, &old_access));

    home.sleep_past_expiry("dev/peer");
    block_on(op.reset_stats());
    let token = token_processes_at_once(&home, PROCESSES);
    assert_ne!(token, old_access, "a new token, not the expired one");

    let stats = block_on(op.stats());
    assert_eq!(stats.grant_type("refresh_token"), 1, "exactly one refresh request: {stats:?}");
    assert_eq!(stats.token_requests, 1, "and no other token request: {stats:?}");
    assert_eq!(stats.refresh_token_reuses, 0, "{stats:?}");
    assert_eq!(stats.grants_revoked, 0, "{stats:?}");

    assert_eq!(home.stored_field("dev/peer", "access_token"), token, "the store holds the printed token");
    let new_refresh = home.stored_field("dev/peer", "refresh_token");
    assert_ne!(new_refresh, old_refresh, "rotated");
    assert!(!oidc_active(&op, &old_refresh), "the old refresh token is consumed");
    let body = block_on(op.introspect(&new_refresh));
    assert_eq!((&body["active"], &body["sub"]), (&json!(true), &json!("alice")), "the grant is alive: {body}");
    assert!(oidc_active(&op, &token));
}

/// The same without a login first (the first process logs in, the others adopt its tokens), then
/// again while the token is still valid but inside its early-refresh window.
#[test]
fn sixteen_token_processes_log_in_once_then_refresh_once_early_at_oidc_provider() {
    let op = oidc_provider(4);
    let home = alice_home(op.issuer());
    let first = token_processes_at_once(&home, PROCESSES);
    let stats = block_on(op.stats());
    assert_eq!((stats.token_requests, stats.grant_type("password")), (1, 1), "one login: {stats:?}");
    assert_eq!(home.stored_field("dev/peer", "access_token"), first);

    // A 4-second token is refreshed in its last 2 s: start them all with about 1.6 s left.
    std::thread::sleep(home.stored_expires_in("dev/peer").saturating_sub(Duration::from_millis(1600)));
    block_on(op.reset_stats());
    let second = token_processes_at_once(&home, PROCESSES);
    assert_ne!(second, first, "refreshed early");
    let stats = block_on(op.stats());
    assert_eq!((stats.token_requests, stats.grant_type("refresh_token")), (1, 1), "one refresh: {stats:?}");
    assert_eq!((stats.refresh_token_reuses, stats.grants_revoked), (0, 0), "{stats:?}");
    assert!(oidc_active(&op, &home.stored_field("dev/peer", "refresh_token")), "the grant is alive");
}

#[test]
fn client_credentials_token_from_the_cli_is_active_at_oidc_provider() {
    let op = oidc_provider(60);
    let machine = format!(
        "name = \"machine\"\ntype = \"client_credentials\"\nissuer = \"{}\"\nclient_id = \"{}\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nclient_auth = \"post\"\nscope = \"api:read\"\n",
        op.issuer(),
        oidc_provider::POST_CLIENT_ID
    );
    let home = Home::new(&config(&[machine])).with_env(CLIENT_SECRET_ENV, oidc_provider::POST_CLIENT_SECRET);

    let first = token(&home, &[]);
    let body = block_on(op.introspect(&first));
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], oidc_provider::POST_CLIENT_ID, "{body}");
    let stored = home.stored("dev/machine").expect("stored");
    assert_eq!(stored["refresh_token"], Value::Null, "client credentials come without a refresh token");

    assert_eq!(token(&home, &[]), first, "cached");
    let stats = block_on(op.stats());
    assert_eq!((stats.token_requests, stats.grant_type("client_credentials")), (1, 1), "{stats:?}");
    let row = &status_json(&home)[0];
    assert_eq!((&row["status"], &row["refreshable"]), (&json!("authenticated"), &json!(true)), "{row}");
}

#[test]
fn logout_from_the_cli_revokes_at_oidc_provider() {
    let op = oidc_provider(60);
    let home = alice_home(op.issuer());
    home.run(&["login"]).success();
    let access = home.stored_field("dev/peer", "access_token");
    let refresh = home.stored_field("dev/peer", "refresh_token");
    assert!(oidc_active(&op, &access) && oidc_active(&op, &refresh));

    let logout = home.run(&["logout"]);
    assert_eq!(logout.success(), "", "{logout:#?}");
    assert!(logout.stderr.contains("token revoked"), "{logout:#?}");
    assert_eq!(block_on(op.stats()).revocations, 1);
    assert!(!oidc_active(&op, &refresh), "the refresh token is revoked");
    assert!(!oidc_active(&op, &access), "and with it the grant's access token");
    assert!(home.stored("dev/peer").is_none());
    assert_eq!(status_json(&home)[0]["status"], "available");

    let again = home.run(&["logout"]);
    assert!(again.success().is_empty() && again.stderr.contains("was not logged in"), "{again:#?}");
    assert_eq!(block_on(op.stats()).revocations, 1, "nothing left to revoke");
}

#[test]
fn password_with_a_totp_secret_logs_in_at_oidc_provider_and_a_wrong_password_exits_1() {
    let op = oidc_provider(60);
    let bob = format!(
        "name = \"bob\"\ntype = \"password\"\nissuer = \"{}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nusername = \"bob\"\npassword = \"env:{PASSWORD_ENV}\"\n\
         totp_secret = \"env:TESSERA_TEST_TOTP\"\nscope = \"openid api:read\"\n",
        op.issuer()
    );
    let home = Home::new(&config(std::slice::from_ref(&bob)))
        .with_env(PASSWORD_ENV, oidc_provider::BOB_PASSWORD)
        .with_env(CLIENT_SECRET_ENV, oidc_provider::CONFIDENTIAL_CLIENT_SECRET)
        .with_env("TESSERA_TEST_TOTP", oidc_provider::BOB_TOTP_SECRET);
    let login = home.run(&["login"]);
    assert_eq!(login.success(), "", "{login:#?}");
    let access = token(&home, &[]);
    let body = block_on(op.introspect(&access));
    assert_eq!((&body["active"], &body["sub"]), (&json!(true), &json!("bob")), "{body}");

    let wrong = Home::new(&config(&[bob]))
        .with_env(PASSWORD_ENV, "not-bobs-password")
        .with_env(CLIENT_SECRET_ENV, oidc_provider::CONFIDENTIAL_CLIENT_SECRET)
        .with_env("TESSERA_TEST_TOTP", oidc_provider::BOB_TOTP_SECRET);
    let refused = wrong.run(&["login"]);
    let stderr = refused.failure(1);
    assert!(stderr.contains("invalid_grant") && !stderr.contains("not-bobs-password"), "{refused:#?}");
    assert!(wrong.stored("dev/bob").is_none(), "nothing stored after a refused login");
}
