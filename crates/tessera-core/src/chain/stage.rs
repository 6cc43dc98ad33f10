//! Chain stages: how one stage's token is obtained from the previous stage's token, as data
//! ([`Stage`]) and as pure request builders / response parsers. Sending is the runtime's job: [`super::ChainMachine`] plans it, `tessera::chain::DomainClient` does it.

use crate::protocol::{TokenExchangeParams, parse_token_exchange_response, token_exchange_request};
use crate::{
    ClientAuth, Error, HttpRequest, HttpResponse, Method, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet,
};
use serde::{Deserialize, Serialize};

/// The placeholder replaced by the domain id in a domain stage's URL, audience, resource and scope.
pub const DOMAIN_ID_PLACEHOLDER: &str = "{domain_id}";

/// How a stage obtains its token from the token of the stage above it.
#[derive(Clone, Debug)]
#[non_exhaustive]
// A handful per chain, built once from configuration: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Stage {
    /// RFC 8693 token exchange at an authorization server's token endpoint.
    TokenExchange(TokenExchangeStage),
    /// An HTTP call with the previous token as `Authorization: Bearer`, answered with JSON
    /// `{access_token, expires_in, ...}` (plus `{id, name, domain_server: {url, ...}}` at the
    /// domain stage).
    HttpCall(HttpCallStage),
}

impl Stage {
    /// An RFC 8693 exchange at `token_endpoint`, authenticated as `client`, asking for `params`
    /// (`{domain_id}` in its audience, resource and scope is replaced at the domain stage).
    pub fn token_exchange(token_endpoint: impl Into<String>, client: ClientAuth, params: TokenExchangeParams) -> Self {
        Stage::TokenExchange(TokenExchangeStage { token_endpoint: token_endpoint.into(), client, params })
    }

    /// A `POST` to `url` (`{domain_id}` is replaced at the domain stage) with the previous token as bearer.
    pub fn http_post(url: impl Into<String>) -> Self {
        Stage::HttpCall(HttpCallStage { url: url.into(), method: Method::Post })
    }

    /// A `GET` to `url` (`{domain_id}` is replaced at the domain stage) with the previous token as bearer.
    pub fn http_get(url: impl Into<String>) -> Self {
        Stage::HttpCall(HttpCallStage { url: url.into(), method: Method::Get })
    }

    /// The URL this stage calls (for error messages and logs; no query string).
    pub fn endpoint(&self) -> String {
        let url = match self {
            Stage::TokenExchange(stage) => &stage.token_endpoint,
            Stage::HttpCall(stage) => &stage.url,
        };
        url.split(['?', '#']).next().unwrap_or_default().to_owned()
    }
}

/// An RFC 8693 token exchange stage.
#[derive(Clone, Debug)]
pub struct TokenExchangeStage {
    /// The token endpoint.
    pub token_endpoint: String,
    /// The client's identity there (a confidential client, usually).
    pub client: ClientAuth,
    /// What to ask for; the subject token is the previous stage's access token.
    pub params: TokenExchangeParams,
}

/// A per-stage HTTP call.
#[derive(Clone, Debug)]
pub struct HttpCallStage {
    /// The URL; `{domain_id}` is replaced at the domain stage.
    pub url: String,
    /// `POST` (default) or `GET`.
    pub method: Method,
}

/// Where a domain's own API lives, as the domain stage answered it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainServer {
    /// Base URL of the domain's server.
    pub url: String,
    /// Any other fields the server sent (region, version, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Access to one domain: who it is, where its server is, and the token it accepts.
///
/// `Debug` never shows the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainAccess {
    /// The domain id it was asked for.
    pub id: String,
    /// Display name (the id when the server sends none).
    pub name: String,
    /// The domain's server.
    pub domain_server: DomainServer,
    /// The token the domain's server accepts.
    pub access_token: Secret,
    /// Usually `Bearer`.
    #[serde(default = "bearer")]
    pub token_type: String,
    /// When the token stops being accepted; `None` when the server did not say.
    pub expires_at: Option<Timestamp>,
    /// When it was received.
    pub issued_at: Timestamp,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

