//! Who the client is at the authorization server, and how it proves it (RFC 6749 §2.3.1; client
//! assertions: RFC 7523 §2.2 and OpenID Connect Core §9, `client_secret_jwt` / `private_key_jwt`).
//!
//! A leaf: the wire protocol ([`crate::protocol`]) builds requests with it, the provider
//! configuration ([`crate::ProviderConfig`]) holds it. Nothing here knows grants or flows. A
//! client assertion needs a time and fresh randomness: both come from the caller
//! ([`AssertionInputs`]): the core reads no clock, and the `jti` comes from the driver's entropy.
//! (The signatures themselves are ring's ([`crate::jws`]): its ECDSA nonces and RSA-PSS salts come
//! from the OS generator, the one place the core touches randomness.)

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use url::form_urlencoded;

use crate::jws::{KeyFamily, SignError, SigningKey, minimal_integer};
use crate::{Error, Secret, Timestamp};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid after its `iat`: long enough for a slow network, short
/// enough that a captured one is soon useless (servers keep its `jti` until it expires).
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// The signing algorithms accepted in `client_assertion_alg`.
/// (`client_secret_jwt` signs HS256.)
pub const ASSERTION_ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA"];

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (`client_secret_basic`, the default for confidential clients).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// Public client: only `client_id` in the body.
    None,
    /// A JWT signed with the client secret (HMAC, `HS256` by default) in `client_assertion`
    /// (`client_secret_jwt`): the secret itself never travels.
    SecretJwt,
    /// A JWT signed with the client's private key in `client_assertion` (`private_key_jwt`):
    /// the server holds only the public key.
    PrivateKeyJwt,
    /// The TLS client certificate, issued by a CA the server trusts and matched to the client by
    /// its subject (`tls_client_auth`, RFC 8705 §2.1): `client_id` in the body, no secret. The
    /// certificate is the transport's (`tls_client_certificate`, `tls_client_key`).
    TlsClientAuth,
    /// A self-signed TLS client certificate registered with the client (its JWKS, RFC 8705 §2.2,
    /// `self_signed_tls_client_auth`). On the wire the same as [`ClientAuthMethod::TlsClientAuth`].
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// The RFC 8414 / OpenID name (`client_secret_basic`, ..., `private_key_jwt`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            ClientAuthMethod::Basic => "client_secret_basic",
            ClientAuthMethod::Post => "client_secret_post",
            ClientAuthMethod::None => "none",
            ClientAuthMethod::SecretJwt => "client_secret_jwt",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Every method, by name: what `client_auth` accepts.
    pub const NAMES: &'static [&'static str] = &[
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth",
        "none",
    ];

    /// The method called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Basic,
            Self::Post,
            Self::SecretJwt,
            Self::PrivateKeyJwt,
            Self::TlsClientAuth,
            Self::SelfSignedTlsClientAuth,
            Self::None,
        ]
        .into_iter()
        .find(|method| method.name() == name)
    }

    /// True for the methods that prove the client with its TLS certificate (RFC 8705:
    /// `tls_client_auth`, `self_signed_tls_client_auth`): they send no secret, and their requests
    /// go to the server's `mtls_endpoint_aliases` when it publishes them.
    pub fn uses_certificate(self) -> bool {
        matches!(self, ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth)
    }

    /// True for the methods that need `client_secret` (`client_secret_basic`,
    /// `client_secret_post`, `client_secret_jwt`).
    pub fn uses_secret(self) -> bool {
        matches!(self, ClientAuthMethod::Basic | ClientAuthMethod::Post | ClientAuthMethod::SecretJwt)
    }

    /// True for the methods that send a signed JWT (`client_secret_jwt`, `private_key_jwt`).
    pub fn uses_assertion(self) -> bool {
        matches!(self, ClientAuthMethod::SecretJwt | ClientAuthMethod::PrivateKeyJwt)
    }
}

