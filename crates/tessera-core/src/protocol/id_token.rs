//! OpenID Connect ID tokens (OIDC Core §3.1.3.7): fetching the issuer's keys (JWKS) and verifying
//! an ID token against them and against the login it answers. Time is a parameter: no clock here.
//!
//! Signature algorithms ([`crate::jws::verify`], ring): RS256/384/512 and PS256/384/512 with RSA
//! keys of 2048 to 8192 bits, ES256, ES384, EdDSA (Ed25519). HMAC (`HS*`, keyed with the client
//! secret) is refused: a public client has no secret, and a key in a JWKS must never be a shared
//! secret.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;

use super::token::parse_error_response;
use crate::http::endpoint_of;
use crate::{Error, HttpRequest, HttpResponse, Method, RequestId, Timestamp};

/// How far `exp` and `iat` may be off from `now` (clock skew between us and the issuer): 60 s.
pub const ID_TOKEN_LEEWAY: Duration = Duration::from_secs(60);

/// An issuer's signing keys, parsed from its `jwks_uri` (RFC 7517).
#[derive(Clone, Debug)]
pub struct JsonWebKeySet(pub(crate) JwkSet);

impl JsonWebKeySet {
    /// Parses a JWKS document.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice::<JwkSet>(json).map(JsonWebKeySet).map_err(|e| format!("not a JWKS document ({e})"))
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.0.keys.len()
    }

    /// True when the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.0.keys.is_empty()
    }
}

/// Builds the request for an issuer's JWKS.
pub fn jwks_request(id: RequestId, jwks_uri: &str) -> HttpRequest {
    HttpRequest {
        id,
        method: Method::Get,
        url: jwks_uri.to_owned(),
        headers: vec![("accept".into(), "application/json, application/jwk-set+json".into())],
        body: Vec::new(),
    }
}

/// Parses the answer to [`jwks_request`].
pub fn parse_jwks(response: &HttpResponse, jwks_uri: &str) -> Result<JsonWebKeySet, Error> {
    let endpoint = endpoint_of(jwks_uri);
    if !(200..300).contains(&response.status) {
        return Err(parse_error_response(response, &endpoint));
    }
    let malformed = |reason: String| Error::MalformedResponse { endpoint: endpoint.clone(), reason };
    if !response.media_type().is_some_and(|t| t == "application/json" || t.ends_with("+json")) {
        return Err(malformed(format!(
            "expected application/json, got {}",
            response.media_type().unwrap_or_else(|| "no content type".into())
        )));
    }
    JsonWebKeySet::from_json(&response.body).map_err(malformed)
}

/// What an ID token must say to be accepted.
#[derive(Clone, Copy, Debug)]
pub struct IdTokenExpectations<'a> {
    /// `iss` must equal this (a trailing slash is tolerated).
    pub issuer: &'a str,
    /// `aud` must contain this; when `aud` has several values, `azp` must be this too.
    pub client_id: &'a str,
    /// `nonce` must equal this when given (the login sent it).
    pub nonce: Option<&'a str>,
    /// The current time: `exp` must be after `now - leeway`, `iat` before `now + leeway`.
    pub now: Timestamp,
    /// Tolerated clock skew; normally [`ID_TOKEN_LEEWAY`].
    pub leeway: Duration,
}

/// The claims of a verified ID token that tessera reads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`: the user at the issuer.
    pub subject: String,
    /// `aud`, as a list.
    pub audience: Vec<String>,
    /// `exp`.
    pub expires_at: Timestamp,
    /// `iat`.
    pub issued_at: Timestamp,
    /// `nonce`, when present.
    pub nonce: Option<String>,
    /// `email`, when present.
    pub email: Option<String>,
}

#[derive(Deserialize)]
struct WireClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    azp: Option<String>,
    exp: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
    nonce: Option<String>,
    email: Option<String>,
}

