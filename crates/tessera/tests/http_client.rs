//! The application's own HTTP stack: a custom [`Transport`], a custom reqwest client, and the
//! rules tessera keeps around both (HTTPS off loopback, body cap).

mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use support::*;
use tessera::core::{HttpRequest, HttpResponse};
use tessera::transport::{HttpTransport, Transport, TransportSettings};
use tessera::{Endpoints, Error, Session, SessionSettings, TransportErrorKind};

/// Sends through tessera's own transport and records every URL it was given.
#[derive(Default)]
struct Recording {
    inner: HttpTransport,
    seen: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Transport for Recording {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.seen.lock().unwrap().push(request.endpoint());
        self.inner.execute(request).await
    }
}

#[tokio::test]
async fn a_custom_transport_carries_every_request_and_single_flight_still_holds() {
    let idp = idp(Duration::from_secs(60)).await;
    let recording = Arc::new(Recording::default());
    let session = Session::builder("alice", alice(&idp.issuer())).transport(recording.clone()).build();
    let calls: Vec<_> = (0..20).map(|_| session.authorization_header()).collect();
    for header in futures_util::future::join_all(calls).await {
        assert_eq!(whoami(&idp, header.unwrap().expose_secret()).await, 200);
    }
    let seen = recording.seen.lock().unwrap().clone();
    let issuer = idp.issuer();
    assert_eq!(
        seen,
        vec![format!("{issuer}/.well-known/openid-configuration"), format!("{issuer}/token")],
        "discovery and one token request, both through the custom transport"
    );
    assert_eq!(idp.stats().token_requests, 1);
}

/// Answers every request with a canned body, without sending anything.
struct Canned(Vec<u8>);

#[async_trait::async_trait]
impl Transport for Canned {
    async fn execute(&self, _request: HttpRequest) -> Result<HttpResponse, Error> {
        // A wrong request id: the session echoes the right one itself.
        Ok(HttpResponse::json(tessera::core::RequestId(u64::MAX), 200, self.0.clone()))
    }
}

#[tokio::test]
async fn a_custom_transport_stays_inside_the_https_rule_and_the_body_cap() {
    let token = br#"{"access_token":"canned","token_type":"Bearer","expires_in":3600}"#.to_vec();
    let config = |url: &str| tessera::ProviderConfig { endpoints: Endpoints::explicit(url), ..machine("") };

    // Plain HTTP off loopback is refused before the transport is called (it would answer).
    let session =
        Session::builder("m", config("http://idp.example/token")).transport(Arc::new(Canned(token.clone()))).build();
    let error = session.authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::InvalidUrl, .. }), "{error}");
    assert!(error.to_string().contains("allow_insecure_http"), "{error}");

    // ... unless allowed; and the request id is the session's, whatever the transport said.
    let settings = SessionSettings {
        transport: TransportSettings { allow_insecure_http: true, ..TransportSettings::default() },
        ..SessionSettings::default()
    };
    let session = Session::builder("m", config("http://idp.example/token"))
        .settings(settings)
        .transport(Arc::new(Canned(token.clone())))
        .build();
    assert_eq!(session.access_token().await.unwrap().expose_secret(), "canned");

    // A body over the cap is refused even though the transport read it.
    let settings = SessionSettings {
        transport: TransportSettings { max_response_bytes: 16, ..TransportSettings::default() },
        ..SessionSettings::default()
    };
    let session = Session::builder("m", config("https://idp.example/token"))
        .settings(settings)
        .transport(Arc::new(Canned(token)))
        .build();
    let error = session.authorization_header().await.unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportErrorKind::BodyTooLarge, .. }), "{error}");
}