/// The private key of `private_key_jwt`: its text (a PKCS#8 or PKCS#1 PEM, or a JWK with `d`),
/// the signing algorithm (`client_assertion_alg`; by default from the key: RSA → `RS256`, EC
/// P-256 → `ES256`, Ed25519 → `EdDSA`) and the `kid` to put in the header
/// (`client_assertion_kid`; by default the JWK's `kid`, else none), and the key's certificate
/// (`client_assertion_certificate`: its thumbprints and chain go in the `x5t`, `x5t#S256` and `x5c`
/// headers, as msal sends them and Azure AD requires). `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAssertionKey {
    /// The key's text, as read (PEM or JWK JSON).
    pub key: Secret,
    /// `client_assertion_alg`, when set.
    pub alg: Option<String>,
    /// `client_assertion_kid`, when set.
    pub kid: Option<String>,
    /// `client_assertion_certificate`: the PEM certificate of the key (the chain may follow).
    pub certificate: Option<Secret>,
}

impl std::fmt::Debug for ClientAssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertionKey")
            .field("key", &"[redacted]")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("certificate", &self.certificate.as_ref().map(|_| "[given]"))
            .finish()
    }
}

impl ClientAssertionKey {
    /// A key from its text (PEM or JWK), with the algorithm and `kid` taken from the key.
    pub fn new(key: impl Into<Secret>) -> Self {
        ClientAssertionKey { key: key.into(), alg: None, kid: None, certificate: None }
    }

    /// Reads the key and checks it against the algorithm; the problem, never the key, on failure
    /// (`Err((field, problem))`, `field` being `client_assertion_key` or `client_assertion_alg`).
    /// What each request does; [`ClientAssertionKey::checked_signer`] is for checking a description.
    pub(crate) fn signer(&self) -> Result<Signer, (&'static str, String)> {
        let parsed = parse_private_key(self.key.expose_secret())?;
        let alg = match self.alg.as_deref() {
            None => parsed.family.default_alg(),
            Some(name) => {
                let alg = parse_alg(name)?;
                if !parsed.family.signs(alg) {
                    return Err((
                        "client_assertion_alg",
                        format!("does not match the key ({} keys sign {})", parsed.family.name(), parsed.family.algs()),
                    ));
                }
                alg
            }
        };
        let kid = self.kid.clone().or(parsed.kid);
        let certificate = self.certificate.as_ref().map(certificate_headers).transpose()?;
        Ok(Signer { key: parsed.key, alg, kid, certificate })
    }

    /// [`ClientAssertionKey::signer`], and one signature made now: a key that parses but cannot
    /// sign (a P-384 key for ES256) is a configuration error when the description is checked, not a
    /// failed request later. Requests skip this second signature.
    pub(crate) fn checked_signer(&self) -> Result<Signer, (&'static str, String)> {
        self.signer()?.checked()
    }
}

/// What a client assertion needs from outside the core: the time it is made at, fresh random
/// bytes for its `jti` (one set per request: a server refuses an assertion it has seen), and its
/// audience (the token endpoint, RFC 7523 §3).
#[derive(Clone, Copy, Debug)]
pub struct AssertionInputs<'a> {
    /// When the request is made (`iat`; `exp` is 60 s later).
    pub now: Timestamp,
    /// 128 random bits from the driver's generator ([`crate::EngineSettings::entropy`]);
    /// `None` when the driver gave none (assertion methods then fail as a configuration error).
    pub jti: Option<[u8; 16]>,
    /// `aud`: the token endpoint.
    pub audience: &'a str,
    /// The DPoP key and the token endpoint's nonce, when the provider uses DPoP: a token request
    /// then carries a `DPoP` proof (its `jti` is derived from `jti` above, so it needs entropy too).
    pub dpop: Option<crate::DpopInputs<'a>>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: i64,
    exp: i64,
}

fn claims_for_check() -> AssertionClaims<'static> {
    AssertionClaims { iss: "check", sub: "check", aud: "check", jti: "check".into(), iat: 0, exp: 0 }
}

/// A ready signing key (parsed once per use; never printed).
pub(crate) struct Signer {
    pub(crate) key: SigningKey,
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    certificate: Option<CertificateHeaders>,
}

