//! The sans-I/O engine fed arbitrary events: responses with any status, content type and body,
//! transport failures, timers, prompt answers and failures, and ensure/refresh/login/logout calls,
//! as time moves on, for every built-in grant: the unattended ones (token requests) and the interactive
//! ones (device code, email OTP, Cognito, browser: pluggable flows behind the resend wrapper).
//! Invariants: no panic; a `Done` leaves the tokens in the cache; every request id is new.
#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tessera_core::{
    Action, ClientAuth, CognitoAuthFlow, Endpoints, Engine, Error, Event, Grant, HttpResponse, LoginInputs, Prompt,
    ProviderConfig, RequestId, Secret, Timestamp, TokenSet, TotpSource, TransportErrorKind,
};

const TYPES: [&str; 5] =
    ["application/json", "text/html", "text/plain", "application/jwt+json", "application/x-amz-json-1.1"];
const REDIRECT: &str = "http://127.0.0.1:4711/callback";
/// Well-formed answers of each protocol, so that the flows get past their first step.
const CANNED: [&str; 6] = [
    r#"{"access_token":"a","expires_in":60,"refresh_token":"r","token_type":"Bearer"}"#,
    r#"{"AuthenticationResult":{"AccessToken":"a","ExpiresIn":60,"RefreshToken":"r","TokenType":"Bearer"}}"#,
    r#"{"ChallengeName":"EMAIL_OTP","Session":"s","ChallengeParameters":{"CODE_DELIVERY_DESTINATION":"a***"}}"#,
    r#"{"challenge_id":"c","channel":"email","destination":"a***","expires_in":300,"attempts_left":3}"#,
    r#"{"device_code":"d","user_code":"U","verification_uri":"https://idp.example/device","expires_in":600,"interval":1}"#,
    r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","authorization_endpoint":"https://idp.example/authorize","device_authorization_endpoint":"https://idp.example/device_authorization"}"#,
];
const KINDS: [TransportErrorKind; 4] = [
    TransportErrorKind::Connect,
    TransportErrorKind::Timeout,
    TransportErrorKind::ConnectionClosed,
    TransportErrorKind::BodyTooLarge,
];

fuzz_target!(|data: &[u8]| {
    let [setup, rest @ ..] = data else { return };
    let grant = match setup % 9 {
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
        4 => Grant::Static {
            access_token: Secret::new("st"),
            expires_at: Some(Timestamp::from_unix_secs(1_700_000_100)),
        },
        5 => Grant::DeviceCode { device_authorization_endpoint: Some("https://idp.example/device_authorization".into()) },
        6 => Grant::EmailOtp {
            email: "alice@example.com".into(),
            otp_start_endpoint: Some("https://idp.example/otp/start".into()),
            otp_verify_endpoint: Some("https://idp.example/otp/verify".into()),
            max_code_attempts: 3,
        },
        7 => Grant::Cognito {
            endpoint_url: "https://cognito.example/".into(),
            username: "alice".into(),
            password: Some(Secret::new("pw")),
            auth_flow: if setup & 0x40 != 0 { CognitoAuthFlow::Custom } else { CognitoAuthFlow::UserPassword },
            totp_secret: (setup & 0x80 != 0).then(|| Secret::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")),
            max_code_attempts: 3,
        },
        _ => Grant::Browser {
            authorization_endpoint: Some("https://idp.example/authorize".into()),
            redirect_uri: None,
            authorization_params: Vec::new(),
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
    // The `state` of the last authorization URL shown, to build callbacks that get past it.
    let mut last_state: Option<String> = None;
    let inputs = || LoginInputs { random: Some((0u8..64).collect::<Vec<u8>>().into()), redirect_uri: Some(REDIRECT.into()) };
    let mut actions = if setup & 0x08 != 0 { engine.login_with("k", inputs(), now) } else { engine.ensure("k", now) };
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
                Action::Prompt { prompt: Prompt::Browser { authorization_url, .. }, .. } => {
                    last_state = authorization_url
                        .split(['?', '&'])
                        .find_map(|pair| pair.strip_prefix("state="))
                        .map(str::to_owned);
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
        actions = match op % 10 {
            0 | 1 => {
                let body = match (op & 0x40 != 0, body.first()) {
                    (true, Some(pick)) if pick & 1 == 1 => CANNED[(*pick as usize >> 1) % CANNED.len()].as_bytes().to_vec(),
                    (true, _) => format!(r#"{{"access_token":"a{}","expires_in":{},"refresh_token":"r","token_type":"Bearer","issuer":"https://idp.example","token_endpoint":"https://idp.example/token"}}"#, status, u32::from(*content_type) * 7)
                        .into_bytes(),
                    (false, _) => body.to_vec(),
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
            6 => engine.login_with("k", inputs(), now),
            7 => engine.logout("k", now),
            8 => {
                // A code, or the URL the browser came back with (this login's state, or whatever came).
                let text = String::from_utf8_lossy(body);
                let answer = match (&last_state, op & 0x40 != 0) {
                    (Some(state), true) => format!("{REDIRECT}?code={text}&state={state}&iss=https%3A%2F%2Fidp.example"),
                    _ => text.into_owned(),
                };
                engine.handle(Event::Answer { key: "k".into(), answer: Secret::new(answer) }, now)
            }
            _ => engine.handle(
                Event::PromptFailed {
                    key: "k".into(),
                    error: Error::ReauthenticationRequired { reason: "the person gave up".into() },
                },
                now,
            ),
        };
    }
});
