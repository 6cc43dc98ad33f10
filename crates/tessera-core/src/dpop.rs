//! DPoP (RFC 9449): proofs of possession of a key the client holds, so that a stolen access token
//! (or refresh token) is useless without that key.
//!
//! What this module owns: the provider's DPoP settings ([`DpopSettings`]: `dpop`, `dpop_key`,
//! `dpop_alg`), a ready signer ([`DpopProver`]) and the proof JWT it makes (RFC 9449 §4.2: header
//! `typ` = `dpop+jwt`, `alg`, the public `jwk`; claims `jti`, `htm`, `htu`, `iat`, and `nonce` /
//! `ath` when they apply), and the helpers a runtime needs around it (`htu` normalisation, `ath`,
//! reading a `use_dpop_nonce` challenge).
//!
//! What it must never do: read a clock or draw randomness (the time and the `jti` bits are
//! parameters; a generated key comes from bytes the driver gives), or let key material reach a
//! `Debug`, an error or a log. A proof is a credential too (replayable at the same URL for as long
//! as the server accepts its `iat`): it travels as a [`Secret`].

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use sha2::Digest as _;

use crate::client_auth::{ec_p256_from_scalar, parse_private_key};
use crate::jws::{KeyFamily, SigningKey};
use crate::{Error, HttpResponse, Secret, Timestamp};

/// The `alg` values accepted in `dpop_alg` (those tessera signs with the key kinds it reads).
/// A generated key is `ES256` (the default) or `EdDSA`; the RSA ones need a `dpop_key`.
pub const DPOP_ALGS: &[&str] = &["ES256", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_PROOF_TYPE: &str = "dpop+jwt";

/// The OAuth error code a server answers with when it wants a (newer) nonce (RFC 9449 §8, §9).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// A provider's DPoP settings (`dpop = true`, with optional `dpop_key` and `dpop_alg`).
///
/// Without `key`, the engine makes one key per provider from the driver's entropy
/// ([`crate::EngineSettings::entropy`]) and keeps it with the tokens it binds
/// ([`crate::TokenSet::dpop_key`]): every process that shares the store then proves with the
/// same key. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct DpopSettings {
    /// `dpop_key`: the private key's text (a PKCS#8 / PKCS#1 PEM, or a JWK with `d`), when the
    /// user supplies one; it is then never copied into the store.
    pub key: Option<Secret>,
    /// `dpop_alg`: by default from the key (EC P-256 → `ES256`, Ed25519 → `EdDSA`, RSA → `RS256`),
    /// and `ES256` for a generated key.
    pub alg: Option<String>,
}

impl std::fmt::Debug for DpopSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopSettings")
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("alg", &self.alg)
            .finish()
    }
}

impl DpopSettings {
    /// DPoP with a generated key (`ES256`).
    pub fn generated() -> Self {
        DpopSettings::default()
    }

    /// DPoP with the user's key (PEM or JWK text).
    pub fn with_key(key: impl Into<Secret>) -> Self {
        DpopSettings { key: Some(key.into()), alg: None }
    }

    /// True when the engine makes (and the store keeps) the key.
    pub fn generates_key(&self) -> bool {
        self.key.is_none()
    }

    /// Checks the settings the way a request would use them: the key is readable, private and
    /// matches `dpop_alg`, or `dpop_alg` can be generated. The error names the field, never the key.
    pub fn check(&self) -> Result<(), Error> {
        match &self.key {
            Some(key) => DpopProver::from_key(key.expose_secret(), self.alg.as_deref()).map(|_| ()),
            None => generated_family(self.alg.as_deref()).map(|_| ()),
        }
    }
}

/// Which key a generated `dpop_alg` makes.
fn generated_family(alg: Option<&str>) -> Result<KeyFamily, Error> {
    match alg {
        None | Some("ES256") => Ok(KeyFamily::EcP256),
        Some("EdDSA") => Ok(KeyFamily::Ed25519),
        Some(other) if DPOP_ALGS.contains(&other) => Err(Error::configuration(format!(
            "dpop_alg: {other} needs a dpop_key (tessera generates ES256 and EdDSA keys only)"
        ))),
        Some(_) => Err(Error::configuration(format!("dpop_alg: is not one of {}", DPOP_ALGS.join(", ")))),
    }
}