/// `x5t` (SHA-1 thumbprint, what msal sends and Azure AD matches), `x5t#S256` and `x5c` (the chain,
/// standard base64 DER) of a client assertion, from `client_assertion_certificate`.
#[derive(Clone)]
struct CertificateHeaders {
    x5t: String,
    x5t_s256: String,
    x5c: Vec<String>,
}

/// The headers of a PEM certificate (chain); the problem, never the text, on failure.
fn certificate_headers(pem_text: &Secret) -> Result<CertificateHeaders, (&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use sha2::Digest as _;
    let field = "client_assertion_certificate";
    let blocks = pem::parse_many(pem_text.expose_secret().as_bytes())
        .map_err(|_| (field, "is not PEM (\"-----BEGIN CERTIFICATE-----\")".to_owned()))?;
    let chain: Vec<Vec<u8>> =
        blocks.into_iter().filter(|block| block.tag() == "CERTIFICATE").map(pem::Pem::into_contents).collect();
    let Some(leaf) = chain.first() else {
        return Err((field, "holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")".to_owned()));
    };
    Ok(CertificateHeaders {
        x5t: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(leaf)),
        x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(leaf)),
        x5c: chain.iter().map(|der| STANDARD.encode(der)).collect(),
    })
}

impl Signer {
    /// This signer, once it has signed a throwaway claim set (see [`ClientAssertionKey::checked_signer`]).
    fn checked(self) -> Result<Signer, (&'static str, String)> {
        let alg = self.alg;
        self.sign(&claims_for_check())
            .map_err(|_| ("client_assertion_key", format!("cannot sign {alg:?} with this key")))?;
        Ok(self)
    }

    /// A JWT of `claims` with this key (`alg` and `kid` in the header): a client assertion, or a
    /// JWT bearer grant's assertion (`flow/jwt_bearer.rs`).
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, SignError> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        if let Some(certificate) = &self.certificate {
            header.x5t = Some(certificate.x5t.clone());
            header.x5t_s256 = Some(certificate.x5t_s256.clone());
            header.x5c = Some(certificate.x5c.clone());
        }
        crate::jws::encode(&header, claims, &self.key)
    }
}

fn parse_alg(name: &str) -> Result<Algorithm, (&'static str, String)> {
    let unknown = || ("client_assertion_alg", format!("is not one of {}", ASSERTION_ALGS.join(", ")));
    if !ASSERTION_ALGS.contains(&name) {
        return Err(unknown());
    }
    name.parse::<Algorithm>().map_err(|_| unknown())
}

pub(crate) struct ParsedKey {
    pub(crate) key: SigningKey,
    pub(crate) family: KeyFamily,
    pub(crate) kid: Option<String>,
}

const NOT_A_PRIVATE_KEY: &str = "is not a private key tessera can use (a PKCS#8 PEM of an RSA, EC P-256 or Ed25519 key, an RSA PKCS#1 or EC P-256 SEC1 PEM, or a JWK with \"d\")";

/// The smallest RSA modulus tessera signs with (NIST SP 800-131A; servers such as oidc-provider
/// refuse smaller keys too, later and less clearly), and the largest ring signs with.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;

/// What is wrong with an RSA key ring refused. ring names the problem only for sizes, and uses the
/// same names for the modulus and the public exponent, so the message covers both.
fn rsa_problem(rejected: &ring::error::KeyRejected) -> (&'static str, String) {
    let field = "client_assertion_key";
    let problem = match rejected.to_string().as_str() {
        "TooSmall" => format!(
            "is an RSA key tessera cannot sign with: its modulus must be at least {MIN_RSA_BITS} bits and its public exponent at least 65537"
        ),
        "TooLarge" => format!(
            "is an RSA key tessera cannot sign with: its modulus must be at most {MAX_RSA_BITS} bits and its public exponent below 2^33"
        ),
        _ => "is an RSA key tessera cannot sign with (ring signs with two-prime keys of 2048, 3072 or 4096 bits whose public exponent is at least 65537)".to_owned(),
    };
    (field, problem)
}

impl ParsedKey {
    fn new(key: SigningKey, kid: Option<String>) -> Self {
        let Some(family) = key.family() else {
            unreachable!("an HMAC key is not read by parse_private_key: a shared secret is client_secret")
        };
        ParsedKey { key, family, kid }
    }
}