impl DomainAccess {
    /// The value of an `Authorization` header for this domain, e.g. `Bearer eyJ...`.
    pub fn authorization_value(&self) -> Secret {
        self.as_token_set().authorization_value()
    }

    /// True when the token is still valid `skew` from now (a token without expiry always is).
    pub fn is_valid(&self, now: Timestamp, skew: std::time::Duration) -> bool {
        self.expires_at.is_none_or(|expires_at| now + skew < expires_at)
    }

    /// The access as a [`TokenSet`] (no refresh token: a domain token is re-derived, not refreshed).
    pub fn as_token_set(&self) -> TokenSet {
        TokenSet {
            token_type: self.token_type.clone(),
            ..TokenSet::bearer(self.access_token.clone(), self.expires_at, self.issued_at)
        }
    }
}

/// Rejects domain ids that cannot go into a URL path segment unescaped (an [`Error::Configuration`]).
pub fn check_domain_id(domain_id: &str) -> Result<(), Error> {
    let ok = !domain_id.is_empty()
        && domain_id.len() <= 200
        && domain_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && domain_id != "."
        && domain_id != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::configuration(format!(
            "domain id {domain_id:?} is not allowed: use 1 to 200 characters among A-Z a-z 0-9 - _ . ~"
        )))
    }
}

fn fill(template: &str, domain_id: Option<&str>) -> String {
    match domain_id {
        Some(id) => template.replace(DOMAIN_ID_PLACEHOLDER, id),
        None => template.to_owned(),
    }
}

/// The request that derives a stage's token from `bearer` (the stage above's access token).
///
/// A token-exchange stage whose client authenticates with a client assertion
/// (`client_secret_jwt`, `private_key_jwt`) signs one with `now` and `assertion_id` (128 fresh
/// random bits for its `jti`: [`crate::Engine::next_assertion_id`], or the driver's own
/// generator), audience the stage's token endpoint. It fails, as a configuration error naming the
/// field, only for such a client without `assertion_id` or with an unusable key.
pub fn stage_request(
    id: RequestId,
    stage: &Stage,
    bearer: &Secret,
    domain_id: Option<&str>,
    now: Timestamp,
    assertion_id: Option<[u8; 16]>,
) -> Result<HttpRequest, Error> {
    Ok(match stage {
        Stage::TokenExchange(stage) => {
            let params = TokenExchangeParams {
                audience: stage.params.audience.iter().map(|a| fill(a, domain_id)).collect(),
                resource: stage.params.resource.iter().map(|r| fill(r, domain_id)).collect(),
                scope: stage.params.scope.as_deref().map(|s| fill(s, domain_id)),
                ..stage.params.clone()
            };
            let endpoint = fill(&stage.token_endpoint, domain_id);
            let inputs = crate::AssertionInputs { now, jti: assertion_id, audience: &endpoint, dpop: None };
            token_exchange_request(id, &endpoint, &stage.client, &inputs, bearer, &params)?
        }
        Stage::HttpCall(stage) => HttpRequest {
            id,
            method: stage.method,
            url: fill(&stage.url, domain_id),
            headers: vec![
                ("authorization".to_owned(), format!("Bearer {}", bearer.expose_secret())),
                ("accept".to_owned(), "application/json".to_owned()),
            ],
            body: Vec::new(),
        },
    })
}

#[derive(Deserialize)]
struct WireDomain {
    id: Option<String>,
    name: Option<String>,
    domain_server: Option<DomainServer>,
}