/// A ready DPoP signer: the private key, its algorithm and the public JWK that goes in every
/// proof's header. Build one per key and keep it (parsing derives the public key); each
/// [`DpopProver::proof`] is then one signature. `Debug` shows the algorithm and thumbprint only.
pub struct DpopProver {
    key: SigningKey,
    alg: Algorithm,
    jwk: Jwk,
    /// The RFC 7638 thumbprint of `jwk` (what a bound token's `cnf.jkt` holds).
    jkt: String,
}

impl std::fmt::Debug for DpopProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopProver").field("alg", &self.alg).field("jkt", &self.jkt).finish_non_exhaustive()
    }
}

/// What one proof says about its request (RFC 9449 §4.2).
#[derive(Clone, Copy, Debug)]
pub struct ProofInputs<'a> {
    /// `htm`: the request's method (`POST`, `GET`, ...).
    pub method: &'a str,
    /// The request's URL; `htu` is this without query and fragment ([`htu`]).
    pub url: &'a str,
    /// `iat`.
    pub now: Timestamp,
    /// 128 random bits for `jti` (a server refuses a proof it has seen).
    pub jti: [u8; 16],
    /// `nonce`: the last one this server gave, if any.
    pub nonce: Option<&'a str>,
    /// The access token sent with the request (resource requests): `ath` is its SHA-256.
    pub access_token: Option<&'a str>,
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: &'a str,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

impl DpopProver {
    /// A signer for the user's key (`dpop_key`: PEM or JWK text) and `dpop_alg`. Errors name the
    /// field and the problem, never the key.
    pub fn from_key(text: &str, alg: Option<&str>) -> Result<Self, Error> {
        let rename = |(field, problem): (&'static str, String)| {
            let field = if field == "client_assertion_key" { "dpop_key" } else { "dpop_alg" };
            Error::configuration(format!("{field}: {problem}"))
        };
        let parsed = parse_private_key(text).map_err(rename)?;
        let alg = match alg {
            None => parsed.family.default_alg(),
            Some(name) => {
                let alg = parse_dpop_alg(name)?;
                if !parsed.family.signs(alg) {
                    return Err(Error::configuration(format!(
                        "dpop_alg: does not match the key ({} keys sign {})",
                        parsed.family.name(),
                        parsed.family.algs()
                    )));
                }
                alg
            }
        };
        Self::from_signing_key(parsed.key, alg)
    }