/// Reads a PEM or a JWK. Errors say what is wrong with the key, never what is in it.
///
/// A PEM file may hold other blocks beside its one private key (the certificate, OpenSSL's
/// `EC PARAMETERS`) and text around them (`openssl pkcs12`'s bag attributes).
pub(crate) fn parse_private_key(text: &str) -> Result<ParsedKey, (&'static str, String)> {
    let field = "client_assertion_key";
    let text = text.trim();
    if text.starts_with('{') {
        return parse_jwk(text);
    }
    let not_a_key = || (field, NOT_A_PRIVATE_KEY.to_owned());
    let blocks = pem::parse_many(text).map_err(|_| not_a_key())?;
    // PKCS#8's encrypted form, and the legacy one (`openssl ec -aes256`: a `Proc-Type` header).
    let encrypted = |block: &pem::Pem| {
        block.tag() == "ENCRYPTED PRIVATE KEY"
            || block.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED"))
    };
    if blocks.iter().any(encrypted) {
        return Err((field, "is an encrypted PEM: decrypt it first (openssl pkcs8 -topk8 -nocrypt)".into()));
    }
    let mut keys = blocks.into_iter().filter(|block| block.tag().ends_with("PRIVATE KEY"));
    let block = match (keys.next(), keys.next()) {
        (Some(block), None) => block,
        (None, _) => return Err(not_a_key()),
        (Some(_), Some(_)) => return Err((field, "holds more than one private key: keep the one to sign with".into())),
    };
    let tag = block.tag().to_owned();
    let der = zeroize::Zeroizing::new(block.into_contents());
    let key = match tag.as_str() {
        "PRIVATE KEY" => match SigningKey::pkcs8(&der) {
            Ok(key) => key,
            Err(rejected) if contains(&der, RSA_ENCRYPTION) => return Err(rsa_problem(&rejected)),
            Err(_) => parse_ec_pkcs8_without_public_key(&der)?,
        },
        "RSA PRIVATE KEY" => SigningKey::rsa_pkcs1(&der).map_err(|rejected| rsa_problem(&rejected))?,
        "EC PRIVATE KEY" => parse_sec1_p256(&der)?,
        _ => return Err(not_a_key()),
    };
    Ok(ParsedKey::new(key, None))
}

/// A SEC1 `ECPrivateKey` (RFC 5915, `-----BEGIN EC PRIVATE KEY-----`: what `openssl ecparam
/// -genkey` writes) of a P-256 key: version 1, the scalar (32 bytes, or fewer from a writer that
/// drops leading zeros), the curve, and the uncompressed public key (checked by ring against the
/// scalar when present, derived when absent). Either the curve or the public key must be there:
/// a bare scalar does not say its curve. Every length in such a document is below 128, so each
/// is one byte.
fn parse_sec1_p256(der: &[u8]) -> Result<SigningKey, (&'static str, String)> {
    let field = "client_assertion_key";
    let unreadable = || {
        (
            field,
            "is a SEC1 EC key in a form tessera cannot read (a compressed public key, explicit curve \
             parameters, or neither curve nor public key): `openssl ec -in key.pem -param_enc named_curve \
             -conv_form uncompressed -out fixed.pem` rewrites it"
                .to_owned(),
        )
    };
    if !contains(der, PRIME256V1) && (contains(der, SECG_CURVE) || contains(der, X962_PRIME_CURVE)) {
        return Err((field, OTHER_CURVE.to_owned()));
    }
    let body = match der {
        [0x30, len, body @ ..] if usize::from(*len) == body.len() => body,
        _ => return Err(unreadable()),
    };
    let (scalar, rest) = match body {
        [0x02, 0x01, 0x01, 0x04, len @ 1..=32, rest @ ..] => {
            rest.split_at_checked(usize::from(*len)).ok_or_else(unreadable)?
        }
        _ => return Err(unreadable()),
    };
    let mut d = zeroize::Zeroizing::new([0u8; 32]);
    d[32 - scalar.len()..].copy_from_slice(scalar);
    let (curve, rest) = match rest.strip_prefix(&[0xa0, 0x0a]) {
        Some(curve) => (true, curve.strip_prefix(PRIME256V1).ok_or_else(unreadable)?),
        None => (false, rest),
    };
    let invalid_scalar = || (field, "is a SEC1 EC key whose private key is not a valid P-256 scalar".to_owned());
    if p256::SecretKey::from_slice(&d[..]).is_err() {
        return Err(invalid_scalar());
    }
    match rest {
        [0xa1, 0x44, 0x03, 0x42, 0x00, point @ ..] if point.len() == 65 => SigningKey::ec_p256(&d[..], point)
            .map_err(|_| (field, "is a SEC1 EC key whose public key is not the one of its private key".to_owned())),
        [] if curve => ec_p256_from_scalar(&d[..]).ok_or_else(invalid_scalar),
        _ => Err(unreadable()),
    }
}

