//! The JWT bearer grant at `POST /token` (RFC 7523 §2.1, `grant_type =
//! urn:ietf:params:oauth:grant-type:jwt-bearer`): a registered [`ServiceAccount`] signs a JWT and
//! presents it as the grant, as a Google service account does at `oauth2.googleapis.com/token`.
//!
//! The signature and claim checks are [`crate::assertion::verify`], shared with `private_key_jwt`
//! client authentication. Checked, in this order (each failure is `invalid_grant`, RFC 7523
//! §3.1, and its description names the claim, never the assertion): the JWT's `iss` is a registered service account; the
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

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};

use crate::assertion::{self, AssertionKey, Expected, JtiCache};
use crate::handlers::{TokenResponse, mint_access_token, requested_scope};
use crate::oauth::{self, Form, OAuthError};
use crate::server::Shared;

/// `grant_type` of the JWT bearer grant.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

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
    accounts: HashMap<String, (ServiceAccount, AssertionKey)>,
    seen: JtiCache,
}

impl JwtBearerState {
    /// Reads every account's key; a key that is not a usable public key is a configuration error.
    pub(crate) fn new(accounts: Vec<ServiceAccount>) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        for account in accounts {
            let key = AssertionKey::parse(&account.public_key, account.key_id.as_deref())
                .ok_or_else(|| format!("service account `{}`: public_key is not an SPKI PEM", account.id))?;
            if by_id.contains_key(&account.id) {
                return Err(format!("duplicate service account `{}`", account.id));
            }
            by_id.insert(account.id.clone(), (account, key));
        }
        Ok(JwtBearerState { accounts: by_id, seen: JtiCache::default() })
    }
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
        oauth::authenticate_client(s, headers, form)?;
    }
    let assertion = form.require("assertion")?;
    let refused = OAuthError::invalid_grant;
    jsonwebtoken::decode_header(assertion).map_err(|_| refused("the assertion is not a JWT"))?;
    // The issuer picks the key: read it before the signature can be checked.
    let unverified_iss =
        assertion::unverified_claim(assertion, "iss").ok_or_else(|| refused("the assertion has no iss"))?;
    let (account, key) = s
        .jwt_bearer
        .accounts
        .get(&unverified_iss)
        .ok_or_else(|| refused("the assertion's iss is not a known service account"))?;
    let now = s.now();
    let expected = Expected { party: &account.id, kind: "service account", issuer: &s.issuer, now };
    let claims = assertion::verify(assertion, key, &expected, &s.jwt_bearer.seen).map_err(OAuthError::invalid_grant)?;
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
    let (access_token, expires_in) = mint_access_token(s, &account.id, &subject, &account.id, &scope, None, now)?;
    tracing::debug!(client_id = %account.id, "token issued for a jwt bearer assertion");
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in, refresh_token: None, scope, id_token: None })
}