/// Verifies `id_token` (from the token endpoint `endpoint`): signature with the JWKS key named by
/// its `kid` (or the only key that fits its `alg`), then `iss`, `aud` (and `azp`), `exp`, `iat`
/// and `nonce`. Every failure is [`Error::MalformedResponse`] naming `endpoint` and the check that
/// failed, never the token.
pub fn verify_id_token(
    id_token: &str,
    keys: &JsonWebKeySet,
    expected: &IdTokenExpectations<'_>,
    endpoint: &str,
) -> Result<IdTokenClaims, Error> {
    let endpoint = endpoint_of(endpoint);
    let rejected = |reason: String| Error::MalformedResponse {
        endpoint: endpoint.clone(),
        reason: format!("ID token rejected: {reason}"),
    };
    let header = jsonwebtoken::decode_header(id_token).map_err(|e| rejected(unreadable_header(&e)))?;
    let alg = header.alg;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(rejected(format!("{alg:?} (a shared-secret MAC) is not accepted for ID tokens")));
    }
    let jwk = select_key(keys, header.kid.as_deref(), alg).map_err(rejected)?;
    check_key_material(jwk).map_err(rejected)?;
    let payload = crate::jws::verify(id_token, alg, jwk).map_err(rejected)?;
    let claims: WireClaims = serde_json::from_slice(&payload).map_err(|e| {
        rejected(format!("the claims are not a JSON object of the expected shape (column {})", e.column()))
    })?;

    let issuer = claims.iss.ok_or_else(|| rejected("no `iss`".into()))?;
    if trim_slash(&issuer) != trim_slash(expected.issuer) {
        return Err(rejected(format!("`iss` is {issuer:?}, expected {:?}", expected.issuer)));
    }
    let audience = match claims.aud {
        Some(serde_json::Value::String(aud)) => vec![aud],
        Some(serde_json::Value::Array(values)) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(rejected("`aud` holds a non-string".into())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(rejected("no `aud`".into())),
    };
    if !audience.iter().any(|aud| aud == expected.client_id) {
        return Err(rejected(format!("`aud` does not contain the client id {:?}", expected.client_id)));
    }
    if audience.len() > 1 && claims.azp.as_deref() != Some(expected.client_id) {
        return Err(rejected("several audiences, and `azp` is not this client".into()));
    }
    let seconds = |name: &str, value: Option<serde_json::Number>| -> Result<Timestamp, Error> {
        let value = value.ok_or_else(|| rejected(format!("no `{name}`")))?;
        let secs = value
            .as_i64()
            .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .ok_or_else(|| rejected(format!("`{name}` is not a number")))?;
        Ok(Timestamp::from_unix_secs(secs))
    };
    let expires_at = seconds("exp", claims.exp)?;
    let issued_at = seconds("iat", claims.iat)?;
    if expires_at.saturating_add(expected.leeway) <= expected.now {
        return Err(rejected(format!("expired {}s ago", expected.now.duration_since(expires_at).as_secs())));
    }
    if issued_at > expected.now.saturating_add(expected.leeway) {
        return Err(rejected(format!("issued {}s in the future", issued_at.duration_since(expected.now).as_secs())));
    }
    if let Some(nonce) = expected.nonce
        && claims.nonce.as_deref() != Some(nonce)
    {
        return Err(rejected(match claims.nonce {
            None => "no `nonce`, although the login sent one".into(),
            Some(_) => "`nonce` does not match this login's (a replayed or injected token)".into(),
        }));
    }
    let subject = claims.sub.filter(|s| !s.is_empty()).ok_or_else(|| rejected("no `sub`".into()))?;
    Ok(IdTokenClaims { issuer, subject, audience, expires_at, issued_at, nonce: claims.nonce, email: claims.email })
}

/// Why a header did not decode, by position: jsonwebtoken's own message quotes what the header
/// holds (`unknown variant ...`), which is the server's text, newlines included, and not for a log.
fn unreadable_header(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidToken => "not a JWS in compact form (three parts separated by dots)".into(),
        ErrorKind::Base64(_) => "the header is not base64url".into(),
        ErrorKind::Json(e) => format!(
            "the header is not a JSON object of the expected shape (column {}), or names an algorithm \
             tessera does not know",
            e.column()
        ),
        _ => "unreadable header".into(),
    }
}

