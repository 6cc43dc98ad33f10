//! A client registered at runtime (RFC 7591) logs in and refreshes, against a third-party server:
//! panva's `oidc-provider` (`interop/oidc-provider`, open registration at its
//! `registration_endpoint`): a public client registered for the device grant logs in (approved as
//! alice) and refreshes with rotation, without reuse. (`resource_discovery.rs` covers the
//! registration answers themselves, at both servers.)
//!
//! Needs `node` and `npm ci` in `interop/oidc-provider` (see its README).

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::device_provider;
use support::oidc_provider::*;
use tessera::prompt::FnPrompter;
use tessera::resource::{ClientRegistration, register_client};
use tessera::transport::TransportSettings;
use tessera::{ClientAuth, Endpoints, Grant, Prompt, ProviderConfig, Session};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The server's `registration_endpoint`, from its discovery document.
async fn registration_endpoint(op: &OidcProvider) -> String {
    let document: serde_json::Value = reqwest::get(op.discovery_url()).await.unwrap().json().await.unwrap();
    document["registration_endpoint"].as_str().expect("registration is enabled").to_owned()
}

#[tokio::test]
async fn a_registered_public_client_logs_in_and_refreshes() {
    let op = device_provider(60);
    let endpoint = registration_endpoint(&op).await;
    let mut registration = ClientRegistration::public_native(&[], "tessera interop");
    registration.grant_types = vec![DEVICE_CODE_GRANT.into(), "refresh_token".into()];
    registration.response_types = vec![];
    let registered = register_client(&endpoint, &registration, None, &TransportSettings::default()).await.unwrap();
    assert!(!registered.client_id.is_empty() && registered.client_secret.is_none(), "{registered:?}");
    assert_eq!(registered.token_endpoint_auth_method.as_deref(), Some("none"));
    let access = registered.registration_access_token.as_ref().expect("RFC 7592 management token");
    assert!(!format!("{registered:?}").contains(access.expose_secret()));

    let config = ProviderConfig {
        client: ClientAuth::public(&registered.client_id),
        endpoints: Endpoints::discover(op.issuer()),
        scope: Some("openid offline_access api:read".into()),
        grant: Grant::DeviceCode { device_authorization_endpoint: None },
    };
    let approver = Arc::clone(&op);
    let approvals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks = Arc::clone(&approvals);
    let prompter = FnPrompter(move |_: &str, prompt: &Prompt| {
        let Prompt::DeviceCode { user_code, .. } = prompt else { panic!("unexpected prompt {prompt:?}") };
        let (op, user_code) = (Arc::clone(&approver), user_code.clone());
        tasks.lock().unwrap().push(tokio::spawn(async move { op.approve_device(&user_code, ALICE).await }));
        Ok(())
    });
    let session = Session::builder("registered", config).prompter(Arc::new(prompter)).build();
    let header = tokio::time::timeout(Duration::from_secs(30), session.login()).await.unwrap().unwrap();
    let tasks: Vec<_> = std::mem::take(&mut *approvals.lock().unwrap());
    for task in tasks {
        task.await.unwrap();
    }
    let body = op.introspect(header.access_token().expose_secret()).await;
    assert_eq!(
        (&body["active"], &body["client_id"], &body["sub"]),
        (&true.into(), &registered.client_id.as_str().into(), &ALICE.into()),
        "{body}"
    );
    let refreshed = session.force_refresh().await.unwrap();
    assert_ne!(refreshed.access_token(), header.access_token());
    assert_eq!(op.stats().await.refresh_token_reuses, 0);
}
