//! `tessera token` with client assertions (`private_key_jwt`, `client_secret_jwt`) against
//! oidc-provider (`interop/oidc-provider`), configured as a user would: the key by `file:`
//! reference in config.toml. The keys are test-only fixtures in `testdata/client-assertion/`.
//! The last test runs `tessera token` and `tessera logout` against `tessera idp serve` with its
//! demo `private_key_jwt` client (`assertion-client`).

mod support;

use std::collections::HashSet;

use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::*;

fn home(provider: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"svc\"\n{provider}"
    ))
}

fn key_path(name: &str) -> String {
    oidc_provider::assertion_key_path(name).to_str().unwrap().to_owned()
}

#[track_caller]
fn token(home: &Home) -> String {
    let run = home.run(&["token"]);
    run.success().trim_end().to_owned()
}

#[test]
fn tessera_token_with_private_key_jwt_and_client_secret_jwt_at_oidc_provider() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let issuer = op.issuer().to_owned();

    // private_key_jwt: client_auth is implied by the key; the kid names the registered key.
    let signed = home(&format!(
        "type = \"client_credentials\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\n\
         client_assertion_key = \"file:{}\"\nclient_assertion_kid = \"test-ed\"\nscope = \"api:read\"\n",
        oidc_provider::JWT_CLIENT_ID,
        key_path("ed25519.pem"),
    ));
    let first = token(&signed);
    let body = block_on(op.introspect(&first));
    assert_eq!((&body["active"], &body["client_id"]), (&serde_json::json!(true), &serde_json::json!("jwt-client")));
    // `--force-refresh`-less second run: the stored token is printed, nothing is sent.
    assert_eq!(token(&signed), first);
    let stats = block_on(op.stats());
    assert_eq!((stats.assertion_jtis.len(), stats.assertion_algs.as_slice()), (1, &["EdDSA".to_owned()][..]));

    // client_secret_jwt, the secret by env: reference.
    let shared = home(&format!(
        "type = \"client_credentials\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_auth = \"client_secret_jwt\"\n\
         client_secret = \"env:TESSERA_TEST_SECRET\"\n",
        oidc_provider::SECRET_JWT_CLIENT_ID,
    ))
    .with_env("TESSERA_TEST_SECRET", oidc_provider::SECRET_JWT_CLIENT_SECRET);
    let other = token(&shared);
    assert_eq!(block_on(op.introspect(&other))["client_id"], "secret-jwt-client");
    let stats = block_on(op.stats());
    assert_eq!(stats.assertion_jtis.iter().collect::<HashSet<_>>().len(), 2, "{stats:?}");

    // A key the server does not know: invalid_client, exit code of a refusal, the key not shown.
    let wrong = home(&format!(
        "type = \"client_credentials\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_assertion_key = \"file:{}\"\n",
        oidc_provider::JWT_CLIENT_ID,
        key_path("wrong-ec.pem"),
    ));
    let run = wrong.run(&["token"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("invalid_client"), "{run:#?}");
    // The hint names the key to fix, not a client_secret this provider does not have.
    assert!(run.stderr.contains("check client_id and client_assertion_key (file:"), "{run:#?}");
    assert!(!run.stderr.contains("client_secret"), "{run:#?}");
    let pem = std::fs::read_to_string(oidc_provider::assertion_key_path("wrong-ec.pem")).unwrap();
    for line in pem.lines().filter(|line| !line.starts_with("-----")) {
        assert!(!run.stderr.contains(line) && !run.stdout.contains(line), "{run:#?}");
    }

    // A file that is not a key: a configuration error naming the field, not quoting the file.
    let not_a_key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_a_key.path(), "hunter2-not-a-key\n").unwrap();
    let broken = home(&format!(
        "type = \"client_credentials\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_assertion_key = \"file:{}\"\n",
        oidc_provider::JWT_CLIENT_ID,
        not_a_key.path().display(),
    ));
    let run = broken.run(&["token"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("client_assertion_key"), "{run:#?}");
    assert!(!run.stderr.contains("hunter2"), "{run:#?}");
}

#[test]
fn tessera_token_and_logout_with_private_key_jwt_at_the_reference_idp() {
    let idp = ReferenceIdp::start(60);
    let issuer = idp.issuer().to_owned();
    // The demo client's key written to a file, as a user would keep it.
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), tessera_idp::demo::ASSERTION_CLIENT_PRIVATE_KEY).unwrap();
    let user = home(&format!(
        "type = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_assertion_key = \"file:{}\"\n\
         client_assertion_kid = \"{}\"\nusername = \"alice\"\npassword = \"env:TESSERA_TEST_PASSWORD\"\n",
        tessera_idp::demo::ASSERTION_CLIENT_ID,
        key_file.path().display(),
        tessera_idp::demo::ASSERTION_CLIENT_KEY_ID,
    ))
    .with_env("TESSERA_TEST_PASSWORD", tessera_idp::demo::ALICE_PASSWORD);

    let access = token(&user);
    assert!(idp.active(&access));
    assert_eq!(idp.whoami(&access).1["client_id"], tessera_idp::demo::ASSERTION_CLIENT_ID);
    let refresh_token = user.stored_field("dev/svc", "refresh_token");
    assert!(idp.active(&refresh_token));

    // logout authenticates its revocation with a new assertion (the server refuses a reused jti).
    let logout = user.run(&["logout"]);
    assert_eq!(logout.success(), "", "{logout:#?}");
    assert!(logout.stderr.contains("token revoked"), "{logout:#?}");
    assert_eq!(idp.stat("revocations"), 1);
    assert!(!idp.active(&refresh_token), "the refresh token is revoked");
    assert!(!idp.active(&access), "its access token too");
    assert!(user.stored("dev/svc").is_none(), "forgotten");

    // Without the key the client cannot authenticate: invalid_client, nothing stored.
    let keyless = home(&format!(
        "type = \"password\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nusername = \"alice\"\n\
         password = \"env:TESSERA_TEST_PASSWORD\"\n",
        tessera_idp::demo::ASSERTION_CLIENT_ID,
    ))
    .with_env("TESSERA_TEST_PASSWORD", tessera_idp::demo::ALICE_PASSWORD);
    let run = keyless.run(&["token"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("invalid_client"), "{run:#?}");
}