/// The key for a token signed with `alg`: by `kid`, else the only signing key of `alg`'s family.
fn select_key<'a>(keys: &'a JsonWebKeySet, kid: Option<&str>, alg: Algorithm) -> Result<&'a Jwk, String> {
    let fits = |jwk: &Jwk| {
        let family_fits = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => alg_family(alg) == Family::Rsa,
            AlgorithmParameters::EllipticCurve(_) => alg_family(alg) == Family::Ec,
            AlgorithmParameters::OctetKeyPair(_) => alg_family(alg) == Family::Ed,
            _ => false, // symmetric keys, and kinds jsonwebtoken does not know
        };
        let alg_fits = jwk.common.key_algorithm.is_none_or(|ka| ka == KeyAlgorithm::from(alg));
        let use_fits = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
        family_fits && alg_fits && use_fits
    };
    match kid {
        Some(kid) => {
            let jwk = keys.0.find(kid).ok_or_else(|| format!("no key with kid {kid:?} in the issuer's JWKS"))?;
            if fits(jwk) { Ok(jwk) } else { Err(format!("the key {kid:?} is not a {alg:?} signing key")) }
        }
        None => {
            let mut candidates = keys.0.keys.iter().filter(|jwk| fits(jwk));
            match (candidates.next(), candidates.next()) {
                (Some(jwk), None) => Ok(jwk),
                (None, _) => Err(format!("no {alg:?} signing key in the issuer's JWKS")),
                (Some(_), Some(_)) => Err("the token names no kid and the JWKS holds several keys".into()),
            }
        }
    }
}

/// Checks an Ed25519 key before it is used, so that a wrong one is named as such rather than as a
/// bad signature (jsonwebtoken 11's verifier, used before ring, panicked on a short `x`: found by
/// the `id_token` fuzz target). RFC 8037 §2: an Ed25519 `x` is exactly 32 bytes, base64url without
/// padding.
fn check_key_material(jwk: &Jwk) -> Result<(), String> {
    if let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm {
        let kid = jwk.common.key_id.as_deref().unwrap_or_default();
        if params.curve != EllipticCurve::Ed25519 {
            return Err(format!("the key {kid:?} is on {:?}, not Ed25519", params.curve));
        }
        if URL_SAFE_NO_PAD.decode(&params.x).map(|x| x.len()).ok() != Some(32) {
            return Err(format!("the key {kid:?} is not an Ed25519 public key (`x` must be 32 bytes of base64url)"));
        }
    }
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Ed,
    Other,
}

fn alg_family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Family::Rsa,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
        _ => Family::Other,
    }
}

fn trim_slash(value: &str) -> &str {
    value.strip_suffix('/').unwrap_or(value)
}

/// Who an ID token names, for people to read (`tessera status`). Every field is optional: a
/// server puts in what it likes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Account {
    /// `sub`: the user at the issuer.
    pub subject: Option<String>,
    /// `preferred_username` (Cognito: `cognito:username`).
    pub username: Option<String>,
    /// `email`.
    pub email: Option<String>,
}

impl Account {
    /// One word for a table: the user name, else the e-mail, else the subject.
    pub fn display(&self) -> Option<&str> {
        self.username.as_deref().or(self.email.as_deref()).or(self.subject.as_deref())
    }
}

