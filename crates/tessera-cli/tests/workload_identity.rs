//! `tessera token` for a `workload_identity` provider against oidc-provider
//! (`interop/oidc-provider`), configured as a CI job would: the platform token in an environment
//! variable (as GitLab's `id_tokens` or a secret-mounted token), exchanged by RFC 8693. The
//! platform token is an oidc-provider access token for alice.

mod support;

use support::oidc_provider::{self, OidcProvider, OidcProviderOptions};
use support::*;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

fn platform_token(op: &OidcProvider) -> String {
    let (status, body) = block_on(op.token_request(&[
        ("grant_type", "password"),
        ("username", oidc_provider::ALICE),
        ("password", oidc_provider::ALICE_PASSWORD),
        ("scope", "openid api:read"),
    ]));
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn tessera_token_exchanges_a_platform_token_from_the_environment() {
    let op = OidcProvider::start(OidcProviderOptions::default());
    let home = Home::new(&format!(
        "current_context = \"ci\"\n\n[[contexts]]\nname = \"ci\"\n\n[[contexts.auth_providers]]\nname = \"cloud\"\n\
         type = \"workload_identity\"\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"env:CLIENT_SECRET\"\n\
         subject_token = \"env:CI_PLATFORM_TOKEN\"\n\
         subject_token_type = \"urn:ietf:params:oauth:token-type:access_token\"\naudience = \"https://cloud.example\"\n",
        op.issuer(),
        oidc_provider::CONFIDENTIAL_CLIENT_ID,
    ))
    .with_env("CLIENT_SECRET", oidc_provider::CONFIDENTIAL_CLIENT_SECRET);
    let platform = platform_token(&op);
    let home = home.with_env("CI_PLATFORM_TOKEN", &platform);
    let token = home.run(&["token"]).success().trim_end().to_owned();
    assert_ne!(token, platform);
    let body = block_on(op.introspect(&token));
    assert_eq!(
        (&body["active"], &body["aud"]),
        (&serde_json::json!(true), &serde_json::json!("https://cloud.example"))
    );
    // Cached: the second run sends nothing.
    assert_eq!(home.run(&["token"]).success().trim_end(), token);
    assert_eq!(block_on(op.stats()).grant_type(TOKEN_EXCHANGE), 1);

    // Outside the job (the variable unset): a configuration error naming the variable, exit 1.
    let outside = home.with_env("CI_PLATFORM_TOKEN", "");
    let run = outside.run(&["token", "--min-valid", "2h"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("subject_token: env:CI_PLATFORM_TOKEN is not set"), "{run:#?}");
    assert!(!run.stderr.contains(&platform) && !run.stdout.contains(&platform), "{run:#?}");
}

/// `subject_token = "github-actions"` in a job, against the reference IdP's GitHub-Actions-style
/// endpoint (`/ci/github-actions/token`, named by the two job variables): the CI token is asked
/// with `subject_token_audience` and exchanged (RFC 8693) for an access token of the CI subject
/// that the demo API accepts. The IdP refuses a CI token asked for another audience.
#[test]
fn tessera_token_exchanges_a_github_actions_token_at_the_reference_idp() {
    let idp = ReferenceIdp::start(300);
    let config = |audience: &str| {
        format!(
            "[[contexts]]\nname = \"ci\"\n\n[[contexts.auth_providers]]\nname = \"deploy\"\n\
             type = \"workload_identity\"\nissuer = \"{}\"\nclient_id = \"confidential-client\"\n\
             client_secret = \"confidential-secret\"\nsubject_token = \"github-actions\"\n\
             subject_token_audience = \"{audience}\"\nscope = \"api:read\"\n",
            idp.issuer()
        )
    };
    let job = |home: Home| {
        home.with_env("ACTIONS_ID_TOKEN_REQUEST_URL", &idp.url("/ci/github-actions/token?api-version=2.0"))
            .with_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", tessera_idp::demo::CI_REQUEST_TOKEN)
    };
    let home = job(Home::new(&config(idp.issuer())));
    let token = home.run(&["token"]).success().trim_end().to_owned();
    let (status, me) = idp.whoami(&token);
    assert_eq!((status, me["sub"].as_str()), (200, Some(tessera_idp::demo::CI_SUBJECT)), "{me}");
    assert_eq!((idp.stat("ci_token_requests"), idp.stat("token_exchange_grants")), (1, 1));

    let elsewhere = job(Home::new(&config("https://sts.elsewhere.example")));
    let run = elsewhere.run(&["token"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("invalid_grant") && run.stderr.contains("another audience"), "{run:#?}");
    // A wrong request token: GitHub's 401, reported with the source, no token sent anywhere.
    let stranger = Home::new(&config(idp.issuer()))
        .with_env("ACTIONS_ID_TOKEN_REQUEST_URL", &idp.url("/ci/github-actions/token"))
        .with_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "not-the-request-token");
    let run = stranger.run(&["token"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("401") && !run.stderr.contains("not-the-request-token"), "{run:#?}");
    assert_eq!(idp.stat("token_exchange_grants"), 1);
}
