//! `tessera token` with mutual TLS (RFC 8705) against oidc-provider (`interop/oidc-provider`):
//! the client certificate and key by path in config.toml, as a user writes them. The certificates
//! are test-only fixtures in `testdata/mtls/`.

mod support;

use support::oidc_provider::{self, OidcProvider, OidcProviderOptions, mtls_file};
use support::*;

fn home(issuer: &str, certificate: &str, key: &str) -> Home {
    Home::new(&format!(
        "current_context = \"dev\"\n\n[[contexts]]\nname = \"dev\"\n\n[[contexts.auth_providers]]\nname = \"bank\"\n\
         type = \"client_credentials\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nscope = \"api:read\"\n\
         ca_file = \"{}\"\ntls_client_certificate = \"{}\"\ntls_client_key = \"{}\"\n",
        oidc_provider::MTLS_CLIENT_ID,
        mtls_file("ca.pem").display(),
        mtls_file(certificate).display(),
        mtls_file(key).display(),
    ))
}

#[test]
fn tessera_token_with_a_client_certificate_and_a_refused_one() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let good = home(op.issuer(), "client.pem", "client-key.pem");
    let token = good.run(&["token"]).success().trim_end().to_owned();
    let body = block_on(op.introspect(&token));
    assert_eq!((&body["active"], &body["client_id"]), (&serde_json::json!(true), &serde_json::json!("mtls-client")));
    assert!(body["cnf"]["x5t#S256"].is_string(), "bound to the certificate: {body}");
    // The second run prints the stored token: no request.
    assert_eq!(good.run(&["token"]).success().trim_end(), token);
    assert_eq!(block_on(op.stats()).grant_type("client_credentials"), 1);
    // `config view` shows the paths (they are not secrets).
    let view = good.run(&["config", "view"]);
    let view = view.success();
    assert!(view.contains("tls_client_certificate") && view.contains("client.pem"), "{view}");

    // Not issued by the CA the server trusts: invalid_client, a hint naming the certificate, exit 1.
    let wrong = home(op.issuer(), "wrong.pem", "wrong-key.pem");
    let run = wrong.run(&["token"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("invalid_client"), "{run:#?}");
    assert!(run.stderr.contains("check client_id and tls_client_certificate ("), "{run:#?}");
    assert!(!run.stderr.contains("client_secret"), "{run:#?}");
    let key = std::fs::read_to_string(mtls_file("wrong-key.pem")).unwrap();
    for line in key.lines().filter(|line| !line.starts_with("-----")) {
        assert!(!run.stderr.contains(line) && !run.stdout.contains(line), "{run:#?}");
    }
}
