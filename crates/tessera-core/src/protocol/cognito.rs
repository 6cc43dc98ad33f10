//! The Amazon Cognito user-pool wire protocol (the subset a client needs to log in, refresh and
//! revoke): `POST <endpoint>` with `Content-Type: application/x-amz-json-1.1` and
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`, JSON bodies in PascalCase.
//!
//! Pure functions, like the rest of [`crate::protocol`]: request builders, response parsers and the
//! mapping of Cognito's exceptions (`{"__type": "NotAuthorizedException", "message": ...}`) onto
//! tessera's [`Error`]. No I/O and no clock here.
//!
//! References: the Cognito Identity Provider API reference (`InitiateAuth`, `RespondToAuthChallenge`,
//! `RevokeToken`) and "Computing secret hash values" in the Cognito developer guide.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::token::server_text;
use crate::http::endpoint_of;
use crate::{Error, HttpRequest, HttpResponse, Method, OAuthErrorCode, RequestId, Secret, Timestamp, TokenSet};

/// The media type of Cognito requests and responses.
pub const COGNITO_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The `X-Amz-Target` prefix of every Cognito user-pool operation.
pub const COGNITO_TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";

/// The Cognito operations tessera sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CognitoOperation {
    /// Starts a login (`USER_PASSWORD_AUTH`, `CUSTOM_AUTH`) or refreshes (`REFRESH_TOKEN_AUTH`).
    InitiateAuth,
    /// Answers a challenge (`SMS_MFA`, `SOFTWARE_TOKEN_MFA`, `EMAIL_OTP`, `CUSTOM_CHALLENGE`, ...).
    RespondToAuthChallenge,
    /// Revokes a refresh token and the access tokens issued from it.
    RevokeToken,
}

impl CognitoOperation {
    /// The operation's name, as in `X-Amz-Target`.
    pub fn as_str(self) -> &'static str {
        match self {
            CognitoOperation::InitiateAuth => "InitiateAuth",
            CognitoOperation::RespondToAuthChallenge => "RespondToAuthChallenge",
            CognitoOperation::RevokeToken => "RevokeToken",
        }
    }

    /// The full `X-Amz-Target` header value.
    pub fn target(self) -> String {
        format!("{COGNITO_TARGET_PREFIX}{}", self.as_str())
    }
}

/// `SECRET_HASH` for app clients that have a secret: `Base64(HMAC-SHA256(key = client secret,
/// message = username + client_id))`. The username is the one Cognito knows the user by (for
/// `REFRESH_TOKEN_AUTH`, the `username` claim of the access token, which may differ from an email
/// alias used to log in).
pub fn secret_hash(client_secret: &Secret, username: &str, client_id: &str) -> Secret {
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(client_secret.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Secret::default(),
    };
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    Secret::new(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateAuthBody<'a> {
    auth_flow: &'a str,
    client_id: &'a str,
    auth_parameters: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RespondToAuthChallengeBody<'a> {
    challenge_name: &'a str,
    client_id: &'a str,
    session: &'a str,
    challenge_responses: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeTokenBody<'a> {
    token: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

fn cognito_request(id: RequestId, endpoint: &str, operation: CognitoOperation, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        id,
        method: Method::Post,
        url: endpoint.to_owned(),
        headers: vec![
            ("content-type".to_owned(), COGNITO_CONTENT_TYPE.to_owned()),
            ("x-amz-target".to_owned(), operation.target()),
            ("accept".to_owned(), COGNITO_CONTENT_TYPE.to_owned()),
        ],
        body,
    }
}

fn to_body<T: Serialize>(body: &T) -> Vec<u8> {
    // Serializing borrowed strings into a Vec cannot fail; an empty body would be refused by the server.
    serde_json::to_vec(body).unwrap_or_default()
}

/// `InitiateAuth` with `auth_flow` (`USER_PASSWORD_AUTH`, `CUSTOM_AUTH`, `REFRESH_TOKEN_AUTH`) and its
/// `AuthParameters` (`USERNAME`, `PASSWORD`, `REFRESH_TOKEN`, `SECRET_HASH`). Keys are sent sorted.
pub fn initiate_auth_request(
    id: RequestId,
    endpoint: &str,
    client_id: &str,
    auth_flow: &str,
    auth_parameters: &[(&str, &str)],
) -> HttpRequest {
    let body = InitiateAuthBody { auth_flow, client_id, auth_parameters: auth_parameters.iter().copied().collect() };
    cognito_request(id, endpoint, CognitoOperation::InitiateAuth, to_body(&body))
}

/// `RespondToAuthChallenge` for `challenge_name` within `session`, with its `ChallengeResponses`
/// (`USERNAME` and the answer: `SMS_MFA_CODE`, `SOFTWARE_TOKEN_MFA_CODE`, `EMAIL_OTP_CODE`, `ANSWER`;
/// plus `SECRET_HASH` for clients with a secret).
pub fn respond_to_auth_challenge_request(
    id: RequestId,
    endpoint: &str,
    client_id: &str,
    challenge_name: &str,
    session: &Secret,
    challenge_responses: &[(&str, &str)],
) -> HttpRequest {
    let body = RespondToAuthChallengeBody {
        challenge_name,
        client_id,
        session: session.expose_secret(),
        challenge_responses: challenge_responses.iter().copied().collect(),
    };
    cognito_request(id, endpoint, CognitoOperation::RespondToAuthChallenge, to_body(&body))
}

/// `RevokeToken` for a refresh token (Cognito revokes only refresh tokens, and with one the access
/// tokens issued from it). `ClientSecret` is required for clients that have one.
pub fn revoke_token_request(
    id: RequestId,
    endpoint: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    refresh_token: &Secret,
) -> HttpRequest {
    let body = RevokeTokenBody {
        token: refresh_token.expose_secret(),
        client_id,
        client_secret: client_secret.map(Secret::expose_secret),
    };
    cognito_request(id, endpoint, CognitoOperation::RevokeToken, to_body(&body))
}

/// A challenge Cognito asks before it issues tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoChallenge {
    /// `ChallengeName`, e.g. `SMS_MFA`.
    pub name: String,
    /// `Session`: echoed in the answer. Opaque and secret-like (it stands for a half-done login).
    pub session: Option<Secret>,
    /// `ChallengeParameters` with string values (e.g. `CODE_DELIVERY_DESTINATION`, `USER_ID_FOR_SRP`).
    pub parameters: BTreeMap<String, String>,
}

/// What `InitiateAuth` or `RespondToAuthChallenge` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CognitoAuthResponse {
    /// Logged in (or refreshed). A refresh yields no `RefreshToken`: Cognito does not rotate it.
    Tokens(TokenSet),
    /// One more challenge to answer.
    Challenge(CognitoChallenge),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireAuthResponse {
    authentication_result: Option<WireAuthenticationResult>,
    challenge_name: Option<String>,
    session: Option<String>,
    #[serde(default)]
    challenge_parameters: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireAuthenticationResult {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    id_token: Option<String>,
    refresh_token: Option<String>,
    token_type: Option<String>,
}

/// The longest `__type` taken for an exception name (AWS's are under 50 characters).
const MAX_EXCEPTION_NAME_LEN: usize = 100;

/// An exception Cognito answered with (`__type` without its namespace, and `message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoException {
    /// E.g. `NotAuthorizedException`, `CodeMismatchException`.
    pub name: String,
    /// The server's message, cut to [`MAX_DESCRIPTION_LEN`](super::MAX_DESCRIPTION_LEN) characters, control characters shown as `?`.
    pub message: Option<String>,
    /// HTTP status.
    pub status: u16,
}

/// What a Cognito call was for: the same exception means different things (a
/// `NotAuthorizedException` is a wrong password at login, a dead refresh token at refresh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CognitoCall {
    /// `InitiateAuth` for a login, or `RespondToAuthChallenge`.
    Login,
    /// `InitiateAuth` with `REFRESH_TOKEN_AUTH`.
    Refresh,
    /// `RevokeToken`.
    Revoke,
}

impl CognitoException {
    /// The typed error for this exception, when it answered a `call` to `endpoint`:
    ///
    /// | exception | error |
    /// | --- | --- |
    /// | `NotAuthorizedException` (wrong password, dead session, revoked refresh token), `UserNotFoundException`, `CodeMismatchException`, `ExpiredCodeException`, `PasswordResetRequiredException`, `UserNotConfirmedException`, `InvalidPasswordException` | OAuth `invalid_grant` (so a rejected refresh drops the refresh token) |
    /// | `TooManyRequestsException`, `LimitExceededException`, `TooManyFailedAttemptsException` | OAuth `temporarily_unavailable` (transient) |
    /// | `InternalErrorException`, `ServiceUnavailableException` | OAuth `server_error` (transient) |
    /// | `ResourceNotFoundException` (unknown app client) | OAuth `invalid_client` |
    /// | `InvalidParameterException` | OAuth `invalid_request` |
    /// | anything else | OAuth error with the exception's name as its code |
    ///
    /// The description starts with the exception's name, then the server's message.
    pub fn into_error(self, endpoint: &str, call: CognitoCall) -> Error {
        let code = match self.name.as_str() {
            "NotAuthorizedException"
            | "UserNotFoundException"
            | "CodeMismatchException"
            | "ExpiredCodeException"
            | "PasswordResetRequiredException"
            | "UserNotConfirmedException"
            // cognito-local's answer to a wrong password (AWS says NotAuthorizedException).
            | "InvalidPasswordException" => OAuthErrorCode::InvalidGrant,
            "TooManyRequestsException" | "LimitExceededException" | "TooManyFailedAttemptsException" => {
                OAuthErrorCode::TemporarilyUnavailable
            }
            "InternalErrorException" | "ServiceUnavailableException" => OAuthErrorCode::ServerError,
            "ResourceNotFoundException" => OAuthErrorCode::InvalidClient,
            "InvalidParameterException" => OAuthErrorCode::InvalidRequest,
            other => OAuthErrorCode::Other(other.to_owned()),
        };
        let context = match (call, self.name.as_str()) {
            (CognitoCall::Refresh, "NotAuthorizedException") => " (the refresh token was rejected)",
            (CognitoCall::Login, "NotAuthorizedException" | "InvalidPasswordException") => {
                " (wrong username or password, or the login expired)"
            }
            _ => "",
        };
        let description = match &self.message {
            Some(message) => format!("{}: {message}{context}", self.name),
            None => format!("{}{context}", self.name),
        };
        Error::OAuth { code, description: Some(description), status: self.status, endpoint: endpoint_of(endpoint) }
    }
}

fn is_cognito_json(response: &HttpResponse) -> bool {
    // AWS answers application/x-amz-json-1.1; emulators and proxies sometimes answer application/json.
    response.media_type().is_some_and(|t| t.starts_with("application/x-amz-json-") || t == "application/json")
}

/// The exception in a non-success answer, when it is one (a JSON body with `__type`, or an
/// `X-Amzn-ErrorType` header). `__type` may carry a namespace (`aws.cognito#NotAuthorizedException`)
/// or a suffix (`NotAuthorizedException:http://...`): only the name is kept.
pub fn parse_exception(response: &HttpResponse) -> Option<CognitoException> {
    #[derive(Deserialize)]
    struct WireException {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let wire =
        if is_cognito_json(response) { serde_json::from_slice::<WireException>(&response.body).ok() } else { None };
    let kind = wire
        .as_ref()
        .and_then(|w| w.kind.clone())
        .or_else(|| response.header("x-amzn-errortype").map(str::to_owned))?;
    let name = kind.rsplit('#').next().unwrap_or_default().split(':').next().unwrap_or_default().trim();
    // An exception name is a short identifier; anything else is not Cognito speaking (and would be
    // echoed, at any length, into the error's description).
    if name.is_empty()
        || name.len() > MAX_EXCEPTION_NAME_LEN
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some(CognitoException {
        name: name.to_owned(),
        message: wire.and_then(|w| w.message).as_deref().map(server_text),
        status: response.status,
    })
}

/// The error for a non-success answer: the mapped exception (see [`CognitoException::into_error`]),
/// else [`Error::UnexpectedStatus`] (a proxy page, a bare 5xx).
pub fn parse_cognito_error(response: &HttpResponse, endpoint: &str, call: CognitoCall) -> Error {
    match parse_exception(response) {
        Some(exception) => exception.into_error(endpoint, call),
        None => super::parse_error_response(response, endpoint),
    }
}

fn malformed(endpoint: &str, reason: impl Into<String>) -> Error {
    Error::MalformedResponse { endpoint: endpoint_of(endpoint), reason: reason.into() }
}

/// Parses the answer to `InitiateAuth` or `RespondToAuthChallenge` received at `now`.
///
/// `ExpiresIn` gives `expires_at`; when it is missing (some emulators leave it out of refreshes) the
/// access token's `exp` claim is read instead (unverified: only to schedule the next refresh).
/// A non-success answer is mapped with [`parse_cognito_error`]; a success that is not Cognito JSON,
/// or holds neither tokens nor a challenge, is [`Error::MalformedResponse`].
pub fn parse_auth_response(
    response: &HttpResponse,
    endpoint: &str,
    call: CognitoCall,
    now: Timestamp,
) -> Result<CognitoAuthResponse, Error> {
    if !(200..300).contains(&response.status) {
        return Err(parse_cognito_error(response, endpoint, call));
    }
    if !is_cognito_json(response) {
        let got = response.media_type().unwrap_or_else(|| "no content type".into());
        return Err(malformed(endpoint, format!("expected {COGNITO_CONTENT_TYPE}, got {got}")));
    }
    // Never echo the body: it holds tokens. serde_json's messages name only positions and types.
    let wire: WireAuthResponse = serde_json::from_slice(&response.body).map_err(|e| {
        malformed(endpoint, format!("invalid JSON ({:?} at line {} column {})", e.classify(), e.line(), e.column()))
    })?;
    if let Some(result) = wire.authentication_result {
        return parse_authentication_result(result, endpoint, now).map(CognitoAuthResponse::Tokens);
    }
    let Some(name) = wire.challenge_name.filter(|n| !n.is_empty()) else {
        return Err(malformed(endpoint, "neither AuthenticationResult nor ChallengeName in the response"));
    };
    // A challenge name is an identifier (`SMS_MFA`, `CUSTOM_CHALLENGE`); it reaches messages.
    if name.len() > MAX_EXCEPTION_NAME_LEN || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(malformed(endpoint, "ChallengeName is not an identifier (letters, digits and _)"));
    }
    let parameters = wire
        .challenge_parameters
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(s) => Some((key, s)),
            serde_json::Value::Null => None,
            other => Some((key, other.to_string())),
        })
        .collect();
    Ok(CognitoAuthResponse::Challenge(CognitoChallenge {
        name,
        session: wire.session.filter(|s| !s.is_empty()).map(Secret::new),
        parameters,
    }))
}

