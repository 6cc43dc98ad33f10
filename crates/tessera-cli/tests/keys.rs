//! `tessera keys ...` and `tessera admin keys ...` against the reference IdP run as
//! `tessera idp serve --test-endpoints`: the secret printed once on stdout, lifetime bounds as
//! usage errors, list filters and JSON, get of an unknown id, revoke by id and by a secret on
//! stdin, expiry by the server's clock, admin rights (403 → exit 1, "permission denied"), and the
//! `api_key` provider reading `TESSERA_API_KEY` (trimmed, prefix checked).

mod support;

use serde_json::Value;
use support::*;

const BOB_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// alice (admin) and bob (not admin, TOTP) by the password grant, and an `api_key` provider.
fn home(idp: &ReferenceIdp) -> Home {
    let user = |name: &str, extra: &str| {
        format!(
            "[[contexts.auth_providers]]\nname = \"{name}\"\ntype = \"password\"\nissuer = \"{}\"\n\
             client_id = \"confidential-client\"\nclient_secret = \"confidential-secret\"\n\
             username = \"{name}\"\npassword = \"{name}-password\"\n{extra}\n",
            idp.issuer()
        )
    };
    Home::new(&format!(
        "current_context = \"dev\"\n[[contexts]]\nname = \"dev\"\n{}{}\
         [[contexts.auth_providers]]\nname = \"key\"\ntype = \"api_key\"\n",
        user("alice", ""),
        user("bob", &format!("totp_secret = \"{BOB_TOTP_SECRET}\"")),
    ))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `GET /api/whoami` with `Authorization: Bearer <secret>`: the HTTP status.
fn whoami(idp: &ReferenceIdp, secret: &str) -> u16 {
    block_on(async {
        let response = http_client().get(idp.url("/api/whoami")).bearer_auth(secret).send().await.expect("answers");
        response.status().as_u16()
    })
}

/// `tessera keys create NAME --json` as alice: `(key, secret)`.
fn create(home: &Home, name: &str, days: &str) -> (Value, String) {
    let run = home.run(&["keys", "-p", "alice", "create", name, "--expires-in-days", days, "--json"]);
    let body = json(run.success());
    (body["key"].clone(), body["secret"].as_str().expect("secret").to_owned())
}

fn ids(text: &str) -> Vec<String> {
    json(text).as_array().expect("a JSON array").iter().map(|k| k["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn create_prints_the_secret_once_and_checks_the_lifetime() {
    let idp = ReferenceIdp::start(300);
    let home = home(&idp);

    let run = home.run(&["keys", "-p", "alice", "create", "ci"]);
    let secret = run.success().trim().to_owned();
    assert_eq!(run.stdout, format!("{secret}\n"), "stdout holds the secret alone");
    assert!(secret.starts_with("qk_") && secret.len() > 40, "{secret}");
    assert!(run.stderr.contains("only time its secret is shown"), "{}", run.stderr);
    assert!(!run.stderr.contains(&secret), "the secret goes to stdout only");
    assert_eq!(whoami(&idp, &secret), 200);

    for days in ["0", "366"] {
        let run = home.run(&["keys", "-p", "alice", "create", "bad", "--expires-in-days", days]);
        assert!(run.failure(2).contains("1..=365"), "{run:?}");
    }
    for (days, lifetime_days) in [("1", 1), ("365", 365)] {
        let (key, _) = create(&home, "bounded", days);
        let time = |field: &str| parse_rfc3339(key[field].as_str().unwrap_or_else(|| panic!("{field}: {key}")));
        let lifetime = (time("expires_at") - time("created_at")) * 1000;
        assert_eq!(lifetime, lifetime_days * 24 * 60 * 60 * 1000, "{key}");
    }

    // Listing shows the fingerprint, never the secret.
    let list = home.run(&["keys", "-p", "alice", "list"]);
    let table = list.success();
    assert!(table.contains("FINGERPRINT") && table.contains("ACTIVE"), "{table}");
    assert!(!table.contains(&secret) && !table.contains(&secret[3..]), "{table}");
    assert_eq!(ids(home.run(&["keys", "-p", "alice", "list", "--json"]).success()).len(), 3);
}

#[test]
fn list_get_and_revoke_by_id_and_by_secret() {
    let idp = ReferenceIdp::start(300);
    let home = home(&idp);
    let (ci, ci_secret) = create(&home, "ci", "30");
    let (deploy, deploy_secret) = create(&home, "deploy", "30");
    let id = |key: &Value| key["id"].as_str().unwrap().to_owned();

    assert_eq!(ids(home.run(&["keys", "-p", "alice", "list", "--name", "deploy", "--json"]).success()), [id(&deploy)]);
    let fingerprint = ci["fingerprint"].as_str().unwrap();
    let by_fingerprint = home.run(&["keys", "-p", "alice", "list", "--fingerprint", fingerprint, "--json"]);
    assert_eq!(ids(by_fingerprint.success()), [id(&ci)]);

    let got = json(home.run(&["keys", "-p", "alice", "get", &id(&ci), "--json"]).success());
    assert_eq!(got, ci);
    let unknown = home.run(&["keys", "-p", "alice", "get", "key_0000000000000000"]);
    assert!(unknown.failure(1).contains("no API key with id \"key_0000000000000000\""), "{unknown:?}");
    assert!(unknown.stdout.is_empty());

    let revoked = home.run(&["keys", "-p", "alice", "revoke", &id(&ci), "--json"]);
    assert_eq!(json(revoked.success())["status"], "REVOKED");
    let by_secret = home.run_wrapped(
        &[],
        &["keys", "-p", "alice", "revoke", "--secret-stdin"],
        Some(&format!("{deploy_secret}\n")),
    );
    by_secret.success();
    assert!(
        by_secret.stderr.contains(&format!("Revoked API key \"deploy\" ({}, fingerprint", id(&deploy))),
        "{by_secret:?}"
    );
    assert!(!by_secret.stderr.contains(&deploy_secret));
    assert_eq!((whoami(&idp, &ci_secret), whoami(&idp, &deploy_secret)), (401, 401));

    let revoked = home.run(&["keys", "-p", "alice", "list", "--status", "revoked", "--json"]);
    assert_eq!(ids(revoked.success()), [id(&ci), id(&deploy)]);
    assert!(ids(home.run(&["keys", "-p", "alice", "list", "--status", "ACTIVE", "--json"]).success()).is_empty());
    assert_eq!(home.run(&["keys", "-p", "alice", "list", "--status", "sleeping"]).code, Some(2));
    assert_eq!(home.run(&["keys", "-p", "alice", "revoke"]).code, Some(2), "an id or --secret-stdin is required");
    let unknown = home.run(&["keys", "-p", "alice", "revoke", "key_0000000000000000"]);
    assert!(unknown.failure(1).contains("not_found"), "{unknown:?}");
}

#[test]
fn an_expired_key_is_listed_expired_and_refused() {
    let idp = ReferenceIdp::start(300);
    let home = home(&idp);
    let (key, secret) = create(&home, "short", "1");
    assert_eq!(whoami(&idp, &secret), 200);

    // A day and a minute later on the server. Alice's stored token looks valid here but the server
    // refuses it: the CLI refreshes once and retries.
    idp.control("/_test/clock_offset", serde_json::json!({ "seconds": 24 * 60 * 60 + 60 }));
    let expired = home.run(&["keys", "-p", "alice", "list", "--status", "expired", "--json"]);
    assert_eq!(ids(expired.success()), [key["id"].as_str().unwrap()]);
    assert_eq!(whoami(&idp, &secret), 401);
}

#[test]
fn admin_commands_need_an_admin() {
    let idp = ReferenceIdp::start(300);
    let home = home(&idp);
    let bobs = json(home.run(&["keys", "-p", "bob", "create", "bob-ci", "--json"]).success());
    let bobs_id = bobs["key"]["id"].as_str().unwrap().to_owned();
    let bobs_secret = bobs["secret"].as_str().unwrap().to_owned();
    create(&home, "alice-ci", "10");

    for args in [vec!["list"], vec!["get", &bobs_id], vec!["revoke", &bobs_id]] {
        let mut command = vec!["admin", "-p", "bob", "keys"];
        command.extend(args);
        let run = home.run(&command);
        let stderr = run.failure(1);
        assert!(stderr.contains("permission denied: user \"bob\" is not an administrator"), "{run:?}");
        assert!(run.stdout.is_empty());
    }
    assert_eq!(whoami(&idp, &bobs_secret), 200, "the refused revoke changed nothing");
    // bob's own listing has his key only.
    assert_eq!(ids(home.run(&["keys", "-p", "bob", "list", "--json"]).success()), [bobs_id.as_str()]);

    let all = home.run(&["admin", "-p", "alice", "keys", "list", "--json"]);
    assert_eq!(ids(all.success()).len(), 2);
    let of_bob = home.run(&["admin", "-p", "alice", "keys", "list", "--email", "bob@example.com", "--json"]);
    assert_eq!(ids(of_bob.success()), [bobs_id.as_str()]);
    let by_name = home.run(&["admin", "-p", "alice", "keys", "list", "--name", "alice-ci", "--json"]);
    assert_eq!(ids(by_name.success()).len(), 1);
    let got = json(home.run(&["admin", "-p", "alice", "keys", "get", &bobs_id, "--json"]).success());
    assert_eq!(got["created_by_email"], "bob@example.com");
    let table = home.run(&["admin", "-p", "alice", "keys", "list"]);
    assert!(table.success().contains("bob@example.com"), "{table:?}");

    home.run(&["admin", "-p", "alice", "keys", "revoke", &bobs_id]).success();
    assert_eq!(whoami(&idp, &bobs_secret), 401);
    let revoked = home.run(&["admin", "-p", "alice", "keys", "list", "--status", "revoked", "--json"]);
    assert_eq!(ids(revoked.success()), [bobs_id]);
}

#[test]
fn the_api_key_provider_reads_tessera_api_key() {
    let idp = ReferenceIdp::start(300);
    let (_, secret) = create(&home(&idp), "env-key", "10");

    // Whitespace around the key is trimmed; the server accepts it as a bearer token.
    let with_key = home(&idp).with_env("TESSERA_API_KEY", &format!("  {secret}\n"));
    assert_eq!(with_key.run(&["token", "-p", "key"]).success(), format!("{secret}\n"));
    let header = with_key.run(&["token", "-p", "key", "--format", "header"]);
    assert_eq!(header.success(), format!("Authorization: Bearer {secret}\n"));
    with_key.run(&["login", "-p", "key"]).success();
    let providers = json(with_key.run(&["providers", "list", "--json"]).success());
    let key = providers.as_array().unwrap().iter().find(|p| p["name"] == "key").expect("listed").clone();
    assert_eq!((key["type"].as_str(), key["status"].as_str()), (Some("api_key"), Some("authenticated")));
    assert!(!providers.to_string().contains(&secret[3..]), "{providers}");

    // An API key cannot manage keys.
    let refused = with_key.run(&["keys", "-p", "key", "--base-url", idp.issuer(), "list"]);
    assert!(refused.failure(1).contains("permission denied: API keys cannot manage API keys"), "{refused:?}");

    // A wrong prefix: the exact message, exit 1.
    let wrong = home(&idp).with_env("TESSERA_API_KEY", "sk_something");
    let run = wrong.run(&["token", "-p", "key"]);
    assert!(run.failure(1).contains("API key must start with 'qk_'"), "{run:?}");
    assert!(run.stdout.is_empty());

    // No key at all: authentication required (exit 4), naming the variable.
    let run = home(&idp).run(&["token", "-p", "key"]);
    assert!(run.failure(4).contains("TESSERA_API_KEY"), "{run:?}");
}
