//! `tessera logout` revokes with the client's credentials only: a login secret that is missing
//! (the password's variable unset) does not stop the revocation. When revocation fails, the grant
//! is reported alive and the exit code is 1. Checked by introspection at the reference IdP and at
//! panva's oidc-provider.

mod support;

use std::time::{Duration, Instant};

use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::*;

const PASSWORD_ENV: &str = "TESSERA_TEST_PASSWORD";
const CLIENT_SECRET_ENV: &str = "TESSERA_TEST_CLIENT_SECRET";

fn alice_home(issuer: &str, password: &str, client_secret: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\n\
         name = \"peer\"\ntype = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nusername = \"alice\"\npassword = \"env:{PASSWORD_ENV}\"\n\
         scope = \"openid api:read\"\n\n[[contexts.auth_providers]]\nname = \"given\"\ntype = \"static\"\n"
    ))
    .with_env(PASSWORD_ENV, password)
    .with_env(CLIENT_SECRET_ENV, client_secret)
}

/// Runs `tessera args` in `home` with the variable `unset` removed from its environment.
fn run_without(home: &Home, unset: &str, args: &[&str]) -> Run {
    let mut command = home.command(args);
    command.env_remove(unset);
    let mut child = command.spawn().expect("spawn");
    let status = wait_until(&mut child, Instant::now() + RUN_TIMEOUT).expect("finished");
    collect(child, status)
}

#[test]
fn logout_revokes_at_the_reference_idp_without_the_password() {
    let idp = ReferenceIdp::start(300);
    let home = alice_home(idp.issuer(), "alice-password", "confidential-secret");
    home.run(&["login", "-p", "peer"]).success();
    let access = home.stored_field("dev/peer", "access_token");
    let refresh = home.stored_field("dev/peer", "refresh_token");
    assert!(idp.active(&access) && idp.active(&refresh));

    // The password's variable is gone: revocation needs only the client's credentials.
    let run = run_without(&home, PASSWORD_ENV, &["logout", "-p", "peer"]);
    assert_eq!(run.success(), "", "{run:#?}");
    assert!(run.stderr.contains("token revoked"), "{run:#?}");
    assert!(!idp.active(&refresh), "the refresh token is revoked at the server");
    assert!(!idp.active(&access), "and with it the grant's access token");
    assert!(home.stored("dev/peer").is_none());
}

#[test]
fn a_failed_revocation_reports_the_grant_alive_and_exits_1() {
    let idp = ReferenceIdp::start(300);
    let home = alice_home(idp.issuer(), "alice-password", "confidential-secret");
    home.run(&["login", "-p", "peer"]).success();
    let refresh = home.stored_field("dev/peer", "refresh_token");

    let broken = serde_json::json!({ "endpoint": "revoke", "times": 5, "kind": { "type": "status", "status": 500, "body": "down" } });
    idp.control("/_test/faults", broken);
    let run = home.run(&["logout", "-p", "peer"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("revocation failed") && stderr.contains("still alive at the server"), "{run:#?}");
    assert!(idp.active(&refresh), "the grant is indeed alive");
    assert!(home.stored("dev/peer").is_none(), "forgotten here all the same");
    idp.clear_faults();

    // Without the client's secret nothing can be revoked: the same, and no secret in the message.
    home.run(&["login", "-p", "peer"]).success();
    let refresh = home.stored_field("dev/peer", "refresh_token");
    let run = run_without(&home, CLIENT_SECRET_ENV, &["logout", "--all"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("still alive at the server") && stderr.contains(CLIENT_SECRET_ENV), "{run:#?}");
    assert!(!stderr.contains("alice-password") && !stderr.contains(&refresh), "{run:#?}");
    assert!(idp.active(&refresh));
}

#[test]
fn a_static_provider_logs_out_without_a_revocation_failure() {
    let idp = ReferenceIdp::start(300);
    let home = alice_home(idp.issuer(), "alice-password", "confidential-secret");
    home.run_wrapped(&[], &["login", "-p", "given", "--with-token"], Some("tok-1\n")).success();
    let run = home.run(&["logout", "-p", "given"]);
    run.success();
    assert!(run.stderr.contains("Logged out of given (token forgotten"), "{run:#?}");
    assert!(!run.stderr.contains("revocation failed") && !run.stderr.contains("error"), "{run:#?}");
    assert!(home.stored("dev/given").is_none());
}

#[test]
fn logout_revokes_at_oidc_provider_without_the_password() {
    let op = OidcProvider::start(OidcProviderOptions { access_ttl_secs: 60, ..OidcProviderOptions::default() });
    let home = alice_home(op.issuer(), oidc_provider::ALICE_PASSWORD, oidc_provider::CONFIDENTIAL_CLIENT_SECRET);
    home.run(&["login", "-p", "peer"]).success();
    let refresh = home.stored_field("dev/peer", "refresh_token");
    let active = |token: &str| block_on(op.introspect(token))["active"].as_bool().expect("active");
    assert!(active(&refresh));

    let run = run_without(&home, PASSWORD_ENV, &["logout", "-p", "peer"]);
    assert!(run.success().is_empty() && run.stderr.contains("token revoked"), "{run:#?}");
    assert_eq!(block_on(op.stats()).revocations, 1);
    // oidc-provider may take a moment to answer for a revoked grant everywhere.
    let deadline = Instant::now() + Duration::from_secs(5);
    while active(&refresh) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!active(&refresh), "the refresh token is revoked at oidc-provider");
}

#[test]
fn a_provider_whose_password_is_typed_at_login_is_revoked_at_logout() {
    let idp = ReferenceIdp::start(300);
    // No `password` in the section: the person types it at login.
    let home = Home::new(&format!(
        "[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"peer\"\ntype = \"password\"\n\
         issuer = \"{}\"\nclient_id = \"confidential-client\"\nclient_secret = \"env:{CLIENT_SECRET_ENV}\"\n\
         username = \"alice\"\n",
        idp.issuer()
    ))
    .with_env(CLIENT_SECRET_ENV, "confidential-secret");
    let typed = format!("{}\n", tessera_idp::demo::ALICE_PASSWORD);
    home.run_wrapped(&[], &["login", "--prompt", "always"], Some(&typed)).success();
    let refresh = home.stored_field("dev/peer", "refresh_token");
    assert!(idp.active(&refresh));

    let run = home.run(&["logout"]);
    assert_eq!(run.success(), "", "{run:#?}");
    assert!(run.stderr.contains("token revoked"), "{run:#?}");
    assert!(!idp.active(&refresh), "the refresh token is revoked at the server");
    assert!(home.stored("dev/peer").is_none());
}