/// The [`Account`] an ID token names, read from its payload **without checking its signature or
/// its times**: for display only, never to decide anything (the token was verified, where the
/// login verifies ID tokens, when it was received). `None` when `id_token` is not a JWT with a JSON
/// object payload, is larger than 64 KiB, or names nobody. Nothing of the token is ever returned
/// but these three claims.
pub fn unverified_account(id_token: &str) -> Option<Account> {
    const MAX_LEN: usize = 64 * 1024;
    if id_token.len() > MAX_LEN {
        return None;
    }
    let mut parts = id_token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
    let text =
        |name: &str| claims.get(name).and_then(serde_json::Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let account = Account {
        subject: text("sub"),
        username: text("preferred_username").or_else(|| text("cognito:username")),
        email: text("email"),
    };
    account.display().is_some().then_some(account)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // jsonwebtoken with its own provider checks ring independently (clippy.toml)
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::jwk::ThumbprintHash;
    use jsonwebtoken::{EncodingKey, Header};

    pub(crate) const ISSUER: &str = "https://idp.example";
    pub(crate) const NOW: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

    /// A fixed Ed25519 key (PKCS#8 v1: a 16-byte prefix, then the seed) and its JWKS.
    pub(crate) fn ed25519(seed: u8) -> (EncodingKey, JsonWebKeySet, String) {
        let mut der =
            vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        der.extend_from_slice(&[seed; 32]);
        let encoding = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
        jwk.common.key_id = Some(kid.clone());
        (encoding, JsonWebKeySet(JwkSet { keys: vec![jwk] }), kid)
    }

    pub(crate) fn sign(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let header = Header { kid: Some(kid.to_owned()), ..Header::new(Algorithm::EdDSA) };
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    pub(crate) fn good_claims() -> serde_json::Value {
        serde_json::json!({
            "iss": ISSUER, "sub": "alice", "aud": "cli", "exp": NOW.as_unix_secs() + 300,
            "iat": NOW.as_unix_secs(), "nonce": "N", "email": "alice@example.com"
        })
    }

    fn expect() -> IdTokenExpectations<'static> {
        IdTokenExpectations { issuer: ISSUER, client_id: "cli", nonce: Some("N"), now: NOW, leeway: ID_TOKEN_LEEWAY }
    }

    fn reason_of(claims: serde_json::Value) -> String {
        let (key, jwks, kid) = ed25519(7);
        match verify_id_token(&sign(&key, &kid, claims), &jwks, &expect(), "https://idp.example/token") {
            Err(Error::MalformedResponse { reason, endpoint }) => {
                assert_eq!(endpoint, "https://idp.example/token");
                reason
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn with(change: &[(&str, serde_json::Value)]) -> serde_json::Value {
        let mut claims = good_claims();
        for (name, value) in change {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(*name);
            } else {
                claims[*name] = value.clone();
            }
        }
        claims
    }

    #[test]
    fn accepts_a_good_token() {
        let (key, jwks, kid) = ed25519(7);
        let claims = verify_id_token(&sign(&key, &kid, good_claims()), &jwks, &expect(), "t").unwrap();
        assert_eq!(claims.subject, "alice");
        assert_eq!(claims.audience, vec!["cli".to_owned()]);
        assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
        // Within the leeway: expired 59 s ago, issued 59 s ahead.
        let skewed = with(&[("exp", (NOW.as_unix_secs() - 59).into()), ("iat", (NOW.as_unix_secs() + 59).into())]);
        assert!(verify_id_token(&sign(&key, &kid, skewed), &jwks, &expect(), "t").is_ok());
        // No kid: the only Ed25519 key.
        let header = Header::new(Algorithm::EdDSA);
        let token = jsonwebtoken::encode(&header, &good_claims(), &key).unwrap();
        assert!(verify_id_token(&token, &jwks, &expect(), "t").is_ok());
        // aud as a list with azp.
        let listed = with(&[("aud", serde_json::json!(["cli", "api"])), ("azp", "cli".into())]);
        assert!(verify_id_token(&sign(&key, &kid, listed), &jwks, &expect(), "t").is_ok());
    }

    #[test]
    fn rejects_each_broken_claim() {
        let now = NOW.as_unix_secs();
        for (change, needle) in [
            (vec![("iss", "https://evil.example".into())], "`iss`"),
            (vec![("iss", serde_json::Value::Null)], "no `iss`"),
            (vec![("aud", "other-client".into())], "`aud`"),
            (vec![("aud", serde_json::json!(["cli", "api"]))], "azp"),
            (vec![("exp", (now - 61).into())], "expired"),
            (vec![("exp", serde_json::Value::Null)], "no `exp`"),
            (vec![("iat", (now + 61).into())], "future"),
            (vec![("nonce", "other".into())], "`nonce`"),
            (vec![("nonce", serde_json::Value::Null)], "no `nonce`"),
            (vec![("sub", serde_json::Value::Null)], "no `sub`"),
        ] {
            let reason = reason_of(with(&change));
            assert!(reason.contains(needle), "{change:?}: {reason}");
        }
    }

    #[test]
    fn rejects_bad_signatures_and_unknown_keys() {
        let (key, jwks, kid) = ed25519(7);
        let token = sign(&key, &kid, good_claims());
        // Another key, published under the same kid: the signature does not verify.
        let (_, other_jwks, _) = ed25519(8);
        let mut impostor = other_jwks.0.keys[0].clone();
        impostor.common.key_id = Some(kid.clone());
        let impostor = JsonWebKeySet(JwkSet { keys: vec![impostor] });
        let error = verify_id_token(&token, &impostor, &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("bad signature"), "{error}");
        // A payload changed after signing.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = with(&[("sub", "mallory".into())]);
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged.to_string());
        let error = verify_id_token(&parts.join("."), &jwks, &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("bad signature"), "{error}");
        // An unknown kid.
        let error = verify_id_token(&sign(&key, "nope", good_claims()), &jwks, &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("no key with kid"), "{error}");
        // HS256 signed with anything: refused before any key is looked at.
        let hs = jsonwebtoken::encode(
            &Header { kid: Some(kid.clone()), ..Header::new(Algorithm::HS256) },
            &good_claims(),
            &EncodingKey::from_secret(b"public"),
        )
        .unwrap();
        let error = verify_id_token(&hs, &jwks, &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("HS256"), "{error}");
        // alg=none, unsigned.
        let b64 = |json: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, json);
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&good_claims().to_string()));
        assert!(matches!(verify_id_token(&unsigned, &jwks, &expect(), "t"), Err(Error::MalformedResponse { .. })));
        let error = verify_id_token("not.a.jwt", &jwks, &expect(), "t").unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }));
        assert!(!error.to_string().contains(&token), "the token never appears in errors");
    }

    /// A header that does not decode is told by position: what it holds is the server's text (here
    /// an algorithm name carrying a forged log line), never quoted.
    #[test]
    fn an_unreadable_header_is_told_without_its_contents() {
        let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let (_, jwks, _) = ed25519(7);
        let claims = b64(&good_claims().to_string());
        for (header, needle) in [
            (b64(r#"{"alg":"EVIL\nlevel=INFO msg=forged"}"#), "column"),
            (b64(r#"{"alg":"EdDSA","kid":["EVIL"]}"#), "column"),
            (b64("EVIL not json"), "column"),
            ("EVIL!!".to_owned(), "base64url"),
            (URL_SAFE_NO_PAD.encode([0xff, 0xfe, b'E', b'V', b'I', b'L']), "column"),
        ] {
            let error = verify_id_token(&format!("{header}.{claims}.c2ln"), &jwks, &expect(), "t").unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{message}");
            assert!(message.contains(needle) && !message.contains("EVIL"), "{message}");
        }
        let error = verify_id_token("EVIL-no-dots", &jwks, &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("compact form") && !error.to_string().contains("EVIL"), "{error}");
    }

    #[test]
    fn keys_for_encryption_or_another_algorithm_never_verify() {
        let (key, jwks, kid) = ed25519(7);
        let token = sign(&key, &kid, good_claims());
        let mut encryption = jwks.0.keys[0].clone();
        encryption.common.public_key_use = Some(PublicKeyUse::Encryption);
        let error =
            verify_id_token(&token, &JsonWebKeySet(JwkSet { keys: vec![encryption] }), &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("is not a EdDSA signing key"), "{error}");
        let mut other_alg = jwks.0.keys[0].clone();
        other_alg.common.key_algorithm = Some(KeyAlgorithm::RS256);
        let error =
            verify_id_token(&token, &JsonWebKeySet(JwkSet { keys: vec![other_alg] }), &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("is not a EdDSA signing key"), "{error}");
        // Without a kid, two keys that fit are ambiguous: refused rather than tried in turn.
        let unnamed = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &good_claims(), &key).unwrap();
        let (_, second, _) = ed25519(8);
        let both = JsonWebKeySet(JwkSet { keys: vec![jwks.0.keys[0].clone(), second.0.keys[0].clone()] });
        let error = verify_id_token(&unnamed, &both, &expect(), "t").unwrap_err();
        assert!(error.to_string().contains("several keys"), "{error}");
        assert!(verify_id_token(&token, &both, &expect(), "t").is_ok(), "with its kid it is found");
    }

    /// Regression (fuzz target `id_token`): jsonwebtoken 11 panicked on an Ed25519 `x` shorter than
    /// 32 bytes and cut a longer one to 32, so a malformed key verified a token.
    #[test]
    fn malformed_ed25519_keys_are_errors_not_panics() {
        let (key, jwks, kid) = ed25519(7);
        let token = sign(&key, &kid, good_claims());
        let AlgorithmParameters::OctetKeyPair(params) = &jwks.0.keys[0].algorithm else { panic!("an OKP key") };
        let x = URL_SAFE_NO_PAD.decode(&params.x).unwrap();
        let mut longer = x.clone();
        longer.push(0);
        for (x, curve) in [
            (URL_SAFE_NO_PAD.encode(&x[..29]), EllipticCurve::Ed25519),
            (String::new(), EllipticCurve::Ed25519),
            (URL_SAFE_NO_PAD.encode(&longer), EllipticCurve::Ed25519),
            ("not base64!".to_owned(), EllipticCurve::Ed25519),
            (URL_SAFE_NO_PAD.encode(&x), EllipticCurve::P256),
        ] {
            let mut jwk = jwks.0.keys[0].clone();
            let AlgorithmParameters::OctetKeyPair(params) = &mut jwk.algorithm else { unreachable!() };
            params.x = x.clone();
            params.curve = curve.clone();
            let keys = JsonWebKeySet(JwkSet { keys: vec![jwk] });
            let error = verify_id_token(&token, &keys, &expect(), "t").unwrap_err();
            assert!(matches!(error, Error::MalformedResponse { .. }), "{x} {curve:?}: {error:?}");
        }
        assert!(verify_id_token(&token, &jwks, &expect(), "t").is_ok());
    }

    #[test]
    fn parses_jwks_responses() {
        let (_, jwks, _) = ed25519(7);
        let body = serde_json::to_string(&jwks.0).unwrap();
        let parsed = parse_jwks(&HttpResponse::json(RequestId(1), 200, body), "https://idp/jwks").unwrap();
        assert_eq!(parsed.len(), 1);
        let error = parse_jwks(&HttpResponse::json(RequestId(1), 200, "[]"), "https://idp/jwks").unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }), "{error}");
        let error = parse_jwks(&HttpResponse::json(RequestId(1), 500, "{}"), "https://idp/jwks").unwrap_err();
        assert!(matches!(error, Error::UnexpectedStatus { status: 500, .. }), "{error}");
        assert_eq!(jwks_request(RequestId(3), "https://idp/jwks").method, Method::Get);
    }

    #[test]
    fn the_account_of_an_id_token_is_read_for_display_and_garbage_is_none() {
        let payload = |claims: serde_json::Value| {
            format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
        };
        let account = unverified_account(&payload(serde_json::json!({
            "sub": "u-123", "preferred_username": "alice", "email": "alice@example.com", "aud": "x"
        })))
        .unwrap();
        assert_eq!(
            (account.subject.as_deref(), account.username.as_deref(), account.email.as_deref()),
            (Some("u-123"), Some("alice"), Some("alice@example.com"))
        );
        assert_eq!(account.display(), Some("alice"));
        let cognito =
            unverified_account(&payload(serde_json::json!({ "sub": "s", "cognito:username": "bob" }))).unwrap();
        assert_eq!(cognito.display(), Some("bob"));
        let email_only =
            unverified_account(&payload(serde_json::json!({ "email": "c@example.com", "sub": 7 }))).unwrap();
        assert_eq!((email_only.display(), email_only.subject.as_deref()), (Some("c@example.com"), None));
        for garbage in [
            "not-a-jwt".to_owned(),
            "a.b".to_owned(),
            "a.!!!.c".to_owned(),
            payload(serde_json::json!(["sub"])),
            payload(serde_json::json!({ "sub": "" })),
            format!("{}.x", payload(serde_json::json!({ "sub": "s" }))),
            format!("a.{}.c", "A".repeat(70_000)),
        ] {
            assert_eq!(unverified_account(&garbage), None, "{garbage:.40}");
        }
    }
}
