//! The sans-I/O engine fed arbitrary events: responses with any status, content type and body,
//! transport failures, timers, and ensure/refresh/login/logout calls, as time moves on.
//! Invariants: no panic; a `Done` leaves the tokens in the cache; every request id is new.
#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tessera_core::{
    Action, ClientAuth, Endpoints, Engine, Error, Event, Grant, HttpResponse, ProviderConfig, RequestId, Secret,
    Timestamp, TokenSet, TotpSource, TransportErrorKind,
};

const TYPES: [&str; 4] = ["application/json", "text/html", "text/plain", "application/jwt+json"];
const KINDS: [TransportErrorKind; 4] = [
    TransportErrorKind::Connect,
    TransportErrorKind::Timeout,
    TransportErrorKind::ConnectionClosed,
    TransportErrorKind::BodyTooLarge,
];

fuzz_target!(|data: &[u8]| {
    let [setup, rest @ ..] = data else { return };
    let grant = match setup % 5 {
        0 => Grant::ClientCredentials,
        1 => Grant::Password {
            username: "alice".into(),
            password: Secret::new("pw"),
            totp: Some(TotpSource::Secret(Secret::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))),
        },
        2 => Grant::Password {
            username: "bob".into(),
            password: Secret::new("pw"),
            totp: Some(TotpSource::Code(Secret::new("123456"))),
        },
        3 => Grant::RefreshToken { refresh_token: Secret::new("rt") },
        _ => Grant::Static {
            access_token: Secret::new("st"),
            expires_at: Some(Timestamp::from_unix_secs(1_700_000_100)),
        },
    };
    let endpoints = if setup & 0x10 != 0 {
        Endpoints::discover("https://idp.example")
    } else {
        Endpoints::Explicit {
            token_endpoint: "https://idp.example/token".into(),
            revocation_endpoint: Some("https://idp.example/revoke".into()),
        }
    };
    let mut engine = Engine::default();
    engine.register(
        "k",
        ProviderConfig { client: ClientAuth::basic("c", "s"), endpoints, scope: Some("api".into()), grant },
    );
    if setup & 0x20 != 0 {
        let mut held = TokenSet::bearer(
            "held",
            Some(Timestamp::from_unix_secs(1_700_000_010)),
            Timestamp::from_unix_secs(1_699_999_000),
        );
        held.refresh_token = Some(Secret::new("held-rt"));
        engine.set_tokens("k", Some(held));
    }
    let mut now = Timestamp::from_unix_secs(1_700_000_000);
    let mut seen = HashSet::new();
    let mut last_request: Option<RequestId> = None;
    let mut actions = engine.ensure("k", now);
    let mut chunks = rest.chunks(24);
    for _ in 0..64 {
        for action in actions.drain(..) {
            match action {
                Action::Send(request) => {
                    assert!(seen.insert(request.id), "request id reused");
                    last_request = Some(request.id);
                }
                Action::Done { key, tokens } => assert_eq!(engine.tokens(&key), Some(&tokens)),
                Action::Failed { error, .. } => {
                    let _ = (error.is_transient(), error.to_string());
                }
                _ => {}
            }
        }
        let Some(chunk) = chunks.next() else { break };
        let [op, status, content_type, body @ ..] = chunk else { break };
        now = now + Duration::from_secs(u64::from(*op >> 3));
        let id = match (last_request, op & 0x80) {
            (Some(id), 0) => id,
            _ => RequestId(u64::from(*status)),
        };
        actions = match op % 8 {
            0 | 1 => {
                let body = if op & 0x40 != 0 {
                    format!(r#"{{"access_token":"a{}","expires_in":{},"refresh_token":"r","token_type":"Bearer","issuer":"https://idp.example","token_endpoint":"https://idp.example/token"}}"#, status, u32::from(*content_type) * 7)
                        .into_bytes()
                } else {
                    body.to_vec()
                };
                let response = HttpResponse {
                    request_id: id,
                    status: [200, 400, 401, 429, 500, 503][*status as usize % 6],
                    headers: vec![
                        ("content-type".into(), TYPES[*content_type as usize % TYPES.len()].into()),
                        ("retry-after".into(), format!("{}", status % 4)),
                    ],
                    body,
                };
                engine.handle(Event::Response(response), now)
            }
            2 => engine.handle(
                Event::TransportFailed {
                    request_id: id,
                    error: Error::Transport {
                        kind: KINDS[*status as usize % KINDS.len()],
                        endpoint: "https://idp.example/token".into(),
                        message: "fuzz".into(),
                    },
                },
                now,
            ),
            3 => engine.handle(Event::Timer { key: "k".into() }, now),
            4 => engine.ensure("k", now),
            5 => engine.refresh("k", now),
            6 => engine.login("k", now),
            _ => engine.logout("k", now),
        };
    }
});
