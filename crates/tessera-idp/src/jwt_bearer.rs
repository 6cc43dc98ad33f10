//! The JWT bearer grant at `POST /token` (RFC 7523 §2.1, `grant_type =
//! urn:ietf:params:oauth:grant-type:jwt-bearer`): a registered [`ServiceAccount`] signs a JWT and
//! presents it as the grant, as a Google service account does at `oauth2.googleapis.com/token`.
//!
//! Checked, in this order (each failure is `invalid_grant`, RFC 7523 §3.1, and its description
//! names the claim, never the assertion): the JWT's `iss` is a registered service account; the
//! header's `kid`, when both sides have one, is the registered one; the signature verifies with
//! its public key and the header's `alg` suits that key; `aud` is the token endpoint or the
//! issuer; `exp` is in the future but at most one hour ahead (Google's limit), `iat` and `nbf`
//! not in the future (30 s leeway for clocks); `jti` is present and not seen before from that
//! account (kept until the assertion expires); `sub` is the account itself, or a known user when
//! the account may act for users (Google's domain-wide delegation). The scope is the form's
//! `scope`, else the assertion's `scope` claim (where google-auth puts it), else `openid`; both
//! at once is `invalid_request`. Client authentication is optional: when the request carries
//! one, it must be valid. The answer has no refresh token (RFC 7521 §4.1).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::handlers::{TokenResponse, mint_access_token, requested_scope};
use crate::oauth::{self, Form, OAuthError};
use crate::server::Shared;

/// `grant_type` of the JWT bearer grant.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How far ahead of now an assertion's `exp` may be (Google's limit).
pub(crate) const MAX_ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Leeway for `iat`, `nbf` and `exp` against the server's clock.
const LEEWAY_SECS: u64 = 30;

/// An account that may use the JWT bearer grant: the `iss` of its assertions and the public key
/// they are signed with. `Debug` shows everything (a public key is not a secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// The assertions' `iss` (a Google service account's `client_email`); also the `client_id`
    /// of the tokens it gets.
    pub id: String,
    /// Its public key, SPKI PEM (`-----BEGIN PUBLIC KEY-----`): RSA (RS256/384/512, PS256/384/512),
    /// EC P-256 (ES256) or Ed25519 (EdDSA).
    pub public_key: String,
    /// The `kid` of the key; when set, an assertion naming another `kid` is refused.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Whether `sub` may name a known user instead of the account itself (Google's domain-wide
    /// delegation).
    #[serde(default)]
    pub may_act_for_users: bool,
}

impl ServiceAccount {
    /// The demo account of [`crate::demo`]: [`crate::demo::SERVICE_ACCOUNT_EMAIL`], its public key
    /// and `kid`, allowed to act for the demo users.
    pub fn demo() -> Self {
        ServiceAccount {
            id: crate::demo::SERVICE_ACCOUNT_EMAIL.to_owned(),
            public_key: crate::demo::SERVICE_ACCOUNT_PUBLIC_KEY.to_owned(),
            key_id: Some(crate::demo::SERVICE_ACCOUNT_KEY_ID.to_owned()),
            may_act_for_users: true,
        }
    }
}

/// The registered accounts, their keys read once, and the `jti`s seen.
pub(crate) struct JwtBearerState {
    accounts: HashMap<String, (ServiceAccount, DecodingKey, KeyFamily)>,
    /// `(iss, jti)` → the assertion's `exp`: a replay is refused until then.
    seen: Mutex<HashMap<(String, String), u64>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    EcP256,
    Ed25519,
}

impl KeyFamily {
    fn signs(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        match self {
            KeyFamily::Rsa => matches!(alg, A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512),
            KeyFamily::EcP256 => alg == A::ES256,
            KeyFamily::Ed25519 => alg == A::EdDSA,
        }
    }
}

fn decoding_key(pem: &str) -> Option<(DecodingKey, KeyFamily)> {
    let pem = pem.as_bytes();
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((key, KeyFamily::Rsa));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, KeyFamily::EcP256));
    }
    DecodingKey::from_ed_pem(pem).ok().map(|key| (key, KeyFamily::Ed25519))
}

impl JwtBearerState {
    /// Reads every account's key; a key that is not a usable public key is a configuration error.
    pub(crate) fn new(accounts: Vec<ServiceAccount>) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        for account in accounts {
            let (key, family) = decoding_key(&account.public_key)
                .ok_or_else(|| format!("service account `{}`: public_key is not an SPKI PEM", account.id))?;
            if by_id.contains_key(&account.id) {
                return Err(format!("duplicate service account `{}`", account.id));
            }
            by_id.insert(account.id.clone(), (account, key, family));
        }
        Ok(JwtBearerState { accounts: by_id, seen: Mutex::new(HashMap::new()) })
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
    jti: Option<String>,
    scope: Option<String>,
}

