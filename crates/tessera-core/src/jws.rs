//! JSON Web Signatures (RFC 7515, compact serialization) made and checked with ring: client
//! assertions (RFC 7523), JWT bearer grant assertions and DPoP proofs (RFC 9449) are signed here,
//! ID tokens verified here.
//!
//! Why ring: rustls already brings it for TLS, so this is the process's one cryptographic stack.
//! jsonwebtoken stays for its types ([`Header`], [`Algorithm`], [`Jwk`]); none of its functions
//! that call a crypto provider (`encode`, `decode`, `Jwk::from_encoding_key`, ...) is used outside
//! tests (`clippy.toml` forbids them): the wheel and the CLI are built without a provider, where
//! they would panic.
//!
//! What this module must never do: let key material reach a `Debug`, an error or a log. ring's
//! ECDSA and RSA-PSS signers draw their per-signature randomness from the OS generator (ring takes
//! no other source); the core's own randomness (a `jti`, a generated key) still comes from the
//! driver. ring does not zero a key pair's memory when it is dropped; the key's text stays in a
//! [`crate::Secret`], which does.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
    OctetKeyPairParameters, OctetKeyPairType, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, Header};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde::Serialize;

/// The kinds of private key tessera reads from a key's text, and the algorithms each signs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    EcP256,
    Ed25519,
}

impl KeyFamily {
    pub(crate) fn default_alg(self) -> Algorithm {
        match self {
            KeyFamily::Rsa => Algorithm::RS256,
            KeyFamily::EcP256 => Algorithm::ES256,
            KeyFamily::Ed25519 => Algorithm::EdDSA,
        }
    }

    pub(crate) fn signs(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        match self {
            KeyFamily::Rsa => matches!(alg, A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512),
            KeyFamily::EcP256 => alg == A::ES256,
            KeyFamily::Ed25519 => alg == A::EdDSA,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyFamily::Rsa => "RSA",
            KeyFamily::EcP256 => "EC P-256",
            KeyFamily::Ed25519 => "Ed25519",
        }
    }

    pub(crate) fn algs(self) -> &'static str {
        match self {
            KeyFamily::Rsa => "RS256, RS384, RS512, PS256, PS384, PS512",
            KeyFamily::EcP256 => "ES256",
            KeyFamily::Ed25519 => "EdDSA",
        }
    }
}

/// A private key tessera signs with. Not `Debug`: nothing of a key is ever printed.
pub(crate) enum SigningKey {
    /// An RSA key of 2048 to 4096 bits (RS256/384/512, PS256/384/512).
    Rsa(RsaKeyPair),
    /// An EC P-256 key (ES256).
    EcP256(EcdsaKeyPair),
    /// An Ed25519 key (EdDSA).
    Ed25519(Ed25519KeyPair),
    /// A shared secret (HS256, `client_secret_jwt`).
    Hmac(ring::hmac::Key),
}

/// Why a signature could not be made (no detail: the cause may be in the key).
#[derive(Debug)]
pub(crate) struct SignError;

impl SigningKey {
    /// An RSA key from its PKCS#1 `RSAPrivateKey` DER.
    pub(crate) fn rsa_pkcs1(der: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        RsaKeyPair::from_der(der).map(SigningKey::Rsa)
    }

    /// An RSA key from its JWK members (RFC 7518 §6.3.2: `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`).
    pub(crate) fn rsa_components(
        components: &ring::rsa::KeyPairComponents<&[u8]>,
    ) -> Result<Self, ring::error::KeyRejected> {
        RsaKeyPair::from_components(components).map(SigningKey::Rsa)
    }

