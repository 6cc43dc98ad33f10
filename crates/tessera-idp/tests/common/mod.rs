//! Shared helpers of the integration tests: a started server plus a plain-HTTP reqwest client.
#![allow(dead_code)] // each test binary uses a different subset

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use tessera_idp::{IdpConfig, IdpServer, demo};
use totp_rs::{Secret, Totp};

pub struct Harness {
    pub server: IdpServer,
    pub http: reqwest::Client,
}

/// A reqwest client for plain http:// on loopback. reqwest is built with
/// `rustls-no-provider`, which needs a provider installed even if TLS is never used.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("reqwest client")
}

pub async fn start() -> Harness {
    start_with(IdpConfig::demo()).await
}

pub async fn start_with(config: IdpConfig) -> Harness {
    let server = IdpServer::start(config).await.expect("server starts");
    Harness { server, http: http_client() }
}

/// Status and JSON body (`Value::Null` when the body is not JSON).
pub async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A POST to `path` authenticated as the demo confidential client (HTTP Basic).
    pub fn confidential_post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path)).basic_auth(demo::CONFIDENTIAL_CLIENT_ID, Some(demo::CONFIDENTIAL_CLIENT_SECRET))
    }

    /// A token request by the confidential client with `params`.
    pub async fn token(&self, params: &[(&str, &str)]) -> (StatusCode, Value) {
        json(self.confidential_post("/token").form(params).send().await.unwrap()).await
    }

    /// Password grant for alice by the confidential client; panics unless it succeeds.
    pub async fn alice_tokens(&self) -> Value {
        let (status, body) = self
            .token(&[
                ("grant_type", "password"),
                ("username", demo::ALICE_USERNAME),
                ("password", demo::ALICE_PASSWORD),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Refresh grant by the confidential client.
    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// Introspection by the confidential client.
    pub async fn introspect(&self, token: &str) -> Value {
        let (status, body) =
            json(self.confidential_post("/introspect").form(&[("token", token)]).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /api/whoami` with `Authorization: Bearer <token>`.
    pub async fn whoami(&self, token: &str) -> reqwest::Response {
        self.http.get(self.url("/api/whoami")).bearer_auth(token).send().await.unwrap()
    }
}

pub fn bob_totp() -> Totp {
    totp_rs::Builder::new().with_secret(Secret::try_from_base32(demo::BOB_TOTP_SECRET).unwrap()).build().unwrap()
}

pub fn str_field<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_else(|| panic!("`{field}` missing in {body}"))
}

/// A client that does not follow redirects, to look at `Location` of `/authorize` answers.
pub fn no_redirect_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("reqwest client")
}

/// A PKCE pair `(verifier, S256 challenge)` (RFC 7636 §4.1, §4.2).
pub fn pkce_pair() -> (String, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The `value` of the `<input name="{name}" ...>` of an HTML page (our pages put `name` before
/// `value`).
pub fn input_value(page: &str, name: &str) -> Option<String> {
    let start = page.find(&format!("name=\"{name}\""))?;
    let rest = &page[start..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let value_at = tag.find("value=\"")? + "value=\"".len();
    let value = &tag[value_at..];
    Some(value[..value.find('"')?].to_owned())
}

/// The query parameters of a `Location` header.
pub fn location_params(response: &reqwest::Response) -> (String, std::collections::HashMap<String, String>) {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location header (status {})", response.status()))
        .to_str()
        .unwrap()
        .to_owned();
    let url = url::Url::parse(&location).expect("absolute Location");
    let params = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut base = url.clone();
    base.set_query(None);
    (base.to_string(), params)
}

/// Claims of a JWT this server signed, verified against its JWKS with `audience`.
pub async fn verified_claims(h: &Harness, token: &str, audience: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
    let jwks: JwkSet = h.http.get(h.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.expect("kid");
    let key = DecodingKey::from_jwk(jwks.find(&kid).expect("kid in JWKS")).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[h.server.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("valid JWT").claims
}