const OTHER_CURVE: &str = "cannot sign ES256 with this key: it is an EC key on a curve other than P-256";

/// A PKCS#8 document ring did not take. ring needs an EC key's public key inside it (OpenSSL
/// writes it; Java does not): Java's bare form ([`P256_PKCS8_PREFIX`], then the scalar) is read by
/// deriving the public key; for any other the error says what is wrong.
fn parse_ec_pkcs8_without_public_key(der: &[u8]) -> Result<SigningKey, (&'static str, String)> {
    let field = "client_assertion_key";
    if let Some(d) = der.strip_prefix(P256_PKCS8_PREFIX).filter(|d| d.len() == 32) {
        return ec_p256_from_scalar(d).ok_or_else(|| (field, NOT_A_PRIVATE_KEY.to_owned()));
    }
    if !contains(der, ID_EC_PUBLIC_KEY) {
        return Err((field, NOT_A_PRIVATE_KEY.to_owned()));
    }
    if !contains(der, PRIME256V1) {
        return Err((field, OTHER_CURVE.to_owned()));
    }
    Err((
        field,
        "is an EC P-256 PKCS#8 key tessera cannot read (without its public key, or with one that does not match): \
         `openssl ec -in key.pem | openssl pkcs8 -topk8 -nocrypt -out full.pem` rewrites it with the right one"
            .to_owned(),
    ))
}

/// The DER of the OIDs id-ecPublicKey (1.2.840.10045.2.1), prime256v1 (1.2.840.10045.3.1.7) and
/// rsaEncryption (1.2.840.113549.1.1.1): what kind of key a PKCS#8 document says it holds.
const ID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// The start of the DER of the named curves of SECG (1.3.132.0.*: P-384, P-521, secp256k1) and of
/// X9.62's prime curves (1.2.840.10045.3.1.*, prime256v1 among them).
const SECG_CURVE: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00];
const X962_PRIME_CURVE: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01];

fn contains(der: &[u8], needle: &[u8]) -> bool {
    der.windows(needle.len()).any(|window| window == needle)
}

/// An EC P-256 key from its scalar alone: the public point is derived (ring takes the two
/// together). `None` when `d` is not a valid scalar (zero, or not below the group order).
pub(crate) fn ec_p256_from_scalar(d: &[u8]) -> Option<SigningKey> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    let secret = p256::SecretKey::from_slice(d).ok()?;
    let point = secret.public_key().to_encoded_point(false);
    SigningKey::ec_p256(d, point.as_bytes()).ok()
}

/// The PKCS#8 `PrivateKeyInfo` prefix of a bare P-256 private scalar (RFC 5915 inside RFC 5208,
/// no parameters, no public key: what Java writes). The 32 key bytes follow.
const P256_PKCS8_PREFIX: &[u8] = &[
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20,
];