    /// An EC P-256 key from its private scalar `d` (32 bytes, big-endian) and public point
    /// (`0x04 || x || y`); ring checks that they belong together.
    pub(crate) fn ec_p256(d: &[u8], public_point: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            d,
            public_point,
            &SystemRandom::new(),
        )
        .map(SigningKey::EcP256)
    }

    /// An Ed25519 key from its 32-byte seed (RFC 8032 §5.1.5: the public key follows from it).
    pub(crate) fn ed25519_seed(seed: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        Ed25519KeyPair::from_seed_unchecked(seed).map(SigningKey::Ed25519)
    }

    /// A key from a PKCS#8 `PrivateKeyInfo` DER: RSA, EC P-256 (with its public key, as OpenSSL
    /// writes it) or Ed25519 (v1 or v2). The error is the RSA reader's when no reader took it.
    pub(crate) fn pkcs8(der: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        let rsa_rejected = match RsaKeyPair::from_pkcs8(der) {
            Ok(key) => return Ok(SigningKey::Rsa(key)),
            Err(rejected) => rejected,
        };
        let rng = SystemRandom::new();
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            return Ok(SigningKey::EcP256(key));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(SigningKey::Ed25519).map_err(|_| rsa_rejected)
    }

    /// An HMAC key (HS256) from a shared secret.
    pub(crate) fn hmac(secret: &[u8]) -> Self {
        SigningKey::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// The key's family; `None` for a shared secret.
    pub(crate) fn family(&self) -> Option<KeyFamily> {
        match self {
            SigningKey::Rsa(_) => Some(KeyFamily::Rsa),
            SigningKey::EcP256(_) => Some(KeyFamily::EcP256),
            SigningKey::Ed25519(_) => Some(KeyFamily::Ed25519),
            SigningKey::Hmac(_) => None,
        }
    }

    /// True when this key can sign `alg`.
    pub(crate) fn signs(&self, alg: Algorithm) -> bool {
        match self.family() {
            Some(family) => family.signs(alg),
            None => alg == Algorithm::HS256,
        }
    }

    /// The signature of `message` with `alg` (which this key must sign).
    pub(crate) fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, SignError> {
        if !self.signs(alg) {
            return Err(SignError);
        }
        let rng = SystemRandom::new();
        match self {
            SigningKey::Rsa(key) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, message, &mut signature).map_err(|_| SignError)?;
                Ok(signature)
            }
            SigningKey::EcP256(key) => key.sign(&rng, message).map(|s| s.as_ref().to_vec()).map_err(|_| SignError),
            SigningKey::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
            SigningKey::Hmac(key) => Ok(ring::hmac::sign(key, message).as_ref().to_vec()),
        }
    }

    /// The public key as a JWK with no other member (`None` for an HMAC secret).
    pub(crate) fn public_jwk(&self) -> Option<Jwk> {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let algorithm = match self {
            SigningKey::Rsa(key) => {
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
                AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: b64(&public.n),
                    e: b64(&public.e),
                })
            }
            SigningKey::EcP256(key) => {
                // The uncompressed point: 0x04 || x || y, 32 bytes each.
                let point = key.public_key().as_ref();
                let (x, y) = point.get(1..)?.split_at(32);
                AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: b64(x),
                    y: b64(y),
                })
            }
            SigningKey::Ed25519(key) => AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: b64(key.public_key().as_ref()),
            }),
            SigningKey::Hmac(_) => return None,
        };
        Some(Jwk { common: CommonParameters::default(), algorithm })
    }
}

/// A big-endian unsigned integer without its leading zero bytes: how ring reads RSA key members,
/// where JWKs may pad them (a sign byte, or a fixed length as .NET and Key Vault write `d`).
pub(crate) fn minimal_integer(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A JWS in compact form: base64url(header) "." base64url(claims) "." base64url(signature),
/// `header.alg` naming the algorithm.
pub(crate) fn encode<T: Serialize>(header: &Header, claims: &T, key: &SigningKey) -> Result<String, SignError> {
    let header_json = serde_json::to_vec(header).map_err(|_| SignError)?;
    let claims_json = serde_json::to_vec(claims).map_err(|_| SignError)?;
    let mut jws = String::with_capacity((header_json.len() + claims_json.len()) * 4 / 3 + 400);
    URL_SAFE_NO_PAD.encode_string(&header_json, &mut jws);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&claims_json, &mut jws);
    let signature = key.sign(header.alg, jws.as_bytes())?;
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
    Ok(jws)
}