fn parse_authentication_result(
    result: WireAuthenticationResult,
    endpoint: &str,
    now: Timestamp,
) -> Result<TokenSet, Error> {
    let access_token = match result.access_token {
        Some(token) if !token.is_empty() => Secret::new(token),
        _ => return Err(malformed(endpoint, "AuthenticationResult has no AccessToken")),
    };
    let expires_in = match result.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => {
            Some(n.as_u64().ok_or_else(|| malformed(endpoint, "ExpiresIn is not a non-negative integer"))?)
        }
        Some(_) => return Err(malformed(endpoint, "ExpiresIn is not a number")),
    };
    let expires_at = match expires_in {
        Some(secs) => Some(now + Duration::from_secs(secs)),
        None => jwt_expiry(&access_token),
    };
    Ok(TokenSet {
        access_token,
        token_type: result.token_type.filter(|t| !t.is_empty()).unwrap_or_else(|| "Bearer".to_owned()),
        expires_at,
        refresh_token: result.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        refresh_expires_at: None,
        id_token: result.id_token.filter(|t| !t.is_empty()).map(Secret::new),
        scope: None,
        issued_at: now,
        dpop_key: None,
        resource_tokens: Default::default(),
        registered_client: None,
    })
}

/// A string claim of a JWT's payload, read without verifying the signature: for choosing which
/// username a `SECRET_HASH` is computed with, never for trusting anything.
pub fn unverified_jwt_claim(token: &Secret, claim: &str) -> Option<String> {
    match jwt_payload(token)?.get(claim)? {
        serde_json::Value::String(value) => Some(value.clone()),
        _ => None,
    }
}

