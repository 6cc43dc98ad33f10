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

/// The JSON schema table of docs/cli.md: for each output (named by the first command in its
/// cell, e.g. `status --json`), its keys (dotted for an object's members) and their types.
fn documented_schemas() -> Vec<(String, Vec<(String, String)>)> {
    const BEGIN: &str = "<!-- BEGIN json schema";
    const END: &str = "<!-- END json schema -->";
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let start = doc.find(BEGIN).expect("the schema table's begin marker");
    let end = doc[start..].find(END).expect("its end marker") + start;
    let mut schemas: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in doc[start..end].lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 3, "three cells: {line}");
        let unquote = |cell: &str| cell.split('`').nth(1).unwrap_or_else(|| panic!("a `name` in {line}")).to_owned();
        if !cells[0].is_empty() {
            schemas.push((unquote(cells[0]), Vec::new()));
        }
        let (_, keys) = schemas.last_mut().expect("a row naming the output comes first");
        keys.push((unquote(cells[1]), cells[2].to_owned()));
    }
    schemas
}

fn schema<'a>(schemas: &'a [(String, Vec<(String, String)>)], output: &str) -> &'a [(String, String)] {
    &schemas.iter().find(|(name, _)| name == output).unwrap_or_else(|| panic!("{output} is not documented")).1
}

/// Asserts that `value` has exactly the documented keys (members of documented objects too),
/// each of its documented type.
#[track_caller]
fn check(value: &Value, keys: &[(String, String)], what: &str) {
    fn check_object(value: &Value, keys: &[(String, String)], prefix: &str, what: &str) {
        let object = value.as_object().unwrap_or_else(|| panic!("{what}: {prefix:?} is not an object: {value}"));
        let documented: Vec<&(String, String)> = keys
            .iter()
            .filter(|(key, _)| key.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.contains('.')))
            .collect();
        let mut expected: Vec<&str> = documented.iter().map(|(key, _)| &key[prefix.len()..]).collect();
        let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
        expected.sort_unstable();
        actual.sort_unstable();
        assert_eq!(actual, expected, "{what}: the keys of {prefix:?} are not the documented ones: {value}");
        for (key, kind) in documented {
            let member = &object[&key[prefix.len()..]];
            let (kind, nullable) = match kind.strip_suffix('?') {
                Some(kind) => (kind, true),
                None => (kind.as_str(), false),
            };
            let fits = match (kind, member) {
                (_, Value::Null) => nullable,
                ("string", Value::String(_)) | ("boolean", Value::Bool(_)) | ("array", Value::Array(_)) => true,
                ("integer", Value::Number(n)) => n.is_i64(),
                ("time", Value::String(text)) => {
                    parse_rfc3339(text);
                    true
                }
                ("object", Value::Object(_)) => {
                    // Members are checked when the table lists them (`extra` is free-form).
                    if keys.iter().any(|(k, _)| k.starts_with(&format!("{key}."))) {
                        check_object(member, keys, &format!("{key}."), what);
                    }
                    true
                }
                _ => false,
            };
            assert!(fits, "{what}: {key} should be {kind}{}: {value}", if nullable { " or null" } else { "" });
        }
    }
    check_object(value, keys, "", what);
}

/// The rules every JSON output keeps, whatever its keys: the type is `type` (never `provider`),
/// no unit in a key's name, every `*_at` an RFC 3339 instant.
fn check_rules(value: &Value, what: &str) {
    match value {
        Value::Object(object) => {
            for (key, member) in object {
                assert!(key != "provider" && !key.ends_with("_secs") && !key.ends_with("_ms"), "{what}: key {key}");
                if key.ends_with("_at") && !member.is_null() {
                    parse_rfc3339(member.as_str().unwrap_or_else(|| panic!("{what}: {key} is not a string")));
                }
                check_rules(member, what);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| check_rules(item, what)),
        _ => {}
    }
}

#[test]
fn every_json_output_follows_the_schema_documented_in_cli_md() {
    let schemas = documented_schemas();
    let documented: Vec<&str> = schemas.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        documented,
        [
            "status --json",
            "providers list --json",
            "token --json",
            "config get-contexts --json",
            "keys list --json",
            "keys create --json"
        ]
    );
    let idp = ReferenceIdp::start(300);
    let (home, _) = two_provider_home(idp.issuer());
    home.run(&["config", "use-provider", "peer"]).success();
    home.run(&["login", "--all"]).success();
    let mut checked = 0;
    let mut checked_run = |args: &[&str], output: &str, rows: bool| -> Value {
        let run = home.run(args);
        run.success();
        let value = json_of(&run);
        let what = args.join(" ");
        check_rules(&value, &what);
        let keys = schema(&schemas, output);
        if rows {
            let rows = value.as_array().unwrap_or_else(|| panic!("{what}: not an array: {value}"));
            assert!(!rows.is_empty(), "{what}: no rows");
            rows.iter().for_each(|row| check(row, keys, &what));
        } else {
            check(&value, keys, &what);
        }
        checked += 1;
        value
    };

    // Logged in (account, scope, times) and not (nulls): both shapes are in the schema.
    checked_run(&["status", "--json"], "status --json", true);
    checked_run(&["providers", "list", "--json"], "providers list --json", true);
    checked_run(&["token", "--json"], "token --json", false);
    checked_run(&["token", "-p", "machine", "--format", "json"], "token --json", false);
    checked_run(&["config", "get-contexts", "--json"], "config get-contexts --json", true);

    let created = checked_run(&["keys", "create", "ci", "--json"], "keys create --json", false);
    check(&created["key"], schema(&schemas, "keys list --json"), "keys create --json: key");
    let id = created["key"]["id"].as_str().expect("an id").to_owned();
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    assert_eq!(idp.whoami(&secret).0, 200, "used once: last_used_at is set");
    let listed = checked_run(&["keys", "list", "--json"], "keys list --json", true);
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    checked_run(&["keys", "get", &id, "--json"], "keys list --json", false);
    checked_run(&["admin", "keys", "list", "--json"], "keys list --json", true);
    checked_run(&["admin", "keys", "get", &id, "--json"], "keys list --json", false);
    checked_run(&["keys", "revoke", &id, "--json"], "keys list --json", false);
    let other = checked_run(&["keys", "create", "other", "--json"], "keys create --json", false);
    let other = other["key"]["id"].as_str().expect("an id").to_owned();
    let revoked = checked_run(&["admin", "keys", "revoke", &other, "--json"], "keys list --json", false);
    assert_eq!(revoked["last_used_at"], Value::Null, "{revoked}");

    home.run(&["logout", "--all"]).success();
    checked_run(&["status", "--json"], "status --json", true);
    checked_run(&["providers", "list", "--json"], "providers list --json", true);
    assert_eq!(checked, 15);

    // A check that can fail: an undocumented key, a wrong type, a number for a time.
    let keys = schema(&schemas, "token --json");
    for broken in [
        json!({ "context": "dev", "name": "p", "type": "t", "access_token": "a", "token_type": "Bearer",
                "expires_at": null, "expires_in": null, "scope": null, "extra": 1 }),
        json!({ "context": "dev", "name": "p", "type": "t", "access_token": "a", "token_type": "Bearer",
                "expires_at": 1_767_225_600, "expires_in": null, "scope": null }),
    ] {
        let result = std::panic::catch_unwind(|| check(&broken, keys, "broken"));
        assert!(result.is_err(), "{broken} passed the check");
    }
}
