//! Resource-first discovery (`tessera::discover_resource`) through the public API, against
//! running servers: the reference IdP's protected demo resource (RFC 9728 metadata, a 401 that
//! names it, RFC 8414 metadata), and oidc-provider behind the host script's loopback resource
//! server (RFC 8414 absent there: OpenID Connect discovery is the fallback). Every bad-metadata
//! case is served by a running server (the reference IdP's fault injection) and refused with its
//! typed error.

mod support;

use std::time::Duration;

use tessera::core::protocol::challenge::token_challenges;
use tessera::core::protocol::resource::MAX_METADATA_LEN;
use tessera::resource::{DiscoverySettings, discover_resource};
use tessera::{Error, MetadataProblem};
use tessera_idp::{Fault, FaultEndpoint, FaultKind, IdpServer, RESOURCE_SCOPE, demo};

async fn idp() -> IdpServer {
    support::idp(Duration::from_secs(60)).await
}

fn json_fault(body: String) -> Fault {
    Fault::new(FaultKind::Status { status: 200, body, content_type: "application/json".into() })
}

fn problem(error: Error) -> MetadataProblem {
    match error {
        Error::Metadata { problem, .. } => problem,
        other => panic!("expected a metadata refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_reference_idp_demo_resource_is_discovered_from_its_challenge() {
    let server = idp().await;
    let resource = server.demo_resource();
    let found = discover_resource(&resource, &DiscoverySettings::default()).await.unwrap();
    assert_eq!(found.resource.resource, resource);
    assert_eq!(found.resource_metadata_url, server.url("/.well-known/oauth-protected-resource/api/resource"));
    assert_eq!(found.resource.scopes_supported, [RESOURCE_SCOPE]);
    assert_eq!(found.resource.bearer_methods_supported, ["header"]);
    assert_eq!(found.issuer, server.issuer());
    // RFC 8414's location answered first: no fallback was needed.
    assert_eq!(found.server_metadata_url, server.url("/.well-known/oauth-authorization-server"));
    assert_eq!(found.server.token_endpoint, server.url("/token"));
    assert_eq!(found.server.authorization_endpoint.as_deref(), Some(server.url("/authorize").as_str()));
    assert_eq!(found.server.code_challenge_methods_supported, ["S256"]);
    // The probe, the resource metadata, the server metadata.
    let stats = server.stats();
    assert_eq!((stats.api_requests, stats.discovery_requests), (1, 2));
}

#[tokio::test]
async fn the_demo_resource_accepts_only_tokens_issued_for_it() {
    let server = idp().await;
    let resource = server.demo_resource();
    let http = support::http_client();
    let token = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = server.url("/token");
        async move {
            let answer: serde_json::Value = http
                .post(url)
                .basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
                .form(&form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["access_token"].as_str().expect("a token").to_owned()
        }
    };
    let call = |token: Option<String>| {
        let mut request = http.get(&resource);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    // Without a token: a challenge naming the metadata, without an error code (RFC 6750 §3.1).
    let answer = call(None).await;
    assert_eq!(answer.status(), 401);
    let header = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let challenge = &token_challenges([header.as_str()])[0];
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(server.url("/.well-known/oauth-protected-resource/api/resource").as_str())
    );
    assert_eq!(challenge.error, None);

    let grant = |scope: &str, resource: Option<&str>| {
        let mut form = vec![("grant_type", "client_credentials".to_owned()), ("scope", scope.to_owned())];
        if let Some(resource) = resource {
            form.push(("resource", resource.to_owned()));
        }
        form
    };
    // A token for the resource (RFC 8707: its aud is the resource).
    let good = token(grant(RESOURCE_SCOPE, Some(&resource))).await;
    let answer = call(Some(good.clone())).await;
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["aud"], resource.as_str());
    assert_eq!(support::introspection(&server, &good).await["aud"], resource.as_str());
    // A token for another audience (none asked: the client id; another resource).
    for other in [None, Some("https://other.example/api")] {
        let answer = call(Some(token(grant(RESOURCE_SCOPE, other)).await)).await;
        assert_eq!(answer.status(), 401, "{other:?}");
        let header = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let challenge = &token_challenges([header.as_str()])[0];
        assert!(challenge.has_error("invalid_token"), "{header}");
        assert!(challenge.resource_metadata.is_some(), "{header}");
    }
    // The right audience without the scope.
    let answer = call(Some(token(grant("openid", Some(&resource))).await)).await;
    assert_eq!(answer.status(), 403);
    let header = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let challenge = &token_challenges([header.as_str()])[0];
    assert!(challenge.has_error("insufficient_scope"), "{header}");
    assert_eq!(challenge.scope.as_deref(), Some(RESOURCE_SCOPE));
    // A resource that is no absolute URI: invalid_target.
    let answer = http
        .post(server.url("/token"))
        .basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
        .form(&grant(RESOURCE_SCOPE, Some("not a uri")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.json::<serde_json::Value>().await.unwrap()["error"], "invalid_target");
}

#[tokio::test]
async fn without_a_challenge_the_well_known_url_is_used_and_rfc8414_falls_back_to_openid() {
    let server = idp().await;
    // The resource answers 200 without any challenge; RFC 8414's location answers 404.
    server.faults().push(FaultEndpoint::Api, Fault::status(200, "hello"), 1);
    server.faults().push(FaultEndpoint::Discovery, Fault::new(FaultKind::None), 1);
    server.faults().push(FaultEndpoint::Discovery, Fault::status(404, "not here"), 1);
    let found = discover_resource(&server.demo_resource(), &DiscoverySettings::default()).await.unwrap();
    assert_eq!(found.resource_metadata_url, server.url("/.well-known/oauth-protected-resource/api/resource"));
    assert_eq!(found.server_metadata_url, server.url("/.well-known/openid-configuration"));
    assert_eq!(found.server.token_endpoint, server.url("/token"));
    assert_eq!(server.stats().discovery_requests, 3);
}

/// A resource whose own answer is larger than a metadata document may be (an HTML landing page):
/// discovery goes on to the well-known location (it used to stop with "too large").
#[tokio::test]
async fn a_large_answer_from_the_resource_itself_is_not_a_refusal() {
    let server = idp().await;
    server.faults().push(FaultEndpoint::Api, Fault::new(FaultKind::Oversize { bytes: MAX_METADATA_LEN * 2 }), 1);
    let found = discover_resource(&server.demo_resource(), &DiscoverySettings::default()).await.unwrap();
    assert_eq!(found.resource_metadata_url, server.url("/.well-known/oauth-protected-resource/api/resource"));
    assert_eq!(found.issuer, server.issuer());
}

#[tokio::test]
async fn bad_metadata_is_refused_with_typed_errors() {
    let server = idp().await;
    let resource = server.demo_resource();
    let issuer = server.issuer();
    let defaults = DiscoverySettings::default();
    let discover = || discover_resource(&resource, &defaults);

    // RFC 9728 §3.3: another resource.
    server.faults().push(
        FaultEndpoint::Discovery,
        json_fault(format!(r#"{{"resource":"{issuer}/api/other","authorization_servers":["{issuer}"]}}"#)),
        1,
    );
    let error = discover().await.unwrap_err();
    assert!(!error.to_string().contains("/api/other"), "never quotes the document: {error}");
    assert_eq!(problem(error), MetadataProblem::ResourceMismatch { expected: resource.clone() });

    // A plain-http authorization server off loopback.
    server.faults().push(
        FaultEndpoint::Discovery,
        json_fault(format!(r#"{{"resource":"{resource}","authorization_servers":["http://idp.example"]}}"#)),
        1,
    );
    assert_eq!(
        problem(discover().await.unwrap_err()),
        MetadataProblem::InsecureUrl { field: "authorization_servers".into() }
    );

    // A malformed field, named.
    server.faults().push(FaultEndpoint::Discovery, json_fault(r#"{"resource":["x"]}"#.into()), 1);
    assert_eq!(
        problem(discover().await.unwrap_err()),
        MetadataProblem::Malformed { field: "resource".into(), reason: "is not a string".into() }
    );

    // An oversized document: the reading stops at the limit.
    server.faults().push(FaultEndpoint::Discovery, Fault::new(FaultKind::Oversize { bytes: MAX_METADATA_LEN + 1 }), 1);
    assert_eq!(problem(discover().await.unwrap_err()), MetadataProblem::TooLarge { limit: MAX_METADATA_LEN });

    // RFC 8414 §3.3: the server metadata names another issuer (no fallback hides it).
    server.faults().push(FaultEndpoint::Discovery, Fault::new(FaultKind::None), 1);
    server.faults().push(
        FaultEndpoint::Discovery,
        json_fault(r#"{"issuer":"http://127.0.0.1:1","token_endpoint":"http://127.0.0.1:1/token"}"#.into()),
        1,
    );
    assert_eq!(problem(discover().await.unwrap_err()), MetadataProblem::IssuerMismatch { expected: issuer.clone() });

    // An endpoint in plain http off loopback.
    server.faults().push(FaultEndpoint::Discovery, Fault::new(FaultKind::None), 1);
    server.faults().push(
        FaultEndpoint::Discovery,
        json_fault(format!(r#"{{"issuer":"{issuer}","token_endpoint":"http://idp.example/token"}}"#)),
        1,
    );
    assert_eq!(problem(discover().await.unwrap_err()), MetadataProblem::InsecureUrl { field: "token_endpoint".into() });

    // A configured issuer the resource does not name.
    let error = discover_resource(&resource, &DiscoverySettings::with_issuer("https://idp.example")).await.unwrap_err();
    assert!(matches!(problem(error), MetadataProblem::NoAuthorizationServer(_)));

    // A resource in plain http off loopback: the caller's configuration, refused before any request.
    let before = server.stats().api_requests;
    let error = discover_resource("http://api.example/", &DiscoverySettings::default()).await.unwrap_err();
    assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
    assert_eq!(server.stats().api_requests, before);

    // Whatever was refused, the next discovery (no faults left) succeeds.
    assert_eq!(discover().await.unwrap().issuer, issuer);
}

#[tokio::test]
async fn discovery_is_bounded_in_time() {
    let server = idp().await;
    server.faults().push(FaultEndpoint::Discovery, Fault::delay(Duration::from_secs(5)), 1);
    let settings = DiscoverySettings { timeout: Duration::from_millis(300), ..DiscoverySettings::default() };
    let started = std::time::Instant::now();
    let error = discover_resource(&server.demo_resource(), &settings).await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: tessera::TransportErrorKind::Timeout, .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn oidc_provider_behind_a_loopback_resource_server_is_discovered() {
    let op = support::oidc_provider::OidcProvider::start(Default::default());
    for resource in op.resources() {
        let found = discover_resource(resource, &DiscoverySettings::default()).await.unwrap();
        assert_eq!(&found.resource.resource, resource);
        assert_eq!(
            found.resource_metadata_url,
            resource
                .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
                .replace("/files", "/.well-known/oauth-protected-resource/files")
        );
        assert_eq!(found.issuer, op.issuer());
        // oidc-provider publishes no RFC 8414 document: OpenID Connect discovery answered.
        assert_eq!(found.server_metadata_url, op.discovery_url());
        assert_eq!(found.server.token_endpoint, op.token_endpoint());
        assert_eq!(found.server.authorization_endpoint.as_deref(), Some(op.authorization_endpoint().as_str()));
        assert_eq!(found.resource.scopes_supported, ["api:read", "api:write"]);
    }
    // The resource server accepts a token issued for it (RFC 8707), and refuses one for the other.
    let [mcp, files] = op.resources() else { panic!("two resources") };
    let token = |resource: String| {
        let op = &op;
        async move {
            let (status, answer) = op
                .token_request(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "api:read"),
                    ("resource", resource.as_str()),
                ])
                .await;
            assert_eq!(status, 200, "{answer}");
            answer["access_token"].as_str().unwrap().to_owned()
        }
    };
    let http = support::http_client();
    let for_mcp = token(mcp.clone()).await;
    let answer = http.get(mcp).bearer_auth(&for_mcp).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer = http.get(files).bearer_auth(&for_mcp).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    let header = answer.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(token_challenges([header.as_str()])[0].has_error("invalid_token"), "{header}");
}

/// RFC 7591 registration: a public native client (it can start a browser login) and a
/// confidential service client (it gets tokens with the secret it was given), then a refusal.
async fn registration_works_at(
    registration_endpoint: &str,
    authorize: impl AsyncFnOnce(&str) -> u16,
    token_endpoint: &str,
) {
    use tessera::resource::{ClientRegistration, register_client};
    use tessera::transport::TransportSettings;
    use tessera::{ClientAuth, Endpoints, Grant, ProviderConfig, Session};

    let transport = TransportSettings::default();
    let native = ClientRegistration::public_native(&["http://127.0.0.1/callback"], "tessera test").with_scope("openid");
    let public = register_client(registration_endpoint, &native, None, &transport).await.unwrap();
    assert!(public.client_secret.is_none(), "a public client gets no secret");
    assert_eq!(public.redirect_uris, ["http://127.0.0.1/callback"]);
    assert_eq!(authorize(&public.client_id).await, 200, "the authorization endpoint knows the new client");

    let service = ClientRegistration::confidential_service("tessera service");
    let confidential = register_client(registration_endpoint, &service, None, &transport).await.unwrap();
    assert_ne!(confidential.client_id, public.client_id);
    let secret = confidential.client_secret.clone().expect("a confidential client gets a secret");
    assert_eq!(confidential.client_secret_expires_at, None, "the secret never expires");
    let session = Session::builder(
        "registered",
        ProviderConfig {
            client: ClientAuth::basic(&confidential.client_id, secret),
            endpoints: Endpoints::explicit(token_endpoint),
            scope: None,
            grant: Grant::ClientCredentials,
        },
    )
    .build();
    session.authorization_header().await.expect("the registered client gets a token");

    let refused = ClientRegistration::public_native(&["http://example.com/callback"], "tessera test");
    let error = register_client(registration_endpoint, &refused, None, &transport).await.unwrap_err();
    assert!(
        matches!(error.oauth_code(), Some(tessera::OAuthErrorCode::Other(code)) if code == "invalid_redirect_uri"),
        "{error:?}"
    );
}

#[tokio::test]
async fn clients_register_at_the_reference_idp_found_by_discovery() {
    let server = idp().await;
    let found = discover_resource(&server.demo_resource(), &DiscoverySettings::default()).await.unwrap();
    let endpoint = found.server.registration_endpoint.clone().expect("the reference IdP registers clients");
    assert_eq!(endpoint, server.url("/register"));
    let http = support::http_client();
    let authorize = async |client_id: &str| {
        let url = format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri=http://127.0.0.1:4567/callback&scope=openid\
             &state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            server.url("/authorize")
        );
        http.get(url).send().await.unwrap().status().as_u16()
    };
    registration_works_at(&endpoint, authorize, &found.server.token_endpoint).await;
    let stats = server.stats();
    assert_eq!((stats.registration_requests, stats.client_registrations), (3, 2));
}

#[tokio::test]
async fn clients_register_at_oidc_provider_found_by_discovery() {
    let op = support::oidc_provider::OidcProvider::start(Default::default());
    let found = discover_resource(&op.resources()[0], &DiscoverySettings::default()).await.unwrap();
    let endpoint = found.server.registration_endpoint.clone().expect("registration is enabled");
    // Redirects not followed: a known client is sent on to the login interaction (303); an unknown
    // one gets an error page (400).
    let http = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let authorize = async |client_id: &str| {
        let url = format!(
            "{}?response_type=code&client_id={client_id}&redirect_uri=http://127.0.0.1:4567/callback&scope=openid\
             &state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            op.authorization_endpoint()
        );
        // oidc-provider answers a valid request with a redirect to its interaction (login) page.
        let status = http.get(url).send().await.unwrap().status().as_u16();
        if status == 303 { 200 } else { status }
    };
    registration_works_at(&endpoint, authorize, &op.token_endpoint()).await;
}