/// Checks the signature of `token` (a compact JWS) with the public `jwk` for `alg`, and returns
/// its payload's bytes. The error says what failed, never what the token or key hold.
pub(crate) fn verify(token: &str, alg: Algorithm, jwk: &Jwk) -> Result<Vec<u8>, String> {
    let malformed = || "not a valid signed JWT (three base64url parts)".to_owned();
    let (signing_input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let (_, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
    let member = |value: &str, name: &str| {
        URL_SAFE_NO_PAD.decode(value).map_err(|_| format!("the issuer's key is unusable (`{name}` is not base64url)"))
    };
    let wrong_key = || format!("the issuer's key is not a {alg:?} key");
    let checked = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let params: &signature::RsaParameters = match alg {
                Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(wrong_key()),
            };
            let (n, e) = (member(&rsa.n, "n")?, member(&rsa.e, "e")?);
            let (n, e) = (minimal_integer(&n), minimal_integer(&e));
            let bits = n.len() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(format!("the issuer's key is an RSA key of about {bits} bits (2048 to 8192 are accepted)"));
            }
            let public = signature::RsaPublicKeyComponents { n, e };
            public.verify(params, signing_input.as_bytes(), &signature)
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let params: &dyn signature::VerificationAlgorithm = match (alg, &ec.curve) {
                (Algorithm::ES256, EllipticCurve::P256) => &signature::ECDSA_P256_SHA256_FIXED,
                (Algorithm::ES384, EllipticCurve::P384) => &signature::ECDSA_P384_SHA384_FIXED,
                _ => return Err(wrong_key()),
            };
            let mut point = vec![0x04];
            point.extend(member(&ec.x, "x")?);
            point.extend(member(&ec.y, "y")?);
            signature::UnparsedPublicKey::new(params, point).verify(signing_input.as_bytes(), &signature)
        }
        AlgorithmParameters::OctetKeyPair(okp) if alg == Algorithm::EdDSA && okp.curve == EllipticCurve::Ed25519 => {
            signature::UnparsedPublicKey::new(&signature::ED25519, member(&okp.x, "x")?)
                .verify(signing_input.as_bytes(), &signature)
        }
        _ => return Err(wrong_key()),
    };
    checked.map_err(|_| "bad signature".to_owned())?;
    Ok(payload)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // jsonwebtoken with its own provider checks ring independently (clippy.toml)
mod tests {
    //! Every signature made here is checked by jsonwebtoken's own `rust_crypto` provider (an
    //! independent implementation, enabled for the tests only), and every signature it makes is
    //! checked here.
    use super::*;
    use crate::client_auth::parse_private_key;
    use jsonwebtoken::{DecodingKey, EncodingKey, Validation};