    /// A new key of `alg` (`ES256` when `None`, or `EdDSA`) from 32 random bytes of the driver,
    /// with its text as a private JWK (what the store keeps). `Ok(None)` in the 2⁻³² case where
    /// the bytes are not a valid P-256 scalar: draw again.
    pub fn generate(alg: Option<&str>, random: &[u8; 32]) -> Result<Option<(Secret, Self)>, Error> {
        let family = generated_family(alg)?;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let (key, alg) = match family {
            KeyFamily::EcP256 => match ec_p256_from_scalar(random) {
                Some(key) => (key, Algorithm::ES256),
                None => return Ok(None),
            },
            _ => match SigningKey::ed25519_seed(random) {
                Ok(key) => (key, Algorithm::EdDSA),
                Err(_) => return Ok(None),
            },
        };
        let Ok(prover) = Self::from_signing_key(key, alg) else { return Ok(None) };
        let d = zeroize::Zeroizing::new(b64(random));
        let public = serde_json::to_value(&prover.jwk).map_err(|_| Error::internal("a JWK that does not serialize"))?;
        let text = match family {
            KeyFamily::EcP256 => {
                format!(r#"{{"kty":"EC","crv":"P-256","x":{},"y":{},"d":"{}"}}"#, public["x"], public["y"], d.as_str())
            }
            _ => format!(r#"{{"kty":"OKP","crv":"Ed25519","x":{},"d":"{}"}}"#, public["x"], d.as_str()),
        };
        Ok(Some((Secret::new(text), prover)))
    }

    fn from_signing_key(key: SigningKey, alg: Algorithm) -> Result<Self, Error> {
        let unusable = || Error::configuration(format!("dpop_key: cannot sign {alg:?} with this key"));
        // Only the public members (RFC 9449 §4.2: "MUST NOT contain a private key"); `alg` is
        // already in the proof's header.
        let jwk = key.public_jwk().ok_or_else(unusable)?;
        let jkt = thumbprint(&jwk).ok_or_else(unusable)?;
        let prover = DpopProver { key, alg, jwk, jkt };
        // One signature now: a key that parses but cannot sign is a configuration error here,
        // not a failed request later.
        let probe = ProofInputs {
            method: "POST",
            url: "https://check",
            now: Timestamp::EPOCH,
            jti: [0; 16],
            nonce: None,
            access_token: None,
        };
        prover.proof(&probe).map_err(|_| unusable())?;
        Ok(prover)
    }

    /// The signing algorithm.
    pub fn alg(&self) -> &'static str {
        match self.alg {
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            _ => "unknown",
        }
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key: what a token bound to it carries in
    /// `cnf.jkt`, and what `dpop_jkt` names in an authorization request. Not a secret.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The public key as a JWK (not a secret).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// One proof for one request: one signature. The error never holds key material.
    pub fn proof(&self, inputs: &ProofInputs<'_>) -> Result<Secret, Error> {
        let mut header = Header::new(self.alg);
        header.typ = Some(DPOP_PROOF_TYPE.to_owned());
        header.jwk = Some(self.jwk.clone());
        let claims = ProofClaims {
            jti: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(inputs.jti),
            htm: inputs.method,
            htu: htu(inputs.url),
            iat: inputs.now.as_unix_secs(),
            nonce: inputs.nonce,
            ath: inputs.access_token.map(ath),
        };
        let failed = || Error::configuration("dpop_key: a DPoP proof could not be signed");
        crate::jws::encode(&header, &claims, &self.key).map(Secret::new).map_err(|_| failed())
    }
}

fn parse_dpop_alg(name: &str) -> Result<Algorithm, Error> {
    let unknown = || Error::configuration(format!("dpop_alg: is not one of {}", DPOP_ALGS.join(", ")));
    if !DPOP_ALGS.contains(&name) {
        return Err(unknown());
    }
    name.parse::<Algorithm>().map_err(|_| unknown())
}

/// RFC 7638 over the required public members, in lexicographic order.
fn thumbprint(jwk: &Jwk) -> Option<String> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    let canonical = match &jwk.algorithm {
        P::EllipticCurve(ec) => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, ec.x, ec.y),
        P::OctetKeyPair(okp) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, okp.x),
        P::RSA(rsa) => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, rsa.e, rsa.n),
        _ => return None,
    };
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes())))
}

/// `htu`: the URL without its query and fragment (RFC 9449 §4.2).
pub fn htu(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

/// `ath`: the base64url SHA-256 of the access token (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(access_token.as_bytes()))
}

/// The `jti` bits of a DPoP proof sent beside a client assertion made from the same step's
/// `bits`: a different value (a server may keep both kinds of `jti` in one replay cache).
pub(crate) fn proof_jti(bits: &[u8; 16]) -> [u8; 16] {
    let digest = sha2::Sha256::new().chain_update(b"tessera dpop jti").chain_update(bits).finalize();
    let mut jti = [0u8; 16];
    jti.copy_from_slice(&digest[..16]);
    jti
}

/// The server's new nonce, from its `DPoP-Nonce` header (sent with any response; RFC 9449 §8).
/// A value that is not a nonce (empty, or outside the `NQCHAR` set) is ignored.
pub fn response_nonce(response: &HttpResponse) -> Option<&str> {
    response.header("dpop-nonce").map(str::trim).filter(|nonce| is_nonce(nonce))
}