/// Parses a stage's answer received at `now`: the token, and (at the domain stage, `domain_id`
/// given) the domain's description.
pub fn parse_stage_response(
    stage: &Stage,
    response: &HttpResponse,
    domain_id: Option<&str>,
    now: Timestamp,
) -> Result<(TokenSet, Option<DomainAccess>), Error> {
    let endpoint = fill(&stage.endpoint(), domain_id);
    let malformed = |reason: String| Error::MalformedResponse { endpoint: endpoint.clone(), reason };
    let (tokens, wire) = match stage {
        Stage::TokenExchange(exchange) => {
            let exchanged = parse_token_exchange_response(response, &endpoint, now)?;
            let server = exchange.params.resource.first().or(exchange.params.audience.first());
            let wire = WireDomain {
                id: None,
                name: None,
                domain_server: server.map(|url| DomainServer { url: fill(url, domain_id), ..DomainServer::default() }),
            };
            (exchanged.tokens, wire)
        }
        Stage::HttpCall(_) => {
            let tokens = crate::protocol::parse_token_response(response, &endpoint, now)?;
            let wire = match domain_id {
                // The token parser accepted the body as a JSON object; never echo it in errors.
                Some(_) => serde_json::from_slice::<WireDomain>(&response.body).map_err(|_| {
                    malformed("the domain fields (id, name, domain_server) have the wrong types".into())
                })?,
                None => WireDomain { id: None, name: None, domain_server: None },
            };
            (tokens, wire)
        }
    };
    let Some(domain_id) = domain_id else {
        return Ok((tokens, None));
    };
    if let Some(answered) = wire.id.as_deref().filter(|answered| *answered != domain_id) {
        let answered = crate::protocol::printable(answered);
        return Err(malformed(format!("asked for domain `{domain_id}`, the answer is for `{answered}`")));
    }
    let access = DomainAccess {
        id: domain_id.to_owned(),
        name: wire.name.unwrap_or_else(|| domain_id.to_owned()),
        domain_server: wire.domain_server.unwrap_or_default(),
        access_token: tokens.access_token.clone(),
        token_type: tokens.token_type.clone(),
        expires_at: tokens.expires_at,
        issued_at: tokens.issued_at,
    };
    Ok((tokens, Some(access)))
}

