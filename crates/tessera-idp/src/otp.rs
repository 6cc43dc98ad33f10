//! Email one-time-code login, generic JSON flavour: `POST /otp/start` emails a 6-digit code (to
//! the outbox) and returns a challenge id, `POST /otp/verify` exchanges challenge id + code for
//! the same token response as `/token`. Refresh then goes through the normal `refresh_token`
//! grant.
//!
//! `/otp/start` answers the same for unknown addresses (nothing is sent, and no code will ever
//! verify), so the endpoint does not reveal which addresses have accounts. Each challenge allows
//! 3 attempts and lives 300 s; codes are compared in constant time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::config::grant_types;
use crate::handlers::{self, LoginContext};
use crate::oauth::{self, Form, OAuthError};
use crate::outbox::{mask_local_part, six_digit_code};
use crate::server::Shared;

/// Lifetime of a challenge, seconds.
pub(crate) const CHALLENGE_TTL: u64 = 300;
/// Code attempts per challenge.
pub(crate) const ATTEMPTS: u32 = 3;

type AppState = State<Arc<Shared>>;

struct Challenge {
    client_id: String,
    /// `None` for an address without an account: no code will ever match.
    username: Option<String>,
    code: String,
    scope: String,
    expires_at: u64,
    attempts_left: u32,
    finished: bool,
}

/// Open challenges by id. No `Debug`: challenges hold live codes.
#[derive(Default)]
pub(crate) struct OtpState(Mutex<HashMap<String, Challenge>>);

impl OtpState {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Challenge>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct StartRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    email: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct VerifyRequest {
    challenge_id: Option<String>,
    code: Option<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OAuthError> {
    serde_json::from_slice(body)
        .map_err(|e| OAuthError::invalid_request(format!("the body must be a JSON object: {e}")))
}

/// `POST /otp/start`.
pub(crate) async fn start(State(s): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let request: StartRequest = parse_json(&body)?;
        let form = Form::from_pairs([
            ("client_id", request.client_id.as_deref()),
            ("client_secret", request.client_secret.as_deref()),
        ]);
        let client = oauth::authenticate_client(&s, &headers, &form)?;
        if !client.allows(grant_types::EMAIL_OTP) {
            return Err(OAuthError::unauthorized_client(format!(
                "client `{}` may not use email one-time codes",
                client.client_id
            )));
        }
        let email = request.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let Some(email) = email else {
            return Err(OAuthError::invalid_request("missing field `email`"));
        };
        let user = s.users.values().find(|u| u.user.email.eq_ignore_ascii_case(email));
        let now = s.now();
        let code = six_digit_code();
        if let Some(user) = user {
            s.outbox.send_code(&user.user.email, &code, "sign-in", now);
        } else {
            tracing::info!("one-time code requested for an unknown address: nothing sent");
        }
        let scope = request
            .scope
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "openid".to_owned());
        let challenge_id = crate::store::random_token();
        let mut challenges = s.otp.lock();
        if challenges.len() > 1024 {
            challenges.retain(|_, c| c.expires_at > now && !c.finished);
        }
        challenges.insert(
            challenge_id.clone(),
            Challenge {
                client_id: client.client_id.clone(),
                username: user.map(|u| u.user.username.clone()),
                code,
                scope,
                expires_at: now + CHALLENGE_TTL,
                attempts_left: ATTEMPTS,
                finished: false,
            },
        );
        Ok(Json(json!({
            "challenge_id": challenge_id,
            "channel": "email",
            "destination": mask_local_part(email),
            "expires_in": CHALLENGE_TTL,
            "attempts_left": ATTEMPTS,
        })))
    })();
    match result {
        Ok(json) => (oauth::no_store(), json).into_response(),
        Err(e) => e.into_response(),
    }
}

/// What checking a code under the lock decided.
enum Checked {
    Login { client_id: String, username: String, scope: String },
    WrongCode { attempts_left: u32 },
}

/// `POST /otp/verify`.
pub(crate) async fn verify(State(s): AppState, body: Bytes) -> Response {
    let result = (|| {
        let request: VerifyRequest = parse_json(&body)?;
        let challenge_id = request.challenge_id.as_deref().filter(|c| !c.is_empty());
        let challenge_id = challenge_id.ok_or_else(|| OAuthError::invalid_request("missing field `challenge_id`"))?;
        let code = request.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        let code = code.ok_or_else(|| OAuthError::invalid_request("missing field `code`"))?;
        let now = s.now();
        let checked = {
            let mut challenges = s.otp.lock();
            let challenge = challenges
                .get_mut(challenge_id)
                .ok_or_else(|| OAuthError::invalid_grant("the challenge is unknown"))?;
            if challenge.finished {
                return Err(OAuthError::invalid_grant("the challenge is already used or exhausted"));
            }
            if challenge.expires_at <= now {
                challenge.finished = true;
                return Err(OAuthError::invalid_grant("the challenge has expired: start again"));
            }
            match &challenge.username {
                Some(username) if oauth::secrets_match(&challenge.code, code) => {
                    challenge.finished = true;
                    Checked::Login {
                        client_id: challenge.client_id.clone(),
                        username: username.clone(),
                        scope: challenge.scope.clone(),
                    }
                }
                _ => {
                    challenge.attempts_left = challenge.attempts_left.saturating_sub(1);
                    if challenge.attempts_left == 0 {
                        challenge.finished = true;
                        return Err(OAuthError::invalid_grant("wrong code, and no attempts are left: start again"));
                    }
                    Checked::WrongCode { attempts_left: challenge.attempts_left }
                }
            }
        };
        match checked {
            Checked::WrongCode { attempts_left } => Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "invalid_code",
                    "error_description": "the code is wrong",
                    "attempts_left": attempts_left,
                })),
            )
                .into_response()),
            Checked::Login { client_id, username, scope } => {
                let client = s
                    .clients
                    .get(&client_id)
                    .ok_or_else(|| OAuthError::server_error("the challenge's client is gone"))?;
                let (response, _) = handlers::new_login(&s, &client, &username, &scope, &LoginContext::default())?;
                s.stats.update(|st| st.otp_logins += 1);
                Ok((oauth::no_store(), Json(response)).into_response())
            }
        }
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}