/// True for a `DPoP-Nonce` value RFC 9449 §8.1 allows (`1*NQCHAR`), and no longer than 512 bytes.
pub fn is_nonce(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 512
        && value.bytes().all(|b| b == b'!' || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// True when a resource server's answer asks for a nonce: a 401 whose `WWW-Authenticate` says
/// `error="use_dpop_nonce"` (RFC 9449 §9). The nonce itself is in [`response_nonce`].
pub fn is_resource_nonce_challenge(status: u16, www_authenticate: Option<&str>) -> bool {
    status == 401
        && www_authenticate.is_some_and(|value| {
            // A `DPoP` or a `Bearer` challenge (the schemes the parser reads): RFC 9449 §9 says
            // `DPoP`, and a server that says `Bearer` means the same.
            crate::protocol::challenge::token_challenges([value]).iter().any(|c| c.has_error(USE_DPOP_NONCE))
        })
}

/// What a token request built in one step needs for its DPoP proof.
#[derive(Clone, Copy, Debug)]
pub struct DpopInputs<'a> {
    /// The prover of the key in use, or why there is none (an unreadable `dpop_key`, no entropy
    /// for a generated one): a token request then fails with that error.
    pub prover: Result<&'a DpopProver, &'a Error>,
    /// The token endpoint's last nonce.
    pub nonce: Option<&'a str>,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // jsonwebtoken with its own provider checks ring independently (clippy.toml)
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn decode_header_and_claims(proof: &str) -> (serde_json::Value, serde_json::Value) {
        let part = |i: usize| {
            let bytes =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(proof.split('.').nth(i).unwrap()).unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        (part(0), part(1))
    }

    #[test]
    fn a_generated_key_proves_with_its_public_jwk_and_verifies() {
        let (text, prover) = DpopProver::generate(None, &[7; 32]).unwrap().unwrap();
        assert_eq!(prover.alg(), "ES256");
        let inputs = ProofInputs {
            method: "GET",
            url: "https://api.example/v1/items?page=2#top",
            now: Timestamp::from_unix_secs(1_700_000_000),
            jti: [1; 16],
            nonce: Some("n-1"),
            access_token: Some("at"),
        };
        let proof = prover.proof(&inputs).unwrap();
        let (header, claims) = decode_header_and_claims(proof.expose_secret());
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(header["jwk"].get("d").is_none(), "public key only");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example/v1/items");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], ath("at"));
        assert_eq!(ath("at").len(), 43);
        // The signature verifies with the public key in the header.
        let jwk: Jwk = serde_json::from_value(header["jwk"].clone()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(
            proof.expose_secret(),
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        // The stored text reads back as the same key.
        let again = DpopProver::from_key(text.expose_secret(), None).unwrap();
        assert_eq!(again.jkt(), prover.jkt());
        assert!(!format!("{prover:?}").contains(&text.expose_secret()[10..]));
    }

    #[test]
    fn ed25519_generation_and_settings_errors_name_the_field_not_the_key() {
        let (_, prover) = DpopProver::generate(Some("EdDSA"), &[9; 32]).unwrap().unwrap();
        assert_eq!(prover.alg(), "EdDSA");
        let error = DpopProver::generate(Some("RS256"), &[9; 32]).unwrap_err().to_string();
        assert!(error.contains("dpop_alg") && error.contains("dpop_key"), "{error}");
        let error = DpopProver::from_key("not a key s3cr3t", None).unwrap_err().to_string();
        assert!(error.contains("dpop_key") && !error.contains("s3cr3t"), "{error}");
        let (text, _) = DpopProver::generate(None, &[3; 32]).unwrap().unwrap();
        let error = DpopProver::from_key(text.expose_secret(), Some("RS256")).unwrap_err().to_string();
        assert!(error.contains("dpop_alg") && error.contains("does not match"), "{error}");
        let settings = DpopSettings::with_key(text.clone());
        assert!(!format!("{settings:?}").contains(&text.expose_secret()[20..]));
        settings.check().unwrap();
        assert!(DpopSettings { key: None, alg: Some("HS256".into()) }.check().is_err());
    }

    #[test]
    fn nonces_and_challenges() {
        assert!(is_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        assert!(!is_nonce("") && !is_nonce("a b") && !is_nonce("a\"b"));
        assert!(is_resource_nonce_challenge(401, Some(r#"DPoP error="use_dpop_nonce", error_description="x""#)));
        assert!(!is_resource_nonce_challenge(401, Some(r#"DPoP error="invalid_token""#)));
        assert!(is_resource_nonce_challenge(401, Some(r#"Basic realm="x", DPoP error=use_dpop_nonce"#)));
        // Only the error parameter counts, not the words of a description.
        assert!(!is_resource_nonce_challenge(
            401,
            Some(r#"DPoP error="invalid_token", error_description="no use_dpop_nonce""#)
        ));
        assert_ne!(proof_jti(&[1; 16]), [1; 16]);
        assert_eq!(htu("https://a/b?c#d"), "https://a/b");
    }
}