/// True when `error` says the bearer (the stage above's token) was refused: 401 (not `invalid_client`), `invalid_token`,
/// or, for a token exchange, `invalid_grant` (the subject token is not accepted).
pub fn is_rejection(stage: &Stage, error: &Error) -> bool {
    match error {
        // Our own client credentials were refused (a 401 too): a new bearer would not help.
        Error::OAuth { code: OAuthErrorCode::InvalidClient, .. } => false,
        Error::OAuth { code: OAuthErrorCode::InvalidToken, .. } | Error::OAuth { status: 401, .. } => true,
        Error::OAuth { code: OAuthErrorCode::InvalidGrant, .. } => matches!(stage, Stage::TokenExchange(_)),
        Error::UnexpectedStatus { status: 401, .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_000);

    #[test]
    fn http_call_request_fills_the_domain_and_sends_the_bearer() {
        let stage = Stage::http_post("https://api.example/domains/{domain_id}/access");
        let request = stage_request(RequestId(4), &stage, &Secret::new("disc"), Some("alpha"), NOW, None).unwrap();
        assert_eq!(request.url, "https://api.example/domains/alpha/access");
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.header("authorization"), Some("Bearer disc"));
        assert!(!format!("{request:?}").contains("disc\""));
    }

    #[test]
    fn a_token_exchange_stage_sends_a_client_assertion_with_its_own_endpoint_as_audience() {
        use crate::ClientAssertionKey;
        let pem =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/ec.pem"))
                .unwrap();
        let client = ClientAuth::private_key_jwt("stage-client", ClientAssertionKey::new(pem));
        let stage = Stage::token_exchange("https://{domain_id}.example/token", client, TokenExchangeParams::default());
        let bearer = Secret::new("disc");
        let request = stage_request(RequestId(4), &stage, &bearer, Some("alpha"), NOW, Some([7; 16])).unwrap();
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&request.body).into_owned().collect();
        assert_eq!(form["client_id"], "stage-client");
        assert_eq!(form["client_assertion_type"], crate::JWT_BEARER_ASSERTION_TYPE);
        let payload = form["client_assertion"].split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "https://alpha.example/token");
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("stage-client"), Some("stage-client")));
        assert_eq!(claims["iat"], 1_000);

        // Without randomness: a configuration error naming what is missing, not a request with
        // the client_id alone (which the server refuses as invalid_client).
        let error = stage_request(RequestId(5), &stage, &bearer, Some("alpha"), NOW, None).unwrap_err();
        assert!(matches!(&error, Error::Configuration { .. }), "{error:?}");
        assert!(error.to_string().contains("private_key_jwt"), "{error}");
    }

    #[test]
    fn domain_answer_is_parsed_and_checked() {
        let stage = Stage::http_post("https://api.example/domains/{domain_id}/access");
        let body = r#"{"id":"alpha","name":"Alpha","domain_server":{"url":"https://alpha.example","region":"eu"},"access_token":"t","expires_in":60}"#;
        let (tokens, access) =
            parse_stage_response(&stage, &HttpResponse::json(RequestId(1), 200, body), Some("alpha"), NOW).unwrap();
        let access = access.unwrap();
        assert_eq!(tokens.access_token.expose_secret(), "t");
        assert_eq!((access.id.as_str(), access.name.as_str()), ("alpha", "Alpha"));
        assert_eq!(access.domain_server.url, "https://alpha.example");
        assert_eq!(access.domain_server.extra["region"], "eu");
        assert_eq!(access.expires_at, Some(NOW + std::time::Duration::from_secs(60)));

        let wrong = r#"{"id":"beta","access_token":"t"}"#;
        let error = parse_stage_response(&stage, &HttpResponse::json(RequestId(1), 200, wrong), Some("alpha"), NOW)
            .unwrap_err();
        assert!(matches!(&error, Error::MalformedResponse { reason, .. } if reason.contains("beta")));
        let bad_types = r#"{"id":5,"access_token":"t"}"#;
        assert!(matches!(
            parse_stage_response(&stage, &HttpResponse::json(RequestId(1), 200, bad_types), Some("alpha"), NOW),
            Err(Error::MalformedResponse { .. })
        ));
    }

    #[test]
    fn rejections_are_recognised() {
        let stage = Stage::http_post("https://api.example/x");
        let denied = HttpResponse::json(RequestId(1), 401, r#"{"error":"invalid_token"}"#);
        let error = parse_stage_response(&stage, &denied, None, NOW).unwrap_err();
        assert!(is_rejection(&stage, &error));
        let bare = HttpResponse { request_id: RequestId(1), status: 401, headers: vec![], body: vec![] };
        assert!(is_rejection(&stage, &parse_stage_response(&stage, &bare, None, NOW).unwrap_err()));
        let busy = HttpResponse { request_id: RequestId(1), status: 503, headers: vec![], body: vec![] };
        assert!(!is_rejection(&stage, &parse_stage_response(&stage, &busy, None, NOW).unwrap_err()));
        // Our client refused (401 invalid_client): a new bearer would not help.
        let client = HttpResponse::json(RequestId(1), 401, r#"{"error":"invalid_client"}"#);
        assert!(!is_rejection(&stage, &parse_stage_response(&stage, &client, None, NOW).unwrap_err()));
    }

    #[test]
    fn domain_ids_are_checked() {
        for good in ["alpha", "a-b_c.d~1"] {
            assert!(check_domain_id(good).is_ok());
        }
        for bad in ["", "a/b", "..", "a b", "é", &"x".repeat(201)] {
            assert!(matches!(check_domain_id(bad), Err(Error::Configuration { .. })), "{bad:?}");
        }
    }
}
