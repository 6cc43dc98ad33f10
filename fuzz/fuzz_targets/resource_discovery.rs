//! Resource-first discovery: RFC 9728 protected resource metadata, RFC 8414 / OpenID authorization
//! server metadata, and the `ResourceDiscovery` machine fed a sequence of arbitrary answers.
//!
//! Input: answers separated by a line `--`; each is a head line `STATUS [CONTENT-TYPE]`, optional
//! `www-authenticate: VALUE` lines, an empty line, then the body. The first answer is also parsed
//! on its own as both kinds of metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::protocol::resource::{
    DiscoveryStep, MAX_METADATA_LEN, ResourceDiscovery, parse_authorization_server_metadata,
    parse_protected_resource_metadata,
};
use tessera_core::{Error, HttpResponse, RequestId};

const RESOURCE: &str = "https://api.example/v1";
const ISSUER: &str = "https://idp.example/tenant";

fn answer(id: u64, text: &str) -> HttpResponse {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let mut words = first.split_whitespace();
    let status = words.next().and_then(|s| s.parse::<u16>().ok()).unwrap_or(200);
    let mut response = HttpResponse::json(RequestId(id), status, body.as_bytes().to_vec());
    if let Some(content_type) = words.next() {
        response.headers = vec![("content-type".into(), content_type.into())];
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(": ") {
            response.headers.push((name.into(), value.into()));
        }
    }
    response
}

/// `https`, or `http` to loopback.
fn secure(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else { return false };
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn same(a: &str, b: &str) -> bool {
    url::Url::parse(a).ok().map(|u| u.to_string()) == url::Url::parse(b).ok().map(|u| u.to_string())
}

/// Refusals of every kind (metadata, the server's own errors, statuses) never show a query string:
/// the documents below are fetched from URLs whose query is the marker `FUZZQUERY`.
fn check_error(error: &Error) {
    if let Error::Metadata { endpoint, .. } = error {
        assert!(!endpoint.contains('?') && !endpoint.contains('#'), "{endpoint}");
    }
    let text = error.to_string();
    assert!(!text.contains("FUZZQUERY"), "{text}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let answers: Vec<&str> = text.split("\n--\n").collect();

    let first = answer(1, answers[0]);
    match parse_protected_resource_metadata(&first, "https://api.example/.well-known/oauth-protected-resource/v1?q=FUZZQUERY", RESOURCE) {
        Ok(metadata) => {
            assert!(first.body.len() <= MAX_METADATA_LEN);
            assert!(same(&metadata.resource, RESOURCE));
            assert!(metadata.authorization_servers.iter().all(|s| secure(s)));
            if let Ok(chosen) = metadata.choose_authorization_server(None) {
                assert_eq!(chosen, metadata.authorization_servers[0]);
            }
        }
        Err(error) => check_error(&error),
    }
    match parse_authorization_server_metadata(&first, "https://idp.example/.well-known/oauth-authorization-server/tenant?q=FUZZQUERY", ISSUER) {
        Ok(metadata) => {
            assert_eq!(metadata.issuer, ISSUER);
            assert!(secure(&metadata.token_endpoint));
            for endpoint in [&metadata.authorization_endpoint, &metadata.registration_endpoint, &metadata.revocation_endpoint] {
                assert!(endpoint.as_deref().is_none_or(secure));
            }
        }
        Err(error) => check_error(&error),
    }

    // The machine: at most five requests (probe, resource metadata, three server locations), every
    // one to a secure URL, and a result that passed every check.
    let Ok(mut discovery) = ResourceDiscovery::new(RESOURCE, None) else { unreachable!() };
    let mut request = discovery.start();
    let mut sent = 1;
    for text in &answers {
        assert!(secure(&request.url), "{}", request.url);
        match discovery.handle(&answer(request.id.0, text)) {
            Ok(DiscoveryStep::Send(next)) => {
                sent += 1;
                assert!(sent <= 5);
                request = next;
            }
            Ok(DiscoveryStep::Done(found)) => {
                assert!(same(&found.resource.resource, RESOURCE));
                assert!(found.resource.authorization_servers.contains(&found.issuer));
                assert_eq!(found.server.issuer, found.issuer);
                return;
            }
            Ok(_) => return,
            Err(error) => {
                check_error(&error);
                return;
            }
        }
    }
});
