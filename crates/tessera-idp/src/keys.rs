//! The signing key: generated at start, never persisted. Owns JWT signing and verification,
//! the JWKS document and the claim types of the tokens this server issues.
//!
//! Algorithm: EdDSA (Ed25519). jsonwebtoken's `rust_crypto` backend takes a PKCS#8 DER key,
//! and for Ed25519 that is a fixed 16-byte prefix plus a 32-byte random seed, so no key
//! generation crate is needed. The `kid` is the RFC 7638 thumbprint of the public key.

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The JWS algorithm of every token this server signs.
pub(crate) const ALGORITHM: Algorithm = Algorithm::EdDSA;
/// Its name in discovery documents and JWKs.
pub(crate) const ALGORITHM_NAME: &str = "EdDSA";

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Claims of the JWT access tokens this server issues (`typ: at+jwt`, RFC 9068 names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the server's [`issuer`](crate::IdpServer::issuer).
    pub iss: String,
    /// Subject: the username, or the client id for client_credentials tokens.
    pub sub: String,
    /// Audience: the RFC 8707 `resource` of the token request, else the client id the token was
    /// issued to.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// Unique token id (used for revocation).
    pub jti: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
}

/// Claims of OIDC ID tokens (issued by every user grant when the scope includes `openid`, and
/// always by the Cognito endpoint).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) email: String,
    pub(crate) email_verified: bool,
    pub(crate) preferred_username: String,
    /// The `nonce` of the authorization request (OIDC Core §3.1.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<String>,
    /// When the user authenticated, Unix seconds (absent on refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<u64>,
}

/// The server's key pair and its published form.
pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwks: JwkSet,
}

impl Keys {
    /// A fresh random Ed25519 key.
    pub(crate) fn generate() -> Result<Self, String> {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&ED25519_PKCS8_PREFIX);
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        der.extend_from_slice(&seed);
        seed.fill(0);
        let encoding = EncodingKey::from_ed_der(&der);
        der.fill(0);

        let mut jwk =
            Jwk::from_encoding_key(&encoding, ALGORITHM).map_err(|e| format!("deriving the public key: {e}"))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| format!("computing the key thumbprint: {e}"))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("building the verifier: {e}"))?;
        Ok(Self { encoding, decoding, kid, jwks: JwkSet { keys: vec![jwk] } })
    }

    /// The JWKS document served at `/jwks`.
    pub(crate) fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs `claims` with header `typ`.
    pub(crate) fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, String> {
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// The claims of a token of type `typ` this server signed for `issuer`, if the signature
    /// holds (expiry is the caller's check, against the server's clock).
    pub(crate) fn verify_typed<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
    ) -> Option<T> {
        if jsonwebtoken::decode_header(token).ok()?.typ.as_deref() != Some(typ) {
            return None;
        }
        Some(jsonwebtoken::decode::<T>(token, &self.decoding, &validation(issuer)).ok()?.claims)
    }

    /// The claims of an access token this server signed for `issuer`, if the signature holds
    /// and (when `check_expiry`) it has not expired at `now`. Revocation is the store's job.
    pub(crate) fn verify_access(
        &self,
        token: &str,
        issuer: &str,
        now: u64,
        check_expiry: bool,
    ) -> Option<AccessTokenClaims> {
        let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &self.decoding, &validation(issuer)).ok()?.claims;
        // jsonwebtoken accepts `exp == now`; a token whose lifetime is over is not valid.
        if check_expiry && claims.exp <= now {
            return None;
        }
        Some(claims)
    }
}

/// How this server checks a token it signed: its algorithm, `iss`, and `exp`/`iss`/`sub` present.
/// Expiry is the caller's check against `now` (the server's clock, which tests may offset), not
/// jsonwebtoken's against the system clock.
fn validation(issuer: &str) -> Validation {
    let mut validation = Validation::new(ALGORITHM);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "http://issuer".into(),
            sub: "alice".into(),
            aud: "c".into(),
            exp,
            iat: 1,
            jti: "j".into(),
            scope: "openid".into(),
            client_id: "c".into(),
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let keys = Keys::generate().unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys.sign("at+jwt", &claims(now + 60)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), keys.jwks().keys[0].common.key_id.as_deref());

        assert_eq!(keys.verify_access(&token, "http://issuer", now, true), Some(claims(now + 60)));
        assert_eq!(keys.verify_access(&token, "http://other", now, true), None);
        assert_eq!(keys.verify_access(&token, "http://issuer", now + 60, true), None);
        assert!(keys.verify_access(&token, "http://issuer", now + 60, false).is_some());

        let other = Keys::generate().unwrap();
        assert_eq!(other.verify_access(&token, "http://issuer", now, true), None);
    }
}
