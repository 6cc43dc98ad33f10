//! Secret hygiene: run every flow with tracing at TRACE (ours, the IdP's, reqwest's and hyper's),
//! Debug- and Display-format every public type that holds a secret and every error we can
//! provoke, and assert that no secret value appears anywhere.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use tessera::config::Config;
use tessera::core::protocol::token_request;
use tessera::core::{Action, Engine, EngineSettings, Entropy, HttpResponse, RequestId};
use tessera::core::{AssertionInputs, ClientAssertionKey, ClientAuth, Timestamp};
use tessera::store::{FileStore, TokenStore};
use tessera::{Grant, ProviderConfig, Secret};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpConfig, demo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_debug_output_or_errors() {
    let capture = support::logs::LogCapture::install(tracing::Level::TRACE);

    let mut secrets: Vec<String> = vec![
        demo::ALICE_PASSWORD.into(),
        demo::BOB_PASSWORD.into(),
        demo::CONFIDENTIAL_CLIENT_SECRET.into(),
        demo::BOB_TOTP_SECRET.into(),
    ];
    let mut formatted: Vec<String> = Vec::new();

    let idp =
        tessera_idp::IdpServer::start(IdpConfig { access_token_ttl: Duration::from_secs(1), ..IdpConfig::demo() })
            .await
            .unwrap();
    formatted.push(format!("{:?}", IdpConfig::demo()));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("tokens")));

    // Password, password + TOTP, client credentials: login, refresh after expiry, forced refresh, logout.
    for (key, config) in
        [("alice", alice(&idp.issuer())), ("bob", bob(&idp.issuer())), ("machine", machine(&idp.issuer()))]
    {
        formatted.push(format!("{config:?} {:?} {:?}", config.grant, config.client));
        let session = session_with_store(key, config, store.clone());
        let first = session.authorization_header().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let second = session.authorization_header().await.unwrap();
        let third = session.force_refresh().await.unwrap();
        for header in [&first, &second, &third] {
            collect(&mut secrets, header.tokens());
            formatted.push(format!("{header:?} {:?} {:?}", header.tokens(), header.access_token()));
        }
        formatted.push(format!("{session:?}"));
        formatted.push(format!("{:?}", store.load(key).await.unwrap()));
        let outcome = session.logout().await.unwrap();
        formatted.push(format!("{outcome:?}"));
    }

    // Refresh-token grant, static tokens.
    let seed = session("seed", alice(&idp.issuer())).tokens().await.unwrap();
    collect(&mut secrets, &seed);
    let from_refresh = ProviderConfig {
        grant: Grant::RefreshToken { refresh_token: seed.refresh_token.clone().unwrap() },
        ..alice(&idp.issuer())
    };
    formatted.push(format!("{from_refresh:?}"));
    let tokens = session("from-refresh", from_refresh).tokens().await.unwrap();
    collect(&mut secrets, &tokens);
    secrets.push("static-secret-token".into());
    let fixed = ProviderConfig {
        grant: Grant::Static { access_token: Secret::new("static-secret-token"), expires_at: None },
        ..alice(&idp.issuer())
    };
    let header = session("static", fixed.clone()).authorization_header().await.unwrap();
    formatted.push(format!("{fixed:?} {header:?} {}", header.access_token()));

    // Every error path we can provoke: wrong password, wrong client secret, faults, unreachable, bad store.
    let mut wrong = alice(&idp.issuer());
    wrong.grant =
        Grant::Password { username: "alice".into(), password: Secret::new("wrong-password-value"), totp: None };
    secrets.push("wrong-password-value".into());
    let error = session("wrong", wrong).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    let mut bad_client = alice(&idp.issuer());
    bad_client.client.client_secret = Some(Secret::new("wrong-client-secret-value"));
    secrets.push("wrong-client-secret-value".into());
    let error = session("bad-client", bad_client).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    for kind in [
        FaultKind::MalformedJson,
        FaultKind::HtmlErrorPage { status: 502 },
        FaultKind::WrongContentType,
        FaultKind::DropConnection,
        FaultKind::Oversize { bytes: 2 << 20 },
    ] {
        // Three times: a login retries transient failures up to three attempts.
        idp.faults().push(FaultEndpoint::Token, Fault::new(kind), 3);
        let error = session("fault", alice(&idp.issuer())).force_refresh().await.unwrap_err();
        formatted.push(format!("{error:?} {error}"));
        idp.faults().clear();
    }
    let error = session("down", alice("http://127.0.0.1:9")).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    let lax = FileStore::new(dir.path().join("tokens"));
    std::fs::write(lax.path(), b"{\"version\":1,\"tokens\":{\"k\":{\"access_token\":\"corrupt-secret-value\"").unwrap();
    secrets.push("corrupt-secret-value".into());
    let error = lax.load("k").await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));

    // Client assertions: a private key (read from a file by the configuration, given directly to
    // a session), the assertions it signs (sent to a server that refuses them, built by the core),
    // and a client_secret_jwt secret. The key's base64 lines, every assertion and the (fixed)
    // header segment of the session's assertions must never show.
    let no_assertion = AssertionInputs { now: Timestamp::EPOCH, jti: None, audience: "https://idp/token", dpop: None };
    let key_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/ec.pem");
    let pem = std::fs::read_to_string(key_path).unwrap();
    secrets.extend(pem.lines().filter(|line| !line.starts_with("-----")).map(str::to_owned));
    let key = ClientAssertionKey { kid: Some("hygiene-kid".into()), ..ClientAssertionKey::new(pem.clone()) };
    let signed = ClientAuth::private_key_jwt(demo::CONFIDENTIAL_CLIENT_ID, key.clone());
    let with_assertion = AssertionInputs { jti: Some([9; 16]), ..no_assertion };
    let request = token_request(RequestId(2), "https://idp/token", &signed, &with_assertion, &[]).unwrap();
    let body = String::from_utf8(request.body.clone()).unwrap();
    let assertion = body.split("client_assertion=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    secrets.push(assertion.split('.').next().unwrap().to_owned());
    secrets.push(assertion.clone());
    formatted.push(format!("{request:?} {signed:?} {key:?}"));
    let mut asserting = machine(&idp.issuer());
    asserting.client = signed.clone();
    formatted.push(format!("{asserting:?}"));
    let error = session("asserting", asserting).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    let mut secret_jwt = machine(&idp.issuer());
    secret_jwt.client = ClientAuth::secret_jwt(demo::CONFIDENTIAL_CLIENT_ID, "secret-jwt-shared-secret");
    secrets.push("secret-jwt-shared-secret".into());
    formatted.push(format!("{secret_jwt:?}"));
    let error = session("secret-jwt", secret_jwt).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    let mut wrong_key = machine(&idp.issuer());
    wrong_key.client = ClientAuth::private_key_jwt(
        "c",
        ClientAssertionKey::new("-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldA==\n-----END PRIVATE KEY-----"),
    );
    secrets.push("bm90LWEta2V5LXNlY3JldA".into());
    let error = session("wrong-key", wrong_key).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    let config = Config::from_toml_str(
        &format!(
            r#"[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "p"
type = "client_credentials"
token_endpoint = "http://127.0.0.1:9/token"
client_id = "c"
client_assertion_key = "file:{key_path}"
"#
        ),
        "config.toml",
    )
    .unwrap();
    let built = config.context(None).unwrap().provider(None).unwrap().build("config.toml", "dev").unwrap();
    formatted.push(format!("{config:?} {built:?}"));

    // JWT bearer grant: the demo service account's key (given to a session, and inside a key file
    // the configuration reads), the grant assertions (one the engine builds, whose header segment
    // the session's assertions share: same alg and kid), a refused assertion, a broken key file.
    secrets.extend(demo::SERVICE_ACCOUNT_PRIVATE_KEY.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned));
    let robot_key = ClientAssertionKey {
        kid: Some(demo::SERVICE_ACCOUNT_KEY_ID.into()),
        ..ClientAssertionKey::new(demo::SERVICE_ACCOUNT_PRIVATE_KEY)
    };
    let robot = ProviderConfig {
        client: ClientAuth::public(demo::SERVICE_ACCOUNT_EMAIL),
        endpoints: tessera::Endpoints::discover(idp.issuer()),
        scope: Some("api:read".into()),
        grant: Grant::jwt_bearer(robot_key.clone()),
    };
    let mut engine = Engine::new(EngineSettings { entropy: Some(Entropy([5; 32])), ..EngineSettings::default() });
    engine.register(
        "robot",
        ProviderConfig { endpoints: tessera::Endpoints::explicit(idp.url("/token")), ..robot.clone() },
    );
    let actions = engine.ensure("robot", Timestamp::from_unix_secs(1_700_000_000));
    let Some(Action::Send(request)) = actions.first() else { panic!("{actions:?}") };
    let body = String::from_utf8(request.body.clone()).unwrap();
    let grant_assertion = body.split("assertion=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    assert_eq!(grant_assertion.split('.').count(), 3, "a JWT");
    secrets.push(grant_assertion.split('.').next().unwrap().to_owned());
    secrets.push(grant_assertion.clone());
    formatted.push(format!("{request:?} {robot:?} {robot_key:?} {actions:?}"));
    let robot_session = session("robot", robot.clone());
    let first = robot_session.authorization_header().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let second = robot_session.authorization_header().await.unwrap();
    let third = robot_session.force_refresh().await.unwrap();
    for header in [&first, &second, &third] {
        collect(&mut secrets, header.tokens());
        formatted.push(format!("{header:?} {:?}", header.tokens()));
    }
    assert_eq!(idp.stats().jwt_bearer_grants, 3, "login, a new assertion on expiry, a forced one");
    formatted.push(format!("{robot_session:?} {:?}", robot_session.logout().await.unwrap()));
    let mut impostor = robot.clone();
    impostor.grant = Grant::jwt_bearer(ClientAssertionKey::new(pem.clone()));
    let error = session("impostor", impostor).authorization_header().await.unwrap_err();
    formatted.push(format!("{error:?} {error}"));
    let key_file = dir.path().join("robot.json");
    std::fs::write(&key_file, demo::service_account_key_file(&idp.url("/token"))).unwrap();
    let broken_file = dir.path().join("broken.json");
    let broken_key = demo::service_account_key_file("not a url").replace("BEGIN PRIVATE KEY", "BEGIN NOTHING");
    std::fs::write(&broken_file, &broken_key).unwrap();
    for file in [&key_file, &broken_file] {
        let config = Config::from_toml_str(
            &format!(
                "[[contexts]]\nname = \"dev\"\n[[contexts.auth_providers]]\nname = \"robot\"\ntype = \"jwt_bearer\"\n\
                 service_account_key = \"file:{}\"\n",
                file.display()
            ),
            "config.toml",
        )
        .unwrap();
        let built = config.context(None).unwrap().provider(None).unwrap().build("config.toml", "dev");
        formatted.push(format!("{config:?} {built:?}"));
        if let Ok(built) = built {
            let header = session("robot-file", built).authorization_header().await.unwrap();
            collect(&mut secrets, header.tokens());
            formatted.push(format!("{header:?}"));
        }
    }
    let json_error = tessera::core::provider_spec::ProviderSpec::from_value(serde_json::json!({
        "type": "jwt_bearer", "service_account_key": broken_key,
    }))
    .unwrap()
    .spec
    .into_config(&mut |_, value| Ok(value.clone()))
    .unwrap_err();
    formatted.push(format!("{json_error:?} {json_error}"));

    // Core types directly: requests with client secrets, responses with tokens, the engine.
    let request = token_request(
        RequestId(1),
        "https://idp/token",
        &ClientAuth::basic("c", "core-client-secret"),
        &no_assertion,
        &[("password", "core-password")],
    )
    .unwrap();
    secrets.extend(["core-client-secret".into(), "core-password".into(), "Y29yZS1jbGllbnQtc2VjcmV0".into()]);
    formatted.push(format!("{request:?}"));
    let response = HttpResponse::json(RequestId(1), 200, r#"{"access_token":"core-access-token"}"#);
    secrets.push("core-access-token".into());
    formatted.push(format!("{response:?} {:?}", Engine::default()));

    // DPoP: a generated key (kept with the tokens in the FileStore), a user's key, the proofs on
    // token requests (through reqwest and hyper at TRACE) and for API requests, a bad key's error.
    let mut dpop_config = alice(&idp.issuer());
    dpop_config.client.dpop = Some(tessera::DpopSettings::generated());
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("dpop-tokens")));
    let dpop_session = session_with_store("dpop", dpop_config.clone(), store.clone());
    let header = dpop_session.authorization_header().await.unwrap();
    collect(&mut secrets, header.tokens());
    let stored = store.load("dpop").await.unwrap().unwrap();
    let generated = stored.dpop_key.clone().expect("the generated key is stored");
    let jwk: serde_json::Value = serde_json::from_str(generated.expose_secret()).unwrap();
    secrets.push(jwk["d"].as_str().unwrap().to_owned());
    secrets.push(generated.expose_secret().to_owned());
    let auth = dpop_session.request_auth("GET", "https://api.example/items").await.unwrap();
    let settings = tessera::DpopSettings::generated();
    let proof =
        tessera::dpop_proof_for(&settings, header.tokens(), "GET", "https://api.example/x", None, Timestamp::EPOCH)
            .unwrap();
    secrets.push(proof.expose_secret().to_owned());
    secrets.push(proof.expose_secret().rsplit('.').next().unwrap().to_owned());
    formatted.push(format!("{auth:?} {dpop_session:?} {stored:?} {dpop_config:?} {proof:?}"));
    let mut engine = Engine::new(EngineSettings { entropy: Some(Entropy([1; 32])), ..EngineSettings::default() });
    let explicit =
        ProviderConfig { endpoints: tessera::Endpoints::explicit("https://idp.example/token"), ..dpop_config.clone() };
    engine.register("dpop", explicit);
    let actions = engine.ensure("dpop", Timestamp::EPOCH);
    let [Action::Send(request)] = &actions[..] else { panic!("{actions:?}") };
    let token_proof = request.header("dpop").unwrap().to_owned();
    secrets.push(token_proof.rsplit('.').next().unwrap().to_owned());
    secrets.push(token_proof);
    formatted.push(format!("{request:?} {engine:?}"));
    let mut user_key = dpop_config.clone();
    user_key.client.dpop = Some(tessera::DpopSettings::with_key(pem.clone()));
    formatted.push(format!("{user_key:?} {:?}", user_key.client));
    let user_session = session_with_store("dpop-user", user_key, store.clone());
    user_session.authorization_header().await.unwrap();
    formatted.push(format!("{user_session:?} {:?}", store.load("dpop-user").await.unwrap()));
    let mut bad_key = dpop_config.clone();
    bad_key.client.dpop = Some(tessera::DpopSettings::with_key(
        "-----BEGIN PRIVATE KEY-----\nZHBvcC1rZXktc2VjcmV0LXZhbHVl\n-----END PRIVATE KEY-----",
    ));
    secrets.push("ZHBvcC1rZXktc2VjcmV0LXZhbHVl".into());
    let error = session("dpop-bad", bad_key).authorization_header().await.unwrap_err();
    assert!(error.to_string().contains("dpop_key"), "{error}");
    formatted.push(format!("{error:?} {error}"));

    // Workload identity: a platform token (an access token of alice) read from a file and exchanged;
    // a command that prints it and fails. Neither the token nor the exchanged one is shown.
    let platform = session("platform", alice(&idp.issuer())).tokens().await.unwrap();
    collect(&mut secrets, &platform);
    let platform_file = dir.path().join("platform-token");
    std::fs::write(&platform_file, platform.access_token.expose_secret()).unwrap();
    let workload = |source: tessera::core::flow::TokenSource| ProviderConfig {
        client: confidential_client(),
        endpoints: tessera::Endpoints::discover(idp.issuer()),
        scope: None,
        grant: Grant::WorkloadIdentity {
            source,
            subject_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
            exchange: tessera::core::flow::Exchange::TokenExchange {
                audience: None,
                resource: None,
                requested_token_type: None,
            },
        },
    };
    let exchanged =
        session("workload", workload(tessera::core::flow::TokenSource::File(platform_file.display().to_string())))
            .tokens()
            .await;
    match &exchanged {
        Ok(tokens) => collect(&mut secrets, tokens),
        Err(error) => formatted.push(format!("{error:?} {error}")),
    }
    let failing = tessera::core::flow::TokenSource::Exec {
        command: format!("cat {}; exit 3", platform_file.display()),
        timeout: Duration::from_secs(10),
    };
    let error = session("workload-exec", workload(failing)).tokens().await.unwrap_err();
    assert!(error.to_string().contains("exited with status 3"), "{error}");
    formatted.push(format!("{error:?} {error} {:?}", workload(tessera::core::flow::TokenSource::Env("X".into()))));

    // Mutual TLS: a client key file that is not usable is named, never quoted.
    let tls_key = dir.path().join("tls-key.pem");
    std::fs::write(&tls_key, "-----BEGIN PRIVATE KEY-----\nbXRscy1rZXktc2VjcmV0LXZhbHVl\n-----END PRIVATE KEY-----\n")
        .unwrap();
    secrets.push("bXRscy1rZXktc2VjcmV0LXZhbHVl".into());
    let certificate = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mtls/client.pem");
    let tls = tessera::transport::TransportSettings {
        tls_client_certificate: Some(certificate),
        tls_client_key: Some(tls_key),
        ..tessera::transport::TransportSettings::default()
    };
    formatted.push(format!("{tls:?}"));
    let error = tessera::Session::builder("mtls", machine(&idp.issuer()))
        .settings(tessera::SessionSettings { transport: tls, ..tessera::SessionSettings::default() })
        .build()
        .tokens()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("tls_client_key"), "{error}");
    formatted.push(format!("{error:?} {error}"));

    // Configuration with literal secrets.
    let config = Config::from_toml_str(
        r#"[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "p"
provider = "password"
token_url = "http://127.0.0.1:9/token"
client_id = "c"
client_secret = "config-client-secret"
username = "u"
password = "config-password"
"#,
        "config.toml",
    )
    .unwrap();
    secrets.extend(["config-client-secret".into(), "config-password".into()]);
    formatted.push(format!("{config:?}"));
    let built = config.context(None).unwrap().provider(None).unwrap().build("config.toml", "dev").unwrap();
    formatted.push(format!("{built:?}"));

    idp.shutdown().await;
    let logs = capture.text();
    assert!(logs.contains("tessera.refresh"), "TRACE logging captured our spans");
    assert!(logs.len() > 10_000, "TRACE logging captured the HTTP stack too ({} bytes)", logs.len());
    let everything = format!("{logs}\n{}", formatted.join("\n"));
    secrets.retain(|s| s.len() >= 8);
    assert!(secrets.len() > 20, "collected the secrets of every flow");
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "a secret leaked: {}…", &secret[..4]);
    }
}

fn collect(secrets: &mut Vec<String>, tokens: &tessera::TokenSet) {
    secrets.push(tokens.access_token.expose_secret().to_owned());
    secrets.extend(tokens.refresh_token.iter().chain(tokens.id_token.iter()).map(|s| s.expose_secret().to_owned()));
}
