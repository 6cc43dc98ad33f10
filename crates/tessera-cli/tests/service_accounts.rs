//! `tessera token` with the JWT bearer grant, configured as someone coming from google-auth would:
//! a Google-style service-account JSON key file (made here from the reference IdP's demo service
//! account, whose `token_uri` is replaced by `token_endpoint`: never Google) as a `jwt_bearer`
//! provider. Also the plain form (`assertion_key` by `file:` reference), a refused key, and a file
//! that is not a service-account key.

mod support;

use base64::Engine as _;
use support::*;
use tessera_idp::demo;

fn home(provider: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"robot\"\n{provider}"
    ))
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT access token");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn key_lines() -> impl Iterator<Item = &'static str> {
    demo::SERVICE_ACCOUNT_PRIVATE_KEY.lines().filter(|line| !line.starts_with("-----"))
}

#[test]
fn tessera_token_with_a_service_account_key_file_and_a_new_assertion_on_expiry() {
    let idp = ReferenceIdp::start(2);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("robot.json");
    std::fs::write(&key_file, demo::service_account_key_file("https://oauth2.googleapis.com/token")).unwrap();
    let robot = home(&format!(
        "type = \"jwt_bearer\"\nservice_account_key = \"file:{}\"\ntoken_endpoint = \"{}\"\nscope = \"cloud-platform\"\n",
        key_file.display(),
        idp.url("/token"),
    ));
    let run = robot.run(&["token"]);
    let first = run.success().trim_end().to_owned();
    let at = claims(&first);
    assert_eq!((at["sub"].as_str(), at["scope"].as_str()), (Some(demo::SERVICE_ACCOUNT_EMAIL), Some("cloud-platform")));
    assert_eq!(idp.whoami(&first).0, 200);
    assert_eq!(robot.run(&["token"]).success().trim_end(), first, "the stored token, nothing sent");
    assert_eq!(idp.stat("jwt_bearer_grants"), 1);

    // Expired: the next run signs a new assertion (a replayed jti would be refused).
    robot.sleep_past_expiry("dev/robot");
    let second = robot.run(&["token"]).success().trim_end().to_owned();
    assert_ne!(second, first);
    assert_eq!((idp.stat("jwt_bearer_grants"), idp.stat("failed_token_requests")), (2, 0));
    for line in key_lines() {
        assert!(!run.stderr.contains(line) && !run.stdout.contains(line), "{run:#?}");
    }
}

#[test]
fn the_plain_form_a_refused_key_and_a_file_that_is_not_a_key() {
    let idp = ReferenceIdp::start(60);
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("robot.pem");
    std::fs::write(&pem, demo::SERVICE_ACCOUNT_PRIVATE_KEY).unwrap();
    let plain = home(&format!(
        "type = \"jwt_bearer\"\nissuer = \"{}\"\nclient_id = \"{}\"\nassertion_key = \"file:{}\"\nsubject = \"{}\"\n",
        idp.issuer(),
        demo::SERVICE_ACCOUNT_EMAIL,
        pem.display(),
        demo::ALICE_USERNAME,
    ));
    let token = plain.run(&["token"]).success().trim_end().to_owned();
    assert_eq!(claims(&token)["sub"], demo::ALICE_USERNAME);

    // Another key: the server refuses the assertion (invalid_grant); nothing of either key shows.
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/rsa.pem");
    let refused = home(&format!(
        "type = \"jwt_bearer\"\ntoken_endpoint = \"{}\"\nclient_id = \"{}\"\nassertion_key = \"file:{other}\"\n",
        idp.url("/token"),
        demo::SERVICE_ACCOUNT_EMAIL,
    ));
    let run = refused.run(&["token"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("invalid_grant"), "{run:#?}");
    assert!(run.stderr.contains("check assertion_key (file:"), "the hint names the key to fix: {run:#?}");
    assert!(!run.stderr.contains("client_secret"), "{run:#?}");
    let other_pem = std::fs::read_to_string(other).unwrap();
    let other_lines = other_pem.lines().filter(|line| !line.starts_with("-----"));
    for line in key_lines().map(str::to_owned).chain(other_lines.map(str::to_owned)) {
        let line = line.as_str();
        assert!(!run.stderr.contains(line) && !run.stdout.contains(line), "{run:#?}");
    }

    // gcloud's user credentials are not a service-account key: the error names the file and the
    // member, and quotes nothing of it. Nothing is sent.
    let user_file = dir.path().join("application_default_credentials.json");
    std::fs::write(
        &user_file,
        r#"{"type": "authorized_user", "client_secret": "hunter2-secret", "refresh_token": "1//rt"}"#,
    )
    .unwrap();
    let before = idp.stat("token_requests");
    let wrong = home(&format!("type = \"jwt_bearer\"\nservice_account_key = \"file:{}\"\n", user_file.display()));
    let run = wrong.run(&["token"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    for expected in ["service_account_key", "application_default_credentials.json", "authorized_user"] {
        assert!(run.stderr.contains(expected), "{expected}: {run:#?}");
    }
    assert!(!run.stderr.contains("hunter2-secret") && !run.stderr.contains("1//rt"), "{run:#?}");
    assert_eq!(idp.stat("token_requests"), before);

    // A key file whose "private_key" is not a key: the file's field and path, nothing of its value.
    let broken_file = dir.path().join("broken-key.json");
    let broken = serde_json::json!({
        "type": "service_account",
        "client_email": demo::SERVICE_ACCOUNT_EMAIL,
        "private_key": "-----BEGIN PRIVATE KEY-----\nTm90QUtleU1BUktFUg==\n-----END PRIVATE KEY-----\n",
        "token_uri": idp.url("/token"),
    });
    std::fs::write(&broken_file, broken.to_string()).unwrap();
    let config = format!("type = \"jwt_bearer\"\nservice_account_key = \"file:{}\"\n", broken_file.display());
    let run = home(&config).run(&["token"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    for expected in ["service_account_key", "broken-key.json", "\"private_key\""] {
        assert!(run.stderr.contains(expected), "{expected}: {run:#?}");
    }
    assert!(!run.stderr.contains("assertion_key") && !run.stderr.contains("Tm90QUtleU1BUktFUg"), "{run:#?}");
    assert_eq!(idp.stat("token_requests"), before);
}
