//! JWT bearer grant (RFC 7523 §2.1): a JWT the client signs with its own key *is* the grant. It is
//! how Google service accounts get tokens (google-auth's `service_account.Credentials`), and what
//! Okta, Keycloak and Salesforce call the JWT bearer flow. The answer carries no refresh token
//! (RFC 7521 §4.1 advises servers not to issue one): when the access token expires, the engine logs
//! in again, with a new assertion, as for client credentials.
//!
//! The assertion: `iss` = the client id (a service account's email), `sub` = [`Grant::JwtBearer`]'s
//! `subject` (default: the client id), `aud` = its `audience` (default: the token endpoint, as
//! google-auth sends), `iat` = now, `exp` = `iat` + its `lifetime` (default 1 h, google-auth's),
//! `jti` = 128 bits derived from the step's driver-given randomness, and `scope` when
//! `scope_in_assertion` (Google reads the scope there, not in the form). Signing is the client
//! assertions' (`client_auth.rs`): same keys, same algorithms, same rule that no error, `Debug` or
//! log shows the key or an assertion.
//!
//! Client authentication is optional with this grant (RFC 7523 §3.1): a `client_secret` or
//! `client_assertion_key` is applied as for every grant; without one, the form carries only
//! `grant_type`, `assertion` and `scope` — no `client_id`, as google-auth sends it.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::token_request::TokenForm;
use super::{FlowContext, Grant};
use crate::{ClientAssertionKey, Error, Secret, Timestamp};

/// `grant_type` of the JWT bearer grant (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long a grant assertion is valid unless configured (`assertion_lifetime`): one hour, what
/// google-auth signs and the most Google accepts. Servers with a shorter limit (Salesforce: 3
/// minutes) need a shorter `assertion_lifetime`.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// What the JWT bearer grant sends: the settings of [`Grant::JwtBearer`].
#[derive(Debug)]
pub(crate) struct JwtBearerForm {
    pub(crate) key: ClientAssertionKey,
    pub(crate) subject: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) scope_in_assertion: bool,
    pub(crate) lifetime: Duration,
}

