//! Exit codes and hints, as a person meets them: 4 only when logging in helps (and the hinted
//! command then works, `--context` and `--provider` included), 1 naming the secret reference to
//! fix when the server refuses the configured credentials (never its value), a hint that fits each
//! provider type, and static providers that neither fail `login --all` nor confuse `logout`.

mod support;

use support::*;

const CLIENT_SECRET_ENV: &str = "TESSERA_TEST_CLIENT_SECRET";

/// A `[[contexts]]` table named `name` with these provider sections.
fn context(name: &str, providers: &[String]) -> String {
    let mut text = format!("\n[[contexts]]\nname = \"{name}\"\n");
    for provider in providers {
        text.push_str("\n[[contexts.auth_providers]]\n");
        text.push_str(provider);
    }
    text
}

fn password(name: &str, issuer: &str, user: &str, password_env: &str) -> String {
    format!(
        "name = \"{name}\"\ntype = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"confidential-client\"\n\
         client_secret = \"env:{CLIENT_SECRET_ENV}\"\nusername = \"{user}\"\npassword = \"env:{password_env}\"\n"
    )
}

#[test]
fn refused_credentials_exit_1_naming_the_reference_and_never_the_value() {
    let idp = ReferenceIdp::start(300);
    let wrong = "not-alices-password-7f3a";
    let home = Home::new(&format!(
        "current_context = \"dev\"\n{}",
        context(
            "dev",
            &[
                password("peer", idp.issuer(), "alice", "PEER_PASSWORD"),
                // bob needs a TOTP code, and none is configured.
                password("bob", idp.issuer(), "bob", "BOB_PASSWORD"),
            ]
        )
    ))
    .with_env("PEER_PASSWORD", wrong)
    .with_env("BOB_PASSWORD", "bob-password")
    .with_env(CLIENT_SECRET_ENV, "confidential-secret");

    for args in [&["token", "-p", "peer"][..], &["login", "-p", "peer"], &["refresh", "-p", "peer"]] {
        let run = home.run(args);
        // A login would send the same password again: not "authentication required".
        let stderr = run.failure(1);
        assert!(stderr.contains("password (env:PEER_PASSWORD)"), "names the reference to fix: {run:#?}");
        assert!(!stderr.contains(wrong), "never the value: {run:#?}");
        assert!(!stderr.contains("hint: run"), "no login hint that cannot help: {run:#?}");
    }
    let run = home.run(&["token", "-p", "bob"]);
    let stderr = run.failure(1);
    assert!(stderr.contains("TOTP") && stderr.contains("totp_secret"), "says what is missing: {run:#?}");
    assert!(!stderr.contains("bob-password"), "{run:#?}");
    assert!(home.stored("dev/peer").is_none() && home.stored("dev/bob").is_none());
}

#[test]
fn the_login_hint_repeats_context_and_provider_and_then_works() {
    // `prod` is not the current context and has two providers: the hint must name both.
    let home = Home::new(&format!(
        "current_context = \"dev\"\n{}{}",
        context("dev", &["name = \"other\"\ntype = \"static\"\n".into()]),
        context(
            "prod",
            &[
                "name = \"given\"\ntype = \"static\"\n".into(),
                "name = \"tv\"\ntype = \"device_code\"\ntoken_endpoint = \"http://127.0.0.1:9/token\"\n\
                 device_authorization_endpoint = \"http://127.0.0.1:9/device\"\nclient_id = \"cli\"\n"
                    .into(),
            ]
        )
    ));

    // A device-code provider never logged in: "not logged in", not "the token expired".
    let run = home.run(&["--context", "prod", "token", "-p", "tv"]);
    let stderr = run.failure(4);
    assert!(stderr.contains("hint: run 'tessera --context prod login --provider tv' in a terminal"), "{run:#?}");
    assert!(stderr.contains("not logged in") && !stderr.contains("expired"), "{run:#?}");
    assert!(!stderr.contains("device_code grant"), "in words, not wire names: {run:#?}");
    assert!(!stderr.contains("WARN"), "the error once, no log line repeating it: {run:#?}");

    // A static provider without a token: the hint is `login --with-token`, with the context.
    let run = home.run(&["--context", "prod", "token", "-p", "given"]);
    let stderr = run.failure(4);
    let hint = "'tessera --context prod login --provider given --with-token'";
    assert!(stderr.contains(hint), "{run:#?}");
    // ... and that command, run as shown, works.
    let command = hint.trim_matches('\'').split(' ').skip(1).collect::<Vec<_>>();
    home.run_wrapped(&[], &command, Some("the-given-token\n")).success();
    assert_eq!(home.run(&["--context", "prod", "token", "-p", "given"]).success(), "the-given-token\n");
    assert!(home.stored("dev/other").is_none(), "the other context is untouched");
}

#[test]
fn a_dead_refresh_token_provider_needs_a_new_refresh_token_not_a_terminal_login() {
    let idp = ReferenceIdp::start(300);
    let home = Home::new(&format!(
        "current_context = \"dev\"\n{}",
        context(
            "dev",
            &[format!(
                "name = \"rt\"\ntype = \"refresh_token\"\nissuer = \"{}\"\nclient_id = \"confidential-client\"\n\
                 client_secret = \"env:{CLIENT_SECRET_ENV}\"\nrefresh_token = \"env:RT\"\n",
                idp.issuer()
            )]
        )
    ))
    .with_env("RT", "not-a-refresh-token-91c2")
    .with_env(CLIENT_SECRET_ENV, "confidential-secret");
    for args in [&["token"][..], &["login"]] {
        let run = home.run(args);
        let stderr = run.failure(1);
        assert!(stderr.contains("put a new refresh token in refresh_token (env:RT)"), "{run:#?}");
        assert!(!stderr.contains("in a terminal"), "{run:#?}");
        assert!(!stderr.contains("not-a-refresh-token-91c2"), "{run:#?}");
    }
}

#[test]
fn a_static_provider_without_a_token_does_not_fail_login_all() {
    let idp = ReferenceIdp::start(300);
    let home = Home::new(&format!(
        "current_context = \"dev\"\n{}",
        context(
            "dev",
            &[
                "name = \"given\"\ntype = \"static\"\n".into(),
                format!(
                    "name = \"robot\"\ntype = \"client_credentials\"\nissuer = \"{}\"\n\
                     client_id = \"confidential-client\"\nclient_secret = \"env:{CLIENT_SECRET_ENV}\"\n",
                    idp.issuer()
                ),
            ]
        )
    ))
    .with_env(CLIENT_SECRET_ENV, "confidential-secret");
    let run = home.run(&["login", "--all"]);
    run.success();
    assert!(run.stderr.contains("Skipped given") && run.stderr.contains("--with-token"), "{run:#?}");
    assert!(run.stderr.contains("Logged in to robot"), "{run:#?}");
}

#[test]
fn help_documents_the_exit_codes() {
    let home = Home::new("");
    let help = home.run(&["--help"]);
    let text = help.success();
    for line in ["Exit codes:", "  4    authentication required", "  127  exec: the command was not found"] {
        assert!(text.contains(line), "{line:?} missing from --help: {text}");
    }
}
