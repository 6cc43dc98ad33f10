//! The CLI as a gh or kubectl user expects it (issue 16): a default provider per context
//! (`current_provider`, `tessera config use-provider`), the account, scopes and expiry in `status`,
//! and one JSON schema across every `--json` output, checked against the table in docs/cli.md.
//!
//! Every run has its own `TESSERA_HOME`; the reference IdP runs as `tessera idp serve`.

mod support;

use serde_json::{Value, json};
use support::*;

const PASSWORD_ENV: &str = "TESSERA_TEST_PASSWORD";
const CLIENT_SECRET_ENV: &str = "TESSERA_TEST_CLIENT_SECRET";

fn password_provider(name: &str, issuer: &str) -> String {
    format!(
        "\n[[contexts.auth_providers]]\nname = \"{name}\"\ntype = \"password\"\nissuer = \"{issuer}\"\n\
         client_id = \"confidential-client\"\nclient_secret = \"env:{CLIENT_SECRET_ENV}\"\nusername = \"alice\"\n\
         password = \"env:{PASSWORD_ENV}\"\nscope = \"openid api:read\"\n"
    )
}

fn machine_provider(issuer: &str) -> String {
    format!(
        "\n[[contexts.auth_providers]]\nname = \"machine\"\ntype = \"client_credentials\"\nissuer = \"{issuer}\"\n\
         client_id = \"confidential-client\"\nclient_secret = \"env:{CLIENT_SECRET_ENV}\"\n"
    )
}

fn home(text: &str) -> Home {
    Home::new(text).with_env(PASSWORD_ENV, "alice-password").with_env(CLIENT_SECRET_ENV, "confidential-secret")
}

#[track_caller]
fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
}

/// A context `dev` with peer (alice, password) and machine (client credentials), and a context
/// `prod` with one static provider.
fn two_provider_home(issuer: &str) -> (Home, String) {
    let text = format!(
        "# my settings\ncurrent_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"   # the dev stack\n{}{}\n\
         [[contexts]]\nname = \"prod\"\n\n[[contexts.auth_providers]]\nname = \"ci\"\ntype = \"static\"\n",
        password_provider("peer", issuer),
        machine_provider(issuer)
    );
    (home(&text), text)
}

#[test]
fn use_provider_sets_the_default_that_commands_without_provider_use() {
    let idp = ReferenceIdp::start(300);
    let (home, text) = two_provider_home(idp.issuer());
    home.run(&["login", "--all"]).success();

    // Several providers and no default: an error naming them and the command that sets one.
    for args in [&["token"][..], &["refresh"], &["logout"]] {
        let run = home.run(args);
        let message = run.failure(1);
        assert!(
            message.contains("several providers")
                && message.contains("tessera config use-provider NAME")
                && message.contains("(one of: peer, machine)"),
            "{run:#?}"
        );
        assert_eq!(run.stdout, "");
    }

    let run = home.run(&["config", "use-provider", "machine"]);
    assert_eq!(run.success(), "", "messages on stderr only");
    assert!(run.stderr.contains("Default provider of context \"dev\" is now \"machine\""), "{run:#?}");
    let after = std::fs::read_to_string(home.config_path()).unwrap();
    assert_eq!(
        after,
        text.replacen(
            "name = \"dev\"   # the dev stack\n",
            "name = \"dev\"   # the dev stack\ncurrent_provider = \"machine\"\n",
            1
        ),
        "one line added, comments kept"
    );

    let machine = home.stored_field("dev/machine", "access_token");
    let peer = home.stored_field("dev/peer", "access_token");
    assert_eq!(home.run(&["token"]).success(), format!("{machine}\n"), "the default is used");
    assert_eq!(home.run(&["token", "-p", "peer"]).success(), format!("{peer}\n"), "--provider wins");
    let mut env = home.command(&["token"]);
    env.env("TESSERA_PROVIDER", "peer");
    let run = collect_run(env);
    assert_eq!(run.success(), format!("{peer}\n"), "TESSERA_PROVIDER wins over current_provider");

    // get-contexts shows it (JSON and a `*` in the table).
    let contexts = json_of(&home.run(&["config", "get-contexts", "--json"]));
    assert_eq!(contexts[0]["current_provider"], "machine", "{contexts}");
    assert_eq!(contexts[1]["current_provider"], Value::Null, "{contexts}");
    let table = home.run(&["config", "get-contexts"]);
    assert!(table.success().contains("peer,machine*"), "{table:#?}");

    // Switching again edits the same line; logout without -p logs out of the default only.
    home.run(&["config", "use-provider", "peer"]).success();
    let again = std::fs::read_to_string(home.config_path()).unwrap();
    assert_eq!(again, after.replace("current_provider = \"machine\"", "current_provider = \"peer\""));
    let run = home.run(&["logout"]);
    run.success();
    assert!(run.stderr.contains("Logged out of peer") && !run.stderr.contains("machine"), "{run:#?}");
    assert!(home.stored("dev/peer").is_none() && home.stored("dev/machine").is_some());

    // An unknown name is refused with the names there are, and the file is left alone; --context
    // chooses the context whose default is set.
    let run = home.run(&["config", "use-provider", "nobody"]);
    assert!(run.failure(1).contains("has no provider named \"nobody\" (have: peer, machine)"), "{run:#?}");
    assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), again);
    let run = home.run(&["--context", "prod", "config", "use-provider", "peer"]);
    assert!(run.failure(1).contains("context \"prod\" has no provider named \"peer\" (have: ci)"), "{run:#?}");
    home.run(&["--context", "prod", "config", "use-provider", "ci"]).success();
    let contexts = json_of(&home.run(&["config", "get-contexts", "--json"]));
    assert_eq!((&contexts[0]["current_provider"], &contexts[1]["current_provider"]), (&json!("peer"), &json!("ci")));

    // A current_provider written by hand that names no provider: a configuration error naming it.
    std::fs::write(home.config_path(), again.replace("current_provider = \"peer\"", "current_provider = \"gone\""))
        .unwrap();
    let run = home.run(&["status"]);
    let message = run.failure(1);
    assert!(
        message.contains("current_provider \"gone\" names no provider") && message.contains("(have: peer, machine)"),
        "{run:#?}"
    );
}