/// Answers a JWT bearer token request, or `None` for any other grant type.
pub(crate) fn jwt_bearer(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let form = Form::parse(headers, body).ok()?;
    if form.get("grant_type") != Some(JWT_BEARER_GRANT_TYPE) {
        return None;
    }
    Some(match jwt_bearer_grant(s, headers, &form) {
        Ok(response) => {
            s.stats.update(|st| st.jwt_bearer_grants += 1);
            (oauth::no_store(), Json(response)).into_response()
        }
        Err(e) => {
            s.stats.update(|st| st.failed_token_requests += 1);
            tracing::info!(error = e.error, description = %e.description, "jwt bearer grant refused");
            e.into_response()
        }
    })
}

fn jwt_bearer_grant(s: &Shared, headers: &HeaderMap, form: &Form) -> Result<TokenResponse, OAuthError> {
    // Optional client authentication (RFC 7523 §3.1): checked when present.
    if headers.contains_key(header::AUTHORIZATION) || form.get("client_id").is_some() {
        oauth::authenticate_client(&s.clients, headers, form)?;
    }
    let assertion = form.require("assertion")?;
    let refused = OAuthError::invalid_grant;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused("the assertion is not a JWT"))?;
    // The issuer picks the key: read it before the signature can be checked.
    let unverified_iss = assertion
        .split('.')
        .nth(1)
        .and_then(|payload| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .and_then(|claims| claims.get("iss").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| refused("the assertion has no iss"))?;
    let (account, key, family) = s
        .jwt_bearer
        .accounts
        .get(&unverified_iss)
        .ok_or_else(|| refused("the assertion's iss is not a known service account"))?;
    if let (Some(expected), Some(kid)) = (&account.key_id, &header.kid)
        && expected != kid
    {
        return Err(refused("the assertion's kid is not the service account's key"));
    }
    if !family.signs(header.alg) {
        return Err(refused("the assertion's alg does not suit the service account's key"));
    }
    let mut validation = Validation::new(header.alg);
    // Time and audience are checked below, against the server's own (offset-able) clock.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation)
        .map_err(|_| refused("the assertion's signature does not verify with the service account's key"))?
        .claims;
    if claims.iss.as_deref() != Some(account.id.as_str()) {
        return Err(refused("the assertion's iss is not a known service account"));
    }
    let token_endpoint = format!("{}/token", s.issuer);
    let audiences: Vec<&str> = match &claims.aud {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|aud| *aud == token_endpoint || *aud == s.issuer) {
        return Err(refused("the assertion's aud is neither the token endpoint nor the issuer"));
    }
    let now = s.now();
    let exp = claims.exp.ok_or_else(|| refused("the assertion has no exp"))?;
    if exp + LEEWAY_SECS <= now {
        return Err(refused("the assertion has expired (exp)"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS {
        return Err(refused("the assertion's exp is more than one hour ahead"));
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) || claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(refused("the assertion is not valid yet (iat or nbf in the future)"));
    }
    let jti = claims.jti.filter(|jti| !jti.is_empty()).ok_or_else(|| refused("the assertion has no jti"))?;
    {
        let mut seen = s.jwt_bearer.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, expires| *expires + LEEWAY_SECS > now);
        if seen.insert((account.id.clone(), jti), exp).is_some() {
            return Err(refused("the assertion was already used (jti)"));
        }
    }
    let subject = claims.sub.unwrap_or_else(|| account.id.clone());
    if subject != account.id && !(account.may_act_for_users && s.users.contains_key(&subject)) {
        return Err(refused("the assertion's sub is neither the service account nor a user it may act for"));
    }
    let scope = match (requested_scope(form), claims.scope.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")))
    {
        (Some(_), Some(claim)) if !claim.is_empty() => {
            return Err(OAuthError::invalid_request("scope is both in the form and in the assertion: give one"));
        }
        (Some(scope), _) => scope,
        (None, Some(claim)) if !claim.is_empty() => claim,
        _ => crate::handlers::DEFAULT_SCOPE.to_owned(),
    };
    let (access_token, expires_in) = mint_access_token(s, &account.id, &subject, &scope, None, now)?;
    tracing::debug!(client_id = %account.id, "token issued for a jwt bearer assertion");
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in, refresh_token: None, scope, id_token: None })
}