fn parse_jwk(text: &str) -> Result<ParsedKey, (&'static str, String)> {
    let field = "client_assertion_key";
    let not_jwk = || (field, NOT_A_PRIVATE_KEY.to_owned());
    let jwk: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).map_err(|_| not_jwk())?;
    let member = |name: &str| -> Result<zeroize::Zeroizing<Vec<u8>>, (&'static str, String)> {
        let value = jwk.get(name).and_then(|v| v.as_str()).ok_or_else(not_jwk)?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map(zeroize::Zeroizing::new)
            .map_err(|_| not_jwk())
    };
    let kid = jwk.get("kid").and_then(|v| v.as_str()).map(str::to_owned);
    let text_member = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let key = match (text_member("kty"), text_member("crv")) {
        (Some("EC"), Some("P-256")) => {
            let d = member("d")?;
            if d.len() != 32 {
                return Err(not_jwk());
            }
            ec_p256_from_scalar(&d).ok_or_else(not_jwk)?
        }
        (Some("OKP"), Some("Ed25519")) => {
            let d = member("d")?;
            if d.len() != 32 {
                return Err(not_jwk());
            }
            SigningKey::ed25519_seed(&d).map_err(|_| not_jwk())?
        }
        (Some("RSA"), _) => {
            if ["p", "q", "dp", "dq", "qi"].iter().any(|name| !jwk.contains_key(*name)) {
                return Err((
                    field,
                    "is an RSA JWK without all of \"p\", \"q\", \"dp\", \"dq\" and \"qi\" (tessera signs with the CRT members)"
                        .into(),
                ));
            }
            let (n, e, d, p, q) = (member("n")?, member("e")?, member("d")?, member("p")?, member("q")?);
            let (dp, dq, qi) = (member("dp")?, member("dq")?, member("qi")?);
            let components = ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents { n: minimal_integer(&n), e: minimal_integer(&e) },
                d: minimal_integer(&d),
                p: minimal_integer(&p),
                q: minimal_integer(&q),
                dP: minimal_integer(&dp),
                dQ: minimal_integer(&dq),
                qInv: minimal_integer(&qi),
            };
            SigningKey::rsa_components(&components).map_err(|rejected| rsa_problem(&rejected))?
        }
        _ => {
            return Err((
                field,
                "is a JWK of a kind tessera cannot sign with (RSA, EC P-256 or Ed25519 with \"d\")".into(),
            ));
        }
    };
    Ok(ParsedKey::new(key, kid))
}

/// The client's identity at the authorization server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuth {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, for confidential clients.
    pub client_secret: Option<Secret>,
    /// How to send them.
    pub method: ClientAuthMethod,
    /// True when the description left `client_auth` unset, so `method` is the default for these
    /// credentials: once the server's metadata is known, [`ClientAuth::choose_method`] may switch
    /// to another method the server lists and the credentials allow. False (every constructor
    /// here): `method` is the user's choice and is always used.
    pub method_from_metadata: bool,
    /// The private key of `private_key_jwt` (`client_assertion_key`, with `client_assertion_alg`
    /// and `client_assertion_kid`); `client_secret_jwt` signs HS256 with `client_secret`.
    pub assertion_key: Option<ClientAssertionKey>,
    /// DPoP (RFC 9449, `dpop = true`): every token request carries a proof of possession of this
    /// key, and the tokens are bound to it. `None`: bearer tokens.
    pub dpop: Option<crate::DpopSettings>,
}

