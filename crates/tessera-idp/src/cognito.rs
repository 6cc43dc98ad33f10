//! A Cognito-compatible subset at `POST /cognito` (and `/cognito/`), for the flows no emulator
//! speaks: `InitiateAuth` (`USER_PASSWORD_AUTH`, `CUSTOM_AUTH`, `REFRESH_TOKEN_AUTH` /
//! `REFRESH_TOKEN`), `RespondToAuthChallenge` (`EMAIL_OTP`, `SOFTWARE_TOKEN_MFA`,
//! `CUSTOM_CHALLENGE`) and `RevokeToken`, with AWS's wire format: `X-Amz-Target:
//! AWSCognitoIdentityProviderService.<Operation>`, `application/x-amz-json-1.1` bodies, and errors
//! as status 400 `{"__type": "<Exception>", "message": "..."}`.
//!
//! Tokens come from the same machinery as `/token` (same signing key, same families), so they
//! work at `/api/whoami` and revocation reaches them. As in Cognito, a refresh does not rotate
//! the refresh token. Clients with a secret must send `SECRET_HASH` = Base64(HMAC-SHA256(secret,
//! username + client id)); it is verified in constant time by the `hmac` crate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::config::{Client, grant_types};
use crate::handlers::{self, LoginContext, TokenResponse};
use crate::oauth;
use crate::outbox::{mask_both_parts, six_digit_code};
use crate::server::Shared;
use crate::store::{Grant, RedeemError};

/// Prefix of every `X-Amz-Target` this endpoint answers.
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
/// Content type of AWS JSON 1.1 requests and responses.
const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// Lifetime of a challenge session, seconds (Cognito's default is 3 minutes).
pub(crate) const SESSION_TTL: u64 = 180;
/// Answers allowed per session.
pub(crate) const SESSION_ATTEMPTS: u32 = 3;
/// Scope of the tokens this endpoint issues.
const SCOPE: &str = "openid email";

type AppState = State<Arc<Shared>>;

/// An AWS error: `__type` is the exception name.
#[derive(Debug)]
struct AwsError {
    kind: &'static str,
    message: String,
}

impl AwsError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    fn not_authorized(message: impl Into<String>) -> Self {
        Self::new("NotAuthorizedException", message)
    }

    fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    fn invalid_session() -> Self {
        Self::not_authorized("Invalid session for the user.")
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.kind, "message": self.message });
        let mut response = amz_json(StatusCode::BAD_REQUEST, &body);
        if let Ok(value) = HeaderValue::from_str(&format!("{}:", self.kind)) {
            response.headers_mut().insert("x-amzn-errortype", value);
        }
        response
    }
}

fn amz_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    response
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChallengeKind {
    EmailOtp,
    SoftwareTokenMfa,
    Custom,
}

impl ChallengeKind {
    fn name(self) -> &'static str {
        match self {
            Self::EmailOtp => "EMAIL_OTP",
            Self::SoftwareTokenMfa => "SOFTWARE_TOKEN_MFA",
            Self::Custom => "CUSTOM_CHALLENGE",
        }
    }

    /// The `ChallengeResponses` key carrying the answer.
    fn answer_key(self) -> &'static str {
        match self {
            Self::EmailOtp => "EMAIL_OTP_CODE",
            Self::SoftwareTokenMfa => "SOFTWARE_TOKEN_MFA_CODE",
            Self::Custom => "ANSWER",
        }
    }
}

struct Session {
    client_id: String,
    username: String,
    kind: ChallengeKind,
    /// The emailed code (`None` for TOTP, checked against the user's secret).
    code: Option<String>,
    expires_at: u64,
    attempts: u32,
}

/// Open challenge sessions by their opaque `Session` string. No `Debug`: sessions hold live codes.
#[derive(Default)]
pub(crate) struct CognitoState(Mutex<HashMap<String, Session>>);