impl JwtBearerForm {
    /// The form of `grant`, which must be [`Grant::JwtBearer`].
    pub(crate) fn of(grant: &Grant) -> Option<Self> {
        let Grant::JwtBearer { key, subject, audience, scope_in_assertion, lifetime } = grant else { return None };
        Some(JwtBearerForm {
            key: key.clone(),
            subject: subject.clone(),
            audience: audience.clone(),
            scope_in_assertion: *scope_in_assertion,
            lifetime: *lifetime,
        })
    }
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// The grant assertion's key, as each request reads it; errors name the grant's fields
/// (`assertion_key`, `assertion_alg`), never the key.
pub(crate) fn grant_signer(key: &ClientAssertionKey) -> Result<crate::client_auth::Signer, (&'static str, String)> {
    key.signer().map_err(grant_field)
}

/// [`grant_signer`] with a signature made now, for checking a description.
pub(crate) fn checked_grant_signer(
    key: &ClientAssertionKey,
) -> Result<crate::client_auth::Signer, (&'static str, String)> {
    key.checked_signer().map_err(grant_field)
}

/// A key problem in the grant's own field names.
fn grant_field((field, problem): (&'static str, String)) -> (&'static str, String) {
    let field = match field {
        "client_assertion_alg" => "assertion_alg",
        _ => "assertion_key",
    };
    (field, problem)
}

/// The grant assertion's `jti`: a hash of the step's random id under a label of its own, so that
/// a request carrying a client assertion too (`private_key_jwt` with this grant) sends two
/// different ids, both unpredictable.
fn grant_jti(step_id: &[u8; 16]) -> String {
    use base64::Engine as _;
    let digest = Sha256::new().chain_update(b"tessera jwt-bearer grant assertion\0").chain_update(step_id).finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

impl TokenForm for JwtBearerForm {
    fn params(&self, context: &FlowContext<'_>, now: Timestamp) -> Result<Vec<(&'static str, Secret)>, Error> {
        let Some(step_id) = context.assertion_id else {
            return Err(Error::configuration(
                "the jwt_bearer grant needs fresh randomness for each assertion's jti: the driver gives none \
                 (EngineSettings::entropy)",
            ));
        };
        let signer =
            grant_signer(&self.key).map_err(|(field, problem)| Error::configuration(format!("{field}: {problem}")))?;
        let issuer = context.config.client.client_id.as_str();
        let audience = match &self.audience {
            Some(audience) => audience.as_str(),
            None => context.require_token_endpoint()?,
        };
        let scope = context.config.scope.as_deref().filter(|scope| self.scope_in_assertion && !scope.trim().is_empty());
        let iat = now.as_unix_secs();
        let claims = GrantClaims {
            iss: issuer,
            sub: self.subject.as_deref().unwrap_or(issuer),
            aud: audience,
            iat,
            exp: iat.saturating_add(i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)),
            jti: grant_jti(&step_id),
            scope,
        };
        let assertion = signer
            .sign(&claims)
            .map_err(|_| Error::configuration("assertion_key: the grant assertion could not be signed"))?;
        Ok(vec![("grant_type", Secret::new(JWT_BEARER_GRANT_TYPE)), ("assertion", Secret::new(assertion))])
    }

    fn scope_in_form(&self) -> bool {
        !self.scope_in_assertion
    }

    fn sends_client_id(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::Value;

    use super::super::token_request::TokenRequest;
    use super::super::token_request::tests::Provider;
    use super::*;
    use crate::{ClientAuth, Endpoints, Flow, FlowStep, HttpResponse, RequestId};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
    const KEY: &str = include_str!("../../../../testdata/client-assertion/rsa.pem");

    fn provider(scope_in_assertion: bool, client: ClientAuth) -> Provider {
        let mut provider = Provider::new(None);
        provider.config.client = client;
        provider.config.endpoints = Endpoints::explicit("https://idp.example/token");
        provider.config.scope = Some("api:read api:write".into());
        provider.config.grant = Grant::JwtBearer {
            key: ClientAssertionKey { kid: Some("k1".into()), ..ClientAssertionKey::new(KEY) },
            subject: None,
            audience: None,
            scope_in_assertion,
            lifetime: DEFAULT_ASSERTION_LIFETIME,
        };
        provider
    }

    fn form(steps: &[FlowStep]) -> Vec<(String, String)> {
        let [FlowStep::Send(request)] = steps else { panic!("expected one Send, got {steps:?}") };
        url::form_urlencoded::parse(&request.body).into_owned().collect()
    }

    fn claims(assertion: &str) -> (Value, Value) {
        let mut parts = assertion.split('.');
        let decode = |part: Option<&str>| -> Value {
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.unwrap()).unwrap())
                .unwrap()
        };
        (decode(parts.next()), decode(parts.next()))
    }

    fn start(provider: &Provider, id: [u8; 16]) -> Vec<FlowStep> {
        let mut context = provider.context();
        context.assertion_id = Some(id);
        let mut flow = TokenRequest::new(JwtBearerForm::of(&provider.config.grant).unwrap());
        flow.start(&context, RequestId(1), NOW)
    }

    #[test]
    fn the_form_is_the_grant_type_and_a_signed_assertion_without_client_id() {
        let provider = provider(false, ClientAuth::public("svc@example.iam"));
        let form = form(&start(&provider, [7; 16]));
        let names: Vec<&str> = form.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["grant_type", "assertion", "scope"], "no client_id without client authentication");
        assert_eq!(form[0].1, JWT_BEARER_GRANT_TYPE);
        assert_eq!(form[2].1, "api:read api:write");
        let (header, claims) = claims(&form[1].1);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "k1");
        assert_eq!(claims["iss"], "svc@example.iam");
        assert_eq!(claims["sub"], "svc@example.iam", "sub defaults to the client id");
        assert_eq!(claims["aud"], "https://idp.example/token", "aud defaults to the token endpoint");
        assert_eq!(claims["iat"], NOW.as_unix_secs());
        assert_eq!(claims["exp"], NOW.as_unix_secs() + 3600);
        assert!(claims.get("scope").is_none(), "scope is in the form");
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22, "128 bits, base64url");
    }

    #[test]
    fn scope_moves_into_the_assertion_and_settings_replace_the_defaults() {
        let mut provider = provider(true, ClientAuth::public("svc@example.iam"));
        let Grant::JwtBearer { subject, audience, lifetime, .. } = &mut provider.config.grant else { unreachable!() };
        *subject = Some("alice@example.com".into());
        *audience = Some("https://idp.example".into());
        *lifetime = Duration::from_secs(120);
        let form = form(&start(&provider, [7; 16]));
        assert_eq!(form.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["grant_type", "assertion"]);
        let (_, claims) = claims(&form[1].1);
        assert_eq!(claims["scope"], "api:read api:write");
        assert_eq!(claims["sub"], "alice@example.com");
        assert_eq!(claims["aud"], "https://idp.example");
        assert_eq!(claims["exp"], NOW.as_unix_secs() + 120);
    }

    #[test]
    fn every_step_signs_a_new_jti_distinct_from_a_client_assertion() {
        let provider = provider(false, ClientAuth::secret_jwt("svc", "client-secret"));
        let first = form(&start(&provider, [1; 16]));
        let second = form(&start(&provider, [2; 16]));
        let jti = |form: &[(String, String)], field: &str| {
            let value = &form.iter().find(|(name, _)| name == field).unwrap().1;
            claims(value).1["jti"].as_str().unwrap().to_owned()
        };
        assert_ne!(jti(&first, "assertion"), jti(&second, "assertion"));
        assert_ne!(jti(&first, "assertion"), jti(&first, "client_assertion"), "the client's own assertion differs");
        assert!(first.iter().any(|(name, value)| name == "client_id" && value == "svc"), "client auth still applies");
    }

    #[test]
    fn without_randomness_or_with_a_bad_key_it_fails_without_quoting_the_key() {
        let provider = provider(false, ClientAuth::public("svc"));
        let mut flow = TokenRequest::new(JwtBearerForm::of(&provider.config.grant).unwrap());
        let steps = flow.start(&provider.context(), RequestId(1), NOW);
        let [FlowStep::Failed(error)] = &steps[..] else { panic!("{steps:?}") };
        assert!(error.to_string().contains("entropy"), "{error}");

        let mut provider = provider;
        let Grant::JwtBearer { key, .. } = &mut provider.config.grant else { unreachable!() };
        key.key = Secret::new("-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----");
        let steps = start(&provider, [1; 16]);
        let [FlowStep::Failed(error)] = &steps[..] else { panic!("{steps:?}") };
        let text = format!("{error} {error:?}");
        assert!(text.contains("assertion_key") && !text.contains("not-a-key"), "{text}");
    }

    #[test]
    fn a_token_answer_without_refresh_token_is_done() {
        let provider = provider(false, ClientAuth::public("svc"));
        let mut context = provider.context();
        context.assertion_id = Some([3; 16]);
        let mut flow = TokenRequest::new(JwtBearerForm::of(&provider.config.grant).unwrap());
        flow.start(&context, RequestId(1), NOW);
        let response = HttpResponse::json(RequestId(1), 200, r#"{"access_token":"at","expires_in":3600}"#);
        let steps = flow.on_response(&context, &response, RequestId(2), NOW);
        let [FlowStep::Done(tokens)] = &steps[..] else { panic!("{steps:?}") };
        assert!(tokens.refresh_token.is_none());
        assert!(provider.config.grant.logs_in_unattended() && !provider.config.grant.is_interactive());
    }
}