fn jwt_payload(token: &Secret) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn jwt_expiry(token: &Secret) -> Option<Timestamp> {
    let exp = jwt_payload(token)?.get("exp")?.as_i64()?;
    Some(Timestamp::from_unix_secs(exp))
}

/// Parses the answer to `RevokeToken`: any 2xx is success.
pub fn parse_revoke_response(response: &HttpResponse, endpoint: &str) -> Result<(), Error> {
    if (200..300).contains(&response.status) {
        Ok(())
    } else {
        Err(parse_cognito_error(response, endpoint, CognitoCall::Revoke))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
    const ENDPOINT: &str = "https://cognito-idp.eu-west-1.amazonaws.com/";

    fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
        HttpResponse {
            request_id: RequestId(1),
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn text(request: &HttpRequest) -> &str {
        std::str::from_utf8(&request.body).unwrap()
    }

    #[test]
    fn secret_hash_matches_the_documented_construction() {
        // Reference value computed independently:
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"s3cret",b"alice"+b"client123",hashlib.sha256).digest()).decode())'
        assert_eq!(
            secret_hash(&Secret::new("s3cret"), "alice", "client123").expose_secret(),
            "niZNW/ZQghRxFdJYi0VOaDK45OiGfd7izxt7n+eqSJM="
        );
    }

    #[test]
    fn initiate_auth_bytes_and_headers() {
        let request = initiate_auth_request(
            RequestId(3),
            ENDPOINT,
            "client123",
            "USER_PASSWORD_AUTH",
            &[("USERNAME", "alice"), ("PASSWORD", "hunter2"), ("SECRET_HASH", "abc=")],
        );
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.url, ENDPOINT);
        assert_eq!(request.header("Content-Type"), Some("application/x-amz-json-1.1"));
        assert_eq!(request.header("X-Amz-Target"), Some("AWSCognitoIdentityProviderService.InitiateAuth"));
        assert_eq!(
            text(&request),
            r#"{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":"client123","AuthParameters":{"PASSWORD":"hunter2","SECRET_HASH":"abc=","USERNAME":"alice"}}"#
        );
        assert!(!format!("{request:?}").contains("hunter2"));
    }

    #[test]
    fn respond_and_revoke_bytes() {
        let request = respond_to_auth_challenge_request(
            RequestId(4),
            ENDPOINT,
            "c",
            "SMS_MFA",
            &Secret::new("sess\"ion"),
            &[("USERNAME", "alice"), ("SMS_MFA_CODE", "123456")],
        );
        assert_eq!(request.header("x-amz-target"), Some("AWSCognitoIdentityProviderService.RespondToAuthChallenge"));
        assert_eq!(
            text(&request),
            r#"{"ChallengeName":"SMS_MFA","ClientId":"c","Session":"sess\"ion","ChallengeResponses":{"SMS_MFA_CODE":"123456","USERNAME":"alice"}}"#
        );
        let revoke = revoke_token_request(RequestId(5), ENDPOINT, "c", None, &Secret::new("rt"));
        assert_eq!(revoke.header("x-amz-target"), Some("AWSCognitoIdentityProviderService.RevokeToken"));
        assert_eq!(text(&revoke), r#"{"Token":"rt","ClientId":"c"}"#);
        let revoke = revoke_token_request(RequestId(5), ENDPOINT, "c", Some(&Secret::new("cs")), &Secret::new("rt"));
        assert_eq!(text(&revoke), r#"{"Token":"rt","ClientId":"c","ClientSecret":"cs"}"#);
    }

    #[test]
    fn parses_tokens_and_challenges() {
        let body = r#"{"AuthenticationResult":{"AccessToken":"at","ExpiresIn":3600,"IdToken":"it","RefreshToken":"rt","TokenType":"Bearer"},"ChallengeParameters":{}}"#;
        let CognitoAuthResponse::Tokens(tokens) =
            parse_auth_response(&response(200, COGNITO_CONTENT_TYPE, body), ENDPOINT, CognitoCall::Login, NOW).unwrap()
        else {
            panic!("tokens expected")
        };
        assert_eq!(tokens.access_token.expose_secret(), "at");
        assert_eq!(tokens.refresh_token.as_ref().map(Secret::expose_secret), Some("rt"));
        assert_eq!(tokens.id_token.as_ref().map(Secret::expose_secret), Some("it"));
        assert_eq!(tokens.expires_at, Some(NOW + Duration::from_secs(3600)));

        let body = r#"{"ChallengeName":"SMS_MFA","Session":"s1","ChallengeParameters":{"CODE_DELIVERY_DELIVERY_MEDIUM":"SMS","CODE_DELIVERY_DESTINATION":"+*******1234","USER_ID_FOR_SRP":"alice"}}"#;
        let CognitoAuthResponse::Challenge(challenge) = parse_auth_response(
            &response(200, "application/x-amz-json-1.1; charset=utf-8", body),
            ENDPOINT,
            CognitoCall::Login,
            NOW,
        )
        .unwrap() else {
            panic!("challenge expected")
        };
        assert_eq!(challenge.name, "SMS_MFA");
        assert_eq!(challenge.session, Some(Secret::new("s1")));
        assert_eq!(challenge.parameters["CODE_DELIVERY_DESTINATION"], "+*******1234");

        // A challenge name is an identifier: one carrying a line of its own is refused, unquoted.
        let forged = r#"{"ChallengeName":"SMS_MFA\nlevel=INFO msg=forged","Session":"s1"}"#;
        let error = parse_auth_response(
            &response(200, "application/x-amz-json-1.1", forged),
            ENDPOINT,
            CognitoCall::Login,
            NOW,
        )
        .unwrap_err();
        assert!(matches!(error, Error::MalformedResponse { .. }), "{error:?}");
        assert!(error.to_string().contains("not an identifier") && !error.to_string().contains("forged"), "{error}");
    }

    #[test]
    fn missing_expires_in_falls_back_to_the_jwt_exp() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1700000900,"username":"u-1"}"#);
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig");
        let body = format!(r#"{{"AuthenticationResult":{{"AccessToken":"{jwt}","IdToken":"it"}}}}"#);
        let CognitoAuthResponse::Tokens(tokens) =
            parse_auth_response(&response(200, COGNITO_CONTENT_TYPE, &body), ENDPOINT, CognitoCall::Refresh, NOW)
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(tokens.expires_at, Some(Timestamp::from_unix_secs(1_700_000_900)));
        assert_eq!(tokens.token_type, "Bearer");
        assert!(tokens.refresh_token.is_none());
        assert_eq!(unverified_jwt_claim(&tokens.access_token, "username").as_deref(), Some("u-1"));
        assert_eq!(unverified_jwt_claim(&Secret::new("not-a-jwt"), "username"), None);
    }

    #[test]
    fn malformed_successes() {
        for (content_type, body, expected) in [
            ("text/html", "<html>proxy</html>", "expected application/x-amz-json-1.1, got text/html"),
            (COGNITO_CONTENT_TYPE, r#"{"AuthenticationResult":{"AccessToken":"secret-at""#, "invalid JSON"),
            (COGNITO_CONTENT_TYPE, r#"{"ChallengeParameters":{}}"#, "neither"),
            (COGNITO_CONTENT_TYPE, r#"{"AuthenticationResult":{"IdToken":"x"}}"#, "no AccessToken"),
            (COGNITO_CONTENT_TYPE, r#"{"AuthenticationResult":{"AccessToken":"a","ExpiresIn":-1}}"#, "ExpiresIn"),
            (COGNITO_CONTENT_TYPE, r#"{"AuthenticationResult":{"AccessToken":"a","ExpiresIn":"soon"}}"#, "ExpiresIn"),
        ] {
            let error =
                parse_auth_response(&response(200, content_type, body), ENDPOINT, CognitoCall::Login, NOW).unwrap_err();
            let Error::MalformedResponse { reason, .. } = &error else { panic!("{error:?}") };
            assert!(reason.contains(expected), "{reason} should mention {expected}");
            assert!(!error.to_string().contains("secret-at"));
        }
    }

    fn error_for(status: u16, kind: &str, call: CognitoCall) -> Error {
        let body = format!(r#"{{"__type":"{kind}","message":"server says"}}"#);
        parse_auth_response(&response(status, COGNITO_CONTENT_TYPE, &body), ENDPOINT, call, NOW).unwrap_err()
    }

    #[test]
    fn exceptions_map_to_typed_errors() {
        let login = error_for(400, "NotAuthorizedException", CognitoCall::Login);
        assert_eq!(login.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert!(
            login.to_string().contains("NotAuthorizedException: server says (wrong username or password"),
            "{login}"
        );
        let refresh = error_for(400, "NotAuthorizedException", CognitoCall::Refresh);
        assert_eq!(refresh.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert!(refresh.to_string().contains("refresh token was rejected"));
        for (kind, code, transient) in [
            ("UserNotFoundException", OAuthErrorCode::InvalidGrant, false),
            ("ExpiredCodeException", OAuthErrorCode::InvalidGrant, false),
            ("InvalidPasswordException", OAuthErrorCode::InvalidGrant, false),
            ("CodeMismatchException", OAuthErrorCode::InvalidGrant, false),
            ("TooManyRequestsException", OAuthErrorCode::TemporarilyUnavailable, true),
            ("InternalErrorException", OAuthErrorCode::ServerError, true),
            ("ResourceNotFoundException", OAuthErrorCode::InvalidClient, false),
            ("InvalidParameterException", OAuthErrorCode::InvalidRequest, false),
            ("aws.cognito#UserNotConfirmedException", OAuthErrorCode::InvalidGrant, false),
            (
                "SomethingNewException:http://internal.amazon.com/",
                OAuthErrorCode::Other("SomethingNewException".into()),
                false,
            ),
        ] {
            let error = error_for(400, kind, CognitoCall::Login);
            assert_eq!(error.oauth_code(), Some(&code), "{kind}");
            assert_eq!(error.is_transient(), transient, "{kind}");
        }
        // Emulators answer errors as application/json; a header-only error type is understood too.
        let json = response(400, "application/json", r#"{"__type":"CodeMismatchException","message":"m"}"#);
        assert_eq!(parse_exception(&json).unwrap().name, "CodeMismatchException");
        let mut bare = response(400, "text/plain", "");
        bare.headers.push(("X-Amzn-ErrorType".into(), "TooManyRequestsException:".into()));
        assert_eq!(parse_exception(&bare).unwrap().name, "TooManyRequestsException");
        // Without an exception: the status decides.
        let proxy =
            parse_auth_response(&response(502, "text/html", "<html/>"), ENDPOINT, CognitoCall::Login, NOW).unwrap_err();
        assert!(matches!(proxy, Error::UnexpectedStatus { status: 502, .. }) && proxy.is_transient());
        assert!(parse_revoke_response(&response(200, COGNITO_CONTENT_TYPE, "{}"), ENDPOINT).is_ok());
        assert!(
            parse_revoke_response(
                &response(400, COGNITO_CONTENT_TYPE, r#"{"__type":"UnauthorizedException"}"#),
                ENDPOINT
            )
            .is_err()
        );
    }

    #[test]
    fn exception_names_are_short_identifiers_or_ignored() {
        // Found by the cognito_response fuzz target: a huge `__type` was echoed into the error.
        let huge = format!(r#"{{"__type":"{}","message":"Invalid password"}}"#, "A".repeat(5_000));
        let response = HttpResponse {
            request_id: RequestId(1),
            status: 400,
            headers: vec![("content-type".into(), COGNITO_CONTENT_TYPE.into())],
            body: huge.into_bytes(),
        };
        assert_eq!(parse_exception(&response), None);
        let error = parse_cognito_error(&response, "https://cognito.example/", CognitoCall::Login);
        assert!(error.to_string().len() < 1_000, "{}", error.to_string().len());
        let odd = HttpResponse {
            request_id: RequestId(2),
            status: 400,
            headers: vec![("content-type".into(), COGNITO_CONTENT_TYPE.into())],
            body: br#"{"__type":"Not Authorized!"}"#.to_vec(),
        };
        assert_eq!(parse_exception(&odd), None, "not an identifier");
    }
}