/// Runs a prepared command to completion.
fn collect_run(mut command: std::process::Command) -> Run {
    let mut child = command.spawn().expect("spawn");
    let status = wait_until(&mut child, std::time::Instant::now() + RUN_TIMEOUT).expect("finishes");
    collect(child, status)
}

#[test]
fn status_shows_the_account_scopes_and_expiry_never_a_token() {
    let idp = ReferenceIdp::start(300);
    let (home, _) = two_provider_home(idp.issuer());
    home.run(&["login", "--all"]).success();
    let id_token = home.stored_field("dev/peer", "id_token");
    assert!(id_token.split('.').count() == 3, "the IdP issued an ID token for scope openid");

    let run = home.run(&["status"]);
    let table = run.success();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "context: dev", "{table}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TYPE", "STATUS", "ACCOUNT", "EXPIRES", "SCOPE"]
    );
    let peer: Vec<&str> = lines[2].split_whitespace().collect();
    // alice's preferred_username from the ID token, the granted scope, the expiry.
    assert_eq!(peer[..4], ["peer", "password", "authenticated", "alice"], "{table}");
    assert!(lines[2].contains(" in 4m") || lines[2].contains(" in 5m00s"), "{table}");
    assert!(lines[2].ends_with("openid api:read"), "{table}");
    // A machine login names no person: no ID token, no account.
    let machine: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(machine[..4], ["machine", "client_credentials", "authenticated", "-"], "{table}");

    let rows = json_of(&home.run(&["status", "--json"]));
    let peer = rows.as_array().and_then(|rows| rows.iter().find(|r| r["name"] == "peer")).expect("peer row");
    assert_eq!(
        peer["account"],
        json!({ "subject": "alice", "username": "alice", "email": "alice@example.com" }),
        "{peer}"
    );
    assert_eq!(peer["scope"], "openid api:read", "{peer}");
    let machine = rows.as_array().and_then(|rows| rows.iter().find(|r| r["name"] == "machine")).expect("machine row");
    assert_eq!(machine["account"], Value::Null, "{machine}");

    // No token of any kind in either output.
    for secret in
        [id_token, home.stored_field("dev/peer", "access_token"), home.stored_field("dev/peer", "refresh_token")]
    {
        let piece = &secret[secret.len() - 16..];
        assert!(!table.contains(piece) && !rows.to_string().contains(piece), "a token was printed");
    }

    // Logged out: no account, no scope.
    home.run(&["logout", "-p", "peer"]).success();
    let rows = json_of(&home.run(&["status", "--json"]));
    let peer = rows.as_array().and_then(|rows| rows.iter().find(|r| r["name"] == "peer")).expect("peer row");
    assert_eq!((&peer["account"], &peer["scope"], &peer["status"]), (&Value::Null, &Value::Null, &json!("available")));
}