impl ClientAuth {
    /// A confidential client using `client_secret_basic`.
    pub fn basic(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::Basic,
            assertion_key: None,
            dpop: None,
            method_from_metadata: false,
        }
    }

    /// A confidential client using `client_secret_post`.
    pub fn post(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::Post,
            assertion_key: None,
            dpop: None,
            method_from_metadata: false,
        }
    }

    /// A public client.
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: None,
            method: ClientAuthMethod::None,
            assertion_key: None,
            dpop: None,
            method_from_metadata: false,
        }
    }

    /// A confidential client using `client_secret_jwt` (an HS256 assertion signed with the secret).
    pub fn secret_jwt(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            method: ClientAuthMethod::SecretJwt,
            assertion_key: None,
            dpop: None,
            method_from_metadata: false,
        }
    }

    /// A confidential client using `private_key_jwt` with this key.
    pub fn private_key_jwt(client_id: impl Into<String>, key: ClientAssertionKey) -> Self {
        ClientAuth {
            client_id: client_id.into(),
            client_secret: None,
            method: ClientAuthMethod::PrivateKeyJwt,
            assertion_key: Some(key),
            dpop: None,
            method_from_metadata: false,
        }
    }

    /// The methods these credentials can use, in order of preference: a secret,
    /// `client_secret_basic` (RFC 6749's default, which every server must support),
    /// `client_secret_post`, then `client_secret_jwt` (the secret never travels, but a few servers
    /// refuse assertions signed with it); a key, `private_key_jwt`; a certificate alone, the two
    /// certificate methods (identical on the wire); nothing, `none`.
    fn usable_methods(&self) -> &'static [ClientAuthMethod] {
        use ClientAuthMethod as M;
        if self.assertion_key.is_some() {
            &[M::PrivateKeyJwt]
        } else if self.client_secret.is_some() {
            &[M::Basic, M::Post, M::SecretJwt]
        } else if self.method.uses_certificate() {
            &[M::TlsClientAuth, M::SelfSignedTlsClientAuth]
        } else {
            &[M::None]
        }
    }

    /// Chooses the method from the server's `token_endpoint_auth_methods_supported` (RFC 8414
    /// §2) when the description left it unset ([`ClientAuth::method_from_metadata`]): the first
    /// method these credentials can use that the server lists. The default stays when the server
    /// lists it, lists nothing (RFC 8414: then `client_secret_basic`), or lists none that the
    /// credentials allow (the server's answer then says what is wrong). Returns the method it
    /// switched to, if any. A method the user named is never changed.
    pub fn choose_method(&mut self, supported: &[String]) -> Option<ClientAuthMethod> {
        let listed = |method: &ClientAuthMethod| supported.iter().any(|name| name == method.name());
        if !self.method_from_metadata || supported.is_empty() || listed(&self.method) {
            return None;
        }
        let chosen = self.usable_methods().iter().copied().find(listed)?;
        self.method = chosen;
        Some(chosen)
    }

    /// [`ClientAuth::assertion_signer`], with a signature made now (see
    /// [`ClientAssertionKey::checked_signer`]): for checking a description, not for each request.
    pub(crate) fn checked_assertion_signer(&self) -> Result<Option<Signer>, (&'static str, String)> {
        self.assertion_signer()?.map(Signer::checked).transpose()
    }

    /// The signer of an assertion method (key readable, algorithm matching); `None` for the other
    /// methods. `Err((field, problem))` never contains key material.
    pub(crate) fn assertion_signer(&self) -> Result<Option<Signer>, (&'static str, String)> {
        match self.method {
            ClientAuthMethod::PrivateKeyJwt => match &self.assertion_key {
                Some(key) => key.signer().map(Some),
                None => Err(("client_assertion_key", "is required with client_auth \"private_key_jwt\"".into())),
            },
            ClientAuthMethod::SecretJwt => {
                let Some(secret) = &self.client_secret else {
                    return Err(("client_secret", "is required with client_auth \"client_secret_jwt\"".into()));
                };
                let key = SigningKey::hmac(secret.expose_secret().as_bytes());
                Ok(Some(Signer { key, alg: Algorithm::HS256, kid: None, certificate: None }))
            }
            _ => Ok(None),
        }
    }

    /// Checks what an assertion method needs before any request: the key is readable, private and
    /// matches `client_assertion_alg` (`private_key_jwt`), the secret is there
    /// (`client_secret_jwt`). For front ends that build a `ClientAuth` outside a provider
    /// description (token-chain stages); the error names the field, never the key.
    pub fn check_assertion_key(&self) -> Result<(), Error> {
        self.checked_assertion_signer()
            .map(|_| ())
            .map_err(|(field, problem)| Error::configuration(format!("{field}: {problem}")))
    }

    /// Adds the client's credentials to a request being built. An assertion method signs a fresh
    /// JWT with `inputs` (RFC 7523 §3: `iss` = `sub` = `client_id`, `aud` = the token endpoint,
    /// a random `jti`, `iat`, `exp` 60 s later); it fails as a configuration error without
    /// randomness or with an unusable key, and the error never holds key material.
    pub(crate) fn apply(
        &self,
        headers: &mut Vec<(String, String)>,
        form: &mut form_urlencoded::Serializer<'_, String>,
        inputs: &AssertionInputs<'_>,
    ) -> Result<(), Error> {
        if self.method.uses_assertion() {
            let assertion = self.assertion(inputs)?;
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION_TYPE);
            form.append_pair("client_assertion", assertion.expose_secret());
            return Ok(());
        }
        match (&self.method, &self.client_secret) {
            (ClientAuthMethod::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                // Held in a Secret so the clear pair is zeroed when it goes out of scope.
                let pair = Secret::new(format!("{}:{}", encode(&self.client_id), encode(secret.expose_secret())));
                let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.expose_secret()));
                headers.push(("authorization".into(), value));
            }
            (ClientAuthMethod::Post, Some(secret)) => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret.expose_secret());
            }
            // A client without an id sends none: a JWT bearer grant without client
            // authentication, whose assertion says who it is (RFC 7523 §3.1).
            _ if self.client_id.is_empty() => {}
            _ => {
                form.append_pair("client_id", &self.client_id);
            }
        }
        Ok(())
    }

    /// A signed client assertion for one request.
    fn assertion(&self, inputs: &AssertionInputs<'_>) -> Result<Secret, Error> {
        let method = self.method.name();
        let Some(random) = inputs.jti else {
            return Err(Error::configuration(format!(
                "client_auth \"{method}\" needs fresh randomness for each assertion's jti: the driver gives none \
                 (EngineSettings::entropy)"
            )));
        };
        let signer = self
            .assertion_signer()
            .map_err(|(field, problem)| Error::configuration(format!("{field}: {problem}")))?
            .ok_or_else(|| Error::internal("an assertion for a method without one"))?;
        let iat = inputs.now.as_unix_secs();
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: inputs.audience,
            jti: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random),
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        signer.sign(&claims).map(Secret::new).map_err(|_| {
            Error::configuration(format!("client_auth \"{method}\": the client assertion could not be signed"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn unset(client: ClientAuth) -> ClientAuth {
        ClientAuth { method_from_metadata: true, ..client }
    }

    #[test]
    fn an_unset_method_follows_the_servers_list_where_the_credentials_allow() {
        let secret = || unset(ClientAuth::basic("c", "s"));
        // The default stays when the server lists it, lists nothing, or lists nothing usable.
        for names in [&["client_secret_post", "client_secret_basic"][..], &[], &["private_key_jwt", "none"]] {
            let mut client = secret();
            assert_eq!(client.choose_method(&listed(names)), None, "{names:?}");
            assert_eq!(client.method, ClientAuthMethod::Basic, "{names:?}");
        }
        let mut client = secret();
        assert_eq!(client.choose_method(&listed(&["client_secret_jwt", "none"])), Some(ClientAuthMethod::SecretJwt));
        assert_eq!(client.method, ClientAuthMethod::SecretJwt);
        let mut client = secret();
        let both = listed(&["client_secret_jwt", "client_secret_post"]);
        assert_eq!(client.choose_method(&both), Some(ClientAuthMethod::Post), "post before jwt, whatever the order");

        let mut certificate = unset(ClientAuth { method: ClientAuthMethod::TlsClientAuth, ..ClientAuth::public("c") });
        let self_signed = listed(&["self_signed_tls_client_auth"]);
        assert_eq!(certificate.choose_method(&self_signed), Some(ClientAuthMethod::SelfSignedTlsClientAuth));

        let mut public = unset(ClientAuth::public("c"));
        assert_eq!(public.choose_method(&listed(&["client_secret_post"])), None, "nothing to send a secret with");
        assert_eq!(public.method, ClientAuthMethod::None);
    }

    #[test]
    fn a_method_the_user_named_is_never_changed() {
        let mut client = ClientAuth::basic("c", "s");
        assert_eq!(client.choose_method(&listed(&["client_secret_jwt"])), None);
        assert_eq!(client.method, ClientAuthMethod::Basic);
    }
}