    fn fixture(file: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/client-assertion/");
        std::fs::read_to_string(format!("{dir}{file}")).unwrap()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "tessera", "aud": "https://idp.example/token", "n": 1})
    }

    /// jsonwebtoken's verification of `token` with `jwk` (no time or audience checks).
    fn independent_verify(token: &str, alg: Algorithm, key: &DecodingKey) -> bool {
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).is_ok()
    }

    fn tampered(token: &str) -> String {
        let (rest, signature) = token.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[0] ^= 1;
        format!("{rest}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn every_algorithm_signs_what_jsonwebtoken_verifies_and_verifies_what_it_signs() {
        use Algorithm as A;
        let cases: [(&str, &[Algorithm]); 7] = [
            ("rsa.pem", &[A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512]),
            ("rsa-pkcs1.pem", &[A::RS256, A::PS256]),
            ("rsa.jwk.json", &[A::RS512]),
            ("ec.pem", &[A::ES256]),
            ("ec.jwk.json", &[A::ES256]),
            ("ed25519.pem", &[A::EdDSA]),
            ("ed25519.jwk.json", &[A::EdDSA]),
        ];
        for (file, algs) in cases {
            let text = fixture(file);
            let key = parse_private_key(&text).unwrap_or_else(|e| panic!("{file}: {e:?}")).key;
            let jwk = key.public_jwk().unwrap();
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            for &alg in algs {
                let token = encode(&Header::new(alg), &claims(), &key).unwrap();
                let payload = verify(&token, alg, &jwk).unwrap_or_else(|e| panic!("{file} {alg:?}: {e}"));
                assert_eq!(serde_json::from_slice::<serde_json::Value>(&payload).unwrap(), claims());
                assert!(independent_verify(&token, alg, &decoding), "{file} {alg:?}: jsonwebtoken refuses ours");
                assert_eq!(verify(&tampered(&token), alg, &jwk).unwrap_err(), "bad signature", "{file} {alg:?}");
                assert!(!independent_verify(&tampered(&token), alg, &decoding), "{file} {alg:?}");
            }
            // The other way: jsonwebtoken signs (PEM keys only: it reads no private JWK).
            if file.ends_with(".pem") {
                let encoding = match algs[0] {
                    A::ES256 => EncodingKey::from_ec_pem(text.as_bytes()),
                    A::EdDSA => EncodingKey::from_ed_pem(text.as_bytes()),
                    _ => EncodingKey::from_rsa_pem(text.as_bytes()),
                }
                .unwrap();
                for &alg in algs {
                    let token = jsonwebtoken::encode(&Header::new(alg), &claims(), &encoding).unwrap();
                    verify(&token, alg, &jwk)
                        .unwrap_or_else(|e| panic!("{file} {alg:?}: ours refuses jsonwebtoken's: {e}"));
                }
            }
        }
        // A JWK fixture's public half is what the key derives.
        for file in ["rsa.jwk.json", "ec.jwk.json", "ed25519.jwk.json"] {
            let stored: serde_json::Value = serde_json::from_str(&fixture(file)).unwrap();
            let derived = serde_json::to_value(parse_private_key(&fixture(file)).unwrap().key.public_jwk()).unwrap();
            for member in ["kty", "crv", "x", "y", "n", "e"] {
                assert_eq!(stored.get(member), derived.get(member), "{file}: {member}");
            }
        }
    }

    #[test]
    fn hs256_with_a_shared_secret_verifies_independently() {
        let secret = b"a-shared-secret-of-32-bytes-or-more!";
        let token = encode(&Header::new(Algorithm::HS256), &claims(), &SigningKey::hmac(secret)).unwrap();
        assert!(independent_verify(&token, Algorithm::HS256, &DecodingKey::from_secret(secret)));
        assert!(!independent_verify(&token, Algorithm::HS256, &DecodingKey::from_secret(b"another secret")));
        // A key signs only its own algorithms.
        assert!(encode(&Header::new(Algorithm::RS256), &claims(), &SigningKey::hmac(secret)).is_err());
    }

    #[test]
    fn verification_refuses_a_key_of_the_wrong_kind_or_size_by_name() {
        let ec = parse_private_key(&fixture("ec.pem")).unwrap().key;
        let token = encode(&Header::new(Algorithm::ES256), &claims(), &ec).unwrap();
        let ed_jwk = parse_private_key(&fixture("ed25519.pem")).unwrap().key.public_jwk().unwrap();
        assert_eq!(verify(&token, Algorithm::ES256, &ed_jwk).unwrap_err(), "the issuer's key is not a ES256 key");
        assert!(verify("a.b", Algorithm::ES256, &ec.public_jwk().unwrap()).unwrap_err().contains("three base64url"));
        // An RSA key under 2048 bits (jsonwebtoken derives its public half; ring refuses to sign with it).
        let small = EncodingKey::from_rsa_pem(fixture("rsa-1024.pem").as_bytes()).unwrap();
        let small_jwk = Jwk::from_encoding_key(&small, Algorithm::RS256).unwrap();
        let small_token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &small).unwrap();
        let error = verify(&small_token, Algorithm::RS256, &small_jwk).unwrap_err();
        assert!(error.contains("1024 bits"), "{error}");
    }

    /// A DER TLV (lengths below 128).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(content.len()).unwrap()];
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn ec_pkcs8_without_the_public_key_is_read_in_javas_form_and_named_otherwise() {
        let stored: serde_json::Value = serde_json::from_str(&fixture("ec.jwk.json")).unwrap();
        let d = URL_SAFE_NO_PAD.decode(stored["d"].as_str().unwrap()).unwrap();
        let pem_of = |der: Vec<u8>| pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        let algorithm = [tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]), tlv(0x06, PRIME256V1_OID)].concat();
        let pkcs8 = |ec_private_key: Vec<u8>| {
            tlv(0x30, &[tlv(0x02, &[0]), tlv(0x30, &algorithm), tlv(0x04, &tlv(0x30, &ec_private_key))].concat())
        };
        // Java's form: version and scalar only. The public key is derived.
        let java = pkcs8([tlv(0x02, &[1]), tlv(0x04, &d)].concat());
        let key = parse_private_key(&pem_of(java)).unwrap().key;
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!((&jwk["x"], &jwk["y"]), (&stored["x"], &stored["y"]));
        // With the curve parameters but still no public key: named, not guessed at.
        let with_parameters = pkcs8([tlv(0x02, &[1]), tlv(0x04, &d), tlv(0xa0, &tlv(0x06, PRIME256V1_OID))].concat());
        let Err((field, problem)) = parse_private_key(&pem_of(with_parameters)) else { panic!("read") };
        assert_eq!(field, "client_assertion_key");
        assert!(problem.contains("without its public key") && problem.contains("openssl pkcs8"), "{problem}");
        assert!(!problem.contains(stored["d"].as_str().unwrap()));
    }

    /// SEC1 (`-----BEGIN EC PRIVATE KEY-----`, what `openssl ecparam -genkey` and `openssl ec`
    /// write), in each form OpenSSL writes; a key on another curve, or with another key's public
    /// key, is named, and no error holds the key.
    #[test]
    fn sec1_ec_keys_are_read_in_each_form_openssl_writes() {
        let stored: serde_json::Value = serde_json::from_str(&fixture("ec.jwk.json")).unwrap();
        let decode = |name: &str| URL_SAFE_NO_PAD.decode(stored[name].as_str().unwrap()).unwrap();
        let (d, point) = (decode("d"), [vec![4], decode("x"), decode("y")].concat());
        let public_of = |text: &str| {
            let jwk = serde_json::to_value(parse_private_key(text).unwrap().key.public_jwk()).unwrap();
            (jwk["x"].clone(), jwk["y"].clone())
        };
        let expected = (stored["x"].clone(), stored["y"].clone());
        // `ec-sec1.pem`: OpenSSL's `EC PARAMETERS` block, then the key with its curve and public key.
        assert_eq!(public_of(&fixture("ec-sec1.pem")), expected);
        let key = parse_private_key(&fixture("ec-sec1.pem")).unwrap().key;
        let token = encode(&Header::new(Algorithm::ES256), &claims(), &key).unwrap();
        verify(&token, Algorithm::ES256, &parse_private_key(&fixture("ec.pem")).unwrap().key.public_jwk().unwrap())
            .unwrap();

        let sec1 = |parts: &[&Vec<u8>]| {
            let der: Vec<u8> = parts.iter().flat_map(|part| part.iter().copied()).collect();
            pem::encode(&pem::Pem::new("EC PRIVATE KEY", tlv(0x30, &der)))
        };
        let version_and_d = [tlv(0x02, &[1]), tlv(0x04, &d)].concat();
        let curve = tlv(0xa0, &tlv(0x06, PRIME256V1_OID));
        let public_key = |point: &[u8]| tlv(0xa1, &tlv(0x03, &[&[0][..], point].concat()));
        // `openssl ec -no_public`: the public key is derived; without the curve, the public key
        // (ring checks it is a P-256 point of this scalar) says it.
        for parts in [vec![&version_and_d, &curve], vec![&version_and_d, &public_key(&point)]] {
            assert_eq!(public_of(&sec1(&parts)), expected, "{} parts", parts.len());
        }
        // A writer that drops the scalar's leading zeros: the same key, left-padded.
        let d_leading_zero = {
            let mut d = d.clone();
            d[0] = 0;
            d
        };
        let from_32 = public_of(&sec1(&[&[tlv(0x02, &[1]), tlv(0x04, &d_leading_zero)].concat(), &curve]));
        let from_31 = public_of(&sec1(&[&[tlv(0x02, &[1]), tlv(0x04, &d_leading_zero[1..])].concat(), &curve]));
        assert_eq!(from_31, from_32);

        let problem = |text: &str| match parse_private_key(text) {
            Ok(_) => panic!("read"),
            Err((field, problem)) => {
                assert_eq!(field, "client_assertion_key");
                assert!(!problem.contains(stored["d"].as_str().unwrap()), "{problem}");
                problem
            }
        };
        let other = parse_private_key(&fixture("wrong-ec.pem")).unwrap().key.public_jwk().unwrap();
        let other = serde_json::to_value(other).unwrap();
        let other_point = [
            vec![4],
            URL_SAFE_NO_PAD.decode(other["x"].as_str().unwrap()).unwrap(),
            URL_SAFE_NO_PAD.decode(other["y"].as_str().unwrap()).unwrap(),
        ]
        .concat();
        let mismatched = problem(&sec1(&[&version_and_d, &curve, &public_key(&other_point)]));
        assert!(mismatched.contains("public key is not the one of its private key"), "{mismatched}");
        // P-384 (secp384r1, 1.3.132.0.34): a 48-byte scalar.
        let p384 =
            [tlv(0x02, &[1]), tlv(0x04, &[7; 48]), tlv(0xa0, &tlv(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x22]))].concat();
        assert!(problem(&sec1(&[&p384])).contains("curve other than P-256"));
        // Unreadable forms get the command that rewrites them: truncated, trailing bytes, a bare
        // scalar (no curve, no public key), a compressed public key, a point with a byte too many.
        let compressed = [&[0x02 | (point[64] & 1)][..], &point[1..33]].concat();
        for broken in [
            sec1(&[&version_and_d[..20].to_vec()]),
            sec1(&[&version_and_d, &curve, &vec![0x05, 0x00]]),
            sec1(&[&version_and_d]),
            sec1(&[&version_and_d, &curve, &public_key(&compressed)]),
            sec1(&[&version_and_d, &curve, &public_key(&[&point[..], &[0]].concat())]),
        ] {
            assert!(problem(&broken).contains("-conv_form uncompressed"), "{broken}");
        }
        // A scalar of zero (or not below the group order) is named as such, whatever follows it.
        let zero = [tlv(0x02, &[1]), tlv(0x04, &[0; 32])].concat();
        for parts in [vec![&zero, &curve], vec![&zero, &curve, &public_key(&point)]] {
            assert!(problem(&sec1(&parts)).contains("not a valid P-256 scalar"));
        }
        // The legacy encrypted form (`openssl ec -aes256`): refused as encrypted, not as unreadable.
        let mut encrypted = pem::Pem::new("EC PRIVATE KEY", tlv(0x30, &version_and_d));
        encrypted.headers_mut().add("Proc-Type", "4,ENCRYPTED").unwrap();
        encrypted.headers_mut().add("DEK-Info", "AES-256-CBC,00112233445566778899AABBCCDDEEFF").unwrap();
        assert!(problem(&pem::encode(&encrypted)).contains("encrypted PEM"));
    }

    /// A PEM file may hold a certificate beside its key, and text around the blocks (`openssl
    /// pkcs12` writes bag attributes); two keys are refused, and no key at all is named.
    #[test]
    fn the_private_key_is_found_among_the_blocks_of_a_pem_file() {
        let expected = parse_private_key(&fixture("ec.pem")).unwrap().key.public_jwk();
        let combined = format!("{}{}", fixture("ec-cert.pem"), fixture("ec.pem"));
        assert_eq!(parse_private_key(&combined).unwrap().key.public_jwk(), expected, "certificate first");
        let bagged = format!(
            "Bag Attributes\n    localKeyID: 01 00 00 00\nKey Attributes: <No Attributes>\n{}",
            fixture("ec.pem")
        );
        assert_eq!(parse_private_key(&bagged).unwrap().key.public_jwk(), expected, "bag attributes");
        let Err((_, two)) = parse_private_key(&format!("{}{}", fixture("ec.pem"), fixture("rsa.pem"))) else {
            panic!("two keys read")
        };
        assert!(two.contains("more than one private key"), "{two}");
        for text in [
            fixture("ec-cert.pem"),
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n".into(),
        ] {
            let Err((_, none)) = parse_private_key(&text) else { panic!("a key read") };
            assert!(none.contains("is not a private key tessera can use"), "{none}");
        }
    }

    /// prime256v1's OID content bytes (1.2.840.10045.3.1.7).
    const PRIME256V1_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    #[test]
    fn rsa_keys_ring_refuses_are_named_as_rsa_problems() {
        for (file, says) in [("rsa-1024.pem", "at least 2048 bits"), ("rsa-e3.pem", "public exponent at least 65537")] {
            let Err((field, problem)) = parse_private_key(&fixture(file)) else { panic!("{file} read") };
            assert_eq!(field, "client_assertion_key");
            assert!(problem.contains("RSA key") && problem.contains(says), "{file}: {problem}");
        }
    }

    #[test]
    fn padded_rsa_integers_are_read_in_private_jwks_and_in_jwks() {
        // .NET and Key Vault pad `d` and the CRT members; some issuers publish `n` with a sign byte.
        let mut private: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&fixture("rsa.jwk.json")).unwrap();
        for name in ["d", "dp", "qi", "e"] {
            let mut bytes = URL_SAFE_NO_PAD.decode(private[name].as_str().unwrap()).unwrap();
            bytes.insert(0, 0);
            private.insert(name.into(), URL_SAFE_NO_PAD.encode(bytes).into());
        }
        let key = parse_private_key(&serde_json::to_string(&private).unwrap()).unwrap().key;
        let token = encode(&Header::new(Algorithm::RS256), &claims(), &key).unwrap();
        let mut jwk = key.public_jwk().unwrap();
        let AlgorithmParameters::RSA(rsa) = &mut jwk.algorithm else { panic!("an RSA key") };
        let mut n = URL_SAFE_NO_PAD.decode(&rsa.n).unwrap();
        n.insert(0, 0);
        rsa.n = URL_SAFE_NO_PAD.encode(n);
        verify(&token, Algorithm::RS256, &jwk).unwrap();
    }

    #[test]
    fn an_rsa_jwk_without_its_crt_members_is_named() {
        let mut jwk: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&fixture("rsa.jwk.json")).unwrap();
        jwk.remove("qi");
        let Err((field, problem)) = parse_private_key(&serde_json::to_string(&jwk).unwrap()) else { panic!("read") };
        assert_eq!(field, "client_assertion_key");
        assert!(problem.contains("\"qi\""), "{problem}");
    }
}
