//! Verification of signed JWT assertions (RFC 7523), shared by the JWT bearer grant (§2.1,
//! [`crate::jwt_bearer`]: a service account's assertion is the grant) and client authentication
//! with `private_key_jwt` (§2.2, OpenID Connect Core §9: a client's assertion replaces its
//! secret at `/token`, `/revoke`, `/introspect` and `/device_authorization`).
//!
//! [`verify`] checks, in this order: the header's `kid`, when both sides have one, is the
//! registered one; the header's `alg` suits the key and the signature verifies; `iss` is the
//! expected party; `aud` (string or list) holds the token endpoint or the issuer; `exp` is
//! present, not past and at most one hour ahead; `iat` and `nbf` are not in the future (30 s
//! leeway on each time, against the server's offset-able clock); `jti` is present and not seen
//! before from that party (remembered until `exp`). Error texts name the claim, never the
//! assertion.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// How far ahead of now an assertion's `exp` may be (Google's limit).
pub(crate) const MAX_ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Leeway for `iat`, `nbf` and `exp` against the server's clock.
const LEEWAY_SECS: u64 = 30;

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    EcP256,
    Ed25519,
    /// The client's secret (`client_secret_jwt`).
    Hmac,
}

impl KeyFamily {
    fn signs(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        match self {
            KeyFamily::Rsa => matches!(alg, A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512),
            KeyFamily::EcP256 => alg == A::ES256,
            KeyFamily::Ed25519 => alg == A::EdDSA,
            KeyFamily::Hmac => matches!(alg, A::HS256 | A::HS384 | A::HS512),
        }
    }
}

/// A registered public key that assertions are verified with, and its `kid`.
pub(crate) struct AssertionKey {
    key: DecodingKey,
    family: KeyFamily,
    kid: Option<String>,
}

impl AssertionKey {
    /// A client's secret, as the key of `client_secret_jwt` assertions (HMAC: HS256/384/512).
    pub(crate) fn shared_secret(secret: &str) -> Self {
        AssertionKey { key: DecodingKey::from_secret(secret.as_bytes()), family: KeyFamily::Hmac, kid: None }
    }

    /// Reads an SPKI PEM (`-----BEGIN PUBLIC KEY-----`) or a public JWK (RSA, EC P-256, OKP
    /// Ed25519): `None` when it is neither. `kid` is the registered one; for a JWK without it,
    /// the JWK's own `kid` is used.
    pub(crate) fn parse(text: &str, kid: Option<&str>) -> Option<Self> {
        let kid = kid.map(str::to_owned);
        if text.trim_start().starts_with('{') {
            let jwk: Jwk = serde_json::from_str(text).ok()?;
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => KeyFamily::EcP256,
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => KeyFamily::Ed25519,
                _ => return None,
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            let kid = kid.or_else(|| jwk.common.key_id.clone());
            return Some(AssertionKey { key, family, kid });
        }
        let pem = text.as_bytes();
        let (key, family) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (key, KeyFamily::Rsa)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            (key, KeyFamily::EcP256)
        } else {
            (DecodingKey::from_ed_pem(pem).ok()?, KeyFamily::Ed25519)
        };
        Some(AssertionKey { key, family, kid })
    }
}

/// The `jti`s seen, per party: a replay is refused until the assertion's `exp`.
#[derive(Default)]
pub(crate) struct JtiCache(Mutex<HashMap<(String, String), u64>>);

impl JtiCache {
    /// Records `jti` of `party`, valid until `exp`; `false` when it was already there.
    fn insert(&self, party: &str, jti: String, exp: u64, now: u64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, expires| *expires + LEEWAY_SECS > now);
        seen.insert((party.to_owned(), jti), exp).is_none()
    }
}

/// The claims an assertion may carry.
#[derive(Deserialize)]
pub(crate) struct AssertionClaims {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Option<Value>,
    pub(crate) exp: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) jti: Option<String>,
    pub(crate) scope: Option<String>,
}

/// A string claim of an assertion read *before* its signature is checked: only to pick the key.
pub(crate) fn unverified_claim(assertion: &str, name: &str) -> Option<String> {
    assertion
        .split('.')
        .nth(1)
        .and_then(|payload| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .and_then(|claims| claims.get(name).and_then(Value::as_str).map(str::to_owned))
}

/// What [`verify`] checks an assertion against.
pub(crate) struct Expected<'a> {
    /// The party's id: the assertion's `iss`, and its key in the `jti` cache.
    pub(crate) party: &'a str,
    /// What the party is, for error texts ("service account", "client").
    pub(crate) kind: &'a str,
    /// The server's issuer; `aud` may be it or `{issuer}/token`.
    pub(crate) issuer: &'a str,
    /// The server clock, Unix seconds.
    pub(crate) now: u64,
}

/// Verifies `assertion` (see the module documentation for the checks and their order) and
/// records its `jti`. The error is a description naming the failed check.
pub(crate) fn verify(
    assertion: &str,
    key: &AssertionKey,
    expected: &Expected<'_>,
    jtis: &JtiCache,
) -> Result<AssertionClaims, String> {
    let kind = expected.kind;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "the assertion is not a JWT".to_owned())?;
    if let (Some(registered), Some(kid)) = (&key.kid, &header.kid)
        && registered != kid
    {
        return Err(format!("the assertion's kid is not the {kind}'s key"));
    }
    if !key.family.signs(header.alg) {
        return Err(format!("the assertion's alg does not suit the {kind}'s key"));
    }
    let mut validation = Validation::new(header.alg);
    // Time and audience are checked below, against the server's own (offset-able) clock.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &validation)
        .map_err(|_| format!("the assertion's signature does not verify with the {kind}'s key"))?
        .claims;
    if claims.iss.as_deref() != Some(expected.party) {
        return Err(format!("the assertion's iss is not a known {kind}"));
    }
    let token_endpoint = format!("{}/token", expected.issuer);
    let audiences: Vec<&str> = match &claims.aud {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|aud| *aud == token_endpoint || *aud == expected.issuer) {
        return Err("the assertion's aud is neither the token endpoint nor the issuer".to_owned());
    }
    let now = expected.now;
    let exp = claims.exp.ok_or("the assertion has no exp")?;
    if exp + LEEWAY_SECS <= now {
        return Err("the assertion has expired (exp)".to_owned());
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS {
        return Err("the assertion's exp is more than one hour ahead".to_owned());
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) || claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err("the assertion is not valid yet (iat or nbf in the future)".to_owned());
    }
    let jti = claims.jti.clone().filter(|jti| !jti.is_empty()).ok_or("the assertion has no jti")?;
    if !jtis.insert(expected.party, jti, exp, now) {
        return Err("the assertion was already used (jti)".to_owned());
    }
    Ok(claims)
}