impl CognitoState {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateAuthRequest {
    auth_flow: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    auth_parameters: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RespondRequest {
    challenge_name: Option<String>,
    client_id: Option<String>,
    session: Option<String>,
    #[serde(default)]
    challenge_responses: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeRequest {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /cognito`: dispatches on `X-Amz-Target`.
pub(crate) async fn cognito(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    let result = match operation {
        "InitiateAuth" => parse(&body).and_then(|r| initiate_auth(&s, r)),
        "RespondToAuthChallenge" => parse(&body).and_then(|r| respond_to_auth_challenge(&s, r)),
        "RevokeToken" => parse(&body).and_then(|r| revoke_token(&s, r)),
        _ => Err(AwsError::new("UnknownOperationException", format!("Unknown operation `{target}`"))),
    };
    match result {
        Ok(body) => amz_json(StatusCode::OK, &body),
        Err(e) => {
            tracing::info!(operation, kind = e.kind, message = %e.message, "cognito request refused");
            e.into_response()
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    serde_json::from_slice(body)
        .map_err(|e| AwsError::new("SerializationException", format!("malformed JSON body: {e}")))
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, AwsError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AwsError::invalid_parameter(format!("Missing required parameter {name}")))
}

fn find_client(s: &Shared, client_id: Option<&str>) -> Result<std::sync::Arc<Client>, AwsError> {
    let client_id = required(client_id, "ClientId")?;
    s.clients.get(client_id).ok_or_else(|| {
        AwsError::new("ResourceNotFoundException", format!("User pool client {client_id} does not exist."))
    })
}

/// Checks `SECRET_HASH` for clients that have a secret; clients without one need none.
fn check_secret_hash(client: &Client, username: &str, presented: Option<&str>) -> Result<(), AwsError> {
    let Some(secret) = &client.client_secret else {
        return Ok(());
    };
    let refuse = || AwsError::not_authorized(format!("Unable to verify secret hash for client {}", client.client_id));
    let presented = presented.filter(|p| !p.is_empty()).ok_or_else(refuse)?;
    let presented = STANDARD.decode(presented.trim()).map_err(|_| refuse())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| refuse())?;
    mac.update(username.as_bytes());
    mac.update(client.client_id.as_bytes());
    mac.verify_slice(&presented).map_err(|_| refuse())
}

fn require_flow(client: &Client, grant_type: &str, flow: &str) -> Result<(), AwsError> {
    if client.allows(grant_type) {
        Ok(())
    } else {
        Err(AwsError::invalid_parameter(format!("{flow} flow not enabled for this client")))
    }
}

fn authentication_result(tokens: TokenResponse) -> Value {
    let mut result = Map::new();
    result.insert("AccessToken".into(), tokens.access_token.into());
    result.insert("ExpiresIn".into(), tokens.expires_in.into());
    result.insert("TokenType".into(), "Bearer".into());
    if let Some(id_token) = tokens.id_token {
        result.insert("IdToken".into(), id_token.into());
    }
    if let Some(refresh_token) = tokens.refresh_token {
        result.insert("RefreshToken".into(), refresh_token.into());
    }
    json!({ "AuthenticationResult": result, "ChallengeParameters": {} })
}

/// Tokens for a completed login (with a refresh token when the client may refresh).
fn login(s: &Shared, client: &Client, username: &str) -> Result<Value, AwsError> {
    let (tokens, _) = handlers::new_login(s, client, username, SCOPE, &LoginContext::default())
        .map_err(|e| AwsError::new("InternalErrorException", e.description))?;
    s.stats.update(|st| st.cognito_logins += 1);
    Ok(authentication_result(tokens))
}

/// Opens a challenge session; emails a code for the email kinds.
fn open_session(s: &Shared, client: &Client, username: &str, kind: ChallengeKind) -> String {
    let now = s.now();
    let code = match kind {
        ChallengeKind::EmailOtp | ChallengeKind::Custom => {
            let code = six_digit_code();
            if let Some(entry) = s.users.get(username) {
                s.outbox.send_code(&entry.user.email, &code, "verification", now);
            }
            Some(code)
        }
        ChallengeKind::SoftwareTokenMfa => None,
    };
    let session = crate::store::random_token();
    let mut sessions = s.cognito.lock();
    if sessions.len() > 1024 {
        sessions.retain(|_, x| x.expires_at > now);
    }
    sessions.insert(
        session.clone(),
        Session {
            client_id: client.client_id.clone(),
            username: username.to_owned(),
            kind,
            code,
            expires_at: now + SESSION_TTL,
            attempts: 0,
        },
    );
    session
}

fn initiate_auth(s: &Shared, request: InitiateAuthRequest) -> Result<Value, AwsError> {
    let client = find_client(s, request.client_id.as_deref())?;
    let flow = required(request.auth_flow.as_deref(), "AuthFlow")?;
    let params = &request.auth_parameters;
    let param = |name: &str| params.get(name).map(String::as_str);
    match flow {
        "USER_PASSWORD_AUTH" => {
            require_flow(&client, grant_types::PASSWORD, flow)?;
            let username = required(param("USERNAME"), "USERNAME")?;
            let password = required(param("PASSWORD"), "PASSWORD")?;
            check_secret_hash(&client, username, param("SECRET_HASH"))?;
            let entry = s
                .users
                .get(username)
                .filter(|e| oauth::secrets_match(&e.user.password, password))
                .ok_or_else(|| AwsError::not_authorized("Incorrect username or password."))?;
            let username = entry.user.username.as_str();
            if entry.user.email_otp {
                let session = open_session(s, &client, username, ChallengeKind::EmailOtp);
                Ok(json!({
                    "ChallengeName": "EMAIL_OTP",
                    "Session": session,
                    "ChallengeParameters": {
                        "CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL",
                        "CODE_DELIVERY_DESTINATION": mask_both_parts(&entry.user.email),
                        "USER_ID_FOR_SRP": username,
                    },
                }))
            } else if entry.totp.is_some() {
                let session = open_session(s, &client, username, ChallengeKind::SoftwareTokenMfa);
                Ok(json!({
                    "ChallengeName": "SOFTWARE_TOKEN_MFA",
                    "Session": session,
                    "ChallengeParameters": { "USER_ID_FOR_SRP": username },
                }))
            } else {
                login(s, &client, username)
            }
        }
        "CUSTOM_AUTH" => {
            require_flow(&client, grant_types::EMAIL_OTP, flow)?;
            let username = required(param("USERNAME"), "USERNAME")?;
            check_secret_hash(&client, username, param("SECRET_HASH"))?;
            let entry =
                s.users.get(username).ok_or_else(|| AwsError::new("UserNotFoundException", "User does not exist."))?;
            let session = open_session(s, &client, username, ChallengeKind::Custom);
            Ok(json!({
                "ChallengeName": "CUSTOM_CHALLENGE",
                "Session": session,
                "ChallengeParameters": { "USERNAME": username, "email": mask_both_parts(&entry.user.email) },
            }))
        }
        "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
            require_flow(&client, grant_types::REFRESH_TOKEN, flow)?;
            let token = required(param("REFRESH_TOKEN"), "REFRESH_TOKEN")?;
            let now = s.now();
            let redeemed = s.store.redeem(token, &client.client_id, None, false, now, s.refresh_token_ttl).map_err(
                |e| match e {
                    RedeemError::Expired => AwsError::not_authorized("Refresh Token has expired"),
                    _ => AwsError::not_authorized("Refresh Token has been revoked"),
                },
            )?;
            check_secret_hash(&client, &redeemed.grant.username, param("SECRET_HASH"))?;
            let Grant { username, .. } = &redeemed.grant;
            let tokens = handlers::user_tokens(
                s,
                &redeemed.grant,
                &redeemed.scope,
                Some(redeemed.family),
                None,
                now,
                &LoginContext::default(),
            )
            .map_err(|e| AwsError::new("InternalErrorException", e.description))?;
            tracing::debug!(username, "cognito refresh");
            s.stats.update(|st| st.cognito_refreshes += 1);
            Ok(authentication_result(tokens))
        }
        other => Err(AwsError::invalid_parameter(format!(
            "AuthFlow `{other}` is not supported here (USER_PASSWORD_AUTH, CUSTOM_AUTH, REFRESH_TOKEN_AUTH)"
        ))),
    }
}

fn respond_to_auth_challenge(s: &Shared, request: RespondRequest) -> Result<Value, AwsError> {
    let client = find_client(s, request.client_id.as_deref())?;
    let challenge_name = required(request.challenge_name.as_deref(), "ChallengeName")?;
    let session_id = required(request.session.as_deref(), "Session")?;
    let responses = &request.challenge_responses;
    let response = |name: &str| responses.get(name).map(String::as_str);
    let username = required(response("USERNAME"), "ChallengeResponses.USERNAME")?;
    let now = s.now();

    let mut sessions = s.cognito.lock();
    let session = sessions.get_mut(session_id).ok_or_else(AwsError::invalid_session)?;
    if session.client_id != client.client_id || session.username != username {
        return Err(AwsError::invalid_session());
    }
    if session.expires_at <= now {
        sessions.remove(session_id);
        return Err(AwsError::not_authorized("Invalid session for the user, session is expired."));
    }
    if session.kind.name() != challenge_name {
        return Err(AwsError::invalid_parameter(format!(
            "ChallengeName `{challenge_name}` does not match the session's challenge `{}`",
            session.kind.name()
        )));
    }
    check_secret_hash(&client, username, response("SECRET_HASH"))?;
    let key = session.kind.answer_key();
    let answer = required(response(key).map(str::trim), &format!("ChallengeResponses.{key}"))?;
    let correct = match (&session.code, s.users.get(username).and_then(|e| e.totp.as_ref())) {
        (Some(code), _) => oauth::secrets_match(code, answer),
        (None, Some(totp)) => totp.check(answer, now).is_some(),
        (None, None) => false,
    };
    if !correct {
        session.attempts += 1;
        if session.attempts >= SESSION_ATTEMPTS {
            sessions.remove(session_id);
            return Err(AwsError::invalid_session());
        }
        return Err(AwsError::new("CodeMismatchException", "Invalid code received for user"));
    }
    let username = session.username.clone();
    sessions.remove(session_id);
    drop(sessions);
    login(s, &client, &username)
}

fn revoke_token(s: &Shared, request: RevokeRequest) -> Result<Value, AwsError> {
    let client = find_client(s, request.client_id.as_deref())?;
    let token = required(request.token.as_deref(), "Token")?;
    if let Some(secret) = &client.client_secret {
        let presented = request.client_secret.as_deref().unwrap_or("");
        if !oauth::secrets_match(secret, presented) {
            return Err(AwsError::not_authorized(format!(
                "Unable to verify client secret for client {}",
                client.client_id
            )));
        }
    }
    // Like RFC 7009, an unknown token (or one of another client) is answered as success.
    s.store.revoke_refresh(token, &client.client_id);
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_the_aws_definition() {
        let client = Client::confidential("client", "secret", &[grant_types::PASSWORD]);
        // Known answer, computed with Python's hmac module: base64(HMAC-SHA256("secret", "aliceclient")).
        let hash = "RTsve+FQ659UKyESgvLg9GYmZEL+QjzQsW/OjL77/b0=";
        assert!(check_secret_hash(&client, "alice", Some(hash)).is_ok());
        assert!(check_secret_hash(&client, "bob", Some(hash)).is_err());
        assert!(check_secret_hash(&client, "alice", None).is_err());
        assert!(check_secret_hash(&client, "alice", Some("not base64!")).is_err());
        let public = Client::public("p", &[grant_types::PASSWORD]);
        assert!(check_secret_hash(&public, "alice", None).is_ok());
    }
}
